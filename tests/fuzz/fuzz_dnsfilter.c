/* libFuzzer harness for otasuke-dnsd's query path end to end: parse, policy decision,
 * blocked answers, safe search, cache, and the upstream answer path (CNAME inspection,
 * cache insert, safe-search answer building) with fuzzed upstream bytes.
 *
 * Input: byte 0 = client (bit 0: iot group instead of staff) and whether an upstream
 * answer follows (bit 1); byte 1 = length of the query; then the query; then the bytes
 * the upstream answers with (its first two bytes are replaced by the id dnsd chose).
 * No packet leaves the process: the upstream is one end of a socketpair and client
 * answers go to a unix socket that refuses them. */
#include "../../services/dnsfilter/cache.h"
#include "../../services/dnsfilter/dnsd.h"
#include "../../services/dnsfilter/ratelimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dnsd D;
static int peer = -1, client_fd = -1;

static const char policy_json[] =
    "{\"version\":1,\"groups\":["
    "{\"name\":\"staff\",\"categories\":[\"ads\",\"malware\"],\"safesearch\":true,"
    "\"allow\":[\"ok.ads.test\"],\"block\":[\"shop.test\"]},"
    "{\"name\":\"iot\",\"categories\":[\"ads\",\"malware\"],\"answer\":\"null\"}],"
    "\"clients\":[{\"match\":\"198.51.100.0/24\",\"group\":\"iot\"}],"
    "\"default_group\":\"staff\"}";

static void setup(void)
{
    char err[512];
    struct dset_builder *b = dset_builder_new();
    int ads = dset_builder_add_list(b, "fuzz-ads", DSET_CAT_ADS, 0, err, sizeof err);
    int mal = dset_builder_add_list(b, "fuzz-malware", DSET_CAT_MALWARE, 0, err, sizeof err);
    dset_builder_add(b, ads, "ads.test", 8, DSET_SUBTREE, err, sizeof err);
    dset_builder_add(b, mal, "malware.test", 12, DSET_EXACT, err, sizeof err);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_dnsfilter.%d.set", (int)getpid());
    if (dset_builder_write(b, path, NULL, err, sizeof err) < 0)
        abort();
    dset_builder_free(b);
    D.set = dset_open(path, err, sizeof err);
    unlink(path);
    D.policy = policy_parse(policy_json, sizeof policy_json - 1, "fuzz", err, sizeof err);
    if (!D.set || !D.policy)
        abort();
    D.o.timeout_ms = 2000;
    D.o.max_tcp = 1;
    D.o.allowed_every_ms = 1000000;
    D.ev_fd = -1;
    D.epfd = epoll_create1(0);
    D.cache = dcache_new(64, 1 << 16, 3600);
    D.rl = rl_new(16, 0, 0);
    struct sockaddr_in *up = (struct sockaddr_in *)&D.o.upstream;
    up->sin_family = AF_INET;
    up->sin_port = htons(9);
    up->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    D.o.upstream_len = sizeof *up;
    if (up_init(&D, err, sizeof err) < 0)
        abort();
    /* swap the real socket for a socketpair: nothing goes on the network */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) < 0)
        abort();
    close(D.upstream_fd);
    D.upstream_fd = sv[0];
    peer = sv[1];
    client_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (net_open_listeners(&D, err, sizeof err) < 0)   /* no listeners: the TCP pool */
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (peer < 0)
        setup();
    if (size < 2)
        return 0;
    int iot = data[0] & 1, answer = data[0] & 2;
    size_t qlen = data[1];
    if (qlen > size - 2)
        qlen = size - 2;
    const uint8_t *q = data + 2;
    const uint8_t *resp = q + qlen;
    size_t rlen = size - 2 - qlen;

    struct dnsd_client c = { .tcp = 0, .fd = client_fd, .addrlen = sizeof(struct sockaddr_in) };
    struct sockaddr_in *a = (struct sockaddr_in *)&c.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons(5353);
    inet_pton(AF_INET, iot ? "198.51.100.10" : "192.0.2.10", &a->sin_addr);

    D.now_ms += 1000;
    D.now_s = D.now_ms / 1000;
    filter_query(&D, &c, q, qlen);
    uint8_t fwd[4096];
    ssize_t n = recv(peer, fwd, sizeof fwd, 0);
    if (n >= 12 && answer && rlen >= 2 && rlen <= 4096) {
        uint8_t r[4096];
        memcpy(r, resp, rlen);
        r[0] = fwd[0];
        r[1] = fwd[1];
        if (send(peer, r, rlen, 0) == (ssize_t)rlen)
            up_readable(&D);
    }
    while (recv(peer, fwd, sizeof fwd, 0) > 0)
        ;
    net_udp_flush(&D);
    /* whatever is still waiting times out now: the pending table never fills up */
    D.now_ms += 10000;
    up_expire(&D);
    net_udp_flush(&D);
    return 0;
}
