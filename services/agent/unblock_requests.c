/* Unblock requests left on the block page by staff, decided by an owner (accounts.h).
 * Visitors are anonymous, so the table is bounded: a cap on pending requests overall and
 * per address, and an identical pending request is not stored twice. */
#include "accounts.h"
#include "agent.h"

#include <stdio.h>
#include <string.h>

int64_t unblock_request_add(sqlite3 *db, const char *domain, const char *name,
                            const char *reason, const char *client, int64_t now, char *err,
                            size_t errlen)
{
    char norm[260], why[AGENT_ERR];
    if (!domain || strchr(domain, '*') ||
        agent_norm_domain(domain, norm, sizeof norm, why, sizeof why) < 0) {
        snprintf(err, errlen, "domain: '%.80s' is not a domain name", domain ? domain : "");
        return -1;
    }
    if ((name && strlen(name) > 64) || (reason && strlen(reason) > 500)) {
        snprintf(err, errlen, "%s: too long", name && strlen(name) > 64 ? "name" : "reason");
        return -1;
    }
    sqlite3_stmt *st;
    int64_t id = 0, total = 0, mine = 0;
    if (sqlite3_prepare_v2(db, "SELECT (SELECT id FROM unblock_requests WHERE status='pending'"
                           " AND domain=?1 AND client=?2), (SELECT count(*) FROM"
                           " unblock_requests WHERE status='pending'), (SELECT count(*) FROM"
                           " unblock_requests WHERE status='pending' AND client=?2)", -1, &st,
                           NULL) != SQLITE_OK)
        goto db;
    sqlite3_bind_text(st, 1, norm, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, client ? client : "", -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        total = sqlite3_column_int64(st, 1);
        mine = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (id > 0)
        return id;
    if (total >= UNBLOCK_PENDING_MAX || mine >= UNBLOCK_PER_CLIENT) {
        snprintf(err, errlen, "domain: too many requests are waiting for the owner; ask them"
                 " directly");
        return -1;
    }
    if (sqlite3_prepare_v2(db, "INSERT INTO unblock_requests(domain, name, reason, client,"
                           " created) VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st, NULL) != SQLITE_OK)
        goto db;
    sqlite3_bind_text(st, 1, norm, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name ? name : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, reason ? reason : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, client ? client : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto db;
    return sqlite3_last_insert_rowid(db);
db:
    snprintf(err, errlen, "database: unblock_requests: %s", sqlite3_errmsg(db));
    return -1;
}

json_t *unblock_request_list(sqlite3 *db, const char *status, char *err, size_t errlen)
{
    const char *args[] = { status };
    return agent_query_json(db, status ?
        "SELECT id, domain, name, reason, client, created, status, decided_at, decided_by,"
        " minutes FROM unblock_requests WHERE status=? ORDER BY id DESC LIMIT 500" :
        "SELECT id, domain, name, reason, client, created, status, decided_at, decided_by,"
        " minutes FROM unblock_requests ORDER BY id DESC LIMIT 500",
        status ? args : NULL, status ? 1 : 0, err, errlen);
}

int unblock_request_decide(sqlite3 *db, int64_t id, int approve, int64_t minutes,
                           const char *who, int64_t now, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    char domain[260] = "";
    if (sqlite3_prepare_v2(db, "SELECT domain FROM unblock_requests WHERE id=?1 AND"
                           " status='pending'", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(domain, sizeof domain, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!domain[0]) {
        snprintf(err, errlen, "id: no pending request %lld", (long long)id);
        return -1;
    }
    if (minutes < 0 || minutes > 525600) {
        snprintf(err, errlen, "minutes: must be 0 (permanent) to 525600");
        return -1;
    }
    int64_t rule = 0;
    if (approve) {
        rule = agent_rule_add(db, AGENT_OWNER, 0, domain, "allow", NULL, NULL,
                              minutes ? now + minutes * 60 : 0,
                              minutes ? "unblock request (temporary)" : "unblock request",
                              err, errlen);
        if (rule < 0)
            return -1;
    }
    if (sqlite3_prepare_v2(db, "UPDATE unblock_requests SET status=?2, decided_at=?3,"
                           " decided_by=?4, minutes=?5, rule_id=?6 WHERE id=?1", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, approve ? "approved" : "declined", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_text(st, 4, who ? who : AGENT_OWNER, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, minutes);
    sqlite3_bind_int64(st, 6, rule);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* ---- help requests: the owner's "call for help" button, recorded as a self-report ---- */

int64_t help_request_add(sqlite3 *db, const char *who, const char *note, int64_t now,
                         char *err, size_t errlen)
{
    sqlite3_stmt *st;
    json_t *open = agent_query_json(db, "SELECT count(*) AS n FROM help_requests WHERE"
                                    " status='open'", NULL, 0, err, errlen);
    if (!open)
        return -1;
    json_int_t n = json_integer_value(json_object_get(json_array_get(open, 0), "n"));
    json_decref(open);
    if (n >= 50) {
        snprintf(err, errlen, "note: 50 help requests are already open; close some first");
        return -1;
    }
    if (sqlite3_prepare_v2(db, "INSERT INTO help_requests(created, who, note) VALUES (?1, ?2,"
                           " ?3)", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database: help_requests: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, who ? who : AGENT_OWNER, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, note ? note : "", -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "database: help_requests: %s", sqlite3_errmsg(db));
        return -1;
    }
    return sqlite3_last_insert_rowid(db);
}

int help_request_close(sqlite3 *db, int64_t id, const char *who, int64_t now, char *err,
                       size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE help_requests SET status='closed', closed_at=?2,"
                           " closed_by=?3 WHERE id=?1 AND status='open'", -1, &st, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "database: help_requests: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, who ? who : AGENT_OWNER, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || sqlite3_changes(db) != 1) {
        snprintf(err, errlen, "id: no open help request %lld", (long long)id);
        return -1;
    }
    return 0;
}
