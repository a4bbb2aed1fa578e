/* Wiring of the detectors into the running agent: every event datagram goes through
 * detect.c, findings become incidents, new incidents notify the owner, and high-confidence
 * C2 quarantines the device at once when the owner enabled auto_quarantine. */
#include "agentd.h"
#include "atomicfile.h"
#include "config.h"
#include "help.h"
#include "hubshare.h"
#include "incidents.h"
#include "log.h"
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

static struct detect_state *det;   /* one agent, one event stream */

/* Thresholds: built-in defaults, then otasuke.conf's detect section (cfg, may be NULL),
 * then the owner's run-time settings (detect_<name>), which win. */
static void load_cfg(sqlite3 *db, const struct ota_config *cfg, struct detect_cfg *c)
{
    detect_cfg_defaults(c);
    if (cfg) {
        c->scan_hosts = cfg->detect.scan_hosts;
        c->scan_ports = cfg->detect.scan_ports;
        c->scan_window = cfg->detect.scan_window_s;
        c->tunnel_names = cfg->detect.tunnel_names;
        c->tunnel_window = cfg->detect.tunnel_window_s;
        c->tunnel_label_len = cfg->detect.tunnel_label_len;
        c->tunnel_entropy = cfg->detect.tunnel_entropy;
        c->feed_stale_s = cfg->detect.feed_stale_hours * 3600;
        c->disk_pct = cfg->detect.disk_pct;
        c->mem_pct = cfg->detect.mem_pct;
        c->restarts = cfg->detect.restarts;
        c->restart_window = cfg->detect.restart_window_s;
    }
    struct { const char *key; int *v; } ints[] = {
        { "detect_scan_hosts", &c->scan_hosts }, { "detect_scan_ports", &c->scan_ports },
        { "detect_scan_window", &c->scan_window }, { "detect_tunnel_names", &c->tunnel_names },
        { "detect_tunnel_window", &c->tunnel_window },
        { "detect_tunnel_label_len", &c->tunnel_label_len },
        { "detect_feed_stale", &c->feed_stale_s }, { "detect_disk_pct", &c->disk_pct },
        { "detect_mem_pct", &c->mem_pct }, { "detect_restarts", &c->restarts },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?", -1, &st, NULL) != SQLITE_OK)
            continue;
        sqlite3_bind_text(st, 1, ints[i].key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            int v = atoi((const char *)sqlite3_column_text(st, 0));
            if (v > 0)
                *ints[i].v = v;
            else
                log_warn("setting %s: '%s' is not a positive number; using %d", ints[i].key,
                         (const char *)sqlite3_column_text(st, 0), *ints[i].v);
        }
        sqlite3_finalize(st);
    }
}

/* dnsd sends a "query" event only for names the tunnel detector may count, and at most a
 * bucket's worth per client: both must follow the thresholds in use, or a lowered label
 * length never sees a name and a raised name count never gets enough of them. The bucket
 * lets twice tunnel_names through in one burst and tunnel_names per window after it. */
#define DNSD_MAX_RATE  1000    /* dnsd's limits (QTUNE_MAX_*, services/dnsfilter/dnsd.h) */
#define DNSD_MAX_BURST 10000
static int dnsd_thresholds(struct agentd *ad, const struct detect_cfg *c)
{
    char path[600], text[256], old[256] = "", err[AGENT_ERR];
    if (!ad->state_dir)
        return 0;
    int label = c->tunnel_label_len < 1 ? 1 : c->tunnel_label_len > 63 ? 63 : c->tunnel_label_len;
    long burst = 2L * c->tunnel_names;
    long rate = c->tunnel_window > 0 ? (c->tunnel_names + c->tunnel_window - 1) / c->tunnel_window
                                     : c->tunnel_names;
    burst = burst < 40 ? 40 : burst > DNSD_MAX_BURST ? DNSD_MAX_BURST : burst;
    rate = rate < 5 ? 5 : rate > DNSD_MAX_RATE ? DNSD_MAX_RATE : rate;
    double entropy = c->tunnel_entropy < 0 ? 0 : c->tunnel_entropy > 8 ? 8 : c->tunnel_entropy;
    int n = snprintf(text, sizeof text, "{\"version\":1,\"label_len\":%d,\"entropy\":%.4f,"
                     "\"rate\":%ld,\"burst\":%ld}\n", label, entropy, rate, burst);
    snprintf(path, sizeof path, "%s/query-events.json", ad->state_dir);
    FILE *f = fopen(path, "re");
    if (f) {
        size_t r = fread(old, 1, sizeof old - 1, f);
        old[r] = '\0';
        fclose(f);
        if (!strcmp(old, text))
            return 0;
    }
    if (atomic_write_file(path, text, (size_t)n, 0644, err, sizeof err) < 0) {
        log_error("dnsd's query-event thresholds not written: %s; dnsd keeps sampling with "
                  "its previous ones", err);
        return 0;
    }
    log_info("dnsd's query-event thresholds: labels from %d characters, %ld a second per "
             "client, burst %ld (%s)", label, rate, burst, path);
    return 1;
}

void incidents_settings_changed(struct agentd *ad)
{
    struct detect_cfg c;
    load_cfg(ad->db, ad->cfg, &c);
    if (dnsd_thresholds(ad, &c))
        ad->dirty = 1;   /* the compile's reload makes dnsd read them */
    if (det)   /* else loaded at the first event */
        detect_set_config(det, &c);
}

/* The owner's setting key ("1" = on) or, when he never set it, dflt. */
static int setting_on(sqlite3 *db, const char *key, int dflt)
{
    sqlite3_stmt *st;
    int on = dflt;
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        on = !strcmp((const char *)sqlite3_column_text(st, 0), "1");
    sqlite3_finalize(st);
    return on;
}

static void handle(struct agentd *ad, const struct detect_finding *f, int64_t now)
{
    char err[AGENT_ERR];
    int64_t id;
    int rc = incident_record(ad->db, f, now, &id, err, sizeof err);
    if (rc < 0) {
        log_error("incident %s for %s not recorded: %s", f->kind, f->device, err);
        return;
    }
    if (rc == 1) {
        log_info("incident %lld opened: %s on %s (%s)", (long long)id, f->kind, f->device,
                 f->detail);
        if (notify_enqueue(ad->db, id, "opened", now, err, sizeof err) < 0)
            log_warn("incident %lld: %s", (long long)id, err);
        notify_kick(ad->db, now);
    }
    /* Only the findings that are near-certain command-and-control traffic, and only when
     * the owner chose it: a wrong quarantine stops someone's work. */
    if (f->confidence >= 95 && setting_on(ad->db, "auto_quarantine", ad->cfg && ad->cfg->detect.auto_quarantine) &&
        (!strcmp(f->kind, DK_C2_IP) || !strcmp(f->kind, DK_MALWARE_DOMAIN))) {
        char cur[AGENT_ERR];
        json_t *inc = incident_get(ad->db, id, cur, sizeof cur);
        int already = inc && json_is_true(json_object_get(inc, "quarantined"));
        json_decref(inc);
        if (!already && incident_contain(ad->db, id, "auto", 1, now, err, sizeof err) == 0) {
            ad->dirty = 1;
            log_info("incident %lld: %s quarantined automatically", (long long)id, f->device);
        }
    }
}

void incidents_on_event(struct agentd *ad, const char *msg, size_t len, int64_t now)
{
    if (!det) {
        struct detect_cfg c;
        load_cfg(ad->db, ad->cfg, &c);
        det = detect_new(&c);
        if (!det)
            return;
    }
    json_t *o = json_loadb(msg, len, JSON_DISABLE_EOF_CHECK, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return;
    }
    const char *type = json_string_value(json_object_get(o, "type"));
    struct detect_finding f[4];
    int n = 0;
    if (type && !strcmp(type, "neighbour")) {
        /* Called before the inventory applies the event: a MAC it does not know is new. */
        const char *mac = json_string_value(json_object_get(o, "mac"));
        const char *ifn = json_string_value(json_object_get(o, "ifname"));
        int wan = 0;
        for (int i = 0; ad->cfg && ifn && i < ad->cfg->n_zones; i++)
            wan |= !strcmp(ad->cfg->zones[i].name, "wan") && !strcmp(ad->cfg->zones[i].interface, ifn);
        json_t *known = NULL;
        if (mac && !wan) {
            const char *args[1] = { mac };
            char err[AGENT_ERR];
            known = agent_query_json(ad->db, "SELECT 1 FROM devices WHERE mac=lower(?)", args,
                                     1, err, sizeof err);
        }
        if (known && json_array_size(known) == 0) {
            const char *addr = json_string_value(json_object_get(o, "addr"));
            memset(&f[0], 0, sizeof f[0]);
            snprintf(f[0].kind, sizeof f[0].kind, "%s", DK_NEW_DEVICE);
            snprintf(f[0].device, sizeof f[0].device, "%s", addr && *addr ? addr : mac);
            snprintf(f[0].indicator, sizeof f[0].indicator, "%s", mac);
            snprintf(f[0].detail, sizeof f[0].detail, "new device %s", mac);
            snprintf(f[0].detail_ja, sizeof f[0].detail_ja, "新しい機器%s", mac);
            f[0].confidence = 100;
            n = 1;
        }
        json_decref(known);
    } else {
        n = detect_event(det, o, now, f, 4);
    }
    json_decref(o);
    for (int i = 0; i < n; i++) {
        handle(ad, &f[i], now);
        hubshare_on_finding(f[i].kind, f[i].indicator, now);   /* sharing: hubshare.c */
    }
}

static int restarts_of(const char *pidfile, long *last_pid, int *count)
{
    FILE *fp = pidfile ? fopen(pidfile, "r") : NULL;
    long pid = 0;
    if (fp) {
        if (fscanf(fp, "%ld", &pid) != 1)
            pid = 0;
        fclose(fp);
    }
    if (pid > 0 && *last_pid > 0 && pid != *last_pid)
        (*count)++;
    if (pid > 0)
        *last_pid = pid;
    return *count;
}

void incidents_tick(struct agentd *ad, int64_t now)
{
    static int64_t last;
    static long pid_dnsd, pid_fwd;
    static int r_dnsd, r_fwd;
    notify_poll(ad->db, now);
    help_session_tick(ad->db, now);   /* expiry of remote-help sessions */
    if (!det || now - last < 60)
        return;
    last = now;
    struct detect_finding f[4];
    /* Feeds: one finding per stale feed; the incident window keeps it to one a day. */
    char err[AGENT_ERR];
    json_t *feeds = agent_query_json(ad->db, "SELECT name, last_good FROM feeds WHERE enabled=1",
                                     NULL, 0, err, sizeof err);
    size_t i;
    json_t *row;
    json_array_foreach(feeds, i, row)
        if (detect_feed(det, json_string_value(json_object_get(row, "name")),
                        json_integer_value(json_object_get(row, "last_good")), now, f) == 1)
            handle(ad, &f[0], now);
    json_decref(feeds);
    struct detect_health h = { 0 };
    struct statvfs sv;
    if (ad->state_dir && statvfs(ad->state_dir, &sv) == 0 && sv.f_blocks)
        h.disk_pct = (int)(100 - (100 * (unsigned long long)sv.f_bavail) / sv.f_blocks);
    FILE *mi = fopen("/proc/meminfo", "r");
    if (mi) {
        char line[128];
        unsigned long long total = 0, avail = 0, v;
        while (fgets(line, sizeof line, mi)) {
            if (sscanf(line, "MemTotal: %llu", &v) == 1)
                total = v;
            else if (sscanf(line, "MemAvailable: %llu", &v) == 1)
                avail = v;
        }
        fclose(mi);
        if (total)
            h.mem_pct = (int)(100 - 100 * avail / total);
    }
    h.daemon = "dnsd";
    h.restarts = restarts_of(ad->dnsd_pidfile, &pid_dnsd, &r_dnsd);
    int n = detect_health(det, &h, now, f, 4);
    struct detect_health h2 = { .daemon = "fwd", .restarts = restarts_of(ad->fwd_pidfile, &pid_fwd, &r_fwd) };
    n += detect_health(det, &h2, now, f + n, 4 - n);
    for (int k = 0; k < n; k++)
        handle(ad, &f[k], now);
}
