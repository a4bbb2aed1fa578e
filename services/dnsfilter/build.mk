PROGRAMS += otasuke-dnsd
otasuke-dnsd_SRCS := $(wildcard services/dnsfilter/*.c)
otasuke-dnsd_PKGS := jansson libsodium
test_dnscache_EXTRA := services/dnsfilter/cache.c
test_dnsratelimit_EXTRA := services/dnsfilter/ratelimit.c
fuzz_dnsfilter_EXTRA := $(filter-out services/dnsfilter/main.c,$(wildcard services/dnsfilter/*.c))
test_detect_dnsd_EXTRA := $(filter-out services/dnsfilter/main.c,$(wildcard services/dnsfilter/*.c))
fuzz_qtune_EXTRA := services/dnsfilter/query_tuning.c
