/* API request bodies: strict JSON validation. Unknown fields, wrong types, oversize
 * strings and control characters are refused with the field's name, so a box developer
 * sees exactly what to fix. No database access here: this file is fuzzed. */
#include "hubd.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (256 * 1024)

static json_t *load(const char *body, size_t len, char *err, size_t errlen)
{
    if (len > BODY_MAX) {
        snprintf(err, errlen, "body larger than %d bytes", BODY_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "body is not JSON: %s at line %d column %d", je.text, je.line,
                 je.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        snprintf(err, errlen, "body must be a JSON object");
        json_decref(o);
        return NULL;
    }
    return o;
}

static int only_fields(json_t *o, const char *const *allowed, const char *where,
                       char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (strcmp(k, allowed[i]) == 0)
                ok = 1;
        if (!ok) {
            snprintf(err, errlen, "%sfield '%.64s': unknown field", where, k);
            return -1;
        }
    }
    return 0;
}

/* Copies a string field; required or optional; refuses control characters. */
static int str_field(json_t *o, const char *name, int required, char *out, size_t outlen,
                     const char *where, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, name);
    out[0] = '\0';
    if (!v) {
        if (required) {
            snprintf(err, errlen, "%sfield '%s': missing", where, name);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%sfield '%s': expected a string", where, name);
        return -1;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n >= outlen || strlen(s) != n) {
        snprintf(err, errlen, "%sfield '%s': longer than %zu bytes or contains NUL", where,
                 name, outlen - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(err, errlen, "%sfield '%s': contains a control character", where, name);
            return -1;
        }
    if (required && n == 0) {
        snprintf(err, errlen, "%sfield '%s': empty", where, name);
        return -1;
    }
    memcpy(out, s, n + 1);
    return 0;
}

static int int_field(json_t *o, const char *name, int required, long long lo, long long hi,
                     long long *out, const char *where, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, name);
    if (!v) {
        if (required) {
            snprintf(err, errlen, "%sfield '%s': missing", where, name);
            return -1;
        }
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%sfield '%s': expected an integer %lld..%lld", where, name,
                 lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int hub_body_enroll(const char *body, size_t len, struct hub_enroll_req *rq,
                    char *err, size_t errlen)
{
    static const char *const f[] = { "code", "pubkey", "nonce", "signature", "name",
                                     "version", NULL };
    memset(rq, 0, sizeof *rq);
    json_t *o = load(body, len, err, errlen);
    if (!o)
        return -1;
    int rc = only_fields(o, f, "", err, errlen) ||
             str_field(o, "code", 1, rq->code, sizeof rq->code, "", err, errlen) ||
             str_field(o, "pubkey", 1, rq->pubkey, sizeof rq->pubkey, "", err, errlen) ||
             str_field(o, "nonce", 1, rq->nonce, sizeof rq->nonce, "", err, errlen) ||
             str_field(o, "signature", 1, rq->signature, sizeof rq->signature, "", err,
                       errlen) ||
             str_field(o, "name", 0, rq->name, sizeof rq->name, "", err, errlen) ||
             str_field(o, "version", 0, rq->version, sizeof rq->version, "", err, errlen)
             ? -1 : 0;
    json_decref(o);
    return rc;
}

int hub_body_heartbeat(const char *body, size_t len, struct hub_heartbeat *hb,
                       char *err, size_t errlen)
{
    static const char *const f[] = { "version", "feed_seq", "counters", "open_incidents",
                                     NULL };
    memset(hb, 0, sizeof *hb);
    snprintf(hb->counters, sizeof hb->counters, "{}");
    json_t *o = load(body, len, err, errlen);
    if (!o)
        return -1;
    int rc = only_fields(o, f, "", err, errlen) ||
             str_field(o, "version", 1, hb->version, sizeof hb->version, "", err, errlen) ||
             int_field(o, "feed_seq", 1, 0, (long long)1 << 53, &hb->feed_seq, "", err,
                       errlen) ||
             int_field(o, "open_incidents", 0, 0, 1000000, &hb->open_incidents, "", err,
                       errlen) ? -1 : 0;
    json_t *c = json_object_get(o, "counters");
    if (rc == 0 && c) {
        /* Counters: a flat object of small non-negative integers with short names. */
        const char *k;
        json_t *v;
        if (!json_is_object(c) || json_object_size(c) > 32) {
            snprintf(err, errlen, "field 'counters': expected an object of at most 32 "
                     "integers");
            rc = -1;
        } else {
            json_object_foreach(c, k, v) {
                size_t kl = strlen(k);
                int bad = kl == 0 || kl > 32;
                for (size_t i = 0; i < kl && !bad; i++)
                    bad = !((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
                            k[i] == '_');
                if (bad) {
                    snprintf(err, errlen, "field 'counters': name '%.40s' must be 1..32 of "
                             "[a-z0-9_]", k);
                    rc = -1;
                    break;
                }
                if (!json_is_integer(v) || json_integer_value(v) < 0) {
                    snprintf(err, errlen, "field 'counters.%s': expected a non-negative "
                             "integer", k);
                    rc = -1;
                    break;
                }
            }
            if (rc == 0) {
                char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
                if (!s || strlen(s) >= sizeof hb->counters) {
                    snprintf(err, errlen, "field 'counters': too large");
                    rc = -1;
                } else {
                    snprintf(hb->counters, sizeof hb->counters, "%s", s);
                }
                free(s);
            }
        }
    }
    json_decref(o);
    return rc;
}

static int kind_ok(const char *k)
{
    return strcmp(k, "domain") == 0 || strcmp(k, "ipv4") == 0 || strcmp(k, "ipv6") == 0 ||
           strcmp(k, "cidr") == 0;
}

int hub_body_contrib(const char *body, size_t len, struct hub_contrib *out, int max,
                     char *err, size_t errlen)
{
    static const char *const top[] = { "indicators", NULL };
    static const char *const f[] = { "indicator", "kind", "category", "count",
                                     "first_seen", "last_seen", NULL };
    json_t *o = load(body, len, err, errlen);
    if (!o)
        return -1;
    int n = -1;
    json_t *a = json_object_get(o, "indicators");
    if (only_fields(o, top, "", err, errlen) < 0)
        goto out;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > (size_t)max) {
        snprintf(err, errlen, "field 'indicators': expected an array of 1..%d objects", max);
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        char where[48];
        snprintf(where, sizeof where, "indicators[%zu]: ", i);
        struct hub_contrib *c = &out[i];
        memset(c, 0, sizeof *c);
        long long cnt = 1, fs = 0, ls = 0;
        if (!json_is_object(e)) {
            snprintf(err, errlen, "%sexpected an object", where);
            goto out;
        }
        if (only_fields(e, f, where, err, errlen) ||
            str_field(e, "indicator", 1, c->indicator, sizeof c->indicator, where, err,
                      errlen) ||
            str_field(e, "kind", 1, c->kind, sizeof c->kind, where, err, errlen) ||
            str_field(e, "category", 1, c->category, sizeof c->category, where, err, errlen) ||
            int_field(e, "count", 0, 1, 1000000000, &cnt, where, err, errlen) ||
            int_field(e, "first_seen", 0, 0, (long long)1 << 40, &fs, where, err, errlen) ||
            int_field(e, "last_seen", 0, 0, (long long)1 << 40, &ls, where, err, errlen))
            goto out;
        if (!kind_ok(c->kind)) {
            snprintf(err, errlen, "%sfield 'kind': expected domain|ipv4|ipv6|cidr", where);
            goto out;
        }
        c->count = (long)cnt;
        c->first_seen = fs;
        c->last_seen = ls;
    }
    n = (int)json_array_size(a);
out:
    json_decref(o);
    return n;
}

int hub_body_fp(const char *body, size_t len, char *indicator, size_t ilen, char *kind,
                size_t klen, char *err, size_t errlen)
{
    static const char *const f[] = { "indicator", "kind", NULL };
    json_t *o = load(body, len, err, errlen);
    if (!o)
        return -1;
    int rc = only_fields(o, f, "", err, errlen) ||
             str_field(o, "indicator", 1, indicator, ilen, "", err, errlen) ||
             str_field(o, "kind", 1, kind, klen, "", err, errlen) ? -1 : 0;
    if (rc == 0 && !kind_ok(kind)) {
        snprintf(err, errlen, "field 'kind': expected domain|ipv4|ipv6|cidr");
        rc = -1;
    }
    json_decref(o);
    return rc;
}

int hub_body_policy(const char *body, size_t len, struct hub_policy *pol, char *err,
                    size_t errlen)
{
    static const char *const f[] = { "change", "signer", "signature", NULL };
    memset(pol, 0, sizeof *pol);
    json_t *o = load(body, len, err, errlen);
    if (!o)
        return -1;
    int rc = only_fields(o, f, "", err, errlen) ||
             str_field(o, "signer", 1, pol->signer, sizeof pol->signer, "", err, errlen) ||
             str_field(o, "signature", 1, pol->signature, sizeof pol->signature, "", err,
                       errlen) ? -1 : 0;
    json_t *c = json_object_get(o, "change");
    if (rc == 0 && (strlen(pol->signer) != FEED_KEYID_LEN ||
                    strspn(pol->signer, "0123456789abcdef") != FEED_KEYID_LEN)) {
        snprintf(err, errlen, "field 'signer': expected the 16 hex digits of a key id");
        rc = -1;
    }
    if (rc == 0 && !json_is_string(c)) {
        snprintf(err, errlen, "field 'change': %s", c ? "expected a string (the exact "
                 "signed JSON text)" : "missing");
        rc = -1;
    }
    if (rc == 0) {
        /* The text must itself be a JSON object: the box parses it after the check. */
        size_t n = json_string_length(c);
        const char *s = json_string_value(c);
        json_t *inner = n < sizeof pol->change && strlen(s) == n
            ? json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (!json_is_object(inner)) {
            snprintf(err, errlen, "field 'change': must be the text of a JSON object under "
                     "%zu bytes", sizeof pol->change);
            rc = -1;
        } else {
            memcpy(pol->change, s, n + 1);
        }
        json_decref(inner);
    }
    json_decref(o);
    return rc;
}

int hub_body_policy_result(const char *body, size_t len, char *status, size_t slen,
                           char *detail, size_t dlen, char *err, size_t errlen)
{
    static const char *const f[] = { "status", "detail", NULL };
    json_t *o = load(body, len, err, errlen);
    if (!o)
        return -1;
    int rc = only_fields(o, f, "", err, errlen) ||
             str_field(o, "status", 1, status, slen, "", err, errlen) ||
             str_field(o, "detail", 0, detail, dlen, "", err, errlen) ? -1 : 0;
    if (rc == 0 && strcmp(status, "applied") != 0 && strcmp(status, "refused") != 0 &&
        strcmp(status, "failed") != 0) {
        snprintf(err, errlen, "field 'status': expected applied|refused|failed");
        rc = -1;
    }
    json_decref(o);
    return rc;
}
