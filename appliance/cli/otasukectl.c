/* otasukectl: the command-line face of otasuke. Dispatches to command groups. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Keep sorted by name; "otasukectl help" prints them in this order. */
static const struct cli_group groups[] = {
    { "fw", "build and inspect the firewall artifact fw.set", cli_fw },
    { "list", "inspect a blocklist file: format, entries, rejected lines", cli_list },
    { "set", "build and query compiled domain sets", cli_set },
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
