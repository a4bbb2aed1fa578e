#!/usr/bin/env python3
"""Receivers for the notification test button, in a test namespace only.

    sinks.py DIR --smtp ADDR:PORT --http ADDR:PORT

SMTP: just enough of RFC 5321 for libcurl (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT);
each message lands in DIR/mail.N.json with its envelope and what a person would read (the
RFC 2047 subject and the base64 body decoded). HTTP: every POST body lands in
DIR/hook.N.json as received, answered 204. Written for the browser tests; nothing here
is a mail server.
"""
import argparse
import email
import email.header
import email.policy
import http.server
import itertools
import json
import os
import socketserver
import threading

counter = itertools.count()


def save(d, kind, obj):
    n = next(counter)
    tmp = os.path.join(d, f".{kind}.{n}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    os.rename(tmp, os.path.join(d, f"{kind}.{n}.json"))


class Smtp(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.say("220 sink ESMTP")
        sender, rcpts = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.say("250 sink")
            elif verb == "MAIL":
                sender, rcpts = line[10:].strip(), []
                self.say("250 ok")
            elif verb == "RCPT":
                rcpts.append(line[8:].strip())
                self.say("250 ok")
            elif verb == "DATA":
                self.say("354 go on")
                data = bytearray()
                while True:
                    l = self.rfile.readline()
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    data += l[1:] if l.startswith(b"..") else l
                msg = email.message_from_bytes(bytes(data), policy=email.policy.default)
                body = msg.get_body(("plain",))
                save(self.server.dir, "mail", {
                    "from": sender, "to": rcpts,
                    "subject": str(email.header.make_header(email.header.decode_header(msg["Subject"] or ""))),
                    "date": msg["Date"], "message_id": msg["Message-ID"],
                    "body": body.get_content() if body else ""})
                self.say("250 queued")
            elif verb == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say("250 ok")


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            obj = json.loads(body)
        except ValueError:
            obj = {"raw": body.decode("utf-8", "replace")}
        save(self.server.dir, "hook", obj)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--smtp", type=addr, required=True)
    ap.add_argument("--http", type=addr, required=True)
    a = ap.parse_args()
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    smtp = socketserver.ThreadingTCPServer(a.smtp, Smtp)
    smtp.dir = a.dir
    hook = http.server.ThreadingHTTPServer(a.http, Hook)
    hook.dir = a.dir
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    print("listening", flush=True)
    hook.serve_forever()


if __name__ == "__main__":
    main()
