#!/usr/bin/env python3
"""image/test/loader-debs.py ROOT OUTDIR -> prints "VERSION MARKER"

Makes the package of a boot loader update for the EFI test (efi-test.sh), from the
image's own installed grub-efi-amd64-signed (ROOT = build/image/root): the same files
under version <installed>+otasuketest1, with one visible change: GRUB's version string
inside grubx64.efi.signed is rewritten to a marker of the same length, which GRUB shows
at the top of its menu (on the serial console). So the test can see that apt's run
copied the new loader to the ESP and that the firmware started that one.

The change breaks Debian's signature on that GRUB, so the test boots it with Secure Boot
off; what Secure Boot refuses is tested separately. The payload is Debian's, rebuilt
from the image for the test only; nothing here is shipped.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

LOADER = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"


def status_stanza(root, pkg):
    with open(os.path.join(root, "var/lib/dpkg/status"), encoding="utf-8") as f:
        for stanza in f.read().split("\n\n"):
            if re.search(r"^Package: %s$" % re.escape(pkg), stanza, re.M):
                return stanza.strip("\n")
    sys.exit("loader-debs: %s is not installed in %s" % (pkg, root))


def info_file(root, pkg, suffix):
    for name in (pkg + ":amd64", pkg):
        p = os.path.join(root, "var/lib/dpkg/info", name + "." + suffix)
        if os.path.exists(p):
            return p
    return None


def control_from_status(stanza, new_version, dep_rewrite):
    out = []
    for line in stanza.split("\n"):
        if line.startswith("Status:") or line.startswith("Installed-Size:"):
            continue   # dpkg-deb works these out, Status is not a control field
        if line.startswith("Version:"):
            line = "Version: " + new_version
        for dep, ver in dep_rewrite.items():
            line = re.sub(r"\b%s \(= [^)]*\)" % re.escape(dep), "%s (= %s)" % (dep, ver), line)
        out.append(line)
    return "\n".join(out) + "\n"


def build(root, pkg, new_version, outdir, dep_rewrite, marker):
    stanza = status_stanza(root, pkg)
    stage = tempfile.mkdtemp(prefix="loader-deb-")
    try:
        with open(info_file(root, pkg, "list"), encoding="utf-8") as f:
            paths = [p.strip().lstrip("/") for p in f if p.strip() not in ("", "/.")]
        os.chmod(stage, 0o755)
        rootreal = os.path.realpath(root)
        for rel in paths:
            # merged /usr: the list says /lib/systemd/..., the tree has usr/lib/systemd/...
            parent = os.path.realpath(os.path.join(root, os.path.dirname(rel)))
            if parent != rootreal and not parent.startswith(rootreal + "/"):
                continue
            rel = os.path.relpath(os.path.join(parent, os.path.basename(rel)), rootreal)
            src = os.path.join(root, rel)
            dst = os.path.join(stage, rel)
            if os.path.islink(src):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(os.readlink(src), dst)
            elif os.path.isdir(src):
                os.makedirs(dst, exist_ok=True)
            elif os.path.isfile(src):   # docs and man pages the image left out are skipped
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)
        if marker and os.path.exists(os.path.join(stage, LOADER)):
            old, new = marker
            p = os.path.join(stage, LOADER)
            data = open(p, "rb").read()
            if old.encode() not in data:
                sys.exit("loader-debs: version %r not found in %s" % (old, LOADER))
            open(p, "wb").write(data.replace(old.encode(), new.encode()))
        deb = os.path.join(stage, "DEBIAN")
        os.makedirs(deb, exist_ok=True)
        with open(os.path.join(deb, "control"), "w", encoding="utf-8") as f:
            f.write(control_from_status(stanza, new_version, dep_rewrite))
        for suffix in ("conffiles", "preinst", "postinst", "prerm", "postrm"):
            p = info_file(root, pkg, suffix)
            if p:
                shutil.copy2(p, os.path.join(deb, suffix))
        out = os.path.join(outdir, "%s_%s_amd64.deb" % (pkg, new_version))
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", stage, out],
                       check=True, stdout=subprocess.DEVNULL)
        return out
    finally:
        shutil.rmtree(stage)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    pkg_version = re.search(r"^Version: (.+)$", status_stanza(root, "grub-efi-amd64-signed"), re.M).group(1)
    # the version GRUB prints is grub2's (grub-common, same source), e.g. 2.06-13+deb12u2
    grub_version = re.search(r"^Version: (.+)$", status_stanza(root, "grub-common"), re.M).group(1)
    tail = "otatest"
    if len(grub_version) <= len(tail):
        sys.exit("loader-debs: version %r too short for the marker" % grub_version)
    # the same length, so no offset inside the PE file moves
    marker = grub_version[:-len(tail)] + tail
    new_version = pkg_version + "+otasuketest1"
    build(root, "grub-efi-amd64-signed", new_version, outdir, {}, (grub_version, marker))
    print(new_version, marker)


if __name__ == "__main__":
    main()
