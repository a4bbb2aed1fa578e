/* Parsing of untrusted request bits for otasuke-webd (see webd_parse.h). Every loop is
 * bounded by the input length; nothing is allocated. */
#include "webd_parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int cookie_octet(unsigned char c)
{
    /* RFC 6265 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon, backslash. */
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

int webd_cookie_get(const char *header, const char *name, char *out, size_t outlen)
{
    if (!header || !name || !outlen)
        return -1;
    size_t nl = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ';')
            eq++;
        const char *end = eq;
        while (*end && *end != ';')
            end++;
        if (*eq == '=' && (size_t)(eq - p) == nl && !memcmp(p, name, nl)) {
            const char *v = eq + 1;
            size_t vl = (size_t)(end - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl == 0 || vl >= outlen)
                return -1;
            for (size_t i = 0; i < vl; i++)
                if (!cookie_octet((unsigned char)v[i]))
                    return -1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return (int)vl;
        }
        p = end;
    }
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes s[0..n) into out; -1 on a bad escape, a NUL, or overflow. */
static int form_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int webd_form_get(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
    if (!body || !name || !outlen)
        return -1;
    size_t nl = strlen(name), i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && body[i] != '&')
            i++;
        const char *pair = body + start;
        size_t pl = i - start;
        const char *eq = memchr(pair, '=', pl);
        size_t kl = eq ? (size_t)(eq - pair) : pl;
        if (kl == nl && !memcmp(pair, name, nl)) {
            if (!eq) {
                out[0] = '\0';
                return 0;
            }
            return form_decode(eq + 1, pl - kl - 1, out, outlen);
        }
        i++;
    }
    return -1;
}

const char *webd_pick_lang(const char *header)
{
    double best_ja = -1, best_en = -1;
    if (!header)
        return "en";
    const char *p = header;
    for (int items = 0; *p && items < 64; items++) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tag = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t tl = (size_t)(p - tag);
        double q = 1.0;
        while (*p && *p != ',') {
            if (*p == ';') {
                p++;
                while (*p == ' ')
                    p++;
                if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                    char *end;
                    q = strtod(p + 2, &end);
                    if (end == p + 2 || q < 0 || q > 1)
                        q = 0;
                    p = end;
                }
                continue;   /* p may sit on the terminator now: re-check before moving */
            }
            p++;
        }
        if (tl >= 2 && !strncasecmp(tag, "ja", 2) && (tl == 2 || tag[2] == '-')) {
            if (q > best_ja)
                best_ja = q;
        } else if (tl >= 2 && !strncasecmp(tag, "en", 2) && (tl == 2 || tag[2] == '-')) {
            if (q > best_en)
                best_en = q;
        }
    }
    return best_ja > 0 && best_ja >= best_en ? "ja" : "en";
}

int webd_host_parse(const char *header, char *out, size_t outlen)
{
    if (!header || !*header || outlen < 2)
        return -1;
    size_t n = strlen(header);
    if (n > 300)
        return -1;
    char buf[304];
    const char *h = header;
    size_t hl;
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        if (!close)
            return -1;
        hl = (size_t)(close - h - 1);
        if (close[1] && (close[1] != ':' || !close[2]))
            return -1;
        if (hl == 0 || hl >= sizeof buf || hl >= outlen)
            return -1;
        memcpy(buf, h + 1, hl);
        buf[hl] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return -1;
        memcpy(out, buf, hl + 1);
        return 2;
    }
    const char *colon = strchr(h, ':');
    hl = colon ? (size_t)(colon - h) : n;
    if (colon) {
        const char *port = colon + 1;
        if (!*port || strlen(port) > 5)
            return -1;
        for (; *port; port++)
            if (!isdigit((unsigned char)*port))
                return -1;
    }
    if (hl && h[hl - 1] == '.')
        hl--;
    if (hl == 0 || hl > 253 || hl >= outlen)
        return -1;
    size_t label = 0;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    if (label == 0)
        return -1;
    out[hl] = '\0';
    struct in_addr a4;
    return inet_pton(AF_INET, out, &a4) == 1 ? 2 : 1;
}

int webd_path_ok(const char *path)
{
    if (!path || path[0] != '/' || strlen(path) > 200)
        return -1;
    if (strstr(path, "..") || strstr(path, "//"))
        return -1;
    for (const char *p = path; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._/-", *p))
            return -1;
    return 0;
}

const char *webd_mime(const char *path)
{
    static const struct { const char *ext, *type; } map[] = {
        { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
        { ".json", "application/json" }, { ".svg", "image/svg+xml" },
        { ".png", "image/png" }, { ".ico", "image/x-icon" }, { ".woff2", "font/woff2" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(dot, map[i].ext))
                return map[i].type;
    return "application/octet-stream";
}
