/* The decision for one query, and the answers dnsd writes itself.
 *
 * Order: DoH canary -> group custom allow/block (allow wins) -> domain set masked by the
 * group's categories (an allow list entry wins) -> safe search -> cache -> upstream.
 * Upstream and cached answers are inspected again on every use (CNAME chain into a
 * blocked name), so a policy change applies to cached names at once.
 *
 * EDE rule (RFC 8914): 15 "Blocked" when the operator's protection blocked the name --
 * the security categories (malware, phishing, c2, fake, dyndns, doh-bypass), the owner's
 * custom lists and the DoH canary; 17 "Filtered" when the name was filtered because the
 * owner opted in to a content category for this group (ads, tracking, adult, gambling,
 * social). The EXTRA-TEXT always reads "otasuke: CATEGORY (list LABEL)". */
#include "dnsd.h"

#include "cache.h"
#include "ratelimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define BLOCK_TTL 60
#define SAFESEARCH_TTL 300

enum { V_PASS = 0, V_ALLOW, V_BLOCK };

struct verdict {
    int action;
    int ede;
    const char *category;
    const char *list;
    char text[200];
};

/* Categories in the order we name them when a name is in several. */
static const int cat_priority[] = {
    DSET_CAT_MALWARE, DSET_CAT_PHISHING, DSET_CAT_C2, DSET_CAT_FAKE, DSET_CAT_DYNDNS,
    DSET_CAT_DOH_BYPASS, DSET_CAT_CUSTOM, DSET_CAT_ADULT, DSET_CAT_GAMBLING,
    DSET_CAT_SOCIAL, DSET_CAT_TRACKING, DSET_CAT_ADS,
};

static int cat_is_security(int cat)
{
    return cat == DSET_CAT_MALWARE || cat == DSET_CAT_PHISHING || cat == DSET_CAT_C2 ||
           cat == DSET_CAT_FAKE || cat == DSET_CAT_DYNDNS || cat == DSET_CAT_DOH_BYPASS ||
           cat == DSET_CAT_CUSTOM;
}

static void client_addr(const struct dnsd_client *c, int *family, const uint8_t **addr)
{
    if (c->addr.ss_family == AF_INET6) {
        *family = AF_INET6;
        *addr = ((const struct sockaddr_in6 *)&c->addr)->sin6_addr.s6_addr;
    } else {
        *family = AF_INET;
        *addr = (const uint8_t *)&((const struct sockaddr_in *)&c->addr)->sin_addr;
    }
}

/* Decides for one name in one group. Never allocates. */
static void decide(struct dnsd *d, unsigned group, const char *name, size_t len,
                   struct verdict *v)
{
    const struct policy_group *g = policy_group_get(d->policy, group);
    v->action = V_PASS;
    v->ede = -1;
    v->category = NULL;
    v->list = NULL;
    v->text[0] = '\0';
    enum policy_custom pc = policy_custom_lookup(d->policy, group, name, len, NULL);
    if (pc == POLICY_CUSTOM_ALLOW) {
        v->action = V_ALLOW;
        return;
    }
    if (pc == POLICY_CUSTOM_BLOCK) {
        v->action = V_BLOCK;
        v->ede = DNSW_EDE_BLOCKED;
        v->category = "custom";
        v->list = "owner";
        snprintf(v->text, sizeof v->text, "otasuke: custom (list group %s block)", g->name);
        return;
    }
    if (!d->set || len > DSET_NAME_MAX)
        return;
    struct dset_match m;
    enum dset_verdict dv = dset_lookup_masked(d->set, name, len, g->categories, ~(uint64_t)0, &m);
    if (dv == DSET_ALLOW_VERDICT) {
        v->action = V_ALLOW;
        return;
    }
    if (dv != DSET_BLOCK)
        return;
    uint32_t cats = m.categories & g->categories;
    if (!cats)
        return;
    int cat = -1;
    for (size_t i = 0; i < sizeof cat_priority / sizeof cat_priority[0]; i++)
        if (cats & (1u << cat_priority[i])) {
            cat = cat_priority[i];
            break;
        }
    if (cat < 0)
        for (int i = 0; i < DSET_CAT_COUNT; i++)
            if (cats & (1u << i)) {
                cat = i;
                break;
            }
    const char *list = NULL;
    unsigned nl = dset_list_count(d->set);
    for (unsigned i = 0; i < nl && i < 64; i++)
        if ((m.lists >> i & 1) && !dset_list_is_allow(d->set, i) &&
            dset_list_category(d->set, i) == cat) {
            list = dset_list_label(d->set, i);
            break;
        }
    v->action = V_BLOCK;
    v->category = dset_category_name(cat);
    v->list = list ? list : "?";
    v->ede = cat_is_security(cat) ? DNSW_EDE_BLOCKED : DNSW_EDE_FILTERED;
    snprintf(v->text, sizeof v->text, "otasuke: %s (list %s)", v->category, v->list);
}

static size_t client_max_udp(const struct dnsd_client *c, const struct dnsw_msg *q)
{
    if (c->tcp)
        return 65535;
    if (!q->edns.present || q->edns.udp_size < 512)
        return 512;
    return q->edns.udp_size > 1232 ? 1232 : q->edns.udp_size;
}

/* Appends the SOA that makes a negative answer cacheable (RFC 2308): without it many
 * stub resolvers (Windows, Android) do not cache NXDOMAIN/NODATA at all and ask again for
 * every connection attempt. Owner = the query name (pointer to the question), so the
 * negative entry covers exactly the blocked name; its TTL and MINIMUM are BLOCK_TTL, so
 * unblocking takes effect within a minute. Names under .invalid cannot exist. */
static void put_negative_soa(struct dnsw_buf *b)
{
    static const char mname[] = "blocked.otasuke.invalid", rname[] = "hostmaster.otasuke.invalid";
    dnsw_put_u16(b, 0xc000 | DNSW_HDR_LEN);
    dnsw_put_u16(b, DNSW_TYPE_SOA);
    dnsw_put_u16(b, DNSW_CLASS_IN);
    dnsw_put_u32(b, BLOCK_TTL);
    size_t rdlen_at = b->len;
    dnsw_put_u16(b, 0);
    dnsw_put_name(b, mname, sizeof mname - 1);
    dnsw_put_name(b, rname, sizeof rname - 1);
    dnsw_put_u32(b, 1);            /* serial */
    dnsw_put_u32(b, 3600);         /* refresh, retry, expire: meaningless here */
    dnsw_put_u32(b, 600);
    dnsw_put_u32(b, 86400);
    dnsw_put_u32(b, BLOCK_TTL);    /* minimum = negative-caching TTL */
    if (!b->overflow)
        dnsw_set16(b->p + rdlen_at, (uint16_t)(b->len - rdlen_at - 2));
}

static void reply_simple(struct dnsd *d, const struct dnsd_client *c, const uint8_t *qp,
                         const struct dnsw_msg *q, unsigned rcode, int ede, const char *text)
{
    uint8_t buf[1024];
    struct dnsw_buf b = { .p = buf, .cap = sizeof buf };
    dnsw_reply_begin(&b, qp, q, rcode);
    uint16_t ns = 0, ar = 0;
    if (rcode == DNSW_RCODE_NXDOMAIN) {   /* only our own blocks answer NXDOMAIN here */
        put_negative_soa(&b);
        ns = 1;
    }
    if (q->edns.present) {
        dnsw_put_opt(&b, 1232, q->edns.do_bit, ede, text);
        ar = 1;
    }
    dnsw_reply_finish(&b, 0, ns, ar);
    if (!b.overflow)
        net_send(d, c, buf, b.len, client_max_udp(c, q));
    else if (c->tcp)
        net_tcp_query_done(d, c);
}

void filter_servfail(struct dnsd *d, const struct dnsd_client *c, const uint8_t *q, size_t qlen,
                     int ede, const char *text)
{
    struct dnsw_msg m;
    d->st.servfail++;
    if (dnsw_parse_query(q, qlen, &m, NULL, 0) != DNSW_OK) {
        if (c->tcp)
            net_tcp_query_done(d, c);
        return;
    }
    reply_simple(d, c, q, &m, DNSW_RCODE_SERVFAIL, ede, text);
}

static const char *group_name(struct dnsd *d, unsigned group)
{
    return policy_group_get(d->policy, group)->name;
}

/* Writes the blocked answer for the group's answer mode and sends it. */
static void answer_blocked(struct dnsd *d, const struct dnsd_client *c, const uint8_t *qp,
                           const struct dnsw_msg *q, unsigned group, const struct verdict *v,
                           const char *blocked_name)
{
    const struct policy_group *g = policy_group_get(d->policy, group);
    uint8_t buf[1024], a[16] = { 0 };
    struct dnsw_buf b = { .p = buf, .cap = sizeof buf };
    unsigned rcode = DNSW_RCODE_NOERROR;
    size_t alen = 0;
    if (g->answer == POLICY_ANSWER_NXDOMAIN) {
        rcode = DNSW_RCODE_NXDOMAIN;
    } else if (q->qtype == DNSW_TYPE_A) {
        alen = 4;
        if (g->answer == POLICY_ANSWER_BLOCKPAGE && !policy_blockpage_v4(d->policy, a))
            alen = 0;
    } else if (q->qtype == DNSW_TYPE_AAAA) {
        alen = 16;
        if (g->answer == POLICY_ANSWER_BLOCKPAGE && !policy_blockpage_v6(d->policy, a))
            alen = 0;
    }
    dnsw_reply_begin(&b, qp, q, rcode);
    uint16_t an = 0, ar = 0;
    if (alen) {
        dnsw_put_u16(&b, 0xc000 | DNSW_HDR_LEN);
        dnsw_put_u16(&b, q->qtype);
        dnsw_put_u16(&b, DNSW_CLASS_IN);
        dnsw_put_u32(&b, BLOCK_TTL);
        dnsw_put_u16(&b, (uint16_t)alen);
        dnsw_put_bytes(&b, a, alen);
        an = 1;
    }
    uint16_t ns = 0;
    if (!an) {                 /* NXDOMAIN, or NODATA for other types */
        put_negative_soa(&b);
        ns = 1;
    }
    if (q->edns.present) {
        dnsw_put_opt(&b, 1232, q->edns.do_bit, v->ede, v->text);
        ar = 1;
    }
    dnsw_reply_finish(&b, an, ns, ar);
    d->st.blocked++;
    events_blocked(d, c, blocked_name, q->qtype, v->category, v->list, group_name(d, group));
    if (!b.overflow)
        net_send(d, c, buf, b.len, client_max_udp(c, q));
    else if (c->tcp)
        net_tcp_query_done(d, c);
}

static void count_allowed(struct dnsd *d, const struct dnsd_client *c)
{
    int family;
    const uint8_t *addr;
    client_addr(c, &family, &addr);
    d->st.allowed++;
    if (d->ev_fd >= 0)            /* only the events use the per-client counts */
        rl_count_allowed(d->rl, family, addr, d->now_ms);
}

/* Sends an upstream or cached answer (resp, mutable) to the client after CNAME
 * inspection. inspect = 0 when the query name itself is explicitly allowed. */
static void serve_answer(struct dnsd *d, const struct dnsd_client *c, const uint8_t *qp,
                         const struct dnsw_msg *q, unsigned group, uint8_t *resp, size_t len,
                         int inspect)
{
    if (len < DNSW_HDR_LEN)
        return;
    dnsw_set16(resp, q->id);
    /* give the client back its own letter case (0x20 randomisation) */
    if (len >= q->question_end && q->question_end > DNSW_HDR_LEN &&
        memcmp(resp + DNSW_HDR_LEN, qp + DNSW_HDR_LEN, q->qname_wire_len) != 0) {
        size_t o = DNSW_HDR_LEN, t;
        char name[DNSW_NAME_TEXT_MAX];
        if (dnsw_name_read(resp, len, &o, name, sizeof name, &t) == 0 &&
            o - DNSW_HDR_LEN == q->qname_wire_len)
            memcpy(resp + DNSW_HDR_LEN, qp + DNSW_HDR_LEN, q->qname_wire_len);
    }
    if (inspect) {
        struct dnsw_iter it;
        struct dnsw_rr rr;
        if (dnsw_iter_init(&it, resp, len) == 0) {
            while (dnsw_iter_next(&it, &rr) > 0) {
                if (rr.section != 0)
                    break;
                if (rr.type != DNSW_TYPE_CNAME)
                    continue;
                char target[DNSW_NAME_TEXT_MAX];
                size_t o = rr.rdata_off, tlen;
                if (dnsw_name_read(resp, len, &o, target, sizeof target, &tlen) < 0)
                    break;
                struct verdict v;
                decide(d, group, target, tlen, &v);
                if (v.action == V_ALLOW)
                    break;        /* an allowed hop vouches for the rest of the chain */
                if (v.action == V_BLOCK) {
                    size_t tl = strlen(v.text);
                    snprintf(v.text + tl, sizeof v.text - tl, " via CNAME %.100s", target);
                    d->st.cname_blocked++;
                    answer_blocked(d, c, qp, q, group, &v, target);
                    return;
                }
            }
        }
    }
    count_allowed(d, c);
    net_send(d, c, resp, len, client_max_udp(c, q));
}

/* ---- safe search --------------------------------------------------------- */

enum { SS_GOOGLE = 0, SS_BING, SS_YOUTUBE, SS_DDG };
static const struct { const char *name; int engine; } safesearch_names[] = {
    { "google.com", SS_GOOGLE }, { "www.google.com", SS_GOOGLE },
    { "www.google.co.uk", SS_GOOGLE }, { "www.google.de", SS_GOOGLE },
    { "www.google.fr", SS_GOOGLE }, { "www.google.co.jp", SS_GOOGLE },
    { "www.google.ca", SS_GOOGLE }, { "www.google.com.au", SS_GOOGLE },
    { "www.google.it", SS_GOOGLE }, { "www.google.es", SS_GOOGLE },
    { "www.google.nl", SS_GOOGLE }, { "www.google.ch", SS_GOOGLE },
    { "bing.com", SS_BING }, { "www.bing.com", SS_BING },
    { "www.youtube.com", SS_YOUTUBE }, { "m.youtube.com", SS_YOUTUBE },
    { "youtube.com", SS_YOUTUBE }, { "youtubei.googleapis.com", SS_YOUTUBE },
    { "youtube.googleapis.com", SS_YOUTUBE }, { "www.youtube-nocookie.com", SS_YOUTUBE },
    { "duckduckgo.com", SS_DDG }, { "www.duckduckgo.com", SS_DDG },
    { "start.duckduckgo.com", SS_DDG },
};

/* Returns the safe-search host for name in this group, or NULL. */
static const char *safesearch_target(const struct policy_group *g, const char *name)
{
    if (!g->safesearch)
        return NULL;
    for (size_t i = 0; i < sizeof safesearch_names / sizeof safesearch_names[0]; i++) {
        if (strcmp(name, safesearch_names[i].name) != 0)
            continue;
        switch (safesearch_names[i].engine) {
        case SS_GOOGLE: return "forcesafesearch.google.com";
        case SS_BING: return "strict.bing.com";
        case SS_YOUTUBE: return g->youtube_strict ? "restrict.youtube.com" : "restrictmoderate.youtube.com";
        default: return "safe.duckduckgo.com";
        }
    }
    return NULL;
}

/* Answers "qname CNAME target" plus the target's addresses from tresp (may be NULL). */
static void answer_safesearch(struct dnsd *d, const struct dnsd_client *c, const uint8_t *qp,
                              const struct dnsw_msg *q, const char *target, size_t tlen,
                              const uint8_t *tresp, size_t trlen)
{
    static uint8_t buf[DNSD_UDP_MAX];
    struct dnsw_buf b = { .p = buf, .cap = sizeof buf };
    unsigned rcode = tresp && trlen >= DNSW_HDR_LEN ? DNSW_RCODE(dnsw_get16(tresp + 2)) : 0;
    if (rcode != DNSW_RCODE_NXDOMAIN)
        rcode = DNSW_RCODE_NOERROR;
    dnsw_reply_begin(&b, qp, q, rcode);
    dnsw_put_u16(&b, 0xc000 | DNSW_HDR_LEN);
    dnsw_put_u16(&b, DNSW_TYPE_CNAME);
    dnsw_put_u16(&b, DNSW_CLASS_IN);
    dnsw_put_u32(&b, SAFESEARCH_TTL);
    dnsw_put_u16(&b, (uint16_t)(tlen + 2));
    size_t tpos = b.len;
    dnsw_put_name(&b, target, tlen);
    uint16_t an = 1;
    struct dnsw_iter it;
    struct dnsw_rr rr;
    if (tresp && dnsw_iter_init(&it, tresp, trlen) == 0) {
        while (dnsw_iter_next(&it, &rr) > 0 && !b.overflow) {
            if (rr.section != 0)
                break;
            if (rr.type != q->qtype || (rr.type != DNSW_TYPE_A && rr.type != DNSW_TYPE_AAAA))
                continue;
            dnsw_put_u16(&b, (uint16_t)(0xc000 | tpos));
            dnsw_put_u16(&b, rr.type);
            dnsw_put_u16(&b, rr.rclass);
            dnsw_put_u32(&b, rr.ttl);
            dnsw_put_u16(&b, rr.rdlen);
            dnsw_put_bytes(&b, tresp + rr.rdata_off, rr.rdlen);
            an++;
        }
    }
    uint16_t ar = 0;
    if (q->edns.present) {
        dnsw_put_opt(&b, 1232, q->edns.do_bit, -1, NULL);
        ar = 1;
    }
    dnsw_reply_finish(&b, an, 0, ar);
    d->st.safesearch++;
    count_allowed(d, c);
    if (!b.overflow)
        net_send(d, c, buf, b.len, client_max_udp(c, q));
    else if (c->tcp)
        net_tcp_query_done(d, c);
}

static void cache_key(struct dcache_key *k, const char *name, size_t len,
                      const struct dnsw_msg *q)
{
    k->name = name;
    k->len = len;
    k->qtype = q->qtype;
    k->qclass = q->qclass;
    k->flags = (uint8_t)((q->edns.do_bit ? DCACHE_F_DO : 0) | (q->edns.present ? DCACHE_F_EDNS : 0));
}

static int is_canary(const char *name, size_t len)
{
    static const char canary[] = "use-application-dns.net";
    size_t cl = sizeof canary - 1;
    return (len == cl && memcmp(name, canary, cl) == 0) ||
           (len > cl && name[len - cl - 1] == '.' && memcmp(name + len - cl, canary, cl) == 0);
}

void filter_query(struct dnsd *d, const struct dnsd_client *c, const uint8_t *qp, size_t qlen)
{
    static uint8_t resp[65536];
    struct dnsw_msg q;
    int family;
    const uint8_t *addr;

    if (c->tcp)
        d->st.queries_tcp++;
    else
        d->st.queries_udp++;
    int r = dnsw_parse_query(qp, qlen, &q, NULL, 0);
    if (r == DNSW_ERR_SHORT || r == DNSW_ERR_NOTQUERY) {
        d->st.dropped++;
        if (c->tcp)
            net_tcp_query_done(d, c);
        return;
    }
    client_addr(c, &family, &addr);
    if (!rl_take(d->rl, family, addr, d->now_ms)) {
        d->st.rate_limited++;
        if (c->tcp) {
            reply_simple(d, c, qp, &q, DNSW_RCODE_REFUSED, -1, NULL);
        } else {
            /* UDP: REFUSED is no bigger than the query, so it amplifies nothing, and
             * a well-behaved stub backs off instead of retrying into the limit */
            reply_simple(d, c, qp, &q, DNSW_RCODE_REFUSED, -1, NULL);
        }
        return;
    }
    if (r != DNSW_OK) {
        d->st.formerr++;
        reply_simple(d, c, qp, &q, r == DNSW_ERR_NOTIMP ? DNSW_RCODE_NOTIMP : DNSW_RCODE_FORMERR,
                     -1, NULL);
        return;
    }
    unsigned group = policy_group_for(d->policy, family, addr);
    int inspect = 1;
    if (q.qclass == DNSW_CLASS_IN) {
        if (is_canary(q.qname, q.qname_len)) {
            struct verdict v = { .action = V_BLOCK, .ede = DNSW_EDE_BLOCKED,
                                 .category = "doh-canary", .list = "builtin" };
            snprintf(v.text, sizeof v.text, "otasuke: doh-canary (list builtin)");
            const struct policy_group *g = policy_group_get(d->policy, group);
            d->st.canary++;
            /* always NXDOMAIN, whatever the group's answer mode: that is what the
             * browsers test for */
            reply_simple(d, c, qp, &q, DNSW_RCODE_NXDOMAIN, v.ede, v.text);
            d->st.blocked++;
            events_blocked(d, c, q.qname, q.qtype, v.category, v.list, g->name);
            return;
        }
        struct verdict v;
        decide(d, group, q.qname, q.qname_len, &v);
        if (v.action == V_BLOCK) {
            answer_blocked(d, c, qp, &q, group, &v, q.qname);
            return;
        }
        if (d->ev_fd >= 0)   /* long random-looking names for the DNS-tunnel detector */
            events_query(d, c, q.qname, q.qname_len, q.qtype);
        inspect = v.action != V_ALLOW;
        const char *target = v.action == V_ALLOW ? NULL
                             : safesearch_target(policy_group_get(d->policy, group), q.qname);
        if (target) {
            size_t tlen = strlen(target), rlen;
            if (q.qtype != DNSW_TYPE_A && q.qtype != DNSW_TYPE_AAAA) {
                answer_safesearch(d, c, qp, &q, target, tlen, NULL, 0);
                return;
            }
            struct dcache_key k;
            cache_key(&k, target, tlen, &q);
            if (dcache_get(d->cache, &k, d->now_s, resp, sizeof resp, &rlen)) {
                d->st.cache_hits++;
                answer_safesearch(d, c, qp, &q, target, tlen, resp, rlen);
                return;
            }
            d->st.cache_misses++;
            if (up_forward(d, c, qp, qlen, group, 1, target, tlen) < 0)
                filter_servfail(d, c, qp, qlen, -1, NULL);
            return;
        }
    }
    struct dcache_key k;
    size_t rlen;
    cache_key(&k, q.qname, q.qname_len, &q);
    if (dcache_get(d->cache, &k, d->now_s, resp, sizeof resp, &rlen)) {
        d->st.cache_hits++;
        serve_answer(d, c, qp, &q, group, resp, rlen, inspect && q.qclass == DNSW_CLASS_IN);
        return;
    }
    d->st.cache_misses++;
    if (up_forward(d, c, qp, qlen, group, 0, NULL, 0) < 0)
        filter_servfail(d, c, qp, qlen, -1, NULL);
}

void filter_upstream_answer(struct dnsd *d, struct pending *p, uint8_t *resp, size_t len)
{
    size_t qlen, tlen;
    const uint8_t *qp = up_pending_query(p, &qlen);
    const struct dnsd_client *c = up_pending_client(p);
    struct dnsw_msg q;
    if (dnsw_parse_query(qp, qlen, &q, NULL, 0) != DNSW_OK) {
        if (c->tcp)
            net_tcp_query_done(d, c);
        return;
    }
    unsigned group = up_pending_group(p);
    if (group >= policy_group_count(d->policy))
        group = 0;                /* the policy was reloaded meanwhile with fewer groups */
    struct dcache_key k;
    if (up_pending_kind(p) == 1) {
        const char *target = up_pending_target(p, &tlen);
        cache_key(&k, target, tlen, &q);
        dcache_put(d->cache, &k, resp, len, d->now_s);
        answer_safesearch(d, c, qp, &q, target, tlen, resp, len);
        return;
    }
    unsigned rcode = DNSW_RCODE(dnsw_get16(resp + 2));
    if (rcode == DNSW_RCODE_SERVFAIL)
        d->st.upstream_errors++;
    cache_key(&k, q.qname, q.qname_len, &q);
    dcache_put(d->cache, &k, resp, len, d->now_s);
    int inspect = q.qclass == DNSW_CLASS_IN;
    if (inspect) {
        struct verdict v;
        decide(d, group, q.qname, q.qname_len, &v);
        if (v.action == V_BLOCK) {    /* blocked by a reload while the query was out */
            answer_blocked(d, c, qp, &q, group, &v, q.qname);
            return;
        }
        inspect = v.action != V_ALLOW;
    }
    serve_answer(d, c, qp, &q, group, resp, len, inspect);
}
