#!/usr/bin/env bash
# test_git_hostile.sh — the source module against a hostile server and a bad
# day, each in the form it would take on a device, through `tagmoor sync`:
#   1. zlib and delta bombs served by a hostile smart-HTTP server
#      (hostile/packserver.py builds the packs): refused with exit 3 at the
#      entry header, in bounded memory (max RSS) and time, repo.git usable
#      afterwards;
#   2. a server that moves the ref at every poll to an unsigned revision
#      padded to about max_fetch: repo.git stays bounded;
#   3. lock and temporary files a killed fetch leaves, made by hand and by
#      really SIGKILLing `tagmoor sync` in the middle of a large fetch: the
#      next sync succeeds.
# No applier is enabled: sync fetches, verifies and records.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap python3 /usr/bin/time pgrep
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
TM() { OUT=$("$TAGMOOR" -c "$INI" "$@" 2>&1); RC=$?; echo "$OUT" | sed 's/^/#   /'; }
has() { grep -qE -- "$1" <<<"$OUT"; }
rc_is() { # want desc
	if [ "$RC" = "$1" ]; then ok "$2 (exit $RC)"; else bad "$2: exit $RC, want $1"; fi
}
STATE=$T/state
REPO=$STATE/repo.git
MAXFETCH=${MAXFETCH:-64MiB}
write_ini() { # url [max_fetch]
	cat >"$INI" <<INI
[agent]
device_id = edge-0042
state_dir = $STATE
[source]
url = $1
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 20s
max_fetch = ${2:-$MAXFETCH}
[verify]
mode = tag
allowed_signers = $T/allowed_signers
INI
}
INI=$T/t.ini
repo_usable() { # desc: no temporaries, git agrees the store is sound
	local left
	left=$(find "$REPO" \( -name '*.lock' -o -name 'tmp_*' -o -name '*_git2_*' \) 2>/dev/null)
	[ -z "$left" ] && ok "$1: no temporary files left" || bad "$1: left $left"
	git --git-dir="$REPO" fsck --no-dangling >/dev/null 2>&1 && ok "$1: git fsck passes" || bad "$1: git fsck fails"
}
objects_kib() { du -sk "$REPO/objects" | cut -f1; }

ssh-keygen -q -t ed25519 -N '' -C release -f "$T/release"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/release.pub")" >"$T/allowed_signers"
work=$(tm_repo_new fleet)
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/release"
TAGTIME=$(( $(date +%s) - 7200 ))
sign_tag() { TAGTIME=$((TAGTIME + 60)); GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "$1" stable >/dev/null; }
unsigned_tag() { TAGTIME=$((TAGTIME + 60)); GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -a -f -m "$1" stable >/dev/null; }
push() { git -C "$work" push -q -f origin "$@" 2>/dev/null; }
GOOD_URL=$TM_GIT_URL/git/fleet.git
tm_repo_commit fleet "first" units/a.service "[Unit]"
sign_tag "release 1"
push HEAD:refs/heads/main refs/tags/stable

# --- 1. bombs from a hostile server ----------------------------------------
echo "# 1. zlib and delta bombs"
HPORT=$(tm_free_port)
# packs are built once, before the server answers (2 GiB of zeros to hash and deflate)
tm_bg python3 "$TM_LIB_DIR/hostile/packserver.py" "$HPORT" "$T/pki/server.pem" "$T/pki/server.key" \
	zbomb zbomb-raw wide dbomb many liar small
for _ in $(seq 1 1200); do grep -q READY "$T/background.log" 2>/dev/null && break; sleep 0.1; done
grep -q READY "$T/background.log" || { echo "packserver did not start"; cat "$T/background.log"; exit 1; }
HURL=https://localhost:$HPORT

write_ini "$GOOD_URL"
TM sync
rc_is 0 "the signed revision from the real server"
bomb() { # name regex desc [max seconds]
	local rss secs limit=${4:-15}
	write_ini "$HURL/$1.git"
	OUT=$(/usr/bin/time -f 'TIME %e %M' "$TAGMOOR" -c "$INI" sync 2>&1); RC=$?
	echo "$OUT" | sed 's/^/#   /'
	rc_is 3 "$3: refused as a source failure"
	has "$2" && ok "$3: says why" || bad "$3: message lacks /$2/"
	read -r secs rss < <(awk '/^TIME/ {print $2, $3}' <<<"$OUT")
	echo "#   $1: ${secs}s, max RSS ${rss} KiB"
	[ "${rss:-999999}" -lt 100000 ] && ok "$3: max RSS ${rss} KiB (< 100 MB)" || bad "$3: max RSS ${rss} KiB"
	awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s < l) }' && ok "$3: ${secs}s (< ${limit}s)" || bad "$3: took ${secs}s"
	repo_usable "$3"
}
bomb zbomb "object 1 of the pack inflates to 2147483648 bytes, more than max_fetch" "zlib bomb (2 GiB of zeros in ~2 MB)"
bomb zbomb-raw "inflates to 2147483648 bytes" "zlib bomb without side-band"
# (this one is decoded up to the limit, 512 MiB, before it is refused)
bomb wide "the pack inflates to more than 536870912 bytes" "12 blobs of 48 MiB, each under max_fetch" 40
bomb dbomb "delta that builds an object of 1073741824 bytes" "delta bomb (1 GiB from 16 KiB of delta)"
bomb many "2000000 objects, more than 1000000" "pack announcing 2,000,000 objects"
bomb liar "inflates to more than its header declares" "entry inflating past its declared size"
write_ini "$HURL/small.git"
TM sync
rc_is 4 "a valid pack from the hostile server is fetched (and refused by verify)"
has "not signed|unsigned|not a tag|lightweight" && ok "…refused by verification, not by the pack scan" || bad "small: $OUT"
write_ini "$GOOD_URL"
tm_repo_commit fleet "second" units/b.service "[Unit]"
sign_tag "release 2"
push HEAD:refs/heads/main refs/tags/stable
TM sync
rc_is 0 "after the bombs, the next signed revision is fetched and applied"
repo_usable "after the bombs"

# --- 2. the ref moved at every poll, padded to max_fetch --------------------
echo "# 2. a server that moves the ref at every poll"
write_ini "$GOOD_URL" 2MiB
tm_repo_commit fleet "small" units/s.service "[Unit]"
sign_tag "release small"
push HEAD:refs/heads/main refs/tags/stable
TM sync
rc_is 0 "a small signed revision"
GOOD=$(git -C "$work" rev-parse HEAD)
echo "#   repo.git/objects: $(objects_kib) KiB after the small revision"
max_kib=0
refused=0
for i in $(seq 1 12); do
	git -C "$work" checkout -q -B evil "$GOOD"
	head -c 1800000 /dev/urandom >"$work/pad.bin"
	git -C "$work" add pad.bin
	git -C "$work" commit -q -m "padding $i"
	unsigned_tag "padding $i"
	push refs/tags/stable
	TM sync
	[ "$RC" = 4 ] && refused=$((refused + 1))
	k=$(objects_kib)
	[ "$k" -gt "$max_kib" ] && max_kib=$k
	echo "#   poll $i: exit $RC, repo.git/objects $k KiB"
done
git -C "$work" checkout -q main
# with or without pruning: the store bound (TM_GIT_STORE_FACTOR 4 x max_fetch,
# plus the fetch that crosses it) holds
[ "$max_kib" -le $(( 5 * 2048 + 1024 )) ] && ok "repo.git/objects stayed under 5 x max_fetch: $max_kib KiB" \
	|| bad "repo.git/objects grew to $max_kib KiB"
# needs reconcile to call tm_git_prune after a pass that fetched: every
# padded revision is fetched and refused by verification (exit 4), never
# refused for the store's size (exit 3), and the store stays near the kept
# revision's size
[ "$refused" = 12 ] && ok "[prune wiring] all 12 padded revisions refused by verify (exit 4)" \
	|| bad "[prune wiring] only $refused of 12 padded revisions reached verification (store bound hit: no prune)"
[ "$max_kib" -le $(( 2 * 2048 + 1024 )) ] && ok "[prune wiring] repo.git/objects stayed under 2 x max_fetch + 1 MiB: $max_kib KiB" \
	|| bad "[prune wiring] repo.git/objects reached $max_kib KiB (no prune)"
tm_repo_commit fleet "after the attack" units/d.service "[Unit]"
sign_tag "release after"
push HEAD:refs/heads/main refs/tags/stable
TM sync
rc_is 0 "the next signed revision after the attack"
repo_usable "after the moving ref"
write_ini "$GOOD_URL"

# --- 3. stale locks -----------------------------------------------------------
echo "# 3. locks and temporaries of a killed fetch"
(
	cd "$REPO" || exit 1
	echo 1111111111111111111111111111111111111111 >refs/tagmoor/fetched.lock
	: >packed-refs.lock; : >HEAD.lock; : >config.lock; : >FETCH_HEAD.lock; : >index.lock; : >shallow.lock
	head -c 4096 /dev/urandom >objects/pack/pack_git2_Xk3p9a
	: >objects/pack/tmp_pack_aB12; : >objects/pack/tmp_idx_aB12
	mkdir -p objects/4f; : >objects/4f/tmp_obj_QQ12
)
tm_repo_commit fleet "third" units/c.service "[Unit]"
sign_tag "release 3"
push HEAD:refs/heads/main refs/tags/stable
TM sync
rc_is 0 "sync after a kill's leftovers (fetched.lock, packed-refs.lock, temporary packs)"
repo_usable "stale locks"

# a real kill: SIGKILL `tagmoor sync` at random points of a large fetch
tm_repo_files fleet 400 40000
git -C "$work" commit -q -m "16 MB of files"
sign_tag "release big"
push HEAD:refs/heads/main refs/tags/stable
t0=$(date +%s%N)
TM sync
full_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
rc_is 0 "the large revision (one uninterrupted sync: ${full_ms} ms)"
kills=0
for i in 1 2 3 4 5 6; do
	printf 'x%s' "$i" >"$work/files/round.txt"
	head -c 6000000 /dev/urandom | base64 >"$work/files/pad-$i.txt"
	git -C "$work" add -A files
	git -C "$work" commit -q -m "round $i"
	sign_tag "release round $i"
	push HEAD:refs/heads/main refs/tags/stable
	delay_ms=$(( RANDOM % (full_ms > 50 ? full_ms : 50) ))
	when="after $delay_ms ms"
	"$TAGMOOR" -c "$INI" sync >/dev/null 2>&1 &
	pid=$!
	if [ $((i % 2)) = 0 ]; then
		# even rounds: as soon as a child (the fetcher) runs, whatever it is doing
		for _ in $(seq 1 1000); do pgrep -P "$pid" >/dev/null && break; sleep 0.005; done
		when="once a child ran"
	else
		python3 -c "import time,sys; time.sleep(int(sys.argv[1])/1000)" "$delay_ms"
	fi
	kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
	wait "$pid" 2>/dev/null
	# the fetcher child goes with it: none may go on writing to repo.git
	# while the next sync clears its locks and fetches (it did: PDEATHSIG)
	orphan=""
	# (SIGKILL is delivered at once; 0.5 s is for a loaded machine to reap it)
	for _ in $(seq 1 25); do
		orphan=$(pgrep -f -- "-c $INI sync" || true)
		[ -z "$orphan" ] && break
		sleep 0.02
	done
	[ -z "$orphan" ] && ok "round $i: no fetcher child outlives the killed sync" \
		|| bad "round $i: the killed sync's fetcher child $orphan still runs"
	left=$(find "$REPO" -name '*.lock' -o -name 'pack_git2_*' -o -name 'tmp_*' | wc -l)
	TM sync
	rc_is 0 "round $i: SIGKILL $when ($left lock/temporary files left), the next sync succeeds"
done
echo "#   $kills of 6 syncs were killed while running"
repo_usable "after the kills"

echo "# $FAILS failures"
[ "$FAILS" = 0 ] && echo PASS
exit $((FAILS > 0))
