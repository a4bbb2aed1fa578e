/* otasuke-webd: the owner web UI over HTTPS and the block page over plain HTTP. Holds no
 * state: accounts, sessions and unblock requests live in the agent (its /v1/auth,
 * /v1/accounts, /v1/unblock-requests); webd checks the session cookie, CSRF header and
 * role on every request, then forwards /api/X to the agent's /v1/X. */
#ifndef OTASUKE_WEBD_H
#define OTASUKE_WEBD_H

#include <stddef.h>

#define WEBD_BODY_MAX    (64u * 1024)
#define WEBD_RESTORE_MAX (32u * 1024 * 1024)
#define WEBD_COOKIE      "__Host-otasuke"

struct webd {
    const char *agent_socket;
    const char *ui_dir;          /* built UI: owner/ and blockpage/ under it */
    char *cert_pem, *key_pem;    /* loaded (or generated) at start */
    char fingerprint[100];       /* SHA-256 of the certificate, AA:BB:... */
    const char *names[12];       /* DNS names the owner UI answers to (NULL-terminated) */
};

/* tls.c: loads cert and key from the files, or when both are missing generates an ECDSA
 * P-256 key (file mode 0600) and a self-signed certificate valid 10 years for the given
 * names/addresses (NULL-terminated). Fills w->cert_pem, w->key_pem, w->fingerprint.
 * Returns 0 or -1 with err naming the file. */
int webd_tls_load(struct webd *w, const char *cert_path, const char *key_path,
                  const char *const *sans, char *err, size_t errlen);

/* owner.c: the HTTPS request handler (static UI, /api proxy, auth). cls is struct webd. */
struct MHD_Connection;
enum MHD_Result webd_owner_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls);
/* blockpage.c: the plain-HTTP handler (block page, unblock form, redirect). */
enum MHD_Result webd_block_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls);

/* http.c: shared plumbing. */
struct webd_req {
    char *body;
    size_t len, cap;
    int over;
};
/* Collects upload bytes up to max; returns 1 while still uploading (caller returns
 * MHD_YES), 0 when the whole body is in, -1 on out of memory. */
int webd_collect(void **con_cls, const char *upload, size_t *upload_size, size_t max,
                 struct webd_req **out);
void webd_req_done(void *cls, struct MHD_Connection *c, void **con_cls, int toe);
/* Queues body (copied) with status, type and the security headers; extra headers
 * "Name: value" pairs, NULL-terminated. */
enum MHD_Result webd_send(struct MHD_Connection *c, unsigned status, const char *ctype,
                          const char *body, size_t len, int https,
                          const char *const *extra);
/* {"error": msg, "field": field} answers. */
enum MHD_Result webd_send_error(struct MHD_Connection *c, unsigned status, const char *msg,
                                const char *field, int https);
/* Serves root/path (path already checked with webd_path_ok). */
enum MHD_Result webd_send_file(struct MHD_Connection *c, const char *root, const char *path,
                               int https);
/* Client address of the connection as text into out. */
void webd_client_addr(struct MHD_Connection *c, char *out, size_t outlen);

#endif
