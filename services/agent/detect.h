/* Detectors: turn the event streams of dnsd and fwd (and box health samples) into
 * findings. Pure logic with bounded memory and no database, so every detector can be
 * unit-tested with events that must and must not fire. incidents.c turns findings into
 * incidents (dedupe, severity, timeline). */
#ifndef OTASUKE_DETECT_H
#define OTASUKE_DETECT_H

#include <jansson.h>
#include <stdint.h>

/* The most distinct destinations, ports or names one tracker remembers: a count
 * threshold above it could never be reached, so settings and otasuke.conf stop there. */
#define DETECT_MAX_COUNT 64

/* Thresholds; detect_cfg_defaults gives sane values for a small office. */
struct detect_cfg {
    int scan_hosts;        /* distinct LAN/private destinations dropped ... */
    int scan_ports;        /* ... or distinct ports on one destination ... */
    int scan_window;       /* ... within this many seconds = lateral scan */
    int tunnel_names;      /* distinct suspicious names under one base domain ... */
    int tunnel_window;     /* ... within this many seconds = DNS tunnelling */
    int tunnel_label_len;  /* a label at least this long ... */
    double tunnel_entropy; /* ... with at least this Shannon entropy (bits/char) is suspicious */
    int feed_stale_s;      /* a feed without a good update for this long is stale */
    int disk_pct, mem_pct; /* box health: used percent at or above = finding */
    int restarts;          /* daemon restarts within restart_window = finding */
    int restart_window;
};

void detect_cfg_defaults(struct detect_cfg *c);

/* Finding kinds (stable names: API, incidents, texts). */
#define DK_MALWARE_DOMAIN "malware_domain"
#define DK_C2_IP          "c2_ip"
#define DK_LATERAL_SCAN   "lateral_scan"
#define DK_DNS_TUNNEL     "dns_tunnel"
#define DK_DOH_BYPASS     "doh_bypass"
#define DK_NEW_DEVICE     "new_device"
#define DK_QUARANTINED    "device_quarantined"
#define DK_FEED_STALE     "feed_stale"
#define DK_BOX_HEALTH     "box_health"
#define DK_OWNER_REPORT   "owner_report"

struct detect_finding {
    char kind[24];
    char device[64];      /* the device's address (or MAC for new devices; "box") */
    char indicator[256];  /* the matched domain / IP / base domain / feed / resource */
    char detail[160];     /* counters in words, e.g. "12 hosts in 60 s" */
    char detail_ja[320];  /* the same in Japanese (UTF-8: about 3 bytes a character);
                           * "" when the finding has no translation (owner's own words) */
    int confidence;       /* 1..100; auto-quarantine needs >= 90 */
};

struct detect_state;

/* New detector state with a copy of cfg (NULL = defaults); NULL when out of memory.
 * Caller frees with detect_free. Memory stays bounded whatever the input. */
struct detect_state *detect_new(const struct detect_cfg *cfg);
void detect_free(struct detect_state *s);
const struct detect_cfg *detect_config(const struct detect_state *s);
/* Replaces the thresholds; what the trackers counted so far stays. */
void detect_set_config(struct detect_state *s, const struct detect_cfg *cfg);

/* Feeds one event object (dnsd / fwd format, see events.c) seen at now. Writes at most
 * max findings to out; returns how many. Events that do not concern a detector are
 * ignored. "neighbour" events are not handled here (the inventory knows what is new). */
int detect_event(struct detect_state *s, json_t *ev, int64_t now, struct detect_finding *out,
                 int max);

/* Box health sample: disk and memory used percent, and the restart count of a daemon
 * (monotonic, from its pidfile changes). Returns the number of findings written. */
struct detect_health {
    int disk_pct, mem_pct;
    const char *daemon;   /* may be NULL */
    int restarts;         /* restarts of daemon seen so far */
};
int detect_health(struct detect_state *s, const struct detect_health *h, int64_t now,
                  struct detect_finding *out, int max);

/* Feed staleness: a feed (name) whose last good update was at last_good (0 = never). */
int detect_feed(struct detect_state *s, const char *name, int64_t last_good, int64_t now,
                struct detect_finding *out);

/* Shannon entropy of s in bits per character (0 for ""). */
double detect_entropy(const char *s, size_t len);
/* The registrable-ish base of name: its last two labels ("a.b.evil.test" -> "evil.test").
 * Writes into out; returns out. */
const char *detect_base_domain(const char *name, char *out, size_t outlen);
/* Is addr (text) a private / documentation / local address (a LAN destination)? */
int detect_is_local_addr(const char *addr);

#endif
