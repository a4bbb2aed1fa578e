#include "growbuf.h"

#include <stdlib.h>
#include <string.h>

int growbuf_append(struct growbuf *b, const void *p, size_t n)
{
    if (b->max && b->len + n > b->max) {
        b->over = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

size_t growbuf_curl_write(char *p, size_t size, size_t n, void *growbuf)
{
    return growbuf_append(growbuf, p, size * n) == 0 ? size * n : 0;
}
