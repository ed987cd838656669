#!/usr/bin/env bash
# test_faults_git.sh — the git server misbehaves (issue 13, docs/faults.md).
# Real nginx + git http-backend over TLS, reached through a fault-injecting
# HTTPS proxy (tests/integration/faults/gitproxy.py); systemd --root. For each
# fault: the pass fails with a clear error (exit 3, source) or rides it out,
# nothing of the device changes, the revision is not marked bad, and the
# next pass (fault gone) converges; the invariants of check_systemd.py hold
# (state parses, unit files exact, floor never down).
#   refused     connection refused (nothing listens)
#   500         on the ref advertisement; on the pack request
#   reset       the TLS connection reset in the middle of the pack
#   truncated   the pack cut short with a clean close
#   max_fetch   a pack larger than max_fetch: refused, naming the limit
#   ref gone    the tracked tag deleted on the server
#   ref moves   the tag moved between the advertisement and the fetch (the pass
#               stopped at a fault point while the tag moves)
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap systemctl python3 strings
tm_tmpdir
tm_git_server_start || exit 1
tm_signed_repo fleet || exit 1
T=$TM_TMP
FDIR=$TM_SOURCE_DIR/tests/integration/faults
TAGTIME=$(($(date +%s) - 6 * 3600))
HOOKS=0
strings "$TAGMOOR" | grep '^tm-fault:' >/dev/null && HOOKS=1

PX_DIR=$T/proxy && mkdir -p "$PX_DIR" && : >"$PX_DIR/log"
PX_PORT=$(tm_free_port)
tm_bg python3 "$FDIR/gitproxy.py" --port "$PX_PORT" --cert "$T/pki/server.pem" \
	--key "$T/pki/server.key" --upstream "$TM_GIT_URL" --ca "$TM_GIT_CA" --dir "$PX_DIR"
tm_wait_port "$PX_PORT"
px() { printf '%s\n' "$@" >>"$PX_DIR/script"; }

ROOT=$T/root
SD=$ROOT/var/lib/tagmoor
UD=$ROOT/etc/systemd/system
mkdir -p "$UD"
write_ini() { # url [max_fetch]
	cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-git
state_dir = /var/lib/tagmoor
[source]
url = $1/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 10s
max_fetch = ${2:-64MiB}
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units
prune = yes
wait = 0
INI
}
PX_URL=https://localhost:$PX_PORT
write_ini "$PX_URL"
REV=0
release() { # [KiB of fresh random data]: the next revision, tag moved
	REV=$((REV + 1))
	mkdir -p "$work/units" "$work/data"
	printf '[Unit]\nDescription=rev %d\n\n[Service]\nExecStart=/bin/sleep %d\n' "$REV" "$REV" >"$work/units/web.service"
	head -c "$((${1:-256} * 1024))" /dev/urandom >"$work/data/blob.bin"
	tm_release "rev $REV" >/dev/null 2>&1
	TRACKED=$(git -C "$work" rev-parse 'stable^{commit}')
}
SYNC() { OUT=$("$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" sync 2>&1); RC=$?; }
EXPECT=""
invariants() {
	rm -rf "$T/want" && mkdir -p "$T/want"
	git -C "$work" archive "$EXPECT" units | tar -x -C "$T/want"
	CHECK_OUT=$(python3 "$FDIR/check_systemd.py" "$UD" "$SD" "$T/want/units" "$EXPECT" /dev/null \
		"$T/floor.max" 2>&1)
}
is_bad() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(any(b["oid"] == sys.argv[2] for b in s.get("bad", [])))' "$SD/state.json" "$1"; }
: >"$T/rows"
fault() { # name want-regex: after the fault's sync ($RC, $OUT) — device unchanged, then converges
	local name=$1 want=$2 conv=0 frc=$RC fout=$OUT
	grep -E 'error' <<<"$fout" | head -2 | sed 's/^/#   /'
	invariants
	check "$name: the pass fails clearly (exit $frc; /$want/), the device unchanged ${CHECK_OUT:+($CHECK_OUT)}" \
		[ "$frc" != 0 ] && grep -qiE "$want" <<<"$fout" && [ -z "$CHECK_OUT" ]
	: >"$PX_DIR/script"
	write_ini "$PX_URL"
	SYNC
	EXPECT=$TRACKED
	invariants
	[ "$RC" = 0 ] && [ -z "$CHECK_OUT" ] && [ "$(is_bad "$(git -C "$work" rev-parse stable)")" = False ] && conv=1
	check "$name: the next pass converges (exit $RC), not marked bad ${CHECK_OUT:+($CHECK_OUT)}" [ "$conv" = 1 ]
	echo "git:$name 1 $conv 0 0 $(grep -c '^state:' <<<"$CHECK_OUT")" >>"$T/rows"
}

release
SYNC
EXPECT=$TRACKED
check "through the proxy: synced (exit $RC)" [ "$RC" = 0 ]

release
write_ini "https://localhost:$(tm_free_port)"
SYNC
fault refused "refused|connect"

release
px "GET .*/info/refs 500"
SYNC
fault "500-on-advertisement" "500"

release
px "POST .*/git-upload-pack 500"
SYNC
fault "500-on-pack" "500"

release 512
px "POST .*/git-upload-pack reset:100000"
SYNC
fault "reset-mid-pack" "reset|recv|SSL|connection|closed|transfer"

release 512
px "POST .*/git-upload-pack truncate:100000"
SYNC
fault "truncated-pack" "partial|truncat|end|closed|transfer|short"

release 2048
write_ini "$PX_URL" 512KiB
SYNC
fault "pack-over-max_fetch" "max_fetch|larger|limit"

release
git -C "$TM_GIT_ROOT/fleet.git" tag -d stable >/dev/null
SYNC
git -C "$work" push -q -f origin refs/tags/stable 2>/dev/null # back for the next pass
fault "ref-gone" "not on the server"

if [ "$HOOKS" = 1 ]; then
	release
	moved_from=$TRACKED
	env TAGMOOR_FAULT=pass.polled:stop "$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" sync >"$T/move.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = T ] && break
		sleep 0.05
	done
	stop_state=$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)
	release # the tag moves while the pass waits between advertisement and fetch
	kill -CONT "$pid"
	wait "$pid"
	RC=$? OUT=$(cat "$T/move.log")
	# either refused as moved (then retried) or applied what was verified
	grep -E 'error|moved' <<<"$OUT" | head -2 | sed 's/^/#   /'
	a=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["applied"]["commit"])' "$SD/state.json")
	echo "# stopped: $stop_state; applied ${a:0:12}; before ${EXPECT:0:12}, advertised ${moved_from:0:12}, moved to ${TRACKED:0:12}"
	one_of() { local x=$1; shift; for y; do [ "$x" = "$y" ] && return 0; done; return 1; }
	check "ref moved during the fetch: exit $RC; applied is a revision that was tracked (never a mix)" \
		one_of "$a" "$EXPECT" "$moved_from" "$TRACKED"
	[ "$RC" = 0 ] && [ "$a" != "$EXPECT" ] && EXPECT=$a
	SYNC
	EXPECT=$TRACKED
	invariants
	conv=0
	[ "$RC" = 0 ] && [ -z "$CHECK_OUT" ] && conv=1
	check "ref moved: the next pass converges to where it moved (exit $RC) ${CHECK_OUT:+($CHECK_OUT)}" [ "$conv" = 1 ]
	echo "git:ref-moves-during-fetch 1 $conv 0 0 0" >>"$T/rows"
else
	echo "# ref moving during the fetch: needs a TM_TEST_HOOKS build (skipped)"
fi
echo "# figures"
python3 "$FDIR/figures.py" "$T/rows" "fault (git server)"
[ "$FAILS" = 0 ]
