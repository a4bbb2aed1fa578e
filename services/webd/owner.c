/* HTTPS side: the owner UI files and /api, forwarded to the agent after the checks that
 * make it safe to expose: session cookie -> agent session lookup, CSRF header equal to
 * the session's token on every state-changing method, same-origin Origin when the browser
 * sends one, role (viewers read only; accounts are for owners). Sessions are looked up on
 * every request, so a logout or account removal takes effect at once. */
#include "webd.h"
#include "apiclient.h"
#include "webd_parse.h"

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sess {
    char username[64], role[16], csrf[80];
    int must_change;   /* an owner set this password: nothing but changing it is allowed */
};

static int is_read(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD");
}

/* Agent call on behalf of account (NULL before sign-in: the agent then records changes
 * as the plain owner); on transport failure answers 502 itself and returns -1. */
static long agent_as(struct webd *w, struct MHD_Connection *c, const char *account,
                     const char *method, const char *path, const char *body, size_t len,
                     char **resp)
{
    char err[512];
    long st = apiclient_request_as(w->agent_socket, account, method, path, body, len, resp, err,
                                   sizeof err);
    if (st < 0) {
        webd_send_error(c, 502, "the box's agent is not answering; wait a minute and reload "
                        "(if it lasts, restart the box)", NULL, 1);
        *resp = NULL;
    }
    return st;
}

static long agent(struct webd *w, struct MHD_Connection *c, const char *method,
                  const char *path, const char *body, size_t len, char **resp)
{
    return agent_as(w, c, NULL, method, path, body, len, resp);
}

/* Looks the cookie's session up at the agent: 1 found, 0 none, -1 answered (502). */
static int session_of(struct webd *w, struct MHD_Connection *c, char *token, size_t tlen,
                      struct sess *s)
{
    const char *cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie");
    if (webd_cookie_get(cookie, WEBD_COOKIE, token, tlen) != 64)
        return 0;
    json_t *q = json_pack("{s:s}", "token", token);
    char *b = json_dumps(q, JSON_COMPACT), *resp = NULL;
    json_decref(q);
    long st = agent(w, c, "POST", "/v1/auth/session", b, strlen(b), &resp);
    free(b);
    if (st < 0)
        return -1;
    json_t *a = st == 200 ? json_loads(resp, 0, NULL) : NULL;
    free(resp);
    if (!a)
        return 0;
    snprintf(s->username, sizeof s->username, "%s",
             json_string_value(json_object_get(a, "username")) ?: "");
    snprintf(s->role, sizeof s->role, "%s", json_string_value(json_object_get(a, "role")) ?: "");
    snprintf(s->csrf, sizeof s->csrf, "%s", json_string_value(json_object_get(a, "csrf")) ?: "");
    s->must_change = json_is_true(json_object_get(a, "must_change"));
    json_decref(a);
    return s->username[0] && s->csrf[0] ? 1 : 0;
}

/* Browsers send Origin on every cross-site or state-changing fetch: when present it must
 * name this very host over https, whatever the cookie says (SameSite is a second line). */
static int origin_ok(struct MHD_Connection *c)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") && strcmp(site, "none"))
        return 0;
    if (!origin)
        return 1;
    char want[320];
    snprintf(want, sizeof want, "https://%s", host ? host : "");
    return host && !strcmp(origin, want);
}

static int csrf_ok(struct MHD_Connection *c, const struct sess *s)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
    size_t n = strlen(s->csrf);
    return h && strlen(h) == n && sodium_memcmp(h, s->csrf, n) == 0;
}

static enum MHD_Result relay(struct MHD_Connection *c, long st, char *resp,
                             const char *const *extra)
{
    const char *b = resp ? resp : "null";
    /* The agent answers JSON except for a few text documents (incident reports). */
    const char *p = b + strspn(b, " \t\r\n");
    int json = *p == '{' || *p == '[' || *p == '"' || !strncmp(p, "null", 4);
    enum MHD_Result r = webd_send(c, (unsigned)st, json ? "application/json"
                                  : "text/plain; charset=utf-8", b, strlen(b), 1, extra);
    free(resp);
    return r;
}

/* setup / login: add the client address, forward, turn the token into the cookie. */
static enum MHD_Result sign_in(struct webd *w, struct MHD_Connection *c, const char *what,
                               struct webd_req *r)
{
    json_t *o = r && r->len ? json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return webd_send_error(c, 400, "the request must be a JSON object", "body", 1);
    }
    char addr[64], path[64];
    webd_client_addr(c, addr, sizeof addr);
    json_object_set_new(o, "client", json_string(addr));
    char *b = json_dumps(o, JSON_COMPACT), *resp = NULL;
    json_decref(o);
    snprintf(path, sizeof path, "/v1/auth/%s", what);
    long st = agent(w, c, "POST", path, b, strlen(b), &resp);
    if (b)
        sodium_memzero(b, strlen(b));   /* held a password */
    free(b);
    if (st < 0)
        return MHD_YES;
    json_t *a = st / 100 == 2 ? json_loads(resp, 0, NULL) : NULL;
    const char *tok = json_string_value(json_object_get(a, "token"));
    if (!tok || strlen(tok) != 64) {
        json_decref(a);
        return relay(c, st == 200 || st == 201 ? 502 : st, resp, NULL);
    }
    free(resp);
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict;"
             " Max-Age=43200", WEBD_COOKIE, tok);
    json_object_del(a, "token");
    char *out = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    const char *extra[] = { "Set-Cookie", cookie, NULL };
    enum MHD_Result ret = webd_send(c, (unsigned)st, "application/json", out ? out : "{}",
                                    out ? strlen(out) : 2, 1, extra);
    free(out);
    return ret;
}

struct qs {
    char *buf;
    size_t len, cap;
    int bad;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    struct qs *q = cls;
    char ek[256], ev[1024];
    if (apiclient_escape(key, ek, sizeof ek) < 0 ||
        apiclient_escape(value ? value : "", ev, sizeof ev) < 0) {
        q->bad = 1;
        return MHD_NO;
    }
    int n = snprintf(q->buf + q->len, q->cap - q->len, "%c%s=%s", q->len ? '&' : '?', ek, ev);
    if (n < 0 || (size_t)n >= q->cap - q->len) {
        q->bad = 1;
        return MHD_NO;
    }
    q->len += (size_t)n;
    return MHD_YES;
}

/* /api/X -> /v1/X for a signed-in user. */
static enum MHD_Result forward(struct webd *w, struct MHD_Connection *c, const char *sub,
                               const char *method, struct webd_req *r, const struct sess *s)
{
    if (!strncmp(sub, "/accounts", 9) && strcmp(s->role, "owner"))
        return webd_send_error(c, 403, "only an owner can see or change accounts", NULL, 1);
    char path[2048], q[1600];
    struct qs qq = { q, 0, sizeof q, 0 };
    q[0] = '\0';
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &qq);
    if (qq.bad)
        return webd_send_error(c, 400, "query string too long or malformed", NULL, 1);
    if (snprintf(path, sizeof path, "/v1%s%s", sub, q) >= (int)sizeof path)
        return webd_send_error(c, 414, "address too long", NULL, 1);
    const char *body = r ? r->body : NULL;
    size_t len = r ? r->len : 0;
    char *owned = NULL;
    /* Decisions on unblock requests, help requests and incident steps are recorded with
     * the signed-in user's name. */
    if ((!strncmp(sub, "/unblock-requests/", 18) || !strncmp(sub, "/help", 5) ||
         (!strncmp(sub, "/incidents/", 11) && strcmp(sub, "/incidents/settings"))) &&
        !strcmp(method, "POST")) {
        json_t *o = len ? json_loadb(body, len, 0, NULL) : json_object();
        if (json_is_object(o)) {
            json_object_set_new(o, "by", json_string(s->username));
            owned = json_dumps(o, JSON_COMPACT);
            body = owned;
            len = owned ? strlen(owned) : 0;
        }
        json_decref(o);
    }
    char *resp = NULL;
    long st = agent_as(w, c, s->username, method, path, body, len, &resp);
    free(owned);
    if (st < 0)
        return MHD_YES;
    return relay(c, st, resp, NULL);
}

/* The signed-in account's own password: the agent checks the old one and ends the
 * account's other sessions; this one stays. */
static enum MHD_Result change_password(struct webd *w, struct MHD_Connection *c,
                                       struct webd_req *r, const char *token,
                                       const struct sess *s)
{
    json_t *o = r && r->len ? json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(o) || json_object_get(o, "token")) {
        json_decref(o);
        return webd_send_error(c, 400, "send {\"old_password\": ..., \"new_password\": ...}",
                               "body", 1);
    }
    json_object_set_new(o, "token", json_string(token));
    char *b = json_dumps(o, JSON_COMPACT), *resp = NULL;
    json_decref(o);
    if (!b)
        return webd_send_error(c, 500, "out of memory", NULL, 1);
    long st = agent_as(w, c, s->username, "POST", "/v1/auth/password", b, strlen(b), &resp);
    sodium_memzero(b, strlen(b));   /* held two passwords */
    free(b);
    return st < 0 ? MHD_YES : relay(c, st, resp, NULL);
}

static enum MHD_Result api(struct webd *w, struct MHD_Connection *c, const char *url,
                           const char *method, struct webd_req *r)
{
    const char *sub = url + 4;   /* "/auth/login", "/rules", ... */
    int read = is_read(method);
    if (!read && !origin_ok(c))
        return webd_send_error(c, 403, "request from another site refused", NULL, 1);
    if (!strcmp(sub, "/auth/state") && read) {
        char *resp = NULL;
        long st = agent(w, c, "GET", "/v1/auth/state", NULL, 0, &resp);
        return st < 0 ? MHD_YES : relay(c, st, resp, NULL);
    }
    if ((!strcmp(sub, "/auth/setup") || !strcmp(sub, "/auth/login")) && !strcmp(method, "POST"))
        return sign_in(w, c, sub + 6, r);
    char token[80];
    struct sess s;
    memset(&s, 0, sizeof s);
    int have = session_of(w, c, token, sizeof token, &s);
    if (have < 0)
        return MHD_YES;
    if (!have)
        return webd_send_error(c, 401, "please sign in (your session has ended)", NULL, 1);
    if (!read && !csrf_ok(c, &s))
        return webd_send_error(c, 403, "security token missing or wrong; reload the page",
                               "X-CSRF-Token", 1);
    if (!strcmp(sub, "/auth/session") && read) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "username", s.username, "role", s.role,
                              "csrf", s.csrf, "must_change", s.must_change);
        char *out = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return relay(c, 200, out, NULL);
    }
    if (!strcmp(sub, "/auth/logout") && !strcmp(method, "POST")) {
        json_t *q = json_pack("{s:s}", "token", token);
        char *b = json_dumps(q, JSON_COMPACT), *resp = NULL;
        json_decref(q);
        long st = agent(w, c, "POST", "/v1/auth/logout", b, strlen(b), &resp);
        free(b);
        if (st < 0)
            return MHD_YES;
        static const char *const extra[] = { "Set-Cookie", WEBD_COOKIE "=; Path=/; Secure;"
                                             " HttpOnly; SameSite=Strict; Max-Age=0", NULL };
        return relay(c, st, resp, extra);
    }
    if (!strcmp(sub, "/auth/password") && !strcmp(method, "POST"))
        return change_password(w, c, r, token, &s);
    if (s.must_change)
        return webd_send_error(c, 403, "choose your own password first (the one you signed in "
                               "with was set by an owner)", "must_change", 1);
    if (!strncmp(sub, "/auth", 5) || !strncmp(sub, "/webd", 5) || !strcmp(sub, "/delegated"))
        return webd_send_error(c, 404, "no such API path", NULL, 1);
    if (!read && strcmp(s.role, "owner"))
        return webd_send_error(c, 403, "your account can look but not change anything; ask "
                               "an owner", NULL, 1);
    return forward(w, c, sub, method, r, &s);
}

/* The owner UI answers only to the box's addresses and its own names. Any other name
 * reaching this listener is a blocked site whose visitor clicked through the certificate
 * warning (show the block page), or a DNS-rebinding attempt (which then finds no UI). */
static int own_host(const struct webd *w, struct MHD_Connection *c)
{
    char host[256];
    int kind = webd_host_parse(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"), host,
                               sizeof host);
    if (kind != 1)
        return 1;   /* IP literal, or missing/bad (answered by the normal checks) */
    if (!strcmp(host, "localhost"))
        return 1;
    for (int i = 0; w->names[i]; i++)
        if (!strcasecmp(host, w->names[i]))
            return 1;
    return 0;
}

enum MHD_Result webd_owner_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls)
{
    (void)version;
    struct webd *w = cls;
    if (!own_host(w, c))
        return webd_block_handler(cls, c, url, method, version, upload, upload_size, con_cls);
    struct webd_req *r = NULL;
    int restore = !strcmp(url, "/api/restore");
    /* Only a signed-in owner may send the large restore body: check before reading any of
     * it, so anonymous clients cannot make us buffer 32 MiB per connection. */
    if (restore && !*con_cls) {
        char token[80];
        struct sess s;
        memset(&s, 0, sizeof s);
        int have = session_of(w, c, token, sizeof token, &s);
        if (have < 0)
            return MHD_YES;
        if (!have || strcmp(s.role, "owner") || !csrf_ok(c, &s) || !origin_ok(c))
            return webd_send_error(c, have ? 403 : 401, have ? "only an owner can restore, "
                                   "from this page" : "please sign in (your session has ended)",
                                   NULL, 1);
    }
    size_t max = restore ? WEBD_RESTORE_MAX : WEBD_BODY_MAX;
    int rc = webd_collect(con_cls, upload, upload_size, max, &r);
    if (rc < 0)
        return MHD_NO;
    if (rc > 0)
        return MHD_YES;
    if (r->over)
        return webd_send_error(c, 413, "request body too large", "body", 1);
    if (!strncmp(url, "/api/", 5))
        return api(w, c, url, method, r);
    if (!is_read(method))
        return webd_send_error(c, 405, "method not allowed", NULL, 1);
    const char *path = url;
    const char *last = strrchr(url, '/');
    if (!strcmp(url, "/") || (last && !strchr(last, '.')))
        path = "/index.html";   /* the UI's own routes */
    if (webd_path_ok(path) < 0)
        return webd_send_error(c, 404, "no such page", NULL, 1);
    char root[4096];
    snprintf(root, sizeof root, "%s/owner", w->ui_dir);
    return webd_send_file(c, root, path, 1);
}
