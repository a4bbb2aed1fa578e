#!/usr/bin/env bash
# tests/bench/agent/run.sh [BASE] [DELTA] [ROUNDS]
# Agent feed benchmark: a signed snapshot of BASE domains (default 1,000,000) served over
# HTTP on 127.0.0.1, then ROUNDS (default 3) deltas of DELTA entries (default 10,000: 90 %
# new blocks, 10 % removals of base names). Measures, with the real otasuke-agent and
# otasuke-dnsd on loopback only:
#   snapshot_s      'feed add' -> a snapshot name answered NXDOMAIN by dnsd
#   delta_s         'feed refresh' -> a name of the delta answered NXDOMAIN by dnsd
#                   (download, verification, database, artifacts, dnsd reload)
#   peak RSS        VmHWM of the agent after the snapshot (download + apply + compile),
#                   and of a freshly started agent after its start-up compile of BASE
#                   names (compile alone); idle RSS after both.
# Writes tests/bench/results/agent.json and agent.md (BENCH_RESULTS=DIR elsewhere).
# AGENT_BIN=PATH runs another agent build. Needs 'make' first; no root needed.
set -euo pipefail
cd "$(dirname "$0")/../../.."
BASE=${1:-1000000}
DELTA=${2:-10000}
ROUNDS=${3:-3}
BUILD=${BUILD:-build}
BIN=$BUILD/bin
CTL=$BIN/otasukectl
AGENT=${AGENT_BIN:-$BIN/otasuke-agent}   # another build (an older one, for a before/after)
WORK=$BUILD/bench/agent
RESULTS=${BENCH_RESULTS:-tests/bench/results}
for b in otasukectl otasuke-agent otasuke-dnsd; do
    [ -x "$BIN/$b" ] || { echo "agent bench: $BIN/$b missing, run make" >&2; exit 1; }
done
command -v dig >/dev/null || { echo "agent bench: needs dig (dnsutils)" >&2; exit 1; }
mkdir -p "$WORK" "$RESULTS"
exec 9>"$WORK/.lock"
flock -n 9 || { echo "agent bench: another run holds $WORK/.lock" >&2; exit 1; }
ST=$WORK/state WWW=$WORK/www
GEN=$WORK/gen-$BASE-$DELTA-$ROUNDS   # generated names, kept per size (1M take a minute)
rm -rf "$ST" "$WWW"
mkdir -p "$ST" "$WWW"
export OTASUKE_AGENT_SOCKET=$ST/agent.sock

. tests/bench/agent/common.sh
HTTP_PORT=$(free_port)
DNS_PORT=$(free_port)

# ---- feed documents (cached: generating 1M names takes a while) ----
key="$(sha256sum tests/bench/gen-domains.sh | cut -c1-16)"
if [ "$(cat "$GEN/.genkey" 2>/dev/null)" != "$key" ]; then
    echo "agent bench: generating $BASE + $ROUNDS x $DELTA names" >&2
    rm -rf "$GEN"
    mkdir -p "$GEN"
    tests/bench/gen-domains.sh $((BASE + ROUNDS * DELTA)) 7 > "$GEN/names.txt"
    [ "$(wc -l < "$GEN/names.txt")" -eq $((BASE + ROUNDS * DELTA)) ] ||
        { echo "agent bench: the generator gave too few names" >&2; exit 1; }
    head -n "$BASE" "$GEN/names.txt" | sed 's/$/ malware/' > "$GEN/base.entries"
    for r in $(seq 1 "$ROUNDS"); do
        adds=$((DELTA * 9 / 10))
        rems=$((DELTA - adds))
        { sed -n "$((BASE + (r - 1) * DELTA + 1)),$((BASE + (r - 1) * DELTA + adds))p" "$GEN/names.txt" |
              sed 's/$/ malware/'
          sed -n "$(((r - 1) * rems + 1)),$((r * rems))p" "$GEN/names.txt" | sed 's/$/ malware remove/'
        } > "$GEN/delta$r.entries"
    done
    echo "$key" > "$GEN/.genkey"
fi
"$CTL" feed keygen -o "$WORK/hub" >/dev/null
"$CTL" feed build --key "$WORK/hub.key" --feed bench --seq 1 -o "$WWW/feed.json" \
    "$GEN/base.entries" >/dev/null
snap_bytes=$(stat -c %s "$WWW/feed.json")
for r in $(seq 1 "$ROUNDS"); do
    "$CTL" feed build --key "$WORK/hub.key" --feed bench --seq $((r + 1)) --base "$r" \
        -o "$WORK/delta$r.json" "$GEN/delta$r.entries" >/dev/null
done

python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WWW" >"$WORK/http.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/feed.json.sig" && break
    sleep 0.05
done

start_agent() {
    "$AGENT" -f --db "$ST/agent.db" --state-dir "$ST" --socket "$ST/agent.sock" \
        --dnsd-control "$ST/dnsd.ctl" --log-level info >>"$WORK/agent.log" 2>&1 &
    AGENT_PID=$!
    pids+=($AGENT_PID)
    for _ in $(seq 200); do
        [ -S "$ST/agent.sock" ] && "$CTL" status >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "agent bench: agent did not start; log:" >&2
    tail -20 "$WORK/agent.log" >&2
    exit 1
}
stop_agent() {
    kill "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
}

# seconds since t0 (a date +%s.%N) until dnsd answers NAME with NXDOMAIN (limit 120 s)
wait_nx() {
    local name=$1 t0=$2 i
    for ((i = 0; i < 12000; i++)); do
        if dig +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 "$name" A 2>/dev/null |
                grep -q 'status: NXDOMAIN'; then
            python3 -c 'import sys,time; print("%.3f" % (time.time() - float(sys.argv[1])))' "$t0"
            return 0
        fi
        sleep 0.01
    done
    echo "agent bench: $name never became NXDOMAIN" >&2
    tail -20 "$WORK/agent.log" >&2
    return 1
}

start_agent
for _ in $(seq 200); do [ -s "$ST/domains.set" ] && [ -s "$ST/policy.set" ] && break; sleep 0.05; done
"$BIN/otasuke-dnsd" -f --listen "127.0.0.1:$DNS_PORT" --upstream 127.0.0.1:9 \
    --domains "$ST/domains.set" --policy "$ST/policy.set" --control "$ST/dnsd.ctl" \
    --cache-entries 0 --ratelimit 0 --log-level warn >"$WORK/dnsd.log" 2>&1 &
DNSD_PID=$!
pids+=($DNSD_PID)
for _ in $(seq 100); do [ -S "$ST/dnsd.ctl" ] && break; sleep 0.05; done

probe_snap=$(sed -n "$((BASE / 2))p" "$GEN/names.txt")
echo "agent bench: snapshot of $BASE names ($snap_bytes bytes)" >&2
t0=$(date +%s.%N)
"$CTL" feed add bench "http://127.0.0.1:$HTTP_PORT/feed.json" --feed-id bench \
    --pubkey-file "$WORK/hub.pub" --max-bytes $((snap_bytes + 1024 * 1024)) >/dev/null
snapshot_s=$(wait_nx "$probe_snap" "$t0")
# let the compile finish and the agent settle before reading its peak
sleep 1
snap_hwm=$(status_kb "$AGENT_PID" VmHWM)
snap_idle=$(status_kb "$AGENT_PID" VmRSS)
echo "agent bench: snapshot ${snapshot_s} s, agent peak ${snap_hwm} kB" >&2

deltas=()
acpu=()
dcpu=()
for r in $(seq 1 "$ROUNDS"); do
    probe=$(head -n1 "$GEN/delta$r.entries" | cut -d' ' -f1)
    cp "$WORK/delta$r.json.sig" "$WWW/feed.json.sig.new"
    cp "$WORK/delta$r.json" "$WWW/feed.json.new"
    mv "$WWW/feed.json.new" "$WWW/feed.json"
    mv "$WWW/feed.json.sig.new" "$WWW/feed.json.sig"
    a0=$(cpu_s "$AGENT_PID")
    n0=$(cpu_s "$DNSD_PID")
    t0=$(date +%s.%N)
    "$CTL" feed refresh bench >/dev/null
    t1=$(date +%s.%N)
    d=$(wait_nx "$probe" "$t0")
    sleep 0.3   # the compile may still be finishing after dnsd answers
    acpu+=("$(python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$a0" "$(cpu_s "$AGENT_PID")")")
    dcpu+=("$(python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$n0" "$(cpu_s "$DNSD_PID")")")
    echo "agent bench: delta $r ($DELTA entries) ${d} s (refresh call $(python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1") s)" >&2
    deltas+=("$d")
    sleep 0.5
done
delta_hwm=$(status_kb "$AGENT_PID" VmHWM)

# a fresh agent: its start-up compile of the whole set is the only big thing it does
stop_agent
start_agent
for _ in $(seq 600); do
    "$CTL" status --json 2>/dev/null | grep -q '"last_compile_seconds": *[0-9.]*[1-9]' && break
    sleep 0.1
done
sleep 1
compile_hwm=$(status_kb "$AGENT_PID" VmHWM)
compile_idle=$(status_kb "$AGENT_PID" VmRSS)
compile_s=$("$CTL" status --json | python3 -c 'import json,sys
def find(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "last_compile_seconds": return v
            r = find(v)
            if r is not None: return r
    if isinstance(o, list):
        for v in o:
            r = find(v)
            if r is not None: return r
print(find(json.load(sys.stdin)))')
names=$("$CTL" set dump "$ST/domains.set" 2>/dev/null | wc -l || echo 0)

load=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$BASE" "$DELTA" "$snap_bytes" "$snapshot_s" "$snap_hwm" "$snap_idle" \
    "$delta_hwm" "$compile_hwm" "$compile_idle" "$compile_s" "$names" "$load" \
    "$(IFS=,; echo "${acpu[*]}")" "$(IFS=,; echo "${dcpu[*]}")" "${deltas[@]}" <<'PY' > "$RESULTS/agent.json"
import json, sys
a = sys.argv[1:]
deltas = sorted(float(x) for x in a[14:])
acpu = sorted(float(x) for x in a[12].split(","))
dcpu = sorted(float(x) for x in a[13].split(","))
out = {
    "base_names": int(a[0]), "delta_entries": int(a[1]), "snapshot_bytes": int(a[2]),
    "snapshot_s": float(a[3]),
    "snapshot_peak_rss_kb": int(a[4]), "after_snapshot_rss_kb": int(a[5]),
    "after_deltas_peak_rss_kb": int(a[6]),
    "compile_peak_rss_kb": int(a[7]), "idle_rss_kb": int(a[8]),
    "compile_s": float(a[9]), "set_names": int(a[10]),
    "delta_s": deltas, "delta_s_best": deltas[0], "delta_s_median": deltas[len(deltas) // 2],
    "delta_agent_cpu_s": acpu, "delta_dnsd_cpu_s": dcpu,
    "loadavg_at_end": a[11],
    "targets": {"delta_s": 1.0, "peak_rss_kb": 65536},
}
print(json.dumps(out, indent=2))
PY
# the hub feed section (tests/bench/agent/hub.sh) stays at the end of agent.md
hubsec=$(sed -n '/^<!-- hub-feed section/,$p' "$RESULTS/agent.md" 2>/dev/null || true)
python3 - "$RESULTS/agent.json" <<'PY' > "$RESULTS/agent.md"
import json, sys
r = json.load(open(sys.argv[1]))
ok = lambda v, t: "yes" if v <= t else "**no**"
print("## Agent feeds: %d-name snapshot, %d-entry deltas (loopback HTTP, real dnsd)" %
      (r["base_names"], r["delta_entries"]))
print()
print("| measure | value | target | met |")
print("|---|---|---|---|")
print("| delta fetch -> dnsd serving, median of %d (s) | %.3f (%s) | 1.0 | %s |" % (
    len(r["delta_s"]), r["delta_s_median"], ", ".join("%.3f" % x for x in r["delta_s"]),
    ok(r["delta_s_median"], 1.0)))
print("| CPU per delta: agent (download, verify, database, overlay) / dnsd (reload), median (s) | %.3f / %.3f | | |" % (
    r["delta_agent_cpu_s"][len(r["delta_agent_cpu_s"]) // 2], r["delta_dnsd_cpu_s"][len(r["delta_dnsd_cpu_s"]) // 2]))
print("| snapshot (%.0f MB) add -> dnsd serving (s) | %.2f | | |" % (r["snapshot_bytes"] / 1e6, r["snapshot_s"]))
print("| agent peak RSS, snapshot download+apply+compile (MB) | %.1f | 64 | %s |" % (
    r["snapshot_peak_rss_kb"] / 1024, ok(r["snapshot_peak_rss_kb"], 65536)))
print("| agent peak RSS incl. deltas (MB) | %.1f | 64 | %s |" % (
    r["after_deltas_peak_rss_kb"] / 1024, ok(r["after_deltas_peak_rss_kb"], 65536)))
print("| fresh agent, start-up compile of %d names: peak RSS (MB) | %.1f | 64 | %s |" % (
    r["set_names"], r["compile_peak_rss_kb"] / 1024, ok(r["compile_peak_rss_kb"], 65536)))
print("| start-up compile time (s) | %.2f | 2.0 | %s |" % (r["compile_s"], ok(r["compile_s"], 2.0)))
print("| idle RSS after compile (MB) | %.1f | | |" % (r["idle_rss_kb"] / 1024))
print()
print("Load average at the end of the run: %s (2 cores; wall times stretch with it, CPU times do not)." % r["loadavg_at_end"])
PY
[ -z "$hubsec" ] || printf '\n%s\n' "$hubsec" >> "$RESULTS/agent.md"
cat "$RESULTS/agent.md"
