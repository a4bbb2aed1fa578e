/* policy.set reader, validator and writer. See policyset.h for the format. */
#include "policyset.h"
#include "atomicfile.h"

#include "domainset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct policy_client {
    int family;               /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
    unsigned group;
    char text[64];            /* as written, for policy_to_json */
};

struct custom_entry {
    uint64_t hash;            /* 0 = empty slot */
    uint32_t name_off;        /* into names */
    uint16_t group;
    uint8_t kind;             /* POLICY_CUSTOM_ALLOW / BLOCK */
    uint8_t len;
};

struct policy_set {
    struct policy_group groups[POLICY_MAX_GROUPS];
    unsigned n_groups;
    unsigned default_group;
    struct policy_client *clients;
    unsigned n_clients;
    int has_bp4, has_bp6;
    uint8_t bp4[4], bp6[16];
    struct custom_entry *custom;   /* open addressing, power-of-two size */
    size_t custom_mask;
    size_t n_custom;
    char *names;                   /* NUL-separated custom names */
    size_t names_len, names_cap;
};

static void perr(char *err, size_t errlen, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void perr(char *err, size_t errlen, const char *label, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    int n = snprintf(err, errlen, "%s: ", label);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* FNV-1a over (group, name): the custom table holds only the owner's names, so a
 * client cannot grow chains in it; lookups stay a few probes. */
static uint64_t custom_hash(unsigned group, const char *name, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (group * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

static int custom_add(struct policy_set *ps, unsigned group, const char *name, size_t len,
                      int kind)
{
    uint64_t h = custom_hash(group, name, len);
    size_t i = h & ps->custom_mask;
    for (;; i = (i + 1) & ps->custom_mask) {
        struct custom_entry *e = &ps->custom[i];
        if (e->hash == 0)
            break;
        if (e->hash == h && e->group == group && e->len == len &&
            memcmp(ps->names + e->name_off, name, len) == 0) {
            if (kind == POLICY_CUSTOM_ALLOW)
                e->kind = POLICY_CUSTOM_ALLOW;   /* listed in both: allow wins */
            return 0;
        }
    }
    if (ps->names_len + len + 1 > ps->names_cap) {
        size_t cap = ps->names_cap ? ps->names_cap * 2 : 4096;
        while (cap < ps->names_len + len + 1)
            cap *= 2;
        char *n = realloc(ps->names, cap);
        if (!n)
            return -1;
        ps->names = n;
        ps->names_cap = cap;
    }
    memcpy(ps->names + ps->names_len, name, len);
    ps->names[ps->names_len + len] = '\0';
    ps->custom[i] = (struct custom_entry){ .hash = h, .name_off = (uint32_t)ps->names_len,
                                           .group = (uint16_t)group, .kind = (uint8_t)kind,
                                           .len = (uint8_t)len };
    ps->names_len += len + 1;
    ps->n_custom++;
    return 0;
}

static enum policy_custom custom_find(const struct policy_set *ps, unsigned group,
                                      const char *name, size_t len)
{
    uint64_t h = custom_hash(group, name, len);
    for (size_t i = h & ps->custom_mask;; i = (i + 1) & ps->custom_mask) {
        const struct custom_entry *e = &ps->custom[i];
        if (e->hash == 0)
            return POLICY_CUSTOM_NONE;
        if (e->hash == h && e->group == group && e->len == len &&
            memcmp(ps->names + e->name_off, name, len) == 0)
            return (enum policy_custom)e->kind;
    }
}

enum policy_custom policy_custom_lookup(const struct policy_set *ps, unsigned group,
                                        const char *name, size_t len, size_t *matched_off)
{
    if (group >= ps->n_groups)
        return POLICY_CUSTOM_NONE;
    const struct policy_group *g = &ps->groups[group];
    if (g->n_allow + g->n_block == 0)
        return POLICY_CUSTOM_NONE;
    enum policy_custom found = POLICY_CUSTOM_NONE;
    size_t off = 0;
    for (;;) {
        enum policy_custom k = custom_find(ps, group, name + off, len - off);
        if (k == POLICY_CUSTOM_ALLOW) {
            if (matched_off)
                *matched_off = off;
            return k;
        }
        if (k == POLICY_CUSTOM_BLOCK && found == POLICY_CUSTOM_NONE) {
            found = k;
            if (matched_off)
                *matched_off = off;
        }
        while (off < len && name[off] != '.')
            off++;
        if (off >= len)
            break;
        off++;
    }
    return found;
}

/* Parses "192.0.2.0/24", "fd00::/64" or a single address. Returns 0 or -1. */
static int parse_cidr(const char *s, struct policy_client *c)
{
    char buf[64];
    unsigned prefix;
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n + 1);
    char *slash = strchr(buf, '/');
    if (slash) {
        *slash = '\0';
        char *end;
        errno = 0;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (errno || *end || end == slash + 1 || v > 128)
            return -1;
        prefix = (unsigned)v;
    } else {
        prefix = 1000;
    }
    memset(c->addr, 0, sizeof c->addr);
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        if (prefix == 1000)
            prefix = 32;
        if (prefix > 32)
            return -1;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        if (prefix == 1000)
            prefix = 128;
    } else {
        return -1;
    }
    /* host bits set ("192.0.2.10/24") are almost always a typo for a different network */
    unsigned bytes = c->family == AF_INET ? 4 : 16;
    for (unsigned bit = prefix; bit < bytes * 8; bit++)
        if (c->addr[bit / 8] & (0x80u >> (bit % 8)))
            return -2;
    c->prefix = prefix;
    snprintf(c->text, sizeof c->text, "%s", s);
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, full) != 0)
        return 0;
    if (rest) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));
        if ((a[full] & mask) != (net[full] & mask))
            return 0;
    }
    return 1;
}

unsigned policy_group_for(const struct policy_set *ps, int family, const uint8_t *addr)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    int best = -1;
    unsigned best_prefix = 0;
    for (unsigned i = 0; i < ps->n_clients; i++) {
        const struct policy_client *c = &ps->clients[i];
        if (c->family != family || (best >= 0 && c->prefix <= best_prefix))
            continue;
        if (prefix_match(addr, c->addr, c->prefix)) {
            best = (int)i;
            best_prefix = c->prefix;
        }
    }
    return best >= 0 ? ps->clients[best].group : ps->default_group;
}

static struct policy_set *ps_new(size_t custom_names)
{
    struct policy_set *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    size_t slots = 16;
    while (slots < custom_names * 2 + 2)
        slots *= 2;
    ps->custom = calloc(slots, sizeof *ps->custom);
    if (!ps->custom) {
        free(ps);
        return NULL;
    }
    ps->custom_mask = slots - 1;
    return ps;
}

void policy_free(struct policy_set *ps)
{
    if (!ps)
        return;
    free(ps->clients);
    free(ps->custom);
    free(ps->names);
    free(ps);
}

struct policy_set *policy_default(char *err, size_t errlen)
{
    struct policy_set *ps = ps_new(0);
    if (!ps) {
        perr(err, errlen, "policy", "out of memory");
        return NULL;
    }
    ps->n_groups = 1;
    snprintf(ps->groups[0].name, sizeof ps->groups[0].name, "default");
    ps->groups[0].categories = (1u << DSET_CAT_COUNT) - 1;
    ps->groups[0].answer = POLICY_ANSWER_NXDOMAIN;
    return ps;
}

static int check_keys(json_t *obj, const char *const *allowed, const char *label,
                      const char *path, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = 1;
        if (!ok) {
            perr(err, errlen, label, "%s%s%s: unknown field (remove it or check the spelling)",
                 path, *path ? "." : "", key);
            return -1;
        }
    }
    return 0;
}

static int valid_group_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > POLICY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static int parse_names(struct policy_set *ps, unsigned gi, json_t *arr, int kind,
                       const char *label, const char *field, char *err, size_t errlen)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr)) {
        perr(err, errlen, label, "groups[%u].%s: expected an array of domain names", gi, field);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        char norm[DSET_NAME_MAX + 2], why[128];
        if (!json_is_string(v)) {
            perr(err, errlen, label, "groups[%u].%s[%zu]: expected a string", gi, field, i);
            return -1;
        }
        const char *s = json_string_value(v);
        int n = dset_normalize(s, strlen(s), norm, sizeof norm, why, sizeof why);
        if (n <= 0) {
            perr(err, errlen, label, "groups[%u].%s[%zu]: \"%.80s\" is not a valid domain name (%s)",
                 gi, field, i, s, n == 0 ? "empty" : why);
            return -1;
        }
        if (ps->n_custom >= POLICY_MAX_CUSTOM) {
            perr(err, errlen, label, "groups[%u].%s: more than %d custom names in total",
                 gi, field, POLICY_MAX_CUSTOM);
            return -1;
        }
        if (custom_add(ps, gi, norm, (size_t)n, kind) < 0) {
            perr(err, errlen, label, "out of memory");
            return -1;
        }
        if (kind == POLICY_CUSTOM_ALLOW)
            ps->groups[gi].n_allow++;
        else
            ps->groups[gi].n_block++;
    }
    return 0;
}

static int parse_group(struct policy_set *ps, unsigned gi, json_t *g, const char *label,
                       char *err, size_t errlen)
{
    static const char *const keys[] = { "name", "categories", "answer", "safesearch",
                                        "youtube", "allow", "block", NULL };
    char path[32];
    snprintf(path, sizeof path, "groups[%u]", gi);
    if (!json_is_object(g)) {
        perr(err, errlen, label, "%s: expected an object", path);
        return -1;
    }
    if (check_keys(g, keys, label, path, err, errlen) < 0)
        return -1;
    struct policy_group *grp = &ps->groups[gi];
    json_t *v = json_object_get(g, "name");
    if (!json_is_string(v) || !valid_group_name(json_string_value(v))) {
        perr(err, errlen, label, "%s.name: expected a name of 1-%d letters, digits, '-' or '_'",
             path, POLICY_NAME_MAX);
        return -1;
    }
    snprintf(grp->name, sizeof grp->name, "%s", json_string_value(v));
    for (unsigned j = 0; j < gi; j++)
        if (strcmp(ps->groups[j].name, grp->name) == 0) {
            perr(err, errlen, label, "%s.name: group \"%s\" is defined twice (also groups[%u])",
                 path, grp->name, j);
            return -1;
        }
    v = json_object_get(g, "categories");
    if (v) {
        if (!json_is_array(v)) {
            perr(err, errlen, label, "%s.categories: expected an array of category names", path);
            return -1;
        }
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            int cat = json_is_string(c) ? dset_category_parse(json_string_value(c)) : -1;
            if (cat < 0) {
                char known[256] = "";
                for (int k = 0; k < DSET_CAT_COUNT; k++) {
                    const char *cn = dset_category_name(k);
                    if (cn)
                        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                                 k ? "|" : "", cn);
                }
                perr(err, errlen, label, "%s.categories[%zu]: unknown category%s%s%s (known: %s)",
                     path, i, json_is_string(c) ? " \"" : "",
                     json_is_string(c) ? json_string_value(c) : "", json_is_string(c) ? "\"" : "",
                     known);
                return -1;
            }
            grp->categories |= 1u << cat;
        }
    }
    v = json_object_get(g, "answer");
    if (v) {
        const char *a = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(a, "nxdomain") == 0)
            grp->answer = POLICY_ANSWER_NXDOMAIN;
        else if (strcmp(a, "null") == 0)
            grp->answer = POLICY_ANSWER_NULL;
        else if (strcmp(a, "blockpage") == 0)
            grp->answer = POLICY_ANSWER_BLOCKPAGE;
        else {
            perr(err, errlen, label, "%s.answer: expected one of nxdomain|null|blockpage", path);
            return -1;
        }
    }
    v = json_object_get(g, "safesearch");
    if (v) {
        if (!json_is_boolean(v)) {
            perr(err, errlen, label, "%s.safesearch: expected true or false", path);
            return -1;
        }
        grp->safesearch = json_is_true(v);
    }
    v = json_object_get(g, "youtube");
    if (v) {
        const char *y = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(y, "strict") == 0)
            grp->youtube_strict = 1;
        else if (strcmp(y, "moderate") != 0) {
            perr(err, errlen, label, "%s.youtube: expected one of strict|moderate", path);
            return -1;
        }
    }
    if (parse_names(ps, gi, json_object_get(g, "allow"), POLICY_CUSTOM_ALLOW, label, "allow",
                    err, errlen) < 0 ||
        parse_names(ps, gi, json_object_get(g, "block"), POLICY_CUSTOM_BLOCK, label, "block",
                    err, errlen) < 0)
        return -1;
    return 0;
}

static size_t count_custom(json_t *groups)
{
    size_t n = 0, i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        if (!json_is_object(g))
            continue;
        json_t *a = json_object_get(g, "allow"), *b = json_object_get(g, "block");
        n += (json_is_array(a) ? json_array_size(a) : 0) + (json_is_array(b) ? json_array_size(b) : 0);
    }
    return n > POLICY_MAX_CUSTOM ? POLICY_MAX_CUSTOM : n;
}

static struct policy_set *parse_root(json_t *root, const char *label, char *err, size_t errlen)
{
    static const char *const keys[] = { "version", "groups", "clients", "default_group",
                                        "blockpage", NULL };
    if (!json_is_object(root)) {
        perr(err, errlen, label, "expected a JSON object at the top");
        return NULL;
    }
    if (check_keys(root, keys, label, "", err, errlen) < 0)
        return NULL;
    json_t *v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) != 1) {
        perr(err, errlen, label, "version: expected 1 (this dnsd reads policy format 1)");
        return NULL;
    }
    json_t *groups = json_object_get(root, "groups");
    if (!json_is_array(groups) || json_array_size(groups) == 0) {
        perr(err, errlen, label, "groups: expected a non-empty array of groups");
        return NULL;
    }
    if (json_array_size(groups) > POLICY_MAX_GROUPS) {
        perr(err, errlen, label, "groups: %zu groups, at most %d allowed",
             json_array_size(groups), POLICY_MAX_GROUPS);
        return NULL;
    }
    struct policy_set *ps = ps_new(count_custom(groups));
    if (!ps) {
        perr(err, errlen, label, "out of memory");
        return NULL;
    }
    size_t i;
    json_array_foreach(groups, i, v) {
        if (parse_group(ps, (unsigned)i, v, label, err, errlen) < 0)
            goto fail;
        ps->n_groups++;
    }
    v = json_object_get(root, "default_group");
    if (v) {
        int gi = json_is_string(v) ? policy_group_find(ps, json_string_value(v)) : -1;
        if (gi < 0) {
            perr(err, errlen, label, "default_group: expected the name of a group defined in groups");
            goto fail;
        }
        ps->default_group = (unsigned)gi;
    } else if (ps->n_groups != 1) {
        perr(err, errlen, label, "default_group: missing (required when there is more than one group)");
        goto fail;
    }
    json_t *clients = json_object_get(root, "clients");
    if (clients) {
        if (!json_is_array(clients)) {
            perr(err, errlen, label, "clients: expected an array of {\"match\":CIDR,\"group\":NAME}");
            goto fail;
        }
        if (json_array_size(clients) > POLICY_MAX_CLIENTS) {
            perr(err, errlen, label, "clients: more than %d entries", POLICY_MAX_CLIENTS);
            goto fail;
        }
        ps->clients = calloc(json_array_size(clients) + 1, sizeof *ps->clients);
        if (!ps->clients) {
            perr(err, errlen, label, "out of memory");
            goto fail;
        }
        json_t *c;
        json_array_foreach(clients, i, c) {
            static const char *const ckeys[] = { "match", "group", NULL };
            char path[32];
            snprintf(path, sizeof path, "clients[%zu]", i);
            if (!json_is_object(c)) {
                perr(err, errlen, label, "%s: expected an object", path);
                goto fail;
            }
            if (check_keys(c, ckeys, label, path, err, errlen) < 0)
                goto fail;
            struct policy_client *pc = &ps->clients[ps->n_clients];
            json_t *m = json_object_get(c, "match");
            int r = json_is_string(m) ? parse_cidr(json_string_value(m), pc) : -1;
            if (r == -2) {
                perr(err, errlen, label, "%s.match: \"%s\" has host bits set beyond the prefix "
                     "(write the network address)", path, json_string_value(m));
                goto fail;
            }
            if (r < 0) {
                perr(err, errlen, label, "%s.match: expected an address or CIDR such as "
                     "192.0.2.0/24 or fd00::/64", path);
                goto fail;
            }
            json_t *g = json_object_get(c, "group");
            int gi = json_is_string(g) ? policy_group_find(ps, json_string_value(g)) : -1;
            if (gi < 0) {
                perr(err, errlen, label, "%s.group: expected the name of a group defined in groups",
                     path);
                goto fail;
            }
            pc->group = (unsigned)gi;
            ps->n_clients++;
        }
    }
    json_t *bp = json_object_get(root, "blockpage");
    if (bp) {
        static const char *const bkeys[] = { "ipv4", "ipv6", NULL };
        if (!json_is_object(bp)) {
            perr(err, errlen, label, "blockpage: expected {\"ipv4\":ADDR,\"ipv6\":ADDR}");
            goto fail;
        }
        if (check_keys(bp, bkeys, label, "blockpage", err, errlen) < 0)
            goto fail;
        json_t *a4 = json_object_get(bp, "ipv4"), *a6 = json_object_get(bp, "ipv6");
        if (a4) {
            if (!json_is_string(a4) || inet_pton(AF_INET, json_string_value(a4), ps->bp4) != 1) {
                perr(err, errlen, label, "blockpage.ipv4: expected an IPv4 address");
                goto fail;
            }
            ps->has_bp4 = 1;
        }
        if (a6) {
            if (!json_is_string(a6) || inet_pton(AF_INET6, json_string_value(a6), ps->bp6) != 1) {
                perr(err, errlen, label, "blockpage.ipv6: expected an IPv6 address");
                goto fail;
            }
            ps->has_bp6 = 1;
        }
    }
    for (unsigned g = 0; g < ps->n_groups; g++)
        if (ps->groups[g].answer == POLICY_ANSWER_BLOCKPAGE && !ps->has_bp4 && !ps->has_bp6) {
            perr(err, errlen, label, "groups[%u].answer: \"blockpage\" needs blockpage.ipv4 or "
                 "blockpage.ipv6", g);
            goto fail;
        }
    return ps;
fail:
    policy_free(ps);
    return NULL;
}

struct policy_set *policy_parse(const char *json, size_t len, const char *label,
                                char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        perr(err, errlen, label, "line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    struct policy_set *ps = parse_root(root, label, err, errlen);
    json_decref(root);
    return ps;
}

struct policy_set *policy_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perr(err, errlen, path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    /* a policy is kilobytes; 16 MB bounds a runaway or wrong file */
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        if (cap >= (16u << 20)) {
            free(buf);
            fclose(f);
            perr(err, errlen, path, "larger than 16 MB; not a policy file?");
            return NULL;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf || rerr) {
        free(buf);
        perr(err, errlen, path, "cannot read: %s", buf ? "I/O error" : "out of memory");
        return NULL;
    }
    struct policy_set *ps = policy_parse(buf, len, path, err, errlen);
    free(buf);
    return ps;
}

int policy_write_json(const char *path, const char *json, size_t len, char *err, size_t errlen)
{
    struct policy_set *ps = policy_parse(json, len, path, err, errlen);
    if (!ps)
        return -1;
    policy_free(ps);
    /* 0644: dnsd reads it as another user */
    return atomic_write_file(path, json, len, 0644, err, errlen);
}

static const char *answer_name(enum policy_answer a)
{
    return a == POLICY_ANSWER_NULL ? "null" : a == POLICY_ANSWER_BLOCKPAGE ? "blockpage" : "nxdomain";
}

char *policy_to_json(const struct policy_set *ps)
{
    json_t *root = json_object(), *groups = json_array(), *clients = json_array();
    json_object_set_new(root, "version", json_integer(1));
    for (unsigned g = 0; g < ps->n_groups; g++) {
        const struct policy_group *grp = &ps->groups[g];
        json_t *o = json_object(), *cats = json_array(), *allow = json_array(), *block = json_array();
        json_object_set_new(o, "name", json_string(grp->name));
        for (int c = 0; c < DSET_CAT_COUNT; c++)
            if (grp->categories & (1u << c))
                json_array_append_new(cats, json_string(dset_category_name(c)));
        json_object_set_new(o, "categories", cats);
        json_object_set_new(o, "answer", json_string(answer_name(grp->answer)));
        json_object_set_new(o, "safesearch", json_boolean(grp->safesearch));
        json_object_set_new(o, "youtube", json_string(grp->youtube_strict ? "strict" : "moderate"));
        for (size_t i = 0; i <= ps->custom_mask; i++) {
            const struct custom_entry *e = &ps->custom[i];
            if (e->hash && e->group == g)
                json_array_append_new(e->kind == POLICY_CUSTOM_ALLOW ? allow : block,
                                      json_string(ps->names + e->name_off));
        }
        json_object_set_new(o, "allow", allow);
        json_object_set_new(o, "block", block);
        json_array_append_new(groups, o);
    }
    json_object_set_new(root, "groups", groups);
    for (unsigned i = 0; i < ps->n_clients; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "match", json_string(ps->clients[i].text));
        json_object_set_new(o, "group", json_string(ps->groups[ps->clients[i].group].name));
        json_array_append_new(clients, o);
    }
    json_object_set_new(root, "clients", clients);
    json_object_set_new(root, "default_group", json_string(ps->groups[ps->default_group].name));
    if (ps->has_bp4 || ps->has_bp6) {
        json_t *bp = json_object();
        char a[INET6_ADDRSTRLEN];
        if (ps->has_bp4 && inet_ntop(AF_INET, ps->bp4, a, sizeof a))
            json_object_set_new(bp, "ipv4", json_string(a));
        if (ps->has_bp6 && inet_ntop(AF_INET6, ps->bp6, a, sizeof a))
            json_object_set_new(bp, "ipv6", json_string(a));
        json_object_set_new(root, "blockpage", bp);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

unsigned policy_group_count(const struct policy_set *ps) { return ps->n_groups; }

const struct policy_group *policy_group_get(const struct policy_set *ps, unsigned idx)
{
    return idx < ps->n_groups ? &ps->groups[idx] : NULL;
}

int policy_group_find(const struct policy_set *ps, const char *name)
{
    for (unsigned i = 0; i < ps->n_groups; i++)
        if (strcmp(ps->groups[i].name, name) == 0)
            return (int)i;
    return -1;
}

int policy_blockpage_v4(const struct policy_set *ps, uint8_t out[4])
{
    if (ps->has_bp4)
        memcpy(out, ps->bp4, 4);
    return ps->has_bp4;
}

int policy_blockpage_v6(const struct policy_set *ps, uint8_t out[16])
{
    if (ps->has_bp6)
        memcpy(out, ps->bp6, 16);
    return ps->has_bp6;
}
