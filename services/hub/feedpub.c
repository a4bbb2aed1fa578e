/* Signed feed documents: the snapshot and the delta from any older seq, built from the
 * indicators table with feed.h's formatter and signer.
 *
 * Thousands of boxes ask for the same delta within a second of a notification, so the
 * last few documents are cached by (type, from, seq) and copied out; building costs a
 * query plus one Ed25519 signature, a cache hit a memcpy. */
#include "hubd.h"

#include "domainset.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf { char *p; size_t len, cap; int fail; };

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->fail)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->fail = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

struct rows { struct buf body; unsigned long long count; int delta; };

static int entry_row(int n, const char *const *v, void *ctx)
{
    struct rows *r = ctx;
    if (n < 6)
        return 1;
    struct feed_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.indicator, sizeof e.indicator, "%s", v[0] ? v[0] : "");
    const char *kind = v[1] ? v[1] : "";
    e.kind = strcmp(kind, "ipv4") == 0 ? FEED_KIND_IPV4 : strcmp(kind, "ipv6") == 0
        ? FEED_KIND_IPV6 : strcmp(kind, "cidr") == 0 ? FEED_KIND_CIDR : FEED_KIND_DOMAIN;
    e.category = dset_category_parse(v[2] ? v[2] : "");
    int removed = v[3] && strcmp(v[3], "removed") == 0;
    e.action = removed ? FEED_ACT_REMOVE : FEED_ACT_BLOCK;
    e.confidence = v[4] ? atoi(v[4]) : 0;
    e.expires = v[5] ? atoll(v[5]) : 0;
    snprintf(e.source, sizeof e.source, "hub:%s", n > 6 && v[6] ? v[6] : "");
    if (removed)
        e.category = -1;
    char line[FEED_INDICATOR_MAX + 256];
    int len = feed_format_entry(&e, line, sizeof line);
    if (len < 0) {
        r->body.fail = 1;
        return 1;
    }
    buf_add(&r->body, line, (size_t)len);
    r->count++;
    return 0;
}

#define CACHE_SLOTS 8
static struct {
    int used, snapshot;
    unsigned long long from, seq;
    struct hub_doc d;
} cache[CACHE_SLOTS];
static unsigned cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int doc_copy(struct hub_doc *dst, const struct hub_doc *src)
{
    *dst = *src;
    dst->text = malloc(src->len + 1);
    if (!dst->text)
        return -1;
    memcpy(dst->text, src->text, src->len + 1);
    return 0;
}

static int cache_get(int snap, unsigned long long from, unsigned long long seq,
                     struct hub_doc *d)
{
    int hit = 0;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].used && cache[i].snapshot == snap && cache[i].from == from &&
            cache[i].seq == seq) {
            hit = doc_copy(d, &cache[i].d) == 0;
            break;
        }
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

static void cache_put(int snap, unsigned long long from, const struct hub_doc *d)
{
    pthread_mutex_lock(&cache_lock);
    unsigned i = cache_next++ % CACHE_SLOTS;
    if (cache[i].used)
        hub_doc_free(&cache[i].d);
    cache[i].used = doc_copy(&cache[i].d, d) == 0;
    cache[i].snapshot = snap;
    cache[i].from = from;
    cache[i].seq = d->seq;
    pthread_mutex_unlock(&cache_lock);
}

void hub_doc_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].used)
            hub_doc_free(&cache[i].d);
        cache[i].used = 0;
    }
    pthread_mutex_unlock(&cache_lock);
}

int hub_doc_build(struct hub *h, int want_snapshot, unsigned long long from,
                  struct hub_doc *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    long long seq = hub_feed_seq(h, err, errlen);
    if (seq < 0)
        return -1;
    if (!want_snapshot) {
        if (from >= (unsigned long long)seq)
            return 1;
        if (from == 0)
            return 2;
    }
    if (cache_get(want_snapshot, want_snapshot ? 0 : from, (unsigned long long)seq, d))
        return 0;
    struct rows r = { .delta = !want_snapshot };
    char f[24], now[24];
    snprintf(f, sizeof f, "%llu", from);
    long long t = hub_now();
    snprintf(now, sizeof now, "%lld", t);
    /* Reading seq and rows outside one transaction is safe: rows only ever get a seq
     * above the one we read, and those are filtered out below by seq <= $3. */
    char s[24];
    snprintf(s, sizeof s, "%lld", seq);
    const char *ps[] = { f, now, s };
    long rc = want_snapshot
        ? hubdb_exec(h->db, "SELECT indicator, kind, category, state, confidence, expires, "
                     "source FROM indicators WHERE state = 'active' AND (expires = 0 OR "
                     "expires > $2) AND seq <= $3 ORDER BY indicator", 3, ps, entry_row, &r,
                     err, errlen)
        : hubdb_exec(h->db, "SELECT indicator, kind, category, state, confidence, expires, "
                     "source FROM indicators WHERE seq > $1 AND seq <= $3 ORDER BY seq, "
                     "indicator", 3, ps, entry_row, &r, err, errlen);
    if (rc < 0 || r.body.fail) {
        free(r.body.p);
        if (rc >= 0)
            snprintf(err, errlen, "out of memory building the feed document");
        return -1;
    }
    struct feed_manifest m;
    memset(&m, 0, sizeof m);
    snprintf(m.feed, sizeof m.feed, "%s", h->o.feed_id);
    m.seq = (uint64_t)seq;
    m.base = want_snapshot ? 0 : from;
    m.type = want_snapshot ? FEED_SNAPSHOT : FEED_DELTA;
    m.created = t;
    m.expires = t + h->o.doc_ttl;
    memcpy(m.signer, h->feed_keyid, sizeof m.signer);
    m.count = r.count;
    char man[512];
    int ml = feed_format_manifest(&m, man, sizeof man);
    struct buf doc = { 0 };
    if (ml > 0)
        buf_add(&doc, man, (size_t)ml);
    if (r.body.len)
        buf_add(&doc, r.body.p, r.body.len);
    free(r.body.p);
    if (ml < 0 || doc.fail || !doc.p) {
        free(doc.p);
        snprintf(err, errlen, "cannot format the feed document");
        return -1;
    }
    int sl = feed_sign(doc.p, doc.len, h->feed_sk, d->sig, sizeof d->sig);
    if (sl < 0) {
        free(doc.p);
        snprintf(err, errlen, "cannot sign the feed document");
        return -1;
    }
    d->text = doc.p;
    d->len = doc.len;
    d->siglen = (size_t)sl;
    d->seq = (unsigned long long)seq;
    cache_put(want_snapshot, want_snapshot ? 0 : from, d);
    return 0;
}

void hub_doc_free(struct hub_doc *d)
{
    free(d->text);
    d->text = NULL;
}
