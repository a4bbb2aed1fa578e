/* Agent database, schedules, devices and risk. */
#include "../../services/agent/agent.h"
#include "../../services/agent/agentd.h"
#include "../../services/agent/backup.h"
#include "feed.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static char err[AGENT_ERR];

static void test_migrations_reopen(void **state)
{
    (void)state;
    char path[] = "/tmp/test_agent_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    umask(022);
    sqlite3 *db = agent_db_open(path, err, sizeof err);
    assert_non_null(db);
    /* accounts and keys live here: owner-only, whatever the umask */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    int v = agent_db_version(db);
    assert_true(v >= 1);
    assert_true(agent_group_id(db, "staff") > 0);
    assert_true(agent_group_id(db, "guests") > 0);
    assert_true(agent_group_id(db, "iot") > 0);
    assert_true(agent_rule_add(db, AGENT_OWNER, 0, "x.test", "block", NULL, NULL, 0, NULL,
                               err, sizeof err) > 0);
    agent_db_close(db);
    /* Reopen: no migration runs twice, data kept, defaults not duplicated. */
    db = agent_db_open(path, err, sizeof err);
    assert_non_null(db);
    assert_int_equal(agent_db_version(db), v);
    json_t *rows = agent_query_json(db, "SELECT count(*) AS n FROM groups", NULL, 0, err,
                                    sizeof err);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "n")), 3);
    json_decref(rows);
    rows = agent_query_json(db, "SELECT pattern FROM rules", NULL, 0, err, sizeof err);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    /* A database from a newer agent is refused, not downgraded. */
    assert_int_equal(agent_exec(db, "UPDATE schema_version SET version=999", err, sizeof err), 0);
    agent_db_close(db);
    assert_null(agent_db_open(path, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
}

static int64_t local_time(int year, int mon, int mday, int hour, int min)
{
    struct tm tm = { .tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = mday,
                     .tm_hour = hour, .tm_min = min, .tm_isdst = -1 };
    return (int64_t)mktime(&tm);
}

static void test_days_parse(void **state)
{
    (void)state;
    assert_int_equal(agent_days_parse("mon-fri"), 0x1f);
    assert_int_equal(agent_days_parse("weekdays"), 0x1f);
    assert_int_equal(agent_days_parse("sat,sun"), 0x60);
    assert_int_equal(agent_days_parse("fri-mon"), 0x10 | 0x20 | 0x40 | 0x01);
    assert_int_equal(agent_days_parse("daily"), 0x7f);
    assert_int_equal(agent_days_parse("funday"), -1);
    assert_int_equal(agent_days_parse(""), -1);
}

static void test_schedule_window(void **state)
{
    (void)state;
    /* 2026-11-23 is a Monday. */
    int64_t mon_10 = local_time(2026, 11, 23, 10, 0);
    int64_t mon_18 = local_time(2026, 11, 23, 18, 0);
    int64_t sat_10 = local_time(2026, 11, 28, 10, 0);
    assert_true(agent_schedule_active(0x1f, 9 * 60, 18 * 60, mon_10));
    assert_false(agent_schedule_active(0x1f, 9 * 60, 18 * 60, mon_18));   /* end exclusive */
    assert_false(agent_schedule_active(0x1f, 9 * 60, 18 * 60, sat_10));
    /* Across midnight: Friday 22:00-06:00 covers Saturday 03:00, not Monday 03:00. */
    int64_t sat_03 = local_time(2026, 11, 28, 3, 0);
    int64_t mon_03 = local_time(2026, 11, 23, 3, 0);
    assert_true(agent_schedule_active(0x10, 22 * 60, 6 * 60, sat_03));
    assert_false(agent_schedule_active(0x10, 22 * 60, 6 * 60, mon_03));
}

static void test_schedule_categories(void **state)
{
    (void)state;
    sqlite3 *db = agent_db_open(":memory:", err, sizeof err);
    assert_non_null(db);
    int64_t staff = agent_group_id(db, "staff");
    int64_t mon_10 = local_time(2026, 11, 23, 10, 0);
    int64_t sat_10 = local_time(2026, 11, 28, 10, 0);
    uint32_t base = agent_group_categories(db, staff, mon_10);
    assert_true(base & (1u << 2)); /* malware on by default */
    assert_false(base & (1u << 7)); /* social off */
    assert_true(agent_schedule_add(db, AGENT_OWNER, 0, "staff", "social", 0x1f, 540, 1080,
                                   err, sizeof err) > 0);
    assert_true(agent_group_categories(db, staff, mon_10) & (1u << 7));
    assert_false(agent_group_categories(db, staff, sat_10) & (1u << 7));
    assert_int_equal(agent_schedule_add(db, AGENT_OWNER, 0, "staff", "social", 0x1f, 540, 540,
                                        err, sizeof err), -1);
    assert_int_equal(agent_schedule_add(db, AGENT_OWNER, 0, "nobody", "social", 0x1f, 1, 5,
                                        err, sizeof err), -1);
    assert_non_null(strstr(err, "group"));
    agent_db_close(db);
}

static void test_risk(void **state)
{
    (void)state;
    assert_int_equal(agent_likelihood(0, 0, 0), 1);
    assert_int_equal(agent_likelihood(0, 0, 500), 2);
    assert_int_equal(agent_likelihood(0, 1, 0), 3);
    assert_int_equal(agent_likelihood(1, 0, 0), 4);
    assert_int_equal(agent_likelihood(25, 0, 0), 5);
    sqlite3 *db = agent_db_open(":memory:", err, sizeof err);
    assert_non_null(db);
    int64_t now = time(NULL);
    assert_int_equal(agent_device_seen(db, "00-00-0C-12-34-56", "192.0.2.10", "pc", now, err,
                                       sizeof err), 0);
    assert_int_equal(agent_device_seen(db, "02:00:00:00:00:02", "192.0.2.20", "nas", now, err,
                                       sizeof err), 0);
    assert_int_equal(agent_device_seen(db, "zz:00", NULL, NULL, now, err, sizeof err), -1);
    assert_non_null(strstr(err, "mac"));
    /* The NAS matters most (5); the PC contacted malware once (likelihood 4, importance 3). */
    assert_int_equal(agent_device_update(db, AGENT_OWNER, "02:00:00:00:00:02", "file server",
                                         5, NULL, err, sizeof err), 0);
    assert_int_equal(agent_device_update(db, AGENT_OWNER, "02:00:00:00:00:02", NULL, 9, NULL,
                                         err, sizeof err), -1);
    assert_int_equal(agent_device_event(db, "192.0.2.10", "malware", err, sizeof err), 0);
    assert_int_equal(agent_device_event(db, "192.0.2.99", "malware", err, sizeof err), -1);
    json_t *d = agent_devices_json(db, err, sizeof err);
    assert_int_equal(json_array_size(d), 2);
    json_t *first = json_array_get(d, 0), *second = json_array_get(d, 1);
    assert_string_equal(json_string_value(json_object_get(first, "mac")), "00:00:0c:12:34:56");
    assert_int_equal(json_integer_value(json_object_get(first, "risk")), 12);
    assert_int_equal(json_integer_value(json_object_get(second, "risk")), 5);
    assert_string_equal(json_string_value(json_object_get(second, "label")), "file server");
    if (access("/usr/share/ieee-data/oui.txt", R_OK) == 0)
        assert_string_equal(json_string_value(json_object_get(first, "vendor")),
                            "Cisco Systems, Inc");
    json_decref(d);
    agent_db_close(db);
}

static void test_group_validation(void **state)
{
    (void)state;
    sqlite3 *db = agent_db_open(":memory:", err, sizeof err);
    json_t *bad = json_pack("[s]", "sports");
    assert_int_equal(agent_group_set(db, AGENT_OWNER, "staff", bad, NULL, -1, NULL, 0, err,
                                     sizeof err), -1);
    assert_non_null(strstr(err, "categories[0]"));
    json_decref(bad);
    json_t *nets = json_pack("[s,s]", "192.0.2.0/24", "192.0.2.0/40");
    assert_int_equal(agent_group_set(db, AGENT_OWNER, "staff", NULL, NULL, -1, nets, 0, err,
                                     sizeof err), -1);
    assert_non_null(strstr(err, "networks[1]"));
    json_decref(nets);
    assert_int_equal(agent_group_set(db, AGENT_OWNER, "staff", NULL, "loud", -1, NULL, 0, err,
                                     sizeof err), -1);
    assert_int_equal(agent_group_set(db, AGENT_OWNER, "lab", NULL, "null", 1, NULL, 1, err,
                                     sizeof err), 0);
    assert_true(agent_group_id(db, "lab") > 0);
    agent_db_close(db);
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    json_t *r = agent_query_json(db, sql, NULL, 0, err, sizeof err);
    assert_non_null(r);
    json_t *row = json_array_get(r, 0);
    const char *k;
    json_t *v;
    int64_t out = -1;
    json_object_foreach(row, k, v)
        out = json_integer_value(v);
    json_decref(r);
    return out;
}

static void test_backup_roundtrip(void **state)
{
    (void)state;
    sqlite3 *a = agent_db_open(":memory:", err, sizeof err);
    sqlite3 *b = agent_db_open(":memory:", err, sizeof err);
    uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
    char b64[128];
    assert_int_equal(feed_keygen(pk, sk), 0);
    feed_key_encode(pk, sizeof pk, b64, sizeof b64);
    assert_true(agent_delegate_add(a, AGENT_OWNER, "msp", b64, err, sizeof err) > 0);
    json_t *cats = json_pack("[s]", "malware"), *groups = json_pack("[s]", "*"),
           *acts = json_pack("[s]", "add_block");
    int64_t g = agent_grant_add(a, AGENT_OWNER, "msp", cats, groups, acts, 0, err, sizeof err);
    json_decref(cats);
    json_decref(groups);
    json_decref(acts);
    assert_true(agent_rule_add(a, "msp", g, "bad.test", "block", "malware", NULL, 0, NULL, err,
                               sizeof err) > 0);
    assert_true(agent_rule_add(a, AGENT_OWNER, 0, "shop.test", "block", NULL, "guests", 0,
                               "no shopping", err, sizeof err) > 0);
    assert_true(agent_schedule_add(a, AGENT_OWNER, 0, "staff", "social", 0x1f, 540, 1080, err,
                                   sizeof err) > 0);
    unsigned st = 0;
    json_t *bk = backup_export(a, &st);
    assert_non_null(bk);
    char *text = json_dumps(bk, JSON_COMPACT);
    json_decref(bk);
    json_t *ans = backup_restore(b, text, strlen(text), &st);
    assert_int_equal(st, 200);
    json_decref(ans);
    assert_int_equal(scalar(b, "SELECT count(*) FROM rules"), 2);
    assert_int_equal(scalar(b, "SELECT count(*) FROM rules WHERE grant_id IS NOT NULL"), 1);
    assert_int_equal(scalar(b, "SELECT count(*) FROM schedules"), 1);
    assert_int_equal(scalar(b, "SELECT count(*) FROM grants"), 1);
    json_t *ex = agent_explain(b, "bad.test", NULL, time(NULL), err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(ex, "decision")), "block");
    json_decref(ex);
    /* A backup with one bad item changes nothing. */
    char *bad = strdup(text);
    char *p = strstr(bad, "\"no shopping\"");
    assert_non_null(p);
    char *q = strstr(bad, "shop.test");
    memcpy(q, "sh p.test", 9);
    ans = backup_restore(b, bad, strlen(bad), &st);
    assert_int_equal(st, 400);
    assert_non_null(strstr(json_string_value(json_object_get(ans, "field")), "rules["));
    json_decref(ans);
    assert_int_equal(scalar(b, "SELECT count(*) FROM rules"), 2);
    ans = backup_restore(b, "{\"format\":\"other\"}", 20, &st);
    assert_int_equal(st, 400);
    json_decref(ans);
    free(bad);
    free(text);
    /* Restoring over a box that holds the same subscription keeps its entries. */
    assert_int_equal(agent_exec(a, "INSERT INTO feeds(name, url, kind, feed_id, pubkey,"
                                " max_bytes, last_seq) VALUES ('community', 'file:///f', 'signed',"
                                " 'community', 'k', 1000, 7); INSERT INTO feed_entries(feed_id,"
                                " indicator, kind, category, action) VALUES (1, 'evil.test',"
                                " 'domain', 'malware', 'block')", err, sizeof err), 0);
    bk = backup_export(a, &st);
    text = json_dumps(bk, JSON_COMPACT);
    json_decref(bk);
    json_decref(backup_restore(a, text, strlen(text), &st));
    assert_int_equal(st, 200);
    free(text);
    assert_int_equal(scalar(a, "SELECT count(*) FROM feed_entries"), 1);
    assert_int_equal(scalar(a, "SELECT last_seq FROM feeds"), 7);
    agent_db_close(a);
    agent_db_close(b);
}

static void test_events(void **state)
{
    (void)state;
    sqlite3 *db = agent_db_open(":memory:", err, sizeof err);
    const char *n = "{\"type\":\"neighbour\",\"mac\":\"02:00:00:00:00:0a\",\"addr\":"
                    "\"192.0.2.10\",\"ifname\":\"lan\",\"hostname\":\"pc\"}";
    const char *b = "{\"type\":\"blocked\",\"client\":\"192.0.2.10\",\"name\":"
                    "\"malware.test\",\"category\":\"malware\"}";
    const char *a = "{\"type\":\"blocked\",\"client\":\"192.0.2.10\",\"name\":"
                    "\"ads.test\",\"category\":\"ads\"}";
    const char *d = "{\"type\":\"drop\",\"reason\":\"policy\",\"src\":\"192.0.2.10\","
                    "\"match\":\"\"}";
    assert_int_equal(agentd_event_apply(db, NULL, n, strlen(n), 100, err, sizeof err), 0);
    assert_int_equal(agentd_event_apply(db, NULL, b, strlen(b), 101, err, sizeof err), 0);
    assert_int_equal(agentd_event_apply(db, NULL, a, strlen(a), 102, err, sizeof err), 0);
    assert_int_equal(agentd_event_apply(db, NULL, d, strlen(d), 103, err, sizeof err), 0);
    assert_int_equal(agentd_event_apply(db, NULL, "nope", 4, 104, err, sizeof err), -1);
    assert_int_equal(scalar(db, "SELECT malware_hits FROM devices"), 1);
    assert_int_equal(scalar(db, "SELECT block_hits FROM devices"), 1);
    assert_int_equal(scalar(db, "SELECT scan_hits FROM devices"), 1);
    json_t *devs = agent_devices_json(db, err, sizeof err);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(devs, 0), "risk")), 12);
    json_decref(devs);
    agent_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations_reopen),
        cmocka_unit_test(test_days_parse),
        cmocka_unit_test(test_schedule_window),
        cmocka_unit_test(test_schedule_categories),
        cmocka_unit_test(test_risk),
        cmocka_unit_test(test_group_validation),
        cmocka_unit_test(test_backup_roundtrip),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
