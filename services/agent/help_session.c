/* Remote help, box side. Only an owner's explicit consent (API / CLI) starts one: the box
 * makes a fresh key, asks its hub to certify it for `minutes`, and runs the OpenSSH client
 * with a single reverse forward of the web UI port to the bastion. The owner ends it at
 * any time; the tick ends it at expiry; the ssh process is this agent's child, so nothing
 * outlives the agent's knowledge. Start and end are audited and on the incident timeline. */
#include "help.h"
#include "errbuf.h"
#include "hubclient.h"
#include "incidents.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int run(char *const argv[])
{
    pid_t pid;
    int st = -1;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    waitpid(pid, &st, 0);
    return st == 0 ? 0 : -1;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fchmod(fileno(f), mode);
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int64_t live_session(sqlite3 *db, int64_t id, pid_t *pid)
{
    sqlite3_stmt *st;
    int64_t sid = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, pid FROM help_sessions WHERE incident_id=? AND ended=0",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        sid = sqlite3_column_int64(st, 0);
        if (pid)
            *pid = (pid_t)sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return sid;
}

static void end_row(sqlite3 *db, int64_t sid, int64_t id, const char *who, const char *reason,
                    int64_t now)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE help_sessions SET ended=?, end_reason=? WHERE id=?", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, sid);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    json_t *after = json_pack("{s:I,s:s}", "incident", (json_int_t)id, "reason", reason);
    agent_audit(db, who, "incident.remote_end", 0, "ok", reason, NULL, after);
    json_decref(after);
    /* The timeline is read by the owner (and his insurer): both languages, plain words. */
    static const char *const words[][2] = {
        { "expired", "expired: the time the owner agreed to is over, the helper's access is "
                     "closed / 期限切れ：同意した時間が終わったため、サポート担当者の接続を閉じました" },
        { "ended by the owner", "ended by the owner / 所有者が終了しました" },
        { "tunnel closed", "the connection to the helper closed / サポート担当者との接続が切れました" },
    };
    char other[300];
    snprintf(other, sizeof other, "%s / リモートサポートを終了しました（%s）", reason, reason);
    const char *text = other;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(reason, words[i][0]))
            text = words[i][1];
    incident_note(db, id, who, "remote_help_ended", text, now);
}

int help_session_start(sqlite3 *db, const char *hub_state, const char *work_dir, int64_t id,
                       const char *who, int consent, int lifetime_s, int ui_port, int64_t now,
                       char *err, size_t errlen)
{
    if (!consent)
        return errbuf_set(err, errlen, "consent: the owner's consent is required to let a "
                          "helper in (\"consent\": true)");
    if (lifetime_s < HELP_SESSION_MIN_S || lifetime_s > HELP_SESSION_MAX_S)
        return errbuf_set(err, errlen, "minutes: 1 to 240 (default 60), or seconds: %d to %d",
                          HELP_SESSION_MIN_S, HELP_SESSION_MAX_S);
    /* The hub certifies whole minutes; the box ends the tunnel at the second asked for. */
    int minutes = (lifetime_s + 59) / 60;
    if (ui_port < 1 || ui_port > 65535)
        return errbuf_set(err, errlen, "ui_port: 1 to 65535");
    json_t *inc = incident_get(db, id, err, errlen);
    if (!inc)
        return -1;
    int resolved = !strcmp(json_string_value(json_object_get(inc, "state")), "resolved");
    json_decref(inc);
    if (resolved)
        return errbuf_set(err, errlen, "incident %lld is resolved", (long long)id);
    if (live_session(db, id, NULL))
        return errbuf_set(err, errlen, "incident %lld already has a remote-help session: "
                          "end it first", (long long)id);
    char dir[512], key[600], pub[620], cert[640], kh[600], e2[AGENT_ERR];
    snprintf(dir, sizeof dir, "%s/help", work_dir);
    mkdir(dir, 0700);
    snprintf(key, sizeof key, "%s/session_key", dir);
    snprintf(pub, sizeof pub, "%s.pub", key);
    snprintf(cert, sizeof cert, "%s-cert.pub", key);
    snprintf(kh, sizeof kh, "%s/known_hosts", dir);
    unlink(key);
    unlink(pub);
    char *kg[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "otasuke-help", "-f",
                   key, NULL };
    if (run(kg) < 0)
        return errbuf_set(err, errlen, "ssh-keygen failed: is openssh-client installed?");
    FILE *f = fopen(pub, "r");
    char pk[256] = "";
    if (!f || !fgets(pk, sizeof pk, f)) {
        if (f)
            fclose(f);
        return errbuf_set(err, errlen, "%s: unreadable", pub);
    }
    fclose(f);
    pk[strcspn(pk, "\n")] = '\0';
    struct stat sb;
    struct hubclient *hc = stat(hub_state, &sb) == 0 ? hubclient_open(hub_state, e2, sizeof e2) : NULL;
    struct hubclient_info info;
    if (hc)
        hubclient_info(hc, &info);
    if (!hc || !info.enrolled) {
        hubclient_close(hc);
        return errbuf_set(err, errlen, "hub client state %s: not enrolled: enrol the box first",
                          hub_state);
    }
    json_t *req = json_pack("{s:s,s:i}", "pubkey", pk, "minutes", minutes);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct hubclient_http r;
    memset(&r, 0, sizeof r);
    int rc = hubclient_request(hc, "POST", "/v1/help/session", body, 1, &r, e2, sizeof e2);
    free(body);
    char host[256] = "";
    const char *u = info.url ? strstr(info.url, "://") : NULL;
    if (u) {
        u += 3;
        size_t n = *u == '[' ? strcspn(u + 1, "]") : strcspn(u, ":/");
        snprintf(host, sizeof host, "%.*s", (int)n, *u == '[' ? u + 1 : u);
    }
    hubclient_close(hc);
    if (rc < 0)
        return errbuf_set(err, errlen, "hub: %s", e2);
    if (r.status != 200) {
        hubclient_http_error(&r, "remote-help session", e2, sizeof e2);
        hubclient_http_free(&r);
        return errbuf_set(err, errlen, "%s", e2);
    }
    json_t *a = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
    hubclient_http_free(&r);
    const char *c = json_string_value(json_object_get(a, "certificate"));
    const char *user = json_string_value(json_object_get(a, "user"));
    const char *hk = json_string_value(json_object_get(a, "host_key"));
    int lport = (int)json_integer_value(json_object_get(a, "listen_port"));
    int sport = (int)json_integer_value(json_object_get(a, "ssh_port"));
    char line[700];
    snprintf(line, sizeof line, "[%s]:%d %s", host, sport, hk ? hk : "");
    if (!c || !user || !hk || lport <= 0 || sport <= 0 || !*host ||
        write_text(cert, c, 0600) < 0 || write_text(kh, line, 0600) < 0) {
        json_decref(a);
        return errbuf_set(err, errlen, "hub: incomplete remote-help answer");
    }
    char fwd[64], dest[300], portarg[16], certopt[700], khopt[700];
    snprintf(fwd, sizeof fwd, "%d:127.0.0.1:%d", lport, ui_port);
    snprintf(dest, sizeof dest, "%s@%s", user, host);
    snprintf(portarg, sizeof portarg, "%d", sport);
    snprintf(certopt, sizeof certopt, "CertificateFile=%s", cert);
    snprintf(khopt, sizeof khopt, "UserKnownHostsFile=%s", kh);
    json_decref(a);
    char *ssh[] = { "ssh", "-N", "-T", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                    "-o", "StrictHostKeyChecking=yes", "-o", khopt, "-o", "IdentitiesOnly=yes",
                    "-o", "ServerAliveInterval=15", "-o", certopt, "-i", key, "-p", portarg,
                    "-R", fwd, "-F", "/dev/null", dest, NULL };
    pid_t pid;
    if (posix_spawnp(&pid, "ssh", NULL, NULL, ssh, environ) != 0)
        return errbuf_set(err, errlen, "ssh: cannot start: is openssh-client installed?");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO help_sessions(incident_id, who, started, expires, pid,"
                           " port) VALUES (?,?,?,?,?,?)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, now + lifetime_s);
        sqlite3_bind_int(st, 5, pid);
        sqlite3_bind_int(st, 6, lport);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    char detail[400];
    int unit_min = lifetime_s % 60 == 0;
    snprintf(detail, sizeof detail, "owner consented: %d %s, web UI port %d via bastion port "
             "%d / 所有者が同意しました：%d%s、管理画面（ポート%d）を中継ポート%d経由で",
             unit_min ? lifetime_s / 60 : lifetime_s, unit_min ? "minutes" : "seconds", ui_port,
             lport, unit_min ? lifetime_s / 60 : lifetime_s, unit_min ? "分間" : "秒間", ui_port,
             lport);
    json_t *after = json_pack("{s:I,s:i,s:i,s:i}", "incident", (json_int_t)id, "minutes",
                              minutes, "seconds", lifetime_s, "bastion_port", lport);
    agent_audit(db, who, "incident.remote_start", 0, "ok", NULL, NULL, after);
    json_decref(after);
    incident_note(db, id, who, "remote_help_started", detail, now);
    incident_transition(db, id, who, "helper_connected", detail, now, e2, sizeof e2);
    return lport;
}

int help_session_stop(sqlite3 *db, int64_t id, const char *who, const char *reason,
                      int64_t now, char *err, size_t errlen)
{
    pid_t pid = 0;
    int64_t sid = live_session(db, id, &pid);
    if (!sid)
        return errbuf_set(err, errlen, "incident %lld has no remote-help session", (long long)id);
    if (pid > 0 && kill(pid, SIGTERM) == 0)
        waitpid(pid, NULL, 0);
    end_row(db, sid, id, who, reason, now);
    return 0;
}

void help_session_tick(sqlite3 *db, int64_t now)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, incident_id, pid, expires FROM help_sessions WHERE"
                           " ended=0", -1, &st, NULL) != SQLITE_OK)
        return;
    struct { int64_t sid, id, expires; pid_t pid; } s[16];
    int n = 0;
    while (n < 16 && sqlite3_step(st) == SQLITE_ROW) {
        s[n].sid = sqlite3_column_int64(st, 0);
        s[n].id = sqlite3_column_int64(st, 1);
        s[n].pid = (pid_t)sqlite3_column_int(st, 2);
        s[n].expires = sqlite3_column_int64(st, 3);
        n++;
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        int gone = s[i].pid <= 0 || waitpid(s[i].pid, NULL, WNOHANG) == s[i].pid;
        if (!gone && now >= s[i].expires) {
            kill(s[i].pid, SIGTERM);
            waitpid(s[i].pid, NULL, 0);
            end_row(db, s[i].sid, s[i].id, "box", "expired", now);
        } else if (gone) {
            end_row(db, s[i].sid, s[i].id, "box", "tunnel closed", now);
        }
    }
}
