/* Private to hubclient.c / hubclient_feed.c. */
#ifndef OTASUKE_HUBCLIENT_INTERNAL_H
#define OTASUKE_HUBCLIENT_INTERNAL_H

#include "hubclient.h"

struct hubclient {
    char dir[400];
    char state_path[420], key_path[420], cacert[420], store[420];
    int enrolled;
    char url[256];
    char url_override[256];
    long box_id;
    char org[128];                /* the organisation that enrolled the box ("" if unknown) */
    char token[80];
    char mqtt_user[48], mqtt_pass[80], mqtt_broker[128], feed_topic[80];
    int mqtt_tls;
    char feed_id[FEED_ID_MAX + 1];
    uint8_t feed_pk[FEED_PUBKEY_BYTES];
    char feed_key_id[FEED_KEYID_LEN + 1];
    uint64_t seq;
    int64_t last_sync, feed_created, last_error_at;
    char last_error[300];
    volatile int stop;                     /* hubclient_stop: ends hubclient_watch */
    void (*policy_fn)(long long id, void *ctx);
    void *policy_ctx;
    void (*error_fn)(const char *msg, void *ctx);   /* hubclient_set_error_notify */
    void *error_ctx;
};

#endif
