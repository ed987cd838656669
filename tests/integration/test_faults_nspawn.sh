#!/usr/bin/env bash
# test_faults_nspawn.sh — the whole machine dies during an apply (issue 13,
# docs/faults.md): a real systemd booted in systemd-nspawn runs `tagmoor
# sync` with the systemd applier on its own /etc/systemd/system (daemon-reload,
# enable, restart, start — the steps the --root harness cannot reach); the
# container's PID 1 is SIGKILLed at a random moment of the sync (every process
# of the machine dies at once, as in a power cut; the host keeps the file
# system's page cache, so this is a kernel-survives cut), the container is
# booted again on the same file system, and then:
#   converged  a sync exits 0 and state.json names the tracked revision
#   state      state.json and floor parse; the floor never goes down
#   content    every unit file of the revision is there byte for byte, no unit
#              of an earlier revision is left, no temp file
#   running    the revision's service runs with the revision's ExecStart
# TM_FAULTS_NSPAWN_RUNS cuts (default 4; TM_FAULTS_LONG=1: 50). Needs root,
# systemd-nspawn, debootstrap (a cached rootfs: tests/integration/nspawn.sh).
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/integration/nspawn.sh"
nspawn_need
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap python3
tm_tmpdir
chmod 755 "$TM_TMP"
tm_git_server_start || exit 1
T=$TM_TMP
BUILD=$(cd "$(dirname "$TAGMOOR")" && pwd)
RUNS=${TM_FAULTS_NSPAWN_RUNS:-$([ "${TM_FAULTS_LONG:-0}" = 1 ] && echo 50 || echo 4)}
tm_signed_repo fleet || exit 1
TAGTIME=$(($(date +%s) - 6 * 3600))
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-cut
state_dir = /var/lib/tagmoor
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 20s
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units
prune = yes
wait = 0
INI
REV=0
release() {
	local u="$work/units" i
	REV=$((REV + 1))
	rm -rf "$u" && mkdir -p "$u/cut-web.service.d"
	printf '[Unit]\nDescription=cut web %d\n\n[Service]\nExecStart=/bin/sleep %d\n\n[Install]\nWantedBy=multi-user.target\n' \
		"$REV" $((100000 + REV)) >"$u/cut-web.service"
	printf '[Service]\nEnvironment=REV=%d\n' "$REV" >"$u/cut-web.service.d/10-rev.conf"
	for i in 1 2 3 4 5 6; do
		printf '[Unit]\nDescription=cut bulk %d rev %d\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n' \
			"$i" "$REV" >"$u/cut-bulk-$i.service"
	done
	if ((REV % 2)); then n=odd; else n=even; fi
	printf '[Unit]\nDescription=cut %s %d\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n' "$n" "$REV" >"$u/cut-$n.service"
	tm_release "rev $REV" >/dev/null 2>&1
	TRACKED=$(git -C "$work" rev-parse 'stable^{commit}')
}

# A power cut: the container's PID 1 and nspawn killed at once.
cut() {
	kill -KILL "$NSPAWN_LEADER" "$NSPAWN_PID" 2>/dev/null
	{ wait "$NSPAWN_PID"; } 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$NSPAWN_LEADER" 2>/dev/null || break; sleep 0.05; done
}
# Boot the same machine again (same overlay, same binds).
reboot() {
	local i state
	setsid systemd-nspawn --boot --quiet --register=no --keep-unit --console=read-only \
		--directory="$NSPAWN_DIR" --machine="$NSPAWN_NAME" --bind-ro="$BUILD" --bind-ro="$T" \
		</dev/null >>"$NSPAWN_INST/console.log" 2>&1 &
	NSPAWN_PID=$!
	NSPAWN_LEADER=""
	for i in $(seq 1 200); do NSPAWN_LEADER=$(nspawn_find_leader) && break; sleep 0.05; done
	[ -n "$NSPAWN_LEADER" ] || return 1
	for i in $(seq 1 300); do
		state=$(nspawn_run systemctl is-system-running 2>/dev/null)
		case "$state" in running | degraded) return 0 ;; esac
		sleep 0.2
	done
	return 1
}
SYNC() { OUT=$(nspawn_run "$TAGMOOR" -c "$T/tagmoor.ini" sync 2>&1); RC=$?; }
FLOOR_MAX=0
checks() { # -> CHECK_OUT
	rm -rf "$T/want" && mkdir -p "$T/want" && git -C "$work" archive "$TRACKED" units | tar -x -C "$T/want"
	CHECK_OUT=$(python3 - "$NSPAWN_DIR" "$T/want/units" "$TRACKED" "$FLOOR_MAX" <<'PY'
import json, os, re, sys
root, want_dir, commit, floor_max = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ud = os.path.join(root, "etc/systemd/system")
sd = os.path.join(root, "var/lib/tagmoor")
out = []
want = {}
for d, _, fs in os.walk(want_dir):
    for f in fs:
        want[os.path.relpath(os.path.join(d, f), want_dir)] = open(os.path.join(d, f), "rb").read()
for k, v in want.items():
    p = os.path.join(ud, k)
    if not os.path.isfile(p):
        out.append("content: %s missing" % k)
    elif open(p, "rb").read() != v:
        out.append("content: %s differs (half-written or stale)" % k)
for d, dirs, fs in os.walk(ud):
    for f in fs + dirs:
        rel = os.path.relpath(os.path.join(d, f), ud)
        if re.search(r"\.tagmoor-tmp-", f):
            out.append("temps: %s" % rel)
        elif f.startswith("cut-") and not os.path.islink(os.path.join(d, f)) \
                and rel not in want and not any(w.startswith(rel + "/") for w in want):
            out.append("content: %s is left from an earlier revision" % rel)
try:
    st = json.load(open(os.path.join(sd, "state.json")))
    if (st.get("applied") or {}).get("commit") != commit:
        out.append("converged: applied %s" % (st.get("applied") or {}).get("commit"))
    fl = json.load(open(os.path.join(sd, "floor")))
    for t in (st.get("accepted_tag_time"), fl.get("accepted_tag_time")):
        if int(t or 0) < floor_max:
            out.append("floor: went down (%s < %d)" % (t, floor_max))
    print("FLOOR %d" % int(st.get("accepted_tag_time") or 0))
except Exception as e:  # noqa: BLE001
    out.append("state: %s" % e)
for o in out:
    print(o)
PY
)
	local f
	f=$(sed -n 's/^FLOOR //p' <<<"$CHECK_OUT")
	[ -n "$f" ] && FLOOR_MAX=$f
	CHECK_OUT=$(grep -v '^FLOOR ' <<<"$CHECK_OUT")
	local es
	es=$(nspawn_run systemctl show -p ExecStart --value cut-web.service 2>/dev/null)
	[ "$(nspawn_run systemctl is-active cut-web.service 2>/dev/null)" = active ] ||
		CHECK_OUT+=$'\n'"running: cut-web.service is not active"
	grep -q "sleep $((100000 + REV))" <<<"$es" || CHECK_OUT+=$'\n'"running: cut-web.service runs another revision's ExecStart"
	CHECK_OUT=$(sed '/^$/d' <<<"$CHECK_OUT")
}

start=$(now_ms)
nspawn_boot "tm-cut-$$" "$BUILD" "$T" || { echo "FAIL: container did not boot"; exit 1; }
echo "# container booted in $(($(now_ms) - start)) ms"
release
t0=$(now_ms)
SYNC
DUR=$(($(now_ms) - t0))
check "first revision applied inside the container (exit $RC, $DUR ms)" [ "$RC" = 0 ]
[ "$RC" = 0 ] || { echo "$OUT" | tail -5; exit 1; }
checks
check "  and running ${CHECK_OUT:+($CHECK_OUT)}" [ -z "$CHECK_OUT" ]
[ "$DUR" -lt 300 ] && DUR=300

: >"$T/rows"
for run in $(seq 1 "$RUNS"); do
	release
	ms=$((RANDOM % DUR))
	nspawn_run "$TAGMOOR" -c "$T/tagmoor.ini" sync >"$T/cut.log" 2>&1 &
	spid=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	cut
	wait "$spid" 2>/dev/null
	last=$(grep -oE 'info [^ ]+ [^ ]+ [^ ]+' "$T/cut.log" | tail -1)
	if ! reboot; then
		bad "run $run: the container did not boot again"
		tail -20 "$NSPAWN_INST/console.log"
		break
	fi
	SYNC
	checks
	conv=0
	[ "$RC" = 0 ] && [ -z "$CHECK_OUT" ] && conv=1
	check "run $run: cut after $ms ms (last: ${last:-nothing}), booted again: exit $RC ${CHECK_OUT:+[$CHECK_OUT]}" [ "$conv" = 1 ]
	[ "$conv" = 1 ] || echo "$OUT" | tail -4 | sed 's/^/#   /'
	echo "nspawn:power-cut-during-apply 1 $conv 0 0 $(grep -c '^state:' <<<"$CHECK_OUT")" >>"$T/rows"
done
if strings "$TAGMOOR" | grep '^tm-fault:' >/dev/null; then
	echo "# the machine cut exactly at the named points only a live systemd reaches"
	for pt in systemd.unit-written@4 systemd.units-written systemd.enabled systemd.daemon-reloaded \
		systemd.before-restart systemd.before-start systemd.pruned; do
		release
		# the sync stops itself there; the machine is cut while it is stopped
		nspawn_run env TAGMOOR_FAULT="$pt:stop" "$TAGMOOR" -c "$T/tagmoor.ini" sync >"$T/cut.log" 2>&1 &
		spid=$!
		stopped=""
		for _ in $(seq 1 300); do
			stopped=$(ps -eo pid=,stat=,comm= | awk '$3 == "tagmoor" && $2 ~ /^T/ { print $1; exit }')
			[ -n "$stopped" ] && break
			kill -0 "$spid" 2>/dev/null || break
			sleep 0.05
		done
		cut
		# nsenter stops itself when its child stops: it outlives the machine
		pkill -KILL -P "$spid" 2>/dev/null
		{ wait "$spid"; } 2>/dev/null
		if ! reboot; then
			bad "$pt: the container did not boot again"
			break
		fi
		SYNC
		checks
		conv=0
		[ "$RC" = 0 ] && [ -z "$CHECK_OUT" ] && [ -n "$stopped" ] && conv=1
		check "cut at $pt (reached: $([ -n "$stopped" ] && echo yes || echo no)), booted again: exit $RC ${CHECK_OUT:+[$CHECK_OUT]}" [ "$conv" = 1 ]
		echo "nspawn:cut-at-${pt%@*} 1 $conv 0 0 $(grep -c '^state:' <<<"$CHECK_OUT")" >>"$T/rows"
	done
fi
echo "# figures"
python3 "$TM_SOURCE_DIR/tests/integration/faults/figures.py" "$T/rows" "fault (nspawn, real systemd)"
[ "$FAILS" = 0 ]
