#!/usr/bin/env bats
# Hub feed documents go to disk, not to memory (issue #6/#7 follow-up): the hub client
# downloads a snapshot or delta into an anonymous file in the box's hub state directory,
# verifies it in chunks and the agent applies it entry by entry. A big document is
# applied whole; one with a damaged end (signature no longer matches) is refused with
# the last good state kept; a download on a full disk says so in words.
# A real hubd in the office's hub namespace, no MQTT broker: boxes poll over HTTPS.

load helpers

BIN=${OTASUKE_BIN:-$OTASUKE_REPO/build/bin}
CTL=$BIN/otasukectl
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}
HUB=198.18.1.10
URL=https://$HUB:8443
BIG=40000   # ~6 MB of feed document: about a hundred 64 KiB chunks

admin() { "$BIN/otasuke-hubd" -d "$HS" admin "$@"; }
enrol() {   # STATE-DIR NAME
    local code
    code=$(admin code create org1 2>/dev/null) || return 1
    office_exec box "$CTL" hub enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" --name "$2" \
        --state "$1" >/dev/null
}
hubjson() { jq -r ".$2" "$1/hub.json"; }   # STATE-DIR FIELD
hub_rows() {   # entries the agent holds under its "hub" feed row
    sqlite3 "$ST/agent.db" "SELECT count(*) FROM feed_entries WHERE feed_id=(SELECT id FROM feeds WHERE name='hub')"
}
hub_has() {    # 1 when the agent holds NAME from the hub, else 0
    sqlite3 "$ST/agent.db" "SELECT count(*) FROM feed_entries WHERE indicator='$1' AND feed_id=(SELECT id FROM feeds WHERE name='hub')"
}
start_agent() {   # [HUB-STATE-DIR]: waits until the agent answers on its socket
    office_start agent box "$AGENT" -f --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --dnsd-control "$ST/dnsd.ctl" --hub "${1:-$ST/hub}"
    local i
    for i in $(seq 100); do
        OTASUKE_AGENT_SOCKET=$ST/agent.sock "$CTL" status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    office_log agent >&2
    return 1
}
wait_log() {   # PATTERN [SECONDS=60]: until the agent's log has PATTERN
    local i
    for i in $(seq $((${2:-60} * 10))); do
        grep -q -- "$1" "$OFFICE_RUN/logs/agent.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "agent log never had: $1" >&2
    office_log agent | tail -20 >&2
    return 1
}

setup_file() {
    for b in otasuke-hubd otasukectl; do
        [ -x "$BIN/$b" ] || skip "build $b first (make)"
    done
    [ -x "$AGENT" ] || skip "build otasuke-agent first (make)"
    command -v sqlite3 >/dev/null || skip "needs the sqlite3 command"
    office_setup --dns=none
    export HS=$(mktemp -d /tmp/otasuke-hubfeed-bats.XXXXXX)
    admin tls --hosts "$HUB,127.0.0.1" >/dev/null
    admin org add org1 >/dev/null
    "$OTASUKE_REPO/tests/bench/gen-domains.sh" $((BIG + 1000)) 11 > "$HS/names.all"
    head -n "$BIG" "$HS/names.all" > "$HS/list1"
    admin indicator import "$HS/list1" --category malware --source bulk >/dev/null
    # nothing listens on the hub's local MQTT port: hubd's notifications go nowhere
    office_start hubd hub "$BIN/otasuke-hubd" -f -d "$HS" -l "$HUB:8443"
    local i
    for i in $(seq 50); do
        office_exec box curl -sf --cacert "$HS/tls/cert.pem" "$URL/v1/health" >/dev/null && break
        sleep 0.1
    done
    export ST=$OFFICE_RUN/agent
    mkdir -p "$ST"
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    enrol "$ST/hub" office
}

teardown_file() {
    [ -z "${FULL:-}" ] || umount "$FULL" 2>/dev/null || true
    office_teardown
    [ -z "${HS:-}" ] || rm -rf "$HS"
}

teardown() {
    [ -z "${FULL:-}" ] || { umount "$FULL" 2>/dev/null || true; }
}

@test "a big hub snapshot is applied whole from a file; a damaged end of the next document is refused and the last good state kept" {
    start_agent
    wait_log "hub feed seq [0-9]* applied ($BIG entries)"
    [ "$(hub_rows)" -eq "$BIG" ]
    local first good
    first=$(head -n1 "$HS/list1")
    [ "$(hub_has "$first")" = 1 ]
    good=$(hubjson "$ST/hub" seq)
    [ "$good" -gt 0 ]
    # the download file is anonymous: nothing is left in the state directory
    run bash -c "ls -A '$ST/hub' | grep -v -e '^hub.json$' -e '^box.key$' -e '^hub-cert.pem$' -e '^feed.json$'"
    assert_output ""
    office_stop agent

    # the next document (the list replaced: 1000 new names, 1000 gone) comes through a
    # relay that flips a byte near its end, after the signed bytes were hashed by the hub
    tail -n +1001 "$HS/names.all" > "$HS/list2"
    admin indicator import "$HS/list2" --category malware --source bulk >/dev/null
    office_start tamper hub python3 "$OTASUKE_REPO/tests/bats/hub/tamper.py" "$HUB" 9443 \
        "$HS/tls/cert.pem" "$HS/tls/key.pem" "$URL" "$HS/tls/cert.pem"
    local i
    for i in $(seq 50); do office_exec box bash -c "echo > /dev/tcp/$HUB/9443" 2>/dev/null && break; sleep 0.1; done
    local real; real=$(hubjson "$ST/hub" url)
    jq --arg u "https://$HUB:9443" '.url = $u' "$ST/hub/hub.json" > "$ST/hub/hub.json.new"
    mv "$ST/hub/hub.json.new" "$ST/hub/hub.json"
    start_agent
    wait_log "hub feed: .*refused (bad-signature)"
    run hubjson "$ST/hub" last_error
    assert_output --partial "bad-signature"
    [ "$(hubjson "$ST/hub" seq)" = "$good" ]
    [ "$(hub_rows)" -eq "$BIG" ]
    [ "$(hub_has "$first")" = 1 ]
    [ "$(hub_has "$(tail -n1 "$HS/names.all")")" = 0 ]
    office_stop agent
    office_stop tamper

    # the real hub again: the delta from the seq the box kept applies
    jq --arg u "$real" '.url = $u' "$ST/hub/hub.json" > "$ST/hub/hub.json.new"
    mv "$ST/hub/hub.json.new" "$ST/hub/hub.json"
    start_agent
    wait_log "hub feed seq [0-9]* applied (2000 entries)"
    [ "$(hubjson "$ST/hub" seq)" -gt "$good" ]
    [ "$(hub_has "$(tail -n1 "$HS/names.all")")" = 1 ]
    [ "$(hub_has "$first")" = 0 ]
    [ "$(hub_rows)" -eq "$BIG" ]
    office_stop agent
}

@test "a hub document that cannot be stored (disk full) says so, and the box keeps its last good feed" {
    export FULL=$BATS_TEST_TMPDIR/full
    mkdir -p "$FULL"
    mount -t tmpfs -o size=48m tmpfs "$FULL"
    enrol "$FULL/hub" full
    run office_exec box "$CTL" hub sync --state "$FULL/hub"
    assert_success
    local good; good=$(hubjson "$FULL/hub" seq)
    [ "$good" -gt 0 ]
    cp "$FULL/hub/feed.json" "$BATS_TEST_TMPDIR/feed.before"
    # a new document, then the disk fills up
    head -n 500 "$HS/names.all" > "$HS/list3"
    admin indicator import "$HS/list3" --category malware --source bulk >/dev/null
    dd if=/dev/zero of="$FULL/fill" bs=1M 2>/dev/null || true
    run office_exec box "$CTL" hub sync --state "$FULL/hub"
    assert_failure
    assert_output --partial "No space left on device"
    assert_output --partial "the last good lists keep protecting"
    [ "$(hubjson "$FULL/hub" seq)" = "$good" ]
    cmp "$FULL/hub/feed.json" "$BATS_TEST_TMPDIR/feed.before"
    # the agent following this box state says the same in its log
    start_agent "$FULL/hub"
    wait_log "hub feed: .*No space left on device.*the last good lists keep protecting"
    office_stop agent
    [ "$(hubjson "$FULL/hub" seq)" = "$good" ]
    # room again: the same hub document applies
    rm -f "$FULL/fill"
    run office_exec box "$CTL" hub sync --state "$FULL/hub"
    assert_success
    [ "$(hubjson "$FULL/hub" seq)" -gt "$good" ]
    umount "$FULL"
}
