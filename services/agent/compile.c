/* Compile: database -> domains.set (dset builder), policy.set (policyset writer), fw.set
 * (fwset writer). Each writer goes through PATH.tmp + fsync + rename, so a crash (even
 * kill -9 in the middle) leaves the daemons on the old artifacts or the new ones.
 *
 * What goes where:
 *   domains.set  feed/list domain entries, one list per (feed, category) and (feed, allow);
 *                delegate and categorised owner rules for every group, one list per
 *                (author, category) — dnsd enforces them where the group enables the
 *                category, the allow lists everywhere;
 *   policy.set   per group: effective categories now (base + active schedules), answer,
 *                safe search, the owner's uncategorised blocks and all group-bound rules;
 *                clients from group networks and devices with a group;
 *   fw.set       IP / CIDR block entries of feeds as the "feed_block" sets. */
#include "accounts.h"
#include "agentd.h"
#include "agent_sql.h"
#include "config.h"
#include "domainset.h"
#include "fwset.h"
#include "incidents.h"
#include "iplist.h"
#include "log.h"
#include "policyset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct lists {
    char label[DSET_MAX_LISTS][64];
    int id[DSET_MAX_LISTS];
    int n;
    int frozen;   /* overlay: only the base's lists; a new one means a full compile */
};

/* Returns the dset list id for label, registering it on first use; -2 when frozen and
 * the label is new. */
static int list_for(struct dset_builder *b, struct lists *ls, const char *label, int category,
                    int is_allow, char *err, size_t errlen)
{
    for (int i = 0; i < ls->n; i++)
        if (strcmp(ls->label[i], label) == 0)
            return ls->id[i];
    if (ls->frozen) {
        snprintf(err, errlen, "list '%s' is not in the base set", label);
        return -2;
    }
    if (ls->n == DSET_MAX_LISTS) {
        snprintf(err, errlen, "more than %d (source, category) lists; disable a feed",
                 DSET_MAX_LISTS);
        return -1;
    }
    int id = dset_builder_add_list(b, label, category, is_allow, err, errlen);
    if (id < 0)
        return -1;
    snprintf(ls->label[ls->n], sizeof ls->label[0], "%s", label);
    ls->id[ls->n++] = id;
    return id;
}

/* The box's wiring (otasuke.conf zones) goes into fw.set: fwd builds its per-zone chains
 * from the interface names, and without them it would forward nothing. */
static void fw_opts_from_config(const struct ota_config *cfg, struct fwset_opts *o)
{
    int used[FWSET_ZONES] = { 0 };
    for (int i = 0; i < cfg->n_zones; i++) {
        const struct cfg_zone *zn = &cfg->zones[i];
        for (int z = 0; z < FWSET_ZONES; z++) {
            if (strcmp(zn->name, fwset_zone_name(z)) != 0 || used[z] == FWSET_MAX_IFACES)
                continue;
            snprintf(o->ifname[z][used[z]++], FWSET_IFNAMSIZ, "%s", zn->interface);
            if (z == FWSET_ZONE_IOT && zn->internet_allowlist_only)
                o->flags |= FWSET_F_IOT_ALLOWLIST;
        }
    }
    if (cfg->firewall.nflog_group > 0)
        o->nflog_group = (uint32_t)cfg->firewall.nflog_group;
}

/* "192.0.2.1/24" (the box's address on a zone) -> "192.0.2.0/24": the zone's clients. */
static int zone_network(const char *addr, char *out, size_t outlen)
{
    char host[64];
    const char *slash = strchr(addr, '/');
    if (!slash || (size_t)(slash - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(slash - addr));
    host[slash - addr] = '\0';
    int bits = atoi(slash + 1);
    unsigned char a[16];
    int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
    int len = fam == AF_INET ? 4 : 16;
    if (inet_pton(fam, host, a) != 1 || bits < 0 || bits > len * 8)
        return -1;
    for (int i = 0; i < len; i++) {
        int keep = bits - i * 8;
        a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
    }
    char net[INET6_ADDRSTRLEN];
    inet_ntop(fam, a, net, sizeof net);
    snprintf(out, outlen, "%s/%d", net, bits);
    return 0;
}

/* The domain rows of enabled feeds, then the categorised / allow rules of every
 * author; sql_where narrows both to some names (overlay) or is "" (everything). */
static const char *const domain_sql[] = {
    "SELECT f.name, COALESCE(e.category, f.category), e.action, e.indicator FROM"
    " feed_entries e JOIN feeds f ON f.id=e.feed_id WHERE f.enabled=1 AND"
    " e.kind='domain' AND (e.expires=0 OR e.expires>?1)",
    "SELECT 'rule:' || p.name, r.category, r.kind, r.pattern FROM rules r JOIN principals p"
    " ON p.id=r.author_id WHERE r.group_id IS NULL AND (r.kind='allow' OR"
    " (r.category IS NOT NULL AND r.category<>'custom')) AND " AGENT_NAME_RULE " AND "
    AGENT_LIVE_RULE,
};
static const char *const domain_sql_changed[] = {
    " AND e.indicator IN (SELECT indicator FROM temp.feed_changed WHERE kind='domain')",
    " AND r.pattern IN (SELECT indicator FROM temp.feed_changed WHERE kind='domain')",
};

/* What the last full build wrote into domains.set: its key and list table, so an
 * overlay compile need not open (and checksum, 40 MB at 1M names) the base. Empty
 * after a start; the first compile of a run is always a full one. */
static struct {
    int valid;
    uint8_t key[16];
    struct lists ls;
    int category[DSET_MAX_LISTS], is_allow[DSET_MAX_LISTS];
} base_meta;

/* Streams the rows of both queries into the builder. Returns 0, -1 with err, or -2
 * when a frozen list table lacks a label. */
static int add_domain_rows(struct agentd *ad, int64_t now, struct dset_builder *b,
                           struct lists *ls, int changed_only, char *err, size_t errlen)
{
    for (size_t q = 0; q < 2; q++) {
        sqlite3_stmt *st = NULL;
        char *sql = sqlite3_mprintf("%s%s", domain_sql[q],
                                    changed_only ? domain_sql_changed[q] : "");
        int prc = sql ? sqlite3_prepare_v2(ad->db, sql, -1, &st, NULL) : SQLITE_NOMEM;
        sqlite3_free(sql);
        if (prc != SQLITE_OK) {
            snprintf(err, errlen, "database: %s", sqlite3_errmsg(ad->db));
            return -1;
        }
        sqlite3_bind_int64(st, 1, now);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *src = (const char *)sqlite3_column_text(st, 0);
            const char *cat = (const char *)sqlite3_column_text(st, 1);
            int allow = strcmp((const char *)sqlite3_column_text(st, 2), "allow") == 0;
            const char *name = (const char *)sqlite3_column_text(st, 3);
            int c = cat ? dset_category_parse(cat) : -1;
            if (!allow && c < 0)
                continue;
            char label[64];
            snprintf(label, sizeof label, "%.48s/%s", src, allow ? "allow" : cat);
            int id = list_for(b, ls, label, allow ? DSET_CAT_CUSTOM : c, allow, err, errlen);
            if (id < 0 || dset_builder_add(b, id, name, strlen(name), DSET_SUBTREE, err,
                                           errlen) < 0) {
                sqlite3_finalize(st);
                return id == -2 ? -2 : -1;
            }
        }
        sqlite3_finalize(st);
    }
    return 0;
}

static int build_domains(struct agentd *ad, int64_t now, const char *path, uint64_t *names,
                         char *err, size_t errlen)
{
    struct dset_builder *b = dset_builder_new();
    struct lists ls = { .n = 0 };
    int rc = -1;
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Feeds first, then rules; one query each, streamed: 1M rows never sit in memory
     * twice (the builder's arena is the only copy). The scan reads each page once, so
     * SQLite's 8 MB page cache buys nothing here: it is cut to 1 MB for the compile
     * (and what it held handed back to the system) so the builder has the room. */
    sqlite3_exec(ad->db, "PRAGMA cache_size=-1000", NULL, NULL, NULL);
    malloc_trim(0);
    if (add_domain_rows(ad, now, b, &ls, 0, err, errlen) < 0)
        goto out;
    struct dset_build_stats stats;
    base_meta.valid = 0;
    if (dset_builder_write(b, path, &stats, err, errlen) < 0)
        goto out;
    *names = stats.names;
    dset_builder_get_key(b, base_meta.key);
    base_meta.ls = ls;
    for (int i = 0; i < ls.n; i++) {
        /* labels are "source/category" or "source/allow" (add_domain_rows) */
        const char *slash = strrchr(ls.label[i], '/');
        base_meta.is_allow[i] = slash && !strcmp(slash + 1, "allow");
        base_meta.category[i] = base_meta.is_allow[i] ? DSET_CAT_CUSTOM
                                : dset_category_parse(slash ? slash + 1 : "");
    }
    base_meta.valid = 1;
    rc = 0;
out:
    dset_builder_free(b);
    sqlite3_exec(ad->db, "PRAGMA cache_size=-8000", NULL, NULL, NULL);   /* db.c's */
    return rc;
}

/* After a full build: no overlay, empty change log. */
static void overlay_reset(struct agentd *ad, const char *dpath)
{
    char opath[600];
    snprintf(opath, sizeof opath, "%s.overlay", dpath);
    if (unlink(opath) < 0 && errno != ENOENT)
        log_warn("%s: %s (dnsd ignores it: it belongs to the old base)", opath, strerror(errno));
    sqlite3_exec(ad->db, "DELETE FROM temp.feed_changed", NULL, NULL, NULL);
    ad->delta_dirty = 0;
}

static json_t *names_json(sqlite3 *db, const char *sql, int64_t now, int64_t gid)
{
    json_t *a = json_array();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return a;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, gid);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(a, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    return a;
}

static json_t *policy_doc(sqlite3 *db, int64_t now)
{
    json_t *groups = json_array(), *clients = json_array();
    sqlite3_stmt *st;
    /* webd tells the agent which addresses serve the block page when it starts; until
     * it has, a group set to "blockpage" answers NXDOMAIN rather than point nowhere. */
    char *bp4 = accounts_meta_get(db, "webd.blockpage_v4");
    char *bp6 = accounts_meta_get(db, "webd.blockpage_v6");
    int have_blockpage = (bp4 && *bp4) || (bp6 && *bp6);
    if (sqlite3_prepare_v2(db, "SELECT id, name, answer, safesearch FROM groups ORDER BY id",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            int64_t gid = sqlite3_column_int64(st, 0);
            uint32_t mask = agent_group_categories(db, gid, now);
            json_t *cats = json_array();
            for (int c = 0; c < DSET_CAT_COUNT; c++)
                if (mask >> c & 1)
                    json_array_append_new(cats, json_string(dset_category_name(c)));
            /* Owner blocks without a category apply to every group whatever its
             * categories; group-bound rules apply to their group only. */
            json_t *block = names_json(db, "SELECT DISTINCT r.pattern FROM rules r JOIN principals p"
                " ON p.id=r.author_id WHERE r.kind='block' AND ((r.group_id IS NULL AND"
                " p.kind='owner' AND (r.category IS NULL OR r.category='custom')) OR"
                " r.group_id=?2) AND " AGENT_NAME_RULE " AND " AGENT_LIVE_RULE, now, gid);
            json_t *allow = names_json(db, "SELECT DISTINCT r.pattern FROM rules r WHERE"
                " r.kind='allow' AND r.group_id=?2 AND " AGENT_NAME_RULE " AND " AGENT_LIVE_RULE,
                now, gid);
            const char *answer = (const char *)sqlite3_column_text(st, 2);
            json_array_append_new(groups, json_pack("{s:s, s:o, s:s, s:b, s:o, s:o}",
                "name", (const char *)sqlite3_column_text(st, 1), "categories", cats,
                "answer", !have_blockpage && strcmp(answer, "blockpage") == 0 ? "nxdomain" : answer,
                "safesearch", sqlite3_column_int(st, 3), "allow", allow, "block", block));
        }
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(db, "SELECT n.cidr, g.name FROM group_networks n JOIN groups g ON"
                           " g.id=n.group_id UNION ALL SELECT d.ipv4, g.name FROM devices d"
                           " JOIN groups g ON g.id=d.group_id WHERE d.ipv4 IS NOT NULL UNION ALL"
                           " SELECT d.ipv6, g.name FROM devices d JOIN groups g ON"
                           " g.id=d.group_id WHERE d.ipv6 IS NOT NULL", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(clients, json_pack("{s:s, s:s}", "match",
                                  (const char *)sqlite3_column_text(st, 0), "group",
                                  (const char *)sqlite3_column_text(st, 1)));
        sqlite3_finalize(st);
    }
    /* Zone networks (otasuke.conf, see agentd_zones_sync) after the owner's: policyset
     * picks the longest prefix, and the owner's device entries are /32 and /128. */
    if (sqlite3_prepare_v2(db, "SELECT z.cidr, z.group_name FROM zone_networks z JOIN groups g"
                           " ON g.name=z.group_name WHERE z.cidr NOT IN (SELECT cidr FROM"
                           " group_networks)", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(clients, json_pack("{s:s, s:s}", "match",
                                  (const char *)sqlite3_column_text(st, 0), "group",
                                  (const char *)sqlite3_column_text(st, 1)));
        sqlite3_finalize(st);
    }
    char dflt[64] = "staff";
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key='default_group'", -1, &st,
                           NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(dflt, sizeof dflt, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    json_t *doc = json_pack("{s:i, s:o, s:o, s:s}", "version", 1, "groups", groups, "clients",
                            clients, "default_group", dflt);
    if (doc && have_blockpage) {
        json_t *bp = json_object();
        if (bp4 && *bp4)
            json_object_set_new(bp, "ipv4", json_string(bp4));
        if (bp6 && *bp6)
            json_object_set_new(bp, "ipv6", json_string(bp6));
        json_object_set_new(doc, "blockpage", bp);
    }
    free(bp4);
    free(bp6);
    return doc;
}

/* Adds every address, range or network the query (first column; ?1 = now) returns to l
 * and normalises it; what does not parse as one (a name) is skipped. Returns 0 or -1. */
static int load_addresses(sqlite3 *db, const char *sql, int64_t now, struct iplist *l,
                          char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, now);
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        char why[96];
        if (iplist_add_entry(l, (const char *)sqlite3_column_text(st, 0), why, sizeof why) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    sqlite3_finalize(st);
    iplist_normalize(l);
    return rc;
}

static int build_fw(struct agentd *ad, int64_t now, const char *path, uint64_t *elems,
                    char *err, size_t errlen)
{
    struct iplist l;
    struct fwset *s = calloc(1, sizeof *s);
    int rc = -1;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    iplist_init(&l);
    fwset_init(s);
    if (ad->cfg)
        fw_opts_from_config(ad->cfg, &s->opts);
    /* CROSS JOIN keeps feeds as the outer loop, so the entries come from the primary key
     * (feed_id, kind, ...) range of the address kinds: left to itself the planner scans
     * every row, 1.3 s at 1M domain entries for a handful of addresses. */
    if (load_addresses(ad->db, "SELECT e.indicator FROM feeds f CROSS JOIN feed_entries e"
                       " ON e.feed_id=f.id WHERE f.enabled=1 AND e.action='block' AND"
                       " e.kind IN ('ipv4','ipv6','cidr') AND (e.expires=0 OR e.expires>?1)",
                       now, &l, err, errlen) < 0)
        goto out;
    /* The owner's (and delegates') own address blocks: a set of their own, so a feed
     * update never touches them. Rules whose pattern is a name parse as nothing here. */
    struct iplist own;
    iplist_init(&own);
    int orc = load_addresses(ad->db, "SELECT r.pattern FROM rules r WHERE r.kind='block' AND"
                             " r.group_id IS NULL AND " AGENT_LIVE_RULE, now, &own, err, errlen);
    if (orc == 0)
        orc = fwset_add_iplist(s, "rules_block", FWSET_KIND_BLOCK, &own, 0, err, errlen);
    iplist_free(&own);
    if (orc < 0)
        goto out;
    struct iplist q;   /* devices quarantined from an incident (incidents.c) */
    iplist_init(&q);
    if (incident_quarantine_list(ad->db, &q, err, errlen) < 0) {
        iplist_free(&q);
        goto out;
    }
    iplist_normalize(&q);
    int qrc = fwset_add_iplist(s, "quarantine", FWSET_KIND_QUARANTINE, &q, 0, err, errlen);
    iplist_free(&q);
    if (qrc < 0 || fwset_add_iplist(s, "feed_block", FWSET_KIND_BLOCK, &l, 0, err, errlen) < 0 ||
        fwset_write(s, path, err, errlen) < 0)
        goto out;
    *elems = fwset_total_elems(s);
    rc = 0;
out:
    iplist_free(&l);
    fwset_free(s);
    free(s);
    return rc;
}

/* Asks a daemon to reload: SIGHUP to the pid in pidfile. A daemon that is not running
 * picks the artifacts up when it starts, so a missing pid is not an error. */
static void signal_daemon(const char *pidfile, const char *what)
{
    if (!pidfile)
        return;
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f) {
        log_debug("%s: %s: %s (not signalled)", what, pidfile, strerror(errno));
        return;
    }
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        log_warn("%s: %s: no pid in the file", what, pidfile);
        fclose(f);
        return;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGHUP) < 0)
        log_warn("%s: SIGHUP to %ld: %s", what, pid, strerror(errno));
}

/* Asks a daemon over its control socket ("reload" -> "ok" | "error: why"). Waits up to
 * 10 s for the answer so a refused reload is logged with dnsd's reason. */
static void control_reload(const char *path, const char *what)
{
    struct sockaddr_un sun;
    if (!path)
        return;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path)
        return;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char ans[256] = "";
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        log_debug("%s: %s: %s (not running? it loads the artifacts when it starts)", what,
                  path, strerror(errno));
    } else if (write(fd, "reload\n", 7) != 7) {
        log_warn("%s: %s: %s", what, path, strerror(errno));
    } else {
        ssize_t n = read(fd, ans, sizeof ans - 1);
        ans[n > 0 ? n : 0] = '\0';
        ans[strcspn(ans, "\n")] = '\0';
        if (strcmp(ans, "ok") != 0)
            log_warn("%s refused the new artifacts: %s", what, n > 0 ? ans : "no answer");
    }
    close(fd);
}

int agentd_compile(struct agentd *ad, int64_t now, char *err, size_t errlen)
{
    static int malloc_tuned;
    char dpath[512], ppath[512], fpath[512];
    /* The builder's arrays grow by doubling to tens of MB. From their own mappings they
     * grow by mremap (no copy: without this, glibc raises its mmap threshold after the
     * first big free and later compiles realloc on the heap, holding old + new copy for
     * a moment: +20 MB of peak) and go back to the system when freed. */
    if (!malloc_tuned) {
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
        malloc_tuned = 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(dpath, sizeof dpath, "%s/domains.set", ad->state_dir);
    snprintf(ppath, sizeof ppath, "%s/policy.set", ad->state_dir);
    snprintf(fpath, sizeof fpath, "%s/fw.set", ad->state_dir);
    uint64_t names = 0, elems = 0;
    char e2[AGENT_ERR];
    /* A read transaction gives all three artifacts the same snapshot of the database. */
    if (agent_exec(ad->db, "BEGIN", e2, sizeof e2) < 0) {
        snprintf(err, errlen, "%s", e2);
        return -1;
    }
    int rc = -1;
    if (build_domains(ad, now, dpath, &names, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "domains.set: %s", e2);
        goto out;
    }
    json_t *doc = policy_doc(ad->db, now);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text || policy_write_json(ppath, text, strlen(text), e2, sizeof e2) < 0) {
        snprintf(err, errlen, "policy.set: %s", text ? e2 : "out of memory");
        free(text);
        goto out;
    }
    free(text);
    if (build_fw(ad, now, fpath, &elems, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "fw.set: %s", e2);
        goto out;
    }
    rc = 0;
out:
    agent_exec(ad->db, "COMMIT", e2, sizeof e2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc < 0)
        return -1;
    ad->n.last_compile_seconds = (double)(t1.tv_sec - t0.tv_sec) +
                                 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ad->n.last_domains = names;
    ad->n.last_fw_elems = elems;
    /* Everything is in the new base: the overlay and the change log start again. A
     * crash before the unlink leaves an overlay with the old base's key, which dset_open
     * ignores. */
    overlay_reset(ad, dpath);
    control_reload(ad->dnsd_control, "dnsd");
    signal_daemon(ad->dnsd_pidfile, "dnsd");
    signal_daemon(ad->fwd_pidfile, "fwd");
    return 0;
}

/* Past this many changed names since the base was built, the overlay costs more to
 * rewrite than it saves: 64k names are ~2.5 MB and ~60 ms to write; a full 1M build is
 * ~1-2 s. */
#define OVERLAY_MAX_NAMES 65536

static int64_t changed_count(sqlite3 *db, const char *kind_cond)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    char *q = sqlite3_mprintf("SELECT count(*) FROM temp.feed_changed WHERE %s", kind_cond);
    if (q && sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_free(q);
    return n;
}

/* Builds the overlay for the names in temp.feed_changed against the base at dpath:
 * same key, same list table, a tombstone for each name then its current lists. Returns
 * 0, 1 (a full compile is needed) or -1 with err. */
static int build_overlay(struct agentd *ad, int64_t now, const char *dpath, uint64_t *names,
                         char *err, size_t errlen)
{
    char opath[600];
    (void)dpath;
    if (!base_meta.valid)
        return 1;   /* no base written by this run yet: build one */
    struct dset_builder *b = dset_builder_new();
    struct lists ls = { .n = 0 };
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    dset_builder_set_key(b, base_meta.key);
    for (int i = 0; i < base_meta.ls.n; i++) {
        const char *label = base_meta.ls.label[i];
        int id = dset_builder_add_list(b, label, base_meta.category[i], base_meta.is_allow[i],
                                       err, errlen);
        if (id < 0 || id != base_meta.ls.id[i]) {
            rc = 1;   /* a base this builder cannot mirror: rebuild it */
            goto out;
        }
        snprintf(ls.label[ls.n], sizeof ls.label[0], "%s", label);
        ls.id[ls.n++] = id;
    }
    ls.frozen = 1;
    if (sqlite3_prepare_v2(ad->db, "SELECT indicator FROM temp.feed_changed WHERE kind='domain'",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = 1;
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(st, 0);
        if (dset_builder_add_tombstone(b, n, strlen(n), err, errlen) < 0)
            goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    int arc = add_domain_rows(ad, now, b, &ls, 1, err, errlen);
    if (arc == -2) {
        rc = 1;   /* a new (feed, category) list: only a full build can add it */
        goto out;
    }
    if (arc < 0)
        goto out;
    struct dset_build_stats stats;
    snprintf(opath, sizeof opath, "%s.overlay", dpath);
    if (dset_builder_write(b, opath, &stats, err, errlen) < 0)
        goto out;
    *names = stats.names;
    rc = 0;
out:
    sqlite3_finalize(st);
    dset_builder_free(b);
    return rc;
}

int agentd_compile_delta(struct agentd *ad, int64_t now, char *err, size_t errlen)
{
    char dpath[512], fpath[512], e2[AGENT_ERR];
    struct timespec t0, t1;
    uint64_t names = 0, elems = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(dpath, sizeof dpath, "%s/domains.set", ad->state_dir);
    snprintf(fpath, sizeof fpath, "%s/fw.set", ad->state_dir);
    int64_t ndom = changed_count(ad->db, "kind='domain'");
    int64_t nip = changed_count(ad->db, "kind<>'domain'");
    if (ndom < 0 || nip < 0 || ndom > OVERLAY_MAX_NAMES)
        return 1;   /* no change log (or too long): a full compile */
    if (agent_exec(ad->db, "BEGIN", e2, sizeof e2) < 0) {
        snprintf(err, errlen, "%s", e2);
        return -1;
    }
    int rc = ndom ? build_overlay(ad, now, dpath, &names, e2, sizeof e2) : 0;
    if (rc < 0)
        snprintf(err, errlen, "domains.set.overlay: %s", e2);
    /* Addresses: fw.set is small next to the domain set and fwd applies only the
     * difference, so it is rebuilt whole. */
    if (rc == 0 && nip > 0 && build_fw(ad, now, fpath, &elems, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "fw.set: %s", e2);
        rc = -1;
    }
    agent_exec(ad->db, "COMMIT", e2, sizeof e2);
    if (rc != 0)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ad->n.last_compile_seconds = (double)(t1.tv_sec - t0.tv_sec) +
                                 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    log_info("overlay compiled: %llu changed names, %s in %.3f s", (unsigned long long)names,
             nip > 0 ? "fw.set rebuilt" : "fw.set unchanged", ad->n.last_compile_seconds);
    if (ndom) {
        control_reload(ad->dnsd_control, "dnsd");
        signal_daemon(ad->dnsd_pidfile, "dnsd");
        /* The owner's name count is base + overlay (names it adds, minus names it
         * removes). Opening checks the base's checksum and counts the overlay against
         * it: ~25 ms at 1M names and a 20k-name overlay, after dnsd was told. */
        char e3[AGENT_ERR];
        struct dset *set = dset_open(dpath, e3, sizeof e3);
        if (set) {
            ad->n.last_domains = dset_name_count(set);
            dset_close(set);
        } else {
            log_warn("name count not updated: %s", e3);
        }
    }
    if (nip > 0) {
        ad->n.last_fw_elems = elems;
        signal_daemon(ad->fwd_pidfile, "fwd");
    }
    return 0;
}

uint64_t agentd_policy_signature(sqlite3 *db, int64_t now)
{
    /* Cheap (runs every second): counts of live rules and grants plus each group's
     * effective categories. A rule or grant expiring or a schedule boundary changes one
     * of them. Feed entry expiries are picked up at the feed's next refresh. */
    uint64_t h = 1469598103934665603ull;
    sqlite3_stmt *st;
    static const char *const sql =
        "SELECT (SELECT count(*) FROM rules r WHERE " AGENT_LIVE_RULE "),"
        " (SELECT count(*) FROM grants WHERE revoked_at=0 AND (expires_at=0 OR expires_at>?1))";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        if (sqlite3_step(st) == SQLITE_ROW)
            for (int i = 0; i < 2; i++)
                h = (h ^ (uint64_t)sqlite3_column_int64(st, i)) * 1099511628211ull;
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(db, "SELECT id FROM groups", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW)
            h = (h ^ agent_group_categories(db, sqlite3_column_int64(st, 0), now)) *
                1099511628211ull;
        sqlite3_finalize(st);
    }
    return h;
}

int agentd_zones_sync(sqlite3 *db, const struct ota_config *cfg, char *err, size_t errlen)
{
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    int rc = agent_exec(db, "DELETE FROM zone_networks", err, errlen);
    for (int i = 0; rc == 0 && cfg && i < cfg->n_zones; i++) {
        const struct cfg_zone *zn = &cfg->zones[i];
        for (int a = 0; rc == 0 && zn->group[0] && a < zn->n_addresses; a++) {
            char net[80];
            if (zone_network(zn->addresses[a], net, sizeof net) < 0)
                continue;
            char *q = sqlite3_mprintf("INSERT OR REPLACE INTO zone_networks VALUES (%Q, %Q)", net,
                                      zn->group);
            rc = agent_exec(db, q, err, errlen);
            sqlite3_free(q);
        }
    }
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    return 0;
}
