/* PostgreSQL backend of the hub storage (libpq, text parameters and results). One
 * connection per hubd, serialised by hubdb's lock; scale-out runs several hubd. */
#include "hubdb.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *pg_open(const char *uri, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(uri);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "postgresql: %s (check the URI and that the server runs)",
                 c ? PQerrorMessage(c) : "out of memory");
        if (c)
            PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

static void pg_close(void *h)
{
    PQfinish(h);
}

static long pg_exec(void *h, const char *sql, int nparams, const char *const *params,
                    hubdb_row_fn fn, void *ctx, char *err, size_t errlen)
{
    /* A parameter the statement never mentions has no type to infer, and PostgreSQL
     * refuses the whole statement; callers share one parameter array across related
     * statements, so give the unmentioned ones type text. */
    Oid types[32] = { 0 };
    if (nparams > 32) {
        if (err)
            snprintf(err, errlen, "postgresql: more than 32 parameters");
        return -1;
    }
    for (int i = 0; i < nparams; i++)
        types[i] = 25;   /* TEXTOID */
    for (const char *p = strchr(sql, '$'); p; p = strchr(p + 1, '$')) {
        int n = atoi(p + 1);
        if (n >= 1 && n <= nparams)
            types[n - 1] = 0;
    }
    PGresult *r = PQexecParams(h, sql, nparams, types, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        if (err) {
            snprintf(err, errlen, "postgresql: %s", PQresultErrorMessage(r));
            size_t n = strlen(err);
            while (n && (err[n - 1] == '\n'))
                err[--n] = '\0';
        }
        PQclear(r);
        return -1;
    }
    long rows;
    if (st == PGRES_TUPLES_OK) {
        rows = PQntuples(r);
        int n = PQnfields(r);
        if (n > 64)
            n = 64;
        for (long i = 0; fn && i < rows; i++) {
            const char *vals[64];
            for (int c = 0; c < n; c++)
                vals[c] = PQgetisnull(r, (int)i, c) ? NULL : PQgetvalue(r, (int)i, c);
            if (fn(n, vals, ctx))
                break;
        }
    } else {
        rows = strtol(PQcmdTuples(r)[0] ? PQcmdTuples(r) : "0", NULL, 10);
    }
    PQclear(r);
    return rows;
}

const struct hubdb_ops hubdb_pg_ops = { "postgresql", pg_open, pg_close, pg_exec };
