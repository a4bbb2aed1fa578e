#!/bin/bash
# tests/image/faults.sh — fault tests on the booted test image (make image-faults). TAP.
#
#  1. power loss during a feed update: a large blocklist is replaced by another and the
#     agent is stopped at an exact point of its compile (image/test/faultpoint.c, test
#     image only): before the rename of domains.set (the new set complete and fsynced
#     as domains.set.tmp.*), and just after it (directory not yet fsynced); then the
#     power is cut (qemu SIGKILL). After each reboot the box must filter (good.test
#     answers, the owner's block holds), its compiled set must open (checksum) and hold
#     exactly the old list (before the rename) or one whole list (after it), and
#     agent.db must pass PRAGMA integrity_check.
#  2. power loss during a firewall apply, around an address feed gaining or losing
#     198.18.10.20 (fw.set's addresses come from feeds; owner rules are DNS): the agent
#     stopped before the rename of fw.set; fwd stopped before it sends the nftables
#     batch and just after the kernel applied it. After reboot the kernel's table inet
#     otasuke must exist and agree with fw.set (and fw.set is the old one when the
#     agent stopped before its rename).
#  3. disk full: the data partition is filled; a feed update must be refused with a
#     clear message, the last good set kept, agent.db intact; after freeing space the
#     update applies.
# Every run tests the same windows: the test waits until the process reports it has
# stopped at the point (/run/otasuke/fault-hit) and only then cuts the power.
# FAULT_FEED_POINTS / FAULT_FW_POINTS choose the points (default: all of them).
set -uo pipefail
. "$(dirname "$0")/../../image/test/lib.sh"
trap img_down EXIT
trap 'exit 130' INT TERM
FEED_POINTS=${FAULT_FEED_POINTS-before-rename:domains.set after-rename:domains.set}
FW_POINTS=${FAULT_FW_POINTS-before-rename:fw.set before-commit after-commit}
BOOT_LIMIT=180
[ "$(img_accel)" = kvm ] || BOOT_LIMIT=900
DATA=${OTASUKE_DATA:-/work/shared/data}
n=0 failed=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
notok(){ n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | head -30 | sed 's/^/# /'; }
check(){ local name=$1; shift; local out; if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$out"; fi; }

LIST_A=$DATA/blocklists/stevenblack.domains.txt
LIST_B=$DATA/blocklists/hagezi-light.domains.txt
[ -r "$LIST_A" ] && [ -r "$LIST_B" ] || img_die "test lists missing under $DATA/blocklists"
t0=$(date +%s)
img_net_up
# A name only in list A and one only in list B — and no parent domain of it in the
# other list either (a listed name covers its subdomains): which of them the set
# blocks tells which list version it holds.
read -r NAME_A NAME_B < <(python3 - "$LIST_A" "$LIST_B" <<'PY'
import sys
def load(p):
    return {l.strip() for l in open(p) if l.strip() and not l.startswith('#')}
a, b = load(sys.argv[1]), load(sys.argv[2])
def covered(n, s):
    parts = n.split('.')
    return any('.'.join(parts[i:]) in s for i in range(len(parts)))
pa = sorted(n for n in a - b if not covered(n, b))[1000]
pb = sorted(n for n in b - a if not covered(n, a))[1000]
print(pa, pb)
PY
)
img_log "list A $(basename "$LIST_A") probe $NAME_A; list B $(basename "$LIST_B") probe $NAME_B"

# the feed server of the fake internet
mkdir -p "$IMG_RUN/www"
ip -n "$IMG_ID-wan" addr add 198.18.10.10/32 dev lo
img_ns wan python3 -m http.server --bind 198.18.10.10 80 --directory "$IMG_RUN/www" \
    >"$IMG_RUN/http.log" 2>&1 &
echo $! >>"$IMG_RUN/pids"
publish() { cp "$1" "$IMG_RUN/www/list.txt.tmp" && mv "$IMG_RUN/www/list.txt.tmp" "$IMG_RUN/www/list.txt"; }
# the pc: fixed address, so no DHCP is needed after each reboot
ip -n "$IMG_ID-pc" addr add 192.0.2.10/24 dev eth0

boot() {
    img_vm_start
    img_wait_console 'otasuke: (ready|DNS filter not|web UI not|firewall not)' "$BOOT_LIMIT" && img_wait_console 'otasuke: ready' 1 || { notok "box boots ($1)" "$(tail -30 "$IMG_CONSOLE")"; return 1; }
    img_guest --wait 60 >/dev/null || { notok "test shell answers ($1)"; return 1; }
}
dns_status() { img_ns pc dig +time=2 +tries=2 @192.0.2.1 "$1" A 2>&1 | grep -oE 'status: [A-Z]+' | head -1; }
# Which list version the compiled set holds: "A", "B", "none" or "both" (inconsistent).
set_version() {   # [SET FILE]
    local out a b f=${1:-/var/lib/otasuke/domains.set}
    out=$(img_guest "otasukectl set lookup --enable malware $f $NAME_A $NAME_B") || { echo "unreadable: $out"; return 1; }
    a=$(grep -F "$NAME_A" <<<"$out" | grep -ci block); b=$(grep -F "$NAME_B" <<<"$out" | grep -ci block)
    case "$a$b" in 10) echo A;; 01) echo B;; 00) echo none;; *) echo "both: $out";; esac
}
db_ok() {
    img_guest "python3 -c \"import sqlite3;c=sqlite3.connect('file:/var/lib/otasuke/agent.db?mode=ro',uri=True);print(c.execute('PRAGMA integrity_check').fetchone()[0])\"" | grep -qx ok
}
# Which list the agent's database holds for the feed: A, B, none or both.
db_version() {
    local out
    out=$(img_guest "python3 -c \"import sqlite3;c=sqlite3.connect('file:/var/lib/otasuke/agent.db?mode=ro',uri=True);q='SELECT count(*) FROM feed_entries WHERE indicator=?';print(c.execute(q,('$NAME_A',)).fetchone()[0],c.execute(q,('$NAME_B',)).fetchone()[0])\"")
    case "$out" in "1 0") echo A;; "0 1") echo B;; "0 0") echo none;; *) echo "both: $out";; esac
}
wait_version() {   # WANT SECONDS
    local i v
    for i in $(seq "$2"); do v=$(set_version); [ "$v" = "$1" ] && return 0; sleep 1; done
    echo "set holds '$v', want $1"; return 1
}
# quiet: waits until the agent has compiled everything it was asked to (the journal's
# count of "compiled:" lines the same 5 s apart), so no compile still in flight meets
# the next stop point.
quiet() {
    local a b i cnt="journalctl -b -u otasuke-agent --no-pager | grep -c 'compiled:'"
    for i in $(seq 40); do
        a=$(img_guest "$cnt")
        sleep 5
        b=$(img_guest "$cnt")
        [ -n "$a" ] && [ "$a" = "$b" ] && return 0
    done
    img_log "the agent kept compiling for 4 min; going on"
}
# arm POINT [FILE]: the next time the agent or fwd reaches POINT it stops there.
arm() { img_guest "mkdir -p /run/otasuke-fault && rm -f /run/otasuke/fault-hit && echo '$*' >/run/otasuke-fault/arm"; }
# wait_hit: prints the stop line ("POINT OLD -> NEW") once a process has stopped there.
wait_hit() {
    img_guest --timeout 620 "end=\$((\$(date +%s) + 600)); while [ \$(date +%s) -lt \$end ]; do [ -e /run/otasuke/fault-hit ] && { cat /run/otasuke/fault-hit; exit 0; }; sleep 0.2; done; exit 1"
}
stale_tmp() {   # temporary files a stopped writer left: the agent sweeps them at start
    local t
    t=$(img_guest "ls /var/lib/otasuke/ | grep -F '.tmp.'")
    if [ -z "$t" ]; then ok "$1: no temporary file left over"
    else notok "$1: no temporary file left over" "$(echo $t)"; fi
}
# fs_checked LABEL: after a power cut both file systems were checked before use: root by
# the initramfs (its stamp /run/initramfs/fsck-root), the data partition by
# systemd-fsck@ (fstab pass 2), and neither check failed.
fs_checked() {
    local out
    out=$(img_guest "test -e /run/initramfs/fsck-root && echo root-checked; for u in \$(systemctl list-units --all --plain --no-legend 'systemd-fsck@*' | cut -d' ' -f1); do systemctl show -p Result --value \$u; done")
    if grep -qx root-checked <<<"$out" && grep -qx success <<<"$out" && ! grep -qvxE 'root-checked|success' <<<"$out"; then
        ok "$1: root and data file systems checked at boot (fsck)"
    else notok "$1: root and data file systems checked at boot (fsck)" "$out $(img_guest 'cat /run/initramfs/fsck.log 2>&1 | tail -5')"; fi
}
after_power_loss() {   # LABEL ALLOWED_VERSIONS...
    local label=$1; shift
    local v s1 s2
    s1=$(dns_status good.test); s2=$(dns_status malware.test)
    if [ "$s1" = "status: NOERROR" ] && [ "$s2" = "status: NXDOMAIN" ]; then ok "$label: box filters after reboot"
    else notok "$label: box filters after reboot" "good.test: $s1; malware.test: $s2"; fi
    v=$(set_version)
    case " $* " in *" $v "*) ok "$label: compiled set opens and holds one whole list ($v)";;
        *) notok "$label: compiled set opens and holds one whole list" "$v";; esac
    if db_ok; then ok "$label: agent.db integrity_check ok"; else notok "$label: agent.db integrity_check ok"; fi
    fs_checked "$label"
}

# ---- first boot and a known state: owner block + list A -----------------------------
boot "first" || exit 1
img_guest "otasukectl policy block malware.test" >/dev/null || notok "owner block rule"
publish "$LIST_A"
check "feed list added (list A)" img_guest "otasukectl feed add-list big http://198.18.10.10/list.txt --category malware"
check "list A compiled into the set" wait_version A 120

# ---- 1. power loss during a feed update --------------------------------------------
cur=A
for p in $FEED_POINTS; do
    point=${p%%:*} file=${p#*:}
    next=$([ "$cur" = A ] && echo B || echo A)
    quiet
    arm "$point" "$file"
    publish "$([ "$next" = A ] && echo "$LIST_A" || echo "$LIST_B")"
    # in the background inside the box: the agent may stop before it answers
    img_guest "(otasukectl feed refresh big >/dev/null 2>&1 &)" >/dev/null
    if ! hit=$(wait_hit); then
        notok "feed: the agent reaches $point $file" "$(img_guest 'journalctl -b -u otasuke-agent --no-pager | tail -15')"; exit 1
    fi
    img_log "feed: stopped at: $hit"
    # the window: before the rename the new list waits complete in the temporary file and
    # dnsd's set is still the old one; after it the set is the new one
    if [ "$point" = before-rename ]; then
        tmp=$(awk '{print $2}' <<<"$hit")
        v=$(set_version "$tmp") live=$(set_version)
        if [ "$v" = "$next" ] && [ "$live" = "$cur" ]; then ok "feed $point $file: stopped with the new list ($next) complete in $(basename "$tmp"), the set still $cur"
        else notok "feed $point $file: stopped with the new list complete in the temporary file, the set still old" "$(basename "$tmp") holds '$v' (want $next), domains.set '$live' (want $cur)"; fi
    else
        live=$(set_version)
        if [ "$live" = "$next" ]; then ok "feed $point $file: stopped with the new list ($next) in place"
        else notok "feed $point $file: stopped with the new list in place" "domains.set holds '$live', want $next"; fi
    fi
    img_vm_kill
    img_log "feed: power cut at $point $file ($cur -> $next)"
    boot "feed $point" || exit 1
    after_power_loss "feed update, power cut $point $file" "$cur" "$next"
    # the agent compiles again at start: the set must be what its database holds (the
    # feed's new entries were committed before the compile, unless the cut lost them)
    v=$(set_version) d=$(db_version)
    if [ "$v" = "$d" ]; then ok "feed $point $file: after the reboot the set agrees with agent.db ($v)"
    else notok "feed $point $file: after the reboot the set agrees with agent.db" "set '$v', agent.db '$d'"; fi
    stale_tmp "feed $point $file"
    # settle on the new list before the next round: the refresh must have finished (and
    # its compile with it), or that compile would be the one to reach the next stop point
    img_guest --timeout 400 "otasukectl feed refresh big" >/dev/null
    wait_version "$next" 120 >/dev/null && cur=$next
    quiet
done

# ---- 2. power loss during a firewall apply -----------------------------------------
IP=198.18.10.20
IP_LE=140a12c6 IP_NE=c6120a14
fw_agree() {
    local in_set in_nft
    img_guest "nft list table inet otasuke >/dev/null" || { echo "table inet otasuke missing"; return 1; }
    in_set=$(fw_has_ip)
    in_nft=$([ "$(img_guest "nft list table inet otasuke" | grep -c "$IP")" -gt 0 ] && echo yes || echo no)
    [ "$in_set" = "$in_nft" ] || { echo "$IP in fw.set: $in_set; in the kernel: $in_nft"; return 1; }
}
# fw show prints element counts: the feed's blocked addresses are 198.18.10.99 (always)
# and $IP (when published), not adjacent, so two elements mean $IP is in (FILE).
fw_blocked() {
    img_guest "otasukectl fw show ${1:-/var/lib/otasuke/fw.set}" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(s["elements"] for s in d["sets"] if s["kind"]=="block"))'
}
fw_has_ip() { [ "$(fw_blocked "${1:-}")" -ge 2 ] 2>/dev/null && echo yes || echo no; }
db_has_ip() { [ "$(img_guest "python3 -c \"import sqlite3;c=sqlite3.connect('file:/var/lib/otasuke/agent.db?mode=ro',uri=True);print(c.execute('SELECT count(*) FROM feed_entries WHERE indicator=?',('$IP',)).fetchone()[0])\"")" -gt 0 ] && echo yes || echo no; }
# fw.set's addresses come from feeds (owner rules are DNS patterns): a signed feed on
# the fake internet (otasukectl feed build, a key made for this run) that holds $IP or
# not; 198.18.10.99 is always in it. Each publication is a new snapshot (seq + 1).
"$IMG_TOP/build/bin/otasukectl" feed keygen -o "$IMG_RUN/fk" >/dev/null || img_die "otasukectl feed keygen failed (make first)"
IPS_SEQ=0
publish_ips() {
    IPS_SEQ=$((IPS_SEQ + 1))
    { echo "198.18.10.99 malware block"; [ "$1" = yes ] && echo "$IP malware block"; } >"$IMG_RUN/ips.entries"
    mkdir -p "$IMG_RUN/ips.new"
    "$IMG_TOP/build/bin/otasukectl" feed build --key "$IMG_RUN/fk.key" --feed ips --seq "$IPS_SEQ" \
        -o "$IMG_RUN/ips.new/ips.json" "$IMG_RUN/ips.entries" >/dev/null || img_die "otasukectl feed build failed"
    mv "$IMG_RUN/ips.new/ips.json.sig" "$IMG_RUN/www/ips.json.sig" && mv "$IMG_RUN/ips.new/ips.json" "$IMG_RUN/www/ips.json"
}
publish_ips no
img_guest "otasukectl feed add ips http://198.18.10.10/ips.json --feed-id ips --pubkey $(cat "$IMG_RUN/fk.pub")" >/dev/null
have=no
for _ in $(seq 60); do
    [ "$(fw_blocked)" -ge 1 ] 2>/dev/null && { have=yes; break; }
    sleep 2
done
if [ $have = yes ]; then ok "address feed compiled into fw.set"
else notok "address feed compiled into fw.set" "$(img_guest 'otasukectl feed list; otasukectl fw show /var/lib/otasuke/fw.set | head')"; FW_POINTS=; fi
blocked=no
for p in $FW_POINTS; do
    point=${p%%:*} file=
    case "$p" in *:*) file=${p#*:};; esac
    quiet
    before=$(fw_has_ip)
    # only the compile / batch that carries this change may take the stop: fw.set holds
    # IPv4 in host order (14 0a 12 c6), nftables batches in network order
    case "$point:$blocked" in
        *-rename:no) cond="with $IP_LE" ;;
        *-rename:yes) cond="without $IP_LE" ;;
        *) cond="with $IP_NE" ;;
    esac
    arm "$point" $file $cond
    publish_ips "$([ "$blocked" = no ] && echo yes || echo no)"
    img_guest "(otasukectl feed refresh ips >/dev/null 2>&1 &)" >/dev/null
    if ! hit=$(wait_hit); then
        notok "firewall: $point $file reached" "$(img_guest 'journalctl -b -u otasuke-agent -u otasuke-fwd --no-pager | tail -15')"; exit 1
    fi
    img_log "firewall: stopped at: $hit"
    want=$([ "$blocked" = no ] && echo yes || echo no)
    in_kernel() { [ "$(img_guest "nft list table inet otasuke" | grep -c "$IP")" -gt 0 ] && echo yes || echo no; }
    case "$point" in
        before-rename)
            tmp=$(awk '{print $2}' <<<"$hit")
            t=$(fw_has_ip "$tmp")
            l=$(fw_has_ip)
            if [ "$t" = "$want" ] && [ "$l" = "$before" ]; then ok "firewall $point $file: stopped with the change in $(basename "$tmp"), fw.set still old"
            else notok "firewall $point $file: stopped with the change in the temporary file, fw.set still old" "$IP in $(basename "$tmp"): $t (want $want); in fw.set: $l (want $before)"; fi ;;
        before-commit)
            k=$(in_kernel) l=$(fw_has_ip)
            if [ "$l" = "$want" ] && [ "$k" = "$before" ]; then ok "firewall $point: stopped with fw.set new and the kernel's table still old"
            else notok "firewall $point: stopped with fw.set new and the kernel's table still old" "$IP in fw.set: $l (want $want); in the kernel: $k (want $before)"; fi ;;
        after-commit)
            k=$(in_kernel)
            if [ "$k" = "$want" ]; then ok "firewall $point: stopped with the change in the kernel"
            else notok "firewall $point: stopped with the change in the kernel" "$IP in the kernel: $k (want $want)"; fi ;;
    esac
    img_vm_kill
    img_log "firewall: power cut at $point $file ($IP $([ $blocked = no ] && echo added to || echo removed from) the address feed)"
    boot "firewall $point" || exit 1
    fs_checked "firewall power cut $point $file"
    check "firewall power cut $point $file: table inet otasuke loaded and equal to fw.set" fw_agree
    # recompiled at start: fw.set follows the feed entries in agent.db
    r=$(db_has_ip)
    l=$(fw_has_ip)
    if [ "$r" = "$l" ]; then ok "firewall power cut $point $file: fw.set agrees with agent.db ($IP: $l)"
    else notok "firewall power cut $point $file: fw.set agrees with agent.db" "$IP in agent.db: $r; in fw.set: $l"; fi
    if db_ok; then ok "firewall power cut $point: agent.db integrity_check ok"; else notok "firewall power cut $point: agent.db integrity_check ok"; fi
    blocked=$r   # the next round changes the rule the other way
done

# ---- 3. disk full ---------------------------------------------------------------------
have=$(set_version)
case "$have" in A|B) ;; *) notok "disk full: a known list before the test" "$have"; exit 1;; esac
next=$([ "$have" = A ] && echo B || echo A)
img_guest "fallocate -l \$(( \$(df --output=avail -B1 /var/lib/otasuke | tail -1) - 4096 )) /var/lib/otasuke/filler || dd if=/dev/zero of=/var/lib/otasuke/filler bs=1M 2>/dev/null; df -h /var/lib/otasuke" >"$IMG_RUN/df.log"
img_log "disk full: $(tail -1 "$IMG_RUN/df.log")"
publish "$([ "$next" = A ] && echo "$LIST_A" || echo "$LIST_B")"
# the refresh's own answer counts too (the agent may be unable to record the failure)
rr=$(img_guest --timeout 300 "otasukectl feed refresh big" 2>&1)
# the fetch, parse and database write of ~130k names take a minute or more under TCG:
# wait for the agent's word instead of a fixed delay
said=no
for _ in $(seq 60); do
    st=$(printf '%s\n' "$rr"; img_guest "otasukectl status; otasukectl feed list; journalctl -b -u otasuke-agent --no-pager | tail -20")
    grep -qiE 'no space|disk full|ENOSPC' <<<"$st" && { said=yes; break; }
    sleep 3
done
check "disk full: the last good set is kept ($have)" wait_version "$have" 5
# The agent names the cause ("No space left on device ... the disk is full") in the
# refresh's answer, the feed's last error and its log (fixed 27 Nov, bc54667).
if [ $said = yes ]; then ok "disk full: the agent says so (status/feed/journal)"
else
    notok "disk full: the agent says so (status/feed/journal)" "$(printf '%s\n' "$st" | head -12)"
fi
if db_ok; then ok "disk full: agent.db integrity_check ok"; else notok "disk full: agent.db integrity_check ok"; fi
s=$(dns_status malware.test)
if [ "$s" = "status: NXDOMAIN" ]; then ok "disk full: the box still filters"; else notok "disk full: the box still filters" "$s"; fi
img_guest "rm -f /var/lib/otasuke/filler && otasukectl feed refresh big" >/dev/null
check "disk freed: the update applies ($next)" wait_version "$next" 120

img_log "fault tests: $(( $(date +%s) - t0 )) s"
echo "1..$n"
[ $failed = 0 ]
