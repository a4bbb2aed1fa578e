/* IP list parser and range merger. Hot path for multi-million-line feeds: one pass over
 * the buffer, no per-line allocation, inet_pton for the address syntax itself. */
#include "iplist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void iplist_init(struct iplist *l)
{
    memset(l, 0, sizeof *l);
}

void iplist_free(struct iplist *l)
{
    free(l->v4);
    free(l->v6);
    memset(l, 0, sizeof *l);
}

int ipl_u128_cmp(struct ipl_u128 a, struct ipl_u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

struct ipl_u128 ipl_u128_inc(struct ipl_u128 a)
{
    a.lo++;
    if (a.lo == 0)
        a.hi++;
    return a;
}

void ipl_u128_to_bytes(struct ipl_u128 a, uint8_t out[16])
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(a.hi >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(a.lo >> (56 - 8 * i));
    }
}

struct ipl_u128 ipl_u128_from_bytes(const uint8_t in[16])
{
    struct ipl_u128 a = { 0, 0 };
    for (int i = 0; i < 8; i++) {
        a.hi = (a.hi << 8) | in[i];
        a.lo = (a.lo << 8) | in[8 + i];
    }
    return a;
}

int iplist_add_v4(struct iplist *l, uint32_t lo, uint32_t hi)
{
    if (l->n4 == l->cap4) {
        size_t cap = l->cap4 ? l->cap4 * 2 : 1024;
        struct ipl_v4 *p = realloc(l->v4, cap * sizeof *p);
        if (!p)
            return -1;
        l->v4 = p;
        l->cap4 = cap;
    }
    l->v4[l->n4++] = (struct ipl_v4){ lo, hi };
    return 0;
}

int iplist_add_v6(struct iplist *l, struct ipl_u128 lo, struct ipl_u128 hi)
{
    if (l->n6 == l->cap6) {
        size_t cap = l->cap6 ? l->cap6 * 2 : 256;
        struct ipl_v6 *p = realloc(l->v6, cap * sizeof *p);
        if (!p)
            return -1;
        l->v6 = p;
        l->cap6 = cap;
    }
    l->v6[l->n6++] = (struct ipl_v6){ lo, hi };
    return 0;
}

static int parse_prefix(const char *s, int max, char *why, size_t whylen)
{
    int v = 0;
    if (!*s) {
        snprintf(why, whylen, "empty prefix length after '/'");
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s >= 3) {
            snprintf(why, whylen, "prefix length '%.8s' is not a number 0-%d", s, max);
            return -1;
        }
        v = v * 10 + (*p - '0');
    }
    if (v > max) {
        snprintf(why, whylen, "prefix length /%d is larger than /%d", v, max);
        return -1;
    }
    return v;
}

/* Parses one address (no prefix). Returns 4, 6 or 0. */
static int parse_addr(const char *s, uint32_t *a4, struct ipl_u128 *a6)
{
    unsigned char buf[16];
    if (strchr(s, ':')) {
        if (inet_pton(AF_INET6, s, buf) != 1)
            return 0;
        *a6 = ipl_u128_from_bytes(buf);
        return 6;
    }
    if (inet_pton(AF_INET, s, buf) != 1)
        return 0;
    *a4 = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    return 4;
}

int iplist_parse_entry(const char *s, struct ipl_v4 *r4, struct ipl_v6 *r6,
                       char *why, size_t whylen)
{
    char tmp[IPL_MAX_LINE];
    size_t n = strlen(s);
    if (n == 0) {
        snprintf(why, whylen, "empty entry");
        return 0;
    }
    if (n >= sizeof tmp) {
        snprintf(why, whylen, "entry longer than %d characters", IPL_MAX_LINE - 1);
        return 0;
    }
    memcpy(tmp, s, n + 1);
    char *slash = strchr(tmp, '/'), *dash = strchr(tmp, '-');
    if (slash && dash) {
        snprintf(why, whylen, "both '/' and '-' in '%.60s'", s);
        return 0;
    }
    if (slash)
        *slash = '\0';
    if (dash)
        *dash = '\0';
    uint32_t a4 = 0, b4 = 0;
    struct ipl_u128 a6 = { 0, 0 }, b6 = { 0, 0 };
    int fam = parse_addr(tmp, &a4, &a6);
    if (!fam) {
        /* name the whole entry: "not-an-address" is no range of "not" and "an-address" */
        snprintf(why, whylen, "'%.60s' is not an IPv4 or IPv6 address", dash ? s : tmp);
        return 0;
    }
    if (dash) {
        int fam2 = parse_addr(dash + 1, &b4, &b6);
        if (!fam2) {
            snprintf(why, whylen, "range end '%.60s' is not an IP address", dash + 1);
            return 0;
        }
        if (fam2 != fam) {
            snprintf(why, whylen, "range mixes IPv%d and IPv%d", fam, fam2);
            return 0;
        }
        if (fam == 4 ? b4 < a4 : ipl_u128_cmp(b6, a6) < 0) {
            snprintf(why, whylen, "range end %.50s is below its start %.50s", dash + 1, tmp);
            return 0;
        }
    } else if (slash) {
        int plen = parse_prefix(slash + 1, fam == 4 ? 32 : 128, why, whylen);
        if (plen < 0)
            return 0;
        if (fam == 4) {
            uint32_t host = plen == 32 ? 0 : (plen == 0 ? 0xffffffffu : 0xffffffffu >> plen);
            if (a4 & host) {
                snprintf(why, whylen, "host bits set in %.50s/%d (network is %u.%u.%u.%u/%d)",
                         tmp, plen, (a4 & ~host) >> 24, (a4 & ~host) >> 16 & 255,
                         (a4 & ~host) >> 8 & 255, a4 & ~host & 255, plen);
                return 0;
            }
            b4 = a4 | host;
        } else {
            uint64_t hmask = plen >= 64 ? 0 : (plen == 0 ? ~0ull : ~0ull >> plen);
            uint64_t lmask = plen >= 128 ? 0 : (plen <= 64 ? ~0ull : ~0ull >> (plen - 64));
            if ((a6.hi & hmask) || (a6.lo & lmask)) {
                snprintf(why, whylen, "host bits set in %.60s/%d", tmp, plen);
                return 0;
            }
            b6.hi = a6.hi | hmask;
            b6.lo = a6.lo | lmask;
        }
    } else {
        b4 = a4;
        b6 = a6;
    }
    if (fam == 4)
        *r4 = (struct ipl_v4){ a4, b4 };
    else
        *r6 = (struct ipl_v6){ a6, b6 };
    return fam;
}

static void add_bad(struct iplist *l, unsigned long line, const char *why)
{
    if (l->bad < IPL_MAX_BAD) {
        l->bads[l->bad].line = line;
        snprintf(l->bads[l->bad].reason, sizeof l->bads[l->bad].reason, "%s", why);
    }
    l->bad++;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line, already without its newline. Returns -1 only on ENOMEM. */
static int parse_line(struct iplist *l, const char *p, size_t n, char *err, size_t errlen)
{
    char why[96];
    l->lines++;
    if (memchr(p, '\0', n)) {
        add_bad(l, l->lines, "line contains a NUL byte");
        return 0;
    }
    const char *c = memchr(p, '#', n);
    if (c)
        n = (size_t)(c - p);
    c = memchr(p, ';', n);
    if (c)
        n = (size_t)(c - p);
    while (n && is_blank(p[0]))
        p++, n--;
    while (n && is_blank(p[n - 1]))
        n--;
    if (n == 0)
        return 0;
    if (n >= IPL_MAX_LINE) {
        snprintf(why, sizeof why, "line longer than %d characters", IPL_MAX_LINE - 1);
        add_bad(l, l->lines, why);
        return 0;
    }
    char tmp[IPL_MAX_LINE];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *s = tmp;
    if (strncmp(s, "create ", 7) == 0 || strncmp(s, "create\t", 7) == 0)
        return 0; /* ipset save header: describes the set, holds no entry */
    if (strncmp(s, "add ", 4) == 0 || strncmp(s, "add\t", 4) == 0) {
        s += 4;
        while (is_blank(*s))
            s++;
        while (*s && !is_blank(*s))
            s++; /* set name */
        while (is_blank(*s))
            s++;
        char *end = s;
        while (*end && !is_blank(*end))
            end++;
        *end = '\0'; /* ipset options after the address (timeout ...) are ignored */
    } else {
        for (char *q = s; *q; q++)
            if (is_blank(*q)) {
                add_bad(l, l->lines, "more than one word on the line");
                return 0;
            }
    }
    int fam = iplist_add_entry(l, s, why, sizeof why);
    if (!fam) {
        add_bad(l, l->lines, why);
        return 0;
    }
    if (fam < 0) {
        snprintf(err, errlen, "out of memory at line %lu", l->lines);
        return -1;
    }
    l->entries++;
    return 0;
}

int iplist_add_entry(struct iplist *l, const char *s, char *why, size_t whylen)
{
    struct ipl_v4 r4;
    struct ipl_v6 r6;
    int fam = iplist_parse_entry(s, &r4, &r6, why, whylen);
    if (fam == 4 && iplist_add_v4(l, r4.lo, r4.hi) < 0)
        return -1;
    if (fam == 6 && iplist_add_v6(l, r6.lo, r6.hi) < 0)
        return -1;
    return fam;
}

int iplist_parse(struct iplist *l, const char *buf, size_t len, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
        if (parse_line(l, buf + off, n, err, errlen) < 0)
            return -1;
        off += n + (nl ? 1 : 0);
    }
    return 0;
}

int iplist_load_file(struct iplist *l, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory for %zu bytes", path, cap);
        close(fd);
        return -1;
    }
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    int rc = iplist_parse(l, buf, len, err, errlen);
    free(buf);
    return rc;
}

static int cmp_v4(const void *a, const void *b)
{
    const struct ipl_v4 *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->hi < y->hi ? -1 : x->hi > y->hi;
}

static int cmp_v6(const void *a, const void *b)
{
    const struct ipl_v6 *x = a, *y = b;
    int c = ipl_u128_cmp(x->lo, y->lo);
    return c ? c : ipl_u128_cmp(x->hi, y->hi);
}

void iplist_normalize(struct iplist *l)
{
    if (l->n4) {
        qsort(l->v4, l->n4, sizeof *l->v4, cmp_v4);
        size_t w = 0;
        for (size_t i = 1; i < l->n4; i++) {
            struct ipl_v4 *cur = &l->v4[w];
            /* merge when overlapping or adjacent; hi+1 overflow only at 255.255.255.255 */
            if (cur->hi == 0xffffffffu || l->v4[i].lo <= cur->hi + 1) {
                if (l->v4[i].hi > cur->hi)
                    cur->hi = l->v4[i].hi;
            } else {
                l->v4[++w] = l->v4[i];
            }
        }
        l->n4 = w + 1;
    }
    if (l->n6) {
        qsort(l->v6, l->n6, sizeof *l->v6, cmp_v6);
        size_t w = 0;
        const struct ipl_u128 max = { ~0ull, ~0ull };
        for (size_t i = 1; i < l->n6; i++) {
            struct ipl_v6 *cur = &l->v6[w];
            if (ipl_u128_cmp(cur->hi, max) == 0 ||
                ipl_u128_cmp(l->v6[i].lo, ipl_u128_inc(cur->hi)) <= 0) {
                if (ipl_u128_cmp(l->v6[i].hi, cur->hi) > 0)
                    cur->hi = l->v6[i].hi;
            } else {
                l->v6[++w] = l->v6[i];
            }
        }
        l->n6 = w + 1;
    }
}

void iplist_counts(const struct iplist *l, size_t *v4_single, size_t *v4_range,
                   size_t *v6_single, size_t *v6_range)
{
    size_t s4 = 0, s6 = 0;
    for (size_t i = 0; i < l->n4; i++)
        s4 += l->v4[i].lo == l->v4[i].hi;
    for (size_t i = 0; i < l->n6; i++)
        s6 += ipl_u128_cmp(l->v6[i].lo, l->v6[i].hi) == 0;
    if (v4_single)
        *v4_single = s4;
    if (v4_range)
        *v4_range = l->n4 - s4;
    if (v6_single)
        *v6_single = s6;
    if (v6_range)
        *v6_range = l->n6 - s6;
}

static void fmt4(uint32_t a, char *out, size_t n)
{
    snprintf(out, n, "%u.%u.%u.%u", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255);
}

void ipl_v4_format(const struct ipl_v4 *r, char *out, size_t outlen)
{
    char a[16], b[16];
    fmt4(r->lo, a, sizeof a);
    if (r->lo == r->hi) {
        snprintf(out, outlen, "%s", a);
        return;
    }
    fmt4(r->hi, b, sizeof b);
    snprintf(out, outlen, "%s-%s", a, b);
}

void ipl_v6_format(const struct ipl_v6 *r, char *out, size_t outlen)
{
    uint8_t x[16], y[16];
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    ipl_u128_to_bytes(r->lo, x);
    inet_ntop(AF_INET6, x, a, sizeof a);
    if (ipl_u128_cmp(r->lo, r->hi) == 0) {
        snprintf(out, outlen, "%s", a);
        return;
    }
    ipl_u128_to_bytes(r->hi, y);
    inet_ntop(AF_INET6, y, b, sizeof b);
    snprintf(out, outlen, "%s-%s", a, b);
}
