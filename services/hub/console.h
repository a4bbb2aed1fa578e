/* The MSP console, served by hubd on its HTTPS listener (console.c):
 *   GET  /console/...                static files from --console DIR (build/webui/console)
 *   POST /console/api/login          {"token": operator token} -> session cookie + CSRF token
 *   GET  /console/api/session        who is signed in (+ the CSRF token again, for a reload)
 *   POST /console/api/logout
 *   GET  /console/api/audit?box=N&limit=M     the hub's audit trail (operator)
 *   GET  /console/api/boxes/N/policy          policy changes relayed to box N, newest first,
 *                                             with the box's verdict (operator)
 * The operator token is exchanged once for an HttpOnly cookie; the page never keeps it.
 * Every operator endpoint of the hub (/v1/fleet, /v1/inbox, /v1/boxes/N/policy) takes the
 * bearer token or that cookie, plus X-CSRF-Token for changes (hub_operator_request). */
#ifndef OTASUKE_HUB_CONSOLE_H
#define OTASUKE_HUB_CONSOLE_H

#include <microhttpd.h>
#include <stddef.h>

struct hub;

#define HUB_CONSOLE_DIR_DEFAULT "/usr/share/otasuke-hub/console"
#define HUB_CONSOLE_COOKIE "__Host-otasuke-console"
#define HUB_CSRF_REFUSED "console session: the X-CSRF-Token header is missing or wrong " \
                         "(or the request came from another site); reload the console"

/* May rel (the part of the URL after /console/) name a file under the console dir?
 * Segments of [A-Za-z0-9._-], none starting with a dot (no "..", no hidden files), no
 * empty segment, at most 200 bytes. 1 or 0. Fuzzed (tests/fuzz/fuzz_hub_console.c). */
int hub_console_path_ok(const char *rel);

/* Is url the console's (/console, /console/...)? */
int hub_console_match(const char *url);

/* Serves a console request: files, sign-in/out, and the console-only views. */
enum MHD_Result hub_console(struct hub *h, struct MHD_Connection *c, const char *url,
                            const char *method, const char *body, size_t len);

/* Who is asking, for operator endpoints: a bearer operator token, or a console session
 * cookie (then a change, i.e. anything but GET/HEAD, also needs the session's
 * X-CSRF-Token and no foreign Origin). Returns 1 and the operator's name, 0 when neither
 * is present or valid (401), -1 for a valid session without a valid CSRF token (403). */
int hub_operator_request(struct hub *h, struct MHD_Connection *c, const char *method,
                         char *name, size_t namelen);

#endif
