/* dset_normalize: the one place that decides what a valid name is, shared by the list
 * parsers, the set builder and the CLI. */
#include "domainset.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int dset_normalize(const char *in, size_t len, char *out, size_t outlen,
                   char *err, size_t errlen)
{
    size_t label = 0, numeric_labels = 0, labels = 0;
    int all_digits = 1;

    if (len && in[len - 1] == '.')
        len--;
    if (len == 0)
        return fail(err, errlen, "empty name");
    if (len > DSET_NAME_MAX)
        return fail(err, errlen, "name longer than %d characters (%zu)", DSET_NAME_MAX, len);
    if (outlen < len + 1)
        return fail(err, errlen, "output buffer too small");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c == '.') {
            if (label == 0)
                return fail(err, errlen, i == 0 ? "name starts with a dot"
                                                : "empty label (two dots in a row)");
            labels++;
            numeric_labels += all_digits;
            label = 0;
            all_digits = 1;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > 63)
                return fail(err, errlen, "label longer than 63 characters");
            if (c < '0' || c > '9')
                all_digits = 0;
        } else if (c == ':' || c == '/') {
            char tmp[64];
            unsigned char buf[16];
            if (len < sizeof tmp) {
                memcpy(tmp, in, len);
                tmp[len] = 0;
                if (inet_pton(AF_INET6, tmp, buf) == 1)
                    return fail(err, errlen, "IPv6 address, not a name");
            }
            return fail(err, errlen, "invalid character '%c' in name", c);
        } else if (c == '*') {
            return fail(err, errlen, "wildcard '*' inside a name");
        } else if (c >= ' ' && c < 0x7f) {
            return fail(err, errlen, "invalid character '%c' in name", c);
        } else {
            return fail(err, errlen, "invalid byte 0x%02x in name", c);
        }
        out[i] = (char)c;
    }
    if (label == 0)  /* "a.b.." : one trailing dot was allowed, not two */
        return fail(err, errlen, "empty label (two dots in a row)");
    labels++;
    numeric_labels += all_digits;
    if (labels == 4 && numeric_labels == 4) {
        struct in_addr a;
        char tmp[16];
        if (len < sizeof tmp) {
            memcpy(tmp, out, len);
            tmp[len] = 0;
            if (inet_pton(AF_INET, tmp, &a) == 1)
                return fail(err, errlen, "IPv4 address, not a name");
        }
    }
    out[len] = 0;
    return (int)len;
}
