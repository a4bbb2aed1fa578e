/* Incidents: dedupe, severity, lifecycle, timeline, containment. Every change is one
 * transaction with its timeline row (and audit row for people's actions), so the
 * timeline never misses an action that took effect. */
#include "incidents.h"
#include "errbuf.h"
#include "iplist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const states[] = { "open", "acknowledged", "help_requested",
                                      "helper_connected", "resolved" };

static int state_rank(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (s && !strcmp(states[i], s))
            return i;
    return -1;
}

struct kind_text {
    const char *kind;
    int weight;   /* 1..5: how bad it is on a device of average importance */
    const char *en, *ja, *advice_en, *advice_ja;
};

/* Blameless: say what the box saw and what to do; never who is at fault. */
static const struct kind_text kinds[] = {
    { DK_MALWARE_DOMAIN, 4, "A device tried to reach a known malicious site",
      "既知の危険なサイトへの接続が試みられました",
      "The box blocked it. Links in e-mails and ads lead anyone here; check the device with "
      "an up-to-date antivirus scan and ask for help if it keeps happening.",
      "接続はボックスが止めました。メールや広告のリンクからは誰でもたどり着きます。機器をウイルス対策ソフトで"
      "検査し、繰り返す場合はサポートに相談してください。" },
    { DK_C2_IP, 5, "A device contacted an address used to control malware",
      "マルウェアの指令サーバーとして知られる宛先への通信がありました",
      "The connection was blocked. The device may be infected: quarantine it with one click "
      "and call for help.",
      "通信は遮断されました。機器が感染している可能性があります。ワンクリックで隔離し、サポートを呼んでください。" },
    { DK_LATERAL_SCAN, 4, "A device probed many other devices in the office",
      "機器が社内の多くの機器を探索しました",
      "Scanning is typical of malware spreading, sometimes of a misconfigured tool. Quarantine "
      "the device if nobody is running such a tool, and call for help.",
      "探索はマルウェアの拡散によく見られ、設定の誤ったツールの場合もあります。心当たりがなければ機器を隔離し、"
      "サポートを呼んでください。" },
    { DK_DNS_TUNNEL, 4, "A device sent data hidden in DNS lookups",
      "DNS問い合わせにデータを隠した通信がありました",
      "Many random-looking names under one domain can carry data out of the office. Call for "
      "help to look at the device.",
      "一つのドメインの下で不規則な名前が大量に問い合わされると、データが持ち出されている可能性があります。"
      "サポートに機器を確認してもらってください。" },
    { DK_DOH_BYPASS, 2, "A device tried to bypass the office DNS filter",
      "機器が社内のDNSフィルターを迂回しようとしました",
      "Some browsers and apps use their own encrypted DNS; the box refused it. Usually a "
      "setting, rarely malware.",
      "一部のブラウザやアプリは独自の暗号化DNSを使います。ボックスが拒否しました。多くは設定によるもので、"
      "マルウェアはまれです。" },
    { DK_NEW_DEVICE, 1, "A new device joined the network", "新しい機器がネットワークに接続しました",
      "If you know the device, give it a name; if not, quarantine it.",
      "心当たりがあれば機器に名前を付けてください。なければ隔離してください。" },
    { DK_QUARANTINED, 2, "A quarantined device is still trying to connect",
      "隔離中の機器が通信を試みています",
      "The quarantine holds. Release it only after the device was checked.",
      "隔離は有効です。機器の確認が済んでから解除してください。" },
    { DK_FEED_STALE, 2, "Threat information is out of date", "脅威情報が古くなっています",
      "The box could not update a block list. Check the internet connection; protection "
      "continues with the last good list.",
      "ブロックリストを更新できませんでした。インターネット接続を確認してください。最後の正常なリストで保護は"
      "続いています。" },
    { DK_BOX_HEALTH, 3, "The box needs attention", "ボックスの点検が必要です",
      "Disk, memory or a service of the box is in trouble. Call for help if it does not "
      "clear within a day.",
      "ディスク、メモリ、またはサービスに問題があります。一日たっても解消しなければサポートを呼んでください。" },
    { DK_OWNER_REPORT, 3, "Someone reported something suspicious", "不審な出来事の報告がありました",
      "Thank you for reporting. Reporting early is what keeps the office safe; a helper can "
      "look at it with you.",
      "報告ありがとうございます。早めの報告が会社を守ります。サポート担当者と一緒に確認できます。" },
};

static const struct kind_text *kind_of(const char *kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].kind, kind))
            return &kinds[i];
    return NULL;
}

const char *incident_title(const char *kind, const char *lang)
{
    const struct kind_text *k = kind_of(kind ? kind : "");
    int ja = lang && !strcmp(lang, "ja");
    return !k ? (ja ? "不明な出来事" : "Unknown event") : ja ? k->ja : k->en;
}

const char *incident_advice(const char *kind, const char *lang)
{
    const struct kind_text *k = kind_of(kind ? kind : "");
    int ja = lang && !strcmp(lang, "ja");
    return !k ? "" : ja ? k->advice_ja : k->advice_en;
}

const char *incident_thanks(const char *lang)
{
    if (lang && !strcmp(lang, "ja"))
        return "ご報告ありがとうございます。気づいたことを知らせていただくのが一番の防御です。";
    return "Thank you for reporting this. Speaking up early is the best defence the office has.";
}

const char *incident_severity(const char *kind, int importance, int *score)
{
    const struct kind_text *k = kind_of(kind ? kind : "");
    int w = k ? k->weight : 3;
    if (importance < 1 || importance > 5)
        importance = 3;
    int s = w * importance;
    if (score)
        *score = s;
    return s >= 16 ? "critical" : s >= 10 ? "high" : s >= 5 ? "medium" : "low";
}

static int dberr(sqlite3 *db, char *err, size_t errlen, const char *what)
{
    return errbuf_set(err, errlen, "database: %s: %s", what, sqlite3_errmsg(db));
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int incident_note(sqlite3 *db, int64_t id, const char *who, const char *what,
                  const char *detail, int64_t now)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO incident_events(incident_id, at, who, what, detail)"
                           " VALUES (?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, who, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, what, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, detail ? detail : "", -1, SQLITE_TRANSIENT);
    return step_done(st);
}

/* The device row for an address or MAC: importance (default 3), MAC and label. */
static int device_lookup(sqlite3 *db, const char *dev, char *mac, size_t maclen, char *label,
                         size_t labellen)
{
    sqlite3_stmt *st;
    int imp = 3;
    mac[0] = label[0] = '\0';
    if (!strcmp(dev, "box"))
        return 4;   /* the box protects everyone */
    if (sqlite3_prepare_v2(db, "SELECT importance, mac, coalesce(label, hostname, '') FROM devices"
                           " WHERE mac=lower(?1) OR ipv4=?1 OR ipv6=?1 ORDER BY last_seen DESC"
                           " LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return imp;
    sqlite3_bind_text(st, 1, dev, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        imp = sqlite3_column_int(st, 0);
        snprintf(mac, maclen, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(label, labellen, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    return imp;
}

int incident_record(sqlite3 *db, const struct detect_finding *f, int64_t now, int64_t *id,
                    char *err, size_t errlen)
{
    char mac[64], label[128], e2[AGENT_ERR];
    sqlite3_stmt *st;
    int created = 0;
    *id = 0;
    if (agent_tx_begin(db, e2, sizeof e2) < 0)
        return errbuf_set(err, errlen, "%s", e2);
    int imp = device_lookup(db, f->device, mac, sizeof mac, label, sizeof label);
    if (sqlite3_prepare_v2(db, "SELECT id, count, indicators FROM incidents WHERE device=? AND"
                           " kind=? AND state<>'resolved' AND updated>=? ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        goto dbfail;
    sqlite3_bind_text(st, 1, f->device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, f->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now - INCIDENT_WINDOW);
    int64_t count = 0;
    json_t *ind = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        count = sqlite3_column_int64(st, 1);
        ind = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    }
    sqlite3_finalize(st);
    if (!json_is_array(ind)) {
        json_decref(ind);
        ind = json_array();
    }
    int known = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ind, i, v)
        known |= !strcmp(json_string_value(v), f->indicator);
    if (!known && f->indicator[0] && json_array_size(ind) < 50)
        json_array_append_new(ind, json_string(f->indicator));
    char *inds = json_dumps(ind, JSON_COMPACT);
    json_decref(ind);
    int score;
    const char *sev = incident_severity(f->kind, imp, &score);
    if (*id) {
        if (sqlite3_prepare_v2(db, "UPDATE incidents SET count=count+1, updated=?, indicators=?,"
                               " confidence=max(confidence, ?) WHERE id=?", -1, &st, NULL) != SQLITE_OK)
            goto dbfail_free;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, inds, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, f->confidence);
        sqlite3_bind_int64(st, 4, *id);
    } else {
        created = 1;
        if (sqlite3_prepare_v2(db, "INSERT INTO incidents(device, mac, label, kind, severity, score,"
                               " confidence, state, opened, updated, count, indicators, importance)"
                               " VALUES (?,?,?,?,?,?,?,'open',?,?,1,?,?)", -1, &st, NULL) != SQLITE_OK)
            goto dbfail_free;
        sqlite3_bind_text(st, 1, f->device, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, mac, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, label, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, f->kind, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, sev, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, score);
        sqlite3_bind_int(st, 7, f->confidence);
        sqlite3_bind_int64(st, 8, now);
        sqlite3_bind_int64(st, 9, now);
        sqlite3_bind_text(st, 10, inds, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 11, imp);
    }
    if (step_done(st) < 0)
        goto dbfail_free;
    if (created)
        *id = sqlite3_last_insert_rowid(db);
    free(inds);
    inds = NULL;
    /* Every detection is in the timeline up to a cap; past it the count still grows, so
     * a flood cannot fill the disk and the report says how many were not listed. */
    if (count < INCIDENT_TIMELINE_MAX) {
        /* Both languages in one row, "English / 日本語", as notify.c writes them. */
        char detail[1024];
        if (f->detail_ja[0])
            snprintf(detail, sizeof detail, "%s: %s / %s：%s", f->indicator, f->detail,
                     f->indicator, f->detail_ja);
        else
            snprintf(detail, sizeof detail, "%s: %s", f->indicator, f->detail);
        if (incident_note(db, *id, "detector", "detected", detail, now) < 0)
            goto dbfail;
    }
    if (agent_tx_commit(db, e2, sizeof e2) < 0) {
        agent_tx_rollback(db);
        return errbuf_set(err, errlen, "%s", e2);
    }
    return created;
dbfail_free:
    free(inds);
dbfail:
    dberr(db, err, errlen, "incident");
    agent_tx_rollback(db);
    return -1;
}

static int incident_state(sqlite3 *db, int64_t id, char *state, size_t len, char *dev,
                          size_t devlen, char *mac, size_t maclen)
{
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT state, device, mac FROM incidents WHERE id=?", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(state, len, "%s", (const char *)sqlite3_column_text(st, 0));
        if (dev)
            snprintf(dev, devlen, "%s", (const char *)sqlite3_column_text(st, 1));
        if (mac)
            snprintf(mac, maclen, "%s", (const char *)sqlite3_column_text(st, 2));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int incident_transition(sqlite3 *db, int64_t id, const char *who, const char *state,
                        const char *note, int64_t now, char *err, size_t errlen)
{
    char cur[32], e2[AGENT_ERR];
    int to = state_rank(state);
    if (to < 1)
        return errbuf_set(err, errlen, "state '%s' unknown: use acknowledged, help_requested, "
                          "helper_connected or resolved", state ? state : "");
    if (agent_tx_begin(db, e2, sizeof e2) < 0)
        return errbuf_set(err, errlen, "%s", e2);
    if (incident_state(db, id, cur, sizeof cur, NULL, 0, NULL, 0) < 0) {
        agent_tx_rollback(db);
        return errbuf_set(err, errlen, "no incident %lld", (long long)id);
    }
    int from = state_rank(cur);
    if (from == 4 || to < from) {
        agent_tx_rollback(db);
        return errbuf_set(err, errlen, "incident %lld is %s: cannot go to %s", (long long)id,
                          cur, state);
    }
    sqlite3_stmt *st;
    if (to == from) {   /* asking twice is fine and leaves one row */
        agent_tx_rollback(db);
        return 0;
    }
    if (sqlite3_prepare_v2(db, "UPDATE incidents SET state=?, updated=?, resolved=CASE WHEN ?='resolved'"
                           " THEN ? ELSE resolved END WHERE id=?", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, id);
    if (step_done(st) < 0 || incident_note(db, id, who, state, note, now) < 0)
        goto fail;
    json_t *after = json_pack("{s:I,s:s}", "incident", (json_int_t)id, "state", state);
    json_t *before = json_pack("{s:s}", "state", cur);
    int ar = agent_audit(db, who, "incident.state", 0, "ok", note, before, after);
    json_decref(after);
    json_decref(before);
    if (ar < 0 || agent_tx_commit(db, e2, sizeof e2) < 0)
        goto fail;
    return 0;
fail:
    dberr(db, err, errlen, "incident state");
    agent_tx_rollback(db);
    return -1;
}

int64_t incident_self_report(sqlite3 *db, const char *who, const char *device,
                             const char *note, int64_t now, char *err, size_t errlen)
{
    struct detect_finding f;
    memset(&f, 0, sizeof f);
    if (!note || !*note)
        return errbuf_set(err, errlen, "note: say in a few words what looked wrong");
    snprintf(f.kind, sizeof f.kind, "%s", DK_OWNER_REPORT);
    snprintf(f.device, sizeof f.device, "%s", device && *device ? device : "box");
    snprintf(f.indicator, sizeof f.indicator, "report by %s", who);
    snprintf(f.detail, sizeof f.detail, "%s", note);
    f.confidence = 50;
    int64_t id;
    /* Each report is its own incident (no window): two reports are two things to look at. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO incidents(device, mac, label, kind, severity, score,"
                           " confidence, state, opened, updated, count, indicators, importance)"
                           " VALUES (?,'','',?,?,?,50,'open',?,?,1,'[]',3)", -1, &st, NULL) != SQLITE_OK)
        return dberr(db, err, errlen, "report");
    int score;
    sqlite3_bind_text(st, 1, f.device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, f.kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, incident_severity(f.kind, 3, &score), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, score);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, now);
    if (step_done(st) < 0)
        return dberr(db, err, errlen, "report");
    id = sqlite3_last_insert_rowid(db);
    incident_note(db, id, who, "reported", note, now);
    json_t *after = json_pack("{s:I}", "incident", (json_int_t)id);
    agent_audit(db, who, "incident.report", 0, "ok", NULL, NULL, after);
    json_decref(after);
    return id;
}

json_t *incident_list(sqlite3 *db, const char *state, char *err, size_t errlen)
{
    const char *args[1] = { state };
    return agent_query_json(db, state ? "SELECT id, kind, device, label, severity, state, count,"
                            " opened, updated FROM incidents WHERE state=? ORDER BY id DESC LIMIT 500"
                            : "SELECT id, kind, device, label, severity, state, count, opened,"
                            " updated FROM incidents ORDER BY id DESC LIMIT 500",
                            args, state ? 1 : 0, err, errlen);
}

json_t *incident_get(sqlite3 *db, int64_t id, char *err, size_t errlen)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *args[1] = { ids };
    json_t *rows = agent_query_json(db, "SELECT * FROM incidents WHERE id=?", args, 1, err, errlen);
    if (!rows)
        return NULL;
    json_t *inc = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    if (!inc) {
        errbuf_set(err, errlen, "no incident %lld", (long long)id);
        return NULL;
    }
    json_t *ind = json_loads(json_string_value(json_object_get(inc, "indicators")), 0, NULL);
    json_object_set_new(inc, "indicators", ind ? ind : json_array());
    const char *kind = json_string_value(json_object_get(inc, "kind"));
    json_object_set_new(inc, "title", json_pack("{s:s,s:s}", "en", incident_title(kind, "en"),
                                                 "ja", incident_title(kind, "ja")));
    json_object_set_new(inc, "advice", json_pack("{s:s,s:s}", "en", incident_advice(kind, "en"),
                                                  "ja", incident_advice(kind, "ja")));
    json_t *tl = agent_query_json(db, "SELECT at, who, what, detail FROM incident_events WHERE"
                                  " incident_id=? ORDER BY id", args, 1, err, errlen);
    json_object_set_new(inc, "timeline", tl ? tl : json_array());
    json_t *q = agent_query_json(db, "SELECT count(*) AS n FROM quarantine WHERE incident_id=?",
                                 args, 1, err, errlen);
    json_object_set_new(inc, "quarantined", json_boolean(
        json_integer_value(json_object_get(json_array_get(q, 0), "n")) > 0));
    json_decref(q);
    return inc;
}

int incident_contain(sqlite3 *db, int64_t id, const char *who, int on, int64_t now,
                     char *err, size_t errlen)
{
    char cur[32], dev[64], mac[64], e2[AGENT_ERR];
    if (incident_state(db, id, cur, sizeof cur, dev, sizeof dev, mac, sizeof mac) < 0)
        return errbuf_set(err, errlen, "no incident %lld", (long long)id);
    if (!strcmp(dev, "box"))
        return errbuf_set(err, errlen, "incident %lld concerns the box itself: nothing to "
                          "quarantine", (long long)id);
    struct ipl_v4 r4;
    struct ipl_v6 r6;
    char why[96];
    if (iplist_parse_entry(dev, &r4, &r6, why, sizeof why) < 0)
        return errbuf_set(err, errlen, "incident %lld: device '%s' has no address to "
                          "quarantine", (long long)id, dev);
    if (agent_tx_begin(db, e2, sizeof e2) < 0)
        return errbuf_set(err, errlen, "%s", e2);
    sqlite3_stmt *st;
    const char *sql = on ? "INSERT OR REPLACE INTO quarantine(addr, mac, incident_id, at, who)"
                           " VALUES (?1,?2,?3,?4,?5)"
                         : "DELETE FROM quarantine WHERE addr=?1 OR (?2<>'' AND mac=?2) OR"
                           " incident_id=?3";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, dev, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, mac, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, id);
    if (on) {
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_text(st, 5, who, -1, SQLITE_TRANSIENT);
    }
    if (step_done(st) < 0)
        goto fail;
    char detail[256];
    snprintf(detail, sizeof detail, on ? "quarantined %s / %sを隔離しました"
                                       : "released %s / %sの隔離を解除しました", dev, dev);
    json_t *after = json_pack("{s:I,s:s,s:b}", "incident", (json_int_t)id, "device", dev,
                              "quarantined", on);
    int ar = agent_audit(db, who, on ? "incident.quarantine" : "incident.release", 0, "ok",
                         NULL, NULL, after);
    json_decref(after);
    if (ar < 0 || incident_note(db, id, who, on ? "contained" : "released", detail, now) < 0 ||
        agent_tx_commit(db, e2, sizeof e2) < 0)
        goto fail;
    return 0;
fail:
    dberr(db, err, errlen, "quarantine");
    agent_tx_rollback(db);
    return -1;
}

int incident_quarantine_list(sqlite3 *db, struct iplist *l, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int n = 0;
    /* The device's current addresses too: DHCP may have moved it since the incident. */
    if (sqlite3_prepare_v2(db, "SELECT addr FROM quarantine UNION SELECT d.ipv4 FROM devices d"
                           " JOIN quarantine q ON q.mac<>'' AND q.mac=d.mac WHERE d.ipv4 IS NOT NULL"
                           " UNION SELECT d.ipv6 FROM devices d JOIN quarantine q ON q.mac<>'' AND"
                           " q.mac=d.mac WHERE d.ipv6 IS NOT NULL", -1, &st, NULL) != SQLITE_OK)
        return dberr(db, err, errlen, "quarantine");
    while (sqlite3_step(st) == SQLITE_ROW) {
        char why[96];
        int fam = iplist_add_entry(l, (const char *)sqlite3_column_text(st, 0), why, sizeof why);
        if (fam < 0) {
            sqlite3_finalize(st);
            return errbuf_set(err, errlen, "out of memory");
        }
        n += fam != 0;
    }
    sqlite3_finalize(st);
    return n;
}
