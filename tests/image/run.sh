#!/bin/sh
# tests/image/run.sh — the image's fault tests (make image-faults); needs root, qemu and
# build/image/otasuke-test.img (make image-test-build).
set -eu
exec "$(dirname "$0")/faults.sh" "$@"
