#!/usr/bin/env python3
"""Local stand-ins for Slack, an SMS gateway and a mail relay: records each
HTTP POST (Slack at /slack, SMS at /sms) and each mail, one JSON line per
message with the time it arrived (`at`, Unix seconds), in
DIR/{slack,sms,email}.jsonl.

usage: sink.py HTTP_PORT SMTP_PORT DIR
The SMTP side uses aiosmtpd when it is installed (pip install aiosmtpd);
without it only HTTP is recorded."""
import http.server
import json
import os
import sys
import threading
import time

http_port, smtp_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
lock = threading.Lock()


def record(kind, doc):
    doc = {"at": time.time(), **doc}
    with lock, open(os.path.join(out, kind + ".jsonl"), "a") as f:
        f.write(json.dumps(doc) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8", "replace")
        kind = "sms" if self.path.startswith("/sms") else "slack"
        record(kind, {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


try:
    from aiosmtpd.controller import Controller

    class Mail:
        async def handle_DATA(self, server, session, envelope):
            record("email", {"from": envelope.mail_from, "to": envelope.rcpt_tos,
                             "data": envelope.content.decode("utf-8", "replace")})
            return "250 OK"

    Controller(Mail(), hostname="127.0.0.1", port=smtp_port).start()
except ImportError:
    print("sink: aiosmtpd is not installed; mails are not recorded", file=sys.stderr)

http.server.ThreadingHTTPServer(("127.0.0.1", http_port), Handler).serve_forever()
