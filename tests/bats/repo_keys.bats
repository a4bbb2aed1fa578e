#!/usr/bin/env bats
# The otasuke repository's signing keys (image/repo.sh, docs/image.md "Signing keys"):
# the keyring travels as the package otasuke-archive-keyring, so the key can be rotated
# without a new image, and the signing key can be a subkey of a primary kept offline.
#
# A "box" here is a directory: its keyring is what dpkg --root installed from the
# keyring package, and apt-get update runs against file:// repositories with the box's
# own lists and Signed-By, as on the box (apt's own verification, real gpgv). Keys are
# throw-away ed25519 keys made in $BATS_FILE_TMPDIR; nothing touches the host's apt.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
    T=$BATS_FILE_TMPDIR
    # a small package to publish (the repository needs one besides the keyring)
    mkdir -p "$T/pkg/DEBIAN"
    printf 'Package: otasuke-probe\nVersion: 1\nArchitecture: all\nMaintainer: test <t@example.invalid>\nDescription: probe\n probe\n' \
        >"$T/pkg/DEBIAN/control"
    dpkg-deb --root-owner-group -b "$T/pkg" "$T/otasuke-probe_1_all.deb" >/dev/null
    # key A: the signing key in service; key B: the next one, made as on an offline
    # machine: a primary that only certifies, with a signing subkey exported alone
    newkey A "$T/home-A"
    mkdir -p "$T/offline-B" "$T/home-B" && chmod 0700 "$T/offline-B" "$T/home-B"
    gk "$T/offline-B" --quick-generate-key "otasuke test key B (offline primary)" ed25519 cert 2y
    fprB=$(gk "$T/offline-B" --list-keys --with-colons | awk -F: '$1=="fpr"{print $10; exit}')
    gk "$T/offline-B" --quick-add-key "$fprB" ed25519 sign 1y
    subB=$(gk "$T/offline-B" --list-keys --with-colons | awk -F: '$1=="fpr"{f=$10} END{print f}')
    gk "$T/offline-B" --export-secret-subkeys "$subB!" >"$T/B-subkey.sec"
    gk "$T/offline-B" --export --armor "$fprB" >"$T/B.asc"
    gk "$T/home-B" --import "$T/B-subkey.sec"
    gk "$T/home-A" --export --armor >"$T/A.asc"
    echo "$fprB" >"$T/fprB"; echo "$subB" >"$T/subB"
    killagents
}

teardown_file() { killagents; }

gk() { local h=$1; shift; gpg --homedir "$h" --batch --quiet --no-tty --passphrase '' --pinentry-mode loopback "$@"; }
newkey() { mkdir -p "$2" && chmod 0700 "$2" && gk "$2" --quick-generate-key "otasuke test key $1" ed25519 sign 2y; }
killagents() { local h; for h in "$BATS_FILE_TMPDIR"/home-* "$BATS_FILE_TMPDIR"/offline-*; do gpgconf --homedir "$h" --kill gpg-agent 2>/dev/null || true; done; }

# publish NAME HOME [KEYID] [TRUSTED_DIR]: a repository signed by HOME's key, whose
# keyring package trusts that key plus the keys in TRUSTED_DIR. One keyring location
# for all, as a distributor has: each changed keyring gets a newer package version.
publish() {
    local name=$1 home=$2 id=${3:-} trusted=${4:-$BATS_FILE_TMPDIR/none}
    OTASUKE_REPO_GNUPGHOME=$home OTASUKE_REPO_KEYID=$id OTASUKE_REPO_TRUSTED=$trusted \
    OTASUKE_REPO_KEYRING=$BATS_FILE_TMPDIR/keyring/otasuke-archive-keyring.gpg \
    OTASUKE_REPO_DIR=$BATS_FILE_TMPDIR/repo-$name \
        "$REPO/image/repo.sh" build "$BATS_FILE_TMPDIR/otasuke-probe_1_all.deb"
}

# box_install BOX REPO: what unattended-upgrades does with a newer keyring package
box_install() {
    local b=$BATS_FILE_TMPDIR/box-$1
    mkdir -p "$b/var/lib/dpkg/info" "$b/var/lib/dpkg/updates" "$b/lists/partial" "$b/cache/archives/partial"
    touch "$b/var/lib/dpkg/status" "$b/var/lib/dpkg/available"
    dpkg --root="$b" --force-script-chrootless -i "$BATS_FILE_TMPDIR"/repo-$2/pool/main/otasuke-archive-keyring_*_all.deb
}

# box_update BOX REPO: apt-get update of the box against REPO; prints apt's output and
# the candidate of otasuke-probe (the last line: "(none)" when apt refused the index)
box_update() {
    local b=$BATS_FILE_TMPDIR/box-$1
    echo "deb [signed-by=$b/usr/share/keyrings/otasuke-archive-keyring.gpg] file:$BATS_FILE_TMPDIR/repo-$2 bookworm main" >"$b/sources.list"
    rm -rf "$b/lists" && mkdir -p "$b/lists/partial"
    local o=(-o Dir::Etc::SourceList="$b/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists="$b/lists" -o Dir::Cache="$b/cache" -o Dir::State::status="$b/var/lib/dpkg/status"
             -o Dir::Etc::Trusted=/dev/null -o Dir::Etc::TrustedParts=/dev/null
             -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
             -o APT::Sandbox::User=root -o Debug::NoLocking=1)
    apt-get "${o[@]}" update 2>&1
    local c
    c=$(apt-cache "${o[@]}" policy otasuke-probe 2>/dev/null | awk '/Candidate:/{print $2}')
    echo "${c:-(none)}"   # (none) also when apt knows nothing of the package
}

@test "a box trusts the repository signed by the key its keyring package carries" {
    run publish a1 "$BATS_FILE_TMPDIR/home-A"
    assert_success
    run box_install old a1
    assert_success
    run box_update old a1
    assert_success
    assert_line --index -1 1
    fprA=$(gk "$BATS_FILE_TMPDIR/home-A" --list-keys --with-colons | awk -F: '$1=="fpr"{print $10; exit}')
    run env OTASUKE_REPO_GNUPGHOME="$BATS_FILE_TMPDIR/home-A" OTASUKE_REPO_TRUSTED="$BATS_FILE_TMPDIR/none" \
        OTASUKE_REPO_KEYRING="$BATS_FILE_TMPDIR/keyring/otasuke-archive-keyring.gpg" "$REPO/image/repo.sh" keys
    assert_success
    assert_output --regexp "^pub $fprA created [0-9-]+ expires [0-9-]+ use"
}

@test "a repository signed by a key the box does not know yet is refused" {
    run publish b-only "$BATS_FILE_TMPDIR/home-B" "$(cat "$BATS_FILE_TMPDIR/subB")!"
    assert_success
    run box_update old b-only
    assert_output --regexp "NO_PUBKEY|not signed|couldn.t be verified|could not be verified"
    assert_line --index -1 "(none)"
}

@test "rotation step 1: still signed by A, the keyring update also trusts B" {
    mkdir -p "$BATS_FILE_TMPDIR/trust-AB"
    cp "$BATS_FILE_TMPDIR/B.asc" "$BATS_FILE_TMPDIR/trust-AB/"
    run publish a2 "$BATS_FILE_TMPDIR/home-A" "" "$BATS_FILE_TMPDIR/trust-AB"
    assert_success
    assert_output --partial "1 key file(s)"
    run box_update old a2
    assert_success
    assert_line --index -1 1
    # the new keyring package is newer than the installed one, so apt would take it
    old=$(dpkg-query --admindir="$BATS_FILE_TMPDIR/box-old/var/lib/dpkg" -W -f '${Version}' otasuke-archive-keyring)
    new=$(dpkg-deb -f "$BATS_FILE_TMPDIR"/repo-a2/pool/main/otasuke-archive-keyring_*_all.deb Version)
    [ "$old" != "$new" ]
    dpkg --compare-versions "$new" gt "$old"
    run box_install old a2
    assert_success
    run gpg --batch --no-tty --with-colons --show-keys "$BATS_FILE_TMPDIR/box-old/usr/share/keyrings/otasuke-archive-keyring.gpg"
    assert_output --partial "$(cat "$BATS_FILE_TMPDIR/fprB")"
}

@test "rotation step 2: the repository signed by B's subkey (primary offline) is trusted by the updated box" {
    mkdir -p "$BATS_FILE_TMPDIR/trust-A"
    cp "$BATS_FILE_TMPDIR/A.asc" "$BATS_FILE_TMPDIR/trust-A/"
    run publish b1 "$BATS_FILE_TMPDIR/home-B" "$(cat "$BATS_FILE_TMPDIR/subB")!" "$BATS_FILE_TMPDIR/trust-A"
    assert_success
    # the signing home holds no usable primary secret: the offline ceremony's point
    run gk "$BATS_FILE_TMPDIR/home-B" --list-secret-keys --with-colons
    assert_line --regexp '^sec:.*:#:'
    run box_update old b1
    assert_success
    refute_output --partial NO_PUBKEY
    assert_line --index -1 1
}

@test "rotation step 3: a keyring without A; a repository signed by A is refused afterwards" {
    run publish b2 "$BATS_FILE_TMPDIR/home-B" "$(cat "$BATS_FILE_TMPDIR/subB")!"
    assert_success
    run box_install old b2
    assert_success
    run box_update old b2
    assert_success
    assert_line --index -1 1
    run box_update old a1
    assert_output --regexp "NO_PUBKEY|not signed|couldn.t be verified|could not be verified"
    assert_line --index -1 "(none)"
}

@test "a box that missed the keyring update refuses B's repository (order matters)" {
    run box_install late a1
    assert_success
    run box_update late b2
    assert_output --regexp "NO_PUBKEY|not signed|couldn.t be verified|could not be verified"
    assert_line --index -1 "(none)"
}

@test "a file in the trusted directory that is not a key is refused with its name" {
    mkdir -p "$BATS_FILE_TMPDIR/trust-bad"
    echo "not a key" >"$BATS_FILE_TMPDIR/trust-bad/oops.asc"
    run publish bad "$BATS_FILE_TMPDIR/home-A" "" "$BATS_FILE_TMPDIR/trust-bad"
    assert_failure
    assert_output --partial "oops.asc: not an OpenPGP public key"
}
