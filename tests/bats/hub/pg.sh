#!/usr/bin/env bash
# Runs the hub's storage-dependent tests on PostgreSQL: the unit tests test_hub_consensus,
# test_hub_enroll and test_hub_policy, then tests/bats/hub.bats, each on a fresh database
# of a throwaway cluster (initdb in a temp dir, unix socket only, no TCP listener), removed
# at exit.
#   tests/bats/hub/pg.sh            (root; the cluster runs as user postgres)
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${BUILD:-build}
[ "$(id -u)" -eq 0 ] || { echo "pg.sh: needs root (runs the cluster as user postgres)" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "pg.sh: PostgreSQL server not installed (make deps)" >&2; exit 1; }
D=$(mktemp -d /tmp/otasuke-pg.XXXXXX)
chmod 755 "$D"
chown postgres: "$D"
as_pg() { runuser -u postgres -- "$@"; }
stop() {
    as_pg "$PGBIN/pg_ctl" -D "$D/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$D"
}
trap stop EXIT
as_pg "$PGBIN/initdb" -D "$D/data" -A trust -U postgres >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$D/data" -l "$D/log" -w \
    -o "-k $D -c listen_addresses='' -c fsync=off" start >/dev/null
fresh() { as_pg "$PGBIN/dropdb" -h "$D" --if-exists hubtest; as_pg "$PGBIN/createdb" -h "$D" hubtest; }
URI="postgresql:///hubtest?host=$D&user=postgres"
rc=0
for t in test_hub_consensus test_hub_enroll test_hub_policy; do
    fresh
    echo "# $t on PostgreSQL"
    OTASUKE_HUB_TEST_DB=$URI CMOCKA_MESSAGE_OUTPUT=TAP "$BUILD/tests/$t" || rc=1
done
fresh
echo "# hub.bats on PostgreSQL"
HUB_DB=$URI bats --tap tests/bats/hub.bats || rc=1
exit $rc
