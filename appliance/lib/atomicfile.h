/* Replacing a file so that a crash or power loss at any moment leaves either the old
 * content or the new, never a mix: write PATH.tmp.PID, fsync it, rename over PATH, fsync
 * the directory (without that last step the rename itself may not survive power loss).
 * Every artifact (domains.set, policy.set, fw.set), state file and key goes through here. */
#ifndef OTASUKE_ATOMICFILE_H
#define OTASUKE_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

struct atomic_file {
    int fd;
    char tmp[4096];
    char path[4096];
};

/* Creates the temporary file next to path with the given mode. Returns 0 or -1 with err. */
int atomic_open(struct atomic_file *f, const char *path, mode_t mode, char *err, size_t errlen);

/* Writes all of buf (retrying short writes and EINTR). Returns 0 or -1 with err; after a
 * failure call atomic_abort. */
int atomic_write(struct atomic_file *f, const void *buf, size_t len, char *err, size_t errlen);

/* fsync, close, rename over the target, fsync the directory. Returns 0 or -1 with err;
 * on failure the temporary file is removed and the old target is untouched. */
int atomic_commit(struct atomic_file *f, char *err, size_t errlen);

/* Drops the temporary file; the target is untouched. Safe to call twice. */
void atomic_abort(struct atomic_file *f);

/* The whole dance for data already in memory. Returns 0 or -1 with err. */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      char *err, size_t errlen);

/* Removes the temporary files (NAME.tmp.PID) that a writer killed mid-way (power loss,
 * kill -9) left in dir: those whose PID is no running process, or a process that started
 * after the file was last written (a PID reused after a reboot). Not recursive. Returns
 * how many were removed, or -1 when dir cannot be read. Call at start-up. */
int atomic_sweep(const char *dir);

/* fsyncs the directory holding path, making a rename or unlink in it durable.
 * Returns 0 or -1 (errno set). */
int atomic_sync_dir(const char *path);

#endif
