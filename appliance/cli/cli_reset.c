/* otasukectl factory-reset: deletes every owner datum and key and returns the box to
 * its first-boot state (ETSI EN 303 645 5.11, JC-STAR "user data can be erased").
 *
 *   otasukectl factory-reset [--yes] [--config FILE] [--no-services]
 *
 * What goes: everything inside box.state_dir (policy database, compiled artifacts, box
 * keys, hub enrolment, webd's TLS key, fwd's rollback state) and box.run_dir (sockets),
 * the files the config names outside those directories (agent database, web cert/key,
 * artifacts, fwd state), and /etc/otasuke/otasuke.conf, which is put back to the copy
 * the package shipped (/usr/share/otasuke/otasuke.conf). Then the directories are made
 * again with their owners and modes (systemd-tmpfiles), and the daemons are started so
 * the agent begins again as on first boot (new keys, new setup code).
 *
 * Under systemd the otasuke units are stopped first and started afterwards; the boot
 * option (otasuke-factory-reset.service, kernel command line otasuke.factory_reset=1)
 * runs this with --no-services before any of them starts. Deletion never follows a
 * symbolic link and never crosses into another mounted file system. */
#include "cli.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define RESET_PRISTINE_CONF "/usr/share/otasuke/otasuke.conf"
#define RESET_TMPFILES      "otasuke.conf"

/* The units in the order they are stopped; started again in reverse (agent first). */
static const char *const reset_units[] = {
    "otasuke-dnsd-reload.path", "otasuke-fwd-reload.path", "otasuke-webd.service",
    "otasuke-dnsd.service", "otasuke-fwd.service", "otasuke-agent.service",
};
#define N_UNITS (sizeof reset_units / sizeof reset_units[0])

/* nftw() has no user pointer; one reset runs per process. */
static struct {
    int removed, failed;
} walk;

static int reset_unlink_cb(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    if (f->level == 0)
        return 0;                       /* the directory itself stays (tmpfiles owns it) */
    int rc = (type == FTW_DP || type == FTW_D) ? rmdir(path) : unlink(path);
    if (rc < 0 && errno != ENOENT) {
        fprintf(stderr, "otasukectl: factory-reset: cannot delete %s: %s\n", path,
                strerror(errno));
        walk.failed++;
    } else if (rc == 0) {
        walk.removed++;
    }
    return 0;                           /* keep going: delete as much as possible */
}

/* A directory we may empty: absolute, not the root nor a system directory. A mistyped
 * state_dir must never turn a reset into "rm -rf /var". */
static int reset_dir_ok(const char *dir)
{
    static const char *const system_dirs[] = {
        "/", "/etc", "/usr", "/var", "/var/lib", "/run", "/tmp", "/home", "/root", "/boot",
        "/srv", "/opt", "/bin", "/sbin", "/lib", "/dev", "/proc", "/sys",
    };
    if (dir[0] != '/' || strstr(dir, "/../") || strstr(dir, "/./"))
        return 0;
    char norm[CFG_PATH_MAX];
    snprintf(norm, sizeof norm, "%s", dir);
    size_t n = strlen(norm);
    while (n > 1 && norm[n - 1] == '/')
        norm[--n] = '\0';
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++)
        if (strcmp(norm, system_dirs[i]) == 0)
            return 0;
    return 1;
}

/* Empties dir (keeps dir). Returns the number of entries that could not be deleted. */
static int reset_empty_dir(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) < 0)
        return errno == ENOENT ? 0 : 1;
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "otasukectl: factory-reset: %s is not a directory; left alone\n", dir);
        return 1;
    }
    if (!reset_dir_ok(dir)) {
        fprintf(stderr, "otasukectl: factory-reset: refusing to empty %s (a system directory;"
                " check box.state_dir / box.run_dir in the config)\n", dir);
        return 1;
    }
    int before = walk.failed;
    if (nftw(dir, reset_unlink_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0) {
        fprintf(stderr, "otasukectl: factory-reset: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    return walk.failed - before;
}

/* Deletes one named file (a path from the config that may live outside state_dir). */
static int reset_file(const char *path)
{
    if (!path[0])
        return 0;
    if (unlink(path) == 0) {
        walk.removed++;
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    fprintf(stderr, "otasukectl: factory-reset: cannot delete %s: %s\n", path, strerror(errno));
    walk.failed++;
    return 1;
}

/* Runs argv (absolute path, no shell). Returns its exit status, or -1 if it could not run. */
static int reset_run(char *const argv[])
{
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "otasukectl: factory-reset: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *reset_find(const char *const *candidates)
{
    for (; *candidates; candidates++)
        if (access(*candidates, X_OK) == 0)
            return *candidates;
    return NULL;
}

static int reset_systemctl(const char *verb)
{
    static const char *const where[] = { "/bin/systemctl", "/usr/bin/systemctl", NULL };
    const char *sc = reset_find(where);
    if (!sc)
        return -1;
    char *argv[N_UNITS + 4];
    int n = 0;
    argv[n++] = (char *)sc;
    argv[n++] = (char *)verb;
    for (size_t i = 0; i < N_UNITS; i++)
        argv[n++] = (char *)reset_units[strcmp(verb, "stop") == 0 ? i : N_UNITS - 1 - i];
    argv[n] = NULL;
    return reset_run(argv);
}

/* Copies the shipped config over the live one: write a temporary file, fsync, rename,
 * so a power cut leaves either the owner's file or the default, never half of one. */
static int reset_config(const char *live)
{
    FILE *in = fopen(RESET_PRISTINE_CONF, "r");
    if (!in) {
        if (errno == ENOENT)
            return 0;                   /* not installed from the package: nothing to restore */
        fprintf(stderr, "otasukectl: factory-reset: %s: %s\n", RESET_PRISTINE_CONF,
                strerror(errno));
        return 1;
    }
    char tmp[CFG_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.reset", live);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0;
    char buf[8192];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = write(fd, buf, n) == (ssize_t)n;
    ok = ok && !ferror(in) && fsync(fd) == 0;
    if (fd >= 0 && close(fd) < 0)
        ok = 0;
    fclose(in);
    if (!ok || rename(tmp, live) < 0) {
        fprintf(stderr, "otasukectl: factory-reset: cannot restore %s: %s\n", live,
                strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

static int reset_confirmed(void)
{
    if (!isatty(STDIN_FILENO))
        return 0;
    fprintf(stderr, "This deletes the owner's policy, accounts, keys, hub enrolment and the\n"
                    "box's configuration, and restarts otasuke as on first boot.\n"
                    "Type RESET to continue: ");
    char line[32];
    if (!fgets(line, sizeof line, stdin))
        return 0;
    line[strcspn(line, "\n")] = '\0';
    return strcmp(line, "RESET") == 0;
}

int cli_factory_reset(int argc, char **argv)
{
    const char *conf = CFG_PATH_DEFAULT;
    int yes = 0, services = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0)
            yes = 1;
        else if (strcmp(argv[i], "--no-services") == 0)
            services = 0;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            conf = argv[++i];
        else
            return cli_usage("factory-reset [--yes] [--config FILE] [--no-services]");
    }
    if (geteuid() != 0)
        return cli_fail("factory-reset: must run as root (the data belongs to several "
                        "system users)");

    /* A broken config must not stop a reset: fall back to the built-in paths, which are
     * where the packaged box keeps its data. */
    struct ota_config cfg;
    char err[512];
    if (access(conf, F_OK) == 0 && cfg_load(&cfg, conf, err, sizeof err) < 0) {
        fprintf(stderr, "otasukectl: factory-reset: %s; using the built-in paths\n", err);
        cfg_defaults(&cfg);
    } else if (access(conf, F_OK) != 0) {
        cfg_defaults(&cfg);
    }

    if (!yes && !reset_confirmed())
        return cli_usage("factory-reset: not confirmed (type RESET at the prompt, or pass "
                         "--yes); nothing was deleted");

    int systemd = services && access("/run/systemd/system", F_OK) == 0;
    if (systemd && reset_systemctl("stop") != 0)
        fprintf(stderr, "otasukectl: factory-reset: stopping the otasuke units failed; "
                        "deleting anyway\n");

    int bad = 0;
    bad += reset_empty_dir(cfg.box.state_dir);
    bad += reset_empty_dir(cfg.box.run_dir);
    const char *files[] = { cfg.agent.database, cfg.web.cert, cfg.web.key, cfg.dns.domains,
                            cfg.dns.policy, cfg.firewall.artifact };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        bad += reset_file(files[i]);
    size_t sl = strlen(cfg.box.state_dir);
    if (strncmp(cfg.firewall.state_dir, cfg.box.state_dir, sl) != 0 ||
        cfg.firewall.state_dir[sl] != '/')
        bad += reset_empty_dir(cfg.firewall.state_dir);
    bad += reset_config(conf);

    /* The directories again, with owners and modes (systemd-tmpfiles reads our file). */
    static const char *const tmpfiles_at[] = { "/bin/systemd-tmpfiles",
                                               "/usr/bin/systemd-tmpfiles", NULL };
    const char *tf = reset_find(tmpfiles_at);
    if (tf) {
        char *targv[] = { (char *)tf, "--create", RESET_TMPFILES, NULL };
        if (reset_run(targv) != 0) {
            fprintf(stderr, "otasukectl: factory-reset: systemd-tmpfiles --create %s failed\n",
                    RESET_TMPFILES);
            bad++;
        }
    }
    if (systemd && reset_systemctl("start") != 0) {
        fprintf(stderr, "otasukectl: factory-reset: starting the otasuke units failed; "
                        "see 'systemctl status otasuke-agent'\n");
        bad++;
    }

    printf("{\"deleted\":%d,\"failed\":%d,\"services_restarted\":%s}\n", walk.removed, bad,
           systemd ? "true" : "false");
    if (bad)
        return cli_fail("factory-reset: %d item(s) could not be reset (see above); run it "
                        "again once fixed", bad);
    return 0;
}
