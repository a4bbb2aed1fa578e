/* Local API routes (documented in docs/api/openapi.yaml). Callers on the socket act as
 * the owner; delegates act only through signed changes (POST /v1/delegated). Every
 * successful change marks the policy dirty: the main loop compiles right after. */
#include "agentd.h"
#include "api.h"
#include "accounts.h"
#include "backup.h"
#include "incidents.h"
#include "feed.h"
#include "hubshare.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEGS 5

static void fail(struct api_call *c, unsigned status, const char *msg, const char *field)
{
    c->status = status;
    json_decref(c->out);
    c->out = api_error_json(msg, field);
}

/* Maps a module error ("field: what") to a 400 naming the field. */
static void fail_err(struct api_call *c, const char *err)
{
    char field[64] = "";
    const char *colon = strchr(err, ':');
    if (colon && (size_t)(colon - err) < sizeof field && !memchr(err, ' ', (size_t)(colon - err))) {
        memcpy(field, err, (size_t)(colon - err));
        field[colon - err] = '\0';
    }
    int internal = strncmp(err, "database", 8) == 0;
    fail(c, internal ? 500 : strstr(err, "no ") && strstr(err, "named") ? 404 : 400, err,
         field[0] && !internal ? field : NULL);
}

static json_t *query(struct api_call *c, const char *sql)
{
    char err[AGENT_ERR];
    json_t *a = agent_query_json(c->ad->db, sql, NULL, 0, err, sizeof err);
    if (!a)
        fail(c, 500, err, NULL);
    return a;
}

static const char *arg(struct api_call *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char *s(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t i64(json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return v ? (int64_t)json_integer_value(v) : dflt;
}

static int parse_id(const char *seg, int64_t *out)
{
    char *end;
    long long v = seg ? strtoll(seg, &end, 10) : 0;
    if (!seg || !*seg || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_hhmm(const char *t)
{
    int h, m;
    char tail;
    if (!t || sscanf(t, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 24 || m < 0 || m > 59 ||
        (h == 24 && m))
        return -1;
    return h * 60 + m;
}

static void changed(struct api_call *c, json_t *out)
{
    c->ad->dirty = 1;
    c->out = out;
}

/* ---- handlers ---- */

static void status(struct api_call *c)
{
    struct agentd *ad = c->ad;
    int64_t now = time(NULL);
    json_t *feeds = query(c, "SELECT name, kind, enabled, last_seq, last_good, last_error,"
                             " last_reason, entries FROM feeds ORDER BY name");
    if (!feeds)
        return;
    size_t i;
    json_t *f;
    int stale = 0;
    json_array_foreach(feeds, i, f) {
        int64_t good = i64(f, "last_good", 0);
        json_object_set_new(f, "age_seconds", good ? json_integer(now - good) : json_null());
        if (!good || now - good > 86400)
            stale++;
    }
    c->out = json_pack("{s:s, s:I, s:I, s:o, s:I, s:s?, s:o, s:i}",
                       "status", ad->last_compile_error[0] ? "degraded" : "ok",
                       "uptime_seconds", (json_int_t)(now - ad->started),
                       "last_compile", (json_int_t)ad->last_compile,
                       "last_compile_seconds", json_real(ad->n.last_compile_seconds),
                       "domains", (json_int_t)ad->n.last_domains,
                       "last_compile_error", ad->last_compile_error[0] ? ad->last_compile_error : NULL,
                       "feeds", feeds, "stale_feeds", stale);
}

static const struct api_field feed_fields[] = {
    { "name", API_STR, 1, 48 }, { "url", API_STR, 1, 1024 }, { "kind", API_STR, 1, 8 },
    { "feed_id", API_STR, 0, 64 }, { "pubkey", API_STR, 0, 64 },
    { "category", API_STR, 0, 32 }, { "max_bytes", API_INT, 0, FEED_DEFAULT_MAX_BYTES },
    { NULL, 0, 0, 0 },
};

static const struct api_field feed_set_fields[] = {
    { "enabled", API_BOOL, 0, 0 }, { "max_bytes", API_INT, 0, FEED_DEFAULT_MAX_BYTES },
    { NULL, 0, 0, 0 },
};

static void feeds(struct api_call *c, char **seg, json_t *body)
{
    char err[AGENT_ERR];
    struct agentd *ad = c->ad;
    if (!seg[2] && !strcmp(c->method, "GET")) {
        c->out = query(c, "SELECT id, name, url, kind, feed_id, category, enabled, max_bytes,"
                          " last_seq, last_good, last_attempt, last_error, last_reason,"
                          " failures, next_try, entries FROM feeds ORDER BY name");
    } else if (!seg[2] && !strcmp(c->method, "POST")) {
        int64_t id = agentd_feed_add(ad->db, AGENT_OWNER, s(body, "name"), s(body, "url"),
                                     s(body, "kind"), s(body, "feed_id"), s(body, "pubkey"),
                                     s(body, "category"), i64(body, "max_bytes", 0), err,
                                     sizeof err);
        if (id < 0)
            return fail_err(c, err);
        ad->feeds_due_now = 1;
        c->status = 201;
        changed(c, json_pack("{s:I}", "id", (json_int_t)id));
    } else if (seg[2] && !seg[3] && !strcmp(c->method, "PUT")) {
        json_t *en = json_object_get(body, "enabled");
        if (agentd_feed_set(ad->db, AGENT_OWNER, seg[2], en ? json_is_true(en) : -1,
                            i64(body, "max_bytes", 0), err, sizeof err) < 0)
            return fail_err(c, err);
        if (en && json_is_true(en))
            ad->feeds_due_now = 1;
        changed(c, json_pack("{s:s}", "feed", seg[2]));
    } else if (seg[2] && !seg[3] && !strcmp(c->method, "DELETE")) {
        if (agentd_feed_delete(ad->db, AGENT_OWNER, seg[2], err, sizeof err) < 0)
            return fail_err(c, err);
        changed(c, json_pack("{s:s}", "deleted", seg[2]));
    } else if (seg[2] && seg[3] && !strcmp(seg[3], "refresh") && !strcmp(c->method, "POST")) {
        const char *args[] = { seg[2] };
        json_t *r = agent_query_json(ad->db, "SELECT id FROM feeds WHERE name=?", args, 1, err,
                                     sizeof err);
        if (!r || !json_array_size(r)) {
            json_decref(r);
            return fail(c, 404, "no feed with that name", "name");
        }
        int64_t id = i64(json_array_get(r, 0), "id", 0);
        json_decref(r);
        int rc = agentd_feed_refresh(ad, id, time(NULL), err, sizeof err);
        if (rc < 0) {
            c->status = 422;
            c->out = json_pack("{s:s, s:n}", "error", err, "field");
            return;
        }
        c->out = json_pack("{s:s}", "result", rc ? "applied" : "not modified");
    } else {
        fail(c, 405, "method not allowed here", NULL);
    }
}

static const struct api_field group_fields[] = {
    { "name", API_STR, 0, 32 }, { "categories", API_STRARR, 0, 32 },
    { "answer", API_STR, 0, 16 }, { "safesearch", API_BOOL, 0, 0 },
    { "networks", API_STRARR, 0, 64 }, { NULL, 0, 0, 0 },
};

static void groups(struct api_call *c, char **seg, json_t *body)
{
    char err[AGENT_ERR];
    if (!seg[2] && !strcmp(c->method, "GET")) {
        c->out = query(c, "SELECT g.name, g.answer, g.safesearch,"
                          " (SELECT json_group_array(category) FROM group_categories"
                          "  WHERE group_id=g.id) AS categories,"
                          " (SELECT json_group_array(cidr) FROM group_networks"
                          "  WHERE group_id=g.id) AS networks FROM groups g ORDER BY g.id");
        size_t i;
        json_t *g;
        json_array_foreach(c->out, i, g) {
            json_object_set_new(g, "categories", json_loads(s(g, "categories"), 0, NULL));
            json_object_set_new(g, "networks", json_loads(s(g, "networks"), 0, NULL));
            json_object_set(g, "safesearch", json_boolean(i64(g, "safesearch", 0)));
        }
        return;
    }
    int create = !seg[2] && !strcmp(c->method, "POST");
    if (!create && !(seg[2] && !seg[3] && !strcmp(c->method, "PUT")))
        return fail(c, 405, "method not allowed here", NULL);
    const char *name = create ? s(body, "name") : seg[2];
    if (!name)
        return fail(c, 400, "'name' is required", "name");
    json_t *ss = json_object_get(body, "safesearch");
    if (agent_group_set(c->ad->db, AGENT_OWNER, name, json_object_get(body, "categories"),
                        s(body, "answer"), ss ? json_is_true(ss) : -1,
                        json_object_get(body, "networks"), create, err, sizeof err) < 0)
        return fail_err(c, err);
    if (create)
        c->status = 201;
    changed(c, json_pack("{s:s}", "group", name));
}

static const struct api_field rule_fields[] = {
    { "pattern", API_STR, 1, 260 }, { "kind", API_STR, 1, 8 }, { "category", API_STR, 0, 32 },
    { "group", API_STR, 0, 32 }, { "minutes", API_INT, 0, 525600 }, { "note", API_STR, 0, 200 },
    { NULL, 0, 0, 0 },
};

#define RULES_SQL "SELECT r.id, r.pattern, r.kind, r.category, g.name AS \"group\", p.name AS" \
    " author, r.grant_id, r.created, r.expires_at, r.note FROM rules r JOIN principals p ON" \
    " p.id=r.author_id LEFT JOIN groups g ON g.id=r.group_id"

static void rules(struct api_call *c, char **seg, json_t *body)
{
    char err[AGENT_ERR];
    int64_t id;
    if (!seg[2] && !strcmp(c->method, "GET")) {
        c->out = query(c, RULES_SQL " ORDER BY r.id");
    } else if (!seg[2] && !strcmp(c->method, "POST")) {
        int64_t mins = i64(body, "minutes", 0);
        id = agent_rule_add(c->ad->db, AGENT_OWNER, 0, s(body, "pattern"), s(body, "kind"),
                            s(body, "category"), s(body, "group"),
                            mins ? (int64_t)time(NULL) + mins * 60 : 0, s(body, "note"), err,
                            sizeof err);
        if (id < 0)
            return fail_err(c, err);
        c->status = 201;
        changed(c, json_pack("{s:I}", "id", (json_int_t)id));
    } else if (seg[2] && !seg[3] && !strcmp(c->method, "DELETE")) {
        if (parse_id(seg[2], &id) < 0)
            return fail(c, 400, "rule id must be a positive integer", "id");
        if (agent_rule_delete(c->ad->db, AGENT_OWNER, id, err, sizeof err) < 0)
            return fail(c, strstr(err, "no entry") ? 404 : 500, err, "id");
        changed(c, json_pack("{s:I}", "deleted", (json_int_t)id));
    } else {
        fail(c, 405, "method not allowed here", NULL);
    }
}

static const struct api_field unblock_fields[] = {
    { "domain", API_STR, 1, 260 }, { "minutes", API_INT, 0, 1440 },
    { "seconds", API_INT, 0, 86400 }, { "group", API_STR, 0, 32 },
    { NULL, 0, 0, 0 },
};

static void unblock(struct api_call *c, json_t *body)
{
    char err[AGENT_ERR];
    int64_t secs = i64(body, "minutes", 0) * 60 + i64(body, "seconds", 0);
    if (secs < 1 || (json_object_get(body, "minutes") && json_object_get(body, "seconds")))
        return fail(c, 400, "give 'minutes' (1..1440) or 'seconds' (1..86400)", "minutes");
    int64_t until = (int64_t)time(NULL) + secs;
    int64_t id = agent_rule_add(c->ad->db, AGENT_OWNER, 0, s(body, "domain"), "allow", NULL,
                                s(body, "group"), until, "temporary unblock", err, sizeof err);
    if (id < 0) {
        /* agent_rule_add names its first argument "pattern"; here it is "domain". */
        if (!strchr(err, ':') || strncmp(err, "kind", 4) == 0)
            return fail_err(c, err);
        return fail(c, 400, err, strncmp(err, "group", 5) == 0 ? "group" : "domain");
    }
    c->status = 201;
    changed(c, json_pack("{s:I, s:I}", "id", (json_int_t)id, "expires_at", (json_int_t)until));
}

static const struct api_field sched_fields[] = {
    { "group", API_STR, 1, 32 }, { "category", API_STR, 1, 32 }, { "days", API_STR, 1, 40 },
    { "start", API_STR, 1, 5 }, { "end", API_STR, 1, 5 }, { NULL, 0, 0, 0 },
};

static void schedules(struct api_call *c, char **seg, json_t *body)
{
    char err[AGENT_ERR];
    int64_t id;
    if (!seg[2] && !strcmp(c->method, "GET")) {
        c->out = query(c, "SELECT s.id, g.name AS \"group\", s.category, s.days, s.start_min,"
                          " s.end_min, p.name AS author, s.grant_id FROM schedules s JOIN"
                          " groups g ON g.id=s.group_id JOIN principals p ON p.id=s.author_id"
                          " ORDER BY s.id");
    } else if (!seg[2] && !strcmp(c->method, "POST")) {
        int days = agent_days_parse(s(body, "days"));
        int start = parse_hhmm(s(body, "start")), end = parse_hhmm(s(body, "end"));
        if (days < 0)
            return fail(c, 400, "'days' must be like mon-fri, sat,sun, weekdays, daily", "days");
        if (start < 0 || end < 0)
            return fail(c, 400, "'start' and 'end' must be HH:MM", start < 0 ? "start" : "end");
        id = agent_schedule_add(c->ad->db, AGENT_OWNER, 0, s(body, "group"),
                                s(body, "category"), (unsigned)days, start, end, err, sizeof err);
        if (id < 0)
            return fail_err(c, err);
        c->status = 201;
        changed(c, json_pack("{s:I}", "id", (json_int_t)id));
    } else if (seg[2] && !seg[3] && !strcmp(c->method, "DELETE")) {
        if (parse_id(seg[2], &id) < 0)
            return fail(c, 400, "schedule id must be a positive integer", "id");
        if (agent_schedule_delete(c->ad->db, AGENT_OWNER, id, err, sizeof err) < 0)
            return fail(c, strstr(err, "no entry") ? 404 : 500, err, "id");
        changed(c, json_pack("{s:I}", "deleted", (json_int_t)id));
    } else {
        fail(c, 405, "method not allowed here", NULL);
    }
}

static void explain(struct api_call *c)
{
    char err[AGENT_ERR];
    const char *q = arg(c, "q");
    if (!q || !*q)
        return fail(c, 400, "query parameter 'q' (domain or IP) is required", "q");
    c->out = agent_explain(c->ad->db, q, arg(c, "client"), time(NULL), err, sizeof err);
    if (!c->out)
        return fail(c, 400, err, "q");
    /* Confirm against the artifact dnsd has loaded (same suffix walk, same masks). */
    char path[600];
    snprintf(path, sizeof path, "%s/domains.set", c->ad->state_dir);
    json_t *compiled = agent_explain_compiled(path, c->out, err, sizeof err);
    json_object_set_new(c->out, "compiled", compiled ? compiled : json_pack("{s:s}", "error", err));
}

static const struct api_field device_fields[] = {
    { "label", API_STR, 0, 64 }, { "importance", API_INT, 0, 5 }, { "group", API_STR, 0, 32 },
    { NULL, 0, 0, 0 },
};
static const struct api_field seen_fields[] = {
    { "mac", API_STR, 1, 17 }, { "ip", API_STR, 0, 45 }, { "hostname", API_STR, 0, 64 },
    { NULL, 0, 0, 0 },
};
static const struct api_field event_fields[] = {
    { "ip", API_STR, 1, 45 }, { "event", API_STR, 1, 16 }, { NULL, 0, 0, 0 },
};

static void devices(struct api_call *c, char **seg, json_t *body)
{
    char err[AGENT_ERR];
    if (!seg[2] && !strcmp(c->method, "GET")) {
        c->out = agent_devices_json(c->ad->db, err, sizeof err);
        if (!c->out)
            fail(c, 500, err, NULL);
    } else if (seg[2] && !strcmp(seg[2], "seen") && !strcmp(c->method, "POST")) {
        if (agent_device_seen(c->ad->db, s(body, "mac"), s(body, "ip"), s(body, "hostname"),
                              time(NULL), err, sizeof err) < 0)
            return fail_err(c, err);
        c->out = json_pack("{s:b}", "ok", 1);
    } else if (seg[2] && !strcmp(seg[2], "event") && !strcmp(c->method, "POST")) {
        if (agent_device_event(c->ad->db, s(body, "ip"), s(body, "event"), err, sizeof err) < 0)
            return fail_err(c, err);
        c->out = json_pack("{s:b}", "ok", 1);
    } else if (seg[2] && !seg[3] && !strcmp(c->method, "PUT")) {
        if (agent_device_update(c->ad->db, AGENT_OWNER, seg[2], s(body, "label"),
                                (int)i64(body, "importance", 0), s(body, "group"), err,
                                sizeof err) < 0)
            return fail_err(c, err);
        changed(c, json_pack("{s:s}", "device", seg[2]));
    } else {
        fail(c, 405, "method not allowed here", NULL);
    }
}

static const struct api_field delegate_fields[] = {
    { "name", API_STR, 1, 48 }, { "pubkey", API_STR, 1, 64 }, { NULL, 0, 0, 0 },
};
static const struct api_field grant_fields[] = {
    { "delegate", API_STR, 1, 48 }, { "categories", API_STRARR, 1, 32 },
    { "groups", API_STRARR, 1, 64 }, { "actions", API_STRARR, 1, 3 },
    { "expires_at", API_INT, 0, 0 }, { "days", API_INT, 0, 3650 }, { NULL, 0, 0, 0 },
};
static const struct api_field delegated_fields[] = {
    { "body", API_STR, 1, API_BODY_MAX - 200 }, { "signature", API_STR, 1, 100 },
    { NULL, 0, 0, 0 },
};

static void delegation(struct api_call *c, char **seg, json_t *body)
{
    char err[AGENT_ERR];
    struct agentd *ad = c->ad;
    int64_t id;
    if (!strcmp(seg[1], "delegates")) {
        if (!strcmp(c->method, "GET")) {
            c->out = query(c, "SELECT id, name, pubkey, created FROM principals WHERE"
                              " kind='delegate' ORDER BY name");
            return;
        }
        id = agent_delegate_add(ad->db, AGENT_OWNER, s(body, "name"), s(body, "pubkey"), err,
                                sizeof err);
        if (id < 0)
            return fail_err(c, err);
        c->status = 201;
        c->out = json_pack("{s:I}", "id", (json_int_t)id);
    } else if (!strcmp(seg[1], "grants")) {
        if (!seg[2] && !strcmp(c->method, "GET")) {
            c->out = query(c, "SELECT g.id, p.name AS delegate, json(g.categories) AS categories,"
                              " json(g.groups) AS groups, json(g.actions) AS actions, g.created,"
                              " g.expires_at, g.revoked_at FROM grants g JOIN principals p ON"
                              " p.id=g.delegate_id ORDER BY g.id");
            size_t i;
            json_t *g;
            json_array_foreach(c->out, i, g) {
                json_object_set_new(g, "categories", json_loads(s(g, "categories"), 0, NULL));
                json_object_set_new(g, "groups", json_loads(s(g, "groups"), 0, NULL));
                json_object_set_new(g, "actions", json_loads(s(g, "actions"), 0, NULL));
            }
        } else if (!seg[2] && !strcmp(c->method, "POST")) {
            int64_t exp = i64(body, "expires_at", 0);
            if (json_object_get(body, "days"))
                exp = (int64_t)time(NULL) + i64(body, "days", 0) * 86400;
            id = agent_grant_add(ad->db, AGENT_OWNER, s(body, "delegate"),
                                 json_object_get(body, "categories"),
                                 json_object_get(body, "groups"),
                                 json_object_get(body, "actions"), exp, err, sizeof err);
            if (id < 0)
                return fail_err(c, err);
            c->status = 201;
            changed(c, json_pack("{s:I}", "id", (json_int_t)id));
        } else if (seg[2] && seg[3] && !strcmp(seg[3], "revoke") && !strcmp(c->method, "POST")) {
            if (parse_id(seg[2], &id) < 0)
                return fail(c, 400, "grant id must be a positive integer", "id");
            if (agent_grant_revoke(ad->db, AGENT_OWNER, id, err, sizeof err) < 0)
                return fail(c, strstr(err, "no grant") ? 404 : 409, err, "id");
            changed(c, json_pack("{s:I}", "revoked", (json_int_t)id));
        } else {
            fail(c, 405, "method not allowed here", NULL);
        }
    } else {
        const char *b = s(body, "body");
        int n = agent_delegated_apply(ad->db, b, strlen(b), s(body, "signature"), time(NULL),
                                      err, sizeof err);
        if (n < 0) {   /* refused: 403; the database could not store it now: 503, retry */
            c->status = n == AGENT_DELEGATED_RETRY ? 503 : 403;
            c->out = json_pack("{s:s, s:s}", "error", err, "field", "body");
            return;
        }
        changed(c, json_pack("{s:i}", "applied", n));
    }
}

static void audit(struct api_call *c)
{
    const char *lim = arg(c, "limit");
    long n = lim ? strtol(lim, NULL, 10) : 100;
    if (n <= 0 || n > 10000)
        return fail(c, 400, "'limit' must be 1..10000", "limit");
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT id, at, who, account, what, grant_id, result, reason,"
             " json(before) AS before, json(after) AS after FROM audit ORDER BY id DESC"
             " LIMIT %ld", n);
    c->out = query(c, sql);
    size_t i;
    json_t *a;
    json_array_foreach(c->out, i, a) {
        if (s(a, "before"))
            json_object_set_new(a, "before", json_loads(s(a, "before"), 0, NULL));
        if (s(a, "after"))
            json_object_set_new(a, "after", json_loads(s(a, "after"), 0, NULL));
    }
}

static void counters(struct api_call *c)
{
    struct agentd_counters *n = &c->ad->n;
    c->out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I}",
                       "api_requests", (json_int_t)n->api_requests,
                       "api_errors", (json_int_t)n->api_errors,
                       "compiles", (json_int_t)n->compiles,
                       "compile_errors", (json_int_t)n->compile_errors,
                       "feed_fetches", (json_int_t)n->feed_fetches,
                       "feed_not_modified", (json_int_t)n->feed_not_modified,
                       "feed_refusals", (json_int_t)n->feed_refusals,
                       "feed_errors", (json_int_t)n->feed_errors,
                       "last_compile_seconds", n->last_compile_seconds,
                       "domains", (json_int_t)n->last_domains,
                       "fw_elements", (json_int_t)n->last_fw_elems,
                       "events", (json_int_t)n->events,
                       "events_bad", (json_int_t)n->events_bad);
}

static void metrics(struct api_call *c)
{
    struct agentd_counters *n = &c->ad->n;
    char *t = NULL;
    int len = asprintf(&t,
        "# HELP otasuke_agent_api_requests_total API requests served.\n"
        "# TYPE otasuke_agent_api_requests_total counter\n"
        "otasuke_agent_api_requests_total %llu\n"
        "# HELP otasuke_agent_api_errors_total API requests answered with an error.\n"
        "# TYPE otasuke_agent_api_errors_total counter\n"
        "otasuke_agent_api_errors_total %llu\n"
        "# HELP otasuke_agent_compiles_total Successful compiles.\n"
        "# TYPE otasuke_agent_compiles_total counter\n"
        "otasuke_agent_compiles_total %llu\n"
        "# HELP otasuke_agent_compile_errors_total Failed compiles (old artifacts kept).\n"
        "# TYPE otasuke_agent_compile_errors_total counter\n"
        "otasuke_agent_compile_errors_total %llu\n"
        "# HELP otasuke_agent_compile_seconds Duration of the last compile.\n"
        "# TYPE otasuke_agent_compile_seconds gauge\n"
        "otasuke_agent_compile_seconds %.6f\n"
        "# HELP otasuke_agent_domains Names in the last compiled domain set.\n"
        "# TYPE otasuke_agent_domains gauge\n"
        "otasuke_agent_domains %llu\n"
        "# HELP otasuke_agent_feed_fetches_total Feed fetch attempts.\n"
        "# TYPE otasuke_agent_feed_fetches_total counter\n"
        "otasuke_agent_feed_fetches_total %llu\n"
        "# HELP otasuke_agent_feed_refusals_total Feeds refused by verification.\n"
        "# TYPE otasuke_agent_feed_refusals_total counter\n"
        "otasuke_agent_feed_refusals_total %llu\n"
        "# HELP otasuke_agent_feed_errors_total Feed fetches that failed.\n"
        "# TYPE otasuke_agent_feed_errors_total counter\n"
        "otasuke_agent_feed_errors_total %llu\n",
        (unsigned long long)n->api_requests, (unsigned long long)n->api_errors,
        (unsigned long long)n->compiles, (unsigned long long)n->compile_errors,
        n->last_compile_seconds, (unsigned long long)n->last_domains,
        (unsigned long long)n->feed_fetches, (unsigned long long)n->feed_refusals,
        (unsigned long long)n->feed_errors);
    if (len < 0)
        return fail(c, 500, "out of memory", NULL);
    c->text = t;
    c->ctype = "text/plain; version=0.0.4";
}

/* ---- router ---- */

static const struct api_field *body_fields(const char *method, char **seg)
{
    const char *col = seg[1];
    if (!col || (strcmp(method, "POST") && strcmp(method, "PUT")))
        return NULL;
    if (!strcmp(col, "feeds") && !seg[2])
        return feed_fields;
    if (!strcmp(col, "feeds") && seg[2] && !seg[3] && !strcmp(method, "PUT"))
        return feed_set_fields;
    if (!strcmp(col, "groups"))
        return group_fields;
    if (!strcmp(col, "rules"))
        return rule_fields;
    if (!strcmp(col, "unblock"))
        return unblock_fields;
    if (!strcmp(col, "schedules"))
        return sched_fields;
    if (!strcmp(col, "devices"))
        return !seg[2] ? NULL : !strcmp(seg[2], "seen") ? seen_fields
               : !strcmp(seg[2], "event") ? event_fields : device_fields;
    if (!strcmp(col, "delegates"))
        return delegate_fields;
    if (!strcmp(col, "grants") && !seg[2])
        return grant_fields;
    if (!strcmp(col, "delegated"))
        return delegated_fields;
    return NULL;
}

static void route(struct api_call *c);

void api_route(struct api_call *c)
{
    int64_t mark = api_actor_mark(c);   /* api_auth.c: audit rows get webd's account */
    route(c);
    api_actor_stamp(c, mark);
}

static void route(struct api_call *c)
{
    char path[256], *seg[SEGS + 1] = { 0 };
    if (strlen(c->url) >= sizeof path)
        return fail(c, 404, "no such path", NULL);
    snprintf(path, sizeof path, "%s", c->url);
    if (!strcmp(path, "/metrics") && !strcmp(c->method, "GET"))
        return metrics(c);
    if (api_auth_route(c))   /* accounts, sessions, unblock requests: api_auth.c */
        return;
    if (incidents_route(c))   /* incidents: incidents_api.c */
        return;
    if (hubshare_route(c))   /* hub sharing switch and status: hubshare.c */
        return;
    if (owner_settings_route(c))   /* notify test, hub enrolment: owner_settings.c */
        return;
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == SEGS)
            return fail(c, 404, "no such path", NULL);
        seg[n++] = t;
    }
    if (n < 2 || strcmp(seg[0], "v1"))
        return fail(c, 404, "no such path; the API lives under /v1 (see docs/api/openapi.yaml)",
                    NULL);
    json_t *body = NULL, *error = NULL;
    const struct api_field *fields = body_fields(c->method, seg);
    if (fields) {
        body = api_parse_body(c->body, c->body_len, fields, &error);
        if (!body) {
            c->status = 400;
            c->out = error;
            return;
        }
    } else if (c->body_len && strcmp(seg[1], "restore")) {
        return fail(c, 400, "this request takes no body", "body");
    }
    const char *col = seg[1];
    int get = !strcmp(c->method, "GET");
    if (!strcmp(col, "status") && get)
        status(c);
    else if (!strcmp(col, "feeds"))
        feeds(c, seg, body);
    else if (!strcmp(col, "lists") && get)
        c->out = query(c, "SELECT name, url, category, enabled, last_good, last_error, entries"
                          " FROM feeds WHERE kind='list' ORDER BY name");
    else if (!strcmp(col, "groups"))
        groups(c, seg, body);
    else if (!strcmp(col, "rules"))
        rules(c, seg, body);
    else if (!strcmp(col, "unblock") && !strcmp(c->method, "POST"))
        unblock(c, body);
    else if (!strcmp(col, "schedules"))
        schedules(c, seg, body);
    else if (!strcmp(col, "explain") && get)
        explain(c);
    else if (!strcmp(col, "devices"))
        devices(c, seg, body);
    else if ((!strcmp(col, "delegates") && (get || !strcmp(c->method, "POST"))) ||
             !strcmp(col, "grants") || (!strcmp(col, "delegated") && !strcmp(c->method, "POST")))
        delegation(c, seg, body);
    else if (!strcmp(col, "audit") && get)
        audit(c);
    else if (!strcmp(col, "counters") && get)
        counters(c);
    else if (!strcmp(col, "compile") && !strcmp(c->method, "POST"))
        changed(c, json_pack("{s:s}", "result", "compile queued"));
    else if (!strcmp(col, "backup") && get)
        c->out = backup_export(c->ad->db, &c->status);
    else if (!strcmp(col, "restore") && !strcmp(c->method, "POST")) {
        c->out = backup_restore(c->ad->db, c->body, c->body_len, &c->status);
        if (c->status < 300)
            c->ad->dirty = 1;
    } else
        fail(c, 404, "no such path or method", NULL);
    json_decref(body);
}
