#!/usr/bin/env bash
# `make bench`: runs every benchmark (tests/bench/*/run.sh — dns, fw, ...) one after the
# other, never in parallel (each wants the whole machine), and prints the markdown table
# each one wrote to tests/bench/results/<name>.md.
#   tests/bench/run.sh            every benchmark
#   tests/bench/run.sh dns fw     only these
# Exit status: 0 when every benchmark ran to the end, 1 otherwise (a missed target is
# reported in the tables, it is not an error of the run).
set -uo pipefail
cd "$(dirname "$0")/../.."
RESULTS=${BENCH_RESULTS:-tests/bench/results}

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in tests/bench/*/run.sh; do
        [ -x "$f" ] || [ -f "$f" ] || continue
        d=${f%/run.sh}
        names+=("${d##*/}")
    done
fi
[ ${#names[@]} -gt 0 ] || { echo "bench: no tests/bench/*/run.sh found" >&2; exit 1; }

failed=()
marker=$(mktemp /tmp/otasuke-bench-start.XXXXXX)
trap 'rm -f "$marker"' EXIT
for n in "${names[@]}"; do
    script=tests/bench/$n/run.sh
    if [ ! -f "$script" ]; then
        echo "bench: $script: no such benchmark" >&2
        failed+=("$n")
        continue
    fi
    echo "==> bench-$n ($(date -u +%H:%M:%S) UTC)" >&2
    start=$(date +%s)
    # Each benchmark prints its own progress on stderr; its table is read back from the
    # result file so the summary below is the same whatever the script printed.
    if bash "$script" > "/tmp/otasuke-bench-$n.$$.out"; then
        echo "==> bench-$n done in $(( $(date +%s) - start )) s" >&2
    else
        echo "==> bench-$n FAILED after $(( $(date +%s) - start )) s (output below)" >&2
        tail -20 "/tmp/otasuke-bench-$n.$$.out" >&2
        failed+=("$n")
    fi
    rm -f "/tmp/otasuke-bench-$n.$$.out"
done

for n in "${names[@]}"; do
    md=$RESULTS/$n.md
    [ "$md" -nt "$marker" ] || continue     # not rewritten by this run: stale
    echo
    cat "$md"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: failed: ${failed[*]}" >&2
    exit 1
fi
