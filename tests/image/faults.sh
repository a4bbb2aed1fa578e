#!/bin/bash
# tests/image/faults.sh — fault tests on the booted test image (make image-faults). TAP.
#
#  1. power loss during a feed update: the box is switched off (qemu SIGKILL) at a
#     random moment 0-15 s after (fetch + compile take ~15 s under TCG) a large blocklist is replaced by another; after each
#     reboot it must filter (good.test answers, the owner's block holds), its compiled
#     set must open (checksum) and hold exactly the old or exactly the new list, and
#     agent.db must pass PRAGMA integrity_check.
#  2. power loss during a firewall apply: same around an owner IP block/unblock; after
#     reboot the kernel's table inet otasuke must exist and agree with fw.set.
#  3. disk full: the data partition is filled; a feed update must be refused with a
#     clear message, the last good set kept, agent.db intact; after freeing space the
#     update applies.
# FAULT_ROUNDS (default 3) power cuts per scenario.
set -uo pipefail
. "$(dirname "$0")/../../image/test/lib.sh"
trap img_down EXIT
trap 'exit 130' INT TERM
ROUNDS=${FAULT_ROUNDS:-3}
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
set_version() {
    local out a b
    out=$(img_guest "otasukectl set lookup --enable malware /var/lib/otasuke/domains.set $NAME_A $NAME_B") || { echo "unreadable: $out"; return 1; }
    a=$(grep -F "$NAME_A" <<<"$out" | grep -ci block); b=$(grep -F "$NAME_B" <<<"$out" | grep -ci block)
    case "$a$b" in 10) echo A;; 01) echo B;; 00) echo none;; *) echo "both: $out";; esac
}
db_ok() {
    img_guest "python3 -c \"import sqlite3;c=sqlite3.connect('file:/var/lib/otasuke/agent.db?mode=ro',uri=True);print(c.execute('PRAGMA integrity_check').fetchone()[0])\"" | grep -qx ok
}
wait_version() {   # WANT SECONDS
    local i v
    for i in $(seq "$2"); do v=$(set_version); [ "$v" = "$1" ] && return 0; sleep 1; done
    echo "set holds '$v', want $1"; return 1
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
}

# ---- first boot and a known state: owner block + list A -----------------------------
boot "first" || exit 1
img_guest "otasukectl policy block malware.test" >/dev/null || notok "owner block rule"
publish "$LIST_A"
check "feed list added (list A)" img_guest "otasukectl feed add-list big http://198.18.10.10/list.txt --category malware"
check "list A compiled into the set" wait_version A 120

# ---- 1. power loss during a feed update --------------------------------------------
cur=A
for r in $(seq "$ROUNDS"); do
    next=$([ "$cur" = A ] && echo B || echo A)
    publish "$([ "$next" = A ] && echo "$LIST_A" || echo "$LIST_B")"
    img_guest "otasukectl feed refresh big" >/dev/null
    delay=$(awk -v s="$RANDOM" 'BEGIN{srand(s); printf "%.2f", rand()*15}')
    sleep "$delay"
    img_vm_kill
    img_log "feed round $r: power cut ${delay}s after refresh ($cur -> $next)"
    boot "feed round $r" || exit 1
    after_power_loss "feed update power cut $r (${delay}s)" "$cur" "$next"
    # let it settle on the new list (the agent refetches) before the next round
    img_guest "otasukectl feed refresh big" >/dev/null
    wait_version "$next" 120 >/dev/null && cur=$next
done

# ---- 2. power loss during a firewall apply -----------------------------------------
IP=198.18.10.20
fw_agree() {
    local in_set in_nft
    img_guest "nft list table inet otasuke >/dev/null" || { echo "table inet otasuke missing"; return 1; }
    in_set=$(img_guest "otasukectl fw show /var/lib/otasuke/fw.set" | grep -c "$IP")
    in_nft=$(img_guest "nft list table inet otasuke" | grep -c "$IP")
    [ $((in_set > 0)) = $((in_nft > 0)) ] || { echo "fw.set mentions $IP $in_set times, the kernel $in_nft times"; return 1; }
}
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        img_guest "otasukectl policy block $IP" >/dev/null
    else
        id=$(img_guest "otasukectl policy rules" | grep -F "$IP" | awk '{print $1}' | head -1)
        img_guest "otasukectl policy rm-rule $id" >/dev/null
    fi
    delay=$(awk -v s="$RANDOM" 'BEGIN{srand(s); printf "%.2f", rand()*1.5}')
    sleep "$delay"
    img_vm_kill
    img_log "firewall round $r: power cut ${delay}s after the rule change"
    boot "firewall round $r" || exit 1
    check "firewall power cut $r (${delay}s): table inet otasuke loaded and equal to fw.set" fw_agree
    if db_ok; then ok "firewall power cut $r: agent.db integrity_check ok"; else notok "firewall power cut $r: agent.db integrity_check ok"; fi
done

# ---- 3. disk full ---------------------------------------------------------------------
have=$(set_version)
case "$have" in A|B) ;; *) notok "disk full: a known list before the test" "$have"; exit 1;; esac
next=$([ "$have" = A ] && echo B || echo A)
img_guest "fallocate -l \$(( \$(df --output=avail -B1 /var/lib/otasuke | tail -1) - 4096 )) /var/lib/otasuke/filler || dd if=/dev/zero of=/var/lib/otasuke/filler bs=1M 2>/dev/null; df -h /var/lib/otasuke" >"$IMG_RUN/df.log"
img_log "disk full: $(tail -1 "$IMG_RUN/df.log")"
publish "$([ "$next" = A ] && echo "$LIST_A" || echo "$LIST_B")"
img_guest "otasukectl feed refresh big" >/dev/null
sleep 15
check "disk full: the last good set is kept ($have)" wait_version "$have" 5
st=$(img_guest "otasukectl status; otasukectl feed list; journalctl -b -u otasuke-agent --no-pager | tail -20")
if grep -qiE 'no space|disk full|ENOSPC' <<<"$st"; then ok "disk full: the agent says so (status/feed/journal)"
else notok "disk full: the agent says so (status/feed/journal)" "$st"; fi
if db_ok; then ok "disk full: agent.db integrity_check ok"; else notok "disk full: agent.db integrity_check ok"; fi
s=$(dns_status malware.test)
if [ "$s" = "status: NXDOMAIN" ]; then ok "disk full: the box still filters"; else notok "disk full: the box still filters" "$s"; fi
img_guest "rm -f /var/lib/otasuke/filler && otasukectl feed refresh big" >/dev/null
check "disk freed: the update applies ($next)" wait_version "$next" 120

img_log "fault tests: $(( $(date +%s) - t0 )) s"
echo "1..$n"
[ $failed = 0 ]
