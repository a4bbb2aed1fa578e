/* Per-client token buckets of otasuke-dnsd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/dnsfilter/ratelimit.h"

#include <string.h>
#include <sys/socket.h>

static const uint8_t pc[4] = { 192, 0, 2, 10 }, iot[4] = { 198, 51, 100, 10 };

static void test_burst_then_limit(void **state)
{
    (void)state;
    struct rl_table *t = rl_new(64, 10, 20);
    int ok = 0;
    for (int i = 0; i < 50; i++)
        ok += rl_take(t, AF_INET, pc, 1000);
    assert_int_equal(ok, 20);                       /* the burst, then nothing */
    /* another client is not affected by the flood */
    assert_int_equal(rl_take(t, AF_INET, iot, 1000), 1);
    /* 10 qps: after 500 ms five more tokens */
    ok = 0;
    for (int i = 0; i < 50; i++)
        ok += rl_take(t, AF_INET, pc, 1500);
    assert_int_equal(ok, 5);
    /* refill never goes beyond the burst */
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += rl_take(t, AF_INET, pc, 1000000);
    assert_int_equal(ok, 20);
    rl_free(t);
}

static void test_v6_and_mapped(void **state)
{
    (void)state;
    struct rl_table *t = rl_new(64, 1, 1);
    uint8_t mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10 };
    uint8_t v6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10 };
    assert_int_equal(rl_take(t, AF_INET, pc, 0), 1);
    assert_int_equal(rl_take(t, AF_INET6, mapped, 0), 0);   /* same client as 192.0.2.10 */
    assert_int_equal(rl_take(t, AF_INET6, v6, 0), 1);
    assert_int_equal(rl_take(t, AF_INET6, v6, 0), 0);
    rl_free(t);
}

static void test_disabled(void **state)
{
    (void)state;
    struct rl_table *t = rl_new(16, 0, 0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(rl_take(t, AF_INET, pc, 0), 1);
    rl_free(t);
}

struct seen { int n; uint32_t total; };
static void visit(const uint8_t addr16[16], uint32_t count, void *ctx)
{
    struct seen *s = ctx;
    (void)addr16;
    s->n++;
    s->total += count;
}

static void test_bounded_table_and_counts(void **state)
{
    (void)state;
    struct rl_table *t = rl_new(16, 5, 5);
    /* a spray of 10000 source addresses never grows the table and leaves a busy client
     * that keeps coming back a working bucket most of the time */
    uint8_t a[4] = { 203, 0, 113, 0 };
    for (int i = 0; i < 10000; i++) {
        a[2] = (uint8_t)(i >> 8);
        a[3] = (uint8_t)i;
        rl_take(t, AF_INET, a, (uint64_t)i);
    }
    for (int i = 0; i < 3; i++)
        rl_count_allowed(t, AF_INET, pc, 20000);
    rl_count_allowed(t, AF_INET, iot, 20000);
    struct seen s = { 0, 0 };
    rl_drain_allowed(t, visit, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.total, 4);
    s = (struct seen){ 0, 0 };
    rl_drain_allowed(t, visit, &s);                  /* drained: zeroed */
    assert_int_equal(s.n, 0);
    rl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_limit),
        cmocka_unit_test(test_v6_and_mapped),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_bounded_table_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
