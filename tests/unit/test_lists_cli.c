/* otasukectl list/set end to end: runs the built binary (found beside this test as
 * ../bin/otasukectl) on the fixtures and checks its JSON, exit codes and messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char ctl[PATH_MAX + 32];
static char dir[] = "/tmp/otasuke-test-cli-XXXXXX";
static char out[1 << 16], errout[4096];

/* Runs otasukectl with args (a shell-quoted string), fills out/errout, returns the
 * exit status. */
static int run(const char *args)
{
    char cmd[PATH_MAX * 4], errfile[256];
    FILE *p, *e;
    size_t n;
    int st;

    snprintf(errfile, sizeof errfile, "%s/stderr", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", ctl, args, errfile);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    st = pclose(p);
    e = fopen(errfile, "r");
    n = e ? fread(errout, 1, sizeof errout - 1, e) : 0;
    errout[n] = 0;
    if (e)
        fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *parse_out(void)
{
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %s", je.text, out);
    return j;
}

static json_int_t geti(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("no integer '%s'", k);
    return json_integer_value(v);
}

static const char *gets_(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void list_inspect(void **state)
{
    json_t *j, *e;
    (void)state;
    assert_int_equal(run("list inspect tests/fixtures/lists/mixed.hosts"), 0);
    j = parse_out();
    assert_string_equal(gets_(j, "format"), "hosts");
    assert_int_equal(geti(j, "entries"), 30);
    assert_int_equal(geti(j, "rejected"), 2);
    assert_int_equal(geti(j, "unsupported"), 0);
    e = json_object_get(j, "errors");
    assert_int_equal(json_array_size(e), 2);
    assert_int_equal(geti(json_array_get(e, 0), "line"), 20);
    assert_string_equal(gets_(json_array_get(e, 0), "reason"),
                        "'bad!name.test': invalid character '!' in name");
    assert_int_equal(geti(json_array_get(e, 1), "line"), 21);
    json_decref(j);

    assert_int_equal(run("list inspect tests/fixtures/lists/ads.adblock"), 0);
    j = parse_out();
    assert_string_equal(gets_(j, "format"), "adblock");
    assert_int_equal(geti(j, "entries"), 29);
    assert_int_equal(geti(j, "unsupported"), 1);
    assert_string_equal(gets_(json_array_get(json_object_get(j, "errors"), 0), "kind"), "unsupported");
    json_decref(j);

    /* forced format that does not fit: rejected whole, message on stderr */
    assert_int_equal(run("list inspect --format rpz tests/fixtures/lists/ads.adblock"), 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(errout, "tests/fixtures/lists/ads.adblock: not a rpz list: no valid entry"));
    assert_int_equal(run("list inspect tests/fixtures/lists/error-page.html"), 1);
    assert_non_null(strstr(errout, "an HTML/XML page, not a list"));
    assert_int_equal(run("list inspect --format bogus x"), 2);
    assert_non_null(strstr(errout, "unknown format 'bogus'"));
    assert_int_equal(run("list inspect /nonexistent/x.txt"), 1);
    assert_non_null(strstr(errout, "/nonexistent/x.txt: cannot open"));
    assert_int_equal(run("list"), 2);
    assert_int_equal(run("list frobnicate"), 2);
}

static void set_build_lookup(void **state)
{
    char args[1024];
    json_t *j, *lists;
    char *line, *save = NULL;
    int n = 0;
    (void)state;

    snprintf(args, sizeof args, "set build -o %s/s.set ads=tests/fixtures/lists/ads.adblock "
             "--label dyn dyndns=tests/fixtures/lists/dyndns.rpz "
             "--subtree malware=tests/fixtures/lists/mixed.hosts "
             "allow=tests/fixtures/lists/allow.adblock", dir);
    assert_int_equal(run(args), 0);
    j = parse_out();
    /* 28 ads names + ok.ads.example.test + 11 dyndns + 30 hosts (one also in ads) + 9 allow */
    assert_int_equal(geti(j, "names"), 78);
    assert_true(json_real_value(json_object_get(j, "lookup_bytes_per_name")) < 16.0);
    assert_true(json_is_real(json_object_get(j, "build_ms")));
    lists = json_object_get(j, "lists");
    assert_int_equal(json_array_size(lists), 4);
    assert_string_equal(gets_(json_array_get(lists, 0), "label"), "ads");
    assert_string_equal(gets_(json_array_get(lists, 1), "label"), "dyn");
    assert_int_equal(geti(json_array_get(lists, 1), "entries"), 21);
    assert_string_equal(gets_(json_array_get(lists, 2), "category"), "malware");
    assert_true(json_is_true(json_object_get(json_array_get(lists, 2), "subtree")));
    assert_int_equal(geti(json_array_get(lists, 3), "unsupported"), 3);
    json_decref(j);

    snprintf(args, sizeof args, "set lookup %s/s.set www.0.beer Good.Ads.Example.Test. "
             "x.ok.ads.example.test ads.example.test sub.000-038.net.daraz.com n0p.at "
             "x.1aurl.io example.org bad..name", dir);
    assert_int_equal(run(args), 1);  /* one invalid name */
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        json_t *o = json_loads(line, 0, NULL);
        const char *name, *v;
        assert_non_null(o);
        name = gets_(o, "name");
        v = gets_(o, "verdict");
        switch (n) {
        case 0:
            assert_string_equal(name, "www.0.beer");
            assert_string_equal(v, "block");
            assert_string_equal(gets_(o, "matched"), "0.beer");
            assert_string_equal(gets_(o, "category"), "ads");
            assert_string_equal(gets_(o, "list"), "ads");
            break;
        case 1:  /* normalised; the allowlist beats the ads subtree */
            assert_string_equal(name, "good.ads.example.test");
            assert_string_equal(v, "allow");
            assert_string_equal(gets_(o, "list"), "allow");
            assert_true(json_is_null(json_object_get(o, "category")));
            break;
        case 2:  /* "@@" inside the ads list */
            assert_string_equal(v, "allow");
            assert_string_equal(gets_(o, "matched"), "ok.ads.example.test");
            assert_string_equal(gets_(o, "list"), "ads");
            break;
        case 3:
            assert_string_equal(v, "block");
            break;
        case 4:  /* hosts entry made subtree by --subtree */
            assert_string_equal(v, "block");
            assert_string_equal(gets_(o, "category"), "malware");
            assert_string_equal(gets_(o, "matched"), "000-038.net.daraz.com");
            break;
        case 5:
            assert_string_equal(gets_(o, "category"), "dyndns");
            assert_string_equal(gets_(o, "list"), "dyn");
            break;
        case 6:
            assert_string_equal(v, "allow");
            break;
        case 7:
            assert_string_equal(v, "none");
            assert_true(json_is_null(json_object_get(o, "matched")));
            break;
        case 8:
            assert_string_equal(name, "bad..name");
            assert_string_equal(gets_(o, "error"), "empty label (two dots in a row)");
            break;
        }
        json_decref(o);
    }
    assert_int_equal(n, 9);

    /* per-group view: only malware enabled */
    snprintf(args, sizeof args, "set lookup --enable malware %s/s.set www.0.beer 000-038.net.daraz.com", dir);
    assert_int_equal(run(args), 0);
    assert_non_null(strstr(out, "\"name\":\"www.0.beer\",\"verdict\":\"none\""));
    assert_non_null(strstr(out, "\"name\":\"000-038.net.daraz.com\",\"verdict\":\"block\""));

    snprintf(args, sizeof args, "set info %s/s.set", dir);
    assert_int_equal(run(args), 0);
    j = parse_out();
    assert_int_equal(geti(j, "names"), 78);
    assert_int_equal(json_array_size(json_object_get(j, "lists")), 5);  /* + ads "@@" twin */
    json_decref(j);

    snprintf(args, sizeof args, "set dump %s/s.set", dir);
    assert_int_equal(run(args), 0);
    n = 0;
    for (const char *q = out; (q = strchr(q, '\n')) != NULL; q++)
        n++;
    assert_int_equal(n, 78);
    assert_non_null(strstr(out, "{\"name\":\"n0p.at\",\"flags\":[\"exact\",\"subtree\"],\"categories\":[\"dyndns\"],\"lists\":[\"dyn\"]}"));
}

static void set_errors(void **state)
{
    char args[1024], path[600];
    FILE *f;
    (void)state;
    snprintf(args, sizeof args, "set build -o %s/bad.set ads=tests/fixtures/lists/error-page.html", dir);
    assert_int_equal(run(args), 1);
    assert_non_null(strstr(errout, "an HTML/XML page, not a list"));
    assert_non_null(strstr(errout, "(set not written)"));
    snprintf(path, sizeof path, "%s/bad.set", dir);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(run("set build -o /tmp/x.set nosuch=tests/fixtures/lists/ads.adblock"), 2);
    assert_non_null(strstr(errout, "unknown category 'nosuch'"));
    assert_int_equal(run("set build ads=tests/fixtures/lists/ads.adblock"), 2);
    assert_non_null(strstr(errout, "set build needs -o OUT"));

    /* a damaged set is refused with the file name and what to do */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("0.0.0.0 not.a.set\n", f);
    fclose(f);
    snprintf(args, sizeof args, "set lookup %s x.test", path);
    assert_int_equal(run(args), 1);
    assert_non_null(strstr(errout, "too short for a domain set header"));
    snprintf(args, sizeof args, "set info %s", path);
    assert_int_equal(run(args), 1);
    unlink(path);
    assert_int_equal(run("set"), 2);
    assert_int_equal(run("set help"), 0);
    assert_non_null(strstr(out, "otasukectl set build -o OUT"));
}

static int setup(void **state)
{
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash;
    (void)state;
    if (n <= 0)
        return -1;
    self[n] = 0;
    slash = strrchr(self, '/');
    *slash = 0;
    snprintf(ctl, sizeof ctl, "%s/../bin/otasukectl", self);
    if (access(ctl, X_OK) != 0) {
        fprintf(stderr, "test_lists_cli: %s not built (run make)\n", ctl);
        return -1;
    }
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_inspect),
        cmocka_unit_test(set_build_lookup),
        cmocka_unit_test(set_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
