/* Fuzzes every hub API body parser (services/hub/body.c) with the same input: the first
 * byte picks the parser (enrol, heartbeat, contributions, false positive + policy result,
 * policy), the rest is the body. */
#include "../../services/hub/hubd.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hub_contrib c[HUB_CONTRIB_MAX];
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[300];
    switch (data[0] % 5) {
    case 0: {
        struct hub_enroll_req rq;
        if (hub_body_enroll(body, len, &rq, err, sizeof err) == 0 &&
            (strlen(rq.code) >= sizeof rq.code || strlen(rq.signature) >= sizeof rq.signature))
            __builtin_trap();
        break;
    }
    case 1: {
        struct hub_heartbeat hb;
        if (hub_body_heartbeat(body, len, &hb, err, sizeof err) == 0 &&
            strlen(hb.counters) >= sizeof hb.counters)
            __builtin_trap();
        break;
    }
    case 2: {
        int n = hub_body_contrib(body, len, c, HUB_CONTRIB_MAX, err, sizeof err);
        if (n > HUB_CONTRIB_MAX)
            __builtin_trap();
        break;
    }
    case 4: {
        static struct hub_policy pol;
        if (hub_body_policy(body, len, &pol, err, sizeof err) == 0 &&
            (strlen(pol.signer) != FEED_KEYID_LEN || pol.change[0] != '{'))
            __builtin_trap();
        break;
    }
    default: {
        char ind[FEED_INDICATOR_MAX + 1], kind[8];
        hub_body_fp(body, len, ind, sizeof ind, kind, sizeof kind, err, sizeof err);
        char st[16], detail[HUB_POLICY_DETAIL_MAX + 1];
        if (hub_body_policy_result(body, len, st, sizeof st, detail, sizeof detail, err,
                                   sizeof err) == 0 && strcmp(st, "applied") && strcmp(st, "refused"))
            __builtin_trap();
        break;
    }
    }
    return 0;
}
