/* otasukectl hub: enrol this box with a hub and look at / drive the hub link by hand.
 * The agent does the same through hubclient.h when it runs; these commands exist for
 * first setup, support and tests. Output is JSON on stdout. */
#include "cli.h"
#include "cli_agent.h"
#include "hubclient.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HUB_STATE_DEFAULT "/var/lib/otasuke/hub"

static const char hub_usage[] =
    "hub enroll URL CODE [--cacert FILE] [--name NAME] | status | sync [--url URL] |\n"
    "       watch [--seconds N] [--updates N] | heartbeat [--version V] |\n"
    "       contribute VALUE --category CAT [--kind K] [--count N] |\n"
    "       report-fp VALUE [--kind K] | entries | policy [--after ID]\n"
    "       (all take --state DIR)\n"
    "       sharing [on|off] [--interval SECONDS]   the running agent's contributions:\n"
    "       switch, pending, last sent, policy verdicts (takes --socket, --json)";

struct hub_args {
    const char *state, *cacert, *name, *url, *category, *kind, *version;
    long seconds, updates, count, after;
    char *pos[3];
    int npos;
};

static int parse(int argc, char **argv, struct hub_args *a)
{
    memset(a, 0, sizeof *a);
    a->state = getenv("OTASUKE_HUB_STATE") ? getenv("OTASUKE_HUB_STATE") : HUB_STATE_DEFAULT;
    a->kind = "domain";
    a->count = 1;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (strncmp(k, "--", 2) != 0) {
            if (a->npos >= 3)
                return -1;
            a->pos[a->npos++] = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        if (!strcmp(k, "--state")) a->state = v;
        else if (!strcmp(k, "--cacert")) a->cacert = v;
        else if (!strcmp(k, "--name")) a->name = v;
        else if (!strcmp(k, "--url")) a->url = v;
        else if (!strcmp(k, "--category")) a->category = v;
        else if (!strcmp(k, "--kind")) a->kind = v;
        else if (!strcmp(k, "--version")) a->version = v;
        else if (!strcmp(k, "--seconds")) a->seconds = atol(v);
        else if (!strcmp(k, "--updates")) a->updates = atol(v);
        else if (!strcmp(k, "--count")) a->count = atol(v);
        else if (!strcmp(k, "--after")) a->after = atol(v);
        else
            return -1;
    }
    return 0;
}

static int print_policy(long long id, const char *signer, const char *change,
                        const char *signature, void *ctx)
{
    json_t *arr = ctx;
    json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id,
                                         "signer", signer, "change", change, "signature",
                                         signature));
    return 0;
}

static void policy_notice(long long id, void *ctx)
{
    (void)ctx;
    printf("{\"policy\":%lld}\n", id);
    fflush(stdout);
}

static int print_status(struct hubclient *hc)
{
    struct hubclient_info in;
    hubclient_info(hc, &in);
    long long now = (long long)time(NULL);
    json_t *o = json_pack("{s:b}", "enrolled", in.enrolled);
    if (in.enrolled) {
        json_object_set_new(o, "hub", json_string(in.url));
        json_object_set_new(o, "box_id", json_integer(in.box_id));
        json_object_set_new(o, "feed", json_string(in.feed_id));
        json_object_set_new(o, "feed_key", json_string(in.feed_key_id));
        json_object_set_new(o, "seq", json_integer((json_int_t)in.seq));
        /* Staleness: how long since the hub was last heard and how old the feed is. */
        json_object_set_new(o, "last_sync_age", in.last_sync ? json_integer(now - in.last_sync)
                                                             : json_null());
        json_object_set_new(o, "feed_age", in.feed_created ? json_integer(now - in.feed_created)
                                                           : json_null());
        json_object_set_new(o, "last_error", json_string(in.last_error));
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    puts(s ? s : "{}");
    free(s);
    return 0;
}

/* otasukectl hub sharing [on|off] [--interval N]: the agent's GET / PUT /v1/hub. */
static int hub_sharing(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    json_t *body = NULL;
    for (int i = 1; i < argc; i++) {
        if (!body)
            body = json_object();
        if (!strcmp(argv[i], "on") || !strcmp(argv[i], "off")) {
            json_object_set_new(body, "sharing", json_boolean(!strcmp(argv[i], "on")));
        } else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 3600) {
                json_decref(body);
                return cli_usage("--interval: seconds between contributions, 1..3600");
            }
            json_object_set_new(body, "interval_seconds", json_integer(v));
        } else {
            json_decref(body);
            return cli_usage("%s", hub_usage);
        }
    }
    return cli_call(&o, body ? "PUT" : "GET", "/v1/hub", body, NULL);
}

int cli_hub(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "sharing"))
        return hub_sharing(argc, argv);
    struct hub_args a;
    if (argc < 1 || parse(argc, argv, &a) < 0)
        return cli_usage("%s", hub_usage);
    const char *cmd = argv[0];
    if (!strcmp(cmd, "help")) {
        printf("usage: otasukectl %s\n", hub_usage);
        return 0;
    }
    char err[400];
    struct hubclient *hc = hubclient_open(a.state, err, sizeof err);
    if (!hc)
        return cli_fail("%s", err);
    if (a.url)
        hubclient_set_url(hc, a.url);
    int rc = 0;
    if (!strcmp(cmd, "enroll") && a.npos == 2) {
        /* Without --cacert the system's CAs decide; a self-signed hub then fails the
         * TLS check, and the message says to pass its certificate. */
        if (hubclient_enroll(hc, a.pos[0], a.pos[1], a.cacert, a.name ? a.name : "box",
                                    "otasuke", err, sizeof err) < 0) {
            rc = cli_fail("%s", err);
        } else {
            rc = print_status(hc);
        }
    } else if (!strcmp(cmd, "status") && a.npos == 0) {
        rc = print_status(hc);
    } else if (!strcmp(cmd, "sync") && a.npos == 0) {
        int upd = 0;
        int r = hubclient_sync(hc, hubclient_store_apply, hc, &upd, err, sizeof err);
        if (r != FEED_OK)
            rc = cli_fail("%s", err);
        else {
            struct hubclient_info in;
            hubclient_info(hc, &in);
            printf("{\"updated\":%s,\"seq\":%llu}\n", upd ? "true" : "false",
                   (unsigned long long)in.seq);
        }
    } else if (!strcmp(cmd, "watch") && a.npos == 0) {
        hubclient_set_policy_notify(hc, policy_notice, NULL);
        int n = hubclient_watch(hc, hubclient_store_apply, hc, a.seconds > 0 ? (int)a.seconds
                                : 60, (int)a.updates, err, sizeof err);
        if (n < 0)
            rc = cli_fail("%s", err);
        else {
            struct hubclient_info in;
            hubclient_info(hc, &in);
            printf("{\"updates\":%d,\"seq\":%llu}\n", n, (unsigned long long)in.seq);
        }
    } else if (!strcmp(cmd, "heartbeat") && a.npos == 0) {
        struct hubclient_heartbeat hb = { a.version ? a.version : "otasuke", 0, NULL, 0 };
        long long hs = 0;
        if (hubclient_heartbeat(hc, &hb, &hs, err, sizeof err) < 0)
            rc = cli_fail("%s", err);
        else
            printf("{\"hub_seq\":%lld}\n", hs);
    } else if (!strcmp(cmd, "contribute") && a.npos == 1 && a.category) {
        struct hubclient_indicator v = { a.pos[0], a.kind, a.category, a.count, 0, 0 };
        int promoted = 0;
        if (hubclient_contribute(hc, &v, 1, &promoted, err, sizeof err) < 0)
            rc = cli_fail("%s", err);
        else
            printf("{\"promoted\":%d}\n", promoted);
    } else if (!strcmp(cmd, "report-fp") && a.npos == 1) {
        if (hubclient_report_fp(hc, a.pos[0], a.kind, err, sizeof err) < 0)
            rc = cli_fail("%s", err);
        else
            printf("{\"reported\":true}\n");
    } else if (!strcmp(cmd, "policy") && a.npos == 0) {
        /* Shown, not applied: applying needs the owner's grants, which the agent holds. */
        json_t *arr = json_array();
        if (hubclient_policy_fetch(hc, a.after, print_policy, arr, err, sizeof err) < 0) {
            rc = cli_fail("%s", err);
        } else {
            char *s = json_dumps(arr, JSON_INDENT(1));
            puts(s ? s : "[]");
            free(s);
        }
        json_decref(arr);
    } else if (!strcmp(cmd, "entries") && a.npos == 0) {
        json_t *o = json_load_file(hubclient_store_path(hc), 0, NULL);
        char *s = json_dumps(o ? o : json_object(), JSON_INDENT(1) | JSON_SORT_KEYS);
        puts(s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        rc = cli_usage("%s", hub_usage);
    }
    hubclient_close(hc);
    return rc;
}
