/* SQLite backend of the hub storage: WAL, a busy timeout so the admin CLI and a running
 * hubd can share the file, foreign keys on. */
#include "hubdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prepared statements are kept per SQL text: hubd runs the same few dozen statements
 * over and over, and preparing costs more than running most of them. */
#define STMT_CACHE 32
struct sq {
    sqlite3 *db;
    struct { char *sql; sqlite3_stmt *st; } cache[STMT_CACHE];
    unsigned next;
};

static sqlite3_stmt *prepare(struct sq *q, const char *sql)
{
    for (int i = 0; i < STMT_CACHE; i++)
        if (q->cache[i].sql && strcmp(q->cache[i].sql, sql) == 0)
            return q->cache[i].st;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    /* Transaction control is not cached: it is cheap and changes the connection state. */
    if (strncmp(sql, "BEGIN", 5) == 0 || strcmp(sql, "COMMIT") == 0 ||
        strcmp(sql, "ROLLBACK") == 0)
        return st;
    unsigned i = q->next++ % STMT_CACHE;
    if (q->cache[i].sql) {
        free(q->cache[i].sql);
        sqlite3_finalize(q->cache[i].st);
    }
    q->cache[i].sql = strdup(sql);
    q->cache[i].st = st;
    if (!q->cache[i].sql) {
        q->cache[i].st = NULL;
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static int cached(struct sq *q, sqlite3_stmt *st)
{
    for (int i = 0; i < STMT_CACHE; i++)
        if (q->cache[i].st == st)
            return 1;
    return 0;
}

static void *sq_open(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database %s: %s (check the directory exists and is writable)",
                 path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
                     "PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "database %s: %s", path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    struct sq *q = calloc(1, sizeof *q);
    if (!q) {
        sqlite3_close(db);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->db = db;
    return q;
}

static void sq_close(void *h)
{
    struct sq *q = h;
    if (!q)
        return;
    for (int i = 0; i < STMT_CACHE; i++) {
        free(q->cache[i].sql);
        sqlite3_finalize(q->cache[i].st);
    }
    sqlite3_close(q->db);
    free(q);
}

static long sq_exec(void *h, const char *sql, int nparams, const char *const *params,
                    hubdb_row_fn fn, void *ctx, char *err, size_t errlen)
{
    struct sq *q = h;
    sqlite3 *db = q->db;
    sqlite3_stmt *st = prepare(q, sql);
    if (!st) {
        if (err)
            snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        return -1;
    }
    for (int i = 0; i < nparams; i++) {
        char name[16];
        snprintf(name, sizeof name, "$%d", i + 1);
        int idx = sqlite3_bind_parameter_index(st, name);
        if (idx <= 0)
            continue;
        if (params[i])
            sqlite3_bind_text(st, idx, params[i], -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, idx);
    }
    long rows = 0;
    int stop = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        if (fn && !stop) {
            int n = sqlite3_column_count(st);
            const char *vals[64];
            if (n > 64)
                n = 64;
            for (int c = 0; c < n; c++)
                vals[c] = (const char *)sqlite3_column_text(st, c);
            stop = fn(n, vals, ctx);
        }
    }
    /* Reset ends the statement (and its read snapshot) so the cached one can run again. */
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        if (err)
            snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        rows = -1;
    } else if (sqlite3_column_count(st) == 0) {
        rows = sqlite3_changes(db);
    }
    if (cached(q, st)) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    } else {
        sqlite3_finalize(st);
    }
    return rows;
}

const struct hubdb_ops hubdb_sqlite_ops = { "sqlite", sq_open, sq_close, sq_exec };
