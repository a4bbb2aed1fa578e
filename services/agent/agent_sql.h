/* SQL fragments shared by explain and compile so both agree on what is live. */
#ifndef OTASUKE_AGENT_SQL_H
#define OTASUKE_AGENT_SQL_H

/* A rule (alias r) is live at ?1 when not expired and, if a delegate made it, its grant
 * is neither revoked nor expired: revoking a grant makes its entries vanish. */
#define AGENT_LIVE_GRANT(col) \
    "(" col " IS NULL OR EXISTS (SELECT 1 FROM grants lg WHERE lg.id=" col \
    " AND lg.revoked_at=0 AND (lg.expires_at=0 OR lg.expires_at>?1)))"
#define AGENT_LIVE_RULE "(r.expires_at=0 OR r.expires_at>?1) AND " AGENT_LIVE_GRANT("r.grant_id")

/* A rule (alias r) about a name, not an address or network (those go to fw.set): names
 * never hold ':' or '/', and a name of digits and dots only would need a numeric
 * top-level domain, which does not exist. */
#define AGENT_NAME_RULE "(r.pattern NOT GLOB '*[:/]*' AND r.pattern GLOB '*[^0-9.]*')"

#endif
