/* Events to the agent: one JSON line per datagram on a unix datagram socket.
 *
 * sendto with MSG_DONTWAIT on an unconnected socket: when the agent is slow (EAGAIN,
 * ENOBUFS), not listening (ECONNREFUSED, ENOENT) or absent, the event is dropped and
 * counted -- the DNS path never waits for it. Blocked queries are sent one by one;
 * allowed queries only as per-client counts every --allowed-every seconds (10), so a busy office costs
 * the agent a few datagrams, not one per query. */
#include "dnsd.h"

#include "ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
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
