/* Domain set builder and writer.
 *
 * Memory while building: every name is interned once in one growing arena (no
 * per-name malloc), an entry is 8 bytes (arena offset, record, 16 bits of the hash to
 * skip most name compares), and the dedupe map is a uint32 array at load <= 0.5. A
 * million names of ~20 bytes cost about 21 MB arena + 8 MB entries + 8 MB map. The full
 * hash is recomputed from the arena when the map grows and when the file is written
 * (SipHash of 1M short names: ~40 ms), which is cheaper than keeping 8 MB of hashes.
 * The writer reuses the map as its slot -> name index and streams the per-name records
 * from the entries, so writing adds only the slot table (8 bytes x slots) to the peak:
 * the agent compiles 1M names within its 64 MB budget. Records (list-mask combinations)
 * are interned in a small map of their own: real builds have a few hundred. */
#include "domainset.h"
#include "domainset_format.h"
#include "atomicfile.h"
#include "errbuf.h"
#include "growbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct bentry {
    uint32_t off;   /* arena offset of the NUL-terminated name */
    uint16_t rec;   /* record index (DSET_MAX_RECORDS fits) */
    uint16_t tag;   /* bits 32..47 of the name's hash: most mismatches stop here */
};
_Static_assert(DSET_MAX_RECORDS <= 65535u, "record index must fit in bentry.rec");

static inline uint16_t hash_tag(uint64_t h48)
{
    return (uint16_t)(h48 >> 32);
}

static uint64_t entry_hash(const struct dset_builder *b, const struct bentry *e);

struct blist {
    int32_t category;
    uint32_t is_allow;
    int allow_twin;  /* list id that takes "@@" entries of a block list, -1 if none yet */
    char label[DSET_LABEL_MAX + 1];
};

struct dset_builder {
    uint8_t key[16];
    struct blist lists[DSET_MAX_LISTS];
    unsigned nlists;

    char *arena;
    size_t arena_len, arena_cap;

    struct bentry *ent;
    size_t nent, ent_cap;
    uint32_t *map;       /* entry index + 1, 0 = empty; power-of-two size */
    size_t map_cap;

    struct dset_file_record *rec;
    size_t nrec, rec_cap;
    uint32_t *recmap;    /* record index + 1 */
    size_t recmap_cap;

    uint32_t min_labels, max_labels;
};

static uint64_t entry_hash(const struct dset_builder *b, const struct bentry *e)
{
    const char *name = b->arena + e->off;
    return dset_hash48(b->key, name, strlen(name));
}

struct dset_builder *dset_builder_new(void)
{
    struct dset_builder *b;

    if (sodium_init() < 0)
        return NULL;
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    randombytes_buf(b->key, sizeof b->key);
    b->map_cap = 1024;
    b->map = calloc(b->map_cap, sizeof *b->map);
    b->recmap_cap = 256;
    b->recmap = calloc(b->recmap_cap, sizeof *b->recmap);
    if (!b->map || !b->recmap) {
        dset_builder_free(b);
        return NULL;
    }
    return b;
}

void dset_builder_free(struct dset_builder *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b->ent);
    free(b->map);
    free(b->rec);
    free(b->recmap);
    free(b);
}

void dset_builder_get_key(const struct dset_builder *b, uint8_t key[16])
{
    memcpy(key, b->key, 16);
}

/* For tests and reproducible builds: replaces the random key. Only before any add. */
void dset_builder_set_key(struct dset_builder *b, const uint8_t key[16])
{
    memcpy(b->key, key, 16);
}

static int add_list_raw(struct dset_builder *b, const char *label, int category, int is_allow,
                        char *err, size_t errlen)
{
    struct blist *l;
    size_t n = strlen(label);

    if (b->nlists >= DSET_MAX_LISTS) {
        errbuf_set(err, errlen, "too many lists in one set (at most %d)", DSET_MAX_LISTS);
        return -1;
    }
    if (n == 0 || n > DSET_LABEL_MAX) {
        errbuf_set(err, errlen, "list label '%.60s' must be 1..%d characters", label, DSET_LABEL_MAX);
        return -1;
    }
    l = &b->lists[b->nlists];
    l->category = is_allow ? -1 : category;
    l->is_allow = is_allow ? 1 : 0;
    l->allow_twin = -1;
    memcpy(l->label, label, n + 1);
    return (int)b->nlists++;
}

int dset_builder_add_list(struct dset_builder *b, const char *label, int category,
                          int is_allow, char *err, size_t errlen)
{
    if (!label) {
        errbuf_set(err, errlen, "list label missing");
        return -1;
    }
    if (!is_allow && !dset_category_name(category)) {
        errbuf_set(err, errlen, "list '%s': unknown category number %d", label, category);
        return -1;
    }
    return add_list_raw(b, label, category, is_allow, err, errlen);
}

static uint64_t rec_hash(const struct dset_file_record *r)
{
    uint64_t h = r->lists_exact * 0x9e3779b97f4a7c15ull ^ r->lists_subtree * 0xc2b2ae3d27d4eb4full;
    return h ^ (h >> 29);
}

static int recmap_grow(struct dset_builder *b)
{
    size_t cap = b->recmap_cap * 2;
    uint32_t *m = calloc(cap, sizeof *m);
    if (!m)
        return -1;
    for (size_t i = 0; i < b->nrec; i++) {
        size_t j = rec_hash(&b->rec[i]) & (cap - 1);
        while (m[j])
            j = (j + 1) & (cap - 1);
        m[j] = (uint32_t)i + 1;
    }
    free(b->recmap);
    b->recmap = m;
    b->recmap_cap = cap;
    return 0;
}

/* Returns the index of the record with these masks, adding it if new; -1 when full. */
static long rec_intern(struct dset_builder *b, uint64_t ex, uint64_t sub)
{
    struct dset_file_record r = { ex, sub };
    size_t j = rec_hash(&r) & (b->recmap_cap - 1);

    while (b->recmap[j]) {
        const struct dset_file_record *o = &b->rec[b->recmap[j] - 1];
        if (o->lists_exact == ex && o->lists_subtree == sub)
            return (long)b->recmap[j] - 1;
        j = (j + 1) & (b->recmap_cap - 1);
    }
    if (b->nrec >= DSET_MAX_RECORDS)
        return -1;
    if (b->nrec == b->rec_cap) {
        size_t cap = b->rec_cap ? b->rec_cap * 2 : 64;
        struct dset_file_record *n = realloc(b->rec, cap * sizeof *n);
        if (!n)
            return -1;
        b->rec = n;
        b->rec_cap = cap;
    }
    b->rec[b->nrec] = r;
    b->recmap[j] = (uint32_t)b->nrec + 1;
    b->nrec++;
    if (b->nrec * 2 > b->recmap_cap && recmap_grow(b) < 0)
        return -1;
    return (long)b->nrec - 1;
}

static int map_grow(struct dset_builder *b)
{
    size_t cap = b->map_cap * 2;
    uint32_t *m = calloc(cap, sizeof *m);
    if (!m)
        return -1;
    for (size_t i = 0; i < b->nent; i++) {
        size_t j = entry_hash(b, &b->ent[i]) & (cap - 1);
        while (m[j])
            j = (j + 1) & (cap - 1);
        m[j] = (uint32_t)i + 1;
    }
    free(b->map);
    b->map = m;
    b->map_cap = cap;
    return 0;
}

static int add_bits(struct dset_builder *b, const char *name, size_t len, uint64_t exb,
                    uint64_t subb, char *err, size_t errlen);

int dset_builder_add(struct dset_builder *b, int list_id, const char *name, size_t len,
                     unsigned flags, char *err, size_t errlen)
{
    uint64_t bit;
    const struct blist *l;

    if (list_id < 0 || (unsigned)list_id >= b->nlists) {
        errbuf_set(err, errlen, "no list with id %d", list_id);
        return -1;
    }
    if (!b->map) {
        errbuf_set(err, errlen, "the set was written already; start a new builder");
        return -1;
    }
    if (len == 0 || len > DSET_NAME_MAX || memchr(name, 0, len)) {
        errbuf_set(err, errlen, "bad name length %zu", len);
        return -1;
    }
    if (!(flags & (DSET_EXACT | DSET_SUBTREE)))
        flags |= DSET_EXACT;
    l = &b->lists[list_id];
    /* An "@@" exception inside a block list goes to a hidden allow twin of that list,
     * so allow/block stays a property of the list and records stay two masks. */
    if ((flags & DSET_ALLOW) && !l->is_allow) {
        if (l->allow_twin < 0) {
            char label[DSET_LABEL_MAX + 1];
            int id;
            snprintf(label, sizeof label, "%s", l->label);
            id = add_list_raw(b, label, -1, 1, err, errlen);
            if (id < 0)
                return -1;
            b->lists[list_id].allow_twin = id;
        }
        list_id = b->lists[list_id].allow_twin;
    }
    bit = 1ull << list_id;
    return add_bits(b, name, len, (flags & DSET_EXACT) ? bit : 0,
                    (flags & DSET_SUBTREE) ? bit : 0, err, errlen);
}

int dset_builder_add_tombstone(struct dset_builder *b, const char *name, size_t len,
                               char *err, size_t errlen)
{
    if (!b->map) {
        errbuf_set(err, errlen, "the set was written already; start a new builder");
        return -1;
    }
    if (len == 0 || len > DSET_NAME_MAX || memchr(name, 0, len)) {
        errbuf_set(err, errlen, "bad name length %zu", len);
        return -1;
    }
    return add_bits(b, name, len, 0, 0, err, errlen);
}

/* Interns name (checked by the caller) and ORs the list bits into its record. */
static int add_bits(struct dset_builder *b, const char *name, size_t len, uint64_t exb,
                    uint64_t subb, char *err, size_t errlen)
{
    uint64_t h;
    size_t j;
    long r;

    h = dset_hash48(b->key, name, len);

    j = h & (b->map_cap - 1);
    while (b->map[j]) {
        struct bentry *e = &b->ent[b->map[j] - 1];
        if (e->tag == hash_tag(h) && memcmp(b->arena + e->off, name, len) == 0 &&
            b->arena[e->off + len] == 0) {
            const struct dset_file_record *o = &b->rec[e->rec];
            r = rec_intern(b, o->lists_exact | exb, o->lists_subtree | subb);
            if (r < 0)
                goto full;
            e->rec = (uint16_t)r;
            return 0;
        }
        j = (j + 1) & (b->map_cap - 1);
    }

    r = rec_intern(b, exb, subb);
    if (r < 0)
        goto full;
    if (b->arena_len + len + 1 > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap * 2 : 1 << 20;
        char *a;
        while (cap < b->arena_len + len + 1)
            cap *= 2;
        if (cap > UINT32_MAX) {
            errbuf_set(err, errlen, "names exceed 4 GB");
            return -1;
        }
        a = realloc(b->arena, cap);
        if (!a)
            goto oom;
        b->arena = a;
        b->arena_cap = cap;
    }
    if (b->nent == b->ent_cap) {
        size_t cap = b->ent_cap ? b->ent_cap * 2 : 4096;
        struct bentry *e = realloc(b->ent, cap * sizeof *e);
        if (!e)
            goto oom;
        b->ent = e;
        b->ent_cap = cap;
    }
    if (b->nent >= UINT32_MAX - 1) {
        errbuf_set(err, errlen, "too many names");
        return -1;
    }
    {
        uint32_t labels = 1;
        for (const char *q = memchr(name, '.', len); q; q = memchr(q + 1, '.', len - (size_t)(q + 1 - name)))
            labels++;
        if (!b->min_labels || labels < b->min_labels)
            b->min_labels = labels;
        if (labels > b->max_labels)
            b->max_labels = labels;
    }
    b->ent[b->nent] = (struct bentry){ (uint32_t)b->arena_len, (uint16_t)r, hash_tag(h) };
    memcpy(b->arena + b->arena_len, name, len);
    b->arena[b->arena_len + len] = 0;
    b->arena_len += len + 1;
    b->map[j] = (uint32_t)++b->nent;
    if (b->nent * 2 > b->map_cap && map_grow(b) < 0)
        goto oom;
    return 0;
full:
    errbuf_set(err, errlen, "more than %u distinct list combinations (or out of memory)", DSET_MAX_RECORDS);
    return -1;
oom:
    errbuf_set(err, errlen, "out of memory after %zu names", b->nent);
    return -1;
}

size_t dset_builder_names(const struct dset_builder *b)
{
    return b->nent;
}

/* ---- writer ------------------------------------------------------------------ */

struct wbuf {
    int fd;
    uint32_t crc;
    uint64_t off;
    size_t used;
    int failed;
    uint8_t buf[1 << 16];
};

static void w_flush(struct wbuf *w)
{
    size_t done = 0;
    while (!w->failed && done < w->used) {
        ssize_t n = write(w->fd, w->buf + done, w->used - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->failed = errno ? errno : EIO;
            break;
        }
        done += (size_t)n;
    }
    w->used = 0;
}

static void w_put(struct wbuf *w, const void *p, size_t len)
{
    const uint8_t *s = p;
    w->crc = dset_crc32c(w->crc, p, len);
    w->off += len;
    while (len) {
        size_t n = sizeof w->buf - w->used;
        if (n > len)
            n = len;
        memcpy(w->buf + w->used, s, n);
        w->used += n;
        s += n;
        len -= n;
        if (w->used == sizeof w->buf)
            w_flush(w);
    }
}

static void w_pad8(struct wbuf *w)
{
    static const uint8_t zero[8];
    if (w->off & 7)
        w_put(w, zero, 8 - (w->off & 7));
}

/* Appends one entry of the SHARED section (names whose 48-bit hash another name of the
 * set also has). Returns 0 or -1 (out of memory). */
static int shared_push(struct growbuf *sh, uint64_t h48, uint32_t name, uint32_t rec)
{
    struct dset_file_shared e = { h48, name, rec };
    return growbuf_append(sh, &e, sizeof e);
}

static int shared_cmp(const void *a, const void *b)
{
    const struct dset_file_shared *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->name < y->name ? -1 : x->name > y->name;
}

int dset_builder_write(struct dset_builder *b, const char *path,
                       struct dset_build_stats *stats, char *err, size_t errlen)
{
    uint64_t nslots, *slots = NULL;
    uint32_t *nameidx = NULL;
    struct dset_file_header hdr;
    struct dset_file_list lists[DSET_MAX_LISTS];
    struct wbuf *w = NULL;
    struct atomic_file out_file = { .fd = -1 };
    struct growbuf sh = { 0 };   /* struct dset_file_shared entries; usually none */
    size_t nsh;
    int committed = 0, rc = -1;

    /* load <= 0.7, rounded to whole cache lines of slots */
    nslots = ((uint64_t)b->nent * 10 + 6) / 7;
    nslots = (nslots + 7) & ~7ull;
    if (nslots < 8)
        nslots = 8;
    /* The dedupe map is done with (no add after a write): its memory becomes the slot ->
     * name index when it is big enough, which it is whenever the set is not tiny
     * (map slots >= 2 x names > slots). */
    if (b->map && b->map_cap >= nslots) {
        nameidx = b->map;
    } else {
        free(b->map);
        nameidx = malloc(nslots * sizeof *nameidx);
    }
    b->map = NULL;
    b->map_cap = 0;
    slots = calloc(nslots, sizeof *slots);
    if (!slots || !nameidx)
        goto oom;
    memset(nameidx, 0xff, nslots * sizeof *nameidx);
    for (size_t i = 0; i < b->nent; i++) {
        const struct bentry *e = &b->ent[i];
        uint64_t h48 = entry_hash(b, e);
        uint64_t j = dset_slot_of(h48, nslots);
        for (;;) {
            if (!slots[j]) {
                slots[j] = h48 << 16 | e->rec;
                nameidx[j] = e->off;
                break;
            }
            if (slots[j] >> 16 == h48) {
                /* Two names with one 48-bit hash (about one build in 500 at 1M names).
                 * Merging their records would give each the other's lists, so the slot
                 * is marked shared and each name keeps its own record in the SHARED
                 * section, settled by comparing the name (lookup cost: only for
                 * queries that hit this slot; a few bytes of file per such name). */
                if ((slots[j] & 0xffff) != DSET_SLOT_SHARED) {
                    if (shared_push(&sh, h48, nameidx[j], (uint32_t)(slots[j] & 0xffff)) < 0)
                        goto oom;
                    slots[j] = h48 << 16 | DSET_SLOT_SHARED;
                    nameidx[j] = UINT32_MAX - 1;
                }
                if (shared_push(&sh, h48, e->off, e->rec) < 0)
                    goto oom;
                break;
            }
            if (++j == nslots)
                j = 0;
        }
    }

    nsh = sh.len / sizeof(struct dset_file_shared);
    if (nsh > 1)
        qsort(sh.data, nsh, sizeof(struct dset_file_shared), shared_cmp);

    memset(&hdr, 0, sizeof hdr);
    memcpy(hdr.magic, DSET_MAGIC, 8);
    hdr.version = DSET_VERSION;
    hdr.header_size = sizeof hdr;
    hdr.build_time = (uint64_t)time(NULL);
    hdr.names = b->nent;
    hdr.slots = nslots;
    hdr.records = (uint32_t)b->nrec;
    hdr.lists = b->nlists;
    memcpy(hdr.key, b->key, 16);
    hdr.min_labels = b->min_labels;
    hdr.max_labels = b->max_labels;

    memset(lists, 0, sizeof lists);
    for (unsigned i = 0; i < b->nlists; i++) {
        lists[i].category = b->lists[i].category;
        lists[i].is_allow = b->lists[i].is_allow;
        memcpy(lists[i].label, b->lists[i].label, sizeof lists[i].label);
    }

    {
        uint64_t off = sizeof hdr;
        uint64_t sizes[DSET_SEC_COUNT] = {
            [DSET_SEC_SLOTS] = nslots * 8,
            [DSET_SEC_RECORDS] = b->nrec * sizeof(struct dset_file_record),
            [DSET_SEC_LISTS] = b->nlists * sizeof(struct dset_file_list),
            [DSET_SEC_NAMES] = b->arena_len,
            [DSET_SEC_NAMEIDX] = nslots * 4,
            [DSET_SEC_NAMEREC] = (uint64_t)b->nent * 4,
            [DSET_SEC_SHARED] = sh.len,
        };
        for (int s = 0; s < DSET_SEC_COUNT; s++) {
            hdr.sec[s].offset = off;
            hdr.sec[s].size = sizes[s];
            off = (off + sizes[s] + 7) & ~7ull;
        }
        hdr.file_size = off;
    }

    if (atomic_open(&out_file, path, 0644, err, errlen) < 0)
        goto out;
    w = malloc(sizeof *w);
    if (!w) {
        errbuf_set(err, errlen, "%s: out of memory", path);
        goto out;
    }
    w->fd = out_file.fd;
    /* the checksum covers the header too (with its checksum field zero): a flipped
     * bit in the key or a section offset must not pass either */
    w->crc = dset_crc32c(0, &hdr, sizeof hdr);
    w->off = 0;
    w->used = 0;
    w->failed = 0;
    {
        /* the header is written last (pwrite) once the checksum is known */
        if (lseek(out_file.fd, sizeof hdr, SEEK_SET) < 0) {
            errbuf_set(err, errlen, "%s: seek: %s", out_file.tmp, strerror(errno));
            goto out;
        }
        w->off = sizeof hdr;
        w_put(w, slots, nslots * 8);
        w_pad8(w);
        w_put(w, b->rec, b->nrec * sizeof *b->rec);
        w_pad8(w);
        w_put(w, lists, b->nlists * sizeof lists[0]);
        w_pad8(w);
        w_put(w, b->arena, b->arena_len);
        w_pad8(w);
        w_put(w, nameidx, nslots * 4);
        w_pad8(w);
        for (size_t i = 0; i < b->nent; i++) {
            uint32_t rec = b->ent[i].rec;
            w_put(w, &rec, sizeof rec);
        }
        w_pad8(w);
        w_put(w, sh.data, sh.len);
        w_pad8(w);
        w_flush(w);
    }
    if (w->failed) {
        errbuf_set(err, errlen, "%s: write failed: %s", out_file.tmp, strerror(w->failed));
        goto out;
    }
    if (w->off != hdr.file_size) {
        errbuf_set(err, errlen, "%s: internal size mismatch", out_file.tmp);
        goto out;
    }
    hdr.checksum = w->crc;
    if (pwrite(out_file.fd, &hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
        errbuf_set(err, errlen, "%s: write failed: %s", out_file.tmp, strerror(errno));
        goto out;
    }
    committed = 1; /* from here on atomic_commit cleans up after itself */
    if (atomic_commit(&out_file, err, errlen) < 0)
        goto out;
    if (stats) {
        stats->names = b->nent;
        stats->slots = nslots;
        stats->records = b->nrec;
        stats->file_bytes = hdr.file_size;
        stats->lookup_bytes = nslots * 8 + b->nrec * sizeof(struct dset_file_record);
        stats->shared_hash = nsh;
    }
    rc = 0;
    goto out;
oom:
    errbuf_set(err, errlen, "%s: out of memory for %zu names", path, b->nent);
out:
    if (!committed)
        atomic_abort(&out_file);
    free(w);
    free(slots);
    free(nameidx);
    free(sh.data);
    return rc;
}
