#!/bin/bash
# image/build.sh — builds the otasuke box image (build/image/) from Debian 12.
#
#   image/build.sh [--test]     (make image / make image-test call it)
#
# Stage 1 (slow, cached): mmdebstrap makes a Debian 12 root file system holding the
#   packages of image/packages.txt, from the machine's Debian mirror. The tarball is
#   cached as build/image/base-<hash of packages.txt>.tar, so a rebuild skips it.
# Stage 2 (seconds): unpack the base, install build/deb/otasuke_*.deb with dpkg (its
#   dependencies are already in the base, so no mirror is needed), add image/overlay/,
#   lock every account, and make a GPT disk with two ext4 partitions (root, data) with
#   mkfs.ext4 -d and dd: no loop device and no mount, so it also works in a container.
# Outputs: build/image/otasuke.img (raw disk), vmlinuz, initrd.img (qemu boots them
#   directly with -kernel/-initrd: faster than firmware + boot loader; a physical box
#   needs an ESP with a boot loader, see docs/image.md).
# --test also writes otasuke-test.img: the same tree plus image/test/overlay/ (a root
#   shell on the second serial port, for the boot and fault tests only).
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
OUT=${IMAGE_OUT:-$TOP/build/image}
MIRROR=${IMAGE_MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
DATA_MB=${IMAGE_DATA_MB:-256}
WITH_TEST=0
[ "${1:-}" = --test ] && WITH_TEST=1

die() { echo "image/build.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (dpkg in a chroot, file owners in the image)"
for t in mmdebstrap mkfs.ext4 sfdisk; do
    command -v $t >/dev/null || die "$t missing: run 'make deps' (mk/packages/image.txt)"
done
mkdir -p "$OUT"

# ---- stage 1: cached base -------------------------------------------------------
pkgs=$(grep -v '^\s*#' image/packages.txt | grep -v '^\s*$' | paste -sd, -)
hash=$(printf '%s\n%s\n%s\n' "$pkgs" "$MIRROR" "$SECMIRROR" | sha256sum | cut -c1-12)
BASE=$OUT/base-$hash.tar
if [ ! -s "$BASE" ]; then
    echo "image: building the Debian base (cached as $BASE)"
    t0=$(date +%s)
    # No docs, man pages or translations: the box has no one to read them on it.
    mmdebstrap --variant=apt --format=tar --include="$pkgs" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-include=/usr/share/doc/otasuke/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --aptopt='APT::Install-Recommends "false"' \
        bookworm "$BASE.tmp" \
        "deb $MIRROR bookworm main" \
        "deb $MIRROR bookworm-updates main" \
        "deb $SECMIRROR bookworm-security main"
    mv "$BASE.tmp" "$BASE"
    # an older base (other package list) is 700 MB of nothing
    find "$OUT" -maxdepth 1 -name 'base-*.tar' ! -name "$(basename "$BASE")" -delete
    echo "image: base built in $(( $(date +%s) - t0 )) s"
fi

# ---- stage 2: the otasuke layer -------------------------------------------------
# IMAGE_DEB=FILE picks another package (e.g. built from a clean export of a commit).
deb=${IMAGE_DEB:-$(ls -t build/deb/otasuke_*.deb 2>/dev/null | head -1 || true)}
[ -n "$deb" ] && [ -r "$deb" ] || die "no build/deb/otasuke_*.deb: run 'make deb' first"
ROOT=$OUT/root
rm -rf "$ROOT" && mkdir -p "$ROOT"
tar -xpf "$BASE" -C "$ROOT"
cp "$deb" "$ROOT/tmp/otasuke.deb"
# Without systemd running, the maintainer scripts enable units but start nothing.
chroot "$ROOT" dpkg -i /tmp/otasuke.deb \
    || die "dpkg -i $(basename "$deb") failed in the image: a dependency missing from image/packages.txt?"
rm -f "$ROOT/tmp/otasuke.deb"

cp -a image/overlay/. "$ROOT/"
# The image's NICs are wan0/lan0 (image/overlay/etc/systemd/network/*.link).
sed -i -e 's/interface = "eth0"/interface = "wan0"/' -e 's/interface = "eth1/interface = "lan0/' \
    "$ROOT/etc/otasuke/otasuke.conf"
chroot "$ROOT" /bin/sh -e <<'CHROOT'
getent passwd otasuke-dhcp >/dev/null || adduser --system --group --quiet --no-create-home \
    --home /nonexistent --shell /usr/sbin/nologin --comment "otasuke DHCP (dnsmasq)" otasuke-dhcp
# No password anywhere: root and every account locked ('*' cannot match any password).
for u in $(cut -d: -f1 /etc/passwd); do usermod -p '*' "$u"; done
systemctl enable systemd-networkd.service systemd-timesyncd.service \
    otasuke-dhcp.service otasuke-console.service unbound.service >/dev/null
systemctl disable apt-daily.timer >/dev/null 2>&1 || true   # unattended-upgrades' timer below
systemctl enable apt-daily.timer apt-daily-upgrade.timer >/dev/null
systemctl mask getty@tty2.service getty@tty3.service >/dev/null 2>&1 || true
CHROOT
if grep -qE '^[^:]+:[^*!:]' "$ROOT/etc/shadow"; then
    die "a password hash is in the image's /etc/shadow: $(grep -E '^[^:]+:[^*!:]' "$ROOT/etc/shadow" | cut -d: -f1)"
fi
# systemd makes a fresh machine-id on the first boot (and runs ConditionFirstBoot units).
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
    "$ROOT"/var/log/*.log "$ROOT"/etc/ssh/ssh_host_* "$ROOT"/var/cache/debconf/*-old
# Whatever a package left in /var/lib/otasuke moves to the data partition's first fill.
DATA=$OUT/data-tree
rm -rf "$DATA" && mkdir -p "$DATA"
if [ -d "$ROOT/var/lib/otasuke" ]; then
    cp -a "$ROOT/var/lib/otasuke/." "$DATA/"
    rm -rf "$ROOT/var/lib/otasuke" && mkdir -p "$ROOT/var/lib/otasuke"
fi

# Kernel modules no office gateway uses (graphics, sound, cameras, radios, InfiniBand,
# sensors, staging, test modules): about half of /usr/lib/modules. Kept: wired NICs,
# storage, USB, HID, netfilter, file systems, crypto. A kernel update reinstalls them.
for k in "$ROOT"/usr/lib/modules/*/kernel; do
    rm -rf "$k"/drivers/gpu "$k"/drivers/media "$k"/sound "$k"/drivers/infiniband \
        "$k"/drivers/net/wireless "$k"/drivers/iio "$k"/drivers/staging "$k"/net/wireless \
        "$k"/net/mac80211 "$k"/net/bluetooth "$k"/drivers/bluetooth "$k"/drivers/isdn \
        "$k"/drivers/input/touchscreen "$k"/drivers/hwmon "$k"/lib/test_*.ko
    chroot "$ROOT" depmod "$(basename "$(dirname "$k")")"
done
cp "$(ls "$ROOT"/boot/vmlinuz-* | tail -1)" "$OUT/vmlinuz"
cp "$(ls "$ROOT"/boot/initrd.img-* | tail -1)" "$OUT/initrd.img"

# ---- disk: GPT, p1 root (ext4), p2 data (ext4) ------------------------------------
mkdisk() {   # TREE... -> writes $1 (image file) from root tree $2 and data tree $3
    local img=$1 tree=$2 data=$3
    local used root_mb
    used=$(du -sm "$tree" | cut -f1)
    root_mb=$(( used + used / 4 + 64 ))        # ~25% free for updates
    rm -f "$img.root" "$img.data"
    mkfs.ext4 -q -L otasuke-root -d "$tree" -E root_owner=0:0 "$img.root" "${root_mb}M"
    mkfs.ext4 -q -L otasuke-data -d "$data" -m 0 "$img.data" "${DATA_MB}M"
    local total=$(( 1 + root_mb + DATA_MB + 1 ))
    rm -f "$img" && truncate -s "${total}M" "$img"
    sfdisk -q "$img" <<SFD
label: gpt
start=1MiB, size=${root_mb}MiB, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, name=otasuke-root
start=$(( 1 + root_mb ))MiB, size=${DATA_MB}MiB, type=0fc63daf-8483-4772-8e79-3d69d8477de4, name=otasuke-data
SFD
    dd if="$img.root" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$img.data" of="$img" bs=1M seek=$(( 1 + root_mb )) conv=notrunc,sparse status=none
    rm -f "$img.root" "$img.data"
}
mkdisk "$OUT/otasuke.img.tmp" "$ROOT" "$DATA"
mv "$OUT/otasuke.img.tmp" "$OUT/otasuke.img"
if [ $WITH_TEST = 1 ]; then
    cp -a image/test/overlay/. "$ROOT/"
    # The fake internet's DNS (tests/lib/wan) instead of the root servers.
    install -D -m 0644 appliance/etc/unbound/test-forward.conf \
        "$ROOT/etc/unbound/unbound.conf.d/zz-otasuke-test-forward.conf"
    chroot "$ROOT" systemctl enable otasuke-test-shell.service >/dev/null
    mkdisk "$OUT/otasuke-test.img.tmp" "$ROOT" "$DATA"
    mv "$OUT/otasuke-test.img.tmp" "$OUT/otasuke-test.img"
fi
echo "image: $OUT/otasuke.img $(du -m --apparent-size "$OUT/otasuke.img" | cut -f1) MiB" \
     "(root tree $(du -sm "$ROOT" | cut -f1) MiB; allocated $(du -m "$OUT/otasuke.img" | cut -f1) MiB)"
