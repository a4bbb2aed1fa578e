/* The box's side of a hub: enrolment, heartbeat, contributions, false-positive reports,
 * and the shared feed (MQTT "seq N is out" -> fetch the delta over HTTPS -> verify with
 * feed.h -> hand it to the caller). The agent links this; otasukectl hub uses it too.
 *
 * State lives in one directory (default /var/lib/otasuke/hub): box.key (Ed25519, 0600),
 * hub.json (URL, credentials, pinned feed key, last accepted seq; 0600) and, when the
 * caller uses hubclient_store_apply, feed.json (the applied entries). The hub's TLS
 * certificate is pinned by path (cacert), copied into the state dir at enrolment.
 *
 * Nothing here logs or exits; errors fill err and return -1 (or a feed_reason). Not
 * thread-safe: one hubclient per thread. */
#ifndef OTASUKE_HUBCLIENT_H
#define OTASUKE_HUBCLIENT_H

#include "feed.h"
#include "filesink.h"

#include <stddef.h>
#include <stdint.h>

struct hubclient;

/* Opens (creating) the state dir and loads hub.json if present. NULL with err. */
struct hubclient *hubclient_open(const char *state_dir, char *err, size_t errlen);
void hubclient_close(struct hubclient *hc);

/* What the box knows about its hub; strings point into hc. */
struct hubclient_info {
    int enrolled;
    const char *url;
    long box_id;
    const char *org;              /* the organisation the box was enrolled in, "" if unknown */
    const char *feed_id;
    const char *feed_key_id;
    const char *mqtt_broker;      /* host:port, "" if the hub named none */
    uint64_t seq;                 /* last accepted feed seq, 0 = none */
    int64_t last_sync;            /* when a document was last accepted (or found current) */
    int64_t feed_created;         /* "created" of the last accepted document */
    const char *last_error;       /* "" if the last sync worked */
    int64_t last_error_at;
};
void hubclient_info(const struct hubclient *hc, struct hubclient_info *out);

/* Overrides the hub URL for this handle only (tests, a moved hub). Not saved. */
void hubclient_set_url(struct hubclient *hc, const char *url);

/* Enrols: makes the box key if needed, asks a challenge, signs it, sends the code.
 * cacert = PEM file of the hub certificate, copied into the state dir and pinned from then
 * on; NULL = trust the system's CAs (a hub with a CA-issued certificate). Returns 0, or
 * -1 with err carrying the hub's explanation ("field 'code': ... already used"). */
int hubclient_enroll(struct hubclient *hc, const char *url, const char *code,
                     const char *cacert, const char *name, const char *version,
                     char *err, size_t errlen);

struct hubclient_heartbeat {
    const char *version;
    long long open_incidents;
    const char *counters_json;    /* flat object of integers, or NULL */
    long long feed_seq;           /* the seq this box has applied; 0 = this client's own */
};
/* Sends a heartbeat; *hub_seq (may be NULL) gets the hub's current feed seq. */
int hubclient_heartbeat(struct hubclient *hc, const struct hubclient_heartbeat *hb,
                        long long *hub_seq, char *err, size_t errlen);

struct hubclient_indicator {
    const char *indicator;
    const char *kind;             /* domain|ipv4|ipv6|cidr */
    const char *category;
    long count;
    int64_t first_seen, last_seen;
};
/* Sends indicators (only what the owner agreed to share: no client addresses).
 * *promoted (may be NULL) = how many made it into the feed. */
int hubclient_contribute(struct hubclient *hc, const struct hubclient_indicator *v, int n,
                         int *promoted, char *err, size_t errlen);
/* Like hubclient_contribute, but a hub that answered counts as success: *rejected (may be
 * NULL) gets how many indicators it refused (they will never be accepted; err names the
 * first), the others were counted. -1 only when nothing was counted (transport, auth). */
int hubclient_contribute_ex(struct hubclient *hc, const struct hubclient_indicator *v, int n,
                            int *promoted, int *rejected, char *err, size_t errlen);
int hubclient_report_fp(struct hubclient *hc, const char *indicator, const char *kind,
                        char *err, size_t errlen);

/* Delegated policy changes the hub relays to this box, oldest first, ids > after (at most
 * 100 per call). fn gets the exact signed text, the signer's key id and the base64
 * signature: the caller (the agent) verifies them against the owner's grants before
 * applying anything; the hub is only the courier. Returns the number of messages, -1. */
typedef int (*hubclient_policy_fn)(long long id, const char *signer, const char *change,
                                   const char *signature, void *ctx);
int hubclient_policy_fetch(struct hubclient *hc, long long after, hubclient_policy_fn fn,
                           void *ctx, char *err, size_t errlen);

/* Tells the hub what became of relayed policy message id: status "applied" or "refused",
 * detail = the agent's reason (no client data). Returns 0 or -1 with err. */
int hubclient_policy_result(struct hubclient *hc, long long id, const char *status,
                            const char *detail, char *err, size_t errlen);

/* Called with a verified document in the file fd (an anonymous file in the state
 * directory: read it with feed_foreach_entry_fd, never whole; do not close it). Returns 0
 * when applied (the seq is then saved), non-zero to refuse it (the seq stays) with err
 * saying why. It must be all or nothing: a refused document leaves no trace. */
typedef int (*hubclient_apply_fn)(int fd, const struct feed_manifest *m, void *ctx,
                                  char *err, size_t errlen);

/* Most bytes a hub feed document may have. It goes to disk, so the bound is the disk's
 * business, not the heap's: the size limit of any signed feed. */
#define HUBCLIENT_DOC_MAX FEED_DEFAULT_MAX_BYTES

/* Brings the feed up to date: delta from our seq (snapshot if we have none or the hub
 * says ours is too old), downloaded to an anonymous file in the state directory and
 * verified there in 64 KiB chunks against the pinned key, feed id, seq and expiry
 * before fn sees a byte (a million-entry snapshot never sits in memory). Returns FEED_OK (also when already current; *updated says
 * whether a document was applied), or the reason it was refused with err; transport
 * failures return FEED_OK-less -1. The reason is also kept as last_error. */
int hubclient_sync(struct hubclient *hc, hubclient_apply_fn fn, void *ctx, int *updated,
                   char *err, size_t errlen);

/* Handles one MQTT notification payload ("seq N\n" [+ sig line + delta]): uses the
 * inline delta when it applies to our seq, else calls hubclient_sync. Same returns. */
int hubclient_notify(struct hubclient *hc, const char *payload, size_t len,
                     hubclient_apply_fn fn, void *ctx, int *updated, char *err, size_t errlen);

/* Splits a notification payload: "seq N\n" and, optionally, a signature line and a
 * document. Pointers go into payload (sig/doc NULL when absent). Returns 0 or -1 when
 * it is not a notification. Exposed for the fuzzer. */
int hubclient_notify_parse(const char *payload, size_t len, unsigned long long *seq,
                           const char **sig, size_t *siglen, const char **doc, size_t *doclen);

/* Subscribes to the feed topic and syncs on every notification, once at start and every
 * HUBCLIENT_POLL_SECONDS (a safety net for a lost notification) until max_seconds pass or stop_after updates were applied (0 = no limit).
 * Returns the number of updates applied, or -1 with err. */
#define HUBCLIENT_POLL_SECONDS 60
int hubclient_watch(struct hubclient *hc, hubclient_apply_fn fn, void *ctx, int max_seconds,
                    int stop_after, char *err, size_t errlen);

/* Asks a running hubclient_watch (on another thread) to return within ~100 ms. */
void hubclient_stop(struct hubclient *hc);
/* With a callback set, hubclient_watch also subscribes to box/<user>/policy and calls
 * fn(id) for each "policy <id>" notice; fetch with hubclient_policy_fetch. NULL: off. */
void hubclient_set_policy_notify(struct hubclient *hc, void (*fn)(long long id, void *ctx),
                                 void *ctx);

/* With a callback set, every new feed error (a refusal, a download that cannot be
 * stored, a hub that does not answer) is passed to fn once when it first appears, also
 * from inside hubclient_watch, which otherwise keeps them to itself. hub.json carries
 * it as last_error as well, but cannot when the disk is full. NULL: off. */
void hubclient_set_error_notify(struct hubclient *hc, void (*fn)(const char *msg, void *ctx),
                                void *ctx);

/* A ready-made applier: keeps <state>/feed.json (indicator -> entry) up to date.
 * ctx = the hubclient. */
int hubclient_store_apply(int fd, const struct feed_manifest *m, void *ctx, char *err,
                          size_t errlen);
/* Path of that file (inside hc). */
const char *hubclient_store_path(const struct hubclient *hc);

/* ---- internal, shared by hubclient.c and hubclient_feed.c ---- */
struct hubclient_http {
    long status;
    char *body;
    size_t len;
    size_t cap;                   /* allocated size of body (growbuf doubling) */
    char sig[200];                /* X-Otasuke-Sig, if the hub sent it */
    struct filesink *sink;        /* the body of a 2xx answer went there, not to body */
};
int hubclient_request(struct hubclient *hc, const char *method, const char *path,
                      const char *body, int auth, struct hubclient_http *res,
                      char *err, size_t errlen);
/* The same, but the body goes to sink (bounded by sink->max); for an answer other than
 * 2xx, its first 4 KiB are also read back into res->body for hubclient_http_error.
 * A body that cannot be stored fails with err saying why (a full disk: the update is
 * refused, the last good lists keep protecting). */
int hubclient_request_to(struct hubclient *hc, const char *method, const char *path,
                         struct filesink *sink, struct hubclient_http *res, char *err,
                         size_t errlen);
void hubclient_http_free(struct hubclient_http *res);
int hubclient_save(struct hubclient *hc, char *err, size_t errlen);
void hubclient_set_error(struct hubclient *hc, const char *msg);
/* Writes the hub's {"error": ...} (or the HTTP status) into err. */
void hubclient_http_error(const struct hubclient_http *r, const char *what, char *err,
                          size_t errlen);

#endif
