/* Organisations, one-time enrolment codes, box enrolment and revocation, API tokens.
 * Codes, tokens and MQTT passwords are stored only as hashes; the clear value is shown
 * once (to the operator for codes, to the box for its credentials). */
#include "hubd.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHALLENGE_TTL 120

long hub_org_add(struct hub *h, const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64) {
        snprintf(err, errlen, "organisation name must be 1..64 characters");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20) {
            snprintf(err, errlen, "organisation name contains a control character");
            return -1;
        }
    char now[24], id[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { name, now };
    int r = hubdb_scalar(h->db, "INSERT INTO orgs (name, created) VALUES ($1, $2) "
                         "ON CONFLICT (name) DO NOTHING RETURNING id", 2, p, id, sizeof id,
                         err, errlen);
    if (r < 0)
        return -1;
    if (r == 0) {
        snprintf(err, errlen, "organisation '%s' already exists", name);
        return -1;
    }
    hub_audit(h, "operator", "org-add", "org %s name %s", id, name);
    return strtol(id, NULL, 10);
}

long hub_org_find(struct hub *h, const char *name, char *err, size_t errlen)
{
    char id[24];
    const char *p[] = { name };
    int r = hubdb_scalar(h->db, "SELECT id FROM orgs WHERE name = $1", 1, p, id, sizeof id,
                         err, errlen);
    if (r < 0)
        return -1;
    if (r == 0) {
        snprintf(err, errlen, "no organisation named '%s' (see 'admin org list')", name);
        return -1;
    }
    return strtol(id, NULL, 10);
}

int hub_code_create(struct hub *h, long org_id, int64_t ttl, char *code, size_t codelen,
                    char *err, size_t errlen)
{
    if (ttl <= 0 || ttl > 30 * 86400) {
        snprintf(err, errlen, "code lifetime must be 1 s .. 30 days");
        return -1;
    }
    if (codelen < 33) {
        snprintf(err, errlen, "code buffer too small");
        return -1;
    }
    /* 16 random bytes: unguessable, short enough to type or paste. */
    hub_random_hex(16, code);
    char hash[HUB_HASH_HEX + 1], org[24], now[24], exp[24];
    hub_sha256_hex(code, strlen(code), hash);
    snprintf(org, sizeof org, "%ld", org_id);
    snprintf(now, sizeof now, "%lld", hub_now());
    snprintf(exp, sizeof exp, "%lld", hub_now() + (long long)ttl);
    const char *p[] = { hash, org, now, exp };
    if (hubdb_exec(h->db, "INSERT INTO codes (hash, org_id, created, expires) "
                   "VALUES ($1, $2, $3, $4)", 4, p, NULL, NULL, err, errlen) < 0)
        return -1;
    hub_audit(h, "operator", "code-create", "org %ld expires %s", org_id, exp);
    return 0;
}

int hub_challenge_new(struct hub *h, char *nonce, size_t noncelen, char *err, size_t errlen)
{
    uint8_t b[32];
    randombytes_buf(b, sizeof b);
    sodium_bin2base64(nonce, noncelen, b, sizeof b, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char now[24], exp[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    snprintf(exp, sizeof exp, "%lld", hub_now() + CHALLENGE_TTL);
    const char *p[] = { nonce, exp, now };
    /* Old challenges are dropped here rather than by a timer: bounded by request rate. */
    if (hubdb_exec(h->db, "DELETE FROM challenges WHERE expires < $3", 3, p, NULL, NULL,
                   err, errlen) < 0 ||
        hubdb_exec(h->db, "INSERT INTO challenges (nonce, expires) VALUES ($1, $2)", 2, p,
                   NULL, NULL, err, errlen) < 0)
        return -1;
    return 0;
}

int hub_enroll_message(const char *nonce, const char *pubkey_b64, const char *code,
                       char *out, size_t outlen)
{
    /* The code is hashed into the message so a captured signature is useless with
     * another code; the nonce makes it single-shot. */
    char ch[HUB_HASH_HEX + 1];
    hub_sha256_hex(code, strlen(code), ch);
    int n = snprintf(out, outlen, "otasuke-enroll/1 %s %s %s", nonce, pubkey_b64, ch);
    return n > 0 && (size_t)n < outlen ? n : -1;
}

int hub_enroll(struct hub *h, const struct hub_enroll_req *rq, struct hub_enroll_res *rs,
               char *err, size_t errlen)
{
    memset(rs, 0, sizeof *rs);
    uint8_t pk[FEED_PUBKEY_BYTES];
    char e2[200];
    if (feed_key_decode(rq->pubkey, pk, sizeof pk, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "field 'pubkey': %s", e2);
        return 400;
    }
    char msg[400];
    if (hub_enroll_message(rq->nonce, rq->pubkey, rq->code, msg, sizeof msg) < 0 ||
        feed_sig_verify_b64(msg, strlen(msg), rq->signature, pk) != 0) {
        snprintf(err, errlen, "field 'signature': does not verify with 'pubkey' over the "
                 "challenge; sign \"otasuke-enroll/1 NONCE PUBKEY SHA256HEX(CODE)\"");
        return 403;
    }
    char now[24], hash[HUB_HASH_HEX + 1], org[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    hub_sha256_hex(rq->code, strlen(rq->code), hash);
    if (hubdb_begin(h->db, err, errlen) < 0)
        return -1;
    /* Nonce: consumed whatever happens next, so a failed attempt cannot be replayed. */
    const char *pn[] = { rq->nonce, now };
    long r = hubdb_exec(h->db, "DELETE FROM challenges WHERE nonce = $1 AND expires >= $2",
                        2, pn, NULL, NULL, err, errlen);
    if (r < 0)
        goto dberr;
    if (r == 0) {
        hubdb_commit(h->db, NULL, 0);
        snprintf(err, errlen, "field 'nonce': unknown or expired challenge; request a new "
                 "one from /v1/enroll/challenge");
        return 403;
    }
    const char *pc[] = { hash, now };
    int got = hubdb_scalar(h->db, "UPDATE codes SET used_at = $2 WHERE hash = $1 AND "
                           "used_at IS NULL AND expires > $2 RETURNING org_id", 2, pc, org,
                           sizeof org, err, errlen);
    if (got < 0)
        goto dberr;
    if (got == 0) {
        char st[24];
        int known = hubdb_scalar(h->db, "SELECT CASE WHEN used_at IS NOT NULL THEN 'used' "
                                 "ELSE 'expired' END FROM codes WHERE hash = $1", 1, pc, st,
                                 sizeof st, err, errlen);
        hubdb_commit(h->db, NULL, 0);
        if (known > 0)
            snprintf(err, errlen, "field 'code': this enrolment code was already %s; ask "
                     "the operator for a new one", st);
        else
            snprintf(err, errlen, "field 'code': unknown enrolment code; check it was "
                     "typed exactly");
        hub_audit(h, "box", "enroll-refused", "code %s", known > 0 ? st : "unknown");
        return 403;
    }
    hub_random_hex(32, rs->token);
    hub_random_hex(32, rs->mqtt_pass);
    char thash[HUB_HASH_HEX + 1], pwhash[200], user[40];
    hub_sha256_hex(rs->token, strlen(rs->token), thash);
    if (hub_mqtt_pwhash(rs->mqtt_pass, pwhash, sizeof pwhash) < 0) {
        snprintf(err, errlen, "cannot hash the MQTT password");
        goto dberr;
    }
    /* MQTT user names are random, not derived from the box id, so topic names leak
     * nothing about fleet size. */
    char rnd[17];
    hub_random_hex(8, rnd);
    snprintf(user, sizeof user, "box-%s", rnd);
    const char *pb[] = { org, rq->name[0] ? rq->name : "box", rq->pubkey, thash, user, pwhash,
                         now, rq->version };
    char id[24];
    got = hubdb_scalar(h->db, "INSERT INTO boxes (org_id, name, pubkey, token_hash, mqtt_user,"
                       " mqtt_pwhash, enrolled, version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                       "ON CONFLICT (pubkey) DO NOTHING RETURNING id", 8, pb, id, sizeof id,
                       err, errlen);
    if (got < 0)
        goto dberr;
    if (got == 0) {
        hubdb_rollback(h->db);
        snprintf(err, errlen, "field 'pubkey': a box with this key is already enrolled; "
                 "generate a new key (the code was not used)");
        return 409;
    }
    const char *pu[] = { id, hash };
    if (hubdb_exec(h->db, "UPDATE codes SET used_by = $1 WHERE hash = $2", 2, pu, NULL, NULL,
                   err, errlen) < 0)
        goto dberr;
    if (hubdb_commit(h->db, err, errlen) < 0)
        return -1;
    rs->box_id = strtol(id, NULL, 10);
    rs->org_id = strtol(org, NULL, 10);
    snprintf(rs->mqtt_user, sizeof rs->mqtt_user, "%s", user);
    hub_audit(h, "box", "enroll", "box %ld org %ld name %s", rs->box_id, rs->org_id,
              rq->name);
    return 0;
dberr:
    hubdb_rollback(h->db);
    return -1;
}

struct auth_ctx { long box, org; };

static int auth_row(int n, const char *const *v, void *ctx)
{
    struct auth_ctx *a = ctx;
    if (n >= 2 && v[0] && v[1]) {
        a->box = strtol(v[0], NULL, 10);
        a->org = strtol(v[1], NULL, 10);
    }
    return 1;
}

long hub_box_auth(struct hub *h, const char *token, long *org_id, char *err, size_t errlen)
{
    if (strlen(token) != HUB_TOKEN_HEX)
        return 0;
    char th[HUB_HASH_HEX + 1];
    hub_sha256_hex(token, strlen(token), th);
    const char *p[] = { th };
    struct auth_ctx a = { 0, 0 };
    if (hubdb_exec(h->db, "SELECT id, org_id FROM boxes WHERE token_hash = $1 AND revoked IS "
                   "NULL", 1, p, auth_row, &a, err, errlen) < 0)
        return -1;
    if (org_id)
        *org_id = a.org;
    return a.box;
}

int hub_operator_auth(struct hub *h, const char *token)
{
    if (strlen(token) != HUB_TOKEN_HEX)
        return 0;
    char th[HUB_HASH_HEX + 1], name[80];
    hub_sha256_hex(token, strlen(token), th);
    const char *p[] = { th };
    return hubdb_scalar(h->db, "SELECT name FROM operators WHERE token_hash = $1", 1, p, name,
                        sizeof name, NULL, 0) == 1;
}

int hub_box_revoke(struct hub *h, long box_id, char *err, size_t errlen)
{
    char id[24], now[24];
    snprintf(id, sizeof id, "%ld", box_id);
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { id, now };
    long r = hubdb_exec(h->db, "UPDATE boxes SET revoked = $2 WHERE id = $1 AND revoked IS NULL",
                        2, p, NULL, NULL, err, errlen);
    if (r < 0)
        return -1;
    if (r == 0) {
        snprintf(err, errlen, "no active box with id %ld (see 'admin box list')", box_id);
        return -1;
    }
    hub_audit(h, "operator", "box-revoke", "box %ld", box_id);
    return 0;
}

/* ---- enrolment rate limit ----
 * Codes are 128 random bits, so guessing is hopeless anyway; the limit is there so a
 * script hammering /v1/enroll cannot burn CPU (Ed25519 checks, database writes) or fill
 * the audit trail, and so a typo'd code in a provisioning loop is noticed. Fixed one-minute
 * windows per source address in a small table (memory bounded whatever the traffic); a
 * new address evicts one whose window is over, or the oldest. Counted per address, not
 * per code: a whole office behind one NAT shares the budget, which is generous for that. */
#define LIMIT_SLOTS 1024
#define LIMIT_WINDOW 60

struct limit_slot {
    char addr[64];
    long long start;
    int attempts, failures;
};

static struct limit_slot limit_tab[LIMIT_SLOTS];
static pthread_mutex_t limit_mu = PTHREAD_MUTEX_INITIALIZER;
static int limit_attempts = HUB_ENROLL_ATTEMPTS_PER_MIN;
static int limit_failures = HUB_ENROLL_FAILURES_PER_MIN;

void hub_enroll_limit_set(int attempts, int failures)
{
    pthread_mutex_lock(&limit_mu);
    limit_attempts = attempts;
    limit_failures = failures;
    memset(limit_tab, 0, sizeof limit_tab);
    pthread_mutex_unlock(&limit_mu);
}

/* The key an address counts under: IPv4 as it is, IPv6 by its /64 -- one host usually
 * has a whole /64 and could otherwise take a fresh address per attempt. */
static void limit_key(const char *addr, char *key, size_t keylen)
{
    unsigned char a[16];
    char txt[INET6_ADDRSTRLEN];
    if (!addr || !*addr) {
        snprintf(key, keylen, "?");
    } else if (strchr(addr, ':') && inet_pton(AF_INET6, addr, a) == 1) {
        memset(a + 8, 0, 8);
        inet_ntop(AF_INET6, a, txt, sizeof txt);
        snprintf(key, keylen, "%s/64", txt);
    } else {
        snprintf(key, keylen, "%s", addr);
    }
}

/* Slot of addr (caller holds limit_mu), starting a new window when the old one is over. */
static struct limit_slot *limit_slot(const char *addr, long long now)
{
    uint32_t hsh = 2166136261u;
    for (const char *p = addr; *p; p++)
        hsh = (hsh ^ (uint8_t)*p) * 16777619u;
    struct limit_slot *victim = NULL;
    /* Probe a short run of slots: a hit, else the first free / expired, else the oldest. */
    for (int i = 0; i < 8; i++) {
        struct limit_slot *s = &limit_tab[(hsh + (uint32_t)i) % LIMIT_SLOTS];
        if (s->addr[0] && strcmp(s->addr, addr) == 0) {
            if (now - s->start >= LIMIT_WINDOW) {
                s->start = now;
                s->attempts = s->failures = 0;
            }
            return s;
        }
        if (!victim || !s->addr[0] || (victim->addr[0] && s->start < victim->start))
            victim = s;
    }
    snprintf(victim->addr, sizeof victim->addr, "%s", addr);
    victim->start = now;
    victim->attempts = victim->failures = 0;
    return victim;
}

int hub_enroll_limit_check(const char *addr_in, long long now, char *err, size_t errlen)
{
    char addr[INET6_ADDRSTRLEN + 4];
    limit_key(addr_in, addr, sizeof addr);
    pthread_mutex_lock(&limit_mu);
    struct limit_slot *s = limit_slot(addr, now);
    int wait = (int)(s->start + LIMIT_WINDOW - now);
    if (wait < 1)
        wait = 1;
    int rc = 0;
    if (s->failures >= limit_failures) {
        snprintf(err, errlen, "too many failed enrolment attempts from %s (%d in the last "
                 "minute); wait %d s, then check the code with the hub operator", addr,
                 s->failures, wait);
        rc = wait;
    } else if (s->attempts >= limit_attempts) {
        snprintf(err, errlen, "too many enrolment requests from %s (%d in the last minute, "
                 "limit %d); wait %d s and retry", addr, s->attempts, limit_attempts, wait);
        rc = wait;
    } else {
        s->attempts++;
    }
    pthread_mutex_unlock(&limit_mu);
    return rc;
}

void hub_enroll_limit_failed(const char *addr_in, long long now)
{
    char addr[INET6_ADDRSTRLEN + 4];
    limit_key(addr_in, addr, sizeof addr);
    pthread_mutex_lock(&limit_mu);
    limit_slot(addr, now)->failures++;
    pthread_mutex_unlock(&limit_mu);
}
