/* fw.set: the compiled firewall artifact that otasuke-fwd applies.
 *
 * Written by `otasukectl fw build` today and by the agent later; read by otasuke-fwd.
 * Binary, mmap-able, so a 1M-element artifact loads in milliseconds without parsing:
 *   header (96 bytes)  magic "OTAFWSET", version, byte-order mark, body length,
 *                      set count, BLAKE2b-256 of the body (libsodium)
 *   body               options (zones = interface names, flags, nflog group, log rate)
 *                      set descriptors (name, kind, element type, timeout, offset, count)
 *                      element arrays, each 8-byte aligned, sorted and disjoint
 * Numbers are host byte order (the artifact never leaves the box that built it; the
 * byte-order mark rejects a foreign one). IPv6 addresses and MACs are stored as
 * network-order bytes, IPv4 as host-order uint32 so range maths stays cheap.
 *
 * Writing is atomic: PATH.tmp.<pid>, fsync, rename, fsync of the directory. A crash at
 * any point leaves the old file or the new one. */
#ifndef OTASUKE_FWSET_H
#define OTASUKE_FWSET_H

#include <stddef.h>
#include <stdint.h>

#include "iplist.h"

#define FWSET_VERSION 1
#define FWSET_MAX_SETS 256
#define FWSET_NAME_MAX 32       /* including NUL */
#define FWSET_MAX_IFACES 8
#define FWSET_IFNAMSIZ 16

enum fwset_zone { FWSET_ZONE_LAN = 0, FWSET_ZONE_GUEST, FWSET_ZONE_IOT, FWSET_ZONE_WAN,
                  FWSET_ZONES };

enum fwset_kind {
    FWSET_KIND_BLOCK = 1,   /* drop to/from, logged */
    FWSET_KIND_DOH,         /* reject tcp/udp 443 to these */
    FWSET_KIND_QUARANTINE,  /* these devices reach only the box (DNS, block page, DHCP) */
    FWSET_KIND_ALLOW,       /* IoT allowlist when FWSET_F_IOT_ALLOWLIST is set */
};

enum fwset_etype {
    FWSET_E_V4 = 1,   /* uint32 host order, strictly increasing */
    FWSET_E_V4R,      /* struct ipl_v4, lo < hi, disjoint and not touching */
    FWSET_E_V6,       /* 16 bytes network order, strictly increasing */
    FWSET_E_V6R,      /* 32 bytes: lo, hi network order, lo < hi, disjoint, not touching */
    FWSET_E_MAC,      /* 8 bytes: 6-byte MAC + 2 zero bytes, strictly increasing */
};

#define FWSET_F_IOT_ALLOWLIST 0x1   /* IoT may reach only ALLOW sets on the internet */

struct fwset_opts {
    char ifname[FWSET_ZONES][FWSET_MAX_IFACES][FWSET_IFNAMSIZ]; /* "" = unused slot */
    uint32_t flags;
    uint32_t nflog_group;   /* 0 = no logging */
    uint32_t log_rate;      /* logged drops per second, all sources together */
    uint32_t reserved[5];
};

struct fwset_set {
    char name[FWSET_NAME_MAX];  /* nft set name, [a-z0-9_] */
    uint8_t kind, etype;
    uint32_t timeout;           /* seconds, 0 = elements never expire */
    const void *elems;
    size_t count;
};

struct fwset {
    struct fwset_opts opts;
    size_t n_sets;
    struct fwset_set sets[FWSET_MAX_SETS];
    void *map;          /* reader: the mapping the element pointers point into */
    size_t maplen;
    void *owned[FWSET_MAX_SETS]; /* builder: arrays fwset_free releases */
};

/* Bytes per element of an element type, 0 for an unknown type. */
size_t fwset_elem_size(int etype);
const char *fwset_zone_name(int zone);
const char *fwset_kind_name(int kind);

/* Initialises an empty artifact with defaults (nflog group 0, log rate 10/s). */
void fwset_init(struct fwset *s);
/* Releases the mapping and every builder-owned array. */
void fwset_free(struct fwset *s);

/* Adds a normalized iplist as up to four sets: NAME_v4 (singles, hash), NAME_v4r
 * (ranges, interval), NAME_v6, NAME_v6r. Empty parts are still added so the rules
 * stay the same shape when a feed shrinks. Copies the data. Returns 0 or -1 + err. */
int fwset_add_iplist(struct fwset *s, const char *name, int kind, const struct iplist *l,
                     uint32_t timeout, char *err, size_t errlen);
/* Adds a set of MAC addresses (6 bytes each, any order, duplicates dropped). */
int fwset_add_macs(struct fwset *s, const char *name, int kind, const uint8_t (*macs)[6],
                   size_t n, char *err, size_t errlen);
/* Adds a set whose elements the caller keeps alive until the write (no copy). */
int fwset_add_raw(struct fwset *s, const char *name, int kind, int etype, uint32_t timeout,
                  const void *elems, size_t count, char *err, size_t errlen);

/* Checks one set (name, type, order, disjointness) and the options (interface names).
 * Returns 0 or -1 with err naming the set and element index. */
int fwset_validate(const struct fwset *s, char *err, size_t errlen);

/* Validates and writes atomically (see above). Returns 0 or -1 + err. */
int fwset_write(const struct fwset *s, const char *path, char *err, size_t errlen);

/* Maps and validates PATH (magic, version, byte order, lengths, checksum, every set).
 * On success *s points into the mapping until fwset_free. Returns 0 or -1 + err. */
int fwset_open(struct fwset *s, const char *path, char *err, size_t errlen);

/* The same checks on a buffer (name is for messages). *s points into buf, which the
 * caller keeps alive; fwset_free on it releases nothing. Returns 0 or -1 + err. */
int fwset_parse(struct fwset *s, const void *buf, size_t len, const char *name,
                char *err, size_t errlen);

/* Finds a set by name; NULL if absent. */
const struct fwset_set *fwset_find(const struct fwset *s, const char *name);

/* Total elements in all sets. */
size_t fwset_total_elems(const struct fwset *s);

#endif
