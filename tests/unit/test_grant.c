/* Delegation: a delegate's signed change applies only inside a live grant; everything
 * else is refused and audited with the reason. */
#include "../../services/agent/agent.h"
#include "feed.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
static uint8_t pk_other[FEED_PUBKEY_BYTES], sk_other[FEED_SECKEY_BYTES];
static char err[AGENT_ERR];

static int64_t count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A database at path with delegate "msp" (key pk) granted malware for every group. */
static sqlite3 *open_granted(const char *path)
{
    sqlite3 *db = agent_db_open(path, err, sizeof err);
    assert_non_null(db);
    assert_int_equal(feed_keygen(pk, sk), 0);
    char b64[128];
    assert_int_equal(feed_key_encode(pk, sizeof pk, b64, sizeof b64), 0);
    assert_true(agent_delegate_add(db, AGENT_OWNER, "msp", b64, err, sizeof err) > 0);
    json_t *cats = json_pack("[s]", "malware"), *groups = json_pack("[s]", "*"),
           *acts = json_pack("[s,s]", "add_block", "change_schedule");
    assert_int_equal(agent_grant_add(db, AGENT_OWNER, "msp", cats, groups, acts, 0, err,
                                     sizeof err), 1);
    json_decref(cats);
    json_decref(groups);
    json_decref(acts);
    return db;
}

static int setup(void **state)
{
    sqlite3 *db = open_granted(":memory:");
    assert_int_equal(feed_keygen(pk_other, sk_other), 0);
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    agent_db_close(*state);
    return 0;
}

/* Signs body with key and submits it. */
static int submit(sqlite3 *db, const char *body, const uint8_t *key)
{
    char sig[128];
    assert_int_equal(feed_sig_sign_b64(body, strlen(body), key, sig, sizeof sig), 0);
    return agent_delegated_apply(db, body, strlen(body), sig, time(NULL), err, sizeof err);
}

static void body_for(char *out, size_t n, const char *changes)
{
    snprintf(out, n, "{\"delegate\":\"msp\",\"created\":%lld,\"changes\":[%s]}",
             (long long)time(NULL), changes);
}

static void test_inside_scope(void **state)
{
    sqlite3 *db = *state;
    char body[512];
    body_for(body, sizeof body, "{\"action\":\"add_block\",\"indicator\":\"evil.test\","
             "\"category\":\"malware\"}");
    assert_int_equal(submit(db, body, sk), 1);
    assert_int_equal(count(db, "SELECT count(*) FROM rules WHERE pattern='evil.test' AND"
                     " grant_id=1"), 1);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE who='msp' AND"
                     " what='rule.add' AND grant_id=1 AND result='ok'"), 1);
    /* The same signed body again is a replay: refused, nothing added. */
    assert_int_equal(submit(db, body, sk), -1);
    assert_non_null(strstr(err, "replay"));
    assert_int_equal(count(db, "SELECT count(*) FROM rules WHERE pattern='evil.test'"), 1);
}

static void test_outside_scope(void **state)
{
    sqlite3 *db = *state;
    char body[512];
    /* Second entry is "social": the whole change is refused, nothing applied. */
    body_for(body, sizeof body, "{\"action\":\"add_block\",\"indicator\":\"evil2.test\","
             "\"category\":\"malware\"},{\"action\":\"add_block\",\"indicator\":\"shop.test\","
             "\"category\":\"social\"}");
    assert_int_equal(submit(db, body, sk), -1);
    assert_non_null(strstr(err, "changes[1]"));
    assert_non_null(strstr(err, "outside every live grant"));
    assert_int_equal(count(db, "SELECT count(*) FROM rules WHERE author_id=(SELECT id FROM"
                     " principals WHERE name='msp')"), 0);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE who='msp' AND"
                     " result='refused' AND reason LIKE '%social%'"), 1);
    /* add_allow is not among the grant's actions. */
    body_for(body, sizeof body, "{\"action\":\"add_allow\",\"indicator\":\"ok.test\","
             "\"category\":\"malware\"}");
    assert_int_equal(submit(db, body, sk), -1);
}

static void test_bad_signature_and_wrong_key(void **state)
{
    sqlite3 *db = *state;
    char body[512];
    body_for(body, sizeof body, "{\"action\":\"add_block\",\"indicator\":\"evil.test\","
             "\"category\":\"malware\"}");
    assert_int_equal(submit(db, body, sk_other), -1);
    assert_non_null(strstr(err, "signature"));
    assert_int_equal(agent_delegated_apply(db, body, strlen(body), "bm90IGEgc2ln", time(NULL),
                                           err, sizeof err), -1);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE result='refused' AND"
                     " reason LIKE 'signature%'"), 2);
    /* Unknown fields are refused even when signed. */
    snprintf(body, sizeof body, "{\"delegate\":\"msp\",\"created\":%lld,\"changes\":[],"
             "\"x\":1}", (long long)time(NULL));
    assert_int_equal(submit(db, body, sk), -1);
    assert_non_null(strstr(err, "body.x"));
    /* Stale signed change (replay). */
    snprintf(body, sizeof body, "{\"delegate\":\"msp\",\"created\":1000,\"changes\":["
             "{\"action\":\"add_block\",\"indicator\":\"a.test\",\"category\":\"malware\"}]}");
    assert_int_equal(submit(db, body, sk), -1);
    assert_non_null(strstr(err, "created"));
}

static void test_group_scope(void **state)
{
    sqlite3 *db = *state;
    json_t *cats = json_pack("[s]", "social"), *groups = json_pack("[s]", "guests"),
           *acts = json_pack("[s]", "add_block");
    int64_t g = agent_grant_add(db, AGENT_OWNER, "msp", cats, groups, acts, 0, err, sizeof err);
    json_decref(cats);
    json_decref(groups);
    json_decref(acts);
    assert_true(g > 1);
    assert_int_equal(agent_grant_covering(db, 2, "add_block", "social", "guests", time(NULL)), g);
    assert_int_equal(agent_grant_covering(db, 2, "add_block", "social", "staff", time(NULL)), 0);
    assert_int_equal(agent_grant_covering(db, 2, "add_block", "social", NULL, time(NULL)), 0);
    assert_int_equal(agent_grant_covering(db, 2, "add_block", "malware", "staff", time(NULL)), 1);
}

static void test_expired_and_revoked(void **state)
{
    sqlite3 *db = *state;
    int64_t now = time(NULL);
    json_t *cats = json_pack("[s]", "phishing"), *groups = json_pack("[s]", "*"),
           *acts = json_pack("[s]", "add_block");
    int64_t g = agent_grant_add(db, AGENT_OWNER, "msp", cats, groups, acts, now + 60, err,
                                sizeof err);
    assert_true(g > 0);
    assert_int_equal(agent_grant_covering(db, 2, "add_block", "phishing", NULL, now), g);
    assert_int_equal(agent_grant_covering(db, 2, "add_block", "phishing", NULL, now + 61), 0);
    /* Expiry in the past is refused at creation. */
    assert_int_equal(agent_grant_add(db, AGENT_OWNER, "msp", cats, groups, acts, now - 1, err,
                                     sizeof err), -1);
    json_decref(cats);
    json_decref(groups);
    json_decref(acts);
    /* Revoke grant 1: its rule stops being live, new changes are refused. */
    char body[512];
    body_for(body, sizeof body, "{\"action\":\"add_block\",\"indicator\":\"evil.test\","
             "\"category\":\"malware\"}");
    assert_int_equal(submit(db, body, sk), 1);
    assert_int_equal(agent_grant_revoke(db, AGENT_OWNER, 1, err, sizeof err), 0);
    assert_int_equal(agent_grant_revoke(db, AGENT_OWNER, 1, err, sizeof err), -1);
    assert_int_equal(agent_grant_covering(db, 2, "add_block", "malware", NULL, now), 0);
    assert_int_equal(submit(db, body, sk), -1);
    json_t *ex = agent_explain(db, "evil.test", NULL, now, err, sizeof err);
    assert_non_null(ex);
    assert_string_equal(json_string_value(json_object_get(ex, "decision")), "none");
    json_decref(ex);
    assert_int_equal(count(db, "SELECT count(*) FROM audit WHERE what='grant.revoke'"), 1);
}

static void test_delegate_validation(void **state)
{
    sqlite3 *db = *state;
    assert_int_equal(agent_delegate_add(db, AGENT_OWNER, "Bad Name", "x", err, sizeof err), -1);
    assert_non_null(strstr(err, "name"));
    assert_int_equal(agent_delegate_add(db, AGENT_OWNER, "x", "AAAA", err, sizeof err), -1);
    assert_non_null(strstr(err, "pubkey"));
    json_t *cats = json_pack("[s]", "nonsense"), *groups = json_pack("[s]", "*"),
           *acts = json_pack("[s]", "add_block");
    assert_int_equal(agent_grant_add(db, AGENT_OWNER, "msp", cats, groups, acts, 0, err,
                                     sizeof err), -1);
    assert_non_null(strstr(err, "categories[0]"));
    json_decref(cats);
    json_decref(groups);
    json_decref(acts);
}

/* A database that cannot take the change now (another writer holds it) refuses nothing:
 * AGENT_DELEGATED_RETRY, nothing stored or audited as refused, and the same signed change
 * applies once the database is free (it is not a replay: nothing was recorded). */
static void test_busy_database_is_retried(void **state)
{
    (void)state;
    char path[] = "/tmp/test_grant_busy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    sqlite3 *db = open_granted(path);
    sqlite3_busy_timeout(db, 50);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    char body[512], sig[128];
    body_for(body, sizeof body, "{\"action\":\"add_block\",\"indicator\":\"busy.test\","
             "\"category\":\"malware\"}");
    assert_int_equal(feed_sig_sign_b64(body, strlen(body), sk, sig, sizeof sig), 0);
    assert_int_equal(agent_delegated_apply(db, body, strlen(body), sig, time(NULL), err,
                                           sizeof err), AGENT_DELEGATED_RETRY);
    assert_int_equal(sqlite3_get_autocommit(db), 1);   /* nothing left open */
    assert_non_null(strstr(err, "database is locked"));
    assert_non_null(strstr(err, "tries again"));
    /* a change outside the grant is still refused, busy database or not */
    char out[512], osig[128];
    body_for(out, sizeof out, "{\"action\":\"add_block\",\"indicator\":\"x.test\","
             "\"category\":\"social\"}");
    assert_int_equal(feed_sig_sign_b64(out, strlen(out), sk, osig, sizeof osig), 0);
    assert_int_equal(agent_delegated_apply(db, out, strlen(out), osig, time(NULL), err,
                                           sizeof err), -1);
    assert_non_null(strstr(err, "outside every live grant"));
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(count(db, "SELECT count(*) FROM rules WHERE pattern='busy.test'"), 0);
    assert_int_equal(agent_delegated_apply(db, body, strlen(body), sig, time(NULL), err,
                                           sizeof err), 1);
    assert_int_equal(count(db, "SELECT count(*) FROM rules WHERE pattern='busy.test'"), 1);
    sqlite3 *third;   /* committed: another connection sees it */
    assert_int_equal(sqlite3_open(path, &third), SQLITE_OK);
    assert_int_equal(count(third, "SELECT count(*) FROM rules WHERE pattern='busy.test'"), 1);
    sqlite3_close(third);
    agent_db_close(db);
    char side[64];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inside_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_signature_and_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_and_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delegate_validation, setup, teardown),
        cmocka_unit_test(test_busy_database_is_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
