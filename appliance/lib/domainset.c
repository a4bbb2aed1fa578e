/* Domain set: open/verify, lookup, metadata. Layout in domainset_format.h.
 *
 * Hand-written on purpose (STYLE.md: the hot path): a lookup is 1-4 keyed hashes and
 * 1-4 probes into one flat array, no allocation, no locks, nothing but the slot and
 * record sections touched, so a 1M-name set costs dnsd ~11.5 MB resident. */
#include "domainset.h"
#include "errbuf.h"
#include "domainset_format.h"
#include "domainset_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


static const char *const cat_names[DSET_CAT_COUNT] = {
    [DSET_CAT_ADS] = "ads",           [DSET_CAT_TRACKING] = "tracking",
    [DSET_CAT_MALWARE] = "malware",   [DSET_CAT_PHISHING] = "phishing",
    [DSET_CAT_C2] = "c2",             [DSET_CAT_ADULT] = "adult",
    [DSET_CAT_GAMBLING] = "gambling", [DSET_CAT_SOCIAL] = "social",
    [DSET_CAT_DOH_BYPASS] = "doh-bypass", [DSET_CAT_CUSTOM] = "custom",
    [DSET_CAT_FAKE] = "fake",         [DSET_CAT_DYNDNS] = "dyndns",
};

const char *dset_category_name(int category)
{
    if (category < 0 || category >= DSET_CAT_COUNT)
        return NULL;
    return cat_names[category];
}

int dset_category_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < DSET_CAT_COUNT; i++)
        if (strcmp(name, cat_names[i]) == 0)
            return i;
    return -1;
}

/* CRC-32C of [from, len) read with pread, so those pages enter the page cache but never
 * this process's resident set. Returns 0, or -1 on a read error. */
static int crc_by_read(int fd, uint64_t from, uint64_t len, uint32_t *crc)
{
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);

    if (!buf)
        return -1;
    while (from < len) {
        size_t want = len - from < CHUNK ? (size_t)(len - from) : CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)from);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return -1;
        }
        *crc = dset_crc32c(*crc, buf, (size_t)n);
        from += (uint64_t)n;
    }
    free(buf);
    return 0;
}

/* Checks everything a lookup or iteration will rely on; fills set from base/len.
 * fd >= 0: the file behind the mapping; its cold sections are checksummed by reading
 * instead of through the mapping (keeps them out of dnsd's RSS, even at the peak). */
static int verify(struct dset *set, const char *what, int fd, char *err, size_t errlen)
{
    const struct dset_file_header *h = (const void *)set->base;
    static const uint64_t elem[DSET_SEC_COUNT] = { 8, sizeof(struct dset_file_record),
        sizeof(struct dset_file_list), 1, 4, 4, sizeof(struct dset_file_shared) };
    static const char *const secname[DSET_SEC_COUNT] = { "slots", "records", "lists",
        "names", "name index", "name records", "shared-hash" };
    uint64_t prev_end = sizeof *h;

    if (set->len < sizeof *h) {
        errbuf_set(err, errlen, "%s: %zu bytes, too short for a domain set header (truncated "
               "or not a set file; rebuild it with 'otasukectl set build')", what, set->len);
        return -1;
    }
    if (memcmp(h->magic, DSET_MAGIC, 8) != 0) {
        errbuf_set(err, errlen, "%s: not a domain set (bad magic; expected %s)", what, DSET_MAGIC);
        return -1;
    }
    if (h->version < 1 || h->version > DSET_VERSION) {
        errbuf_set(err, errlen, "%s: format version %u, this build reads versions 1 to %u "
               "(rebuild the set with this otasukectl)", what, h->version, DSET_VERSION);
        return -1;
    }
    if (h->header_size != sizeof *h) {
        errbuf_set(err, errlen, "%s: header size %u, expected %zu (damaged)", what,
               h->header_size, sizeof *h);
        return -1;
    }
    if (h->file_size != set->len) {
        errbuf_set(err, errlen, "%s: header says %llu bytes but there are %zu (%s; rebuild or "
               "copy it again)", what, (unsigned long long)h->file_size, set->len,
               h->file_size > set->len ? "truncated" : "trailing garbage");
        return -1;
    }
    if (h->lists > DSET_MAX_LISTS || h->records > DSET_MAX_RECORDS ||
        h->names > UINT32_MAX || h->slots > (UINT64_MAX >> 4) ||
        (h->names && h->slots < h->names) || (h->names && !h->records)) {
        errbuf_set(err, errlen, "%s: impossible counts in header (damaged)", what);
        return -1;
    }
    {
        const uint64_t count[DSET_SEC_COUNT] = { h->slots, h->records, h->lists, 0,
            h->slots, h->names, h->sec[DSET_SEC_SHARED].size / elem[DSET_SEC_SHARED] };
        for (int s = 0; s < DSET_SEC_COUNT; s++) {
            uint64_t off = h->sec[s].offset, size = h->sec[s].size;
            if (s == DSET_SEC_SHARED && h->version < 2)
                break;   /* version 1 had no such section (its bytes were reserved) */
            if (off % 8 || off < prev_end || off > set->len || size > set->len - off ||
                (s != DSET_SEC_NAMES && size != count[s] * elem[s]) ||
                (s == DSET_SEC_SHARED && count[s] > h->names)) {
                errbuf_set(err, errlen, "%s: %s section out of bounds or wrong size (damaged)",
                       what, secname[s]);
                return -1;
            }
            prev_end = off + size;
        }
    }
    {
        struct dset_file_header zeroed = *h;
        uint32_t crc;
        zeroed.checksum = 0;
        crc = dset_crc32c(0, &zeroed, sizeof zeroed);
        if (fd >= 0) {
            uint64_t cold = h->sec[DSET_SEC_NAMES].offset;
            crc = dset_crc32c(crc, set->base + sizeof *h, cold - sizeof *h);
            if (crc_by_read(fd, cold, set->len, &crc) < 0) {
                errbuf_set(err, errlen, "%s: read error while checking: %s", what, strerror(errno));
                return -1;
            }
        } else {
            crc = dset_crc32c(crc, set->base + sizeof *h, set->len - sizeof *h);
        }
        if (crc != h->checksum) {
            errbuf_set(err, errlen, "%s: checksum mismatch (file damaged?); keep the previous "
                   "set and rebuild this one", what);
            return -1;
        }
    }
    set->slots = (const void *)(set->base + h->sec[DSET_SEC_SLOTS].offset);
    set->nslots = h->slots;
    set->recs = (const void *)(set->base + h->sec[DSET_SEC_RECORDS].offset);
    set->nrec = h->records;
    set->lists = (const void *)(set->base + h->sec[DSET_SEC_LISTS].offset);
    set->nlists = h->lists;
    set->names = (const char *)set->base + h->sec[DSET_SEC_NAMES].offset;
    set->names_size = h->sec[DSET_SEC_NAMES].size;
    set->nnames = h->names;
    set->nameidx = (const void *)(set->base + h->sec[DSET_SEC_NAMEIDX].offset);
    set->namerec = (const void *)(set->base + h->sec[DSET_SEC_NAMEREC].offset);
    if (h->version >= 2) {
        set->shared = (const void *)(set->base + h->sec[DSET_SEC_SHARED].offset);
        set->nshared = h->sec[DSET_SEC_SHARED].size / sizeof(struct dset_file_shared);
    }
    set->build_time = h->build_time;
    if (h->min_labels > h->max_labels || h->max_labels > DSET_NAME_MAX / 2 + 1) {
        errbuf_set(err, errlen, "%s: impossible label counts in header (damaged)", what);
        return -1;
    }
    set->min_labels = h->min_labels ? h->min_labels : 1;
    set->max_labels = h->max_labels ? h->max_labels : DSET_NAME_MAX / 2 + 1;
    memcpy(set->key, h->key, 16);
    if (set->names_size && set->names[set->names_size - 1] != 0) {
        errbuf_set(err, errlen, "%s: names section not terminated (damaged)", what);
        return -1;
    }
    /* Lookups binary-search this section and trust its offsets and record indexes. */
    for (uint64_t i = 0; i < set->nshared; i++) {
        const struct dset_file_shared *e = &set->shared[i];
        if (!e->hash || e->hash >> 48 || e->name >= set->names_size || e->record >= set->nrec ||
            (i && (e->hash < e[-1].hash || (e->hash == e[-1].hash && e->name <= e[-1].name)))) {
            errbuf_set(err, errlen, "%s: shared-hash entry %llu is out of range or order "
                       "(damaged)", what, (unsigned long long)i);
            return -1;
        }
    }
    for (unsigned i = 0; i < set->nlists; i++) {
        const struct dset_file_list *l = &set->lists[i];
        if (!memchr(l->label, 0, sizeof l->label) || l->is_allow > 1 ||
            (!l->is_allow && !dset_category_name(l->category))) {
            errbuf_set(err, errlen, "%s: list %u has a bad label or category (damaged)", what, i);
            return -1;
        }
        if (l->is_allow)
            set->allow_lists |= 1ull << i;
        else
            set->cat_lists[l->category] |= 1ull << i;
    }
    return 0;
}

struct dset *dset_open_buffer(const void *buf, size_t len, const char *what,
                              char *err, size_t errlen)
{
    struct dset *set;

    if ((uintptr_t)buf % 8) {
        errbuf_set(err, errlen, "%s: buffer not 8-byte aligned", what);
        return NULL;
    }
    set = calloc(1, sizeof *set);
    if (!set) {
        errbuf_set(err, errlen, "%s: out of memory", what);
        return NULL;
    }
    set->base = buf;
    set->len = len;
    if (verify(set, what, -1, err, errlen) < 0) {
        free(set);
        return NULL;
    }
    return set;
}

/* Maps and verifies one file. Returns the set with *fd_out the open file (the caller
 * closes it), or NULL with err. */
static struct dset *open_file(const char *path, int *fd_out, char *err, size_t errlen)
{
    struct dset *set;
    struct stat st;
    void *map;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errbuf_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((size_t)st.st_size < sizeof(struct dset_file_header)) {
        errbuf_set(err, errlen, "%s: %lld bytes, too short for a domain set header (truncated "
               "or not a set file)", path, (long long)st.st_size);
        close(fd);
        return NULL;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        errbuf_set(err, errlen, "%s: mmap: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    set = calloc(1, sizeof *set);
    if (!set) {
        munmap(map, (size_t)st.st_size);
        close(fd);
        errbuf_set(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    set->base = map;
    set->len = (size_t)st.st_size;
    set->mapped = 1;
    if (verify(set, path, fd, err, errlen) < 0) {
        munmap(map, set->len);
        close(fd);
        free(set);
        return NULL;
    }
    *fd_out = fd;
    return set;
}

/* The overlay belongs to the base only if it was built with the base's hash key (a
 * random key per full build: a stale overlay of an older base has another) and its
 * list table is a prefix of the base's, so list ids and labels mean the same. */
static int overlay_fits(const struct dset *base, const struct dset *ov, const char *what,
                        char *err, size_t errlen, int *stale)
{
    *stale = memcmp(base->key, ov->key, 16) != 0;
    if (*stale)
        return 0;
    if (ov->nlists > base->nlists) {
        errbuf_set(err, errlen, "%s: %u lists, the base has %u (rebuild both)", what,
                   ov->nlists, base->nlists);
        return -1;
    }
    for (unsigned i = 0; i < ov->nlists; i++) {
        const struct dset_file_list *a = &base->lists[i], *b = &ov->lists[i];
        if (a->category != b->category || a->is_allow != b->is_allow ||
            strcmp(a->label, b->label) != 0) {
            errbuf_set(err, errlen, "%s: list %u is '%s', the base's is '%s' (rebuild both)",
                       what, i, b->label, a->label);
            return -1;
        }
    }
    return 0;
}

/* Attaches ov (closed on failure or when stale) to set. base_fd: the base's file for
 * reading its cold sections while counting, -1 for a set in memory. Returns 1
 * attached, 0 stale (another base's key: ignored), -1 with err. */
static int attach_overlay(struct dset *set, int base_fd, struct dset *ov, const char *what,
                          char *err, size_t errlen)
{
    int stale;

    if (overlay_fits(set, ov, what, err, errlen, &stale) < 0) {
        dset_close(ov);
        return -1;
    }
    if (stale) {
        dset_close(ov);   /* left over from an older base: everything is in the base */
        return 0;
    }
    ov->is_overlay = 1;
    if (dset_overlay_count(set, base_fd, ov, &set->ov_added, &set->ov_removed) < 0) {
        errbuf_set(err, errlen, "%s: read error while counting its names against the base: %s",
                   what, strerror(errno));
        dset_close(ov);
        return -1;
    }
    set->overlay = ov;
    if (ov->nnames) {
        if (ov->min_labels < set->min_labels || !set->nnames)
            set->min_labels = ov->min_labels;
        if (ov->max_labels > set->max_labels || !set->nnames)
            set->max_labels = ov->max_labels;
    }
    return 1;
}

struct dset *dset_open(const char *path, char *err, size_t errlen)
{
    char opath[4096];
    int fd = -1, ofd = -1;
    struct dset *set = open_file(path, &fd, err, errlen), *ov;

    if (!set)
        return NULL;
    if (snprintf(opath, sizeof opath, "%s.overlay", path) >= (int)sizeof opath ||
        access(opath, F_OK) != 0) {
        close(fd);
        return set;   /* no overlay: the usual case */
    }
    ov = open_file(opath, &ofd, err, errlen);
    if (!ov) {
        close(fd);
        /* A damaged overlay fails the whole open: serving the base alone would silently
         * drop the newest blocks. The caller keeps its previous set. */
        if (access(opath, F_OK) != 0)
            return set;   /* replaced or removed between the two calls: base alone */
        dset_close(set);
        return NULL;
    }
    close(ofd);
    if (attach_overlay(set, fd, ov, opath, err, errlen) < 0) {
        close(fd);
        dset_close(set);
        return NULL;
    }
    close(fd);
    return set;
}

int dset_attach_overlay_buffer(struct dset *set, const void *buf, size_t len, const char *what,
                               char *err, size_t errlen)
{
    struct dset *ov;

    if (set->overlay) {
        errbuf_set(err, errlen, "%s: the set has an overlay already", what);
        return -1;
    }
    ov = dset_open_buffer(buf, len, what, err, errlen);
    if (!ov)
        return -1;
    return attach_overlay(set, -1, ov, what, err, errlen);
}

uint64_t dset_overlay_names(const struct dset *set)
{
    return set->overlay ? set->overlay->nnames : 0;
}

void dset_overlay_counts(const struct dset *set, uint64_t *added, uint64_t *removed)
{
    *added = set->overlay ? set->ov_added : 0;
    *removed = set->overlay ? set->ov_removed : 0;
}

void dset_get_key(const struct dset *set, uint8_t key[16])
{
    memcpy(key, set->key, 16);
}

void dset_close(struct dset *set)
{
    if (!set)
        return;
    dset_close(set->overlay);
    if (set->mapped)
        munmap((void *)set->base, set->len);
    free(set);
}

const struct dset_file_record *dset_shared_find(const struct dset *set, int fd, uint64_t h,
                                                const char *name, size_t len, int *rd_err)
{
    uint64_t lo = 0, hi = set->nshared;

    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (set->shared[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < set->nshared && set->shared[lo].hash == h; lo++) {
        int eq = dset_name_at_is(set, fd, set->shared[lo].name, name, len);
        if (eq < 0 && rd_err)
            *rd_err = 1;
        if (eq > 0)
            return &set->recs[set->shared[lo].record];   /* index checked by verify */
    }
    return NULL;
}

uint32_t dset_lists_categories(const struct dset *set, uint64_t lists)
{
    uint32_t cats = 0;
    lists &= ~set->allow_lists;
    while (lists) {
        unsigned i = (unsigned)__builtin_ctzll(lists);
        lists &= lists - 1;
        if (i < set->nlists)
            cats |= 1u << set->lists[i].category;
    }
    return cats;
}

enum dset_verdict dset_lookup_masked(const struct dset *set, const char *name, size_t len,
                                     uint32_t enabled_mask, uint64_t lists_mask,
                                     struct dset_match *m)
{
    char low[DSET_NAME_MAX + 1];
    uint64_t eff = set->allow_lists, all = 0, block_all = 0;
    size_t allow_at = SIZE_MAX, block_at = SIZE_MAX;
    unsigned allow_flags = 0, block_flags = 0;

    memset(m, 0, sizeof *m);
    /* Tolerate "Example.COM." from careless callers: one pass over <= 254 bytes. */
    if (len && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DSET_NAME_MAX)
        return DSET_NONE;
    for (size_t i = 0; i < len; i++) {
        if (name[i] >= 'A' && name[i] <= 'Z') {
            for (size_t k = 0; k < len; k++)
                low[k] = (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] | 0x20) : name[k];
            name = low;
            break;
        }
    }
    for (int c = 0; c < DSET_CAT_COUNT; c++)
        if (enabled_mask & (1u << c))
            eff |= set->cat_lists[c];
    eff &= lists_mask;

    /* Suffix starts, most specific first; only those with an eligible label count are
     * hashed. All hashes are computed and their home slots prefetched before probing,
     * so the 2-4 cache misses of one lookup overlap instead of queueing. */
    {
        uint16_t start[DSET_NAME_MAX / 2 + 2];
        uint64_t hash[DSET_NAME_MAX / 2 + 2], home[DSET_NAME_MAX / 2 + 2];
        unsigned labels = 0, first, last, k;

        start[labels++] = 0;
        for (size_t i = 0; i + 1 < len; i++)
            if (name[i] == '.')
                start[labels++] = (uint16_t)(i + 1);
        /* suffix k has labels - k labels */
        first = labels > set->max_labels ? labels - set->max_labels : 0;
        if (labels < set->min_labels || (!set->nslots && !set->overlay))
            goto done;
        last = labels - set->min_labels;  /* inclusive */
        for (k = first; k <= last; k++) {
            hash[k] = dset_hash48(set->key, name + start[k], len - start[k]);
            home[k] = set->nslots ? dset_slot_of(hash[k], set->nslots) : 0;
            if (set->nslots)
                __builtin_prefetch(&set->slots[home[k]]);
        }
        for (k = first; k <= last; k++) {
            const struct dset_file_record *r = NULL;
            /* The overlay (same key, so the same hash) holds the current record of every
             * name changed since the base was built, an empty one for a removed name:
             * when it knows the name, the base's record is out of date. */
            const struct dset *ov = set->overlay;
            size_t p = start[k];
            int64_t j;
            if (ov && ov->nslots &&
                (j = dset_probe_slot(ov, hash[k], dset_slot_of(hash[k], ov->nslots))) >= 0)
                r = dset_slot_record(ov, (uint64_t)j, hash[k], name + p, len - p);
            if (!r && set->nslots && (j = dset_probe_slot(set, hash[k], home[k])) >= 0)
                r = dset_slot_record(set, (uint64_t)j, hash[k], name + p, len - p);
            uint64_t ex, sub, hit;
            if (!r)
                continue;
            ex = p == 0 ? r->lists_exact & eff : 0;
            sub = r->lists_subtree & eff;
            hit = ex | sub;
            if (!hit)
                continue;
            all |= hit;
            if ((hit & set->allow_lists) && allow_at == SIZE_MAX) {
                uint64_t a = hit & set->allow_lists;
                allow_at = p;
                allow_flags = DSET_ALLOW | ((ex & a) ? DSET_EXACT : 0) | ((sub & a) ? DSET_SUBTREE : 0);
            }
            if (hit & ~set->allow_lists) {
                uint64_t bl = hit & ~set->allow_lists;
                block_all |= bl;
                if (block_at == SIZE_MAX) {
                    block_at = p;
                    block_flags = ((ex & bl) ? DSET_EXACT : 0) | ((sub & bl) ? DSET_SUBTREE : 0);
                }
            }
        }
    }
done:
    m->lists = all;
    m->categories = dset_lists_categories(set, block_all);
    if (allow_at != SIZE_MAX) {
        m->verdict = DSET_ALLOW_VERDICT;
        m->matched_offset = allow_at;
        m->matched_flags = allow_flags;
    } else if (block_at != SIZE_MAX) {
        m->verdict = DSET_BLOCK;
        m->matched_offset = block_at;
        m->matched_flags = block_flags;
    }
    return m->verdict;
}

enum dset_verdict dset_lookup(const struct dset *set, const char *name, size_t len,
                              struct dset_match *m)
{
    return dset_lookup_masked(set, name, len, UINT32_MAX, UINT64_MAX, m);
}

unsigned dset_list_count(const struct dset *set) { return set->nlists; }

const char *dset_list_label(const struct dset *set, unsigned list_id)
{
    return list_id < set->nlists ? set->lists[list_id].label : NULL;
}

int dset_list_category(const struct dset *set, unsigned list_id)
{
    if (list_id >= set->nlists || set->lists[list_id].is_allow)
        return -1;
    return set->lists[list_id].category;
}

int dset_list_is_allow(const struct dset *set, unsigned list_id)
{
    return list_id < set->nlists && set->lists[list_id].is_allow;
}

uint64_t dset_name_count(const struct dset *set)
{
    if (!set->overlay)
        return set->nnames;
    return set->nnames + set->ov_added - set->ov_removed;
}

uint64_t dset_base_name_count(const struct dset *set) { return set->nnames; }
uint64_t dset_build_time(const struct dset *set) { return set->build_time; }
uint64_t dset_allow_lists(const struct dset *set) { return set->allow_lists; }
uint64_t dset_slot_count(const struct dset *set) { return set->nslots; }

size_t dset_lookup_bytes(const struct dset *set)
{
    return set->nslots * 8 + (size_t)set->nrec * sizeof(struct dset_file_record);
}
