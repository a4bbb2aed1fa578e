/* Blocklist parsers: plain, hosts, adblock, dnsmasq, wildcard and RPZ.
 *
 * Streaming: input is fed in chunks of any size and split into lines here; memory is
 * one line buffer plus the first 64 KB kept for format detection, whatever the size
 * of the list. Each accepted name is normalised (dset_normalize) and handed to a
 * callback with DSET_EXACT / DSET_SUBTREE / DSET_ALLOW. Bad lines are counted with line
 * number and reason and never stop the parse; a file that is not a list at all (binary,
 * an HTML page, nothing but bad lines) is rejected as a whole. */
#ifndef OTASUKE_LISTS_H
#define OTASUKE_LISTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum list_format {
    LIST_FMT_AUTO = 0,
    LIST_FMT_PLAIN,     /* one name per line */
    LIST_FMT_HOSTS,     /* "0.0.0.0 name [name...]" */
    LIST_FMT_ADBLOCK,   /* "||name^", "@@||name^", "|name^" */
    LIST_FMT_DNSMASQ,   /* "address=/name/...", "server=/name/", "local=/name/" */
    LIST_FMT_WILDCARD,  /* "*.name" (subtree) or "name" (exact) */
    LIST_FMT_RPZ,       /* zone file: "name CNAME .", "*.name CNAME .", rpz-passthru. */
    LIST_FMT_COUNT
};

/* Returns "plain", "hosts", ... ("auto" for LIST_FMT_AUTO), or NULL when out of range. */
const char *list_format_name(int format);
/* Returns the enum list_format for a name, or -1 when unknown. */
int list_format_parse(const char *name);

#define LIST_LINE_MAX   4096  /* longer lines are rejected */
#define LIST_MAX_ERRORS 100   /* lines kept in detail; all are counted */

enum list_problem {
    LIST_REJECTED = 1,    /* a line that should have been an entry but is wrong */
    LIST_UNSUPPORTED = 2, /* valid syntax of its format that a DNS filter cannot apply */
};

struct list_error {
    uint64_t line;
    int kind;             /* enum list_problem */
    char reason[128];
};

struct list_stats {
    int format;           /* the format used (detected or forced) */
    uint64_t lines;       /* lines read */
    uint64_t entries;     /* names handed to the callback */
    uint64_t rejected;
    uint64_t unsupported;
    uint64_t skipped;     /* localhost-style names in hosts files */
    size_t nerrors;       /* entries used in errors[] (<= LIST_MAX_ERRORS) */
    struct list_error errors[LIST_MAX_ERRORS];
};

struct list_opts {
    int format;           /* LIST_FMT_AUTO to detect */
    int subtree;          /* plain and hosts entries cover their subtree */
};

/* Called once per accepted name: name is normalised, NUL-terminated, valid only
 * during the call. Return 0 to go on, non-zero to abort the parse (the parse then
 * fails with "stopped by the consumer"). */
typedef int (*list_entry_fn)(void *ctx, const char *name, size_t len, unsigned flags);

struct list_parser;

/* Incremental interface. new returns NULL on allocation failure (opts may be NULL:
 * auto-detect, exact). feed returns 0, or -1 with err once the input is rejected
 * as a whole or the callback aborted; finish completes the parse, fills st and
 * returns 0, or -1 with err when the input is not a list. */
struct list_parser *list_parser_new(const struct list_opts *opts, list_entry_fn fn, void *ctx);
int list_parser_feed(struct list_parser *p, const void *buf, size_t len, char *err, size_t errlen);
int list_parser_finish(struct list_parser *p, struct list_stats *st, char *err, size_t errlen);
void list_parser_free(struct list_parser *p);

/* One-shot helpers around the incremental interface. Return 0 or -1 with err; st is
 * filled in both cases (as far as the parse went). */
int list_parse_buffer(const void *buf, size_t len, const struct list_opts *opts,
                      list_entry_fn fn, void *ctx, struct list_stats *st,
                      char *err, size_t errlen);
int list_parse_fd(int fd, const struct list_opts *opts, list_entry_fn fn, void *ctx,
                  struct list_stats *st, char *err, size_t errlen);
int list_parse_file(FILE *f, const struct list_opts *opts, list_entry_fn fn, void *ctx,
                    struct list_stats *st, char *err, size_t errlen);
/* Opens path; error messages start with the path. */
int list_parse_path(const char *path, const struct list_opts *opts, list_entry_fn fn,
                    void *ctx, struct list_stats *st, char *err, size_t errlen);

/* Guesses the format of the start of a list (used by the parser; exposed for tests).
 * Returns a list_format, LIST_FMT_PLAIN when nothing decides. */
int list_detect(const char *head, size_t len);

#endif
