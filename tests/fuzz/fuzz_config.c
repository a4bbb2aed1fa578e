/* Fuzzes otasuke.conf loading: libconfig's parser plus our schema validation.
 * Any input must give either a config or a "name:line: ..." error, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct ota_config cfg;
    char err[512];
    if (cfg_load_string(&cfg, text, "fuzz.conf", err, sizeof err) < 0 &&
        strncmp(err, "fuzz.conf", 9) != 0)
        abort(); /* every error must name where it is */
    free(text);
    return 0;
}
