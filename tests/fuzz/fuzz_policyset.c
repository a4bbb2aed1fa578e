/* libFuzzer harness for the policy.set parser: parse; when accepted, exercise lookups
 * and check that the serialised form parses again. */
#include "policyset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct policy_set *ps = policy_parse((const char *)data, size, "fuzz", err, sizeof err);
    if (!ps)
        return 0;
    static const uint8_t a4[4] = { 192, 0, 2, 10 };
    static const uint8_t a6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10 };
    unsigned g = policy_group_for(ps, AF_INET, a4);
    if (g >= policy_group_count(ps))
        abort();
    g = policy_group_for(ps, AF_INET6, a6);
    if (g >= policy_group_count(ps))
        abort();
    (void)policy_custom_lookup(ps, g, "a.b.shop.test", 13, NULL);
    char *json = policy_to_json(ps);
    if (json) {
        struct policy_set *ps2 = policy_parse(json, strlen(json), "fuzz-roundtrip", err, sizeof err);
        if (!ps2)
            abort();              /* what we write we must read */
        policy_free(ps2);
        free(json);
    }
    policy_free(ps);
    return 0;
}
