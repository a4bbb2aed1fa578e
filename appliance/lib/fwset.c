/* fw.set writer, reader and validator (format in fwset.h). */
#include "fwset.h"
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FWSET_MAGIC "OTAFWSET"
#define FWSET_BOM 0x01020304u

struct fwset_hdr {
    char magic[8];
    uint32_t version;
    uint32_t bom;
    uint64_t body_len;
    uint32_t n_sets;
    uint32_t hdr_len;
    uint8_t reserved[32];
    uint8_t hash[32];
};

struct fwset_desc {
    char name[FWSET_NAME_MAX];
    uint8_t kind, etype, pad[2];
    uint32_t timeout;
    uint64_t offset;  /* from the start of the body */
    uint64_t count;
};

_Static_assert(sizeof(struct fwset_hdr) == 96, "header layout");
_Static_assert(sizeof(struct fwset_desc) == 56, "descriptor layout");
_Static_assert(sizeof(struct fwset_opts) % 8 == 0, "options layout");

size_t fwset_elem_size(int etype)
{
    switch (etype) {
    case FWSET_E_V4: return 4;
    case FWSET_E_V4R: return 8;
    case FWSET_E_V6: return 16;
    case FWSET_E_V6R: return 32;
    case FWSET_E_MAC: return 8;
    default: return 0;
    }
}

const char *fwset_zone_name(int zone)
{
    static const char *names[] = { "lan", "guest", "iot", "wan" };
    return zone >= 0 && zone < FWSET_ZONES ? names[zone] : "?";
}

const char *fwset_kind_name(int kind)
{
    switch (kind) {
    case FWSET_KIND_BLOCK: return "block";
    case FWSET_KIND_DOH: return "doh";
    case FWSET_KIND_QUARANTINE: return "quarantine";
    case FWSET_KIND_ALLOW: return "allow";
    default: return "?";
    }
}

void fwset_init(struct fwset *s)
{
    memset(s, 0, sizeof *s);
    s->opts.log_rate = 10;
}

void fwset_free(struct fwset *s)
{
    if (s->map)
        munmap(s->map, s->maplen);
    for (size_t i = 0; i < FWSET_MAX_SETS; i++)
        free(s->owned[i]);
    memset(s, 0, sizeof *s);
}

static int name_ok(const char *n)
{
    size_t len = strnlen(n, FWSET_NAME_MAX);
    if (len == 0 || len == FWSET_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
            return 0;
    return 1;
}

int fwset_add_raw(struct fwset *s, const char *name, int kind, int etype, uint32_t timeout,
                  const void *elems, size_t count, char *err, size_t errlen)
{
    if (s->n_sets == FWSET_MAX_SETS) {
        snprintf(err, errlen, "set '%s': more than %d sets", name, FWSET_MAX_SETS);
        return -1;
    }
    if (strlen(name) >= FWSET_NAME_MAX || !name_ok(name)) {
        snprintf(err, errlen, "set name '%s': use 1-%d characters a-z, 0-9, _",
                 name, FWSET_NAME_MAX - 1);
        return -1;
    }
    if (fwset_find(s, name)) {
        snprintf(err, errlen, "set '%s' given twice", name);
        return -1;
    }
    struct fwset_set *t = &s->sets[s->n_sets++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = (uint8_t)kind;
    t->etype = (uint8_t)etype;
    t->timeout = timeout;
    t->elems = elems;
    t->count = count;
    return 0;
}

/* Adds a set whose array the artifact owns from now on. */
static int add_owned(struct fwset *s, const char *name, int kind, int etype, uint32_t timeout,
                     void *elems, size_t count, char *err, size_t errlen)
{
    size_t idx = s->n_sets;
    if (fwset_add_raw(s, name, kind, etype, timeout, elems, count, err, errlen) < 0) {
        free(elems);
        return -1;
    }
    s->owned[idx] = elems;
    return 0;
}

int fwset_add_iplist(struct fwset *s, const char *name, int kind, const struct iplist *l,
                     uint32_t timeout, char *err, size_t errlen)
{
    size_t s4, r4, s6, r6;
    char n[FWSET_NAME_MAX + 8];
    if (strlen(name) > FWSET_NAME_MAX - 5) {
        snprintf(err, errlen, "list name '%s' is longer than %d characters", name,
                 FWSET_NAME_MAX - 5);
        return -1;
    }
    iplist_counts(l, &s4, &r4, &s6, &r6);
    uint32_t *a4 = malloc((s4 ? s4 : 1) * 4);
    struct ipl_v4 *b4 = malloc((r4 ? r4 : 1) * sizeof *b4);
    uint8_t *a6 = malloc((s6 ? s6 : 1) * 16);
    uint8_t *b6 = malloc((r6 ? r6 : 1) * 32);
    if (!a4 || !b4 || !a6 || !b6) {
        free(a4), free(b4), free(a6), free(b6);
        snprintf(err, errlen, "list '%s': out of memory", name);
        return -1;
    }
    size_t i4 = 0, j4 = 0, i6 = 0, j6 = 0;
    for (size_t i = 0; i < l->n4; i++) {
        if (l->v4[i].lo == l->v4[i].hi)
            a4[i4++] = l->v4[i].lo;
        else
            b4[j4++] = l->v4[i];
    }
    for (size_t i = 0; i < l->n6; i++) {
        if (ipl_u128_cmp(l->v6[i].lo, l->v6[i].hi) == 0) {
            ipl_u128_to_bytes(l->v6[i].lo, a6 + 16 * i6++);
        } else {
            ipl_u128_to_bytes(l->v6[i].lo, b6 + 32 * j6);
            ipl_u128_to_bytes(l->v6[i].hi, b6 + 32 * j6 + 16);
            j6++;
        }
    }
    int rc = 0;
    snprintf(n, sizeof n, "%s_v4", name);
    rc |= add_owned(s, n, kind, FWSET_E_V4, timeout, a4, i4, err, errlen);
    snprintf(n, sizeof n, "%s_v4r", name);
    rc |= rc ? (free(b4), -1) : add_owned(s, n, kind, FWSET_E_V4R, timeout, b4, j4, err, errlen);
    snprintf(n, sizeof n, "%s_v6", name);
    rc |= rc ? (free(a6), -1) : add_owned(s, n, kind, FWSET_E_V6, timeout, a6, i6, err, errlen);
    snprintf(n, sizeof n, "%s_v6r", name);
    rc |= rc ? (free(b6), -1) : add_owned(s, n, kind, FWSET_E_V6R, timeout, b6, j6, err, errlen);
    return rc ? -1 : 0;
}

static int cmp_mac8(const void *a, const void *b)
{
    return memcmp(a, b, 8);
}

int fwset_add_macs(struct fwset *s, const char *name, int kind, const uint8_t (*macs)[6],
                   size_t n, char *err, size_t errlen)
{
    uint8_t *a = calloc(n ? n : 1, 8);
    if (!a) {
        snprintf(err, errlen, "set '%s': out of memory", name);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(a + 8 * i, macs[i], 6);
    qsort(a, n, 8, cmp_mac8);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || memcmp(a + 8 * (w - 1), a + 8 * i, 8) != 0)
            memmove(a + 8 * w++, a + 8 * i, 8);
    return add_owned(s, name, kind, FWSET_E_MAC, 0, a, w, err, errlen);
}

const struct fwset_set *fwset_find(const struct fwset *s, const char *name)
{
    for (size_t i = 0; i < s->n_sets; i++)
        if (strcmp(s->sets[i].name, name) == 0)
            return &s->sets[i];
    return NULL;
}

size_t fwset_total_elems(const struct fwset *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_sets; i++)
        n += s->sets[i].count;
    return n;
}

static int validate_set(const struct fwset_set *t, char *err, size_t errlen)
{
    if (!name_ok(t->name)) {
        snprintf(err, errlen, "set name '%.31s' is not [a-z0-9_]{1,31}", t->name);
        return -1;
    }
    if (t->kind < FWSET_KIND_BLOCK || t->kind > FWSET_KIND_ALLOW) {
        snprintf(err, errlen, "set '%s': unknown kind %u", t->name, t->kind);
        return -1;
    }
    size_t es = fwset_elem_size(t->etype);
    if (!es) {
        snprintf(err, errlen, "set '%s': unknown element type %u", t->name, t->etype);
        return -1;
    }
    if (t->count && !t->elems) {
        snprintf(err, errlen, "set '%s': %zu elements but no data", t->name, t->count);
        return -1;
    }
    const uint8_t *p = t->elems;
    for (size_t i = 0; i < t->count; i++) {
        const char *bad = NULL;
        switch (t->etype) {
        case FWSET_E_V4: {
            const uint32_t *a = t->elems;
            if (i && a[i] <= a[i - 1])
                bad = "not strictly increasing";
            break;
        }
        case FWSET_E_V4R: {
            const struct ipl_v4 *a = t->elems;
            if (a[i].lo >= a[i].hi)
                bad = "range start not below its end";
            else if (i && (uint64_t)a[i].lo <= (uint64_t)a[i - 1].hi + 1)
                bad = "range overlaps or touches the previous one";
            break;
        }
        case FWSET_E_V6:
            if (i && memcmp(p + 16 * i, p + 16 * (i - 1), 16) <= 0)
                bad = "not strictly increasing";
            break;
        case FWSET_E_V6R: {
            const uint8_t *e = p + 32 * i;
            if (memcmp(e, e + 16, 16) >= 0)
                bad = "range start not below its end";
            else if (i) {
                struct ipl_u128 prev_hi = ipl_u128_from_bytes(e - 16);
                struct ipl_u128 lo = ipl_u128_from_bytes(e);
                if (prev_hi.hi == ~0ull && prev_hi.lo == ~0ull)
                    bad = "range after the last address";
                else if (ipl_u128_cmp(lo, ipl_u128_inc(prev_hi)) <= 0)
                    bad = "range overlaps or touches the previous one";
            }
            break;
        }
        case FWSET_E_MAC:
            if (p[8 * i + 6] || p[8 * i + 7])
                bad = "padding bytes not zero";
            else if (i && memcmp(p + 8 * i, p + 8 * (i - 1), 8) <= 0)
                bad = "not strictly increasing";
            break;
        }
        if (bad) {
            snprintf(err, errlen, "set '%s' element %zu: %s", t->name, i, bad);
            return -1;
        }
    }
    return 0;
}

static int validate_opts(const struct fwset_opts *o, char *err, size_t errlen)
{
    for (int z = 0; z < FWSET_ZONES; z++)
        for (int i = 0; i < FWSET_MAX_IFACES; i++) {
            const char *n = o->ifname[z][i];
            size_t len = strnlen(n, FWSET_IFNAMSIZ);
            if (len == FWSET_IFNAMSIZ) {
                snprintf(err, errlen, "zone %s interface %d: name not terminated",
                         fwset_zone_name(z), i);
                return -1;
            }
            for (size_t k = 0; k < len; k++)
                if (n[k] <= ' ' || n[k] == '/' || (unsigned char)n[k] >= 127) {
                    snprintf(err, errlen, "zone %s interface '%s': bad character",
                             fwset_zone_name(z), n);
                    return -1;
                }
        }
    if (o->log_rate > 100000) {
        snprintf(err, errlen, "log rate %u/s is above 100000", o->log_rate);
        return -1;
    }
    return 0;
}

int fwset_validate(const struct fwset *s, char *err, size_t errlen)
{
    if (validate_opts(&s->opts, err, errlen) < 0)
        return -1;
    if (s->n_sets > FWSET_MAX_SETS) {
        snprintf(err, errlen, "%zu sets, at most %d", s->n_sets, FWSET_MAX_SETS);
        return -1;
    }
    for (size_t i = 0; i < s->n_sets; i++) {
        if (validate_set(&s->sets[i], err, errlen) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->sets[i].name, s->sets[j].name) == 0) {
                snprintf(err, errlen, "set '%s' appears twice", s->sets[i].name);
                return -1;
            }
    }
    return 0;
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

int fwset_write(const struct fwset *s, const char *path, char *err, size_t errlen)
{
    static const uint8_t zeros[8];
    if (fwset_validate(s, err, errlen) < 0)
        return -1;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    struct fwset_desc *d = calloc(s->n_sets ? s->n_sets : 1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t off = sizeof(struct fwset_opts) + s->n_sets * sizeof *d;
    for (size_t i = 0; i < s->n_sets; i++) {
        memcpy(d[i].name, s->sets[i].name, FWSET_NAME_MAX);
        d[i].kind = s->sets[i].kind;
        d[i].etype = s->sets[i].etype;
        d[i].timeout = s->sets[i].timeout;
        d[i].offset = off;
        d[i].count = s->sets[i].count;
        off = align8(off + s->sets[i].count * fwset_elem_size(s->sets[i].etype));
    }
    struct fwset_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, FWSET_MAGIC, 8);
    h.version = FWSET_VERSION;
    h.bom = FWSET_BOM;
    h.body_len = off;
    h.n_sets = (uint32_t)s->n_sets;
    h.hdr_len = sizeof h;

    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h.hash);
    crypto_generichash_update(&st, (const void *)&s->opts, sizeof s->opts);
    crypto_generichash_update(&st, (const void *)d, s->n_sets * sizeof *d);
    for (size_t i = 0; i < s->n_sets; i++) {
        size_t len = s->sets[i].count * fwset_elem_size(s->sets[i].etype);
        if (len)
            crypto_generichash_update(&st, s->sets[i].elems, len);
        if (align8(len) != len)
            crypto_generichash_update(&st, zeros, align8(len) - len);
    }
    crypto_generichash_final(&st, h.hash, sizeof h.hash);

    struct atomic_file f;
    if (atomic_open(&f, path, 0644, err, errlen) < 0) {
        free(d);
        return -1;
    }
    int bad = atomic_write(&f, &h, sizeof h, err, errlen) ||
              atomic_write(&f, &s->opts, sizeof s->opts, err, errlen) ||
              atomic_write(&f, d, s->n_sets * sizeof *d, err, errlen);
    for (size_t i = 0; !bad && i < s->n_sets; i++) {
        size_t len = s->sets[i].count * fwset_elem_size(s->sets[i].etype);
        bad = (len && atomic_write(&f, s->sets[i].elems, len, err, errlen)) ||
              (align8(len) != len && atomic_write(&f, zeros, align8(len) - len, err, errlen));
    }
    free(d);
    if (bad) {
        atomic_abort(&f);
        return -1;
    }
    if (atomic_commit(&f, err, errlen) < 0)
        return -1;
    return 0;
}

int fwset_parse(struct fwset *s, const void *buf, size_t len, const char *name,
                char *err, size_t errlen)
{
    fwset_init(s);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    if (len < sizeof(struct fwset_hdr) + sizeof(struct fwset_opts)) {
        snprintf(err, errlen, "%s: too short (%zu bytes) for a fw.set; rebuild it with "
                 "'otasukectl fw build'", name, len);
        return -1;
    }
    const struct fwset_hdr *h = buf;
    const uint8_t *body = (const uint8_t *)buf + sizeof *h;
    if (memcmp(h->magic, FWSET_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a fw.set (bad magic)", name);
        return -1;
    }
    if (h->bom != FWSET_BOM) {
        snprintf(err, errlen, "%s: built on a machine with another byte order", name);
        return -1;
    }
    if (h->version != FWSET_VERSION || h->hdr_len != sizeof *h) {
        snprintf(err, errlen, "%s: format version %u, this program reads %d; rebuild it",
                 name, h->version, FWSET_VERSION);
        return -1;
    }
    if (h->body_len != len - sizeof *h) {
        snprintf(err, errlen, "%s: truncated or padded: body %llu bytes, file has %zu",
                 name, (unsigned long long)h->body_len, len - sizeof *h);
        return -1;
    }
    if (h->n_sets > FWSET_MAX_SETS ||
        sizeof(struct fwset_opts) + h->n_sets * sizeof(struct fwset_desc) > h->body_len) {
        snprintf(err, errlen, "%s: set count %u does not fit the file", name, h->n_sets);
        return -1;
    }
    uint8_t hash[32];
    crypto_generichash(hash, sizeof hash, body, h->body_len, NULL, 0);
    if (sodium_memcmp(hash, h->hash, sizeof hash) != 0) {
        snprintf(err, errlen, "%s: checksum mismatch (corrupt or partly written file)", name);
        return -1;
    }
    memcpy(&s->opts, body, sizeof s->opts);
    const struct fwset_desc *d = (const void *)(body + sizeof(struct fwset_opts));
    size_t min_off = sizeof(struct fwset_opts) + h->n_sets * sizeof *d;
    for (uint32_t i = 0; i < h->n_sets; i++) {
        struct fwset_set *t = &s->sets[i];
        size_t es = fwset_elem_size(d[i].etype);
        if (!es || d[i].offset % 8 || d[i].offset < min_off || d[i].offset > h->body_len ||
            d[i].count > (h->body_len - d[i].offset) / es) {
            snprintf(err, errlen, "%s: set %u has a bad type, offset or count", name, i);
            memset(s, 0, sizeof *s);
            return -1;
        }
        memcpy(t->name, d[i].name, FWSET_NAME_MAX);
        t->name[FWSET_NAME_MAX - 1] = '\0';
        t->kind = d[i].kind;
        t->etype = d[i].etype;
        t->timeout = d[i].timeout;
        t->elems = body + d[i].offset;
        t->count = (size_t)d[i].count;
    }
    s->n_sets = h->n_sets;
    char why[256];
    if (fwset_validate(s, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s", name, why);
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

int fwset_open(struct fwset *s, const char *path, char *err, size_t errlen)
{
    fwset_init(s);
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
    size_t len = (size_t)st.st_size;
    if (len < sizeof(struct fwset_hdr) + sizeof(struct fwset_opts)) {
        close(fd); /* fwset_parse says why, without mapping an empty file */
        return fwset_parse(s, "", len, path, err, errlen);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        return -1;
    }
    if (fwset_parse(s, map, len, path, err, errlen) < 0) {
        munmap(map, len);
        return -1;
    }
    s->map = map;
    s->maplen = len;
    return 0;
}
