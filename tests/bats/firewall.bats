#!/usr/bin/env bats
# otasuke-fwd in the virtual office, with real packets: the box is the router, fwd owns
# `table inet otasuke` built from tests/fixtures/fw/ with `otasukectl fw build`.
# dnsmasq serves DHCP only (port=0) on LAN/guest/IoT; unbound answers DNS on box:53.

load helpers

BIN=${OTASUKE_BIN:-$OTASUKE_REPO/build/bin}   # OTASUKE_BIN=/tmp/x/bin runs an ASan build
FWD=$BIN/otasuke-fwd
CTL=$BIN/otasukectl
FIX=$OTASUKE_REPO/tests/fixtures/fw

zones() {   # OUT [extra libconfig lines...]
    local out=$1
    shift
    {
        echo "zones = { lan = [\"$OFFICE_IF_BOX_LAN\"]; guest = [\"$OFFICE_IF_BOX_GUEST\"];"
        echo "          iot = [\"$OFFICE_IF_BOX_IOT\"]; wan = [\"$OFFICE_IF_BOX_WAN\"]; };"
        echo "nflog_group = 7;"
        echo "log_rate = 50;"
        printf '%s\n' "$@"
    } >"$out"
}

build() {   # OUT ZONES [more otasukectl args]
    "$CTL" fw build -o "$1" --zones "$2" --block test="$FIX/block.netset" "${@:3}" >/dev/null
}

fwd_pid() { cut -d' ' -f1 "$OFFICE_RUN/pids/fwd.pid"; }

start_fwd() {
    : >"$OFFICE_RUN/logs/fwd.log"
    office_start fwd box "$FWD" -f --set "$SET" --state "$STATE" \
        --events "$OFFICE_RUN/fwd-events.sock" --leases "$OFFICE_RUN/dnsmasq.leases"
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q 'running: table inet otasuke' "$OFFICE_RUN/logs/fwd.log" && return 0
        sleep 0.05
    done
    office_log fwd >&2
    return 1
}

# Waits until the box's kernel has (1) or lacks (0) element ELEM in set SET.
wait_elem() {   # 0|1 SET ELEM [SECONDS=10]
    local want=$1 set=$2 elem=$3 secs=${4:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        if office_exec box nft get element inet otasuke "$set" "{ $elem }" >/dev/null 2>&1; then
            [ "$want" = 1 ] && return 0
        else
            [ "$want" = 0 ] && return 0
        fi
        sleep 0.1
    done
    echo "element $elem in $set: wanted present=$want after $secs s" >&2
    return 1
}

foreign_intact() {
    run office_exec box nft list table inet other
    assert_success
    assert_output --partial 'tcp dport 9999 counter'
    run office_exec box nft list table ip office_nat
    assert_success
    assert_output --partial masquerade
}

wait_event() {   # REGEX [SECONDS=10]
    local i
    for ((i = 0; i < ${2:-10} * 10; i++)); do
        grep -Eq "$1" "$OFFICE_RUN/fwd-events.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no event matching $1; got:" >&2
    cat "$OFFICE_RUN/fwd-events.log" >&2
    return 1
}

tcp_open() {   # NODE ADDR PORT: exit 0 when a TCP connection opens within 3 s
    office_exec "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>&1
}

setup_file() {
    office_setup
    export SET=$OFFICE_RUN/fw.set STATE=$OFFICE_RUN/fwd-state
    zones "$OFFICE_RUN/zones.conf" 'doh = ["198.18.8.8", "fd00:0:0:8::8"];'
    build "$SET" "$OFFICE_RUN/zones.conf"
    # a foreign table with a rule, there before fwd starts
    office_exec box nft add table inet other
    office_exec box nft add chain inet other c '{ type filter hook input priority 10; }'
    office_exec box nft add rule inet other c tcp dport 9999 counter
    # the agent's end of the events socket: every datagram becomes a line
    office_start evrecv box python3 -u -c '
import os, socket, sys
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(p)
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(65536).decode() + "\n")
        f.flush()
' "$OFFICE_RUN/fwd-events.sock" "$OFFICE_RUN/fwd-events.log"
    local i
    for ((i = 0; i < 100; i++)); do [ -S "$OFFICE_RUN/fwd-events.sock" ] && break; sleep 0.05; done
    # DHCP only (port=0): hostnames for the neighbour events come from its leases
    office_start dnsmasq box dnsmasq --keep-in-foreground --port=0 --conf-file=/dev/null \
        --user=root --bind-interfaces --interface="$OFFICE_IF_BOX_LAN" \
        --interface="$OFFICE_IF_BOX_GUEST" --interface="$OFFICE_IF_BOX_IOT" \
        --dhcp-range=192.0.2.100,192.0.2.150,1h --dhcp-range=203.0.113.100,203.0.113.150,1h \
        --dhcp-range=198.51.100.100,198.51.100.150,1h --dhcp-leasefile="$OFFICE_RUN/dnsmasq.leases" \
        --pid-file="$OFFICE_RUN/dnsmasq.pid" --log-facility=-
    start_fwd
}

teardown_file() { office_teardown; }
# A test that failed half way may have left fwd stopped: the next one starts from a
# running fwd again instead of failing for the same reason.
teardown() { [ -r "$OFFICE_RUN/pids/fwd.pid" ] || start_fwd; }

@test "fwd creates table inet otasuke and leaves office_nat and the foreign table alone" {
    run office_exec box nft list tables
    assert_line 'table inet otasuke'
    assert_line 'table ip office_nat'
    assert_line 'table inet other'
    foreign_intact
}

@test "pc reaches wan HTTP through the box; guest too" {
    run office_exec pc curl -s --max-time 5 http://198.18.10.10/
    assert_success
    assert_line site=good.test
    run office_exec guest curl -s --max-time 5 http://198.18.10.20/
    assert_success
    assert_line site=shop.test
    run office_exec pc curl -s --max-time 5 -g 'http://[fd00:0:0:10::10]/'
    assert_success
    assert_line site=good.test
}

@test "a blocked IP (single and in a range, v4 and v6) is unreachable and an nflog event names the set" {
    run office_exec pc curl -s --max-time 2 http://198.18.10.66/
    assert_failure
    run office_exec pc curl -s --max-time 2 http://198.18.10.80/
    assert_failure
    run office_exec pc curl -s --max-time 2 -g 'http://[fd00:0:0:10::66]/'
    assert_failure
    wait_event '"type":"drop".*"set":"blk_test_v4","match":"destination","src":"192.0.2.10","dst":"198.18.10.66","proto":6,"dport":80'
    wait_event '"set":"blk_test_v4r".*"dst":"198.18.10.80"'
    wait_event '"set":"blk_test_v6".*"dst":"fd00:0:0:10::66"'
}

@test "guest and iot cannot reach pc; pc can reach iot" {
    run office_exec guest ping -c 1 -W 1 192.0.2.10
    assert_failure
    run office_exec iot ping -c 1 -W 1 192.0.2.10
    assert_failure
    run office_exec guest ping -c 1 -W 1 198.51.100.10
    assert_failure
    run office_exec pc ping -c 1 -W 2 198.51.100.10
    assert_success
    wait_event '"reason":"policy".*"src":"203.0.113.10","dst":"192.0.2.10"'
}

@test "box services per zone: LAN reaches everything, guest and iot only DNS/DHCP/web, WAN nothing" {
    office_start boxsvc box python3 -m http.server 8080 --bind 0.0.0.0 --directory "$OFFICE_RUN"
    office_wait_port box tcp 0.0.0.0 8080
    run tcp_open pc 192.0.2.1 8080
    assert_success
    run tcp_open guest 203.0.113.1 8080
    assert_failure
    run tcp_open iot 198.51.100.1 8080
    assert_failure
    run tcp_open wan 198.18.0.2 8080
    assert_failure
    run office_exec guest dig +short +time=2 +tries=2 @203.0.113.1 good.test A
    assert_output 198.18.10.10
    run office_exec wan dig +short +time=1 +tries=1 @198.18.0.2 good.test A
    refute_output 198.18.10.10
    office_stop boxsvc
    wait_event '"reason":"policy".*"src":"198.18.0.1","dst":"198.18.0.2","proto":6,"dport":8080'
}

@test "pc's DNS to the wan resolver is answered by the box (udp, tcp, IPv6)" {
    # without interception 198.18.8.8 answers "wan-resolver"; the box's unbound asks the
    # authoritative server, which says "authoritative"
    run office_exec wan dig +short @198.18.8.8 whoami.test TXT
    assert_output '"wan-resolver"'
    run office_exec pc dig +short +time=2 +tries=2 @198.18.8.8 whoami.test TXT
    assert_output '"authoritative"'
    run office_exec pc dig +short +tcp +time=2 +tries=2 @198.18.8.8 whoami.test TXT
    assert_output '"authoritative"'
    run office_exec iot dig +short +time=2 +tries=2 @198.18.53.53 whoami.test TXT
    assert_output '"authoritative"'
    run office_exec pc dig +short +time=2 +tries=2 @fd00:0:0:8::8 whoami.test TXT
    assert_output '"authoritative"'
}

@test "DoT to the wan is rejected, DoH endpoints are rejected on 443, the box itself still reaches them" {
    run tcp_open pc 198.18.8.8 853
    assert_failure
    assert_output --partial 'Connection refused'
    run tcp_open pc 198.18.8.8 443
    assert_failure
    assert_output --partial 'Connection refused'
    run tcp_open box 198.18.8.8 853
    assert_success
    run tcp_open box 198.18.8.8 443
    assert_success
}

@test "a quarantined iot (by MAC) reaches only the box: DNS and the block page" {
    local mac
    mac=$(office_exec iot cat "/sys/class/net/$OFFICE_IF_IOT/address")
    mkdir -p "$OFFICE_RUN/blockpage"
    echo "otasuke block page" >"$OFFICE_RUN/blockpage/index.html"
    office_start blockpage box python3 -m http.server 80 --bind :: \
        --directory "$OFFICE_RUN/blockpage"
    office_wait_port box tcp :: 80
    run office_exec iot curl -s --max-time 5 http://198.18.10.10/
    assert_line site=good.test
    zones "$OFFICE_RUN/zones-q.conf" 'doh = ["198.18.8.8"];' "quarantine = [\"$mac\"];"
    build "$SET" "$OFFICE_RUN/zones-q.conf"
    kill -HUP "$(fwd_pid)"
    wait_elem 1 quar_mac "$mac"
    run office_exec iot curl -s --max-time 5 http://198.18.10.10/
    assert_output 'otasuke block page'
    run office_exec iot curl -s --max-time 3 http://198.18.10.20:80/shop
    refute_output --partial site=
    run office_exec iot ping -c 1 -W 1 198.18.10.10
    assert_failure
    run tcp_open iot 198.18.10.10 443
    assert_failure
    run office_exec iot dig +short +time=2 +tries=2 @198.51.100.1 good.test A
    assert_output 198.18.10.10
    wait_event '"reason":"quarantine","set":"quar_mac"'
    # by address (IPv4 and IPv6) works the same way, here for the guest
    zones "$OFFICE_RUN/zones-q.conf" 'doh = ["198.18.8.8"];' 'quarantine = ["203.0.113.10", "fd00:0:0:2::10"];'
    build "$SET" "$OFFICE_RUN/zones-q.conf"
    kill -HUP "$(fwd_pid)"
    wait_elem 1 quar_v4 203.0.113.10
    wait_elem 0 quar_mac "$mac"
    run office_exec guest curl -s --max-time 5 http://198.18.10.10/
    assert_output 'otasuke block page'
    run office_exec guest curl -s --max-time 3 -g 'http://[fd00:0:0:10::10]/'
    assert_output 'otasuke block page'
    run office_exec guest ping -c 1 -W 1 198.18.10.10
    assert_failure
    run office_exec iot curl -s --max-time 5 http://198.18.10.10/
    assert_line site=good.test
    # Containment works both ways: the LAN manages IoT devices, but opens no new
    # connection to a quarantined one.
    run office_exec pc ping -c 1 -W 1 198.51.100.10
    assert_success
    zones "$OFFICE_RUN/zones-q.conf" 'doh = ["198.18.8.8"];' 'quarantine = ["198.51.100.10", "fd00:0:0:3::10"];'
    build "$SET" "$OFFICE_RUN/zones-q.conf"
    kill -HUP "$(fwd_pid)"
    wait_elem 1 quar_v4 198.51.100.10
    run office_exec pc ping -c 1 -W 1 198.51.100.10
    assert_failure
    run office_exec pc ping -c 1 -W 1 fd00:0:0:3::10
    assert_failure
    # released: back to normal
    zones "$OFFICE_RUN/zones.conf" 'doh = ["198.18.8.8", "fd00:0:0:8::8"];'
    build "$SET" "$OFFICE_RUN/zones.conf"
    kill -HUP "$(fwd_pid)"
    wait_elem 0 quar_v4 203.0.113.10
    run office_exec iot curl -s --max-time 5 http://198.18.10.10/
    assert_line site=good.test
    run office_exec pc ping -c 1 -W 1 198.51.100.10
    assert_success
    office_stop blockpage
}

@test "IoT in allowlist-only mode reaches just the allowed addresses on the internet" {
    printf '198.18.10.10\nfd00:0:0:10::10\n' >"$OFFICE_RUN/allow.netset"
    zones "$OFFICE_RUN/zones-a.conf" 'doh = ["198.18.8.8", "fd00:0:0:8::8"];' 'iot_allowlist_only = true;'
    build "$SET" "$OFFICE_RUN/zones-a.conf" --allow "$OFFICE_RUN/allow.netset"
    kill -HUP "$(fwd_pid)"
    wait_elem 1 allow_v4 198.18.10.10
    run office_exec iot curl -s --max-time 5 http://198.18.10.10/
    assert_line site=good.test
    run office_exec iot curl -s --max-time 2 http://198.18.10.20/
    assert_failure
    run office_exec pc curl -s --max-time 5 http://198.18.10.20/   # only IoT is restricted
    assert_line site=shop.test
    build "$SET" "$OFFICE_RUN/zones.conf"
    kill -HUP "$(fwd_pid)"
    wait_elem 0 allow_v4 198.18.10.10
    run office_exec iot curl -s --max-time 5 http://198.18.10.20/
    assert_line site=shop.test
}

@test "fwd and fw build take zones, artifact, state and events from the box config" {
    cat >"$OFFICE_RUN/box.conf" <<EOF
zones = (
    { name = "wan";   interface = "$OFFICE_IF_BOX_WAN"; },
    { name = "lan";   interface = "$OFFICE_IF_BOX_LAN"; },
    { name = "guest"; interface = "$OFFICE_IF_BOX_GUEST"; },
    { name = "iot";   interface = "$OFFICE_IF_BOX_IOT"; internet_allowlist_only = true; }
);
firewall: {
    artifact = "$OFFICE_RUN/cfg.set";
    state_dir = "$STATE";
    events = "$OFFICE_RUN/fwd-events.sock";
    nflog_group = 7;
};
EOF
    run "$CTL" fw build -o "$OFFICE_RUN/cfg.set" --config "$OFFICE_RUN/box.conf" --block test="$FIX/block.netset"
    assert_success
    run office_exec box "$FWD" -n --config "$OFFICE_RUN/box.conf"
    assert_success
    assert_output --partial "$OFFICE_RUN/cfg.set: ok"
    office_stop fwd
    : >"$OFFICE_RUN/logs/fwd.log"
    office_start fwd box "$FWD" -f --config "$OFFICE_RUN/box.conf"
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q "running: table inet otasuke, set $OFFICE_RUN/cfg.set, state $STATE" "$OFFICE_RUN/logs/fwd.log" && break
        sleep 0.05
    done
    run office_exec iot curl -s --max-time 2 http://198.18.10.10/   # allowlist-only, empty list
    assert_failure
    run office_exec pc curl -s --max-time 5 http://198.18.10.10/
    assert_line site=good.test
    echo 'zones = ( { name = "dmz"; interface = "x"; } );' >"$OFFICE_RUN/bad.conf"
    run "$CTL" fw build -o "$OFFICE_RUN/x.set" --config "$OFFICE_RUN/bad.conf"
    assert_failure
    office_stop fwd
    start_fwd
    run office_exec iot curl -s --max-time 5 http://198.18.10.10/
    assert_line site=good.test
}

@test "a no-op reconcile sends zero write messages (trusted and full read-back)" {
    run office_exec box "$FWD" --diff "$SET" --state "$STATE"
    assert_success
    assert_line --partial 'writes: 0'
    run office_exec box "$FWD" --full-read --diff "$SET" --state "$STATE"
    assert_success
    assert_line 'writes: 0 (elements read from the kernel)'
    run office_exec box "$FWD" --full-read --apply-once "$SET" --state "$STATE"
    assert_success
    assert_output --partial '"writes":0,'
    # and a real change is counted
    zones "$OFFICE_RUN/zones-x.conf" 'doh = ["198.18.8.8", "fd00:0:0:8::8", "198.18.9.9"];'
    build "$OFFICE_RUN/x.set" "$OFFICE_RUN/zones-x.conf"
    run office_exec box "$FWD" --diff "$OFFICE_RUN/x.set" --state "$STATE"
    assert_line '+ 1 element to set doh_v4'
    assert_line --partial 'writes: 1'
}

@test "element timeouts: a feed's entries expire in the kernel and the next apply restores them" {
    office_stop fwd
    "$CTL" fw build -o "$OFFICE_RUN/t.set" --zones "$OFFICE_RUN/zones.conf" \
        --block test="$FIX/block.netset" --timeout 2 >/dev/null
    run office_exec box "$FWD" --apply-once "$OFFICE_RUN/t.set" --state "$STATE"
    assert_success
    assert_output --partial '"rebuilt":1,'        # set flags changed: one-batch re-creation
    run office_exec box nft -t list sets inet
    assert_output --partial 'timeout 2s'
    run office_exec pc curl -s --max-time 2 http://198.18.10.66/
    assert_failure
    wait_elem 0 blk_test_v4 198.18.10.66 6
    run office_exec pc curl -s --max-time 5 http://198.18.10.66/
    assert_line site=malware.test
    run office_exec box "$FWD" --apply-once "$OFFICE_RUN/t.set" --state "$STATE"
    assert_success
    assert_output --partial '"rebuilt":0,'        # sets with timeouts are read back,
    refute_output --partial '"added":0,'          # the expired entries re-added
    run office_exec pc curl -s --max-time 2 http://198.18.10.66/
    assert_failure
    start_fwd                                     # back to the permanent set
    wait_elem 1 blk_test_v4 198.18.10.66
    run office_exec box nft -t list sets inet
    refute_output --partial 'timeout 2s'
}

@test "the foreign table survives reload, stop, start and kill -9 of fwd" {
    kill -HUP "$(fwd_pid)"
    sleep 0.5
    foreign_intact
    office_stop fwd
    foreign_intact
    run office_exec box nft list table inet otasuke   # stop keeps the firewall up
    assert_success
    start_fwd
    foreign_intact
    kill -9 "$(fwd_pid)"
    sleep 0.2
    foreign_intact
    office_stop fwd || true
    start_fwd
    foreign_intact
    run office_exec pc curl -s --max-time 5 http://198.18.10.10/
    assert_line site=good.test
}

@test "bad list lines are reported with file:line and reason" {
    run "$CTL" fw build -o "$OFFICE_RUN/bad.set" --block bad="$FIX/bad.netset"
    assert_success
    assert_output --partial "bad.netset:3: 'not-an-address' is not an IPv4 or IPv6 address"
    assert_output --partial 'bad.netset:4: prefix length /33 is larger than /32'
    assert_output --partial 'bad.netset:5: host bits set in 198.18.10.1/24 (network is 198.18.10.0/24)'
    assert_output --partial '"bad_lines":3'
    run "$CTL" fw build --strict -o "$OFFICE_RUN/bad.set" --block bad="$FIX/bad.netset"
    assert_failure
    run office_exec box "$FWD" -n --set "$FIX/block.netset"
    assert_failure
    assert_output --partial 'for a fw.set'
}

@test "commit-confirmed: an unconfirmed change rolls back, a confirmed one stays" {
    zones "$OFFICE_RUN/zones-c.conf" 'doh = ["198.18.8.8", "fd00:0:0:8::8", "198.18.7.7"];'
    build "$OFFICE_RUN/c.set" "$OFFICE_RUN/zones-c.conf"
    run office_exec box "$FWD" --apply-once "$OFFICE_RUN/c.set" --confirm-timeout 2 --state "$STATE"
    assert_success
    wait_elem 1 doh_v4 198.18.7.7 2
    [ -e "$STATE/pending" ]
    wait_elem 0 doh_v4 198.18.7.7 10       # the running daemon rolled it back
    [ ! -e "$STATE/pending" ]
    grep -q 'rolled back to the last confirmed ruleset' "$OFFICE_RUN/logs/fwd.log"

    run office_exec box "$FWD" --apply-once "$OFFICE_RUN/c.set" --confirm-timeout 2 --state "$STATE"
    assert_success
    run office_exec box "$FWD" --confirm --state "$STATE"
    assert_success
    sleep 3
    wait_elem 1 doh_v4 198.18.7.7 1         # confirmed: still there after the deadline
}

@test "commit-confirmed: the rollback also happens when fwd was restarted in between" {
    office_stop fwd
    run office_exec box "$FWD" --apply-once "$SET" --state "$STATE"   # confirmed baseline
    assert_success
    run office_exec box "$FWD" --apply-once "$OFFICE_RUN/c.set" --confirm-timeout 1 --state "$STATE"
    assert_success
    wait_elem 1 doh_v4 198.18.7.7 1
    sleep 1.5                                # the deadline passes while no fwd runs
    start_fwd
    wait_elem 0 doh_v4 198.18.7.7 5
    [ ! -e "$STATE/pending" ]
}

@test "edits to our table behind fwd's back are repaired; a wrong belief is refused by the kernel, mapped to its set and retried" {
    office_exec box nft delete element inet otasuke blk_test_v4 '{ 198.18.10.66 }'
    office_exec box nft add set inet otasuke junk '{ type ipv4_addr; }'
    run office_exec pc curl -s --max-time 5 http://198.18.10.66/
    assert_line site=malware.test
    run office_exec box "$FWD" --apply-once "$SET" --state "$STATE"
    assert_success
    assert_output --partial '"trusted":0,'        # the generation moved: everything re-read
    assert_output --partial '"added":1,'
    assert_output --partial '"sets_deleted":1,'
    run office_exec box nft -t list sets inet
    refute_output --partial junk
    run office_exec pc curl -s --max-time 2 http://198.18.10.66/
    assert_failure
    foreign_intact

    # Now make fwd believe the kernel still holds an element it lost: the trusted diff
    # deletes it, the kernel refuses (ENOENT) naming the set, fwd re-reads and retries.
    office_exec box nft delete element inet otasuke blk_test_v4 '{ 198.18.10.66 }'
    echo $(($(cat "$STATE/kernel.gen") + 1)) >"$STATE/kernel.gen"
    grep -v 198.18.10.66 "$FIX/block.netset" >"$OFFICE_RUN/block2.netset"
    "$CTL" fw build -o "$OFFICE_RUN/n.set" --zones "$OFFICE_RUN/zones.conf" \
        --block test="$OFFICE_RUN/block2.netset" >/dev/null
    run office_exec box "$FWD" --apply-once "$OFFICE_RUN/n.set" --state "$STATE"
    assert_success
    assert_output --partial 'first attempt failed (kernel refused set blk_test_v4 elements from #0: No such file or directory)'
    assert_output --partial '"retried":1,'
    run office_exec box "$FWD" --full-read --diff "$OFFICE_RUN/n.set" --state "$STATE"
    assert_line 'writes: 0 (elements read from the kernel)'
    run office_exec box "$FWD" --apply-once "$SET" --state "$STATE"
    assert_success
    assert_output --partial '"added":1,'
}

@test "acks lost to a full socket buffer (ENOBUFS): fwd re-reads the kernel and ends exact" {
    # The kernel drops acks it cannot queue; fwd cannot know which messages they were for,
    # so it must drain the socket, re-read its table and diff again. A squeezed ack buffer
    # for the first commit (a test-only hook) makes a from-scratch apply lose most acks.
    office_stop fwd
    office_exec box nft delete table inet otasuke
    run office_exec box env OTASUKE_FWD_TEST_ACK_RCVBUF=1 "$FWD" --apply-once "$SET" --state "$STATE"
    assert_success
    assert_output --regexp 'first attempt failed \(only [0-9]+ of [0-9]+ acks arrived\)'
    assert_output --partial '"retried":1,'
    run office_exec box "$FWD" --full-read --diff "$SET" --state "$STATE"
    assert_line 'writes: 0 (elements read from the kernel)'
    run office_exec pc curl -s --max-time 2 http://198.18.10.66/
    assert_failure
    foreign_intact
}

@test "kill -9 during a 1M-element apply leaves the old set or the new one, never half" {
    # The new state adds set blk_big_v4 (1M singles, its creation is the batch's first
    # message) and blk_big_v4r holding 198.18.10.20/30 (shop.test), whose elements and the
    # rules using it are the batch's last messages. Dumping a 1M set takes nft ~25 s, so
    # the check is: set list (no elements) + real packets to shop.test.
    local big=$OFFICE_RUN/big.netset
    python3 -c '
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1000000):
        a = (11 << 24) + 4 * i
        f.write("%d.%d.%d.%d\n" % (a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255))
    f.write("198.18.10.20/30\n")
' "$big"
    "$CTL" fw build -o "$OFFICE_RUN/big.set" --zones "$OFFICE_RUN/zones.conf" \
        --block test="$FIX/block.netset" --block big="$big" >/dev/null
    office_stop fwd
    local delay outcome has_set reach pid
    for delay in 0.1 0.4 0.8 1.2 1.6 2.2 none; do
        office_exec box nft delete table inet otasuke 2>/dev/null || true
        rm -rf "$STATE"
        office_exec box "$FWD" --apply-once "$SET" --state "$STATE" >/dev/null 2>&1  # the old state
        ip netns exec "$OFFICE_NS_BOX" "$FWD" --apply-once "$OFFICE_RUN/big.set" --state "$STATE" \
            >/dev/null 2>&1 &
        pid=$!
        if [ "$delay" != none ]; then
            sleep "$delay"
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        has_set=0 reach=0
        office_exec box nft -t list sets inet | grep -q 'set blk_big_v4 ' && has_set=1
        office_exec pc curl -s --max-time 2 http://198.18.10.20/ | grep -q site=shop.test && reach=1
        case $has_set$reach in
        01) outcome=old ;;
        10) outcome=new ;;
        *) fail "half-applied after kill at ${delay}s: big set present=$has_set, shop.test reachable=$reach" ;;
        esac
        run office_exec pc curl -s --max-time 2 http://198.18.10.10/
        assert_line site=good.test
        if [ "$delay" = none ]; then echo "# not killed: $outcome" >&3; else echo "# kill -9 after ${delay}s: $outcome" >&3; fi
    done
    [ "$outcome" = new ]   # the last round was not killed: it must end with the new set
    office_exec box nft delete table inet otasuke
    rm -rf "$STATE"
    start_fwd
    run office_exec pc curl -s --max-time 5 http://198.18.10.20/
    assert_line site=shop.test
}

@test "neighbour events carry MAC, address, first/last seen and the DHCP hostname" {
    local mac
    mac=$(office_exec pc cat "/sys/class/net/$OFFICE_IF_PC/address")
    # a real DHCP exchange with dnsmasq (the lease is not applied: -s /bin/true)
    run office_exec pc timeout 10 busybox udhcpc -q -n -f -i "$OFFICE_IF_PC" -x hostname:frontdesk \
        -s /bin/true
    assert_success
    grep -q "$mac .* frontdesk" "$OFFICE_RUN/dnsmasq.leases"
    office_stop fwd 2>/dev/null || true
    start_fwd                                   # its neighbour dump now sees pc
    office_exec pc ping -c 1 -W 2 192.0.2.1 >/dev/null
    wait_event "\"type\":\"neighbour\",\"mac\":\"$mac\",\"addr\":\"192.0.2.10\",\"ifname\":\"$OFFICE_IF_BOX_LAN\",\"hostname\":\"frontdesk\",\"first_seen\":[0-9]+,\"last_seen\":[0-9]+"
}
