# image/test/lib.sh — sourced by the boot and fault tests: private namespaces, the
# fake internet, and qemu running the test image. Everything made here is listed in
# $IMG_RUN and removed by img_down (call it from an EXIT trap).
#
# Namespaces (prefix ${IMG_ID}-, ID = pid of the test):
#   vm   qemu and its two taps, each bridged to a veth: tapw+brw -> wan, tapl+brl -> pc
#   wan  198.18.0.1/24 (box's gateway and DHCP server for the WAN port), nsd with the
#        office test zones on 198.18.53.53 (tests/lib/wan/)
#   pc   an office client on the box's LAN (DHCP)
# Addresses: documentation/benchmark ranges only (see tests/lib/office.sh).

IMG_TOP=${IMG_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
IMG_DIR=${IMG_DIR:-$IMG_TOP/build/image}
IMG_ID=${IMG_ID:-otai$$}
IMG_RUN=/run/otasuke-image/$IMG_ID
IMG_SOCK=$IMG_RUN/shell.sock
IMG_CONSOLE=$IMG_RUN/console.log

img_log() { printf '# %s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
img_die() { img_log "FAIL: $*"; exit 1; }

# KVM when it really runs a kernel: on some nested hosts /dev/kvm opens but a guest
# kernel never gets past its real-mode setup (seen here: AMD EPYC under a hypervisor),
# so a 10 s probe decides; the answer is kept in $IMG_RUN/accel. IMG_NO_KVM=1 skips it.
img_accel() {
    [ -s "$IMG_RUN/accel" ] && { cat "$IMG_RUN/accel"; return; }
    local a=tcg
    if [ -w /dev/kvm ] && [ "${IMG_NO_KVM:-0}" != 1 ]; then
        if timeout 10 qemu-system-x86_64 -machine pc -nodefaults -enable-kvm \
                -cpu host,-arch-capabilities -m 256 -kernel "$IMG_DIR/vmlinuz" \
                -append "console=ttyS0 panic=-1" -serial stdio -display none -no-reboot \
                2>/dev/null | grep -q 'Linux version'; then
            a=kvm
        else
            img_log "/dev/kvm exists but a KVM guest does not start here: using TCG (slower)"
        fi
    fi
    mkdir -p "$IMG_RUN" && echo $a >"$IMG_RUN/accel" && echo $a
}
img_kvm_args() {
    if [ "$(img_accel)" = kvm ]; then
        echo "-enable-kvm -cpu host,-arch-capabilities"
    else
        echo "-accel tcg,thread=multi -cpu max"
    fi
}

img_ns() { ip netns exec "$IMG_ID-$1" "${@:2}"; }

img_net_up() {
    mkdir -p "$IMG_RUN"
    local ns
    for ns in vm wan pc; do
        ip netns add "$IMG_ID-$ns"
        echo "$IMG_ID-$ns" >>"$IMG_RUN/netns"
        ip -n "$IMG_ID-$ns" link set lo up
    done
    ip -n "$IMG_ID-vm" link add vw type veth peer name eth0 netns "$IMG_ID-wan"
    ip -n "$IMG_ID-vm" link add vl type veth peer name eth0 netns "$IMG_ID-pc"
    local br tap v
    for br in w l; do
        ip -n "$IMG_ID-vm" link add br$br type bridge
        ip -n "$IMG_ID-vm" tuntap add dev tap$br mode tap
        ip -n "$IMG_ID-vm" link set tap$br master br$br up
        ip -n "$IMG_ID-vm" link set v$br master br$br up
        ip -n "$IMG_ID-vm" link set br$br up
    done
    ip -n "$IMG_ID-wan" addr add 198.18.0.1/24 dev eth0
    ip -n "$IMG_ID-wan" addr add fd00:0:0:100::1/64 dev eth0 nodad
    ip -n "$IMG_ID-wan" link set eth0 up
    ip -n "$IMG_ID-wan" addr add 198.18.53.53/32 dev lo
    ip -n "$IMG_ID-wan" addr add fd00:0:0:53::53/128 dev lo
    ip -n "$IMG_ID-pc" link set eth0 up
    # routes back to the box's LAN zones through the box (replies to NATed or routed LAN traffic)
    ip -n "$IMG_ID-wan" route add 192.0.2.0/24 via 198.18.0.2

    # the fake internet's authoritative DNS
    mkdir -p "$IMG_RUN/nsd"
    sed -e "s|@RUN@|$IMG_RUN|g" -e "s|@ZONES@|$IMG_TOP/tests/lib/wan/zones|g" \
        "$IMG_TOP/tests/lib/wan/nsd.conf.in" >"$IMG_RUN/nsd.conf"
    img_ns wan nsd -d -c "$IMG_RUN/nsd.conf" >"$IMG_RUN/nsd.log" 2>&1 &
    echo $! >>"$IMG_RUN/pids"
    # the provider's DHCP on the box's WAN port: always 198.18.0.2. By MAC alone
    # (--dhcp-ignore-clid): after a factory reset the box has a new machine-id, so a new
    # client id, and the one-address range would still be held by its old lease.
    img_ns wan dnsmasq -k --port=0 --interface=eth0 --bind-interfaces --dhcp-ignore-clid \
        --dhcp-range=198.18.0.2,198.18.0.2,255.255.255.0,1h \
        --dhcp-option=option:router,198.18.0.1 --dhcp-option=option:dns-server,198.18.53.53 \
        --dhcp-leasefile="$IMG_RUN/wan.leases" --pid-file= --user=root --log-facility=- \
        >"$IMG_RUN/wan-dhcp.log" 2>&1 &
    echo $! >>"$IMG_RUN/pids"
    local i
    for i in $(seq 50); do
        img_ns wan dig +short +time=1 +tries=1 @198.18.53.53 good.test A 2>/dev/null | grep -q . && return 0
        sleep 0.2
    done
    img_die "nsd in $IMG_ID-wan did not answer (see $IMG_RUN/nsd.log)"
}

# UEFI firmware for IMG_BOOT=efi (Debian's ovmf): code read-only, variables per run
# ($IMG_RUN/efivars.fd, kept across the run's reboots like a board's NVRAM, so a
# one-shot boot entry set inside the box reaches the next start).
# IMG_SECUREBOOT=1 (default): the Secure Boot build of OVMF with Microsoft's keys
# enrolled and Secure Boot on (Debian's *.secboot.fd / *.ms.fd), as on a PC bought in a
# shop: only shim (signed by Microsoft's UEFI CA) starts. It needs SMM, so q35.
# IMG_SECUREBOOT=0: the same board with Secure Boot off (its own NVRAM file).
IMG_SECUREBOOT=${IMG_SECUREBOOT:-1}
img_ovmf() {   # prints: CODE VARS NVRAM-FILE
    if [ "$IMG_SECUREBOOT" = 1 ]; then
        echo "${IMG_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.secboot.fd} ${IMG_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.ms.fd} $IMG_RUN/efivars-sb.fd"
    else
        echo "${IMG_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd} ${IMG_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd} $IMG_RUN/efivars.fd"
    fi
}

# img_vm_start [EXTRA_APPEND]: boots the test image from a qcow2 overlay
# ($IMG_RUN/disk.qcow2, made on first use so reboots keep the box's state).
# IMG_BOOT=kernel (default): qemu loads build/image/vmlinuz + initrd.img itself (quick);
# IMG_BOOT=efi: OVMF starts shim, GRUB and the kernel from the disk's ESP, as on a real
# box (the kernel command line then comes from the menu entry; EXTRA_APPEND is ignored).
img_vm_start() {
    local disk=$IMG_RUN/disk.qcow2 append=${1:-}
    local machine=pc
    local boot=(-kernel "$IMG_DIR/vmlinuz" -initrd "$IMG_DIR/initrd.img"
                -append "root=LABEL=otasuke-root rw console=ttyS0 panic=-1 $append")
    if [ "${IMG_BOOT:-kernel}" = efi ]; then
        local code vars nvram
        read -r code vars nvram < <(img_ovmf)
        [ -r "$code" ] && [ -r "$vars" ] || img_die "$code or $vars missing: install ovmf (make deps)"
        [ -e "$nvram" ] || cp "$vars" "$nvram"
        machine=q35,smm=on
        boot=(-global driver=cfi.pflash01,property=secure,value=on
              -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
              -drive "if=pflash,format=raw,unit=1,file=$nvram")
    fi
    [ -s "$IMG_DIR/otasuke-test.img" ] || img_die "$IMG_DIR/otasuke-test.img missing: run 'make image-test' (it builds it)"
    [ -e "$disk" ] || qemu-img create -q -f qcow2 -F raw -b "$IMG_DIR/otasuke-test.img" "$disk"
    rm -f "$IMG_SOCK"
    : >>"$IMG_CONSOLE"
    echo "=== boot $(date -u +%H:%M:%S) ===" >>"$IMG_CONSOLE"
    # shellcheck disable=SC2046
    # ip netns exec execs qemu: $! is qemu itself (a shell function here would put a
    # subshell between, and SIGKILL would miss qemu)
    ip netns exec "$IMG_ID-vm" qemu-system-x86_64 -machine $machine -nodefaults $(img_kvm_args) -m 1024 -smp 2 \
        "${boot[@]}" \
        -drive file="$disk",if=virtio,format=qcow2 \
        -netdev tap,id=w,ifname=tapw,script=no,downscript=no \
        -device virtio-net-pci,netdev=w,mac=52:54:00:0a:00:01,addr=0x3 \
        -netdev tap,id=l,ifname=tapl,script=no,downscript=no \
        -device virtio-net-pci,netdev=l,mac=52:54:00:0a:00:02,addr=0x4 \
        -chardev file,id=con,path="$IMG_CONSOLE" -serial chardev:con \
        -chardev socket,id=sh,path="$IMG_SOCK",server=on,wait=off -serial chardev:sh \
        -display none -monitor none -no-reboot \
        >>"$IMG_RUN/qemu.log" 2>&1 &
    IMG_QEMU_PID=$!
    echo $IMG_QEMU_PID >>"$IMG_RUN/pids"
}

# Power loss: SIGKILL qemu, nothing in the guest gets to flush.
img_vm_kill() {
    [ -n "${IMG_QEMU_PID:-}" ] || return 0
    kill -9 "$IMG_QEMU_PID" 2>/dev/null || true
    wait "$IMG_QEMU_PID" 2>/dev/null || true
    local i
    for i in $(seq 50); do kill -0 "$IMG_QEMU_PID" 2>/dev/null || break; sleep 0.1; done
    IMG_QEMU_PID=
}

img_guest() { python3 "$IMG_TOP/image/test/guest.py" "$IMG_SOCK" "$@"; }

# img_wait_console PATTERN SECONDS: waits for PATTERN in the console since the last boot.
img_wait_console() {
    local pat=$1 n=$(( $2 * 5 ))
    while [ $n -gt 0 ]; do
        awk '/^=== boot /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$IMG_CONSOLE" \
            | grep -E "$pat" >/dev/null && return 0   # not -q: SIGPIPE under pipefail
        if [ -n "${IMG_QEMU_PID:-}" ] && ! kill -0 "$IMG_QEMU_PID" 2>/dev/null; then
            img_log "qemu exited (see $IMG_RUN/qemu.log)"; return 1
        fi
        sleep 0.2; n=$((n - 1))
    done
    return 1
}

img_down() {
    local p ns
    img_vm_kill
    if [ -f "$IMG_RUN/pids" ]; then
        while read -r p; do kill "$p" 2>/dev/null || true; done <"$IMG_RUN/pids"
        sleep 0.3
        while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$IMG_RUN/pids"
    fi
    if [ -f "$IMG_RUN/netns" ]; then
        while read -r ns; do
            # anything still running in it (dhclient of the pc)
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done <"$IMG_RUN/netns"
    fi
    if [ "${IMG_KEEP:-0}" = 1 ]; then
        img_log "kept $IMG_RUN (IMG_KEEP=1)"
    else
        rm -rf "$IMG_RUN"
    fi
}
