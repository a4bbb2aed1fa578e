/* The agent's periodic work, run from the main loop between API requests. */
#include "agentd.h"
#include "incidents.h"
#include "log.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

void agentd_tick(struct agentd *ad, int64_t now)
{
    incidents_tick(ad, now);   /* notification retries, feed staleness, box health */
    agentd_hub_snapshot(ad, now);
    int64_t next = agentd_feeds_next(ad->db, now);
    if (ad->feeds_due_now || next == 0)
        agentd_feeds_due(ad, now);
    if (now != ad->policy_sig_at) {
        uint64_t sig = agentd_policy_signature(ad->db, now);
        if (sig != ad->policy_sig && ad->policy_sig_at != 0)
            ad->dirty = 1;
        ad->policy_sig = sig;
        ad->policy_sig_at = now;
    }
    if (!ad->dirty && ad->delta_dirty) {
        /* Only feed deltas changed: the overlay beside domains.set is enough. */
        char e2[AGENT_ERR];
        ad->delta_dirty = 0;
        int drc = agentd_compile_delta(ad, now, e2, sizeof e2);
        if (drc == 0) {
            ad->n.compiles++;
            ad->last_compile = now;
            ad->last_compile_error[0] = '\0';
            agentd_feeds_maintain(ad->db);   /* dnsd serves the delta: now the bookkeeping */
            return;
        }
        if (drc < 0)
            log_warn("overlay compile failed, compiling everything: %s", e2);
        ad->dirty = 1;
    }
    if (!ad->dirty) {
        agentd_feeds_maintain(ad->db);
        return;
    }
    /* Cleared before compiling: a change that lands while we compile sets it again and
     * gets exactly one more compile. */
    ad->dirty = 0;
    char err[AGENT_ERR];
    if (agentd_compile(ad, now, err, sizeof err) < 0) {
        ad->n.compile_errors++;
        snprintf(ad->last_compile_error, sizeof ad->last_compile_error, "%s", err);
        log_error("compile failed, daemons keep the previous artifacts: %s", err);
        return;
    }
    /* A 1M-name build allocates a few hundred MB for a second; hand it back to the system
     * instead of keeping it in malloc's free lists until the next compile. */
    malloc_trim(0);
    ad->n.compiles++;
    ad->last_compile = now;
    ad->last_compile_error[0] = '\0';
    ad->policy_sig = agentd_policy_signature(ad->db, now);
    log_info("compiled: %llu domains, %llu firewall elements in %.3f s",
             (unsigned long long)ad->n.last_domains, (unsigned long long)ad->n.last_fw_elems,
             ad->n.last_compile_seconds);
}

int agentd_next_wake_ms(struct agentd *ad, int64_t now)
{
    if (ad->dirty || ad->delta_dirty)
        return 0;
    if (ad->job)
        return 1000;   /* a download runs; its pipe wakes the loop when it is done */
    if (ad->feeds_due_now)
        return 0;
    int64_t next = agentd_feeds_next(ad->db, now);
    return next == 0 ? 0 : 1000;
}
