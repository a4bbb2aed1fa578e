/* Curated third-party lists into the shared feed: `admin indicator import FILE --category C
 * --source LABEL`. Any format the box understands (plain, hosts, adblock, dnsmasq,
 * wildcard, RPZ; lists.h). One import is one change set (one seq), and it replaces the
 * previous import of the same label: names no longer listed are removed in the delta,
 * names listed again unchanged cost nothing, so a daily refresh of a 100,000-name list
 * publishes only what changed. Allow entries and allowlisted names are skipped. */
#include "hubd.h"

#include "domainset.h"
#include "lists.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct imp {
    struct hub *h;
    const char *category, *source;
    json_t *before;      /* names of this source still active before the import */
    char seq[24];
    int bumped;
    long added, kept, skipped;
    char *err;
    size_t errlen;
};

static int bump(struct imp *im)
{
    if (im->bumped)
        return 0;
    char now[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { im->h->o.feed_id, now };
    if (hubdb_scalar(im->h->db, "UPDATE feed_state SET seq = seq + 1, updated = $2 WHERE "
                     "feed = $1 RETURNING seq", 2, p, im->seq, sizeof im->seq, im->err,
                     im->errlen) != 1)
        return -1;
    const char *pl[] = { im->h->o.feed_id, im->seq, now };
    if (hubdb_exec(im->h->db, "INSERT INTO feed_log (feed, seq, at) VALUES ($1, $2, $3)", 3,
                   pl, NULL, NULL, im->err, im->errlen) < 0)
        return -1;
    im->bumped = 1;
    return 0;
}

static int put(struct imp *im, const char *name, const char *state, const char *cat)
{
    if (bump(im) < 0)
        return -1;
    const char *p[] = { name, cat, im->source, state, im->seq };
    return hubdb_exec(im->h->db,
        "INSERT INTO indicators (indicator, kind, category, source, state, confidence, "
        "expires, seq) VALUES ($1, 'domain', $2, $3, $4, 100, 0, $5) ON CONFLICT (indicator, "
        "kind) DO UPDATE SET category = excluded.category, source = excluded.source, state = "
        "excluded.state, confidence = excluded.confidence, expires = excluded.expires, seq = "
        "excluded.seq", 5, p, NULL, NULL, im->err, im->errlen) < 0 ? -1 : 0;
}

static int active_row(int n, const char *const *v, void *ctx)
{
    *(int *)ctx = n >= 1 && v[0] && strcmp(v[0], "active") == 0;
    return 1;
}

static int on_name(void *ctx, const char *name, size_t len, unsigned flags)
{
    struct imp *im = ctx;
    (void)len;
    if (flags & DSET_ALLOW) {
        im->skipped++;
        return 0;
    }
    const char *p[] = { name };
    char al[24];
    if (hubdb_scalar(im->h->db, "SELECT COUNT(*) FROM allowlist WHERE indicator = $1 AND "
                     "kind = 'domain'", 1, p, al, sizeof al, im->err, im->errlen) < 0)
        return -1;
    if (atol(al) > 0) {
        im->skipped++;
        return 0;
    }
    json_object_del(im->before, name);
    int active = 0;
    if (hubdb_exec(im->h->db, "SELECT state FROM indicators WHERE indicator = $1 AND kind = "
                   "'domain'", 1, p, active_row, &active, im->err, im->errlen) < 0)
        return -1;
    if (active) {
        /* Already published by anyone: leave it (an analyst's or the community's entry
         * keeps its source), count it as kept. */
        im->kept++;
        return 0;
    }
    im->added++;
    return put(im, name, "active", im->category);
}

static int before_row(int n, const char *const *v, void *ctx)
{
    struct imp *im = ctx;
    if (n >= 2 && v[0])
        json_object_set_new(im->before, v[0], json_string(v[1] ? v[1] : ""));
    return 0;
}

int hub_indicator_import(struct hub *h, const char *path, const char *category,
                         const char *label, long *added, long *removed, char *err,
                         size_t errlen)
{
    err[0] = '\0';
    if (dset_category_parse(category) < 0) {
        snprintf(err, errlen, "unknown category '%.40s' (e.g. malware, phishing, ads)", category);
        return -1;
    }
    size_t ll = strlen(label);
    if (ll == 0 || ll > 40 || strspn(label, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != ll) {
        snprintf(err, errlen, "--source: 1..40 of [a-z0-9-_.] naming the list");
        return -1;
    }
    char source[64];
    snprintf(source, sizeof source, "list:%s", label);
    struct imp im = { .h = h, .category = category, .source = source, .err = err,
                      .errlen = errlen };
    im.before = json_object();
    if (hubdb_begin(h->db, err, errlen) < 0) {
        json_decref(im.before);
        return -1;
    }
    const char *p[] = { source };
    int rc = hubdb_exec(h->db, "SELECT indicator, category FROM indicators WHERE source = $1 "
                        "AND state = 'active' AND kind = 'domain'", 1, p, before_row, &im,
                        err, errlen) < 0 ? -1 : 0;
    struct list_stats *st = calloc(1, sizeof *st);
    char e2[300];
    if (rc == 0 && (!st || list_parse_path(path, NULL, on_name, &im, st, e2, sizeof e2) < 0)) {
        /* The callback's own error (a database error) wins over the parser's wrapper. */
        if (!err[0])
            snprintf(err, errlen, "%s", st ? e2 : "out of memory");
        rc = -1;
    }
    long gone = 0;
    if (rc == 0) {
        const char *k;
        json_t *v;
        json_object_foreach(im.before, k, v) {
            if (put(&im, k, "removed", json_string_value(v)) < 0) {
                rc = -1;
                break;
            }
            gone++;
        }
    }
    json_decref(im.before);
    if (rc < 0) {
        free(st);
        hubdb_rollback(h->db);
        return -1;
    }
    if (hubdb_commit(h->db, err, errlen) < 0) {
        free(st);
        return -1;
    }
    hub_audit(h, "operator", "list-import", "%s from %s: %ld new, %ld kept, %ld removed, "
              "%ld skipped, %llu bad lines", source, path, im.added, im.kept, gone, im.skipped,
              (unsigned long long)st->rejected);
    free(st);
    if (added)
        *added = im.added;
    if (removed)
        *removed = gone;
    return im.bumped;
}
