/* The hub's help inbox: boxes post an incident with its evidence bundle (box token);
 * helpers (operator token) list, open, assign and set the status of requests. */
#ifndef OTASUKE_HUB_INBOX_H
#define OTASUKE_HUB_INBOX_H

#include <microhttpd.h>
#include <stddef.h>

struct hub;

#define INBOX_BUNDLE_MAX (128 * 1024)

/* Is url one of the inbox's (/v1/help, /v1/inbox, /v1/inbox/N)? */
int hub_inbox_match(const char *url);
/* Serves an inbox request (auth, validation, storage, audit). */
enum MHD_Result hub_inbox(struct hub *h, struct MHD_Connection *c, const char *url,
                          const char *method, const char *body, size_t len);

/* inbox_session.c: POST /v1/help/session for an authenticated box. */
enum MHD_Result hub_help_session(struct hub *h, struct MHD_Connection *c, long box,
                                 const char *body, size_t len);

/* Validates a help request body: {"incident":{...,"id":N,"kind":S,"severity":S},
 * "bundle":{...}, "note":S?}. Returns 0 or -1 with err naming the field. Exposed for
 * tests and the fuzzer. */
int hub_inbox_check(const char *body, size_t len, char *err, size_t errlen);

#endif
