/* dnsd's side of the DNS-tunnel detector (services/dnsfilter/events.c): which allowed
 * names become "query" events, the per-client token bucket, and dropping (counted) when
 * the agent's socket is full. A real unix datagram socket plays the agent. */
#include "../../services/dnsfilter/dnsd.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

static char path[64];
static int agent_fd = -1;

static int setup(void **state)
{
    static struct dnsd d;
    memset(&d, 0, sizeof d);
    snprintf(path, sizeof path, "/tmp/test_detect_dnsd.%d.sock", (int)getpid());
    unlink(path);
    agent_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    assert_int_equal(bind(agent_fd, (struct sockaddr *)&sun, sizeof sun), 0);
    d.o.events_path = path;
    d.o.query.label_len = 30;
    d.o.query.entropy = 3.5;
    d.o.query.rate = 5;
    d.o.query.burst = 40;
    char err[128];
    assert_int_equal(events_open(&d, err, sizeof err), 0);
    d.now_ms = 1000000;
    *state = &d;
    return 0;
}

static int teardown(void **state)
{
    struct dnsd *d = *state;
    close(d->ev_fd);
    close(agent_fd);
    unlink(path);
    return 0;
}

static struct dnsd_client client(const char *addr)
{
    struct dnsd_client c;
    memset(&c, 0, sizeof c);
    struct sockaddr_in *sin = (struct sockaddr_in *)&c.addr;
    sin->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
    c.addrlen = sizeof *sin;
    return c;
}

static void query(struct dnsd *d, const struct dnsd_client *c, const char *name)
{
    events_query(d, c, name, strlen(name), DNSW_TYPE_A);
}

/* Reads every waiting event; returns how many, the last one's name in last. */
static int drain(char *last, size_t lastlen)
{
    char buf[2048];
    int n = 0;
    ssize_t k;
    while ((k = recv(agent_fd, buf, sizeof buf - 1, 0)) > 0) {
        buf[k] = '\0';
        json_t *o = json_loads(buf, 0, NULL);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "type")), "query");
        assert_string_equal(json_string_value(json_object_get(o, "qtype")), "A");
        if (last)
            snprintf(last, lastlen, "%s %s", json_string_value(json_object_get(o, "client")),
                     json_string_value(json_object_get(o, "name")));
        json_decref(o);
        n++;
    }
    return n;
}

static void test_which_names(void **state)
{
    struct dnsd *d = *state;
    struct dnsd_client pc = client("192.0.2.10");
    char last[600];
    /* Ordinary names, and long but word-like labels below the length threshold. */
    query(d, &pc, "www.good.test");
    query(d, &pc, "googleusercontent.test");
    query(d, &pc, "mailserver-primary.shop.test");   /* 18, word-like: 3.3 bits */
    query(d, &pc, "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.test");
    assert_int_equal(drain(NULL, 0), 0);
    /* A label of the detector's length goes as it is ... */
    query(d, &pc, "static-content-delivery-europe-west.cdn.test");
    assert_int_equal(drain(last, sizeof last), 1);
    assert_string_equal(last, "192.0.2.10 static-content-delivery-europe-west.cdn.test");
    /* ... a shorter one from 16 characters on only when random-looking, anywhere in the name. */
    query(d, &pc, "x.k7q2vz9m4hx8wp3r.tunnel.test");
    assert_int_equal(drain(last, sizeof last), 1);
    assert_string_equal(last, "192.0.2.10 x.k7q2vz9m4hx8wp3r.tunnel.test");
    query(d, &pc, "x.aaaaaaaaaaaaaaaaaaaaaaa.tunnel.test");   /* 23 chars, no entropy */
    assert_int_equal(drain(NULL, 0), 0);
    /* Thresholds follow the configuration (otasuke.conf detect.*). */
    d->o.query.label_len = 18;
    query(d, &pc, "mailserver-primary.shop.test");
    assert_int_equal(drain(NULL, 0), 1);
    d->o.query.label_len = 30;
    d->o.query.entropy = 5.0;
    query(d, &pc, "x.k7q2vz9m4hx8wp3r.tunnel.test");
    assert_int_equal(drain(NULL, 0), 0);
    assert_int_equal((int)d->st.events_dropped, 0);
}

static void test_bucket_per_client(void **state)
{
    struct dnsd *d = *state;
    struct dnsd_client pc = client("192.0.2.220"), iot = client("198.51.100.10");
    char name[128];
    int sent = 0;
    /* 100 names at once from pc: the burst goes, the rest is dropped and counted. The
     * agent reads as they come (as a live agent would), so only the bucket limits. */
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "%02dmfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpi.good.test", i);
        query(d, &pc, name);
        sent += drain(NULL, 0);
    }
    assert_int_equal(sent, 40);
    assert_int_equal((int)d->st.events_dropped, 60);
    /* Another client has its own bucket. */
    query(d, &iot, "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpi.good.test");
    assert_int_equal(drain(NULL, 0), 1);
    /* Two seconds later pc has 10 more (5 a second). */
    d->now_ms += 2000;
    sent = 0;
    for (int i = 0; i < 30; i++) {
        query(d, &pc, "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpi.good.test");
        sent += drain(NULL, 0);
    }
    assert_int_equal(sent, 10);
}

static void test_full_socket_drops(void **state)
{
    struct dnsd *d = *state;
    /* The agent reads nothing: once its queue is full, sends fail at once and are counted
     * (the call never waits). Many clients, so the buckets are not what stops them. */
    int n = 0;
    for (int i = 1; i <= 200; i++) {
        char a[32];
        snprintf(a, sizeof a, "203.0.113.%d", i);
        struct dnsd_client c = client(a);
        query(d, &c, "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpi.good.test");
    }
    n = drain(NULL, 0);
    assert_true(n > 0 && n < 200);
    assert_int_equal((int)(d->st.events_sent + d->st.events_dropped), 200);
    assert_int_equal((int)d->st.events_sent, n);
}

/* The agent's query-events file: parsed strictly, applied at reload, a missing file gives
 * back the started values, a bad one keeps what is in use. */
static void test_runtime_thresholds(void **state)
{
    struct dnsd *d = *state;
    d->o.query_base = d->o.query;
    d->o.query_events_path = "query-events.json";
    struct qtune t;
    char err[256];
    const char *good = "{\"version\":1,\"label_len\":12,\"entropy\":3.5,\"rate\":8,\"burst\":60}";
    assert_int_equal(qtune_parse(good, strlen(good), "q.json", &t, err, sizeof err), 0);
    assert_int_equal(t.label_len, 12);
    assert_int_equal(t.burst, 60);
    static const char *const bad[][2] = {
        { "{\"version\":1,\"label_len\":12,\"entropy\":3.5,\"rate\":8,\"burst\":60,\"x\":1}", "x: unknown" },
        { "{\"version\":1,\"label_len\":0,\"entropy\":3.5,\"rate\":8,\"burst\":60}", "label_len: 0 is outside" },
        { "{\"version\":1,\"label_len\":12,\"entropy\":3.5,\"rate\":8}", "burst: missing" },
        { "{\"version\":1,\"label_len\":\"12\",\"entropy\":3.5,\"rate\":8,\"burst\":60}", "label_len: not an integer" },
        { "{\"version\":2,\"label_len\":12,\"entropy\":3.5,\"rate\":8,\"burst\":60}", "version" },
        { "{\"version\":1,", "q.json:1:" },
        { "[]", "not a JSON object" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(qtune_parse(bad[i][0], strlen(bad[i][0]), "q.json", &t, err, sizeof err), -1);
        assert_non_null(strstr(err, bad[i][1]));
        assert_non_null(strstr(err, "q.json"));
    }
    assert_int_equal(qtune_load("/nonexistent/query-events.json", &t, err, sizeof err), 0);
    /* Applied: a 12-character random label now goes, and a new client gets a burst of 60. */
    assert_int_equal(qtune_parse(good, strlen(good), "q.json", &t, err, sizeof err), 0);
    struct dnsd_client pc = client("192.0.2.77");
    query(d, &pc, "x.k7q2vz9m4hx8.tunnel.test");
    assert_int_equal(drain(NULL, 0), 0);
    qtune_apply(d, 1, &t, NULL);
    query(d, &pc, "x.k7q2vz9m4hx8.tunnel.test");
    assert_int_equal(drain(NULL, 0), 1);
    struct dnsd_client iot = client("198.51.100.77");
    int sent = 0;
    for (int i = 0; i < 100; i++) {
        query(d, &iot, "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpi.good.test");
        sent += drain(NULL, 0);
    }
    assert_int_equal(sent, 60);
    /* A bad file keeps these; a missing one goes back to the started values. */
    qtune_apply(d, -1, NULL, "q.json: label_len: 0 is outside 1..63");
    assert_int_equal(d->o.query.label_len, 12);
    qtune_apply(d, 0, NULL, NULL);
    assert_int_equal(d->o.query.label_len, 30);
    assert_int_equal(d->o.query.burst, 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_which_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bucket_per_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_socket_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_thresholds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
