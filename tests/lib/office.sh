#!/usr/bin/env bash
# The virtual office: network namespaces standing in for an office network, the otasuke
# box between it and a sealed fake internet.
#
#   office.sh up [--dns=unbound|none]   build one office; prints OFFICE_ID=<id>
#   office.sh down [ID | --all [GLOB]]  remove it (every ns, veth, process, file);
#                                       --all: every office whose owner is gone
#   office.sh exec NODE CMD...          run CMD in NODE (box|pc|iot|guest|wan|hub)
#   office.sh start NAME NODE CMD...    start a daemon in NODE, tracked for stop/down
#   office.sh stop NAME                 stop it (TERM, then KILL after 3 s)
#   office.sh status                    nodes and tracked daemons of the office
#   office.sh list                      every office on this machine, owner alive or not
#   office.sh env                       shell variables naming the office's ns/interfaces
#
# Which office: $OFFICE_ID, else the last one `up` made for the calling shell, else
# (all but down) the only office up on the machine. The
# owner of an office is $OFFICE_OWNER (a pid) or else that calling shell. `up`
# without $OFFICE_ID makes a short unique ID. Namespaces are ota<ID>-<node>, interfaces
# o<ID><role> (<= 15 chars), run state in /run/otasuke-office/<ID>/ (configs, pids, logs).
# --dns=unbound (default) lets the box's unbound also answer clients on box:53;
# --dns=none leaves :53 free for otasuke-dnsd. Either way unbound listens on
# 127.0.0.1@5335 / ::1@5335 in box with appliance/etc/unbound/ + the test forward file.
#
# Address plan (documentation/benchmark ranges only; nothing is routed outside):
#   LAN   192.0.2.0/24    box .1  pc .10      fd00:0:0:1::1 / ::10
#   guest 203.0.113.0/24  box .1  guest .10   fd00:0:0:2::1 / ::10
#   IoT   198.51.100.0/24 box .1  iot .10     fd00:0:0:3::1 / ::10
#   WAN   198.18.0.0/24   wan .1  box .2      fd00:0:0:100::1 / ::2
#   hub   198.18.1.0/24   wan .1  hub .10     fd00:0:0:101::1 / ::10
#   wan services (on wan's lo): DNS 198.18.53.53 fd00:0:0:53::53 (nsd, tests/lib/wan/),
#   resolver 198.18.8.8 fd00:0:0:8::8 (unbound, TXT whoami.test "wan-resolver"),
#   TCP 198.18.8.8:853/:443, HTTP :80 on the site addresses below.
#
# Sourcing this file defines `office` (runs this script) and the variables above;
# nothing else changes in the calling shell.

OFFICE_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
OFFICE_REPO=$(cd "$(dirname "$OFFICE_SH")/../.." && pwd)
OFFICE_ROOT=${OFFICE_ROOT:-/run/otasuke-office}
OFFICE_WAN_DIR=${OFFICE_WAN_DIR:-$OFFICE_REPO/tests/lib/wan}
OFFICE_UNBOUND_DIR=${OFFICE_UNBOUND_DIR:-$OFFICE_REPO/appliance/etc/unbound}
OFFICE_NODES=(box pc iot guest wan hub)
# How long a daemon may take to answer at start-up (generous: tests share a small,
# busy machine; a dead daemon fails at once anyway).
OFFICE_WAIT_SECS=${OFFICE_WAIT_SECS:-20}

# Links: name  node-a if-suffix-a v4-a v6-a  node-b if-suffix-b v4-b v6-b  prefix4 prefix6
OFFICE_LINKS=(
    "lan   box lan 192.0.2.1    fd00:0:0:1::1   pc    pc    192.0.2.10    fd00:0:0:1::10   24 64"
    "guest box gst 203.0.113.1  fd00:0:0:2::1   guest guest 203.0.113.10  fd00:0:0:2::10   24 64"
    "iot   box iot 198.51.100.1 fd00:0:0:3::1   iot   iotc  198.51.100.10 fd00:0:0:3::10   24 64"
    "wan   box wan 198.18.0.2   fd00:0:0:100::2 wan   wbox  198.18.0.1    fd00:0:0:100::1  24 64"
    "hub   wan whub 198.18.1.1  fd00:0:0:101::1 hub   hub   198.18.1.10   fd00:0:0:101::10 24 64"
)
# Web sites of the fake internet: v4 v6 name (HTTP :80 on both addresses).
OFFICE_SITES=(
    "198.18.10.10 fd00:0:0:10::10 good.test"
    "198.18.10.20 fd00:0:0:10::20 shop.test"
    "198.18.10.66 fd00:0:0:10::66 malware.test"
    "198.18.10.80 fd00:0:0:10::80 ads.test"
    "198.18.10.90 fd00:0:0:10::90 static.cdn.test"
    "198.18.20.1 fd00:0:0:20::1 www.google.com"
    "198.18.20.2 fd00:0:0:20::2 forcesafesearch.google.com"
    "198.18.20.3 fd00:0:0:20::3 www.bing.com"
    "198.18.20.4 fd00:0:0:20::4 strict.bing.com"
    "198.18.20.5 fd00:0:0:20::5 www.youtube.com"
    "198.18.20.6 fd00:0:0:20::6 restrict.youtube.com"
    "198.18.20.7 fd00:0:0:20::7 restrictmoderate.youtube.com"
    "198.18.20.8 fd00:0:0:20::8 duckduckgo.com"
    "198.18.20.9 fd00:0:0:20::9 safe.duckduckgo.com"
)
OFFICE_WAN_DNS4=198.18.53.53 OFFICE_WAN_DNS6=fd00:0:0:53::53
OFFICE_WAN_RESOLVER4=198.18.8.8 OFFICE_WAN_RESOLVER6=fd00:0:0:8::8

# $$ is the sourcing shell even inside pipes and subshells: its records stay found.
office() { OFFICE_SHELL=${OFFICE_SHELL:-$$} "$OFFICE_SH" "$@"; }

# ---- small helpers ----------------------------------------------------------------

office__die() { echo "office.sh: $*" >&2; exit 1; }
office__say() { [ -n "${OFFICE_QUIET:-}" ] || echo "office: $*" >&2; }
office__ns() { echo "ota$1-$2"; }
office__valid_id() { [[ $1 =~ ^[a-z0-9]{1,8}$ ]]; }
office__valid_node() { local n; for n in "${OFFICE_NODES[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

# Every interface name of office $1, one per line (exact names, never a prefix match:
# ID "ab" must not touch office "abc").
office__ifnames() {
    local l f
    for l in "${OFFICE_LINKS[@]}"; do
        read -r -a f <<<"$l"
        echo "o$1${f[2]}"; echo "o$1${f[6]}"
    done
}

# Start time of a live process ("pid starttime" pairs keep a recycled pid from being
# mistaken for ours). A zombie counts as gone: whoever inherits orphans may reap late.
office__proc_id() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    set -- $stat
    [ "$1" != Z ] || return 1
    echo "${20}"
}
office__alive() {   # pid [starttime]
    local st
    [ -n "${1:-}" ] || return 1
    st=$(office__proc_id "$1") || return 1
    [ -z "${2:-}" ] || [ "$st" = "$2" ]
}

# The shell a command-line call came from (skipping sudo), for `down` without an ID.
office__shell_key() {
    [ -z "${OFFICE_SHELL:-}" ] || { echo "$OFFICE_SHELL"; return; }
    local p=$PPID comm
    comm=$(cat "/proc/$p/comm" 2>/dev/null || true)
    if [ "$comm" = sudo ] || [ "$comm" = doas ]; then
        p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo "$p")
    fi
    echo "$p"
}

# The office a command acts on: $OFFICE_ID, else this shell's last `up`, else (with
# $1 = any, not for down) the only office up on the machine.
office__current_id() {
    local id=${OFFICE_ID:-} rec ids
    if [ -z "$id" ]; then
        rec="$OFFICE_ROOT/.shell-$(office__shell_key)"
        [ -r "$rec" ] && id=$(cat "$rec")
    fi
    if [ -z "$id" ] && [ "${1:-}" = any ]; then
        ids=$(for id in $(office__all_ids); do
            [ -e "/run/netns/$(office__ns "$id" box)" ] && echo "$id"; done)
        id=
        case $(echo "$ids" | grep -c .) in
            1) id=$ids ;;
            0) office__die "no office is up (office.sh up)" ;;
            *) office__die "several offices are up ($(echo $ids)): set OFFICE_ID" ;;
        esac
    fi
    [ -n "$id" ] || office__die "which office? set OFFICE_ID (see 'office.sh list')"
    office__valid_id "$id" || office__die "bad OFFICE_ID '$id': 1-8 of [a-z0-9]"
    echo "$id"
}

office__require_up() {
    [ -d "/run/netns" ] && [ -e "/run/netns/$(office__ns "$1" box)" ] ||
        office__die "office $1 is not up (see 'office.sh list')"
}

# Waits until a DNS server answers NAME TYPE (non-empty +short answer); fails at once
# if the daemon that should serve it died, naming its log.
office__wait_dns() {   # id node name-of-daemon server port qname qtype
    local id=$1 node=$2 daemon=$3 server=$4 port=$5 qname=$6 qtype=$7 i out
    local run=$OFFICE_ROOT/$id pidf=$OFFICE_ROOT/$1/pids/$3.pid
    for ((i = 0; i < OFFICE_WAIT_SECS * 20; i++)); do
        out=$(ip netns exec "$(office__ns "$id" "$node")" \
            dig +short +time=1 +tries=1 -p "$port" "@$server" "$qname" "$qtype" 2>/dev/null) || true
        [ -n "$out" ] && return 0
        if ! office__alive $(cat "$pidf"); then
            echo "office.sh: $daemon in $node exited during start-up; its log ($run/logs/$daemon.log):" >&2
            tail -n 15 "$run/logs/$daemon.log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "office.sh: $daemon in $node does not answer $qname $qtype on $server port $port after $OFFICE_WAIT_SECS s;" \
         "see $run/logs/$daemon.log" >&2
    return 1
}

office__wait_file() {   # id daemon file
    local i pidf=$OFFICE_ROOT/$1/pids/$2.pid
    for ((i = 0; i < OFFICE_WAIT_SECS * 20; i++)); do
        [ -e "$3" ] && return 0
        if ! office__alive $(cat "$pidf"); then
            echo "office.sh: $2 exited during start-up; its log ($OFFICE_ROOT/$1/logs/$2.log):" >&2
            tail -n 15 "$OFFICE_ROOT/$1/logs/$2.log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "office.sh: $2 not ready after $OFFICE_WAIT_SECS s; see $OFFICE_ROOT/$1/logs/$2.log" >&2
    return 1
}

# ---- daemons ------------------------------------------------------------------------

# Starts CMD in NODE in the background, stdio to logs/NAME.log, with the test harness's
# extra descriptors closed (bats waits for fd 3 to close). Records "pid starttime".
office__spawn() {   # id name node cmd...
    local id=$1 name=$2 node=$3 pid st
    shift 3
    local run=$OFFICE_ROOT/$id
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || office__die "bad daemon name '$name'"
    if [ -r "$run/pids/$name.pid" ] && office__alive $(cat "$run/pids/$name.pid"); then
        office__die "$name is already running in office $id"
    fi
    mkdir -p "$run/pids" "$run/logs"
    # setsid: a Ctrl-C meant for the caller (make run) reaches the daemons only through
    # `down`, in order. It does not fork here (a background job is no group leader).
    setsid ip netns exec "$(office__ns "$id" "$node")" "$@" </dev/null >>"$run/logs/$name.log" 2>&1 \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    st=$(office__proc_id "$pid") || st=0
    echo "$pid $st" >"$run/pids/$name.pid"
    echo "$node" >"$run/pids/$name.node"
}

# Sends TERM to "pid starttime" pairs, waits up to $1 tenths of seconds, then KILLs.
office__kill_wait() {
    local tenths=$1 i p alive
    shift
    local -a procs=("$@")
    for p in "${procs[@]}"; do office__alive $p && kill -TERM "${p%% *}" 2>/dev/null; done
    for ((i = 0; i < tenths * 2; i++)); do
        alive=0
        for p in "${procs[@]}"; do office__alive $p && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.05
    done
    for p in "${procs[@]}"; do office__alive $p && kill -KILL "${p%% *}" 2>/dev/null; done
    for ((i = 0; i < 40; i++)); do
        alive=0
        for p in "${procs[@]}"; do office__alive $p && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.05
    done
    return 0
}

office_start() {
    [ $# -ge 3 ] || office__die "usage: office.sh start NAME NODE CMD..."
    local id name=$1 node=$2
    shift 2
    office__valid_node "$node" || office__die "unknown node '$node' (box|pc|iot|guest|wan|hub)"
    id=$(office__current_id any) || exit 1
    office__require_up "$id"
    office__spawn "$id" "$name" "$node" "$@"
    cut -d' ' -f1 "$OFFICE_ROOT/$id/pids/$name.pid"
}

office_stop() {
    [ $# -eq 1 ] || office__die "usage: office.sh stop NAME"
    local id run
    id=$(office__current_id any) || exit 1
    run=$OFFICE_ROOT/$id
    [ -r "$run/pids/$1.pid" ] || office__die "no daemon named '$1' in office $id"
    office__kill_wait 30 "$(cat "$run/pids/$1.pid")"
    rm -f "$run/pids/$1.pid" "$run/pids/$1.node"
}

# ---- up -----------------------------------------------------------------------------

office__write_configs() {   # id dns
    local id=$1 dns=$2 run=$OFFICE_ROOT/$1
    mkdir -p "$run/nsd"
    sed -e "s|@RUN@|$run|g" -e "s|@ZONES@|$OFFICE_WAN_DIR/zones|g" \
        "$OFFICE_WAN_DIR/nsd.conf.in" >"$run/wan-nsd.conf"
    sed -e "s|@RUN@|$run|g" "$OFFICE_WAN_DIR/resolver.conf.in" >"$run/wan-resolver.conf"
    {
        cat <<EOF
# Generated by tests/lib/office.sh for office $id: the box's unbound in test mode.
server:
    directory: "$run"
    username: ""
    chroot: ""
    pidfile: "$run/box-unbound.pid"
    use-syslog: no
    logfile: ""
    do-daemonize: no
    verbosity: 1
include: "$OFFICE_UNBOUND_DIR/otasuke.conf"
include: "$OFFICE_UNBOUND_DIR/test-forward.conf"
EOF
        if [ "$dns" = unbound ]; then
            cat <<EOF
# --dns=unbound: clients may use the box's resolver directly until a DNS filter runs.
server:
    interface: 192.0.2.1@53
    interface: 203.0.113.1@53
    interface: 198.51.100.1@53
    interface: fd00:0:0:1::1@53
    interface: fd00:0:0:2::1@53
    interface: fd00:0:0:3::1@53
    access-control: 192.0.2.0/24 allow
    access-control: 203.0.113.0/24 allow
    access-control: 198.51.100.0/24 allow
    access-control: fd00:0:0:1::/64 allow
    access-control: fd00:0:0:2::/64 allow
    access-control: fd00:0:0:3::/64 allow
EOF
        fi
        cat <<EOF
remote-control:
    control-enable: yes
    control-interface: "$run/box-unbound.ctl"
EOF
    } >"$run/box-unbound.conf"
    nsd-checkconf "$run/wan-nsd.conf"
    unbound-checkconf "$run/wan-resolver.conf" >/dev/null
    unbound-checkconf "$run/box-unbound.conf" >/dev/null
}

office__python() { if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi; }

# Builds the whole office; runs in a `set -e` subshell so any failing step stops it and
# the caller tears down what exists.
office__build() {   # id dns
    local id=$1 dns=$2 run=$OFFICE_ROOT/$1 node ns l f a b s
    for node in "${OFFICE_NODES[@]}"; do
        ns=$(office__ns "$id" "$node")
        ip netns add "$ns"
        # No duplicate address detection: addresses are usable at once, no 2 s waits.
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
            net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_ra=0 \
            net.ipv6.conf.default.accept_ra=0
        ip -n "$ns" link set lo up
    done
    for node in box wan; do
        ip netns exec "$(office__ns "$id" "$node")" sysctl -qw net.ipv4.ip_forward=1 \
            net.ipv6.conf.all.forwarding=1
    done
    for l in "${OFFICE_LINKS[@]}"; do
        read -r -a f <<<"$l"
        a=$(office__ns "$id" "${f[1]}") b=$(office__ns "$id" "${f[5]}")
        # Created straight inside the namespaces: nothing ever appears in the host's.
        ip link add name "o$id${f[2]}" netns "$a" type veth peer name "o$id${f[6]}" netns "$b"
        ip -n "$a" addr add "${f[3]}/${f[9]}" dev "o$id${f[2]}"
        ip -n "$a" addr add "${f[4]}/${f[10]}" dev "o$id${f[2]}" nodad
        ip -n "$b" addr add "${f[7]}/${f[9]}" dev "o$id${f[6]}"
        ip -n "$b" addr add "${f[8]}/${f[10]}" dev "o$id${f[6]}" nodad
        ip -n "$a" link set "o$id${f[2]}" up
        ip -n "$b" link set "o$id${f[6]}" up
    done
    # Clients and hub: default via their gateway; box: default via wan. wan has no
    # default route at all: the fake internet ends there.
    for a in "pc 192.0.2.1 fd00:0:0:1::1" "guest 203.0.113.1 fd00:0:0:2::1" \
             "iot 198.51.100.1 fd00:0:0:3::1" "box 198.18.0.1 fd00:0:0:100::1" \
             "hub 198.18.1.1 fd00:0:0:101::1"; do
        read -r -a f <<<"$a"
        ns=$(office__ns "$id" "${f[0]}")
        ip -n "$ns" route add default via "${f[1]}"
        ip -n "$ns" -6 route add default via "${f[2]}"
    done
    # Service addresses of the fake internet live on wan's loopback.
    ns=$(office__ns "$id" wan)
    {
        echo "addr add $OFFICE_WAN_DNS4/32 dev lo"
        echo "addr add $OFFICE_WAN_DNS6/128 dev lo"
        echo "addr add $OFFICE_WAN_RESOLVER4/32 dev lo"
        echo "addr add $OFFICE_WAN_RESOLVER6/128 dev lo"
        for s in "${OFFICE_SITES[@]}"; do
            read -r -a f <<<"$s"
            echo "addr add ${f[0]}/32 dev lo"
            echo "addr add ${f[1]}/128 dev lo"
        done
    } | ip -n "$ns" -batch -
    # NAT for the office nets, named so nobody mistakes it for otasuke-fwd's
    # `table inet otasuke`.
    ip netns exec "$(office__ns "$id" box)" nft -f - <<EOF
table ip office_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "o${id}wan" ip saddr { 192.0.2.0/24, 203.0.113.0/24, 198.51.100.0/24 } masquerade
    }
}
table ip6 office_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "o${id}wan" ip6 saddr { fd00:0:0:1::/64, fd00:0:0:2::/64, fd00:0:0:3::/64 } masquerade
    }
}
EOF
    # resolv.conf per namespace (ip netns exec bind-mounts /etc/netns/<ns>/*), so plain
    # `dig name` in a node asks the office's resolver, never the host's.
    for a in "pc 192.0.2.1" "guest 203.0.113.1" "iot 198.51.100.1" "box 192.0.2.1" \
             "wan $OFFICE_WAN_RESOLVER4" "hub $OFFICE_WAN_RESOLVER4"; do
        read -r -a f <<<"$a"
        ns=$(office__ns "$id" "${f[0]}")
        mkdir -p "/etc/netns/$ns"
        printf '# virtual office %s (tests/lib/office.sh)\nnameserver %s\noptions timeout:2 attempts:2\n' \
            "$id" "${f[1]}" >"/etc/netns/$ns/resolv.conf"
    done

    office__write_configs "$id" "$dns"
    local -a web=()
    for s in "${OFFICE_SITES[@]}"; do
        read -r -a f <<<"$s"
        web+=(--http "${f[0]}=${f[2]}" --http "${f[1]}=${f[2]}")
    done
    for a in 853 443; do
        web+=(--tcp "$OFFICE_WAN_RESOLVER4:$a" --tcp "[$OFFICE_WAN_RESOLVER6]:$a")
    done
    office__spawn "$id" wan-nsd wan nsd -d -c "$run/wan-nsd.conf"
    office__spawn "$id" wan-web wan "$(office__python)" "$OFFICE_WAN_DIR/services.py" \
        --ready "$run/wan-web.ready" "${web[@]}"
    office__wait_dns "$id" wan wan-nsd "$OFFICE_WAN_DNS4" 53 good.test SOA
    # Resolvers start once the authoritative server answers: a resolver that saw it
    # unreachable would back off and hand out SERVFAIL for a while.
    office__spawn "$id" wan-resolver wan unbound -d -c "$run/wan-resolver.conf"
    office__spawn "$id" box-unbound box unbound -d -c "$run/box-unbound.conf"
    office__wait_file "$id" wan-web "$run/wan-web.ready"
    office__wait_dns "$id" wan wan-resolver "$OFFICE_WAN_RESOLVER4" 53 localhost A
    office__wait_dns "$id" box box-unbound 127.0.0.1 5335 localhost A
    # End to end: the box's resolver reaches the fake internet.
    office__wait_dns "$id" box box-unbound 127.0.0.1 5335 good.test A
    if [ "$dns" = unbound ]; then
        office__wait_dns "$id" pc box-unbound 192.0.2.1 53 good.test A
    fi

    {
        echo "OFFICE_ID=$id"
        echo "OFFICE_RUN=$run"
        echo "OFFICE_DNS=$dns"
        for node in "${OFFICE_NODES[@]}"; do
            echo "OFFICE_NS_${node^^}=$(office__ns "$id" "$node")"
        done
        echo "OFFICE_IF_BOX_LAN=o${id}lan"
        echo "OFFICE_IF_BOX_GUEST=o${id}gst"
        echo "OFFICE_IF_BOX_IOT=o${id}iot"
        echo "OFFICE_IF_BOX_WAN=o${id}wan"
        echo "OFFICE_IF_PC=o${id}pc"
        echo "OFFICE_IF_GUEST=o${id}guest"
        echo "OFFICE_IF_IOT=o${id}iotc"
        echo "OFFICE_IF_WAN_BOX=o${id}wbox"
        echo "OFFICE_IF_WAN_HUB=o${id}whub"
        echo "OFFICE_IF_HUB=o${id}hub"
        echo "OFFICE_BOX_UNBOUND_CONF=$run/box-unbound.conf"
    } >"$run/office.env"
}

office_up() {
    local dns=unbound id=${OFFICE_ID:-} arg run owner t0 rc
    t0=$EPOCHREALTIME
    for arg in "$@"; do
        case $arg in
            --dns=unbound | --dns=none) dns=${arg#--dns=} ;;
            *) office__die "up: unknown option '$arg' (use --dns=unbound or --dns=none)" ;;
        esac
    done
    for arg in ip nsd unbound dig nft; do
        command -v "$arg" >/dev/null || office__die "up: '$arg' not found; run 'sudo make deps'"
    done
    [ "$(id -u)" -eq 0 ] || office__die "up: needs root (network namespaces)"
    mkdir -p "$OFFICE_ROOT"
    if [ -n "$id" ]; then
        office__valid_id "$id" || office__die "bad OFFICE_ID '$id': 1-8 of [a-z0-9]"
        [ ! -e "/run/netns/$(office__ns "$id" box)" ] ||
            office__die "office $id is already up (office.sh down $id)"
        mkdir "$OFFICE_ROOT/$id" 2>/dev/null ||
            office__die "office $id exists in $OFFICE_ROOT/$id (office.sh down $id)"
    else
        # mkdir is the lock: two `up`s at once never pick the same ID.
        while :; do
            id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
            [ -e "/run/netns/$(office__ns "$id" box)" ] && continue
            mkdir "$OFFICE_ROOT/$id" 2>/dev/null && break
        done
    fi
    run=$OFFICE_ROOT/$id
    owner=${OFFICE_OWNER:-$(office__shell_key)}
    echo "$owner $(office__proc_id "$owner" || echo 0)" >"$run/owner"
    echo "$dns" >"$run/dns"
    echo "$id" >"$OFFICE_ROOT/.shell-$(office__shell_key)"

    # A failure (or Ctrl-C) half way leaves nothing behind.
    trap 'office__down_id "$id" >/dev/null 2>&1; exit 130' INT TERM
    ( set -eE; trap 'echo "office.sh: up: failed: $BASH_COMMAND" >&2' ERR; office__build "$id" "$dns" )
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "office.sh: up failed for office $id; removing what was built" >&2
        office__down_id "$id" >/dev/null 2>&1
        exit 1
    fi
    trap - INT TERM
    office__say "office $id up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') s (dns=$dns; run dir $run)"
    echo "OFFICE_ID=$id"
}

# ---- down ---------------------------------------------------------------------------

office__down_id() {   # id
    local id=$1 run=$OFFICE_ROOT/$1 node ns p f
    local -a procs=() nss=()
    for node in "${OFFICE_NODES[@]}"; do
        ns=$(office__ns "$id" "$node")
        [ -e "/run/netns/$ns" ] || continue
        nss+=("$ns")
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            procs+=("$p $(office__proc_id "$p" || echo 0)")
        done
    done
    # Tracked daemons too: one whose namespace was already deleted still runs in it.
    for f in "$run"/pids/*.pid; do
        [ -r "$f" ] && procs+=("$(cat "$f")")
    done
    [ ${#procs[@]} -eq 0 ] || office__kill_wait 20 "${procs[@]}"
    for ns in "${nss[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    # Interfaces are made inside the namespaces and die with them; a leftover in the
    # host (an interrupted older run, a moved link) goes too.
    for f in $(office__ifnames "$id"); do
        [ -e "/sys/class/net/$f" ] && ip link del "$f" 2>/dev/null
    done
    for node in "${OFFICE_NODES[@]}"; do
        rm -rf "/etc/netns/$(office__ns "$id" "$node")"
    done
    rm -rf "$run"
    for f in "$OFFICE_ROOT"/.shell-*; do
        [ -r "$f" ] && [ "$(cat "$f" 2>/dev/null)" = "$id" ] && rm -f "$f"
    done
    return 0
}

# IDs of every office on this machine: run dirs, namespaces and /etc/netns entries.
office__all_ids() {
    local d
    {
        for d in "$OFFICE_ROOT"/*/; do
            [ -d "$d" ] && basename "$d" | grep -E '^[a-z0-9]{1,8}$'
        done
        {
            ip netns list 2>/dev/null | awk '{print $1}'
            for d in /etc/netns/ota*-*; do [ -e "$d" ] && basename "$d"; done
        } | sed -n 's/^ota\([a-z0-9]\{1,8\}\)-[a-z]*$/\1/p'
    } | sort -u
}

# An office is kept by `down --all` while its owner lives, and while a run dir without
# an owner file is younger than 30 s (an `up` between mkdir and writing the owner).
office__owner_alive() {   # id
    local f=$OFFICE_ROOT/$1/owner
    if [ ! -e "$f" ] && [ -d "$OFFICE_ROOT/$1" ]; then
        [ $(($(date +%s) - $(stat -c %Y "$OFFICE_ROOT/$1"))) -lt 30 ]
        return
    fi
    [ -r "$f" ] && office__alive $(cat "$f")
}

office_down() {
    local id
    [ "$(id -u)" -eq 0 ] || office__die "down: needs root"
    if [ "${1:-}" = --all ]; then
        local glob=${2:-*}
        for id in $(office__all_ids); do
            # shellcheck disable=SC2053   # glob match on purpose
            [[ $id == $glob ]] || continue
            if office__owner_alive "$id"; then
                office__say "keeping office $id: its owner (pid $(cut -d' ' -f1 "$OFFICE_ROOT/$id/owner" 2>/dev/null)) is alive"
            else
                office__down_id "$id"
                office__say "office $id removed"
            fi
        done
        return 0
    fi
    if [ -n "${1:-}" ]; then
        id=$1
        office__valid_id "$id" || office__die "bad office ID '$id': 1-8 of [a-z0-9]"
    else
        id=$(office__current_id) || exit 1
    fi
    office__down_id "$id"
    office__say "office $id down"
}

# ---- inspection ---------------------------------------------------------------------

office_status() {
    local id run node f name p
    id=$(office__current_id any) || exit 1
    run=$OFFICE_ROOT/$id
    echo "office $id (dns=$(cat "$run/dns" 2>/dev/null || echo '?'), run dir $run)"
    for node in "${OFFICE_NODES[@]}"; do
        if [ -e "/run/netns/$(office__ns "$id" "$node")" ]; then
            echo "  node $node: $(office__ns "$id" "$node")"
        else
            echo "  node $node: MISSING"
        fi
    done
    for f in "$run"/pids/*.pid; do
        [ -r "$f" ] || continue
        name=$(basename "$f" .pid)
        p=$(cat "$f")
        if office__alive $p; then
            echo "  daemon $name in $(cat "$run/pids/$name.node"): pid ${p%% *} running"
        else
            echo "  daemon $name in $(cat "$run/pids/$name.node"): pid ${p%% *} EXITED (log $run/logs/$name.log)"
        fi
    done
}

office_list() {
    local id owner n state
    for id in $(office__all_ids); do
        n=$(ip netns list 2>/dev/null | grep -c "^ota$id-") || true
        owner=$(cut -d' ' -f1 "$OFFICE_ROOT/$id/owner" 2>/dev/null || echo '?')
        if office__owner_alive "$id"; then state=alive; else state=gone; fi
        printf '%-8s namespaces=%s dns=%s owner=%s (%s)\n' "$id" "$n" \
            "$(cat "$OFFICE_ROOT/$id/dns" 2>/dev/null || echo '?')" "$owner" "$state"
    done
}

office_env() {
    local id
    id=$(office__current_id any) || exit 1
    [ -r "$OFFICE_ROOT/$id/office.env" ] || office__die "office $id is not up"
    cat "$OFFICE_ROOT/$id/office.env"
}

office_exec() {
    [ $# -ge 2 ] || office__die "usage: office.sh exec NODE CMD..."
    local id node=$1
    shift
    office__valid_node "$node" || office__die "unknown node '$node' (box|pc|iot|guest|wan|hub)"
    id=$(office__current_id any) || exit 1
    office__require_up "$id"
    exec ip netns exec "$(office__ns "$id" "$node")" "$@"
}

office_main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case $cmd in
        up) office_up "$@" ;;
        down) office_down "$@" ;;
        exec) office_exec "$@" ;;
        start) office_start "$@" ;;
        stop) office_stop "$@" ;;
        status) office_status "$@" ;;
        list) office_list "$@" ;;
        env) office_env "$@" ;;
        *) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$OFFICE_SH" >&2; exit 2 ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    export PATH=$PATH:/usr/sbin:/sbin
    office_main "$@"
fi
