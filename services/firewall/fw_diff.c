/* Element diffs: a linear merge walk over two sorted arrays in fw.set layout.
 * O(n + m), no allocation; the caller provides index arrays. */
#include "fw.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    return x < y ? -1 : x > y;
}

static int cmp_v4r(const void *a, const void *b)
{
    struct ipl_v4 x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x.lo != y.lo)
        return x.lo < y.lo ? -1 : 1;
    return x.hi < y.hi ? -1 : x.hi > y.hi;
}

static int cmp_16(const void *a, const void *b) { return memcmp(a, b, 16); }
static int cmp_32(const void *a, const void *b) { return memcmp(a, b, 32); }
static int cmp_8(const void *a, const void *b) { return memcmp(a, b, 8); }

static int (*cmp_for(int etype))(const void *, const void *)
{
    switch (etype) {
    case FWSET_E_V4: return cmp_u32;
    case FWSET_E_V4R: return cmp_v4r;
    case FWSET_E_V6: return cmp_16;
    case FWSET_E_V6R: return cmp_32;
    default: return cmp_8;
    }
}

void fw_sort_elems(int etype, void *elems, size_t n)
{
    if (n > 1)
        qsort(elems, n, fwset_elem_size(etype), cmp_for(etype));
}

void fw_diff_elems(int etype, const void *have, size_t nhave, const void *want, size_t nwant,
                   uint32_t *add, size_t *nadd, uint32_t *del, size_t *ndel)
{
    size_t es = fwset_elem_size(etype), i = 0, j = 0, a = 0, d = 0;
    const uint8_t *h = have, *w = want;
    int (*cmp)(const void *, const void *) = cmp_for(etype);
    while (i < nhave && j < nwant) {
        int c = cmp(h + i * es, w + j * es);
        if (c == 0) {
            i++, j++;
        } else if (c < 0) {
            del[d++] = (uint32_t)i++;
        } else {
            add[a++] = (uint32_t)j++;
        }
    }
    while (i < nhave)
        del[d++] = (uint32_t)i++;
    while (j < nwant)
        add[a++] = (uint32_t)j++;
    *nadd = a;
    *ndel = d;
}

size_t fw_elem_key(int etype, const void *elems, size_t i, int end, uint8_t key[16],
                   int *has_end)
{
    const uint8_t *p = elems;
    *has_end = 0;
    switch (etype) {
    case FWSET_E_V4: {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4);
        v = htonl(v);
        memcpy(key, &v, 4);
        return 4;
    }
    case FWSET_E_V4R: {
        struct ipl_v4 r;
        memcpy(&r, p + 8 * i, 8);
        *has_end = r.hi != 0xffffffffu;
        uint32_t v = htonl(end ? r.hi + 1 : r.lo);
        memcpy(key, &v, 4);
        return 4;
    }
    case FWSET_E_V6:
        memcpy(key, p + 16 * i, 16);
        return 16;
    case FWSET_E_V6R: {
        struct ipl_u128 hi = ipl_u128_from_bytes(p + 32 * i + 16);
        *has_end = !(hi.hi == ~0ull && hi.lo == ~0ull);
        if (end)
            ipl_u128_to_bytes(ipl_u128_inc(hi), key);
        else
            memcpy(key, p + 32 * i, 16);
        return 16;
    }
    default:
        memcpy(key, p + 8 * i, 6);
        return 6;
    }
}
