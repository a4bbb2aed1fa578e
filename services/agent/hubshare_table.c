/* Hub sharing, the pure part: the bounded aggregation table of indicators waiting to be
 * sent and the filter that decides what in an event is worth sharing. No locking, no I/O,
 * no database: the unit tests and the fuzzer use it alone; hubshare.c serialises. */
#include "hubshare.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the aggregation table ----
 * Chained hash over a fixed slot array plus a list in last-seen order (a sighting moves
 * its indicator to the tail), so note, ack and eviction of the indicator seen longest ago
 * are all O(1) -- a flood of new names at the cap costs no scan. 320 bytes a slot: 3.3 MB
 * at the cap of 10,000, touched only as slots are first used (top): an agent that shares
 * a few names keeps a few pages resident, not 3.3 MB under its compile peak. */

struct slot {
    struct hubshare_entry e;
    int next;                    /* chain (or free list); -1 = end */
    int older, newer;            /* last-seen list; -1 = end */
    int used;
};

struct hubshare_table {
    struct slot *s;
    int cap, n, free_head;
    int top;                     /* slots [top, cap) were never handed out */
    int oldest, newest;          /* ends of the last-seen list */
    int *bucket;
    unsigned nbucket;            /* power of two */
    uint64_t dropped;
};

static void lru_remove(struct hubshare_table *t, int i)
{
    struct slot *x = &t->s[i];
    if (x->older >= 0)
        t->s[x->older].newer = x->newer;
    else
        t->oldest = x->newer;
    if (x->newer >= 0)
        t->s[x->newer].older = x->older;
    else
        t->newest = x->older;
    x->older = x->newer = -1;
}

static void lru_append(struct hubshare_table *t, int i)
{
    t->s[i].older = t->newest;
    t->s[i].newer = -1;
    if (t->newest >= 0)
        t->s[t->newest].newer = i;
    else
        t->oldest = i;
    t->newest = i;
}

static unsigned key_hash(const char *ind, const char *kind)
{
    uint32_t h = 2166136261u;
    for (const char *p = ind; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    for (const char *p = kind; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

struct hubshare_table *hubshare_table_new(int cap)
{
    if (cap < 1)
        return NULL;
    struct hubshare_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = cap;
    t->nbucket = 16;
    while (t->nbucket < 2u * (unsigned)cap)
        t->nbucket *= 2;
    t->s = calloc((size_t)cap, sizeof *t->s);
    t->bucket = malloc(t->nbucket * sizeof *t->bucket);
    if (!t->s || !t->bucket) {
        hubshare_table_free(t);
        return NULL;
    }
    hubshare_table_clear(t);
    t->dropped = 0;
    return t;
}

void hubshare_table_free(struct hubshare_table *t)
{
    if (!t)
        return;
    free(t->s);
    free(t->bucket);
    free(t);
}

void hubshare_table_clear(struct hubshare_table *t)
{
    for (unsigned i = 0; i < t->nbucket; i++)
        t->bucket[i] = -1;
    for (int i = 0; i < t->top; i++)
        t->s[i].used = 0;
    t->top = 0;
    t->free_head = -1;
    t->n = 0;
    t->oldest = t->newest = -1;
}

int hubshare_table_size(const struct hubshare_table *t)
{
    return t->n;
}

uint64_t hubshare_table_dropped(const struct hubshare_table *t)
{
    return t->dropped;
}

static int find(const struct hubshare_table *t, const char *ind, const char *kind)
{
    for (int i = t->bucket[key_hash(ind, kind) & (t->nbucket - 1)]; i >= 0; i = t->s[i].next)
        if (!strcmp(t->s[i].e.indicator, ind) && !strcmp(t->s[i].e.kind, kind))
            return i;
    return -1;
}

static void unlink_slot(struct hubshare_table *t, int i)
{
    int *pp = &t->bucket[key_hash(t->s[i].e.indicator, t->s[i].e.kind) & (t->nbucket - 1)];
    while (*pp >= 0 && *pp != i)
        pp = &t->s[*pp].next;
    if (*pp == i)
        *pp = t->s[i].next;
    lru_remove(t, i);
    t->s[i].used = 0;
    t->s[i].next = t->free_head;
    t->free_head = i;
    t->n--;
}

/* Lower-cases a domain, drops one trailing dot and checks its characters (what dnsd can
 * send is wider than what the hub accepts: refuse it here rather than send it). */
static int norm_indicator(const char *in, const char *kind, char *out, size_t outlen)
{
    size_t n = strlen(in);
    if (!strcmp(kind, "domain")) {
        if (n && in[n - 1] == '.')
            n--;
        if (n == 0 || n > FEED_INDICATOR_MAX || n >= outlen)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char c = (char)tolower((unsigned char)in[i]);
            if (!(isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_'))
                return -1;
            out[i] = c;
        }
        out[n] = '\0';
        return out[0] == '.' || strstr(out, "..") ? -1 : 0;
    }
    unsigned char buf[16];
    if ((!strcmp(kind, "ipv4") && inet_pton(AF_INET, in, buf) == 1) ||
        (!strcmp(kind, "ipv6") && inet_pton(AF_INET6, in, buf) == 1)) {
        /* canonical text, so 2001:DB8::1 and 2001:db8:0::1 are one indicator */
        return inet_ntop(!strcmp(kind, "ipv4") ? AF_INET : AF_INET6, buf, out,
                         (socklen_t)outlen) ? 0 : -1;
    }
    return -1;
}

int hubshare_table_note(struct hubshare_table *t, const char *indicator, const char *kind,
                        const char *category, int64_t now)
{
    char ind[FEED_INDICATOR_MAX + 1];
    if (!indicator || !kind || !category || !*category ||
        strlen(category) >= sizeof t->s[0].e.category ||
        norm_indicator(indicator, kind, ind, sizeof ind) < 0)
        return -1;
    int i = find(t, ind, kind);
    if (i >= 0) {
        struct hubshare_entry *e = &t->s[i].e;
        e->count++;
        if (now >= e->last_seen) {
            /* the agent stamps events as they arrive, so sighting order is last-seen
             * order; a late, older event counts but does not make its indicator recent */
            e->last_seen = now;
            if (t->newest != i) {
                lru_remove(t, i);
                lru_append(t, i);
            }
        }
        if (now < e->first_seen)
            e->first_seen = now;
        snprintf(e->category, sizeof e->category, "%s", category);
        return 0;
    }
    if (t->free_head < 0 && t->top < t->cap) {
        i = t->top++;
    } else {
        if (t->free_head < 0) {
            unlink_slot(t, t->oldest);
            t->dropped++;
        }
        i = t->free_head;
        t->free_head = t->s[i].next;
    }
    struct hubshare_entry *e = &t->s[i].e;
    memset(e, 0, sizeof *e);
    snprintf(e->indicator, sizeof e->indicator, "%s", ind);
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->category, sizeof e->category, "%s", category);
    e->count = 1;
    e->first_seen = e->last_seen = now;
    unsigned b = key_hash(ind, kind) & (t->nbucket - 1);
    t->s[i].used = 1;
    t->s[i].next = t->bucket[b];
    t->bucket[b] = i;
    lru_append(t, i);
    t->n++;
    return 1;
}

int hubshare_table_batch(const struct hubshare_table *t, struct hubshare_entry *out, int max)
{
    int n = 0;
    for (int i = 0; i < t->top && n < max; i++)
        if (t->s[i].used && t->s[i].e.count > 0)
            out[n++] = t->s[i].e;
    return n;
}

void hubshare_table_ack(struct hubshare_table *t, const struct hubshare_entry *sent, int n)
{
    for (int k = 0; k < n; k++) {
        int i = find(t, sent[k].indicator, sent[k].kind);
        if (i < 0)
            continue;   /* dropped or cleared meanwhile */
        struct hubshare_entry *e = &t->s[i].e;
        e->count -= sent[k].count;
        if (e->count <= 0)
            unlink_slot(t, i);
        else if (sent[k].last_seen > e->first_seen)
            e->first_seen = sent[k].last_seen;   /* what is left was seen after the send */
    }
}

int hubshare_table_restore(struct hubshare_table *t, const struct hubshare_entry *e)
{
    if (e->count < 1 || e->last_seen < e->first_seen)
        return -1;
    int r = hubshare_table_note(t, e->indicator, e->kind, e->category, e->first_seen);
    if (r < 0)
        return -1;
    char ind[FEED_INDICATOR_MAX + 1];
    norm_indicator(e->indicator, e->kind, ind, sizeof ind);
    int i = find(t, ind, e->kind);
    if (i < 0)
        return -1;
    struct hubshare_entry *x = &t->s[i].e;
    x->count += e->count - 1;   /* note() counted one of them */
    if (e->last_seen > x->last_seen)
        x->last_seen = e->last_seen;
    return r;
}

/* ---- which events are worth sharing ---- */

int hubshare_threat(const char *cat)
{
    return cat && (!strcmp(cat, "malware") || !strcmp(cat, "phishing") || !strcmp(cat, "c2"));
}

int hubshare_event_indicator(const char *msg, size_t len, struct hubshare_entry *out)
{
    memset(out, 0, sizeof *out);
    /* Most events are allowed queries and neighbour updates: skip them unparsed. */
    if (!memmem(msg, len, "\"blocked\"", 9) && !memmem(msg, len, "\"drop\"", 6))
        return 0;
    json_t *o = json_loadb(msg, len, JSON_DISABLE_EOF_CHECK, NULL);
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *ind = NULL, *kind = "domain", *cat = NULL;
    if (type && !strcmp(type, "blocked")) {
        cat = json_string_value(json_object_get(o, "category"));
        ind = hubshare_threat(cat) ? json_string_value(json_object_get(o, "name")) : NULL;
    } else if (type && !strcmp(type, "drop")) {
        const char *reason = json_string_value(json_object_get(o, "reason"));
        const char *match = json_string_value(json_object_get(o, "match"));
        /* Only the office reaching out to a listed address (the detectors' c2_ip); traffic
         * arriving from listed addresses is background noise, not this office's sighting. */
        if (reason && match && !strcmp(reason, "blocklist") && !strcmp(match, "destination")) {
            ind = json_string_value(json_object_get(o, "dst"));
            kind = ind && strchr(ind, ':') ? "ipv6" : "ipv4";
            cat = "c2";
        }
    }
    int rc = 0;
    if (ind && norm_indicator(ind, kind, out->indicator, sizeof out->indicator) == 0) {
        snprintf(out->kind, sizeof out->kind, "%s", kind);
        snprintf(out->category, sizeof out->category, "%s", cat);
        rc = 1;
    }
    json_decref(o);
    return rc;
}
