/* Owner policy: custom rules, groups, schedules. Each change runs in one transaction
 * together with its audit row, so the log never disagrees with the state. */
#include "agent.h"
#include "agent_sql.h"
#include "domainset.h"
#include "iplist.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int agent_norm_domain(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    char e2[128];
    if (!in || !*in) {
        snprintf(err, errlen, "pattern: empty domain");
        return -1;
    }
    /* "*.example.com" means the same as "example.com" here: rules cover the subtree. */
    if (strncmp(in, "*.", 2) == 0)
        in += 2;
    if (dset_normalize(in, strlen(in), out, outlen, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "pattern: '%.80s': %s", in, e2);
        return -1;
    }
    if (!strchr(out, '.')) {
        snprintf(err, errlen, "pattern: '%.80s': refusing a whole top-level domain", in);
        return -1;
    }
    return 0;
}

static json_t *row_json(sqlite3 *db, const char *sql, int64_t id)
{
    char idtxt[24], e[AGENT_ERR];
    snprintf(idtxt, sizeof idtxt, "%lld", (long long)id);
    const char *args[] = { idtxt };
    json_t *arr = agent_query_json(db, sql, args, 1, e, sizeof e);
    json_t *o = arr && json_array_size(arr) ? json_incref(json_array_get(arr, 0)) : NULL;
    json_decref(arr);
    return o;
}

#define RULE_SQL "SELECT r.id, r.pattern, r.kind, r.category, g.name AS \"group\"," \
    " p.name AS author, r.grant_id, r.created, r.expires_at, r.note FROM rules r" \
    " JOIN principals p ON p.id=r.author_id LEFT JOIN groups g ON g.id=r.group_id" \
    " WHERE r.id=?"

int64_t agent_rule_add(sqlite3 *db, const char *who, int64_t grant_id, const char *pattern,
                       const char *kind, const char *category, const char *group,
                       int64_t expires, const char *note, char *err, size_t errlen)
{
    char name[DSET_NAME_MAX + 1];
    if (!kind || (strcmp(kind, "block") != 0 && strcmp(kind, "allow") != 0)) {
        snprintf(err, errlen, "kind: expected block or allow");
        return -1;
    }
    /* An address or network is a firewall rule (compile puts it in fw.set's own set
     * "rules_block"), not a name: "198.18.10.66" would otherwise pass as a domain and
     * block nothing. It applies to the whole office, and only blocking is supported. */
    struct ipl_v4 r4;
    struct ipl_v6 r6;
    char why[96];
    if (pattern && iplist_parse_entry(pattern, &r4, &r6, why, sizeof why) != 0) {
        if (strcmp(kind, "block") != 0) {
            snprintf(err, errlen, "pattern: '%.60s' is an address: addresses can be blocked, "
                     "not allowed (allow rules are for names)", pattern);
            return -1;
        }
        if (group) {
            snprintf(err, errlen, "group: an address block applies to the whole office; "
                     "leave the group out");
            return -1;
        }
        snprintf(name, sizeof name, "%s", pattern);
    } else if (agent_norm_domain(pattern, name, sizeof name, err, errlen) < 0) {
        return -1;
    }
    if (category && dset_category_parse(category) < 0) {
        snprintf(err, errlen, "category: unknown category '%.40s'", category);
        return -1;
    }
    int64_t gid = 0;
    if (group && (gid = agent_group_id(db, group)) < 0) {
        snprintf(err, errlen, "group: no group named '%.40s'", group);
        return -1;
    }
    int64_t author = agent_principal_id(db, who);
    if (author < 0) {
        snprintf(err, errlen, "author: no principal named '%.40s'", who);
        return -1;
    }
    int own_tx = sqlite3_get_autocommit(db);
    if (own_tx && agent_tx_begin(db, err, errlen) < 0)
        return -1;
    sqlite3_stmt *st;
    int64_t id = -1;
    if (sqlite3_prepare_v2(db, "INSERT INTO rules(pattern, kind, category, group_id, author_id,"
                           " grant_id, created, expires_at, note) VALUES (?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
    if (category)
        sqlite3_bind_text(st, 3, category, -1, SQLITE_TRANSIENT);
    if (group)
        sqlite3_bind_int64(st, 4, gid);
    sqlite3_bind_int64(st, 5, author);
    if (grant_id > 0)
        sqlite3_bind_int64(st, 6, grant_id);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL));
    sqlite3_bind_int64(st, 8, expires);
    if (note)
        sqlite3_bind_text(st, 9, note, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto fail;
    id = sqlite3_last_insert_rowid(db);
    json_t *after = row_json(db, RULE_SQL, id);
    rc = agent_audit(db, who, "rule.add", grant_id, "ok", NULL, NULL, after);
    json_decref(after);
    if (rc < 0 || (own_tx && agent_tx_commit(db, err, errlen) < 0))
        goto fail;
    return id;
fail:
    snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
    if (own_tx)
        agent_tx_rollback(db);
    return -1;
}

static int delete_audited(sqlite3 *db, const char *who, const char *what, const char *sel,
                          const char *del, int64_t id, char *err, size_t errlen)
{
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    json_t *before = row_json(db, sel, id);
    if (!before) {
        agent_tx_rollback(db);
        snprintf(err, errlen, "id: no entry %lld", (long long)id);
        return -1;
    }
    sqlite3_stmt *st;
    int ok = sqlite3_prepare_v2(db, del, -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, id);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    ok = ok && agent_audit(db, who, what, 0, "ok", NULL, before, NULL) == 0;
    json_decref(before);
    if (!ok || agent_tx_commit(db, err, errlen) < 0) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        agent_tx_rollback(db);
        return -1;
    }
    return 0;
}

int agent_rule_delete(sqlite3 *db, const char *who, int64_t id, char *err, size_t errlen)
{
    return delete_audited(db, who, "rule.delete", RULE_SQL, "DELETE FROM rules WHERE id=?",
                          id, err, errlen);
}

#define GROUP_SQL "SELECT g.name, g.answer, g.safesearch," \
    " (SELECT json_group_array(category) FROM (SELECT category FROM group_categories" \
    "   WHERE group_id=g.id ORDER BY category)) AS categories," \
    " (SELECT json_group_array(cidr) FROM (SELECT cidr FROM group_networks" \
    "   WHERE group_id=g.id ORDER BY cidr)) AS networks FROM groups g WHERE g.id=?"

static int valid_cidr(const char *s)
{
    char buf[64];
    unsigned char a[16];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    int max = inet_pton(AF_INET, buf, a) == 1 ? 32 : inet_pton(AF_INET6, buf, a) == 1 ? 128 : -1;
    if (max < 0)
        return 0;
    if (!slash)
        return 1;
    char *end;
    long bits = strtol(slash + 1, &end, 10);
    return *end == '\0' && end != slash + 1 && bits >= 0 && bits <= max;
}

static int valid_group_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* Replaces the (group_id, value) rows of table for gid with the strings in values
 * (already validated). table is one of our own names, never input. Returns 0 or -1. */
static int replace_members(sqlite3 *db, const char *table, int64_t gid, json_t *values,
                           char *err, size_t errlen)
{
    char *q = sqlite3_mprintf("DELETE FROM %s WHERE group_id=%lld", table, (long long)gid);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) {
        if (rc < 0)
            break;
        q = sqlite3_mprintf("INSERT OR IGNORE INTO %s VALUES (%lld, %Q)", table, (long long)gid,
                            json_string_value(v));
        rc = agent_exec(db, q, err, errlen);
        sqlite3_free(q);
    }
    return rc;
}

int agent_group_set(sqlite3 *db, const char *who, const char *name, json_t *categories,
                    const char *answer, int safesearch, json_t *networks, int create,
                    char *err, size_t errlen)
{
    size_t i;
    json_t *v;
    if (!valid_group_name(name)) {
        snprintf(err, errlen, "name: use 1-32 of a-z 0-9 - _");
        return -1;
    }
    if (categories) {
        json_array_foreach(categories, i, v) {
            if (!json_is_string(v) || dset_category_parse(json_string_value(v)) < 0) {
                snprintf(err, errlen, "categories[%zu]: not a known category", i);
                return -1;
            }
        }
    }
    if (networks) {
        json_array_foreach(networks, i, v) {
            if (!json_is_string(v) || !valid_cidr(json_string_value(v))) {
                snprintf(err, errlen, "networks[%zu]: expected an address or CIDR", i);
                return -1;
            }
        }
    }
    if (answer && strcmp(answer, "nxdomain") && strcmp(answer, "null") &&
        strcmp(answer, "blockpage")) {
        snprintf(err, errlen, "answer: expected nxdomain, null or blockpage");
        return -1;
    }
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    int64_t gid = agent_group_id(db, name);
    json_t *before = NULL;
    char sql[256];
    if (gid < 0 && !create) {
        snprintf(err, errlen, "name: no group named '%s'", name);
        goto fail_quiet;
    }
    if (gid < 0) {
        char *q = sqlite3_mprintf("INSERT INTO groups(name) VALUES (%Q)", name);
        int rc = agent_exec(db, q, err, errlen);
        sqlite3_free(q);
        if (rc < 0)
            goto fail_quiet;
        gid = sqlite3_last_insert_rowid(db);
    } else {
        before = row_json(db, GROUP_SQL, gid);
    }
    if (answer) {
        char *q = sqlite3_mprintf("UPDATE groups SET answer=%Q WHERE id=%lld", answer,
                                  (long long)gid);
        int rc = agent_exec(db, q, err, errlen);
        sqlite3_free(q);
        if (rc < 0)
            goto fail_quiet;
    }
    if (safesearch >= 0) {
        snprintf(sql, sizeof sql, "UPDATE groups SET safesearch=%d WHERE id=%lld",
                 safesearch ? 1 : 0, (long long)gid);
        if (agent_exec(db, sql, err, errlen) < 0)
            goto fail_quiet;
    }
    if ((categories && replace_members(db, "group_categories", gid, categories, err, errlen) < 0) ||
        (networks && replace_members(db, "group_networks", gid, networks, err, errlen) < 0))
        goto fail_quiet;
    json_t *after = row_json(db, GROUP_SQL, gid);
    int rc = agent_audit(db, who, before ? "group.set" : "group.add", 0, "ok", NULL, before,
                         after);
    json_decref(after);
    json_decref(before);
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    return 0;
fail_quiet:
    json_decref(before);
    agent_tx_rollback(db);
    return -1;
}

/* ---- schedules ---- */

static const char *const day_names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

static int day_index(const char *s, size_t n)
{
    for (int i = 0; i < 7; i++)
        if (n == 3 && strncmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

int agent_days_parse(const char *s)
{
    if (strcmp(s, "daily") == 0)
        return 0x7f;
    if (strcmp(s, "weekdays") == 0)
        return 0x1f;
    if (strcmp(s, "weekend") == 0)
        return 0x60;
    int mask = 0;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        const char *dash = memchr(s, '-', n);
        int a, b;
        if (dash) {
            a = day_index(s, (size_t)(dash - s));
            b = day_index(dash + 1, n - (size_t)(dash - s) - 1);
        } else {
            a = b = day_index(s, n);
        }
        if (a < 0 || b < 0)
            return -1;
        for (int d = a;; d = (d + 1) % 7) {
            mask |= 1 << d;
            if (d == b)
                break;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return mask ? mask : -1;
}

int agent_schedule_active(unsigned days, int start_min, int end_min, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    int wday = (tm.tm_wday + 6) % 7;   /* Monday = 0 */
    int min = tm.tm_hour * 60 + tm.tm_min;
    if (start_min <= end_min)
        return (days >> wday & 1) && min >= start_min && min < end_min;
    /* Across midnight (22:00-06:00): the evening belongs to today's day bit, the early
     * morning to yesterday's. */
    if (min >= start_min)
        return days >> wday & 1;
    if (min < end_min)
        return days >> ((wday + 6) % 7) & 1;
    return 0;
}

uint32_t agent_group_categories(sqlite3 *db, int64_t group_id, int64_t t)
{
    uint32_t mask = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT category FROM group_categories WHERE group_id=?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, group_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int c = dset_category_parse((const char *)sqlite3_column_text(st, 0));
            if (c >= 0)
                mask |= 1u << c;
        }
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(db, "SELECT category, days, start_min, end_min FROM schedules"
                           " WHERE group_id=?2 AND " AGENT_LIVE_GRANT("grant_id"), -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, t);
        sqlite3_bind_int64(st, 2, group_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int c = dset_category_parse((const char *)sqlite3_column_text(st, 0));
            if (c >= 0 && agent_schedule_active((unsigned)sqlite3_column_int(st, 1),
                                                sqlite3_column_int(st, 2),
                                                sqlite3_column_int(st, 3), t))
                mask |= 1u << c;
        }
        sqlite3_finalize(st);
    }
    return mask;
}

#define SCHED_SQL "SELECT s.id, g.name AS \"group\", s.category, s.days, s.start_min," \
    " s.end_min, p.name AS author, s.grant_id FROM schedules s JOIN groups g" \
    " ON g.id=s.group_id JOIN principals p ON p.id=s.author_id WHERE s.id=?"

int64_t agent_schedule_add(sqlite3 *db, const char *who, int64_t grant_id, const char *group,
                           const char *category, unsigned days, int start_min, int end_min,
                           char *err, size_t errlen)
{
    int64_t gid = agent_group_id(db, group);
    int64_t author = agent_principal_id(db, who);
    if (gid < 0) {
        snprintf(err, errlen, "group: no group named '%.40s'", group ? group : "");
        return -1;
    }
    if (!category || dset_category_parse(category) < 0) {
        snprintf(err, errlen, "category: unknown category");
        return -1;
    }
    if (days == 0 || days > 0x7f) {
        snprintf(err, errlen, "days: expected e.g. mon-fri, weekend, daily");
        return -1;
    }
    if (start_min < 0 || start_min >= 1440 || end_min < 0 || end_min > 1440 ||
        start_min == end_min) {
        snprintf(err, errlen, "start/end: expected HH:MM, start != end");
        return -1;
    }
    int own_tx = sqlite3_get_autocommit(db);
    if (own_tx && agent_tx_begin(db, err, errlen) < 0)
        return -1;
    char *q = sqlite3_mprintf("INSERT INTO schedules(group_id, category, days, start_min,"
                              " end_min, author_id, grant_id, created) VALUES (%lld, %Q, %u,"
                              " %d, %d, %lld, %s, %lld)", (long long)gid, category, days,
                              start_min, end_min, (long long)author,
                              grant_id > 0 ? "?" : "NULL", (long long)time(NULL));
    sqlite3_stmt *st;
    int ok = sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK;
    sqlite3_free(q);
    if (ok) {
        if (grant_id > 0)
            sqlite3_bind_int64(st, 1, grant_id);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    int64_t id = ok ? sqlite3_last_insert_rowid(db) : -1;
    if (ok) {
        json_t *after = row_json(db, SCHED_SQL, id);
        ok = agent_audit(db, who, "schedule.add", grant_id, "ok", NULL, NULL, after) == 0;
        json_decref(after);
    }
    if (!ok || (own_tx && agent_tx_commit(db, err, errlen) < 0)) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        if (own_tx)
            agent_tx_rollback(db);
        return -1;
    }
    return id;
}

int agent_schedule_delete(sqlite3 *db, const char *who, int64_t id, char *err, size_t errlen)
{
    return delete_audited(db, who, "schedule.delete", SCHED_SQL,
                          "DELETE FROM schedules WHERE id=?", id, err, errlen);
}
