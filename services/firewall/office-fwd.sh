#!/usr/bin/env bash
# Runs otasuke-fwd in the virtual office's box (for `make run`; tests/bats/firewall.bats
# sets itself up the same way with more checks). Run inside the box namespace:
#
#   services/firewall/office-fwd.sh OFFICE_RUN BIN_DIR
#
# Writes OFFICE_RUN/fw-zones.conf from the office's interface names (office.env), builds
# OFFICE_RUN/fw.set (tests/fixtures/fw/block.netset as the demo blocklist, 198.18.8.8 as
# a DoH endpoint), starts dnsmasq for DHCP only (port=0) on LAN/guest/IoT, then becomes
# otasuke-fwd (foreground, events to OFFICE_RUN/fwd-events.sock, state in
# OFFICE_RUN/fwd-state). `office.sh down` ends both: they run in the box namespace.
set -euo pipefail
run=${1:?usage: office-fwd.sh OFFICE_RUN BIN_DIR}
bin=${2:?usage: office-fwd.sh OFFICE_RUN BIN_DIR}
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
. "$run/office.env"
cat >"$run/fw-zones.conf" <<Z
zones = { lan = ["$OFFICE_IF_BOX_LAN"]; guest = ["$OFFICE_IF_BOX_GUEST"];
          iot = ["$OFFICE_IF_BOX_IOT"]; wan = ["$OFFICE_IF_BOX_WAN"]; };
nflog_group = 7;
log_rate = 10;
doh = ["198.18.8.8", "fd00:0:0:8::8"];
Z
"$bin/otasukectl" fw build -o "$run/fw.set" --zones "$run/fw-zones.conf" \
    --block demo="$repo/tests/fixtures/fw/block.netset" >/dev/null
( dnsmasq --port=0 --conf-file=/dev/null --user=root --bind-interfaces \
    --interface="$OFFICE_IF_BOX_LAN" --interface="$OFFICE_IF_BOX_GUEST" --interface="$OFFICE_IF_BOX_IOT" \
    --dhcp-range=192.0.2.100,192.0.2.150,1h --dhcp-range=203.0.113.100,203.0.113.150,1h \
    --dhcp-range=198.51.100.100,198.51.100.150,1h --dhcp-leasefile="$run/dnsmasq.leases" \
    --pid-file="$run/dnsmasq.pid" --log-facility="$run/logs/dnsmasq.log" )  # subshell: reaps the daemonizing child
exec "$bin/otasuke-fwd" -f --set "$run/fw.set" --state "$run/fwd-state" \
    --events "$run/fwd-events.sock" --leases "$run/dnsmasq.leases"
