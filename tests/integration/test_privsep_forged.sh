#!/usr/bin/env bash
# test_privsep_forged.sh — issue 15: a compromised fetcher child cannot make the privileged
# parent apply what is not signed (docs/security.md). The parent files the raw tag, commit
# and tree objects the child sends under the SHA-1 ids it computes itself, verifies the
# revision again from them (its verdict replaces the child's) and checks every file of the
# plan inputs against the commit's trees. A test-build hook (TAGMOOR_TEST_FORGE) makes the
# child lie after its honest job, as an exploited one would:
#   verdict  a revision signed by an untrusted key called accepted -> refused by the parent
#   file     a unit's body changed                                  -> exit 3, nothing applied
#   drop     a unit left out (it would be removed)                  -> exit 3, nothing removed
#   absent   the unit directory called absent (all would be pruned) -> exit 3, nothing removed
#   object   the tag object changed                                 -> exit 3
# and about the message it leaves in the parent's memfd (only its size goes through the pipe):
#   memfd-size  a size the memfd does not have                      -> exit 3
#   memfd-over  a size over the message limit                       -> exit 3
#   memfd-seal  the memfd sealed against the parent's seals          -> exit 3
# and each time the state stays as it was; without the hook the next poll applies.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap python3
if ! grep -q TAGMOOR_TEST_FORGE "$TAGMOOR" 2>/dev/null; then
	echo "SKIP: $TAGMOOR has no test hooks (configure with -DTM_TEST_HOOKS=ON)"
	exit 77
fi
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
tm_signed_repo fleet || exit 1
R=$T/root
UD=$R/etc/systemd/system
mkdir -p "$UD"
INI=$T/tagmoor.ini
cat >"$INI" <<EOF
[agent]
device_id = edge-0042
state_dir = /var/lib/tagmoor
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units
wait = 0
EOF
TM() { OUT=$("$TAGMOOR" -c "$INI" --root "$R" "$@" 2>&1); RC=$?; echo "$OUT" | sed 's/^/#   /'; }
has() { grep -qE -- "$1" <<<"$OUT"; }
STATE=$R/var/lib/tagmoor/state.json

echo "# a first release, applied honestly"
mkdir -p "$work/units"
printf '[Unit]\nDescription=web\n[Service]\nExecStart=/bin/true\n' >"$work/units/web.service"
tm_release "web"
TM sync
check "the first release applies (exit $RC)" [ "$RC" = 0 ] && [ -f "$UD/web.service" ]

unchanged() { # what
	check "$1: the unit is as it was" [ "$(sha256sum <"$UD/web.service")" = "$before" ]
	check "$1: no other unit appeared" [ "$(ls "$UD")" = web.service ]
	check "$1: state.json unchanged" [ "$(sha256sum <"$STATE")" = "$state" ]
}

echo "# verdict: a revision signed by an untrusted key, called accepted by the child"
ssh-keygen -q -t ed25519 -N '' -C mallory -f "$T/mallory"
printf '[Unit]\nDescription=evil\n[Service]\nExecStart=/bin/sh -c "touch /tmp/owned"\n' \
	>"$work/units/web.service"
git -C "$work" commit -qam evil
GIT_COMMITTER_DATE="$((TAGTIME + 60)) +0000" \
	git -C "$work" -c user.signingkey="$T/mallory" tag -s -f -m evil stable >/dev/null
git -C "$work" push -q -f origin HEAD:refs/heads/main refs/tags/stable
before=$(sha256sum <"$UD/web.service")
state=$(sha256sum <"$STATE")
OUT=$(TAGMOOR_TEST_FORGE=verdict "$TAGMOOR" -c "$INI" --root "$R" sync 2>&1); RC=$?
echo "$OUT" | sed 's/^/#   /'
check "the hook ran" has "the fetcher forges its message \(verdict\)"
check "the parent's own verdict: refused (exit $RC)" [ "$RC" = 4 ] && has "refused|not allowed|no trusted|untrusted|not signed by"
check "the disagreement is logged" has "is not the parent's"
unchanged verdict

echo "# a good release 2, and the child lying about it"
printf '[Unit]\nDescription=web2\n[Service]\nExecStart=/bin/true\n' >"$work/units/web.service"
printf '[Unit]\nDescription=api\n[Service]\nExecStart=/bin/true\n' >"$work/units/api.service"
tm_release "web2"
state=$(sha256sum <"$STATE")
for forge in file drop absent object memfd-size memfd-over memfd-seal; do
	OUT=$(TAGMOOR_TEST_FORGE=$forge "$TAGMOOR" -c "$INI" --root "$R" sync 2>&1); RC=$?
	echo "$OUT" | sed 's/^/#   /'
	check "$forge: the hook ran" has "the fetcher forges its message \($forge\)"
	check "$forge: a source error (exit $RC)" [ "$RC" = 3 ]
	case $forge in
	file) check "file: named" has "is not the blob" ;;
	drop) check "drop: named" has "is in the tree but not in what it sent" ;;
	absent) check "absent: named" has "units is not absent" ;;
	object) check "object: named" has "verifying what the fetcher sent" ;;
	memfd-size) check "memfd-size: named" has "announced a message of [0-9]+ bytes; its memfd has [0-9]+" ;;
	memfd-over) check "memfd-over: named" has "announced a message of 1099511627776 bytes \(at most" ;;
	memfd-seal) check "memfd-seal: named" has "message cannot be sealed" ;;
	esac
	unchanged "$forge"
done

echo "# without the hook the next poll applies release 2"
TM sync
check "applied (exit $RC)" [ "$RC" = 0 ]
check "web2 and api are there" grep -q web2 "$UD/web.service" && [ -f "$UD/api.service" ]
check "nothing of the untrusted revision ever ran" [ ! -e /tmp/owned ]

echo "# the drift check's inputs are checked too: a forged idle poll changes nothing"
echo "# (an edit by hand stays until an honest child repairs it)"
echo "edited" >>"$UD/api.service"
OUT=$(TAGMOOR_TEST_FORGE=absent "$TAGMOOR" -c "$INI" --root "$R" sync 2>&1); RC=$?
echo "$OUT" | sed 's/^/#   /'
check "forged drift inputs: a source error (exit $RC)" [ "$RC" = 3 ]
check "nothing pruned" [ -f "$UD/web.service" ] && [ -f "$UD/api.service" ]
TM sync
check "an honest poll repairs the drift (exit $RC)" [ "$RC" = 0 ] && ! grep -q edited "$UD/api.service"
echo
if [ "$FAILS" -eq 0 ]; then echo "all forged-message cases passed"; exit 0; fi
echo "$FAILS case(s) failed"; exit 1
