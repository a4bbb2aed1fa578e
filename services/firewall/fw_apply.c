/* Desired state → diff against the kernel → one atomic batch.
 *
 * Incremental where it is cheap and safe: rule lists per chain (flush + re-add one
 * chain), new and stale sets, element deltas. Anything structural (a chain's hook or
 * policy, a set's key type or flags) re-creates the whole table inside the same batch,
 * so the kernel still switches from old to new in one commit. */
#include "fw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ELEM_NEST_MAX 60000   /* nested attribute lengths are 16 bit */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct plan {
    struct fw_nl *nl;
    FILE *out;          /* dry run: describe instead of sending */
    struct fw_stats *st;
    int oom;
    uint32_t set_id;
};

static struct nlmsghdr *msg(struct plan *p, uint16_t type, uint16_t flags, size_t room,
                            const char *what)
{
    struct nlmsghdr *nlh = fw_nl_msg(p->nl, type, flags, room, what);
    if (!nlh)
        p->oom = 1;
    return nlh;
}

static void emit_table(struct plan *p, int del)
{
    if (p->out)
        fprintf(p->out, "%s table inet %s\n", del ? "-" : "+", FW_TABLE);
    struct nlmsghdr *nlh = msg(p, del ? NFT_MSG_DELTABLE : NFT_MSG_NEWTABLE,
                               del ? 0 : NLM_F_CREATE, 1024, "table inet " FW_TABLE);
    if (!nlh)
        return;
    struct nftnl_table *t = nftnl_table_alloc();
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, FW_TABLE);
    nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
    nftnl_table_nlmsg_build_payload(nlh, t);
    nftnl_table_free(t);
    fw_nl_msg_end(p->nl, nlh);
}

static void set_keyinfo(int etype, uint32_t *type, uint32_t *len, uint32_t *flags)
{
    switch (etype) {
    case FWSET_E_V4: *type = 7, *len = 4, *flags = 0; break;
    case FWSET_E_V4R: *type = 7, *len = 4, *flags = NFT_SET_INTERVAL; break;
    case FWSET_E_V6: *type = 8, *len = 16, *flags = 0; break;
    case FWSET_E_V6R: *type = 8, *len = 16, *flags = NFT_SET_INTERVAL; break;
    default: *type = 9, *len = 6, *flags = 0; break;
    }
}

/* Hash sets get a size hint: the kernel then picks its fixed-size hash (one bucket array,
 * no rhashtable resizing), about 3x cheaper per insert for a million singles. The size is
 * also a hard cap, so leave room to grow; outgrowing it re-creates the set. */
static uint32_t hash_size(size_t count)
{
    size_t want = count + count / 2, n = 1024;
    while (n < want && n < (1u << 30))
        n <<= 1;
    return (uint32_t)n;
}

static void emit_set(struct plan *p, const struct fwset_set *s, int del)
{
    char what[128];
    snprintf(what, sizeof what, "set %s", s->name);
    if (p->out)
    {
        if (del)
            fprintf(p->out, "- set %s (stale)\n", s->name);
        else
            fprintf(p->out, "+ set %s (%s, %zu elements)\n", s->name, fwset_kind_name(s->kind),
                    s->count);
    }
    struct nlmsghdr *nlh = msg(p, del ? NFT_MSG_DELSET : NFT_MSG_NEWSET,
                               del ? 0 : NLM_F_CREATE, 2048, what);
    if (!nlh)
        return;
    struct nftnl_set *t = nftnl_set_alloc();
    nftnl_set_set_str(t, NFTNL_SET_TABLE, FW_TABLE);
    nftnl_set_set_str(t, NFTNL_SET_NAME, s->name);
    nftnl_set_set_u32(t, NFTNL_SET_FAMILY, NFPROTO_INET);
    if (!del) {
        uint32_t type, len, flags;
        set_keyinfo(s->etype, &type, &len, &flags);
        if (s->timeout) {
            flags |= NFT_SET_TIMEOUT;
            nftnl_set_set_u64(t, NFTNL_SET_TIMEOUT, (uint64_t)s->timeout * 1000);
        }
        nftnl_set_set_u32(t, NFTNL_SET_KEY_TYPE, type);
        nftnl_set_set_u32(t, NFTNL_SET_KEY_LEN, len);
        nftnl_set_set_u32(t, NFTNL_SET_FLAGS, flags);
        nftnl_set_set_u32(t, NFTNL_SET_ID, ++p->set_id);
        if (!(flags & (NFT_SET_INTERVAL | NFT_SET_TIMEOUT)))
            nftnl_set_set_u32(t, NFTNL_SET_DESC_SIZE, hash_size(s->count));
    }
    nftnl_set_nlmsg_build_payload(nlh, t);
    nftnl_set_free(t);
    fw_nl_msg_end(p->nl, nlh);
}

/* Emits elements elems[idx[i]] (idx NULL = 0..n-1) in chunks that fit a 16-bit nest. */
static void emit_elems(struct plan *p, const char *set, int etype, const void *elems,
                       const uint32_t *idx, size_t n, int del)
{
    if (n == 0)
        return;
    if (p->out)
        fprintf(p->out, "%s %zu element%s %s set %s\n", del ? "-" : "+", n, n == 1 ? "" : "s",
                del ? "from" : "to", set);
    size_t i = 0;
    while (i < n && !p->oom) {
        char what[128];
        snprintf(what, sizeof what, "set %s elements from #%zu", set, i);
        struct nlmsghdr *nlh = msg(p, del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM,
                                   del ? 0 : NLM_F_CREATE, ELEM_NEST_MAX + 1024, what);
        if (!nlh)
            return;
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, FW_TABLE);
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
        struct nlattr *list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
        size_t start_len = nlh->nlmsg_len;
        for (; i < n && nlh->nlmsg_len - start_len < ELEM_NEST_MAX - 128; i++) {
            size_t k = idx ? idx[i] : i;
            uint8_t key[16];
            int has_end;
            size_t kl = fw_elem_key(etype, elems, k, 0, key, &has_end);
            struct nlattr *el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
            struct nlattr *ka = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
            mnl_attr_put(nlh, NFTA_DATA_VALUE, kl, key);
            mnl_attr_nest_end(nlh, ka);
            mnl_attr_nest_end(nlh, el);
            if (has_end) {
                fw_elem_key(etype, elems, k, 1, key, &has_end);
                el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
                mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(NFT_SET_ELEM_INTERVAL_END));
                ka = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
                mnl_attr_put(nlh, NFTA_DATA_VALUE, kl, key);
                mnl_attr_nest_end(nlh, ka);
                mnl_attr_nest_end(nlh, el);
            }
        }
        mnl_attr_nest_end(nlh, list);
        fw_nl_msg_end(p->nl, nlh);
    }
    if (del)
        p->st->elems_deleted += n;
    else
        p->st->elems_added += n;
}

/* DELSETELEM without an element list empties the set. */
static void emit_flush_set(struct plan *p, const char *set)
{
    char what[128];
    snprintf(what, sizeof what, "flush set %s", set);
    if (p->out)
        fprintf(p->out, "~ set %s: elements do not pair up, flush and refill\n", set);
    struct nlmsghdr *nlh = msg(p, NFT_MSG_DELSETELEM, 0, 1024, what);
    if (!nlh)
        return;
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, FW_TABLE);
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
    fw_nl_msg_end(p->nl, nlh);
}

static void emit_chain(struct plan *p, const struct fw_chain *c)
{
    char what[128];
    snprintf(what, sizeof what, "chain %s", c->name);
    if (p->out)
        fprintf(p->out, "+ chain %s\n", c->name);
    struct nlmsghdr *nlh = msg(p, NFT_MSG_NEWCHAIN, NLM_F_CREATE, 2048, what);
    if (!nlh)
        return;
    struct nftnl_chain *t = nftnl_chain_alloc();
    nftnl_chain_set_str(t, NFTNL_CHAIN_TABLE, FW_TABLE);
    nftnl_chain_set_str(t, NFTNL_CHAIN_NAME, c->name);
    nftnl_chain_set_u32(t, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
    if (c->base) {
        nftnl_chain_set_u32(t, NFTNL_CHAIN_HOOKNUM, c->hook);
        nftnl_chain_set_s32(t, NFTNL_CHAIN_PRIO, c->prio);
        nftnl_chain_set_str(t, NFTNL_CHAIN_TYPE, c->type);
        nftnl_chain_set_u32(t, NFTNL_CHAIN_POLICY, c->policy);
    }
    nftnl_chain_nlmsg_build_payload(nlh, t);
    nftnl_chain_free(t);
    fw_nl_msg_end(p->nl, nlh);
}

static void emit_rules(struct plan *p, const struct fw_chain *c, int flush_first)
{
    char what[128];
    if (p->out)
        fprintf(p->out, "~ chain %s: %s%zu rules\n", c->name, flush_first ? "flush, " : "",
                c->nrules);
    if (flush_first) {
        snprintf(what, sizeof what, "flush chain %s", c->name);
        struct nlmsghdr *nlh = msg(p, NFT_MSG_DELRULE, 0, 1024, what);
        if (!nlh)
            return;
        struct nftnl_rule *r = nftnl_rule_alloc();
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, FW_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, c->name);
        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
        nftnl_rule_nlmsg_build_payload(nlh, r);
        nftnl_rule_free(r);
        fw_nl_msg_end(p->nl, nlh);
    }
    for (size_t i = 0; i < c->nrules && !p->oom; i++) {
        snprintf(what, sizeof what, "rule %zu of chain %s", i + 1, c->name);
        struct nlmsghdr *nlh = msg(p, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, 8192, what);
        if (!nlh)
            return;
        nftnl_rule_nlmsg_build_payload(nlh, c->rules[i]);
        fw_nl_msg_end(p->nl, nlh);
    }
    p->st->chains_replaced++;
}

static int chain_same(const struct fw_chain *d, const struct fw_kchain *k)
{
    if (d->base != k->base)
        return 0;
    if (!d->base)
        return 1;
    return d->hook == k->hook && d->prio == k->prio && d->policy == k->policy &&
           strcmp(d->type, k->type) == 0;
}

static int rules_same(const struct fw_chain *d, const struct fw_kchain *k)
{
    return d->nrules == k->nrules &&
           (d->nrules == 0 || memcmp(d->hashes, k->hashes, d->nrules * sizeof *d->hashes) == 0);
}

static int set_same(const struct fwset_set *d, const struct fw_kset *k)
{
    uint32_t type, len, flags;
    set_keyinfo(d->etype, &type, &len, &flags);
    if (d->timeout)
        flags |= NFT_SET_TIMEOUT;
    return k->etype == d->etype && k->key_len == len && k->key_type == type &&
           (k->flags & (NFT_SET_INTERVAL | NFT_SET_TIMEOUT | NFT_SET_MAP)) == flags &&
           k->timeout_ms == (uint64_t)d->timeout * 1000 &&
           (k->size == 0 || k->size >= d->count);
}

static void emit_full(struct plan *p, const struct fwset *s, const struct fw_ruleset *rs)
{
    emit_table(p, 0);
    for (size_t i = 0; i < s->n_sets && !p->oom; i++) {
        emit_set(p, &s->sets[i], 0);
        p->st->sets_created++;
        emit_elems(p, s->sets[i].name, s->sets[i].etype, s->sets[i].elems, NULL,
                   s->sets[i].count, 0);
    }
    for (size_t i = 0; i < rs->nchains; i++)
        emit_chain(p, &rs->chains[i]);
    for (size_t i = 0; i < rs->nchains; i++)
        emit_rules(p, &rs->chains[i], 0);
}

/* Fills the batch (or prints the plan). Returns 0 or -1 + err. */
static int plan(struct plan *p, const struct fwset *s, const struct fw_ruleset *rs,
                struct fw_kstate *ks, char *err, size_t errlen)
{
    int rebuild = 0;
    if (!ks->table_exists) {
        emit_full(p, s, rs);
        goto done;
    }
    for (size_t i = 0; i < rs->nchains && !rebuild; i++) {
        const struct fw_chain *d = &rs->chains[i];
        size_t j;
        for (j = 0; j < ks->nchains; j++)
            if (strcmp(ks->chains[j].name, d->name) == 0)
                break;
        if (j == ks->nchains || !chain_same(d, &ks->chains[j]))
            rebuild = 1;
    }
    if (ks->nchains != rs->nchains)
        rebuild = 1; /* a stale chain of ours */
    for (size_t i = 0; i < s->n_sets && !rebuild; i++) {
        struct fw_kset *k = fw_kstate_set(ks, s->sets[i].name);
        if (k && !set_same(&s->sets[i], k))
            rebuild = 1;
    }
    if (rebuild) {
        if (p->out)
            fprintf(p->out, "# structure changed: re-creating the table in one batch\n");
        p->st->rebuilt = 1;
        emit_table(p, 0);
        emit_table(p, 1);
        emit_full(p, s, rs);
        goto done;
    }
    /* new sets first, so rules referring to them resolve */
    for (size_t i = 0; i < s->n_sets; i++)
        if (!fw_kstate_set(ks, s->sets[i].name)) {
            emit_set(p, &s->sets[i], 0);
            p->st->sets_created++;
            emit_elems(p, s->sets[i].name, s->sets[i].etype, s->sets[i].elems, NULL,
                       s->sets[i].count, 0);
        }
    for (size_t i = 0; i < rs->nchains; i++) {
        const struct fw_chain *d = &rs->chains[i];
        for (size_t j = 0; j < ks->nchains; j++)
            if (strcmp(ks->chains[j].name, d->name) == 0 && !rules_same(d, &ks->chains[j])) {
                if (p->out && getenv("FWD_DEBUG"))
                    for (size_t r = 0; r < d->nrules || r < ks->chains[j].nrules; r++)
                        fprintf(p->out, "#   %s[%zu] want %016llx have %016llx\n", d->name, r,
                                r < d->nrules ? (unsigned long long)d->hashes[r] : 0ull,
                                r < ks->chains[j].nrules ? (unsigned long long)ks->chains[j].hashes[r] : 0ull);
                emit_rules(p, d, 1);
            }
    }
    for (size_t i = 0; i < ks->nsets; i++)
        if (!fwset_find(s, ks->sets[i].name)) {
            struct fwset_set gone = { 0 };
            snprintf(gone.name, sizeof gone.name, "%s", ks->sets[i].name);
            emit_set(p, &gone, 1);
            p->st->sets_deleted++;
        }
    for (size_t i = 0; i < s->n_sets && !p->oom; i++) {
        const struct fwset_set *d = &s->sets[i];
        struct fw_kset *k = fw_kstate_set(ks, d->name);
        if (!k)
            continue;
        if (k->odd) {
            /* Interval elements that do not pair up: in a set with timeouts the start of a
             * range expires while its end element (which never expires) stays. Flush
             * just this set and refill it, in the same batch. */
            emit_flush_set(p, d->name);
            emit_elems(p, d->name, d->etype, d->elems, NULL, d->count, 0);
            continue;
        }
        uint32_t *add = malloc((d->count ? d->count : 1) * sizeof *add);
        uint32_t *del = malloc((k->count ? k->count : 1) * sizeof *del);
        if (!add || !del) {
            free(add), free(del);
            snprintf(err, errlen, "out of memory diffing set %s", d->name);
            return -1;
        }
        size_t nadd, ndel;
        fw_diff_elems(d->etype, k->elems, k->count, d->elems, d->count, add, &nadd, del, &ndel);
        emit_elems(p, d->name, d->etype, k->elems, del, ndel, 1);
        emit_elems(p, d->name, d->etype, d->elems, add, nadd, 0);
        free(add);
        free(del);
    }
done:
    if (p->oom) {
        snprintf(err, errlen, "out of memory building the batch");
        return -1;
    }
    return 0;
}

int fw_apply(struct fw_nl *nl, const struct fwset *s, const struct fwset *known,
             uint32_t known_gen, int dry_run, void *out, struct fw_stats *st,
             char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    struct fw_ruleset rs;
    double t0 = now_ms();
    if (fw_rules_build(s, &rs, err, errlen) < 0)
        return -1;
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct fw_kstate ks;
        double t1 = now_ms();
        /* after a failed attempt trust nothing: read every element */
        if (fw_read_state(nl, &ks, attempt ? NULL : known, known_gen, err, errlen) < 0)
            break;
        st->trusted = ks.trusted;
        double t2 = now_ms();
        st->read_ms += t2 - t1;
        fw_nl_batch_reset(nl, err, errlen);
        struct plan p = { nl, dry_run ? out : NULL, st, 0, 0 };
        st->elems_added = st->elems_deleted = 0;
        st->sets_created = st->sets_deleted = st->chains_replaced = 0;
        st->rebuilt = 0;
        int prc = plan(&p, s, &rs, &ks, err, errlen);
        uint32_t ks_gen = ks.genid;
        fw_kstate_free(&ks);
        double t3 = now_ms();
        st->build_ms += t3 - t2;
        if (prc < 0)
            break;
        if (dry_run) {
            st->writes = nl->nmsg;
            rc = 0;
            break;
        }
        int e = 0;
        st->writes = nl->nmsg;
        rc = fw_nl_commit(nl, &e, err, errlen);
        st->commit_ms += now_ms() - t3;
        fw_nl_batch_reset(nl, err, errlen);
        if (rc == 0) {
            if (st->writes == 0)
                st->genid = ks_gen;
            else if (fw_nl_genid(nl, &st->genid, err, errlen) < 0)
                st->genid = 0;
            break;
        }
        /* Lost acks, or the kernel moved under us (an element expired, someone else
         * edited our table): read the state again and try once more. */
        if (attempt == 0 && (e == ENOBUFS || e == ENOENT || e == EEXIST || e == EBUSY ||
                             e == EINTR || e == ERESTART)) {
            st->retried = 1;
            snprintf(st->retry_reason, sizeof st->retry_reason, "%s", err);
            continue;
        }
        break;
    }
    (void)t0;
    fw_rules_free(&rs);
    return rc;
}

int fw_remove(struct fw_nl *nl, char *err, size_t errlen)
{
    fw_nl_batch_reset(nl, err, errlen);
    struct fw_stats st;
    memset(&st, 0, sizeof st);
    struct plan p = { nl, NULL, &st, 0, 0 };
    emit_table(&p, 1);
    int e;
    int rc = fw_nl_commit(nl, &e, err, errlen);
    fw_nl_batch_reset(nl, err, errlen);
    return rc < 0 && e == ENOENT ? 0 : rc; /* no table of ours: nothing to remove */
}
