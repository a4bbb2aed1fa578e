/* Hub enrolment from the owner's Settings page (routed by owner_settings.c):
 *   GET  /v1/hub/enrolment   the hub this box follows and its pinned certificate; also
 *                            finishes an enrolment the worker completed (main thread:
 *                            audit, then the hub threads start)
 *   POST /v1/hub/probe {url}                      start fetching the hub's certificate
 *   POST /v1/hub/enroll {url, code, fingerprint}  start enrolling, pinning exactly the
 *                            certificate the owner compared with the operator's
 *   GET  /v1/hub/job         what the worker is doing / did: {kind, state, fingerprint,
 *                            error, field}
 * The network part runs on a worker thread (one job at a time): a hub that does not
 * answer costs the owner a wait with a progress line, never the agent loop (hubclient's
 * own timeouts are 30 s per request). */
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

#define PROBE_TIMEOUT 8L
#define CERT_PEM_MAX 16384

static void hfail(struct api_call *c, unsigned status, const char *msg, const char *field)
{
    c->status = status;
    json_decref(c->out);
    c->out = api_error_json(msg, field);
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

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
    curl_easy_setopt(c, CURLOPT_TIMEOUT, PROBE_TIMEOUT);
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
        return hfail(c, 500, err, NULL);
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
    c->out = json_pack("{s:b, s:b, s:s, s:I, s:s?, s:s, s:s, s:s?, s:I, s:s?, s:I}",
                       "enrolled", in.enrolled, "following", c->ad->hub != NULL,
                       "url", in.url ? in.url : "", "box_id", (json_int_t)in.box_id,
                       "org", in.org && *in.org ? in.org : NULL,
                       "feed_id", in.feed_id ? in.feed_id : "",
                       "feed_key_id", in.feed_key_id ? in.feed_key_id : "",
                       "fingerprint", fp[0] ? fp : NULL,
                       "last_sync", (json_int_t)in.last_sync,
                       "last_error", in.last_error && *in.last_error ? in.last_error : NULL,
                       "seq", (json_int_t)in.seq);
    hubclient_close(hc);
}

/* The worker's job. Inputs are copied in before the thread starts; results are written
 * by the worker and read by the main thread, both under mu. */
static struct {
    pthread_mutex_t mu;
    int running;
    int enroll;                  /* 0 probe, 1 enroll */
    int finished, finalised;     /* enroll: done ok, audited and hub started */
    char url[256], code[72], want[100], name[72], dir[600];
    char fp[100], err[AGENT_ERR], field[16];
    unsigned status;             /* HTTP status for the error, 0 = ok */
} hj = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *hub_worker(void *arg)
{
    (void)arg;
    char url[256], code[72], want[100], name[72], dir[600], fp[100] = "", err[AGENT_ERR] = "";
    pthread_mutex_lock(&hj.mu);
    int enroll = hj.enroll;
    memcpy(url, hj.url, sizeof url);
    memcpy(code, hj.code, sizeof code);
    memcpy(want, hj.want, sizeof want);
    memcpy(name, hj.name, sizeof name);
    memcpy(dir, hj.dir, sizeof dir);
    pthread_mutex_unlock(&hj.mu);
    unsigned status = 0;
    const char *field = "url";
    char *pem = probe(url, fp, err, sizeof err);
    if (!pem) {
        status = strncmp(err, "url: cannot", 11) ? 400 : 502;
    } else if (enroll && strcasecmp(fp, want)) {
        status = 409;
        field = "fingerprint";
        snprintf(err, sizeof err, "fingerprint: the hub now presents another certificate than "
                 "the one you checked; check again and compare with the hub's operator");
    } else if (enroll) {
        char cpath[700];
        mkdir(dir, 0700);
        snprintf(cpath, sizeof cpath, "%s/checked-cert.pem", dir);
        FILE *f = fopen(cpath, "w");
        int wrote = f && fputs(pem, f) >= 0;
        if (f && fclose(f) != 0)
            wrote = 0;
        struct hubclient *hc = wrote ? hubclient_open(dir, err, sizeof err) : NULL;
        if (!wrote) {
            status = 500;
            snprintf(err, sizeof err, "hub: cannot write the certificate into %.200s", dir);
        } else if (!hc) {
            status = 500;
        } else {
            if (hubclient_enroll(hc, url, code, cpath, name[0] ? name : "box",
                                 "otasuke-agent 0.1", err, sizeof err) < 0) {
                status = strstr(err, "code") ? 403 : 502;
                field = "code";
            }
            hubclient_close(hc);
        }
        unlink(cpath);   /* enrolment copied it into the state dir as hub-cert.pem */
    }
    free(pem);
    sodium_memzero(code, sizeof code);
    pthread_mutex_lock(&hj.mu);
    memcpy(hj.fp, fp, sizeof fp);
    snprintf(hj.err, sizeof hj.err, "%s", status ? err : "");
    snprintf(hj.field, sizeof hj.field, "%s", status ? field : "");
    hj.status = status;
    hj.finished = enroll && !status;
    hj.finalised = 0;
    sodium_memzero(hj.code, sizeof hj.code);
    hj.running = 0;
    pthread_mutex_unlock(&hj.mu);
    return NULL;
}

/* Main thread: an enrolment the worker completed is audited and the hub threads start. */
static void finalise(struct agentd *ad)
{
    char dir[600], url[256], fp[100], err[AGENT_ERR];
    pthread_mutex_lock(&hj.mu);
    int due = hj.finished && !hj.finalised && !hj.running;
    if (due) {
        hj.finalised = 1;
        memcpy(dir, hj.dir, sizeof dir);
        memcpy(url, hj.url, sizeof url);
        memcpy(fp, hj.fp, sizeof fp);
    }
    pthread_mutex_unlock(&hj.mu);
    if (!due)
        return;
    json_t *after = json_pack("{s:s, s:s}", "url", url, "fingerprint", fp);
    agent_audit(ad->db, AGENT_OWNER, "hub.enroll", 0, "ok", NULL, NULL, after);
    json_decref(after);
    if (ad->hub)
        return;
    if (agentd_hub_start(ad, dir, err, sizeof err) < 0) {
        pthread_mutex_lock(&hj.mu);
        snprintf(hj.err, sizeof hj.err, "%s", err);
        hj.status = 500;
        pthread_mutex_unlock(&hj.mu);
        return;
    }
    static char enrolled_dir[600];   /* ad->hub_dir points here for the process's life */
    if (!ad->hub_dir) {
        snprintf(enrolled_dir, sizeof enrolled_dir, "%s", dir);
        ad->hub_dir = enrolled_dir;
    }
}

static void job_state(struct api_call *c)
{
    finalise(c->ad);
    pthread_mutex_lock(&hj.mu);
    const char *state = hj.running ? "running" : hj.url[0] ? "done" : "idle";
    c->out = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:i}", "kind", hj.enroll ? "enroll" : "probe",
                       "state", state, "fingerprint", !hj.running && hj.fp[0] ? hj.fp : NULL,
                       "error", !hj.running && hj.status ? hj.err : NULL,
                       "field", !hj.running && hj.status ? hj.field : NULL,
                       "status", hj.running ? 0 : (int)hj.status);
    pthread_mutex_unlock(&hj.mu);
}

static const struct api_field probe_fields[] = {
    { "url", API_STR, 1, 200 }, { NULL, 0, 0, 0 } };
static const struct api_field enroll_fields[] = {
    { "url", API_STR, 1, 200 }, { "code", API_STR, 1, 64 }, { "fingerprint", API_STR, 1, 100 },
    { "name", API_STR, 0, 64 }, { NULL, 0, 0, 0 } };

static void start(struct api_call *c, json_t *body, int enroll)
{
    struct agentd *ad = c->ad;
    char err[AGENT_ERR], dirbuf[600];
    const char *url = json_string_value(json_object_get(body, "url"));
    if (url_ok(url, err, sizeof err) < 0)
        return hfail(c, 400, err, "url");
    if (enroll && ad->hub)
        return hfail(c, 409, "hub: this box already follows a hub; moving to another hub is "
                     "done on the box (otasukectl hub enroll) and needs a restart", "url");
    const char *dir = hub_dir(ad, dirbuf, sizeof dirbuf);
    pthread_mutex_lock(&hj.mu);
    if (hj.running) {
        pthread_mutex_unlock(&hj.mu);
        return hfail(c, 409, "hub: still busy with the previous check; wait for it", NULL);
    }
    memset(&hj.url, 0, sizeof hj - offsetof(__typeof__(hj), url));
    hj.enroll = enroll;
    hj.finished = hj.finalised = 0;
    snprintf(hj.url, sizeof hj.url, "%s", url);
    snprintf(hj.dir, sizeof hj.dir, "%s", dir);
    if (enroll) {
        const char *name = json_string_value(json_object_get(body, "name"));
        snprintf(hj.code, sizeof hj.code, "%s", json_string_value(json_object_get(body, "code")));
        snprintf(hj.want, sizeof hj.want, "%s",
                 json_string_value(json_object_get(body, "fingerprint")));
        snprintf(hj.name, sizeof hj.name, "%s", name ? name : "");
    }
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, hub_worker, NULL);
    pthread_attr_destroy(&at);
    if (rc == 0)
        hj.running = 1;
    else
        hj.url[0] = '\0';
    pthread_mutex_unlock(&hj.mu);
    if (rc != 0)
        return hfail(c, 500, "hub: cannot start the check (out of threads?)", NULL);
    c->status = 202;
    job_state(c);
}

int hub_enrol_route(struct api_call *c)
{
    int get = !strcmp(c->method, "GET"), post = !strcmp(c->method, "POST");
    const struct api_field *fields = !strcmp(c->url, "/v1/hub/probe") ? probe_fields
                                     : !strcmp(c->url, "/v1/hub/enroll") ? enroll_fields : NULL;
    if (!fields && strcmp(c->url, "/v1/hub/enrolment") && strcmp(c->url, "/v1/hub/job"))
        return 0;
    if ((fields && !post) || (!fields && !get)) {
        hfail(c, 405, fields ? "use POST" : "use GET", NULL);
        return 1;
    }
    if (!fields) {
        if (c->body_len)
            hfail(c, 400, "this request takes no body", "body");
        else if (!strcmp(c->url, "/v1/hub/job"))
            job_state(c);
        else {
            finalise(c->ad);
            enrolment(c);
        }
        return 1;
    }
    json_t *error = NULL, *body = api_parse_body(c->body, c->body_len, fields, &error);
    if (!body) {
        c->status = 400;
        c->out = error;
        return 1;
    }
    start(c, body, fields == enroll_fields);
    json_decref(body);
    return 1;
}
