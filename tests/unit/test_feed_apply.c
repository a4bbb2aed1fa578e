/* Applying feeds to the agent's database: snapshot, delta (add and remove), refusals that
 * keep the last good entries and record the reason, replays, lists, backoff. */
#include "../../services/agent/agent.h"
#include "../../services/agent/agentd.h"
#include "domainset.h"
#include "feed.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
static char err[AGENT_ERR], doc[8192], sig[256];
static size_t doclen;
static int64_t feed_row;

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static const char *text(sqlite3 *db, const char *sql)
{
    static char buf[512];
    sqlite3_stmt *st;
    buf[0] = '\0';
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, sizeof buf, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

/* Builds a signed document: type, seq, base, then "action indicator" pairs. */
static void build(enum feed_type type, uint64_t seq, uint64_t base, int n, ...)
{
    struct feed_manifest m = { .seq = seq, .base = base, .type = type, .count = (uint64_t)n,
                               .created = time(NULL), .expires = time(NULL) + 3600 };
    snprintf(m.feed, sizeof m.feed, "community");
    feed_key_id(pk, m.signer);
    doclen = (size_t)feed_format_manifest(&m, doc, sizeof doc);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *act = va_arg(ap, const char *), *ind = va_arg(ap, const char *);
        struct feed_entry e = { .kind = FEED_KIND_DOMAIN, .category = DSET_CAT_MALWARE,
                                .confidence = 90 };
        e.action = !strcmp(act, "remove") ? FEED_ACT_REMOVE : FEED_ACT_BLOCK;
        snprintf(e.indicator, sizeof e.indicator, "%s", ind);
        doclen += (size_t)feed_format_entry(&e, doc + doclen, sizeof doc - doclen);
    }
    va_end(ap);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
}

static int apply(sqlite3 *db)
{
    return agentd_feed_apply(db, feed_row, doc, doclen, sig, strlen(sig), time(NULL), err,
                             sizeof err);
}

static int setup(void **state)
{
    sqlite3 *db = agent_db_open(":memory:", err, sizeof err);
    assert_non_null(db);
    assert_int_equal(feed_keygen(pk, sk), 0);
    char b64[128];
    feed_key_encode(pk, sizeof pk, b64, sizeof b64);
    feed_row = agentd_feed_add(db, AGENT_OWNER, "community", "file:///nonexistent/feed.json",
                               "signed", "community", b64, NULL, 0, err, sizeof err);
    assert_true(feed_row > 0);
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    agent_db_close(*state);
    return 0;
}

static void test_snapshot_then_delta(void **state)
{
    sqlite3 *db = *state;
    build(FEED_SNAPSHOT, 1, 0, 2, "block", "a.test", "block", "b.test");
    assert_int_equal(apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(scalar(db, "SELECT last_seq FROM feeds"), 1);
    build(FEED_DELTA, 2, 1, 2, "remove", "a.test", "block", "c.test");
    assert_int_equal(apply(db), 1);
    assert_string_equal(text(db, "SELECT group_concat(indicator) FROM (SELECT indicator FROM"
                                 " feed_entries ORDER BY indicator)"), "b.test,c.test");
    assert_int_equal(scalar(db, "SELECT entries FROM feeds"), 2);
    /* A snapshot replaces everything. */
    build(FEED_SNAPSHOT, 3, 0, 1, "block", "z.test");
    assert_int_equal(apply(db), 1);
    assert_string_equal(text(db, "SELECT group_concat(indicator) FROM feed_entries"), "z.test");
}

static void test_refusals_keep_last_good(void **state)
{
    sqlite3 *db = *state;
    build(FEED_SNAPSHOT, 5, 0, 1, "block", "keep.test");
    assert_int_equal(apply(db), 1);
    /* Tampered: refused, reason recorded, entries untouched, backoff set. */
    build(FEED_SNAPSHOT, 6, 0, 1, "block", "other.test");
    doc[doclen - 3] ^= 1;
    assert_int_equal(apply(db), -1);
    assert_string_equal(text(db, "SELECT last_reason FROM feeds"), "bad-signature");
    assert_non_null(strstr(text(db, "SELECT last_error FROM feeds"), "does not match"));
    assert_string_equal(text(db, "SELECT group_concat(indicator) FROM feed_entries"), "keep.test");
    assert_true(scalar(db, "SELECT next_try FROM feeds") > time(NULL));
    assert_int_equal(scalar(db, "SELECT failures FROM feeds"), 1);
    /* Rolled back seq. */
    build(FEED_SNAPSHOT, 4, 0, 1, "block", "old.test");
    assert_int_equal(apply(db), -1);
    assert_string_equal(text(db, "SELECT last_reason FROM feeds"), "rollback");
    assert_int_equal(scalar(db, "SELECT failures FROM feeds"), 2);
    /* The same seq again (a server without ETags): not modified, not an error. */
    build(FEED_SNAPSHOT, 5, 0, 1, "block", "keep.test");
    assert_int_equal(apply(db), 0);
    assert_int_equal(scalar(db, "SELECT failures FROM feeds"), 0);
    assert_true(text(db, "SELECT last_error FROM feeds")[0] == '\0');
    /* A delta on a base we do not hold. */
    build(FEED_DELTA, 9, 8, 1, "block", "x.test");
    assert_int_equal(apply(db), -1);
    assert_string_equal(text(db, "SELECT last_reason FROM feeds"), "bad-base");
    /* Signed but a broken entry: nothing of the document is kept. */
    build(FEED_SNAPSHOT, 7, 0, 2, "block", "new1.test", "block", "new2.test");
    memcpy(doc + doclen - 4, "zz\"\n", 4);
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
    assert_int_equal(apply(db), -1);
    assert_string_equal(text(db, "SELECT last_reason FROM feeds"), "bad-entry");
    assert_non_null(strstr(err, "line 3"));
    assert_string_equal(text(db, "SELECT group_concat(indicator) FROM feed_entries"), "keep.test");
    assert_int_equal(scalar(db, "SELECT last_seq FROM feeds"), 5);
}

static void test_list(void **state)
{
    sqlite3 *db = *state;
    int64_t id = agentd_feed_add(db, AGENT_OWNER, "ads", "https://lists.test/ads.txt", "list",
                                 NULL, NULL, "ads", 0, err, sizeof err);
    assert_true(id > 0);
    const char *list = "# a hosts file\n0.0.0.0 ads.example.test\n0.0.0.0 Track.Example.TEST\n"
                       "this is not a line of a hosts file\n";
    assert_int_equal(agentd_feed_apply(db, id, list, strlen(list), NULL, 0, time(NULL), err,
                                       sizeof err), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries e JOIN feeds f ON"
                     " f.id=e.feed_id WHERE f.name='ads' AND e.category='ads'"), 2);
    assert_non_null(strstr(text(db, "SELECT last_error FROM feeds WHERE name='ads'"),
                           "bad line"));
    /* Not a list at all (an HTML error page): refused, entries kept. */
    const char *html = "<html><body>Service unavailable</body></html>\n";
    assert_int_equal(agentd_feed_apply(db, id, html, strlen(html), NULL, 0, time(NULL), err,
                                       sizeof err), -1);
    assert_string_equal(text(db, "SELECT last_reason FROM feeds WHERE name='ads'"), "not-a-list");
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries e JOIN feeds f ON"
                     " f.id=e.feed_id WHERE f.name='ads'"), 2);
}

static void test_subscription_validation(void **state)
{
    sqlite3 *db = *state;
    assert_int_equal(agentd_feed_add(db, AGENT_OWNER, "x", "ftp://a/b", "signed", "x", "k", NULL,
                                     0, err, sizeof err), -1);
    assert_non_null(strstr(err, "url"));
    assert_int_equal(agentd_feed_add(db, AGENT_OWNER, "x", "https://a/b", "signed", "x", "AAAA",
                                     NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "pubkey"));
    assert_int_equal(agentd_feed_add(db, AGENT_OWNER, "x", "https://a/b", "list", NULL, NULL,
                                     "nope", 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "category"));
    assert_int_equal(agentd_feed_add(db, AGENT_OWNER, "community", "https://a/b", "list", NULL,
                                     NULL, "ads", 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(agentd_feed_set(db, AGENT_OWNER, "community", 0, 0, err, sizeof err), 0);
    assert_int_equal(scalar(db, "SELECT enabled FROM feeds WHERE name='community'"), 0);
    assert_int_equal(agentd_feed_set(db, AGENT_OWNER, "nothere", 1, 0, err, sizeof err), -1);
    assert_int_equal(agentd_feed_delete(db, AGENT_OWNER, "community", err, sizeof err), 0);
    assert_int_equal(agentd_feed_delete(db, AGENT_OWNER, "community", err, sizeof err), -1);
}


/* Writes the current doc and sig to PATH and PATH.sig. */
static void save(const char *path)
{
    char sp[600];
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(doc, 1, doclen, f), doclen);
    fclose(f);
    snprintf(sp, sizeof sp, "%s.sig", path);
    f = fopen(sp, "w");
    assert_non_null(f);
    fputs(sig, f);
    fclose(f);
}

/* Over file:// as over HTTP: a delta on another base is followed by URL.snapshot, the
 * download goes through a file in the state directory, and without a snapshot the
 * refusal says bad-base and the entries stay. */
static void test_file_url_snapshot_fallback(void **state)
{
    sqlite3 *db = *state;
    char dir[] = "/tmp/test_feed_apply.XXXXXX", url[400], path[300], q[500];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/feed.json", dir);
    snprintf(url, sizeof url, "file://%s", path);
    snprintf(q, sizeof q, "UPDATE feeds SET url='%s' WHERE id=%lld", url, (long long)feed_row);
    assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
    struct agentd ad;
    memset(&ad, 0, sizeof ad);
    ad.db = db;
    ad.state_dir = dir;
    ad.job_pipe[0] = ad.job_pipe[1] = -1;

    build(FEED_SNAPSHOT, 1, 0, 1, "block", "a.test");
    save(path);
    assert_int_equal(agentd_feed_refresh(&ad, feed_row, time(NULL), err, sizeof err), 1);
    assert_int_equal(scalar(db, "SELECT last_seq FROM feeds"), 1);
    /* the publisher moved on to seq 5; its delta 4 -> 5 does not fit seq 1 */
    char snap[320];
    snprintf(snap, sizeof snap, "%s.snapshot", path);
    build(FEED_SNAPSHOT, 5, 0, 2, "block", "a.test", "block", "e.test");
    save(snap);
    build(FEED_DELTA, 5, 4, 1, "block", "e.test");
    save(path);
    assert_int_equal(agentd_feed_refresh(&ad, feed_row, time(NULL), err, sizeof err), 1);
    assert_int_equal(scalar(db, "SELECT last_seq FROM feeds"), 5);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries WHERE indicator='e.test'"), 1);
    assert_null(text(db, "SELECT last_reason FROM feeds")[0] ? "set" : NULL);
    /* a full compile is due (a snapshot), not an overlay one */
    assert_int_equal(ad.dirty, 1);
    assert_int_equal(ad.delta_dirty, 0);
    /* no snapshot: refused as bad-base, entries kept */
    build(FEED_DELTA, 9, 8, 1, "block", "x.test");
    save(path);
    unlink(snap);
    snprintf(q, sizeof q, "%s.sig", snap);
    unlink(q);
    assert_int_equal(agentd_feed_refresh(&ad, feed_row, time(NULL), err, sizeof err), -1);
    assert_non_null(strstr(err, "bad-base"));
    assert_string_equal(text(db, "SELECT last_reason FROM feeds"), "bad-base");
    assert_int_equal(scalar(db, "SELECT last_seq FROM feeds"), 5);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    /* a fitting delta marks only the overlay compile due and logs what changed, in
     * document order for one name (added then removed: gone) */
    ad.dirty = 0;
    build(FEED_DELTA, 6, 5, 4, "block", "z.test", "block", "b.test", "remove", "a.test",
          "remove", "z.test");
    save(path);
    assert_int_equal(agentd_feed_refresh(&ad, feed_row, time(NULL), err, sizeof err), 1);
    assert_int_equal(ad.dirty, 0);
    assert_int_equal(ad.delta_dirty, 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries WHERE indicator IN"
                                " ('z.test','a.test')"), 0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries WHERE indicator='b.test'"), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM temp.feed_changed"), 3);
    unlink(path);
    snprintf(q, sizeof q, "%s.sig", path);
    unlink(q);
    rmdir(dir);
}

/* ---- full replaces in key order (services/agent/feeds_stage.c) ----
 * A snapshot or list whose entries come out of order is stored exactly as one applied in
 * document order would be (every entry, the last of equal keys wins, entry counts right),
 * and a refusal after staging began keeps the last good entries and leaves nothing. */
static char *big;                 /* a document of any size (doc[] holds 8 KiB) */
static size_t biglen, bigcap;
static uint64_t big_seq = 1;      /* only has to grow: every test starts a new database */

static int64_t confidence_of(sqlite3 *db, const char *name)
{
    char q[300];
    snprintf(q, sizeof q, "SELECT confidence FROM feed_entries WHERE feed_id=%lld AND"
             " indicator='%s'", (long long)feed_row, name);
    return scalar(db, q);
}

static void big_start(uint64_t count)
{
    struct feed_manifest m = { .seq = big_seq++, .type = FEED_SNAPSHOT, .count = count,
                               .created = time(NULL), .expires = time(NULL) + 3600 };
    snprintf(m.feed, sizeof m.feed, "community");
    feed_key_id(pk, m.signer);
    bigcap = 64 + count * 300;
    big = realloc(big, bigcap);
    assert_non_null(big);
    biglen = (size_t)feed_format_manifest(&m, big, bigcap);
}

static void big_add(const char *kind, const char *name, int confidence)
{
    struct feed_entry e = { .kind = !strcmp(kind, "ipv4") ? FEED_KIND_IPV4 : FEED_KIND_DOMAIN,
                            .category = DSET_CAT_MALWARE, .confidence = confidence,
                            .action = FEED_ACT_BLOCK };
    snprintf(e.indicator, sizeof e.indicator, "%s", name);
    int n = feed_format_entry(&e, big + biglen, bigcap - biglen);
    assert_true(n > 0);
    biglen += (size_t)n;
}

/* A line that parses as JSON but is not an entry: the applier refuses it (bad-entry). */
static void big_add_bad(void)
{
    biglen += (size_t)snprintf(big + biglen, bigcap - biglen, "{\"indicator\":\"x.test\"}\n");
}

/* A snapshot of n names in reverse order: all but the first are staged. */
static void big_reverse(int n)
{
    char name[64];
    big_start((uint64_t)n);
    for (int i = n - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "host%05d.example.test", i);
        big_add("domain", name, 50);
    }
}

static int big_apply(sqlite3 *db)
{
    assert_true(feed_sign(big, biglen, sk, sig, sizeof sig) > 0);
    return agentd_feed_apply(db, feed_row, big, biglen, sig, strlen(sig), time(NULL), err,
                             sizeof err);
}

/* In order first (direct inserts), then out of order (staged): equal keys on both sides
 * of the switch and inside the stage, and an address between names (kind orders first). */
static void test_out_of_order_snapshot(void **state)
{
    sqlite3 *db = *state;
    big_start(8);
    big_add("domain", "a.example.test", 10);
    big_add("domain", "m.example.test", 11);
    big_add("domain", "c.example.test", 12);   /* out of order: staging begins */
    big_add("domain", "a.example.test", 13);   /* replaces a direct one */
    big_add("ipv4", "198.18.10.66", 14);
    big_add("domain", "z.example.test", 15);
    big_add("domain", "c.example.test", 16);   /* replaces a staged one */
    big_add("domain", "b.example.test", 17);
    assert_int_equal(big_apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 6);
    assert_int_equal(scalar(db, "SELECT entries FROM feeds WHERE name='community'"), 6);
    assert_int_equal(confidence_of(db, "a.example.test"), 13);
    assert_int_equal(confidence_of(db, "c.example.test"), 16);
    assert_int_equal(confidence_of(db, "m.example.test"), 11);
    assert_int_equal(confidence_of(db, "b.example.test"), 17);
    assert_int_equal(confidence_of(db, "198.18.10.66"), 14);
    /* the stage is gone with its transaction's work done */
    assert_int_equal(scalar(db, "SELECT count(*) FROM sqlite_temp_master WHERE"
                     " name='feed_stage'"), 0);
}

/* Many names in reverse order (all staged), then a snapshot that replaces them. */
static void test_reverse_snapshot_replaces(void **state)
{
    sqlite3 *db = *state;
    enum { N = 3000 };
    big_reverse(N);
    assert_int_equal(big_apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), N);
    assert_int_equal(scalar(db, "SELECT count(DISTINCT indicator) FROM feed_entries WHERE"
                     " indicator LIKE 'host%'"), N);
    big_start(2);
    big_add("domain", "y.example.test", 60);
    big_add("domain", "x.example.test", 61);
    assert_int_equal(big_apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(confidence_of(db, "x.example.test"), 61);
}

/* A bad entry after staging began: refused, the last good entries stay, and the next
 * good snapshot stages again from an empty stage. */
static void test_refusal_after_staging(void **state)
{
    sqlite3 *db = *state;
    big_start(2);
    big_add("domain", "good1.example.test", 70);
    big_add("domain", "good2.example.test", 71);
    assert_int_equal(big_apply(db), 1);
    big_start(4);
    big_add("domain", "n.example.test", 1);
    big_add("domain", "b.example.test", 2);   /* staged */
    big_add("domain", "a.example.test", 3);   /* staged */
    big_add_bad();
    assert_int_equal(big_apply(db), -1);
    assert_non_null(strstr(err, "bad-entry"));
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(confidence_of(db, "good1.example.test"), 70);
    big_start(2);
    big_add("domain", "q.example.test", 80);
    big_add("domain", "p.example.test", 81);
    assert_int_equal(big_apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(confidence_of(db, "p.example.test"), 81);
    assert_int_equal(confidence_of(db, "n.example.test"), -1);
}

/* The move from the stage fails for want of space (the database may not grow: what a
 * full disk does): refused as 'storage' in words, the last good entries kept. */
static void test_staged_snapshot_full_disk(void **state)
{
    sqlite3 *db = *state;
    big_start(2);
    big_add("domain", "good1.example.test", 70);
    big_add("domain", "good2.example.test", 71);
    assert_int_equal(big_apply(db), 1);
    int64_t pages = scalar(db, "PRAGMA page_count");
    char q[64];
    snprintf(q, sizeof q, "PRAGMA max_page_count=%lld", (long long)pages + 2);
    scalar(db, q);
    enum { N = 3000 };
    big_reverse(N);   /* all staged: the TEMP table may grow */
    assert_int_equal(big_apply(db), -1);
    assert_non_null(strstr(err, "cannot be stored"));
    assert_non_null(strstr(err, "no space left"));
    assert_string_equal(text(db, "SELECT last_reason FROM feeds WHERE name='community'"),
                        "storage");
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(confidence_of(db, "good1.example.test"), 70);
}

/* Plain lists are full replaces too: out-of-order names, a duplicate. */
static void test_list_out_of_order(void **state)
{
    sqlite3 *db = *state;
    int64_t id = agentd_feed_add(db, AGENT_OWNER, "ads", "https://lists.test/ads.txt", "list",
                                 NULL, NULL, "ads", 0, err, sizeof err);
    assert_true(id > 0);
    const char *list = "zz.example.test\nmm.example.test\naa.example.test\nmm.example.test\n";
    assert_int_equal(agentd_feed_apply(db, id, list, strlen(list), NULL, 0, time(NULL), err,
                                       sizeof err), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries e JOIN feeds f ON"
                     " f.id=e.feed_id WHERE f.name='ads' AND e.category='ads'"), 3);
    assert_int_equal(scalar(db, "SELECT entries FROM feeds WHERE name='ads'"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_then_delta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_keep_last_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscription_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_url_snapshot_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse_snapshot_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_after_staging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staged_snapshot_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_out_of_order, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(big);
    return rc;
}
