/* Backup and restore of the whole owner policy as versioned JSON.
 *
 * Restore is all-or-nothing: the document is parsed and every item validated first;
 * only then, in one transaction, is the old policy replaced. Any failure leaves the
 * database exactly as it was. Feed entries are not in a backup: a subscription the
 * backup names identically (name, url, kind, feed id, key) keeps its entries and seq;
 * a new or changed one starts at seq 0 and is fetched at once. */
#include "backup.h"
#include "agent.h"
#include "domainset.h"
#include "feed.h"
#include "iplist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *q(sqlite3 *db, const char *sql)
{
    char err[AGENT_ERR];
    return agent_query_json(db, sql, NULL, 0, err, sizeof err);
}

/* Turns text columns holding JSON arrays back into arrays. */
static void unpack(json_t *rows, const char *const *cols)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
        for (int c = 0; cols[c]; c++) {
            const char *t = json_string_value(json_object_get(r, cols[c]));
            json_t *v = t ? json_loads(t, 0, NULL) : NULL;
            json_object_set_new(r, cols[c], v ? v : json_array());
        }
}

json_t *backup_export(sqlite3 *db, unsigned *status)
{
    static const char *const gcols[] = { "categories", "networks", NULL };
    static const char *const grcols[] = { "categories", "groups", "actions", NULL };
    json_t *groups = q(db, "SELECT g.name, g.answer, g.safesearch,"
        " (SELECT json_group_array(category) FROM group_categories WHERE group_id=g.id) AS categories,"
        " (SELECT json_group_array(cidr) FROM group_networks WHERE group_id=g.id) AS networks"
        " FROM groups g ORDER BY g.id");
    json_t *principals = q(db, "SELECT name, kind, pubkey, created FROM principals"
                               " WHERE kind='delegate' ORDER BY id");
    json_t *grants = q(db, "SELECT g.id, p.name AS delegate, g.categories, g.groups, g.actions,"
                           " g.created, g.expires_at, g.revoked_at FROM grants g JOIN principals p"
                           " ON p.id=g.delegate_id ORDER BY g.id");
    json_t *rules = q(db, "SELECT r.pattern, r.kind, r.category, g.name AS \"group\", p.name AS"
                          " author, r.grant_id AS \"grant\", r.created, r.expires_at, r.note FROM"
                          " rules r JOIN principals p ON p.id=r.author_id LEFT JOIN groups g ON"
                          " g.id=r.group_id ORDER BY r.id");
    json_t *scheds = q(db, "SELECT g.name AS \"group\", s.category, s.days, s.start_min,"
                           " s.end_min, p.name AS author, s.grant_id AS \"grant\" FROM schedules s"
                           " JOIN groups g ON g.id=s.group_id JOIN principals p ON"
                           " p.id=s.author_id ORDER BY s.id");
    json_t *feeds = q(db, "SELECT name, url, kind, feed_id, pubkey, category, enabled, max_bytes"
                          " FROM feeds ORDER BY id");
    json_t *devices = q(db, "SELECT d.mac, d.label, d.importance, g.name AS \"group\", d.hostname,"
                            " d.vendor, d.first_seen FROM devices d LEFT JOIN groups g ON"
                            " g.id=d.group_id ORDER BY d.mac");
    json_t *settings = q(db, "SELECT key, value FROM settings ORDER BY key");
    if (!groups || !principals || !grants || !rules || !scheds || !feeds || !devices || !settings) {
        json_decref(groups); json_decref(principals); json_decref(grants); json_decref(rules);
        json_decref(scheds); json_decref(feeds); json_decref(devices); json_decref(settings);
        *status = 500;
        return json_pack("{s:s, s:n}", "error", "database read failed", "field");
    }
    unpack(groups, gcols);
    unpack(grants, grcols);
    return json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "format", BACKUP_FORMAT, "created", (json_int_t)time(NULL),
                     "settings", settings, "groups", groups, "delegates", principals,
                     "grants", grants, "rules", rules, "schedules", scheds, "feeds", feeds,
                     "devices", devices);
}

static json_t *bad(unsigned *status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *bad(unsigned *status, const char *field, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *status = 400;
    return json_pack("{s:s, s:s}", "error", msg, "field", field);
}

static int in_names(json_t *arr, const char *key, const char *want)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(json_object_get(v, key)) &&
            strcmp(json_string_value(json_object_get(v, key)), want) == 0)
            return 1;
    return 0;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int cats_ok(json_t *a)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a))
        return 0;
    json_array_foreach(a, i, v)
        if (!json_is_string(v) || dset_category_parse(json_string_value(v)) < 0)
            return 0;
    return 1;
}

/* Validates everything; returns NULL when good, else the 400 answer. */
static json_t *validate(json_t *d, unsigned *status)
{
    size_t i;
    json_t *v;
    char f[64], e[AGENT_ERR], name[DSET_NAME_MAX + 1];
    static const char *const top[] = { "format", "created", "settings", "groups", "delegates",
                                       "grants", "rules", "schedules", "feeds", "devices", NULL };
    const char *k;
    json_object_foreach(d, k, v) {
        int known = 0;
        for (int t = 0; top[t]; t++)
            known |= strcmp(top[t], k) == 0;
        if (!known)
            return bad(status, k, "unknown field '%.40s'", k);
        if (strcmp(k, "format") && strcmp(k, "created") && !json_is_array(v))
            return bad(status, k, "'%s' must be an array", k);
    }
    if (!str(d, "format") || strcmp(str(d, "format"), BACKUP_FORMAT) != 0)
        return bad(status, "format", "not an otasuke backup (expected format %s)", BACKUP_FORMAT);
    json_t *groups = json_object_get(d, "groups"), *dels = json_object_get(d, "delegates");
    json_t *grants = json_object_get(d, "grants");
    if (!json_array_size(groups))
        return bad(status, "groups", "a backup needs at least one group");
    json_array_foreach(groups, i, v) {
        snprintf(f, sizeof f, "groups[%zu]", i);
        const char *ans = str(v, "answer");
        if (!str(v, "name") || !cats_ok(json_object_get(v, "categories")) || !ans ||
            (strcmp(ans, "nxdomain") && strcmp(ans, "null") && strcmp(ans, "blockpage")))
            return bad(status, f, "%s: needs name, answer (nxdomain|null|blockpage) and known "
                       "categories", f);
        size_t j;
        json_t *n;
        json_array_foreach(json_object_get(v, "networks"), j, n) {
            struct ipl_v4 r4;
            struct ipl_v6 r6;
            if (!json_is_string(n) || !iplist_parse_entry(json_string_value(n), &r4, &r6, e, sizeof e))
                return bad(status, f, "%s.networks[%zu]: not an address or CIDR", f, j);
        }
    }
    json_array_foreach(dels, i, v) {
        uint8_t pk[FEED_PUBKEY_BYTES];
        snprintf(f, sizeof f, "delegates[%zu]", i);
        if (!str(v, "name") || !str(v, "pubkey") ||
            feed_key_decode(str(v, "pubkey"), pk, sizeof pk, e, sizeof e) < 0)
            return bad(status, f, "%s: needs name and a base64 Ed25519 pubkey", f);
    }
    json_array_foreach(grants, i, v) {
        snprintf(f, sizeof f, "grants[%zu]", i);
        if (!json_is_integer(json_object_get(v, "id")) || !str(v, "delegate") ||
            !in_names(dels, "name", str(v, "delegate")) ||
            !cats_ok(json_object_get(v, "categories")) ||
            !json_is_array(json_object_get(v, "groups")) ||
            !json_is_array(json_object_get(v, "actions")))
            return bad(status, f, "%s: needs id, a delegate listed in delegates, categories, "
                       "groups, actions", f);
    }
    json_array_foreach(json_object_get(d, "rules"), i, v) {
        snprintf(f, sizeof f, "rules[%zu]", i);
        const char *kind = str(v, "kind"), *author = str(v, "author"), *cat = str(v, "category");
        const char *grp = str(v, "group");
        if (!str(v, "pattern") || agent_norm_domain(str(v, "pattern"), name, sizeof name, e, sizeof e) < 0)
            return bad(status, f, "%s.pattern: %s", f, str(v, "pattern") ? e : "missing");
        if (!kind || (strcmp(kind, "block") && strcmp(kind, "allow")))
            return bad(status, f, "%s.kind: expected block or allow", f);
        if (cat && dset_category_parse(cat) < 0)
            return bad(status, f, "%s.category: unknown", f);
        if (grp && !in_names(groups, "name", grp))
            return bad(status, f, "%s.group: '%s' is not in groups", f, grp);
        if (!author || (strcmp(author, AGENT_OWNER) && !in_names(dels, "name", author)))
            return bad(status, f, "%s.author: must be owner or a listed delegate", f);
    }
    json_array_foreach(json_object_get(d, "schedules"), i, v) {
        snprintf(f, sizeof f, "schedules[%zu]", i);
        if (!str(v, "group") || !in_names(groups, "name", str(v, "group")) ||
            !str(v, "category") || dset_category_parse(str(v, "category")) < 0 ||
            !json_is_integer(json_object_get(v, "days")) ||
            !json_is_integer(json_object_get(v, "start_min")) ||
            !json_is_integer(json_object_get(v, "end_min")))
            return bad(status, f, "%s: needs a listed group, a category, days, start_min, end_min", f);
    }
    json_array_foreach(json_object_get(d, "feeds"), i, v) {
        snprintf(f, sizeof f, "feeds[%zu]", i);
        if (!str(v, "name") || !str(v, "url") || !str(v, "kind"))
            return bad(status, f, "%s: needs name, url, kind", f);
    }
    json_array_foreach(json_object_get(d, "devices"), i, v) {
        snprintf(f, sizeof f, "devices[%zu]", i);
        if (!str(v, "mac"))
            return bad(status, f, "%s: needs mac", f);
    }
    return NULL;
}

/* Runs one INSERT built by sqlite3_mprintf; frees it. */
static int ins(sqlite3 *db, char *sql, char *err, size_t errlen)
{
    int rc = sql ? agent_exec(db, sql, err, errlen) : -1;
    sqlite3_free(sql);
    return rc;
}

static char *dump(json_t *v)
{
    return json_dumps(v ? v : json_array(), JSON_COMPACT);
}

json_t *backup_restore(sqlite3 *db, const char *body, size_t len, unsigned *status)
{
    json_error_t je;
    char err[AGENT_ERR];
    *status = 200;
    json_t *d = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!d || !json_is_object(d)) {
        json_decref(d);
        return bad(status, "body", "not a JSON object: %s", d ? "" : je.text);
    }
    json_t *answer = validate(d, status);
    if (answer) {
        json_decref(d);
        return answer;
    }
    if (agent_tx_begin(db, err, sizeof err) < 0)
        goto fail;
    /* Feeds are kept (with their entries: protection continues) when the backup names
     * the same subscription; others go, new ones come. */
    if (agent_exec(db, "DELETE FROM rules; DELETE FROM schedules; DELETE FROM grants;"
                   " DELETE FROM devices; DELETE FROM group_networks;"
                   " DELETE FROM group_categories; DELETE FROM groups; DELETE FROM settings;"
                   " DELETE FROM principals WHERE kind='delegate'", err, sizeof err) < 0)
        goto fail_tx;
    size_t i, j;
    json_t *v, *x;
    json_array_foreach(json_object_get(d, "groups"), i, v) {
        if (ins(db, sqlite3_mprintf("INSERT INTO groups(name, answer, safesearch) VALUES (%Q, %Q, %d)",
                                    str(v, "name"), str(v, "answer"),
                                    json_is_true(json_object_get(v, "safesearch")) ||
                                    json_integer_value(json_object_get(v, "safesearch")) != 0),
                err, sizeof err) < 0)
            goto fail_tx;
        json_array_foreach(json_object_get(v, "categories"), j, x)
            if (ins(db, sqlite3_mprintf("INSERT OR IGNORE INTO group_categories SELECT id, %Q FROM"
                                        " groups WHERE name=%Q", json_string_value(x),
                                        str(v, "name")), err, sizeof err) < 0)
                goto fail_tx;
        json_array_foreach(json_object_get(v, "networks"), j, x)
            if (ins(db, sqlite3_mprintf("INSERT OR IGNORE INTO group_networks SELECT id, %Q FROM"
                                        " groups WHERE name=%Q", json_string_value(x),
                                        str(v, "name")), err, sizeof err) < 0)
                goto fail_tx;
    }
    json_array_foreach(json_object_get(d, "settings"), i, v)
        if (str(v, "key") && str(v, "value") &&
            ins(db, sqlite3_mprintf("INSERT OR REPLACE INTO settings VALUES (%Q, %Q)", str(v, "key"),
                                    str(v, "value")), err, sizeof err) < 0)
            goto fail_tx;
    json_array_foreach(json_object_get(d, "delegates"), i, v)
        if (ins(db, sqlite3_mprintf("INSERT INTO principals(name, kind, pubkey, created) VALUES"
                                    " (%Q, 'delegate', %Q, %lld)", str(v, "name"), str(v, "pubkey"),
                                    (long long)json_integer_value(json_object_get(v, "created"))),
                err, sizeof err) < 0)
            goto fail_tx;
    json_array_foreach(json_object_get(d, "grants"), i, v) {
        char *c = dump(json_object_get(v, "categories")), *g = dump(json_object_get(v, "groups")),
             *a = dump(json_object_get(v, "actions"));
        int rc = ins(db, sqlite3_mprintf("INSERT INTO grants(id, delegate_id, categories, groups,"
                     " actions, created, expires_at, revoked_at) SELECT %lld, id, %Q, %Q, %Q, %lld,"
                     " %lld, %lld FROM principals WHERE name=%Q",
                     (long long)json_integer_value(json_object_get(v, "id")), c, g, a,
                     (long long)json_integer_value(json_object_get(v, "created")),
                     (long long)json_integer_value(json_object_get(v, "expires_at")),
                     (long long)json_integer_value(json_object_get(v, "revoked_at")),
                     str(v, "delegate")), err, sizeof err);
        free(c);
        free(g);
        free(a);
        if (rc < 0)
            goto fail_tx;
    }
    json_array_foreach(json_object_get(d, "rules"), i, v) {
        char name[DSET_NAME_MAX + 1];
        agent_norm_domain(str(v, "pattern"), name, sizeof name, err, sizeof err);
        json_t *gr = json_object_get(v, "grant");
        char grant[24] = "NULL";
        if (json_is_integer(gr))
            snprintf(grant, sizeof grant, "%lld", (long long)json_integer_value(gr));
        if (ins(db, sqlite3_mprintf("INSERT INTO rules(pattern, kind, category, group_id, author_id,"
                " grant_id, created, expires_at, note) VALUES (%Q, %Q, %Q, (SELECT id FROM groups"
                " WHERE name=%Q), (SELECT id FROM principals WHERE name=%Q), %s, %lld, %lld, %Q)",
                name, str(v, "kind"), str(v, "category"), str(v, "group"), str(v, "author"), grant,
                (long long)json_integer_value(json_object_get(v, "created")),
                (long long)json_integer_value(json_object_get(v, "expires_at")), str(v, "note")),
                err, sizeof err) < 0)
            goto fail_tx;
    }
    json_array_foreach(json_object_get(d, "schedules"), i, v) {
        json_t *gr = json_object_get(v, "grant");
        char grant[24] = "NULL";
        if (json_is_integer(gr))
            snprintf(grant, sizeof grant, "%lld", (long long)json_integer_value(gr));
        if (ins(db, sqlite3_mprintf("INSERT INTO schedules(group_id, category, days, start_min,"
                " end_min, author_id, grant_id, created) VALUES ((SELECT id FROM groups WHERE"
                " name=%Q), %Q, %lld, %lld, %lld, (SELECT id FROM principals WHERE name=%Q), %s,"
                " strftime('%%s'))", str(v, "group"), str(v, "category"),
                (long long)json_integer_value(json_object_get(v, "days")),
                (long long)json_integer_value(json_object_get(v, "start_min")),
                (long long)json_integer_value(json_object_get(v, "end_min")),
                str(v, "author") ? str(v, "author") : AGENT_OWNER, grant), err, sizeof err) < 0)
            goto fail_tx;
    }
    if (agent_exec(db, "CREATE TEMP TABLE keep_feeds(name TEXT PRIMARY KEY)", err, sizeof err) < 0)
        goto fail_tx;
    json_array_foreach(json_object_get(d, "feeds"), i, v) {
        if (ins(db, sqlite3_mprintf("INSERT OR IGNORE INTO keep_feeds VALUES (%Q)", str(v, "name")),
                err, sizeof err) < 0 ||
            ins(db, sqlite3_mprintf("DELETE FROM feeds WHERE name=%Q AND NOT (url=%Q AND kind=%Q"
                " AND feed_id IS %Q AND pubkey IS %Q)", str(v, "name"), str(v, "url"),
                str(v, "kind"), str(v, "feed_id"), str(v, "pubkey")), err, sizeof err) < 0 ||
            ins(db, sqlite3_mprintf("UPDATE feeds SET category=%Q, enabled=%d WHERE name=%Q",
                str(v, "category"), json_integer_value(json_object_get(v, "enabled")) ? 1 : 0,
                str(v, "name")), err, sizeof err) < 0)
            goto fail_tx;
    }
    if (agent_exec(db, "DELETE FROM feeds WHERE name NOT IN (SELECT name FROM keep_feeds);"
                   " DROP TABLE keep_feeds", err, sizeof err) < 0)
        goto fail_tx;
    json_array_foreach(json_object_get(d, "feeds"), i, v)
        if (ins(db, sqlite3_mprintf("INSERT OR IGNORE INTO feeds(name, url, kind, feed_id, pubkey, category,"
                " enabled, max_bytes) VALUES (%Q, %Q, %Q, %Q, %Q, %Q, %d, %lld)", str(v, "name"),
                str(v, "url"), str(v, "kind"), str(v, "feed_id"), str(v, "pubkey"),
                str(v, "category"), json_integer_value(json_object_get(v, "enabled")) ? 1 : 0,
                (long long)(json_integer_value(json_object_get(v, "max_bytes")) ?
                            json_integer_value(json_object_get(v, "max_bytes")) : 64 << 20)),
                err, sizeof err) < 0)
            goto fail_tx;
    json_array_foreach(json_object_get(d, "devices"), i, v)
        if (ins(db, sqlite3_mprintf("INSERT INTO devices(mac, label, importance, group_id, hostname,"
                " vendor, first_seen, last_seen) VALUES (%Q, %Q, %lld, (SELECT id FROM groups WHERE"
                " name=%Q), %Q, %Q, %lld, %lld)", str(v, "mac"), str(v, "label"),
                (long long)(json_integer_value(json_object_get(v, "importance")) ?
                            json_integer_value(json_object_get(v, "importance")) : 3),
                str(v, "group"), str(v, "hostname"), str(v, "vendor"),
                (long long)json_integer_value(json_object_get(v, "first_seen")),
                (long long)json_integer_value(json_object_get(v, "first_seen"))), err, sizeof err) < 0)
            goto fail_tx;
    /* Constraints the per-item checks cannot see (a rule naming a grant id that is not in
     * the backup, ...) are caught here, still inside the transaction. */
    json_t *fk = q(db, "PRAGMA foreign_key_check");
    if (!fk || json_array_size(fk)) {
        json_decref(fk);
        snprintf(err, sizeof err, "references between items do not match (e.g. a rule's grant)");
        goto fail_tx;
    }
    json_decref(fk);
    if (agent_audit(db, AGENT_OWNER, "backup.restore", 0, "ok", NULL, NULL, NULL) < 0 ||
        agent_tx_commit(db, err, sizeof err) < 0)
        goto fail_tx;
    json_t *counts = json_pack("{s:s, s:I, s:I, s:I}", "result", "restored",
                               "groups", (json_int_t)json_array_size(json_object_get(d, "groups")),
                               "rules", (json_int_t)json_array_size(json_object_get(d, "rules")),
                               "grants", (json_int_t)json_array_size(json_object_get(d, "grants")));
    json_decref(d);
    return counts;
fail_tx:
    agent_tx_rollback(db);
fail:
    json_decref(d);
    *status = 400;
    return json_pack("{s:s, s:s}", "error", err, "field", "body");
}
