/* Reload without stalling queries: the new set and policy are opened and verified
 * (mmap, checksum over the whole file, JSON parse) on a helper thread, and only the
 * pointer swap happens on the event loop, between two events. Opening a 1M-name set
 * takes 5-15 ms, which on the loop would hold every query for that long; the swap
 * takes microseconds. Closing the old set goes back to the helper thread too: when the
 * file was replaced by rename, the last munmap frees the old file's page cache, 20 ms
 * for 40 MB. The helper touches nothing the loop uses: it gets the paths, hands back
 * two new objects (or an error), then gets the two old ones to free.
 *
 * Handshake: worker loads, sets `loaded`, pokes the eventfd, waits on a condition for
 * the old objects; the loop swaps and hands them over; worker frees them, sets
 * `finished`, pokes again; the loop joins it.
 *
 * Requests that arrive while a load runs are folded into one more load after it, so
 * twenty reloads in a burst cost at most two loads, and each requester (control
 * connection) gets the result of a load that started after its request. */
#include "dnsd.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct reload_job {
    const char *domains_path, *policy_path, *query_events_path;
    struct qtune query;              /* the query-events file, loaded with the rest */
    int query_rc;                    /* qtune_load's answer */
    char query_err[512];
    struct dset *set, *old_set;
    struct policy_set *policy, *old_policy;
    int ok;
    uint64_t load_us;
    char err[512];
};

static struct reload_job job;
static pthread_t worker;
static pthread_mutex_t handoff_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t handoff_cv = PTHREAD_COND_INITIALIZER;
static int handed_off;                       /* under handoff_mu */
static int loaded, finished;                 /* set by the worker, atomics */
static int running, swapped, again;          /* loop only */
static int waiting[8], n_waiting;            /* control slots waiting for this load */
static int waiting_next[8], n_waiting_next;  /* ... for the load after it */

static void poke(struct dnsd *d)
{
    uint64_t one = 1;
    ssize_t w = write(d->reload_efd, &one, sizeof one);   /* cannot fail: counter < 2^64-1 */
    (void)w;
}

static void *reload_worker(void *arg)
{
    struct dnsd *d = arg;
    /* the lowest priority for this thread only: on a busy 2-core box the checksum of a
     * big set must not take CPU from the loop answering queries */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
    uint64_t t0 = clock_us();
    if (job.domains_path) {
        job.set = dset_open(job.domains_path, job.err, sizeof job.err);
        if (!job.set)
            goto done;
    }
    job.policy = job.policy_path ? policy_load(job.policy_path, job.err, sizeof job.err)
                                 : policy_default(job.err, sizeof job.err);
    if (!job.policy) {
        if (job.set)
            dset_close(job.set);
        job.set = NULL;
        goto done;
    }
    job.ok = 1;
    if (job.query_events_path)
        job.query_rc = qtune_load(job.query_events_path, &job.query, job.query_err,
                                  sizeof job.query_err);
done:
    job.load_us = clock_us() - t0;
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
    poke(d);
    pthread_mutex_lock(&handoff_mu);
    while (!handed_off)
        pthread_cond_wait(&handoff_cv, &handoff_mu);
    pthread_mutex_unlock(&handoff_mu);
    if (job.old_set)
        dset_close(job.old_set);
    policy_free(job.old_policy);
    __atomic_store_n(&finished, 1, __ATOMIC_RELEASE);
    poke(d);
    return NULL;
}

static void hand_off(struct dset *old_set, struct policy_set *old_policy)
{
    pthread_mutex_lock(&handoff_mu);
    job.old_set = old_set;
    job.old_policy = old_policy;
    handed_off = 1;
    pthread_cond_signal(&handoff_cv);
    pthread_mutex_unlock(&handoff_mu);
}

/* Loads set and policy named in the options. On success swaps them in and closes the old
 * ones; on failure keeps the old ones and fills err. */
int dnsd_reload(struct dnsd *d, char *err, size_t errlen)
{
    struct dset *set = NULL;
    struct policy_set *ps = NULL;
    if (d->o.domains_path) {
        set = dset_open(d->o.domains_path, err, errlen);
        if (!set)
            goto fail;
    }
    ps = d->o.policy_path ? policy_load(d->o.policy_path, err, errlen) : policy_default(err, errlen);
    if (!ps)
        goto fail;
    dnsd_swap(d, set, ps, NULL, NULL);
    if (d->o.query_events_path) {
        struct qtune t;
        char qerr[512];
        int qrc = qtune_load(d->o.query_events_path, &t, qerr, sizeof qerr);
        qtune_apply(d, qrc, &t, qerr);
    }
    return 0;
fail:
    if (set)
        dset_close(set);
    d->st.reloads_failed++;
    return -1;
}

void dnsd_swap(struct dnsd *d, struct dset *set, struct policy_set *ps,
               struct dset **old_set, struct policy_set **old_ps)
{
    /* called between two events: no query sees half of it */
    struct dset *prev_set = d->set;
    struct policy_set *prev_ps = d->policy;
    d->set = set;
    d->policy = ps;
    if (old_set) {
        *old_set = prev_set;
        *old_ps = prev_ps;
    } else {
        if (prev_set)
            dset_close(prev_set);
        policy_free(prev_ps);
    }
    d->st.reloads_ok++;
    log_info("loaded: %s (%llu names), %s (%u groups)",
             d->o.domains_path ? d->o.domains_path : "no domain set",
             (unsigned long long)(set ? dset_name_count(set) : 0),
             d->o.policy_path ? d->o.policy_path : "default policy", policy_group_count(ps));
}

int reload_init(struct dnsd *d, char *err, size_t errlen)
{
    d->reload_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_TAG(EV_RELOAD, 0) };
    if (d->reload_efd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->reload_efd, &ev) < 0) {
        snprintf(err, errlen, "reload eventfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void start(struct dnsd *d)
{
    memset(&job, 0, sizeof job);
    job.domains_path = d->o.domains_path;
    job.policy_path = d->o.policy_path;
    job.query_events_path = d->o.query_events_path;
    loaded = finished = handed_off = swapped = 0;
    memcpy(waiting, waiting_next, sizeof waiting);
    n_waiting = n_waiting_next;
    n_waiting_next = 0;
    again = 0;
    if (pthread_create(&worker, NULL, reload_worker, d) != 0) {
        /* no thread: load on the loop, slower but correct */
        char err[512], msg[600];
        int r = dnsd_reload(d, err, sizeof err);
        if (r < 0)
            log_error("reload refused, keeping the loaded set and policy: %s", err);
        snprintf(msg, sizeof msg, r == 0 ? "ok\n" : "error: %s\n", err);
        for (int i = 0; i < n_waiting; i++)
            control_reply(d, waiting[i], msg);
        n_waiting = 0;
        return;
    }
    running = 1;
}

void reload_request(struct dnsd *d, int ctl_slot)
{
    if (ctl_slot >= 0 && n_waiting_next < (int)(sizeof waiting_next / sizeof waiting_next[0]))
        waiting_next[n_waiting_next++] = ctl_slot;
    if (running) {
        again = 1;
        return;
    }
    start(d);
}

void reload_done(struct dnsd *d)
{
    uint64_t v;
    if (read(d->reload_efd, &v, sizeof v) < 0 || !running)
        return;
    if (!swapped && __atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) {
        swapped = 1;
        char msg[600];
        struct dset *old_set = NULL;
        struct policy_set *old_policy = NULL;
        if (job.ok) {
            uint64_t t0 = clock_us();
            dnsd_swap(d, job.set, job.policy, &old_set, &old_policy);
            if (job.query_events_path)
                qtune_apply(d, job.query_rc, &job.query, job.query_err);
            log_debug("reload: load %llu us on the helper thread, swap %llu us on the loop",
                      (unsigned long long)job.load_us, (unsigned long long)(clock_us() - t0));
            snprintf(msg, sizeof msg, "ok\n");
        } else {
            d->st.reloads_failed++;
            log_error("reload refused, keeping the loaded set and policy: %s", job.err);
            snprintf(msg, sizeof msg, "error: %s\n", job.err);
        }
        hand_off(old_set, old_policy);
        for (int i = 0; i < n_waiting; i++)
            control_reply(d, waiting[i], msg);
        n_waiting = 0;
    }
    if (swapped && __atomic_load_n(&finished, __ATOMIC_ACQUIRE)) {
        pthread_join(worker, NULL);
        running = 0;
        if (again || n_waiting_next)
            start(d);
    }
}

void reload_shutdown(void)
{
    if (!running)
        return;
    while (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
        usleep(1000);
    if (!swapped) {
        /* loaded but never swapped in: the new objects are the ones to free */
        hand_off(job.set, job.policy);
    }
    pthread_join(worker, NULL);
    running = 0;
}
