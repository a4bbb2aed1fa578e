#!/usr/bin/env bats
# The Debian packages (make deb): contents, dependencies, hardening, lintian, the
# systemd units' privileges and exposure scores, and what installing, reconfiguring
# and purging does to a system.
#
# Installing is tested for real with dpkg, inside a throwaway root: an overlay mounted
# over / in a private mount namespace, entered with chroot. Every write (users, dirs,
# enabled units) lands in the overlay's upper dir under $BATS_FILE_TMPDIR, and the
# namespace with its mounts ends with each command, so the host is never touched and
# nothing is left mounted even when a test fails. No systemd runs here, so units are
# enabled but not started: starting them under systemd is for the image boot test.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
DEBS=$REPO/build/deb

# Box daemons by package; a program counts as expected when a build fragment declares
# it (read here from the fragments, not from the packaging's own list).
declared() { grep -hoE "^PROGRAMS \+= *$1\b" "$REPO"/services/*/build.mk \
                 "$REPO"/appliance/*/build.mk 2>/dev/null | grep -q .; }
BOX_DAEMONS="otasuke-dnsd otasuke-fwd otasuke-agent otasuke-webd"

setup_file() {
    [ "$(id -u)" -eq 0 ] || { echo "package tests need root (dpkg in a throwaway root)" >&2; return 1; }
    make -C "$REPO" --no-print-directory deb >"$BATS_FILE_TMPDIR/make-deb.log" 2>&1 || {
        echo "make deb failed:" >&2; tail -30 "$BATS_FILE_TMPDIR/make-deb.log" >&2; return 1; }
    mkdir -p "$BATS_FILE_TMPDIR/root/upper" "$BATS_FILE_TMPDIR/root/work" \
             "$BATS_FILE_TMPDIR/root/merged" "$BATS_FILE_TMPDIR/units"
    dpkg-deb -x "$(deb otasuke)" "$BATS_FILE_TMPDIR/units/box"
    dpkg-deb -x "$(deb otasuke-hub)" "$BATS_FILE_TMPDIR/units/hub"
}

deb() { ls "$DEBS/$1"_*_*.deb; }

# Runs the shell command $1 as root inside the throwaway root.
in_root() {
    unshare --mount --propagation private sh -euc '
        r=$1
        mount -t overlay otasuke-pkgtest \
            -o "lowerdir=/,upperdir=$r/upper,workdir=$r/work" "$r/merged"
        mount --rbind /dev "$r/merged/dev"
        mount -t proc proc "$r/merged/proc"
        exec chroot "$r/merged" /bin/sh -euc "$2"' sh "$BATS_FILE_TMPDIR/root" "$1"
}

# The daemons' units shipped by either package, one path per line; all_units adds
# the helpers (NAME-reload.path / NAME-reload.service, otasuke-factory-reset.service).
units() { ls "$BATS_FILE_TMPDIR"/units/*/lib/systemd/system/*.service |
          grep -v -e '-reload\.service$' -e '/otasuke-factory-reset\.service$'; }
all_units() { ls "$BATS_FILE_TMPDIR"/units/*/lib/systemd/system/*; }
helpers() { ls "$BATS_FILE_TMPDIR"/units/*/lib/systemd/system/*-reload.service 2>/dev/null; }
unit_of() { ls "$BATS_FILE_TMPDIR"/units/*/lib/systemd/system/"$1".service 2>/dev/null; }
prop() { sed -n "s/^$2=//p" "$1"; }   # every value of setting $2 in unit $1

@test "make deb builds the otasuke and otasuke-hub packages" {
    run dpkg-deb -f "$(deb otasuke)" Package Architecture
    assert_success
    assert_line "Package: otasuke"
    run dpkg-deb -f "$(deb otasuke-hub)" Package
    assert_output otasuke-hub
}

@test "otasuke ships every declared box program, its unit, config and docs, FHS paths only" {
    run dpkg-deb -c "$(deb otasuke)"
    assert_success
    local list=$output p
    for f in ./etc/otasuke/otasuke.conf ./etc/unbound/unbound.conf.d/otasuke.conf \
             ./usr/lib/tmpfiles.d/otasuke.conf ./usr/share/doc/otasuke/SECURITY.md \
             ./usr/share/doc/otasuke/copyright; do
        grep -qF " $f" <<<"$list" || fail "$f missing from the otasuke package"
    done
    for p in $BOX_DAEMONS; do
        if declared "$p"; then
            grep -qF " ./usr/sbin/$p" <<<"$list" || fail "/usr/sbin/$p missing"
            grep -qF " ./lib/systemd/system/$p.service" <<<"$list" || fail "$p.service missing"
            case $p in otasuke-dnsd|otasuke-fwd)
                grep -qF " ./lib/systemd/system/$p-reload.path" <<<"$list" ||
                    fail "$p-reload.path missing (reloads $p on new artifacts)" ;;
            esac
        else
            ! grep -qF "/$p" <<<"$list" || fail "$p is shipped but no fragment builds it"
        fi
    done
    if declared otasukectl; then
        grep -qF " ./usr/bin/otasukectl" <<<"$list" || fail "/usr/bin/otasukectl missing"
    fi
    # the owner UI with the code it shares with the console (webui/common), the block page;
    # not the console (that is the hub's)
    if declared otasuke-webd; then
        for f in owner/index.html owner/app.js owner/common/api.js owner/common/base.css \
                 blockpage/index.html blockpage/page.js blockpage/common/i18n.js; do
            grep -qF " ./usr/share/otasuke/webui/$f" <<<"$list" || fail "webui/$f missing"
        done
        ! grep -qF "/console/" <<<"$list" || fail "the MSP console is in the box package"
    fi
    # nothing outside /etc, /lib/systemd, /usr; nothing world-writable; no setuid
    run awk '{print $6}' <<<"$list"
    refute_line --regexp '^\./(opt|srv|home|root|var|run|tmp|bin|sbin|lib/[^s])'
    run awk '$1 ~ /^-/ && ($1 ~ /s/ || substr($1,9,1) == "w") {print}' <<<"$list"
    assert_output ""
}

@test "otasuke-hub ships the hub daemon when it is built, and its tmpfiles" {
    run dpkg-deb -c "$(deb otasuke-hub)"
    assert_success
    assert_output --partial " ./usr/lib/tmpfiles.d/otasuke-hub.conf"
    [ ! -f "$REPO/services/hub/mosquitto/start.sh" ] ||
        assert_output --partial " ./usr/share/otasuke-hub/mosquitto/start.sh"
    if declared otasuke-hubd; then
        assert_output --partial " ./usr/sbin/otasuke-hubd"
        assert_output --partial " ./lib/systemd/system/otasuke-hubd.service"
        # the MSP console with the code it shares with the owner UI (webui/common)
        for f in index.html app.js common/api.js common/base.css; do
            assert_output --partial " ./usr/share/otasuke-hub/console/$f"
        done
    fi
    refute_output --partial "otasuke-dnsd"
}

@test "the configuration files are conffiles, so upgrades keep the owner's edits" {
    run sh -c "dpkg-deb --ctrl-tarfile '$(deb otasuke)' | tar -xOf - ./conffiles"
    assert_success
    assert_line /etc/otasuke/otasuke.conf
    assert_line /etc/unbound/unbound.conf.d/otasuke.conf
}

@test "otasuke depends on unbound, nftables, dnsmasq-base, adduser and its libraries" {
    run dpkg-deb -f "$(deb otasuke)" Depends
    assert_success
    for d in unbound nftables dnsmasq-base adduser libc6; do
        grep -qE "(^|, )$d( |,|$)" <<<"$output" || fail "Depends lacks $d: $output"
    done
}

@test "Build-Depends names the -dev package of every library the programs link" {
    local libs p pc dev bd
    libs=$(make -C "$REPO" -s --no-print-directory pkg-print-libs)
    [ -n "$libs" ] || fail "no libraries reported by make pkg-print-libs"
    bd=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$REPO/appliance/debian/control")
    for p in $libs; do
        pc=$(pkg-config --variable=pcfiledir "$p")/$p.pc
        dev=$(dpkg -S "$pc" | cut -d: -f1) || fail "$p: no Debian package owns $pc"
        grep -qE "(^|[ ,])$dev([ ,]|$)" <<<"$bd" || fail "Build-Depends lacks $dev (for $p)"
    done
}

@test "packaged binaries are hardened: PIE, full RELRO, BIND_NOW, no executable stack" {
    local dir=$BATS_FILE_TMPDIR/units f n=0
    for f in "$dir"/*/usr/sbin/* "$dir"/*/usr/bin/*; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        run readelf -hldW "$f"
        assert_success
        assert_output --regexp 'Type: +DYN'
        assert_output --partial GNU_RELRO
        assert_output --regexp 'FLAGS.*BIND_NOW|FLAGS_1.*NOW'
        refute_output --regexp 'GNU_STACK.* RWE '
    done
    [ "$n" -gt 0 ] || fail "no binaries in the packages"
}

@test "lintian finds no errors in either package" {
    run lintian --tag-display-limit 0 "$(deb otasuke)" "$(deb otasuke-hub)"
    # warnings are reported, errors fail
    printf '# %s\n' "${lines[@]}" >&3
    refute_line --regexp '^E: '
}

@test "every unit runs as its own system user with the sandbox settings of issue 10" {
    local u users=""
    run units
    assert_success
    for u in $(units); do
        local user; user=$(prop "$u" User)
        [ -n "$user" ] && [ "$user" != root ] || fail "$u: no User= or root"
        # the hub's broker runs as the hub so it reads the files hubd writes for it
        [ "$(basename "$u")" = otasuke-hub-mqtt.service ] && [ "$user" = otasuke-hub ] && continue
        case " $users " in *" $user "*) fail "$u: user $user shared with another unit" ;; esac
        users="$users $user"
        for s in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
                 PrivateDevices=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
                 ProtectControlGroups=yes SystemCallFilter=@system-service \
                 Restart=on-failure; do
            grep -qx "$s" "$u" || fail "$u lacks $s"
        done
        grep -q '^RestrictAddressFamilies=' "$u" || fail "$u lacks RestrictAddressFamilies"
        grep -q '^CapabilityBoundingSet=' "$u" || fail "$u lacks CapabilityBoundingSet"
    done
}

@test "reload helpers run systemctl for their own daemon only, with no capability or network" {
    local u name
    for u in $(helpers); do
        name=$(basename "$u" -reload.service)
        [ "$(prop "$u" ExecStart)" = "/bin/systemctl reload-or-restart $name.service" ] ||
            fail "$u: ExecStart=$(prop "$u" ExecStart)"
        [ "$(prop "$u" CapabilityBoundingSet)" = "" ] || fail "$u has capabilities"
        [ "$(prop "$u" RestrictAddressFamilies)" = AF_UNIX ] || fail "$u: address families"
        grep -qx PrivateNetwork=yes "$u" || fail "$u: network not private"
        grep -qx ProtectSystem=strict "$u" || fail "$u: ProtectSystem"
        [ -f "${u%.service}.path" ] || fail "$u has no .path unit"
    done
}

@test "the boot-time factory reset runs only when asked, without network, with file capabilities only" {
    local u
    u=$(unit_of otasuke-factory-reset) || skip "otasukectl is not built yet"
    [ "$(prop "$u" ConditionKernelCommandLine)" = otasuke.factory_reset=1 ] || fail "no boot condition"
    [ "$(prop "$u" ExecStart)" = "/usr/bin/otasukectl factory-reset --yes --no-services" ] ||
        fail "ExecStart=$(prop "$u" ExecStart)"
    [ "$(prop "$u" CapabilityBoundingSet)" = "CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_CHOWN" ] ||
        fail "CapabilityBoundingSet=$(prop "$u" CapabilityBoundingSet)"
    grep -qx PrivateNetwork=yes "$u" || fail "network not private"
    grep -q '^Before=otasuke-agent.service' "$u" || fail "not ordered before the agent"
}

@test "capabilities and address families are exactly what each daemon needs" {
    local u
    check() {   # name caps families
        u=$(unit_of "$1") || return 0          # not built yet: nothing shipped
        [ "$(prop "$u" CapabilityBoundingSet)" = "$2" ] ||
            fail "$1: CapabilityBoundingSet=$(prop "$u" CapabilityBoundingSet), want '$2'"
        [ "$(prop "$u" AmbientCapabilities)" = "$2" ] ||
            fail "$1: AmbientCapabilities=$(prop "$u" AmbientCapabilities), want '$2'"
        [ "$(prop "$u" RestrictAddressFamilies)" = "$3" ] ||
            fail "$1: RestrictAddressFamilies=$(prop "$u" RestrictAddressFamilies), want '$3'"
    }
    check otasuke-dnsd  CAP_NET_BIND_SERVICE "AF_INET AF_INET6 AF_UNIX"
    check otasuke-fwd   CAP_NET_ADMIN        "AF_UNIX AF_NETLINK"
    check otasuke-agent ""                   "AF_INET AF_INET6 AF_UNIX"
    check otasuke-webd  CAP_NET_BIND_SERVICE "AF_INET AF_INET6 AF_UNIX"
    check otasuke-hubd  ""                   "AF_INET AF_INET6 AF_UNIX"
    check otasuke-hub-mqtt ""                "AF_INET AF_INET6 AF_UNIX"
    # CAP_NET_ADMIN appears in fwd's unit only
    run grep -l CAP_NET_ADMIN $(units)
    refute_output --regexp 'otasuke-(dnsd|agent|webd|hubd)\.service'
}

@test "systemd-analyze exposure is at most 2.5 for every unit but fwd (fwd at most 3.0)" {
    local u score name
    for u in $(units) $(helpers) $(unit_of otasuke-factory-reset); do
        name=$(basename "$u")
        run systemd-analyze security --offline=true "$u"
        score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$output")
        [ -n "$score" ] || fail "$name: no score in: $output"
        echo "# $name exposure $score" >&3
        if [ "$name" = otasuke-fwd.service ]; then
            awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }' || fail "$name: exposure $score > 3.0"
        else
            awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || fail "$name: exposure $score > 2.5"
        fi
    done
}

# The throwaway root sees the host's dpkg database through the overlay: while the host
# runs apt (other work on this machine), that database is mid-change. Wait for it.
host_dpkg_idle() {
    local i
    for ((i = 0; i < 120; i++)); do
        fuser /var/lib/dpkg/lock /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || return 0
        sleep 1
    done
    echo "the host's dpkg stayed busy for 2 minutes" >&2
    return 1
}

@test "installing both packages creates locked system users and tight directories" {
    host_dpkg_idle
    in_root "dpkg -i $(deb otasuke) $(deb otasuke-hub) >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }"
    local u entry
    for u in otasuke otasuke-dns otasuke-fw otasuke-web otasuke-hub; do
        run in_root "getent passwd $u"
        assert_success
        entry=$output
        IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
        [ "$uid" -lt 1000 ] || fail "$u: uid $uid is not a system uid"
        [ "$shell" = /usr/sbin/nologin ] || fail "$u: shell $shell"
        [ "$home" = /nonexistent ] || fail "$u: home $home"
        run in_root "getent shadow $u | cut -d: -f2"
        assert_output --regexp '^[*!]'       # no password: login impossible
    done
    run in_root "stat -c '%n %a %U:%G' /var/lib/otasuke /var/lib/otasuke/fw \
                     /var/lib/otasuke/web /run/otasuke /var/lib/otasuke-hub"
    assert_success
    assert_line "/var/lib/otasuke 750 otasuke:otasuke"
    assert_line "/var/lib/otasuke/fw 700 otasuke-fw:otasuke-fw"
    assert_line "/var/lib/otasuke/web 700 otasuke-web:otasuke-web"
    assert_line "/run/otasuke 770 otasuke:otasuke"
    assert_line "/var/lib/otasuke-hub 700 otasuke-hub:otasuke-hub"
    # units and artifact watchers are enabled for the next boot
    for u in $(units); do
        run in_root "test -L /etc/systemd/system/multi-user.target.wants/$(basename "$u")"
        assert_success
    done
    for u in $(all_units); do
        case $u in *.path)
            run in_root "test -L /etc/systemd/system/paths.target.wants/$(basename "$u")"
            assert_success ;;
        esac
    done
}

@test "the unbound fragment is valid together with Debian's unbound configuration" {
    # Debian's unbound package fetches the root trust anchor at start; give the
    # throwaway root the published root KSK (20326) so the check can run offline.
    run in_root "echo '. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D' \
                     > /var/lib/unbound/root.key
                 unbound-checkconf 2>&1; unbound-checkconf -o interface 2>&1"
    assert_success
    assert_line --partial "no errors in /etc/unbound/unbound.conf"
    assert_line 127.0.0.1@5335
}

@test "running the postinst again changes nothing (idempotent)" {
    local before after
    before=$(in_root "md5sum /etc/passwd /etc/group /etc/shadow")
    run in_root "/var/lib/dpkg/info/otasuke.postinst configure 0.1.0
                 /var/lib/dpkg/info/otasuke-hub.postinst configure 0.1.0"
    assert_success
    after=$(in_root "md5sum /etc/passwd /etc/group /etc/shadow")
    [ "$before" = "$after" ] || fail "users or groups changed on a second configure"
}

@test "installed units pass systemd-analyze verify" {
    local list
    list=$(all_units | sed 's#.*/lib/systemd/system/#/lib/systemd/system/#' | tr '\n' ' ')
    run in_root "systemd-analyze verify --man=no $list 2>&1"
    assert_success
    assert_output ""
}

# Prints a subshell command that runs the unit's $2 (ExecStart or ExecStartPre) the way
# systemd would as far as identity goes: its User, Group, SupplementaryGroups, UMask,
# and its AmbientCapabilities as the only capabilities (bounding set included), with
# no-new-privs. The file-system and syscall sandbox needs systemd itself (image test).
unit_launch() {
    local u; u=$(unit_of "$1") || return 1
    local cmd caps groups
    cmd=$(sed -e ':a' -e '/\\$/N; s/\\\n *//; ta' "$u" | sed -n "s/^$2=//p" | head -1)
    caps=$(prop "$u" AmbientCapabilities | tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | tr '\n' ',')
    groups=$(prop "$u" SupplementaryGroups | tr ' ' ',')
    printf '(umask %s; exec setpriv --reuid=%s --regid=%s %s --inh-caps=-all%s --ambient-caps=-all%s --bounding-set=-all%s --no-new-privs %s)' \
        "$(prop "$u" UMask)" "$(prop "$u" User)" "$(prop "$u" Group)" \
        "$([ -n "$groups" ] && echo "--groups=$groups" || echo --clear-groups)" \
        "${caps:+,${caps%,}}" "${caps:+,${caps%,}}" "${caps:+,${caps%,}}" "$cmd"
}

# Like in_root, in a fresh network namespace with only loopback up.
in_root_net() {
    unshare --mount --net --propagation private sh -euc '
        r=$1
        mount -t overlay otasuke-pkgtest \
            -o "lowerdir=/,upperdir=$r/upper,workdir=$r/work" "$r/merged"
        mount --rbind /dev "$r/merged/dev"
        mount -t proc proc "$r/merged/proc"
        ip link set lo up
        exec chroot "$r/merged" /bin/sh -euc "$2"' sh "$BATS_FILE_TMPDIR/root" "$1"
}

@test "installed daemons work with their unit's user, groups and capabilities only" {
    for p in otasuke-agent otasuke-dnsd otasuke-fwd; do
        unit_of $p >/dev/null || skip "$p is not built yet"
    done
    # The agent compiles the first artifacts (0640, group otasuke); dnsd reads them
    # through the group and binds :53 with CAP_NET_BIND_SERVICE; fwd creates its
    # nftables table with CAP_NET_ADMIN alone. Processes die with the script (trap).
    run in_root_net "
        pids=''; trap 'kill \$pids 2>/dev/null || true; wait' EXIT
        rm -f /var/lib/otasuke/*.set /var/lib/otasuke/agent.db*
        $(unit_launch otasuke-agent ExecStart) >/tmp/agent.log 2>&1 & pids=\"\$pids \$!\"
        for i in \$(seq 100); do [ -e /var/lib/otasuke/fw.set ] && break; sleep 0.1; done
        stat -c '%a %U:%G %n' /var/lib/otasuke/domains.set /var/lib/otasuke/policy.set /var/lib/otasuke/fw.set
        stat -c '%a %U %n' /var/lib/otasuke/agent.db
        $(unit_launch otasuke-dnsd ExecStartPre) >/tmp/dnsd-check.log 2>&1 && echo dnsd-check-ok
        $(unit_launch otasuke-fwd ExecStartPre) >/tmp/fwd-check.log 2>&1 && echo fwd-check-ok
        $(unit_launch otasuke-dnsd ExecStart) >/tmp/dnsd.log 2>&1 & pids=\"\$pids \$!\"
        $(unit_launch otasuke-fwd ExecStart) >/tmp/fwd.log 2>&1 & pids=\"\$pids \$!\"
        for i in \$(seq 100); do
            [ -S /run/otasuke/dnsd.ctl ] && nft list table inet otasuke >/dev/null 2>&1 && break
            sleep 0.1
        done
        dig +time=2 +tries=1 @127.0.0.1 good.test | grep -o 'status: [A-Z]*' || true
        nft list table inet otasuke >/dev/null 2>&1 && echo fwd-table-ok
        if [ -x /usr/sbin/otasuke-webd ]; then
            $(unit_launch otasuke-webd ExecStart 2>/dev/null) >/tmp/webd.log 2>&1 & pids=\"\$pids \$!\"
            for i in \$(seq 100); do ss -ltn | grep -q ':443 ' && break; sleep 0.1; done
            for url in https://127.0.0.1/ 'https://[::1]/' http://127.0.0.1/ 'http://[::1]/'; do
                echo \"\$url \$(curl -ks -o /dev/null -w '%{http_code}' \"\$url\" || true)\"
            done
            stat -c '%a %U %n' /var/lib/otasuke/web/key.pem
        fi
        ps -o user:16=,comm= -p \$(echo \$pids | tr ' ' ,) | sort
        tail -n3 /tmp/agent.log /tmp/dnsd.log /tmp/fwd.log >&2"
    assert_success
    # group otasuke reads them (0640, or 0644 inside the 0750 directory), nobody else writes
    assert_line --regexp '^64[04] otasuke:otasuke /var/lib/otasuke/domains\.set$'
    assert_line --regexp '^64[04] otasuke:otasuke /var/lib/otasuke/policy\.set$'
    assert_line --regexp '^64[04] otasuke:otasuke /var/lib/otasuke/fw\.set$'
    # accounts, sessions, keys and the audit live in agent.db: the agent's alone,
    # not the otasuke group's (its unit's UMask=0027 would give 0640)
    assert_line '600 otasuke /var/lib/otasuke/agent.db'
    assert_line dnsd-check-ok
    assert_line fwd-check-ok
    assert_line --regexp '^status: (NOERROR|NXDOMAIN|SERVFAIL)$'  # dnsd answered on :53
    assert_line fwd-table-ok
    assert_line --regexp '^otasuke +otasuke-agent$'
    assert_line --regexp '^otasuke-dns +otasuke-dnsd$'
    assert_line --regexp '^otasuke-fw +otasuke-fwd$'
    if unit_of otasuke-webd >/dev/null; then
        # webd made its TLS key at first start, readable by itself only, and serves
        # the owner UI on 443 and the block page on 80 with CAP_NET_BIND_SERVICE
        assert_line --regexp '^otasuke-web +otasuke-webd$'
        assert_line --regexp '^https://127\.0\.0\.1/ [1-5][0-9][0-9]$'
        assert_line --regexp '^https://\[::1\]/ [1-5][0-9][0-9]$'
        assert_line --regexp '^http://127\.0\.0\.1/ [1-5][0-9][0-9]$'
        assert_line --regexp '^http://\[::1\]/ [1-5][0-9][0-9]$'
        assert_line --regexp '^600 otasuke-web /var/lib/otasuke/web/key.pem$'
    fi
}

@test "the setup code and the TLS key never reach a log" {
    unit_of otasuke-agent >/dev/null || skip "otasuke-agent is not built yet"
    run in_root_net "
        pids=''; trap 'kill \$pids 2>/dev/null || true; wait' EXIT
        $(unit_launch otasuke-agent ExecStart) >/tmp/agent3.log 2>&1 & pids=\"\$pids \$!\"
        for i in \$(seq 100); do [ -S /run/otasuke/agent.sock ] && break; sleep 0.1; done
        code=\$(otasukectl setup-code --socket /run/otasuke/agent.sock 2>/dev/null |
               sed -n 's/^setup code: \\([^ ]*\\).*/\\1/p')
        [ -n \"\$code\" ] && echo got-code || echo no-setup-code
        if [ -x /usr/sbin/otasuke-webd ]; then
            $(unit_launch otasuke-webd ExecStart 2>/dev/null) >/tmp/webd3.log 2>&1 & pids=\"\$pids \$!\"
            for i in \$(seq 100); do [ -s /var/lib/otasuke/web/key.pem ] && break; sleep 0.1; done
            sleep 0.5
        fi
        kill \$pids; wait
        for f in /tmp/agent3.log /tmp/webd3.log; do
            [ -e \$f ] || continue
            [ -z \"\$code\" ] || ! grep -qF \"\$code\" \$f || echo \"setup code in \$f\"
            # any line of the private key's body
            if [ -s /var/lib/otasuke/web/key.pem ]; then
                grep -v -- '-----' /var/lib/otasuke/web/key.pem | while read -r l; do
                    ! grep -qF \"\$l\" \$f || echo \"key material in \$f\"; done
            fi
        done
        echo checked"
    assert_success
    assert_line checked
    refute_output --partial 'setup code in'
    refute_output --partial 'key material in'
    # the agent mints setup codes once its auth API is in; until then only keys are checked
    if ! grep -qx got-code <<<"$output"; then
        echo "# the agent gave no setup code (auth API not in this build): code not checked" >&3
    fi
}

@test "factory reset deletes every owner datum and key; the box starts again as new" {
    unit_of otasuke-agent >/dev/null || skip "otasuke-agent is not built yet"
    # runs after the daemons test above: agent.db, artifacts, fwd state, webd's key exist
    run in_root_net "
        pids=''; trap 'kill \$pids 2>/dev/null || true; wait' EXIT
        ls /var/lib/otasuke/agent.db >/dev/null
        old_key=\$(cat /var/lib/otasuke/web/key.pem 2>/dev/null | sha256sum)
        echo '# owner edit' >> /etc/otasuke/otasuke.conf
        otasukectl factory-reset </dev/null >/dev/null 2>&1 || echo unconfirmed-status=\$?
        [ -e /var/lib/otasuke/agent.db ] && echo kept-when-unconfirmed
        otasukectl factory-reset --yes --no-services
        find /var/lib/otasuke /run/otasuke -mindepth 1 -printf 'left %p %m %u\\n' | sort
        cmp -s /etc/otasuke/otasuke.conf /usr/share/otasuke/otasuke.conf && echo config-restored
        $(unit_launch otasuke-agent ExecStart) >/tmp/agent2.log 2>&1 & pids=\"\$pids \$!\"
        for i in \$(seq 100); do [ -e /var/lib/otasuke/fw.set ] && break; sleep 0.1; done
        [ -e /var/lib/otasuke/agent.db ] && echo agent-started-fresh
        if [ -x /usr/sbin/otasuke-webd ]; then
            $(unit_launch otasuke-webd ExecStart 2>/dev/null) >/tmp/webd2.log 2>&1 & pids=\"\$pids \$!\"
            for i in \$(seq 100); do [ -s /var/lib/otasuke/web/key.pem ] && break; sleep 0.1; done
            sleep 0.2
            [ \"\$(sha256sum < /var/lib/otasuke/web/key.pem)\" != \"\$old_key\" ] && echo new-tls-key
        fi"
    assert_success
    assert_line unconfirmed-status=2
    assert_line kept-when-unconfirmed
    assert_line --regexp '^\{"deleted":[1-9][0-9]*,"failed":0,'
    # only the empty directories tmpfiles makes again, with their owners and modes
    assert_line 'left /var/lib/otasuke/fw 700 otasuke-fw'
    assert_line 'left /var/lib/otasuke/web 700 otasuke-web'
    refute_line --regexp '^left /var/lib/otasuke/.*(db|set|pem|key)'
    refute_line --regexp '^left /run/otasuke/'
    assert_line config-restored
    assert_line agent-started-fresh
    if unit_of otasuke-webd >/dev/null; then assert_line new-tls-key; fi
}

@test "without its capability, dnsd cannot bind :53 and fwd cannot touch nftables" {
    # shows the capability each unit grants is needed, not just allowed
    for p in otasuke-dnsd otasuke-fwd; do
        unit_of $p >/dev/null || skip "$p is not built yet"
    done
    local dnsd fwd
    dnsd=$(unit_launch otasuke-dnsd ExecStart | sed 's/+net_bind_service/-net_bind_service/g')
    fwd=$(unit_launch otasuke-fwd ExecStart | sed 's/+net_admin/-net_admin/g')
    # started in the background so that a daemon which wrongly starts is seen and stopped
    run in_root_net "
        $dnsd >/tmp/d.log 2>&1 & d=\$!
        $fwd >/tmp/f.log 2>&1 & f=\$!
        sleep 1
        if kill \$d 2>/dev/null; then echo dnsd-ran; else echo dnsd-refused; fi
        kill \$f 2>/dev/null || true
        wait || true
        nft list table inet otasuke >/dev/null 2>&1 && echo table-exists || echo no-table
        grep -q 'Operation not permitted' /tmp/f.log && echo fwd-refused-by-kernel
        tail -n2 /tmp/d.log /tmp/f.log >&2"
    assert_success
    assert_line dnsd-refused
    # fwd stays up on a failed apply (keeps the last ruleset, retries on reload); the
    # kernel refusing it is what matters here
    assert_line fwd-refused-by-kernel
    assert_line no-table
}

@test "installed hub works as its units' user: broker on loopback 1884, hubd on 8443" {
    for p in otasuke-hubd otasuke-hub-mqtt; do
        unit_of $p >/dev/null || skip "$p is not built yet"
    done
    run in_root_net "
        pids=''; trap 'kill \$pids 2>/dev/null || true; wait' EXIT
        $(unit_launch otasuke-hub-mqtt ExecStart) >/tmp/mqtt.log 2>&1 & pids=\"\$pids \$!\"
        for i in \$(seq 50); do ss -ltn | grep -q '127.0.0.1:1884 ' && break; sleep 0.1; done
        $(unit_launch otasuke-hubd ExecStartPre) >/tmp/hubd-check.log 2>&1 && echo hubd-check-ok
        $(unit_launch otasuke-hubd ExecStart) >/tmp/hubd.log 2>&1 & pids=\"\$pids \$!\"
        for i in \$(seq 50); do ss -ltn | grep -q ':8443 ' && break; sleep 0.1; done
        ss -ltnH | awk '{print \$4}' | sort
        ps -o user:16=,comm= -p \$(echo \$pids | tr ' ' ,) | sort
        stat -c '%a %n' /var/lib/otasuke-hub /var/lib/otasuke-hub/feed.key /var/lib/otasuke-hub/pseudonym.key
        tail -n3 /tmp/mqtt.log /tmp/hubd.log >&2"
    assert_success
    assert_line hubd-check-ok
    assert_line 127.0.0.1:1884
    assert_line '[::]:8443'
    assert_line --regexp '^otasuke-hub +mosquitto$'
    assert_line --regexp '^otasuke-hub +otasuke-hubd$'
    assert_line '700 /var/lib/otasuke-hub'
    assert_line '600 /var/lib/otasuke-hub/feed.key'
    assert_line '600 /var/lib/otasuke-hub/pseudonym.key'
}

@test "purge deletes the owner's data and config, keeps the users; reinstall works" {
    host_dpkg_idle
    run in_root "echo secret > /var/lib/otasuke/agent.db; dpkg --purge otasuke otasuke-hub >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
                 for p in /var/lib/otasuke /run/otasuke /var/lib/otasuke-hub /etc/otasuke/otasuke.conf; do
                     [ ! -e \$p ] || echo \"left behind: \$p\"
                 done
                 getent passwd otasuke-dns >/dev/null || echo 'user otasuke-dns gone'"
    assert_success
    assert_output ""
    run in_root "dpkg -i $(deb otasuke) >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
                 stat -c '%a %U' /var/lib/otasuke"
    assert_success
    assert_output "750 otasuke"
}
