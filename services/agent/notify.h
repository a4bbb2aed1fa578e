/* Owner notifications for incidents: a generic webhook (JSON POST) and e-mail through a
 * configured SMTP relay, both through libcurl, queued in notify_queue with retry and
 * exponential backoff. Settings (settings table): notify_webhook (URL), notify_smtp
 * (smtp://relay:25), notify_mail_from, notify_mail_to, notify_lang (ja|en, default ja). */
#ifndef OTASUKE_NOTIFY_H
#define OTASUKE_NOTIFY_H

#include "agent.h"

#define NOTIFY_MAX_TRIES 8

/* Queues the notifications for an incident (one per configured channel). Returns the
 * number queued (0 when nothing is configured) or -1 with err. */
int notify_enqueue(sqlite3 *db, int64_t incident_id, const char *event, int64_t now,
                   char *err, size_t errlen);
/* Sends what is due (at most a few per call, 5 s timeout each). Failures are kept with
 * their error and retried after 30 s, 1 min, 2 min ... Returns the number sent. */
int notify_run(sqlite3 *db, int64_t now);
/* The JSON body for an incident (new reference): id, kind, severity, device, count,
 * title/advice in lang and both languages. NULL when the incident is missing. */
json_t *notify_body(sqlite3 *db, int64_t incident_id, const char *event);

#endif
