/* Hub client: state file, HTTPS requests (libcurl, hub certificate pinned by file),
 * enrolment, heartbeat, contributions. The feed half is in hubclient_feed.c. */
#include "hubclient_internal.h"
#include "atomicfile.h"
#include "errbuf.h"
#include "growbuf.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void copy_str(json_t *o, const char *k, char *out, size_t outlen)
{
    const char *s = json_string_value(json_object_get(o, k));
    snprintf(out, outlen, "%s", s ? s : "");
}

static int load_state(struct hubclient *hc, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_load_file(hc->state_path, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        if (access(hc->state_path, F_OK) != 0)
            return 0;   /* not enrolled yet */
        errbuf_set(err, errlen, "%s:%d: %s (enrol again or restore it)", hc->state_path, je.line,
               je.text);
        return -1;
    }
    copy_str(o, "url", hc->url, sizeof hc->url);
    copy_str(o, "org", hc->org, sizeof hc->org);
    copy_str(o, "token", hc->token, sizeof hc->token);
    copy_str(o, "feed_id", hc->feed_id, sizeof hc->feed_id);
    copy_str(o, "mqtt_user", hc->mqtt_user, sizeof hc->mqtt_user);
    copy_str(o, "mqtt_pass", hc->mqtt_pass, sizeof hc->mqtt_pass);
    copy_str(o, "mqtt_broker", hc->mqtt_broker, sizeof hc->mqtt_broker);
    copy_str(o, "feed_topic", hc->feed_topic, sizeof hc->feed_topic);
    copy_str(o, "last_error", hc->last_error, sizeof hc->last_error);
    hc->mqtt_tls = json_is_true(json_object_get(o, "mqtt_tls"));
    hc->box_id = (long)json_integer_value(json_object_get(o, "box_id"));
    hc->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    hc->last_sync = json_integer_value(json_object_get(o, "last_sync"));
    hc->feed_created = json_integer_value(json_object_get(o, "feed_created"));
    hc->last_error_at = json_integer_value(json_object_get(o, "last_error_at"));
    char pk[80], e2[200];
    copy_str(o, "feed_pubkey", pk, sizeof pk);
    json_decref(o);
    if (feed_key_decode(pk, hc->feed_pk, sizeof hc->feed_pk, e2, sizeof e2) < 0) {
        errbuf_set(err, errlen, "%s: field 'feed_pubkey': %s", hc->state_path, e2);
        return -1;
    }
    feed_key_id(hc->feed_pk, hc->feed_key_id);
    if (!hc->url[0] || !hc->token[0] || !hc->feed_id[0]) {
        errbuf_set(err, errlen, "%s: url, token or feed_id missing (enrol again)", hc->state_path);
        return -1;
    }
    hc->enrolled = 1;
    return 0;
}

int hubclient_save(struct hubclient *hc, char *err, size_t errlen)
{
    char pk[80];
    feed_key_encode(hc->feed_pk, FEED_PUBKEY_BYTES, pk, sizeof pk);
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I,"
                          " s:s, s:I}",
                          "url", hc->url, "box_id", (json_int_t)hc->box_id, "org", hc->org,
                          "token", hc->token,
                          "feed_id", hc->feed_id, "feed_pubkey", pk, "mqtt_user", hc->mqtt_user,
                          "mqtt_pass", hc->mqtt_pass, "mqtt_broker", hc->mqtt_broker,
                          "mqtt_tls", hc->mqtt_tls, "feed_topic", hc->feed_topic,
                          "seq", (json_int_t)hc->seq, "last_sync", (json_int_t)hc->last_sync,
                          "feed_created", (json_int_t)hc->feed_created,
                          "last_error", hc->last_error,
                          "last_error_at", (json_int_t)hc->last_error_at);
    if (!o) {
        errbuf_set(err, errlen, "cannot encode the hub state");
        return -1;
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) {
        errbuf_set(err, errlen, "cannot encode the hub state");
        return -1;
    }
    /* Credentials inside: 0600, and replaced atomically so a crash keeps the old. */
    size_t n = strlen(s);
    int rc = atomic_write_file(hc->state_path, s, n, 0600, err, errlen);
    free(s);
    if (rc < 0)
        return -1;
    return 0;
}

struct hubclient *hubclient_open(const char *state_dir, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        errbuf_set(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    static int curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
        errbuf_set(err, errlen, "%s: %s", state_dir, strerror(errno));
        return NULL;
    }
    struct hubclient *hc = calloc(1, sizeof *hc);
    if (!hc) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(hc->dir, sizeof hc->dir, "%s", state_dir);
    snprintf(hc->state_path, sizeof hc->state_path, "%s/hub.json", state_dir);
    snprintf(hc->key_path, sizeof hc->key_path, "%s/box.key", state_dir);
    snprintf(hc->cacert, sizeof hc->cacert, "%s/hub-cert.pem", state_dir);
    snprintf(hc->store, sizeof hc->store, "%s/feed.json", state_dir);
    if (load_state(hc, err, errlen) < 0) {
        free(hc);
        return NULL;
    }
    return hc;
}

void hubclient_close(struct hubclient *hc)
{
    if (!hc)
        return;
    sodium_memzero(hc->token, sizeof hc->token);
    sodium_memzero(hc->mqtt_pass, sizeof hc->mqtt_pass);
    free(hc);
}

void hubclient_info(const struct hubclient *hc, struct hubclient_info *o)
{
    memset(o, 0, sizeof *o);
    o->enrolled = hc->enrolled;
    o->url = hc->url;
    o->box_id = hc->box_id;
    o->org = hc->org;
    o->feed_id = hc->feed_id;
    o->feed_key_id = hc->feed_key_id;
    o->mqtt_broker = hc->mqtt_broker;
    o->seq = hc->seq;
    o->last_sync = hc->last_sync;
    o->feed_created = hc->feed_created;
    o->last_error = hc->last_error;
    o->last_error_at = hc->last_error_at;
}

void hubclient_set_url(struct hubclient *hc, const char *url)
{
    snprintf(hc->url_override, sizeof hc->url_override, "%s", url ? url : "");
}

void hubclient_set_error(struct hubclient *hc, const char *msg)
{
    int fresh = msg && *msg && strcmp(msg, hc->last_error) != 0;
    snprintf(hc->last_error, sizeof hc->last_error, "%s", msg ? msg : "");
    hc->last_error_at = msg && *msg ? (int64_t)time(NULL) : 0;
    if (fresh && hc->error_fn)
        hc->error_fn(hc->last_error, hc->error_ctx);
}

void hubclient_set_error_notify(struct hubclient *hc, void (*fn)(const char *msg, void *ctx),
                                void *ctx)
{
    hc->error_fn = fn;
    hc->error_ctx = ctx;
}

/* ---- HTTPS ---- */

#define RESPONSE_MAX (64u * 1024 * 1024)

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    /* Grows by doubling; a hub never answers an API call with more than RESPONSE_MAX,
     * passing it aborts the transfer. Feed documents go to r->sink instead. */
    struct hubclient_http *r = ctx;
    if (r->sink)
        return filesink_curl_write(p, size, n, r->sink);
    struct growbuf g = { r->body, r->len, r->cap, RESPONSE_MAX, 0 };
    int rc = growbuf_append(&g, p, size * n);
    r->body = g.data;
    r->len = g.len;
    r->cap = g.cap;
    return rc == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    struct hubclient_http *r = ctx;
    size_t len = size * n;
    static const char name[] = "x-otasuke-sig:";
    if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
        const char *v = p + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
            vl--;
        if (vl + 2 < sizeof r->sig) {
            memcpy(r->sig, v, vl);
            r->sig[vl] = '\n';
            r->sig[vl + 1] = '\0';
        }
    }
    return len;
}

static int request(struct hubclient *hc, const char *method, const char *path,
                   const char *body, int auth, struct filesink *sink,
                   struct hubclient_http *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    res->sink = sink;
    const char *base = hc->url_override[0] ? hc->url_override : hc->url;
    char url[600];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *c = curl_easy_init();
    if (!c) {
        errbuf_set(err, errlen, "curl_easy_init failed");
        return -1;
    }
    struct curl_slist *hdr = NULL;
    char authh[120];
    if (auth) {
        snprintf(authh, sizeof authh, "Authorization: Bearer %s", hc->token);
        hdr = curl_slist_append(hdr, authh);
    }
    if (body)
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    /* A pinned hub certificate when enrolment was given one, else the system's CAs
     * (a hub with a CA-issued certificate). Never no verification. */
    if (access(hc->cacert, R_OK) == 0)
        curl_easy_setopt(c, CURLOPT_CAINFO, hc->cacert);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, res);
    if (sink && sink->max)
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink->max);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        if (sink && (sink->over || rc == CURLE_FILESIZE_EXCEEDED))
            errbuf_set(err, errlen, "%s %s: larger than the limit of %llu bytes", method, url,
                       (unsigned long long)sink->max);
        else if (sink && sink->write_errno)
            /* curl would only say "Failed writing received data"; the owner needs the cause */
            errbuf_set(err, errlen, "%s %s: the download cannot be stored on the box: %s%s",
                       method, url, strerror(sink->write_errno),
                       filesink_hint(sink->write_errno));
        else
            errbuf_set(err, errlen, "%s %s: %s", method, url, curl_easy_strerror(rc));
        hubclient_http_free(res);
        return -1;
    }
    if (sink && (res->status < 200 || res->status > 299)) {
        /* an error answer went to the file: its JSON reason is small, read it back */
        char *b = malloc(4097);
        ssize_t got = b ? pread(sink->fd, b, 4096, 0) : -1;
        if (got > 0) {
            b[got] = '\0';
            res->body = b;
            res->len = (size_t)got;
            res->cap = 4097;
        } else {
            free(b);
        }
    }
    return 0;
}

int hubclient_request(struct hubclient *hc, const char *method, const char *path,
                      const char *body, int auth, struct hubclient_http *res,
                      char *err, size_t errlen)
{
    return request(hc, method, path, body, auth, NULL, res, err, errlen);
}

int hubclient_request_to(struct hubclient *hc, const char *method, const char *path,
                         struct filesink *sink, struct hubclient_http *res, char *err,
                         size_t errlen)
{
    return request(hc, method, path, NULL, 1, sink, res, err, errlen);
}

void hubclient_http_free(struct hubclient_http *res)
{
    free(res->body);
    res->body = NULL;
    res->len = 0;
    res->cap = 0;
}

void hubclient_http_error(const struct hubclient_http *r, const char *what, char *err,
                          size_t errlen)
{
    json_t *o = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(o, "error"));
    errbuf_set(err, errlen, "%s: hub answered %ld: %s", what, r->status, m ? m : "(no reason)");
    json_decref(o);
}

/* ---- enrolment ---- */

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    FILE *in = fopen(from, "r");
    if (!in) {
        errbuf_set(err, errlen, "hub certificate %s: %s", from, strerror(errno));
        return -1;
    }
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    if (n == 0 || n == sizeof buf || !memmem(buf, n, "-----BEGIN CERTIFICATE-----", 27)) {
        errbuf_set(err, errlen, "hub certificate %s: not a PEM certificate", from);
        return -1;
    }
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, n) != (ssize_t)n || fsync(fd) < 0) {
        errbuf_set(err, errlen, "%s: %s", to, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int hubclient_enroll(struct hubclient *hc, const char *url, const char *code,
                     const char *cacert, const char *name, const char *version,
                     char *err, size_t errlen)
{
    if (strncmp(url, "https://", 8) != 0) {
        errbuf_set(err, errlen, "hub URL must start with https:// (got '%s')", url);
        return -1;
    }
    uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
    if (access(hc->key_path, F_OK) == 0) {
        if (feed_key_load(hc->key_path, sk, sizeof sk, err, errlen) < 0)
            return -1;
        crypto_sign_ed25519_sk_to_pk(pk, sk);
    } else if (feed_keygen(pk, sk) < 0 ||
               feed_key_save(hc->key_path, sk, sizeof sk, 1, err, errlen) < 0) {
        return -1;
    }
    if (cacert && strcmp(cacert, hc->cacert) != 0 && copy_file(cacert, hc->cacert, err, errlen) < 0)
        return -1;
    if (!cacert)
        unlink(hc->cacert);   /* re-enrolling with a CA-issued certificate: drop the pin */
    snprintf(hc->url, sizeof hc->url, "%s", url);
    size_t ul = strlen(hc->url);
    while (ul && hc->url[ul - 1] == '/')
        hc->url[--ul] = '\0';
    struct hubclient_http r;
    if (hubclient_request(hc, "POST", "/v1/enroll/challenge", NULL, 0, &r, err, errlen) < 0) {
        if (!cacert && strstr(err, "certificate")) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (a hub with its own self-signed certificate: "
                     "pass that certificate with --cacert)");
        }
        return -1;
    }
    json_t *o = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    const char *nonce = json_string_value(json_object_get(o, "nonce"));
    if (!nonce) {
        hubclient_http_error(&r, "enrolment challenge", err, errlen);
        hubclient_http_free(&r);
        json_decref(o);
        return -1;
    }
    hubclient_http_free(&r);
    char pk64[80], ch[crypto_hash_sha256_BYTES * 2 + 1], msg[400], sig[120];
    uint8_t d[crypto_hash_sha256_BYTES];
    feed_key_encode(pk, sizeof pk, pk64, sizeof pk64);
    crypto_hash_sha256(d, (const uint8_t *)code, strlen(code));
    sodium_bin2hex(ch, sizeof ch, d, sizeof d);
    snprintf(msg, sizeof msg, "otasuke-enroll/1 %s %s %s", nonce, pk64, ch);
    int sr = feed_sig_sign_b64(msg, strlen(msg), sk, sig, sizeof sig);
    sodium_memzero(sk, sizeof sk);
    json_t *rq = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "code", code, "pubkey", pk64,
                           "nonce", nonce, "signature", sig, "name", name ? name : "box",
                           "version", version ? version : "");
    json_decref(o);
    char *body = rq && sr == 0 ? json_dumps(rq, JSON_COMPACT) : NULL;
    json_decref(rq);
    if (!body) {
        errbuf_set(err, errlen, "cannot build the enrolment request (code must be text)");
        return -1;
    }
    int rc = hubclient_request(hc, "POST", "/v1/enroll", body, 0, &r, err, errlen);
    free(body);
    if (rc < 0)
        return -1;
    o = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (!o) {
        hubclient_http_error(&r, "enrolment", err, errlen);
        hubclient_http_free(&r);
        return -1;
    }
    hubclient_http_free(&r);
    json_t *m = json_object_get(o, "mqtt"), *f = json_object_get(o, "feed");
    copy_str(o, "token", hc->token, sizeof hc->token);
    copy_str(o, "org", hc->org, sizeof hc->org);
    hc->box_id = (long)json_integer_value(json_object_get(o, "box_id"));
    copy_str(m, "username", hc->mqtt_user, sizeof hc->mqtt_user);
    copy_str(m, "password", hc->mqtt_pass, sizeof hc->mqtt_pass);
    copy_str(m, "broker", hc->mqtt_broker, sizeof hc->mqtt_broker);
    copy_str(m, "feed_topic", hc->feed_topic, sizeof hc->feed_topic);
    hc->mqtt_tls = json_is_true(json_object_get(m, "tls"));
    copy_str(f, "id", hc->feed_id, sizeof hc->feed_id);
    char fpk[80], e2[200];
    copy_str(f, "pubkey", fpk, sizeof fpk);
    json_decref(o);
    if (feed_key_decode(fpk, hc->feed_pk, sizeof hc->feed_pk, e2, sizeof e2) < 0 ||
        !hc->token[0] || !hc->feed_id[0]) {
        errbuf_set(err, errlen, "enrolment answer incomplete (feed key: %s)", e2);
        return -1;
    }
    feed_key_id(hc->feed_pk, hc->feed_key_id);
    hc->seq = 0;
    hc->last_sync = hc->feed_created = 0;
    hubclient_set_error(hc, "");
    unlink(hc->store);
    hc->enrolled = 1;
    return hubclient_save(hc, err, errlen);
}

static int post_json(struct hubclient *hc, const char *path, json_t *rq, json_t **answer,
                     const char *what, char *err, size_t errlen)
{
    if (!hc->enrolled) {
        errbuf_set(err, errlen, "not enrolled with a hub (otasukectl hub enroll URL CODE)");
        json_decref(rq);
        return -1;
    }
    char *body = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
    json_decref(rq);
    if (!body) {
        errbuf_set(err, errlen, "%s: cannot encode the request", what);
        return -1;
    }
    struct hubclient_http r;
    int rc = hubclient_request(hc, "POST", path, body, 1, &r, err, errlen);
    free(body);
    if (rc < 0)
        return -1;
    json_t *o = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (!o) {
        hubclient_http_error(&r, what, err, errlen);
        hubclient_http_free(&r);
        return -1;
    }
    hubclient_http_free(&r);
    *answer = o;
    return 0;
}

int hubclient_heartbeat(struct hubclient *hc, const struct hubclient_heartbeat *hb,
                        long long *hub_seq, char *err, size_t errlen)
{
    json_t *rq = json_pack("{s:s, s:I, s:I}", "version", hb->version ? hb->version : "unknown",
                           "feed_seq", hb->feed_seq > 0 ? (json_int_t)hb->feed_seq : (json_int_t)hc->seq, "open_incidents",
                           (json_int_t)hb->open_incidents);
    if (rq && hb->counters_json) {
        json_t *c = json_loads(hb->counters_json, 0, NULL);
        if (!c) {
            json_decref(rq);
            errbuf_set(err, errlen, "heartbeat counters are not JSON");
            return -1;
        }
        json_object_set_new(rq, "counters", c);
    }
    json_t *a;
    if (post_json(hc, "/v1/heartbeat", rq, &a, "heartbeat", err, errlen) < 0)
        return -1;
    if (hub_seq)
        *hub_seq = json_integer_value(json_object_get(a, "feed_seq"));
    json_decref(a);
    return 0;
}

int hubclient_contribute_ex(struct hubclient *hc, const struct hubclient_indicator *v, int n,
                            int *promoted, int *rejected, char *err, size_t errlen)
{
    json_t *arr = json_array();
    if (promoted)
        *promoted = 0;
    if (rejected)
        *rejected = 0;
    for (int i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:I}", "indicator", v[i].indicator, "kind",
                              v[i].kind ? v[i].kind : "domain", "category", v[i].category,
                              "count", (json_int_t)(v[i].count > 0 ? v[i].count : 1));
        if (!e) {
            json_decref(arr);
            errbuf_set(err, errlen, "indicator %d: not valid text", i);
            return -1;
        }
        if (v[i].first_seen)
            json_object_set_new(e, "first_seen", json_integer(v[i].first_seen));
        if (v[i].last_seen)
            json_object_set_new(e, "last_seen", json_integer(v[i].last_seen));
        json_array_append_new(arr, e);
    }
    json_t *a;
    if (post_json(hc, "/v1/contributions", json_pack("{s:o}", "indicators", arr), &a,
                  "contribution", err, errlen) < 0)
        return -1;
    json_t *rej = json_object_get(a, "rejected");
    if (json_array_size(rej) > 0)
        errbuf_set(err, errlen, "hub refused: %s", json_string_value(json_array_get(rej, 0)));
    if (rejected)
        *rejected = (int)json_array_size(rej);
    if (promoted)
        *promoted = (int)json_integer_value(json_object_get(a, "promoted"));
    json_decref(a);
    return 0;
}

int hubclient_contribute(struct hubclient *hc, const struct hubclient_indicator *v, int n,
                         int *promoted, char *err, size_t errlen)
{
    int rejected = 0;
    if (hubclient_contribute_ex(hc, v, n, promoted, &rejected, err, errlen) < 0)
        return -1;
    return rejected > 0 ? -1 : 0;
}

int hubclient_report_fp(struct hubclient *hc, const char *indicator, const char *kind,
                        char *err, size_t errlen)
{
    json_t *a;
    if (post_json(hc, "/v1/false-positive", json_pack("{s:s, s:s}", "indicator", indicator,
                  "kind", kind ? kind : "domain"), &a, "false-positive report", err,
                  errlen) < 0)
        return -1;
    json_decref(a);
    return 0;
}

int hubclient_policy_fetch(struct hubclient *hc, long long after, hubclient_policy_fn fn,
                           void *ctx, char *err, size_t errlen)
{
    if (!hc->enrolled) {
        errbuf_set(err, errlen, "not enrolled with a hub (otasukectl hub enroll URL CODE)");
        return -1;
    }
    char path[64];
    snprintf(path, sizeof path, "/v1/policy?after=%lld", after);
    struct hubclient_http r;
    if (hubclient_request(hc, "GET", path, NULL, 1, &r, err, errlen) < 0)
        return -1;
    json_t *o = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    json_t *msgs = json_object_get(o, "messages");
    if (!json_is_array(msgs)) {
        hubclient_http_error(&r, "policy messages", err, errlen);
        hubclient_http_free(&r);
        json_decref(o);
        return -1;
    }
    hubclient_http_free(&r);
    size_t i;
    json_t *m;
    int n = 0;
    json_array_foreach(msgs, i, m) {
        const char *signer = json_string_value(json_object_get(m, "signer"));
        const char *change = json_string_value(json_object_get(m, "change"));
        const char *sig = json_string_value(json_object_get(m, "signature"));
        json_int_t id = json_integer_value(json_object_get(m, "id"));
        if (!signer || !change || !sig || id <= after)
            continue;   /* malformed: skip it, the agent never sees half a message */
        n++;
        if (fn && fn((long long)id, signer, change, sig, ctx) != 0)
            break;
    }
    json_decref(o);
    return n;
}

int hubclient_policy_result(struct hubclient *hc, long long id, const char *status,
                            const char *detail, char *err, size_t errlen)
{
    char path[80];
    snprintf(path, sizeof path, "/v1/policy/%lld/result", id);
    json_t *a;
    if (post_json(hc, path, json_pack("{s:s, s:s}", "status", status, "detail",
                                      detail ? detail : ""), &a, "policy result", err,
                  errlen) < 0)
        return -1;
    json_decref(a);
    return 0;
}
