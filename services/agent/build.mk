PROGRAMS += otasuke-agent
otasuke-agent_SRCS := $(wildcard services/agent/*.c)
otasuke-agent_PKGS := sqlite3 jansson libsodium libcurl libmicrohttpd
# Everything but main() is shared with the unit tests.
AGENT_CORE := $(filter-out services/agent/main.c,$(wildcard services/agent/*.c))
test_agent_EXTRA := $(AGENT_CORE)
test_grant_EXTRA := $(AGENT_CORE)
test_explain_EXTRA := $(AGENT_CORE)
test_feed_apply_EXTRA := $(AGENT_CORE)
fuzz_apibody_EXTRA := $(addprefix services/agent/,api_body.c backup.c db.c devices.c events.c \
                        detect.c incidents.c incidents_hook.c incidents_report.c notify.c \
                        explain.c grants.c policy.c webstats.c help.c help_session.c \
                        hubshare.c hubshare_table.c)
# Incidents (detect*.c, incidents*.c, notify.c, help.c): detectors alone, the rest with the core.
test_detect_EXTRA := services/agent/detect.c
test_incident_EXTRA := $(AGENT_CORE)
test_notify_EXTRA := $(AGENT_CORE)
fuzz_incident_EXTRA := $(addprefix services/agent/,db.c detect.c devices.c incidents.c \
                         incidents_report.c policy.c grants.c)
# Hub sharing: the aggregation table and event filter alone (hubshare_table.c).
test_hubshare_EXTRA := services/agent/hubshare_table.c
fuzz_hubshare_EXTRA := services/agent/hubshare_table.c
