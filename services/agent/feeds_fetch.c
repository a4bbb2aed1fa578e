/* Feed downloads with libcurl (http, https, file; ETag; size limit; timeout), on a worker
 * thread when the main loop asks. Nothing here touches the database. */
#include "feeds_fetch.h"
#include "filesink.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FEED_FETCH_TIMEOUT 30

void feeds_fetch_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct fetch_buf *b = ud;
    size_t len = sz * n;
    if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
        size_t off = 5;
        while (off < len && (p[off] == ' ' || p[off] == '\t'))
            off++;
        size_t end = len;
        while (end > off && (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
            end--;
        if (end - off < sizeof b->etag) {
            memcpy(b->etag, p + off, end - off);
            b->etag[end - off] = '\0';
        }
    }
    return len;
}

/* GETs url into b (limit b->max). Returns the HTTP status (200 for file://), 304 when
 * the ETag matched, or -1 with err. */
static long fetch(const char *url, const char *etag, struct fetch_buf *b, char *err,
                  size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "%s: curl init failed", url);
        return -1;
    }
    struct curl_slist *hdrs = NULL;
    if (etag && *etag) {
        char h[300];
        snprintf(h, sizeof h, "If-None-Match: %s", etag);
        hdrs = curl_slist_append(hdrs, h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)FEED_FETCH_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->body.max);
    if (b->file.fd >= 0) {
        b->file.max = b->body.max;
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, filesink_curl_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b->file);
    } else {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, growbuf_curl_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b->body);
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, b);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "otasuke-agent/1");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (strncmp(url, "file:", 5) == 0)
            status = 200;
        if (status != 200 && status != 304) {
            snprintf(err, errlen, "%s: HTTP status %ld", url, status);
            status = -1;
        }
    } else if (b->body.over || b->file.over || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "%s: larger than the limit of %zu bytes", url, b->body.max);
        status = -2;
    } else if (b->file.write_errno) {
        /* curl would only say "Failed writing received data"; the owner needs the cause */
        snprintf(err, errlen, "%s: the download cannot be stored on the box: %s%s", url,
                 strerror(b->file.write_errno), filesink_hint(b->file.write_errno));
    } else {
        snprintf(err, errlen, "%s: %s", url, curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

void feed_job_run(struct feed_job *j)
{
    j->status = fetch(j->url, j->etag, &j->doc, j->err, sizeof j->err);
    if (j->status == 200 && j->is_signed) {
        char sigurl[1200], e2[AGENT_ERR];
        snprintf(sigurl, sizeof sigurl, "%s.sig", j->url);
        if (fetch(sigurl, NULL, &j->sig, e2, sizeof e2) < 0)
            j->sig.body.len = 0;   /* feed_verify reports "unsigned" */
    }
}

static void *worker(void *arg)
{
    struct feed_job *j = arg;
    feed_job_run(j);
    char b = 1;
    if (write(j->notify_fd, &b, 1) != 1) {
        /* The main loop also polls ad->job on its own; nothing else to do. */
    }
    return NULL;
}

int feed_job_start(struct feed_job *j)
{
    return pthread_create(&j->thread, NULL, worker, j) == 0 ? 0 : -1;
}

void feed_job_free(struct feed_job *j)
{
    if (!j)
        return;
    free(j->doc.body.data);
    free(j->sig.body.data);
    if (j->doc.file.fd >= 0)
        close(j->doc.file.fd);
    free(j);
}
