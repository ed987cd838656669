#!/usr/bin/env bash
# test_kube_sync.sh — issue item 7: Kubernetes through `tagmoor sync`, from a signed repository
# served over real HTTPS (nginx + git http-backend) to the fake API server (tests/fakekube).
#
# Revisions, each a newly signed tag: create; update; prune; a CRD and its custom resource in one
# revision; CRDs without custom resources of theirs, not waited on with wait = 0; a Deployment that never becomes available (exit 1, the object named in the status,
# the last good revision re-applied: state rolled_back, the broken object pruned, the changed
# ConfigMap back); hostile revisions (billion laughs, a symbolic link, a missing kind, 10,000-deep
# nesting) apply nothing; an object that another owner took over is never pruned; two agents on
# one cluster at the same time: both succeed, one applies.
#
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/fakekube/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap openssl curl
fk_pick_python || { echo "FAIL: python3 with PyYAML (Debian: python3-yaml) is missing"; exit 1; }
tm_tmpdir
tm_git_server_start || exit 1
fk_start --delay 0.3 --crd-delay 0.3 || { echo "FAIL: fakekube did not start"; exit 1; }
T=$TM_TMP
PASS=0 FAIL=0
ok() { echo "ok   - $1"; PASS=$((PASS + 1)); }
bad() { echo "FAIL - $1"; FAIL=$((FAIL + 1)); }
is() { [ "$1" = "$2" ]; }
not() { ! "$@"; }
has() { grep -qF -- "$2" <<<"$1"; }
expect() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; echo "$LAST" | tail -15 | sed 's/^/     | /'; fi
}
# status EXPR: evaluate EXPR on the last status document (s) of state dir $STATE
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
TAGTIME=$(($(date +%s) - 7200))
N=0
# release MSG: commit the work tree and move the signed tag `stable` to it
release() {
	git -C "$work" add -A >/dev/null
	git -C "$work" commit -q --allow-empty -m "$1"
	TAGTIME=$((TAGTIME + 60))
	N=$((N + 1))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "release $N: $1" stable >/dev/null 2>&1
	git -C "$work" push -q -f origin HEAD:refs/heads/main refs/tags/stable 2>/dev/null
}
k8s() { mkdir -p "$(dirname "$work/k8s/$1")"; cat >"$work/k8s/$1"; }

write_ini() { fk_write_ini "$1" "$2" "$3" "$FK_KUBECONFIG" k8s 10s; } # file device state
write_ini "$T/a.ini" edge-a "$T/state-a"
write_ini "$T/b.ini" edge-b "$T/state-b"
# sync [ini]: LAST = output, RC = exit status
sync() {
	LAST=$("$TAGMOOR" -c "${1:-$T/a.ini}" sync 2>&1)
	RC=$?
}

# --- create ------------------------------------------------------------------
k8s base.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {colour: blue, site: "${site}"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: extra, namespace: shop}
data: {a: "1"}
EOF
k8s web.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.25"}]
EOF
release "create"
sync
expect "create: exit 0" is "$RC" 0
expect "create: synced, 4 applied" is "$(status 's["state"], s["kubernetes"]["applied"]')" "('synced', 4)"
expect "create: objects live" is "$(field /apis/apps/v1/namespaces/shop/deployments/web 'o["spec"]["replicas"]')" 2
expect "create: \${vars} left alone when unknown" \
	is "$(field /api/v1/namespaces/shop/configmaps/settings 'o["data"]["site"]')" '${site}'
sync
expect "idle: exit 0, nothing applied" is "$RC" 0

# --- update --------------------------------------------------------------------
sed -i 's/colour: blue/colour: green/' "$work/k8s/base.yaml"
release "update"
sync
expect "update: exit 0" is "$RC" 0
expect "update: one applied, three unchanged" \
	is "$(status 's["kubernetes"]["applied"], s["kubernetes"]["unchanged"]')" "(1, 3)"
expect "update: live" is "$(field /api/v1/namespaces/shop/configmaps/settings 'o["data"]["colour"]')" green

# --- prune ---------------------------------------------------------------------
python3 - "$work/k8s/base.yaml" <<'EOF'
import sys
p = sys.argv[1]
docs = open(p).read().split("---\n")
open(p, "w").write("---\n".join(d for d in docs if "name: extra" not in d))
EOF
release "prune"
sync
expect "prune: exit 0, one pruned" is "$RC $(status 's["kubernetes"]["pruned"]')" "0 1"
expect "prune: gone from the cluster" is "$(field /api/v1/namespaces/shop/configmaps/extra 'o is None')" True

# --- CRD and custom resource in one revision -------------------------------------
k8s crd.yaml <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: carts.shop.example.com}
spec:
  group: shop.example.com
  scope: Namespaced
  names: {plural: carts, singular: cart, kind: Cart, listKind: CartList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {items: {type: integer}}}
---
apiVersion: shop.example.com/v1
kind: Cart
metadata: {name: c1, namespace: shop}
spec: {items: 3}
EOF
release "crd"
sync
expect "CRD + CR: exit 0" is "$RC" 0
expect "CRD + CR: custom resource live" is "$(field /apis/shop.example.com/v1/namespaces/shop/carts/c1 'o["spec"]["items"]')" 3
GOOD=$(git -C "$work" rev-parse HEAD)

# --- CRDs without custom resources that need them: not waited on with wait = 0 ----------
# (kubectl does not wait either; a CRD of megabytes would be read back once per poll.) A
# device with wait = 0 applies this revision from scratch: the Cart kind is served already and
# the new Widget CRD has no custom resources in it, so no CRD is read after its apply.
k8s widget-crd.yaml <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.shop.example.com}
spec:
  group: shop.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
EOF
release "a CRD alone"
fk_write_ini "$T/c.ini" edge-c "$T/state-c" "$FK_KUBECONFIG" k8s 0
fk_ctl POST /fakekube/requests/reset >/dev/null
sync "$T/c.ini"
expect "CRD alone, wait = 0: exit 0" is "$RC" 0
LAST=$(fk_ctl GET /fakekube/requests | fk_py -c '
import json, sys
log = json.load(sys.stdin)["log"]
crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
patched = [i for i, l in enumerate(log) if l["method"] == "PATCH" and l["path"].startswith(crd)]
after = [l["path"] for l in log[max(patched or [0]) + 1:] if l["method"] == "GET" and l["path"].startswith(crd)]
print(len(patched), len(after), *after)')
expect "CRD alone, wait = 0: both CRDs applied, none read back after" is "$LAST" "2 0"
expect "CRD alone, wait = 0: the CRD is live" is "$(field /apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.shop.example.com 'o["spec"]["names"]["kind"]')" Widget
git -C "$work" rm -q k8s/widget-crd.yaml
release "the CRD alone removed"

# --- a Deployment that never becomes available ------------------------------------
sed -i 's/colour: green/colour: red/' "$work/k8s/base.yaml"
k8s broken.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: shop
  annotations: {fake.tagmoor.dev/fail: "true"}
spec:
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers: [{name: c, image: "busybox"}]
EOF
release "broken"
sync
expect "never available: exit 1" is "$RC" 1
expect "never available: named in the output" has "$LAST" "apps/Deployment/shop/broken"
expect "never available: rolled back" is "$(status 's["state"]')" rolled_back
expect "never available: the error names the object" \
	has "$(status '[e["object"] for e in s["errors"]]')" "apps/Deployment/shop/broken"
expect "never available: last good re-applied (ConfigMap back)" \
	is "$(field /api/v1/namespaces/shop/configmaps/settings 'o["data"]["colour"]')" green
expect "never available: the broken Deployment removed again" \
	is "$(field /apis/apps/v1/namespaces/shop/deployments/broken 'o is None')" True
expect "never available: last good commit kept" is "$(status 's["last_good_commit"]')" "$GOOD"
rm "$work/k8s/broken.yaml"
sed -i 's/colour: red/colour: green/' "$work/k8s/base.yaml"
release "fixed"
sync
expect "fixed: exit 0" is "$RC" 0

# --- hostile revisions: nothing applied -------------------------------------------
hostile() { # name
	case $1 in
	billion-laughs)
		{
			printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol, namespace: shop}\ndata:\n'
			printf '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
			for i in 1 2 3 4 5 6 7 8 9; do
				j=$((i - 1))
				printf '  a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n' $i $i $j $j $j $j $j $j $j $j $j
			done
		} >"$work/k8s/hostile.yaml" ;;
	symlink) ln -s /etc/passwd "$work/k8s/hostile.yaml" ;;
	missing-kind) printf 'apiVersion: v1\nmetadata: {name: nokind, namespace: shop}\n' >"$work/k8s/hostile.yaml" ;;
	deep) python3 -c 'print("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep, namespace: shop}\ndata: {x: " + "["*10000 + "]"*10000 + "}")' >"$work/k8s/hostile.yaml" ;;
	esac
}
for h in billion-laughs symlink missing-kind deep; do
	sed -i 's/colour: green/colour: hostile/' "$work/k8s/base.yaml"
	hostile $h
	release "hostile $h"
	reset_reqs
	sync
	expect "hostile ($h): exit 1" is "$RC" 1
	expect "hostile ($h): nothing sent to the cluster" is "$(reqs 'r["by_verb"].get("patch",0)')" 0
	expect "hostile ($h): ConfigMap untouched" \
		is "$(field /api/v1/namespaces/shop/configmaps/settings 'o["data"]["colour"]')" green
	rm -f "$work/k8s/hostile.yaml"
	sed -i 's/colour: hostile/colour: green/' "$work/k8s/base.yaml"
done
release "clean again"
sync
expect "after hostile revisions: a good one applies" is "$RC" 0

# --- an object another owner manages is never pruned ---------------------------------
k8s handover.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: handover, namespace: shop}
data: {a: "1"}
EOF
release "handover"
sync
kapi PATCH /api/v1/namespaces/shop/configmaps/handover \
	'{"metadata":{"labels":{"tagmoor.dev/owner":"another-repository"}}}' >/dev/null
rm "$work/k8s/handover.yaml"
release "handover removed"
sync
expect "another owner: exit 0" is "$RC" 0
expect "another owner: not pruned" is "$(field /api/v1/namespaces/shop/configmaps/handover 'o["data"]["a"]')" 1

# --- a revision that declares someone else's objects ------------------------------------
# Another team's Namespace with its things in it: a revision that names it must not make it
# tagmoor's (a later revision without it would prune the Namespace and everything in it).
kapi POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ops"}}' application/json >/dev/null
kapi POST /api/v1/namespaces/ops/configmaps \
	'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"runbook","namespace":"ops"},"data":{"k":"v"}}' application/json >/dev/null
k8s takeover.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: runbook, namespace: ops}
data: {k: mine}
EOF
release "take over ops"
reset_reqs
sync
expect "foreign: exit 1" is "$RC" 1
expect "foreign: says why" has "$LAST" "/Namespace//ops exists and was not applied by tagmoor; refusing to take it over"
expect "foreign: the error names the object" has "$(status '[e["object"] for e in s["errors"]]')" "/Namespace//ops"
expect "foreign: nothing of it written" \
	is "$(field /api/v1/namespaces/ops/configmaps/runbook 'o["data"]["k"]+" "+str(o["metadata"].get("labels"))')" "v None"
expect "foreign: Namespace not labelled" \
	is "$(field /api/v1/namespaces/ops 'o["metadata"].get("labels",{}).get("tagmoor.dev/owner")')" None
rm "$work/k8s/takeover.yaml"
release "ops dropped"
sync
expect "foreign dropped: exit 0" is "$RC" 0
expect "foreign dropped: the Namespace is not pruned" is "$(field /api/v1/namespaces/ops 'o is not None')" True
expect "foreign dropped: nor what is in it" is "$(field /api/v1/namespaces/ops/configmaps/runbook 'o["data"]["k"]')" v

# drift repair on an idle poll never takes over an object someone else made in place of tagmoor's
kapi DELETE /api/v1/namespaces/shop/configmaps/settings >/dev/null
kapi POST /api/v1/namespaces/shop/configmaps \
	'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"shop"},"data":{"colour":"theirs"}}' application/json >/dev/null
sync
expect "drift, replaced object: exit 1" is "$RC" 1
expect "drift, replaced object: says why" has "$LAST" "/ConfigMap/shop/settings exists and is not tagmoor's any more"
expect "drift, replaced object: not taken over" \
	is "$(field /api/v1/namespaces/shop/configmaps/settings 'o["data"]["colour"]+" "+str(o["metadata"].get("labels"))')" "theirs None"
kapi DELETE /api/v1/namespaces/shop/configmaps/settings >/dev/null
sync
expect "drift, replaced object gone: made again" is "$RC $(field /api/v1/namespaces/shop/configmaps/settings 'o["data"]["colour"]')" "0 green"

# --- two agents on one cluster --------------------------------------------------------
sync "$T/b.ini" # agent b catches up first (it applies: nobody else holds the lease)
sed -i 's/replicas: 2/replicas: 3/' "$work/k8s/web.yaml"
sed -i 's/colour: green/colour: both/' "$work/k8s/base.yaml"
release "two agents"
fk_ctl POST /fakekube/config '{"latency": 0.05}' >/dev/null
reset_reqs
"$TAGMOOR" -c "$T/a.ini" sync >"$T/a.log" 2>&1 &
pa=$!
"$TAGMOOR" -c "$T/b.ini" sync >"$T/b.log" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
fk_ctl POST /fakekube/config '{"latency": 0}' >/dev/null
LAST="$(cat "$T/a.log") /// $(cat "$T/b.log")"
expect "two agents: both exit 0" is "$ra $rb" "0 0"
aa=$(INI=$T/a.ini status 's["kubernetes"]["applied"]')
ab=$(INI=$T/b.ini status 's["kubernetes"]["applied"]')
expect "two agents: one applied (2 objects), the other nothing" \
	is "$(printf '%s\n' "$aa" "$ab" | sort | tr '\n' ' ')" "0 2 "
expect "two agents: the other says who applies" has "$LAST" "holds the apply lease"
expect "two agents: one set of changes" is "$(reqs 'r["by_verb"].get("patch",0)')" 5
expect "two agents: result live" is "$(field /apis/apps/v1/namespaces/shop/deployments/web 'o["spec"]["replicas"]')" 3

# --- the cluster unreachable: not the revision's fault ----------------------------------
sed -E 's#(server: *https://localhost:)[0-9]+#\11#' "$FK_KUBECONFIG" >"$T/down.kubeconfig"
sed "s#^kubeconfig = .*#kubeconfig = $T/down.kubeconfig#" "$T/a.ini" >"$T/down.ini"
sed -i 's/colour: both/colour: outage/' "$work/k8s/base.yaml"
nbad() { fk_py -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["bad"]))' "$T/state-a/state.json"; }
BAD0=$(nbad)
release "during an outage"
sync "$T/down.ini"
expect "cluster unreachable: exit 3 (unreachable), not 1" is "$RC" 3
expect "cluster unreachable: the revision is not marked bad" is "$(nbad)" "$BAD0"
m0=$(stat -c %Y.%y "$T/state-a/state.json")
sync "$T/down.ini"
expect "still unreachable: state.json not rewritten by the retry" is "$(stat -c %Y.%y "$T/state-a/state.json")" "$m0"
expect "still unreachable: exit 3 again, no 'failed before'" is "$RC $(grep -c 'failed before' <<<"$LAST")" "3 0"
sync
expect "the cluster is back: the same revision applies (exit 0)" is "$RC" 0
expect "the cluster is back: live" is "$(field /api/v1/namespaces/shop/configmaps/settings 'o["data"]["colour"]')" outage

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
