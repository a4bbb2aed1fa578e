PROGRAMS += otasuke-dnsd
otasuke-dnsd_SRCS := $(wildcard services/dnsfilter/*.c)
otasuke-dnsd_PKGS := jansson libsodium
test_dnscache_EXTRA := services/dnsfilter/cache.c
test_dnsratelimit_EXTRA := services/dnsfilter/ratelimit.c
