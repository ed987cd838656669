#!/usr/bin/env bash
# test_faults_kube.sh — the Kubernetes applier under faults (issue 13,
# docs/faults.md), against the fake API server (tests/fakekube, checked
# against the real kubectl) and git over TLS:
#   kills      a pass killed with SIGKILL at each fault point a Kubernetes
#              pass reaches (kube.* between patches, deletes, the lease; pass.*,
#              state.*, report.*), then a pass without fault: the ConfigMaps
#              (read back with the real kubectl) are exactly the tracked
#              revision's (the last good one when it is bad: it names a
#              ConfigMap someone else owns), the foreign one is untouched,
#              state.json parses, the floor never goes down, the reports have
#              no gap in seq
#   API faults 500 and 503 on some requests, 429 with Retry-After, a 409 on an
#              apply, the bearer token revoked mid-pass (the pass stopped at a
#              fault point, the token removed, the pass resumed): the pass
#              fails clearly or rides it out; the revision is never marked bad
#              for it, and the next pass converges
# The figures table (fault, runs, converged, lost/duplicate reports, invalid
# state files) is printed at the end. TM_FAULTS_LONG=1: every hit of every point.
set -uo pipefail
T0=$SECONDS
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/fakekube/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap openssl curl kubectl python3 strings
if ! strings "$TAGMOOR" | grep '^tm-fault:' >/dev/null; then
	echo "SKIP: $TAGMOOR has no fault points (configure with -DTM_TEST_HOOKS=ON)"
	exit 77
fi
fk_pick_python || { echo "FAIL: python3 with PyYAML (Debian: python3-yaml) is missing"; exit 1; }
tm_tmpdir
tm_git_server_start || exit 1
fk_start --delay 0.1 --crd-delay 0.1 || { echo "FAIL: fakekube did not start"; exit 1; }
T=$TM_TMP
FDIR=$TM_SOURCE_DIR/tests/integration/faults
LONG=${TM_FAULTS_LONG:-0}
tm_signed_repo fleet || exit 1
TAGTIME=$(($(date +%s) - 6 * 3600))
KC() { kubectl --kubeconfig "$FK_KUBECONFIG" "$@"; }

# the report receiver (tests/integration/receiver) on the git server's test CA
RCV_DIR=$T/receiver && mkdir -p "$RCV_DIR" && : >"$RCV_DIR/requests.jsonl"
RCV_PORT=$(tm_free_port)
tm_bg python3 "$TM_SOURCE_DIR/tests/integration/receiver/receiver.py" --port "$RCV_PORT" \
	--cert "$T/pki/server.pem" --key "$T/pki/server.key" --ca "$T/pki/ca.pem" --dir "$RCV_DIR"
tm_wait_port "$RCV_PORT"

NS=fleet
REV=0
GOOD=""
release() { # good|bad
	local kind=$1 k="$work/k8s" i
	REV=$((REV + 1))
	rm -rf "$k" && mkdir -p "$k"
	{
		# the namespace is the admin's (created with kubectl below)
		printf -- 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stay, namespace: %s}\ndata: {a: "1"}\n' "$NS"
		printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: %s}\ndata: {rev: "%d"}\n' "$NS" "$REV"
		if ((REV % 2)); then n=odd; else n=even; fi
		printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: %s}\ndata: {rev: "%d"}\n' "$n" "$NS" "$REV"
		for i in 1 2 3 4; do
			printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: bulk-%d, namespace: %s}\ndata: {rev: "%d", i: "%d"}\n' "$i" "$NS" "$REV" "$i"
		done
		[ "$kind" = bad ] &&
			printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: admin-notes, namespace: %s}\ndata: {taken: "yes"}\n' "$NS"
	} >"$k/fleet.yaml"
	tm_release "rev $REV $kind" >/dev/null 2>&1
	TRACKED=$(git -C "$work" rev-parse 'stable^{commit}')
	[ "$kind" = good ] && GOOD=$TRACKED
	EXPECT=$GOOD
}
INI=$T/kube.ini
write_ini() { # kubeconfig
	fk_write_ini "$INI" edge-kube "$T/state" "$1" k8s 0s "prune = yes
[report]
url = https://localhost:$RCV_PORT/v1/status
ca_file = $T/pki/ca.pem
client_cert = $T/pki/client.pem
client_key = $T/pki/client.key
spool_max = 1000"
}
write_ini "$FK_KUBECONFIG"
SD=$T/state
sync_once() { # [env...]
	RC=$({ env "$@" "$TAGMOOR" -c "$INI" sync >"$T/pass.log" 2>&1; echo $?; } 2>/dev/null)
}
trace_once() { # kind
	sync_once TAGMOOR_FAULT_TRACE="$T/trace.$1"
	sed -n 's/^tm-fault-trace: //p' "$T/pass.log" >>"$T/trace.$1"
}
invariants() {
	rm -rf "$T/want" && mkdir -p "$T/want"
	git -C "$work" archive "$EXPECT" k8s | tar -x -C "$T/want"
	KC get configmaps -n "$NS" -o json >"$T/live.json" 2>"$T/kubectl.err"
	CHECK_OUT=$(fk_py "$FDIR/check_kube.py" "$T/live.json" "$T/want/k8s" "$NS" "$FOREIGN" "$SD" \
		"$EXPECT" "$T/floor.max" 2>&1)
}
reports() {
	local out
	out=$(python3 "$FDIR/reports.py" "$RCV_DIR/requests.jsonl" /v1/status "$SD")
	read -r ISSUED RECEIVED LOST DUP PENDING <<<"$(head -1 <<<"$out")"
	GAPS=$(sed -n 2p <<<"$out")
}
is_bad() { fk_py -c 'import json,sys; s=json.load(open(sys.argv[1])); print(any(b["oid"] for b in s.get("bad",[]) if b["oid"]==sys.argv[2]))' "$SD/state.json" "$1" 2>/dev/null; }

echo "# someone else's ConfigMap in the namespace; baseline passes, traced"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: admin-notes, namespace: %s}\ndata: {owner: admin}\n' \
	"$NS" "$NS" >"$T/admin.yaml"
KC apply -f "$T/admin.yaml" >/dev/null || bad "kubectl apply of the admin's ConfigMap"
FOREIGN="admin-notes $(KC get configmap admin-notes -n "$NS" -o jsonpath='{.metadata.resourceVersion}')"
release good
trace_once good
check "first revision applied (exit $RC)" [ "$RC" = 0 ] || tail -5 "$T/pass.log"
release good
trace_once good
check "second revision applied, one ConfigMap pruned (exit $RC)" [ "$RC" = 0 ]
release bad
trace_once bad
check "a revision that takes someone else's ConfigMap is refused, rolled back (exit $RC)" [ "$RC" = 1 ]
invariants
check "baseline holds ${CHECK_OUT:+($CHECK_OUT)}" [ -z "$CHECK_OUT" ]

for kind in good bad; do
	sort "$T/trace.$kind" | uniq -c | while read -r n p; do
		[ "$kind" = good ] && n=$(((n + 1) / 2))
		echo "$p $kind $n"
	done
done | sort -k1,1 -s | awk '!seen[$1]++' >"$T/plan"
echo "# $(wc -l <"$T/plan") fault points reached by a Kubernetes pass: $(grep -c '^kube\.' "$T/plan") of them kube.*"

: >"$T/rows"
KILLED=0
run_point() { # point kind hit
	local pt=$1 kind=$2 hit=$3 l0 d0 conv=0 inval=0 krc rrc
	reports
	l0=$LOST d0=$DUP
	release "$kind"
	sync_once TAGMOOR_FAULT="$pt@$hit"
	krc=$RC
	sync_once
	rrc=$RC
	invariants
	reports
	grep -q '^state:' <<<"$CHECK_OUT" && inval=1
	[ -z "$CHECK_OUT" ] && { [ "$kind" = bad ] || [ "$rrc" = 0 ]; } && conv=1
	if [ "$krc" != 137 ] && [ "$conv" = 1 ] && [ "$((LOST - l0))" = 0 ]; then
		echo "# $pt@$hit ($kind): not reached by this pass (exit $krc); it converged"
		return 0
	fi
	if [ "$conv" = 1 ] && [ "$((LOST - l0))" = 0 ]; then
		KILLED=$((KILLED + 1))
		ok "$pt@$hit ($kind): killed, recovered (exit $rrc)"
	else
		bad "$pt@$hit ($kind): kill exit $krc, recovery exit $rrc, lost $((LOST - l0)) ${CHECK_OUT:+[$CHECK_OUT]} ${GAPS:+[$GAPS]}"
		tail -4 "$T/pass.log" | sed 's/^/#   /'
	fi
	echo "$pt 1 $conv $((LOST - l0)) $((DUP - d0)) $inval" >>"$T/rows"
}
while read -r pt kind n; do
	if [ "$LONG" = 1 ]; then
		for h in $(seq 1 "$n"); do run_point "$pt" "$kind" "$h"; done
	else
		run_point "$pt" "$kind" $(((n + 1) / 2))
	fi
done <"$T/plan"
check "$KILLED kills, each followed by a converging pass" [ "$KILLED" -ge 20 ]

echo "# API faults"
api_fault() { # name json-faults [env]: a fault, then a clean pass
	local name=$1 faults=$2 l0 d0 conv=0 t0 t1
	shift 2
	reports
	l0=$LOST d0=$DUP
	release good
	fk_ctl POST /fakekube/config "{\"faults\": $faults}" >/dev/null
	t0=$SECONDS
	sync_once "$@"
	t1=$SECONDS
	FRC=$RC FLOG=$(cat "$T/pass.log") FSECS=$((t1 - t0))
	fk_ctl POST /fakekube/config '{"faults": []}' >/dev/null
	sync_once
	invariants
	reports
	[ -z "$CHECK_OUT" ] && [ "$RC" = 0 ] && [ "$(is_bad "$TRACKED")" = False ] && conv=1
	check "$name: the faulty pass exits $FRC in $((t1 - t0)) s; the next converges, not marked bad ${CHECK_OUT:+($CHECK_OUT)}" \
		[ "$conv" = 1 ]
	echo "api:${name// /-} 1 $conv $((LOST - l0)) $((DUP - d0)) $(grep -c '^state:' <<<"$CHECK_OUT")" >>"$T/rows"
}
api_fault "500 on two applies" '[{"method": "PATCH", "code": 500, "count": 2}]'
api_fault "503 on discovery" '[{"method": "GET", "path": "^/apis?$", "code": 503, "reason": "ServiceUnavailable", "count": 2}]'
api_fault "429 Retry-After 2 on an apply" '[{"method": "PATCH", "code": 429, "reason": "TooManyRequests", "retry_after": 2, "count": 1}]'
check "  429: the pass waited out Retry-After ($FSECS s) and converged in the same pass (exit $FRC)" \
	[ "$FRC" = 0 ] && [ "$FSECS" -ge 2 ]
api_fault "409 conflict on an apply" '[{"method": "PATCH", "code": 409, "reason": "Conflict", "message": "Apply failed with 1 conflict: conflict with \"kubectl-edit\": .data.rev", "count": 1}]'
grep -E 'error' <<<"$FLOG" | head -2 | sed 's/^/#   /'
api_fault "500 on every request for the pass" '[{"code": 500, "count": 100000}]'
grep -E 'error' <<<"$FLOG" | head -2 | sed 's/^/#   /'
check "  a cluster that answers 500 throughout: exit 3 (unreachable), retried" [ "$FRC" = 3 ]

echo "# the bearer token revoked mid-pass"
write_ini "$FK_KUBECONFIG_TOKEN"
sync_once
release good
reports
l0=$LOST d0=$DUP
env TAGMOOR_FAULT="kube.before-patch@3:stop" "$TAGMOOR" -c "$INI" sync >"$T/token.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = T ] && break
	sleep 0.05
done
stopped=$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)
fk_ctl POST /fakekube/config '{"tokens": {}}' >/dev/null
kill -CONT "$pid"
wait "$pid"
trc=$?
grep -E 'error' "$T/token.log" | head -2 | sed 's/^/#   /'
check "the pass stopped at its third apply ($stopped), the token went, it failed (exit $trc) naming 401" \
	[ "$stopped" = T ] && [ "$trc" != 0 ] && grep -q '401\|Unauthorized' "$T/token.log"
fk_ctl POST /fakekube/config "{\"tokens\": {\"$FK_TOKEN\": \"tagmoor-token\"}}" >/dev/null
sync_once
invariants
reports
conv=0
[ -z "$CHECK_OUT" ] && [ "$RC" = 0 ] && [ "$(is_bad "$TRACKED")" = False ] && conv=1
check "the token back: the next pass converges, the revision not marked bad (exit $RC) ${CHECK_OUT:+($CHECK_OUT)}" [ "$conv" = 1 ]
echo "api:token-revoked-mid-pass 1 $conv $((LOST - l0)) $((DUP - d0)) 0" >>"$T/rows"

sync_once
reports
check "reports: $ISSUED issued, $RECEIVED received, $PENDING pending, $LOST lost ${GAPS:+($GAPS)}" [ "$LOST" = 0 ]
echo "# figures"
python3 "$FDIR/figures.py" "$T/rows" "fault (Kubernetes)"
echo "# $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
