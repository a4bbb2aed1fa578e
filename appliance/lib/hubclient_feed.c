/* Hub client, feed half: fetch, verify (feed.h: signature with the pinned key, feed id,
 * monotonic seq, expiry, base), apply through the caller, remember the seq; and the
 * MQTT subscription that triggers it. A refused document never moves the seq: the box
 * keeps protecting with what it had and says why in last_error. */
#include "hubclient_internal.h"
#include "atomicfile.h"
#include "errbuf.h"
#include "filesink.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Verifies the document in fd (+ sig) and applies it. Returns FEED_OK or a reason (err
 * filled). The entries are not parsed here first: fn is all or nothing and says which
 * line was bad, so a third pass over a 140 MB file would buy nothing. */
static int verify_apply(struct hubclient *hc, int fd, const char *sig, size_t siglen,
                        hubclient_apply_fn fn, void *ctx, int *updated, char *err,
                        size_t errlen)
{
    struct feed_expect x = { hc->feed_id, hc->feed_pk, hc->seq, (int64_t)time(NULL),
                             HUBCLIENT_DOC_MAX };
    struct feed_manifest m;
    char e2[256];
    enum feed_reason why = feed_verify_fd(fd, sig, siglen, &x, &m, e2, sizeof e2);
    if (why == FEED_OK && m.type == FEED_DELTA && m.base != hc->seq) {
        why = FEED_BAD_BASE;
        snprintf(e2, sizeof e2, "delta applies to seq %llu, this box holds %llu",
                 (unsigned long long)m.base, (unsigned long long)hc->seq);
    }
    if (why != FEED_OK) {
        snprintf(err, errlen, "feed %s refused (%s): %s", hc->feed_id, feed_reason_name(why), e2);
        hubclient_set_error(hc, err);
        hubclient_save(hc, NULL, 0);
        return why;
    }
    if (fn && fn(fd, &m, ctx, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "feed %s: seq %llu verified but the box could not apply it: %s",
                 hc->feed_id, (unsigned long long)m.seq, e2);
        hubclient_set_error(hc, err);
        hubclient_save(hc, NULL, 0);
        return FEED_BAD_ENTRY;
    }
    hc->seq = m.seq;
    hc->feed_created = m.created;
    hc->last_sync = (int64_t)time(NULL);
    hubclient_set_error(hc, "");
    if (updated)
        *updated = 1;
    return hubclient_save(hc, err, errlen) < 0 ? -1 : FEED_OK;
}

/* A new anonymous download file in the state directory. Returns the fd or -1 with err. */
static int doc_file(struct hubclient *hc, char *err, size_t errlen)
{
    int fd = filesink_tmpfile(hc->dir);
    if (fd < 0)
        errbuf_set(err, errlen, "cannot create a download file in %s: %s%s", hc->dir,
                   strerror(errno), filesink_hint(errno));
    return fd;
}

/* GETs path into sink (the document) and its signature into r->sig. 0 or -1 with err. */
static int fetch(struct hubclient *hc, const char *path, struct filesink *sink,
                 struct hubclient_http *r, char *err, size_t errlen)
{
    if (filesink_rewind(sink) < 0)
        return errbuf_set(err, errlen, "%s: cannot reuse the download file: %s", hc->dir,
                          strerror(errno));
    if (hubclient_request_to(hc, "GET", path, sink, r, err, errlen) < 0)
        return -1;
    if (r->status == 200 && !r->sig[0]) {
        /* No header (a static mirror): the detached .sig file. */
        char sp[300];
        snprintf(sp, sizeof sp, "%s.sig", path);
        struct hubclient_http s;
        if (hubclient_request(hc, "GET", sp, NULL, 1, &s, err, errlen) < 0) {
            hubclient_http_free(r);
            return -1;
        }
        if (s.status == 200 && s.body)
            snprintf(r->sig, sizeof r->sig, "%.*s", (int)(s.len < sizeof r->sig - 1 ? s.len
                     : sizeof r->sig - 1), s.body);
        hubclient_http_free(&s);
    }
    return 0;
}

/* Records a transport failure as the last error. Returns -1. */
static int sync_failed(struct hubclient *hc, const char *err)
{
    hubclient_set_error(hc, err);
    hubclient_save(hc, NULL, 0);
    return -1;
}

int hubclient_sync(struct hubclient *hc, hubclient_apply_fn fn, void *ctx, int *updated,
                   char *err, size_t errlen)
{
    if (updated)
        *updated = 0;
    if (!hc->enrolled) {
        snprintf(err, errlen, "not enrolled with a hub (otasukectl hub enroll URL CODE)");
        return -1;
    }
    char path[200];
    struct hubclient_http r;
    struct filesink sink = { .fd = doc_file(hc, err, errlen), .max = HUBCLIENT_DOC_MAX };
    if (sink.fd < 0)
        return sync_failed(hc, err);
    if (hc->seq)
        snprintf(path, sizeof path, "/feed/%s/delta/%llu", hc->feed_id,
                 (unsigned long long)hc->seq);
    else
        snprintf(path, sizeof path, "/feed/%s/snapshot", hc->feed_id);
    int rc = fetch(hc, path, &sink, &r, err, errlen);
    if (rc == 0 && r.status == 410) {
        hubclient_http_free(&r);
        snprintf(path, sizeof path, "/feed/%s/snapshot", hc->feed_id);
        rc = fetch(hc, path, &sink, &r, err, errlen);
    }
    if (rc < 0) {
        close(sink.fd);
        return sync_failed(hc, err);
    }
    if (r.status == 204) {
        hubclient_http_free(&r);
        close(sink.fd);
        hc->last_sync = (int64_t)time(NULL);
        hubclient_set_error(hc, "");
        return hubclient_save(hc, err, errlen) < 0 ? -1 : FEED_OK;
    }
    if (r.status != 200) {
        hubclient_http_error(&r, path, err, errlen);
        hubclient_http_free(&r);
        close(sink.fd);
        return sync_failed(hc, err);
    }
    rc = verify_apply(hc, sink.fd, r.sig[0] ? r.sig : NULL, strlen(r.sig), fn, ctx, updated,
                      err, errlen);
    hubclient_http_free(&r);
    close(sink.fd);
    return rc;
}

int hubclient_notify_parse(const char *payload, size_t len, unsigned long long *seq,
                           const char **sig, size_t *siglen, const char **doc, size_t *doclen)
{
    *sig = *doc = NULL;
    *siglen = *doclen = 0;
    const char *nl = memchr(payload, '\n', len);
    size_t fl = nl ? (size_t)(nl - payload) : len;
    char first[40];
    if (fl < 5 || fl >= sizeof first)
        return -1;
    memcpy(first, payload, fl);
    first[fl] = '\0';
    char *end;
    if (strncmp(first, "seq ", 4) != 0 || first[4] < '1' || first[4] > '9')
        return -1;
    errno = 0;
    *seq = strtoull(first + 4, &end, 10);
    if (errno || *end)
        return -1;
    if (!nl || (size_t)(nl + 1 - payload) >= len)
        return 0;
    /* Inline: the signature line, then the document. */
    const char *s = nl + 1;
    size_t rest = len - (size_t)(s - payload);
    const char *snl = memchr(s, '\n', rest);
    if (!snl || (size_t)(snl + 1 - s) >= rest)
        return -1;
    *sig = s;
    *siglen = (size_t)(snl + 1 - s);
    *doc = snl + 1;
    *doclen = rest - *siglen;
    return 0;
}

int hubclient_notify(struct hubclient *hc, const char *payload, size_t len,
                     hubclient_apply_fn fn, void *ctx, int *updated, char *err, size_t errlen)
{
    if (updated)
        *updated = 0;
    unsigned long long seq;
    const char *sig, *doc;
    size_t siglen, dl;
    if (hubclient_notify_parse(payload, len, &seq, &sig, &siglen, &doc, &dl) < 0) {
        snprintf(err, errlen, "notification is not 'seq N' [+ signature + delta]");
        return -1;
    }
    if (seq <= hc->seq)
        return FEED_OK;
    if (doc) {
        /* Verified like a fetched one; when it does not fit our seq, HTTPS decides. An
         * MQTT payload is small, but the applier reads files: it goes to one too. */
        struct feed_manifest m;
        char e2[200];
        struct feed_expect x = { hc->feed_id, hc->feed_pk, hc->seq, (int64_t)time(NULL), 0 };
        if (feed_verify(doc, dl, sig, siglen, &x, &m, e2, sizeof e2) == FEED_OK &&
            m.type == FEED_DELTA && m.base == hc->seq) {
            struct filesink sink = { .fd = doc_file(hc, err, errlen) };
            if (sink.fd < 0)
                return sync_failed(hc, err);
            if (filesink_write(&sink, doc, dl) < 0) {
                errbuf_set(err, errlen, "%s: the notified delta cannot be stored on the box:"
                           " %s%s", hc->dir, strerror(sink.write_errno),
                           filesink_hint(sink.write_errno));
                close(sink.fd);
                return sync_failed(hc, err);
            }
            int rc = verify_apply(hc, sink.fd, sig, siglen, fn, ctx, updated, err, errlen);
            close(sink.fd);
            return rc;
        }
    }
    return hubclient_sync(hc, fn, ctx, updated, err, errlen);
}

/* ---- MQTT ---- */

struct watch {
    char *pending;        /* latest notification not yet handled */
    size_t plen;
    int connected, auth_failed;
    const char *topic;
    char policy_topic[80];
    struct hubclient *hc;
};

void hubclient_stop(struct hubclient *hc)
{
    __atomic_store_n(&hc->stop, 1, __ATOMIC_SEQ_CST);
}

void hubclient_set_policy_notify(struct hubclient *hc, void (*fn)(long long id, void *ctx),
                                 void *ctx)
{
    hc->policy_fn = fn;
    hc->policy_ctx = ctx;
}

static void on_connect(struct mosquitto *m, void *ctx, int rc)
{
    struct watch *w = ctx;
    if (rc == 0) {
        w->connected = 1;
        mosquitto_subscribe(m, NULL, w->topic, 0);
        if (w->policy_topic[0])
            mosquitto_subscribe(m, NULL, w->policy_topic, 1);
    } else if (rc == 4 || rc == 5) {
        w->auth_failed = 1;
    }
}

static void on_message(struct mosquitto *m, void *ctx, const struct mosquitto_message *msg)
{
    (void)m;
    struct watch *w = ctx;
    if (w->policy_topic[0] && strcmp(msg->topic, w->policy_topic) == 0) {
        char b[40];
        long long id = 0;
        int n = msg->payloadlen < (int)sizeof b - 1 ? msg->payloadlen : (int)sizeof b - 1;
        memcpy(b, msg->payload, (size_t)n);
        b[n] = '\0';
        if (sscanf(b, "policy %lld", &id) == 1 && id > 0 && w->hc->policy_fn)
            w->hc->policy_fn(id, w->hc->policy_ctx);
        return;
    }
    char *p = malloc((size_t)msg->payloadlen + 1);
    if (!p)
        return;
    memcpy(p, msg->payload, (size_t)msg->payloadlen);
    p[msg->payloadlen] = '\0';
    free(w->pending);   /* only the newest matters: it names the highest seq */
    w->pending = p;
    w->plen = (size_t)msg->payloadlen;
}

int hubclient_watch(struct hubclient *hc, hubclient_apply_fn fn, void *ctx, int max_seconds,
                    int stop_after, char *err, size_t errlen)
{
    if (!hc->enrolled || !hc->mqtt_broker[0]) {
        snprintf(err, errlen, "%s", !hc->enrolled ? "not enrolled with a hub"
                 : "the hub gave no MQTT broker address; poll with 'hub sync'");
        return -1;
    }
    char host[128];
    snprintf(host, sizeof host, "%s", hc->mqtt_broker);
    char *colon = strrchr(host, ':');
    int port = colon ? atoi(colon + 1) : 1883;
    if (colon)
        *colon = '\0';
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    mosquitto_lib_init();
    struct watch w = { .topic = hc->feed_topic, .hc = hc };
    if (hc->policy_fn)
        snprintf(w.policy_topic, sizeof w.policy_topic, "box/%s/policy", hc->mqtt_user);
    __atomic_store_n(&hc->stop, 0, __ATOMIC_SEQ_CST);
    struct mosquitto *m = mosquitto_new(NULL, true, &w);
    if (!m) {
        snprintf(err, errlen, "mosquitto_new failed");
        return -1;
    }
    mosquitto_username_pw_set(m, hc->mqtt_user, hc->mqtt_pass);
    int pinned = access(hc->cacert, R_OK) == 0;
    if (hc->mqtt_tls && mosquitto_tls_set(m, pinned ? hc->cacert : NULL,
                                          pinned ? NULL : "/etc/ssl/certs", NULL, NULL,
                                          NULL) != 0) {
        snprintf(err, errlen, "MQTT TLS setup with %s failed", hc->cacert);
        mosquitto_destroy(m);
        return -1;
    }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_message_callback_set(m, on_message);
    time_t start = time(NULL), next_try = 0, next_sync = start;
    int applied = 0, backoff = 1, rc = 0;
    /* The first sync also covers notifications missed while disconnected. */
    while ((max_seconds <= 0 || time(NULL) - start < max_seconds) &&
           !__atomic_load_n(&hc->stop, __ATOMIC_SEQ_CST)) {
        if (!w.connected && time(NULL) >= next_try) {
            if (mosquitto_connect(m, host, port, 30) != MOSQ_ERR_SUCCESS) {
                next_try = time(NULL) + backoff;
                backoff = backoff < 30 ? backoff * 2 : 30;
            } else {
                backoff = 1;
                next_try = time(NULL) + 5;
            }
        }
        int lr = mosquitto_loop(m, 100, 1);
        if (lr != MOSQ_ERR_SUCCESS && w.connected) {
            w.connected = 0;   /* broker gone: reconnect and sync again afterwards */
            next_sync = time(NULL);
        }
        if (w.auth_failed) {
            snprintf(err, errlen, "MQTT broker refused this box's credentials (revoked?)");
            rc = -1;
            break;
        }
        int upd = 0;
        char e2[300];
        if (w.pending) {
            char *p = w.pending;
            size_t pl = w.plen;
            w.pending = NULL;
            int r = hubclient_notify(hc, p, pl, fn, ctx, &upd, e2, sizeof e2);
            free(p);
            if (r != FEED_OK)
                next_sync = time(NULL) + backoff;
        } else if (next_sync && time(NULL) >= next_sync) {
            /* after a sync, the next one in HUBCLIENT_POLL_SECONDS anyway: a notification
             * lost between broker and box then costs a minute, not the whole watch */
            next_sync = time(NULL) + HUBCLIENT_POLL_SECONDS;
            if (hubclient_sync(hc, fn, ctx, &upd, e2, sizeof e2) != FEED_OK)
                next_sync = time(NULL) + 2;   /* hub down: keep the last good, retry */
        }
        applied += upd;
        if (stop_after > 0 && applied >= stop_after)
            break;
    }
    free(w.pending);
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return rc < 0 ? -1 : applied;
}

/* ---- a ready-made applier: feed.json ---- */

struct store_ctx { json_t *map; };

static int store_entry(const struct feed_entry *e, void *ctx)
{
    struct store_ctx *s = ctx;
    char key[FEED_INDICATOR_MAX + 16];
    snprintf(key, sizeof key, "%s:%s", feed_kind_name(e->kind), e->indicator);
    if (e->action == FEED_ACT_REMOVE) {
        json_object_del(s->map, key);
        return 0;
    }
    char line[FEED_INDICATOR_MAX + 256];
    if (feed_format_entry(e, line, sizeof line) < 0)
        return -1;
    json_t *o = json_loads(line, 0, NULL);
    return o ? json_object_set_new(s->map, key, o) : -1;
}

const char *hubclient_store_path(const struct hubclient *hc)
{
    return hc->store;
}

int hubclient_store_apply(int fd, const struct feed_manifest *m, void *ctx, char *err,
                          size_t errlen)
{
    struct hubclient *hc = ctx;
    struct store_ctx s = { NULL };
    if (m->type == FEED_DELTA)
        s.map = json_load_file(hc->store, 0, NULL);
    if (!s.map)
        s.map = json_object();
    int rc = feed_foreach_entry_fd(fd, m, store_entry, &s, err, errlen);
    if (rc == 0) {
        /* fsync + rename: after a power loss the store is the old one or the new one */
        char *text = json_dumps(s.map, JSON_INDENT(1) | JSON_SORT_KEYS);
        if (!text)
            rc = errbuf_set(err, errlen, "%s: out of memory", hc->store);
        else if (atomic_write_file(hc->store, text, strlen(text), 0600, err, errlen) != 0)
            rc = -1;
        free(text);
    } else if (rc > 0) {
        rc = errbuf_set(err, errlen, "%s: an entry cannot be stored", hc->store);
    }
    json_decref(s.map);
    return rc;
}
