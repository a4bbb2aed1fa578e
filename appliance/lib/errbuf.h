/* The library's way of saying what went wrong: the caller passes a buffer, a function
 * fills it and returns -1/NULL. One formatter for every module. */
#ifndef OTASUKE_ERRBUF_H
#define OTASUKE_ERRBUF_H

#include <stddef.h>

/* Formats into err (when err and errlen are non-zero; otherwise does nothing).
 * Always returns -1 so a failure path can be `return errbuf_set(err, len, "...");`. */
int errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
