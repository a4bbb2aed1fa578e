/* Reads `table inet otasuke` back from the kernel.
 *
 * Chains, rules and set definitions go through libnftnl (few objects). Set elements are
 * parsed with libmnl straight into compact sorted arrays: libnftnl would allocate one
 * object of ~200 bytes per element, 200 MB for a million, where this costs 8-17 bytes. */
#include "fw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fw_kset *fw_kstate_set(struct fw_kstate *ks, const char *name)
{
    for (size_t i = 0; i < ks->nsets; i++)
        if (strcmp(ks->sets[i].name, name) == 0)
            return &ks->sets[i];
    return NULL;
}

void fw_kstate_free(struct fw_kstate *ks)
{
    for (size_t i = 0; i < ks->nsets; i++)
        if (!ks->sets[i].borrowed)
            free(ks->sets[i].elems);
    free(ks->sets);
    for (size_t i = 0; i < ks->nchains; i++)
        free(ks->chains[i].hashes);
    memset(ks, 0, sizeof *ks);
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
    (void)nlh;
    *(int *)data = 1;
    return 0;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
    struct fw_kstate *ks = data;
    struct nftnl_chain *c = nftnl_chain_alloc();
    if (!c || nftnl_chain_nlmsg_parse(nlh, c) < 0) {
        nftnl_chain_free(c);
        return -1;
    }
    const char *table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
    if (table && strcmp(table, FW_TABLE) == 0 && ks->nchains < sizeof ks->chains / sizeof ks->chains[0]) {
        struct fw_kchain *k = &ks->chains[ks->nchains++];
        memset(k, 0, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
        if (nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM)) {
            k->base = 1;
            k->hook = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
            k->prio = (int32_t)nftnl_chain_get_u32(c, NFTNL_CHAIN_PRIO);
            k->policy = nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY);
            const char *t = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
            snprintf(k->type, sizeof k->type, "%s", t ? t : "");
        }
    }
    nftnl_chain_free(c);
    return 0;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
    struct fw_kstate *ks = data;
    struct nftnl_rule *r = nftnl_rule_alloc();
    if (!r || nftnl_rule_nlmsg_parse(nlh, r) < 0) {
        nftnl_rule_free(r);
        return -1;
    }
    const char *chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
    for (size_t i = 0; chain && i < ks->nchains; i++) {
        struct fw_kchain *k = &ks->chains[i];
        if (strcmp(k->name, chain) != 0)
            continue;
        uint64_t *h = realloc(k->hashes, (k->nrules + 1) * sizeof *h);
        if (!h) {
            nftnl_rule_free(r);
            return -1;
        }
        k->hashes = h;
        uint32_t len = 0;
        const void *ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
        k->hashes[k->nrules++] = ud ? fw_rules_udata_hash(ud, len) : 0;
        break;
    }
    nftnl_rule_free(r);
    return 0;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
    struct fw_kstate *ks = data;
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s || nftnl_set_nlmsg_parse(nlh, s) < 0) {
        nftnl_set_free(s);
        return -1;
    }
    const char *table = nftnl_set_get_str(s, NFTNL_SET_TABLE);
    const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
    if (table && name && strcmp(table, FW_TABLE) == 0) {
        struct fw_kset *n = realloc(ks->sets, (ks->nsets + 1) * sizeof *n);
        if (!n) {
            nftnl_set_free(s);
            return -1;
        }
        ks->sets = n;
        struct fw_kset *k = &ks->sets[ks->nsets++];
        memset(k, 0, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", name);
        k->flags = nftnl_set_get_u32(s, NFTNL_SET_FLAGS);
        k->key_type = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE);
        k->key_len = nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN);
        if (nftnl_set_is_set(s, NFTNL_SET_TIMEOUT))
            k->timeout_ms = nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT);
        if (nftnl_set_is_set(s, NFTNL_SET_DESC_SIZE))
            k->size = nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE);
        int interval = !!(k->flags & NFT_SET_INTERVAL);
        if (k->key_len == 4)
            k->etype = interval ? FWSET_E_V4R : FWSET_E_V4;
        else if (k->key_len == 16)
            k->etype = interval ? FWSET_E_V6R : FWSET_E_V6;
        else if (k->key_len == 6 && !interval)
            k->etype = FWSET_E_MAC;
    }
    nftnl_set_free(s);
    return 0;
}

/* Raw element collection: key bytes + end flag, converted once the dump is complete. */
struct elem_acc {
    uint8_t *raw;          /* records of rec bytes: key[keylen] then 1 flag byte */
    size_t n, cap, rec, keylen;
    int failed;
};

static void elem_one(struct elem_acc *acc, const struct nlattr *el)
{
    const struct nlattr *a;
    const void *key = NULL;
    size_t klen = 0;
    uint32_t flags = 0;
    mnl_attr_for_each_nested(a, el) {
        switch (mnl_attr_get_type(a)) {
        case NFTA_SET_ELEM_KEY: {
            const struct nlattr *d;
            mnl_attr_for_each_nested(d, a) {
                if (mnl_attr_get_type(d) == NFTA_DATA_VALUE) {
                    key = mnl_attr_get_payload(d);
                    klen = mnl_attr_get_payload_len(d);
                }
            }
            break;
        }
        case NFTA_SET_ELEM_FLAGS:
            flags = ntohl(mnl_attr_get_u32(a));
            break;
        }
    }
    if (!key || klen != acc->keylen)
        return;
    if (acc->n == acc->cap) {
        size_t cap = acc->cap ? acc->cap * 2 : 4096;
        uint8_t *p = realloc(acc->raw, cap * acc->rec);
        if (!p) {
            acc->failed = 1;
            return;
        }
        acc->raw = p;
        acc->cap = cap;
    }
    uint8_t *r = acc->raw + acc->n++ * acc->rec;
    memcpy(r, key, klen);
    r[klen] = (flags & NFT_SET_ELEM_INTERVAL_END) ? 1 : 0;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
    struct elem_acc *acc = data;
    const struct nlattr *a, *el;
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
            continue;
        mnl_attr_for_each_nested(el, a) {
            elem_one(acc, el);
        }
    }
    return acc->failed ? -1 : 0;
}

static size_t g_keylen;
static int cmp_raw(const void *a, const void *b)
{
    int c = memcmp(a, b, g_keylen);
    if (c)
        return c;
    /* at one key an interval end sorts before a start: [x, k-1] ends where [k, ..] starts */
    return (int)((const uint8_t *)b)[g_keylen] - (int)((const uint8_t *)a)[g_keylen];
}

/* Converts the raw (key, end) records into fw.set layout. */
static int elems_convert(struct fw_kset *k, struct elem_acc *acc)
{
    size_t kl = acc->keylen, es = fwset_elem_size(k->etype);
    g_keylen = kl;
    if (acc->n > 1)
        qsort(acc->raw, acc->n, acc->rec, cmp_raw);
    uint8_t *out = malloc((acc->n ? acc->n : 1) * es);
    if (!out)
        return -1;
    size_t w = 0;
    int interval = k->etype == FWSET_E_V4R || k->etype == FWSET_E_V6R;
    for (size_t i = 0; i < acc->n; i++) {
        const uint8_t *r = acc->raw + i * acc->rec;
        if (!interval) {
            if (r[kl])
                continue;
            if (k->etype == FWSET_E_V4) {
                uint32_t be;
                memcpy(&be, r, 4);
                uint32_t h = ntohl(be);
                memcpy(out + 4 * w++, &h, 4);
            } else if (k->etype == FWSET_E_MAC) {
                memset(out + 8 * w, 0, 8);
                memcpy(out + 8 * w++, r, 6);
            } else {
                memcpy(out + 16 * w++, r, 16);
            }
            continue;
        }
        if (r[kl]) {
            k->odd++; /* an end without its start */
            continue;
        }
        const uint8_t *e = i + 1 < acc->n ? acc->raw + (i + 1) * acc->rec : NULL;
        int has_end = e && e[kl];
        if (k->etype == FWSET_E_V4R) {
            uint32_t lo, hi;
            memcpy(&lo, r, 4);
            lo = ntohl(lo);
            if (has_end) {
                memcpy(&hi, e, 4);
                hi = ntohl(hi) - 1;
            } else {
                hi = 0xffffffffu; /* a range up to the last address has no end element */
            }
            struct ipl_v4 v = { lo, hi };
            memcpy(out + 8 * w++, &v, 8);
        } else {
            struct ipl_u128 hi;
            if (has_end) {
                hi = ipl_u128_from_bytes(e);
                if (hi.lo-- == 0)
                    hi.hi--;
            } else {
                hi = (struct ipl_u128){ ~0ull, ~0ull };
            }
            memcpy(out + 32 * w, r, 16);
            ipl_u128_to_bytes(hi, out + 32 * w + 16);
            w++;
        }
        if (has_end)
            i++;
        else if (e)
            k->odd++; /* a start followed by another start */
    }
    k->elems = out;
    k->count = w;
    k->elems_loaded = 1;
    fw_sort_elems(k->etype, k->elems, k->count);
    return 0;
}

static int read_elems(struct fw_nl *nl, struct fw_kset *k, char *err, size_t errlen)
{
    char buf[512];
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET,
                                                 NLM_F_DUMP, 0);
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, FW_TABLE);
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, k->name);
    struct elem_acc acc = { 0 };
    acc.keylen = k->key_len;
    acc.rec = k->key_len + 1;
    int rc = fw_nl_query(nl, nlh, elem_cb, &acc, err, errlen);
    if (rc == 0 && elems_convert(k, &acc) < 0) {
        snprintf(err, errlen, "out of memory reading set %s", k->name);
        rc = -1;
    }
    free(acc.raw);
    if (rc > 0)
        rc = 0; /* set vanished meanwhile: no elements */
    return rc;
}

int fw_read_state(struct fw_nl *nl, struct fw_kstate *ks, const struct fwset *known,
                  uint32_t known_gen, char *err, size_t errlen)
{
    memset(ks, 0, sizeof *ks);
    if (fw_nl_genid(nl, &ks->genid, err, errlen) < 0)
        return -1;
    char buf[1024];
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, 0, 0);
    mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, FW_TABLE);
    int rc = fw_nl_query(nl, nlh, table_cb, &ks->table_exists, err, errlen);
    if (rc < 0)
        return -1;
    if (!ks->table_exists)
        return 0;

    nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP, 0);
    mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, FW_TABLE);
    if (fw_nl_query(nl, nlh, chain_cb, ks, err, errlen) < 0)
        goto fail;
    nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, 0);
    mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, FW_TABLE);
    if (fw_nl_query(nl, nlh, rule_cb, ks, err, errlen) < 0)
        goto fail;
    nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, 0);
    mnl_attr_put_strz(nlh, NFTA_SET_TABLE, FW_TABLE);
    if (fw_nl_query(nl, nlh, set_cb, ks, err, errlen) < 0)
        goto fail;
    int trust = known && known_gen && ks->genid == known_gen;
    for (size_t i = 0; i < ks->nsets; i++) {
        struct fw_kset *k = &ks->sets[i];
        if (!k->etype)
            continue;
        const struct fwset_set *kn = trust ? fwset_find(known, k->name) : NULL;
        if (kn && kn->etype == k->etype && !kn->timeout && !k->timeout_ms) {
            k->elems = (void *)kn->elems;
            k->count = kn->count;
            k->elems_loaded = k->borrowed = 1;
            ks->trusted = 1;
            continue;
        }
        if (read_elems(nl, k, err, errlen) < 0)
            goto fail;
    }
    return 0;
fail:
    fw_kstate_free(ks);
    return -1;
}
