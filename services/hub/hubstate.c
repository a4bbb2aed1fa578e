/* Hub state directory: the feed signing key, the pseudonym secret, the database, and
 * the small hashing helpers every module uses. Secrets are created 0600 on first use
 * and are never logged. */
#include "hubd.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void hub_opts_defaults(struct hub_opts *o)
{
    memset(o, 0, sizeof *o);
    o->state_dir = "/var/lib/otasuke-hub";
    o->listen = "0.0.0.0:8443";
    o->feed_id = "community";
    o->mqtt_host = "127.0.0.1";
    o->mqtt_port = 1883;
    o->k = 3;
    o->fp_k = 2;
    o->online_secs = 300;
    o->entry_ttl = 30 * 86400;
    o->doc_ttl = 7 * 86400;
    o->code_ttl = 86400;
    o->tls_priorities = "NORMAL";     /* GnuTLS's system default, as MHD would use */
}

long long hub_now(void)
{
    const char *fake = getenv("OTASUKE_HUB_NOW_OFFSET");   /* tests: jump the clock */
    return (long long)time(NULL) + (fake ? atoll(fake) : 0);
}

void hub_sha256_hex(const void *data, size_t len, char out[HUB_HASH_HEX + 1])
{
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, data, len);
    sodium_bin2hex(out, HUB_HASH_HEX + 1, d, sizeof d);
}

void hub_random_hex(size_t nbytes, char *out)
{
    uint8_t b[64];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    randombytes_buf(b, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, b, nbytes);
    sodium_memzero(b, sizeof b);
}

void hub_org_pseudonym(const uint8_t key[32], long org_id, char out[HUB_PSEUD_HEX + 1])
{
    char msg[40];
    int n = snprintf(msg, sizeof msg, "org:%ld", org_id);
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const uint8_t *)msg, (size_t)n, key);
    sodium_bin2hex(out, HUB_PSEUD_HEX + 1, mac, HUB_PSEUD_HEX / 2);
}

int hub_mqtt_pwhash(const char *password, char *out, size_t outlen)
{
    uint8_t salt[12], dk[64];
    randombytes_buf(salt, sizeof salt);
    gnutls_datum_t key = { (unsigned char *)password, (unsigned)strlen(password) };
    gnutls_datum_t s = { salt, sizeof salt };
    if (gnutls_pbkdf2(GNUTLS_MAC_SHA512, &key, &s, 101, dk, sizeof dk) < 0)
        return -1;
    char s64[32], d64[100];
    sodium_bin2base64(s64, sizeof s64, salt, sizeof salt, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(d64, sizeof d64, dk, sizeof dk, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out, outlen, "$7$101$%s$%s", s64, d64);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* Loads a raw secret file of exactly len bytes, creating it (0600, random) if absent. */
static int secret_file(const char *path, uint8_t *buf, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, len);
        close(fd);
        if (n != (ssize_t)len) {
            snprintf(err, errlen, "%s: expected %zu bytes; restore it from backup or remove "
                     "it (org pseudonyms will change)", path, len);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    randombytes_buf(buf, len);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fsync(fd) < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int feed_keys(struct hub *h, char *err, size_t errlen)
{
    char skp[600], pkp[600];
    snprintf(skp, sizeof skp, "%s/feed.key", h->o.state_dir);
    snprintf(pkp, sizeof pkp, "%s/feed.pub", h->o.state_dir);
    if (access(skp, F_OK) != 0) {
        if (feed_keygen(h->feed_pk, h->feed_sk) < 0 ||
            feed_key_save(skp, h->feed_sk, FEED_SECKEY_BYTES, 1, err, errlen) < 0 ||
            feed_key_save(pkp, h->feed_pk, FEED_PUBKEY_BYTES, 0, err, errlen) < 0)
            return -1;
    } else {
        struct stat st;
        if (stat(skp, &st) == 0 && (st.st_mode & 077)) {
            snprintf(err, errlen, "%s: secret key readable by others (mode %03o); run "
                     "chmod 600 %s", skp, (unsigned)(st.st_mode & 0777), skp);
            return -1;
        }
        if (feed_key_load(skp, h->feed_sk, FEED_SECKEY_BYTES, err, errlen) < 0)
            return -1;
        crypto_sign_ed25519_sk_to_pk(h->feed_pk, h->feed_sk);
        if (access(pkp, F_OK) != 0 &&
            feed_key_save(pkp, h->feed_pk, FEED_PUBKEY_BYTES, 0, err, errlen) < 0)
            return -1;
    }
    feed_key_id(h->feed_pk, h->feed_keyid);
    return 0;
}

int hub_open(struct hub *h, const struct hub_opts *o, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    h->o = *o;
    hub_doc_cache_clear();
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    /* 0711: the broker, running as user mosquitto, must reach <dir>/mosquitto; every
     * secret inside is 0600 on its own. */
    if (mkdir(o->state_dir, 0711) == 0)
        chmod(o->state_dir, 0711);    /* past the umask */
    else if (errno != EEXIST) {
        snprintf(err, errlen, "state dir %s: %s", o->state_dir, strerror(errno));
        return -1;
    }
    snprintf(h->mqtt_dir, sizeof h->mqtt_dir, "%s/mosquitto", o->state_dir);
    char path[600];
    snprintf(path, sizeof path, "%s/pseudonym.key", o->state_dir);
    if (feed_keys(h, err, errlen) < 0 ||
        secret_file(path, h->pseud_key, sizeof h->pseud_key, err, errlen) < 0)
        return -1;
    char dbpath[600];
    if (!o->db_uri)
        snprintf(dbpath, sizeof dbpath, "sqlite:%s/hub.db", o->state_dir);
    h->db = hubdb_open(o->db_uri ? o->db_uri : dbpath, err, errlen);
    if (!h->db)
        return -1;
    const char *p[] = { o->feed_id, NULL };
    char now[24];
    snprintf(now, sizeof now, "%lld", hub_now());
    p[1] = now;
    if (hubdb_exec(h->db, "INSERT INTO feed_state (feed, seq, updated) VALUES ($1, 1, $2) "
                   "ON CONFLICT (feed) DO NOTHING", 2, p, NULL, NULL, err, errlen) < 0 ||
        hubdb_exec(h->db, "INSERT INTO feed_log (feed, seq, at) VALUES ($1, 1, $2) "
                   "ON CONFLICT (feed, seq) DO NOTHING", 2, p, NULL, NULL, err, errlen) < 0) {
        hub_close(h);
        return -1;
    }
    return 0;
}

void hub_close(struct hub *h)
{
    hubdb_close(h->db);
    h->db = NULL;
    sodium_memzero(h->feed_sk, sizeof h->feed_sk);
    sodium_memzero(h->pseud_key, sizeof h->pseud_key);
}

void hub_audit(struct hub *h, const char *actor, const char *action, const char *fmt, ...)
{
    char detail[512], now[24];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(now, sizeof now, "%lld", hub_now());
    const char *p[] = { now, actor, action, detail };
    hubdb_exec(h->db, "INSERT INTO audit (at, actor, action, detail) VALUES ($1,$2,$3,$4)",
               4, p, NULL, NULL, NULL, 0);
}
