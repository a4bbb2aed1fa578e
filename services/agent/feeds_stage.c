/* See feeds_stage.h: why a full replace is inserted in key order. */
#include "feeds_stage.h"

#include <stdio.h>
#include <string.h>

/* SQLite compares TEXT keys with memcmp (BINARY collation): strcmp gives its order. */
static int before_prev(const struct feed_stage *s, const char *kind, const char *indicator)
{
    int c = strcmp(kind, s->prev_kind);
    return c < 0 || (c == 0 && strcmp(indicator, s->prev) < 0);
}

/* The TEMP table only ever grows at its end: a small cache for it is enough, and the
 * pages a bigger one held would stay in the heap under the compile that follows
 * (the agent's VmHWM over a 1M-name snapshot and its compile: 65.1 MB with SQLite's
 * defaults, 62.8 MB with this and the release in feed_stage_finish, 59.8 MB without
 * staging, which took 5x the CPU; MB = 1024 kB as in tests/bench). */
#define STAGE_TEMP_CACHE "-256"
#define DEFAULT_TEMP_CACHE "-2000"   /* SQLite's default, for temp.feed_changed */

static int stage_begin(struct feed_stage *s)
{
    if (sqlite3_exec(s->db, "PRAGMA temp.cache_size=" STAGE_TEMP_CACHE ";"
                     " CREATE TEMP TABLE IF NOT EXISTS feed_stage(feed_id INTEGER,"
                     " kind TEXT, indicator TEXT, category TEXT, action TEXT, expires INTEGER,"
                     " confidence INTEGER, source TEXT); DELETE FROM temp.feed_stage",
                     NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO temp.feed_stage(feed_id, kind, indicator,"
                           " category, action, expires, confidence, source) VALUES"
                           " (?,?,?,?,?,?,?,?)", -1, &s->ins, NULL) != SQLITE_OK)
        return -1;
    s->active = 1;
    return 0;
}

sqlite3_stmt *feed_stage_route(struct feed_stage *s, sqlite3_stmt *put, const char *kind,
                               const char *indicator)
{
    if (s->active) {
        s->staged++;
        return s->ins;
    }
    if (s->have_prev && before_prev(s, kind, indicator)) {
        if (stage_begin(s) < 0)
            return NULL;
        s->staged++;
        return s->ins;
    }
    snprintf(s->prev_kind, sizeof s->prev_kind, "%s", kind);
    snprintf(s->prev, sizeof s->prev, "%s", indicator);
    s->have_prev = 1;
    return put;
}

int feed_stage_finish(struct feed_stage *s)
{
    if (!s->active)
        return 0;
    sqlite3_finalize(s->ins);
    s->ins = NULL;
    s->active = 0;
    /* The sorter keeps up to the cache size in memory before it spills to a temp file,
     * and the agent's peak comes right after (the full compile): 2 MB instead of db.c's
     * 8 MB costs a few more merge passes, and inserts in key order need few pages. */
    sqlite3_exec(s->db, "PRAGMA cache_size=-2000", NULL, NULL, NULL);
    int rc = sqlite3_exec(s->db, "INSERT OR REPLACE INTO feed_entries(feed_id, kind, indicator,"
                          " category, action, expires, confidence, source) SELECT feed_id,"
                          " kind, indicator, category, action, expires, confidence, source"
                          " FROM temp.feed_stage ORDER BY kind, indicator, rowid;"
                          " DROP TABLE temp.feed_stage", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {   /* before the pragmas below reset the connection's error */
        s->db_code = sqlite3_errcode(s->db);
        snprintf(s->db_msg, sizeof s->db_msg, "%s", sqlite3_errmsg(s->db));
    }
    sqlite3_exec(s->db, "PRAGMA cache_size=-8000", NULL, NULL, NULL);   /* db.c's */
    sqlite3_exec(s->db, "PRAGMA temp.cache_size=" DEFAULT_TEMP_CACHE, NULL, NULL, NULL);
    sqlite3_db_release_memory(s->db);
    return rc == SQLITE_OK ? 0 : -1;
}

void feed_stage_free(struct feed_stage *s)
{
    if (s->active)   /* refused half way: the rollback drops the table */
        sqlite3_exec(s->db, "PRAGMA temp.cache_size=" DEFAULT_TEMP_CACHE, NULL, NULL, NULL);
    sqlite3_finalize(s->ins);
    s->ins = NULL;
    s->active = 0;
}
