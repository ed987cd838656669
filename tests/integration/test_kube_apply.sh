#!/usr/bin/env bash
# test_kube_apply.sh — the Kubernetes applier against the fake API server (tests/fakekube, which
# the real kubectl agrees with), driven through tests/tools/tm-kube-drive: the applier table as a
# reconcile pass runs it, without Git and state.json (test_kube_sync.sh does the same through
# `tagmoor sync`).
#
# Covered: create (Namespace, ConfigMap in the default namespace, Deployment, CRD + custom
# resource of one revision, a cluster-scoped custom kind), labels, idempotent re-apply (unchanged),
# update, one TLS connection per pass, legacy discovery, bearer-token kubeconfig, diff (prints,
# changes nothing), prune (owned objects only; an object relabelled by another owner is kept on the
# cluster and dropped from the inventory; a failed delete stays in the inventory), health (a
# Deployment that never becomes available fails naming it; a slow one times out), API errors
# (422 with causes, 403, an injected 409, an unknown kind before anything is applied), a 3 MB answer
# to a create (drained on the same connection) and a 17 MB one (over the limit, refused), refused
# files (nothing sent), drift (edited and deleted objects repaired), the apply lease (a live holder
# makes this node skip, an expired one is taken over, two agents at once: one applies), --root.
set -u
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/fakekube/lib.sh"
tm_need openssl curl

BUILD=$(cd "$(dirname "$TAGMOOR")" && pwd)
DRIVE=${TM_KUBE_DRIVE:-$BUILD/tests/tools/tm-kube-drive}
[ -x "$DRIVE" ] || { echo "FAIL: $DRIVE not built"; exit 1; }
fk_pick_python || { echo "FAIL: python3 with PyYAML (Debian: python3-yaml) is missing"; exit 1; }
tm_tmpdir
fk_start --delay 0.3 --crd-delay 0.3 || { echo "FAIL: fakekube did not start"; exit 1; }
T=$TM_TMP
INV=$T/inventory
REPO=$T/repo
mkdir -p "$REPO"

PASS=0 FAIL=0
ok() { echo "ok   - $1"; PASS=$((PASS + 1)); }
bad() { echo "FAIL - $1"; FAIL=$((FAIL + 1)); }

# drive CMD [ARGS]: the applier on $REPO; result lines in $OUT, log in $ERR, exit status in $RC.
drive() {
	local cmd=$1
	shift
	"$DRIVE" "$cmd" --from "$REPO" --inventory "$INV" --kubeconfig "${KC:-$FK_KUBECONFIG}" \
		--url https://git.example.com/fleet.git --device "${DEVICE:-edge-1}" --wait "${WAIT:-10000}" \
		"$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
kv() { sed -n "s/^$1=//p" <<<"$OUT" | head -1; }
expect() { # desc cond...
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; echo "$OUT" | sed 's/^/     | /'; echo "$ERR" | tail -5 | sed 's/^/     ! /'; fi
}
is() { [ "$1" = "$2" ]; }
not() { ! "$@"; }
has() { grep -qF -- "$2" <<<"$1"; }
write() { mkdir -p "$(dirname "$REPO/$1")"; cat >"$REPO/$1"; }

OWNER=$(printf %s https://git.example.com/fleet.git | sha256sum | cut -c1-16)

# ------------------------------------------------------------ create
write ns.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: demo
EOF
write app/config.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: "on"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: shared
  namespace: demo
data:
  a: "1"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: gone
  namespace: demo
data:
  a: "1"
EOF
write app/web.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
EOF
write crd/widgets.yaml <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
EOF
write crd/instances.yaml <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: demo
spec:
  size: 3
---
apiVersion: example.com/v1
kind: Gadget
metadata:
  name: g1
spec:
  colour: blue
EOF
reset_reqs
drive sync
expect "create: exit 0" is "$RC" 0
expect "create: one TLS connection for the pass" is "$(reqs 'r["connections"]')" 1
expect "create: 9 objects applied" is "$(kv applied) $(kv unchanged)" "9 0"
expect "create: ConfigMap without a namespace is in default" \
	is "$(field /api/v1/namespaces/default/configmaps/settings 'o["data"]["mode"]')" on
expect "create: labels managed-by and owner" \
	is "$(field /api/v1/namespaces/demo/configmaps/shared 'o["metadata"]["labels"]["app.kubernetes.io/managed-by"]+" "+o["metadata"]["labels"]["tagmoor.dev/owner"]')" "tagmoor $OWNER"
expect "create: field manager tagmoor, Apply" \
	is "$(field /apis/apps/v1/namespaces/demo/deployments/web '[(m["manager"],m["operation"]) for m in o["metadata"]["managedFields"] if m["manager"]=="tagmoor"]')" "[('tagmoor', 'Apply')]"
expect "create: CRD and custom resource of one revision" \
	is "$(field /apis/example.com/v1/namespaces/demo/widgets/w1 'o["spec"]["size"]')" 3
expect "create: cluster-scoped custom kind" is "$(field /apis/example.com/v1/gadgets/g1 'o["spec"]["colour"]')" blue
expect "create: ids in the inventory" \
	has "$(cat "$INV")" "example.com/Widget/demo/w1"
expect "create: cluster-scoped custom id has no namespace" has "$(cat "$INV")" "example.com/Gadget//g1"
expect "create: aggregated discovery (no per-group GETs)" is "$(reqs 'r["by_method_path"].get("GET /apis/apps/v1",0)')" 0
# an apply's answer is asked for as metadata only where nothing else of it is read (the CRD's,
# waited on for Established, is read whole)
expect "create: the Deployment's apply answered with its metadata only" \
	is "$(reqs '[l["content_type"].split(";")[1] for l in r["log"] if l["method"]=="PATCH" and "/deployments/web" in l["path"]]')" "['as=PartialObjectMetadata']"
expect "create: the two CRDs' applies answered whole" \
	is "$(reqs '[l["content_type"] for l in r["log"] if l["method"]=="PATCH" and "customresourcedefinitions/" in l["path"]]')" "['application/json', 'application/json']"

# ------------------------------------------------------------ idempotent
reset_reqs
rv=$(field /apis/apps/v1/namespaces/demo/deployments/web 'o["metadata"]["resourceVersion"]')
drive sync
expect "re-apply: nothing changed" is "$RC $(kv applied) $(kv unchanged)" "0 0 9"
expect "re-apply: resourceVersion kept" is "$(field /apis/apps/v1/namespaces/demo/deployments/web 'o["metadata"]["resourceVersion"]')" "$rv"
expect "re-apply: one PATCH per object, no more" is "$(reqs 'r["by_verb"].get("patch",0)')" 9

# ------------------------------------------------------------ diff, then update
sed -i 's/replicas: 2/replicas: 3/' "$REPO/app/web.yaml"
drive diff
expect "diff: exit 0, one object would change" is "$RC $(kv applied) $(kv unchanged)" "0 1 8"
expect "diff: names the field" has "$OUT" "spec.replicas: 2 -> 3"
expect "diff: changed nothing" is "$(field /apis/apps/v1/namespaces/demo/deployments/web 'o["spec"]["replicas"]')" 2
drive sync
expect "update: one configured" is "$RC $(kv applied) $(kv unchanged) $(kv changed)" "0 1 8 apps/Deployment/demo/web"
expect "update: live" is "$(field /apis/apps/v1/namespaces/demo/deployments/web 'o["spec"]["replicas"]')" 3

# ------------------------------------------------------------ legacy discovery, token credentials
reset_reqs
TAGMOOR_TEST_KUBE_LEGACY_DISCOVERY=1 KC=$FK_KUBECONFIG_TOKEN drive sync
expect "legacy discovery + bearer token: converged" is "$RC $(kv applied) $(kv unchanged)" "0 0 9"
expect "legacy discovery: group versions fetched when needed" is "$(reqs 'r["by_method_path"].get("GET /apis/apps/v1",0)')" 1

# in-cluster service account: the token file is read again every pass (rotation)
SA=$T/sa
mkdir -p "$SA"
cp "$FK_CA" "$SA/ca.crt"
printf 'sa-token-one\n' >"$SA/token"
fk_ctl POST /fakekube/config "{\"tokens\":{\"$FK_TOKEN\":\"tagmoor-token\",\"sa-token-one\":\"system:serviceaccount:kube-system:tagmoor\"}}" >/dev/null
incluster() {
	KUBERNETES_SERVICE_HOST=localhost KUBERNETES_SERVICE_PORT=$FK_PORT TAGMOOR_TEST_KUBE_SA_DIR=$SA \
		"$DRIVE" sync --from "$REPO" --inventory "$INV" --url https://git.example.com/fleet.git \
		--device edge-1 --wait 10000 >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
incluster
expect "in-cluster: service account token" is "$RC $(kv unchanged)" "0 9"
printf 'sa-token-two' >"$SA/token"
fk_ctl POST /fakekube/config "{\"tokens\":{\"$FK_TOKEN\":\"tagmoor-token\",\"sa-token-two\":\"system:serviceaccount:kube-system:tagmoor\"}}" >/dev/null
incluster
expect "in-cluster: the rotated token is read" is "$RC $(kv unchanged)" "0 9"
printf 'sa-token-revoked' >"$SA/token"
incluster
expect "in-cluster: a refused token is an apply failure naming the answer" has "$RC $(kv error)" "1 kubernetes: discovery GET /api: 401 Unauthorized"

# a group version that fails discovery is tolerated until an object needs it
fk_ctl POST /fakekube/config '{"faults":[{"method":"GET","path":"^/apis/batch/v1$","code":503,"count":100}]}' >/dev/null
TAGMOOR_TEST_KUBE_LEGACY_DISCOVERY=1 drive sync
expect "failing group tolerated: converged" is "$RC $(kv unchanged)" "0 9"
write app/job.yaml <<'EOF'
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: demo}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
EOF
TAGMOOR_TEST_KUBE_LEGACY_DISCOVERY=1 drive sync
expect "failing group: the object that needs it fails, named" is "$RC $(kv error_object)" "1 batch/Job/demo/once"
expect "failing group: message" has "$(kv error)" "batch/v1 does not answer discovery"
fk_ctl POST /fakekube/config '{"faults":[]}' >/dev/null
rm "$REPO/app/job.yaml"

# ------------------------------------------------------------ prune
python3 - "$REPO/app/config.yaml" <<'EOF'
import sys
p = sys.argv[1]
docs = open(p).read().split("---\n")
open(p, "w").write("---\n".join(d for d in docs if "name: shared" not in d and "name: gone" not in d))
EOF
# another tool takes "shared" over: its owner label changes
kapi PATCH /api/v1/namespaces/demo/configmaps/shared '{"metadata":{"labels":{"tagmoor.dev/owner":"someone-else"}}}' >/dev/null
drive diff
expect "diff: prune listed" has "$OUT" "- /ConfigMap/demo/gone (prune)"
expect "diff: another owner's object not listed" not has "$OUT" "shared (prune)"
drive sync
expect "prune: exit 0, one pruned" is "$RC $(kv pruned)" "0 1"
expect "prune: owned object deleted" is "$(field /api/v1/namespaces/demo/configmaps/gone 'o is None')" True
expect "prune: another owner's object kept on the cluster" is "$(field /api/v1/namespaces/demo/configmaps/shared 'o["data"]["a"]')" 1
expect "prune: and dropped from the inventory" not has "$(cat "$INV")" "/ConfigMap/demo/shared"
expect "prune: the reason is logged" has "$ERR" "another owner manages it"

# a failed delete stays in the inventory and is retried next time
write app/doomed.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: doomed, namespace: demo}
EOF
drive sync
rm "$REPO/app/doomed.yaml"
fk_ctl POST /fakekube/config '{"faults":[{"method":"DELETE","path":"configmaps/doomed","code":500,"count":50}]}' >/dev/null
drive sync
expect "failed delete: exit 1 naming the object" is "$RC $(kv error_object)" "1 /ConfigMap/demo/doomed"
expect "failed delete: kept" is "$(kv kept)" "/ConfigMap/demo/doomed"
expect "failed delete: still in the inventory" has "$(cat "$INV")" "/ConfigMap/demo/doomed"
expect "failed delete: message" has "$(kv error)" "prune /ConfigMap/demo/doomed"
fk_ctl POST /fakekube/config '{"faults":[]}' >/dev/null
drive sync
expect "failed delete: retried and pruned" is "$RC $(kv pruned)" "0 1"
expect "failed delete: out of the inventory" not has "$(cat "$INV")" "doomed"

# ------------------------------------------------------------ health
write app/broken.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: demo
  annotations: {fake.tagmoor.dev/fail: "true"}
spec:
  selector:
    matchLabels: {app: broken}
  template:
    metadata:
      labels: {app: broken}
    spec:
      containers: [{name: c, image: "busybox"}]
EOF
drive sync
expect "never available: exit 1" is "$RC" 1
expect "never available: unhealthy names it" is "$(kv unhealthy)" "apps/Deployment/demo/broken"
expect "never available: message" has "$(kv error)" "apps/Deployment/demo/broken failed: Progress deadline exceeded"
rm "$REPO/app/broken.yaml"
drive sync
write app/slow.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: slow
  namespace: demo
  annotations: {fake.tagmoor.dev/delay: "60s"}
spec:
  selector:
    matchLabels: {app: slow}
  template:
    metadata:
      labels: {app: slow}
    spec:
      containers: [{name: c, image: "busybox"}]
EOF
WAIT=1500 drive sync
expect "slow: times out naming it" is "$RC $(kv unhealthy)" "1 apps/Deployment/demo/slow"
expect "slow: message" has "$(kv error)" "not ready within 2 s"
WAIT=0 drive sync
expect "wait = 0: not waited on" is "$RC" 0
rm "$REPO/app/slow.yaml"
drive sync

# ------------------------------------------------------------ API errors
write app/bad.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: demo}
spec:
  template:
    spec:
      containers: [{name: c}]
EOF
drive sync
expect "422: exit 1, object named" is "$RC $(kv error_object)" "1 apps/Deployment/demo/bad"
expect "422: message with the source and causes" has "$(kv error)" "apply apps/Deployment/demo/bad (app/bad.yaml): 422 Invalid"
rm "$REPO/app/bad.yaml"

fk_ctl POST /fakekube/config '{"faults":[{"method":"PATCH","path":"configmaps/settings","code":409,"reason":"Conflict","message":"Operation cannot be fulfilled on configmaps \"settings\": the object has been modified","count":1}]}' >/dev/null
drive sync
expect "409: exit 1 with the message" has "$RC $(kv error)" "409 Conflict: Operation cannot be fulfilled"
fk_ctl POST /fakekube/config '{"faults":[]}' >/dev/null

# an answer nothing reads (a created object's, megabytes for a CRD) is drained, not kept, on the
# same connection; over the answer limit it is still refused
write app/padded.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: padded, namespace: demo}
EOF
# padded_sync BYTES: a sync whose apply of "padded" is answered 201 with a body of about BYTES
padded_sync() {
	fk_ctl POST /fakekube/config "{\"faults\":[{\"method\":\"PATCH\",\"path\":\"configmaps/padded\",\"code\":201,\"pad\":$1}]}" >/dev/null
	reset_reqs
	drive sync
}
padded_sync 3000000
expect "3 MB answer to a create: drained, applied" is "$RC $(kv applied)" "0 1"
expect "3 MB answer to a create: one TLS connection" is "$(reqs 'r["connections"]')" 1
padded_sync 17000000
expect "17 MB answer to a create: over the limit, named" is "$RC $(kv error_object)" "1 /ConfigMap/demo/padded"
expect "17 MB answer to a create: message" has "$(kv error)" "response larger than the limit of 16777216 bytes"
fk_ctl POST /fakekube/config '{"faults":[]}' >/dev/null
rm "$REPO/app/padded.yaml"
drive sync

write app/secret.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: demo}
stringData: {a: b}
EOF
fk_ctl POST /fakekube/config '{"users":{"tagmoor-test":{"verbs":["*"],"resources":["configmaps","namespaces","leases","apps/deployments","customresourcedefinitions","widgets","gadgets"]}}}' >/dev/null
drive sync
expect "403: exit 1 naming the Secret" is "$RC $(kv error_object)" "1 /Secret/demo/token"
expect "403: message" has "$(kv error)" "403 Forbidden: secrets \"token\" is forbidden"
fk_ctl POST /fakekube/config '{"users":{}}' >/dev/null
rm "$REPO/app/secret.yaml"

write app/unknown.yaml <<'EOF'
apiVersion: example.com/v1
kind: Sprocket
metadata: {name: s1, namespace: demo}
EOF
reset_reqs
drive sync
expect "unknown kind: exit 1 naming the object" is "$RC $(kv error_object)" "1 example.com/Sprocket/demo/s1"
expect "unknown kind: message" has "$(kv error)" "no kind Sprocket in example.com/v1"
expect "unknown kind: nothing applied" is "$(reqs 'r["by_verb"].get("patch",0)')" 0
rm "$REPO/app/unknown.yaml"

# refused files: nothing is sent at all
for bad in missing-kind deep; do
	case $bad in
	missing-kind) printf 'apiVersion: v1\nmetadata: {name: x}\n' >"$REPO/app/$bad.yaml" ;;
	deep) python3 -c 'print("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata: " + "["*10000 + "]"*10000)' >"$REPO/app/$bad.yaml" ;;
	esac
	reset_reqs
	drive sync
	expect "refused file ($bad): exit 1, nothing sent" is "$RC $(reqs 'r["total"]')" "1 0"
	rm "$REPO/app/$bad.yaml"
done
drive sync
expect "back to converged" is "$RC" 0

# ------------------------------------------------------------ drift
kapi PATCH /api/v1/namespaces/default/configmaps/settings '{"data":{"mode":"off"}}' >/dev/null
kapi DELETE /apis/example.com/v1/namespaces/demo/widgets/w1 >/dev/null
drive drift
expect "drift: both found" is "$RC $(kv drifted)" "0 /ConfigMap/default/settings,example.com/Widget/demo/w1"
expect "drift: edit reverted" is "$(field /api/v1/namespaces/default/configmaps/settings 'o["data"]["mode"]')" on
expect "drift: deleted object back" is "$(field /apis/example.com/v1/namespaces/demo/widgets/w1 'o["spec"]["size"]')" 3
drive drift
expect "drift: none after repair" is "$RC $(kv drifted)" "0 "

# ------------------------------------------------------------ someone else's objects
# The attack: a revision declares objects that exist on the cluster and that tagmoor did not apply
# (another team's Namespace with its things in it, a ConfigMap another tagmoor manages). Server-side
# apply with force would make them tagmoor's, and a later revision without them would prune them.
kapi POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}}' application/json >/dev/null
kapi POST /api/v1/namespaces/team/configmaps \
	'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"precious","namespace":"team"},"data":{"k":"v"}}' application/json >/dev/null
kapi POST /api/v1/namespaces/demo/configmaps \
	'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"theirs","namespace":"demo","labels":{"app.kubernetes.io/managed-by":"tagmoor","tagmoor.dev/owner":"0000000000000000"}},"data":{"k":"theirs"}}' \
	application/json >/dev/null
write takeover.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: v1
kind: ConfigMap
metadata: {name: theirs, namespace: demo}
data: {k: ours}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: innocent, namespace: demo}
data: {k: new}
EOF
reset_reqs
drive sync
expect "foreign: refused, exit 1 naming the first" is "$RC $(kv error_object)" "1 /Namespace//team"
expect "foreign: message" has "$(kv error)" "/Namespace//team exists and was not applied by tagmoor; refusing to take it over (and 1 more)"
expect "foreign: the other one is logged" has "$ERR" "/ConfigMap/demo/theirs (takeover.yaml) exists and was not applied by tagmoor"
expect "foreign: nothing written at all (no PATCH)" is "$(reqs 'r["by_verb"].get("patch",0)')" 0
expect "foreign: nothing recorded" is "$(kv recorded)" ""
expect "foreign: Namespace not labelled" \
	is "$(field /api/v1/namespaces/team 'o["metadata"].get("labels",{}).get("tagmoor.dev/owner")')" None
expect "foreign: another owner's ConfigMap untouched" \
	is "$(field /api/v1/namespaces/demo/configmaps/theirs 'o["data"]["k"]+" "+o["metadata"]["labels"]["tagmoor.dev/owner"]')" "theirs 0000000000000000"
expect "foreign: the new object of the revision not created either" \
	is "$(field /api/v1/namespaces/demo/configmaps/innocent 'o is None')" True
expect "foreign: not in the inventory" not has "$(cat "$INV")" "/Namespace//team"
drive diff
expect "foreign: diff fails the same way" is "$RC $(kv error_object)" "1 /Namespace//team"
expect "foreign: diff marks them" has "$OUT" "kubernetes: ! /Namespace//team (exists and was not applied by tagmoor"
expect "foreign: diff marks the other" has "$OUT" "kubernetes: ! /ConfigMap/demo/theirs"
expect "foreign: diff still shows the new one" has "$OUT" "kubernetes: + /ConfigMap/demo/innocent"
drive sync
expect "foreign: refused again on the next pass" is "$RC $(kv error_object)" "1 /Namespace//team"
# the attacker's next revision drops them: nothing of theirs is pruned
rm "$REPO/takeover.yaml"
drive sync
expect "foreign dropped: exit 0, nothing pruned" is "$RC $(kv pruned)" "0 0"
expect "foreign dropped: the Namespace is still there" is "$(field /api/v1/namespaces/team 'o is not None')" True
expect "foreign dropped: and what is in it" is "$(field /api/v1/namespaces/team/configmaps/precious 'o["data"]["k"]')" v
expect "foreign dropped: another owner's ConfigMap still there" \
	is "$(field /api/v1/namespaces/demo/configmaps/theirs 'o["data"]["k"]')" theirs

# many new objects of one kind (a first apply): one metadata LIST of the kind, not a GET each
python3 -c 'for i in range(12): print("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: many-%d, namespace: demo}\ndata: {k: v}" % i)' \
	>"$REPO/many.yaml"
kapi POST /api/v1/namespaces/demo/configmaps \
	'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"many-7","namespace":"demo"},"data":{"k":"theirs"}}' application/json >/dev/null
reset_reqs
WAIT=0 drive sync
expect "many new: refused naming the foreign one" is "$RC $(kv error_object)" "1 /ConfigMap/demo/many-7"
expect "many new: the labelled LIST and one more, no GET per object" \
	is "$(reqs '(r["by_verb_resource"].get("get configmaps",0), r["by_verb_resource"].get("list configmaps",0))')" "(0, 2)"
expect "many new: nothing written" is "$(reqs 'r["by_verb"].get("patch",0)')" 0
expect "many new: the foreign one untouched" is "$(field /api/v1/namespaces/demo/configmaps/many-7 'o["data"]["k"]')" theirs
fk_ctl POST /fakekube/config '{"faults":[{"method":"GET","path":"^/api/v1/configmaps$","code":403,"count":100}]}' >/dev/null
reset_reqs
WAIT=0 drive sync
fk_ctl POST /fakekube/config '{"faults":[]}' >/dev/null
expect "many new, LIST forbidden: still refused, a GET each" \
	is "$RC $(kv error_object) $(reqs 'r["by_verb_resource"].get("get configmaps",0) >= 12')" "1 /ConfigMap/demo/many-7 True"
kapi DELETE /api/v1/namespaces/demo/configmaps/many-7 >/dev/null
WAIT=0 drive sync
expect "many new: applied once it is gone" is "$RC $(kv changed | tr ',' '\n' | grep -c many-)" "0 12"
rm "$REPO/many.yaml"
WAIT=0 drive sync
expect "many new: pruned" is "$RC $(kv pruned)" "0 12"

# opting in: the annotation on the object in the repository
write takeover.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: team
  annotations: {tagmoor.dev/adopt: "true"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: theirs, namespace: demo}
data: {k: ours}
EOF
drive sync
expect "adopt annotation: only the annotated one is allowed" is "$RC $(kv error_object)" "1 /ConfigMap/demo/theirs"
expect "adopt annotation: message" has "$(kv error)" "/ConfigMap/demo/theirs exists and was not applied by tagmoor; refusing to take it over ("
expect "adopt annotation: still nothing written" \
	is "$(field /api/v1/namespaces/team 'o["metadata"].get("labels",{}).get("tagmoor.dev/owner")')" None
python3 - "$REPO/takeover.yaml" <<'EOF'
import sys
p = sys.argv[1]
docs = open(p).read().split("---\n")
open(p, "w").write("---\n".join(d for d in docs if "name: theirs" not in d))
EOF
drive sync
expect "adopt annotation: taken over" is "$RC $(kv changed)" "0 /Namespace//team"
expect "adopt annotation: recorded before writing" is "$(kv recorded)" "/Namespace//team"
expect "adopt annotation: labelled ours" \
	is "$(field /api/v1/namespaces/team 'o["metadata"]["labels"]["tagmoor.dev/owner"]')" "$OWNER"
expect "adopt annotation: in the inventory" has "$(cat "$INV")" "/Namespace//team"
expect "adopt annotation: logged" has "$ERR" "adopting /Namespace//team"
rm "$REPO/takeover.yaml"
drive sync
expect "adopted and dropped: pruned like any object of tagmoor's" is "$RC $(kv pruned)" "0 1"

# opting in for everything: [kubernetes] adopt = yes
write takeover.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: theirs, namespace: demo}
data: {k: ours}
EOF
drive sync --adopt
expect "adopt = yes: taken over" is "$RC $(kv changed)" "0 /ConfigMap/demo/theirs"
expect "adopt = yes: now ours" \
	is "$(field /api/v1/namespaces/demo/configmaps/theirs 'o["data"]["k"]+" "+o["metadata"]["labels"]["tagmoor.dev/owner"]')" "ours $OWNER"
drive sync
expect "adopted: ours on the next pass without adopt" is "$RC" 0
rm "$REPO/takeover.yaml"
drive sync

# a lost inventory (state directory) heals through the labels, without a GET per object
cp "$INV" "$T/inv.saved"
: >"$INV"
reset_reqs
WAIT=0 drive sync
expect "lost inventory: ours by the labels, exit 0" is "$RC $(kv applied)" "0 0"
expect "lost inventory: everything recorded again" is "$(kv recorded | tr ',' '\n' | sort)" "$(sort "$T/inv.saved")"
expect "lost inventory: no GET of single objects (the labelled LIST answers)" \
	is "$(reqs 'r["by_method_path"].get("GET /api/v1/namespaces/default/configmaps/settings",0)')" 0
reset_reqs
WAIT=0 drive sync
expect "steady state: nothing to record" is "$RC $(kv recorded)" "0 "
expect "steady state: no GET of single objects" \
	is "$(reqs 'r["by_method_path"].get("GET /api/v1/namespaces/default/configmaps/settings",0)')" 0

# the record hook: a failure to record writes nothing
write app/recorded.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: recorded, namespace: demo}
data: {k: v}
EOF
reset_reqs
drive sync --record-fail
expect "record fails: exit 1" is "$RC" 1
expect "record fails: the hook was asked for the new id only" is "$(kv recorded)" "/ConfigMap/demo/recorded"
expect "record fails: message" has "$(kv error)" "record: saving the inventory failed"
expect "record fails: no PATCH" is "$(reqs 'r["by_verb"].get("patch",0)')" 0
expect "record fails: not created" is "$(field /api/v1/namespaces/demo/configmaps/recorded 'o is None')" True
drive sync
expect "record: recorded, then created" is "$RC $(kv recorded) $(kv changed)" "0 /ConfigMap/demo/recorded /ConfigMap/demo/recorded"
rm "$REPO/app/recorded.yaml"
drive sync
expect "record: pruned again" is "$RC $(kv pruned)" "0 1"

# drift: an object of tagmoor's replaced by someone else's is not taken over
kapi DELETE /api/v1/namespaces/default/configmaps/settings >/dev/null
kapi POST /api/v1/namespaces/default/configmaps \
	'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"default"},"data":{"mode":"theirs"}}' application/json >/dev/null
kapi PATCH /apis/example.com/v1/namespaces/demo/widgets/w1 '{"spec":{"size":7}}' >/dev/null
reset_reqs
drive drift
expect "drift, replaced object: exit 1 naming it" is "$RC $(kv error_object)" "1 /ConfigMap/default/settings"
expect "drift, replaced object: message" has "$(kv error)" "drift: /ConfigMap/default/settings exists and is not tagmoor's any more"
expect "drift, replaced object: the other drift repaired" is "$(kv drifted)" "example.com/Widget/demo/w1"
expect "drift, replaced object: repaired" is "$(field /apis/example.com/v1/namespaces/demo/widgets/w1 'o["spec"]["size"]')" 3
expect "drift, replaced object: not written" \
	is "$(field /api/v1/namespaces/default/configmaps/settings 'o["data"]["mode"]+" "+str(o["metadata"].get("labels"))')" "theirs None"
expect "drift, replaced object: no PATCH of it, not even a dry run" \
	is "$(reqs 'r["by_method_path"].get("PATCH /api/v1/namespaces/default/configmaps/settings",0)')" 0
drive drift
expect "drift, replaced object: still refused" is "$RC $(kv drifted)" "1 "
kapi DELETE /api/v1/namespaces/default/configmaps/settings >/dev/null
drive drift
expect "drift, replaced object deleted: made again as tagmoor's" is "$RC $(kv drifted)" "0 /ConfigMap/default/settings"
expect "drift: back" is "$(field /api/v1/namespaces/default/configmaps/settings 'o["data"]["mode"]')" on

# ------------------------------------------------------------ the apply lease
LEASE=tagmoor-$(printf 'https://git.example.com/fleet.git\nrefs/tags/stable' | sha256sum | cut -c1-16)
expect "lease: released after the pass" \
	is "$(field /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/$LEASE 'o["spec"].get("holderIdentity")')" None
NOWT=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
kapi PUT /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/$LEASE \
	"{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":\"$LEASE\",\"namespace\":\"kube-system\"},\"spec\":{\"holderIdentity\":\"edge-9\",\"leaseDurationSeconds\":60,\"renewTime\":\"$NOWT\",\"acquireTime\":\"$NOWT\",\"leaseTransitions\":3}}" \
	application/json >/dev/null
sed -i 's/replicas: 3/replicas: 1/' "$REPO/app/web.yaml"
reset_reqs
drive sync
expect "live holder: this node skips successfully" is "$RC $(kv applied)" "0 0"
expect "live holder: says who applies" has "$ERR" "node edge-9 holds the apply lease"
expect "live holder: nothing written" is "$(reqs 'r["by_verb"].get("patch",0)')" 0
OLDT=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%S.000000Z)
kapi PATCH /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/$LEASE \
	"{\"spec\":{\"renewTime\":\"$OLDT\"}}" >/dev/null
drive sync
expect "expired holder: taken over and applied" is "$RC $(kv applied)" "0 1"
expect "expired holder: a transition" \
	is "$(field /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/$LEASE 'o["spec"]["leaseTransitions"]')" 4

# two agents at once (slow server so that the passes overlap): exactly one applies
sed -i 's/replicas: 1/replicas: 2/' "$REPO/app/web.yaml"
cp "$INV" "$T/inv2"
fk_ctl POST /fakekube/config '{"latency": 0.05}' >/dev/null
reset_reqs
("$DRIVE" sync --from "$REPO" --inventory "$INV" --kubeconfig "$FK_KUBECONFIG" --url https://git.example.com/fleet.git \
	--device node-a --wait 10000 >"$T/a.out" 2>"$T/a.err") &
pa=$!
("$DRIVE" sync --from "$REPO" --inventory "$T/inv2" --kubeconfig "$FK_KUBECONFIG" --url https://git.example.com/fleet.git \
	--device node-b --wait 10000 >"$T/b.out" 2>"$T/b.err") &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
fk_ctl POST /fakekube/config '{"latency": 0}' >/dev/null
aa=$(sed -n 's/^applied=//p' "$T/a.out") ab=$(sed -n 's/^applied=//p' "$T/b.out")
OUT="a: $(cat "$T/a.out") b: $(cat "$T/b.out")"
expect "two agents: both exit 0" is "$ra $rb" "0 0"
expect "two agents: one applies, one skips" is "$(echo "$aa $ab" | tr ' ' '\n' | sort | tr '\n' ' ')" "0 1 "
expect "two agents: one set of PATCHes" is "$(reqs 'r["by_verb"].get("patch",0)')" "$(grep -c . <<<"$(cat "$INV")")"

# ------------------------------------------------------------ --root
reset_reqs
drive sync --root "$T/image"
expect "--root: exit 0, the cluster not touched" is "$RC $(reqs 'r["total"]')" "0 0"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
