/* otasukectl incident: list, show, ack, resolve, contain/release, report (Markdown/HTML),
 * help (call for help), self-report, settings — all through the agent's /v1/incidents. */
#include "cli.h"
#include "cli_agent.h"
#include "apiclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *use =
    "otasukectl incident list [--state S] | show N | ack N [NOTE] | resolve N [NOTE]\n"
    "       | contain N | release N | help N [NOTE] | report N [--format md|html] [--lang en|ja] [-o FILE]\n"
    "       | self-report NOTE [--device ADDR] [--by NAME] | settings [KEY=VALUE]...\n"
    "       | remote N --consent [--minutes M | --seconds S] [--ui-port P] | remote-end N";

static int positive_id(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return *s && !*end && v > 0;
}

static void print_one(json_t *inc)
{
    if (!json_object_get(inc, "timeline")) {
        cli_print_human(inc);
        return;
    }
    printf("incident %lld: %s\n", (long long)json_integer_value(json_object_get(inc, "id")),
           json_string_value(json_object_get(json_object_get(inc, "title"), "en")));
    printf("  %s\n", json_string_value(json_object_get(json_object_get(inc, "title"), "ja")));
    const char *keys[] = { "kind", "device", "label", "severity", "state", "count" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(inc, keys[i]);
        if (json_is_integer(v))
            printf("%-9s %lld\n", keys[i], (long long)json_integer_value(v));
        else
            printf("%-9s %s\n", keys[i], json_string_value(v) ? json_string_value(v) : "-");
    }
    printf("%-9s %s\n", "contained", json_is_true(json_object_get(inc, "quarantined")) ? "yes" : "no");
    printf("advice    %s\ntimeline:\n",
           json_string_value(json_object_get(json_object_get(inc, "advice"), "en")));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(inc, "timeline"), i, e) {
        time_t t = (time_t)json_integer_value(json_object_get(e, "at"));
        struct tm tm;
        char ts[32] = "-";
        if (gmtime_r(&t, &tm))
            strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%SZ", &tm);
        printf("  %s  %-10s %-16s %s\n", ts, json_string_value(json_object_get(e, "who")),
               json_string_value(json_object_get(e, "what")),
               json_string_value(json_object_get(e, "detail")));
    }
}

static void print_thanks(json_t *a)
{
    printf("incident %lld opened.\n%s\n%s\n", (long long)json_integer_value(json_object_get(a, "id")),
           json_string_value(json_object_get(json_object_get(a, "thanks"), "en")),
           json_string_value(json_object_get(json_object_get(a, "thanks"), "ja")));
}

static int report(struct cli_online *o, int argc, char **argv)
{
    const char *fmt = "md", *lang = "en", *out = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc)
            fmt = argv[++i];
        else if (!strcmp(argv[i], "--lang") && i + 1 < argc)
            lang = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else
            return cli_usage("%s", use);
    }
    char path[160], efmt[16], elang[16], err[256];
    if (apiclient_escape(fmt, efmt, sizeof efmt) < 0 || apiclient_escape(lang, elang, sizeof elang) < 0)
        return cli_usage("--format md|html, --lang en|ja");
    snprintf(path, sizeof path, "/v1/incidents/%s/report?format=%s&lang=%s", argv[1], efmt, elang);
    char *resp = NULL;
    long st = apiclient_request(apiclient_socket(o->socket), "GET", path, NULL, 0, &resp, err,
                                sizeof err);
    if (st < 0)
        return cli_fail("%s", err);
    if (st != 200) {
        json_t *j = json_loads(resp ? resp : "", 0, NULL);
        int rc = cli_fail("%s", j ? json_string_value(json_object_get(j, "error")) : resp);
        json_decref(j);
        free(resp);
        return rc;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        free(resp);
        return cli_fail("%s: cannot write: check the directory exists and is writable", out);
    }
    fputs(resp, f);
    free(resp);
    if (out && fclose(f) != 0)
        return cli_fail("%s: write failed", out);
    return 0;
}

int cli_incident(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    if (argc < 1)
        return cli_usage("%s", use);
    const char *cmd = argv[0];
    char path[128];
    if (!strcmp(cmd, "list")) {
        if (argc == 3 && !strcmp(argv[1], "--state")) {
            char e[64];
            if (apiclient_escape(argv[2], e, sizeof e) < 0)
                return cli_usage("%s", use);
            snprintf(path, sizeof path, "/v1/incidents?state=%s", e);
            return cli_call(&o, "GET", path, NULL, NULL);
        }
        return argc == 1 ? cli_call(&o, "GET", "/v1/incidents", NULL, NULL) : cli_usage("%s", use);
    }
    if (!strcmp(cmd, "self-report") && argc >= 2) {
        json_t *b = json_pack("{s:s}", "note", argv[1]);
        for (int i = 2; i + 1 < argc; i += 2) {
            if (!strcmp(argv[i], "--device"))
                json_object_set_new(b, "device", json_string(argv[i + 1]));
            else if (!strcmp(argv[i], "--by"))
                json_object_set_new(b, "by", json_string(argv[i + 1]));
            else {
                json_decref(b);
                return cli_usage("%s", use);
            }
        }
        return cli_call(&o, "POST", "/v1/incidents/report", b, print_thanks);
    }
    if (!strcmp(cmd, "settings")) {
        if (argc == 1)
            return cli_call(&o, "GET", "/v1/incidents/settings", NULL, NULL);
        json_t *b = json_object();
        for (int i = 1; i < argc; i++) {
            char *eq = strchr(argv[i], '=');
            if (!eq) {
                json_decref(b);
                return cli_usage("settings KEY=VALUE, e.g. notify_webhook=http://... auto_quarantine=true");
            }
            *eq = '\0';
            const char *v = eq + 1;
            char *end;
            long long n = strtoll(v, &end, 10);
            json_object_set_new(b, argv[i], !strcmp(v, "true") ? json_true()
                                : !strcmp(v, "false") ? json_false()
                                : (*v && !*end && strncmp(argv[i], "notify_", 7)) ? json_integer(n)
                                : json_string(v));
        }
        return cli_call(&o, "POST", "/v1/incidents/settings", b, NULL);
    }
    if (!strcmp(cmd, "help") && argc == 1) {
        puts(use);
        return 0;
    }
    if (argc < 2 || !positive_id(argv[1]))
        return cli_usage("%s", use);
    if (!strcmp(cmd, "show") && argc == 2) {
        snprintf(path, sizeof path, "/v1/incidents/%s", argv[1]);
        return cli_call(&o, "GET", path, NULL, print_one);
    }
    if (!strcmp(cmd, "report"))
        return report(&o, argc, argv);
    if ((!strcmp(cmd, "contain") || !strcmp(cmd, "release")) && argc == 2) {
        snprintf(path, sizeof path, "/v1/incidents/%s/contain", argv[1]);
        return cli_call(&o, "POST", path, json_pack("{s:b}", "release", !strcmp(cmd, "release")),
                        NULL);
    }
    if (!strcmp(cmd, "remote-end") && argc == 2) {
        snprintf(path, sizeof path, "/v1/incidents/%s/session", argv[1]);
        return cli_call(&o, "DELETE", path, NULL, NULL);
    }
    if (!strcmp(cmd, "remote")) {
        /* Consent is a deliberate word on the command line, never a default. */
        json_t *b = json_pack("{s:b}", "consent", 0);
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--consent"))
                json_object_set_new(b, "consent", json_true());
            else if (!strcmp(argv[i], "--minutes") && i + 1 < argc)
                json_object_set_new(b, "minutes", json_integer(atoi(argv[++i])));
            else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)   /* 10..14400 */
                json_object_set_new(b, "seconds", json_integer(atoi(argv[++i])));
            else if (!strcmp(argv[i], "--ui-port") && i + 1 < argc)
                json_object_set_new(b, "ui_port", json_integer(atoi(argv[++i])));
            else {
                json_decref(b);
                return cli_usage("%s", use);
            }
        }
        snprintf(path, sizeof path, "/v1/incidents/%s/session", argv[1]);
        return cli_call(&o, "POST", path, b, NULL);
    }
    const char *verb = !strcmp(cmd, "ack") ? "ack" : !strcmp(cmd, "resolve") ? "resolve"
                       : !strcmp(cmd, "help") ? "help" : NULL;
    if (!verb || argc > 3)
        return cli_usage("%s", use);
    snprintf(path, sizeof path, "/v1/incidents/%s/%s", argv[1], verb);
    json_t *b = argc == 3 ? json_pack("{s:s}", "note", argv[2]) : json_object();
    return cli_call(&o, "POST", path, b, print_one);
}
