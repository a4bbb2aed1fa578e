/* A bounded, always NUL-terminated byte buffer that grows by doubling: what every HTTP
 * client in otasuke collects a response body into. The bound is the point: a server
 * that sends more than max never makes us hold more than max. */
#ifndef OTASUKE_GROWBUF_H
#define OTASUKE_GROWBUF_H

#include <stddef.h>

struct growbuf {
    char *data;     /* malloc'd, NUL-terminated once anything was appended; caller frees */
    size_t len, cap;
    size_t max;     /* most bytes ever held; 0 = no bound */
    int over;       /* set when an append would have passed max */
};

/* Appends n bytes. Returns 0, or -1 when it would pass max (over is set) or memory ran
 * out; the buffer then still holds what it had. */
int growbuf_append(struct growbuf *b, const void *p, size_t n);

/* libcurl write callback: CURLOPT_WRITEDATA is a struct growbuf *. Returning less than
 * given aborts the transfer, which is what passing max must do. */
size_t growbuf_curl_write(char *p, size_t size, size_t n, void *growbuf);

#endif
