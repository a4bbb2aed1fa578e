/* Backup / restore of the owner policy as versioned JSON (see backup.c). */
#ifndef OTASUKE_AGENT_BACKUP_H
#define OTASUKE_AGENT_BACKUP_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

#define BACKUP_FORMAT "otasuke-backup/1"

/* The whole policy as a new JSON object; *status 200, or 500 with an error object. */
json_t *backup_export(sqlite3 *db, unsigned *status);
/* Validates body completely, then replaces the policy in one transaction. Returns the
 * answer object; *status 200, or 400 with {"error","field"} and nothing changed. */
json_t *backup_restore(sqlite3 *db, const char *body, size_t len, unsigned *status);

#endif
