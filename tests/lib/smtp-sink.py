#!/usr/bin/env python3
"""A tiny SMTP receiver for tests (loopback or a test namespace only).

    smtp-sink.py DIR [--listen ADDR:PORT] [--port-file FILE] [--mode ok|reject|stall]

Speaks just enough SMTP (RFC 5321: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for
libcurl. Every accepted message is written as DIR/mail.NNN.eml (the bytes as received)
and DIR/mail.NNN.json: envelope and the decoded headers and body (RFC 2047 subject
decoded, base64 / quoted-printable body decoded), so a test can compare what a person
would read. PORT 0 picks a free port; --port-file gets the port once listening.
Modes: ok (accept), reject (451 to DATA: a temporary failure, the sender retries),
stall (accept the connection, never answer: a hung relay; DIR/stalled.NNN marks each).
"""
import argparse
import email
import email.header
import email.policy
import itertools
import json
import os
import socketserver
import sys
import threading


def decoded_header(raw):
    if raw is None:
        return None
    return str(email.header.make_header(email.header.decode_header(raw)))


class Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        srv = self.server
        if srv.mode == "stall":
            with srv.lock:
                n = next(srv.count)
            open(os.path.join(srv.outdir, "stalled.%03d" % n), "w").close()
            srv.stalled.wait()
            return
        self.reply("220 smtp-sink.test ESMTP test sink")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-smtp-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                self.wfile.flush()
            elif verb == "HELO":
                self.reply("250 smtp-sink.test")
            elif verb == "MAIL":
                mail_from, rcpts = cmd.split(":", 1)[1].strip(), []
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip())
                self.reply("250 ok")
            elif verb == "DATA":
                if srv.mode == "reject":
                    self.reply("451 try again later (test sink)")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                data = bytearray()
                while True:
                    l = self.rfile.readline()
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    data += l
                srv.store(mail_from, rcpts, bytes(data))
                self.reply("250 stored")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr, outdir, mode):
        super().__init__(addr, Handler)
        self.outdir, self.mode = outdir, mode
        self.count = itertools.count()
        self.lock = threading.Lock()
        self.stalled = threading.Event()

    def store(self, mail_from, rcpts, data):
        with self.lock:
            n = next(self.count)
        base = os.path.join(self.outdir, "mail.%03d" % n)
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        raw_subject = msg.get("Subject")
        body = msg.get_payload(decode=True)
        charset = msg.get_content_charset() or "us-ascii"
        out = {
            "mail_from": mail_from, "rcpt": rcpts,
            "from": msg.get("From"), "to": msg.get("To"),
            "subject_raw": raw_subject, "subject": decoded_header(raw_subject),
            "date": msg.get("Date"), "message_id": msg.get("Message-ID"),
            "content_type": msg.get("Content-Type"),
            "body": body.decode(charset) if body is not None else None,
            "header_bytes_ascii": all(b < 128 for b in data.split(b"\r\n\r\n", 1)[0]),
        }
        with open(base + ".eml.tmp", "wb") as f:
            f.write(data)
        os.rename(base + ".eml.tmp", base + ".eml")
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False)
        os.rename(base + ".json.tmp", base + ".json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--port-file")
    ap.add_argument("--mode", choices=["ok", "reject", "stall"], default="ok")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(a.dir, exist_ok=True)
    srv = Server((host.strip("[]"), int(port)), a.dir, a.mode)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
