# otasuke-hubd: hub daemon + operator CLI (services/hub/).
PROGRAMS += otasuke-hubd
otasuke-hubd_SRCS := $(wildcard services/hub/*.c)
otasuke-hubd_PKGS := libmicrohttpd gnutls sqlite3 libpq libmosquitto jansson libsodium
HUB_LIB_SRCS := $(filter-out services/hub/main.c services/hub/api.c,$(wildcard services/hub/*.c))
test_hub_consensus_EXTRA := $(HUB_LIB_SRCS)
test_hub_enroll_EXTRA := $(HUB_LIB_SRCS)
test_hub_body_EXTRA := services/hub/body.c
fuzz_hub_body_EXTRA := services/hub/body.c

.PHONY: bench-fleet
bench-fleet: all
	@tests/bench/fleet/run.sh
