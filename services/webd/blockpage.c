/* Plain-HTTP side. Names dnsd blocks resolve to this listener, so any Host that is a DNS
 * name gets the block page (files under UI/blockpage/, text in the visitor's language,
 * details from the agent's explain); the box's own addresses get a redirect to HTTPS.
 * Visitors are anonymous: they can read why a name is blocked and leave one unblock
 * request, nothing else — the agent bounds how many requests wait. */
#include "webd.h"
#include "apiclient.h"
#include "webd_parse.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "/__otasuke/"

extern int webd_https_port;

static enum MHD_Result redirect(struct MHD_Connection *c, const char *host, int v6)
{
    char loc[400];
    if (webd_https_port == 443)
        snprintf(loc, sizeof loc, v6 ? "https://[%s]/" : "https://%s/", host);
    else
        snprintf(loc, sizeof loc, v6 ? "https://[%s]:%d/" : "https://%s:%d/", host,
                 webd_https_port);
    const char *extra[] = { "Location", loc, NULL };
    static const char msg[] = "The owner page is at https://\n";
    return webd_send(c, 301, "text/plain; charset=utf-8", msg, sizeof msg - 1, 0, extra);
}

/* What the page shows: host, language, and the category/list/summary from explain. */
static enum MHD_Result info(struct webd *w, struct MHD_Connection *c, const char *host)
{
    char addr[64], eh[600], ea[200], path[900], err[256];
    webd_client_addr(c, addr, sizeof addr);
    const char *lang = webd_pick_lang(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                  "Accept-Language"));
    json_t *o = json_pack("{s:s, s:s}", "host", host, "lang", lang);
    if (apiclient_escape(host, eh, sizeof eh) == 0 &&
        apiclient_escape(addr, ea, sizeof ea) == 0) {
        snprintf(path, sizeof path, "/v1/explain?q=%s&client=%s", eh, ea);
        json_t *a = NULL;
        long st = apiclient_json(w->agent_socket, "GET", path, NULL, &a, err, sizeof err);
        if (st == 200 && json_is_object(a)) {
            json_object_set(o, "decision", json_object_get(a, "decision"));
            json_object_set(o, "group", json_object_get(a, "group"));
            /* The first enforced step is the reason; show its category and list name. */
            size_t i;
            json_t *step;
            json_array_foreach(json_object_get(a, "chain"), i, step) {
                if (json_is_true(json_object_get(step, "enforced"))) {
                    if (!json_is_string(json_object_get(step, "action")) ||
                        strcmp(json_string_value(json_object_get(step, "action")), "block"))
                        continue;
                    json_object_set(o, "category", json_object_get(step, "category"));
                    json_object_set(o, "source", json_object_get(step, "source"));
                    json_object_set(o, "list", json_object_get(step, "name"));
                    break;
                }
            }
        } else {
            json_object_set_new(o, "explain_error", json_string(st < 0 ? "agent unreachable"
                                                                       : "no explanation"));
        }
        json_decref(a);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    enum MHD_Result r = webd_send(c, 200, "application/json", s ? s : "{}", s ? strlen(s) : 2,
                                  0, NULL);
    free(s);
    return r;
}

/* The form: urlencoded (no script) or JSON (the page's script). */
static enum MHD_Result request(struct webd *w, struct MHD_Connection *c, const char *host,
                               struct webd_req *r)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    char want[320];
    snprintf(want, sizeof want, "http://%s", MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                        "Host"));
    if (origin && strcmp(origin, want))
        return webd_send_error(c, 403, "request from another site refused", NULL, 0);
    char name[80] = "", reason[520] = "", addr[64];
    int form = ct && !strncmp(ct, "application/x-www-form-urlencoded", 33);
    if (form) {
        if ((webd_form_get(r->body, r->len, "name", name, sizeof name) < 0 && strstr(r->body ? r->body : "", "name=")) ||
            (webd_form_get(r->body, r->len, "reason", reason, sizeof reason) < 0 &&
             strstr(r->body ? r->body : "", "reason=")))
            return webd_send_error(c, 400, "the form was damaged or too long", "body", 0);
    } else {
        json_t *o = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;
        const char *n = json_string_value(json_object_get(o, "name"));
        const char *why = json_string_value(json_object_get(o, "reason"));
        if (!json_is_object(o) || (n && strlen(n) >= sizeof name) ||
            (why && strlen(why) >= sizeof reason)) {
            json_decref(o);
            return webd_send_error(c, 400, "the form was damaged or too long", "body", 0);
        }
        snprintf(name, sizeof name, "%s", n ? n : "");
        snprintf(reason, sizeof reason, "%s", why ? why : "");
        json_decref(o);
    }
    webd_client_addr(c, addr, sizeof addr);
    json_t *q = json_pack("{s:s, s:s, s:s, s:s}", "domain", host, "name", name, "reason",
                          reason, "client", addr);
    char *b = json_dumps(q, JSON_COMPACT), *resp = NULL, err[256];
    json_decref(q);
    long st = b ? apiclient_request(w->agent_socket, "POST", "/v1/unblock-requests", b,
                                    strlen(b), &resp, err, sizeof err) : -1;
    free(b);
    if (st < 0)
        return webd_send_error(c, 502, "the box is not answering; try again later", NULL, 0);
    if (form && st / 100 == 2) {
        free(resp);
        static const char *const extra[] = { "Location", "/?sent=1", NULL };
        return webd_send(c, 303, "text/plain; charset=utf-8", "sent\n", 5, 0, extra);
    }
    enum MHD_Result ret = webd_send(c, (unsigned)st, "application/json", resp ? resp : "{}",
                                    resp ? strlen(resp) : 2, 0, NULL);
    free(resp);
    return ret;
}

enum MHD_Result webd_block_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls)
{
    (void)version;
    struct webd *w = cls;
    struct webd_req *r = NULL;
    int rc = webd_collect(con_cls, upload, upload_size, 4096, &r);
    if (rc < 0)
        return MHD_NO;
    if (rc > 0)
        return MHD_YES;
    if (r->over)
        return webd_send_error(c, 413, "request body too large", "body", 0);
    char host[256];
    int kind = webd_host_parse(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"), host,
                               sizeof host);
    if (kind < 0)
        return webd_send_error(c, 400, "missing or malformed Host header", "Host", 0);
    if (kind == 2)
        return redirect(c, host, strchr(host, ':') != NULL);
    int post = !strcmp(method, "POST");
    if (!strcmp(url, PREFIX "request") && post)
        return request(w, c, host, r);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return webd_send_error(c, 405, "method not allowed", NULL, 0);
    if (!strcmp(url, PREFIX "info"))
        return info(w, c, host);
    char root[4096];
    snprintf(root, sizeof root, "%s/blockpage", w->ui_dir);
    if (!strncmp(url, PREFIX, sizeof PREFIX - 1)) {
        const char *path = url + sizeof PREFIX - 2;
        if (webd_path_ok(path) < 0)
            return webd_send_error(c, 404, "no such file", NULL, 0);
        return webd_send_file(c, root, path, 0);
    }
    return webd_send_file(c, root, "/index.html", 0);
}
