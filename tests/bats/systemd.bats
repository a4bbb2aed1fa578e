#!/usr/bin/env bats
# The packaged units under a real systemd: the otasuke package is installed into a
# throwaway root (an overlay over this machine's Debian, in a private mount namespace)
# which is then booted with systemd-nspawn, private network, no registration. A probe
# unit ordered after the otasuke units records what systemd did, exercises the artifact
# watchers and the factory reset, and powers the container off; the tests read its
# report from the overlay. So the sandbox settings (ProtectSystem=strict, the syscall
# filter, capability sets, StateDirectory...) are what the daemons really run under.
#
# Services this machine has enabled that a box does not run (nsd, mosquitto, ...) are
# disabled in the throwaway root; unbound stays, with our fragment. The probe's report
# is kept in build/deb/systemd-probe.out.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

probe_script() {
    cat <<'EOF'
#!/bin/sh
# otasuke-probe: runs once in the container after boot, writes /var/tmp/probe.out.
exec >/var/tmp/probe.out 2>&1
units="otasuke-agent otasuke-dnsd otasuke-fwd otasuke-webd otasuke-hub-mqtt otasuke-hubd"
settle() {   # until every daemon is active (or 30 s); "reloading" is not settled yet,
             # although is-active says yes to it (a path unit may reload fwd after a start)
    for i in $(seq 60); do
        n=0
        for u in $units; do
            [ ! -e /lib/systemd/system/$u.service ] ||
                [ "$(systemctl show -p ActiveState --value $u)" = active ] || n=$((n+1))
        done
        [ $n = 0 ] && return 0
        sleep 0.5
    done
}
settle; sleep 1
for u in $units otasuke-dnsd-reload.path otasuke-fwd-reload.path; do
    [ -e /lib/systemd/system/${u%.path}.service ] || [ -e /lib/systemd/system/$u ] || continue
    echo "unit $u $(systemctl show -p ActiveState --value $u)" \
         "restarts=$(systemctl show -p NRestarts --value $u)"
done
for u in $units; do
    pid=$(systemctl show -p MainPID --value $u)
    [ "$pid" -gt 0 ] 2>/dev/null || continue
    echo "user $u $(ps -o user:16= -p $pid)"
    echo "caps $u $(grep CapEff /proc/$pid/status | awk '{print $2}')"
    echo "seccomp $u $(grep '^Seccomp:' /proc/$pid/status | awk '{print $2}')"
done
echo "dns $(dig +time=2 +tries=1 @127.0.0.1 good.test | grep -o 'status: [A-Z]*')"
ss -Hltn | awk '{print "listen " $4}' | sort -u
nft list table inet otasuke >/dev/null 2>&1 && echo "nft table present"
for p in 443 80; do
    echo "web $p $(curl -ks -o /dev/null -w '%{http_code}' http$([ $p = 443 ] && echo s)://127.0.0.1:$p/)"
done
# A new artifact, published by atomic rename as the agent does: the watcher reloads dnsd.
before=$(journalctl -o cat -u otasuke-dnsd | grep -c 'loaded:')
setpriv --reuid=otasuke --regid=otasuke --clear-groups sh -c \
    'cp /var/lib/otasuke/domains.set /var/lib/otasuke/.d.tmp && mv /var/lib/otasuke/.d.tmp /var/lib/otasuke/domains.set'
for i in $(seq 40); do
    [ "$(journalctl -o cat -u otasuke-dnsd | grep -c 'loaded:')" -gt "$before" ] && break
    sleep 0.25
done
[ "$(journalctl -o cat -u otasuke-dnsd | grep -c 'loaded:')" -gt "$before" ] && echo "watcher reloaded dnsd"
systemctl -q is-active otasuke-dnsd && echo "dnsd active after reload"
# Factory reset with systemd: stop, delete, re-create, start.
# an owner datum in the agent's database and a stray file: both must go
setpriv --reuid=otasuke --regid=otasuke --clear-groups \
    sqlite3 /var/lib/otasuke/agent.db 'CREATE TABLE owner_marker(x); INSERT INTO owner_marker VALUES (1);'
touch /var/lib/otasuke/owner-file
sqlite3 /var/lib/otasuke/agent.db .tables | grep -q owner_marker && echo "owner datum written"
echo '# owner edit' >> /etc/otasuke/otasuke.conf
otasukectl factory-reset --yes >/var/tmp/reset.out 2>&1 && echo "reset exit 0"
cat /var/tmp/reset.out
settle
# the agent's compiles right after the start make the path units reload dnsd/fwd: a
# unit caught "reloading" is given a few seconds to be back at "active"
for u in otasuke-agent otasuke-dnsd otasuke-fwd otasuke-webd; do
    for i in $(seq 20); do
        s=$(systemctl show -p ActiveState --value $u)
        [ "$s" = active ] && break
        sleep 0.5
    done
    echo "after-reset $u $s"
done
for i in $(seq 40); do [ -e /var/lib/otasuke/agent.db ] && break; sleep 0.25; done
[ -e /var/lib/otasuke/agent.db ] && [ ! -e /var/lib/otasuke/owner-file ] &&
    ! sqlite3 /var/lib/otasuke/agent.db .tables | grep -q owner_marker && echo "fresh database"
cmp -s /etc/otasuke/otasuke.conf /usr/share/otasuke/otasuke.conf && echo "config restored"
echo "--- journal"
journalctl --no-pager -o short-monotonic -u 'otasuke-*' | tail -n 60
echo "--- unbound and the hub's broker"
journalctl --no-pager -o short-monotonic -u unbound | head -n 15
journalctl --no-pager -o short-monotonic -u otasuke-hub-mqtt | head -n 25
echo "--- end"
systemctl poweroff
EOF
}

setup_file() {
    [ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; return 1; }
    command -v systemd-nspawn >/dev/null || skip "systemd-nspawn missing (apt-get install systemd-container)"
    [ -d /sys/fs/cgroup/systemd ] || [ -e /sys/fs/cgroup/cgroup.controllers ] ||
        skip "no cgroup hierarchy systemd can boot on"
    make -C "$REPO" --no-print-directory deb >"$BATS_FILE_TMPDIR/make-deb.log" 2>&1 || {
        echo "make deb failed:" >&2; tail -30 "$BATS_FILE_TMPDIR/make-deb.log" >&2; return 1; }
    local r=$BATS_FILE_TMPDIR/root
    mkdir -p "$r/upper" "$r/work" "$r/merged"
    probe_script >"$BATS_FILE_TMPDIR/probe.sh"
    # everything below happens in a private mount namespace that ends with it
    timeout -k 10 240 unshare --mount --propagation private sh -euc '
        r=$1 debs=$2 probe=$3
        m=$r/merged
        mount -t overlay otasuke-nspawn -o "lowerdir=/,upperdir=$r/upper,workdir=$r/work" "$m"
        for w in "$m"/etc/systemd/system/multi-user.target.wants/*; do
            case ${w##*/} in otasuke-*|unbound.service) ;; *) rm -f "$w" ;; esac
        done
        chroot "$m" sh -c "dpkg -i $debs/otasuke_*.deb $debs/otasuke-hub_*.deb >/tmp/dpkg.log 2>&1" || {
            cat "$m/tmp/dpkg.log"; exit 1; }
        install -m 0755 "$probe" "$m/usr/local/sbin/otasuke-probe"
        printf "%s\n" "[Unit]" "After=multi-user.target otasuke-agent.service otasuke-dnsd.service" \
            "[Service]" "Type=oneshot" "ExecStart=/usr/local/sbin/otasuke-probe" \
            > "$m/etc/systemd/system/otasuke-probe.service"
        ln -sf /etc/systemd/system/otasuke-probe.service \
            "$m/etc/systemd/system/multi-user.target.wants/otasuke-probe.service"
        : > "$m/etc/machine-id"
        systemd-nspawn -q -D "$m" --private-network --register=no --keep-unit -b \
            >"$r/console.log" 2>&1 || true
    ' sh "$r" "$REPO/build/deb" "$BATS_FILE_TMPDIR/probe.sh" >"$BATS_FILE_TMPDIR/setup.log" 2>&1 || {
        echo "booting the container failed:" >&2; tail -30 "$BATS_FILE_TMPDIR/setup.log" >&2
        tail -30 "$r/console.log" >&2; return 1; }
    cp "$r/upper/var/tmp/probe.out" "$REPO/build/deb/systemd-probe.out" 2>/dev/null || true
    [ -s "$r/upper/var/tmp/probe.out" ] || {
        echo "the probe wrote nothing; container console:" >&2; tail -40 "$r/console.log" >&2
        return 1; }
}

report() { cat "$BATS_FILE_TMPDIR/root/upper/var/tmp/probe.out"; }
built() { [ -x "$REPO/build/deb/obj/bin/$1" ]; }

@test "under systemd every otasuke daemon is active, never restarted, with its own user" {
    run report
    local u user
    for u in agent:otasuke dnsd:otasuke-dns fwd:otasuke-fw webd:otasuke-web hubd:otasuke-hub \
             hub-mqtt:otasuke-hub; do
        user=${u#*:}; u=otasuke-${u%%:*}
        case $u in otasuke-hub-mqtt) built otasuke-hubd || continue ;; *) built "$u" || continue ;; esac
        assert_line "unit $u active restarts=0"
        assert_line --regexp "^user $u $user\$"
    done
    assert_line --regexp '^unit otasuke-dnsd-reload.path active'
    assert_line --regexp '^unit otasuke-fwd-reload.path active'
}

@test "under systemd the daemons run with only their capability and a seccomp filter" {
    run report
    # CapEff masks: CAP_NET_BIND_SERVICE = bit 10, CAP_NET_ADMIN = bit 12; mode 2 = filter
    assert_line "caps otasuke-agent 0000000000000000"
    assert_line "caps otasuke-dnsd 0000000000000400"
    assert_line "caps otasuke-fwd 0000000000001000"
    built otasuke-webd && assert_line "caps otasuke-webd 0000000000000400"
    if built otasuke-hubd; then
        assert_line "caps otasuke-hubd 0000000000000000"
        assert_line "caps otasuke-hub-mqtt 0000000000000000"
    fi
    local u
    for u in agent dnsd fwd; do assert_line "seccomp otasuke-$u 2"; done
    refute_output --partial 'status=31/SYS'          # killed by the syscall filter
}

@test "under systemd the box serves: DNS on :53, its nftables table, the web UI and block page" {
    run report
    assert_line --regexp '^dns status: (NOERROR|NXDOMAIN|SERVFAIL)$'
    assert_line "listen 127.0.0.1:5335"            # unbound with our fragment, loopback only
    refute_line 'listen 0.0.0.0:5335'
    refute_line 'listen [::]:5335'
    assert_line "nft table present"
    if built otasuke-webd; then
        assert_line --regexp '^web 443 [1-5][0-9][0-9]$'
        assert_line --regexp '^web 80 [1-5][0-9][0-9]$'
    fi
}

@test "under systemd the hub and its broker listen where they should" {
    built otasuke-hubd || skip "otasuke-hubd is not built"
    run report
    assert_line "listen 127.0.0.1:1884"
    assert_line "listen [::]:8443"
}

@test "under systemd a new artifact published by rename makes the watcher reload dnsd" {
    run report
    assert_line "watcher reloaded dnsd"
    assert_line "dnsd active after reload"
}

@test "under systemd factory reset stops, wipes, restores the config and starts the box fresh" {
    run report
    assert_line "reset exit 0"
    assert_line --regexp '^\{"deleted":[1-9][0-9]*,"failed":0,"services_restarted":true\}$'
    assert_line "after-reset otasuke-agent active"
    assert_line "after-reset otasuke-dnsd active"
    assert_line "after-reset otasuke-fwd active"
    assert_line "owner datum written"
    assert_line "fresh database"
    assert_line "config restored"
}
