/* Per-client token buckets. See ratelimit.h. */
#include "ratelimit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RL_WINDOW 8

struct rl_slot {
    uint8_t addr[16];
    uint8_t used;
    uint32_t allowed;
    double tokens;
    uint64_t last_ms;
};

struct rl_table {
    struct rl_slot *slots;
    size_t mask;
    double qps, burst;
    unsigned char key[crypto_shorthash_KEYBYTES];
};

struct rl_table *rl_new(size_t slots, double qps, double burst)
{
    if (sodium_init() < 0)
        return NULL;
    struct rl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    size_t n = 16;
    while (n < slots)
        n *= 2;
    t->slots = calloc(n, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    t->mask = n - 1;
    t->qps = qps;
    t->burst = burst < 1 ? 1 : burst;
    randombytes_buf(t->key, sizeof t->key);
    return t;
}

void rl_free(struct rl_table *t)
{
    if (t) {
        free(t->slots);
        free(t);
    }
}

static struct rl_slot *find(struct rl_table *t, int family, const uint8_t *addr, uint64_t now_ms)
{
    uint8_t a[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (family == AF_INET)
        memcpy(a + 12, addr, 4);
    else
        memcpy(a, addr, 16);
    unsigned char h8[crypto_shorthash_BYTES];
    crypto_shorthash(h8, a, sizeof a, t->key);
    uint64_t h;
    memcpy(&h, h8, sizeof h);
    struct rl_slot *victim = NULL;
    for (size_t i = 0; i < RL_WINDOW; i++) {
        struct rl_slot *s = &t->slots[(h + i) & t->mask];
        if (s->used && memcmp(s->addr, a, 16) == 0)
            return s;
        if (!s->used) {
            if (!victim || victim->used)
                victim = s;
        } else if (!victim || (victim->used && s->last_ms < victim->last_ms)) {
            victim = s;
        }
    }
    /* a new or replaced client starts with a full bucket */
    memcpy(victim->addr, a, 16);
    victim->used = 1;
    victim->allowed = 0;
    victim->tokens = t->burst;
    victim->last_ms = now_ms;
    return victim;
}

int rl_take(struct rl_table *t, int family, const uint8_t *addr, uint64_t now_ms)
{
    if (t->qps <= 0)
        return 1;
    struct rl_slot *s = find(t, family, addr, now_ms);
    if (now_ms > s->last_ms) {
        s->tokens += (double)(now_ms - s->last_ms) * t->qps / 1000.0;
        if (s->tokens > t->burst)
            s->tokens = t->burst;
    }
    s->last_ms = now_ms;
    if (s->tokens < 1.0)
        return 0;
    s->tokens -= 1.0;
    return 1;
}

void rl_count_allowed(struct rl_table *t, int family, const uint8_t *addr, uint64_t now_ms)
{
    struct rl_slot *s = find(t, family, addr, now_ms);
    if (t->qps <= 0)
        s->last_ms = now_ms;
    s->allowed++;
}

void rl_drain_allowed(struct rl_table *t, rl_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i <= t->mask; i++) {
        struct rl_slot *s = &t->slots[i];
        if (s->used && s->allowed) {
            fn(s->addr, s->allowed, ctx);
            s->allowed = 0;
        }
    }
}
