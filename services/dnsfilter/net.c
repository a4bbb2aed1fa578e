/* Client-facing sockets: UDP and TCP listeners, TCP connections with 2-byte framing.
 *
 * UDP is read with recvmmsg in batches of 32 so a busy second costs few system calls.
 * TCP clients may pipeline: every complete message in the buffer is handled, answers
 * go out in whatever order they complete (RFC 7766 allows it), at most
 * DNSD_TCP_INFLIGHT per connection are outstanding (reading pauses beyond that), an
 * idle connection is closed after tcp_idle_ms, and a client that does not read its
 * answers is cut off at DNSD_TCP_OUT_MAX bytes queued. */
#include "dnsd.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int net_parse_hostport(const char *s, int default_port, struct sockaddr_storage *ss,
                       socklen_t *len, char *err, size_t errlen)
{
    char host[128];
    const char *port = NULL;
    size_t n = strlen(s);
    memset(ss, 0, sizeof *ss);
    if (n == 0 || n >= sizeof host) {
        snprintf(err, errlen, "\"%s\": expected ADDR:PORT or [V6ADDR]:PORT", s);
        return -1;
    }
    if (s[0] == '[') {
        const char *close_br = strchr(s, ']');
        if (!close_br) {
            snprintf(err, errlen, "\"%s\": missing ']' after the IPv6 address", s);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(close_br - s - 1));
        host[close_br - s - 1] = '\0';
        if (close_br[1] == ':')
            port = close_br + 2;
        else if (close_br[1] != '\0') {
            snprintf(err, errlen, "\"%s\": expected ':PORT' after ']'", s);
            return -1;
        }
    } else {
        const char *colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon) {
            snprintf(err, errlen, "\"%s\": write IPv6 addresses as [ADDR]:PORT", s);
            return -1;
        }
        size_t hl = colon ? (size_t)(colon - s) : n;
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (colon)
            port = colon + 1;
    }
    long p = default_port;
    if (port) {
        char *end;
        p = strtol(port, &end, 10);
        if (*port == '\0' || *end || p < 1 || p > 65535) {
            snprintf(err, errlen, "\"%s\": port must be 1-65535", s);
            return -1;
        }
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p);
        *len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
        *len = sizeof *a6;
    } else {
        snprintf(err, errlen, "\"%s\": \"%s\" is not an IPv4 or IPv6 address", s, host);
        return -1;
    }
    return 0;
}

const char *net_addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    const void *a = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
        snprintf(buf, len, "?");
    return buf;
}

int net_open_listeners(struct dnsd *d, char *err, size_t errlen)
{
    int one = 1;
    for (int i = 0; i < d->o.n_listen; i++) {
        struct dnsd_listen *l = &d->o.listen[i];
        int fam = l->addr.ss_family;
        l->udp_fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        l->tcp_fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->udp_fd < 0 || l->tcp_fd < 0) {
            snprintf(err, errlen, "listen %s: socket: %s", l->text, strerror(errno));
            return -1;
        }
        if (fam == AF_INET6) {
            setsockopt(l->udp_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            setsockopt(l->tcp_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        }
        /* on 0.0.0.0 / [::] learn each query's destination to answer from it: a box
         * with several addresses per net must not answer from the wrong one */
        if (fam == AF_INET && ((struct sockaddr_in *)&l->addr)->sin_addr.s_addr == htonl(INADDR_ANY))
            setsockopt(l->udp_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        if (fam == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&l->addr)->sin6_addr))
            setsockopt(l->udp_fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
        setsockopt(l->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        int rcv = 4 << 20;
        setsockopt(l->udp_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        if (bind(l->udp_fd, (struct sockaddr *)&l->addr, l->addrlen) < 0 ||
            bind(l->tcp_fd, (struct sockaddr *)&l->addr, l->addrlen) < 0) {
            snprintf(err, errlen, "listen %s: bind: %s (is another DNS server on it? "
                     "is the address on an interface?)", l->text, strerror(errno));
            return -1;
        }
        if (listen(l->tcp_fd, 128) < 0) {
            snprintf(err, errlen, "listen %s: listen: %s", l->text, strerror(errno));
            return -1;
        }
        struct epoll_event eu = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_UDP, i) };
        struct epoll_event et = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_TCP_LISTEN, i) };
        if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, l->udp_fd, &eu) < 0 ||
            epoll_ctl(d->epfd, EPOLL_CTL_ADD, l->tcp_fd, &et) < 0) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            return -1;
        }
    }
    d->conns = calloc((size_t)d->o.max_tcp, sizeof *d->conns);
    if (!d->conns) {
        snprintf(err, errlen, "out of memory for %d TCP connections", d->o.max_tcp);
        return -1;
    }
    for (int i = 0; i < d->o.max_tcp; i++)
        d->conns[i].fd = -1;
    return 0;
}

#define UDP_BATCH 32

/* Answers waiting to go out over UDP: collected while a batch of queries is handled and
 * sent with one sendmmsg, which halves the system calls per query under load. */
static uint8_t out_buf[UDP_BATCH][DNSD_UDP_MAX];
static struct sockaddr_storage out_addr[UDP_BATCH];
static struct iovec out_iov[UDP_BATCH];
static struct mmsghdr out_msgs[UDP_BATCH];
static uint64_t out_ctrl[UDP_BATCH][16];
static int out_n, out_fd = -1;

void net_udp_readable(struct dnsd *d, int idx)
{
    static uint8_t bufs[UDP_BATCH][DNSD_UDP_MAX];
    static struct sockaddr_storage addrs[UDP_BATCH];
    static struct iovec iov[UDP_BATCH];
    static struct mmsghdr msgs[UDP_BATCH];
    static uint64_t ctrl[UDP_BATCH][16];   /* room for one in6_pktinfo cmsg, aligned */
    int fd = d->o.listen[idx].udp_fd;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < UDP_BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = sizeof bufs[i];
            msgs[i].msg_hdr = (struct msghdr){ .msg_name = &addrs[i], .msg_namelen = sizeof addrs[i],
                                               .msg_iov = &iov[i], .msg_iovlen = 1,
                                               .msg_control = ctrl[i],
                                               .msg_controllen = sizeof ctrl[i] };
        }
        int n = recvmmsg(fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            struct dnsd_client c = { .tcp = 0, .fd = fd, .addrlen = msgs[i].msg_hdr.msg_namelen };
            memcpy(&c.addr, &addrs[i], sizeof c.addr);
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm;
                 cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
                if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
                    struct in_pktinfo pi;
                    memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                    c.dst_family = AF_INET;
                    memcpy(c.dst, &pi.ipi_addr, 4);
                } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
                    struct in6_pktinfo pi;
                    memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                    c.dst_family = AF_INET6;
                    memcpy(c.dst, &pi.ipi6_addr, 16);
                    c.dst_ifindex = (int)pi.ipi6_ifindex;
                }
            }
            filter_query(d, &c, bufs[i], msgs[i].msg_len);
        }
        net_udp_flush(d);
        if (n < UDP_BATCH)
            return;
    }
}

static void conn_close(struct dnsd *d, struct dnsd_conn *k)
{
    (void)d;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->gen++;
    free(k->out);
    k->out = NULL;
    k->outlen = k->outcap = 0;
    k->inlen = 0;
    k->inflight = 0;
}

static void conn_update_events(struct dnsd *d, struct dnsd_conn *k, uint32_t idx)
{
    int want_read = k->inflight < DNSD_TCP_INFLIGHT;
    struct epoll_event ev = { .events = (want_read ? EPOLLIN : 0) | (k->outlen ? EPOLLOUT : 0),
                              .data.u64 = EV_TAG(EV_TCP_CONN, idx) };
    epoll_ctl(d->epfd, EPOLL_CTL_MOD, k->fd, &ev);
    k->reading = want_read;
}

void net_tcp_accept(struct dnsd *d, int idx)
{
    for (int round = 0; round < 16; round++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(d->o.listen[idx].tcp_fd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int slot = -1;
        for (int i = 0; i < d->o.max_tcp; i++)
            if (d->conns[i].fd < 0) {
                slot = i;
                break;
            }
        if (slot < 0) {
            d->st.tcp_refused++;
            close(fd);
            continue;
        }
        struct dnsd_conn *k = &d->conns[slot];
        k->fd = fd;
        k->addr = ss;
        k->addrlen = sl;
        k->inlen = 0;
        k->inflight = 0;
        k->last_ms = d->now_ms;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_TCP_CONN, slot) };
        if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            conn_close(d, k);
            continue;
        }
        k->reading = 1;
        d->st.tcp_accepted++;
    }
}

/* Handles every complete framed query in the input buffer, within the in-flight limit. */
static void conn_process(struct dnsd *d, uint32_t idx)
{
    struct dnsd_conn *k = &d->conns[idx];
    size_t off = 0;
    uint32_t gen = k->gen;
    while (k->inlen - off >= 2 && k->inflight < DNSD_TCP_INFLIGHT) {
        size_t mlen = dnsw_get16(k->in + off);
        if (mlen > DNSD_TCP_QMAX || mlen < DNSW_HDR_LEN) {
            conn_close(d, k);     /* a client that lies about lengths gets no more */
            return;
        }
        if (k->inlen - off < 2 + mlen)
            break;
        struct dnsd_client c = { .tcp = 1, .conn = idx, .conn_gen = gen, .addr = k->addr,
                                 .addrlen = k->addrlen };
        k->inflight++;
        uint8_t q[DNSD_TCP_QMAX];
        memcpy(q, k->in + off + 2, mlen);
        off += 2 + mlen;
        filter_query(d, &c, q, mlen);
        if (k->gen != gen || k->fd < 0)
            return;               /* closed while answering (write error) */
    }
    if (off) {
        memmove(k->in, k->in + off, k->inlen - off);
        k->inlen -= off;
    }
}

static void conn_flush(struct dnsd *d, struct dnsd_conn *k)
{
    while (k->outlen) {
        ssize_t n = send(k->fd, k->out, k->outlen, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            conn_close(d, k);
            return;
        }
        memmove(k->out, k->out + n, k->outlen - (size_t)n);
        k->outlen -= (size_t)n;
    }
}

void net_tcp_event(struct dnsd *d, uint32_t idx, uint32_t events)
{
    if (idx >= (uint32_t)d->o.max_tcp)
        return;
    struct dnsd_conn *k = &d->conns[idx];
    if (k->fd < 0)
        return;
    k->last_ms = d->now_ms;
    if (events & (EPOLLHUP | EPOLLERR)) {
        /* both directions gone: nobody to answer, and a level-triggered HUP would
         * otherwise come back on every turn while reading is paused */
        conn_close(d, k);
        return;
    }
    if (events & EPOLLOUT) {
        conn_flush(d, k);
        if (k->fd < 0)
            return;
    }
    if (events & EPOLLIN) {
        if (k->inlen < sizeof k->in) {
            ssize_t n = recv(k->fd, k->in + k->inlen, sizeof k->in - k->inlen, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                /* the client is gone; answers still in flight find gen changed */
                conn_close(d, k);
                return;
            }
            if (n > 0)
                k->inlen += (size_t)n;
        }
        conn_process(d, idx);
    }
    if (k->fd >= 0)
        conn_update_events(d, k, idx);
}

/* Reading was paused at the in-flight limit: resume and handle what is buffered.
 * reading is set before conn_process so that answers given synchronously inside it
 * never re-enter conn_process on the same buffer. */
static void conn_resume(struct dnsd *d, uint32_t idx)
{
    struct dnsd_conn *k = &d->conns[idx];
    uint32_t gen = k->gen;
    if (k->reading || k->inflight >= DNSD_TCP_INFLIGHT)
        return;
    conn_update_events(d, k, idx);
    conn_process(d, idx);
    if (k->fd >= 0 && k->gen == gen)
        conn_update_events(d, k, idx);
}

void net_tcp_query_done(struct dnsd *d, const struct dnsd_client *c)
{
    struct dnsd_conn *k = &d->conns[c->conn];
    if (k->fd < 0 || k->gen != c->conn_gen)
        return;
    if (k->inflight)
        k->inflight--;
    conn_resume(d, c->conn);
}

static void tcp_send(struct dnsd *d, const struct dnsd_client *c, const uint8_t *msg, size_t len)
{
    struct dnsd_conn *k = &d->conns[c->conn];
    if (k->fd < 0 || k->gen != c->conn_gen)
        return;                   /* the client left before its answer came */
    if (k->outlen + len + 2 > DNSD_TCP_OUT_MAX) {
        conn_close(d, k);
        return;
    }
    if (k->outlen + len + 2 > k->outcap) {
        size_t cap = k->outcap ? k->outcap : 4096;
        while (cap < k->outlen + len + 2)
            cap *= 2;
        uint8_t *o = realloc(k->out, cap);
        if (!o) {
            conn_close(d, k);
            return;
        }
        k->out = o;
        k->outcap = cap;
    }
    dnsw_set16(k->out + k->outlen, (uint16_t)len);
    memcpy(k->out + k->outlen + 2, msg, len);
    k->outlen += len + 2;
    int had_out = k->outlen != len + 2;
    if (!had_out)
        conn_flush(d, k);
    if (k->fd < 0 || k->gen != c->conn_gen)
        return;
    if (k->inflight)
        k->inflight--;
    if (k->reading)
        conn_update_events(d, k, c->conn);   /* EPOLLOUT on or off */
    else
        conn_resume(d, c->conn);
}

void net_send(struct dnsd *d, const struct dnsd_client *c, uint8_t *msg, size_t len,
              size_t max_udp)
{
    if (c->tcp) {
        if (len > 65535)
            return;
        tcp_send(d, c, msg, len);
        return;
    }
    if (len > max_udp) {
        /* keep header and question, say TC: the client retries over TCP */
        struct dnsw_msg m;
        size_t qend = DNSW_HDR_LEN;
        if (dnsw_name_skip(msg, len, &qend) == 0 && qend + 4 <= len)
            qend += 4;
        else
            qend = DNSW_HDR_LEN;
        (void)m;
        dnsw_set16(msg + 2, dnsw_get16(msg + 2) | DNSW_F_TC);
        dnsw_set16(msg + 4, qend > DNSW_HDR_LEN ? 1 : 0);
        dnsw_set16(msg + 6, 0);
        dnsw_set16(msg + 8, 0);
        dnsw_set16(msg + 10, 0);
        len = qend;
    }
    /* queue; net_udp_flush sends the batch with one sendmmsg */
    if (out_n == UDP_BATCH || (out_n && out_fd != c->fd))
        net_udp_flush(d);
    out_fd = c->fd;
    memcpy(out_buf[out_n], msg, len);
    memcpy(&out_addr[out_n], &c->addr, c->addrlen);
    out_iov[out_n] = (struct iovec){ .iov_base = out_buf[out_n], .iov_len = len };
    out_msgs[out_n].msg_hdr = (struct msghdr){ .msg_name = &out_addr[out_n],
                                               .msg_namelen = c->addrlen,
                                               .msg_iov = &out_iov[out_n], .msg_iovlen = 1 };
    if (c->dst_family) {
        struct msghdr *mh = &out_msgs[out_n].msg_hdr;
        mh->msg_control = out_ctrl[out_n];
        mh->msg_controllen = c->dst_family == AF_INET ? CMSG_SPACE(sizeof(struct in_pktinfo))
                                                      : CMSG_SPACE(sizeof(struct in6_pktinfo));
        memset(out_ctrl[out_n], 0, sizeof out_ctrl[out_n]);
        struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
        if (c->dst_family == AF_INET) {
            struct in_pktinfo pi = { 0 };
            memcpy(&pi.ipi_spec_dst, c->dst, 4);
            cm->cmsg_level = IPPROTO_IP;
            cm->cmsg_type = IP_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(cm), &pi, sizeof pi);
        } else {
            struct in6_pktinfo pi = { .ipi6_ifindex = (unsigned)c->dst_ifindex };
            memcpy(&pi.ipi6_addr, c->dst, 16);
            cm->cmsg_level = IPPROTO_IPV6;
            cm->cmsg_type = IPV6_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(cm), &pi, sizeof pi);
        }
    }
    out_n++;
}

void net_udp_flush(struct dnsd *d)
{
    (void)d;
    int sent = 0;
    while (sent < out_n) {
        int n = sendmmsg(out_fd, out_msgs + sent, (unsigned)(out_n - sent), MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            sent++;               /* skip the one that failed (full buffer, bad address) */
            continue;
        }
        sent += n;
    }
    out_n = 0;
}

void net_tcp_sweep(struct dnsd *d)
{
    for (int i = 0; i < d->o.max_tcp; i++) {
        struct dnsd_conn *k = &d->conns[i];
        if (k->fd >= 0 && k->inflight == 0 && d->now_ms - k->last_ms > (uint64_t)d->o.tcp_idle_ms)
            conn_close(d, k);
    }
}
