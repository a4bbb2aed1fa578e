/* Full replaces in key order (services/agent/feeds_stage.c): a snapshot or list whose
 * entries come out of order is stored exactly as one applied in document order would be
 * (every entry, the last of equal keys wins, entry counts right), and a refusal after
 * staging began keeps the last good entries and leaves nothing behind. */
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
#include <cmocka.h>

static uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
static char err[AGENT_ERR], sig[256];
static char *doc;
static size_t doclen, doccap;
static int64_t feed_row;
static uint64_t next_seq = 1;

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

static int64_t confidence_of(sqlite3 *db, const char *name)
{
    char q[300];
    snprintf(q, sizeof q, "SELECT confidence FROM feed_entries WHERE feed_id=%lld AND"
             " indicator='%s'", (long long)feed_row, name);
    return scalar(db, q);
}

static void doc_start(uint64_t count)
{
    struct feed_manifest m = { .seq = next_seq++, .type = FEED_SNAPSHOT, .count = count,
                               .created = time(NULL), .expires = time(NULL) + 3600 };
    snprintf(m.feed, sizeof m.feed, "community");
    feed_key_id(pk, m.signer);
    doccap = 64 + count * 300;
    doc = realloc(doc, doccap);
    assert_non_null(doc);
    doclen = (size_t)feed_format_manifest(&m, doc, doccap);
}

static void doc_add(const char *kind, const char *name, int confidence)
{
    struct feed_entry e = { .kind = !strcmp(kind, "ipv4") ? FEED_KIND_IPV4 : FEED_KIND_DOMAIN,
                            .category = DSET_CAT_MALWARE, .confidence = confidence,
                            .action = FEED_ACT_BLOCK };
    snprintf(e.indicator, sizeof e.indicator, "%s", name);
    int n = feed_format_entry(&e, doc + doclen, doccap - doclen);
    assert_true(n > 0);
    doclen += (size_t)n;
}

/* A line that parses as JSON but is not an entry: the applier refuses it (bad-entry). */
static void doc_add_bad(void)
{
    doclen += (size_t)snprintf(doc + doclen, doccap - doclen, "{\"indicator\":\"x.test\"}\n");
}

static int apply(sqlite3 *db)
{
    assert_true(feed_sign(doc, doclen, sk, sig, sizeof sig) > 0);
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
    next_seq = 1;
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    agent_db_close(*state);
    free(doc);
    doc = NULL;
    return 0;
}

/* In order first (direct inserts), then out of order (staged): equal keys on both sides
 * of the switch and inside the stage, and an address between names (kind orders first). */
static void test_out_of_order_snapshot(void **state)
{
    sqlite3 *db = *state;
    doc_start(8);
    doc_add("domain", "a.example.test", 10);
    doc_add("domain", "m.example.test", 11);
    doc_add("domain", "c.example.test", 12);   /* out of order: staging begins */
    doc_add("domain", "a.example.test", 13);   /* replaces a direct one */
    doc_add("ipv4", "198.18.10.66", 14);
    doc_add("domain", "z.example.test", 15);
    doc_add("domain", "c.example.test", 16);   /* replaces a staged one */
    doc_add("domain", "b.example.test", 17);
    assert_int_equal(apply(db), 1);
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
    char name[64];
    doc_start(N);
    for (int i = N - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "host%05d.example.test", i);
        doc_add("domain", name, 50);
    }
    assert_int_equal(apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), N);
    assert_int_equal(scalar(db, "SELECT count(DISTINCT indicator) FROM feed_entries WHERE"
                     " indicator LIKE 'host%'"), N);
    doc_start(2);
    doc_add("domain", "y.example.test", 60);
    doc_add("domain", "x.example.test", 61);
    assert_int_equal(apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(confidence_of(db, "x.example.test"), 61);
}

/* A bad entry after staging began: refused, the last good entries stay, and the next
 * good snapshot stages again from an empty stage. */
static void test_refusal_after_staging(void **state)
{
    sqlite3 *db = *state;
    doc_start(2);
    doc_add("domain", "good1.example.test", 70);
    doc_add("domain", "good2.example.test", 71);
    assert_int_equal(apply(db), 1);
    doc_start(4);
    doc_add("domain", "n.example.test", 1);
    doc_add("domain", "b.example.test", 2);   /* staged */
    doc_add("domain", "a.example.test", 3);   /* staged */
    doc_add_bad();
    assert_int_equal(apply(db), -1);
    assert_non_null(strstr(err, "bad-entry"));
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(confidence_of(db, "good1.example.test"), 70);
    doc_start(2);
    doc_add("domain", "q.example.test", 80);
    doc_add("domain", "p.example.test", 81);
    assert_int_equal(apply(db), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM feed_entries"), 2);
    assert_int_equal(confidence_of(db, "p.example.test"), 81);
    assert_int_equal(confidence_of(db, "n.example.test"), -1);
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
        cmocka_unit_test_setup_teardown(test_out_of_order_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse_snapshot_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_after_staging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_out_of_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
