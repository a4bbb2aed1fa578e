#!/usr/bin/env bash
# make bench-fleet: FLEET_N boxes (default 10000) simulated by one fleetsim process
# against a real otasuke-hubd + mosquitto, all on the loopback of a private network
# namespace (nothing else on the machine is touched). For each mode an analyst confirms a
# new indicator and fleetsim measures, per box, the time from just before the
# confirmation to the verified delta. Hub and broker peak RSS and CPU are read from /proc.
# Writes tests/bench/results/fleet.json and fleet.md.
#
#   FLEET_N=10000 FLEET_MODES="fetch-pooled inline fetch-fresh" FLEET_CONNS=64
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${BUILD:-build}
N=${FLEET_N:-10000}
MODES=${FLEET_MODES:-"fetch-pooled inline fetch-fresh"}
CONNS=${FLEET_CONNS:-64}
# fetch-fresh makes one new TLS connection per box at T0; a full handshake costs the hub
# a few ms of CPU, so this row runs on fewer boxes to keep the bench short.
FRESH_N=${FLEET_FRESH_N:-1000}
[ "$(id -u)" -eq 0 ] || { echo "bench-fleet: needs root (network namespace, ulimit)" >&2; exit 1; }
NS=otabench-fleet$$
ST=$(mktemp -d /tmp/otasuke-fleet.XXXXXX)
chmod 711 "$ST"
MQPID="" HUBPID=""
cleanup() {
    for p in $HUBPID $MQPID; do kill "$p" 2>/dev/null || true; done
    for p in $HUBPID $MQPID; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$ST"
}
trap cleanup EXIT

# One fd per MQTT connection on both sides, plus HTTPS. Raise the soft limit to the
# hard one (raising the hard one needs CAP_SYS_RESOURCE, which containers often lack).
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((N + 1024)) ] || {
    echo "bench-fleet: open-file limit $(ulimit -n) is too low for $N boxes" >&2; exit 1; }
ip netns add "$NS"
inns() { ip netns exec "$NS" "$@"; }
inns ip link set lo up
inns sysctl -q -w net.ipv4.ip_local_port_range="10000 65000" net.core.somaxconn=8192 \
    net.ipv4.tcp_max_syn_backlog=8192

HUBD="$BUILD/bin/otasuke-hubd"
hub() { "$HUBD" -d "$ST" "$@"; }
hub admin tls --hosts 127.0.0.1
hub admin org add bench >/dev/null
t=$(date +%s.%N)
hub admin box add-bulk bench "$N" --out "$ST/creds" >/dev/null
echo "bench-fleet: $N boxes enrolled in $(echo "$(date +%s.%N) - $t" | bc) s (bulk, no TLS)" >&2

# Not through inns (a function, so '&' would fork a subshell): $! must be the daemon.
ip netns exec "$NS" services/hub/mosquitto/start.sh "$ST" --local 127.0.0.1:1883 --hubd "$HUBD" \
    >"$ST/mosquitto.log" 2>&1 &
MQPID=$!
for _ in $(seq 100); do [ -s "$ST/mosquitto/mosquitto.pid" ] && break; sleep 0.1; done
ip netns exec "$NS" "$HUBD" -f -d "$ST" -l 127.0.0.1:8443 >"$ST/hubd.log" 2>&1 &
HUBPID=$!
for _ in $(seq 100); do
    inns curl -sf --cacert "$ST/tls/cert.pem" https://127.0.0.1:8443/v1/health >/dev/null && break
    sleep 0.1
done
sleep 0.5
for p in "$MQPID" "$HUBPID"; do
    kill -0 "$p" 2>/dev/null && continue
    echo "bench-fleet: a daemon did not start:" >&2
    cat "$ST/mosquitto.log" "$ST/hubd.log" >&2
    exit 1
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
results=()
for mode in $MODES; do
    seq=$(hub admin feed seq)
    c0h=$(ticks "$HUBPID") c0m=$(ticks "$MQPID")
    out=$ST/result-$mode.json
    n=$N
    [ "$mode" != fetch-fresh ] || [ "$FRESH_N" -ge "$N" ] || n=$FRESH_N
    trigger="$HUBD -d $ST admin indicator confirm fleet-$mode-$$.example.test --category malware >/dev/null"
    inns "$BUILD/bench/fleetsim" --creds "$ST/creds" --n "$n" --broker 127.0.0.1:1883 \
        --url https://127.0.0.1:8443 --cacert "$ST/tls/cert.pem" --pubkey "$ST/feed.pub" \
        --feed community --seq "$seq" --mode "$mode" --conns "$CONNS" --trigger "$trigger" \
        --out "$out" --timeout 300 || echo "bench-fleet: $mode: not every box verified" >&2
    c1h=$(ticks "$HUBPID") c1m=$(ticks "$MQPID")
    jq --argjson hc "$(echo "scale=2; ($c1h - $c0h) / $hz" | bc)" \
       --argjson mc "$(echo "scale=2; ($c1m - $c0m) / $hz" | bc)" \
       --argjson hr "$(hwm "$HUBPID")" --argjson mr "$(hwm "$MQPID")" \
       '. + {hubd_cpu_s: $hc, mosquitto_cpu_s: $mc, hubd_peak_rss_kb: $hr,
             mosquitto_peak_rss_kb: $mr, rss_total_mb: (($hr + $mr) / 1024 | floor)}' \
       "$out" > "$out.2"
    results+=("$out.2")
    sleep 1
done

mkdir -p tests/bench/results
jq -s --arg date "$(date -u +%FT%TZ)" --arg host "$(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GB" \
   --argjson n "$N" \
   '{benchmark: "fleet", date: $date, machine: $host, boxes: $n,
     targets: {p99_s: 5, stretch_p99_s: 2, rss_total_mb: 1024}, runs: .}' \
   "${results[@]}" > tests/bench/results/fleet.json
{
    echo "# Fleet push: indicator confirmed -> delta verified on every box"
    echo
    echo "$N simulated boxes (one MQTT connection and feed seq each, one process), hubd +"
    echo "mosquitto on the loopback of a private namespace, $(nproc) cores. Times from just"
    echo "before \`admin indicator confirm\` to the box having verified the signed delta."
    echo "Targets: p99 <= 5 s (stretch 2 s), hubd + mosquitto RSS <= 1 GB."
    echo
    echo "| mode | boxes verified | notified p50 / p99 | verified p50 | p99 | max | hubd CPU s | mosquitto CPU s | hubd + mosquitto peak RSS | simulator's own verify time |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    jq -r '.runs[] | "| \(.mode)\(if .conns > 0 then " (\(.conns) conns)" else "" end) | \(.verified)/\(.boxes) | \(.notified_s.p50 * 1000 | floor) / \(.notified_s.p99 * 1000 | floor) ms | \(.verified_s.p50 * 1000 | floor) ms | \(.verified_s.p99 * 1000 | floor) ms | \(.verified_s.max * 1000 | floor) ms | \(.hubd_cpu_s) | \(.mosquitto_cpu_s) | \(.rss_total_mb) MB | \(.simulator_verify_s * 1000 | floor) ms |"' \
        tests/bench/results/fleet.json
    echo
    echo "CPU is for the whole run of a mode: $N MQTT connects (PBKDF2 password checks) plus"
    echo "the push. fetch-pooled: boxes' HTTPS requests share $CONNS keep-alive TLS connections,"
    echo "warm before T0 (as a balancer's or boxes' steady-state connections are);"
    echo "fetch-fresh: one new TLS connection per box at T0, on $FRESH_N boxes: a full TLS 1.3"
    echo "handshake costs hubd ~2.5 ms of CPU here (see its CPU column), so 10,000 boxes"
    echo "reconnecting at once would need ~25 s of hub CPU: fresh TLS per notification does not"
    echo "meet the target on 2 cores, which is why boxes use inline deltas or keep-alive."
    echo "inline: the delta rides in the MQTT message (no HTTPS). The last column is the time"
    echo "the simulator itself spent verifying signatures, serially on one core, for all"
    echo "boxes; real boxes do it in parallel on their"
    echo "own CPUs, so it is an upper bound included in the latencies, not hub cost."
    echo "For scale: CrowdSec agents pull their community list every 2 h."
} > tests/bench/results/fleet.md
cat tests/bench/results/fleet.md
