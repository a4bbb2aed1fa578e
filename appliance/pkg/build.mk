# Debian packages and installation.
#   make deb                      build/deb/otasuke_*.deb and otasuke-hub_*.deb
#   make install DESTDIR=/tmp/x   box + hub files under /tmp/x (FHS paths)
#   make install-box / install-hub
#
# `make deb` copies appliance/debian/ into build/deb/src/ and runs dpkg-buildpackage
# there; debian/rules calls back into this Makefile (pkg-programs, install-*) with
# BUILD=build/deb/obj and Debian's hardening flags, so the package binaries are built
# once, hardened, and the developer's build/ (maybe in asan mode) is left alone.
#
# Which program goes where. A daemon gets its unit only if the program is built, so a
# package never enables a unit whose binary is missing. /usr/share/otasuke/otasuke.conf
# is the shipped config again: `otasukectl factory-reset` puts it back in /etc.
PKG_BOX_DAEMONS := otasuke-dnsd otasuke-fwd otasuke-agent otasuke-webd
PKG_BOX_TOOLS   := otasukectl
PKG_HUB_DAEMONS := otasuke-hubd
PKG_SHIPPED     := $(PKG_BOX_DAEMONS) $(PKG_BOX_TOOLS) $(PKG_HUB_DAEMONS)

DESTDIR    ?=
SBINDIR    := /usr/sbin
BINDIR     := /usr/bin
UNITDIR    := /lib/systemd/system
TMPFILESDIR := /usr/lib/tmpfiles.d
DEB_DIR    := $(BUILD)/deb

# Rules in a fragment come before `all:` in the top Makefile; keep `all` the default.
pkg_saved_goal := $(.DEFAULT_GOAL)

.PHONY: deb install install-box install-hub pkg-programs

# PROGRAMS is complete only once every fragment is read, so the program list is
# expanded in the recipe (recursive make), not as prerequisites.
pkg-programs:
	@$(MAKE) --no-print-directory $(addprefix $(BIN)/,$(PROGRAMS)) \
	    $(if $(filter otasuke-webd otasuke-hubd,$(PROGRAMS)),webui)
	@for p in $(filter-out $(PKG_SHIPPED),$(PROGRAMS)); do \
	    echo "package: $$p is built but not packaged (add it to appliance/pkg/build.mk)"; done

# Installs the built programs among $(1) into $(2), with each daemon's units
# (NAME.service and its helpers NAME-*.path / NAME-*.service).
define pkg_install_progs
	@for p in $(1); do \
	    case " $(PROGRAMS) " in *" $$p "*) ;; *) continue ;; esac; \
	    install -D -m 0755 $(BIN)/$$p $(DESTDIR)$(2)/$$p || exit 1; \
	    for u in appliance/etc/systemd/$$p.service appliance/etc/systemd/$$p-*.path \
	             appliance/etc/systemd/$$p-*.service; do \
	        [ -f "$$u" ] || continue; \
	        install -D -m 0644 $$u $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	    done; \
	done
endef

install: install-box install-hub

install-box: pkg-programs
	$(call pkg_install_progs,$(PKG_BOX_DAEMONS),$(SBINDIR))
	$(call pkg_install_progs,$(PKG_BOX_TOOLS),$(BINDIR))
	install -D -m 0644 appliance/etc/otasuke.conf $(DESTDIR)/etc/otasuke/otasuke.conf
	install -D -m 0644 appliance/etc/otasuke.conf $(DESTDIR)/usr/share/otasuke/otasuke.conf
	@set -e; case " $(PROGRAMS) " in *" otasukectl "*) \
	    install -D -m 0644 appliance/etc/systemd/otasuke-factory-reset.service \
	        $(DESTDIR)$(UNITDIR)/otasuke-factory-reset.service ;; esac
	install -D -m 0644 appliance/etc/unbound/otasuke.conf \
	    $(DESTDIR)/etc/unbound/unbound.conf.d/otasuke.conf
	install -D -m 0644 appliance/etc/tmpfiles.d/otasuke.conf \
	    $(DESTDIR)$(TMPFILESDIR)/otasuke.conf
	install -D -m 0644 SECURITY.md $(DESTDIR)/usr/share/doc/otasuke/SECURITY.md
	@set -e; case " $(PROGRAMS) " in *" otasuke-webd "*) \
	    for f in $(WEBUI_BOX_OUT); do \
	        install -D -m 0644 $$f $(DESTDIR)/usr/share/otasuke/webui/$${f#$(BUILD)/webui/}; \
	    done ;; esac

install-hub: pkg-programs
	$(call pkg_install_progs,$(PKG_HUB_DAEMONS),$(SBINDIR))
	install -D -m 0644 appliance/etc/tmpfiles.d/otasuke-hub.conf \
	    $(DESTDIR)$(TMPFILESDIR)/otasuke-hub.conf
	@set -e; case " $(PROGRAMS) " in *" otasuke-hubd "*) \
	    for f in $(wildcard services/hub/mosquitto/start.sh); do \
	        install -D -m 0755 $$f $(DESTDIR)/usr/share/otasuke-hub/$${f#services/hub/}; \
	        install -D -m 0644 appliance/etc/systemd/otasuke-hub-mqtt.service \
	            $(DESTDIR)$(UNITDIR)/otasuke-hub-mqtt.service; \
	    done ;; esac
	install -D -m 0644 SECURITY.md $(DESTDIR)/usr/share/doc/otasuke-hub/SECURITY.md
	@set -e; case " $(PROGRAMS) " in *" otasuke-hubd "*) \
	    for f in $(WEBUI_CONSOLE_OUT); do \
	        install -D -m 0644 $$f $(DESTDIR)/usr/share/otasuke-hub/console/$${f#$(BUILD)/webui/console/}; \
	    done ;; esac

# MAKEFLAGS is dropped so variables given to this make (BUILD=..., CC=...) do not leak
# into the package build; parallelism goes through DEB_BUILD_OPTIONS instead.
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || { \
	    echo "make deb: dpkg-buildpackage/debhelper missing; run 'make deps' (root)" >&2; exit 1; }
	rm -rf $(DEB_DIR)/src && mkdir -p $(DEB_DIR)/src
	cp -a appliance/debian $(DEB_DIR)/src/debian
	rm -f $(DEB_DIR)/*.deb $(DEB_DIR)/*.ddeb $(DEB_DIR)/*.changes $(DEB_DIR)/*.buildinfo
	cd $(DEB_DIR)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    OTASUKE_SRC=$(CURDIR) OTASUKE_BUILD=$(abspath $(DEB_DIR))/obj \
	    DEB_BUILD_OPTIONS="parallel=$$(nproc) $$DEB_BUILD_OPTIONS" \
	    dpkg-buildpackage -b --no-sign > $(abspath $(DEB_DIR))/build.log 2>&1 || { \
	    echo "make deb: dpkg-buildpackage failed; last lines of $(DEB_DIR)/build.log:" >&2; \
	    tail -25 $(abspath $(DEB_DIR))/build.log >&2; exit 1; }
	@ls -1 $(DEB_DIR)/*.deb

# The pkg-config libraries the shipped programs link (tests/bats/package.bats checks
# that debian/control's Build-Depends names the -dev package of each).
.PHONY: pkg-print-libs
pkg-print-libs:
	@echo $(filter-out cmocka,$(ALL_PKGS))

.DEFAULT_GOAL := $(pkg_saved_goal)
