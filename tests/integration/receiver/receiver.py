#!/usr/bin/env python3
"""receiver.py — a scripted status-report receiver for the reporting tests.

HTTPS with client-certificate checking (the test CA of lib.sh's tm_make_ca):
a client without a certificate signed by that CA never gets an answer.

    receiver.py --port P --cert server.pem --key server.key --ca ca.pem --dir DIR
                [--bearer TOKEN]

Every request is appended to DIR/requests.jsonl as one JSON object
{"n", "time", "method", "path", "headers", "body", "status", "client"}.
The answer of each request (other than /alert*, always 200) is the first line of DIR/script (the line is
consumed; an empty or missing script answers 200):
    200 | 500 | 400 | 408 | 429         that status
    429:N | 503:N                        that status with Retry-After: N
    hang:N                               read the request, say nothing for N s, close
With --bearer, a request without "Authorization: Bearer TOKEN" gets 401.
"""
import argparse
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNT = [0]


def next_action(d):
    path = os.path.join(d, "script")
    with LOCK:
        try:
            with open(path) as f:
                lines = [l.strip() for l in f if l.strip()]
        except FileNotFoundError:
            lines = []
        if not lines:
            return "200"
        first, rest = lines[0], lines[1:]
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(l + "\n" for l in rest))
        os.replace(tmp, path)
        return first


def make_handler(d, bearer):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(n) if n else b""
            # alerts are answered 200 and never consume the script
            action = "200" if self.path.startswith("/alert") else next_action(d)
            status = 200
            if bearer is not None and self.headers.get("Authorization") != "Bearer " + bearer:
                action = "401"
            peer = self.connection.getpeercert() or {}
            cn = ""
            for rdn in peer.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
            rec = {"time": time.time(), "method": self.command, "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace"), "action": action, "client": cn}
            if action.startswith("hang"):
                secs = float(action.split(":")[1]) if ":" in action else 30
                rec["status"] = None
                self.record(rec)
                time.sleep(secs)
                self.close_connection = True
                return
            retry = None
            if ":" in action:
                action, retry = action.split(":", 1)
            status = int(action)
            rec["status"] = status
            self.record(rec)
            out = json.dumps({"status": status}).encode()
            self.send_response(status)
            if retry is not None:
                self.send_header("Retry-After", retry)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_PUT = do_POST

        def record(self, rec):
            with LOCK:
                COUNT[0] += 1
                rec["n"] = COUNT[0]
                with open(os.path.join(d, "requests.jsonl"), "a") as f:
                    f.write(json.dumps(rec) + "\n")
    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bearer")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(a.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(a.dir, a.bearer))
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
