/* Owner accounts, the one-time setup code, web sessions with their CSRF tokens, login
 * throttling, and the block page's unblock requests. All of it lives in the agent's
 * SQLite (webd holds no state); the tables are created by accounts_migrate, separately
 * from the policy migrations so backups and restores of the policy never carry
 * password hashes or sessions.
 *
 * Every function takes the open database, fills err ("field: what") on failure and
 * returns -1 / NULL; json_t results are new references. */
#ifndef OTASUKE_AGENT_ACCOUNTS_H
#define OTASUKE_AGENT_ACCOUNTS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define ACCT_USER_MAX     32
#define ACCT_PASS_MIN     10
#define ACCT_PASS_MAX     128
#define ACCT_TOKEN_HEX    64          /* 32 random bytes */
#define ACCT_SESSION_TTL  (12 * 3600) /* absolute lifetime of a web session */
#define ACCT_SESSIONS_MAX 256         /* oldest sessions are dropped beyond this */
#define ACCT_FAIL_MAX     5           /* failures in the window before a lockout */
#define ACCT_FAIL_WINDOW  900
#define ACCT_LOCK_SECS    900
#define ACCT_CODE_TTL     (7 * 86400)
#define UNBLOCK_PENDING_MAX 200       /* block-page requests waiting for the owner */
#define UNBLOCK_PER_CLIENT  10        /* pending requests per visitor address */

/* Creates the account, session, throttle and unblock-request tables if missing.
 * Idempotent; run at every start after agent_db_open. 0 or -1 with err. */
int accounts_migrate(sqlite3 *db, char *err, size_t errlen);

/* 1 when at least one owner account exists, 0 when none, -1 on a database error. */
int accounts_owner_exists(sqlite3 *db);

/* Returns the current setup code (minting a new one when none is live) into out
 * (>= 16 bytes: "XXXX-XXXX-XXXX"), and its expiry. Refused (-1) once an owner exists. */
int accounts_setup_code(sqlite3 *db, int64_t now, char *out, size_t outlen, int64_t *expires,
                        char *err, size_t errlen);

/* Checks username/password shape. 0 or -1 with err naming the field. */
int accounts_check_username(const char *u, char *err, size_t errlen);
int accounts_check_password(const char *p, const char *user, char *err, size_t errlen);

/* Result of a login or a setup: a new session. token is secret (only its hash is
 * stored); csrf is returned by every session lookup. */
struct acct_session {
    char token[ACCT_TOKEN_HEX + 1];
    char csrf[ACCT_TOKEN_HEX + 1];
    char username[ACCT_USER_MAX + 1];
    char role[8];
    int64_t expires;
    int must_change;   /* signed in with a password an owner set: change it first */
};

/* Throttle state of a login key ("user:NAME" or "addr:IP"): seconds until it may try
 * again (0 = now). */
int64_t accounts_locked_for(sqlite3 *db, const char *key, int64_t now);

/* Setup: creates the first owner when code matches the live setup code and no owner
 * exists, then opens a session. Returns 0; -1 with err; -2 when the code was wrong
 * (counted against the client's address); -3 when throttled (*retry set). */
int accounts_setup(sqlite3 *db, const char *code, const char *username, const char *password,
                   const char *client, int64_t now, struct acct_session *out, int64_t *retry,
                   char *err, size_t errlen);

/* Login: 0 with a new session; -2 on wrong user or password (one message for both,
 * failure counted per user and per client); -3 when throttled (*retry seconds). */
int accounts_login(sqlite3 *db, const char *username, const char *password,
                   const char *client, int64_t now, struct acct_session *out, int64_t *retry,
                   char *err, size_t errlen);

/* Looks a token up: 0 and out filled (token left empty), or -1 when unknown/expired. */
int accounts_session(sqlite3 *db, const char *token, int64_t now, struct acct_session *out);
/* Ends a session (unknown tokens are fine). */
void accounts_logout(sqlite3 *db, const char *token);

/* Accounts: list [{username, role, created}], add, remove (never the last owner). */
json_t *accounts_list(sqlite3 *db, char *err, size_t errlen);
int accounts_add(sqlite3 *db, const char *username, const char *password, const char *role,
                 int64_t now, char *err, size_t errlen);
int accounts_remove(sqlite3 *db, const char *username, char *err, size_t errlen);
/* Adds an account an owner created for someone else: must_change set means the person's
 * sessions can do nothing but change that password (webd enforces it). Audited. */
int accounts_add_initial(sqlite3 *db, const char *username, const char *password,
                         const char *role, int must_change, int64_t now, char *err,
                         size_t errlen);
/* An owner resets someone's forgotten password: a new one-time password into otp (>= 15
 * bytes, shown once), must_change set, every session of the account ended, its lockout
 * cleared. Audited as account.reset. 0 or -1 with err. */
int accounts_reset(sqlite3 *db, const char *username, char *otp, size_t otplen, char *err,
                   size_t errlen);
/* Writes a random one-time password "XXXX-XXXX-XXXX" (>= 15 bytes) into out. */
void accounts_one_time_password(char *out, size_t outlen);
/* Changes the password of the session's account: old_pw must be right (failures count
 * towards the account's lockout), new_pw valid and different. Ends every other session of
 * the account and clears must_change. 0; -1 with err ("new_password: ..."); -2 wrong old
 * password; -3 throttled (*retry seconds). */
int accounts_password_change(sqlite3 *db, const char *token, const char *old_pw,
                             const char *new_pw, int64_t now, int64_t *retry, char *err,
                             size_t errlen);

/* Block-page unblock requests. add returns the id (an identical pending request from the
 * same client returns the existing id); -1 with err (bad domain, too many pending). */
int64_t unblock_request_add(sqlite3 *db, const char *domain, const char *name,
                            const char *reason, const char *client, int64_t now, char *err,
                            size_t errlen);
/* [{id, domain, name, reason, client, created, status, decided_at, decided_by, minutes}],
 * newest first; status NULL = all. */
json_t *unblock_request_list(sqlite3 *db, const char *status, char *err, size_t errlen);
/* Approves (minutes 0 = permanent allow, else a temporary allow of that many minutes) by
 * adding an allow rule, or declines. Only pending requests. 0 or -1 with err. */
int unblock_request_decide(sqlite3 *db, int64_t id, int approve, int64_t minutes,
                           const char *who, int64_t now, char *err, size_t errlen);

/* "Call for help" self-reports: add (who = the signed-in user, note may be empty; at most
 * 50 open) returns the id; close marks an open one closed. -1 with err otherwise. Listed by
 * GET /v1/help, newest first. */
int64_t help_request_add(sqlite3 *db, const char *who, const char *note, int64_t now,
                         char *err, size_t errlen);
int help_request_close(sqlite3 *db, int64_t id, const char *who, int64_t now, char *err,
                       size_t errlen);

/* Small key/value facts webd reports (e.g. "webd.fingerprint"). */
int accounts_meta_set(sqlite3 *db, const char *key, const char *value, char *err,
                      size_t errlen);
/* Returns a malloc'd value or NULL. */
char *accounts_meta_get(sqlite3 *db, const char *key);

/* webstats.c: creates the table the hourly counters persist in (from accounts_migrate). */
int webstats_migrate(sqlite3 *db, char *err, size_t errlen);
/* Loads the last 24 hours from db and from then on writes the counters back to it at
 * most every WEBSTATS_FLUSH_SECS (and on webstats_flush), so a restart keeps the chart.
 * db stays borrowed until webstats_attach(NULL). */
#define WEBSTATS_FLUSH_SECS 10
int webstats_attach(sqlite3 *db, int64_t now, char *err, size_t errlen);
/* Writes the changed hours now (shutdown, a dashboard read). */
void webstats_flush(int64_t now);
/* webstats.c: counts one dnsd event (type "blocked" with its category, or "allowed"
 * with a count) into the hour of now. */
void webstats_note(const char *type, const char *category, int64_t count, int64_t now);
/* {hours: 24 x {start, queries, blocks} oldest first, top_categories: [{category, count}]}
 * over the last 24 hours; new reference. */
json_t *webstats_json(int64_t now);

/* api_auth.c: serves /v1/auth/..., /v1/accounts..., /v1/unblock-requests..., /v1/webd on the
 * agent socket. Returns 1 when the path was one of these (call answered), else 0. */
struct api_call;
int api_auth_route(struct api_call *c);
/* owner_settings.c: GET|POST /v1/notify/test, then hub_enrol.c: GET /v1/hub/enrolment,
 * GET /v1/hub/job, POST /v1/hub/probe and /v1/hub/enroll. Return 1 when the path was one
 * of these (call answered), else 0. */
int owner_settings_route(struct api_call *c);
int hub_enrol_route(struct api_call *c);
/* The audit actor: mark returns the last audit id before a call (-1 when no web account
 * is acting), stamp writes the account into the owner's audit rows added since. */
int64_t api_actor_mark(struct api_call *c);
void api_actor_stamp(struct api_call *c, int64_t mark);

#endif
