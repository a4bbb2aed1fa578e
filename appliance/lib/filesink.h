/* Downloads that go to disk instead of the heap: an anonymous file in a state directory
 * and a libcurl write callback into it, bounded like a growbuf. A million-entry feed
 * document is ~140 MB; the agent's whole budget is 64 MB, so every feed download (a
 * subscription or the hub's shared feed) lands here and is then verified and parsed in
 * chunks (feed_verify_fd, feed_foreach_entry_fd). */
#ifndef OTASUKE_FILESINK_H
#define OTASUKE_FILESINK_H

#include <stddef.h>
#include <stdint.h>

struct filesink {
    int fd;              /* where the body goes (caller opens and closes it) */
    uint64_t max;        /* most bytes accepted; 0 = no bound */
    uint64_t written;    /* bytes written so far */
    int over;            /* set when a write would have passed max */
    int write_errno;     /* why a write failed (ENOSPC: the disk is full), 0 if none did */
};

/* Creates an anonymous file in dir (O_TMPFILE, else mkstemp + unlink): nothing is left
 * behind whatever happens to the process. Returns the fd (caller closes) or -1, errno set. */
int filesink_tmpfile(const char *dir);

/* Appends n bytes to s->fd. Returns 0, or -1 with s->over or s->write_errno set. */
int filesink_write(struct filesink *s, const void *p, size_t n);

/* libcurl write callback, CURLOPT_WRITEDATA = struct filesink *. Returning less than it
 * was given aborts the transfer, which is what a full disk or passing max must do. */
size_t filesink_curl_write(char *p, size_t size, size_t n, void *filesink);

/* What the owner reads after strerror(write_errno): for a full disk, that the update is
 * refused and the last good lists keep protecting; "" for other errors. Static string. */
const char *filesink_hint(int write_errno);

/* Resets s for a new download into the same fd: truncates the file to 0 bytes. 0 or -1. */
int filesink_rewind(struct filesink *s);

#endif
