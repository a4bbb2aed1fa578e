/* policy.set: the per-client filtering policy otasuke-dnsd applies.
 *
 * The agent writes it (policy_write_json: validate, then atomic rename), dnsd reads it
 * (policy_load) and swaps it on reload. Format, JSON:
 *   {"version":1,
 *    "groups":[{"name":"staff","categories":["ads","malware"],
 *               "answer":"nxdomain"|"null"|"blockpage",
 *               "safesearch":true, "youtube":"strict"|"moderate",
 *               "allow":["x.test"], "block":["y.test"]}],
 *    "clients":[{"match":"192.0.2.0/24","group":"staff"}],
 *    "default_group":"staff",
 *    "blockpage":{"ipv4":"192.0.2.1","ipv6":"fd00:0:0:1::1"}}
 * Custom allow/block names match the name and every name below it; allow beats block.
 * Validation is strict: unknown keys, wrong types, unknown categories, bad names or
 * addresses are errors naming the field path ("policy.set: groups[1].answer: ..."). */
#ifndef OTASUKE_POLICYSET_H
#define OTASUKE_POLICYSET_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_GROUPS  64
#define POLICY_MAX_CLIENTS 4096
#define POLICY_MAX_CUSTOM  65536   /* allow + block names over all groups */
#define POLICY_NAME_MAX    63

enum policy_answer { POLICY_ANSWER_NXDOMAIN = 0, POLICY_ANSWER_NULL, POLICY_ANSWER_BLOCKPAGE };

struct policy_group {
    char name[POLICY_NAME_MAX + 1];
    uint32_t categories;         /* enabled dset categories (bit = 1 << DSET_CAT_*) */
    enum policy_answer answer;
    int safesearch;
    int youtube_strict;          /* restrict.youtube.com instead of restrictmoderate */
    unsigned n_allow, n_block;
};

enum policy_custom { POLICY_CUSTOM_NONE = 0, POLICY_CUSTOM_ALLOW, POLICY_CUSTOM_BLOCK };

struct policy_set;

/* Parses and validates a policy document. label names the source in errors
 * ("policy.set"). Returns a new set (free with policy_free) or NULL with err filled. */
struct policy_set *policy_parse(const char *json, size_t len, const char *label,
                                char *err, size_t errlen);
/* Reads and parses a file; errors are prefixed with the file name. */
struct policy_set *policy_load(const char *path, char *err, size_t errlen);
/* The policy used without a file: one group "default", every category, nxdomain. */
struct policy_set *policy_default(char *err, size_t errlen);
void policy_free(struct policy_set *ps);

/* Validates json and writes it to path atomically (path.tmp, fsync, rename, fsync dir).
 * Returns 0 or -1 with err filled; an invalid document is never written. */
int policy_write_json(const char *path, const char *json, size_t len, char *err,
                      size_t errlen);
/* Serialises a set back to canonical JSON. Returns a malloc'd string (caller frees). */
char *policy_to_json(const struct policy_set *ps);

unsigned policy_group_count(const struct policy_set *ps);
const struct policy_group *policy_group_get(const struct policy_set *ps, unsigned idx);
/* Index of a group by name, or -1. */
int policy_group_find(const struct policy_set *ps, const char *name);

/* The group for a client: longest prefix match over "clients", else default_group.
 * family is AF_INET (addr = 4 bytes) or AF_INET6 (16 bytes; v4-mapped addresses are
 * matched as IPv4). Linear over the client list: a small office has tens of entries and
 * dnsd caches nothing per client, so this is cheaper than building a trie. */
unsigned policy_group_for(const struct policy_set *ps, int family, const uint8_t *addr);

/* Custom allow/block of one group for a normalised name (suffix walk, allow wins).
 * *matched_off (may be NULL) gets the offset of the most specific matching suffix. */
enum policy_custom policy_custom_lookup(const struct policy_set *ps, unsigned group,
                                        const char *name, size_t len, size_t *matched_off);

/* Block-page addresses; returns 1 and fills out when that family is configured. */
int policy_blockpage_v4(const struct policy_set *ps, uint8_t out[4]);
int policy_blockpage_v6(const struct policy_set *ps, uint8_t out[16]);

#endif
