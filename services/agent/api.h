/* Local API: request routing and strict body validation. */
#ifndef OTASUKE_AGENT_API_H
#define OTASUKE_AGENT_API_H

#include <jansson.h>
#include <stddef.h>

#define API_BODY_MAX    (64u * 1024)
#define API_RESTORE_MAX (32u * 1024 * 1024)

struct agentd;
struct MHD_Connection;

struct api_call {
    struct agentd *ad;
    struct MHD_Connection *conn;
    const char *method, *url;
    const char *body;
    size_t body_len;
    unsigned status;     /* set by the handler; 200 by default */
    json_t *out;         /* JSON answer (owned) */
    char *text;          /* or a text answer (malloc'd), e.g. /metrics */
    const char *ctype;   /* content type of text */
    const char *account; /* calls without conn (tests): the web account acting, or NULL */
};

/* api_routes.c: dispatches a call by method and path; fills status and out/text. */
void api_route(struct api_call *call);

/* api_body.c (no libmicrohttpd, so the fuzzer links it alone). */
enum api_type { API_STR = 1, API_INT, API_BOOL, API_STRARR, API_ANY };

struct api_field {
    const char *name;
    enum api_type type;
    int required;
    size_t max;          /* strings: max bytes; arrays: max items; ints: max value (0 = any) */
};

/* {"error": msg, "field": field-or-null}; new reference. */
json_t *api_error_json(const char *msg, const char *field);
/* Parses body as one JSON object and checks it against fields (NULL-name terminated):
 * unknown field, wrong type, missing required field, too long -> NULL and *error set to
 * an api_error_json naming the field. Returns the object (new reference). */
json_t *api_parse_body(const char *body, size_t len, const struct api_field *fields,
                       json_t **error);

#endif
