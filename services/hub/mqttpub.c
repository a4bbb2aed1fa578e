/* MQTT side of the hub: the broker's password and ACL files (generated from the boxes
 * table, hashed the way mosquitto_passwd does) and the publisher that tells boxes
 * "seq N is out" on feed/<id>. The message is retained, so a box that connects later
 * learns the latest seq on subscribe. */
#include "hubd.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct pwfile { FILE *f; int fail; };

static int pw_row(int n, const char *const *v, void *ctx)
{
    struct pwfile *p = ctx;
    if (n >= 2 && v[0] && v[1] && fprintf(p->f, "%s:%s\n", v[0], v[1]) < 0)
        p->fail = 1;
    return 0;
}

/* Creates the file readable by the broker's group when it runs as user mosquitto. */
static FILE *open_tmp(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct group *g = getgrnam("mosquitto");
    if (g && geteuid() == 0 && fchown(fd, 0, g->gr_gid) < 0) {
        snprintf(err, errlen, "%s: chown: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    if (!f)
        close(fd);
    return f;
}

static int finish(FILE *f, const char *tmp, const char *path, char *err, size_t errlen)
{
    if (fflush(f) != 0 || fsync(fileno(f)) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        return -1;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The hub's own broker password, kept in clear (0600) because hubd must log in with it. */
static int hub_pass(struct hub *h, char *pass, size_t passlen, char *err, size_t errlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/hubd.pass", h->mqtt_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fgets(pass, (int)passlen, f) != NULL;
        fclose(f);
        pass[strcspn(pass, "\n")] = '\0';
        if (ok && strlen(pass) == HUB_TOKEN_HEX)
            return 0;
        snprintf(err, errlen, "%s: unreadable; remove it to make a new one", path);
        return -1;
    }
    hub_random_hex(32, pass);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, pass, strlen(pass)) < 0 || close(fd) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* 1: pid is a mosquitto that catches SIGHUP; 0: a mosquitto still starting (SIGHUP not
 * caught yet); -2: no such process, or not a mosquitto (stale pid file); -1: /proc
 * cannot tell. */
static int broker_ready(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? -2 : -1;
    int name_ok = 0, caught = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long mask;
        if (!strncmp(line, "Name:", 5))
            name_ok = strstr(line, "mosquitto") != NULL;
        else if (sscanf(line, "SigCgt: %llx", &mask) == 1)
            caught = (mask >> (SIGHUP - 1)) & 1;
    }
    fclose(f);
    return !name_ok ? -2 : caught;
}

/* SIGHUP makes mosquitto re-read its password and ACL files -- and drop connected clients
 * whose login is gone (Debian 12's 2.0.11 does; tests/bats/agent_hub_share.bats checks).
 * But the broker writes its pid file before it installs its handler: a SIGHUP in that
 * window kills it (default action), which a hubd started right after its broker used to
 * do now and then. So wait until it catches SIGHUP (at most 3 s; the new files are in
 * place already, so a broker still starting reads them anyway), and never signal a pid
 * that is not a mosquitto (a stale pid file). */
static void broker_reload(pid_t pid)
{
    for (int i = 0; i < 60; i++) {
        int r = broker_ready(pid);
        if (r == -2)
            return;
        if (r != 0) {   /* ready, or no /proc to ask: signal as before */
            kill(pid, SIGHUP);
            return;
        }
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

int hub_mqtt_write_files(struct hub *h, char *err, size_t errlen)
{
    /* Group-writable: the broker writes its pid file here after dropping to user
     * mosquitto. It could replace passwd, but it is the one enforcing it anyway. */
    if (mkdir(h->mqtt_dir, 0770) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", h->mqtt_dir, strerror(errno));
        return -1;
    }
    struct group *g = getgrnam("mosquitto");
    if (g && geteuid() == 0 && (chown(h->mqtt_dir, 0, g->gr_gid) < 0 ||
                                chmod(h->mqtt_dir, 0770) < 0)) {
        snprintf(err, errlen, "%s: chown: %s", h->mqtt_dir, strerror(errno));
        return -1;
    }
    char pass[HUB_TOKEN_HEX + 1], hash[200], path[600], tmp[620];
    if (hub_pass(h, pass, sizeof pass, err, errlen) < 0 ||
        hub_mqtt_pwhash(pass, hash, sizeof hash) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/passwd", h->mqtt_dir);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());   /* admin and hubd may race */
    struct pwfile p = { open_tmp(tmp, err, errlen), 0 };
    if (!p.f)
        return -1;
    fprintf(p.f, "hubd:%s\n", hash);
    if (hubdb_exec(h->db, "SELECT mqtt_user, mqtt_pwhash FROM boxes WHERE revoked IS NULL",
                   0, NULL, pw_row, &p, err, errlen) < 0 || p.fail) {
        if (p.fail)
            snprintf(err, errlen, "%s: write failed", tmp);
        fclose(p.f);
        return -1;
    }
    if (finish(p.f, tmp, path, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/acl", h->mqtt_dir);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());   /* admin and hubd may race */
    FILE *f = open_tmp(tmp, err, errlen);
    if (!f)
        return -1;
    /* Patterns apply to every user: a box reads its own topic tree and the feed. */
    fprintf(f, "# generated by otasuke-hubd; edits are overwritten\n"
               "pattern read box/%%u/#\n"
               "pattern read feed/%s\n\n"
               "user hubd\n"
               "topic write feed/#\n"
               "topic write box/#\n", h->o.feed_id);
    if (finish(f, tmp, path, err, errlen) < 0)
        return -1;
    /* Tell a running broker to re-read them. */
    snprintf(path, sizeof path, "%s/mosquitto.pid", h->mqtt_dir);
    FILE *pf = fopen(path, "r");
    if (pf) {
        long pid = 0;
        if (fscanf(pf, "%ld", &pid) == 1 && pid > 1)
            broker_reload((pid_t)pid);
        fclose(pf);
    }
    return 0;
}

static struct mosquitto *mq;
static int mq_connected;
static long long mq_next_try;
static char mq_host[128];
static int mq_port;

static void on_connect(struct mosquitto *m, void *ctx, int rc)
{
    (void)m; (void)ctx;
    mq_connected = rc == 0;
    if (rc)
        log_warn("MQTT broker refused hubd: %s (retrying every second)",
                 mosquitto_connack_string(rc));
    else
        log_info("MQTT: connected to the broker at %s:%d", mq_host, mq_port);
}

static void on_disconnect(struct mosquitto *m, void *ctx, int rc)
{
    (void)m; (void)ctx;
    if (mq_connected)
        log_warn("MQTT: lost the broker (%s); reconnecting", rc ? mosquitto_strerror(rc)
                 : "closed");
    mq_connected = 0;
}

int hub_mqtt_start(struct hub *h, char *err, size_t errlen)
{
    char pass[HUB_TOKEN_HEX + 1];
    if (hub_pass(h, pass, sizeof pass, err, errlen) < 0)
        return -1;
    mosquitto_lib_init();
    char id[32], rnd[9];
    hub_random_hex(4, rnd);
    snprintf(id, sizeof id, "hubd-%s", rnd);
    mq = mosquitto_new(id, true, NULL);
    if (!mq) {
        snprintf(err, errlen, "mosquitto_new failed");
        return -1;
    }
    mosquitto_username_pw_set(mq, "hubd", pass);
    mosquitto_connect_callback_set(mq, on_connect);
    mosquitto_disconnect_callback_set(mq, on_disconnect);
    snprintf(mq_host, sizeof mq_host, "%s", h->o.mqtt_host);
    mq_port = h->o.mqtt_port;
    mq_next_try = 0;
    return 0;
}

int hub_mqtt_poll(void)
{
    if (!mq)
        return 0;
    /* Driven from hubd's 50 ms tick rather than a library thread: one place decides
     * when to reconnect, and a broker that starts after hubd is simply picked up. */
    long long now = hub_now();
    if (!mq_connected && now >= mq_next_try) {
        mq_next_try = now + 1;
        if (mosquitto_connect(mq, mq_host, mq_port, 30) != MOSQ_ERR_SUCCESS)
            return 0;
    }
    int rc = mosquitto_loop(mq, 0, 10);
    if (rc != MOSQ_ERR_SUCCESS)
        mq_connected = 0;
    return mq_connected;
}

int hub_mqtt_notify(struct hub *h, unsigned long long seq, const struct hub_doc *inline_doc)
{
    if (!mq || !mq_connected)
        return -1;
    char topic[FEED_ID_MAX + 8];
    snprintf(topic, sizeof topic, "feed/%s", h->o.feed_id);
    /* "seq N" alone, or followed by a small delta and its signature so boxes at the
     * delta's base skip the HTTPS round trip. */
    size_t cap = 64 + (inline_doc ? inline_doc->siglen + inline_doc->len : 0);
    char *msg = malloc(cap);
    if (!msg)
        return -1;
    int n = snprintf(msg, cap, "seq %llu\n", seq);
    if (inline_doc) {
        memcpy(msg + n, inline_doc->sig, inline_doc->siglen);
        n += (int)inline_doc->siglen;
        memcpy(msg + n, inline_doc->text, inline_doc->len);
        n += (int)inline_doc->len;
    }
    int rc = mosquitto_publish(mq, NULL, topic, n, msg, 1, true);
    free(msg);
    if (rc == MOSQ_ERR_SUCCESS)
        mosquitto_loop(mq, 0, 10);   /* get it on the wire now, not at the next tick */
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int hub_mqtt_box_notify(const char *mqtt_user, long id)
{
    if (!mq || !mq_connected)
        return -1;
    char topic[80], msg[40];
    snprintf(topic, sizeof topic, "box/%s/policy", mqtt_user);
    int n = snprintf(msg, sizeof msg, "policy %ld", id);
    int rc = mosquitto_publish(mq, NULL, topic, n, msg, 1, false);
    if (rc == MOSQ_ERR_SUCCESS)
        mosquitto_loop(mq, 0, 10);
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

void hub_mqtt_stop(void)
{
    if (!mq)
        return;
    if (mq_connected) {
        mq_connected = 0;   /* leaving on purpose: not a "lost the broker" */
        mosquitto_disconnect(mq);
        mosquitto_loop(mq, 100, 1);
    }
    mosquitto_destroy(mq);
    mq = NULL;
    mosquitto_lib_cleanup();
}
