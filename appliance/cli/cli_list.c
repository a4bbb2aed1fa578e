/* otasukectl list: look at one blocklist file the way the set builder will. */
#include "cli.h"
#include "lists.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Builds the inspect JSON from parse stats; the caller owns the result. */
static json_t *stats_json(const struct list_stats *st)
{
    json_t *errs = json_array();
    for (size_t i = 0; i < st->nerrors; i++)
        json_array_append_new(errs, json_pack("{s:I, s:s, s:s}",
            "line", (json_int_t)st->errors[i].line,
            "kind", st->errors[i].kind == LIST_UNSUPPORTED ? "unsupported" : "rejected",
            "reason", st->errors[i].reason));
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}",
                     "format", list_format_name(st->format),
                     "lines", (json_int_t)st->lines,
                     "entries", (json_int_t)st->entries,
                     "rejected", (json_int_t)st->rejected,
                     "unsupported", (json_int_t)st->unsupported,
                     "skipped", (json_int_t)st->skipped,
                     "errors", errs);
}

static int inspect(int argc, char **argv)
{
    struct list_opts opts = { LIST_FMT_AUTO, 0 };
    struct list_stats *st;
    const char *file = NULL;
    char err[512];
    json_t *out;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            opts.format = list_format_parse(argv[++i]);
            if (opts.format < 0)
                return cli_usage("unknown format '%s' (plain, hosts, adblock, dnsmasq, "
                                 "wildcard, rpz, auto)", argv[i]);
        } else if (strcmp(argv[i], "--subtree") == 0) {
            opts.subtree = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("list inspect: unknown option '%s'", argv[i]);
        } else if (!file) {
            file = argv[i];
        } else {
            return cli_usage("list inspect takes one FILE");
        }
    }
    if (!file)
        return cli_usage("otasukectl list inspect [--format F] [--subtree] FILE");
    st = calloc(1, sizeof *st);
    if (!st)
        return cli_fail("out of memory");
    if (strcmp(file, "-") == 0)
        rc = list_parse_file(stdin, &opts, NULL, NULL, st, err, sizeof err);
    else
        rc = list_parse_path(file, &opts, NULL, NULL, st, err, sizeof err);
    if (rc < 0) {
        free(st);
        return cli_fail("%s", err);
    }
    out = stats_json(st);
    free(st);
    if (!out)
        return cli_fail("out of memory");
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(out);
    return 0;
}

int cli_list(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0) {
        fprintf(argc < 1 ? stderr : stdout,
                "usage: otasukectl list inspect [--format F] [--subtree] FILE\n"
                "  prints {format, entries, rejected, unsupported, errors[]} as JSON;\n"
                "  F is plain, hosts, adblock, dnsmasq, wildcard, rpz (default: detect)\n");
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "inspect") == 0)
        return inspect(argc - 1, argv + 1);
    return cli_usage("unknown list command '%s' (try: otasukectl list help)", argv[0]);
}
