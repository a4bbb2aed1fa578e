/* Fuzzes dset_open_buffer on arbitrary bytes, twice: as they are (the checksum must
 * stop them) and with the checksum patched to match, so the structural checks behind it
 * (counts, section bounds, labels, names) and the lookup/iteration code that trusts
 * them get exercised. A set that opens must survive lookups and a full iteration. */
#include "domainset.h"
#include "domainset_format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void exercise(const struct dset *set)
{
    static const char *const names[] = { "example.com", "a.b.c.d.test", "com", "x",
        "0.beer", "www.0.beer" };
    struct dset_iter it = { 0 };
    struct dset_match m;
    const char *name;
    unsigned flags, n = 0;
    uint64_t lists;

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        dset_lookup(set, names[i], strlen(names[i]), &m);
        if (m.matched_offset > strlen(names[i]))
            abort();
        dset_lookup_masked(set, names[i], strlen(names[i]), 5, 3, &m);
    }
    while (dset_iter_next(set, &it, &name, &flags, &lists) && n++ < 64) {
        dset_find_name(set, name, strlen(name), &flags, &lists);
        dset_lookup(set, name, strlen(name), &m);
    }
    for (unsigned i = 0; i < dset_list_count(set); i++)
        if (!dset_list_label(set, i))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t *buf = malloc(size + 8);
    struct dset *set;
    char err[256];

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    set = dset_open_buffer(buf, size, "fuzz", err, sizeof err);
    if (set) {
        exercise(set);
        dset_close(set);
    }
    if (size >= sizeof(struct dset_file_header)) {
        struct dset_file_header *h = (struct dset_file_header *)buf;
        uint32_t crc;
        h->checksum = 0;
        crc = dset_crc32c(0, h, sizeof *h);
        crc = dset_crc32c(crc, (uint8_t *)buf + sizeof *h, size - sizeof *h);
        h->checksum = crc;
        set = dset_open_buffer(buf, size, "fuzz", err, sizeof err);
        if (set) {
            exercise(set);
            dset_close(set);
        }
    }
    free(buf);
    return 0;
}
