/* otasuke-fwd: the firewall manager. Owns `table inet otasuke`, nothing else.
 *
 *   otasuke-fwd --apply-once FILE [--confirm-timeout S] [--state DIR]   apply, exit
 *   otasuke-fwd --diff FILE                 print what would change, send nothing
 *   otasuke-fwd --confirm [--state DIR]     confirm a pending change
 *   otasuke-fwd -n --set FILE               check the artifact and exit 0/1
 *   otasuke-fwd [-f] --set FILE [--state DIR] [--events SOCK] [--leases FILE]
 *               [--confirm-timeout S]       daemon: reconcile, SIGHUP re-reads FILE,
 *                                           rolls back unconfirmed changes, events;
 *                                           SIGUSR1 logs the event counters */
#include "config.h"
#include "fw.h"
#include "fw_state.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_STATE "/var/lib/otasuke/fwd"

struct opts {
    const char *set, *apply_once, *diff, *state, *events, *leases, *config;
    int check, foreground, confirm, confirm_timeout;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: otasuke-fwd [-n] [-f] [--config FILE] [--set FILE] [--state DIR] [--events SOCK]\n"
            "                   [--leases FILE] [--confirm-timeout SECS]\n"
            "       otasuke-fwd --apply-once FILE [--confirm-timeout SECS] [--state DIR]\n"
            "       otasuke-fwd --diff FILE\n"
            "  --full-read  verify every element in the kernel (slow for big sets) instead of\n"
            "               trusting the last commit when the ruleset generation is unchanged\n"
            "       otasuke-fwd --confirm [--state DIR]\n");
}

static void print_stats(const char *what, const struct fw_stats *st)
{
    log_info("%s: writes=%zu added=%zu deleted=%zu sets+%zu/-%zu chains=%zu rebuilt=%d "
             "retried=%d read=%.1fms build=%.1fms commit=%.1fms",
             what, st->writes, st->elems_added, st->elems_deleted, st->sets_created,
             st->sets_deleted, st->chains_replaced, st->rebuilt, st->retried, st->read_ms,
             st->build_ms, st->commit_ms);
}

static void print_json(const struct fw_stats *st)
{
    printf("{\"trusted\":%d,\"writes\":%zu,\"added\":%zu,\"deleted\":%zu,\"sets_created\":%zu,"
           "\"sets_deleted\":%zu,\"chains_replaced\":%zu,\"rebuilt\":%d,\"retried\":%d,"
           "\"read_ms\":%.3f,\"build_ms\":%.3f,\"commit_ms\":%.3f}\n",
           st->trusted, st->writes, st->elems_added, st->elems_deleted, st->sets_created,
           st->sets_deleted, st->chains_replaced, st->rebuilt, st->retried, st->read_ms, st->build_ms,
           st->commit_ms);
    fflush(stdout);
}

static const char *g_state = DEFAULT_STATE;
static int g_full_read;

/* The artifact we last committed and the generation right after: STATE/kernel.set (a
 * hard link to the applied file: fw.set files are replaced by rename, never rewritten,
 * so the link is a stable snapshot) and STATE/kernel.gen. Returns 1 when usable. */
static int known_load(struct fwset *known, uint32_t *gen)
{
    char p[4096], err[512], text[32] = { 0 };
    *gen = 0;
    if (g_full_read)
        return 0;
    fw_state_path(g_state, "kernel.gen", p, sizeof p);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    if (!fgets(text, sizeof text, f))
        text[0] = '\0';
    fclose(f);
    *gen = (uint32_t)strtoul(text, NULL, 10);
    fw_state_path(g_state, "kernel.set", p, sizeof p);
    if (!*gen || fwset_open(known, p, err, sizeof err) < 0) {
        *gen = 0;
        return 0;
    }
    return 1;
}

static void known_save(const char *path, uint32_t gen)
{
    char ks[4096], kg[4096], tmp[4200], err[512];
    fw_state_path(g_state, "kernel.set", ks, sizeof ks);
    fw_state_path(g_state, "kernel.gen", kg, sizeof kg);
    unlink(kg);
    if (!gen)
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp", ks);
    unlink(tmp);
    if (strcmp(path, ks) != 0 && link(path, tmp) < 0 &&
        fw_state_copy(path, tmp, err, sizeof err) < 0) {
        log_warn("cannot keep a copy of %s: %s (next reconcile reads every element)", path, err);
        return;
    }
    if (strcmp(path, ks) != 0 && rename(tmp, ks) < 0)
        return;
    FILE *f = fopen(kg, "w");
    if (f) {
        fprintf(f, "%u\n", gen);
        fclose(f);
    }
}

/* Loads and applies path. Returns 0 or -1 (logged). */
static int apply_file(struct fw_nl *nl, const char *path, struct fw_stats *st, int json)
{
    char err[512];
    struct fwset s, known;
    uint32_t kgen;
    if (fwset_open(&s, path, err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    int have_known = known_load(&known, &kgen);
    int rc = fw_apply(nl, &s, have_known ? &known : NULL, kgen, 0, NULL, st, err, sizeof err);
    if (have_known)
        fwset_free(&known);
    fwset_free(&s);
    if (rc == 0)
        known_save(path, st->genid);
    if (rc < 0) {
        log_error("apply %s: %s (the kernel kept its previous ruleset)", path, err);
        return -1;
    }
    if (st->retried)
        log_warn("%s: first attempt failed (%s); re-read the kernel's state and retried",
                 path, st->retry_reason);
    print_stats(path, st);
    if (json)
        print_json(st);
    return 0;
}

/* Rolls back an expired pending change. Caller holds the state lock. */
static int rollback(struct fw_nl *nl, const char *state)
{
    char rb[4096], err[512];
    struct fw_stats st;
    fw_state_path(state, "rollback.set", rb, sizeof rb);
    log_warn("change not confirmed before its deadline: rolling back");
    int rc;
    if (access(rb, F_OK) == 0) {
        rc = apply_file(nl, rb, &st, 0);
    } else {
        rc = fw_remove(nl, err, sizeof err);
        if (rc < 0)
            log_error("rollback: %s", err);
        known_save(rb, 0);
    }
    if (rc < 0)
        return -1;
    if (fw_state_finish_rollback(state, err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    log_info("rolled back to the last confirmed ruleset");
    return 0;
}

static int check_pending(struct fw_nl *nl, const char *state)
{
    long deadline = fw_state_pending(state);
    if (!deadline || time(NULL) < deadline)
        return 0;
    char err[512];
    int lk = fw_state_lock(state, err, sizeof err);
    if (lk < 0) {
        log_error("%s", err);
        return -1;
    }
    int rc = 0;
    deadline = fw_state_pending(state); /* re-check under the lock: maybe just confirmed */
    if (deadline && time(NULL) >= deadline)
        rc = rollback(nl, state);
    fw_state_unlock(lk);
    return rc;
}

/* Applies path, as pending when a confirm timeout is set. Returns 0 or -1. */
static int apply_with_state(struct fw_nl *nl, const struct opts *o, const char *path, int json)
{
    char err[512];
    struct fw_stats st;
    struct fwset s;
    if (fwset_open(&s, path, err, sizeof err) < 0) { /* validate before touching state */
        log_error("%s", err);
        return -1;
    }
    fwset_free(&s);
    int lk = fw_state_lock(o->state, err, sizeof err);
    if (lk < 0) {
        log_error("%s", err);
        return -1;
    }
    int rc;
    if (o->confirm_timeout > 0) {
        long deadline = (long)time(NULL) + o->confirm_timeout;
        if (fw_state_begin_pending(o->state, path, deadline, err, sizeof err) < 0) {
            log_error("%s", err);
            fw_state_unlock(lk);
            return -1;
        }
        rc = apply_file(nl, path, &st, json);
        if (rc < 0)
            fw_state_finish_rollback(o->state, err, sizeof err); /* nothing changed */
        else
            log_info("applied with a deadline in %d s: confirm with 'otasuke-fwd --confirm'",
                     o->confirm_timeout);
    } else {
        rc = apply_file(nl, path, &st, json);
        if (rc == 0 && fw_state_set_applied(o->state, path, err, sizeof err) < 0)
            log_warn("%s", err);
    }
    fw_state_unlock(lk);
    return rc;
}

static int run_daemon(struct fw_nl *nl, const struct opts *o)
{
    char err[512];
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        fatal("signalfd: %s", strerror(errno));

    /* Start: an unexpired pending change stays in force (its deadline still runs);
     * otherwise reconcile to the configured artifact. */
    check_pending(nl, o->state);
    char pendset[4096];
    fw_state_path(o->state, "pending.set", pendset, sizeof pendset);
    if (fw_state_pending(o->state)) {
        struct fw_stats st;
        log_info("a change is pending confirmation; reconciling to it");
        apply_file(nl, pendset, &st, 0);
    } else if (apply_with_state(nl, &(struct opts){ .state = o->state }, o->set, 0) < 0) {
        log_error("start: could not apply %s; the previous ruleset stays", o->set);
    }

    struct fw_events *ev = NULL;
    int nflog_fd = -1, neigh_fd = -1;
    if (o->events) {
        struct fwset s;
        uint32_t group = 0;
        if (fwset_open(&s, o->set, err, sizeof err) == 0) {
            group = s.opts.nflog_group;
            fwset_free(&s);
        }
        ev = fw_events_open(o->events, group, o->leases, err, sizeof err);
        if (!ev)
            log_error("events: %s", err);
        else
            fw_events_fds(ev, &nflog_fd, &neigh_fd);
    }
    log_info("running: table inet %s, set %s, state %s", FW_TABLE, o->set, o->state);
    for (;;) {
        struct pollfd p[3] = { { sfd, POLLIN, 0 }, { nflog_fd, POLLIN, 0 }, { neigh_fd, POLLIN, 0 } };
        int n = poll(p, 3, 1000);
        if (n < 0 && errno != EINTR)
            fatal("poll: %s", strerror(errno));
        if (n > 0 && (p[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                    unsigned long sent = 0, dropped = 0;
                    if (ev)
                        fw_events_counts(ev, &sent, &dropped);
                    log_info("stopping (events sent=%lu dropped=%lu); the ruleset stays",
                             sent, dropped);
                    fw_events_close(ev);
                    return 0;
                }
                if (si.ssi_signo == SIGHUP) {
                    log_info("reload: %s", o->set);
                    apply_with_state(nl, o, o->set, 0);
                }
                if (si.ssi_signo == SIGUSR1) {
                    unsigned long sent = 0, dropped = 0;
                    if (ev)
                        fw_events_counts(ev, &sent, &dropped);
                    long deadline = fw_state_pending(o->state);
                    log_info("stats: events sent=%lu dropped=%lu; %s", sent, dropped,
                             deadline ? "a change is pending confirmation" : "nothing pending");
                }
            }
        }
        if (ev && n > 0) {
            if (p[1].revents & POLLIN)
                fw_events_handle(ev, nflog_fd);
            if (p[2].revents & POLLIN)
                fw_events_handle(ev, neigh_fd);
        }
        check_pending(nl, o->state);
    }
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    static const struct option lo[] = {
        { "set", required_argument, NULL, 's' },
        { "config", required_argument, NULL, 'c' },
        { "apply-once", required_argument, NULL, 'A' },
        { "diff", required_argument, NULL, 'D' },
        { "state", required_argument, NULL, 'S' },
        { "events", required_argument, NULL, 'E' },
        { "leases", required_argument, NULL, 'L' },
        { "confirm-timeout", required_argument, NULL, 'T' },
        { "confirm", no_argument, NULL, 'C' },
        { "full-read", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "nfh", lo, NULL)) != -1) {
        switch (c) {
        case 'n': o.check = 1; break;
        case 'c': o.config = optarg; break;
        case 'f': o.foreground = 1; break;
        case 's': o.set = optarg; break;
        case 'A': o.apply_once = optarg; break;
        case 'D': o.diff = optarg; break;
        case 'S': o.state = optarg; break;
        case 'E': o.events = optarg; break;
        case 'L': o.leases = optarg; break;
        case 'C': o.confirm = 1; break;
        case 'R': g_full_read = 1; break;
        case 'T': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 86400) {
                fprintf(stderr, "otasuke-fwd: --confirm-timeout: '%s' is not 1-86400 seconds\n", optarg);
                return 2;
            }
            o.confirm_timeout = (int)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    /* The box config (firewall section) supplies what flags leave out. Read when named
     * with --config, or for the daemon when the default file exists. */
    static struct ota_config cfg;
    cfg_defaults(&cfg);
    int daemon_mode = !(o.apply_once || o.diff || o.confirm || o.check);
    if (!o.config && daemon_mode && !o.set && access(CFG_PATH_DEFAULT, R_OK) == 0)
        o.config = CFG_PATH_DEFAULT;
    if (o.config) {
        char cerr[512];
        if (cfg_load(&cfg, o.config, cerr, sizeof cerr) < 0) {
            fprintf(stderr, "otasuke-fwd: %s\n", cerr);
            return 1;
        }
        if (!o.set)
            o.set = cfg.firewall.artifact;
        if (!o.state)
            o.state = cfg.firewall.state_dir;
        if (!o.events && daemon_mode)
            o.events = cfg.firewall.events;
    }
    if (!o.state)
        o.state = DEFAULT_STATE;
    g_state = o.state;
    int oneshot = o.apply_once || o.diff || o.confirm || o.check;
    log_init("otasuke-fwd", o.foreground || oneshot, LOG_LEVEL_INFO);
    char err[512];

    if (o.check) {
        const char *f = o.set ? o.set : o.apply_once ? o.apply_once : o.diff;
        if (!f) {
            fprintf(stderr, "otasuke-fwd: -n needs --set FILE (or --apply-once/--diff FILE)\n");
            return 2;
        }
        struct fwset s;
        if (fwset_open(&s, f, err, sizeof err) < 0) {
            fprintf(stderr, "otasuke-fwd: %s\n", err);
            return 1;
        }
        printf("%s: ok, %zu sets, %zu elements\n", f, s.n_sets, fwset_total_elems(&s));
        fwset_free(&s);
        return 0;
    }
    if (o.confirm) {
        int lk = fw_state_lock(o.state, err, sizeof err);
        if (lk < 0 || fw_state_confirm(o.state, err, sizeof err) < 0) {
            fprintf(stderr, "otasuke-fwd: confirm: %s\n", err);
            fw_state_unlock(lk);
            return 1;
        }
        fw_state_unlock(lk);
        printf("confirmed\n");
        return 0;
    }
    struct fw_nl nl;
    if (fw_nl_open(&nl, err, sizeof err) < 0) {
        fprintf(stderr, "otasuke-fwd: %s (needs CAP_NET_ADMIN)\n", err);
        return 1;
    }
    int rc = 0;
    if (o.diff) {
        struct fwset s;
        struct fw_stats st;
        if (fwset_open(&s, o.diff, err, sizeof err) < 0) {
            fprintf(stderr, "otasuke-fwd: %s\n", err);
            rc = 1;
        } else {
            struct fwset known;
            uint32_t kgen;
            int have_known = known_load(&known, &kgen);
            int drc = fw_apply(&nl, &s, have_known ? &known : NULL, kgen, 1, stdout, &st, err,
                               sizeof err);
            if (have_known)
                fwset_free(&known);
            if (drc < 0) {
                fprintf(stderr, "otasuke-fwd: diff: %s\n", err);
                rc = 1;
            } else {
                printf("writes: %zu (elements %s)\n", st.writes,
                       st.trusted ? "from the last commit, generation unchanged" : "read from the kernel");
            }
            fwset_free(&s);
        }
    } else if (o.apply_once) {
        rc = apply_with_state(&nl, &o, o.apply_once, 1) < 0 ? 1 : 0;
    } else {
        if (!o.set) {
            fprintf(stderr, "otasuke-fwd: the daemon needs --set FILE\n");
            rc = 2;
        } else {
            rc = run_daemon(&nl, &o);
        }
    }
    fw_nl_close(&nl);
    return rc;
}
