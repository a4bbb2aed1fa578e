/* otasuke-webd: owner UI over HTTPS, block page and redirect over HTTP (see webd.h).
 * libmicrohttpd runs each listener with a small internal thread pool; handlers block on
 * the agent socket for at most a few hundred ms (a login's argon2 check is the slowest),
 * so four threads per listener keep the UI responsive for an office. */
#include "webd.h"
#include "apiclient.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LISTEN 8

int webd_https_port = 443;
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: otasuke-webd [-f] [-n] [--listen ADDR:PORT]... [--blockpage-listen ADDR:PORT]...\n"
        "                    [--agent SOCKET] [--ui DIR] [--cert FILE] [--key FILE]\n"
        "                    [--name DNSNAME]... [--user NAME] [--config FILE] [--log-level LEVEL]\n"
        "  -f                 foreground, log to stderr\n"
        "  -n                 check options, UI directory and certificate, then exit 0/1\n"
        "  --listen A:P       HTTPS owner UI (default 0.0.0.0:443; IPv6 as [addr]:port)\n"
        "  --blockpage-listen A:P   plain HTTP block page + redirect (default 0.0.0.0:80)\n"
        "  --agent SOCKET     the agent's API socket (default %s)\n"
        "  --ui DIR           built web UI with owner/ and blockpage/ (default\n"
        "                     /usr/share/otasuke/webui)\n"
        "  --cert / --key     certificate and key (default /var/lib/otasuke/webd.crt,\n"
        "                     webd.key); both generated at first start when missing\n"
        "  --name DNSNAME     extra name of the box: in the generated certificate, and the\n"
        "                     owner UI answers to it (other names get the block page)\n"
        "  --user NAME        drop to this user after binding\n"
        "  --config FILE      otasuke.conf: web listen/blockpage_listen/cert/key/user and\n"
        "                     agent socket (command-line options win)\n", APICLIENT_SOCKET_DEFAULT);
}

/* The key stays in memory for libmicrohttpd; wipe it when we are done. */
static int finish(struct webd *w, int rc)
{
    if (w->key_pem)
        explicit_bzero(w->key_pem, strlen(w->key_pem));
    free(w->key_pem);
    free(w->cert_pem);
    w->key_pem = w->cert_pem = NULL;
    return rc;
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, char *host, size_t hl,
                        int *port)
{
    char buf[128];
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    char *colon, *h = buf;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close || close[1] != ':')
            return -1;
        *close = '\0';
        h = buf + 1;
        colon = close + 1;
    } else {
        colon = strrchr(buf, ':');
        if (!colon)
            return -1;
        *colon = '\0';
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p);
    } else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
    } else {
        return -1;
    }
    snprintf(host, hl, "%s", h);
    *port = (int)p;
    return 0;
}

static struct MHD_Daemon *start(struct webd *w, const struct sockaddr_storage *ss, int tls)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (ss->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) | (tls ? MHD_USE_TLS : 0);
    if (tls)
        return MHD_start_daemon(flags, 0, NULL, NULL, webd_owner_handler, w,
                                MHD_OPTION_SOCK_ADDR, ss,
                                MHD_OPTION_HTTPS_MEM_KEY, w->key_pem,
                                MHD_OPTION_HTTPS_MEM_CERT, w->cert_pem,
                                MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)128,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)32,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)20,
                                MHD_OPTION_NOTIFY_COMPLETED, webd_req_done, NULL,
                                MHD_OPTION_END);
    return MHD_start_daemon(flags, 0, NULL, NULL, webd_block_handler, w,
                            MHD_OPTION_SOCK_ADDR, ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_NOTIFY_COMPLETED, webd_req_done, NULL,
                            MHD_OPTION_END);
}

/* First specific (not wildcard) block-page address of each family, "" when none. */
static char bp4[16], bp6[46];

static int report(struct webd *w, const char *listen_desc)
{
    char err[256];
    json_t *out = NULL, *body = json_pack("{s:s, s:s, s:s, s:s}", "fingerprint", w->fingerprint,
                                          "listen", listen_desc, "blockpage_v4", bp4,
                                          "blockpage_v6", bp6);
    long st = apiclient_json(w->agent_socket, "POST", "/v1/webd", body, &out, err, sizeof err);
    json_decref(body);
    json_decref(out);
    return st == 200 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct webd w;
    memset(&w, 0, sizeof w);
    w.agent_socket = NULL;
    w.ui_dir = "/usr/share/otasuke/webui";
    const char *cert = NULL, *key = NULL, *config_path = NULL;
    const char *user = NULL, *https[MAX_LISTEN], *plain[MAX_LISTEN], *sans[MAX_LISTEN * 2 + 2];
    int nh = 0, np = 0, ns = 0, foreground = 0, check = 0;
    enum log_level level = LOG_LEVEL_INFO;
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'L' },
        { "blockpage-listen", required_argument, NULL, 'B' },
        { "agent", required_argument, NULL, 'a' },
        { "ui", required_argument, NULL, 'U' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "name", required_argument, NULL, 'N' },
        { "user", required_argument, NULL, 'u' },
        { "config", required_argument, NULL, 'C' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "fnh", opts, NULL)) != -1) {
        switch (c) {
        case 'f': foreground = 1; break;
        case 'n': check = 1; foreground = 1; break;
        case 'L':
        case 'B':
            if ((c == 'L' ? nh : np) == MAX_LISTEN) {
                fprintf(stderr, "otasuke-webd: at most %d addresses per listener kind\n",
                        MAX_LISTEN);
                return 2;
            }
            if (c == 'L')
                https[nh++] = optarg;
            else
                plain[np++] = optarg;
            break;
        case 'a': w.agent_socket = optarg; break;
        case 'U': w.ui_dir = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'N':
            if (ns < MAX_LISTEN)
                sans[ns++] = optarg;
            break;
        case 'u': user = optarg; break;
        case 'C': config_path = optarg; break;
        case 'l':
            if (log_level_parse(optarg, &level) < 0) {
                fprintf(stderr, "otasuke-webd: --log-level: expected error|warn|info|debug\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    log_init("otasuke-webd", foreground, level);
    static struct ota_config cfg;   /* large; lives as long as the process */
    if (config_path) {
        char cerr[512];
        if (cfg_load(&cfg, config_path, cerr, sizeof cerr) < 0) {
            log_error("%s", cerr);
            return 1;
        }
        for (int i = 0; !nh && i < cfg.web.n_listen && i < MAX_LISTEN; i++)
            https[i] = cfg.web.listen[i];
        if (!nh)
            nh = cfg.web.n_listen < MAX_LISTEN ? cfg.web.n_listen : MAX_LISTEN;
        for (int i = 0; !np && i < cfg.web.n_blockpage_listen && i < MAX_LISTEN; i++)
            plain[i] = cfg.web.blockpage_listen[i];
        if (!np)
            np = cfg.web.n_blockpage_listen < MAX_LISTEN ? cfg.web.n_blockpage_listen : MAX_LISTEN;
        cert = cert ? cert : cfg.web.cert;
        key = key ? key : cfg.web.key;
        user = user ? user : cfg.web.user[0] ? cfg.web.user : NULL;
        w.agent_socket = w.agent_socket ? w.agent_socket : cfg.agent.socket;
    }
    cert = cert ? cert : "/var/lib/otasuke/webd.crt";
    key = key ? key : "/var/lib/otasuke/webd.key";
    w.agent_socket = w.agent_socket ? w.agent_socket : APICLIENT_SOCKET_DEFAULT;
    if (!nh)
        https[nh++] = "0.0.0.0:443";
    if (!np)
        plain[np++] = "0.0.0.0:80";
    struct sockaddr_storage hs[MAX_LISTEN], ps[MAX_LISTEN];
    static char san_buf[MAX_LISTEN][128];
    char host[128], desc[1200] = "";
    for (int i = 0; i < nh + np; i++) {
        int port;
        const char *s = i < nh ? https[i] : plain[i - nh];
        if (parse_listen(s, i < nh ? &hs[i] : &ps[i - nh], host, sizeof host, &port) < 0) {
            log_error("--%slisten %s: expected ADDR:PORT, e.g. 192.0.2.1:443 or [fd00::1]:443",
                      i < nh ? "" : "blockpage-", s);
            return 1;
        }
        if (i == 0)
            webd_https_port = port;
        if (i >= nh && strcmp(host, "0.0.0.0") && strcmp(host, "::")) {
            int v6 = strchr(host, ':') != NULL;
            size_t hl = strlen(host);
            if (v6 && !bp6[0] && hl < sizeof bp6)
                memcpy(bp6, host, hl + 1);
            else if (!v6 && !bp4[0] && hl < sizeof bp4)
                memcpy(bp4, host, hl + 1);
        }
        if (i < nh) {
            if (strcmp(host, "0.0.0.0") && strcmp(host, "::") && ns < MAX_LISTEN * 2) {
                snprintf(san_buf[i], sizeof san_buf[i], "%s", host);
                sans[ns++] = san_buf[i];
            }
            snprintf(desc + strlen(desc), sizeof desc - strlen(desc), "%shttps://%s%s%s:%d",
                     i ? " " : "", strchr(host, ':') ? "[" : "", host,
                     strchr(host, ':') ? "]" : "", port);
        }
    }
    sans[ns++] = "otasuke.local";
    sans[ns] = NULL;
    /* The owner UI's own names: the generated certificate's DNS names plus "otasuke". */
    int nn = 0;
    w.names[nn++] = "otasuke";
    for (int i = 0; i < ns && nn < (int)(sizeof w.names / sizeof w.names[0]) - 1; i++)
        if (!strchr(sans[i], ':') && strspn(sans[i], "0123456789.") != strlen(sans[i]))
            w.names[nn++] = sans[i];
    w.names[nn] = NULL;
    char path[4200];
    struct stat sb;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s/index.html", w.ui_dir, i ? "blockpage" : "owner");
        if (stat(path, &sb) < 0) {
            log_error("--ui %s: %s missing: build the UI ('make webui') or pass --ui",
                      w.ui_dir, path);
            return 1;
        }
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error("libsodium or libcurl failed to initialise");
        return 1;
    }
    char err[512];
    if (check) {
        struct stat sc;
        if (stat(cert, &sc) == 0 && webd_tls_load(&w, cert, key, sans, err, sizeof err) < 0) {
            log_error("%s", err);
            return finish(&w, 1);
        }
        printf("otasuke-webd: options, UI %s%s%s: ok\n", w.ui_dir,
               w.fingerprint[0] ? ", certificate SHA-256 " : " (certificate will be generated)",
               w.fingerprint);
        return finish(&w, 0);
    }
    if (webd_tls_load(&w, cert, key, sans, err, sizeof err) < 0) {
        log_error("%s", err);
        return finish(&w, 1);
    }
    printf("otasuke-webd: certificate SHA-256 %s\n", w.fingerprint);
    fflush(stdout);
    log_info("certificate SHA-256 %s", w.fingerprint);
    struct MHD_Daemon *d[MAX_LISTEN * 2];
    int nd = 0;
    for (int i = 0; i < nh + np; i++) {
        d[nd] = start(&w, i < nh ? &hs[i] : &ps[i - nh], i < nh);
        if (!d[nd]) {
            log_error("--%slisten %s: cannot listen (address in use or not on this host?)",
                      i < nh ? "" : "blockpage-", i < nh ? https[i] : plain[i - nh]);
            while (nd--)
                MHD_stop_daemon(d[nd]);
            return finish(&w, 1);
        }
        nd++;
    }
    if (user) {
        struct passwd *pw = getpwnam(user);
        if (!pw || initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
            setuid(pw->pw_uid) < 0) {
            log_error("--user %s: cannot switch: %s", user, pw ? strerror(errno) : "no such user");
            for (int i = 0; i < nd; i++)
                MHD_stop_daemon(d[i]);
            return finish(&w, 1);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("serving %s; block page on %d address(es); agent %s", desc, np, w.agent_socket);
    int reported = 0, tick = 0;
    while (!stop_flag) {
        /* The agent may start after us; tell it the fingerprint as soon as it answers. */
        if (!reported && tick % 20 == 0 && report(&w, desc) == 0) {
            reported = 1;
            log_info("fingerprint reported to the agent");
        }
        tick++;
        usleep(250 * 1000);
    }
    log_info("stopping");
    for (int i = 0; i < nd; i++)
        MHD_stop_daemon(d[i]);
    curl_global_cleanup();
    return finish(&w, 0);
}
