/* Feed downloads: libcurl only, no database, so they can run on a worker thread while
 * the main thread keeps serving the API (a slow or stalled feed server must not freeze
 * the owner's UI). One job at a time; the main thread applies the result. */
#ifndef OTASUKE_AGENT_FEEDS_FETCH_H
#define OTASUKE_AGENT_FEEDS_FETCH_H

#include "agent.h"
#include "filesink.h"
#include "growbuf.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct fetch_buf {
    struct growbuf body; /* body.max is the size limit (also with a file) */
    struct filesink file; /* file.fd >= 0: the body goes to this file instead of body.data */
    char etag[256];      /* ETag of the answer, "" if none */
};

struct feed_job {
    int64_t id;
    char url[1100], etag[256];
    int snapshot_fallback;  /* this job fetches URL.snapshot after a wrong-base delta */
    char keep_etag[256];    /* fallback: the ETag of URL to store once applied */
    int is_signed;       /* also fetch url + ".sig" */
    struct fetch_buf doc, sig;
    long status;         /* 200, 304, -1 failure, -2 over the size limit */
    char err[AGENT_ERR];
    int notify_fd;       /* worker writes one byte here when done; -1 = none */
    pthread_t thread;
};

/* Once, before any thread: curl's global state. */
void feeds_fetch_init(void);
/* Downloads the job's document (and signature). Touches only the job. */
void feed_job_run(struct feed_job *j);
/* Runs feed_job_run on a new thread that writes to j->notify_fd when done. 0 or -1. */
int feed_job_start(struct feed_job *j);
void feed_job_free(struct feed_job *j);

#endif
