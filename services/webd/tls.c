/* webd's certificate: generated once (ECDSA P-256, self-signed, 10 years) so first start
 * needs no operator step; the SHA-256 fingerprint is printed and reported to the agent so
 * the owner can compare it with what the browser shows before trusting it. */
#include "webd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    if (bad || n == 0) {
        snprintf(err, errlen, "%s: unreadable, empty or larger than 64 KiB", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int write_file(const char *path, const char *data, mode_t mode, char *err,
                      size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t n = strlen(data);
    if (fd < 0 || write(fd, data, n) != (ssize_t)n || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static char *datum_str(gnutls_datum_t *d)
{
    char *s = malloc(d->size + 1);
    if (s) {
        memcpy(s, d->data, d->size);
        s[d->size] = '\0';
    }
    gnutls_free(d->data);
    return s;
}

static int generate(const char *cert_path, const char *key_path, const char *const *sans,
                    char *err, size_t errlen)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t kd = { 0 }, cd = { 0 };
    int rc = -1, g;
    unsigned char serial[16];
    if ((g = gnutls_x509_privkey_init(&key)) < 0 ||
        (g = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
        (g = gnutls_x509_crt_init(&crt)) < 0)
        goto gerr;
    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
    serial[0] &= 0x7f;
    time_t now = time(NULL);
    if ((g = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
        (g = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
        (g = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
        (g = gnutls_x509_crt_set_expiration_time(crt, now + 3650L * 86400)) < 0 ||
        (g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "otasuke box",
                                           11)) < 0 ||
        (g = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (g = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
        (g = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (g = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0)
        goto gerr;
    for (int i = 0; sans && sans[i]; i++) {
        unsigned char a[16];
        if (inet_pton(AF_INET, sans[i], a) == 1)
            g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, a, 4,
                                                     GNUTLS_FSAN_APPEND);
        else if (inet_pton(AF_INET6, sans[i], a) == 1)
            g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, a, 16,
                                                     GNUTLS_FSAN_APPEND);
        else
            g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, sans[i],
                                                     (unsigned)strlen(sans[i]),
                                                     GNUTLS_FSAN_APPEND);
        if (g < 0)
            goto gerr;
    }
    if ((g = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
        (g = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kd)) < 0 ||
        (g = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cd)) < 0)
        goto gerr;
    char *ks = datum_str(&kd), *cs = datum_str(&cd);
    kd.data = cd.data = NULL;
    if (ks && cs && write_file(key_path, ks, 0600, err, errlen) == 0 &&
        write_file(cert_path, cs, 0644, err, errlen) == 0)
        rc = 0;
    else if (!ks || !cs)
        snprintf(err, errlen, "out of memory");
    if (ks)
        explicit_bzero(ks, strlen(ks));
    free(ks);
    free(cs);
    goto out;
gerr:
    snprintf(err, errlen, "generating the certificate: %s", gnutls_strerror(g));
out:
    gnutls_free(kd.data);
    gnutls_free(cd.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

int webd_tls_load(struct webd *w, const char *cert_path, const char *key_path,
                  const char *const *sans, char *err, size_t errlen)
{
    struct stat sc, sk;
    int hc = stat(cert_path, &sc) == 0, hk = stat(key_path, &sk) == 0;
    if (hc != hk) {
        snprintf(err, errlen, "%s exists but %s does not: restore the missing file or remove "
                 "both to generate a new certificate", hc ? cert_path : key_path,
                 hc ? key_path : cert_path);
        return -1;
    }
    if (!hc && generate(cert_path, key_path, sans, err, errlen) < 0)
        return -1;
    if (hk && (sk.st_mode & 077)) {
        snprintf(err, errlen, "%s: key readable by others (mode %03o); chmod 600 it",
                 key_path, (unsigned)(sk.st_mode & 0777));
        return -1;
    }
    w->cert_pem = slurp(cert_path, err, errlen);
    w->key_pem = w->cert_pem ? slurp(key_path, err, errlen) : NULL;
    if (!w->key_pem)
        return -1;
    gnutls_x509_crt_t crt;
    gnutls_datum_t d = { (unsigned char *)w->cert_pem, (unsigned)strlen(w->cert_pem) };
    unsigned char fp[32];
    size_t fl = sizeof fp;
    int g;
    if ((g = gnutls_x509_crt_init(&crt)) < 0)
        goto gerr;
    g = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    if (g >= 0)
        g = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fl);
    gnutls_x509_crt_deinit(crt);
    if (g < 0)
        goto gerr;
    for (size_t i = 0; i < fl; i++)
        snprintf(w->fingerprint + i * 3, sizeof w->fingerprint - i * 3, "%02X%s", fp[i],
                 i + 1 < fl ? ":" : "");
    return 0;
gerr:
    snprintf(err, errlen, "%s: not a PEM certificate: %s", cert_path, gnutls_strerror(g));
    return -1;
}
