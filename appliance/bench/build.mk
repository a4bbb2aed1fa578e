# Benchmarks (bench tooling, not shipped). `make bench` runs tests/bench/run.sh (every
# tests/bench/*/run.sh); `make bench-dns` runs only the DNS benchmark.
# dnsload is the benchmark's own open-loop load generator (tests/bench/dns/dnsload.c).
.PHONY: bench-dns bench-tools
DNSLOAD := $(BUILD)/bench/dnsload

$(DNSLOAD): tests/bench/dns/dnsload.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

bench-tools: $(DNSLOAD)
all: bench-tools

bench-dns: all
	@BUILD=$(BUILD) tests/bench/dns/run.sh
