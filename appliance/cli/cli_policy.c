/* otasukectl policy: the owner's filtering choices on the agent (online). */
#include "cli.h"
#include "cli_agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_text =
    "otasukectl policy groups\n"
    "otasukectl policy group NAME [--create] [--categories a,b] [--answer nxdomain|null|blockpage]\n"
    "                        [--safesearch on|off] [--networks CIDR,...]\n"
    "otasukectl policy rules\n"
    "otasukectl policy block PATTERN [--category C] [--group G] [--note TEXT]\n"
    "otasukectl policy allow PATTERN [--group G] [--minutes N] [--note TEXT]\n"
    "otasukectl policy rm-rule ID\n"
    "otasukectl policy unblock DOMAIN --minutes N|--seconds N [--group G]\n"
    "otasukectl policy schedules\n"
    "otasukectl policy schedule GROUP CATEGORY DAYS START END   e.g. staff social mon-fri 09:00 18:00\n"
    "otasukectl policy rm-schedule ID\n"
    "otasukectl policy audit [--limit N]\n"
    "otasukectl policy compile\n"
    "every command takes --json and --socket PATH";

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int has(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

/* Only known options, each with its value: a typo is an error, not silently ignored. */
static int check_opts(int argc, char **argv, int first, const char *const *known)
{
    for (int i = first; i < argc; i++) {
        int ok = 0;
        for (int k = 0; known[k]; k++)
            if (strcmp(argv[i], known[k]) == 0)
                ok = 1;
        if (!ok)
            return cli_usage("unexpected '%s'\n%s", argv[i], usage_text);
        if (strcmp(argv[i], "--create") != 0)
            i++;
        if (i >= argc)
            return cli_usage("'%s' needs a value", argv[i - 1]);
    }
    return 0;
}

static void add_str(json_t *b, const char *key, const char *v)
{
    if (v)
        json_object_set_new(b, key, json_string(v));
}

static int rule(struct cli_online *o, int argc, char **argv, const char *kind)
{
    static const char *const known[] = { "--category", "--group", "--note", "--minutes", NULL };
    int rc = check_opts(argc, argv, 2, known);
    if (rc)
        return rc;
    json_t *b = json_pack("{s:s, s:s}", "pattern", argv[1], "kind", kind);
    add_str(b, "category", opt(argc, argv, "--category"));
    add_str(b, "group", opt(argc, argv, "--group"));
    add_str(b, "note", opt(argc, argv, "--note"));
    if (opt(argc, argv, "--minutes"))
        json_object_set_new(b, "minutes", json_integer(atoll(opt(argc, argv, "--minutes"))));
    return cli_call(o, "POST", "/v1/rules", b, NULL);
}

int cli_policy(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    char path[256];
    if (argc < 1 || strcmp(argv[0], "help") == 0) {
        puts(usage_text);
        return argc < 1 ? 2 : 0;
    }
    const char *cmd = argv[0];
    if (argc == 1 && !strcmp(cmd, "groups"))
        return cli_call(&o, "GET", "/v1/groups", NULL, NULL);
    if (argc == 1 && !strcmp(cmd, "rules"))
        return cli_call(&o, "GET", "/v1/rules", NULL, NULL);
    if (argc == 1 && !strcmp(cmd, "schedules"))
        return cli_call(&o, "GET", "/v1/schedules", NULL, NULL);
    if (argc == 1 && !strcmp(cmd, "compile"))
        return cli_call(&o, "POST", "/v1/compile", NULL, NULL);
    if (!strcmp(cmd, "audit")) {
        const char *lim = opt(argc, argv, "--limit");
        snprintf(path, sizeof path, "/v1/audit?limit=%d", lim ? atoi(lim) : 50);
        return cli_call(&o, "GET", path, NULL, NULL);
    }
    if (argc >= 2 && !strcmp(cmd, "group")) {
        static const char *const known[] = { "--create", "--categories", "--answer",
                                             "--safesearch", "--networks", NULL };
        int rc = check_opts(argc, argv, 2, known);
        if (rc)
            return rc;
        int create = has(argc, argv, "--create");
        json_t *b = json_object();
        if (create)
            add_str(b, "name", argv[1]);
        if (opt(argc, argv, "--categories"))
            json_object_set_new(b, "categories", cli_split_list(opt(argc, argv, "--categories")));
        if (opt(argc, argv, "--networks"))
            json_object_set_new(b, "networks", cli_split_list(opt(argc, argv, "--networks")));
        add_str(b, "answer", opt(argc, argv, "--answer"));
        const char *ss = opt(argc, argv, "--safesearch");
        if (ss) {
            if (strcmp(ss, "on") && strcmp(ss, "off")) {
                json_decref(b);
                return cli_usage("--safesearch on|off");
            }
            json_object_set_new(b, "safesearch", json_boolean(!strcmp(ss, "on")));
        }
        if (create)
            return cli_call(&o, "POST", "/v1/groups", b, NULL);
        snprintf(path, sizeof path, "/v1/groups/%.64s", argv[1]);
        return cli_call(&o, "PUT", path, b, NULL);
    }
    if (argc >= 2 && !strcmp(cmd, "block"))
        return rule(&o, argc, argv, "block");
    if (argc >= 2 && !strcmp(cmd, "allow"))
        return rule(&o, argc, argv, "allow");
    if (argc == 2 && (!strcmp(cmd, "rm-rule") || !strcmp(cmd, "rm-schedule"))) {
        snprintf(path, sizeof path, "/v1/%s/%.32s", !strcmp(cmd, "rm-rule") ? "rules" : "schedules",
                 argv[1]);
        return cli_call(&o, "DELETE", path, NULL, NULL);
    }
    if (argc >= 2 && !strcmp(cmd, "unblock")) {
        static const char *const known[] = { "--minutes", "--seconds", "--group", NULL };
        int rc = check_opts(argc, argv, 2, known);
        if (rc)
            return rc;
        const char *m = opt(argc, argv, "--minutes"), *sec = opt(argc, argv, "--seconds");
        if (!m == !sec)
            return cli_usage("otasukectl policy unblock DOMAIN --minutes N|--seconds N [--group G]");
        json_t *b = json_pack("{s:s, s:I}", "domain", argv[1], m ? "minutes" : "seconds",
                              (json_int_t)atoll(m ? m : sec));
        add_str(b, "group", opt(argc, argv, "--group"));
        return cli_call(&o, "POST", "/v1/unblock", b, NULL);
    }
    if (argc == 6 && !strcmp(cmd, "schedule")) {
        json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s}", "group", argv[1], "category", argv[2],
                              "days", argv[3], "start", argv[4], "end", argv[5]);
        return cli_call(&o, "POST", "/v1/schedules", b, NULL);
    }
    return cli_usage("%s", usage_text);
}
