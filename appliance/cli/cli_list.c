/* otasukectl list: inspect blocklist files (first cut; parsers land in lists.c). */
#include "cli.h"

#include <string.h>

int cli_list(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "help") == 0)
        return cli_usage("otasukectl list inspect [--format F] FILE");
    return cli_fail("list %s: not available yet in this build", argv[0]);
}
