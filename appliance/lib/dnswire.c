/* DNS wire format codec. See dnswire.h for why it is hand-written. */
#include "dnswire.h"

#include <stdio.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static int plain_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int dnsw_name_read(const uint8_t *p, size_t len, size_t *off, char *out, size_t outlen,
                   size_t *text_len)
{
    size_t pos = *off, end_after = 0, wire = 0, t = 0;
    size_t lowest = pos;       /* pointers must go below every place visited so far */
    int jumped = 0, hops = 0;

    if (outlen < DNSW_NAME_TEXT_MAX)
        return -1;
    for (;;) {
        if (pos >= len)
            return -1;
        uint8_t c = p[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len || ++hops > DNSW_MAX_POINTERS)
                return -1;
            size_t target = (size_t)(c & 0x3f) << 8 | p[pos + 1];
            if (!jumped)
                end_after = pos + 2;
            if (target >= lowest || target < DNSW_HDR_LEN)
                return -1;
            jumped = 1;
            pos = lowest = target;
            continue;
        }
        if (c & 0xc0)
            return -1;         /* 0x40 / 0x80: extended label types, obsolete */
        if (c == 0) {
            wire += 1;
            if (wire > DNSW_NAME_WIRE_MAX)
                return -1;
            if (!jumped)
                end_after = pos + 1;
            break;
        }
        if (pos + 1 + c > len)
            return -1;
        wire += 1u + c;
        if (wire > DNSW_NAME_WIRE_MAX)
            return -1;
        if (t)
            out[t++] = '.';
        for (size_t i = 0; i < c; i++) {
            uint8_t ch = p[pos + 1 + i];
            if (ch >= 'A' && ch <= 'Z')
                ch = (uint8_t)(ch + 32);
            if (plain_char(ch)) {
                out[t++] = (char)ch;
            } else {
                /* 4 bytes per byte at most; 255 wire bytes fit in 1020 + NUL */
                out[t++] = '\\';
                out[t++] = (char)('0' + ch / 100);
                out[t++] = (char)('0' + ch / 10 % 10);
                out[t++] = (char)('0' + ch % 10);
            }
        }
        pos += 1u + c;
    }
    out[t] = '\0';
    if (text_len)
        *text_len = t;
    *off = end_after;
    return 0;
}

int dnsw_name_skip(const uint8_t *p, size_t len, size_t *off)
{
    size_t pos = *off, wire = 0;
    for (;;) {
        if (pos >= len)
            return -1;
        uint8_t c = p[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len)
                return -1;
            *off = pos + 2;
            return 0;
        }
        if (c & 0xc0)
            return -1;
        wire += 1u + c;
        if (wire > DNSW_NAME_WIRE_MAX || pos + 1 + c > len)
            return -1;
        pos += 1u + c;
        if (c == 0) {
            *off = pos;
            return 0;
        }
    }
}

static int parse_header(const uint8_t *p, size_t len, struct dnsw_msg *m)
{
    if (len < DNSW_HDR_LEN)
        return -1;
    m->id = dnsw_get16(p);
    m->flags = dnsw_get16(p + 2);
    m->qdcount = dnsw_get16(p + 4);
    m->ancount = dnsw_get16(p + 6);
    m->nscount = dnsw_get16(p + 8);
    m->arcount = dnsw_get16(p + 10);
    return 0;
}

static int parse_question(const uint8_t *p, size_t len, struct dnsw_msg *m)
{
    size_t off = DNSW_HDR_LEN;
    m->qname_off = off;
    if (dnsw_name_read(p, len, &off, m->qname, sizeof m->qname, &m->qname_len) < 0)
        return -1;
    m->qname_wire_len = off - m->qname_off;
    if (off + 4 > len)
        return -1;
    m->qtype = dnsw_get16(p + off);
    m->qclass = dnsw_get16(p + off + 2);
    m->question_end = off + 4;
    return 0;
}

/* Reads the OPT record at rr into m->edns. Returns 0, or -1 if it is malformed. */
static int parse_opt(const uint8_t *p, const struct dnsw_rr *rr, size_t rr_start,
                     struct dnsw_msg *m)
{
    if (m->edns.present)
        return -1;                 /* RFC 6891: more than one OPT is FORMERR */
    if (p[rr->name_off] != 0 || rr->section != 2)
        return -1;
    m->edns.present = 1;
    m->edns.udp_size = rr->rclass;
    m->edns.ext_rcode = (uint8_t)(rr->ttl >> 24);
    m->edns.version = (uint8_t)(rr->ttl >> 16);
    m->edns.do_bit = (rr->ttl & 0x8000u) != 0;
    m->edns.rr_off = rr_start;
    m->edns.rr_len = rr->rdata_off + rr->rdlen - rr_start;
    size_t o = rr->rdata_off, end = rr->rdata_off + rr->rdlen;
    while (o < end) {
        if (o + 4 > end)
            return -1;
        uint16_t code = dnsw_get16(p + o), olen = dnsw_get16(p + o + 2);
        if (o + 4 + olen > end)
            return -1;
        if (code == DNSW_OPT_PADDING)
            m->edns.has_padding = 1;
        o += 4u + olen;
    }
    return 0;
}

/* Walks every record after the question, recording EDNS. Returns 0 or -1. */
static int walk_records(const uint8_t *p, size_t len, struct dnsw_msg *m, int query)
{
    struct dnsw_iter it;
    struct dnsw_rr rr;
    int r;
    if (dnsw_iter_init(&it, p, len) < 0)
        return -1;
    for (;;) {
        size_t start = it.off;
        r = dnsw_iter_next(&it, &rr);
        if (r <= 0)
            break;
        if (rr.type == DNSW_TYPE_OPT) {
            if (parse_opt(p, &rr, start, m) < 0)
                return -1;
        } else if (query && rr.section == 0) {
            return -1;             /* a query carries no answers */
        }
    }
    if (r < 0)
        return -1;
    /* Trailing garbage after the last record: tolerated by most servers; we refuse it
     * in queries (cheap evidence of a crafted packet) and ignore it in responses. */
    if (query && it.off != len)
        return -1;
    return 0;
}

int dnsw_parse_query(const uint8_t *p, size_t len, struct dnsw_msg *m, char *err,
                     size_t errlen)
{
    memset(&m->edns, 0, sizeof m->edns);
    m->qname[0] = '\0';
    m->qname_len = 0;
    m->question_end = 0;
    if (parse_header(p, len, m) < 0) {
        set_err(err, errlen, "shorter than a DNS header");
        return DNSW_ERR_SHORT;
    }
    if (m->flags & DNSW_F_QR) {
        set_err(err, errlen, "QR bit set in a query");
        return DNSW_ERR_NOTQUERY;
    }
    if (DNSW_OPCODE(m->flags) != 0) {
        set_err(err, errlen, "opcode is not QUERY");
        return DNSW_ERR_NOTIMP;
    }
    if (m->qdcount != 1) {
        set_err(err, errlen, "question count is not 1");
        return DNSW_ERR_FORMERR;
    }
    if (parse_question(p, len, m) < 0) {
        set_err(err, errlen, "malformed question");
        return DNSW_ERR_FORMERR;
    }
    if (walk_records(p, len, m, 1) < 0) {
        set_err(err, errlen, "malformed record section");
        return DNSW_ERR_FORMERR;
    }
    return DNSW_OK;
}

int dnsw_parse_response(const uint8_t *p, size_t len, struct dnsw_msg *m, char *err,
                        size_t errlen)
{
    memset(&m->edns, 0, sizeof m->edns);
    m->qname[0] = '\0';
    m->qname_len = 0;
    if (parse_header(p, len, m) < 0) {
        set_err(err, errlen, "shorter than a DNS header");
        return DNSW_ERR_SHORT;
    }
    if (!(m->flags & DNSW_F_QR)) {
        set_err(err, errlen, "QR bit clear in a response");
        return DNSW_ERR_NOTQUERY;
    }
    if (m->qdcount != 1 || parse_question(p, len, m) < 0) {
        set_err(err, errlen, "malformed question in response");
        return DNSW_ERR_FORMERR;
    }
    /* A truncated response may legitimately end mid-record: only the header and the
     * question matter for it. */
    if (m->flags & DNSW_F_TC)
        return DNSW_OK;
    if (walk_records(p, len, m, 0) < 0) {
        set_err(err, errlen, "malformed record in response");
        return DNSW_ERR_FORMERR;
    }
    return DNSW_OK;
}

int dnsw_iter_init(struct dnsw_iter *it, const uint8_t *p, size_t len)
{
    if (len < DNSW_HDR_LEN)
        return -1;
    it->p = p;
    it->len = len;
    it->off = DNSW_HDR_LEN;
    unsigned qd = dnsw_get16(p + 4);
    it->left[0] = dnsw_get16(p + 6);
    it->left[1] = dnsw_get16(p + 8);
    it->left[2] = dnsw_get16(p + 10);
    it->section = 0;
    for (unsigned i = 0; i < qd; i++) {
        if (dnsw_name_skip(p, len, &it->off) < 0 || it->off + 4 > len)
            return -1;
        it->off += 4;
    }
    return 0;
}

int dnsw_iter_next(struct dnsw_iter *it, struct dnsw_rr *rr)
{
    while (it->section < 3 && it->left[it->section] == 0)
        it->section++;
    if (it->section >= 3)
        return 0;
    rr->section = it->section;
    rr->name_off = it->off;
    if (dnsw_name_skip(it->p, it->len, &it->off) < 0 || it->off + 10 > it->len)
        return -1;
    const uint8_t *q = it->p + it->off;
    rr->type = dnsw_get16(q);
    rr->rclass = dnsw_get16(q + 2);
    rr->ttl = dnsw_get32(q + 4);
    rr->ttl_off = it->off + 4;
    rr->rdlen = dnsw_get16(q + 8);
    rr->rdata_off = it->off + 10;
    if (rr->rdata_off + rr->rdlen > it->len)
        return -1;
    it->off = rr->rdata_off + rr->rdlen;
    it->left[it->section]--;
    return 1;
}

int64_t dnsw_cache_ttl(const uint8_t *p, size_t len)
{
    struct dnsw_iter it;
    struct dnsw_rr rr;
    if (len < DNSW_HDR_LEN)
        return -1;
    uint16_t flags = dnsw_get16(p + 2);
    unsigned rcode = DNSW_RCODE(flags);
    if ((flags & DNSW_F_TC) || (rcode != DNSW_RCODE_NOERROR && rcode != DNSW_RCODE_NXDOMAIN))
        return -1;
    if (dnsw_iter_init(&it, p, len) < 0)
        return -1;
    int64_t min_ttl = -1, soa_ttl = -1;
    int answers = 0, r;
    while ((r = dnsw_iter_next(&it, &rr)) > 0) {
        if (rr.section == 2)
            continue;             /* additional data does not decide freshness */
        if (rr.type == DNSW_TYPE_OPT)
            continue;
        int64_t ttl = rr.ttl & 0x7fffffffu;  /* RFC 2181: top bit set means 0 */
        if (rr.ttl & 0x80000000u)
            ttl = 0;
        if (rr.section == 0)
            answers++;
        if (rr.section == 1 && rr.type == DNSW_TYPE_SOA) {
            /* MINIMUM is the last 4 bytes of SOA rdata */
            if (rr.rdlen < 22)
                return -1;
            int64_t minimum = dnsw_get32(p + rr.rdata_off + rr.rdlen - 4) & 0x7fffffffu;
            int64_t neg = ttl < minimum ? ttl : minimum;
            if (soa_ttl < 0 || neg < soa_ttl)
                soa_ttl = neg;
        }
        if (min_ttl < 0 || ttl < min_ttl)
            min_ttl = ttl;
    }
    if (r < 0)
        return -1;
    if (rcode == DNSW_RCODE_NXDOMAIN || answers == 0)
        return soa_ttl;           /* negative: RFC 2308, no SOA = do not cache */
    return min_ttl;
}

void dnsw_ttl_age(uint8_t *p, size_t len, uint32_t elapsed)
{
    struct dnsw_iter it;
    struct dnsw_rr rr;
    if (elapsed == 0 || dnsw_iter_init(&it, p, len) < 0)
        return;
    while (dnsw_iter_next(&it, &rr) > 0) {
        if (rr.type == DNSW_TYPE_OPT)
            continue;
        uint32_t ttl = rr.ttl & 0x80000000u ? 0 : rr.ttl;
        dnsw_set32(p + rr.ttl_off, ttl > elapsed ? ttl - elapsed : 0);
    }
}

/* ---- writing ------------------------------------------------------------- */

static int room(struct dnsw_buf *b, size_t n)
{
    if (b->overflow || b->len + n > b->cap) {
        b->overflow = 1;
        return 0;
    }
    return 1;
}

void dnsw_put_u8(struct dnsw_buf *b, uint8_t v)
{
    if (room(b, 1))
        b->p[b->len++] = v;
}

void dnsw_put_u16(struct dnsw_buf *b, uint16_t v)
{
    if (room(b, 2)) {
        dnsw_set16(b->p + b->len, v);
        b->len += 2;
    }
}

void dnsw_put_u32(struct dnsw_buf *b, uint32_t v)
{
    if (room(b, 4)) {
        dnsw_set32(b->p + b->len, v);
        b->len += 4;
    }
}

void dnsw_put_bytes(struct dnsw_buf *b, const void *v, size_t n)
{
    if (room(b, n)) {
        memcpy(b->p + b->len, v, n);
        b->len += n;
    }
}

void dnsw_put_name(struct dnsw_buf *b, const char *name, size_t len)
{
    size_t start = 0;
    if (len > DNSW_NAME_WIRE_MAX - 2) {
        b->overflow = 1;
        return;
    }
    while (start < len) {
        size_t end = start;
        while (end < len && name[end] != '.')
            end++;
        size_t l = end - start;
        if (l == 0 || l > 63) {
            b->overflow = 1;
            return;
        }
        dnsw_put_u8(b, (uint8_t)l);
        dnsw_put_bytes(b, name + start, l);
        start = end + 1;
    }
    dnsw_put_u8(b, 0);
}

void dnsw_reply_begin(struct dnsw_buf *b, const uint8_t *qp, const struct dnsw_msg *q,
                      unsigned rcode)
{
    b->len = 0;
    b->overflow = 0;
    /* the opcode is echoed so that a NOTIMP answer names what was not implemented */
    uint16_t flags = (uint16_t)(DNSW_F_QR | DNSW_F_RA | (q->flags & (0x7800u | DNSW_F_RD | DNSW_F_CD)) |
                                (rcode & 0xfu));
    dnsw_put_u16(b, q->id);
    dnsw_put_u16(b, flags);
    dnsw_put_u16(b, q->question_end ? 1 : 0);
    dnsw_put_u16(b, 0);
    dnsw_put_u16(b, 0);
    dnsw_put_u16(b, 0);
    if (q->question_end)
        dnsw_put_bytes(b, qp + DNSW_HDR_LEN, q->question_end - DNSW_HDR_LEN);
}

void dnsw_put_opt(struct dnsw_buf *b, uint16_t udp_size, int do_bit, int ede_code,
                  const char *ede_text)
{
    size_t tlen = ede_text ? strlen(ede_text) : 0;
    if (tlen > 200)
        tlen = 200;
    size_t rdlen = ede_code >= 0 ? 4 + 2 + tlen : 0;
    dnsw_put_u8(b, 0);
    dnsw_put_u16(b, DNSW_TYPE_OPT);
    dnsw_put_u16(b, udp_size);
    dnsw_put_u32(b, do_bit ? 0x8000u : 0);
    dnsw_put_u16(b, (uint16_t)rdlen);
    if (ede_code >= 0) {
        dnsw_put_u16(b, DNSW_OPT_EDE);
        dnsw_put_u16(b, (uint16_t)(2 + tlen));
        dnsw_put_u16(b, (uint16_t)ede_code);
        dnsw_put_bytes(b, ede_text, tlen);
    }
}

void dnsw_reply_finish(struct dnsw_buf *b, uint16_t an, uint16_t ns, uint16_t ar)
{
    if (b->overflow || b->len < DNSW_HDR_LEN)
        return;
    dnsw_set16(b->p + 6, an);
    dnsw_set16(b->p + 8, ns);
    dnsw_set16(b->p + 10, ar);
}

const char *dnsw_type_name(uint16_t type, char *buf, size_t buflen)
{
    const char *n = NULL;
    switch (type) {
    case DNSW_TYPE_A: n = "A"; break;
    case DNSW_TYPE_NS: n = "NS"; break;
    case DNSW_TYPE_CNAME: n = "CNAME"; break;
    case DNSW_TYPE_SOA: n = "SOA"; break;
    case DNSW_TYPE_PTR: n = "PTR"; break;
    case DNSW_TYPE_MX: n = "MX"; break;
    case DNSW_TYPE_TXT: n = "TXT"; break;
    case DNSW_TYPE_AAAA: n = "AAAA"; break;
    case DNSW_TYPE_SRV: n = "SRV"; break;
    case DNSW_TYPE_OPT: n = "OPT"; break;
    case DNSW_TYPE_HTTPS: n = "HTTPS"; break;
    case DNSW_TYPE_ANY: n = "ANY"; break;
    default: break;
    }
    if (n)
        snprintf(buf, buflen, "%s", n);
    else
        snprintf(buf, buflen, "TYPE%u", type);
    return buf;
}
