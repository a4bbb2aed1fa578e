/* otasukectl setup-code: shows the one-time code that sets the first owner password in the
 * web UI (the agent mints it on first use; it stops working once an owner exists). The
 * code is printed on stdout only — never logged. Also prints webd's certificate
 * fingerprint so the owner can check the browser's certificate warning against it. */
#include "cli.h"
#include "cli_agent.h"
#include "apiclient.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void print_code(json_t *a)
{
    time_t exp = (time_t)json_integer_value(json_object_get(a, "expires_at"));
    char when[32] = "?";
    struct tm tm;
    if (localtime_r(&exp, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    printf("setup code: %s  (valid until %s)\n", json_string_value(json_object_get(a, "code")),
           when);
    printf("open the box's web page, choose \"first setup\" and type this code with a new "
           "password.\n");
}

static void print_webd(json_t *a)
{
    const char *fp = json_string_value(json_object_get(a, "fingerprint"));
    printf("web UI certificate SHA-256: %s\n", fp ? fp : "(otasuke-webd has not started yet)");
}

void cli_webd_fingerprint(const struct cli_online *o)
{
    cli_call(o, "GET", "/v1/webd", NULL, print_webd);
}

int cli_setup_code(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    if (argc != 0)
        return cli_usage("otasukectl setup-code [--json] [--socket PATH]");
    int rc = cli_call(&o, "POST", "/v1/auth/setup-code", NULL, print_code);
    if (rc == 0 && !o.json)
        cli_webd_fingerprint(&o);
    return rc;
}
