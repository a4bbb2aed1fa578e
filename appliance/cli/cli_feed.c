/* otasukectl feed: keys, building and signing feeds (offline — the hub and tests use
 * these), verifying a feed file, and managing the agent's subscriptions (online). */
#include "cli.h"
#include "cli_agent.h"
#include "domainset.h"
#include "feed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *usage_text =
    "otasukectl feed keygen -o PREFIX          write PREFIX.key (secret, 0600) and PREFIX.pub\n"
    "otasukectl feed build --key SK --feed ID --seq N [--base N] [--expires-in SECONDS]\n"
    "                      -o OUT ENTRIES       ENTRIES lines: INDICATOR CATEGORY [block|allow|remove]\n"
    "                                           writes OUT and OUT.sig\n"
    "otasukectl feed sign --key SK FILE        write FILE.sig\n"
    "otasukectl feed verify --pub PK [--feed ID] [--last-seq N] FILE   (uses FILE.sig)\n"
    "otasukectl feed list | show NAME\n"
    "otasukectl feed add NAME URL --feed-id ID --pubkey PK|--pubkey-file F [--max-bytes N]\n"
    "otasukectl feed add-list NAME URL --category C [--max-bytes N]\n"
    "otasukectl feed rm NAME | refresh NAME | enable NAME | disable NAME\n"
    "online commands take --json and --socket PATH";

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

/* The single positional argument after the subcommand; every option takes a value. */
static const char *positional(int argc, char **argv)
{
    const char *found = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) {
            i++;
            continue;
        }
        if (found)
            return NULL;
        found = argv[i];
    }
    return found;
}

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return cli_fail("%s: %s", path, strerror(errno));
    int ok = fwrite(data, 1, len, f) == len;
    if (fclose(f) != 0 || !ok)
        return cli_fail("%s: write failed", path);
    return 0;
}

static int keygen(int argc, char **argv)
{
    const char *prefix = opt(argc, argv, "-o");
    if (!prefix)
        return cli_usage("otasukectl feed keygen -o PREFIX");
    uint8_t pk[FEED_PUBKEY_BYTES], sk[FEED_SECKEY_BYTES];
    char path[1024], err[256], kid[FEED_KEYID_LEN + 1];
    if (feed_keygen(pk, sk) < 0)
        return cli_fail("key generation failed");
    snprintf(path, sizeof path, "%s.key", prefix);
    if (feed_key_save(path, sk, sizeof sk, 1, err, sizeof err) < 0)
        return cli_fail("%s", err);
    snprintf(path, sizeof path, "%s.pub", prefix);
    if (feed_key_save(path, pk, sizeof pk, 0, err, sizeof err) < 0)
        return cli_fail("%s", err);
    feed_key_id(pk, kid);
    printf("{\"key_id\":\"%s\",\"secret\":\"%s.key\",\"public\":\"%s.pub\"}\n", kid, prefix, prefix);
    return 0;
}

static int sign_to(const char *doc, size_t len, const uint8_t *sk, const char *out)
{
    char sig[256], path[1024];
    int n = feed_sign(doc, len, sk, sig, sizeof sig);
    if (n < 0)
        return cli_fail("signing failed");
    snprintf(path, sizeof path, "%s.sig", out);
    return write_file(path, sig, (size_t)n);
}

static int guess_kind(const char *ind, enum feed_kind *k)
{
    unsigned char a[16];
    if (strchr(ind, '/'))
        *k = FEED_KIND_CIDR;
    else if (inet_pton(AF_INET, ind, a) == 1)
        *k = FEED_KIND_IPV4;
    else if (inet_pton(AF_INET6, ind, a) == 1)
        *k = FEED_KIND_IPV6;
    else
        *k = FEED_KIND_DOMAIN;
    return 0;
}

static int build(int argc, char **argv)
{
    const char *key = opt(argc, argv, "--key"), *id = opt(argc, argv, "--feed");
    const char *seq = opt(argc, argv, "--seq"), *out = opt(argc, argv, "-o");
    const char *base = opt(argc, argv, "--base"), *exp = opt(argc, argv, "--expires-in");
    const char *in = positional(argc, argv);
    if (!key || !id || !seq || !out || !in)
        return cli_usage("otasukectl feed build --key SK --feed ID --seq N [--base N] "
                         "[--expires-in S] -o OUT ENTRIES");
    uint8_t sk[FEED_SECKEY_BYTES], pk[FEED_PUBKEY_BYTES];
    char err[256];
    if (feed_key_load(key, sk, sizeof sk, err, sizeof err) < 0)
        return cli_fail("%s", err);
    memcpy(pk, sk + 32, sizeof pk);   /* libsodium's secret key ends with the public key */
    size_t len;
    char *text = cli_read_file(in, &len);
    if (!text)
        return 1;
    struct feed_manifest m;
    memset(&m, 0, sizeof m);
    snprintf(m.feed, sizeof m.feed, "%s", id);
    m.seq = strtoull(seq, NULL, 10);
    m.base = base ? strtoull(base, NULL, 10) : 0;
    m.type = base ? FEED_DELTA : FEED_SNAPSHOT;
    m.created = time(NULL);
    m.expires = m.created + (exp ? atoll(exp) : 7 * 86400);
    feed_key_id(pk, m.signer);
    /* Entries first into a buffer, then the manifest with their count in front. */
    size_t cap = len * 4 + 4096, used = 0;
    char *body = malloc(cap);
    unsigned long lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && body; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char ind[FEED_INDICATOR_MAX + 1], cat[40] = "", act[16] = "block";
        if (line[0] == '#' || sscanf(line, "%253s %39s %15s", ind, cat, act) < 1)
            continue;
        struct feed_entry e;
        memset(&e, 0, sizeof e);
        snprintf(e.indicator, sizeof e.indicator, "%s", ind);
        guess_kind(ind, &e.kind);
        e.category = cat[0] ? dset_category_parse(cat) : -1;
        e.action = !strcmp(act, "allow") ? FEED_ACT_ALLOW : !strcmp(act, "remove") ? FEED_ACT_REMOVE
                   : FEED_ACT_BLOCK;
        e.confidence = 100;
        snprintf(e.source, sizeof e.source, "otasukectl");
        if ((cat[0] && e.category < 0) || (!strcmp(act, "remove") && !base)) {
            free(body);
            free(text);
            return cli_fail("%s:%lu: bad category '%s' or 'remove' outside a delta", in, lineno, cat);
        }
        if (used + 1024 > cap) {
            char *b = realloc(body, cap *= 2);
            if (!b)
                break;
            body = b;
        }
        int n = feed_format_entry(&e, body + used, cap - used);
        if (n < 0) {
            free(body);
            free(text);
            return cli_fail("%s:%lu: cannot format entry", in, lineno);
        }
        /* Round-trip through the parser: a feed we write must be one we accept. */
        struct feed_entry chk;
        if (feed_parse_entry(body + used, (size_t)n - 1, m.type == FEED_DELTA, &chk, err,
                             sizeof err) < 0) {
            free(body);
            free(text);
            return cli_fail("%s:%lu: %s", in, lineno, err);
        }
        used += (size_t)n;
        m.count++;
    }
    free(text);
    if (!body)
        return cli_fail("out of memory");
    char man[1024];
    int mn = feed_format_manifest(&m, man, sizeof man);
    char *doc = malloc(used + (size_t)mn + 1);
    if (!doc || mn < 0) {
        free(body);
        free(doc);
        return cli_fail("out of memory");
    }
    memcpy(doc, man, (size_t)mn);
    memcpy(doc + mn, body, used);
    free(body);
    int rc = write_file(out, doc, used + (size_t)mn);
    if (rc == 0)
        rc = sign_to(doc, used + (size_t)mn, sk, out);
    free(doc);
    if (rc == 0)
        printf("{\"feed\":\"%s\",\"seq\":%llu,\"entries\":%llu,\"file\":\"%s\"}\n", m.feed,
               (unsigned long long)m.seq, (unsigned long long)m.count, out);
    return rc;
}

static int sign(int argc, char **argv)
{
    const char *key = opt(argc, argv, "--key");
    const char *file = positional(argc, argv);
    if (!key || !file)
        return cli_usage("otasukectl feed sign --key SK FILE");
    uint8_t sk[FEED_SECKEY_BYTES];
    char err[256];
    if (feed_key_load(key, sk, sizeof sk, err, sizeof err) < 0)
        return cli_fail("%s", err);
    size_t len;
    char *doc = cli_read_file(file, &len);
    if (!doc)
        return 1;
    int rc = sign_to(doc, len, sk, file);
    free(doc);
    return rc;
}

static int count_entry(const struct feed_entry *e, void *ctx)
{
    (void)e;
    (*(unsigned long *)ctx)++;
    return 0;
}

static int verify(int argc, char **argv)
{
    const char *pub = opt(argc, argv, "--pub"), *id = opt(argc, argv, "--feed");
    const char *last = opt(argc, argv, "--last-seq");
    const char *file = positional(argc, argv);
    if (!pub || !file)
        return cli_usage("otasukectl feed verify --pub PK [--feed ID] [--last-seq N] FILE");
    uint8_t pk[FEED_PUBKEY_BYTES];
    char err[512], sigpath[1024];
    if (feed_key_load(pub, pk, sizeof pk, err, sizeof err) < 0)
        return cli_fail("%s", err);
    size_t len, siglen = 0;
    char *doc = cli_read_file(file, &len);
    if (!doc)
        return 1;
    snprintf(sigpath, sizeof sigpath, "%s.sig", file);
    FILE *sf = fopen(sigpath, "r");
    char sig[512] = "";
    if (sf) {
        siglen = fread(sig, 1, sizeof sig - 1, sf);
        fclose(sf);
    }
    struct feed_expect x = { .feed_id = id, .pubkey = pk,
                             .last_seq = last ? strtoull(last, NULL, 10) : 0,
                             .now = time(NULL), .max_bytes = FEED_DEFAULT_MAX_BYTES };
    struct feed_manifest m;
    enum feed_reason r = feed_verify(doc, len, sf ? sig : NULL, siglen, &x, &m, err, sizeof err);
    if (r != FEED_OK) {
        free(doc);
        printf("{\"ok\":false,\"reason\":\"%s\"}\n", feed_reason_name(r));
        return cli_fail("%s: refused (%s): %s", file, feed_reason_name(r), err);
    }
    unsigned long n = 0;
    int rc = feed_foreach_entry(doc, len, &m, count_entry, &n, err, sizeof err);
    free(doc);
    if (rc != 0) {
        printf("{\"ok\":false,\"reason\":\"bad-entry\"}\n");
        return cli_fail("%s: refused (bad-entry): %s", file, err);
    }
    printf("{\"ok\":true,\"feed\":\"%s\",\"seq\":%llu,\"type\":\"%s\",\"entries\":%llu,"
           "\"expires\":%lld}\n", m.feed, (unsigned long long)m.seq,
           m.type == FEED_DELTA ? "delta" : "snapshot", (unsigned long long)m.count,
           (long long)m.expires);
    return 0;
}

static int online(int argc, char **argv)
{
    struct cli_online o;
    argc = cli_online_opts(&o, argc, argv);
    char path[256];
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return cli_call(&o, "GET", "/v1/feeds", NULL, NULL);
    if (argc >= 3 && (strcmp(argv[0], "add") == 0 || strcmp(argv[0], "add-list") == 0)) {
        int list = strcmp(argv[0], "add-list") == 0;
        json_t *b = json_pack("{s:s, s:s, s:s}", "name", argv[1], "url", argv[2], "kind",
                              list ? "list" : "signed");
        const char *pk = opt(argc, argv, "--pubkey"), *pkf = opt(argc, argv, "--pubkey-file");
        char keytext[128] = "";
        if (pkf) {
            uint8_t raw[FEED_PUBKEY_BYTES];
            char err[256];
            if (feed_key_load(pkf, raw, sizeof raw, err, sizeof err) < 0) {
                json_decref(b);
                return cli_fail("%s", err);
            }
            feed_key_encode(raw, sizeof raw, keytext, sizeof keytext);
            pk = keytext;
        }
        if (pk)
            json_object_set_new(b, "pubkey", json_string(pk));
        if (opt(argc, argv, "--feed-id"))
            json_object_set_new(b, "feed_id", json_string(opt(argc, argv, "--feed-id")));
        if (opt(argc, argv, "--category"))
            json_object_set_new(b, "category", json_string(opt(argc, argv, "--category")));
        if (opt(argc, argv, "--max-bytes"))
            json_object_set_new(b, "max_bytes",
                                json_integer(atoll(opt(argc, argv, "--max-bytes"))));
        return cli_call(&o, "POST", "/v1/feeds", b, NULL);
    }
    if (argc == 2 && (strcmp(argv[0], "enable") == 0 || strcmp(argv[0], "disable") == 0)) {
        snprintf(path, sizeof path, "/v1/feeds/%.64s", argv[1]);
        return cli_call(&o, "PUT", path,
                        json_pack("{s:b}", "enabled", strcmp(argv[0], "enable") == 0), NULL);
    }
    if (argc == 2 && (strcmp(argv[0], "rm") == 0 || strcmp(argv[0], "refresh") == 0)) {
        int rm = strcmp(argv[0], "rm") == 0;
        snprintf(path, sizeof path, "/v1/feeds/%.64s%s", argv[1], rm ? "" : "/refresh");
        return cli_call(&o, rm ? "DELETE" : "POST", path, NULL, NULL);
    }
    return cli_usage("%s", usage_text);
}

int cli_feed(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "help") == 0) {
        puts(usage_text);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "keygen") == 0)
        return keygen(argc, argv);
    if (strcmp(argv[0], "build") == 0)
        return build(argc, argv);
    if (strcmp(argv[0], "sign") == 0)
        return sign(argc, argv);
    if (strcmp(argv[0], "verify") == 0)
        return verify(argc, argv);
    return online(argc, argv);
}
