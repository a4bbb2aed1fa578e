PROGRAMS += otasuke-fwd
otasuke-fwd_SRCS := $(wildcard services/firewall/*.c)
otasuke-fwd_PKGS := libnftnl libmnl

# make bench-fw: fwd against nft -f in a fresh netns (root); results in tests/bench/results/fw.*
.PHONY: bench-fw
bench-fw: $(BIN)/otasuke-fwd $(BIN)/otasukectl
	@tests/bench/fw/run.sh

test_fw_diff_EXTRA := services/firewall/fw_diff.c services/firewall/fw_rules.c
test_fw_state_EXTRA := services/firewall/fw_state.c
