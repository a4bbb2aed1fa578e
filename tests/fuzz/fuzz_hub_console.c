/* The console's file-name check (services/hub/console.c): whatever a URL decodes to,
 * an accepted name stays inside the console dir. Checks the promise itself rather than
 * the code: no "." or ".." segment, no absolute path, no empty or hidden segment, only
 * [A-Za-z0-9._-/]. */
#include "../../services/hub/console.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';   /* MHD hands over a C string: anything after a NUL is gone */
    if (hub_console_path_ok(s)) {
        size_t n = strlen(s);
        /* a segment starting with '.' covers "." and ".." ("a..b" is a plain name) */
        if (n == 0 || n > 200 || s[0] == '/' || s[n - 1] == '/' || strstr(s, "//") ||
            s[0] == '.' || strstr(s, "/."))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/", s[i]))
                abort();
    }
    free(s);
    return 0;
}
