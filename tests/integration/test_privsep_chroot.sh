#!/usr/bin/env bash
# test_privsep_chroot.sh — issue 15: where the kernel has no Landlock, the fetcher child
# confines its file system with a private mount namespace instead (docs/security.md).
# Test builds pretend this kernel has no Landlock (TAGMOOR_TEST_NO_LANDLOCK):
#   1. The log says which confinement is in force, once per process.
#   2. While a server that never answers holds a poll, the child is in a mount namespace
#      of its own whose root is a read-only tmpfs holding only repo.git (read-write), the
#      trust files and what TLS and DNS read (read-only), and /dev/null; the parent's
#      mounts are unchanged (nothing propagates back).
#   3. A real sync with user = nobody and --root, an idle poll and the drift check work.
#   4. The child tries to read a file outside its paths and to write a unit into the unit
#      directory (TAGMOOR_TEST_FETCHER): both fail (the paths do not exist in its root),
#      the pass is a source error (exit 3) and nothing is applied.
#   5. Where the namespace cannot be made — the daemon without CAP_SYS_ADMIN (setpriv),
#      or TAGMOOR_TEST_NO_MOUNTNS — the log says so once and a sync still works
#      (the documented fallback: the uid bounds the child).
#   6. In systemd-nspawn, whose filter refuses Landlock's calls for real (any binary,
#      the static one too): the log says which confinement is in force and a sync works.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap python3
[ "$(id -u)" = 0 ] || { echo "SKIP: the mount namespace needs root"; exit 77; }
tm_tmpdir
chmod 755 "$TM_TMP"
tm_git_server_start || exit 1
tm_silent_start tls || exit 1
T=$TM_TMP
chmod 644 "$TM_GIT_CA" "$T/pki/ca.pem" 2>/dev/null
tm_signed_repo fleet || exit 1
chmod 644 "$T/allowed_signers"
R=$T/root
mkdir -p "$R/etc/systemd/system" "$R/var/lib"
UD=$R/etc/systemd/system
NS_LINE="no Landlock here; the fetcher child gets a private mount namespace"
NONE_LINE="no Landlock and no private mount namespace here"

write_ini() { # file url user ca [timeout]
	{
		printf '[agent]\ndevice_id = edge-0042\nstate_dir = /var/lib/tagmoor\n'
		[ -n "$3" ] && printf 'user = %s\n' "$3"
		printf '[source]\nurl = %s\nref = refs/tags/stable\nca_file = %s\ntimeout = %s\n' \
			"$2" "$4" "${5:-10s}"
		printf '[verify]\nallowed_signers = %s\n' "$T/allowed_signers"
		printf '[systemd]\nenabled = yes\npaths = units\nwait = 0\n'
	} >"$1"
}
TM() { OUT=$("$TAGMOOR" -c "$INI" --root "$R" "$@" 2>&1); RC=$?; echo "$OUT" | sed 's/^/#   /'; }
has() { grep -qE -- "$1" <<<"$OUT"; }
count() { grep -cF -- "$1" <<<"$OUT"; }
SECCOMP=2
if head -c 4096 "$TAGMOOR" 2>/dev/null | grep -q qemu; then SECCOMP=0; fi

mkdir -p "$work/units"
printf '[Unit]\nDescription=web\n[Service]\nExecStart=/bin/true\n' >"$work/units/web.service"
tm_release "web"

HOOKS=0
grep -q TAGMOOR_TEST_NO_LANDLOCK "$TAGMOOR" 2>/dev/null && HOOKS=1
if [ "$HOOKS" = 1 ]; then
	export TAGMOOR_TEST_NO_LANDLOCK=1
	INI=$T/nobody.ini
	write_ini "$INI" "$TM_GIT_URL/git/fleet.git" nobody "$TM_GIT_CA"

	# --- 2. the child's mounts, sampled while a silent server holds it -----------------
	echo "# 2. the child's mount namespace (a silent server holds the poll)"
	SINI=$T/silent.ini
	write_ini "$SINI" "https://localhost:$TM_SILENT_PORT/fleet.git" nobody "$T/pki/ca.pem" 30s
	grep -c . /proc/self/mountinfo >"$T/mounts.before"
	"$TAGMOOR" -c "$SINI" --root "$R" sync >"$T/silent.out" 2>&1 &
	pid=$!
	child=""
	for _ in $(seq 1 100); do
		child=$(pgrep -P "$pid" | head -1)
		[ -n "$child" ] && grep -q "^Seccomp:[[:space:]]*$SECCOMP" "/proc/$child/status" 2>/dev/null &&
			grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$child/status" && break
		sleep 0.05
	done
	cp "/proc/$child/mountinfo" "$T/child.mountinfo" 2>/dev/null || : >"$T/child.mountinfo"
	CHILD_NS=$(readlink "/proc/$child/ns/mnt" 2>/dev/null)
	PARENT_NS=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)
	ls -A "/proc/$child/root/" >"$T/child.root" 2>/dev/null
	find "/proc/$child/root/" -xdev -mindepth 1 >"$T/child.tree" 2>/dev/null
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	awk '{ print "#   " $5, $6, $9 }' "$T/child.mountinfo"
	check "a child was sampled" [ -s "$T/child.mountinfo" ]
	own_ns() { [ -n "$CHILD_NS" ] && [ -n "$PARENT_NS" ] && [ "$CHILD_NS" != "$PARENT_NS" ]; }
	check "the child has a mount namespace of its own ($CHILD_NS, parent $PARENT_NS)" own_ns
	check "its root is a read-only tmpfs" \
		awk '$5 == "/" && $6 ~ /^ro/ && $9 == "tmpfs" { f = 1 } END { exit !f }' "$T/child.mountinfo"
	check "repo.git is mounted read-write at its own path" \
		awk -v p="$R/var/lib/tagmoor/repo.git" '$5 == p && $6 ~ /^rw/ { f = 1 } END { exit !f }' "$T/child.mountinfo"
	check "the trust files are mounted read-only at their paths" \
		awk -v a="$T/allowed_signers" -v c="$T/pki/ca.pem" \
		'($5 == a || $5 == c) && $6 ~ /^ro/ { n++ } END { exit n != 2 }' "$T/child.mountinfo"
	check "/dev/null is there, nothing else of /dev" \
		awk '$5 ~ /^\/dev\// && $5 != "/dev/null" && $5 != "/dev/urandom" && $5 != "/dev/random" { bad = 1 } $5 == "/dev/null" { f = 1 } END { exit bad || !f }' "$T/child.mountinfo"
	check "every mount but repo.git and /dev/null is read-only" \
		awk -v p="$R/var/lib/tagmoor/repo.git" '$5 != p && $5 != "/dev/null" && $6 !~ /^ro/ { bad = 1 } END { exit bad }' "$T/child.mountinfo"
	sed 's/^/#   root: /' "$T/child.root" | tr '\n' ' '
	echo
	check "no /proc, /sys, /home, /root, /var/lib/tagmoor/state.json in the child's root" \
		bash -c "! grep -qxE 'proc|sys|home|root|boot' '$T/child.root' && ! grep -q 'state.json' '$T/child.tree'"
	check "the unit directory is not in the child's root" bash -c "! grep -q 'etc/systemd' '$T/child.tree'"
	check "the parent's mounts are unchanged (nothing propagated back)" \
		[ "$(grep -c . /proc/self/mountinfo)" = "$(cat "$T/mounts.before")" ]
	OUT=$(cat "$T/silent.out")

	# --- 1. the log line --------------------------------------------------------------
	echo "# 1. the log says which confinement is in force, once"
	sed 's/^/#   /' "$T/silent.out"
	check "the start says: private mount namespace" has "$NS_LINE"
	check "and no Landlock (tm_fetcher_describe)" has "without capabilities, (no Landlock|a private mount namespace)"

	# --- 3. a real sync ---------------------------------------------------------------
	echo "# 3. sync with user = nobody in the mount namespace"
	TM sync
	check "sync converges (exit $RC)" [ "$RC" = 0 ]
	check "the namespace is said once per process" [ "$(count "$NS_LINE")" = 1 ]
	check "the parent wrote the unit" [ -f "$UD/web.service" ]
	check "objects written by the child are nobody's" \
		[ -z "$(find "$R/var/lib/tagmoor/repo.git" ! -user nobody | head -1)" ]
	echo "edited" >>"$UD/web.service"
	TM sync
	check "idle poll + drift check through the child (exit $RC)" [ "$RC" = 0 ]
	check "the hand edit was repaired" bash -c "! grep -q edited '$UD/web.service'"
	TM verify
	check "verify works (exit $RC)" [ "$RC" = 0 ] && has "release@example.com"

	# --- 4. forbidden actions -----------------------------------------------------------
	echo "secret" >"$T/secret"
	chmod 644 "$T/secret"
	printf '[Unit]\nDescription=web2\n[Service]\nExecStart=/bin/true\n' >"$work/units/web.service"
	tm_release "web2"
	before=$(sha256sum "$UD/web.service")
	for u in "" nobody; do
		write_ini "$INI" "$TM_GIT_URL/git/fleet.git" "$u" "$TM_GIT_CA"
		who=${u:-default}
		echo "# 4. ($who) reading a file outside the fetcher's paths"
		OUT=$(TAGMOOR_TEST_FETCHER=open:$T/secret "$TAGMOOR" -c "$INI" --root "$R" sync 2>&1); RC=$?
		echo "$OUT" | sed 's/^/#   /'
		check "$who open: exit 3" [ "$RC" = 3 ]
		check "$who open: not there" has "open $T/secret: No such file or directory"
		check "$who open: the pass names the child's end" has "exited with status 72"
		echo "# 4. ($who) writing into the unit directory"
		OUT=$(TAGMOOR_TEST_FETCHER=write:$UD "$TAGMOOR" -c "$INI" --root "$R" sync 2>&1); RC=$?
		echo "$OUT" | sed 's/^/#   /'
		check "$who write: exit 3" [ "$RC" = 3 ]
		check "$who write: refused" has "escaped.service: (No such file or directory|Read-only file system|Permission denied)"
		check "$who write: no file appeared" [ ! -e "$UD/escaped.service" ]
		check "$who: nothing applied" [ "$(sha256sum "$UD/web.service")" = "$before" ]
	done

	# --- 5. no namespace either ---------------------------------------------------------
	echo "# 5. no CAP_SYS_ADMIN: no namespace, logged, the sync still works"
	if command -v setpriv >/dev/null; then
		OUT=$(setpriv --bounding-set -sys_admin --inh-caps -sys_admin "$TAGMOOR" -c "$INI" --root "$R" sync 2>&1); RC=$?
		echo "$OUT" | sed 's/^/#   /'
		check "sync converges without the namespace (exit $RC)" [ "$RC" = 0 ]
		check "the log names the missing layer and why" \
			has "$NONE_LINE \(sandbox: unshare\(CLONE_NEWNS\): Operation not permitted\)"
		check "said once" [ "$(count "$NONE_LINE")" = 1 ]
		check "web2 applied" grep -q web2 "$UD/web.service"
	else
		echo "# 5. (setpriv missing: skipped)"
	fi
	printf '[Unit]\nDescription=web3\n[Service]\nExecStart=/bin/true\n' >"$work/units/web.service"
	tm_release "web3"
	OUT=$(TAGMOOR_TEST_NO_MOUNTNS=1 "$TAGMOOR" -c "$INI" --root "$R" sync 2>&1); RC=$?
	echo "$OUT" | sed 's/^/#   /'
	check "TAGMOOR_TEST_NO_MOUNTNS: sync converges (exit $RC)" [ "$RC" = 0 ]
	check "TAGMOOR_TEST_NO_MOUNTNS: logged" has "$NONE_LINE"
	check "web3 applied" grep -q web3 "$UD/web.service"
	unset TAGMOOR_TEST_NO_LANDLOCK
else
	echo "# 1-5. skipped: not a test build (no TAGMOOR_TEST_NO_LANDLOCK)"
fi

# --- 6. systemd-nspawn, where Landlock is refused for real ---------------------------------
. "$TM_SOURCE_DIR/tests/integration/nspawn.sh"
if ! (nspawn_need) >/dev/null 2>&1; then
	echo "# 6. skipped: no systemd-nspawn here"
else
	echo "# 6. in systemd-nspawn"
	BIN=$(cd "$(dirname "$TAGMOOR")" && pwd)
	if nspawn_boot "tm-chroot-$$" "$BIN" "$T"; then
		NINI=$T/nspawn.ini
		write_ini "$NINI" "$TM_GIT_URL/git/fleet.git" nobody "$TM_GIT_CA"
		# as a service of the container's systemd, so under nspawn's own seccomp filter
		# (nsenter from the host would not be)
		OUT=$(nspawn_run systemd-run --quiet --wait --pipe --collect --service-type=exec \
			"$TAGMOOR" -c "$NINI" sync 2>&1); RC=$?
		echo "$OUT" | sed 's/^/#   /'
		check "nspawn: sync converges (exit $RC)" [ "$RC" = 0 ]
		check "nspawn: the confinement in force is logged" \
			has "Landlock ABI [0-9]+|$NS_LINE|$NONE_LINE"
		# the container's root has CAP_SYS_ADMIN: without Landlock, the namespace must be made
		if has "without capabilities, (no Landlock|a private mount namespace)"; then
			check "nspawn: no Landlock here, so the mount namespace is in force" has "$NS_LINE"
		fi
		check "nspawn: the unit was written" grep -q "Description=web" "$NSPAWN_DIR/etc/systemd/system/web.service"
		nspawn_stop
	else
		bad "the container did not boot"
	fi
fi

echo
if [ "$FAILS" -eq 0 ]; then echo "all privilege separation (no Landlock) cases passed"; exit 0; fi
echo "$FAILS case(s) failed"; exit 1
