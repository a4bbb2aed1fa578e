/* Fuzzes what the agent shares with its hub (services/agent/hubshare.c): the event filter
 * on whatever arrives on the events socket, and the aggregation table fed with arbitrary
 * indicators through notes, batches, acks and clears. Checks that nothing but a valid,
 * normalised indicator of a threat category comes out, and that the table never holds
 * more than its cap. */
#include "../../services/agent/hubshare.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int threat(const char *c)
{
    return !strcmp(c, "malware") || !strcmp(c, "phishing") || !strcmp(c, "c2");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hubshare_entry e;
    if (hubshare_event_indicator((const char *)data, size, &e) == 1) {
        size_t n = strnlen(e.indicator, sizeof e.indicator);
        if (n == 0 || n == sizeof e.indicator || !threat(e.category) ||
            (strcmp(e.kind, "domain") && strcmp(e.kind, "ipv4") && strcmp(e.kind, "ipv6")))
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (e.indicator[i] >= 'A' && e.indicator[i] <= 'Z')
                __builtin_trap();
    }
    /* The same bytes as lines "K INDICATOR" into a tiny table: K picks kind and action. */
    static struct hubshare_table *t;
    static struct hubshare_entry b[4];
    if (!t)
        t = hubshare_table_new(4);
    char line[300];
    size_t pos = 0;
    int64_t now = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t len = (nl ? (size_t)(nl - data) : size) - pos;
        if (len > 1 && len < sizeof line) {
            memcpy(line, data + pos + 1, len - 1);
            line[len - 1] = '\0';
            static const char *const kinds[] = { "domain", "ipv4", "ipv6", "cidr" };
            switch (data[pos] % 8) {
            case 5: {
                int m = hubshare_table_batch(t, b, 4);
                hubshare_table_ack(t, b, m);
                break;
            }
            case 6:
                hubshare_table_batch(t, b, 4);
                break;
            case 7:
                hubshare_table_clear(t);
                break;
            default:
                hubshare_table_note(t, line, kinds[data[pos] % 4], "malware", now++);
            }
        }
        if (hubshare_table_size(t) > 4 || hubshare_table_size(t) < 0 ||
            hubshare_table_batch(t, b, 4) != hubshare_table_size(t))
            __builtin_trap();
        pos += len + 1;
    }
    hubshare_table_clear(t);
    return 0;
}
