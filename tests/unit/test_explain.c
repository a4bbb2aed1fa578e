/* explain: decision and chain over feeds, owner rules, delegate rules, groups. */
#include "../../services/agent/agent.h"
#include "../../services/agent/agentd.h"
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static char err[AGENT_ERR];

static void exec(sqlite3 *db, const char *sql)
{
    assert_int_equal(agent_exec(db, sql, err, sizeof err), 0);
}

static int setup(void **state)
{
    sqlite3 *db = agent_db_open(":memory:", err, sizeof err);
    assert_non_null(db);
    exec(db, "INSERT INTO feeds(name, url, kind, feed_id, pubkey, max_bytes) VALUES"
         " ('community', 'file:///x', 'signed', 'community', 'k', 1000);"
         "INSERT INTO feeds(name, url, kind, category, max_bytes) VALUES"
         " ('adlist', 'file:///y', 'list', 'ads', 1000);"
         "INSERT INTO feed_entries(feed_id, indicator, kind, category, action) VALUES"
         " (1, 'malware.test', 'domain', 'malware', 'block'),"
         " (1, 'c2.example.test', 'domain', 'c2', 'block'),"
         " (1, '198.18.10.66', 'ipv4', 'c2', 'block'),"
         " (1, '198.18.20.0/24', 'cidr', 'malware', 'block'),"
         " (2, 'ads.test', 'domain', NULL, 'block');"
         "INSERT INTO group_networks SELECT id, '203.0.113.0/24' FROM groups WHERE name='guests';");
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    agent_db_close(*state);
    return 0;
}

static json_t *ex(sqlite3 *db, const char *q, const char *client)
{
    json_t *r = agent_explain(db, q, client, time(NULL), err, sizeof err);
    assert_non_null(r);
    return r;
}

static const char *decision(json_t *r)
{
    return json_string_value(json_object_get(r, "decision"));
}

static json_t *step(json_t *r, size_t i)
{
    return json_array_get(json_object_get(r, "chain"), i);
}

static void test_feed_subtree(void **state)
{
    sqlite3 *db = *state;
    json_t *r = ex(db, "a.b.Malware.test.", "192.0.2.10");
    assert_string_equal(decision(r), "block");
    assert_string_equal(json_string_value(json_object_get(r, "group")), "staff");
    json_t *s = step(r, 0);
    assert_string_equal(json_string_value(json_object_get(s, "matched")), "malware.test");
    assert_string_equal(json_string_value(json_object_get(s, "name")), "feed community");
    assert_string_equal(json_string_value(json_object_get(s, "category")), "malware");
    json_decref(r);
    r = ex(db, "good.test", NULL);
    assert_string_equal(decision(r), "none");
    assert_int_equal(json_array_size(json_object_get(r, "chain")), 0);
    assert_string_equal(json_string_value(json_object_get(r, "summary")),
                        "not listed: resolved normally");
    json_decref(r);
}

static void test_category_not_enabled(void **state)
{
    sqlite3 *db = *state;
    /* ads is listed, but no default group enables ads: shown, not enforced. */
    json_t *r = ex(db, "x.ads.test", NULL);
    assert_string_equal(decision(r), "none");
    assert_false(json_is_true(json_object_get(step(r, 0), "enforced")));
    assert_string_equal(json_string_value(json_object_get(step(r, 0), "category")), "ads");
    assert_string_equal(json_string_value(json_object_get(r, "summary")),
                        "listed, but not in a category this group blocks now: resolved normally");
    json_decref(r);
    json_t *cats = json_pack("[s,s]", "ads", "malware");
    assert_int_equal(agent_group_set(db, AGENT_OWNER, "guests", cats, NULL, -1, NULL, 0, err,
                                     sizeof err), 0);
    json_decref(cats);
    r = ex(db, "x.ads.test", "203.0.113.10");
    assert_string_equal(json_string_value(json_object_get(r, "group")), "guests");
    assert_string_equal(decision(r), "block");
    json_decref(r);
}

static void test_owner_allow_wins(void **state)
{
    sqlite3 *db = *state;
    assert_true(agent_rule_add(db, AGENT_OWNER, 0, "www.malware.test", "allow", NULL, NULL, 0,
                               "needed for work", err, sizeof err) > 0);
    json_t *r = ex(db, "www.malware.test", NULL);
    assert_string_equal(decision(r), "allow");
    json_t *s = step(r, 0);
    assert_string_equal(json_string_value(json_object_get(s, "source")), "rule");
    assert_string_equal(json_string_value(json_object_get(s, "author")), "owner");
    json_decref(r);
    /* Only below www: the parent stays blocked. */
    r = ex(db, "malware.test", NULL);
    assert_string_equal(decision(r), "block");
    json_decref(r);
    /* Group-bound allow does not affect another group. */
    assert_true(agent_rule_add(db, AGENT_OWNER, 0, "c2.example.test", "allow", NULL, "iot", 0,
                               NULL, err, sizeof err) > 0);
    r = ex(db, "c2.example.test", NULL);
    assert_string_equal(decision(r), "block");
    json_decref(r);
}

static void test_owner_block_and_temporary(void **state)
{
    sqlite3 *db = *state;
    assert_true(agent_rule_add(db, AGENT_OWNER, 0, "shop.test", "block", NULL, NULL, 0, NULL,
                               err, sizeof err) > 0);
    json_t *r = ex(db, "shop.test", NULL);
    assert_string_equal(decision(r), "block");
    json_decref(r);
    /* A temporary unblock that has already expired is not in the chain. */
    assert_true(agent_rule_add(db, AGENT_OWNER, 0, "shop.test", "allow", NULL, NULL,
                               time(NULL) - 1, NULL, err, sizeof err) > 0);
    r = ex(db, "shop.test", NULL);
    assert_string_equal(decision(r), "block");
    assert_int_equal(json_array_size(json_object_get(r, "chain")), 1);
    json_decref(r);
    assert_true(agent_rule_add(db, AGENT_OWNER, 0, "shop.test", "allow", NULL, NULL,
                               time(NULL) + 600, NULL, err, sizeof err) > 0);
    r = ex(db, "shop.test", NULL);
    assert_string_equal(decision(r), "allow");
    json_decref(r);
}

static void test_ip(void **state)
{
    sqlite3 *db = *state;
    json_t *r = ex(db, "198.18.10.66", NULL);
    assert_string_equal(json_string_value(json_object_get(r, "type")), "ip");
    assert_string_equal(decision(r), "block");
    json_decref(r);
    r = ex(db, "198.18.20.7", NULL);
    assert_string_equal(decision(r), "block");
    assert_string_equal(json_string_value(json_object_get(step(r, 0), "matched")),
                        "198.18.20.0/24");
    json_decref(r);
    r = ex(db, "198.18.21.7", NULL);
    assert_string_equal(decision(r), "none");
    json_decref(r);
}

static void test_zone_networks(void **state)
{
    sqlite3 *db = *state;
    static struct ota_config cfg;
    const char *text = "zones = ( { name = \"iot\"; interface = \"eth3\"; addresses = "
                       "[ \"198.51.100.1/24\" ]; group = \"iot\"; } );";
    assert_int_equal(cfg_load_string(&cfg, text, "test.conf", err, sizeof err), 0);
    assert_int_equal(agentd_zones_sync(db, &cfg, err, sizeof err), 0);
    json_t *r = ex(db, "good.test", "198.51.100.10");
    assert_string_equal(json_string_value(json_object_get(r, "group")), "iot");
    json_decref(r);
    /* Longest prefix decides, as in policy.set: a narrower owner network wins. */
    json_t *nets = json_pack("[s]", "198.51.100.0/25");
    assert_int_equal(agent_group_set(db, AGENT_OWNER, "guests", NULL, NULL, -1, nets, 0, err,
                                     sizeof err), 0);
    json_decref(nets);
    r = ex(db, "good.test", "198.51.100.10");
    assert_string_equal(json_string_value(json_object_get(r, "group")), "guests");
    json_decref(r);
    /* Without a config the zone networks go. */
    assert_int_equal(agentd_zones_sync(db, NULL, err, sizeof err), 0);
    r = ex(db, "good.test", "198.51.100.200");
    assert_string_equal(json_string_value(json_object_get(r, "group")), "staff");
    json_decref(r);
}

static void test_compiled_agrees(void **state)
{
    sqlite3 *db = *state;
    char dir[] = "/tmp/test_explain_XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct agentd ad;
    memset(&ad, 0, sizeof ad);
    ad.db = db;
    ad.state_dir = dir;
    ad.job_pipe[0] = ad.job_pipe[1] = ad.events_fd = ad.hub_fd = -1;
    assert_int_equal(agentd_compile(&ad, time(NULL), err, sizeof err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/domains.set", dir);
    json_t *r = ex(db, "x.malware.test", NULL);
    json_t *c = agent_explain_compiled(path, r, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "verdict")), "block");
    assert_string_equal(json_string_value(json_object_get(c, "matched")), "malware.test");
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "lists"), 0)),
                        "community/malware");
    json_decref(c);
    json_decref(r);
    /* ads is compiled but not enabled for staff: the masked view says none, as dnsd does. */
    r = ex(db, "ads.test", NULL);
    c = agent_explain_compiled(path, r, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(c, "verdict")), "none");
    json_decref(c);
    json_decref(r);
    assert_null(agent_explain_compiled("/nonexistent/domains.set", r = ex(db, "a.test", NULL),
                                       err, sizeof err));
    json_decref(r);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_bad_query(void **state)
{
    sqlite3 *db = *state;
    assert_null(agent_explain(db, "bad name!", NULL, time(NULL), err, sizeof err));
    assert_non_null(strstr(err, "neither"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_feed_subtree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_category_not_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_allow_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_block_and_temporary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zone_networks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compiled_agrees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_query, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
