#!/usr/bin/env bats
# Feed transport and deltas in the virtual office, with the real otasuke-agent and
# otasuke-dnsd: a feed server on wan that honours If-None-Match (a second fetch is a 304
# and nothing is re-applied), deltas applied through the domain-set overlay (adds and
# removals reach pc), a delta on another base falls back to URL.snapshot by itself, and
# a restart folds the overlay into a full build.

load helpers

BIN=$OTASUKE_REPO/build/bin
CTL=$BIN/otasukectl
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}
URL=http://198.18.10.10:8089/feed.json

setup_file() {
    [ -x "$AGENT" ] && [ -x "$BIN/otasuke-dnsd" ] ||
        skip "build otasuke-agent and otasuke-dnsd first (make)"
    office_setup --dns=none
    export ST=$OFFICE_RUN/agentfeed WWW=$OFFICE_RUN/agentfeed-www
    export REQLOG=$OFFICE_RUN/agentfeed-requests.log
    mkdir -p "$ST" "$WWW"
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    "$CTL" feed keygen -o "$ST/hub" >/dev/null
    # A static server that answers If-None-Match with 304 (python's http.server only
    # knows If-Modified-Since) and logs method, path, If-None-Match and status.
    cat >"$ST/etag-server.py" <<'PY'
import hashlib, http.server, os, sys
root, log = sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/").split("?")[0])
        inm = self.headers.get("If-None-Match", "-")
        if not os.path.isfile(path):
            status, body, etag = 404, b"not found\n", None
        else:
            body = open(path, "rb").read()
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
            status = 304 if inm == etag else 200
        with open(log, "a") as f:
            f.write("%s %s %s %d\n" % (self.command, self.path, inm, status))
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        if status == 304:
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
PY
    : >"$REQLOG"
    office_start feedweb wan python3 "$ST/etag-server.py" 198.18.10.10 8089 "$WWW" "$REQLOG"
    office_wait_port wan tcp 198.18.10.10 8089
    start_agent
    for _ in $(seq 100); do [ -s "$ST/domains.set" ] && [ -s "$ST/policy.set" ] && break; sleep 0.1; done
    office_start dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 \
        --upstream 127.0.0.1:5335 --domains "$ST/domains.set" --policy "$ST/policy.set" \
        --control "$ST/dnsd.ctl" --cache-entries 0
    office_wait_dns pc 192.0.2.1 good.test
}

teardown_file() {
    # the full-disk test's tmpfs, also when that test failed half way (its FULL variable
    # lived in the test's own subshell, so it is named here again)
    if mountpoint -q "$OFFICE_RUN/full-state" 2>/dev/null; then umount "$OFFICE_RUN/full-state"; fi
    office_teardown
}

start_agent() {
    office_start agent box "$AGENT" -f --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --dnsd-control "$ST/dnsd.ctl" --log-level debug
    for _ in $(seq 100); do [ -S "$ST/agent.sock" ] && "$CTL" status >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "agent did not come up:" >&2
    office_log agent >&2
    return 1
}

answer() {
    local out
    out=$(office_exec pc dig +time=2 +tries=1 @192.0.2.1 "$1" A) || { echo "dig failed"; return 0; }
    if grep -q 'status: NXDOMAIN' <<<"$out"; then echo NXDOMAIN; else
        office_exec pc dig +short +time=2 +tries=1 @192.0.2.1 "$1" A; fi
}

wait_answer() {   # NAME WANT [SECONDS=10]
    local i got
    for ((i = 0; i < ${3:-10} * 10; i++)); do
        got=$(answer "$1")
        [ "$got" = "$2" ] && return 0
        sleep 0.1
    done
    echo "pc gets '$got' for $1, wanted '$2'" >&2
    office_log agent | tail -20 >&2
    return 1
}

# publish FILE SEQ [BASE] -- ENTRY...: build and sign into $WWW/FILE (+ .sig)
publish() {
    local file=$1 seq=$2 base=()
    shift 2
    if [ "$1" != -- ]; then base=(--base "$1"); shift; fi
    shift
    printf '%s\n' "$@" >"$ST/entries.$file.$seq"
    "$CTL" feed build --key "$ST/hub.key" --feed community --seq "$seq" "${base[@]}" \
        -o "$WWW/$file.new" "$ST/entries.$file.$seq" >/dev/null
    mv "$WWW/$file.new.sig" "$WWW/$file.sig"
    mv "$WWW/$file.new" "$WWW/$file"
}

counter() {   # NAME: one of the agent's counters (GET /v1/counters)
    curl -sf --unix-socket "$ST/agent.sock" http://agent/v1/counters | python3 -c 'import json,sys
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            r = find(v, k)
            if r is not None: return r
print(find(json.load(sys.stdin), sys.argv[1]))' "$1"
}

wait_counter() {   # NAME WANT: the agent sets its counts just after telling dnsd
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(counter "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    assert_equal "$(counter "$1")" "$2"
}

set_info() {   # FIELD: a field of 'otasukectl set info' on the box's domain set
    "$CTL" set info "$ST/domains.set" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

feed_field() {   # FIELD: a field of the community feed row
    "$CTL" feed list --json | python3 -c 'import json,sys
d = json.load(sys.stdin)
rows = d if isinstance(d, list) else d.get("feeds", [])
print([r for r in rows if r["name"] == "community"][0][sys.argv[1]])' "$1"
}

@test "an ETag server: the second fetch is a 304 and nothing is applied again" {
    publish feed.json 1 -- "malware.test malware"
    run "$CTL" feed add community "$URL" --feed-id community --pubkey-file "$ST/hub.pub"
    assert_success
    wait_answer malware.test NXDOMAIN
    for _ in $(seq 50); do [ "$(feed_field last_seq)" = 1 ] && break; sleep 0.1; done
    assert_equal "$(feed_field last_seq)" 1
    # the first GET carried no validator and got the document and its signature
    run grep -c '^GET /feed.json - 200$' "$REQLOG"
    assert_output 1
    run grep -c '^GET /feed.json.sig - 200$' "$REQLOG"
    assert_output 1
    sleep 1   # let the compile of seq 1 finish before counting
    compiles=$(counter compiles)
    notmod=$(counter feed_not_modified)
    run "$CTL" feed refresh community
    assert_success
    assert_output --partial "not modified"
    # the server saw our ETag and answered 304; the signature was not fetched again
    run tail -n 1 "$REQLOG"
    assert_output --regexp '^GET /feed.json "[0-9a-f]{32}" 304$'
    run grep -c '^GET /feed.json.sig' "$REQLOG"
    assert_output 1
    assert_equal "$(counter feed_not_modified)" $((notmod + 1))
    sleep 1.5   # a compile would have run by now
    assert_equal "$(counter compiles)" "$compiles"
    assert_equal "$(feed_field last_seq)" 1
    assert_equal "$(answer malware.test)" NXDOMAIN
}

@test "deltas go through the overlay: adds and removals reach pc without a full build" {
    names=$(counter domains)
    publish feed.json 2 1 -- "shop.test malware" "tracker.ads.test malware"
    run "$CTL" feed refresh community
    assert_success
    assert_output --partial applied
    wait_answer shop.test NXDOMAIN
    wait_answer x.tracker.ads.test NXDOMAIN
    [ -s "$ST/domains.set.overlay" ]
    run grep -c "overlay compiled" "$OFFICE_RUN/logs/agent.log"
    assert_output 1
    # the overlay's names are counted and dumped before any full build folds them in
    wait_counter domains $((names + 2))
    assert_equal "$(set_info names)" $((names + 2))
    run "$CTL" set dump "$ST/domains.set"
    assert_output --partial '"name":"shop.test","flags":["subtree"],"categories":["malware"]'
    assert_output --partial '"tracker.ads.test"'
    assert_equal "$(grep -c . <<<"$output")" $((names + 2))
    # malware.test (the base) still blocked; shop.test removed by the next delta
    publish feed.json 3 2 -- "shop.test malware remove"
    run "$CTL" feed refresh community
    assert_success
    wait_answer shop.test 198.18.10.20
    assert_equal "$(answer malware.test)" NXDOMAIN
    assert_equal "$(answer tracker.ads.test)" NXDOMAIN
    assert_equal "$(feed_field last_seq)" 3
    run "$CTL" explain shop.test
    refute_output --partial "community"
    # removed again: one name more than before the first delta
    wait_counter domains $((names + 1))
    assert_equal "$(set_info names)" $((names + 1))
    run "$CTL" set dump "$ST/domains.set"
    refute_output --partial '"shop.test"'
}

@test "a delta on another base falls back to URL.snapshot by itself" {
    # the publisher is at seq 6; we hold 3: its delta 5 -> 6 does not fit
    publish feed.json.snapshot 6 -- "malware.test malware" "ads.test malware" "shop.test malware"
    publish feed.json 6 5 -- "ads.test malware"
    : >"$REQLOG"
    run "$CTL" feed refresh community
    assert_success
    assert_output --partial applied
    run cat "$REQLOG"
    assert_line --regexp '^GET /feed.json .* 200$'
    assert_line --regexp '^GET /feed.json.snapshot - 200$'
    assert_line --regexp '^GET /feed.json.snapshot.sig - 200$'
    assert_equal "$(feed_field last_seq)" 6
    wait_answer shop.test NXDOMAIN
    wait_answer ads.test NXDOMAIN
    # a snapshot is a full build: the overlay is gone
    [ ! -e "$ST/domains.set.overlay" ]
    # the delta's ETag was kept: the next refresh is a 304, not a rollback refusal
    run "$CTL" feed refresh community
    assert_success
    assert_output --partial "not modified"
    run "$CTL" feed list --json
    refute_output --partial "bad-base"
}

@test "no snapshot next to the feed: the wrong-base delta is refused, the last good state protects" {
    publish feed.json 9 8 -- "good.test malware"
    rm -f "$WWW/feed.json.snapshot" "$WWW/feed.json.snapshot.sig"
    run "$CTL" feed refresh community
    assert_failure
    run "$CTL" feed list --json
    assert_output --partial "bad-base"
    assert_equal "$(feed_field last_seq)" 6
    assert_equal "$(answer ads.test)" NXDOMAIN
    run answer good.test
    refute_output NXDOMAIN
}

@test "after a restart the overlay is folded into a full build" {
    before=$(grep -c "overlay compiled" "$OFFICE_RUN/logs/agent.log")
    publish feed.json 7 6 -- "c2.shop.test malware"
    run "$CTL" feed refresh community
    assert_success
    wait_answer c2.shop.test NXDOMAIN
    for _ in $(seq 50); do
        [ "$(grep -c "overlay compiled" "$OFFICE_RUN/logs/agent.log")" -gt "$before" ] && break
        sleep 0.1
    done
    run grep -c "overlay compiled" "$OFFICE_RUN/logs/agent.log"
    assert_output $((before + 1))
    office_stop agent
    start_agent
    # the start-up compile is a full one: c2.shop.test now comes from the base
    for _ in $(seq 100); do [ ! -e "$ST/domains.set.overlay" ] && break; sleep 0.1; done
    [ ! -e "$ST/domains.set.overlay" ]
    run "$CTL" set dump "$ST/domains.set"
    assert_output --partial '"c2.shop.test"'
    wait_answer c2.shop.test NXDOMAIN
    assert_equal "$(answer ads.test)" NXDOMAIN
}

@test "a delta that brings a new list (category) is compiled in full, not as an overlay" {
    before=$(grep -c "overlay compiled" "$OFFICE_RUN/logs/agent.log")
    full=$(grep -c ": compiled: " "$OFFICE_RUN/logs/agent.log")
    # seq 8 on 7: the base has only community/malware; c2 is a new list
    publish feed.json 8 7 -- "c2.good.test c2"
    run "$CTL" feed refresh community
    assert_success
    wait_answer c2.good.test NXDOMAIN
    for _ in $(seq 50); do
        [ "$(grep -c ": compiled: " "$OFFICE_RUN/logs/agent.log")" -gt "$full" ] && break
        sleep 0.1
    done
    run grep -c "overlay compiled" "$OFFICE_RUN/logs/agent.log"
    assert_output "$before"
    [ "$(grep -c ": compiled: " "$OFFICE_RUN/logs/agent.log")" -gt "$full" ]
    [ ! -e "$ST/domains.set.overlay" ]
    run "$CTL" set dump "$ST/domains.set"
    assert_output --partial '"c2.good.test"'
}

@test "a full disk: the download is refused in words (no space left), the last good lists keep protecting" {
    # A second agent whose state directory (where downloads land) is a 1 MiB tmpfs, and a
    # 3 MB list: the write fails with ENOSPC half way.
    export FULL=$OFFICE_RUN/full-state
    mkdir -p "$FULL" "$OFFICE_RUN/full-db"
    mount -t tmpfs -o size=1m otasuke-test-full "$FULL"
    python3 -c 'import sys; sys.stdout.write("".join("n%d.bulk.test\n" % i for i in range(200000)))' \
        >"$WWW/bulk.txt"
    office_start agent2 box "$AGENT" -f --db "$OFFICE_RUN/full-db/agent.db" --state-dir "$FULL" \
        --socket "$OFFICE_RUN/full-db/agent.sock" --dnsd-control "$OFFICE_RUN/full-db/dnsd.ctl"
    local sock=$OFFICE_RUN/full-db/agent.sock i out=""
    for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    OTASUKE_AGENT_SOCKET=$sock run "$CTL" feed add-list bulk http://198.18.10.10:8089/bulk.txt --category ads
    for i in $(seq 100); do
        out=$(OTASUKE_AGENT_SOCKET=$sock "$CTL" feed list --json)
        grep -q "No space left on device" <<<"$out" && break
        sleep 0.2
    done
    echo "$out"
    assert_equal "$(grep -c 'No space left on device' <<<"$out")" 1
    grep -q "the disk is full" <<<"$out"
    run office_log agent2
    assert_output --partial "No space left on device"
    office_stop agent2
    umount "$FULL"
    # Now the download fits but the database does not: agent.db on the full tmpfs. The
    # entries cannot be stored; the answer says why (not "not a list", not a bad entry).
    mount -t tmpfs -o size=1m otasuke-test-full "$FULL"
    office_start agent3 box "$AGENT" -f --db "$FULL/agent.db" --state-dir "$OFFICE_RUN/full-db" \
        --socket "$OFFICE_RUN/full-db/agent3.sock" --dnsd-control "$OFFICE_RUN/full-db/dnsd.ctl"
    sock=$OFFICE_RUN/full-db/agent3.sock
    for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    OTASUKE_AGENT_SOCKET=$sock "$CTL" feed add-list bulk http://198.18.10.10:8089/bulk.txt --category ads || true
    OTASUKE_AGENT_SOCKET=$sock run "$CTL" feed refresh bulk
    for i in $(seq 100); do grep -q "cannot be stored" "$OFFICE_RUN/logs/agent3.log" && break; sleep 0.2; done
    run office_log agent3
    assert_output --partial "its entries cannot be stored: database or disk is full (no space left on the box's disk"
    refute_output --partial "not-a-list"
    office_stop agent3
    umount "$FULL"
    unset FULL
    # the first agent and dnsd never noticed
    assert_equal "$(answer ads.test)" NXDOMAIN
}
