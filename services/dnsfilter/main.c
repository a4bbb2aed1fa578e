/* otasuke-dnsd: the DNS filter daemon. Flags, start-up, the event loop, signals.
 * See dnsd.h for why it is one thread around one epoll; reload.c for reloads. */
#include "dnsd.h"

#include "cache.h"
#include "config.h"
#include "log.h"
#include "ratelimit.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
        "usage: otasuke-dnsd [options]\n"
        "  --listen ADDR:PORT      listen on UDP+TCP (repeatable; [v6]:port; default 127.0.0.1:53)\n"
        "  --upstream ADDR:PORT    resolver to forward to (default 127.0.0.1:5335)\n"
        "  --domains FILE          compiled domain set (otasukectl set build)\n"
        "  --policy FILE           policy.set (default: one group, every category, nxdomain)\n"
        "  --events PATH           unix datagram socket of the agent\n"
        "  --control PATH          unix stream socket: reload | stats | metrics\n"
        "  --user NAME             drop privileges to NAME after binding\n"
        "  --config FILE           otasuke.conf (dns section); flags given override it\n"
        "  --timeout MS            upstream timeout (default 2000)\n"
        "  --cache-entries N       answer cache entries (default 10000, 0 = off)\n"
        "  --ratelimit QPS[:BURST] per-client limit (default 200:400, 0 = off)\n"
        "  --max-tcp N             concurrent TCP clients (default 128)\n"
        "  --tcp-idle SEC          close idle TCP client connections after SEC (default 10)\n"
        "  --allowed-every SEC     period of per-client allowed-query events (default 10)\n"
        "  --query-events FILE     the agent's run-time query-event thresholds, read at every\n"
        "                          reload (default: query-events.json next to --policy)\n"
        "  --log-level LEVEL       error|warn|info|debug\n"
        "  -n                      check flags, set and policy, then exit 0/1\n"
        "  -f                      foreground, log to stderr\n");
}



static int add_listen(struct dnsd_opts *o, const char *s, char *err, size_t errlen)
{
    if (o->n_listen >= DNSD_MAX_LISTEN) {
        snprintf(err, errlen, "--listen: at most %d addresses", DNSD_MAX_LISTEN);
        return -1;
    }
    struct dnsd_listen *l = &o->listen[o->n_listen];
    if (net_parse_hostport(s, 53, &l->addr, &l->addrlen, err, errlen) < 0)
        return -1;
    snprintf(l->text, sizeof l->text, "%s", s);
    l->udp_fd = l->tcp_fd = -1;
    o->n_listen++;
    return 0;
}

static int set_upstream(struct dnsd_opts *o, const char *s, char *err, size_t errlen)
{
    if (net_parse_hostport(s, 53, &o->upstream, &o->upstream_len, err, errlen) < 0)
        return -1;
    snprintf(o->upstream_text, sizeof o->upstream_text, "%s", s);
    return 0;
}

static int parse_uint(const char *flag, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "otasuke-dnsd: %s \"%s\": expected a number from %ld to %ld\n", flag, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

enum { O_LISTEN = 256, O_UPSTREAM, O_DOMAINS, O_POLICY, O_EVENTS, O_CONTROL, O_USER, O_CONFIG,
       O_TIMEOUT, O_CACHE, O_RATE, O_MAXTCP, O_LOGLEVEL, O_HELP, O_ALLOWED, O_TCPIDLE,
       O_QEVENTS };

static int parse_args(struct dnsd *d, int argc, char **argv, enum log_level *lvl)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, O_LISTEN }, { "upstream", required_argument, NULL, O_UPSTREAM },
        { "domains", required_argument, NULL, O_DOMAINS }, { "policy", required_argument, NULL, O_POLICY },
        { "events", required_argument, NULL, O_EVENTS }, { "control", required_argument, NULL, O_CONTROL },
        { "user", required_argument, NULL, O_USER }, { "config", required_argument, NULL, O_CONFIG },
        { "timeout", required_argument, NULL, O_TIMEOUT }, { "cache-entries", required_argument, NULL, O_CACHE },
        { "ratelimit", required_argument, NULL, O_RATE }, { "max-tcp", required_argument, NULL, O_MAXTCP },
        { "log-level", required_argument, NULL, O_LOGLEVEL }, { "help", no_argument, NULL, O_HELP },
        { "allowed-every", required_argument, NULL, O_ALLOWED },
        { "tcp-idle", required_argument, NULL, O_TCPIDLE },
        { "query-events", required_argument, NULL, O_QEVENTS },
        { NULL, 0, NULL, 0 },
    };
    struct dnsd_opts *o = &d->o;
    char err[512];
    const char *config = NULL;
    long v;
    int c, have_listen = 0, have_upstream = 0, have_timeout = 0, have_cache = 0, have_rate = 0;
    static struct ota_config cfg;   /* holds the strings the options point into */

    o->timeout_ms = 2000;
    o->allowed_every_ms = 10000;
    o->query.label_len = 30;      /* the detector's defaults (otasuke.conf detect) */
    o->query.entropy = 3.5;
    o->query.rate = 5;
    o->query.burst = 40;
    o->tcp_idle_ms = 10000;
    o->max_tcp = 128;
    o->cache_entries = 10000;
    o->rate_qps = 200;
    o->rate_burst = 400;
    while ((c = getopt_long(argc, argv, "nfh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o->check_only = 1; break;
        case 'f': o->foreground = 1; break;
        case 'h': case O_HELP: usage(stdout); exit(0);
        case O_LISTEN:
            if (add_listen(o, optarg, err, sizeof err) < 0)
                goto bad;
            have_listen = 1;
            break;
        case O_UPSTREAM:
            if (set_upstream(o, optarg, err, sizeof err) < 0)
                goto bad;
            have_upstream = 1;
            break;
        case O_DOMAINS: o->domains_path = optarg; break;
        case O_POLICY: o->policy_path = optarg; break;
        case O_EVENTS: o->events_path = optarg; break;
        case O_CONTROL: o->control_path = optarg; break;
        case O_USER: o->user = optarg; break;
        case O_CONFIG: config = optarg; break;
        case O_TIMEOUT:
            if (parse_uint("--timeout", optarg, 10, 60000, &v) < 0)
                return -1;
            o->timeout_ms = (int)v;
            have_timeout = 1;
            break;
        case O_CACHE:
            if (parse_uint("--cache-entries", optarg, 0, 10000000, &v) < 0)
                return -1;
            o->cache_entries = (size_t)v;
            have_cache = 1;
            break;
        case O_RATE: {
            char *colon = strchr(optarg, ':');
            if (colon)
                *colon = '\0';
            if (parse_uint("--ratelimit", optarg, 0, 10000000, &v) < 0)
                return -1;
            o->rate_qps = (double)v;
            o->rate_burst = (double)v * 2;
            if (colon) {
                if (parse_uint("--ratelimit burst", colon + 1, 1, 100000000, &v) < 0)
                    return -1;
                o->rate_burst = (double)v;
            }
            have_rate = 1;
            break;
        }
        case O_MAXTCP:
            if (parse_uint("--max-tcp", optarg, 1, 65536, &v) < 0)
                return -1;
            o->max_tcp = (int)v;
            break;
        case O_ALLOWED:
            if (parse_uint("--allowed-every", optarg, 1, 86400, &v) < 0)
                return -1;
            o->allowed_every_ms = (int)v * 1000;
            break;
        case O_QEVENTS: o->query_events_path = optarg; break;
        case O_TCPIDLE:
            if (parse_uint("--tcp-idle", optarg, 1, 3600, &v) < 0)
                return -1;
            o->tcp_idle_ms = (int)v * 1000;
            break;
        case O_LOGLEVEL:
            if (log_level_parse(optarg, lvl) < 0) {
                fprintf(stderr, "otasuke-dnsd: --log-level \"%s\": expected error|warn|info|debug\n", optarg);
                return -1;
            }
            break;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "otasuke-dnsd: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return -1;
    }
    if (config) {
        /* the file fills what the command line left open */
        if (cfg_load(&cfg, config, err, sizeof err) < 0)
            goto bad;
        if (!have_listen)
            for (int i = 0; i < cfg.dns.n_listen; i++)
                if (add_listen(o, cfg.dns.listen[i], err, sizeof err) < 0)
                    goto bad;
        have_listen = o->n_listen > 0;
        if (!have_upstream && cfg.dns.upstream[0]) {
            if (set_upstream(o, cfg.dns.upstream, err, sizeof err) < 0)
                goto bad;
            have_upstream = 1;
        }
        if (!o->domains_path && cfg.dns.domains[0]) o->domains_path = cfg.dns.domains;
        if (!o->policy_path && cfg.dns.policy[0]) o->policy_path = cfg.dns.policy;
        if (!o->events_path && cfg.dns.events[0]) o->events_path = cfg.dns.events;
        if (!o->control_path && cfg.dns.control[0]) o->control_path = cfg.dns.control;
        o->query.label_len = cfg.detect.tunnel_label_len;   /* sample what the agent looks for */
        o->query.entropy = cfg.detect.tunnel_entropy;
        if (!o->user && cfg.dns.user[0]) o->user = cfg.dns.user;
        if (!have_timeout && cfg.dns.upstream_timeout_ms > 0) o->timeout_ms = cfg.dns.upstream_timeout_ms;
        if (!have_cache && cfg.dns.cache_entries >= 0) o->cache_entries = (size_t)cfg.dns.cache_entries;
        if (!have_rate && cfg.dns.rate_limit_qps >= 0) {
            o->rate_qps = cfg.dns.rate_limit_qps;
            o->rate_burst = cfg.dns.rate_limit_burst > 0 ? cfg.dns.rate_limit_burst : o->rate_qps * 2;
        }
    }
    o->query_base = o->query;
    /* The agent writes its run-time thresholds next to the policy it compiles. */
    if (!o->query_events_path && o->policy_path) {
        const char *slash = strrchr(o->policy_path, '/');
        int dl = slash ? (int)(slash - o->policy_path) : 1;
        snprintf(o->query_events_buf, sizeof o->query_events_buf, "%.*s/query-events.json",
                 dl, slash ? o->policy_path : ".");
        o->query_events_path = o->query_events_buf;
    }
    if (!have_listen && add_listen(o, "127.0.0.1:53", err, sizeof err) < 0)
        goto bad;
    if (!have_upstream && set_upstream(o, "127.0.0.1:5335", err, sizeof err) < 0)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "otasuke-dnsd: %s\n", err);
    return -1;
}

static int drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "--user %s: no such user", user);
        return -1;
    }
    /* Started as that user already (systemd User=, with CAP_NET_BIND_SERVICE): nothing
     * to drop, and the supplementary groups the unit grants must stay. */
    if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
        return 0;
    if (geteuid() != 0) {
        /* started unprivileged (systemd User= with CAP_NET_BIND_SERVICE): fine if it
         * is already that user, otherwise there is nothing we can switch to */
        if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
            return 0;
        snprintf(err, errlen, "--user %s: running as uid %u, only root can switch users",
                 user, (unsigned)geteuid());
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        snprintf(err, errlen, "--user %s: cannot switch: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        snprintf(err, errlen, "--user %s: could regain root after dropping it", user);
        return -1;
    }
    return 0;
}

static void handle_signals(struct dnsd *d)
{
    struct signalfd_siginfo si;
    while (read(d->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            reload_request(d, -1);
        } else {
            log_info("signal %u: stopping", si.ssi_signo);
            d->running = 0;
        }
    }
}

static void dispatch(struct dnsd *d, uint64_t tag, uint32_t events)
{
    uint32_t type = (uint32_t)(tag >> 32), idx = (uint32_t)tag;
    switch (type) {
    case EV_UDP: net_udp_readable(d, (int)idx); break;
    case EV_TCP_LISTEN: net_tcp_accept(d, (int)idx); break;
    case EV_TCP_CONN: net_tcp_event(d, idx, events); break;
    case EV_UPSTREAM: up_readable(d); break;
    case EV_UPSTREAM_TCP: up_tcp_event(d, idx, events); break;
    case EV_CONTROL_LISTEN: control_accept(d); break;
    case EV_CONTROL_CONN: control_event(d, (int)idx); break;
    case EV_SIGNAL: handle_signals(d); break;
    case EV_RELOAD: reload_done(d); break;
    default: break;
    }
}

int main(int argc, char **argv)
{
    static struct dnsd dd;
    struct dnsd *d = &dd;
    enum log_level lvl = LOG_LEVEL_INFO;
    char err[512];

    log_init("otasuke-dnsd", 1, lvl);
    if (parse_args(d, argc, argv, &lvl) < 0)
        return 1;
    log_init("otasuke-dnsd", d->o.foreground || d->o.check_only, lvl);
    d->ev_fd = d->ctl_fd = -1;

    if (dnsd_reload(d, err, sizeof err) < 0) {
        fprintf(stderr, "otasuke-dnsd: %s\n", err);
        return 1;
    }
    d->st.reloads_ok = 0;
    if (d->o.check_only) {
        printf("otasuke-dnsd: configuration ok: %d listen address(es), upstream %s, %s (%llu names), "
               "%s (%u groups)\n", d->o.n_listen, d->o.upstream_text,
               d->o.domains_path ? d->o.domains_path : "no domain set",
               (unsigned long long)(d->set ? dset_name_count(d->set) : 0),
               d->o.policy_path ? d->o.policy_path : "default policy", policy_group_count(d->policy));
        return 0;
    }

    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    struct epoll_event sev = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_SIGNAL, 0) };
    if (d->epfd < 0 || d->sigfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &sev) < 0)
        fatal("epoll/signalfd: %s", strerror(errno));
    d->now_ms = d->started_ms = d->last_allowed_flush_ms = dnsd_clock_ms();
    d->now_s = d->now_ms / 1000;
    d->cache = dcache_new(d->o.cache_entries ? d->o.cache_entries : 1,
                          d->o.cache_entries ? d->o.cache_entries * 512 + (1u << 20) : 1, 86400);
    d->rl = rl_new(4096, d->o.rate_qps, d->o.rate_burst);
    if (!d->cache || !d->rl)
        fatal("out of memory for cache / rate limiter");
    if (net_open_listeners(d, err, sizeof err) < 0 || up_init(d, err, sizeof err) < 0 ||
        events_open(d, err, sizeof err) < 0 || control_open(d, err, sizeof err) < 0 ||
        reload_init(d, err, sizeof err) < 0)
        fatal("%s", err);
    if (d->o.user && drop_privileges(d->o.user, err, sizeof err) < 0)
        fatal("%s", err);
    for (int i = 0; i < d->o.n_listen; i++)
        log_info("listening on %s (udp+tcp)", d->o.listen[i].text);
    log_info("forwarding to %s, timeout %d ms, cache %zu entries, rate limit %.0f qps",
             d->o.upstream_text, d->o.timeout_ms, d->o.cache_entries, d->o.rate_qps);

    struct epoll_event evs[64];
    uint64_t last_sweep = d->now_ms;
    d->running = 1;
    while (d->running) {
        int n = epoll_wait(d->epfd, evs, 64, 100);
        d->now_ms = dnsd_clock_ms();
        d->now_s = d->now_ms / 1000;
        for (int i = 0; i < n; i++)
            dispatch(d, evs[i].data.u64, evs[i].events);
        net_udp_flush(d);
        up_expire(d);
        if (d->now_ms - last_sweep >= 1000) {
            last_sweep = d->now_ms;
            net_tcp_sweep(d);
        }
        events_tick(d);
    }
    reload_shutdown();
    if (d->o.control_path)
        unlink(d->o.control_path);
    dcache_free(d->cache);
    rl_free(d->rl);
    if (d->set)
        dset_close(d->set);
    policy_free(d->policy);
    return 0;
}
