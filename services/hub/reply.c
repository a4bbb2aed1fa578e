/* The hub's JSON answers and bearer-token lookup, shared by every HTTP handler (api.c,
 * inbox.c, policy.c), so each answers with the same headers and error shape. */
#include "hubd.h"

#include <stdlib.h>
#include <string.h>

enum MHD_Result hub_send_json(struct MHD_Connection *c, unsigned status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result hub_send_err(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return hub_send_json(c, status, json_pack("{s:s}", "error", msg));
}

const char *hub_bearer(struct MHD_Connection *c)
{
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return a && strncmp(a, "Bearer ", 7) == 0 ? a + 7 : NULL;
}
