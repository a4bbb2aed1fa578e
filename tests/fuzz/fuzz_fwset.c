/* libFuzzer harness for the fw.set reader. A random file never gets past the checksum,
 * so the harness wraps the input as the body of a correctly checksummed artifact: the
 * descriptor, offset, count and element checks behind the checksum get fuzzed. Every
 * element of an accepted artifact is read, so ASan sees any out-of-bounds pointer. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > (1 << 20))
        return 0;
    /* first 4 bytes: the set count claimed by the header; the rest is the body */
    uint32_t n_sets;
    memcpy(&n_sets, data, 4);
    n_sets %= 300;
    size_t body_len = size - 4;
    uint8_t *file = calloc(1, 96 + body_len);
    if (!file)
        return 0;
    memcpy(file, "OTAFWSET", 8);
    uint32_t v = FWSET_VERSION, bom = 0x01020304u, hdr = 96;
    uint64_t bl = body_len;
    memcpy(file + 8, &v, 4);
    memcpy(file + 12, &bom, 4);
    memcpy(file + 16, &bl, 8);
    memcpy(file + 24, &n_sets, 4);
    memcpy(file + 28, &hdr, 4);
    memcpy(file + 96, data + 4, body_len);
    if (sodium_init() < 0)
        abort();
    crypto_generichash(file + 64, 32, file + 96, body_len, NULL, 0);
    struct fwset s;
    char err[256];
    if (fwset_parse(&s, file, 96 + body_len, "fuzz", err, sizeof err) == 0) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < s.n_sets; i++) {
            const uint8_t *p = s.sets[i].elems;
            size_t n = s.sets[i].count * fwset_elem_size(s.sets[i].etype);
            for (size_t k = 0; k < n; k++)
                sink ^= p[k];
            if (strlen(s.sets[i].name) >= FWSET_NAME_MAX)
                abort();
        }
        (void)sink;
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(file);
    return 0;
}
