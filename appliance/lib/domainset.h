/* The compiled domain set: what otasuke-dnsd looks names up in.
 *
 * File layout (all little-endian, position independent, mmap-able read-only):
 *   header     magic "OTADSET1", format version, build time, entry/slot counts,
 *              the 16-byte hash key, section offsets and sizes, CRC-32C checksum
 *              of the whole file (header included, with the checksum field as 0).
 *   slots      open-addressing table (linear probing, load <= 0.7; the size is any
 *              multiple of 8 and a hash picks its home slot by multiply-shift, because a
 *              power-of-two size would force 2^21 slots = 16.8 bytes/name at 1M names)
 *              of uint64: high 48 bits = keyed hash of the name (never 0 for a used slot),
 *              low 16 bits = index into the record table. 8 bytes per slot, so about
 *              11-12 bytes resident per domain: the lookup part touches nothing else.
 *              (Exact layout: domainset_format.h.)
 *   records    deduplicated (block category mask, allow flag, subtree/exact flags, list
 *              mask) combinations; a million names share a few hundred of them.
 *   lists      the source lists (id, category, label) — for EDE texts and explain.
 *   names      the names themselves, NUL-separated, only read by listing/explain; never
 *              touched by lookups, so never resident in dnsd unless someone asks.
 *
 *   shared     (version 2) the names of slots whose 48-bit hash belongs to two or more
 *              names of the set (about one build in 500 at 1M names): such a slot is
 *              marked (record index 0xffff) and the name picks its own record here, so
 *              two colliding names never get each other's lists. Usually empty.
 *
 * Hashes are keyed (SipHash via libsodium crypto_shorthash) with a random key per build,
 * so a client cannot aim at collisions. A 48-bit hash means a false match on about one
 * lookup in 2^48/N of a name that is NOT in the set; explain re-checks against the names
 * section. Names that are in the set always get their own entry (shared section above).
 *
 * Matching: for a query a.b.example.com the set looks up a.b.example.com, b.example.com,
 * example.com, com. An entry with DSET_EXACT matches only its own name; DSET_SUBTREE
 * matches the name and everything below it. Every matching entry contributes; an allow
 * entry anywhere in the chain beats every block entry (allow wins), and the most specific
 * match is reported as "matched" — of the kind that decided: with an allow verdict the
 * most specific allow entry, with a block verdict the most specific block entry. */
#ifndef OTASUKE_DOMAINSET_H
#define OTASUKE_DOMAINSET_H

#include <stddef.h>
#include <stdint.h>

/* Categories are bits in a uint32 mask. Names are what config, the policy and the UI use. */
enum dset_category {
    DSET_CAT_ADS = 0,
    DSET_CAT_TRACKING,
    DSET_CAT_MALWARE,
    DSET_CAT_PHISHING,
    DSET_CAT_C2,
    DSET_CAT_ADULT,
    DSET_CAT_GAMBLING,
    DSET_CAT_SOCIAL,
    DSET_CAT_DOH_BYPASS,
    DSET_CAT_CUSTOM,
    DSET_CAT_FAKE,
    DSET_CAT_DYNDNS,
    DSET_CAT_COUNT
};
/* Returns the canonical lower-case name ("ads", "doh-bypass", ...) or NULL. */
const char *dset_category_name(int category);
/* Returns the category number for a name, or -1 when unknown. */
int dset_category_parse(const char *name);

#define DSET_EXACT   0x1u  /* the name itself only */
#define DSET_SUBTREE 0x2u  /* the name and every name below it */
#define DSET_ALLOW   0x4u  /* an allow entry: beats block entries that also match */

#define DSET_MAX_LISTS 64  /* lists in one set (list mask is 64 bits) */
#define DSET_NAME_MAX  253

struct dset_builder;
struct dset;

/* Builder: collects names from many lists, then writes the file.
 * dset_builder_new returns NULL on allocation failure; free with dset_builder_free. */
struct dset_builder *dset_builder_new(void);
void dset_builder_free(struct dset_builder *b);

/* Registers a source list. category is a dset_category (ignored for allow lists);
 * label is a short human name such as "hagezi-light" (copied). Returns the list id
 * (0..DSET_MAX_LISTS-1) or -1 with err filled. */
int dset_builder_add_list(struct dset_builder *b, const char *label, int category,
                          int is_allow, char *err, size_t errlen);

/* Adds one already normalised name (lower case, no trailing dot, valid labels) with
 * DSET_EXACT or DSET_SUBTREE. Adding the same name again merges categories, flags and
 * lists. Returns 0, or -1 with err filled (bad list id, out of memory). */
int dset_builder_add(struct dset_builder *b, int list_id, const char *name, size_t len,
                     unsigned flags, char *err, size_t errlen);

/* Adds name with an empty record: in an overlay, "this name is no longer listed".
 * A later dset_builder_add of the same name gives it its lists. Returns 0 or -1. */
int dset_builder_add_tombstone(struct dset_builder *b, const char *name, size_t len,
                               char *err, size_t errlen);

struct dset_build_stats {
    uint64_t names;        /* distinct names */
    uint64_t slots;        /* hash table slots */
    uint64_t records;      /* distinct record combinations */
    uint64_t file_bytes;
    uint64_t lookup_bytes; /* bytes the lookup path touches: slots + records */
    uint64_t shared_hash;  /* names whose 48-bit hash another name also has: kept apart
                              in the shared-hash section (usually 0) */
};

/* Writes the set to path atomically: path.tmp, fsync, rename, fsync of the directory.
 * A crash leaves the old file or the new one, never half. Returns 0 or -1 with err.
 * Writing hands the builder's dedupe memory to the writer: adding after a write is
 * refused (writing again is fine). */
int dset_builder_write(struct dset_builder *b, const char *path,
                       struct dset_build_stats *stats, char *err, size_t errlen);

/* Opens and verifies (magic, version, sizes, checksum) a set file and maps it read-only.
 * Returns NULL with err filled ("domains.set: checksum mismatch (file damaged?)").
 *
 * Overlay: if PATH.overlay exists, it is opened too and consulted first by every
 * lookup: a small set of the same format, built with the base's hash key and list
 * table, holding the current record of each name changed since the base was built
 * (an empty record = removed). It lets the agent apply a feed delta by writing a few
 * hundred kB instead of rebuilding a million names (docs/feeds.md). An overlay with
 * another key belongs to an older base and is ignored; a damaged one, or one whose
 * lists differ from the base's, fails the open. */
struct dset *dset_open(const char *path, char *err, size_t errlen);
/* Entries in the attached overlay file, tombstones included (0 = none). */
uint64_t dset_overlay_names(const struct dset *set);
/* What the overlay changes in the name count: names it lists that the base lacks
 * (added) and base names it removes (removed, tombstones). Computed once at open;
 * dset_name_count = base names + added - removed. Both 0 without an overlay. */
void dset_overlay_counts(const struct dset *set, uint64_t *added, uint64_t *removed);
/* Like dset_open's overlay step on bytes in memory (fuzzers, tests): checks ov (len
 * bytes, 8-byte aligned, kept alive and unchanged until dset_close of set) like
 * PATH.overlay and attaches it. Returns 1 attached, 0 ignored (another base's key),
 * -1 with err filled (damaged, lists differ, set has an overlay already). */
int dset_attach_overlay_buffer(struct dset *set, const void *ov, size_t len, const char *what,
                               char *err, size_t errlen);
/* The set's 16-byte hash key: an overlay must be built with it (dset_builder_set_key). */
void dset_get_key(const struct dset *set, uint8_t key[16]);
void dset_close(struct dset *set);

enum dset_verdict { DSET_NONE = 0, DSET_BLOCK = 1, DSET_ALLOW_VERDICT = 2 };

struct dset_match {
    enum dset_verdict verdict;
    uint32_t categories;    /* union of block categories of every matching block entry */
    uint64_t lists;         /* union of lists of every matching entry (block and allow) */
    size_t matched_offset;  /* offset in the query name of the most specific match
                               (name + matched_offset is the matched suffix) */
    unsigned matched_flags; /* DSET_* flags of that match */
};

/* Looks up a normalised name (lower case, no trailing dot; upper case and one trailing
 * dot are tolerated at the cost of a copy). Fills m; returns the verdict.
 * verdict is DSET_ALLOW_VERDICT if any allow entry matched, DSET_BLOCK if only block
 * entries matched, DSET_NONE otherwise. The caller decides whether the block categories
 * are enabled for this client. Safe to call from many threads; never allocates. */
enum dset_verdict dset_lookup(const struct dset *set, const char *name, size_t len,
                              struct dset_match *m);

/* Like dset_lookup but only counts block entries whose category is in enabled_mask and
 * lists whose bit is in lists_mask (all ones = every list): the per-group view. */
enum dset_verdict dset_lookup_masked(const struct dset *set, const char *name, size_t len,
                                     uint32_t enabled_mask, uint64_t lists_mask,
                                     struct dset_match *m);

/* Metadata for EDE texts, explain and listing. */
unsigned dset_list_count(const struct dset *set);
const char *dset_list_label(const struct dset *set, unsigned list_id);
int dset_list_category(const struct dset *set, unsigned list_id);
int dset_list_is_allow(const struct dset *set, unsigned list_id);
/* Names as lookups see them: the base's, plus those the overlay adds, minus those it
 * removes (what the owner is shown). */
uint64_t dset_name_count(const struct dset *set);
/* Names in the base file alone. */
uint64_t dset_base_name_count(const struct dset *set);
uint64_t dset_build_time(const struct dset *set);
/* Bytes of the mapping the lookup path touches (slots + records). */
size_t dset_lookup_bytes(const struct dset *set);

/* Normalises a name in place-to-out: lower case, strips one trailing dot, checks label
 * lengths (1..63), total length (<= 253) and characters (a-z 0-9 - _ ; punycode passes).
 * Returns the new length, or -1 with err naming the problem ("label longer than 63"). */
int dset_normalize(const char *in, size_t len, char *out, size_t outlen,
                   char *err, size_t errlen);

/* ---- additions (dset helper) ------------------------------------------------ */

/* Replaces the builder's random hash key (tests, reproducible builds). Call before
 * the first dset_builder_add. */
void dset_builder_set_key(struct dset_builder *b, const uint8_t key[16]);
/* The builder's hash key (to build an overlay for the set it writes). */
void dset_builder_get_key(const struct dset_builder *b, uint8_t key[16]);
/* Distinct names added so far. */
size_t dset_builder_names(const struct dset_builder *b);

/* Like dset_open on bytes already in memory (fuzzers, the agent's in-memory checks).
 * The set points into buf, which the caller keeps alive and unchanged until
 * dset_close. buf must be 8-byte aligned. Returns NULL with err filled. */
struct dset *dset_open_buffer(const void *buf, size_t len, const char *what,
                              char *err, size_t errlen);

/* Exact check against the names section (for explain: confirms a hash match).
 * Returns 1 and fills flags (DSET_EXACT/DSET_SUBTREE/DSET_ALLOW) and lists (may be
 * NULL) if the name itself is an entry, 0 if not. Cold path: touches the names. */
int dset_find_name(const struct dset *set, const char *name, size_t len,
                   unsigned *flags, uint64_t *lists);

/* Iterates every name as lookups see it: the base's names in insertion order (with
 * the overlay's record for a name it changed, skipping names it removed), then the
 * names only the overlay has. Start with it zeroed; each call returns 1 and fills name
 * (points into the mapping, NUL-terminated), flags and lists, or 0 at the end. With an
 * overlay each base name costs one hash more (~40 ms per 1M names). */
struct dset_iter {
    uint64_t pos;
    uint64_t idx;
    int in_overlay;   /* 1 once the base's names are done */
};
int dset_iter_next(const struct dset *set, struct dset_iter *it, const char **name,
                   unsigned *flags, uint64_t *lists);

/* Which category bits the block lists in a list mask stand for. */
uint32_t dset_lists_categories(const struct dset *set, uint64_t lists);
/* Mask of the allow lists in the set. */
uint64_t dset_allow_lists(const struct dset *set);
/* Hash table slots (for stats). */
uint64_t dset_slot_count(const struct dset *set);

#endif
