/* Run-time thresholds of the query events (events.c): the agent writes what its DNS-tunnel
 * detector looks for (otasuke.conf detect { } overridden by the owner's settings) into a
 * small JSON file next to policy.set, and dnsd reads it with every reload, on the reload
 * thread like the set and the policy:
 *   {"version":1,"label_len":30,"entropy":3.5,"rate":5,"burst":40}
 * A missing file means the values dnsd started with (command line / otasuke.conf); a bad
 * one is refused with file and field named, and the thresholds in use stay. */
#include "dnsd.h"

#include "errbuf.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define QT_MAX_BYTES 4096   /* five numbers; anything bigger is not this file */

static int num(json_t *o, const char *key, const char *path, double lo, double hi, int integer,
               double *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return errbuf_set(err, errlen, "%s: %s: missing (the agent writes every field; "
                          "rewrite the file or remove it to use the started values)", path, key);
    if (integer ? !json_is_integer(v) : !json_is_number(v))
        return errbuf_set(err, errlen, "%s: %s: not %s", path, key,
                          integer ? "an integer" : "a number");
    double x = json_number_value(v);
    if (x < lo || x > hi)
        return errbuf_set(err, errlen, "%s: %s: %g is outside %g..%g", path, key, x, lo, hi);
    *out = x;
    return 0;
}

int qtune_parse(const char *text, size_t len, const char *path, struct qtune *t, char *err,
                size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        if (o)
            errbuf_set(err, errlen, "%s: not a JSON object", path);
        else
            errbuf_set(err, errlen, "%s:%d: %s", path, je.line, je.text);
        json_decref(o);
        return -1;
    }
    static const char *const known[] = { "version", "label_len", "entropy", "rate", "burst" };
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(k, known[i]))
            i++;
        if (i == sizeof known / sizeof known[0]) {
            errbuf_set(err, errlen, "%s: %s: unknown field (known: version, label_len, "
                       "entropy, rate, burst)", path, k);
            json_decref(o);
            return -1;
        }
    }
    double ver, ll, en, ra, bu;
    int rc = -1;
    if (num(o, "version", path, 1, 1, 1, &ver, err, errlen) < 0 ||
        num(o, "label_len", path, 1, 63, 1, &ll, err, errlen) < 0 ||
        num(o, "entropy", path, 0, 8, 0, &en, err, errlen) < 0 ||
        num(o, "rate", path, 1, QTUNE_MAX_RATE, 1, &ra, err, errlen) < 0 ||
        num(o, "burst", path, 1, QTUNE_MAX_BURST, 1, &bu, err, errlen) < 0)
        goto out;
    t->label_len = (int)ll;
    t->entropy = en;
    t->rate = (int)ra;
    t->burst = (int)bu;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int qtune_load(const char *path, struct qtune *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
    char buf[QT_MAX_BYTES + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr)
        return errbuf_set(err, errlen, "%s: read error", path);
    if (n > QT_MAX_BYTES)
        return errbuf_set(err, errlen, "%s: larger than %d bytes: not a query-events file",
                          path, QT_MAX_BYTES);
    return qtune_parse(buf, n, path, t, err, errlen) < 0 ? -1 : 1;
}

void qtune_apply(struct dnsd *d, int rc, const struct qtune *t, const char *err)
{
    const struct qtune *use = rc == 1 ? t : rc == 0 ? &d->o.query_base : NULL;
    if (!use) {
        log_warn("query events: %s; keeping label %d, entropy %.2f, %d/s, burst %d", err,
                 d->o.query.label_len, d->o.query.entropy, d->o.query.rate, d->o.query.burst);
        return;
    }
    const struct qtune *cur = &d->o.query;
    if (use->label_len == cur->label_len && use->entropy == cur->entropy &&
        use->rate == cur->rate && use->burst == cur->burst)
        return;
    d->o.query = *use;
    log_info("query events: labels from %d characters (or from 16 with entropy %.2f), %d a "
             "second per client, burst %d (%s)", use->label_len, use->entropy, use->rate,
             use->burst, rc == 1 ? d->o.query_events_path : "started values");
}
