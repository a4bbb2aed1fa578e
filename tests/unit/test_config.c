/* Config loading: the documented example loads, defaults are sane, and every kind of
 * mistake gives "file:line: what is wrong" while leaving the defaults in place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"

static char err[512];

/* Loads text and asserts it fails with exactly the expected message. */
static void expect_error(const char *text, const char *message)
{
    struct ota_config cfg;
    err[0] = '\0';
    assert_int_equal(cfg_load_string(&cfg, text, "t.conf", err, sizeof err), -1);
    assert_string_equal(err, message);
    /* nothing half-read survives a failure */
    struct ota_config def;
    cfg_defaults(&def);
    assert_memory_equal(&cfg, &def, sizeof cfg);
}

static void example_file_loads(void **state)
{
    (void)state;
    struct ota_config cfg;
    int rc = cfg_load(&cfg, "appliance/etc/otasuke.conf", err, sizeof err);
    if (rc != 0)
        fail_msg("example config: %s", err);
    assert_string_equal(cfg.source, "appliance/etc/otasuke.conf");
    assert_int_equal(cfg.n_zones, 4);
    const struct cfg_zone *lan = cfg_zone(&cfg, "lan");
    assert_non_null(lan);
    assert_string_equal(lan->interface, "eth1");
    assert_int_equal(lan->n_addresses, 2);
    assert_string_equal(lan->addresses[1], "fd00:0:0:1::1/64");
    assert_string_equal(lan->group, "staff");
    assert_true(lan->dhcp);
    assert_null(cfg_zone(&cfg, "dmz"));
    assert_int_equal(cfg.dns.n_listen, 2);
    assert_string_equal(cfg.dns.listen[1], "[::]:53");
    assert_int_equal(cfg.dns.rate_limit_qps, 200);
    assert_int_equal(cfg.firewall.confirm_timeout_s, 120);
    assert_false(cfg.hub.sharing);
    assert_int_equal(cfg.box.log_level, LOG_LEVEL_INFO);
}

static void example_matches_defaults(void **state)
{
    /* The example documents the defaults: apart from the zones and the source they agree. */
    (void)state;
    struct ota_config cfg, def;
    assert_int_equal(cfg_load(&cfg, "appliance/etc/otasuke.conf", err, sizeof err), 0);
    cfg_defaults(&def);
    assert_memory_equal(&cfg.box, &def.box, sizeof def.box);
    assert_memory_equal(&cfg.dns, &def.dns, sizeof def.dns);
    assert_memory_equal(&cfg.firewall, &def.firewall, sizeof def.firewall);
    assert_memory_equal(&cfg.agent, &def.agent, sizeof def.agent);
    assert_memory_equal(&cfg.web, &def.web, sizeof def.web);
    assert_memory_equal(&cfg.hub, &def.hub, sizeof def.hub);
}

static void empty_file_gives_defaults(void **state)
{
    (void)state;
    struct ota_config cfg;
    assert_int_equal(cfg_load_string(&cfg, "", "empty.conf", err, sizeof err), 0);
    assert_string_equal(cfg.dns.upstream, "127.0.0.1:5335");
    assert_string_equal(cfg.source, "empty.conf");
    assert_int_equal(cfg.n_zones, 0);
}

static void values_override_defaults(void **state)
{
    (void)state;
    struct ota_config cfg;
    const char *text =
        "box: { log_level = \"debug\"; name = \"shop-1\"; };\n"
        "dns: { listen = [\"192.0.2.1:53\", \"[fd00::1]:5353\"]; cache_entries = 0; };\n"
        "hub: { sharing = true; url = \"https://hub.example.test\"; };\n";
    assert_int_equal(cfg_load_string(&cfg, text, "t.conf", err, sizeof err), 0);
    assert_int_equal(cfg.box.log_level, LOG_LEVEL_DEBUG);
    assert_string_equal(cfg.box.name, "shop-1");
    assert_int_equal(cfg.dns.n_listen, 2);
    assert_string_equal(cfg.dns.listen[0], "192.0.2.1:53");
    assert_int_equal(cfg.dns.cache_entries, 0);
    assert_true(cfg.hub.sharing);
}

static void syntax_error(void **state)
{
    (void)state;
    expect_error("box: {\n  name = \"x\";\n  state_dir = ;\n};\n", "t.conf:3: syntax error: syntax error");
    expect_error("dns: { cache_entries = 1; cache_entries = 2; };",
                 "t.conf:1: syntax error: duplicate setting name");
}

static void missing_file(void **state)
{
    (void)state;
    struct ota_config cfg;
    assert_int_equal(cfg_load(&cfg, "/nonexistent/otasuke.conf", err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/otasuke.conf: cannot read: No such file or directory");
}

static void unknown_settings(void **state)
{
    (void)state;
    expect_error("dns: {\n listn = [\"1.2.3.4:53\"];\n};",
                 "t.conf:2: unknown setting 'dns.listn' (did you mean 'listen'?)");
    expect_error("dns: { frobnicate = 1; };", "t.conf:1: unknown setting 'dns.frobnicate'");
    expect_error("\n\nfirewal: { };", "t.conf:3: unknown setting 'firewal' (did you mean 'firewall'?)");
    expect_error("zones = ( { name = \"lan\"; interface = \"x\"; adresses = []; } );",
                 "t.conf:1: unknown setting 'zones[0].adresses' (did you mean 'addresses'?)");
}

static void wrong_types(void **state)
{
    (void)state;
    expect_error("dns: { cache_entries = \"many\"; };",
                 "t.conf:1: dns.cache_entries: expected a whole number, got a string");
    expect_error("dns: { upstream = 53; };",
                 "t.conf:1: dns.upstream: expected a string in quotes, got a number");
    expect_error("hub: { sharing = \"yes\"; };",
                 "t.conf:1: hub.sharing: expected true or false, got a string");
    expect_error("dns: { listen = \"0.0.0.0:53\"; };",
                 "t.conf:1: dns.listen: expected an array of strings [\"...\", ...], got a string");
    expect_error("dns: { listen = ( \"0.0.0.0:53\", 53 ); };",
                 "t.conf:1: dns.listen[1]: expected a string, got a number");
    expect_error("dns = 5;", "t.conf:1: dns: expected a group dns { ... }, got a number");
    expect_error("zones = 1;",
                 "t.conf:1: zones: expected a list of groups ( { name = \"lan\"; ... }, ... ), got a number");
    expect_error("zones = ( 1 );", "t.conf:1: zones[0]: expected a group { ... }, got a number");
    expect_error("box: { log_level = 3; };",
                 "t.conf:1: box.log_level: expected a string in quotes, got a number");
}

static void out_of_range(void **state)
{
    (void)state;
    expect_error("dns: { upstream_timeout_ms = 5; };",
                 "t.conf:1: dns.upstream_timeout_ms: 5 is out of range 50..60000");
    expect_error("firewall: {\n nflog_group = 70000;\n};",
                 "t.conf:2: firewall.nflog_group: 70000 is out of range 1..65535");
    expect_error("box: { log_level = \"loud\"; };",
                 "t.conf:1: box.log_level: 'loud' is not one of error|warn|info|debug");
    expect_error("dns: { listen = [\"a:1\",\"a:2\",\"a:3\",\"a:4\",\"a:5\",\"a:6\",\"a:7\",\"a:8\","
                 "\"a:9\",\"a:10\",\"a:11\",\"a:12\",\"a:13\",\"a:14\",\"a:15\",\"a:16\",\"a:17\"]; };",
                 "t.conf:1: dns.listen: at most 16 entries, got 17");
    char text[400];
    snprintf(text, sizeof text, "box: { name = \"%0100d\"; };", 0);
    expect_error(text, "t.conf:1: box.name: value is longer than 63 characters");
}

static void bad_addresses(void **state)
{
    (void)state;
    expect_error("dns: { upstream = \"127.0.0.1\"; };",
                 "t.conf:1: dns.upstream: expected ADDRESS:PORT, e.g. \"127.0.0.1:53\" or \"[::1]:53\"");
    expect_error("dns: { upstream = \"127.0.0.1:0\"; };",
                 "t.conf:1: dns.upstream: port '0' is not a number from 1 to 65535");
    expect_error("dns: { upstream = \"300.0.0.1:53\"; };",
                 "t.conf:1: dns.upstream: '300.0.0.1' is not an IPv4 address");
    expect_error("dns: { upstream = \"::1:53\"; };",
                 "t.conf:1: dns.upstream: expected ADDRESS:PORT, e.g. \"127.0.0.1:53\" or \"[::1]:53\"");
    expect_error("dns: { upstream = \"[::1]53\"; };",
                 "t.conf:1: dns.upstream: expected [IPv6]:PORT, e.g. \"[::1]:53\"");
    expect_error("dns: { upstream = \"[fe::zz]:53\"; };",
                 "t.conf:1: dns.upstream: 'fe::zz' is not an IPv6 address");
    expect_error("dns: { listen = [\"[::]:99999\"]; };",
                 "t.conf:1: dns.listen[0]: port '99999' is not a number from 1 to 65535");
    expect_error("zones = ( { name = \"lan\"; interface = \"e\"; addresses = [\"192.0.2.1\"]; } );",
                 "t.conf:1: zones[0].addresses[0]: expected ADDRESS/PREFIX, e.g. \"192.0.2.1/24\"");
    expect_error("zones = ( { name = \"lan\"; interface = \"e\"; addresses = [\"192.0.2.1/33\"]; } );",
                 "t.conf:1: zones[0].addresses[0]: prefix length '33' must be 0..32");
    expect_error("zones = ( { name = \"lan\"; interface = \"e\"; addresses = [\"fd00::g/64\"]; } );",
                 "t.conf:1: zones[0].addresses[0]: 'fd00::g' is not an IP address");
}

static void zone_rules(void **state)
{
    (void)state;
    expect_error("zones = (\n { interface = \"eth1\"; }\n);",
                 "t.conf:2: zones[0]: missing required setting 'name'");
    expect_error("zones = ( { name = \"dmz\"; interface = \"eth1\"; } );",
                 "t.conf:1: zones[0].name: 'dmz' is not one of lan|guest|iot|wan");
    expect_error("zones = (\n { name = \"lan\"; interface = \"a\"; },\n { name = \"lan\"; interface = \"b\"; }\n);",
                 "t.conf:3: zones[1]: zone 'lan' is defined twice");
    expect_error("zones = ( { name = \"lan\"; interface = \"a-very-long-interface-name\"; } );",
                 "t.conf:1: zones[0].interface: value is longer than 15 characters");
}

static void check_helpers(void **state)
{
    (void)state;
    char w[128];
    assert_int_equal(cfg_check_hostport("198.51.100.1:53", w, sizeof w), 0);
    assert_int_equal(cfg_check_hostport("[fd00:0:0:1::1]:853", w, sizeof w), 0);
    assert_int_equal(cfg_check_hostport("localhost:53", w, sizeof w), -1);
    assert_string_equal(w, "'localhost' is not an IPv4 address");
    assert_int_equal(cfg_check_cidr("0.0.0.0/0", w, sizeof w), 0);
    assert_int_equal(cfg_check_cidr("fd00::/8", w, sizeof w), 0);
    assert_int_equal(cfg_check_cidr("fd00::/", w, sizeof w), -1);
    assert_string_equal(w, "prefix length '' must be 0..128");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_file_loads),
        cmocka_unit_test(example_matches_defaults),
        cmocka_unit_test(empty_file_gives_defaults),
        cmocka_unit_test(values_override_defaults),
        cmocka_unit_test(syntax_error),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(unknown_settings),
        cmocka_unit_test(wrong_types),
        cmocka_unit_test(out_of_range),
        cmocka_unit_test(bad_addresses),
        cmocka_unit_test(zone_rules),
        cmocka_unit_test(check_helpers),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
