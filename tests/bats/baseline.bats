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
# the box answers DNS on no WAN address, and probes every UDP port from each zone:
#   wan    every UDP port silent (not even "port unreachable"); a DHCP server's answer
#          (67 -> 68, 547 -> 546) alone reaches the box's DHCP client
#   inside only DNS answers; the box's UDP listeners are DNS 53 and DHCP 67, nothing more

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

# UDP: every port of 1-1024 and the higher ones above, probed at once from NODE. A DNS
# query goes to 53, a few bytes elsewhere. Prints "PORT data" for a port that answered
# and "PORT closed" for one whose probe came back as ICMP port unreachable (it passed the
# firewall and nothing listens); a port that stays silent is dropped by the firewall
# (or its daemon ignores the bytes: the box's listeners are listed separately).
uscan() {   # NODE ADDR
    office_exec "$1" python3 - "$2" <<'PY'
import asyncio, socket, sys
addr = sys.argv[1]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
ports = list(range(1, 1025)) + [1883, 1884, 5335, 5353, 8443, 8953]
# a DNS query: id 0x4f54, RD, one question "good.test A IN"
dnsq = bytes.fromhex("4f54010000010000000000000467" "6f6f6404746573740000010001")
async def probe(p):
    loop = asyncio.get_running_loop()
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        s.connect((addr, p))
        payload = dnsq if p == 53 else b"otasuke-udp-probe\n"
        for _ in range(2):              # one retry: a first packet may wait for ND/ARP
            s.send(payload)
            try:
                await asyncio.wait_for(loop.sock_recv(s, 2048), 1.0)
                return "%d data" % p
            except ConnectionRefusedError:
                return "%d closed" % p
            except asyncio.TimeoutError:
                continue
        return None
    except OSError:
        return None
    finally:
        s.close()
async def main():
    sem = asyncio.Semaphore(400)
    async def one(p):
        async with sem:
            return await probe(p)
    for r in await asyncio.gather(*(one(p) for p in ports)):
        if r:
            print(r)
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

@test "the box's only UDP listeners outside loopback are DNS (53) and DHCP (67)" {
    run office_exec box ss -Hlun
    assert_success
    local ports
    ports=$(awk '{print $4}' <<<"$output" | grep -vE '^(127\.|\[::1\]|\[::ffff:127\.)' | sed 's/.*://' | sort -un | paste -sd' ')
    echo "# box UDP listeners (not loopback): $ports" >&3
    [ "$ports" = "53 67" ] || fail "UDP listeners: '$ports', want '53 67'"
}

@test "from the WAN, every UDP port of the box is silent" {
    local addr
    for addr in 198.18.0.2 fd00:0:0:100::2; do
        run uscan wan "$addr"
        assert_success
        echo "# wan -> $addr udp: $(echo ${output:-all silent})" >&3
        assert_output ""
    done
}

@test "from the WAN, only a DHCP server's answer reaches the box's DHCP client port" {
    # The provider's DHCP server answers from 67 to 68 (DHCPv6: 547 to 546). Nothing
    # listens there in the office (static WAN address), so a datagram that passes the
    # firewall comes back as "port unreachable"; one from another port is dropped.
    run office_exec wan python3 - <<'PY'
import socket
def probe(fam, addr, sport, dport):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sport))
    s.settimeout(1.5)
    s.connect((addr, dport))
    try:
        for _ in range(2):
            s.send(b"otasuke-dhcp-probe")
            try:
                s.recv(100)
                return "answer"
            except ConnectionRefusedError:
                return "passed"
            except socket.timeout:
                continue
        return "dropped"
    finally:
        s.close()
for fam, addr, server, client in ((socket.AF_INET, "198.18.0.2", 67, 68),
                                  (socket.AF_INET6, "fd00:0:0:100::2", 547, 546)):
    print(addr, "from", server, probe(fam, addr, server, client))
    print(addr, "from", 40000, probe(fam, addr, 40000, client))
PY
    assert_success
    echo "# $(echo $output)" >&3
    assert_line "198.18.0.2 from 67 passed"
    assert_line "198.18.0.2 from 40000 dropped"
    assert_line "fd00:0:0:100::2 from 547 passed"
    assert_line "fd00:0:0:100::2 from 40000 dropped"
}

@test "from the LAN, guest and iot, only DNS answers over UDP" {
    local node addr
    for node in pc guest iot; do
        case $node in pc) addr=192.0.2.1 ;; guest) addr=203.0.113.1 ;; iot) addr=198.51.100.1 ;; esac
        run uscan "$node" "$addr"
        assert_success
        echo "# $node -> $addr udp answers: $(grep data <<<"$output" | paste -sd' ')" >&3
        assert_line "53 data"
        [ -z "$(grep ' data$' <<<"$output" | grep -vx '53 data')" ] || fail "$node gets UDP answers from: $output"
    done
}
