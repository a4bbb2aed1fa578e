/* In-set 48-bit hash collisions: two names of one set (or of a base and its overlay)
 * with the same hash must each keep their own lists.
 *
 * The pairs below were found offline for KEY with a Brent cycle search over
 * f(h) = hash48(KEY, "<h as 12 hex digits>.test") (about 2^24 hashes per pair); the
 * first test checks they still collide, so a change of the hash function fails here
 * loudly instead of leaving the other tests without a collision to test. */
#include "domainset.h"
#include "domainset_format.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "domainset_test_util.h"

static const uint8_t KEY[16] = { 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f };
/* A and B share hash f002d82f5876, C and D share 3eadf6802af0 under KEY */
#define A "c105ca0d70be.test"
#define B "0d7164b28c41.test"
#define C "1b7ee134fcfe.example"
#define D "117b53a46dbc.example"

enum { L_ADS, L_MAL, L_ALLOW };
#define BIT(l) (1ull << (l))


static struct dset_builder *builder(void)
{
    struct dset_builder *b = dset_builder_new();
    assert_non_null(b);
    dset_builder_set_key(b, KEY);
    assert_int_equal(dset_builder_add_list(b, "f/ads", DSET_CAT_ADS, 0, err, sizeof err), L_ADS);
    assert_int_equal(dset_builder_add_list(b, "f/malware", DSET_CAT_MALWARE, 0, err, sizeof err), L_MAL);
    assert_int_equal(dset_builder_add_list(b, "f/allow", DSET_CAT_CUSTOM, 1, err, sizeof err), L_ALLOW);
    return b;
}

static void add(struct dset_builder *b, int list, const char *name, unsigned flags)
{
    assert_int_equal(dset_builder_add(b, list, name, strlen(name), flags, err, sizeof err), 0);
}

static void tomb(struct dset_builder *b, const char *name)
{
    assert_int_equal(dset_builder_add_tombstone(b, name, strlen(name), err, sizeof err), 0);
}

/* In an overlay: name's complete current record is this one entry (as the agent does:
 * a tombstone, then every list that holds the name now). */
static void relist(struct dset_builder *o, int list, const char *name, unsigned flags)
{
    tomb(o, name);
    add(o, list, name, flags);
}

/* Some ordinary names around the pairs, so the pairs sit in a realistic table. */
static void fill(struct dset_builder *b, int n)
{
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "filler%d.test", i);
        add(b, i % 2 ? L_ADS : L_MAL, name, DSET_SUBTREE);
    }
}

static void write_set(struct dset_builder *b, const char *path, struct dset_build_stats *st)
{
    assert_int_equal(dset_builder_write(b, path, st, err, sizeof err), 0);
    dset_builder_free(b);
}

static struct dset *open_set(void)
{
    struct dset *s = dset_open(base_path, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    return s;
}

/* Checks one lookup: verdict, category mask and list mask. */
static void expect(const struct dset *s, const char *name, enum dset_verdict v, uint32_t cats,
                   uint64_t lists)
{
    struct dset_match m;
    enum dset_verdict got = dset_lookup(s, name, strlen(name), &m);
    if (got != v || m.categories != cats || m.lists != lists)
        fail_msg("%s: verdict %d categories %#x lists %#llx, expected %d %#x %#llx", name, got,
                 m.categories, (unsigned long long)m.lists, v, cats, (unsigned long long)lists);
}

static void expect_entry(const struct dset *s, const char *name, int found, unsigned flags,
                         uint64_t lists)
{
    unsigned f = 0;
    uint64_t l = 0;
    assert_int_equal(dset_find_name(s, name, strlen(name), &f, &l), found);
    if (found && (f != flags || l != lists))
        fail_msg("%s: flags %#x lists %#llx, expected %#x %#llx", name, f,
                 (unsigned long long)l, flags, (unsigned long long)lists);
}

#define ADS (1u << DSET_CAT_ADS)
#define MAL (1u << DSET_CAT_MALWARE)

static void pairs_collide(void **state)
{
    (void)state;
    assert_int_equal(dset_hash48(KEY, A, strlen(A)), dset_hash48(KEY, B, strlen(B)));
    assert_int_equal(dset_hash48(KEY, C, strlen(C)), dset_hash48(KEY, D, strlen(D)));
    assert_int_equal(dset_hash48(KEY, A, strlen(A)), 0xf002d82f5876ull);
    assert_int_not_equal(dset_hash48(KEY, A, strlen(A)), dset_hash48(KEY, C, strlen(C)));
}

/* The bug this fixes: A (ads) and B (malware) used to share one merged record, so A was
 * reported as malware and B's exact entry blocked B's subtree via A's subtree bit; an
 * allow-listed C shared D's ads block. */
static void colliding_names_keep_their_lists(void **state)
{
    struct dset_build_stats st;
    struct dset_builder *b = builder();
    (void)state;
    fill(b, 500);
    add(b, L_ADS, A, DSET_SUBTREE);
    add(b, L_MAL, B, DSET_EXACT);
    add(b, L_ALLOW, C, DSET_SUBTREE);
    add(b, L_ADS, D, DSET_SUBTREE);
    add(b, L_MAL, "www." C, DSET_EXACT);   /* block below an allowed name */
    write_set(b, base_path, &st);
    assert_int_equal(st.names, 505);
    assert_int_equal(st.shared_hash, 4);   /* two pairs */

    struct dset *s = open_set();
    assert_int_equal(dset_name_count(s), 505);
    expect(s, A, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, "x." A, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, B, DSET_BLOCK, MAL, BIT(L_MAL));
    expect(s, "x." B, DSET_NONE, 0, 0);                /* B is exact: its subtree is free */
    expect(s, C, DSET_ALLOW_VERDICT, 0, BIT(L_ALLOW));
    expect(s, "x." C, DSET_ALLOW_VERDICT, 0, BIT(L_ALLOW));
    expect(s, "www." C, DSET_ALLOW_VERDICT, MAL, BIT(L_ALLOW) | BIT(L_MAL));
    expect(s, D, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, "a.b." D, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, "filler7.test", DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, "other.test", DSET_NONE, 0, 0);

    /* the per-group view: with only malware enabled A is not blocked */
    struct dset_match m;
    assert_int_equal(dset_lookup_masked(s, A, strlen(A), MAL, UINT64_MAX, &m), DSET_NONE);
    assert_int_equal(dset_lookup_masked(s, B, strlen(B), ADS, UINT64_MAX, &m), DSET_NONE);
    assert_int_equal(dset_lookup_masked(s, B, strlen(B), MAL, UINT64_MAX, &m), DSET_BLOCK);

    /* explain's exact check and the dump */
    expect_entry(s, A, 1, DSET_SUBTREE, BIT(L_ADS));
    expect_entry(s, B, 1, DSET_EXACT, BIT(L_MAL));
    expect_entry(s, C, 1, DSET_SUBTREE | DSET_ALLOW, BIT(L_ALLOW));
    expect_entry(s, D, 1, DSET_SUBTREE, BIT(L_ADS));
    expect_entry(s, "x." A, 0, 0, 0);
    struct dset_iter it = { 0 };
    const char *name;
    unsigned flags;
    uint64_t lists;
    int seen = 0, n = 0;
    while (dset_iter_next(s, &it, &name, &flags, &lists)) {
        n++;
        if (!strcmp(name, A) && lists == BIT(L_ADS))
            seen |= 1;
        if (!strcmp(name, B) && lists == BIT(L_MAL))
            seen |= 2;
        if (!strcmp(name, C) && lists == BIT(L_ALLOW))
            seen |= 4;
        if (!strcmp(name, D) && lists == BIT(L_ADS))
            seen |= 8;
    }
    assert_int_equal(n, 505);
    assert_int_equal(seen, 15);
    dset_close(s);
}

/* One name of a pair alone: no shared slot, and its partner is not found. */
static void one_of_a_pair(void **state)
{
    struct dset_build_stats st;
    struct dset_builder *b = builder();
    (void)state;
    add(b, L_MAL, A, DSET_SUBTREE);
    write_set(b, base_path, &st);
    assert_int_equal(st.shared_hash, 0);
    struct dset *s = open_set();
    expect(s, A, DSET_BLOCK, MAL, BIT(L_MAL));
    expect_entry(s, B, 0, 0, 0);   /* explain confirms by name */
    dset_close(s);
}

/* An overlay name sharing a hash with a base name must not answer for it, whether it
 * adds, changes or removes; the name count and the dump follow. */
static void overlay_name_sharing_a_base_hash(void **state)
{
    struct dset_builder *b = builder(), *o;
    struct dset *s;
    uint64_t added, removed;
    (void)state;
    fill(b, 50);
    add(b, L_ADS, A, DSET_SUBTREE);
    write_set(b, base_path, NULL);

    /* overlay adds B (malware): A stays ads only, B is malware only */
    o = builder();
    relist(o, L_MAL, B, DSET_EXACT);
    write_set(o, ov_path, NULL);
    s = open_set();
    expect(s, A, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, "x." A, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, B, DSET_BLOCK, MAL, BIT(L_MAL));
    expect(s, "x." B, DSET_NONE, 0, 0);
    expect_entry(s, A, 1, DSET_SUBTREE, BIT(L_ADS));
    expect_entry(s, B, 1, DSET_EXACT, BIT(L_MAL));
    assert_int_equal(dset_name_count(s), 52);
    dset_overlay_counts(s, &added, &removed);
    assert_int_equal(added, 1);
    assert_int_equal(removed, 0);
    dset_close(s);

    /* overlay removes B, which the base never had: A is untouched, nothing removed */
    o = builder();
    tomb(o, B);
    write_set(o, ov_path, NULL);
    s = open_set();
    expect(s, A, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, B, DSET_NONE, 0, 0);
    assert_int_equal(dset_name_count(s), 51);
    dset_close(s);

    /* overlay removes A and lists both A (allow) and B (ads): a shared slot in the
     * overlay itself */
    o = builder();
    relist(o, L_ALLOW, A, DSET_EXACT);
    add(o, L_ADS, B, DSET_SUBTREE);
    struct dset_build_stats st;
    write_set(o, ov_path, &st);
    assert_int_equal(st.shared_hash, 2);
    s = open_set();
    expect(s, A, DSET_ALLOW_VERDICT, 0, BIT(L_ALLOW));
    expect(s, "x." A, DSET_NONE, 0, 0);    /* the base's subtree block was replaced */
    expect(s, "x." B, DSET_BLOCK, ADS, BIT(L_ADS));
    assert_int_equal(dset_name_count(s), 52);
    dset_close(s);

    /* overlay removes A alone: B (never listed) stays unlisted, A is gone */
    o = builder();
    tomb(o, A);
    write_set(o, ov_path, NULL);
    s = open_set();
    expect(s, A, DSET_NONE, 0, 0);
    expect(s, "x." A, DSET_NONE, 0, 0);
    expect_entry(s, A, 0, 0, 0);
    assert_int_equal(dset_name_count(s), 50);
    dset_overlay_counts(s, &added, &removed);
    assert_int_equal(added, 0);
    assert_int_equal(removed, 1);
    dset_close(s);
}

/* A base with both names of a pair and an overlay changing one of them. */
static void overlay_changes_one_of_a_base_pair(void **state)
{
    struct dset_builder *b = builder(), *o;
    (void)state;
    add(b, L_ADS, C, DSET_SUBTREE);
    add(b, L_MAL, D, DSET_SUBTREE);
    write_set(b, base_path, NULL);
    o = builder();
    relist(o, L_ALLOW, D, DSET_SUBTREE);
    write_set(o, ov_path, NULL);
    struct dset *s = open_set();
    expect(s, "w." C, DSET_BLOCK, ADS, BIT(L_ADS));
    expect(s, "w." D, DSET_ALLOW_VERDICT, 0, BIT(L_ALLOW));
    assert_int_equal(dset_name_count(s), 2);
    dset_close(s);
}

static uint8_t *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = aligned_alloc(8, (*len + 7) & ~(size_t)7);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void fix_checksum(uint8_t *buf, size_t len)
{
    struct dset_file_header *h = (void *)buf;
    h->checksum = 0;
    uint32_t crc = dset_crc32c(0, h, sizeof *h);
    h->checksum = dset_crc32c(crc, buf + sizeof *h, len - sizeof *h);
}

/* A checksummed file whose shared section lies is still refused, naming the section. */
static void damaged_shared_section_refused(void **state)
{
    struct dset_builder *b = builder();
    size_t len;
    (void)state;
    add(b, L_ADS, A, DSET_SUBTREE);
    add(b, L_MAL, B, DSET_SUBTREE);
    add(b, L_ADS, C, DSET_SUBTREE);
    add(b, L_MAL, D, DSET_SUBTREE);
    write_set(b, base_path, NULL);
    uint8_t *good = slurp(base_path, &len), *bad = aligned_alloc(8, (len + 7) & ~(size_t)7);
    const struct dset_file_header *h = (const void *)good;
    size_t at = h->sec[DSET_SEC_SHARED].offset;
    assert_int_equal(h->sec[DSET_SEC_SHARED].size, 4 * sizeof(struct dset_file_shared));
    static const struct {
        size_t field;   /* byte offset in the entry */
        uint64_t value;
        int width;
    } cases[] = {
        { 8, 0xffffff, 4 },      /* name offset outside the names */
        { 12, 9999, 4 },         /* record index outside the records */
        { 0, 0, 8 },             /* hash 0 */
        { 0, 1ull << 50, 8 },    /* more than 48 bits */
        { 0, 1, 8 },             /* second entry's hash below the first's: unsorted */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, good, len);
        size_t entry = at + (i == 4 ? sizeof(struct dset_file_shared) : 0);
        memcpy(bad + entry + cases[i].field, &cases[i].value, (size_t)cases[i].width);
        fix_checksum(bad, len);
        struct dset *s = dset_open_buffer(bad, len, "shared.set", err, sizeof err);
        if (s)
            fail_msg("case %zu opened", i);
        assert_non_null(strstr(err, "shared-hash entry"));
    }
    /* a size that is not whole entries */
    memcpy(bad, good, len);
    ((struct dset_file_header *)bad)->sec[DSET_SEC_SHARED].size -= 8;
    fix_checksum(bad, len);
    assert_null(dset_open_buffer(bad, len, "shared.set", err, sizeof err));
    assert_non_null(strstr(err, "shared-hash section"));
    free(good);
    free(bad);
}

/* A version-1 file (no shared section; what boxes have before the upgrade) still
 * opens and answers. */
static void version_1_file_reads(void **state)
{
    struct dset_builder *b = builder();
    size_t len;
    (void)state;
    fill(b, 20);
    write_set(b, base_path, NULL);
    uint8_t *buf = slurp(base_path, &len);
    struct dset_file_header *h = (void *)buf;
    assert_int_equal(h->version, 2);
    assert_int_equal(h->sec[DSET_SEC_SHARED].size, 0);
    assert_int_equal(h->sec[DSET_SEC_SHARED].offset, len);
    h->version = 1;
    memset(&h->sec[DSET_SEC_SHARED], 0, sizeof h->sec[0]);   /* reserved bytes in v1 */
    fix_checksum(buf, len);
    struct dset *s = dset_open_buffer(buf, len, "v1.set", err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    expect(s, "a.filler3.test", DSET_BLOCK, ADS, BIT(L_ADS));
    expect_entry(s, "filler4.test", 1, DSET_SUBTREE, BIT(L_MAL));
    assert_int_equal(dset_name_count(s), 20);
    dset_close(s);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pairs_collide),
        cmocka_unit_test(colliding_names_keep_their_lists),
        cmocka_unit_test(one_of_a_pair),
        cmocka_unit_test(overlay_name_sharing_a_base_hash),
        cmocka_unit_test(overlay_changes_one_of_a_base_pair),
        cmocka_unit_test(damaged_shared_section_refused),
        cmocka_unit_test(version_1_file_reads),
    };
    return cmocka_run_group_tests(tests, dset_test_setup, dset_test_teardown);
}
