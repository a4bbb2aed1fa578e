/* fleetsim: one process playing N enrolled boxes against a real hub + mosquitto.
 *
 * Every simulated box has its own MQTT connection (its own credentials from
 * `otasuke-hubd admin box add-bulk`), its own feed seq and its own HTTPS request for the
 * delta, which it verifies with feed.h against the pinned hub key exactly as a box does.
 * When all N are subscribed, fleetsim runs the trigger command (an analyst confirming an
 * indicator), takes T0 just before it, and measures for each box the time until it has
 * the notification and until it has fetched and verified the delta.
 *
 * Why raw MQTT 3.1.1 over non-blocking sockets and one epoll loop, not libmosquitto (which
 * the boxes use): libmosquitto spends three descriptors per client (its socket plus an
 * internal wake-up socketpair), so 10,000 clients need 30,000 descriptors, beyond the
 * 20,000 hard limit of the machines we run on (raising it needs CAP_SYS_RESOURCE).
 * A subscriber needs four packets (CONNECT, CONNACK, SUBSCRIBE, PUBLISH in), about 150
 * lines, and one descriptor. The broker side is the real mosquitto either way. HTTPS
 * runs in a second thread on a libcurl multi handle so slow fetches never delay reading
 * notifications.
 *
 * Modes for the delta: fetch-pooled (requests share up to --conns keep-alive TLS
 * connections, like boxes behind a TLS-terminating balancer), fetch-fresh (a new TLS
 * connection per box: the worst case), inline (the delta rides in the MQTT message;
 * no HTTPS).
 *
 *   fleetsim --creds FILE --n N --broker H:P --url URL --cacert PEM --pubkey FILE
 *            --feed ID --seq S --mode M [--conns C] --trigger 'CMD' --out RESULT.json */
#include "feed.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct box {
    char user[40], pass[40], token[72];
    uint64_t seq;
    int connected, subscribed, fd;
    unsigned char *in;            /* bytes read, not yet a whole packet */
    size_t inlen, incap;
    double t_notify, t_done;
    int verified, failed;
};

static struct box *boxes;
static int nbox;
static const char *feed_id, *url, *cacert, *mode = "fetch-pooled";
static uint8_t pk[FEED_PUBKEY_BYTES];
static int conns = 64, nsub, ndone, nfail;
static volatile int triggered;
static double t0;
static char topic[80];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- verification, shared by both paths ---- */
static double verify_s;   /* summed: what the boxes' own CPUs would do in parallel */

static int verify(struct box *b, const char *doc, size_t len, const char *sig, size_t siglen)
{
    double v0 = now_s();
    struct feed_expect x = { feed_id, pk, b->seq, (int64_t)time(NULL), 0 };
    struct feed_manifest mf;
    char err[200];
    if (feed_verify(doc, len, sig, siglen, &x, &mf, err, sizeof err) != FEED_OK ||
        mf.type != FEED_DELTA || mf.base != b->seq) {
        verify_s += now_s() - v0;
        return -1;
    }
    b->seq = mf.seq;
    verify_s += now_s() - v0;
    return 0;
}

/* ---- HTTPS thread: a queue of boxes to fetch for ---- */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static int *queue, qhead, qtail;

struct xfer { struct box *b; char *buf; size_t len; char sig[200]; struct curl_slist *h; };

static size_t on_body(char *p, size_t s, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    char *q = realloc(x->buf, x->len + s * n + 1);
    if (!q)
        return 0;
    memcpy(q + x->len, p, s * n);
    x->buf = q;
    x->len += s * n;
    return s * n;
}

static size_t on_header(char *p, size_t s, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = s * n;
    if (len > 14 && strncasecmp(p, "X-Otasuke-Sig:", 14) == 0) {
        const char *v = p + 14;
        while (*v == ' ')
            v++;
        size_t vl = len - (size_t)(v - p);
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
            vl--;
        if (vl + 2 < sizeof x->sig) {
            memcpy(x->sig, v, vl);
            x->sig[vl] = '\n';
            x->sig[vl + 1] = '\0';
        }
    }
    return len;
}

static volatile int http_ready;

static size_t discard(char *p, size_t s, size_t n, void *ctx)
{
    (void)p; (void)ctx;
    return s * n;
}

static void *http_thread(void *arg)
{
    (void)arg;
    CURLM *multi = curl_multi_init();
    int fresh = strcmp(mode, "fetch-fresh") == 0;
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)conns);
    int inflight = 0;
    if (!fresh) {
        /* Warm the pool before T0: pooled mode measures the push, and steady-state
         * boxes and balancers hold warm keep-alive connections. The cost of cold TLS
         * is what fetch-fresh measures. */
        for (int i = 0; i < conns; i++) {
            CURL *e = curl_easy_init();
            char u[400];
            snprintf(u, sizeof u, "%s/v1/health", url);
            curl_easy_setopt(e, CURLOPT_URL, u);
            curl_easy_setopt(e, CURLOPT_CAINFO, cacert);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
            curl_multi_add_handle(multi, e);
        }
        int running = 1;
        while (running) {
            curl_multi_perform(multi, &running);
            curl_multi_poll(multi, NULL, 0, 10, NULL);
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            curl_multi_remove_handle(multi, msg->easy_handle);
            curl_easy_cleanup(msg->easy_handle);
        }
    }
    __atomic_store_n(&http_ready, 1, __ATOMIC_SEQ_CST);
    while (!triggered)
        usleep(1000);
    while (ndone + nfail < nbox) {
        /* Hand at most 4 x conns transfers to curl at a time; the rest wait here. */
        while (inflight < conns * 4) {
            pthread_mutex_lock(&qlock);
            int i = qhead < qtail ? queue[qhead++] : -1;
            pthread_mutex_unlock(&qlock);
            if (i < 0)
                break;
            struct box *b = &boxes[i];
            struct xfer *x = calloc(1, sizeof *x);
            x->b = b;
            char u[400], auth[120];
            snprintf(u, sizeof u, "%s/feed/%s/delta/%llu", url, feed_id,
                     (unsigned long long)b->seq);
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", b->token);
            x->h = curl_slist_append(NULL, auth);
            CURL *e = curl_easy_init();
            curl_easy_setopt(e, CURLOPT_URL, u);
            curl_easy_setopt(e, CURLOPT_CAINFO, cacert);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->h);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
            curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
            curl_easy_setopt(e, CURLOPT_PRIVATE, x);
            curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            if (fresh) {
                curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
                curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
            }
            curl_multi_add_handle(multi, e);
            inflight++;
        }
        int running;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            struct xfer *x;
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            struct box *b = x->b;
            if (msg->data.result == CURLE_OK && status == 200 && x->buf &&
                verify(b, x->buf, x->len, x->sig, strlen(x->sig)) == 0) {
                b->t_done = now_s();
                b->verified = 1;
                __atomic_add_fetch(&ndone, 1, __ATOMIC_SEQ_CST);
            } else {
                b->failed = 1;
                __atomic_add_fetch(&nfail, 1, __ATOMIC_SEQ_CST);
            }
            curl_multi_remove_handle(multi, e);
            curl_easy_cleanup(e);
            curl_slist_free_all(x->h);
            free(x->buf);
            free(x);
            inflight--;
        }
        curl_multi_poll(multi, NULL, 0, inflight ? 5 : 2, NULL);
    }
    curl_multi_cleanup(multi);
    return NULL;
}

/* ---- MQTT side: raw 3.1.1, one socket per box ---- */
static struct sockaddr_in broker_addr;

static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (unsigned char)(n >> 8);
    p[1] = (unsigned char)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

static size_t put_len(unsigned char *p, size_t len)
{
    size_t i = 0;
    do {
        unsigned char b = len % 128;
        len /= 128;
        p[i++] = (unsigned char)(b | (len ? 0x80 : 0));
    } while (len);
    return i;
}

/* Small packets on a fresh loopback socket: the send buffer takes them whole. */
static int send_all(int fd, const unsigned char *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int mqtt_connect_packet(struct box *b)
{
    unsigned char body[256], pkt[260];
    size_t n = 0;
    n += put_str(body + n, "MQTT");
    body[n++] = 4;                 /* protocol level 3.1.1 */
    body[n++] = 0xC2;              /* username, password, clean session */
    body[n++] = 0x02;              /* keepalive 600 s: longer than a run */
    body[n++] = 0x58;
    n += put_str(body + n, "");    /* empty client id: the broker assigns one */
    n += put_str(body + n, b->user);
    n += put_str(body + n, b->pass);
    pkt[0] = 0x10;
    size_t h = 1 + put_len(pkt + 1, n);
    memcpy(pkt + h, body, n);
    return send_all(b->fd, pkt, h + n);
}

static int mqtt_subscribe_packet(struct box *b)
{
    unsigned char body[128], pkt[132];
    size_t n = 0;
    body[n++] = 0;
    body[n++] = 1;                 /* packet id */
    n += put_str(body + n, topic);
    body[n++] = 0;                 /* QoS 0 */
    pkt[0] = 0x82;
    size_t h = 1 + put_len(pkt + 1, n);
    memcpy(pkt + h, body, n);
    return send_all(b->fd, pkt, h + n);
}

static void on_publish(struct box *b, const unsigned char *p, size_t len)
{
    if (len < 2)
        return;
    size_t tl = (size_t)p[0] << 8 | p[1];
    if (2 + tl > len)
        return;
    const char *payload = (const char *)p + 2 + tl;
    size_t plen = len - 2 - tl;
    char first[40];
    size_t fl = plen < sizeof first - 1 ? plen : sizeof first - 1;
    memcpy(first, payload, fl);
    first[fl] = '\0';
    unsigned long long seq = 0;
    if (!triggered || b->t_notify > 0 || sscanf(first, "seq %llu", &seq) != 1 || seq <= b->seq)
        return;   /* the retained message of the current seq, or a duplicate */
    b->t_notify = now_s();
    if (strcmp(mode, "inline") == 0) {
        const char *nl = memchr(payload, '\n', plen);
        const char *snl = nl ? memchr(nl + 1, '\n', plen - (size_t)(nl + 1 - payload)) : NULL;
        if (snl && verify(b, snl + 1, plen - (size_t)(snl + 1 - payload), nl + 1,
                          (size_t)(snl - nl)) == 0) {
            b->t_done = now_s();
            b->verified = 1;
            __atomic_add_fetch(&ndone, 1, __ATOMIC_SEQ_CST);
        } else {
            b->failed = 1;
            __atomic_add_fetch(&nfail, 1, __ATOMIC_SEQ_CST);
        }
        return;
    }
    pthread_mutex_lock(&qlock);
    queue[qtail++] = (int)(b - boxes);
    pthread_mutex_unlock(&qlock);
}

/* Reads what is there and handles every whole packet. Returns -1 if the connection
 * is gone or the broker refused us. */
static int mqtt_read(struct box *b)
{
    for (;;) {
        if (b->incap - b->inlen < 4096) {
            size_t cap = b->incap ? b->incap * 2 : 4096;
            unsigned char *q = realloc(b->in, cap);
            if (!q)
                return -1;
            b->in = q;
            b->incap = cap;
        }
        ssize_t r = recv(b->fd, b->in + b->inlen, b->incap - b->inlen, 0);
        if (r == 0)
            return -1;
        if (r < 0)
            break;
        b->inlen += (size_t)r;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    size_t off = 0;
    while (b->inlen - off >= 2) {
        const unsigned char *p = b->in + off;
        size_t len = 0, mul = 1, i = 1;
        for (; i < 5 && off + i < b->inlen; i++) {
            len += (p[i] & 0x7f) * mul;
            mul *= 128;
            if (!(p[i] & 0x80))
                break;
        }
        if (off + i >= b->inlen || off + i + 1 + len > b->inlen)
            break;   /* incomplete */
        const unsigned char *body = p + i + 1;
        switch (p[0] >> 4) {
        case 2:      /* CONNACK */
            if (len < 2 || body[1] != 0) {
                fprintf(stderr, "fleetsim: %s refused by the broker (%d)\n", b->user,
                        len >= 2 ? body[1] : -1);
                return -1;
            }
            b->connected = 1;
            if (mqtt_subscribe_packet(b) < 0)
                return -1;
            break;
        case 9:      /* SUBACK */
            if (!b->subscribed) {
                b->subscribed = 1;
                nsub++;
            }
            break;
        case 3:      /* PUBLISH, QoS 0 */
            on_publish(b, body, len);
            break;
        default:
            break;
        }
        off += i + 1 + len;
    }
    memmove(b->in, b->in + off, b->inlen - off);
    b->inlen -= off;
    if (b->inlen == 0) {   /* idle boxes hold no buffer: 10,000 x 4 KiB adds up */
        free(b->in);
        b->in = NULL;
        b->incap = 0;
    }
    return 0;
}

static int mqtt_start(int ep, struct box *b)
{
    b->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b->fd < 0)
        return -1;
    int one = 1;
    setsockopt(b->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Blocking connect on loopback: it returns as soon as the SYN is queued. */
    if (connect(b->fd, (struct sockaddr *)&broker_addr, sizeof broker_addr) < 0 ||
        mqtt_connect_packet(b) < 0) {
        close(b->fd);
        b->fd = -1;
        return -1;
    }
    fcntl(b->fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(b - boxes) };
    return epoll_ctl(ep, EPOLL_CTL_ADD, b->fd, &ev);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
    if (n == 0)
        return -1;
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv)
{
    const char *creds = NULL, *broker = "127.0.0.1:1883", *pubkey = NULL, *trigger = NULL;
    const char *out = NULL;
    unsigned long long seq0 = 0;
    int timeout = 120;
    static const struct option lo[] = {
        { "creds", 1, NULL, 'c' }, { "n", 1, NULL, 'n' }, { "broker", 1, NULL, 'b' },
        { "url", 1, NULL, 'u' }, { "cacert", 1, NULL, 'a' }, { "pubkey", 1, NULL, 'p' },
        { "feed", 1, NULL, 'f' }, { "seq", 1, NULL, 's' }, { "mode", 1, NULL, 'm' },
        { "conns", 1, NULL, 'C' }, { "trigger", 1, NULL, 't' }, { "out", 1, NULL, 'o' },
        { "timeout", 1, NULL, 'T' }, { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'c': creds = optarg; break;
        case 'n': nbox = atoi(optarg); break;
        case 'b': broker = optarg; break;
        case 'u': url = optarg; break;
        case 'a': cacert = optarg; break;
        case 'p': pubkey = optarg; break;
        case 'f': feed_id = optarg; break;
        case 's': seq0 = strtoull(optarg, NULL, 10); break;
        case 'm': mode = optarg; break;
        case 'C': conns = atoi(optarg); break;
        case 't': trigger = optarg; break;
        case 'o': out = optarg; break;
        case 'T': timeout = atoi(optarg); break;
        default: return 2;
        }
    }
    char err[300];
    if (!creds || nbox <= 0 || !url || !cacert || !pubkey || !feed_id || !trigger || !out ||
        feed_key_load(pubkey, pk, sizeof pk, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: missing or bad arguments (see the header) %s\n", err);
        return 2;
    }
    snprintf(topic, sizeof topic, "feed/%s", feed_id);
    boxes = calloc((size_t)nbox, sizeof *boxes);
    queue = calloc((size_t)nbox, sizeof *queue);
    FILE *f = fopen(creds, "r");
    for (int i = 0; f && i < nbox; i++) {
        if (fscanf(f, "%39s %39s %71s", boxes[i].user, boxes[i].pass, boxes[i].token) != 3) {
            fprintf(stderr, "fleetsim: %s has fewer than %d boxes\n", creds, nbox);
            return 1;
        }
        boxes[i].seq = seq0;
        boxes[i].fd = -1;
    }
    if (f)
        fclose(f);
    char host[64];
    snprintf(host, sizeof host, "%s", broker);
    char *colon = strrchr(host, ':');
    int port = colon ? atoi(colon + 1) : 1883;
    if (colon)
        *colon = '\0';
    broker_addr.sin_family = AF_INET;
    broker_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &broker_addr.sin_addr) != 1) {
        fprintf(stderr, "fleetsim: --broker must be IPv4:PORT\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    double start = now_s();
    int started = 0;
    struct epoll_event evs[1024];
    pthread_t ht;
    int http = strcmp(mode, "inline") != 0, http_started = 0;
    while (1) {
        /* Ramp: at most 64 connections in their handshake at once, or the broker's
         * listen backlog overflows and SYNs are retried a second later. */
        int connecting = started - nsub;
        while (started < nbox && connecting < 64) {
            struct box *b = &boxes[started++];
            if (mqtt_start(ep, b) < 0) {
                fprintf(stderr, "fleetsim: box %d cannot connect: %s\n", started,
                        strerror(errno));
                return 1;
            }
            connecting++;
        }
        int n = epoll_wait(ep, evs, 1024, 5);
        for (int i = 0; i < n; i++) {
            struct box *b = &boxes[evs[i].data.u32];
            if (mqtt_read(b) < 0) {
                fprintf(stderr, "fleetsim: box %s lost its broker connection\n", b->user);
                return 1;
            }
        }
        double t = now_s();
        if (!triggered && nsub == nbox && http && !http_started) {
            pthread_create(&ht, NULL, http_thread, NULL);
            http_started = 1;
        }
        if (!triggered && nsub == nbox && (!http || http_ready)) {
            fprintf(stderr, "fleetsim: %d boxes connected and subscribed in %.1f s\n", nbox,
                    t - start);
            t0 = now_s();
            triggered = 1;
            if (system(trigger) != 0)
                fprintf(stderr, "fleetsim: trigger command failed\n");
        }
        if (triggered && ndone + nfail >= nbox)
            break;
        if (t - start > timeout) {
            fprintf(stderr, "fleetsim: timeout (%d subscribed, %d verified, %d failed)\n",
                    nsub, ndone, nfail);
            break;
        }
    }
    double t_end = now_s();
    if (http && http_started) {
        triggered = 1;
        if (ndone + nfail < nbox)
            nfail = nbox - ndone;   /* let the thread end */
        pthread_join(ht, NULL);
    }
    double *done = calloc((size_t)nbox, sizeof *done), *noti = calloc((size_t)nbox, sizeof *noti);
    int nd = 0, nn = 0;
    for (int i = 0; i < nbox; i++) {
        if (boxes[i].verified)
            done[nd++] = boxes[i].t_done - t0;
        if (boxes[i].t_notify > 0)
            noti[nn++] = boxes[i].t_notify - t0;
    }
    qsort(done, (size_t)nd, sizeof *done, cmp_d);
    qsort(noti, (size_t)nn, sizeof *noti, cmp_d);
    json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:{s:f, s:f, s:f}, s:{s:f, s:f, s:f}, s:f}",
                          "mode", mode, "boxes", nbox, "conns", http ? conns : 0,
                          "verified", nd, "failed", nbox - nd,
                          "verified_s", "p50", pct(done, nd, 0.5), "p99", pct(done, nd, 0.99),
                          "max", nd ? done[nd - 1] : -1.0,
                          "notified_s", "p50", pct(noti, nn, 0.5), "p99", pct(noti, nn, 0.99),
                          "max", nn ? noti[nn - 1] : -1.0,
                          "wall_s", t_end - t0);
    /* Both threads add to it; the sum is only read after they stop. */
    json_object_set_new(o, "simulator_verify_s", json_real(verify_s));
    json_dump_file(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    fprintf(stderr, "fleetsim: %s: %d/%d verified; p50 %.3f s p99 %.3f s max %.3f s\n", mode,
            nd, nbox, pct(done, nd, 0.5), pct(done, nd, 0.99), nd ? done[nd - 1] : -1.0);
    for (int i = 0; i < started; i++) {
        static const unsigned char disc[2] = { 0xE0, 0 };
        if (boxes[i].fd >= 0) {
            send_all(boxes[i].fd, disc, 2);
            close(boxes[i].fd);
        }
        free(boxes[i].in);
    }
    return nd == nbox ? 0 : 1;
}
