/* The parsers against the real lists in shared/data/blocklists: the entry counts of
 * its README must come out exactly, sample names must be there, and the five
 * hagezi-light files must give the same 61,746 names.
 * Data directory: $OTASUKE_SHARED_DATA, else ../shared/data (run from the repo root,
 * as tests/run.sh does; CI keeps shared/ beside the repository). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domainset.h"
#include "lists.h"

static char datadir[1024];

static const char *data_path(const char *file)
{
    static char path[1200];
    snprintf(path, sizeof path, "%s/blocklists/%s", datadir, file);
    return path;
}

/* Watches for a few sample names and feeds a builder (to count distinct names). */
struct probe {
    const char *want[4];
    unsigned want_flags[4];
    int found[4];
    struct dset_builder *b;
    int list_id;
};

static int probe_fn(void *ctx, const char *name, size_t len, unsigned flags)
{
    struct probe *p = ctx;
    char err[128];
    for (int i = 0; i < 4 && p->want[i]; i++)
        if (strlen(p->want[i]) == len && memcmp(p->want[i], name, len) == 0 &&
            flags == p->want_flags[i])
            p->found[i] = 1;
    if (p->b && dset_builder_add(p->b, p->list_id, name, len, flags, err, sizeof err) < 0)
        return 1;
    return 0;
}

struct expect {
    const char *file;
    int format;
    uint64_t entries, rejected, unsupported;
    const char *samples[4];
    unsigned flags[4];
};

#define E DSET_EXACT
#define S DSET_SUBTREE
#define A DSET_ALLOW
static const struct expect expects[] = {
    { "hagezi-light.adblock.txt", LIST_FMT_ADBLOCK, 61746, 0, 0,
      { "0.beer", "f9e79f670c.000491b06a.com", "propertybook.co.zw" }, { S, S, S } },
    { "hagezi-light.domains.txt", LIST_FMT_PLAIN, 127421, 0, 0,
      { "0.beer", "www.0.beer", "zzzzzzzkplpllllpppllpppl.com" }, { E, E, E } },
    { "hagezi-light.onlydomains.txt", LIST_FMT_PLAIN, 61746, 0, 0,
      { "0.beer", "0006665ab1.shop" }, { E, E } },
    { "hagezi-light.wildcard.txt", LIST_FMT_WILDCARD, 61746, 0, 0,
      { "0.beer", "zzzzzzzkplpllllpppllpppl.com" }, { S, S } },
    { "hagezi-light.rpz.txt", LIST_FMT_RPZ, 123492, 0, 0,
      { "smetrics.abbott", "smetrics.abbott", "propertybook.co.zw" }, { E, S, S } },
    { "hagezi-dyndns.rpz.txt", LIST_FMT_RPZ, 2954, 0, 0,
      { "120v.ac", "120v.ac", "project.zone" }, { E, S, S } },
    /* 917 rules: 58 with '*' inside the name and "@@||mtpc.se" (no ^) are unsupported */
    { "allowlist-referral.adblock.txt", LIST_FMT_ADBLOCK, 858, 0, 59,
      { "1aurl.io", "yellowbook.com" }, { S | A, S | A } },
    { "doh-vpn-proxy-bypass.domains.txt", LIST_FMT_PLAIN, 1205, 0, 0,
      { "012proxy.ga", "1dot1dot1dot1.cloudflare-dns.com", "zpn.im" }, { E, E, E } },
    { "fake.domains.txt", LIST_FMT_PLAIN, 14043, 0, 0,
      { "10xcryptotrade.uk", "zzyha.shop" }, { E, E } },
    { "stevenblack.domains.txt", LIST_FMT_PLAIN, 140626, 0, 0,
      { "0.0.0.0.beeglivesex.com", "a8aspconv.xn--biglobe-kc9k.com" }, { E, E } },
    { "stevenblack.dnsmasq.txt", LIST_FMT_DNSMASQ, 85291, 0, 0,
      { "0.0.0.0.beeglivesex.com", "000free.us" }, { S, S } },
    /* three names there have upper-case letters: they come out lower-cased */
    { "adguarddns.hosts.txt", LIST_FMT_HOSTS, 123962, 0, 0,
      { "000-038.net.daraz.com", "eypgovh0oe3pfm.xyz", "gwrtdp-tn690bfadt.tclclouds.com",
        "zzz.pissrip.net" }, { E, E, E, E } },
};

static void one_file(const struct expect *x, int format)
{
    struct list_opts o = { format, 0 };
    struct list_stats *st = calloc(1, sizeof *st);
    struct probe p;
    char err[512];

    assert_non_null(st);
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 4; i++) {
        p.want[i] = x->samples[i];
        p.want_flags[i] = x->flags[i];
    }
    if (list_parse_path(data_path(x->file), &o, probe_fn, &p, st, err, sizeof err) < 0)
        fail_msg("%s", err);
    if (st->entries != x->entries || st->rejected != x->rejected ||
        st->unsupported != x->unsupported || st->format != x->format)
        fail_msg("%s: format %s entries %llu rejected %llu unsupported %llu", x->file,
                 list_format_name(st->format), (unsigned long long)st->entries,
                 (unsigned long long)st->rejected, (unsigned long long)st->unsupported);
    for (int i = 0; i < 4 && x->samples[i]; i++)
        if (!p.found[i])
            fail_msg("%s: sample %s (flags %u) missing", x->file, x->samples[i], x->flags[i]);
    free(st);
}

static void counts_autodetected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++)
        one_file(&expects[i], LIST_FMT_AUTO);
}

static void counts_forced_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++)
        one_file(&expects[i], expects[i].format);
}

/* Parses a file into a fresh builder; returns distinct names. */
static size_t distinct_names(const char *file, struct dset_builder *b, int list_id)
{
    struct probe p;
    struct list_stats *st = calloc(1, sizeof *st);
    char err[512];
    size_t before = dset_builder_names(b);

    memset(&p, 0, sizeof p);
    p.b = b;
    p.list_id = list_id;
    if (list_parse_path(data_path(file), NULL, probe_fn, &p, st, err, sizeof err) < 0)
        fail_msg("%s", err);
    free(st);
    return dset_builder_names(b) - before;
}

static void hagezi_light_same_names(void **state)
{
    static const char *files[] = { "hagezi-light.adblock.txt", "hagezi-light.onlydomains.txt",
        "hagezi-light.wildcard.txt", "hagezi-light.rpz.txt" };
    struct dset_builder *all = dset_builder_new();
    char err[128];
    (void)state;
    assert_non_null(all);
    for (size_t i = 0; i < 4; i++) {
        struct dset_builder *one = dset_builder_new();
        int id = dset_builder_add_list(one, "x", DSET_CAT_ADS, 0, err, sizeof err);
        int id_all = dset_builder_add_list(all, files[i] + 13, DSET_CAT_ADS, 0, err, sizeof err);
        assert_int_equal(distinct_names(files[i], one, id), 61746);
        distinct_names(files[i], all, id_all);
        dset_builder_free(one);
    }
    /* the union of the four is still the same 61,746 names */
    assert_int_equal(dset_builder_names(all), 61746);
    /* and the domains file (its superset) adds only subdomains of those */
    {
        int id = dset_builder_add_list(all, "domains", DSET_CAT_ADS, 0, err, sizeof err);
        assert_int_equal(distinct_names("hagezi-light.domains.txt", all, id), 127421 - 61746);
    }
    dset_builder_free(all);
}

/* Every name of the domains superset falls under one of the 61,746 subtree names:
 * built into a set, each must come out blocked with the adblock list as the match. */
static void hagezi_superset_covered(void **state)
{
    struct dset_builder *b = dset_builder_new();
    struct dset *set;
    char err[256], path[] = "/tmp/otasuke-test-lists-XXXXXX";
    FILE *f;
    char line[300];
    long covered = 0, total = 0;
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    close(fd);
    {
        int id = dset_builder_add_list(b, "light", DSET_CAT_ADS, 0, err, sizeof err);
        assert_int_equal(distinct_names("hagezi-light.adblock.txt", b, id), 61746);
    }
    assert_int_equal(dset_builder_write(b, path, NULL, err, sizeof err), 0);
    dset_builder_free(b);
    set = dset_open(path, err, sizeof err);
    assert_non_null(set);
    f = fopen(data_path("hagezi-light.domains.txt"), "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        struct dset_match m;
        size_t n = strcspn(line, "\r\n");
        if (line[0] == '#' || n == 0)
            continue;
        total++;
        covered += dset_lookup(set, line, n, &m) == DSET_BLOCK && m.lists == 1;
    }
    fclose(f);
    dset_close(set);
    unlink(path);
    assert_int_equal(total, 127421);
    assert_int_equal(covered, 127421);
}

int main(void)
{
    const char *env = getenv("OTASUKE_SHARED_DATA");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_autodetected),
        cmocka_unit_test(counts_forced_format),
        cmocka_unit_test(hagezi_light_same_names),
        cmocka_unit_test(hagezi_superset_covered),
    };
    snprintf(datadir, sizeof datadir, "%s", env && *env ? env : "../shared/data");
    if (access(data_path("hagezi-light.adblock.txt"), R_OK) != 0) {
        fprintf(stderr, "test_lists_data: shared test data not found under %s/blocklists "
                "(set OTASUKE_SHARED_DATA or run from the repository root)\n", datadir);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
