/* Answer cache for upstream responses, keyed by (name, qtype, qclass, DO bit, EDNS).
 *
 * Bounded by entry count and bytes; CLOCK eviction (one reference bit per entry, a hand
 * sweeping the slot array) because it costs one store per hit instead of the list
 * surgery LRU needs. Keys are hashed with SipHash and a random key so clients cannot aim
 * queries at one bucket. A hit copies the stored answer out and ages its TTLs; a miss
 * costs one hash and one bucket walk. Only inserts allocate. Blocked answers are never
 * stored here: the filter decides on every hit again, so a policy change applies at once. */
#ifndef OTASUKE_DNSD_CACHE_H
#define OTASUKE_DNSD_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define DCACHE_F_DO   0x1u
#define DCACHE_F_EDNS 0x2u

struct dcache_key {
    const char *name;             /* normalised text name */
    size_t len;
    uint16_t qtype, qclass;
    uint8_t flags;                /* DCACHE_F_* */
};

struct dcache;

/* Returns a new cache (NULL on allocation failure). max_ttl caps what upstream says. */
struct dcache *dcache_new(size_t max_entries, size_t max_bytes, uint32_t max_ttl);
void dcache_free(struct dcache *c);
void dcache_clear(struct dcache *c);

/* Copies a fresh answer into out (its TTLs aged by the time spent in the cache; the id
 * and question are the stored ones, the caller rewrites them). Returns 1 on a hit, 0 on
 * a miss or when out is too small. Expired entries are dropped on the way. */
int dcache_get(struct dcache *c, const struct dcache_key *k, uint64_t now_s,
               uint8_t *out, size_t cap, size_t *outlen);

/* Stores a validated response for its cache TTL (dnsw_cache_ttl, capped). Returns 1 when
 * stored, 0 when not cacheable (TTL 0, SERVFAIL, TC, too big), -1 on allocation failure. */
int dcache_put(struct dcache *c, const struct dcache_key *k, const uint8_t *resp,
               size_t len, uint64_t now_s);

size_t dcache_entries(const struct dcache *c);
size_t dcache_bytes(const struct dcache *c);

#endif
