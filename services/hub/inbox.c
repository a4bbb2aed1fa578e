/* Help inbox.
 *   POST /v1/help        box token: {"incident":{id,kind,severity,title...},"bundle":{..},"note"}
 *                        -> {"id": N}; the same box + incident again updates that request
 *   GET  /v1/inbox       operator token: requests newest first, without the bundles
 *   GET  /v1/inbox/N     operator token: one request with its bundle (the helper's view)
 *   POST /v1/help/session box token: a remote-help certificate (inbox_session.c)
 *   POST /v1/inbox/N     operator token: {"assign": NAME} and/or {"status": new|assigned|
 *                        in_progress|waiting_owner|closed}
 * The bundle is what the owner's box chose to send (metadata only); the hub stores it as
 * it came and never adds the box's address. Every step lands in the hub's audit table. */
#include "inbox.h"
#include "console.h"
#include "hubd.h"
#include "hubdb.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hub_inbox_match(const char *url)
{
    return !strcmp(url, "/v1/help") || !strcmp(url, "/v1/help/session") || !strcmp(url, "/v1/inbox") || !strncmp(url, "/v1/inbox/", 10);
}

static int short_str(json_t *o, const char *k, size_t max, int required)
{
    json_t *v = json_object_get(o, k);
    if (!v)
        return !required;
    return json_is_string(v) && json_string_length(v) <= max;
}

int hub_inbox_check(const char *body, size_t len, char *err, size_t errlen)
{
    if (len > INBOX_BUNDLE_MAX) {
        snprintf(err, errlen, "body: larger than %d bytes", INBOX_BUNDLE_MAX);
        return -1;
    }
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);
    const char *field = NULL;
    if (!json_is_object(o))
        field = "body: not a JSON object";
    else if (!json_is_object(json_object_get(o, "incident")))
        field = "incident: missing or not an object";
    else if (!json_is_integer(json_object_get(json_object_get(o, "incident"), "id")) ||
             json_integer_value(json_object_get(json_object_get(o, "incident"), "id")) <= 0)
        field = "incident.id: missing or not a positive integer";
    else if (!short_str(json_object_get(o, "incident"), "kind", 32, 1))
        field = "incident.kind: missing or longer than 32";
    else if (!short_str(json_object_get(o, "incident"), "severity", 16, 1))
        field = "incident.severity: missing or longer than 16";
    else if (!json_is_object(json_object_get(o, "bundle")))
        field = "bundle: missing or not an object";
    else if (!short_str(o, "note", 2000, 0))
        field = "note: not a string of at most 2000 bytes";
    else {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v)
            if (strcmp(k, "incident") && strcmp(k, "bundle") && strcmp(k, "note"))
                field = "body: unknown field (incident, bundle, note)";
    }
    if (field)
        snprintf(err, errlen, "%s", field);
    json_decref(o);
    return field ? -1 : 0;
}

static enum MHD_Result post_help(struct hub *h, struct MHD_Connection *c, const char *body,
                                 size_t len)
{
    long org = 0;
    char err[300], boxs[24], orgs[24], now[24], iid[24], idout[32];
    const char *t = hub_bearer(c);
    long box = t ? hub_box_auth(h, t, &org, err, sizeof err) : 0;
    if (box <= 0)
        return hub_send_err(c, 401, "missing, unknown or revoked box token (Authorization: Bearer TOKEN)");
    if (hub_inbox_check(body, len, err, sizeof err) < 0)
        return hub_send_err(c, 400, err);
    json_t *o = json_loadb(body, len, 0, NULL);
    json_t *inc = json_object_get(o, "incident");
    snprintf(boxs, sizeof boxs, "%ld", box);
    snprintf(orgs, sizeof orgs, "%ld", org);
    snprintf(now, sizeof now, "%lld", hub_now());
    snprintf(iid, sizeof iid, "%lld", (long long)json_integer_value(json_object_get(inc, "id")));
    const char *title = json_string_value(json_object_get(inc, "title_en"));
    const char *p[] = { boxs, orgs, iid, json_string_value(json_object_get(inc, "kind")),
                        json_string_value(json_object_get(inc, "severity")), title ? title : "",
                        body, now, json_string_value(json_object_get(o, "note")) };
    /* One request per box incident: calling again refreshes its evidence and reopens it. */
    int r = hubdb_scalar(h->db, "SELECT id FROM help_requests WHERE box_id = $1 AND incident = $2",
                         2, (const char *const[]){ boxs, iid }, idout, sizeof idout, err, sizeof err);
    long rc = r < 0 ? -1 : r == 1
        ? hubdb_exec(h->db, "UPDATE help_requests SET bundle = $3, updated = $4, status = "
                     "CASE WHEN status = 'closed' THEN 'new' ELSE status END, note = $5,"
                     " severity = $6 WHERE id = $1 AND box_id = $2", 6,
                     (const char *const[]){ idout, boxs, body, now, p[8], p[4] }, NULL, NULL,
                     err, sizeof err)
        : hubdb_exec(h->db, "INSERT INTO help_requests (box_id, org_id, incident, kind, severity,"
                     " title, bundle, received, updated, status, note) VALUES"
                     " ($1,$2,$3,$4,$5,$6,$7,$8,$8,'new',$9)", 9, p, NULL, NULL, err, sizeof err);
    if (rc >= 0 && r != 1)
        r = hubdb_scalar(h->db, "SELECT id FROM help_requests WHERE box_id = $1 AND incident = $2",
                         2, (const char *const[]){ boxs, iid }, idout, sizeof idout, err, sizeof err);
    json_decref(o);
    if (rc < 0 || r < 0) {
        log_error("help request from box %ld: %s", box, err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    hub_audit(h, boxs, "help-request", "request %s incident %s", idout, iid);
    log_info("help request %s from box %ld (incident %s)", idout, box, iid);
    return hub_send_json(c, 200, json_pack("{s:I}", "id", (json_int_t)atoll(idout)));
}

static int list_row(int n, const char *const *v, void *ctx)
{
    static const char *const cols[] = { "id", "box_id", "org_id", "incident", "kind",
                                        "severity", "title", "status", "assignee", "received",
                                        "updated", "note", "bundle" };
    json_t *o = json_object();
    for (int i = 0; i < n && i < (int)(sizeof cols / sizeof cols[0]); i++) {
        json_t *x;
        if (!v[i])
            x = json_null();
        else if (!strcmp(cols[i], "bundle"))
            x = json_loads(v[i], 0, NULL);
        else if (i <= 3 || (i >= 9 && i <= 10))
            x = json_integer(atoll(v[i]));
        else
            x = json_string(v[i]);
        json_object_set_new(o, cols[i], x ? x : json_null());
    }
    json_array_append_new(ctx, o);
    return 0;
}

static const char *const statuses[] = { "new", "assigned", "in_progress", "waiting_owner",
                                        "closed", NULL };

static enum MHD_Result update(struct hub *h, struct MHD_Connection *c, const char *id,
                              const char *who, const char *body, size_t len)
{
    char err[300];
    json_t *o = json_loadb(body, len, 0, NULL);
    json_t *as = json_object_get(o, "assign"), *st = json_object_get(o, "status");
    const char *bad = !json_is_object(o) ? "body: not a JSON object"
                      : !as && !st ? "body: give assign and/or status"
                      : as && (!json_is_string(as) || json_string_length(as) > 64 ||
                               !json_string_length(as)) ? "assign: a helper name of 1-64 bytes"
                      : st && !json_is_string(st) ? "status: a string" : NULL;
    int ok = !st;
    for (int i = 0; st && !bad && statuses[i]; i++)
        ok |= !strcmp(statuses[i], json_string_value(st));
    if (!bad && !ok)
        bad = "status: use new, assigned, in_progress, waiting_owner or closed";
    size_t k = json_object_size(o) - (as != NULL) - (st != NULL);
    if (!bad && k)
        bad = "body: unknown field (assign, status)";
    if (bad) {
        json_decref(o);
        return hub_send_err(c, 400, bad);
    }
    char now[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { id, as ? json_string_value(as) : NULL,
                        st ? json_string_value(st) : as ? "assigned" : NULL, now };
    long n = hubdb_exec(h->db, "UPDATE help_requests SET assignee = COALESCE($2, assignee),"
                        " status = COALESCE($3, status), updated = $4 WHERE id = $1", 4, p, NULL,
                        NULL, err, sizeof err);
    if (n == 0) {
        json_decref(o);
        return hub_send_err(c, 404, "no help request with that id");
    }
    if (n < 0) {
        json_decref(o);
        log_error("inbox update: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    hub_audit(h, who, "help-update", "request %s assign %s status %s", id, p[1] ? p[1] : "-",
              p[2] ? p[2] : "-");
    json_decref(o);
    json_t *rows = json_array();
    hubdb_exec(h->db, "SELECT id, box_id, org_id, incident, kind, severity, title, status,"
               " assignee, received, updated, note FROM help_requests WHERE id = $1", 1,
               (const char *const[]){ id }, list_row, rows, err, sizeof err);
    json_t *one = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return hub_send_json(c, 200, one ? one : json_object());
}

enum MHD_Result hub_inbox(struct hub *h, struct MHD_Connection *c, const char *url,
                          const char *method, const char *body, size_t len)
{
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    char who[80], err[300];
    if (!strcmp(url, "/v1/help"))
        return post ? post_help(h, c, body, len) : hub_send_err(c, 405, "use POST");
    if (!strcmp(url, "/v1/help/session")) {
        long org = 0;
        const char *bt = hub_bearer(c);
        long box = bt && post ? hub_box_auth(h, bt, &org, err, sizeof err) : 0;
        if (!post)
            return hub_send_err(c, 405, "use POST");
        if (box <= 0)
            return hub_send_err(c, 401, "missing, unknown or revoked box token");
        return hub_help_session(h, c, box, body, len);
    }
    int op = hub_operator_request(h, c, method, who, sizeof who);   /* token or console */
    if (op < 0)
        return hub_send_err(c, 403, HUB_CSRF_REFUSED);
    if (op == 0)
        return hub_send_err(c, 401, "operator token required (otasuke-hubd admin operator add NAME)");
    if (!strcmp(url, "/v1/inbox")) {
        if (!get)
            return hub_send_err(c, 405, "use GET");
        json_t *rows = json_array();
        if (hubdb_exec(h->db, "SELECT id, box_id, org_id, incident, kind, severity, title, status,"
                       " assignee, received, updated, note FROM help_requests ORDER BY id DESC"
                       " LIMIT 500", 0, NULL, list_row, rows, err, sizeof err) < 0) {
            json_decref(rows);
            log_error("inbox: %s", err);
            return hub_send_err(c, 500, "storage error; see the hub log");
        }
        return hub_send_json(c, 200, rows);
    }
    const char *id = url + 10;
    char *end;
    long long v = strtoll(id, &end, 10);
    if (*end || v <= 0 || strlen(id) > 18)
        return hub_send_err(c, 400, "help request id must be a positive integer");
    if (post)
        return update(h, c, id, who, body, len);
    if (!get)
        return hub_send_err(c, 405, "use GET or POST");
    json_t *rows = json_array();
    hubdb_exec(h->db, "SELECT id, box_id, org_id, incident, kind, severity, title, status,"
               " assignee, received, updated, note, bundle FROM help_requests WHERE id = $1", 1,
               (const char *const[]){ id }, list_row, rows, err, sizeof err);
    json_t *one = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    if (!one)
        return hub_send_err(c, 404, "no help request with that id");
    /* The bundle column holds the whole request the box sent; show its parts. */
    json_t *req = json_object_get(one, "bundle");
    json_object_set(one, "incident_detail", json_object_get(req, "incident"));
    json_object_set(one, "evidence", json_object_get(req, "bundle"));
    json_object_del(one, "bundle");
    hub_audit(h, who, "help-view", "request %s", id);
    return hub_send_json(c, 200, one);
}
