#!/usr/bin/env bash
# test_sync_systemd.sh — issue "First end-to-end slice": `tagmoor sync` keeps a
# real systemd (Debian 12 booted in systemd-nspawn) converged with an
# SSH-signed repository served over real HTTPS from the host (the container
# shares the host's loopback). Cases: install + enable + start; change →
# restart (new MainPID); removal → stopped, disabled, deleted; a failing unit
# → exit 1 naming it, last good re-applied (rolled_back), not retried until
# the ref moves; hand edit and hand delete → repaired by sync; hostile
# revisions (invalid unit name, symlink, "..") → nothing written; a foreign
# unit is not overwritten; two concurrent syncs → one exits 5; --root
# pre-seeding checked through the enablement symlinks, nothing started.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/integration/nspawn.sh"
nspawn_need
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap systemctl
tm_tmpdir
chmod 755 "$TM_TMP"
tm_git_server_start || exit 1
T=$TM_TMP
BUILD=$(cd "$(dirname "$TAGMOOR")" && pwd)

tm_signed_repo fleet || exit 1
release() { tm_release "$1"; }
unit() { mkdir -p "$(dirname "$work/units/$1")"; printf '%b' "$2" >"$work/units/$1"; }
svc() { # description exec
	printf '[Unit]\nDescription=%s\n\n[Service]\nExecStart=%s\n\n[Install]\nWantedBy=multi-user.target\n' "$1" "$2"
}

cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-0042
state_dir = /var/lib/tagmoor
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 10s
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units/common units/devices/\${device_id}
wait = 15s
INI

nspawn_boot "tm-sync-$$" "$BUILD" "$T" || { echo "FAIL: container did not boot"; exit 1; }
R=$NSPAWN_DIR
UD=/etc/systemd/system
SYNC() { OUT=$(nspawn_run "$TAGMOOR" -c "${SYNC_INI:-$T/tagmoor.ini}" sync 2>&1); RC=$?; echo "$OUT" | sed 's/^/#   /'; }
in_c() { nspawn_run "$@"; }
active() { in_c systemctl is-active "$1" 2>/dev/null; }
enabled() { in_c systemctl is-enabled "$1" 2>/dev/null; }
mainpid() { in_c systemctl show -p MainPID --value "$1"; }
has() { grep -qE -- "$1" <<<"$OUT"; }
snapshot() { (cd "$R$UD" && find . -type f -o -type l | sort | xargs -r sha256sum 2>/dev/null; find . | sort) | sha256sum; }

echo "# 1. install + enable + start"
svc "web" "/bin/sleep infinity" >/dev/null
unit common/web.service "$(svc web '/bin/sleep infinity')"
unit common/web.service.d/10-env.conf '[Service]\nEnvironment=SITE=${device_id}\n'
unit common/tick.timer '[Timer]\nOnCalendar=hourly\n\n[Install]\nWantedBy=timers.target\n'
unit common/tick.service '[Service]\nType=oneshot\nExecStart=/bin/true\n'
release "release 1"
SYNC
check "sync exits 0" [ "$RC" = 0 ]
check "web.service is active" [ "$(active web.service)" = active ]
check "web.service is enabled" [ "$(enabled web.service)" = enabled ]
check "tick.timer is enabled and active" [ "$(enabled tick.timer)/$(active tick.timer)" = enabled/active ]
check "drop-in written with \${device_id} expanded" grep -q 'SITE=edge-0042' "$R$UD/web.service.d/10-env.conf"
check "status says synced" bash -c "'$TAGMOOR' -c '$T/tagmoor.ini' --root '$R' status | grep -q 'state: *synced'"
GOOD1=$(git -C "$work" rev-parse HEAD)

echo "# 2. change -> restart (new MainPID)"
pid1=$(mainpid web.service)
unit common/web.service "$(svc 'web v2' '/bin/sleep 100000')"
release "release 2"
SYNC
pid2=$(mainpid web.service)
check "sync exits 0" [ "$RC" = 0 ]
check "web.service restarted ($pid1 -> $pid2)" [ -n "$pid2" ] && [ "$pid2" != 0 ] && [ "$pid1" != "$pid2" ]
check "the new unit is in place" grep -q 'sleep 100000' "$R$UD/web.service"
check "unchanged unit not restarted (timer still active)" [ "$(active tick.timer)" = active ]
GOOD2=$(git -C "$work" rev-parse HEAD)

echo "# 3. removal -> stopped, disabled, deleted"
unit common/extra.service "$(svc extra '/bin/sleep infinity')"
release "release 3"
SYNC
check "extra.service active" [ "$(active extra.service)" = active ]
rm "$work/units/common/extra.service"
release "release 4"
SYNC
check "sync exits 0" [ "$RC" = 0 ]
check "extra.service stopped" [ "$(active extra.service)" != active ]
check "extra.service file deleted" [ ! -e "$R$UD/extra.service" ]
check "extra.service enablement removed" [ ! -e "$R$UD/multi-user.target.wants/extra.service" ]
GOOD=$(git -C "$work" rev-parse HEAD)

echo "# 4. a failing unit -> exit 1, named; last good re-applied"
unit common/broken.service "$(svc broken /bin/false)"
unit common/web.service "$(svc 'web v3' '/bin/sleep 200000')"
release "release 5 (broken)"
BAD=$(git -C "$work" rev-parse refs/tags/stable)
SYNC
check "sync exits 1" [ "$RC" = 1 ]
check "the error names broken.service" has "broken.service"
check "broken.service removed again by the rollback" [ ! -e "$R$UD/broken.service" ]
check "web.service back at the last good content" grep -q 'sleep 100000' "$R$UD/web.service"
check "web.service active after rollback" [ "$(active web.service)" = active ]
ST=$("$TAGMOOR" -c "$T/tagmoor.ini" --root "$R" status --json)
check "status: rolled_back" grep -q '"state":"rolled_back"' <<<"$ST"
check "status: last good is release 4" grep -q "\"last_good_commit\":\"$GOOD\"" <<<"$ST"
check "status: error names the unit" grep -q '"object":"broken.service"' <<<"$ST"
SYNC
check "the bad revision is not retried (exit 1, says so)" [ "$RC" = 1 ] && has "not retried"
check "still no broken.service" [ ! -e "$R$UD/broken.service" ]
rm "$work/units/common/broken.service"
release "release 6 (fixed)"
SYNC
check "the ref moved: new revision applied" [ "$RC" = 0 ] && grep -q 'sleep 200000' "$R$UD/web.service"

echo "# 5. hand edit and hand delete -> repaired by sync"
echo "# edited by hand" >>"$R$UD/web.service"
rm -f "$R$UD/tick.timer"
SYNC
check "sync exits 0" [ "$RC" = 0 ]
check "hand edit reverted" [ "$(grep -c 'edited by hand' "$R$UD/web.service")" = 0 ]
check "hand delete restored" [ -f "$R$UD/tick.timer" ]
ST=$("$TAGMOOR" -c "$T/tagmoor.ini" --root "$R" status --json)
check "status: drifted with the objects repaired" grep -q '"state":"drifted"' <<<"$ST" && grep -q '"object":"web.service","action":"repaired"' <<<"$ST"

echo "# 6. hostile revisions -> nothing written"
hostile() { # desc
	local before
	before=$(snapshot)
	release "$1"
	SYNC
	check "$1: sync exits 1" [ "$RC" = 1 ]
	check "$1: unit_dir unchanged" [ "$(snapshot)" = "$before" ]
}
unit common/new.service "$(svc new '/bin/sleep infinity')"
unit common/bad:name!.service "$(svc x /bin/true)"
hostile "invalid unit name"
check "  error names the path" has 'bad:name!.service'
rm "$work/units/common/bad:name!.service"
ln -s /etc/passwd "$work/units/common/link.service"
hostile "symlink"
check "  error names the symlink" has "link.service"
rm "$work/units/common/link.service"
git -C "$work" add -A && git -C "$work" commit -qm "no symlink"
# a tree entry named ".." cannot be made with git add; build it with mktree
mkdir -p "$T/evil" && blob=$(printf '[Service]\nExecStart=/bin/true\n' | git -C "$work" hash-object -w --stdin)
sub=$(printf '100644 blob %s\tx.service\n' "$blob" | git -C "$work" mktree)
common=$(git -C "$work" rev-parse HEAD:units/common)
evil_common=$( (git -C "$work" ls-tree "$common"; printf '040000 tree %s\t..\n' "$sub") | git -C "$work" mktree --missing 2>/dev/null)
if [ -n "$evil_common" ]; then
	units=$( (git -C "$work" ls-tree HEAD:units | grep -v 'common$'; printf '040000 tree %s\tcommon\n' "$evil_common") | git -C "$work" mktree)
	root=$( (git -C "$work" ls-tree HEAD | grep -v 'units$'; printf '040000 tree %s\tunits\n' "$units") | git -C "$work" mktree)
	c=$(git -C "$work" commit-tree "$root" -p HEAD -m "dotdot")
	git -C "$work" reset -q --hard "$c" 2>/dev/null || git -C "$work" update-ref HEAD "$c"
	before=$(snapshot)
	TAGTIME=$((TAGTIME + 60))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "dotdot" stable "$c" >/dev/null
	git -C "$work" push -q -f origin "$c:refs/heads/main" refs/tags/stable 2>/dev/null
	SYNC
	check "'..' path: sync exits 1" [ "$RC" = 1 ]
	check "'..' path: unit_dir unchanged" [ "$(snapshot)" = "$before" ]
	git -C "$work" reset -q --hard HEAD~1
else
	bad "could not build a tree with a '..' entry (git mktree refused)"
fi
rm -f "$work/units/common/new.service"

echo "# 7. a foreign unit is never overwritten"
printf '[Service]\nExecStart=/bin/sleep 1\n' >"$R$UD/foreign.service"
unit common/foreign.service "$(svc foreign '/bin/sleep infinity')"
unit common/other.service "$(svc other '/bin/sleep infinity')"
before=$(snapshot)
release "release 7 (foreign)"
SYNC
check "sync exits 1" [ "$RC" = 1 ]
check "the error names foreign.service" has "foreign.service"
check "foreign.service untouched, nothing else written" [ "$(snapshot)" = "$before" ]
rm "$work/units/common/foreign.service" "$work/units/common/other.service"
release "release 8"
SYNC
check "next good revision applies (exit 0)" [ "$RC" = 0 ]
check "foreign.service still untouched" grep -q 'sleep 1$' "$R$UD/foreign.service"

echo "# 8. two concurrent syncs -> one exits 5"
unit common/slow.service '[Service]\nType=oneshot\nExecStart=/bin/sleep 3\nRemainAfterExit=yes\n\n[Install]\nWantedBy=multi-user.target\n'
release "release 9 (slow)"
nspawn_run "$TAGMOOR" -c "$T/tagmoor.ini" sync >"$T/sync1.log" 2>&1 &
p1=$!
sleep 0.7
nspawn_run "$TAGMOOR" -c "$T/tagmoor.ini" sync >"$T/sync2.log" 2>&1
rc2=$?
wait $p1; rc1=$?
check "first sync exits 0 ($rc1), second exits 5 ($rc2)" [ "$rc1" = 0 ] && [ "$rc2" = 5 ]

echo "# 8b. on_failure = keep: a revision that fails health stays failed until the ref moves"
sed 's/^device_id = edge-0042$/device_id = edge-0042\non_failure = keep/' "$T/tagmoor.ini" >"$T/keep.ini"
unit common/crash.service "$(svc crash /bin/false)"
release "release 10 (crashes, keep)"
SYNC_INI=$T/keep.ini SYNC
check "keep: sync exits 1" [ "$RC" = 1 ]
check "keep: the failing unit is kept in place" [ -f "$R$UD/crash.service" ]
SYNC_INI=$T/keep.ini SYNC
check "keep: the next poll (nothing moved) exits 1, not retried" [ "$RC" = 1 ] && has "not retried"
ST=$("$TAGMOOR" -c "$T/keep.ini" --root "$R" status --json)
check "keep: status stays failed" grep -q '"state":"failed"' <<<"$ST"
rm "$work/units/common/crash.service"
release "release 11 (fixed)"
SYNC_INI=$T/keep.ini SYNC
check "keep: the ref moved to a good revision: exit 0" [ "$RC" = 0 ]
check "keep: the failed revision's unit is pruned (it was ours)" [ ! -e "$R$UD/crash.service" ]

echo "# 9. --root pre-seeding (on the host, nothing started)"
IMG=$T/image
mkdir -p "$IMG"
OUT=$("$TAGMOOR" -c "$T/tagmoor.ini" --root "$IMG" sync 2>&1); RC=$?
echo "$OUT" | sed 's/^/#   /'
check "--root sync exits 0" [ "$RC" = 0 ]
check "units written under ROOT/etc/systemd/system" [ -f "$IMG/etc/systemd/system/web.service" ]
check "web.service enabled through its wants/ symlink" [ -L "$IMG/etc/systemd/system/multi-user.target.wants/web.service" ]
check "tick.timer enabled through timers.target.wants" [ -L "$IMG/etc/systemd/system/timers.target.wants/tick.timer" ]
check "state under ROOT" [ -f "$IMG/var/lib/tagmoor/state.json" ]
check "nothing of it started on the host" [ ! -e /etc/systemd/system/web.service ]

echo
if [ "$FAILS" -eq 0 ]; then echo "all sync/systemd cases passed"; exit 0; fi
echo "$FAILS case(s) failed"; exit 1
