#!/usr/bin/env bats
# Relayed delegated changes when something goes wrong on either side: the box's database
# cannot take a change (another writer holds it) -> the hub hears "failed" with the reason,
# not "refused", and the box applies the change at a later poll; the hub's message ids
# restart (its policy messages are gone and numbering starts again) -> the box notices
# that the last message it handled is not there any more and fetches from the start, so
# the hub's new messages apply instead of being ignored. Real hubd + mosquitto in the hub
# namespace, the agent on the box (no dnsd: the rules are what is checked).

load helpers

BIN=${OTASUKE_BIN:-$OTASUKE_REPO/build/bin}
CTL=$BIN/otasukectl
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}
HUB=198.18.1.10
URL=https://$HUB:8443

admin() { "$BIN/otasuke-hubd" -d "$HS" admin "$@"; }
sql() { sqlite3 "$HS/hub.db" "$@"; }
hubcurl() { office_exec box curl -s --cacert "$HS/tls/cert.pem" "$@"; }
box_id() { jq -r .box_id "$ST/hub/hub.json"; }
agentapi() { curl -s --unix-socket "$ST/agent.sock" "http://agent$1"; }
dump_logs() {
    echo "--- agent log"; office_log agent | grep -v '\[debug\]: api ' | tail -40
    echo "--- hubd log"; office_log hubd | tail -20
    echo "--- rules on the box"; sqlite3 "$ST/agent.db" "SELECT id, pattern, kind, grant_id FROM rules" 2>&1
}

setup_file() {
    for b in otasuke-hubd otasukectl; do
        [ -x "$BIN/$b" ] || skip "build $b first (make)"
    done
    [ -x "$AGENT" ] || skip "build otasuke-agent first (make)"
    office_setup --dns=none
    export HS=$(mktemp -d /tmp/otasuke-hubpolicy-bats.XXXXXX)
    chmod 711 "$HS"   # the broker (user mosquitto) re-reads its password file here
    admin tls --hosts "$HUB,127.0.0.1" >/dev/null
    admin org add acme >/dev/null
    export OPTOKEN=$(admin operator add bats-msp)
    office_start mqtt hub "$OTASUKE_REPO/services/hub/mosquitto/start.sh" "$HS" \
        --local 127.0.0.1:1883 --tls "$HUB:8883" --hubd "$BIN/otasuke-hubd"
    office_start hubd hub "$BIN/otasuke-hubd" -f -d "$HS" -l "$HUB:8443" \
        --public-mqtt "$HUB:8883" --public-mqtt-tls
    local i code u
    for i in $(seq 50); do
        office_exec box curl -sf --cacert "$HS/tls/cert.pem" "$URL/v1/health" >/dev/null && break
        sleep 0.1
    done
    for i in $(seq 50); do grep -q "MQTT: connected" "$OFFICE_RUN/logs/hubd.log" && break; sleep 0.1; done
    export ST=$OFFICE_RUN/agent
    mkdir -p "$ST"
    "$CTL" feed keygen -o "$ST/msp" >/dev/null
    code=$(admin code create acme)
    office_exec box "$CTL" hub enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" --name office \
        --state "$ST/hub" >/dev/null
    u=$(jq -r .mqtt_user "$ST/hub/hub.json")
    for i in $(seq 50); do grep -q "^$u:" "$HS/mosquitto/passwd" 2>/dev/null && break; sleep 0.1; done
    office_start agent box "$AGENT" -f --log-level debug --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --events "$ST/events.sock" --hub "$ST/hub"
    for i in $(seq 100); do [ -s "$ST/domains.set" ] && break; sleep 0.1; done
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    "$CTL" delegate add msp "$ST/msp.pub" >/dev/null
    "$CTL" delegate grant msp --categories malware --groups '*' --actions add_block >/dev/null
}

teardown() {
    [ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
}

teardown_file() {
    [ -z "${LOCKPID:-}" ] || kill "$LOCKPID" 2>/dev/null || true
    office_teardown
    [ -z "${HS:-}" ] || rm -rf "$HS"
}

post_policy() {   # INDICATOR [CATEGORY]: sign an add_block as the MSP, hand it to the hub; prints the id
    "$CTL" delegate body msp add_block "$1" "${2:-malware}" > "$BATS_TEST_TMPDIR/$1.json"
    local sig keyid
    sig=$("$CTL" delegate sign --key "$ST/msp.key" "$BATS_TEST_TMPDIR/$1.json")
    keyid=$("$CTL" feed keygen -o "$BATS_TEST_TMPDIR/unused" | jq -r .key_id)
    jq -n --rawfile c "$BATS_TEST_TMPDIR/$1.json" --arg s "$sig" --arg k "$keyid" \
        '{change: ($c | rtrimstr("\n")), signer: $k, signature: $s}' > "$BATS_TEST_TMPDIR/$1.hub"
    hubcurl -H "Authorization: Bearer $OPTOKEN" --data-binary @"$BATS_TEST_TMPDIR/$1.hub" \
        "$URL/v1/boxes/$(box_id)/policy" | jq -r .id
}

result() {   # MSG-ID: the hub's record of the box's answer: RESULT<TAB>DETAIL
    hubcurl -H "Authorization: Bearer $OPTOKEN" "$URL/v1/boxes/$(box_id)/policy" |
        jq -r --argjson id "$1" '.messages[] | select(.id == $id) | "\(.result)\t\(.result_detail)"'
}

wait_result() {   # MSG-ID WANT [SECONDS=20]: until the hub's record says WANT; prints it
    local i out
    for ((i = 0; i < ${3:-20} * 5; i++)); do
        out=$(result "$1")
        [ "${out%%$'\t'*}" = "$2" ] && { echo "$out"; return 0; }
        sleep 0.2
    done
    echo "message $1: hub has '$out', wanted $2" >&2
    return 1
}

rule_count() { sqlite3 "$ST/agent.db" "SELECT count(*) FROM rules WHERE pattern = '$1'"; }
last_handled() { sqlite3 "$ST/agent.db" "SELECT value FROM settings WHERE key = 'hub_policy_last'"; }

@test "a change the box's database cannot take now is reported 'failed' (not refused) and applied at a later poll" {
    local id first
    first=$(post_policy first.malware.test)
    wait_result "$first" applied
    # Another writer holds agent.db (WAL: reads go on, writes wait 5 s, then "busy").
    python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(9)
c.execute("COMMIT")' "$ST/agent.db" "$BATS_TEST_TMPDIR/locked" &
    LOCKPID=$!
    for i in $(seq 50); do [ -e "$BATS_TEST_TMPDIR/locked" ] && break; sleep 0.1; done
    id=$(post_policy busy.malware.test)
    run wait_result "$id" failed 15
    assert_success
    assert_output --partial "database is locked"
    assert_output --partial "tries again"
    # not handled: the box still stands at the message before it
    assert_equal "$(last_handled)" "$first"
    assert_equal "$(rule_count busy.malware.test)" 0
    wait "$LOCKPID"
    LOCKPID=
    # the box fetches it again (after 5 s) and now applies it; the hub's record follows
    run wait_result "$id" applied 30
    assert_success
    assert_equal "$(rule_count busy.malware.test)" 1
    assert_equal "$(last_handled)" "$id"
    run agentapi /v1/hub
    echo "$output" | jq -e '.policy.failed >= 1 and .policy.last.result == "applied"'
    # a refusal stays a refusal: a category outside the grant, not retried
    id=$(post_policy social.test social)
    run wait_result "$id" refused
    assert_success
    assert_output --partial "outside every live grant"
    assert_equal "$(last_handled)" "$id"
}

@test "the hub's message ids restart: the box notices its last message is gone and applies the new ones" {
    local before id i
    before=$(last_handled)
    [ "$before" -ge 2 ]
    # The hub loses its messages and numbers from 1 again (as a replaced or restored
    # database would); hubd keeps running.
    sql "DELETE FROM policy_msgs; DELETE FROM sqlite_sequence WHERE name = 'policy_msgs';" 2>/dev/null ||
        sql "DELETE FROM policy_msgs"
    id=$(post_policy renumbered.malware.test)
    [ "$id" -lt "$before" ]
    run wait_result "$id" applied 30
    assert_success
    assert_equal "$(rule_count renumbered.malware.test)" 1
    assert_equal "$(last_handled)" "$id"
    run grep -c "message ids restarted" "$OFFICE_RUN/logs/agent.log"
    [ "$output" -ge 1 ]
    run agentapi /v1/hub
    echo "$output" | jq -e --argjson id "$id" '.policy.last_id == $id and .policy.id_restarts >= 1'
    # and from here on the ordinary path: the next message follows at once
    id=$(post_policy after.malware.test)
    run wait_result "$id" applied 20
    assert_success
    assert_equal "$(rule_count after.malware.test)" 1
}
