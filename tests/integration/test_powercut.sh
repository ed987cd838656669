#!/usr/bin/env bash
# test_powercut.sh — SPEC principle 3 ("a power cut or kill -9 at any instant
# leaves the device either on the old revision or the new one after restart")
# against the real binary: an SSH-signed repository served over HTTPS by
# lib.sh's nginx + git http-backend, big enough (3,000 files; 64 of them
# rewritten with 16 KiB of fresh random text per revision: 1 MiB per fetch)
# that fetching is a noticeable part of a run, and `tagmoor --root DIR sync` with the systemd applier
# (units written under DIR/etc/systemd/system, enabled with systemctl
# --root, nothing started; no container needed).
#
# First, a device's very first sync (no state directory or repo.git before
# it) is killed at a random point within 400 ms, three times from scratch;
# the next sync must converge each time.
# Then, deterministically: temp files a killed write leaves in the unit dir,
# a drop-in directory and the state directory are removed by the next pass,
# also by an idle poll, which otherwise writes nothing.
#
# Then POWERCUT_RUNS (default 30) times: move the tag to a new signed revision
# (units changed, added, removed, drop-ins coming and going), start `tagmoor
# sync`, SIGKILL its whole process group after a random delay drawn uniformly
# over a normal run's duration (measured first), and — every third run — move
# the tag once more (a unit written with the killed revision's content must
# not turn "foreign" when the next revision changes it), then run `tagmoor
# sync` again without a kill and check:
#   exit       the second sync exits 0 and state.json's applied commit is the
#              tracked revision's (converged)
#   state      state.json parses (python3 json)
#   content    the unit dir holds exactly the revision's unit files and drop-ins,
#              byte for byte (nothing half-written, stale, or from neither revision)
#   temps      no temp file left in the unit dir, its drop-in dirs or state_dir
#   inventory  state.json's systemd inventory is exactly the revision's ids
#   enabled    every [Install] unit of the revision is enabled, no enablement
#              symlink points at a unit that is gone
# A failing run prints the checks that failed and the tail of both logs. The
# last line is the summary: runs, converged (all checks passed), killed
# mid-run, and the failure count per check.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap systemctl python3 setsid
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
RUNS=${POWERCUT_RUNS:-30}
FILES=${POWERCUT_FILES:-3000}
REWRITE=${POWERCUT_REWRITE:-64}
REWRITE_SIZE=${POWERCUT_REWRITE_SIZE:-16384}
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

ssh-keygen -q -t ed25519 -N '' -C release -f "$T/release"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/release.pub")" >"$T/allowed_signers"
work=$(tm_repo_new fleet)
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/release"
git -C "$work" config gc.auto 0
git -C "$work" config core.compression 0 # random text: compressing it only costs time
git -C "$work" config pack.window 0
TAGTIME=$(($(date +%s) - 7200))

ROOT=$T/root
UD=$ROOT/etc/systemd/system
SD=$ROOT/var/lib/tagmoor
mkdir -p "$ROOT"
cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-pc
state_dir = /var/lib/tagmoor
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 30s
max_fetch = 512MiB
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units/common
prune = yes
wait = 0
INI

svc() { # description exec
	printf '[Unit]\nDescription=%s\n\n[Service]\nExecStart=%s\n\n[Install]\nWantedBy=multi-user.target\n' "$1" "$2"
}
# The units of revision $1 (units/common is exactly what the unit dir must hold).
write_units() {
	local k=$1 u="$work/units/common" i
	rm -rf "$u"
	mkdir -p "$u/web.service.d" "$u/drop$((k % 3)).service.d"
	svc "web rev $k" "/bin/sleep $((100000 + k))" >"$u/web.service"
	printf '[Service]\nEnvironment=REV=%d\n' "$k" >"$u/web.service.d/10-env.conf"
	printf '[Service]\nNice=%d\n' $((k % 19)) >"$u/drop$((k % 3)).service.d/x.conf"
	svc "always the same" "/bin/sleep infinity" >"$u/stay.service"
	printf '[Timer]\nOnCalendar=hourly\n# rev %d\n\n[Install]\nWantedBy=timers.target\n' "$k" >"$u/tick.timer"
	printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' >"$u/tick.service"
	if ((k % 2)); then svc "odd $k" /bin/true >"$u/odd.service"; else svc "even $k" /bin/true >"$u/even.service"; fi
	for i in $(seq -w 1 24); do svc "bulk $i rev $k" "/bin/sleep $i$k" >"$u/bulk-$i.service"; done
}
# Rewrites REWRITE of the generated files with REWRITE_SIZE bytes of
# revision-specific text, so that every fetch transfers MiBs (few objects:
# releasing stays cheap).
rewrite_files() {
	python3 - "$work" "$1" "$REWRITE" "$FILES" "$REWRITE_SIZE" <<'PY'
import base64, os, sys, random
w, k, n, total, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(k)
for i in rnd.sample(range(total), min(n, total)):
    p = os.path.join(w, "files", "d%02d" % (i % 50), "f%05d.txt" % i)
    with open(p, "wb") as f:
        f.write(base64.encodebytes(rnd.randbytes(size * 3 // 4)))
PY
}
REV=0
release() { # the next revision: units + files, signed tag moved, pushed
	REV=$((REV + 1))
	write_units "$REV"
	[ "$REV" -gt 1 ] && rewrite_files "$REV"
	git -C "$work" add -A
	git -C "$work" commit -qm "release $REV"
	TAGTIME=$((TAGTIME + 60))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "release $REV" stable >/dev/null
	git -C "$work" push -q -f origin HEAD:refs/heads/main refs/tags/stable
}
SYNC() { # [log]: a sync that is not killed; RC, OUT
	OUT=$("$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" sync 2>&1)
	RC=$?
	[ -n "${1:-}" ] && printf '%s\n' "$OUT" >"$1"
	return 0
}

# The checks after a recovery sync: one line per failed check, "CHECK: detail".
cat >"$T/check.py" <<'PY'
import json, os, re, sys
ud, sd, want_dir, commit = sys.argv[1:5]
temp = re.compile(r'^\..+\.tagmoor-tmp-[A-Za-z0-9]{6}$|\.tmp\.[A-Za-z0-9]{6}$')
fails = []
def fail(check, msg):
    fails.append("%s: %s" % (check, msg))

want = {}
for d, dirs, files in os.walk(want_dir):
    for f in files:
        p = os.path.join(d, f)
        want[os.path.relpath(p, want_dir)] = open(p, "rb").read()

have, temps, links = {}, [], []
for top, skip_repo in ((ud, False), (sd, True)):
    if not os.path.isdir(top):
        continue
    for d, dirs, files in os.walk(top):
        if skip_repo and d == top and "repo.git" in dirs:
            dirs.remove("repo.git")
        for f in files + dirs:
            if temp.search(f):
                temps.append(os.path.join(d, f))
        if top != ud:
            continue
        for f in files:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, ud)
            if os.path.islink(p):
                links.append(rel)
            elif not temp.search(f):
                have[rel] = open(p, "rb").read()
        for f in dirs:
            if os.path.islink(os.path.join(d, f)):
                links.append(os.path.relpath(os.path.join(d, f), ud))
if temps:
    fail("temps", " ".join(sorted(temps)))
for k in sorted(set(want) | set(have)):
    if k not in have:
        fail("content", "%s missing" % k)
    elif k not in want:
        fail("content", "%s is from neither revision's content (left over)" % k)
    elif want[k] != have[k]:
        fail("content", "%s differs from the revision (%d bytes, want %d)" % (k, len(have[k]), len(want[k])))
# drop-in directories left empty
for d in os.listdir(ud) if os.path.isdir(ud) else []:
    p = os.path.join(ud, d)
    if d.endswith(".d") and os.path.isdir(p) and not os.path.islink(p) and not os.listdir(p):
        fail("content", "empty drop-in directory %s left" % d)

# enablement: every [Install] unit enabled; no symlink to a unit that is gone
installed = sorted(k for k, v in want.items() if "/" not in k and b"[Install]" in v)
for k in installed:
    if not any(os.path.basename(l) == k for l in links):
        fail("enabled", "%s is not enabled" % k)
for l in links:
    if ".wants/" in l or ".requires/" in l:
        if os.path.basename(l) not in want:
            fail("enabled", "%s enables a unit that is gone" % l)

try:
    st = json.load(open(os.path.join(sd, "state.json")))
except Exception as e:
    fail("state", "state.json does not parse: %s" % e)
    st = None
if st is not None:
    applied = (st.get("applied") or {}).get("commit")
    if applied != commit:
        fail("exit", "applied commit %s, tracked %s" % (applied, commit))
    inv = sorted(((st.get("inventory") or {}).get("systemd")) or [])
    if inv != sorted(want):
        extra = sorted(set(inv) - set(want))
        missing = sorted(set(want) - set(inv))
        fail("inventory", "not owned: %s; owned but not in the revision: %s" % (missing, extra))
for f in fails:
    print(f)
PY
checks() { # -> CHECK_OUT (empty when all passed)
	CHECK_OUT=$(python3 "$T/check.py" "$UD" "$SD" "$work/units/common" "$(git -C "$work" rev-parse 'stable^{commit}')" 2>&1)
}

echo "# setup: $FILES generated files, first revision; first syncs killed, then done"
tm_repo_files fleet "$FILES" >/dev/null
release
# a device's very first sync (no state directory, no repo.git yet) cut
# short, POWERCUT_FIRST (default 3) times from an empty root, each followed by
# a first sync that must converge
for first in $(seq 1 "${POWERCUT_FIRST:-3}"); do
	rm -rf "$ROOT" && mkdir -p "$ROOT"
	ms=$((RANDOM % 400))
	setsid "$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" sync >"$T/killed.log" 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' "$ms")"
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	krc=$?
	for _ in $(seq 1 50); do pgrep -g "$pid" >/dev/null 2>&1 || break; sleep 0.02; done
	t0=$(now_ms)
	SYNC
	t1=$(now_ms)
	[ "$RC" = 0 ] || echo "$OUT" | tail -3 | sed 's/^/#   /'
	check "first sync killed after $ms ms (exit $krc, last: $(tail -1 "$T/killed.log" | cut -d' ' -f3- | cut -c1-40)); the next exits 0 ($((t1 - t0)) ms)" [ "$RC" = 0 ]
	checks
	check "  and converged ${CHECK_OUT:+($CHECK_OUT)}" [ -z "$CHECK_OUT" ]
done

echo "# leftover temp files of a killed write are removed, also by an idle poll"
printf '[Unit]\nDescription=half' >"$UD/.web.service.tagmoor-tmp-Ab12Cd"
printf '[Serv' >"$UD/web.service.d/.10-env.conf.tagmoor-tmp-Xy98Zw"
printf '{"schema":' >"$SD/.state.json.tagmoor-tmp-Qw12Er"
printf '{"sch' >"$SD/.floor.tagmoor-tmp-Zz00Zz"
mkdir -p "$T/outside" && echo keep >"$T/outside/.x.tagmoor-tmp-Ab12Cd"
ln -s "$T/outside" "$UD/link.service.d"
echo mine >"$UD/notes.tagmoor-tmp-Ab12Cd"
stamp() { stat -c '%n %Y.%y %s' "$SD/state.json" "$SD/floor" "$UD/web.service" "$UD/web.service.d/10-env.conf" 2>&1; }
before=$(stamp)
SYNC
check "idle poll exits 0" [ "$RC" = 0 ]
check "unit dir: temp file removed" [ ! -e "$UD/.web.service.tagmoor-tmp-Ab12Cd" ]
check "drop-in dir: temp file removed" [ ! -e "$UD/web.service.d/.10-env.conf.tagmoor-tmp-Xy98Zw" ]
check "state dir: temp files removed (the pass calls tm_file_clean_temps)" \
	[ ! -e "$SD/.state.json.tagmoor-tmp-Qw12Er" ] && [ ! -e "$SD/.floor.tagmoor-tmp-Zz00Zz" ]
check "a symlinked drop-in dir is not followed" [ -e "$T/outside/.x.tagmoor-tmp-Ab12Cd" ]
check "a name without the leading dot is not ours" [ -e "$UD/notes.tagmoor-tmp-Ab12Cd" ]
check "the idle poll wrote nothing else (state.json, floor, units untouched)" [ "$(stamp)" = "$before" ]
# whatever is left of them must not fail every run below
rm -f "$UD/link.service.d" "$UD/notes.tagmoor-tmp-Ab12Cd" "$SD/.state.json.tagmoor-tmp-Qw12Er" \
	"$SD/.floor.tagmoor-tmp-Zz00Zz" "$UD/.web.service.tagmoor-tmp-Ab12Cd" \
	"$UD/web.service.d/.10-env.conf.tagmoor-tmp-Xy98Zw"

echo "# measuring a normal run (new revision, incremental fetch)"
D=0
for _ in 1 2; do
	release
	t0=$(now_ms)
	SYNC
	t1=$(now_ms)
	[ "$RC" = 0 ] || { echo "$OUT" | tail -5 | sed 's/^/#   /'; bad "an un-killed sync of a new revision exits 0 (rc $RC)"; }
	D=$((D + t1 - t0))
done
D=$((D / 2))
[ "$D" -lt 50 ] && D=50
echo "# a normal run takes ~$D ms; kills are drawn uniformly from [0, $D] ms"

# Where the kill landed: after the killed run's last log line.
where() {
	if [ "$krc" != 137 ]; then
		echo "had finished, rc $krc"
	else
		local last
		last=$(tail -1 "$T/killed.log" | cut -d' ' -f3- | sed "s|$ROOT||g" | cut -c1-70)
		echo "mid-run, after: ${last:-(nothing logged)}"
	fi
}
echo "# $RUNS power cuts"
declare -A NFAIL=([exit]=0 [state]=0 [content]=0 [temps]=0 [inventory]=0 [enabled]=0)
CONVERGED=0 KILLED=0
for run in $(seq 1 "$RUNS"); do
	release
	ms=$(((RANDOM * 32768 + RANDOM) % (D + 1)))
	delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
	setsid "$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" sync >"$T/killed.log" 2>&1 &
	pid=$!
	sleep "$delay"
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
		mid=1
	else
		mid=0
	fi
	wait "$pid" 2>/dev/null
	krc=$?
	# a child (systemctl --root) of the killed process group is gone too
	for _ in $(seq 1 50); do pgrep -g "$pid" >/dev/null 2>&1 || break; sleep 0.02; done
	[ "$krc" = 137 ] && KILLED=$((KILLED + 1))
	moved=""
	if ((run % 3 == 0)); then
		release
		moved=", the tag moved on to release $REV"
	fi
	SYNC "$T/recovery.log"
	checks
	[ "$RC" = 0 ] || CHECK_OUT="exit: the recovery sync exited $RC${CHECK_OUT:+
$CHECK_OUT}"
	if [ -z "$CHECK_OUT" ]; then
		CONVERGED=$((CONVERGED + 1))
		echo "ok   - run $run: killed after ${delay}s ($(where))$moved, converged on release $REV"
	else
		FAILS=$((FAILS + 1))
		echo "FAIL - run $run: killed after ${delay}s ($(where))$moved, release $REV:"
		for c in "${!NFAIL[@]}"; do
			grep -q "^$c:" <<<"$CHECK_OUT" && NFAIL[$c]=$((NFAIL[$c] + 1))
		done
		printf '%s\n' "$CHECK_OUT" | head -8 | sed 's/^/#     /'
		echo "#   killed run, last lines:"
		tail -3 "$T/killed.log" | sed 's/^/#     /'
		echo "#   recovery sync, last lines:"
		tail -4 "$T/recovery.log" | sed 's/^/#     /'
		# the next run starts from a converged device, so that one failure
		# is not counted again in every later run
		for _ in 1 2; do SYNC; [ "$RC" = 0 ] && break; done
	fi
done

echo
summary="powercut: runs=$RUNS converged=$CONVERGED killed_mid_run=$KILLED"
for c in exit state content temps inventory enabled; do summary+=" $c=${NFAIL[$c]}"; done
echo "$summary"
if [ "$FAILS" -eq 0 ]; then echo "all power-cut cases passed"; exit 0; fi
echo "$FAILS case(s) failed"
exit 1
