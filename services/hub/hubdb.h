/* Hub storage interface: a tiny text-in, text-out SQL layer so one set of queries runs on
 * SQLite (default, embedded) and PostgreSQL (big hubs, selected by "postgresql://" URI).
 *
 * Queries use $1..$N placeholders (both engines accept them) and portable SQL; values go
 * in and come out as strings (NULL = SQL NULL). This costs a conversion per value, which
 * is noise next to the network round trip of an API call, and keeps backends ~150 lines.
 * Every call is serialised by a recursive lock held by hubdb_begin until commit/rollback,
 * so a transaction is never interleaved with another thread's statements. */
#ifndef OTASUKE_HUBDB_H
#define OTASUKE_HUBDB_H

#include <stddef.h>

struct hubdb;

/* Called once per result row; vals[i] is NULL for SQL NULL. Return 0 to go on. */
typedef int (*hubdb_row_fn)(int ncols, const char *const *vals, void *ctx);

/* Opens "sqlite:PATH", a plain PATH, or "postgresql://..." and applies migrations.
 * Returns NULL with err on failure. */
struct hubdb *hubdb_open(const char *uri, char *err, size_t errlen);
void hubdb_close(struct hubdb *db);
/* "sqlite" or "postgresql". */
const char *hubdb_backend(const struct hubdb *db);

/* Runs one statement. Returns the number of rows changed (INSERT/UPDATE/DELETE) or
 * returned (SELECT), or -1 with err. */
long hubdb_exec(struct hubdb *db, const char *sql, int nparams, const char *const *params,
                hubdb_row_fn fn, void *ctx, char *err, size_t errlen);

/* Convenience: first column of the first row into out (empty string if no row or NULL).
 * Returns 1 if a row came back, 0 if none, -1 on error. */
int hubdb_scalar(struct hubdb *db, const char *sql, int nparams, const char *const *params,
                 char *out, size_t outlen, char *err, size_t errlen);

int hubdb_begin(struct hubdb *db, char *err, size_t errlen);
int hubdb_commit(struct hubdb *db, char *err, size_t errlen);
void hubdb_rollback(struct hubdb *db);

/* ---- backend plumbing (hubdb.c dispatches to hubdb_sqlite.c / hubdb_pg.c) ---- */
struct hubdb_ops {
    const char *name;
    void *(*open)(const char *target, char *err, size_t errlen);
    void (*close)(void *h);
    long (*exec)(void *h, const char *sql, int nparams, const char *const *params,
                 hubdb_row_fn fn, void *ctx, char *err, size_t errlen);
};
extern const struct hubdb_ops hubdb_sqlite_ops;
extern const struct hubdb_ops hubdb_pg_ops;

#endif
