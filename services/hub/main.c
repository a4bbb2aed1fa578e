/* otasuke-hubd: the hub daemon and, with "admin", the operator's tool. */
#include "console.h"
#include "hubd.h"

#include "log.h"

#include <getopt.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: otasuke-hubd [options] [admin COMMAND...]\n"
        "  -d DIR         state dir: keys, TLS, sqlite db, broker files (/var/lib/otasuke-hub)\n"
        "  --db URI       storage: sqlite:PATH (default DIR/hub.db) or postgresql://...\n"
        "  -l ADDR:PORT   HTTPS listen address (0.0.0.0:8443; [::]:8443 for IPv6)\n"
        "  --hosts LIST   names/addresses for the self-signed certificate (default: -l's)\n"
        "  --feed ID      shared feed id (community)\n"
        "  --mqtt H:P     broker hubd publishes to (127.0.0.1:1883)\n"
        "  --public-mqtt H:P  broker address told to boxes at enrolment\n"
        "  --public-mqtt-tls  that broker listener speaks TLS (hub certificate)\n"
        "  -k N           distinct organisations needed to promote (3)\n"
        "  --fp-k N       false-positive reports (distinct orgs) that demote (2)\n"
        "  --online SECS  heartbeat age still counted online (300)\n"
        "  --entry-ttl S  community entries expire unless seen again (2592000)\n"
        "  --tls-priorities S  GnuTLS priority string for HTTPS (NORMAL)\n"
        "  --console DIR  MSP console files served at /console/ (" HUB_CONSOLE_DIR_DEFAULT ")\n"
        "  -n             check state, storage and options, then exit 0/1\n"
        "  -f             foreground, log to stderr\n"
        "  -v             debug logging\n"
        "  admin ...      operator commands ('admin help')\n");
}

/* The host part lives in a static buffer: --mqtt is parsed once and kept for the life of
 * the process (a heap copy showed up as a leak under LeakSanitizer). */
static int parse_hostport(const char *s, const char **host, int *port)
{
    static char h[256];
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= sizeof h)
        return -1;
    memcpy(h, s, (size_t)(c - s));
    h[c - s] = '\0';
    char *end;
    long p = strtol(c + 1, &end, 10);
    if (*end || p < 1 || p > 65535)
        return -1;
    *host = h;
    *port = (int)p;
    return 0;
}

static int posint(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 100000000) {
        fprintf(stderr, "otasuke-hubd: %s: expected a positive integer, got '%s'\n", what, s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    struct hub_opts o;
    hub_opts_defaults(&o);
    /* Group-readable at most: the broker (group mosquitto) reads its files. */
    umask(027);
    int check = 0, fg = 0, verbose = 0;
    const char *hosts = NULL;
    enum { O_DB = 256, O_FEED, O_MQTT, O_PUBMQTT, O_PUBTLS, O_FPK, O_ONLINE, O_TTL, O_HOSTS,
           O_TLSPRIO, O_CONSOLE };
    static const struct option lo[] = {
        { "db", required_argument, NULL, O_DB },
        { "feed", required_argument, NULL, O_FEED },
        { "mqtt", required_argument, NULL, O_MQTT },
        { "public-mqtt", required_argument, NULL, O_PUBMQTT },
        { "public-mqtt-tls", no_argument, NULL, O_PUBTLS },
        { "fp-k", required_argument, NULL, O_FPK },
        { "online", required_argument, NULL, O_ONLINE },
        { "entry-ttl", required_argument, NULL, O_TTL },
        { "hosts", required_argument, NULL, O_HOSTS },
        { "tls-priorities", required_argument, NULL, O_TLSPRIO },
        { "console", required_argument, NULL, O_CONSOLE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    /* '+' stops at "admin" so its own options reach it untouched. */
    while ((c = getopt_long(argc, argv, "+d:l:k:nfvh", lo, NULL)) != -1) {
        switch (c) {
        case 'd': o.state_dir = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'k': o.k = posint(optarg, "-k"); break;
        case 'n': check = 1; break;
        case 'f': fg = 1; break;
        case 'v': verbose = 1; break;
        case O_DB: o.db_uri = optarg; break;
        case O_FEED: o.feed_id = optarg; break;
        case O_MQTT:
            if (parse_hostport(optarg, &o.mqtt_host, &o.mqtt_port) < 0) {
                fprintf(stderr, "otasuke-hubd: --mqtt: expected HOST:PORT\n");
                return 2;
            }
            break;
        case O_PUBMQTT: o.public_mqtt = optarg; break;
        case O_PUBTLS: o.public_mqtt_tls = "1"; break;
        case O_FPK: o.fp_k = posint(optarg, "--fp-k"); break;
        case O_ONLINE: o.online_secs = posint(optarg, "--online"); break;
        case O_TTL: o.entry_ttl = posint(optarg, "--entry-ttl"); break;
        case O_HOSTS: hosts = optarg; break;
        case O_TLSPRIO: o.tls_priorities = optarg; break;
        case O_CONSOLE: o.console_dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (strlen(o.feed_id) == 0 || strlen(o.feed_id) > FEED_ID_MAX ||
        strspn(o.feed_id, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(o.feed_id)) {
        fprintf(stderr, "otasuke-hubd: --feed: 1..64 of [a-z0-9-_]\n");
        return 2;
    }
    if (optind < argc && strcmp(argv[optind], "admin") == 0)
        return hub_admin(&o, argc - optind - 1, argv + optind + 1);
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    log_init("otasuke-hubd", fg || check, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
    struct hub h;
    char err[300];
    if (hub_open(&h, &o, err, sizeof err) < 0)
        fatal("%s", err);
    char hostbuf[160];
    if (!hosts) {
        /* Certificate names default to the listen address (+ loopback). */
        snprintf(hostbuf, sizeof hostbuf, "%s", o.listen);
        char *colon = strrchr(hostbuf, ':');
        if (colon)
            *colon = '\0';
        if (hostbuf[0] == '[') {
            memmove(hostbuf, hostbuf + 1, strlen(hostbuf));
            hostbuf[strcspn(hostbuf, "]")] = '\0';
        }
        strncat(hostbuf, ",127.0.0.1,localhost", sizeof hostbuf - strlen(hostbuf) - 1);
        hosts = hostbuf;
    }
    if (hub_tls_ensure(o.state_dir, hosts, err, sizeof err) < 0)
        fatal("%s", err);
    if (hub_mqtt_write_files(&h, err, sizeof err) < 0)
        fatal("%s", err);
    if (check) {
        char ix[600];
        snprintf(ix, sizeof ix, "%s/index.html", o.console_dir ? o.console_dir
                 : HUB_CONSOLE_DIR_DEFAULT);
        if (access(ix, R_OK) != 0)
            printf("warning: %s unreadable: the MSP console will not load (--console DIR)\n",
                   ix);
        printf("ok: state %s, storage %s, feed %s seq %lld, key %s\n", o.state_dir,
               hubdb_backend(h.db), o.feed_id, hub_feed_seq(&h, err, sizeof err), h.feed_keyid);
        hub_close(&h);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (hub_mqtt_start(&h, err, sizeof err) < 0)
        fatal("%s", err);
    int rc = hub_api_run(&h, &stop_flag, err, sizeof err);
    if (rc < 0)
        log_error("%s", err);
    hub_mqtt_stop();
    hub_close(&h);
    log_info("stopped");
    return rc < 0 ? 1 : 0;
}
