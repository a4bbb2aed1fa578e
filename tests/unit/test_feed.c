/* Feed verification: one test per rejection reason, plus the happy paths. */
#include "feed.h"
#include "domainset.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
static uint8_t pk2[FEED_PUBKEY_BYTES], sk2[FEED_SECKEY_BYTES];
static char doc[8192], sig[256], err[256];
static size_t doclen;
static const int64_t NOW = 1800000000;

/* Builds a feed with n domain entries named e<i>.evil.test. */
static void build(const char *feed, uint64_t seq, int64_t expires, int n, const uint8_t *key)
{
    struct feed_manifest m = { .seq = seq, .created = NOW - 10, .expires = expires,
                               .count = (uint64_t)n, .type = FEED_SNAPSHOT };
    snprintf(m.feed, sizeof m.feed, "%s", feed);
    uint8_t kpk[FEED_PUBKEY_BYTES];
    memcpy(kpk, key == sk ? pk : pk2, sizeof kpk);
    feed_key_id(kpk, m.signer);
    int k = feed_format_manifest(&m, doc, sizeof doc);
    assert_true(k > 0);
    doclen = (size_t)k;
    for (int i = 0; i < n; i++) {
        struct feed_entry e = { .kind = FEED_KIND_DOMAIN, .category = DSET_CAT_MALWARE,
                                .action = FEED_ACT_BLOCK, .confidence = 90 };
        snprintf(e.indicator, sizeof e.indicator, "e%d.evil.test", i);
        snprintf(e.source, sizeof e.source, "unit");
        k = feed_format_entry(&e, doc + doclen, sizeof doc - doclen);
        assert_true(k > 0);
        doclen += (size_t)k;
    }
    assert_true(feed_sign(doc, doclen, key, sig, sizeof sig) > 0);
}

static enum feed_reason verify(uint64_t last_seq, size_t max, struct feed_manifest *m)
{
    struct feed_expect x = { .feed_id = "community", .pubkey = pk, .last_seq = last_seq,
                             .now = NOW, .max_bytes = max };
    return feed_verify(doc, doclen, sig, strlen(sig), &x, m, err, sizeof err);
}

static int count_cb(const struct feed_entry *e, void *ctx)
{
    assert_int_equal(e->kind, FEED_KIND_DOMAIN);
    assert_int_equal(e->category, DSET_CAT_MALWARE);
    (*(int *)ctx)++;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(feed_keygen(pk, sk), 0);
    assert_int_equal(feed_keygen(pk2, sk2), 0);
    return 0;
}

static void test_good(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 3, sk);
    assert_int_equal(verify(4, 0, &m), FEED_OK);
    assert_int_equal(m.seq, 5);
    assert_int_equal(m.count, 3);
    int n = 0;
    assert_int_equal(feed_foreach_entry(doc, doclen, &m, count_cb, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
}

static void test_unsigned(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 1, sk);
    struct feed_expect x = { .feed_id = "community", .pubkey = pk, .now = NOW };
    assert_int_equal(feed_verify(doc, doclen, NULL, 0, &x, &m, err, sizeof err),
                     FEED_UNSIGNED);
    assert_int_equal(feed_verify(doc, doclen, "\n", 1, &x, &m, err, sizeof err),
                     FEED_UNSIGNED);
}

static void test_bad_signature(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 2, sk);
    doc[doclen - 5] ^= 1; /* flip one bit of an entry: content tampered */
    assert_int_equal(verify(0, 0, &m), FEED_BAD_SIGNATURE);
    assert_non_null(strstr(err, "does not match"));
}

static void test_malformed_signature(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 1, sk);
    snprintf(sig, sizeof sig, "otasuke-sig/1 zz notbase64\n");
    assert_int_equal(verify(0, 0, &m), FEED_SIG_MALFORMED);
}

static void test_wrong_key(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 1, sk2);
    assert_int_equal(verify(0, 0, &m), FEED_WRONG_KEY);
    assert_non_null(strstr(err, "pinned key"));
}

static void test_wrong_feed(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("other-feed", 5, NOW + 3600, 1, sk);
    assert_int_equal(verify(0, 0, &m), FEED_WRONG_FEED);
}

static void test_rollback(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 1, sk);
    assert_int_equal(verify(5, 0, &m), FEED_ROLLBACK);
    assert_int_equal(verify(9, 0, &m), FEED_ROLLBACK);
    assert_non_null(strstr(err, "rollback"));
}

static void test_expired(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW - 1, 1, sk);
    assert_int_equal(verify(0, 0, &m), FEED_EXPIRED);
}

static void test_truncated(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 3, sk);
    /* Cut off the last entry and re-sign: the manifest count catches it even when the
     * signer signed the short bytes (a hub bug or a cut upload). */
    char *last = doc + doclen - 2;
    while (*last != '\n')
        last--;
    doclen = (size_t)(last - doc) + 1;
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify(0, 0, &m), FEED_TRUNCATED);
    /* Truncated in transit (signature over the whole): caught by the signature. */
    build("community", 5, NOW + 3600, 3, sk);
    doclen -= 10;
    assert_int_equal(verify(0, 0, &m), FEED_BAD_SIGNATURE);
}

static void test_oversized(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 3, sk);
    assert_int_equal(verify(0, 100, &m), FEED_OVERSIZED);
}

static void test_bad_json_after_good_signature(void **state)
{
    (void)state;
    struct feed_manifest m;
    build("community", 5, NOW + 3600, 2, sk);
    /* A signed feed whose second entry is broken JSON: verification passes (the bytes
     * are the signer's), entry parsing refuses with the line number. */
    memcpy(doc + doclen - 4, "xx\"\n", 4);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify(0, 0, &m), FEED_OK);
    int n = 0;
    assert_int_equal(feed_foreach_entry(doc, doclen, &m, count_cb, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 3"));
    /* A broken manifest after a good signature. */
    build("community", 5, NOW + 3600, 1, sk);
    doc[0] = '[';
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify(0, 0, &m), FEED_BAD_MANIFEST);
}

static void test_entry_errors(void **state)
{
    (void)state;
    struct feed_entry e;
    const char *ok = "{\"indicator\":\"Evil.Test.\",\"kind\":\"domain\",\"category\":\"c2\","
                     "\"action\":\"block\"}";
    assert_int_equal(feed_parse_entry(ok, strlen(ok), 0, &e, err, sizeof err), 0);
    assert_string_equal(e.indicator, "evil.test");
    assert_int_equal(e.confidence, 100);
    static const struct { const char *line; const char *want; } bad[] = {
        { "{\"indicator\":\"x.test\",\"kind\":\"domain\",\"action\":\"block\"}", "category" },
        { "{\"indicator\":\"x.test\",\"kind\":\"host\",\"category\":\"ads\",\"action\":\"block\"}", "kind" },
        { "{\"indicator\":\"x.test\",\"kind\":\"domain\",\"category\":\"nope\",\"action\":\"block\"}", "category" },
        { "{\"indicator\":\"x.test\",\"kind\":\"domain\",\"category\":\"ads\",\"action\":\"remove\"}", "action" },
        { "{\"indicator\":\"1.2.3\",\"kind\":\"ipv4\",\"category\":\"c2\",\"action\":\"block\"}", "indicator" },
        { "{\"indicator\":\"10.0.0.0/33\",\"kind\":\"cidr\",\"category\":\"c2\",\"action\":\"block\"}", "indicator" },
        { "{\"indicator\":\"x.test\",\"kind\":\"domain\",\"category\":\"ads\",\"action\":\"block\",\"extra\":1}", "extra" },
        { "{\"indicator\":5,\"kind\":\"domain\",\"category\":\"ads\",\"action\":\"block\"}", "indicator" },
        { "{\"indicator\":\"x.test\",\"kind\":\"domain\",\"category\":\"ads\",\"action\":\"block\",\"confidence\":101}", "confidence" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(feed_parse_entry(bad[i].line, strlen(bad[i].line), 0, &e, err,
                                          sizeof err), -1);
        assert_non_null(strstr(err, bad[i].want));
    }
    const char *rm = "{\"indicator\":\"2001:db8::/32\",\"kind\":\"cidr\",\"action\":\"remove\"}";
    assert_int_equal(feed_parse_entry(rm, strlen(rm), 1, &e, err, sizeof err), 0);
}

static void test_delta_base(void **state)
{
    (void)state;
    struct feed_manifest m = { .seq = 7, .base = 6, .type = FEED_DELTA, .created = NOW,
                               .expires = NOW + 60, .count = 0 };
    snprintf(m.feed, sizeof m.feed, "community");
    feed_key_id(pk, m.signer);
    doclen = (size_t)feed_format_manifest(&m, doc, sizeof doc);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    struct feed_manifest out;
    assert_int_equal(verify(6, 0, &out), FEED_OK);
    assert_int_equal(verify(5, 0, &out), FEED_BAD_BASE);
}

static void test_keys_roundtrip(void **state)
{
    (void)state;
    char text[128];
    uint8_t back[FEED_PUBKEY_BYTES];
    assert_int_equal(feed_key_encode(pk, sizeof pk, text, sizeof text), 0);
    assert_int_equal(feed_key_decode(text, back, sizeof back, err, sizeof err), 0);
    assert_memory_equal(pk, back, sizeof pk);
    assert_int_equal(feed_key_decode("AAAA", back, sizeof back, err, sizeof err), -1);
    char s64[128];
    assert_int_equal(feed_sig_sign_b64("hello", 5, sk, s64, sizeof s64), 0);
    assert_int_equal(feed_sig_verify_b64("hello", 5, s64, pk), 0);
    assert_int_equal(feed_sig_verify_b64("hellp", 5, s64, pk), -1);
    assert_int_equal(feed_sig_verify_b64("hello", 5, s64, pk2), -1);
    assert_int_equal(feed_sig_verify_b64("hello", 5, "garbage", pk), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_unsigned),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_malformed_signature),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_wrong_feed),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_bad_json_after_good_signature),
        cmocka_unit_test(test_entry_errors),
        cmocka_unit_test(test_delta_base),
        cmocka_unit_test(test_keys_roundtrip),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
