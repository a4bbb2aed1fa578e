/* The agent's account / unblock-request routes (api_auth.c) on arbitrary bodies: the first
 * byte picks method and path, the rest is the body. Paths whose valid bodies cost an
 * argon2 hash (setup, login, account creation) are left to fuzz_apibody, which fuzzes the
 * same body checker; everything here must answer with a status and never crash. */
#include "../../services/agent/accounts.h"
#include "../../services/agent/agent.h"
#include "../../services/agent/agentd.h"
#include "../../services/agent/api.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct agentd ad;
    static const char *const routes[][2] = {
        { "POST", "/v1/auth/session" }, { "POST", "/v1/auth/logout" },
        { "GET", "/v1/auth/state" }, { "POST", "/v1/unblock-requests" },
        { "POST", "/v1/unblock-requests/1/approve" }, { "POST", "/v1/unblock-requests/2/decline" },
        { "GET", "/v1/unblock-requests" }, { "POST", "/v1/webd" }, { "GET", "/v1/webd" },
        { "DELETE", "/v1/accounts/boss" }, { "POST", "/v1/auth/nothing" },
        { "PUT", "/v1/unblock-requests" },
        /* no session matches a fuzzed token, so no argon2 runs here */
        { "POST", "/v1/auth/password" }, { "GET", "/v1/notify/test" },
    };
    char err[AGENT_ERR];
    if (!ad.db) {
        ad.db = agent_db_open(":memory:", err, sizeof err);
        if (!ad.db || accounts_migrate(ad.db, err, sizeof err) < 0)
            abort();
    }
    if (size < 1)
        return 0;
    size_t r = data[0] % (sizeof routes / sizeof routes[0]);
    struct api_call c = { .ad = &ad, .method = routes[r][0], .url = routes[r][1],
                          .body = (const char *)data + 1, .body_len = size - 1, .status = 200 };
    char *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    c.body = copy;
    api_route(&c);
    if (c.status < 200 || c.status > 599 || (!c.out && !c.text))
        abort();
    json_decref(c.out);
    free(c.text);
    free(copy);
    /* Keep the table small so the fuzzer does not spend its time on the pending cap. */
    if (data[0] == 0xff)
        agent_exec(ad.db, "DELETE FROM unblock_requests", err, sizeof err);
    return 0;
}
