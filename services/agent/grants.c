/* Delegation: delegates (Ed25519 keys), grants (scope + expiry + revocation) and the
 * signed changes delegates send. A change is applied only when its signature is valid
 * AND a live grant covers every entry; a refusal is audited with the reason. */
#include "agent.h"
#include "domainset.h"
#include "feed.h"

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const grant_actions[] = { "add_block", "add_allow", "change_schedule", NULL };

static int valid_principal_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 48)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return 0;
    return 1;
}

int64_t agent_delegate_add(sqlite3 *db, const char *who, const char *name,
                           const char *pubkey_b64, char *err, size_t errlen)
{
    uint8_t pk[FEED_PUBKEY_BYTES];
    char e2[128];
    if (!name || !valid_principal_name(name)) {
        snprintf(err, errlen, "name: use 1-48 of a-z 0-9 . - _");
        return -1;
    }
    if (!pubkey_b64 || feed_key_decode(pubkey_b64, pk, sizeof pk, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "pubkey: expected a base64 Ed25519 public key (32 bytes)");
        return -1;
    }
    if (agent_principal_id(db, name) >= 0) {
        snprintf(err, errlen, "name: '%s' exists already", name);
        return -1;
    }
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    char *q = sqlite3_mprintf("INSERT INTO principals(name, kind, pubkey, created)"
                              " VALUES (%Q, 'delegate', %Q, %lld)", name, pubkey_b64,
                              (long long)time(NULL));
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    int64_t id = rc == 0 ? sqlite3_last_insert_rowid(db) : -1;
    if (rc == 0) {
        char kid[FEED_KEYID_LEN + 1];
        feed_key_id(pk, kid);
        json_t *after = json_pack("{s:s, s:s}", "delegate", name, "key_id", kid);
        rc = agent_audit(db, who, "delegate.add", 0, "ok", NULL, NULL, after);
        json_decref(after);
    }
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    return id;
}

static int str_array_ok(json_t *a, const char *field, int (*ok)(const char *), char *err,
                        size_t errlen)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a) || json_array_size(a) == 0) {
        snprintf(err, errlen, "%s: expected a non-empty array of strings", field);
        return -1;
    }
    json_array_foreach(a, i, v) {
        if (!json_is_string(v) || !ok(json_string_value(v))) {
            snprintf(err, errlen, "%s[%zu]: not valid here", field, i);
            return -1;
        }
    }
    return 0;
}

static int ok_category(const char *s) { return dset_category_parse(s) >= 0; }
static int ok_action(const char *s)
{
    for (int i = 0; grant_actions[i]; i++)
        if (strcmp(s, grant_actions[i]) == 0)
            return 1;
    return 0;
}
static sqlite3 *group_db;
static int ok_group(const char *s) { return strcmp(s, "*") == 0 || agent_group_id(group_db, s) >= 0; }

#define GRANT_SQL "SELECT g.id, p.name AS delegate, g.categories, g.groups, g.actions," \
    " g.created, g.expires_at, g.revoked_at FROM grants g JOIN principals p" \
    " ON p.id=g.delegate_id WHERE g.id=?"

static json_t *grant_json(sqlite3 *db, int64_t id)
{
    char t[24], e[AGENT_ERR];
    snprintf(t, sizeof t, "%lld", (long long)id);
    const char *args[] = { t };
    json_t *a = agent_query_json(db, GRANT_SQL, args, 1, e, sizeof e);
    json_t *o = a && json_array_size(a) ? json_incref(json_array_get(a, 0)) : NULL;
    json_decref(a);
    return o;
}

int64_t agent_grant_add(sqlite3 *db, const char *who, const char *delegate, json_t *categories,
                        json_t *groups, json_t *actions, int64_t expires, char *err,
                        size_t errlen)
{
    int64_t did = agent_principal_id(db, delegate);
    sqlite3_stmt *st;
    if (did < 0) {
        snprintf(err, errlen, "delegate: no delegate named '%.48s'", delegate ? delegate : "");
        return -1;
    }
    group_db = db;
    if (str_array_ok(categories, "categories", ok_category, err, errlen) < 0 ||
        str_array_ok(groups, "groups", ok_group, err, errlen) < 0 ||
        str_array_ok(actions, "actions", ok_action, err, errlen) < 0)
        return -1;
    if (expires != 0 && expires <= time(NULL)) {
        snprintf(err, errlen, "expires: in the past");
        return -1;
    }
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    char *c = json_dumps(categories, JSON_COMPACT), *g = json_dumps(groups, JSON_COMPACT),
         *a = json_dumps(actions, JSON_COMPACT);
    int64_t id = -1;
    if (sqlite3_prepare_v2(db, "INSERT INTO grants(delegate_id, categories, groups, actions,"
                           " created, expires_at) VALUES (?,?,?,?,?,?)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, did);
        sqlite3_bind_text(st, 2, c, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, g, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, a, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
        sqlite3_bind_int64(st, 6, expires);
        if (sqlite3_step(st) == SQLITE_DONE)
            id = sqlite3_last_insert_rowid(db);
        sqlite3_finalize(st);
    }
    free(c);
    free(g);
    free(a);
    json_t *after = id > 0 ? grant_json(db, id) : NULL;
    if (id < 0 || agent_audit(db, who, "grant.add", id, "ok", NULL, NULL, after) < 0 ||
        agent_tx_commit(db, err, errlen) < 0) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        json_decref(after);
        agent_tx_rollback(db);
        return -1;
    }
    json_decref(after);
    return id;
}

int agent_grant_revoke(sqlite3 *db, const char *who, int64_t id, char *err, size_t errlen)
{
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    json_t *before = grant_json(db, id);
    if (!before) {
        agent_tx_rollback(db);
        snprintf(err, errlen, "id: no grant %lld", (long long)id);
        return -1;
    }
    if (json_integer_value(json_object_get(before, "revoked_at")) != 0) {
        json_decref(before);
        agent_tx_rollback(db);
        snprintf(err, errlen, "id: grant %lld is already revoked", (long long)id);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE grants SET revoked_at=%lld WHERE id=%lld",
             (long long)time(NULL), (long long)id);
    int rc = agent_exec(db, sql, err, errlen);
    json_t *after = rc == 0 ? grant_json(db, id) : NULL;
    if (rc == 0)
        rc = agent_audit(db, who, "grant.revoke", id, "ok", NULL, before, after);
    json_decref(before);
    json_decref(after);
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    return 0;
}

static int json_text_has(const char *text, const char *want)
{
    json_t *a = json_loads(text, 0, NULL);
    size_t i;
    json_t *v;
    int found = 0;
    json_array_foreach(a, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            found = 1;
    json_decref(a);
    return found;
}

int64_t agent_grant_covering(sqlite3 *db, int64_t delegate_id, const char *action,
                             const char *category, const char *group, int64_t now)
{
    sqlite3_stmt *st;
    int64_t found = 0;
    int rc = SQLITE_DONE;
    if (sqlite3_prepare_v2(db, "SELECT id, categories, groups, actions FROM grants"
                           " WHERE delegate_id=? AND revoked_at=0 AND (expires_at=0 OR"
                           " expires_at>?) ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, delegate_id);
    sqlite3_bind_int64(st, 2, now);
    while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *cats = (const char *)sqlite3_column_text(st, 1);
        const char *grps = (const char *)sqlite3_column_text(st, 2);
        const char *acts = (const char *)sqlite3_column_text(st, 3);
        if (!json_text_has(acts, action) || !category || !json_text_has(cats, category))
            continue;
        /* A change for every group needs a grant for every group ("*"). */
        if (!json_text_has(grps, "*") && (!group || !json_text_has(grps, group)))
            continue;
        found = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return found ? found : rc == SQLITE_DONE ? 0 : -1;
}

/* ---- signed changes ---- */

struct change {
    const char *action, *indicator, *category, *group, *days, *start, *end;
    int64_t grant;
};

static int parse_hhmm(const char *s)
{
    int h, m;
    char tail;
    if (!s || sscanf(s, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 24 || m < 0 ||
        m > 59 || (h == 24 && m))
        return -1;
    return h * 60 + m;
}

/* Strict shape check of one change; fills c with borrowed strings. */
static int parse_change(json_t *o, size_t i, struct change *c, char *err, size_t errlen)
{
    static const char *const fields[] = { "action", "indicator", "category", "group",
                                          "days", "start", "end", NULL };
    const char *k;
    json_t *v;
    memset(c, 0, sizeof *c);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "changes[%zu]: expected an object", i);
        return -1;
    }
    json_object_foreach(o, k, v) {
        int idx = -1;
        for (int f = 0; fields[f]; f++)
            if (strcmp(fields[f], k) == 0)
                idx = f;
        if (idx < 0) {
            snprintf(err, errlen, "changes[%zu].%.40s: unknown field", i, k);
            return -1;
        }
        if (!json_is_string(v)) {
            snprintf(err, errlen, "changes[%zu].%s: expected a string", i, k);
            return -1;
        }
        const char **slot[] = { &c->action, &c->indicator, &c->category, &c->group,
                                &c->days, &c->start, &c->end };
        *slot[idx] = json_string_value(v);
    }
    if (!c->action || !ok_action(c->action)) {
        snprintf(err, errlen, "changes[%zu].action: expected add_block|add_allow|change_schedule", i);
        return -1;
    }
    if (!c->category) {
        snprintf(err, errlen, "changes[%zu].category: missing", i);
        return -1;
    }
    if (strcmp(c->action, "change_schedule") == 0) {
        if (!c->group || !c->days || !c->start || !c->end) {
            snprintf(err, errlen, "changes[%zu]: a schedule needs group, days, start, end", i);
            return -1;
        }
    } else if (!c->indicator) {
        snprintf(err, errlen, "changes[%zu].indicator: missing", i);
        return -1;
    }
    return 0;
}

/* A database that cannot answer now (busy, locked, full, I/O, memory) says nothing about
 * the change: it is not refused, it is tried again later. code is the failed call's
 * (sqlite3_errcode right after it, before a rollback replaces it). */
static int db_transient(int code)
{
    switch (code & 0xff) {
    case SQLITE_BUSY: case SQLITE_LOCKED: case SQLITE_FULL: case SQLITE_IOERR:
    case SQLITE_NOMEM: case SQLITE_CANTOPEN: case SQLITE_PROTOCOL:
        return 1;
    default:
        return 0;
    }
}

static int retry_later(int code, const char *what, char *err, size_t errlen)
{
    code &= 0xff;
    snprintf(err, errlen, "the box's database could not %s (%s%s): not applied now, the box "
             "tries again at its next poll", what, sqlite3_errstr(code),
             code == SQLITE_FULL ? ": the disk is full" : "");
    return AGENT_DELEGATED_RETRY;
}

static int refuse(sqlite3 *db, const char *who, const char *body, const char *reason,
                  char *err, size_t errlen)
{
    json_t *after = json_loads(body, 0, NULL);
    if (!after)
        after = json_pack("{s:s}", "body", "(not JSON)");
    agent_audit(db, who ? who : "(unknown)", "delegated.change", 0, "refused", reason, NULL,
                after);
    json_decref(after);
    snprintf(err, errlen, "%s", reason);
    return -1;
}

int agent_delegated_apply(sqlite3 *db, const char *body, size_t len, const char *sig_b64,
                          int64_t now, char *err, size_t errlen)
{
    char reason[AGENT_ERR];
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        snprintf(reason, sizeof reason, "body: not a JSON object (%s)", o ? "" : je.text);
        json_decref(o);
        return refuse(db, NULL, body, reason, err, errlen);
    }
    const char *delegate = json_string_value(json_object_get(o, "delegate"));
    json_t *created = json_object_get(o, "created");
    json_t *changes = json_object_get(o, "changes");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "delegate") && strcmp(k, "created") && strcmp(k, "changes")) {
            snprintf(reason, sizeof reason, "body.%.40s: unknown field", k);
            goto refused;
        }
    }
    if (!delegate) {
        snprintf(reason, sizeof reason, "body.delegate: expected a string");
        goto refused;
    }
    sqlite3_stmt *st;
    int64_t did = -1;
    char pub[128] = "";
    int prc = SQLITE_ERROR;
    if (sqlite3_prepare_v2(db, "SELECT id, pubkey FROM principals WHERE name=? AND"
                           " kind='delegate'", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, delegate, -1, SQLITE_TRANSIENT);
        if ((prc = sqlite3_step(st)) == SQLITE_ROW) {
            did = sqlite3_column_int64(st, 0);
            snprintf(pub, sizeof pub, "%s", (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
    }
    if (prc != SQLITE_ROW && prc != SQLITE_DONE) {
        json_decref(o);
        return retry_later(prc, "look up the delegate", err, errlen);
    }
    uint8_t pk[FEED_PUBKEY_BYTES];
    char e2[128];
    if (did < 0 || feed_key_decode(pub, pk, sizeof pk, e2, sizeof e2) < 0) {
        snprintf(reason, sizeof reason, "body.delegate: '%.48s' is not a known delegate",
                 delegate);
        goto refused;
    }
    if (feed_sig_verify_b64(body, len, sig_b64, pk) != 0) {
        snprintf(reason, sizeof reason, "signature: not a valid signature of '%.48s' over "
                 "the body", delegate);
        goto refused;
    }
    /* Signed changes are only good for a short while: a captured one cannot be replayed
     * days later, after the owner undid it. */
    if (!json_is_integer(created) || llabs(json_integer_value(created) - now) > 600) {
        snprintf(reason, sizeof reason, "body.created: missing or more than 10 minutes "
                 "from the box's clock");
        goto refused;
    }
    /* Within that window the same signed body must not apply twice either. */
    unsigned char h[32];
    char digest[65];
    crypto_generichash(h, sizeof h, (const unsigned char *)body, len, NULL, 0);
    sodium_bin2hex(digest, sizeof digest, h, sizeof h);
    const char *dargs[] = { digest };
    json_t *seen = agent_query_json(db, "SELECT at FROM seen_changes WHERE digest=?", dargs, 1,
                                    reason, sizeof reason);
    if (!seen) {
        json_decref(o);
        return retry_later(sqlite3_errcode(db), "check for a replay", err, errlen);
    }
    int replay = json_array_size(seen) > 0;
    json_decref(seen);
    if (replay) {
        snprintf(reason, sizeof reason, "body: this signed change was applied already (replay)");
        goto refused;
    }
    if (!json_is_array(changes) || json_array_size(changes) == 0 ||
        json_array_size(changes) > 10000) {
        snprintf(reason, sizeof reason, "body.changes: expected 1..10000 changes");
        goto refused;
    }
    size_t n = json_array_size(changes), i;
    struct change *cs = calloc(n, sizeof *cs);
    if (!cs) {
        snprintf(reason, sizeof reason, "out of memory");
        goto refused;
    }
    json_array_foreach(changes, i, v) {
        if (parse_change(v, i, &cs[i], reason, sizeof reason) < 0)
            goto refused_free;
        cs[i].grant = agent_grant_covering(db, did, cs[i].action, cs[i].category,
                                           cs[i].group, now);
        if (cs[i].grant < 0) {
            int code = sqlite3_errcode(db);
            free(cs);
            json_decref(o);
            return retry_later(code, "read the grants", err, errlen);
        }
        if (!cs[i].grant) {
            snprintf(reason, sizeof reason, "changes[%zu]: %s of '%.80s' in category '%s'"
                     " for %s%s is outside every live grant of '%s'", i, cs[i].action,
                     cs[i].indicator ? cs[i].indicator : "-", cs[i].category,
                     cs[i].group ? "group " : "every group", cs[i].group ? cs[i].group : "",
                     delegate);
            goto refused_free;
        }
    }
    if (agent_tx_begin(db, err, errlen) < 0) {
        free(cs);
        json_decref(o);
        return retry_later(sqlite3_errcode(db), "start a transaction", err, errlen);
    }
    for (i = 0; i < n; i++) {
        char e3[200];
        int64_t r;
        if (strcmp(cs[i].action, "change_schedule") == 0) {
            int days = agent_days_parse(cs[i].days);
            r = agent_schedule_add(db, delegate, cs[i].grant, cs[i].group, cs[i].category,
                                   days < 0 ? 0 : (unsigned)days, parse_hhmm(cs[i].start),
                                   parse_hhmm(cs[i].end), e3, sizeof e3);
        } else {
            r = agent_rule_add(db, delegate, cs[i].grant, cs[i].indicator,
                               strcmp(cs[i].action, "add_block") == 0 ? "block" : "allow",
                               cs[i].category, cs[i].group, 0, NULL, e3, sizeof e3);
        }
        if (r < 0) {
            int code = sqlite3_errcode(db);
            agent_tx_rollback(db);
            if (db_transient(code)) {
                free(cs);
                json_decref(o);
                return retry_later(code, "store the change", err, errlen);
            }
            snprintf(reason, sizeof reason, "changes[%zu]: %s", i, e3);
            goto refused_free;
        }
    }
    char *q = sqlite3_mprintf("INSERT INTO seen_changes VALUES (%Q, %lld);"
                              " DELETE FROM seen_changes WHERE at < %lld", digest,
                              (long long)now, (long long)(now - 86400));
    int qrc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    if (qrc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        int code = sqlite3_errcode(db);
        agent_tx_rollback(db);
        free(cs);
        json_decref(o);
        return retry_later(code, "save the change", err, errlen);
    }
    free(cs);
    json_decref(o);
    return (int)n;
refused_free:
    free(cs);
refused:
    {
        char who[64];
        snprintf(who, sizeof who, "%s", delegate ? delegate : "(unknown)");
        json_decref(o);
        return refuse(db, who, body, reason, err, errlen);
    }
}
