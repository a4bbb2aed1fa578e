/* Compiled domain set: build, write, open, lookup semantics, damaged files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domainset.h"
#include "domainset_format.h"

static char dir[] = "/tmp/otasuke-test-dset-XXXXXX";
static char path[512];
static char err[512];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/domains.set", dir);
    return 0;
}

static int teardown(void **state)
{
    char tmp[600];
    (void)state;
    unlink(path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    rmdir(dir);
    return 0;
}

static void add(struct dset_builder *b, int list, const char *name, unsigned flags)
{
    assert_int_equal(dset_builder_add(b, list, name, strlen(name), flags, err, sizeof err), 0);
}

/* ads (0): example.com subtree, exact.org exact; malware (1): bad.example.com exact,
 * evil.test subtree; allow (2): ok.example.com subtree; ads list "@@" twin. */
static struct dset *build_sample(struct dset_build_stats *bs)
{
    struct dset_builder *b = dset_builder_new();
    struct dset *set;
    int ads, mal, allow;

    assert_non_null(b);
    ads = dset_builder_add_list(b, "ads-list", DSET_CAT_ADS, 0, err, sizeof err);
    mal = dset_builder_add_list(b, "mal-list", DSET_CAT_MALWARE, 0, err, sizeof err);
    allow = dset_builder_add_list(b, "my-allow", 0, 1, err, sizeof err);
    assert_int_equal(ads, 0);
    assert_int_equal(mal, 1);
    assert_int_equal(allow, 2);
    add(b, ads, "example.com", DSET_SUBTREE);
    add(b, ads, "exact.org", DSET_EXACT);
    add(b, mal, "bad.example.com", DSET_EXACT);
    add(b, mal, "evil.test", DSET_SUBTREE);
    add(b, ads, "evil.test", DSET_EXACT);        /* merges with the malware entry */
    add(b, ads, "example.com", DSET_SUBTREE);    /* duplicate: no new name */
    add(b, allow, "ok.example.com", DSET_SUBTREE);
    add(b, ads, "exception.exact.org", DSET_EXACT | DSET_ALLOW);  /* "@@" in a block list */
    assert_int_equal(dset_builder_names(b), 6);
    assert_int_equal(dset_builder_write(b, path, bs, err, sizeof err), 0);
    dset_builder_free(b);
    set = dset_open(path, err, sizeof err);
    if (!set)
        fail_msg("%s", err);
    return set;
}

static enum dset_verdict look(const struct dset *set, const char *name, struct dset_match *m)
{
    return dset_lookup(set, name, strlen(name), m);
}

static void build_and_lookup(void **state)
{
    struct dset_build_stats bs;
    struct dset *set = build_sample(&bs);
    struct dset_match m;
    (void)state;

    assert_int_equal(bs.names, 6);
    assert_true(bs.slots * 7 >= bs.names * 10);  /* load <= 0.7 */
    assert_int_equal(bs.lookup_bytes, bs.slots * 8 + bs.records * 16);
    assert_int_equal(dset_name_count(set), 6);
    assert_int_equal(dset_lookup_bytes(set), bs.lookup_bytes);
    assert_int_equal(dset_list_count(set), 4);  /* ads, malware, allow, ads "@@" twin */

    /* subtree: the name and everything below */
    assert_int_equal(look(set, "example.com", &m), DSET_BLOCK);
    assert_int_equal(m.matched_offset, 0);
    assert_int_equal(m.matched_flags, DSET_SUBTREE);
    assert_int_equal(m.categories, 1u << DSET_CAT_ADS);
    assert_int_equal(look(set, "a.b.example.com", &m), DSET_BLOCK);
    assert_int_equal(m.matched_offset, 4);
    assert_int_equal(m.lists, 1);
    /* not a suffix on a label boundary */
    assert_int_equal(look(set, "notexample.com", &m), DSET_NONE);
    assert_int_equal(look(set, "com", &m), DSET_NONE);

    /* exact: only the name itself */
    assert_int_equal(look(set, "exact.org", &m), DSET_BLOCK);
    assert_int_equal(m.matched_flags, DSET_EXACT);
    assert_int_equal(look(set, "www.exact.org", &m), DSET_NONE);

    /* every match contributes: bad.example.com is malware exact + ads subtree */
    assert_int_equal(look(set, "bad.example.com", &m), DSET_BLOCK);
    assert_int_equal(m.categories, (1u << DSET_CAT_ADS) | (1u << DSET_CAT_MALWARE));
    assert_int_equal(m.lists, 3);
    assert_int_equal(m.matched_offset, 0);
    assert_int_equal(m.matched_flags, DSET_EXACT);
    assert_int_equal(look(set, "x.bad.example.com", &m), DSET_BLOCK);
    assert_int_equal(m.categories, 1u << DSET_CAT_ADS);  /* exact entry does not reach down */

    /* one name, two lists with different kinds */
    assert_int_equal(look(set, "evil.test", &m), DSET_BLOCK);
    assert_int_equal(m.matched_flags, DSET_EXACT | DSET_SUBTREE);
    assert_int_equal(m.categories, (1u << DSET_CAT_ADS) | (1u << DSET_CAT_MALWARE));
    assert_int_equal(look(set, "www.evil.test", &m), DSET_BLOCK);
    assert_int_equal(m.categories, 1u << DSET_CAT_MALWARE);
    assert_int_equal(m.matched_flags, DSET_SUBTREE);

    /* allow beats block, and is what "matched" reports */
    assert_int_equal(look(set, "ok.example.com", &m), DSET_ALLOW_VERDICT);
    assert_int_equal(m.matched_offset, 0);
    assert_int_equal(m.matched_flags, DSET_ALLOW | DSET_SUBTREE);
    assert_int_equal(m.categories, 1u << DSET_CAT_ADS);  /* the block it beat */
    assert_int_equal(m.lists, 1 | 4);
    assert_int_equal(look(set, "deep.ok.example.com", &m), DSET_ALLOW_VERDICT);
    assert_int_equal(m.matched_offset, 5);
    /* "@@" in a block list: an allow entry of that list's hidden twin */
    assert_int_equal(look(set, "exception.exact.org", &m), DSET_ALLOW_VERDICT);
    assert_true(dset_list_is_allow(set, 3));
    assert_string_equal(dset_list_label(set, 3), "ads-list");
    assert_int_equal(look(set, "x.exception.exact.org", &m), DSET_NONE);

    /* trailing dot and upper case are tolerated by lookup */
    assert_int_equal(look(set, "WWW.Example.COM.", &m), DSET_BLOCK);
    assert_int_equal(m.matched_offset, 4);
    assert_int_equal(look(set, "EXACT.ORG", &m), DSET_BLOCK);
    assert_int_equal(look(set, "", &m), DSET_NONE);
    assert_int_equal(look(set, ".", &m), DSET_NONE);
    dset_close(set);
}

static void masked_lookup(void **state)
{
    struct dset *set = build_sample(NULL);
    struct dset_match m;
    const char *n = "bad.example.com";
    (void)state;

    /* only malware enabled: ads entries vanish */
    assert_int_equal(dset_lookup_masked(set, n, strlen(n), 1u << DSET_CAT_MALWARE, UINT64_MAX, &m),
                     DSET_BLOCK);
    assert_int_equal(m.categories, 1u << DSET_CAT_MALWARE);
    assert_int_equal(m.lists, 2);
    n = "www.example.com";
    assert_int_equal(dset_lookup_masked(set, n, strlen(n), 1u << DSET_CAT_MALWARE, UINT64_MAX, &m),
                     DSET_NONE);
    assert_int_equal(m.lists, 0);
    /* list mask: drop the ads list */
    n = "evil.test";
    assert_int_equal(dset_lookup_masked(set, n, strlen(n), UINT32_MAX, ~1ull, &m), DSET_BLOCK);
    assert_int_equal(m.categories, 1u << DSET_CAT_MALWARE);
    /* allow lists are always in unless the list mask drops them */
    n = "ok.example.com";
    assert_int_equal(dset_lookup_masked(set, n, strlen(n), 0, UINT64_MAX, &m), DSET_ALLOW_VERDICT);
    assert_int_equal(dset_lookup_masked(set, n, strlen(n), UINT32_MAX, ~4ull, &m), DSET_BLOCK);
    assert_int_equal(m.matched_offset, 3);
    dset_close(set);
}

static void metadata_and_names(void **state)
{
    struct dset *set = build_sample(NULL);
    struct dset_iter it = { 0 };
    const char *name;
    unsigned flags;
    uint64_t lists;
    int count = 0;
    (void)state;

    assert_string_equal(dset_list_label(set, 0), "ads-list");
    assert_int_equal(dset_list_category(set, 1), DSET_CAT_MALWARE);
    assert_int_equal(dset_list_category(set, 2), -1);
    assert_true(dset_list_is_allow(set, 2));
    assert_false(dset_list_is_allow(set, 0));
    assert_null(dset_list_label(set, 9));
    assert_int_equal(dset_allow_lists(set), 4 | 8);
    assert_true(dset_build_time(set) > 1700000000u);
    assert_int_equal(dset_lists_categories(set, 3), (1u << DSET_CAT_ADS) | (1u << DSET_CAT_MALWARE));

    assert_int_equal(dset_find_name(set, "evil.test", 9, &flags, &lists), 1);
    assert_int_equal(flags, DSET_EXACT | DSET_SUBTREE);
    assert_int_equal(lists, 3);
    assert_int_equal(dset_find_name(set, "www.evil.test", 13, &flags, &lists), 0);
    assert_int_equal(dset_find_name(set, "ok.example.com", 14, &flags, NULL), 1);
    assert_int_equal(flags, DSET_SUBTREE | DSET_ALLOW);

    while (dset_iter_next(set, &it, &name, &flags, &lists)) {
        if (count == 0) {
            assert_string_equal(name, "example.com");
            assert_int_equal(flags, DSET_SUBTREE);
        }
        if (count == 5)
            assert_string_equal(name, "exception.exact.org");
        assert_int_equal(dset_find_name(set, name, strlen(name), NULL, NULL), 1);
        count++;
    }
    assert_int_equal(count, 6);
    dset_close(set);
}

static void categories(void **state)
{
    (void)state;
    assert_string_equal(dset_category_name(DSET_CAT_DOH_BYPASS), "doh-bypass");
    assert_string_equal(dset_category_name(DSET_CAT_C2), "c2");
    assert_null(dset_category_name(DSET_CAT_COUNT));
    assert_null(dset_category_name(-1));
    for (int c = 0; c < DSET_CAT_COUNT; c++)
        assert_int_equal(dset_category_parse(dset_category_name(c)), c);
    assert_int_equal(dset_category_parse("Ads"), -1);
    assert_int_equal(dset_category_parse(NULL), -1);
}

static void builder_errors(void **state)
{
    struct dset_builder *b = dset_builder_new();
    char label[16];
    (void)state;
    assert_int_equal(dset_builder_add_list(b, "x", 99, 0, err, sizeof err), -1);
    assert_string_equal(err, "list 'x': unknown category number 99");
    assert_int_equal(dset_builder_add_list(b, "", DSET_CAT_ADS, 0, err, sizeof err), -1);
    assert_int_equal(dset_builder_add_list(b, "a-label-that-is-far-too-long-to-fit-in-the-list-table",
                                           DSET_CAT_ADS, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "must be 1..47 characters"));
    assert_int_equal(dset_builder_add(b, 0, "a.test", 6, DSET_EXACT, err, sizeof err), -1);
    assert_string_equal(err, "no list with id 0");
    for (int i = 0; i < DSET_MAX_LISTS; i++) {
        snprintf(label, sizeof label, "l%d", i);
        assert_int_equal(dset_builder_add_list(b, label, DSET_CAT_ADS, 0, err, sizeof err), i);
    }
    assert_int_equal(dset_builder_add_list(b, "one-more", DSET_CAT_ADS, 0, err, sizeof err), -1);
    assert_string_equal(err, "too many lists in one set (at most 64)");
    assert_int_equal(dset_builder_add(b, 63, "", 0, DSET_EXACT, err, sizeof err), -1);
    /* a "@@" entry needs a twin list, and there is no room left */
    assert_int_equal(dset_builder_add(b, 0, "a.test", 6, DSET_EXACT | DSET_ALLOW, err, sizeof err), -1);
    /* an unwritable target leaves nothing behind */
    assert_int_equal(dset_builder_write(b, "/nonexistent-dir/x.set", NULL, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "/nonexistent-dir/x.set.tmp.%ld: cannot create", (long)getpid());
    assert_non_null(strstr(err, want));
    dset_builder_free(b);
}

static void empty_set(void **state)
{
    struct dset_builder *b = dset_builder_new();
    struct dset *set;
    struct dset_match m;
    (void)state;
    assert_int_equal(dset_builder_write(b, path, NULL, err, sizeof err), 0);
    dset_builder_free(b);
    set = dset_open(path, err, sizeof err);
    assert_non_null(set);
    assert_int_equal(dset_name_count(set), 0);
    assert_int_equal(look(set, "a.test", &m), DSET_NONE);
    dset_close(set);
}

/* Reads the set file into memory for the damage tests. */
static uint8_t *slurp(size_t *len)
{
    struct stat sb;
    uint8_t *buf;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    buf = malloc((size_t)sb.st_size + 16);
    assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return buf;
}

static void spill(const uint8_t *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static void expect_refused(const char *needle)
{
    struct dset *set = dset_open(path, err, sizeof err);
    assert_null(set);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
    assert_non_null(strstr(err, path));
}

static void damaged_files_refused(void **state)
{
    struct dset *set = build_sample(NULL);
    uint8_t *good, *bad;
    size_t len;
    (void)state;
    dset_close(set);
    good = slurp(&len);
    bad = malloc(len + 16);

    /* one flipped bit anywhere after the header */
    for (size_t off = 256; off < len; off += len / 7 + 1) {
        memcpy(bad, good, len);
        bad[off] ^= 0x10;
        spill(bad, len);
        expect_refused("checksum mismatch (file damaged?)");
    }
    /* header fields the other checks do not see: build time, key, checksum itself */
    {
        static const size_t offs[] = { 24, 56, 64, 72 };
        for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
            memcpy(bad, good, len);
            bad[offs[i]] ^= 0x01;
            spill(bad, len);
            expect_refused("checksum mismatch");
        }
    }
    /* truncated, header only, a few bytes, empty */
    spill(good, len - 1);
    expect_refused("truncated");
    spill(good, 256);
    expect_refused("truncated");
    spill(good, 100);
    expect_refused("too short for a domain set header");
    spill(good, 0);
    expect_refused("too short");
    /* trailing garbage */
    memcpy(bad, good, len);
    memset(bad + len, 'x', 8);
    spill(bad, len + 8);
    expect_refused("trailing garbage");
    /* wrong magic, version */
    memcpy(bad, good, len);
    memcpy(bad, "OTADSET0", 8);
    spill(bad, len);
    expect_refused("not a domain set (bad magic");
    memcpy(bad, good, len);
    bad[8] = 9;
    spill(bad, len);
    expect_refused("format version 9, this build reads versions 1 to 2");
    /* a section pointing outside the file */
    memcpy(bad, good, len);
    ((struct dset_file_header *)bad)->sec[DSET_SEC_NAMES].size = len;
    spill(bad, len);
    expect_refused("names section out of bounds");
    /* impossible counts */
    memcpy(bad, good, len);
    ((struct dset_file_header *)bad)->lists = 65;
    spill(bad, len);
    expect_refused("impossible counts");
    /* not a set at all */
    spill((const uint8_t *)"0.0.0.0 ads.test\n", 17);
    expect_refused("too short");
    assert_null(dset_open("/nonexistent.set", err, sizeof err));
    assert_string_equal(err, "/nonexistent.set: cannot open: No such file or directory");
    assert_null(dset_open(dir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));

    /* the good bytes still open, also from a buffer */
    {
        uint64_t *aligned = malloc(len + 8);
        struct dset *s2;
        struct dset_match m;
        memcpy(aligned, good, len);
        s2 = dset_open_buffer(aligned, len, "buffer", err, sizeof err);
        assert_non_null(s2);
        assert_int_equal(dset_lookup(s2, "www.example.com", 15, &m), DSET_BLOCK);
        dset_close(s2);
        assert_null(dset_open_buffer((uint8_t *)aligned + 1, len - 1, "buffer", err, sizeof err));
        free(aligned);
    }
    free(good);
    free(bad);
}

/* A rewrite replaces the file atomically: an open set keeps its old mapping. */
static void atomic_replace(void **state)
{
    struct dset *old = build_sample(NULL), *fresh;
    struct dset_builder *b = dset_builder_new();
    struct dset_match m;
    char tmp[600];
    int id;
    (void)state;
    id = dset_builder_add_list(b, "new", DSET_CAT_C2, 0, err, sizeof err);
    add(b, id, "c2.test", DSET_SUBTREE);
    assert_int_equal(dset_builder_write(b, path, NULL, err, sizeof err), 0);
    dset_builder_free(b);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);
    fresh = dset_open(path, err, sizeof err);
    assert_non_null(fresh);
    assert_int_equal(look(old, "www.example.com", &m), DSET_BLOCK);
    assert_int_equal(look(fresh, "www.example.com", &m), DSET_NONE);
    assert_int_equal(look(fresh, "a.c2.test", &m), DSET_BLOCK);
    assert_int_equal(m.categories, 1u << DSET_CAT_C2);
    dset_close(old);
    dset_close(fresh);
}

/* Many names: every one found, and names never added are (almost surely) not. */
static void many_names(void **state)
{
    struct dset_builder *b = dset_builder_new();
    struct dset *set;
    struct dset_match m;
    struct dset_build_stats bs;
    char name[64];
    int id, misses = 0, false_hits = 0;
    (void)state;
    id = dset_builder_add_list(b, "gen", DSET_CAT_ADS, 0, err, sizeof err);
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(name, sizeof name, "h%d.d%d.test", i, i % 977);
        assert_int_equal(dset_builder_add(b, id, name, (size_t)n, DSET_EXACT, err, sizeof err), 0);
    }
    assert_int_equal(dset_builder_write(b, path, &bs, err, sizeof err), 0);
    dset_builder_free(b);
    assert_int_equal(bs.names, 200000);
    assert_true((double)bs.lookup_bytes / 200000.0 <= 12.0);
    set = dset_open(path, err, sizeof err);
    assert_non_null(set);
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(name, sizeof name, "h%d.d%d.test", i, i % 977);
        misses += dset_lookup(set, name, (size_t)n, &m) != DSET_BLOCK;
        n = snprintf(name, sizeof name, "x%d.d%d.test", i, i % 977);
        false_hits += dset_lookup(set, name, (size_t)n, &m) != DSET_NONE;
    }
    assert_int_equal(misses, 0);
    assert_int_equal(false_hits, 0);
    dset_close(set);
}

/* Lookups hash only suffixes whose label count some entry has: check both ends. */
static void label_range(void **state)
{
    struct dset_builder *b = dset_builder_new();
    struct dset *set;
    struct dset_match m;
    int id;
    (void)state;
    id = dset_builder_add_list(b, "l", DSET_CAT_ADS, 0, err, sizeof err);
    add(b, id, "test", DSET_SUBTREE);                  /* one label: a whole TLD */
    add(b, id, "a.b.c.d.e.f.g.h.deep", DSET_SUBTREE);  /* nine labels */
    assert_int_equal(dset_builder_write(b, path, NULL, err, sizeof err), 0);
    dset_builder_free(b);
    set = dset_open(path, err, sizeof err);
    assert_non_null(set);
    assert_int_equal(look(set, "test", &m), DSET_BLOCK);
    assert_int_equal(look(set, "x.y.z.test", &m), DSET_BLOCK);
    assert_int_equal(m.matched_offset, 6);
    assert_int_equal(look(set, "1.2.3.4.5.6.7.8.9.10.11.12.a.b.c.d.e.f.g.h.deep", &m), DSET_BLOCK);
    assert_int_equal(m.matched_offset, 27);
    assert_int_equal(look(set, "b.c.d.e.f.g.h.deep", &m), DSET_NONE);
    assert_int_equal(look(set, "deep", &m), DSET_NONE);
    dset_close(set);
}

static void crc32c_values(void **state)
{
    uint8_t *buf = malloc(100000);
    (void)state;
    assert_int_equal(dset_crc32c(0, "123456789", 9), 0xe3069283u);
    for (size_t i = 0; i < 100000; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    /* the three-stream hardware path and the table path agree at every length class */
    for (size_t len = 0; len < 100000; len = len * 3 + 7) {
        uint32_t hw = dset_crc32c(0, buf, len);
        uint32_t sw = ~dset_crc32c_portable(~0u, buf, len);
        assert_int_equal(hw, sw);
    }
    /* incremental == one shot */
    assert_int_equal(dset_crc32c(dset_crc32c(0, buf, 40000), buf + 40000, 60000),
                     dset_crc32c(0, buf, 100000));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_and_lookup),
        cmocka_unit_test(masked_lookup),
        cmocka_unit_test(metadata_and_names),
        cmocka_unit_test(categories),
        cmocka_unit_test(builder_errors),
        cmocka_unit_test(empty_set),
        cmocka_unit_test(damaged_files_refused),
        cmocka_unit_test(atomic_replace),
        cmocka_unit_test(many_names),
        cmocka_unit_test(label_range),
        cmocka_unit_test(crc32c_values),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
