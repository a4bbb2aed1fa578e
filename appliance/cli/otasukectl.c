/* otasukectl: the command-line face of otasuke. Dispatches to command groups. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Keep sorted by name; "otasukectl help" prints them in this order. */
static const struct cli_group groups[] = {
    { "backup", "save the whole owner policy as JSON (agent)", cli_backup },
    { "delegate", "delegates, grants and signed delegated changes (agent)", cli_delegate },
    { "device", "device inventory: list by risk, label, importance, group (agent)", cli_device },
    { "explain", "why a domain or IP is blocked or allowed, and by whom (agent)", cli_explain },
    { "factory-reset", "delete every owner datum and key; back to first boot (root)", cli_factory_reset },
    { "feed", "feed keys, build/sign/verify feeds; subscriptions (agent)", cli_feed },
    { "fw", "build and inspect the firewall artifact fw.set", cli_fw },
    { "hub", "enrol with a hub; feed sync, status, contributions", cli_hub },
    { "incident", "incidents: list, show, ack, contain, report, call for help (agent)", cli_incident },
    { "list", "inspect a blocklist file: format, entries, rejected lines", cli_list },
    { "policy", "groups, rules, unblock, schedules, audit (agent)", cli_policy },
    { "restore", "replace the owner policy from a backup, validated first (agent)", cli_restore },
    { "set", "build and query compiled domain sets", cli_set },
    { "setup-code", "one-time code to set the first web UI password; cert fingerprint (agent)", cli_setup_code },
    { "status", "agent status: compile, feeds and their staleness (agent)", cli_status },
};

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("otasukectl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("otasukectl: usage: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

static void help(FILE *out)
{
    fprintf(out, "usage: otasukectl COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        fprintf(out, "  %-10s %s\n", groups[i].name, groups[i].summary);
    fprintf(out, "\n'otasukectl COMMAND help' shows the subcommands of COMMAND.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (strcmp(argv[1], groups[i].name) == 0)
            return groups[i].run(argc - 2, argv + 2);
    help(stderr);
    return cli_usage("unknown command '%s'", argv[1]);
}
