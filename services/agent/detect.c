/* Detectors over dnsd/fwd events. Each tracker table is a fixed array with
 * least-recently-used replacement, so a flood of spoofed sources costs a bounded amount
 * of memory and CPU (a linear scan of TRACKERS entries per event). */
#include "detect.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACKERS 64
#define SLOTS DETECT_MAX_COUNT   /* distinct destinations / names remembered per tracker */
#define HEALTH_DAEMONS 8

struct tracker {
    char key[320];          /* scan: source address; tunnel: client + " " + base */
    int64_t last;           /* last use, for replacement */
    int n;
    uint64_t hash[SLOTS];
    int64_t at[SLOTS];
};

struct restart_track {
    char daemon[32];
    int count[SLOTS];
    int64_t at[SLOTS];
    int n;
    int last_restarts;
};

struct detect_state {
    struct detect_cfg cfg;
    struct tracker scan[TRACKERS];
    struct tracker tunnel[TRACKERS];
    struct restart_track rs[HEALTH_DAEMONS];
};

void detect_cfg_defaults(struct detect_cfg *c)
{
    c->scan_hosts = 10;
    c->scan_ports = 15;
    c->scan_window = 60;
    c->tunnel_names = 20;
    c->tunnel_window = 120;
    c->tunnel_label_len = 30;
    c->tunnel_entropy = 3.5;
    c->feed_stale_s = 2 * 86400;
    c->disk_pct = 90;
    c->mem_pct = 90;
    c->restarts = 3;
    c->restart_window = 600;
}

struct detect_state *detect_new(const struct detect_cfg *cfg)
{
    struct detect_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (cfg)
        s->cfg = *cfg;
    else
        detect_cfg_defaults(&s->cfg);
    return s;
}

void detect_free(struct detect_state *s)
{
    free(s);
}

const struct detect_cfg *detect_config(const struct detect_state *s)
{
    return &s->cfg;
}

void detect_set_config(struct detect_state *s, const struct detect_cfg *cfg)
{
    s->cfg = *cfg;
}

double detect_entropy(const char *s, size_t len)
{
    unsigned cnt[256] = { 0 };
    if (!len)
        return 0;
    for (size_t i = 0; i < len; i++)
        cnt[(unsigned char)s[i]]++;
    double h = 0;
    for (int c = 0; c < 256; c++)
        if (cnt[c]) {
            double p = (double)cnt[c] / (double)len;
            h -= p * log2(p);
        }
    return h;
}

const char *detect_base_domain(const char *name, char *out, size_t outlen)
{
    size_t len = strlen(name);
    while (len && name[len - 1] == '.')
        len--;
    size_t start = 0;
    int dots = 0;
    for (size_t i = len; i-- > 0;)
        if (name[i] == '.' && ++dots == 2) {
            start = i + 1;
            break;
        }
    snprintf(out, outlen, "%.*s", (int)(len - start), name + start);
    return out;
}

int detect_is_local_addr(const char *addr)
{
    unsigned char b[16];
    if (!addr)
        return 0;
    if (inet_pton(AF_INET, addr, b) == 1) {
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
               (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254) ||
               (b[0] == 192 && b[1] == 0 && b[2] == 2) ||        /* documentation ranges: */
               (b[0] == 198 && b[1] == 51 && b[2] == 100) ||     /* the office's LAN, IoT */
               (b[0] == 203 && b[1] == 0 && b[2] == 113);        /* and guest networks */
    }
    if (inet_pton(AF_INET6, addr, b) == 1)
        return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||
               (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8);
    return 0;
}

static uint64_t fnv(const char *s, uint64_t h)
{
    if (!h)
        h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct tracker *tracker_get(struct tracker *t, const char *key, int64_t now)
{
    struct tracker *victim = &t[0];
    for (int i = 0; i < TRACKERS; i++) {
        if (t[i].key[0] && !strcmp(t[i].key, key)) {
            t[i].last = now;
            return &t[i];
        }
        if (t[i].last < victim->last)
            victim = &t[i];
    }
    memset(victim, 0, sizeof *victim);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->last = now;
    return victim;
}

/* Adds h (once) to the tracker, forgetting entries older than window. Returns the number
 * of distinct values seen within the window. */
static int tracker_add(struct tracker *t, uint64_t h, int64_t now, int window)
{
    int o = 0;
    for (int i = 0; i < t->n; i++)
        if (now - t->at[i] < window) {
            t->hash[o] = t->hash[i];
            t->at[o++] = t->at[i];
        }
    t->n = o;
    for (int i = 0; i < t->n; i++)
        if (t->hash[i] == h) {
            t->at[i] = now;
            return t->n;
        }
    if (t->n == SLOTS) {    /* full: drop the oldest, the count stays saturated */
        memmove(t->hash, t->hash + 1, (SLOTS - 1) * sizeof t->hash[0]);
        memmove(t->at, t->at + 1, (SLOTS - 1) * sizeof t->at[0]);
        t->n--;
    }
    t->hash[t->n] = h;
    t->at[t->n++] = now;
    return t->n;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void finding(struct detect_finding *f, const char *kind, const char *dev,
                    const char *ind, int conf, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void finding(struct detect_finding *f, const char *kind, const char *dev,
                    const char *ind, int conf, const char *fmt, ...)
{
    memset(f, 0, sizeof *f);
    snprintf(f->kind, sizeof f->kind, "%s", kind);
    snprintf(f->device, sizeof f->device, "%s", dev);
    snprintf(f->indicator, sizeof f->indicator, "%s", ind);
    f->confidence = conf;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof f->detail, fmt, ap);
    va_end(ap);
}

static void finding_ja(struct detect_finding *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The Japanese words of the finding just made: the owner reads the timeline in either. */
static void finding_ja(struct detect_finding *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail_ja, sizeof f->detail_ja, fmt, ap);
    va_end(ap);
}

/* Is one label of name long and random-looking enough to carry encoded data? */
static int suspicious_name(const struct detect_cfg *c, const char *name)
{
    const char *p = name;
    while (*p) {
        const char *e = strchr(p, '.');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if ((int)len >= c->tunnel_label_len && detect_entropy(p, len) >= c->tunnel_entropy)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int on_query(struct detect_state *s, const char *client, const char *name, int64_t now,
                    struct detect_finding *out)
{
    const struct detect_cfg *c = &s->cfg;
    if (!*client || !*name || !suspicious_name(c, name))
        return 0;
    char base[256], key[320];
    detect_base_domain(name, base, sizeof base);
    snprintf(key, sizeof key, "%s %s", client, base);
    struct tracker *t = tracker_get(s->tunnel, key, now);
    int n = tracker_add(t, fnv(name, 0), now, c->tunnel_window);
    if (n < c->tunnel_names)
        return 0;
    finding(out, DK_DNS_TUNNEL, client, base, 80,
            "%d long random-looking names under %s within %d s", n, base, c->tunnel_window);
    finding_ja(out, "%d秒以内に%sの下の長くランダムな名前を%d個問い合わせました", c->tunnel_window,
               base, n);
    t->n = 0;   /* fire once per burst; the incident keeps counting */
    return 1;
}

static int on_drop(struct detect_state *s, json_t *ev, int64_t now, struct detect_finding *out)
{
    const struct detect_cfg *c = &s->cfg;
    const char *reason = jstr(ev, "reason"), *src = jstr(ev, "src"), *dst = jstr(ev, "dst");
    const char *match = jstr(ev, "match"), *set = jstr(ev, "set");
    json_int_t dport = json_integer_value(json_object_get(ev, "dport"));
    if (!*src)
        return 0;
    if (!strcmp(reason, "blocklist")) {
        /* A device reaching out to a listed address is the worrying direction; traffic
         * arriving from a listed address is the internet's background noise. */
        if (!strcmp(match, "destination"))
        {
            finding(out, DK_C2_IP, src, dst, 95, "connection to listed address %s (list %s)",
                    dst, *set ? set : "?");
            finding_ja(out, "ブロックリストにあるアドレス%sへの接続（リスト%s）", dst,
                       *set ? set : "?");
            return 1;
        }
        return 0;
    }
    if (!strcmp(reason, "quarantine")) {
        finding(out, DK_QUARANTINED, src, dst, 100, "quarantined device tried to reach %s",
                dst);
        finding_ja(out, "隔離中の機器が%sに接続しようとしました", dst);
        return 1;
    }
    if (strcmp(reason, "policy"))
        return 0;
    if (dport == 853) {
        finding(out, DK_DOH_BYPASS, src, dst, 60, "DNS-over-TLS to %s:853 refused", dst);
        finding_ja(out, "%s:853への暗号化DNS（DNS-over-TLS）を拒否しました", dst);
        return 1;
    }
    if (!detect_is_local_addr(src) || !detect_is_local_addr(dst))
        return 0;
    /* Two views of one source: distinct hosts (sweep), distinct ports on a host (port scan). */
    struct tracker *hosts = tracker_get(s->scan, src, now);
    int nh = tracker_add(hosts, fnv(dst, 0), now, c->scan_window);
    char pkey[160];
    snprintf(pkey, sizeof pkey, "%s>%s", src, dst);
    struct tracker *ports = tracker_get(s->scan, pkey, now);
    char ps[16];
    snprintf(ps, sizeof ps, "%lld", (long long)dport);
    int np = tracker_add(ports, fnv(ps, 0), now, c->scan_window);
    if (nh >= c->scan_hosts) {
        finding(out, DK_LATERAL_SCAN, src, dst, 85, "%d LAN addresses probed within %d s",
                nh, c->scan_window);
        finding_ja(out, "%d秒以内に社内の%d個のアドレスを探りました", c->scan_window, nh);
        hosts->n = 0;
        return 1;
    }
    if (np >= c->scan_ports) {
        finding(out, DK_LATERAL_SCAN, src, dst, 85, "%d ports probed on %s within %d s", np,
                dst, c->scan_window);
        finding_ja(out, "%d秒以内に%sの%d個のポートを探りました", c->scan_window, dst, np);
        ports->n = 0;
        return 1;
    }
    return 0;
}

int detect_event(struct detect_state *s, json_t *ev, int64_t now, struct detect_finding *out,
                 int max)
{
    if (!s || !json_is_object(ev) || max < 1)
        return 0;
    const char *type = jstr(ev, "type");
    if (!strcmp(type, "blocked")) {
        const char *cat = jstr(ev, "category"), *client = jstr(ev, "client");
        const char *name = jstr(ev, "name");
        if (!*client)
            return 0;
        int n = 0;
        if (!strcmp(cat, "malware") || !strcmp(cat, "phishing") || !strcmp(cat, "c2")) {
            finding(&out[n++], DK_MALWARE_DOMAIN, client, name, !strcmp(cat, "c2") ? 95 : 90,
                    "looked up %s (%s list %s)", name, cat, jstr(ev, "list"));
            finding_ja(&out[n - 1], "%sを問い合わせました（%sのリスト%s）", name, cat,
                       jstr(ev, "list"));
        } else if (!strcmp(cat, "doh-bypass") || !strcmp(cat, "doh")) {
            finding(&out[n++], DK_DOH_BYPASS, client, name, 60,
                    "looked up encrypted-DNS server %s", name);
            finding_ja(&out[n - 1], "暗号化DNSサーバー%sを問い合わせました", name);
        }
        /* A blocked query still says what was asked: a tunnel to a listed C2 domain is
         * both a malware hit and a tunnel. */
        if (n < max)
            n += on_query(s, client, name, now, &out[n]);
        return n;
    }
    if (!strcmp(type, "query"))   /* sampled allowed query with its name (see events.c) */
        return on_query(s, jstr(ev, "client"), jstr(ev, "name"), now, out);
    if (!strcmp(type, "drop"))
        return on_drop(s, ev, now, out);
    return 0;
}

int detect_health(struct detect_state *s, const struct detect_health *h, int64_t now,
                  struct detect_finding *out, int max)
{
    int n = 0;
    const struct detect_cfg *c = &s->cfg;
    if (n < max && h->disk_pct >= c->disk_pct) {
        finding(&out[n], DK_BOX_HEALTH, "box", "disk", 100, "disk %d%% full", h->disk_pct);
        finding_ja(&out[n++], "ディスクが%d%%使われています", h->disk_pct);
    }
    if (n < max && h->mem_pct >= c->mem_pct) {
        finding(&out[n], DK_BOX_HEALTH, "box", "memory", 100, "memory %d%% used",
                h->mem_pct);
        finding_ja(&out[n++], "メモリが%d%%使われています", h->mem_pct);
    }
    if (!h->daemon || n >= max)
        return n;
    struct restart_track *r = NULL;
    for (int i = 0; i < HEALTH_DAEMONS && !r; i++)
        if (!strcmp(s->rs[i].daemon, h->daemon))
            r = &s->rs[i];
    for (int i = 0; i < HEALTH_DAEMONS && !r; i++)
        if (!s->rs[i].daemon[0]) {
            r = &s->rs[i];
            snprintf(r->daemon, sizeof r->daemon, "%s", h->daemon);
            r->last_restarts = h->restarts;
            return n;   /* first sample: the baseline */
        }
    if (!r)
        return n;
    int delta = h->restarts - r->last_restarts;
    r->last_restarts = h->restarts;
    for (int k = 0; k < delta && k < SLOTS; k++) {
        if (r->n == SLOTS) {
            memmove(r->at, r->at + 1, (SLOTS - 1) * sizeof r->at[0]);
            r->n--;
        }
        r->at[r->n++] = now;
    }
    int recent = 0;
    for (int i = 0; i < r->n; i++)
        recent += now - r->at[i] < c->restart_window;
    if (delta > 0 && recent >= c->restarts) {
        finding(&out[n++], DK_BOX_HEALTH, "box", h->daemon, 100,
                "%s restarted %d times within %d s", h->daemon, recent, c->restart_window);
        finding_ja(&out[n - 1], "%sが%d秒以内に%d回再起動しました", h->daemon, c->restart_window,
                   recent);
        r->n = 0;
    }
    return n;
}

int detect_feed(struct detect_state *s, const char *name, int64_t last_good, int64_t now,
                struct detect_finding *out)
{
    /* Never updated: a feed just subscribed is still downloading, not stale. */
    if (!last_good || now - last_good < s->cfg.feed_stale_s)
        return 0;
    finding(out, DK_FEED_STALE, "box", name, 100, "no good update for %lld hours",
            (long long)((now - last_good) / 3600));
    finding_ja(out, "%lld時間、正常な更新がありません", (long long)((now - last_good) / 3600));
    return 1;
}
