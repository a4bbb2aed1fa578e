PROGRAMS += otasuke-fwd
otasuke-fwd_SRCS := $(wildcard services/firewall/*.c)
otasuke-fwd_PKGS := libnftnl libmnl
