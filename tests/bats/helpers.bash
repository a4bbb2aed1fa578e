# Shared setup for the scenario tests. In a .bats file:
#
#   load helpers
#   setup_file()    { office_setup; }            # or: office_setup --dns=none
#   teardown_file() { office_teardown; }
#   @test "..." { run office_exec pc dig +short good.test; assert_output 198.18.10.10; }
#
# One office per .bats file (bringing one up takes about half a second). After
# office_setup the variables of `office.sh env` are exported: OFFICE_ID, OFFICE_RUN,
# OFFICE_NS_<NODE>, OFFICE_IF_<...> (interface names), OFFICE_BOX_UNBOUND_CONF.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

OTASUKE_REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
OFFICE_SH=$OTASUKE_REPO/tests/lib/office.sh
export OTASUKE_REPO OFFICE_SH

# Brings up a fresh office with a new unique ID for this .bats file (extra arguments go
# to `office.sh up`) and exports its variables. The bats process running the file owns
# it, so `office.sh down --all` leaves it alone while the file runs.
office_setup() {
    local out
    [ "$(id -u)" -eq 0 ] || { echo "scenario tests need root (network namespaces)" >&2; return 1; }
    unset OFFICE_ID
    export OFFICE_OWNER=$$
    out=$("$OFFICE_SH" up "$@") || return 1
    OFFICE_ID=${out##*OFFICE_ID=}
    export OFFICE_ID
    office_load_env
}

# Exports the variables of the current office ($OFFICE_ID).
office_load_env() {
    local line
    while IFS= read -r line; do
        export "${line?}"
    done < <("$OFFICE_SH" env)
}

# Removes the office of this file; safe to call when setup failed half way.
office_teardown() {
    [ -n "${OFFICE_ID:-}" ] || return 0
    "$OFFICE_SH" down "$OFFICE_ID"
}

# office_exec NODE CMD...: CMD inside NODE (box|pc|iot|guest|wan|hub) of this office.
office_exec() {
    local node=$1
    shift
    ip netns exec "ota$OFFICE_ID-$node" "$@"
}

# office_start NAME NODE CMD...: a daemon tracked by the office (log in
# $OFFICE_RUN/logs/NAME.log, killed by office_stop NAME or at teardown).
office_start() { "$OFFICE_SH" start "$@" >/dev/null; }
office_stop() { "$OFFICE_SH" stop "$@"; }
office_log() { cat "$OFFICE_RUN/logs/$1.log"; }

# office_wait_port NODE tcp|udp ADDR PORT [SECONDS=10]: until something listens there.
office_wait_port() {
    local node=$1 proto=$2 addr=$3 port=$4 secs=${5:-10} i flag
    case $proto in tcp) flag=-Hltn ;; udp) flag=-Hlun ;; *) echo "office_wait_port: tcp or udp, not '$proto'" >&2; return 2 ;; esac
    [[ $addr == *:* ]] && addr="[$addr]"
    for ((i = 0; i < secs * 20; i++)); do
        [ -n "$(office_exec "$node" ss $flag "src $addr:$port" 2>/dev/null)" ] && return 0
        sleep 0.05
    done
    echo "nothing listens on $proto $addr:$port in $node after $secs s" >&2
    return 1
}

# office_wait_dns NODE SERVER NAME [TYPE=A] [SECONDS=10]: until SERVER (addr or
# addr#port) gives NODE a non-empty answer for NAME.
office_wait_dns() {
    local node=$1 server=$2 name=$3 type=${4:-A} secs=${5:-10} i port=53
    [[ $server == *#* ]] && { port=${server##*#}; server=${server%#*}; }
    for ((i = 0; i < secs * 20; i++)); do
        [ -n "$(office_exec "$node" dig +short +time=1 +tries=1 -p "$port" "@$server" "$name" "$type" 2>/dev/null)" ] &&
            return 0
        sleep 0.05
    done
    echo "$server#$port gives $node no answer for $name $type after $secs s" >&2
    return 1
}

# office_netns_inodes ID: inode numbers of office ID's namespaces (take them before
# `down`, hand them to office_leftovers to find processes still inside).
office_netns_inodes() {
    local f
    for f in /run/netns/ota"$1"-*; do [ -e "$f" ] && stat -L -c %i "$f"; done
    return 0
}

# office_leftovers ID [INODE...]: prints whatever office ID left on the machine
# (namespaces, interfaces, /etc/netns entries, run dir, live processes inside the given
# namespace inodes or naming the run dir); empty output = clean. Zombies waiting for
# init to reap them hold nothing and are not counted.
office_leftovers() {
    local id=$1 pid ino link
    shift
    ip netns list | awk '{print $1}' | grep -x "ota$id-[a-z]*" | sed 's/^/namespace /'
    ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' |
        grep -E "^o$id(lan|gst|iot|wan|pc|guest|iotc|wbox|whub|hub)$" | sed 's/^/interface /'
    ls -d /etc/netns/ota"$id"-* 2>/dev/null | sed 's/^/netns-etc /'
    [ ! -e "/run/otasuke-office/$id" ] || echo "run dir /run/otasuke-office/$id"
    for pid in /proc/[0-9]*; do
        pid=${pid#/proc/}
        [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" = Z ] && continue
        link=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || continue
        for ino in "$@"; do
            [ "$link" = "net:[$ino]" ] && echo "process $pid in namespace $ino: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
        done
        grep -q "/run/otasuke-office/$id/" "/proc/$pid/cmdline" 2>/dev/null &&
            echo "process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    done
    return 0
}

# control_call SOCKET COMMAND: one exchange on a daemon's unix control socket (dnsd's
# "reload", "stats"...: one command per connection); the answer on stdout.
control_call() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
PY
}
