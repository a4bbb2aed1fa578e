/* Commit-confirmed state directory of otasuke-fwd: pending, confirm, rollback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../services/firewall/fw_state.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *name)
{
    static char buf[256];
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_fw_state.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_confirm(void **state)
{
    (void)state;
    char err[256], sd[128], a[128];
    snprintf(sd, sizeof sd, "%s/state", dir);
    int lk = fw_state_lock(sd, err, sizeof err);
    assert_true(lk >= 0);
    put("a.set", "A");
    put("b.set", "B");
    snprintf(a, sizeof a, "%s/a.set", dir);
    assert_int_equal(fw_state_set_applied(sd, a, err, sizeof err), 0);
    assert_string_equal(get("state/applied.set"), "A");
    assert_int_equal(fw_state_pending(sd), 0);
    assert_int_equal(fw_state_confirm(sd, err, sizeof err), -1);
    assert_non_null(strstr(err, "nothing is pending"));

    snprintf(a, sizeof a, "%s/b.set", dir);
    assert_int_equal(fw_state_begin_pending(sd, a, 1234567890, err, sizeof err), 0);
    assert_int_equal(fw_state_pending(sd), 1234567890);
    assert_string_equal(get("state/rollback.set"), "A");
    assert_string_equal(get("state/pending.set"), "B");
    assert_int_equal(fw_state_confirm(sd, err, sizeof err), 0);
    assert_int_equal(fw_state_pending(sd), 0);
    assert_string_equal(get("state/applied.set"), "B");
    fw_state_unlock(lk);
}

static void test_rollback(void **state)
{
    (void)state;
    char err[256], sd[128], p[128];
    snprintf(sd, sizeof sd, "%s/state", dir);
    put("a.set", "A");
    put("b.set", "B");
    put("c.set", "C");
    snprintf(p, sizeof p, "%s/a.set", dir);
    assert_int_equal(fw_state_lock(sd, err, sizeof err) >= 0, 1);
    assert_int_equal(fw_state_set_applied(sd, p, err, sizeof err), 0);
    snprintf(p, sizeof p, "%s/b.set", dir);
    assert_int_equal(fw_state_begin_pending(sd, p, 100, err, sizeof err), 0);
    /* a second change while one is pending keeps the first rollback point */
    snprintf(p, sizeof p, "%s/c.set", dir);
    assert_int_equal(fw_state_begin_pending(sd, p, 200, err, sizeof err), 0);
    assert_int_equal(fw_state_pending(sd), 200);
    assert_string_equal(get("state/rollback.set"), "A");
    assert_string_equal(get("state/pending.set"), "C");
    assert_int_equal(fw_state_finish_rollback(sd, err, sizeof err), 0);
    assert_int_equal(fw_state_pending(sd), 0);
    assert_string_equal(get("state/applied.set"), "A");
    assert_null(get("state/pending.set"));
    assert_null(get("state/rollback.set"));
}

static void test_rollback_to_nothing(void **state)
{
    (void)state;
    char err[256], sd[128], p[128];
    snprintf(sd, sizeof sd, "%s/state", dir);
    put("b.set", "B");
    snprintf(p, sizeof p, "%s/b.set", dir);
    assert_int_equal(fw_state_lock(sd, err, sizeof err) >= 0, 1);
    /* no applied artifact yet: rolling back means "no table of ours" */
    assert_int_equal(fw_state_begin_pending(sd, p, 5, err, sizeof err), 0);
    assert_null(get("state/rollback.set"));
    assert_int_equal(fw_state_finish_rollback(sd, err, sizeof err), 0);
    assert_null(get("state/applied.set"));
    put("state/pending", "garbage\n");      /* unreadable deadline: treat as expired */
    assert_int_equal(fw_state_pending(sd), 1);
    assert_int_equal(fw_state_copy("/nonexistent", p, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent"));
    assert_int_equal(fw_state_lock("/proc/nope/state", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_to_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
