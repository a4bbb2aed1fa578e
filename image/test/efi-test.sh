#!/bin/bash
# image/test/efi-test.sh — make image-efi-test: boots build/image/otasuke-test.img as a
# real box does, through UEFI firmware with Secure Boot on and Microsoft's keys enrolled
# (OVMF, as on a PC from a shop): shim -> GRUB -> kernel, each checking the next. Then:
#  1. factory reset through its menu entry (chosen for one start with grub-editenv, i.e.
#     what a person picks in the menu): data partition made anew, owner's rule gone, new
#     machine-id, new web certificate, new setup code on the console;
#  2. a kernel on the ESP that fails its signature check is refused and GRUB falls back
#     to the previous kernel (the box still comes up);
#  3. a GRUB update published in the signed otasuke repository is installed by
#     unattended-upgrades and copied to the ESP by apt's hook; the test's GRUB carries a
#     marker in its version, which breaks Debian's signature: with Secure Boot off the
#     next start shows the marker (the copy is what runs), with Secure Boot on shim
#     refuses it and nothing starts.
# Five firmware starts under TCG: ~8 min, so not part of make test. TAP output.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
trap img_down EXIT
trap 'exit 130' INT TERM
export IMG_BOOT=efi
BOOT_LIMIT=240
[ "$(img_accel)" = kvm ] || BOOT_LIMIT=900
n=0 failed=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
notok(){ n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | head -30 | sed 's/^/# /'; }
check(){ local name=$1; shift; local out; if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$out"; fi; }

# the console since the last (re)start of qemu
this_boot() { awk '/^=== boot /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$IMG_CONSOLE"; }
# in_boot GREP-ARGS: whether this start's console matches. Not "grep -q": it would stop
# reading at the first match and, under pipefail, this_boot's SIGPIPE would count as "no".
in_boot() { this_boot | grep -a "$@" >/dev/null; }
boot() {   # LABEL
    img_vm_start
    if img_wait_console 'otasuke: (ready|DNS filter not|web UI not|firewall not)' "$BOOT_LIMIT" && img_wait_console 'otasuke: ready' 1; then
        ok "$1: boots through UEFI, shim and GRUB and reports ready"
    else
        notok "$1: boots through UEFI, shim and GRUB and reports ready" "$(this_boot | tail -30)"; exit 1
    fi
    img_guest --wait 60 >/dev/null || { notok "$1: test shell answers"; exit 1; }
}
# power the box off from inside and wait for qemu to end (-no-reboot: a reboot ends it too)
power_off() {
    img_guest "systemctl ${1:-poweroff}" >/dev/null 2>&1 || true
    for _ in $(seq 900); do kill -0 "$IMG_QEMU_PID" 2>/dev/null || break; sleep 0.2; done
    img_vm_kill
}
state() {   # what must change at a factory reset, one per line
    img_guest "blkid -s UUID -o value /dev/disk/by-partlabel/otasuke-data; cat /etc/machine-id"
}
setup_code() { this_boot | grep -aoE 'setup code: [A-Za-z0-9-]+' | tail -1 | awk '{print $3}'; }
cert_fp() { this_boot | grep -aoE 'SHA-256: [0-9a-fA-F:]+' | tail -1 | awk '{print $2}'; }
GRUBENV=/boot/efi/EFI/debian/grubenv

t0=$(date +%s)
img_net_up
boot "first boot (Secure Boot on)"
check "Secure Boot is on and the kernel is locked down" \
    img_guest "mokutil --sb-state | grep -qx 'SecureBoot enabled' && grep -q '\[integrity\]\|\[confidentiality\]' /sys/kernel/security/lockdown || { mokutil --sb-state; cat /sys/kernel/security/lockdown; exit 1; }"
check "GRUB started the default entry (no factory reset on the kernel command line)" \
    img_guest "grep -q 'BOOT_IMAGE=/otasuke/vmlinuz ' /proc/cmdline && ! grep -q otasuke.factory_reset /proc/cmdline || { cat /proc/cmdline; exit 1; }"
check "ESP mounted on /boot/efi: shim, GRUB, the menu with both entries, the kernel and its fallback" \
    img_guest "cd /boot/efi && test -s EFI/BOOT/BOOTX64.EFI && test -s EFI/BOOT/grubx64.efi && test -s otasuke/vmlinuz && test -s otasuke/initrd.img && test -s otasuke/vmlinuz.prev && grep -q 'otasuke.factory_reset=1' EFI/debian/grub.cfg && cmp EFI/BOOT/BOOTX64.EFI /usr/lib/shim/shimx64.efi.signed || { systemctl status --no-pager boot-efi.mount; ls -lR /boot/efi; exit 1; }"
if in_boot 'otasuke: factory reset (erases all owner data and keys)'; then ok "the boot menu shows the factory-reset entry (serial console)"
else notok "the boot menu shows the factory-reset entry (serial console)" "$(this_boot | head -30)"; fi
code1=$(setup_code) fp1=$(cert_fp)
read -r uuid1 mid1 < <(state | paste -sd' ')
[ -n "$code1" ] && [ -n "$fp1" ] && [ -n "$uuid1" ] && [ -n "$mid1" ] \
    || img_die "first boot: setup code '$code1', fingerprint '$fp1', data uuid '$uuid1', machine-id '$mid1'"

# ---- 1. factory reset from the boot menu ------------------------------------------------
img_guest "otasukectl policy block malware.test" >/dev/null
check "owner rule recorded before the reset" img_guest "otasukectl policy rules | grep -q malware.test"
out=$(img_guest "grub-editenv $GRUBENV set next_entry=otasuke-factory-reset && grub-editenv $GRUBENV list")
if grep -qx next_entry=otasuke-factory-reset <<<"$out"; then ok "factory-reset entry chosen for the next start (grubenv next_entry)"
else notok "factory-reset entry chosen for the next start (grubenv next_entry)" "$out"; fi
power_off reboot
boot "factory reset boot"
check "GRUB started the factory-reset entry" img_guest "grep -q ' otasuke.factory_reset=1' /proc/cmdline || { cat /proc/cmdline; exit 1; }"
if in_boot 'otasuke factory reset: data erased'; then ok "initramfs erased the data partition (console)"
else notok "initramfs erased the data partition (console)" "$(this_boot | grep -a 'factory' | tail)"; fi
read -r uuid2 mid2 < <(state | paste -sd' ')
if [ -n "$uuid2" ] && [ "$uuid2" != "$uuid1" ]; then ok "data partition is a new file system ($uuid1 -> $uuid2)"
else notok "data partition is a new file system" "before '$uuid1' after '$uuid2'"; fi
if [ -n "$mid2" ] && [ "$mid2" != "$mid1" ]; then ok "new machine-id (systemd ran a first boot)"
else notok "new machine-id (systemd ran a first boot)" "before '$mid1' after '$mid2'"; fi
check "owner rule gone" img_guest "! otasukectl policy rules | grep -q malware.test"
code2=$(setup_code) fp2=$(cert_fp)
if [ -n "$code2" ] && [ "$code2" != "$code1" ]; then ok "a new setup code on the console"
else notok "a new setup code on the console" "before '$code1' after '$code2'"; fi
if [ -n "$fp2" ] && [ "$fp2" != "$fp1" ]; then ok "a new web UI certificate (fingerprint on the console)"
else notok "a new web UI certificate (fingerprint on the console)" "before '$fp1' after '$fp2'"; fi
if in_boot 'otasuke: first boot done'; then ok "first-boot setup ran again"
else notok "first-boot setup ran again"; fi
check "the one-shot entry is used up (the next start is a normal one)" \
    img_guest "grub-editenv $GRUBENV list | grep -qx 'next_entry=' || ! grub-editenv $GRUBENV list | grep -q next_entry"
check "the box's config is the shipped one, for this board (wan0/lan0)" \
    img_guest "cmp /etc/otasuke/otasuke.conf /usr/share/otasuke/otasuke.conf && grep -q '\"wan0\"' /etc/otasuke/otasuke.conf"

# ---- 2. a kernel that fails its signature check -----------------------------------------
# One byte of the kernel's code changed on the ESP (as an attacker with the disk, or a bad
# copy, would): its Authenticode hash no longer matches Debian's signature.
out=$(img_guest "python3 -c \"f=open('/boot/efi/otasuke/vmlinuz','r+b');f.seek(0x20000);b=f.read(1);f.seek(0x20000);f.write(bytes([b[0]^0xff]));f.close()\" && sync && ! cmp -s /boot/efi/otasuke/vmlinuz /boot/efi/otasuke/vmlinuz.prev && echo tampered")
grep -qx tampered <<<"$out" || img_die "could not change the kernel on the ESP: $out"
power_off reboot
boot "start with a tampered kernel"
if in_boot -iE 'bad shim signature|verification failed|invalid signature|security violation'; then
    ok "GRUB refused the tampered kernel ($(this_boot | grep -aioE 'bad shim signature|verification failed|invalid signature|security violation' | head -1))"
else notok "GRUB refused the tampered kernel" "$(this_boot | grep -av '^\s*$' | head -40)"; fi
check "and started the previous kernel instead (fallback entry)" \
    img_guest "grep -q 'BOOT_IMAGE=/otasuke/vmlinuz.prev ' /proc/cmdline || { cat /proc/cmdline; exit 1; }"
img_guest "cp /boot/efi/otasuke/vmlinuz.prev /boot/efi/otasuke/vmlinuz && sync" >/dev/null

# ---- 3. a boot loader update through the signed repository --------------------------------
read -r lver marker < <(python3 "$IMG_TOP/image/test/loader-debs.py" "$IMG_TOP/build/image/root" "$IMG_RUN/loader-debs") \
    || img_die "image/test/loader-debs.py failed"
mkdir -p "$IMG_RUN/www"
OTASUKE_REPO_DIR=$IMG_RUN/www/otasuke "$IMG_TOP/image/repo.sh" build "$IMG_RUN"/loader-debs/*.deb >/dev/null \
    || img_die "image/repo.sh build (loader update) failed"
ip -n "$IMG_ID-wan" addr add 198.18.10.30/32 dev lo
img_ns wan python3 -m http.server --bind 198.18.10.30 80 --directory "$IMG_RUN/www" >"$IMG_RUN/repo-http.log" 2>&1 &
echo $! >>"$IMG_RUN/pids"
out=$(img_guest --timeout 900 "apt-get update -o Dir::Etc::SourceList=/dev/null >/dev/null 2>&1; unattended-upgrade 2>&1 | tail -5; dpkg-query -W -f '\${Version}\n' grub-efi-amd64-signed; cmp /usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed /boot/efi/EFI/BOOT/grubx64.efi && echo loader-on-esp")
if grep -qxF "$lver" <<<"$out" && grep -qx loader-on-esp <<<"$out"; then
    ok "a GRUB update from the signed repository is installed and copied to the ESP ($lver)"
else notok "a GRUB update from the signed repository is installed and copied to the ESP" "$out
$(img_guest 'tail -20 /var/log/unattended-upgrades/unattended-upgrades-dpkg.log')"; fi
power_off
IMG_SECUREBOOT=0 boot "start with the updated GRUB, Secure Boot off"
if in_boot -F "GRUB  version $marker"; then ok "the firmware started the updated GRUB (menu shows version $marker)"
else notok "the firmware started the updated GRUB" "$(this_boot | grep -a 'GRUB' | head -5)"; fi
power_off
# The same GRUB with Secure Boot on: its signature no longer matches, shim refuses it.
img_vm_start
if img_wait_console 'Verification failed|Security Violation|Access Denied|Failed to load image' 600; then
    ok "with Secure Boot on, shim refuses the GRUB whose signature does not match ($(this_boot | grep -aoE 'Verification failed[^\r]*|Security Violation|Access Denied|Failed to load image' | head -1))"
else notok "with Secure Boot on, shim refuses the GRUB whose signature does not match" "$(this_boot | tail -20)"; fi
sleep 60   # what the firmware does next: other boot options, its menu; never a kernel
if in_boot -E 'Linux version|otasuke: ready'; then notok "and no kernel starts (60 s watched)" "$(this_boot | grep -aE 'Linux version|otasuke: ready')"
else ok "and no kernel starts (60 s watched)"; fi
img_vm_kill

img_log "EFI + Secure Boot test: $(( $(date +%s) - t0 )) s ($(img_accel))"
echo "1..$n"
[ $failed = 0 ]
