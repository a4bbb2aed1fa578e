/* MSP console on the hub's HTTPS listener: static files, operator sign-in by token
 * exchange, cookie sessions with CSRF tokens, and two read-only views the console needs
 * (audit trail, relayed policy changes of a box). See console.h for the routes.
 *
 * Sessions live in this process's memory (a bounded table): a restart signs everyone
 * out, and several hubds behind a load balancer need sticky sessions for the console.
 * That is the price of not storing session secrets in the database. */
#include "console.h"
#include "hubd.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSIONS_MAX     256
#define SESSION_IDLE     (30 * 60)        /* signed out after 30 min without a request */
#define SESSION_MAX_AGE  (12 * 3600)      /* and after 12 h whatever happens */
#define FILE_MAX         (4 * 1024 * 1024)
#define FAIL_SLOTS       128
#define FAIL_WINDOW      300              /* failed sign-ins counted over 5 minutes */
#define FAIL_PER_ADDR    5                /* per client address (IPv6: per /64) */
/* From everyone together. Tokens are 256-bit, so this is not about guessing: it bounds
 * log noise from a botnet, set high so that strangers cannot lock every operator out. */
#define FAIL_GLOBAL      1000

/* Strict: only our own scripts, styles and API; no inline script or style, no framing. */
#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
            "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; " \
            "frame-ancestors 'none'"

struct session {
    char id_hash[HUB_HASH_HEX + 1];       /* SHA-256 of the cookie value; "" = free slot */
    char csrf[HUB_TOKEN_HEX + 1];
    char token_hash[HUB_HASH_HEX + 1];    /* the operator's, re-checked on every request */
    char name[80];
    long long created, last;
};

struct fail { char addr[48]; long long first; int n; };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct session sessions[SESSIONS_MAX];
static struct fail fails[FAIL_SLOTS];
static long long global_first;
static int global_n;

int hub_console_match(const char *url)
{
    return !strcmp(url, "/console") || !strncmp(url, "/console/", 9);
}

/* ---- responses ---- */

static void secure_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
    MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type,
                                void *data, size_t len, enum MHD_ResponseMemoryMode mode,
                                const char *cookie, const char *extra_name,
                                const char *extra_value)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        return MHD_NO;
    }
    secure_headers(r);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (cookie)
        MHD_add_response_header(r, "Set-Cookie", cookie);
    if (extra_name)
        MHD_add_response_header(r, extra_name, extra_value);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *o,
                                 const char *cookie)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return MHD_NO;
    return send_buf(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE,
                    cookie, NULL, NULL);
}

static enum MHD_Result fail(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return send_json(c, status, json_pack("{s:s}", "error", msg), NULL);
}

/* ---- static files ---- */

static const char *mime(const char *path)
{
    static const char *const types[][2] = {
        { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
        { ".json", "application/json" }, { ".svg", "image/svg+xml" }, { ".png", "image/png" },
        { ".ico", "image/x-icon" }, { ".woff2", "font/woff2" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return NULL;
}

/* MHD has already decoded %XX, so an encoded "../" arrives here as "../" and is refused
 * like the plain one. */
int hub_console_path_ok(const char *rel)
{
    if (!*rel || strlen(rel) > 200)
        return 0;
    int seg_start = 1;
    for (const char *p = rel; *p; p++) {
        if (*p == '/') {
            if (seg_start)
                return 0;
            seg_start = 1;
            continue;
        }
        if (seg_start && *p == '.')
            return 0;
        seg_start = 0;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
            return 0;
    }
    return !seg_start;
}

static enum MHD_Result serve_file(struct hub *h, struct MHD_Connection *c, const char *rel)
{
    if (!hub_console_path_ok(rel))
        return fail(c, 404, "no such console file");
    const char *type = mime(rel);
    if (!type)
        return fail(c, 404, "no such console file");
    const char *dir = h->o.console_dir ? h->o.console_dir : HUB_CONSOLE_DIR_DEFAULT;
    char path[1024];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >= sizeof path)
        return fail(c, 404, "no such console file");
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (!strcmp(rel, "index.html"))
            log_error("console: %s: %s (set --console DIR)", path, fd < 0 ? strerror(e)
                      : "not a regular file under 4 MiB");
        return fail(c, 404, "no such console file");
    }
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
    close(fd);
    if (n != st.st_size) {
        free(buf);
        log_error("console: %s: short read", path);
        return fail(c, 500, "cannot read a console file; see the hub log");
    }
    /* Revalidated each time: files change with an upgrade, and they are small. */
    return send_buf(c, 200, type, buf, (size_t)n, MHD_RESPMEM_MUST_FREE, NULL, NULL, NULL);
}

/* ---- sessions ---- */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* A request from another site: its Origin is not this host, or the browser says so. */
static int foreign(struct MHD_Connection *c)
{
    const char *site = header(c, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return 1;
    const char *origin = header(c, "Origin"), *host = header(c, "Host");
    if (!origin)
        return 0;
    return !host || strncmp(origin, "https://", 8) != 0 || strcmp(origin + 8, host) != 0;
}

/* The session of this request's cookie (copied into out), 1 if there is a live one. */
static int session_get(struct hub *h, struct MHD_Connection *c, struct session *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, HUB_CONSOLE_COOKIE);
    if (!v || strlen(v) != HUB_TOKEN_HEX)
        return 0;
    char hash[HUB_HASH_HEX + 1];
    hub_sha256_hex(v, strlen(v), hash);
    long long now = hub_now();
    int found = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < SESSIONS_MAX; i++) {
        struct session *s = &sessions[i];
        if (!s->id_hash[0] || strcmp(s->id_hash, hash) != 0)
            continue;
        if (now - s->last > SESSION_IDLE || now - s->created > SESSION_MAX_AGE) {
            memset(s, 0, sizeof *s);
            break;
        }
        s->last = now;
        *out = *s;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&lock);
    if (!found)
        return 0;
    /* The operator may have been removed since: the session dies with its token. */
    char name[80];
    const char *p[] = { out->token_hash };
    if (hubdb_scalar(h->db, "SELECT name FROM operators WHERE token_hash = $1", 1, p, name,
                     sizeof name, NULL, 0) != 1)
        return 0;
    return 1;
}

static void session_drop(const char *id_hash)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < SESSIONS_MAX; i++)
        if (sessions[i].id_hash[0] && !strcmp(sessions[i].id_hash, id_hash))
            memset(&sessions[i], 0, sizeof sessions[i]);
    pthread_mutex_unlock(&lock);
}

/* New session for an operator; cookie value into id (HUB_TOKEN_HEX + 1). */
static void session_new(const char *name, const char *token_hash, char *id, char *csrf)
{
    hub_random_hex(32, id);
    hub_random_hex(32, csrf);
    long long now = hub_now();
    pthread_mutex_lock(&lock);
    /* A free or expired slot, else the least recently used one. */
    int pick = 0;
    for (int i = 0; i < SESSIONS_MAX; i++) {
        struct session *s = &sessions[i];
        if (!s->id_hash[0] || now - s->last > SESSION_IDLE ||
            now - s->created > SESSION_MAX_AGE) {
            pick = i;
            break;
        }
        if (s->last < sessions[pick].last)
            pick = i;
    }
    struct session *s = &sessions[pick];
    memset(s, 0, sizeof *s);
    hub_sha256_hex(id, strlen(id), s->id_hash);
    snprintf(s->csrf, sizeof s->csrf, "%s", csrf);
    snprintf(s->token_hash, sizeof s->token_hash, "%s", token_hash);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->created = s->last = now;
    pthread_mutex_unlock(&lock);
}

static int csrf_ok(struct MHD_Connection *c, const struct session *s)
{
    const char *t = header(c, "X-CSRF-Token");
    return t && strlen(t) == HUB_TOKEN_HEX && !foreign(c) &&
           sodium_memcmp(t, s->csrf, HUB_TOKEN_HEX) == 0;
}

int hub_operator_request(struct hub *h, struct MHD_Connection *c, const char *method,
                         char *name, size_t namelen)
{
    const char *a = header(c, "Authorization");
    if (a && !strncmp(a, "Bearer ", 7))
        return hub_operator_name(h, a + 7, name, namelen) == 1 ? 1 : 0;
    struct session s;
    if (!session_get(h, c, &s))
        return 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && !csrf_ok(c, &s))
        return -1;
    snprintf(name, namelen, "%s", s.name);
    return 1;
}

/* ---- sign-in rate limit ---- */

static void client_key(struct MHD_Connection *c, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, outlen, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        /* One /64 is one client: an IPv6 host can pick any address inside it. */
        struct in6_addr a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        memset(a.s6_addr + 8, 0, 8);
        inet_ntop(AF_INET6, &a, out, (socklen_t)outlen);
    }
}

/* Seconds this client must still wait before trying again, 0 if it may try now. */
static long long login_blocked(const char *addr, long long now)
{
    long long wait = 0;
    pthread_mutex_lock(&lock);
    if (global_n >= FAIL_GLOBAL && now - global_first < FAIL_WINDOW)
        wait = FAIL_WINDOW - (now - global_first);
    for (int i = 0; i < FAIL_SLOTS && !wait; i++)
        if (fails[i].addr[0] && !strcmp(fails[i].addr, addr) && fails[i].n >= FAIL_PER_ADDR &&
            now - fails[i].first < FAIL_WINDOW)
            wait = FAIL_WINDOW - (now - fails[i].first);
    pthread_mutex_unlock(&lock);
    return wait;
}

static void login_failed(const char *addr, long long now)
{
    pthread_mutex_lock(&lock);
    if (now - global_first >= FAIL_WINDOW) {
        global_first = now;
        global_n = 0;
    }
    global_n++;
    int slot = -1, oldest = 0;
    for (int i = 0; i < FAIL_SLOTS; i++) {
        if (fails[i].addr[0] && !strcmp(fails[i].addr, addr)) {
            slot = i;
            break;
        }
        if (fails[i].first < fails[oldest].first)
            oldest = i;
    }
    if (slot < 0) {
        slot = oldest;
        memset(&fails[slot], 0, sizeof fails[slot]);
        snprintf(fails[slot].addr, sizeof fails[slot].addr, "%s", addr);
    }
    if (now - fails[slot].first >= FAIL_WINDOW) {
        fails[slot].first = now;
        fails[slot].n = 0;
    }
    fails[slot].n++;
    pthread_mutex_unlock(&lock);
}

static void login_succeeded(const char *addr)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < FAIL_SLOTS; i++)
        if (fails[i].addr[0] && !strcmp(fails[i].addr, addr))
            memset(&fails[i], 0, sizeof fails[i]);
    pthread_mutex_unlock(&lock);
}

/* ---- sign-in, session, sign-out ---- */

static enum MHD_Result login(struct hub *h, struct MHD_Connection *c, const char *body,
                             size_t len)
{
    const char *ct = header(c, "Content-Type");
    /* JSON only: a cross-site HTML form cannot send it, so nobody can sign a visitor in
     * to the attacker's account (login CSRF). */
    if (!ct || strncmp(ct, "application/json", 16) != 0 || foreign(c))
        return fail(c, 403, "sign-in: send JSON from the console itself");
    char addr[48];
    client_key(c, addr, sizeof addr);
    long long now = hub_now();
    long long wait = login_blocked(addr, now);
    if (wait > 0) {
        char msg[160], ra[24];
        snprintf(msg, sizeof msg, "too many failed sign-ins; try again in %lld seconds", wait);
        snprintf(ra, sizeof ra, "%lld", wait);
        json_t *o = json_pack("{s:s, s:I}", "error", msg, "retry_after", (json_int_t)wait);
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s ? send_buf(c, 429, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE,
                            NULL, "Retry-After", ra) : MHD_NO;
    }
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *token = json_string_value(json_object_get(o, "token"));
    if (!json_is_object(o) || !token || json_object_size(o) != 1) {
        json_decref(o);
        return fail(c, 400, "sign-in: expected {\"token\": \"the operator token\"}");
    }
    char name[80], th[HUB_HASH_HEX + 1];
    int ok = hub_operator_name(h, token, name, sizeof name) == 1;
    hub_sha256_hex(token, strlen(token), th);
    json_decref(o);
    if (!ok) {
        login_failed(addr, now);
        /* Counted, never logged with the token; the address only goes to the log. */
        log_info("console: failed sign-in from %s", addr);
        return fail(c, 401, "unknown operator token (otasuke-hubd admin operator add NAME "
                    "prints one)");
    }
    login_succeeded(addr);
    char id[HUB_TOKEN_HEX + 1], csrf[HUB_TOKEN_HEX + 1], cookie[200];
    session_new(name, th, id, csrf);
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict; "
             "Max-Age=%d", HUB_CONSOLE_COOKIE, id, SESSION_MAX_AGE);
    hub_audit(h, name, "console-login", "operator signed in to the console");
    enum MHD_Result r = send_json(c, 200, json_pack("{s:s, s:s, s:i}", "operator", name,
                                                    "csrf", csrf, "idle_seconds",
                                                    SESSION_IDLE), cookie);
    sodium_memzero(id, sizeof id);
    sodium_memzero(cookie, sizeof cookie);
    return r;
}

static enum MHD_Result logout(struct hub *h, struct MHD_Connection *c)
{
    struct session s;
    if (!session_get(h, c, &s))
        return fail(c, 401, "not signed in");
    if (!csrf_ok(c, &s))
        return fail(c, 403, HUB_CSRF_REFUSED);
    session_drop(s.id_hash);
    hub_audit(h, s.name, "console-logout", "operator signed out of the console");
    static const char gone[] = HUB_CONSOLE_COOKIE "=; Path=/; Secure; HttpOnly; "
                               "SameSite=Strict; Max-Age=0";
    return send_json(c, 200, json_pack("{s:b}", "signed_out", 1), gone);
}

/* ---- console views ---- */

static int audit_row(int n, const char *const *v, void *ctx)
{
    if (n < 5)
        return 1;
    json_array_append_new(ctx, json_pack("{s:I, s:I, s:s, s:s, s:s}",
                                         "id", (json_int_t)atoll(v[0]),
                                         "at", (json_int_t)atoll(v[1]), "actor", v[2] ? v[2] : "",
                                         "action", v[3] ? v[3] : "",
                                         "detail", v[4] ? v[4] : ""));
    return 0;
}

static int int_arg(struct MHD_Connection *c, const char *k, long lo, long hi, long *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi)
        return -1;
    *out = x;
    return 1;
}

static enum MHD_Result audit(struct hub *h, struct MHD_Connection *c)
{
    long box = 0, lim = 100;
    if (int_arg(c, "box", 1, 1000000000L, &box) < 0)
        return fail(c, 400, "parameter 'box': expected a box id");
    if (int_arg(c, "limit", 1, 1000, &lim) < 0)
        return fail(c, 400, "parameter 'limit': expected 1..1000");
    char bs[24], ls[24], err[256];
    snprintf(bs, sizeof bs, "%ld", box);
    snprintf(ls, sizeof ls, "%ld", lim);
    const char *p[] = { bs, ls };
    json_t *rows = json_array();
    /* A box's records: its own (actor = its id) and those about it ("box N ..."). */
    long r = hubdb_exec(h->db, box
                        ? "SELECT id, at, actor, action, detail FROM audit WHERE actor = $1 OR "
                          "detail LIKE 'box ' || CAST($1 AS TEXT) || ' %' ORDER BY id DESC LIMIT $2"
                        : "SELECT id, at, actor, action, detail FROM audit WHERE "
                          "CAST($1 AS TEXT) = CAST($1 AS TEXT) ORDER BY id DESC LIMIT $2",
                        2, p, audit_row, rows, err, sizeof err);
    if (r < 0) {
        json_decref(rows);
        log_error("console audit: %s", err);
        return fail(c, 500, "storage error; see the hub log");
    }
    return send_json(c, 200, json_pack("{s:o}", "audit", rows), NULL);
}

/* Newest first, with the box's verdict (policy.c records it): "pending" until it answers. */
static int policy_row(int n, const char *const *v, void *ctx)
{
    if (n < 8)
        return 1;
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s?, s:o}",
                          "id", (json_int_t)atoll(v[0]), "created", (json_int_t)atoll(v[1]),
                          "sender", v[2] ? v[2] : "", "signer", v[3] ? v[3] : "",
                          "change", v[4] ? v[4] : "", "result", v[5] ? v[5] : "pending",
                          "result_detail", v[6],
                          "result_at", v[7] ? json_integer(atoll(v[7])) : json_null());
    if (o)
        json_array_append_new(ctx, o);
    return 0;
}

static enum MHD_Result box_policy(struct hub *h, struct MHD_Connection *c, const char *rest)
{
    char *end;
    errno = 0;
    long box = strtol(rest, &end, 10);
    if (errno || box <= 0 || end == rest || strcmp(end, "/policy") != 0)
        return fail(c, 404, "expected /console/api/boxes/<id>/policy");
    char bs[24], err[256];
    snprintf(bs, sizeof bs, "%ld", box);
    const char *p[] = { bs };
    json_t *rows = json_array();
    if (hubdb_exec(h->db, "SELECT id, created, sender, signer, body, result, result_detail, "
                   "result_at FROM policy_msgs WHERE box_id = $1 ORDER BY id DESC LIMIT 50", 1,
                   p, policy_row, rows, err, sizeof err) < 0) {
        json_decref(rows);
        log_error("console policy list: %s", err);
        return fail(c, 500, "storage error; see the hub log");
    }
    return send_json(c, 200, json_pack("{s:I, s:o}", "box", (json_int_t)box, "messages", rows),
                     NULL);
}

enum MHD_Result hub_console(struct hub *h, struct MHD_Connection *c, const char *url,
                            const char *method, const char *body, size_t len)
{
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/console"))
        return send_buf(c, 301, "text/plain", (void *)"", 0, MHD_RESPMEM_PERSISTENT, NULL,
                        "Location", "/console/");
    const char *rest = url + 9;
    if (strncmp(rest, "api/", 4) != 0) {
        if (!get)
            return fail(c, 405, "use GET");
        return serve_file(h, c, *rest ? rest : "index.html");
    }
    const char *api = rest + 4;
    if (!strcmp(api, "login"))
        return post ? login(h, c, body, len) : fail(c, 405, "use POST");
    if (!strcmp(api, "logout"))
        return post ? logout(h, c) : fail(c, 405, "use POST");
    if (!strcmp(api, "session")) {
        struct session s;
        if (!get)
            return fail(c, 405, "use GET");
        if (!session_get(h, c, &s))
            return fail(c, 401, "not signed in");
        return send_json(c, 200, json_pack("{s:s, s:s, s:i}", "operator", s.name, "csrf",
                                           s.csrf, "idle_seconds", SESSION_IDLE), NULL);
    }
    char who[80];
    int a = hub_operator_request(h, c, method, who, sizeof who);
    if (a < 0)
        return fail(c, 403, HUB_CSRF_REFUSED);
    if (a == 0)
        return fail(c, 401, "sign in to the console (or send an operator token)");
    if (!get)
        return fail(c, 405, "use GET");
    if (!strcmp(api, "audit"))
        return audit(h, c);
    if (!strncmp(api, "boxes/", 6))
        return box_policy(h, c, api + 6);
    return fail(c, 404, "no such console endpoint");
}
