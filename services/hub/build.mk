# otasuke-hubd: hub daemon + operator CLI (services/hub/).
PROGRAMS += otasuke-hubd
otasuke-hubd_SRCS := $(wildcard services/hub/*.c)
otasuke-hubd_PKGS := libmicrohttpd gnutls sqlite3 libpq libmosquitto jansson libsodium
HUB_LIB_SRCS := $(filter-out services/hub/main.c services/hub/api.c,$(wildcard services/hub/*.c))
test_hub_consensus_EXTRA := $(HUB_LIB_SRCS)
test_hub_enroll_EXTRA := $(HUB_LIB_SRCS)
test_hub_policy_EXTRA := $(HUB_LIB_SRCS)
test_hub_body_EXTRA := services/hub/body.c
fuzz_hub_body_EXTRA := services/hub/body.c
fuzz_hub_console_EXTRA := $(HUB_LIB_SRCS)

# Fleet simulation (tests/bench/fleet/): N boxes in one process against a real hubd +
# mosquitto; writes tests/bench/results/fleet.json and fleet.md. FLEET_N=10000 by default.
FLEETSIM := $(BUILD)/bench/fleetsim
$(FLEETSIM): tests/bench/fleet/fleetsim.c $(BUILD)/libotasuke.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(call pkg_cflags,libmosquitto libcurl jansson libsodium) -o $@ $< \
	    $(BUILD)/libotasuke.a $(call pkg_libs,$(LIB_PKGS) libmosquitto libcurl jansson libsodium) -lpthread -lm

.PHONY: bench-fleet
bench-fleet: $(BUILD)/libotasuke.a $(BIN)/otasuke-hubd $(FLEETSIM)
	@BUILD=$(BUILD) tests/bench/fleet/run.sh
