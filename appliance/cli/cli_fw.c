/* otasukectl fw: build and inspect the firewall artifact fw.set.
 *
 *   otasukectl fw build -o OUT [--config BOXCONF] [--block NAME=FILE]... [--zones CONF] [--doh FILE]
 *                       [--allow FILE] [--quarantine MAC|IP]... [--timeout SECS] [--strict]
 *   otasukectl fw show FILE
 *
 * --config takes the zones (name + interface), the IoT allowlist flag and the nflog group
 * from the box config (/etc/otasuke/otasuke.conf); a --zones file given too adds to it.
 * The zones file (libconfig):
 *   zones = { lan = ["eth1"]; guest = ["eth2"]; iot = ["eth3"]; wan = ["eth0"]; };
 *   nflog_group = 5; log_rate = 10; iot_allowlist_only = false;
 *   quarantine = ["02:00:00:00:00:01", "198.51.100.10"];
 *   doh = ["198.18.8.8"];
 */
#include "cli.h"
#include "config.h"
#include "fwset.h"
#include "iplist.h"

#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTS 32
#define MAX_QUAR 256

struct quar {
    uint8_t (*macs)[6];
    size_t nmac;
    struct iplist ips;
};

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

/* A MAC or an IP entry for quarantine. Returns 0 or a usage/failure status. */
static int add_quarantine(struct quar *q, const char *s, const char *where)
{
    uint8_t mac[6];
    if (parse_mac(s, mac) == 0) {
        if (q->nmac == MAX_QUAR)
            return cli_fail("%s: more than %d quarantined MACs", where, MAX_QUAR);
        memcpy(q->macs[q->nmac++], mac, 6);
        return 0;
    }
    char why[96];
    int fam = iplist_add_entry(&q->ips, s, why, sizeof why);
    if (!fam)
        return cli_fail("%s: quarantine entry '%s' is neither a MAC nor an address: %s", where, s, why);
    if (fam < 0)
        return cli_fail("out of memory");
    return 0;
}

/* Zones and nflog group from the box config. Returns 0 or an exit status. */
static int load_box_config(const char *path, struct fwset_opts *o)
{
    static struct ota_config cfg;
    char err[512];
    if (cfg_load(&cfg, path, err, sizeof err) < 0)
        return cli_fail("%s", err);
    for (int i = 0; i < cfg.n_zones; i++) {
        int z;
        for (z = 0; z < FWSET_ZONES; z++)
            if (strcmp(cfg.zones[i].name, fwset_zone_name(z)) == 0)
                break;
        if (z == FWSET_ZONES)
            return cli_fail("%s: zone '%s' is not one of lan, guest, iot, wan", path,
                            cfg.zones[i].name);
        snprintf(o->ifname[z][0], FWSET_IFNAMSIZ, "%s", cfg.zones[i].interface);
        if (z == FWSET_ZONE_IOT && cfg.zones[i].internet_allowlist_only)
            o->flags |= FWSET_F_IOT_ALLOWLIST;
    }
    o->nflog_group = (uint32_t)cfg.firewall.nflog_group;
    return 0;
}

static int load_zones(const char *path, struct fwset_opts *o, struct quar *q, struct iplist *doh)
{
    config_t cfg;
    config_init(&cfg);
    if (!config_read_file(&cfg, path)) {
        int rc = config_error_type(&cfg) == CONFIG_ERR_FILE_IO
                     ? cli_fail("%s: cannot read the zones file", path)
                     : cli_fail("%s:%d: %s", path, config_error_line(&cfg), config_error_text(&cfg));
        config_destroy(&cfg);
        return rc;
    }
    int rc = 0;
    for (int z = 0; z < FWSET_ZONES && !rc; z++) {
        char key[32];
        snprintf(key, sizeof key, "zones.%s", fwset_zone_name(z));
        config_setting_t *s = config_lookup(&cfg, key);
        if (!s)
            continue;
        if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
            rc = cli_fail("%s:%d: %s must be a list of interface names", path,
                          config_setting_source_line(s), key);
            break;
        }
        int n = config_setting_length(s);
        if (n > FWSET_MAX_IFACES) {
            rc = cli_fail("%s:%d: %s has %d interfaces, at most %d", path,
                          config_setting_source_line(s), key, n, FWSET_MAX_IFACES);
            break;
        }
        for (int i = 0; i < n; i++) {
            const char *name = config_setting_get_string_elem(s, i);
            if (!name || !*name || strlen(name) >= FWSET_IFNAMSIZ || strpbrk(name, " /\t")) {
                rc = cli_fail("%s:%d: %s[%d] is not an interface name (1-15 characters)",
                              path, config_setting_source_line(s), key, i);
                break;
            }
            snprintf(o->ifname[z][i], FWSET_IFNAMSIZ, "%s", name);
        }
    }
    int v;
    if (!rc && config_lookup_int(&cfg, "nflog_group", &v)) {
        if (v < 0 || v > 65535)
            rc = cli_fail("%s: nflog_group %d is not 0-65535", path, v);
        o->nflog_group = (uint32_t)v;
    }
    if (!rc && config_lookup_int(&cfg, "log_rate", &v)) {
        if (v < 1 || v > 100000)
            rc = cli_fail("%s: log_rate %d is not 1-100000 per second", path, v);
        o->log_rate = (uint32_t)v;
    }
    if (!rc && config_lookup_bool(&cfg, "iot_allowlist_only", &v) && v)
        o->flags |= FWSET_F_IOT_ALLOWLIST;
    config_setting_t *s = config_lookup(&cfg, "quarantine");
    for (int i = 0; !rc && s && i < config_setting_length(s); i++) {
        const char *e = config_setting_get_string_elem(s, i);
        char where[4200];
        snprintf(where, sizeof where, "%s:%d: quarantine[%d]", path, config_setting_source_line(s), i);
        rc = e ? add_quarantine(q, e, where) : cli_fail("%s: not a string", where);
    }
    s = config_lookup(&cfg, "doh");
    for (int i = 0; !rc && s && i < config_setting_length(s); i++) {
        const char *e = config_setting_get_string_elem(s, i);
        char why[96];
        int fam = e ? iplist_add_entry(doh, e, why, sizeof why) : 0;
        if (!fam)
            rc = cli_fail("%s:%d: doh[%d]: %s", path, config_setting_source_line(s), i,
                          e ? why : "not a string");
        else if (fam < 0)
            rc = cli_fail("out of memory");
    }
    config_destroy(&cfg);
    return rc;
}

/* Loads one list file, prints its bad lines, appends a JSON summary. */
static int load_list(const char *name, const char *path, struct iplist *l, int strict,
                     char *json, size_t jsonlen)
{
    char err[512];
    if (iplist_load_file(l, path, err, sizeof err) < 0)
        return cli_fail("%s", err);
    for (unsigned long i = 0; i < l->bad && i < IPL_MAX_BAD; i++)
        fprintf(stderr, "otasukectl: %s:%lu: %s\n", path, l->bads[i].line, l->bads[i].reason);
    if (l->bad > IPL_MAX_BAD)
        fprintf(stderr, "otasukectl: %s: %lu more bad lines not shown\n", path, l->bad - IPL_MAX_BAD);
    unsigned long entries = l->entries;
    iplist_normalize(l);
    size_t s4, r4, s6, r6;
    iplist_counts(l, &s4, &r4, &s6, &r6);
    size_t used = strlen(json);
    snprintf(json + used, jsonlen - used,
             "%s{\"name\":\"%s\",\"file\":\"%s\",\"lines\":%lu,\"entries\":%lu,\"bad_lines\":%lu,"
             "\"v4_single\":%zu,\"v4_range\":%zu,\"v6_single\":%zu,\"v6_range\":%zu}",
             used > 1 ? "," : "", name, path, l->lines, entries, l->bad, s4, r4, s6, r6);
    if (strict && l->bad)
        return cli_fail("%s: %lu bad lines (--strict)", path, l->bad);
    return 0;
}

static int fw_build(int argc, char **argv)
{
    static const struct option lo[] = {
        { "output", required_argument, NULL, 'o' },
        { "block", required_argument, NULL, 'b' },
        { "zones", required_argument, NULL, 'z' },
        { "config", required_argument, NULL, 'c' },
        { "doh", required_argument, NULL, 'd' },
        { "allow", required_argument, NULL, 'a' },
        { "quarantine", required_argument, NULL, 'q' },
        { "timeout", required_argument, NULL, 't' },
        { "strict", no_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    const char *out = NULL, *zones = NULL, *boxconf = NULL, *dohfile = NULL, *allowfile = NULL;
    const char *blocks[MAX_LISTS];
    int nblocks = 0, strict = 0;
    long timeout = 0;
    static uint8_t macs[MAX_QUAR][6];
    struct quar q = { macs, 0, { 0 } };
    struct iplist doh = { 0 }, allow = { 0 };
    int c, rc = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'b':
            if (nblocks == MAX_LISTS)
                return cli_usage("at most %d --block lists", MAX_LISTS);
            blocks[nblocks++] = optarg;
            break;
        case 'z': zones = optarg; break;
        case 'c': boxconf = optarg; break;
        case 'd': dohfile = optarg; break;
        case 'a': allowfile = optarg; break;
        case 'q':
            if ((rc = add_quarantine(&q, optarg, "--quarantine")))
                return rc;
            break;
        case 't': {
            char *end;
            timeout = strtol(optarg, &end, 10);
            if (*end || timeout < 0 || timeout > 365L * 86400)
                return cli_usage("--timeout: '%s' is not 0-31536000 seconds", optarg);
            break;
        }
        case 's': strict = 1; break;
        default:
            return cli_usage("fw build -o OUT [--block NAME=FILE]... [--zones CONF] [--doh FILE] "
                             "[--allow FILE] [--quarantine MAC|IP]... [--timeout SECS] [--strict]");
        }
    }
    if (!out || optind != argc)
        return cli_usage("fw build -o OUT [--block NAME=FILE]... [--zones CONF] ...");
    static struct fwset s; /* large: keep it off the stack */
    fwset_init(&s);
    if (boxconf && (rc = load_box_config(boxconf, &s.opts)))
        goto done;
    if (zones && (rc = load_zones(zones, &s.opts, &q, &doh)))
        goto done;
    char json[16384] = "[";
    char err[512];
    for (int i = 0; i < nblocks && !rc; i++) {
        char name[64];
        const char *eq = strchr(blocks[i], '=');
        if (!eq || eq == blocks[i] || !eq[1] || (size_t)(eq - blocks[i]) > 20) {
            rc = cli_usage("--block '%s': expected NAME=FILE with a name of 1-20 of a-z 0-9 _", blocks[i]);
            break;
        }
        snprintf(name, sizeof name, "blk_%.*s", (int)(eq - blocks[i]), blocks[i]);
        struct iplist l = { 0 };
        rc = load_list(name, eq + 1, &l, strict, json, sizeof json);
        if (!rc && fwset_add_iplist(&s, name, FWSET_KIND_BLOCK, &l, (uint32_t)timeout, err, sizeof err) < 0)
            rc = cli_fail("--block %s: %s", blocks[i], err);
        iplist_free(&l);
    }
    if (!rc && dohfile)
        rc = load_list("doh", dohfile, &doh, strict, json, sizeof json);
    if (!rc && allowfile)
        rc = load_list("allow", allowfile, &allow, strict, json, sizeof json);
    if (!rc) {
        iplist_normalize(&doh);
        iplist_normalize(&allow);
        iplist_normalize(&q.ips);
        if (fwset_add_iplist(&s, "doh", FWSET_KIND_DOH, &doh, 0, err, sizeof err) < 0 ||
            fwset_add_iplist(&s, "allow", FWSET_KIND_ALLOW, &allow, 0, err, sizeof err) < 0 ||
            fwset_add_iplist(&s, "quar", FWSET_KIND_QUARANTINE, &q.ips, 0, err, sizeof err) < 0 ||
            fwset_add_macs(&s, "quar_mac", FWSET_KIND_QUARANTINE, (const uint8_t(*)[6])q.macs,
                           q.nmac, err, sizeof err) < 0 ||
            fwset_write(&s, out, err, sizeof err) < 0)
            rc = cli_fail("%s", err);
    }
    if (!rc && !s.opts.ifname[FWSET_ZONE_WAN][0][0])
        fprintf(stderr, "otasukectl: warning: no wan interface (--zones): the box will forward "
                        "nothing and masquerade nothing\n");
    if (!rc)
        printf("{\"output\":\"%s\",\"sets\":%zu,\"elements\":%zu,\"lists\":%s]}\n", out, s.n_sets,
               fwset_total_elems(&s), json);
done:
    fwset_free(&s);
    iplist_free(&doh);
    iplist_free(&allow);
    iplist_free(&q.ips);
    return rc;
}

static int fw_show(int argc, char **argv)
{
    if (argc != 2)
        return cli_usage("fw show FILE");
    static struct fwset s;
    char err[512];
    if (fwset_open(&s, argv[1], err, sizeof err) < 0)
        return cli_fail("%s", err);
    printf("{\"file\":\"%s\",\"zones\":{", argv[1]);
    for (int z = 0; z < FWSET_ZONES; z++) {
        printf("%s\"%s\":[", z ? "," : "", fwset_zone_name(z));
        for (int i = 0; i < FWSET_MAX_IFACES && s.opts.ifname[z][i][0]; i++)
            printf("%s\"%s\"", i ? "," : "", s.opts.ifname[z][i]);
        printf("]");
    }
    printf("},\"nflog_group\":%u,\"log_rate\":%u,\"iot_allowlist_only\":%s,\"sets\":[",
           s.opts.nflog_group, s.opts.log_rate,
           (s.opts.flags & FWSET_F_IOT_ALLOWLIST) ? "true" : "false");
    for (size_t i = 0; i < s.n_sets; i++)
        printf("%s{\"name\":\"%s\",\"kind\":\"%s\",\"type\":%u,\"timeout\":%u,\"elements\":%zu}",
               i ? "," : "", s.sets[i].name, fwset_kind_name(s.sets[i].kind), s.sets[i].etype,
               s.sets[i].timeout, s.sets[i].count);
    printf("]}\n");
    fwset_free(&s);
    return 0;
}

int cli_fw(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "help") == 0) {
        FILE *o = argc < 1 ? stderr : stdout;
        fprintf(o, "usage: otasukectl fw build -o OUT [--config BOXCONF] [--block NAME=FILE]...\n"
                   "                           [--zones CONF]\n"
                   "                           [--doh FILE] [--allow FILE] [--quarantine MAC|IP]...\n"
                   "                           [--timeout SECS] [--strict]\n"
                   "       otasukectl fw show FILE\n");
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "build") == 0)
        return fw_build(argc, argv);
    if (strcmp(argv[0], "show") == 0)
        return fw_show(argc, argv);
    return cli_usage("fw: unknown subcommand '%s' (build, show)", argv[0]);
}
