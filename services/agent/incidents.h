/* Incidents: findings from detect.c (and owner reports) grouped into one incident per
 * device + kind window, with counts, severity (detector x device importance), a
 * lifecycle open -> acknowledged -> help_requested -> helper_connected -> resolved and a
 * timeline of every event and action. Tables: migration 4 in db.c. */
#ifndef OTASUKE_INCIDENTS_H
#define OTASUKE_INCIDENTS_H

#include "agent.h"
#include "detect.h"

#define INCIDENT_WINDOW 3600      /* a finding joins an unresolved incident touched this recently */
#define INCIDENT_TIMELINE_MAX 200 /* detections kept per incident; later ones only counted */

struct agentd;

/* Records one finding at now: joins the device+kind incident of the window (count + 1,
 * new indicator remembered, timeline row) or opens a new one. *id gets the incident id.
 * Returns 1 when a new incident was opened, 0 when aggregated, -1 with err. */
int incident_record(sqlite3 *db, const struct detect_finding *f, int64_t now, int64_t *id,
                    char *err, size_t errlen);

/* Moves an incident to state (acknowledged|help_requested|helper_connected|resolved),
 * with a timeline row and an audit row by who. Refuses going backwards or leaving
 * resolved. Returns 0 or -1 with err. */
int incident_transition(sqlite3 *db, int64_t id, const char *who, const char *state,
                        const char *note, int64_t now, char *err, size_t errlen);

/* Adds an action / note row to the timeline. Returns 0 or -1. */
int incident_note(sqlite3 *db, int64_t id, const char *who, const char *what,
                  const char *detail, int64_t now);

/* The owner reports something himself ("this email looked wrong"): opens an owner_report
 * incident with his note. Returns the id or -1 with err. */
int64_t incident_self_report(sqlite3 *db, const char *who, const char *device,
                             const char *note, int64_t now, char *err, size_t errlen);
/* The thank-you shown to someone who reported (static text). lang "ja" or "en". */
const char *incident_thanks(const char *lang);

/* Incidents newest first (state NULL = all). New reference or NULL with err. */
json_t *incident_list(sqlite3 *db, const char *state, char *err, size_t errlen);
/* One incident with its timeline, plain-language texts (en + ja) and quarantine state.
 * NULL with err (404-like "no incident N" when missing). */
json_t *incident_get(sqlite3 *db, int64_t id, char *err, size_t errlen);

/* The blameless post-incident report: format "md" or "html", lang "en" or "ja".
 * Returns a malloc'd text (caller frees) or NULL with err. */
char *incident_report(sqlite3 *db, int64_t id, const char *format, const char *lang,
                      int64_t now, char *err, size_t errlen);

/* Quarantine (on = 1) or release (on = 0) the incident's device: a row in quarantine,
 * compiled into fw.set's quarantine set. The caller marks the policy dirty. Returns 0 or
 * -1 with err (nothing to quarantine: the box itself, unknown device). */
int incident_contain(sqlite3 *db, int64_t id, const char *who, int on, int64_t now,
                     char *err, size_t errlen);
/* Adds the quarantined addresses to l (for compile.c). Returns the count or -1. */
struct iplist;
int incident_quarantine_list(sqlite3 *db, struct iplist *l, char *err, size_t errlen);

/* Plain-language title and advice for a kind. lang "ja" or "en". Static strings. */
const char *incident_title(const char *kind, const char *lang);
const char *incident_advice(const char *kind, const char *lang);

/* Severity name from detector kind and device importance (1..5): low|medium|high|critical;
 * *score gets kind weight x importance (1..25). */
const char *incident_severity(const char *kind, int importance, int *score);

/* The agent's hook for every event datagram (events.c): runs the detectors and records
 * findings, notifies, auto-quarantines high-confidence C2 when the owner enabled it
 * (setting auto_quarantine=1; marks ad->dirty). Never fails the event path. */
void incidents_on_event(struct agentd *ad, const char *msg, size_t len, int64_t now);
/* At start and when the owner changed detect_* settings: the detectors take the new
 * thresholds now, and dnsd's query-event thresholds (STATE_DIR/query-events.json, read
 * at dnsd's reload) follow them; a changed file marks ad->dirty for that reload. */
void incidents_settings_changed(struct agentd *ad);
/* Periodic checks from the tick (feeds stale, box health); at most once a minute. */
void incidents_tick(struct agentd *ad, int64_t now);

/* incidents_api.c: serves /v1/incidents...; returns 1 when the path was ours (status and
 * out/text filled), 0 to let api_route go on. */
struct api_call;
int incidents_route(struct api_call *c);

#endif
