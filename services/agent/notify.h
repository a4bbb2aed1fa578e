/* Owner notifications for incidents: a generic webhook (JSON POST) and e-mail through a
 * configured SMTP relay, both through libcurl, queued in notify_queue (the database, so a
 * restart loses nothing pending) with retry and exponential backoff. Delivery runs on a
 * worker thread of its own (notify_start), so a slow relay never holds up the agent loop.
 * Settings (settings table): notify_webhook (URL), notify_smtp (smtp://relay:25),
 * notify_mail_from, notify_mail_to, notify_lang (ja|en, default ja). */
#ifndef OTASUKE_NOTIFY_H
#define OTASUKE_NOTIFY_H

#include "agent.h"

#define NOTIFY_MAX_TRIES 8     /* 30 s, 1, 2, 4 ... 64 min apart: about 2 hours in all */
#define NOTIFY_TIMEOUT_S 10    /* one delivery attempt, on the worker */
#define NOTIFY_QUEUE_MAX 100   /* waiting per channel; beyond, new ones are skipped (noted) */
#define NOTIFY_KEEP_S (30 * 86400)   /* finished rows are deleted after this */

/* Queues the notifications for an incident (one per configured channel; a channel with
 * NOTIFY_QUEUE_MAX waiting is skipped, with a note on the timeline). Returns the number
 * queued (0 when nothing is configured) or -1 with err. */
int notify_enqueue(sqlite3 *db, int64_t incident_id, const char *event, int64_t now,
                   char *err, size_t errlen);
/* Sends what is due on db, synchronously (at most a few items per call, up to
 * NOTIFY_TIMEOUT_S each). Failures are kept with their error and retried after 30 s,
 * 1 min, 2 min ...; the first failure, the give-up after NOTIFY_MAX_TRIES and every
 * delivery are noted on the incident's timeline. Returns the number sent. */
int notify_run(sqlite3 *db, int64_t now);
/* The JSON body for an incident (new reference): id, kind, severity, device, count,
 * title/advice in lang and both languages. NULL when the incident is missing. */
json_t *notify_body(sqlite3 *db, int64_t incident_id, const char *event);

/* The e-mail for a queued body (JSON text as notify_enqueue stored it): headers From,
 * To, Subject (RFC 2047 encoded-words, UTF-8), Date, Message-ID, MIME; UTF-8 text body
 * in base64. CRLF line ends. Returns a malloc'd message (caller frees) or NULL with err
 * (bad address: a line break or no '@'; bad body). */
char *notify_mail_message(const char *from, const char *to, const char *body_json,
                          int64_t now, char *err, size_t errlen);

/* Starts the delivery thread on its own connection to db_path. Returns 0 or -1 with err
 * (then notify_kick sends on the caller's thread, as before). */
int notify_start(const char *db_path, char *err, size_t errlen);
/* Something was queued: wakes the worker; without one, sends on db now (blocking). */
void notify_kick(sqlite3 *db, int64_t now);
/* From the agent's tick: without a worker, sends what is due on db (blocking); with one,
 * nothing (the worker keeps its own time). */
void notify_poll(sqlite3 *db, int64_t now);
/* Stops the worker (an attempt in progress is aborted and retried at the next start). */
void notify_stop(void);

#endif
