#!/usr/bin/env bash
# test_faults_clock.sh — the device clock jumps (issue 13, docs/faults.md).
# The pass reads the wall clock once (reconcile.c: p->time); a test build
# (TM_TEST_HOOKS) adds TAGMOOR_TEST_CLOCK_OFFSET seconds there. Which clock
# each check uses (SPEC.md, "Verification"):
#   anti-rollback floor   signed tag time only, never the clock
#   "from the future"     tag time > clock + 1 h is refused; a clock before
#                         2026-01-01 counts as not set and skips the check
#   max_age, expiry       the clock, never below the floor (effective now)
# Checked here, with a signed repository over TLS and systemd --root:
#   back 2 h      a revision signed now is "from the future": refused (exit 4),
#                 nothing changes; the clock back: accepted
#   back 1 year   (2025: not set) a new revision is accepted, the floor holds
#   forward 1 y   max_age: the applied revision is reported stale (exit 4),
#                 its units stay; expiry likewise; the clock back: synced
#   1970          a first boot without RTC: the first sync is accepted; an
#                 older signed tag replayed is still refused (the floor)
#   the floor (state.json and floor) never goes down; state.json always parses
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap systemctl python3
if ! strings "$TAGMOOR" | grep TAGMOOR_TEST_CLOCK_OFFSET >/dev/null; then
	echo "SKIP: $TAGMOOR has no test hooks (configure with -DTM_TEST_HOOKS=ON)"
	exit 77
fi
tm_tmpdir
tm_git_server_start || exit 1
tm_signed_repo fleet || exit 1
T=$TM_TMP
NOW=$(date +%s)
YEAR=$((365 * 86400))
TAGTIME=$((NOW - 7200))
ROOT=$T/root
SD=$ROOT/var/lib/tagmoor
UD=$ROOT/etc/systemd/system
mkdir -p "$UD"
write_ini() { # [verify lines]
	cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-clock
state_dir = /var/lib/tagmoor
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
[verify]
allowed_signers = $T/allowed_signers
$(printf '%s\n' "$@")
[systemd]
enabled = yes
paths = units
prune = yes
wait = 0
INI
}
write_ini
REV=0
release() { # [tag time] [extra tag message line]: the next revision
	REV=$((REV + 1))
	mkdir -p "$work/units"
	printf '[Unit]\nDescription=rev %d\n\n[Service]\nExecStart=/bin/sleep %d\n' "$REV" "$REV" >"$work/units/web.service"
	git -C "$work" add -A
	git -C "$work" commit -qm "rev $REV"
	TAGTIME=${1:-$((TAGTIME + 60))}
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "rev $REV${2:+

$2}" stable >/dev/null
	git -C "$work" push -q -f origin HEAD:refs/heads/main refs/tags/stable
	TRACKED=$(git -C "$work" rev-parse 'stable^{commit}')
}
SYNC() { # [offset seconds]
	OUT=$(TAGMOOR_TEST_CLOCK_OFFSET=${1:-0} "$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" sync 2>&1)
	RC=$?
	echo "$OUT" | grep -E 'error|stale|refused|future' | head -2 | sed 's/^/#   /'
}
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SD/state.json" "$1" 2>/dev/null; }
applied() { field 'd["applied"]["commit"]'; }
FLOOR_MAX=0
floor_ok() { # the floor never goes down; both files parse
	local a b
	a=$(field 'd["accepted_tag_time"]') || return 1
	b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted_tag_time"])' "$SD/floor" 2>/dev/null) || return 1
	[ "$a" -ge "$FLOOR_MAX" ] && [ "$b" -ge "$FLOOR_MAX" ] || return 1
	FLOOR_MAX=$a
}
unit_rev() { sed -n 's/^Description=rev //p' "$UD/web.service" 2>/dev/null; }

release
SYNC
check "rev 1 synced on a correct clock (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$TRACKED" ]
check "  the floor is recorded" floor_ok

echo "# clock 2 h behind: a revision signed now is from the future"
GOOD=$TRACKED
release $((NOW - 60))
SYNC -7200
check "refused (exit $RC = 4), says it is from the future" [ "$RC" = 4 ] && grep -qi 'future\|after the device' <<<"$OUT"
check "  nothing changed: rev 1 applied, its units" [ "$(applied)" = "$GOOD" ] && [ "$(unit_rev)" = 1 ]
check "  the floor did not go down" floor_ok
SYNC 0
check "the clock set right: accepted (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$TRACKED" ]
check "  the floor rose" floor_ok

echo "# clock a year behind (2025: taken as not set)"
release $((NOW - 50))
SYNC $((-YEAR))
check "a new revision is accepted (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$TRACKED" ]
check "  the floor did not go down" floor_ok
release $((NOW - 3 * 86400))
SYNC $((-YEAR))
check "an older signed tag (a replay) is refused although the clock is behind (exit $RC)" \
	[ "$RC" = 4 ] && [ "$(applied)" != "$TRACKED" ]
check "  the floor did not go down" floor_ok

echo "# clock a year ahead, max_age = 30d"
write_ini "max_age = 30d"
release $((NOW - 40))
SYNC
check "synced with max_age on a correct clock (exit $RC)" [ "$RC" = 0 ]
KEEP=$(applied) KREV=$(unit_rev)
SYNC $YEAR
check "a year later the applied revision is stale (exit $RC = 4)" [ "$RC" = 4 ] && grep -qi stale <<<"$OUT"
check "  its units stay (nothing removed or rolled back)" [ "$(applied)" = "$KEEP" ] && [ "$(unit_rev)" = "$KREV" ]
check "  the floor did not go down" floor_ok
SYNC 0
check "the clock set right: synced again (exit $RC)" [ "$RC" = 0 ]

echo "# clock a year ahead, Tagmoor-Expires in a month"
write_ini
release $((NOW - 30)) "Tagmoor-Expires: $(date -u -d @$((NOW + 30 * 86400)) +%Y-%m-%dT%H:%M:%SZ)"
SYNC
check "synced before its expiry (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$TRACKED" ]
SYNC $YEAR
check "a year later it is expired: stale (exit $RC = 4), units kept" [ "$RC" = 4 ] && [ "$(unit_rev)" = "$REV" ]
check "  the floor did not go down" floor_ok

echo "# first boot at 1970 (no RTC): a fresh device"
rm -rf "$SD" "$UD" && mkdir -p "$UD"
FLOOR_MAX=0
release $((NOW - 120))
SYNC $((-NOW + 3600))
check "the first sync is accepted with the clock at 1970 (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$TRACKED" ]
check "  the floor is the revision's signed time" floor_ok && [ "$FLOOR_MAX" = "$TAGTIME" ]
release $((NOW - 86400))
SYNC $((-NOW + 3600))
check "at 1970 an older signed tag is still refused by the floor (exit $RC)" [ "$RC" = 4 ]
check "  the floor did not go down" floor_ok
[ "$FAILS" = 0 ]
