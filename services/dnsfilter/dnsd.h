/* otasuke-dnsd internals shared by its files.
 *
 * One process, one thread, one epoll loop. Why single-threaded: on the 2-core box unbound
 * takes the other core, a query costs a few microseconds here (parse, one hash walk,
 * cache copy), and with one thread the set/policy swap on reload happens between two
 * events, so no query ever sees half a reload and no lock sits on the hot path.
 * Every socket is non-blocking; nothing in the loop waits for anything but epoll.
 * The one other thread loads new artifacts on reload (reload.c) and never touches
 * the loop's state; the loop swaps them in. */
#ifndef OTASUKE_DNSD_H
#define OTASUKE_DNSD_H

#include "dnswire.h"
#include "domainset.h"
#include "policyset.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNSD_MAX_LISTEN     16
#define DNSD_UDP_MAX        4096   /* largest UDP payload we ever send */
#define DNSD_TCP_QMAX       4096   /* largest query we accept over TCP */
#define DNSD_PENDING_QMAX   1232   /* largest query we forward (RFC 9715 size) */
#define DNSD_TCP_OUT_MAX    (256u * 1024)
#define DNSD_TCP_INFLIGHT   32     /* pipelined queries in flight per TCP client */

/* epoll tags: type in the high 32 bits, index in the low */
enum dnsd_ev {
    EV_UDP = 1, EV_TCP_LISTEN, EV_TCP_CONN, EV_UPSTREAM, EV_UPSTREAM_TCP,
    EV_CONTROL_LISTEN, EV_CONTROL_CONN, EV_SIGNAL, EV_RELOAD,
};
#define EV_TAG(type, idx) ((uint64_t)(type) << 32 | (uint32_t)(idx))

struct dnsd_stats {
    uint64_t queries_udp, queries_tcp, blocked, allowed, cache_hits, cache_misses;
    uint64_t upstream_errors, timeouts, rate_limited, events_sent, events_dropped;
    uint64_t reloads_ok, reloads_failed, formerr, dropped, servfail, tc_fallbacks;
    uint64_t canary, safesearch, cname_blocked, pending_full, tcp_accepted, tcp_refused;
};

/* Where an answer goes back to. */
struct dnsd_client {
    int tcp;                      /* 0: UDP via listener fd, 1: TCP connection */
    int fd;                       /* UDP listener socket */
    uint32_t conn, conn_gen;      /* TCP connection index and generation */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* UDP on a wildcard listener: the address the query was sent to, so the answer
     * leaves from it (0 = bound to one address, the kernel picks it right anyway) */
    int dst_family;
    uint8_t dst[16];
    int dst_ifindex;
};

struct dnsd_listen {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int udp_fd, tcp_fd;
    char text[64];
};

struct dnsd_conn {                /* a TCP client */
    int fd;                       /* -1 = free */
    uint32_t gen;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint8_t in[2 + DNSD_TCP_QMAX];
    size_t inlen;
    uint8_t *out;
    size_t outlen, outcap;
    unsigned inflight;
    int reading;                  /* EPOLLIN currently enabled */
    uint64_t last_ms;
};

struct rl_table;
struct dcache;

/* Query-event thresholds (events.c, query_tuning.c): a label of label_len characters, or
 * of 16 and more with at least entropy bits per character, is sent; at most rate names a
 * second per client after a burst of burst. */
struct qtune {
    int label_len;
    double entropy;
    int rate, burst;
};
#define QTUNE_MAX_RATE  1000
#define QTUNE_MAX_BURST 10000

struct dnsd_opts {
    struct dnsd_listen listen[DNSD_MAX_LISTEN];
    int n_listen;
    struct sockaddr_storage upstream;
    socklen_t upstream_len;
    char upstream_text[64];
    const char *domains_path, *policy_path, *events_path, *control_path, *user;
    int timeout_ms;
    int allowed_every_ms;         /* period of the per-client allowed counts */
    struct qtune query;           /* query-event thresholds in use (events.c) */
    struct qtune query_base;      /* ... as started (command line / otasuke.conf) */
    const char *query_events_path;   /* the agent's run-time thresholds (query_tuning.c) */
    char query_events_buf[512];
    int tcp_idle_ms;
    int max_tcp;
    size_t cache_entries, cache_bytes;
    double rate_qps, rate_burst;
    int check_only, foreground;
};

struct pending;

struct dnsd {
    struct dnsd_opts o;
    int epfd, sigfd;
    struct dset *set;             /* may be NULL: no --domains */
    struct policy_set *policy;
    struct dnsd_stats st;
    struct dcache *cache;
    struct rl_table *rl;
    struct dnsd_conn *conns;
    int upstream_fd;
    /* forwarding state (upstream.c) */
    struct pending *pend;
    uint32_t *id_map;             /* upstream id -> pending index + 1 */
    uint32_t free_head;           /* free list of pending slots */
    unsigned n_pending, max_pending, pend_unused;
    uint32_t tq_head, tq_tail;    /* timeout FIFO (index + 1, 0 = none) */
    uint64_t rng[4];
    /* events (events.c) */
    int ev_fd;
    uint64_t last_allowed_flush_ms;
    /* control (control.c) */
    int ctl_fd;
    int ctl_conn_fd[8];
    char ctl_buf[8][128];
    size_t ctl_len[8];
    uint64_t started_ms;
    int running;
    int reload_efd;
    uint64_t now_ms;              /* monotonic, refreshed once per loop turn */
    uint64_t now_s;
};

/* main.c */
/* Loads set and policy on the calling thread and swaps them in (start-up, -n). */
int dnsd_reload(struct dnsd *d, char *err, size_t errlen);
/* Puts a loaded set (may be NULL) and policy in place. The old ones are handed back
 * through old_set/old_ps when those are given (the caller frees them), else freed. */
void dnsd_swap(struct dnsd *d, struct dset *set, struct policy_set *ps,
               struct dset **old_set, struct policy_set **old_ps);

/* reload.c: loads on a helper thread, swaps on the loop */
int reload_init(struct dnsd *d, char *err, size_t errlen);
/* Starts (or queues) a reload; ctl_slot >= 0 is a control connection to answer. */
void reload_request(struct dnsd *d, int ctl_slot);
void reload_done(struct dnsd *d);
void reload_shutdown(void);
uint64_t dnsd_clock_ms(void);

/* net.c: listeners, UDP receive, TCP clients */
int net_parse_hostport(const char *s, int default_port, struct sockaddr_storage *ss,
                       socklen_t *len, char *err, size_t errlen);
int net_open_listeners(struct dnsd *d, char *err, size_t errlen);
void net_udp_readable(struct dnsd *d, int idx);
void net_tcp_accept(struct dnsd *d, int idx);
void net_tcp_event(struct dnsd *d, uint32_t idx, uint32_t events);
void net_tcp_sweep(struct dnsd *d);
/* Sends a complete DNS message to the client (UDP: truncates to max_udp with TC). */
void net_send(struct dnsd *d, const struct dnsd_client *c, uint8_t *msg, size_t len,
              size_t max_udp);
void net_tcp_query_done(struct dnsd *d, const struct dnsd_client *c);
/* Sends the UDP answers queued by net_send. Called after every batch of events. */
void net_udp_flush(struct dnsd *d);
const char *net_addr_text(const struct sockaddr_storage *ss, char *buf, size_t len);

/* filter.c: the decision for one query */
void filter_query(struct dnsd *d, const struct dnsd_client *c, const uint8_t *q, size_t qlen);
/* An upstream answer arrived for a query (resp already has the client's id/question). */
void filter_upstream_answer(struct dnsd *d, struct pending *p, uint8_t *resp, size_t len);
/* Answers SERVFAIL (with EDE ede and text when the client sent EDNS and ede >= 0). */
void filter_servfail(struct dnsd *d, const struct dnsd_client *c, const uint8_t *q, size_t qlen,
                     int ede, const char *text);

/* upstream.c: forwarding */
int up_init(struct dnsd *d, char *err, size_t errlen);
/* Forwards. kind 0 = the client's query as is, 1 = safe-search lookup of target. */
int up_forward(struct dnsd *d, const struct dnsd_client *c, const uint8_t *q, size_t qlen,
               unsigned group, int kind, const char *target, size_t target_len);
void up_readable(struct dnsd *d);
void up_tcp_event(struct dnsd *d, uint32_t idx, uint32_t events);
void up_expire(struct dnsd *d);
/* The pending query's saved client query and metadata. */
const uint8_t *up_pending_query(const struct pending *p, size_t *len);
const struct dnsd_client *up_pending_client(const struct pending *p);
unsigned up_pending_group(const struct pending *p);
int up_pending_kind(const struct pending *p);
const char *up_pending_target(const struct pending *p, size_t *len);
uint64_t dnsd_random(struct dnsd *d);

/* events.c */
int events_open(struct dnsd *d, char *err, size_t errlen);
void events_blocked(struct dnsd *d, const struct dnsd_client *c, const char *name,
                    uint16_t qtype, const char *category, const char *list, const char *group);
/* An allowed query: sends {"type":"query",...} when a label of name is long or
 * random-looking enough for the DNS-tunnel detector, at most a few per client a second. */
void events_query(struct dnsd *d, const struct dnsd_client *c, const char *name, size_t len,
                  uint16_t qtype);
void events_tick(struct dnsd *d);

/* query_tuning.c: the query-events file. qtune_parse / qtune_load fill t and return 0 / 1
 * (loaded), 0 from qtune_load when the file does not exist, -1 with err naming file and
 * field. qtune_apply (event loop only) takes the result of a load: 1 = t, 0 = the started
 * values, -1 = keep what is in use and log err. */
int qtune_parse(const char *text, size_t len, const char *path, struct qtune *t, char *err,
                size_t errlen);
int qtune_load(const char *path, struct qtune *t, char *err, size_t errlen);
void qtune_apply(struct dnsd *d, int rc, const struct qtune *t, const char *err);

/* control.c */
int control_open(struct dnsd *d, char *err, size_t errlen);
void control_accept(struct dnsd *d);
void control_event(struct dnsd *d, int slot);
/* Writes counters as JSON / Prometheus text into buf. Returns length. */
/* Writes msg ("ok\n" or an error) to a control connection waiting for a reload and
 * closes it. */
void control_reply(struct dnsd *d, int slot, const char *msg);
size_t control_stats_json(const struct dnsd *d, char *buf, size_t len);
size_t control_metrics(const struct dnsd *d, char *buf, size_t len);

#endif
