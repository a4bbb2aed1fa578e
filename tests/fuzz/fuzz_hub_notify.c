/* Fuzzes what a box reads from the broker: the notification splitter
 * (hubclient_notify_parse) and, for inline deltas, feed verification of the carried
 * document against a fixed key (it must refuse, never crash). */
#include "hubclient.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t pk[FEED_PUBKEY_BYTES] = { 1, 2, 3 };
    unsigned long long seq;
    const char *sig, *doc;
    size_t siglen, doclen;
    if (hubclient_notify_parse((const char *)data, size, &seq, &sig, &siglen, &doc,
                               &doclen) < 0)
        return 0;
    if (seq == 0)
        __builtin_trap();
    if (doc) {
        if (doc < (const char *)data || doc + doclen > (const char *)data + size ||
            sig + siglen != doc)
            __builtin_trap();
        struct feed_expect x = { "community", pk, 0, (int64_t)time(NULL), 0 };
        struct feed_manifest m;
        char err[200];
        if (feed_verify(doc, doclen, sig, siglen, &x, &m, err, sizeof err) == FEED_OK)
            __builtin_trap();   /* nobody holds the secret key of pk */
    }
    return 0;
}
