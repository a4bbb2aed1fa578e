/* Calling for help: the incident and its evidence bundle go to the hub's help inbox
 * (POST /v1/help with the box token of the enrolled hub client). */
#ifndef OTASUKE_AGENT_HELP_H
#define OTASUKE_AGENT_HELP_H

#include "agent.h"

#define HELP_HUB_STATE_DEFAULT "/var/lib/otasuke/hub"

/* The request body for incident id: {"incident":{id, kind, severity, state, title_en,
 * title_ja, opened, updated, count}, "bundle":{timeline, device, indicators, counters,
 * box}, "note"}. Metadata only: no payloads and nothing about other devices. New
 * reference or NULL with err. */
json_t *help_bundle(sqlite3 *db, int64_t id, const char *note, char *err, size_t errlen);

/* Sends the bundle to the hub (hub client state in hub_state, NULL = the setting
 * hub_state or HELP_HUB_STATE_DEFAULT), then moves the incident to help_requested and
 * records the hub's request id. Returns the hub's request id or -1 with err. */
long long help_request(sqlite3 *db, const char *hub_state, int64_t id, const char *who,
                       const char *note, int64_t now, char *err, size_t errlen);

#define HELP_SESSION_MIN_S 10
#define HELP_SESSION_MAX_S (240 * 60)

/* help_session.c: with the owner's consent (consent != 0) opens the reverse tunnel of
 * ui_port to the hub's bastion for lifetime_s seconds (HELP_SESSION_MIN_S..MAX_S; the
 * API takes minutes, or seconds for short sessions), keys in work_dir/help. Returns the
 * bastion port the helper uses, or -1 with err (no consent, not enrolled, hub refusal). */
int help_session_start(sqlite3 *db, const char *hub_state, const char *work_dir, int64_t id,
                       const char *who, int consent, int lifetime_s, int ui_port, int64_t now,
                       char *err, size_t errlen);
/* Ends the incident's session now (reason for the audit). Returns 0 or -1 with err. */
int help_session_stop(sqlite3 *db, int64_t id, const char *who, const char *reason,
                      int64_t now, char *err, size_t errlen);
/* Ends expired sessions and records tunnels that closed by themselves. */
void help_session_tick(sqlite3 *db, int64_t now);

#endif
