/* Events to the agent: one JSON line per datagram on a unix datagram socket.
 *
 * sendto with MSG_DONTWAIT on an unconnected socket: when the agent is slow (EAGAIN,
 * ENOBUFS), not listening (ECONNREFUSED, ENOENT) or absent, the event is dropped and
 * counted -- the DNS path never waits for it. Blocked queries are sent one by one;
 * allowed queries only as per-client counts every --allowed-every seconds (10), so a busy office costs
 * the agent a few datagrams, not one per query.
 *
 * The exception: allowed names that look like data smuggled in labels (the agent's
 * DNS-tunnel detector needs the names) go out as "query" events, sampled by a per-client
 * token bucket. The test costs one pass over the name for ordinary names (no label
 * reaches QEV_ENTROPY_MIN characters); only the rare long label pays for an entropy. */
#include "dnsd.h"

#include "ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int events_open(struct dnsd *d, char *err, size_t errlen)
{
    d->ev_fd = -1;
    if (!d->o.events_path)
        return 0;
    if (strlen(d->o.events_path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
        snprintf(err, errlen, "--events %s: path longer than %zu bytes", d->o.events_path,
                 sizeof ((struct sockaddr_un *)0)->sun_path - 1);
        return -1;
    }
    d->ev_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->ev_fd < 0) {
        snprintf(err, errlen, "events socket: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void ev_send(struct dnsd *d, const char *msg, size_t len)
{
    if (d->ev_fd < 0)
        return;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    memcpy(sun.sun_path, d->o.events_path, strlen(d->o.events_path) + 1);
    if (sendto(d->ev_fd, msg, len, MSG_DONTWAIT, (struct sockaddr *)&sun, sizeof sun) == (ssize_t)len)
        d->st.events_sent++;
    else
        d->st.events_dropped++;
}

/* Copies s into out as JSON string contents; names here are already escaped to
 * [a-z0-9-_.\] by dnswire, labels and groups are validated, so only '\' needs care. */
static void json_str(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < outlen; s++) {
        if (*s == '\\' || *s == '"')
            out[o++] = '\\';
        out[o++] = (unsigned char)*s < 0x20 ? '?' : *s;
    }
    out[o] = '\0';
}

void events_blocked(struct dnsd *d, const struct dnsd_client *c, const char *name,
                    uint16_t qtype, const char *category, const char *list, const char *group)
{
    if (d->ev_fd < 0)
        return;
    char msg[1536], addr[INET6_ADDRSTRLEN], tname[16], ename[600], elist[160], egroup[160];
    json_str(ename, sizeof ename, name);
    json_str(elist, sizeof elist, list ? list : "");
    json_str(egroup, sizeof egroup, group ? group : "");
    int n = snprintf(msg, sizeof msg,
                     "{\"type\":\"blocked\",\"ts\":%lld,\"client\":\"%s\",\"name\":\"%s\","
                     "\"qtype\":\"%s\",\"category\":\"%s\",\"list\":\"%s\",\"group\":\"%s\"}\n",
                     (long long)time(NULL), net_addr_text(&c->addr, addr, sizeof addr), ename,
                     dnsw_type_name(qtype, tname, sizeof tname), category ? category : "",
                     elist, egroup);
    if (n > 0 && (size_t)n < sizeof msg)
        ev_send(d, msg, (size_t)n);
}

static void send_allowed(const uint8_t addr16[16], uint32_t count, void *ctx)
{
    struct dnsd *d = ctx;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    char a[INET6_ADDRSTRLEN], msg[256];
    if (memcmp(addr16, mapped, 12) == 0)
        inet_ntop(AF_INET, addr16 + 12, a, sizeof a);
    else
        inet_ntop(AF_INET6, addr16, a, sizeof a);
    int n = snprintf(msg, sizeof msg, "{\"type\":\"allowed\",\"ts\":%lld,\"client\":\"%s\",\"count\":%u}\n",
                     (long long)time(NULL), a, count);
    ev_send(d, msg, (size_t)n);
}

void events_tick(struct dnsd *d)
{
    if (d->now_ms - d->last_allowed_flush_ms < (uint64_t)d->o.allowed_every_ms)
        return;
    d->last_allowed_flush_ms = d->now_ms;
    if (d->ev_fd >= 0)
        rl_drain_allowed(d->rl, send_allowed, d);
}

/* Query-event sampling. The thresholds are the detector's (otasuke.conf detect:
 * tunnel_label_len 30, tunnel_entropy 3.5 by default, and the owner's run-time settings
 * through the agent's query-events file, query_tuning.c; o.query): a label that long is
 * sent as it is; a shorter one from QEV_ENTROPY_MIN characters on only when it is
 * random-looking, so owner-lowered thresholds still get names. */
#define QEV_ENTROPY_MIN  16
/* Per client: o.query.burst names at once (40 by default), then o.query.rate per second
 * (5). The detector wants ~20 names within 2 minutes, so this is plenty, and a tunnel
 * pushing thousands of queries a second costs the agent at most rate datagrams a second
 * per client. The agent raises both when the owner asks for more names in less time. */
#define QEV_SLOTS        256   /* direct-mapped by address hash: a collision resets the
                                * bucket, which can only let a few more names through */

struct qev_bucket {
    uint8_t addr[16];
    uint64_t at_ms;     /* last refill */
    uint32_t tokens;
    int used;
};

static struct qev_bucket qev[QEV_SLOTS];   /* dnsd is one thread, one loop */

/* Shannon entropy of a label in bits per character, as detect_entropy computes it, but
 * cheap: H = log2(len) - sum(c * log2 c) / len over the counts c, with c * log2 c from a
 * table, and only the counters touched are cleared again. */
static double label_entropy(const char *s, size_t len)
{
    static uint8_t cnt[256];
    static double clog[256];
    static int ready;
    uint8_t seen[256];
    unsigned ns = 0;
    if (!ready) {
        for (int c = 1; c < 256; c++)
            clog[c] = c * log2(c);
        ready = 1;
    }
    if (len > 255)
        len = 255;   /* escaped labels only; the counts stay within uint8_t */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!cnt[ch]++)
            seen[ns++] = ch;
    }
    double sum = 0;
    for (unsigned k = 0; k < ns; k++) {
        sum += clog[cnt[seen[k]]];
        cnt[seen[k]] = 0;
    }
    return log2((double)len) - sum / (double)len;
}

/* 1 when some label of name could carry encoded data. */
static int qev_suspicious(const struct dnsd_opts *o, const char *name, size_t len)
{
    const char *p = name, *end = name + len;
    while (p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t l = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if ((int)l >= o->query.label_len)
            return 1;
        if (l >= QEV_ENTROPY_MIN && label_entropy(p, l) >= o->query.entropy)
            return 1;
        if (!dot)
            break;
        p = dot + 1;
    }
    return 0;
}

static int qev_take(struct dnsd *d, const struct sockaddr_storage *ss)
{
    uint8_t a[16] = { 0 };
    if (ss->ss_family == AF_INET6)
        memcpy(a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    else
        memcpy(a + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    struct qev_bucket *b = &qev[h % QEV_SLOTS];
    uint32_t burst = (uint32_t)d->o.query.burst, rate = (uint32_t)d->o.query.rate;
    if (!b->used || memcmp(b->addr, a, 16)) {
        memcpy(b->addr, a, 16);
        b->used = 1;
        b->tokens = burst;
        b->at_ms = d->now_ms;
    }
    uint64_t add = (d->now_ms - b->at_ms) * rate / 1000;
    if (add) {
        b->tokens = b->tokens + add > burst ? burst : (uint32_t)(b->tokens + add);
        b->at_ms += add * 1000 / rate;
    }
    if (!b->tokens)
        return 0;
    b->tokens--;
    return 1;
}

void events_query(struct dnsd *d, const struct dnsd_client *c, const char *name, size_t len,
                  uint16_t qtype)
{
    size_t shortest = d->o.query.label_len < QEV_ENTROPY_MIN ? (size_t)d->o.query.label_len
                                                             : QEV_ENTROPY_MIN;
    if (d->ev_fd < 0 || len < shortest || !qev_suspicious(&d->o, name, len))
        return;
    if (!qev_take(d, &c->addr)) {
        d->st.events_dropped++;
        return;
    }
    char msg[768], addr[INET6_ADDRSTRLEN], tname[16], ename[600];
    json_str(ename, sizeof ename, name);
    int n = snprintf(msg, sizeof msg,
                     "{\"type\":\"query\",\"ts\":%lld,\"client\":\"%s\",\"name\":\"%s\","
                     "\"qtype\":\"%s\"}\n",
                     (long long)time(NULL), net_addr_text(&c->addr, addr, sizeof addr), ename,
                     dnsw_type_name(qtype, tname, sizeof tname));
    if (n > 0 && (size_t)n < sizeof msg)
        ev_send(d, msg, (size_t)n);
}
