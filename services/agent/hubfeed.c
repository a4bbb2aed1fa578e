/* The hub's shared feed, through the hub client library (appliance/lib/hubclient.h):
 * MQTT "seq N is out" -> delta over HTTPS -> verified against the pinned hub key, feed
 * id, seq and expiry by hubclient -> applied here as the feed row "hub".
 *
 * hubclient_watch blocks (it runs the MQTT loop), so it lives on its own thread with its
 * own hubclient. The database stays with the main thread: the hub thread hands each
 * verified document over (a pipe wakes the main loop) and waits for the verdict, so the
 * hub client saves the new seq only when the entries are really stored.
 *
 * Heartbeats go out from a second thread with a hubclient of its own, so a hub that does
 * not answer never holds up the feed or the main loop. The main loop refreshes what they
 * carry (open incidents, counters) in agentd_hub_snapshot; the thread only copies it.
 *
 * Contributions and relayed policy changes live in hubshare.c (a third thread); they
 * hand policy messages to the main thread through the same pipe. */
#include "agentd.h"
#include "hubclient.h"
#include "hubshare.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HUB_POLL_SECONDS 60    /* without MQTT: poll at least this often */
#define HUB_WATCH_SECONDS 300  /* restart the MQTT watch (and sync) this often */
#define HUB_HEARTBEAT_SECONDS 60 /* the hub counts a box online for a few of these */
#define HUB_STOP_SECONDS 5       /* how long a stopping agent waits for its hub threads */
#define AGENT_VERSION "otasuke-agent 0.1"

struct agentd_hub {
    struct hubclient *hc;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pipe[2];
    /* the document being handed over (a verified file, read in chunks by the main
     * thread: a million-entry snapshot never sits in memory); valid while pending */
    int fd;
    struct feed_manifest m;
    int pending, done, rc;
    char verdict[AGENT_ERR]; /* why the main thread refused it */
    int stopping;          /* under mu: the agent is stopping; threads leave, nobody waits */
    pthread_cond_t nap_cv; /* threads sleep on it between tries; broadcast at stop */
    /* heartbeat: its own client and thread; the snapshot is under mu */
    struct hubclient *hb_hc;
    pthread_t hb_thread;
    int hb_started;
    long long hb_incidents;
    long long hb_seq;      /* the feed seq applied here: the heartbeat client's own never moves */
    int hb_wake;           /* send a heartbeat now (a new seq was applied) */
    char hb_counters[512];
    int64_t hb_snapshot_at;
};

static int hand_over(int fd, const struct feed_manifest *m, void *ctx, char *err,
                     size_t errlen)
{
    struct agentd_hub *h = ctx;
    pthread_mutex_lock(&h->mu);
    h->fd = fd;
    h->m = *m;
    h->verdict[0] = '\0';
    h->pending = 1;
    h->done = 0;
    pthread_mutex_unlock(&h->mu);
    char b = 1;
    if (write(h->pipe[1], &b, 1) < 0 && errno != EAGAIN) {
        pthread_mutex_lock(&h->mu);
        h->pending = 0;
        pthread_mutex_unlock(&h->mu);
        snprintf(err, errlen, "cannot wake the agent's main loop: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&h->mu);
    while (!h->done && !h->stopping)
        pthread_cond_wait(&h->cv, &h->mu);
    int rc = h->done ? h->rc : -1;
    snprintf(err, errlen, "%s", h->done ? h->verdict : "the agent is stopping");
    h->pending = 0;
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* A new hub feed error (hubclient_set_error_notify): said once, not at every poll or
 * notification; the owner also sees it as last_error (GET /v1/hub/enrolment), except
 * when the disk is too full to keep hub.json. */
static void say_error(const char *msg, void *ctx)
{
    (void)ctx;
    log_warn("hub feed: %s%s", msg, strstr(msg, "last good lists keep protecting")
             ? "" : " (the last good lists keep protecting)");
}

/* Sleeps secs unless the agent stops first. Returns 1 when it is stopping. */
static int nap(struct agentd_hub *h, unsigned secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += secs;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping && pthread_cond_timedwait(&h->nap_cv, &h->mu, &ts) == 0)
        ;
    int stopping = h->stopping;
    pthread_mutex_unlock(&h->mu);
    return stopping;
}

static int stopping(struct agentd_hub *h)
{
    pthread_mutex_lock(&h->mu);
    int v = h->stopping;
    pthread_mutex_unlock(&h->mu);
    return v;
}

static void *hub_thread(void *arg)
{
    struct agentd_hub *h = arg;
    unsigned backoff = 1;
    while (!stopping(h)) {
        char err[300];
        int updated = 0;
        /* watch syncs when it connects, then on every notification, and polls every
         * HUB_POLL_SECONDS besides (a notification lost on the way costs at most that).
         * It fails at once when MQTT cannot be used (no broker named, credentials not yet
         * or no longer accepted, e.g. while the broker reloads its password file after an
         * enrolment): then poll over HTTPS and retry MQTT soon -- 1, 2, 4 ... 60 s -- so a
         * refusal during a reload costs seconds, and a revoked box does not hammer it. */
        time_t t0 = time(NULL);
        if (hubclient_watch(h->hc, hand_over, h, HUB_WATCH_SECONDS, 0, err, sizeof err) >= 0 ||
            time(NULL) - t0 > HUB_POLL_SECONDS) {
            backoff = 1;
            continue;
        }
        log_debug("hub: MQTT not usable (%s); polling, retrying in %u s", err, backoff);
        hubclient_sync(h->hc, hand_over, h, &updated, err, sizeof err);
        if (nap(h, backoff))
            break;
        backoff = backoff * 2 > HUB_POLL_SECONDS ? HUB_POLL_SECONDS : backoff * 2;
    }
    return NULL;
}

static void *heartbeat_thread(void *arg)
{
    struct agentd_hub *h = arg;
    int failing = 0;
    while (!stopping(h)) {
        char counters[sizeof h->hb_counters], err[300];
        struct hubclient_heartbeat hb = { AGENT_VERSION, 0, NULL, 0 };
        pthread_mutex_lock(&h->mu);
        hb.open_incidents = h->hb_incidents;
        hb.feed_seq = h->hb_seq;
        snprintf(counters, sizeof counters, "%s", h->hb_counters);
        pthread_mutex_unlock(&h->mu);
        hb.counters_json = counters[0] ? counters : NULL;
        /* say it once when the hub stops answering and once when it is back, not every
         * minute: a hub down for days must not fill the log */
        if (hubclient_heartbeat(h->hb_hc, &hb, NULL, err, sizeof err) < 0) {
            if (!failing)
                log_warn("hub heartbeat: %s (the box keeps protecting; retrying)", err);
            failing = 1;
        } else if (failing) {
            log_info("hub heartbeat: the hub answers again");
            failing = 0;
        }
        /* next one in a minute, or at once when a new seq was applied, so the fleet view
         * never shows an up-to-date box as behind */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += HUB_HEARTBEAT_SECONDS;
        pthread_mutex_lock(&h->mu);
        while (!h->stopping && !h->hb_wake &&
               pthread_cond_timedwait(&h->nap_cv, &h->mu, &ts) == 0)
            ;
        h->hb_wake = 0;
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

void agentd_hub_snapshot(struct agentd *ad, int64_t now)
{
    struct agentd_hub *h = ad->hub;
    if (!h || now - h->hb_snapshot_at < 10)
        return;
    h->hb_snapshot_at = now;
    long long open = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ad->db, "SELECT count(*) FROM incidents WHERE state <> 'resolved'",
                           -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            open = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    pthread_mutex_lock(&h->mu);
    h->hb_incidents = open;
    snprintf(h->hb_counters, sizeof h->hb_counters,
             "{\"compiles\":%llu,\"compile_errors\":%llu,\"feed_refusals\":%llu,"
             "\"domains\":%llu,\"fw_elements\":%llu,\"events\":%llu}",
             (unsigned long long)ad->n.compiles, (unsigned long long)ad->n.compile_errors,
             (unsigned long long)ad->n.feed_refusals, (unsigned long long)ad->n.last_domains,
             (unsigned long long)ad->n.last_fw_elems, (unsigned long long)ad->n.events);
    pthread_mutex_unlock(&h->mu);
}

static int64_t hub_row_id(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t id = -1;
    if (sqlite3_prepare_v2(db, "SELECT id FROM feeds WHERE name='hub' AND url LIKE 'hub:%'", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

/* The feed row the hub's entries live under: "hub", never fetched by feeds.c. */
static int64_t hub_row(sqlite3 *db, const struct hubclient_info *in, char *err, size_t errlen)
{
    char *q = sqlite3_mprintf("INSERT OR IGNORE INTO feeds(name, url, kind, feed_id, max_bytes,"
                              " next_try) VALUES ('hub', 'hub:' || %Q, 'signed', %Q, %u,"
                              " 9223372036854775807); UPDATE feeds SET url='hub:' || %Q,"
                              " feed_id=%Q WHERE name='hub'", in->url, in->feed_id,
                              FEED_DEFAULT_MAX_BYTES, in->url, in->feed_id);
    int rc = agent_exec(db, q, err, errlen);
    sqlite3_free(q);
    if (rc < 0)
        return -1;
    return hub_row_id(db);
}

int agentd_hub_start(struct agentd *ad, const char *dir, char *err, size_t errlen)
{
    struct agentd_hub *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char e2[300];
    h->hc = hubclient_open(dir, e2, sizeof e2);
    if (!h->hc) {
        snprintf(err, errlen, "--hub %s: %s", dir, e2);
        free(h);
        return -1;
    }
    struct hubclient_info in;
    hubclient_info(h->hc, &in);
    if (!in.enrolled) {
        snprintf(err, errlen, "--hub %s: not enrolled with a hub (otasukectl hub enroll)", dir);
        hubclient_close(h->hc);
        free(h);
        return -1;
    }
    if (hub_row(ad->db, &in, err, errlen) < 0 ||
        pipe2(h->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        hubclient_close(h->hc);
        free(h);
        return -1;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_cond_init(&h->nap_cv, NULL);
    /* Contributions and relayed policy changes: hubshare.c, its own thread and client;
     * the watch below subscribes to box/<user>/policy and passes each notice on. */
    if (hubshare_start(ad, dir, h->pipe[1], e2, sizeof e2) < 0)
        log_warn("%s; no contributions, no delegated changes through the hub", e2);
    else
        hubclient_set_policy_notify(h->hc, hubshare_policy_notice, NULL);
    hubclient_set_error_notify(h->hc, say_error, NULL);
    if (pthread_create(&h->thread, NULL, hub_thread, h) != 0) {
        snprintf(err, errlen, "--hub: cannot start its thread");
        return -1;
    }

    h->hb_seq = (long long)in.seq;
    ad->hub = h;
    ad->hub_fd = h->pipe[0];
    /* the first heartbeat goes out at once, so the fleet view shows the box right away */
    agentd_hub_snapshot(ad, time(NULL));
    h->hb_hc = hubclient_open(dir, e2, sizeof e2);
    h->hb_started = h->hb_hc && pthread_create(&h->hb_thread, NULL, heartbeat_thread, h) == 0;
    if (!h->hb_started)
        log_warn("hub %s: no heartbeats: %s", in.url, h->hb_hc ? "cannot start the thread" : e2);
    log_info("hub %s: feed %s, seq %llu, MQTT %s", in.url, in.feed_id,
             (unsigned long long)in.seq, in.mqtt_broker[0] ? in.mqtt_broker : "none (polling)");
    return 0;
}

void agentd_hub_handle(struct agentd *ad, int64_t now)
{
    struct agentd_hub *h = ad->hub;
    char b, err[AGENT_ERR];
    while (read(h->pipe[0], &b, 1) == 1)
        ;
    pthread_mutex_lock(&h->mu);
    if (h->pending && !h->done) {
        int64_t id = hub_row_id(ad->db);
        int rc = id > 0 ? agentd_feed_apply_verified(ad->db, id, h->fd, &h->m, now, err,
                                                     sizeof err) : -1;
        if (rc > 0) {
            if (h->m.type == FEED_DELTA)
                ad->delta_dirty = 1;   /* an overlay compile (compile.c) is enough */
            else
                ad->dirty = 1;
            log_info("hub feed seq %llu applied (%llu entries)", (unsigned long long)h->m.seq,
                     (unsigned long long)h->m.count);
            h->hb_seq = (long long)h->m.seq;
            h->hb_wake = 1;
            pthread_cond_broadcast(&h->nap_cv);
        } else {
            ad->n.feed_refusals++;
            snprintf(h->verdict, sizeof h->verdict, "%s", id > 0 ? err : "no 'hub' feed row");
            log_warn("hub feed seq %llu: %s", (unsigned long long)h->m.seq, h->verdict);
        }
        h->rc = rc > 0 ? 0 : -1;
        h->done = 1;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    hubshare_handle(ad, now);   /* a relayed policy message, if one is waiting */
}

/* Waits for t until deadline (CLOCK_REALTIME), poking the watch every 100 ms: a stop asked
 * just before hubclient_watch starts is cleared by it, so one poke is not enough. */
static int join_by(struct agentd_hub *h, pthread_t t, const struct timespec *deadline)
{
    for (;;) {
        hubclient_stop(h->hc);
        struct timespec now, step;
        clock_gettime(CLOCK_REALTIME, &now);
        step = now;
        step.tv_nsec += 100 * 1000 * 1000;
        if (step.tv_nsec >= 1000000000L) {
            step.tv_sec++;
            step.tv_nsec -= 1000000000L;
        }
        if (pthread_timedjoin_np(t, NULL, &step) == 0)
            return 0;
        if (now.tv_sec > deadline->tv_sec ||
            (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec))
            return -1;
    }
}

int agentd_hub_stop(struct agentd *ad)
{
    struct agentd_hub *h = ad->hub;
    if (!h)
        return 0;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_cond_broadcast(&h->nap_cv);
    pthread_mutex_unlock(&h->mu);
    /* a download or heartbeat in flight ends by its own timeout; give them a few seconds */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += HUB_STOP_SECONDS;
    int rc = hubshare_stop(&deadline);
    if (join_by(h, h->thread, &deadline) < 0 ||
        (h->hb_started && join_by(h, h->hb_thread, &deadline) < 0))
        return -1;
    hubclient_close(h->hc);
    if (h->hb_hc)
        hubclient_close(h->hb_hc);
    close(h->pipe[0]);
    close(h->pipe[1]);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->nap_cv);
    free(h);
    ad->hub = NULL;
    ad->hub_fd = -1;
    return rc;
}
