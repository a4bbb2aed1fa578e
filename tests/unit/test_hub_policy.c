/* Hub: a box's verdict on a relayed policy message (first one stands, only the box's own
 * messages, the operator's list shows it), the body that carries it, and the enrolment
 * rate limit per source address. */
#include "hub_test_util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static long add_box(struct hub *h, long org, const char *user)
{
    char o[24], id[24];
    snprintf(o, sizeof o, "%ld", org);
    const char *p[] = { o, user };
    assert_int_equal(hubdb_scalar(h->db, "INSERT INTO boxes (org_id, name, pubkey, token_hash, "
                                  "mqtt_user, mqtt_pwhash, enrolled) VALUES ($1, $2, $2, $2, $2, "
                                  "'x', 1) RETURNING id", 2, p, id, sizeof id, NULL, 0), 1);
    return strtol(id, NULL, 10);
}

static void test_policy_result(void **st)
{
    (void)st;
    struct hub h;
    char err[300], user[48];
    assert_int_equal(hub_test_open(&h, 3), 0);
    long org = hub_org_add(&h, "org1", err, sizeof err);
    assert_true(org > 0);
    long b1 = add_box(&h, org, "box-a"), b2 = add_box(&h, org, "box-b");
    static struct hub_policy pol;
    memset(&pol, 0, sizeof pol);
    snprintf(pol.change, sizeof pol.change, "{\"delegate\":\"msp\"}");
    snprintf(pol.signer, sizeof pol.signer, "0123456789abcdef");
    snprintf(pol.signature, sizeof pol.signature, "eA==");
    long m1 = hub_policy_relay(&h, b1, "op", &pol, user, sizeof user, err, sizeof err);
    long m2 = hub_policy_relay(&h, b1, "op", &pol, user, sizeof user, err, sizeof err);
    assert_true(m1 > 0 && m2 > m1);
    assert_string_equal(user, "box-a");

    json_t *l = hub_policy_list(&h, b1, 0, err, sizeof err);
    assert_non_null(l);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "result")),
                        "pending");
    json_decref(l);

    assert_int_equal(hub_policy_result(&h, b1, m1, "applied", "1 change applied", err,
                                       sizeof err), 1);
    /* the first verdict stands */
    assert_int_equal(hub_policy_result(&h, b1, m1, "refused", "later", err, sizeof err), 1);
    /* "failed" (the box could not store it yet) is no verdict: the next answer replaces it */
    assert_int_equal(hub_policy_result(&h, b1, m2, "failed", "the box's database could not "
                                       "start a transaction (database is locked)", err,
                                       sizeof err), 1);
    l = hub_policy_list(&h, b1, m1, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "result")),
                        "failed");
    json_decref(l);
    assert_int_equal(hub_policy_result(&h, b1, m2, "refused", "changes[0]: add_block of "
                                       "'x.test' is outside every live grant of 'msp'", err,
                                       sizeof err), 1);
    /* another box cannot answer for it; unknown ids are not found */
    assert_int_equal(hub_policy_result(&h, b2, m1, "refused", "", err, sizeof err), 0);
    assert_int_equal(hub_policy_result(&h, b1, m2 + 100, "applied", "", err, sizeof err), 0);

    l = hub_policy_list(&h, b1, 0, err, sizeof err);
    assert_non_null(l);
    json_t *a = json_array_get(l, 0), *b = json_array_get(l, 1);
    assert_string_equal(json_string_value(json_object_get(a, "result")), "applied");
    assert_string_equal(json_string_value(json_object_get(a, "result_detail")),
                        "1 change applied");
    assert_true(json_integer_value(json_object_get(a, "result_at")) > 0);
    assert_string_equal(json_string_value(json_object_get(b, "result")), "refused");
    assert_non_null(strstr(json_string_value(json_object_get(b, "result_detail")),
                           "outside every live grant"));
    json_decref(l);
    l = hub_policy_list(&h, b1, m1, err, sizeof err);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    l = hub_policy_list(&h, b2, 0, err, sizeof err);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    char n[24];
    assert_int_equal(hubdb_scalar(h.db, "SELECT count(*) FROM audit WHERE action = "
                                  "'policy-result'", 0, NULL, n, sizeof n, err, sizeof err), 1);
    assert_string_equal(n, "3");
    hub_test_close(&h);
}

static void test_policy_result_body(void **st)
{
    (void)st;
    char s[16], d[HUB_POLICY_DETAIL_MAX + 1], err[300];
    const char *ok = "{\"status\":\"refused\",\"detail\":\"outside grant\"}";
    assert_int_equal(hub_body_policy_result(ok, strlen(ok), s, sizeof s, d, sizeof d, err,
                                            sizeof err), 0);
    assert_string_equal(s, "refused");
    assert_string_equal(d, "outside grant");
    const char *bad[][2] = {
        { "{\"status\":\"maybe\"}", "field 'status': expected applied|refused|failed" },
        { "{\"detail\":\"x\"}", "field 'status': missing" },
        { "{\"status\":\"applied\",\"client\":\"192.0.2.10\"}", "field 'client': unknown field" },
        { "[1]", "body must be a JSON object" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(hub_body_policy_result(bad[i][0], strlen(bad[i][0]), s, sizeof s, d,
                                                sizeof d, err, sizeof err), -1);
        assert_string_equal(err, bad[i][1]);
    }
}

static void test_enroll_rate_limit(void **st)
{
    (void)st;
    char err[300];
    hub_enroll_limit_set(3, 2);
    long long t = 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(hub_enroll_limit_check("198.18.0.2", t, err, sizeof err), 0);
    int wait = hub_enroll_limit_check("198.18.0.2", t + 10, err, sizeof err);
    assert_int_equal(wait, 50);
    assert_non_null(strstr(err, "too many enrolment requests from 198.18.0.2"));
    /* another address has its own budget */
    assert_int_equal(hub_enroll_limit_check("fd00:0:0:100::2", t + 10, err, sizeof err), 0);
    hub_enroll_limit_failed("fd00:0:0:100::2", t + 10);
    hub_enroll_limit_failed("fd00:0:0:100::2", t + 11);
    assert_true(hub_enroll_limit_check("fd00:0:0:100::2", t + 12, err, sizeof err) > 0);
    assert_non_null(strstr(err, "too many failed enrolment attempts from fd00:0:0:100::/64 (2"));
    /* another address of the same /64 is the same host as far as the limit goes */
    assert_true(hub_enroll_limit_check("fd00:0:0:100::99", t + 12, err, sizeof err) > 0);
    assert_int_equal(hub_enroll_limit_check("fd00:0:0:101::2", t + 12, err, sizeof err), 0);
    /* a minute later both may try again */
    assert_int_equal(hub_enroll_limit_check("198.18.0.2", t + 60, err, sizeof err), 0);
    assert_int_equal(hub_enroll_limit_check("fd00:0:0:100::2", t + 72, err, sizeof err), 0);
    /* many addresses: the table stays bounded and keeps working */
    char a[48];
    for (int i = 0; i < 5000; i++) {
        snprintf(a, sizeof a, "198.18.%d.%d", i / 250, i % 250);
        hub_enroll_limit_check(a, t + 100, err, sizeof err);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(hub_enroll_limit_check("203.0.113.7", t + 100, err, sizeof err), 0);
    assert_true(hub_enroll_limit_check("203.0.113.7", t + 100, err, sizeof err) > 0);
    hub_enroll_limit_set(HUB_ENROLL_ATTEMPTS_PER_MIN, HUB_ENROLL_FAILURES_PER_MIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_result),
        cmocka_unit_test(test_policy_result_body),
        cmocka_unit_test(test_enroll_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
