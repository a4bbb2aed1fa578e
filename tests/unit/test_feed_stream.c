/* Streaming feed verification (feed_stream.c) against the in-memory path (feed.c) and
 * libsodium's own Ed25519 verifier: the same verdict on valid, damaged and hostile
 * inputs, every refusal reason, entries that straddle the 64 KiB read chunks. */
#include "feed.h"
#include "domainset.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

static uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
static uint8_t pk2[FEED_PUBKEY_BYTES], sk2[FEED_SECKEY_BYTES];
static char *doc, sig[256], err[256], err2[256];
static size_t doclen, doccap;
static const int64_t NOW = 1800000000;

/* A file holding bytes, rewound; the caller closes it. */
static int file_of(const void *p, size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = dup(fileno(f));
    fclose(f);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    return fd;
}

static void put(const char *s, size_t n)
{
    if (doclen + n + 1 > doccap) {
        doccap = (doclen + n + 1) * 2;
        doc = realloc(doc, doccap);
        assert_non_null(doc);
    }
    memcpy(doc + doclen, s, n);
    doclen += n;
}

/* n entries e<i>.evil.test (long names when pad, so lines cross chunk borders). */
static void build(enum feed_type type, uint64_t seq, uint64_t base, int n, int pad,
                  const uint8_t *key)
{
    struct feed_manifest m = { .seq = seq, .base = base, .created = NOW - 10,
                               .expires = NOW + 3600, .count = (uint64_t)n, .type = type };
    char line[1024];
    snprintf(m.feed, sizeof m.feed, "community");
    feed_key_id(key == sk ? pk : pk2, m.signer);
    doclen = 0;
    int k = feed_format_manifest(&m, line, sizeof line);
    assert_true(k > 0);
    put(line, (size_t)k);
    for (int i = 0; i < n; i++) {
        struct feed_entry e = { .kind = FEED_KIND_DOMAIN, .category = DSET_CAT_MALWARE,
                                .action = FEED_ACT_BLOCK, .confidence = 90 };
        snprintf(e.indicator, sizeof e.indicator, "e%d.%s.evil.test", i,
                 pad ? "a-rather-long-label-that-makes-the-line-longer-than-usual" : "x");
        snprintf(e.source, sizeof e.source, "unit");
        k = feed_format_entry(&e, line, sizeof line);
        assert_true(k > 0);
        put(line, (size_t)k);
    }
    assert_true(feed_sign(doc, doclen, key, sig, sizeof sig) > 0);
}

/* Both paths on the current doc; asserts they agree and returns the reason. */
static enum feed_reason verify_both(uint64_t last_seq, size_t max, const char *s,
                                    struct feed_manifest *m)
{
    struct feed_expect x = { .feed_id = "community", .pubkey = pk, .last_seq = last_seq,
                             .now = NOW, .max_bytes = max };
    struct feed_manifest m2;
    size_t sl = s ? strlen(s) : 0;
    enum feed_reason a = feed_verify(doc, doclen, s, sl, &x, &m2, err2, sizeof err2);
    int fd = file_of(doc, doclen);
    enum feed_reason b = feed_verify_fd(fd, s, sl, &x, m, err, sizeof err);
    close(fd);
    if (a != b)
        fail_msg("memory path says %s (%s), file path says %s (%s)", feed_reason_name(a),
                 err2, feed_reason_name(b), err);
    if (a == FEED_OK) {
        assert_int_equal(m->seq, m2.seq);
        assert_int_equal(m->count, m2.count);
        assert_int_equal(m->entries_offset, m2.entries_offset);
    }
    return b;
}

struct collect {
    unsigned n;
    unsigned long hash;
};

static int collect_cb(const struct feed_entry *e, void *ctx)
{
    struct collect *c = ctx;
    c->n++;
    for (const char *p = e->indicator; *p; p++)
        c->hash = c->hash * 31 + (unsigned char)*p;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(feed_keygen(pk, sk), 0);
    assert_int_equal(feed_keygen(pk2, sk2), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(doc);
    return 0;
}

/* Raw Ed25519: libsodium and the streaming check agree, message by message. */
static void test_raw_signatures_agree(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 63, 64, 65535, 65536, 65537, 200000 };
    uint8_t s[64];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *msg = malloc(n + 1);
        assert_non_null(msg);
        randombytes_buf(msg, n);
        crypto_sign_detached(s, NULL, msg, n, sk);
        int fd = file_of(msg, n);
        assert_int_equal(crypto_sign_verify_detached(s, msg, n, pk), 0);
        assert_int_equal(feed_sig_verify_fd(fd, n, s, pk), 0);
        /* the other key */
        assert_int_not_equal(feed_sig_verify_fd(fd, n, s, pk2), 0);
        /* every flipped byte of the signature (R and S halves) */
        for (int b = 0; b < 64; b++) {
            s[b] ^= 0x01;
            assert_int_not_equal(crypto_sign_verify_detached(s, msg, n, pk), 0);
            assert_int_not_equal(feed_sig_verify_fd(fd, n, s, pk), 0);
            s[b] ^= 0x01;
        }
        close(fd);
        if (n) {
            msg[n / 2] ^= 0x80;
            fd = file_of(msg, n);
            assert_int_not_equal(crypto_sign_verify_detached(s, msg, n, pk), 0);
            assert_int_not_equal(feed_sig_verify_fd(fd, n, s, pk), 0);
            close(fd);
            /* a prefix of the file is a different message */
            msg[n / 2] ^= 0x80;
            fd = file_of(msg, n);
            assert_int_not_equal(feed_sig_verify_fd(fd, n - 1, s, pk), 0);
            close(fd);
        }
        free(msg);
    }
}

/* S + L is the same point equation but not canonical: both verifiers refuse it
 * (signature malleability). L = 2^252 + 27742317777372353535851937790883648493. */
static void test_noncanonical_s_refused(void **state)
{
    (void)state;
    static const uint8_t L[32] = {
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
        0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x10,
    };
    const char msg[] = "otasuke";
    uint8_t s[64];
    for (int tries = 0; tries < 64; tries++) {
        uint8_t m[sizeof msg + 1];
        memcpy(m, msg, sizeof msg);
        m[sizeof msg] = (uint8_t)tries;
        crypto_sign_detached(s, NULL, m, sizeof m, sk);
        /* S + L still fits in 256 bits only when S's top byte is small; find one */
        if (s[63] > 0x0f)
            continue;
        unsigned carry = 0;
        for (int i = 0; i < 32; i++) {
            unsigned v = s[32 + i] + L[i] + carry;
            s[32 + i] = (uint8_t)v;
            carry = v >> 8;
        }
        assert_int_equal(carry, 0);
        int fd = file_of(m, sizeof m);
        assert_int_not_equal(crypto_sign_verify_detached(s, m, sizeof m, pk), 0);
        assert_int_not_equal(feed_sig_verify_fd(fd, sizeof m, s, pk), 0);
        close(fd);
        return;
    }
    fail_msg("no signature with a small S in 64 tries");
}

static void test_good_and_entries_across_chunks(void **state)
{
    (void)state;
    struct feed_manifest m;
    build(FEED_SNAPSHOT, 5, 0, 3000, 1, sk);   /* ~400 KB: many chunk borders */
    assert_true(doclen > 4 * 65536);
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_OK);
    struct collect a = { 0, 0 }, b = { 0, 0 };
    assert_int_equal(feed_foreach_entry(doc, doclen, &m, collect_cb, &a, err, sizeof err), 0);
    int fd = file_of(doc, doclen);
    assert_int_equal(feed_foreach_entry_fd(fd, &m, collect_cb, &b, err, sizeof err), 0);
    close(fd);
    assert_int_equal(a.n, 3000);
    assert_int_equal(b.n, 3000);
    assert_true(a.hash == b.hash);
}

static void test_every_refusal_agrees(void **state)
{
    (void)state;
    struct feed_manifest m;
    build(FEED_SNAPSHOT, 5, 0, 10, 0, sk);
    assert_int_equal(verify_both(4, 0, NULL, &m), FEED_UNSIGNED);
    assert_int_equal(verify_both(4, 0, "\n", &m), FEED_UNSIGNED);
    assert_int_equal(verify_both(4, 0, "otasuke-sig/1 zz", &m), FEED_SIG_MALFORMED);
    assert_int_equal(verify_both(4, 100, sig, &m), FEED_OVERSIZED);
    assert_int_equal(verify_both(5, 0, sig, &m), FEED_ROLLBACK);
    assert_int_equal(m.seq, 5);   /* filled: the agent tells a replay from a rollback */
    assert_int_equal(verify_both(9, 0, sig, &m), FEED_ROLLBACK);
    /* tampered byte in an entry */
    doc[doclen - 20] ^= 0x01;
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_BAD_SIGNATURE);
    doc[doclen - 20] ^= 0x01;
    /* truncated by one line, signature of the whole */
    size_t full = doclen;
    doclen = (size_t)(strrchr(doc, '\n') - doc);   /* drops the final newline */
    doclen = (size_t)((const char *)memrchr(doc, '\n', doclen) - doc) + 1;
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_BAD_SIGNATURE);
    /* truncated and re-signed: count mismatch */
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_TRUNCATED);
    /* no final newline, re-signed */
    doclen = full - 1;
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_TRUNCATED);
    /* the other key */
    build(FEED_SNAPSHOT, 5, 0, 10, 0, sk2);
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_WRONG_KEY);
    /* another feed id, expired */
    build(FEED_SNAPSHOT, 5, 0, 2, 0, sk);
    memcpy(strstr(doc, "community"), "commonity", 9);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_WRONG_FEED);
    /* delta on another base */
    build(FEED_DELTA, 7, 6, 2, 0, sk);
    assert_int_equal(verify_both(6, 0, sig, &m), FEED_OK);
    assert_int_equal(verify_both(5, 0, sig, &m), FEED_BAD_BASE);
    assert_int_equal(verify_both(0, 0, sig, &m), FEED_BAD_BASE);
    /* not a manifest, validly signed */
    doclen = 0;
    put("{\"format\":\"otasuke-feed/1\"\n", 27);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify_both(0, 0, sig, &m), FEED_BAD_MANIFEST);
    /* a manifest line longer than the file path's 4 KiB bound */
    doclen = 0;
    put("{\"format\":\"", 11);
    for (int i = 0; i < 5000; i++)
        put("x", 1);
    put("\"}\n", 3);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    int fd = file_of(doc, doclen);
    struct feed_expect x = { .feed_id = "community", .pubkey = pk, .now = NOW };
    assert_int_equal(feed_verify_fd(fd, sig, strlen(sig), &x, &m, err, sizeof err),
                     FEED_BAD_MANIFEST);
    assert_non_null(strstr(err, "longer than"));
    close(fd);
}

static void test_bad_entry_line_number(void **state)
{
    (void)state;
    struct feed_manifest m;
    build(FEED_SNAPSHOT, 5, 0, 2000, 1, sk);
    /* break entry 1500 (line 1501 of the file + manifest = line 1502) */
    char *p = doc;
    for (int i = 0; i < 1501; i++)
        p = strchr(p, '\n') + 1;
    memcpy(strstr(p, "\"domain\""), "\"domian\"", 8);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(verify_both(4, 0, sig, &m), FEED_OK);   /* entries are not parsed yet */
    struct collect a = { 0, 0 }, b = { 0, 0 };
    assert_int_equal(feed_foreach_entry(doc, doclen, &m, collect_cb, &a, err2, sizeof err2), -1);
    int fd = file_of(doc, doclen);
    assert_int_equal(feed_foreach_entry_fd(fd, &m, collect_cb, &b, err, sizeof err), -1);
    close(fd);
    assert_string_equal(err, err2);
    assert_non_null(strstr(err, "line 1502"));
    assert_int_equal(a.n, b.n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_signatures_agree),
        cmocka_unit_test(test_noncanonical_s_refused),
        cmocka_unit_test(test_good_and_entries_across_chunks),
        cmocka_unit_test(test_every_refusal_agrees),
        cmocka_unit_test(test_bad_entry_line_number),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
