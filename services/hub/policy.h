/* HTTP side of the delegated-policy relay (policy.c): a box's verdict on a relayed
 * message, and the operator's view of what was sent to a box and what became of it. The
 * relay itself (POST /v1/boxes/<id>/policy, GET /v1/policy) stays in api.c. */
#ifndef OTASUKE_HUB_POLICY_H
#define OTASUKE_HUB_POLICY_H

#include <microhttpd.h>
#include <stddef.h>

struct hub;

/* Is this one of ours? POST /v1/policy/<id>/result, GET /v1/boxes/<id>/policy. */
int hub_policy_match(const char *url, const char *method);
/* Serves it: auth (box token / operator token), validation, storage, audit. */
enum MHD_Result hub_policy_route(struct hub *h, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *body, size_t len);

#endif
