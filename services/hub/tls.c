/* Self-signed TLS certificate for a hub that has none, made with the GnuTLS library
 * that libmicrohttpd already links (no certtool / gnutls-bin package, no shell-out).
 * ECDSA P-256: a handshake costs a fraction of RSA-2048's on the hub's CPU, which is
 * what matters when thousands of boxes reconnect at once. Operators replace the two
 * files with a CA-issued pair at any time; boxes pin the certificate they are given. */
#include "atomicfile.h"
#include "hubd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int hub_tls_ensure(const char *state_dir, const char *hosts, char *err, size_t errlen)
{
    char dir[512], certp[600], keyp[600];
    snprintf(dir, sizeof dir, "%s/tls", state_dir);
    snprintf(certp, sizeof certp, "%s/cert.pem", dir);
    snprintf(keyp, sizeof keyp, "%s/key.pem", dir);
    if (access(certp, R_OK) == 0 && access(keyp, R_OK) == 0)
        return 0;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t kout = { 0 }, cout = { 0 };
    int rc = -1, g;
    if ((g = gnutls_x509_privkey_init(&key)) < 0 ||
        (g = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                          0)) < 0 ||
        (g = gnutls_x509_crt_init(&crt)) < 0)
        goto gnutls_fail;
    unsigned char serial[16];
    if ((g = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
        goto gnutls_fail;
    serial[0] &= 0x7f;
    time_t now = time(NULL);
    if ((g = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
        (g = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
        (g = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
        (g = gnutls_x509_crt_set_expiration_time(crt, now + 5L * 365 * 86400)) < 0 ||
        (g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                           "otasuke-hub", 11)) < 0 ||
        (g = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (g = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
        (g = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (g = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0)
        goto gnutls_fail;
    /* Subject alternative names: every host the boxes may use to reach this hub. */
    char list[512];
    snprintf(list, sizeof list, "%s", hosts && *hosts ? hosts : "127.0.0.1,localhost");
    char *save = NULL;
    for (char *hname = strtok_r(list, ",", &save); hname; hname = strtok_r(NULL, ",", &save)) {
        unsigned char ip[16];
        if (inet_pton(AF_INET, hname, ip) == 1)
            g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
                                                     GNUTLS_FSAN_APPEND);
        else if (inet_pton(AF_INET6, hname, ip) == 1)
            g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
                                                     GNUTLS_FSAN_APPEND);
        else
            g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, hname,
                                                     (unsigned)strlen(hname),
                                                     GNUTLS_FSAN_APPEND);
        if (g < 0)
            goto gnutls_fail;
    }
    if ((g = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
        (g = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kout)) < 0 ||
        (g = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cout)) < 0)
        goto gnutls_fail;
    if (atomic_write_file(keyp, kout.data, kout.size, 0600, err, errlen) == 0 &&
        atomic_write_file(certp, cout.data, cout.size, 0644, err, errlen) == 0)
        rc = 0;
    goto out;
gnutls_fail:
    snprintf(err, errlen, "making a self-signed certificate: %s", gnutls_strerror(g));
out:
    gnutls_free(kout.data);
    gnutls_free(cout.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}
