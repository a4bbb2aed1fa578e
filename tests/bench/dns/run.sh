#!/usr/bin/env bash
# DNS benchmark (`make bench-dns`): otasuke-dnsd+unbound against bare unbound,
# unbound+RPZ and dnsmasq, same 1M-name blocklist, same query files, same run, all on
# loopback (127.0.53.0/24, no network, no namespaces).
#
#   tests/bench/dns/run.sh            writes tests/bench/results/dns.{json,md}, prints the table
#
# Environment (all optional):
#   BUILD=build                 where the binaries are (build/bin, build/bench/dnsload)
#   BENCH_DNS_SECONDS=3         length of each dnsperf run
#   BENCH_DNS_REPEATS=5         rounds; every round measures every peer, medians reported
#   BENCH_DNS_CLIENTS=4         dnsperf -c; BENCH_DNS_OUTSTANDING=100 (dnsperf -q)
#   BENCH_DNS_LAT_QPS=2000      fixed rate of the latency and reload runs (dnsload)
#   BENCH_DNS_PORT=55300        first of six UDP ports on 127.0.53.1-6
#   BENCH_DNS_TOTAL=1000000     blocklist size; BENCH_DNS_SEED=4
#   BENCH_DNS_OUT=tests/bench/results   where dns.json / dns.md go
#   BENCH_DNS_NICE=0            e.g. -10: run this script and everything it starts at a
#                               higher priority, so other work on a shared box disturbs
#                               the numbers less (it slows that work down meanwhile)
#
# How each number is taken (see tests/bench/dns/README.md for the why):
#   load       start of the process → first correct answer (blocked name → NXDOMAIN,
#              for bare unbound: allowed name → NOERROR)
#   rss        VmRSS / VmHWM from /proc/PID/status, after load and at the end
#   qps        dnsperf -l SECONDS -c CLIENTS -q OUTSTANDING -T 1, unbounded rate,
#              median over rounds; caches warmed first
#   p50/p99    dnsload at a fixed BENCH_DNS_LAT_QPS (open loop), median over rounds
#   reload     under a steady BENCH_DNS_LAT_QPS mixed load, the new list (the same names
#              plus a probe name) is put in place and the peer told to reload; reload
#              time = trigger → first NXDOMAIN for the probe; lost = queries without an
#              answer within 5 s; p99 over the reload window vs. before it
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
BUILD=${BUILD:-build}
SECONDS_RUN=${BENCH_DNS_SECONDS:-3}
REPEATS=${BENCH_DNS_REPEATS:-5}
CLIENTS=${BENCH_DNS_CLIENTS:-4}
OUTSTANDING=${BENCH_DNS_OUTSTANDING:-100}
LAT_QPS=${BENCH_DNS_LAT_QPS:-2000}
PORT=${BENCH_DNS_PORT:-55300}
TOTAL=${BENCH_DNS_TOTAL:-1000000}
SEED=${BENCH_DNS_SEED:-4}
OUT=${BENCH_DNS_OUT:-tests/bench/results}
DATA=${BENCH_DNS_DATA:-$ROOT/../shared/data/blocklists}
[ -d "$DATA" ] || DATA=/work/shared/data/blocklists
NICE=${BENCH_DNS_NICE:-0}
DNSLOAD=$BUILD/bench/dnsload
DNSD=$BUILD/bin/otasuke-dnsd
CTL=$BUILD/bin/otasukectl
HERE=tests/bench/dns

die() { echo "bench-dns: $*" >&2; exit 1; }
note() { echo "bench-dns: $*" >&2; }

for tool in dnsperf unbound unbound-control dnsmasq python3; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
        die "$tool not found — run 'make deps' (mk/packages/bench.txt)"
done
export PATH=$PATH:/usr/sbin
[ -x "$DNSLOAD" ] || die "$DNSLOAD missing — run 'make' first"
[ -d "$DATA" ] || die "blocklists not found at $DATA (set BENCH_DNS_DATA)"

if [ "$NICE" != 0 ]; then
    renice -n "$NICE" -p $$ >/dev/null || die "renice $NICE failed (negative values need root)"
fi

# ---- inputs (cached: regenerated only when the seed, size or generator change) ------
GEN=""
[ -x tests/bench/gen-domains.sh ] && GEN=tests/bench/gen-domains.sh
PREP=$(realpath -m "$BUILD/bench/dns-inputs")
key="total=$TOTAL seed=$SEED gen=$GEN $(sha256sum "$HERE/prepare.py" ${GEN:+"$GEN"} | cut -c1-16 | tr '\n' ' ')"
if [ "$(cat "$PREP/.key" 2>/dev/null)" != "$key" ]; then
    note "building inputs ($TOTAL names) in $PREP"
    rm -rf "$PREP"
    python3 "$HERE/prepare.py" --data "$DATA" --out "$PREP" --total "$TOTAL" --seed "$SEED" \
        --allowed 5000 --blocked 20000 ${GEN:+--gen "$GEN"} >/dev/null
    echo "$key" > "$PREP/.key"
fi
PROBE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["probe"])' "$PREP/meta.json")
BLOCKED_ONE=$(head -1 "$PREP/q-blocked.txt" | cut -d' ' -f1)
ALLOWED_ONE=$(head -1 "$PREP/q-allowed.txt" | cut -d' ' -f1)

# ---- run directory and cleanup -------------------------------------------------------
RUN=$(mktemp -d /tmp/otasuke-bench-dns.XXXXXX)
declare -A PID=()
cleanup() {
    local n p
    for n in "${!PID[@]}"; do
        p=${PID[$n]}
        kill "$p" 2>/dev/null || true
    done
    for n in "${!PID[@]}"; do
        p=${PID[$n]}
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null || true
    done
    [ -n "${KEEP_RUN:-}" ] || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
RAW=$RUN/raw.jsonl
: > "$RAW"
raw() { echo "$1" >> "$RAW"; }
paste -d'\n' "$PREP/q-allowed.txt" <(head -5000 "$PREP/q-blocked.txt") > "$RUN/q-mixed.txt"

A_NET=127.0.53.1;  P_NET=$PORT
A_UNB=127.0.53.2;  P_UNB=$((PORT + 1))
A_RPZ=127.0.53.3;  P_RPZ=$((PORT + 2))
A_DMQ=127.0.53.4;  P_DMQ=$((PORT + 3))
A_DSD=127.0.53.5;  P_DSD=$((PORT + 4))

# Common unbound settings: one thread each (dnsmasq and dnsd are single-threaded and the
# machine has 2 cores, one of them for the load generator), caches big enough to hold
# every allowed name so nobody thrashes, no validation (no trust anchor on loopback).
unbound_conf() {  # file addr port modules extra...
    local f=$1 a=$2 p=$3 m=$4; shift 4
    {
        echo "server:"
        echo "  interface: $a@$p"
        echo "  port: $p"
        echo "  do-daemonize: no"
        echo "  username: \"\""
        echo "  chroot: \"\""
        echo "  directory: \"$RUN\""
        echo "  pidfile: \"\""
        echo "  use-syslog: no"
        echo "  logfile: \"$f.log\""
        echo "  verbosity: 0"
        echo "  num-threads: 1"
        echo "  do-ip6: no"
        echo "  access-control: 127.0.0.0/8 allow"
        echo "  module-config: \"$m\""
        echo "  do-not-query-localhost: no"
        echo "  qname-minimisation: no"
        echo "  msg-cache-size: 16m"
        echo "  rrset-cache-size: 32m"
        printf '%s\n' "$@"
    } > "$f"
}

start() {  # name cmd...
    local n=$1; shift
    "$@" > "$RUN/$n.out" 2>&1 &
    PID[$n]=$!
}

# Starts a peer and records load time (start → first correct answer) and RSS.
start_timed() {  # name addr port probe-name rcode cmd...
    local n=$1 a=$2 p=$3 q=$4 rc=$5; shift 5
    local t0 t1
    t0=$(date +%s%N)
    start "$n" "$@"
    # Ask in 1 s slices so a peer that died is reported at once, not after 180 s.
    local tries=0
    until t1=$("$DNSLOAD" --wait -s "$a" -p "$p" -q "$q" --rcode "$rc" -t 1 2>/dev/null); do
        tries=$((tries + 1))
        if ! kill -0 "${PID[$n]}" 2>/dev/null || [ $tries -ge 180 ]; then
            tail -5 "$RUN/$n.out" "$RUN"/*.log 2>/dev/null >&2 || true
            die "$n did not answer $q with $rc on $a:$p (exited or no answer in 180 s)"
        fi
    done
    sleep 0.3   # let the allocator settle before reading RSS
    raw "{\"peer\":\"$n\",\"kind\":\"load\",\"load_s\":$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f",(b-a)/1e9}'),$(rss "${PID[$n]}")}"
    note "$n ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f",(b-a)/1e9}') s"
}

rss() {  # pid → "rss_kb":N,"hwm_kb":N
    awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} /^RssAnon:/{a=$2} /^RssFile:/{f=$2}
         END{printf "\"rss_kb\":%d,\"hwm_kb\":%d,\"rss_anon_kb\":%d,\"rss_file_kb\":%d", r, h, a, f}' \
        "/proc/$1/status"
}

# ---- the loopback "internet": answers every allowed name and the probe ------------------
unbound_conf "$RUN/internet.conf" $A_NET $P_NET "iterator" "include: \"$PREP/internet.conf\""
start_timed internet $A_NET $P_NET "$ALLOWED_ONE" noerror unbound -d -c "$RUN/internet.conf"

# ---- peers ----------------------------------------------------------------------------
PEERS=()
ADDR=() PRT=()
unbound_conf "$RUN/unbound.conf" $A_UNB $P_UNB "iterator" \
    "forward-zone:" "  name: \".\"" "  forward-addr: $A_NET@$P_NET"
start_timed unbound $A_UNB $P_UNB "$ALLOWED_ONE" noerror unbound -d -c "$RUN/unbound.conf"
PEERS+=(unbound); ADDR+=($A_UNB); PRT+=($P_UNB)

cp "$PREP/block.rpz" "$RUN/rpz.zone"
unbound_conf "$RUN/unbound-rpz.conf" $A_RPZ $P_RPZ "respip iterator" \
    "rpz:" "  name: \"rpz.bench.\"" "  zonefile: \"$RUN/rpz.zone\"" "  rpz-log: no" \
    "forward-zone:" "  name: \".\"" "  forward-addr: $A_NET@$P_NET" \
    "remote-control:" "  control-enable: yes" "  control-interface: \"$RUN/rpz.ctl\"" \
    "  control-use-cert: no"
start_timed unbound+rpz $A_RPZ $P_RPZ "$BLOCKED_ONE" nxdomain unbound -d -c "$RUN/unbound-rpz.conf"
PEERS+=(unbound+rpz); ADDR+=($A_RPZ); PRT+=($P_RPZ)

cp "$PREP/block.dnsmasq" "$RUN/dnsmasq.servers"
cat > "$RUN/dnsmasq.conf" <<EOF
port=$P_DMQ
listen-address=$A_DMQ
bind-interfaces
no-resolv
no-hosts
no-poll
user=root
pid-file=
log-facility=$RUN/dnsmasq.log
cache-size=10000
server=$A_NET#$P_NET
servers-file=$RUN/dnsmasq.servers
EOF
start_timed dnsmasq $A_DMQ $P_DMQ "$BLOCKED_ONE" nxdomain dnsmasq -k -C "$RUN/dnsmasq.conf"
PEERS+=(dnsmasq); ADDR+=($A_DMQ); PRT+=($P_DMQ)

# otasuke-dnsd: only if it and `otasukectl set build` exist in this build.
DNSD_OK=0
if [ -x "$DNSD" ] && [ -x "$CTL" ]; then
    if /usr/bin/time -f '%e %M' -o "$RUN/setbuild.time" \
           "$CTL" set build -o "$RUN/dnsd.set" "ads=$PREP/block.adblock" > "$RUN/setbuild.json" 2> "$RUN/setbuild.err" &&
       "$CTL" set build -o "$RUN/dnsd-reload.set" "ads=$PREP/block.reload.adblock" > /dev/null 2>> "$RUN/setbuild.err"; then
        read -r secs maxrss < "$RUN/setbuild.time"
        raw "{\"peer\":\"dnsd+unbound\",\"kind\":\"set_build\",\"seconds\":$secs,\"max_rss_kb\":$maxrss,\"set_bytes\":$(stat -c %s "$RUN/dnsd.set")}"
        start_timed dnsd+unbound $A_DSD $P_DSD "$BLOCKED_ONE" nxdomain \
            "$DNSD" -f --listen "$A_DSD:$P_DSD" --upstream "$A_UNB:$P_UNB" \
            --domains "$RUN/dnsd.set" --control "$RUN/dnsd.ctl" --ratelimit 0
        PEERS+=(dnsd+unbound); ADDR+=($A_DSD); PRT+=($P_DSD)
        DNSD_OK=1
    else
        note "otasukectl set build failed, dnsd not measured: $(head -3 "$RUN/setbuild.err")"
        raw "{\"peer\":\"dnsd+unbound\",\"kind\":\"missing\",\"why\":\"otasukectl set build failed: $(head -1 "$RUN/setbuild.err" | tr -d '"\\' | cut -c1-200)\"}"
    fi
else
    note "$DNSD or $CTL not built: dnsd not measured"
    raw "{\"peer\":\"dnsd+unbound\",\"kind\":\"missing\",\"why\":\"$DNSD or $CTL not built\"}"
fi

# ---- throughput and latency -------------------------------------------------------------
dnsperf_run() {  # peer addr port query-file kind rep
    local out
    out=$(dnsperf -s "$2" -p "$3" -d "$4" -l "$SECONDS_RUN" -c "$CLIENTS" -q "$OUTSTANDING" \
                  -T 1 -t 2 2>&1) || { note "dnsperf failed against $1: $out"; return 0; }
    raw "$(awk -v peer="$1" -v q="$5" -v rep="$6" '
        /Queries sent:/      {s=$3}
        /Queries completed:/ {c=$3}
        /Queries lost:/      {l=$3}
        /Queries per second:/{qps=$4}
        /Average Latency/    {lat=$4}
        /Response codes:/    {for (i = 3; i < NF; i += 2) {n = $i; v = $(i + 1);
                                   gsub(/[^A-Z]/, "", n); rc = rc sep "\"" n "\":" v + 0; sep = ","
                                   if ($(i + 2) ~ /^\(/) i++}}
        END {printf "{\"peer\":\"%s\",\"kind\":\"qps\",\"query\":\"%s\",\"rep\":%d,\"qps\":%s,\"sent\":%d,\"completed\":%d,\"lost\":%d,\"avg_latency_s\":%s,\"rcodes\":{%s}}",
            peer, q, rep, qps+0, s, c, l, lat+0, rc}' <<<"$out")"
}

note "warming caches"
for i in "${!PEERS[@]}"; do
    for q in allowed blocked; do
        dnsperf -s "${ADDR[$i]}" -p "${PRT[$i]}" -d "$PREP/q-$q.txt" -n 1 -c 4 -q 50 -T 1 -t 2 >/dev/null 2>&1 || true
    done
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPEATS"); do
    note "round $rep/$REPEATS"
    for i in "${!PEERS[@]}"; do
        for q in allowed blocked; do
            dnsperf_run "${PEERS[$i]}" "${ADDR[$i]}" "${PRT[$i]}" "$PREP/q-$q.txt" $q "$rep"
            lat=$("$DNSLOAD" -s "${ADDR[$i]}" -p "${PRT[$i]}" -d "$PREP/q-$q.txt" \
                      -r "$LAT_QPS" -l 2 -t 2)
            raw "{\"peer\":\"${PEERS[$i]}\",\"kind\":\"latency\",\"query\":\"$q\",\"rep\":$rep,\"r\":$lat}"
        done
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
for i in "${!PEERS[@]}"; do
    raw "{\"peer\":\"${PEERS[$i]}\",\"kind\":\"rss_end\",$(rss "${PID[${PEERS[$i]}]}")}"
done
[ "$DNSD_OK" = 1 ] && raw "{\"peer\":\"unbound-behind-dnsd\",\"kind\":\"rss_end\",$(rss "${PID[unbound]}")}"

# ---- reload under load ----------------------------------------------------------------
reload_run() {  # peer addr port command
    note "reload under load: $1"
    local r
    r=$("$DNSLOAD" -s "$2" -p "$3" -d "$RUN/q-mixed.txt" -r "$LAT_QPS" -l 7 -t 5 \
            --reload-at 4 --reload-cmd "$4" --probe "$PROBE" --window-min 1 --after 2 --max 180)
    raw "{\"peer\":\"$1\",\"kind\":\"reload\",\"r\":$r,$(rss "${PID[$1]}")}"
}
cp "$PREP/block.reload.rpz" "$RUN/rpz.zone.new"
reload_run unbound+rpz $A_RPZ $P_RPZ \
    "mv '$RUN/rpz.zone.new' '$RUN/rpz.zone' && unbound-control -c '$RUN/unbound-rpz.conf' auth_zone_reload rpz.bench. >/dev/null"
cp "$PREP/block.reload.dnsmasq" "$RUN/dnsmasq.servers.new"
reload_run dnsmasq $A_DMQ $P_DMQ \
    "mv '$RUN/dnsmasq.servers.new' '$RUN/dnsmasq.servers' && kill -HUP ${PID[dnsmasq]}"
if [ "$DNSD_OK" = 1 ]; then
    # Harness check: the same run with a no-op trigger and a probe that is already
    # blocked shows what the load generator and the machine add to the window's p99.
    note "harness check: no-op reload against dnsd"
    r=$("$DNSLOAD" -s $A_DSD -p $P_DSD -d "$RUN/q-mixed.txt" -r "$LAT_QPS" -l 7 -t 5 \
            --reload-at 4 --reload-cmd true --probe "$BLOCKED_ONE" --window-min 1 --after 2 --max 30)
    raw "{\"peer\":\"harness-noop-reload\",\"kind\":\"reload\",\"r\":$r}"
    reload_run dnsd+unbound $A_DSD $P_DSD \
        "mv '$RUN/dnsd-reload.set' '$RUN/dnsd.set' && kill -HUP ${PID[dnsd+unbound]}"
fi

# ---- report -----------------------------------------------------------------------------
mkdir -p "$OUT"
python3 "$HERE/report.py" --raw "$RAW" --meta "$PREP/meta.json" --out "$OUT" \
    --settings "{\"dnsperf_seconds\":$SECONDS_RUN,\"repeats\":$REPEATS,\"clients\":$CLIENTS,\"outstanding\":$OUTSTANDING,\"latency_qps\":$LAT_QPS,\"nice\":$NICE,\"loadavg_start\":\"$LOAD_START\",\"loadavg_end\":\"$LOAD_END\",\"nproc\":$(nproc),\"unbound\":\"$(unbound -V | head -1 | cut -d' ' -f2)\",\"dnsmasq\":\"$(dnsmasq --version | head -1 | cut -d' ' -f3)\",\"dnsperf\":\"$(dnsperf -h 2>&1 | awk '/Version/{print $2; exit}')\"}"
cat "$OUT/dns.md"
