/* Logging: levels filter, the sink sees formatted messages, names round-trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

struct captured {
    int count;
    enum log_level last_level;
    char last[256];
};

static void capture(enum log_level level, const char *message, void *ctx)
{
    struct captured *c = ctx;
    c->count++;
    c->last_level = level;
    snprintf(c->last, sizeof c->last, "%s", message);
}

static void levels_filter(void **state)
{
    (void)state;
    struct captured c = { 0 };
    log_init("test", 1, LOG_LEVEL_WARN);
    log_set_sink(capture, &c);
    log_info("hidden %d", 1);
    log_debug("hidden too");
    assert_int_equal(c.count, 0);
    log_warn("disk %d%% full", 91);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.last_level, LOG_LEVEL_WARN);
    assert_string_equal(c.last, "disk 91% full");
    log_error("bad %s", "thing");
    assert_int_equal(c.count, 2);
    log_set_level(LOG_LEVEL_DEBUG);
    assert_int_equal(log_get_level(), LOG_LEVEL_DEBUG);
    log_debug("now visible");
    assert_int_equal(c.count, 3);
    assert_string_equal(c.last, "now visible");
    log_set_sink(NULL, NULL);
}

static void long_messages_are_cut_not_overflowed(void **state)
{
    (void)state;
    struct captured c = { 0 };
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_init("test", 1, LOG_LEVEL_INFO);
    log_set_sink(capture, &c);
    log_info("%s", big);
    assert_int_equal(c.count, 1);
    assert_int_equal(strlen(c.last), 255);
    log_set_sink(NULL, NULL);
}

static void level_names(void **state)
{
    (void)state;
    enum log_level lv;
    const char *names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(log_level_parse(names[i], &lv), 0);
        assert_int_equal(lv, i);
        assert_string_equal(log_level_name(lv), names[i]);
    }
    assert_int_equal(log_level_parse("verbose", &lv), -1);
    assert_int_equal(log_level_parse(NULL, &lv), -1);
    assert_string_equal(log_level_name((enum log_level)9), "?");
}

static void fatal_exits_with_status_1(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        log_init("test", 1, LOG_LEVEL_ERROR);
        freopen("/dev/null", "w", stderr);
        fatal("cannot continue: %s", "reason");
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels_filter),
        cmocka_unit_test(long_messages_are_cut_not_overflowed),
        cmocka_unit_test(level_names),
        cmocka_unit_test(fatal_exits_with_status_1),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
