#!/usr/bin/env python3
"""check_kube.py — the invariants of the Kubernetes fault tests
(tests/integration/test_faults_kube.sh, docs/faults.md).

    check_kube.py LIVE_JSON WANT_DIR NAMESPACE FOREIGN STATE_DIR COMMIT FLOOR_FILE

LIVE_JSON: `kubectl get configmaps -n NAMESPACE -o json` (the real kubectl
against the fake API server). The ConfigMaps labelled managed-by=tagmoor must
be exactly those of WANT_DIR's manifests (*.yaml) with their data; FOREIGN
("NAME RESOURCEVERSION") is someone else's ConfigMap that must be there,
unchanged. STATE_DIR/state.json parses and names COMMIT as applied; the floor
does not go below FLOOR_FILE's (raised). One line per failed check.
"""
import glob
import json
import os
import sys

import yaml

live_json, want_dir, ns, foreign, sd, commit, floor_file = sys.argv[1:8]
fails = []


def fail(check, msg):
    fails.append("%s: %s" % (check, msg))


want = {}
for f in sorted(glob.glob(os.path.join(want_dir, "*.yaml"))):
    for d in yaml.safe_load_all(open(f)):
        if d and d.get("kind") == "ConfigMap" and d["metadata"].get("namespace") == ns:
            want[d["metadata"]["name"]] = d.get("data") or {}
try:
    live = json.load(open(live_json))["items"]
except Exception as e:  # noqa: BLE001
    live = []
    fail("objects", "kubectl get did not answer: %s" % e)
mine = {}
fname, frv = foreign.split()
seen_foreign = False
for o in live:
    md = o["metadata"]
    if md["name"] == fname:
        seen_foreign = True
        if md.get("resourceVersion") != frv:
            fail("foreign", "%s (not tagmoor's) was changed (resourceVersion %s, was %s)"
                 % (fname, md.get("resourceVersion"), frv))
        continue
    if (md.get("labels") or {}).get("app.kubernetes.io/managed-by") == "tagmoor":
        mine[md["name"]] = o.get("data") or {}
if not seen_foreign:
    fail("foreign", "%s (not tagmoor's) was removed" % fname)
for k in sorted(set(want) | set(mine)):
    if k not in mine:
        fail("objects", "ConfigMap %s missing" % k)
    elif k not in want:
        fail("objects", "ConfigMap %s is from neither revision (not pruned)" % k)
    elif mine[k] != want[k]:
        fail("objects", "ConfigMap %s has %s, want %s" % (k, mine[k], want[k]))

st = None
try:
    st = json.load(open(os.path.join(sd, "state.json")))
except Exception as e:  # noqa: BLE001
    fail("state", "state.json does not parse: %s" % e)
floors = []
if st is not None:
    if (st.get("applied") or {}).get("commit") != commit:
        fail("converged", "applied %s, want %s" % ((st.get("applied") or {}).get("commit"), commit))
    floors.append(int(st.get("accepted_tag_time") or 0))
try:
    floors.append(int(json.load(open(os.path.join(sd, "floor"))).get("accepted_tag_time") or 0))
except FileNotFoundError:
    pass
except Exception as e:  # noqa: BLE001
    fail("state", "floor does not parse: %s" % e)
prev = int(open(floor_file).read().strip() or 0) if os.path.exists(floor_file) else 0
if any(f < prev for f in floors):
    fail("floor", "anti-rollback floor went down: %s < %d" % (floors, prev))
if floors:
    open(floor_file, "w").write("%d\n" % max([prev] + floors))
for f in fails:
    print(f)
