/* The response buffer: grows past its first allocation, stays NUL-terminated, and never
 * holds more than its bound (the curl callback then aborts the transfer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "growbuf.h"

static void grows_and_terminates(void **state)
{
    (void)state;
    struct growbuf b = { 0 };
    char chunk[3000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 10; i++)
        assert_int_equal(growbuf_append(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 30000);
    assert_true(b.cap > b.len);
    assert_int_equal(strlen(b.data), 30000);
    assert_false(b.over);
    free(b.data);
}

static void bound_is_kept(void **state)
{
    (void)state;
    struct growbuf b = { .max = 10 };
    assert_int_equal(growbuf_append(&b, "0123456789", 10), 0);
    assert_int_equal(growbuf_append(&b, "a", 1), -1);
    assert_true(b.over);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");  /* what it had is kept */
    free(b.data);
}

static void curl_callback_aborts_past_the_bound(void **state)
{
    (void)state;
    struct growbuf b = { .max = 8 };
    char data[] = "abcdef";
    assert_int_equal(growbuf_curl_write(data, 1, 6, &b), 6);
    assert_int_equal(growbuf_curl_write(data, 2, 3, &b), 0);  /* 6 + 6 > 8: abort */
    assert_true(b.over);
    assert_string_equal(b.data, "abcdef");
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_terminates),
        cmocka_unit_test(bound_is_kept),
        cmocka_unit_test(curl_callback_aborts_past_the_bound),
    };
    return cmocka_run_group_tests_name("growbuf", tests, NULL, NULL);
}
