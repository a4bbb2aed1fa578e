/* otasuke-fwd diffing: element merge-diffs for every element type, kernel key encoding
 * of ranges, and the rule hashes that make a no-op reconcile send nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/firewall/fw.h"

static void test_diff_v4(void **state)
{
    (void)state;
    const uint32_t have[] = { 1, 3, 5, 7, 9 };
    const uint32_t want[] = { 2, 3, 7, 9, 10, 11 };
    uint32_t add[6], del[5];
    size_t na, nd;
    fw_diff_elems(FWSET_E_V4, have, 5, want, 6, add, &na, del, &nd);
    assert_int_equal(na, 3);
    assert_int_equal(want[add[0]], 2);
    assert_int_equal(want[add[1]], 10);
    assert_int_equal(want[add[2]], 11);
    assert_int_equal(nd, 2);
    assert_int_equal(have[del[0]], 1);
    assert_int_equal(have[del[1]], 5);

    fw_diff_elems(FWSET_E_V4, want, 6, want, 6, add, &na, del, &nd);
    assert_int_equal(na + nd, 0); /* identical: nothing to send */
    fw_diff_elems(FWSET_E_V4, NULL, 0, want, 6, add, &na, del, &nd);
    assert_int_equal(na, 6);
    assert_int_equal(nd, 0);
    fw_diff_elems(FWSET_E_V4, have, 5, NULL, 0, add, &na, del, &nd);
    assert_int_equal(na, 0);
    assert_int_equal(nd, 5);
}

static void test_diff_ranges(void **state)
{
    (void)state;
    /* a range whose end moved is one delete and one add, not an overlap */
    const struct ipl_v4 have[] = { { 10, 20 }, { 30, 40 }, { 50, 60 } };
    const struct ipl_v4 want[] = { { 10, 20 }, { 30, 45 }, { 70, 80 } };
    uint32_t add[3], del[3];
    size_t na, nd;
    fw_diff_elems(FWSET_E_V4R, have, 3, want, 3, add, &na, del, &nd);
    assert_int_equal(na, 2);
    assert_int_equal(want[add[0]].hi, 45);
    assert_int_equal(want[add[1]].lo, 70);
    assert_int_equal(nd, 2);
    assert_int_equal(have[del[0]].hi, 40);
    assert_int_equal(have[del[1]].lo, 50);
}

static void test_diff_bytes(void **state)
{
    (void)state;
    uint8_t have[3][16] = { { 0x20, 1 }, { 0x20, 2 }, { 0x20, 3 } };
    uint8_t want[2][16] = { { 0x20, 2 }, { 0x20, 4 } };
    uint32_t add[2], del[3];
    size_t na, nd;
    fw_diff_elems(FWSET_E_V6, have, 3, want, 2, add, &na, del, &nd);
    assert_int_equal(na, 1);
    assert_int_equal(want[add[0]][1], 4);
    assert_int_equal(nd, 2);
    uint8_t m1[2][8] = { { 2, 0, 0, 0, 0, 1 }, { 2, 0, 0, 0, 0, 2 } };
    uint8_t m2[1][8] = { { 2, 0, 0, 0, 0, 2 } };
    fw_diff_elems(FWSET_E_MAC, m1, 2, m2, 1, add, &na, del, &nd);
    assert_int_equal(na, 0);
    assert_int_equal(nd, 1);
    assert_int_equal(del[0], 0);
}

static void test_sort(void **state)
{
    (void)state;
    struct ipl_v4 r[] = { { 50, 60 }, { 1, 2 }, { 30, 40 } };
    fw_sort_elems(FWSET_E_V4R, r, 3);
    assert_int_equal(r[0].lo, 1);
    assert_int_equal(r[2].lo, 50);
    uint32_t v[] = { 0xffffffffu, 0, 7 };
    fw_sort_elems(FWSET_E_V4, v, 3);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[2], 0xffffffffu);
}

static void test_keys(void **state)
{
    (void)state;
    uint8_t key[16];
    int has_end;
    const uint32_t single[] = { 0xc0000201u };
    assert_int_equal(fw_elem_key(FWSET_E_V4, single, 0, 0, key, &has_end), 4);
    assert_int_equal(has_end, 0);
    assert_memory_equal(key, "\xc0\x00\x02\x01", 4);
    /* interval sets hold [lo, hi] as a start key lo and an end key hi + 1 */
    const struct ipl_v4 r[] = { { 0xc0000200u, 0xc00002ffu }, { 0xffffff00u, 0xffffffffu } };
    fw_elem_key(FWSET_E_V4R, r, 0, 0, key, &has_end);
    assert_memory_equal(key, "\xc0\x00\x02\x00", 4);
    assert_int_equal(has_end, 1);
    fw_elem_key(FWSET_E_V4R, r, 0, 1, key, &has_end);
    assert_memory_equal(key, "\xc0\x00\x03\x00", 4);
    fw_elem_key(FWSET_E_V4R, r, 1, 0, key, &has_end);
    assert_int_equal(has_end, 0); /* up to the last address: no end element */
    uint8_t r6[32] = { 0x20, 0x01, 0x0d, 0xb8 };
    memcpy(r6 + 16, r6, 16);
    memset(r6 + 24, 0xff, 8); /* 2001:db8::/64 */
    assert_int_equal(fw_elem_key(FWSET_E_V6R, r6, 0, 1, key, &has_end), 16);
    assert_int_equal(has_end, 1);
    assert_memory_equal(key, "\x20\x01\x0d\xb8\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00", 16);
    const uint8_t mac[8] = { 2, 0, 0, 0, 0, 7 };
    assert_int_equal(fw_elem_key(FWSET_E_MAC, mac, 0, 0, key, &has_end), 6);
}

static void sample(struct fwset *s, const char *lan_if)
{
    char err[128];
    struct iplist l;
    iplist_init(&l);
    assert_int_equal(iplist_parse(&l, "192.0.2.9\n", 10, err, sizeof err), 0);
    iplist_normalize(&l);
    fwset_init(s);
    snprintf(s->opts.ifname[FWSET_ZONE_LAN][0], FWSET_IFNAMSIZ, "%s", lan_if);
    snprintf(s->opts.ifname[FWSET_ZONE_WAN][0], FWSET_IFNAMSIZ, "wan0");
    s->opts.nflog_group = 3;
    assert_int_equal(fwset_add_iplist(s, "blk_a", FWSET_KIND_BLOCK, &l, 0, err, sizeof err), 0);
    iplist_free(&l);
}

static const struct fw_chain *chain(const struct fw_ruleset *rs, const char *name)
{
    for (size_t i = 0; i < rs->nchains; i++)
        if (strcmp(rs->chains[i].name, name) == 0)
            return &rs->chains[i];
    return NULL;
}

static void test_rule_hashes(void **state)
{
    (void)state;
    struct fwset s;
    struct fw_ruleset a, b, c;
    char err[128];
    sample(&s, "lan0");
    assert_int_equal(fw_rules_build(&s, &a, err, sizeof err), 0);
    assert_int_equal(fw_rules_build(&s, &b, err, sizeof err), 0);
    assert_int_equal(a.nchains, b.nchains);
    for (size_t i = 0; i < a.nchains; i++) { /* same input, same hashes: no-op stays no-op */
        assert_int_equal(a.chains[i].nrules, b.chains[i].nrules);
        for (size_t j = 0; j < a.chains[i].nrules; j++) {
            assert_true(a.chains[i].hashes[j] != 0);
            assert_true(a.chains[i].hashes[j] == b.chains[i].hashes[j]);
        }
    }
    /* the base chains exist with their hooks; forward drops by default */
    const struct fw_chain *fwd = chain(&a, "forward");
    assert_non_null(fwd);
    assert_int_equal(fwd->base, 1);
    assert_int_equal(fwd->policy, 0 /* NF_DROP */);
    assert_non_null(chain(&a, "pre_nat"));
    assert_non_null(chain(&a, "post_nat"));
    assert_int_equal(chain(&a, "post_nat")->nrules, 1); /* masquerade on the one wan */
    assert_int_equal(chain(&a, "nat_in")->nrules, 2);   /* DNS udp + tcp, no quarantine */

    /* quarantine by MAC, by address and by network: every kind is matched */
    struct fwset q;
    struct fw_ruleset rq;
    struct iplist ql;
    iplist_init(&ql);
    assert_int_equal(iplist_parse(&ql, "198.51.100.10\n198.51.100.64/26\n", 31, err, sizeof err), 0);
    iplist_normalize(&ql);
    sample(&q, "lan0");
    snprintf(q.opts.ifname[FWSET_ZONE_IOT][0], FWSET_IFNAMSIZ, "iot0");
    static const uint8_t mac[1][6] = { { 2, 0, 0, 0, 0, 1 } };
    assert_int_equal(fwset_add_iplist(&q, "quar", FWSET_KIND_QUARANTINE, &ql, 0, err, sizeof err), 0);
    assert_int_equal(fwset_add_macs(&q, "quar_mac", FWSET_KIND_QUARANTINE, mac, 1, err, sizeof err), 0);
    assert_int_equal(fw_rules_build(&q, &rq, err, sizeof err), 0);
    assert_int_equal(chain(&rq, "nat_in")->nrules, 2 + 5);  /* block page for 5 sets */
    assert_int_equal(chain(&rq, "in_iot")->nrules, 5 + 5 + 2); /* 5 jumps, 5 services, log+drop */
    fw_rules_free(&rq);
    fwset_free(&q);
    iplist_free(&ql);

    /* an interface change alters exactly the chains that name it */
    fwset_free(&s);
    sample(&s, "lan1");
    assert_int_equal(fw_rules_build(&s, &c, err, sizeof err), 0);
    size_t changed = 0;
    for (size_t i = 0; i < a.nchains; i++)
        changed += a.chains[i].nrules != c.chains[i].nrules ||
                   memcmp(a.chains[i].hashes, c.chains[i].hashes, a.chains[i].nrules * 8) != 0;
    assert_int_equal(changed, 3); /* pre_nat, input, forward */

    /* the hash travels in the rule comment and parses back */
    uint8_t ud[64] = { 0, 0 };
    const char *cm = "otasuke:00000000deadbeef what";
    ud[1] = (uint8_t)(strlen(cm) + 1);
    memcpy(ud + 2, cm, strlen(cm) + 1);
    assert_true(fw_rules_udata_hash(ud, 2 + ud[1]) == 0xdeadbeefull);
    assert_true(fw_rules_udata_hash(ud, 5) == 0); /* truncated TLV */
    const char *foreign = "someone else's comment";
    ud[1] = (uint8_t)(strlen(foreign) + 1);
    memcpy(ud + 2, foreign, strlen(foreign) + 1);
    assert_true(fw_rules_udata_hash(ud, 2 + ud[1]) == 0);

    fw_rules_free(&a);
    fw_rules_free(&b);
    fw_rules_free(&c);
    fwset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_v4),
        cmocka_unit_test(test_diff_ranges),
        cmocka_unit_test(test_diff_bytes),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_rule_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
