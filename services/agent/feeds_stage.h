/* Full replaces (a snapshot, a plain list) in key order. feed_entries is a WITHOUT ROWID
 * table keyed (feed_id, kind, indicator) with an index on indicator; a million names
 * inserted in the order a publisher wrote them land on random pages of both B-trees,
 * far beyond SQLite's 8 MB cache, so nearly every insert reads and dirties a page that
 * was just evicted: 1M random-order names took 29 s of CPU and 49-69 s of wall time
 * (tests/bench/results/agent.md). Entries that arrive in key order go straight in; from
 * the first one out of order they are appended to a TEMP table instead, and moved with
 * one INSERT ... SELECT ... ORDER BY, which SQLite sorts with its external sorter in
 * bounded memory (about the cache size) and then inserts page after page. */
#ifndef OTASUKE_AGENT_FEEDS_STAGE_H
#define OTASUKE_AGENT_FEEDS_STAGE_H

#include "feed.h"

#include <sqlite3.h>

struct feed_stage {
    sqlite3 *db;
    sqlite3_stmt *ins;   /* into temp.feed_stage, once staging began */
    int active;          /* entries go to the stage from now on */
    int have_prev;
    char prev_kind[8], prev[FEED_INDICATOR_MAX + 1];
    unsigned long long staged;
    int db_code;         /* feed_stage_finish failed: SQLite's code and message */
    char db_msg[160];
};

/* The statement the entry (kind, indicator) goes into: put (same 8 parameters as
 * feed_entries' INSERT OR REPLACE: feed_id, kind, indicator, category, action, expires,
 * confidence, source) while keys come in order, the stage's from the first one out of
 * order. NULL when the stage cannot be made (the error is on s->db). Inside the
 * caller's transaction: a rollback drops the stage too. */
sqlite3_stmt *feed_stage_route(struct feed_stage *s, sqlite3_stmt *put, const char *kind,
                               const char *indicator);
/* Moves what was staged into feed_entries in key order (document order among equal
 * keys, so the last one wins as with direct inserts). 0, or -1 with SQLite's code and
 * message in s->db_code / s->db_msg (SQLITE_FULL: no space left). */
int feed_stage_finish(struct feed_stage *s);
/* Frees the statement; the TEMP table goes with finish or with the rollback. */
void feed_stage_free(struct feed_stage *s);

#endif
