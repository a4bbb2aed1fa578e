/* Signed feeds: the format hubs publish and boxes subscribe to.
 *
 * A feed document is UTF-8 text, one JSON object per line (so a million entries can be
 * streamed without building a million-node tree):
 *   line 1   the manifest
 *            {"format":"otasuke-feed/1","feed":"community","seq":42,"type":"snapshot",
 *             "base":0,"created":1700000000,"expires":1700086400,
 *             "signer":"9f1c2a7b4d0e6f31","count":2}
 *            type "delta" applies on top of seq "base" (base < seq); a snapshot replaces
 *            everything. "count" is the number of entry lines that follow.
 *   line 2.. one entry each
 *            {"indicator":"evil.test","kind":"domain","category":"malware",
 *             "action":"block","expires":0,"confidence":90,"source":"hub"}
 *            kind domain|ipv4|ipv6|cidr; action block|allow|remove (remove only in deltas);
 *            expires 0 = never; confidence 0..100; source free text (<= 64 bytes).
 *
 * The signature is detached (URL + ".sig"), one line of text:
 *   otasuke-sig/1 <signer key id, 16 hex> <base64 Ed25519 signature over the exact bytes>
 * A key id is the first 8 bytes of BLAKE2b(public key), in hex.
 *
 * Verification order (feed_verify) never parses a byte that is not signed by the pinned
 * key: size limit, signature line, key id, Ed25519 check, then the manifest (feed id,
 * monotonic seq, expiry, count vs lines), and only then, separately, the entries.
 *
 * Keys on disk are one line of base64: 32 bytes public, 64 bytes secret (libsodium). */
#ifndef OTASUKE_FEED_H
#define OTASUKE_FEED_H

#include <stddef.h>
#include <stdint.h>

#define FEED_FORMAT        "otasuke-feed/1"
#define FEED_SIG_PREFIX    "otasuke-sig/1"
#define FEED_PUBKEY_BYTES  32
#define FEED_SECKEY_BYTES  64
#define FEED_SIG_BYTES     64
#define FEED_KEYID_LEN     16          /* hex characters */
#define FEED_ID_MAX        64
#define FEED_SOURCE_MAX    64
#define FEED_INDICATOR_MAX 253
#define FEED_DEFAULT_MAX_BYTES (256u * 1024 * 1024)

/* Why a feed was refused. Stable names (feed_reason_name) are stored in the agent's
 * database and shown to the owner. */
enum feed_reason {
    FEED_OK = 0,
    FEED_OVERSIZED,      /* bigger than the subscription's size limit */
    FEED_UNSIGNED,       /* no signature at all */
    FEED_SIG_MALFORMED,  /* signature line unreadable */
    FEED_WRONG_KEY,      /* signed, but not by the pinned key */
    FEED_BAD_SIGNATURE,  /* pinned key, signature does not match the bytes */
    FEED_BAD_MANIFEST,   /* signed, but the first line is not a valid manifest */
    FEED_WRONG_FEED,     /* manifest names another feed id */
    FEED_ROLLBACK,       /* seq not greater than the last accepted one */
    FEED_EXPIRED,        /* expires <= now */
    FEED_TRUNCATED,      /* fewer or more entry lines than the manifest's count */
    FEED_BAD_ENTRY,      /* an entry line is not valid (reported with its line number) */
    FEED_BAD_BASE,       /* delta whose base is not the seq we hold */
};
/* Returns a short stable name ("bad-signature") for a reason. */
const char *feed_reason_name(enum feed_reason r);

enum feed_type { FEED_SNAPSHOT = 0, FEED_DELTA = 1 };

struct feed_manifest {
    char feed[FEED_ID_MAX + 1];
    uint64_t seq;
    uint64_t base;
    enum feed_type type;
    int64_t created;
    int64_t expires;
    char signer[FEED_KEYID_LEN + 1];
    uint64_t count;
    size_t entries_offset;   /* byte offset of the first entry line in the document */
};

enum feed_kind { FEED_KIND_DOMAIN = 0, FEED_KIND_IPV4, FEED_KIND_IPV6, FEED_KIND_CIDR };
enum feed_action { FEED_ACT_BLOCK = 0, FEED_ACT_ALLOW, FEED_ACT_REMOVE };

struct feed_entry {
    char indicator[FEED_INDICATOR_MAX + 1];  /* domains normalised, CIDR as given */
    enum feed_kind kind;
    int category;              /* dset_category; -1 for allow entries without one */
    enum feed_action action;
    int64_t expires;           /* 0 = never */
    int confidence;            /* 0..100 */
    char source[FEED_SOURCE_MAX + 1];
};

const char *feed_kind_name(enum feed_kind k);
const char *feed_action_name(enum feed_action a);

/* What the subscriber expects. feed_id NULL skips the id check (tools only). */
struct feed_expect {
    const char *feed_id;
    const uint8_t *pubkey;     /* FEED_PUBKEY_BYTES, pinned */
    uint64_t last_seq;         /* 0 = nothing accepted yet */
    int64_t now;
    size_t max_bytes;          /* 0 = FEED_DEFAULT_MAX_BYTES */
};

/* Verifies a document and its signature line (sig may be NULL = unsigned) and fills m.
 * Returns FEED_OK, or a reason with err naming what and where. Never reads entries
 * beyond counting their lines. */
enum feed_reason feed_verify(const char *doc, size_t len, const char *sig, size_t siglen,
                             const struct feed_expect *x, struct feed_manifest *m,
                             char *err, size_t errlen);

/* Parses the entry lines of a verified document, calling fn for each. fn returns 0 to go
 * on or non-zero to stop (that value is returned). Returns 0 when all entries parsed,
 * -1 with err ("line 17: field 'kind': expected domain|ipv4|ipv6|cidr") on the first bad
 * entry. Entries of a snapshot with action remove are refused. */
int feed_foreach_entry(const char *doc, size_t len, const struct feed_manifest *m,
                       int (*fn)(const struct feed_entry *e, void *ctx), void *ctx,
                       char *err, size_t errlen);

/* The same two steps on a document in a file (the agent downloads feeds to disk), in
 * bounded memory: the file is read in 64 KiB chunks, never held whole (feed_stream.c).
 * feed_verify_fd has feed_verify's checks and returns, plus FEED_BAD_ENTRY for an entry
 * line over 16 KiB; the file must not change between the two calls. */
enum feed_reason feed_verify_fd(int fd, const char *sig, size_t siglen,
                                const struct feed_expect *x, struct feed_manifest *m,
                                char *err, size_t errlen);
int feed_foreach_entry_fd(int fd, const struct feed_manifest *m,
                          int (*fn)(const struct feed_entry *e, void *ctx), void *ctx,
                          char *err, size_t errlen);
/* Plain Ed25519 check of a raw signature over the first len bytes of fd, hashing the
 * bytes as they are read. Returns 0 if valid, -1 if not (or unreadable). */
int feed_sig_verify_fd(int fd, uint64_t len, const uint8_t sig[FEED_SIG_BYTES],
                       const uint8_t pk[FEED_PUBKEY_BYTES]);

/* Parses one entry line (no newline). Returns 0 or -1 with err naming the field.
 * Exposed for the fuzzer and for the agent's API (owner-submitted indicators). */
int feed_parse_entry(const char *line, size_t len, int is_delta, struct feed_entry *e,
                     char *err, size_t errlen);

/* ---- keys and signing (the hub and tests use this side) ---- */

/* Generates a key pair. Returns 0 or -1. */
int feed_keygen(uint8_t pk[FEED_PUBKEY_BYTES], uint8_t sk[FEED_SECKEY_BYTES]);
/* Writes the key id of pk (16 hex + NUL) into out. */
void feed_key_id(const uint8_t pk[FEED_PUBKEY_BYTES], char out[FEED_KEYID_LEN + 1]);
/* Base64 text <-> raw key. Decode returns 0 or -1 with err (wrong length, bad base64). */
int feed_key_encode(const uint8_t *key, size_t keylen, char *out, size_t outlen);
int feed_key_decode(const char *text, uint8_t *key, size_t keylen, char *err, size_t errlen);
/* Reads / writes a key file (one base64 line). Secret key files are created 0600.
 * Return 0 or -1 with err. */
int feed_key_load(const char *path, uint8_t *key, size_t keylen, char *err, size_t errlen);
int feed_key_save(const char *path, const uint8_t *key, size_t keylen, int secret,
                  char *err, size_t errlen);

/* Signs doc with sk; writes the signature line (with '\n') into out.
 * Returns its length, or -1 if outlen is too small (needs about 120 bytes). */
int feed_sign(const char *doc, size_t len, const uint8_t sk[FEED_SECKEY_BYTES],
              char *out, size_t outlen);

/* Writes a manifest line (with '\n') into out. Returns its length or -1 (too small). */
int feed_format_manifest(const struct feed_manifest *m, char *out, size_t outlen);
/* Writes one entry line (with '\n'). Returns its length or -1. */
int feed_format_entry(const struct feed_entry *e, char *out, size_t outlen);

/* Detached signature helpers for other signed bodies (delegated policy changes):
 * verify a base64 signature over bytes with a raw public key. Returns 0 if valid. */
int feed_sig_verify_b64(const void *data, size_t len, const char *sig_b64,
                        const uint8_t pk[FEED_PUBKEY_BYTES]);
/* Signs bytes; writes base64 signature + NUL. Returns 0 or -1. */
int feed_sig_sign_b64(const void *data, size_t len, const uint8_t sk[FEED_SECKEY_BYTES],
                      char *out, size_t outlen);

#endif
