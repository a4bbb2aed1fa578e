/* Hub sharing (services/agent/hubshare.c): the aggregation table counts per indicator,
 * stays within its cap by dropping the indicator seen longest ago, keeps every count
 * through a failed send and subtracts exactly what a successful one carried; the event
 * filter passes only threat indicators and never anything about the client. */
#include "../../services/agent/hubshare.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static const struct hubshare_entry *get(struct hubshare_entry *all, int n, const char *ind)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i].indicator, ind))
            return &all[i];
    return NULL;
}

static void test_aggregates(void **st)
{
    (void)st;
    struct hubshare_table *t = hubshare_table_new(100);
    assert_non_null(t);
    assert_int_equal(hubshare_table_note(t, "Evil.Example.TEST.", "domain", "malware", 100), 1);
    assert_int_equal(hubshare_table_note(t, "evil.example.test", "domain", "malware", 90), 0);
    assert_int_equal(hubshare_table_note(t, "evil.example.test", "domain", "phishing", 130), 0);
    assert_int_equal(hubshare_table_note(t, "198.18.10.66", "ipv4", "c2", 120), 1);
    assert_int_equal(hubshare_table_note(t, "2001:DB8:0::1", "ipv6", "c2", 120), 1);
    assert_int_equal(hubshare_table_note(t, "2001:db8::1", "ipv6", "c2", 121), 0);
    /* the same text as another kind is another indicator; bad ones are refused */
    assert_int_equal(hubshare_table_note(t, "198.18.10.66", "domain", "c2", 120), 1);
    assert_int_equal(hubshare_table_note(t, "bad name.test", "domain", "malware", 1), -1);
    assert_int_equal(hubshare_table_note(t, "a..b.test", "domain", "malware", 1), -1);
    assert_int_equal(hubshare_table_note(t, "", "domain", "malware", 1), -1);
    assert_int_equal(hubshare_table_note(t, "300.1.1.1", "ipv4", "c2", 1), -1);
    assert_int_equal(hubshare_table_note(t, "x.test", "cidr", "c2", 1), -1);
    assert_int_equal(hubshare_table_note(t, "x.test", "domain", "", 1), -1);
    assert_int_equal(hubshare_table_size(t), 4);

    struct hubshare_entry b[10];
    int n = hubshare_table_batch(t, b, 10);
    assert_int_equal(n, 4);
    const struct hubshare_entry *e = get(b, n, "evil.example.test");
    assert_non_null(e);
    assert_string_equal(e->kind, "domain");
    assert_string_equal(e->category, "phishing");   /* the latest one seen */
    assert_int_equal(e->count, 3);
    assert_int_equal(e->first_seen, 90);
    assert_int_equal(e->last_seen, 130);
    e = get(b, n, "2001:db8::1");
    assert_non_null(e);
    assert_int_equal(e->count, 2);
    hubshare_table_free(t);
}

static void test_cap_drops_oldest(void **st)
{
    (void)st;
    struct hubshare_table *t = hubshare_table_new(3);
    hubshare_table_note(t, "a.test", "domain", "malware", 10);
    hubshare_table_note(t, "b.test", "domain", "malware", 20);
    hubshare_table_note(t, "c.test", "domain", "malware", 30);
    hubshare_table_note(t, "a.test", "domain", "malware", 40);   /* a is now the newest */
    assert_int_equal(hubshare_table_note(t, "d.test", "domain", "malware", 50), 1);
    assert_int_equal(hubshare_table_size(t), 3);
    assert_int_equal(hubshare_table_dropped(t), 1);
    struct hubshare_entry b[4];
    int n = hubshare_table_batch(t, b, 4);
    assert_int_equal(n, 3);
    assert_null(get(b, n, "b.test"));
    assert_non_null(get(b, n, "a.test"));
    assert_int_equal(get(b, n, "a.test")->count, 2);
    assert_non_null(get(b, n, "d.test"));
    /* a late event (older than what the table has seen) counts, but does not make its
     * indicator look recent */
    assert_int_equal(hubshare_table_note(t, "c.test", "domain", "malware", 45), 0);
    assert_int_equal(hubshare_table_note(t, "d.test", "domain", "malware", 44), 0);
    assert_int_equal(hubshare_table_note(t, "e.test", "domain", "malware", 60), 1);
    n = hubshare_table_batch(t, b, 4);
    assert_null(get(b, n, "a.test"));   /* last seen 40: the oldest now */
    assert_int_equal(get(b, n, "d.test")->count, 2);
    assert_int_equal(get(b, n, "d.test")->last_seen, 50);
    assert_int_equal(hubshare_table_dropped(t), 2);
    /* a long run of new names never grows it */
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "n%d.test", i);
        hubshare_table_note(t, name, "domain", "malware", 100 + i);
    }
    assert_int_equal(hubshare_table_size(t), 3);
    assert_int_equal(hubshare_table_dropped(t), 1002);
    n = hubshare_table_batch(t, b, 4);
    assert_non_null(get(b, n, "n999.test"));
    assert_non_null(get(b, n, "n997.test"));
    hubshare_table_free(t);
}

/* Slots are handed out from the front as first needed (pages of an unused table stay
 * untouched); after a clear, what was there before is gone, also from batches, and the
 * table fills and evicts as a new one. */
static void test_clear_then_reuse(void **st)
{
    (void)st;
    struct hubshare_table *t = hubshare_table_new(3);
    struct hubshare_entry b[4];
    hubshare_table_note(t, "a.test", "domain", "malware", 10);
    hubshare_table_note(t, "b.test", "domain", "malware", 20);
    assert_int_equal(hubshare_table_batch(t, b, 4), 2);
    hubshare_table_clear(t);
    assert_int_equal(hubshare_table_size(t), 0);
    assert_int_equal(hubshare_table_batch(t, b, 4), 0);
    assert_int_equal(hubshare_table_note(t, "c.test", "domain", "malware", 30), 1);
    int n = hubshare_table_batch(t, b, 4);
    assert_int_equal(n, 1);
    assert_non_null(get(b, n, "c.test"));
    assert_null(get(b, n, "a.test"));
    hubshare_table_note(t, "d.test", "domain", "malware", 40);
    hubshare_table_note(t, "e.test", "domain", "malware", 50);
    assert_int_equal(hubshare_table_note(t, "f.test", "domain", "malware", 60), 1);
    assert_int_equal(hubshare_table_size(t), 3);
    n = hubshare_table_batch(t, b, 4);
    assert_int_equal(n, 3);
    assert_null(get(b, n, "c.test"));   /* the oldest, dropped for f */
    assert_non_null(get(b, n, "f.test"));
    hubshare_table_free(t);
}

static void test_send_ack_keeps_counts(void **st)
{
    (void)st;
    struct hubshare_table *t = hubshare_table_new(10);
    for (int i = 0; i < 5; i++)
        hubshare_table_note(t, "c2.test", "domain", "c2", 100 + i);
    hubshare_table_note(t, "once.test", "domain", "malware", 100);
    struct hubshare_entry b[10];
    /* a failed send: the batch is a copy, nothing changes */
    int n = hubshare_table_batch(t, b, 10);
    assert_int_equal(n, 2);
    n = hubshare_table_batch(t, b, 10);
    assert_int_equal(get(b, n, "c2.test")->count, 5);
    /* sightings while the batch is on its way stay for the next send */
    hubshare_table_note(t, "c2.test", "domain", "c2", 200);
    hubshare_table_note(t, "c2.test", "domain", "c2", 201);
    hubshare_table_ack(t, b, n);
    assert_int_equal(hubshare_table_size(t), 1);
    struct hubshare_entry c[10];
    int m = hubshare_table_batch(t, c, 10);
    assert_int_equal(m, 1);
    assert_string_equal(c[0].indicator, "c2.test");
    assert_int_equal(c[0].count, 2);
    assert_int_equal(c[0].last_seen, 201);
    assert_true(c[0].first_seen >= 104);
    /* acking twice (a retried answer) never goes below zero or touches others */
    hubshare_table_ack(t, c, m);
    hubshare_table_ack(t, c, m);
    assert_int_equal(hubshare_table_size(t), 0);
    /* batches are bounded by max; the rest waits */
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "x%d.test", i);
        hubshare_table_note(t, name, "domain", "malware", 300);
    }
    n = hubshare_table_batch(t, b, 4);
    assert_int_equal(n, 4);
    hubshare_table_ack(t, b, n);
    assert_int_equal(hubshare_table_size(t), 6);
    hubshare_table_clear(t);
    assert_int_equal(hubshare_table_size(t), 0);
    assert_int_equal(hubshare_table_batch(t, b, 4), 0);
    /* the table is usable again after a clear */
    assert_int_equal(hubshare_table_note(t, "x1.test", "domain", "malware", 400), 1);
    /* counts kept over a restart come back as they were, and add to new sightings */
    struct hubshare_entry kept = { "X1.test", "domain", "malware", 5, 10, 20 };
    assert_int_equal(hubshare_table_restore(t, &kept), 0);
    struct hubshare_entry k2 = { "kept.test", "domain", "c2", 7, 10, 20 };
    assert_int_equal(hubshare_table_restore(t, &k2), 1);
    n = hubshare_table_batch(t, b, 10);
    assert_int_equal(get(b, n, "x1.test")->count, 6);
    assert_int_equal(get(b, n, "x1.test")->first_seen, 10);
    assert_int_equal(get(b, n, "x1.test")->last_seen, 400);
    assert_int_equal(get(b, n, "kept.test")->count, 7);
    assert_int_equal(get(b, n, "kept.test")->last_seen, 20);
    struct hubshare_entry bad1 = { "b.test", "domain", "c2", 0, 10, 20 };
    struct hubshare_entry bad2 = { "b.test", "domain", "c2", 3, 30, 20 };
    struct hubshare_entry bad3 = { "b test", "domain", "c2", 3, 10, 20 };
    assert_int_equal(hubshare_table_restore(t, &bad1), -1);
    assert_int_equal(hubshare_table_restore(t, &bad2), -1);
    assert_int_equal(hubshare_table_restore(t, &bad3), -1);
    assert_true(hubshare_threat("phishing") && !hubshare_threat("ads") && !hubshare_threat(""));
    hubshare_table_free(t);
}

static int ev(const char *json, struct hubshare_entry *e)
{
    return hubshare_event_indicator(json, strlen(json), e);
}

static void test_event_filter(void **st)
{
    (void)st;
    struct hubshare_entry e;
    assert_int_equal(ev("{\"type\":\"blocked\",\"client\":\"192.0.2.10\",\"name\":\"Malware.TEST\","
                        "\"category\":\"malware\",\"list\":\"x\"}", &e), 1);
    assert_string_equal(e.indicator, "malware.test");
    assert_string_equal(e.kind, "domain");
    assert_string_equal(e.category, "malware");
    assert_null(strstr((const char *)&e, "192.0.2.10"));
    assert_int_equal(ev("{\"type\":\"blocked\",\"client\":\"192.0.2.10\",\"name\":\"p.test\","
                        "\"category\":\"phishing\"}", &e), 1);
    assert_int_equal(ev("{\"type\":\"blocked\",\"client\":\"192.0.2.10\",\"name\":\"c.test\","
                        "\"category\":\"c2\"}", &e), 1);
    /* the owner's taste, not a threat */
    assert_int_equal(ev("{\"type\":\"blocked\",\"client\":\"192.0.2.10\",\"name\":\"ads.test\","
                        "\"category\":\"ads\"}", &e), 0);
    assert_int_equal(ev("{\"type\":\"blocked\",\"name\":\"s.test\",\"category\":\"social\"}", &e), 0);
    assert_int_equal(ev("{\"type\":\"blocked\",\"name\":\"a.test\",\"category\":\"adult\"}", &e), 0);
    /* allowed names are never shared */
    assert_int_equal(ev("{\"type\":\"query\",\"client\":\"192.0.2.10\",\"name\":\"good.test\","
                        "\"category\":\"malware\"}", &e), 0);
    assert_int_equal(ev("{\"type\":\"allowed\",\"name\":\"good.test\",\"category\":\"malware\"}", &e), 0);
    /* fwd: only the office reaching a listed destination */
    assert_int_equal(ev("{\"type\":\"drop\",\"reason\":\"blocklist\",\"set\":\"block4\",\"match\":"
                        "\"destination\",\"src\":\"192.0.2.10\",\"dst\":\"198.18.10.66\"}", &e), 1);
    assert_string_equal(e.indicator, "198.18.10.66");
    assert_string_equal(e.kind, "ipv4");
    assert_string_equal(e.category, "c2");
    assert_int_equal(ev("{\"type\":\"drop\",\"reason\":\"blocklist\",\"match\":\"destination\","
                        "\"src\":\"fd00:0:0:1::10\",\"dst\":\"FD00:0:0:100::66\"}", &e), 1);
    assert_string_equal(e.indicator, "fd00:0:0:100::66");
    assert_string_equal(e.kind, "ipv6");
    assert_int_equal(ev("{\"type\":\"drop\",\"reason\":\"blocklist\",\"match\":\"source\","
                        "\"src\":\"198.18.10.66\",\"dst\":\"192.0.2.10\"}", &e), 0);
    assert_int_equal(ev("{\"type\":\"drop\",\"reason\":\"policy\",\"match\":\"destination\","
                        "\"src\":\"192.0.2.10\",\"dst\":\"198.18.10.66\"}", &e), 0);
    /* malformed: nothing, no crash */
    assert_int_equal(ev("{\"type\":\"blocked\"", &e), 0);
    assert_int_equal(ev("\"blocked\"", &e), 0);
    assert_int_equal(ev("{\"type\":\"blocked\",\"name\":7,\"category\":\"malware\"}", &e), 0);
    assert_int_equal(ev("{\"type\":\"blocked\",\"name\":\"a b\",\"category\":\"malware\"}", &e), 0);
    assert_int_equal(ev("{\"type\":\"drop\",\"reason\":\"blocklist\",\"match\":\"destination\","
                        "\"dst\":\"not-an-ip\"}", &e), 0);
    assert_int_equal(ev("{\"type\":\"neighbour\",\"mac\":\"02:00:00:00:00:01\"}", &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregates),
        cmocka_unit_test(test_cap_drops_oldest),
        cmocka_unit_test(test_clear_then_reuse),
        cmocka_unit_test(test_send_ack_keeps_counts),
        cmocka_unit_test(test_event_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
