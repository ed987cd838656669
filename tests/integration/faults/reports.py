#!/usr/bin/env python3
"""reports.py — what the report receiver got, against what the device issued
(tests/integration/test_faults.sh, docs/faults.md).

    reports.py REQUESTS_JSONL PATH STATE_DIR

Prints "issued received lost dup pending": issued = the highest seq the device
gave out (state.json, floor, report.last, the spool); received = distinct seqs
answered with a 2xx on PATH; lost = seqs 1..issued neither received nor
waiting in STATE_DIR/spool; dup = deliveries of a seq beyond its first;
pending = reports still in the spool. Then "gaps: N N ..." when some are lost.
"""
import collections
import json
import os
import re
import sys

reqs, path, sd = sys.argv[1:4]
got = collections.Counter()
for line in open(reqs) if os.path.exists(reqs) else []:
    if not line.strip():
        continue
    r = json.loads(line)
    if r.get("path") != path or not r.get("status") or not 200 <= r["status"] < 300:
        continue
    try:
        got[int(json.loads(r["body"])["seq"])] += 1
    except (ValueError, KeyError, TypeError):
        pass
spool = set()
sp = os.path.join(sd, "spool")
for f in os.listdir(sp) if os.path.isdir(sp) else []:
    m = re.match(r"^(\d+)\.json$", f)
    if m:
        spool.add(int(m.group(1)))
issued = max(list(got) + list(spool) + [0])
for name in ("state.json", "floor"):
    try:
        issued = max(issued, int(json.load(open(os.path.join(sd, name))).get("seq") or 0))
    except (OSError, ValueError):
        pass
try:
    m = re.search(r"seq=(\d+)", open(os.path.join(sd, "report.last")).readline())
    if m:
        issued = max(issued, int(m.group(1)))
except OSError:
    pass
lost = [s for s in range(1, issued + 1) if s not in got and s not in spool]
dup = sum(c - 1 for c in got.values())
print(issued, len(got), len(lost), dup, len(spool))
if lost:
    print("gaps:", " ".join(map(str, lost[:40])))
