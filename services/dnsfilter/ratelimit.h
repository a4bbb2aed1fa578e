/* Per-client token buckets (and per-client allowed-query counts for events).
 *
 * A fixed table of slots keyed by client address (IPv4 as v4-mapped IPv6), looked up
 * with a keyed hash and a probe window of 8; when the window is full the least recently
 * seen client in it is replaced. So memory is bounded whatever the clients do, and a
 * host spraying source addresses only evicts idle entries, never starves the others of
 * a bucket. One lookup is a hash plus at most 8 compares; nothing allocates. */
#ifndef OTASUKE_DNSD_RATELIMIT_H
#define OTASUKE_DNSD_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct rl_table;

/* slots is rounded up to a power of two. qps <= 0 disables limiting (counts still kept).
 * Returns NULL on allocation failure. */
struct rl_table *rl_new(size_t slots, double qps, double burst);
void rl_free(struct rl_table *t);

/* Takes one token for the client. family AF_INET (4-byte addr) or AF_INET6 (16).
 * Returns 1 when allowed, 0 when over the limit. now_ms is monotonic milliseconds. */
int rl_take(struct rl_table *t, int family, const uint8_t *addr, uint64_t now_ms);

/* Adds one to the client's allowed-query counter (for the periodic events). */
void rl_count_allowed(struct rl_table *t, int family, const uint8_t *addr, uint64_t now_ms);

/* Calls fn for every client with a non-zero allowed count, then zeroes it. addr16 is
 * the v4-mapped or v6 address. */
typedef void (*rl_visit_fn)(const uint8_t addr16[16], uint32_t count, void *ctx);
void rl_drain_allowed(struct rl_table *t, rl_visit_fn fn, void *ctx);

#endif
