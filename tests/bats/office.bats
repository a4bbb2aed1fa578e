#!/usr/bin/env bats
# The virtual office itself (tests/lib/office.sh): addressing, routing through the box,
# NAT, the fake internet's DNS and web, and that `down` leaves nothing behind.

load helpers

setup_file() { office_setup; }
# Offices the tests below make besides the file's own, removed even if a test failed.
teardown_file() {
    local id
    for id in $(cat "$BATS_FILE_TMPDIR/extra" 2>/dev/null); do "$OFFICE_SH" down "$id"; done
    [ ! -r "$BATS_FILE_TMPDIR/owner" ] || kill "$(cat "$BATS_FILE_TMPDIR/owner")" 2>/dev/null || true
    office_teardown
}
extra_up() {   # env assignments are the caller's; prints the new ID
    local out
    out=$("$OFFICE_SH" up "$@") || return 1
    echo "${out##*OFFICE_ID=}" | tee -a "$BATS_FILE_TMPDIR/extra"
}

# addresses of IFACE in NODE, "addr/len" one per line (global scope only)
addrs() { office_exec "$1" ip -o addr show dev "$2" scope global | awk '{print $4}'; }

@test "pc, guest and iot have their IPv4 and IPv6 addresses" {
    run addrs pc "$OFFICE_IF_PC"
    assert_line 192.0.2.10/24
    assert_line fd00:0:0:1::10/64
    run addrs guest "$OFFICE_IF_GUEST"
    assert_line 203.0.113.10/24
    assert_line fd00:0:0:2::10/64
    run addrs iot "$OFFICE_IF_IOT"
    assert_line 198.51.100.10/24
    assert_line fd00:0:0:3::10/64
    run addrs hub "$OFFICE_IF_HUB"
    assert_line 198.18.1.10/24
    assert_line fd00:0:0:101::10/64
}

@test "box has one address per net and the WAN address" {
    run addrs box "$OFFICE_IF_BOX_LAN"
    assert_output "$(printf '192.0.2.1/24\nfd00:0:0:1::1/64')"
    run addrs box "$OFFICE_IF_BOX_GUEST"
    assert_output "$(printf '203.0.113.1/24\nfd00:0:0:2::1/64')"
    run addrs box "$OFFICE_IF_BOX_IOT"
    assert_output "$(printf '198.51.100.1/24\nfd00:0:0:3::1/64')"
    run addrs box "$OFFICE_IF_BOX_WAN"
    assert_output "$(printf '198.18.0.2/24\nfd00:0:0:100::2/64')"
}

@test "interface names fit in 15 characters and carry the office ID" {
    local v val n=0
    for v in ${!OFFICE_IF_@}; do
        val=${!v} n=$((n + 1))
        [ ${#val} -le 15 ] || fail "$v=$val is longer than 15"
        [[ $val == o$OFFICE_ID* ]] || fail "$v=$val lacks the ID"
    done
    [ $n -eq 10 ] || fail "expected 10 OFFICE_IF_ variables, got $n"
}

@test "clients route through the box, the box through wan, and wan ends there" {
    run office_exec pc ip route show default
    assert_output --partial "via 192.0.2.1"
    run office_exec iot ip -6 route show default
    assert_output --partial "via fd00:0:0:3::1"
    run office_exec box ip route get 198.18.53.53
    assert_output --partial "via 198.18.0.1"
    # Sealed: the fake internet has no way further out.
    run office_exec wan ip route get 192.0.0.8
    assert_failure
    run office_exec wan ip -6 route get 2001:db8::1
    assert_failure
}

@test "pc resolves good.test through the box from the wan zone" {
    run office_exec pc dig good.test A
    assert_success
    assert_output --partial "SERVER: 192.0.2.1#53"
    assert_output --regexp "good\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+198\.18\.10\.10"
    # The box's path ends at the authoritative server, not at the wan resolver.
    run office_exec pc dig +short whoami.test TXT
    assert_output '"authoritative"'
}

@test "pc resolves AAAA and over IPv6 transport" {
    run office_exec pc dig +short good.test AAAA
    assert_output fd00:0:0:10::10
    run office_exec pc dig +short @fd00:0:0:1::1 shop.test AAAA
    assert_output fd00:0:0:10::20
}

@test "CNAMEs and cname chains come through" {
    run office_exec pc dig +short www.good.test
    assert_output "$(printf 'good.test.\n198.18.10.10')"
    run office_exec pc dig +short tracker.cdn.test
    assert_output "$(printf 'tracker.ads.test.\n198.18.10.80')"
    run office_exec pc dig +short hop1.cdn.test
    assert_line 198.18.10.10
    assert_line hop3.cdn.test.
    run office_exec pc dig +short nosuchname.good.test
    assert_output ""
    run office_exec pc dig nosuchname.good.test
    assert_output --partial "status: NXDOMAIN"
}

@test "guest and iot resolve through their own box address" {
    run office_exec guest dig shop.test
    assert_output --partial "SERVER: 203.0.113.1#53"
    assert_output --partial "198.18.10.20"
    run office_exec iot dig malware.test
    assert_output --partial "SERVER: 198.51.100.1#53"
    assert_output --partial "198.18.10.66"
}

@test "safe-search names resolve inside the office" {
    local name want
    while read -r name want; do
        run office_exec pc dig +short "$name"
        assert_output "$want"
    done <<'EOF'
www.google.com 198.18.20.1
forcesafesearch.google.com 198.18.20.2
strict.bing.com 198.18.20.4
restrict.youtube.com 198.18.20.6
restrictmoderate.youtube.com 198.18.20.7
safe.duckduckgo.com 198.18.20.9
EOF
}

@test "the wan public resolver answers whoami.test itself (a query not intercepted)" {
    run office_exec pc dig +short @198.18.8.8 whoami.test TXT
    assert_output '"wan-resolver"'
    run office_exec pc dig +short @fd00:0:0:8::8 good.test
    assert_output 198.18.10.10
}

@test "pc fetches http://good.test/ through the box, NATed (IPv4 and IPv6)" {
    run office_exec pc curl -4 -sS --max-time 5 http://good.test/
    assert_success
    assert_line site=good.test
    assert_line client=198.18.0.2
    run office_exec pc curl -6 -sS --max-time 5 http://good.test/
    assert_success
    assert_line site=good.test
    assert_line client=fd00:0:0:100::2
}

@test "guest, iot and hub reach the web sites" {
    run office_exec guest curl -sS --max-time 5 http://shop.test/
    assert_line site=shop.test
    run office_exec iot curl -4 -sS --max-time 5 http://ads.test/
    assert_line site=ads.test
    # hub is not behind the box: wan sees its own address
    run office_exec hub curl -sS --max-time 5 http://198.18.10.66/
    assert_line site=malware.test
    assert_line client=198.18.1.10
}

@test "TCP 853 and 443 on 198.18.8.8 accept; other ports refuse" {
    run office_exec pc timeout 5 bash -c 'exec 3<>/dev/tcp/198.18.8.8/853'
    assert_success
    run office_exec pc timeout 5 bash -c 'exec 3<>/dev/tcp/198.18.8.8/443'
    assert_success
    run office_exec pc timeout 5 bash -c 'exec 3<>/dev/tcp/fd00:0:0:8::8/853'
    assert_success
    run office_exec pc timeout 5 bash -c 'exec 3<>/dev/tcp/198.18.8.8/8443'
    assert_failure
}

@test "box unbound answers on loopback :5335 only" {
    run office_exec box dig +short -p 5335 @127.0.0.1 good.test
    assert_output 198.18.10.10
    run office_exec box dig +short -p 5335 @::1 good.test AAAA
    assert_output fd00:0:0:10::10
    run office_exec box ss -Hlun "sport = :5335"
    assert_output --regexp "127\.0\.0\.1:5335"
    assert_output --regexp "\[::1\]:5335"
    refute_output --partial "192.0.2.1:5335"
}

@test "box NAT is its own table, not otasuke's" {
    run office_exec box nft list tables
    assert_line "table ip office_nat"
    assert_line "table ip6 office_nat"
    refute_line "table inet otasuke"
}

@test "a plain dig in a node asks the office, never the host's resolver" {
    run cat "/etc/netns/ota$OFFICE_ID-pc/resolv.conf"
    assert_output --partial "nameserver 192.0.2.1"
    run cat "/etc/netns/ota$OFFICE_ID-guest/resolv.conf"
    assert_output --partial "nameserver 203.0.113.1"
    run office_exec hub dig +short whoami.test TXT
    assert_output '"wan-resolver"'
}

@test "start and stop track a daemon in a node" {
    office_start sleeper pc sleep 600
    run "$OFFICE_SH" status
    assert_output --regexp "daemon sleeper in pc: pid [0-9]+ running"
    local pid
    pid=$(cut -d' ' -f1 "$OFFICE_RUN/pids/sleeper.pid")
    [ "$(readlink "/proc/$pid/ns/net")" = "net:[$(stat -L -c %i "/run/netns/ota$OFFICE_ID-pc")]" ] ||
        fail "sleeper is not in the pc namespace"
    run office_start sleeper pc sleep 600
    assert_failure
    office_stop sleeper
    run "$OFFICE_SH" status
    refute_output --partial sleeper
    run office_stop sleeper
    assert_failure
}

@test "a second office (--dns=none) runs beside the first and down removes all of it" {
    local id2 inodes
    id2=$(OFFICE_ID= OFFICE_OWNER=$$ extra_up --dns=none)
    [ -n "$id2" ] && [ "$id2" != "$OFFICE_ID" ]
    # both answer, each through its own box
    run ip netns exec "ota$id2-box" dig +short -p 5335 @127.0.0.1 shop.test
    assert_output 198.18.10.20
    run office_exec pc dig +short good.test
    assert_output 198.18.10.10
    # --dns=none: :53 on the box is free for the DNS filter
    run ip netns exec "ota$id2-box" ss -Hltun "sport = :53"
    assert_output ""
    run ip netns exec "ota$id2-pc" dig +time=1 +tries=1 good.test
    assert_failure
    ip netns exec "ota$id2-pc" sleep 600 3>&- &
    inodes=$(office_netns_inodes "$id2")
    [ -n "$inodes" ]
    run "$OFFICE_SH" down "$id2"
    assert_success
    run office_leftovers "$id2" $inodes
    assert_output ""
    # idempotent
    run "$OFFICE_SH" down "$id2"
    assert_success
    # the first office is untouched
    run office_exec pc dig +short good.test
    assert_output 198.18.10.10
}

@test "down cleans up after a killed run" {
    local id2 inodes f
    id2=$(OFFICE_ID= OFFICE_OWNER=$$ extra_up)
    inodes=$(office_netns_inodes "$id2")
    # crash: every daemon killed hard, the run dir lost
    for f in /run/otasuke-office/"$id2"/pids/*.pid; do kill -KILL "$(cut -d' ' -f1 "$f")"; done
    rm -rf "/run/otasuke-office/$id2"
    run env -u OFFICE_ID "$OFFICE_SH" down "$id2"
    assert_success
    run office_leftovers "$id2" $inodes
    assert_output ""
}

@test "an up that fails half way removes what it built" {
    local wan id2
    wan=$BATS_TEST_TMPDIR/wan
    cp -r "$OTASUKE_REPO/tests/lib/wan" "$wan"
    echo "    no-such-option: yes" >>"$wan/nsd.conf.in"
    id2=f$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    run env OFFICE_ID="$id2" OFFICE_WAN_DIR="$wan" OFFICE_OWNER=$$ "$OFFICE_SH" up
    assert_failure
    assert_output --partial "up failed"
    run office_leftovers "$id2"
    assert_output ""
}

@test "down --all removes offices whose owner is gone and keeps the others" {
    local tag owner idlive iddead
    tag=a$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
    sleep 600 3>&- &
    owner=$!
    OFFICE_ID=${tag}l OFFICE_OWNER=$owner extra_up --dns=none >/dev/null
    OFFICE_ID=${tag}d OFFICE_OWNER=$owner extra_up --dns=none >/dev/null
    idlive=${tag}l iddead=${tag}d
    echo "$owner" >"$BATS_FILE_TMPDIR/owner"
    # the owner of iddead "dies": point it at a process that is gone
    echo "$owner 1" >"/run/otasuke-office/$iddead/owner"
    run "$OFFICE_SH" list
    assert_line --regexp "^$idlive +namespaces=6 .*\(alive\)"
    assert_line --regexp "^$iddead +namespaces=6 .*\(gone\)"
    run "$OFFICE_SH" down --all "$tag*"
    assert_success
    run office_leftovers "$iddead"
    assert_output ""
    [ -e "/run/netns/ota$idlive-box" ]
    kill "$owner"
    wait "$owner" || true
    run "$OFFICE_SH" down --all "$tag*"
    run office_leftovers "$idlive"
    assert_output ""
    # this file's office is owned by the live bats process: never touched
    [ -e "/run/netns/ota$OFFICE_ID-box" ]
}

@test "box unbound can be driven with unbound-control (cache flush for tests)" {
    run office_exec box unbound-control -c "$OFFICE_BOX_UNBOUND_CONF" flush good.test
    assert_success
    assert_output ok
}

@test "make run's script refuses without root in one line" {
    command -v setpriv >/dev/null || skip "setpriv (util-linux) missing"
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$OTASUKE_REPO/tests/lib/run-office.sh"
    assert_failure
    assert_output --partial "needs root"
    [ "${#lines[@]}" -eq 1 ]
}

@test "make run's script brings an office up, serves pc, and TERM leaves nothing" {
    local log=$BATS_TEST_TMPDIR/run.log pid id i inodes
    "$OTASUKE_REPO/tests/lib/run-office.sh" >"$log" 2>&1 3>&- &
    pid=$!
    for ((i = 0; i < 200; i++)); do
        grep -q "Ctrl-C stops everything" "$log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    id=$(sed -n 's/^The virtual office \([a-z0-9]*\) is up.*/\1/p' "$log")
    [ -n "$id" ] || { cat "$log"; kill "$pid"; fail "run-office.sh did not come up"; }
    echo "$id" >>"$BATS_FILE_TMPDIR/extra"
    run ip netns exec "ota$id-pc" dig +short good.test
    assert_output 198.18.10.10
    inodes=$(office_netns_inodes "$id")
    kill -TERM "$pid"
    wait "$pid"
    run cat "$log"
    assert_output --partial "stopping office $id"
    run office_leftovers "$id" $inodes
    assert_output ""
}

@test "helpers wait for ports and answers, and give up with a message" {
    office_wait_port wan tcp 198.18.8.8 853
    office_wait_port wan tcp fd00:0:0:10::10 80
    office_wait_port box udp 127.0.0.1 5335
    office_wait_dns pc 192.0.2.1 good.test
    office_wait_dns box '127.0.0.1#5335' good.test AAAA
    run office_wait_port pc tcp 192.0.2.10 9 1
    assert_failure
    assert_output --partial "nothing listens on tcp 192.0.2.10:9 in pc"
    run office_wait_dns pc 192.0.2.1 nosuchname.good.test A 1
    assert_failure
}

@test "pc pings the fake internet through the box (IPv4 and IPv6)" {
    run office_exec pc ping -c 1 -W 2 198.18.10.10
    assert_success
    run office_exec pc ping -6 -c 1 -W 2 fd00:0:0:10::10
    assert_success
    run office_exec iot ping -c 1 -W 2 198.18.1.10
    assert_success
}
