#!/usr/bin/env bats
# The hub in the office's `hub` namespace (otasuke-hubd + its mosquitto), boxes
# simulated with `otasukectl hub ...` in the box namespace, each with its own state dir.
# Storage is SQLite, or PostgreSQL when HUB_DB=postgresql://... (tests/bats/hub/pg.sh).

load helpers

BIN=${OTASUKE_BIN:-$OTASUKE_REPO/build/bin}
HUB=198.18.1.10
URL=https://$HUB:8443

hubd() { "$BIN/otasuke-hubd" -d "$HS" ${HUB_DB:+--db "$HUB_DB"} "$@"; }
admin() { hubd admin "$@"; }
ctl() { office_exec box "$BIN/otasukectl" hub "$@"; }
# box NAME ARGS...: otasukectl hub ARGS with NAME's state dir
box() { local n=$1; shift; ctl "$@" --state "$BATS_FILE_TMPDIR/box-$n"; }
enrol() {   # NAME ORG
    local code
    code=$(admin code create "$2" 2>/dev/null) || return 1
    box "$1" enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" --name "$1" >/dev/null
}
start_hubd() {
    office_start hubd hub "$BIN/otasuke-hubd" -f -d "$HS" ${HUB_DB:+--db "$HUB_DB"} \
        -l "$HUB:8443" --public-mqtt "$HUB:8883" --public-mqtt-tls
    local i
    for i in $(seq 50); do
        office_exec box curl -sf --cacert "$HS/tls/cert.pem" "$URL/v1/health" >/dev/null && return 0
        sleep 0.1
    done
    office_log hubd >&2
    return 1
}
seq_of() { box "$1" status | jq -r .seq; }

setup_file() {
    office_setup --dns=none
    # Not under BATS_FILE_TMPDIR (0700): the broker runs as user mosquitto and re-reads
    # its password file from here on every enrolment.
    export HS=$(mktemp -d /tmp/otasuke-hub-bats.XXXXXX)
    chmod 711 "$HS"
    admin tls --hosts "$HUB,127.0.0.1" >/dev/null
    for o in org1 org2 org3 org4; do admin org add "$o" >/dev/null; done
    office_start mqtt hub "$OTASUKE_REPO/services/hub/mosquitto/start.sh" "$HS" \
        --local 127.0.0.1:1883 --tls "$HUB:8883" --hubd "$BIN/otasuke-hubd"
    start_hubd
    export OPTOKEN=$(admin operator add bats)
}

teardown_file() {
    office_teardown
    [ -z "${HS:-}" ] || rm -rf "$HS"
}
# until the broker's password file lists box NAME (hubd rewrites it within a second)
wait_broker_user() {
    local u i
    u=$(jq -r .mqtt_user "$BATS_FILE_TMPDIR/box-$1/hub.json")
    for i in $(seq 50); do grep -q "^$u:" "$HS/mosquitto/passwd" && return 0; sleep 0.1; done
    return 1
}

@test "a box enrols with a one-time code and gets its credentials" {
    run enrol a1 org1
    assert_success
    run box a1 status
    assert_success
    assert_output --partial '"enrolled": true'
    [ "$(stat -c %a "$BATS_FILE_TMPDIR/box-a1/hub.json")" = 600 ]
    [ "$(stat -c %a "$BATS_FILE_TMPDIR/box-a1/box.key")" = 600 ]
    run admin box list --org org1
    assert_output --partial '"name":"a1"'
    # the broker learns the new login within a second (hubd batches rewrites)
    run wait_broker_user a1
    assert_success
}

@test "a reused, an expired and an unknown code are refused" {
    local code
    code=$(admin code create org2 2>/dev/null)
    run box b1 enroll "$URL" "$code" --cacert "$HS/tls/cert.pem"
    assert_success
    run box b1x enroll "$URL" "$code" --cacert "$HS/tls/cert.pem"
    assert_failure
    assert_output --partial "already used"
    code=$(admin code create org2 --ttl 1 2>/dev/null)
    sleep 2.1
    run box b1y enroll "$URL" "$code" --cacert "$HS/tls/cert.pem"
    assert_failure
    assert_output --partial "already expired"
    run box b1z enroll "$URL" 0123456789abcdef0123456789abcdef --cacert "$HS/tls/cert.pem"
    assert_failure
    assert_output --partial "unknown enrolment code"
    run box b1z status
    assert_output --partial '"enrolled": false'
}

@test "a box without the hub's certificate does not talk to it" {
    local code
    code=$(admin code create org2 2>/dev/null)
    "$BIN/otasuke-hubd" -d "$BATS_FILE_TMPDIR/impostor" admin tls --hosts "$HUB"
    run box nocert enroll "$URL" "$code" --cacert "$BATS_FILE_TMPDIR/impostor/tls/cert.pem"
    assert_failure
    assert_output --partial "SSL"
    run box nocert3 enroll "$URL" "$code"
    assert_failure
    assert_output --partial "pass that certificate with --cacert"
    # The code was not spent on the wrong hub.
    run box nocert2 enroll "$URL" "$code" --cacert "$HS/tls/cert.pem"
    assert_success
}

@test "three organisations report a domain: promoted, a fourth box gets it signed and pushed" {
    enrol c1 org1; enrol c2 org2; enrol c3 org3; enrol d1 org4
    run box d1 sync
    assert_success
    local before; before=$(seq_of d1)
    wait_broker_user d1
    # d1 listens on MQTT (TLS) for the notification and fetches the delta itself.
    office_start watch-d1 box "$BIN/otasukectl" hub watch --seconds 30 --updates 1 \
        --state "$BATS_FILE_TMPDIR/box-d1"
    sleep 1
    run box c1 contribute Phish.Example.TEST --category phishing
    assert_output '{"promoted":0}'
    run box c2 contribute phish.example.test --category phishing
    assert_output '{"promoted":0}'
    run box d1 entries
    refute_output --partial phish.example.test
    run box c3 contribute phish.example.test --category phishing
    assert_output '{"promoted":1}'
    local i
    for i in $(seq 100); do
        [ "$(seq_of d1)" -gt "$before" ] && break
        sleep 0.1
    done
    run box d1 entries
    assert_output --partial '"indicator": "phish.example.test"'
    assert_output --partial '"category": "phishing"'
    assert_output --partial '"source": "hub:community"'
    run box d1 status
    assert_output --partial '"last_error": ""'
    run grep -c 'seq .* published' "$OFFICE_RUN/logs/hubd.log"
    [ "$output" -ge 1 ]
}

@test "two reports from the same organisation do not promote" {
    enrol e1 org1; enrol e2 org1
    run box e1 contribute same-org.example.test --category malware
    assert_output '{"promoted":0}'
    run box e2 contribute same-org.example.test --category malware
    assert_output '{"promoted":0}'
    run box e1 contribute same-org.example.test --category malware --count 50
    assert_output '{"promoted":0}'
    run admin indicator list
    refute_output --partial same-org.example.test
}

sql() { if [ -n "${HUB_DB:-}" ]; then psql -At "$HUB_DB" -c "$1"; else sqlite3 "$HS/hub.db" "$1"; fi; }

@test "contributions never carry box or client identities" {
    run sql "SELECT * FROM contributions"
    assert_success
    assert_output --partial phish.example.test
    refute_output --partial 192.0.2.
    refute_output --partial 198.18.0.2
    refute_output --regexp '\|(c1|c2|c3|org[0-9])\|'
    run sql "SELECT COUNT(DISTINCT org_pseud) FROM contributions WHERE indicator='phish.example.test'"
    assert_output 3
}

@test "a tampered delta is refused and the box keeps its last good seq" {
    enrol t1 org2
    box t1 sync >/dev/null
    local good; good=$(seq_of t1)
    admin indicator add tamper.example.test --category malware
    office_start tamper hub python3 "$OTASUKE_REPO/tests/bats/hub/tamper.py" "$HUB" 9443 \
        "$HS/tls/cert.pem" "$HS/tls/key.pem" "$URL" "$HS/tls/cert.pem"
    local i
    for i in $(seq 50); do office_exec box bash -c "echo > /dev/tcp/$HUB/9443" 2>/dev/null && break; sleep 0.1; done
    run box t1 sync --url "https://$HUB:9443"
    assert_failure
    assert_output --partial "bad-signature"
    [ "$(seq_of t1)" = "$good" ]
    run box t1 status
    assert_output --partial "bad-signature"
    run box t1 entries
    refute_output --partial tamper.example.test
    run box t1 sync
    assert_success
    run box t1 entries
    assert_output --partial tamper.example.test
    office_stop tamper
}

@test "hub down: the box keeps its feed and shows staleness; hub up: it catches up from its seq" {
    enrol h1 org3
    box h1 sync >/dev/null
    local held; held=$(seq_of h1)
    office_stop hubd
    admin indicator add while-down.example.test --category c2
    run box h1 sync
    assert_failure
    [ "$(seq_of h1)" = "$held" ]
    run box h1 status
    assert_output --regexp '"last_error": ".+"'
    assert_output --regexp '"last_sync_age": [0-9]+'
    run box h1 entries
    assert_output --partial tamper.example.test
    start_hubd
    run box h1 sync
    assert_success
    [ "$(seq_of h1)" -gt "$held" ]
    run box h1 entries
    assert_output --partial while-down.example.test
    assert_output --partial tamper.example.test
    run box h1 status
    assert_output --partial '"last_error": ""'
}

@test "a revoked box loses the API and the broker" {
    enrol r1 org4
    wait_broker_user r1
    run box r1 watch --seconds 2
    assert_success
    run box r1 heartbeat
    assert_success
    local id; id=$(admin box list --org org4 | jq -r 'select(.name=="r1") | .id')
    run admin box revoke "$id"
    assert_success
    run box r1 heartbeat
    assert_failure
    assert_output --partial "401"
    run box r1 sync
    assert_failure
    sleep 0.5
    run box r1 watch --seconds 5
    assert_failure
    assert_output --partial "refused this box"
}

@test "fleet view: heartbeat fields, online filter, sort, and operator-only access" {
    enrol f1 org3
    box f1 sync >/dev/null
    run office_exec box "$BIN/otasukectl" hub heartbeat --version 9.9.9 --state "$BATS_FILE_TMPDIR/box-f1"
    assert_success
    run office_exec box curl -s --cacert "$HS/tls/cert.pem" -H "Authorization: Bearer $OPTOKEN" \
        "$URL/v1/fleet?online=1&sort=name&order=desc"
    assert_success
    echo "$output" | jq -e '.boxes | map(select(.name=="f1" and .version=="9.9.9" and .online)) | length == 1'
    echo "$output" | jq -e '.boxes[] | select(.name=="f1") | (.feed_age | type) == "number" and .feed_age >= 0 and .feed_behind == 0'
    echo "$output" | jq -e '.boxes | all(.online)'
    echo "$output" | jq -e '[.boxes[].name] == ([.boxes[].name] | sort | reverse)'
    run office_exec box curl -s --cacert "$HS/tls/cert.pem" -H "Authorization: Bearer $OPTOKEN" \
        "$URL/v1/fleet?online=0&org=org1"
    echo "$output" | jq -e '.boxes | length > 0 and all(.org=="org1" and (.online|not))'
    run office_exec box curl -s -o /dev/null -w '%{http_code}' --cacert "$HS/tls/cert.pem" "$URL/v1/fleet"
    assert_output 401
    run office_exec box curl -s --cacert "$HS/tls/cert.pem" -H "Authorization: Bearer $OPTOKEN" \
        "$URL/v1/fleet?sort=password"
    assert_output --partial "parameter 'sort'"
}

@test "bad request bodies get 400 naming the field" {
    local tok; tok=$(jq -r .token "$BATS_FILE_TMPDIR/box-f1/hub.json")
    run office_exec box curl -s -w ' %{http_code}' --cacert "$HS/tls/cert.pem" \
        -H "Authorization: Bearer $tok" -d '{"version":"1","feed_seq":1,"client_ip":"192.0.2.10"}' \
        "$URL/v1/heartbeat"
    assert_output --partial "field 'client_ip': unknown field"
    assert_output --partial " 400"
    run office_exec box curl -s -w ' %{http_code}' --cacert "$HS/tls/cert.pem" \
        -H "Authorization: Bearer $tok" -d '{"indicators":[{"indicator":"x..test","kind":"domain","category":"ads"}]}' \
        "$URL/v1/contributions"
    assert_output --partial "indicators[0]"
    run office_exec box bash -c "head -c 300000 /dev/zero | tr '\0' a | curl -s -w ' %{http_code}' --cacert '$HS/tls/cert.pem' -H 'Authorization: Bearer $tok' --data-binary @- '$URL/v1/heartbeat'"
    assert_output --partial " 413"
}

@test "delegated policy: the hub relays a signed change to one box only and records it" {
    enrol p1 org2; enrol p2 org2
    local id; id=$(admin box list --org org2 | jq -r 'select(.name=="p1") | .id')
    local change='{"grant":"g-17","block":["casino.example.test"]}'
    wait_broker_user p1
    office_start watch-p1 box "$BIN/otasukectl" hub watch --seconds 20 \
        --state "$BATS_FILE_TMPDIR/box-p1"
    sleep 1
    local body; body=$(jq -cn --arg c "$change" '{change: $c, signer: "0123456789abcdef", signature: "c2lnbmVkIGJ5IHRoZSBNU1A="}')
    run office_exec box curl -s -w ' %{http_code}' --cacert "$HS/tls/cert.pem" \
        -H "Authorization: Bearer $OPTOKEN" -d "$body" "$URL/v1/boxes/$id/policy"
    assert_output --partial " 200"
    run box p1 policy
    assert_success
    echo "$output" | jq -e --arg c "$change" '.[0].change == $c and .[0].signer == "0123456789abcdef"'
    run box p2 policy
    assert_output '[]'
    local pid; pid=$(box p1 policy | jq '.[0].id')
    local i
    for i in $(seq 30); do grep -q "{\"policy\":$pid}" "$OFFICE_RUN/logs/watch-p1.log" && break; sleep 0.1; done
    run grep -c "{\"policy\":$pid}" "$OFFICE_RUN/logs/watch-p1.log"
    assert_output 1
    office_stop watch-p1
    run box p1 policy --after "$(box p1 policy | jq '.[0].id')"
    assert_output '[]'
    # a box cannot post, a change that is not a JSON object is refused with the field
    local tok; tok=$(jq -r .token "$BATS_FILE_TMPDIR/box-p2/hub.json")
    run office_exec box curl -s -o /dev/null -w '%{http_code}' --cacert "$HS/tls/cert.pem" \
        -H "Authorization: Bearer $tok" -d "$body" "$URL/v1/boxes/$id/policy"
    assert_output 401
    run office_exec box curl -s --cacert "$HS/tls/cert.pem" -H "Authorization: Bearer $OPTOKEN" \
        -d '{"change":"not json","signer":"0123456789abcdef","signature":"eA=="}' "$URL/v1/boxes/$id/policy"
    assert_output --partial "field 'change'"
    run sql "SELECT actor, action FROM audit WHERE action = 'policy-relay'"
    assert_output --partial "bats"
}
