/* Detectors: each must fire on the events that describe its threat and stay quiet on
 * look-alike normal traffic. */
#include "../../services/agent/detect.h"
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int feed(struct detect_state *s, int64_t now, struct detect_finding *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int feed(struct detect_state *s, int64_t now, struct detect_finding *f, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_t *o = json_loads(buf, 0, NULL);
    assert_non_null(o);
    int n = detect_event(s, o, now, f, 4);
    json_decref(o);
    return n;
}

static void test_malware_domain(void **st)
{
    (void)st;
    struct detect_state *s = detect_new(NULL);
    struct detect_finding f[4];
    assert_int_equal(feed(s, 100, f, "{\"type\":\"blocked\",\"client\":\"192.0.2.10\","
                          "\"name\":\"malware.test\",\"category\":\"malware\",\"list\":\"x\"}"), 1);
    assert_string_equal(f[0].kind, DK_MALWARE_DOMAIN);
    assert_string_equal(f[0].device, "192.0.2.10");
    assert_string_equal(f[0].indicator, "malware.test");
    assert_int_equal(feed(s, 100, f, "{\"type\":\"blocked\",\"client\":\"192.0.2.10\","
                          "\"name\":\"evil.test\",\"category\":\"c2\"}"), 1);
    assert_true(f[0].confidence >= 90);
    /* Ads and trackers are blocked too, but they are not incidents. */
    assert_int_equal(feed(s, 100, f, "{\"type\":\"blocked\",\"client\":\"192.0.2.10\","
                          "\"name\":\"ads.test\",\"category\":\"ads\"}"), 0);
    assert_int_equal(feed(s, 100, f, "{\"type\":\"blocked\",\"name\":\"malware.test\","
                          "\"category\":\"malware\"}"), 0);   /* no client */
    assert_int_equal(feed(s, 100, f, "{\"type\":\"allowed\",\"client\":\"192.0.2.10\",\"count\":5}"), 0);
    detect_free(s);
}

static void test_c2_ip_and_doh(void **st)
{
    (void)st;
    struct detect_state *s = detect_new(NULL);
    struct detect_finding f[4];
    assert_int_equal(feed(s, 1, f, "{\"type\":\"drop\",\"reason\":\"blocklist\",\"set\":\"feed_block\","
                          "\"match\":\"destination\",\"src\":\"192.0.2.10\",\"dst\":\"198.18.10.66\","
                          "\"dport\":443}"), 1);
    assert_string_equal(f[0].kind, DK_C2_IP);
    assert_string_equal(f[0].indicator, "198.18.10.66");
    assert_true(f[0].confidence >= 90);
    /* Inbound noise from a listed address is not a compromised device. */
    assert_int_equal(feed(s, 1, f, "{\"type\":\"drop\",\"reason\":\"blocklist\",\"match\":\"source\","
                          "\"src\":\"198.18.10.66\",\"dst\":\"192.0.2.10\",\"dport\":22}"), 0);
    assert_int_equal(feed(s, 1, f, "{\"type\":\"drop\",\"reason\":\"policy\",\"src\":\"192.0.2.10\","
                          "\"dst\":\"198.18.8.8\",\"dport\":853}"), 1);
    assert_string_equal(f[0].kind, DK_DOH_BYPASS);
    assert_int_equal(feed(s, 1, f, "{\"type\":\"blocked\",\"client\":\"192.0.2.10\","
                          "\"name\":\"dns.example.test\",\"category\":\"doh-bypass\"}"), 1);
    assert_string_equal(f[0].kind, DK_DOH_BYPASS);
    assert_int_equal(feed(s, 1, f, "{\"type\":\"drop\",\"reason\":\"quarantine\",\"src\":\"198.51.100.10\","
                          "\"dst\":\"192.0.2.10\",\"dport\":80}"), 1);
    assert_string_equal(f[0].kind, DK_QUARANTINED);
    detect_free(s);
}

static void test_lateral_scan(void **st)
{
    (void)st;
    struct detect_cfg c;
    detect_cfg_defaults(&c);
    struct detect_state *s = detect_new(&c);
    struct detect_finding f[4];
    int fired = 0;
    /* A host sweep: one IoT device, many LAN addresses, one port. */
    for (int i = 1; i <= c.scan_hosts; i++)
        fired += feed(s, 10 + i, f, "{\"type\":\"drop\",\"reason\":\"policy\",\"src\":\"198.51.100.10\","
                      "\"dst\":\"192.0.2.%d\",\"dport\":445}", i);
    assert_int_equal(fired, 1);
    assert_string_equal(f[0].kind, DK_LATERAL_SCAN);
    assert_string_equal(f[0].device, "198.51.100.10");
    /* A port scan of one host. */
    fired = 0;
    for (int p = 1; p <= c.scan_ports; p++)
        fired += feed(s, 30, f, "{\"type\":\"drop\",\"reason\":\"policy\",\"src\":\"198.51.100.11\","
                      "\"dst\":\"192.0.2.10\",\"dport\":%d}", p);
    assert_int_equal(fired, 1);
    detect_free(s);

    /* Must not fire: the same sweep spread wider than the window, retries to one host and
     * port, and drops towards the internet. */
    s = detect_new(&c);
    fired = 0;
    for (int i = 1; i <= c.scan_hosts * 2; i++)
        fired += feed(s, i * (c.scan_window / 4 + 1), f, "{\"type\":\"drop\",\"reason\":\"policy\","
                      "\"src\":\"198.51.100.10\",\"dst\":\"192.0.2.%d\",\"dport\":445}", i);
    for (int i = 0; i < 100; i++)
        fired += feed(s, 1000, f, "{\"type\":\"drop\",\"reason\":\"policy\",\"src\":\"198.51.100.12\","
                      "\"dst\":\"192.0.2.10\",\"dport\":80}");
    for (int i = 1; i <= 50; i++)
        fired += feed(s, 2000, f, "{\"type\":\"drop\",\"reason\":\"policy\",\"src\":\"198.51.100.13\","
                      "\"dst\":\"198.18.10.%d\",\"dport\":80}", i);
    assert_int_equal(fired, 0);
    detect_free(s);
}

static void test_dns_tunnel(void **st)
{
    (void)st;
    struct detect_cfg c;
    detect_cfg_defaults(&c);
    struct detect_state *s = detect_new(&c);
    struct detect_finding f[4];
    int fired = 0;
    const char *alpha = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < c.tunnel_names; i++) {
        char label[48];
        static uint32_t x = 12345;   /* an LCG: random-looking, like encoded data */
        for (int k = 0; k < 40; k++) {
            x = x * 1103515245u + 12345u;
            label[k] = alpha[(x >> 16) % 36];
        }
        label[40] = '\0';
        fired += feed(s, 100 + i, f, "{\"type\":\"query\",\"client\":\"192.0.2.10\","
                      "\"name\":\"%s.t.tunnel.test\"}", label);
    }
    assert_int_equal(fired, 1);
    assert_string_equal(f[0].kind, DK_DNS_TUNNEL);
    assert_string_equal(f[0].indicator, "tunnel.test");
    detect_free(s);

    /* Names the box blocked still count (dnsd reports names of blocked lookups only);
     * under a listed C2 domain the threshold event is both a malware hit and a tunnel. */
    s = detect_new(&c);
    fired = 0;
    int both = 0;
    for (int i = 0; i < c.tunnel_names; i++) {
        char label[48];
        static uint32_t y = 777;
        for (int k = 0; k < 40; k++) {
            y = y * 1103515245u + 12345u;
            label[k] = alpha[(y >> 16) % 36];
        }
        label[40] = '\0';
        int n = feed(s, 100 + i, f, "{\"type\":\"blocked\",\"client\":\"192.0.2.10\","
                     "\"name\":\"%s.c2.test\",\"category\":\"c2\"}", label);
        assert_string_equal(f[0].kind, DK_MALWARE_DOMAIN);
        fired += n;
        if (n == 2) {
            both++;
            assert_string_equal(f[1].kind, DK_DNS_TUNNEL);
            assert_string_equal(f[1].indicator, "c2.test");
        }
    }
    assert_int_equal(both, 1);
    assert_int_equal(fired, c.tunnel_names + 1);
    detect_free(s);

    /* Must not fire: long but low-entropy labels (CDN names), many short names, and the
     * same long name asked again and again. */
    s = detect_new(&c);
    fired = 0;
    for (int i = 0; i < 100; i++) {
        fired += feed(s, 10, f, "{\"type\":\"query\",\"client\":\"192.0.2.10\","
                      "\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%d.cdn.test\"}", i % 10);
        fired += feed(s, 10, f, "{\"type\":\"query\",\"client\":\"192.0.2.10\","
                      "\"name\":\"host%d.good.test\"}", i);
        fired += feed(s, 10, f, "{\"type\":\"query\",\"client\":\"192.0.2.10\","
                      "\"name\":\"x8f3k2m9q7w1z5v0b4n6c8r2t1y7u3i9.shop.test\"}");
    }
    assert_int_equal(fired, 0);
    detect_free(s);
}

static void test_health_and_feed(void **st)
{
    (void)st;
    struct detect_state *s = detect_new(NULL);
    struct detect_finding f[4];
    struct detect_health h = { .disk_pct = 50, .mem_pct = 40, .daemon = "dnsd", .restarts = 0 };
    assert_int_equal(detect_health(s, &h, 1, f, 4), 0);
    h.disk_pct = 95;
    assert_int_equal(detect_health(s, &h, 2, f, 4), 1);
    assert_string_equal(f[0].indicator, "disk");
    h.disk_pct = 50;
    h.restarts = 2;
    assert_int_equal(detect_health(s, &h, 3, f, 4), 0);   /* 2 restarts < 3 */
    h.restarts = 3;
    assert_int_equal(detect_health(s, &h, 4, f, 4), 1);
    assert_string_equal(f[0].indicator, "dnsd");
    h.restarts = 4;   /* one more, long after: not a crash loop */
    assert_int_equal(detect_health(s, &h, 5000, f, 4), 0);
    int64_t now = 10 * 86400;
    assert_int_equal(detect_feed(s, "hub", now - 3600, now, f), 0);
    assert_int_equal(detect_feed(s, "hub", 0, now, f), 0);
    assert_int_equal(detect_feed(s, "hub", now - 3 * 86400, now, f), 1);
    assert_string_equal(f[0].kind, DK_FEED_STALE);
    detect_free(s);
}

static void test_helpers(void **st)
{
    (void)st;
    char b[64];
    assert_string_equal(detect_base_domain("a.b.evil.test.", b, sizeof b), "evil.test");
    assert_string_equal(detect_base_domain("test", b, sizeof b), "test");
    assert_true(detect_entropy("aaaa", 4) < 0.01);
    assert_true(detect_entropy("abcd", 4) > 1.99);
    assert_true(detect_is_local_addr("192.0.2.10"));
    assert_true(detect_is_local_addr("10.1.2.3"));
    assert_true(detect_is_local_addr("fd00:0:0:1::10"));
    assert_false(detect_is_local_addr("198.18.10.66"));
    assert_false(detect_is_local_addr("not-an-ip"));
}

/* otasuke.conf's detect section: its defaults are the detector's, the documented example
 * loads, values land where they belong, and mistakes name file:line and the setting. */
static void test_config_section(void **st)
{
    (void)st;
    struct ota_config cfg;
    struct detect_cfg d;
    char err[512];
    cfg_defaults(&cfg);
    detect_cfg_defaults(&d);
    assert_int_equal(cfg.detect.scan_hosts, d.scan_hosts);
    assert_int_equal(cfg.detect.scan_ports, d.scan_ports);
    assert_int_equal(cfg.detect.scan_window_s, d.scan_window);
    assert_int_equal(cfg.detect.tunnel_names, d.tunnel_names);
    assert_int_equal(cfg.detect.tunnel_window_s, d.tunnel_window);
    assert_int_equal(cfg.detect.tunnel_label_len, d.tunnel_label_len);
    assert_true(cfg.detect.tunnel_entropy == d.tunnel_entropy);
    assert_int_equal(cfg.detect.feed_stale_hours * 3600, d.feed_stale_s);
    assert_int_equal(cfg.detect.disk_pct, d.disk_pct);
    assert_int_equal(cfg.detect.mem_pct, d.mem_pct);
    assert_int_equal(cfg.detect.restarts, d.restarts);
    assert_int_equal(cfg.detect.restart_window_s, d.restart_window);
    assert_int_equal(cfg.detect.auto_quarantine, 0);

    const char *repo = getenv("OTASUKE_REPO");
    char path[512];
    snprintf(path, sizeof path, "%s/appliance/etc/otasuke.conf", repo ? repo : ".");
    if (cfg_load(&cfg, path, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(cfg.detect.tunnel_names, d.tunnel_names);
    assert_true(cfg.detect.tunnel_entropy == d.tunnel_entropy);

    assert_int_equal(cfg_load_string(&cfg, "detect: {\n  tunnel_names = 8;\n  tunnel_entropy = 3;\n"
                                     "  scan_window_s = 30;\n  auto_quarantine = true;\n};\n",
                                     "t.conf", err, sizeof err), 0);
    assert_int_equal(cfg.detect.tunnel_names, 8);
    assert_true(cfg.detect.tunnel_entropy == 3.0);
    assert_int_equal(cfg.detect.scan_window_s, 30);
    assert_int_equal(cfg.detect.auto_quarantine, 1);
    assert_int_equal(cfg.detect.scan_hosts, d.scan_hosts);   /* untouched: default */

    assert_int_equal(cfg_load_string(&cfg, "detect: {\n  tunnel_entropy = 9.5;\n};\n", "t.conf",
                                     err, sizeof err), -1);
    assert_non_null(strstr(err, "t.conf:2: detect.tunnel_entropy"));
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(cfg.detect.tunnel_entropy == d.tunnel_entropy, 1);   /* defaults kept */
    assert_int_equal(cfg_load_string(&cfg, "detect: {\n\n  tunel_names = 5;\n};\n", "t.conf",
                                     err, sizeof err), -1);
    assert_non_null(strstr(err, "t.conf:3: unknown setting 'detect.tunel_names' (did you mean "
                            "'tunnel_names'?)"));
    assert_int_equal(cfg_load_string(&cfg, "detect: { scan_hosts = \"ten\"; };", "t.conf", err,
                                     sizeof err), -1);
    assert_non_null(strstr(err, "detect.scan_hosts: expected a whole number"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malware_domain),  cmocka_unit_test(test_c2_ip_and_doh),
        cmocka_unit_test(test_lateral_scan),    cmocka_unit_test(test_dns_tunnel),
        cmocka_unit_test(test_health_and_feed), cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_config_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
