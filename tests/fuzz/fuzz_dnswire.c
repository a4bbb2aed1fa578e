/* libFuzzer harness for the DNS wire codec: the query path (parse, reply with EDE) and
 * the response path (parse, record walk, CNAME targets, cache TTL, TTL ageing). */
#include "dnswire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dnsw_msg m;
    uint8_t out[1024];
    char name[DNSW_NAME_TEXT_MAX];

    int qr = dnsw_parse_query(data, size, &m, NULL, 0);
    if (qr == DNSW_OK || qr == DNSW_ERR_FORMERR || qr == DNSW_ERR_NOTIMP) {
        struct dnsw_buf b = { .p = out, .cap = sizeof out };
        dnsw_reply_begin(&b, data, &m, DNSW_RCODE_NXDOMAIN);
        if (m.edns.present)
            dnsw_put_opt(&b, 1232, m.edns.do_bit, DNSW_EDE_BLOCKED, "otasuke: fuzz (list x)");
        dnsw_reply_finish(&b, 0, 0, m.edns.present ? 1 : 0);
        if (!b.overflow && m.question_end) {
            static struct dnsw_msg r;
            if (dnsw_parse_response(out, b.len, &r, NULL, 0) != DNSW_OK)
                abort();          /* what we write must read back */
        }
    }
    if (dnsw_parse_response(data, size, &m, NULL, 0) == DNSW_OK) {
        struct dnsw_iter it;
        struct dnsw_rr rr;
        if (dnsw_iter_init(&it, data, size) == 0) {
            while (dnsw_iter_next(&it, &rr) > 0) {
                if (rr.type == DNSW_TYPE_CNAME) {
                    size_t off = rr.rdata_off, tl;
                    if (dnsw_name_read(data, size, &off, name, sizeof name, &tl) == 0 &&
                        strlen(name) != tl)
                        abort();
                }
            }
        }
        (void)dnsw_cache_ttl(data, size);
        uint8_t *copy = malloc(size);
        if (copy) {
            memcpy(copy, data, size);
            dnsw_ttl_age(copy, size, 77);
            free(copy);
        }
    }
    /* name reading from any offset never reads out of bounds */
    if (size > 2) {
        size_t off = data[0] % size, tl;
        (void)dnsw_name_read(data, size, &off, name, sizeof name, &tl);
    }
    return 0;
}
