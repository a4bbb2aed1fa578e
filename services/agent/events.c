/* Events from dnsd and fwd: one JSON object per datagram on a unix datagram socket.
 *   fwd  {"type":"neighbour","mac":..,"addr":..,"hostname":..}   -> device inventory
 *   fwd  {"type":"drop","reason":"blocklist"|"quarantine"|"policy","src":..,"match":..}
 *   dnsd {"type":"blocked","client":..,"name":..,"category":..}
 *   dnsd {"type":"allowed",...}                                  -> ignored here
 *   dnsd {"type":"query","client":..,"name":..}  sampled long names -> detectors only
 * Blocked malware / phishing / C2 lookups and blocklist drops count against the device
 * that made them (likelihood); policy drops count as scans. Unknown types are ignored so
 * a newer daemon never breaks an older agent; malformed events are counted and dropped. */
#include "accounts.h"
#include "agentd.h"
#include "config.h"
#include "hubshare.h"
#include "incidents.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Neighbours seen on the WAN side (the upstream router) are not office devices. */
static int on_wan(const struct ota_config *cfg, const char *ifname)
{
    for (int i = 0; cfg && ifname && i < cfg->n_zones; i++)
        if (!strcmp(cfg->zones[i].name, "wan") && !strcmp(cfg->zones[i].interface, ifname))
            return 1;
    return 0;
}

int agentd_event_apply(sqlite3 *db, const struct ota_config *cfg, const char *msg, size_t len,
                       int64_t now, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(msg, len, JSON_DISABLE_EOF_CHECK, &je);
    if (!o || !json_is_object(o)) {
        snprintf(err, errlen, "event: not a JSON object (%s)", o ? "" : je.text);
        json_decref(o);
        return -1;
    }
    const char *type = str(o, "type");
    webstats_note(type, str(o, "category"), json_integer_value(json_object_get(o, "count")),
                  now);   /* dashboard counts: webstats.c */
    int rc = 0;
    char e2[AGENT_ERR] = "";
    if (!type) {
        snprintf(err, errlen, "event: 'type' missing");
        rc = -1;
    } else if (strcmp(type, "neighbour") == 0 && on_wan(cfg, str(o, "ifname"))) {
        rc = 0;
    } else if (strcmp(type, "neighbour") == 0) {
        const char *addr = str(o, "addr"), *host = str(o, "hostname");
        rc = agent_device_seen(db, str(o, "mac"), addr && *addr ? addr : NULL,
                               host && *host ? host : NULL, now, e2, sizeof e2);
    } else if (strcmp(type, "blocked") == 0 && str(o, "client")) {
        const char *cat = str(o, "category");
        int bad = cat && (!strcmp(cat, "malware") || !strcmp(cat, "phishing") || !strcmp(cat, "c2"));
        /* An unknown client is not an error: not every address is an inventoried device. */
        agent_device_event(db, str(o, "client"), bad ? "malware" : "block", e2, sizeof e2);
    } else if (strcmp(type, "drop") == 0 && str(o, "src") && str(o, "reason")) {
        const char *reason = str(o, "reason");
        if (!strcmp(reason, "blocklist") && str(o, "match") && !strcmp(str(o, "match"), "destination"))
            agent_device_event(db, str(o, "src"), "malware", e2, sizeof e2);
        else if (!strcmp(reason, "policy") || !strcmp(reason, "quarantine"))
            agent_device_event(db, str(o, "src"), "scan", e2, sizeof e2);
    }
    if (rc < 0)
        snprintf(err, errlen, "event %s: %s", type ? type : "?", e2);
    json_decref(o);
    return rc;
}

int agentd_events_open(struct agentd *ad, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    ad->events_fd = -1;
    if (!ad->events_path)
        return 0;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(ad->events_path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "--events %s: path too long", ad->events_path);
        return -1;
    }
    memcpy(sun.sun_path, ad->events_path, strlen(ad->events_path) + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct stat sb;
    if (lstat(ad->events_path, &sb) == 0 && S_ISSOCK(sb.st_mode))
        unlink(ad->events_path);
    mode_t old = umask(0117);
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc < 0) {
        snprintf(err, errlen, "--events %s: %s", ad->events_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    ad->events_fd = fd;
    return 0;
}

void agentd_events_read(struct agentd *ad)
{
    char buf[4096], err[AGENT_ERR];
    /* Bounded per wake-up so a flood of events cannot starve the API. */
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(ad->events_fd, buf, sizeof buf, 0);
        if (n <= 0)
            return;
        ad->n.events++;
        incidents_on_event(ad, buf, (size_t)n, time(NULL));   /* detectors: incidents_hook.c */
        hubshare_on_event(ad, buf, (size_t)n, time(NULL));    /* sharing: hubshare.c */
        if (agentd_event_apply(ad->db, ad->cfg, buf, (size_t)n, time(NULL), err, sizeof err) < 0) {
            ad->n.events_bad++;
            log_debug("%s", err);
        }
    }
}

void agentd_events_close(struct agentd *ad)
{
    if (ad->events_fd >= 0) {
        close(ad->events_fd);
        unlink(ad->events_path);
        ad->events_fd = -1;
    }
}
