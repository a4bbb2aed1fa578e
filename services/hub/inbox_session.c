/* Remote-help sessions, hub side: POST /v1/help/session (box token) {"pubkey": an
 * ssh-ed25519 public key, "minutes": 1..240}. The box asks only after its owner
 * consented; the hub signs a certificate for principal box-<id> valid that long, allowing
 * port forwarding only, and lets that principal listen on one loopback port of the
 * bastion (principals file, permitlisten). Nothing here can start a session towards a
 * box: the box dials out or nothing happens. */
#include "hubd.h"
#include "inbox.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SESSION_PORT_BASE 20000

static int valid_pubkey(const char *k)
{
    if (strncmp(k, "ssh-ed25519 ", 12) || strlen(k) > 200)
        return 0;
    const char *p = k + 12;
    size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
    return n >= 60 && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n') &&
           strspn(p + n, " \nabcdefghijklmnopqrstuvwxyz0123456789@.-_") == strlen(p + n);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 8192);
    size_t n = buf ? fread(buf, 1, 8191, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    while (buf && n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* Rewrites principals without box's line, then with its new one. */
static int principals_set(const char *dir, const char *principal, int port, char *err,
                          size_t errlen)
{
    char path[600], tmp[620], line[512];
    snprintf(path, sizeof path, "%s/principals", dir);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    if (!out) {
        if (in)
            fclose(in);
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t pl = strlen(principal);
    while (in && fgets(line, sizeof line, in)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == ' '))
            line[--l] = '\0';
        if (l > pl && !strcmp(line + l - pl, principal) && line[l - pl - 1] == ' ')
            continue;
        fprintf(out, "%s\n", line);
    }
    if (in)
        fclose(in);
    fprintf(out, "permitlisten=\"%d\",no-pty,no-agent-forwarding,no-X11-forwarding,"
            "no-user-rc %s\n", port, principal);
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result refuse(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return answer(c, status, json_pack("{s:s}", "error", msg));
}

enum MHD_Result hub_help_session(struct hub *h, struct MHD_Connection *c, long box,
                                 const char *body, size_t len)
{
    char dir[512], ca[600], err[800];
    snprintf(dir, sizeof dir, "%s/bastion", h->o.state_dir);
    snprintf(ca, sizeof ca, "%s/ca", dir);
    struct stat sb;
    if (stat(ca, &sb) != 0)
        return refuse(c, 503, "this hub has no help bastion: run services/hub/bastion/bastion.sh "
                      "init STATE_DIR on the hub");
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *pk = json_string_value(json_object_get(o, "pubkey"));
    json_int_t minutes = json_integer_value(json_object_get(o, "minutes"));
    if (!pk || !valid_pubkey(pk)) {
        json_decref(o);
        return refuse(c, 400, "pubkey: an ssh-ed25519 public key line");
    }
    if (minutes < 1 || minutes > 240 || json_object_size(o) != 2) {
        json_decref(o);
        return refuse(c, 400, "minutes: 1 to 240 (and only pubkey, minutes in the body)");
    }
    char keyf[600], certf[620], principal[32], ident[64], validity[32];
    snprintf(principal, sizeof principal, "box-%ld", box);
    snprintf(ident, sizeof ident, "%s-%lld", principal, hub_now());
    snprintf(validity, sizeof validity, "-1m:+%lldm", (long long)minutes);
    snprintf(keyf, sizeof keyf, "%s/%s.pub", dir, ident);
    snprintf(certf, sizeof certf, "%s/%s-cert.pub", dir, ident);
    FILE *f = fopen(keyf, "w");
    if (!f || fprintf(f, "%s\n", pk) < 0 || fclose(f) != 0) {
        json_decref(o);
        log_error("help session: %s: %s", keyf, strerror(errno));
        return refuse(c, 500, "bastion storage error; see the hub log");
    }
    json_decref(o);
    char *argv[] = { "ssh-keygen", "-q", "-s", ca, "-I", ident, "-n", principal, "-V", validity,
                     "-O", "clear", "-O", "permit-port-forwarding", keyf, NULL };
    pid_t pid;
    int st = -1;
    if (posix_spawnp(&pid, "ssh-keygen", NULL, NULL, argv, environ) == 0)
        waitpid(pid, &st, 0);
    char *cert = st == 0 ? slurp(certf) : NULL;
    unlink(keyf);
    unlink(certf);
    if (!cert) {
        log_error("help session: ssh-keygen failed for %s (status %d)", principal, st);
        return refuse(c, 500, "signing failed; see the hub log");
    }
    int port = SESSION_PORT_BASE + (int)(box % 40000);
    if (principals_set(dir, principal, port, err, sizeof err) < 0) {
        free(cert);
        log_error("help session: %s", err);
        return refuse(c, 500, "bastion storage error; see the hub log");
    }
    char hk[600], uf[600], lf[600];
    snprintf(hk, sizeof hk, "%s/host_ed25519_key.pub", dir);
    snprintf(uf, sizeof uf, "%s/user", dir);
    snprintf(lf, sizeof lf, "%s/listen", dir);
    char *host_key = slurp(hk), *user = slurp(uf), *listen = slurp(lf);
    const char *lport = listen && strrchr(listen, ':') ? strrchr(listen, ':') + 1 : "2222";
    char boxs[24];
    snprintf(boxs, sizeof boxs, "%ld", box);
    hub_audit(h, boxs, "help-session", "%s port %d for %lld min", principal, port,
              (long long)minutes);
    log_info("help session: %s may listen on bastion port %d for %lld min", principal, port,
             (long long)minutes);
    json_t *ans = json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:I}", "certificate", cert,
                            "user", user ? user : "otasuke-help", "principal", principal,
                            "listen_port", port, "ssh_port", atoi(lport),
                            "host_key", host_key ? host_key : "", "minutes", minutes);
    free(cert);
    free(host_key);
    free(user);
    free(listen);
    return answer(c, 200, ans);
}
