/* Dashboard numbers: queries and blocks per hour over the last 24 hours and the blocked
 * categories, counted from dnsd's events as they reach the agent. Counted in memory (24
 * small buckets) and written back to the webstats table at most every
 * WEBSTATS_FLUSH_SECS, so a busy resolver never turns into one database write per query
 * and a restart loses at most those seconds. The agent is single-threaded: no locking. */
#include "accounts.h"
#include "agent.h"
#include "domainset.h"
#include "errbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOURS 24
#define OTHER DSET_CAT_COUNT

struct bucket {
    int64_t start;                       /* hour start (Unix seconds), 0 = unused */
    uint64_t queries, blocks;
    uint64_t cats[DSET_CAT_COUNT + 1];
    int dirty;                           /* changed since the last flush */
};

static struct bucket ring[HOURS];
static sqlite3 *store;                   /* borrowed from the agent; NULL = memory only */
static int64_t last_flush;

int webstats_migrate(sqlite3 *db, char *err, size_t errlen)
{
    /* cats: JSON object category -> count, only the non-zero ones. */
    return agent_exec(db, "CREATE TABLE IF NOT EXISTS webstats(hour INTEGER PRIMARY KEY,"
                      " queries INTEGER NOT NULL, blocks INTEGER NOT NULL, cats TEXT NOT NULL)",
                      err, errlen);
}

int webstats_attach(sqlite3 *db, int64_t now, char *err, size_t errlen)
{
    store = db;
    last_flush = now;
    memset(ring, 0, sizeof ring);
    if (!db)
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT hour, queries, blocks, cats FROM webstats WHERE hour > ?1"
                           " AND hour <= ?2", -1, &st, NULL) != SQLITE_OK)
        return errbuf_set(err, errlen, "database: webstats: %s", sqlite3_errmsg(db));
    int64_t cur = now - now % 3600;
    sqlite3_bind_int64(st, 1, cur - (int64_t)HOURS * 3600);
    sqlite3_bind_int64(st, 2, cur);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t start = sqlite3_column_int64(st, 0);
        if (start % 3600)
            continue;
        struct bucket *b = &ring[(start / 3600) % HOURS];
        b->start = start;
        b->queries = (uint64_t)sqlite3_column_int64(st, 1);
        b->blocks = (uint64_t)sqlite3_column_int64(st, 2);
        json_t *cats = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);
        const char *k;
        json_t *v;
        json_object_foreach(cats, k, v) {
            int c = strcmp(k, "other") ? dset_category_parse(k) : -1;
            if (json_integer_value(v) > 0)
                b->cats[c >= 0 && c < DSET_CAT_COUNT ? c : OTHER] += (uint64_t)json_integer_value(v);
        }
        json_decref(cats);
    }
    sqlite3_finalize(st);
    return 0;
}

void webstats_flush(int64_t now)
{
    last_flush = now;
    if (!store)
        return;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store, "INSERT OR REPLACE INTO webstats VALUES (?1, ?2, ?3, ?4)", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    for (int i = 0; i < HOURS; i++) {
        struct bucket *b = &ring[i];
        if (!b->dirty || !b->start)
            continue;
        json_t *cats = json_object();
        for (int c = 0; c <= DSET_CAT_COUNT; c++)
            if (b->cats[c])
                json_object_set_new(cats, c < DSET_CAT_COUNT ? dset_category_name(c) : "other",
                                    json_integer((json_int_t)b->cats[c]));
        char *text = json_dumps(cats, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(cats);
        sqlite3_bind_int64(st, 1, b->start);
        sqlite3_bind_int64(st, 2, (int64_t)b->queries);
        sqlite3_bind_int64(st, 3, (int64_t)b->blocks);
        sqlite3_bind_text(st, 4, text ? text : "{}", -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_DONE)
            b->dirty = 0;   /* a busy database keeps it dirty: written next time */
        sqlite3_reset(st);
        free(text);
    }
    sqlite3_finalize(st);
    /* Two days of rows at most: the chart shows one. */
    if (sqlite3_prepare_v2(store, "DELETE FROM webstats WHERE hour < ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now - 2 * 86400);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

static struct bucket *bucket_at(int64_t now)
{
    int64_t start = now - now % 3600;
    struct bucket *b = &ring[(start / 3600) % HOURS];
    if (b->start != start) {
        if (b->dirty)
            webstats_flush(now);   /* the hour 24 h ago keeps its last counts */
        memset(b, 0, sizeof *b);
        b->start = start;
    }
    return b;
}

void webstats_note(const char *type, const char *category, int64_t count, int64_t now)
{
    if (!type || now <= 0)
        return;
    struct bucket *b = bucket_at(now);
    if (!strcmp(type, "blocked")) {
        int c = category && *category ? dset_category_parse(category) : -1;
        b->blocks++;
        b->queries++;
        b->cats[c >= 0 && c < DSET_CAT_COUNT ? c : OTHER]++;
    } else if (!strcmp(type, "allowed") && count > 0 && count < (1 << 30)) {
        b->queries += (uint64_t)count;
    } else {
        return;
    }
    b->dirty = 1;
    if (store && now - last_flush >= WEBSTATS_FLUSH_SECS)
        webstats_flush(now);
}

static int by_count(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "count"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "count"));
    return x < y ? 1 : x > y ? -1 : 0;
}

json_t *webstats_json(int64_t now)
{
    webstats_flush(now);
    json_t *hours = json_array(), *top = json_array();
    uint64_t cats[DSET_CAT_COUNT + 1] = { 0 };
    int64_t cur = now - now % 3600;
    for (int i = HOURS - 1; i >= 0; i--) {
        int64_t start = cur - (int64_t)i * 3600;
        const struct bucket *b = &ring[(start / 3600) % HOURS];
        int live = b->start == start;
        json_array_append_new(hours, json_pack("{s:I, s:I, s:I}", "start", (json_int_t)start,
                                               "queries", (json_int_t)(live ? b->queries : 0),
                                               "blocks", (json_int_t)(live ? b->blocks : 0)));
        for (int c = 0; live && c <= DSET_CAT_COUNT; c++)
            cats[c] += b->cats[c];
    }
    json_t *tmp[DSET_CAT_COUNT + 1];
    size_t n = 0;
    for (int c = 0; c <= DSET_CAT_COUNT; c++)
        if (cats[c])
            tmp[n++] = json_pack("{s:s, s:I}", "category",
                                 c < DSET_CAT_COUNT ? dset_category_name(c) : "other",
                                 "count", (json_int_t)cats[c]);
    qsort(tmp, n, sizeof tmp[0], by_count);
    for (size_t i = 0; i < n && i < 5; i++)
        json_array_append(top, tmp[i]);
    for (size_t i = 0; i < n; i++)
        json_decref(tmp[i]);
    return json_pack("{s:o, s:o, s:s}", "hours", hours, "top_categories", top, "since",
                     store ? "kept across restarts" : "agent start");
}
