/* otasukectl online commands that are not about one policy area: status, explain,
 * device, backup, restore; and the helpers every online group uses. */
#include "cli.h"
#include "cli_agent.h"
#include "apiclient.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_online_opts(struct cli_online *o, int argc, char **argv)
{
    int out = 0;
    o->socket = NULL;
    o->json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            o->socket = argv[++i];
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    return out;
}

static void print_scalar(json_t *v)
{
    if (json_is_string(v))
        fputs(json_string_value(v), stdout);
    else if (json_is_null(v))
        fputs("-", stdout);
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fputs(s ? s : "?", stdout);
        free(s);
    }
}

void cli_print_human(json_t *v)
{
    if (json_is_array(v)) {
        json_t *first = json_array_get(v, 0);
        if (!first) {
            puts("(none)");
            return;
        }
        if (!json_is_object(first)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                print_scalar(e);
                putchar('\n');
            }
            return;
        }
        const char *k;
        json_t *x;
        int col = 0;
        json_object_foreach(first, k, x)
            printf("%s%s", col++ ? "\t" : "", k);
        putchar('\n');
        size_t i;
        json_t *row;
        json_array_foreach(v, i, row) {
            col = 0;
            json_object_foreach(first, k, x) {
                if (col++)
                    putchar('\t');
                print_scalar(json_object_get(row, k));
            }
            putchar('\n');
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            printf("%s: ", k);
            print_scalar(x);
            putchar('\n');
        }
    } else {
        print_scalar(v);
        putchar('\n');
    }
}

int cli_call(const struct cli_online *o, const char *method, const char *path, json_t *body,
             void (*print)(json_t *answer))
{
    char err[512];
    json_t *ans = NULL;
    long st = apiclient_json(apiclient_socket(o->socket), method, path, body, &ans, err,
                             sizeof err);
    json_decref(body);
    if (st < 0)
        return cli_fail("%s", err);
    if (st >= 400) {
        const char *e = json_string_value(json_object_get(ans, "error"));
        const char *f = json_string_value(json_object_get(ans, "field"));
        if (o->json && ans) {
            char *s = json_dumps(ans, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (s)
                puts(s);
            free(s);
        }
        int rc = f ? cli_fail("%s (field '%s')", e ? e : "error", f)
                   : cli_fail("%s (HTTP %ld)", e ? e : "error", st);
        json_decref(ans);
        return rc;
    }
    if (o->json) {
        char *s = json_dumps(ans ? ans : json_null(),
                             JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (s)
            puts(s);
        free(s);
    } else if (print) {
        print(ans);
    } else {
        cli_print_human(ans);
    }
    json_decref(ans);
    return 0;
}

json_t *cli_split_list(const char *s)
{
    json_t *a = json_array();
    char *copy = strdup(s ? s : ""), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    free(copy);
    return a;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    if (f != stdin)
        fclose(f);
    if (!buf) {
        cli_fail("%s: out of memory", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- status ---- */

static void print_status(json_t *a)
{
    printf("agent: %s, up %llds\n", json_string_value(json_object_get(a, "status")),
           (long long)json_integer_value(json_object_get(a, "uptime_seconds")));
    printf("last compile: %lld domains in %.3f s",
           (long long)json_integer_value(json_object_get(a, "domains")),
           json_number_value(json_object_get(a, "last_compile_seconds")));
    const char *e = json_string_value(json_object_get(a, "last_compile_error"));
    printf("%s%s\n", e ? " — FAILED: " : "", e ? e : "");
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(a, "feeds"), i, f) {
        json_t *age = json_object_get(f, "age_seconds");
        const char *err = json_string_value(json_object_get(f, "last_error"));
        printf("feed %-20s seq %-6lld %-9s %s%s\n",
               json_string_value(json_object_get(f, "name")),
               (long long)json_integer_value(json_object_get(f, "last_seq")),
               json_is_integer(age) ? "" : "never ok",
               err ? "last error: " : "ok", err ? err : "");
        if (json_is_integer(age))
            printf("     last good %lld s ago, %lld entries\n",
                   (long long)json_integer_value(age),
                   (long long)json_integer_value(json_object_get(f, "entries")));
    }
}

int cli_status(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    if (argc != 0)
        return cli_usage("otasukectl status [--json] [--socket PATH]");
    int rc = cli_call(&o, "GET", "/v1/status", NULL, print_status);
    if (rc == 0 && !o.json)
        cli_webd_fingerprint(&o);   /* cli_setup.c */
    return rc;
}

/* ---- explain ---- */

static void print_explain(json_t *a)
{
    printf("%s: %s (group %s) — %s\n", json_string_value(json_object_get(a, "query")),
           json_string_value(json_object_get(a, "decision")),
           json_string_value(json_object_get(a, "group")),
           json_string_value(json_object_get(a, "summary")));
    json_t *cp = json_object_get(a, "compiled");
    if (json_is_object(cp) && json_object_get(cp, "verdict")) {
        printf("  compiled set: %s", json_string_value(json_object_get(cp, "verdict")));
        size_t k;
        json_t *l;
        json_array_foreach(json_object_get(cp, "lists"), k, l)
            printf("%s%s", k ? ", " : " via ", json_string_value(l));
        putchar('\n');
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(a, "chain"), i, s) {
        json_t *g = json_object_get(s, "grant");
        const char *cat = json_string_value(json_object_get(s, "category"));
        const char *note = json_string_value(json_object_get(s, "note"));
        printf("  %s %-5s %-20s %s by %s", json_is_true(json_object_get(s, "enforced")) ? "*" : " ",
               json_string_value(json_object_get(s, "action")),
               json_string_value(json_object_get(s, "matched")),
               json_string_value(json_object_get(s, "name")),
               json_string_value(json_object_get(s, "author")));
        if (cat)
            printf(", category %s", cat);
        if (json_is_integer(g))
            printf(", grant %lld", (long long)json_integer_value(g));
        if (note)
            printf(" (%s)", note);
        putchar('\n');
    }
}

int cli_explain(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    const char *client = NULL, *q = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--client") == 0 && i + 1 < argc)
            client = argv[++i];
        else if (!q)
            q = argv[i];
        else
            q = NULL, i = argc;
    }
    if (!q)
        return cli_usage("otasukectl explain DOMAIN|IP [--client IP] [--json]");
    char eq[600], ec[200] = "", path[900];
    if (apiclient_escape(q, eq, sizeof eq) < 0 ||
        (client && apiclient_escape(client, ec, sizeof ec) < 0))
        return cli_usage("explain: argument too long");
    snprintf(path, sizeof path, "/v1/explain?q=%s%s%s", eq, client ? "&client=" : "", ec);
    return cli_call(&o, "GET", path, NULL, print_explain);
}

/* ---- devices ---- */

int cli_device(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    const char *use = "otasukectl device list | set MAC [--label L] [--importance 1-5] [--group G]";
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return cli_call(&o, "GET", "/v1/devices", NULL, NULL);
    if (argc >= 2 && strcmp(argv[0], "set") == 0) {
        json_t *b = json_object();
        for (int i = 2; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--label") == 0)
                json_object_set_new(b, "label", json_string(argv[i + 1]));
            else if (strcmp(argv[i], "--group") == 0)
                json_object_set_new(b, "group", json_string(argv[i + 1]));
            else if (strcmp(argv[i], "--importance") == 0)
                json_object_set_new(b, "importance", json_integer(atoi(argv[i + 1])));
            else {
                json_decref(b);
                return cli_usage("%s", use);
            }
        }
        char path[128];
        snprintf(path, sizeof path, "/v1/devices/%.40s", argv[1]);
        return cli_call(&o, "PUT", path, b, NULL);
    }
    if (argc == 1 && strcmp(argv[0], "help") == 0) {
        puts(use);
        return 0;
    }
    return cli_usage("%s", use);
}

/* ---- backup / restore ---- */

int cli_backup(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    const char *out = NULL;
    if (argc == 2 && strcmp(argv[0], "-o") == 0)
        out = argv[1];
    else if (argc != 0)
        return cli_usage("otasukectl backup [-o FILE]   (JSON on stdout without -o)");
    char err[512], *resp = NULL;
    long st = apiclient_request(apiclient_socket(o.socket), "GET", "/v1/backup", NULL, 0, &resp,
                                err, sizeof err);
    if (st < 0)
        return cli_fail("%s", err);
    if (st != 200) {
        int rc = cli_fail("backup failed (HTTP %ld): %s", st, resp);
        free(resp);
        return rc;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        free(resp);
        return cli_fail("%s: %s", out, strerror(errno));
    }
    fputs(resp, f);
    int bad = out ? fclose(f) != 0 : fflush(f) != 0;
    free(resp);
    if (bad)
        return cli_fail("%s: write failed", out ? out : "stdout");
    if (out)
        fprintf(stderr, "otasukectl: policy saved to %s\n", out);
    return 0;
}

int cli_restore(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    if (argc != 1)
        return cli_usage("otasukectl restore FILE   (validated fully before anything changes)");
    size_t len;
    char *buf = cli_read_file(argv[0], &len);
    if (!buf)
        return 1;
    json_error_t je;
    json_t *body = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!body)
        return cli_fail("%s:%d: not JSON: %s", argv[0], je.line, je.text);
    return cli_call(&o, "POST", "/v1/restore", body, NULL);
}
