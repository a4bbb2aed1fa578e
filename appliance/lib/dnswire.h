/* DNS wire format: parse queries and responses, walk resource records, write replies.
 *
 * Written by hand rather than with a resolver library because it sits on otasuke-dnsd's
 * hot path: every query is parsed once and every upstream answer walked once (CNAME
 * inspection, TTLs), with no allocation and strict bounds checks on every byte. It lives
 * in the library, not in services/dnsfilter, because the agent and the tools also need
 * to read names out of DNS messages (events, pcaps in incident reports, bench checks),
 * and one audited, fuzzed parser is better than two.
 *
 * Every function takes the whole message (p, len) and offsets into it; nothing is kept
 * between calls and nothing allocates. Names come out as lower-case dotted text without
 * the trailing dot ("" for the root); bytes that are not letters, digits, '-' or '_'
 * (including a '.' inside a label) are written as \DDD so that such a name can never
 * look like a different, valid one to the filter. */
#ifndef OTASUKE_DNSWIRE_H
#define OTASUKE_DNSWIRE_H

#include <stddef.h>
#include <stdint.h>

#define DNSW_HDR_LEN      12
#define DNSW_NAME_WIRE_MAX 255
#define DNSW_NAME_TEXT_MAX 1024  /* 255 wire bytes, each at most "\DDD" */
#define DNSW_MAX_POINTERS  64    /* compression pointers followed per name */

enum dnsw_type {
    DNSW_TYPE_A = 1, DNSW_TYPE_NS = 2, DNSW_TYPE_CNAME = 5, DNSW_TYPE_SOA = 6,
    DNSW_TYPE_PTR = 12, DNSW_TYPE_MX = 15, DNSW_TYPE_TXT = 16, DNSW_TYPE_AAAA = 28,
    DNSW_TYPE_SRV = 33, DNSW_TYPE_OPT = 41, DNSW_TYPE_HTTPS = 65, DNSW_TYPE_ANY = 255,
};
enum dnsw_rcode {
    DNSW_RCODE_NOERROR = 0, DNSW_RCODE_FORMERR = 1, DNSW_RCODE_SERVFAIL = 2,
    DNSW_RCODE_NXDOMAIN = 3, DNSW_RCODE_NOTIMP = 4, DNSW_RCODE_REFUSED = 5,
};
#define DNSW_CLASS_IN 1
#define DNSW_OPT_PADDING 12
#define DNSW_OPT_EDE     15
#define DNSW_EDE_BLOCKED  15
#define DNSW_EDE_FILTERED 17

/* Header flag bits (in the 16-bit flags word). */
#define DNSW_F_QR 0x8000u
#define DNSW_F_AA 0x0400u
#define DNSW_F_TC 0x0200u
#define DNSW_F_RD 0x0100u
#define DNSW_F_RA 0x0080u
#define DNSW_F_AD 0x0020u
#define DNSW_F_CD 0x0010u
#define DNSW_OPCODE(f) (((f) >> 11) & 0xfu)
#define DNSW_RCODE(f)  ((f) & 0xfu)

struct dnsw_edns {
    int present;
    uint16_t udp_size;     /* the sender's advertised payload size */
    uint8_t ext_rcode;
    uint8_t version;
    int do_bit;
    int has_padding;       /* a Padding option (RFC 7830) was present */
    size_t rr_off;         /* where the OPT record starts */
    size_t rr_len;         /* its full length */
};

/* What a parsed message (query or response) says about itself. */
struct dnsw_msg {
    uint16_t id, flags;
    uint16_t qdcount, ancount, nscount, arcount;
    char qname[DNSW_NAME_TEXT_MAX];
    size_t qname_len;      /* strlen(qname) */
    size_t qname_off;      /* raw question name starts here (always 12) */
    size_t qname_wire_len; /* its length on the wire */
    uint16_t qtype, qclass;
    size_t question_end;   /* first byte after the question */
    struct dnsw_edns edns;
};

enum dnsw_status {
    DNSW_OK = 0,
    DNSW_ERR_SHORT = -1,    /* not even a header: drop */
    DNSW_ERR_FORMERR = -2,  /* header readable, rest malformed: answer FORMERR */
    DNSW_ERR_NOTIMP = -3,   /* opcode other than QUERY: answer NOTIMP */
    DNSW_ERR_NOTQUERY = -4, /* QR set where a query was expected: drop */
};

/* Reads the (possibly compressed) name at *off. Writes text into out (outlen >=
 * DNSW_NAME_TEXT_MAX is always enough), its length into *text_len, and moves *off past
 * the name as it sits at that place. Pointers must point strictly backwards and at most
 * DNSW_MAX_POINTERS are followed, so loops end. Returns 0 or -1 (malformed). */
int dnsw_name_read(const uint8_t *p, size_t len, size_t *off, char *out, size_t outlen,
                   size_t *text_len);

/* Moves *off past the name at *off without decoding it. Returns 0 or -1. */
int dnsw_name_skip(const uint8_t *p, size_t len, size_t *off);

/* Parses a query: header, exactly one question, and the additional section for EDNS0
 * (one OPT, root owner). Returns DNSW_OK or a dnsw_status; err says why in words. */
int dnsw_parse_query(const uint8_t *p, size_t len, struct dnsw_msg *m, char *err,
                     size_t errlen);

/* Parses a response: header, question (exactly one), then walks every record of every
 * section to check it is well formed. Returns DNSW_OK or DNSW_ERR_*. */
int dnsw_parse_response(const uint8_t *p, size_t len, struct dnsw_msg *m, char *err,
                        size_t errlen);

struct dnsw_rr {
    int section;           /* 0 answer, 1 authority, 2 additional */
    size_t name_off;       /* owner name (may be compressed) */
    uint16_t type, rclass;
    uint32_t ttl;
    size_t ttl_off;
    size_t rdata_off;
    uint16_t rdlen;
};

struct dnsw_iter {
    const uint8_t *p;
    size_t len, off;
    unsigned left[3];
    int section;
};

/* Starts walking the records after the question(s). Returns 0 or -1 (malformed header
 * or question). */
int dnsw_iter_init(struct dnsw_iter *it, const uint8_t *p, size_t len);
/* Fills rr with the next record. Returns 1, 0 at the end, -1 when malformed. */
int dnsw_iter_next(struct dnsw_iter *it, struct dnsw_rr *rr);

/* The TTL a cache may keep this response for: the smallest TTL of answer and authority
 * records (OPT excluded); for NXDOMAIN / NODATA the SOA's min(TTL, MINIMUM). Returns -1
 * when the response must not be cached (SERVFAIL, TC, no SOA on a negative answer,
 * malformed). */
int64_t dnsw_cache_ttl(const uint8_t *p, size_t len);

/* Subtracts elapsed seconds from every TTL (answer, authority, additional; not OPT),
 * flooring at 0. The message must have been validated. */
void dnsw_ttl_age(uint8_t *p, size_t len, uint32_t elapsed);

/* ---- writing ------------------------------------------------------------- */

struct dnsw_buf {
    uint8_t *p;
    size_t cap, len;
    int overflow;          /* set when a put did not fit; the buffer is then unusable */
};

void dnsw_put_u8(struct dnsw_buf *b, uint8_t v);
void dnsw_put_u16(struct dnsw_buf *b, uint16_t v);
void dnsw_put_u32(struct dnsw_buf *b, uint32_t v);
void dnsw_put_bytes(struct dnsw_buf *b, const void *v, size_t n);
/* Writes a dotted text name (no escapes) as uncompressed labels. */
void dnsw_put_name(struct dnsw_buf *b, const char *name, size_t len);

/* Starts a reply to query q (raw bytes qp): copies id, opcode, RD and CD, sets QR and RA,
 * the rcode, and copies the question verbatim (the client's letter case). Counts start
 * at qd=1 and are set by dnsw_reply_finish. */
void dnsw_reply_begin(struct dnsw_buf *b, const uint8_t *qp, const struct dnsw_msg *q,
                      unsigned rcode);
/* Appends an OPT record: payload size, DO bit, and an EDE option when ede_code >= 0
 * (text may be NULL). */
void dnsw_put_opt(struct dnsw_buf *b, uint16_t udp_size, int do_bit, int ede_code,
                  const char *ede_text);
/* Writes the section counts into the header. */
void dnsw_reply_finish(struct dnsw_buf *b, uint16_t an, uint16_t ns, uint16_t ar);

/* Reads 16/32-bit big-endian values (caller checked bounds). */
static inline uint16_t dnsw_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t dnsw_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void dnsw_set16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void dnsw_set32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* "A", "AAAA", ... or "TYPE123" written into buf. Returns buf. */
const char *dnsw_type_name(uint16_t type, char *buf, size_t buflen);

#endif
