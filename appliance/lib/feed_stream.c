/* Signed feeds read from a file descriptor: verification and entry parsing in bounded
 * memory. A million-entry snapshot is ~140 MB; holding it in the heap (or even mapping
 * it, which still counts every touched page as resident) would more than double the
 * agent's memory budget. Here the document is read twice in 64 KiB chunks: once to
 * hash it for the signature (and find the manifest line and count the entry lines),
 * once to parse the entries one by one. Peak memory is one chunk plus one entry.
 *
 * The format signs the raw bytes with plain Ed25519 (not Ed25519ph), and libsodium's
 * crypto_sign_verify_detached wants the whole message in one buffer. Plain Ed25519
 * verification is "[S]B == R + [k]A with k = SHA-512(R || A || M) mod L", and the only
 * part that touches M is that hash, so it is computed incrementally
 * (crypto_hash_sha512_update) and the curve check is done with libsodium's own group
 * operations. The same checks as libsodium's verifier are applied: S canonical (< L),
 * R and A valid points not of small order, cofactorless equation. test_feed_stream
 * checks that both verifiers agree on valid and damaged signatures. */
#include "feed.h"
#include "feed_internal.h"
#include "errbuf.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK        (64 * 1024)
#define MANIFEST_MAX 4096
#define LINE_MAX_BYTES (16 * 1024)   /* an entry is < 1 KiB; longer lines are refused */

/* Reads up to n bytes at off, retrying short reads. Returns bytes read or -1. */
static ssize_t read_at(int fd, void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* S < L (the group order), the canonical form libsodium insists on: reducing S as a
 * 64-byte number leaves it unchanged exactly when it is already below L. */
static int scalar_is_canonical(const uint8_t s[32])
{
    uint8_t wide[64] = { 0 }, red[32];
    memcpy(wide, s, 32);
    crypto_core_ed25519_scalar_reduce(red, wide);
    return sodium_memcmp(red, s, 32) == 0;
}

/* Finishes the Ed25519 check once h = SHA-512(R || A || M) is known. 0 if valid. */
static int ed25519_finish(const uint8_t sig[64], const uint8_t pk[32], const uint8_t h[64])
{
    uint8_t k[32], sb[32], ka[32], rka[32];
    const uint8_t *r = sig, *s = sig + 32;
    if (!scalar_is_canonical(s) || !crypto_core_ed25519_is_valid_point(pk) ||
        !crypto_core_ed25519_is_valid_point(r))
        return -1;
    crypto_core_ed25519_scalar_reduce(k, h);
    /* Both return -1 when the product is the identity: S = 0 or k = 0 (mod L) cannot
     * come from an honest signer (probability 2^-252), so refusing them is safe. */
    if (crypto_scalarmult_ed25519_base_noclamp(sb, s) != 0 ||
        crypto_scalarmult_ed25519_noclamp(ka, k, pk) != 0 ||
        crypto_core_ed25519_add(rka, r, ka) != 0)
        return -1;
    return sodium_memcmp(sb, rka, 32) == 0 ? 0 : -1;
}

int feed_sig_verify_fd(int fd, uint64_t len, const uint8_t sig[FEED_SIG_BYTES],
                       const uint8_t pk[FEED_PUBKEY_BYTES])
{
    crypto_hash_sha512_state st;
    uint8_t h[64];
    char *buf = malloc(CHUNK);
    if (!buf || sodium_init() < 0) {
        free(buf);
        return -1;
    }
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, sig, 32);
    crypto_hash_sha512_update(&st, pk, 32);
    for (uint64_t off = 0; off < len;) {
        size_t want = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
        ssize_t n = read_at(fd, buf, want, (off_t)off);
        if (n <= 0) {
            free(buf);
            return -1;
        }
        crypto_hash_sha512_update(&st, (const uint8_t *)buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    crypto_hash_sha512_final(&st, h);
    return ed25519_finish(sig, pk, h);
}

/* One pass over the bytes: the signature hash, the manifest line, the entry line count
 * and whether the last line ends with a newline. Nothing is interpreted here; the
 * results are only used once the signature has been found valid. */
struct scan {
    char manifest[MANIFEST_MAX + 1];
    size_t mlen;
    int have_nl;            /* the manifest line ended */
    int manifest_too_long;
    uint64_t entries_offset;
    uint64_t lines;         /* non-empty lines after the manifest */
    int last_unterminated;  /* bytes after the last newline */
    int longest_over;       /* an entry line is longer than LINE_MAX_BYTES */
};

static int scan_fd(int fd, uint64_t len, const uint8_t sig[64], const uint8_t pk[32],
                   struct scan *sc, uint8_t h[64])
{
    crypto_hash_sha512_state st;
    char *buf = malloc(CHUNK);
    uint64_t linelen = 0;   /* bytes of the current entry line so far */
    if (!buf)
        return -1;
    memset(sc, 0, sizeof *sc);
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, sig, 32);
    crypto_hash_sha512_update(&st, pk, 32);
    for (uint64_t off = 0; off < len;) {
        size_t want = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
        ssize_t n = read_at(fd, buf, want, (off_t)off);
        if (n <= 0) {
            free(buf);
            return -1;
        }
        crypto_hash_sha512_update(&st, (const uint8_t *)buf, (size_t)n);
        const char *p = buf, *end = buf + n;
        if (!sc->have_nl) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t take = (size_t)((nl ? nl : end) - p);
            if (sc->mlen + take > MANIFEST_MAX)
                sc->manifest_too_long = 1;
            else
                memcpy(sc->manifest + sc->mlen, p, take);
            sc->mlen += take;
            if (nl) {
                sc->have_nl = 1;
                sc->entries_offset = off + (uint64_t)(nl - buf) + 1;
                p = nl + 1;
            } else {
                p = end;
            }
        }
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                linelen += (uint64_t)(end - p);
                break;
            }
            linelen += (uint64_t)(nl - p);
            if (linelen > 0)
                sc->lines++;
            if (linelen > LINE_MAX_BYTES)
                sc->longest_over = 1;
            linelen = 0;
            p = nl + 1;
        }
        off += (uint64_t)n;
    }
    free(buf);
    if (!sc->have_nl)
        sc->entries_offset = len;
    sc->last_unterminated = sc->have_nl && linelen > 0;
    if (linelen > LINE_MAX_BYTES)
        sc->longest_over = 1;
    crypto_hash_sha512_final(&st, h);
    return 0;
}

enum feed_reason feed_verify_fd(int fd, const char *sig, size_t siglen,
                                const struct feed_expect *x, struct feed_manifest *m,
                                char *err, size_t errlen)
{
    size_t max = x->max_bytes ? x->max_bytes : FEED_DEFAULT_MAX_BYTES;
    struct stat sb;
    memset(m, 0, sizeof *m);
    if (fstat(fd, &sb) < 0) {
        errbuf_set(err, errlen, "feed: cannot read the downloaded file: %s", strerror(errno));
        return FEED_TRUNCATED;
    }
    uint64_t len = (uint64_t)sb.st_size;
    if (len > max) {
        errbuf_set(err, errlen, "feed: %llu bytes is over the limit of %zu",
                   (unsigned long long)len, max);
        return FEED_OVERSIZED;
    }
    if (!sig || siglen == 0) {
        errbuf_set(err, errlen, "feed: no signature (unsigned feeds are refused)");
        return FEED_UNSIGNED;
    }
    if (sodium_init() < 0) {
        errbuf_set(err, errlen, "feed: libsodium failed to initialise");
        return FEED_BAD_SIGNATURE;
    }
    char keyid[FEED_KEYID_LEN + 1], pinned[FEED_KEYID_LEN + 1];
    uint8_t raw[FEED_SIG_BYTES], h[64];
    enum feed_reason r = feed_sig_parse(sig, siglen, keyid, raw, err, errlen);
    if (r != FEED_OK)
        return r;
    feed_key_id(x->pubkey, pinned);
    if (strcmp(keyid, pinned) != 0) {
        errbuf_set(err, errlen, "signature: signed by key %s, pinned key is %s", keyid, pinned);
        return FEED_WRONG_KEY;
    }
    struct scan *sc = malloc(sizeof *sc);
    if (!sc || scan_fd(fd, len, raw, x->pubkey, sc, h) < 0) {
        free(sc);
        errbuf_set(err, errlen, "feed: cannot read the downloaded file (%s)",
                   errno ? strerror(errno) : "short read");
        return FEED_TRUNCATED;
    }
    if (ed25519_finish(raw, x->pubkey, h) != 0) {
        free(sc);
        errbuf_set(err, errlen, "signature: does not match the %llu bytes of the feed "
                   "(tampered or truncated)", (unsigned long long)len);
        return FEED_BAD_SIGNATURE;
    }
    /* From here on every byte is the pinned signer's; still untrusted as to content. */
    r = FEED_BAD_MANIFEST;
    if (sc->manifest_too_long) {
        errbuf_set(err, errlen, "manifest (line 1): longer than %d bytes", MANIFEST_MAX);
        goto out;
    }
    if (feed_manifest_parse(sc->manifest, sc->mlen, m, err, errlen) < 0)
        goto out;
    m->entries_offset = (size_t)sc->entries_offset;
    r = feed_manifest_check(m, keyid, x, err, errlen);
    if (r != FEED_OK)
        goto out;
    r = FEED_TRUNCATED;
    if (sc->last_unterminated) {
        errbuf_set(err, errlen, "feed: last line has no newline (truncated)");
        goto out;
    }
    if (sc->lines != m->count) {
        errbuf_set(err, errlen, "feed: %llu entry lines, manifest says %llu (truncated)",
                   (unsigned long long)sc->lines, (unsigned long long)m->count);
        goto out;
    }
    if (sc->longest_over) {
        r = FEED_BAD_ENTRY;
        errbuf_set(err, errlen, "feed: an entry line is longer than %d bytes", LINE_MAX_BYTES);
        goto out;
    }
    r = FEED_OK;
out:
    free(sc);
    return r;
}

int feed_foreach_entry_fd(int fd, const struct feed_manifest *m,
                          int (*fn)(const struct feed_entry *e, void *ctx), void *ctx,
                          char *err, size_t errlen)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        errbuf_set(err, errlen, "feed: cannot read the downloaded file: %s", strerror(errno));
        return -1;
    }
    uint64_t len = (uint64_t)sb.st_size, off = m->entries_offset;
    /* A line never spans more than LINE_MAX_BYTES (checked by feed_verify_fd), so a
     * buffer of CHUNK + LINE_MAX_BYTES always holds a whole line after a refill. */
    size_t cap = CHUNK + LINE_MAX_BYTES;
    char *buf = malloc(cap + 1);
    struct feed_entry *e = malloc(sizeof *e);
    size_t have = 0, pos = 0;
    unsigned long lineno = 1;
    int rc = 0;
    char e2[200];
    if (!buf || !e) {
        errbuf_set(err, errlen, "feed: out of memory");
        rc = -1;
        goto out;
    }
    for (;;) {
        char *nl = memchr(buf + pos, '\n', have - pos);
        if (!nl) {
            /* keep the partial line, refill behind it */
            memmove(buf, buf + pos, have - pos);
            have -= pos;
            pos = 0;
            if (off >= len) {
                if (have) {
                    errbuf_set(err, errlen, "line %lu: no newline (truncated)", lineno + 1);
                    rc = -1;
                }
                break;
            }
            size_t want = cap - have;
            if (want == 0) {
                errbuf_set(err, errlen, "line %lu: longer than %d bytes", lineno + 1,
                           LINE_MAX_BYTES);
                rc = -1;
                break;
            }
            if ((uint64_t)want > len - off)
                want = (size_t)(len - off);
            ssize_t n = read_at(fd, buf + have, want, (off_t)off);
            if (n <= 0) {
                errbuf_set(err, errlen, "feed: read failed at byte %llu (file changed?)",
                           (unsigned long long)off);
                rc = -1;
                break;
            }
            have += (size_t)n;
            off += (uint64_t)n;
            continue;
        }
        size_t ll = (size_t)(nl - (buf + pos));
        lineno++;
        if (ll > 0) {
            if (feed_parse_entry(buf + pos, ll, m->type == FEED_DELTA, e, e2, sizeof e2) < 0) {
                errbuf_set(err, errlen, "line %lu: %s", lineno, e2);
                rc = -1;
                break;
            }
            rc = fn(e, ctx);
            if (rc)
                break;
        }
        pos += ll + 1;
    }
out:
    free(buf);
    free(e);
    return rc;
}
