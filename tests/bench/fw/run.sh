#!/usr/bin/env bash
# make bench-fw: otasuke-fwd against `nft -f` in a fresh network namespace.
#   1M IPv4 entries (the shared FireHOL/Spamhaus/DShield/Feodo sets + generated), applied
#   by fwd onto an empty table; a no-op reconcile (trusted and --full-read); a 10k
#   delta; 200k IPv6 on top; then `nft -f` loading the same IPv4 entries into an
#   interval set and into a plain hash set. Wall, user, sys and peak RSS for each; the
#   1M apply and the delta (there and back) run FW_BENCH_REPS times (3), medians reported.
# Results: tests/bench/results/fw.json and fw.md. Generated addresses only go into
# sets; no packet is sent anywhere.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/bin
SHARED=${OTASUKE_SHARED:-$ROOT/../shared}
IPSETS=$SHARED/data/ipsets
WORK=$ROOT/$BUILD/bench/fw
RES=$ROOT/tests/bench/results
REPS=${FW_BENCH_REPS:-3}
[ "$(id -u)" -eq 0 ] || { echo "bench-fw: needs root (network namespace, nftables)" >&2; exit 1; }
[ -x "$BIN/otasuke-fwd" ] && [ -x "$BIN/otasukectl" ] || { echo "bench-fw: run make first" >&2; exit 1; }
[ -d "$IPSETS" ] || { echo "bench-fw: $IPSETS not found (set OTASUKE_SHARED)" >&2; exit 1; }
mkdir -p "$WORK" "$RES"
NS=fwbench-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$NS"
inns() { ip netns exec "$NS" "$@"; }

if [ ! -s "$WORK/inputs/counts" ] || [ "$WORK/inputs/counts" -ot tests/bench/fw/gen.py ]; then
    echo "# generating inputs"
    python3 tests/bench/fw/gen.py "$IPSETS" "$WORK/inputs"
fi
IN=$WORK/inputs
cat > "$WORK/zones.conf" <<'Z'
zones = { lan = ["lan0"]; guest = ["guest0"]; iot = ["iot0"]; wan = ["wan0"]; };
nflog_group = 5;
Z
real=(--block firehol=$IPSETS/firehol_level1.netset --block spamhaus=$IPSETS/spamhaus_drop.netset
      --block dshield=$IPSETS/dshield.netset --block feodo=$IPSETS/feodo.ipset)
build() { "$BIN/otasukectl" fw build -o "$1" --zones "$WORK/zones.conf" "${@:2}" > "$1.json"; }
build "$WORK/v4.set" "${real[@]}" --block gen4="$IN/gen4.netset"
build "$WORK/v4delta.set" "${real[@]}" --block gen4="$IN/gen4-delta.netset"
build "$WORK/v4v6.set" "${real[@]}" --block gen4="$IN/gen4.netset" --block gen6="$IN/gen6.netset"

# measure NAME CMD...: appends "NAME wall user sys rss_kb" to $WORK/times, keeps stdout
measure() {
    local name=$1; shift
    /usr/bin/time -f "$name %e %U %S %M" -o "$WORK/t.one" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" ||
        { echo "bench-fw: $name failed:"; cat "$WORK/$name.err"; exit 1; }
    cat "$WORK/t.one" >> "$WORK/times"
}
: > "$WORK/times"
cut -d' ' -f1 /proc/loadavg > "$WORK/load.start"
FWD=(ip netns exec "$NS" "$BIN/otasuke-fwd" --state "$WORK/state")
for r in $(seq 1 "$REPS"); do
    inns nft delete table inet otasuke 2>/dev/null || true
    rm -rf "$WORK/state"
    echo "# fwd: 1M IPv4 onto an empty table (run $r)"
    measure "fwd_1m_$r" "${FWD[@]}" --apply-once "$WORK/v4.set"
done
echo "# fwd: no-op reconcile"
measure fwd_noop "${FWD[@]}" --apply-once "$WORK/v4.set"
for r in $(seq 1 "$REPS"); do
    echo "# fwd: 10k delta and back (run $r)"
    measure "fwd_delta_$r" "${FWD[@]}" --apply-once "$WORK/v4delta.set"
    measure "fwd_deltaback_$r" "${FWD[@]}" --apply-once "$WORK/v4.set"
done
echo "# fwd: no-op reconcile reading every element back (--full-read)"
measure fwd_noop_full "${FWD[@]}" --full-read --apply-once "$WORK/v4.set"
echo "# fwd: 200k IPv6 on top"
measure fwd_v6 "${FWD[@]}" --apply-once "$WORK/v4v6.set"
inns nft delete table inet otasuke
echo "# nft -f: interval set"
measure nft_interval ip netns exec "$NS" nft -f "$IN/nft-interval.nft"
inns nft delete table inet benchpeer
echo "# nft -f: hash set"
measure nft_hash ip netns exec "$NS" nft -f "$IN/nft-hash.nft"
inns nft delete table inet benchpeer

cut -d' ' -f1 /proc/loadavg > "$WORK/load.end"
python3 tests/bench/fw/report.py "$WORK" "$IN/counts" "$RES/fw.json" "$RES/fw.md"
cat "$RES/fw.md"
