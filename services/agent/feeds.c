/* Feed subscriptions: signed otasuke feeds and plain third-party lists (low trust,
 * owner-enabled). Fetch with libcurl (http, https, file; ETag; size limit; timeout),
 * verify before parsing, apply in one transaction, back off with jitter on failure.
 * A refused or failed fetch never touches the entries: the last good state protects. */
#include "agentd.h"
#include "feeds_fetch.h"
#include "feeds_stage.h"
#include "domainset.h"
#include "feed.h"
#include "lists.h"
#include "log.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FEED_INTERVAL      300    /* seconds between polls of a healthy feed */
#define FEED_BACKOFF_MAX   3600

static int valid_name(const char *s)
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

int64_t agentd_feed_add(sqlite3 *db, const char *who, const char *name, const char *url,
                        const char *kind, const char *feed_id, const char *pubkey,
                        const char *category, int64_t max_bytes, char *err, size_t errlen)
{
    uint8_t pk[FEED_PUBKEY_BYTES];
    char e2[128];
    if (!name || !valid_name(name)) {
        snprintf(err, errlen, "name: use 1-48 of a-z 0-9 . - _");
        return -1;
    }
    if (!url || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7) &&
                 strncmp(url, "file:///", 8)) || strlen(url) > 1024) {
        snprintf(err, errlen, "url: expected https://, http:// or file:/// (<= 1024 bytes)");
        return -1;
    }
    if (!kind || (strcmp(kind, "signed") && strcmp(kind, "list"))) {
        snprintf(err, errlen, "kind: expected signed or list");
        return -1;
    }
    int is_signed = strcmp(kind, "signed") == 0;
    if (is_signed && (!pubkey || feed_key_decode(pubkey, pk, sizeof pk, e2, sizeof e2) < 0)) {
        snprintf(err, errlen, "pubkey: a signed feed needs its base64 Ed25519 public key");
        return -1;
    }
    if (is_signed && (!feed_id || !valid_name(feed_id))) {
        snprintf(err, errlen, "feed_id: a signed feed needs the feed id its manifest carries");
        return -1;
    }
    if (!is_signed && (!category || dset_category_parse(category) < 0)) {
        snprintf(err, errlen, "category: a list needs the category of its entries");
        return -1;
    }
    if (max_bytes <= 0)
        max_bytes = 64 * 1024 * 1024;
    if (max_bytes > (int64_t)FEED_DEFAULT_MAX_BYTES) {
        snprintf(err, errlen, "max_bytes: at most %u", FEED_DEFAULT_MAX_BYTES);
        return -1;
    }
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    char *q = sqlite3_mprintf("INSERT INTO feeds(name, url, kind, feed_id, pubkey, category,"
                              " max_bytes) VALUES (%Q, %Q, %Q, %Q, %Q, %Q, %lld)", name, url,
                              kind, is_signed ? feed_id : NULL, is_signed ? pubkey : NULL,
                              category, (long long)max_bytes);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    int64_t id = rc == 0 ? sqlite3_last_insert_rowid(db) : -1;
    if (rc == 0) {
        json_t *after = json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "name", name, "url", url,
                                  "kind", kind, "feed_id", feed_id, "category", category);
        rc = agent_audit(db, who, "feed.add", 0, "ok", NULL, NULL, after);
        json_decref(after);
    }
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        if (strstr(err, "UNIQUE"))
            snprintf(err, errlen, "name: a feed named '%s' exists already", name);
        agent_tx_rollback(db);
        return -1;
    }
    return id;
}

int agentd_feed_set(sqlite3 *db, const char *who, const char *name, int enabled,
                    int64_t max_bytes, char *err, size_t errlen)
{
    if (max_bytes < 0 || max_bytes > (int64_t)FEED_DEFAULT_MAX_BYTES) {
        snprintf(err, errlen, "max_bytes: at most %u", FEED_DEFAULT_MAX_BYTES);
        return -1;
    }
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    const char *args[] = { name };
    json_t *before = agent_query_json(db, "SELECT name, enabled, max_bytes FROM feeds WHERE"
                                      " name=?", args, 1, err, errlen);
    if (!before || !json_array_size(before)) {
        json_decref(before);
        agent_tx_rollback(db);
        snprintf(err, errlen, "name: no feed named '%.48s'", name);
        return -1;
    }
    /* Enabling makes it due at once; the entries of a disabled feed stay in the database
     * (no refetch needed to re-enable) but leave the compiled sets. */
    char *q = sqlite3_mprintf("UPDATE feeds SET enabled=CASE WHEN %d<0 THEN enabled ELSE %d END,"
                              " max_bytes=CASE WHEN %lld=0 THEN max_bytes ELSE %lld END,"
                              " next_try=CASE WHEN %d=1 THEN 0 ELSE next_try END WHERE name=%Q",
                              enabled, enabled, (long long)max_bytes, (long long)max_bytes,
                              enabled, name);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    json_t *after = rc == 0 ? agent_query_json(db, "SELECT name, enabled, max_bytes FROM feeds"
                                               " WHERE name=?", args, 1, err, errlen) : NULL;
    if (rc == 0)
        rc = agent_audit(db, who, "feed.set", 0, "ok", NULL, json_array_get(before, 0),
                         json_array_get(after, 0));
    json_decref(before);
    json_decref(after);
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    return 0;
}

int agentd_feed_delete(sqlite3 *db, const char *who, const char *name, char *err,
                       size_t errlen)
{
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    char *q = sqlite3_mprintf("DELETE FROM feeds WHERE name=%Q", name);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    if (rc == 0 && sqlite3_changes(db) == 0) {
        snprintf(err, errlen, "name: no feed named '%.48s'", name);
        rc = -1;
    }
    if (rc == 0) {
        json_t *before = json_pack("{s:s}", "name", name);
        rc = agent_audit(db, who, "feed.delete", 0, "ok", NULL, before, NULL);
        json_decref(before);
    }
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    return 0;
}

/* ---- applying ---- */

struct apply_ctx {
    sqlite3_stmt *put, *del;
    sqlite3_stmt *chg;      /* deltas: records what changed for the overlay compile */
    struct feed_stage *stage; /* full replaces: inserted in key order (feeds_stage.h) */
    int64_t feed_id;
    const char *category;   /* lists: the subscription's category */
    uint64_t n;
    int db_code;            /* SQLite's code when storing an entry failed, 0 if none */
    char db_msg[160];       /* ... and its message, taken before any rollback */
};

/* The words for a document that was fine but could not be stored (the database, or the
 * disk under it, refused): not the publisher's fault, so not "bad-entry"/"not-a-list". */
static void storage_error(const struct apply_ctx *a, const char *what, const char *name,
                          char *err, size_t errlen)
{
    snprintf(err, errlen, "%s %s: its entries cannot be stored: %s%s", what, name, a->db_msg,
             a->db_code == SQLITE_FULL
             ? " (no space left on the box's disk: the update is refused, the last good lists"
               " keep protecting)"
             : "");
}

static int put_entry(const struct feed_entry *e, void *ud)
{
    struct apply_ctx *a = ud;
    sqlite3_stmt *st = e->action == FEED_ACT_REMOVE ? a->del : a->put;
    if (a->stage && e->action != FEED_ACT_REMOVE &&
        !(st = feed_stage_route(a->stage, a->put, feed_kind_name(e->kind), e->indicator))) {
        st = a->put;
        goto db_failed;
    }
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, a->feed_id);
    sqlite3_bind_text(st, 2, feed_kind_name(e->kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->indicator, -1, SQLITE_TRANSIENT);
    if (e->action != FEED_ACT_REMOVE) {
        const char *cat = e->category >= 0 ? dset_category_name(e->category) : NULL;
        if (cat)
            sqlite3_bind_text(st, 4, cat, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_text(st, 5, feed_action_name(e->action), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, e->expires);
        sqlite3_bind_int(st, 7, e->confidence);
        sqlite3_bind_text(st, 8, e->source, -1, SQLITE_TRANSIENT);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        goto db_failed;
    if (a->chg) {
        sqlite3_reset(a->chg);
        sqlite3_bind_text(a->chg, 1, feed_kind_name(e->kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(a->chg, 2, e->indicator, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(a->chg) != SQLITE_DONE) {
            st = a->chg;
            goto db_failed;
        }
    }
    a->n++;
    return 0;
db_failed:
    a->db_code = sqlite3_errcode(sqlite3_db_handle(st));
    snprintf(a->db_msg, sizeof a->db_msg, "%s", sqlite3_errmsg(sqlite3_db_handle(st)));
    return -2;
}

static int put_list_name(void *ud, const char *name, size_t len, unsigned flags)
{
    struct apply_ctx *a = ud;
    struct feed_entry e;
    memset(&e, 0, sizeof e);
    if (len > FEED_INDICATOR_MAX)
        return 0;
    memcpy(e.indicator, name, len);
    e.kind = FEED_KIND_DOMAIN;
    e.action = (flags & DSET_ALLOW) ? FEED_ACT_ALLOW : FEED_ACT_BLOCK;
    e.category = (flags & DSET_ALLOW) ? -1 : dset_category_parse(a->category);
    e.confidence = 50;   /* third-party lists: lower trust than a signed feed */
    snprintf(e.source, sizeof e.source, "list");
    return put_entry(&e, a) == 0 ? 0 : 1;
}

/* After the last entry of a full replace: the staged ones go in, in key order. 0, or
 * -2 with the database's complaint in a (as put_entry does). */
static int stage_done(struct apply_ctx *a)
{
    if (!a->stage || feed_stage_finish(a->stage) == 0)
        return 0;
    a->db_code = a->stage->db_code ? a->stage->db_code : SQLITE_ERROR;
    snprintf(a->db_msg, sizeof a->db_msg, "%s", a->stage->db_msg);
    return -2;
}

static int prepare(sqlite3 *db, struct apply_ctx *a)
{
    /* What deltas changed since the last full compile (names and addresses), for the
     * overlay compile. A TEMP table: private to this connection, gone with the process,
     * whose restart compiles everything anyway. Rolled back with a refused document. */
    sqlite3_exec(db, "CREATE TEMP TABLE IF NOT EXISTS feed_changed(kind TEXT NOT NULL,"
                 " indicator TEXT NOT NULL, PRIMARY KEY(kind, indicator))", NULL, NULL, NULL);
    a->chg = NULL;
    return sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO feed_entries(feed_id, kind, indicator,"
                              " category, action, expires, confidence, source) VALUES"
                              " (?,?,?,?,?,?,?,?)", -1, &a->put, NULL) == SQLITE_OK &&
           sqlite3_prepare_v2(db, "DELETE FROM feed_entries WHERE feed_id=? AND kind=? AND"
                              " indicator=?", -1, &a->del, NULL) == SQLITE_OK ? 0 : -1;
}

/* Records the outcome on the feed row: success resets the backoff; a failure doubles it
 * (5 min .. 1 h) with +-25 % jitter so a thousand boxes do not retry in step. */
static void record(sqlite3 *db, int64_t id, int64_t now, int ok, const char *reason,
                   const char *msg)
{
    sqlite3_stmt *st;
    int64_t failures = 0;
    if (sqlite3_prepare_v2(db, "SELECT failures FROM feeds WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
            failures = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    failures = ok ? 0 : failures + 1;
    int64_t delay = FEED_INTERVAL;
    for (int64_t i = 1; i < failures && delay < FEED_BACKOFF_MAX; i++)
        delay *= 2;
    if (!ok && failures == 1)
        delay = 30;   /* first failure: retry soon, it is often a blip */
    if (delay > FEED_BACKOFF_MAX)
        delay = FEED_BACKOFF_MAX;
    delay += (int64_t)randombytes_uniform((uint32_t)(delay / 2 + 1)) - delay / 4;
    char *q = sqlite3_mprintf("UPDATE feeds SET last_attempt=%lld, failures=%lld, next_try=%lld,"
                              " last_error=%Q, last_reason=%Q%s WHERE id=%lld", (long long)now,
                              (long long)failures, (long long)(now + delay), ok ? NULL : msg,
                              ok ? NULL : reason, ok ? ", last_good=strftime('%s')" : "",
                              (long long)id);
    sqlite3_exec(db, q, NULL, NULL, NULL);
    sqlite3_free(q);
}

struct feed_row {
    char name[64], url[1100], kind[8], feed_id[64], pubkey[64], category[32], etag[256];
    int64_t max_bytes, last_seq;
};

static int load_row(sqlite3 *db, int64_t id, struct feed_row *r)
{
    sqlite3_stmt *st;
    memset(r, 0, sizeof *r);
    if (sqlite3_prepare_v2(db, "SELECT name, url, kind, COALESCE(feed_id,''), COALESCE(pubkey,''),"
                           " COALESCE(category,''), COALESCE(etag,''), max_bytes, last_seq FROM"
                           " feeds WHERE id=?", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        snprintf(r->name, sizeof r->name, "%s", sqlite3_column_text(st, 0));
        snprintf(r->url, sizeof r->url, "%s", sqlite3_column_text(st, 1));
        snprintf(r->kind, sizeof r->kind, "%s", sqlite3_column_text(st, 2));
        snprintf(r->feed_id, sizeof r->feed_id, "%s", sqlite3_column_text(st, 3));
        snprintf(r->pubkey, sizeof r->pubkey, "%s", sqlite3_column_text(st, 4));
        snprintf(r->category, sizeof r->category, "%s", sqlite3_column_text(st, 5));
        snprintf(r->etag, sizeof r->etag, "%s", sqlite3_column_text(st, 6));
        r->max_bytes = sqlite3_column_int64(st, 7);
        r->last_seq = sqlite3_column_int64(st, 8);
    }
    sqlite3_finalize(st);
    return found ? 0 : -1;
}

/* A big apply (a snapshot) leaves a WAL of up to a few hundred MB; left to SQLite's
 * auto-checkpoint, it would be copied into the database during the commit of the next
 * small delta, which then takes seconds instead of milliseconds. Checkpointing right
 * away charges it to the snapshot, which is slow anyway. */
#define CHECKPOINT_AFTER_ROWS 50000

/* A delta's bookkeeping that can wait until dnsd serves it: the feed's entry count (a
 * count(*) over up to 1M rows) and the WAL checkpoint its commit would otherwise run
 * (10k random inserts dirty ~15k pages). agentd_feeds_maintain does both right after
 * the compile. */
static int maint_pending;

void agentd_feeds_maintain(sqlite3 *db)
{
    if (!maint_pending)
        return;
    maint_pending = 0;
    sqlite3_exec(db, "UPDATE feeds SET entries=(SELECT count(*) FROM feed_entries WHERE"
                 " feed_id=feeds.id)", NULL, NULL, NULL);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(PASSIVE)", NULL, NULL, NULL);
}

static int finish_apply(sqlite3 *db, int64_t id, struct apply_ctx *a, uint64_t seq,
                        const char *etag, int is_delta, char *err, size_t errlen)
{
    sqlite3_finalize(a->put);
    sqlite3_finalize(a->del);
    sqlite3_finalize(a->chg);
    char *q = is_delta
        ? sqlite3_mprintf("UPDATE feeds SET last_seq=%llu, etag=%Q WHERE id=%lld",
                          (unsigned long long)seq, etag, (long long)id)
        : sqlite3_mprintf("UPDATE feeds SET last_seq=%llu, etag=%Q, entries=(SELECT count(*)"
                          " FROM feed_entries WHERE feed_id=%lld) WHERE id=%lld",
                          (unsigned long long)seq, etag, (long long)id, (long long)id);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    if (is_delta)
        sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL);
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        if (is_delta)
            sqlite3_exec(db, "PRAGMA wal_autocheckpoint=1000", NULL, NULL, NULL);
        return -1;
    }
    if (is_delta) {
        sqlite3_exec(db, "PRAGMA wal_autocheckpoint=1000", NULL, NULL, NULL);   /* default */
        maint_pending = 1;
    }
    if (a->n >= CHECKPOINT_AFTER_ROWS)
        sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    return 0;
}

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Where a document is: in memory (doc, len) or in a file (fd >= 0, read in chunks). */
struct feed_src {
    const char *doc;
    size_t len;
    int fd;
};

/* A delta's entries land all over two B-trees of up to a million rows (the primary
 * key and the indicator index); in key order each page is read once instead of again
 * after SQLite's 8 MB cache dropped it: 10k entries into 1M cost ~2.5x less. Only small
 * deltas are sorted (20k entries = 7 MB); bigger ones stream as they come. */
#define SORT_DELTA_MAX 20000

struct sorted {
    struct feed_entry *e;
    size_t n, cap;
};

static int collect_entry(const struct feed_entry *e, void *ud)
{
    struct sorted *s = ud;
    if (s->n == s->cap)
        return -3;   /* more lines than the manifest said: verification prevents it */
    s->e[s->n++] = *e;
    return 0;
}

/* Orders entry indices by (kind, indicator), the primary key's order after feed_id;
 * equal keys keep the document's order (an add then a remove of one name). */
static int cmp_entry(const void *x, const void *y, void *ud)
{
    const struct feed_entry *v = ud;
    uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
    int c = strcmp(feed_kind_name(v[i].kind), feed_kind_name(v[j].kind));
    if (!c)
        c = strcmp(v[i].indicator, v[j].indicator);
    return c ? c : (i < j ? -1 : i > j);
}

static int src_foreach(const struct feed_src *src, const struct feed_manifest *m,
                       struct apply_ctx *a, char *err, size_t errlen)
{
    struct sorted s = { NULL, 0, 0 };
    uint32_t *order = NULL;
    int (*fn)(const struct feed_entry *, void *) = put_entry;
    void *ctx = a;
    if (m->type == FEED_DELTA && m->count > 1 && m->count <= SORT_DELTA_MAX &&
        (s.e = malloc((size_t)m->count * sizeof *s.e)) != NULL &&
        (order = malloc((size_t)m->count * sizeof *order)) != NULL) {
        s.cap = (size_t)m->count;
        fn = collect_entry;
        ctx = &s;
    }
    int rc = src->fd >= 0 ? feed_foreach_entry_fd(src->fd, m, fn, ctx, err, errlen)
                          : feed_foreach_entry(src->doc, src->len, m, fn, ctx, err, errlen);
    if (rc == 0 && fn == collect_entry) {
        for (size_t i = 0; i < s.n; i++)
            order[i] = (uint32_t)i;
        qsort_r(order, s.n, sizeof *order, cmp_entry, s.e);
        for (size_t i = 0; rc == 0 && i < s.n; i++)
            rc = put_entry(&s.e[order[i]], a);
    }
    if (rc == -3)
        snprintf(err, errlen, "more entries than the manifest's count");
    free(order);
    free(s.e);
    return rc;
}

static int apply_verified(sqlite3 *db, int64_t id, const struct feed_src *src,
                          const struct feed_manifest *m, int64_t now, char *err,
                          size_t errlen)
{
    struct feed_row r;
    if (load_row(db, id, &r) < 0) {
        snprintf(err, errlen, "feed %lld: not found", (long long)id);
        return -1;
    }
    struct apply_ctx a = { .feed_id = id, .category = r.category };
    struct feed_stage stage = { .db = db };
    char e2[AGENT_ERR], snap[64];
    if (m->type == FEED_SNAPSHOT)
        a.stage = &stage;
    if (agent_tx_begin(db, err, errlen) < 0 || prepare(db, &a) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    if (m->type == FEED_SNAPSHOT) {
        snprintf(snap, sizeof snap, "DELETE FROM feed_entries WHERE feed_id=%lld", (long long)id);
        agent_exec(db, snap, e2, sizeof e2);
    } else if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO temp.feed_changed(kind, indicator)"
                                  " VALUES (?,?)", -1, &a.chg, NULL) != SQLITE_OK) {
        /* no change log: the next compile is a full one (agentd_compile_delta says so) */
        a.chg = NULL;
        agent_exec(db, "DROP TABLE IF EXISTS temp.feed_changed", e2, sizeof e2);
    }
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    int rc = src_foreach(src, m, &a, e2, sizeof e2);
    if (rc == 0)
        rc = stage_done(&a);
    feed_stage_free(&stage);
    double t1 = now_s(CLOCK_MONOTONIC);
    if (rc != 0) {
        sqlite3_finalize(a.put);
        sqlite3_finalize(a.del);
        sqlite3_finalize(a.chg);
        agent_tx_rollback(db);
        if (a.db_code) {
            storage_error(&a, "feed", r.name, err, errlen);
            record(db, id, now, 0, "storage", err);
            return -1;
        }
        snprintf(err, errlen, "feed %s refused (bad-entry): %s", r.name, e2);
        record(db, id, now, 0, feed_reason_name(FEED_BAD_ENTRY), err);
        return -1;
    }
    if (finish_apply(db, id, &a, m->seq, r.etag, m->type == FEED_DELTA, err, errlen) < 0)
        return -1;
    record(db, id, now, 1, NULL, NULL);
    log_info("feed %s: seq %llu (%s, %llu entries, %llu sorted by SQLite) applied in %.3f s"
             " (entries %.3f s, commit %.3f s; %.3f s CPU)", r.name, (unsigned long long)m->seq,
             m->type == FEED_DELTA ? "delta" : "snapshot", (unsigned long long)a.n,
             stage.staged, now_s(CLOCK_MONOTONIC) - t0, t1 - t0, now_s(CLOCK_MONOTONIC) - t1,
             now_s(CLOCK_THREAD_CPUTIME_ID) - c0);
    return 1;
}

int agentd_feed_apply_verified(sqlite3 *db, int64_t id, int fd,
                               const struct feed_manifest *m, int64_t now, char *err,
                               size_t errlen)
{
    struct feed_src src = { .doc = NULL, .len = 0, .fd = fd };
    return apply_verified(db, id, &src, m, now, err, errlen);
}

/* The list formats are parsed from one buffer: a file is mapped (clean, evictable
 * pages) rather than read into the heap. Returns 0 or -1. */
static int src_map(const struct feed_src *src, const char **doc, size_t *len, void **map)
{
    *map = NULL;
    if (src->fd < 0) {
        *doc = src->doc;
        *len = src->len;
        return 0;
    }
    struct stat sb;
    if (fstat(src->fd, &sb) < 0)
        return -1;
    *len = (size_t)sb.st_size;
    if (*len == 0) {
        *doc = "";
        return 0;
    }
    void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, src->fd, 0);
    if (p == MAP_FAILED)
        return -1;
    madvise(p, *len, MADV_SEQUENTIAL);
    *doc = p;
    *map = p;
    return 0;
}

/* Verifies and applies. *why gets the refusal reason (FEED_OK otherwise) so the caller
 * can react to a wrong base by fetching the snapshot. */
static int apply_src(sqlite3 *db, int64_t id, const struct feed_src *src, const char *sig,
                     size_t siglen, int64_t now, enum feed_reason *why, int *delta, char *err,
                     size_t errlen)
{
    struct feed_row r;
    *why = FEED_OK;
    *delta = 0;
    if (load_row(db, id, &r) < 0) {
        snprintf(err, errlen, "feed %lld: not found", (long long)id);
        return -1;
    }
    struct apply_ctx a = { .feed_id = id, .category = r.category };
    char e2[AGENT_ERR];
    char snap[64];
    if (strcmp(r.kind, "signed") == 0) {
        uint8_t pk[FEED_PUBKEY_BYTES];
        if (feed_key_decode(r.pubkey, pk, sizeof pk, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "feed %s: pinned key unreadable: %s", r.name, e2);
            record(db, id, now, 0, "bad-key", err);
            return -1;
        }
        struct feed_expect x = { .feed_id = r.feed_id, .pubkey = pk,
                                 .last_seq = (uint64_t)r.last_seq, .now = now,
                                 .max_bytes = (size_t)r.max_bytes };
        struct feed_manifest m;
        double v0 = now_s(CLOCK_MONOTONIC);
        *why = src->fd >= 0 ? feed_verify_fd(src->fd, sig, siglen, &x, &m, e2, sizeof e2)
                            : feed_verify(src->doc, src->len, sig, siglen, &x, &m, e2, sizeof e2);
        log_debug("feed %s: verified in %.3f s", r.name, now_s(CLOCK_MONOTONIC) - v0);
        if (*why == FEED_ROLLBACK && m.seq == (uint64_t)r.last_seq) {
            /* Validly signed and the seq we hold: the same document again (a server
             * without ETags). Not an error, nothing to apply. */
            *why = FEED_OK;
            record(db, id, now, 1, NULL, NULL);
            return 0;
        }
        if (*why != FEED_OK) {
            snprintf(err, errlen, "feed %s refused (%s): %s", r.name, feed_reason_name(*why), e2);
            record(db, id, now, 0, feed_reason_name(*why), err);
            return -1;
        }
        *delta = m.type == FEED_DELTA;
        return apply_verified(db, id, src, &m, now, err, errlen);
    } else {
        struct list_opts lo = { .format = LIST_FMT_AUTO, .subtree = 1 };
        struct list_stats st;
        const char *doc;
        size_t len;
        void *map;
        if (src_map(src, &doc, &len, &map) < 0) {
            snprintf(err, errlen, "list %s: cannot map the download: %s", r.name, strerror(errno));
            record(db, id, now, 0, "fetch", err);
            return -1;
        }
        if ((int64_t)len > r.max_bytes) {
            snprintf(err, errlen, "list %s refused (oversized): %zu bytes", r.name, len);
            record(db, id, now, 0, "oversized", err);
            if (map)
                munmap(map, len);
            return -1;
        }
        if (agent_tx_begin(db, err, errlen) < 0 || prepare(db, &a) < 0) {
            agent_tx_rollback(db);
            if (map)
                munmap(map, len);
            return -1;
        }
        snprintf(snap, sizeof snap, "DELETE FROM feed_entries WHERE feed_id=%lld", (long long)id);
        agent_exec(db, snap, e2, sizeof e2);
        struct feed_stage stage = { .db = db };
        a.stage = &stage;
        int prc = list_parse_buffer(doc, len, &lo, put_list_name, &a, &st, e2, sizeof e2);
        if (prc >= 0 && stage_done(&a) < 0)
            prc = -1;
        feed_stage_free(&stage);
        if (map)
            munmap(map, len);
        if (prc < 0) {
            sqlite3_finalize(a.put);
            sqlite3_finalize(a.del);
            sqlite3_finalize(a.chg);
            agent_tx_rollback(db);
            if (a.db_code) {
                storage_error(&a, "list", r.name, err, errlen);
                record(db, id, now, 0, "storage", err);
                return -1;
            }
            snprintf(err, errlen, "list %s refused (not-a-list): %s", r.name, e2);
            record(db, id, now, 0, "not-a-list", err);
            return -1;
        }
        if (finish_apply(db, id, &a, (uint64_t)r.last_seq + 1, r.etag, 0, err, errlen) < 0)
            return -1;
        if (st.rejected) {
            char msg[AGENT_ERR];
            snprintf(msg, sizeof msg, "%llu bad lines (first: line %llu: %s)",
                     (unsigned long long)st.rejected,
                     (unsigned long long)(st.nerrors ? st.errors[0].line : 0),
                     st.nerrors ? st.errors[0].reason : "?");
            record(db, id, now, 1, NULL, NULL);
            char *q = sqlite3_mprintf("UPDATE feeds SET last_error=%Q WHERE id=%lld", msg,
                                      (long long)id);
            sqlite3_exec(db, q, NULL, NULL, NULL);
            sqlite3_free(q);
            return 1;
        }
    }
    record(db, id, now, 1, NULL, NULL);
    return 1;
}

int agentd_feed_apply(sqlite3 *db, int64_t id, const char *doc, size_t len, const char *sig,
                      size_t siglen, int64_t now, char *err, size_t errlen)
{
    struct feed_src src = { .doc = doc, .len = len, .fd = -1 };
    enum feed_reason why;
    int delta;
    return apply_src(db, id, &src, sig, siglen, now, &why, &delta, err, errlen);
}

int agentd_feed_apply_fd(sqlite3 *db, int64_t id, int fd, const char *sig, size_t siglen,
                         int64_t now, char *err, size_t errlen)
{
    struct feed_src src = { .doc = NULL, .len = 0, .fd = fd };
    enum feed_reason why;
    int delta;
    return apply_src(db, id, &src, sig, siglen, now, &why, &delta, err, errlen);
}

static struct feed_job *job_prepare(struct agentd *ad, int64_t id, char *err, size_t errlen)
{
    struct feed_row r;
    if (load_row(ad->db, id, &r) < 0) {
        snprintf(err, errlen, "feed %lld: not found", (long long)id);
        return NULL;
    }
    struct feed_job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->id = id;
    j->notify_fd = -1;
    snprintf(j->url, sizeof j->url, "%s", r.url);
    snprintf(j->etag, sizeof j->etag, "%s", r.etag);
    j->is_signed = strcmp(r.kind, "signed") == 0;
    j->doc.body.max = (size_t)r.max_bytes;
    j->sig.body.max = 4096;
    j->sig.file.fd = -1;
    /* The document goes to an anonymous file in the state directory: a million-entry
     * snapshot is ~140 MB, which must not sit in the heap (the agent's budget is 64 MB).
     * Without a usable directory it falls back to memory, bounded by max_bytes. */
    j->doc.file.fd = ad->state_dir ? filesink_tmpfile(ad->state_dir) : -1;
    return j;
}

/* The job that fetches the snapshot after a delta did not fit our seq: the publisher
 * serves it next to the feed as URL.snapshot (+ .sig), see docs/feeds.md. */
static struct feed_job *job_fallback(struct agentd *ad, const struct feed_job *j, char *err,
                                     size_t errlen)
{
    struct feed_job *f = job_prepare(ad, j->id, err, errlen);
    if (!f)
        return NULL;
    if (strlen(j->url) + 10 > sizeof f->url) {
        snprintf(err, errlen, "%s: URL too long for its .snapshot", j->url);
        feed_job_free(f);
        return NULL;
    }
    /* the precision only tells the compiler what the check above made sure of */
    snprintf(f->url, sizeof f->url, "%.1089s.snapshot", j->url);
    f->etag[0] = '\0';
    f->snapshot_fallback = 1;
    snprintf(f->keep_etag, sizeof f->keep_etag, "%s", j->doc.etag);
    return f;
}

/* Applies a finished download in the main thread. Same returns as agentd_feed_refresh;
 * *fallback is set when the document was a delta on another base and the snapshot
 * should be fetched now. */
static int job_finish(struct agentd *ad, struct feed_job *j, int64_t now, int *fallback,
                      char *err, size_t errlen)
{
    int rc;
    *fallback = 0;
    ad->n.feed_fetches++;
    if (j->status == 304) {
        ad->n.feed_not_modified++;
        record(ad->db, j->id, now, 1, NULL, NULL);
        rc = 0;
    } else if (j->status < 0 && j->snapshot_fallback) {
        /* The owner needs the first cause: the delta did not fit and the publisher
         * offers no snapshot we could take instead. */
        ad->n.feed_errors++;
        snprintf(err, errlen, "feed refused (bad-base): a delta on another seq, and no snapshot"
                 " to fall back to: %s", j->err);
        record(ad->db, j->id, now, 0, feed_reason_name(FEED_BAD_BASE), err);
        rc = -1;
    } else if (j->status < 0) {
        ad->n.feed_errors++;
        snprintf(err, errlen, "%s", j->err);
        record(ad->db, j->id, now, 0, j->status == -2 ? "oversized" : "fetch", j->err);
        rc = -1;
    } else {
        struct feed_src src = { .doc = j->doc.body.data ? j->doc.body.data : "",
                                .len = j->doc.body.len, .fd = j->doc.file.fd };
        enum feed_reason why;
        int delta;
        rc = apply_src(ad->db, j->id, &src, j->sig.body.data, j->sig.body.len, now, &why,
                       &delta, err, errlen);
        /* The new ETag is stored with applied content only: a refused document must be
         * fetched again, not skipped as "not modified". After a snapshot fallback it is
         * the ETag of the feed URL that is kept: that delta is now behind us. */
        const char *etag = j->snapshot_fallback ? j->keep_etag : j->doc.etag;
        if (rc > 0 && etag[0]) {
            char *q = sqlite3_mprintf("UPDATE feeds SET etag=%Q WHERE id=%lld", etag,
                                      (long long)j->id);
            sqlite3_exec(ad->db, q, NULL, NULL, NULL);
            sqlite3_free(q);
        }
        if (rc < 0 && why == FEED_BAD_BASE && j->is_signed && !j->snapshot_fallback) {
            *fallback = 1;
            log_info("%s; fetching the snapshot %s.snapshot", err, j->url);
        } else if (rc < 0) {
            ad->n.feed_refusals++;
        } else if (rc > 0 && delta) {
            ad->delta_dirty = 1;   /* an overlay compile will do (agentd_compile_delta) */
        } else if (rc > 0) {
            ad->dirty = 1;
        }
    }
    return rc;
}

int agentd_feed_refresh(struct agentd *ad, int64_t id, int64_t now, char *err, size_t errlen)
{
    struct feed_job *j = job_prepare(ad, id, err, errlen);
    int fallback = 0;
    if (!j)
        return -1;
    feed_job_run(j);
    int rc = job_finish(ad, j, now, &fallback, err, errlen);
    if (fallback) {
        struct feed_job *f = job_fallback(ad, j, err, errlen);
        if (f) {
            feed_job_run(f);
            rc = job_finish(ad, f, now, &fallback, err, errlen);
            feed_job_free(f);
        } else {
            rc = -1;
        }
    }
    feed_job_free(j);
    return rc;
}

/* Runs j on the worker thread (it becomes ad->job), or here when no worker can start.
 * Returns 1 if something was applied in place, else 0. */
static int job_launch(struct agentd *ad, struct feed_job *j, int64_t now)
{
    char err[AGENT_ERR];
    j->notify_fd = ad->job_pipe[1];
    if (ad->job_pipe[1] < 0 || feed_job_start(j) < 0) {
        /* No worker: fetch here, the API waits this once. */
        int fallback;
        feed_job_run(j);
        int rc = job_finish(ad, j, now, &fallback, err, sizeof err);
        if (fallback) {
            struct feed_job *f = job_fallback(ad, j, err, sizeof err);
            feed_job_free(j);
            if (!f) {
                log_warn("%s", err);
                return 0;
            }
            return job_launch(ad, f, now);
        }
        if (rc < 0)
            log_warn("%s", err);
        feed_job_free(j);
        return rc > 0;
    }
    ad->job = j;
    return 0;
}

int agentd_feeds_due(struct agentd *ad, int64_t now)
{
    char err[AGENT_ERR];
    if (ad->job)
        return 0;   /* one download at a time; the next starts when it is applied */
    if (ad->feeds_due_now) {
        sqlite3_exec(ad->db, "UPDATE feeds SET next_try=0 WHERE enabled=1 AND url NOT LIKE 'hub:%'",
                     NULL, NULL, NULL);
        ad->feeds_due_now = 0;
    }
    sqlite3_stmt *st;
    int64_t id = 0;
    /* hub: rows are fed by the hub client (agent_hub.c), not fetched here. */
    if (sqlite3_prepare_v2(ad->db, "SELECT id FROM feeds WHERE enabled=1 AND next_try<=? AND"
                           " url NOT LIKE 'hub:%' ORDER BY next_try, id LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64(st, 1, now);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!id)
        return 0;
    struct feed_job *j = job_prepare(ad, id, err, sizeof err);
    if (!j)
        return 0;
    return job_launch(ad, j, now);
}

int agentd_feeds_job_done(struct agentd *ad, int64_t now)
{
    char b, err[AGENT_ERR];
    int fallback;
    while (read(ad->job_pipe[0], &b, 1) == 1)
        ;
    if (!ad->job)
        return 0;
    struct feed_job *j = ad->job;
    pthread_join(j->thread, NULL);
    ad->job = NULL;
    int rc = job_finish(ad, j, now, &fallback, err, sizeof err);
    if (fallback) {
        struct feed_job *f = job_fallback(ad, j, err, sizeof err);
        feed_job_free(j);
        if (!f) {
            log_warn("%s", err);
            return -1;
        }
        return job_launch(ad, f, now);
    }
    if (rc < 0)
        log_warn("%s", err);
    feed_job_free(j);
    return rc;
}

int64_t agentd_feeds_next(sqlite3 *db, int64_t now)
{
    sqlite3_stmt *st;
    int64_t next = -1;
    if (sqlite3_prepare_v2(db, "SELECT min(next_try) FROM feeds WHERE enabled=1 AND"
                           " url NOT LIKE 'hub:%'", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            next = sqlite3_column_int64(st, 0) - now;
            if (next < 0)
                next = 0;
        }
        sqlite3_finalize(st);
    }
    return next;
}
