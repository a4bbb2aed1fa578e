/* Delegated policy relay: an MSP (operator token) hands the hub a policy change signed
 * with the delegate's key for one box; the hub stores it, records who sent it in the
 * audit trail and tells the box over MQTT. The hub does not judge the change: the box's
 * agent checks the signature against the grants its owner gave (principle 1), so a
 * compromised hub can delay changes but not forge them. */
#include "hubd.h"

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
