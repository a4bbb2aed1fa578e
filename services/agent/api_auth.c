/* Local API for webd: setup, login, sessions, accounts, unblock requests, webd facts.
 * Only processes on the agent socket reach these (root, the agent's group: webd and
 * otasukectl); webd never forwards /v1/auth or /v1/webd from the network and enforces the
 * session, CSRF token and role itself before forwarding anything else. */
#include "accounts.h"
#include "agentd.h"
#include "api.h"

#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void afail(struct api_call *c, unsigned status, const char *msg, const char *field)
{
    c->status = status;
    json_decref(c->out);
    c->out = api_error_json(msg, field);
}

/* Module errors are "field: what"; a "database" prefix is ours, not the caller's. */
static void afail_err(struct api_call *c, unsigned status, const char *err)
{
    char field[32] = "";
    const char *colon = strchr(err, ':');
    if (colon && (size_t)(colon - err) < sizeof field) {
        memcpy(field, err, (size_t)(colon - err));
        field[colon - err] = '\0';
    }
    int internal = strcmp(field, "database") == 0;
    afail(c, internal ? 500 : status, err, field[0] && !internal ? field : NULL);
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *session_json(const struct acct_session *s, int with_token)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:b}", "username", s->username, "role",
                          s->role, "csrf", s->csrf, "expires_at", (json_int_t)s->expires,
                          "must_change", s->must_change);
    if (with_token)
        json_object_set_new(o, "token", json_string(s->token));
    return o;
}

static const struct api_field setup_fields[] = {
    { "code", API_STR, 1, 32 }, { "username", API_STR, 1, 64 }, { "password", API_STR, 1, 256 },
    { "client", API_STR, 0, 64 }, { NULL, 0, 0, 0 },
};
static const struct api_field login_fields[] = {
    { "username", API_STR, 1, 64 }, { "password", API_STR, 1, 256 },
    { "client", API_STR, 0, 64 }, { NULL, 0, 0, 0 },
};
static const struct api_field token_fields[] = {
    { "token", API_STR, 1, 128 }, { NULL, 0, 0, 0 },
};
static const struct api_field account_fields[] = {
    { "username", API_STR, 1, 64 }, { "password", API_STR, 0, 256 },
    { "role", API_STR, 1, 8 }, { "must_change", API_BOOL, 0, 0 }, { NULL, 0, 0, 0 },
};
static const struct api_field password_fields[] = {
    { "token", API_STR, 1, 128 }, { "old_password", API_STR, 1, 256 },
    { "new_password", API_STR, 1, 256 }, { NULL, 0, 0, 0 },
};
static const struct api_field request_fields[] = {
    { "domain", API_STR, 1, 260 }, { "name", API_STR, 0, 64 }, { "reason", API_STR, 0, 500 },
    { "client", API_STR, 0, 64 }, { NULL, 0, 0, 0 },
};
static const struct api_field decide_fields[] = {
    { "minutes", API_INT, 0, 525600 }, { "by", API_STR, 0, 64 }, { NULL, 0, 0, 0 },
};
static const struct api_field help_fields[] = {
    { "note", API_STR, 0, 1000 }, { "by", API_STR, 0, 64 }, { NULL, 0, 0, 0 },
};
static const struct api_field webd_fields[] = {
    { "fingerprint", API_STR, 1, 128 }, { "listen", API_STR, 0, 256 },
    { "blockpage_v4", API_STR, 0, 15 }, { "blockpage_v6", API_STR, 0, 45 }, { NULL, 0, 0, 0 },
};

static void auth(struct api_call *c, const char *what, json_t *body)
{
    sqlite3 *db = c->ad->db;
    char err[AGENT_ERR];
    int64_t now = time(NULL), retry = 0;
    struct acct_session s;
    memset(&s, 0, sizeof s);
    int post = !strcmp(c->method, "POST");
    if (!strcmp(what, "state") && !strcmp(c->method, "GET")) {
        int owner = accounts_owner_exists(db);
        c->out = json_pack("{s:b, s:b}", "owner_exists", owner > 0, "setup_needed", owner == 0);
    } else if (!strcmp(what, "setup-code") && post) {
        char code[16];
        int64_t exp;
        if (accounts_setup_code(db, now, code, sizeof code, &exp, err, sizeof err) < 0)
            return afail_err(c, 409, err);
        c->out = json_pack("{s:s, s:I}", "code", code, "expires_at", (json_int_t)exp);
    } else if (!strcmp(what, "setup") && post) {
        int rc = accounts_setup(db, str(body, "code"), str(body, "username"),
                                str(body, "password"), str(body, "client"), now, &s, &retry,
                                err, sizeof err);
        if (rc == -3) {
            afail(c, 429, err, "code");
            json_object_set_new(c->out, "retry_after", json_integer(retry));
            return;
        }
        if (rc < 0)
            return afail_err(c, rc == -2 ? 403 : strstr(err, "already exists") ? 409 : 400, err);
        c->status = 201;
        c->out = session_json(&s, 1);
    } else if (!strcmp(what, "login") && post) {
        int rc = accounts_login(db, str(body, "username"), str(body, "password"),
                                str(body, "client"), now, &s, &retry, err, sizeof err);
        if (rc == -3) {
            afail(c, 429, err, "password");
            json_object_set_new(c->out, "retry_after", json_integer(retry));
            return;
        }
        if (rc < 0)
            return afail_err(c, rc == -2 ? 401 : 500, err);
        c->out = session_json(&s, 1);
    } else if (!strcmp(what, "session") && post) {
        if (accounts_session(db, str(body, "token"), now, &s) < 0)
            return afail(c, 401, "session: not signed in or the session has expired", "token");
        c->out = session_json(&s, 0);
    } else if (!strcmp(what, "password") && post) {
        int rc = accounts_password_change(db, str(body, "token"), str(body, "old_password"),
                                          str(body, "new_password"), now, &retry, err,
                                          sizeof err);
        if (rc == -3) {
            afail(c, 429, err, "old_password");
            json_object_set_new(c->out, "retry_after", json_integer(retry));
            return;
        }
        if (rc < 0)
            return afail_err(c, rc == -2 ? 403 : strncmp(err, "token", 5) ? 400 : 401, err);
        c->out = json_pack("{s:b}", "ok", 1);
    } else if (!strcmp(what, "logout") && post) {
        accounts_logout(db, str(body, "token"));
        c->out = json_pack("{s:b}", "ok", 1);
    } else {
        afail(c, 404, "no such path or method under /v1/auth", NULL);
    }
}

static void accounts(struct api_call *c, const char *name, const char *verb, json_t *body)
{
    char err[AGENT_ERR];
    if (!name && !strcmp(c->method, "GET")) {
        c->out = accounts_list(c->ad->db, err, sizeof err);
        if (!c->out)
            afail_err(c, 500, err);
    } else if (!name && !strcmp(c->method, "POST")) {
        /* Without a password the agent makes a one-time one, shown once to the owner who
         * hands it over; either way the new person changes it at first sign-in unless
         * must_change is false (otasukectl, scripts). */
        char otp[16];
        const char *pw = str(body, "password");
        json_t *mc = json_object_get(body, "must_change");
        if (!pw)
            accounts_one_time_password(otp, sizeof otp);
        if (accounts_add_initial(c->ad->db, str(body, "username"), pw ? pw : otp,
                                 str(body, "role"), mc ? json_is_true(mc) : 1, time(NULL),
                                 err, sizeof err) < 0)
            return afail_err(c, strstr(err, "already exists") ? 409 : 400, err);
        c->status = 201;
        c->out = json_pack("{s:s, s:s?, s:b}", "username", str(body, "username"),
                           "initial_password", pw ? NULL : otp, "must_change",
                           mc ? json_is_true(mc) : 1);
        sodium_memzero(otp, sizeof otp);
    } else if (name && !verb && !strcmp(c->method, "DELETE")) {
        if (accounts_remove(c->ad->db, name, err, sizeof err) < 0)
            return afail_err(c, strstr(err, "no account") ? 404 : 409, err);
        c->out = json_pack("{s:s}", "deleted", name);
    } else if (name && verb && !strcmp(verb, "reset") && !strcmp(c->method, "POST")) {
        char otp[16];
        if (accounts_reset(c->ad->db, name, otp, sizeof otp, err, sizeof err) < 0)
            return afail_err(c, strstr(err, "no account") ? 404 : 500, err);
        c->out = json_pack("{s:s, s:s, s:b}", "username", name, "initial_password", otp,
                           "must_change", 1);
        sodium_memzero(otp, sizeof otp);
    } else {
        afail(c, 405, "method not allowed here", NULL);
    }
}

static void requests(struct api_call *c, const char *id_s, const char *verb, json_t *body)
{
    char err[AGENT_ERR];
    if (!id_s && !strcmp(c->method, "GET")) {
        const char *st = c->conn ? MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND,
                                                              "status") : NULL;
        c->out = unblock_request_list(c->ad->db, st, err, sizeof err);
        if (!c->out)
            afail_err(c, 500, err);
    } else if (!id_s && !strcmp(c->method, "POST")) {
        int64_t id = unblock_request_add(c->ad->db, str(body, "domain"), str(body, "name"),
                                         str(body, "reason"), str(body, "client"), time(NULL),
                                         err, sizeof err);
        if (id < 0)
            return afail_err(c, strstr(err, "too many") ? 429 : 400, err);
        c->status = 201;
        c->out = json_pack("{s:I}", "id", (json_int_t)id);
    } else if (id_s && verb && !strcmp(c->method, "POST") &&
               (!strcmp(verb, "approve") || !strcmp(verb, "decline"))) {
        char *end;
        long long id = strtoll(id_s, &end, 10);
        if (*end || id <= 0)
            return afail(c, 400, "request id must be a positive integer", "id");
        json_t *m = json_object_get(body, "minutes");
        if (unblock_request_decide(c->ad->db, id, !strcmp(verb, "approve"),
                                   m ? json_integer_value(m) : 0, str(body, "by"), time(NULL),
                                   err, sizeof err) < 0)
            return afail_err(c, strstr(err, "no pending") ? 404 : 400, err);
        c->ad->dirty = 1;
        c->out = json_pack("{s:I, s:s}", "id", (json_int_t)id, "status",
                           !strcmp(verb, "approve") ? "approved" : "declined");
    } else {
        afail(c, 405, "method not allowed here", NULL);
    }
}

static void help(struct api_call *c, const char *id_s, const char *verb, json_t *body)
{
    char err[AGENT_ERR];
    if (!id_s && !strcmp(c->method, "GET")) {
        c->out = agent_query_json(c->ad->db, "SELECT id, created, who, note, status, closed_at,"
                                  " closed_by FROM help_requests ORDER BY id DESC LIMIT 200",
                                  NULL, 0, err, sizeof err);
        if (!c->out)
            afail_err(c, 500, err);
    } else if (!id_s && !strcmp(c->method, "POST")) {
        int64_t id = help_request_add(c->ad->db, str(body, "by"), str(body, "note"), time(NULL),
                                      err, sizeof err);
        if (id < 0)
            return afail_err(c, 409, err);
        c->status = 201;
        c->out = json_pack("{s:I}", "id", (json_int_t)id);
    } else if (id_s && verb && !strcmp(verb, "close") && !strcmp(c->method, "POST")) {
        char *end;
        long long id = strtoll(id_s, &end, 10);
        if (*end || id <= 0)
            return afail(c, 400, "help request id must be a positive integer", "id");
        if (help_request_close(c->ad->db, id, str(body, "by"), time(NULL), err, sizeof err) < 0)
            return afail_err(c, 404, err);
        c->out = json_pack("{s:I, s:s}", "id", (json_int_t)id, "status", "closed");
    } else {
        afail(c, 405, "method not allowed here", NULL);
    }
}

/* What webd reports at start: its certificate fingerprint (otasukectl status), where it
 * listens, and the block-page addresses it serves (for compiling "blockpage" answers). */
static const char *const webd_keys[] = { "fingerprint", "listen", "blockpage_v4",
                                         "blockpage_v6", NULL };

static void webd(struct api_call *c, json_t *body)
{
    char err[AGENT_ERR], key[40];
    if (!strcmp(c->method, "GET")) {
        c->out = json_object();
        for (int i = 0; webd_keys[i]; i++) {
            snprintf(key, sizeof key, "webd.%s", webd_keys[i]);
            char *v = accounts_meta_get(c->ad->db, key);
            json_object_set_new(c->out, webd_keys[i], v && *v ? json_string(v) : json_null());
            free(v);
        }
        return;
    }
    for (int i = 0; webd_keys[i]; i++) {
        snprintf(key, sizeof key, "webd.%s", webd_keys[i]);
        const char *v = str(body, webd_keys[i]);
        if (accounts_meta_set(c->ad->db, key, v ? v : "", err, sizeof err) < 0)
            return afail_err(c, 500, err);
    }
    c->ad->dirty = 1; /* the block-page addresses go into policy.set */
    c->out = json_pack("{s:b}", "ok", 1);
}

/* ---- audit actor ----
 * webd names the signed-in account in a header on every call it forwards. The agent's
 * socket is reachable only by root and its own group (webd, otasukectl), so the header
 * is trusted as given; anything on the network reaches the agent only through webd,
 * which sets it from the session, never from the browser. Changes keep their principal
 * ("owner": authorship, grants and explain are about principals) and the audit rows a
 * call wrote get the account in their own column. */

static const char *actor_of(struct api_call *c)
{
    const char *a = c->conn ? MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                          "X-Otasuke-Account") : c->account;
    char err[AGENT_ERR];
    return a && accounts_check_username(a, err, sizeof err) == 0 ? a : NULL;
}

int64_t api_actor_mark(struct api_call *c)
{
    if (!actor_of(c))
        return -1;
    sqlite3_stmt *st;
    int64_t id = -1;
    if (sqlite3_prepare_v2(c->ad->db, "SELECT coalesce(max(id), 0) FROM audit", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

void api_actor_stamp(struct api_call *c, int64_t mark)
{
    const char *who = actor_of(c);
    sqlite3_stmt *st;
    if (mark < 0 || !who || sqlite3_prepare_v2(c->ad->db, "UPDATE audit SET account=?1 WHERE"
                                               " id > ?2 AND who=?3 AND account IS NULL", -1,
                                               &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, who, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, mark);
    sqlite3_bind_text(st, 3, AGENT_OWNER, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

int api_auth_route(struct api_call *c)
{
    char path[256], *seg[6] = { 0 };
    if (strncmp(c->url, "/v1/", 4) || strlen(c->url) >= sizeof path)
        return 0;
    snprintf(path, sizeof path, "%s", c->url + 4);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, "/", &save); t && n < 5; t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    if (!seg[0])
        return 0;
    const struct api_field *fields = NULL;
    int post = !strcmp(c->method, "POST");
    if (!strcmp(seg[0], "auth")) {
        if (post && seg[1])
            fields = !strcmp(seg[1], "setup") ? setup_fields : !strcmp(seg[1], "login")
                     ? login_fields : !strcmp(seg[1], "session") || !strcmp(seg[1], "logout")
                     ? token_fields : !strcmp(seg[1], "password") ? password_fields : NULL;
    } else if (!strcmp(seg[0], "accounts")) {
        fields = post && !seg[1] ? account_fields : NULL;   /* NAME/reset: no body */
    } else if (!strcmp(seg[0], "unblock-requests")) {
        fields = post ? (seg[1] ? decide_fields : request_fields) : NULL;
    } else if (!strcmp(seg[0], "webd")) {
        fields = post ? webd_fields : NULL;
    } else if (!strcmp(seg[0], "help")) {
        fields = post ? help_fields : NULL;
    } else if (!strcmp(seg[0], "stats") && !seg[1] && !strcmp(c->method, "GET")) {
        c->out = webstats_json(time(NULL));
        return 1;
    } else {
        return 0;
    }
    json_t *body = NULL, *error = NULL;
    if (fields && (c->body_len || !seg[1] || (strcmp(seg[0], "unblock-requests") &&
                                              strcmp(seg[0], "help")))) {
        body = api_parse_body(c->body, c->body_len, fields, &error);
        if (!body) {
            c->status = 400;
            c->out = error;
            return 1;
        }
    } else if (!fields && c->body_len) {
        afail(c, 400, "this request takes no body", "body");
        return 1;
    }
    if (n > 3 || (n > 2 && strcmp(seg[0], "unblock-requests") && strcmp(seg[0], "help") &&
                  strcmp(seg[0], "accounts")) ||
        (n > 1 && !strcmp(seg[0], "webd")))
        afail(c, 404, "no such path", NULL);
    else if (!strcmp(seg[0], "auth"))
        seg[1] ? auth(c, seg[1], body) : afail(c, 404, "no such path", NULL);
    else if (!strcmp(seg[0], "accounts"))
        accounts(c, seg[1], seg[2], body);
    else if (!strcmp(seg[0], "unblock-requests"))
        requests(c, seg[1], seg[2], body);
    else if (!strcmp(seg[0], "help"))
        help(c, seg[1], seg[2], body);
    else if (!strcmp(seg[0], "webd") && (post || !strcmp(c->method, "GET")))
        webd(c, body);
    else
        afail(c, 405, "method not allowed here", NULL);
    json_decref(body);
    return 1;
}
