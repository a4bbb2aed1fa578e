/* Consensus: k distinct organisations promote, one organisation twice does not, the
 * allowlist and false-positive reports demote, entries expire unless seen again, and
 * what gets promoted shows up in a signed delta a box verifies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hub_test_util.h"

static int setup(void **state)
{
    static struct hub h;
    if (hub_test_open(&h, 3) < 0)
        return -1;
    char err[300];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "org%d", i);
        if (hub_org_add(&h, name, err, sizeof err) < 0)
            return -1;
    }
    *state = &h;
    return 0;
}

static int teardown(void **state)
{
    hub_test_close(*state);
    unsetenv("OTASUKE_HUB_NOW_OFFSET");
    return 0;
}

static int contrib(struct hub *h, long org, const char *ind, const char *cat)
{
    struct hub_contrib c;
    memset(&c, 0, sizeof c);
    snprintf(c.indicator, sizeof c.indicator, "%s", ind);
    snprintf(c.kind, sizeof c.kind, "domain");
    snprintf(c.category, sizeof c.category, "%s", cat);
    c.count = 1;
    char err[300];
    int r = hub_contribute(h, org, &c, err, sizeof err);
    if (r < 0)
        fprintf(stderr, "contribute: %s\n", err);
    return r;
}

static int doc_has(struct hub *h, unsigned long long from, const char *needle)
{
    struct hub_doc d;
    char err[300];
    int r = hub_doc_build(h, from == 0, from, &d, err, sizeof err);
    if (r != 0)
        return 0;
    int has = strstr(d.text, needle) != NULL;
    hub_doc_free(&d);
    return has;
}

static void three_orgs_promote(void **state)
{
    struct hub *h = *state;
    char err[300];
    long long s0 = hub_feed_seq(h, err, sizeof err);
    assert_int_equal(contrib(h, 1, "Evil.Example.test", "malware"), 0);
    assert_int_equal(contrib(h, 2, "evil.example.test.", "malware"), 0);
    assert_int_equal(hub_feed_seq(h, err, sizeof err), s0);
    assert_int_equal(contrib(h, 3, "evil.example.test", "malware"), 1);
    assert_int_equal(hub_feed_seq(h, err, sizeof err), s0 + 1);
    assert_true(doc_has(h, (unsigned long long)s0, "\"indicator\":\"evil.example.test\""));
    assert_true(doc_has(h, 0, "evil.example.test"));
    /* A fourth report is "seen again", not a new change. */
    assert_int_equal(contrib(h, 4, "evil.example.test", "malware"), 0);
}

static void one_org_twice_does_not_promote(void **state)
{
    struct hub *h = *state;
    char err[300];
    long long s0 = hub_feed_seq(h, err, sizeof err);
    for (int i = 0; i < 5; i++)
        assert_int_equal(contrib(h, 1, "noisy.test", "ads"), 0);
    assert_int_equal(contrib(h, 2, "noisy.test", "ads"), 0);
    assert_int_equal(hub_feed_seq(h, err, sizeof err), s0);
    assert_false(doc_has(h, 0, "noisy.test"));
}

static void allowlist_blocks_and_demotes(void **state)
{
    struct hub *h = *state;
    char err[300];
    assert_int_equal(hub_allow_add(h, "bank.test", "domain", "our bank", err, sizeof err), 0);
    for (long o = 1; o <= 4; o++)
        assert_int_equal(contrib(h, o, "bank.test", "phishing"), 0);
    assert_false(doc_has(h, 0, "bank.test"));
    /* Promoted first, allowlisted later: removed in the next delta. */
    for (long o = 1; o <= 3; o++)
        contrib(h, o, "cdn.test", "malware");
    long long s = hub_feed_seq(h, err, sizeof err);
    assert_int_equal(hub_allow_add(h, "cdn.test", "domain", NULL, err, sizeof err), 1);
    assert_true(doc_has(h, (unsigned long long)s, "\"action\":\"remove\""));
    assert_false(doc_has(h, 0, "cdn.test"));
    /* The operator cannot add an allowlisted name by mistake. */
    assert_int_equal(hub_indicator_add(h, "bank.test", "domain", "malware", "operator", err,
                                       sizeof err), -1);
    assert_non_null(strstr(err, "allowlist"));
}

static void false_positives_demote_community_only(void **state)
{
    struct hub *h = *state;
    char err[300];
    for (long o = 1; o <= 3; o++)
        contrib(h, o, "shop-cdn.test", "ads");
    assert_true(doc_has(h, 0, "shop-cdn.test"));
    assert_int_equal(hub_report_fp(h, 1, "shop-cdn.test", "domain", err, sizeof err), 0);
    assert_int_equal(hub_report_fp(h, 1, "shop-cdn.test", "domain", err, sizeof err), 0);
    assert_true(doc_has(h, 0, "shop-cdn.test"));
    assert_int_equal(hub_report_fp(h, 2, "shop-cdn.test", "domain", err, sizeof err), 1);
    assert_false(doc_has(h, 0, "shop-cdn.test"));
    /* Demoted names do not come back by the same reports. */
    assert_int_equal(contrib(h, 4, "shop-cdn.test", "ads"), 0);
    assert_false(doc_has(h, 0, "shop-cdn.test"));
    /* An analyst's entry stays until a person removes it. */
    assert_int_equal(hub_indicator_confirm(h, "c2.test", "domain", "c2", err, sizeof err), 1);
    hub_report_fp(h, 1, "c2.test", "domain", err, sizeof err);
    assert_int_equal(hub_report_fp(h, 2, "c2.test", "domain", err, sizeof err), 0);
    assert_true(doc_has(h, 0, "c2.test"));
    assert_int_equal(hub_indicator_remove(h, "c2.test", "domain", err, sizeof err), 1);
    assert_false(doc_has(h, 0, "c2.test"));
}

static void confirm_takes_category_from_contributions(void **state)
{
    struct hub *h = *state;
    char err[300];
    contrib(h, 1, "phish.test", "phishing");
    assert_int_equal(hub_indicator_confirm(h, "phish.test", "domain", NULL, err, sizeof err), 1);
    assert_true(doc_has(h, 0, "\"category\":\"phishing\""));
    assert_int_equal(hub_indicator_confirm(h, "unknown.test", "domain", NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "category"));
    assert_int_equal(hub_indicator_add(h, "x.test", "domain", "nonsense", "operator", err,
                                       sizeof err), -1);
    assert_non_null(strstr(err, "unknown category"));
    assert_int_equal(hub_indicator_add(h, "bad..name", "domain", "malware", "operator", err,
                                       sizeof err), -1);
    assert_int_equal(hub_indicator_add(h, "198.18.0.300", "ipv4", "malware", "operator", err,
                                       sizeof err), -1);
    assert_int_equal(hub_indicator_add(h, "198.18.7.7", "ipv4", "c2", "operator", err,
                                       sizeof err), 1);
}

static void entries_expire_unless_seen_again(void **state)
{
    struct hub *h = *state;
    char err[300];
    for (long o = 1; o <= 3; o++)
        contrib(h, o, "old.test", "malware");
    assert_int_equal(hub_indicator_add(h, "forever.test", "domain", "malware", "operator", err,
                                       sizeof err), 1);
    assert_int_equal(hub_expire(h, err, sizeof err), 0);
    char off[32];
    snprintf(off, sizeof off, "%lld", (long long)h->o.entry_ttl + 10);
    setenv("OTASUKE_HUB_NOW_OFFSET", off, 1);
    long long s = hub_feed_seq(h, err, sizeof err);
    assert_int_equal(hub_expire(h, err, sizeof err), 1);
    assert_false(doc_has(h, 0, "old.test"));
    assert_true(doc_has(h, 0, "forever.test"));
    assert_true(doc_has(h, (unsigned long long)s, "old.test"));
    unsetenv("OTASUKE_HUB_NOW_OFFSET");
}

static void delta_verifies_on_a_box(void **state)
{
    struct hub *h = *state;
    char err[300];
    long long s = hub_feed_seq(h, err, sizeof err);
    for (long o = 1; o <= 3; o++)
        contrib(h, o, "verified.test", "c2");
    struct hub_doc d;
    assert_int_equal(hub_doc_build(h, 0, (unsigned long long)s, &d, err, sizeof err), 0);
    struct feed_expect x = { "community", h->feed_pk, (uint64_t)s, (int64_t)hub_now(), 0 };
    struct feed_manifest m;
    assert_int_equal(feed_verify(d.text, d.len, d.sig, d.siglen, &x, &m, err, sizeof err),
                     FEED_OK);
    assert_int_equal(m.type, FEED_DELTA);
    assert_int_equal(m.base, (uint64_t)s);
    /* One flipped byte and the box refuses it. */
    d.text[d.len - 5] ^= 1;
    assert_int_equal(feed_verify(d.text, d.len, d.sig, d.siglen, &x, &m, err, sizeof err),
                     FEED_BAD_SIGNATURE);
    hub_doc_free(&d);
    /* Current seq: nothing to send; seq 0: take the snapshot. */
    assert_int_equal(hub_doc_build(h, 0, (unsigned long long)s + 1, &d, err, sizeof err), 1);
    assert_int_equal(hub_doc_build(h, 0, 0, &d, err, sizeof err), 2);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void curated_list_import_replaces_its_last(void **state)
{
    struct hub *h = *state;
    char err[300], path[300];
    long added, removed;
    snprintf(path, sizeof path, "%s/list.txt", hub_test_dir);
    write_file(path, "0.0.0.0 one.list.test\n0.0.0.0 two.list.test\n0.0.0.0 bank.test\n"
                     "this is not a name\n0.0.0.0 three.list.test\n");
    assert_int_equal(hub_allow_add(h, "bank.test", "domain", NULL, err, sizeof err), 0);
    long long s0 = hub_feed_seq(h, err, sizeof err);
    assert_int_equal(hub_indicator_import(h, path, "malware", "urlhaus", &added, &removed,
                                          err, sizeof err), 1);
    assert_int_equal(added, 3);
    assert_int_equal(removed, 0);
    assert_int_equal(hub_feed_seq(h, err, sizeof err), s0 + 1);
    assert_true(doc_has(h, 0, "\"source\":\"hub:list:urlhaus\""));
    assert_false(doc_has(h, 0, "bank.test"));
    /* Same list again: nothing to publish. */
    assert_int_equal(hub_indicator_import(h, path, "malware", "urlhaus", &added, &removed,
                                          err, sizeof err), 0);
    assert_int_equal(hub_feed_seq(h, err, sizeof err), s0 + 1);
    /* A name dropped from the list is removed in the next delta. */
    write_file(path, "one.list.test\nthree.list.test\nfour.list.test\n");
    assert_int_equal(hub_indicator_import(h, path, "malware", "urlhaus", &added, &removed,
                                          err, sizeof err), 1);
    assert_int_equal(added, 1);
    assert_int_equal(removed, 1);
    assert_false(doc_has(h, 0, "two.list.test"));
    assert_true(doc_has(h, (unsigned long long)s0 + 1, "\"indicator\":\"two.list.test\""));
    assert_true(doc_has(h, 0, "four.list.test"));
    /* Not a list at all, or a bad label: refused, nothing changed. */
    write_file(path, "\x01\x02\x03 binary\n");
    long long s1 = hub_feed_seq(h, err, sizeof err);
    assert_int_equal(hub_indicator_import(h, path, "malware", "urlhaus", &added, &removed,
                                          err, sizeof err), -1);
    assert_int_equal(hub_feed_seq(h, err, sizeof err), s1);
    assert_true(doc_has(h, 0, "four.list.test"));
    assert_int_equal(hub_indicator_import(h, path, "malware", "Bad Label", NULL, NULL, err,
                                          sizeof err), -1);
    assert_non_null(strstr(err, "--source"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(three_orgs_promote, setup, teardown),
        cmocka_unit_test_setup_teardown(one_org_twice_does_not_promote, setup, teardown),
        cmocka_unit_test_setup_teardown(allowlist_blocks_and_demotes, setup, teardown),
        cmocka_unit_test_setup_teardown(false_positives_demote_community_only, setup, teardown),
        cmocka_unit_test_setup_teardown(confirm_takes_category_from_contributions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(entries_expire_unless_seen_again, setup, teardown),
        cmocka_unit_test_setup_teardown(delta_verifies_on_a_box, setup, teardown),
        cmocka_unit_test_setup_teardown(curated_list_import_replaces_its_last, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
