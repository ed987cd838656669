#!/usr/bin/env python3
"""gitproxy.py — an HTTPS proxy in front of the test git server that injects
faults (tests/integration/test_faults_git.sh, docs/faults.md).

    gitproxy.py --port P --cert server.pem --key server.key --upstream https://localhost:Q
                --ca ca.pem --dir DIR

Every request is forwarded to the upstream (a new TLS connection each) and
its answer relayed with a Content-Length. Before forwarding, the first line
of DIR/script whose PATTERN matches "METHOD PATH" is consumed and applied:
    PATTERN 500            answer 500 itself
    PATTERN reset:N        relay N bytes of the body, then reset the connection (RST)
    PATTERN truncate:N     relay N bytes of the body, then close cleanly
Lines that match nothing stay. Each request is logged to DIR/log
("METHOD PATH ACTION").
"""
import argparse
import http.client
import os
import re
import socket
import ssl
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def take(d, what):
    path = os.path.join(d, "script")
    with LOCK:
        try:
            lines = [l.rstrip("\n") for l in open(path) if l.strip()]
        except FileNotFoundError:
            return None
        for i, l in enumerate(lines):
            pat, _, action = l.rpartition(" ")
            if re.search(pat, what):
                rest = lines[:i] + lines[i + 1:]
                with open(path + ".tmp", "w") as f:
                    f.write("".join(x + "\n" for x in rest))
                os.replace(path + ".tmp", path)
                return action
    return None


def make_handler(args, up, ctx_up):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(data)
                    data += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def handle_one(self):
            data = self.body()
            what = "%s %s" % (self.command, self.path)
            action = take(args.dir, what)
            with LOCK:
                with open(os.path.join(args.dir, "log"), "a") as f:
                    f.write("%s %s\n" % (what, action or "-"))
            if action == "500":
                msg = b"injected fault\n"
                self.send_response(500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
            c = http.client.HTTPSConnection(up.hostname, up.port, context=ctx_up, timeout=60)
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in ("host", "transfer-encoding", "content-length", "connection")}
            hdrs["Host"] = up.netloc
            hdrs["Content-Length"] = str(len(data))
            c.request(self.command, self.path, body=data, headers=hdrs)
            r = c.getresponse()
            payload = r.read()
            c.close()
            self.send_response(r.status, r.reason)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if action and (action.startswith("reset:") or action.startswith("truncate:")):
                n = min(int(action.split(":")[1]), len(payload))
                self.wfile.write(payload[:n])
                self.wfile.flush()
                if action.startswith("reset:"):
                    try:  # linger 0: close() sends a RST, not a FIN
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                self.close_connection = True
                try:
                    self.connection.close()
                except OSError:
                    pass
                return
            self.wfile.write(payload)

        def do_GET(self):
            try:
                self.handle_one()
            except (OSError, ssl.SSLError, http.client.HTTPException):
                self.close_connection = True

        do_POST = do_GET

    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    up = urllib.parse.urlsplit(args.upstream)
    ctx_up = ssl.create_default_context(cafile=args.ca)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, up, ctx_up))
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
