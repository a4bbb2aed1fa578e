/* See filesink.h. Writes go straight to the kernel (no stdio buffer): libcurl already
 * hands over up to 16 KiB at a time, and a write error must be seen at once so the
 * transfer stops instead of downloading the rest of a document that cannot be kept. */
#include "filesink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int filesink_tmpfile(const char *dir)
{
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
#endif
    /* file systems without O_TMPFILE (some overlay and network ones) */
    char path[4200];
    if (snprintf(path, sizeof path, "%s/download.XXXXXX", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int tfd = mkostemp(path, O_CLOEXEC);
    if (tfd >= 0)
        unlink(path);
    return tfd;
}

int filesink_write(struct filesink *s, const void *p, size_t n)
{
    if (s->max && s->written + n > s->max) {
        s->over = 1;
        return -1;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(s->fd, (const char *)p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->write_errno = w < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)w;
    }
    s->written += n;
    return 0;
}

size_t filesink_curl_write(char *p, size_t size, size_t n, void *filesink)
{
    return filesink_write(filesink, p, size * n) == 0 ? size * n : 0;
}

const char *filesink_hint(int write_errno)
{
    return write_errno == ENOSPC
        ? " (the disk is full: the update is refused, the last good lists keep protecting)"
        : "";
}

int filesink_rewind(struct filesink *s)
{
    s->written = 0;
    s->over = 0;
    s->write_errno = 0;
    if (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0)
        return -1;
    return 0;
}
