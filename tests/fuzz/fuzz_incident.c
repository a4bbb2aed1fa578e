/* Fuzzes the incident path an attacker on the LAN can reach: event datagrams (names,
 * addresses, ports chosen by whoever sends packets) through the detectors, and each
 * finding through dedupe, timeline and both report formats, with one in-memory database
 * across runs. Memory must stay bounded and every string escaped whatever comes in. */
#include "../../services/agent/agent.h"
#include "../../services/agent/detect.h"
#include "../../services/agent/incidents.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static sqlite3 *db;
static struct detect_state *det;
static int64_t now = 1000;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[AGENT_ERR];
    if (!db && !(db = agent_db_open(":memory:", err, sizeof err)))
        return 0;
    if (!det) {
        struct detect_cfg c;
        detect_cfg_defaults(&c);
        c.scan_hosts = 3;   /* low thresholds so short inputs reach every detector's end */
        c.scan_ports = 3;
        c.tunnel_names = 2;
        c.tunnel_label_len = 8;
        det = detect_new(&c);
    }
    json_t *o = json_loadb((const char *)data, size, JSON_DISABLE_EOF_CHECK, NULL);
    struct detect_finding f[4];
    int n = detect_event(det, o, now++, f, 4);
    json_decref(o);
    for (int i = 0; i < n; i++) {
        int64_t id;
        if (incident_record(db, &f[i], now, &id, err, sizeof err) < 0)
            continue;
        char *md = incident_report(db, id, "md", "en", now, err, sizeof err);
        char *html = incident_report(db, id, "html", "ja", now, err, sizeof err);
        /* The HTML report never carries a raw '<' from the input. */
        if (html && strstr(html, "<script"))
            abort();
        free(md);
        free(html);
    }
    /* The self-report note is the owner's free text. */
    if (size && data[0] == 'R') {
        char note[256];
        size_t k = size - 1 < sizeof note - 1 ? size - 1 : sizeof note - 1;
        memcpy(note, data + 1, k);
        note[k] = '\0';
        int64_t id = incident_self_report(db, "fuzz", NULL, note, now, err, sizeof err);
        if (id > 0) {
            char *html = incident_report(db, id, "html", "en", now, err, sizeof err);
            if (html && strstr(html, "<script"))
                abort();
            free(html);
        }
    }
    return 0;
}
