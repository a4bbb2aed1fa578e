/* Fuzzes a domain set with an overlay attached (dset_attach_overlay_buffer, the same
 * checks and counting dset_open does for PATH.overlay), and the shared-hash section of
 * both files: lookups confirm overlay hits by name and settle shared slots by name,
 * iteration merges the two files, the name count reads the base for every overlay name.
 *
 * Input: bytes 0-3 = length of the base (little-endian, clamped), byte 4 = flags
 * (bit 0: copy the base's key into the overlay, so it is attached and not ignored as
 * stale; bit 1: leave the checksums as they are), bytes 5-7 unused, then the base, then
 * the overlay. The checksums are patched to match by default so the structural checks
 * behind them and the code that trusts them get exercised (fuzz_dset_open covers the
 * checksum itself). Seeds (tests/fuzz/corpus/fuzz_domainset_overlay/): small bases and
 * overlays built with the colliding name pairs of tests/unit/test_domainset_shared.c. */
#include "domainset.h"
#include "domainset_format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fix_checksum(uint8_t *buf, size_t len)
{
    struct dset_file_header *h = (struct dset_file_header *)buf;
    uint32_t crc;
    if (len < sizeof *h)
        return;
    h->checksum = 0;
    crc = dset_crc32c(0, h, sizeof *h);
    h->checksum = dset_crc32c(crc, buf + sizeof *h, len - sizeof *h);
}

static void exercise(const struct dset *set)
{
    static const char *const names[] = { "example.com", "a.b.c.d.test", "com", "x",
        "c105ca0d70be.test", "www.0d7164b28c41.test", "1b7ee134fcfe.example",
        "new.test", "x.gone.test" };
    struct dset_iter it = { 0 };
    struct dset_match m;
    const char *name;
    unsigned flags, n = 0;
    uint64_t lists, added, removed;

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        dset_lookup(set, names[i], strlen(names[i]), &m);
        if (m.matched_offset > strlen(names[i]))
            abort();
        dset_lookup_masked(set, names[i], strlen(names[i]), 5, 3, &m);
        dset_find_name(set, names[i], strlen(names[i]), &flags, &lists);
    }
    /* both phases of the iteration (base, then the overlay's own names) */
    while (dset_iter_next(set, &it, &name, &flags, &lists) && n++ < 256) {
        size_t len = strlen(name);
        dset_find_name(set, name, len, &flags, &lists);
        dset_lookup(set, name, len, &m);
        if (m.matched_offset > len)
            abort();
    }
    dset_overlay_counts(set, &added, &removed);
    (void)dset_name_count(set);
    (void)dset_overlay_names(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t *base, *ov;
    size_t blen, olen;
    struct dset *set;
    char err[256];
    uint32_t want;

    if (size < 8)
        return 0;
    memcpy(&want, data, 4);
    blen = want < size - 8 ? want : size - 8;
    olen = size - 8 - blen;
    base = malloc(blen + 8);
    ov = malloc(olen + 8);
    if (!base || !ov)
        goto out;
    memcpy(base, data + 8, blen);
    memcpy(ov, data + 8 + blen, olen);
    if ((data[4] & 1) && blen >= sizeof(struct dset_file_header) &&
        olen >= sizeof(struct dset_file_header))
        memcpy(((struct dset_file_header *)ov)->key, ((struct dset_file_header *)base)->key, 16);
    if (!(data[4] & 2)) {
        fix_checksum((uint8_t *)base, blen);
        fix_checksum((uint8_t *)ov, olen);
    }
    set = dset_open_buffer(base, blen, "base", err, sizeof err);
    if (!set)
        goto out;
    int rc = dset_attach_overlay_buffer(set, ov, olen, "overlay", err, sizeof err);
    /* attached, ignored as another base's, or refused: the set answers either way */
    exercise(set);
    /* a second overlay is refused while one is attached */
    if (rc == 1 && dset_attach_overlay_buffer(set, ov, olen, "overlay", err, sizeof err) != -1)
        abort();
    dset_close(set);
out:
    free(base);
    free(ov);
    return 0;
}
