#!/usr/bin/env bash
# test_source_verify.sh — issue "Source": tagmoor follows a signed tag over
# real HTTPS (nginx + git http-backend, a CA made now) and refuses everything
# it should, with the right exit code and state.json unchanged. Signatures are
# made by the real git with ssh-keygen keys (ed25519, ecdsa, rsa) and gpg
# (RSA and Ed25519). No applier is enabled: sync verifies and records.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen gpg nginx fcgiwrap
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
expect_rc() { # want desc cmd...
	local want=$1 desc=$2 out rc
	shift 2
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" = "$want" ]; then ok "$desc (exit $rc)"; else bad "$desc: exit $rc, want $want"; echo "$out" | sed 's/^/     /'; fi
	LAST_OUT=$out
}
expect_out() { # regex desc
	if grep -qE -- "$1" <<<"$LAST_OUT"; then ok "$2"; else bad "$2: output lacks /$1/"; echo "$LAST_OUT" | sed 's/^/     /'; fi
}
state_sum() { sha256sum "$STATE/state.json" 2>/dev/null | cut -c1-64 || echo none; }
expect_state_unchanged() { # before desc
	if [ "$(state_sum)" = "$1" ]; then ok "$2: state.json unchanged"; else bad "$2: state.json changed"; fi
}

# --- keys and trust -------------------------------------------------------
for k in ed25519 ecdsa rsa; do
	ssh-keygen -q -t $k -N '' -C "$k@example.com" -f "$T/key-$k"
	echo "$k@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/key-$k.pub")" >>"$T/allowed_signers"
done
ssh-keygen -q -t ed25519 -N '' -C rogue -f "$T/key-rogue"
ssh-keygen -q -t ed25519 -N '' -C other-ns -f "$T/key-otherns"
echo "ci@example.com namespaces=\"file\" $(cut -d' ' -f1,2 "$T/key-otherns.pub")" >>"$T/allowed_signers"
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg -q --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Release RSA <rsa-pgp@example.com>' rsa3072 sign never 2>/dev/null
gpg -q --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Release Ed <ed-pgp@example.com>' ed25519 sign never 2>/dev/null
gpg -q --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Rogue <rogue-pgp@example.com>' ed25519 sign never 2>/dev/null
FPR_RSA=$(gpg --with-colons --list-keys rsa-pgp@example.com | awk -F: '/^fpr/ {print $10; exit}')
FPR_ED=$(gpg --with-colons --list-keys ed-pgp@example.com | awk -F: '/^fpr/ {print $10; exit}')
FPR_ROGUE=$(gpg --with-colons --list-keys rogue-pgp@example.com | awk -F: '/^fpr/ {print $10; exit}')
gpg --armor --export "$FPR_RSA" "$FPR_ED" >"$T/trusted.asc"

work=$(tm_repo_new fleet)
sign_ssh() { git -C "$work" config gpg.format ssh; git -C "$work" config user.signingkey "$T/key-$1"; }
sign_pgp() { git -C "$work" config gpg.format openpgp; git -C "$work" config user.signingkey "$1"; }
TAGTIME=$(( $(date +%s) - 3600 ))
# Each new tag gets a tagger time one minute after the previous one.
newtag() { # name msg [extra tag args]
	local name=$1 msg=$2
	shift 2
	TAGTIME=$((TAGTIME + 60))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "$msg" "$@" "$name" >/dev/null 2>&1
}
push() { git -C "$work" push -q -f origin "$@" 2>/dev/null; }
tm_repo_commit fleet "first" README.md "hello"
sign_ssh ed25519
newtag stable "release 1"
push HEAD:refs/heads/main refs/tags/stable
C1=$(git -C "$work" rev-parse HEAD)

STATE=$T/state
write_ini() { # file [extra INI lines for [verify]] ...
	local f=$1 ref=${REF:-refs/tags/stable} url=${URL:-$TM_GIT_URL/git/fleet.git}
	shift
	cat >"$f" <<INI
[agent]
device_id = ${DEVICE:-edge-0042}
state_dir = $STATE
[source]
url = $url
ref = $ref
ca_file = ${CA:-$TM_GIT_CA}
timeout = ${TIMEOUT:-10s}
max_fetch = ${MAXFETCH:-64MiB}
${TOKEN:+token_file = $TOKEN}
[verify]
mode = ${MODE:-tag}
allowed_signers = $T/allowed_signers
openpgp_keyring = $T/trusted.asc
$*
INI
}
write_ini "$T/t.ini"
TM() { "$TAGMOOR" -c "${INI:-$T/t.ini}" "$@"; }

# --- good tag, verify and sync -------------------------------------------
expect_rc 0 "verify: good ssh-ed25519 tag" TM verify
expect_out "^commit: +$C1" "verify prints the commit"
expect_out "^signer: +ed25519@example.com" "verify prints the signer"
expect_out "^verdict: +accepted" "verdict accepted"
[ ! -f "$STATE/state.json" ] && ok "verify records nothing" || bad "verify wrote state.json"
expect_rc 0 "sync: good tag" TM sync
grep -q "\"commit\":\"$C1\"" "$STATE/state.json" && ok "state records the applied commit" || bad "state lacks commit"

# --- idle poll: exactly one advertisement, no fetch, nothing written -------
tm_git_log_reset
before=$(state_sum); mtime=$(stat -c %Y.%y "$STATE/state.json")
expect_rc 0 "sync: nothing moved" TM sync
[ "$(tm_git_log_count GET 'info/refs')" = 1 ] && ok "idle poll: one ref advertisement" || bad "idle poll: $(tm_git_log_count GET 'info/refs') advertisements"
[ "$(tm_git_log_count POST 'upload-pack')" = 0 ] && ok "idle poll: no fetch" || bad "idle poll fetched"
[ "$(stat -c %Y.%y "$STATE/state.json")" = "$mtime" ] && ok "idle poll: state.json not rewritten" || bad "idle poll rewrote state.json"

# --- each key type ---------------------------------------------------------
for k in ecdsa rsa; do
	tm_repo_commit fleet "by $k" "f-$k" "$k"
	sign_ssh $k; newtag stable "release $k"; push HEAD:refs/heads/main refs/tags/stable
	expect_rc 0 "sync: moved tag signed with ssh $k is followed" TM sync
	expect_out "^commit: $(git -C "$work" rev-parse HEAD)" "sync applied the moved tag ($k)"
done
for who in "$FPR_RSA:rsa-pgp@example.com" "$FPR_ED:ed-pgp@example.com"; do
	tm_repo_commit fleet "by ${who#*:}" "f-${who#*:}" x
	sign_pgp "${who%%:*}"; newtag stable "release pgp"; push HEAD:refs/heads/main refs/tags/stable
	expect_rc 0 "verify: OpenPGP tag by ${who#*:}" TM verify
	expect_out "^signer: .*${who#*:}" "OpenPGP signer reported (${who#*:})"
	expect_rc 0 "sync: OpenPGP tag by ${who#*:}" TM sync
done
sign_ssh ed25519
GOOD_TAG=$(git -C "$work" rev-parse refs/tags/stable)

# --- refusals: exit 4, state unchanged -------------------------------------
refuse_case() { # desc regex
	local before
	before=$(state_sum)
	expect_rc 4 "$1" TM sync
	expect_out "$2" "$1: says why"
	expect_state_unchanged "$before" "$1"
}
tm_repo_commit fleet "unsigned" u 1
TAGTIME=$((TAGTIME + 60)); GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -a -f -m "unsigned" stable
push refs/tags/stable
refuse_case "unsigned tag" "not signed"

sign_ssh rogue; newtag stable "rogue"; push refs/tags/stable
refuse_case "tag signed by an untrusted ssh key" "untrusted|unknown|not trusted|allowed"
sign_pgp "$FPR_ROGUE"; newtag stable "rogue pgp"; push refs/tags/stable
refuse_case "tag signed by an untrusted OpenPGP key" "unknown|untrusted|not in|no key"
sign_ssh otherns; newtag stable "wrong namespace key"; push refs/tags/stable
refuse_case "key whose namespaces= excludes git" "namespace|untrusted|not trusted|allowed"
sign_ssh ed25519

# tampered: same signature, changed message (git mktag accepts it; the signature no longer matches)
newtag stable "release tamper"
raw=$(git -C "$work" cat-file tag stable)
forged=$(printf '%s\n' "$raw" | sed 's/release tamper/release TAMPERED/' | git -C "$work" mktag 2>/dev/null || printf '%s\n' "$raw" | sed 's/release tamper/release TAMPERED/' | git -C "$work" hash-object -t tag -w --stdin --literally)
push "$forged:refs/tags/stable"
refuse_case "tampered tag payload" "does not verify|signature|invalid"

# a valid signed tag named v9 served as stable
tm_repo_commit fleet "v9" v9 1
newtag v9 "release v9"; push "refs/tags/v9:refs/tags/stable"
refuse_case "valid tag served under another ref name" "named 'v9'"
git -C "$work" tag -d v9 >/dev/null

# lightweight tag
git -C "$work" tag -f light HEAD; push "refs/tags/light:refs/tags/stable"
refuse_case "lightweight tag" "lightweight"

# replay of an older, validly signed tag object (anti-rollback)
push "$GOOD_TAG:refs/tags/stable"
expect_rc 0 "the last good tag is still accepted" TM sync
OLD=$(git -C "$TM_GIT_ROOT/fleet.git" rev-parse refs/tags/stable)
tm_repo_commit fleet "newer" n 1; newtag stable "release newer"; push refs/tags/stable
expect_rc 0 "sync: newer tag" TM sync
push "$OLD:refs/tags/stable"
refuse_case "old signed tag replayed" "replay"

# a newly signed tag on an older commit is a deliberate rollback: accepted
git -C "$work" checkout -q "$C1"
newtag stable "rollback to release 1"; push refs/tags/stable
expect_rc 0 "newly signed tag on an older commit (deliberate rollback)" TM sync
expect_out "^commit: $C1" "rolled back to the old commit"
git -C "$work" checkout -q main

# expired and max_age
tm_repo_commit fleet "expired" e 1
newtag stable "$(printf 'release expired\n\nTagmoor-Expires: 2020-01-01T00:00:00Z')"; push refs/tags/stable
refuse_case "Tagmoor-Expires in the past" "expired"
tm_repo_commit fleet "fresh" e2 1
newtag stable "$(printf 'release ok\n\nTagmoor-Expires: 2099-01-01T00:00:00Z')"; push refs/tags/stable
write_ini "$T/maxage.ini" "max_age = 1m"
INI=$T/maxage.ini refuse_case "older than max_age" "max_age"
expect_rc 0 "Tagmoor-Expires in the future is accepted" TM sync

# rollout waves: edge-0042 is bucket 15
tm_repo_commit fleet "wave" w 1
newtag stable "$(printf 'release wave\n\nTagmoor-Rollout: 10%% 0h, 100%% 24h')"; push refs/tags/stable
before=$(state_sum)
expect_rc 0 "rollout: bucket 15 waits for the 24h wave" TM verify
expect_out "bucket 15, wave 100%" "verify shows the bucket and wave"
expect_out "waiting" "verdict: waiting"
expect_rc 0 "sync in a later wave applies nothing" TM sync
expect_out "^state: progressing" "sync reports progressing"
expect_state_unchanged "$before" "rollout wait"
# a device in the first wave: find an id whose documented bucket is < 10
FIRST=$(python3 -c 'import hashlib
i = 0
while int.from_bytes(hashlib.sha256(b"dev-%d" % i).digest()[:8], "big") % 100 >= 10: i += 1
print("dev-%d" % i)')
DEVICE=$FIRST write_ini "$T/wave.ini"
INI=$T/wave.ini expect_rc 0 "rollout: a first-wave device ($FIRST) verifies as accepted" TM verify
expect_out "verdict: +accepted" "first wave accepted"

# --- branches (mode = commit, signed commits) -------------------------------
git -C "$work" config commit.gpgsign true
tm_repo_commit fleet "signed commit on main" b 1
push HEAD:refs/heads/main
MODE=commit REF=refs/heads/main write_ini "$T/branch.ini"
INI=$T/branch.ini expect_rc 0 "branch followed with a signed commit" TM verify
expect_out "^commit: +$(git -C "$work" rev-parse HEAD)" "branch commit"
git -C "$work" config commit.gpgsign false
tm_repo_commit fleet "unsigned commit on main" b 2
push HEAD:refs/heads/main
INI=$T/branch.ini expect_rc 4 "branch head not signed" TM verify

# --- source failures: exit 3 -------------------------------------------------
before=$(state_sum)
CA=$T/allowed_signers write_ini "$T/wrongca.ini"   # not a CA bundle at all
tm_make_ca "$T/otherpki" && CA=$T/otherpki/ca.pem write_ini "$T/wrongca.ini"
INI=$T/wrongca.ini expect_rc 3 "wrong CA" TM sync
expect_out "certificate|TLS|SSL|verif" "wrong CA: names TLS verification"
expect_state_unchanged "$before" "wrong CA"
tm_silent_start tls
URL=https://localhost:$TM_SILENT_PORT/git/fleet.git TIMEOUT=2s write_ini "$T/silent.ini"
start=$(date +%s%N)
INI=$T/silent.ini expect_rc 3 "silent server" TM sync
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$el" -lt 6000 ] && ok "silent server: gave up after ${el} ms (timeout 2s)" || bad "silent server: took ${el} ms"
URL=$TM_GIT_URL/redirect/fleet.git write_ini "$T/redir.ini"
INI=$T/redir.ini expect_rc 3 "redirect refused" TM sync
expect_out "redirect" "redirect: says so"
URL=$TM_GIT_URL/auth/fleet.git write_ini "$T/auth.ini"
INI=$T/auth.ini expect_rc 3 "basic auth without credentials" TM sync
printf '%s:%s\n' "$TM_GIT_USER" "$TM_GIT_PASS" >"$T/token"
URL=$TM_GIT_URL/auth/fleet.git TOKEN=$T/token write_ini "$T/auth.ini"
INI=$T/auth.ini expect_rc 0 "basic auth with token_file" TM verify
grep -q "$TM_GIT_PASS" <<<"$LAST_OUT" && bad "password printed" || ok "password never printed"

# --- oversized fetch, then corrupt repo.git -----------------------------------
tm_repo_files fleet 300 4096; git -C "$work" commit -qm "big"
newtag stable "release big"; push HEAD:refs/heads/main refs/tags/stable
before=$(state_sum)
MAXFETCH=64KiB write_ini "$T/small.ini"
INI=$T/small.ini expect_rc 3 "fetch beyond max_fetch aborted" TM sync
expect_out "max_fetch|limit|exceed" "oversized fetch: says so"
expect_state_unchanged "$before" "oversized fetch"
expect_rc 0 "the repository is still usable: a normal fetch works" TM sync
echo "garbage" >"$STATE/repo.git/HEAD"; rm -rf "$STATE/repo.git/objects"
tm_repo_commit fleet "after corruption" c 1; newtag stable "release c"; push HEAD:refs/heads/main refs/tags/stable
expect_rc 0 "corrupt repo.git is rebuilt by the next poll" TM sync
expect_out "^commit: $(git -C "$work" rev-parse HEAD)" "rebuilt and synced"

# --- lock ----------------------------------------------------------------------
exec 9>"$STATE/lock"; flock 9
expect_rc 5 "a second tagmoor while the lock is held" TM sync
exec 9>&-

echo
if [ "$FAILS" -eq 0 ]; then echo "all source/verify cases passed"; exit 0; fi
echo "$FAILS case(s) failed"; exit 1
