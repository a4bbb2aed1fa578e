/* libFuzzer harness for the IP list parser and range merger: any bytes must parse
 * without crashing, and after normalize the ranges must be sorted, disjoint and not
 * touching, and a fw.set built from them must validate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwset.h"
#include "iplist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct iplist l;
    char err[256];
    iplist_init(&l);
    if (iplist_parse(&l, (const char *)data, size, err, sizeof err) < 0)
        abort();
    if (l.bad > l.lines || l.entries > l.lines || l.n4 + l.n6 != l.entries)
        abort();
    iplist_normalize(&l);
    for (size_t i = 0; i < l.n4; i++) {
        if (l.v4[i].lo > l.v4[i].hi)
            abort();
        if (i && (uint64_t)l.v4[i].lo <= (uint64_t)l.v4[i - 1].hi + 1)
            abort();
    }
    for (size_t i = 0; i < l.n6; i++)
        if (ipl_u128_cmp(l.v6[i].lo, l.v6[i].hi) > 0)
            abort();
    struct fwset s;
    fwset_init(&s);
    if (fwset_add_iplist(&s, "fz", FWSET_KIND_BLOCK, &l, 0, err, sizeof err) < 0 ||
        fwset_validate(&s, err, sizeof err) < 0)
        abort();
    fwset_free(&s);
    iplist_free(&l);
    return 0;
}
