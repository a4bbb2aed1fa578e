/* Settings-page actions that reach outside the box and so cannot be plain settings rows.
 * Here the test notification:
 *   POST /v1/notify/test   start sending a test message to the configured webhook and
 *                          mail recipient (202)
 *   GET  /v1/notify/test   idle, sending, or what happened on each channel
 * It runs on a thread of its own: a stalled relay must not hold up the agent loop for its
 * timeout. Hub enrolment (/v1/hub/...) is hub_enrol.c; sharing on/off is hubshare.c's
 * GET/PUT /v1/hub. */
#include "accounts.h"
#include "agentd.h"
#include "api.h"
#include "errbuf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OWNER_NET_TIMEOUT 8L

static void ofail(struct api_call *c, unsigned status, const char *msg, const char *field)
{
    c->status = status;
    json_decref(c->out);
    c->out = api_error_json(msg, field);
}

static char *setting(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?1", -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

/* ---- test notification ---- */

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

static int webhook_test(const char *url, const char *lang, char *err, size_t errlen)
{
    json_t *o = json_pack("{s:s, s:b, s:s, s:{s:s, s:s}}", "event", "test", "test", 1,
                          "lang", lang,
                          "title", "en", "otasuke: test notification from your box",
                          "ja", "otasuke: 箱からのテスト通知です");
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    CURL *c = curl_easy_init();
    if (!c || !body) {
        free(body);
        if (c)
            curl_easy_cleanup(c);
        return errbuf_set(err, errlen, "out of memory");
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, OWNER_NET_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    if (rc != CURLE_OK)
        return errbuf_set(err, errlen, "webhook: %s", curl_easy_strerror(rc));
    if (status < 200 || status > 299)
        return errbuf_set(err, errlen, "webhook: the receiver answered HTTP %ld", status);
    return 0;
}

struct upload {
    const char *p;
    size_t left;
};

static size_t upload_read(char *buf, size_t sz, size_t n, void *u)
{
    struct upload *up = u;
    size_t k = sz * n < up->left ? sz * n : up->left;
    memcpy(buf, up->p, k);
    up->p += k;
    up->left -= k;
    return k;
}

/* A short UTF-8 message: subject as an RFC 2047 encoded-word, body in base64. */
static char *test_mail(const char *from, const char *to, const char *lang, int64_t now)
{
    const char *subj = !strcmp(lang, "en") ? "[otasuke] Test notification"
                                           : "[otasuke] テスト通知";
    const char *text = !strcmp(lang, "en")
        ? "This is a test from your otasuke box. If you can read this, the box can reach you "
          "by e-mail when something happens.\r\n"
        : "otasuke の箱からのテストです。このメールが読めれば、何か起きたときに箱からメールで"
          "お知らせできます。\r\n";
    char s64[256], b64[1024], date[64], mid[64];
    sodium_bin2base64(s64, sizeof s64, (const unsigned char *)subj, strlen(subj),
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)text, strlen(text),
                      sodium_base64_VARIANT_ORIGINAL);
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(mid, sizeof mid, "<test.%lld.%s@otasuke>", (long long)now, hex);
    char *m = NULL;
    if (asprintf(&m, "From: %s\r\nTo: %s\r\nSubject: =?UTF-8?B?%s?=\r\nDate: %s\r\n"
                 "Message-ID: %s\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=UTF-8\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", from, to, s64, date, mid,
                 b64) < 0)
        return NULL;
    return m;
}

static int addr_ok(const char *a)
{
    return a && strchr(a, '@') && !strpbrk(a, "\r\n<>\" ,;") && strlen(a) < 254;
}

static int mail_test(const char *relay, const char *from, const char *to, const char *lang,
                     int64_t now, char *err, size_t errlen)
{
    if (!addr_ok(to))
        return errbuf_set(err, errlen, "notify_mail_to: '%.80s' is not one e-mail address",
                          to ? to : "");
    if (!addr_ok(from))
        return errbuf_set(err, errlen, "notify_mail_from: '%.80s' is not one e-mail address",
                          from);
    char *msg = test_mail(from, to, lang, now);
    CURL *c = curl_easy_init();
    if (!msg || !c) {
        free(msg);
        if (c)
            curl_easy_cleanup(c);
        return errbuf_set(err, errlen, "out of memory");
    }
    char af[300], at[300];
    snprintf(af, sizeof af, "<%s>", from);
    snprintf(at, sizeof at, "<%s>", to);
    struct curl_slist *rcpt = curl_slist_append(NULL, at);
    struct upload up = { msg, strlen(msg) };
    curl_easy_setopt(c, CURLOPT_URL, relay);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, af);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, OWNER_NET_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    free(msg);
    if (rc != CURLE_OK)
        return errbuf_set(err, errlen, "notify_smtp: %s", curl_easy_strerror(rc));
    return 0;
}

/* The one test that may run at a time, and the last result. The thread builds its result
 * alone and hands it over under mu; the main thread only copies it out. */
static struct {
    pthread_mutex_t mu;
    int running;
    json_t *results;         /* last finished run (owned), NULL before the first */
    int64_t started, finished;
} nt = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct nt_job {
    char *hook, *relay, *from, *to;
    char lang[3];
};

static void nt_job_free(struct nt_job *j)
{
    free(j->hook);
    free(j->relay);
    free(j->from);
    free(j->to);
    free(j);
}

static void *nt_thread(void *arg)
{
    struct nt_job *j = arg;
    json_t *out = json_array();
    char err[AGENT_ERR];
    if (j->hook) {
        int ok = webhook_test(j->hook, j->lang, err, sizeof err) == 0;
        json_array_append_new(out, json_pack("{s:s, s:b, s:s?}", "channel", "webhook", "ok", ok,
                                             "error", ok ? NULL : err));
    }
    if (j->relay) {
        int ok = mail_test(j->relay, j->from ? j->from : "otasuke@localhost", j->to, j->lang,
                           time(NULL), err, sizeof err) == 0;
        json_array_append_new(out, json_pack("{s:s, s:b, s:s?}", "channel", "mail", "ok", ok,
                                             "error", ok ? NULL : err));
    }
    nt_job_free(j);
    pthread_mutex_lock(&nt.mu);
    json_decref(nt.results);
    nt.results = out;
    nt.finished = time(NULL);
    nt.running = 0;
    pthread_mutex_unlock(&nt.mu);
    return NULL;
}

static void notify_test_state(struct api_call *c)
{
    pthread_mutex_lock(&nt.mu);
    c->out = json_pack("{s:s, s:I, s:I}", "state", nt.running ? "sending" : nt.results ? "done"
                       : "idle", "started_at", (json_int_t)nt.started, "finished_at",
                       (json_int_t)nt.finished);
    if (!nt.running && nt.results)
        json_object_set_new(c->out, "results", json_deep_copy(nt.results));
    pthread_mutex_unlock(&nt.mu);
}

static void notify_test(struct api_call *c)
{
    sqlite3 *db = c->ad->db;
    struct nt_job *j = calloc(1, sizeof *j);
    if (!j)
        return ofail(c, 500, "out of memory", NULL);
    j->hook = setting(db, "notify_webhook");
    j->relay = setting(db, "notify_smtp");
    j->from = setting(db, "notify_mail_from");
    j->to = setting(db, "notify_mail_to");
    char *lang = setting(db, "notify_lang");
    snprintf(j->lang, sizeof j->lang, "%s", lang && !strcmp(lang, "en") ? "en" : "ja");
    free(lang);
    if (!j->hook && !j->relay) {
        nt_job_free(j);
        return ofail(c, 409, "nothing to test yet: save a webhook address, or an SMTP relay "
                     "and a recipient, first", "notify_webhook");
    }
    pthread_mutex_lock(&nt.mu);
    if (nt.running) {
        pthread_mutex_unlock(&nt.mu);
        nt_job_free(j);
        return ofail(c, 409, "a test is being sent already; wait for its result", NULL);
    }
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, nt_thread, j);
    pthread_attr_destroy(&at);
    if (rc == 0) {
        nt.running = 1;
        nt.started = time(NULL);
    }
    pthread_mutex_unlock(&nt.mu);
    if (rc != 0) {
        nt_job_free(j);
        return ofail(c, 500, "cannot start the test (out of threads?)", NULL);
    }
    c->status = 202;
    notify_test_state(c);
}

int owner_settings_route(struct api_call *c)
{
    if (strcmp(c->url, "/v1/notify/test"))
        return hub_enrol_route(c);   /* hub_enrol.c */
    if (!strcmp(c->method, "POST"))
        notify_test(c);   /* takes no body; one sent anyway is ignored */
    else if (strcmp(c->method, "GET"))
        ofail(c, 405, "use POST to send a test, GET to see its result", NULL);
    else if (c->body_len)
        ofail(c, 400, "this request takes no body", "body");
    else
        notify_test_state(c);
    return 1;
}
