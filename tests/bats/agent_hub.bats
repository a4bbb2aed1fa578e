#!/usr/bin/env bats
# otasuke-agent following the hub's shared feed (--hub): three organisations report a
# domain, the hub promotes and signs it, MQTT tells the box, the agent applies the
# verified delta and pc gets NXDOMAIN from dnsd. Hub set-up as in hub.bats.

load helpers

BIN=${OTASUKE_BIN:-$OTASUKE_REPO/build/bin}
CTL=$BIN/otasukectl
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}
HUB=198.18.1.10
URL=https://$HUB:8443

hubd() { "$BIN/otasuke-hubd" -d "$HS" "$@"; }
admin() { hubd admin "$@"; }
box() { local n=$1; shift; office_exec box "$CTL" hub "$@" --state "$BATS_FILE_TMPDIR/box-$n"; }
enrol() {   # NAME ORG [STATE-DIR]
    local code state=${3:-$BATS_FILE_TMPDIR/box-$1}
    code=$(admin code create "$2" 2>/dev/null) || return 1
    office_exec box "$CTL" hub enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" --name "$1" \
        --state "$state" >/dev/null
}

answer() {   # pc's answer for NAME from dnsd: NXDOMAIN or the addresses
    local out
    out=$(office_exec pc dig +time=2 +tries=1 @192.0.2.1 "$1" A) || { echo "dig failed"; return 0; }
    if grep -q 'status: NXDOMAIN' <<<"$out"; then echo NXDOMAIN; else
        office_exec pc dig +short +time=2 +tries=1 @192.0.2.1 "$1" A; fi
}

setup_file() {
    for b in otasuke-hubd otasuke-dnsd otasukectl; do
        [ -x "$BIN/$b" ] || skip "build $b first (make)"
    done
    [ -x "$AGENT" ] || skip "build otasuke-agent first (make)"
    office_setup --dns=none
    export HS=$(mktemp -d /tmp/otasuke-agenthub-bats.XXXXXX)
    chmod 711 "$HS"   # the broker (user mosquitto) re-reads its password file here
    admin tls --hosts "$HUB,127.0.0.1" >/dev/null
    for o in org1 org2 org3 org4; do admin org add "$o" >/dev/null; done
    office_start mqtt hub "$OTASUKE_REPO/services/hub/mosquitto/start.sh" "$HS" \
        --local 127.0.0.1:1883 --tls "$HUB:8883" --hubd "$BIN/otasuke-hubd"
    office_start hubd hub "$BIN/otasuke-hubd" -f -d "$HS" -l "$HUB:8443" \
        --public-mqtt "$HUB:8883" --public-mqtt-tls
    local i
    for i in $(seq 50); do
        office_exec box curl -sf --cacert "$HS/tls/cert.pem" "$URL/v1/health" >/dev/null && break
        sleep 0.1
    done
    export ST=$OFFICE_RUN/agent
    mkdir -p "$ST"
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    enrol office org4 "$ST/hub"
    # the broker learns the box's login within a second
    local u
    u=$(sed -n 's/.*"mqtt_user": *"\([^"]*\)".*/\1/p' "$ST/hub/hub.json")
    for i in $(seq 50); do grep -q "^$u:" "$HS/mosquitto/passwd" 2>/dev/null && break; sleep 0.1; done
    office_start agent box "$AGENT" -f --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --dnsd-control "$ST/dnsd.ctl" --hub "$ST/hub"
    for i in $(seq 100); do [ -s "$ST/domains.set" ] && break; sleep 0.1; done
    office_start dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --upstream 127.0.0.1:5335 \
        --domains "$ST/domains.set" --policy "$ST/policy.set" --control "$ST/dnsd.ctl"
    office_wait_dns pc 192.0.2.1 good.test
}

teardown_file() {
    office_teardown
    [ -z "${HS:-}" ] || rm -rf "$HS"
}

@test "the agent follows the hub: a promoted indicator reaches pc through MQTT, verified" {
    run office_exec box "$CTL" feed list --json
    assert_output --partial '"name": "hub"'
    assert_equal "$(answer tracker.ads.test)" 198.18.10.80
    enrol c1 org1
    enrol c2 org2
    enrol c3 org3
    # Give the agent's MQTT subscription a moment to be in place (it syncs at connect too).
    sleep 1
    box c1 contribute tracker.ads.test --category malware >/dev/null
    box c2 contribute tracker.ads.test --category malware >/dev/null
    run box c3 contribute tracker.ads.test --category malware
    assert_output '{"promoted":1}'
    local i
    # Normally well under a second; up to 20 s covers a first MQTT login refused while the
    # broker reloads its password file (the agent then polls and retries with backoff).
    for ((i = 0; i < 200; i++)); do
        [ "$(answer tracker.ads.test)" = NXDOMAIN ] && break
        sleep 0.1
    done
    # shown only when the test fails: what the agent and the hub saw
    echo "--- agent log"; office_log agent | tail -40
    echo "--- hubd log"; office_log hubd | tail -40
    echo "--- broker log"; office_log mqtt | tail -20
    assert_equal "$(answer tracker.ads.test)" NXDOMAIN
    assert_equal "$(answer good.test)" 198.18.10.10
    run office_exec box "$CTL" explain tracker.ads.test
    assert_output --partial "feed hub"
    run office_log agent
    assert_output --partial "hub feed seq"
}

@test "the agent's heartbeat puts the box in the hub's fleet view, with its counters" {
    local tok i out=""
    tok=$(admin operator add bats-fleet)
    for i in $(seq 50); do
        out=$(office_exec box curl -s --cacert "$HS/tls/cert.pem" -H "Authorization: Bearer $tok" \
            "$URL/v1/fleet?online=1")
        echo "$out" | jq -e '.boxes | map(select(.name=="office")) | length == 1' >/dev/null && break
        sleep 0.2
    done
    echo "$out" | jq -e '.boxes[] | select(.name=="office") | .online and (.version | startswith("otasuke-agent"))'
    echo "$out" | jq -e '.boxes[] | select(.name=="office") | .counters | has("compiles") and has("domains") and has("feed_refusals")'
    echo "$out" | jq -e '.boxes[] | select(.name=="office") | .open_incidents == 0'
    # The seq the box applied in the test before reaches the fleet view at once (a heartbeat
    # follows every applied update), not a minute later and not the seq of the agent's start.
    for i in $(seq 50); do
        out=$(office_exec box curl -s --cacert "$HS/tls/cert.pem" -H "Authorization: Bearer $tok" \
            "$URL/v1/fleet")
        echo "$out" | jq -e '.boxes[] | select(.name=="office") | .feed_seq >= 2 and .feed_behind == 0' \
            >/dev/null && break
        sleep 0.2
    done
    echo "$out" | jq -e '.boxes[] | select(.name=="office") | .feed_seq >= 2 and .feed_behind == 0'
}

@test "the agent stops cleanly with its hub threads running (feed watch, heartbeat, sharing)" {
    local pid i
    pid=$(cut -d' ' -f1 "$OFFICE_RUN/pids/agent.pid")
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    [ ! -e "/proc/$pid" ] || fail "the agent still runs 10 s after TERM"
    run office_log agent
    assert_output --partial "stopping"
    refute_output --partial "did not stop in time"
    refute_output --partial "AddressSanitizer"
}
