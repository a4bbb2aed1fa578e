/* webd's hand-written parsers on arbitrary bytes: cookie, form body, Accept-Language,
 * Host, static path. The first byte picks the field name; outputs must stay bounded and
 * NUL-terminated. */
#include "../../services/webd/webd_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "name", "reason", "__Host-otasuke", "a", "" };
    if (size < 1)
        return 0;
    const char *name = names[data[0] % 5];
    data++;
    size--;
    /* The form parser gets the raw bytes (not NUL-terminated); the others a C string. */
    char *raw = malloc(size ? size : 1);
    char *str = malloc(size + 1);
    if (!raw || !str) {
        free(raw);
        free(str);
        return 0;
    }
    memcpy(raw, data, size);
    memcpy(str, data, size);
    str[size] = '\0';
    char out[64];
    int n = webd_form_get(raw, size, name, out, sizeof out);
    if (n >= 0 && (size_t)n != strlen(out))
        abort();
    n = webd_cookie_get(str, name, out, sizeof out);
    if (n >= 0 && (size_t)n != strlen(out))
        abort();
    const char *l = webd_pick_lang(str);
    if (strcmp(l, "ja") && strcmp(l, "en"))
        abort();
    char host[256];
    if (webd_host_parse(str, host, sizeof host) > 0 && (!host[0] || strlen(host) > 253))
        abort();
    if (webd_path_ok(str) == 0 && (strstr(str, "..") || str[0] != '/'))
        abort();
    (void)webd_mime(str);
    free(raw);
    free(str);
    return 0;
}
