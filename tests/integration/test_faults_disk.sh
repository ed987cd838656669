#!/usr/bin/env bash
# test_faults_disk.sh — disk full and read-only file systems (issue 13,
# docs/faults.md), against the real binary, git over TLS and systemctl --root:
#   disk full   a small tmpfs as state_dir, then as the unit dir, filled up:
#               the pass fails with a clear error (the path and "No space left
#               on device"), state.json and the units of the applied revision
#               are intact (byte for byte, no temp file), and the next pass
#               after space is freed converges to the tracked revision.
#   read-only   state_dir, then the unit dir, read-only (what ProtectSystem=strict
#               without ReadWritePaths= does): a clear error naming the path;
#               nothing changed; converges once writable again.
# Needs root (mount); otherwise skipped.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap systemctl python3 mount umount
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (tmpfs and bind mounts)"; exit 77; }
tm_tmpdir
T=$TM_TMP
probe=$T/probe
mkdir -p "$probe"
if ! mount -t tmpfs -o size=1m tmpfs "$probe" 2>/dev/null; then
	echo "SKIP: cannot mount a tmpfs here"
	exit 77
fi
umount "$probe"
MOUNTS=()
unmount_all() { local m; for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done; MOUNTS=(); }
trap 'unmount_all; tm_cleanup' EXIT
tm_git_server_start || exit 1
tm_signed_repo fleet || exit 1
TAGTIME=$(($(date +%s) - 7200))

ROOT=$T/root
SD=$ROOT/var/lib/tagmoor
UD=$ROOT/etc/systemd/system
mkdir -p "$SD" "$UD"
cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-disk
state_dir = /var/lib/tagmoor
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 20s
[verify]
allowed_signers = $TM_TMP/allowed_signers
[systemd]
enabled = yes
paths = units
prune = yes
wait = 0
INI
REV=0
release() { # [bytes of padding per unit]: units of the next revision
	local pad=${1:-0} i
	REV=$((REV + 1))
	rm -rf "$work/units" && mkdir -p "$work/units"
	for i in 1 2 3 4; do
		{
			printf '[Unit]\nDescription=svc %d rev %d\n' "$i" "$REV"
			# comment lines: units of a wanted size
			[ "$pad" -gt 0 ] && head -c "$pad" /dev/zero | tr '\0' 'x' | fold -w 60 | sed 's/^/# /'
			printf '\n[Service]\nExecStart=/bin/sleep %d\n\n[Install]\nWantedBy=multi-user.target\n' "$i$REV"
		} >"$work/units/svc$i.service"
	done
	tm_release "rev $REV" >/dev/null
	TRACKED=$(git -C "$work" rev-parse 'stable^{commit}')
}
SYNC() { OUT=$("$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" sync 2>&1); RC=$?; }
applied() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["applied"]["commit"])' "$SD/state.json" 2>/dev/null; }
# snapshot of what must not change: state.json's applied commit, the units
snap() { (cd "$UD" && find . -type f -o -type l | sort | xargs -r sha256sum 2>/dev/null); applied; }
temps() { find "$SD" "$UD" -name '*.tagmoor-tmp-*' -o -name '*.tmp.??????' 2>/dev/null | grep -v '/repo.git/' | head -3; }
units_are() { # commit: the unit dir holds exactly that revision's units
	rm -rf "$T/want" && mkdir -p "$T/want" && git -C "$work" archive "$1" units | tar -x -C "$T/want"
	local f ok=1
	for f in "$T/want/units"/*; do cmp -s "$f" "$UD/$(basename "$f")" || ok=0; done
	[ "$(find "$UD" -maxdepth 1 -type f ! -name .filler | wc -l)" = "$(find "$T/want/units" -type f | wc -l)" ] || ok=0
	[ "$ok" = 1 ]
}
fill() { # dir: fill its file system up (a file tagmoor never looks at)
	dd if=/dev/zero of="$1/.filler" bs=4k >/dev/null 2>&1
	sync
}

tm_mount_tmpfs() { # dir size
	local keep=$T/keep.$$.$RANDOM
	mkdir -p "$keep"
	cp -a "$1/." "$keep/"
	mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || return 1
	MOUNTS+=("$1")
	cp -a "$keep/." "$1/"
	rm -rf "$keep"
}

release
SYNC
check "first revision synced (exit $RC)" [ "$RC" = 0 ]

for where in state units; do
	if [ $where = state ]; then dir=$SD size=4m; else dir=$UD size=256k; fi
	echo "# disk full: $where ($dir on a $size tmpfs)"
	tm_mount_tmpfs "$dir" "$size" || { bad "mount tmpfs on $dir"; continue; }
	SYNC
	check "idle sync on the tmpfs (exit $RC)" [ "$RC" = 0 ]
	before_commit=$(applied)
	release 3000
	# the revision is fetched first (verify): what fails is writing units and state
	"$TAGMOOR" -c "$T/tagmoor.ini" --root "$ROOT" verify >/dev/null 2>&1 ||
		bad "verify (fetch) before filling the disk"
	fill "$dir"
	before=$(snap)
	SYNC
	echo "$OUT" | grep -iE 'error|space' | head -3 | sed 's/^/#   /'
	check "$where full: the pass fails (exit $RC)" [ "$RC" != 0 ]
	check "$where full: the error says so and names a path under $dir" \
		grep -qE "$dir[^ ]*.*No space left on device" <<<"$OUT"
	check "$where full: state.json parses and still names the applied revision" \
		[ "$(applied)" = "$before_commit" ]
	check "$where full: the units of the applied revision are intact" units_are "$before_commit"
	check "$where full: no temp file left ($(temps))" [ -z "$(temps)" ]
	rm -f "$dir/.filler"
	SYNC
	[ "$RC" = 0 ] || echo "$OUT" | tail -3 | sed 's/^/#   /'
	check "space freed: the next pass converges (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$TRACKED" ]
	check "space freed: the units are the tracked revision's" units_are "$TRACKED"
	unmount_all
done

for where in state units; do
	if [ $where = state ]; then dir=$SD; else dir=$UD; fi
	echo "# read-only: $where ($dir)"
	release
	before=$(snap)
	mount --bind "$dir" "$dir" && MOUNTS+=("$dir") && mount -o remount,bind,ro "$dir" ||
		{ bad "read-only bind mount of $dir"; unmount_all; continue; }
	SYNC
	echo "$OUT" | grep -iE 'error|read-only' | head -3 | sed 's/^/#   /'
	check "$where read-only: the pass fails (exit $RC)" [ "$RC" != 0 ]
	check "$where read-only: the error names a path under $dir and says read-only" \
		grep -qE "$dir[^ ]*.*Read-only file system" <<<"$OUT"
	check "$where read-only: nothing changed" [ "$(snap)" = "$before" ]
	unmount_all
	SYNC
	check "writable again: converges (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$TRACKED" ]
done
[ "$FAILS" = 0 ]
