/* The desired ruleset: chains and rules of `table inet otasuke` for one fw.set.
 *
 * Every rule carries a comment "otasuke:<hash> <what>" where hash is FNV-1a over the
 * rule's own netlink encoding. Read-back compares these hashes per chain, so a no-op
 * reconcile needs no expression parsing and sends nothing. */
#include "fw.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/if_arp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R1 NFT_REG_1
#define CT_EST (NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED))

struct rb {               /* one rule under construction */
    struct nftnl_rule *r;
    char what[96];
};

static struct nftnl_expr *ex(struct rb *b, const char *name)
{
    struct nftnl_expr *e = nftnl_expr_alloc(name);
    if (e)
        nftnl_rule_add_expr(b->r, e);
    return e;
}

static void meta(struct rb *b, uint32_t key)
{
    struct nftnl_expr *e = ex(b, "meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, R1);
}

static void cmp(struct rb *b, uint32_t op, const void *data, uint32_t len)
{
    struct nftnl_expr *e = ex(b, "cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, R1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void payload(struct rb *b, uint32_t base, uint32_t off, uint32_t len)
{
    struct nftnl_expr *e = ex(b, "payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, R1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
}

static void ifname(struct rb *b, int out, const char *name)
{
    char pad[16] = { 0 };
    snprintf(pad, sizeof pad, "%s", name);
    meta(b, out ? NFT_META_OIFNAME : NFT_META_IIFNAME);
    cmp(b, NFT_CMP_EQ, pad, sizeof pad);
}

static void l4(struct rb *b, uint8_t proto)
{
    meta(b, NFT_META_L4PROTO);
    cmp(b, NFT_CMP_EQ, &proto, 1);
}

static void dport(struct rb *b, uint8_t proto, uint16_t port)
{
    uint16_t p = htons(port);
    l4(b, proto);
    payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    cmp(b, NFT_CMP_EQ, &p, 2);
}

static void ctstate(struct rb *b, uint32_t mask)
{
    struct nftnl_expr *e = ex(b, "ct");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, R1);
    uint32_t zero = 0, xor = 0;
    e = ex(b, "bitwise");
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, R1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, R1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, 4);
    cmp(b, NFT_CMP_NEQ, &zero, 4);
}

/* Matches the packet's source (src=1) or destination against a set of fw.set type. */
static void in_set(struct rb *b, const struct fwset_set *s, int src)
{
    uint8_t proto;
    switch (s->etype) {
    case FWSET_E_V4:
    case FWSET_E_V4R:
        proto = NFPROTO_IPV4;
        meta(b, NFT_META_NFPROTO);
        cmp(b, NFT_CMP_EQ, &proto, 1);
        payload(b, NFT_PAYLOAD_NETWORK_HEADER, src ? 12 : 16, 4);
        break;
    case FWSET_E_V6:
    case FWSET_E_V6R:
        proto = NFPROTO_IPV6;
        meta(b, NFT_META_NFPROTO);
        cmp(b, NFT_CMP_EQ, &proto, 1);
        payload(b, NFT_PAYLOAD_NETWORK_HEADER, src ? 8 : 24, 16);
        break;
    default: {  /* MAC: only the source makes sense, and only on ethernet */
        uint16_t t = ARPHRD_ETHER;
        meta(b, NFT_META_IIFTYPE);
        cmp(b, NFT_CMP_EQ, &t, 2);
        payload(b, NFT_PAYLOAD_LL_HEADER, 6, 6);
        break;
    }
    }
    struct nftnl_expr *e = ex(b, "lookup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, R1);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, s->name);
}

static void limit(struct rb *b, uint32_t rate)
{
    struct nftnl_expr *e = ex(b, "limit");
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, rate ? rate : 1);
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, 1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, 5);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
}

static void nflog(struct rb *b, uint32_t group, const char *prefix)
{
    struct nftnl_expr *e = ex(b, "log");
    nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix);
    nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, (uint16_t)group);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_SNAPLEN, 128);
}

static void counter(struct rb *b)
{
    ex(b, "counter");
}

static void verdict(struct rb *b, int v, const char *chain)
{
    struct nftnl_expr *e = ex(b, "immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)v);
    if (chain)
        nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
}

static void reject(struct rb *b, int tcp)
{
    struct nftnl_expr *e = ex(b, "reject");
    nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, tcp ? NFT_REJECT_TCP_RST : NFT_REJECT_ICMPX_UNREACH);
    nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, tcp ? 0 : NFT_REJECT_ICMPX_PORT_UNREACH);
}

static void redirect(struct rb *b, uint16_t port)
{
    uint16_t p = htons(port);
    struct nftnl_expr *e = ex(b, "immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, R1);
    nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &p, 2);
    e = ex(b, "redir");
    nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, R1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
}

static void not_local_daddr(struct rb *b)
{
    uint32_t local = 2; /* RTN_LOCAL */
    struct nftnl_expr *e = ex(b, "fib");
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, R1);
    cmp(b, NFT_CMP_NEQ, &local, 4);
}

/* ---- assembling chains ------------------------------------------------------- */
struct ctx {
    struct fw_ruleset *rs;
    const struct fwset *s;
    int failed;
};

static struct fw_chain *chain(struct ctx *c, const char *name, int base, uint32_t hook,
                              int32_t prio, const char *type, uint32_t policy)
{
    struct fw_chain *ch = &c->rs->chains[c->rs->nchains++];
    memset(ch, 0, sizeof *ch);
    snprintf(ch->name, sizeof ch->name, "%s", name);
    ch->base = base;
    ch->hook = hook;
    ch->prio = prio;
    snprintf(ch->type, sizeof ch->type, "%s", type);
    ch->policy = policy;
    ch->rules = calloc(FW_MAX_RULES, sizeof *ch->rules);
    ch->hashes = calloc(FW_MAX_RULES, sizeof *ch->hashes);
    if (!ch->rules || !ch->hashes)
        c->failed = 1;
    return ch;
}

static struct rb begin(struct fw_chain *ch, const char *what)
{
    struct rb b = { nftnl_rule_alloc(), "" };
    nftnl_rule_set_u32(b.r, NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_set_str(b.r, NFTNL_RULE_TABLE, FW_TABLE);
    nftnl_rule_set_str(b.r, NFTNL_RULE_CHAIN, ch->name);
    snprintf(b.what, sizeof b.what, "%s", what);
    return b;
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

/* Hashes the rule's encoding, stores the hash in its comment and appends it. */
static void end(struct ctx *c, struct fw_chain *ch, struct rb *b)
{
    if (!b->r || ch->nrules == FW_MAX_RULES || c->failed) {
        c->failed = 1;
        if (b->r)
            nftnl_rule_free(b->r);
        return;
    }
    char buf[8192];
    memset(buf, 0, sizeof buf); /* libmnl 1.0.4 leaves attribute padding unset: hash zeros */
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, 0, 0);
    nftnl_rule_nlmsg_build_payload(nlh, b->r);
    uint64_t h = fnv1a(mnl_nlmsg_get_payload(nlh), mnl_nlmsg_get_payload_len(nlh),
                       0xcbf29ce484222325ull);
    char comment[128];
    snprintf(comment, sizeof comment, "otasuke:%016llx %s", (unsigned long long)h, b->what);
    struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(256);
    nftnl_udata_put_strz(ud, 0 /* NFTNL_UDATA_RULE_COMMENT */, comment);
    nftnl_rule_set_data(b->r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
                        nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
    ch->rules[ch->nrules] = b->r;
    ch->hashes[ch->nrules++] = h;
}

uint64_t fw_rules_udata_hash(const void *udata, uint32_t len)
{
    const uint8_t *p = udata;
    /* TLV: type(1) len(1) value */
    for (uint32_t off = 0; off + 2 <= len;) {
        uint8_t t = p[off], l = p[off + 1];
        if (off + 2u + l > len)
            break;
        if (t == 0 && l >= 24 && memcmp(p + off + 2, "otasuke:", 8) == 0) {
            char hex[17];
            memcpy(hex, p + off + 10, 16);
            hex[16] = '\0';
            return strtoull(hex, NULL, 16);
        }
        off += 2u + l;
    }
    return 0;
}

static const char *zone_chain(const char *prefix, int z, char *buf, size_t n)
{
    snprintf(buf, n, "%s_%s", prefix, fwset_zone_name(z));
    return buf;
}

#define EACH_IF(o, z, i) \
    for (int i = 0; i < FWSET_MAX_IFACES && (o)->ifname[z][i][0]; i++)

static void quarantine_rules(struct ctx *c, struct fw_chain *ch, int to_chain)
{
    for (size_t i = 0; i < c->s->n_sets; i++) {
        const struct fwset_set *q = &c->s->sets[i];
        if (q->kind != FWSET_KIND_QUARANTINE)
            continue;
        char what[96];
        snprintf(what, sizeof what, "quarantined @%s", q->name);
        if (to_chain) {
            struct rb b = begin(ch, what);
            in_set(&b, q, 1);
            verdict(&b, NFT_JUMP, "in_quar");
            end(c, ch, &b);
        } else {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "Q:%s:s ", q->name);
            struct rb b = begin(ch, what);
            in_set(&b, q, 1);
            if (c->s->opts.nflog_group) {
                limit(&b, c->s->opts.log_rate);
                nflog(&b, c->s->opts.nflog_group, prefix);
            }
            counter(&b);
            verdict(&b, NF_DROP, NULL);
            end(c, ch, &b);
            b = begin(ch, what);
            in_set(&b, q, 1);
            verdict(&b, NF_DROP, NULL);
            end(c, ch, &b);
            /* Containment works both ways: nobody opens a new connection to a
             * quarantined address either (replies to the box's own services are input,
             * not forward). A MAC set has no destination to match once routed. */
            if (q->etype != FWSET_E_MAC) {
                snprintf(what, sizeof what, "to quarantined @%s", q->name);
                b = begin(ch, what);
                in_set(&b, q, 0);
                counter(&b);
                verdict(&b, NF_DROP, NULL);
                end(c, ch, &b);
            }
        }
    }
}

static void logdrop(struct ctx *c, struct fw_chain *ch, const char *prefix)
{
    if (c->s->opts.nflog_group) {
        struct rb b = begin(ch, prefix);
        limit(&b, c->s->opts.log_rate);
        nflog(&b, c->s->opts.nflog_group, prefix);
        end(c, ch, &b);
    }
    struct rb b = begin(ch, "drop");
    counter(&b);
    verdict(&b, NF_DROP, NULL);
    end(c, ch, &b);
}

static void accept_port(struct ctx *c, struct fw_chain *ch, uint8_t proto, uint16_t port)
{
    char what[32];
    snprintf(what, sizeof what, "%s dport %u", proto == IPPROTO_TCP ? "tcp" : "udp", port);
    struct rb b = begin(ch, what);
    dport(&b, proto, port);
    verdict(&b, NF_ACCEPT, NULL);
    end(c, ch, &b);
}

/* The box's own DHCP client on the WAN: only a server's answer (IPv4 from port 67 to
 * 68, DHCPv6 from 547 to 546, e.g. a prefix delegation) gets in; any other datagram to
 * those ports is dropped like the rest of the WAN. */
static void dhcp_client_replies(struct ctx *c, struct fw_chain *ch)
{
    static const struct { uint8_t family; uint16_t sport, dport; const char *what; } r[] = {
        { NFPROTO_IPV4, 67, 68, "dhcp server -> client (udp 67 -> 68)" },
        { NFPROTO_IPV6, 547, 546, "dhcpv6 server -> client (udp 547 -> 546)" },
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        struct rb b = begin(ch, r[i].what);
        meta(&b, NFT_META_NFPROTO);
        cmp(&b, NFT_CMP_EQ, &r[i].family, 1);
        uint16_t sp = htons(r[i].sport);
        l4(&b, IPPROTO_UDP);
        payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2);
        cmp(&b, NFT_CMP_EQ, &sp, 2);
        uint16_t dp = htons(r[i].dport);
        payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
        cmp(&b, NFT_CMP_EQ, &dp, 2);
        verdict(&b, NF_ACCEPT, NULL);
        end(c, ch, &b);
    }
}

static void block_rules(struct ctx *c, struct fw_chain *ch, int src)
{
    for (size_t i = 0; i < c->s->n_sets; i++) {
        const struct fwset_set *t = &c->s->sets[i];
        if (t->kind != FWSET_KIND_BLOCK || t->etype == FWSET_E_MAC)
            continue;
        char prefix[64], what[96];
        snprintf(prefix, sizeof prefix, "B:%s:%c ", t->name, src ? 's' : 'd');
        snprintf(what, sizeof what, "%s in @%s", src ? "saddr" : "daddr", t->name);
        struct rb b;
        if (c->s->opts.nflog_group) {
            b = begin(ch, what);
            in_set(&b, t, src);
            limit(&b, c->s->opts.log_rate);
            nflog(&b, c->s->opts.nflog_group, prefix);
            counter(&b);
            verdict(&b, NF_DROP, NULL);
            end(c, ch, &b);
        }
        b = begin(ch, what);
        in_set(&b, t, src);
        counter(&b);
        verdict(&b, NF_DROP, NULL);
        end(c, ch, &b);
    }
}

static void forward_zone(struct ctx *c, struct fw_chain *ch, int z)
{
    const struct fwset_opts *o = &c->s->opts;
    quarantine_rules(c, ch, 0);
    struct rb b = begin(ch, "DoT");
    dport(&b, IPPROTO_TCP, 853);
    reject(&b, 1);
    end(c, ch, &b);
    b = begin(ch, "DoQ");
    dport(&b, IPPROTO_UDP, 853);
    reject(&b, 0);
    end(c, ch, &b);
    for (size_t i = 0; i < c->s->n_sets; i++) {
        const struct fwset_set *t = &c->s->sets[i];
        if (t->kind != FWSET_KIND_DOH || t->etype == FWSET_E_MAC)
            continue;
        for (int tcp = 1; tcp >= 0; tcp--) {
            char what[96];
            snprintf(what, sizeof what, "DoH @%s %s 443", t->name, tcp ? "tcp" : "udp");
            b = begin(ch, what);
            in_set(&b, t, 0);
            dport(&b, tcp ? IPPROTO_TCP : IPPROTO_UDP, 443);
            reject(&b, tcp);
            end(c, ch, &b);
        }
    }
    EACH_IF(o, FWSET_ZONE_WAN, w) {
        if (z == FWSET_ZONE_IOT && (o->flags & FWSET_F_IOT_ALLOWLIST)) {
            for (size_t i = 0; i < c->s->n_sets; i++) {
                const struct fwset_set *t = &c->s->sets[i];
                if (t->kind != FWSET_KIND_ALLOW || t->etype == FWSET_E_MAC)
                    continue;
                b = begin(ch, "iot allowlist");
                ifname(&b, 1, o->ifname[FWSET_ZONE_WAN][w]);
                in_set(&b, t, 0);
                verdict(&b, NF_ACCEPT, NULL);
                end(c, ch, &b);
            }
        } else {
            b = begin(ch, "to wan");
            ifname(&b, 1, o->ifname[FWSET_ZONE_WAN][w]);
            verdict(&b, NF_ACCEPT, NULL);
            end(c, ch, &b);
        }
    }
    if (z == FWSET_ZONE_LAN)
        EACH_IF(o, FWSET_ZONE_IOT, k) {
            b = begin(ch, "lan manages iot");
            ifname(&b, 1, o->ifname[FWSET_ZONE_IOT][k]);
            verdict(&b, NF_ACCEPT, NULL);
            end(c, ch, &b);
        }
}

int fw_rules_build(const struct fwset *s, struct fw_ruleset *rs, char *err, size_t errlen)
{
    memset(rs, 0, sizeof *rs);
    struct ctx c = { rs, s, 0 };
    const struct fwset_opts *o = &s->opts;
    char name[32];
    struct rb b;

    /* Jump targets first: a chain must exist before a rule jumps to it. */
    struct fw_chain *blk_src = chain(&c, "blk_src", 0, 0, 0, "filter", 0);
    block_rules(&c, blk_src, 1);
    struct fw_chain *blk_dst = chain(&c, "blk_dst", 0, 0, 0, "filter", 0);
    block_rules(&c, blk_dst, 0);

    struct fw_chain *quar = chain(&c, "in_quar", 0, 0, 0, "filter", 0);
    accept_port(&c, quar, IPPROTO_UDP, 53);
    accept_port(&c, quar, IPPROTO_TCP, 53);
    accept_port(&c, quar, IPPROTO_UDP, 67);
    accept_port(&c, quar, IPPROTO_TCP, 80);
    accept_port(&c, quar, IPPROTO_TCP, 443);
    logdrop(&c, quar, "D:in_quar ");

    for (int z = 0; z < FWSET_ZONES; z++) {
        struct fw_chain *ch = chain(&c, zone_chain("in", z, name, sizeof name), 0, 0, 0, "filter", 0);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "D:in_%s ", fwset_zone_name(z));
        if (z == FWSET_ZONE_WAN) {
            dhcp_client_replies(&c, ch);
            logdrop(&c, ch, prefix);
            continue;
        }
        quarantine_rules(&c, ch, 1);
        if (z == FWSET_ZONE_LAN) {
            b = begin(ch, "lan reaches the box");
            verdict(&b, NF_ACCEPT, NULL);
            end(&c, ch, &b);
            continue;
        }
        accept_port(&c, ch, IPPROTO_UDP, 53);
        accept_port(&c, ch, IPPROTO_TCP, 53);
        accept_port(&c, ch, IPPROTO_UDP, 67);
        accept_port(&c, ch, IPPROTO_TCP, 80);
        accept_port(&c, ch, IPPROTO_TCP, 443);
        logdrop(&c, ch, prefix);
    }
    for (int z = 0; z < FWSET_ZONE_WAN; z++) {
        struct fw_chain *ch = chain(&c, zone_chain("fwd", z, name, sizeof name), 0, 0, 0, "filter", 0);
        forward_zone(&c, ch, z);
    }

    struct fw_chain *nat_in = chain(&c, "nat_in", 0, 0, 0, "nat", 0);
    for (size_t i = 0; i < s->n_sets; i++) {
        const struct fwset_set *q = &s->sets[i];
        if (q->kind != FWSET_KIND_QUARANTINE)
            continue;
        b = begin(nat_in, "quarantined web to the block page");
        in_set(&b, q, 1);
        dport(&b, IPPROTO_TCP, 80);
        redirect(&b, 80);
        end(&c, nat_in, &b);
    }
    for (int tcp = 0; tcp <= 1; tcp++) {
        b = begin(nat_in, tcp ? "DNS interception tcp" : "DNS interception udp");
        not_local_daddr(&b);
        dport(&b, tcp ? IPPROTO_TCP : IPPROTO_UDP, 53);
        redirect(&b, 53);
        end(&c, nat_in, &b);
    }

    /* Base chains last. */
    struct fw_chain *pre = chain(&c, "pre_nat", 1, NF_INET_PRE_ROUTING, -100, "nat", NF_ACCEPT);
    for (int z = 0; z < FWSET_ZONE_WAN; z++)
        EACH_IF(o, z, i) {
            b = begin(pre, "internal zone");
            ifname(&b, 0, o->ifname[z][i]);
            verdict(&b, NFT_JUMP, "nat_in");
            end(&c, pre, &b);
        }
    struct fw_chain *post = chain(&c, "post_nat", 1, NF_INET_POST_ROUTING, 100, "nat", NF_ACCEPT);
    EACH_IF(o, FWSET_ZONE_WAN, w) {
        b = begin(post, "masquerade");
        ifname(&b, 1, o->ifname[FWSET_ZONE_WAN][w]);
        ex(&b, "masq");
        end(&c, post, &b);
    }

    struct fw_chain *in = chain(&c, "input", 1, NF_INET_LOCAL_IN, 0, "filter", NF_ACCEPT);
    struct fw_chain *fwd = chain(&c, "forward", 1, NF_INET_FORWARD, 0, "filter", NF_DROP);
    struct fw_chain *both[2] = { in, fwd };
    for (int k = 0; k < 2; k++) {
        struct fw_chain *ch = both[k];
        b = begin(ch, "established,related");
        ctstate(&b, CT_EST);
        verdict(&b, NF_ACCEPT, NULL);
        end(&c, ch, &b);
        b = begin(ch, "invalid");
        ctstate(&b, NF_CT_STATE_INVALID_BIT);
        verdict(&b, NF_DROP, NULL);
        end(&c, ch, &b);
        if (ch == in) {
            b = begin(ch, "loopback");
            ifname(&b, 0, "lo");
            verdict(&b, NF_ACCEPT, NULL);
            end(&c, ch, &b);
            b = begin(ch, "icmpv6 (neighbour discovery)");
            l4(&b, IPPROTO_ICMPV6);
            verdict(&b, NF_ACCEPT, NULL);
            end(&c, ch, &b);
            b = begin(ch, "icmp");
            l4(&b, IPPROTO_ICMP);
            verdict(&b, NF_ACCEPT, NULL);
            end(&c, ch, &b);
        }
        b = begin(ch, "blocked sources");
        verdict(&b, NFT_JUMP, "blk_src");
        end(&c, ch, &b);
        if (ch == fwd) {
            b = begin(ch, "blocked destinations");
            verdict(&b, NFT_JUMP, "blk_dst");
            end(&c, ch, &b);
        }
        for (int z = 0; z < FWSET_ZONES; z++) {
            if (ch == fwd && z == FWSET_ZONE_WAN)
                continue; /* new connections from the internet: policy drop */
            EACH_IF(o, z, i) {
                b = begin(ch, fwset_zone_name(z));
                ifname(&b, 0, o->ifname[z][i]);
                verdict(&b, NFT_JUMP, zone_chain(ch == in ? "in" : "fwd", z, name, sizeof name));
                end(&c, ch, &b);
            }
        }
        if (ch == fwd && o->nflog_group) {
            b = begin(ch, "D:forward ");
            limit(&b, o->log_rate);
            nflog(&b, o->nflog_group, "D:forward ");
            end(&c, ch, &b);
        }
    }
    if (c.failed) {
        fw_rules_free(rs);
        snprintf(err, errlen, "out of memory building the ruleset");
        return -1;
    }
    return 0;
}

void fw_rules_free(struct fw_ruleset *rs)
{
    for (size_t i = 0; i < rs->nchains; i++) {
        struct fw_chain *ch = &rs->chains[i];
        for (size_t j = 0; j < ch->nrules; j++)
            nftnl_rule_free(ch->rules[j]);
        free(ch->rules);
        free(ch->hashes);
    }
    memset(rs, 0, sizeof *rs);
}
