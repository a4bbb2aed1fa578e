#!/usr/bin/env bats
# The box side of the hub beyond the feed: contributions when the owner switched sharing
# on (and nothing when off, never a client address), delegated changes relayed by the hub
# and judged by the agent against the owner's grants (verdict reported back to the hub),
# a revoked box cut off from MQTT at once, and the hub's enrolment rate limit. Last, what
# goes wrong on either side of a relayed change: the box's database cannot take it (another
# writer holds it) -> the hub hears "failed", not "refused", and a later poll applies it;
# the hub's message ids restart -> the box notices its last message is gone and fetches
# from the start, so the new messages apply.
# Hub in the hub namespace, box = agent + dnsd in the office, as in agent_hub.bats.

load helpers

BIN=${OTASUKE_BIN:-$OTASUKE_REPO/build/bin}
CTL=$BIN/otasukectl
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}
HUB=198.18.1.10
URL=https://$HUB:8443

hubd() { "$BIN/otasuke-hubd" -d "$HS" "$@"; }
admin() { hubd admin "$@"; }
sql() { sqlite3 "$HS/hub.db" "$@"; }
hubcurl() { office_exec box curl -s --cacert "$HS/tls/cert.pem" "$@"; }
agentapi() {   # METHOD PATH [BODY]: the agent's local API, as the owner (webd, otasukectl)
    curl -s --unix-socket "$ST/agent.sock" -X "$1" ${3:+-d "$3"} "http://agent$2"
}
enrol() {   # NAME ORG STATE-DIR
    local code
    code=$(admin code create "$2" 2>/dev/null) || return 1
    office_exec box "$CTL" hub enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" --name "$1" \
        --state "$3" >/dev/null
}
wait_broker_user() {   # STATE-DIR: until the broker's password file has the box's login
    local u i
    u=$(jq -r .mqtt_user "$1/hub.json")
    for i in $(seq 50); do grep -q "^$u:" "$HS/mosquitto/passwd" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
answer() {   # pc's answer for NAME from dnsd: NXDOMAIN or the addresses
    local out
    out=$(office_exec pc dig +time=2 +tries=1 @192.0.2.1 "$1" A) || { echo "dig failed"; return 0; }
    if grep -q 'status: NXDOMAIN' <<<"$out"; then echo NXDOMAIN; else
        office_exec pc dig +short +time=2 +tries=1 @192.0.2.1 "$1" A; fi
}
wait_answer() {   # NAME WANT [TENTHS=100]
    local i
    for ((i = 0; i < ${3:-100}; i++)); do
        [ "$(answer "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    assert_equal "$(answer "$1")" "$2"
}
box_id() { jq -r .box_id "$1/hub.json"; }
dump_logs() {
    echo "--- agent log"; office_log agent | grep -v '\[debug\]: api ' | tail -40
    echo "--- hubd log"; office_log hubd | grep -v "MQTT notice failed" | tail -30
    echo "--- hubd: $(office_log hubd | grep -c "MQTT notice failed") MQTT notices failed"
    echo "--- broker log"; office_log mqtt | grep -v "ACL pattern" | tail -20
}

start_agent() {
    office_start agent box "$AGENT" -f --log-level debug --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --dnsd-control "$ST/dnsd.ctl" --events "$ST/events.sock" \
        --hub "$ST/hub"
}

setup_file() {
    for b in otasuke-hubd otasuke-dnsd otasukectl; do
        [ -x "$BIN/$b" ] || skip "build $b first (make)"
    done
    [ -x "$AGENT" ] || skip "build otasuke-agent first (make)"
    office_setup --dns=none
    export HS=$(mktemp -d /tmp/otasuke-hubshare-bats.XXXXXX)
    chmod 711 "$HS"   # the broker (user mosquitto) re-reads its password file here
    admin tls --hosts "$HUB,127.0.0.1" >/dev/null
    for o in acme org2; do admin org add "$o" >/dev/null; done
    export OPTOKEN=$(admin operator add bats-msp)
    office_start mqtt hub "$OTASUKE_REPO/services/hub/mosquitto/start.sh" "$HS" \
        --local 127.0.0.1:1883 --tls "$HUB:8883" --hubd "$BIN/otasuke-hubd"
    office_start hubd hub "$BIN/otasuke-hubd" -f -d "$HS" -l "$HUB:8443" \
        --public-mqtt "$HUB:8883" --public-mqtt-tls
    local i
    for i in $(seq 50); do
        office_exec box curl -sf --cacert "$HS/tls/cert.pem" "$URL/v1/health" >/dev/null && break
        sleep 0.1
    done
    # notices (feed seq, "policy <id>") need hubd's own broker session
    for i in $(seq 50); do grep -q "MQTT: connected" "$OFFICE_RUN/logs/hubd.log" && break; sleep 0.1; done
    export ST=$OFFICE_RUN/agent
    mkdir -p "$ST"
    "$CTL" feed keygen -o "$ST/msp" >/dev/null
    enrol office acme "$ST/hub"
    wait_broker_user "$ST/hub"
    start_agent
    for i in $(seq 100); do [ -s "$ST/domains.set" ] && break; sleep 0.1; done
    office_start dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --upstream 127.0.0.1:5335 \
        --domains "$ST/domains.set" --policy "$ST/policy.set" --control "$ST/dnsd.ctl" \
        --events "$ST/events.sock"
    office_wait_dns pc 192.0.2.1 good.test
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    "$CTL" policy block malware.test --category malware >/dev/null
    "$CTL" policy block quiet-malware.test --category malware >/dev/null
    # ads blocked for staff too: a block of the owner's taste, which is never shared
    "$CTL" policy group staff --categories malware,phishing,c2,ads >/dev/null
    "$CTL" policy block tracker.ads.test --category ads >/dev/null
}

teardown() {   # what the agent, the hub and the broker saw, when a test failed
    [ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
}

teardown_file() {
    office_teardown
    [ -z "${HS:-}" ] || rm -rf "$HS"
}

@test "sharing is off until the owner switches it on: blocked malware lookups stay on the box" {
    run grep -c "MQTT: connected" "$OFFICE_RUN/logs/hubd.log"   # hubd reaches its broker
    assert_output 1
    run agentapi GET /v1/hub
    echo "$output" | jq -e '.enrolled == true and .sharing == false and .sharing_source == "default" and .pending == 0'
    run agentapi PUT /v1/hub '{"interval_seconds": 1}'
    echo "$output" | jq -e '.sharing == false and .interval_seconds == 1'
    wait_answer malware.test NXDOMAIN
    assert_equal "$(answer malware.test)" NXDOMAIN
    sleep 3
    run agentapi GET /v1/hub
    echo "$output" | jq -e '.pending == 0 and .sent_total == 0 and .last_contribution == null'
    assert_equal "$(sql 'SELECT count(*) FROM contributions')" 0
}

@test "with sharing on, a blocked malware lookup reaches the hub under the org's pseudonym, no client address" {
    run agentapi PUT /v1/hub '{"sharing": true}'
    echo "$output" | jq -e '.sharing == true and .sharing_source == "setting"'
    assert_equal "$(answer malware.test)" NXDOMAIN
    assert_equal "$(answer MALWARE.test)" NXDOMAIN
    assert_equal "$(answer tracker.ads.test)" NXDOMAIN   # blocked, but the owner's taste
    assert_equal "$(answer good.test)" 198.18.10.10       # allowed: never shared
    local i
    for i in $(seq 100); do
        [ "$(sql "SELECT count FROM contributions WHERE indicator='malware.test'")" = 2 ] && break
        sleep 0.1
    done
    run sql "SELECT indicator, kind, category, count FROM contributions"
    assert_output "malware.test|domain|malware|2"
    # the pseudonym is the org's: the same box contributing by hand lands under it too
    run office_exec box "$CTL" hub contribute hand.example.test --category phishing --state "$ST/hub"
    assert_success
    assert_equal "$(sql "SELECT count(DISTINCT org_pseud) FROM contributions")" 1
    run sql "SELECT org_pseud FROM contributions WHERE indicator='malware.test'"
    assert_output --regexp '^[0-9a-f]{32}$'
    refute_output --partial acme
    # nothing the hub keeps or logs names pc (192.0.2.10 / fd00:0:0:1::10)
    run bash -c "sqlite3 '$HS/hub.db' .dump; cat '$OFFICE_RUN/logs/hubd.log'"
    refute_output --partial 192.0.2.10
    refute_output --partial fd00:0:0:1::10
    refute_output --partial good.test
    refute_output --partial tracker.ads.test
    run agentapi GET /v1/hub
    echo "$output" | jq -e '.pending == 0 and .sent_total >= 1 and (.last_contribution | type) == "number" and .last_error == null'
}

@test "otasuke.conf's hub.sharing is the default; the owner's setting wins" {
    local d=$BATS_TEST_TMPDIR/cfg i
    mkdir -p "$d"
    printf 'hub = { sharing = true; };\n' > "$d/otasuke.conf"
    office_start agent-cfg box "$AGENT" -f --db "$d/agent.db" --state-dir "$d" \
        --socket "$d/agent.sock" --config "$d/otasuke.conf"
    for i in $(seq 50); do [ -S "$d/agent.sock" ] && break; sleep 0.1; done
    run curl -s --unix-socket "$d/agent.sock" http://agent/v1/hub
    echo "$output" | jq -e '.sharing == true and .sharing_source == "config" and .enrolled == false'
    run curl -s --unix-socket "$d/agent.sock" -X PUT -d '{"sharing": false}' http://agent/v1/hub
    echo "$output" | jq -e '.sharing == false and .sharing_source == "setting"'
    run curl -s --unix-socket "$d/agent.sock" -X PUT -d '{"sharing": "yes"}' http://agent/v1/hub
    assert_output --partial '"field": "sharing"'
    office_stop agent-cfg
}

@test "switching sharing off drops what waits and sends nothing more" {
    run "$CTL" hub sharing off --json   # the CLI's way to the same switch
    assert_success
    echo "$output" | jq -e '.sharing == false and .pending == 0'
    assert_equal "$(answer quiet-malware.test)" NXDOMAIN
    sleep 3
    assert_equal "$(sql "SELECT count(*) FROM contributions WHERE indicator='quiet-malware.test'")" 0
    run "$CTL" hub sharing
    assert_success
    assert_output --regexp 'sharing: *(false|no|off)'
    assert_output --regexp 'pending: *0'
    run "$CTL" hub sharing maybe
    assert_failure
    run "$CTL" policy audit --json
    assert_output --partial "hub.sharing"
}

@test "counts wait while the hub is down, survive an agent restart, and arrive when it is back" {
    run agentapi PUT /v1/hub '{"sharing": true}'
    office_stop hubd
    assert_equal "$(answer quiet-malware.test)" NXDOMAIN
    assert_equal "$(answer quiet-malware.test)" NXDOMAIN
    local i
    for i in $(seq 50); do
        agentapi GET /v1/hub | jq -e '.last_error != null' >/dev/null && break
        sleep 0.1
    done
    run agentapi GET /v1/hub
    echo "$output" | jq -e '.pending == 1 and .last_error != null'
    # kept on disk while the hub is away (indicators and counts only)
    for i in $(seq 50); do [ -s "$ST/hub/share-pending.json" ] && break; sleep 0.1; done
    run jq -c '.[] | [.indicator, .count]' "$ST/hub/share-pending.json"
    assert_output '["quiet-malware.test",2]'
    run stat -c %a "$ST/hub/share-pending.json"
    assert_output 600
    office_stop agent
    start_agent
    for i in $(seq 50); do agentapi GET /v1/hub 2>/dev/null | jq -e '.pending == 1' >/dev/null && break; sleep 0.1; done
    run agentapi GET /v1/hub
    echo "$output" | jq -e '.pending == 1 and .sharing == true'
    office_start hubd hub "$BIN/otasuke-hubd" -f -d "$HS" -l "$HUB:8443" \
        --public-mqtt "$HUB:8883" --public-mqtt-tls
    # retried after 1 s, then 2 s ... (interval 1 s): well within 15 s
    for i in $(seq 150); do
        [ "$(sql "SELECT count FROM contributions WHERE indicator='quiet-malware.test'")" = 2 ] && break
        sleep 0.1
    done
    assert_equal "$(sql "SELECT count FROM contributions WHERE indicator='quiet-malware.test'")" 2
    run agentapi GET /v1/hub
    echo "$output" | jq -e '.pending == 0 and .last_error == null'
    [ ! -e "$ST/hub/share-pending.json" ]
}

@test "a DNS tunnel the detectors find is shared as its base domain, never the names" {
    run agentapi PUT /v1/hub '{"sharing": true}'
    local i label
    for i in $(seq 25); do
        label=$(head -c 25 /dev/urandom | base32 | tr -d = | tr 'A-Z' 'a-z')
        office_exec pc dig +time=1 +tries=1 @192.0.2.1 "$label.tunnel.test" TXT >/dev/null || true
        echo "$label" >> "$BATS_TEST_TMPDIR/labels"
    done
    for i in $(seq 100); do
        [ "$(sql "SELECT category FROM contributions WHERE indicator='tunnel.test'")" = c2 ] && break
        sleep 0.1
    done
    assert_equal "$(sql "SELECT category FROM contributions WHERE indicator='tunnel.test'")" c2
    # the smuggled labels stay on the box
    run bash -c "sqlite3 '$HS/hub.db' .dump | grep -c -F -f '$BATS_TEST_TMPDIR/labels'"
    assert_output 0
}

post_policy() {   # BODY-FILE: sign it as the MSP and hand it to the hub for this box
    local sig keyid
    sig=$("$CTL" delegate sign --key "$ST/msp.key" "$1")
    keyid=$("$CTL" feed keygen -o "$BATS_TEST_TMPDIR/unused" | jq -r .key_id)   # any 16 hex
    jq -n --rawfile c "$1" --arg s "$sig" --arg k "$keyid" \
        '{change: ($c | rtrimstr("\n")), signer: $k, signature: $s}' > "$1.hub"
    hubcurl -H "Authorization: Bearer $OPTOKEN" --data-binary @"$1.hub" \
        "$URL/v1/boxes/$(box_id "$ST/hub")/policy"
}

wait_result() {   # MSG-ID: until the hub has the box's verdict; prints it
    local i out
    for i in $(seq 100); do
        out=$(hubcurl -H "Authorization: Bearer $OPTOKEN" "$URL/v1/boxes/$(box_id "$ST/hub")/policy" |
              jq -c --argjson id "$1" '.messages[] | select(.id == $id)')
        [ -n "$out" ] && [ "$(jq -r .result <<<"$out")" != pending ] && break
        sleep 0.1
    done
    echo "$out"
}

@test "a delegated change relayed by the hub is applied inside the grant, refused outside, and the MSP sees which" {
    run "$CTL" delegate add msp "$ST/msp.pub"
    assert_success
    run "$CTL" delegate grant msp --categories malware --groups '*' --actions add_block
    assert_success
    assert_equal "$(answer shop.test)" 198.18.10.20
    "$CTL" delegate body msp add_block shop.test malware > "$ST/in.json"
    run post_policy "$ST/in.json"
    assert_success
    local id; id=$(jq -r .id <<<"$output")
    [ "$id" -gt 0 ]
    wait_answer shop.test NXDOMAIN
    run wait_result "$id"
    echo "$output" | jq -e '.result == "applied" and (.result_detail | test("1 change"))'
    run "$CTL" explain shop.test
    assert_output --partial "msp"

    "$CTL" delegate body msp add_block good.test social > "$ST/out.json"
    run post_policy "$ST/out.json"
    id=$(jq -r .id <<<"$output")
    run wait_result "$id"
    echo "$output" | jq -e '.result == "refused" and (.result_detail | test("outside every live grant"))'
    # delivered verdicts leave nothing waiting on the box
    for i in $(seq 20); do [ ! -e "$ST/hub/policy-verdicts.json" ] && break; sleep 0.1; done
    [ ! -e "$ST/hub/policy-verdicts.json" ]
    assert_equal "$(answer good.test)" 198.18.10.10
    run "$CTL" policy audit --json
    assert_output --partial '"result": "refused"'
    assert_output --partial "good.test"
    # the hub's own trail has both verdicts; the box remembers where it is
    run sql "SELECT detail FROM audit WHERE action = 'policy-result'"
    assert_output --partial "applied"
    assert_output --partial "refused"
    run agentapi GET /v1/hub
    echo "$output" | jq -e --argjson id "$id" '.policy.last_id == $id and .policy.applied == 1 and .policy.refused == 1'
    run sqlite3 "$ST/agent.db" "SELECT value FROM settings WHERE key = 'hub_policy_last'"
    assert_output "$id"
}

@test "a revoked box loses its MQTT session at once" {
    local cut=$BATS_FILE_TMPDIR/box-cut
    enrol cut org2 "$cut"
    wait_broker_user "$cut"
    office_start watch-cut box "$CTL" hub watch --seconds 60 --state "$cut"
    # the session is live: a relayed message reaches it
    local i id
    for i in $(seq 50); do
        id=$(hubcurl -H "Authorization: Bearer $OPTOKEN" -d '{"change":"{\"delegate\":\"x\"}","signer":"0123456789abcdef","signature":"eA=="}' \
             "$URL/v1/boxes/$(box_id "$cut")/policy" | jq -r .id)
        sleep 0.2
        grep -q "{\"policy\":$id}" "$OFFICE_RUN/logs/watch-cut.log" && break
    done
    run grep -c "{\"policy\":$id}" "$OFFICE_RUN/logs/watch-cut.log"
    assert_output 1
    run admin box revoke "$(box_id "$cut")"
    assert_success
    # the broker reloads its password file and drops the session; the watch gives up
    for i in $(seq 50); do
        grep -q "refused this box" "$OFFICE_RUN/logs/watch-cut.log" && break
        sleep 0.1
    done
    cat "$OFFICE_RUN/logs/watch-cut.log"
    run grep -c "refused this box's credentials" "$OFFICE_RUN/logs/watch-cut.log"
    assert_output 1
    run hubcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OPTOKEN" \
        -d '{"change":"{}","signer":"0123456789abcdef","signature":"eA=="}' \
        "$URL/v1/boxes/$(box_id "$cut")/policy"
    assert_output 404
    run office_exec box "$CTL" hub policy --state "$cut"
    assert_failure
    assert_output --partial "revoked"
    # the office's box keeps its session: a notice still brings it a change at once
    "$CTL" delegate body msp add_block other.malware.test malware > "$ST/after.json"
    run post_policy "$ST/after.json"
    id=$(jq -r .id <<<"$output")
    run wait_result "$id"
    echo "$output" | jq -e '.result == "applied"'
}

@test "enrolment attempts are rate-limited per source address (429 with a clear message)" {
    local i code
    for i in $(seq 10); do
        run hubcurl -o /dev/null -w '%{http_code}' -d '{"code":"0123456789abcdef0123456789abcdef"}' "$URL/v1/enroll"
        assert_output 400
    done
    run hubcurl -w ' %{http_code}' -X POST "$URL/v1/enroll/challenge"
    assert_output --partial " 429"
    assert_output --partial "too many failed enrolment attempts from 198.18.0.2"
    # a valid code from that address waits too, and says why
    code=$(admin code create org2 2>/dev/null)
    run office_exec box "$CTL" hub enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" \
        --state "$BATS_TEST_TMPDIR/late"
    assert_failure
    assert_output --partial "too many"
    # another address is not affected
    run office_exec wan curl -s -o /dev/null -w '%{http_code}' --cacert "$HS/tls/cert.pem" \
        -X POST "$URL/v1/enroll/challenge"
    assert_output 200
}

result_is() {   # MSG-ID WANT [SECONDS=20]: until the hub's record of the box's answer is WANT
    local i out
    for ((i = 0; i < ${3:-20} * 5; i++)); do
        out=$(hubcurl -H "Authorization: Bearer $OPTOKEN" "$URL/v1/boxes/$(box_id "$ST/hub")/policy" |
              jq -c --argjson id "$1" '.messages[] | select(.id == $id)')
        [ "$(jq -r .result <<<"$out")" = "$2" ] && { echo "$out"; return 0; }
        sleep 0.2
    done
    echo "message $1: the hub has $out, wanted $2" >&2
    return 1
}
relay() {   # INDICATOR [CATEGORY]: an add_block by the MSP (granted malware above) relayed; prints its id
    "$CTL" delegate body msp add_block "$1" "${2:-malware}" > "$BATS_TEST_TMPDIR/$1.json"
    post_policy "$BATS_TEST_TMPDIR/$1.json" | jq -r .id
}
rule_count() { sqlite3 "$ST/agent.db" "SELECT count(*) FROM rules WHERE pattern = '$1'"; }
last_handled() { sqlite3 "$ST/agent.db" "SELECT value FROM settings WHERE key = 'hub_policy_last'"; }

@test "a change the box's database cannot take now is reported 'failed' (not refused) and applied at a later poll" {
    local id before i
    before=$(last_handled)
    # Another writer holds agent.db (WAL: reads go on, writes wait 5 s, then "busy").
    python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(9)
c.execute("COMMIT")' "$ST/agent.db" "$BATS_TEST_TMPDIR/locked" &
    local lock=$!
    for i in $(seq 50); do [ -e "$BATS_TEST_TMPDIR/locked" ] && break; sleep 0.1; done
    id=$(relay busy.malware.test)
    run result_is "$id" failed 15
    assert_success
    assert_output --partial "database is locked"
    assert_output --partial "tries again"
    # not handled: the box still stands at the message before it
    assert_equal "$(last_handled)" "$before"
    assert_equal "$(rule_count busy.malware.test)" 0
    wait "$lock"
    # fetched again (after 5 s) and applied now; the hub's record follows
    run result_is "$id" applied 30
    assert_success
    assert_equal "$(rule_count busy.malware.test)" 1
    assert_equal "$(last_handled)" "$id"
    run agentapi GET /v1/hub
    echo "$output" | jq -e '.policy.failed >= 1 and .policy.last.result == "applied"'
    # a refusal stays a refusal: a category outside the grant, recorded as handled
    id=$(relay social.test social)
    run result_is "$id" refused
    assert_success
    assert_output --partial "outside every live grant"
    assert_equal "$(last_handled)" "$id"
}

@test "the hub's message ids restart: the box notices its last message is gone and applies the new ones" {
    local before id
    before=$(last_handled)
    [ "$before" -ge 2 ]
    # The hub loses its messages and numbers from 1 again (as a replaced or restored
    # database would); hubd keeps running.
    sql "DELETE FROM policy_msgs; DELETE FROM sqlite_sequence WHERE name = 'policy_msgs';" 2>/dev/null ||
        sql "DELETE FROM policy_msgs"
    id=$(relay renumbered.malware.test)
    [ "$id" -lt "$before" ]
    run result_is "$id" applied 30
    assert_success
    assert_equal "$(rule_count renumbered.malware.test)" 1
    assert_equal "$(last_handled)" "$id"
    run grep -c "message ids restarted" "$OFFICE_RUN/logs/agent.log"
    [ "$output" -ge 1 ]
    run agentapi GET /v1/hub
    echo "$output" | jq -e --argjson id "$id" '.policy.last_id == $id and .policy.id_restarts >= 1'
    # from here on the ordinary path: the next message follows at once
    id=$(relay after-restart.malware.test)
    run result_is "$id" applied 20
    assert_success
    assert_equal "$(rule_count after-restart.malware.test)" 1
}
