/* webd's parsing of untrusted request bits: cookies, forms, Accept-Language, Host, paths. */
#include "../../services/webd/webd_parse.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_cookie(void **state)
{
    (void)state;
    char v[80];
    assert_int_equal(webd_cookie_get("a=1; __Host-otasuke=abc123; b=2", "__Host-otasuke", v,
                                     sizeof v), 6);
    assert_string_equal(v, "abc123");
    assert_int_equal(webd_cookie_get("__Host-otasuke=x", "__Host-otasuke", v, sizeof v), 1);
    assert_int_equal(webd_cookie_get("__Host-otasuke=tail  ", "__Host-otasuke", v, sizeof v), 4);
    /* Prefix or suffix of another name does not match. */
    assert_int_equal(webd_cookie_get("x__Host-otasuke=1; __Host-otasukex=2", "__Host-otasuke",
                                     v, sizeof v), -1);
    assert_int_equal(webd_cookie_get("__Host-otasuke=", "__Host-otasuke", v, sizeof v), -1);
    assert_int_equal(webd_cookie_get("__Host-otasuke", "__Host-otasuke", v, sizeof v), -1);
    assert_int_equal(webd_cookie_get("__Host-otasuke=a\"b", "__Host-otasuke", v, sizeof v), -1);
    assert_int_equal(webd_cookie_get("__Host-otasuke=a b", "__Host-otasuke", v, sizeof v), -1);
    assert_int_equal(webd_cookie_get(NULL, "__Host-otasuke", v, sizeof v), -1);
    assert_int_equal(webd_cookie_get("", "__Host-otasuke", v, sizeof v), -1);
    char small[4];
    assert_int_equal(webd_cookie_get("k=1234", "k", small, sizeof small), -1);
    assert_int_equal(webd_cookie_get("k=123", "k", small, sizeof small), 3);
    /* The first occurrence wins. */
    assert_int_equal(webd_cookie_get("k=1;k=2", "k", v, sizeof v), 1);
    assert_string_equal(v, "1");
}

static void test_form(void **state)
{
    (void)state;
    char v[32];
    const char *b = "name=Taro+Yamada&reason=need%20it%21&empty=&flag";
    assert_int_equal(webd_form_get(b, strlen(b), "name", v, sizeof v), 11);
    assert_string_equal(v, "Taro Yamada");
    assert_int_equal(webd_form_get(b, strlen(b), "reason", v, sizeof v), 8);
    assert_string_equal(v, "need it!");
    assert_int_equal(webd_form_get(b, strlen(b), "empty", v, sizeof v), 0);
    assert_int_equal(webd_form_get(b, strlen(b), "flag", v, sizeof v), 0);
    assert_int_equal(webd_form_get(b, strlen(b), "nam", v, sizeof v), -1);
    assert_int_equal(webd_form_get(b, strlen(b), "missing", v, sizeof v), -1);
    /* Bad escapes, NUL bytes, truncated escapes at the end of the body, overflow. */
    assert_int_equal(webd_form_get("a=%zz", 5, "a", v, sizeof v), -1);
    assert_int_equal(webd_form_get("a=%00", 5, "a", v, sizeof v), -1);
    assert_int_equal(webd_form_get("a=%4", 4, "a", v, sizeof v), -1);
    assert_int_equal(webd_form_get("a=%41%4", 5, "a", v, sizeof v), 1);   /* len cuts it */
    assert_int_equal(webd_form_get("a=%", 3, "a", v, sizeof v), -1);
    assert_int_equal(webd_form_get("a=%e3%81%82", 11, "a", v, sizeof v), 3);
    assert_string_equal(v, "\xe3\x81\x82");
    char small[4];
    assert_int_equal(webd_form_get("a=abcd", 6, "a", small, sizeof small), -1);
    assert_int_equal(webd_form_get("a=abc", 5, "a", small, sizeof small), 3);
    /* Not NUL-terminated input: only len bytes are read. */
    char raw[] = { 'a', '=', 'x', 'y' };
    assert_int_equal(webd_form_get(raw, 3, "a", v, sizeof v), 1);
    assert_string_equal(v, "x");
}

static void test_lang(void **state)
{
    (void)state;
    assert_string_equal(webd_pick_lang(NULL), "en");
    assert_string_equal(webd_pick_lang(""), "en");
    assert_string_equal(webd_pick_lang("ja"), "ja");
    assert_string_equal(webd_pick_lang("ja-JP,ja;q=0.9,en-US;q=0.8"), "ja");
    assert_string_equal(webd_pick_lang("en-US,en;q=0.9,ja;q=0.8"), "en");
    assert_string_equal(webd_pick_lang("en;q=0.5, ja;q=0.7"), "ja");
    assert_string_equal(webd_pick_lang("fr-FR,fr;q=0.9"), "en");
    assert_string_equal(webd_pick_lang("ja;q=0"), "en");
    assert_string_equal(webd_pick_lang("jav,jam"), "en");   /* Javanese is not Japanese */
    assert_string_equal(webd_pick_lang("ja;q=abc"), "en");
    assert_string_equal(webd_pick_lang("ja;q=2"), "en");
    /* Found by fuzzing: a parameter separator at the very end read past the string. */
    assert_string_equal(webd_pick_lang("ja; "), "ja");
    assert_string_equal(webd_pick_lang("en;"), "en");
}

static void test_host(void **state)
{
    (void)state;
    char h[256];
    assert_int_equal(webd_host_parse("Ads.Test", h, sizeof h), 1);
    assert_string_equal(h, "ads.test");
    assert_int_equal(webd_host_parse("ads.test:8080", h, sizeof h), 1);
    assert_string_equal(h, "ads.test");
    assert_int_equal(webd_host_parse("ads.test.", h, sizeof h), 1);
    assert_string_equal(h, "ads.test");
    assert_int_equal(webd_host_parse("192.0.2.1", h, sizeof h), 2);
    assert_int_equal(webd_host_parse("192.0.2.1:80", h, sizeof h), 2);
    assert_string_equal(h, "192.0.2.1");
    assert_int_equal(webd_host_parse("[fd00:0:0:1::1]", h, sizeof h), 2);
    assert_string_equal(h, "fd00:0:0:1::1");
    assert_int_equal(webd_host_parse("[fd00:0:0:1::1]:80", h, sizeof h), 2);
    assert_int_equal(webd_host_parse("[fd00::1]x", h, sizeof h), -1);
    assert_int_equal(webd_host_parse("[nothex]", h, sizeof h), -1);
    assert_int_equal(webd_host_parse(NULL, h, sizeof h), -1);
    assert_int_equal(webd_host_parse("", h, sizeof h), -1);
    assert_int_equal(webd_host_parse("a..b", h, sizeof h), -1);
    assert_int_equal(webd_host_parse(".a", h, sizeof h), -1);
    assert_int_equal(webd_host_parse("a b", h, sizeof h), -1);
    assert_int_equal(webd_host_parse("<script>", h, sizeof h), -1);
    assert_int_equal(webd_host_parse("a.test:", h, sizeof h), -1);
    assert_int_equal(webd_host_parse("a.test:80x", h, sizeof h), -1);
    char lab[80];
    memset(lab, 'a', 64);
    lab[64] = '\0';
    assert_int_equal(webd_host_parse(lab, h, sizeof h), -1);
    lab[63] = '\0';
    assert_int_equal(webd_host_parse(lab, h, sizeof h), 1);
}

static void test_path(void **state)
{
    (void)state;
    assert_int_equal(webd_path_ok("/index.html"), 0);
    assert_int_equal(webd_path_ok("/a/b-c_d.js"), 0);
    assert_int_equal(webd_path_ok("index.html"), -1);
    assert_int_equal(webd_path_ok("/../etc/passwd"), -1);
    assert_int_equal(webd_path_ok("/a/..hidden"), -1);
    assert_int_equal(webd_path_ok("//etc/passwd"), -1);
    assert_int_equal(webd_path_ok("/a\\b"), -1);
    assert_int_equal(webd_path_ok("/a%2e%2e/b"), -1);
    assert_int_equal(webd_path_ok("/a\nb"), -1);
    assert_int_equal(webd_path_ok(NULL), -1);
    assert_string_equal(webd_mime("/x.js"), "text/javascript; charset=utf-8");
    assert_string_equal(webd_mime("/x.svg"), "image/svg+xml");
    assert_string_equal(webd_mime("/x"), "application/octet-stream");
    assert_string_equal(webd_mime("/a.js/x"), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie), cmocka_unit_test(test_form), cmocka_unit_test(test_lang),
        cmocka_unit_test(test_host), cmocka_unit_test(test_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
