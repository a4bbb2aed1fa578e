/* Storage dispatcher and schema migrations shared by both backends. */
#include "hubdb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hubdb {
    const struct hubdb_ops *ops;
    void *h;
    pthread_mutex_t lock;   /* recursive: begin..commit holds it across statements */
};

/* Migrations: append only, never edit a released step. "@ID@" becomes the backend's
 * auto-increment key type. Integers are Unix seconds unless named otherwise. */
static const char *const migrations[] = {
    /* 1: enrolment, fleet, feed, consensus, audit */
    "CREATE TABLE orgs (id @ID@, name TEXT NOT NULL UNIQUE, created BIGINT NOT NULL);"
    "CREATE TABLE codes (hash TEXT PRIMARY KEY, org_id BIGINT NOT NULL REFERENCES orgs(id),"
    "  created BIGINT NOT NULL, expires BIGINT NOT NULL, used_at BIGINT, used_by BIGINT);"
    "CREATE TABLE challenges (nonce TEXT PRIMARY KEY, expires BIGINT NOT NULL);"
    "CREATE TABLE boxes (id @ID@, org_id BIGINT NOT NULL REFERENCES orgs(id),"
    "  name TEXT NOT NULL, pubkey TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,"
    "  mqtt_user TEXT NOT NULL UNIQUE, mqtt_pwhash TEXT NOT NULL, enrolled BIGINT NOT NULL,"
    "  revoked BIGINT, version TEXT, feed_seq BIGINT NOT NULL DEFAULT 0, counters TEXT,"
    "  open_incidents BIGINT NOT NULL DEFAULT 0, last_heartbeat BIGINT);"
    "CREATE TABLE operators (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  created BIGINT NOT NULL);"
    "CREATE TABLE feed_state (feed TEXT PRIMARY KEY, seq BIGINT NOT NULL,"
    "  updated BIGINT NOT NULL);"
    "CREATE TABLE indicators (indicator TEXT NOT NULL, kind TEXT NOT NULL,"
    "  category TEXT NOT NULL, source TEXT NOT NULL, state TEXT NOT NULL,"
    "  confidence BIGINT NOT NULL, expires BIGINT NOT NULL, seq BIGINT NOT NULL,"
    "  PRIMARY KEY (indicator, kind));"
    "CREATE INDEX indicators_seq ON indicators (seq);"
    "CREATE TABLE contributions (indicator TEXT NOT NULL, kind TEXT NOT NULL,"
    "  org_pseud TEXT NOT NULL, category TEXT NOT NULL, count BIGINT NOT NULL,"
    "  first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,"
    "  PRIMARY KEY (indicator, kind, org_pseud));"
    "CREATE TABLE fp_reports (indicator TEXT NOT NULL, kind TEXT NOT NULL,"
    "  org_pseud TEXT NOT NULL, reported BIGINT NOT NULL,"
    "  PRIMARY KEY (indicator, kind, org_pseud));"
    "CREATE TABLE allowlist (indicator TEXT NOT NULL, kind TEXT NOT NULL,"
    "  added BIGINT NOT NULL, note TEXT, PRIMARY KEY (indicator, kind));"
    "CREATE TABLE audit (id @ID@, at BIGINT NOT NULL, actor TEXT NOT NULL,"
    "  action TEXT NOT NULL, detail TEXT NOT NULL);",
    /* 2: when each seq was published, so the fleet view can say how old a box's feed is */
    "CREATE TABLE feed_log (feed TEXT NOT NULL, seq BIGINT NOT NULL, at BIGINT NOT NULL,"
    "  PRIMARY KEY (feed, seq));"
    "INSERT INTO feed_log (feed, seq, at) SELECT feed, seq, updated FROM feed_state;",
    /* 3: delegated policy changes relayed to one box (signed by the delegate; the box's
     * agent checks the signature against its grants, the hub only carries and records) */
    "CREATE TABLE policy_msgs (id @ID@, box_id BIGINT NOT NULL REFERENCES boxes(id),"
    "  created BIGINT NOT NULL, sender TEXT NOT NULL, signer TEXT NOT NULL,"
    "  body TEXT NOT NULL, signature TEXT NOT NULL);"
    "CREATE INDEX policy_msgs_box ON policy_msgs (box_id, id);",
    /* 4: help inbox (inbox.c): one request per box incident, its evidence bundle as sent */
    "CREATE TABLE help_requests (id @ID@, box_id BIGINT NOT NULL REFERENCES boxes(id),"
    "  org_id BIGINT NOT NULL, incident BIGINT NOT NULL, kind TEXT NOT NULL,"
    "  severity TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL, assignee TEXT,"
    "  received BIGINT NOT NULL, updated BIGINT NOT NULL, note TEXT, bundle TEXT NOT NULL,"
    "  UNIQUE (box_id, incident));",
    /* 5: what the box did with a relayed policy message (policy.c): applied / refused */
    "ALTER TABLE policy_msgs ADD COLUMN result TEXT;"
    "ALTER TABLE policy_msgs ADD COLUMN result_detail TEXT;"
    "ALTER TABLE policy_msgs ADD COLUMN result_at BIGINT;",
};

static char *subst_id(const char *sql, const char *idtype)
{
    size_t n = 0;
    for (const char *p = sql; (p = strstr(p, "@ID@")); p += 4)
        n++;
    char *out = malloc(strlen(sql) + n * strlen(idtype) + 1);
    if (!out)
        return NULL;
    char *w = out;
    for (const char *p = sql;;) {
        const char *q = strstr(p, "@ID@");
        if (!q) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        strcpy(w, idtype);
        w += strlen(idtype);
        p = q + 4;
    }
    return out;
}

/* Runs each ';'-separated statement of a migration step (no ';' inside literals). */
static int run_script(struct hubdb *db, const char *sql, char *err, size_t errlen)
{
    char *copy = strdup(sql);
    if (!copy)
        return -1;
    int rc = 0;
    char *save = NULL;
    for (char *stmt = strtok_r(copy, ";", &save); stmt; stmt = strtok_r(NULL, ";", &save)) {
        if (strspn(stmt, " \n\t") == strlen(stmt))
            continue;
        if (hubdb_exec(db, stmt, 0, NULL, NULL, NULL, err, errlen) < 0) {
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

static int migrate(struct hubdb *db, char *err, size_t errlen)
{
    const char *idtype = strcmp(db->ops->name, "sqlite") == 0
        ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY";
    if (hubdb_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
                   0, NULL, NULL, NULL, err, errlen) < 0)
        return -1;
    char v[32];
    int have = hubdb_scalar(db, "SELECT version FROM schema_version", 0, NULL, v, sizeof v,
                            err, errlen);
    if (have < 0)
        return -1;
    long cur = have ? strtol(v, NULL, 10) : 0;
    long want = (long)(sizeof migrations / sizeof migrations[0]);
    if (cur > want) {
        snprintf(err, errlen, "database schema version %ld is newer than this hubd (%ld); "
                 "upgrade otasuke-hubd", cur, want);
        return -1;
    }
    for (long i = cur; i < want; i++) {
        char *sql = subst_id(migrations[i], idtype);
        if (!sql || hubdb_begin(db, err, errlen) < 0) {
            free(sql);
            return -1;
        }
        char ver[32];
        snprintf(ver, sizeof ver, "%ld", i + 1);
        const char *p[] = { ver };
        int rc = run_script(db, sql, err, errlen);
        free(sql);
        if (rc == 0)
            rc = hubdb_exec(db, "DELETE FROM schema_version", 0, NULL, NULL, NULL, err, errlen) < 0 ||
                 hubdb_exec(db, "INSERT INTO schema_version (version) VALUES ($1)", 1, p, NULL,
                            NULL, err, errlen) < 0 ? -1 : 0;
        if (rc < 0 || hubdb_commit(db, err, errlen) < 0) {
            char e2[256];
            snprintf(e2, sizeof e2, "%s", err);
            snprintf(err, errlen, "migration %ld: %s", i + 1, e2);
            hubdb_rollback(db);
            return -1;
        }
    }
    return 0;
}

struct hubdb *hubdb_open(const char *uri, char *err, size_t errlen)
{
    const struct hubdb_ops *ops = &hubdb_sqlite_ops;
    const char *target = uri;
    if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0) {
        ops = &hubdb_pg_ops;
    } else if (strncmp(uri, "sqlite:", 7) == 0) {
        target = uri + 7;
    }
    struct hubdb *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&db->lock, &a);
    pthread_mutexattr_destroy(&a);
    db->ops = ops;
    db->h = ops->open(target, err, errlen);
    if (!db->h) {
        pthread_mutex_destroy(&db->lock);
        free(db);
        return NULL;
    }
    if (migrate(db, err, errlen) < 0) {
        hubdb_close(db);
        return NULL;
    }
    return db;
}

void hubdb_close(struct hubdb *db)
{
    if (!db)
        return;
    db->ops->close(db->h);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

const char *hubdb_backend(const struct hubdb *db)
{
    return db->ops->name;
}

long hubdb_exec(struct hubdb *db, const char *sql, int nparams, const char *const *params,
                hubdb_row_fn fn, void *ctx, char *err, size_t errlen)
{
    pthread_mutex_lock(&db->lock);
    long r = db->ops->exec(db->h, sql, nparams, params, fn, ctx, err, errlen);
    pthread_mutex_unlock(&db->lock);
    return r;
}

struct scalar_ctx { char *out; size_t len; int got; };

static int scalar_row(int ncols, const char *const *vals, void *ctx)
{
    struct scalar_ctx *s = ctx;
    if (!s->got && ncols > 0)
        snprintf(s->out, s->len, "%s", vals[0] ? vals[0] : "");
    s->got = 1;
    return 1;   /* one row is enough */
}

int hubdb_scalar(struct hubdb *db, const char *sql, int nparams, const char *const *params,
                 char *out, size_t outlen, char *err, size_t errlen)
{
    struct scalar_ctx s = { out, outlen, 0 };
    if (outlen)
        out[0] = '\0';
    if (hubdb_exec(db, sql, nparams, params, scalar_row, &s, err, errlen) < 0)
        return -1;
    return s.got;
}

int hubdb_begin(struct hubdb *db, char *err, size_t errlen)
{
    pthread_mutex_lock(&db->lock);
    const char *sql = strcmp(db->ops->name, "sqlite") == 0 ? "BEGIN IMMEDIATE" : "BEGIN";
    if (db->ops->exec(db->h, sql, 0, NULL, NULL, NULL, err, errlen) < 0) {
        pthread_mutex_unlock(&db->lock);
        return -1;
    }
    return 0;
}

int hubdb_commit(struct hubdb *db, char *err, size_t errlen)
{
    long r = db->ops->exec(db->h, "COMMIT", 0, NULL, NULL, NULL, err, errlen);
    if (r < 0) {
        db->ops->exec(db->h, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    }
    pthread_mutex_unlock(&db->lock);
    return r < 0 ? -1 : 0;
}

void hubdb_rollback(struct hubdb *db)
{
    db->ops->exec(db->h, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    pthread_mutex_unlock(&db->lock);
}
