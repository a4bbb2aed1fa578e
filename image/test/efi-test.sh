#!/bin/bash
# image/test/efi-test.sh — make image-efi-test: boots build/image/otasuke-test.img as a
# real box does (UEFI firmware OVMF -> systemd-boot on the ESP -> kernel), then tests the
# factory reset through its boot entry: change the box's state, choose the "factory
# reset" entry for the next start (bootctl set-oneshot, i.e. what a person picks in the
# boot menu), reboot, and check that the box came back as new: data partition made anew,
# owner's rule gone, new machine-id, new web certificate, new setup code on the console.
# Two boots through firmware under TCG: ~4-5 min, so not part of make test. TAP output.
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
boot() {   # LABEL
    img_vm_start
    if img_wait_console 'otasuke: (ready|DNS filter not|web UI not|firewall not)' "$BOOT_LIMIT" && img_wait_console 'otasuke: ready' 1; then
        ok "$1: boots through UEFI and systemd-boot and reports ready"
    else
        notok "$1: boots through UEFI and systemd-boot and reports ready" "$(this_boot | tail -30)"; exit 1
    fi
    img_guest --wait 60 >/dev/null || { notok "$1: test shell answers"; exit 1; }
}
efivar() {   # NAME: a systemd-boot variable (UTF-16 string) as text
    img_guest "f=/sys/firmware/efi/efivars/$1-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f; [ -e \$f ] && cat \$f | tail -c +5 | tr -d '\\000'"
}
state() {   # what must change at a factory reset, one per line
    img_guest "blkid -s UUID -o value /dev/disk/by-partlabel/otasuke-data; cat /etc/machine-id"
}
setup_code() { this_boot | grep -aoE 'setup code: [A-Za-z0-9-]+' | tail -1 | awk '{print $3}'; }
cert_fp() { this_boot | grep -aoE 'SHA-256: [0-9a-fA-F:]+' | tail -1 | awk '{print $2}'; }

t0=$(date +%s)
img_net_up
boot "first boot"
sel=$(efivar LoaderEntrySelected)
if [ "$sel" = otasuke.conf ]; then ok "systemd-boot started the default entry (otasuke.conf)"
else notok "systemd-boot started the default entry (otasuke.conf)" "LoaderEntrySelected '$sel'"; fi
check "ESP mounted on /boot/efi with both entries and the kernel" \
    img_guest "test -s /boot/efi/otasuke/vmlinuz && test -s /boot/efi/otasuke/initrd.img && grep -q 'otasuke.factory_reset=1' /boot/efi/loader/entries/otasuke-factory-reset.conf || { systemctl status --no-pager boot-efi.mount; ls -l /dev/disk/by-partlabel; exit 1; }"
code1=$(setup_code) fp1=$(cert_fp)
read -r uuid1 mid1 < <(state | paste -sd' ')
[ -n "$code1" ] && [ -n "$fp1" ] && [ -n "$uuid1" ] && [ -n "$mid1" ] \
    || img_die "first boot: setup code '$code1', fingerprint '$fp1', data uuid '$uuid1', machine-id '$mid1'"

# the owner's state: a rule in the agent's database
img_guest "otasukectl policy block malware.test" >/dev/null
check "owner rule recorded before the reset" img_guest "otasukectl policy rules | grep -q malware.test"

# the factory-reset entry for the next start only, then a reboot (qemu -no-reboot exits)
out=$(img_guest "bootctl set-oneshot otasuke-factory-reset.conf 2>&1 && echo set")
if grep -qx set <<<"$out"; then ok "factory-reset entry chosen for the next boot (bootctl set-oneshot)"
else notok "factory-reset entry chosen for the next boot (bootctl set-oneshot)" "$out"; fi
img_guest "systemctl reboot" >/dev/null 2>&1 || true
for _ in $(seq 600); do kill -0 "$IMG_QEMU_PID" 2>/dev/null || break; sleep 0.2; done
img_vm_kill
boot "factory reset boot"
sel=$(efivar LoaderEntrySelected)
if [ "$sel" = otasuke-factory-reset.conf ]; then ok "systemd-boot started the factory-reset entry"
else notok "systemd-boot started the factory-reset entry" "LoaderEntrySelected '$sel'"; fi
if this_boot | grep -aq 'otasuke factory reset: data erased'; then ok "initramfs erased the data partition (console)"
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
if this_boot | grep -aq 'otasuke: first boot done'; then ok "first-boot setup ran again"
else notok "first-boot setup ran again"; fi
check "the one-shot entry is used up (the next start is a normal one)" \
    img_guest "! test -e /sys/firmware/efi/efivars/LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
check "the box's config is the shipped one, for this board (wan0/lan0)" \
    img_guest "cmp /etc/otasuke/otasuke.conf /usr/share/otasuke/otasuke.conf && grep -q '\"wan0\"' /etc/otasuke/otasuke.conf"

# ---- a systemd-boot update reaches the ESP ---------------------------------------------
# Debian's systemd-boot-efi and systemd-boot, rebuilt from the image as a newer version
# whose loader reports a marker in its LoaderInfo, published in the signed otasuke
# repository on the fake internet (the test image's otasuke.sources). unattended-upgrades
# installs them; apt's Post-Invoke hook must copy the loader to EFI/BOOT/BOOTX64.EFI, and
# the next start must run it.
read -r lver marker < <(python3 "$IMG_TOP/image/test/loader-debs.py" "$IMG_TOP/build/image/root" "$IMG_RUN/loader-debs") \
    || img_die "image/test/loader-debs.py failed"
mkdir -p "$IMG_RUN/www"
OTASUKE_REPO_DIR=$IMG_RUN/www/otasuke "$IMG_TOP/image/repo.sh" build "$IMG_RUN"/loader-debs/*.deb >/dev/null \
    || img_die "image/repo.sh build (loader update) failed"
ip -n "$IMG_ID-wan" addr add 198.18.10.30/32 dev lo
img_ns wan python3 -m http.server --bind 198.18.10.30 80 --directory "$IMG_RUN/www" >"$IMG_RUN/repo-http.log" 2>&1 &
echo $! >>"$IMG_RUN/pids"
out=$(img_guest --timeout 900 "apt-get update -o Dir::Etc::SourceList=/dev/null >/dev/null 2>&1; unattended-upgrade 2>&1 | tail -5; dpkg-query -W -f '\${Version}\n' systemd-boot-efi; cmp /usr/lib/systemd/boot/efi/systemd-bootx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI && echo loader-on-esp")
if grep -qx "$lver" <<<"$out" && grep -qx loader-on-esp <<<"$out"; then
    ok "a systemd-boot update from the signed repository is installed and copied to the ESP ($lver)"
else notok "a systemd-boot update from the signed repository is installed and copied to the ESP" "$out
$(img_guest 'tail -20 /var/log/unattended-upgrades/unattended-upgrades-dpkg.log')"; fi
img_guest "systemctl reboot" >/dev/null 2>&1 || true
for _ in $(seq 600); do kill -0 "$IMG_QEMU_PID" 2>/dev/null || break; sleep 0.2; done
img_vm_kill
boot "boot after the loader update"
info=$(efivar LoaderInfo)
if [ "$info" = "systemd-boot $marker" ]; then ok "the firmware started the updated loader (LoaderInfo '$info')"
else notok "the firmware started the updated loader" "LoaderInfo '$info', want 'systemd-boot $marker'"; fi

img_log "EFI boot + factory reset test: $(( $(date +%s) - t0 )) s ($(img_accel))"
echo "1..$n"
[ $failed = 0 ]
