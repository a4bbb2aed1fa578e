/* Notification queue and delivery. The body is built when queued, so a retry sends what
 * the owner would have seen at the time; delivery runs on the agent loop with a short
 * timeout, so an unreachable relay delays the loop at most 5 s per due item. */
#include "notify.h"
#include "errbuf.h"
#include "incidents.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *setting(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) && *sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

json_t *notify_body(sqlite3 *db, int64_t incident_id, const char *event)
{
    char err[AGENT_ERR];
    json_t *inc = incident_get(db, incident_id, err, sizeof err);
    if (!inc)
        return NULL;
    char *lang = setting(db, "notify_lang");
    const char *l = lang && !strcmp(lang, "en") ? "en" : "ja";
    const char *kind = json_string_value(json_object_get(inc, "kind"));
    json_t *b = json_pack("{s:s,s:I,s:s,s:O,s:O,s:O,s:O,s:O,s:s,s:s,s:O,s:O,s:O}",
                          "event", event, "incident", (json_int_t)incident_id, "kind", kind,
                          "severity", json_object_get(inc, "severity"),
                          "state", json_object_get(inc, "state"),
                          "device", json_object_get(inc, "device"),
                          "label", json_object_get(inc, "label"),
                          "count", json_object_get(inc, "count"),
                          "title", incident_title(kind, l), "advice", incident_advice(kind, l),
                          "titles", json_object_get(inc, "title"),
                          "indicators", json_object_get(inc, "indicators"),
                          "opened", json_object_get(inc, "opened"));
    free(lang);
    json_decref(inc);
    return b;
}

int notify_enqueue(sqlite3 *db, int64_t incident_id, const char *event, int64_t now,
                   char *err, size_t errlen)
{
    static const char *const channels[2][2] = { { "webhook", "notify_webhook" },
                                                { "smtp", "notify_smtp" } };
    int n = 0;
    for (int c = 0; c < 2; c++) {
        char *v = setting(db, channels[c][1]);
        if (!v)
            continue;
        free(v);
        json_t *b = notify_body(db, incident_id, event);
        char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        if (!s)
            return errbuf_set(err, errlen, "no incident %lld", (long long)incident_id);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "INSERT INTO notify_queue(incident_id, channel, body, next_try)"
                               " VALUES (?,?,?,?)", -1, &st, NULL) != SQLITE_OK) {
            free(s);
            return errbuf_set(err, errlen, "database: %s", sqlite3_errmsg(db));
        }
        sqlite3_bind_int64(st, 1, incident_id);
        sqlite3_bind_text(st, 2, channels[c][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, s, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, now);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        free(s);
        if (rc != SQLITE_DONE)
            return errbuf_set(err, errlen, "database: %s", sqlite3_errmsg(db));
        n++;
    }
    return n;
}

struct src {
    const char *p;
    size_t left;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct src *s = arg;
    size_t k = size * n < s->left ? size * n : s->left;
    memcpy(buf, s->p, k);
    s->p += k;
    s->left -= k;
    return k;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static int send_webhook(const char *url, const char *body, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c)
        return errbuf_set(err, errlen, "curl: init failed");
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        return errbuf_set(err, errlen, "webhook %s: %s", url, curl_easy_strerror(rc));
    if (code < 200 || code >= 300)
        return errbuf_set(err, errlen, "webhook %s: HTTP %ld", url, code);
    return 0;
}

static int send_mail(sqlite3 *db, const char *url, const char *body, char *err, size_t errlen)
{
    char *from = setting(db, "notify_mail_from"), *to = setting(db, "notify_mail_to");
    int rc = -1;
    if (!from || !to) {
        errbuf_set(err, errlen, "smtp: set notify_mail_from and notify_mail_to");
        goto out;
    }
    json_t *b = json_loads(body, 0, NULL);
    char *msg = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&msg, &len);
    if (!f) {
        json_decref(b);
        errbuf_set(err, errlen, "out of memory");
        goto out;
    }
    /* Subject in UTF-8 base64 would be proper MIME; the title is sent as a UTF-8 header,
     * which every current mail client shows. */
    fprintf(f, "From: %s\r\nTo: %s\r\nSubject: [otasuke] %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n%s: %s\r\n%s: %lld\r\n",
            from, to, json_string_value(json_object_get(b, "title")),
            json_string_value(json_object_get(b, "advice")), "device",
            json_string_value(json_object_get(b, "device")), "incident",
            (long long)json_integer_value(json_object_get(b, "incident")));
    fclose(f);
    json_decref(b);
    CURL *c = curl_easy_init();
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    struct src s = { msg, len };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &s);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cr = curl_easy_perform(c);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    free(msg);
    if (cr != CURLE_OK)
        errbuf_set(err, errlen, "smtp %s: %s", url, curl_easy_strerror(cr));
    else
        rc = 0;
out:
    free(from);
    free(to);
    return rc;
}

int notify_run(sqlite3 *db, int64_t now)
{
    sqlite3_stmt *st;
    int sent = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, channel, body, tries FROM notify_queue WHERE sent=0"
                           " AND tries<? AND next_try<=? ORDER BY id LIMIT 4", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int(st, 1, NOTIFY_MAX_TRIES);
    sqlite3_bind_int64(st, 2, now);
    struct item { int64_t id; int tries; char *channel, *body; } items[4];
    int n = 0;
    while (n < 4 && sqlite3_step(st) == SQLITE_ROW) {
        items[n].id = sqlite3_column_int64(st, 0);
        items[n].channel = strdup((const char *)sqlite3_column_text(st, 1));
        items[n].body = strdup((const char *)sqlite3_column_text(st, 2));
        items[n].tries = sqlite3_column_int(st, 3);
        n++;
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        char err[AGENT_ERR] = "";
        int webhook = items[i].channel && !strcmp(items[i].channel, "webhook");
        char *url = setting(db, webhook ? "notify_webhook" : "notify_smtp");
        int rc = !url || !items[i].body ? errbuf_set(err, sizeof err, "not configured any more")
                 : webhook ? send_webhook(url, items[i].body, err, sizeof err)
                 : send_mail(db, url, items[i].body, err, sizeof err);
        free(url);
        if (sqlite3_prepare_v2(db, "UPDATE notify_queue SET tries=tries+1, sent=?, next_try=?,"
                               " last_error=? WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, rc == 0 ? now : 0);
            sqlite3_bind_int64(st, 2, now + (30LL << (items[i].tries < 10 ? items[i].tries : 10)));
            if (rc < 0)
                sqlite3_bind_text(st, 3, err, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 4, items[i].id);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
        sent += rc == 0;
        free(items[i].channel);
        free(items[i].body);
    }
    return sent;
}
