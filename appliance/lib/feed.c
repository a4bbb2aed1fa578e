/* Signed feeds: verification before parsing, entry parsing, signing and keys. */
#include "feed.h"
#include "feed_internal.h"
#include "errbuf.h"
#include "domainset.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

static const char *const reason_names[] = {
    "ok", "oversized", "unsigned", "signature-malformed", "wrong-key", "bad-signature",
    "bad-manifest", "wrong-feed", "rollback", "expired", "truncated", "bad-entry",
    "bad-base",
};

const char *feed_reason_name(enum feed_reason r)
{
    if ((unsigned)r < sizeof reason_names / sizeof reason_names[0])
        return reason_names[r];
    return "unknown";
}

static const char *const kind_names[] = { "domain", "ipv4", "ipv6", "cidr" };
static const char *const action_names[] = { "block", "allow", "remove" };

const char *feed_kind_name(enum feed_kind k)
{
    return (unsigned)k < 4 ? kind_names[k] : "?";
}

const char *feed_action_name(enum feed_action a)
{
    return (unsigned)a < 3 ? action_names[a] : "?";
}

static int sodium_ready(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void feed_key_id(const uint8_t pk[FEED_PUBKEY_BYTES], char out[FEED_KEYID_LEN + 1])
{
    uint8_t h[8];
    crypto_generichash(h, sizeof h, pk, FEED_PUBKEY_BYTES, NULL, 0);
    sodium_bin2hex(out, FEED_KEYID_LEN + 1, h, sizeof h);
}

/* ---- signature line ---- */

enum feed_reason feed_sig_parse(const char *sig, size_t siglen, char keyid[17],
                                       uint8_t raw[FEED_SIG_BYTES], char *err, size_t errlen)
{
    char line[256];
    while (siglen && (sig[siglen - 1] == '\n' || sig[siglen - 1] == '\r' ||
                      sig[siglen - 1] == ' '))
        siglen--;
    if (siglen == 0) {
        errbuf_set(err, errlen, "signature: empty (the feed is unsigned)");
        return FEED_UNSIGNED;
    }
    if (siglen >= sizeof line || memchr(sig, '\n', siglen) || memchr(sig, '\0', siglen)) {
        errbuf_set(err, errlen, "signature: expected one line '%s KEYID BASE64'", FEED_SIG_PREFIX);
        return FEED_SIG_MALFORMED;
    }
    memcpy(line, sig, siglen);
    line[siglen] = '\0';
    char *save = NULL;
    char *p = strtok_r(line, " ", &save);
    char *kid = strtok_r(NULL, " ", &save);
    char *b64 = strtok_r(NULL, " ", &save);
    if (!p || strcmp(p, FEED_SIG_PREFIX) != 0 || !kid || !b64 || strtok_r(NULL, " ", &save)) {
        errbuf_set(err, errlen, "signature: expected '%s KEYID BASE64'", FEED_SIG_PREFIX);
        return FEED_SIG_MALFORMED;
    }
    if (strlen(kid) != FEED_KEYID_LEN || strspn(kid, "0123456789abcdef") != FEED_KEYID_LEN) {
        errbuf_set(err, errlen, "signature: key id must be %d lower-case hex digits",
               FEED_KEYID_LEN);
        return FEED_SIG_MALFORMED;
    }
    size_t n = 0;
    if (sodium_base642bin(raw, FEED_SIG_BYTES, b64, strlen(b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || n != FEED_SIG_BYTES) {
        errbuf_set(err, errlen, "signature: not %d bytes of base64", FEED_SIG_BYTES);
        return FEED_SIG_MALFORMED;
    }
    memcpy(keyid, kid, FEED_KEYID_LEN + 1);
    return FEED_OK;
}

/* ---- manifest ---- */

static const char *const manifest_fields[] = {
    "format", "feed", "seq", "type", "base", "created", "expires", "signer", "count", NULL,
};

static int known_field(const char *const *fields, const char *k)
{
    for (size_t i = 0; fields[i]; i++)
        if (strcmp(fields[i], k) == 0)
            return 1;
    return 0;
}

static int get_uint(json_t *o, const char *k, int required, uint64_t *out,
                    char *err, size_t errlen, const char *where)
{
    json_t *v = json_object_get(o, k);
    if (!v) {
        if (required) {
            errbuf_set(err, errlen, "%s: field '%s' missing", where, k);
            return -1;
        }
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        errbuf_set(err, errlen, "%s: field '%s': expected a non-negative integer", where, k);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_str(json_t *o, const char *k, int required, char *out, size_t outlen,
                   char *err, size_t errlen, const char *where)
{
    json_t *v = json_object_get(o, k);
    if (!v) {
        if (required) {
            errbuf_set(err, errlen, "%s: field '%s' missing", where, k);
            return -1;
        }
        out[0] = '\0';
        return 0;
    }
    if (!json_is_string(v)) {
        errbuf_set(err, errlen, "%s: field '%s': expected a string", where, k);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n >= outlen || memchr(json_string_value(v), '\0', n)) {
        errbuf_set(err, errlen, "%s: field '%s': longer than %zu bytes", where, k, outlen - 1);
        return -1;
    }
    memcpy(out, json_string_value(v), n + 1);
    return 0;
}

static int valid_feed_id(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return 0;
    return 1;
}

int feed_manifest_parse(const char *line, size_t len, struct feed_manifest *m,
                          char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        errbuf_set(err, errlen, "manifest (line 1): %s at column %d", je.text, je.column);
        return -1;
    }
    int rc = -1;
    char fmt[32], type[16];
    const char *k;
    json_t *v;
    if (!json_is_object(o)) {
        errbuf_set(err, errlen, "manifest (line 1): expected a JSON object");
        goto out;
    }
    json_object_foreach(o, k, v) {
        if (!known_field(manifest_fields, k)) {
            errbuf_set(err, errlen, "manifest (line 1): unknown field '%s'", k);
            goto out;
        }
    }
    const char *w = "manifest (line 1)";
    uint64_t created, expires;
    if (get_str(o, "format", 1, fmt, sizeof fmt, err, errlen, w) ||
        get_str(o, "feed", 1, m->feed, sizeof m->feed, err, errlen, w) ||
        get_uint(o, "seq", 1, &m->seq, err, errlen, w) ||
        get_str(o, "type", 1, type, sizeof type, err, errlen, w) ||
        get_uint(o, "base", 0, &m->base, err, errlen, w) ||
        get_uint(o, "created", 1, &created, err, errlen, w) ||
        get_uint(o, "expires", 1, &expires, err, errlen, w) ||
        get_str(o, "signer", 1, m->signer, sizeof m->signer, err, errlen, w) ||
        get_uint(o, "count", 1, &m->count, err, errlen, w))
        goto out;
    if (strcmp(fmt, FEED_FORMAT) != 0) {
        errbuf_set(err, errlen, "%s: field 'format': '%s' is not %s", w, fmt, FEED_FORMAT);
        goto out;
    }
    if (!valid_feed_id(m->feed)) {
        errbuf_set(err, errlen, "%s: field 'feed': use a-z 0-9 . - _", w);
        goto out;
    }
    if (strcmp(type, "snapshot") == 0) {
        m->type = FEED_SNAPSHOT;
    } else if (strcmp(type, "delta") == 0) {
        m->type = FEED_DELTA;
        if (m->base == 0 || m->base >= m->seq) {
            errbuf_set(err, errlen, "%s: field 'base': a delta needs 0 < base < seq", w);
            goto out;
        }
    } else {
        errbuf_set(err, errlen, "%s: field 'type': expected snapshot|delta", w);
        goto out;
    }
    if (m->seq == 0 || created > INT64_MAX || expires > INT64_MAX) {
        errbuf_set(err, errlen, "%s: seq must be >= 1 and times must fit in 63 bits", w);
        goto out;
    }
    m->created = (int64_t)created;
    m->expires = (int64_t)expires;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

enum feed_reason feed_manifest_check(const struct feed_manifest *m, const char *keyid,
                                     const struct feed_expect *x, char *err, size_t errlen)
{
    if (strcmp(m->signer, keyid) != 0) {
        errbuf_set(err, errlen, "manifest: signer %s differs from the signature's key %s",
               m->signer, keyid);
        return FEED_BAD_MANIFEST;
    }
    if (x->feed_id && strcmp(m->feed, x->feed_id) != 0) {
        errbuf_set(err, errlen, "manifest: feed '%s', subscribed to '%s'", m->feed, x->feed_id);
        return FEED_WRONG_FEED;
    }
    if (m->seq <= x->last_seq) {
        errbuf_set(err, errlen, "manifest: seq %llu is not newer than the accepted %llu "
               "(rollback or replay)", (unsigned long long)m->seq,
               (unsigned long long)x->last_seq);
        return FEED_ROLLBACK;
    }
    if (m->expires <= x->now) {
        errbuf_set(err, errlen, "manifest: expired at %lld (now %lld)", (long long)m->expires,
               (long long)x->now);
        return FEED_EXPIRED;
    }
    if (m->type == FEED_DELTA && m->base != x->last_seq) {
        errbuf_set(err, errlen, "manifest: delta on seq %llu, we hold %llu (fetch a snapshot)",
               (unsigned long long)m->base, (unsigned long long)x->last_seq);
        return FEED_BAD_BASE;
    }
    return FEED_OK;
}

enum feed_reason feed_verify(const char *doc, size_t len, const char *sig, size_t siglen,
                             const struct feed_expect *x, struct feed_manifest *m,
                             char *err, size_t errlen)
{
    size_t max = x->max_bytes ? x->max_bytes : FEED_DEFAULT_MAX_BYTES;
    memset(m, 0, sizeof *m);
    if (len > max) {
        errbuf_set(err, errlen, "feed: %zu bytes is over the limit of %zu", len, max);
        return FEED_OVERSIZED;
    }
    if (!sig || siglen == 0) {
        errbuf_set(err, errlen, "feed: no signature (unsigned feeds are refused)");
        return FEED_UNSIGNED;
    }
    if (sodium_ready() < 0) {
        errbuf_set(err, errlen, "feed: libsodium failed to initialise");
        return FEED_BAD_SIGNATURE;
    }
    char keyid[FEED_KEYID_LEN + 1], pinned[FEED_KEYID_LEN + 1];
    uint8_t raw[FEED_SIG_BYTES];
    enum feed_reason r = feed_sig_parse(sig, siglen, keyid, raw, err, errlen);
    if (r != FEED_OK)
        return r;
    feed_key_id(x->pubkey, pinned);
    if (strcmp(keyid, pinned) != 0) {
        errbuf_set(err, errlen, "signature: signed by key %s, pinned key is %s", keyid, pinned);
        return FEED_WRONG_KEY;
    }
    if (crypto_sign_verify_detached(raw, (const unsigned char *)doc, len, x->pubkey) != 0) {
        errbuf_set(err, errlen, "signature: does not match the %zu bytes of the feed "
               "(tampered or truncated)", len);
        return FEED_BAD_SIGNATURE;
    }
    /* From here on every byte is the pinned signer's; still untrusted as to content. */
    const char *nl = memchr(doc, '\n', len);
    size_t mlen = nl ? (size_t)(nl - doc) : len;
    if (feed_manifest_parse(doc, mlen, m, err, errlen) < 0)
        return FEED_BAD_MANIFEST;
    m->entries_offset = nl ? mlen + 1 : len;
    r = feed_manifest_check(m, keyid, x, err, errlen);
    if (r != FEED_OK)
        return r;
    /* Count entry lines without parsing them: the manifest says how many to expect. */
    uint64_t lines = 0;
    const char *p = doc + m->entries_offset, *end = doc + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) {
            errbuf_set(err, errlen, "feed: last line has no newline (truncated)");
            return FEED_TRUNCATED;
        }
        if (e > p)
            lines++;
        p = e + 1;
    }
    if (lines != m->count) {
        errbuf_set(err, errlen, "feed: %llu entry lines, manifest says %llu (truncated)",
               (unsigned long long)lines, (unsigned long long)m->count);
        return FEED_TRUNCATED;
    }
    return FEED_OK;
}

/* ---- entries ---- */

static const char *const entry_fields[] = {
    "indicator", "kind", "category", "action", "expires", "confidence", "source", NULL,
};

static int pick(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static int check_indicator(struct feed_entry *e, char *err, size_t errlen)
{
    char buf[FEED_INDICATOR_MAX + 1], e2[128];
    unsigned char addr[16];
    switch (e->kind) {
    case FEED_KIND_DOMAIN: {
        int n = dset_normalize(e->indicator, strlen(e->indicator), buf, sizeof buf,
                               e2, sizeof e2);
        if (n < 0) {
            errbuf_set(err, errlen, "field 'indicator': %s", e2);
            return -1;
        }
        memcpy(e->indicator, buf, (size_t)n);
        e->indicator[n] = '\0';
        return 0;
    }
    case FEED_KIND_IPV4:
        if (inet_pton(AF_INET, e->indicator, addr) == 1)
            return 0;
        break;
    case FEED_KIND_IPV6:
        if (inet_pton(AF_INET6, e->indicator, addr) == 1)
            return 0;
        break;
    case FEED_KIND_CIDR: {
        char *slash = strchr(e->indicator, '/');
        if (!slash || (size_t)(slash - e->indicator) >= sizeof buf)
            break;
        memcpy(buf, e->indicator, (size_t)(slash - e->indicator));
        buf[slash - e->indicator] = '\0';
        char *endp;
        errno = 0;
        long bits = strtol(slash + 1, &endp, 10);
        if (*endp || endp == slash + 1 || errno)
            break;
        if (inet_pton(AF_INET, buf, addr) == 1 && bits >= 0 && bits <= 32)
            return 0;
        if (inet_pton(AF_INET6, buf, addr) == 1 && bits >= 0 && bits <= 128)
            return 0;
        break;
    }
    }
    errbuf_set(err, errlen, "field 'indicator': '%s' is not a valid %s", e->indicator,
           feed_kind_name(e->kind));
    return -1;
}

int feed_parse_entry(const char *line, size_t len, int is_delta, struct feed_entry *e,
                     char *err, size_t errlen)
{
    json_error_t je;
    memset(e, 0, sizeof *e);
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        errbuf_set(err, errlen, "%s at column %d", je.text, je.column);
        return -1;
    }
    int rc = -1;
    const char *k;
    json_t *v;
    char kind[16], cat[32], act[16];
    uint64_t expires, conf;
    if (!json_is_object(o)) {
        errbuf_set(err, errlen, "expected a JSON object");
        goto out;
    }
    json_object_foreach(o, k, v) {
        if (!known_field(entry_fields, k)) {
            errbuf_set(err, errlen, "unknown field '%s'", k);
            goto out;
        }
    }
    const char *w = "entry";
    if (get_str(o, "indicator", 1, e->indicator, sizeof e->indicator, err, errlen, w) ||
        get_str(o, "kind", 1, kind, sizeof kind, err, errlen, w) ||
        get_str(o, "category", 0, cat, sizeof cat, err, errlen, w) ||
        get_str(o, "action", 1, act, sizeof act, err, errlen, w) ||
        get_uint(o, "expires", 0, &expires, err, errlen, w) ||
        get_uint(o, "confidence", 0, &conf, err, errlen, w) ||
        get_str(o, "source", 0, e->source, sizeof e->source, err, errlen, w))
        goto out;
    int ki = pick(kind_names, 4, kind);
    if (ki < 0) {
        errbuf_set(err, errlen, "field 'kind': expected domain|ipv4|ipv6|cidr");
        goto out;
    }
    e->kind = (enum feed_kind)ki;
    int ai = pick(action_names, 3, act);
    if (ai < 0 || (ai == FEED_ACT_REMOVE && !is_delta)) {
        errbuf_set(err, errlen, "field 'action': expected block|allow%s", is_delta ? "|remove" : "");
        goto out;
    }
    e->action = (enum feed_action)ai;
    e->category = -1;
    if (cat[0]) {
        e->category = dset_category_parse(cat);
        if (e->category < 0) {
            errbuf_set(err, errlen, "field 'category': unknown category '%s'", cat);
            goto out;
        }
    } else if (e->action == FEED_ACT_BLOCK) {
        errbuf_set(err, errlen, "field 'category' missing (a block entry needs one)");
        goto out;
    }
    if (!json_object_get(o, "confidence"))
        conf = 100;
    if (conf > 100) {
        errbuf_set(err, errlen, "field 'confidence': expected 0..100");
        goto out;
    }
    if (expires > INT64_MAX) {
        errbuf_set(err, errlen, "field 'expires': too large");
        goto out;
    }
    e->confidence = (int)conf;
    e->expires = (int64_t)expires;
    rc = check_indicator(e, err, errlen);
out:
    json_decref(o);
    return rc;
}

int feed_foreach_entry(const char *doc, size_t len, const struct feed_manifest *m,
                       int (*fn)(const struct feed_entry *e, void *ctx), void *ctx,
                       char *err, size_t errlen)
{
    const char *p = doc + m->entries_offset, *end = doc + len;
    unsigned long lineno = 1;
    struct feed_entry e;
    char e2[200];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        if (le > p) {
            if (feed_parse_entry(p, (size_t)(le - p), m->type == FEED_DELTA, &e,
                                 e2, sizeof e2) < 0) {
                errbuf_set(err, errlen, "line %lu: %s", lineno, e2);
                return -1;
            }
            int rc = fn(&e, ctx);
            if (rc)
                return rc;
        }
        p = le + 1;
    }
    return 0;
}

/* ---- keys ---- */

int feed_keygen(uint8_t pk[FEED_PUBKEY_BYTES], uint8_t sk[FEED_SECKEY_BYTES])
{
    if (sodium_ready() < 0)
        return -1;
    return crypto_sign_keypair(pk, sk) == 0 ? 0 : -1;
}

int feed_key_encode(const uint8_t *key, size_t keylen, char *out, size_t outlen)
{
    if (outlen < sodium_base64_ENCODED_LEN(keylen, sodium_base64_VARIANT_ORIGINAL))
        return -1;
    sodium_bin2base64(out, outlen, key, keylen, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

int feed_key_decode(const char *text, uint8_t *key, size_t keylen, char *err, size_t errlen)
{
    size_t n = 0, tl = strlen(text);
    while (tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r' || text[tl - 1] == ' '))
        tl--;
    if (sodium_ready() < 0 ||
        sodium_base642bin(key, keylen, text, tl, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || n != keylen) {
        errbuf_set(err, errlen, "key: expected %zu bytes of base64", keylen);
        return -1;
    }
    return 0;
}

int feed_key_load(const char *path, uint8_t *key, size_t keylen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char buf[256], e2[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (feed_key_decode(buf, key, keylen, e2, sizeof e2) < 0) {
        errbuf_set(err, errlen, "%s: %s", path, e2);
        sodium_memzero(buf, sizeof buf);
        return -1;
    }
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int feed_key_save(const char *path, const uint8_t *key, size_t keylen, int secret,
                  char *err, size_t errlen)
{
    char buf[256];
    if (feed_key_encode(key, keylen, buf, sizeof buf) < 0) {
        errbuf_set(err, errlen, "%s: key too long", path);
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0) {
        errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(buf);
    buf[n++] = '\n';
    int ok = write(fd, buf, n) == (ssize_t)n && fsync(fd) == 0;
    sodium_memzero(buf, sizeof buf);
    if (close(fd) != 0 || !ok) {
        errbuf_set(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int feed_sign(const char *doc, size_t len, const uint8_t sk[FEED_SECKEY_BYTES],
              char *out, size_t outlen)
{
    uint8_t raw[FEED_SIG_BYTES], pk[FEED_PUBKEY_BYTES];
    char kid[FEED_KEYID_LEN + 1];
    char b64[sodium_base64_ENCODED_LEN(FEED_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    if (sodium_ready() < 0)
        return -1;
    crypto_sign_detached(raw, NULL, (const unsigned char *)doc, len, sk);
    crypto_sign_ed25519_sk_to_pk(pk, sk);
    feed_key_id(pk, kid);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out, outlen, "%s %s %s\n", FEED_SIG_PREFIX, kid, b64);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int feed_format_manifest(const struct feed_manifest *m, char *out, size_t outlen)
{
    int n = snprintf(out, outlen,
                     "{\"format\":\"%s\",\"feed\":\"%s\",\"seq\":%llu,\"type\":\"%s\","
                     "\"base\":%llu,\"created\":%lld,\"expires\":%lld,\"signer\":\"%s\","
                     "\"count\":%llu}\n",
                     FEED_FORMAT, m->feed, (unsigned long long)m->seq,
                     m->type == FEED_DELTA ? "delta" : "snapshot",
                     (unsigned long long)m->base, (long long)m->created,
                     (long long)m->expires, m->signer, (unsigned long long)m->count);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int feed_format_entry(const struct feed_entry *e, char *out, size_t outlen)
{
    /* Indicators and sources are escaped through jansson: sources are free text. */
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:s}", "indicator", e->indicator,
                          "kind", feed_kind_name(e->kind), "action",
                          feed_action_name(e->action), "expires", (json_int_t)e->expires,
                          "confidence", e->confidence, "source", e->source);
    if (!o)
        return -1;
    if (e->category >= 0 && dset_category_name(e->category))
        json_object_set_new(o, "category", json_string(dset_category_name(e->category)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return -1;
    int n = snprintf(out, outlen, "%s\n", s);
    free(s);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int feed_sig_verify_b64(const void *data, size_t len, const char *sig_b64,
                        const uint8_t pk[FEED_PUBKEY_BYTES])
{
    uint8_t raw[FEED_SIG_BYTES];
    size_t n = 0;
    if (sodium_ready() < 0 || !sig_b64 ||
        sodium_base642bin(raw, sizeof raw, sig_b64, strlen(sig_b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || n != sizeof raw)
        return -1;
    return crypto_sign_verify_detached(raw, data, len, pk) == 0 ? 0 : -1;
}

int feed_sig_sign_b64(const void *data, size_t len, const uint8_t sk[FEED_SECKEY_BYTES],
                      char *out, size_t outlen)
{
    uint8_t raw[FEED_SIG_BYTES];
    if (sodium_ready() < 0 ||
        outlen < sodium_base64_ENCODED_LEN(FEED_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL))
        return -1;
    crypto_sign_detached(raw, NULL, data, len, sk);
    sodium_bin2base64(out, outlen, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}
