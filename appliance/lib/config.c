/* Config loading: libconfig does the syntax, a schema table here does the meaning.
 *
 * The schema is data, not code: one row per setting with its type, where it lands in
 * struct ota_config, its limits and an optional check. Validation walks the file, not the
 * schema, so every setting a person wrote is looked at — an unknown one is a typo until
 * proven otherwise, and we say which known name it probably meant. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum cfg_type { T_STR, T_INT, T_BOOL, T_STRLIST, T_LOGLEVEL, T_ZONES, T_FLOAT };

struct cfg_field {
    const char *name;
    enum cfg_type type;
    size_t offset;                /* into the struct being filled */
    size_t size;                  /* T_STR: buffer size; T_STRLIST: bytes per item */
    size_t count_offset;          /* T_STRLIST: where the item count goes */
    int max_items;                /* T_STRLIST */
    long min, max;                /* T_INT */
    double fmin, fmax;            /* T_FLOAT */
    const char *const *choices;   /* T_STR: allowed values, NULL-terminated */
    int (*check)(const char *value, char *why, size_t whylen);
    int required;
};

struct cfg_section {
    const char *name;             /* NULL = top level */
    const struct cfg_field *fields;
};

#define OFF(member) offsetof(struct ota_config, member)
#define ZOFF(member) offsetof(struct cfg_zone, member)
#define STR(n, m, ...) { .name = n, .type = T_STR, .offset = OFF(m), \
                         .size = sizeof(((struct ota_config *)0)->m), __VA_ARGS__ }
#define INT(n, m, lo, hi) { .name = n, .type = T_INT, .offset = OFF(m), .min = lo, .max = hi }
#define BOOL(n, m) { .name = n, .type = T_BOOL, .offset = OFF(m) }
#define FLOAT(n, m, lo, hi) { .name = n, .type = T_FLOAT, .offset = OFF(m), .fmin = lo, .fmax = hi }
#define LIST(n, m, cnt, ...) { .name = n, .type = T_STRLIST, .offset = OFF(m),           \
                               .size = sizeof(((struct ota_config *)0)->m[0]),            \
                               .count_offset = OFF(cnt),                                  \
                               .max_items = sizeof(((struct ota_config *)0)->m) /         \
                                            sizeof(((struct ota_config *)0)->m[0]),       \
                               __VA_ARGS__ }

static const char *const zone_names[] = { "lan", "guest", "iot", "wan", NULL };

static const struct cfg_field box_fields[] = {
    STR("name", box.name),
    STR("state_dir", box.state_dir),
    STR("run_dir", box.run_dir),
    { .name = "log_level", .type = T_LOGLEVEL, .offset = OFF(box.log_level) },
    { 0 }
};

static const struct cfg_field dns_fields[] = {
    LIST("listen", dns.listen, dns.n_listen, .check = cfg_check_hostport),
    STR("upstream", dns.upstream, .check = cfg_check_hostport),
    STR("domains", dns.domains),
    STR("policy", dns.policy),
    STR("events", dns.events),
    STR("control", dns.control),
    STR("user", dns.user),
    INT("upstream_timeout_ms", dns.upstream_timeout_ms, 50, 60000),
    INT("cache_entries", dns.cache_entries, 0, 10000000),
    INT("rate_limit_qps", dns.rate_limit_qps, 0, 1000000),
    INT("rate_limit_burst", dns.rate_limit_burst, 0, 1000000),
    { 0 }
};

static const struct cfg_field firewall_fields[] = {
    STR("artifact", firewall.artifact),
    STR("state_dir", firewall.state_dir),
    STR("events", firewall.events),
    STR("control", firewall.control),
    INT("confirm_timeout_s", firewall.confirm_timeout_s, 10, 86400),
    INT("nflog_group", firewall.nflog_group, 1, 65535),
    { 0 }
};

static const struct cfg_field agent_fields[] = {
    STR("socket", agent.socket),
    STR("database", agent.database),
    STR("user", agent.user),
    { 0 }
};

static const struct cfg_field web_fields[] = {
    LIST("listen", web.listen, web.n_listen, .check = cfg_check_hostport),
    LIST("blockpage_listen", web.blockpage_listen, web.n_blockpage_listen,
         .check = cfg_check_hostport),
    STR("cert", web.cert),
    STR("key", web.key),
    STR("user", web.user),
    { 0 }
};

static const struct cfg_field hub_fields[] = {
    STR("url", hub.url),
    STR("ca_file", hub.ca_file),
    BOOL("sharing", hub.sharing),
    { 0 }
};

static const struct cfg_field detect_fields[] = {
    /* counts: at most 64, what the agent's detector remembers (DETECT_MAX_COUNT) */
    INT("scan_hosts", detect.scan_hosts, 2, 64),
    INT("scan_ports", detect.scan_ports, 2, 64),
    INT("scan_window_s", detect.scan_window_s, 1, 86400),
    INT("tunnel_names", detect.tunnel_names, 2, 64),
    INT("tunnel_window_s", detect.tunnel_window_s, 1, 86400),
    INT("tunnel_label_len", detect.tunnel_label_len, 8, 63),
    FLOAT("tunnel_entropy", detect.tunnel_entropy, 1.0, 6.0),
    INT("feed_stale_hours", detect.feed_stale_hours, 1, 8760),
    INT("disk_pct", detect.disk_pct, 50, 100),
    INT("mem_pct", detect.mem_pct, 50, 100),
    INT("restarts", detect.restarts, 1, 1000),
    INT("restart_window_s", detect.restart_window_s, 10, 86400),
    BOOL("auto_quarantine", detect.auto_quarantine),
    { 0 }
};

/* One zone: offsets here are into struct cfg_zone. */
static const struct cfg_field zone_fields[] = {
    { .name = "name", .type = T_STR, .offset = ZOFF(name),
      .size = sizeof(((struct cfg_zone *)0)->name), .choices = zone_names, .required = 1 },
    { .name = "interface", .type = T_STR, .offset = ZOFF(interface),
      .size = sizeof(((struct cfg_zone *)0)->interface), .required = 1 },
    { .name = "addresses", .type = T_STRLIST, .offset = ZOFF(addresses),
      .size = sizeof(((struct cfg_zone *)0)->addresses[0]),
      .count_offset = ZOFF(n_addresses), .max_items = CFG_MAX_ZONE_ADDRS,
      .check = cfg_check_cidr },
    { .name = "group", .type = T_STR, .offset = ZOFF(group),
      .size = sizeof(((struct cfg_zone *)0)->group) },
    { .name = "dhcp", .type = T_BOOL, .offset = ZOFF(dhcp) },
    { .name = "internet_allowlist_only", .type = T_BOOL, .offset = ZOFF(internet_allowlist_only) },
    { 0 }
};

static const struct cfg_field top_fields[] = {
    { .name = "zones", .type = T_ZONES },
    { 0 }
};

static const struct cfg_section sections[] = {
    { NULL, top_fields },
    { "box", box_fields },
    { "dns", dns_fields },
    { "firewall", firewall_fields },
    { "agent", agent_fields },
    { "web", web_fields },
    { "hub", hub_fields },
    { "detect", detect_fields },
};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

void cfg_defaults(struct ota_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    copy(cfg->source, sizeof cfg->source, "(built-in defaults)");
    copy(cfg->box.name, sizeof cfg->box.name, "otasuke");
    copy(cfg->box.state_dir, sizeof cfg->box.state_dir, "/var/lib/otasuke");
    copy(cfg->box.run_dir, sizeof cfg->box.run_dir, "/run/otasuke");
    cfg->box.log_level = LOG_LEVEL_INFO;

    cfg->dns.n_listen = 2;
    copy(cfg->dns.listen[0], CFG_ADDR_MAX, "0.0.0.0:53");
    copy(cfg->dns.listen[1], CFG_ADDR_MAX, "[::]:53");
    copy(cfg->dns.upstream, sizeof cfg->dns.upstream, "127.0.0.1:5335");
    copy(cfg->dns.domains, sizeof cfg->dns.domains, "/var/lib/otasuke/domains.set");
    copy(cfg->dns.policy, sizeof cfg->dns.policy, "/var/lib/otasuke/policy.set");
    copy(cfg->dns.events, sizeof cfg->dns.events, "/run/otasuke/agent-events.sock");
    copy(cfg->dns.control, sizeof cfg->dns.control, "/run/otasuke/dnsd.ctl");
    copy(cfg->dns.user, sizeof cfg->dns.user, "otasuke-dns");
    cfg->dns.upstream_timeout_ms = 2000;
    cfg->dns.cache_entries = 20000;
    cfg->dns.rate_limit_qps = 200;
    cfg->dns.rate_limit_burst = 400;

    copy(cfg->firewall.artifact, sizeof cfg->firewall.artifact, "/var/lib/otasuke/fw.set");
    copy(cfg->firewall.state_dir, sizeof cfg->firewall.state_dir, "/var/lib/otasuke/fwd");
    copy(cfg->firewall.events, sizeof cfg->firewall.events, "/run/otasuke/agent-events.sock");
    copy(cfg->firewall.control, sizeof cfg->firewall.control, "/run/otasuke/fwd.ctl");
    cfg->firewall.confirm_timeout_s = 120;
    cfg->firewall.nflog_group = 5;

    copy(cfg->agent.socket, sizeof cfg->agent.socket, "/run/otasuke/agent.sock");
    copy(cfg->agent.database, sizeof cfg->agent.database, "/var/lib/otasuke/agent.db");
    copy(cfg->agent.user, sizeof cfg->agent.user, "otasuke");

    /* IPv6 sockets are v6-only in every daemon, so IPv4 gets its own listener. */
    cfg->web.n_listen = 2;
    copy(cfg->web.listen[0], CFG_ADDR_MAX, "0.0.0.0:443");
    copy(cfg->web.listen[1], CFG_ADDR_MAX, "[::]:443");
    cfg->web.n_blockpage_listen = 2;
    copy(cfg->web.blockpage_listen[0], CFG_ADDR_MAX, "0.0.0.0:80");
    copy(cfg->web.blockpage_listen[1], CFG_ADDR_MAX, "[::]:80");
    copy(cfg->web.cert, sizeof cfg->web.cert, "/var/lib/otasuke/web/cert.pem");
    copy(cfg->web.key, sizeof cfg->web.key, "/var/lib/otasuke/web/key.pem");
    copy(cfg->web.user, sizeof cfg->web.user, "otasuke-web");

    /* The same values as detect_cfg_defaults (test_detect checks they agree). */
    cfg->detect.scan_hosts = 10;
    cfg->detect.scan_ports = 15;
    cfg->detect.scan_window_s = 60;
    cfg->detect.tunnel_names = 20;
    cfg->detect.tunnel_window_s = 120;
    cfg->detect.tunnel_label_len = 30;
    cfg->detect.tunnel_entropy = 3.5;
    cfg->detect.feed_stale_hours = 48;
    cfg->detect.disk_pct = 90;
    cfg->detect.mem_pct = 90;
    cfg->detect.restarts = 3;
    cfg->detect.restart_window_s = 600;
    cfg->detect.auto_quarantine = 0;
}

/* ---- value checks -------------------------------------------------------- */

static int why(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_port(const char *s, char *w, size_t wl)
{
    char *end;
    errno = 0;
    long port = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || port < 1 || port > 65535)
        return why(w, wl, "port '%s' is not a number from 1 to 65535", s);
    return 0;
}

int cfg_check_hostport(const char *value, char *w, size_t wl)
{
    char host[CFG_ADDR_MAX];
    unsigned char addr[16];
    const char *colon;

    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (!close || close[1] != ':')
            return why(w, wl, "expected [IPv6]:PORT, e.g. \"[::1]:53\"");
        size_t n = (size_t)(close - value - 1);
        if (n >= sizeof host)
            return why(w, wl, "address too long");
        memcpy(host, value + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, addr) != 1)
            return why(w, wl, "'%s' is not an IPv6 address", host);
        return parse_port(close + 2, w, wl);
    }
    colon = strrchr(value, ':');
    if (!colon || strchr(value, ':') != colon)
        return why(w, wl, "expected ADDRESS:PORT, e.g. \"127.0.0.1:53\" or \"[::1]:53\"");
    size_t n = (size_t)(colon - value);
    if (n >= sizeof host)
        return why(w, wl, "address too long");
    memcpy(host, value, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, addr) != 1)
        return why(w, wl, "'%s' is not an IPv4 address", host);
    return parse_port(colon + 1, w, wl);
}

int cfg_check_cidr(const char *value, char *w, size_t wl)
{
    char host[CFG_ADDR_MAX];
    unsigned char addr[16];
    const char *slash = strchr(value, '/');
    if (!slash)
        return why(w, wl, "expected ADDRESS/PREFIX, e.g. \"192.0.2.1/24\"");
    size_t n = (size_t)(slash - value);
    if (n >= sizeof host)
        return why(w, wl, "address too long");
    memcpy(host, value, n);
    host[n] = '\0';
    int family = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(family, host, addr) != 1)
        return why(w, wl, "'%s' is not an IP address", host);
    char *end;
    errno = 0;
    long len = strtol(slash + 1, &end, 10);
    long maxlen = family == AF_INET6 ? 128 : 32;
    if (slash[1] == '\0' || *end != '\0' || errno || len < 0 || len > maxlen)
        return why(w, wl, "prefix length '%s' must be 0..%ld", slash + 1, maxlen);
    return 0;
}

/* ---- validation ---------------------------------------------------------- */

struct cfg_ctx {
    const char *file;
    char *err;
    size_t errlen;
};

/* Formats "file:line: message" for the setting s (line 0 when libconfig has none). */
static int fail(struct cfg_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (line)
        snprintf(ctx->err, ctx->errlen, "%s:%u: %s", ctx->file, line, msg);
    else
        snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->file, msg);
    return -1;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Suggests the closest known name for a typo, or NULL when nothing is close. */
static const char *closest(const char *name, const char *const *known, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, known[i]);
        if (d < best_d) {
            best_d = d;
            best = known[i];
        }
    }
    return best;
}

static int unknown_setting(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                           const struct cfg_field *fields)
{
    const char *known[32];
    size_t n = 0;
    for (const struct cfg_field *f = fields; f->name && n < 32; f++)
        known[n++] = f->name;
    if (!where)
        for (size_t i = 1; i < N_SECTIONS && n < 32; i++)
            known[n++] = sections[i].name;
    const char *hint = closest(config_setting_name(s), known, n);
    if (hint)
        return fail(ctx, s, "unknown setting '%s%s%s' (did you mean '%s'?)", where ? where : "",
                    where ? "." : "", config_setting_name(s), hint);
    return fail(ctx, s, "unknown setting '%s%s%s'", where ? where : "", where ? "." : "",
                config_setting_name(s));
}

static const char *type_name(int t)
{
    switch (t) {
    case CONFIG_TYPE_GROUP: return "a group { ... }";
    case CONFIG_TYPE_INT: case CONFIG_TYPE_INT64: return "a number";
    case CONFIG_TYPE_FLOAT: return "a decimal number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "true/false";
    case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
    case CONFIG_TYPE_LIST: return "a list ( ... )";
    default: return "something else";
    }
}

static int check_string(struct cfg_ctx *ctx, const config_setting_t *s, const char *path,
                        const struct cfg_field *f, const char *v, size_t size)
{
    char w[200];
    if (strlen(v) >= size)
        return fail(ctx, s, "%s: value is longer than %zu characters", path, size - 1);
    if (f->choices) {
        int ok = 0;
        char list[160] = "";
        for (const char *const *c = f->choices; *c; c++) {
            ok |= strcmp(v, *c) == 0;
            strncat(list, *c, sizeof list - strlen(list) - 2);
            if (c[1])
                strncat(list, "|", sizeof list - strlen(list) - 1);
        }
        if (!ok)
            return fail(ctx, s, "%s: '%s' is not one of %s", path, v, list);
    }
    if (f->check && f->check(v, w, sizeof w) < 0)
        return fail(ctx, s, "%s: %s", path, w);
    return 0;
}

static int apply_zones(struct cfg_ctx *ctx, const config_setting_t *s, struct ota_config *cfg);

/* Validates one setting against its field row and stores it into base. */
static int apply_field(struct cfg_ctx *ctx, const config_setting_t *s, const char *section,
                       const struct cfg_field *f, void *base, struct ota_config *cfg)
{
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", section ? section : "", section ? "." : "", f->name);
    int t = config_setting_type(s);
    char *dst = (char *)base + f->offset;

    switch (f->type) {
    case T_STR:
        if (t != CONFIG_TYPE_STRING)
            return fail(ctx, s, "%s: expected a string in quotes, got %s", path, type_name(t));
        if (check_string(ctx, s, path, f, config_setting_get_string(s), f->size) < 0)
            return -1;
        copy(dst, f->size, config_setting_get_string(s));
        return 0;
    case T_INT: {
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
            return fail(ctx, s, "%s: expected a whole number, got %s", path, type_name(t));
        long long v = config_setting_get_int64(s);
        if (v < f->min || v > f->max)
            return fail(ctx, s, "%s: %lld is out of range %ld..%ld", path, v, f->min, f->max);
        *(int *)(void *)dst = (int)v;
        return 0;
    }
    case T_FLOAT: {
        if (t != CONFIG_TYPE_FLOAT && t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
            return fail(ctx, s, "%s: expected a number such as 3.5, got %s", path, type_name(t));
        double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                                          : (double)config_setting_get_int64(s);
        if (!(v >= f->fmin && v <= f->fmax))
            return fail(ctx, s, "%s: %g is out of range %g..%g", path, v, f->fmin, f->fmax);
        *(double *)(void *)dst = v;
        return 0;
    }
    case T_BOOL:
        if (t != CONFIG_TYPE_BOOL)
            return fail(ctx, s, "%s: expected true or false, got %s", path, type_name(t));
        *(int *)(void *)dst = config_setting_get_bool(s);
        return 0;
    case T_LOGLEVEL: {
        enum log_level lv;
        if (t != CONFIG_TYPE_STRING)
            return fail(ctx, s, "%s: expected a string in quotes, got %s", path, type_name(t));
        if (log_level_parse(config_setting_get_string(s), &lv) < 0)
            return fail(ctx, s, "%s: '%s' is not one of error|warn|info|debug", path,
                        config_setting_get_string(s));
        *(enum log_level *)(void *)dst = lv;
        return 0;
    }
    case T_STRLIST: {
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
            return fail(ctx, s, "%s: expected an array of strings [\"...\", ...], got %s", path,
                        type_name(t));
        int n = config_setting_length(s);
        if (n > f->max_items)
            return fail(ctx, s, "%s: at most %d entries, got %d", path, f->max_items, n);
        for (int i = 0; i < n; i++) {
            const config_setting_t *item = config_setting_get_elem(s, (unsigned)i);
            char ipath[112];
            snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
            if (config_setting_type(item) != CONFIG_TYPE_STRING)
                return fail(ctx, item, "%s: expected a string, got %s", ipath,
                            type_name(config_setting_type(item)));
            if (check_string(ctx, item, ipath, f, config_setting_get_string(item), f->size) < 0)
                return -1;
            copy(dst + (size_t)i * f->size, f->size, config_setting_get_string(item));
        }
        *(int *)(void *)((char *)base + f->count_offset) = n;
        return 0;
    }
    case T_ZONES:
        return apply_zones(ctx, s, cfg);
    }
    return fail(ctx, s, "%s: internal error: unhandled type", path);
}

/* Walks the settings of one group and applies each through fields. */
static int apply_group(struct cfg_ctx *ctx, const config_setting_t *group, const char *where,
                       const struct cfg_field *fields, void *base, struct ota_config *cfg)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const struct cfg_field *f = fields;
        while (f->name && strcmp(f->name, config_setting_name(s)) != 0)
            f++;
        if (!f->name)
            return unknown_setting(ctx, s, where, fields);
        if (apply_field(ctx, s, where, f, base, cfg) < 0)
            return -1;
    }
    for (const struct cfg_field *f = fields; f->name; f++)
        if (f->required && !config_setting_get_member(group, f->name))
            return fail(ctx, group, "%s: missing required setting '%s'", where ? where : "(top)",
                        f->name);
    return 0;
}

static int apply_zones(struct cfg_ctx *ctx, const config_setting_t *s, struct ota_config *cfg)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_LIST)
        return fail(ctx, s, "zones: expected a list of groups ( { name = \"lan\"; ... }, ... ), got %s",
                    type_name(t));
    int n = config_setting_length(s);
    if (n > CFG_MAX_ZONES)
        return fail(ctx, s, "zones: at most %d zones, got %d", CFG_MAX_ZONES, n);
    for (int i = 0; i < n; i++) {
        const config_setting_t *z = config_setting_get_elem(s, (unsigned)i);
        char where[32];
        snprintf(where, sizeof where, "zones[%d]", i);
        if (config_setting_type(z) != CONFIG_TYPE_GROUP)
            return fail(ctx, z, "%s: expected a group { ... }, got %s", where,
                        type_name(config_setting_type(z)));
        struct cfg_zone *zone = &cfg->zones[i];
        memset(zone, 0, sizeof *zone);
        if (apply_group(ctx, z, where, zone_fields, zone, cfg) < 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(cfg->zones[j].name, zone->name) == 0)
                return fail(ctx, z, "%s: zone '%s' is defined twice", where, zone->name);
    }
    cfg->n_zones = n;
    return 0;
}

static int validate(struct cfg_ctx *ctx, config_t *lc, struct ota_config *cfg)
{
    const config_setting_t *root = config_root_setting(lc);
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct cfg_section *sec = NULL;
        for (size_t k = 1; k < N_SECTIONS; k++)
            if (strcmp(sections[k].name, name) == 0)
                sec = &sections[k];
        if (!sec) {
            const struct cfg_field *f = top_fields;
            while (f->name && strcmp(f->name, name) != 0)
                f++;
            if (!f->name)
                return unknown_setting(ctx, s, NULL, top_fields);
            if (apply_field(ctx, s, NULL, f, cfg, cfg) < 0)
                return -1;
            continue;
        }
        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
            return fail(ctx, s, "%s: expected a group %s { ... }, got %s", name, name,
                        type_name(config_setting_type(s)));
        if (apply_group(ctx, s, name, sec->fields, cfg, cfg) < 0)
            return -1;
    }
    return 0;
}

static int load(struct ota_config *cfg, const char *path, const char *text, const char *name,
                char *err, size_t errlen)
{
    config_t lc;
    struct ota_config fresh;
    struct cfg_ctx ctx = { .file = name, .err = err, .errlen = errlen };
    int rc;

    cfg_defaults(&fresh);
    copy(fresh.source, sizeof fresh.source, name);
    config_init(&lc);
    rc = path ? config_read_file(&lc, path) : config_read_string(&lc, text);
    if (rc != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read: %s", name, strerror(errno ? errno : ENOENT));
        else
            snprintf(err, errlen, "%s:%d: syntax error: %s", name, config_error_line(&lc),
                     config_error_text(&lc));
        config_destroy(&lc);
        cfg_defaults(cfg);
        return -1;
    }
    rc = validate(&ctx, &lc, &fresh);
    config_destroy(&lc);
    if (rc < 0) {
        cfg_defaults(cfg);
        return -1;
    }
    *cfg = fresh;
    return 0;
}

int cfg_load(struct ota_config *cfg, const char *path, char *err, size_t errlen)
{
    return load(cfg, path, NULL, path, err, errlen);
}

int cfg_load_string(struct ota_config *cfg, const char *text, const char *name,
                    char *err, size_t errlen)
{
    return load(cfg, NULL, text, name, err, errlen);
}

const struct cfg_zone *cfg_zone(const struct ota_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_zones; i++)
        if (strcmp(cfg->zones[i].name, name) == 0)
            return &cfg->zones[i];
    return NULL;
}
