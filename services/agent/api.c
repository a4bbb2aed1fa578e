/* Local API transport: libmicrohttpd on a unix socket we create (0660, so only root and
 * the agent's group — webd, otasukectl via sudo/group — can talk to it), run in external
 * select mode from the agent's single thread. Bodies are collected up to a limit, then
 * handed to the router in api_routes.c as parsed JSON. */
#include "agentd.h"
#include "api.h"
#include "growbuf.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct req {
    struct growbuf body;   /* bounded by body_limit(url); over = 400 once all is read */
};

static void req_free(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *r = *con_cls;
    if (r) {
        free(r->body.data);
        free(r);
        *con_cls = NULL;
    }
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *text,
                                 const char *ctype)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static size_t body_limit(const char *url)
{
    /* A restore carries the whole policy; everything else is small. */
    return strcmp(url, "/v1/restore") == 0 ? API_RESTORE_MAX : API_BODY_MAX;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct agentd *ad = cls;
    struct req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->body.max = body_limit(url);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        /* past the limit: keep reading (and dropping) so we can answer 400 */
        if (!r->body.over && growbuf_append(&r->body, upload, n) < 0 && !r->body.over)
            return MHD_NO;   /* out of memory */
        return MHD_YES;
    }
    ad->n.api_requests++;
    struct api_call call = { .ad = ad, .conn = c, .method = method, .url = url,
                             .body = r->body.data, .body_len = r->body.len, .status = 200 };
    if (r->body.over) {
        call.status = 400;
        call.out = api_error_json("body larger than the limit", "body");
    } else {
        api_route(&call);
    }
    if (call.status >= 400)
        ad->n.api_errors++;
    if (call.text)
        return send_text(c, call.status, call.text,
                         call.ctype ? call.ctype : "text/plain; charset=utf-8");
    char *s = json_dumps(call.out ? call.out : json_null(),
                         JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(call.out);
    if (!s)
        return MHD_NO;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t) {
        t[n] = '\n';
        t[n + 1] = '\0';
        s = t;
    }
    log_debug("api %s %s -> %u", method, url, call.status);
    return send_text(c, call.status, s, "application/json");
}

int agentd_api_start(struct agentd *ad, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(ad->socket_path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "--socket %s: longer than %zu bytes", ad->socket_path,
                 sizeof sun.sun_path - 1);
        return -1;
    }
    memcpy(sun.sun_path, ad->socket_path, strlen(ad->socket_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct stat sb;
    if (lstat(ad->socket_path, &sb) == 0 && S_ISSOCK(sb.st_mode))
        unlink(ad->socket_path);   /* left over from a previous run (e.g. after kill -9) */
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc < 0 || listen(fd, 32) < 0) {
        snprintf(err, errlen, "--socket %s: %s", ad->socket_path, strerror(errno));
        close(fd);
        return -1;
    }
    ad->listen_fd = fd;
    ad->mhd = MHD_start_daemon(MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, ad,
                               MHD_OPTION_LISTEN_SOCKET, fd,
                               MHD_OPTION_NOTIFY_COMPLETED, req_free, NULL,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                               MHD_OPTION_END);
    if (!ad->mhd) {
        snprintf(err, errlen, "--socket %s: libmicrohttpd did not start", ad->socket_path);
        close(fd);
        unlink(ad->socket_path);
        return -1;
    }
    return 0;
}

void agentd_api_poll(struct agentd *ad, int timeout_ms)
{
    fd_set rs, ws, es;
    MHD_socket max = 0;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    if (MHD_get_fdset(ad->mhd, &rs, &ws, &es, &max) != MHD_YES)
        return;
    if (ad->events_fd >= 0) {
        FD_SET(ad->events_fd, &rs);
        if (ad->events_fd > max)
            max = ad->events_fd;
    }
    if (ad->job_pipe[0] >= 0) {
        FD_SET(ad->job_pipe[0], &rs);
        if (ad->job_pipe[0] > max)
            max = ad->job_pipe[0];
    }
    if (ad->hub_fd >= 0) {
        FD_SET(ad->hub_fd, &rs);
        if (ad->hub_fd > max)
            max = ad->hub_fd;
    }
    MHD_UNSIGNED_LONG_LONG mt;
    if (MHD_get_timeout(ad->mhd, &mt) == MHD_YES && mt < (MHD_UNSIGNED_LONG_LONG)timeout_ms)
        timeout_ms = (int)mt;
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    if (select(max + 1, &rs, &ws, &es, &tv) < 0 && errno != EINTR)
        log_warn("select: %s", strerror(errno));
    if (ad->events_fd >= 0 && FD_ISSET(ad->events_fd, &rs))
        agentd_events_read(ad);
    if (ad->job_pipe[0] >= 0 && FD_ISSET(ad->job_pipe[0], &rs))
        agentd_feeds_job_done(ad, time(NULL));
    if (ad->hub_fd >= 0 && FD_ISSET(ad->hub_fd, &rs))
        agentd_hub_handle(ad, time(NULL));
    MHD_run_from_select(ad->mhd, &rs, &ws, &es);
}

void agentd_api_stop(struct agentd *ad)
{
    if (ad->mhd) {
        MHD_stop_daemon(ad->mhd);
        ad->mhd = NULL;
    }
    /* MHD closed the listening socket it was given; the path is ours to remove. */
    if (ad->socket_path && ad->listen_fd > 0) {
        unlink(ad->socket_path);
        ad->listen_fd = -1;
    }
}
