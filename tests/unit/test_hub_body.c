/* API body validation: each refusal names the field a box developer has to fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../services/hub/hubd.h"

#include <stdio.h>
#include <string.h>

#define EXPECT_ERR(call, needle) do { \
        err[0] = '\0'; \
        assert_true((call) < 0); \
        if (!strstr(err, needle)) \
            fail_msg("error '%s' does not mention '%s'", err, needle); \
    } while (0)

static void enroll_bodies(void **state)
{
    (void)state;
    struct hub_enroll_req rq;
    char err[300];
    const char *ok = "{\"code\":\"c\",\"pubkey\":\"p\",\"nonce\":\"n\",\"signature\":\"s\","
                     "\"name\":\"desk\"}";
    assert_int_equal(hub_body_enroll(ok, strlen(ok), &rq, err, sizeof err), 0);
    assert_string_equal(rq.name, "desk");
#define B(s) s, strlen(s), &rq, err, sizeof err
    EXPECT_ERR(hub_body_enroll(B("{\"code\":\"c\"}")), "field 'pubkey': missing");
    EXPECT_ERR(hub_body_enroll(B("{\"code\":5,\"pubkey\":\"p\"}")), "field 'code': expected a string");
    EXPECT_ERR(hub_body_enroll(B("{\"code\":\"c\",\"pubkey\":\"p\",\"nonce\":\"n\",\"signature\":\"s\",\"admin\":true}")),
               "field 'admin': unknown field");
    EXPECT_ERR(hub_body_enroll(B("[1,2]")), "JSON object");
    EXPECT_ERR(hub_body_enroll(B("{\"code\":")), "not JSON");
    EXPECT_ERR(hub_body_enroll(B("{\"code\":\"a\",\"code\":\"b\"}")), "not JSON");
    EXPECT_ERR(hub_body_enroll(B("{\"code\":\"c\\u0001\",\"pubkey\":\"p\",\"nonce\":\"n\",\"signature\":\"s\"}")),
               "control character");
    EXPECT_ERR(hub_body_enroll(B("{\"code\":\"c\\u0000x\",\"pubkey\":\"p\",\"nonce\":\"n\",\"signature\":\"s\"}")),
               "NUL");
    char big[200];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    char body[400];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"pubkey\":\"p\",\"nonce\":\"n\",\"signature\":\"s\"}", big);
    EXPECT_ERR(hub_body_enroll(B(body)), "field 'code': longer than");
#undef B
}

static void heartbeat_bodies(void **state)
{
    (void)state;
    struct hub_heartbeat hb;
    char err[300];
    const char *ok = "{\"version\":\"1.0\",\"feed_seq\":7,\"open_incidents\":2,"
                     "\"counters\":{\"blocked\":10,\"queries\":99}}";
    assert_int_equal(hub_body_heartbeat(ok, strlen(ok), &hb, err, sizeof err), 0);
    assert_int_equal(hb.feed_seq, 7);
    assert_string_equal(hb.counters, "{\"blocked\":10,\"queries\":99}");
#define B(s) s, strlen(s), &hb, err, sizeof err
    EXPECT_ERR(hub_body_heartbeat(B("{\"version\":\"1\"}")), "field 'feed_seq': missing");
    EXPECT_ERR(hub_body_heartbeat(B("{\"version\":\"1\",\"feed_seq\":-1}")), "field 'feed_seq'");
    EXPECT_ERR(hub_body_heartbeat(B("{\"version\":\"1\",\"feed_seq\":1.5}")), "field 'feed_seq'");
    EXPECT_ERR(hub_body_heartbeat(B("{\"version\":\"1\",\"feed_seq\":1,\"counters\":{\"Bad Name\":1}}")),
               "field 'counters': name");
    EXPECT_ERR(hub_body_heartbeat(B("{\"version\":\"1\",\"feed_seq\":1,\"counters\":{\"x\":\"1\"}}")),
               "field 'counters.x'");
    EXPECT_ERR(hub_body_heartbeat(B("{\"version\":\"1\",\"feed_seq\":1,\"counters\":[]}")),
               "field 'counters'");
    EXPECT_ERR(hub_body_heartbeat(B("{\"version\":\"1\",\"feed_seq\":1,\"client_ip\":\"x\"}")),
               "field 'client_ip': unknown");
#undef B
}

static void contribution_bodies(void **state)
{
    (void)state;
    static struct hub_contrib c[HUB_CONTRIB_MAX];
    char err[300];
    const char *ok = "{\"indicators\":[{\"indicator\":\"evil.test\",\"kind\":\"domain\","
                     "\"category\":\"malware\",\"count\":3,\"first_seen\":1,\"last_seen\":2}]}";
    assert_int_equal(hub_body_contrib(ok, strlen(ok), c, HUB_CONTRIB_MAX, err, sizeof err), 1);
    assert_int_equal(c[0].count, 3);
#define B(s) s, strlen(s), c, HUB_CONTRIB_MAX, err, sizeof err
    EXPECT_ERR(hub_body_contrib(B("{\"indicators\":[]}")), "field 'indicators'");
    EXPECT_ERR(hub_body_contrib(B("{\"indicators\":[{\"indicator\":\"a.test\",\"kind\":\"url\",\"category\":\"ads\"}]}")),
               "indicators[0]: field 'kind'");
    EXPECT_ERR(hub_body_contrib(B("{\"indicators\":[{\"indicator\":\"a.test\",\"kind\":\"domain\",\"category\":\"ads\"},"
                                  "{\"indicator\":\"b.test\",\"kind\":\"domain\",\"category\":\"ads\",\"client\":\"192.0.2.10\"}]}")),
               "indicators[1]: field 'client': unknown");
    EXPECT_ERR(hub_body_contrib(B("{\"indicators\":[{\"indicator\":\"a.test\",\"kind\":\"domain\",\"category\":\"ads\",\"count\":0}]}")),
               "indicators[0]: field 'count'");
    EXPECT_ERR(hub_body_contrib(B("{\"indicators\":[7]}")), "indicators[0]: expected an object");
#undef B
    EXPECT_ERR(hub_body_contrib(ok, strlen(ok), c, 0, err, sizeof err), "1..0");
    char ind[300], kind[8];
    const char *fp = "{\"indicator\":\"x\",\"kind\":\"mac\"}";
    EXPECT_ERR(hub_body_fp(fp, strlen(fp), ind, sizeof ind, kind,
                           sizeof kind, err, sizeof err), "field 'kind'");
}

static void policy_bodies(void **state)
{
    (void)state;
    static struct hub_policy pol;
    char err[300];
    const char *ok = "{\"change\":\"{\\\"block\\\":[\\\"x.test\\\"]}\",\"signer\":"
                     "\"0011223344556677\",\"signature\":\"c2ln\"}";
    assert_int_equal(hub_body_policy(ok, strlen(ok), &pol, err, sizeof err), 0);
    assert_string_equal(pol.change, "{\"block\":[\"x.test\"]}");
#define B(s) s, strlen(s), &pol, err, sizeof err
    EXPECT_ERR(hub_body_policy(B("{\"change\":{},\"signer\":\"0011223344556677\",\"signature\":\"s\"}")),
               "field 'change': expected a string");
    EXPECT_ERR(hub_body_policy(B("{\"change\":\"[1]\",\"signer\":\"0011223344556677\",\"signature\":\"s\"}")),
               "field 'change': must be the text of a JSON object");
    EXPECT_ERR(hub_body_policy(B("{\"change\":\"{}\",\"signer\":\"XYZ\",\"signature\":\"s\"}")),
               "field 'signer'");
    EXPECT_ERR(hub_body_policy(B("{\"change\":\"{}\",\"signer\":\"0011223344556677\"}")),
               "field 'signature': missing");
#undef B
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(enroll_bodies),
        cmocka_unit_test(heartbeat_bodies),
        cmocka_unit_test(contribution_bodies),
        cmocka_unit_test(policy_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
