#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, N failed, N skipped".
#   tests/run.sh                 all suites
#   tests/run.sh unit|bats|hub-pg|browser|fuzz|image   one suite
#   tests/run.sh tests/bats/x.bats        one scenario file
# Every suite speaks TAP; this script only counts and never decides pass/fail itself.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
passed=0 failed=0 skipped=0
failures=()

# Reads TAP on stdin, echoes it, updates the counters. A suite that exits non-zero
# without reporting a failing test (a crash, a missing file) still counts as a failure.
count_tap() {
    local suite=$1 line
    while IFS= read -r line; do
        printf '%s\n' "$line"
        case "$line" in
            # cmocka reports a skipped test as "not ok N - name # SKIP"
            "not ok"*"# skip"*|"not ok"*"# SKIP"*) skipped=$((skipped + 1)) ;;
            "not ok"*"# TODO"*|"not ok"*"# todo"*) skipped=$((skipped + 1)) ;;
            "not ok"*) failed=$((failed + 1)); failures+=("$suite: ${line#not ok }") ;;
            ok*"# skip"*|ok*"# SKIP"*) skipped=$((skipped + 1)) ;;
            ok*) passed=$((passed + 1)) ;;
        esac
    done
}

run_tap() {   # suite-name command...
    local suite=$1; shift
    local before=$failed rc
    exec 3< <("$@" 2>&1; echo "__rc=$?")
    while IFS= read -r line <&3; do
        case "$line" in
            __rc=*) rc=${line#__rc=} ;;
            *) count_tap "$suite" <<<"$line" ;;
        esac
    done
    exec 3<&-
    if [ "${rc:-1}" -ne 0 ] && [ "$failed" -eq "$before" ]; then
        failed=$((failed + 1)); failures+=("$suite: exited with status $rc")
        echo "not ok - $suite exited with status $rc"
    fi
}

suite_unit() {
    local t
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        echo "# unit: $(basename "$t")"
        run_tap "unit/$(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
    done
}

suite_bats() {
    local files=("$@")
    [ ${#files[@]} -gt 0 ] || files=(tests/bats/*.bats)
    [ -e "${files[0]}" ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "# bats: scenarios need root for network namespaces; skipped"
        skipped=$((skipped + 1)); return 0
    fi
    local f
    for f in "${files[@]}"; do
        echo "# bats: $f"
        run_tap "bats/$(basename "$f")" bats --tap "$f"
    done
}

suite_hub_pg() {
    # The hub's storage-dependent tests again, on a throwaway PostgreSQL cluster.
    [ -x tests/bats/hub/pg.sh ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "# hub-pg: needs root; skipped"
        skipped=$((skipped + 1)); return 0
    fi
    echo "# hub-pg: tests/bats/hub/pg.sh"
    run_tap hub-pg tests/bats/hub/pg.sh
}

suite_image() {
    # The box image built from this tree's package, booted in qemu (KVM when it works,
    # else software emulation), checked from a client on its LAN port (TAP). Building
    # the Debian base costs 5-7 minutes the first time; it is cached under build/image.
    [ -f appliance/image/build.mk ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "# image: needs root; skipped"
        skipped=$((skipped + 1)); return 0
    fi
    echo "# image: make image-test"
    run_tap image make --no-print-directory image-test
}

suite_browser() {
    [ -d webui/tests ] && ls webui/tests/*.test.mjs >/dev/null 2>&1 || return 0
    echo "# browser: webui/tests"
    run_tap browser node --test --test-reporter=tap --test-concurrency=1 webui/tests/
}

suite_fuzz() {
    # Replays each harness's seed corpus plus a short random run: a regression check,
    # not a search (make fuzz searches for longer).
    [ -x tests/fuzz/run.sh ] || return 0
    ls tests/fuzz/fuzz_*.c >/dev/null 2>&1 || return 0
    make --no-print-directory -s fuzz-build >/dev/null || { failed=$((failed+1)); failures+=("fuzz: build failed"); return; }
    run_tap fuzz tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-5}" "$BUILD"/fuzz/fuzz_*
}

case "${1:-all}" in
    all)     suite_unit; suite_bats; suite_hub_pg; suite_browser; suite_fuzz; suite_image ;;
    hub-pg)  suite_hub_pg ;;
    image)   suite_image ;;
    unit)    suite_unit ;;
    bats)    shift; suite_bats "$@" ;;
    browser) suite_browser ;;
    fuzz)    suite_fuzz ;;
    *.bats)  suite_bats "$@" ;;
    *) echo "usage: tests/run.sh [all|unit|bats|hub-pg|browser|fuzz|image|FILE.bats...]" >&2; exit 2 ;;
esac

if [ ${#failures[@]} -gt 0 ]; then
    echo "# failures:"
    printf '#   %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
