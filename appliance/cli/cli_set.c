/* otasukectl set: build compiled domain sets from lists, and look into them. */
#include "cli.h"
#include "domainset.h"
#include "lists.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char set_usage[] =
    "usage: otasukectl set build -o OUT [--format F] [--subtree] [--label L] CATEGORY=FILE... [allow=FILE...]\n"
    "       otasukectl set lookup [--enable CAT,CAT...] SET NAME...\n"
    "       otasukectl set info SET\n"
    "       otasukectl set dump SET\n"
    "  info, dump and lookup see SET with SET.overlay applied when it exists (the names\n"
    "  a delta added, changed or removed); 'set dump SET.overlay' shows the overlay alone.\n"
    "  build: --format/--subtree apply to the lists after them, --label to the next one;\n"
    "         labels default to the file name up to its first dot.\n"
    "  categories: ads tracking malware phishing c2 adult gambling social doh-bypass\n"
    "              custom fake dyndns; 'allow' makes an allowlist.\n";

static void print_json(json_t *j, int pretty)
{
    if (!j) {
        fputs("{\"error\":\"out of memory\"}\n", stdout);
        return;
    }
    json_dumpf(j, stdout, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(j);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct feed_ctx {
    struct dset_builder *b;
    int list_id;
    char err[256];
};

static int add_entry(void *ctx, const char *name, size_t len, unsigned flags)
{
    struct feed_ctx *c = ctx;
    return dset_builder_add(c->b, c->list_id, name, len, flags, c->err, sizeof c->err);
}

/* "hagezi-light.adblock.txt" (any directory) -> "hagezi-light" */
static void default_label(const char *path, char *out, size_t outlen)
{
    const char *base = strrchr(path, '/');
    size_t n;
    base = base ? base + 1 : path;
    n = strcspn(base, ".");
    if (n == 0)
        n = strlen(base);
    snprintf(out, outlen, "%.*s", (int)n, base);
}

static int set_build(int argc, char **argv)
{
    const char *out = NULL, *label = NULL;
    struct list_opts opts = { LIST_FMT_AUTO, 0 };
    struct dset_builder *b;
    struct dset_build_stats bs;
    struct list_stats *st;
    json_t *lists;
    char err[512];
    double t0 = now_ms();
    int nlists = 0, rc = 1;

    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[i + 1];
    if (!out)
        return cli_usage("set build needs -o OUT\n%s", set_usage);
    b = dset_builder_new();
    st = calloc(1, sizeof *st);
    lists = json_array();
    if (!b || !st || !lists) {
        rc = cli_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq, *file;
        char cat[32], lab[64];
        struct feed_ctx fc;
        int category, is_allow;

        if (strcmp(a, "-o") == 0) {
            i++;
            continue;
        }
        if (strcmp(a, "--subtree") == 0) {
            opts.subtree = 1;
            continue;
        }
        if (strcmp(a, "--exact") == 0) {
            opts.subtree = 0;
            continue;
        }
        if (strcmp(a, "--format") == 0 && i + 1 < argc) {
            opts.format = list_format_parse(argv[++i]);
            if (opts.format < 0) {
                rc = cli_usage("unknown format '%s'", argv[i]);
                goto done;
            }
            continue;
        }
        if (strcmp(a, "--label") == 0 && i + 1 < argc) {
            label = argv[++i];
            continue;
        }
        eq = strchr(a, '=');
        if (a[0] == '-' || !eq || eq == a || !eq[1] || (size_t)(eq - a) >= sizeof cat) {
            rc = cli_usage("set build: '%s' is not CATEGORY=FILE\n%s", a, set_usage);
            goto done;
        }
        snprintf(cat, sizeof cat, "%.*s", (int)(eq - a), a);
        file = eq + 1;
        is_allow = strcmp(cat, "allow") == 0;
        category = is_allow ? 0 : dset_category_parse(cat);
        if (category < 0) {
            rc = cli_usage("set build: unknown category '%s' in '%s' (see 'otasukectl set help')",
                           cat, a);
            goto done;
        }
        if (label)
            snprintf(lab, sizeof lab, "%s", label);
        else
            default_label(file, lab, sizeof lab);
        label = NULL;
        fc.b = b;
        fc.err[0] = 0;
        fc.list_id = dset_builder_add_list(b, lab, category, is_allow, err, sizeof err);
        if (fc.list_id < 0) {
            rc = cli_fail("%s: %s", file, err);
            goto done;
        }
        if (list_parse_path(file, &opts, add_entry, &fc, st, err, sizeof err) < 0) {
            if (fc.err[0])
                rc = cli_fail("%s: %s (set not written)", file, fc.err);
            else
                rc = cli_fail("%s (set not written)", err);
            goto done;
        }
        nlists++;
        json_array_append_new(lists, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}",
            "label", lab, "file", file, "category", is_allow ? "allow" : cat,
            "format", list_format_name(st->format), "subtree", opts.subtree,
            "entries", (json_int_t)st->entries, "rejected", (json_int_t)st->rejected,
            "unsupported", (json_int_t)st->unsupported));
    }
    if (!nlists) {
        rc = cli_usage("set build: no CATEGORY=FILE given\n%s", set_usage);
        goto done;
    }
    if (dset_builder_write(b, out, &bs, err, sizeof err) < 0) {
        rc = cli_fail("%s", err);
        goto done;
    }
    print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:f, s:O}",
        "output", out, "names", (json_int_t)bs.names, "slots", (json_int_t)bs.slots,
        "records", (json_int_t)bs.records, "bytes", (json_int_t)bs.file_bytes,
        "lookup_bytes", (json_int_t)bs.lookup_bytes,
        "lookup_bytes_per_name", bs.names ? (double)bs.lookup_bytes / (double)bs.names : 0.0,
        "shared_hash_names", (json_int_t)bs.shared_hash,
        "build_ms", now_ms() - t0, "lists", lists), 1);
    rc = 0;
done:
    json_decref(lists);
    free(st);
    dset_builder_free(b);
    return rc;
}

static json_t *list_labels(const struct dset *set, uint64_t mask)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < dset_list_count(set) && i < 64; i++)
        if (mask & (1ull << i))
            json_array_append_new(a, json_string(dset_list_label(set, i)));
    return a;
}

static json_t *category_names(uint32_t cats)
{
    json_t *a = json_array();
    for (int c = 0; c < DSET_CAT_COUNT; c++)
        if (cats & (1u << c))
            json_array_append_new(a, json_string(dset_category_name(c)));
    return a;
}

static struct dset *open_or_fail(const char *path)
{
    char err[512];
    struct dset *s = dset_open(path, err, sizeof err);
    if (!s)
        cli_fail("%s", err);
    return s;
}

static int set_lookup(int argc, char **argv)
{
    uint32_t enabled = UINT32_MAX;
    struct dset *set;
    int i = 0, rc = 0;

    if (i + 1 < argc && strcmp(argv[i], "--enable") == 0) {
        char *list = strdup(argv[i + 1]), *save = NULL;
        enabled = 0;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int c = dset_category_parse(t);
            if (c < 0) {
                free(list);
                return cli_usage("set lookup: unknown category '%s'", t);
            }
            enabled |= 1u << c;
        }
        free(list);
        i += 2;
    }
    if (argc - i < 2)
        return cli_usage("otasukectl set lookup [--enable CAT,...] SET NAME...");
    set = open_or_fail(argv[i]);
    if (!set)
        return 1;
    for (i++; i < argc; i++) {
        char name[DSET_NAME_MAX + 2], why[128];
        struct dset_match m;
        int n = dset_normalize(argv[i], strlen(argv[i]), name, sizeof name, why, sizeof why);
        const char *verdict, *matched = NULL, *cat = NULL, *label = NULL;
        json_t *o;

        if (n < 0) {
            print_json(json_pack("{s:s, s:s}", "name", argv[i], "error", why), 0);
            rc = 1;
            continue;
        }
        dset_lookup_masked(set, name, (size_t)n, enabled, UINT64_MAX, &m);
        verdict = m.verdict == DSET_BLOCK ? "block" : m.verdict == DSET_ALLOW_VERDICT ? "allow" : "none";
        if (m.verdict != DSET_NONE) {
            uint64_t lists = 0, want;
            unsigned flags;
            matched = name + m.matched_offset;
            /* which list decided: the matched entry's lists of the deciding kind */
            dset_find_name(set, matched, strlen(matched), &flags, &lists);
            want = m.verdict == DSET_ALLOW_VERDICT ? dset_allow_lists(set) : ~dset_allow_lists(set);
            lists &= want & m.lists;
            if (lists) {
                unsigned id = (unsigned)__builtin_ctzll(lists);
                label = dset_list_label(set, id);
                cat = dset_category_name(dset_list_category(set, id));
            }
        }
        o = json_pack("{s:s, s:s}", "name", name, "verdict", verdict);
        json_object_set_new(o, "matched", matched ? json_string(matched) : json_null());
        json_object_set_new(o, "category", cat ? json_string(cat) : json_null());
        json_object_set_new(o, "list", label ? json_string(label) : json_null());
        json_object_set_new(o, "categories", category_names(m.categories));
        json_object_set_new(o, "lists", list_labels(set, m.lists));
        print_json(o, 0);
    }
    dset_close(set);
    return rc;
}

static int set_info(int argc, char **argv)
{
    struct dset *set;
    json_t *lists, *o;

    if (argc != 1)
        return cli_usage("otasukectl set info SET");
    set = open_or_fail(argv[0]);
    if (!set)
        return 1;
    lists = json_array();
    for (unsigned i = 0; i < dset_list_count(set); i++) {
        int c = dset_list_category(set, i);
        json_array_append_new(lists, json_pack("{s:i, s:s, s:s}", "id", (int)i,
            "label", dset_list_label(set, i),
            "category", dset_list_is_allow(set, i) ? "allow" : dset_category_name(c)));
    }
    /* names: what lookups see (base + overlay); the per-name cost is the base's */
    uint64_t base = dset_base_name_count(set), added, removed;
    dset_overlay_counts(set, &added, &removed);
    o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:o}", "file", argv[0],
        "build_time", (json_int_t)dset_build_time(set),
        "names", (json_int_t)dset_name_count(set), "base_names", (json_int_t)base,
        "slots", (json_int_t)dset_slot_count(set),
        "lookup_bytes", (json_int_t)dset_lookup_bytes(set),
        "lookup_bytes_per_name", base ? (double)dset_lookup_bytes(set) / (double)base : 0.0,
        "lists", lists);
    json_object_set_new(o, "overlay", dset_overlay_names(set)
        ? json_pack("{s:I, s:I, s:I}", "entries", (json_int_t)dset_overlay_names(set),
                    "added", (json_int_t)added, "removed", (json_int_t)removed)
        : json_null());
    print_json(o, 1);
    dset_close(set);
    return 0;
}

static int set_dump(int argc, char **argv)
{
    struct dset *set;
    struct dset_iter it = { 0 };
    const char *name;
    unsigned flags;
    uint64_t lists;

    if (argc != 1)
        return cli_usage("otasukectl set dump SET");
    set = open_or_fail(argv[0]);
    if (!set)
        return 1;
    while (dset_iter_next(set, &it, &name, &flags, &lists)) {
        json_t *f = json_array();
        if (flags & DSET_EXACT)
            json_array_append_new(f, json_string("exact"));
        if (flags & DSET_SUBTREE)
            json_array_append_new(f, json_string("subtree"));
        if (flags & DSET_ALLOW)
            json_array_append_new(f, json_string("allow"));
        print_json(json_pack("{s:s, s:o, s:o, s:o}", "name", name, "flags", f,
            "categories", category_names(dset_lists_categories(set, lists)),
            "lists", list_labels(set, lists)), 0);
    }
    dset_close(set);
    return 0;
}

int cli_set(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(set_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "build") == 0)
        return set_build(argc - 1, argv + 1);
    if (strcmp(argv[0], "lookup") == 0)
        return set_lookup(argc - 1, argv + 1);
    if (strcmp(argv[0], "info") == 0)
        return set_info(argc - 1, argv + 1);
    if (strcmp(argv[0], "dump") == 0)
        return set_dump(argc - 1, argv + 1);
    return cli_usage("unknown set command '%s' (try: otasukectl set help)", argv[0]);
}
