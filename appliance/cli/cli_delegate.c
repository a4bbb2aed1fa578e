/* otasukectl delegate: delegates, grants, and the delegate's side of a signed change. */
#include "cli.h"
#include "cli_agent.h"
#include "feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *usage_text =
    "otasukectl delegate list\n"
    "otasukectl delegate add NAME PUBKEY-FILE\n"
    "otasukectl delegate grants\n"
    "otasukectl delegate grant NAME --categories a,b --groups g,h|* --actions add_block,...\n"
    "                          [--days N]\n"
    "otasukectl delegate revoke GRANT-ID\n"
    "delegate side (offline):\n"
    "otasukectl delegate body NAME ACTION INDICATOR CATEGORY [GROUP]   print a change body\n"
    "otasukectl delegate sign --key SK BODY-FILE                      print its signature\n"
    "otasukectl delegate submit BODY-FILE (--key SK | --sig SIG-FILE)  send it to the agent\n"
    "online commands take --json and --socket PATH";

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int sign_body(const char *keyfile, const char *body, size_t len, char *out, size_t outlen)
{
    uint8_t sk[FEED_SECKEY_BYTES];
    char err[256];
    if (feed_key_load(keyfile, sk, sizeof sk, err, sizeof err) < 0)
        return cli_fail("%s", err);
    if (feed_sig_sign_b64(body, len, sk, out, outlen) < 0)
        return cli_fail("signing failed");
    return 0;
}

int cli_delegate(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    char path[128];
    if (argc < 1 || strcmp(argv[0], "help") == 0) {
        puts(usage_text);
        return argc < 1 ? 2 : 0;
    }
    const char *cmd = argv[0];
    if (argc == 1 && !strcmp(cmd, "list"))
        return cli_call(&o, "GET", "/v1/delegates", NULL, NULL);
    if (argc == 1 && !strcmp(cmd, "grants"))
        return cli_call(&o, "GET", "/v1/grants", NULL, NULL);
    if (argc == 3 && !strcmp(cmd, "add")) {
        uint8_t pk[FEED_PUBKEY_BYTES];
        char err[256], b64[128];
        if (feed_key_load(argv[2], pk, sizeof pk, err, sizeof err) < 0)
            return cli_fail("%s", err);
        feed_key_encode(pk, sizeof pk, b64, sizeof b64);
        return cli_call(&o, "POST", "/v1/delegates",
                        json_pack("{s:s, s:s}", "name", argv[1], "pubkey", b64), NULL);
    }
    if (argc >= 2 && !strcmp(cmd, "grant")) {
        const char *c = opt(argc, argv, "--categories"), *g = opt(argc, argv, "--groups");
        const char *a = opt(argc, argv, "--actions"), *d = opt(argc, argv, "--days");
        if (!c || !g || !a)
            return cli_usage("%s", usage_text);
        json_t *b = json_pack("{s:s, s:o, s:o, s:o}", "delegate", argv[1], "categories",
                              cli_split_list(c), "groups", cli_split_list(g), "actions",
                              cli_split_list(a));
        if (d)
            json_object_set_new(b, "days", json_integer(atoll(d)));
        return cli_call(&o, "POST", "/v1/grants", b, NULL);
    }
    if (argc == 2 && !strcmp(cmd, "revoke")) {
        snprintf(path, sizeof path, "/v1/grants/%.32s/revoke", argv[1]);
        return cli_call(&o, "POST", path, NULL, NULL);
    }
    if ((argc == 5 || argc == 6) && !strcmp(cmd, "body")) {
        json_t *ch = json_pack("{s:s, s:s, s:s}", "action", argv[2], "indicator", argv[3],
                               "category", argv[4]);
        if (argc == 6)
            json_object_set_new(ch, "group", json_string(argv[5]));
        json_t *b = json_pack("{s:s, s:I, s:[o]}", "delegate", argv[1], "created",
                              (json_int_t)time(NULL), "changes", ch);
        char *s = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(b);
        if (!s)
            return cli_fail("out of memory");
        puts(s);
        free(s);
        return 0;
    }
    if (!strcmp(cmd, "sign") || !strcmp(cmd, "submit")) {
        const char *file = NULL;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--key") || !strcmp(argv[i], "--sig"))
                i++;
            else if (!file)
                file = argv[i];
            else
                return cli_usage("%s", usage_text);
        }
        const char *key = opt(argc, argv, "--key"), *sigf = opt(argc, argv, "--sig");
        if (!file || (!key && !sigf) || (!strcmp(cmd, "sign") && !key))
            return cli_usage("%s", usage_text);
        size_t len;
        char *body = cli_read_file(file, &len);
        if (!body)
            return 1;
        /* The signature covers the exact bytes sent; a trailing newline from an editor
         * or from 'delegate body > file' is part of neither. */
        while (len && (body[len - 1] == '\n' || body[len - 1] == '\r'))
            body[--len] = '\0';
        char sig[128] = "";
        if (key && sign_body(key, body, len, sig, sizeof sig)) {
            free(body);
            return 1;
        }
        if (!key) {
            size_t sl;
            char *s = cli_read_file(sigf, &sl);
            if (!s) {
                free(body);
                return 1;
            }
            snprintf(sig, sizeof sig, "%s", s);
            sig[strcspn(sig, "\r\n")] = '\0';
            free(s);
        }
        if (!strcmp(cmd, "sign")) {
            puts(sig);
            free(body);
            return 0;
        }
        json_t *b = json_pack("{s:s, s:s}", "body", body, "signature", sig);
        free(body);
        return cli_call(&o, "POST", "/v1/delegated", b, NULL);
    }
    return cli_usage("%s", usage_text);
}
