/* otasuke-agent internals: the SQLite policy model, delegation, explain, feeds, compile.
 *
 * Every module here takes the open database handle and fills err on failure; only
 * main.c and the API layer log. Times are Unix seconds. Strings returned as json_t are
 * new references (caller decrefs). */
#ifndef OTASUKE_AGENT_H
#define OTASUKE_AGENT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_ERR 256
#define AGENT_OWNER "owner"   /* the principal local API calls act as */

/* ---- db.c ---- */

/* Opens (creating if needed) the database: WAL, foreign keys, busy timeout, and runs
 * every pending migration in order inside one transaction. Returns NULL with err. */
sqlite3 *agent_db_open(const char *path, char *err, size_t errlen);
void agent_db_close(sqlite3 *db);
/* The schema version after migrations. */
int agent_db_version(sqlite3 *db);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Return 0 or -1 with err. */
int agent_tx_begin(sqlite3 *db, char *err, size_t errlen);
int agent_tx_commit(sqlite3 *db, char *err, size_t errlen);
void agent_tx_rollback(sqlite3 *db);
/* Runs a statement with no result rows. Returns 0 or -1 with err. */
int agent_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
/* Id of a principal / group by name, or -1. */
int64_t agent_principal_id(sqlite3 *db, const char *name);
int64_t agent_group_id(sqlite3 *db, const char *name);
/* Runs a query and returns its rows as a JSON array of objects (column names as keys;
 * integer, real, text and NULL map naturally). Binds args as text ("%" not expanded).
 * Returns NULL with err. */
json_t *agent_query_json(sqlite3 *db, const char *sql, const char *const *args, int nargs,
                         char *err, size_t errlen);

/* ---- audit.c ---- */

/* Records one change: who (principal name), what (short verb "rule.add"), grant id (0 =
 * none), result "ok" or "refused", reason (may be NULL), before/after JSON (may be NULL).
 * Part of the caller's transaction when one is open. Returns 0 or -1. */
int agent_audit(sqlite3 *db, const char *who, const char *what, int64_t grant_id,
                const char *result, const char *reason, json_t *before, json_t *after);

/* ---- policy.c: owner changes (validated; each in a transaction with its audit row) ---- */

/* Validates a domain or the pattern "*.domain"; writes the normalised name. 0 or -1. */
int agent_norm_domain(const char *in, char *out, size_t outlen, char *err, size_t errlen);
/* Adds a custom rule. kind "block"|"allow"; category may be NULL (owner custom); group
 * NULL = every group; expires 0 = never. Returns the rule id or -1 with err. */
int64_t agent_rule_add(sqlite3 *db, const char *who, int64_t grant_id, const char *pattern,
                       const char *kind, const char *category, const char *group,
                       int64_t expires, const char *note, char *err, size_t errlen);
int agent_rule_delete(sqlite3 *db, const char *who, int64_t id, char *err, size_t errlen);
/* Sets a group's categories (JSON array of names), answer and safe search (NULL / -1 =
 * unchanged). Creates the group when create is set. Returns 0 or -1 with err. */
int agent_group_set(sqlite3 *db, const char *who, const char *name, json_t *categories,
                    const char *answer, int safesearch, json_t *networks, int create,
                    char *err, size_t errlen);
/* Adds a schedule: category blocked for group on days (bit 0 = Monday) between start and
 * end minutes of the day (local time). Returns the id or -1. */
int64_t agent_schedule_add(sqlite3 *db, const char *who, int64_t grant_id, const char *group,
                           const char *category, unsigned days, int start_min, int end_min,
                           char *err, size_t errlen);
int agent_schedule_delete(sqlite3 *db, const char *who, int64_t id, char *err, size_t errlen);
/* Is a schedule active at local time t? (days bit 0 = Monday). */
int agent_schedule_active(unsigned days, int start_min, int end_min, int64_t t);
/* Effective category mask of a group at time t: its categories plus active schedules. */
uint32_t agent_group_categories(sqlite3 *db, int64_t group_id, int64_t t);
/* Parses "mon-fri" / "mon,wed" / "daily" / "weekdays" into a day mask. -1 when bad. */
int agent_days_parse(const char *s);

/* ---- grants.c: principals, grants and delegated changes ---- */

int64_t agent_delegate_add(sqlite3 *db, const char *who, const char *name,
                           const char *pubkey_b64, char *err, size_t errlen);
/* scope: categories / groups as JSON arrays of names ("*" = all groups), actions array of
 * add_block|add_allow|change_schedule. Returns the grant id or -1 with err. */
int64_t agent_grant_add(sqlite3 *db, const char *who, const char *delegate, json_t *categories,
                        json_t *groups, json_t *actions, int64_t expires, char *err,
                        size_t errlen);
int agent_grant_revoke(sqlite3 *db, const char *who, int64_t id, char *err, size_t errlen);
/* Finds a live grant (not revoked, not expired at now) of delegate_id covering action,
 * category and group (NULL = every group). Returns the grant id, 0 if none, -1 when the
 * database could not be read. */
int64_t agent_grant_covering(sqlite3 *db, int64_t delegate_id, const char *action,
                             const char *category, const char *group, int64_t now);
/* Applies a delegated change: body is the exact signed JSON text, sig_b64 its detached
 * Ed25519 signature by the delegate's key. Body:
 *   {"delegate":"msp","created":T,"changes":[{"action":"add_block","indicator":"x.test",
 *     "category":"malware","group":"staff"}]}
 * All-or-nothing; a refusal (shape, delegate, signature, age, replay, grant) is audited
 * with its reason and returns -1 with err. A database that cannot answer or store now
 * (busy, full, I/O) refuses nothing: AGENT_DELEGATED_RETRY with err, nothing applied, the
 * same signed change may come again. On success returns the number of changes applied. */
#define AGENT_DELEGATED_RETRY (-2)
int agent_delegated_apply(sqlite3 *db, const char *body, size_t len, const char *sig_b64,
                          int64_t now, char *err, size_t errlen);

/* ---- explain.c ---- */

/* Explains the decision for a domain or IP address, optionally for a client address.
 * Returns {"query":..,"group":..,"decision":"block|allow|none","chain":[...]} or NULL. */
json_t *agent_explain(sqlite3 *db, const char *query, const char *client, int64_t now,
                      char *err, size_t errlen);

/* What the compiled domain set dnsd has loaded says for an agent_explain answer (domain
 * queries; the group's categories as the mask): {"verdict","lists":[labels],"matched",
 * "built"} — differs from the chain only while a compile is pending. json null for IPs;
 * NULL with err when the set cannot be opened. */
json_t *agent_explain_compiled(const char *set_path, json_t *explained, char *err,
                              size_t errlen);

/* ---- devices.c ---- */

/* Records a sighting (MAC + optional address/hostname), creating the device with its
 * vendor from the IEEE OUI registry. Returns 0 or -1. */
int agent_device_seen(sqlite3 *db, const char *mac, const char *ip, const char *hostname,
                      int64_t now, char *err, size_t errlen);
/* Counts an event against a device found by address: "malware" | "scan" | "block". */
int agent_device_event(sqlite3 *db, const char *ip, const char *event, char *err,
                       size_t errlen);
int agent_device_update(sqlite3 *db, const char *who, const char *mac, const char *label,
                        int importance, const char *group, char *err, size_t errlen);
/* Likelihood 1..5 from counters; risk = likelihood x importance. */
int agent_likelihood(int64_t malware, int64_t scans, int64_t blocks);
/* Devices sorted by risk, highest first. */
json_t *agent_devices_json(sqlite3 *db, char *err, size_t errlen);
/* Vendor for a MAC from the OUI file (NULL path = /usr/share/ieee-data/oui.txt). */
int agent_oui_vendor(const char *oui_path, const char *mac, char *out, size_t outlen);
void agent_oui_set_path(const char *path);

#endif
