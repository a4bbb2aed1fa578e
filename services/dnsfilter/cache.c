/* Answer cache. See cache.h for the design and its costs. */
#include "cache.h"

#include "dnswire.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct centry {
    struct centry *next;          /* hash chain */
    uint64_t hash;
    uint32_t slot;                /* index in the CLOCK array */
    uint32_t stored_at, expire;   /* seconds, caller's clock */
    uint16_t qtype, qclass;
    uint16_t resp_len;
    uint8_t flags, name_len, ref;
    uint8_t data[];               /* name, then response */
};

struct dcache {
    struct centry **buckets;
    size_t mask;
    struct centry **slots;        /* CLOCK ring; NULL = free */
    size_t n_slots, hand, entries, bytes, max_bytes;
    uint32_t max_ttl;
    unsigned char key[crypto_shorthash_KEYBYTES];
};

static size_t entry_size(const struct centry *e)
{
    return sizeof *e + e->name_len + e->resp_len;
}

struct dcache *dcache_new(size_t max_entries, size_t max_bytes, uint32_t max_ttl)
{
    if (sodium_init() < 0 || max_entries == 0)
        return NULL;
    struct dcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t nb = 16;
    while (nb < max_entries)
        nb *= 2;
    c->buckets = calloc(nb, sizeof *c->buckets);
    c->slots = calloc(max_entries, sizeof *c->slots);
    if (!c->buckets || !c->slots) {
        dcache_free(c);
        return NULL;
    }
    c->mask = nb - 1;
    c->n_slots = max_entries;
    c->max_bytes = max_bytes;
    c->max_ttl = max_ttl;
    randombytes_buf(c->key, sizeof c->key);
    return c;
}

static uint64_t key_hash(const struct dcache *c, const struct dcache_key *k)
{
    uint8_t buf[DNSW_NAME_TEXT_MAX + 8];
    size_t n = k->len < DNSW_NAME_TEXT_MAX ? k->len : DNSW_NAME_TEXT_MAX;
    memcpy(buf, k->name, n);
    buf[n] = (uint8_t)(k->qtype >> 8);
    buf[n + 1] = (uint8_t)k->qtype;
    buf[n + 2] = (uint8_t)(k->qclass >> 8);
    buf[n + 3] = (uint8_t)k->qclass;
    buf[n + 4] = k->flags;
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, buf, n + 5, c->key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

static int key_eq(const struct centry *e, uint64_t h, const struct dcache_key *k)
{
    return e->hash == h && e->qtype == k->qtype && e->qclass == k->qclass &&
           e->flags == k->flags && e->name_len == k->len && memcmp(e->data, k->name, k->len) == 0;
}

static void unlink_entry(struct dcache *c, struct centry *e)
{
    struct centry **pp = &c->buckets[e->hash & c->mask];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    c->slots[e->slot] = NULL;
    c->entries--;
    c->bytes -= entry_size(e);
    free(e);
}

void dcache_clear(struct dcache *c)
{
    for (size_t i = 0; i < c->n_slots; i++)
        if (c->slots[i])
            unlink_entry(c, c->slots[i]);
    c->hand = 0;
}

void dcache_free(struct dcache *c)
{
    if (!c)
        return;
    if (c->slots && c->buckets)
        dcache_clear(c);
    free(c->slots);
    free(c->buckets);
    free(c);
}

int dcache_get(struct dcache *c, const struct dcache_key *k, uint64_t now_s,
               uint8_t *out, size_t cap, size_t *outlen)
{
    if (k->len > 255)
        return 0;
    uint64_t h = key_hash(c, k);
    for (struct centry *e = c->buckets[h & c->mask]; e; e = e->next) {
        if (!key_eq(e, h, k))
            continue;
        if (now_s >= e->expire) {
            unlink_entry(c, e);
            return 0;
        }
        if (e->resp_len > cap)
            return 0;
        memcpy(out, e->data + e->name_len, e->resp_len);
        dnsw_ttl_age(out, e->resp_len, (uint32_t)(now_s - e->stored_at));
        *outlen = e->resp_len;
        e->ref = 1;
        return 1;
    }
    return 0;
}

/* Frees one slot by the CLOCK rule: skip (and clear) recently used entries. */
static size_t clock_evict(struct dcache *c)
{
    for (;;) {
        size_t i = c->hand;
        c->hand = (c->hand + 1) % c->n_slots;
        struct centry *e = c->slots[i];
        if (!e)
            return i;
        if (e->ref) {
            e->ref = 0;
            continue;
        }
        unlink_entry(c, e);
        return i;
    }
}

int dcache_put(struct dcache *c, const struct dcache_key *k, const uint8_t *resp,
               size_t len, uint64_t now_s)
{
    if (k->len > 255 || len > 65535)
        return 0;
    int64_t ttl = dnsw_cache_ttl(resp, len);
    if (ttl <= 0)
        return 0;
    if (ttl > c->max_ttl)
        ttl = c->max_ttl;
    size_t need = sizeof(struct centry) + k->len + len;
    if (need > c->max_bytes / 4)
        return 0;                 /* one answer never takes a quarter of the cache */
    uint64_t h = key_hash(c, k);
    for (struct centry *e = c->buckets[h & c->mask]; e; e = e->next)
        if (key_eq(e, h, k)) {
            unlink_entry(c, e);   /* replace: the new answer is fresher */
            break;
        }
    while (c->bytes + need > c->max_bytes && c->entries > 0)
        clock_evict(c);
    size_t slot;
    if (c->entries < c->n_slots) {
        while (c->slots[c->hand])
            c->hand = (c->hand + 1) % c->n_slots;
        slot = c->hand;
    } else {
        slot = clock_evict(c);
    }
    struct centry *e = malloc(need);
    if (!e)
        return -1;
    e->hash = h;
    e->slot = (uint32_t)slot;
    e->stored_at = (uint32_t)now_s;
    e->expire = (uint32_t)(now_s + (uint64_t)ttl);
    e->qtype = k->qtype;
    e->qclass = k->qclass;
    e->flags = k->flags;
    e->name_len = (uint8_t)k->len;
    e->resp_len = (uint16_t)len;
    e->ref = 0;
    memcpy(e->data, k->name, k->len);
    memcpy(e->data + k->len, resp, len);
    e->next = c->buckets[h & c->mask];
    c->buckets[h & c->mask] = e;
    c->slots[slot] = e;
    c->entries++;
    c->bytes += need;
    return 1;
}

size_t dcache_entries(const struct dcache *c) { return c->entries; }
size_t dcache_bytes(const struct dcache *c) { return c->bytes; }
