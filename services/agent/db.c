/* The agent's SQLite database: open, pragmas, ordered migrations, small query helpers. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Migrations run in order, each once, inside one transaction with the version bump.
 * Never edit a shipped migration: add the next one. */
static const char *const migrations[] = {
    /* 1: the policy model */
    "CREATE TABLE principals(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL CHECK(kind IN ('owner','delegate')), pubkey TEXT,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE groups(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  answer TEXT NOT NULL DEFAULT 'nxdomain' CHECK(answer IN ('nxdomain','null','blockpage')),"
    "  safesearch INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE group_categories(group_id INTEGER NOT NULL REFERENCES groups(id)"
    "  ON DELETE CASCADE, category TEXT NOT NULL, PRIMARY KEY(group_id, category));"
    "CREATE TABLE group_networks(group_id INTEGER NOT NULL REFERENCES groups(id)"
    "  ON DELETE CASCADE, cidr TEXT NOT NULL, PRIMARY KEY(group_id, cidr));"
    "CREATE TABLE grants(id INTEGER PRIMARY KEY, delegate_id INTEGER NOT NULL"
    "  REFERENCES principals(id), categories TEXT NOT NULL, groups TEXT NOT NULL,"
    "  actions TEXT NOT NULL, created INTEGER NOT NULL, expires_at INTEGER NOT NULL DEFAULT 0,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE rules(id INTEGER PRIMARY KEY, pattern TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK(kind IN ('block','allow')), category TEXT,"
    "  group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,"
    "  author_id INTEGER NOT NULL REFERENCES principals(id),"
    "  grant_id INTEGER REFERENCES grants(id), created INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0, note TEXT);"
    "CREATE INDEX rules_pattern ON rules(pattern);"
    "CREATE TABLE schedules(id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL"
    "  REFERENCES groups(id) ON DELETE CASCADE, category TEXT NOT NULL,"
    "  days INTEGER NOT NULL, start_min INTEGER NOT NULL, end_min INTEGER NOT NULL,"
    "  author_id INTEGER NOT NULL REFERENCES principals(id),"
    "  grant_id INTEGER REFERENCES grants(id), created INTEGER NOT NULL);"
    "CREATE TABLE feeds(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK(kind IN ('signed','list')), feed_id TEXT, pubkey TEXT,"
    "  category TEXT, enabled INTEGER NOT NULL DEFAULT 1, max_bytes INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL DEFAULT 0, last_good INTEGER NOT NULL DEFAULT 0,"
    "  last_attempt INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_reason TEXT,"
    "  etag TEXT, failures INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,"
    "  entries INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE feed_entries(feed_id INTEGER NOT NULL REFERENCES feeds(id)"
    "  ON DELETE CASCADE, indicator TEXT NOT NULL, kind TEXT NOT NULL, category TEXT,"
    "  action TEXT NOT NULL, expires INTEGER NOT NULL DEFAULT 0,"
    "  confidence INTEGER NOT NULL DEFAULT 100, source TEXT,"
    "  PRIMARY KEY(feed_id, kind, indicator)) WITHOUT ROWID;"
    "CREATE INDEX feed_entries_indicator ON feed_entries(indicator);"
    "CREATE TABLE devices(mac TEXT PRIMARY KEY, ipv4 TEXT, ipv6 TEXT, hostname TEXT,"
    "  vendor TEXT, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    "  group_id INTEGER REFERENCES groups(id) ON DELETE SET NULL, label TEXT,"
    "  importance INTEGER NOT NULL DEFAULT 3 CHECK(importance BETWEEN 1 AND 5),"
    "  malware_hits INTEGER NOT NULL DEFAULT 0, scan_hits INTEGER NOT NULL DEFAULT 0,"
    "  block_hits INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, who TEXT NOT NULL,"
    "  what TEXT NOT NULL, grant_id INTEGER, result TEXT NOT NULL, reason TEXT,"
    "  before TEXT, after TEXT);"
    "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    /* Defaults: proportional defence blocks malware, phishing and C2, not the business. */
    "INSERT INTO principals(name, kind, created) VALUES ('owner', 'owner', strftime('%s'));"
    "INSERT INTO groups(name) VALUES ('staff'), ('guests'), ('iot');"
    "INSERT INTO group_categories SELECT g.id, c.column1 FROM groups g,"
    "  (VALUES ('malware'), ('phishing'), ('c2')) c;"
    "INSERT INTO settings VALUES ('default_group', 'staff');",
    /* 2: networks of the box's zones (otasuke.conf), replaced at every start; the owner's
     * group_networks and devices take precedence */
    "CREATE TABLE zone_networks(cidr TEXT PRIMARY KEY, group_name TEXT NOT NULL);",
    /* 3: signed delegated changes already applied (replay protection within the
     * 10-minute validity window; rows older than a day are pruned) */
    "CREATE TABLE seen_changes(digest TEXT PRIMARY KEY, at INTEGER NOT NULL);",
    /* 4: incidents (incidents.c): one row per device+kind window, its timeline, the
     * quarantined devices compiled into fw.set, and notification attempts (notify.c) */
    "CREATE TABLE incidents(id INTEGER PRIMARY KEY, device TEXT NOT NULL, mac TEXT NOT NULL"
    "  DEFAULT '', label TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL, severity TEXT NOT NULL,"
    "  score INTEGER NOT NULL, confidence INTEGER NOT NULL DEFAULT 0,"
    "  importance INTEGER NOT NULL DEFAULT 3, state TEXT NOT NULL DEFAULT 'open',"
    "  opened INTEGER NOT NULL, updated INTEGER NOT NULL, resolved INTEGER NOT NULL DEFAULT 0,"
    "  count INTEGER NOT NULL DEFAULT 1, indicators TEXT NOT NULL DEFAULT '[]',"
    "  help_ref TEXT);"
    "CREATE INDEX incidents_device_kind ON incidents(device, kind, state);"
    "CREATE TABLE incident_events(id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL"
    "  REFERENCES incidents(id) ON DELETE CASCADE, at INTEGER NOT NULL, who TEXT NOT NULL,"
    "  what TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX incident_events_incident ON incident_events(incident_id);"
    "CREATE TABLE quarantine(addr TEXT PRIMARY KEY, mac TEXT NOT NULL DEFAULT '',"
    "  incident_id INTEGER REFERENCES incidents(id) ON DELETE SET NULL, at INTEGER NOT NULL,"
    "  who TEXT NOT NULL);"
    "CREATE TABLE notify_queue(id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL"
    "  REFERENCES incidents(id) ON DELETE CASCADE, channel TEXT NOT NULL, body TEXT NOT NULL,"
    "  tries INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT, sent INTEGER NOT NULL DEFAULT 0);",
    /* 5: remote-help sessions the owner consented to (help_session.c) */
    "CREATE TABLE help_sessions(id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL"
    "  REFERENCES incidents(id) ON DELETE CASCADE, who TEXT NOT NULL, started INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0, end_reason TEXT,"
    "  pid INTEGER NOT NULL DEFAULT 0, port INTEGER NOT NULL DEFAULT 0);",
};

static void seterr_db(sqlite3 *db, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "database: %s: %s", what, sqlite3_errmsg(db));
}

int agent_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "database: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int agent_tx_begin(sqlite3 *db, char *err, size_t errlen)
{
    return agent_exec(db, "BEGIN IMMEDIATE", err, errlen);
}

int agent_tx_commit(sqlite3 *db, char *err, size_t errlen)
{
    return agent_exec(db, "COMMIT", err, errlen);
}

void agent_tx_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int agent_db_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

sqlite3 *agent_db_open(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    /* Password hashes, sessions and delegate keys live here: owner only, whatever the
     * unit's umask. SQLite gives its -wal and -shm files the database file's mode. */
    /* Only open (and close) the file ourselves when it does not exist yet: closing any
     * descriptor of it drops every POSIX lock this process holds on it, so a second
     * connection (notify.c's) would strip the first one's locks. Another process (the
     * sqlite3 shell, a backup) then takes the database for unused, checkpoints and deletes
     * the WAL under us, and what the agent writes after that goes to an unlinked file. */
    struct stat sb;
    if (path[0] != ':' && lstat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode)) {
            snprintf(err, errlen, "%s: not a regular file", path);
            return NULL;
        }
        if ((sb.st_mode & 07777) != 0600 && chmod(path, 0600) < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return NULL;
        }
    } else if (path[0] != ':') {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || fchmod(fd, 0600) < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return NULL;
        }
        close(fd);
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    char e2[AGENT_ERR];
    /* synchronous=NORMAL with WAL: a power cut may lose the last commit, never corrupts. */
    if (agent_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
                   "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-8000;"
                   "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);",
                   e2, sizeof e2) < 0)
        goto fail;
    if (agent_tx_begin(db, e2, sizeof e2) < 0)
        goto fail;
    int v = agent_db_version(db);
    if (v < 0) {
        if (agent_exec(db, "INSERT INTO schema_version VALUES (0)", e2, sizeof e2) < 0)
            goto fail_tx;
        v = 0;
    }
    int n = (int)(sizeof migrations / sizeof migrations[0]);
    if (v > n) {
        snprintf(e2, sizeof e2, "schema version %d is newer than this agent (%d): "
                 "restore a backup or upgrade otasuke-agent", v, n);
        goto fail_tx;
    }
    for (; v < n; v++) {
        if (agent_exec(db, migrations[v], e2, sizeof e2) < 0)
            goto fail_tx;
        char sql[64];
        snprintf(sql, sizeof sql, "UPDATE schema_version SET version=%d", v + 1);
        if (agent_exec(db, sql, e2, sizeof e2) < 0)
            goto fail_tx;
    }
    if (agent_tx_commit(db, e2, sizeof e2) < 0)
        goto fail_tx;
    return db;
fail_tx:
    agent_tx_rollback(db);
fail:
    snprintf(err, errlen, "%s: %s", path, e2);
    sqlite3_close(db);
    return NULL;
}

void agent_db_close(sqlite3 *db)
{
    if (db)
        sqlite3_close(db);
}

static int64_t id_by_name(sqlite3 *db, const char *sql, const char *name)
{
    sqlite3_stmt *st;
    int64_t id = -1;
    if (!name || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

int64_t agent_principal_id(sqlite3 *db, const char *name)
{
    return id_by_name(db, "SELECT id FROM principals WHERE name=?", name);
}

int64_t agent_group_id(sqlite3 *db, const char *name)
{
    return id_by_name(db, "SELECT id FROM groups WHERE name=?", name);
}

json_t *agent_query_json(sqlite3 *db, const char *sql, const char *const *args, int nargs,
                         char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        seterr_db(db, err, errlen, "query");
        return NULL;
    }
    for (int i = 0; i < nargs; i++)
        sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            json_t *v;
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, c)); break;
            case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, c)); break;
            case SQLITE_NULL: v = json_null(); break;
            default: v = json_string((const char *)sqlite3_column_text(st, c)); break;
            }
            json_object_set_new(o, sqlite3_column_name(st, c), v ? v : json_null());
        }
        json_array_append_new(arr, o);
    }
    if (rc != SQLITE_DONE) {
        seterr_db(db, err, errlen, "query");
        json_decref(arr);
        arr = NULL;
    }
    sqlite3_finalize(st);
    return arr;
}

int agent_audit(sqlite3 *db, const char *who, const char *what, int64_t grant_id,
                const char *result, const char *reason, json_t *before, json_t *after)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO audit(at, who, what, grant_id, result, reason,"
                           " before, after) VALUES (?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        return -1;
    char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *a = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, what, -1, SQLITE_TRANSIENT);
    if (grant_id > 0)
        sqlite3_bind_int64(st, 4, grant_id);
    sqlite3_bind_text(st, 5, result, -1, SQLITE_TRANSIENT);
    if (reason)
        sqlite3_bind_text(st, 6, reason, -1, SQLITE_TRANSIENT);
    if (b)
        sqlite3_bind_text(st, 7, b, -1, SQLITE_TRANSIENT);
    if (a)
        sqlite3_bind_text(st, 8, a, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    free(b);
    free(a);
    return rc;
}
