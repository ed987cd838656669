#!/usr/bin/env bash
# test_report_refusals.sh — issue 12: every refusal case of test_source_verify
# also produces a report that says what was wrong (and, for an untrusted key,
# which key), against the real HTTPS git server with real ssh-keygen and gpg
# signatures and the HTTPS receiver with client certificates. The same
# refusal on the next poll sends nothing; status --json shows the refusal.
. "$TM_SOURCE_DIR/tests/integration/receiver/setup.sh"
tm_need gpg
rcv_start || exit 1
ssh-keygen -q -t ed25519 -N '' -C other-ns -f "$T/otherns"
echo "ci@example.com namespaces=\"file\" $(cut -d' ' -f1,2 "$T/otherns.pub")" >>"$T/allowed_signers"
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg -q --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Release <pgp@example.com>' ed25519 sign never 2>/dev/null
gpg -q --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Rogue <rogue@example.com>' ed25519 sign never 2>/dev/null
FPR=$(gpg --with-colons --list-keys pgp@example.com | awk -F: '/^fpr/ {print $10; exit}')
FPR_ROGUE=$(gpg --with-colons --list-keys rogue@example.com | awk -F: '/^fpr/ {print $10; exit}')
gpg --armor --export "$FPR" >"$T/trusted.asc"
INI=$T/tagmoor.ini
VERIFY_EXTRA="openpgp_keyring = $T/trusted.asc" write_ini "$INI" "url = $RCV_URL/v1/status" \
	"ca_file = $T/pki/ca.pem" "client_cert = $T/pki/client.pem" "client_key = $T/pki/client.key"
sign_ssh() { git -C "$work" config gpg.format ssh; git -C "$work" config user.signingkey "$1"; }
sign_pgp() { git -C "$work" config gpg.format openpgp; git -C "$work" config user.signingkey "$1"; }
newtag() { # name msg: signed with the configured key, one minute after the previous one
	TAGTIME=$((TAGTIME + 60))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "$2" "$1" >/dev/null 2>&1
}
newcommit() { echo "$1" >"$work/f"; git -C "$work" add -A; git -C "$work" commit -qm "$1"; push HEAD:refs/heads/main; }
SEEN=0
refused() { # state desc regex: sync refuses (exit 4) and reports it once
	local state=$1 desc=$2 re=$3 n got
	TMR sync
	rc_is 4 "$desc"
	n=$(rcv_count)
	got=$(last_doc '"%s | %s | %s" % (d["state"], d["source"]["ref"], " / ".join(e["message"] for e in d["errors"] if e["stage"] == "verify"))')
	if [ "$n" = $((SEEN + 1)) ] && grep -qE -- "^$state \| refs/tags/stable \|.*($re)" <<<"$got"; then
		ok "  reported: $got"
	else
		bad "  reported as $state /$re/: $n report(s) after $SEEN, last: $got"
	fi
	check "  status --json shows it" bash -c "'$TAGMOOR' -c '$INI' --root '$ROOT' status --json | grep -q '\"state\":\"$state\"'"
	TMR sync
	check "  the same refusal again sends nothing" [ "$(rcv_count)" = "$n" ]
	SEEN=$n
}
synced() { TMR sync; rc_is 0 "$1"; SEEN=$(rcv_count); }

release "release"
synced "a signed release is applied and reported"

newcommit unsigned
TAGTIME=$((TAGTIME + 60)); GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -a -f -m unsigned stable
push refs/tags/stable
refused refused "unsigned tag" "is not signed"

sign_ssh "$T/stranger"; newtag stable "stranger"; push refs/tags/stable
FP=$(ssh-keygen -lf "$T/stranger.pub" | awk '{print $2}')
# the fingerprint is base64 ('+', '/'): quoted for the extended regex
FP_RE=$(printf '%s' "$FP" | sed 's/[][\\.^$*+?(){}|]/\\&/g')
refused refused "tag signed by an untrusted ssh key (which key: $FP)" "untrusted key.*$FP_RE"

sign_pgp "$FPR_ROGUE"; newtag stable "rogue pgp"; push refs/tags/stable
refused refused "tag signed by an unknown OpenPGP key (which key)" "unknown key.*(${FPR_ROGUE}|${FPR_ROGUE: -16})"

sign_ssh "$T/otherns"; newtag stable "wrong namespace"; push refs/tags/stable
refused refused "key whose namespaces= excludes git" "namespace|untrusted|allowed"

sign_ssh "$T/release"
newtag stable "release tamper"
raw=$(git -C "$work" cat-file tag stable)
forged=$(printf '%s\n' "$raw" | sed 's/release tamper/release TAMPERED/' | git -C "$work" hash-object -t tag -w --stdin --literally)
push "$forged:refs/tags/stable"
refused refused "tampered tag payload" "does not verify|signature|invalid"

newcommit v9; newtag v9 "release v9"; push "refs/tags/v9:refs/tags/stable"
refused refused "a validly signed tag served under another name" "named 'v9'"
git -C "$work" tag -d v9 >/dev/null

git -C "$work" tag -f light HEAD; push "refs/tags/light:refs/tags/stable"
refused refused "lightweight tag" "lightweight"

release "release"
synced "the next release"
OLD=$(git -C "$TM_GIT_ROOT/fleet.git" rev-parse refs/tags/stable)
release "release"
synced "a newer release"
push "$OLD:refs/tags/stable"
refused refused "an old signed tag replayed" "replay refused"

newcommit expired
newtag stable "$(printf 'release expired\n\nTagmoor-Expires: 2020-01-01T00:00:00Z')"; push refs/tags/stable
refused stale "Tagmoor-Expires in the past" "expired"

newcommit old
newtag stable "old enough"; push refs/tags/stable
VERIFY_EXTRA="$(printf 'openpgp_keyring = %s\nmax_age = 1m' "$T/trusted.asc")" write_ini "$INI" \
	"url = $RCV_URL/v1/status" "ca_file = $T/pki/ca.pem" "client_cert = $T/pki/client.pem" "client_key = $T/pki/client.key"
refused stale "older than max_age" "max_age"

check "every report was delivered once, seq strictly increasing" python3 - "$RCV_DIR/requests.jsonl" <<'PY'
import json, sys
s = [json.loads(json.loads(l)["body"])["seq"] for l in open(sys.argv[1])]
sys.exit(0 if s == sorted(set(s)) else 1)
PY
if [ "$FAILS" -eq 0 ]; then echo "test_report_refusals: all passed"; exit 0; fi
echo "test_report_refusals: $FAILS failure(s)"
exit 1
