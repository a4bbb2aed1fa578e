#!/bin/bash
# image/build.sh — builds the otasuke box image (build/image/) from Debian 12.
#
#   image/build.sh [--test]     (make image / make image-test call it)
#
# Stage 1 (slow, cached): mmdebstrap makes a Debian 12 root file system holding the
#   packages of image/packages.txt, from the machine's Debian mirror. The tarball is
#   cached as build/image/base-<hash of packages.txt>.tar, so a rebuild skips it.
# Stage 2 (under a minute): unpack the base, install build/deb/otasuke_*.deb with dpkg
#   (its dependencies are already in the base, so no mirror is needed), add
#   image/overlay/, the otasuke archive keyring and apt source, lock every account,
#   rebuild the initramfs (factory-reset step), and make a GPT disk: p1 ESP (FAT32,
#   shim + GRUB for Secure Boot, entries "otasuke" and "factory reset"), p2 root, p3 data (ext4), with
#   mkfs.vfat + mtools, mkfs.ext4 -d and dd: no loop device and no mount, so it also
#   works in a container.
# Outputs: build/image/otasuke.img (raw disk, boots with UEFI firmware), vmlinuz,
#   initrd.img (the same kernel and initramfs as on the ESP: the quick tests boot them
#   directly with qemu -kernel; image/test/efi-test.sh boots the disk through OVMF).
# IMAGE_REPO_URL: where the box fetches otasuke updates (see docs/image.md).
# --test also writes otasuke-test.img: the same tree plus image/test/overlay/ (a root
#   shell on the second serial port, for the boot and fault tests only).
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
OUT=${IMAGE_OUT:-$TOP/build/image}
MIRROR=${IMAGE_MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
DATA_MB=${IMAGE_DATA_MB:-256}
# two kernel + initramfs pairs (current and fallback, ~45 MB each) and a third being written
ESP_MB=${IMAGE_ESP_MB:-256}
# Where boxes fetch otasuke updates. The distributor sets it; the default is a name that
# never resolves (.invalid), so an image built without it fetches nothing rather than
# something unknown.
REPO_URL=${IMAGE_REPO_URL:-http://otasuke-updates.invalid/otasuke}
TEST_REPO_URL=${IMAGE_TEST_REPO_URL:-http://198.18.10.30/otasuke}
WITH_TEST=0
[ "${1:-}" = --test ] && WITH_TEST=1

die() { echo "image/build.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (dpkg in a chroot, file owners in the image)"
for t in mmdebstrap mkfs.ext4 sfdisk mkfs.vfat mcopy gpg apt-ftparchive; do
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
# The shipped copy too: a factory reset puts /usr/share/otasuke/otasuke.conf back.
sed -i -e 's/interface = "eth0"/interface = "wan0"/' -e 's/interface = "eth1/interface = "lan0/' \
    "$ROOT/etc/otasuke/otasuke.conf" "$ROOT/usr/share/otasuke/otasuke.conf"

# Signed otasuke updates: apt trusts the otasuke archive key for the otasuke repository
# only (Signed-By), never for Debian's. image/repo.sh makes the key under build/ (or
# uses the distributor's, OTASUKE_REPO_GNUPGHOME); only the public half comes here, in
# the package otasuke-archive-keyring, which the repository also serves: a later
# keyring (the next key, before the repository is signed with it) arrives as an update.
keyring_deb=$(image/repo.sh keyring-deb) || die "no otasuke archive key (image/repo.sh keyring-deb)"
cp "$keyring_deb" "$ROOT/tmp/otasuke-archive-keyring.deb"
chroot "$ROOT" dpkg -i /tmp/otasuke-archive-keyring.deb >/dev/null || die "dpkg -i $(basename "$keyring_deb") failed in the image"
rm -f "$ROOT/tmp/otasuke-archive-keyring.deb"
write_sources() {   # URL
    cat >"$ROOT/etc/apt/sources.list.d/otasuke.sources" <<SRC
# otasuke's own packages, signed by the otasuke archive key (image/repo.sh).
Types: deb
URIs: $1
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/otasuke-archive-keyring.gpg
SRC
}
write_sources "$REPO_URL"

# Who takes vulnerability reports for this box: the distributor (SECURITY.md).
contact=${IMAGE_SECURITY_CONTACT:-}
mkdir -p "$ROOT/usr/share/otasuke" "$ROOT/etc/issue.d"
if [ -n "$contact" ]; then
    printf 'Security problems with this box: %s\n' "$contact" >"$ROOT/usr/share/otasuke/security-contact"
else
    echo "image/build.sh: warning: IMAGE_SECURITY_CONTACT is not set: the box will say that no security contact was configured" >&2
    printf '%s\n' "No security contact was configured by whoever built this image (IMAGE_SECURITY_CONTACT)." \
        "Report security problems to the company that supplied this box; see /usr/share/doc/otasuke/SECURITY.md." \
        >"$ROOT/usr/share/otasuke/security-contact"
fi
cp "$ROOT/usr/share/otasuke/security-contact" "$ROOT/etc/issue.d/60-otasuke-security.issue"
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
# The initramfs again: it now holds the factory-reset step (image/overlay/etc/initramfs-tools).
chroot "$ROOT" update-initramfs -u -k all >/dev/null 2>"$OUT/initramfs.log" \
    || die "update-initramfs failed in the image (see $OUT/initramfs.log)"
KVER=$(ls "$ROOT"/boot/vmlinuz-* | sed 's|.*/vmlinuz-||' | sort -V | tail -1)
cp "$ROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$OUT/initrd.img"
mkdir -p "$ROOT/boot/efi"

# ---- ESP: shim, GRUB, the menu (normal, factory reset), kernel + initramfs -----------
# FAT made with mkfs.vfat and filled with mtools: no loop device, no mount.
# EFI/BOOT/ is the path firmware starts without a boot entry in NVRAM (a new board, a
# cleared CMOS): BOOTX64.EFI is shim, which starts grubx64.efi beside it. No fbx64.efi:
# shim would run it to write NVRAM entries. GRUB reads EFI/debian/grub.cfg (its built-in
# prefix) and the one-shot entry from EFI/debian/grubenv.
CMDLINE="root=LABEL=otasuke-root rw console=tty0 console=ttyS0"
SHIM=$ROOT/usr/lib/shim/shimx64.efi.signed
MOKMGR=$ROOT/usr/lib/shim/mmx64.efi.signed
GRUBEFI=$ROOT/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed
for f in "$SHIM" "$MOKMGR" "$GRUBEFI"; do
    [ -r "$f" ] || die "$f missing: shim-signed and grub-efi-amd64-signed must be in image/packages.txt"
done
mkesp() {   # FILE
    local esp=$1
    rm -f "$esp"
    mkfs.vfat -F 32 -n OTASUKE-ESP -C "$esp" $(( ESP_MB * 1024 )) >/dev/null
    local t=$OUT/esp-tree
    rm -rf "$t" && mkdir -p "$t/EFI/BOOT" "$t/EFI/debian" "$t/otasuke"
    cp "$SHIM" "$t/EFI/BOOT/BOOTX64.EFI"
    cp "$GRUBEFI" "$t/EFI/BOOT/grubx64.efi"
    cp "$MOKMGR" "$t/EFI/BOOT/mmx64.efi"
    sed "s|@CMDLINE@|$CMDLINE|" image/esp/grub.cfg.in >"$t/EFI/debian/grub.cfg"
    chroot "$ROOT" grub-editenv /tmp/grubenv create && mv "$ROOT/tmp/grubenv" "$t/EFI/debian/grubenv" \
        || die "grub-editenv failed in the image"
    cp "$OUT/vmlinuz" "$t/otasuke/vmlinuz"
    cp "$OUT/initrd.img" "$t/otasuke/initrd.img"
    # the fallback entry's pair: the same kernel until the first kernel update
    cp "$OUT/vmlinuz" "$t/otasuke/vmlinuz.prev"
    cp "$OUT/initrd.img" "$t/otasuke/initrd.img.prev"
    mcopy -s -i "$esp" "$t"/* ::/
    rm -rf "$t"
}

# ---- disk: GPT, p1 ESP (FAT32), p2 root (ext4), p3 data (ext4) -----------------------
mkdisk() {   # TREE... -> writes $1 (image file) from root tree $2 and data tree $3
    local img=$1 tree=$2 data=$3
    local used root_mb
    used=$(du -sm "$tree" | cut -f1)
    root_mb=$(( used + used / 4 + 64 ))        # ~25% free for updates
    rm -f "$img.root" "$img.data" "$img.esp"
    mkesp "$img.esp"
    mkfs.ext4 -q -L otasuke-root -d "$tree" -E root_owner=0:0 "$img.root" "${root_mb}M"
    mkfs.ext4 -q -L otasuke-data -d "$data" -m 0 "$img.data" "${DATA_MB}M"
    local total=$(( 1 + ESP_MB + root_mb + DATA_MB + 1 ))
    rm -f "$img" && truncate -s "${total}M" "$img"
    sfdisk -q "$img" <<SFD
label: gpt
start=1MiB, size=${ESP_MB}MiB, type=c12a7328-f81f-11d2-ba4b-00a0c93ec93b, name=otasuke-esp
start=$(( 1 + ESP_MB ))MiB, size=${root_mb}MiB, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, name=otasuke-root
start=$(( 1 + ESP_MB + root_mb ))MiB, size=${DATA_MB}MiB, type=0fc63daf-8483-4772-8e79-3d69d8477de4, name=otasuke-data
SFD
    dd if="$img.esp" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$img.root" of="$img" bs=1M seek=$(( 1 + ESP_MB )) conv=notrunc,sparse status=none
    dd if="$img.data" of="$img" bs=1M seek=$(( 1 + ESP_MB + root_mb )) conv=notrunc,sparse status=none
    rm -f "$img.root" "$img.data" "$img.esp"
}
mkdisk "$OUT/otasuke.img.tmp" "$ROOT" "$DATA"
mv "$OUT/otasuke.img.tmp" "$OUT/otasuke.img"
if [ $WITH_TEST = 1 ]; then
    cp -a image/test/overlay/. "$ROOT/"
    # the fault tests' stop points, preloaded into the agent and fwd by the overlay's drop-ins
    mkdir -p "$ROOT/usr/lib/otasuke-test"
    ${CC:-gcc} -shared -fPIC -O2 -Wall -Wextra -Werror -o "$ROOT/usr/lib/otasuke-test/faultpoint.so" \
        image/test/faultpoint.c -ldl || die "cannot build image/test/faultpoint.c"
    # The fake internet's DNS (tests/lib/wan) instead of the root servers.
    install -D -m 0644 appliance/etc/unbound/test-forward.conf \
        "$ROOT/etc/unbound/unbound.conf.d/zz-otasuke-test-forward.conf"
    chroot "$ROOT" systemctl enable otasuke-test-shell.service >/dev/null
    # updates from the test's fake internet (image/test/boot-test.sh serves a repository there)
    write_sources "$TEST_REPO_URL"
    mkdisk "$OUT/otasuke-test.img.tmp" "$ROOT" "$DATA"
    mv "$OUT/otasuke-test.img.tmp" "$OUT/otasuke-test.img"
fi
echo "image: $OUT/otasuke.img $(du -m --apparent-size "$OUT/otasuke.img" | cut -f1) MiB" \
     "(root tree $(du -sm "$ROOT" | cut -f1) MiB; allocated $(du -m "$OUT/otasuke.img" | cut -f1) MiB)"
