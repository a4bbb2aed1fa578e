/* Strict validation of API request bodies: every field known, typed and bounded. */
#include "api.h"

#include <stdio.h>
#include <string.h>

json_t *api_error_json(const char *msg, const char *field)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    json_object_set_new(o, "field", field ? json_string(field) : json_null());
    return o;
}

static const char *type_name(enum api_type t)
{
    switch (t) {
    case API_STR: return "a string";
    case API_INT: return "an integer";
    case API_BOOL: return "true or false";
    case API_STRARR: return "an array of strings";
    default: return "a value";
    }
}

json_t *api_parse_body(const char *body, size_t len, const struct api_field *fields,
                       json_t **error)
{
    json_error_t je;
    char msg[256];
    *error = NULL;
    if (!body || len == 0) {
        *error = api_error_json("a JSON object body is required", "body");
        return NULL;
    }
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(msg, sizeof msg, "body is not valid JSON: %s (line %d, column %d)", je.text,
                 je.line, je.column);
        *error = api_error_json(msg, "body");
        return NULL;
    }
    if (!json_is_object(o)) {
        *error = api_error_json("body must be a JSON object", "body");
        json_decref(o);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        const struct api_field *f = fields;
        while (f->name && strcmp(f->name, k) != 0)
            f++;
        if (!f->name) {
            snprintf(msg, sizeof msg, "unknown field '%.64s'", k);
            *error = api_error_json(msg, k);
            goto bad;
        }
        int ok = 1;
        switch (f->type) {
        case API_STR:
            ok = json_is_string(v) && (!f->max || json_string_length(v) <= f->max) &&
                 !memchr(json_string_value(v), '\0', json_string_length(v));
            break;
        case API_INT:
            ok = json_is_integer(v) && json_integer_value(v) >= 0 &&
                 (!f->max || json_integer_value(v) <= (json_int_t)f->max);
            break;
        case API_BOOL:
            ok = json_is_boolean(v);
            break;
        case API_STRARR: {
            size_t i;
            json_t *e;
            ok = json_is_array(v) && (!f->max || json_array_size(v) <= f->max);
            json_array_foreach(v, i, e)
                if (!json_is_string(e) || json_string_length(e) > 256)
                    ok = 0;
            break;
        }
        default:
            break;
        }
        if (!ok) {
            if (f->max && f->type != API_BOOL)
                snprintf(msg, sizeof msg, "'%s' must be %s (at most %zu%s)", f->name,
                         type_name(f->type), f->max,
                         f->type == API_STR ? " bytes" : f->type == API_STRARR ? " items" : "");
            else
                snprintf(msg, sizeof msg, "'%s' must be %s", f->name, type_name(f->type));
            *error = api_error_json(msg, f->name);
            goto bad;
        }
    }
    for (const struct api_field *f = fields; f->name; f++) {
        if (f->required && !json_object_get(o, f->name)) {
            snprintf(msg, sizeof msg, "'%s' is required", f->name);
            *error = api_error_json(msg, f->name);
            goto bad;
        }
    }
    return o;
bad:
    json_decref(o);
    return NULL;
}
