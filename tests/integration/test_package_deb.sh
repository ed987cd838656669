#!/usr/bin/env bash
# test_package_deb.sh — issue 14: the Debian package (packaging/debian/) as a
# device gets it. Builds the .deb from a copy of the tree with
# dpkg-buildpackage (debhelper), checks it with lintian (no error; every
# warning named in docs/packaging.md), installs it with dpkg into a real
# systemd (Debian 12 in systemd-nspawn): the service is enabled and does not
# start without /etc/tagmoor/tagmoor.ini. With an INI pointing at the HTTPS
# git server on the host (loopback is shared with the container), the trust
# file and the CA in /etc/tagmoor, `systemctl start` returns after READY=1,
# the status is synced, the unit the repository declares runs, and the
# sandbox is in force (systemd-analyze security in the container). `dpkg -r`
# leaves the state and the INI; `dpkg -P` removes the state.
# The package builds its own binary: with TM_TEST_TAGMOOR set (the static
# tier) there is nothing of that binary to test here, and the test skips.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/integration/nspawn.sh"
if [ -n "${TM_TEST_TAGMOOR:-}" ]; then
	echo "SKIP: the package builds its own binary (TM_TEST_TAGMOOR=$TM_TEST_TAGMOOR is not used)" >&2
	exit 77
fi
nspawn_need
tm_need git ssh-keygen nginx fcgiwrap dpkg-buildpackage dpkg-checkbuilddeps dh lintian
tm_tmpdir
chmod 755 "$TM_TMP"
T=$TM_TMP
quiet() { "$@" >/dev/null 2>&1; }

echo "# 1. dpkg-buildpackage -b from a copy of the tree, packaging/debian as debian/"
VERSION=$(dpkg-parsechangelog -l "$TM_SOURCE_DIR/packaging/debian/changelog" -S Version)
SRC=$T/deb/tagmoor-$VERSION
mkdir -p "$SRC"
if git -C "$TM_SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
	# the working tree as it is (tracked and new files, not what .gitignore excludes)
	(cd "$TM_SOURCE_DIR" && git ls-files -z -co --exclude-standard | xargs -0 -r sh -c 'for f; do [ -f "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
	tar -C "$TM_SOURCE_DIR" --exclude='./build*' -cf - . | tar -xf - -C "$SRC"
fi
cp -r "$SRC/packaging/debian" "$SRC/debian"
if ! (cd "$SRC" && dpkg-checkbuilddeps) 2>"$T/builddeps.err"; then
	echo "SKIP: build dependencies missing: $(cat "$T/builddeps.err")" >&2
	exit 77
fi
t0=$(date +%s)
(cd "$SRC" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -b -us -uc) >"$T/build.log" 2>&1
RC=$?
check "dpkg-buildpackage exits 0 ($RC, $(($(date +%s) - t0)) s)" [ "$RC" = 0 ]
DEB=$(ls "$T"/deb/tagmoor_"$VERSION"_*.deb 2>/dev/null | head -n 1)
if [ "$RC" != 0 ] || [ -z "$DEB" ]; then
	tail -n 30 "$T/build.log"
	echo "FAIL: no package"; exit 1
fi
C=$(dpkg-deb -c "$DEB")
for f in ./usr/bin/tagmoor ./lib/systemd/system/tagmoor.service ./usr/share/tagmoor/tagmoor.ini \
	./usr/share/doc/tagmoor/examples/tagmoor.ini.example ./usr/share/man/man8/tagmoor.8.gz \
	./usr/share/man/man5/tagmoor.ini.5.gz; do
	check "the package holds $f" grep -qF " $f" <<<"$C"
done
check "the unit is the shipped one" cmp -s "$TM_SOURCE_DIR/packaging/systemd/tagmoor.service" "$SRC/debian/tagmoor/lib/systemd/system/tagmoor.service"

echo "# 2. lintian: no error, every warning justified in docs/packaging.md"
lintian --allow-root --tag-display-limit 0 "$T"/deb/tagmoor_"$VERSION"_*.changes >"$T/lintian.log" 2>&1
sed 's/^/    /' "$T/lintian.log"
check "no lintian error" bash -c "! grep -q '^E: ' '$T/lintian.log'"
for tag in $(awk '$1 == "W:" { print $3 }' "$T/lintian.log" | sort -u); do
	check "lintian warning $tag is justified in docs/packaging.md" grep -qF "$tag" "$TM_SOURCE_DIR/docs/packaging.md"
done

echo "# 3. install into a real systemd: enabled, not started without the INI"
tm_git_server_start || exit 1
ssh-keygen -q -t ed25519 -N '' -C release -f "$T/release"
work=$(tm_repo_new fleet)
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/release"
mkdir -p "$work/units"
printf '[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n' \
	>"$work/units/web.service"
git -C "$work" add -A
git -C "$work" commit -qm "release 1"
git -C "$work" tag -s -m "release 1" stable >/dev/null
git -C "$work" push -q origin HEAD:refs/heads/main refs/tags/stable

nspawn_boot "tm-deb-$$" "$T/deb" || { echo "FAIL: container did not boot"; exit 1; }
R=$NSPAWN_DIR
in_c() { nspawn_run "$@"; }
prop() { in_c systemctl show -p "$1" --value tagmoor.service; }
in_c dpkg -i "$DEB" >"$T/dpkg-i.log" 2>&1
RC=$?
check "dpkg -i exits 0 ($RC)" [ "$RC" = 0 ]
[ "$RC" = 0 ] || cat "$T/dpkg-i.log"
check "tagmoor.service is enabled ($(in_c systemctl is-enabled tagmoor.service))" \
	[ "$(in_c systemctl is-enabled tagmoor.service)" = enabled ]
check "and not running without /etc/tagmoor/tagmoor.ini ($(in_c systemctl is-active tagmoor.service))" \
	[ "$(in_c systemctl is-active tagmoor.service)" = inactive ]
check "the man pages are installed" [ -f "$R/usr/share/man/man8/tagmoor.8.gz" ] && [ -f "$R/usr/share/man/man5/tagmoor.ini.5.gz" ]
check "the INI template as shipped passes check-config" quiet in_c /usr/bin/tagmoor -c /usr/share/tagmoor/tagmoor.ini check-config

echo "# 4. configured: READY, synced, the repository's unit runs"
install -d -m 0755 "$R/etc/tagmoor"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/release.pub")" >"$R/etc/tagmoor/allowed_signers"
install -m 0644 "$TM_GIT_CA" "$R/etc/tagmoor/ca.pem"
# The template as shipped, with url and ref set, the CA added and a short interval.
sed -e "s|^url = .*|url = $TM_GIT_URL/git/fleet.git|" -e 's|^ref = .*|ref = refs/tags/stable\nca_file = /etc/tagmoor/ca.pem|' \
	"$R/usr/share/tagmoor/tagmoor.ini" >"$R/etc/tagmoor/tagmoor.ini"
printf '\n[agent]\ninterval = 2s\n' >>"$R/etc/tagmoor/tagmoor.ini"
in_c timeout 90 systemctl start tagmoor.service
RC=$?
check "systemctl start exits 0 after READY=1 ($RC)" [ "$RC" = 0 ]
check "tagmoor.service is active" [ "$(in_c systemctl is-active tagmoor.service)" = active ]
check "StatusText says synced ($(prop StatusText))" bash -c "[[ '$(prop StatusText)' == synced* ]]"
ST=$(in_c /usr/bin/tagmoor status)
check "tagmoor status says synced" grep -q synced <<<"$ST"
check "the repository's web.service is active" [ "$(in_c systemctl is-active web.service)" = active ]
check "web.service was written to /etc/systemd/system" [ -f "$R/etc/systemd/system/web.service" ]
check "the state is in /var/lib/tagmoor (mode 0711: search only for the fetcher's user)" [ "$(stat -c %a "$R/var/lib/tagmoor")" = 711 ] && [ -f "$R/var/lib/tagmoor/state.json" ]
check "state.json is root's and private" [ "$(stat -c '%U %a' "$R/var/lib/tagmoor/state.json")" = "root 600" ]
check "postinst created the system user tagmoor" in_c id -u tagmoor
check "repo.git and what the fetcher wrote are tagmoor's" \
	[ -z "$(find "$R/var/lib/tagmoor/repo.git" ! -user "$(in_c id -u tagmoor)" | head -1)" ]
fetcher_line() {
	in_c journalctl -u tagmoor.service --no-pager |
		grep -q "fetcher child runs as tagmoor (uid [0-9]*), without capabilities, .*a seccomp filter"
}
check "the daemon's fetcher runs as tagmoor, with a seccomp filter" fetcher_line
# Under nspawn's filter there is no Landlock; the unit gives no CAP_SYS_ADMIN, so no mount
# namespace either (docs/security.md): the journal must say which confinement is in force.
fs_line() {
	in_c journalctl -u tagmoor.service --no-pager |
		grep -qE "fetcher child runs .*Landlock ABI [0-9]+|no Landlock here; the fetcher child gets a private mount namespace|no Landlock and no private mount namespace here"
}
check "the journal says how the fetcher child's file system is confined" fs_line
SEC=$(in_c systemd-analyze security tagmoor.service 2>&1)
SCORE=$(sed -n 's/.*Overall exposure level for tagmoor.service: \([0-9.]*\).*/\1/p' <<<"$SEC")
check "systemd-analyze security in the container: ${SCORE:-?} (at most 2.0)" awk -v s="${SCORE:-99}" 'BEGIN { exit !(s <= 2.0) }'
MAIN=$(prop MainPID)
check "the running daemon ($MAIN) sees / read-only and /etc/systemd/system writable" \
	bash -c "m=\$(nsenter -t $NSPAWN_LEADER -m -u -i -n -p -r -w cat /proc/$MAIN/mountinfo) &&
		grep -qE '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ro[, ]' <<<\"\$m\" && grep -qE ' /etc/systemd/system rw[, ]' <<<\"\$m\""

echo "# 5. dpkg -r leaves the state; dpkg -P removes it"
in_c dpkg -r tagmoor >"$T/dpkg-r.log" 2>&1
RC=$?
check "dpkg -r exits 0 ($RC)" [ "$RC" = 0 ]
[ "$RC" = 0 ] || cat "$T/dpkg-r.log"
check "the service is stopped" [ "$(in_c systemctl is-active tagmoor.service)" != active ]
check "the binary is gone" [ ! -e "$R/usr/bin/tagmoor" ]
check "the state stays (state.json)" [ -f "$R/var/lib/tagmoor/state.json" ]
check "the INI stays" [ -f "$R/etc/tagmoor/tagmoor.ini" ]
in_c dpkg -P tagmoor >"$T/dpkg-p.log" 2>&1
RC=$?
check "dpkg -P exits 0 ($RC)" [ "$RC" = 0 ]
[ "$RC" = 0 ] || cat "$T/dpkg-p.log"
check "the state directory is gone" [ ! -e "$R/var/lib/tagmoor" ]
check "the administrator's /etc/tagmoor stays" [ -f "$R/etc/tagmoor/tagmoor.ini" ]

echo
if [ "$FAILS" -eq 0 ]; then echo "all package cases passed"; exit 0; fi
echo "$FAILS case(s) failed"
in_c journalctl -u tagmoor.service -o short-monotonic --no-pager | tail -n 40
exit 1
