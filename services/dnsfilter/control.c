/* Control socket: a unix stream socket taking one command per connection:
 *   "reload"  -> "ok\n" or "error: WHY\n"
 *   "stats"   -> counters as one JSON object
 *   "metrics" -> Prometheus text exposition
 * Commands and answers are small, so a connection is read into a 128-byte buffer and
 * answered with one non-blocking write; at most 8 are open at a time. */
#include "dnsd.h"

#include "cache.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NCTL ((int)(sizeof ((struct dnsd *)0)->ctl_conn_fd / sizeof(int)))

int control_open(struct dnsd *d, char *err, size_t errlen)
{
    d->ctl_fd = -1;
    for (int i = 0; i < NCTL; i++)
        d->ctl_conn_fd[i] = -1;
    if (!d->o.control_path)
        return 0;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(d->o.control_path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "--control %s: path longer than %zu bytes", d->o.control_path,
                 sizeof sun.sun_path - 1);
        return -1;
    }
    memcpy(sun.sun_path, d->o.control_path, strlen(d->o.control_path) + 1);
    d->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct stat sb;
    if (lstat(d->o.control_path, &sb) == 0 && S_ISSOCK(sb.st_mode))
        unlink(d->o.control_path);  /* left over from a previous run */
    if (d->ctl_fd < 0 || bind(d->ctl_fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        listen(d->ctl_fd, 8) < 0) {
        snprintf(err, errlen, "--control %s: %s", d->o.control_path, strerror(errno));
        return -1;
    }
    chmod(d->o.control_path, 0660);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_CONTROL_LISTEN, 0) };
    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->ctl_fd, &ev);
    return 0;
}

void control_accept(struct dnsd *d)
{
    int fd = accept4(d->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < NCTL; i++)
        if (d->ctl_conn_fd[i] < 0) {
            d->ctl_conn_fd[i] = fd;
            d->ctl_len[i] = 0;
            struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_CONTROL_CONN, i) };
            epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
            return;
        }
    close(fd);
}

#define STAT_FIELDS(X) \
    X(queries_udp, "queries received over UDP") \
    X(queries_tcp, "queries received over TCP") \
    X(blocked, "queries answered with a block") \
    X(allowed, "queries answered from upstream or cache") \
    X(cache_hits, "answers served from the cache") \
    X(cache_misses, "queries forwarded because the cache had nothing") \
    X(upstream_errors, "upstream failures (refused, SERVFAIL, malformed)") \
    X(timeouts, "upstream queries that timed out") \
    X(rate_limited, "queries refused by the per-client rate limit") \
    X(events_sent, "events sent to the agent") \
    X(events_dropped, "events dropped because the agent socket was busy or absent") \
    X(reloads_ok, "successful reloads") \
    X(reloads_failed, "refused reloads (old set and policy kept)") \
    X(formerr, "malformed queries answered FORMERR or NOTIMP") \
    X(dropped, "packets dropped unanswered") \
    X(servfail, "SERVFAIL answers") \
    X(tc_fallbacks, "truncated upstream answers retried over TCP") \
    X(canary, "DoH canary queries") \
    X(safesearch, "safe-search rewrites") \
    X(cname_blocked, "answers blocked because a CNAME led to a blocked name") \
    X(pending_full, "queries refused because too many were in flight") \
    X(tcp_accepted, "TCP connections accepted") \
    X(tcp_refused, "TCP connections refused (limit)")

void control_reply(struct dnsd *d, int slot, const char *msg)
{
    if (slot < 0 || slot >= NCTL || d->ctl_conn_fd[slot] < 0)
        return;
    if (write(d->ctl_conn_fd[slot], msg, strlen(msg)) < 0)
        log_debug("control: write failed: %s", strerror(errno));
    close(d->ctl_conn_fd[slot]);
    d->ctl_conn_fd[slot] = -1;
}

size_t control_stats_json(const struct dnsd *d, char *buf, size_t len)
{
    size_t o = 0;
    int n;
#define J(f, h) \
    n = snprintf(buf + o, len - o, "%s\"" #f "\":%llu", o ? "," : "{", (unsigned long long)d->st.f); \
    if (n > 0 && o + (size_t)n < len) o += (size_t)n;
    STAT_FIELDS(J)
#undef J
    n = snprintf(buf + o, len - o, ",\"cache_entries\":%zu,\"cache_bytes\":%zu,\"pending\":%u,"
                 "\"set_names\":%llu,\"policy_groups\":%u,\"uptime_s\":%llu}\n",
                 dcache_entries(d->cache), dcache_bytes(d->cache), d->n_pending,
                 (unsigned long long)(d->set ? dset_name_count(d->set) : 0),
                 policy_group_count(d->policy),
                 (unsigned long long)((d->now_ms - d->started_ms) / 1000));
    if (n > 0 && o + (size_t)n < len)
        o += (size_t)n;
    return o;
}

size_t control_metrics(const struct dnsd *d, char *buf, size_t len)
{
    size_t o = 0;
    int n;
#define M(f, h) \
    n = snprintf(buf + o, len - o, "# HELP otasuke_dnsd_" #f "_total " h "\n# TYPE otasuke_dnsd_" #f \
                 "_total counter\notasuke_dnsd_" #f "_total %llu\n", (unsigned long long)d->st.f); \
    if (n > 0 && o + (size_t)n < len) o += (size_t)n;
    STAT_FIELDS(M)
#undef M
    n = snprintf(buf + o, len - o,
                 "# HELP otasuke_dnsd_cache_entries answers in the cache\n"
                 "# TYPE otasuke_dnsd_cache_entries gauge\notasuke_dnsd_cache_entries %zu\n"
                 "# HELP otasuke_dnsd_pending queries waiting for upstream\n"
                 "# TYPE otasuke_dnsd_pending gauge\notasuke_dnsd_pending %u\n"
                 "# HELP otasuke_dnsd_set_names names in the loaded domain set\n"
                 "# TYPE otasuke_dnsd_set_names gauge\notasuke_dnsd_set_names %llu\n",
                 dcache_entries(d->cache), d->n_pending,
                 (unsigned long long)(d->set ? dset_name_count(d->set) : 0));
    if (n > 0 && o + (size_t)n < len)
        o += (size_t)n;
    return o;
}

static void ctl_close(struct dnsd *d, int slot)
{
    close(d->ctl_conn_fd[slot]);
    d->ctl_conn_fd[slot] = -1;
}

void control_event(struct dnsd *d, int slot)
{
    if (slot < 0 || slot >= NCTL || d->ctl_conn_fd[slot] < 0)
        return;
    int fd = d->ctl_conn_fd[slot];
    ssize_t n = read(fd, d->ctl_buf[slot] + d->ctl_len[slot], sizeof d->ctl_buf[slot] - 1 - d->ctl_len[slot]);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n > 0)
        d->ctl_len[slot] += (size_t)n;
    char *buf = d->ctl_buf[slot];
    buf[d->ctl_len[slot]] = '\0';
    char *nl = strchr(buf, '\n');
    if (!nl && n > 0 && d->ctl_len[slot] < sizeof d->ctl_buf[slot] - 1)
        return;                   /* wait for the rest of the line */
    if (nl)
        *nl = '\0';
    size_t l = strlen(buf);
    while (l && (buf[l - 1] == '\r' || buf[l - 1] == ' '))
        buf[--l] = '\0';
    static char out[16384];
    size_t olen;
    if (strcmp(buf, "stats") == 0) {
        olen = control_stats_json(d, out, sizeof out);
    } else if (strcmp(buf, "metrics") == 0) {
        olen = control_metrics(d, out, sizeof out);
    } else if (strcmp(buf, "reload") == 0) {
        /* answered by control_reply when the load finishes; stop reading meanwhile */
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
        reload_request(d, slot);
        return;
    } else {
        olen = (size_t)snprintf(out, sizeof out, "error: unknown command \"%.40s\" "
                                "(expected reload, stats or metrics)\n", buf);
    }
    if (write(fd, out, olen) < 0)
        log_debug("control: write failed: %s", strerror(errno));
    ctl_close(d, slot);
}
