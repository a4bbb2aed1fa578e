/* Shared HTTP plumbing for both listeners: body collection with a hard limit, responses
 * with the security headers, static files, client address. */
#include "webd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "webd_parse.h"

/* No inline script or style anywhere, nothing from other origins, never framed. */
#define CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;" \
            " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';" \
            " form-action 'self'; frame-ancestors 'none'"

int webd_collect(void **con_cls, const char *upload, size_t *upload_size, size_t max,
                 struct webd_req **out)
{
    struct webd_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return -1;
        *con_cls = r;
        return 1;
    }
    *out = r;
    if (!*upload_size)
        return 0;
    size_t n = *upload_size;
    *upload_size = 0;
    if (r->over || r->len + n > max) {
        r->over = 1;   /* drain, then answer 413 */
        return 1;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return -1;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, upload, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 1;
}

void webd_req_done(void *cls, struct MHD_Connection *c, void **con_cls, int toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct webd_req *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

enum MHD_Result webd_send(struct MHD_Connection *c, unsigned status, const char *ctype,
                          const char *body, size_t len, int https, const char *const *extra)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body,
                                                                MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(resp, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
    if (https)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    int has_cache = 0;
    for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2) {
        MHD_add_response_header(resp, extra[i], extra[i + 1]);
        if (!strcmp(extra[i], "Cache-Control"))
            has_cache = 1;
    }
    if (!has_cache)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result webd_send_error(struct MHD_Connection *c, unsigned status, const char *msg,
                                const char *field, int https)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    json_object_set_new(o, "field", field ? json_string(field) : json_null());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return MHD_NO;
    enum MHD_Result r = webd_send(c, status, "application/json", s, strlen(s), https, NULL);
    free(s);
    return r;
}

enum MHD_Result webd_send_file(struct MHD_Connection *c, const char *root, const char *path,
                               int https)
{
    char full[4096];
    snprintf(full, sizeof full, "%s%s", root, path);
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > 8 * 1024 * 1024) {
        if (fd >= 0)
            close(fd);
        return webd_send_error(c, 404, "no such page", NULL, https);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)sb.st_size) : -1;
    close(fd);
    if (n != sb.st_size) {
        free(buf);
        return webd_send_error(c, 500, "cannot read a UI file; reinstall the web UI", NULL,
                               https);
    }
    /* Hashed asset names could be cached forever; ours are plain, so revalidate. */
    static const char *const extra[] = { "Cache-Control", "no-cache", NULL };
    enum MHD_Result r = webd_send(c, 200, webd_mime(path), buf, (size_t)n, https, extra);
    free(buf);
    return r;
}

void webd_client_addr(struct MHD_Connection *c, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
                                                                 MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, outlen, "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
    }
}
