#!/bin/bash
# image/repo.sh — the signed apt repository of otasuke packages (make repo).
#
#   image/repo.sh key                   make the signing key if there is none; print the
#                                       path of the public keyring (binary, for Signed-By)
#   image/repo.sh keyring-deb           print the path of the otasuke-archive-keyring
#                                       package holding that keyring (made when it changed)
#   image/repo.sh keys                  list the keys the keyring trusts
#   image/repo.sh build [DEB...]        repository of DEBs (default build/deb/*.deb) plus
#                                       the keyring package
#
# Trusted keys: the keyring is the signing key's public half plus every public key in
# OTASUKE_REPO_TRUSTED (a directory of *.asc / *.gpg files; default trusted/ beside the
# keyring). It ships as the package otasuke-archive-keyring, published in the
# repository itself, so boxes learn a new key through a normal (signed) update before
# the repository is ever signed with it: that is how the key is rotated without a new
# image (docs/image.md, "Signing keys").
#
# Layout (what /etc/apt/sources.list.d/otasuke.sources on the box expects):
#   $REPO/pool/main/<debs>, $REPO/dists/bookworm/main/binary-amd64/Packages{,.gz},
#   $REPO/dists/bookworm/{Release,InRelease,Release.gpg}; Release says Origin: otasuke,
#   Codename: bookworm (the box's unattended-upgrades pattern "origin=otasuke,...").
#   The public key is copied to $REPO/otasuke-archive-keyring.gpg for reference only:
#   a box trusts the copy its image or package brought, never one fetched with the index.
#
# The secret key never goes into the source tree nor into the repository directory:
# it lives in a GnuPG home outside both, OTASUKE_REPO_GNUPGHOME (default
# build/repo-key/gnupg, made here with a fresh ed25519 key and no passphrase: a build
# key for tests and development). A distributor points OTASUKE_REPO_GNUPGHOME at the
# home holding its real (sub)key and OTASUKE_REPO_KEYID at that key; this script then
# never makes a key.
#
# Environment: OTASUKE_REPO_DIR (default build/repo), OTASUKE_REPO_GNUPGHOME,
#   OTASUKE_REPO_KEYID (default: the only secret key in that home),
#   OTASUKE_REPO_SUITE (default bookworm), OTASUKE_REPO_KEYRING (where `key` writes the
#   public keyring; default build/repo-key/otasuke-archive-keyring.gpg).
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
REPO=${OTASUKE_REPO_DIR:-$TOP/build/repo}
GHOME=${OTASUKE_REPO_GNUPGHOME:-$TOP/build/repo-key/gnupg}
SUITE=${OTASUKE_REPO_SUITE:-bookworm}
KEYRING=${OTASUKE_REPO_KEYRING:-$TOP/build/repo-key/otasuke-archive-keyring.gpg}
TRUSTED=${OTASUKE_REPO_TRUSTED:-$(dirname "$KEYRING")/trusted}

die() { echo "image/repo.sh: $*" >&2; exit 1; }
for t in gpg apt-ftparchive dpkg-deb; do
    command -v $t >/dev/null || die "$t missing: run 'make deps' (mk/packages/image.txt: gnupg, apt-utils)"
done

g() { gpg --homedir "$GHOME" --batch --quiet --no-tty "$@"; }
# gpg starts an agent for the home; stop it when we are done, whatever happens.
stop_agent() { gpgconf --homedir "$GHOME" --kill gpg-agent 2>/dev/null || true; }
trap stop_agent EXIT

keyid() {
    if [ -n "${OTASUKE_REPO_KEYID:-}" ]; then echo "$OTASUKE_REPO_KEYID"; return; fi
    local ids
    ids=$(g --list-secret-keys --with-colons 2>/dev/null | awk -F: '$1=="fpr"{print $10; exit}')
    echo "$ids"
}

ensure_key() {
    if [ ! -d "$GHOME" ]; then
        [ -z "${OTASUKE_REPO_GNUPGHOME:-}" ] \
            || die "OTASUKE_REPO_GNUPGHOME=$GHOME does not exist (a distributor's key home is never made here)"
        mkdir -p "$GHOME" && chmod 0700 "$GHOME"
    fi
    if [ -z "$(keyid)" ]; then
        [ -z "${OTASUKE_REPO_GNUPGHOME:-}" ] \
            || die "no secret key in OTASUKE_REPO_GNUPGHOME=$GHOME (set OTASUKE_REPO_KEYID or import the signing key)"
        echo "repo: making a build signing key in $GHOME (kept out of the repository)" >&2
        g --passphrase '' --pinentry-mode loopback \
            --quick-generate-key "otasuke archive build key ($(hostname), $(date -u +%F))" \
            ed25519 sign 2y
    fi
    local id
    id=$(keyid)
    [ -n "$id" ] || die "no signing key in $GHOME"
    mkdir -p "$(dirname "$KEYRING")"
    # The whole public key (primary and every subkey): a signing subkey ("FPR!") alone
    # would not verify without the primary that binds it.
    g --export "${id%!}" >"$KEYRING.sign"
    [ -s "$KEYRING.sign" ] || die "cannot export the public key $id from $GHOME"
    # One keyring from the signing key and the trusted ones, each key once: imported
    # into a scratch home and exported again (also rejects a file that is no key).
    local tmp f n=0
    tmp=$(mktemp -d)
    gpg --homedir "$tmp" --batch --quiet --no-tty --import "$KEYRING.sign" 2>/dev/null \
        || { rm -rf "$tmp"; die "cannot read the exported key $id"; }
    if [ -d "$TRUSTED" ]; then
        for f in "$TRUSTED"/*.asc "$TRUSTED"/*.gpg; do
            [ -e "$f" ] || continue
            gpg --homedir "$tmp" --batch --quiet --no-tty --import "$f" 2>/dev/null \
                || { gpgconf --homedir "$tmp" --kill gpg-agent 2>/dev/null; rm -rf "$tmp"; die "$f: not an OpenPGP public key (OTASUKE_REPO_TRUSTED)"; }
            n=$((n + 1))
        done
    fi
    gpg --homedir "$tmp" --batch --quiet --no-tty --export >"$KEYRING.tmp"
    gpgconf --homedir "$tmp" --kill gpg-agent 2>/dev/null || true
    rm -rf "$tmp" "$KEYRING.sign"
    [ -s "$KEYRING.tmp" ] || die "the keyring came out empty"
    mv "$KEYRING.tmp" "$KEYRING"
    chmod 0644 "$KEYRING"
    [ $n = 0 ] || echo "repo: keyring trusts the signing key and $n key file(s) of $TRUSTED" >&2
}

# The keyring as a package, so apt on the box updates it like anything else. Remade only
# when the keyring's content changed; its version is the UTC time it was made, so every
# new keyring is newer than the one before.
keyring_deb() {
    local dir sum old ver stage deb
    dir=$(dirname "$KEYRING")/keyring-deb
    sum=$(sha256sum <"$KEYRING" | cut -c1-64)
    old=$(ls "$dir"/otasuke-archive-keyring_*_all.deb 2>/dev/null | tail -1 || true)
    if [ -n "$old" ] && [ "$(cat "$dir/keyring.sha256" 2>/dev/null)" = "$sum" ]; then
        echo "$old"; return
    fi
    ver=$(date -u +%Y.%m.%d.%H%M%S)
    if [ -n "$old" ]; then   # two keyrings within a second, or a clock set back
        local prev
        prev=$(dpkg-deb -f "$old" Version)
        dpkg --compare-versions "$ver" gt "$prev" || ver=$prev.1
    fi
    stage=$(mktemp -d)
    install -D -m 0644 "$KEYRING" "$stage/usr/share/keyrings/otasuke-archive-keyring.gpg"
    mkdir -p "$stage/DEBIAN" "$stage/usr/share/doc/otasuke-archive-keyring"
    cat >"$stage/usr/share/doc/otasuke-archive-keyring/README" <<DOC
The OpenPGP keys apt trusts for the otasuke package repository, and for nothing else
(Signed-By in /etc/apt/sources.list.d/otasuke.sources). A new key arrives in an update
of this package, signed by the key already trusted, before the repository switches to it.
DOC
    cat >"$stage/DEBIAN/control" <<CTL
Package: otasuke-archive-keyring
Version: $ver
Architecture: all
Multi-Arch: foreign
Section: misc
Priority: optional
Maintainer: otasuke maintainers <maintainers@otasuke.example>
Description: OpenPGP keys of the otasuke package repository
 The keys apt uses to check otasuke updates on the box. Updating this package is
 how the repository's signing key is rotated.
CTL
    mkdir -p "$dir"
    deb=$dir/otasuke-archive-keyring_${ver}_all.deb
    dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb.tmp" >/dev/null \
        || { rm -rf "$stage"; die "dpkg-deb failed for the keyring package"; }
    rm -rf "$stage"
    find "$dir" -name 'otasuke-archive-keyring_*_all.deb' -delete
    mv "$deb.tmp" "$deb"
    echo "$sum" >"$dir/keyring.sha256"
    echo "$deb"
}

list_keys() {
    gpg --batch --no-tty --with-colons --show-keys "$KEYRING" 2>/dev/null |
        awk -F: '$1=="pub"||$1=="sub"{t=$1; c=$6; e=$7; u=$12; next}
                 $1=="fpr"&&t!=""{printf "%s %s created %s expires %s use %s\n", t, $10, strftime("%F", c, 1), (e=="" ? "never" : strftime("%F", e, 1)), u; t=""}'
}

build_repo() {
    local debs=("$@") d
    [ ${#debs[@]} -gt 0 ] || mapfile -t debs < <(ls "$TOP"/build/deb/*.deb 2>/dev/null)
    [ ${#debs[@]} -gt 0 ] || die "no .deb to publish: run 'make deb' first"
    ensure_key
    local id
    id=$(keyid)
    debs+=("$(keyring_deb)")
    rm -rf "$REPO.tmp" && mkdir -p "$REPO.tmp/pool/main" "$REPO.tmp/dists/$SUITE/main/binary-amd64"
    for d in "${debs[@]}"; do
        [ -r "$d" ] || die "$d: not readable"
        cp "$d" "$REPO.tmp/pool/main/"
    done
    (
        cd "$REPO.tmp"
        apt-ftparchive packages pool/main >"dists/$SUITE/main/binary-amd64/Packages"
        gzip -9nk "dists/$SUITE/main/binary-amd64/Packages"
        apt-ftparchive \
            -o APT::FTPArchive::Release::Origin=otasuke \
            -o APT::FTPArchive::Release::Label=otasuke \
            -o APT::FTPArchive::Release::Suite="$SUITE" \
            -o APT::FTPArchive::Release::Codename="$SUITE" \
            -o APT::FTPArchive::Release::Architectures=amd64 \
            -o APT::FTPArchive::Release::Components=main \
            -o APT::FTPArchive::Release::Description="otasuke box packages" \
            release "dists/$SUITE" >"Release.tmp"
        mv Release.tmp "dists/$SUITE/Release"
    )
    g --local-user "$id" --digest-algo SHA512 --clearsign \
        -o "$REPO.tmp/dists/$SUITE/InRelease" "$REPO.tmp/dists/$SUITE/Release"
    g --local-user "$id" --digest-algo SHA512 --armor --detach-sign \
        -o "$REPO.tmp/dists/$SUITE/Release.gpg" "$REPO.tmp/dists/$SUITE/Release"
    cp "$KEYRING" "$REPO.tmp/otasuke-archive-keyring.gpg"
    rm -rf "$REPO" && mv "$REPO.tmp" "$REPO"
    echo "repo: $REPO ($SUITE, ${#debs[@]} package(s), signed by $id)"
}

case "${1:-}" in
    key) ensure_key; echo "$KEYRING" ;;
    keyring-deb) ensure_key; keyring_deb ;;
    keys) ensure_key; list_keys ;;
    build) shift; build_repo "$@" ;;
    *) echo "usage: image/repo.sh key | keyring-deb | keys | build [DEB...]" >&2; exit 2 ;;
esac
