/* Sharing with the hub, and the delegated changes it relays.
 *
 * Contributions (principle 5, opt-in by principle 6): when the owner switched sharing on
 * (setting hub_sharing, default hub.sharing in otasuke.conf), every blocked lookup of a
 * malware / phishing / C2 name, every connection dropped because its destination is
 * listed, and the base domain of a DNS tunnel the detectors found are counted per
 * indicator: indicator, category, count, first and last seen. No
 * client address, no allowed name, no query log is ever kept here. The table is bounded
 * (HUBSHARE_CAP, oldest dropped first) and sent every interval (30 s) from a thread of
 * its own with its own hubclient, so a hub that does not answer never holds up the main
 * loop; a failed send loses no count (the table changes only when the hub took it).
 *
 * The table and the event filter are in hubshare_table.c (no I/O, unit-tested alone).
 *
 * Delegated changes: the hub stores policy messages for this box and says "policy <id>"
 * on box/<user>/policy. The same thread fetches everything after the last id it handled
 * (at start, on each notice, every minute), hands each message to the main thread (the
 * hub pipe, as hubfeed.c does for feed documents), which runs agent_delegated_apply --
 * signature, grant, expiry, replay are the agent's checks, the hub is only the courier
 * -- and persists the id. The verdict goes back to the hub so the MSP sees "applied" or
 * "refused: ... outside every live grant". A database that cannot store the change now
 * (busy, disk full) is not a verdict on it: the hub hears "failed" with the reason, the
 * id is not recorded, the messages after it wait (order matters: a later block must not
 * overtake an earlier allow), and the same message is fetched again after 5, 10 ... 60 s.
 *
 * The hub numbers messages; a hub whose database restarted its ids (restored from an older
 * backup, moved to another database, started afresh) would hand out new messages under
 * ids the box has passed, and the box would never ask for them. So each fetch starts one
 * message early: the first one back must be the last message handled (same id, same
 * signature, kept in hub_policy_last_sig). When it is missing or another one, the ids
 * restarted: the box fetches from the start again; what it had handled before comes back
 * refused as a replay or too old, the new messages apply. */
#include "agentd.h"
#include "api.h"
#include "atomicfile.h"
#include "config.h"
#include "detect.h"
#include "hubclient.h"
#include "hubshare.h"
#include "log.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the agent's side ---- */

#define POLICY_POLL_SECONDS 60
#define UNREPORTED_MAX 32

struct verdict {
    long long id;
    char status[12];
    char detail[AGENT_ERR];
};

struct hubshare {
    struct hubclient *hc;         /* the thread's own */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake_cv;       /* the thread sleeps on it: notice, setting change */
    pthread_cond_t done_cv;       /* the main thread's verdict is ready */
    int wake_fd;
    char pending_path[600];       /* <hub dir>/share-pending.json: counts kept over a restart */
    char verdicts_path[600];      /* <hub dir>/policy-verdicts.json: verdicts not yet reported */
    char url[200];
    long box_id;
    /* under mu */
    struct hubshare_table *t;
    int sharing, interval, notice;
    int64_t last_sent_at, last_error_at, next_send;
    long last_sent_n;
    uint64_t sent_total;
    char last_error[320];
    long long policy_after, policy_applied, policy_refused, policy_failed;
    int policy_retry;             /* a message failed for now: fetch it again soon */
    char last_sig[128];           /* signature of message policy_after ("" = not known) */
    int probing;                  /* this fetch starts at policy_after: check it first */
    int ids_restarted;            /* the check failed: the hub numbers anew */
    long long policy_resets;
    struct verdict last;
    struct verdict unreported[UNREPORTED_MAX];
    int n_unreported;
    int stopping;                 /* the agent is stopping: leave, wait for nobody */
    /* the message being handed over; valid while pending */
    int pending, done;
    long long p_id;
    const char *p_change, *p_sig;
    struct verdict p_verdict;
};

/* One per agent process (there is one hub link); NULL without --hub. */
static struct hubshare *share;

static char *setting_get(sqlite3 *db, const char *key, char *out, size_t outlen)
{
    sqlite3_stmt *st;
    char *r = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?", -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
        r = out;
    }
    sqlite3_finalize(st);
    return r;
}

static int setting_put(sqlite3 *db, const char *key, const char *value)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO settings VALUES (?,?)", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* The owner's switch: the setting when set, else otasuke.conf's hub.sharing, else off. */
static int sharing_wanted(struct agentd *ad, int *from_setting)
{
    char v[16];
    int set = setting_get(ad->db, "hub_sharing", v, sizeof v) != NULL;
    if (from_setting)
        *from_setting = set;
    if (set)
        return !strcmp(v, "1") || !strcmp(v, "true");
    return ad->cfg ? ad->cfg->hub.sharing != 0 : 0;
}

static int interval_wanted(struct agentd *ad)
{
    char v[16];
    long n = setting_get(ad->db, "hub_share_interval", v, sizeof v) ? strtol(v, NULL, 10) : 0;
    return n >= 1 && n <= 3600 ? (int)n : HUBSHARE_INTERVAL;
}

/* The verdicts the hub has not taken yet also live in a small file (thread only), so an
 * agent restart does not leave the MSP looking at "pending" forever. Empty: no file. */
static void verdicts_save(struct hubshare *s)
{
    pthread_mutex_lock(&s->mu);
    json_t *arr = json_array();
    for (int i = 0; i < s->n_unreported; i++)
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s}", "id",
                              (json_int_t)s->unreported[i].id, "status",
                              s->unreported[i].status, "detail", s->unreported[i].detail));
    int n = s->n_unreported;
    pthread_mutex_unlock(&s->mu);
    char *text = n ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    char err[300];
    if (!n)
        unlink(s->verdicts_path);
    else if (!text || atomic_write_file(s->verdicts_path, text, strlen(text), 0600, err,
                                        sizeof err) < 0)
        log_warn("hub: cannot keep %d policy verdicts on disk: %s", n,
                 text ? err : "out of memory");
    free(text);
}

/* At start (before the thread): verdicts a previous run could not deliver. */
static void verdicts_load(struct hubshare *s)
{
    json_t *arr = json_load_file(s->verdicts_path, 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *st = json_string_value(json_object_get(v, "status"));
        const char *d = json_string_value(json_object_get(v, "detail"));
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (s->n_unreported == UNREPORTED_MAX || id <= 0 || !st || !d ||
            (strcmp(st, "applied") && strcmp(st, "refused") && strcmp(st, "failed")))
            continue;
        struct verdict *x = &s->unreported[s->n_unreported++];
        x->id = id;
        snprintf(x->status, sizeof x->status, "%s", st);
        snprintf(x->detail, sizeof x->detail, "%s", d);
    }
    json_decref(arr);
}

/* Thread: hands one relayed message to the main thread and waits for its verdict. */
static int hand_over(long long id, const char *signer, const char *change,
                     const char *signature, void *ctx)
{
    (void)signer;   /* the agent checks the delegate named in the signed body, by its key */
    struct hubshare *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (s->probing) {   /* the first message back must be the last one handled */
        s->probing = 0;
        if (id == s->policy_after && (!s->last_sig[0] || !strcmp(s->last_sig, signature))) {
            if (!s->last_sig[0])   /* recorded by an older agent without the signature */
                snprintf(s->last_sig, sizeof s->last_sig, "%s", signature);
            pthread_mutex_unlock(&s->mu);
            return 0;   /* handled already: on to the new ones */
        }
        s->ids_restarted = 1;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    s->p_id = id;
    s->p_change = change;
    s->p_sig = signature;
    s->pending = 1;
    s->done = 0;
    pthread_mutex_unlock(&s->mu);
    char b = 1;
    if (write(s->wake_fd, &b, 1) < 0 && errno != EAGAIN) {
        pthread_mutex_lock(&s->mu);
        s->pending = 0;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->done && !s->stopping)
        pthread_cond_wait(&s->done_cv, &s->mu);
    if (!s->done) {   /* stopping: the message is fetched again at the next start */
        s->pending = 0;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    s->pending = 0;
    int failed = !strcmp(s->p_verdict.status, "failed");
    if (failed) {
        s->policy_retry = 1;
    } else {
        s->policy_after = id;
        snprintf(s->last_sig, sizeof s->last_sig, "%s", signature);
    }
    /* report it now; if the hub does not take it, it waits in unreported (one "failed"
     * per message: a retry replaces the one before) */
    if (s->n_unreported && s->unreported[s->n_unreported - 1].id == id &&
        !strcmp(s->unreported[s->n_unreported - 1].status, "failed"))
        s->n_unreported--;
    if (s->n_unreported == UNREPORTED_MAX) {
        memmove(&s->unreported[0], &s->unreported[1],
                (UNREPORTED_MAX - 1) * sizeof s->unreported[0]);
        s->n_unreported--;
    }
    s->unreported[s->n_unreported++] = s->p_verdict;
    pthread_mutex_unlock(&s->mu);
    verdicts_save(s);
    return failed ? -1 : 0;   /* failed: the ones after it wait for the retry */
}

/* Sends the verdicts the hub has not taken yet. Returns 0, or -1 (hub down: later). */
static int report_verdicts(struct hubshare *s)
{
    for (int sent = 0;; sent++) {
        pthread_mutex_lock(&s->mu);
        if (!s->n_unreported) {
            pthread_mutex_unlock(&s->mu);
            if (sent)
                verdicts_save(s);
            return 0;
        }
        struct verdict v = s->unreported[0];
        pthread_mutex_unlock(&s->mu);
        char err[300];
        /* 404 (not this box's message) or 400 (the hub cannot take this verdict): retrying
         * would never help and would hold up the ones behind it */
        if (hubclient_policy_result(s->hc, v.id, v.status, v.detail, err, sizeof err) < 0 &&
            !strstr(err, "no policy message") && !strstr(err, "field '")) {
            log_debug("hub: policy %lld verdict not delivered: %s (retrying)", v.id, err);
            if (sent)
                verdicts_save(s);
            return -1;
        }
        pthread_mutex_lock(&s->mu);
        if (s->n_unreported && s->unreported[0].id == v.id) {
            memmove(&s->unreported[0], &s->unreported[1],
                    (size_t)(s->n_unreported - 1) * sizeof s->unreported[0]);
            s->n_unreported--;
        }
        pthread_mutex_unlock(&s->mu);
    }
}

/* While the hub does not take contributions, what waits is also kept on disk (only the
 * indicators and their counts, 0600), so an agent restart during a long hub outage loses
 * nothing; the file goes once everything was sent. Written after a failed send, so at
 * most every interval and only while the hub is away. */
static void pending_save(struct hubshare *s)
{
    pthread_mutex_lock(&s->mu);
    int n = hubshare_table_size(s->t);
    struct hubshare_entry *all = n ? malloc((size_t)n * sizeof *all) : NULL;
    if (all)
        n = hubshare_table_batch(s->t, all, n);
    pthread_mutex_unlock(&s->mu);
    if (!all)
        return;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "indicator",
                              all[i].indicator, "kind", all[i].kind, "category",
                              all[i].category, "count", (json_int_t)all[i].count,
                              "first_seen", (json_int_t)all[i].first_seen, "last_seen",
                              (json_int_t)all[i].last_seen));
    free(all);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char err[300];
    if (!text || atomic_write_file(s->pending_path, text, strlen(text), 0600, err,
                                   sizeof err) < 0)
        log_warn("hub contribution: cannot keep the waiting counts on disk: %s",
                 text ? err : "out of memory");
    free(text);
}

/* At start: takes back what a previous run could not send (only when sharing is on;
 * otherwise the file goes). A damaged file is reported and dropped, never fatal. */
static void pending_load(struct hubshare *s)
{
    json_error_t je;
    json_t *arr = s->sharing ? json_load_file(s->pending_path, 0, &je) : NULL;
    if (s->sharing && !arr && access(s->pending_path, F_OK) == 0)
        log_warn("%s: %s (line %d); the counts in it are dropped", s->pending_path, je.text,
                 je.line);
    size_t i;
    json_t *v;
    int n = 0;
    json_array_foreach(arr, i, v) {
        const char *ind = json_string_value(json_object_get(v, "indicator"));
        const char *kind = json_string_value(json_object_get(v, "kind"));
        const char *cat = json_string_value(json_object_get(v, "category"));
        json_int_t count = json_integer_value(json_object_get(v, "count"));
        json_int_t first = json_integer_value(json_object_get(v, "first_seen"));
        json_int_t last = json_integer_value(json_object_get(v, "last_seen"));
        struct hubshare_entry e = { .count = (long)count, .first_seen = first,
                                    .last_seen = last };
        if (!ind || !kind || !cat || !hubshare_threat(cat) || count > 1000000000 ||
            strlen(ind) >= sizeof e.indicator || strlen(kind) >= sizeof e.kind ||
            strlen(cat) >= sizeof e.category)
            continue;   /* not ours to send: skip it */
        memcpy(e.indicator, ind, strlen(ind) + 1);
        memcpy(e.kind, kind, strlen(kind) + 1);
        memcpy(e.category, cat, strlen(cat) + 1);
        if (hubshare_table_restore(s->t, &e) >= 0)
            n++;
    }
    json_decref(arr);
    if (n)
        log_info("hub contribution: %d indicators kept from the last run", n);
    if (!s->sharing)
        unlink(s->pending_path);
}

/* Sends everything waiting, HUBSHARE_BATCH at a time. Returns 0, or -1 (kept for later). */
static int send_all(struct hubshare *s, int64_t now)
{
    static struct hubshare_entry batch[HUBSHARE_BATCH];
    static struct hubclient_indicator v[HUBSHARE_BATCH];
    /* bounded: a full table is HUBSHARE_CAP / HUBSHARE_BATCH rounds */
    for (int round = 0; round <= HUBSHARE_CAP / HUBSHARE_BATCH; round++) {
        pthread_mutex_lock(&s->mu);
        int n = s->sharing ? hubshare_table_batch(s->t, batch, HUBSHARE_BATCH) : 0;
        pthread_mutex_unlock(&s->mu);
        if (n == 0)
            return 0;
        for (int i = 0; i < n; i++)
            v[i] = (struct hubclient_indicator){ batch[i].indicator, batch[i].kind,
                                                 batch[i].category, batch[i].count,
                                                 batch[i].first_seen, batch[i].last_seen };
        char err[300];
        int promoted = 0, rejected = 0;
        if (hubclient_contribute_ex(s->hc, v, n, &promoted, &rejected, err, sizeof err) < 0) {
            pthread_mutex_lock(&s->mu);
            if (!s->last_error[0])
                log_warn("hub contribution: %s (%d indicators kept; retrying)", err,
                         hubshare_table_size(s->t));
            snprintf(s->last_error, sizeof s->last_error, "%s", err);
            s->last_error_at = now;
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
        if (rejected)   /* never acceptable: dropped with the rest of the batch */
            log_warn("hub contribution: %d of %d refused: %s", rejected, n, err);
        pthread_mutex_lock(&s->mu);
        hubshare_table_ack(s->t, batch, n);
        if (s->last_error[0])
            log_info("hub contribution: the hub takes contributions again");
        s->last_error[0] = '\0';
        s->last_sent_at = now;
        s->last_sent_n = n - rejected;
        s->sent_total += (uint64_t)(n - rejected);
        pthread_mutex_unlock(&s->mu);
        log_debug("hub contribution: %d indicators sent, %d promoted", n - rejected, promoted);
    }
    return 0;
}

static void *share_thread(void *arg)
{
    struct hubshare *s = arg;
    int64_t next_poll = 0, next_report = 0;
    int on_disk = access(s->pending_path, F_OK) == 0;
    unsigned backoff = 0, poll_wait = 0, report_wait = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!s->notice && !s->stopping)
            pthread_cond_timedwait(&s->wake_cv, &s->mu, &ts);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        int notice = s->notice;
        s->notice = 0;
        long long after = s->policy_after;
        s->probing = after > 0;
        s->ids_restarted = 0;
        int64_t now = time(NULL);
        int send = s->sharing && hubshare_table_size(s->t) > 0 && now >= s->next_send;
        unsigned interval = (unsigned)s->interval;
        pthread_mutex_unlock(&s->mu);

        /* A hub that does not answer is asked again after 5, 10, 20 ... 60 s, not every
         * second; a notice always gets an immediate fetch. */
        if (notice || now >= next_poll) {
            char err[300];
            int n = hubclient_policy_fetch(s->hc, after > 0 ? after - 1 : 0, hand_over, s,
                                           err, sizeof err);
            pthread_mutex_lock(&s->mu);
            int retry = s->policy_retry;
            s->policy_retry = 0;
            /* nothing at all came back, not even the last one handled: numbered anew */
            int restarted = n >= 0 && (s->ids_restarted || (s->probing && n == 0));
            s->probing = 0;
            if (restarted) {
                s->policy_after = 0;
                s->last_sig[0] = '\0';
                s->policy_resets++;
                s->n_unreported = 0;   /* their ids name other messages on this hub now */
            }
            pthread_mutex_unlock(&s->mu);
            if (restarted) {
                verdicts_save(s);
                log_warn("hub: the hub's policy message %lld is not the one this box handled: "
                         "its message ids restarted (database restored or replaced); fetching "
                         "its messages from the start", after);
                next_poll = now;
                continue;
            }
            if (retry && n >= 0) {
                n = -1;
                snprintf(err, sizeof err, "a delegated change could not be stored yet");
            }
            if (n < 0) {
                log_debug("hub: policy messages: %s", err);
                poll_wait = poll_wait ? (poll_wait * 2 > POLICY_POLL_SECONDS
                                         ? POLICY_POLL_SECONDS : poll_wait * 2) : 5;
                next_poll = now + poll_wait;
            } else {
                poll_wait = 0;
                /* the hub hands out at most 100 at a time: ask for the rest at once */
                next_poll = n >= 100 ? now : now + POLICY_POLL_SECONDS;
                if (n > 0)
                    next_report = 0;   /* fresh verdicts go out now */
            }
        }
        if (now >= next_report) {
            if (report_verdicts(s) < 0) {
                report_wait = report_wait ? (report_wait * 2 > 300 ? 300 : report_wait * 2) : 5;
                next_report = now + report_wait;
            } else {
                report_wait = 0;
            }
        }
        if (send) {
            int rc = send_all(s, now);
            if (rc < 0) {
                pending_save(s);
                on_disk = 1;
            } else if (on_disk) {
                unlink(s->pending_path);   /* everything the file held was sent */
                on_disk = 0;
            }
            /* hub down: 30 s, 60 s ... up to 10 minutes; the counts wait in the table */
            backoff = rc < 0 ? (backoff ? (backoff * 2 > 600 ? 600 : backoff * 2) : interval)
                             : 0;
            pthread_mutex_lock(&s->mu);
            s->next_send = time(NULL) + (backoff ? backoff : interval);
            pthread_mutex_unlock(&s->mu);
        }
    }
    return NULL;
}

int hubshare_start(struct agentd *ad, const char *hub_dir, int wake_fd, char *err,
                   size_t errlen)
{
    struct hubshare *s = calloc(1, sizeof *s);
    char e2[300], v[32];
    if (!s || !(s->t = hubshare_table_new(HUBSHARE_CAP))) {
        free(s);
        snprintf(err, errlen, "hub sharing: out of memory");
        return -1;
    }
    s->hc = hubclient_open(hub_dir, e2, sizeof e2);
    if (!s->hc) {
        snprintf(err, errlen, "hub sharing: %s", e2);
        hubshare_table_free(s->t);
        free(s);
        return -1;
    }
    struct hubclient_info in;
    hubclient_info(s->hc, &in);
    snprintf(s->url, sizeof s->url, "%s", in.url ? in.url : "");
    s->box_id = in.box_id;
    s->wake_fd = wake_fd;
    s->sharing = sharing_wanted(ad, NULL);
    s->interval = interval_wanted(ad);
    s->next_send = time(NULL) + s->interval;
    s->policy_after = setting_get(ad->db, "hub_policy_last", v, sizeof v) ? atoll(v) : 0;
    if (!setting_get(ad->db, "hub_policy_last_sig", s->last_sig, sizeof s->last_sig))
        s->last_sig[0] = '\0';
    snprintf(s->pending_path, sizeof s->pending_path, "%s/share-pending.json", hub_dir);
    snprintf(s->verdicts_path, sizeof s->verdicts_path, "%s/policy-verdicts.json", hub_dir);
    pending_load(s);
    verdicts_load(s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    if (pthread_create(&s->thread, NULL, share_thread, s) != 0) {
        snprintf(err, errlen, "hub sharing: cannot start its thread");
        hubclient_close(s->hc);
        hubshare_table_free(s->t);
        free(s);
        return -1;
    }
    share = s;
    log_info("hub sharing %s (indicators of malware, phishing and C2 only, every %d s); "
             "delegated changes from message %lld on", s->sharing ? "on" : "off",
             s->interval, s->policy_after);
    return 0;
}

int hubshare_stop(const struct timespec *deadline)
{
    struct hubshare *s = share;
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->wake_cv);
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
    if (pthread_timedjoin_np(s->thread, NULL, deadline) != 0)
        return -1;   /* stuck in a hub call: leave everything as it is */
    /* counts not yet sent wait on disk for the next start, as when the hub is down */
    if (s->sharing && hubshare_table_size(s->t) > 0)
        pending_save(s);
    share = NULL;
    hubclient_close(s->hc);
    hubshare_table_free(s->t);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake_cv);
    pthread_cond_destroy(&s->done_cv);
    free(s);
    return 0;
}

void hubshare_policy_notice(long long id, void *ctx)
{
    struct hubshare *s = ctx ? ctx : share;
    (void)id;   /* everything after the last handled id is fetched, this one included */
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->notice = 1;
    pthread_cond_signal(&s->wake_cv);
    pthread_mutex_unlock(&s->mu);
}

void hubshare_on_event(struct agentd *ad, const char *msg, size_t len, int64_t now)
{
    (void)ad;
    struct hubshare *s = share;
    if (!s || !__atomic_load_n(&s->sharing, __ATOMIC_RELAXED))
        return;
    struct hubshare_entry e;
    if (!hubshare_event_indicator(msg, len, &e))
        return;
    pthread_mutex_lock(&s->mu);
    if (s->sharing)
        hubshare_table_note(s->t, e.indicator, e.kind, e.category, now);
    pthread_mutex_unlock(&s->mu);
}

void hubshare_on_finding(const char *kind, const char *indicator, int64_t now)
{
    struct hubshare *s = share;
    /* A tunnel is not blocked, but it is a threat the detectors saw: its base domain is
     * what other offices would want to block (never the full names, which carry data). */
    if (!s || !__atomic_load_n(&s->sharing, __ATOMIC_RELAXED) || !kind || !indicator ||
        strcmp(kind, DK_DNS_TUNNEL) != 0)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->sharing)
        hubshare_table_note(s->t, indicator, "domain", "c2", now);
    pthread_mutex_unlock(&s->mu);
}

void hubshare_handle(struct agentd *ad, int64_t now)
{
    struct hubshare *s = share;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->pending || s->done) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    long long id = s->p_id;
    const char *change = s->p_change, *sig = s->p_sig;
    pthread_mutex_unlock(&s->mu);   /* the thread waits for done; the strings stay put */

    char err[AGENT_ERR], v[32];
    struct verdict vd = { .id = id };
    int n = agent_delegated_apply(ad->db, change, strlen(change), sig, now, err, sizeof err);
    if (n == AGENT_DELEGATED_RETRY) {
        snprintf(vd.status, sizeof vd.status, "failed");
        snprintf(vd.detail, sizeof vd.detail, "%s", err);
        log_warn("hub: delegated change %lld not applied yet: %s", id, err);
        pthread_mutex_lock(&s->mu);
        s->p_verdict = vd;
        s->last = vd;
        s->policy_failed++;
        s->done = 1;
        pthread_cond_signal(&s->done_cv);
        pthread_mutex_unlock(&s->mu);
        return;   /* not handled: hub_policy_last stays, the message comes again */
    }
    if (n >= 0) {
        ad->dirty = 1;
        snprintf(vd.status, sizeof vd.status, "applied");
        snprintf(vd.detail, sizeof vd.detail, "%d change%s applied", n, n == 1 ? "" : "s");
        log_info("hub: delegated change %lld applied (%d change%s)", id, n, n == 1 ? "" : "s");
    } else {
        snprintf(vd.status, sizeof vd.status, "refused");
        snprintf(vd.detail, sizeof vd.detail, "%s", err);
        /* the reason may quote the signed body, cut anywhere: plain ASCII towards the hub
         * (no control characters, no half of a UTF-8 sequence the JSON encoder refuses) */
        for (char *q = vd.detail; *q; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
                *q = '?';
        log_warn("hub: delegated change %lld refused: %s", id, err);
    }
    snprintf(v, sizeof v, "%lld", id);
    if (setting_put(ad->db, "hub_policy_last_sig", sig) < 0 ||
        setting_put(ad->db, "hub_policy_last", v) < 0)
        log_warn("hub: cannot record policy message %lld as handled (it will be fetched "
                 "again and refused as a replay)", id);
    pthread_mutex_lock(&s->mu);
    s->p_verdict = vd;
    s->last = vd;
    if (n >= 0)
        s->policy_applied++;
    else
        s->policy_refused++;
    s->done = 1;
    pthread_cond_signal(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- API: GET /v1/hub, PUT|POST /v1/hub ---- */

static const struct api_field hub_fields[] = {
    { "sharing", API_BOOL, 0, 0 }, { "interval_seconds", API_INT, 0, 3600 },
    { NULL, 0, 0, 0 } };

static json_t *status_json(struct agentd *ad)
{
    int from_setting = 0;
    int wanted = sharing_wanted(ad, &from_setting);
    json_t *o = json_pack("{s:b, s:b, s:s, s:i}", "enrolled", share != NULL, "sharing", wanted,
                          "sharing_source", from_setting ? "setting" : ad->cfg ? "config"
                          : "default", "interval_seconds", interval_wanted(ad));
    json_object_set_new(o, "shares", json_string("blocked malware, phishing and C2 "
                        "indicators with counts; never client addresses or allowed names"));
    struct hubshare *s = share;
    if (!s)
        return o;
    pthread_mutex_lock(&s->mu);
    json_object_set_new(o, "hub", json_string(s->url));
    json_object_set_new(o, "box_id", json_integer(s->box_id));
    json_object_set_new(o, "pending", json_integer(hubshare_table_size(s->t)));
    json_object_set_new(o, "dropped", json_integer((json_int_t)hubshare_table_dropped(s->t)));
    json_object_set_new(o, "sent_total", json_integer((json_int_t)s->sent_total));
    json_object_set_new(o, "last_contribution", s->last_sent_at ? json_integer(s->last_sent_at)
                                                                : json_null());
    json_object_set_new(o, "last_contribution_count", json_integer(s->last_sent_n));
    json_object_set_new(o, "last_error", s->last_error[0] ? json_string(s->last_error)
                                                          : json_null());
    json_object_set_new(o, "last_error_at", s->last_error_at ? json_integer(s->last_error_at)
                                                             : json_null());
    json_t *p = json_pack("{s:I, s:I, s:I, s:I, s:i, s:I}", "last_id",
                          (json_int_t)s->policy_after, "applied", (json_int_t)s->policy_applied,
                          "refused", (json_int_t)s->policy_refused, "failed",
                          (json_int_t)s->policy_failed, "unreported", s->n_unreported,
                          "id_restarts", (json_int_t)s->policy_resets);
    if (s->last.id)
        json_object_set_new(p, "last", json_pack("{s:I, s:s, s:s}", "id",
                            (json_int_t)s->last.id, "result", s->last.status, "detail",
                            s->last.detail));
    json_object_set_new(o, "policy", p);
    pthread_mutex_unlock(&s->mu);
    return o;
}

int hubshare_route(struct api_call *c)
{
    if (strcmp(c->url, "/v1/hub") != 0)
        return 0;
    struct agentd *ad = c->ad;
    if (!strcmp(c->method, "GET")) {
        if (c->body_len) {
            c->status = 400;
            c->out = api_error_json("this request takes no body", "body");
            return 1;
        }
        c->out = status_json(ad);
        return 1;
    }
    if (strcmp(c->method, "PUT") && strcmp(c->method, "POST")) {
        c->status = 405;
        c->out = api_error_json("use GET, or PUT with {\"sharing\": true|false}", NULL);
        return 1;
    }
    json_t *error = NULL;
    json_t *body = api_parse_body(c->body, c->body_len, hub_fields, &error);
    if (!body) {
        c->status = 400;
        c->out = error;
        return 1;
    }
    json_t *sh = json_object_get(body, "sharing");
    json_t *iv = json_object_get(body, "interval_seconds");
    if (iv && json_integer_value(iv) < 1) {
        json_decref(body);
        c->status = 400;
        c->out = api_error_json("interval_seconds: expected 1..3600", "interval_seconds");
        return 1;
    }
    char err[AGENT_ERR], v[24];
    int ok = agent_tx_begin(ad->db, err, sizeof err) == 0;
    if (ok && sh)
        ok = setting_put(ad->db, "hub_sharing", json_is_true(sh) ? "1" : "0") == 0;
    if (ok && iv) {
        snprintf(v, sizeof v, "%lld", (long long)json_integer_value(iv));
        ok = setting_put(ad->db, "hub_share_interval", v) == 0;
    }
    if (ok)
        ok = agent_audit(ad->db, AGENT_OWNER, "hub.sharing", 0, "ok", NULL, NULL, body) == 0 &&
             agent_tx_commit(ad->db, err, sizeof err) == 0;
    json_decref(body);
    if (!ok) {
        agent_tx_rollback(ad->db);
        c->status = 500;
        c->out = api_error_json("database: cannot save the hub sharing setting", NULL);
        return 1;
    }
    struct hubshare *s = share;
    if (s) {
        pthread_mutex_lock(&s->mu);
        int was = s->sharing;
        __atomic_store_n(&s->sharing, sharing_wanted(ad, NULL), __ATOMIC_RELAXED);
        s->interval = interval_wanted(ad);
        if (s->next_send > time(NULL) + s->interval)
            s->next_send = time(NULL) + s->interval;
        /* Switched off: what was counted is not sent later either. */
        if (!s->sharing) {
            hubshare_table_clear(s->t);
            unlink(s->pending_path);
        }
        if (was != s->sharing)
            log_info("hub sharing switched %s by the owner", s->sharing ? "on" : "off");
        pthread_cond_signal(&s->wake_cv);
        pthread_mutex_unlock(&s->mu);
    }
    c->out = status_json(ad);
    return 1;
}
