/* Incidents: dedupe into one per device+kind window, severity, lifecycle rules, timeline,
 * owner self-report, quarantine list, report export, notification queue. */
#include "../../services/agent/agent.h"
#include "../../services/agent/agentd.h"
#include "../../services/agent/incidents.h"
#include "../../services/agent/notify.h"
#include "../../services/agent/help.h"
#include "iplist.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
#include <cmocka.h>

static char err[AGENT_ERR];
static char path[64];

static int setup(void **state)
{
    snprintf(path, sizeof path, "/tmp/test_incident_XXXXXX");
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    sqlite3 *db = agent_db_open(path, err, sizeof err);
    assert_non_null(db);
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    agent_db_close(*state);
    char p[80];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    return 0;
}

static struct detect_finding mk(const char *kind, const char *dev, const char *ind, int conf)
{
    struct detect_finding f;
    memset(&f, 0, sizeof f);
    snprintf(f.kind, sizeof f.kind, "%s", kind);
    snprintf(f.device, sizeof f.device, "%s", dev);
    snprintf(f.indicator, sizeof f.indicator, "%s", ind);
    snprintf(f.detail, sizeof f.detail, "test");
    f.confidence = conf;
    return f;
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    json_t *r = agent_query_json(db, sql, NULL, 0, err, sizeof err);
    assert_non_null(r);
    json_t *row = json_array_get(r, 0);
    const char *k;
    json_t *v;
    int64_t out = -1;
    json_object_foreach(row, k, v) {
        out = json_integer_value(v);
        break;
    }
    json_decref(r);
    return out;
}

static void test_dedupe_and_severity(void **state)
{
    sqlite3 *db = *state;
    assert_int_equal(agent_device_seen(db, "02:00:00:00:00:10", "192.0.2.10", "pc", 100, err,
                                       sizeof err), 0);
    assert_int_equal(agent_device_update(db, AGENT_OWNER, "02:00:00:00:00:10", "accounts pc",
                                         5, NULL, err, sizeof err), 0);
    struct detect_finding f = mk(DK_MALWARE_DOMAIN, "192.0.2.10", "malware.test", 90);
    int64_t id1, id2, id3;
    assert_int_equal(incident_record(db, &f, 1000, &id1, err, sizeof err), 1);
    f = mk(DK_MALWARE_DOMAIN, "192.0.2.10", "evil.malware.test", 90);
    assert_int_equal(incident_record(db, &f, 1100, &id2, err, sizeof err), 0);
    assert_int_equal(id1, id2);
    /* The same indicator again counts, but is listed once. */
    assert_int_equal(incident_record(db, &f, 1200, &id2, err, sizeof err), 0);
    json_t *inc = incident_get(db, id1, err, sizeof err);
    assert_non_null(inc);
    assert_int_equal(json_integer_value(json_object_get(inc, "count")), 3);
    assert_int_equal(json_array_size(json_object_get(inc, "indicators")), 2);
    assert_int_equal(json_array_size(json_object_get(inc, "timeline")), 3);
    /* Kind weight 4 x importance 5 = 20: critical on the important PC. */
    assert_string_equal(json_string_value(json_object_get(inc, "severity")), "critical");
    assert_string_equal(json_string_value(json_object_get(inc, "label")), "accounts pc");
    json_decref(inc);
    /* Another kind on the same device, or the same kind elsewhere: separate incidents. */
    f = mk(DK_DNS_TUNNEL, "192.0.2.10", "tunnel.test", 80);
    assert_int_equal(incident_record(db, &f, 1300, &id3, err, sizeof err), 1);
    assert_true(id3 != id1);
    f = mk(DK_MALWARE_DOMAIN, "192.0.2.99", "malware.test", 90);
    assert_int_equal(incident_record(db, &f, 1300, &id3, err, sizeof err), 1);
    inc = incident_get(db, id3, err, sizeof err);   /* unknown device: importance 3 -> high */
    assert_string_equal(json_string_value(json_object_get(inc, "severity")), "high");
    json_decref(inc);
    /* After the window a new incident opens. */
    f = mk(DK_MALWARE_DOMAIN, "192.0.2.10", "malware.test", 90);
    assert_int_equal(incident_record(db, &f, 1200 + INCIDENT_WINDOW + 1, &id2, err, sizeof err), 1);
    assert_true(id2 != id1);
    int score;
    assert_string_equal(incident_severity(DK_NEW_DEVICE, 1, &score), "low");
    assert_int_equal(score, 1);
    assert_string_equal(incident_severity(DK_C2_IP, 2, &score), "high");
}

static void test_lifecycle(void **state)
{
    sqlite3 *db = *state;
    struct detect_finding f = mk(DK_C2_IP, "192.0.2.10", "198.18.10.66", 95);
    int64_t id;
    assert_int_equal(incident_record(db, &f, 1000, &id, err, sizeof err), 1);
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "acknowledged", NULL, 1001, err,
                                         sizeof err), 0);
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "acknowledged", NULL, 1001, err,
                                         sizeof err), 0);   /* twice: fine, one row */
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "open", NULL, 1002, err,
                                         sizeof err), -1);
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "bogus", NULL, 1002, err,
                                         sizeof err), -1);
    assert_non_null(strstr(err, "bogus"));
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "help_requested", "call", 1003,
                                         err, sizeof err), 0);
    assert_int_equal(incident_transition(db, id, "helper", "helper_connected", NULL, 1004, err,
                                         sizeof err), 0);
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "acknowledged", NULL, 1005, err,
                                         sizeof err), -1);   /* backwards */
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "resolved", "cleaned", 1006, err,
                                         sizeof err), 0);
    assert_int_equal(incident_transition(db, id, AGENT_OWNER, "resolved", NULL, 1007, err,
                                         sizeof err), -1);   /* resolved is final */
    assert_int_equal(incident_transition(db, 9999, AGENT_OWNER, "resolved", NULL, 1007, err,
                                         sizeof err), -1);
    assert_non_null(strstr(err, "no incident 9999"));
    json_t *inc = incident_get(db, id, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(inc, "state")), "resolved");
    assert_int_equal(json_integer_value(json_object_get(inc, "resolved")), 1006);
    /* detected + 4 transitions */
    assert_int_equal(json_array_size(json_object_get(inc, "timeline")), 5);
    json_decref(inc);
    assert_int_equal(scalar(db, "SELECT count(*) FROM audit WHERE what='incident.state'"), 4);
    /* A resolved incident does not absorb new findings. */
    int64_t id2;
    assert_int_equal(incident_record(db, &f, 1010, &id2, err, sizeof err), 1);
    assert_true(id2 != id);
}

static void test_self_report_and_report(void **state)
{
    sqlite3 *db = *state;
    assert_int_equal(incident_self_report(db, "hanako", NULL, "", 1000, err, sizeof err), -1);
    int64_t id = incident_self_report(db, "hanako", NULL, "this email <looked> wrong | odd",
                                      1000, err, sizeof err);
    assert_true(id > 0);
    int64_t id2 = incident_self_report(db, "taro", NULL, "a second one", 1001, err, sizeof err);
    assert_true(id2 > id);
    assert_non_null(strstr(incident_thanks("en"), "Thank you"));
    assert_non_null(strstr(incident_thanks("ja"), "ありがとう"));
    char *md = incident_report(db, id, "md", "en", 2000, err, sizeof err);
    assert_non_null(md);
    assert_non_null(strstr(md, "# Incident report #"));
    assert_non_null(strstr(md, "blameless"));
    assert_non_null(strstr(md, "hanako"));
    assert_non_null(strstr(md, "\\| odd"));   /* table cells stay whole */
    assert_non_null(strstr(md, "What to learn"));
    free(md);
    char *html = incident_report(db, id, "html", "ja", 2000, err, sizeof err);
    assert_non_null(html);
    assert_non_null(strstr(html, "<html lang=\"ja\">"));
    assert_non_null(strstr(html, "&lt;looked&gt;"));
    assert_null(strstr(html, "<looked>"));
    assert_non_null(strstr(html, "経過"));
    free(html);
    assert_null(incident_report(db, id, "pdf", "en", 0, err, sizeof err));
    assert_non_null(strstr(err, "pdf"));
    assert_null(incident_report(db, 4242, "md", "en", 0, err, sizeof err));
}

static void test_quarantine(void **state)
{
    sqlite3 *db = *state;
    assert_int_equal(agent_device_seen(db, "02:00:00:00:00:20", "198.51.100.10", "cam", 100,
                                       err, sizeof err), 0);
    struct detect_finding f = mk(DK_LATERAL_SCAN, "198.51.100.10", "192.0.2.10", 85);
    int64_t id;
    assert_int_equal(incident_record(db, &f, 1000, &id, err, sizeof err), 1);
    struct iplist l;
    iplist_init(&l);
    assert_int_equal(incident_quarantine_list(db, &l, err, sizeof err), 0);
    iplist_free(&l);
    assert_int_equal(incident_contain(db, id, AGENT_OWNER, 1, 1001, err, sizeof err), 0);
    iplist_init(&l);
    assert_int_equal(incident_quarantine_list(db, &l, err, sizeof err), 1);
    iplist_free(&l);
    json_t *inc = incident_get(db, id, err, sizeof err);
    assert_true(json_is_true(json_object_get(inc, "quarantined")));
    json_decref(inc);
    char *md = incident_report(db, id, "md", "en", 2000, err, sizeof err);
    assert_non_null(strstr(md, "was quarantined"));
    free(md);
    assert_int_equal(incident_contain(db, id, AGENT_OWNER, 0, 1002, err, sizeof err), 0);
    iplist_init(&l);
    assert_int_equal(incident_quarantine_list(db, &l, err, sizeof err), 0);
    iplist_free(&l);
    assert_int_equal(scalar(db, "SELECT count(*) FROM audit WHERE what IN ('incident.quarantine',"
                                "'incident.release')"), 2);
    /* The box itself cannot be quarantined. */
    f = mk(DK_BOX_HEALTH, "box", "disk", 100);
    assert_int_equal(incident_record(db, &f, 1000, &id, err, sizeof err), 1);
    assert_int_equal(incident_contain(db, id, AGENT_OWNER, 1, 1001, err, sizeof err), -1);
    assert_non_null(strstr(err, "box itself"));
}

/* Every step the box writes reads in both languages ("English / 日本語", as notify.c
 * writes them); a row written before that (English only) still comes back as it was. */
static void test_timeline_bilingual(void **state)
{
    sqlite3 *db = *state;
    struct detect_state *d = detect_new(NULL);
    struct detect_finding f[4];
    json_t *ev = json_loads("{\"type\":\"blocked\",\"client\":\"192.0.2.10\","
                            "\"name\":\"malware.test\",\"category\":\"malware\","
                            "\"list\":\"community\"}", 0, NULL);
    assert_int_equal(detect_event(d, ev, 1000, f, 4), 1);
    json_decref(ev);
    detect_free(d);
    int64_t id;
    assert_int_equal(incident_record(db, &f[0], 1000, &id, err, sizeof err), 1);
    assert_int_equal(incident_contain(db, id, AGENT_OWNER, 1, 1001, err, sizeof err), 0);
    assert_int_equal(incident_contain(db, id, AGENT_OWNER, 0, 1002, err, sizeof err), 0);
    assert_int_equal(incident_note(db, id, "box", "help_sent", "hub help request 7", 1003), 0);
    json_t *inc = incident_get(db, id, err, sizeof err);
    json_t *tl = json_object_get(inc, "timeline");
    assert_int_equal(json_array_size(tl), 4);
    static const char *const want[3][2] = {
        { "looked up malware.test (malware list community)", "malware.testを問い合わせました" },
        { "quarantined 192.0.2.10", "192.0.2.10を隔離しました" },
        { "released 192.0.2.10", "192.0.2.10の隔離を解除しました" },
    };
    for (int i = 0; i < 3; i++) {
        const char *det = json_string_value(json_object_get(json_array_get(tl, i), "detail"));
        assert_non_null(det);
        const char *sep = strstr(det, " / ");
        assert_non_null(sep);
        assert_non_null(strstr(det, want[i][0]));
        assert_true(strstr(det, want[i][0]) < sep);
        assert_true(strstr(det, want[i][1]) > sep);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, 3), "detail")),
                        "hub help request 7");
    json_decref(inc);
    /* The report names the steps in its language too, and gives the box's words in its
     * language only; an old English-only row stays whole. */
    static const char *const ja_has[] = { "| 検知 |", "| 隔離解除 |", "| 助けの依頼を送信 |",
                                          "malware.testを問い合わせました",
                                          "| hub help request 7 |", NULL };
    static const char *const en_has[] = { "| help request sent |", "| quarantined 192.0.2.10 |",
                                          "looked up malware.test (malware list community) |",
                                          NULL };
    for (int ja = 0; ja < 2; ja++) {
        char *md = incident_report(db, id, "md", ja ? "ja" : "en", 2000, err, sizeof err);
        assert_non_null(md);
        for (const char *const *w = ja ? ja_has : en_has; *w; w++)
            assert_non_null(strstr(md, *w));
        assert_null(strstr(md, ja ? "looked up" : "問い合わせ"));
        free(md);
    }
}

static void test_notify_queue(void **state)
{
    sqlite3 *db = *state;
    struct detect_finding f = mk(DK_MALWARE_DOMAIN, "192.0.2.10", "malware.test", 90);
    int64_t id;
    assert_int_equal(incident_record(db, &f, 1000, &id, err, sizeof err), 1);
    /* Nothing configured: nothing queued. */
    assert_int_equal(notify_enqueue(db, id, "opened", 1000, err, sizeof err), 0);
    /* A webhook nobody listens on: queued, fails, backs off, keeps the error. */
    assert_int_equal(agent_exec(db, "INSERT INTO settings VALUES ('notify_webhook',"
                                " 'http://127.0.0.1:9/hook'), ('notify_lang','en')", err, sizeof err), 0);
    assert_int_equal(notify_enqueue(db, id, "opened", 1000, err, sizeof err), 1);
    assert_int_equal(notify_run(db, 1000), 0);
    assert_int_equal(scalar(db, "SELECT tries FROM notify_queue"), 1);
    assert_int_equal(scalar(db, "SELECT next_try FROM notify_queue"), 1030);
    assert_int_equal(notify_run(db, 1010), 0);   /* not due yet */
    assert_int_equal(scalar(db, "SELECT tries FROM notify_queue"), 1);
    assert_int_equal(notify_run(db, 1030), 0);
    assert_int_equal(scalar(db, "SELECT next_try FROM notify_queue"), 1090);
    json_t *b = notify_body(db, id, "opened");
    assert_string_equal(json_string_value(json_object_get(b, "kind")), DK_MALWARE_DOMAIN);
    assert_non_null(strstr(json_string_value(json_object_get(b, "title")), "malicious"));
    json_decref(b);
}

static void test_help_bundle(void **state)
{
    sqlite3 *db = *state;
    assert_int_equal(agent_device_seen(db, "02:00:00:00:00:10", "192.0.2.10", "pc", 100, err,
                                       sizeof err), 0);
    assert_int_equal(agent_device_seen(db, "02:00:00:00:00:11", "192.0.2.11", "boss-laptop",
                                       100, err, sizeof err), 0);
    struct detect_finding f = mk(DK_MALWARE_DOMAIN, "192.0.2.10", "malware.test", 90);
    int64_t id, other;
    assert_int_equal(incident_record(db, &f, 1000, &id, err, sizeof err), 1);
    f = mk(DK_MALWARE_DOMAIN, "192.0.2.11", "secret-other.test", 90);
    assert_int_equal(incident_record(db, &f, 1000, &other, err, sizeof err), 1);
    json_t *b = help_bundle(db, id, "please look", err, sizeof err);
    assert_non_null(b);
    char *s = json_dumps(b, JSON_COMPACT);
    assert_non_null(strstr(s, "\"malware.test\""));
    assert_non_null(strstr(s, "\"02:00:00:00:00:10\""));
    assert_non_null(strstr(s, "please look"));
    /* Nothing about the other device or its incident. */
    assert_null(strstr(s, "boss-laptop"));
    assert_null(strstr(s, "secret-other"));
    assert_null(strstr(s, "192.0.2.11"));
    free(s);
    json_decref(b);
    /* No hub enrolled: a clear refusal, the incident stays where it was. */
    assert_int_equal(help_request(db, "/nonexistent/otasuke-hub", id, AGENT_OWNER, NULL, 1001,
                                  err, sizeof err), -1);
    assert_non_null(strstr(err, "enrol"));
    json_t *inc = incident_get(db, id, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(inc, "state")), "open");
    json_decref(inc);
}

static void test_remote_session_rules(void **state)
{
    sqlite3 *db = *state;
    struct detect_finding f = mk(DK_C2_IP, "192.0.2.10", "198.18.10.66", 95);
    int64_t id;
    assert_int_equal(incident_record(db, &f, 1000, &id, err, sizeof err), 1);
    /* Without consent nothing happens, whatever else is right. */
    assert_int_equal(help_session_start(db, "/nonexistent", "/tmp", id, AGENT_OWNER, 0, 3600, 443,
                                        1000, err, sizeof err), -1);
    assert_non_null(strstr(err, "consent"));
    assert_int_equal(help_session_start(db, "/nonexistent", "/tmp", id, AGENT_OWNER, 1, 0, 443,
                                        1000, err, sizeof err), -1);
    assert_non_null(strstr(err, "minutes"));
    assert_int_equal(help_session_start(db, "/nonexistent", "/tmp", id, AGENT_OWNER, 1, 9, 443,
                                        1000, err, sizeof err), -1);
    assert_non_null(strstr(err, "seconds: 10 to"));
    assert_int_equal(help_session_stop(db, id, AGENT_OWNER, "x", 1000, err, sizeof err), -1);
    /* A session past its expiry is ended by the tick: its process is stopped, audited. */
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO help_sessions(incident_id, who, started, expires, pid,"
             " port) VALUES (%lld, 'owner', 1000, 4600, %d, 20001)", (long long)id, (int)pid);
    assert_int_equal(agent_exec(db, sql, err, sizeof err), 0);
    help_session_tick(db, 2000);   /* not yet */
    assert_int_equal(kill(pid, 0), 0);
    help_session_tick(db, 4600);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM help_sessions WHERE ended=4600 AND"
                                " end_reason='expired'"), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM audit WHERE what='incident.remote_end'"), 1);
}

/* The event path end to end: a datagram from fwd opens an incident; auto-quarantine acts
 * only when the owner enabled it and only on near-certain C2. */
static void test_event_path_auto_quarantine(void **state)
{
    sqlite3 *db = *state;
    struct agentd ad;
    memset(&ad, 0, sizeof ad);
    ad.db = db;
    ad.events_fd = ad.hub_fd = -1;
    const char *c2 = "{\"type\":\"drop\",\"reason\":\"blocklist\",\"match\":\"destination\","
                     "\"set\":\"feed_block\",\"src\":\"192.0.2.10\",\"dst\":\"198.18.10.66\","
                     "\"dport\":443}";
    incidents_on_event(&ad, c2, strlen(c2), 1000);
    assert_int_equal(scalar(db, "SELECT count(*) FROM incidents WHERE kind='c2_ip'"), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM quarantine"), 0);   /* not enabled */
    assert_int_equal(ad.dirty, 0);
    assert_int_equal(agent_exec(db, "INSERT INTO settings VALUES ('auto_quarantine','1')", err,
                                sizeof err), 0);
    /* A DoH attempt is not certain enough. */
    const char *dot = "{\"type\":\"drop\",\"reason\":\"policy\",\"src\":\"192.0.2.12\","
                      "\"dst\":\"198.18.8.8\",\"dport\":853}";
    incidents_on_event(&ad, dot, strlen(dot), 1001);
    assert_int_equal(scalar(db, "SELECT count(*) FROM quarantine"), 0);
    incidents_on_event(&ad, c2, strlen(c2), 1002);
    assert_int_equal(scalar(db, "SELECT count(*) FROM quarantine WHERE addr='192.0.2.10' AND"
                                " who='auto'"), 1);
    assert_int_equal(ad.dirty, 1);
    /* Garbage never breaks the path. */
    incidents_on_event(&ad, "{\"type\":", 9, 1003);
    incidents_on_event(&ad, "[]", 2, 1003);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dedupe_and_severity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_report_and_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_bilingual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_bundle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_session_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_path_auto_quarantine, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
