/* SQLite backend of the hub storage: WAL, a busy timeout so the admin CLI and a running
 * hubd can share the file, foreign keys on. */
#include "hubdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

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
    return db;
}

static void sq_close(void *h)
{
    sqlite3_close(h);
}

static long sq_exec(void *h, const char *sql, int nparams, const char *const *params,
                    hubdb_row_fn fn, void *ctx, char *err, size_t errlen)
{
    sqlite3 *db = h;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
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
    if (rc != SQLITE_DONE) {
        if (err)
            snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    if (sqlite3_column_count(st) == 0)
        rows = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rows;
}

const struct hubdb_ops hubdb_sqlite_ops = { "sqlite", sq_open, sq_close, sq_exec };
