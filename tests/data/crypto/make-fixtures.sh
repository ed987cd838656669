#!/bin/sh
# make-fixtures.sh — regenerates the signature fixtures of test_sshsig and
# test_openpgp with the real ssh-keygen and gpg. The outputs are checked in
# so the unit tests are fast and deterministic; run this again only to
# refresh them (keys and signatures will all change):
#   sh tests/data/crypto/make-fixtures.sh
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------- payload
# A signed-tag payload as git hands it to the signer.
cat > message.txt <<'MSG'
object 4b825dc642cb6eb9a060e54bf8d69288fbee4904
type commit
tag stable
tagger Release <release@example.com> 1767225600 +0000

Release 2026-01-01

Tagmoor-Rollout: 10% 0h, 50% 6h, 100% 24h
MSG

# ---------------------------------------------------------------- ssh
mkdir -p ssh
rm -f ssh/*
ssh-keygen -q -N '' -C 'ed25519@example.com' -t ed25519 -f ssh/ed25519
ssh-keygen -q -N '' -C 'ecdsa256@example.com' -t ecdsa -b 256 -f ssh/ecdsa256
ssh-keygen -q -N '' -C 'ecdsa384@example.com' -t ecdsa -b 384 -f ssh/ecdsa384
ssh-keygen -q -N '' -C 'rsa@example.com' -t rsa -b 3072 -f ssh/rsa
ssh-keygen -q -N '' -C 'rsa1024@example.com' -t rsa -b 1024 -f ssh/rsa1024
ssh-keygen -q -N '' -C 'other@example.com' -t ed25519 -f ssh/other
sign() { # key namespace output [extra ssh-keygen options]
	k=$1 ns=$2 out=$3
	shift 3
	ssh-keygen -q -Y sign -f "ssh/$k" -n "$ns" "$@" < message.txt > "ssh/$out"
}
for k in ed25519 ecdsa256 ecdsa384 rsa rsa1024 other; do
	sign "$k" git "message.$k.sig"
done
sign ed25519 file message.ed25519-file.sig
sign ed25519 git message.ed25519-sha256.sig -O hashalg=sha256
sign rsa git message.rsa-sha256.sig -O hashalg=sha256

# allowed_signers with every trusted key (not "other").
{
	echo "# tagmoor test signers"
	for k in ed25519 ecdsa256 ecdsa384 rsa; do
		printf '%s@example.com %s\n' "$k" "$(cut -d' ' -f1,2 "ssh/$k.pub")"
	done
} > ssh/allowed_signers
# ssh-keygen's own fingerprints, to check ours against.
for k in ed25519 other; do ssh-keygen -lf "ssh/$k.pub" | cut -d' ' -f2 > "ssh/$k.fp"; done
# Private keys are not needed by the tests.
for k in ed25519 ecdsa256 ecdsa384 rsa rsa1024 other; do rm -f "ssh/$k"; done

# Sanity: the real ssh-keygen accepts what the tests expect to pass.
for k in ed25519 ecdsa256 ecdsa384 rsa; do
	ssh-keygen -q -Y verify -f ssh/allowed_signers -I "$k@example.com" -n git \
		-s "ssh/message.$k.sig" < message.txt > /dev/null
done

# ---------------------------------------------------------------- openpgp
mkdir -p pgp
rm -f pgp/*
gpgq() {
	gh=$1
	shift
	gpg --homedir "$work/$gh" --batch --quiet --pinentry-mode loopback --passphrase '' \
		--no-auto-check-trustdb "$@"
}
home() { mkdir -m 700 "$work/$1"; }

home rsa
gpgq rsa --quick-gen-key 'Release <release@example.com>' rsa3072 sign never
home ed
gpgq ed --quick-gen-key 'Release <release@example.com>' ed25519 sign never
# A second user ID made primary, so the reported signer is not just "the first".
gpgq ed --quick-add-uid 'Release <release@example.com>' 'Release Team <team@example.com>'
gpgq ed --quick-set-primary-uid 'Release <release@example.com>' 'Release <release@example.com>'
home sub
gpgq sub --quick-gen-key 'Subkey Signer <sub@example.com>' ed25519 cert never
subfpr=$(gpgq sub --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
gpgq sub --quick-add-key "$subfpr" ed25519 sign never
home exp
gpgq exp --quick-gen-key 'Expiring <exp@example.com>' ed25519 sign 2d
home other
gpgq other --quick-gen-key 'Other <other@example.com>' ed25519 sign never

for h in rsa ed sub exp other; do
	gpgq "$h" --armor --export > "pgp/key-$h.asc"
done
cat pgp/key-rsa.asc pgp/key-ed.asc pgp/key-sub.asc pgp/key-exp.asc > pgp/keyring.asc
gpgq rsa --export > pgp/key-rsa.gpg   # binary keyring form

psign() { # home output [gpg options]
	h=$1 out=$2
	shift 2
	gpgq "$h" --detach-sign --armor "$@" -o "pgp/$out" message.txt
}
psign rsa message.rsa.asc --digest-algo SHA256
psign rsa message.rsa-sha512.asc --digest-algo SHA512
psign rsa message.rsa-sha1.asc --digest-algo SHA1
psign ed message.ed.asc --digest-algo SHA256
psign ed message.ed-sha384.asc --digest-algo SHA384
psign sub message.sub.asc --digest-algo SHA256
psign exp message.exp.asc --digest-algo SHA256
psign ed message.ed-sigexp.asc --digest-algo SHA256 --default-sig-expire 1d
psign ed message.ed-text.asc --digest-algo SHA256 --textmode
psign other message.other.asc --digest-algo SHA256

# What gpg itself says, to check ours against.
gpgq other --with-colons --fingerprint | awk -F: '/^fpr/ {print $10; exit}' > pgp/key-other.fpr
home dump
gpgq dump --list-packets pgp/message.rsa.asc | sed -n 's/.*, created \([0-9]*\),.*/\1/p' \
	> pgp/message.rsa.created

# Sanity: the real gpg accepts the good ones against the combined keyring.
home check
gpgq check --import pgp/keyring.asc
for s in rsa rsa-sha512 ed ed-sha384 sub exp; do
	gpgq check --verify "pgp/message.$s.asc" message.txt 2> /dev/null
done
echo "fixtures regenerated"
