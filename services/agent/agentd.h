/* The running agent: event loop state shared by the API, feeds and compile. */
#ifndef OTASUKE_AGENTD_H
#define OTASUKE_AGENTD_H

#include "agent.h"

#include <stdint.h>

struct MHD_Daemon;
struct ota_config;
struct feed_job;
struct agentd_hub;

struct agentd_counters {
    uint64_t api_requests, api_errors;
    uint64_t compiles, compile_errors;
    uint64_t feed_fetches, feed_not_modified, feed_refusals, feed_errors;
    double last_compile_seconds;
    uint64_t last_domains, last_fw_elems;
    uint64_t events, events_bad;
};

struct agentd {
    sqlite3 *db;
    const char *db_path, *socket_path, *state_dir;
    const char *dnsd_pidfile, *fwd_pidfile, *dnsd_control;
    int listen_fd;
    const char *events_path;
    const struct ota_config *cfg;  /* --config: zones for fw.set and client groups; NULL */
    struct feed_job *job;    /* the feed download running on the worker, or NULL */
    int job_pipe[2];         /* the worker writes a byte to [1] when done; -1 if none */
    struct agentd_hub *hub;  /* --hub: the hub client thread, or NULL */
    const char *hub_dir;     /* --hub DIR, or one the owner enrolled from the UI; NULL */
    int hub_fd;              /* readable when the hub thread hands over a document; -1 */
    int events_fd;           /* -1 without --events */
    struct MHD_Daemon *mhd;
    int dirty;               /* policy changed since the last compile */
    int delta_dirty;         /* only feed deltas since: an overlay compile is enough */
    int feeds_due_now;       /* refresh every feed at the next tick (SIGHUP, API) */
    int64_t started;
    int64_t last_compile;    /* time of the last successful compile */
    int64_t policy_sig_at;   /* last time the time-dependent policy was checked */
    uint64_t policy_sig;     /* hash of time-dependent state (schedules, expiries) */
    char last_compile_error[AGENT_ERR];
    struct agentd_counters n;
};

/* api.c: creates the unix socket (0660) and starts libmicrohttpd on it in external-select
 * mode. Returns 0 or -1 with err. */
int agentd_api_start(struct agentd *ad, char *err, size_t errlen);
/* Waits for API activity at most timeout_ms and serves what arrived. */
void agentd_api_poll(struct agentd *ad, int timeout_ms);
void agentd_api_stop(struct agentd *ad);

/* events.c: the datagram socket dnsd and fwd send events to (--events). */
int agentd_events_open(struct agentd *ad, char *err, size_t errlen);
void agentd_events_read(struct agentd *ad);
void agentd_events_close(struct agentd *ad);
/* Applies one event (JSON object) to the inventory; cfg (may be NULL) names the WAN
 * interface whose neighbours are not devices. Returns 0, or -1 with err for a malformed
 * event. Exposed for tests and the fuzzer. */
int agentd_event_apply(sqlite3 *db, const struct ota_config *cfg, const char *msg, size_t len,
                       int64_t now, char *err, size_t errlen);

/* hubfeed.c: --hub DIR (an enrolled hubclient state dir). Starts the thread that
 * follows the hub's feed (MQTT + HTTPS); its documents land in the feed row "hub".
 * Returns 0 or -1 with err (not enrolled, unreadable state). */
int agentd_hub_start(struct agentd *ad, const char *dir, char *err, size_t errlen);
/* Called when hub_fd is readable: applies the handed-over document, answers the thread. */
void agentd_hub_handle(struct agentd *ad, int64_t now);
/* Stops the hub threads (feed, heartbeat, sharing) and frees them; sharing counts not yet
 * sent are saved. Returns 0, or -1 when a thread did not end within a few seconds (stuck
 * in a network call): the caller must then end the process without running exit
 * handlers under its feet. */
int agentd_hub_stop(struct agentd *ad);
/* Refreshes what the next heartbeat carries (open incidents, counters); cheap, at most
 * every 10 s. Does nothing without --hub. Main thread only (it reads the database). */
void agentd_hub_snapshot(struct agentd *ad, int64_t now);

/* Compiles only what feed deltas changed since the last full compile into
 * domains.set.overlay (and fw.set if addresses changed), then reloads the daemons.
 * Returns 0, 1 when a full compile is needed instead (too many changes, a new list,
 * no change log), or -1 with err. */
int agentd_compile_delta(struct agentd *ad, int64_t now, char *err, size_t errlen);

/* tick.c: refreshes due feeds, notices schedule / expiry boundaries, compiles when dirty. */
void agentd_tick(struct agentd *ad, int64_t now);
/* Milliseconds until the next thing agentd_tick has to do (capped at 1000). */
int agentd_next_wake_ms(struct agentd *ad, int64_t now);

/* compile.c: builds domains.set, policy.set and fw.set in the state dir and signals the
 * daemons. Returns 0 or -1 with err (the old artifacts stay in place). */
int agentd_compile(struct agentd *ad, int64_t now, char *err, size_t errlen);
/* Replaces the zone_networks table with the networks of cfg's zones that name a group
 * (cfg NULL: empties it). Returns 0 or -1 with err. */
int agentd_zones_sync(sqlite3 *db, const struct ota_config *cfg, char *err, size_t errlen);
/* Hash of everything time-dependent in the policy at now (active schedules, live rules,
 * live grants, live feed entries count): when it changes, a compile is due. */
uint64_t agentd_policy_signature(sqlite3 *db, int64_t now);

/* feeds.c */
/* Adds a subscription. kind "signed" (pubkey base64 + feed_id required) or "list"
 * (category required). Returns the id or -1 with err naming the field. */
int64_t agentd_feed_add(sqlite3 *db, const char *who, const char *name, const char *url,
                        const char *kind, const char *feed_id, const char *pubkey,
                        const char *category, int64_t max_bytes, char *err, size_t errlen);
int agentd_feed_delete(sqlite3 *db, const char *who, const char *name, char *err,
                       size_t errlen);
/* Enables (1) / disables (0) a feed (-1 = unchanged) and sets its size limit (0 =
 * unchanged). Audited. Returns 0 or -1 with err naming the field. */
int agentd_feed_set(sqlite3 *db, const char *who, const char *name, int enabled,
                    int64_t max_bytes, char *err, size_t errlen);
/* Fetches and applies one feed now. Returns 1 when new content was applied, 0 when
 * nothing changed, -1 on refusal or error (recorded on the feed row, old entries kept). */
int agentd_feed_refresh(struct agentd *ad, int64_t feed_id, int64_t now, char *err,
                        size_t errlen);
/* Applies a fetched document (+ signature) to a feed: verify, then replace / patch its
 * entries in one transaction. Same returns as agentd_feed_refresh. */
int agentd_feed_apply(sqlite3 *db, int64_t feed_id, const char *doc, size_t len,
                      const char *sig, size_t siglen, int64_t now, char *err, size_t errlen);
/* The same with the document in a file (read in chunks, never held whole): what the
 * agent's own downloads use. */
int agentd_feed_apply_fd(sqlite3 *db, int64_t feed_id, int fd, const char *sig,
                         size_t siglen, int64_t now, char *err, size_t errlen);
/* Applies a document in the file fd that someone already verified (the hub client did:
 * pinned key, feed id, seq, expiry) in one transaction, reading it in chunks. Returns 1
 * or -1 with err (bad entry, storage: nothing kept). */
struct feed_manifest;
int agentd_feed_apply_verified(sqlite3 *db, int64_t feed_id, int fd,
                               const struct feed_manifest *m, int64_t now, char *err,
                               size_t errlen);
/* After a delta: the feeds' entry counts and the WAL checkpoint its commit skipped.
 * Cheap when nothing is pending; the tick calls it once the compile is done. */
void agentd_feeds_maintain(sqlite3 *db);
/* Starts the download of the most overdue feed on the worker thread (one at a time;
 * feeds_due_now makes every feed due). Returns 1 if something was applied in place
 * (no worker available), else 0. */
int agentd_feeds_due(struct agentd *ad, int64_t now);
/* Called when job_pipe[0] is readable: joins the worker and applies its download.
 * Returns like agentd_feed_refresh. */
int agentd_feeds_job_done(struct agentd *ad, int64_t now);
/* Seconds until the next feed is due (>= 0), or -1 when none. */
int64_t agentd_feeds_next(sqlite3 *db, int64_t now);

#endif
