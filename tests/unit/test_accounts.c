/* Agent accounts: setup code, first owner, login, throttling, sessions, roles, unblock
 * requests, and the /v1/auth routes' body checks. */
#include "../../services/agent/accounts.h"
#include "../../services/agent/agent.h"
#include "../../services/agent/agentd.h"
#include "../../services/agent/api.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static char err[AGENT_ERR];
static char dbpath[64];
static const int64_t T0 = 1800000000;

static int open_db(void **state)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/test_accounts_XXXXXX");
    int fd = mkstemp(dbpath);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(dbpath);
    sqlite3 *db = agent_db_open(dbpath, err, sizeof err);
    if (!db || accounts_migrate(db, err, sizeof err) < 0)
        return -1;
    *state = db;
    return 0;
}

static int close_db(void **state)
{
    agent_db_close(*state);
    char p[80];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
    return 0;
}

/* Mints the code and sets up owner "boss" from client 192.0.2.10. */
static void make_owner(sqlite3 *db, struct acct_session *s)
{
    char code[16];
    int64_t exp, retry;
    assert_int_equal(accounts_setup_code(db, T0, code, sizeof code, &exp, err, sizeof err), 0);
    assert_int_equal(accounts_setup(db, code, "boss", "correct-horse", "192.0.2.10", T0, s,
                                    &retry, err, sizeof err), 0);
}

static void test_migrate_idempotent(void **state)
{
    sqlite3 *db = *state;
    assert_int_equal(accounts_migrate(db, err, sizeof err), 0);
    assert_int_equal(accounts_migrate(db, err, sizeof err), 0);
    assert_int_equal(accounts_owner_exists(db), 0);
}

static void test_setup_code_stable_and_shaped(void **state)
{
    sqlite3 *db = *state;
    char a[16], b[16];
    int64_t ea, eb;
    assert_int_equal(accounts_setup_code(db, T0, a, sizeof a, &ea, err, sizeof err), 0);
    assert_int_equal(accounts_setup_code(db, T0 + 60, b, sizeof b, &eb, err, sizeof err), 0);
    assert_string_equal(a, b);
    assert_int_equal(ea, eb);
    assert_int_equal(strlen(a), 14);
    assert_int_equal(a[4], '-');
    assert_int_equal(a[9], '-');
    for (int i = 0; i < 14; i++)
        if (i != 4 && i != 9)
            assert_non_null(strchr("23456789ABCDEFGHJKMNPQRSTUVWXYZ", a[i]));
    /* After expiry a new code replaces it. */
    assert_int_equal(accounts_setup_code(db, ea + 1, b, sizeof b, &eb, err, sizeof err), 0);
    assert_true(eb > ea);
}

static void test_setup_wrong_code_then_right(void **state)
{
    sqlite3 *db = *state;
    char code[16];
    int64_t exp, retry = 0;
    struct acct_session s;
    assert_int_equal(accounts_setup_code(db, T0, code, sizeof code, &exp, err, sizeof err), 0);
    assert_int_equal(accounts_setup(db, "AAAA-BBBB-CCCC", "boss", "correct-horse", "192.0.2.66",
                                    T0, &s, &retry, err, sizeof err), -2);
    assert_non_null(strstr(err, "code:"));
    assert_int_equal(accounts_owner_exists(db), 0);
    /* Lowercase and without dashes is the same code. */
    char loose[16];
    int n = 0;
    for (int i = 0; code[i]; i++)
        if (code[i] != '-')
            loose[n++] = (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] + 32 : code[i]);
    loose[n] = '\0';
    /* A bad password is refused without spending the code. */
    assert_int_equal(accounts_setup(db, loose, "boss", "short", "192.0.2.10", T0, &s, &retry,
                                    err, sizeof err), -1);
    assert_non_null(strstr(err, "password:"));
    assert_int_equal(accounts_setup(db, loose, "boss", "correct-horse", "192.0.2.10", T0, &s,
                                    &retry, err, sizeof err), 0);
    assert_int_equal(strlen(s.token), ACCT_TOKEN_HEX);
    assert_int_equal(strlen(s.csrf), ACCT_TOKEN_HEX);
    assert_string_equal(s.role, "owner");
    assert_int_equal(accounts_owner_exists(db), 1);
    /* The code is spent; a second setup and a new code are refused. */
    assert_int_equal(accounts_setup(db, code, "evil", "correct-horse", "192.0.2.10", T0, &s,
                                    &retry, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(accounts_setup_code(db, T0, code, sizeof code, &exp, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
}

static void test_setup_throttled_per_address(void **state)
{
    sqlite3 *db = *state;
    char code[16];
    int64_t exp, retry = 0;
    struct acct_session s;
    assert_int_equal(accounts_setup_code(db, T0, code, sizeof code, &exp, err, sizeof err), 0);
    for (int i = 0; i < ACCT_FAIL_MAX; i++)
        assert_int_equal(accounts_setup(db, "2222-2222-2222", "boss", "correct-horse",
                                        "192.0.2.66", T0, &s, &retry, err, sizeof err), -2);
    /* Locked: even the right code is refused from that address... */
    assert_int_equal(accounts_setup(db, code, "boss", "correct-horse", "192.0.2.66", T0 + 1, &s,
                                    &retry, err, sizeof err), -3);
    assert_true(retry > 0 && retry <= ACCT_LOCK_SECS);
    /* ...until the lock passes. */
    assert_int_equal(accounts_setup(db, code, "boss", "correct-horse", "192.0.2.66",
                                    T0 + ACCT_LOCK_SECS + 1, &s, &retry, err, sizeof err), 0);
}

static void test_login_session_logout(void **state)
{
    sqlite3 *db = *state;
    struct acct_session s, l, q;
    int64_t retry;
    make_owner(db, &s);
    assert_int_equal(accounts_login(db, "boss", "wrong-password", "192.0.2.10", T0, &l, &retry,
                                    err, sizeof err), -2);
    assert_string_equal(err, "password: wrong username or password");
    assert_int_equal(accounts_login(db, "nobody", "wrong-password", "192.0.2.10", T0, &l,
                                    &retry, err, sizeof err), -2);
    assert_string_equal(err, "password: wrong username or password");
    assert_int_equal(accounts_login(db, "boss", "correct-horse", "192.0.2.10", T0, &l, &retry,
                                    err, sizeof err), 0);
    assert_string_not_equal(l.token, s.token);
    assert_int_equal(accounts_session(db, l.token, T0 + 10, &q), 0);
    assert_string_equal(q.username, "boss");
    assert_string_equal(q.role, "owner");
    assert_string_equal(q.csrf, l.csrf);
    assert_string_equal(q.token, "");
    /* Expired, malformed, unknown. */
    assert_int_equal(accounts_session(db, l.token, T0 + ACCT_SESSION_TTL, &q), -1);
    assert_int_equal(accounts_session(db, "abc", T0, &q), -1);
    char other[ACCT_TOKEN_HEX + 1];
    memset(other, 'a', ACCT_TOKEN_HEX);
    other[ACCT_TOKEN_HEX] = '\0';
    assert_int_equal(accounts_session(db, other, T0, &q), -1);
    /* The database holds no token in clear. */
    json_t *rows = agent_query_json(db, "SELECT token_hash FROM sessions", NULL, 0, err,
                                    sizeof err);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
        assert_string_not_equal(json_string_value(json_object_get(r, "token_hash")), l.token);
    json_decref(rows);
    accounts_logout(db, l.token);
    assert_int_equal(accounts_session(db, l.token, T0 + 10, &q), -1);
    assert_int_equal(accounts_session(db, s.token, T0 + 10, &q), 0);
}

static void test_login_lockout_per_user(void **state)
{
    sqlite3 *db = *state;
    struct acct_session s, l;
    int64_t retry;
    make_owner(db, &s);
    /* Failures from many addresses still lock the account. */
    for (int i = 0; i < ACCT_FAIL_MAX; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "192.0.2.%d", 100 + i);
        assert_int_equal(accounts_login(db, "boss", "nope-nope-nope", addr, T0, &l, &retry, err,
                                        sizeof err), -2);
    }
    assert_int_equal(accounts_login(db, "boss", "correct-horse", "192.0.2.10", T0 + 5, &l,
                                    &retry, err, sizeof err), -3);
    assert_non_null(strstr(err, "too many"));
    assert_int_equal(accounts_login(db, "boss", "correct-horse", "192.0.2.10",
                                    T0 + ACCT_LOCK_SECS + 1, &l, &retry, err, sizeof err), 0);
}

static void test_failures_outside_window_do_not_add_up(void **state)
{
    sqlite3 *db = *state;
    struct acct_session s, l;
    int64_t retry;
    make_owner(db, &s);
    for (int i = 0; i < ACCT_FAIL_MAX * 2; i++)
        assert_int_equal(accounts_login(db, "boss", "nope-nope-nope", "192.0.2.10",
                                        T0 + i * (ACCT_FAIL_WINDOW / 2 + 1), &l, &retry, err,
                                        sizeof err), -2);
    assert_int_equal(accounts_login(db, "boss", "correct-horse", "192.0.2.10",
                                    T0 + ACCT_FAIL_MAX * 2 * (ACCT_FAIL_WINDOW / 2 + 1), &l,
                                    &retry, err, sizeof err), 0);
}

static void test_accounts_roles(void **state)
{
    sqlite3 *db = *state;
    struct acct_session s, l;
    int64_t retry;
    make_owner(db, &s);
    assert_int_equal(accounts_add(db, "hanako", "reads-only-2026", "viewer", T0, err, sizeof err), 0);
    assert_int_equal(accounts_add(db, "hanako", "reads-only-2026", "viewer", T0, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(accounts_add(db, "x", "reads-only-2026", "admin", T0, err, sizeof err), -1);
    assert_non_null(strstr(err, "role:"));
    assert_int_equal(accounts_add(db, "bad name", "reads-only-2026", "viewer", T0, err, sizeof err), -1);
    assert_non_null(strstr(err, "username:"));
    assert_int_equal(accounts_add(db, "jiro", "jiro-password-1", "viewer", T0, err, sizeof err), -1);
    assert_non_null(strstr(err, "must not contain the username"));
    assert_int_equal(accounts_login(db, "hanako", "reads-only-2026", "192.0.2.11", T0, &l, &retry,
                                    err, sizeof err), 0);
    assert_string_equal(l.role, "viewer");
    json_t *list = accounts_list(db, err, sizeof err);
    assert_int_equal(json_array_size(list), 2);
    assert_null(json_object_get(json_array_get(list, 0), "pwhash"));
    json_decref(list);
    /* The last owner stays; removing a viewer ends its sessions. */
    assert_int_equal(accounts_remove(db, "boss", err, sizeof err), -1);
    assert_non_null(strstr(err, "last owner"));
    assert_int_equal(accounts_remove(db, "hanako", err, sizeof err), 0);
    struct acct_session q;
    assert_int_equal(accounts_session(db, l.token, T0 + 1, &q), -1);
    assert_int_equal(accounts_remove(db, "hanako", err, sizeof err), -1);
    assert_non_null(strstr(err, "no account"));
}

static void test_unblock_requests(void **state)
{
    sqlite3 *db = *state;
    int64_t a = unblock_request_add(db, "Ads.Test.", "Taro", "campaign", "192.0.2.10", T0, err,
                                    sizeof err);
    assert_true(a > 0);
    /* The same pending request from the same visitor is not stored twice. */
    assert_int_equal(unblock_request_add(db, "ads.test", "", "", "192.0.2.10", T0, err,
                                         sizeof err), a);
    assert_int_equal(unblock_request_add(db, "not a domain", "", "", "192.0.2.10", T0, err,
                                         sizeof err), -1);
    assert_non_null(strstr(err, "domain:"));
    assert_int_equal(unblock_request_add(db, "*.ads.test", "", "", "192.0.2.10", T0, err,
                                         sizeof err), -1);
    /* A visitor's pending requests are capped. */
    for (int i = 1; i < UNBLOCK_PER_CLIENT; i++) {
        char d[32];
        snprintf(d, sizeof d, "site%d.test", i);
        assert_true(unblock_request_add(db, d, "", "", "192.0.2.10", T0, err, sizeof err) > 0);
    }
    assert_int_equal(unblock_request_add(db, "more.test", "", "", "192.0.2.10", T0, err,
                                         sizeof err), -1);
    assert_non_null(strstr(err, "too many"));
    assert_true(unblock_request_add(db, "more.test", "", "", "192.0.2.11", T0, err, sizeof err) > 0);
    json_t *l = unblock_request_list(db, "pending", err, sizeof err);
    assert_int_equal(json_array_size(l), UNBLOCK_PER_CLIENT + 1);
    json_decref(l);
    /* Approve for 30 minutes: an allow rule expiring then. */
    assert_int_equal(unblock_request_decide(db, a, 1, 30, "boss", T0, err, sizeof err), 0);
    json_t *rules = agent_query_json(db, "SELECT pattern, kind, expires_at FROM rules", NULL, 0,
                                     err, sizeof err);
    assert_int_equal(json_array_size(rules), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "pattern")),
                        "ads.test");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "kind")),
                        "allow");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rules, 0), "expires_at")),
                     T0 + 1800);
    json_decref(rules);
    /* Decided once only; decline adds no rule. */
    assert_int_equal(unblock_request_decide(db, a, 0, 0, "boss", T0, err, sizeof err), -1);
    assert_non_null(strstr(err, "no pending"));
    assert_int_equal(unblock_request_decide(db, a + 1, 0, 0, "boss", T0, err, sizeof err), 0);
    l = unblock_request_list(db, NULL, err, sizeof err);
    int approved = 0, declined = 0;
    size_t i;
    json_t *r;
    json_array_foreach(l, i, r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        approved += !strcmp(st, "approved");
        declined += !strcmp(st, "declined");
    }
    assert_int_equal(approved, 1);
    assert_int_equal(declined, 1);
    json_decref(l);
}

/* The routes on the agent socket, without a connection. */
static unsigned call(sqlite3 *db, const char *method, const char *url, const char *body,
                     json_t **out)
{
    static struct agentd ad;
    ad.db = db;
    struct api_call c = { .ad = &ad, .method = method, .url = url, .body = body,
                          .body_len = body ? strlen(body) : 0, .status = 200 };
    api_route(&c);
    *out = c.out;
    return c.status;
}

static void test_routes(void **state)
{
    sqlite3 *db = *state;
    json_t *o;
    assert_int_equal(call(db, "GET", "/v1/auth/state", NULL, &o), 200);
    assert_true(json_is_true(json_object_get(o, "setup_needed")));
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/auth/setup-code", NULL, &o), 200);
    char code[16];
    snprintf(code, sizeof code, "%s", json_string_value(json_object_get(o, "code")));
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/auth/setup", "{\"code\":1}", &o), 400);
    assert_string_equal(json_string_value(json_object_get(o, "field")), "code");
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/auth/login", "{\"username\":\"a\",\"password\":\"b\","
                          "\"admin\":true}", &o), 400);
    assert_non_null(strstr(json_string_value(json_object_get(o, "error")), "unknown field"));
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/auth/setup", "{\"code\":\"2222-2222-2222\","
                          "\"username\":\"boss\",\"password\":\"correct-horse\"}", &o), 403);
    json_decref(o);
    char body[256];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"username\":\"boss\",\"password\":"
             "\"correct-horse\",\"client\":\"192.0.2.10\"}", code);
    assert_int_equal(call(db, "POST", "/v1/auth/setup", body, &o), 201);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}",
             json_string_value(json_object_get(o, "token")));
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/auth/session", body, &o), 200);
    assert_string_equal(json_string_value(json_object_get(o, "username")), "boss");
    assert_null(json_object_get(o, "token"));
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/auth/logout", body, &o), 200);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/auth/session", body, &o), 401);
    json_decref(o);
    assert_int_equal(call(db, "GET", "/v1/accounts", NULL, &o), 200);
    assert_int_equal(json_array_size(o), 1);
    json_decref(o);
    assert_int_equal(call(db, "DELETE", "/v1/accounts/boss", NULL, &o), 409);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/unblock-requests", "{\"domain\":\"x.test\"}", &o), 201);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/unblock-requests/abc/approve", NULL, &o), 400);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/unblock-requests/99/approve", NULL, &o), 404);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/unblock-requests/1/approve", "{\"minutes\":-1}", &o),
                     400);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/unblock-requests/1/approve", "{\"minutes\":5}", &o),
                     200);
    json_decref(o);
    assert_int_equal(call(db, "GET", "/v1/auth/nothing", NULL, &o), 404);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/webd", "{\"fingerprint\":\"AA:BB\","
                          "\"blockpage_v4\":\"192.0.2.1\"}", &o), 200);
    json_decref(o);
    assert_int_equal(call(db, "GET", "/v1/webd", NULL, &o), 200);
    assert_string_equal(json_string_value(json_object_get(o, "fingerprint")), "AA:BB");
    assert_string_equal(json_string_value(json_object_get(o, "blockpage_v4")), "192.0.2.1");
    assert_true(json_is_null(json_object_get(o, "blockpage_v6")));
    json_decref(o);
    char *bp = accounts_meta_get(db, "webd.blockpage_v4");
    assert_string_equal(bp, "192.0.2.1");
    free(bp);
    assert_int_equal(call(db, "POST", "/v1/help", "{\"note\":\"slow PC\",\"by\":\"boss\"}", &o),
                     201);
    json_int_t hid = json_integer_value(json_object_get(o, "id"));
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/help", "{\"level\":1}", &o), 400);
    json_decref(o);
    assert_int_equal(call(db, "GET", "/v1/help", NULL, &o), 200);
    assert_int_equal(json_array_size(o), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0), "who")), "boss");
    json_decref(o);
    char path[64];
    snprintf(path, sizeof path, "/v1/help/%lld/close", (long long)hid);
    assert_int_equal(call(db, "POST", path, NULL, &o), 200);
    json_decref(o);
    assert_int_equal(call(db, "POST", path, NULL, &o), 404);
    json_decref(o);
    /* Other paths still reach the policy routes. */
    assert_int_equal(call(db, "GET", "/v1/groups", NULL, &o), 200);
    json_decref(o);
}

static void test_webstats(void **state)
{
    (void)state;
    const int64_t now = 1800003600;   /* an hour boundary */
    webstats_note("allowed", NULL, 40, now - 7200);
    webstats_note("blocked", "ads", 0, now - 7200);
    webstats_note("blocked", "ads", 0, now + 10);
    webstats_note("blocked", "malware", 0, now + 20);
    webstats_note("blocked", "no-such-category", 0, now + 30);
    webstats_note("allowed", NULL, -5, now);           /* nonsense counts are ignored */
    webstats_note("neighbour", NULL, 0, now);
    webstats_note("blocked", "ads", 0, now - 30 * 3600); /* older than the window */
    json_t *o = webstats_json(now + 60);
    json_t *hours = json_object_get(o, "hours");
    assert_int_equal(json_array_size(hours), 24);
    json_t *last = json_array_get(hours, 23), *two = json_array_get(hours, 21);
    assert_int_equal(json_integer_value(json_object_get(last, "start")), now);
    assert_int_equal(json_integer_value(json_object_get(last, "blocks")), 3);
    assert_int_equal(json_integer_value(json_object_get(last, "queries")), 3);
    assert_int_equal(json_integer_value(json_object_get(two, "queries")), 41);
    assert_int_equal(json_integer_value(json_object_get(two, "blocks")), 1);
    json_t *top = json_object_get(o, "top_categories");
    assert_int_equal(json_array_size(top), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "category")), "ads");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(top, 0), "count")), 2);
    json_decref(o);
    /* A day later the old hours have rolled out. */
    o = webstats_json(now + 25 * 3600);
    json_t *h;
    size_t i;
    json_array_foreach(json_object_get(o, "hours"), i, h)
        assert_int_equal(json_integer_value(json_object_get(h, "queries")), 0);
    assert_int_equal(json_array_size(json_object_get(o, "top_categories")), 0);
    json_decref(o);
}

/* Password change: the old one must be right, the new one valid and different; the
 * account's other sessions end, this one stays; must_change is cleared. */
static void test_password_change(void **state)
{
    sqlite3 *db = *state;
    struct acct_session s, other, q;
    int64_t retry;
    make_owner(db, &s);
    assert_int_equal(accounts_login(db, "boss", "correct-horse", "192.0.2.11", T0, &other,
                                    &retry, err, sizeof err), 0);
    assert_int_equal(accounts_password_change(db, s.token, "wrong-horse", "new-pass-2026", T0,
                                              &retry, err, sizeof err), -2);
    assert_non_null(strstr(err, "old_password:"));
    assert_int_equal(accounts_password_change(db, s.token, "correct-horse", "short", T0, &retry,
                                              err, sizeof err), -1);
    assert_non_null(strstr(err, "new_password:"));
    assert_int_equal(accounts_password_change(db, s.token, "correct-horse", "correct-horse", T0,
                                              &retry, err, sizeof err), -1);
    assert_non_null(strstr(err, "differ"));
    assert_int_equal(accounts_password_change(db, "f00", "correct-horse", "new-pass-2026", T0,
                                              &retry, err, sizeof err), -1);
    assert_non_null(strstr(err, "token:"));
    assert_int_equal(accounts_password_change(db, s.token, "correct-horse", "new-pass-2026", T0,
                                              &retry, err, sizeof err), 0);
    assert_int_equal(accounts_session(db, s.token, T0 + 1, &q), 0);
    assert_int_equal(accounts_session(db, other.token, T0 + 1, &q), -1);
    assert_int_equal(accounts_login(db, "boss", "correct-horse", "192.0.2.11", T0, &other,
                                    &retry, err, sizeof err), -2);
    assert_int_equal(accounts_login(db, "boss", "new-pass-2026", "192.0.2.11", T0, &other,
                                    &retry, err, sizeof err), 0);
    /* Wrong old passwords count towards the lockout like wrong sign-ins. */
    for (int i = 0; i < ACCT_FAIL_MAX; i++)
        accounts_password_change(db, s.token, "guess-guess-1", "new-pass-2027", T0, &retry, err,
                                 sizeof err);
    assert_int_equal(accounts_password_change(db, s.token, "new-pass-2026", "new-pass-2027", T0,
                                              &retry, err, sizeof err), -3);
    assert_true(retry > 0);
    /* An account an owner added starts with must_change; changing clears it. */
    assert_int_equal(accounts_add_initial(db, "hanako", "given-by-boss", "viewer", 1, T0, err,
                                          sizeof err), 0);
    struct acct_session h;
    assert_int_equal(accounts_login(db, "hanako", "given-by-boss", "192.0.2.12", T0, &h, &retry,
                                    err, sizeof err), 0);
    assert_int_equal(h.must_change, 1);
    assert_int_equal(accounts_session(db, h.token, T0 + 1, &q), 0);
    assert_int_equal(q.must_change, 1);
    assert_int_equal(accounts_password_change(db, h.token, "given-by-boss", "her-own-pw-2026", T0,
                                              &retry, err, sizeof err), 0);
    assert_int_equal(accounts_session(db, h.token, T0 + 1, &q), 0);
    assert_int_equal(q.must_change, 0);
    char otp[16];
    accounts_one_time_password(otp, sizeof otp);
    assert_int_equal(strlen(otp), 14);
    assert_int_equal(accounts_check_password(otp, "x", err, sizeof err), 0);
    /* An owner resets a forgotten password: her sessions end, the old password stops
     * working, the one-time one works and must be changed. */
    assert_int_equal(accounts_reset(db, "hanako", otp, sizeof otp, err, sizeof err), 0);
    assert_int_equal(accounts_session(db, h.token, T0 + 1, &q), -1);
    assert_int_equal(accounts_login(db, "hanako", "her-own-pw-2026", "192.0.2.12", T0, &h,
                                    &retry, err, sizeof err), -2);
    assert_int_equal(accounts_login(db, "hanako", otp, "192.0.2.13", T0, &h, &retry, err,
                                    sizeof err), 0);
    assert_int_equal(h.must_change, 1);
    assert_int_equal(accounts_reset(db, "nobody", otp, sizeof otp, err, sizeof err), -1);
    assert_non_null(strstr(err, "no account"));
}

static int64_t count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A change made on behalf of a web account is audited with the account's name; one made
 * on the socket without it stays plain "owner". */
static void test_audit_actor(void **state)
{
    sqlite3 *db = *state;
    static struct agentd ad;
    ad.db = db;
    const char *b1 = "{\"pattern\":\"one.test\",\"kind\":\"block\"}";
    const char *b2 = "{\"pattern\":\"two.test\",\"kind\":\"block\"}";
    struct api_call c = { .ad = &ad, .method = "POST", .url = "/v1/rules", .body = b1,
                          .body_len = strlen(b1), .status = 200, .account = "alice" };
    api_route(&c);
    assert_int_equal(c.status, 201);
    json_decref(c.out);
    struct api_call d = { .ad = &ad, .method = "POST", .url = "/v1/rules", .body = b2,
                          .body_len = strlen(b2), .status = 200 };
    api_route(&d);
    assert_int_equal(d.status, 201);
    json_decref(d.out);
    struct api_call e = { .ad = &ad, .method = "POST", .url = "/v1/accounts",
                          .body = "{\"username\":\"kenji\",\"role\":\"viewer\"}",
                          .status = 200, .account = "alice" };
    e.body_len = strlen(e.body);
    api_route(&e);
    assert_int_equal(e.status, 201);
    const char *otp = json_string_value(json_object_get(e.out, "initial_password"));
    assert_non_null(otp);
    assert_int_equal(strlen(otp), 14);
    assert_true(json_is_true(json_object_get(e.out, "must_change")));
    json_decref(e.out);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE what='rule.add' AND"
                               " account='alice' AND who='owner'"), 1);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE what='rule.add' AND"
                               " account IS NULL"), 1);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE what='account.add' AND"
                               " account='alice'"), 1);
    /* A header value that is not a username is ignored, not stored. */
    struct api_call f = { .ad = &ad, .method = "DELETE", .url = "/v1/accounts/kenji",
                          .status = 200, .account = "bad name'; --" };
    api_route(&f);
    assert_int_equal(f.status, 200);
    json_decref(f.out);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE what='account.remove' AND"
                               " account IS NULL"), 1);
    /* GET /v1/audit shows the account. */
    struct api_call g = { .ad = &ad, .method = "GET", .url = "/v1/audit", .status = 200 };
    api_route(&g);
    assert_int_equal(g.status, 200);
    int seen = 0;
    size_t i;
    json_t *a;
    json_array_foreach(g.out, i, a)
        seen += json_string_value(json_object_get(a, "account")) &&
                !strcmp(json_string_value(json_object_get(a, "account")), "alice");
    assert_int_equal(seen, 2);
    json_decref(g.out);
}

/* The hourly counters survive a restart: what was counted is written to the database
 * and loaded again by the next attach. */
static void test_webstats_persist(void **state)
{
    sqlite3 *db = *state;
    const int64_t now = 1800007200;
    assert_int_equal(webstats_attach(db, now, err, sizeof err), 0);
    webstats_note("allowed", NULL, 100, now - 3600);
    webstats_note("blocked", "malware", 0, now - 3600);
    webstats_note("blocked", "ads", 0, now + 5);
    webstats_flush(now + 6);
    webstats_note("blocked", "ads", 0, now + 7);   /* unflushed: lost like a crash would */
    /* "restart": memory is cleared and the database read back */
    assert_int_equal(webstats_attach(NULL, 0, err, sizeof err), 0);
    json_t *o = webstats_json(now + 60);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(o, "hours"),
                                                                       23), "blocks")), 0);
    json_decref(o);
    assert_int_equal(webstats_attach(db, now + 60, err, sizeof err), 0);
    o = webstats_json(now + 60);
    json_t *hours = json_object_get(o, "hours");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hours, 22), "queries")), 101);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hours, 22), "blocks")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hours, 23), "blocks")), 1);
    assert_int_equal(json_array_size(json_object_get(o, "top_categories")), 2);
    json_decref(o);
    /* A note after the flush interval writes on its own. */
    webstats_note("blocked", "ads", 0, now + 60 + WEBSTATS_FLUSH_SECS);
    assert_int_equal(count(db, "SELECT blocks FROM webstats WHERE hour=1800007200"), 2);
    webstats_attach(NULL, 0, NULL, 0);
}

/* The settings actions that reach out answer in words before any network use when there
 * is nothing to do or the input is wrong. */
static void test_owner_settings_routes(void **state)
{
    sqlite3 *db = *state;
    static struct agentd ad;
    ad.db = db;
    ad.state_dir = "/nonexistent-otasuke-test";
    ad.hub = NULL;
    ad.hub_dir = NULL;
    json_t *o;
    assert_int_equal(call(db, "POST", "/v1/notify/test", NULL, &o), 409);
    assert_non_null(strstr(json_string_value(json_object_get(o, "error")), "nothing to test"));
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/accounts/nobody/reset", NULL, &o), 404);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/accounts/nobody/reset", "{}", &o), 400);
    json_decref(o);
    assert_int_equal(call(db, "GET", "/v1/notify/test", NULL, &o), 200);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "idle");
    json_decref(o);
    assert_int_equal(call(db, "PUT", "/v1/notify/test", NULL, &o), 405);
    json_decref(o);
    struct api_call c = { .ad = &ad, .method = "GET", .url = "/v1/hub/enrolment", .status = 200 };
    api_route(&c);
    assert_int_equal(c.status, 200);
    assert_true(json_is_false(json_object_get(c.out, "enrolled")));
    json_decref(c.out);
    assert_int_equal(call(db, "POST", "/v1/hub/probe", "{\"url\":\"http://hub.test\"}", &o), 400);
    assert_string_equal(json_string_value(json_object_get(o, "field")), "url");
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/hub/probe", "{\"url\":\"https://a b\"}", &o), 400);
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/hub/probe", "{\"address\":\"https://hub.test\"}", &o), 400);
    assert_string_equal(json_string_value(json_object_get(o, "field")), "address");
    json_decref(o);
    assert_int_equal(call(db, "POST", "/v1/hub/enroll", "{\"url\":\"https://hub.test\"}", &o), 400);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_owner_settings_routes, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_password_change, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_audit_actor, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_webstats_persist, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_migrate_idempotent, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_setup_code_stable_and_shaped, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_setup_wrong_code_then_right, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_setup_throttled_per_address, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_login_session_logout, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_login_lockout_per_user, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_failures_outside_window_do_not_add_up, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_accounts_roles, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_unblock_requests, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_routes, open_db, close_db),
        cmocka_unit_test(test_webstats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
