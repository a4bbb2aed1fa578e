/* explain: for a domain or an IP (and optionally a client), the decision and the chain
 * of rules and feed entries that produced it — which list or rule, which category, whose,
 * under which grant. Walks the same suffix chain as the compiled domain set
 * (a.b.example.com, b.example.com, example.com) with the same "allow wins" rule, but
 * over the database, so it also shows entries a group does not enforce. */
#include "agent.h"
#include "agent_sql.h"
#include "domainset.h"
#include "iplist.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Group of a client: a device with that address, else a group network containing it,
 * else the default group. Returns the group id (and name into out). */
static int64_t client_group(sqlite3 *db, const char *client, char *out, size_t outlen)
{
    sqlite3_stmt *st;
    int64_t gid = -1;
    if (client && *client &&
        sqlite3_prepare_v2(db, "SELECT g.id, g.name FROM devices d JOIN groups g ON"
                           " g.id=d.group_id WHERE d.ipv4=?1 OR d.ipv6=?1", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, client, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) {
            gid = sqlite3_column_int64(st, 0);
            snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
    }
    if (gid < 0 && client && *client) {
        struct ipl_v4 c4, n4;
        struct ipl_v6 c6, n6;
        char why[96];
        int fam = iplist_parse_entry(client, &c4, &c6, why, sizeof why);
        int best = -1;
        /* Longest prefix over the owner's networks and the zones', like policy.set. */
        if (fam && sqlite3_prepare_v2(db, "SELECT g.id, g.name, n.cidr, 1 FROM group_networks n"
                                      " JOIN groups g ON g.id=n.group_id UNION ALL SELECT g.id,"
                                      " g.name, z.cidr, 0 FROM zone_networks z JOIN groups g ON"
                                      " g.name=z.group_name", -1, &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW) {
                const char *cidr = (const char *)sqlite3_column_text(st, 2);
                int f = iplist_parse_entry(cidr, &n4, &n6, why, sizeof why);
                int in = 0;
                if (f == 4 && fam == 4)
                    in = c4.lo >= n4.lo && c4.hi <= n4.hi;
                else if (f == 6 && fam == 6)
                    in = ipl_u128_cmp(c6.lo, n6.lo) >= 0 && ipl_u128_cmp(c6.hi, n6.hi) <= 0;
                /* Longest prefix = smallest range: compare by prefix length text. */
                const char *slash = strchr(cidr, '/');
                int bits = slash ? atoi(slash + 1) : (f == 4 ? 32 : 128);
                /* Same prefix: the owner's entry (listed first) wins, as in compile. */
                if (in && bits > best) {
                    best = bits;
                    gid = sqlite3_column_int64(st, 0);
                    snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 1));
                }
            }
            sqlite3_finalize(st);
        }
    }
    if (gid < 0 &&
        sqlite3_prepare_v2(db, "SELECT g.id, g.name FROM settings s JOIN groups g ON"
                           " g.name=s.value WHERE s.key='default_group'", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            gid = sqlite3_column_int64(st, 0);
            snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
    }
    return gid;
}

struct verdict {
    int allow, block;
};

static void add_step(json_t *chain, struct verdict *vd, const char *matched, const char *source,
                     const char *name, const char *kind, const char *category,
                     const char *author, int64_t grant, int enforced, const char *why)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "matched", matched, "source", source,
                          "name", name, "action", kind, "enforced", enforced);
    json_object_set_new(o, "category", category ? json_string(category) : json_null());
    json_object_set_new(o, "author", author ? json_string(author) : json_null());
    json_object_set_new(o, "grant", grant > 0 ? json_integer(grant) : json_null());
    if (why)
        json_object_set_new(o, "note", json_string(why));
    json_array_append_new(chain, o);
    if (enforced) {
        if (strcmp(kind, "allow") == 0)
            vd->allow = 1;
        else
            vd->block = 1;
    }
}

static int category_enforced(const char *category, uint32_t mask)
{
    int c = category ? dset_category_parse(category) : -1;
    return c >= 0 && (mask >> c & 1);
}

static void explain_rules(sqlite3 *db, const char *suffix, int64_t gid, uint32_t mask,
                          int64_t now, json_t *chain, struct verdict *vd)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT r.id, r.kind, r.category, r.group_id, p.name,"
                           " r.grant_id, r.expires_at, p.kind FROM rules r JOIN principals p"
                           " ON p.id=r.author_id WHERE r.pattern=?2 AND " AGENT_LIVE_RULE
                           " ORDER BY r.id", -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, suffix, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char name[48];
        snprintf(name, sizeof name, "rule %lld", (long long)sqlite3_column_int64(st, 0));
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        const char *cat = (const char *)sqlite3_column_text(st, 2);
        int64_t rg = sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3);
        int is_owner = strcmp((const char *)sqlite3_column_text(st, 7), "owner") == 0;
        int enforced = 1;
        const char *why = NULL;
        if (rg && rg != gid) {
            enforced = 0;
            why = "rule is for another group";
        } else if (strcmp(kind, "block") == 0 && !(is_owner && (!cat || !strcmp(cat, "custom")))
                   && !category_enforced(cat, mask)) {
            enforced = 0;
            why = "category not enabled for this group now";
        } else if (sqlite3_column_int64(st, 6) > 0) {
            why = "temporary: expires_at in the rule";
        }
        add_step(chain, vd, suffix, "rule", name, kind, cat,
                 (const char *)sqlite3_column_text(st, 4),
                 sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 5),
                 enforced, why);
    }
    sqlite3_finalize(st);
}

static void explain_feeds(sqlite3 *db, const char *indicator, const char *kinds, uint32_t mask,
                          int64_t now, json_t *chain, struct verdict *vd, const char *matched)
{
    sqlite3_stmt *st;
    char *q = sqlite3_mprintf("SELECT f.name, f.kind, e.action, COALESCE(e.category, f.category),"
                              " e.confidence, e.source FROM feed_entries e JOIN feeds f ON"
                              " f.id=e.feed_id WHERE e.indicator=?1 AND f.enabled=1 AND"
                              " e.kind IN (%s) AND (e.expires=0 OR e.expires>?2)", kinds);
    int rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
    sqlite3_free(q);
    if (rc != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, indicator, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char name[96];
        snprintf(name, sizeof name, "%s %s", strcmp((const char *)sqlite3_column_text(st, 1),
                 "list") == 0 ? "list" : "feed", (const char *)sqlite3_column_text(st, 0));
        const char *act = (const char *)sqlite3_column_text(st, 2);
        const char *cat = (const char *)sqlite3_column_text(st, 3);
        int enforced = strcmp(act, "allow") == 0 || category_enforced(cat, mask);
        add_step(chain, vd, matched, "feed", name, act, cat,
                 (const char *)sqlite3_column_text(st, 0), 0, enforced,
                 enforced ? NULL : "category not enabled for this group now");
    }
    sqlite3_finalize(st);
}

/* IP entries: exact addresses by index, then CIDR entries by range check (feeds hold few
 * of them compared to domains, and explain is interactive). */
static void explain_ip(sqlite3 *db, const char *ip, int fam, struct ipl_v4 *a4,
                       struct ipl_v6 *a6, uint32_t mask, int64_t now, json_t *chain,
                       struct verdict *vd)
{
    explain_feeds(db, ip, "'ipv4','ipv6'", mask, now, chain, vd, ip);
    sqlite3_stmt *st;
    /* address rules (owner or delegate): fw.set's rules_block set, for the whole office */
    if (sqlite3_prepare_v2(db, "SELECT r.id, r.pattern, r.category, p.name, r.grant_id FROM rules r"
                           " JOIN principals p ON p.id=r.author_id WHERE r.kind='block' AND"
                           " r.group_id IS NULL AND NOT " AGENT_NAME_RULE " AND " AGENT_LIVE_RULE
                           " ORDER BY r.id", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *pat = (const char *)sqlite3_column_text(st, 1);
            struct ipl_v4 n4;
            struct ipl_v6 n6;
            char why[96], name[48];
            int f = iplist_parse_entry(pat, &n4, &n6, why, sizeof why);
            if (!((f == 4 && fam == 4 && a4->lo >= n4.lo && a4->hi <= n4.hi) ||
                  (f == 6 && fam == 6 && ipl_u128_cmp(a6->lo, n6.lo) >= 0 &&
                   ipl_u128_cmp(a6->hi, n6.hi) <= 0)))
                continue;
            snprintf(name, sizeof name, "rule %lld", (long long)sqlite3_column_int64(st, 0));
            add_step(chain, vd, pat, "rule", name, "block",
                     (const char *)sqlite3_column_text(st, 2),
                     (const char *)sqlite3_column_text(st, 3),
                     sqlite3_column_type(st, 4) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 4),
                     1, NULL);
        }
        sqlite3_finalize(st);
    }
    /* feeds outer (CROSS JOIN): the CIDR entries then come from the primary key's
     * (feed_id, kind) range instead of a scan of every row (a million domain entries) */
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT e.indicator FROM feeds f CROSS JOIN feed_entries e"
                           " ON e.feed_id=f.id WHERE f.enabled=1 AND e.kind='cidr'", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *cidr = (const char *)sqlite3_column_text(st, 0);
        struct ipl_v4 n4;
        struct ipl_v6 n6;
        char why[96];
        int f = iplist_parse_entry(cidr, &n4, &n6, why, sizeof why);
        int in = (f == 4 && fam == 4 && a4->lo >= n4.lo && a4->hi <= n4.hi) ||
                 (f == 6 && fam == 6 && ipl_u128_cmp(a6->lo, n6.lo) >= 0 &&
                  ipl_u128_cmp(a6->hi, n6.hi) <= 0);
        if (in)
            explain_feeds(db, cidr, "'cidr'", mask, now, chain, vd, cidr);
    }
    sqlite3_finalize(st);
}

json_t *agent_explain(sqlite3 *db, const char *query, const char *client, int64_t now,
                      char *err, size_t errlen)
{
    char gname[64] = "", why[96];
    struct ipl_v4 a4;
    struct ipl_v6 a6;
    int64_t gid = client_group(db, client, gname, sizeof gname);
    uint32_t mask = gid > 0 ? agent_group_categories(db, gid, now) : 0;
    json_t *chain = json_array();
    struct verdict vd = { 0, 0 };
    const char *type;
    char name[DSET_NAME_MAX + 1];
    int fam = strchr(query, ':') || strspn(query, "0123456789.") == strlen(query)
              ? iplist_parse_entry(query, &a4, &a6, why, sizeof why) : 0;
    if (fam == 4 || fam == 6) {
        type = "ip";
        snprintf(name, sizeof name, "%s", query);
        explain_ip(db, query, fam, &a4, &a6, mask, now, chain, &vd);
    } else {
        char e2[128];
        if (dset_normalize(query, strlen(query), name, sizeof name, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "q: '%.80s' is neither an IP address nor a domain: %s",
                     query, e2);
            json_decref(chain);
            return NULL;
        }
        type = "domain";
        for (const char *s = name; s; ) {
            explain_rules(db, s, gid, mask, now, chain, &vd);
            explain_feeds(db, s, "'domain'", mask, now, chain, &vd, s);
            s = strchr(s, '.');
            if (s)
                s++;
        }
    }
    json_t *cats = json_array();
    for (int c = 0; c < DSET_CAT_COUNT; c++)
        if (mask >> c & 1)
            json_array_append_new(cats, json_string(dset_category_name(c)));
    const char *decision = vd.allow ? "allow" : vd.block ? "block" : "none";
    /* "none" with entries in the chain means listed under a category this group does
     * not block (now): say so, an owner reading "not listed" would doubt the lists. */
    const char *summary = vd.allow ? "allowed: an allow entry beats every block entry"
                          : vd.block ? "blocked"
                          : json_array_size(chain) ? "listed, but not in a category this group "
                                                     "blocks now: resolved normally"
                          : "not listed: resolved normally";
    return json_pack("{s:s, s:s, s:s?, s:s, s:o, s:s, s:s, s:o}", "query", name, "type", type,
                     "client", client, "group", gname, "group_categories", cats,
                     "decision", decision, "summary", summary, "chain", chain);
}

json_t *agent_explain_compiled(const char *set_path, json_t *explained, char *err,
                              size_t errlen)
{
    const char *type = json_string_value(json_object_get(explained, "type"));
    const char *name = json_string_value(json_object_get(explained, "query"));
    if (!type || strcmp(type, "domain") != 0 || !name)
        return json_null();   /* IPs live in fw.set; fwd reports what it holds */
    struct dset *set = dset_open(set_path, err, errlen);
    if (!set)
        return NULL;
    uint32_t mask = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(explained, "group_categories"), i, c) {
        int k = dset_category_parse(json_string_value(c));
        if (k >= 0)
            mask |= 1u << k;
    }
    struct dset_match m;
    enum dset_verdict v = dset_lookup_masked(set, name, strlen(name), mask, ~(uint64_t)0, &m);
    json_t *lists = json_array();
    for (unsigned l = 0; l < dset_list_count(set) && l < 64; l++)
        if (m.lists >> l & 1)
            json_array_append_new(lists, json_string(dset_list_label(set, l)));
    json_t *out = json_pack("{s:s, s:o, s:I}", "verdict",
                            v == DSET_BLOCK ? "block" : v == DSET_ALLOW_VERDICT ? "allow" : "none",
                            "lists", lists, "built", (json_int_t)dset_build_time(set));
    if (v != DSET_NONE)
        json_object_set_new(out, "matched", json_string(name + m.matched_offset));
    dset_close(set);
    return out;
}
