#!/usr/bin/env bats
# otasuke-agent in the virtual office, with the real otasuke-dnsd and otasuke-fwd: signed
# feeds from the fake internet, tampering, delegation inside / outside a grant,
# revocation, temporary unblock, firewall blocks with device risk, and kill -9 during a
# compile. pc asks the box (dnsd on 192.0.2.1:53); fwd owns table inet otasuke.

load helpers

BIN=$OTASUKE_REPO/build/bin
CTL=$BIN/otasukectl
# OTASUKE_AGENT_BIN runs another agent build here, e.g. one with AddressSanitizer.
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}

setup_file() {
    [ -x "$AGENT" ] && [ -x "$BIN/otasuke-dnsd" ] ||
        skip "build otasuke-agent and otasuke-dnsd first (make)"
    office_setup --dns=none
    export ST=$OFFICE_RUN/agent WWW=$OFFICE_RUN/agent-www
    mkdir -p "$ST" "$WWW"
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    # Keys: the hub signing the community feed, and an MSP the owner delegates to.
    "$CTL" feed keygen -o "$ST/hub" >/dev/null
    "$CTL" feed keygen -o "$ST/msp" >/dev/null
    # The fake internet serves the feed over HTTP from 198.18.10.10:8088.
    office_start feedweb wan python3 -m http.server 8088 --bind 198.18.10.10 --directory "$WWW"
    office_wait_port wan tcp 198.18.10.10 8088
    # The box's wiring for the agent (zones -> fw.set interfaces, zone networks -> groups).
    cat >"$ST/otasuke.conf" <<EOF
zones = (
    { name = "wan";   interface = "$OFFICE_IF_BOX_WAN"; },
    { name = "lan";   interface = "$OFFICE_IF_BOX_LAN"; addresses = [ "192.0.2.1/24", "fd00:0:0:1::1/64" ]; group = "staff"; },
    { name = "guest"; interface = "$OFFICE_IF_BOX_GUEST"; addresses = [ "203.0.113.1/24" ]; group = "guests"; },
    { name = "iot";   interface = "$OFFICE_IF_BOX_IOT"; addresses = [ "198.51.100.1/24" ]; group = "iot"; }
);
EOF
    start_agent
    for _ in $(seq 100); do [ -s "$ST/domains.set" ] && [ -s "$ST/fw.set" ] && break; sleep 0.1; done
    office_start dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --listen 203.0.113.1:53 \
        --upstream 127.0.0.1:5335 \
        --domains "$ST/domains.set" --policy "$ST/policy.set" --control "$ST/dnsd.ctl" \
        --events "$ST/events.sock"
    if [ -x "$BIN/otasuke-fwd" ]; then
        mkdir -p "$ST/fwd"
        office_start fwd box "$BIN/otasuke-fwd" -f --set "$ST/fw.set" --state "$ST/fwd" \
            --events "$ST/events.sock"
    fi
    office_wait_dns pc 192.0.2.1 good.test
}

teardown_file() { office_teardown; }

start_agent() {
    office_start agent box "$AGENT" -f --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --dnsd-control "$ST/dnsd.ctl" --config "$ST/otasuke.conf" \
        --events "$ST/events.sock" --fwd-pidfile "$OFFICE_RUN/pids/fwd.pid"
    for _ in $(seq 100); do [ -S "$ST/agent.sock" ] && "$CTL" status >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "agent did not come up:" >&2
    office_log agent >&2
    return 1
}

# pc's answer for NAME: "NXDOMAIN" or the addresses. answer_at NODE SERVER NAME: another's.
answer() { answer_at pc 192.0.2.1 "$1"; }
answer_at() {
    local out
    out=$(office_exec "$1" dig +time=2 +tries=1 "@$2" "$3" A) || { echo "dig failed"; return 0; }
    if grep -q 'status: NXDOMAIN' <<<"$out"; then echo NXDOMAIN; else
        office_exec "$1" dig +short +time=2 +tries=1 "@$2" "$3" A; fi
}

# wait_answer NAME WANT [SECONDS=10]: until pc's answer for NAME is WANT.
wait_answer() {
    local i got
    for ((i = 0; i < ${3:-10} * 10; i++)); do
        got=$(answer "$1")
        [ "$got" = "$2" ] && return 0
        sleep 0.1
    done
    echo "pc gets '$got' for $1, wanted '$2'" >&2
    return 1
}

publish() {   # SEQ ENTRY-LINES...: build and sign feed seq SEQ into the web dir
    local seq=$1
    shift
    printf '%s\n' "$@" > "$ST/entries.$seq"
    "$CTL" feed build --key "$ST/hub.key" --feed community --seq "$seq" -o "$WWW/feed.json.new" \
        "$ST/entries.$seq" >/dev/null
    mv "$WWW/feed.json.new.sig" "$WWW/feed.json.sig"
    mv "$WWW/feed.json.new" "$WWW/feed.json"
}

@test "a signed feed served from wan blocks its domain for pc" {
    assert_equal "$(answer malware.test)" 198.18.10.66
    publish 1 "malware.test malware"
    run "$CTL" feed add community http://198.18.10.10:8088/feed.json --feed-id community \
        --pubkey-file "$ST/hub.pub"
    assert_success
    local t0=$SECONDS
    wait_answer malware.test NXDOMAIN
    echo "# feed to NXDOMAIN in about $((SECONDS - t0)) s" >&3
    assert_equal "$(answer good.test)" 198.18.10.10
    run "$CTL" explain www.malware.test
    assert_output --partial "block"
    assert_output --partial "feed community"
    # ... and the set dnsd has loaded agrees.
    assert_output --partial "compiled set: block via community/malware"
}

@test "a tampered feed is refused with the reason and pc stays protected" {
    publish 2 "malware.test malware" "shop.test malware"
    sed -i 's/shop\.test/good.test/' "$WWW/feed.json"
    run "$CTL" feed refresh community
    assert_failure
    assert_output --partial "bad-signature"
    run "$CTL" feed list --json
    assert_output --partial '"last_reason": "bad-signature"'
    assert_output --partial '"last_seq": 1'
    assert_equal "$(answer malware.test)" NXDOMAIN
    assert_equal "$(answer good.test)" 198.18.10.10
    # An unsigned one (signature missing) is refused too.
    rm "$WWW/feed.json.sig"
    run "$CTL" feed refresh community
    assert_failure
    assert_output --partial "unsigned"
    assert_equal "$(answer malware.test)" NXDOMAIN
}

# pc's HTTP status for a URL ("000" when the connection fails).
http_code() { office_exec pc curl -s -m 2 -o /dev/null -w '%{http_code}' "$1" || true; }

@test "a feed's IP entry reaches fwd: pc cannot connect to it, and the attempt raises pc's risk" {
    [ -x "$BIN/otasuke-fwd" ] || skip "otasuke-fwd not built"
    assert_equal "$(http_code http://198.18.10.66/)" 200
    publish 3 "malware.test malware" "198.18.10.66 c2"
    run "$CTL" feed refresh community
    assert_success
    local i
    for ((i = 0; i < 50; i++)); do [ "$(http_code http://198.18.10.66/)" = 000 ] && break; sleep 0.1; done
    assert_equal "$(http_code http://198.18.10.66/)" 000
    assert_equal "$(http_code http://198.18.10.10/)" 200
    # fwd's drop events and dnsd's blocked-lookup events reach the agent's inventory.
    answer malware.test >/dev/null
    for ((i = 0; i < 50; i++)); do
        "$CTL" device list --json | grep -q '"malware_hits": [1-9]' && break
        sleep 0.1
    done
    run "$CTL" device list --json
    assert_output --partial '"ipv4": "192.0.2.10"'
    assert_output --regexp '"likelihood": [4-5]'
    refute_output --partial '198.18.0.1'    # the upstream router is not an office device
    run "$CTL" explain 198.18.10.66
    assert_output --partial "feed community"
}

@test "the owner blocks an address: fwd drops it in a set of its own; an allow for an address is refused" {
    [ -x "$BIN/otasuke-fwd" ] || skip "otasuke-fwd not built"
    assert_equal "$(http_code http://198.18.10.20/)" 200
    run "$CTL" policy block 198.18.10.20 --note "suspicious server" --json
    assert_success
    local id i
    id=$(echo "$output" | jq -r '.id')
    for ((i = 0; i < 50; i++)); do [ "$(http_code http://198.18.10.20/)" = 000 ] && break; sleep 0.1; done
    assert_equal "$(http_code http://198.18.10.20/)" 000
    run office_exec box nft list set inet otasuke rules_block_v4
    assert_output --partial 198.18.10.20
    run "$CTL" explain 198.18.10.20
    assert_output --partial "rule $id"
    assert_equal "$(http_code http://198.18.10.10/)" 200
    # names still compile (the address is not taken for a DNS name)
    assert_equal "$(answer malware.test)" NXDOMAIN
    run "$CTL" policy allow 198.18.10.66
    assert_failure
    assert_output --partial "addresses can be blocked, not allowed"
    run "$CTL" policy block 198.18.10.21 --group staff
    assert_failure
    assert_output --partial "applies to the whole office"
    run "$CTL" policy rm-rule "$id"
    assert_success
    for ((i = 0; i < 50; i++)); do [ "$(http_code http://198.18.10.20/)" = 200 ] && break; sleep 0.1; done
    assert_equal "$(http_code http://198.18.10.20/)" 200
}

@test "a delegate's malware entry applies; its social block of shop.test is refused and audited" {
    run "$CTL" delegate add msp "$ST/msp.pub"
    assert_success
    run "$CTL" delegate grant msp --categories malware --groups '*' --actions add_block
    assert_success
    "$CTL" delegate body msp add_block ads.test malware > "$ST/ok.json"
    run "$CTL" delegate submit "$ST/ok.json" --key "$ST/msp.key"
    assert_success
    wait_answer ads.test NXDOMAIN
    run "$CTL" explain ads.test
    assert_output --partial "by msp"
    assert_output --partial "grant 1"

    "$CTL" delegate body msp add_block shop.test social > "$ST/bad.json"
    run "$CTL" delegate submit "$ST/bad.json" --key "$ST/msp.key"
    assert_failure
    assert_output --partial "outside every live grant"
    run "$CTL" policy audit --json
    assert_output --partial '"result": "refused"'
    assert_output --partial "shop.test"
    sleep 1
    assert_equal "$(answer shop.test)" 198.18.10.20
    # Signed by someone else: refused as well.
    run "$CTL" delegate submit "$ST/ok.json" --key "$ST/hub.key"
    assert_failure
    assert_output --partial "signature"
}

@test "revoking the grant makes the delegate's entries vanish" {
    assert_equal "$(answer ads.test)" NXDOMAIN
    run "$CTL" delegate revoke 1
    assert_success
    wait_answer ads.test 198.18.10.80
    run "$CTL" explain ads.test --json
    assert_output --partial '"decision": "none"'
}

@test "a temporary unblock ends by itself" {
    assert_equal "$(answer malware.test)" NXDOMAIN
    run "$CTL" policy unblock malware.test --seconds 3
    assert_success
    wait_answer malware.test 198.18.10.66
    # Nobody touches anything: the expiry alone brings the block back.
    wait_answer malware.test NXDOMAIN 15
}

@test "kill -9 of the agent during a compile: dnsd keeps its set, the agent restarts cleanly" {
    # A big list makes the compile long enough to be caught in the middle.
    cp "$OTASUKE_REPO/../shared/data/blocklists/stevenblack.domains.txt" "$WWW/big.txt" 2>/dev/null ||
        skip "shared blocklists not available"
    run "$CTL" feed add-list big http://198.18.10.10:8088/big.txt --category ads
    assert_success
    for _ in $(seq 100); do "$CTL" feed list --json | grep -q '"entries": [1-9][0-9][0-9][0-9]' && break; sleep 0.2; done
    local before
    before=$(sha256sum < "$ST/domains.set")
    "$CTL" policy block extra.test >/dev/null     # a change: the agent compiles now
    # Kill the moment a temporary artifact appears (the compile is writing), or after 2 s.
    local i caught=no
    for ((i = 0; i < 400; i++)); do
        if compgen -G "$ST/*.tmp*" >/dev/null; then caught=yes; break; fi
        sleep 0.005
    done
    kill -9 "$(cut -d' ' -f1 "$OFFICE_RUN/pids/agent.pid")"
    echo "# killed with a temporary artifact on disk: $caught" >&3
    # Whatever the moment, no half-written artifact is in place and dnsd still filters.
    run "$CTL" set info "$ST/domains.set"
    assert_success
    assert_equal "$(answer malware.test)" NXDOMAIN
    run sqlite3 "$ST/agent.db" "PRAGMA integrity_check"
    assert_output ok
    run "$AGENT" -n --db "$ST/agent.db" --state-dir "$ST"
    assert_success
    office_stop agent || true
    start_agent
    run "$CTL" policy rules --json
    assert_output --partial "extra.test"
    wait_answer extra.test NXDOMAIN 20
    run "$CTL" status --json
    assert_output --partial '"status": "ok"'
    [ "$(sha256sum < "$ST/domains.set")" != "$before" ]
}

@test "groups follow the office's zones: a social rule blocks shop.test for guests only" {
    run "$CTL" policy group guests --categories malware,phishing,c2,social
    assert_success
    run "$CTL" policy block shop.test --category social
    assert_success
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(answer_at guest 203.0.113.1 shop.test)" = NXDOMAIN ] && break
        sleep 0.1
    done
    assert_equal "$(answer_at guest 203.0.113.1 shop.test)" NXDOMAIN
    assert_equal "$(answer shop.test)" 198.18.10.20
    run "$CTL" explain shop.test --client 203.0.113.10 --json
    assert_output --partial '"group": "guests"'
    assert_output --partial '"decision": "block"'
    run "$CTL" explain shop.test --client 192.0.2.10 --json
    assert_output --partial '"group": "staff"'
    assert_output --partial '"decision": "none"'
}

@test "a schedule blocks a category for staff only inside its window" {
    # The social rule from the test above; staff do not block social outside schedules.
    assert_equal "$(answer shop.test)" 198.18.10.20
    local day start end
    day=$(date +%a | tr 'A-Z' 'a-z' | cut -c1-3)
    start=$(date -d '-1 min' +%H:%M) end=$(date -d '+3 min' +%H:%M)
    run "$CTL" policy schedule staff social "$day" "$start" "$end"
    assert_success
    wait_answer shop.test NXDOMAIN
    run "$CTL" explain shop.test --client 192.0.2.10 --json
    assert_output --partial '"social"'
    run "$CTL" policy schedule staff social "$day" 25:00 "$end"
    assert_failure
    assert_output --partial "start"
    run "$CTL" policy rm-schedule 1
    assert_success
    wait_answer shop.test 198.18.10.20
}

@test "disabling a feed lifts its blocks; enabling brings them back without a new document" {
    assert_equal "$(answer malware.test)" NXDOMAIN
    run "$CTL" feed disable community
    assert_success
    wait_answer malware.test 198.18.10.66
    run "$CTL" feed enable community
    assert_success
    wait_answer malware.test NXDOMAIN
    run "$CTL" policy audit --json --limit 5
    assert_output --partial '"what": "feed.set"'
}

@test "a group set to answer with the block page gets the address webd reported" {
    # Until webd has said where it serves the block page, "blockpage" answers NXDOMAIN.
    run "$CTL" policy group guests --answer blockpage
    assert_success
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(answer_at guest 203.0.113.1 malware.test)" = NXDOMAIN ] && break
        sleep 0.1
    done
    assert_equal "$(answer_at guest 203.0.113.1 malware.test)" NXDOMAIN
    # webd reports its block-page addresses at start; the next compile points there.
    run curl -s --unix-socket "$ST/agent.sock" -X POST http://agent/v1/webd \
        -d '{"fingerprint":"00:11","listen":"203.0.113.1:443","blockpage_v4":"203.0.113.1","blockpage_v6":"fd00:0:0:2::1"}'
    assert_output --partial '"ok": true'
    for ((i = 0; i < 50; i++)); do
        [ "$(answer_at guest 203.0.113.1 malware.test)" = 203.0.113.1 ] && break
        sleep 0.1
    done
    assert_equal "$(answer_at guest 203.0.113.1 malware.test)" 203.0.113.1
    grep -q '"blockpage"' "$ST/policy.set"
    # staff keep their own answer mode
    assert_equal "$(answer malware.test)" NXDOMAIN
    run "$CTL" policy group guests --answer nxdomain
    assert_success
}

@test "bad API bodies are refused with the field named" {
    run curl -s --unix-socket "$ST/agent.sock" -X POST http://agent/v1/rules \
        -d '{"pattern":"x.test","kind":"block","colour":"red"}'
    assert_output --partial '"field": "colour"'
    run curl -s --unix-socket "$ST/agent.sock" -X POST http://agent/v1/rules \
        -d '{"pattern":5,"kind":"block"}'
    assert_output --partial '"field": "pattern"'
    run curl -s --unix-socket "$ST/agent.sock" -X POST http://agent/v1/unblock -d '{"domain":"x.test"'
    assert_output --partial '"field": "body"'
    run curl -s -o /dev/null -w '%{http_code}' --unix-socket "$ST/agent.sock" -X POST \
        http://agent/v1/rules --data-binary @"$OTASUKE_REPO/../shared/data/blocklists/fake.domains.txt"
    assert_output 400
    run curl -s --unix-socket "$ST/agent.sock" http://agent/metrics
    assert_output --partial "otasuke_agent_compiles_total"
}
