/* Request-parsing helpers of otasuke-webd that touch untrusted bytes: cookies,
 * url-encoded forms, Accept-Language, Host. No libmicrohttpd here, so the unit tests and
 * the fuzz harness link this file alone. Nothing allocates; outputs are bounded. */
#ifndef OTASUKE_WEBD_PARSE_H
#define OTASUKE_WEBD_PARSE_H

#include <stddef.h>

/* Finds cookie name in a Cookie header ("a=1; b=2") and copies its value into out.
 * Returns the value length, or -1 when absent, empty, longer than outlen-1, or holding a
 * byte outside the cookie-octet set. */
int webd_cookie_get(const char *header, const char *name, char *out, size_t outlen);

/* Finds field name in an application/x-www-form-urlencoded body (len bytes, not
 * NUL-terminated) and percent-decodes it ('+' = space) into out. Returns the decoded
 * length, or -1 when absent, malformed (bad %XX), decodes to a NUL byte, or does not fit. */
int webd_form_get(const char *body, size_t len, const char *name, char *out, size_t outlen);

/* "ja" when Accept-Language prefers Japanese over English (by q-values, first wins ties),
 * else "en". header may be NULL. */
const char *webd_pick_lang(const char *header);

/* Normalises a Host header into out: lowercased, port and a trailing dot removed,
 * brackets kept off IPv6 literals. Returns 1 for a DNS name, 2 for an IP literal, -1 when
 * missing or malformed (bad characters, too long, empty label). */
int webd_host_parse(const char *header, char *out, size_t outlen);

/* Static file path check: 0 when path (from the URL) is safe to join under the UI root —
 * starts with '/', no "..", no "//", no backslash, no control bytes, only
 * [A-Za-z0-9._/-]; -1 otherwise. */
int webd_path_ok(const char *path);

/* Content type for a file name by extension (defaults to application/octet-stream). */
const char *webd_mime(const char *path);

#endif
