/* Accounts, setup code, sessions and login throttling (see accounts.h). Passwords are
 * argon2id strings from libsodium (crypto_pwhash_str, interactive limits: ~64 MiB and a
 * few hundred ms per check — the throttle keeps that from becoming a DoS lever). Session
 * tokens are stored only as BLAKE2b hashes, so a copy of the database opens no session. */
#include "accounts.h"
#include "agent.h"
#include "errbuf.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const acct_schema =
    "CREATE TABLE IF NOT EXISTS accounts(id INTEGER PRIMARY KEY, username TEXT NOT NULL"
    "  UNIQUE, role TEXT NOT NULL CHECK(role IN ('owner','viewer')), pwhash TEXT NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions(token_hash TEXT PRIMARY KEY, account_id INTEGER"
    "  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, csrf TEXT NOT NULL,"
    "  created INTEGER NOT NULL, expires INTEGER NOT NULL, client TEXT);"
    "CREATE TABLE IF NOT EXISTS login_throttle(key TEXT PRIMARY KEY, failures INTEGER NOT"
    "  NULL, window_start INTEGER NOT NULL, locked_until INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS auth_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS unblock_requests(id INTEGER PRIMARY KEY, domain TEXT NOT"
    "  NULL, name TEXT, reason TEXT, client TEXT, created INTEGER NOT NULL, status TEXT NOT"
    "  NULL DEFAULT 'pending' CHECK(status IN ('pending','approved','declined')),"
    "  decided_at INTEGER, decided_by TEXT, minutes INTEGER, rule_id INTEGER);"
    "CREATE TABLE IF NOT EXISTS help_requests(id INTEGER PRIMARY KEY, created INTEGER NOT NULL,"
    "  who TEXT, note TEXT, status TEXT NOT NULL DEFAULT 'open' CHECK(status IN ('open',"
    "  'closed')), closed_at INTEGER, closed_by TEXT);";

/* Adds a column to an existing table unless it is there (databases from older agents). */
static int add_column(sqlite3 *db, const char *table, const char *col, const char *decl,
                      char *err, size_t errlen)
{
    char sql[256];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('%s') WHERE name='%s'", table,
             col);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return errbuf_set(err, errlen, "database: %s: %s", table, sqlite3_errmsg(db));
    int have = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (have)
        return 0;
    snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", table, col, decl);
    return agent_exec(db, sql, err, errlen);
}

int accounts_migrate(sqlite3 *db, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium: initialisation failed");
        return -1;
    }
    /* must_change: an account an owner added with a password they know; audit.account:
     * the web account behind an owner change (api_auth.c). */
    if (agent_exec(db, acct_schema, err, errlen) < 0 ||
        add_column(db, "accounts", "must_change", "INTEGER NOT NULL DEFAULT 0", err,
                   errlen) < 0 ||
        add_column(db, "audit", "account", "TEXT", err, errlen) < 0)
        return -1;
    return webstats_migrate(db, err, errlen);
}

static int dberr(sqlite3 *db, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "database: %s: %s", what, sqlite3_errmsg(db));
    return -1;
}

/* Runs sql with text args; returns the first column of the first row as int64 (dflt when
 * no row). */
static int64_t scalar(sqlite3 *db, const char *sql, const char *a1, const char *a2,
                      int64_t dflt)
{
    sqlite3_stmt *st;
    int64_t v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (a1)
        sqlite3_bind_text(st, 1, a1, -1, SQLITE_TRANSIENT);
    if (a2)
        sqlite3_bind_text(st, 2, a2, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int accounts_meta_set(sqlite3 *db, const char *key, const char *value, char *err,
                      size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO auth_meta VALUES (?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK)
        return dberr(db, err, errlen, "auth_meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : dberr(db, err, errlen, "auth_meta");
}

char *accounts_meta_get(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM auth_meta WHERE key=?1", -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

int accounts_owner_exists(sqlite3 *db)
{
    int64_t n = scalar(db, "SELECT count(*) FROM accounts WHERE role='owner'", NULL, NULL, 0);
    return n < 0 ? -1 : n > 0;
}

/* ---- setup code ---- */

/* No 0/O, 1/I/L: the code is read off a console or a label and typed by hand. */
static const char code_alpha[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

static void code_norm(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *in && n + 1 < outlen; in++) {
        if (*in == '-' || *in == ' ')
            continue;
        out[n++] = (char)toupper((unsigned char)*in);
    }
    out[n] = '\0';
}

int accounts_setup_code(sqlite3 *db, int64_t now, char *out, size_t outlen, int64_t *expires,
                        char *err, size_t errlen)
{
    int owner = accounts_owner_exists(db);
    if (owner < 0)
        return dberr(db, err, errlen, "accounts");
    if (owner) {
        snprintf(err, errlen, "code: an owner account already exists; sign in with it (or "
                 "ask an owner to add your account)");
        return -1;
    }
    if (outlen < 15) {
        snprintf(err, errlen, "code: buffer too small");
        return -1;
    }
    char *cur = accounts_meta_get(db, "setup.code");
    char *exp = accounts_meta_get(db, "setup.expires");
    int64_t e = exp ? strtoll(exp, NULL, 10) : 0;
    free(exp);
    if (cur && e > now && strlen(cur) == 14) {
        snprintf(out, outlen, "%s", cur);
        free(cur);
        *expires = e;
        return 0;
    }
    free(cur);
    for (int i = 0; i < 14; i++)
        out[i] = (i == 4 || i == 9) ? '-' : code_alpha[randombytes_uniform(sizeof code_alpha - 1)];
    out[14] = '\0';
    char ebuf[24];
    e = now + ACCT_CODE_TTL;
    snprintf(ebuf, sizeof ebuf, "%lld", (long long)e);
    if (accounts_meta_set(db, "setup.code", out, err, errlen) < 0 ||
        accounts_meta_set(db, "setup.expires", ebuf, err, errlen) < 0)
        return -1;
    *expires = e;
    return 0;
}

/* ---- validation ---- */

int accounts_check_username(const char *u, char *err, size_t errlen)
{
    size_t n = u ? strlen(u) : 0;
    if (n < 1 || n > ACCT_USER_MAX) {
        snprintf(err, errlen, "username: must be 1 to %d characters", ACCT_USER_MAX);
        return -1;
    }
    for (const char *p = u; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-@", *p)) {
            snprintf(err, errlen, "username: only letters, digits and . _ - @ are allowed");
            return -1;
        }
    return 0;
}

int accounts_check_password(const char *p, const char *user, char *err, size_t errlen)
{
    size_t n = p ? strlen(p) : 0;
    if (n < ACCT_PASS_MIN || n > ACCT_PASS_MAX) {
        snprintf(err, errlen, "password: must be %d to %d characters", ACCT_PASS_MIN,
                 ACCT_PASS_MAX);
        return -1;
    }
    if (user && strcasestr(p, user) && strlen(user) >= 3) {
        snprintf(err, errlen, "password: must not contain the username");
        return -1;
    }
    return 0;
}

/* ---- throttle ---- */

int64_t accounts_locked_for(sqlite3 *db, const char *key, int64_t now)
{
    int64_t until = scalar(db, "SELECT locked_until FROM login_throttle WHERE key=?1", key,
                           NULL, 0);
    return until > now ? until - now : 0;
}

static void throttle_fail(sqlite3 *db, const char *key, int64_t now)
{
    sqlite3_stmt *st;
    /* A fresh window when the old one has passed; lock once the count reaches the max. */
    if (sqlite3_prepare_v2(db,
            "INSERT INTO login_throttle(key, failures, window_start) VALUES (?1, 1, ?2)"
            " ON CONFLICT(key) DO UPDATE SET"
            "  failures = CASE WHEN window_start < ?2 - ?3 THEN 1 ELSE failures + 1 END,"
            "  window_start = CASE WHEN window_start < ?2 - ?3 THEN ?2 ELSE window_start END;"
            , -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, ACCT_FAIL_WINDOW);
    sqlite3_step(st);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "UPDATE login_throttle SET locked_until=?2 + ?3, failures=0"
                           " WHERE key=?1 AND failures >= ?4", -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, ACCT_LOCK_SECS);
    sqlite3_bind_int(st, 4, ACCT_FAIL_MAX);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

static void throttle_clear(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM login_throttle WHERE key=?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

/* ---- sessions ---- */

static void hex_random(char *out, size_t nbytes)
{
    unsigned char b[64];
    randombytes_buf(b, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, b, nbytes);
}

static void token_hash(const char *token, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static int session_open(sqlite3 *db, int64_t account, const char *client, int64_t now,
                        struct acct_session *out, char *err, size_t errlen)
{
    char th[65];
    hex_random(out->token, ACCT_TOKEN_HEX / 2);
    hex_random(out->csrf, ACCT_TOKEN_HEX / 2);
    token_hash(out->token, th);
    out->expires = now + ACCT_SESSION_TTL;
    sqlite3_stmt *st;
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM sessions WHERE expires <= %lld OR token_hash IN"
             " (SELECT token_hash FROM sessions ORDER BY created DESC LIMIT -1 OFFSET %d)",
             (long long)now, ACCT_SESSIONS_MAX - 1);
    if (agent_exec(db, sql, err, errlen) < 0)
        return -1;
    if (sqlite3_prepare_v2(db, "INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st,
                           NULL) != SQLITE_OK)
        return dberr(db, err, errlen, "sessions");
    sqlite3_bind_text(st, 1, th, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, account);
    sqlite3_bind_text(st, 3, out->csrf, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, out->expires);
    sqlite3_bind_text(st, 6, client ? client : "", -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : dberr(db, err, errlen, "sessions");
}

int accounts_session(sqlite3 *db, const char *token, int64_t now, struct acct_session *out)
{
    if (!token || strlen(token) != ACCT_TOKEN_HEX)
        return -1;
    char th[65];
    token_hash(token, th);
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT a.username, a.role, s.csrf, s.expires, a.must_change"
                           " FROM sessions s"
                           " JOIN accounts a ON a.id=s.account_id WHERE s.token_hash=?1"
                           " AND s.expires > ?2", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, th, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    if (sqlite3_step(st) == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->username, sizeof out->username, "%s", sqlite3_column_text(st, 0));
        snprintf(out->role, sizeof out->role, "%s", sqlite3_column_text(st, 1));
        snprintf(out->csrf, sizeof out->csrf, "%s", sqlite3_column_text(st, 2));
        out->expires = sqlite3_column_int64(st, 3);
        out->must_change = sqlite3_column_int(st, 4);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

void accounts_logout(sqlite3 *db, const char *token)
{
    if (!token || strlen(token) != ACCT_TOKEN_HEX)
        return;
    char th[65];
    token_hash(token, th);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM sessions WHERE token_hash=?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, th, -1, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

/* ---- accounts ---- */

static int64_t account_insert(sqlite3 *db, const char *username, const char *password,
                              const char *role, int must_change, int64_t now, char *err,
                              size_t errlen)
{
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        snprintf(err, errlen, "password: hashing failed (out of memory?)");
        return -1;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO accounts(username, role, pwhash, created,"
                           " must_change) VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st, NULL) != SQLITE_OK)
        return dberr(db, err, errlen, "accounts");
    sqlite3_bind_text(st, 1, username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, role, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int(st, 5, must_change);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    sodium_memzero(hash, sizeof hash);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "username: an account named '%s' already exists", username);
        return -1;
    }
    if (rc != SQLITE_DONE)
        return dberr(db, err, errlen, "accounts");
    return sqlite3_last_insert_rowid(db);
}

int accounts_add(sqlite3 *db, const char *username, const char *password, const char *role,
                 int64_t now, char *err, size_t errlen)
{
    return accounts_add_initial(db, username, password, role, 0, now, err, errlen);
}

int accounts_add_initial(sqlite3 *db, const char *username, const char *password,
                         const char *role, int must_change, int64_t now, char *err,
                         size_t errlen)
{
    if (!role || (strcmp(role, "owner") && strcmp(role, "viewer"))) {
        snprintf(err, errlen, "role: must be owner or viewer");
        return -1;
    }
    if (accounts_check_username(username, err, errlen) < 0 ||
        accounts_check_password(password, username, err, errlen) < 0)
        return -1;
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    json_t *after = json_pack("{s:s, s:s}", "username", username, "role", role);
    int rc = account_insert(db, username, password, role, must_change, now, err, errlen) < 0 ||
             agent_audit(db, AGENT_OWNER, "account.add", 0, "ok", NULL, NULL, after) < 0 ||
             agent_tx_commit(db, err, errlen) < 0 ? -1 : 0;
    json_decref(after);
    if (rc < 0)
        agent_tx_rollback(db);
    return rc;
}

void accounts_one_time_password(char *out, size_t outlen)
{
    /* 12 characters of a 31-letter alphabet: ~59 bits, typed once and then replaced. */
    size_t n = 0;
    for (int i = 0; i < 14 && n + 1 < outlen; i++)
        out[n++] = (i == 4 || i == 9) ? '-' : code_alpha[randombytes_uniform(sizeof code_alpha - 1)];
    out[n] = '\0';
}

int accounts_password_change(sqlite3 *db, const char *token, const char *old_pw,
                             const char *new_pw, int64_t now, int64_t *retry, char *err,
                             size_t errlen)
{
    struct acct_session s;
    if (accounts_session(db, token, now, &s) < 0) {
        snprintf(err, errlen, "token: not signed in or the session has expired");
        return -1;
    }
    char ukey[80];
    snprintf(ukey, sizeof ukey, "user:%.40s", s.username);
    *retry = accounts_locked_for(db, ukey, now);
    if (*retry > 0) {
        snprintf(err, errlen, "old_password: too many wrong passwords; try again in %lld "
                 "minutes", (long long)(*retry + 59) / 60);
        return -3;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, pwhash FROM accounts WHERE username=?1", -1, &st,
                           NULL) != SQLITE_OK)
        return dberr(db, err, errlen, "accounts");
    sqlite3_bind_text(st, 1, s.username, -1, SQLITE_TRANSIENT);
    int64_t id = 0;
    char hash[crypto_pwhash_STRBYTES] = "";
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        snprintf(hash, sizeof hash, "%s", sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    size_t olen = old_pw ? strlen(old_pw) : 0;
    if (id <= 0 || olen > ACCT_PASS_MAX ||
        crypto_pwhash_str_verify(hash, old_pw ? old_pw : "", olen) != 0) {
        throttle_fail(db, ukey, now);
        snprintf(err, errlen, "old_password: the current password is wrong");
        return -2;
    }
    if (accounts_check_password(new_pw, s.username, err, errlen) < 0) {
        char tmp[AGENT_ERR];
        snprintf(tmp, sizeof tmp, "new_%s", err);
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    if (!strcmp(new_pw, old_pw)) {
        snprintf(err, errlen, "new_password: must differ from the current one");
        return -1;
    }
    char nh[crypto_pwhash_STRBYTES], th[65];
    if (crypto_pwhash_str(nh, new_pw, strlen(new_pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        snprintf(err, errlen, "new_password: hashing failed (out of memory?)");
        return -1;
    }
    token_hash(token, th);
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "UPDATE accounts SET pwhash=?1, must_change=0 WHERE id=?2", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, nh, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    sodium_memzero(nh, sizeof nh);
    /* Every other session of this account ends: whoever knew the old password is out. */
    if (rc == 0 && sqlite3_prepare_v2(db, "DELETE FROM sessions WHERE account_id=?1 AND"
                                      " token_hash<>?2", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, th, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    json_t *after = json_pack("{s:s}", "username", s.username);
    if (rc < 0 || agent_audit(db, AGENT_OWNER, "account.password", 0, "ok", NULL, NULL,
                              after) < 0 || agent_tx_commit(db, err, errlen) < 0) {
        json_decref(after);
        agent_tx_rollback(db);
        return dberr(db, err, errlen, "accounts");
    }
    json_decref(after);
    throttle_clear(db, ukey);
    return 0;
}

int accounts_remove(sqlite3 *db, const char *username, char *err, size_t errlen)
{
    int64_t id = scalar(db, "SELECT id FROM accounts WHERE username=?1", username, NULL, 0);
    if (id <= 0) {
        snprintf(err, errlen, "username: no account named '%.40s'", username ? username : "");
        return -1;
    }
    int64_t owners = scalar(db, "SELECT count(*) FROM accounts WHERE role='owner' AND"
                            " username<>?1", username, NULL, 0);
    if (owners == 0 && scalar(db, "SELECT count(*) FROM accounts WHERE username=?1 AND"
                              " role='owner'", username, NULL, 0) > 0) {
        snprintf(err, errlen, "username: '%s' is the last owner; add another owner first",
                 username);
        return -1;
    }
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM sessions WHERE account_id=%lld;"
             "DELETE FROM accounts WHERE id=%lld", (long long)id, (long long)id);
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    json_t *before = json_pack("{s:s}", "username", username);
    int rc = agent_exec(db, sql, err, errlen) < 0 ||
             agent_audit(db, AGENT_OWNER, "account.remove", 0, "ok", NULL, before, NULL) < 0 ||
             agent_tx_commit(db, err, errlen) < 0 ? -1 : 0;
    json_decref(before);
    if (rc < 0)
        agent_tx_rollback(db);
    return rc;
}

int accounts_reset(sqlite3 *db, const char *username, char *otp, size_t otplen, char *err,
                   size_t errlen)
{
    int64_t id = scalar(db, "SELECT id FROM accounts WHERE username=?1", username, NULL, 0);
    if (id <= 0) {
        snprintf(err, errlen, "username: no account named '%.40s'", username ? username : "");
        return -1;
    }
    char hash[crypto_pwhash_STRBYTES];
    accounts_one_time_password(otp, otplen);
    if (crypto_pwhash_str(hash, otp, strlen(otp), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        snprintf(err, errlen, "password: hashing failed (out of memory?)");
        return -1;
    }
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "UPDATE accounts SET pwhash=?1, must_change=1 WHERE id=?2", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    sodium_memzero(hash, sizeof hash);
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM sessions WHERE account_id=%lld", (long long)id);
    json_t *after = json_pack("{s:s}", "username", username);
    if (rc < 0 || agent_exec(db, sql, err, errlen) < 0 ||
        agent_audit(db, AGENT_OWNER, "account.reset", 0, "ok", NULL, NULL, after) < 0 ||
        agent_tx_commit(db, err, errlen) < 0) {
        json_decref(after);
        agent_tx_rollback(db);
        sodium_memzero(otp, otplen);
        return dberr(db, err, errlen, "accounts");
    }
    json_decref(after);
    /* A locked-out person gets in with the new password at once. */
    char ukey[80];
    snprintf(ukey, sizeof ukey, "user:%.40s", username);
    throttle_clear(db, ukey);
    return 0;
}

json_t *accounts_list(sqlite3 *db, char *err, size_t errlen)
{
    return agent_query_json(db, "SELECT username, role, created, must_change FROM"
                            " accounts ORDER BY username", NULL, 0, err, errlen);
}

static int throttled(sqlite3 *db, const char *ukey, const char *akey, int64_t now,
                     int64_t *retry)
{
    int64_t a = ukey ? accounts_locked_for(db, ukey, now) : 0;
    int64_t b = akey ? accounts_locked_for(db, akey, now) : 0;
    *retry = a > b ? a : b;
    return *retry > 0;
}

int accounts_setup(sqlite3 *db, const char *code, const char *username, const char *password,
                   const char *client, int64_t now, struct acct_session *out, int64_t *retry,
                   char *err, size_t errlen)
{
    char akey[80];
    snprintf(akey, sizeof akey, "addr:%.64s", client ? client : "");
    if (throttled(db, NULL, akey, now, retry)) {
        snprintf(err, errlen, "code: too many wrong codes; try again in %lld minutes",
                 (long long)(*retry + 59) / 60);
        return -3;
    }
    if (accounts_owner_exists(db) != 0) {
        snprintf(err, errlen, "code: the owner account already exists; sign in instead");
        return -1;
    }
    char *cur = accounts_meta_get(db, "setup.code");
    char *exp = accounts_meta_get(db, "setup.expires");
    int64_t e = exp ? strtoll(exp, NULL, 10) : 0;
    free(exp);
    char a[32], b[32];
    code_norm(code ? code : "", a, sizeof a);
    code_norm(cur ? cur : "", b, sizeof b);
    int ok = cur && e > now && strlen(a) == strlen(b) && strlen(b) == 12 &&
             sodium_memcmp(a, b, 12) == 0;
    free(cur);
    if (!ok) {
        throttle_fail(db, akey, now);
        snprintf(err, errlen, "code: the setup code is wrong or expired; run 'otasukectl "
                 "setup-code' on the box to see the current one");
        return -2;
    }
    if (accounts_check_username(username, err, errlen) < 0 ||
        accounts_check_password(password, username, err, errlen) < 0)
        return -1;
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    int64_t id = account_insert(db, username, password, "owner", 0, now, err, errlen);
    if (id < 0 || agent_exec(db, "DELETE FROM auth_meta WHERE key IN ('setup.code',"
                             " 'setup.expires')", err, errlen) < 0 ||
        session_open(db, id, client, now, out, err, errlen) < 0 ||
        agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    snprintf(out->username, sizeof out->username, "%s", username);
    snprintf(out->role, sizeof out->role, "owner");
    throttle_clear(db, akey);
    return 0;
}

int accounts_login(sqlite3 *db, const char *username, const char *password,
                   const char *client, int64_t now, struct acct_session *out, int64_t *retry,
                   char *err, size_t errlen)
{
    char ukey[80], akey[80];
    snprintf(ukey, sizeof ukey, "user:%.40s", username ? username : "");
    snprintf(akey, sizeof akey, "addr:%.64s", client ? client : "");
    if (throttled(db, ukey, akey, now, retry)) {
        snprintf(err, errlen, "password: too many failed sign-ins; try again in %lld minutes",
                 (long long)(*retry + 59) / 60);
        return -3;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, role, pwhash, must_change FROM accounts WHERE"
                           " username=?1", -1, &st, NULL) != SQLITE_OK)
        return dberr(db, err, errlen, "accounts");
    sqlite3_bind_text(st, 1, username ? username : "", -1, SQLITE_TRANSIENT);
    int64_t id = 0;
    int must_change = 0;
    char role[8] = "", hash[crypto_pwhash_STRBYTES] = "";
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        snprintf(role, sizeof role, "%s", sqlite3_column_text(st, 1));
        snprintf(hash, sizeof hash, "%s", sqlite3_column_text(st, 2));
        must_change = sqlite3_column_int(st, 3);
    }
    sqlite3_finalize(st);
    size_t plen = password ? strlen(password) : 0;
    /* An unknown user costs the same argon2 check as a known one, so the answer time
     * does not tell which usernames exist. */
    static char dummy[crypto_pwhash_STRBYTES];
    if (id == 0 && !dummy[0] &&
        crypto_pwhash_str(dummy, "otasuke-no-such-user", 20, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        dummy[0] = '\0';
    int ok = plen <= ACCT_PASS_MAX &&
             crypto_pwhash_str_verify(id > 0 ? hash : dummy, password ? password : "", plen) == 0 &&
             id > 0;
    if (!ok) {
        throttle_fail(db, ukey, now);
        throttle_fail(db, akey, now);
        snprintf(err, errlen, "password: wrong username or password");
        return -2;
    }
    if (session_open(db, id, client, now, out, err, errlen) < 0)
        return -1;
    snprintf(out->username, sizeof out->username, "%s", username);
    snprintf(out->role, sizeof out->role, "%s", role);
    out->must_change = must_change;
    throttle_clear(db, ukey);
    throttle_clear(db, akey);
    return 0;
}
