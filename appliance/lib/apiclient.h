/* A tiny HTTP/1.1 client for the agent's local API on a unix socket (libcurl with
 * CURLOPT_UNIX_SOCKET_PATH). Used by otasukectl; webd has its own proxy. */
#ifndef OTASUKE_APICLIENT_H
#define OTASUKE_APICLIENT_H

#include <jansson.h>
#include <stddef.h>

#define APICLIENT_SOCKET_DEFAULT "/run/otasuke/agent.sock"
#define APICLIENT_MAX_RESPONSE (64u * 1024 * 1024)

/* The socket to use: path if non-NULL, else $OTASUKE_AGENT_SOCKET, else the default. */
const char *apiclient_socket(const char *path);

/* Sends method path (e.g. "/v1/rules") with an optional body (JSON, len bytes) and reads
 * the whole answer. Returns the HTTP status and sets *resp to a malloc'd NUL-terminated
 * body (caller frees), or -1 with err ("agent socket /run/...: Couldn't connect ...:
 * is otasuke-agent running?"). */
long apiclient_request(const char *socket, const char *method, const char *path,
                       const char *body, size_t len, char **resp, char *err, size_t errlen);

/* Same, on behalf of a signed-in web account: sends its name in APICLIENT_ACCOUNT_HEADER
 * so the agent records it as the actor of audited changes (the agent trusts the header
 * only because its socket is reachable by root and its own group alone). account NULL or
 * "" = no header. */
#define APICLIENT_ACCOUNT_HEADER "X-Otasuke-Account"
long apiclient_request_as(const char *socket, const char *account, const char *method,
                          const char *path, const char *body, size_t len, char **resp,
                          char *err, size_t errlen);

/* Same, with JSON in and out: body may be NULL; *out gets the parsed answer (new
 * reference; NULL when the answer was not JSON). Returns the status or -1 with err. */
long apiclient_json(const char *socket, const char *method, const char *path, json_t *body,
                    json_t **out, char *err, size_t errlen);

/* Percent-encodes s for a query string into out. Returns 0 or -1 if out is too small. */
int apiclient_escape(const char *s, char *out, size_t outlen);

#endif
