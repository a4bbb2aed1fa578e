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
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;   /* a live writer (or one we may not signal): leave it */
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}
