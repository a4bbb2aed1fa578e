#!/usr/bin/env bats
# Security baseline, seen from the network (ETSI EN 303 645 5.6, JC-STAR ★1 "unused
# interfaces disabled"): the box runs its real network-facing daemons — otasuke-dnsd,
# otasuke-fwd with the zone rules, otasuke-webd — and each zone scans it. The test
# lists the open TCP ports per zone and compares them with what that zone needs:
#   wan    nothing
#   lan    DNS 53, block page 80, owner UI 443
#   guest  and iot: at most DNS 53, block page 80, owner UI 443 (login page)
# The scanned ports include the box's resolver (unbound 5335, control 8953) and the
# MQTT/hub ports, so a daemon bound to the wrong address shows up here. It also checks
# the box answers DNS on no WAN address.

load helpers

BIN=$OTASUKE_REPO/build/bin

# TCP ports 1-1024 and the well-known higher ones a box could leak (unbound 5335,
# MQTT, hub, alt-HTTP), connected to all at once; prints the open ones, one a line.
# A dropped SYN costs the timeout once, not once per port.
scan() {   # NODE ADDR
    office_exec "$1" python3 - "$2" <<'PY'
import asyncio, sys
addr = sys.argv[1]
ports = list(range(1, 1025)) + [1883, 1884, 5335, 8080, 8443, 8883, 8953]
async def probe(p):
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(addr, p), 2.0)
        w.close()
        return p
    except Exception:
        return None
async def main():
    sem = asyncio.Semaphore(500)   # under the usual 1024 open files
    async def one(p):
        async with sem:
            return await probe(p)
    found = await asyncio.gather(*(one(p) for p in ports))
    for p in sorted(x for x in found if x):
        print(p)
asyncio.run(main())
PY
}

setup_file() {
    for p in otasuke-dnsd otasuke-fwd otasuke-webd otasukectl; do
        [ -x "$BIN/$p" ] || skip "$p is not built (run make)"
    done
    office_setup --dns=none
    # dnsd on every box address of the inside zones, like `make run`
    office_start dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --listen 203.0.113.1:53 \
        --listen 198.51.100.1:53 --listen '[fd00:0:0:1::1]:53' --upstream 127.0.0.1:5335 \
        --control "$OFFICE_RUN/dnsd.ctl" --events "$OFFICE_RUN/none.sock"
    # fwd with the zone rules and dnsmasq for DHCP, the firewall's own office launcher
    office_start fwd box "$OTASUKE_REPO/services/firewall/office-fwd.sh" "$OFFICE_RUN" "$BIN"
    # webd as the packaged unit runs it: IPv4 and IPv6 listeners on 443 and 80
    mkdir -p "$OFFICE_RUN/web"
    office_start webd box "$BIN/otasuke-webd" -f --listen 0.0.0.0:443 --listen '[::]:443' \
        --blockpage-listen 0.0.0.0:80 --blockpage-listen '[::]:80' \
        --agent "$OFFICE_RUN/agent.sock" --ui "$OTASUKE_REPO/build/webui" \
        --cert "$OFFICE_RUN/web/cert.pem" --key "$OFFICE_RUN/web/key.pem"
    office_wait_port box tcp 192.0.2.1 53
    office_wait_port box tcp 0.0.0.0 443
    office_wait_port box tcp 0.0.0.0 80
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q 'running: table inet otasuke' "$OFFICE_RUN/logs/fwd.log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "otasuke-fwd did not start; its log:" >&2
    cat "$OFFICE_RUN/logs/fwd.log" >&2
    return 1
}

teardown_file() { office_teardown; }

@test "from the WAN, no TCP port of the box is open" {
    run scan wan 198.18.0.2
    assert_success
    echo "# wan -> 198.18.0.2: ${output:-none}" | tr '\n' ' ' >&3; echo >&3
    assert_output ""
}

@test "from the WAN, the box answers no DNS" {
    run office_exec wan dig +time=1 +tries=1 @198.18.0.2 good.test A
    refute_output --partial 'status: NOERROR'
    refute_output --partial '198.18.10.10'
}

@test "from the LAN, exactly DNS, the block page and the owner UI are open (IPv4 and IPv6)" {
    run scan pc 192.0.2.1
    assert_success
    echo "# lan -> 192.0.2.1: $(echo $output)" >&3
    assert_output "$(printf '53\n80\n443')"
    run scan pc fd00:0:0:1::1
    assert_success
    echo "# lan -> fd00:0:0:1::1: $(echo $output)" >&3
    assert_output "$(printf '53\n80\n443')"
}

@test "from guest and iot, nothing beyond DNS, the block page and the owner UI is open" {
    local node addr p
    for node in guest iot; do
        case $node in guest) addr=203.0.113.1 ;; iot) addr=198.51.100.1 ;; esac
        run scan "$node" "$addr"
        assert_success
        echo "# $node -> $addr: $(echo $output)" >&3
        for p in $output; do
            case $p in 53|80|443) ;; *) fail "$node reaches port $p of the box" ;; esac
        done
        assert_line 53                    # they need DNS
    done
}
