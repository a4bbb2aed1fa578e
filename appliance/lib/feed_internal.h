/* Pieces of feed verification shared by the in-memory path (feed.c) and the streaming
 * path (feed_stream.c). Private to appliance/lib/feed*.c. */
#ifndef OTASUKE_FEED_INTERNAL_H
#define OTASUKE_FEED_INTERNAL_H

#include "feed.h"

/* Splits "otasuke-sig/1 KEYID B64" into key id (16 hex + NUL) and raw signature.
 * Returns FEED_OK, FEED_UNSIGNED (empty) or FEED_SIG_MALFORMED with err. */
enum feed_reason feed_sig_parse(const char *sig, size_t siglen, char keyid[FEED_KEYID_LEN + 1],
                                uint8_t raw[FEED_SIG_BYTES], char *err, size_t errlen);
/* Parses the manifest line (no newline) into m (entries_offset untouched).
 * Returns 0 or -1 with err naming the field. */
int feed_manifest_parse(const char *line, size_t len, struct feed_manifest *m,
                        char *err, size_t errlen);
/* Checks a parsed manifest against the signature's key id and what the subscriber
 * expects: signer, feed id, seq (rollback), expiry, delta base. */
enum feed_reason feed_manifest_check(const struct feed_manifest *m, const char *keyid,
                                     const struct feed_expect *x, char *err, size_t errlen);

#endif
