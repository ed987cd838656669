#!/usr/bin/env python3
"""check_systemd.py — the invariants after a pass killed at a fault point and
the recovery pass (tests/integration/test_faults.sh, docs/faults.md).

    check_systemd.py UNIT_DIR STATE_DIR WANT_DIR COMMIT FOREIGN_LIST FLOOR_FILE

UNIT_DIR must hold exactly the files of WANT_DIR (the expected revision's
units, byte for byte) plus the foreign files listed in FOREIGN_LIST ("PATH
SHA256" lines, relative to UNIT_DIR, untouched), no temp file, no empty
drop-in directory and no enablement link to a unit that is gone;
STATE_DIR/state.json parses, names COMMIT as applied and owns exactly the
revision's ids; the anti-rollback floor (state.json and the floor file) is not
below the one recorded in FLOOR_FILE, which is then raised. One line per
failed check, "CHECK: detail"; nothing when all hold.
"""
import hashlib
import json
import os
import re
import sys

ud, sd, want_dir, commit, foreign_list, floor_file = sys.argv[1:7]
temp = re.compile(r"^\..+\.tagmoor-tmp-[A-Za-z0-9]{6}$|\.tmp\.[A-Za-z0-9]{6}$")
fails = []


def fail(check, msg):
    fails.append("%s: %s" % (check, msg))


def walk_files(top):
    out = {}
    for d, dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, top)] = p
    return out


want = {k: open(p, "rb").read() for k, p in walk_files(want_dir).items()} if os.path.isdir(want_dir) else {}
foreign = {}
for line in open(foreign_list) if os.path.exists(foreign_list) else []:
    if line.strip():
        path, digest = line.split()
        foreign[path] = digest

have, links = {}, []
for d, dirs, files in os.walk(ud):
    for f in files + dirs:
        if temp.search(f):
            fail("temps", os.path.join(d, f))
    for f in files:
        p = os.path.join(d, f)
        rel = os.path.relpath(p, ud)
        if os.path.islink(p):
            links.append(rel)
        elif not temp.search(f):
            have[rel] = open(p, "rb").read()
    for f in dirs:
        p = os.path.join(d, f)
        if os.path.islink(p):
            links.append(os.path.relpath(p, ud))
        elif f.endswith(".d") and not os.listdir(p):
            fail("content", "empty drop-in directory %s left" % os.path.relpath(p, ud))

for k, digest in foreign.items():
    if k not in have:
        fail("foreign", "%s (not tagmoor's) was removed" % k)
    elif hashlib.sha256(have[k]).hexdigest() != digest:
        fail("foreign", "%s (not tagmoor's) was changed" % k)
for k in sorted(set(want) | set(have)):
    if k in foreign:
        continue
    if k not in have:
        fail("content", "%s missing" % k)
    elif k not in want:
        fail("content", "%s is from neither revision (left over)" % k)
    elif want[k] != have[k]:
        fail("content", "%s differs from the revision (%d bytes, want %d: half-written?)"
             % (k, len(have[k]), len(want[k])))
for k in sorted(k for k, v in want.items() if "/" not in k and b"[Install]" in v):
    if not any(os.path.basename(l) == k for l in links):
        fail("enabled", "%s is not enabled" % k)
for l in links:
    if (".wants/" in l or ".requires/" in l) and os.path.basename(l) not in want \
            and os.path.basename(l) not in foreign:
        fail("enabled", "%s enables a unit that is gone" % l)

st = None
try:
    st = json.load(open(os.path.join(sd, "state.json")))
except Exception as e:  # noqa: BLE001 — any failure to parse is the finding
    fail("state", "state.json does not parse: %s" % e)
if st is not None:
    applied = (st.get("applied") or {}).get("commit")
    if applied != commit:
        fail("converged", "applied commit %s, want %s" % (applied, commit))
    inv = sorted(((st.get("inventory") or {}).get("systemd")) or [])
    if inv != sorted(want):
        fail("inventory", "not owned: %s; owned but not in the revision: %s"
             % (sorted(set(want) - set(inv)), sorted(set(inv) - set(want))))

floors = []
if st is not None:
    floors.append(int(st.get("accepted_tag_time") or 0))
try:
    fl = json.load(open(os.path.join(sd, "floor")))
    floors.append(int(fl.get("accepted_tag_time") or 0))
except FileNotFoundError:
    pass
except Exception as e:  # noqa: BLE001
    fail("state", "floor does not parse: %s" % e)
prev = int(open(floor_file).read().strip() or 0) if os.path.exists(floor_file) else 0
for f in floors:
    if f < prev:
        fail("floor", "anti-rollback floor went down: %d < %d" % (f, prev))
if floors:
    with open(floor_file, "w") as f:
        f.write("%d\n" % max([prev] + floors))
for f in fails:
    print(f)
