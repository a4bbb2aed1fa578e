/* Fuzzes the streaming feed path (feed_stream.c): the input goes into a memory file,
 * is signed with a fixed key (so the manifest, line counting and chunked entry parsing
 * behind the signature are reached) and must get the same verdict, entry count and
 * error as the in-memory path. A disagreement aborts: the two paths are one contract. */
#include "feed.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
static int ready, fd = -1;

static int cb(const struct feed_entry *e, void *ctx)
{
    (*(size_t *)ctx) += strlen(e->indicator) + 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        uint8_t seed[crypto_sign_SEEDBYTES] = { 7 };   /* the key of fuzz_feed's corpus */
        if (sodium_init() < 0)
            return 0;
        crypto_sign_seed_keypair(pk, sk, seed);
        fd = memfd_create("fuzz_feed_stream", 0);
        ready = 1;
    }
    if (fd < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
    char sig[256], err[256], err2[256];
    struct feed_manifest m, m2;
    struct feed_expect x = { .feed_id = "community", .pubkey = pk, .last_seq = 1,
                             .now = 1800000000, .max_bytes = 1 << 20 };
    if (feed_sign((const char *)data, size, sk, sig, sizeof sig) < 0)
        return 0;
    enum feed_reason a = feed_verify((const char *)data, size, sig, strlen(sig), &x, &m2,
                                     err2, sizeof err2);
    enum feed_reason b = feed_verify_fd(fd, sig, strlen(sig), &x, &m, err, sizeof err);
    /* The file path also refuses manifests over 4 KiB and entry lines over 16 KiB,
     * which the memory path leaves to the parser: only those may differ. */
    if (a != b && !(b == FEED_BAD_MANIFEST && strstr(err, "longer than")) &&
        !(b == FEED_BAD_ENTRY && a == FEED_OK))
        abort();
    if (a == FEED_OK && b == FEED_OK) {
        size_t t1 = 0, t2 = 0;
        int r1 = feed_foreach_entry((const char *)data, size, &m2, cb, &t1, err2, sizeof err2);
        int r2 = feed_foreach_entry_fd(fd, &m, cb, &t2, err, sizeof err);
        if (r1 != r2 || t1 != t2 || (r1 && strcmp(err, err2)))
            abort();
    }
    /* an unsigned / garbage signature must never pass */
    size_t sl = size < 120 ? size : 120;
    if (feed_verify_fd(fd, (const char *)data, sl, &x, &m, err, sizeof err) == FEED_OK)
        abort();
    return 0;
}
