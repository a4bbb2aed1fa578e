#!/usr/bin/env bats
# The owner's run-time detector settings reach dnsd: the agent writes the DNS-tunnel
# thresholds into STATE/query-events.json and the compile's reload makes dnsd sample with
# them. A lower label length lets dnsd send names it skipped before (so the tunnel is
# seen), a higher name count widens dnsd's per-client bucket (so the detector gets enough
# names in one burst), and a broken file is refused in words while the thresholds in use
# stay. Real agent, dnsd and unbound in the office; no fwd (events come from dnsd only).

load helpers

BIN=$OTASUKE_REPO/build/bin
CTL=$BIN/otasukectl
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}

setup_file() {
    [ -x "$AGENT" ] && [ -x "$BIN/otasuke-dnsd" ] ||
        skip "build otasuke-agent and otasuke-dnsd first (make)"
    office_setup --dns=none
    export ST=$OFFICE_RUN/thresholds
    mkdir -p "$ST"
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    office_start agent box "$AGENT" -f --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --dnsd-control "$ST/dnsd.ctl" --events "$ST/events.sock"
    local i
    for ((i = 0; i < 100; i++)); do "$CTL" status >/dev/null 2>&1 && [ -s "$ST/policy.set" ] && break; sleep 0.1; done
    "$CTL" status >/dev/null || { office_log agent >&2; return 1; }
    # No --query-events: dnsd finds the agent's file next to --policy.
    office_start dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --upstream 127.0.0.1:5335 \
        --domains "$ST/domains.set" --policy "$ST/policy.set" --control "$ST/dnsd.ctl" \
        --events "$ST/events.sock" --allowed-every 86400   # only query events are counted here
    office_wait_dns pc 192.0.2.1 good.test
}

teardown() {   # what dnsd and the agent saw, when a test failed
    [ -n "${BATS_TEST_COMPLETED:-}" ] && return 0
    echo "--- dnsd stats: $(dnsd_ctl stats 2>&1)"
    echo "--- query-events.json: $(cat "$ST/query-events.json" 2>&1)"
    echo "--- agent log"; office_log agent | tail -25
    echo "--- dnsd log"; office_log dnsd | tail -10
}

teardown_file() {
    office_teardown
}

dnsd_ctl() { control_call "$ST/dnsd.ctl" "$1"; }
dnsd_stat() { dnsd_ctl stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# qe FIELD: a field of the agent's query-events file.
qe() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$ST/query-events.json" "$1" 2>/dev/null; }

# set_detect KEY=VALUE FIELD WANT: the owner's setting through the agent, then until the
# agent's file has FIELD=WANT and dnsd logged that it uses it (LOG-TEXT).
set_detect() {
    local i
    "$CTL" incident settings "$1" >/dev/null || return 1
    for ((i = 0; i < 100; i++)); do [ "$(qe "$2")" = "$3" ] && break; sleep 0.1; done
    assert_equal "$(qe "$2")" "$3"
    wait_log dnsd "$4"
}

# wait_log NAME TEXT [SECONDS=10]: until the daemon's log says TEXT.
wait_log() {
    local i
    for ((i = 0; i < ${3:-10} * 10; i++)); do
        grep -qF -- "$2" "$OFFICE_RUN/logs/$1.log" && return 0
        sleep 0.1
    done
    echo "$1 never logged '$2'; its log:" >&2
    tail -20 "$OFFICE_RUN/logs/$1.log" >&2
    return 1
}

# names N LEN SUFFIX: N lookups (dig -f lines) whose first label is LEN distinct random
# letters and digits: random-looking (entropy log2(LEN)) but shorter than 16 when LEN is.
names() {
    python3 -c 'import random, sys
n, ln, sfx = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
abc = "abcdefghijklmnopqrstuvwxyz0123456789"
for _ in range(n): print("".join(random.sample(abc, ln)) + "." + sfx + " A")' "$@"
}

# tunnel_incident DEVICE: the id of a dns_tunnel incident on DEVICE ("" when none).
tunnel_incident() {
    "$CTL" incident list --json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if i["kind"] == "dns_tunnel" and i["device"] == sys.argv[1]:
        print(i["id"]); break' "$1"
}

wait_tunnel() {
    local i id
    for ((i = 0; i < 50; i++)); do
        id=$(tunnel_incident "$1")
        [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.1
    done
    return 1
}

@test "the agent writes dnsd's query-event thresholds at start: the detector's defaults" {
    [ -s "$ST/query-events.json" ]
    assert_equal "$(qe label_len)" 30
    assert_equal "$(qe burst)" 40
    assert_equal "$(qe rate)" 5
}

@test "the owner lowers the label length at run time: dnsd sends 12-character random labels and the tunnel is seen" {
    local sent0 sent1
    # Before: 25 lookups with 12-character labels are below dnsd's 16-character floor for
    # random labels and its 30-character length, so nothing reaches the detector.
    names 25 12 a.good.test > "$ST/before.txt"
    sent0=$(dnsd_stat events_sent)
    run office_exec pc dig +time=2 +tries=1 @192.0.2.1 -f "$ST/before.txt"
    assert_equal "$(grep -c 'status: ' <<<"$output")" 25
    sleep 0.5
    sent1=$(dnsd_stat events_sent)
    assert_equal "$sent1" "$sent0"
    assert_equal "$(tunnel_incident 192.0.2.10)" ""
    # The owner's setting: labels from 12 characters are suspicious.
    set_detect detect_tunnel_label_len=12 label_len 12 "query events: labels from 12 characters"
    # One lookup at a time, as a tunnel client would: the agent's datagram queue is short
    # (net.unix.max_dgram_qlen, 10 here), and a loaded agent must not lose the burst.
    names 30 12 b.good.test > "$ST/after.txt"
    local name qtype
    while read -r name qtype; do
        office_exec pc dig +time=2 +tries=1 @192.0.2.1 "$name" "$qtype" >/dev/null
    done < "$ST/after.txt"
    run wait_tunnel 192.0.2.10
    assert_success
    run "$CTL" incident show "$output"
    assert_output --partial "long random-looking names under good.test"
    [ "$(dnsd_stat events_sent)" -ge $((sent1 + 20)) ]
}

@test "the owner asks for more names: dnsd's bucket lets them all through in one burst" {
    # 60 names within the window: the default bucket (40 at once, then 5 a second) passes
    # about 45 of a quick burst of 90 and the detector would never reach 60.
    set_detect detect_tunnel_names=60 burst 120 "burst 120"
    names 90 20 c.shop.test > "$ST/burst.txt"
    run office_exec iot dig +time=2 +tries=1 @192.0.2.1 -f "$ST/burst.txt"
    assert_equal "$(grep -c 'status: ' <<<"$output")" 90
    # (a few may still meet a full agent socket: 30 to spare)
    run wait_tunnel 198.51.100.10
    assert_success
}

@test "a broken query-events file is refused in words; dnsd keeps its thresholds and answers" {
    printf '{"version":1,"label_len":0}\n' > "$ST/query-events.json"
    run dnsd_ctl reload
    assert_output "ok"    # the set and the policy reloaded; only the thresholds were refused
    wait_log dnsd "query-events.json: label_len: 0 is outside 1..63"
    wait_log dnsd "keeping label 12"
    run office_exec pc dig +short +time=2 +tries=1 @192.0.2.1 good.test A
    assert_output 198.18.10.10
    # The next settings change writes a good file again.
    run "$CTL" incident settings detect_tunnel_names=0 detect_tunnel_label_len=0
    assert_success
    for ((i = 0; i < 100; i++)); do [ "$(qe label_len 2>/dev/null)" = 30 ] && break; sleep 0.1; done
    assert_equal "$(qe label_len)" 30
    wait_log dnsd "query events: labels from 30 characters"
}
