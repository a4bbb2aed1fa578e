/* Notification queue and delivery. The body is built when queued, so a retry sends what
 * the owner would have seen at the time. Delivery runs on a worker thread with its own
 * database connection: the agent loop only inserts a row and signals, so an unreachable
 * relay costs the loop nothing; the worker's own writes are single short statements
 * (WAL + busy timeout), never a transaction held across a network call. */
#include "notify.h"
#include "errbuf.h"
#include "incidents.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *setting(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) && *sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

json_t *notify_body(sqlite3 *db, int64_t incident_id, const char *event)
{
    char err[AGENT_ERR];
    json_t *inc = incident_get(db, incident_id, err, sizeof err);
    if (!inc)
        return NULL;
    char *lang = setting(db, "notify_lang");
    const char *l = lang && !strcmp(lang, "en") ? "en" : "ja";
    const char *kind = json_string_value(json_object_get(inc, "kind"));
    json_t *b = json_pack("{s:s,s:I,s:s,s:O,s:O,s:O,s:O,s:O,s:s,s:s,s:O,s:O,s:O}",
                          "event", event, "incident", (json_int_t)incident_id, "kind", kind,
                          "severity", json_object_get(inc, "severity"),
                          "state", json_object_get(inc, "state"),
                          "device", json_object_get(inc, "device"),
                          "label", json_object_get(inc, "label"),
                          "count", json_object_get(inc, "count"),
                          "title", incident_title(kind, l), "advice", incident_advice(kind, l),
                          "titles", json_object_get(inc, "title"),
                          "indicators", json_object_get(inc, "indicators"),
                          "opened", json_object_get(inc, "opened"));
    free(lang);
    json_decref(inc);
    return b;
}

/* Notifications of channel still waiting for delivery (not sent, not given up). */
static int64_t pending(sqlite3 *db, const char *channel)
{
    sqlite3_stmt *st;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM notify_queue WHERE channel=? AND sent=0"
                           " AND tries<?", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, NOTIFY_MAX_TRIES);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int notify_enqueue(sqlite3 *db, int64_t incident_id, const char *event, int64_t now,
                   char *err, size_t errlen)
{
    static const char *const channels[2][2] = { { "webhook", "notify_webhook" },
                                                { "smtp", "notify_smtp" } };
    int n = 0;
    for (int c = 0; c < 2; c++) {
        char *v = setting(db, channels[c][1]);
        if (!v)
            continue;
        free(v);
        if (pending(db, channels[c][0]) >= NOTIFY_QUEUE_MAX) {
            /* A storm of incidents while the relay is down: the owner sees the incidents
             * in the UI; mailing the hundred-and-first adds nothing but load. */
            incident_note(db, incident_id, "box", "notify_skipped",
                          "Not sent: too many notifications are already waiting for delivery. "
                          "/ お知らせを送っていません：配信待ちのお知らせが多すぎます。", now);
            continue;
        }
        json_t *b = notify_body(db, incident_id, event);
        char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        if (!s)
            return errbuf_set(err, errlen, "no incident %lld", (long long)incident_id);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "INSERT INTO notify_queue(incident_id, channel, body, next_try)"
                               " VALUES (?,?,?,?)", -1, &st, NULL) != SQLITE_OK) {
            free(s);
            return errbuf_set(err, errlen, "database: %s", sqlite3_errmsg(db));
        }
        sqlite3_bind_int64(st, 1, incident_id);
        sqlite3_bind_text(st, 2, channels[c][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, s, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, now);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        free(s);
        if (rc != SQLITE_DONE)
            return errbuf_set(err, errlen, "database: %s", sqlite3_errmsg(db));
        n++;
    }
    return n;
}

static atomic_int stopping;   /* set by notify_stop: aborts a transfer in progress */

struct src {
    const char *p;
    size_t left;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct src *s = arg;
    size_t k = size * n < s->left ? size * n : s->left;
    memcpy(buf, s->p, k);
    s->p += k;
    s->left -= k;
    return k;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static int progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)arg, (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&stopping);
}

static void common_opts(CURL *c)
{
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)NOTIFY_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
}

/* Errors name the channel, never the URL: a webhook URL often carries a token, and these
 * texts go to the log, the queue and the incident's timeline. */
static int send_webhook(const char *url, const char *body, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c)
        return errbuf_set(err, errlen, "webhook: curl init failed");
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    common_opts(c);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        return errbuf_set(err, errlen, "webhook: %s", curl_easy_strerror(rc));
    if (code < 200 || code >= 300)
        return errbuf_set(err, errlen, "webhook: the receiver answered HTTP %ld", code);
    return 0;
}

/* Appends src as RFC 2047 encoded-words ("=?UTF-8?B?...?=", at most 75 characters each,
 * folded onto continuation lines), cutting only between UTF-8 characters. ASCII text
 * without '=?' goes as it is. */
static void put_header_text(FILE *f, const char *src)
{
    int plain = !strstr(src, "=?");
    for (const char *p = src; *p && plain; p++)
        plain = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
    if (plain) {
        fputs(src, f);
        return;
    }
    size_t len = strlen(src), i = 0;
    int first = 1;
    while (i < len) {
        /* 42 bytes -> 56 base64 characters + 12 of framing = 68: within RFC 2047's 75,
         * and "Subject: " + the first word within RFC 5322's 78 per line */
        size_t n = len - i > 42 ? 42 : len - i;
        while (n > 0 && i + n < len && ((unsigned char)src[i + n] & 0xc0) == 0x80)
            n--;   /* do not split a multi-byte character */
        if (n == 0)
            n = len - i > 42 ? 42 : len - i;
        char b64[sodium_base64_ENCODED_LEN(42, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)src + i, n,
                          sodium_base64_VARIANT_ORIGINAL);
        fprintf(f, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", b64);
        first = 0;
        i += n;
    }
}

static int bad_address(const char *a)
{
    return !a || !strchr(a, '@') || strpbrk(a, "\r\n<>\"") != NULL;
}

/* Owner-visible words of the mail, in both languages. */
static const char *const mail_words[][2] = {
    /* en, ja */
    { "Resolved: ", "解決しました: " },
    { "Device", "端末" },
    { "Seen", "回数" },
    { "Incident number", "インシデント番号" },
    { "Open the box's web page to see what happened, what the box already did and what you "
      "can do. Nobody is to blame; if you are unsure, press \"call for help\" there.",
      "何が起きたか、ボックスがすでに何をしたか、あなたにできることは、ボックスの管理画面で"
      "確認できます。誰かを責める必要はありません。迷ったら、管理画面の「助けを呼ぶ」を押して"
      "ください。" },
};

char *notify_mail_message(const char *from, const char *to, const char *body_json,
                          int64_t now, char *err, size_t errlen)
{
    if (bad_address(from)) {
        errbuf_set(err, errlen, "notify_mail_from: not a plain address (user@domain)");
        return NULL;
    }
    if (bad_address(to)) {
        errbuf_set(err, errlen, "notify_mail_to: not a plain address (user@domain)");
        return NULL;
    }
    json_t *b = json_loads(body_json ? body_json : "", 0, NULL);
    const char *title = json_string_value(json_object_get(b, "title"));
    const char *advice = json_string_value(json_object_get(b, "advice"));
    if (!title || !advice) {
        json_decref(b);
        errbuf_set(err, errlen, "queued notification: body without title/advice");
        return NULL;
    }
    /* The title's language tells which words go with it. */
    const char *kind = json_string_value(json_object_get(b, "kind"));
    int ja = kind && !strcmp(title, incident_title(kind, "ja"));
    const char *event = json_string_value(json_object_get(b, "event"));
    const char *dev = json_string_value(json_object_get(b, "device"));
    const char *label = json_string_value(json_object_get(b, "label"));
    char subject[600];
    snprintf(subject, sizeof subject, "[otasuke] %s%s",
             event && !strcmp(event, "resolved") ? mail_words[0][ja] : "", title);
    char *text = NULL, *msg = NULL;
    size_t tlen = 0, mlen = 0;
    FILE *t = open_memstream(&text, &tlen);
    if (!t) {
        json_decref(b);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    fprintf(t, "%s\r\n\r\n%s\r\n\r\n%s: %s%s%s%s\r\n%s: %lld\r\n%s: %lld\r\n\r\n%s\r\n", title,
            advice, mail_words[1][ja], dev ? dev : "?", label && *label ? " (" : "",
            label && *label ? label : "", label && *label ? ")" : "", mail_words[2][ja],
            (long long)json_integer_value(json_object_get(b, "count")), mail_words[3][ja],
            (long long)json_integer_value(json_object_get(b, "incident")), mail_words[4][ja]);
    fclose(t);
    FILE *f = open_memstream(&msg, &mlen);
    if (!f) {
        free(text);
        json_decref(b);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    char date[64], rnd[17];
    time_t tt = (time_t)now;
    struct tm tm;
    gmtime_r(&tt, &tm);
    static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                      "Sep", "Oct", "Nov", "Dec" };
    /* By hand, not strftime: %a/%b follow the locale, RFC 5322 wants English. */
    snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday],
             tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    unsigned char r[8];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(rnd, sizeof rnd, r, sizeof r);
    fprintf(f, "From: %s\r\nTo: %s\r\nSubject: ", from, to);
    put_header_text(f, subject);
    fprintf(f, "\r\nDate: %s\r\nMessage-ID: <otasuke.%lld.%lld.%s@%s>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n"
            "\r\n", date, (long long)json_integer_value(json_object_get(b, "incident")),
            (long long)now, rnd, strchr(from, '@') + 1);
    /* base64 in lines of 76: any relay carries it, 8BITMIME or not */
    for (size_t i = 0; i < tlen; i += 57) {
        size_t n = tlen - i > 57 ? 57 : tlen - i;
        char line[sodium_base64_ENCODED_LEN(57, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(line, sizeof line, (const unsigned char *)text + i, n,
                          sodium_base64_VARIANT_ORIGINAL);
        fprintf(f, "%s\r\n", line);
    }
    fclose(f);
    free(text);
    json_decref(b);
    return msg;
}

static int send_mail(sqlite3 *db, const char *url, const char *body, int64_t now, char *err,
                     size_t errlen)
{
    char *from = setting(db, "notify_mail_from"), *to = setting(db, "notify_mail_to");
    int rc = -1;
    if (!from || !to) {
        errbuf_set(err, errlen, "e-mail: set notify_mail_from and notify_mail_to");
        goto out;
    }
    char e2[AGENT_ERR];
    char *msg = notify_mail_message(from, to, body, now, e2, sizeof e2);
    if (!msg) {
        errbuf_set(err, errlen, "e-mail: %s", e2);
        goto out;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        free(msg);
        errbuf_set(err, errlen, "e-mail: curl init failed");
        goto out;
    }
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    struct src s = { msg, strlen(msg) };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &s);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    common_opts(c);
    CURLcode cr = curl_easy_perform(c);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    free(msg);
    if (cr != CURLE_OK)
        errbuf_set(err, errlen, "e-mail: %s", curl_easy_strerror(cr));
    else
        rc = 0;
out:
    free(from);
    free(to);
    return rc;
}

/* Channel names in the owner's words: [0] English, [1] Japanese. */
static const char *channel_words(const char *channel, int ja)
{
    static const char *const w[2][2] = { { "webhook", "Webhook" }, { "e-mail", "メール" } };
    return w[strcmp(channel, "webhook") != 0][ja];
}

int notify_run(sqlite3 *db, int64_t now)
{
    sqlite3_stmt *st;
    int sent = 0;
    /* Finished rows (delivered or given up) are kept a while for the record, then go: the
     * timeline has said what happened to them. */
    if (sqlite3_prepare_v2(db, "DELETE FROM notify_queue WHERE (sent>0 AND sent<?1) OR"
                           " (sent=0 AND tries>=?2 AND next_try<?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now - NOTIFY_KEEP_S);
        sqlite3_bind_int(st, 2, NOTIFY_MAX_TRIES);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(db, "SELECT id, channel, body, tries, incident_id FROM notify_queue"
                           " WHERE sent=0 AND tries<? AND next_try<=? ORDER BY id LIMIT 4", -1,
                           &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int(st, 1, NOTIFY_MAX_TRIES);
    sqlite3_bind_int64(st, 2, now);
    struct item { int64_t id, incident; int tries; char *channel, *body; } items[4];
    int n = 0;
    while (n < 4 && sqlite3_step(st) == SQLITE_ROW) {
        items[n].id = sqlite3_column_int64(st, 0);
        items[n].channel = strdup((const char *)sqlite3_column_text(st, 1));
        items[n].body = strdup((const char *)sqlite3_column_text(st, 2));
        items[n].tries = sqlite3_column_int(st, 3);
        items[n].incident = sqlite3_column_int64(st, 4);
        n++;
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        char err[AGENT_ERR] = "";
        int webhook = items[i].channel && !strcmp(items[i].channel, "webhook");
        char *url = setting(db, webhook ? "notify_webhook" : "notify_smtp");
        int rc = !url || !items[i].body || !items[i].channel
                 ? errbuf_set(err, sizeof err, "%s: not configured any more",
                              webhook ? "webhook" : "e-mail")
                 : webhook ? send_webhook(url, items[i].body, err, sizeof err)
                 : send_mail(db, url, items[i].body, now, err, sizeof err);
        free(url);
        if (rc < 0 && atomic_load(&stopping)) {   /* not a failure: retried after restart */
            free(items[i].channel);
            free(items[i].body);
            continue;
        }
        int tries = items[i].tries + 1;
        if (sqlite3_prepare_v2(db, "UPDATE notify_queue SET tries=?, sent=?, next_try=?,"
                               " last_error=? WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int(st, 1, tries);
            sqlite3_bind_int64(st, 2, rc == 0 ? now : 0);
            sqlite3_bind_int64(st, 3, now + (30LL << (items[i].tries < 10 ? items[i].tries : 10)));
            if (rc < 0)
                sqlite3_bind_text(st, 4, err, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 5, items[i].id);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
        /* Timeline texts in both languages: the report goes to whoever reads it. */
        const char *chn = items[i].channel ? items[i].channel : "";
        const char *en = channel_words(chn, 0), *ja = channel_words(chn, 1);
        char detail[2 * AGENT_ERR + 600];
        if (rc == 0) {
            snprintf(detail, sizeof detail, "The owner was notified by %s%s. / %sでお知らせしました%s。",
                     en, tries > 1 ? " (after retrying)" : "", ja, tries > 1 ? "（再送）" : "");
            incident_note(db, items[i].incident, "box", "notify_sent", detail, now);
        } else if (tries >= NOTIFY_MAX_TRIES) {
            snprintf(detail, sizeof detail, "The %s notification could not be delivered after %d "
                     "tries (%s); the box gave up. Please check the notification settings. / "
                     "%sでのお知らせを%d回試みましたが、届けられませんでした（%s）。通知の設定を"
                     "確認してください。", en, tries, err, ja, tries, err);
            incident_note(db, items[i].incident, "box", "notify_failed", detail, now);
        } else if (tries == 1) {
            snprintf(detail, sizeof detail, "The %s notification could not be delivered yet (%s); "
                     "the box will try again, up to %d times. / %sでのお知らせはまだ届いていません"
                     "（%s）。最大%d回まで送り直します。", en, err, NOTIFY_MAX_TRIES, ja, err,
                     NOTIFY_MAX_TRIES);
            incident_note(db, items[i].incident, "box", "notify_retry", detail, now);
        }
        sent += rc == 0;
        free(items[i].channel);
        free(items[i].body);
    }
    return sent;
}

/* The worker: one thread, one connection, woken by notify_kick or by the next due row. */
static pthread_t worker;
static int worker_on;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int kicked;
static sqlite3 *wdb;

static int64_t next_due(sqlite3 *db, int64_t now)
{
    sqlite3_stmt *st;
    int64_t at = now + 60;
    if (sqlite3_prepare_v2(db, "SELECT min(next_try) FROM notify_queue WHERE sent=0 AND tries<?",
                           -1, &st, NULL) != SQLITE_OK)
        return at;
    sqlite3_bind_int(st, 1, NOTIFY_MAX_TRIES);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL &&
        sqlite3_column_int64(st, 0) < at)
        at = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return at;
}

static void *work(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        int64_t now = time(NULL);
        while (notify_run(wdb, now) > 0 && !atomic_load(&stopping))
            now = time(NULL);   /* more may be due: a burst of incidents */
        now = time(NULL);
        int64_t due = next_due(wdb, now);
        pthread_mutex_lock(&mu);
        if (!kicked && !atomic_load(&stopping) && due > now) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += due - now;
            pthread_cond_timedwait(&cv, &mu, &ts);
        }
        kicked = 0;
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

int notify_start(const char *db_path, char *err, size_t errlen)
{
    if (worker_on)
        return 0;
    wdb = agent_db_open(db_path, err, errlen);
    if (!wdb)
        return -1;
    atomic_store(&stopping, 0);
    if (pthread_create(&worker, NULL, work, NULL) != 0) {
        agent_db_close(wdb);
        wdb = NULL;
        return errbuf_set(err, errlen, "notifications: cannot start the delivery thread");
    }
    worker_on = 1;
    return 0;
}

void notify_kick(sqlite3 *db, int64_t now)
{
    if (!worker_on) {
        notify_run(db, now);
        return;
    }
    pthread_mutex_lock(&mu);
    kicked = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

void notify_poll(sqlite3 *db, int64_t now)
{
    if (!worker_on)
        notify_run(db, now);
}

void notify_stop(void)
{
    if (!worker_on)
        return;
    pthread_mutex_lock(&mu);
    atomic_store(&stopping, 1);
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(worker, NULL);
    agent_db_close(wdb);
    wdb = NULL;
    worker_on = 0;
    atomic_store(&stopping, 0);
}
