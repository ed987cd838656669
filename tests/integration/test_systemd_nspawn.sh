#!/bin/bash
# test_systemd_nspawn.sh — the systemd applier against a real systemd 252, booted in a
# systemd-nspawn container (tests/integration/nspawn.sh), driven through tests/tools'
# tm-systemd-drive (later: `tagmoor sync`). The build directory is bind-mounted read-only,
# so the freshly built driver runs inside.
#
# Cases: install + enable + start; unchanged second pass restarts nothing; change -> restart
# (unit file and drop-in); removal -> stopped, disabled, deleted; failing unit -> TM_EAPPLY
# naming the unit with journal lines; a crash loop -> unhealthy; hand edit / hand delete -> drift repaired; a foreign unit
# is not overwritten and nothing else is written; an invalid unit name writes nothing;
# --root pre-seeding of an empty directory (wants/ symlinks, nothing started); dry run.
set -u

. "$TM_SOURCE_DIR/tests/integration/nspawn.sh"
nspawn_need

BUILD=$(cd "$(dirname "$TAGMOOR")" && pwd)
DRIVE=${TM_SYSTEMD_DRIVE:-$BUILD/tests/tools/tm-systemd-drive}
if ! [ -x "$DRIVE" ]; then
	echo "FAIL: $DRIVE not built" >&2
	exit 1
fi

PASS=0
FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
bad() { echo "FAIL - $1"; FAIL=$((FAIL + 1)); }
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

start=$(date +%s%N)
nspawn_boot "tm-sd-$$" "$BUILD" || { echo "FAIL: container did not boot"; exit 1; }
echo "# container booted in $(( ($(date +%s%N) - start) / 1000000 )) ms"

R=$NSPAWN_DIR                 # the container's root, seen from the host
UD=/etc/systemd/system        # unit_dir inside
REPO=/srv/repo                # the `paths` entry inside
INV=/srv/inventory

# drive CMD [ARGS...]: run the driver inside; output in $OUT, exit status in $RC.
drive() {
	local cmd=$1
	shift
	OUT=$(nspawn_run "$DRIVE" "$cmd" --unit-dir "$UD" --from "$REPO" --inventory "$INV" "$@" 2>&1)
	RC=$?
	echo "$OUT" | sed 's/^/#   /'
}
has() { grep -qF -- "$1" <<<"$OUT"; }
in_c() { nspawn_run "$@"; }
active() { in_c systemctl is-active "$1" 2>/dev/null; }
mainpid() { in_c systemctl show -p MainPID --value "$1"; }
put() { mkdir -p "$(dirname "$R$REPO/$1")" && printf '%b' "$2" >"$R$REPO/$1"; }
reset_repo() { rm -rf "$R$REPO" && mkdir -p "$R$REPO"; }

WEB='[Unit]\nDescription=tagmoor test web\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n'

echo "# 1. install + enable + start (unit in a subdirectory, drop-in, unit without [Install])"
reset_repo
put common/web/web.service "$WEB"
put common/web/web.service.d/10-env.conf '[Service]\nEnvironment=TM_LEVEL=1\n'
put common/helper.service '[Service]\nType=oneshot\nExecStart=/bin/true\n'
put jobs/once.service '[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n'
put jobs/remain.service '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 0.5\n\n[Install]\nWantedBy=multi-user.target\n'
drive sync --wait 20000
check "sync succeeds (oneshot services count as healthy)" [ "$RC" = 0 ]
check "five objects applied" has "applied=5 unchanged=0 pruned=0"
check "oneshot ran" [ "$(in_c systemctl show -p Result --value once.service)" = success ] &&
	[ "$(in_c systemctl show -p ExecMainStatus --value once.service)" = 0 ]
check "oneshot with RemainAfterExit active (exited)" \
	[ "$(in_c systemctl show -p SubState --value remain.service)" = exited ]
check "web.service active" [ "$(active web.service)" = active ]
check "web.service enabled" [ "$(in_c systemctl is-enabled web.service)" = enabled ]
check "enablement symlink in multi-user.target.wants" \
	[ "$(readlink "$R$UD/multi-user.target.wants/web.service")" = "$UD/web.service" ]
check "drop-in written as NAME.d/X.conf" [ -f "$R$UD/web.service.d/10-env.conf" ]
check "drop-in in effect" \
	grep -q TM_LEVEL=1 <<<"$(in_c systemctl show -p Environment --value web.service)"
check "unit without [Install] written, not started" \
	[ -f "$R$UD/helper.service" ] && [ "$(active helper.service)" = inactive ]
check "unit files mode 0644" [ "$(stat -c %a "$R$UD/web.service")" = 644 ]
check "inventory records the ids" [ "$(sort "$R$INV" | tr '\n' ' ')" = \
	"helper.service once.service remain.service web.service web.service.d/10-env.conf " ]
rm -rf "$R$REPO/jobs"
drive sync --wait 20000
check "oneshots pruned" [ "$RC" = 0 ] && has "pruned=2" && [ ! -e "$R$UD/once.service" ]
PID1=$(mainpid web.service)

echo "# 2. an unchanged second pass restarts nothing"
drive sync --wait 20000
check "second sync succeeds, all unchanged" has "applied=0 unchanged=3 pruned=0"
check "MainPID unchanged" [ "$(mainpid web.service)" = "$PID1" ]

echo "# 3. change -> restart (drop-in change restarts the parent)"
put common/web/web.service.d/10-env.conf '[Service]\nEnvironment=TM_LEVEL=2\n'
drive sync --wait 20000
check "sync succeeds" [ "$RC" = 0 ]
check "the drop-in is the change" has "changed=web.service.d/10-env.conf"
PID2=$(mainpid web.service)
check "web.service restarted (MainPID $PID1 -> $PID2)" [ -n "$PID2" ] && [ "$PID2" != 0 ] && [ "$PID2" != "$PID1" ]
check "new drop-in in effect" \
	grep -q TM_LEVEL=2 <<<"$(in_c systemctl show -p Environment --value web.service)"
put common/web/web.service "${WEB/tagmoor test web/tagmoor test web v2}"
drive sync --wait 20000
PID3=$(mainpid web.service)
check "unit file change restarts (MainPID $PID2 -> $PID3)" [ "$RC" = 0 ] && [ "$PID3" != "$PID2" ]
check "new description loaded" \
	[ "$(in_c systemctl show -p Description --value web.service)" = "tagmoor test web v2" ]

echo "# 4. hand edit and hand delete -> drift repaired"
printf '[Service]\nExecStart=/bin/sleep 5\n' >"$R$UD/web.service"
drive drift
check "drift succeeds and lists web.service" [ "$RC" = 0 ] && has "drifted=web.service"
check "content restored" cmp -s "$R$UD/web.service" "$R$REPO/common/web/web.service"
PID4=$(mainpid web.service)
check "repaired unit restarted (MainPID $PID3 -> $PID4)" [ "$PID4" != "$PID3" ] && [ "$(active web.service)" = active ]
rm -f "$R$UD/web.service.d/10-env.conf"
drive drift --dry-run
check "dry-run drift reports, prints the diff, restores nothing" \
	has "drifted=web.service.d/10-env.conf" && has "+Environment=TM_LEVEL=2" &&
	[ ! -e "$R$UD/web.service.d/10-env.conf" ]
drive drift
check "deleted drop-in restored" [ "$RC" = 0 ] && [ -f "$R$UD/web.service.d/10-env.conf" ]
drive drift
check "no drift when nothing changed" [ "$RC" = 0 ] && has "drifted=" && ! has "drifted=web"

echo "# 5. removal -> stopped, disabled, deleted"
rm -rf "$R$REPO/common/web"
drive sync --wait 20000
check "sync succeeds with two pruned" [ "$RC" = 0 ] && has "pruned=2"
check "web.service stopped" [ "$(active web.service)" != active ]
check "web.service disabled (symlink gone)" [ ! -e "$R$UD/multi-user.target.wants/web.service" ] &&
	[ ! -L "$R$UD/multi-user.target.wants/web.service" ]
check "unit file and drop-in (and its dir) deleted" \
	[ ! -e "$R$UD/web.service" ] && [ ! -e "$R$UD/web.service.d" ]
check "inventory keeps only helper.service" [ "$(cat "$R$INV")" = helper.service ]

echo "# 6. failing unit -> TM_EAPPLY naming it, with journal lines"
put fail.service '[Service]\nExecStart=/bin/false\n\n[Install]\nWantedBy=multi-user.target\n'
drive sync --wait 10000
check "sync fails (exit 1)" [ "$RC" = 1 ]
check "rc is TM_EAPPLY (-12)" has "rc=-12"
check "message names the unit" has "error=systemd: health check failed" && has "fail.service is failed"
check "message carries journal lines" has "journal:" && has "status=1/FAILURE"
check "listed as unhealthy" has "unhealthy=fail.service"
rm -f "$R$REPO/fail.service"
drive sync --wait 10000
check "failed unit pruned" [ "$RC" = 0 ] && [ ! -e "$R$UD/fail.service" ]
# a crash loop (Restart=always) never settles: unhealthy within the wait
put loop.service '[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=300ms\n\n[Install]\nWantedBy=multi-user.target\n'
drive sync --wait 3000
check "crash-looping unit fails the health check" [ "$RC" = 1 ] && has "unhealthy=loop.service" &&
	has "health check failed within 3000 ms: loop.service is"
rm -f "$R$REPO/loop.service"
drive sync --wait 10000
check "crash-looping unit pruned and stopped" [ "$RC" = 0 ] && [ "$(active loop.service)" != active ] &&
	[ "$(active loop.service)" != activating ]

echo "# 7. a foreign unit is not overwritten, and nothing else is written"
printf '[Service]\nExecStart=/bin/sleep 1\n' >"$R$UD/foreign.service"
put foreign.service '[Service]\nExecStart=/bin/sleep 2\n'
put newone.service "$WEB"
cp "$R$INV" "$R/srv/inventory.before"
drive apply
check "apply fails" [ "$RC" = 1 ] && has "rc=-12"
check "message: exists and was not written by tagmoor" \
	has "error=$UD/foreign.service exists and was not written by tagmoor; refusing to overwrite"
check "foreign file untouched" grep -q 'sleep 1' "$R$UD/foreign.service"
check "nothing else written" [ ! -e "$R$UD/newone.service" ]
check "inventory unchanged" cmp -s "$R$INV" "$R/srv/inventory.before"
rm -f "$R$REPO/foreign.service" "$R$REPO/newone.service"
rm -f "$R$UD/foreign.service"

echo "# 8. an invalid unit name -> nothing written"
put 'good.service' "$WEB"
put 'we$b.service' "$WEB"
drive sync
check "sync fails with a parse error naming the path" [ "$RC" = 1 ] && has "rc=-11" &&
	has 'we$b.service' && has "not a valid unit name"
check "nothing written" [ ! -e "$R$UD/good.service" ] && [ ! -e "$R$UD/we\$b.service" ]
rm -f "$R$REPO/we\$b.service" "$R$REPO/good.service"

echo "# 9. --root pre-seeding of an empty directory: symlinks, nothing started"
reset_repo
put seed.service "${WEB/tagmoor test web/seeded}"
put seed.timer '[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n'
put seed.service.d/override.conf '[Service]\nNice=5\n'
mkdir -m 0755 "$R/srv/image"
OUT=$(nspawn_run "$DRIVE" sync --root /srv/image --unit-dir /srv/image$UD --from "$REPO" \
	--inventory /srv/image/inventory 2>&1)
RC=$?
echo "$OUT" | sed 's/^/#   /'
check "pre-seed succeeds" [ "$RC" = 0 ] && has "applied=3"
check "files under ROOT/etc/systemd/system" \
	[ -f "$R/srv/image$UD/seed.service" ] && [ -f "$R/srv/image$UD/seed.service.d/override.conf" ]
check "multi-user.target.wants symlink" \
	[ "$(readlink "$R/srv/image$UD/multi-user.target.wants/seed.service")" = "$UD/seed.service" ]
check "timers.target.wants symlink" \
	[ "$(readlink "$R/srv/image$UD/timers.target.wants/seed.timer")" = "$UD/seed.timer" ]
check "nothing started or loaded in the running system" \
	[ "$(in_c systemctl show -p LoadState --value seed.service)" = not-found ] &&
	[ "$(active seed.timer)" != active ]
check "nothing written to the live unit_dir" [ ! -e "$R$UD/seed.service" ]

echo "# 10. dry run changes nothing"
reset_repo
put dry.service "$WEB"
drive apply --dry-run
check "dry run prints a diff of a new file" [ "$RC" = 0 ] && has "--- /dev/null" &&
	has "+++ $UD/dry.service" && has "+ExecStart=/bin/sleep infinity"
check "dry run writes nothing" [ ! -e "$R$UD/dry.service" ]

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
