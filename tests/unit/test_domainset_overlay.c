/* Domain set overlays (PATH.overlay): consulted before the base, tombstones hide base
 * names, a stale overlay (another base's key) is ignored, a damaged or mismatched one
 * fails the open so the caller keeps its previous set. */
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

#include "domainset_test_util.h"

static const uint8_t KEY[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static void add(struct dset_builder *b, int list, const char *name)
{
    assert_int_equal(dset_builder_add(b, list, name, strlen(name), DSET_SUBTREE, err,
                                      sizeof err), 0);
}

/* lists: 0 = feed/malware, 1 = feed/allow (+ 2 = feed/ads when extra) */
static struct dset_builder *builder(const uint8_t *key, int extra)
{
    struct dset_builder *b = dset_builder_new();
    assert_non_null(b);
    if (key)
        dset_builder_set_key(b, key);
    assert_int_equal(dset_builder_add_list(b, "feed/malware", DSET_CAT_MALWARE, 0, err, sizeof err), 0);
    assert_int_equal(dset_builder_add_list(b, "feed/allow", DSET_CAT_CUSTOM, 1, err, sizeof err), 1);
    if (extra)
        assert_int_equal(dset_builder_add_list(b, "feed/ads", DSET_CAT_ADS, 0, err, sizeof err), 2);
    return b;
}

static void write_base(void)
{
    struct dset_builder *b = builder(KEY, 0);
    add(b, 0, "evil.test");
    add(b, 0, "gone.test");
    add(b, 0, "keep.test");
    assert_int_equal(dset_builder_write(b, base_path, NULL, err, sizeof err), 0);
    /* adding after a write is refused, not a crash */
    assert_int_equal(dset_builder_add(b, 0, "late.test", 9, DSET_SUBTREE, err, sizeof err), -1);
    dset_builder_free(b);
}

static void write_overlay(const uint8_t *key, int extra)
{
    struct dset_builder *b = builder(key, extra);
    assert_int_equal(dset_builder_add_tombstone(b, "gone.test", 9, err, sizeof err), 0);
    assert_int_equal(dset_builder_add_tombstone(b, "new.test", 8, err, sizeof err), 0);
    add(b, 0, "new.test");          /* tombstone first, then its lists: listed */
    add(b, 1, "ok.evil.test");      /* an allow below a base block */
    assert_int_equal(dset_builder_write(b, ov_path, NULL, err, sizeof err), 0);
    dset_builder_free(b);
}

static enum dset_verdict look(const struct dset *s, const char *name)
{
    struct dset_match m;
    return dset_lookup(s, name, strlen(name), &m);
}


static void test_overlay_first_then_base(void **state)
{
    (void)state;
    write_base();
    unlink(ov_path);
    struct dset *s = dset_open(base_path, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(dset_overlay_names(s), 0);
    assert_int_equal(look(s, "x.gone.test"), DSET_BLOCK);
    assert_int_equal(look(s, "new.test"), DSET_NONE);
    dset_close(s);

    write_overlay(KEY, 0);
    s = dset_open(base_path, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(dset_overlay_names(s), 3);
    assert_int_equal(look(s, "evil.test"), DSET_BLOCK);          /* base only */
    assert_int_equal(look(s, "a.keep.test"), DSET_BLOCK);
    assert_int_equal(look(s, "x.gone.test"), DSET_NONE);         /* tombstone hides it */
    assert_int_equal(look(s, "gone.test"), DSET_NONE);
    assert_int_equal(look(s, "www.new.test"), DSET_BLOCK);       /* overlay only */
    assert_int_equal(look(s, "a.ok.evil.test"), DSET_ALLOW_VERDICT);   /* overlay allow beats base block */
    assert_int_equal(look(s, "other.test"), DSET_NONE);
    unsigned f;
    uint64_t l;
    assert_int_equal(dset_find_name(s, "gone.test", 9, &f, &l), 0);
    assert_int_equal(dset_find_name(s, "new.test", 8, &f, &l), 1);
    assert_true(l == 1);
    assert_int_equal(dset_find_name(s, "keep.test", 9, &f, &l), 1);

    /* what the owner is shown: 3 base names, gone.test removed, new.test and
     * ok.evil.test added */
    uint64_t added, removed;
    assert_int_equal(dset_base_name_count(s), 3);
    assert_int_equal(dset_name_count(s), 4);
    dset_overlay_counts(s, &added, &removed);
    assert_int_equal(added, 2);
    assert_int_equal(removed, 1);
    /* the dump: base order first, then what only the overlay has */
    {
        static const char *const want[] = { "evil.test", "keep.test", "new.test", "ok.evil.test" };
        static const uint64_t want_lists[] = { 1, 1, 1, 2 };
        struct dset_iter it = { 0 };
        const char *name;
        size_t n = 0;
        while (dset_iter_next(s, &it, &name, &f, &l)) {
            assert_true(n < 4);
            assert_string_equal(name, want[n]);
            assert_int_equal(l, want_lists[n]);
            n++;
        }
        assert_int_equal(n, 4);
        assert_int_equal(f, DSET_SUBTREE | DSET_ALLOW);
    }
    dset_close(s);
}

static void test_stale_overlay_is_ignored(void **state)
{
    (void)state;
    static const uint8_t other[16] = { 9, 9, 9 };
    write_base();
    write_overlay(other, 0);
    struct dset *s = dset_open(base_path, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(dset_overlay_names(s), 0);
    assert_int_equal(look(s, "gone.test"), DSET_BLOCK);
    assert_int_equal(look(s, "new.test"), DSET_NONE);
    assert_int_equal(dset_name_count(s), 3);   /* a stale overlay counts for nothing */
    dset_close(s);
}

static void test_mismatched_lists_fail(void **state)
{
    (void)state;
    write_base();
    write_overlay(KEY, 1);   /* one list more than the base */
    assert_null(dset_open(base_path, err, sizeof err));
    assert_non_null(strstr(err, "overlay"));
    assert_non_null(strstr(err, "lists"));
}

static void test_damaged_overlay_fails(void **state)
{
    (void)state;
    write_base();
    write_overlay(KEY, 0);
    FILE *f = fopen(ov_path, "r+b");
    assert_non_null(f);
    fseek(f, 300, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 300, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    assert_null(dset_open(base_path, err, sizeof err));
    assert_non_null(strstr(err, "domains.set.overlay"));
    /* removed again: the base alone opens */
    unlink(ov_path);
    struct dset *s = dset_open(base_path, err, sizeof err);
    assert_non_null(s);
    dset_close(s);
}

/* Differential: for random bases and random changes (adds, list changes, removals),
 * base + overlay must answer every lookup exactly like a full build of the merged
 * entries: verdict, categories, lists and which suffix matched. Names come from a tiny
 * alphabet so parents and children of changed names are everywhere. */
#define NN 120

static uint64_t rnd_state = 42;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(rnd_state >> 33) % n;
}

static void random_name(char *out, size_t outlen)
{
    static const char *const lab[] = { "a", "b", "c", "dd", "e", "f" };
    size_t n = 0;
    unsigned depth = 1 + rnd(3);
    out[0] = '\0';
    for (unsigned i = 0; i < depth; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s.", lab[rnd(6)]);
    snprintf(out + n, outlen - n, "test");
}

static void add_mask(struct dset_builder *b, const char *name, unsigned mask)
{
    for (int l = 0; l < 3; l++)
        if (mask >> l & 1)
            assert_int_equal(dset_builder_add(b, l, name, strlen(name),
                                              (mask >> (l + 3) & 1) ? DSET_EXACT : DSET_SUBTREE,
                                              err, sizeof err), 0);
}

static struct dset_builder *three_lists(void)
{
    struct dset_builder *b = dset_builder_new();
    assert_non_null(b);
    assert_int_equal(dset_builder_add_list(b, "f/malware", DSET_CAT_MALWARE, 0, err, sizeof err), 0);
    assert_int_equal(dset_builder_add_list(b, "f/ads", DSET_CAT_ADS, 0, err, sizeof err), 1);
    assert_int_equal(dset_builder_add_list(b, "f/allow", DSET_CAT_CUSTOM, 1, err, sizeof err), 2);
    return b;
}

/* Order-independent digest of a dump (name, flags, lists); also checks no name twice. */
static uint64_t dump_digest(const struct dset *s)
{
    struct dset_iter it = { 0 };
    const char *name, *seen[NN];
    unsigned flags, n = 0;
    uint64_t lists, sum = 0;
    while (dset_iter_next(s, &it, &name, &flags, &lists)) {
        uint64_t h = 1469598103934665603ull;
        assert_true(n < NN);
        for (unsigned k = 0; k < n; k++)
            if (!strcmp(seen[k], name))
                fail_msg("%s twice in the dump", name);
        seen[n++] = name;
        for (const char *c = name; *c; c++)
            h = (h ^ (uint8_t)*c) * 1099511628211ull;
        h = (h ^ flags) * 1099511628211ull;
        h = (h ^ lists) * 1099511628211ull;
        sum += h;
    }
    return sum + n;
}

static void test_overlay_equals_full_build(void **state)
{
    (void)state;
    char names[NN][64], full_path[160], q[96];
    unsigned base_mask[NN], new_mask[NN];
    int changed[NN];
    snprintf(full_path, sizeof full_path, "%s/full.set", dir);
    for (int round = 0; round < 40; round++) {
        int n = 0;
        /* distinct random names; masks: bits 0-2 lists, bits 3-5 "exact" for that list */
        while (n < NN) {
            random_name(names[n], sizeof names[n]);
            int dup = 0;
            for (int k = 0; k < n && !dup; k++)
                dup = !strcmp(names[k], names[n]);
            if (!dup)
                n++;
        }
        for (int i = 0; i < NN; i++) {
            base_mask[i] = rnd(3) ? 0 : rnd(64);      /* a third of the names in the base */
            changed[i] = rnd(4) == 0;
            new_mask[i] = changed[i] ? (rnd(3) ? rnd(64) : 0) : base_mask[i];
            if (!(base_mask[i] & 7))
                base_mask[i] = 0;
            if (!(new_mask[i] & 7))
                new_mask[i] = 0;
        }
        struct dset_builder *b = three_lists();
        uint8_t key[16];
        for (int i = 0; i < NN; i++)
            add_mask(b, names[i], base_mask[i]);
        assert_int_equal(dset_builder_write(b, base_path, NULL, err, sizeof err), 0);
        dset_builder_get_key(b, key);
        dset_builder_free(b);
        struct dset_builder *o = three_lists();
        dset_builder_set_key(o, key);
        struct dset_builder *f = three_lists();
        for (int i = 0; i < NN; i++) {
            if (changed[i]) {
                assert_int_equal(dset_builder_add_tombstone(o, names[i], strlen(names[i]),
                                                            err, sizeof err), 0);
                add_mask(o, names[i], new_mask[i]);
            }
            add_mask(f, names[i], new_mask[i]);
        }
        assert_int_equal(dset_builder_write(o, ov_path, NULL, err, sizeof err), 0);
        assert_int_equal(dset_builder_write(f, full_path, NULL, err, sizeof err), 0);
        dset_builder_free(o);
        dset_builder_free(f);
        struct dset *s = dset_open(base_path, err, sizeof err), *t;
        assert_non_null(s);
        /* the full build must not pick up an overlay: it has its own name */
        t = dset_open(full_path, err, sizeof err);
        assert_non_null(t);
        for (int i = 0; i < NN * 3; i++) {
            const char *name = names[i % NN];
            if (i >= NN) {   /* children of listed names, and names nobody listed */
                snprintf(q, sizeof q, "%s.%s", i < 2 * NN ? "x" : "b", name);
                name = q;
            }
            struct dset_match ma, mb;
            enum dset_verdict va = dset_lookup(s, name, strlen(name), &ma);
            enum dset_verdict vb = dset_lookup(t, name, strlen(name), &mb);
            if (va != vb || ma.categories != mb.categories || ma.lists != mb.lists ||
                (va != DSET_NONE && (ma.matched_offset != mb.matched_offset ||
                                     ma.matched_flags != mb.matched_flags)))
                fail_msg("round %d, %s: overlay says %d/%x/%llx@%zu, full build %d/%x/%llx@%zu",
                         round, name, va, ma.categories, (unsigned long long)ma.lists,
                         ma.matched_offset, vb, mb.categories, (unsigned long long)mb.lists,
                         mb.matched_offset);
        }
        /* counts and dump: the same names with the same lists and flags */
        assert_int_equal(dset_name_count(s), dset_name_count(t));
        assert_int_equal(dump_digest(s), dump_digest(t));
        dset_close(s);
        dset_close(t);
    }
    unlink(full_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlay_first_then_base),
        cmocka_unit_test(test_stale_overlay_is_ignored),
        cmocka_unit_test(test_mismatched_lists_fail),
        cmocka_unit_test(test_damaged_overlay_fails),
        cmocka_unit_test(test_overlay_equals_full_build),
    };
    return cmocka_run_group_tests(tests, dset_test_setup, dset_test_teardown);
}
