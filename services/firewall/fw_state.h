/* Commit-confirmed state directory of otasuke-fwd (layout in fw_state.c). */
#ifndef OTASUKE_FW_STATE_H
#define OTASUKE_FW_STATE_H

#include <stddef.h>

/* Creates dir if needed and takes its exclusive lock (blocks). Returns the lock fd or -1. */
int fw_state_lock(const char *dir, char *err, size_t errlen);
void fw_state_unlock(int fd);
/* Copies src to dst with tmp + fsync + rename. */
int fw_state_copy(const char *src, const char *dst, char *err, size_t errlen);
/* Records that newset is being applied until deadline (epoch seconds); keeps the
 * current applied.set as the rollback point. Call before applying. */
int fw_state_begin_pending(const char *dir, const char *newset, long deadline,
                           char *err, size_t errlen);
/* Deadline of the pending change, 0 when nothing is pending. */
long fw_state_pending(const char *dir);
/* Makes the pending artifact the applied one. -1 + err when nothing is pending. */
int fw_state_confirm(const char *dir, char *err, size_t errlen);
/* After the rollback artifact was applied: forget the pending change. */
int fw_state_finish_rollback(const char *dir, char *err, size_t errlen);
/* Records set as the confirmed, applied artifact. */
int fw_state_set_applied(const char *dir, const char *set, char *err, size_t errlen);
void fw_state_path(const char *dir, const char *name, char *out, size_t n);

#endif
