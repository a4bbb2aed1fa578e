/* Domain set, cold paths: exact name checks (explain), iteration (dump) and the name
 * count of base + overlay. Never on the lookup path; the hot code is domainset.c. */
#include "domainset.h"
#include "domainset_format.h"
#include "domainset_internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Copies n bytes at p (inside the set's file) through the mapping (fd < 0) or with
 * pread. Returns 0 or -1. */
static int cold_read(const struct dset *set, int fd, const void *p, void *out, size_t n)
{
    off_t at = (off_t)((const uint8_t *)p - set->base);
    ssize_t got;

    if (fd < 0) {
        memcpy(out, p, n);
        return 0;
    }
    do
        got = pread(fd, out, n, at);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)n) {
        if (got >= 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

int dset_name_at_is(const struct dset *set, int fd, uint64_t off, const char *name, size_t len)
{
    char buf[DSET_NAME_MAX + 2];

    /* off + len < names_size: the NUL after the name is inside the section */
    if (off >= set->names_size || len >= set->names_size - off || len > DSET_NAME_MAX)
        return 0;
    if (fd < 0)
        return memcmp(set->names + off, name, len) == 0 && set->names[off + len] == 0;
    if (cold_read(set, fd, set->names + off, buf, len + 1) < 0)
        return -1;
    return memcmp(buf, name, len) == 0 && buf[len] == 0;
}

static unsigned rec_flags(const struct dset *set, const struct dset_file_record *r)
{
    unsigned f = 0;
    if (r->lists_exact)
        f |= DSET_EXACT;
    if (r->lists_subtree)
        f |= DSET_SUBTREE;
    if ((r->lists_exact | r->lists_subtree) & set->allow_lists)
        f |= DSET_ALLOW;
    return f;
}

/* The names of one file in insertion order, each with its own record (no overlay). */
static int iter_raw(const struct dset *set, struct dset_iter *it, const char **name,
                    unsigned *flags, uint64_t *lists)
{
    const char *s;
    size_t n;
    uint32_t r;

    if (it->idx >= set->nnames || it->pos >= set->names_size)
        return 0;
    s = set->names + it->pos;
    n = strlen(s);  /* the section ends with a NUL (verified) */
    r = set->namerec[it->idx];
    *name = s;
    if (r < set->nrec) {
        *flags = rec_flags(set, &set->recs[r]);
        *lists = set->recs[r].lists_exact | set->recs[r].lists_subtree;
    } else {
        *flags = 0;
        *lists = 0;
    }
    it->pos += n + 1;
    it->idx++;
    return 1;
}

static void put(const struct dset *set, const struct dset_file_record *r, unsigned *flags,
                uint64_t *lists)
{
    if (flags)
        *flags = rec_flags(set, r);
    if (lists)
        *lists = r->lists_exact | r->lists_subtree;
}

/* Is name itself an entry of this one file (no overlay)? Returns 1 and fills flags and
 * lists (either may be NULL), 0 if not, -1 on a read error. fd as for dset_name_at_is:
 * only the slot table is read through the mapping. */
static int name_in_file(const struct dset *set, int fd, const char *name, size_t len,
                        unsigned *flags, uint64_t *lists)
{
    const struct dset_file_record *r;
    uint64_t h;
    uint32_t rec, off;
    int64_t j;
    int eq, rd_err = 0;

    if (!set->nslots || len == 0 || len > DSET_NAME_MAX)
        return 0;
    h = dset_hash48(set->key, name, len);
    j = dset_probe_slot(set, h, dset_slot_of(h, set->nslots));
    if (j < 0)
        return 0;
    rec = (uint32_t)(set->slots[j] & 0xffff);
    if (rec == DSET_SLOT_SHARED) {
        r = dset_shared_find(set, fd, h, name, len, &rd_err);
        if (rd_err)
            return -1;
        if (!r)
            return 0;
        put(set, r, flags, lists);
        return 1;
    }
    if (rec >= set->nrec)
        return 0;
    if (cold_read(set, fd, &set->nameidx[j], &off, sizeof off) < 0)
        return -1;
    if (off < set->names_size) {
        eq = dset_name_at_is(set, fd, off, name, len);
        if (eq == 1)
            put(set, &set->recs[rec], flags, lists);
        return eq;
    }
    /* A version-1 file merged names sharing a hash into one slot: settle it by scanning
     * the names (such files predate the shared section; rare and cold). */
    {
        struct dset_iter it = { 0, 0, 0 };
        const char *n;
        unsigned f;
        uint64_t l;
        while (iter_raw(set, &it, &n, &f, &l)) {
            if (strlen(n) == len && memcmp(n, name, len) == 0) {
                if (flags)
                    *flags = f;
                if (lists)
                    *lists = l;
                return 1;
            }
        }
    }
    return 0;
}

int dset_find_name(const struct dset *set, const char *name, size_t len,
                   unsigned *flags, uint64_t *lists)
{
    unsigned f = 0;
    uint64_t l = 0;
    if (set->overlay && name_in_file(set->overlay, -1, name, len, &f, &l) == 1) {
        if (!l)
            return 0;   /* removed since the base was built */
        if (flags)
            *flags = f;
        if (lists)
            *lists = l;
        return 1;
    }
    return name_in_file(set, -1, name, len, flags, lists) == 1;
}

int dset_iter_next(const struct dset *set, struct dset_iter *it, const char **name,
                   unsigned *flags, uint64_t *lists)
{
    const struct dset *ov = set->overlay;

    if (!it->in_overlay) {
        while (iter_raw(set, it, name, flags, lists)) {
            unsigned f;
            uint64_t l;
            if (ov && name_in_file(ov, -1, *name, strlen(*name), &f, &l) == 1) {
                if (!l)
                    continue;   /* removed by the overlay */
                *flags = f;     /* changed by the overlay */
                *lists = l;
            }
            return 1;
        }
        if (!ov)
            return 0;
        it->in_overlay = 1;
        it->pos = 0;
        it->idx = 0;
    }
    if (!ov)
        return 0;
    /* Then what only the overlay has: its listed names the base lacks (a base name it
     * changed was given above, in the base's order). */
    while (iter_raw(ov, it, name, flags, lists)) {
        if (*lists && name_in_file(set, -1, *name, strlen(*name), NULL, NULL) != 1)
            return 1;
    }
    return 0;
}

int dset_overlay_count(const struct dset *base, int base_fd, const struct dset *ov,
                       uint64_t *added, uint64_t *removed)
{
    /* Cost: one hash and probe of the base per overlay name, plus two small preads of the
     * base's cold sections for each name the base has (10k changed names: ~10 ms).
     * Reading instead of touching the mapping keeps dnsd's resident set as it was. */
    struct dset_iter it = { 0, 0, 0 };
    const char *name;
    unsigned flags;
    uint64_t lists;

    *added = *removed = 0;
    while (iter_raw(ov, &it, &name, &flags, &lists)) {
        int in_base = name_in_file(base, base_fd, name, strlen(name), NULL, NULL);
        if (in_base < 0)
            return -1;
        if (lists && !in_base)
            (*added)++;
        else if (!lists && in_base)
            (*removed)++;
    }
    return 0;
}
