#!/usr/bin/env python3
"""A webhook receiver for the tests, verifying with a third party's library.

Usage: receiver.py DIR

Listens on 127.0.0.1 (a free port, printed as "listening PORT" on stdout)
and, for every POST:
- verifies it with the `standardwebhooks` package (PyPI, the Standard
  Webhooks project's Python library) against the secret in DIR/secret
  (read on every request, so a test can write it after subscribing);
- appends one JSON line to DIR/log: the webhook-id, the body's type and
  data.cursor and data.document.doc, the number of v1 signatures, whether
  it verified (and why not), and what it answered;
- answers as DIR/mode says, read on every request: "ok" (204), a status
  code such as "500", or "slow SECONDS" (waits, then 204); with a status
  code, the body is DIR/problem (application/problem+json) if it exists.

A "start" line is logged before waiting, so a test knows a request is in
flight.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

DIR = sys.argv[1]
LOCK = threading.Lock()


def read(name, default=""):
    try:
        with open(os.path.join(DIR, name)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def log(entry):
    with LOCK, open(os.path.join(DIR, "log"), "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signatures": len(headers.get("webhook-signature", "").split()),
            "content_type": headers.get("content-type"),
            "at": time.time(),
        }
        try:
            Webhook(read("secret")).verify(body, headers, json_parse=False)
            entry["verified"] = True
        except (WebhookVerificationError, ValueError) as e:
            entry["verified"] = False
            entry["why"] = str(e)
        try:
            message = json.loads(body)
            entry["type"] = message.get("type")
            entry["cursor"] = message.get("data", {}).get("cursor")
            entry["doc"] = message.get("data", {}).get("document", {}).get("doc")
            entry["body"] = body.decode()
        except ValueError:
            entry["type"] = None
        mode = read("mode", "ok")
        if mode.startswith("slow"):
            log({**entry, "phase": "start"})
            time.sleep(float(mode.split()[1]))
            status = 204
        elif mode == "ok":
            status = 204
        else:
            status = int(mode)
        log({**entry, "phase": "answered", "status": status})
        problem = read("problem").encode() if status != 204 else b""
        self.send_response(status)
        if problem:
            self.send_header("content-type", "application/problem+json")
        self.send_header("content-length", str(len(problem)))
        self.end_headers()
        if problem:
            self.wfile.write(problem)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
