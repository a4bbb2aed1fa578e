#!/bin/bash
# image/test/boot-test.sh — make image-test: boots build/image/otasuke-test.img in qemu
# (KVM when /dev/kvm works, else TCG) with its WAN port on a fake internet and its LAN
# port on a client namespace, then checks what an office would see. TAP output.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
trap img_down EXIT
trap 'exit 130' INT TERM

BOOT_LIMIT=180
[ "$(img_accel)" = kvm ] || BOOT_LIMIT=900
n=0 failed=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
notok(){ n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/# /'; }
check(){ local name=$1; shift; local out; if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$out"; fi; }


t0=$(date +%s)
img_net_up
img_vm_start
if img_wait_console 'otasuke: (ready|DNS filter not|web UI not|firewall not)' $BOOT_LIMIT && img_wait_console 'otasuke: ready' 1; then
    ok "box boots and reports ready on the console ($(( $(date +%s) - t0 )) s)"
else
    notok "box boots and reports ready on the console" "$(tail -40 "$IMG_CONSOLE")"
fi
img_guest --wait 60 >/dev/null || img_die "test shell on ttyS1 does not answer"

# First boot: dnsd and fwd start from the boot transaction, ordered after the agent,
# which is ready (sd_notify) only once its first compile wrote their artifacts. A start
# whose ConditionPathExists failed would leave them to the edge-triggered .path units.
check "otasuke-dnsd and otasuke-fwd started at boot after the agent's first compile" \
    img_guest 'for u in dnsd fwd; do [ "$(systemctl show -P ConditionResult otasuke-$u)" = yes ] || { echo "otasuke-$u: condition failed at its start"; exit 1; }; systemctl -q is-active otasuke-$u || { echo "otasuke-$u not active"; exit 1; }; a=$(systemctl show -P ActiveEnterTimestampMonotonic otasuke-agent); b=$(systemctl show -P ExecMainStartTimestampMonotonic otasuke-$u); [ "$b" -ge "$a" ] || { echo "otasuke-$u started ($b) before the agent was ready ($a)"; exit 1; }; done; ! journalctl -b --no-pager -u otasuke-dnsd -u otasuke-fwd | grep -i "unmet condition"'

code=$(grep -aoE 'setup code: [A-Za-z0-9-]+' "$IMG_CONSOLE" | tail -1 | awk '{print $3}')
if [ -n "$code" ]; then ok "setup code shown on the console"; else notok "setup code shown on the console" "$(grep -a otasuke "$IMG_CONSOLE" | tail)"; fi
check "setup code is in the login banner (/run/issue.d), not in the journal" \
    img_guest "grep -q '$code' /run/issue.d/50-otasuke.issue && ! journalctl -b --no-pager | grep -q '$code'"
check "no password hash in /etc/shadow, root locked" \
    img_guest "! grep -E '^[^:]+:[^*!:]' /etc/shadow && passwd -S root | grep -qE ' (L|NP) '"
# A power cut leaves ext4 to be checked: root in the initramfs (fsck and e2fsck must be in
# it), the data partition by systemd-fsck@ (fstab pass 2).
check "root file system is checked by the initramfs at boot, data by systemd-fsck" \
    img_guest "test -e /run/initramfs/fsck-root && systemctl show -P Result 'systemd-fsck@dev-disk-by\\x2dlabel-otasuke\\x2ddata.service' | grep -qx success"
check "no SSH server, nothing listens on the WAN address" \
    img_guest "! test -e /usr/sbin/sshd && ! ss -Hlnt | grep -E '198\.18\.0\.2:'"

# The pc asks for an address (dhclient writes its resolver into a file of ours).
cat >"$IMG_RUN/dhclient-script" <<'S'
#!/bin/sh
case "$reason" in BOUND|RENEW|REBOOT)
  ip addr add "$new_ip_address/${new_subnet_mask:+24}" dev "$interface" 2>/dev/null
  for r in $new_routers; do ip route replace default via "$r"; done
  echo "$new_domain_name_servers" > "$(dirname "$0")/pc-dns";;
esac
S
chmod +x "$IMG_RUN/dhclient-script"
if img_ns pc timeout 60 dhclient -1 -4 -sf "$IMG_RUN/dhclient-script" -pf "$IMG_RUN/dhclient.pid" \
        -lf "$IMG_RUN/dhclient.leases" eth0 >"$IMG_RUN/dhclient.log" 2>&1; then
    [ -s "$IMG_RUN/dhclient.pid" ] && cat "$IMG_RUN/dhclient.pid" >>"$IMG_RUN/pids"
    addr=$(img_ns pc ip -4 -o addr show dev eth0 | awk '{print $4}')
    case "$addr" in 192.0.2.*) ok "pc gets an address from the box's DHCP ($addr, DNS $(cat "$IMG_RUN/pc-dns"))";;
        *) notok "pc gets an address from the box's DHCP" "address '$addr'";; esac
else
    notok "pc gets an address from the box's DHCP" "$(cat "$IMG_RUN/dhclient.log")"
fi
dns=$(cat "$IMG_RUN/pc-dns" 2>/dev/null)
check "DHCP names the box as DNS server" test "$dns" = 192.0.2.1

ans=$(img_ns pc dig +short +time=3 +tries=2 @192.0.2.1 good.test A 2>&1)
if [ "$ans" = 198.18.10.10 ]; then ok "pc resolves good.test through the box"; else notok "pc resolves good.test through the box" "$ans"; fi

# Block a name as the owner would (otasukectl talks to the agent); wait for the compile.
img_guest "otasukectl policy block malware.test" >"$IMG_RUN/block.log" 2>&1 \
    || notok "owner blocks malware.test with otasukectl" "$(cat "$IMG_RUN/block.log")"
blocked=
for i in $(seq 30); do
    out=$(img_ns pc dig +time=2 +tries=1 @192.0.2.1 malware.test A 2>&1)
    if grep -q 'status: NXDOMAIN' <<<"$out" && grep -qi 'EDE' <<<"$out"; then blocked=1; break; fi
    sleep 1
done
if [ -n "$blocked" ]; then ok "malware.test is blocked: NXDOMAIN with an Extended DNS Error"; else notok "malware.test is blocked: NXDOMAIN with an Extended DNS Error" "$out"; fi

hdr=$(img_ns pc curl -sk -o "$IMG_RUN/index.html" -w '%{http_code} %{ssl_verify_result}' --max-time 10 https://192.0.2.1/ 2>&1)
case "$hdr" in 200*) ok "web UI answers over HTTPS on the LAN ($hdr)";; *) notok "web UI answers over HTTPS on the LAN" "$hdr";; esac
fp=$(img_ns pc sh -c 'echo | timeout 5 openssl s_client -connect 192.0.2.1:443 2>/dev/null | openssl x509 -noout -fingerprint -sha256' 2>&1 | cut -d= -f2 | tr -d : | tr A-F a-f)
shown=$(grep -aoE 'SHA-256: [0-9a-fA-F:]+' "$IMG_CONSOLE" | tail -1 | awk '{print $2}' | tr -d : | tr A-F a-f)
if [ -n "$fp" ] && [ "$fp" = "$shown" ]; then ok "HTTPS certificate is the one whose fingerprint the console shows"
else notok "HTTPS certificate is the one whose fingerprint the console shows" "served '$fp' console '$shown'"; fi
wan_closed() {
    local p
    for p in https://198.18.0.2/ http://198.18.0.2/; do
        img_ns wan curl -sk --max-time 3 -o /dev/null "$p" && { echo "$p answers from the WAN"; return 1; }
    done
    img_ns wan dig +time=2 +tries=1 @198.18.0.2 good.test | grep -q "status: NOERROR" && { echo "DNS answers on the WAN"; return 1; }
    return 0
}
if out=$(wan_closed); then ok "nothing answers on the box's WAN address from the internet (443, 80, 53)"
else notok "nothing answers on the box's WAN address from the internet (443, 80, 53)" \
    "$out; $(img_guest 'nft list chain inet otasuke input; journalctl -b -u otasuke-fwd --no-pager | tail -8')"; fi

# ---- signed otasuke updates ----------------------------------------------------------
# A newer otasuke (the installed package with a higher version) is published from the
# fake internet (http://198.18.10.30/otasuke, the test image's otasuke.sources): first
# signed by a key the box does not know (refused), then by the archive key whose public
# half the image carries (offered, then installed by unattended-upgrades).
deb=${IMAGE_DEB:-$(ls -t "$IMG_TOP"/build/deb/otasuke_*.deb 2>/dev/null | head -1)}
cur=$(img_guest "dpkg-query -W -f '\${Version}' otasuke")
new="$cur+upd1"
mkdir -p "$IMG_RUN/pkg" "$IMG_RUN/www" "$IMG_RUN/otherkey"
dpkg-deb -R "$deb" "$IMG_RUN/pkg/x" && sed -i "s/^Version: .*/Version: $new/" "$IMG_RUN/pkg/x/DEBIAN/control" \
    && dpkg-deb -b "$IMG_RUN/pkg/x" "$IMG_RUN/pkg/otasuke_${new}_amd64.deb" >/dev/null \
    || img_die "cannot make the newer package from $deb"
OTASUKE_REPO_DIR=$IMG_RUN/repo-good "$IMG_TOP/image/repo.sh" build "$IMG_RUN/pkg/otasuke_${new}_amd64.deb" >/dev/null \
    || img_die "image/repo.sh build failed"
chmod 0700 "$IMG_RUN/otherkey"
gpg --homedir "$IMG_RUN/otherkey" --batch --quiet --passphrase '' --pinentry-mode loopback \
    --quick-generate-key "not the otasuke archive key" ed25519 sign 1d 2>/dev/null
OTASUKE_REPO_GNUPGHOME=$IMG_RUN/otherkey OTASUKE_REPO_DIR=$IMG_RUN/repo-bad \
    OTASUKE_REPO_KEYRING=$IMG_RUN/other.gpg "$IMG_TOP/image/repo.sh" build "$IMG_RUN/pkg/otasuke_${new}_amd64.deb" >/dev/null \
    || img_die "image/repo.sh build (other key) failed"
gpgconf --homedir "$IMG_RUN/otherkey" --kill gpg-agent 2>/dev/null
ip -n "$IMG_ID-wan" addr add 198.18.10.30/32 dev lo
img_ns wan python3 -m http.server --bind 198.18.10.30 80 --directory "$IMG_RUN/www" >"$IMG_RUN/repo-http.log" 2>&1 &
echo $! >>"$IMG_RUN/pids"
# only the otasuke source: Debian's mirrors are not on the fake internet
upd="apt-get update -o Dir::Etc::SourceList=/dev/null 2>&1; echo rc=\$?"
cand="apt-cache policy otasuke | awk '/Candidate:/{print \$2}'"

ln -sfn "$IMG_RUN/repo-bad" "$IMG_RUN/www/otasuke"
out=$(img_guest --timeout 120 "$upd; $cand")
if grep -qE 'NO_PUBKEY|not signed|could not be verified|couldn.t be verified' <<<"$out" && [ "$(tail -1 <<<"$out")" = "$cur" ]; then
    ok "repository signed by another key is refused (candidate stays $cur)"
else notok "repository signed by another key is refused" "$out"; fi

ln -sfn "$IMG_RUN/repo-good" "$IMG_RUN/www/otasuke"
out=$(img_guest --timeout 120 "$upd; $cand")
if grep -q '^rc=0$' <<<"$out" && [ "$(tail -1 <<<"$out")" = "$new" ]; then
    ok "signed otasuke repository offers the newer version ($new)"
else notok "signed otasuke repository offers the newer version ($new)" "$out"; fi
out=$(img_guest --timeout 600 "unattended-upgrade 2>&1 | tail -5; dpkg-query -W -f '\${Version}\n' otasuke")
if [ "$(tail -1 <<<"$out")" = "$new" ]; then ok "unattended-upgrades installs it (origin otasuke)"
else notok "unattended-upgrades installs it (origin otasuke)" "$out
$(img_guest 'tail -20 /var/log/unattended-upgrades/unattended-upgrades.log')"; fi

echo "# boot test: $(( $(date +%s) - t0 )) s ($(img_accel))"
echo "1..$n"
[ $failed = 0 ]
