PROGRAMS += otasuke-webd
otasuke-webd_SRCS := $(wildcard services/webd/*.c)
otasuke-webd_PKGS := libmicrohttpd gnutls jansson libsodium libcurl
test_webd_parse_EXTRA := services/webd/webd_parse.c
fuzz_webd_parse_EXTRA := services/webd/webd_parse.c
# Accounts tests use the agent's core (everything but its main()).
test_accounts_EXTRA = $(AGENT_CORE)
fuzz_webd_accounts_EXTRA = $(filter-out services/agent/main.c,$(wildcard services/agent/*.c))

# The web UIs are plain ES modules: "building" is copying into build/webui (fast, so part
# of 'all'). build/webui/<ui>/ mirrors webui/<ui>/, and the owner UI and the MSP console
# each get webui/common/ as their common/ subdirectory (the block page only the two
# modules it uses), so each directory is served whole: webd --ui build/webui (owner/,
# blockpage/), hubd --console build/webui/console.
WEBUI_COMMON := $(wildcard webui/common/*)
WEBUI_BLOCKPAGE_COMMON := webui/common/dom.js webui/common/i18n.js
WEBUI_BOX_OUT := $(patsubst webui/%,$(BUILD)/webui/%,$(shell find webui/owner webui/blockpage -type f 2>/dev/null)) \
                 $(WEBUI_COMMON:webui/common/%=$(BUILD)/webui/owner/common/%) \
                 $(WEBUI_BLOCKPAGE_COMMON:webui/common/%=$(BUILD)/webui/blockpage/common/%)
WEBUI_CONSOLE_OUT := $(patsubst webui/%,$(BUILD)/webui/%,$(shell find webui/console -type f 2>/dev/null)) \
                     $(WEBUI_COMMON:webui/common/%=$(BUILD)/webui/console/common/%)
# Files that left the source tree leave build/webui too (the package copies that tree).
.PHONY: webui
webui: $(WEBUI_BOX_OUT) $(WEBUI_CONSOLE_OUT)
	@keep=" $^ "; find $(BUILD)/webui -type f | while read -r f; do \
	    case "$$keep" in *" $$f "*) ;; *) rm -v "$$f" ;; esac; done
$(BUILD)/webui/%: webui/%
	@mkdir -p $(dir $@)
	cp $< $@
# (The shorter stems win over the rule above; one rule each: a pattern rule with two
# targets would be taken as making both at once.)
$(BUILD)/webui/owner/common/%: webui/common/%
	@mkdir -p $(dir $@)
	cp $< $@
$(BUILD)/webui/console/common/%: webui/common/%
	@mkdir -p $(dir $@)
	cp $< $@
$(BUILD)/webui/blockpage/common/%: webui/common/%
	@mkdir -p $(dir $@)
	cp $< $@
all: webui
