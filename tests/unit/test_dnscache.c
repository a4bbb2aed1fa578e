/* Answer cache: TTL handling, keys, bounds, eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/dnsfilter/cache.h"
#include "dnswire.h"

#include <stdio.h>
#include <string.h>

/* A NOERROR answer for name with one A record of the given TTL, or NXDOMAIN with SOA. */
static size_t mkanswer(uint8_t *buf, size_t cap, const char *name, uint32_t ttl, int nx)
{
    struct dnsw_buf b = { .p = buf, .cap = cap };
    dnsw_put_u16(&b, 99);
    dnsw_put_u16(&b, (uint16_t)(DNSW_F_QR | DNSW_F_RA | (nx ? DNSW_RCODE_NXDOMAIN : 0)));
    dnsw_put_u16(&b, 1);
    dnsw_put_u16(&b, nx ? 0 : 1);
    dnsw_put_u16(&b, nx ? 1 : 0);
    dnsw_put_u16(&b, 0);
    dnsw_put_name(&b, name, strlen(name));
    dnsw_put_u16(&b, DNSW_TYPE_A);
    dnsw_put_u16(&b, DNSW_CLASS_IN);
    dnsw_put_u16(&b, 0xc00c);
    dnsw_put_u16(&b, nx ? DNSW_TYPE_SOA : DNSW_TYPE_A);
    dnsw_put_u16(&b, DNSW_CLASS_IN);
    dnsw_put_u32(&b, ttl);
    if (nx) {
        dnsw_put_u16(&b, 24);
        dnsw_put_u16(&b, 0xc00c);
        dnsw_put_u16(&b, 0xc00c);
        for (int i = 0; i < 4; i++)
            dnsw_put_u32(&b, 1000);
        dnsw_put_u32(&b, 30);   /* MINIMUM */
    } else {
        dnsw_put_u16(&b, 4);
        dnsw_put_u32(&b, 0xc6120a0a);
    }
    assert_false(b.overflow);
    return b.len;
}

static uint32_t first_ttl(const uint8_t *r, size_t n)
{
    struct dnsw_iter it;
    struct dnsw_rr rr;
    assert_int_equal(dnsw_iter_init(&it, r, n), 0);
    assert_int_equal(dnsw_iter_next(&it, &rr), 1);
    return rr.ttl;
}

static void test_put_get_age_expire(void **state)
{
    (void)state;
    struct dcache *c = dcache_new(100, 1 << 20, 86400);
    uint8_t a[512], out[512];
    size_t n = mkanswer(a, sizeof a, "good.test", 300, 0), on;
    struct dcache_key k = { "good.test", 9, DNSW_TYPE_A, DNSW_CLASS_IN, 0 };
    assert_int_equal(dcache_get(c, &k, 1000, out, sizeof out, &on), 0);
    assert_int_equal(dcache_put(c, &k, a, n, 1000), 1);
    assert_int_equal(dcache_get(c, &k, 1000, out, sizeof out, &on), 1);
    assert_int_equal(on, n);
    assert_int_equal(first_ttl(out, on), 300);
    assert_int_equal(dcache_get(c, &k, 1100, out, sizeof out, &on), 1);
    assert_int_equal(first_ttl(out, on), 200);       /* aged on the way out */
    assert_int_equal(dcache_get(c, &k, 1299, out, sizeof out, &on), 1);
    assert_int_equal(first_ttl(out, on), 1);
    assert_int_equal(dcache_get(c, &k, 1300, out, sizeof out, &on), 0);   /* expired */
    assert_int_equal(dcache_entries(c), 0);
    /* too small an output buffer is a miss, not an overrun */
    assert_int_equal(dcache_put(c, &k, a, n, 2000), 1);
    assert_int_equal(dcache_get(c, &k, 2000, out, 10, &on), 0);
    dcache_free(c);
}

static void test_keys_distinct(void **state)
{
    (void)state;
    struct dcache *c = dcache_new(100, 1 << 20, 86400);
    uint8_t a[512], out[512];
    size_t n = mkanswer(a, sizeof a, "good.test", 300, 0), on;
    struct dcache_key k = { "good.test", 9, DNSW_TYPE_A, DNSW_CLASS_IN, 0 };
    assert_int_equal(dcache_put(c, &k, a, n, 10), 1);
    struct dcache_key kdo = k, kaaaa = k, kother = k;
    kdo.flags = DCACHE_F_DO | DCACHE_F_EDNS;
    kaaaa.qtype = DNSW_TYPE_AAAA;
    kother.name = "good.tesu";
    assert_int_equal(dcache_get(c, &kdo, 10, out, sizeof out, &on), 0);
    assert_int_equal(dcache_get(c, &kaaaa, 10, out, sizeof out, &on), 0);
    assert_int_equal(dcache_get(c, &kother, 10, out, sizeof out, &on), 0);
    assert_int_equal(dcache_get(c, &k, 10, out, sizeof out, &on), 1);
    dcache_free(c);
}

static void test_negative_and_uncacheable(void **state)
{
    (void)state;
    struct dcache *c = dcache_new(100, 1 << 20, 86400);
    uint8_t a[512], out[512];
    size_t on;
    struct dcache_key k = { "nx.test", 7, DNSW_TYPE_A, DNSW_CLASS_IN, 0 };
    size_t n = mkanswer(a, sizeof a, "nx.test", 3600, 1);
    assert_int_equal(dcache_put(c, &k, a, n, 0), 1);
    assert_int_equal(dcache_get(c, &k, 29, out, sizeof out, &on), 1);
    assert_int_equal(dcache_get(c, &k, 30, out, sizeof out, &on), 0);  /* SOA MINIMUM 30 */
    n = mkanswer(a, sizeof a, "nx.test", 0, 0);
    assert_int_equal(dcache_put(c, &k, a, n, 0), 0);                   /* TTL 0 */
    n = mkanswer(a, sizeof a, "nx.test", 300, 0);
    a[3] = (uint8_t)((a[3] & 0xf0) | DNSW_RCODE_SERVFAIL);
    assert_int_equal(dcache_put(c, &k, a, n, 0), 0);
    /* max_ttl caps a huge TTL */
    struct dcache *c2 = dcache_new(10, 1 << 20, 60);
    n = mkanswer(a, sizeof a, "nx.test", 100000, 0);
    assert_int_equal(dcache_put(c2, &k, a, n, 0), 1);
    assert_int_equal(dcache_get(c2, &k, 59, out, sizeof out, &on), 1);
    assert_int_equal(dcache_get(c2, &k, 60, out, sizeof out, &on), 0);
    dcache_free(c2);
    dcache_free(c);
}

static void test_bounds_and_clock(void **state)
{
    (void)state;
    struct dcache *c = dcache_new(8, 1 << 20, 86400);
    uint8_t a[512], out[512];
    size_t on;
    char name[32];
    struct dcache_key hot = { "hot.test", 8, DNSW_TYPE_A, DNSW_CLASS_IN, 0 };
    size_t n = mkanswer(a, sizeof a, "hot.test", 300, 0);
    assert_int_equal(dcache_put(c, &hot, a, n, 0), 1);
    for (int i = 0; i < 100; i++) {
        int l = snprintf(name, sizeof name, "n%d.test", i);
        struct dcache_key k = { name, (size_t)l, DNSW_TYPE_A, DNSW_CLASS_IN, 0 };
        n = mkanswer(a, sizeof a, name, 300, 0);
        assert_int_equal(dcache_put(c, &k, a, n, 0), 1);
        assert_true(dcache_entries(c) <= 8);
        /* keep touching the hot entry: CLOCK must keep it */
        assert_int_equal(dcache_get(c, &hot, 0, out, sizeof out, &on), 1);
    }
    dcache_free(c);
    /* the byte bound holds too */
    c = dcache_new(1000, 4096, 86400);
    for (int i = 0; i < 200; i++) {
        int l = snprintf(name, sizeof name, "b%d.test", i);
        struct dcache_key k = { name, (size_t)l, DNSW_TYPE_A, DNSW_CLASS_IN, 0 };
        n = mkanswer(a, sizeof a, name, 300, 0);
        dcache_put(c, &k, a, n, 0);
        assert_true(dcache_bytes(c) <= 4096);
    }
    assert_true(dcache_entries(c) > 0);
    dcache_clear(c);
    assert_int_equal(dcache_entries(c), 0);
    assert_int_equal(dcache_bytes(c), 0);
    dcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_age_expire),
        cmocka_unit_test(test_keys_distinct),
        cmocka_unit_test(test_negative_and_uncacheable),
        cmocka_unit_test(test_bounds_and_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
