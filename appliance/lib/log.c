/* Logging: stderr with timestamps in the foreground, syslog otherwise. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static const char *log_progname = "otasuke";
static int log_foreground = 1;
static enum log_level log_level_max = LOG_LEVEL_INFO;
static log_sink_fn log_sink;
static void *log_sink_ctx;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_syslog[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_init(const char *progname, int foreground, enum log_level level)
{
    if (!log_foreground)
        closelog();
    log_progname = progname ? progname : "otasuke";
    log_foreground = foreground;
    log_level_max = level;
    if (!foreground)
        openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level) { log_level_max = level; }
enum log_level log_get_level(void) { return log_level_max; }

int log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (name && strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

void log_set_sink(log_sink_fn sink, void *ctx)
{
    log_sink = sink;
    log_sink_ctx = ctx;
}

static void log_emit(enum log_level level, const char *fmt, va_list ap)
{
    if (level > log_level_max)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (log_sink) {
        log_sink(level, msg, log_sink_ctx);
        return;
    }
    if (!log_foreground) {
        syslog(level_syslog[level], "%s", msg);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld %s[%s]: %s\n", when, ts.tv_nsec / 1000000, log_progname,
            level_names[level], msg);
}

#define LOG_FN(name, level)                 \
    void name(const char *fmt, ...)         \
    {                                       \
        va_list ap;                         \
        va_start(ap, fmt);                  \
        log_emit(level, fmt, ap);           \
        va_end(ap);                         \
    }
LOG_FN(log_error, LOG_LEVEL_ERROR)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LEVEL_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}
