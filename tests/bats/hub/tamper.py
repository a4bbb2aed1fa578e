#!/usr/bin/env python3
"""A man in the middle for hub.bats: an HTTPS server with the hub's certificate that
relays box requests to the real hub and flips one byte of every feed document, keeping
the hub's signature header. A box must refuse what it serves.

    tamper.py LISTEN_ADDR PORT CERT KEY UPSTREAM_URL CAFILE
"""
import http.server
import ssl
import sys
import urllib.request

addr, port, cert, key, upstream, cafile = sys.argv[1:7]
ctx_up = ssl.create_default_context(cafile=cafile)


class Relay(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        req = urllib.request.Request(upstream + self.path)
        auth = self.headers.get("Authorization")
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, context=ctx_up, timeout=10) as r:
                body, status, hdrs = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            body, status, hdrs = e.read(), e.code, e.headers
        if status == 200 and self.path.startswith("/feed/") and len(body) > 20:
            b = bytearray(body)
            b[-5] ^= 0x01  # inside the last entry line
            body = bytes(b)
        self.send_response(status)
        for h in ("Content-Type", "X-Otasuke-Sig", "X-Otasuke-Seq"):
            if hdrs.get(h):
                self.send_header(h, hdrs.get(h))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("tamper: " + (fmt % args) + "\n")


srv = http.server.HTTPServer((addr, int(port)), Relay)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
