#!/usr/bin/env bats
# otasuke-dnsd in the virtual office: the box runs dnsd on :53 of every net in front of
# its unbound (127.0.0.1:5335); pc (staff), iot and guest ask it. Sets are built from
# tests/fixtures/dns/ with otasukectl, the policy is tests/fixtures/dns/policy.json.

load helpers

# OTASUKE_DNSD picks another build, e.g. an ASan one: make BUILD=/tmp/x asan
DNSD=${OTASUKE_DNSD:-$OTASUKE_REPO/build/bin/otasuke-dnsd}
CTL=$OTASUKE_REPO/build/bin/otasukectl
FIX=$OTASUKE_REPO/tests/fixtures/dns

build_set() {   # OUT
    "$CTL" set build -o "$1" --label test-ads ads="$FIX/ads.adblock.txt" \
        --label test-malware malware="$FIX/malware.domains.txt" \
        --label test-allow allow="$FIX/allow.adblock.txt" >/dev/null
}

start_dnsd() {
    office_start dnsd box "$DNSD" -f --listen 192.0.2.1:53 --listen '[fd00:0:0:1::1]:53' \
        --listen 198.51.100.1:53 --listen 203.0.113.1:53 --upstream 127.0.0.1:5335 \
        --domains "$SET" --policy "$POLICY" --control "$OFFICE_RUN/dnsd.ctl" \
        --events "$OFFICE_RUN/dnsd-events.sock" --ratelimit 1000:2000 --timeout 1000 --allowed-every 1 --tcp-idle 1
    office_wait_port box udp 192.0.2.1 53
    office_wait_port box tcp 192.0.2.1 53
}

setup_file() {
    office_setup --dns=none
    export SET=$OFFICE_RUN/domains.set POLICY=$OFFICE_RUN/policy.set
    build_set "$SET"
    cp "$FIX/policy.json" "$POLICY"
    start_dnsd
}
teardown_file() { office_teardown; }
# A test that stops the box's unbound and fails half way must not take the rest down.
teardown() {
    if [ ! -e "$OFFICE_RUN/pids/box-unbound.pid" ]; then
        office_start box-unbound box unbound -d -c "$OFFICE_BOX_UNBOUND_CONF"
        office_wait_port box udp 127.0.0.1 5335
    fi
}

ctl() { control_call "$OFFICE_RUN/dnsd.ctl" "$1"; }   # COMMAND: answer on stdout

stat_of() {   # FIELD: one counter from "stats"
    ctl stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

q() {   # NODE SERVER NAME [dig args...]
    local node=$1 server=$2 name=$3
    shift 3
    office_exec "$node" dig +time=2 +tries=1 "@$server" "$name" "$@"
}

@test "pc gets an answer for good.test" {
    run q pc 192.0.2.1 good.test +short
    assert_success
    assert_output 198.18.10.10
}

@test "a blocked ad name: NXDOMAIN with EDE 17 naming category and list" {
    run q pc 192.0.2.1 ads.test
    assert_output --partial "status: NXDOMAIN"
    assert_output --partial "EDE: 17 (Filtered): (otasuke: ads (list test-ads))"
}

@test "a blocked malware name: EDE 15 Blocked; the exact-name list does not block siblings" {
    run q pc 192.0.2.1 malware.test
    assert_output --partial "status: NXDOMAIN"
    assert_output --partial "EDE: 15 (Blocked): (otasuke: malware (list test-malware))"
    # plain lists match exactly: other.malware.test is not on it (the zone has a wildcard)
    run q pc 192.0.2.1 other.malware.test +short
    assert_output 198.18.10.66
}

@test "a block is negatively cacheable: SOA in the authority section, TTL 60 (RFC 2308)" {
    run q pc 192.0.2.1 ads.test
    assert_output --partial "status: NXDOMAIN"
    assert_output --partial "AUTHORITY: 1"
    assert_output --regexp $'ads\\.test\\.[[:space:]]+60[[:space:]]+IN[[:space:]]+SOA[[:space:]]+blocked\\.otasuke\\.invalid\\. hostmaster\\.otasuke\\.invalid\\. 1 3600 600 86400 60'
    # the canary answer carries it too
    run q pc 192.0.2.1 use-application-dns.net
    assert_output --partial "AUTHORITY: 1"
}

@test "a subdomain of an adblock rule is blocked" {
    run q pc 192.0.2.1 deep.sub.ads.test AAAA
    assert_output --partial "status: NXDOMAIN"
    assert_output --partial "otasuke: ads (list test-ads)"
}

@test "without EDNS the block has no OPT record" {
    run q pc 192.0.2.1 ads.test +noedns
    assert_output --partial "status: NXDOMAIN"
    refute_output --partial "EDE"
    refute_output --partial "OPT PSEUDOSECTION"
}

@test "the DO bit comes back on a blocked answer" {
    run q pc 192.0.2.1 ads.test +dnssec
    assert_output --partial "flags: do;"
    assert_output --partial "EDE: 17"
}

@test "an allowlisted name under a blocked one passes (set allowlist and group allow)" {
    run q pc 192.0.2.1 banner.ads.test +short
    assert_output 198.18.10.80
    run q pc 192.0.2.1 www.good.test +short
    assert_line 198.18.10.10
}

@test "the owner's custom block for the staff group applies to pc only" {
    run q pc 192.0.2.1 shop.test
    assert_output --partial "status: NXDOMAIN"
    assert_output --partial "EDE: 15 (Blocked): (otasuke: custom (list group staff block))"
    run q iot 198.51.100.1 shop.test +short
    assert_output 198.18.10.20
}

@test "iot and pc get different policies: iot's group answers null" {
    run q pc 192.0.2.1 tracker.ads.test
    assert_output --partial "status: NXDOMAIN"
    run q iot 198.51.100.1 tracker.ads.test
    assert_output --partial "status: NOERROR"
    assert_output --regexp "tracker\.ads\.test\.[[:space:]]+60[[:space:]]+IN[[:space:]]+A[[:space:]]+0\.0\.0\.0"
    assert_output --partial "EDE: 17 (Filtered)"
    run q iot 198.51.100.1 tracker.ads.test AAAA +short
    assert_output "::"
}

@test "guests get the block page address and only malware is blocked for them" {
    run q guest 203.0.113.1 malware.test +short
    assert_output 192.0.2.1
    run q guest 203.0.113.1 malware.test AAAA +short
    assert_output fd00:0:0:1::1
    run q guest 203.0.113.1 tracker.ads.test +short
    assert_output 198.18.10.80
}

@test "safe search: staff get CNAMEs to the engines' safe hosts, guests do not" {
    run q pc 192.0.2.1 www.google.com +noall +answer
    assert_output --regexp "www\.google\.com\..*CNAME[[:space:]]+forcesafesearch\.google\.com\."
    assert_output --regexp "forcesafesearch\.google\.com\..*A[[:space:]]+198\.18\.20\.2"
    run q pc 192.0.2.1 www.youtube.com AAAA +noall +answer
    assert_output --regexp "CNAME[[:space:]]+restrictmoderate\.youtube\.com\."
    assert_output --partial "fd00:0:0:20::7"
    run q pc 192.0.2.1 www.bing.com +short
    assert_line strict.bing.com.
    assert_line 198.18.20.4
    run q pc 192.0.2.1 duckduckgo.com +short
    assert_line safe.duckduckgo.com.
    assert_line 198.18.20.9
    run q guest 203.0.113.1 www.google.com +short
    assert_output 198.18.20.1
}

@test "a CNAME into a blocked name is blocked, naming the CNAME target" {
    run q pc 192.0.2.1 tracker.cdn.test
    assert_output --partial "status: NXDOMAIN"
    assert_output --partial "otasuke: ads (list test-ads) via CNAME tracker.ads.test"
    # again from the cache: still blocked
    run q pc 192.0.2.1 tracker.cdn.test
    assert_output --partial "via CNAME tracker.ads.test"
    # a multi-hop chain ending at an allowed site passes
    run q pc 192.0.2.1 hop1.cdn.test +short
    assert_line 198.18.10.10
}

@test "the DoH canary use-application-dns.net gets NXDOMAIN for every group" {
    run q pc 192.0.2.1 use-application-dns.net
    assert_output --partial "status: NXDOMAIN"
    run q iot 198.51.100.1 use-application-dns.net
    assert_output --partial "status: NXDOMAIN"
}

@test "TCP queries work, pipelined ones too" {
    run q pc 192.0.2.1 good.test +tcp +short
    assert_output 198.18.10.10
    run q pc 192.0.2.1 ads.test +tcp
    assert_output --partial "EDE: 17"
    # three queries on one connection
    run office_exec pc dig +time=2 +tries=1 +tcp +keepopen @192.0.2.1 good.test +short \
        mail.good.test +short shop.test +short
    assert_line 198.18.10.10
    assert_success
}

@test "IPv6 transport and AAAA work" {
    run q pc fd00:0:0:1::1 good.test AAAA +short
    assert_output fd00:0:0:10::10
    run q pc fd00:0:0:1::1 ads.test AAAA
    assert_output --partial "EDE: 17"
    run q pc fd00:0:0:1::1 good.test +tcp +short
    assert_output 198.18.10.10
}

# Listens on the events socket in the background until a datagram contains $2 (or
# SECONDS pass, default 5), writing everything received to $1; sets LISTENER to its pid.
listen_events() {   # OUTFILE PATTERN [SECONDS]
    local sock=$OFFICE_RUN/dnsd-events.sock
    python3 - "$sock" "$1" "$2" "${3:-5}" <<'EOF' &
import os, socket, sys, time
try: os.unlink(sys.argv[1])
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.5)
end = time.time() + float(sys.argv[4])
with open(sys.argv[2], "w") as f:
    while time.time() < end:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            continue
        f.write(m)
        f.flush()
        if sys.argv[3] in m:
            break
os.unlink(sys.argv[1])
EOF
    LISTENER=$!
    for _ in $(seq 50); do [ -S "$sock" ] && return 0; sleep 0.05; done
    return 1
}

@test "a blocked query sends an event to the agent socket" {
    local out=$BATS_TEST_TMPDIR/events
    listen_events "$out" '"blocked"'
    q pc 192.0.2.1 malware.test >/dev/null
    wait "$LISTENER"
    run cat "$out"
    assert_output --regexp '"type":"blocked".*"client":"192\.0\.2\.10","name":"malware\.test","qtype":"A","category":"malware","list":"test-malware","group":"staff"'
}

@test "allowed queries are reported as periodic per-client counts" {
    local out=$BATS_TEST_TMPDIR/events
    sleep 1.2   # whatever iot asked before has been counted and flushed (every second)
    listen_events "$out" never 2.5
    for _ in 1 2 3; do q iot 198.51.100.1 good.test +short >/dev/null; done
    wait "$LISTENER"
    run python3 -c '
import json, sys
n = sum(e["count"] for e in map(json.loads, open(sys.argv[1]))
        if e["type"] == "allowed" and e["client"] == "198.51.100.10")
print(n)' "$out"
    assert_output 3
    run cat "$out"
    assert_output --regexp '"type":"allowed","ts":[0-9]+,"client":"198\.51\.100\.10","count":[123]'
}

@test "with no agent listening, events are dropped and counted, DNS unaffected" {
    local before after
    before=$(stat_of events_dropped)
    run q pc 192.0.2.1 malware.test
    assert_output --partial "status: NXDOMAIN"
    after=$(stat_of events_dropped)
    [ "$after" -gt "$before" ] || fail "events_dropped stayed at $before"
}

@test "stats and metrics on the control socket" {
    run ctl stats
    assert_success
    assert_output --regexp '^\{"queries_udp":[0-9]+,'
    assert_output --partial '"blocked":'
    assert_output --partial '"cache_hits":'
    run ctl metrics
    assert_output --partial "# TYPE otasuke_dnsd_blocked_total counter"
    assert_output --regexp "otasuke_dnsd_queries_udp_total [1-9][0-9]*"
    run ctl frobnicate
    assert_output --partial 'error: unknown command "frobnicate"'
}

@test "unbound stopped: SERVFAIL at once; unbound back: answers again" {
    office_stop box-unbound
    run q pc 192.0.2.1 good.test TXT
    assert_output --partial "status: SERVFAIL"
    run q pc fd00:0:0:1::1 good.test MX
    assert_output --partial "status: SERVFAIL"
    office_start box-unbound box unbound -d -c "$OFFICE_BOX_UNBOUND_CONF"
    office_wait_port box udp 127.0.0.1 5335
    office_wait_dns pc 192.0.2.1 good.test MX
    run q pc fd00:0:0:1::1 good.test MX +short
    assert_output "10 mail.good.test."
    run q pc 192.0.2.1 good.test TXT +short
    assert_output '"site=good.test"'
}

# fake_upstream MODE: a misbehaving upstream on box 127.0.0.1:5398 and a dnsd in front
# of it on 192.0.2.1:5305 (timeout 300 ms, control socket fake.ctl).
fake_upstream() {
    office_start fake-up box python3 "$FIX/fake-upstream.py" 127.0.0.1 5398 "$1"
    office_wait_port box udp 127.0.0.1 5398
    office_wait_port box tcp 127.0.0.1 5398
    office_start dnsd-fake box "$DNSD" -f --listen 192.0.2.1:5305 --upstream 127.0.0.1:5398 \
        --timeout 300 --control "$OFFICE_RUN/fake.ctl"
    office_wait_port box udp 192.0.2.1 5305
}
fake_stop() { office_stop dnsd-fake; office_stop fake-up; }
fake_stat() {   # FIELD
    python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"stats\n")
print(json.loads(s.makefile().read())[sys.argv[2]])' "$OFFICE_RUN/fake.ctl" "$1"
}

@test "a truncated upstream answer is retried over TCP" {
    fake_upstream tc
    run office_exec pc dig +time=2 +tries=1 -p 5305 @192.0.2.1 big.test +short
    assert_output 192.0.2.99
    run fake_stat tc_fallbacks
    assert_output 1
    run cat "$OFFICE_RUN/logs/fake-up.log"
    assert_line "udp big.test"
    assert_line "tcp big.test"
    fake_stop
}

@test "a silent upstream times out into SERVFAIL with EDE 22" {
    fake_upstream silent
    run office_exec pc dig +time=3 +tries=1 -p 5305 @192.0.2.1 slow.test
    assert_output --partial "status: SERVFAIL"
    assert_output --partial "EDE: 22 (No Reachable Authority): (otasuke: upstream timeout)"
    run fake_stat timeouts
    assert_output 1
    fake_stop
}

@test "an upstream answer to another question is ignored (then timeout)" {
    fake_upstream wrongq
    run office_exec pc dig +time=3 +tries=1 -p 5305 @192.0.2.1 spoof.test
    assert_output --partial "status: SERVFAIL"
    refute_output --partial "192.0.2.99"
    fake_stop
}

@test "a malformed upstream answer becomes SERVFAIL, counted as an upstream error" {
    fake_upstream garbage
    run office_exec pc dig +time=3 +tries=1 -p 5305 @192.0.2.1 junk.test
    assert_output --partial "status: SERVFAIL"
    assert_output --partial "malformed upstream answer"
    run fake_stat upstream_errors
    assert_output 1
    fake_stop
}

@test "an IPv6 upstream works" {
    office_start dnsd-v6up box "$DNSD" -f --listen 192.0.2.1:5306 --upstream '[::1]:5335'
    office_wait_port box udp 192.0.2.1 5306
    run office_exec pc dig +time=2 +tries=1 -p 5306 @192.0.2.1 good.test AAAA +short
    assert_output fd00:0:0:10::10
    office_stop dnsd-v6up
}

@test "TCP: pipelined queries in one segment all get answers; idle connections close" {
    run office_exec pc python3 - <<'EOF'
import socket, struct, time
def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
    return struct.pack(">H", len(q)) + q
s = socket.create_connection(("192.0.2.1", 53), timeout=3)
s.sendall(query(1, "good.test") + query(2, "ads.test") + query(3, "shop.test"))
f = s.makefile("rb")
got = {}
for _ in range(3):
    n = struct.unpack(">H", f.read(2))[0]
    m = f.read(n)
    got[struct.unpack(">H", m[:2])[0]] = m[3] & 15
print(sorted(got.items()))
time.sleep(2.5)   # --tcp-idle 1: the box closes the connection
s.settimeout(1)
print("closed" if s.recv(1) == b"" else "open")
EOF
    assert_line "[(1, 0), (2, 3), (3, 3)]"
    assert_line closed
}

@test "20 reloads while pc queries at 300 qps: every query answered" {
    local names=$BATS_TEST_TMPDIR/names
    printf '%s\n' "good.test A" "ads.test A" "tracker.cdn.test A" "mail.good.test A" \
        "banner.ads.test A" "malware.test AAAA" "www.google.com A" >"$names"
    office_exec pc dnsperf -s 192.0.2.1 -d "$names" -l 4 -Q 300 -t 2 \
        >"$BATS_TEST_TMPDIR/perf" 2>&1 &
    local perf=$! i before after
    before=$(stat_of reloads_ok)
    sleep 0.5
    for i in $(seq 10); do
        run ctl reload
        assert_output ok
        kill -HUP "$(cut -d' ' -f1 "$OFFICE_RUN/pids/dnsd.pid")"
        sleep 0.1
    done
    wait "$perf"
    after=$(stat_of reloads_ok)
    [ $((after - before)) -eq 20 ] || fail "expected 20 reloads, counted $((after - before))"
    run cat "$BATS_TEST_TMPDIR/perf"
    assert_output --regexp "Queries completed:[[:space:]]+[1-9][0-9]+"
    assert_output --regexp "Queries lost:[[:space:]]+0 "
}

@test "a corrupt or truncated set is refused and the old one stays in use" {
    # files are replaced by rename, as the agent does: dnsd maps the live one
    cp "$SET" "$BATS_TEST_TMPDIR/good.set"
    head -c 100 "$BATS_TEST_TMPDIR/good.set" >"$SET.tmp" && mv "$SET.tmp" "$SET"
    run ctl reload
    assert_output --regexp "^error: .*domains.set"
    run q pc 192.0.2.1 ads.test
    assert_output --partial "EDE: 17 (Filtered): (otasuke: ads (list test-ads))"
    # flip one byte in the middle: the checksum catches it
    cp "$BATS_TEST_TMPDIR/good.set" "$SET.tmp"
    printf '\xff' | dd of="$SET.tmp" bs=1 seek=200 conv=notrunc status=none
    mv "$SET.tmp" "$SET"
    run ctl reload
    assert_output --regexp "^error: "
    run q pc 192.0.2.1 tracker.ads.test
    assert_output --partial "status: NXDOMAIN"
    [ "$(stat_of reloads_failed)" -ge 2 ]
    cp "$BATS_TEST_TMPDIR/good.set" "$SET.tmp" && mv "$SET.tmp" "$SET"
    run ctl reload
    assert_output ok
}

@test "a broken policy is refused on reload with the field named; the old one stays" {
    cp "$POLICY" "$BATS_TEST_TMPDIR/policy.good"
    sed 's/"answer": "null"/"answer": "drop"/' "$BATS_TEST_TMPDIR/policy.good" >"$POLICY"
    run ctl reload
    assert_output --partial "groups[1].answer: expected one of nxdomain|null|blockpage"
    run q iot 198.51.100.1 tracker.ads.test +short
    assert_output 0.0.0.0
    cp "$BATS_TEST_TMPDIR/policy.good" "$POLICY"
    run ctl reload
    assert_output ok
}

@test "a policy change applies to cached names at once" {
    run q pc 192.0.2.1 static.cdn.test +short
    assert_output 198.18.10.90
    cp "$POLICY" "$BATS_TEST_TMPDIR/policy.good"
    sed 's/"block": \["shop.test"\]/"block": ["shop.test", "static.cdn.test"]/' \
        "$BATS_TEST_TMPDIR/policy.good" >"$POLICY"
    run ctl reload
    assert_output ok
    run q pc 192.0.2.1 static.cdn.test
    assert_output --partial "status: NXDOMAIN"
    cp "$BATS_TEST_TMPDIR/policy.good" "$POLICY"
    run ctl reload
    assert_output ok
}

@test "a flooding client is rate limited while pc still gets answers" {
    local names=$BATS_TEST_TMPDIR/flood
    printf '%s\n' "good.test A" >"$names"
    before=$(stat_of rate_limited)
    office_exec guest dnsperf -s 203.0.113.1 -d "$names" -l 2 -c 4 -q 50 \
        >"$BATS_TEST_TMPDIR/flood.out" 2>&1 &
    local flood=$!
    sleep 1
    run q pc 192.0.2.1 good.test +short
    assert_output 198.18.10.10
    wait "$flood"
    after=$(stat_of rate_limited)
    [ "$after" -gt "$before" ] || fail "no query was rate limited ($before -> $after)"
    run cat "$BATS_TEST_TMPDIR/flood.out"
    assert_output --partial "REFUSED"
}

@test "-n checks flags, set and policy and exits 0 or 1 with a clear message" {
    run "$DNSD" -n --domains "$SET" --policy "$POLICY"
    assert_success
    assert_output --partial "configuration ok"
    head -c 64 "$SET" >"$BATS_TEST_TMPDIR/short.set"
    run "$DNSD" -n --domains "$BATS_TEST_TMPDIR/short.set"
    assert_failure
    assert_output --partial "short.set"
    echo '{"version":1,"groups":[{"name":"a","categories":["cats"]}]}' >"$BATS_TEST_TMPDIR/p.set"
    run "$DNSD" -n --policy "$BATS_TEST_TMPDIR/p.set"
    assert_failure
    assert_output --partial 'p.set: groups[0].categories[0]: unknown category "cats"'
    run "$DNSD" -n --listen 192.0.2.1:99999
    assert_failure
    assert_output --partial "port must be 1-65535"
    run "$DNSD" -n --listen fd00::1:53
    assert_failure
    assert_output --partial "[ADDR]:PORT"
}

@test "on a wildcard listener answers leave from the address the client asked" {
    # a second address on the box's LAN side: without IP_PKTINFO the kernel would answer
    # from the primary 192.0.2.1 and dig would reject the reply
    office_exec box ip addr add 192.0.2.53/24 dev "$OFFICE_IF_BOX_LAN"
    office_exec box ip addr add fd00:0:0:1::53/64 dev "$OFFICE_IF_BOX_LAN" nodad
    office_start dnsd-any box "$DNSD" -f --listen 0.0.0.0:5302 --listen '[::]:5302' \
        --domains "$SET" --policy "$POLICY"
    office_wait_port box udp 0.0.0.0 5302
    run office_exec pc dig +time=2 +tries=1 -p 5302 @192.0.2.53 good.test +short
    assert_output 198.18.10.10
    run office_exec pc dig +time=2 +tries=1 -p 5302 @fd00:0:0:1::53 ads.test
    assert_output --partial "EDE: 17"
    refute_output --partial "unexpected source"
    run office_exec guest dig +time=2 +tries=1 -p 5302 @203.0.113.1 good.test +short
    assert_output 198.18.10.10
    office_stop dnsd-any
    office_exec box ip addr del 192.0.2.53/24 dev "$OFFICE_IF_BOX_LAN"
    office_exec box ip addr del fd00:0:0:1::53/64 dev "$OFFICE_IF_BOX_LAN"
}

@test "--user drops root after binding and reload still works" {
    cp "$SET" "$OFFICE_RUN/user.set"
    chmod 644 "$OFFICE_RUN/user.set"
    office_start dnsd-user box "$DNSD" -f --listen 192.0.2.1:5303 --domains "$OFFICE_RUN/user.set" \
        --user nobody
    office_wait_port box udp 192.0.2.1 5303
    local pid
    pid=$(cut -d' ' -f1 "$OFFICE_RUN/pids/dnsd-user.pid")
    run ps -o user= -p "$pid"
    assert_output nobody
    run office_exec pc dig +time=2 +tries=1 -p 5303 @192.0.2.1 ads.test
    assert_output --partial "status: NXDOMAIN"
    kill -HUP "$pid"
    sleep 0.2
    run office_exec pc dig +time=2 +tries=1 -p 5303 @192.0.2.1 good.test +short
    assert_output 198.18.10.10
    run grep -c "loaded: $OFFICE_RUN/user.set" "$OFFICE_RUN/logs/dnsd-user.log"
    assert_output 2
    office_stop dnsd-user
}

@test "--config reads the dns section; flags override it" {
    cat >"$BATS_TEST_TMPDIR/otasuke.conf" <<EOF
dns: {
    listen = [ "192.0.2.1:5304" ];
    upstream = "127.0.0.1:5335";
    domains = "$SET";
    policy = "$POLICY";
    rate_limit_qps = 0;
};
EOF
    run "$DNSD" -n --config "$BATS_TEST_TMPDIR/otasuke.conf"
    assert_success
    assert_output --partial "1 listen address(es), upstream 127.0.0.1:5335, $SET"
    run "$DNSD" -n --config "$BATS_TEST_TMPDIR/otasuke.conf" --listen 192.0.2.1:1 --listen 192.0.2.1:2
    assert_output --partial "2 listen address(es)"
    echo 'dns: { listen = [ "192.0.2.1:0" ]; };' >"$BATS_TEST_TMPDIR/bad.conf"
    run "$DNSD" -n --config "$BATS_TEST_TMPDIR/bad.conf"
    assert_failure
    assert_output --partial "bad.conf:1: dns.listen[0]"
}

@test "reload requests arriving together are all answered (loads are folded)" {
    local i
    for i in 1 2 3 4 5 6; do ctl reload >"$BATS_TEST_TMPDIR/r$i" & done
    wait
    for i in 1 2 3 4 5 6; do
        run cat "$BATS_TEST_TMPDIR/r$i"
        assert_output ok
    done
    run q pc 192.0.2.1 ads.test
    assert_output --partial "EDE: 17"
}

@test "started unprivileged as the --user already (systemd User=): runs; as another user: refuses" {
    run office_exec box setpriv --reuid nobody --regid nogroup --clear-groups \
        "$DNSD" -f --listen 127.0.0.1:5307 --user root
    assert_failure
    assert_output --partial "--user root: running as uid"
    office_start dnsd-nobody box setpriv --reuid nobody --regid nogroup --clear-groups \
        "$DNSD" -f --listen 192.0.2.1:5307 --user nobody
    office_wait_port box udp 192.0.2.1 5307
    run office_exec pc dig +time=2 +tries=1 -p 5307 @192.0.2.1 good.test +short
    assert_output 198.18.10.10
    office_stop dnsd-nobody
}

@test "garbage and unsupported opcodes get FORMERR / NOTIMP or nothing; serving goes on" {
    run q pc 192.0.2.1 good.test +opcode=status
    assert_output --partial "opcode: STATUS, status: NOTIMP"
    run office_exec pc python3 - <<'EOF2'
import os, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.connect(("192.0.2.1", 53))
# header + a pointer loop as the question: FORMERR
s.send(struct.pack(">HHHHHH", 77, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01")
r = s.recv(512)
print("formerr", struct.unpack(">H", r[:2])[0], r[3] & 15)
# random junk shorter than a header, and 200 random packets: no crash
for i in range(200):
    s.send(os.urandom(i % 64 + 1))
EOF2
    assert_output "formerr 77 1"
    run q pc 192.0.2.1 good.test +short
    assert_output 198.18.10.10
}
