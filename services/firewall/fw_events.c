/* Events for the agent: nflog drops and neighbours, as JSON lines on a unix datagram
 * socket. Sending never blocks the firewall: a full or absent receiver costs a counted
 * drop, not a stall.
 *
 * nflog is parsed here with libmnl (NFNL_SUBSYS_ULOG) rather than libnetfilter_log:
 * we need four attributes of one message type, and one less library on the box. */
#include "fw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/neighbour.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NEIGH_MAX 4096
#define NEIGH_REPEAT_S 300   /* re-announce a known neighbour at most this often */

struct neigh {
    uint8_t mac[6];
    uint8_t addr[16];
    uint8_t fam;
    int ifindex;
    time_t first, last, announced;
};

struct fw_events {
    struct mnl_socket *nflog, *rtnl;
    int out;                     /* unix datagram socket, -1 = stdout */
    struct sockaddr_un dst;
    char leases[4096];
    unsigned long sent, dropped;
    struct neigh *neigh;
    size_t nneigh;
};

static void emit(struct fw_events *ev, const char *json)
{
    if (ev->out < 0) {
        printf("%s\n", json);
        fflush(stdout);
        ev->sent++;
        return;
    }
    if (sendto(ev->out, json, strlen(json), MSG_DONTWAIT, (struct sockaddr *)&ev->dst,
               sizeof ev->dst) < 0)
        ev->dropped++;
    else
        ev->sent++;
}

static int nflog_config(struct mnl_socket *sk, uint16_t group, uint8_t cmd, int mode)
{
    char buf[256];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof *g);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(group);
    if (mode) {
        struct nfulnl_msg_config_mode m = { .copy_range = htonl(128), .copy_mode = NFULNL_COPY_PACKET };
        mnl_attr_put(nlh, NFULA_CFG_MODE, sizeof m, &m);
    } else {
        struct nfulnl_msg_config_cmd c = { .command = cmd };
        mnl_attr_put(nlh, NFULA_CFG_CMD, sizeof c, &c);
    }
    if (mnl_socket_sendto(sk, nlh, nlh->nlmsg_len) < 0)
        return -1;
    char rbuf[4096];
    ssize_t n = mnl_socket_recvfrom(sk, rbuf, sizeof rbuf);
    if (n < 0)
        return -1;
    return mnl_cb_run(rbuf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(sk), NULL, NULL) < 0 ? -1 : 0;
}

static int neigh_dump(struct mnl_socket *sk)
{
    char buf[256];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof *nd);
    nd->ndm_family = AF_UNSPEC;
    return mnl_socket_sendto(sk, nlh, nlh->nlmsg_len) < 0 ? -1 : 0;
}

struct fw_events *fw_events_open(const char *sock, uint32_t nflog_group, const char *leases,
                                 char *err, size_t errlen)
{
    struct fw_events *ev = calloc(1, sizeof *ev);
    if (!ev || !(ev->neigh = calloc(NEIGH_MAX, sizeof *ev->neigh))) {
        free(ev);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ev->out = -1;
    if (leases)
        snprintf(ev->leases, sizeof ev->leases, "%s", leases);
    if (sock && strcmp(sock, "-") != 0) {
        if (strlen(sock) >= sizeof ev->dst.sun_path) {
            snprintf(err, errlen, "events socket path too long: %s", sock);
            goto fail;
        }
        ev->out = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ev->dst.sun_family = AF_UNIX;
        snprintf(ev->dst.sun_path, sizeof ev->dst.sun_path, "%s", sock);
    }
    if (nflog_group) {
        ev->nflog = mnl_socket_open(NETLINK_NETFILTER);
        if (!ev->nflog || mnl_socket_bind(ev->nflog, 0, MNL_SOCKET_AUTOPID) < 0 ||
            nflog_config(ev->nflog, (uint16_t)nflog_group, NFULNL_CFG_CMD_BIND, 0) < 0 ||
            nflog_config(ev->nflog, (uint16_t)nflog_group, 0, 1) < 0) {
            snprintf(err, errlen, "nflog group %u: %s (another listener on it?)",
                     nflog_group, strerror(errno));
            goto fail;
        }
        int big = 4 << 20;
        setsockopt(mnl_socket_get_fd(ev->nflog), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    }
    ev->rtnl = mnl_socket_open(NETLINK_ROUTE);
    if (!ev->rtnl || mnl_socket_bind(ev->rtnl, RTMGRP_NEIGH, MNL_SOCKET_AUTOPID) < 0 ||
        neigh_dump(ev->rtnl) < 0) {
        snprintf(err, errlen, "neighbour watch: %s", strerror(errno));
        goto fail;
    }
    return ev;
fail:
    fw_events_close(ev);
    return NULL;
}

void fw_events_fds(const struct fw_events *ev, int *nflog_fd, int *neigh_fd)
{
    *nflog_fd = ev->nflog ? mnl_socket_get_fd(ev->nflog) : -1;
    *neigh_fd = ev->rtnl ? mnl_socket_get_fd(ev->rtnl) : -1;
}

void fw_events_counts(const struct fw_events *ev, unsigned long *sent, unsigned long *dropped)
{
    *sent = ev->sent;
    *dropped = ev->dropped;
}

void fw_events_close(struct fw_events *ev)
{
    if (!ev)
        return;
    if (ev->nflog)
        mnl_socket_close(ev->nflog);
    if (ev->rtnl)
        mnl_socket_close(ev->rtnl);
    if (ev->out >= 0)
        close(ev->out);
    free(ev->neigh);
    free(ev);
}

/* Copies s into out as a JSON string body (escapes quotes, backslashes, controls). */
static void json_str(const char *s, char *out, size_t n)
{
    size_t w = 0;
    for (; *s && w + 7 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[w++] = '\\';
            out[w++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            w += (size_t)snprintf(out + w, n - w, "\\u%04x", c);
        } else {
            out[w++] = (char)c;
        }
    }
    out[w] = '\0';
}

static void nflog_packet(struct fw_events *ev, const struct nlmsghdr *nlh)
{
    const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *a;
    const char *prefix = "";
    const uint8_t *pl = NULL;
    size_t plen = 0;
    uint32_t indev = 0;
    mnl_attr_for_each(a, nlh, sizeof *g) {
        switch (mnl_attr_get_type(a)) {
        case NFULA_PREFIX: prefix = mnl_attr_get_str(a); break;
        case NFULA_PAYLOAD: pl = mnl_attr_get_payload(a); plen = mnl_attr_get_payload_len(a); break;
        case NFULA_IFINDEX_INDEV: indev = ntohl(mnl_attr_get_u32(a)); break;
        }
    }
    char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "";
    int proto = -1, dport = -1;
    size_t l4 = 0;
    if (g->nfgen_family == AF_INET && pl && plen >= 20) {
        inet_ntop(AF_INET, pl + 12, src, sizeof src);
        inet_ntop(AF_INET, pl + 16, dst, sizeof dst);
        proto = pl[9];
        l4 = (size_t)(pl[0] & 15) * 4;
    } else if (g->nfgen_family == AF_INET6 && pl && plen >= 40) {
        inet_ntop(AF_INET6, pl + 8, src, sizeof src);
        inet_ntop(AF_INET6, pl + 24, dst, sizeof dst);
        proto = pl[6];
        l4 = 40;
    }
    if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4 && plen >= l4 + 4)
        dport = pl[l4 + 2] << 8 | pl[l4 + 3];
    /* prefix "B:<set>:d " / "Q:<set>:s " / "D:<chain> " */
    char kind = prefix[0], set[64] = "", dir = 0, pfx[160];
    if ((kind == 'B' || kind == 'Q') && prefix[1] == ':') {
        const char *e = strchr(prefix + 2, ':');
        if (e && (size_t)(e - prefix - 2) < sizeof set) {
            memcpy(set, prefix + 2, (size_t)(e - prefix - 2));
            set[e - prefix - 2] = '\0';
            dir = e[1];
        }
    }
    char ifn[IF_NAMESIZE] = "";
    if (indev)
        if_indextoname(indev, ifn);
    json_str(prefix, pfx, sizeof pfx);
    char line[768];
    snprintf(line, sizeof line,
             "{\"type\":\"drop\",\"ts\":%ld,\"reason\":\"%s\",\"set\":\"%s\",\"match\":\"%s\","
             "\"src\":\"%s\",\"dst\":\"%s\",\"proto\":%d,\"dport\":%d,\"in\":\"%s\",\"prefix\":\"%s\"}",
             (long)time(NULL), kind == 'B' ? "blocklist" : kind == 'Q' ? "quarantine" : "policy",
             set, dir == 's' ? "source" : dir == 'd' ? "destination" : "", src, dst, proto, dport,
             ifn, pfx);
    emit(ev, line);
}

/* Hostname for mac from the dnsmasq leases file ("expiry mac ip name clientid"). */
static void lease_name(const struct fw_events *ev, const char *mac, char *out, size_t n)
{
    out[0] = '\0';
    if (!ev->leases[0])
        return;
    FILE *f = fopen(ev->leases, "r");
    if (!f)
        return;
    char line[512], m[64], ip[64], name[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%*s %63s %63s %255s", m, ip, name) == 3 && strcasecmp(m, mac) == 0 &&
            strcmp(name, "*") != 0) {
            json_str(name, out, n);
            break;
        }
    fclose(f);
}

static void neigh_msg(struct fw_events *ev, const struct nlmsghdr *nlh)
{
    if (nlh->nlmsg_type != RTM_NEWNEIGH)
        return;
    const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
    if (nd->ndm_state & (NUD_FAILED | NUD_INCOMPLETE | NUD_NOARP))
        return;
    const struct nlattr *a;
    const uint8_t *mac = NULL, *addr = NULL;
    size_t alen = 0;
    mnl_attr_for_each(a, nlh, sizeof *nd) {
        if (mnl_attr_get_type(a) == NDA_LLADDR && mnl_attr_get_payload_len(a) == 6)
            mac = mnl_attr_get_payload(a);
        else if (mnl_attr_get_type(a) == NDA_DST) {
            addr = mnl_attr_get_payload(a);
            alen = mnl_attr_get_payload_len(a);
        }
    }
    if (!mac || !addr || (alen != 4 && alen != 16))
        return;
    time_t now = time(NULL);
    struct neigh *e = NULL;
    for (size_t i = 0; i < ev->nneigh; i++)
        if (memcmp(ev->neigh[i].mac, mac, 6) == 0 && memcmp(ev->neigh[i].addr, addr, alen) == 0 &&
            ev->neigh[i].ifindex == nd->ndm_ifindex) {
            e = &ev->neigh[i];
            break;
        }
    if (!e) {
        if (ev->nneigh == NEIGH_MAX) /* full: reuse the entry seen longest ago */ {
            size_t old = 0;
            for (size_t i = 1; i < ev->nneigh; i++)
                if (ev->neigh[i].last < ev->neigh[old].last)
                    old = i;
            e = &ev->neigh[old];
        } else {
            e = &ev->neigh[ev->nneigh++];
        }
        memset(e, 0, sizeof *e);
        memcpy(e->mac, mac, 6);
        memcpy(e->addr, addr, alen);
        e->fam = alen == 4 ? 4 : 6;
        e->ifindex = nd->ndm_ifindex;
        e->first = now;
    }
    e->last = now;
    if (e->announced && now - e->announced < NEIGH_REPEAT_S)
        return;
    e->announced = now;
    char ms[18], as[INET6_ADDRSTRLEN], ifn[IF_NAMESIZE] = "", host[256], line[768];
    snprintf(ms, sizeof ms, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
    inet_ntop(alen == 4 ? AF_INET : AF_INET6, addr, as, sizeof as);
    if_indextoname((unsigned)nd->ndm_ifindex, ifn);
    lease_name(ev, ms, host, sizeof host);
    snprintf(line, sizeof line,
             "{\"type\":\"neighbour\",\"mac\":\"%s\",\"addr\":\"%s\",\"ifname\":\"%s\","
             "\"hostname\":\"%s\",\"first_seen\":%ld,\"last_seen\":%ld}",
             ms, as, ifn, host, (long)e->first, (long)e->last);
    emit(ev, line);
}

void fw_events_handle(struct fw_events *ev, int fd)
{
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == ENOBUFS)
                ev->dropped++; /* the kernel dropped events for us: counted, keep going */
            if (errno == EINTR || errno == ENOBUFS)
                continue;
            return;
        }
        int len = (int)n;
        for (const struct nlmsghdr *m = (void *)buf; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
            if (ev->nflog && fd == mnl_socket_get_fd(ev->nflog)) {
                if (m->nlmsg_type == ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
                    nflog_packet(ev, m);
            } else {
                neigh_msg(ev, m);
            }
        }
    }
}
