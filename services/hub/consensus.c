/* The shared feed's content: operator entries, analyst confirmations and community
 * consensus. Every change to the indicators table happens inside one transaction that
 * bumps the feed seq once, so a seq names exactly one set of changes and a delta is
 * "every row whose seq is greater than the box's". Removed entries stay as tombstones
 * (state 'removed') so deltas can tell boxes to drop them. */
#include "hubd.h"

#include "domainset.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hub_indicator_norm(const char *in, const char *kind, char *out, size_t outlen,
                       char *err, size_t errlen)
{
    /* Reuse the feed parser's own checks so the hub never publishes an entry a box
     * would refuse. */
    json_t *o = json_pack("{s:s, s:s, s:s}", "indicator", in, "kind", kind, "action", "allow");
    if (!o) {
        snprintf(err, errlen, "indicator or kind is not valid UTF-8");
        return -1;
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return -1;
    struct feed_entry e;
    char e2[200];
    int rc = feed_parse_entry(s, strlen(s), 0, &e, e2, sizeof e2);
    free(s);
    if (rc < 0) {
        snprintf(err, errlen, "indicator '%.100s' (%s): %s", in, kind, e2);
        return -1;
    }
    snprintf(out, outlen, "%s", e.indicator);
    return 0;
}

static int check_category(const char *cat, char *err, size_t errlen)
{
    if (dset_category_parse(cat) < 0) {
        snprintf(err, errlen, "unknown category '%.40s' (e.g. malware, phishing, c2, ads)", cat);
        return -1;
    }
    return 0;
}

/* One feed change-set: the seq is taken lazily, at the first change. */
struct txn {
    struct hub *h;
    char seq[24];
    int changed;
};

static int txn_bump(struct txn *t, char *err, size_t errlen)
{
    if (t->changed)
        return 0;
    char now[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { t->h->o.feed_id, now };
    if (hubdb_scalar(t->h->db, "UPDATE feed_state SET seq = seq + 1, updated = $2 "
                     "WHERE feed = $1 RETURNING seq", 2, p, t->seq, sizeof t->seq,
                     err, errlen) != 1)
        return -1;
    const char *pl[] = { t->h->o.feed_id, t->seq, now };
    if (hubdb_exec(t->h->db, "INSERT INTO feed_log (feed, seq, at) VALUES ($1, $2, $3)", 3, pl,
                   NULL, NULL, err, errlen) < 0)
        return -1;
    t->changed = 1;
    return 0;
}

static int set_entry(struct txn *t, const char *ind, const char *kind, const char *cat,
                     const char *source, const char *state, int conf, long long expires,
                     char *err, size_t errlen)
{
    if (txn_bump(t, err, errlen) < 0)
        return -1;
    char c[8], e[24];
    snprintf(c, sizeof c, "%d", conf);
    snprintf(e, sizeof e, "%lld", expires);
    const char *p[] = { ind, kind, cat, source, state, c, e, t->seq };
    return hubdb_exec(t->h->db,
        "INSERT INTO indicators (indicator, kind, category, source, state, confidence, "
        "expires, seq) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (indicator, kind) DO "
        "UPDATE SET category = excluded.category, source = excluded.source, state = "
        "excluded.state, confidence = excluded.confidence, expires = excluded.expires, "
        "seq = excluded.seq", 8, p, NULL, NULL, err, errlen) < 0 ? -1 : 0;
}

struct cur { int found; char state[16], source[16], category[24]; long long expires; };

static int cur_row(int n, const char *const *v, void *ctx)
{
    struct cur *c = ctx;
    if (n >= 4) {
        c->found = 1;
        snprintf(c->state, sizeof c->state, "%s", v[0] ? v[0] : "");
        snprintf(c->source, sizeof c->source, "%s", v[1] ? v[1] : "");
        snprintf(c->category, sizeof c->category, "%s", v[2] ? v[2] : "");
        c->expires = v[3] ? atoll(v[3]) : 0;
    }
    return 1;
}

static int get_cur(struct hub *h, const char *ind, const char *kind, struct cur *c,
                   char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *p[] = { ind, kind };
    return hubdb_exec(h->db, "SELECT state, source, category, expires FROM indicators "
                      "WHERE indicator = $1 AND kind = $2", 2, p, cur_row, c, err,
                      errlen) < 0 ? -1 : 0;
}

static long count_of(struct hub *h, const char *sql, int np, const char *const *p,
                     char *err, size_t errlen)
{
    char v[24];
    if (hubdb_scalar(h->db, sql, np, p, v, sizeof v, err, errlen) < 0)
        return -1;
    return atol(v);
}

static int is_allowlisted(struct hub *h, const char *ind, const char *kind, char *err,
                          size_t errlen)
{
    const char *p[] = { ind, kind };
    return (int)count_of(h, "SELECT COUNT(*) FROM allowlist WHERE indicator = $1 AND "
                         "kind = $2", 2, p, err, errlen);
}

/* Ends a change-set: commit and say whether the feed moved. */
static int txn_end(struct txn *t, int rc, char *err, size_t errlen)
{
    if (rc < 0) {
        hubdb_rollback(t->h->db);
        return -1;
    }
    if (hubdb_commit(t->h->db, err, errlen) < 0)
        return -1;
    return t->changed;
}

int hub_contribute(struct hub *h, long org_id, const struct hub_contrib *c,
                   char *err, size_t errlen)
{
    char ind[FEED_INDICATOR_MAX + 1];
    if (hub_indicator_norm(c->indicator, c->kind, ind, sizeof ind, err, errlen) < 0 ||
        check_category(c->category, err, errlen) < 0)
        return -1;
    long long now = hub_now();
    char pseud[HUB_PSEUD_HEX + 1], cnt[24], fs[24], ls[24], since[24];
    hub_org_pseudonym(h->pseud_key, org_id, pseud);
    /* Box clocks are not trusted beyond "not in the future". */
    long long first = c->first_seen > 0 && c->first_seen <= now ? c->first_seen : now;
    long long last = c->last_seen > 0 && c->last_seen <= now ? c->last_seen : now;
    snprintf(cnt, sizeof cnt, "%ld", c->count > 0 ? c->count : 1);
    snprintf(fs, sizeof fs, "%lld", first);
    snprintf(ls, sizeof ls, "%lld", last);
    snprintf(since, sizeof since, "%lld", now - (long long)h->o.entry_ttl);
    struct txn t = { .h = h };
    if (hubdb_begin(h->db, err, errlen) < 0)
        return -1;
    const char *p[] = { ind, c->kind, pseud, c->category, cnt, fs, ls };
    int rc = hubdb_exec(h->db,
        "INSERT INTO contributions (indicator, kind, org_pseud, category, count, first_seen,"
        " last_seen) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (indicator, kind, org_pseud) "
        "DO UPDATE SET category = excluded.category, count = contributions.count + "
        "excluded.count, last_seen = CASE WHEN excluded.last_seen > contributions.last_seen "
        "THEN excluded.last_seen ELSE contributions.last_seen END", 7, p, NULL, NULL,
        err, errlen) < 0 ? -1 : 0;
    if (rc < 0)
        return txn_end(&t, rc, err, errlen);
    const char *pc[] = { ind, c->kind, since };
    long orgs = count_of(h, "SELECT COUNT(*) FROM contributions WHERE indicator = $1 AND "
                         "kind = $2 AND last_seen >= $3", 3, pc, err, errlen);
    long fps = count_of(h, "SELECT COUNT(*) FROM fp_reports WHERE indicator = $1 AND "
                        "kind = $2", 2, pc, err, errlen);
    int allowed = is_allowlisted(h, ind, c->kind, err, errlen);
    struct cur cu;
    if (orgs < 0 || fps < 0 || allowed < 0 || get_cur(h, ind, c->kind, &cu, err, errlen) < 0)
        return txn_end(&t, -1, err, errlen);
    int active = cu.found && strcmp(cu.state, "active") == 0;
    long long exp = now + (long long)h->o.entry_ttl;
    if (active) {
        /* Seen again: push the expiry out, but re-publish at most once a day per entry
         * or every sighting would make a delta. */
        if (cu.expires != 0 && cu.expires < exp - 86400)
            rc = set_entry(&t, ind, c->kind, cu.category, cu.source, "active",
                           strcmp(cu.source, "community") == 0 ? (int)(orgs * 20 + 30 > 100 ?
                           100 : orgs * 20 + 30) : 100, exp, err, errlen);
    } else if (!allowed && fps < h->o.fp_k && orgs >= h->o.k) {
        int conf = orgs * 20 + 30 > 100 ? 100 : (int)(orgs * 20 + 30);
        rc = set_entry(&t, ind, c->kind, c->category, "community", "active", conf, exp,
                       err, errlen);
    }
    int r = txn_end(&t, rc, err, errlen);
    if (r > 0)
        hub_audit(h, "consensus", "promote", "%s %s by %ld orgs", c->kind, ind, orgs);
    return r;
}

int hub_report_fp(struct hub *h, long org_id, const char *indicator, const char *kind,
                  char *err, size_t errlen)
{
    char ind[FEED_INDICATOR_MAX + 1], pseud[HUB_PSEUD_HEX + 1], now[24];
    if (hub_indicator_norm(indicator, kind, ind, sizeof ind, err, errlen) < 0)
        return -1;
    hub_org_pseudonym(h->pseud_key, org_id, pseud);
    snprintf(now, sizeof now, "%lld", hub_now());
    struct txn t = { .h = h };
    if (hubdb_begin(h->db, err, errlen) < 0)
        return -1;
    const char *p[] = { ind, kind, pseud, now };
    int rc = hubdb_exec(h->db, "INSERT INTO fp_reports (indicator, kind, org_pseud, reported)"
                        " VALUES ($1,$2,$3,$4) ON CONFLICT (indicator, kind, org_pseud) DO "
                        "UPDATE SET reported = excluded.reported", 4, p, NULL, NULL,
                        err, errlen) < 0 ? -1 : 0;
    long fps = rc < 0 ? -1 : count_of(h, "SELECT COUNT(*) FROM fp_reports WHERE indicator = "
                                      "$1 AND kind = $2", 2, p, err, errlen);
    struct cur cu;
    if (fps < 0 || get_cur(h, ind, kind, &cu, err, errlen) < 0)
        return txn_end(&t, -1, err, errlen);
    /* Only consensus entries are demoted by reports; an analyst's or operator's entry
     * stays until a person looks (reports show in 'admin indicator list'). */
    if (cu.found && strcmp(cu.state, "active") == 0 && strcmp(cu.source, "community") == 0 &&
        fps >= h->o.fp_k)
        rc = set_entry(&t, ind, kind, cu.category, cu.source, "removed", 0, 0, err, errlen);
    int r = txn_end(&t, rc, err, errlen);
    if (r > 0)
        hub_audit(h, "consensus", "demote", "%s %s after %ld false-positive reports", kind,
                  ind, fps);
    return r;
}

static int operator_set(struct hub *h, const char *indicator, const char *kind,
                        const char *category, const char *source, int remove,
                        char *err, size_t errlen)
{
    char ind[FEED_INDICATOR_MAX + 1], cat[24];
    if (hub_indicator_norm(indicator, kind, ind, sizeof ind, err, errlen) < 0)
        return -1;
    struct txn t = { .h = h };
    if (hubdb_begin(h->db, err, errlen) < 0)
        return -1;
    struct cur cu;
    int rc = get_cur(h, ind, kind, &cu, err, errlen);
    if (rc == 0 && remove) {
        if (!cu.found || strcmp(cu.state, "active") != 0) {
            snprintf(err, errlen, "%s %s is not in the feed", kind, ind);
            rc = -1;
        } else {
            const char *p[] = { ind, kind };
            rc = set_entry(&t, ind, kind, cu.category, cu.source, "removed", 0, 0, err, errlen);
            /* Fresh consensus is needed to bring it back. */
            if (rc == 0)
                rc = hubdb_exec(h->db, "DELETE FROM contributions WHERE indicator = $1 AND "
                                "kind = $2", 2, p, NULL, NULL, err, errlen) < 0 ? -1 : 0;
        }
    } else if (rc == 0) {
        snprintf(cat, sizeof cat, "%s", category ? category : "");
        if (!cat[0]) {
            const char *p[] = { ind, kind };
            if (hubdb_scalar(h->db, "SELECT category FROM contributions WHERE indicator = $1 "
                             "AND kind = $2 ORDER BY last_seen DESC", 2, p, cat, sizeof cat,
                             err, errlen) < 0)
                rc = -1;
            else if (!cat[0] && cu.found)
                snprintf(cat, sizeof cat, "%s", cu.category);
        }
        int allowed = rc < 0 ? -1 : is_allowlisted(h, ind, kind, err, errlen);
        if (rc < 0 || allowed < 0) {
            rc = -1;
        } else if (!cat[0]) {
            snprintf(err, errlen, "no category known for %s; give one with --category", ind);
            rc = -1;
        } else if (check_category(cat, err, errlen) < 0) {
            rc = -1;
        } else if (allowed) {
            snprintf(err, errlen, "%s is on the allowlist; remove it there first", ind);
            rc = -1;
        } else {
            long long exp = strcmp(source, "operator") == 0 ? 0
                : hub_now() + (long long)h->o.entry_ttl;
            rc = set_entry(&t, ind, kind, cat, source, "active", 100, exp, err, errlen);
        }
    }
    int r = txn_end(&t, rc, err, errlen);
    if (r > 0)
        hub_audit(h, source, remove ? "indicator-remove" : "indicator-add", "%s %s", kind, ind);
    return r;
}

int hub_indicator_add(struct hub *h, const char *indicator, const char *kind,
                      const char *category, const char *source, char *err, size_t errlen)
{
    return operator_set(h, indicator, kind, category, source, 0, err, errlen);
}

int hub_indicator_confirm(struct hub *h, const char *indicator, const char *kind,
                          const char *category, char *err, size_t errlen)
{
    return operator_set(h, indicator, kind, category, "analyst", 0, err, errlen);
}

int hub_indicator_remove(struct hub *h, const char *indicator, const char *kind,
                         char *err, size_t errlen)
{
    return operator_set(h, indicator, kind, NULL, "operator", 1, err, errlen);
}

int hub_allow_add(struct hub *h, const char *indicator, const char *kind, const char *note,
                  char *err, size_t errlen)
{
    char ind[FEED_INDICATOR_MAX + 1], now[24];
    if (hub_indicator_norm(indicator, kind, ind, sizeof ind, err, errlen) < 0)
        return -1;
    snprintf(now, sizeof now, "%lld", hub_now());
    struct txn t = { .h = h };
    if (hubdb_begin(h->db, err, errlen) < 0)
        return -1;
    const char *p[] = { ind, kind, now, note ? note : "" };
    int rc = hubdb_exec(h->db, "INSERT INTO allowlist (indicator, kind, added, note) VALUES "
                        "($1,$2,$3,$4) ON CONFLICT (indicator, kind) DO NOTHING", 4, p, NULL,
                        NULL, err, errlen) < 0 ? -1 : 0;
    struct cur cu;
    if (rc == 0 && get_cur(h, ind, kind, &cu, err, errlen) < 0)
        rc = -1;
    if (rc == 0 && cu.found && strcmp(cu.state, "active") == 0)
        rc = set_entry(&t, ind, kind, cu.category, cu.source, "removed", 0, 0, err, errlen);
    int r = txn_end(&t, rc, err, errlen);
    if (r >= 0)
        hub_audit(h, "operator", "allow-add", "%s %s", kind, ind);
    return r;
}

struct exp_list { char (*ind)[FEED_INDICATOR_MAX + 1]; char (*kind)[8]; char (*cat)[24]; int n, cap; };

static int exp_row(int n, const char *const *v, void *ctx)
{
    struct exp_list *l = ctx;
    if (n < 3 || l->n >= l->cap)
        return 1;
    snprintf(l->ind[l->n], sizeof l->ind[0], "%s", v[0] ? v[0] : "");
    snprintf(l->kind[l->n], sizeof l->kind[0], "%s", v[1] ? v[1] : "");
    snprintf(l->cat[l->n], sizeof l->cat[0], "%s", v[2] ? v[2] : "");
    l->n++;
    return 0;
}

int hub_expire(struct hub *h, char *err, size_t errlen)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    struct exp_list l = { 0 };
    l.cap = 1000;   /* per sweep; the next sweep takes the rest */
    l.ind = calloc((size_t)l.cap, sizeof *l.ind);
    l.kind = calloc((size_t)l.cap, sizeof *l.kind);
    l.cat = calloc((size_t)l.cap, sizeof *l.cat);
    if (!l.ind || !l.kind || !l.cat) {
        free(l.ind); free(l.kind); free(l.cat);
        return -1;
    }
    struct txn t = { .h = h };
    int rc = hubdb_begin(h->db, err, errlen);
    const char *p[] = { now };
    if (rc == 0)
        rc = hubdb_exec(h->db, "SELECT indicator, kind, category FROM indicators WHERE state = "
                        "'active' AND expires > 0 AND expires <= $1", 1, p, exp_row, &l,
                        err, errlen) < 0 ? -1 : 0;
    else {
        free(l.ind); free(l.kind); free(l.cat);
        return -1;
    }
    for (int i = 0; rc == 0 && i < l.n; i++)
        rc = set_entry(&t, l.ind[i], l.kind[i], l.cat[i], "expired", "removed", 0, 0,
                       err, errlen);
    int r = txn_end(&t, rc, err, errlen);
    int n = l.n;
    free(l.ind); free(l.kind); free(l.cat);
    if (r > 0)
        hub_audit(h, "hub", "expire", "%d entries", n);
    return r < 0 ? -1 : (r > 0 ? n : 0);
}

long long hub_feed_seq(struct hub *h, char *err, size_t errlen)
{
    char v[24];
    const char *p[] = { h->o.feed_id };
    int r = hubdb_scalar(h->db, "SELECT seq FROM feed_state WHERE feed = $1", 1, p, v,
                         sizeof v, err, errlen);
    return r == 1 ? atoll(v) : -1;
}
