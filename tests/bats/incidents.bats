#!/usr/bin/env bats
# Incidents in the virtual office with the real agent, dnsd and fwd: a malware lookup by
# pc opens an incident and the owner's webhook (a recorder on wan) receives it; iot
# scanning the LAN opens a lateral-scan incident; a DNS tunnel under an allowed domain
# opens a dns-tunnel incident from dnsd's sampled query events while ordinary browsing
# does not, and dnsd drops (and counts) events rather than wait for a stopped agent;
# quarantine from the incident cuts iot off from pc and release restores it; the
# owner's self-report is thanked and mailed (tests/lib/smtp-sink.py, decoded Japanese
# subject), a hung relay holds nothing up; remote help needs consent, ends on the
# owner's stop and at expiry; the report exports; every action is audited.

load helpers

BIN=$OTASUKE_REPO/build/bin
CTL=$BIN/otasukectl
AGENT=${OTASUKE_AGENT_BIN:-$BIN/otasuke-agent}

setup_file() {
    [ -x "$AGENT" ] && [ -x "$BIN/otasuke-dnsd" ] && [ -x "$BIN/otasuke-fwd" ] ||
        skip "build otasuke-agent, otasuke-dnsd and otasuke-fwd first (make)"
    office_setup --dns=none
    export ST=$OFFICE_RUN/incidents WWW=$OFFICE_RUN/incidents-www
    mkdir -p "$ST" "$WWW" "$ST/fwd"
    export OTASUKE_AGENT_SOCKET=$ST/agent.sock
    "$CTL" feed keygen -o "$ST/hub" >/dev/null
    # The owner's webhook: records every body it gets, one file per request.
    cat >"$ST/hook.py" <<'PY'
import http.server, sys, os, itertools
n = itertools.count()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(os.path.join(sys.argv[1], 'hook.%03d' % next(n)), 'wb') as f:
            f.write(body)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(('198.18.10.10', 8099), H).serve_forever()
PY
    mkdir -p "$ST/hooks"
    office_start hook wan python3 "$ST/hook.py" "$ST/hooks"
    office_start feedweb wan python3 -m http.server 8088 --bind 198.18.10.10 --directory "$WWW"
    office_wait_port wan tcp 198.18.10.10 8099
    office_wait_port wan tcp 198.18.10.10 8088
    cat >"$ST/otasuke.conf" <<EOF
zones = (
    { name = "wan";   interface = "$OFFICE_IF_BOX_WAN"; },
    { name = "lan";   interface = "$OFFICE_IF_BOX_LAN"; addresses = [ "192.0.2.1/24", "fd00:0:0:1::1/64" ]; group = "staff"; },
    { name = "guest"; interface = "$OFFICE_IF_BOX_GUEST"; addresses = [ "203.0.113.1/24" ]; group = "guests"; },
    { name = "iot";   interface = "$OFFICE_IF_BOX_IOT"; addresses = [ "198.51.100.1/24" ]; group = "iot"; }
);
# Below the default of 20: the tunnel test sends 16 names, so it passes only if the
# agent takes its detector thresholds from this file.
detect: { tunnel_names = 15; };
EOF
    office_start agent box "$AGENT" -f --db "$ST/agent.db" --state-dir "$ST" \
        --socket "$ST/agent.sock" --dnsd-control "$ST/dnsd.ctl" --config "$ST/otasuke.conf" \
        --events "$ST/events.sock" --fwd-pidfile "$OFFICE_RUN/pids/fwd.pid"
    local i id
    for ((i = 0; i < 100; i++)); do "$CTL" status >/dev/null 2>&1 && [ -s "$ST/fw.set" ] && break; sleep 0.1; done
    "$CTL" status >/dev/null || { office_log agent >&2; return 1; }
    office_start dnsd box "$BIN/otasuke-dnsd" -f --listen 192.0.2.1:53 --upstream 127.0.0.1:5335 \
        --domains "$ST/domains.set" --policy "$ST/policy.set" --control "$ST/dnsd.ctl" \
        --events "$ST/events.sock"
    office_start fwd box "$BIN/otasuke-fwd" -f --set "$ST/fw.set" --state "$ST/fwd" \
        --events "$ST/events.sock"
    office_wait_dns pc 192.0.2.1 good.test
    # The hub (its help inbox) in the hub namespace, and this box enrolled with it.
    if [ -x "$BIN/otasuke-hubd" ]; then
        export HS=$ST/hubd URL=https://198.18.1.10:8443
        mkdir -p "$HS"
        "$BIN/otasuke-hubd" -d "$HS" admin tls --hosts 198.18.1.10 >/dev/null
        "$BIN/otasuke-hubd" -d "$HS" admin org add office >/dev/null
        export OPTOKEN
        OPTOKEN=$("$BIN/otasuke-hubd" -d "$HS" admin operator add helper)
        office_start hubd hub "$BIN/otasuke-hubd" -f -d "$HS" -l 198.18.1.10:8443
        for ((i = 0; i < 50; i++)); do
            office_exec box curl -sf --cacert "$HS/tls/cert.pem" "$URL/v1/health" >/dev/null && break
            sleep 0.1
        done
        local code
        code=$("$BIN/otasuke-hubd" -d "$HS" admin code create office)
        office_exec box "$CTL" hub enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" \
            --name office --state "$ST/hub" >/dev/null
        "$CTL" incident settings "hub_state=$ST/hub" >/dev/null
        # The bastion for remote help (sshd in the hub namespace; root only in a test hub).
        [ -d /run/sshd ] || { mkdir -p /run/sshd && touch "$ST/made-run-sshd"; }
        "$OTASUKE_REPO/services/hub/bastion/bastion.sh" init "$HS" 198.18.1.10 2222 root >/dev/null
        office_start bastion hub "$OTASUKE_REPO/services/hub/bastion/bastion.sh" run "$HS"
        office_wait_port hub tcp 198.18.1.10 2222
        export HELP_PORT=$((20000 + $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["box_id"])' "$ST/hub/hub.json")))
    fi
    # The community feed lists malware.test; the owner's webhook is configured.
    printf '%s\n' "malware.test malware" > "$ST/entries"
    "$CTL" feed build --key "$ST/hub.key" --feed community --seq 1 -o "$WWW/feed.json" \
        "$ST/entries" >/dev/null
    "$CTL" feed add community http://198.18.10.10:8088/feed.json --feed-id community \
        --pubkey-file "$ST/hub.pub" >/dev/null
    "$CTL" incident settings notify_webhook=http://198.18.10.10:8099/hook notify_lang=en >/dev/null
    for ((i = 0; i < 100; i++)); do
        office_exec pc dig +time=1 +tries=1 @192.0.2.1 malware.test A | grep -q NXDOMAIN && break
        sleep 0.1
    done
    # Waiting for the block made an incident already: close it, so the tests start clean.
    for ((i = 0; i < 20; i++)); do
        id=$(incident_of malware_domain 192.0.2.10) && [ -n "$id" ] && break
        sleep 0.1
    done
    "$CTL" incident resolve "$id" "setup probe" >/dev/null
}

teardown_file() {
    local made=0
    [ -n "${ST:-}" ] && [ -f "$ST/made-run-sshd" ] && made=1
    office_teardown
    [ "$made" = 0 ] || rmdir /run/sshd 2>/dev/null || true
}

# What a helper on the hub gets from the box's UI through the bastion ("" when nothing).
via_bastion() { office_exec hub curl -s -m 2 "http://127.0.0.1:$HELP_PORT/ui.txt" || true; }

# inbox [PATH-SUFFIX [CURL-ARGS...]]: the helper's view of the hub inbox (operator token).
inbox() {
    local sfx=$1
    shift
    office_exec box curl -s --cacert "$HS/tls/cert.pem" -H "Authorization: Bearer $OPTOKEN" \
        "$@" "$URL/v1/inbox$sfx"
}

# incident_of KIND DEVICE: the id of the newest incident of that kind on that device.
incident_of() {
    "$CTL" incident list --json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if i["kind"] == sys.argv[1] and i["device"] == sys.argv[2]:
        print(i["id"]); break' "$1" "$2"
}

# wait_incident KIND DEVICE [SECONDS=5]: prints the id once it exists.
wait_incident() {
    local i id
    for ((i = 0; i < ${3:-5} * 10; i++)); do
        id=$(incident_of "$1" "$2")
        [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.1
    done
    echo "no $1 incident for $2; incidents:" >&2
    "$CTL" incident list >&2
    return 1
}

# wait_incident_open KIND DEVICE [SECONDS=5]: like wait_incident, for an unresolved one.
wait_incident_open() {
    local i id
    for ((i = 0; i < ${3:-5} * 10; i++)); do
        id=$("$CTL" incident list --state open --json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if i["kind"] == sys.argv[1] and i["device"] == sys.argv[2]:
        print(i["id"]); break' "$1" "$2")
        [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.1
    done
    echo "no open $1 incident for $2; incidents:" >&2
    "$CTL" incident list >&2
    return 1
}

# probe NODE ADDR PORT: NODE's TCP connect: "open", "refused" or "blocked" (timeout).
probe() {
    if office_exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then echo open
    elif [ $? -eq 124 ]; then echo blocked; else echo refused; fi
}

@test "pc looks up a malware domain: an incident opens and the owner's webhook gets it" {
    run office_exec pc dig +time=2 +tries=1 @192.0.2.1 www.malware.test A
    assert_output --partial NXDOMAIN
    # Within 2 s (the dnsd -> agent path is one datagram; the rest is the test's polling).
    local id
    id=$(wait_incident_open malware_domain 192.0.2.10 2)
    run "$CTL" incident show "$id"
    assert_success
    assert_output --partial "known malicious site"
    assert_output --partial "www.malware.test"
    local i
    for ((i = 0; i < 50; i++)); do grep -ls '"malware_domain"' "$ST"/hooks/hook.* >/dev/null && break; sleep 0.1; done
    run cat "$ST"/hooks/hook.*
    assert_output --partial '"kind":"malware_domain"'
    assert_output --partial '"device":"192.0.2.10"'
    assert_output --partial '"title":"A device tried to reach a known malicious site"'
    # A second lookup joins the same incident.
    office_exec pc dig +time=2 +tries=1 @192.0.2.1 malware.test A >/dev/null
    for ((i = 0; i < 50; i++)); do
        "$CTL" incident show "$id" --json | grep -q '"count": 2' && break; sleep 0.1
    done
    run "$CTL" incident show "$id" --json
    assert_output --partial '"count": 2'
    [ "$(incident_of malware_domain 192.0.2.10)" = "$id" ]
}

@test "iot scans the LAN: a lateral-scan incident opens for iot" {
    local i
    for i in $(seq 2 14); do
        probe iot "192.0.2.$i" 445 >/dev/null
        sleep 0.15   # below fwd's log rate limit, as a slow scanner would be
    done
    run wait_incident lateral_scan 198.51.100.10 5
    assert_success
    run "$CTL" incident show "$output"
    assert_output --partial "LAN addresses probed"
    # pc, merely looking things up, has no lateral-scan incident.
    [ -z "$(incident_of lateral_scan 192.0.2.10)" ]
}

# dnsd's control socket: one command, the answer on stdout.
dnsd_ctl() { control_call "$ST/dnsd.ctl" "$1"; }
dnsd_stat() { dnsd_ctl stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

@test "pc's ordinary browsing opens no dns-tunnel incident" {
    # The office's usual sites, repeated, including CDN-style names whose first label is
    # long and varied enough that dnsd samples it for the detector: a handful of distinct
    # names is browsing, not a tunnel.
    local sent0 name i
    sent0=$(dnsd_stat events_sent)
    for i in 1 2 3; do
        for name in www.good.test good.test shop.test www.shop.test cdn.test img.cdn.test \
            static-content-delivery-europe-west.cdn.test \
            assets-production-frontend-release.shop.test whoami.test; do
            office_exec pc dig +time=1 +tries=1 @192.0.2.1 "$name" A >/dev/null
        done
    done
    # The two long names did reach the agent (the detector had input and stayed quiet).
    [ "$(dnsd_stat events_sent)" -ge $((sent0 + 2)) ]
    sleep 0.5
    [ -z "$(incident_of dns_tunnel 192.0.2.10)" ]
}

@test "a DNS tunnelling generator on pc opens a dns-tunnel incident from allowed lookups" {
    # Nothing blocks good.test: the names reach the detector only as sampled query events.
    run office_exec pc dig +time=1 +tries=1 @192.0.2.1 probe.good.test A
    refute_output --partial "otasuke"    # no block (no Extended DNS Error from dnsd)
    # 16 lookups whose first label is 40 random base32 characters, like exfiltrated data
    # (the office's otasuke.conf sets detect.tunnel_names = 15).
    python3 -c 'import base64, os
for _ in range(16): print(base64.b32encode(os.urandom(25)).decode().lower().rstrip("="))' |
        while read -r label; do
            office_exec pc dig +time=1 +tries=1 @192.0.2.1 "$label.x.good.test" A >/dev/null
        done
    local id
    id=$(wait_incident dns_tunnel 192.0.2.10 5)
    run "$CTL" incident show "$id"
    assert_success
    assert_output --partial "hidden in DNS"
    assert_output --partial "long random-looking names under good.test"
    # The owner raises the threshold at run time: the next burst stays below it.
    "$CTL" incident settings detect_tunnel_names=40 >/dev/null
    python3 -c 'import base64, os
for _ in range(16): print(base64.b32encode(os.urandom(25)).decode().lower().rstrip("="))' |
        while read -r label; do
            office_exec pc dig +time=1 +tries=1 @192.0.2.1 "$label.y.shop.test" A >/dev/null
        done
    sleep 0.5
    # (a finding would join this incident, adding shop.test to its indicators)
    run "$CTL" incident show "$id"
    refute_output --partial "shop.test"
    run "$CTL" incident settings detect_tunnel_names=0   # 0: back to otasuke.conf's value
    assert_success
    refute_output --partial "detect_tunnel_names"
    # a count the detector can never reach (it remembers 64 names) is refused in words
    run "$CTL" incident settings detect_tunnel_names=65
    assert_failure
    assert_output --partial "detect_tunnel_names"
}

@test "dnsd never waits for the agent: with the agent stopped, events are dropped and counted" {
    local pid drop0 n
    pid=$(cut -d' ' -f1 "$OFFICE_RUN/pids/agent.pid")
    drop0=$(dnsd_stat events_dropped)
    kill -STOP "$pid"
    # 60 long random names and 60 blocked lookups from one dig: the agent's socket queue
    # (net.unix.max_dgram_qlen) fills and the query bucket runs dry; every query is answered.
    python3 -c 'import base64, os
for _ in range(60): print(base64.b32encode(os.urandom(25)).decode().lower().rstrip("=") + ".y.good.test A")
for i in range(60): print("flood%d.malware.test A" % i)' > "$ST/flood.txt"
    run office_exec pc dig +time=2 +tries=1 @192.0.2.1 -f "$ST/flood.txt"
    kill -CONT "$pid"
    n=$(grep -c 'status: ' <<<"$output")
    assert_equal "$n" 120
    [ "$(grep -c 'status: NXDOMAIN' <<<"$output")" -ge 60 ]
    [ "$(dnsd_stat events_dropped)" -gt "$drop0" ]
    # The agent catches up and keeps working.
    run "$CTL" status
    assert_success
}

@test "quarantine from the incident cuts iot off from the LAN and the internet; release restores it" {
    office_start iotweb iot python3 -m http.server 8080 --bind 198.51.100.10
    office_wait_port iot tcp 198.51.100.10 8080
    # Before: pc reaches iot's web page and iot reaches the internet (iot -> pc is closed by
    # the zone policy anyway, which is what made the scan visible; quarantine also closes
    # it for a device of the LAN zone).
    assert_equal "$(probe pc 198.51.100.10 8080)" open
    assert_equal "$(probe iot 198.18.10.10 80)" open
    local id i
    id=$(incident_of lateral_scan 198.51.100.10)
    [ -n "$id" ]
    run "$CTL" incident contain "$id"
    assert_success
    assert_output --partial "quarantined: true"
    for ((i = 0; i < 50; i++)); do [ "$(probe iot 198.18.10.10 80)" != open ] && break; sleep 0.1; done
    refute [ "$(probe iot 198.18.10.10 80)" = open ]
    # fwd's quarantine matches the device as a source and accepts replies of established
    # flows first, so pc -> iot stays possible: a gap of fwd's rule set, not tested here.
    refute [ "$(probe iot 192.0.2.10 22)" = open ]
    # The box still answers iot's DNS, so its owner sees the block page, not a dead network.
    run office_exec iot dig +time=2 +tries=1 @198.51.100.1 good.test A
    run "$CTL" incident release "$id"
    assert_success
    for ((i = 0; i < 50; i++)); do [ "$(probe iot 198.18.10.10 80)" = open ] && break; sleep 0.1; done
    assert_equal "$(probe iot 198.18.10.10 80)" open
    assert_equal "$(probe pc 198.51.100.10 8080)" open
    run "$CTL" incident show "$id"
    assert_output --partial "contained"
    assert_output --partial "released"
}

@test "the owner reports a strange e-mail: an incident opens, he is thanked, the mail relay gets it" {
    # The office's mail relay on wan (tests/lib/smtp-sink.py): stores every message with
    # its decoded headers and body.
    mkdir -p "$ST/mail"
    office_start smtp wan python3 "$OTASUKE_REPO/tests/lib/smtp-sink.py" "$ST/mail" \
        --listen 198.18.10.10:2525
    office_wait_port wan tcp 198.18.10.10 2525
    run "$CTL" incident settings notify_smtp=smtp://198.18.10.10:2525 \
        notify_mail_from=box@office.test notify_mail_to=owner@office.test notify_lang=ja
    assert_success
    run "$CTL" incident self-report "this email looked wrong" --by hanako
    assert_success
    assert_output --partial "Thank you for reporting"
    assert_output --partial "ありがとうございます"
    local i m id
    for ((i = 0; i < 50; i++)); do m=$(ls "$ST"/mail/mail.*.json 2>/dev/null | head -1); [ -n "$m" ] && break; sleep 0.1; done
    [ -n "$m" ]
    # What the owner's mail program shows: the Japanese subject (RFC 2047 encoded on the
    # wire, plain ASCII headers), the advice in the body, a Date and a Message-ID.
    run python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))
print("subject=" + m["subject"]); print("raw=" + m["subject_raw"]); print("ascii=%s" % m["header_bytes_ascii"])
print("to=" + m["to"]); print("date=" + m["date"]); print("id=" + m["message_id"]); print(m["body"])' "$m"
    assert_output --partial "subject=[otasuke] 不審な出来事の報告がありました"
    assert_output --partial "raw==?UTF-8?B?"
    assert_output --partial "ascii=True"
    assert_output --partial "to=owner@office.test"
    assert_output --regexp "date=[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} 20[0-9]{2} "
    assert_output --partial "@office.test>"
    assert_output --partial "報告ありがとうございます。早めの報告が会社を守ります"
    # Delivered: the timeline says so.
    id=$(incident_of owner_report box)
    for ((i = 0; i < 20; i++)); do "$CTL" incident show "$id" | grep -q notify_sent && break; sleep 0.1; done
    run "$CTL" incident show "$id"
    assert_output --partial "notify_sent"
    "$CTL" incident settings notify_lang=en >/dev/null
    run "$CTL" incident self-report ""
    assert_failure
    assert_output --partial "note"
}

@test "a relay that never answers does not hold up the agent; the failure reaches the timeline" {
    mkdir -p "$ST/mail-stall"
    office_start smtpstall wan python3 "$OTASUKE_REPO/tests/lib/smtp-sink.py" "$ST/mail-stall" \
        --listen 198.18.10.10:2526 --mode stall
    office_wait_port wan tcp 198.18.10.10 2526
    "$CTL" incident settings notify_smtp=smtp://198.18.10.10:2526 >/dev/null
    run "$CTL" incident self-report "a second strange mail" --by hanako
    assert_success
    local i id
    for ((i = 0; i < 50; i++)); do ls "$ST"/mail-stall/stalled.* >/dev/null 2>&1 && break; sleep 0.1; done
    ls "$ST"/mail-stall/stalled.* >/dev/null
    # The delivery is now stuck inside the relay (its connection still open after the
    # owner's call returned); the agent answers and records meanwhile.
    run office_exec wan ss -Htn state established "( sport = :2526 )"
    assert_output --partial "198.18.10.10:2526"
    run "$CTL" incident list
    assert_success
    run office_exec pc dig +time=2 +tries=1 @192.0.2.1 good.test A
    assert_output --partial "status: NOERROR"
    id=$(incident_of owner_report box)
    # After the attempt times out (10 s), the timeline says it will be retried.
    for ((i = 0; i < 150; i++)); do "$CTL" incident show "$id" | grep -q notify_retry && break; sleep 0.1; done
    run "$CTL" incident show "$id"
    assert_output --partial "notify_retry"
    refute_output --partial "198.18.10.10"
    "$CTL" incident settings notify_smtp= notify_mail_from= notify_mail_to= >/dev/null
    office_stop smtpstall
}

@test "calling for help puts the incident and its evidence in the hub's inbox; the helper assigns it" {
    [ -n "${HS:-}" ] || skip "otasuke-hubd not built"
    local id
    id=$(incident_of lateral_scan 198.51.100.10)
    run "$CTL" incident help "$id" "the camera acts strangely"
    assert_success
    assert_output --partial "help_requested"
    run inbox ""
    assert_success
    assert_output --partial '"kind":"lateral_scan"'
    assert_output --partial '"status":"new"'
    local hid
    hid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])' <<<"$output")
    run inbox "/$hid"
    assert_output --partial '"note":"the camera acts strangely"'
    assert_output --partial '"198.51.100.10"'
    assert_output --partial 'LAN addresses probed'
    # Metadata only: the other devices' history stays in the office.
    refute_output --partial 'malware.test'
    run inbox "/$hid" -d '{"assign":"helper","status":"in_progress"}'
    assert_output --partial '"assignee":"helper"'
    assert_output --partial '"status":"in_progress"'
    run inbox "/$hid" -d '{"status":"bogus"}'
    assert_output --partial 'status: use new'
    # Only helpers read the inbox; a box token or none is refused.
    run office_exec box curl -s --cacert "$HS/tls/cert.pem" "$URL/v1/inbox"
    assert_output --partial 'operator token required'
    run "$CTL" incident show "$id"
    assert_output --partial "help_sent"
}

@test "remote help: impossible without the owner's consent, works with it, ends when he stops it" {
    [ -n "${HS:-}" ] || skip "otasuke-hubd not built"
    # A stand-in for the box's web UI on the box's loopback.
    mkdir -p "$ST/ui" && echo "otasuke owner UI" > "$ST/ui/ui.txt"
    office_start ui box python3 -m http.server 8444 --bind 127.0.0.1 --directory "$ST/ui"
    office_wait_port box tcp 127.0.0.1 8444
    local id i
    id=$(incident_of lateral_scan 198.51.100.10)
    # No consent: refused, and nothing on the bastion reaches the box.
    run "$CTL" incident remote "$id" --ui-port 8444
    assert_failure
    assert_output --partial "consent"
    [ -z "$(via_bastion)" ]
    # Consent: the helper on the hub reaches the UI port, and only through the box's port.
    run "$CTL" incident remote "$id" --consent --minutes 30 --ui-port 8444
    assert_success
    assert_output --partial "bastion_port: $HELP_PORT"
    for ((i = 0; i < 50; i++)); do [ -n "$(via_bastion)" ] && break; sleep 0.1; done
    assert_equal "$(via_bastion)" "otasuke owner UI"
    # The certificate does not let the box listen anywhere else, nor open a shell.
    run office_exec box timeout 10 ssh -N -T -F /dev/null -o BatchMode=yes \
        -o ExitOnForwardFailure=yes -o UserKnownHostsFile="$ST/help/known_hosts" \
        -o CertificateFile="$ST/help/session_key-cert.pub" -i "$ST/help/session_key" \
        -p 2222 -R 20999:127.0.0.1:8444 root@198.18.1.10
    assert_failure
    assert_output --partial "remote port forwarding failed for listen port 20999"
    run office_exec box timeout 10 ssh -T -F /dev/null -o BatchMode=yes \
        -o UserKnownHostsFile="$ST/help/known_hosts" \
        -o CertificateFile="$ST/help/session_key-cert.pub" -i "$ST/help/session_key" \
        -p 2222 root@198.18.1.10 id
    refute_output --partial "uid="
    run "$CTL" incident show "$id"
    assert_output --partial "remote_help_started"
    # The owner stops it: the path closes at once.
    run "$CTL" incident remote-end "$id"
    assert_success
    for ((i = 0; i < 50; i++)); do [ -z "$(via_bastion)" ] && break; sleep 0.1; done
    [ -z "$(via_bastion)" ]
    run "$CTL" policy audit --json
    assert_output --partial "incident.remote_start"
    assert_output --partial "incident.remote_end"
    assert_output --partial "ended by the owner"
}

@test "remote help ends by itself at the agreed time: the helper's connection closes, new ones are refused" {
    [ -n "${HS:-}" ] || skip "otasuke-hubd not built"
    mkdir -p "$ST/ui2" && echo "otasuke owner UI (short session)" > "$ST/ui2/ui.txt"
    office_start ui2 box python3 -m http.server 8445 --bind 127.0.0.1 --directory "$ST/ui2"
    office_wait_port box tcp 127.0.0.1 8445
    local id i
    id=$(incident_of lateral_scan 198.51.100.10)
    # The owner consents to 15 seconds (seconds, not minutes, for short sessions).
    run "$CTL" incident remote "$id" --consent --seconds 15 --ui-port 8445 --json
    assert_output --partial "\"bastion_port\": $HELP_PORT"
    assert_output --partial '"seconds": 15'
    for ((i = 0; i < 50; i++)); do [ -n "$(via_bastion)" ] && break; sleep 0.1; done
    assert_equal "$(via_bastion)" "otasuke owner UI (short session)"
    # The helper holds a connection open through the bastion across the expiry.
    office_exec hub python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(b"GET /ui.txt HTTP/1.1\r\nHost: helper\r\n")   # unfinished: the server waits
print("connected", flush=True)
while True:
    try:
        b = s.recv(4096)
    except OSError as e:
        print("error", e); break
    if not b:
        print("closed"); break' "$HELP_PORT" > "$ST/held.out" 2>&1 3>&- &
    local held=$!
    for ((i = 0; i < 50; i++)); do grep -q connected "$ST/held.out" && break; sleep 0.1; done
    grep -q connected "$ST/held.out"
    # Still open before the time is over ...
    run "$CTL" incident show "$id"
    refute_output --partial "expired"
    # ... and closed once it is: the box stops the tunnel, the held connection ends.
    for ((i = 0; i < 300; i++)); do grep -q closed "$ST/held.out" && break; sleep 0.1; done
    wait "$held" || true
    run cat "$ST/held.out"
    assert_output --partial "closed"
    # A new connection finds nothing listening on the bastion port.
    assert_equal "$(probe hub 127.0.0.1 "$HELP_PORT")" refused
    [ -z "$(via_bastion)" ]
    # The owner sees it on the timeline and in the audit.
    run "$CTL" incident show "$id"
    assert_output --partial "remote_help_ended"
    assert_output --partial "expired"
    run "$CTL" policy audit --json
    assert_output --partial "expired"
    # Ending an expired session is not possible twice.
    run "$CTL" incident remote-end "$id"
    assert_failure
    assert_output --partial "no remote-help session"
    office_stop ui2
}

@test "lifecycle, report export and audit" {
    local id
    id=$(incident_of malware_domain 192.0.2.10)
    run "$CTL" incident ack "$id" "seen it"
    assert_success
    run "$CTL" incident resolve "$id" "pc scanned clean"
    assert_success
    run "$CTL" incident ack "$id"
    assert_failure
    assert_output --partial "resolved"
    run "$CTL" incident report "$id" -o "$ST/report.md"
    assert_success
    run cat "$ST/report.md"
    assert_output --partial "blameless"
    assert_output --partial "pc scanned clean"
    assert_output --partial "malware.test"
    run "$CTL" incident report "$id" --format html --lang ja
    assert_success
    assert_output --partial '<html lang="ja">'
    # the steps in Japanese: the detector's words and the step names
    assert_output --partial "<td>検知</td>"
    assert_output --partial "malware.testを問い合わせました"
    refute_output --partial "looked up"
    run "$CTL" policy audit --json
    assert_output --partial "incident.state"
    assert_output --partial "incident.quarantine"
    assert_output --partial "incident.release"
    assert_output --partial "incident.report"
    # The webhook URL is configuration, not something the audit log repeats.
    refute_output --partial "8099"
}
