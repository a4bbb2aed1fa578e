/* Settings-page actions that reach outside the box and so cannot be plain settings rows:
 *   POST /v1/notify/test        start sending a test message to the configured webhook and
 *                                mail recipient (202); GET /v1/notify/test: "sending" or
 *                                what happened on each channel
 *   GET  /v1/hub/enrolment      the hub this box is enrolled with and its pinned certificate
 *   POST /v1/hub/probe {url}    the certificate a hub presents (fingerprint for the owner
 *                                to compare with what the hub's operator gave them)
 *   POST /v1/hub/enroll {url, code, fingerprint}   enrol, pinning exactly that certificate,
 *                                then follow the hub (feed, heartbeats, sharing)
 * Sharing on/off is hubshare.c's GET/PUT /v1/hub.
 *
 * The test notification runs on a thread of its own (a stalled relay must not hold up the
 * agent loop for its timeout). Probe and enrol block the agent loop for one exchange
 * with the hub (bounded by OWNER_NET_TIMEOUT): they are rare and owner-initiated, the
 * enrolment has to start the hub thread from the main thread, and dnsd keeps answering
 * from its artifacts meanwhile. */
#include "accounts.h"
#include "agentd.h"
#include "api.h"
#include "errbuf.h"
#include "hubclient.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OWNER_NET_TIMEOUT 8L
#define CERT_PEM_MAX 16384

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

/* ---- hub enrolment ---- */

/* SHA-256 of a PEM certificate's DER bytes as "AA:BB:..." (96 chars + NUL). */
static int pem_fingerprint(const char *pem, char out[100], char *err, size_t errlen)
{
    const char *b = strstr(pem, "-----BEGIN CERTIFICATE-----");
    const char *e = b ? strstr(b, "-----END CERTIFICATE-----") : NULL;
    if (!b || !e)
        return errbuf_set(err, errlen, "certificate: not PEM");
    b += strlen("-----BEGIN CERTIFICATE-----");
    size_t cap = (size_t)(e - b), len = 0;
    unsigned char *der = malloc(cap);
    if (!der || sodium_base642bin(der, cap, b, (size_t)(e - b), " \r\n\t", &len, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 || len == 0) {
        free(der);
        return errbuf_set(err, errlen, "certificate: bad base64");
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, der, len);
    free(der);
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(out + i * 3, 4, "%02X%s", h[i], i + 1 < sizeof h ? ":" : "");
    return 0;
}

static int url_ok(const char *url, char *err, size_t errlen)
{
    if (!url || strncmp(url, "https://", 8) || strlen(url) < 10 || strlen(url) > 200 ||
        strpbrk(url, " \r\n\"'<>\\"))
        return errbuf_set(err, errlen, "url: give the hub's address as https://host:port "
                          "(from the hub's operator)");
    return 0;
}

/* Connects to url without trusting anything yet and returns the leaf certificate the hub
 * presented (malloc'd PEM) with its fingerprint. Nothing is sent but a GET of /v1/health. */
static char *probe(const char *url, char fp[100], char *err, size_t errlen)
{
    if (url_ok(url, err, errlen) < 0)
        return NULL;
    char u[256];
    size_t n = strlen(url);
    while (n > 8 && url[n - 1] == '/')
        n--;
    snprintf(u, sizeof u, "%.*s/v1/health", (int)n, url);
    CURL *c = curl_easy_init();
    if (!c) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    /* The certificate is what we want to see, so it cannot be checked yet: the owner
     * compares the fingerprint, and enrolment then pins exactly this certificate. */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, OWNER_NET_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    char *pem = NULL;
    struct curl_certinfo *ci = NULL;
    if (rc != CURLE_OK) {
        errbuf_set(err, errlen, "url: cannot reach %s: %s", url, curl_easy_strerror(rc));
    } else if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
               ci->num_of_certs < 1) {
        errbuf_set(err, errlen, "url: %s presented no certificate", url);
    } else {
        for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
            if (!strncmp(s->data, "Cert:", 5) && strlen(s->data + 5) < CERT_PEM_MAX)
                pem = strdup(s->data + 5);
        if (!pem)
            errbuf_set(err, errlen, "url: %s: cannot read its certificate", url);
        else if (pem_fingerprint(pem, fp, err, errlen) < 0) {
            free(pem);
            pem = NULL;
        }
    }
    curl_easy_cleanup(c);
    return pem;
}

static const char *hub_dir(struct agentd *ad, char *buf, size_t len)
{
    if (ad->hub_dir)
        return ad->hub_dir;
    snprintf(buf, len, "%s/hub", ad->state_dir);
    return buf;
}

static void enrolment(struct api_call *c)
{
    char dirbuf[600], err[AGENT_ERR], fp[100] = "";
    const char *dir = hub_dir(c->ad, dirbuf, sizeof dirbuf);
    struct stat sb;
    char jpath[700];
    snprintf(jpath, sizeof jpath, "%s/hub.json", dir);
    if (stat(jpath, &sb) != 0) {
        c->out = json_pack("{s:b, s:b}", "enrolled", 0, "following", c->ad->hub != NULL);
        return;
    }
    struct hubclient *hc = hubclient_open(dir, err, sizeof err);
    if (!hc)
        return ofail(c, 500, err, NULL);
    struct hubclient_info in;
    hubclient_info(hc, &in);
    char cpath[700];
    snprintf(cpath, sizeof cpath, "%s/hub-cert.pem", dir);
    FILE *f = fopen(cpath, "r");
    if (f) {
        char pem[CERT_PEM_MAX];
        size_t n = fread(pem, 1, sizeof pem - 1, f);
        pem[n] = '\0';
        fclose(f);
        if (pem_fingerprint(pem, fp, err, sizeof err) < 0)
            fp[0] = '\0';
    }
    c->out = json_pack("{s:b, s:b, s:s, s:I, s:s, s:s, s:s?, s:I, s:s?, s:I}",
                       "enrolled", in.enrolled, "following", c->ad->hub != NULL,
                       "url", in.url ? in.url : "", "box_id", (json_int_t)in.box_id,
                       "feed_id", in.feed_id ? in.feed_id : "",
                       "feed_key_id", in.feed_key_id ? in.feed_key_id : "",
                       "fingerprint", fp[0] ? fp : NULL,
                       "last_sync", (json_int_t)in.last_sync,
                       "last_error", in.last_error && *in.last_error ? in.last_error : NULL,
                       "seq", (json_int_t)in.seq);
    hubclient_close(hc);
}

static const struct api_field probe_fields[] = {
    { "url", API_STR, 1, 200 }, { NULL, 0, 0, 0 } };
static const struct api_field enroll_fields[] = {
    { "url", API_STR, 1, 200 }, { "code", API_STR, 1, 64 }, { "fingerprint", API_STR, 1, 100 },
    { "name", API_STR, 0, 64 }, { NULL, 0, 0, 0 } };

static void hub_probe(struct api_call *c, json_t *body)
{
    char err[AGENT_ERR], fp[100];
    char *pem = probe(json_string_value(json_object_get(body, "url")), fp, err, sizeof err);
    if (!pem)
        return ofail(c, strncmp(err, "url: cannot", 11) ? 400 : 502, err, "url");
    free(pem);
    c->out = json_pack("{s:s}", "fingerprint", fp);
}

static void hub_enroll(struct api_call *c, json_t *body)
{
    struct agentd *ad = c->ad;
    char err[AGENT_ERR], fp[100], dirbuf[600];
    if (ad->hub)
        return ofail(c, 409, "hub: this box already follows a hub; moving to another hub "
                     "is done on the box (otasukectl hub enroll) and needs a restart", "url");
    const char *url = json_string_value(json_object_get(body, "url"));
    const char *want = json_string_value(json_object_get(body, "fingerprint"));
    char *pem = probe(url, fp, err, sizeof err);
    if (!pem)
        return ofail(c, strncmp(err, "url: cannot", 11) ? 400 : 502, err, "url");
    if (strcasecmp(fp, want)) {
        free(pem);
        return ofail(c, 409, "fingerprint: the hub now presents another certificate than the "
                     "one you checked; check again and compare with the hub's operator", "fingerprint");
    }
    const char *dir = hub_dir(ad, dirbuf, sizeof dirbuf);
    mkdir(dir, 0700);
    char cpath[700];
    snprintf(cpath, sizeof cpath, "%s/checked-cert.pem", dir);
    FILE *f = fopen(cpath, "w");
    int wrote = f && fputs(pem, f) >= 0;
    if (f && fclose(f) != 0)
        wrote = 0;
    free(pem);
    if (!wrote)
        return ofail(c, 500, "hub: cannot write the certificate into the hub state directory",
                     NULL);
    struct hubclient *hc = hubclient_open(dir, err, sizeof err);
    if (!hc) {
        unlink(cpath);
        return ofail(c, 500, err, NULL);
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    int rc = hubclient_enroll(hc, url, json_string_value(json_object_get(body, "code")), cpath,
                              name && *name ? name : "box", "otasuke-agent 0.1", err,
                              sizeof err);
    hubclient_close(hc);
    unlink(cpath);   /* copied into the state dir as the pinned hub-cert.pem */
    if (rc < 0)
        return ofail(c, strstr(err, "code") ? 403 : 502, err, "code");
    json_t *after = json_pack("{s:s, s:s}", "url", url, "fingerprint", fp);
    agent_audit(ad->db, AGENT_OWNER, "hub.enroll", 0, "ok", NULL, NULL, after);
    json_decref(after);
    if (agentd_hub_start(ad, dir, err, sizeof err) < 0)
        return ofail(c, 500, err, NULL);
    static char enrolled_dir[600];   /* ad->hub_dir points here for the process's life */
    if (!ad->hub_dir) {
        snprintf(enrolled_dir, sizeof enrolled_dir, "%s", dir);
        ad->hub_dir = enrolled_dir;
    }
    enrolment(c);
}

int owner_settings_route(struct api_call *c)
{
    int post = !strcmp(c->method, "POST");
    const struct api_field *fields = NULL;
    if (!strcmp(c->url, "/v1/notify/test")) {
        if (!post && strcmp(c->method, "GET"))
            return ofail(c, 405, "use POST to send a test, GET to see its result", NULL), 1;
    } else if (!strcmp(c->url, "/v1/hub/enrolment")) {
        if (strcmp(c->method, "GET"))
            return ofail(c, 405, "use GET", NULL), 1;
    } else if (!strcmp(c->url, "/v1/hub/probe")) {
        fields = probe_fields;
    } else if (!strcmp(c->url, "/v1/hub/enroll")) {
        fields = enroll_fields;
    } else {
        return 0;
    }
    if (fields && !post)
        return ofail(c, 405, "use POST", NULL), 1;
    json_t *body = NULL, *error = NULL;
    if (fields) {
        body = api_parse_body(c->body, c->body_len, fields, &error);
        if (!body) {
            c->status = 400;
            c->out = error;
            return 1;
        }
    } else if (c->body_len && strcmp(c->method, "POST")) {
        ofail(c, 400, "this request takes no body", "body");
        return 1;
    }
    if (!strcmp(c->url, "/v1/notify/test"))
        post ? notify_test(c) : notify_test_state(c);
    else if (!strcmp(c->url, "/v1/hub/enrolment"))
        enrolment(c);
    else if (!strcmp(c->url, "/v1/hub/probe"))
        hub_probe(c, body);
    else
        hub_enroll(c, body);
    json_decref(body);
    return 1;
}
