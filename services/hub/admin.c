/* otasuke-hubd admin: the operator's command line. Works on the state dir and database
 * directly, so it needs no running hubd; a running hubd notices feed changes within
 * 50 ms (it polls the seq) and pushes them. Secrets (codes, tokens) are printed once
 * and stored only hashed. */
#include "hubd.h"

#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: otasuke-hubd [-d STATE_DIR] [--db URI] admin COMMAND\n"
    "  org add NAME | org list\n"
    "  code create ORG [--ttl SECONDS]        one-time enrolment code (printed once)\n"
    "  box list [--org NAME] | box revoke ID\n"
    "  operator add NAME                      API token for the fleet view (printed once)\n"
    "  indicator add VALUE --category CAT [--kind domain|ipv4|ipv6|cidr]\n"
    "  indicator confirm VALUE [--category CAT] [--kind K]   analyst confirmation\n"
    "  indicator remove VALUE [--kind K] | indicator list\n"
    "  indicator import FILE --category CAT --source LABEL   curated list, replaces LABEL's last\n"
    "  allow add VALUE [--kind K] [--note TEXT]  never publish; demotes at once\n"
    "  feed seq | mqtt-files | tls [--hosts H1,H2]\n"
    "  box add-bulk ORG N --out FILE         benchmark: N boxes, credentials to FILE\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

/* Options after the positional words: --kind, --category, --ttl, --org, --note, --out,
 * --hosts. Unknown options are refused. */
struct aopts { const char *kind, *category, *org, *note, *out, *hosts, *source; long ttl; };

static int parse_opts(int argc, char **argv, int first, struct aopts *a, char **pos, int *npos)
{
    *npos = 0;
    for (int i = first; i < argc; i++) {
        const char *k = argv[i];
        if (strncmp(k, "--", 2) != 0) {
            if (*npos >= 4)
                return -1;
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "otasuke-hubd: option %s needs a value\n", k);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(k, "--kind")) a->kind = v;
        else if (!strcmp(k, "--category")) a->category = v;
        else if (!strcmp(k, "--org")) a->org = v;
        else if (!strcmp(k, "--note")) a->note = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else if (!strcmp(k, "--hosts")) a->hosts = v;
        else if (!strcmp(k, "--source")) a->source = v;
        else if (!strcmp(k, "--ttl")) {
            char *end;
            a->ttl = strtol(v, &end, 10);
            if (*end || a->ttl <= 0) {
                fprintf(stderr, "otasuke-hubd: --ttl: expected seconds > 0\n");
                return -1;
            }
        } else {
            fprintf(stderr, "otasuke-hubd: unknown option %s\n", k);
            return -1;
        }
    }
    return 0;
}

static int print_row(int n, const char *const *v, void *ctx)
{
    const char *const *names = ctx;
    json_t *o = json_object();
    for (int i = 0; i < n && names[i]; i++)
        json_object_set_new(o, names[i], v[i] ? json_string(v[i]) : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s)
        puts(s);
    free(s);
    return 0;
}

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "otasuke-hubd: %s: %s\n", what, err);
    return 1;
}

static int feed_change(int r, const char *what, const char *err)
{
    if (r < 0)
        return fail(what, err);
    printf("%s\n", r > 0 ? "feed changed" : "no feed change");
    return 0;
}

static int bulk(struct hub *h, const char *org, long n, const char *out)
{
    char err[300];
    long org_id = hub_org_find(h, org, err, sizeof err);
    if (org_id < 0)
        return fail("box add-bulk", err);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f)
        return fail("box add-bulk", "cannot create the output file");
    /* One transaction: 10,000 inserts in one fsync instead of 10,000. */
    if (hubdb_begin(h->db, err, sizeof err) < 0) {
        fclose(f);
        return fail("box add-bulk", err);
    }
    char orgs[24], now[24];
    snprintf(orgs, sizeof orgs, "%ld", org_id);
    snprintf(now, sizeof now, "%lld", hub_now());
    for (long i = 0; i < n; i++) {
        char token[HUB_TOKEN_HEX + 1], th[HUB_HASH_HEX + 1], pass[HUB_TOKEN_HEX + 1];
        char pw[200], user[40], rnd[17], pk[64], name[32];
        hub_random_hex(32, token);
        hub_random_hex(16, pass);
        hub_random_hex(8, rnd);
        hub_random_hex(16, pk);    /* placeholder key: bulk boxes never sign anything */
        hub_sha256_hex(token, strlen(token), th);
        snprintf(user, sizeof user, "box-%s", rnd);
        snprintf(name, sizeof name, "bench-%ld", i);
        if (hub_mqtt_pwhash(pass, pw, sizeof pw) < 0) {
            hubdb_rollback(h->db);
            fclose(f);
            return fail("box add-bulk", "hashing failed");
        }
        const char *p[] = { orgs, name, pk, th, user, pw, now };
        if (hubdb_exec(h->db, "INSERT INTO boxes (org_id, name, pubkey, token_hash, "
                       "mqtt_user, mqtt_pwhash, enrolled, version) VALUES ($1,$2,$3,$4,$5,"
                       "$6,$7,'bench')", 7, p, NULL, NULL, err, sizeof err) < 0) {
            hubdb_rollback(h->db);
            fclose(f);
            return fail("box add-bulk", err);
        }
        fprintf(f, "%s %s %s\n", user, pass, token);
    }
    if (hubdb_commit(h->db, err, sizeof err) < 0) {
        fclose(f);
        return fail("box add-bulk", err);
    }
    fclose(f);
    if (hub_mqtt_write_files(h, err, sizeof err) < 0)
        return fail("mqtt-files", err);
    printf("%ld boxes added to %s\n", n, org);
    return 0;
}

static int run(struct hub *h, int argc, char **argv)
{
    char err[300];
    struct aopts a = { .kind = "domain", .ttl = (long)h->o.code_ttl };
    char *pos[4];
    int np;
    if (argc < 1 || parse_opts(argc, argv, 1, &a, pos, &np) < 0)
        return usage();
    const char *g = argv[0], *sub = np > 0 ? pos[0] : "";
    if (!strcmp(g, "org") && !strcmp(sub, "add") && np == 2) {
        long id = hub_org_add(h, pos[1], err, sizeof err);
        if (id < 0)
            return fail("org add", err);
        printf("org %ld %s\n", id, pos[1]);
        return 0;
    }
    if (!strcmp(g, "org") && !strcmp(sub, "list") && np == 1) {
        static const char *const n[] = { "id", "name", "created", "boxes", NULL };
        return hubdb_exec(h->db, "SELECT o.id, o.name, o.created, (SELECT COUNT(*) FROM boxes "
                          "b WHERE b.org_id = o.id AND b.revoked IS NULL) FROM orgs o ORDER BY "
                          "o.id", 0, NULL, print_row, (void *)n, err, sizeof err) < 0
            ? fail("org list", err) : 0;
    }
    if (!strcmp(g, "code") && !strcmp(sub, "create") && np == 2) {
        long org = hub_org_find(h, pos[1], err, sizeof err);
        char code[64];
        if (org < 0 || hub_code_create(h, org, a.ttl, code, sizeof code, err, sizeof err) < 0)
            return fail("code create", err);
        printf("%s\n", code);
        fprintf(stderr, "one-time code for %s, valid %ld s; it is shown only now\n", pos[1],
                a.ttl);
        return 0;
    }
    if (!strcmp(g, "box") && !strcmp(sub, "list") && np == 1) {
        static const char *const n[] = { "id", "org", "name", "version", "feed_seq",
                                         "last_heartbeat", "enrolled", "revoked", NULL };
        const char *p[] = { a.org ? a.org : "" };
        return hubdb_exec(h->db, "SELECT b.id, o.name, b.name, b.version, b.feed_seq, "
                          "b.last_heartbeat, b.enrolled, b.revoked FROM boxes b JOIN orgs o ON "
                          "o.id = b.org_id WHERE ($1 = '' OR o.name = $1) ORDER BY b.id", 1, p,
                          print_row, (void *)n, err, sizeof err) < 0 ? fail("box list", err) : 0;
    }
    if (!strcmp(g, "box") && !strcmp(sub, "revoke") && np == 2) {
        char *end;
        long id = strtol(pos[1], &end, 10);
        if (*end || id <= 0)
            return fail("box revoke", "expected a box id (see 'admin box list')");
        if (hub_box_revoke(h, id, err, sizeof err) < 0 ||
            hub_mqtt_write_files(h, err, sizeof err) < 0)
            return fail("box revoke", err);
        printf("box %ld revoked\n", id);
        return 0;
    }
    if (!strcmp(g, "box") && !strcmp(sub, "add-bulk") && np == 3 && a.out) {
        char *end;
        long n = strtol(pos[2], &end, 10);
        if (*end || n <= 0 || n > 1000000)
            return fail("box add-bulk", "N must be 1..1000000");
        return bulk(h, pos[1], n, a.out);
    }
    if (!strcmp(g, "operator") && !strcmp(sub, "add") && np == 2) {
        char token[HUB_TOKEN_HEX + 1], th[HUB_HASH_HEX + 1], now[24];
        hub_random_hex(32, token);
        hub_sha256_hex(token, strlen(token), th);
        snprintf(now, sizeof now, "%lld", hub_now());
        const char *p[] = { th, pos[1], now };
        if (hubdb_exec(h->db, "INSERT INTO operators (token_hash, name, created) VALUES "
                       "($1,$2,$3)", 3, p, NULL, NULL, err, sizeof err) < 0)
            return fail("operator add", err);
        hub_audit(h, "operator", "operator-add", "name %s", pos[1]);
        printf("%s\n", token);
        return 0;
    }
    if (!strcmp(g, "indicator") && !strcmp(sub, "add") && np == 2) {
        if (!a.category)
            return fail("indicator add", "--category is required");
        return feed_change(hub_indicator_add(h, pos[1], a.kind, a.category, "operator", err,
                                             sizeof err), "indicator add", err);
    }
    if (!strcmp(g, "indicator") && !strcmp(sub, "confirm") && np == 2)
        return feed_change(hub_indicator_confirm(h, pos[1], a.kind, a.category, err,
                                                 sizeof err), "indicator confirm", err);
    if (!strcmp(g, "indicator") && !strcmp(sub, "remove") && np == 2)
        return feed_change(hub_indicator_remove(h, pos[1], a.kind, err, sizeof err),
                           "indicator remove", err);
    if (!strcmp(g, "indicator") && !strcmp(sub, "import") && np == 2) {
        if (!a.category || !a.source)
            return fail("indicator import", "--category and --source are required");
        long added = 0, removed = 0;
        int r = hub_indicator_import(h, pos[1], a.category, a.source, &added, &removed, err,
                                     sizeof err);
        if (r < 0)
            return fail("indicator import", err);
        printf("%ld added, %ld removed (%s)\n", added, removed, r ? "feed changed" :
               "no feed change");
        return 0;
    }
    if (!strcmp(g, "indicator") && !strcmp(sub, "list") && np == 1) {
        static const char *const n[] = { "indicator", "kind", "category", "source", "state",
                                         "confidence", "expires", "seq", "orgs",
                                         "fp_reports", NULL };
        return hubdb_exec(h->db, "SELECT i.indicator, i.kind, i.category, i.source, i.state, "
                          "i.confidence, i.expires, i.seq, (SELECT COUNT(*) FROM contributions c "
                          "WHERE c.indicator = i.indicator AND c.kind = i.kind), (SELECT "
                          "COUNT(*) FROM fp_reports f WHERE f.indicator = i.indicator AND "
                          "f.kind = i.kind) FROM indicators i ORDER BY i.seq, i.indicator", 0,
                          NULL, print_row, (void *)n, err, sizeof err) < 0
            ? fail("indicator list", err) : 0;
    }
    if (!strcmp(g, "allow") && !strcmp(sub, "add") && np == 2)
        return feed_change(hub_allow_add(h, pos[1], a.kind, a.note, err, sizeof err),
                           "allow add", err);
    if (!strcmp(g, "feed") && !strcmp(sub, "seq") && np == 1) {
        long long s = hub_feed_seq(h, err, sizeof err);
        if (s < 0)
            return fail("feed seq", err);
        printf("%lld\n", s);
        return 0;
    }
    if (!strcmp(g, "mqtt-files") && np == 0)
        return hub_mqtt_write_files(h, err, sizeof err) < 0 ? fail("mqtt-files", err) : 0;
    if (!strcmp(g, "tls") && np == 0)
        return hub_tls_ensure(h->o.state_dir, a.hosts, err, sizeof err) < 0
            ? fail("tls", err) : 0;
    return usage();
}

int hub_admin(struct hub_opts *o, int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
        fputs(usage_text, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct hub h;
    char err[300];
    if (hub_open(&h, o, err, sizeof err) < 0)
        return fail("opening the hub state", err);
    int rc = run(&h, argc, argv);
    hub_close(&h);
    return rc;
}
