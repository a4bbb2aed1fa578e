#!/bin/bash
# image/repo.sh — the signed apt repository of otasuke packages (make repo).
#
#   image/repo.sh key                   make the signing key if there is none; print the
#                                       path of its public keyring (binary, for Signed-By)
#   image/repo.sh build [DEB...]        repository of DEBs (default build/deb/*.deb)
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

die() { echo "image/repo.sh: $*" >&2; exit 1; }
for t in gpg apt-ftparchive; do
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
    g --export "$id" >"$KEYRING.tmp"
    [ -s "$KEYRING.tmp" ] || die "cannot export the public key $id from $GHOME"
    mv "$KEYRING.tmp" "$KEYRING"
    chmod 0644 "$KEYRING"
}

build_repo() {
    local debs=("$@") d
    [ ${#debs[@]} -gt 0 ] || mapfile -t debs < <(ls "$TOP"/build/deb/*.deb 2>/dev/null)
    [ ${#debs[@]} -gt 0 ] || die "no .deb to publish: run 'make deb' first"
    ensure_key
    local id
    id=$(keyid)
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
    build) shift; build_repo "$@" ;;
    *) echo "usage: image/repo.sh key | build [DEB...]" >&2; exit 2 ;;
esac
