/* DNS wire codec: good messages and every malformed case we know of. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dnswire.h"

#include <string.h>

/* Builds a query for name/type into buf; returns its length. edns: 0 none, 1 OPT,
 * 2 OPT with DO and padding. */
static size_t mkquery(uint8_t *buf, size_t cap, const char *name, uint16_t type, int edns)
{
    struct dnsw_buf b = { .p = buf, .cap = cap };
    dnsw_put_u16(&b, 0x1234);
    dnsw_put_u16(&b, DNSW_F_RD);
    dnsw_put_u16(&b, 1);
    dnsw_put_u16(&b, 0);
    dnsw_put_u16(&b, 0);
    dnsw_put_u16(&b, edns ? 1 : 0);
    dnsw_put_name(&b, name, strlen(name));
    dnsw_put_u16(&b, type);
    dnsw_put_u16(&b, DNSW_CLASS_IN);
    if (edns) {
        dnsw_put_u8(&b, 0);
        dnsw_put_u16(&b, DNSW_TYPE_OPT);
        dnsw_put_u16(&b, 1232);
        dnsw_put_u32(&b, edns == 2 ? 0x8000u : 0);
        if (edns == 2) {
            dnsw_put_u16(&b, 8);
            dnsw_put_u16(&b, DNSW_OPT_PADDING);
            dnsw_put_u16(&b, 4);
            dnsw_put_u32(&b, 0);
        } else {
            dnsw_put_u16(&b, 0);
        }
    }
    assert_false(b.overflow);
    return b.len;
}

static void test_query_plain(void **state)
{
    (void)state;
    uint8_t q[512];
    struct dnsw_msg m;
    size_t n = mkquery(q, sizeof q, "WWW.Example.Test", DNSW_TYPE_A, 0);
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_OK);
    assert_string_equal(m.qname, "www.example.test");
    assert_int_equal(m.qname_len, 16);
    assert_int_equal(m.qtype, DNSW_TYPE_A);
    assert_int_equal(m.id, 0x1234);
    assert_int_equal(m.question_end, n);
    assert_false(m.edns.present);
}

static void test_query_edns_do_padding(void **state)
{
    (void)state;
    uint8_t q[512];
    struct dnsw_msg m;
    size_t n = mkquery(q, sizeof q, "a.test", DNSW_TYPE_AAAA, 2);
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_OK);
    assert_true(m.edns.present);
    assert_true(m.edns.do_bit);
    assert_true(m.edns.has_padding);
    assert_int_equal(m.edns.udp_size, 1232);
    assert_int_equal(m.edns.rr_off + m.edns.rr_len, n);
    n = mkquery(q, sizeof q, "a.test", DNSW_TYPE_AAAA, 1);
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_OK);
    assert_false(m.edns.do_bit);
    assert_false(m.edns.has_padding);
}

static void test_opt_errors(void **state)
{
    (void)state;
    uint8_t q[512];
    struct dnsw_msg m;
    size_t n = mkquery(q, sizeof q, "a.test", DNSW_TYPE_A, 1);
    size_t opt = n - 11;
    /* two OPT records */
    memcpy(q + n, q + opt, 11);
    q[11] = 2;
    assert_int_equal(dnsw_parse_query(q, n + 11, &m, NULL, 0), DNSW_ERR_FORMERR);
    q[11] = 1;
    /* OPT with a non-root owner name */
    uint8_t bad[512];
    memcpy(bad, q, opt);
    bad[opt] = 1; bad[opt + 1] = 'x'; bad[opt + 2] = 0;
    memcpy(bad + opt + 3, q + opt + 1, 10);
    assert_int_equal(dnsw_parse_query(bad, n + 2, &m, NULL, 0), DNSW_ERR_FORMERR);
    /* an option longer than the OPT rdata */
    n = mkquery(q, sizeof q, "a.test", DNSW_TYPE_A, 2);
    q[n - 6] = 9;   /* padding length 4 -> 9 */
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_ERR_FORMERR);
    /* OPT rdata length past the end */
    n = mkquery(q, sizeof q, "a.test", DNSW_TYPE_A, 1);
    q[n - 1] = 4;
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_ERR_FORMERR);
}

static void test_root_and_escapes(void **state)
{
    (void)state;
    uint8_t q[64] = { 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1 };
    struct dnsw_msg m;
    assert_int_equal(dnsw_parse_query(q, 17, &m, NULL, 0), DNSW_OK);
    assert_string_equal(m.qname, "");
    /* a label "ads.test" (with a dot inside) must not read as two labels */
    static const uint8_t dotted[] = { 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                      8, 'a', 'd', 's', '.', 't', 'e', 's', 't', 0, 0, 1, 0, 1 };
    assert_int_equal(dnsw_parse_query(dotted, sizeof dotted, &m, NULL, 0), DNSW_OK);
    assert_string_equal(m.qname, "ads\\046test");
}

static void test_query_errors(void **state)
{
    (void)state;
    uint8_t q[600];
    struct dnsw_msg m;
    char err[64];
    size_t n = mkquery(q, sizeof q, "a.test", DNSW_TYPE_A, 0);

    assert_int_equal(dnsw_parse_query(q, 11, &m, err, sizeof err), DNSW_ERR_SHORT);
    assert_string_equal(err, "shorter than a DNS header");
    /* truncated question */
    assert_int_equal(dnsw_parse_query(q, n - 1, &m, err, sizeof err), DNSW_ERR_FORMERR);
    assert_int_equal(dnsw_parse_query(q, 14, &m, err, sizeof err), DNSW_ERR_FORMERR);
    /* trailing garbage */
    assert_int_equal(dnsw_parse_query(q, n + 1, &m, err, sizeof err), DNSW_ERR_FORMERR);
    /* QR set */
    q[2] |= 0x80;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_ERR_NOTQUERY);
    q[2] &= 0x7f;
    /* opcode NOTIFY */
    q[2] |= 4 << 3;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_ERR_NOTIMP);
    q[2] &= (uint8_t)~(0xf << 3);
    /* qdcount 0 and 2 */
    q[5] = 0;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_ERR_FORMERR);
    q[5] = 2;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_ERR_FORMERR);
    q[5] = 1;
    /* an answer record in a query */
    q[7] = 1;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_ERR_FORMERR);
    q[7] = 0;
    /* extended label type 0x40 */
    q[12] = 0x41;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_ERR_FORMERR);
    q[12] = 1;
    /* a label longer than the packet */
    q[12] = 60;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_ERR_FORMERR);
    q[12] = 1;
    assert_int_equal(dnsw_parse_query(q, n, &m, err, sizeof err), DNSW_OK);
}

static void test_name_too_long(void **state)
{
    (void)state;
    /* 5 labels of 63 = 320 wire bytes > 255 */
    uint8_t q[400] = { 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
    size_t o = 12;
    for (int l = 0; l < 5; l++) {
        q[o++] = 63;
        memset(q + o, 'a', 63);
        o += 63;
    }
    q[o++] = 0;
    q[o++] = 0; q[o++] = 1; q[o++] = 0; q[o++] = 1;
    struct dnsw_msg m;
    assert_int_equal(dnsw_parse_query(q, o, &m, NULL, 0), DNSW_ERR_FORMERR);
}

static void test_pointers(void **state)
{
    (void)state;
    /* header, then at 12: "a" "test" 0 ; at 19: pointer to 12 */
    uint8_t p[64] = { 0 };
    size_t n = 12;
    p[n++] = 1; p[n++] = 'a'; p[n++] = 4; memcpy(p + n, "test", 4); n += 4; p[n++] = 0;
    size_t ptr = n;
    p[n++] = 1; p[n++] = 'b'; p[n++] = 0xc0; p[n++] = 12;
    char out[DNSW_NAME_TEXT_MAX];
    size_t off = ptr, tl;
    assert_int_equal(dnsw_name_read(p, n, &off, out, sizeof out, &tl), 0);
    assert_string_equal(out, "b.a.test");
    assert_int_equal(off, n);
    /* pointer to itself */
    p[n] = 0xc0; p[n + 1] = (uint8_t)n;
    off = n;
    assert_int_equal(dnsw_name_read(p, n + 2, &off, out, sizeof out, &tl), -1);
    /* forward pointer */
    p[n] = 0xc0; p[n + 1] = (uint8_t)(n + 2);
    p[n + 2] = 0;
    off = n;
    assert_int_equal(dnsw_name_read(p, n + 3, &off, out, sizeof out, &tl), -1);
    /* pointer into the header */
    p[n] = 0xc0; p[n + 1] = 2;
    off = n;
    assert_int_equal(dnsw_name_read(p, n + 2, &off, out, sizeof out, &tl), -1);
    /* two pointers that point at each other: A -> B, B -> A */
    uint8_t loop[32] = { 0 };
    loop[12] = 0xc0; loop[13] = 14;   /* forward: refused at once */
    loop[14] = 0xc0; loop[15] = 12;
    off = 14;
    assert_int_equal(dnsw_name_read(loop, 16, &off, out, sizeof out, &tl), -1);
    /* pointer cut off at the end */
    p[n] = 0xc0;
    off = n;
    assert_int_equal(dnsw_name_read(p, n + 1, &off, out, sizeof out, &tl), -1);
    off = n;
    assert_int_equal(dnsw_name_skip(p, n + 1, &off), -1);
    /* output buffer too small is refused up front */
    off = ptr;
    assert_int_equal(dnsw_name_read(p, n, &off, out, 10, &tl), -1);
}

/* A response: q name/type, answers as given, optional SOA in authority. */
static size_t mkresponse(uint8_t *buf, size_t cap, unsigned rcode, int n_a, uint32_t ttl,
                         int soa, uint32_t soa_ttl, uint32_t soa_min, int cname_to_ads)
{
    struct dnsw_buf b = { .p = buf, .cap = cap };
    dnsw_put_u16(&b, 7);
    dnsw_put_u16(&b, (uint16_t)(DNSW_F_QR | DNSW_F_RA | rcode));
    dnsw_put_u16(&b, 1);
    dnsw_put_u16(&b, (uint16_t)(n_a + (cname_to_ads ? 1 : 0)));
    dnsw_put_u16(&b, soa ? 1 : 0);
    dnsw_put_u16(&b, 0);
    dnsw_put_name(&b, "x.cdn.test", 10);
    dnsw_put_u16(&b, DNSW_TYPE_A);
    dnsw_put_u16(&b, DNSW_CLASS_IN);
    if (cname_to_ads) {
        dnsw_put_u16(&b, 0xc00c);
        dnsw_put_u16(&b, DNSW_TYPE_CNAME);
        dnsw_put_u16(&b, DNSW_CLASS_IN);
        dnsw_put_u32(&b, 600);
        dnsw_put_u16(&b, 6 + 2);   /* "tracker" + ptr to "cdn.test"? keep simple: t + ptr */
        dnsw_put_u8(&b, 5);
        dnsw_put_bytes(&b, "track", 5);
        dnsw_put_u16(&b, 0xc00e);  /* -> "cdn.test" inside the question */
    }
    for (int i = 0; i < n_a; i++) {
        dnsw_put_u16(&b, 0xc00c);
        dnsw_put_u16(&b, DNSW_TYPE_A);
        dnsw_put_u16(&b, DNSW_CLASS_IN);
        dnsw_put_u32(&b, ttl + (uint32_t)i * 100);
        dnsw_put_u16(&b, 4);
        dnsw_put_u32(&b, 0xc6120a0a);
    }
    if (soa) {
        dnsw_put_u16(&b, 0xc00e);
        dnsw_put_u16(&b, DNSW_TYPE_SOA);
        dnsw_put_u16(&b, DNSW_CLASS_IN);
        dnsw_put_u32(&b, soa_ttl);
        dnsw_put_u16(&b, 2 + 2 + 20);
        dnsw_put_u16(&b, 0xc00e);
        dnsw_put_u16(&b, 0xc00e);
        dnsw_put_u32(&b, 1);
        dnsw_put_u32(&b, 2);
        dnsw_put_u32(&b, 3);
        dnsw_put_u32(&b, 4);
        dnsw_put_u32(&b, soa_min);
    }
    assert_false(b.overflow);
    return b.len;
}

static void test_response_walk_and_cname(void **state)
{
    (void)state;
    uint8_t r[512];
    struct dnsw_msg m;
    size_t n = mkresponse(r, sizeof r, 0, 2, 300, 0, 0, 0, 1);
    assert_int_equal(dnsw_parse_response(r, n, &m, NULL, 0), DNSW_OK);
    assert_string_equal(m.qname, "x.cdn.test");
    struct dnsw_iter it;
    struct dnsw_rr rr;
    assert_int_equal(dnsw_iter_init(&it, r, n), 0);
    assert_int_equal(dnsw_iter_next(&it, &rr), 1);
    assert_int_equal(rr.type, DNSW_TYPE_CNAME);
    char t[DNSW_NAME_TEXT_MAX];
    size_t off = rr.rdata_off, tl;
    assert_int_equal(dnsw_name_read(r, n, &off, t, sizeof t, &tl), 0);
    assert_string_equal(t, "track.cdn.test");
    int count = 1;
    while (dnsw_iter_next(&it, &rr) == 1)
        count++;
    assert_int_equal(count, 3);
    /* every truncation point of a complete response is refused, never read past */
    for (size_t cut = DNSW_HDR_LEN; cut < n; cut++)
        assert_int_not_equal(dnsw_parse_response(r, cut, &m, NULL, 0), DNSW_OK);
    /* a query is not a response */
    r[2] &= 0x7f;
    assert_int_equal(dnsw_parse_response(r, n, &m, NULL, 0), DNSW_ERR_NOTQUERY);
}

static void test_cache_ttl(void **state)
{
    (void)state;
    uint8_t r[512];
    size_t n = mkresponse(r, sizeof r, 0, 3, 300, 0, 0, 0, 0);
    assert_int_equal(dnsw_cache_ttl(r, n), 300);              /* smallest of 300/400/500 */
    n = mkresponse(r, sizeof r, 0, 1, 300, 0, 0, 0, 1);
    assert_int_equal(dnsw_cache_ttl(r, n), 300);              /* CNAME 600, A 300 */
    n = mkresponse(r, sizeof r, DNSW_RCODE_NXDOMAIN, 0, 0, 1, 3600, 60, 0);
    assert_int_equal(dnsw_cache_ttl(r, n), 60);               /* SOA MINIMUM */
    n = mkresponse(r, sizeof r, 0, 0, 0, 1, 30, 600, 0);
    assert_int_equal(dnsw_cache_ttl(r, n), 30);               /* NODATA: SOA TTL smaller */
    n = mkresponse(r, sizeof r, DNSW_RCODE_NXDOMAIN, 0, 0, 0, 0, 0, 0);
    assert_int_equal(dnsw_cache_ttl(r, n), -1);               /* negative without SOA */
    n = mkresponse(r, sizeof r, DNSW_RCODE_SERVFAIL, 1, 300, 0, 0, 0, 0);
    assert_int_equal(dnsw_cache_ttl(r, n), -1);
    n = mkresponse(r, sizeof r, 0, 1, 300, 0, 0, 0, 0);
    r[2] |= DNSW_F_TC >> 8;
    assert_int_equal(dnsw_cache_ttl(r, n), -1);
    r[2] &= (uint8_t)~(DNSW_F_TC >> 8);
    assert_int_equal(dnsw_cache_ttl(r, n - 1), -1);           /* malformed */
    n = mkresponse(r, sizeof r, 0, 1, 0x80000001u, 0, 0, 0, 0);
    assert_int_equal(dnsw_cache_ttl(r, n), 0);                /* top bit set means 0 */
}

static void test_ttl_age(void **state)
{
    (void)state;
    uint8_t r[512];
    size_t n = mkresponse(r, sizeof r, 0, 2, 300, 1, 100, 50, 0);
    dnsw_ttl_age(r, n, 120);
    struct dnsw_iter it;
    struct dnsw_rr rr;
    dnsw_iter_init(&it, r, n);
    dnsw_iter_next(&it, &rr);
    assert_int_equal(rr.ttl, 180);
    dnsw_iter_next(&it, &rr);
    assert_int_equal(rr.ttl, 280);
    dnsw_iter_next(&it, &rr);
    assert_int_equal(rr.ttl, 0);                              /* 100 - 120 floors at 0 */
}

static void test_reply_with_ede(void **state)
{
    (void)state;
    uint8_t q[512], r[512];
    struct dnsw_msg m, rm;
    size_t n = mkquery(q, sizeof q, "Tracker.Ads.Test", DNSW_TYPE_A, 2);
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_OK);
    struct dnsw_buf b = { .p = r, .cap = sizeof r };
    dnsw_reply_begin(&b, q, &m, DNSW_RCODE_NXDOMAIN);
    dnsw_put_opt(&b, 1232, m.edns.do_bit, DNSW_EDE_FILTERED, "otasuke: ads (list x)");
    dnsw_reply_finish(&b, 0, 0, 1);
    assert_false(b.overflow);
    assert_int_equal(dnsw_parse_response(r, b.len, &rm, NULL, 0), DNSW_OK);
    assert_int_equal(rm.id, 0x1234);
    assert_int_equal(DNSW_RCODE(rm.flags), DNSW_RCODE_NXDOMAIN);
    assert_true(rm.flags & DNSW_F_RD);
    assert_true(rm.edns.present);
    assert_true(rm.edns.do_bit);
    /* the question keeps the client's letter case */
    assert_memory_equal(r + 12, q + 12, m.qname_wire_len);
    /* EDE option: code 15, len 2+text, info code, text */
    const uint8_t *opt = r + rm.edns.rr_off + 11;
    assert_int_equal(dnsw_get16(opt), DNSW_OPT_EDE);
    assert_int_equal(dnsw_get16(opt + 2), 2 + strlen("otasuke: ads (list x)"));
    assert_int_equal(dnsw_get16(opt + 4), DNSW_EDE_FILTERED);
    assert_memory_equal(opt + 6, "otasuke: ads (list x)", strlen("otasuke: ads (list x)"));
    /* a NOTIMP answer echoes the opcode */
    q[2] |= 4 << 3;
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_ERR_NOTIMP);
    struct dnsw_buf nt = { .p = r, .cap = sizeof r };
    dnsw_reply_begin(&nt, q, &m, DNSW_RCODE_NOTIMP);
    assert_int_equal(DNSW_OPCODE(dnsw_get16(r + 2)), 4);
    assert_int_equal(DNSW_RCODE(dnsw_get16(r + 2)), DNSW_RCODE_NOTIMP);
    assert_int_equal(dnsw_get16(r + 4), 0);          /* no question copied */
    q[2] &= (uint8_t)~(0xf << 3);
    assert_int_equal(dnsw_parse_query(q, n, &m, NULL, 0), DNSW_OK);
    /* overflow is sticky and reported */
    struct dnsw_buf small = { .p = r, .cap = 20 };
    dnsw_reply_begin(&small, q, &m, 0);
    assert_true(small.overflow);
    struct dnsw_buf nb = { .p = r, .cap = sizeof r };
    char longlabel[80];
    memset(longlabel, 'a', 70);
    dnsw_put_name(&nb, longlabel, 70);
    assert_true(nb.overflow);
}

static void test_type_names(void **state)
{
    (void)state;
    char b[16];
    assert_string_equal(dnsw_type_name(28, b, sizeof b), "AAAA");
    assert_string_equal(dnsw_type_name(999, b, sizeof b), "TYPE999");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_plain),
        cmocka_unit_test(test_query_edns_do_padding),
        cmocka_unit_test(test_opt_errors),
        cmocka_unit_test(test_root_and_escapes),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_name_too_long),
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_response_walk_and_cname),
        cmocka_unit_test(test_cache_ttl),
        cmocka_unit_test(test_ttl_age),
        cmocka_unit_test(test_reply_with_ede),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
