/* Fuzzes what the agent accepts from its sockets: API request bodies (strict field
 * validation), whole-policy restores (validated before anything changes) and event
 * datagrams from dnsd / fwd. One in-memory database lives across runs; a restore that
 * passes validation replaces it, which is fine: it must stay consistent either way. */
#include "../../services/agent/agentd.h"
#include "../../services/agent/api.h"
#include "../../services/agent/backup.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const struct api_field fields[] = {
    { "pattern", API_STR, 1, 260 }, { "kind", API_STR, 1, 8 }, { "minutes", API_INT, 0, 1440 },
    { "safesearch", API_BOOL, 0, 0 }, { "categories", API_STRARR, 0, 32 },
    { NULL, 0, 0, 0 },
};

static sqlite3 *db;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[AGENT_ERR];
    if (!db && !(db = agent_db_open(":memory:", err, sizeof err)))
        return 0;
    json_t *error = NULL;
    json_t *o = api_parse_body((const char *)data, size, fields, &error);
    if (o) {
        /* What the route would do with a valid body: never trust it further. */
        const char *p = json_string_value(json_object_get(o, "pattern"));
        agent_rule_add(db, AGENT_OWNER, 0, p, json_string_value(json_object_get(o, "kind")),
                       NULL, NULL, 0, NULL, err, sizeof err);
    }
    json_decref(o);
    json_decref(error);
    unsigned status = 0;
    json_decref(backup_restore(db, (const char *)data, size, &status));
    agentd_event_apply(db, NULL, (const char *)data, size, 1800000000, err, sizeof err);
    return 0;
}
