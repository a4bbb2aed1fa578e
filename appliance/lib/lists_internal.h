/* Shared between lists.c (streaming, detection, whole-file checks) and
 * lists_formats.c (one line handler per format). Not part of the public API. */
#ifndef OTASUKE_LISTS_INTERNAL_H
#define OTASUKE_LISTS_INTERNAL_H

#include "domainset.h"
#include "lists.h"

#define LIST_HEAD_MAX (64 * 1024)  /* bytes kept for detection and whole-file checks */

struct list_parser {
    struct list_opts opts;
    list_entry_fn fn;
    void *ctx;
    struct list_stats st;
    int detected;          /* head processed, format fixed */
    int failed;            /* rejected as a whole or aborted: ignore further input */
    int aborted;           /* the callback asked to stop */
    char fail_msg[256];

    char *head;            /* first bytes, until detection */
    size_t head_len;

    char line[LIST_LINE_MAX + 1];
    size_t line_len;
    int line_long;         /* current line overflowed; rest is dropped */
    int line_nul;          /* current line had a NUL byte */
    int bom_checked;

    /* RPZ state */
    char origin[DSET_NAME_MAX + 2];
    size_t origin_len;     /* 0 = unknown */
    char owner[DSET_NAME_MAX + 2];  /* previous owner, for lines starting with blanks */
    int owner_valid;
    int paren_depth;       /* inside a multi-line ( ... ) record */
};

/* Records a bad line (kind = LIST_REJECTED or LIST_UNSUPPORTED). */
void list_problem(struct list_parser *p, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Normalises tok and hands it to the callback; a bad name is recorded as rejected
 * with the token quoted. Returns 0, or -1 if the callback aborted. */
int list_emit(struct list_parser *p, const char *tok, size_t len, unsigned flags);

/* Handles one line (NUL-terminated, no newline, may be modified in place). */
void list_line_plain(struct list_parser *p, char *s);
void list_line_hosts(struct list_parser *p, char *s);
void list_line_adblock(struct list_parser *p, char *s);
void list_line_dnsmasq(struct list_parser *p, char *s);
void list_line_wildcard(struct list_parser *p, char *s);
void list_line_rpz(struct list_parser *p, char *s);

#endif
