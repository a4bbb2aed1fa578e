#!/usr/bin/env bats
# The DNS benchmark's own tools (tests/bench/dns): prepare.py builds inputs that mean
# what the benchmark says they mean, and dnsload counts queries and answers right.
# Loopback only (an unbound on 127.0.53.7:55390), no namespaces; no timing assertions.

load helpers

PREPARE=$OTASUKE_REPO/tests/bench/dns/prepare.py
DNSLOAD=$OTASUKE_REPO/build/bench/dnsload

setup_file() {
    [ -x "$DNSLOAD" ] || skip "build the bench tools first (make)"
    command -v unbound >/dev/null || [ -x /usr/sbin/unbound ] || skip "unbound not installed"
    local shared=$OTASUKE_REPO/../shared/data/blocklists
    [ -d "$shared" ] || shared=/work/shared/data/blocklists
    [ -d "$shared" ] || skip "shared blocklists not found"
    export D=$BATS_FILE_TMPDIR
    # A small slice of four list formats: the extraction is exercised on each.
    mkdir -p "$D/lists"
    for f in hagezi-light.adblock.txt adguarddns.hosts.txt stevenblack.dnsmasq.txt hagezi-light.rpz.txt; do
        head -60 "$shared/$f" > "$D/lists/$f"
    done
    python3 "$PREPARE" --data "$D/lists" --out "$D/a" --total 400 --allowed 50 --blocked 40 \
        --seed 7 > "$D/a.meta"
    python3 "$PREPARE" --data "$D/lists" --out "$D/b" --total 400 --allowed 50 --blocked 40 \
        --seed 7 > /dev/null
    cat > "$D/unbound.conf" <<EOF
server:
  interface: 127.0.53.7@55390
  port: 55390
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$D"
  pidfile: ""
  use-syslog: no
  logfile: "$D/unbound.log"
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
include: "$D/a/internet.conf"
remote-control:
  control-enable: yes
  control-interface: "$D/ctl.sock"
  control-use-cert: no
EOF
    PATH=$PATH:/usr/sbin unbound -d -c "$D/unbound.conf" > "$D/unbound.out" 2>&1 &
    echo $! > "$D/unbound.pid"
    "$DNSLOAD" --wait -s 127.0.53.7 -p 55390 -q "$(head -1 "$D/a/q-allowed.txt" | cut -d' ' -f1)" \
        --rcode noerror -t 20 > /dev/null
}

teardown_file() {
    local p
    p=$(cat "$BATS_FILE_TMPDIR/unbound.pid" 2>/dev/null) || return 0
    kill "$p" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$p" 2>/dev/null || true
}

@test "prepare.py writes exactly --total unique names in every list syntax" {
    [ "$(wc -l < "$D/a/block.domains")" -eq 400 ]
    [ "$(sort -u "$D/a/block.domains" | wc -l)" -eq 400 ]
    [ "$(grep -c ' CNAME \.$' "$D/a/block.rpz")" -eq 800 ]
    [ "$(grep -c '^\*\.' "$D/a/block.rpz")" -eq 400 ]
    [ "$(grep -c '^server=/.*/$' "$D/a/block.dnsmasq")" -eq 400 ]
    [ "$(grep -c '^||.*\^$' "$D/a/block.adblock")" -eq 400 ]
    [ "$(wc -l < "$D/a/block.reload.domains")" -eq 401 ]
    run grep -c '"generated": ' "$D/a.meta"
    assert_output 1
}

@test "prepare.py is deterministic for a seed" {
    for f in block.domains block.rpz q-allowed.txt q-blocked.txt internet.conf; do
        cmp "$D/a/$f" "$D/b/$f"
    done
}

@test "allowed query names are never under a list entry; blocked ones always are" {
    run python3 - "$D/a" <<'PY'
import sys
d = sys.argv[1]
bl = set(open(f"{d}/block.domains").read().split())
def covered(n):
    l = n.split(".")
    return any(".".join(l[i:]) in bl for i in range(len(l)))
allowed = [l.split()[0] for l in open(f"{d}/q-allowed.txt")]
blocked = [l.split()[0] for l in open(f"{d}/q-blocked.txt")]
assert len(allowed) == 50 and len(blocked) == 40, (len(allowed), len(blocked))
bad = [n for n in allowed if covered(n)] + [n for n in blocked if not covered(n)]
print("bad:", bad)
sys.exit(1 if bad else 0)
PY
    assert_success
}

@test "dnsload at a fixed rate sends rate x seconds queries and counts every answer" {
    run "$DNSLOAD" -s 127.0.53.7 -p 55390 -d "$D/a/q-allowed.txt" -r 500 -l 1 -t 2
    assert_success
    echo "$output" | python3 -c '
import json, sys
r = json.load(sys.stdin)["all"]
assert r["sent"] == 500, r
assert r["answered"] == 500 and r["lost"] == 0, r
assert r["rcodes"]["NOERROR"] == 500, r
assert 0 < r["p50_us"] <= r["p99_us"] <= r["max_us"], r'
}

@test "dnsload counts queries to a silent port as lost" {
    run "$DNSLOAD" -s 127.0.53.7 -p 55391 -d "$D/a/q-allowed.txt" -r 200 -l 0.5 -t 0.5
    assert_success
    echo "$output" | python3 -c '
import json, sys
r = json.load(sys.stdin)["all"]
assert r["sent"] == 100 and r["answered"] == 0 and r["lost"] == 100, r'
}

@test "dnsload reload mode runs the command and sees the probe flip" {
    # The probe is answered by the loopback "internet" (NOERROR) until the command
    # removes it there; then it falls under local-zone "." static: NXDOMAIN.
    probe=$(grep -o 'reload-probe-[^ .]*\.bench-probe\.com' "$D/a/internet.conf" | head -1)
    [ -n "$probe" ]
    run "$DNSLOAD" -s 127.0.53.7 -p 55390 -d "$D/a/q-allowed.txt" -r 200 -l 1.5 -t 2 \
        --reload-at 0.5 --probe "$probe" --window-min 0.2 --after 0.3 --max 10 \
        --reload-cmd "PATH=\$PATH:/usr/sbin unbound-control -c '$D/unbound.conf' local_data_remove $probe >/dev/null"
    assert_success
    echo "$output" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["reload_cmd_status"] == 0, r
assert r["reload_done_s"] is not None and not r["reload_timed_out"], r
assert r["all"]["lost"] == 0, r
assert r["steady"]["sent"] > 0 and r["reload"]["sent"] > 0, r
assert r["steady"]["sent"] + r["reload"]["sent"] <= r["all"]["sent"], r'
}
