#!/usr/bin/env bash
# test_release.sh — issue 14: scripts/release against the HTTPS git server of
# lib.sh (pushing over HTTPS with basic auth), signing with an ssh-keygen key,
# and every result checked the way a device sees it: `tagmoor verify` (and
# `tagmoor sync` where the anti-rollback floor matters) with the same
# allowed_signers. Cases: a first release with rollout, expiry and fleet
# trailers (the buckets and times it prints are those of `tagmoor verify` for
# a device in the first and in the last wave, and of an independent SHA-256
# in Python); a relative expiry is the signed time plus the duration; moving
# the tag backwards or to the same second is refused and leaves the remote
# and the local tag as they were; a rollback (older commit, newer tag) is
# pushed and a device that synced the newer commit accepts it; without
# --fleet a device with [verify] fleet refuses it; --dry-run pushes nothing;
# bad trailers are usage errors that push nothing.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen python3 sha256sum
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
RELEASE=$TM_SOURCE_DIR/scripts/release
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

ssh-keygen -q -t ed25519 -N '' -C release -f "$T/release"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/release.pub")" >"$T/allowed_signers"
work=$(tm_repo_new fleet)
git -C "$TM_GIT_ROOT/fleet.git" config http.receivepack true
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/release"
git -C "$work" config http.sslCAInfo "$TM_GIT_CA"
git -C "$work" remote set-url origin "https://$TM_GIT_USER:$TM_GIT_PASS@localhost:$TM_GIT_PORT/auth/fleet.git"
mkdir -p "$work/units"
echo one >"$work/units/one.txt"
git -C "$work" add -A && git -C "$work" commit -qm "config 1"
C1=$(git -C "$work" rev-parse HEAD)
git -C "$work" push -q origin HEAD:refs/heads/main || { echo "FAIL: push over HTTPS"; exit 1; }

# Devices: one in the first wave (bucket < 10), one in the last (bucket >= 50), by Python's SHA-256.
pybucket() { python3 -c 'import hashlib,sys; print(int.from_bytes(hashlib.sha256(sys.argv[1].encode()).digest()[:8], "big") % 100)' "$1"; }
read -r EARLY LATE < <(python3 -c '
import hashlib
b = lambda s: int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big") % 100
ids = ["edge-%04d" % i for i in range(1000)]
print(next(i for i in ids if b(i) < 10), next(i for i in ids if b(i) >= 50))')
device_ini() { # id fleet-or-empty
	cat <<INI
[agent]
device_id = $1
state_dir = $T/dev-$1
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
[verify]
allowed_signers = $T/allowed_signers
${2:+fleet = $2}
INI
}
device_ini "$EARLY" berlin >"$T/early.ini"
device_ini "$LATE" berlin >"$T/late.ini"
device_ini "$EARLY" "" >"$T/nofleet.ini"
remote_tag() { git ls-remote "$TM_GIT_URL/git/fleet.git" refs/tags/stable | awk '{ print $1 }'; }
applied() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["applied"]["commit"])' "$T/dev-$EARLY/state.json" 2>/dev/null; }
rel() { (cd "$work" && GIT_SSL_CAINFO=$TM_GIT_CA "$RELEASE" "$@"); }

echo "# 1. the first release: rollout, expiry, fleet; what it prints is what devices do"
NOW=$(date +%s)
T1=$((NOW - 7200))
OUT=$(GIT_COMMITTER_DATE="$T1 +0000" rel --rollout "10% 0h, 50% 6h, 100% 24h" --expires 14d --fleet berlin \
	--device "$EARLY" --device "$LATE" -m "release 1" 2>&1)
RC=$?
echo "$OUT" | sed 's/^/    /'
check "release exits 0 ($RC)" [ "$RC" = 0 ]
TAG1=$(git -C "$work" rev-parse refs/tags/stable)
check "the remote serves the new tag ($TAG1)" [ "$(GIT_SSL_CAINFO=$TM_GIT_CA remote_tag)" = "$TAG1" ]
MSG=$(git -C "$work" cat-file tag "$TAG1")
check "Tagmoor-Rollout trailer" grep -qx 'Tagmoor-Rollout: 10% 0h, 50% 6h, 100% 24h' <<<"$MSG"
check "Tagmoor-Expires = signed time + 14d ($(utc $((T1 + 14 * 86400))))" grep -qx "Tagmoor-Expires: $(utc $((T1 + 14 * 86400)))" <<<"$MSG"
check "Tagmoor-Fleet trailer" grep -qx 'Tagmoor-Fleet: berlin' <<<"$MSG"
check "the waves printed: buckets 0-9 at once, 10-49 at +6h, 50-99 at +24h" bash -c "
	grep -q 'buckets  0-9  ( 10% of devices) from $(utc "$T1") (+0h)' <<<'$OUT' &&
	grep -q 'buckets 10-49 ( 40% of devices) from $(utc $((T1 + 6 * 3600))) (+6h)' <<<'$OUT' &&
	grep -q 'buckets 50-99 ( 50% of devices) from $(utc $((T1 + 24 * 3600))) (+24h)' <<<'$OUT'"
BE=$(pybucket "$EARLY") BL=$(pybucket "$LATE")
check "$EARLY: bucket $BE (Python's SHA-256), applies at once" grep -q "device $EARLY: bucket $BE, applies from $(utc "$T1")" <<<"$OUT"
check "$LATE: bucket $BL, applies at +24h" grep -q "device $LATE: bucket $BL, applies from $(utc $((T1 + 86400)))" <<<"$OUT"
V=$("$TAGMOOR" -c "$T/early.ini" verify 2>&1)
RC=$?
check "tagmoor verify ($EARLY) accepts it ($RC)" [ "$RC" = 0 ] && grep -q "$(git -C "$work" rev-parse --short=12 "$C1")\|$C1" <<<"$V"
check "tagmoor verify names the signer and the expiry" bash -c "grep -q 'release@example.com' <<<'$V' && grep -q '$(utc $((T1 + 14 * 86400)))' <<<'$V'"
V=$("$TAGMOOR" -c "$T/late.ini" verify 2>&1)
RC=$?
check "tagmoor verify ($LATE): exit 0 ($RC)" [ "$RC" = 0 ]
check "  and waits for bucket $BL's wave at $(utc $((T1 + 86400))), as release printed" \
	grep -q "rollout: bucket $BL is in the 100% wave, which starts at $(utc $((T1 + 86400)))" <<<"$V"
[ "$FAILS" = 0 ] || echo "$V" | sed 's/^/    /'
"$TAGMOOR" -c "$T/early.ini" sync >"$T/sync1.log" 2>&1
check "tagmoor sync ($EARLY) applies release 1 (exit $?)" [ "$(applied)" = "$C1" ]

echo "# 2. backwards in time, or the same second: refused, nothing moves"
LOCAL=$(git -C "$work" rev-parse refs/tags/stable)
for d in $((T1 - 60)) "$T1"; do
	OUT=$(GIT_COMMITTER_DATE="$d +0000" rel --fleet berlin 2>&1)
	RC=$?
	check "signed at $(utc "$d") against $(utc "$T1"): refused, exit 1 ($RC)" [ "$RC" = 1 ]
	check "  it says why" grep -q 'refused: the new tag would be signed at .* not after the stable' <<<"$OUT"
	check "  the remote still serves release 1" [ "$(GIT_SSL_CAINFO=$TM_GIT_CA remote_tag)" = "$TAG1" ]
	check "  the local tag is put back" [ "$(git -C "$work" rev-parse refs/tags/stable)" = "$LOCAL" ]
done

echo "# 3. a newer commit, then a rollback: the older commit under a newer tag"
echo two >"$work/units/two.txt"
git -C "$work" add -A && git -C "$work" commit -qm "config 2"
C2=$(git -C "$work" rev-parse HEAD)
git -C "$work" push -q origin HEAD:refs/heads/main
T2=$((T1 + 600))
OUT=$(GIT_COMMITTER_DATE="$T2 +0000" rel --fleet berlin -m "release 2" 2>&1)
check "release 2 (no rollout: all at once) is pushed" bash -c "[ \"\$(GIT_SSL_CAINFO=$TM_GIT_CA git ls-remote $TM_GIT_URL/git/fleet.git refs/tags/stable^{} | awk '{print \$1}')\" = $C2 ]"
check "  printed: all buckets at once" grep -q 'buckets  0-99 (100% of devices) at once' <<<"$OUT"
"$TAGMOOR" -c "$T/early.ini" sync >"$T/sync2.log" 2>&1
check "tagmoor sync applies release 2 (the floor is now $(utc "$T2"))" [ "$(applied)" = "$C2" ]
T3=$((T2 + 600))
OUT=$(GIT_COMMITTER_DATE="$T3 +0000" rel --fleet berlin -m "rollback to config 1" "$C1" 2>&1)
RC=$?
echo "$OUT" | sed 's/^/    /'
check "the rollback is pushed ($RC)" [ "$RC" = 0 ]
check "  and called a rollback" grep -q 'an older commit under a newer tag: a rollback' <<<"$OUT"
"$TAGMOOR" -c "$T/early.ini" verify >"$T/v3.log" 2>&1
check "tagmoor verify accepts the rollback (exit $?)" grep -q "$C1\|$(git -C "$work" rev-parse --short=12 "$C1")" "$T/v3.log"
"$TAGMOOR" -c "$T/early.ini" sync >"$T/sync3.log" 2>&1
RC=$?
check "tagmoor sync applies it over a floor of release 2 (exit $RC)" [ "$RC" = 0 ] && [ "$(applied)" = "$C1" ]

echo "# 4. a tag without the fleet trailer is refused by a fleet device"
T4=$((T3 + 600))
GIT_COMMITTER_DATE="$T4 +0000" rel -m "no fleet" >/dev/null 2>&1
check "released without --fleet (exit $?)" true
"$TAGMOOR" -c "$T/early.ini" verify >"$T/v4.log" 2>&1
RC=$?
check "tagmoor verify with [verify] fleet = berlin refuses it (exit $RC = 4)" bash -c "[ $RC = 4 ] && grep -q 'no Tagmoor-Fleet trailer' '$T/v4.log'"
"$TAGMOOR" -c "$T/nofleet.ini" verify >/dev/null 2>&1
check "a device without fleet accepts it (exit $?)" [ $? = 0 ]

echo "# 5. --dry-run, bad trailers, an expiry before the signature"
R4=$(GIT_SSL_CAINFO=$TM_GIT_CA remote_tag)
OUT=$(GIT_COMMITTER_DATE="$((T4 + 600)) +0000" rel --fleet berlin --dry-run 2>&1)
check "--dry-run exits 0 ($?) and says it did not push" grep -q 'NOT pushed' <<<"$OUT"
check "  the remote is unchanged" [ "$(GIT_SSL_CAINFO=$TM_GIT_CA remote_tag)" = "$R4" ]
for args in "--rollout 10%_0h" "--rollout 50%_1h,_10%_2h" "--rollout 10%_1h,_100%_30m" "--rollout 10%_0h,_90%_1h" \
	"--rollout 0%_0h,_100%_1h" "--rollout 10%_1x,_100%_2h" "--expires 2026-13-01" "--expires 0" "--fleet a/b" "--tag bad..name"; do
	a=${args//_/ }
	rel ${a%% *} "${a#* }" >/dev/null 2>&1
	RC=$?
	check "usage error for $a (exit $RC)" [ "$RC" = 2 ]
done
check "  nothing was pushed" [ "$(GIT_SSL_CAINFO=$TM_GIT_CA remote_tag)" = "$R4" ]
OUT=$(GIT_COMMITTER_DATE="$((T4 + 1200)) +0000" rel --fleet berlin --expires "$(utc "$T4")" 2>&1)
RC=$?
check "an expiry before the signed time is refused (exit $RC)" bash -c "[ $RC = 1 ] && grep -q 'is not after the signed time' <<<'$OUT'"
check "  nothing was pushed" [ "$(GIT_SSL_CAINFO=$TM_GIT_CA remote_tag)" = "$R4" ]

echo
if [ "$FAILS" -eq 0 ]; then echo "all release cases passed"; exit 0; fi
echo "$FAILS case(s) failed"
exit 1
