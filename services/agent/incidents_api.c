/* Local API for incidents (routed from api_routes.c):
 *   GET  /v1/incidents[?state=S]             list, newest first
 *   GET  /v1/incidents/N                     one, with timeline and texts
 *   GET  /v1/incidents/N/report?format=md|html&lang=en|ja   the blameless report
 *   POST /v1/incidents/N/{ack|resolve|helper}  {"note","by"}  lifecycle steps
 *   POST /v1/incidents/N/help                {"note","by"}  send to the hub's help inbox
 *   GET  /v1/incidents/N/bundle              what a help call would send
 *   POST /v1/incidents/N/session             {"consent":true,"minutes":60,"ui_port":443}
 *                                            ("seconds":N instead of minutes: short sessions)
 *                                            remote help through the hub bastion
 *   DELETE /v1/incidents/N/session           the owner ends it now
 *   POST /v1/incidents/N/contain             {"release":false,"by"}  quarantine / release
 *   POST /v1/incidents/report                {"note","device","by"}  owner self-report
 *   GET|POST /v1/incidents/settings          notify_* / auto_quarantine / detect_* */
#include "agentd.h"
#include "api.h"
#include "help.h"
#include "incidents.h"
#include "notify.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct api_field step_fields[] = {
    { "note", API_STR, 0, 2000 }, { "by", API_STR, 0, 64 }, { NULL, 0, 0, 0 } };
static const struct api_field contain_fields[] = {
    { "release", API_BOOL, 0, 0 }, { "by", API_STR, 0, 64 }, { NULL, 0, 0, 0 } };
static const struct api_field session_fields[] = {
    { "consent", API_BOOL, 0, 0 }, { "minutes", API_INT, 0, 240 },
    { "seconds", API_INT, 0, HELP_SESSION_MAX_S }, { "ui_port", API_INT, 0, 65535 },
    { "by", API_STR, 0, 64 }, { NULL, 0, 0, 0 } };
static const struct api_field report_fields[] = {
    { "note", API_STR, 1, 2000 }, { "device", API_STR, 0, 64 }, { "by", API_STR, 0, 64 },
    { NULL, 0, 0, 0 } };
static const struct api_field settings_fields[] = {
    { "notify_webhook", API_STR, 0, 512 }, { "notify_smtp", API_STR, 0, 512 },
    { "notify_mail_from", API_STR, 0, 254 }, { "notify_mail_to", API_STR, 0, 254 },
    { "notify_lang", API_STR, 0, 2 }, { "auto_quarantine", API_BOOL, 0, 0 },
    /* counts stop at what a detector's tracker can hold (0: otasuke.conf's value) */
    { "detect_scan_hosts", API_INT, 0, DETECT_MAX_COUNT }, { "detect_scan_ports", API_INT, 0, DETECT_MAX_COUNT },
    { "detect_scan_window", API_INT, 0, 86400 }, { "detect_tunnel_names", API_INT, 0, DETECT_MAX_COUNT },
    { "detect_tunnel_window", API_INT, 0, 86400 }, { "detect_tunnel_label_len", API_INT, 0, 63 },
    { "detect_feed_stale", API_INT, 0, 0 }, { "detect_disk_pct", API_INT, 0, 100 },
    { "detect_mem_pct", API_INT, 0, 100 }, { "detect_restarts", API_INT, 0, 1000 },
    { "hub_state", API_STR, 0, 256 }, { NULL, 0, 0, 0 } };

static void fail(struct api_call *c, unsigned status, const char *msg, const char *field)
{
    c->status = status;
    json_decref(c->out);
    c->out = api_error_json(msg, field);
}

static void fail_err(struct api_call *c, const char *err)
{
    fail(c, !strncmp(err, "database", 8) ? 500 : !strncmp(err, "no incident", 11) ? 404 : 400,
         err, NULL);
}

static const char *by(json_t *body)
{
    const char *w = json_string_value(json_object_get(body, "by"));
    return w && *w ? w : AGENT_OWNER;
}

static const char *note(json_t *body)
{
    return json_string_value(json_object_get(body, "note"));
}

static void settings(struct api_call *c, json_t *body)
{
    char err[AGENT_ERR];
    if (body) {
        const char *k;
        json_t *v;
        if (json_is_string(json_object_get(body, "notify_lang")) &&
            strcmp(json_string_value(json_object_get(body, "notify_lang")), "ja") &&
            strcmp(json_string_value(json_object_get(body, "notify_lang")), "en"))
            return fail(c, 400, "notify_lang: use ja or en", "notify_lang");
        if (agent_tx_begin(c->ad->db, err, sizeof err) < 0)
            return fail(c, 500, err, NULL);
        json_object_foreach(body, k, v) {
            char val[600];
            if (json_is_boolean(v))
                snprintf(val, sizeof val, "%d", json_is_true(v));
            else if (json_is_integer(v) && json_integer_value(v) == 0 && !strncmp(k, "detect_", 7))
                val[0] = '\0';   /* 0: back to otasuke.conf's value (or the default) */
            else if (json_is_integer(v))
                snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
            else
                snprintf(val, sizeof val, "%s", json_string_value(v));
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(c->ad->db, *val ? "INSERT OR REPLACE INTO settings VALUES (?,?)"
                                   : "DELETE FROM settings WHERE key=?", -1, &st,
                                   NULL) != SQLITE_OK) {
                agent_tx_rollback(c->ad->db);
                return fail(c, 500, "database: settings", NULL);
            }
            sqlite3_bind_text(st, 1, k, -1, SQLITE_TRANSIENT);
            if (*val)   /* an empty value removes the setting */
                sqlite3_bind_text(st, 2, val, -1, SQLITE_TRANSIENT);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
        /* The webhook URL may carry a token: the audit says what changed, not the values. */
        json_t *keys = json_array();
        json_object_foreach(body, k, v)
            json_array_append_new(keys, json_string(k));
        json_t *after = json_pack("{s:o}", "changed", keys);
        agent_audit(c->ad->db, AGENT_OWNER, "incidents.settings", 0, "ok", NULL, NULL, after);
        json_decref(after);
        if (agent_tx_commit(c->ad->db, err, sizeof err) < 0) {
            agent_tx_rollback(c->ad->db);
            return fail(c, 500, err, NULL);
        }
        incidents_settings_changed(c->ad);   /* new thresholds apply from now on */
    }
    c->out = agent_query_json(c->ad->db, "SELECT key, CASE WHEN key IN ('notify_webhook',"
                              "'notify_smtp') THEN 'set' ELSE value END AS value FROM settings"
                              " WHERE key LIKE 'notify\\_%' ESCAPE '\\' OR key LIKE 'detect\\_%'"
                              " ESCAPE '\\' OR key='auto_quarantine' ORDER BY key", NULL, 0, err,
                              sizeof err);
    if (!c->out)
        fail(c, 500, err, NULL);
}

static void one(struct api_call *c, int64_t id, const char *verb, json_t *body)
{
    char err[AGENT_ERR];
    int64_t now = time(NULL);
    int get = !strcmp(c->method, "GET");
    if (!verb && get) {
        c->out = incident_get(c->ad->db, id, err, sizeof err);
        if (!c->out)
            fail_err(c, err);
        return;
    }
    if (verb && !strcmp(verb, "report") && get) {
        const char *fmt = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "format");
        const char *lang = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "lang");
        char *t = incident_report(c->ad->db, id, fmt ? fmt : "md", lang ? lang : "en", now, err,
                                  sizeof err);
        if (!t)
            return fail_err(c, err);
        c->text = t;
        c->ctype = fmt && !strcmp(fmt, "html") ? "text/html; charset=utf-8"
                                               : "text/markdown; charset=utf-8";
        return;
    }
    if (verb && !strcmp(verb, "bundle") && get) {
        c->out = help_bundle(c->ad->db, id, NULL, err, sizeof err);
        if (!c->out)
            fail_err(c, err);
        return;
    }
    if (verb && !strcmp(verb, "session") && !strcmp(c->method, "DELETE")) {
        if (help_session_stop(c->ad->db, id, AGENT_OWNER, "ended by the owner", now, err,
                              sizeof err) < 0)
            return fail(c, 404, err, NULL);
        c->out = json_pack("{s:I,s:s}", "incident", (json_int_t)id, "session", "ended");
        return;
    }
    if (verb && !strcmp(verb, "session") && !strcmp(c->method, "POST")) {
        /* Remote help exists only through this call: the owner's consent, made here. */
        json_t *m = json_object_get(body, "minutes"), *p = json_object_get(body, "ui_port");
        json_t *secs = json_object_get(body, "seconds");
        int lifetime = secs ? (int)json_integer_value(secs)
                       : m ? 60 * (int)json_integer_value(m) : 3600;
        char *hs = NULL;
        json_t *row = agent_query_json(c->ad->db, "SELECT value FROM settings WHERE"
                                       " key='hub_state'", NULL, 0, err, sizeof err);
        const char *v = json_string_value(json_object_get(json_array_get(row, 0), "value"));
        hs = strdup(v ? v : HELP_HUB_STATE_DEFAULT);
        json_decref(row);
        int port = help_session_start(c->ad->db, hs, c->ad->state_dir ? c->ad->state_dir : ".",
                                      id, by(body),
                                      json_is_true(json_object_get(body, "consent")),
                                      lifetime, p ? (int)json_integer_value(p) : 443, now, err,
                                      sizeof err);
        free(hs);
        if (port < 0)
            return fail(c, strstr(err, "consent") || strstr(err, "minutes") ||
                        strstr(err, "ui_port") ? 400 : strstr(err, "no incident") ? 404 : 502,
                        err, NULL);
        c->out = json_pack("{s:I,s:i,s:i,s:i}", "incident", (json_int_t)id, "bastion_port",
                           port, "minutes", (lifetime + 59) / 60, "seconds", lifetime);
        return;
    }
    if (!verb || strcmp(c->method, "POST"))
        return fail(c, 405, "use GET /v1/incidents/N, GET .../report or POST .../ack|resolve|"
                    "help|helper|contain", NULL);
    if (!strcmp(verb, "contain")) {
        int release = json_is_true(json_object_get(body, "release"));
        if (incident_contain(c->ad->db, id, by(body), !release, now, err, sizeof err) < 0)
            return fail_err(c, err);
        c->ad->dirty = 1;   /* fw.set carries the quarantine set: compile now */
        c->out = json_pack("{s:I,s:b}", "incident", (json_int_t)id, "quarantined", !release);
        return;
    }
    if (!strcmp(verb, "help")) {   /* to the hub's inbox, then help_requested */
        long long ref = help_request(c->ad->db, NULL, id, by(body), note(body), now, err,
                                     sizeof err);
        if (ref < 0)
            return fail(c, strstr(err, "no incident") ? 404 : 502, err, NULL);
        c->out = incident_get(c->ad->db, id, err, sizeof err);
        json_object_set_new(c->out, "help_request", json_integer(ref));
        return;
    }
    const char *state = !strcmp(verb, "ack") ? "acknowledged" : !strcmp(verb, "resolve")
                        ? "resolved" : !strcmp(verb, "help") ? "help_requested"
                        : !strcmp(verb, "helper") ? "helper_connected" : NULL;
    if (!state)
        return fail(c, 404, "no such incident action: use ack, resolve, help, helper, contain "
                    "or report", NULL);
    if (incident_transition(c->ad->db, id, by(body), state, note(body), now, err, sizeof err) < 0)
        return fail_err(c, err);
    if (!strcmp(state, "resolved") && notify_enqueue(c->ad->db, id, "resolved", now, err,
                                                     sizeof err) > 0)
        notify_kick(c->ad->db, now);
    c->out = incident_get(c->ad->db, id, err, sizeof err);
}

int incidents_route(struct api_call *c)
{
    if (strncmp(c->url, "/v1/incidents", 13) || (c->url[13] && c->url[13] != '/'))
        return 0;
    char path[128], *seg[4] = { 0 };
    if (strlen(c->url) >= sizeof path) {
        fail(c, 404, "no such path", NULL);
        return 1;
    }
    snprintf(path, sizeof path, "%s", c->url + 13);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 3) {
            fail(c, 404, "no such path", NULL);
            return 1;
        }
        seg[n++] = t;
    }
    int post = !strcmp(c->method, "POST"), get = !strcmp(c->method, "GET");
    const struct api_field *fields = NULL;
    if (post)
        fields = !seg[0] ? NULL : !strcmp(seg[0], "report") ? report_fields
                 : !strcmp(seg[0], "settings") ? settings_fields
                 : seg[1] && !strcmp(seg[1], "contain") ? contain_fields
                 : seg[1] && !strcmp(seg[1], "session") ? session_fields : step_fields;
    json_t *body = NULL, *error = NULL;
    if (fields) {
        body = api_parse_body(c->body_len ? c->body : "{}", c->body_len ? c->body_len : 2,
                              fields, &error);
        if (!body) {
            c->status = 400;
            c->out = error;
            return 1;
        }
    } else if (c->body_len) {
        fail(c, 400, "this request takes no body", "body");
        return 1;
    }
    char err[AGENT_ERR];
    if (!seg[0] && get) {
        const char *state = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "state");
        c->out = incident_list(c->ad->db, state, err, sizeof err);
        if (!c->out)
            fail(c, 500, err, NULL);
    } else if (seg[0] && !strcmp(seg[0], "settings") && !seg[1] && (get || post)) {
        settings(c, body);
    } else if (seg[0] && !strcmp(seg[0], "report") && !seg[1] && post) {
        const char *dev = json_string_value(json_object_get(body, "device"));
        int64_t id = incident_self_report(c->ad->db, by(body), dev, note(body), time(NULL), err,
                                          sizeof err);
        if (id < 0) {
            fail(c, 400, err, "note");
        } else {
            c->status = 201;
            c->out = json_pack("{s:I,s:{s:s,s:s}}", "id", (json_int_t)id, "thanks", "en",
                               incident_thanks("en"), "ja", incident_thanks("ja"));
            if (notify_enqueue(c->ad->db, id, "opened", time(NULL), err, sizeof err) > 0)
                notify_kick(c->ad->db, time(NULL));
        }
    } else if (seg[0]) {
        char *end;
        long long id = strtoll(seg[0], &end, 10);
        if (*end || id <= 0)
            fail(c, 400, "incident id must be a positive integer", "id");
        else
            one(c, id, seg[1], body);
    } else {
        fail(c, 405, "use GET /v1/incidents or POST /v1/incidents/report", NULL);
    }
    json_decref(body);
    return 1;
}
