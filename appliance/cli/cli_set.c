/* otasukectl set: build and query compiled domain sets (first cut). */
#include "cli.h"

#include <string.h>

int cli_set(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "help") == 0)
        return cli_usage("otasukectl set build|lookup|info|dump ...");
    return cli_fail("set %s: not available yet in this build", argv[0]);
}
