# tests/integration/nspawn.sh — a real systemd, booted in a systemd-nspawn container, for tests.
#
# Source it from a test script (bash):  . "$TM_SOURCE_DIR/tests/integration/nspawn.sh"
#
#   nspawn_need                 exit 77 (skipped) unless this machine can do it at all: root,
#                               systemd-nspawn, debootstrap, nsenter, flock. (Everything else
#                               that goes wrong later is a failure, not a skip.)
#   nspawn_rootfs               build once and cache a Debian 12 (bookworm) rootfs with systemd,
#                               dbus and tagmoor's runtime libraries in $NSPAWN_ROOTFS
#                               (default /var/cache/tagmoor-test/rootfs-bookworm, mode 0755).
#                               Concurrent builds wait on a lock; an aborted build leaves no
#                               completion marker and is redone. Uses the host's Debian mirror.
#   nspawn_boot NAME [DIR...]   boot a throw-away instance: an overlayfs over the cached rootfs
#                               (upper layer in a fresh directory), `systemd-nspawn --boot` in
#                               the background, no --private-network (loopback is shared with
#                               the host). Each DIR is bind-mounted read-only at the same path
#                               (pass the build and source directories so the freshly built
#                               binaries run inside). Waits until `systemctl is-system-running`
#                               says running or degraded. Sets NSPAWN_NAME, NSPAWN_PID (the
#                               nspawn process), NSPAWN_LEADER (the container's PID 1 seen from
#                               the host), NSPAWN_DIR (the container's root seen from the host).
#   nspawn_run CMD...           run CMD inside the container (nsenter into its namespaces and
#                               root; the host does not run systemd, so there is no machined
#                               and no `machinectl`/`systemd-run -M`). stdin/stdout/stderr are
#                               passed through; returns CMD's exit status.
#   nspawn_stop                 power the container off, unmount, remove the instance. Runs on
#                               EXIT (chained before any EXIT trap that was set earlier).
#
# Environment: TM_NSPAWN_CACHE (cache dir), TM_NSPAWN_MIRROR (Debian mirror URL; default: the
# first .../debian URI in /etc/apt/sources.list{,.d/*}), TM_NSPAWN_KEEP=1 (leave the instance).
# Timings seen here: first rootfs build about 1-2 minutes; boot to `running` about 1-3 s.

NSPAWN_CACHE=${TM_NSPAWN_CACHE:-/var/cache/tagmoor-test}
NSPAWN_ROOTFS="$NSPAWN_CACHE/rootfs-bookworm"
# Bump when the package list or the set-up below changes: the cache is rebuilt.
NSPAWN_ROOTFS_VERSION=1
NSPAWN_PACKAGES=systemd,systemd-sysv,dbus,libgit2-1.5,libcurl4,libmbedtls14,libmbedcrypto7,libmbedx509-1,libsodium23,libyaml-0-2,libinih1,diffutils,time,procps
NSPAWN_NAME=""
NSPAWN_PID=""
NSPAWN_LEADER=""
NSPAWN_DIR=""
NSPAWN_INST=""

nspawn_need() {
	local c
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: systemd-nspawn tests need root" >&2
		exit 77
	fi
	for c in systemd-nspawn debootstrap nsenter flock mount umount; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "SKIP: $c not available" >&2
			exit 77
		fi
	done
}

nspawn_mirror() {
	local uri
	if [ -n "${TM_NSPAWN_MIRROR:-}" ]; then
		echo "$TM_NSPAWN_MIRROR"
		return
	fi
	# one-line style: "deb [opts] URI suite comps"; deb822: "URIs: URI"
	uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
		2>/dev/null | awk '
		/^[[:space:]]*#/ { next }
		$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }
		$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' |
		grep -E '/debian/?$' | head -n 1)
	echo "${uri:-http://deb.debian.org/debian}"
}

nspawn_rootfs() {
	local marker="$NSPAWN_ROOTFS/.tagmoor-rootfs-complete" tmp="$NSPAWN_ROOTFS.building"
	local lockfd start mirror
	mkdir -p "$NSPAWN_CACHE" && chmod 0755 "$NSPAWN_CACHE" || return 1
	exec {lockfd}>"$NSPAWN_CACHE/rootfs-bookworm.lock"
	if ! flock -w 1200 "$lockfd"; then
		echo "nspawn: timed out waiting for another rootfs build" >&2
		exec {lockfd}>&-
		return 1
	fi
	if [ -f "$marker" ] && [ "$(cat "$marker")" = "$NSPAWN_ROOTFS_VERSION" ]; then
		exec {lockfd}>&-
		return 0
	fi
	start=$(date +%s)
	mirror=$(nspawn_mirror)
	echo "nspawn: building $NSPAWN_ROOTFS from $mirror (once; about a minute or two)" >&2
	rm -rf "$tmp" "$NSPAWN_ROOTFS"
	mkdir -m 0755 "$tmp" || { exec {lockfd}>&-; return 1; }
	if ! debootstrap --variant=minbase --include="$NSPAWN_PACKAGES" bookworm "$tmp" "$mirror" \
		>"$NSPAWN_CACHE/debootstrap.log" 2>&1; then
		echo "nspawn: debootstrap failed; last lines of $NSPAWN_CACHE/debootstrap.log:" >&2
		tail -n 20 "$NSPAWN_CACHE/debootstrap.log" >&2
		rm -rf "$tmp"
		exec {lockfd}>&-
		return 1
	fi
	chmod 0755 "$tmp"
	echo tagmoor-test >"$tmp/etc/hostname"
	# Empty machine-id: systemd makes a transient one at each boot.
	: >"$tmp/etc/machine-id"
	rm -f "$tmp/var/lib/dbus/machine-id"
	# Nothing in the container needs a console login or the network set up.
	ln -sf /dev/null "$tmp/etc/systemd/system/console-getty.service"
	ln -sf /dev/null "$tmp/etc/systemd/system/getty@.service"
	ln -sf /dev/null "$tmp/etc/systemd/system/systemd-networkd-wait-online.service"
	ln -sf /lib/systemd/system/multi-user.target "$tmp/etc/systemd/system/default.target"
	# journald: keep the journal in memory (fast, nothing to flush at stop).
	mkdir -p "$tmp/etc/systemd/journald.conf.d"
	printf '[Journal]\nStorage=volatile\n' >"$tmp/etc/systemd/journald.conf.d/tagmoor-test.conf"
	rm -rf "$tmp/var/cache/apt/archives/"*.deb
	echo "$NSPAWN_ROOTFS_VERSION" >"$tmp/.tagmoor-rootfs-complete"
	sync -f "$tmp" 2>/dev/null || true
	mv "$tmp" "$NSPAWN_ROOTFS" || { exec {lockfd}>&-; return 1; }
	echo "nspawn: rootfs built in $(($(date +%s) - start)) s" >&2
	exec {lockfd}>&-
}

# The container's PID 1 as seen from the host: a descendant of the nspawn process whose
# innermost PID is 1.
nspawn_find_leader() {
	local p ns queue=("$NSPAWN_PID") cur kids
	while [ ${#queue[@]} -gt 0 ]; do
		cur=${queue[0]}
		queue=("${queue[@]:1}")
		kids=$(cat /proc/"$cur"/task/*/children 2>/dev/null)
		for p in $kids; do
			ns=$(awk '/^NSpid:/ { print $NF }' /proc/"$p"/status 2>/dev/null)
			if [ "$ns" = 1 ] && [ "$p" != "$NSPAWN_PID" ]; then
				echo "$p"
				return 0
			fi
			queue+=("$p")
		done
	done
	return 1
}

nspawn_run() {
	nsenter -t "$NSPAWN_LEADER" -m -u -i -n -p -r -w -- \
		/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

nspawn_boot() {
	local name=$1 d binds=() i state prev
	shift
	nspawn_need
	nspawn_rootfs || return 1
	for d in "$@"; do
		binds+=("--bind-ro=$d")
	done
	NSPAWN_NAME=$name
	NSPAWN_INST=$(mktemp -d "${TMPDIR:-/var/tmp}/tagmoor-nspawn.XXXXXX") || return 1
	chmod 0755 "$NSPAWN_INST"
	mkdir -m 0755 "$NSPAWN_INST/upper" "$NSPAWN_INST/work" "$NSPAWN_INST/root"
	NSPAWN_DIR="$NSPAWN_INST/root"
	# Chain our teardown in front of any EXIT trap set before (lib.sh's tm_cleanup, say).
	prev=$(trap -p EXIT)
	prev=${prev#trap -- \'}
	prev=${prev%\' EXIT}
	# shellcheck disable=SC2064
	trap "nspawn_stop; $prev" EXIT
	if ! mount -t overlay overlay \
		-o "lowerdir=$NSPAWN_ROOTFS,upperdir=$NSPAWN_INST/upper,workdir=$NSPAWN_INST/work" \
		"$NSPAWN_DIR" 2>"$NSPAWN_INST/mount.err"; then
		# No overlayfs here: a plain copy (a few seconds).
		cp -a --reflink=auto "$NSPAWN_ROOTFS/." "$NSPAWN_DIR/" || return 1
		chmod 0755 "$NSPAWN_DIR"
	fi
	setsid systemd-nspawn --boot --quiet --register=no --keep-unit --console=read-only \
		--directory="$NSPAWN_DIR" --machine="$name" "${binds[@]}" \
		</dev/null >"$NSPAWN_INST/console.log" 2>&1 &
	NSPAWN_PID=$!
	for i in $(seq 1 200); do
		NSPAWN_LEADER=$(nspawn_find_leader) && break
		if ! kill -0 "$NSPAWN_PID" 2>/dev/null; then
			echo "nspawn: systemd-nspawn exited; console:" >&2
			tail -n 30 "$NSPAWN_INST/console.log" >&2
			return 1
		fi
		sleep 0.05
	done
	if [ -z "$NSPAWN_LEADER" ]; then
		echo "nspawn: no container init found" >&2
		return 1
	fi
	for i in $(seq 1 300); do
		state=$(nspawn_run systemctl is-system-running 2>/dev/null)
		case "$state" in
		running | degraded) return 0 ;;
		esac
		if ! kill -0 "$NSPAWN_PID" 2>/dev/null; then
			break
		fi
		sleep 0.2
	done
	echo "nspawn: container $name did not reach running (state: ${state:-?}); console:" >&2
	tail -n 30 "$NSPAWN_INST/console.log" >&2
	return 1
}

nspawn_stop() {
	local i
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		# nspawn turns SIGTERM into an orderly poweroff of the container.
		kill -TERM "$NSPAWN_PID" 2>/dev/null
		for i in $(seq 1 150); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$NSPAWN_PID" 2>/dev/null
		wait "$NSPAWN_PID" 2>/dev/null
	fi
	NSPAWN_PID=""
	NSPAWN_LEADER=""
	if [ -n "$NSPAWN_INST" ] && [ -d "$NSPAWN_INST" ]; then
		if [ "${TM_NSPAWN_KEEP:-0}" = 1 ]; then
			echo "nspawn: instance kept in $NSPAWN_INST" >&2
		else
			if mountpoint -q "$NSPAWN_DIR"; then
				umount "$NSPAWN_DIR" 2>/dev/null || umount -l "$NSPAWN_DIR"
			fi
			rm -rf "$NSPAWN_INST"
		fi
	fi
	NSPAWN_INST=""
}
