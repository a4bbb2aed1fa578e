/* One line handler per list format. Each gets a NUL-terminated line without its
 * newline, may cut it up in place, and reports entries through list_emit and bad
 * lines through list_problem (see lists_internal.h). */
#include "lists_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Cuts a "# comment" (at the start or after a blank) and trims; returns the rest. */
static char *strip_hash_comment(char *s)
{
    char *e;
    for (char *q = s; *q; q++)
        if (*q == '#' && (q == s || blank(q[-1]))) {
            *q = 0;
            break;
        }
    while (blank(*s))
        s++;
    e = s + strlen(s);
    while (e > s && blank(e[-1]))
        *--e = 0;
    return s;
}

/* Next blank-separated token; returns its start (NUL-terminated) or NULL. */
static char *next_token(char **cur)
{
    char *s = *cur, *t;
    while (blank(*s))
        s++;
    if (!*s) {
        *cur = s;
        return NULL;
    }
    t = s;
    while (*s && !blank(*s))
        s++;
    if (*s)
        *s++ = 0;
    *cur = s;
    return t;
}

static unsigned plain_flags(const struct list_parser *p)
{
    return p->opts.subtree ? DSET_SUBTREE : DSET_EXACT;
}

/* "*.name" -> subtree of name; "name" -> the given default flags. */
static void emit_maybe_wild(struct list_parser *p, const char *tok, unsigned deflt)
{
    if (tok[0] == '*' && tok[1] == '.')
        list_emit(p, tok + 2, strlen(tok + 2), DSET_SUBTREE);
    else if (strchr(tok, '*'))
        list_problem(p, LIST_UNSUPPORTED, "'%.60s': wildcard '*' inside a name", tok);
    else
        list_emit(p, tok, strlen(tok), deflt);
}

void list_line_plain(struct list_parser *p, char *s)
{
    char *tok, *extra;

    s = strip_hash_comment(s);
    if (!*s || *s == '!' || *s == ';')
        return;  /* blank, or a comment style some plain lists use */
    tok = next_token(&s);
    extra = next_token(&s);
    if (extra) {
        list_problem(p, LIST_REJECTED, "more than one field ('%.40s %.40s'); "
                     "a hosts line? try --format hosts", tok, extra);
        return;
    }
    emit_maybe_wild(p, tok, plain_flags(p));
}

void list_line_wildcard(struct list_parser *p, char *s)
{
    char *tok, *extra;

    s = strip_hash_comment(s);
    if (!*s)
        return;
    tok = next_token(&s);
    extra = next_token(&s);
    if (extra) {
        list_problem(p, LIST_REJECTED, "more than one field ('%.40s %.40s')", tok, extra);
        return;
    }
    /* a bare name in a wildcard list means that name only */
    emit_maybe_wild(p, tok, DSET_EXACT);
}

static int is_address(const char *s)
{
    unsigned char buf[16];
    const char *pct = strchr(s, '%');
    char tmp[64];

    if (pct) {  /* fe80::1%lo0 */
        size_t n = (size_t)(pct - s);
        if (n >= sizeof tmp)
            return 0;
        memcpy(tmp, s, n);
        tmp[n] = 0;
        s = tmp;
    }
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Names every hosts file carries for the machine itself: never block entries. */
static int localhost_name(const char *s)
{
    static const char *const names[] = {
        "localhost", "localhost.localdomain", "local", "broadcasthost", "localhost4",
        "localhost6", "localhost4.localdomain4", "localhost6.localdomain6",
        "ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
        "ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    return 0;
}

void list_line_hosts(struct list_parser *p, char *s)
{
    char *addr, *tok;
    int names = 0;

    s = strip_hash_comment(s);
    if (!*s)
        return;
    addr = next_token(&s);
    if (!is_address(addr)) {
        list_problem(p, LIST_REJECTED, "'%.60s': a hosts line starts with an address "
                     "(0.0.0.0 name)", addr);
        return;
    }
    while ((tok = next_token(&s)) != NULL) {
        names++;
        if (localhost_name(tok)) {
            p->st.skipped++;
            continue;
        }
        if (list_emit(p, tok, strlen(tok), plain_flags(p)) < 0)
            return;
    }
    if (!names)
        list_problem(p, LIST_REJECTED, "address '%.60s' without a name", addr);
}

/* ---- adblock ----------------------------------------------------------------- */

void list_line_adblock(struct list_parser *p, char *s)
{
    unsigned flags = 0;
    char *body, *caret, *e;

    while (blank(*s))
        s++;
    e = s + strlen(s);
    while (e > s && blank(e[-1]))
        *--e = 0;
    if (!*s || *s == '!')
        return;
    if (*s == '[' && e[-1] == ']')
        return;  /* [Adblock Plus 2.0] */
    if (strstr(s, "##") || strstr(s, "#@#") || strstr(s, "#?#") || strstr(s, "#$#") ||
        strstr(s, "#%#")) {
        list_problem(p, LIST_UNSUPPORTED, "cosmetic (element hiding) rule");
        return;
    }
    if (*s == '#')
        return;  /* "# comment" some lists use */
    if (s[0] == '@' && s[1] == '@') {
        flags |= DSET_ALLOW;
        s += 2;
    }
    if (s[0] == '/') {
        list_problem(p, LIST_UNSUPPORTED, "regular expression rule");
        return;
    }
    if (strchr(s, '$')) {
        list_problem(p, LIST_UNSUPPORTED, "rule with $ modifiers ('%.60s')", strchr(s, '$'));
        return;
    }
    if (s[0] == '|' && s[1] == '|') {
        flags |= DSET_SUBTREE;
        body = s + 2;
    } else if (s[0] == '|') {
        flags |= DSET_EXACT;
        body = s + 1;
    } else {
        list_problem(p, LIST_UNSUPPORTED, "'%.60s': rule without a || or | anchor "
                     "(matches any part of a URL)", s);
        return;
    }
    caret = strchr(body, '^');
    if (!caret) {
        if (strpbrk(body, "/?"))
            list_problem(p, LIST_UNSUPPORTED, "rule with a path ('%.60s')", body);
        else
            list_problem(p, LIST_UNSUPPORTED, "'%.60s': rule without a ^ separator "
                         "(matches names that merely start like this)", body);
        return;
    }
    if (caret[1] && !(caret[1] == '|' && caret[2] == 0)) {
        list_problem(p, LIST_UNSUPPORTED, "rule with text after ^ ('%.60s')", caret);
        return;
    }
    *caret = 0;
    if (strpbrk(body, "/?")) {
        list_problem(p, LIST_UNSUPPORTED, "rule with a path ('%.60s')", body);
        return;
    }
    if (strchr(body, '*')) {
        list_problem(p, LIST_UNSUPPORTED, "'%.60s': wildcard '*' inside a name", body);
        return;
    }
    list_emit(p, body, strlen(body), flags);
}

/* ---- dnsmasq ----------------------------------------------------------------- */

void list_line_dnsmasq(struct list_parser *p, char *s)
{
    char *eq, *key, *v, *last;
    int is_server;

    s = strip_hash_comment(s);
    if (!*s)
        return;
    eq = strchr(s, '=');
    if (!eq) {
        list_problem(p, LIST_REJECTED, "'%.60s': not a dnsmasq option (key=/name/value)", s);
        return;
    }
    *eq = 0;
    key = s;
    v = eq + 1;
    if (strcmp(key, "address") != 0 && strcmp(key, "server") != 0 &&
        strcmp(key, "local") != 0) {
        list_problem(p, LIST_UNSUPPORTED, "dnsmasq option '%.40s' is not a block rule", key);
        return;
    }
    is_server = strcmp(key, "server") == 0;
    if (*v != '/') {
        list_problem(p, LIST_REJECTED, "%s= must be followed by /name/", key);
        return;
    }
    last = strrchr(v, '/');
    if (last == v) {
        list_problem(p, LIST_REJECTED, "%s=/%.60s: missing closing '/'", key, v + 1);
        return;
    }
    /* value after the last slash: what the names resolve to */
    if (is_server && last[1]) {
        list_problem(p, LIST_UNSUPPORTED, "server=/.../%.40s forwards to a server, "
                     "it does not block", last + 1);
        return;
    }
    *last = 0;
    for (char *name = v + 1; name;) {
        char *slash = strchr(name, '/');
        if (slash)
            *slash = 0;
        if (!*name)
            list_problem(p, LIST_REJECTED, "empty name between slashes");
        else if (strcmp(name, "#") == 0)
            list_problem(p, LIST_UNSUPPORTED, "'#' (every domain) is not a list entry");
        else if (strchr(name, '*'))
            list_problem(p, LIST_UNSUPPORTED, "'%.60s': wildcard '*' inside a name", name);
        else if (list_emit(p, name[0] == '.' ? name + 1 : name,
                           strlen(name[0] == '.' ? name + 1 : name), DSET_SUBTREE) < 0)
            return;
        name = slash ? slash + 1 : NULL;
    }
}

/* ---- RPZ ----------------------------------------------------------------------- */

/* Cuts a ';' comment that is not inside a quoted string. */
static void strip_semicolon(char *s)
{
    const char *start = s;
    int quoted = 0;
    for (; *s; s++) {
        if (*s == '"' && (s == start || s[-1] != '\\'))
            quoted = !quoted;
        else if (*s == ';' && !quoted) {
            *s = 0;
            return;
        }
    }
}

static int is_ttl(const char *t)
{
    if (!isdigit((unsigned char)*t))
        return 0;
    for (; *t; t++)
        if (!isdigit((unsigned char)*t) && !strchr("smhdwSMHDW", *t))
            return 0;
    return 1;
}

static int is_class(const char *t)
{
    return strcasecmp(t, "IN") == 0 || strcasecmp(t, "CH") == 0 || strcasecmp(t, "HS") == 0 ||
           strcasecmp(t, "CS") == 0;
}

/* Lower-cased copy without the trailing dot into out; returns length or -1. */
static int fold(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    if (n && in[n - 1] == '.')
        n--;
    if (n + 1 > outlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = 0;
    return (int)n;
}

/* Turns an owner token into a name relative to the origin. Returns 1 with rel filled
 * ("" for the apex), or 0 after recording the problem. */
static int rpz_owner(struct list_parser *p, const char *owner, char *rel, size_t rellen)
{
    char tmp[DSET_NAME_MAX + 80];
    size_t n = strlen(owner);
    int len;

    if (strcmp(owner, "@") == 0) {
        rel[0] = 0;
        return 1;
    }
    if (owner[n - 1] != '.' || !p->origin_len) {
        /* relative (or no origin known): the name itself */
        if (fold(owner, rel, rellen) < 0) {
            list_problem(p, LIST_REJECTED, "'%.60s': name too long", owner);
            return 0;
        }
        return 1;
    }
    len = fold(owner, tmp, sizeof tmp);
    if (len < 0) {
        list_problem(p, LIST_REJECTED, "'%.60s': name too long", owner);
        return 0;
    }
    if ((size_t)len == p->origin_len && memcmp(tmp, p->origin, p->origin_len) == 0) {
        rel[0] = 0;
        return 1;
    }
    if ((size_t)len > p->origin_len + 1 && tmp[len - p->origin_len - 1] == '.' &&
        memcmp(tmp + len - p->origin_len, p->origin, p->origin_len) == 0) {
        size_t r = (size_t)len - p->origin_len - 1;
        if (r + 1 > rellen) {
            list_problem(p, LIST_REJECTED, "'%.60s': name too long", owner);
            return 0;
        }
        memcpy(rel, tmp, r);
        rel[r] = 0;
        return 1;
    }
    list_problem(p, LIST_REJECTED, "'%.60s' is outside the zone origin '%s'", owner, p->origin);
    return 0;
}

void list_line_rpz(struct list_parser *p, char *s)
{
    char *cur, *tok, *owner = NULL, *type = NULL, *rdata;
    char rel[DSET_NAME_MAX + 8];
    int starts_blank = blank(*s);
    unsigned flags;

    strip_semicolon(s);
    /* a ( ... ) record spread over lines: skip until it closes */
    {
        int depth = p->paren_depth;
        for (char *q = s; *q; q++)
            depth += (*q == '(') - (*q == ')');
        if (p->paren_depth > 0) {
            p->paren_depth = depth > 0 ? depth : 0;
            return;
        }
        p->paren_depth = depth > 0 ? depth : 0;
    }
    cur = s;
    tok = next_token(&cur);
    if (!tok)
        return;
    if (tok[0] == '$') {
        if (strcasecmp(tok, "$TTL") == 0)
            return;
        if (strcasecmp(tok, "$ORIGIN") == 0) {
            char *o = next_token(&cur);
            int n;
            if (!o || (n = fold(o, p->origin, sizeof p->origin)) < 0) {
                list_problem(p, LIST_REJECTED, "$ORIGIN without a valid name");
                return;
            }
            p->origin_len = (size_t)n;
            return;
        }
        list_problem(p, LIST_UNSUPPORTED, "directive %.20s not supported", tok);
        return;
    }
    if (starts_blank) {
        if (!p->owner_valid) {
            list_problem(p, LIST_REJECTED, "record without an owner name");
            return;
        }
        owner = p->owner;
    } else {
        owner = tok;
        snprintf(p->owner, sizeof p->owner, "%s", tok);
        p->owner_valid = strlen(tok) < sizeof p->owner - 1;
        tok = next_token(&cur);
    }
    /* [ttl] [class] type, in either order */
    for (int i = 0; tok && i < 2 && (is_ttl(tok) || is_class(tok)); i++)
        tok = next_token(&cur);
    type = tok;
    if (!type) {
        list_problem(p, LIST_REJECTED, "'%.60s': record without a type", owner);
        return;
    }
    if (strcasecmp(type, "SOA") == 0 || strcasecmp(type, "NS") == 0)
        return;
    rdata = next_token(&cur);
    if (strcasecmp(type, "CNAME") != 0) {
        list_problem(p, LIST_UNSUPPORTED, "'%.60s': %.10s record (local data) not "
                     "supported; only CNAME . and rpz-passthru.", owner, type);
        return;
    }
    if (!rdata) {
        list_problem(p, LIST_REJECTED, "'%.60s': CNAME without a target", owner);
        return;
    }
    if (strcmp(rdata, ".") == 0 || strcmp(rdata, "*.") == 0 ||
        strcasecmp(rdata, "rpz-drop.") == 0) {
        flags = 0;
    } else if (strcasecmp(rdata, "rpz-passthru.") == 0) {
        flags = DSET_ALLOW;
    } else if (strcasecmp(rdata, "rpz-tcp-only.") == 0) {
        list_problem(p, LIST_UNSUPPORTED, "'%.60s': rpz-tcp-only action not supported", owner);
        return;
    } else {
        list_problem(p, LIST_UNSUPPORTED, "'%.60s': CNAME to '%.60s' (rewrite) not "
                     "supported", owner, rdata);
        return;
    }
    if (!rpz_owner(p, owner, rel, sizeof rel))
        return;
    if (!rel[0]) {
        list_problem(p, LIST_REJECTED, "record at the zone apex would match every name");
        return;
    }
    {
        const char *last = strrchr(rel, '.');
        last = last ? last + 1 : rel;
        if (strncmp(last, "rpz-", 4) == 0) {
            list_problem(p, LIST_UNSUPPORTED, "'%.60s': %s trigger not supported "
                         "(only QNAME triggers)", rel, last);
            return;
        }
    }
    if (rel[0] == '*' && rel[1] == '.')
        list_emit(p, rel + 2, strlen(rel + 2), flags | DSET_SUBTREE);
    else if (rel[0] == '*' && rel[1] == 0)
        list_problem(p, LIST_REJECTED, "'*' at the zone apex would match every name");
    else if (strchr(rel, '*'))
        list_problem(p, LIST_UNSUPPORTED, "'%.60s': wildcard '*' inside a name", rel);
    else
        list_emit(p, rel, strlen(rel), flags | DSET_EXACT);
}
