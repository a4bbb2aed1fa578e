/* The box's wiring: /etc/otasuke/otasuke.conf (libconfig syntax).
 *
 * Every daemon reads the same file and uses its own section. The file is checked against
 * a schema before anything is used: unknown settings (typos), wrong types, values out of
 * range and missing required settings are all reported as "file:line: what is wrong", so
 * a person can fix the line. Owner policy is not here — it lives in the agent's database.
 * See appliance/etc/otasuke.conf for the documented example. */
#ifndef OTASUKE_CONFIG_H
#define OTASUKE_CONFIG_H

#include <stddef.h>

#include "log.h"

#define CFG_PATH_DEFAULT "/etc/otasuke/otasuke.conf"
#define CFG_PATH_MAX     256
#define CFG_ADDR_MAX     64   /* "[ffff:...:ffff]:65535" or a CIDR */
#define CFG_NAME_MAX     32
#define CFG_MAX_LISTEN   16
#define CFG_MAX_ZONES    8
#define CFG_MAX_ZONE_ADDRS 4

struct cfg_zone {
    char name[CFG_NAME_MAX];        /* lan | guest | iot | wan */
    char interface[16];             /* IFNAMSIZ */
    char addresses[CFG_MAX_ZONE_ADDRS][CFG_ADDR_MAX]; /* the box's own, as CIDR */
    int n_addresses;
    char group[CFG_NAME_MAX];       /* default policy group for clients in this zone */
    int dhcp;                       /* serve DHCP on this zone */
    int internet_allowlist_only;    /* iot: only allowlisted destinations on the internet */
};

struct ota_config {
    char source[CFG_PATH_MAX];      /* file the values came from, for messages */

    struct {
        char name[64];
        char state_dir[CFG_PATH_MAX];
        char run_dir[CFG_PATH_MAX];
        enum log_level log_level;
    } box;

    struct cfg_zone zones[CFG_MAX_ZONES];
    int n_zones;

    struct {
        char listen[CFG_MAX_LISTEN][CFG_ADDR_MAX];
        int n_listen;
        char upstream[CFG_ADDR_MAX];
        char domains[CFG_PATH_MAX];
        char policy[CFG_PATH_MAX];
        char events[CFG_PATH_MAX];
        char control[CFG_PATH_MAX];
        char user[CFG_NAME_MAX];
        int upstream_timeout_ms;
        int cache_entries;
        int rate_limit_qps;
        int rate_limit_burst;
    } dns;

    struct {
        char artifact[CFG_PATH_MAX];
        char state_dir[CFG_PATH_MAX];
        char events[CFG_PATH_MAX];
        char control[CFG_PATH_MAX];
        int confirm_timeout_s;
        int nflog_group;
    } firewall;

    struct {
        char socket[CFG_PATH_MAX];
        char database[CFG_PATH_MAX];
        char user[CFG_NAME_MAX];
    } agent;

    struct {
        char listen[CFG_MAX_LISTEN][CFG_ADDR_MAX];
        int n_listen;
        char blockpage_listen[CFG_MAX_LISTEN][CFG_ADDR_MAX];
        int n_blockpage_listen;
        char cert[CFG_PATH_MAX];
        char key[CFG_PATH_MAX];
        char user[CFG_NAME_MAX];
    } web;

    struct {
        char url[CFG_PATH_MAX];
        char ca_file[CFG_PATH_MAX];
        int sharing;                /* contribute indicators: owner opt-in, off by default */
    } hub;

    /* Incident detectors (services/agent/detect.h explains each); the owner's settings
     * (detect_* and auto_quarantine via the API) override these at run time. */
    struct {
        int scan_hosts, scan_ports, scan_window_s;
        int tunnel_names, tunnel_window_s, tunnel_label_len;
        double tunnel_entropy;
        int feed_stale_hours, disk_pct, mem_pct, restarts, restart_window_s;
        int auto_quarantine;        /* quarantine on near-certain C2: owner opt-in */
    } detect;
};

/* Fills cfg with the built-in defaults (what the box uses with no file at all). */
void cfg_defaults(struct ota_config *cfg);

/* Reads and validates path into cfg (which starts from the defaults).
 * Returns 0, or -1 with err = "path:line: what is wrong" (the first problem found).
 * On failure cfg holds the defaults, never a half-read file. */
int cfg_load(struct ota_config *cfg, const char *path, char *err, size_t errlen);

/* The same for text in memory; name is used in messages in place of a file name. */
int cfg_load_string(struct ota_config *cfg, const char *text, const char *name,
                    char *err, size_t errlen);

/* Finds a zone by name; NULL when the config has none. */
const struct cfg_zone *cfg_zone(const struct ota_config *cfg, const char *name);

/* Checks "ADDR:PORT" / "[V6]:PORT". Returns 0, or -1 with why filled. */
int cfg_check_hostport(const char *value, char *why, size_t whylen);
/* Checks "ADDR/LEN" (v4 or v6). Returns 0, or -1 with why filled. */
int cfg_check_cidr(const char *value, char *why, size_t whylen);

#endif
