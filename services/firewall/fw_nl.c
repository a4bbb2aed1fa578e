/* Netlink plumbing for nf_tables: one mnl socket, one batch buffer, ack accounting.
 *
 * The whole batch goes out in ONE sendmsg because the kernel applies a batch atomically
 * only within one skb. The buffer is a large lazily-touched anonymous mapping, so a
 * 1M-element batch costs its real size in RSS (about 16 bytes per IPv4 element) and
 * nothing for the unused reservation; it is released with MADV_DONTNEED afterwards. */
#include "fw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#define FW_NL_RESERVE ((size_t)2 << 30)   /* address space only */
#define FW_NL_RCVBUF (16 << 20)

static void set_buf(struct fw_nl *nl, int force_opt, int opt, int size)
{
    int fd = mnl_socket_get_fd(nl->sk);
    /* *BUFFORCE ignores rmem_max/wmem_max (root only); fall back to the capped one. */
    if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

int fw_nl_open(struct fw_nl *nl, char *err, size_t errlen)
{
    memset(nl, 0, sizeof *nl);
    nl->sk = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl->sk) {
        snprintf(err, errlen, "netlink socket: %s", strerror(errno));
        return -1;
    }
    if (mnl_socket_bind(nl->sk, 0, MNL_SOCKET_AUTOPID) < 0) {
        snprintf(err, errlen, "netlink bind: %s", strerror(errno));
        mnl_socket_close(nl->sk);
        return -1;
    }
    nl->portid = mnl_socket_get_portid(nl->sk);
    int on = 1;
    /* Errors echo only the header, not the (up to 64 KiB) failing message. */
    mnl_socket_setsockopt(nl->sk, NETLINK_CAP_ACK, &on, sizeof on);
    mnl_socket_setsockopt(nl->sk, NETLINK_EXT_ACK, &on, sizeof on);
    set_buf(nl, SO_RCVBUFFORCE, SO_RCVBUF, FW_NL_RCVBUF);
    nl->rcvbuf_set = 1;
    /* Tests prove the lost-ack path with a real kernel by shrinking the ack buffer of the
     * first commit so the kernel drops acks (ENOBUFS); nothing else can make it happen on
     * demand. Unset in production. */
    const char *squeeze = getenv("OTASUKE_FWD_TEST_ACK_RCVBUF");
    if (squeeze)
        nl->test_ack_rcvbuf = atoi(squeeze);
    nl->seq = (uint32_t)time(NULL);
    nl->buf = mmap(NULL, FW_NL_RESERVE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (nl->buf == MAP_FAILED) {
        snprintf(err, errlen, "batch buffer: %s", strerror(errno));
        mnl_socket_close(nl->sk);
        return -1;
    }
    nl->cap = FW_NL_RESERVE;
    return fw_nl_batch_reset(nl, err, errlen);
}

void fw_nl_close(struct fw_nl *nl)
{
    if (nl->buf && nl->buf != MAP_FAILED)
        munmap(nl->buf, nl->cap);
    if (nl->sk)
        mnl_socket_close(nl->sk);
    free(nl->objs);
    memset(nl, 0, sizeof *nl);
}

int fw_nl_batch_reset(struct fw_nl *nl, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    if (nl->len > (1 << 20))
        madvise(nl->buf, nl->len, MADV_DONTNEED);
    nl->len = 0;
    nl->nmsg = 0;
    nl->nobj = 0;
    struct nlmsghdr *h = nftnl_batch_begin(nl->buf, nl->seq++);
    nl->len = h->nlmsg_len;
    return 0;
}

struct nlmsghdr *fw_nl_msg(struct fw_nl *nl, uint16_t type, uint16_t flags, size_t room,
                           const char *what)
{
    if (nl->len + room + 64 > nl->cap)
        return NULL;
    if (nl->nobj == nl->capobj) {
        size_t cap = nl->capobj ? nl->capobj * 2 : 256;
        struct fw_nl_obj *o = realloc(nl->objs, cap * sizeof *o);
        if (!o)
            return NULL;
        nl->objs = o;
        nl->capobj = cap;
    }
    uint32_t seq = nl->seq++;
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(nl->buf + nl->len, type, NFPROTO_INET,
                                                 flags | NLM_F_ACK, seq);
    nl->objs[nl->nobj].seq = seq;
    snprintf(nl->objs[nl->nobj].what, sizeof nl->objs[nl->nobj].what, "%s", what);
    nl->nobj++;
    return nlh;
}

void fw_nl_msg_end(struct fw_nl *nl, struct nlmsghdr *nlh)
{
    nl->len += NLMSG_ALIGN(nlh->nlmsg_len);
    nl->nmsg++;
}

static const char *obj_for_seq(const struct fw_nl *nl, uint32_t seq)
{
    /* seqs are increasing within a batch: binary search */
    size_t lo = 0, hi = nl->nobj;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (nl->objs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nl->nobj && nl->objs[lo].seq == seq ? nl->objs[lo].what : "the batch";
}

int fw_nl_commit(struct fw_nl *nl, int *errno_out, char *err, size_t errlen)
{
    *errno_out = 0;
    if (nl->nmsg == 0)
        return 0; /* nothing to change: send nothing at all */
    struct nlmsghdr *h = nftnl_batch_end(nl->buf + nl->len, nl->seq++);
    nl->len += h->nlmsg_len;
    int size = nl->len + (1 << 20) > (size_t)1 << 30 ? 1 << 30 : (int)(nl->len + (1 << 20));
    set_buf(nl, SO_SNDBUFFORCE, SO_SNDBUF, size);
    /* Room for one ack per message, with margin; the kernel counts skb overhead. */
    size_t want_rcv = nl->nmsg * 1024 + (1 << 20);
    if (nl->test_ack_rcvbuf > 0) {
        set_buf(nl, SO_RCVBUFFORCE, SO_RCVBUF, nl->test_ack_rcvbuf);
        nl->test_ack_rcvbuf = 0;
        nl->rcvbuf_set = 0;
    } else if (want_rcv > FW_NL_RCVBUF) {
        set_buf(nl, SO_RCVBUFFORCE, SO_RCVBUF, want_rcv > (1u << 30) ? 1 << 30 : (int)want_rcv);
    } else if (!nl->rcvbuf_set) {
        set_buf(nl, SO_RCVBUFFORCE, SO_RCVBUF, FW_NL_RCVBUF);
        nl->rcvbuf_set = 1;
    }
    ssize_t sent = mnl_socket_sendto(nl->sk, nl->buf, nl->len);
    if (sent < 0) {
        *errno_out = errno;
        snprintf(err, errlen, "sending a %zu-byte batch: %s", nl->len, strerror(errno));
        return -1;
    }
    /* The kernel processed the whole batch inside sendmsg: every ack is queued now. */
    char rbuf[65536];
    size_t acks = 0, errors = 0;
    int first_err = 0;
    for (;;) {
        ssize_t n = recv(mnl_socket_get_fd(nl->sk), rbuf, sizeof rbuf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == ENOBUFS)
            continue;   /* acks were dropped: keep draining the rest, then report them lost */
        if (n < 0) {
            *errno_out = errno;
            snprintf(err, errlen, "reading acks: %s", strerror(errno));
            return -1;
        }
        int len = (int)n;
        for (struct nlmsghdr *m = (void *)rbuf; mnl_nlmsg_ok(m, len);
             m = mnl_nlmsg_next(m, &len)) {
            if (m->nlmsg_type != NLMSG_ERROR)
                continue;
            const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);
            acks++;
            if (e->error) {
                if (!errors) {
                    first_err = -e->error;
                    snprintf(err, errlen, "kernel refused %s: %s",
                             obj_for_seq(nl, e->msg.nlmsg_seq), strerror(-e->error));
                }
                errors++;
            }
        }
    }
    if (errors) {
        *errno_out = first_err;
        return -1;
    }
    if (acks < nl->nmsg) {
        /* Lost acks: we cannot know what happened; the caller re-reads state. */
        *errno_out = ENOBUFS;
        snprintf(err, errlen, "only %zu of %zu acks arrived", acks, nl->nmsg);
        return -1;
    }
    return 0;
}

int fw_nl_query(struct fw_nl *nl, struct nlmsghdr *req, fw_nl_cb cb, void *data,
                char *err, size_t errlen)
{
    req->nlmsg_seq = nl->seq++;
    req->nlmsg_flags |= NLM_F_ACK;
    uint32_t seq = req->nlmsg_seq;
    if (mnl_socket_sendto(nl->sk, req, req->nlmsg_len) < 0) {
        snprintf(err, errlen, "netlink query: %s", strerror(errno));
        return -1;
    }
    static char rbuf[1 << 18];
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl->sk, rbuf, sizeof rbuf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "netlink read: %s", strerror(errno));
            return -1;
        }
        int len = (int)n;
        for (struct nlmsghdr *m = (void *)rbuf; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
            if (m->nlmsg_seq != seq || m->nlmsg_pid != nl->portid)
                continue; /* a late ack of an older exchange */
            if (m->nlmsg_type == NLMSG_DONE)
                return 0;
            if (m->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);
                if (e->error == 0)
                    return 0;
                if (e->error == -ENOENT)
                    return 1;
                snprintf(err, errlen, "netlink query: %s", strerror(-e->error));
                return -1;
            }
            if (m->nlmsg_flags & NLM_F_DUMP_INTR) {
                snprintf(err, errlen, "ruleset changed during the read; retry");
                return -1;
            }
            if (cb(m, data) < 0) {
                snprintf(err, errlen, "cannot parse the kernel's answer (type %u)",
                         m->nlmsg_type);
                return -1;
            }
        }
    }
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
    struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(a) == NFTA_GEN_ID)
            *(uint32_t *)data = ntohl(mnl_attr_get_u32(a));
    }
    return 0;
}

int fw_nl_genid(struct fw_nl *nl, uint32_t *gen, char *err, size_t errlen)
{
    char buf[256];
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, NFPROTO_UNSPEC, 0, 0);
    *gen = 0;
    return fw_nl_query(nl, nlh, gen_cb, gen, err, errlen) < 0 ? -1 : 0;
}
