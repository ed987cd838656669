#!/usr/bin/env bash
# test_fakekube_kubectl — the fake Kubernetes API server (tests/fakekube) against the real kubectl.
#
# tagmoor's Kubernetes tests run against tests/fakekube because no API server can run here. The
# fake is only worth something while the real kubectl agrees with it, so this test drives the
# real kubectl (client certificate and bearer-token kubeconfigs, over TLS) through what tagmoor
# does: server-side apply of a directory (Namespace, ConfigMaps, CRD, Deployment, Service, Job,
# custom resource), get -o json with managedFields, idempotent re-apply, a field-manager
# conflict and --force-conflicts, wait for Available / Complete / Established, rollout status of
# a Deployment told to fail, validation errors, label selectors, an unknown kind, Forbidden, and
# delete -f followed by NotFound. Then tests/fakekube/selftest.py checks the protocol details
# kubectl does not reach (leases, dryRun, keep-alive, counters, watch, 1000 applies) and
# tests/fakekube/replay_check.py replays the recorded real-server exchanges and compares.
#
# Every expectation is exact. kubectl is required, not optional: scripts/test installs Debian's
# kubernetes-client when no kubectl is on the machine. KUBECTL=/path/to/kubectl picks another.
set -u
: "${TM_SOURCE_DIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${TM_SHARED_DIR:=$TM_SOURCE_DIR/../shared}"
export TM_SOURCE_DIR TM_SHARED_DIR
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/fakekube/lib.sh"

KUBECTL=${KUBECTL:-kubectl}
for c in "$KUBECTL" openssl base64; do
	command -v "$c" >/dev/null 2>&1 ||
		{ echo "FAIL: $c is missing (scripts/test installs kubernetes-client, openssl, python3-yaml)"; exit 1; }
done
fk_pick_python || { echo "FAIL: python3 with PyYAML (Debian package python3-yaml) is missing"; exit 1; }

tm_tmpdir
fk_start --delay 1 --crd-delay 0.5 || { echo "FAIL: fakekube did not start"; exit 1; }
export KUBECONFIG="$FK_KUBECONFIG"
M="$TM_SOURCE_DIR/tests/fakekube/testdata/manifests"
X="$TM_SOURCE_DIR/tests/fakekube/testdata/extra"
OUT="$TM_TMP/out" ERR="$TM_TMP/err"
echo "fakekube on $FK_URL; $("$KUBECTL" version --client 2>/dev/null | head -1)"

OK=0 BAD=0
pass() { OK=$((OK + 1)); echo "ok   $1"; }
fail() {
	BAD=$((BAD + 1)); echo "FAIL $1"
	echo "  --- stdout"; sed 's/^/  /' "$OUT"; echo "  --- stderr"; sed 's/^/  /' "$ERR"
}
# k ARGS...: run kubectl; stdout in $OUT, stderr in $ERR, exit status in $RC
k() { "$KUBECTL" "$@" >"$OUT" 2>"$ERR"; RC=$?; }
# expect NAME RC EXPECTED_STDOUT: exact exit status and exact stdout
expect() {
	if [ "$RC" = "$2" ] && [ "$(cat "$OUT")" = "$3" ]; then pass "$1"; else
		echo "  expected rc=$2 stdout:"; printf '%s\n' "$3" | sed 's/^/  | /'; echo "  got rc=$RC"; fail "$1"; fi
}
# expect_err NAME RC EXPECTED_STDERR: exact exit status and exact stderr
expect_err() {
	if [ "$RC" = "$2" ] && [ "$(cat "$ERR")" = "$3" ]; then pass "$1"; else
		echo "  expected rc=$2 stderr:"; printf '%s\n' "$3" | sed 's/^/  | /'; echo "  got rc=$RC"; fail "$1"; fi
}
# expect_err_has NAME RC TEXT: exact exit status, stderr contains TEXT
expect_err_has() {
	if [ "$RC" = "$2" ] && grep -qF -- "$3" "$ERR"; then pass "$1"; else
		echo "  expected rc=$2 and stderr containing: $3"; echo "  got rc=$RC"; fail "$1"; fi
}
# pycheck NAME PYTHON: code over d (= the JSON in $OUT) that sets ok; ok must be true
pycheck() {
	if fk_py -c 'import json,sys
d = json.load(open(sys.argv[1])); ok = False
exec(sys.argv[2])
sys.exit(0 if ok else 1)' "$OUT" "$2" 2>>"$ERR"
	then pass "$1"; else echo "  expected: $2"; fail "$1"; fi
}

MF=()
"$KUBECTL" get --help 2>/dev/null | grep -q -- --show-managed-fields && MF=(--show-managed-fields)

APPLIED7="namespace/fk-demo serverside-applied
configmap/settings serverside-applied
configmap/other serverside-applied
customresourcedefinition.apiextensions.k8s.io/widgets.example.tagmoor.dev serverside-applied
deployment.apps/web serverside-applied
service/web serverside-applied
job.batch/migrate serverside-applied"
APPLIED8="$APPLIED7
widget.example.tagmoor.dev/w1 serverside-applied"

# 1. First apply: the CRD is not Established yet, so kubectl cannot map the custom resource —
#    exactly what a real API server does to `kubectl apply -f` of a CRD and its CR together.
k apply --server-side -f "$M"
expect "apply --server-side -f manifests/ (all but the CR)" 1 "$APPLIED7"
expect_err_has "the CR is not mappable before its CRD is Established" 1 \
	'no matches for kind "Widget" in version "example.tagmoor.dev/v1"'

k wait --for=condition=Established crd/widgets.example.tagmoor.dev --timeout=30s
expect "wait --for=condition=Established crd" 0 \
	"customresourcedefinition.apiextensions.k8s.io/widgets.example.tagmoor.dev condition met"
k get crd
if [ "$RC" = 0 ] && [ "$(wc -l <"$OUT")" = 2 ] && head -1 "$OUT" | grep -qE '^NAME +CREATED AT$' &&
	sed -n 2p "$OUT" | grep -qE '^widgets\.example\.tagmoor\.dev +20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'
then pass "get crd (server-side table)"; else fail "get crd (server-side table)"; fi

# 2. Second apply: the CR is applied now; everything else is unchanged.
k apply --server-side -f "$M"
expect "apply --server-side -f manifests/ after Established" 0 "$APPLIED8"
k get widgets -n fk-demo -o json
pycheck "get widgets -o json" 'ok = d["kind"] == "List" and [(i["kind"], i["metadata"]["name"], i["spec"]) for i in d["items"]] == [("Widget", "w1", {"size": 3, "color": "blue"})]'

k get configmap settings -n fk-demo -o json "${MF[@]}"
pycheck "get -o json: server metadata and managedFields from the fake" '
m = d["metadata"]; mf = m["managedFields"]
ok = (len(mf) == 1 and mf[0]["manager"] == "kubectl" and mf[0]["operation"] == "Apply" and mf[0]["apiVersion"] == "v1"
and mf[0]["fieldsType"] == "FieldsV1"
and mf[0]["fieldsV1"] == {"f:data": {"f:created": {}, "f:mode": {}}, "f:metadata": {"f:labels": {"f:a": {}, "f:tier": {}}}}
and len(m["uid"]) == 36 and m["resourceVersion"].isdigit() and m["creationTimestamp"].endswith("Z")
and d["data"] == {"mode": "on", "created": "2024-01-02"} and m["labels"] == {"a": "b", "tier": "web"})'

# 3. Workloads progress: the Deployment becomes Available, the Job completes.
k wait --for=condition=Available deployment/web -n fk-demo --timeout=30s
expect "wait --for=condition=Available deployment/web" 0 "deployment.apps/web condition met"
k get deployment web -n fk-demo -o json
pycheck "Deployment status like the deployment controller's" '
s = d["status"]; c = {x["type"]: x for x in s["conditions"]}
ok = (s["observedGeneration"] == d["metadata"]["generation"] == 1 and s["replicas"] == s["updatedReplicas"] == s["readyReplicas"] == s["availableReplicas"] == 2
and c["Available"]["status"] == "True" and c["Progressing"]["status"] == "True" and c["Progressing"]["reason"] == "NewReplicaSetAvailable")'
k rollout status deployment/web -n fk-demo --timeout=30s
expect 'rollout status deployment/web' 0 'deployment "web" successfully rolled out'
k wait --for=condition=Complete job/migrate -n fk-demo --timeout=30s
expect "wait --for=condition=Complete job/migrate" 0 "job.batch/migrate condition met"

# 4. Re-apply is idempotent: nothing is written, no resourceVersion or generation moves.
k get -f "$M" -o json
cp "$OUT" "$TM_TMP/before.json"
k apply --server-side -f "$M"
expect "re-apply prints the same" 0 "$APPLIED8"
k get -f "$M" -o json
fk_py -c 'import json,sys
f = lambda p: [(i["kind"], i["metadata"]["name"], i["metadata"]["resourceVersion"], i["metadata"].get("generation")) for i in json.load(open(p))["items"]]
a, b = f(sys.argv[1]), f(sys.argv[2])
print(a == b and len(a) == 8 or "before %s\nafter  %s" % (a, b))
sys.exit(0 if a == b and len(a) == 8 else 1)' "$TM_TMP/before.json" "$OUT" >"$TM_TMP/idem" 2>&1
if [ $? = 0 ]; then pass "re-apply is idempotent (resourceVersions unchanged)"; else cat "$TM_TMP/idem"; fail "re-apply is idempotent"; fi

# 5. Another field manager: a conflict from the Status, then --force-conflicts.
k apply --server-side --field-manager=intruder -f "$X/conflict-cm.yaml"
if [ "$RC" = 1 ] && [ "$(head -1 "$ERR")" = 'error: Apply failed with 1 conflict: conflict with "kubectl": .data.mode' ] &&
	grep -qF -- '--force-conflicts' "$ERR"; then pass "conflicting field manager: kubectl reports the conflict"
else fail "conflicting field manager: kubectl reports the conflict"; fi
k get configmap settings -n fk-demo -o 'jsonpath={.data.mode}'
expect "the conflicting apply changed nothing" 0 "on"
k apply --server-side --field-manager=intruder --force-conflicts -f "$X/conflict-cm.yaml"
expect "--force-conflicts" 0 "configmap/settings serverside-applied"
k get configmap settings -n fk-demo -o json "${MF[@]}"
pycheck "forced apply moved ownership of .data.mode" '
o = {e["manager"]: e["fieldsV1"] for e in d["metadata"]["managedFields"]}
ok = (d["data"]["mode"] == "maintenance" and o["intruder"] == {"f:data": {"f:mode": {}}}
and o["kubectl"] == {"f:data": {"f:created": {}}, "f:metadata": {"f:labels": {"f:a": {}, "f:tier": {}}}})'

# 6. A Deployment and a Job told to fail.
k apply --server-side -f "$X/broken-deployment.yaml"
expect "apply a Deployment that will fail" 0 "deployment.apps/broken serverside-applied"
k rollout status deployment/broken -n fk-demo --timeout=30s
expect_err_has "rollout status: progress deadline exceeded" 1 'error: deployment "broken" exceeded its progress deadline'
k wait --for=condition=Available deployment/broken -n fk-demo --timeout=2s
expect_err_has "wait Available on the failed Deployment times out" 1 "timed out waiting for the condition"
k apply --server-side -f "$X/failing-job.yaml"
expect "apply a Job that will fail" 0 "job.batch/doomed serverside-applied"
k wait --for=condition=Failed job/doomed -n fk-demo --timeout=30s
expect "wait --for=condition=Failed job/doomed" 0 "job.batch/doomed condition met"

# 7. Validation errors come back as kubectl prints a real 422 Status.
k apply --server-side -f "$X/invalid.yaml"
expect_err "422: Deployment without spec.selector" 1 'The Deployment "nosel" is invalid: 
* spec.selector: Required value
* spec.template.metadata.labels: Invalid value: map[string]string{"app":"nosel"}: `selector` does not match template `labels`'
k apply --server-side -f "$X/bad-widget.yaml"
expect_err "422: custom resource missing a required field (CRD schema)" 1 'The Widget "bad" is invalid: spec.size: Required value'

# 8. Unknown kinds.
k get foos
expect_err "get an unknown resource type" 1 'error: the server doesn'"'"'t have a resource type "foos"'
k apply --server-side -f "$X/unknown-kind.yaml"
expect_err_has "apply an unknown kind" 1 'no matches for kind "Gadget" in version "example.tagmoor.dev/v1"'

# 9. Label selectors.
sel() { k get configmaps -n fk-demo -l "$1" -o name; expect "get cm -l '$1'" 0 "$2"; }
sel 'a=b' "configmap/settings"
sel 'a==c' "configmap/other"
sel 'a!=b' "configmap/other"
sel 'a in (b,c)' "configmap/other
configmap/settings"
sel 'a notin (c)' "configmap/settings"
sel 'tier' "configmap/settings"
sel '!tier' "configmap/other"

# 10. Bearer token, and a token without rights.
KUBECONFIG="$FK_KUBECONFIG_TOKEN" k get namespace fk-demo -o name
expect "bearer-token kubeconfig" 0 "namespace/fk-demo"
fk_ctl POST /fakekube/config '{"users": {"tagmoor-token": {"verbs": ["get", "list", "watch"]}}}' >/dev/null
KUBECONFIG="$FK_KUBECONFIG_TOKEN" k delete configmap other -n fk-demo
expect_err "403 for a token without the right" 1 'Error from server (Forbidden): configmaps "other" is forbidden: User "tagmoor-token" cannot delete resource "configmaps" in API group "" in the namespace "fk-demo"'
fk_ctl POST /fakekube/config '{"users": {}}' >/dev/null
KUBECONFIG="$FK_KUBECONFIG_TOKEN" k --token=not-the-token get namespaces
expect_err "a wrong token: 401" 1 "error: You must be logged in to the server (Unauthorized)"

# 11. delete -f, then NotFound.
k apply --server-side -f "$X/plain-cm.yaml"
expect "apply a ConfigMap in default" 0 "configmap/plain serverside-applied"
k delete -f "$X/plain-cm.yaml"
sed -i -E 's/ deleted from [a-z0-9-]+ namespace$/ deleted/' "$OUT"  # newer kubectl names the namespace
expect "delete -f" 0 'configmap "plain" deleted'
k get configmap plain
expect_err "get after delete: NotFound" 1 'Error from server (NotFound): configmaps "plain" not found'
k delete -f "$M"
sed -i -E 's/ deleted from [a-z0-9-]+ namespace$/ deleted/' "$OUT"
expect "delete -f manifests/" 0 'namespace "fk-demo" deleted
configmap "settings" deleted
configmap "other" deleted
customresourcedefinition.apiextensions.k8s.io "widgets.example.tagmoor.dev" deleted
deployment.apps "web" deleted
service "web" deleted
job.batch "migrate" deleted
widget.example.tagmoor.dev "w1" deleted'
k get namespace fk-demo
expect_err "namespace gone: NotFound" 1 'Error from server (NotFound): namespaces "fk-demo" not found'
k get crd widgets.example.tagmoor.dev
expect_err "CRD gone: NotFound" 1 'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "widgets.example.tagmoor.dev" not found'
k get -f "$X/plain-cm.yaml" -o name
expect_err "get -f of a deleted object: NotFound" 1 'Error from server (NotFound): configmaps "plain" not found'

# 12. The fake counted what kubectl asked for.
fk_ctl GET /fakekube/requests >"$OUT" 2>"$ERR"
pycheck "request counters saw kubectl's patches, gets, lists, watches and deletes" '
v = d["by_verb"]
ok = (v["patch"] >= 20 and v["get"] > 0 and v["list"] > 0 and v["watch"] > 0 and v["delete"] >= 10
and d["by_verb_resource"]["patch apps/deployments"] >= 4 and d["connections"] >= 1)'

# 13. Protocol details kubectl does not reach, and the recorded real-server exchanges.
if fk_py "$TM_SOURCE_DIR/tests/fakekube/selftest.py" "$FK_URL" "$FK_CA" "$FK_CLIENT_CERT" "$FK_CLIENT_KEY" "$FK_TOKEN" \
	>"$OUT" 2>"$ERR"; then pass "selftest.py ($(grep -c '^ok ' "$OUT") checks)"; else fail "selftest.py"; fi
if fk_py "$TM_SOURCE_DIR/tests/fakekube/replay_check.py" "$FK_URL" "$FK_CA" "$FK_CLIENT_CERT" "$FK_CLIENT_KEY" \
	"$TM_SHARED_DIR/fixtures/kubernetes/replays" >"$OUT" 2>"$ERR"; then pass "replay_check.py: $(tail -1 "$OUT")"
else fail "replay_check.py (fake vs recorded real-server responses)"; fi

echo "fakekube kubectl checks: $OK ok, $BAD failed"
[ "$BAD" = 0 ]
