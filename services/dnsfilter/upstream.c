/* Forwarding to the upstream resolver (unbound on 127.0.0.1:5335 on the box).
 *
 * Each forwarded query gets its own random 16-bit id (xoshiro256** seeded from
 * getrandom), mapped back to the client's id and address through id_map. Every query has
 * the same timeout, so the timeout queue is a FIFO and expiry costs O(1) per query.
 * One connected UDP socket: the kernel then drops datagrams from any other source, and
 * a closed upstream port comes back as ECONNREFUSED, which fails the waiting queries at
 * once instead of after the timeout. A truncated answer is retried over a short TCP
 * connection of its own (rare, so no pooling). */
#include "dnsd.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct pending {
    uint32_t next, prev;          /* free list / timeout list links (index + 1) */
    uint16_t up_id;
    uint8_t used, kind;
    uint16_t group;
    uint64_t deadline_ms;
    struct dnsd_client client;
    int tcp_fd;                   /* TCP fallback connection or -1 */
    uint8_t *tcp_buf;
    size_t tcp_len, tcp_done;
    int tcp_phase;                /* 1 writing, 2 reading */
    uint16_t qlen;
    uint8_t target_len;
    char target[DNSW_NAME_WIRE_MAX + 1];
    uint8_t q[DNSD_PENDING_QMAX];
};

uint64_t dnsd_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dnsd_random(struct dnsd *d)
{
    uint64_t *s = d->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

int up_init(struct dnsd *d, char *err, size_t errlen)
{
    if (getrandom(d->rng, sizeof d->rng, 0) != (ssize_t)sizeof d->rng) {
        snprintf(err, errlen, "getrandom failed: %s", strerror(errno));
        return -1;
    }
    d->max_pending = 4096;
    d->pend = calloc(d->max_pending, sizeof *d->pend);
    d->id_map = calloc(65536, sizeof *d->id_map);
    if (!d->pend || !d->id_map) {
        snprintf(err, errlen, "out of memory for %u pending queries", d->max_pending);
        return -1;
    }
    /* slots are handed out from a high-water mark first and only then from the free
     * list, so the pages of slots never needed are never touched (about 1.5 KB each) */
    d->free_head = 0;
    d->pend_unused = 0;
    d->upstream_fd = socket(d->o.upstream.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->upstream_fd < 0 ||
        connect(d->upstream_fd, (struct sockaddr *)&d->o.upstream, d->o.upstream_len) < 0) {
        snprintf(err, errlen, "upstream %s: cannot set up UDP socket: %s", d->o.upstream_text,
                 strerror(errno));
        return -1;
    }
    int rcv = 4 << 20;
    setsockopt(d->upstream_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_UPSTREAM, 0) };
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->upstream_fd, &ev) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static uint32_t idx_of(struct dnsd *d, struct pending *p) { return (uint32_t)(p - d->pend); }

static void tq_remove(struct dnsd *d, struct pending *p)
{
    uint32_t self = idx_of(d, p) + 1;
    if (p->prev)
        d->pend[p->prev - 1].next = p->next;
    else if (d->tq_head == self)
        d->tq_head = p->next;
    if (p->next)
        d->pend[p->next - 1].prev = p->prev;
    else if (d->tq_tail == self)
        d->tq_tail = p->prev;
    p->next = p->prev = 0;
}

static void tq_append(struct dnsd *d, struct pending *p)
{
    uint32_t self = idx_of(d, p) + 1;
    p->deadline_ms = d->now_ms + (uint64_t)d->o.timeout_ms;
    p->next = 0;
    p->prev = d->tq_tail;
    if (d->tq_tail)
        d->pend[d->tq_tail - 1].next = self;
    else
        d->tq_head = self;
    d->tq_tail = self;
}

static void release(struct dnsd *d, struct pending *p)
{
    tq_remove(d, p);
    if (p->tcp_fd >= 0) {
        close(p->tcp_fd);         /* also removes it from epoll */
        p->tcp_fd = -1;
    }
    free(p->tcp_buf);
    p->tcp_buf = NULL;
    d->id_map[p->up_id] = 0;
    p->used = 0;
    p->next = d->free_head;
    d->free_head = idx_of(d, p) + 1;
    d->n_pending--;
}

/* Builds what we send upstream for p into out. Returns its length or 0. */
static size_t build_upstream_query(const struct pending *p, uint8_t *out, size_t cap)
{
    if (p->kind == 0) {
        if (p->qlen > cap)
            return 0;
        memcpy(out, p->q, p->qlen);
        dnsw_set16(out, p->up_id);
        return p->qlen;
    }
    /* safe-search target lookup: our own question, the client's DO bit and EDNS */
    struct dnsw_msg m;
    if (dnsw_parse_query(p->q, p->qlen, &m, NULL, 0) != DNSW_OK)
        return 0;
    struct dnsw_buf b = { .p = out, .cap = cap };
    dnsw_put_u16(&b, p->up_id);
    dnsw_put_u16(&b, DNSW_F_RD);
    dnsw_put_u16(&b, 1);
    dnsw_put_u16(&b, 0);
    dnsw_put_u16(&b, 0);
    dnsw_put_u16(&b, m.edns.present ? 1 : 0);
    dnsw_put_name(&b, p->target, p->target_len);
    dnsw_put_u16(&b, m.qtype);
    dnsw_put_u16(&b, m.qclass);
    if (m.edns.present)
        dnsw_put_opt(&b, 1232, m.edns.do_bit, -1, NULL);
    return b.overflow ? 0 : b.len;
}

const uint8_t *up_pending_query(const struct pending *p, size_t *len)
{
    *len = p->qlen;
    return p->q;
}
const struct dnsd_client *up_pending_client(const struct pending *p) { return &p->client; }
unsigned up_pending_group(const struct pending *p) { return p->group; }
int up_pending_kind(const struct pending *p) { return p->kind; }
const char *up_pending_target(const struct pending *p, size_t *len)
{
    *len = p->target_len;
    return p->target;
}

/* Answers the client SERVFAIL for p and forgets p. */
static void fail_pending(struct dnsd *d, struct pending *p, int ede, const char *why)
{
    filter_servfail(d, &p->client, p->q, p->qlen, ede, why);
    release(d, p);
}

int up_forward(struct dnsd *d, const struct dnsd_client *c, const uint8_t *q, size_t qlen,
               unsigned group, int kind, const char *target, size_t target_len)
{
    if (qlen > DNSD_PENDING_QMAX || target_len > DNSW_NAME_WIRE_MAX)
        return -1;
    struct pending *p;
    if (d->free_head) {
        p = &d->pend[d->free_head - 1];
        d->free_head = p->next;
    } else if (d->pend_unused < d->max_pending) {
        p = &d->pend[d->pend_unused++];
    } else {
        d->st.pending_full++;
        return -1;
    }
    memset(p, 0, offsetof(struct pending, q));
    p->tcp_fd = -1;
    p->used = 1;
    p->kind = (uint8_t)kind;
    p->group = (uint16_t)group;
    p->client = *c;
    p->qlen = (uint16_t)qlen;
    memcpy(p->q, q, qlen);
    if (target) {
        memcpy(p->target, target, target_len);
        p->target_len = (uint8_t)target_len;
        p->target[target_len] = '\0';
    }
    uint16_t id;
    do
        id = (uint16_t)dnsd_random(d);
    while (d->id_map[id]);
    p->up_id = id;
    d->id_map[id] = idx_of(d, p) + 1;
    d->n_pending++;
    tq_append(d, p);

    uint8_t buf[DNSD_PENDING_QMAX + 64];
    size_t n = build_upstream_query(p, buf, sizeof buf);
    if (n == 0) {
        fail_pending(d, p, -1, NULL);
        return 0;
    }
    /* a send can report the ICMP error of an earlier datagram; then try once more */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (send(d->upstream_fd, buf, n, 0) == (ssize_t)n)
            return 0;
        if (errno != ECONNREFUSED)
            break;
    }
    d->st.upstream_errors++;
    fail_pending(d, p, 23, "otasuke: upstream unreachable");
    return 0;
}

static void start_tcp_fallback(struct dnsd *d, struct pending *p)
{
    uint8_t buf[DNSD_PENDING_QMAX + 64];
    size_t n = build_upstream_query(p, buf + 2, sizeof buf - 2);
    p->tcp_buf = malloc(65535 + 2);
    int fd = socket(d->o.upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n == 0 || !p->tcp_buf || fd < 0) {
        if (fd >= 0)
            close(fd);
        d->st.upstream_errors++;
        fail_pending(d, p, 23, "otasuke: upstream TCP retry failed");
        return;
    }
    dnsw_set16(buf, (uint16_t)n);
    memcpy(p->tcp_buf, buf, n + 2);
    p->tcp_len = n + 2;
    p->tcp_done = 0;
    p->tcp_phase = 1;
    p->tcp_fd = fd;
    if (connect(fd, (struct sockaddr *)&d->o.upstream, d->o.upstream_len) < 0 &&
        errno != EINPROGRESS) {
        d->st.upstream_errors++;
        fail_pending(d, p, 23, "otasuke: upstream TCP connect failed");
        return;
    }
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = EV_TAG(EV_UPSTREAM_TCP, idx_of(d, p)) };
    epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
    tq_remove(d, p);
    tq_append(d, p);              /* a fresh timeout for the retry */
    d->st.tc_fallbacks++;
}

/* Checks that resp answers what p asked, puts back the client's id, and hands it on. */
static void deliver(struct dnsd *d, struct pending *p, uint8_t *resp, size_t len, int via_tcp)
{
    struct dnsw_msg r;
    if (dnsw_parse_response(resp, len, &r, NULL, 0) != DNSW_OK) {
        d->st.upstream_errors++;
        fail_pending(d, p, 23, "otasuke: malformed upstream answer");
        return;
    }
    struct dnsw_msg q;
    if (dnsw_parse_query(p->q, p->qlen, &q, NULL, 0) != DNSW_OK) {
        release(d, p);
        return;
    }
    const char *want = p->kind ? p->target : q.qname;
    if (r.qtype != q.qtype || strcmp(r.qname, want) != 0)
        return;                   /* not ours (late or forged): keep waiting */
    if ((r.flags & DNSW_F_TC) && !via_tcp) {
        start_tcp_fallback(d, p);
        return;
    }
    if (r.flags & DNSW_F_TC) {
        d->st.upstream_errors++;
        fail_pending(d, p, 23, "otasuke: upstream answer truncated over TCP");
        return;
    }
    tq_remove(d, p);
    filter_upstream_answer(d, p, resp, len);
    release(d, p);
}

void up_readable(struct dnsd *d)
{
    static uint8_t buf[65536];
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(d->upstream_fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == ECONNREFUSED) {
                /* upstream port closed: every UDP query waiting on it is lost */
                d->st.upstream_errors++;
                uint32_t i2 = d->tq_head;
                while (i2) {
                    struct pending *p = &d->pend[i2 - 1];
                    i2 = p->next;
                    if (p->tcp_fd < 0)
                        fail_pending(d, p, 23, "otasuke: upstream refused");
                }
                continue;
            }
            return;
        }
        if (n < DNSW_HDR_LEN)
            continue;
        uint32_t pi = d->id_map[dnsw_get16(buf)];
        if (!pi)
            continue;
        struct pending *p = &d->pend[pi - 1];
        if (p->tcp_fd >= 0)
            continue;             /* already retrying over TCP */
        deliver(d, p, buf, (size_t)n, 0);
    }
}

void up_tcp_event(struct dnsd *d, uint32_t idx, uint32_t events)
{
    if (idx >= d->max_pending)
        return;
    struct pending *p = &d->pend[idx];
    if (!p->used || p->tcp_fd < 0)
        return;
    if (p->tcp_phase == 1) {
        ssize_t n = send(p->tcp_fd, p->tcp_buf + p->tcp_done, p->tcp_len - p->tcp_done,
                         MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            d->st.upstream_errors++;
            fail_pending(d, p, 23, "otasuke: upstream TCP send failed");
            return;
        }
        p->tcp_done += (size_t)n;
        if (p->tcp_done < p->tcp_len)
            return;
        p->tcp_phase = 2;
        p->tcp_done = 0;
        p->tcp_len = 0;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_UPSTREAM_TCP, idx) };
        epoll_ctl(d->epfd, EPOLL_CTL_MOD, p->tcp_fd, &ev);
        return;
    }
    (void)events;
    size_t want = p->tcp_done < 2 ? 2 : 2 + (size_t)dnsw_get16(p->tcp_buf);
    ssize_t n = recv(p->tcp_fd, p->tcp_buf + p->tcp_done, want - p->tcp_done, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        d->st.upstream_errors++;
        fail_pending(d, p, 23, "otasuke: upstream TCP closed");
        return;
    }
    p->tcp_done += (size_t)n;
    if (p->tcp_done < 2)
        return;
    want = 2 + (size_t)dnsw_get16(p->tcp_buf);
    if (p->tcp_done < want)
        return;
    if (dnsw_get16(p->tcp_buf + 2) != p->up_id) {
        d->st.upstream_errors++;
        fail_pending(d, p, 23, "otasuke: upstream TCP answer has the wrong id");
        return;
    }
    /* deliver may release p, which frees tcp_buf: hand it a copy */
    static uint8_t copy[65536];
    memcpy(copy, p->tcp_buf + 2, want - 2);
    deliver(d, p, copy, want - 2, 1);
}

void up_expire(struct dnsd *d)
{
    while (d->tq_head) {
        struct pending *p = &d->pend[d->tq_head - 1];
        if (p->deadline_ms > d->now_ms)
            break;
        d->st.timeouts++;
        fail_pending(d, p, 22, "otasuke: upstream timeout");
    }
}
