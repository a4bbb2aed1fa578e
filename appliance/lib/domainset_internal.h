/* Private to domainset*.c: the opened set, and the probe helpers shared by the lookup
 * (domainset.c) and the cold paths (domainset_iter.c: exact names, iteration, overlay
 * counts). The public contract is domainset.h. */
#ifndef OTASUKE_DOMAINSET_INTERNAL_H
#define OTASUKE_DOMAINSET_INTERNAL_H

#include "domainset.h"
#include "domainset_format.h"

#include <stddef.h>
#include <stdint.h>

struct dset {
    const uint8_t *base;
    size_t len;
    int mapped;                       /* munmap on close */
    uint8_t key[16];
    const uint64_t *slots;
    uint64_t nslots;
    const struct dset_file_record *recs;
    uint32_t nrec;
    const struct dset_file_list *lists;
    unsigned nlists;
    const char *names;
    uint64_t names_size;
    uint64_t nnames;
    const uint32_t *nameidx;
    const uint32_t *namerec;
    const struct dset_file_shared *shared;   /* names of DSET_SLOT_SHARED slots */
    uint64_t nshared;
    uint64_t build_time;
    unsigned min_labels, max_labels;  /* suffixes outside this range cannot match */
    uint64_t allow_lists;
    uint64_t cat_lists[DSET_CAT_COUNT];  /* block lists of each category */
    struct dset *overlay;             /* PATH.overlay, same key and lists; NULL = none */
    int is_overlay;                   /* hash hits are confirmed against the name */
    uint64_t ov_added, ov_removed;    /* what the overlay does to the name count */
};

/* Returns the slot holding hash h, probing from slot j, or -1. Bounded: a
 * damaged-but-checksummed table without empty slots cannot loop forever. */
static inline int64_t dset_probe_slot(const struct dset *set, uint64_t h, uint64_t j)
{
    for (uint64_t n = 0; n < set->nslots; n++) {
        uint64_t s = set->slots[j];
        if (!s)
            return -1;
        if (s >> 16 == h)
            return (int64_t)j;
        if (++j == set->nslots)
            j = 0;
    }
    return -1;
}

/* Returns 1 if the NUL-terminated name at offset off of the names section is
 * name[0..len), 0 if not, -1 on a read error. fd >= 0: read with pread, so the cold
 * names stay out of the process's resident set; fd < 0: read through the mapping. */
int dset_name_at_is(const struct dset *set, int fd, uint64_t off, const char *name, size_t len);

/* Returns the own record of name among the names that share hash h (SHARED section),
 * or NULL when name is none of them. fd as for dset_name_at_is; a read error sets
 * *rd_err (may be NULL). */
const struct dset_file_record *dset_shared_find(const struct dset *set, int fd, uint64_t h,
                                                const char *name, size_t len, int *rd_err);

/* Returns the record slot j (holding hash h) gives name, or NULL when the slot is
 * another name's. In a base that is the slot's record, no questions asked: a name
 * outside the set matching a 48-bit hash is the accepted one-in-2^48/N false match, and
 * checking would touch the cold names on every hit. A shared slot is settled by name.
 * In an overlay every hit is confirmed by name (its names are few and small): otherwise
 * an overlay name sharing a hash with a base name would answer for it. */
static inline const struct dset_file_record *dset_slot_record(const struct dset *set,
                                                              uint64_t j, uint64_t h,
                                                              const char *name, size_t len)
{
    uint32_t r = (uint32_t)(set->slots[j] & 0xffff);

    if (r < set->nrec) {
        /* a version-1 slot merged from two names has no single name: take it */
        if (set->is_overlay && set->nameidx[j] < set->names_size &&
            dset_name_at_is(set, -1, set->nameidx[j], name, len) != 1)
            return NULL;
        return &set->recs[r];
    }
    return r == DSET_SLOT_SHARED ? dset_shared_find(set, -1, h, name, len, NULL) : NULL;
}

/* Counts the names ov lists that base lacks (added) and the base names ov removes
 * (removed). base_fd as for dset_name_at_is. Returns 0, or -1 on a read error. */
int dset_overlay_count(const struct dset *base, int base_fd, const struct dset *ov,
                       uint64_t *added, uint64_t *removed);

#endif
