/* Commit-confirmed state on disk, so a pending change survives a fwd restart.
 *
 * STATE/applied.set    the last confirmed artifact (what a restart reconciles to)
 * STATE/pending.set    the artifact applied under a deadline, not confirmed yet
 * STATE/rollback.set   what to go back to (absent: the box had no table of ours)
 * STATE/pending        "DEADLINE_EPOCH\n" — present exactly while a change is pending
 * Every file is written tmp + fsync + rename; `pending` is written last and removed
 * first, so a crash never leaves a deadline without its rollback artifact. */
#include "fw_state.h"
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void path_in(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", dir, name);
}

int fw_state_lock(const char *dir, char *err, size_t errlen)
{
    char p[4096];
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "state dir %s: %s", dir, strerror(errno));
        return -1;
    }
    path_in(dir, "lock", p, sizeof p);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX) < 0) {
        snprintf(err, errlen, "%s: lock: %s", p, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void fw_state_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* Copies src to dst atomically. Returns 0 or -1 + err. */
int fw_state_copy(const char *src, const char *dst, char *err, size_t errlen)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "%s: %s", src, strerror(errno));
        return -1;
    }
    struct atomic_file out;
    if (atomic_open(&out, dst, 0640, err, errlen) < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (atomic_write(&out, buf, (size_t)r, err, errlen) < 0)
            break;
    int read_errno = r < 0 ? errno : 0;
    close(in);
    if (r != 0) {
        atomic_abort(&out);
        if (read_errno)
            snprintf(err, errlen, "copying %s to %s: %s", src, dst, strerror(read_errno));
        return -1;
    }
    return atomic_commit(&out, err, errlen);
}

static int write_small(const char *path, const char *text, char *err, size_t errlen)
{
    return atomic_write_file(path, text, strlen(text), 0640, err, errlen);
}

int fw_state_begin_pending(const char *dir, const char *newset, long deadline,
                           char *err, size_t errlen)
{
    char applied[4096], rollback[4096], pend[4096], pendset[4096], text[64];
    path_in(dir, "applied.set", applied, sizeof applied);
    path_in(dir, "rollback.set", rollback, sizeof rollback);
    path_in(dir, "pending", pend, sizeof pend);
    path_in(dir, "pending.set", pendset, sizeof pendset);
    if (access(pend, F_OK) == 0) {
        /* a second change while one is pending keeps the original rollback point */
    } else if (access(applied, F_OK) == 0) {
        if (fw_state_copy(applied, rollback, err, errlen) < 0)
            return -1;
    } else {
        unlink(rollback);
    }
    if (fw_state_copy(newset, pendset, err, errlen) < 0)
        return -1;
    snprintf(text, sizeof text, "%ld\n", deadline);
    return write_small(pend, text, err, errlen);
}

long fw_state_pending(const char *dir)
{
    char pend[4096], text[64] = { 0 };
    path_in(dir, "pending", pend, sizeof pend);
    int fd = open(pend, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, text, sizeof text - 1);
    close(fd);
    if (r <= 0)
        return 0;
    long d = strtol(text, NULL, 10);
    return d > 0 ? d : 1;
}

int fw_state_confirm(const char *dir, char *err, size_t errlen)
{
    char applied[4096], pend[4096], pendset[4096];
    path_in(dir, "applied.set", applied, sizeof applied);
    path_in(dir, "pending", pend, sizeof pend);
    path_in(dir, "pending.set", pendset, sizeof pendset);
    if (access(pend, F_OK) != 0) {
        snprintf(err, errlen, "nothing is pending in %s", dir);
        return -1;
    }
    if (rename(pendset, applied) < 0) {
        snprintf(err, errlen, "%s: %s", pendset, strerror(errno));
        return -1;
    }
    if (unlink(pend) < 0) {
        snprintf(err, errlen, "%s: %s", pend, strerror(errno));
        return -1;
    }
    return 0;
}

int fw_state_finish_rollback(const char *dir, char *err, size_t errlen)
{
    char applied[4096], rollback[4096], pend[4096], pendset[4096];
    path_in(dir, "applied.set", applied, sizeof applied);
    path_in(dir, "rollback.set", rollback, sizeof rollback);
    path_in(dir, "pending", pend, sizeof pend);
    path_in(dir, "pending.set", pendset, sizeof pendset);
    if (unlink(pend) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", pend, strerror(errno));
        return -1;
    }
    unlink(pendset);
    if (access(rollback, F_OK) == 0)
        return rename(rollback, applied) < 0 ? -1 : 0;
    unlink(applied);
    return 0;
}

int fw_state_set_applied(const char *dir, const char *set, char *err, size_t errlen)
{
    char applied[4096];
    path_in(dir, "applied.set", applied, sizeof applied);
    if (strcmp(set, applied) == 0)
        return 0;
    return fw_state_copy(set, applied, err, errlen);
}

void fw_state_path(const char *dir, const char *name, char *out, size_t n)
{
    path_in(dir, name, out, n);
}
