/* Shared by the domain-set unit tests that need a base and its overlay on disk: a
 * fresh temp dir holding domains.set and domains.set.overlay, removed afterwards. */
#ifndef DOMAINSET_TEST_UTIL_H
#define DOMAINSET_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64], base_path[128], ov_path[128], err[256];

static int dset_test_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_dset.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(base_path, sizeof base_path, "%s/domains.set", dir);
    snprintf(ov_path, sizeof ov_path, "%s/domains.set.overlay", dir);
    return 0;
}

static int dset_test_teardown(void **state)
{
    (void)state;
    unlink(ov_path);
    unlink(base_path);
    rmdir(dir);
    return 0;
}

#endif
