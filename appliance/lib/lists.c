/* List parsing core: chunk -> lines, format detection, whole-file verdicts.
 * The per-format line handlers are in lists_formats.c. */
#include "lists_internal.h"
#include "errbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const fmt_names[LIST_FMT_COUNT] = {
    "auto", "plain", "hosts", "adblock", "dnsmasq", "wildcard", "rpz",
};

const char *list_format_name(int format)
{
    return format >= 0 && format < LIST_FMT_COUNT ? fmt_names[format] : NULL;
}

int list_format_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < LIST_FMT_COUNT; i++)
        if (strcmp(name, fmt_names[i]) == 0)
            return i;
    if (strcmp(name, "domains") == 0)
        return LIST_FMT_PLAIN;
    return -1;
}

void list_problem(struct list_parser *p, int kind, const char *fmt, ...)
{
    if (kind == LIST_UNSUPPORTED)
        p->st.unsupported++;
    else
        p->st.rejected++;
    if (p->st.nerrors < LIST_MAX_ERRORS) {
        struct list_error *e = &p->st.errors[p->st.nerrors++];
        va_list ap;
        e->line = p->st.lines;
        e->kind = kind;
        va_start(ap, fmt);
        vsnprintf(e->reason, sizeof e->reason, fmt, ap);
        va_end(ap);
    }
}

int list_emit(struct list_parser *p, const char *tok, size_t len, unsigned flags)
{
    char name[DSET_NAME_MAX + 2], why[96];
    int n = dset_normalize(tok, len, name, sizeof name, why, sizeof why);

    if (n < 0) {
        list_problem(p, LIST_REJECTED, "'%.*s': %s", len > 60 ? 60 : (int)len, tok, why);
        return 0;
    }
    p->st.entries++;
    if (p->fn && p->fn(p->ctx, name, (size_t)n, flags) != 0) {
        p->aborted = 1;
        return -1;
    }
    return 0;
}

struct list_parser *list_parser_new(const struct list_opts *opts, list_entry_fn fn, void *ctx)
{
    struct list_parser *p = calloc(1, sizeof *p);

    if (!p)
        return NULL;
    if (opts)
        p->opts = *opts;
    if (p->opts.format < 0 || p->opts.format >= LIST_FMT_COUNT)
        p->opts.format = LIST_FMT_AUTO;
    p->fn = fn;
    p->ctx = ctx;
    p->head = malloc(LIST_HEAD_MAX);
    if (!p->head) {
        free(p);
        return NULL;
    }
    return p;
}

void list_parser_free(struct list_parser *p)
{
    if (!p)
        return;
    free(p->head);
    free(p);
}

/* ---- detection ------------------------------------------------------------- */

static int is_ip(const char *s, size_t n)
{
    char tmp[64];
    unsigned char buf[16];
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    return inet_pton(AF_INET, tmp, buf) == 1 || inet_pton(AF_INET6, tmp, buf) == 1;
}

/* Votes of one line; returns the format it looks like, or 0 for no opinion. */
static int classify(const char *s, size_t n, int *weight)
{
    const char *t1, *t2;
    size_t l1;

    *weight = 1;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n == 0)
        return 0;
    for (size_t i = 1; i < n; i++)  /* "name # comment" votes like "name" */
        if (s[i] == '#' && (s[i - 1] == ' ' || s[i - 1] == '\t')) {
            n = i;
            while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
            break;
        }
    if (n >= 4 && (strncmp(s, "$TTL", 4) == 0 || strncmp(s, "$ORIGIN", n < 7 ? n : 7) == 0)) {
        *weight = 10;
        return LIST_FMT_RPZ;
    }
    if (s[0] == ';')
        return LIST_FMT_RPZ;
    if (s[0] == '!' || (s[0] == '[' && n > 8 && strncasecmp(s, "[adblock", 8) == 0)) {
        *weight = s[0] == '[' ? 10 : 1;
        return LIST_FMT_ADBLOCK;
    }
    if (s[0] == '#')
        return 0;
    if (s[0] == '|' || (n > 2 && s[0] == '@' && s[1] == '@'))
        return LIST_FMT_ADBLOCK;
    if ((n > 9 && strncmp(s, "address=/", 9) == 0) || (n > 8 && strncmp(s, "server=/", 8) == 0) ||
        (n > 7 && strncmp(s, "local=/", 7) == 0))
        return LIST_FMT_DNSMASQ;
    if (n > 2 && s[0] == '*' && s[1] == '.') {
        *weight = 2;  /* outweighs the bare names a wildcard list may also carry */
        return LIST_FMT_WILDCARD;
    }
    /* tokens */
    t1 = s;
    for (l1 = 0; l1 < n && t1[l1] != ' ' && t1[l1] != '\t'; l1++)
        ;  /* the head buffer is not NUL-terminated: no strcspn */
    t2 = t1 + l1;
    while (t2 < s + n && (*t2 == ' ' || *t2 == '\t'))
        t2++;
    if (t2 < s + n) {
        const char *e = s + n;
        if (is_ip(t1, l1))
            return LIST_FMT_HOSTS;
        /* "name [ttl] [class] TYPE ..." zone records */
        for (const char *q = t2; q < e;) {
            size_t l = 0;
            while (q + l < e && q[l] != ' ' && q[l] != '\t')
                l++;
            if ((l == 5 && strncasecmp(q, "CNAME", 5) == 0) || (l == 3 && strncasecmp(q, "SOA", 3) == 0)) {
                *weight = 3;
                return LIST_FMT_RPZ;
            }
            q += l;
            while (q < e && (*q == ' ' || *q == '\t'))
                q++;
        }
        return 0;
    }
    if (memchr(s, '=', n) || memchr(s, '<', n) || memchr(s, '{', n))
        return 0;
    return LIST_FMT_PLAIN;
}

int list_detect(const char *head, size_t len)
{
    unsigned votes[LIST_FMT_COUNT] = { 0 };
    int meaningful = 0, best = LIST_FMT_PLAIN;
    const char *s = head, *end = head + len;

    while (s < end && meaningful < 200) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        int w, f = classify(s, n, &w);
        if (f) {
            votes[f] += (unsigned)w;
            meaningful++;
        }
        if (!nl)
            break;
        s = nl + 1;
    }
    for (int f = LIST_FMT_PLAIN; f < LIST_FMT_COUNT; f++)
        if (votes[f] > votes[best])
            best = f;
    return best;
}

/* ---- whole-file checks on the head ----------------------------------------- */

static int head_verdict(struct list_parser *p)
{
    const char *h = p->head;
    size_t n = p->head_len, ctrl = 0;
    const char *nul = memchr(h, 0, n);

    if (nul) {
        size_t line = 1;
        for (const char *q = h; q < nul; q++)
            line += *q == '\n';
        errbuf_set(p->fail_msg, sizeof p->fail_msg, "binary data (NUL byte at line %zu, "
               "offset %zu), not a text list", line, (size_t)(nul - h));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t')
            ctrl++;
    }
    if (ctrl > 0 && ctrl * 100 > n) {
        errbuf_set(p->fail_msg, sizeof p->fail_msg, "binary data (%zu control bytes in the "
               "first %zu), not a text list", ctrl, n);
        return -1;
    }
    /* skip BOM and blanks, then look for markup */
    {
        size_t i = 0;
        if (n >= 3 && memcmp(h, "\xef\xbb\xbf", 3) == 0)
            i = 3;
        while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == '\r' || h[i] == '\n'))
            i++;
        if (i < n && h[i] == '<') {
            size_t rest = n - i;
            if ((rest >= 9 && strncasecmp(h + i, "<!doctype", 9) == 0) ||
                (rest >= 5 && strncasecmp(h + i, "<html", 5) == 0) ||
                (rest >= 5 && strncasecmp(h + i, "<head", 5) == 0) ||
                (rest >= 5 && strncasecmp(h + i, "<?xml", 5) == 0)) {
                errbuf_set(p->fail_msg, sizeof p->fail_msg, "an HTML/XML page, not a list "
                       "(an error page from the download server?)");
                return -1;
            }
        }
    }
    return 0;
}

/* ---- lines ------------------------------------------------------------------- */

static void do_line(struct list_parser *p)
{
    char *s = p->line;
    size_t n = p->line_len;

    p->st.lines++;
    if (!p->bom_checked) {
        p->bom_checked = 1;
        if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;
            n -= 3;
        }
    }
    if (p->line_long) {
        list_problem(p, LIST_REJECTED, "line longer than %d bytes", LIST_LINE_MAX);
        goto done;
    }
    if (p->line_nul) {
        list_problem(p, LIST_REJECTED, "NUL byte in line");
        goto done;
    }
    if (n && s[n - 1] == '\r')
        n--;
    s[n] = 0;
    switch (p->st.format) {
    case LIST_FMT_HOSTS:    list_line_hosts(p, s); break;
    case LIST_FMT_ADBLOCK:  list_line_adblock(p, s); break;
    case LIST_FMT_DNSMASQ:  list_line_dnsmasq(p, s); break;
    case LIST_FMT_WILDCARD: list_line_wildcard(p, s); break;
    case LIST_FMT_RPZ:      list_line_rpz(p, s); break;
    default:                list_line_plain(p, s); break;
    }
done:
    p->line_len = 0;
    p->line_long = 0;
    p->line_nul = 0;
}

static int split(struct list_parser *p, const char *buf, size_t len)
{
    while (len && !p->aborted) {
        const char *nl = memchr(buf, '\n', len);
        size_t n = nl ? (size_t)(nl - buf) : len;
        if (!p->line_long) {
            size_t room = LIST_LINE_MAX - p->line_len;
            size_t take = n < room ? n : room;
            if (memchr(buf, 0, n))
                p->line_nul = 1;
            memcpy(p->line + p->line_len, buf, take);
            p->line_len += take;
            if (n > room)
                p->line_long = 1;
        }
        if (!nl)
            break;
        do_line(p);
        buf += n + 1;
        len -= n + 1;
    }
    if (p->aborted) {
        p->failed = 1;
        errbuf_set(p->fail_msg, sizeof p->fail_msg, "line %llu: stopped by the consumer",
               (unsigned long long)p->st.lines);
        return -1;
    }
    return 0;
}

static int detect_and_drain(struct list_parser *p)
{
    p->detected = 1;
    if (head_verdict(p) < 0) {
        p->failed = 1;
        return -1;
    }
    p->st.format = p->opts.format != LIST_FMT_AUTO ? p->opts.format
                                                   : list_detect(p->head, p->head_len);
    if (split(p, p->head, p->head_len) < 0)
        return -1;
    free(p->head);
    p->head = NULL;
    return 0;
}

int list_parser_feed(struct list_parser *p, const void *buf, size_t len, char *err, size_t errlen)
{
    const char *b = buf;

    if (p->failed) {
        errbuf_set(err, errlen, "%s", p->fail_msg);
        return -1;
    }
    if (!p->detected) {
        size_t take = LIST_HEAD_MAX - p->head_len;
        if (take > len)
            take = len;
        memcpy(p->head + p->head_len, b, take);
        p->head_len += take;
        b += take;
        len -= take;
        if (p->head_len < LIST_HEAD_MAX)
            return 0;
        if (detect_and_drain(p) < 0) {
            errbuf_set(err, errlen, "%s", p->fail_msg);
            return -1;
        }
    }
    if (split(p, b, len) < 0) {
        errbuf_set(err, errlen, "%s", p->fail_msg);
        return -1;
    }
    return 0;
}

int list_parser_finish(struct list_parser *p, struct list_stats *st, char *err, size_t errlen)
{
    int rc = 0;

    if (!p->failed && !p->detected)
        detect_and_drain(p);
    if (!p->failed && (p->line_len || p->line_long || p->line_nul))
        do_line(p);  /* last line without newline */
    if (!p->failed && p->aborted) {
        p->failed = 1;
        errbuf_set(p->fail_msg, sizeof p->fail_msg, "line %llu: stopped by the consumer",
               (unsigned long long)p->st.lines);
    }
    if (!p->failed && p->st.entries == 0 && p->st.rejected > 0) {
        p->failed = 1;
        errbuf_set(p->fail_msg, sizeof p->fail_msg, "not a %s list: no valid entry, %llu bad "
               "lines (first at line %llu: %s)", list_format_name(p->st.format),
               (unsigned long long)p->st.rejected,
               (unsigned long long)(p->st.nerrors ? p->st.errors[0].line : 0),
               p->st.nerrors ? p->st.errors[0].reason : "?");
    }
    if (p->failed) {
        errbuf_set(err, errlen, "%s", p->fail_msg);
        rc = -1;
    }
    if (st)
        *st = p->st;
    return rc;
}

/* ---- one-shot helpers ------------------------------------------------------ */

int list_parse_buffer(const void *buf, size_t len, const struct list_opts *opts,
                      list_entry_fn fn, void *ctx, struct list_stats *st,
                      char *err, size_t errlen)
{
    struct list_parser *p = list_parser_new(opts, fn, ctx);
    int rc;

    if (!p) {
        errbuf_set(err, errlen, "out of memory");
        if (st)
            memset(st, 0, sizeof *st);
        return -1;
    }
    rc = list_parser_feed(p, buf, len, err, errlen);
    if (list_parser_finish(p, st, err, errlen) < 0)
        rc = -1;
    list_parser_free(p);
    return rc;
}

int list_parse_fd(int fd, const struct list_opts *opts, list_entry_fn fn, void *ctx,
                  struct list_stats *st, char *err, size_t errlen)
{
    struct list_parser *p = list_parser_new(opts, fn, ctx);
    char *buf = malloc(1 << 16);
    int rc = 0;

    if (!p || !buf) {
        errbuf_set(err, errlen, "out of memory");
        list_parser_free(p);
        free(buf);
        if (st)
            memset(st, 0, sizeof *st);
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errbuf_set(err, errlen, "read error after line %llu: %s",
                   (unsigned long long)p->st.lines, strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (list_parser_feed(p, buf, (size_t)n, err, errlen) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        rc = list_parser_finish(p, st, err, errlen);
    else if (st)
        *st = p->st;
    free(buf);
    list_parser_free(p);
    return rc;
}

int list_parse_file(FILE *f, const struct list_opts *opts, list_entry_fn fn, void *ctx,
                    struct list_stats *st, char *err, size_t errlen)
{
    struct list_parser *p = list_parser_new(opts, fn, ctx);
    char *buf = malloc(1 << 16);
    int rc = 0;
    size_t n;

    if (!p || !buf) {
        errbuf_set(err, errlen, "out of memory");
        list_parser_free(p);
        free(buf);
        if (st)
            memset(st, 0, sizeof *st);
        return -1;
    }
    while ((n = fread(buf, 1, 1 << 16, f)) > 0)
        if (list_parser_feed(p, buf, n, err, errlen) < 0) {
            rc = -1;
            break;
        }
    if (rc == 0 && ferror(f)) {
        errbuf_set(err, errlen, "read error after line %llu", (unsigned long long)p->st.lines);
        rc = -1;
    }
    if (rc == 0)
        rc = list_parser_finish(p, st, err, errlen);
    else if (st)
        *st = p->st;
    free(buf);
    list_parser_free(p);
    return rc;
}

int list_parse_path(const char *path, const struct list_opts *opts, list_entry_fn fn,
                    void *ctx, struct list_stats *st, char *err, size_t errlen)
{
    char why[256] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0) {
        errbuf_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        if (st)
            memset(st, 0, sizeof *st);
        return -1;
    }
    rc = list_parse_fd(fd, opts, fn, ctx, st, why, sizeof why);
    close(fd);
    if (rc < 0)
        errbuf_set(err, errlen, "%s: %s", path, why);
    return rc;
}
