#!/usr/bin/env bash
# test_kube_large.sh — issue 16: upstream manifests at their real size, through `tagmoor sync` from a
# signed repository served over HTTPS to the fake API server (tests/fakekube).
#
# Generated at test time by bench/manifests.py in the shape of the real files (nothing copied):
# an install file like Argo CD's install.yaml (~1.9 MB, 60 documents, three large CRDs, namespaced
# objects without a namespace, applied with [kubernetes] default_namespace = argocd) and a CRD with
# a 3.5 MB OpenAPI schema (like prometheus-operator's largest). Checked object by object on the
# server; the peak RSS of the sync (/usr/bin/time -v) is asserted within TM_LARGE_RSS_KIB.
# Then each limit, just under (applies) and just over (refused, nothing sent, the file, the limit
# and its [kubernetes] key named): max_file, max_document and max_total at their defaults (16 MiB,
# 8 MiB, 64 MiB: comment-only documents pad the files), max_nodes at its default (500,000: refused
# side; the accepted side is in test_kube.c), and all four lowered in the INI (256 KiB, 128 KiB,
# 10,000 nodes, 1 MiB) with both sides applied through a second agent. Last, kubectl as the oracle:
# a fresh device and `kubectl apply --server-side -n argocd` leave the same objects on an emptied server.
#
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/fakekube/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap openssl curl /usr/bin/time
fk_pick_python || { echo "FAIL: python3 with PyYAML (Debian: python3-yaml) is missing"; exit 1; }
tm_tmpdir
tm_git_server_start || exit 1
fk_start --delay 0.2 --crd-delay 0.2 || { echo "FAIL: fakekube did not start"; exit 1; }
T=$TM_TMP
GEN=("$FK_PYTHON" "$TM_SOURCE_DIR/bench/manifests.py")
# Peak RSS allowed for the sync of the upstream-sized revision (5.5 MB of YAML, 62 objects; about
# 32 MiB measured, of which some 14 MiB is the process before any manifest is read).
RSS_MAX=${TM_LARGE_RSS_KIB:-49152}
PASS=0 FAIL=0
ok() { echo "ok   - $1"; PASS=$((PASS + 1)); }
bad() { echo "FAIL - $1"; FAIL=$((FAIL + 1)); }
is() { [ "$1" = "$2" ]; }
has() { grep -qF -- "$2" <<<"$1"; }
expect() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; echo "$LAST" | tail -15 | sed 's/^/     | /'; fi
}
status() {
	"$TAGMOOR" -c "${INI:-$T/a.ini}" status --json 2>/dev/null |
		fk_py -c "import json,sys; s=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"
}

# --- signing and the repository ---------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C release@example.com -f "$T/key"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/key.pub")" >"$T/allowed_signers"
work=$(tm_repo_new fleet)
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/key"
git -C "$work" config core.bigFileThreshold 64m
TAGTIME=$(($(date +%s) - 7200))
N=0
release() {
	git -C "$work" add -A >/dev/null
	git -C "$work" commit -q --allow-empty -m "$1"
	TAGTIME=$((TAGTIME + 60))
	N=$((N + 1))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "release $N: $1" stable >/dev/null 2>&1
	git -C "$work" push -q -f origin HEAD:refs/heads/main refs/tags/stable 2>/dev/null
}
write_ini() { # file device state paths [extra [kubernetes] lines]
	fk_write_ini "$1" "$2" "$3" "$FK_KUBECONFIG" "$4" 60s "default_namespace = argocd
${5:-}"
}
write_ini "$T/a.ini" edge-a "$T/state-a" k8s
write_ini "$T/b.ini" edge-b "$T/state-b" limits "max_file = 256KiB
max_document = 128KiB
max_nodes = 10000
max_total = 1MiB"
# sync [ini]: LAST = output, RC = exit status, RSS = peak RSS in KiB
sync() {
	LAST=$(/usr/bin/time -v -o "$T/time.txt" "$TAGMOOR" -c "${1:-$T/a.ini}" sync 2>&1)
	RC=$?
	RSS=$(awk '/Maximum resident set size/ { print $NF }' "$T/time.txt")
}
# refused DESC NEEDLE...: the last sync failed naming everything given and sent no write
refused() {
	local d=$1 n
	shift
	expect "$d: exit 1" is "$RC" 1
	for n in "$@"; do expect "$d: says \"$n\"" has "$LAST" "$n"; done
	expect "$d: nothing written to the cluster" is "$(reqs 'sum(v for k,v in r["by_verb"].items() if k in ("patch","post","put","delete"))')" 0
}

# check FILE...: every object of the files is live as written (desired ⊆ live, recursively), in
# default_namespace when it names none, with tagmoor's labels. Prints the mismatches.
check() {
	"${GEN[@]}" objects "$@" >"$T/objects.jsonl"
	fk_py - "$T/objects.jsonl" "$FK_URL" "$FK_CA" "$FK_CLIENT_CERT" "$FK_CLIENT_KEY" <<'PY'
import json, ssl, sys, urllib.request, urllib.error
objs, url, ca, cert, key = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Role": "roles",
          "ClusterRole": "clusterroles", "RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings",
          "ConfigMap": "configmaps", "Secret": "secrets", "Service": "services", "Deployment": "deployments",
          "StatefulSet": "statefulsets", "NetworkPolicy": "networkpolicies",
          "CustomResourceDefinition": "customresourcedefinitions"}
cluster = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
def sub(a, b, path):
    if isinstance(a, dict):
        if not isinstance(b, dict):
            return path
        for k, v in a.items():
            if k not in b:
                return path + "." + k
            p = sub(v, b[k], path + "." + k)
            if p:
                return p
        return None
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b)):
            p = sub(x, y, "%s[%d]" % (path, i))
            if p:
                return p
        return None
    return None if a == b else path
n = bad = 0
for line in open(objs):
    o = json.loads(line)
    n += 1
    av, kind, md = o["apiVersion"], o["kind"], o["metadata"]
    base = "/api/" + av if "/" not in av else "/apis/" + av
    ns = None if kind in cluster else md.get("namespace") or "argocd"
    p = base + ("/namespaces/" + ns if ns else "") + "/" + plural[kind] + "/" + md["name"]
    try:
        with urllib.request.urlopen(urllib.request.Request(url + p), context=ctx, timeout=30) as r:
            live = json.load(r)
    except urllib.error.HTTPError as e:
        print("%s: %d" % (p, e.code)); bad += 1; continue
    want = {k: v for k, v in o.items() if k not in ("metadata", "status")}
    wm = {k: v for k, v in md.items() if k not in ("namespace",)}
    d = sub(want, live, "") or sub(wm, live.get("metadata", {}), ".metadata")
    lab = live["metadata"].get("labels", {})
    if d:
        print("%s: differs at %s" % (p, d)); bad += 1
    elif lab.get("app.kubernetes.io/managed-by") != "tagmoor" or not lab.get("tagmoor.dev/owner"):
        print("%s: not labelled" % p); bad += 1
    elif ns and live["metadata"].get("namespace") != ns:
        print("%s: in %s" % (p, live["metadata"].get("namespace"))); bad += 1
print("%d objects, %d bad" % (n, bad))
PY
}

# --- upstream sizes ----------------------------------------------------------------------
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: argocd\n' >"$work/k8s-ns.yaml"
mkdir -p "$work/k8s/argocd" "$work/k8s/monitoring"
mv "$work/k8s-ns.yaml" "$work/k8s/00-namespace.yaml"
"${GEN[@]}" install "$work/k8s/argocd/install.yaml" 1950000
"${GEN[@]}" crd "$work/k8s/monitoring/prometheuses.yaml" monitoring.example.com Prometheus 3500000
FILES=("$work/k8s/00-namespace.yaml" "$work/k8s/argocd/install.yaml" "$work/k8s/monitoring/prometheuses.yaml")
NOBJ=$(cat "${FILES[@]}" | grep -c '^kind: ')
release "upstream sizes"
reset_reqs
t0=$(date +%s%N)
sync
t1=$(date +%s%N)
echo "# upstream-sized revision: $(du -cb "${FILES[@]}" | tail -1 | cut -f1) bytes, $NOBJ objects:" \
	"peak RSS $RSS KiB, $(((t1 - t0) / 1000000)) ms"
expect "upstream sizes: exit 0" is "$RC" 0
expect "upstream sizes: synced, every object applied" is "$(status 's["state"], s["kubernetes"]["applied"]')" "('synced', $NOBJ)"
LAST=$(check "${FILES[@]}")
expect "upstream sizes: every object live as written, namespaced ones in default_namespace" \
	is "$(tail -1 <<<"$LAST")" "$NOBJ objects, 0 bad"
expect "upstream sizes: peak RSS $RSS KiB within $RSS_MAX KiB" test "$RSS" -le "$RSS_MAX"
# no custom resource of these CRDs in the revision: nothing waits for them, so their apply answers
# (megabytes: the whole schema) are asked for as metadata only
expect "upstream sizes: the 3.5 MB CRD's apply answered with its metadata only" \
	is "$(reqs '[(l["content_type"].split(";")[1], l["bytes"] < 1000000) for l in r["log"] if l["method"]=="PATCH" and "monitoring.example.com" in l["path"]]')" "[('as=PartialObjectMetadata', True)]"
sync
expect "upstream sizes, an idle poll: exit 0, nothing to do" is "$RC $(grep -c 'nothing to do' <<<"$LAST")" "0 1"

# --- max_file and max_document at their defaults ------------------------------------------------
# pad FILE AT_FILE_CAP_DELTA DOC1_DELTA: the install file followed by two comment-only documents,
# the first exactly 8 MiB (+DOC1_DELTA), the file exactly 16 MiB (+AT_FILE_CAP_DELTA)
pad() {
	fk_py - "$@" <<'PY'
import sys
f, fd, dd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
head = open(f).read()
if "# pad" in head:
    head = head[:head.index("---\n# pad")]
doc1 = (8 << 20) + dd
rest = (16 << 20) + fd - len(head) - 4 - doc1 - 4
def comments(n):  # exactly n bytes of comment lines
    line = "# pad " + "x" * 73 + "\n"
    k, r = divmod(n, len(line))
    if r == 1:
        return line * (k - 1) + "# pad " + "x" * 74 + "\n"
    return line * k + ("#" + "y" * (r - 2) + "\n" if r else "")
out = head + "---\n" + comments(doc1) + "---\n" + comments(rest)
assert len(out) == (16 << 20) + fd, len(out)
open(f, "w").write(out)
PY
}
pad "$work/k8s/argocd/install.yaml" 0 0
release "16 MiB file, one document of 8 MiB"
reset_reqs
sync
expect "file at 16 MiB with a document at 8 MiB: exit 0" is "$RC" 0
expect "file at 16 MiB: nothing to change" is "$(status 's["kubernetes"]["applied"]')" 0
echo "# 16 MiB file: peak RSS $RSS KiB"
pad "$work/k8s/argocd/install.yaml" 1 0
release "16 MiB + 1"
reset_reqs
sync
refused "file at 16 MiB + 1" "k8s/argocd/install.yaml: 16777217 bytes is over the limit of 16777216 bytes per file" \
	"[kubernetes] max_file"
pad "$work/k8s/argocd/install.yaml" 0 1
release "a document of 8 MiB + 1"
reset_reqs
sync
refused "document at 8 MiB + 1" "k8s/argocd/install.yaml: document 61" \
	"8388609 bytes is over the limit of 8388608 bytes for one document" "[kubernetes] max_document"
# max_nodes at its default: 500,002 nodes in one document
pad "$work/k8s/argocd/install.yaml" 0 0
"${GEN[@]}" nodes "$work/k8s/nodes.yaml" 500002 many
release "500,002 nodes"
reset_reqs
sync
refused "500,002 nodes in one document" "k8s/nodes.yaml: document 1" "more than 500000 nodes in one document" \
	"[kubernetes] max_nodes"
rm "$work/k8s/nodes.yaml"
# max_total at its default: the 16 MiB file, two more comment files of 16 MiB, and what is left
for i in 1 2; do cp "$work/k8s/argocd/install.yaml" "$work/k8s/pad-$i.yaml"; pad "$work/k8s/pad-$i.yaml" 0 0; done
fk_py - "$work/k8s" <<'PY'
import os, sys
d = sys.argv[1]
for i in (1, 2):  # comments only: no objects, no duplicate ids
    p = os.path.join(d, "pad-%d.yaml" % i)
    s = open(p).read()
    open(p, "w").write("".join(l if l.startswith(("#", "---")) or l == "\n" else "#" + l[1:] for l in s.splitlines(True)))
PY
pad "$work/k8s/argocd/install.yaml" 0 0
used=$(find "$work/k8s" -name '*.yaml' -printf '%s\n' | awk '{ s += $1 } END { print s }')
left=$(((64 << 20) - used))
fk_py - "$work/k8s/zz-rest.yaml" "$left" <<'PY'
import sys
n = int(sys.argv[2])  # comment documents of at most 4 MiB, exactly n bytes in all
line, out = "#" * 79 + "\n", []
while n > 0:
    k = min(n, 4 << 20)
    body = k - (4 if out else 0)
    q, r = divmod(body, 80)
    out.append(("---\n" if out else "") + line * q + ("#" * (r - 1) + "\n" if r else ""))
    n -= k
s = "".join(out)
assert len(s) == int(sys.argv[2])
open(sys.argv[1], "w").write(s)
PY
release "64 MiB under the paths"
reset_reqs
sync
expect "files adding up to 64 MiB: exit 0" is "$RC" 0
echo "# 64 MiB under the paths: peak RSS $RSS KiB"
printf '#\n' >>"$work/k8s/zz-rest.yaml"
release "64 MiB + 2"
reset_reqs
sync
refused "files adding up to 64 MiB + 2" "k8s/zz-rest.yaml: the files under the kubernetes paths add up to more than the limit of 67108864 bytes" \
	"[kubernetes] max_total"
rm -f "$work"/k8s/pad-*.yaml "$work/k8s/zz-rest.yaml"
"${GEN[@]}" install "$work/k8s/argocd/install.yaml" 1950000
release "upstream sizes again"
sync
expect "back to the upstream files: exit 0" is "$RC" 0

# --- the four limits lowered in the INI: just under applies, just over is refused -----------------
# layout DIR FILE_DELTA DOC_DELTA NODES TOTAL_DELTA: f1-f4.yaml of 2 documents each (f1 exactly
# 256 KiB + FILE_DELTA, its first document exactly 128 KiB; f2's first 128 KiB + DOC_DELTA), nodes.yaml
# one document of NODES nodes, f4 filling the total to exactly 1 MiB + TOTAL_DELTA
layout() {
	rm -rf "$1"
	mkdir -p "$1"
	"${GEN[@]}" nodes "$1/nodes.yaml" "$4" counted
	fk_py - "$@" "$TM_SOURCE_DIR/bench" <<'PY'
import os, sys
d, fdel, ddel, nodes, tdel, bench = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
sys.path.insert(0, bench)
from manifests import padded_text
K = 1024
def two(name, first, total):
    return padded_text(first, name + "-a") + "---\n" + padded_text(total - first - 4, name + "-b")
files = {"f1.yaml": two("f1", 128 * K, 256 * K + fdel),
         "f2.yaml": two("f2", 128 * K + ddel, 256 * K),
         "f3.yaml": two("f3", 128 * K - 100, 256 * K - 200)}
used = sum(len(t) for t in files.values()) + os.path.getsize(os.path.join(d, "nodes.yaml"))
files["f4.yaml"] = two("f4", 128 * K - 50, 1024 * K + tdel - used)
for n, t in files.items():
    open(os.path.join(d, n), "w").write(t)
PY
}
lim=$work/limits
layout "$lim" 0 0 10000 0
release "limits lowered: everything at its limit"
reset_reqs
sync "$T/b.ini"
expect "lowered limits, all at the cap: exit 0" is "$RC" 0
LAST=$(check "$lim"/*.yaml)
expect "lowered limits, all at the cap: every object live" is "$(tail -1 <<<"$LAST")" "9 objects, 0 bad"
layout "$lim" 1 0 10000 -1
release "lowered: a file of 256 KiB + 1"
reset_reqs
sync "$T/b.ini"
refused "lowered max_file + 1" "limits/f1.yaml: 262145 bytes is over the limit of 262144 bytes per file" "[kubernetes] max_file"
layout "$lim" 0 1 10000 0
release "lowered: a document of 128 KiB + 1"
reset_reqs
sync "$T/b.ini"
refused "lowered max_document + 1" "limits/f2.yaml: document 1 (line 1): 131073 bytes is over the limit of 131072 bytes for one document" \
	"[kubernetes] max_document"
layout "$lim" 0 0 10002 0
release "lowered: 10,002 nodes"
reset_reqs
sync "$T/b.ini"
refused "lowered max_nodes + 2" "limits/nodes.yaml: document 1" "more than 10000 nodes in one document" "[kubernetes] max_nodes"
layout "$lim" 0 0 10000 1
release "lowered: 1 MiB + 1 in total"
reset_reqs
sync "$T/b.ini"
refused "lowered max_total + 1" "limits/nodes.yaml: the files under the kubernetes paths add up to more than the limit of 1048576 bytes" \
	"[kubernetes] max_total"
layout "$lim" 0 0 10000 0
release "lowered: back at the caps"
sync "$T/b.ini"
expect "lowered limits, back at the cap: exit 0" is "$RC" 0
sync
expect "the first agent is unaffected: exit 0" is "$RC" 0

# --- kubectl as the oracle: the upstream-sized revision, applied by a fresh device and by
# `kubectl apply --server-side -n argocd` to an emptied server, leaves the same objects (apart
# from the server's bookkeeping, status, and tagmoor's own labels and annotations) -------------
if command -v kubectl >/dev/null 2>&1; then
	dump() { fk_ctl GET /fakekube/objects >"$1"; }
	write_ini "$T/c.ini" edge-c "$T/state-c" k8s
	fk_ctl POST /fakekube/reset >/dev/null
	sync "$T/c.ini"
	expect "oracle: a fresh device applies the upstream-sized revision" is "$RC" 0
	dump "$T/by-tagmoor.json"
	fk_ctl POST /fakekube/reset >/dev/null
	LAST=$(kubectl --kubeconfig "$FK_KUBECONFIG" --cache-dir "$T/kube-cache" apply --server-side \
		--force-conflicts -n argocd -R -f "$work/k8s" 2>&1)
	expect "oracle: kubectl applies the same files" is "$?" 0
	dump "$T/by-kubectl.json"
	LAST=$(fk_py - "$T/by-tagmoor.json" "$T/by-kubectl.json" <<'PY'
import json, sys
def objs(path):
    out = {}
    for o in json.load(open(path))["items"]:
        md = dict(o["metadata"])
        for k in ("managedFields", "uid", "resourceVersion", "creationTimestamp", "generation"):
            md.pop(k, None)
        for k in ("labels", "annotations"):
            d = {a: b for a, b in (md.get(k) or {}).items()
                 if not a.startswith("tagmoor.dev/") and a != "app.kubernetes.io/managed-by"}
            md.pop(k, None)
            if d:
                md[k] = d
        if o["kind"] == "Lease" and md["name"].startswith("tagmoor-"):
            continue  # tagmoor's apply lease (docs/kubernetes.md), not an object of the files
        o = {k: v for k, v in o.items() if k != "status"}
        o["metadata"] = md
        out[(o["apiVersion"], o["kind"], md.get("namespace", ""), md["name"])] = o
    return out
a, b = objs(sys.argv[1]), objs(sys.argv[2])
bad = 0
for k in sorted(set(a) | set(b)):
    if k not in a or k not in b:
        print("%s: only %s" % ("/".join(k), "kubectl" if k in b else "tagmoor")); bad += 1
    elif a[k] != b[k]:
        print("%s: differs" % "/".join(k)); bad += 1
print("%d objects, %d differ" % (len(b), bad))
PY
)
	expect "oracle: the same objects as kubectl's: $(tail -1 <<<"$LAST")" \
		has "$(tail -1 <<<"$LAST")" " objects, 0 differ"
else
	echo "SKIP (counted as neither) - oracle: kubectl is not installed"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
