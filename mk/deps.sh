#!/usr/bin/env bash
# Installs every Debian package the project needs to build, run and test.
# The lists live in mk/packages/*.txt (one package per line, '#' comments), one file
# per component so each can say what it needs. Idempotent and fast when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

wanted=$(sed -e 's/#.*//' mk/packages/*.txt | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for p in $wanted; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "make deps: must run as root to install: ${missing[*]} (try: sudo make deps)" >&2
        exit 1
    fi
    echo "make deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packages such as unbound, nsd and mosquitto would start system-wide daemons on
    # install; the office and the tests start their own copies, so keep them quiet.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    trap '[ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/otasuke-deps.log 2>&1; then
        apt-get update -q >>/tmp/otasuke-deps.log 2>&1
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/otasuke-deps.log 2>&1 || {
            echo "make deps: apt-get install failed; see /tmp/otasuke-deps.log" >&2
            tail -5 /tmp/otasuke-deps.log >&2
            exit 1
        }
    fi
fi

# npm modules for the browser tests and the UI build (webui/package.json), if present.
if [ -f webui/package.json ] && [ ! -d webui/node_modules ]; then
    # Debian's nodejs comes without npm (NodeSource's includes it): add Debian's npm then.
    if ! command -v npm >/dev/null; then
        [ "$(id -u)" -eq 0 ] || { echo "make deps: must run as root to install npm (try: sudo make deps)" >&2; exit 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm \
            >>/tmp/otasuke-deps.log 2>&1 || { echo "make deps: cannot install npm; see /tmp/otasuke-deps.log" >&2; exit 1; }
    fi
    (cd webui && npm ci --no-audit --no-fund --loglevel=error) || {
        echo "make deps: npm install in webui/ failed" >&2; exit 1; }
fi
exit 0
