/* Logging for daemons and tools.
 *
 * Foreground processes (and tests) log to stderr with a timestamp; daemons log to syslog.
 * Only programs log: library functions in appliance/lib fill an error buffer and return,
 * and the caller decides whether and how to say it. Never log secrets (keys, passwords,
 * tokens, setup codes): log what they are for, not what they are. */
#ifndef OTASUKE_LOG_H
#define OTASUKE_LOG_H

#include <stdarg.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

/* Sets the program name, the destination (stderr when foreground, else syslog) and the
 * most verbose level that is still written. May be called again, e.g. after a config load. */
void log_init(const char *progname, int foreground, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "error", "warn", "info", "debug". Returns 0 and sets *out, or -1. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at error level and exits with status 1. Only for programs, never in the library. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Redirects stderr-mode output to a callback; tests use it to check messages. NULL restores. */
typedef void (*log_sink_fn)(enum log_level level, const char *message, void *ctx);
void log_set_sink(log_sink_fn sink, void *ctx);

#endif
