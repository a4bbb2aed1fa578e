/* HTTP/1.1 over a unix socket to the agent, with libcurl. */
#include "apiclient.h"
#include "growbuf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *apiclient_socket(const char *path)
{
    if (path && *path)
        return path;
    const char *env = getenv("OTASUKE_AGENT_SOCKET");
    return env && *env ? env : APICLIENT_SOCKET_DEFAULT;
}

long apiclient_request(const char *socket, const char *method, const char *path,
                       const char *body, size_t len, char **resp, char *err, size_t errlen)
{
    return apiclient_request_as(socket, NULL, method, path, body, len, resp, err, errlen);
}

long apiclient_request_as(const char *socket, const char *account, const char *method,
                          const char *path, const char *body, size_t len, char **resp,
                          char *err, size_t errlen)
{
    static int ready;
    if (!ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        ready = 1;
    }
    *resp = NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "curl: init failed");
        return -1;
    }
    char url[2048];
    /* The host part is ignored on a unix socket; "agent" makes logs readable. */
    snprintf(url, sizeof url, "http://agent%s", path);
    struct growbuf b = { .max = APICLIENT_MAX_RESPONSE };
    struct curl_slist *h = NULL;
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, growbuf_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (account && *account && !strpbrk(account, "\r\n")) {
        char hdr[160];
        snprintf(hdr, sizeof hdr, "%s: %.100s", APICLIENT_ACCOUNT_HEADER, account);
        h = curl_slist_append(h, hdr);
    }
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        h = curl_slist_append(h, "Expect:");
    }
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        *resp = b.data ? b.data : calloc(1, 1);
        b.data = NULL;
    } else if (b.over) {
        snprintf(err, errlen, "agent socket %s: answer larger than %u bytes", socket,
                 APICLIENT_MAX_RESPONSE);
    } else {
        snprintf(err, errlen, "agent socket %s: %s (is otasuke-agent running? "
                 "--socket or OTASUKE_AGENT_SOCKET choose another)", socket,
                 curl_easy_strerror(rc));
    }
    free(b.data);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

long apiclient_json(const char *socket, const char *method, const char *path, json_t *body,
                    json_t **out, char *err, size_t errlen)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL, *resp = NULL;
    *out = NULL;
    if (body && !text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    long st = apiclient_request(socket, method, path, text, text ? strlen(text) : 0, &resp,
                                err, errlen);
    free(text);
    if (st >= 0 && resp)
        *out = json_loads(resp, JSON_DECODE_ANY, NULL);
    free(resp);
    return st;
}

int apiclient_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (o + (plain ? 1 : 3) >= outlen)
            return -1;
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (o >= outlen)
        return -1;
    out[o] = '\0';
    return 0;
}
