/* HTTPS API (libmicrohttpd over GnuTLS). Bodies are collected up to a size limit, then
 * validated by body.c; every refusal is JSON {"error": "..."} naming the field.
 *
 *   POST /v1/enroll/challenge         -> {"nonce"}
 *   POST /v1/enroll                   -> box credentials (token, MQTT, feed key)
 *   POST /v1/heartbeat                box token
 *   POST /v1/contributions            box token; indicators under the org's pseudonym
 *   POST /v1/false-positive           box token
 *   GET  /v1/fleet?org=&online=&sort=&order=&limit=   operator token
 *   GET  /feed/<id>/snapshot[.sig]    box or operator token
 *   GET  /feed/<id>/delta/<from>[.sig]
 *   POST /v1/boxes/<id>/policy        operator token; a delegate-signed policy change
 *   GET  /v1/policy?after=N           box token; its relayed policy changes
 *   POST /v1/policy/<id>/result       box token; applied / refused (policy.c)
 *   GET  /v1/boxes/<id>/policy        operator token; messages + verdicts (policy.c)
 * Enrolment requests are rate-limited per source address (429; enroll.c).
 *   GET  /v1/health
 *   POST /v1/help, GET /v1/inbox[/N], POST /v1/inbox/N   help inbox (inbox.c)
 *   /console/...                      MSP console: files, sign-in, its views (console.c)
 * Operator endpoints take the operator's bearer token or a console session (+ CSRF).
 * Feed documents also carry their signature in X-Otasuke-Sig so one request gets a
 * consistent pair even while the seq moves. Client addresses are never stored. */
#include "console.h"
#include "hubd.h"
#include "inbox.h"
#include "policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define BODY_LIMIT (256 * 1024)

volatile int hub_mqtt_dirty;   /* set on enrol; the main loop rewrites broker files */

struct req {
    char *body;
    size_t len;
    int too_big;
};

static enum MHD_Result send_raw(struct MHD_Connection *c, unsigned status, const char *type,
                                const char *data, size_t len, const struct hub_doc *d)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (d) {
        char sig[200], seq[32];
        snprintf(sig, sizeof sig, "%.*s", (int)(d->siglen && d->sig[d->siglen - 1] == '\n'
                                                ? d->siglen - 1 : d->siglen), d->sig);
        snprintf(seq, sizeof seq, "%llu", d->seq);
        MHD_add_response_header(r, "X-Otasuke-Sig", sig);
        MHD_add_response_header(r, "X-Otasuke-Seq", seq);
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The peer's address as text, for the enrolment rate limit only (never stored). */
static const char *peer(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    buf[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
    return buf;
}

static enum MHD_Result h_challenge(struct hub *h, struct MHD_Connection *c)
{
    char nonce[64], err[256], addr[64];
    if (hub_enroll_limit_check(peer(c, addr, sizeof addr), hub_now(), err, sizeof err) > 0)
        return hub_send_err(c, 429, err);
    if (hub_challenge_new(h, nonce, sizeof nonce, err, sizeof err) < 0) {
        log_error("challenge: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    return hub_send_json(c, 200, json_pack("{s:s, s:i}", "nonce", nonce, "expires_in", 120));
}

static enum MHD_Result h_enroll(struct hub *h, struct MHD_Connection *c, struct req *rq)
{
    struct hub_enroll_req e;
    struct hub_enroll_res r;
    char err[300], addr[64];
    if (hub_enroll_limit_check(peer(c, addr, sizeof addr), hub_now(), err, sizeof err) > 0)
        return hub_send_err(c, 429, err);
    if (hub_body_enroll(rq->body, rq->len, &e, err, sizeof err) < 0) {
        hub_enroll_limit_failed(addr, hub_now());
        return hub_send_err(c, 400, err);
    }
    int st = hub_enroll(h, &e, &r, err, sizeof err);
    if (st > 0)
        hub_enroll_limit_failed(addr, hub_now());
    if (st < 0) {
        log_error("enroll: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    if (st > 0) {
        log_info("enrolment refused: %s", err);
        return hub_send_err(c, (unsigned)st, err);
    }
    hub_mqtt_dirty = 1;
    log_info("box %ld enrolled in org %ld", r.box_id, r.org_id);
    char pk[64], topic[FEED_ID_MAX + 8], boxtopic[64], org_id[24], org[128] = "", e2[200];
    feed_key_encode(h->feed_pk, FEED_PUBKEY_BYTES, pk, sizeof pk);
    /* the owner sees which organisation took the box in (a wrong code would show here) */
    snprintf(org_id, sizeof org_id, "%ld", r.org_id);
    const char *op[] = { org_id };
    if (hubdb_scalar(h->db, "SELECT name FROM orgs WHERE id = $1", 1, op, org, sizeof org, e2,
                     sizeof e2) < 0)
        org[0] = '\0';
    snprintf(topic, sizeof topic, "feed/%s", h->o.feed_id);
    snprintf(boxtopic, sizeof boxtopic, "box/%s", r.mqtt_user);
    json_t *o = json_pack("{s:I, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:b}, s:{s:s, s:s, s:s}}",
                          "box_id", (json_int_t)r.box_id, "org", org, "token", r.token,
                          "mqtt", "username", r.mqtt_user, "password", r.mqtt_pass,
                          "feed_topic", topic, "box_topic", boxtopic,
                          "broker", h->o.public_mqtt ? h->o.public_mqtt : "",
                          "tls", h->o.public_mqtt_tls != NULL,
                          "feed", "id", h->o.feed_id, "pubkey", pk, "key_id", h->feed_keyid);
    return hub_send_json(c, 200, o);
}

static long auth_box(struct hub *h, struct MHD_Connection *c, long *org)
{
    const char *t = hub_bearer(c);
    if (!t)
        return 0;
    char err[256];
    long id = hub_box_auth(h, t, org, err, sizeof err);
    if (id < 0)
        log_error("auth: %s", err);
    return id;
}

static enum MHD_Result h_heartbeat(struct hub *h, struct MHD_Connection *c, struct req *rq,
                                   long box)
{
    struct hub_heartbeat hb;
    char err[300];
    if (hub_body_heartbeat(rq->body, rq->len, &hb, err, sizeof err) < 0)
        return hub_send_err(c, 400, err);
    char id[24], seq[24], inc[24], now[24];
    snprintf(id, sizeof id, "%ld", box);
    snprintf(seq, sizeof seq, "%lld", hb.feed_seq);
    snprintf(inc, sizeof inc, "%lld", hb.open_incidents);
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { id, hb.version, seq, hb.counters, inc, now };
    if (hubdb_exec(h->db, "UPDATE boxes SET version = $2, feed_seq = $3, counters = $4, "
                   "open_incidents = $5, last_heartbeat = $6 WHERE id = $1", 6, p, NULL, NULL,
                   err, sizeof err) < 0) {
        log_error("heartbeat: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    long long cur = hub_feed_seq(h, err, sizeof err);
    return hub_send_json(c, 200, json_pack("{s:I, s:I}", "feed_seq", (json_int_t)cur,
                                       "server_time", (json_int_t)hub_now()));
}

static enum MHD_Result h_contrib(struct hub *h, struct MHD_Connection *c, struct req *rq,
                                 long org)
{
    static __thread struct hub_contrib list[HUB_CONTRIB_MAX];
    char err[300];
    int n = hub_body_contrib(rq->body, rq->len, list, HUB_CONTRIB_MAX, err, sizeof err);
    if (n < 0)
        return hub_send_err(c, 400, err);
    int accepted = 0, promoted = 0;
    json_t *rej = json_array();
    for (int i = 0; i < n; i++) {
        int r = hub_contribute(h, org, &list[i], err, sizeof err);
        if (r < 0) {
            char m[360];
            snprintf(m, sizeof m, "indicators[%d]: %s", i, err);
            json_array_append_new(rej, json_string(m));
            continue;
        }
        accepted++;
        promoted += r;
    }
    return hub_send_json(c, 200, json_pack("{s:i, s:i, s:o}", "accepted", accepted, "promoted",
                                       promoted, "rejected", rej));
}

static enum MHD_Result h_fp(struct hub *h, struct MHD_Connection *c, struct req *rq, long org)
{
    char ind[FEED_INDICATOR_MAX + 1], kind[8], err[300];
    if (hub_body_fp(rq->body, rq->len, ind, sizeof ind, kind, sizeof kind, err,
                    sizeof err) < 0)
        return hub_send_err(c, 400, err);
    int r = hub_report_fp(h, org, ind, kind, err, sizeof err);
    if (r < 0)
        return hub_send_err(c, 400, err);
    return hub_send_json(c, 200, json_pack("{s:b}", "demoted", r > 0));
}

struct fleet_ctx { json_t *arr; long long now, online, cur; };

static int fleet_row(int n, const char *const *v, void *ctx)
{
    struct fleet_ctx *f = ctx;
    if (n < 11)
        return 1;
    long long hb = v[7] ? atoll(v[7]) : 0;
    long long seq = v[4] ? atoll(v[4]) : 0;
    json_t *counters = v[5] ? json_loads(v[5], 0, NULL) : NULL;
    json_t *o = json_pack("{s:I, s:s, s:s, s:s?, s:I, s:I, s:o, s:I, s:b, s:I, s:b}",
                          "id", (json_int_t)atoll(v[0]), "org", v[1] ? v[1] : "",
                          "name", v[2] ? v[2] : "", "version", v[3],
                          "feed_seq", (json_int_t)seq,
                          "feed_behind", (json_int_t)(f->cur > seq ? f->cur - seq : 0),
                          "counters", counters ? counters : json_object(),
                          "open_incidents", (json_int_t)(v[6] ? atoll(v[6]) : 0),
                          "online", hb && hb >= f->now - f->online,
                          "enrolled", (json_int_t)(v[8] ? atoll(v[8]) : 0),
                          "revoked", v[9] != NULL);
    if (o && v[7])
        json_object_set_new(o, "last_heartbeat", json_integer(hb));
    /* Age of the feed the box holds: how long ago its seq was published (null when the
     * box has not reported a seq yet). */
    if (o)
        json_object_set_new(o, "feed_age", v[10] && seq > 0
                            ? json_integer(f->now - atoll(v[10])) : json_null());
    if (o)
        json_array_append_new(f->arr, o);
    return 0;
}

static enum MHD_Result h_fleet(struct hub *h, struct MHD_Connection *c)
{
    const char *org = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "org");
    const char *online = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "online");
    const char *sort = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "sort");
    const char *order = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "order");
    const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    static const char *const sorts[][2] = {
        { "name", "b.name" }, { "org", "o.name" }, { "version", "b.version" },
        { "feed_seq", "b.feed_seq" }, { "last_heartbeat", "b.last_heartbeat" },
        { "open_incidents", "b.open_incidents" }, { "id", "b.id" },
    };
    const char *col = "b.id";
    if (sort) {
        col = NULL;
        for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++)
            if (strcmp(sort, sorts[i][0]) == 0)
                col = sorts[i][1];
        if (!col)
            return hub_send_err(c, 400, "parameter 'sort': expected name|org|version|feed_seq|"
                            "last_heartbeat|open_incidents|id");
    }
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
        return hub_send_err(c, 400, "parameter 'order': expected asc|desc");
    if (online && strcmp(online, "1") != 0 && strcmp(online, "0") != 0)
        return hub_send_err(c, 400, "parameter 'online': expected 1 or 0");
    long lim = 1000;
    if (limit) {
        char *end;
        lim = strtol(limit, &end, 10);
        if (*end || lim < 1 || lim > 100000)
            return hub_send_err(c, 400, "parameter 'limit': expected 1..100000");
    }
    struct fleet_ctx f = { json_array(), hub_now(), h->o.online_secs, 0 };
    char err[256], since[24], lims[24], sql[800];
    f.cur = hub_feed_seq(h, err, sizeof err);
    snprintf(since, sizeof since, "%lld", f.now - f.online);
    snprintf(lims, sizeof lims, "%ld", lim);
    snprintf(sql, sizeof sql,
             "SELECT b.id, o.name, b.name, b.version, b.feed_seq, b.counters, "
             "b.open_incidents, b.last_heartbeat, b.enrolled, b.revoked, l.at FROM boxes b "
             "JOIN orgs o ON o.id = b.org_id LEFT JOIN feed_log l ON l.feed = $4 AND "
             "l.seq = b.feed_seq WHERE ($1 = '' OR o.name = $1) %s ORDER BY %s %s, b.id "
             "LIMIT $3",
             !online ? "AND CAST($2 AS TEXT) = CAST($2 AS TEXT)" : online[0] == '1'
                 ? "AND b.last_heartbeat >= $2 AND b.revoked IS NULL"
                 : "AND (b.last_heartbeat IS NULL OR b.last_heartbeat < $2)",
             col, order && strcmp(order, "desc") == 0 ? "DESC" : "ASC");
    const char *p[] = { org ? org : "", since, lims, h->o.feed_id };
    if (hubdb_exec(h->db, sql, 4, p, fleet_row, &f, err, sizeof err) < 0) {
        json_decref(f.arr);
        log_error("fleet: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    return hub_send_json(c, 200, json_pack("{s:I, s:i, s:o}", "feed_seq", (json_int_t)f.cur,
                                       "online_seconds", h->o.online_secs, "boxes", f.arr));
}

static enum MHD_Result h_feed(struct hub *h, struct MHD_Connection *c, const char *rest)
{
    /* rest: "snapshot", "snapshot.sig", "delta/N", "delta/N.sig" */
    int snap = 0, sig = 0;
    unsigned long long from = 0;
    size_t rl = strlen(rest);
    if (rl > 4 && strcmp(rest + rl - 4, ".sig") == 0)
        sig = 1;
    if (strncmp(rest, "snapshot", 8) == 0 && rl == 8u + (sig ? 4u : 0u)) {
        snap = 1;
    } else if (strncmp(rest, "delta/", 6) == 0) {
        const char *n = rest + 6;
        char *end;
        errno = 0;
        if (*n < '0' || *n > '9')
            return hub_send_err(c, 400, "delta: expected /delta/<from_seq>");
        from = strtoull(n, &end, 10);
        if (errno || (sig ? strcmp(end, ".sig") : strcmp(end, "")) != 0)
            return hub_send_err(c, 400, "delta: expected /delta/<from_seq>");
    } else {
        return hub_send_err(c, 404, "no such feed document (snapshot or delta/<from_seq>)");
    }
    struct hub_doc d;
    char err[256];
    int r = hub_doc_build(h, snap, from, &d, err, sizeof err);
    if (r < 0) {
        log_error("feed: %s", err);
        return hub_send_err(c, 500, "cannot build the feed document; see the hub log");
    }
    if (r == 1)
        return send_raw(c, 204, "text/plain", "", 0, NULL);
    if (r == 2)
        return hub_send_err(c, 410, "that seq is too old for a delta; fetch the snapshot");
    enum MHD_Result ret = sig ? send_raw(c, 200, "text/plain", d.sig, d.siglen, &d)
                              : send_raw(c, 200, "application/x-otasuke-feed", d.text, d.len, &d);
    hub_doc_free(&d);
    return ret;
}

struct pol_ctx { json_t *arr; };

static int pol_row(int n, const char *const *v, void *ctx)
{
    struct pol_ctx *pc = ctx;
    if (n < 6)
        return 1;
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)atoll(v[0]),
                          "created", (json_int_t)atoll(v[1]), "sender", v[2] ? v[2] : "",
                          "signer", v[3] ? v[3] : "", "change", v[4] ? v[4] : "",
                          "signature", v[5] ? v[5] : "");
    if (o)
        json_array_append_new(pc->arr, o);
    return 0;
}

static enum MHD_Result h_policy_get(struct hub *h, struct MHD_Connection *c, long box)
{
    const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    char *end;
    long long a = after ? strtoll(after, &end, 10) : 0;
    if (after && (*end || a < 0))
        return hub_send_err(c, 400, "parameter 'after': expected a message id >= 0");
    char bs[24], as[24], err[256];
    snprintf(bs, sizeof bs, "%ld", box);
    snprintf(as, sizeof as, "%lld", a);
    const char *p[] = { bs, as };
    struct pol_ctx pc = { json_array() };
    if (hubdb_exec(h->db, "SELECT id, created, sender, signer, body, signature FROM "
                   "policy_msgs WHERE box_id = $1 AND id > $2 ORDER BY id LIMIT 100", 2, p,
                   pol_row, &pc, err, sizeof err) < 0) {
        json_decref(pc.arr);
        log_error("policy: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    return hub_send_json(c, 200, json_pack("{s:o}", "messages", pc.arr));
}

static enum MHD_Result h_policy_post(struct hub *h, struct MHD_Connection *c, struct req *rq,
                                     const char *sender, const char *rest)
{
    char *end;
    long box = strtol(rest, &end, 10);
    if (box <= 0 || strcmp(end, "/policy") != 0)
        return hub_send_err(c, 404, "expected /v1/boxes/<id>/policy");
    static __thread struct hub_policy pol;
    char err[300], user[48];
    if (hub_body_policy(rq->body, rq->len, &pol, err, sizeof err) < 0)
        return hub_send_err(c, 400, err);
    long id = hub_policy_relay(h, box, sender, &pol, user, sizeof user, err, sizeof err);
    if (id < 0) {
        log_error("policy relay: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    if (id == 0)
        return hub_send_err(c, 404, "no active box with that id");
    if (hub_mqtt_box_notify(user, id) < 0)
        log_warn("policy message %ld stored; MQTT notice failed (the box polls)", id);
    return hub_send_json(c, 200, json_pack("{s:I}", "id", (json_int_t)id));
}

static enum MHD_Result route(struct hub *h, struct MHD_Connection *c, const char *url,
                             const char *method, struct req *rq)
{
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    if (strcmp(url, "/v1/health") == 0 && get)
        return hub_send_json(c, 200, json_pack("{s:s, s:s}", "status", "ok", "storage",
                                           hubdb_backend(h->db)));
    if (strcmp(url, "/v1/enroll/challenge") == 0 && post)
        return h_challenge(h, c);
    if (strcmp(url, "/v1/enroll") == 0 && post)
        return h_enroll(h, c, rq);
    if (hub_console_match(url))   /* MSP console: console.c */
        return hub_console(h, c, url, method, rq->body, rq->len);
    if (hub_policy_match(url, method))   /* policy results, operator's list: policy.c */
        return hub_policy_route(h, c, url, method, rq->body, rq->len);
    if (hub_inbox_match(url))   /* help inbox: inbox.c */
        return hub_inbox(h, c, url, method, rq->body, rq->len);
    long org = 0, box = 0;
    if (strcmp(url, "/v1/policy") == 0) {
        if (!get)
            return hub_send_err(c, 405, "use GET");
        box = auth_box(h, c, &org);
        if (box <= 0)
            return hub_send_err(c, 401, "missing, unknown or revoked box token");
        return h_policy_get(h, c, box);
    }
    if (strncmp(url, "/v1/boxes/", 10) == 0) {
        char name[80];
        if (!post)
            return hub_send_err(c, 405, "use POST");
        int op = hub_operator_request(h, c, method, name, sizeof name);
        if (op < 0)
            return hub_send_err(c, 403, HUB_CSRF_REFUSED);
        if (op == 0)
            return hub_send_err(c, 401, "operator token required");
        return h_policy_post(h, c, rq, name, url + 10);
    }
    int is_box = !strcmp(url, "/v1/heartbeat") || !strcmp(url, "/v1/contributions") ||
                 !strcmp(url, "/v1/false-positive");
    if (is_box) {
        if (!post)
            return hub_send_err(c, 405, "use POST");
        box = auth_box(h, c, &org);
        if (box <= 0)
            return hub_send_err(c, 401, "missing, unknown or revoked box token (Authorization: "
                            "Bearer TOKEN); enrol again if this box was revoked");
        if (!strcmp(url, "/v1/heartbeat"))
            return h_heartbeat(h, c, rq, box);
        if (!strcmp(url, "/v1/contributions"))
            return h_contrib(h, c, rq, org);
        return h_fp(h, c, rq, org);
    }
    const char *t = hub_bearer(c);
    if (strcmp(url, "/v1/fleet") == 0) {
        if (!get)
            return hub_send_err(c, 405, "use GET");
        char name[80];
        if (hub_operator_request(h, c, method, name, sizeof name) != 1)
            return hub_send_err(c, 401, "operator token required (otasuke-hubd admin "
                            "operator add NAME)");
        return h_fleet(h, c);
    }
    size_t fl = strlen(h->o.feed_id);
    if (strncmp(url, "/feed/", 6) == 0 && strncmp(url + 6, h->o.feed_id, fl) == 0 &&
        url[6 + fl] == '/') {
        if (!get)
            return hub_send_err(c, 405, "use GET");
        if (!t || (auth_box(h, c, &org) <= 0 && !hub_operator_auth(h, t)))
            return hub_send_err(c, 401, "box or operator token required");
        return h_feed(h, c, url + 7 + fl);
    }
    return hub_send_err(c, 404, "no such endpoint");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct hub *h = cls;
    struct req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->too_big && rq->len + *upload_size <= BODY_LIMIT) {
            char *b = realloc(rq->body, rq->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            rq->body = b;
            memcpy(rq->body + rq->len, upload_data, *upload_size);
            rq->len += *upload_size;
            rq->body[rq->len] = '\0';
        } else {
            rq->too_big = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return hub_send_err(c, 413, "request body larger than 256 KiB");
    if (!rq->body)
        rq->body = calloc(1, 1);
    return route(h, c, url, method, rq);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls; (void)c; (void)toe;
    struct req *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    if (buf && fread(buf, 1, 65535, f) == 0) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) {
        snprintf(err, errlen, "listen address '%s': expected ADDR:PORT or [V6]:PORT", s);
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) {
        snprintf(err, errlen, "listen address '%s': bad port", s);
        return -1;
    }
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1)
            return 0;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) == 1)
            return 0;
    }
    snprintf(err, errlen, "listen address '%s': not an IP address", s);
    return -1;
}

int hub_api_run(struct hub *h, volatile int *stop, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (parse_listen(h->o.listen, &ss, err, errlen) < 0)
        return -1;
    char cp[600], kp[600];
    snprintf(cp, sizeof cp, "%s/tls/cert.pem", h->o.state_dir);
    snprintf(kp, sizeof kp, "%s/tls/key.pem", h->o.state_dir);
    char *cert = slurp(cp), *key = slurp(kp);
    if (!cert || !key) {
        snprintf(err, errlen, "TLS certificate/key %s, %s unreadable", cp, kp);
        free(cert);
        free(key);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, handler, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_HTTPS_PRIORITIES, h->o.tls_priorities,
        MHD_OPTION_THREAD_POOL_SIZE, 2u,
        MHD_OPTION_CONNECTION_LIMIT, 30000u,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_END);
    if (!d) {
        snprintf(err, errlen, "cannot start HTTPS on %s: address in use or not on this host, "
                 "or --tls-priorities '%s' not valid for GnuTLS", h->o.listen,
                 h->o.tls_priorities);
        free(cert);
        free(key);
        return -1;
    }
    log_info("listening on https://%s (feed %s, key %s, storage %s)", h->o.listen,
             h->o.feed_id, h->feed_keyid, hubdb_backend(h->db));
    long long published = hub_feed_seq(h, err, errlen);
    long long last_expire = 0, last_files = 0, next_notify = 0;
    while (!*stop) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        long long now = hub_now();
        /* Changes may come from this process or from 'admin' in another: the seq in
         * the database is the one truth, polled every 50 ms. */
        long long seq = hub_feed_seq(h, err, errlen);
        int up = hub_mqtt_poll();
        if (seq > published && up && now >= next_notify) {
            struct hub_doc dd;
            int inl = seq == published + 1 &&
                      hub_doc_build(h, 0, (unsigned long long)published, &dd, err, errlen) == 0;
            if (inl && dd.len > 4096) {
                hub_doc_free(&dd);
                inl = 0;
            }
            if (hub_mqtt_notify(h, (unsigned long long)seq, inl ? &dd : NULL) < 0) {
                /* Boxes also poll; retry the push once a second until the broker takes it. */
                log_warn("MQTT notify for seq %lld failed; retrying", seq);
                next_notify = now + 1;
            } else {
                log_info("feed %s seq %lld published", h->o.feed_id, seq);
                published = seq;
            }
            if (inl)
                hub_doc_free(&dd);
        }
        if (hub_mqtt_dirty && now > last_files) {
            hub_mqtt_dirty = 0;
            last_files = now;
            if (hub_mqtt_write_files(h, err, errlen) < 0)
                log_error("broker files: %s", err);
        }
        if (now - last_expire >= 60) {
            last_expire = now;
            int n = hub_expire(h, err, errlen);
            if (n < 0)
                log_error("expiry sweep: %s", err);
            else if (n > 0)
                log_info("%d feed entries expired", n);
        }
    }
    MHD_stop_daemon(d);
    free(cert);
    free(key);
    return 0;
}
