/* otasuke-agent: the unprivileged brain of the box. One thread: the local API, feed
 * refreshes, schedule boundaries and compiles all run from one event loop, so the SQLite
 * connection is never shared and a change arriving during a compile simply marks the
 * policy dirty again — exactly one more compile, never two. */
#include "accounts.h"
#include "agent.h"
#include "agentd.h"
#include "atomicfile.h"
#include "feeds_fetch.h"
#include "incidents.h"
#include "config.h"
#include "log.h"
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_flag = 1;
    else
        stop_flag = 1;
}

/* Tells systemd (Type=notify) that the first compile is done, so units ordered after the
 * agent find its artifacts. No-op without $NOTIFY_SOCKET; a failure is only logged: readiness
 * is a courtesy to the service manager, never a reason to stop filtering. */
static void notify_ready(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof sa.sun_path)
        return;
    size_t len = strlen(path);
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';   /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    static const char msg[] = "READY=1";
    if (sendto(fd, msg, sizeof msg - 1, 0, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        log_warn("cannot tell systemd the agent is ready: %s", strerror(errno));
    close(fd);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: otasuke-agent [-f] [-n] [--db PATH] [--socket PATH] [--state-dir DIR]\n"
            "                     [--user NAME] [--dnsd-control SOCK] [--dnsd-pidfile F]\n"
            "                     [--fwd-pidfile F] [--events SOCK] [--config FILE]\n"
            "                     [--hub DIR]\n"
            "                     [--log-level error|warn|info|debug]\n"
            "  -f               foreground, log to stderr\n"
            "  -n               check the database and the state directory, then exit 0/1\n"
            "  --db PATH        policy database (default /var/lib/otasuke/agent.db)\n"
            "  --socket PATH    local API socket (default /run/otasuke/agent.sock)\n"
            "  --state-dir DIR  where compiled artifacts go (default /var/lib/otasuke)\n"
            "  --user NAME      drop to this user after opening the socket\n"
            "  --dnsd-control SOCK  dnsd's control socket: 'reload' after a compile\n"
            "  --events SOCK    datagram socket dnsd and fwd send events to (devices, risk)\n"
            "  --config FILE    otasuke.conf: zones (fw.set interfaces, zone groups)\n"
            "  --hub DIR        follow the shared feed of the hub this box enrolled with\n"
            "                   (DIR = the hub client state, otasukectl hub enroll --state)\n"
            "  --dnsd-pidfile F / --fwd-pidfile F   send SIGHUP there after a compile\n");
}

/* The sockets were made as root; hand them to the agent's user and group so webd and
 * otasukectl in that group can connect (mode 0660). */
static int drop_privileges(const char *user, const char *const *sockets)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_error("--user %s: no such user", user);
        return -1;
    }
    for (int i = 0; sockets[i]; i++)
        if (chown(sockets[i], pw->pw_uid, pw->pw_gid) < 0) {
            log_error("%s: chown to %s: %s", sockets[i], user, strerror(errno));
            return -1;
        }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_error("--user %s: cannot switch: %s", user, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct agentd ad;
    memset(&ad, 0, sizeof ad);
    ad.db_path = "/var/lib/otasuke/agent.db";
    ad.socket_path = "/run/otasuke/agent.sock";
    ad.state_dir = "/var/lib/otasuke";
    const char *user = NULL, *config_path = NULL, *hub_dir = NULL;
    int foreground = 0, check = 0;
    enum log_level level = LOG_LEVEL_INFO;
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "socket", required_argument, NULL, 's' },
        { "state-dir", required_argument, NULL, 'S' },
        { "user", required_argument, NULL, 'u' },
        { "dnsd-pidfile", required_argument, NULL, 'D' },
        { "fwd-pidfile", required_argument, NULL, 'F' },
        { "dnsd-control", required_argument, NULL, 'C' },
        { "events", required_argument, NULL, 'E' },
        { "config", required_argument, NULL, 'c' },
        { "hub", required_argument, NULL, 'H' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "fnh", opts, NULL)) != -1) {
        switch (c) {
        case 'f': foreground = 1; break;
        case 'n': check = 1; foreground = 1; break;
        case 'd': ad.db_path = optarg; break;
        case 's': ad.socket_path = optarg; break;
        case 'S': ad.state_dir = optarg; break;
        case 'u': user = optarg; break;
        case 'D': ad.dnsd_pidfile = optarg; break;
        case 'F': ad.fwd_pidfile = optarg; break;
        case 'C': ad.dnsd_control = optarg; break;
        case 'E': ad.events_path = optarg; break;
        case 'c': config_path = optarg; break;
        case 'H': hub_dir = optarg; break;
        case 'l':
            if (log_level_parse(optarg, &level) < 0) {
                fprintf(stderr, "otasuke-agent: --log-level: expected error|warn|info|debug\n");
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
    log_init("otasuke-agent", foreground, level);

    char err[AGENT_ERR];
    struct stat sb;
    static struct ota_config cfg;   /* large; lives as long as the process */
    if (config_path) {
        if (cfg_load(&cfg, config_path, err, sizeof err) < 0) {
            log_error("%s", err);
            return 1;
        }
        ad.cfg = &cfg;
    }
    if (stat(ad.state_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        log_error("--state-dir %s: not a directory (create it, owned by the agent's user)",
                  ad.state_dir);
        return 1;
    }
    /* SQLite's temp files (a snapshot applied in key order, feeds_stage.c: ~100 MB at 1M
     * names) go to the state directory's partition, not to /var/tmp on the root file
     * system. Before any thread exists: setenv is not thread-safe. */
    setenv("SQLITE_TMPDIR", ad.state_dir, 0);
    if (!check && !user && geteuid() == 0)
        log_warn("running as root: pass --user to run unprivileged");
    /* The socket is created before dropping privileges (it may live in /run). */
    ad.events_fd = -1;
    ad.hub_fd = -1;
    feeds_fetch_init();
    if (pipe2(ad.job_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        ad.job_pipe[0] = ad.job_pipe[1] = -1;   /* downloads then run in the main loop */
    if (!check && (agentd_api_start(&ad, err, sizeof err) < 0 ||
                   agentd_events_open(&ad, err, sizeof err) < 0)) {
        log_error("%s", err);
        agentd_api_stop(&ad);
        return 1;
    }
    const char *sockets[] = { ad.socket_path, ad.events_path, NULL };
    if (user && drop_privileges(user, sockets) < 0)
        return 1;
    ad.db = agent_db_open(ad.db_path, err, sizeof err);
    if (!ad.db) {
        log_error("%s", err);
        agentd_api_stop(&ad);
        return 1;
    }
    if (accounts_migrate(ad.db, err, sizeof err) < 0) {   /* accounts.c: own tables */
        log_error("%s", err);
        agent_db_close(ad.db);
        agentd_api_stop(&ad);
        return 1;
    }
    if (agentd_zones_sync(ad.db, ad.cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        agent_db_close(ad.db);
        agentd_api_stop(&ad);
        return 1;
    }
    /* Temporary files of a write cut short (power loss, kill -9) are litter, never data:
     * the renamed targets are the truth. */
    int swept = atomic_sweep(ad.state_dir);
    if (swept > 0)
        log_info("removed %d temporary file(s) an interrupted write left in %s", swept,
                 ad.state_dir);
    /* A hub the owner enrolled with from the web UI lives in <state>/hub. */
    static char ui_hub[600];
    snprintf(ui_hub, sizeof ui_hub, "%s/hub/hub.json", ad.state_dir);
    if (!hub_dir && access(ui_hub, F_OK) == 0) {
        snprintf(ui_hub, sizeof ui_hub, "%s/hub", ad.state_dir);
        hub_dir = ui_hub;
    }
    ad.hub_dir = hub_dir;
    /* Without its hub the box still protects with what it has: warn, do not stop. */
    if (hub_dir && !check && agentd_hub_start(&ad, hub_dir, err, sizeof err) < 0)
        log_error("%s; running without the hub's feed", err);
    if (check) {
        printf("otasuke-agent: %s: schema version %d, state dir %s: ok\n", ad.db_path,
               agent_db_version(ad.db), ad.state_dir);
        agent_db_close(ad.db);
        return 0;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Owner notifications go out from a thread of their own (notify.c): a slow relay
     * never holds up DNS events or the API. Without it they are sent inline, as before. */
    if (notify_start(ad.db_path, err, sizeof err) < 0)
        log_warn("%s; sending notifications from the main loop", err);
    log_info("started: db %s, socket %s, state %s", ad.db_path, ad.socket_path, ad.state_dir);
    ad.started = time(NULL);
    if (webstats_attach(ad.db, ad.started, err, sizeof err) < 0)   /* dashboard counters */
        log_warn("%s; the dashboard counts start from zero", err);
    incidents_settings_changed(&ad);   /* dnsd's query-event thresholds, before its reload */
    ad.dirty = 1;   /* artifacts may be missing or older than the database: compile once */
    int ready = 0;
    while (!stop_flag) {
        if (reload_flag) {
            reload_flag = 0;
            ad.dirty = 1;
            ad.feeds_due_now = 1;
        }
        agentd_tick(&ad, time(NULL));
        if (!ready) {   /* the first tick compiled (or kept the last artifacts) */
            notify_ready();
            ready = 1;
        }
        agentd_api_poll(&ad, agentd_next_wake_ms(&ad, time(NULL)));
    }
    log_info("stopping");
    if (ad.job) {   /* bounded by the download timeout */
        pthread_join(ad.job->thread, NULL);
        feed_job_free(ad.job);
    }
    if (agentd_hub_stop(&ad) < 0) {
        /* a hub thread is stuck in a network call: running exit handlers (library
         * clean-ups) under its feet could crash it; the database is what must be safe */
        log_warn("hub threads did not stop in time; leaving without clean-up");
        notify_stop();
        webstats_flush(time(NULL));
        agent_db_close(ad.db);
        _exit(0);
    }
    notify_stop();
    agentd_events_close(&ad);
    agentd_api_stop(&ad);
    webstats_flush(time(NULL));
    webstats_attach(NULL, 0, NULL, 0);
    agent_db_close(ad.db);
    return 0;
}
