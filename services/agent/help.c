/* Help call. The bundle is built from this incident's rows and its own device row only,
 * so a helper learns what is needed for this case and nothing about the rest of the
 * office. The HTTPS call is synchronous on the agent loop (hubclient's timeouts bound it),
 * which is acceptable for a rare, owner-initiated action. */
#include "help.h"
#include "errbuf.h"
#include "hubclient.h"
#include "incidents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>

json_t *help_bundle(sqlite3 *db, int64_t id, const char *note, char *err, size_t errlen)
{
    json_t *inc = incident_get(db, id, err, errlen);
    if (!inc)
        return NULL;
    const char *kind = json_string_value(json_object_get(inc, "kind"));
    json_t *head = json_pack("{s:I,s:s,s:O,s:O,s:s,s:s,s:O,s:O,s:O}", "id", (json_int_t)id,
                             "kind", kind, "severity", json_object_get(inc, "severity"),
                             "state", json_object_get(inc, "state"),
                             "title_en", incident_title(kind, "en"),
                             "title_ja", incident_title(kind, "ja"),
                             "opened", json_object_get(inc, "opened"),
                             "updated", json_object_get(inc, "updated"),
                             "count", json_object_get(inc, "count"));
    /* The device: its own row, found by the MAC or address the incident names. */
    const char *dev = json_string_value(json_object_get(inc, "device"));
    const char *mac = json_string_value(json_object_get(inc, "mac"));
    const char *args[2] = { mac && *mac ? mac : "-", dev ? dev : "-" };
    json_t *d = agent_query_json(db, "SELECT d.mac, d.ipv4, d.ipv6, d.hostname, d.vendor, d.label,"
                                 " d.importance, d.first_seen, d.last_seen, g.name AS grp,"
                                 " d.malware_hits, d.scan_hits, d.block_hits FROM devices d"
                                 " LEFT JOIN groups g ON g.id=d.group_id WHERE d.mac=?1 OR"
                                 " d.ipv4=?2 OR d.ipv6=?2 LIMIT 1", args, 2, err, errlen);
    json_t *device = json_incref(json_array_get(d, 0));
    json_decref(d);
    if (!device)
        device = json_pack("{s:s}", "address", dev ? dev : "");
    json_t *counters = json_pack("{s:O,s:O,s:O}", "detections", json_object_get(inc, "count"),
                                 "confidence", json_object_get(inc, "confidence"),
                                 "importance", json_object_get(inc, "importance"));
    json_t *bundle = json_pack("{s:O,s:o,s:O,s:o,s:O}",
                               "timeline", json_object_get(inc, "timeline"),
                               "device", device,
                               "indicators", json_object_get(inc, "indicators"),
                               "counters", counters,
                               "quarantined", json_object_get(inc, "quarantined"));
    json_t *out = json_pack("{s:o,s:o}", "incident", head, "bundle", bundle);
    if (note && *note)
        json_object_set_new(out, "note", json_string(note));
    json_decref(inc);
    return out;
}

static char *setting(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

long long help_request(sqlite3 *db, const char *hub_state, int64_t id, const char *who,
                       const char *note, int64_t now, char *err, size_t errlen)
{
    json_t *inc = incident_get(db, id, err, errlen);
    if (!inc)
        return -1;
    int resolved = !strcmp(json_string_value(json_object_get(inc, "state")), "resolved");
    json_decref(inc);
    if (resolved)
        return errbuf_set(err, errlen, "incident %lld is resolved: report a new one to ask "
                          "for help", (long long)id);
    json_t *b = help_bundle(db, id, note, err, errlen);
    if (!b)
        return -1;
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    char *st = hub_state ? NULL : setting(db, "hub_state");
    const char *dir = hub_state ? hub_state : st ? st : HELP_HUB_STATE_DEFAULT;
    char e2[AGENT_ERR];
    struct stat sb;
    /* hubclient_open creates a missing dir; a box that never enrolled must not get one. */
    struct hubclient *hc = stat(dir, &sb) == 0 ? hubclient_open(dir, e2, sizeof e2) : NULL;
    if (!hc && errno == ENOENT)
        snprintf(e2, sizeof e2, "does not exist");
    struct hubclient_info info;
    long long ref = -1;
    if (hc)
        hubclient_info(hc, &info);
    if (!hc || !info.enrolled) {
        errbuf_set(err, errlen, "hub client state %s: %s: enrol the box first (otasukectl hub "
                   "enroll --state %s) or set hub_state", dir, hc ? "not enrolled" : e2, dir);
        goto out;
    }
    struct hubclient_http r;
    memset(&r, 0, sizeof r);
    if (hubclient_request(hc, "POST", "/v1/help", body, 1, &r, e2, sizeof e2) < 0) {
        errbuf_set(err, errlen, "hub: %s", e2);
        goto out;
    }
    if (r.status != 200) {
        hubclient_http_error(&r, "help request", e2, sizeof e2);
        errbuf_set(err, errlen, "%s", e2);
        hubclient_http_free(&r);
        goto out;
    }
    json_t *ans = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    ref = json_integer_value(json_object_get(ans, "id"));
    json_decref(ans);
    hubclient_http_free(&r);
    if (ref <= 0) {
        errbuf_set(err, errlen, "hub: help request answered without an id");
        ref = -1;
        goto out;
    }
    char detail[256];
    snprintf(detail, sizeof detail, "hub help request %lld: sent to the helpers / "
             "ハブに助けを依頼しました（依頼番号%lld）", ref, ref);
    if (incident_transition(db, id, who, "help_requested", note, now, e2, sizeof e2) < 0 &&
        !strstr(e2, "cannot go"))
        errbuf_set(err, errlen, "%s", e2);
    incident_note(db, id, who, "help_sent", detail, now);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "UPDATE incidents SET help_ref=? WHERE id=?", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, ref);
        sqlite3_bind_int64(q, 2, id);
        sqlite3_step(q);
        sqlite3_finalize(q);
    }
out:
    hubclient_close(hc);
    free(st);
    free(body);
    return ref;
}
