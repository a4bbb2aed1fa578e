/* List parsers on small inputs: every format, every error reason, whole-file
 * rejections, streaming in odd chunk sizes. The real shared lists are in
 * test_lists_data.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domainset.h"
#include "lists.h"

/* Collects "name flags" lines, flags as E/S/A letters, for exact comparison. */
struct collect {
    char out[8192];
    size_t len;
    int stop_after;   /* abort after this many entries (0 = never) */
    int seen;
};

static int collect_fn(void *ctx, const char *name, size_t len, unsigned flags)
{
    struct collect *c = ctx;
    int n = snprintf(c->out + c->len, sizeof c->out - c->len, "%.*s %s%s%s\n", (int)len, name,
                     (flags & DSET_EXACT) ? "E" : "", (flags & DSET_SUBTREE) ? "S" : "",
                     (flags & DSET_ALLOW) ? "A" : "");
    if (n > 0 && (size_t)n < sizeof c->out - c->len)
        c->len += (size_t)n;
    c->seen++;
    return c->stop_after && c->seen >= c->stop_after;
}

static struct list_stats st;
static char err[512];

static int parse(const char *text, int format, int subtree, struct collect *c)
{
    struct list_opts o = { format, subtree };
    memset(c, 0, sizeof *c);
    err[0] = 0;
    return list_parse_buffer(text, strlen(text), &o, collect_fn, c, &st, err, sizeof err);
}

/* Finds the detail of line `line`; fails the test when it is missing. */
static const struct list_error *error_at(uint64_t line)
{
    for (size_t i = 0; i < st.nerrors; i++)
        if (st.errors[i].line == line)
            return &st.errors[i];
    fail_msg("no error recorded for line %llu", (unsigned long long)line);
    return NULL;
}

static void plain_basic(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("# header\n\nExample.COM.\nads.example.net # trailing\n"
                           "*.wild.test\n", LIST_FMT_AUTO, 0, &c), 0);
    assert_int_equal(st.format, LIST_FMT_PLAIN);
    assert_string_equal(c.out, "example.com E\nads.example.net E\nwild.test S\n");
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.lines, 5);

    assert_int_equal(parse("a.test\nb.test\n", LIST_FMT_PLAIN, 1, &c), 0);
    assert_string_equal(c.out, "a.test S\nb.test S\n");
}

static void plain_errors(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("good.test\nbad..test\ntwo fields.test\n-ok-.test\n"
                           "x*y.test\n1.2.3.4\n", LIST_FMT_PLAIN, 0, &c), 0);
    assert_int_equal(st.entries, 2);  /* good.test, -ok-.test */
    assert_int_equal(st.rejected, 3);
    assert_int_equal(st.unsupported, 1);
    assert_string_equal(error_at(2)->reason, "'bad..test': empty label (two dots in a row)");
    assert_non_null(strstr(error_at(3)->reason, "more than one field"));
    assert_int_equal(error_at(5)->kind, LIST_UNSUPPORTED);
    assert_string_equal(error_at(5)->reason, "'x*y.test': wildcard '*' inside a name");
    assert_string_equal(error_at(6)->reason, "'1.2.3.4': IPv4 address, not a name");
}

static void hosts_forms(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("# hosts\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
                           "0.0.0.0 0.0.0.0\n"
                           "0.0.0.0 a.test b.test # two names\n127.0.0.1\tc.test\n"
                           ":: d.test\n0.0.0.0 E.Test\n", LIST_FMT_AUTO, 0, &c), 0);
    assert_int_equal(st.format, LIST_FMT_HOSTS);
    assert_string_equal(c.out, "a.test E\nb.test E\nc.test E\nd.test E\ne.test E\n");
    assert_int_equal(st.skipped, 4);
    assert_int_equal(st.rejected, 0);

    assert_int_equal(parse("0.0.0.0 a.test\nnotanip b.test\n0.0.0.0\n0.0.0.0 bad_name!.test\n",
                           LIST_FMT_HOSTS, 1, &c), 0);
    assert_string_equal(c.out, "a.test S\n");
    assert_int_equal(st.rejected, 3);
    assert_non_null(strstr(error_at(2)->reason, "starts with an address"));
    assert_string_equal(error_at(3)->reason, "address '0.0.0.0' without a name");
    assert_string_equal(error_at(4)->reason, "'bad_name!.test': invalid character '!' in name");
}

static void adblock_rules(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("[Adblock Plus 2.0]\n! comment\n||ads.test^\n@@||ok.ads.test^\n"
                           "|exact.test^\n||pipe.test^|\n"
                           "||mod.test^$important\n##.banner\nexample.com##.ad\n"
                           "example.com#@#.ad\n/ads[0-9]+/\n||path.test/ads^\n"
                           "||star*.test^\n||noanchor.test\nbare.test\n||after.test^foo\n"
                           "@@||allow.test^\n", LIST_FMT_AUTO, 0, &c), 0);
    assert_int_equal(st.format, LIST_FMT_ADBLOCK);
    assert_string_equal(c.out, "ads.test S\nok.ads.test SA\nexact.test E\npipe.test S\n"
                               "allow.test SA\n");
    assert_int_equal(st.entries, 5);
    assert_int_equal(st.unsupported, 10);
    assert_int_equal(st.rejected, 0);
    assert_string_equal(error_at(7)->reason, "rule with $ modifiers ('$important')");
    assert_string_equal(error_at(8)->reason, "cosmetic (element hiding) rule");
    assert_string_equal(error_at(9)->reason, "cosmetic (element hiding) rule");
    assert_string_equal(error_at(10)->reason, "cosmetic (element hiding) rule");
    assert_string_equal(error_at(11)->reason, "regular expression rule");
    assert_string_equal(error_at(12)->reason, "rule with a path ('path.test/ads')");
    assert_string_equal(error_at(13)->reason, "'star*.test': wildcard '*' inside a name");
    assert_non_null(strstr(error_at(14)->reason, "without a ^ separator"));
    assert_non_null(strstr(error_at(15)->reason, "without a || or | anchor"));
    assert_string_equal(error_at(16)->reason, "rule with text after ^ ('^foo')");
    for (size_t i = 0; i < st.nerrors; i++)
        assert_int_equal(st.errors[i].kind, LIST_UNSUPPORTED);

    assert_int_equal(parse("||good.test^\n||bad..test^\n", LIST_FMT_ADBLOCK, 0, &c), 0);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(error_at(2)->kind, LIST_REJECTED);
}

static void dnsmasq_rules(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("# dnsmasq\naddress=/a.test/#\naddress=/b.test/0.0.0.0\n"
                           "address=/c.test/d.test/::\nserver=/e.test/\nlocal=/f.test/\n"
                           "address=/.g.test/\nserver=/h.test/1.2.3.4\nbogus-nxdomain=1.2.3.4\n"
                           "address=/#/0.0.0.0\naddress=/i.test\nnot an option\n"
                           "address=//0.0.0.0\n", LIST_FMT_AUTO, 0, &c), 0);
    assert_int_equal(st.format, LIST_FMT_DNSMASQ);
    assert_string_equal(c.out, "a.test S\nb.test S\nc.test S\nd.test S\ne.test S\nf.test S\n"
                               "g.test S\n");
    assert_int_equal(st.unsupported, 3);
    assert_int_equal(st.rejected, 3);
    assert_string_equal(error_at(8)->reason, "server=/.../1.2.3.4 forwards to a server, it does not block");
    assert_string_equal(error_at(9)->reason, "dnsmasq option 'bogus-nxdomain' is not a block rule");
    assert_string_equal(error_at(10)->reason, "'#' (every domain) is not a list entry");
    assert_string_equal(error_at(11)->reason, "address=/i.test: missing closing '/'");
    assert_non_null(strstr(error_at(12)->reason, "not a dnsmasq option"));
    assert_string_equal(error_at(13)->reason, "empty name between slashes");
}

static void wildcard_rules(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("# wildcard\n*.a.test\n*.b.test\nbare.test\n*x.test\n",
                           LIST_FMT_AUTO, 0, &c), 0);
    assert_int_equal(st.format, LIST_FMT_WILDCARD);
    assert_string_equal(c.out, "a.test S\nb.test S\nbare.test E\n");
    assert_int_equal(st.unsupported, 1);
}

static void rpz_zone(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("$TTL 300\n@ IN SOA localhost. root.localhost. (\n 1 3600\n 600 86400\n"
                           " 300 )\n  NS  localhost.\n; comment\n"
                           "a.test CNAME .\n*.a.test CNAME .\nok.a.test CNAME rpz-passthru.\n"
                           "drop.test 300 IN CNAME rpz-drop.\nnodata.test IN 60 CNAME *.\n"
                           "walled.test CNAME garden.example.\nlocal.test A 192.0.2.1\n"
                           "32.1.2.0.192.rpz-ip CNAME .\n@ CNAME .\nUpper.Test CNAME . ; c\n"
                           "tcp.test CNAME rpz-tcp-only.\nnotarget.test CNAME\n",
                           LIST_FMT_AUTO, 0, &c), 0);
    assert_int_equal(st.format, LIST_FMT_RPZ);
    assert_string_equal(c.out, "a.test E\na.test S\nok.a.test EA\ndrop.test E\nnodata.test E\n"
                               "upper.test E\n");
    assert_int_equal(st.unsupported, 4);
    assert_int_equal(st.rejected, 2);
    assert_string_equal(error_at(13)->reason, "'walled.test': CNAME to 'garden.example.' (rewrite) not supported");
    assert_non_null(strstr(error_at(14)->reason, "A record (local data) not supported"));
    assert_non_null(strstr(error_at(15)->reason, "rpz-ip trigger not supported"));
    assert_string_equal(error_at(16)->reason, "record at the zone apex would match every name");
    assert_non_null(strstr(error_at(18)->reason, "rpz-tcp-only"));
    assert_string_equal(error_at(19)->reason, "'notarget.test': CNAME without a target");
}

static void rpz_origin(void **state)
{
    struct collect c;
    (void)state;
    assert_int_equal(parse("$ORIGIN rpz.example.\n@ SOA ns. host. 1 2 3 4 5\n"
                           "rel.test CNAME .\nabs.test.rpz.example. CNAME .\n"
                           "*.wild.test.rpz.example. CNAME .\nother.test.elsewhere. CNAME .\n"
                           "rpz.example. CNAME .\n  CNAME .\n",
                           LIST_FMT_RPZ, 0, &c), 0);
    assert_string_equal(c.out, "rel.test E\nabs.test E\nwild.test S\n");
    assert_string_equal(error_at(6)->reason,
                        "'other.test.elsewhere.' is outside the zone origin 'rpz.example'");
    assert_string_equal(error_at(7)->reason, "record at the zone apex would match every name");
    assert_string_equal(error_at(8)->reason, "record at the zone apex would match every name");
    assert_int_equal(st.rejected, 3);

    assert_int_equal(parse("  CNAME .\nx.test CNAME .\n$INCLUDE other.zone\n$ORIGIN\n",
                           LIST_FMT_RPZ, 0, &c), 0);
    assert_string_equal(error_at(1)->reason, "record without an owner name");
    assert_string_equal(error_at(3)->reason, "directive $INCLUDE not supported");
    assert_string_equal(error_at(4)->reason, "$ORIGIN without a valid name");
}

static void normalize_reasons(void **state)
{
    char out[300], why[128], longlabel[80], longname[300];
    (void)state;
    assert_int_equal(dset_normalize("WWW.Example.COM.", 16, out, sizeof out, why, sizeof why), 15);
    assert_string_equal(out, "www.example.com");
    assert_int_equal(dset_normalize("xn--bcher-kva.example", 21, out, sizeof out, why, sizeof why), 21);
    assert_int_equal(dset_normalize("_dmarc.a-b.test", 15, out, sizeof out, why, sizeof why), 15);
#define BAD(s, reason) do { \
        assert_int_equal(dset_normalize(s, strlen(s), out, sizeof out, why, sizeof why), -1); \
        assert_string_equal(why, reason); } while (0)
    BAD("", "empty name");
    BAD(".", "empty name");
    BAD(".a.test", "name starts with a dot");
    BAD("a..test", "empty label (two dots in a row)");
    BAD("32.1.2..", "empty label (two dots in a row)");  /* found by fuzz_list_auto */
    BAD("..", "name starts with a dot");
    BAD("a b.test", "invalid character ' ' in name");
    BAD("a!b.test", "invalid character '!' in name");
    BAD("caf\xc3\xa9.test", "invalid byte 0xc3 in name");
    BAD("10.0.0.1", "IPv4 address, not a name");
    BAD("2001:db8::1", "IPv6 address, not a name");
    BAD("a:b.test", "invalid character ':' in name");
    BAD("*.a.test", "wildcard '*' inside a name");
    memset(longlabel, 'a', 64);
    longlabel[64] = 0;
    strcat(longlabel, ".test");
    BAD(longlabel, "label longer than 63 characters");
    for (int i = 0; i < 4; i++)
        memcpy(longname + i * 64, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.", 64);
    longname[256] = 0;
    BAD(longname, "name longer than 253 characters (255)");  /* trailing dot dropped */
    /* four numeric labels that are not an address are a (strange but valid) name */
    assert_int_equal(dset_normalize("999.1.1.1", 9, out, sizeof out, why, sizeof why), 9);
    assert_int_equal(dset_normalize("0.0.0.0.beeglivesex.com", 23, out, sizeof out, why, sizeof why), 23);
    assert_int_equal(dset_normalize("a.test", 6, out, 4, why, sizeof why), -1);
}

static void whole_file_rejections(void **state)
{
    struct collect c;
    static const char bin[] = "abc.test\n\x7f" "ELF\x02\x01\x01\0\0\0\0junk";
    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(list_parse_buffer(bin, sizeof bin - 1, NULL, collect_fn, &c, &st, err,
                                       sizeof err), -1);
    assert_string_equal(err, "binary data (NUL byte at line 2, offset 16), not a text list");
    assert_int_equal(c.seen, 0);

    assert_int_equal(parse("\n  <!DOCTYPE html>\n<html><body>404</body></html>\n", 0, 0, &c), -1);
    assert_string_equal(err, "an HTML/XML page, not a list (an error page from the download server?)");
    assert_int_equal(parse("<html>\n<p>x</p>\n", 0, 0, &c), -1);
    assert_int_equal(parse("<?xml version=\"1.0\"?>\n<a/>\n", 0, 0, &c), -1);

    assert_int_equal(parse("{\"error\": \"rate limited\"}\n", 0, 0, &c), -1);
    assert_non_null(strstr(err, "no valid entry"));

    assert_int_equal(parse("0.0.0.0 a.test\n0.0.0.0 b.test\n", LIST_FMT_ADBLOCK, 0, &c), 0);
    assert_int_equal(st.entries, 0);  /* only unsupported lines: empty but valid */
    assert_int_equal(parse("a.test\nb.test\n", LIST_FMT_HOSTS, 0, &c), -1);
    assert_string_equal(err, "not a hosts list: no valid entry, 2 bad lines (first at line 1: "
                             "'a.test': a hosts line starts with an address (0.0.0.0 name))");

    /* control bytes but no NUL */
    {
        char buf[400];
        memset(buf, '\x01', sizeof buf);
        memcpy(buf, "a.test\n", 7);
        assert_int_equal(list_parse_buffer(buf, sizeof buf, NULL, collect_fn, &c, &st, err,
                                           sizeof err), -1);
        assert_non_null(strstr(err, "control bytes"));
    }
    /* empty and comment-only inputs are valid empty lists */
    assert_int_equal(parse("", 0, 0, &c), 0);
    assert_int_equal(st.entries, 0);
    assert_int_equal(parse("# nothing yet\n", 0, 0, &c), 0);
}

static void line_level_oddities(void **state)
{
    struct collect c;
    char *big;
    size_t n = 72000;
    (void)state;
    /* CRLF, BOM, no final newline */
    assert_int_equal(parse("\xef\xbb\xbf" "a.test\r\nb.test\r\nc.test", 0, 0, &c), 0);
    assert_string_equal(c.out, "a.test E\nb.test E\nc.test E\n");
    assert_int_equal(st.lines, 3);

    /* an overlong line and a NUL after the 64 KB head are line errors, not fatal */
    big = malloc(n + 200);
    assert_non_null(big);
    {
        size_t len = 0;
        len += (size_t)sprintf(big, "first.test\n");
        while (len < 66000)
            len += (size_t)sprintf(big + len, "ok.test\n");
        memset(big + len, 'x', 5000);
        len += 5000;
        big[len++] = '\n';
        memcpy(big + len, "nul\0.test\nlast.test\n", 20);
        len += 20;
        assert_true(len <= n + 200);
        memset(&c, 0, sizeof c);
        assert_int_equal(list_parse_buffer(big, len, NULL, collect_fn, &c, &st, err, sizeof err), 0);
    }
    assert_int_equal(st.rejected, 2);
    assert_string_equal(st.errors[0].reason, "line longer than 4096 bytes");
    assert_string_equal(st.errors[1].reason, "NUL byte in line");
    assert_int_equal(st.errors[1].line + 1, st.lines);
    free(big);
}

static void error_detail_capped(void **state)
{
    struct collect c;
    char *text = malloc(300 * 10 + 20);
    size_t len = 0;
    (void)state;
    memset(&c, 0, sizeof c);
    len += (size_t)sprintf(text, "good.test\n");
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(text + len, "bad!%03d\n", i);
    assert_int_equal(list_parse_buffer(text, len, NULL, collect_fn, &c, &st, err, sizeof err), 0);
    assert_int_equal(st.rejected, 300);
    assert_int_equal(st.nerrors, LIST_MAX_ERRORS);
    assert_int_equal(st.errors[99].line, 101);
    free(text);
}

/* Feeding one byte at a time, or in prime-sized chunks, changes nothing. */
static void streaming_chunks(void **state)
{
    static const char text[] = "$TTL 1\n@ SOA a. b. 1 2 3 4 5\nx.test CNAME .\n*.y.test CNAME .\n"
                               "z.test CNAME rpz-passthru.\nbad..test CNAME .\n";
    struct collect whole, piece;
    struct list_stats st1;
    (void)state;
    assert_int_equal(parse(text, 0, 0, &whole), 0);
    st1 = st;
    for (size_t chunk = 1; chunk < 8; chunk += 2) {
        struct list_parser *p;
        memset(&piece, 0, sizeof piece);
        p = list_parser_new(NULL, collect_fn, &piece);
        assert_non_null(p);
        for (size_t i = 0; i < sizeof text - 1; i += chunk)
            assert_int_equal(list_parser_feed(p, text + i, (sizeof text - 1 - i) < chunk ?
                                              (sizeof text - 1 - i) : chunk, err, sizeof err), 0);
        assert_int_equal(list_parser_finish(p, &st, err, sizeof err), 0);
        list_parser_free(p);
        assert_string_equal(piece.out, whole.out);
        assert_int_equal(st.entries, st1.entries);
        assert_int_equal(st.rejected, st1.rejected);
        assert_int_equal(st.lines, st1.lines);
    }
}

static void consumer_abort(void **state)
{
    struct collect c;
    struct list_opts o = { 0, 0 };
    const char *t = "a.test\nb.test\nc.test\n";
    (void)state;
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(list_parse_buffer(t, strlen(t), &o, collect_fn, &c, &st, err, sizeof err), -1);
    assert_string_equal(err, "line 2: stopped by the consumer");
    assert_int_equal(c.seen, 2);
}

static void detection(void **state)
{
    (void)state;
#define DET(s, f) assert_int_equal(list_detect(s, strlen(s)), f)
    DET("a.test\nb.test\n", LIST_FMT_PLAIN);
    DET("# c\n0.0.0.0 a.test\n", LIST_FMT_HOSTS);
    DET("::1 a.test\n", LIST_FMT_HOSTS);
    DET("! c\n||a.test^\n", LIST_FMT_ADBLOCK);
    DET("[Adblock Plus]\na.test\nb.test\n", LIST_FMT_ADBLOCK);
    DET("address=/a.test/#\n", LIST_FMT_DNSMASQ);
    DET("server=/a.test/\n", LIST_FMT_DNSMASQ);
    DET("*.a.test\n*.b.test\n", LIST_FMT_WILDCARD);
    DET("$TTL 300\na.test CNAME .\n", LIST_FMT_RPZ);
    DET("a.test CNAME .\nb.test CNAME .\n", LIST_FMT_RPZ);
    DET("", LIST_FMT_PLAIN);
    assert_string_equal(list_format_name(LIST_FMT_RPZ), "rpz");
    assert_int_equal(list_format_parse("dnsmasq"), LIST_FMT_DNSMASQ);
    assert_int_equal(list_format_parse("domains"), LIST_FMT_PLAIN);
    assert_int_equal(list_format_parse("nope"), -1);
    assert_null(list_format_name(99));
}

static void path_errors(void **state)
{
    (void)state;
    assert_int_equal(list_parse_path("/nonexistent/list.txt", NULL, NULL, NULL, &st, err,
                                     sizeof err), -1);
    assert_string_equal(err, "/nonexistent/list.txt: cannot open: No such file or directory");
    assert_int_equal(list_parse_path("tests/fixtures/lists/error-page.html", NULL, NULL, NULL,
                                     &st, err, sizeof err), -1);
    assert_string_equal(err, "tests/fixtures/lists/error-page.html: an HTML/XML page, not a "
                             "list (an error page from the download server?)");
    assert_int_equal(list_parse_path("tests/fixtures/lists/mixed.hosts", NULL, NULL, NULL,
                                     &st, err, sizeof err), 0);
    assert_int_equal(st.format, LIST_FMT_HOSTS);
    assert_int_equal(st.entries, 30);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.skipped, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_basic),
        cmocka_unit_test(plain_errors),
        cmocka_unit_test(hosts_forms),
        cmocka_unit_test(adblock_rules),
        cmocka_unit_test(dnsmasq_rules),
        cmocka_unit_test(wildcard_rules),
        cmocka_unit_test(rpz_zone),
        cmocka_unit_test(rpz_origin),
        cmocka_unit_test(normalize_reasons),
        cmocka_unit_test(whole_file_rejections),
        cmocka_unit_test(line_level_oddities),
        cmocka_unit_test(error_detail_capped),
        cmocka_unit_test(streaming_chunks),
        cmocka_unit_test(consumer_abort),
        cmocka_unit_test(detection),
        cmocka_unit_test(path_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
