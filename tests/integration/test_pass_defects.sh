#!/usr/bin/env bash
# test_pass_defects.sh — issue "The house", part 2: defects of the reconcile
# pass found by reading it, each reproduced through the command line against
# the real HTTPS git server (systemd applier with --root: files only).
#  - diff with prune = no shows no removals (sync makes none);
#  - the error a failed pass ends with is the failure, not the note that a
#    damaged state.json was moved aside;
#  - sync when the state lock cannot be taken (an I/O error) prints no
#    "(null)" state;
#  - a failure to set refs/tagmoor/applied is reported, not ignored.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap systemctl
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
TM() { OUT=$("$TAGMOOR" -c "$INI" --root "$ROOT" "$@" 2>&1); RC=$?; echo "$OUT" | sed 's/^/#   /'; }
has() { grep -qE -- "$1" <<<"$OUT"; }

tm_signed_repo fleet || exit 1
release() { tm_release "$1"; }
unit() { mkdir -p "$work/units"; printf '[Service]\nExecStart=/bin/sleep %s\n' "$2" >"$work/units/$1"; }
ROOT=$T/root
STATE=$ROOT/var/lib/tagmoor
UD=$ROOT/etc/systemd/system
mkdir -p "$UD"
write_ini() {
	cat >"$1" <<INI
[agent]
device_id = edge-0042
state_dir = ${STATE_DIR:-/var/lib/tagmoor}
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 10s
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units
prune = ${PRUNE:-yes}
wait = 0
INI
}
INI=$T/noprune.ini
PRUNE=no write_ini "$INI"

echo "# diff with prune = no"
unit a.service 1; unit b.service 2
release "a and b"
TM sync
check "sync a and b (exit $RC)" [ "$RC" = 0 ]
rm "$work/units/b.service"; unit a.service 3
release "b removed from the repository"
TM diff
check "diff exits 0 ($RC)" [ "$RC" = 0 ]
check "diff shows the change to a.service" has "a.service"
check "diff shows no removal of b.service (prune = no)" bash -c "! grep -q 'b.service' <<<'$OUT'"
TM sync
check "sync keeps b.service (prune = no)" [ -f "$UD/b.service" ]

echo "# the failure, not the moved-aside note"
INI=$T/prune.ini
write_ini "$INI"
printf '[Service]\nExecStart=/bin/true\n' >"$UD/foreign.service"
unit foreign.service 4
release "declares a foreign unit"
echo "{ damaged" >"$STATE/state.json"
TM sync
check "sync exits 1 ($RC)" [ "$RC" = 1 ]
LAST=$(tail -1 <<<"$OUT")
check "the final error names the foreign unit" has "foreign.service.*(exists|not written by tagmoor)"
check "the final error line is not the moved-aside note" bash -c "! grep -q 'moved aside' <<<'$(grep -i error <<<"$OUT" | tail -1)'"
rm "$work/units/foreign.service"
release "no foreign unit"
TM sync

echo "# the lock cannot be taken (I/O error)"
: >"$T/not-a-dir"
STATE_DIR=$T/not-a-dir/state write_ini "$T/io.ini"
OUT=$("$TAGMOOR" -c "$T/io.ini" sync 2>&1); RC=$?
echo "$OUT" | sed 's/^/#   /'
check "sync fails with a non-zero exit ($RC)" [ "$RC" != 0 ]
check "no '(null)' is printed" bash -c "! grep -q '(null)' <<<'$OUT'"
check "the error names the state directory" has "not-a-dir"

echo "# refs/tagmoor/applied cannot be set"
rm -f "$STATE/repo.git/refs/tagmoor/applied"
mkdir -p "$STATE/repo.git/refs/tagmoor/applied/blocker"
echo "not a ref" >"$STATE/repo.git/refs/tagmoor/applied/blocker/x"
unit c.service 5
release "c"
TM sync
check "sync still converges (exit $RC)" [ "$RC" = 0 ]
check "the ref failure is reported" has "tagmoor/applied"

echo
if [ "$FAILS" -eq 0 ]; then echo "all pass-defect cases passed"; exit 0; fi
echo "$FAILS case(s) failed"; exit 1
