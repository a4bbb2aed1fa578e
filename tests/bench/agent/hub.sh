#!/usr/bin/env bash
# tests/bench/agent/hub.sh [BASE...]
# The agent following a hub (--hub) whose shared feed holds BASE domains (default
# 1,000,000; several sizes may be given): a real otasuke-hubd on 127.0.0.1 (curated
# import, signed snapshot over HTTPS, no MQTT: the agent polls), a freshly enrolled box
# state, and the real otasuke-agent. Loopback only, no root needed. Measures per size:
#   snapshot bytes      what hubd serves at /feed/<id>/snapshot
#   applied_s           agent start -> "hub feed seq N applied" in its log
#   ready_s             agent start -> the compile after it is done (domains.set written)
#   peak RSS            VmHWM of the agent after apply + compile
#   agent CPU           user + system seconds of the agent until then
# AGENT_BEFORE=PATH also runs another agent build (an older one) for a before/after;
# BEFORE_REV=REV names it in the table.
# Writes tests/bench/results/agent-hub.json and the section "Hub feed" of agent.md
# (BENCH_RESULTS=DIR elsewhere). Needs 'make' first.
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${BUILD:-build}
BIN=$BUILD/bin
CTL=$BIN/otasukectl
HUBD=$BIN/otasuke-hubd
AGENT=${AGENT_BIN:-$BIN/otasuke-agent}
WORK=$BUILD/bench/agent-hub
RESULTS=${BENCH_RESULTS:-tests/bench/results}
WAIT_MAX=${WAIT_MAX:-900}   # seconds an apply may take before the run gives up on it
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000)
for b in "$CTL" "$HUBD" "$AGENT" ${AGENT_BEFORE:+"$AGENT_BEFORE"}; do
    [ -x "$b" ] || { echo "agent hub bench: $b missing, run make" >&2; exit 1; }
done
mkdir -p "$WORK" "$RESULTS"
exec 9>"$WORK/.lock"
flock -n 9 || { echo "agent hub bench: another run holds $WORK/.lock" >&2; exit 1; }

. tests/bench/agent/common.sh
since() { python3 -c 'import sys,time; print("%.2f" % (time.time() - float(sys.argv[1])))' "$1"; }

# one hubd per size: its import of 1M names takes ~10 s, the snapshot is built on request
start_hub() {   # BASE -> HS, URL, HUB_PID
    local base=$1 names=$WORK/names-$1.txt
    HS=$WORK/hs-$base
    if [ ! -s "$names" ]; then
        echo "agent hub bench: generating $base names" >&2
        tests/bench/gen-domains.sh "$base" 7 > "$names.tmp" && mv "$names.tmp" "$names"
    fi
    if [ ! -s "$HS/imported" ]; then
        rm -rf "$HS"
        mkdir -p "$HS"
        "$HUBD" -d "$HS" admin tls --hosts 127.0.0.1 >/dev/null
        "$HUBD" -d "$HS" admin org add bench >/dev/null
        echo "agent hub bench: hubd imports $base names" >&2
        "$HUBD" -d "$HS" admin indicator import "$names" --category malware --source bench \
            > "$HS/imported"
    fi
    local port mport
    port=$(free_port)
    mport=$(free_port)   # nothing listens there: hubd's MQTT publishes go nowhere
    URL=https://127.0.0.1:$port
    "$HUBD" -f -d "$HS" -l "127.0.0.1:$port" --mqtt "127.0.0.1:$mport" >"$WORK/hubd.log" 2>&1 &
    HUB_PID=$!
    pids+=($HUB_PID)
    for _ in $(seq 100); do
        curl -sf --cacert "$HS/tls/cert.pem" "$URL/v1/health" >/dev/null && return 0
        sleep 0.1
    done
    echo "agent hub bench: hubd did not start" >&2
    tail -20 "$WORK/hubd.log" >&2
    exit 1
}

# one run: a fresh box enrolled with the hub, an agent following it until it applied
# the snapshot (or refused it) and compiled. Prints one JSON object.
run_agent() {   # LABEL AGENT BASE
    local label=$1 agent=$2 base=$3 st=$WORK/state-$1-$3 code
    rm -rf "$st"
    mkdir -p "$st"
    code=$("$HUBD" -d "$HS" admin code create bench 2>/dev/null)
    "$CTL" hub enroll "$URL" "$code" --cacert "$HS/tls/cert.pem" --name "bench-$label" \
        --state "$st/hub" >/dev/null
    # the document's size, as the box gets it (this also has hubd build and cache it, so
    # every run downloads a ready document)
    local token
    token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$st/hub/hub.json")
    BYTES=$(curl -s --cacert "$HS/tls/cert.pem" -o /dev/null -w '%{size_download}' \
            -H "Authorization: Bearer $token" "$URL/feed/community/snapshot")
    local log=$WORK/agent-$label-$base.log t0 pid outcome="timeout" applied_s=null ready_s=null
    t0=$(date +%s.%N)
    OTASUKE_AGENT_SOCKET=$st/agent.sock "$agent" -f --db "$st/agent.db" --state-dir "$st" \
        --socket "$st/agent.sock" --dnsd-control "$st/dnsd.ctl" --hub "$st/hub" \
        --log-level info >"$log" 2>&1 &
    pid=$!
    pids+=($pid)
    local i
    for ((i = 0; i < WAIT_MAX * 10; i++)); do
        if grep -q 'hub feed seq [0-9]* applied' "$log"; then
            outcome=applied
            applied_s=$(since "$t0")
            break
        fi
        if grep -q '"last_error": *"[^"]' "$st/hub/hub.json" 2>/dev/null; then
            outcome=refused
            applied_s=$(since "$t0")
            break
        fi
        kill -0 "$pid" 2>/dev/null || { outcome=died; break; }
        sleep 0.1
    done
    if [ "$outcome" = applied ]; then
        # the full compile that follows writes domains.set with every name
        for ((i = 0; i < WAIT_MAX * 10; i++)); do
            OTASUKE_AGENT_SOCKET=$st/agent.sock "$CTL" status --json 2>/dev/null |
                python3 -c 'import json,sys
sys.exit(0 if json.load(sys.stdin).get("domains", 0) >= int(sys.argv[1]) else 1)' "$base" && break
            sleep 0.2
        done
        ready_s=$(since "$t0")
    fi
    sleep 1
    local hwm rss cpu err entries
    hwm=$(status_kb "$pid" VmHWM 2>/dev/null || echo 0)
    rss=$(status_kb "$pid" VmRSS 2>/dev/null || echo 0)
    cpu=$(cpu_s "$pid" 2>/dev/null || echo 0)
    err=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("last_error",""))' \
          "$st/hub/hub.json" 2>/dev/null || true)
    entries=$(sqlite3 "$st/agent.db" "SELECT count(*) FROM feed_entries WHERE feed_id=(SELECT id FROM feeds WHERE name='hub')" 2>/dev/null || echo 0)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "agent hub bench: $label, $base names: $outcome in ${applied_s} s, ready ${ready_s} s, peak ${hwm} kB, CPU ${cpu} s, $entries entries${err:+ ($err)}" >&2
    python3 -c 'import json,sys
a = sys.argv[1:]
num = lambda s: None if s == "null" else float(s)
print(json.dumps({"agent": a[0], "base": int(a[1]), "outcome": a[2], "applied_s": num(a[3]),
    "ready_s": num(a[4]), "peak_rss_kb": int(a[5] or 0), "rss_after_kb": int(a[6] or 0),
    "agent_cpu_s": float(a[7] or 0), "entries": int(a[8] or 0), "last_error": a[9],
    "snapshot_bytes": int(a[10] or 0)}))' \
        "$label" "$base" "$outcome" "$applied_s" "$ready_s" "$hwm" "$rss" "$cpu" "$entries" "$err" \
        "$BYTES"
}

runs=()
for base in "${SIZES[@]}"; do
    start_hub "$base"
    if [ -n "${AGENT_BEFORE:-}" ]; then
        runs+=("$(run_agent before "$AGENT_BEFORE" "$base")")
    fi
    runs+=("$(run_agent after "$AGENT" "$base")")
    kill "$HUB_PID" 2>/dev/null || true
    wait "$HUB_PID" 2>/dev/null || true
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git diff --quiet HEAD -- appliance services 2>/dev/null || rev="$rev+changes"
printf '%s\n' "${runs[@]}" | python3 -c 'import json,sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
print(json.dumps({"runs": runs, "loadavg_at_end": sys.argv[1], "after_rev": sys.argv[2],
    "before_rev": sys.argv[3] or None, "targets": {"peak_rss_kb": 65536}}, indent=2))' \
    "$load" "$rev" "${BEFORE_REV:-}" > "$RESULTS/agent-hub.json"

# The section goes at the end of agent.md, replacing an earlier one (run.sh keeps it).
python3 - "$RESULTS/agent-hub.json" "$RESULTS/agent.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
md = sys.argv[2]
mark = "<!-- hub-feed section: tests/bench/agent/hub.sh -->"
out = [mark, "## Hub feed: the agent applying a hub snapshot (real hubd on loopback HTTPS, --hub)", "",
       "| agent | names | snapshot (MB) | outcome | applied (s) | compiled (s) | agent CPU (s) | peak RSS (MB) | ≤ 64 MB |",
       "|---|---:|---:|---|---:|---:|---:|---:|---|"]
for x in r["runs"]:
    f = lambda v: "-" if v is None else "%.2f" % v
    out.append("| %s | %d | %.1f | %s | %s | %s | %.2f | %.1f | %s |" % (
        x["agent"], x["base"], x.get("snapshot_bytes", 0) / 1e6,
        x["outcome"] + ("" if x["outcome"] == "applied" else ": " + x["last_error"][:90].replace("|", "/")),
        f(x["applied_s"]), f(x["ready_s"]), x["agent_cpu_s"], x["peak_rss_kb"] / 1024,
        "yes" if x["peak_rss_kb"] <= 65536 else "**no**"))
out += ["", "after = the tree at %s%s. Snapshot sizes in 10^6 bytes, RSS in MB of 1024 kB"
        " (VmHWM after apply + compile). Load average at the end of the run: %s (2 cores)." % (
        r["after_rev"], ", before = " + r["before_rev"] if r.get("before_rev") else "",
        r["loadavg_at_end"]), ""]
try:
    text = open(md).read()
except FileNotFoundError:
    text = ""
if mark in text:
    text = text[:text.index(mark)]
text = text.rstrip("\n") + "\n\n" if text.strip() else ""
open(md, "w").write(text + "\n".join(out))
print("\n".join(out))
PY
