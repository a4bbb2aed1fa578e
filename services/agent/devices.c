/* Device inventory: sightings from fwd's neighbour events and DHCP leases, vendor from the
 * IEEE registry (ieee-data), owner labels and importance, and risk = likelihood x
 * importance so the owner sees first the device that matters and misbehaves. */
#include "agent.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *oui_path = "/usr/share/ieee-data/oui.txt";

void agent_oui_set_path(const char *path)
{
    oui_path = path;
}

/* Normalises "AA-bb:cc.." into "aa:bb:cc:dd:ee:ff". Returns 0 or -1. */
static int norm_mac(const char *in, char out[18])
{
    char hex[12];
    int n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ':' || *p == '-' || *p == '.')
            continue;
        if (!isxdigit((unsigned char)*p) || n == 12)
            return -1;
        hex[n++] = (char)tolower((unsigned char)*p);
    }
    if (n != 12)
        return -1;
    for (int i = 0; i < 6; i++) {
        out[i * 3] = hex[i * 2];
        out[i * 3 + 1] = hex[i * 2 + 1];
        out[i * 3 + 2] = i < 5 ? ':' : '\0';
    }
    return 0;
}

/* The registry is ~5 MB of text; a lookup scans it once per new device, which happens a
 * few times a day — not worth an index in memory. */
int agent_oui_vendor(const char *path, const char *mac, char *out, size_t outlen)
{
    char m[18], want[9], line[512];
    if (norm_mac(mac, m) < 0)
        return -1;
    snprintf(want, sizeof want, "%c%c-%c%c-%c%c", toupper(m[0]), toupper(m[1]),
             toupper(m[3]), toupper(m[4]), toupper(m[6]), toupper(m[7]));
    FILE *f = fopen(path ? path : oui_path, "r");
    if (!f)
        return -1;
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, 8) != 0 || !strstr(line, "(hex)"))
            continue;
        char *v = strstr(line, "(hex)") + 5;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\r\n")] = '\0';
        snprintf(out, outlen, "%s", v);
        found = 0;
        break;
    }
    fclose(f);
    return found;
}

int agent_device_seen(sqlite3 *db, const char *mac, const char *ip, const char *hostname,
                      int64_t now, char *err, size_t errlen)
{
    char m[18], vendor[128] = "";
    if (!mac || norm_mac(mac, m) < 0) {
        snprintf(err, errlen, "mac: expected six hex pairs like 02:00:00:aa:bb:cc");
        return -1;
    }
    int is6 = ip && strchr(ip, ':') != NULL;
    sqlite3_stmt *st;
    int exists = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM devices WHERE mac=?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, m, -1, SQLITE_TRANSIENT);
        exists = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    if (!exists)
        agent_oui_vendor(NULL, m, vendor, sizeof vendor);
    const char *sql = exists
        ? "UPDATE devices SET last_seen=?2, ipv4=COALESCE(?3, ipv4), ipv6=COALESCE(?4, ipv6),"
          " hostname=COALESCE(?5, hostname) WHERE mac=?1"
        /* No group of its own: the network it is on (zone, owner's networks) decides
         * until the owner puts it in one. */
        : "INSERT INTO devices(mac, first_seen, last_seen, ipv4, ipv6, hostname, vendor)"
          " VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, m, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    if (ip && !is6)
        sqlite3_bind_text(st, 3, ip, -1, SQLITE_TRANSIENT);
    if (ip && is6)
        sqlite3_bind_text(st, 4, ip, -1, SQLITE_TRANSIENT);
    if (hostname && *hostname)
        sqlite3_bind_text(st, 5, hostname, -1, SQLITE_TRANSIENT);
    if (!exists && vendor[0])
        sqlite3_bind_text(st, 6, vendor, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc < 0)
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int agent_device_event(sqlite3 *db, const char *ip, const char *event, char *err,
                       size_t errlen)
{
    const char *col = strcmp(event, "malware") == 0 ? "malware_hits"
                      : strcmp(event, "scan") == 0 ? "scan_hits"
                      : strcmp(event, "block") == 0 ? "block_hits" : NULL;
    if (!col) {
        snprintf(err, errlen, "event: expected malware, scan or block");
        return -1;
    }
    char *q = sqlite3_mprintf("UPDATE devices SET %s=%s+1 WHERE ipv4=%Q OR ipv6=%Q", col, col,
                              ip, ip);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    if (rc == 0 && sqlite3_changes(db) == 0) {
        snprintf(err, errlen, "ip: no device with address %.64s", ip);
        return -1;
    }
    return rc;
}

int agent_device_update(sqlite3 *db, const char *who, const char *mac, const char *label,
                        int importance, const char *group, char *err, size_t errlen)
{
    char m[18];
    if (!mac || norm_mac(mac, m) < 0) {
        snprintf(err, errlen, "mac: expected six hex pairs like 02:00:00:aa:bb:cc");
        return -1;
    }
    if (importance != 0 && (importance < 1 || importance > 5)) {
        snprintf(err, errlen, "importance: expected 1 (least) .. 5 (most important)");
        return -1;
    }
    int64_t gid = 0;
    if (group && (gid = agent_group_id(db, group)) < 0) {
        snprintf(err, errlen, "group: no group named '%.40s'", group);
        return -1;
    }
    if (label && strlen(label) > 64) {
        snprintf(err, errlen, "label: at most 64 bytes");
        return -1;
    }
    const char *args[] = { m };
    if (agent_tx_begin(db, err, errlen) < 0)
        return -1;
    json_t *before = agent_query_json(db, "SELECT mac, label, importance, group_id FROM devices"
                                      " WHERE mac=?", args, 1, err, errlen);
    if (!before || json_array_size(before) == 0) {
        json_decref(before);
        agent_tx_rollback(db);
        snprintf(err, errlen, "mac: no device %s", m);
        return -1;
    }
    char *q = sqlite3_mprintf("UPDATE devices SET label=COALESCE(%Q, label), importance="
                              "CASE WHEN %d=0 THEN importance ELSE %d END, group_id=CASE WHEN"
                              " %lld=0 THEN group_id ELSE %lld END WHERE mac=%Q", label,
                              importance, importance, (long long)gid, (long long)gid, m);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    json_t *after = rc == 0 ? agent_query_json(db, "SELECT mac, label, importance, group_id"
                                               " FROM devices WHERE mac=?", args, 1, err, errlen)
                            : NULL;
    if (rc == 0)
        rc = agent_audit(db, who, "device.set", 0, "ok", NULL, json_array_get(before, 0),
                         json_array_get(after, 0));
    json_decref(before);
    json_decref(after);
    if (rc < 0 || agent_tx_commit(db, err, errlen) < 0) {
        agent_tx_rollback(db);
        return -1;
    }
    return 0;
}

int agent_likelihood(int64_t malware, int64_t scans, int64_t blocks)
{
    /* Malware / C2 contact is the strongest sign of compromise; a scan from inside is
     * next; ordinary blocks (ads, trackers) say little. */
    if (malware >= 10)
        return 5;
    if (malware >= 1 || scans >= 10)
        return 4;
    if (scans >= 1)
        return 3;
    if (blocks >= 100)
        return 2;
    return 1;
}

json_t *agent_devices_json(sqlite3 *db, char *err, size_t errlen)
{
    json_t *arr = agent_query_json(db, "SELECT d.mac, d.ipv4, d.ipv6, d.hostname, d.vendor,"
                                   " d.first_seen, d.last_seen, g.name AS \"group\", d.label,"
                                   " d.importance, d.malware_hits, d.scan_hits, d.block_hits"
                                   " FROM devices d LEFT JOIN groups g ON g.id=d.group_id",
                                   NULL, 0, err, errlen);
    if (!arr)
        return NULL;
    size_t i;
    json_t *d;
    json_array_foreach(arr, i, d) {
        int l = agent_likelihood(json_integer_value(json_object_get(d, "malware_hits")),
                                 json_integer_value(json_object_get(d, "scan_hits")),
                                 json_integer_value(json_object_get(d, "block_hits")));
        json_object_set_new(d, "likelihood", json_integer(l));
        json_object_set_new(d, "risk",
                            json_integer(l * json_integer_value(json_object_get(d, "importance"))));
    }
    /* Highest risk first; a small office has tens of devices, insertion sort is plenty. */
    size_t n = json_array_size(arr);
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0; b--) {
            json_t *x = json_array_get(arr, b - 1), *y = json_array_get(arr, b);
            if (json_integer_value(json_object_get(x, "risk")) >=
                json_integer_value(json_object_get(y, "risk")))
                break;
            json_incref(x);
            json_array_set(arr, b - 1, y);
            json_array_set_new(arr, b, x);
        }
    }
    return arr;
}
