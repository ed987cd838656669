#!/bin/bash
# test_git_fetch.sh — the source end to end over real HTTPS (nginx + git
# http-backend from lib.sh), through the poll driver built with the unit tests
# (tests/test_git drive poll): first fetch, idle poll (one GET, no POST, no
# bytes written to disk), a force-moved tag followed (one GET, one POST), basic auth, redirect,
# untrusted CA, silent server, max_fetch and a broken repo.git rebuilt.
set -u
. "${TM_SOURCE_DIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

DRIVER=${TM_GIT_DRIVER:-$(dirname "${TAGMOOR:-/nonexistent/x}")/tests/test_git}
[ -x "$DRIVER" ] || { echo "SKIP: driver $DRIVER not built" >&2; exit 77; }

fail() { echo "FAIL: $*" >&2; exit 1; }

tm_git_server_start || fail "git server did not start"
STATE="$TM_TMP/state"
mkdir -p "$STATE"

poll() { # poll REPO_URL_PATH REF [driver options...]
	local path=$1 ref=$2
	shift 2
	"$DRIVER" drive poll "$STATE/repo.git" "$TM_GIT_URL/$path" "$ref" --ca "$TM_GIT_CA" --timeout 5000 "$@"
}

tm_repo_new fleet >/dev/null
tm_repo_commit fleet "first" k8s/common/app.yaml "kind: ConfigMap" units/a.service "[Unit]"
tm_repo_files fleet 50
git -C "$TM_TMP/work/fleet" commit -q -m files
tm_repo_tag fleet stable
tm_repo_push fleet
tag1=$(git -C "$TM_TMP/work/fleet" rev-parse stable)

out=$(poll git/fleet.git refs/tags/stable) || fail "first poll: $out"
[ "$(echo "$out" | head -1)" = "$tag1 fetched" ] || fail "first poll printed: $out"

# Idle poll: one advertisement, nothing else, nothing written.
sleep 0.2
tm_git_log_reset
out=$(poll git/fleet.git refs/tags/stable) || fail "idle poll: $out"
[ "$(echo "$out" | head -1)" = "$tag1 idle" ] || fail "idle poll printed: $out"
echo "$out" | grep -qx 'write_bytes 0' || fail "idle poll wrote to disk: $out"
sleep 0.3
[ "$(tm_git_log_count GET 'info/refs')" = 1 ] || fail "idle poll: expected one GET: $(cat "$TM_GIT_LOG")"
[ "$(tm_git_log_count POST '.')" = 0 ] || fail "idle poll: expected no POST: $(cat "$TM_GIT_LOG")"

# Force-moved tag.
tm_repo_commit fleet "second" k8s/common/app.yaml "kind: Secret"
tm_repo_tag fleet stable -f >/dev/null
tm_repo_push fleet --force
tag2=$(git -C "$TM_TMP/work/fleet" rev-parse stable)
[ "$tag1" != "$tag2" ] || fail "tag did not move"
tm_git_log_reset
out=$(poll git/fleet.git refs/tags/stable) || fail "moved poll: $out"
[ "$(echo "$out" | head -1)" = "$tag2 fetched" ] || fail "moved poll printed: $out"
# One advertisement per poll, also when it fetches.
sleep 0.3
[ "$(tm_git_log_count GET 'info/refs')" = 1 ] || fail "moved poll: expected one GET: $(cat "$TM_GIT_LOG")"
[ "$(tm_git_log_count POST 'git-upload-pack')" = 1 ] || fail "moved poll: expected one POST: $(cat "$TM_GIT_LOG")"
[ "$(git --git-dir="$STATE/repo.git" rev-parse refs/tagmoor/fetched)" = "$tag2" ] || fail "fetched ref"
git --git-dir="$STATE/repo.git" fsck --no-dangling >/dev/null 2>&1 || fail "fsck complains"

# Branch.
out=$(poll git/fleet.git refs/heads/main) || fail "branch poll: $out"

# Basic auth.
printf '%s:%s\n' "$TM_GIT_USER" "$TM_GIT_PASS" >"$TM_TMP/token"
out=$(poll auth/fleet.git refs/tags/stable --token "$TM_TMP/token" 2>&1) || fail "auth poll: $out"
poll auth/fleet.git refs/tags/stable >/dev/null 2>"$TM_TMP/err"
[ $? = 3 ] || fail "no credentials: expected exit 3"
grep -q 401 "$TM_TMP/err" || fail "no credentials: $(cat "$TM_TMP/err")"

# Redirect refused.
poll redirect/fleet.git refs/tags/stable >/dev/null 2>"$TM_TMP/err"
[ $? = 3 ] || fail "redirect: expected exit 3"
grep -q "redirect refused" "$TM_TMP/err" || fail "redirect: $(cat "$TM_TMP/err")"

# Untrusted CA (the system's): exit 3, names TLS.
"$DRIVER" drive poll "$STATE/repo.git" "$TM_GIT_URL/git/fleet.git" refs/tags/stable --timeout 5000 \
	>/dev/null 2>"$TM_TMP/err"
[ $? = 3 ] || fail "untrusted CA: expected exit 3"
grep -q "TLS" "$TM_TMP/err" || fail "untrusted CA: $(cat "$TM_TMP/err")"

# Silent server: fails within the timeout plus slack.
tm_silent_start tls
t0=$(date +%s%N)
"$DRIVER" drive poll "$STATE/repo.git" "https://localhost:$TM_SILENT_PORT/x.git" refs/tags/stable \
	--ca "$TM_GIT_CA" --timeout 1000 >/dev/null 2>"$TM_TMP/err"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 3 ] || fail "silent: expected exit 3, got $rc"
[ $ms -lt 2500 ] || fail "silent: took $ms ms"
grep -q "timed out" "$TM_TMP/err" || fail "silent: $(cat "$TM_TMP/err")"

# max_fetch: a 1 MiB incompressible file with a 128 KiB cap.
head -c 1048576 /dev/urandom >"$TM_TMP/work/fleet/big.bin"
git -C "$TM_TMP/work/fleet" add big.bin
git -C "$TM_TMP/work/fleet" commit -q -m big
tm_repo_tag fleet stable -f >/dev/null
tm_repo_push fleet --force
tag3=$(git -C "$TM_TMP/work/fleet" rev-parse stable)
poll git/fleet.git refs/tags/stable --max 131072 >/dev/null 2>"$TM_TMP/err"
[ $? = 1 ] || fail "max_fetch: expected a limit failure"
grep -q "max_fetch" "$TM_TMP/err" || fail "max_fetch: $(cat "$TM_TMP/err")"
ls "$STATE/repo.git/objects/pack" | grep -v -E '^pack-[0-9a-f]+\.(pack|idx)$' && fail "max_fetch left temporary files"
out=$(poll git/fleet.git refs/tags/stable) || fail "after max_fetch: $out"
[ "$(echo "$out" | head -1)" = "$tag3 fetched" ] || fail "after max_fetch printed: $out"

# Broken repo.git: rebuilt by the next poll.
echo garbage >"$STATE/repo.git/HEAD"
out=$(poll git/fleet.git refs/tags/stable 2>"$TM_TMP/err") || fail "rebuild: $out $(cat "$TM_TMP/err")"
[ "$(echo "$out" | head -1)" = "$tag3 fetched" ] || fail "rebuild printed: $out"
grep -q "rebuilding" "$TM_TMP/err" || fail "rebuild: no warning"
rm -rf "$STATE/repo.git/objects"
out=$(poll git/fleet.git refs/tags/stable 2>/dev/null) || fail "rebuild 2: $out"

echo "PASS"
