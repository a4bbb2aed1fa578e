/* Enrolment: one-time codes (single use, expiry, unknown), proof of key possession,
 * nonce single use, duplicate keys, revocation, secrets stored only hashed, and org
 * pseudonyms (keyed, stable, distinct). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hub_test_util.h"

#include <sodium.h>

static long org;

static int setup(void **state)
{
    static struct hub h;
    if (hub_test_open(&h, 3) < 0)
        return -1;
    char err[300];
    org = hub_org_add(&h, "acme", err, sizeof err);
    if (org < 0)
        return -1;
    *state = &h;
    return 0;
}

static int teardown(void **state)
{
    unsetenv("OTASUKE_HUB_NOW_OFFSET");
    hub_test_close(*state);
    return 0;
}

/* Builds a signed request the way a box does. */
static void make_req(struct hub *h, const char *code, uint8_t sk[FEED_SECKEY_BYTES],
                     struct hub_enroll_req *rq, int fresh_key)
{
    uint8_t pk[FEED_PUBKEY_BYTES];
    char err[300];
    if (fresh_key)
        assert_int_equal(feed_keygen(pk, sk), 0);
    else
        crypto_sign_ed25519_sk_to_pk(pk, sk);
    memset(rq, 0, sizeof *rq);
    snprintf(rq->code, sizeof rq->code, "%s", code);
    feed_key_encode(pk, sizeof pk, rq->pubkey, sizeof rq->pubkey);
    assert_int_equal(hub_challenge_new(h, rq->nonce, sizeof rq->nonce, err, sizeof err), 0);
    char msg[400];
    assert_true(hub_enroll_message(rq->nonce, rq->pubkey, code, msg, sizeof msg) > 0);
    assert_int_equal(feed_sig_sign_b64(msg, strlen(msg), sk, rq->signature,
                                       sizeof rq->signature), 0);
    snprintf(rq->name, sizeof rq->name, "front-desk");
}

static void code_is_single_use(void **state)
{
    struct hub *h = *state;
    char code[64], err[300];
    uint8_t sk[FEED_SECKEY_BYTES];
    struct hub_enroll_req rq;
    struct hub_enroll_res rs;
    assert_int_equal(hub_code_create(h, org, 600, code, sizeof code, err, sizeof err), 0);
    make_req(h, code, sk, &rq, 1);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 0);
    assert_true(rs.box_id > 0);
    assert_int_equal(rs.org_id, org);
    assert_int_equal(strlen(rs.token), HUB_TOKEN_HEX);
    long o2 = 0;
    assert_int_equal(hub_box_auth(h, rs.token, &o2, err, sizeof err), rs.box_id);
    assert_int_equal(o2, org);
    make_req(h, code, sk, &rq, 1);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 403);
    assert_non_null(strstr(err, "already used"));
}

static void expired_and_unknown_codes_refused(void **state)
{
    struct hub *h = *state;
    char code[64], err[300];
    uint8_t sk[FEED_SECKEY_BYTES];
    struct hub_enroll_req rq;
    struct hub_enroll_res rs;
    assert_int_equal(hub_code_create(h, org, 60, code, sizeof code, err, sizeof err), 0);
    setenv("OTASUKE_HUB_NOW_OFFSET", "61", 1);
    make_req(h, code, sk, &rq, 1);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 403);
    assert_non_null(strstr(err, "expired"));
    unsetenv("OTASUKE_HUB_NOW_OFFSET");
    make_req(h, "00112233445566778899aabbccddeeff", sk, &rq, 1);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 403);
    assert_non_null(strstr(err, "unknown enrolment code"));
    assert_int_equal(hub_code_create(h, org, 0, code, sizeof code, err, sizeof err), -1);
}

static void key_proof_and_nonce_checked(void **state)
{
    struct hub *h = *state;
    char code[64], err[300];
    uint8_t sk[FEED_SECKEY_BYTES], other[FEED_SECKEY_BYTES], opk[FEED_PUBKEY_BYTES];
    struct hub_enroll_req rq;
    struct hub_enroll_res rs;
    assert_int_equal(hub_code_create(h, org, 600, code, sizeof code, err, sizeof err), 0);
    /* Signed by another key than the one presented. */
    make_req(h, code, sk, &rq, 1);
    feed_keygen(opk, other);
    char msg[400];
    hub_enroll_message(rq.nonce, rq.pubkey, code, msg, sizeof msg);
    feed_sig_sign_b64(msg, strlen(msg), other, rq.signature, sizeof rq.signature);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 403);
    assert_non_null(strstr(err, "signature"));
    /* A nonce the hub never issued. */
    make_req(h, code, sk, &rq, 1);
    snprintf(rq.nonce, sizeof rq.nonce, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    hub_enroll_message(rq.nonce, rq.pubkey, code, msg, sizeof msg);
    feed_sig_sign_b64(msg, strlen(msg), sk, rq.signature, sizeof rq.signature);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 403);
    assert_non_null(strstr(err, "nonce"));
    /* The code survived both failures; a replay of a good request does not. */
    make_req(h, code, sk, &rq, 1);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 0);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 403);
    /* Same box key again with a new code: 409, and that code stays unused. */
    assert_int_equal(hub_code_create(h, org, 600, code, sizeof code, err, sizeof err), 0);
    make_req(h, code, sk, &rq, 0);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 409);
    make_req(h, code, sk, &rq, 1);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 0);
}

static int find_secret(int n, const char *const *v, void *ctx)
{
    const char *secret = ctx;
    for (int i = 0; i < n; i++)
        if (v[i] && strstr(v[i], secret))
            fail_msg("secret stored in clear: %s", v[i]);
    return 0;
}

static void revoke_and_secrets_hashed(void **state)
{
    struct hub *h = *state;
    char code[64], err[300];
    uint8_t sk[FEED_SECKEY_BYTES];
    struct hub_enroll_req rq;
    struct hub_enroll_res rs;
    assert_int_equal(hub_code_create(h, org, 600, code, sizeof code, err, sizeof err), 0);
    make_req(h, code, sk, &rq, 1);
    assert_int_equal(hub_enroll(h, &rq, &rs, err, sizeof err), 0);
    hubdb_exec(h->db, "SELECT * FROM boxes", 0, NULL, find_secret, rs.token, err, sizeof err);
    hubdb_exec(h->db, "SELECT * FROM boxes", 0, NULL, find_secret, rs.mqtt_pass, err, sizeof err);
    hubdb_exec(h->db, "SELECT * FROM codes", 0, NULL, find_secret, code, err, sizeof err);
    assert_int_equal(hub_box_revoke(h, rs.box_id, err, sizeof err), 0);
    assert_int_equal(hub_box_auth(h, rs.token, NULL, err, sizeof err), 0);
    assert_int_equal(hub_box_revoke(h, rs.box_id, err, sizeof err), -1);
    assert_int_equal(hub_box_auth(h, "short", NULL, err, sizeof err), 0);
    /* The broker's file lists only active boxes, hashed. */
    assert_int_equal(hub_mqtt_write_files(h, err, sizeof err), 0);
    char path[600], buf[4096] = "";
    snprintf(path, sizeof path, "%s/passwd", h->mqtt_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_null(strstr(buf, rs.mqtt_user));
    assert_null(strstr(buf, rs.mqtt_pass));
    assert_non_null(strstr(buf, "hubd:$7$101$"));
}

static void pseudonyms_keyed_and_stable(void **state)
{
    struct hub *h = *state;
    char a[HUB_PSEUD_HEX + 1], b[HUB_PSEUD_HEX + 1], c[HUB_PSEUD_HEX + 1];
    hub_org_pseudonym(h->pseud_key, 1, a);
    hub_org_pseudonym(h->pseud_key, 1, b);
    assert_string_equal(a, b);
    hub_org_pseudonym(h->pseud_key, 2, c);
    assert_string_not_equal(a, c);
    uint8_t other[32];
    memcpy(other, h->pseud_key, 32);
    other[0] ^= 1;
    hub_org_pseudonym(other, 1, c);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), HUB_PSEUD_HEX);
    /* Contributions carry the pseudonym, never the org id or box. */
    struct hub_contrib ct = { .indicator = "p.test", .kind = "domain", .category = "ads",
                              .count = 1 };
    char err[300];
    assert_true(hub_contribute(h, 1, &ct, err, sizeof err) >= 0);
    char v[80];
    assert_int_equal(hubdb_scalar(h->db, "SELECT org_pseud FROM contributions", 0, NULL, v,
                                  sizeof v, err, sizeof err), 1);
    assert_string_equal(v, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(code_is_single_use, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_and_unknown_codes_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(key_proof_and_nonce_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(revoke_and_secrets_hashed, setup, teardown),
        cmocka_unit_test_setup_teardown(pseudonyms_keyed_and_stable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
