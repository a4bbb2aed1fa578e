PROGRAMS += otasuke-webd
otasuke-webd_SRCS := $(wildcard services/webd/*.c)
otasuke-webd_PKGS := libmicrohttpd gnutls jansson libsodium libcurl
test_webd_parse_EXTRA := services/webd/webd_parse.c
fuzz_webd_parse_EXTRA := services/webd/webd_parse.c
# Accounts tests use the agent's core (everything but its main()).
test_accounts_EXTRA = $(AGENT_CORE)
fuzz_webd_accounts_EXTRA = $(filter-out services/agent/main.c,$(wildcard services/agent/*.c))

# The web UI is plain ES modules: "building" is copying into build/webui (fast, so part of
# 'all'); webd serves it with --ui build/webui.
WEBUI_SRC := $(shell find webui/owner webui/blockpage -type f 2>/dev/null)
WEBUI_OUT := $(WEBUI_SRC:webui/%=$(BUILD)/webui/%)
.PHONY: webui
webui: $(WEBUI_OUT)
$(BUILD)/webui/%: webui/%
	@mkdir -p $(dir $@)
	cp $< $@
all: webui
