#!/usr/bin/env python3
"""packserver.py — a hostile smart-HTTP git server for tests/integration/test_git_hostile.sh.

It speaks just enough of git's smart HTTP protocol (v0, stateless RPC) for a
fetch: GET /NAME.git/info/refs?service=git-upload-pack answers one ref,
refs/tags/stable, and POST /NAME.git/git-upload-pack answers NAK and a pack
that this script builds itself (object ids are computed here, SHA-1), in
side-band-64k pkt-lines, or raw after NAK for names ending in "-raw". The
packs are what an attacker who controls the server would send:

  zbomb    one commit whose tree holds one blob of ZBOMB_MIB MiB of zeros:
           the blob's zlib stream is ~1/1000 of that (a zlib bomb)
  wide     WIDE_N blobs of WIDE_MIB MiB of zeros each (plus a line): every one under
           max_fetch, together far past what a fetch may inflate
  dbomb    a 64 KiB blob and a delta (OFS_DELTA) on it of a few hundred bytes
           that builds an object of DBOMB_MIB MiB (a delta bomb)
  many     a pack header that announces 2,000,000 objects
  liar     a blob whose zlib stream inflates to more than its header declares
  small    a valid small commit (checks the server itself)

Usage: packserver.py PORT CERT KEY   (TLS; prints READY when listening)
Sizes come from the environment (ZBOMB_MIB=2048, WIDE_N=12, WIDE_MIB=48,
DBOMB_MIB=1024). Each POST is logged to stderr as "POST NAME BYTES".
"""
import hashlib
import http.server
import os
import socketserver
import ssl
import struct
import sys
import zlib

MIB = 1 << 20


def oid(kind, data_iter, size):
    h = hashlib.sha1(b"%s %d\0" % (kind, size))
    for chunk in data_iter:
        h.update(chunk)
    return h.digest()


def zeros(n, chunk=8 * MIB):
    while n > 0:
        k = min(n, chunk)
        yield bytes(k)
        n -= k


def deflate(chunks):
    z = zlib.compressobj(9)
    out = [z.compress(c) for c in chunks]
    out.append(z.flush())
    return b"".join(out)


def deflate_zeros(prefix, m, chunk=8 * MIB):
    """zlib stream of prefix + m zero bytes, quickly: after a sync flush the
    compressor's state repeats from chunk to chunk, so the middle chunks' output
    is one repeated piece; the trailer's Adler-32 is patched for the real length."""
    k = m // chunk
    if m % chunk or k < 4:
        return deflate([prefix] + list(zeros(m)))
    z = zlib.compressobj(9)
    zc = bytes(chunk)
    a = z.compress(prefix + zc) + z.flush(zlib.Z_SYNC_FLUSH)
    b = z.compress(zc) + z.flush(zlib.Z_SYNC_FLUSH)
    c = z.compress(zc) + z.flush(zlib.Z_SYNC_FLUSH)
    if b != c:
        return deflate([prefix] + list(zeros(m)))
    f = z.compress(zc) + z.flush()
    ad = zlib.adler32(prefix)
    lo, hi = ad & 0xFFFF, ad >> 16
    hi = (hi + lo * m) % 65521
    out = a + b * (k - 2) + f[:-4] + struct.pack(">I", (hi << 16) | lo)
    return out


def entry_header(kind, size):
    b = bytearray()
    c = (kind << 4) | (size & 15)
    size >>= 4
    while size:
        b.append(c | 0x80)
        c = size & 0x7F
        size >>= 7
    b.append(c)
    return bytes(b)


def ofs_encode(off):
    b = bytearray([off & 0x7F])
    off >>= 7
    while off:
        off -= 1
        b.insert(0, 0x80 | (off & 0x7F))
        off >>= 7
    return bytes(b)


def varint(n):
    b = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        if n:
            b.append(c | 0x80)
        else:
            b.append(c)
            return bytes(b)


class Pack:
    def __init__(self):
        self.entries = []  # raw entry bytes
        self.count = None

    def add(self, kind, size, zdata, prefix=b""):
        off = sum(len(e) for e in self.entries) + 12
        self.entries.append(entry_header(kind, size) + prefix + zdata)
        return off

    def data(self):
        n = len(self.entries) if self.count is None else self.count
        body = b"PACK" + struct.pack(">II", 2, n) + b"".join(self.entries)
        return body + hashlib.sha1(body).digest()


def commit_for(pack, tree_entries):
    """tree_entries: list of (mode, name, oid bytes). Adds tree and commit; returns commit oid hex."""
    tree = b"".join(b"%s %s\0" % (m, n) + o for m, n, o in sorted(tree_entries, key=lambda e: e[1]))
    tree_oid = hashlib.sha1(b"tree %d\0" % len(tree) + tree).digest()
    pack.add(2, len(tree), zlib.compress(tree))
    commit = (b"tree " + tree_oid.hex().encode() + b"\n"
              b"author h <h@example.invalid> 1700000000 +0000\n"
              b"committer h <h@example.invalid> 1700000000 +0000\n\nhostile\n")
    commit_oid = hashlib.sha1(b"commit %d\0" % len(commit) + commit).hexdigest()
    pack.add(1, len(commit), zlib.compress(commit))
    return commit_oid


def build(name):
    base = name[:-4] if name.endswith("-raw") else name
    pack = Pack()
    if base == "zbomb":
        n = int(os.environ.get("ZBOMB_MIB", "2048")) * MIB
        blob = oid(b"blob", zeros(n), n)
        pack.add(3, n, deflate_zeros(b"", n))
        head = commit_for(pack, [(b"100644", b"zeros.bin", blob)])
    elif base == "wide":
        k, m = int(os.environ.get("WIDE_N", "12")), int(os.environ.get("WIDE_MIB", "48")) * MIB
        ents = []
        for i in range(k):
            first = b"%d\n" % i
            n = len(first) + m
            ents.append((b"100644", b"z%02d.bin" % i, oid(b"blob", [first] + list(zeros(m)), n)))
            pack.add(3, n, deflate_zeros(first, m))
        head = commit_for(pack, ents)
    elif base == "dbomb":
        bsize = 64 * 1024
        basedata = b"a" * bsize
        boid = hashlib.sha1(b"blob %d\0" % bsize + basedata).digest()
        boff = pack.add(3, bsize, zlib.compress(basedata))
        result = int(os.environ.get("DBOMB_MIB", "1024")) * MIB
        # copy instruction 0x80: offset 0, size 0x10000 (all zero means 64 KiB)
        delta = varint(bsize) + varint(result) + b"\x80" * (result // 0x10000)
        doff = sum(len(e) for e in pack.entries) + 12
        pack.add(6, len(delta), zlib.compress(delta, 9), prefix=ofs_encode(doff - boff))
        head = commit_for(pack, [(b"100644", b"base.bin", boid)])
    elif base == "many":
        blob = b"x"
        pack.add(3, 1, zlib.compress(blob))
        pack.count = 2000000
        head = "1" * 40
    elif base == "liar":
        data = b"0123456789" * 1000
        pack.add(3, 100, zlib.compress(data))
        head = commit_for(pack, [(b"100644", b"x", hashlib.sha1(b"blob 100\0" + data[:100]).digest())])
    elif base == "small":
        data = b"hello\n"
        boid = hashlib.sha1(b"blob %d\0" % len(data) + data).digest()
        pack.add(3, len(data), zlib.compress(data))
        head = commit_for(pack, [(b"100644", b"hello.txt", boid)])
    else:
        return None
    return head, pack.data()


CACHE = {}


def get(name):
    if name not in CACHE:
        CACHE[name] = build(name)
    return CACHE[name]


def pkt(data):
    return b"%04x" % (len(data) + 4) + data


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def name(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        return parts[0][:-4] if parts and parts[0].endswith(".git") else None

    def send(self, ctype, body):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        name = self.name()
        got = get(name) if name else None
        if not got or "service=git-upload-pack" not in self.path:
            self.send_error(404)
            return
        head = got[0]
        caps = b"multi_ack_detailed no-done ofs-delta" + (b"" if name.endswith("-raw") else b" side-band-64k")
        body = pkt(b"# service=git-upload-pack\n") + b"0000"
        body += pkt(head.encode() + b" refs/tags/stable\0" + caps + b"\n") + b"0000"
        self.send("application/x-git-upload-pack-advertisement", body)

    def do_POST(self):
        name = self.name()
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        got = get(name) if name else None
        if not got:
            self.send_error(404)
            return
        data = got[1]
        sys.stderr.write("POST %s %d\n" % (name, len(data)))
        sys.stderr.flush()
        body = pkt(b"NAK\n")
        if name.endswith("-raw"):
            body += data
        else:
            for i in range(0, len(data), 65515):
                body += pkt(b"\x01" + data[i:i + 65515])
            body += b"0000"
        self.send("application/x-git-upload-pack-result", body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    for name in sys.argv[4:]:  # build these before answering (they take a while)
        get(name)
    srv = Server(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("READY", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
