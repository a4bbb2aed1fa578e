# otasuke — top-level build.
#
# Components describe themselves in small fragments that this file includes:
#   services/<dir>/build.mk, appliance/<dir>/build.mk, appliance/lib/*.mk
# A fragment adds a program like this:
#   PROGRAMS += otasuke-dnsd
#   otasuke-dnsd_SRCS := $(wildcard services/dnsfilter/*.c)
#   otasuke-dnsd_PKGS := libsodium            # pkg-config names, beyond LIB_PKGS
# and may add LIB_PKGS (libraries libotasuke itself needs) or give a unit test or
# fuzz harness extra sources:  test_dnswire_EXTRA := services/dnsfilter/wire.c
#
# Unit tests: tests/unit/test_*.c  → build/tests/test_*   (cmocka)
# Fuzzers:    tests/fuzz/fuzz_*.c  → build/fuzz/fuzz_*    (clang libFuzzer)

BUILD      := build
BIN        := $(BUILD)/bin
CC         ?= cc
FUZZ_CC    ?= clang
SANITIZE   := $(shell cat $(BUILD)/.sanitize 2>/dev/null)

LIB_PKGS   := libconfig
PROGRAMS   :=
# Fragments may define targets of their own; 'make' alone must still mean 'all'.
.DEFAULT_GOAL := all

include $(sort $(wildcard appliance/lib/*.mk appliance/*/build.mk services/*/build.mk))

WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
CPPFLAGS   := -D_GNU_SOURCE -Iappliance/lib
OPT        := -O2 -g
ifeq ($(SANITIZE),1)
OPT        := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
CFLAGS     := -std=c11 $(WARN) $(OPT)
SAN_LDFLAGS := -fsanitize=address,undefined
LDFLAGS    := $(if $(filter 1,$(SANITIZE)),$(SAN_LDFLAGS))

ALL_PKGS   := $(sort $(LIB_PKGS) $(foreach p,$(PROGRAMS),$($(p)_PKGS)) cmocka)
# Missing development packages: one line that says what to run, not a wall of errors.
ifeq ($(filter deps clean help,$(MAKECMDGOALS)),)
MISSING_PKGS := $(shell for p in $(ALL_PKGS); do pkg-config --exists $$p || printf '%s ' $$p; done)
ifneq ($(strip $(MISSING_PKGS)),)
$(error missing libraries: $(MISSING_PKGS)— run 'sudo make deps' first)
endif
endif

pkg_cflags = $(if $(1),$(shell pkg-config --cflags $(1)))
pkg_libs   = $(if $(1),$(shell pkg-config --libs $(1)))

LIB_SRCS   := $(sort $(wildcard appliance/lib/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIBOTASUKE := $(BUILD)/libotasuke.a

# Flags are part of every object's inputs: switching asan on or off rebuilds everything.
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW   := $(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS)
$(shell mkdir -p $(BUILD); [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = "$(FLAGS_NOW)" ] || echo "$(FLAGS_NOW)" > $(FLAGS_STAMP))

.PHONY: all asan noasan test run bench fuzz clean deps help lint
all: $(LIBOTASUKE) $(addprefix $(BIN)/,$(PROGRAMS)) unit-tests

help:
	@echo "make            build everything into build/ (binaries in build/bin/)"
	@echo "make asan       the same with AddressSanitizer + UBSan (until 'make noasan')"
	@echo "make deps       install every build, runtime and test dependency (root)"
	@echo "make test       deps + build + every test; ends with 'N passed, N failed'"
	@echo "make run        start the virtual office with every daemon (root)"
	@echo "make bench      benchmarks side by side with the peers"
	@echo "make fuzz       run every libFuzzer harness for a bounded time"

asan:
	@mkdir -p $(BUILD); echo 1 > $(BUILD)/.sanitize
	@$(MAKE) --no-print-directory all

noasan:
	@rm -f $(BUILD)/.sanitize
	@$(MAKE) --no-print-directory all

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(call pkg_cflags,$(ALL_PKGS)) -MMD -MP -c $< -o $@

$(LIBOTASUKE): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define PROGRAM_template
$(1)_OBJS := $$($(1)_SRCS:%.c=$$(BUILD)/obj/%.o)
$$(BIN)/$(1): $$($(1)_OBJS) $$(LIBOTASUKE)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$($(1)_OBJS) $$(LIBOTASUKE) $$(call pkg_libs,$$(LIB_PKGS) $$($(1)_PKGS)) -lm
endef
$(foreach p,$(PROGRAMS),$(eval $(call PROGRAM_template,$(p))))

# ---- unit tests -----------------------------------------------------------
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
.PHONY: unit-tests
unit-tests: $(UNIT_BINS)

define UNIT_template
$$(BUILD)/tests/$(1): $$(BUILD)/obj/tests/unit/$(1).o $$($(1)_EXTRA:%.c=$$(BUILD)/obj/%.o) $$(LIBOTASUKE)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(call pkg_libs,$$(ALL_PKGS)) -lm
endef
$(foreach t,$(UNIT_SRCS:tests/unit/%.c=%),$(eval $(call UNIT_template,$(t))))

# ---- fuzzing --------------------------------------------------------------
# The library is compiled once for fuzzing (coverage instrumentation + ASan/UBSan, no
# libFuzzer main) into its own archive; each harness then only compiles itself.
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SAN   := -fsanitize=address,undefined
FUZZ_CFLAGS := -std=c11 -g -O1 $(FUZZ_SAN) -D_GNU_SOURCE -Iappliance/lib
FUZZ_SECONDS ?= 30
FUZZ_LIB   := $(BUILD)/fuzz/libotasuke-fuzz.a

$(BUILD)/fuzzobj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(call pkg_cflags,$(ALL_PKGS)) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(LIB_SRCS:%.c=$(BUILD)/fuzzobj/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define FUZZ_template
$$(BUILD)/fuzz/$(1): $$(BUILD)/fuzzobj/tests/fuzz/$(1).o $$($(1)_EXTRA:%.c=$$(BUILD)/fuzzobj/%.o) $$(FUZZ_LIB)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -fsanitize=fuzzer -o $$@ $$^ $$(call pkg_libs,$$(filter-out cmocka,$$(ALL_PKGS))) -lm
endef
$(foreach f,$(FUZZ_SRCS:tests/fuzz/%.c=%),$(eval $(call FUZZ_template,$(f))))

fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

# ---- the two commands and friends -------------------------------------------
deps:
	@mk/deps.sh

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run.sh

run: deps
	@$(MAKE) --no-print-directory all
	@tests/lib/run-office.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/run.sh

lint:
	cppcheck --quiet --error-exitcode=1 --std=c11 -Iappliance/lib appliance services

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/fuzzobj -name '*.d' 2>/dev/null)
