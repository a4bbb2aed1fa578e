#!/usr/bin/env bash
# `make run`: the virtual office with every otasuke daemon built so far, until Ctrl-C.
#
# Brings an office up (tests/lib/office.sh), starts each daemon found in build/bin in
# the box, prints what runs and how to try it, then waits. Ctrl-C (or TERM) takes the
# whole office down, daemons included. A daemon that dies is reported once; the office
# stays up so its log can be read.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
if [ "$(id -u)" -ne 0 ]; then
    echo "make run: needs root for network namespaces (try: sudo make run)" >&2
    exit 1
fi

REPO=$PWD
OFFICE=$REPO/tests/lib/office.sh
BIN=$REPO/${BIN:-build/bin}
export OFFICE_OWNER=$$
unset OFFICE_ID

names=()        # daemons started here, for the watch loop
hints=()        # lines for "try it"

# office.sh start + wait until NODE gets an answer for NAME from SERVER; on failure
# show the daemon's log and stop (the EXIT trap takes the office down).
start_daemon() {   # name node cmd...
    local name=$1
    "$OFFICE" start "$@" >/dev/null || exit 1
    names+=("$name")
}
wait_dns() {   # name node server qname
    local i pid
    pid=$(cut -d' ' -f1 "$OFFICE_RUN/pids/$1.pid")
    for ((i = 0; i < 200; i++)); do
        [ -n "$("$OFFICE" exec "$2" dig +short +time=1 +tries=1 "@$3" "$4" 2>/dev/null)" ] && return 0
        if [ ! -e "/proc/$pid" ]; then
            echo "make run: $1 exited at start; its log ($OFFICE_RUN/logs/$1.log):" >&2
            tail -n 20 "$OFFICE_RUN/logs/$1.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "make run: $1 does not answer $4 on $3 after 10 s; see $OFFICE_RUN/logs/$1.log" >&2
    exit 1
}

dns=unbound
[ -x "$BIN/otasuke-dnsd" ] && dns=none
t0=$EPOCHREALTIME
out=$("$OFFICE" up --dns=$dns) || exit 1
OFFICE_ID=${out##*OFFICE_ID=}
export OFFICE_ID
OFFICE_RUN=/run/otasuke-office/$OFFICE_ID

stopping=0
teardown() {
    [ $stopping = 1 ] && return
    stopping=1
    trap '' INT TERM
    echo
    echo "make run: stopping office $OFFICE_ID"
    "$OFFICE" down "$OFFICE_ID"
}
trap 'exit 0' INT TERM
trap teardown EXIT

# ---- otasuke daemons ----------------------------------------------------------------
# Add each daemon here when its binary exists: start_daemon NAME NODE CMD..., then wait
# until it serves, then a hint line or two.

if [ -x "$BIN/otasuke-dnsd" ]; then
    args=(-f --listen 192.0.2.1:53 --listen 203.0.113.1:53 --listen 198.51.100.1:53
          --listen '[fd00:0:0:1::1]:53' --upstream 127.0.0.1:5335)
    demo=${OTASUKE_DEMO_DOMAINS:-$REPO/build/demo/domains.set}
    [ -r "$demo" ] && args+=(--domains "$demo")
    start_daemon dnsd box "$BIN/otasuke-dnsd" "${args[@]}"
    wait_dns dnsd pc 192.0.2.1 good.test
    hints+=("DNS filter:   sudo tests/lib/office.sh exec pc dig good.test    (otasuke-dnsd on box:53)")
else
    hints+=("DNS:          sudo tests/lib/office.sh exec pc dig good.test    (box unbound on :53; no otasuke-dnsd built yet)")
fi

# (firewall, agent, web UI, hub: start them here as they land.)
[ -x "$BIN/otasuke-fwd" ] && start_daemon fwd box "$REPO/services/firewall/office-fwd.sh" "$OFFICE_RUN" "$BIN" && hints+=("Firewall:     sudo tests/lib/office.sh exec box nft -t list ruleset    (otasuke-fwd owns table inet otasuke; DHCP by dnsmasq)")

# ---- tell, then wait ----------------------------------------------------------------
secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
cat <<EOF

The virtual office $OFFICE_ID is up ($secs s). Running:
$("$OFFICE" status | sed 's/^/  /')

Try it from another terminal (with several offices up, add OFFICE_ID=$OFFICE_ID after sudo):
$(printf '  %s\n' "${hints[@]}")
  Web:          sudo tests/lib/office.sh exec pc curl -s http://good.test/
  Direct DNS:   sudo tests/lib/office.sh exec pc dig @198.18.8.8 whoami.test TXT   ("wan-resolver" = not intercepted)
  A shell:      sudo tests/lib/office.sh exec pc bash     (nodes: box pc iot guest wan hub)
  Logs:         $OFFICE_RUN/logs/

Ctrl-C stops everything.
EOF

declare -A reported=()
while :; do
    sleep 1 &
    wait $! 2>/dev/null
    for n in "${names[@]}"; do
        [ -n "${reported[$n]:-}" ] && continue
        pid=$(cut -d' ' -f1 "$OFFICE_RUN/pids/$n.pid" 2>/dev/null) || continue
        if [ ! -e "/proc/$pid" ] || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
            echo "make run: $n exited; last lines of $OFFICE_RUN/logs/$n.log:" >&2
            tail -n 10 "$OFFICE_RUN/logs/$n.log" >&2
            reported[$n]=1
        fi
    done
done
