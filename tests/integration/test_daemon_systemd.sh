#!/usr/bin/env bash
# test_daemon_systemd.sh — issue 11: `tagmoor run` as the Type=notify service
# of packaging/systemd/tagmoor.service in a real systemd (Debian 12 in
# systemd-nspawn), against the real HTTPS git server on the host. The unit is
# installed as shipped, sandbox included, and the INI is where the unit's
# ConditionPathExists= wants it (/etc/tagmoor/tagmoor.ini); a drop-in only
# points ExecStart at the built binary, makes the test's directories (under
# /tmp, which PrivateTmp= hides) visible read-only, and shortens
# WatchdogSec/RestartSec. Cases: `systemctl start` returns once
# READY=1 arrived (after the first pass: the repository's unit is active);
# the journal has the daemon's lines at their priorities without a second
# timestamp; `systemctl reload` (RELOADING/READY) keeps it active; a moved
# tag is applied; a pass made to hang (the test-only hang point) stops the
# watchdog pings and systemd kills and restarts tagmoor (NRestarts grows),
# after which it converges; `systemctl stop` ends it cleanly (status 0).
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/integration/nspawn.sh"
nspawn_need
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap systemctl
if ! grep -q TAGMOOR_TEST_HANG "$TAGMOOR"; then
	echo "SKIP: $TAGMOOR has no test hooks (configure with -DTM_TEST_HOOKS=ON)" >&2
	exit 77
fi
tm_tmpdir
chmod 755 "$TM_TMP"
tm_git_server_start || exit 1
T=$TM_TMP
BUILD=$(cd "$(dirname "$TAGMOOR")" && pwd)
wait_for() { local t=$1 i; shift; for ((i = 0; i < t * 5; i++)); do "$@" && return 0; sleep 0.2; done; return 1; }

tm_signed_repo fleet || exit 1
release() { tm_release "$1"; }
svc() { # name exec
	mkdir -p "$work/units"
	printf '[Unit]\nDescription=%s\n\n[Service]\nExecStart=%s\n\n[Install]\nWantedBy=multi-user.target\n' \
		"$1" "$2" >"$work/units/$1.service"
}

cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-0042
state_dir = /var/lib/tagmoor
interval = 1s
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 2s
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units
wait = 1s
INI
HANG=$T/hang

svc web "/bin/sleep infinity"
release "release 1"

nspawn_boot "tm-daemon-$$" "$BUILD" "$T" || { echo "FAIL: container did not boot"; exit 1; }
R=$NSPAWN_DIR
in_c() { nspawn_run "$@"; }
prop() { in_c systemctl show -p "$1" --value tagmoor.service; }

install -m 0644 "$TM_SOURCE_DIR/packaging/systemd/tagmoor.service" "$R/etc/systemd/system/tagmoor.service"
install -d -m 0755 "$R/etc/tagmoor"
install -m 0644 "$T/tagmoor.ini" "$R/etc/tagmoor/tagmoor.ini"
mkdir -p "$R/etc/systemd/system/tagmoor.service.d"
cat >"$R/etc/systemd/system/tagmoor.service.d/test.conf" <<CONF
[Service]
ExecStart=
ExecStart=$TAGMOOR run
BindReadOnlyPaths=$BUILD $T
Environment=TAGMOOR_TEST_HANG=$HANG
WatchdogSec=2s
RestartSec=1s
LimitCORE=0
CONF
in_c systemctl daemon-reload

echo "# 1. systemctl start returns after READY=1 (the first pass)"
in_c timeout 60 systemctl start tagmoor.service
RC=$?
check "systemctl start exits 0 ($RC)" [ "$RC" = 0 ]
check "tagmoor.service is active" [ "$(in_c systemctl is-active tagmoor.service)" = active ]
check "the repository's web.service is active (the first pass ran before READY)" \
	[ "$(in_c systemctl is-active web.service)" = active ]
check "StatusText says synced ($(prop StatusText))" bash -c "[[ '$(prop StatusText)' == synced* ]]"
check "the watchdog is set (WatchdogUSec=$(prop WatchdogUSec))" [ "$(prop WatchdogUSec)" = 2s ]

echo "# 2. the journal: priorities from <N>, no second timestamp"
J=$(in_c journalctl -u tagmoor.service -o cat --no-pager)
check "info lines in the journal without a timestamp" grep -qE '^info first pass done' <<<"$J"
check "no raw <N> prefix left in the messages" bash -c "! grep -qE '^<[0-9]>' <<<'$J'"
JP=$(in_c journalctl -u tagmoor.service -o export --no-pager | grep -a -B20 'MESSAGE=info first pass done' | grep -a '^PRIORITY=' | tail -n 1)
check "recorded at priority 6 ($JP)" [ "$JP" = PRIORITY=6 ]

echo "# 3. systemctl reload: RELOADING=1 ... READY=1, still active"
in_c timeout 30 systemctl reload tagmoor.service
RC=$?
check "systemctl reload exits 0 ($RC)" [ "$RC" = 0 ]
check "reloaded, per the journal" wait_for 5 bash -c "nsenter -t $NSPAWN_LEADER -m -u -i -n -p -r -w journalctl -u tagmoor.service -o cat --no-pager | grep -q 'configuration reloaded'"
check "still active" [ "$(in_c systemctl is-active tagmoor.service)" = active ]

echo "# 4. the tag moves -> applied by the daemon"
svc web "/bin/sleep 100000"
release "release 2"
check "web.service rewritten within a few seconds" wait_for 10 grep -q 'sleep 100000' "$R/etc/systemd/system/web.service"

echo "# 5. a pass that hangs: the watchdog pings stop, systemd kills and restarts tagmoor"
n0=$(prop NRestarts)
pid0=$(prop MainPID)
touch "$HANG"
svc web "/bin/sleep 200000"
release "release 3"
check "the pass reaches the hang point" wait_for 10 bash -c "nsenter -t $NSPAWN_LEADER -m -u -i -n -p -r -w journalctl -u tagmoor.service -o cat --no-pager | grep -q 'test hook'"
# bound = 3 x timeout (2 s) + 2 x wait (1 s) + 15 s margin = 23 s; then WatchdogSec=2s
check "NRestarts grows (was $n0)" wait_for 60 bash -c "[ \"\$(nsenter -t $NSPAWN_LEADER -m -u -i -n -p -r -w systemctl show -p NRestarts --value tagmoor.service)\" -gt $n0 ]"
J=$(in_c journalctl -u tagmoor.service -o cat --no-pager)
check "the daemon said its pings stopped" grep -q 'watchdog: a pass has run' <<<"$J"
check "systemd saw a watchdog timeout" bash -c "nsenter -t $NSPAWN_LEADER -m -u -i -n -p -r -w journalctl --no-pager | grep -qi 'watchdog timeout'"
rm -f "$HANG"
check "the restarted tagmoor is active again" wait_for 20 bash -c "[ \"\$(nsenter -t $NSPAWN_LEADER -m -u -i -n -p -r -w systemctl is-active tagmoor.service)\" = active ]"
check "a new main process ($pid0 -> $(prop MainPID))" [ "$(prop MainPID)" != "$pid0" ]
check "and it converges on release 3" wait_for 15 grep -q 'sleep 200000' "$R/etc/systemd/system/web.service"

echo "# 6. systemctl stop: STOPPING=1, exit 0"
in_c timeout 30 systemctl stop tagmoor.service
RC=$?
check "systemctl stop exits 0 ($RC)" [ "$RC" = 0 ]
check "main process exited 0 (ExecMainStatus=$(prop ExecMainStatus), Result=$(prop Result))" \
	[ "$(prop ExecMainStatus)" = 0 ] && [ "$(prop Result)" = success ]

echo
if [ "$FAILS" -eq 0 ]; then echo "all daemon/systemd cases passed"; exit 0; fi
echo "$FAILS case(s) failed"
in_c journalctl -u tagmoor.service -o short-monotonic --no-pager | tail -n 40
exit 1
