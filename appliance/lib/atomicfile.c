#include "atomicfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"

int atomic_open(struct atomic_file *f, const char *path, mode_t mode, char *err, size_t errlen)
{
    f->fd = -1;
    if ((size_t)snprintf(f->path, sizeof f->path, "%s", path) >= sizeof f->path ||
        (size_t)snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof f->tmp)
        return errbuf_set(err, errlen, "%s: path too long", path);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (f->fd < 0)
        return errbuf_set(err, errlen, "%s: cannot create: %s", f->tmp, strerror(errno));
    /* open() applies the umask; artifacts and keys must get exactly the mode asked for. */
    if (fchmod(f->fd, mode) < 0) {
        int e = errno;
        atomic_abort(f);
        return errbuf_set(err, errlen, "%s: cannot set mode: %s", path, strerror(e));
    }
    return 0;
}

int atomic_write(struct atomic_file *f, const void *buf, size_t len, char *err, size_t errlen)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return errbuf_set(err, errlen, "%s: write failed: %s", f->tmp,
                              n < 0 ? strerror(errno) : "no progress");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int atomic_sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

int atomic_commit(struct atomic_file *f, char *err, size_t errlen)
{
    if (fsync(f->fd) < 0) {
        int e = errno;
        atomic_abort(f);
        return errbuf_set(err, errlen, "%s: fsync: %s", f->tmp, strerror(e));
    }
    int rc = close(f->fd);
    f->fd = -1;
    if (rc < 0) {
        int e = errno;
        atomic_abort(f);
        return errbuf_set(err, errlen, "%s: close: %s", f->tmp, strerror(e));
    }
    if (rename(f->tmp, f->path) < 0) {
        int e = errno;
        atomic_abort(f);
        return errbuf_set(err, errlen, "%s: cannot replace: %s", f->path, strerror(e));
    }
    if (atomic_sync_dir(f->path) < 0)
        return errbuf_set(err, errlen, "%s: fsync of directory: %s", f->path, strerror(errno));
    return 0;
}

void atomic_abort(struct atomic_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp[0])
        unlink(f->tmp);
    f->tmp[0] = '\0';
}

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      char *err, size_t errlen)
{
    struct atomic_file f;
    if (atomic_open(&f, path, mode, err, errlen) < 0)
        return -1;
    if (atomic_write(&f, data, len, err, errlen) < 0) {
        atomic_abort(&f);
        return -1;
    }
    return atomic_commit(&f, err, errlen);
}

/* When this boot began, in seconds since the epoch: the wall clock minus the time since
 * boot (CLOCK_BOOTTIME), since /proc/stat's btime is hidden from sandboxed units
 * (ProcSubset=pid). */
static time_t boot_time(void)
{
    struct timespec now, up;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0 || clock_gettime(CLOCK_BOOTTIME, &up) != 0)
        return 0;
    return now.tv_sec - up.tv_sec;
}

/* When process pid started, in seconds since the epoch: boot (boot_time()) plus /proc/PID/stat's
 * starttime (clock ticks since boot, the 22nd field, counted after the command name's
 * closing parenthesis since the name may hold spaces). Returns 0, or -1 if it cannot be
 * read (e.g. another user's process under ProtectProc=invisible). */
static int process_start_time(long pid, time_t boot, time_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ticks = 0;
    /* after ")": state is field 3, starttime field 22, so 19 fields to skip */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &ticks) != 1)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0 || boot <= 0)
        return -1;
    *out = boot + (time_t)(ticks / (unsigned long long)hz);
    return 0;
}

/* Whether the writer of a NAME.tmp.PID file (stat st) may still be running. */
static int writer_may_live(long pid, const struct stat *st)
{
    /* Written before this boot: its writer died with the last one. The PID is likely
     * alive again, since boots start the same services in the same order. */
    time_t boot = boot_time();
    if (boot > 0 && st->st_mtime + 1 < boot)
        return 0;
    if (kill((pid_t)pid, 0) != 0) {
        if (errno == ESRCH)
            return 0;
        /* EPERM: another user's process. It cannot have written a file of ours. */
        return !(errno == EPERM && st->st_uid == geteuid() && geteuid() != 0);
    }
    /* A process of ours has that PID: the writer only if it started before the file
     * was last written (one second of slack for the clock ticks). */
    time_t started;
    if (process_start_time(pid, boot, &started) != 0)
        return 1;   /* cannot tell: leave the file */
    return started <= st->st_mtime + 1;
}

int atomic_sweep(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || t == e->d_name)
            continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (*end || pid <= 0 || end == t + 5)
            continue;   /* not ours: NAME.tmp.PID exactly */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || writer_may_live(pid, &st))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}
