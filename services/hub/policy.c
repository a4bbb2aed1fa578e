/* Delegated policy relay: an MSP (operator token) hands the hub a policy change signed
 * with the delegate's key for one box; the hub stores it, records who sent it in the
 * audit trail and tells the box over MQTT. The hub does not judge the change: the box's
 * agent checks the signature against the grants its owner gave (principle 1), so a
 * compromised hub can delay changes but not forge them. The box reports what it did
 * (applied / refused and why) so the MSP sees the outcome, not only the sending; "failed"
 * means the box could not store it yet (database busy, disk full) and will try again. */
#include "hubd.h"
#include "log.h"
#include "policy.h"
#include "console.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hub_operator_name(struct hub *h, const char *token, char *name, size_t namelen)
{
    if (strlen(token) != HUB_TOKEN_HEX)
        return 0;
    char th[HUB_HASH_HEX + 1];
    hub_sha256_hex(token, strlen(token), th);
    const char *p[] = { th };
    return hubdb_scalar(h->db, "SELECT name FROM operators WHERE token_hash = $1", 1, p, name,
                        namelen, NULL, 0);
}

long hub_policy_relay(struct hub *h, long box_id, const char *sender,
                      const struct hub_policy *pol, char *mqtt_user, size_t ulen,
                      char *err, size_t errlen)
{
    char id[24], now[24], newid[24];
    snprintf(id, sizeof id, "%ld", box_id);
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *pb[] = { id };
    int r = hubdb_scalar(h->db, "SELECT mqtt_user FROM boxes WHERE id = $1 AND revoked IS NULL",
                         1, pb, mqtt_user, ulen, err, errlen);
    if (r <= 0)
        return r;
    const char *p[] = { id, now, sender, pol->signer, pol->change, pol->signature };
    if (hubdb_scalar(h->db, "INSERT INTO policy_msgs (box_id, created, sender, signer, body, "
                     "signature) VALUES ($1,$2,$3,$4,$5,$6) RETURNING id", 6, p, newid,
                     sizeof newid, err, errlen) != 1)
        return -1;
    hub_audit(h, sender, "policy-relay", "box %ld message %s signer %s, %zu bytes", box_id,
              newid, pol->signer, strlen(pol->change));
    return strtol(newid, NULL, 10);
}

int hub_policy_result(struct hub *h, long box_id, long long msg_id, const char *status,
                      const char *detail, char *err, size_t errlen)
{
    char bs[24], ms[24], now[24];
    snprintf(bs, sizeof bs, "%ld", box_id);
    snprintf(ms, sizeof ms, "%lld", msg_id);
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { ms, bs, status, detail, now };
    /* The first verdict stands: a box that retries after a lost answer, or a replayed
     * report, cannot turn "refused" into "applied" afterwards. "failed" is no verdict:
     * the box retries, and what it says next replaces it. */
    long r = hubdb_exec(h->db, "UPDATE policy_msgs SET result = $3, result_detail = $4, "
                        "result_at = $5 WHERE id = $1 AND box_id = $2 AND (result IS NULL"
                        " OR result = 'failed')", 5,
                        p, NULL, NULL, err, errlen);
    if (r < 0)
        return -1;
    if (r == 0) {
        char have[24];
        const char *q[] = { ms, bs };
        int k = hubdb_scalar(h->db, "SELECT id FROM policy_msgs WHERE id = $1 AND box_id = $2",
                             2, q, have, sizeof have, err, errlen);
        return k < 0 ? -1 : k;   /* already reported: fine, nothing changes */
    }
    hub_audit(h, "box", "policy-result", "box %ld message %lld %s%s%.200s", box_id, msg_id,
              status, detail[0] ? ": " : "", detail);
    return 1;
}

static int list_row(int n, const char *const *v, void *ctx)
{
    json_t *arr = ctx;
    if (n < 8)
        return 1;
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s?, s:s?, s:o}",
                          "id", (json_int_t)atoll(v[0]), "created", (json_int_t)atoll(v[1]),
                          "sender", v[2] ? v[2] : "", "signer", v[3] ? v[3] : "",
                          "change", v[4] ? v[4] : "", "result", v[5], "result_detail", v[6],
                          "result_at", v[7] ? json_integer(atoll(v[7])) : json_null());
    /* "pending" until the box answers: the MSP sees a change in flight, not a silent one */
    if (o && !v[5])
        json_object_set_new(o, "result", json_string("pending"));
    if (o)
        json_array_append_new(arr, o);
    return 0;
}

json_t *hub_policy_list(struct hub *h, long box_id, long long after, char *err, size_t errlen)
{
    char bs[24], as[24];
    snprintf(bs, sizeof bs, "%ld", box_id);
    snprintf(as, sizeof as, "%lld", after);
    const char *p[] = { bs, as };
    json_t *arr = json_array();
    if (hubdb_exec(h->db, "SELECT id, created, sender, signer, body, result, result_detail, "
                   "result_at FROM policy_msgs WHERE box_id = $1 AND id > $2 "
                   "ORDER BY id LIMIT 100", 2, p, list_row, arr, err, errlen) < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* ---- HTTP: POST /v1/policy/<id>/result (box), GET /v1/boxes/<id>/policy (operator) ---- */

/* "<digits><tail>" at p -> the number (> 0) when exactly followed by tail, else 0. */
static long long id_then(const char *p, const char *tail)
{
    char *end;
    if (*p < '1' || *p > '9')
        return 0;
    long long v = strtoll(p, &end, 10);
    return strcmp(end, tail) == 0 && v > 0 ? v : 0;
}

int hub_policy_match(const char *url, const char *method)
{
    if (!strcmp(method, "POST") && !strncmp(url, "/v1/policy/", 11))
        return 1;
    return !strcmp(method, "GET") && !strncmp(url, "/v1/boxes/", 10) &&
           id_then(url + 10, "/policy") > 0;
}

enum MHD_Result hub_policy_route(struct hub *h, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *body, size_t len)
{
    char err[300];
    const char *tk = hub_bearer(c);
    if (!strcmp(method, "GET")) {
        char name[80];
        if (hub_operator_request(h, c, method, name, sizeof name) != 1)   /* token or console */
            return hub_send_err(c, 401, "operator token required");
        const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
        char *end;
        long long a = after ? strtoll(after, &end, 10) : 0;
        if (after && (*end || a < 0))
            return hub_send_err(c, 400, "parameter 'after': expected a message id >= 0");
        json_t *arr = hub_policy_list(h, (long)id_then(url + 10, "/policy"), a, err,
                                      sizeof err);
        if (!arr) {
            log_error("policy list: %s", err);
            return hub_send_err(c, 500, "storage error; see the hub log");
        }
        return hub_send_json(c, 200, json_pack("{s:o}", "messages", arr));
    }
    long long msg = id_then(url + 11, "/result");
    if (!msg)
        return hub_send_err(c, 404, "expected POST /v1/policy/<id>/result");
    long org = 0;
    long box = tk ? hub_box_auth(h, tk, &org, err, sizeof err) : 0;
    if (box < 0) {
        log_error("auth: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    if (box == 0)
        return hub_send_err(c, 401, "missing, unknown or revoked box token");
    char status[16], detail[HUB_POLICY_DETAIL_MAX + 1];
    if (hub_body_policy_result(body, len, status, sizeof status, detail, sizeof detail, err,
                               sizeof err) < 0)
        return hub_send_err(c, 400, err);
    int r = hub_policy_result(h, box, msg, status, detail, err, sizeof err);
    if (r < 0) {
        log_error("policy result: %s", err);
        return hub_send_err(c, 500, "storage error; see the hub log");
    }
    if (r == 0)
        return hub_send_err(c, 404, "no policy message with that id for this box");
    return hub_send_json(c, 200, json_pack("{s:I, s:s}", "id", (json_int_t)msg, "result", status));
}
