/* IP address lists: netset / ipset / plain CIDR files, IPv4 and IPv6.
 *
 * Accepted per line (after '#' or ';' comments and surrounding blanks are dropped):
 *   192.0.2.1            single address          2001:db8::1
 *   192.0.2.0/24         network (host bits 0)    2001:db8::/32
 *   192.0.2.1-192.0.2.9  inclusive range (same family on both sides)
 *   add NAME 192.0.2.1   "ipset save" lines (the first two words are skipped)
 * Anything else is a bad line: counted, and the first IPL_MAX_BAD are kept with their
 * line number and reason so a person can fix the file.
 *
 * Storage is compact because lists reach millions of entries: IPv4 ranges are two
 * uint32 (8 bytes), IPv6 ranges two 128-bit numbers (32 bytes), all host order.
 * iplist_normalize() sorts and merges overlapping and adjacent ranges; after it the
 * ranges are disjoint, strictly increasing and never touching, which is what the
 * firewall's interval sets and the diff need. */
#ifndef OTASUKE_IPLIST_H
#define OTASUKE_IPLIST_H

#include <stddef.h>
#include <stdint.h>

#define IPL_MAX_BAD 16
#define IPL_MAX_LINE 512

struct ipl_v4 { uint32_t lo, hi; };
struct ipl_u128 { uint64_t hi, lo; };
struct ipl_v6 { struct ipl_u128 lo, hi; };

struct ipl_bad {
    unsigned long line;
    char reason[96];
};

struct iplist {
    struct ipl_v4 *v4;
    size_t n4, cap4;
    struct ipl_v6 *v6;
    size_t n6, cap6;
    unsigned long lines;      /* lines read */
    unsigned long entries;    /* good entries before merging */
    unsigned long bad;        /* bad lines, all of them */
    struct ipl_bad bads[IPL_MAX_BAD]; /* the first min(bad, IPL_MAX_BAD) */
};

/* Zero-initialised struct iplist is valid and empty; iplist_free releases its arrays. */
void iplist_init(struct iplist *l);
void iplist_free(struct iplist *l);

/* Parses len bytes of list text and appends the entries. Bad lines are recorded, not
 * fatal. Returns 0, or -1 with err filled only when memory runs out. A last line
 * without newline is read too. NUL bytes make a line bad. */
int iplist_parse(struct iplist *l, const char *buf, size_t len, char *err, size_t errlen);

/* Reads the file at path and parses it (see iplist_parse). Returns 0, or -1 with err
 * saying what failed (cannot open, read error, out of memory). */
int iplist_load_file(struct iplist *l, const char *path, char *err, size_t errlen);

/* Parses one entry (no comments, no blanks) into a range. Returns 4 or 6 for the family,
 * or 0 with why filled (for bad-line reasons and CLI arguments). */
int iplist_parse_entry(const char *s, struct ipl_v4 *r4, struct ipl_v6 *r6,
                       char *why, size_t whylen);

/* Parses one entry (as iplist_parse_entry) and appends its range. Returns 4 or 6, 0 with
 * why filled when s is not an address or network, or -1 on ENOMEM. */
int iplist_add_entry(struct iplist *l, const char *s, char *why, size_t whylen);

/* Appends one range (no merging until iplist_normalize). Returns 0 or -1 on ENOMEM. */
int iplist_add_v4(struct iplist *l, uint32_t lo, uint32_t hi);
int iplist_add_v6(struct iplist *l, struct ipl_u128 lo, struct ipl_u128 hi);

/* Sorts and merges overlapping and adjacent ranges in place. O(n log n), no allocation. */
void iplist_normalize(struct iplist *l);

/* Counts of single-address and real ranges after normalize. */
void iplist_counts(const struct iplist *l, size_t *v4_single, size_t *v4_range,
                   size_t *v6_single, size_t *v6_range);

/* 128-bit helpers (host-order numbers, hi word first). */
int ipl_u128_cmp(struct ipl_u128 a, struct ipl_u128 b);
struct ipl_u128 ipl_u128_inc(struct ipl_u128 a);
void ipl_u128_to_bytes(struct ipl_u128 a, uint8_t out[16]);
struct ipl_u128 ipl_u128_from_bytes(const uint8_t in[16]);

/* Formats "a.b.c.d" or "a.b.c.d-e.f.g.h" / IPv6 likewise into out (>= 96 bytes). */
void ipl_v4_format(const struct ipl_v4 *r, char *out, size_t outlen);
void ipl_v6_format(const struct ipl_v6 *r, char *out, size_t outlen);

#endif
