/* Shared body of the fuzz_list_<format> harnesses: parse the input as one buffer and
 * again in chunks whose sizes come from the input, and check what comes out:
 * every name normalised and valid, the same results whatever the chunking, counts
 * consistent. Any violation aborts, which libFuzzer reports as a crash. */
#include "domainset.h"
#include "lists.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_LIST_FORMAT
#error "define FUZZ_LIST_FORMAT before including fuzz_list_common.h"
#endif

struct fuzz_sum {
    uint64_t n, hash;
};

static int fuzz_entry(void *ctx, const char *name, size_t len, unsigned flags)
{
    struct fuzz_sum *s = ctx;
    char again[DSET_NAME_MAX + 2];

    if (len == 0 || len > DSET_NAME_MAX || strlen(name) != len || name[len - 1] == '.')
        abort();
    if (!(flags & (DSET_EXACT | DSET_SUBTREE)) || (flags & ~7u))
        abort();
    /* normalising a normalised name is the identity */
    if (dset_normalize(name, len, again, sizeof again, NULL, 0) != (int)len ||
        memcmp(again, name, len) != 0)
        abort();
    s->n++;
    for (size_t i = 0; i < len; i++)
        s->hash = (s->hash ^ (uint8_t)name[i]) * 0x100000001b3ull;
    s->hash ^= flags;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct list_stats st1, st2;
    struct list_opts o = { FUZZ_LIST_FORMAT, 0 };
    struct fuzz_sum a = { 0, 0 }, b = { 0, 0 };
    struct list_parser *p;
    char err[256];
    int rc1, rc2 = 0;
    size_t chunk = size ? (size_t)data[0] % 17 + 1 : 1;

    o.subtree = size > 1 && (data[1] & 1);
    rc1 = list_parse_buffer(data, size, &o, fuzz_entry, &a, &st1, err, sizeof err);
    if (st1.entries != a.n || st1.nerrors > LIST_MAX_ERRORS ||
        st1.nerrors > st1.rejected + st1.unsupported)
        abort();
    for (size_t i = 0; i < st1.nerrors; i++)
        if (st1.errors[i].line == 0 || st1.errors[i].line > st1.lines ||
            !memchr(st1.errors[i].reason, 0, sizeof st1.errors[i].reason))
            abort();

    p = list_parser_new(&o, fuzz_entry, &b);
    if (!p)
        return 0;
    for (size_t i = 0; i < size && rc2 == 0; i += chunk)
        rc2 = list_parser_feed(p, data + i, size - i < chunk ? size - i : chunk, err, sizeof err);
    if (list_parser_finish(p, &st2, err, sizeof err) < 0)
        rc2 = -1;
    list_parser_free(p);
    if (rc1 != rc2 || a.n != b.n || a.hash != b.hash || st1.rejected != st2.rejected ||
        st1.unsupported != st2.unsupported || st1.format != st2.format)
        abort();
    return 0;
}
