/* Shared set-up for the hub unit tests: a fresh hub in a temp state dir, on SQLite or,
 * when OTASUKE_HUB_TEST_DB names a postgresql:// URI, on an emptied PostgreSQL schema
 * (tests/bats/hub/pg.sh starts a throwaway cluster and runs the tests that way). */
#ifndef HUB_TEST_UTIL_H
#define HUB_TEST_UTIL_H

#include "../../services/hub/hubd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char hub_test_dir[256];

static int hub_test_open(struct hub *h, int k)
{
    snprintf(hub_test_dir, sizeof hub_test_dir, "/tmp/otasuke-hubtest-XXXXXX");
    if (!mkdtemp(hub_test_dir))
        return -1;
    struct hub_opts o;
    hub_opts_defaults(&o);
    o.state_dir = hub_test_dir;
    o.k = k;
    const char *pg = getenv("OTASUKE_HUB_TEST_DB");
    char err[300];
    if (pg && *pg) {
        struct hubdb *db = hubdb_open(pg, err, sizeof err);
        if (!db) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        hubdb_exec(db, "DROP SCHEMA public CASCADE", 0, NULL, NULL, NULL, NULL, 0);
        hubdb_exec(db, "CREATE SCHEMA public", 0, NULL, NULL, NULL, NULL, 0);
        hubdb_close(db);
        o.db_uri = pg;
    }
    if (hub_open(h, &o, err, sizeof err) < 0) {
        fprintf(stderr, "hub_open: %s\n", err);
        return -1;
    }
    return 0;
}

static void hub_test_close(struct hub *h)
{
    hub_close(h);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", hub_test_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", hub_test_dir);
}

#endif
