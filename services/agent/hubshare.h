/* Sharing with the hub (hubshare.c): what this box blocked of threat categories, counted
 * per indicator and sent to the hub when the owner agreed, and the delegated policy
 * changes the hub relays, applied on the main thread under the owner's grants. */
#ifndef OTASUKE_AGENT_HUBSHARE_H
#define OTASUKE_AGENT_HUBSHARE_H

#include "feed.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HUBSHARE_CAP      10000   /* indicators kept while waiting to be sent */
#define HUBSHARE_BATCH    500     /* per request: the hub takes at most this many */
#define HUBSHARE_INTERVAL 30      /* seconds between contributions (setting overrides) */

/* One aggregated indicator: never a client address, never a query log. */
struct hubshare_entry {
    char indicator[FEED_INDICATOR_MAX + 1];
    char kind[8];                 /* domain|ipv4|ipv6 */
    char category[24];            /* malware|phishing|c2 */
    long count;
    int64_t first_seen, last_seen;
};

/* ---- hubshare_table.c: the aggregation table (no locking, no I/O: the caller
 * serialises) ---- */
struct hubshare_table;
/* Table holding at most cap indicators; NULL when out of memory. */
struct hubshare_table *hubshare_table_new(int cap);
void hubshare_table_free(struct hubshare_table *t);
/* Counts one sighting of (indicator, kind) at now; the category is the latest one seen.
 * Domains are compared lower-case without a trailing dot. When the table is full the
 * indicator seen longest ago is dropped to make room (counted in _dropped). Returns 1 for
 * a new indicator, 0 for another sighting, -1 when the indicator or kind is not valid. */
int hubshare_table_note(struct hubshare_table *t, const char *indicator, const char *kind,
                        const char *category, int64_t now);
int hubshare_table_size(const struct hubshare_table *t);
uint64_t hubshare_table_dropped(const struct hubshare_table *t);
/* Copies up to max waiting indicators into out (the table is unchanged: a send that fails
 * loses nothing). Returns how many. */
int hubshare_table_batch(const struct hubshare_table *t, struct hubshare_entry *out, int max);
/* After a send the hub took: subtracts what was sent. Sightings that arrived while the
 * batch was on its way stay for the next send; an indicator sent in full leaves. */
void hubshare_table_ack(struct hubshare_table *t, const struct hubshare_entry *sent, int n);
void hubshare_table_clear(struct hubshare_table *t);
/* Puts back an entry kept from an earlier run (count, first and last seen as they were),
 * adding to one already there. Returns like hubshare_table_note. */
int hubshare_table_restore(struct hubshare_table *t, const struct hubshare_entry *e);
/* Is this one of the categories shared (malware, phishing, c2)? */
int hubshare_threat(const char *cat);

/* What an event (dnsd / fwd JSON, see events.c) says worth sharing: a blocked lookup of a
 * malware / phishing / C2 name, or a connection dropped because its destination is on a
 * blocklist (category c2). Fills out (count 0) and returns 1; 0 when the event carries
 * nothing to share (allowed names, ads, social, malformed...). */
int hubshare_event_indicator(const char *msg, size_t len, struct hubshare_entry *out);

/* ---- the agent's side (one per process) ---- */
struct agentd;
struct api_call;
/* Starts the sharing / policy thread with its own hubclient on hub_dir. wake_fd: the write
 * end of the hub pipe (a byte there makes the main loop call agentd_hub_handle). Reads the
 * sharing switch and the last policy message id from the database (main thread). */
int hubshare_start(struct agentd *ad, const char *hub_dir, int wake_fd, char *err,
                   size_t errlen);
/* Stops the sharing thread (waiting until deadline, CLOCK_REALTIME), saves the counts
 * not yet sent, frees everything. Returns 0, or -1 when the thread did not end in time. */
int hubshare_stop(const struct timespec *deadline);
/* For hubclient_set_policy_notify: "policy <id>" arrived over MQTT (any thread). */
void hubshare_policy_notice(long long id, void *ctx);
/* Main thread, every event: counts it when sharing is on. Cheap when off. */
void hubshare_on_event(struct agentd *ad, const char *msg, size_t len, int64_t now);
/* Main thread, every detector finding (incidents_hook.c): a DNS tunnel's base domain is
 * counted as c2 when sharing is on. Malware / C2 findings come from blocked events
 * already and are not counted twice. */
void hubshare_on_finding(const char *kind, const char *indicator, int64_t now);
/* Main thread, when the hub pipe was readable: applies a handed-over policy message. */
void hubshare_handle(struct agentd *ad, int64_t now);
/* GET /v1/hub (status) and PUT|POST /v1/hub {"sharing":bool,"interval_seconds":N}.
 * Returns 1 when it answered the call, 0 when the path is not its. */
int hubshare_route(struct api_call *c);

#endif
