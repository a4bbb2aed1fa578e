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
    [ -n "${socat_pid:-}" ] && kill "$socat_pid" 2>/dev/null
    [ -n "${socat_hub_pid:-}" ] && kill "$socat_hub_pid" 2>/dev/null
    "$OFFICE" down "$OFFICE_ID"
}
trap 'exit 0' INT TERM
trap teardown EXIT

# ---- otasuke daemons ----------------------------------------------------------------
# The whole box, started the way its units start it: the agent compiles the owner's
# policy and the subscribed lists into domains.set, policy.set and fw.set; dnsd and fwd
# load them; webd serves the owner UI and the block page. State lives in the run dir.
# A daemon that is not built yet is left out, and the hints say what runs instead.
ST=$OFFICE_RUN/state
mkdir -p "$ST/fwd"
# shellcheck disable=SC1091
. "$OFFICE_RUN/office.env"
cat >"$ST/otasuke.conf" <<CONF
box: { name = "office-$OFFICE_ID"; };
zones = (
    { name = "wan";   interface = "$OFFICE_IF_BOX_WAN"; },
    { name = "lan";   interface = "$OFFICE_IF_BOX_LAN"; addresses = [ "192.0.2.1/24", "fd00:0:0:1::1/64" ];
      group = "staff"; dhcp = true; },
    { name = "guest"; interface = "$OFFICE_IF_BOX_GUEST"; addresses = [ "203.0.113.1/24", "fd00:0:0:2::1/64" ];
      group = "guests"; dhcp = true; },
    { name = "iot";   interface = "$OFFICE_IF_BOX_IOT"; addresses = [ "198.51.100.1/24", "fd00:0:0:3::1/64" ];
      group = "iot"; dhcp = true; }
);
firewall: { nflog_group = 7; };
CONF
CTL=("$BIN/otasukectl")
export OTASUKE_AGENT_SOCKET=$ST/agent.sock
have() { [ -x "$BIN/$1" ]; }

# ---- the hub (what an MSP runs), in the hub namespace --------------------------------
# mosquitto + otasuke-hubd on 198.18.1.10, one organisation, this box enrolled with a
# one-time code the way `otasukectl hub enroll` does it on a real box. The MSP console is
# forwarded to this machine's loopback like the owner UI.
HUBDIR=$OFFICE_RUN/hub
hub_args=()
if have otasuke-hubd && command -v mosquitto >/dev/null; then
    mkdir -p "$HUBDIR" && chmod 711 "$HUBDIR"   # the broker (user mosquitto) reads its files here
    hubadm() { "$BIN/otasuke-hubd" -d "$HUBDIR" admin "$@"; }
    hubadm tls --hosts "198.18.1.10,127.0.0.1" >/dev/null &&
        hubadm org add demo-office >/dev/null || { echo "make run: hub set-up failed" >&2; exit 1; }
    start_daemon mqtt hub "$REPO/services/hub/mosquitto/start.sh" "$HUBDIR" \
        --local 127.0.0.1:1883 --tls 198.18.1.10:8883 --hubd "$BIN/otasuke-hubd"
    console_opt=()
    "$BIN/otasuke-hubd" --help 2>&1 | grep -q -- '--console' && console_opt=(--console "$REPO/build/webui/console")
    start_daemon hubd hub "$BIN/otasuke-hubd" -f -d "$HUBDIR" -l 198.18.1.10:8443 \
        --public-mqtt 198.18.1.10:8883 --public-mqtt-tls "${console_opt[@]}"
    for ((i = 0; i < 100; i++)); do
        "$OFFICE" exec box curl -sf --cacert "$HUBDIR/tls/cert.pem" https://198.18.1.10:8443/v1/health \
            >/dev/null && break
        sleep 0.1
    done
    hubcode=$(hubadm code create demo-office 2>/dev/null)
    if "$OFFICE" exec box "$BIN/otasukectl" hub enroll https://198.18.1.10:8443 "$hubcode" \
            --cacert "$HUBDIR/tls/cert.pem" --name "office-$OFFICE_ID" --state "$ST/hub" >/dev/null; then
        hub_args=(--hub "$ST/hub")
        operator_token=$(hubadm operator add demo-msp 2>/dev/null)
        if command -v socat >/dev/null; then
            socat TCP-LISTEN:9443,bind=127.0.0.1,reuseaddr,fork \
                EXEC:"ip netns exec ota$OFFICE_ID-hub socat STDIO TCP\:198.18.1.10\:8443" 2>/dev/null &
            socat_hub_pid=$!
        fi
        hints+=("Hub:          https://198.18.1.10:8443 in the hub namespace; this box is enrolled (org demo-office)"
                "MSP console:  https://127.0.0.1:9443/console/   operator token (shown once): $operator_token"
                "Fleet (API):  sudo tests/lib/office.sh exec hub curl -sk -H 'Authorization: Bearer <token>' https://198.18.1.10:8443/v1/fleet")
    else
        echo "make run: enrolling the box with the hub failed; the box runs without it (see $OFFICE_RUN/logs/hubd.log)" >&2
    fi
fi

if have otasuke-agent && have otasuke-dnsd; then
    # Two demo lists on the fake internet, so a blocked name can be seen at once.
    start_daemon demo-lists wan python3 -m http.server 8088 --bind 198.18.10.10 \
        --directory "$REPO/tests/lib/demo"
    start_daemon agent box "$BIN/otasuke-agent" -f --config "$ST/otasuke.conf" \
        --db "$ST/agent.db" --state-dir "$ST" --socket "$ST/agent.sock" \
        --dnsd-control "$ST/dnsd.ctl" --events "$ST/events.sock" \
        --fwd-pidfile "$OFFICE_RUN/pids/fwd.pid" "${hub_args[@]}"
    for ((i = 0; i < 100; i++)); do
        "${CTL[@]}" status >/dev/null 2>&1 && break
        sleep 0.1
    done
    for ((i = 0; i < 100; i++)); do
        "$OFFICE" exec box curl -sf -o /dev/null http://198.18.10.10:8088/ads.txt && break
        sleep 0.1
    done
    "${CTL[@]}" feed add-list demo-ads http://198.18.10.10:8088/ads.txt --category ads >/dev/null &&
    "${CTL[@]}" feed add-list demo-malware http://198.18.10.10:8088/malware.txt --category malware >/dev/null ||
        { echo "make run: could not subscribe the demo lists; see $OFFICE_RUN/logs/agent.log" >&2; exit 1; }
    for ((i = 0; i < 200; i++)); do
        [ -s "$ST/domains.set" ] && [ -s "$ST/policy.set" ] &&
            "$BIN/otasukectl" set lookup "$ST/domains.set" malware.test 2>/dev/null | grep -q '"block"' && break
        sleep 0.1
    done
    start_daemon dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --listen 203.0.113.1:53 \
        --listen 198.51.100.1:53 --listen '[fd00:0:0:1::1]:53' --listen '[fd00:0:0:2::1]:53' \
        --listen '[fd00:0:0:3::1]:53' --upstream 127.0.0.1:5335 \
        --domains "$ST/domains.set" --policy "$ST/policy.set" --control "$ST/dnsd.ctl" \
        --events "$ST/events.sock"
    wait_dns dnsd pc 192.0.2.1 good.test
    hints+=("DNS filter:   sudo tests/lib/office.sh exec pc dig good.test       (through otasuke-dnsd and unbound)"
            "Blocked:      sudo tests/lib/office.sh exec pc dig malware.test    (NXDOMAIN, the reason in an EDE option)"
            "Why:          sudo OTASUKE_AGENT_SOCKET=$ST/agent.sock build/bin/otasukectl explain malware.test"
            "Ads too:      sudo OTASUKE_AGENT_SOCKET=$ST/agent.sock build/bin/otasukectl policy group staff --categories c2,malware,phishing,ads"
            "              (ads.test is listed, but by default only malware, phishing and C2 are blocked)")
elif have otasuke-dnsd; then
    start_daemon dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --listen 203.0.113.1:53 \
        --listen 198.51.100.1:53 --listen '[fd00:0:0:1::1]:53' --upstream 127.0.0.1:5335
    wait_dns dnsd pc 192.0.2.1 good.test
    hints+=("DNS filter:   sudo tests/lib/office.sh exec pc dig good.test    (otasuke-dnsd on box:53; no agent built, nothing blocked)")
else
    hints+=("DNS:          sudo tests/lib/office.sh exec pc dig good.test    (box unbound on :53; no otasuke-dnsd built yet)")
fi

if have otasuke-fwd && [ -s "$ST/fw.set" ]; then
    # DHCP for the three client zones (dnsmasq without DNS); fwd reads its leases for names.
    "$OFFICE" exec box dnsmasq --port=0 --conf-file=/dev/null --user=root --bind-interfaces \
        --interface="$OFFICE_IF_BOX_LAN" --interface="$OFFICE_IF_BOX_GUEST" --interface="$OFFICE_IF_BOX_IOT" \
        --dhcp-range=192.0.2.100,192.0.2.150,1h --dhcp-range=203.0.113.100,203.0.113.150,1h \
        --dhcp-range=198.51.100.100,198.51.100.150,1h --dhcp-leasefile="$ST/dnsmasq.leases" \
        --pid-file="$OFFICE_RUN/dnsmasq.pid" --log-facility="$OFFICE_RUN/logs/dnsmasq.log"
    start_daemon fwd box "$BIN/otasuke-fwd" -f --set "$ST/fw.set" --state "$ST/fwd" \
        --events "$ST/events.sock" --leases "$ST/dnsmasq.leases"
    hints+=("Firewall:     sudo tests/lib/office.sh exec box nft list table inet otasuke"
            "Isolation:    sudo tests/lib/office.sh exec guest ping -c1 -W1 192.0.2.10   (the guest net cannot reach the LAN)")
fi

if have otasuke-webd && [ -S "$ST/agent.sock" ] && [ -d "$REPO/build/webui" ]; then
    start_daemon webd box "$BIN/otasuke-webd" -f --listen 192.0.2.1:443 --blockpage-listen 192.0.2.1:80 \
        --agent "$ST/agent.sock" --ui "$REPO/build/webui" --cert "$ST/webd.crt" --key "$ST/webd.key"
    for ((i = 0; i < 100; i++)); do
        "$OFFICE" exec pc curl -skf -o /dev/null https://192.0.2.1/ && break
        sleep 0.1
    done
    # The owner UI on this machine's loopback only, for a browser outside the office.
    if command -v socat >/dev/null; then
        socat TCP-LISTEN:8443,bind=127.0.0.1,reuseaddr,fork \
            EXEC:"ip netns exec ota$OFFICE_ID-box socat STDIO TCP\:192.0.2.1\:443" 2>/dev/null &
        socat_pid=$!
        hints+=("Owner UI:     https://127.0.0.1:8443/   (self-signed certificate; the first visit asks for the setup code)")
    fi
    code=$("${CTL[@]}" setup-code 2>/dev/null)
    hints+=("Setup code:   $(tr '\n' ' ' <<<"$code")"
            "Block page:   sudo tests/lib/office.sh exec pc curl -s -H 'Host: ads.test' http://192.0.2.1/")
fi

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
