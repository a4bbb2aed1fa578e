PROGRAMS += otasukectl
otasukectl_SRCS := $(wildcard appliance/cli/*.c)
otasukectl_PKGS := libsodium jansson
