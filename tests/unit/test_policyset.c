/* policy.set: parsing, every validation error, client -> group, custom lists, writing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "domainset.h"
#include "policyset.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *good =
    "{\"version\":1,"
    "\"groups\":[{\"name\":\"staff\",\"categories\":[\"ads\",\"malware\"],\"answer\":\"nxdomain\","
    "\"safesearch\":true,\"allow\":[\"ok.ads.test\"],\"block\":[\"Shop.Test.\",\"ads.test\"]},"
    "{\"name\":\"iot\",\"categories\":[\"malware\"],\"answer\":\"null\",\"youtube\":\"strict\"},"
    "{\"name\":\"guests\",\"answer\":\"blockpage\"}],"
    "\"clients\":[{\"match\":\"192.0.2.0/24\",\"group\":\"staff\"},"
    "{\"match\":\"192.0.2.128/25\",\"group\":\"iot\"},"
    "{\"match\":\"192.0.2.77\",\"group\":\"guests\"},"
    "{\"match\":\"fd00:0:0:3::/64\",\"group\":\"iot\"}],"
    "\"default_group\":\"guests\","
    "\"blockpage\":{\"ipv4\":\"192.0.2.1\",\"ipv6\":\"fd00:0:0:1::1\"}}";

static struct policy_set *load_good(void)
{
    char err[256] = "";
    struct policy_set *ps = policy_parse(good, strlen(good), "policy.set", err, sizeof err);
    if (!ps)
        fail_msg("%s", err);
    return ps;
}

static unsigned group_of(const struct policy_set *ps, const char *addr)
{
    uint8_t a[16];
    if (inet_pton(AF_INET, addr, a) == 1)
        return policy_group_for(ps, AF_INET, a);
    assert_int_equal(inet_pton(AF_INET6, addr, a), 1);
    return policy_group_for(ps, AF_INET6, a);
}

static void test_parse_good(void **state)
{
    (void)state;
    struct policy_set *ps = load_good();
    assert_int_equal(policy_group_count(ps), 3);
    const struct policy_group *g = policy_group_get(ps, 0);
    assert_string_equal(g->name, "staff");
    assert_int_equal(g->categories, (1u << DSET_CAT_ADS) | (1u << DSET_CAT_MALWARE));
    assert_int_equal(g->answer, POLICY_ANSWER_NXDOMAIN);
    assert_true(g->safesearch);
    assert_false(g->youtube_strict);
    assert_true(policy_group_get(ps, 1)->youtube_strict);
    assert_int_equal(policy_group_get(ps, 1)->answer, POLICY_ANSWER_NULL);
    assert_int_equal(policy_group_get(ps, 2)->categories, 0);
    assert_null(policy_group_get(ps, 3));
    assert_int_equal(policy_group_find(ps, "iot"), 1);
    assert_int_equal(policy_group_find(ps, "nope"), -1);
    uint8_t a4[4], a6[16];
    assert_int_equal(policy_blockpage_v4(ps, a4), 1);
    assert_int_equal(a4[0], 192);
    assert_int_equal(policy_blockpage_v6(ps, a6), 1);
    policy_free(ps);
}

static void test_client_to_group(void **state)
{
    (void)state;
    struct policy_set *ps = load_good();
    assert_int_equal(group_of(ps, "192.0.2.10"), 0);      /* /24 */
    assert_int_equal(group_of(ps, "192.0.2.200"), 1);     /* /25 beats /24 */
    assert_int_equal(group_of(ps, "192.0.2.77"), 2);      /* /32 beats /24 */
    assert_int_equal(group_of(ps, "198.51.100.10"), 2);   /* default group */
    assert_int_equal(group_of(ps, "fd00:0:0:3::10"), 1);
    assert_int_equal(group_of(ps, "fd00:0:0:4::10"), 2);
    assert_int_equal(group_of(ps, "::ffff:192.0.2.10"), 0);   /* v4-mapped */
    policy_free(ps);
}

static void test_custom_lookup(void **state)
{
    (void)state;
    struct policy_set *ps = load_good();
    size_t off = 99;
    assert_int_equal(policy_custom_lookup(ps, 0, "shop.test", 9, &off), POLICY_CUSTOM_BLOCK);
    assert_int_equal(off, 0);
    assert_int_equal(policy_custom_lookup(ps, 0, "a.b.shop.test", 13, &off), POLICY_CUSTOM_BLOCK);
    assert_int_equal(off, 4);
    assert_int_equal(policy_custom_lookup(ps, 0, "tracker.ads.test", 16, NULL), POLICY_CUSTOM_BLOCK);
    /* allow below a block wins */
    assert_int_equal(policy_custom_lookup(ps, 0, "ok.ads.test", 11, NULL), POLICY_CUSTOM_ALLOW);
    assert_int_equal(policy_custom_lookup(ps, 0, "x.ok.ads.test", 13, NULL), POLICY_CUSTOM_ALLOW);
    assert_int_equal(policy_custom_lookup(ps, 0, "hop.test", 8, NULL), POLICY_CUSTOM_NONE);
    assert_int_equal(policy_custom_lookup(ps, 0, "xshop.test", 10, NULL), POLICY_CUSTOM_NONE);
    /* per group: iot has none */
    assert_int_equal(policy_custom_lookup(ps, 1, "shop.test", 9, NULL), POLICY_CUSTOM_NONE);
    assert_int_equal(policy_custom_lookup(ps, 7, "shop.test", 9, NULL), POLICY_CUSTOM_NONE);
    policy_free(ps);
}

static void test_default(void **state)
{
    (void)state;
    struct policy_set *ps = policy_default(NULL, 0);
    assert_int_equal(policy_group_count(ps), 1);
    assert_int_equal(policy_group_get(ps, 0)->categories, (1u << DSET_CAT_COUNT) - 1);
    assert_int_equal(policy_group_get(ps, 0)->answer, POLICY_ANSWER_NXDOMAIN);
    assert_int_equal(group_of(ps, "192.0.2.10"), 0);
    policy_free(ps);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct { const char *json, *want; } cases[] = {
        { "{", "policy.set: line 1 column 1:" },
        { "[]", "policy.set: expected a JSON object at the top" },
        { "{\"version\":2,\"groups\":[{\"name\":\"a\"}]}", "policy.set: version: expected 1" },
        { "{\"groups\":[{\"name\":\"a\"}]}", "policy.set: version: expected 1" },
        { "{\"version\":1}", "policy.set: groups: expected a non-empty array" },
        { "{\"version\":1,\"groups\":[]}", "policy.set: groups: expected a non-empty array" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"colour\":1}",
          "policy.set: colour: unknown field" },
        { "{\"version\":1,\"groups\":[5]}", "policy.set: groups[0]: expected an object" },
        { "{\"version\":1,\"groups\":[{\"nam\":\"a\"}]}", "policy.set: groups[0].nam: unknown field" },
        { "{\"version\":1,\"groups\":[{}]}", "policy.set: groups[0].name: expected a name" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a b\"}]}", "policy.set: groups[0].name: expected a name" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"},{\"name\":\"a\"}],\"default_group\":\"a\"}",
          "policy.set: groups[1].name: group \"a\" is defined twice" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"categories\":\"ads\"}]}",
          "policy.set: groups[0].categories: expected an array" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"categories\":[\"ads\",\"cats\"]}]}",
          "policy.set: groups[0].categories[1]: unknown category \"cats\" (known: ads|" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"categories\":[3]}]}",
          "policy.set: groups[0].categories[0]: unknown category" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"},{\"name\":\"b\",\"answer\":\"drop\"}],\"default_group\":\"a\"}",
          "policy.set: groups[1].answer: expected one of nxdomain|null|blockpage" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"safesearch\":\"yes\"}]}",
          "policy.set: groups[0].safesearch: expected true or false" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"youtube\":\"loose\"}]}",
          "policy.set: groups[0].youtube: expected one of strict|moderate" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"allow\":\"x.test\"}]}",
          "policy.set: groups[0].allow: expected an array of domain names" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"block\":[1]}]}",
          "policy.set: groups[0].block[0]: expected a string" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"block\":[\"bad name!\"]}]}",
          "policy.set: groups[0].block[0]: \"bad name!\" is not a valid domain name" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"allow\":[\"\"]}]}",
          "policy.set: groups[0].allow[0]: \"\" is not a valid domain name" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"},{\"name\":\"b\"}]}",
          "policy.set: default_group: missing" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"default_group\":\"z\"}",
          "policy.set: default_group: expected the name of a group" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"clients\":{}}",
          "policy.set: clients: expected an array" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"clients\":[[]]}",
          "policy.set: clients[0]: expected an object" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"clients\":[{\"match\":\"192.0.2.0/24\",\"group\":\"a\",\"x\":1}]}",
          "policy.set: clients[0].x: unknown field" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"clients\":[{\"match\":\"192.0.2.0/33\",\"group\":\"a\"}]}",
          "policy.set: clients[0].match: expected an address or CIDR" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"clients\":[{\"match\":\"pc.lan\",\"group\":\"a\"}]}",
          "policy.set: clients[0].match: expected an address or CIDR" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"clients\":[{\"match\":\"192.0.2.10/24\",\"group\":\"a\"}]}",
          "policy.set: clients[0].match: \"192.0.2.10/24\" has host bits set" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"clients\":[{\"match\":\"192.0.2.0/24\",\"group\":\"b\"}]}",
          "policy.set: clients[0].group: expected the name of a group" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"blockpage\":\"192.0.2.1\"}",
          "policy.set: blockpage: expected {" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"blockpage\":{\"ipv4\":\"fd00::1\"}}",
          "policy.set: blockpage.ipv4: expected an IPv4 address" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"blockpage\":{\"ipv6\":\"192.0.2.1\"}}",
          "policy.set: blockpage.ipv6: expected an IPv6 address" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\"}],\"blockpage\":{\"ipv5\":\"x\"}}",
          "policy.set: blockpage.ipv5: unknown field" },
        { "{\"version\":1,\"groups\":[{\"name\":\"a\",\"answer\":\"blockpage\"}]}",
          "policy.set: groups[0].answer: \"blockpage\" needs blockpage.ipv4 or blockpage.ipv6" },
        { "{\"version\":1,\"version\":1,\"groups\":[{\"name\":\"a\"}]}", "policy.set: line 1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        struct policy_set *ps = policy_parse(cases[i].json, strlen(cases[i].json), "policy.set",
                                             err, sizeof err);
        if (ps || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: %s\n  got:  %s\n  want: %s", i, cases[i].json, err, cases[i].want);
    }
}

static void test_file_io_and_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_policyset.XXXXXX", path[256], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/policy.set", dir);
    /* invalid documents are never written */
    assert_int_equal(policy_write_json(path, "{\"version\":1}", 13, err, sizeof err), -1);
    assert_int_equal(access(path, F_OK), -1);
    assert_null(policy_load(path, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(policy_write_json(path, good, strlen(good), err, sizeof err), 0);
    struct policy_set *ps = policy_load(path, err, sizeof err);
    assert_non_null(ps);
    /* serialise and parse again: the same decisions */
    char *json = policy_to_json(ps);
    struct policy_set *ps2 = policy_parse(json, strlen(json), "roundtrip", err, sizeof err);
    if (!ps2)
        fail_msg("%s\n%s", err, json);
    assert_int_equal(group_of(ps2, "192.0.2.200"), 1);
    assert_int_equal(policy_custom_lookup(ps2, 0, "ok.ads.test", 11, NULL), POLICY_CUSTOM_ALLOW);
    assert_int_equal(policy_custom_lookup(ps2, 0, "shop.test", 9, NULL), POLICY_CUSTOM_BLOCK);
    assert_true(policy_group_get(ps2, 1)->youtube_strict);
    free(json);
    policy_free(ps);
    policy_free(ps2);
    /* errors name the file */
    FILE *f = fopen(path, "w");
    fputs("{\"version\":1,\"groups\":[{\"name\":\"a\",\"answer\":\"x\"}]}", f);
    fclose(f);
    assert_null(policy_load(path, err, sizeof err));
    assert_non_null(strstr(err, "policy.set: groups[0].answer: expected one of"));
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_client_to_group),
        cmocka_unit_test(test_custom_lookup),
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_file_io_and_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
