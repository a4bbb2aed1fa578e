/* On-disk layout of the compiled domain set. Private to domainset*.c; the public
 * contract is domainset.h. Everything is little-endian and 8-byte aligned; the file is
 * mapped read-only and used in place, so every field has a fixed width. */
#ifndef OTASUKE_DOMAINSET_FORMAT_H
#define OTASUKE_DOMAINSET_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the domain set file is little-endian; add byte swapping for this host"
#endif

#define DSET_MAGIC       "OTADSET1"
#define DSET_VERSION     2u   /* 2 added the shared-hash section; version 1 files still read */
#define DSET_LABEL_MAX   47   /* list label bytes, NUL not counted */
#define DSET_MAX_RECORDS 65535u /* a record index lives in the 16 low bits of a slot */
/* Record index of a slot whose 48-bit hash belongs to two or more names of this file:
 * the record of each is in the SHARED section. Never a real index (< DSET_MAX_RECORDS). */
#define DSET_SLOT_SHARED 0xffffu

enum dset_section {
    DSET_SEC_SLOTS = 0,  /* uint64 [nslots]: hash48 << 16 | record index; 0 = empty */
    DSET_SEC_RECORDS,    /* struct dset_file_record [nrecords] */
    DSET_SEC_LISTS,      /* struct dset_file_list [nlists] */
    DSET_SEC_NAMES,      /* names, each NUL-terminated, in insertion order */
    DSET_SEC_NAMEIDX,    /* uint32 [nslots]: offset in NAMES of the slot's name */
    DSET_SEC_NAMEREC,    /* uint32 [names]: record of each name, in NAMES order */
    DSET_SEC_SHARED,     /* struct dset_file_shared [], sorted by hash then name offset:
                            the names of DSET_SLOT_SHARED slots (version 2; usually empty) */
    DSET_SEC_COUNT
};

struct dset_file_section {
    uint64_t offset;
    uint64_t size;
};

struct dset_file_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;
    uint64_t build_time;   /* unix seconds */
    uint64_t names;
    uint64_t slots;
    uint32_t records;
    uint32_t lists;
    uint8_t key[16];       /* SipHash key of this build */
    uint64_t checksum;     /* CRC-32C of the header with this field 0, then of
                              bytes [header_size, file_size) */
    struct dset_file_section sec[DSET_SEC_COUNT];
    /* label counts of the shortest and longest name: a lookup hashes only suffixes
     * in this range (most sets have no one-label names, so "com" is never hashed) */
    uint32_t min_labels;
    uint32_t max_labels;
    uint8_t reserved[256 - 88 - 16 * DSET_SEC_COUNT];
};

/* Which lists an entry of this kind belongs to. Allow vs block and the category come
 * from the list table, so a record is just two list masks (16 bytes). */
struct dset_file_record {
    uint64_t lists_exact;    /* lists that hold the name as an exact entry */
    uint64_t lists_subtree;  /* lists that hold the name as a subtree entry */
};

struct dset_file_list {
    int32_t category;        /* enum dset_category, -1 for allow lists */
    uint32_t is_allow;
    char label[DSET_LABEL_MAX + 1];
    uint8_t reserved[8];
};

/* One name of a slot shared by several names (an in-set 48-bit hash collision). */
struct dset_file_shared {
    uint64_t hash;           /* the 48-bit hash (as in the slot's high bits) */
    uint32_t name;           /* offset in NAMES */
    uint32_t record;         /* this name's own record */
};

_Static_assert(sizeof(struct dset_file_header) == 256, "header must stay 256 bytes");
_Static_assert(sizeof(struct dset_file_record) == 16, "record layout");
_Static_assert(sizeof(struct dset_file_list) == 64, "list layout");
_Static_assert(sizeof(struct dset_file_shared) == 16, "shared-hash entry layout");

/* Keyed 48-bit hash of a name; never 0 so 0 can mark empty slots. */
uint64_t dset_hash48(const uint8_t key[16], const char *name, size_t len);

/* Slot index for a hash: multiply-shift range reduction (Lemire), so the table can
 * be any size and the load factor stays near 0.7 instead of jumping between powers of
 * two (2^21 slots for 1M names would cost 16.8 bytes/name; 0.7 load costs 11.4). */
static inline uint64_t dset_slot_of(uint64_t h48, uint64_t nslots)
{
    return (uint64_t)(((unsigned __int128)(h48 << 16) * nslots) >> 64);
}

/* CRC-32C, hardware (SSE4.2) when the CPU has it. crc starts at 0. */
uint32_t dset_crc32c(uint32_t crc, const void *buf, size_t len);
/* The table-driven register update alone (no ~ conditioning); for tests. */
uint32_t dset_crc32c_portable(uint32_t crc, const uint8_t *p, size_t len);

#endif
