#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS HARNESS...
# Runs each libFuzzer harness on its seed corpus (tests/fuzz/corpus/<name>/) and then
# for SECONDS of new inputs. Prints one TAP line per harness. Crashes land in build/fuzz/crashes/.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=$1; shift
n=0
echo "1..$#"
for h in "$@"; do
    n=$((n + 1))
    name=$(basename "$h")
    seeds=tests/fuzz/corpus/$name
    work=build/fuzz/corpus/$name
    mkdir -p "$work" build/fuzz/crashes
    [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null
    log=build/fuzz/$name.log
    if ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp:print_suppressions=0 "$h" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 \
        -artifact_prefix=build/fuzz/crashes/"$name"- "$work" >"$log" 2>&1; then
        echo "ok $n - fuzz $name ($(grep -o 'Done [0-9]* runs' "$log" | tail -1))"
    else
        echo "not ok $n - fuzz $name: see $log"
        grep -E 'ERROR|SUMMARY' "$log" | head -5 | sed 's/^/#   /'
    fi
done
