/* libFuzzer harness for dnsd's query-events file (services/dnsfilter/query_tuning.c): any
 * bytes are refused with a message or give thresholds inside the documented bounds. */
#include "../../services/dnsfilter/dnsd.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct qtune t;
    if (qtune_parse((const char *)data, size, "fuzz", &t, err, sizeof err) < 0) {
        if (!err[0])
            abort();   /* a refusal always says why */
        return 0;
    }
    if (t.label_len < 1 || t.label_len > 63 || !(t.entropy >= 0 && t.entropy <= 8) ||
        t.rate < 1 || t.rate > QTUNE_MAX_RATE || t.burst < 1 || t.burst > QTUNE_MAX_BURST)
        abort();
    return 0;
}
