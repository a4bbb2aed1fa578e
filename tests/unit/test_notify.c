/* Owner notifications: the e-mail's form (RFC 2047 subject, Date, Message-ID, UTF-8
 * body), delivery to a real SMTP listener on loopback (tests/lib/smtp-sink.py) read back
 * decoded, retry and give-up with the failure on the timeline, and the delivery worker:
 * a hung relay holds neither the caller nor the database, a stop keeps the item, and a
 * restart delivers it. */
#include "../../services/agent/agent.h"
#include "../../services/agent/incidents.h"
#include "../../services/agent/notify.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

extern char **environ;

static char err[AGENT_ERR];
static char dbpath[96], dir[64];
static pid_t sink_pid = -1;

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test_notify_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/agent.db", dir);
    sqlite3 *db = agent_db_open(dbpath, err, sizeof err);
    assert_non_null(db);
    *state = db;
    return 0;
}

static void sink_stop(void)
{
    if (sink_pid > 0) {
        kill(sink_pid, SIGTERM);
        waitpid(sink_pid, NULL, 0);
    }
    sink_pid = -1;
}

static int teardown(void **state)
{
    sink_stop();
    notify_stop();
    agent_db_close(*state);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Starts the sink in mode with its output in dir/sub; returns its port. */
static int sink_start(const char *mode, const char *sub)
{
    const char *repo = getenv("OTASUKE_REPO");
    char script[512], out[128], portfile[160];
    snprintf(script, sizeof script, "%s/tests/lib/smtp-sink.py", repo ? repo : ".");
    if (access(script, R_OK) != 0)
        fail_msg("%s not found: run from the repository root or set OTASUKE_REPO", script);
    snprintf(out, sizeof out, "%s/%s", dir, sub);
    snprintf(portfile, sizeof portfile, "%s/%s.port", dir, sub);
    char *argv[] = { "python3", script, out, "--port-file", portfile, "--mode", (char *)mode,
                     NULL };
    assert_int_equal(posix_spawnp(&sink_pid, "python3", NULL, NULL, argv, environ), 0);
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f) {
            int ok = fscanf(f, "%d", &port) == 1;
            fclose(f);
            if (ok && port > 0)
                return port;
        }
        usleep(50000);
    }
    fail_msg("smtp-sink did not start");
    return -1;
}

static void set(sqlite3 *db, const char *key, const char *value)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO settings VALUES (?,?)", -1,
                                        &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

static void use_sink(sqlite3 *db, int port)
{
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    set(db, "notify_smtp", url);
    set(db, "notify_mail_from", "box@office.test");
    set(db, "notify_mail_to", "owner@office.test");
    set(db, "notify_lang", "ja");
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t timeline_count(sqlite3 *db, int64_t id, const char *what)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM incident_events WHERE incident_id=%lld AND"
             " what='%s'", (long long)id, what);
    return scalar(db, sql);
}

static int64_t open_incident(sqlite3 *db, const char *kind, const char *dev, int64_t now)
{
    struct detect_finding f;
    memset(&f, 0, sizeof f);
    snprintf(f.kind, sizeof f.kind, "%s", kind);
    snprintf(f.device, sizeof f.device, "%s", dev);
    snprintf(f.indicator, sizeof f.indicator, "tunnel.test");
    snprintf(f.detail, sizeof f.detail, "test");
    f.confidence = 80;
    int64_t id;
    assert_int_equal(incident_record(db, &f, now, &id, err, sizeof err), 1);
    return id;
}

/* Decodes the Subject header of msg: "=?UTF-8?B?...?=" words, folded, into out. Checks
 * on the way that the header is ASCII and no line exceeds 78 characters. */
static void decode_subject(const char *msg, char *out, size_t outlen)
{
    const char *s = strstr(msg, "\r\nSubject: ");
    assert_non_null(s);
    s += 2;
    const char *end = s;
    for (;;) {   /* the header ends at a CRLF not followed by a space */
        end = strstr(end, "\r\n");
        assert_non_null(end);
        if (end[2] != ' ' && end[2] != '\t')
            break;
        end += 2;
    }
    size_t o = 0, line = 0;
    for (const char *p = s; p < end; p++) {
        assert_true((unsigned char)*p < 0x80);
        line = *p == '\n' ? 0 : line + 1;
        assert_true(line <= 78);
    }
    const char *p = s + strlen("Subject: ");
    while (p < end) {
        const char *w = strstr(p, "=?UTF-8?B?");
        if (!w || w >= end)
            break;
        w += strlen("=?UTF-8?B?");
        const char *we = strstr(w, "?=");
        assert_non_null(we);
        assert_true(we - w + 12 <= 75);   /* RFC 2047: an encoded-word is <= 75 chars */
        size_t n;
        assert_int_equal(sodium_base642bin((unsigned char *)out + o, outlen - o - 1, w,
                                           (size_t)(we - w), NULL, &n, NULL,
                                           sodium_base64_VARIANT_ORIGINAL), 0);
        o += n;
        p = we + 2;
    }
    out[o] = '\0';
}

static void test_mail_form(void **state)
{
    sqlite3 *db = *state;
    int64_t id = open_incident(db, DK_DNS_TUNNEL, "192.0.2.10", 1700000000);
    set(db, "notify_smtp", "smtp://127.0.0.1:9");
    set(db, "notify_lang", "ja");
    json_t *b = notify_body(db, id, "opened");
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    char *m = notify_mail_message("box@office.test", "owner@office.test", body, 1700000000,
                                  err, sizeof err);
    assert_non_null(m);
    char subject[1024], want[600];
    decode_subject(m, subject, sizeof subject);
    snprintf(want, sizeof want, "[otasuke] %s", incident_title(DK_DNS_TUNNEL, "ja"));
    assert_string_equal(subject, want);
    assert_non_null(strstr(m, "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
    assert_non_null(strstr(m, "\r\nMessage-ID: <otasuke."));
    assert_non_null(strstr(m, "@office.test>\r\n"));
    assert_non_null(strstr(m, "Content-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null(strstr(m, "\r\n\r\n"));   /* headers end before the body */
    free(m);
    /* A line break in an address would let a setting add headers: refused by name. */
    assert_null(notify_mail_message("box@office.test", "owner@office.test\r\nBcc: x@y.test",
                                    body, 1, err, sizeof err));
    assert_non_null(strstr(err, "notify_mail_to"));
    assert_null(notify_mail_message("box", "owner@office.test", body, 1, err, sizeof err));
    assert_non_null(strstr(err, "notify_mail_from"));
    assert_null(notify_mail_message("box@office.test", "owner@office.test", "{}", 1, err,
                                    sizeof err));
    free(body);
    /* A long English title is split into several encoded-words; decoding joins them. */
    json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:I}", "event", "resolved", "kind", "x",
                          "title", "日本語とEnglishが混ざった、とても長い件名でも正しく分割されます",
                          "advice", "a", "incident", (json_int_t)7);
    body = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    m = notify_mail_message("box@office.test", "owner@office.test", body, 1, err, sizeof err);
    assert_non_null(m);
    decode_subject(m, subject, sizeof subject);
    assert_string_equal(subject, "[otasuke] Resolved: 日本語とEnglishが混ざった、とても長い件名でも正しく分割されます");
    free(m);
    free(body);
}

static json_t *load_json(const char *path)
{
    for (int i = 0; i < 100; i++) {
        json_t *j = json_load_file(path, 0, NULL);
        if (j)
            return j;
        usleep(50000);
    }
    fail_msg("%s: not written", path);
    return NULL;
}

static void test_mail_delivered(void **state)
{
    sqlite3 *db = *state;
    use_sink(db, sink_start("ok", "ok"));
    int64_t id = open_incident(db, DK_DNS_TUNNEL, "192.0.2.10", time(NULL));
    assert_int_equal(notify_enqueue(db, id, "opened", time(NULL), err, sizeof err), 1);
    assert_int_equal(notify_run(db, time(NULL)), 1);
    char p[128];
    snprintf(p, sizeof p, "%s/ok/mail.000.json", dir);
    json_t *j = load_json(p);
    char want[600];
    snprintf(want, sizeof want, "[otasuke] %s", incident_title(DK_DNS_TUNNEL, "ja"));
    assert_string_equal(json_string_value(json_object_get(j, "subject")), want);
    assert_true(json_is_true(json_object_get(j, "header_bytes_ascii")));
    assert_string_equal(json_string_value(json_object_get(j, "to")), "owner@office.test");
    assert_non_null(json_string_value(json_object_get(j, "date")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "message_id")), "@office.test>"));
    const char *body = json_string_value(json_object_get(j, "body"));
    assert_non_null(strstr(body, incident_advice(DK_DNS_TUNNEL, "ja")));
    assert_non_null(strstr(body, "端末: 192.0.2.10"));
    json_decref(j);
    assert_int_equal(scalar(db, "SELECT sent > 0 FROM notify_queue"), 1);
    assert_int_equal(timeline_count(db, id, "notify_sent"), 1);
}

static void test_retry_then_give_up(void **state)
{
    sqlite3 *db = *state;
    use_sink(db, sink_start("reject", "reject"));
    int64_t now = 1000000;
    int64_t id = open_incident(db, DK_LATERAL_SCAN, "198.51.100.10", now);
    assert_int_equal(notify_enqueue(db, id, "opened", now, err, sizeof err), 1);
    for (int k = 0; k < NOTIFY_MAX_TRIES; k++) {
        now = scalar(db, "SELECT next_try FROM notify_queue");
        assert_int_equal(notify_run(db, now), 0);
        assert_int_equal(scalar(db, "SELECT tries FROM notify_queue"), k + 1);
    }
    /* Given up: nothing more is tried, the owner sees why on the timeline, once. */
    assert_int_equal(notify_run(db, now + 100000), 0);
    assert_int_equal(scalar(db, "SELECT tries FROM notify_queue"), NOTIFY_MAX_TRIES);
    assert_int_equal(timeline_count(db, id, "notify_retry"), 1);
    assert_int_equal(timeline_count(db, id, "notify_failed"), 1);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM incident_events WHERE incident_id=%lld AND"
             " what='notify_failed' AND detail LIKE '%%gave up%%' AND detail NOT LIKE"
             " '%%127.0.0.1%%'", (long long)id);
    assert_int_equal(scalar(db, sql), 1);
}

static void test_queue_bounded(void **state)
{
    sqlite3 *db = *state;
    set(db, "notify_webhook", "http://127.0.0.1:9/hook");
    int64_t id = open_incident(db, DK_DNS_TUNNEL, "192.0.2.10", 1000);
    for (int i = 0; i < NOTIFY_QUEUE_MAX; i++)
        assert_int_equal(notify_enqueue(db, id, "opened", 1000, err, sizeof err), 1);
    /* Full: skipped and said so, nothing more stored. */
    assert_int_equal(notify_enqueue(db, id, "opened", 1000, err, sizeof err), 0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM notify_queue"), NOTIFY_QUEUE_MAX);
    assert_int_equal(timeline_count(db, id, "notify_skipped"), 1);
    /* Given-up rows no longer count as waiting, and are deleted after NOTIFY_KEEP_S. */
    char e2[AGENT_ERR];
    assert_int_equal(agent_exec(db, "UPDATE notify_queue SET tries=99, next_try=1000", e2,
                                sizeof e2), 0);
    assert_int_equal(notify_enqueue(db, id, "opened", 1000, err, sizeof err), 1);
    notify_run(db, 1000 + NOTIFY_KEEP_S + 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM notify_queue"), 1);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void test_worker(void **state)
{
    sqlite3 *db = *state;
    use_sink(db, sink_start("stall", "stall"));
    assert_int_equal(notify_start(dbpath, err, sizeof err), 0);
    int64_t id = open_incident(db, DK_C2_IP, "192.0.2.10", time(NULL));
    assert_int_equal(notify_enqueue(db, id, "opened", time(NULL), err, sizeof err), 1);
    notify_kick(db, time(NULL));   /* returns at once: the worker does the sending */
    char p[128];
    snprintf(p, sizeof p, "%s/stall/stalled.000", dir);
    for (int i = 0; i < 200 && !exists(p); i++)
        usleep(50000);
    assert_true(exists(p));   /* the worker is now inside the hung relay's session */
    /* The caller's database is not held by it: more incidents are recorded and queued. */
    int64_t id2 = open_incident(db, DK_LATERAL_SCAN, "198.51.100.10", time(NULL));
    assert_int_equal(notify_enqueue(db, id2, "opened", time(NULL), err, sizeof err), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM notify_queue WHERE sent=0 AND tries=0"), 2);
    /* A stop aborts the attempt without counting it; the rows stay for the next start. */
    notify_stop();
    sink_stop();
    assert_int_equal(scalar(db, "SELECT count(*) FROM notify_queue WHERE sent=0 AND tries=0"), 2);
    use_sink(db, sink_start("ok", "after"));
    assert_int_equal(notify_start(dbpath, err, sizeof err), 0);
    for (int i = 0; i < 200 && scalar(db, "SELECT count(*) FROM notify_queue WHERE sent=0") > 0; i++)
        usleep(50000);
    assert_int_equal(scalar(db, "SELECT count(*) FROM notify_queue WHERE sent=0"), 0);
    snprintf(p, sizeof p, "%s/after/mail.001.json", dir);
    json_decref(load_json(p));
    notify_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mail_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mail_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_give_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
