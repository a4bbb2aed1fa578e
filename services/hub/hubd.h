/* otasuke-hubd: enrolment, fleet view, shared feed with community consensus, MQTT push.
 * Modules: hubstate (keys, secrets, hashing), enroll (orgs, codes, boxes), consensus
 * (contributions -> indicators -> feed seq), feedpub (signed snapshot/delta documents),
 * body (API body validation), api (HTTPS), mqttpub (broker files + notifications),
 * tls (self-signed certificate), admin (operator CLI). */
#ifndef OTASUKE_HUBD_H
#define OTASUKE_HUBD_H

#include "feed.h"
#include "hubdb.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#define HUB_TOKEN_HEX   64            /* 32 random bytes, hex */
#define HUB_HASH_HEX    64            /* SHA-256, hex */
#define HUB_PSEUD_HEX   32            /* 16 bytes of HMAC, hex */

struct hub_opts {
    const char *state_dir;            /* keys, cert, sqlite db, mosquitto files */
    const char *db_uri;               /* NULL = <state_dir>/hub.db */
    const char *listen;               /* "ADDR:PORT" or "[v6]:PORT" */
    const char *feed_id;
    const char *mqtt_host;            /* broker hubd publishes to (loopback listener) */
    int mqtt_port;
    const char *public_mqtt;          /* host:port boxes are told to use */
    const char *public_mqtt_tls;      /* "1" if that listener speaks TLS */
    int k;                            /* distinct orgs needed to promote */
    int fp_k;                         /* distinct orgs' false-positive reports to demote */
    int online_secs;                  /* heartbeat within this = online */
    int64_t entry_ttl;                /* community entries expire unless seen again */
    int64_t doc_ttl;                  /* validity of a served feed document */
    int64_t code_ttl;                 /* default enrolment code lifetime */
    const char *tls_priorities;       /* GnuTLS priority string for the HTTPS listener */
    const char *console_dir;          /* MSP console files; NULL = HUB_CONSOLE_DIR_DEFAULT */
};

void hub_opts_defaults(struct hub_opts *o);

struct hub {
    struct hub_opts o;
    struct hubdb *db;
    uint8_t feed_pk[FEED_PUBKEY_BYTES];
    uint8_t feed_sk[FEED_SECKEY_BYTES];
    char feed_keyid[FEED_KEYID_LEN + 1];
    uint8_t pseud_key[32];            /* HMAC key for org pseudonyms */
    char mqtt_dir[512];               /* <state>/mosquitto */
};

/* ---- hubstate.c ---- */
/* Opens the state dir (creating keys/secrets on first use, 0600) and the database.
 * Returns 0 or -1 with err. */
int hub_open(struct hub *h, const struct hub_opts *o, char *err, size_t errlen);
void hub_close(struct hub *h);
/* Lower-case hex SHA-256 of data into out (65 bytes). */
void hub_sha256_hex(const void *data, size_t len, char out[HUB_HASH_HEX + 1]);
/* Random secret as hex (2*nbytes + 1 bytes of out). */
void hub_random_hex(size_t nbytes, char *out);
/* Keyed pseudonym of an organisation: hex(HMAC-SHA256(pseud_key, "org:" id))[0..32]. */
void hub_org_pseudonym(const uint8_t key[32], long org_id, char out[HUB_PSEUD_HEX + 1]);
/* Mosquitto password-file hash ($7$ PBKDF2-SHA512, 101 rounds) of password. 0 or -1. */
int hub_mqtt_pwhash(const char *password, char *out, size_t outlen);
/* Appends an audit record; never contains secrets. */
void hub_audit(struct hub *h, const char *actor, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
long long hub_now(void);

/* ---- enroll.c ---- */
long hub_org_add(struct hub *h, const char *name, char *err, size_t errlen);
long hub_org_find(struct hub *h, const char *name, char *err, size_t errlen);
/* Creates a one-time code for org (ttl seconds); writes it into code (>= 32 bytes).
 * Only its hash is stored. Returns 0 or -1. */
int hub_code_create(struct hub *h, long org_id, int64_t ttl, char *code, size_t codelen,
                    char *err, size_t errlen);
/* New enrolment challenge (base64 nonce, valid 120 s). */
int hub_challenge_new(struct hub *h, char *nonce, size_t noncelen, char *err, size_t errlen);

struct hub_enroll_req {
    char code[64];
    char pubkey[64];                  /* base64 Ed25519 public key */
    char nonce[64];
    char signature[128];              /* base64 sig over hub_enroll_message() */
    char name[64];
    char version[32];
};
struct hub_enroll_res {
    long box_id;
    long org_id;
    char token[HUB_TOKEN_HEX + 1];
    char mqtt_user[40];
    char mqtt_pass[HUB_TOKEN_HEX + 1];
};
/* The bytes a box signs to prove it holds its key. */
int hub_enroll_message(const char *nonce, const char *pubkey_b64, const char *code,
                       char *out, size_t outlen);
/* Enrols a box. Returns 0, or an HTTP status (400/403/409) with err saying why. */
int hub_enroll(struct hub *h, const struct hub_enroll_req *rq, struct hub_enroll_res *rs,
               char *err, size_t errlen);
/* Finds the box of an API token. Returns box id (>0) and its org, 0 if unknown or
 * revoked, -1 on database error. */
long hub_box_auth(struct hub *h, const char *token, long *org_id, char *err, size_t errlen);
int hub_operator_auth(struct hub *h, const char *token);
int hub_box_revoke(struct hub *h, long box_id, char *err, size_t errlen);
/* Enrolment rate limit per source address (challenge and enrol requests both count;
 * refused enrolments count again as failures). Thread-safe, in memory. */
#define HUB_ENROLL_ATTEMPTS_PER_MIN 60
#define HUB_ENROLL_FAILURES_PER_MIN 10
/* Returns 0 (go on; the attempt is counted) or the seconds to wait, with err saying why
 * (answer 429). */
int hub_enroll_limit_check(const char *addr, long long now, char *err, size_t errlen);
void hub_enroll_limit_failed(const char *addr, long long now);
/* Changes the limits and forgets every window (tests). */
void hub_enroll_limit_set(int attempts, int failures);

/* ---- consensus.c ---- */
struct hub_contrib {
    char indicator[FEED_INDICATOR_MAX + 1];
    char kind[8];
    char category[24];
    long count;
    int64_t first_seen, last_seen;
};
/* Records a contribution of org (by pseudonym) and promotes when k distinct orgs agree.
 * Returns 1 if it changed the feed, 0 if not, -1 on error. */
int hub_contribute(struct hub *h, long org_id, const struct hub_contrib *c,
                   char *err, size_t errlen);
/* A false-positive report; demotes at fp_k distinct orgs. Same returns. */
int hub_report_fp(struct hub *h, long org_id, const char *indicator, const char *kind,
                  char *err, size_t errlen);
/* Operator / analyst actions. source "operator" or "analyst". Same returns. */
int hub_indicator_add(struct hub *h, const char *indicator, const char *kind,
                      const char *category, const char *source, char *err, size_t errlen);
int hub_indicator_confirm(struct hub *h, const char *indicator, const char *kind,
                          const char *category, char *err, size_t errlen);
int hub_indicator_remove(struct hub *h, const char *indicator, const char *kind,
                         char *err, size_t errlen);
int hub_allow_add(struct hub *h, const char *indicator, const char *kind, const char *note,
                  char *err, size_t errlen);
/* Imports a curated list file (any lists.h format) as source "list:<label>", replacing
 * that label's previous import. Returns 1 if the feed changed, 0 if not, -1 with err. */
int hub_indicator_import(struct hub *h, const char *path, const char *category,
                         const char *label, long *added, long *removed, char *err,
                         size_t errlen);
/* Removes expired entries. Returns the number removed, -1 on error. */
int hub_expire(struct hub *h, char *err, size_t errlen);
/* Current feed seq (0 = nothing published yet), -1 on error. */
long long hub_feed_seq(struct hub *h, char *err, size_t errlen);
/* Normalises an indicator for kind (domains lower-case, no trailing dot) and checks it.
 * Returns 0 or -1 with err. */
int hub_indicator_norm(const char *in, const char *kind, char *out, size_t outlen,
                       char *err, size_t errlen);

/* ---- feedpub.c ---- */
/* A signed document: text + its detached signature line. Owned by the caller. */
struct hub_doc {
    char *text;
    size_t len;
    char sig[160];
    size_t siglen;
    unsigned long long seq;
};
/* Builds and signs the snapshot (from = 0 and want_snapshot) or the delta from seq
 * "from" to the current seq. Returns 0, 1 if from is current (nothing to send: 204),
 * 2 if from is unknown/too old (410: take the snapshot), -1 on error. */
int hub_doc_build(struct hub *h, int want_snapshot, unsigned long long from,
                  struct hub_doc *d, char *err, size_t errlen);
void hub_doc_free(struct hub_doc *d);
/* Drops cached documents (a hub_open on another database, tests). */
void hub_doc_cache_clear(void);

/* ---- body.c (no database: fuzzed) ---- */
int hub_body_enroll(const char *body, size_t len, struct hub_enroll_req *rq,
                    char *err, size_t errlen);
struct hub_heartbeat {
    char version[32];
    long long feed_seq;
    long long open_incidents;
    char counters[1024];              /* re-serialised compact JSON object */
};
int hub_body_heartbeat(const char *body, size_t len, struct hub_heartbeat *hb,
                       char *err, size_t errlen);
#define HUB_CONTRIB_MAX 500
/* Parses {"indicators":[{...},...]}; fills up to max entries. Returns count or -1. */
int hub_body_contrib(const char *body, size_t len, struct hub_contrib *out, int max,
                     char *err, size_t errlen);
int hub_body_fp(const char *body, size_t len, char *indicator, size_t ilen, char *kind,
                size_t klen, char *err, size_t errlen);

struct hub_policy {
    char change[64 * 1024];           /* the exact signed text: a JSON object */
    char signer[FEED_KEYID_LEN + 1];  /* key id of the delegate's key */
    char signature[128];              /* base64 Ed25519 over change */
};
/* Parses {"change": "<JSON object text>", "signer": "16 hex", "signature": "base64"}. */
int hub_body_policy(const char *body, size_t len, struct hub_policy *pol, char *err,
                    size_t errlen);

/* Parses {"status":"applied"|"refused","detail":"..."} (a box's verdict on a relayed
 * policy message). Returns 0 or -1 with err naming the field. */
#define HUB_POLICY_DETAIL_MAX 400
int hub_body_policy_result(const char *body, size_t len, char *status, size_t slen,
                           char *detail, size_t dlen, char *err, size_t errlen);

/* ---- policy.c ---- */
/* Stores a policy change for box_id (sender = operator name, for the audit) and returns
 * its id (> 0), 0 if the box is unknown or revoked, -1 on error. */
long hub_policy_relay(struct hub *h, long box_id, const char *sender,
                      const struct hub_policy *pol, char *mqtt_user, size_t ulen,
                      char *err, size_t errlen);
/* Records box_id's verdict on its message msg_id (first verdict wins; audited). Returns 1,
 * 0 if the message is not this box's, -1 on error. */
int hub_policy_result(struct hub *h, long box_id, long long msg_id, const char *status,
                      const char *detail, char *err, size_t errlen);
/* Messages relayed to box_id with id > after, oldest first (at most 100), with their
 * verdict: JSON array (new reference) or NULL with err. For the operator / MSP console. */
struct json_t;
struct json_t *hub_policy_list(struct hub *h, long box_id, long long after, char *err,
                               size_t errlen);
/* Operator name for an API token, or -1/0 like hub_operator_auth. */
int hub_operator_name(struct hub *h, const char *token, char *name, size_t namelen);

/* ---- mqttpub.c ---- */
/* Writes <mqtt_dir>/passwd (hub user + every active box) and acl atomically, then
 * signals the broker (pid file) to reload. Returns 0 or -1. */
int hub_mqtt_write_files(struct hub *h, char *err, size_t errlen);
int hub_mqtt_start(struct hub *h, char *err, size_t errlen);
/* Connects/reconnects and moves MQTT traffic; call every tick. Returns 1 if connected. */
/* reply.c: JSON answers (Cache-Control: no-store; o is consumed), {"error": msg}, and the
 * token of an "Authorization: Bearer" header (NULL if none). Shared by every handler. */
enum MHD_Result hub_send_json(struct MHD_Connection *c, unsigned status, json_t *o);
enum MHD_Result hub_send_err(struct MHD_Connection *c, unsigned status, const char *msg);
const char *hub_bearer(struct MHD_Connection *c);

int hub_mqtt_poll(void);
/* Publishes "feed/<id>" with "seq N". Returns 0 or -1. */
int hub_mqtt_notify(struct hub *h, unsigned long long seq, const struct hub_doc *inline_doc);
void hub_mqtt_stop(void);
/* Publishes "policy <id>" on box/<user>/policy (QoS 1, not retained). */
int hub_mqtt_box_notify(const char *mqtt_user, long id);

/* ---- tls.c ---- */
/* Makes <state>/tls/cert.pem + key.pem (self-signed, ECDSA P-256, SAN = hosts) unless
 * present. Returns 0 or -1. */
int hub_tls_ensure(const char *state_dir, const char *hosts, char *err, size_t errlen);

/* ---- api.c ---- */
int hub_api_run(struct hub *h, volatile int *stop, char *err, size_t errlen);

/* ---- admin.c ---- */
int hub_admin(struct hub_opts *o, int argc, char **argv);

#endif
