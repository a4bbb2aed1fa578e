#!/usr/bin/env python3
"""Runs a shell command in the booted test image through its ttyS1 shell.

    guest.py SOCKET [--timeout S] 'COMMAND'     prints the output, exits with its status
    guest.py SOCKET --wait S                    waits until the shell answers

The qemu side is `-chardev socket,id=sh,path=SOCKET,server=on,wait=off -serial
chardev:sh` (the test image's otasuke-test-shell.service on ttyS1). Each call sends
one line and reads until an end marker carrying a random token, so output left over
from an earlier, timed-out call is skipped."""
import os, socket, sys, time, secrets


def run(path, cmd, timeout):
    tok = secrets.token_hex(6)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    begin, end = f"@@B{tok}@@", f"@@E{tok}@@"
    # stdin from /dev/null: the shell's own stdin is the command stream.
    line = f"echo '{begin}'; ( {cmd} ) </dev/null 2>&1; echo \"{end}$?@@\"\n"
    if len(line) > 3500:
        raise SystemExit("guest.py: command longer than 3500 bytes; send a file in parts")
    s.sendall(line.encode())
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        s.settimeout(left)
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("guest shell closed")
        buf += chunk
        text = buf.decode(errors="replace")
        i = text.find(begin + "\n")
        j = text.find(end, i + 1) if i >= 0 else -1
        if j >= 0 and text.find("@@", j + len(end)) >= 0:
            k = text.find("@@", j + len(end))
            out = text[i + len(begin) + 1:j]
            return int(text[j + len(end):k]), out


def main():
    a = sys.argv[1:]
    if len(a) < 2:
        raise SystemExit(__doc__)
    path = a.pop(0)
    timeout = 60.0
    if a[0] == "--wait":
        limit = time.monotonic() + float(a[1])
        while time.monotonic() < limit:
            try:
                rc, _ = run(path, "true", 3)
                if rc == 0:
                    return 0
            except (OSError, TimeoutError, ConnectionError):
                time.sleep(1)
        print(f"guest.py: no answer from the test shell on {path} after {a[1]} s", file=sys.stderr)
        return 1
    if a[0] == "--timeout":
        timeout = float(a[1])
        a = a[2:]
    try:
        rc, out = run(path, " ".join(a), timeout)
    except TimeoutError:
        print(f"guest.py: '{' '.join(a)}' did not finish in {timeout} s", file=sys.stderr)
        return 124
    sys.stdout.write(out)
    return rc


if __name__ == "__main__":
    sys.exit(main())
