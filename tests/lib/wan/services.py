#!/usr/bin/env python3
"""Web sites and bare TCP listeners of the fake internet (wan namespace).

Started by tests/lib/office.sh inside the wan namespace:

    services.py --ready FILE --http ADDR=SITE ... --tcp ADDR:PORT ...

--http ADDR=SITE  answers every GET/HEAD on ADDR port 80 with a short text page naming
                  SITE, the Host header it got and the client address it saw (so a
                  test can tell that the box NATed the request).
--tcp ADDR:PORT   accepts connections and closes them at once (stand-in for DoT on
                  853 or HTTPS on 443: enough to tell "reachable" from "blocked").
ADDR may be IPv6 ("[fd00::1]:853" for --tcp, "fd00::1=site" for --http).
--ready FILE      written once every socket is bound; the caller waits for it.

Every listener runs in its own thread; one process keeps the office's process list
short. Binding errors are fatal and name the address.
"""
import argparse
import http.server
import ipaddress
import os
import signal
import socket
import socketserver
import sys
import threading


def family_of(addr):
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


class SiteHandler(http.server.BaseHTTPRequestHandler):
    server_version = "otasuke-wan/1"
    sys_version = ""

    def _page(self):
        body = ("site=%s\nhost=%s\nclient=%s\npath=%s\n" % (
            self.server.site, self.headers.get("Host", ""),
            self.client_address[0], self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        return body

    def do_GET(self):
        self.wfile.write(self._page())

    def do_HEAD(self):
        self._page()

    def log_message(self, fmt, *args):
        sys.stderr.write("http %s %s: %s\n" % (self.server.site, self.client_address[0],
                                               fmt % args))


class SiteServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, site):
        self.address_family = family_of(addr)
        self.site = site
        super().__init__((addr, 80), SiteHandler)


class CloseHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.close()


class CloseServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, port):
        self.address_family = family_of(addr)
        super().__init__((addr, port), CloseHandler)


def split_tcp(spec):
    addr, _, port = spec.rpartition(":")
    return addr.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http", action="append", default=[], metavar="ADDR=SITE")
    ap.add_argument("--tcp", action="append", default=[], metavar="ADDR:PORT")
    ap.add_argument("--ready", metavar="FILE")
    args = ap.parse_args()

    servers = []
    try:
        for spec in args.http:
            addr, _, site = spec.partition("=")
            servers.append(SiteServer(addr, site or addr))
        for spec in args.tcp:
            servers.append(CloseServer(*split_tcp(spec)))
    except (OSError, ValueError) as e:
        sys.exit("services.py: cannot listen on %s: %s" % (spec, e))

    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.ready + ".tmp", args.ready)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
