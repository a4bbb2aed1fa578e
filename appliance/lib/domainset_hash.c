/* Hashing and checksumming for the domain set.
 *
 * Name hash: SipHash-2-4 through libsodium's crypto_shorthash, keyed with a random key
 * per build. Why SipHash and not a faster unkeyed hash (xxh3, wyhash): the names come
 * from feeds and the queries from LAN clients, and with a public unkeyed function anyone
 * could precompute names that collide with blocked ones or pile into one probe run.
 * SipHash is the standard keyed short-input PRF, costs ~15-25 ns for a typical name
 * (a lookup hashes each suffix once, 2-4 per query), and libsodium is already linked.
 *
 * Checksum: CRC-32C. With SSE4.2 the crc32 instruction runs three independent streams
 * (to hide its 3-cycle latency), several GB/s on this class of CPU, so verifying a
 * 1M-name set (~45 MB) costs milliseconds; a table-driven fallback covers other CPUs. */
#include "domainset_format.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

uint64_t dset_hash48(const uint8_t key[16], const char *name, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    crypto_shorthash(out, (const unsigned char *)name, len, key);
    memcpy(&h, out, sizeof h);
    h >>= 16;
    return h ? h : 1;
}

/* ---- software CRC-32C (slicing by 8) ---------------------------------------- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t dset_crc32c_portable(uint32_t crc, const uint8_t *p, size_t len)
{
    pthread_once(&crc_once, crc_table_init);
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
              crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
              crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
              crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* Joining three streams needs "state times x^(8*CRC_BLOCK) mod P"; the operator is
 * built once by squaring GF(2) 32x32 matrices. */
#define CRC_BLOCK 4096u  /* bytes per stream per round */

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1)
            sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        sq[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends CRC_BLOCK zero bytes to a CRC state, in table form
 * (one table per byte of the state) so joining streams costs four lookups. */
static uint32_t shift_tab[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_init(void)
{
    uint32_t odd[32], even[32], *cur = odd, *other = even;
    /* operator for one zero bit */
    odd[0] = 0x82f63b78u;
    for (int n = 1; n < 32; n++)
        odd[n] = 1u << (n - 1);
    /* square 3 times: 1 bit -> 2 -> 4 -> 8 bits = one byte */
    gf2_square(even, odd);
    gf2_square(odd, even);
    gf2_square(even, odd);
    cur = even;
    other = odd;
    /* then up to CRC_BLOCK bytes (a power of two) */
    for (unsigned bytes = 1; bytes < CRC_BLOCK; bytes <<= 1) {
        gf2_square(other, cur);
        uint32_t *t = cur;
        cur = other;
        other = t;
    }
    for (int pos = 0; pos < 4; pos++)
        for (uint32_t b = 0; b < 256; b++)
            shift_tab[pos][b] = gf2_times(cur, b << (8 * pos));
}

static inline uint32_t crc_shift(uint32_t crc)
{
    return shift_tab[0][crc & 0xff] ^ shift_tab[1][(crc >> 8) & 0xff] ^
           shift_tab[2][(crc >> 16) & 0xff] ^ shift_tab[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c0 = crc;

    if (len >= 3 * CRC_BLOCK)
        pthread_once(&shift_once, shift_init);
    while (len >= 3 * CRC_BLOCK) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *p1 = p + CRC_BLOCK, *p2 = p + 2 * CRC_BLOCK;
        for (unsigned i = 0; i < CRC_BLOCK; i += 8) {
            uint64_t a, b, c;
            memcpy(&a, p + i, 8);
            memcpy(&b, p1 + i, 8);
            memcpy(&c, p2 + i, 8);
            c0 = _mm_crc32_u64(c0, a);
            c1 = _mm_crc32_u64(c1, b);
            c2 = _mm_crc32_u64(c2, c);
        }
        /* crc(A||B||C) = shift(shift(cA) ^ cB) ^ cC, with the streams started at 0 */
        c0 = crc_shift(crc_shift((uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * CRC_BLOCK;
        len -= 3 * CRC_BLOCK;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c0 = _mm_crc32_u64(c0, v);
        p += 8;
        len -= 8;
    }
    while (len--)
        c0 = _mm_crc32_u8((uint32_t)c0, *p++);
    return (uint32_t)c0;
}
#endif

uint32_t dset_crc32c(uint32_t crc, const void *buf, size_t len)
{
    /* Raw (non-inverted) CRC register internally; the usual ~ pre/post conditioning is
     * applied here so results match the published CRC-32C check value. */
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc32c_hw(crc, buf, len);
#endif
    return ~dset_crc32c_portable(crc, buf, len);
}
