#!/usr/bin/env bash
# test_tls_matrix.sh — the TLS cases a device meets, through `tagmoor sync` of a signed repository
# to tests/fakekube over TLS, on whichever binary $TAGMOOR is (the Debian build over OpenSSL, the
# static musl build over mbedTLS 3.6, the ARM ones under qemu-user):
#   a server chain with an intermediate CA (trusting the root only) and one that omits it; a wrong
#   host name; an expired certificate; the CA as a file and as certificate-authority-data; mTLS
#   with EC (SEC1, PKCS#8) and RSA client keys against a server that requires a certificate;
#   TLS 1.3-only and TLS 1.2-only servers, RSA and EC (TLS 1.2 with RSA is where mbedTLS 3.6.6
#   needs cross/patches/mbedtls-tls12-rsa-pss-rsae.patch); a server offering only a cipher suite
#   the client lacks: a clear error naming TLS.
# Certificates are for DNS:localhost (URLs https://localhost:PORT).
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
. "$TM_SOURCE_DIR/tests/fakekube/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap openssl
fk_pick_python || { echo "FAIL: python3 with PyYAML (Debian: python3-yaml) is missing"; exit 1; }
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
PASS=0 FAIL=0
ok() { echo "ok   - $1"; PASS=$((PASS + 1)); }
bad() { echo "FAIL - $1"; FAIL=$((FAIL + 1)); echo "$LAST" | grep -v ' info ' | tail -6 | sed 's/^/     | /'; }

# --- PKI: root -> intermediate -> server; a client CA; client keys of each kind -------------
P=$T/tls
mkdir -p "$P"
SERVER_EXT="subjectAltName=DNS:localhost
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
CLIENT_EXT="keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
tm_pki_ca "$P/root" "/CN=tagmoor test root" - rsa || exit 1
tm_pki_ca "$P/inter" "/CN=tagmoor test intermediate" "$P/root" rsa || exit 1
tm_pki_ca "$P/client-ca" "/CN=tagmoor test client CA" || exit 1
tm_pki_key "$P/rsa.key" rsa-pkcs8 && tm_pki_cert "$P/rsa.pem" "$P/rsa.key" /CN=localhost "$P/inter" "$SERVER_EXT" || exit 1
tm_pki_key "$P/ec.key" ec && tm_pki_cert "$P/ec.pem" "$P/ec.key" /CN=localhost "$P/inter" "$SERVER_EXT" || exit 1
tm_pki_cert "$P/wrong.pem" "$P/rsa.key" /CN=wrong.example "$P/inter" \
	"$(sed 's/DNS:localhost/DNS:wrong.example/' <<<"$SERVER_EXT")" || exit 1
tm_pki_cert "$P/expired.pem" "$P/rsa.key" /CN=localhost "$P/inter" "$SERVER_EXT" 20200101000000Z 20200201000000Z || exit 1
for c in rsa ec wrong expired; do cat "$P/$c.pem" "$P/inter.pem" >"$P/$c-chain.pem"; done
for t in ec ec-pkcs8 rsa; do
	tm_pki_key "$P/client-$t.key" "$t" &&
		tm_pki_cert "$P/client-$t.pem" "$P/client-$t.key" "/O=system:masters/CN=tagmoor-device" "$P/client-ca" "$CLIENT_EXT" || exit 1
done

FK_PID=
fk_up() { # server-cert server-key [fakekube options...]
	local cert=$1 key=$2
	shift 2
	[ -n "$FK_PID" ] && { kill "$FK_PID" 2>/dev/null; wait "$FK_PID" 2>/dev/null; }
	rm -f "$T/fk.port"
	"$FK_PYTHON" "$TM_SOURCE_DIR/tests/fakekube/fakekube.py" --cert "$cert" --key "$key" \
		--client-ca "$P/client-ca.pem" --port-file "$T/fk.port" --delay 0.1 --control-port 0 \
		--fixtures "${TM_SHARED_DIR:-$TM_SOURCE_DIR/../shared}/fixtures/kubernetes/discovery" "$@" \
		</dev/null >>"$T/fakekube.log" 2>&1 &
	FK_PID=$!
	TM_PIDS+=("$FK_PID")
	for _ in $(seq 1 200); do [ "$(wc -l <"$T/fk.port" 2>/dev/null)" = 2 ] && break; sleep 0.05; done
	[ "$(wc -l <"$T/fk.port" 2>/dev/null)" = 2 ] || { echo "fakekube did not start"; tail "$T/fakekube.log"; exit 1; }
	FK_PORT=$(sed -n 1p "$T/fk.port") CTL_PORT=$(sed -n 2p "$T/fk.port")
}
patches() { curl -sS "http://127.0.0.1:$CTL_PORT/fakekube/requests" | fk_py -c 'import json,sys; print(json.load(sys.stdin)["by_verb"].get("patch",0))'; }

# kubeconfig FILE [key=value...]: ca_data= ca= (files) client= (client-<kind>.pem/.key as data)
kubeconfig() {
	local f=$1 ca_data=$P/root.pem ca= client=ec kv
	shift
	for kv in "$@"; do local "${kv%%=*}=${kv#*=}"; done
	{
		printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: edge\n  cluster:\n'
		echo "    server: https://localhost:$FK_PORT"
		[ -n "$ca_data" ] && echo "    certificate-authority-data: $(base64 -w0 <"$ca_data")"
		[ -n "$ca" ] && echo "    certificate-authority: $ca"
		printf 'users:\n- name: device\n  user:\n'
		echo "    client-certificate-data: $(base64 -w0 <"$P/client-$client.pem")"
		echo "    client-key-data: $(base64 -w0 <"$P/client-$client.key")"
		printf 'contexts:\n- name: edge\n  context: {cluster: edge, user: device}\ncurrent-context: edge\n'
	} >"$f"
}

# --- a signed repository with one ConfigMap -------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C release@example.com -f "$T/sign"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/sign.pub")" >"$T/allowed_signers"
work=$(tm_repo_new fleet)
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/sign"
mkdir -p "$work/k8s"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: edge, namespace: default}\ndata: {a: "1"}\n' >"$work/k8s/cm.yaml"
git -C "$work" add -A && git -C "$work" commit -q -m one
git -C "$work" tag -s -m "release 1" stable >/dev/null 2>&1
git -C "$work" push -q origin HEAD:refs/heads/main refs/tags/stable 2>/dev/null

sync_with() { fk_sync_with tls "$1"; } # KUBECONFIG: LAST, RC, APPLIED
applies() { # name [kubeconfig options]
	local name=$1
	shift
	curl -sS -X POST "http://127.0.0.1:$CTL_PORT/fakekube/reset" >/dev/null
	kubeconfig "$T/kc-$N.yaml" "$@"
	sync_with "$T/kc-$N.yaml"
	if [ "$RC" = 0 ] && [ "$APPLIED" = "synced 1" ]; then ok "$name"; else bad "$name (exit $RC, $APPLIED)"; fi
}
refused() { # name message [kubeconfig options]
	local name=$1 msg=$2
	shift 2
	kubeconfig "$T/kc-$N.yaml" "$@"
	sync_with "$T/kc-$N.yaml"
	# exit 1 (apply failed) or 3 (cluster unreachable: retried, not marked bad), never 0
	if { [ "$RC" = 1 ] || [ "$RC" = 3 ]; } && grep -qF -- "$msg" <<<"$LAST" && [ "$(patches)" = 0 ]; then ok "$name"; else bad "$name (exit $RC, wanted 1 or 3 and \"$msg\")"; fi
}

fk_up "$P/rsa-chain.pem" "$P/rsa.key" --require-client-cert
applies "server chain with an intermediate, root CA as certificate-authority-data"
cp "$P/root.pem" "$T/root.crt"
applies "root CA as certificate-authority (a file)" ca_data= ca="$T/root.crt"
applies "mTLS: EC client key, SEC1" client=ec
applies "mTLS: EC client key, PKCS#8" client=ec-pkcs8
applies "mTLS: RSA client key, PKCS#1" client=rsa

fk_up "$P/rsa.pem" "$P/rsa.key"
refused "a server that omits its intermediate: verification fails" "TLS verification failed"
fk_up "$P/wrong-chain.pem" "$P/rsa.key"
refused "wrong host name: verification fails" "TLS verification failed"
fk_up "$P/expired-chain.pem" "$P/rsa.key"
refused "expired certificate: verification fails" "TLS verification failed"
fk_up "$P/rsa-chain.pem" "$P/rsa.key" --require-client-cert
refused "the wrong CA: verification fails" "TLS verification failed" ca_data="$P/client-ca.pem"

fk_up "$P/rsa-chain.pem" "$P/rsa.key" --tls-min 1.3 --require-client-cert
applies "TLS 1.3-only server (RSA), mTLS"
fk_up "$P/ec-chain.pem" "$P/ec.key" --tls-min 1.3 --require-client-cert
applies "TLS 1.3-only server (EC), mTLS"
fk_up "$P/rsa-chain.pem" "$P/rsa.key" --tls-max 1.2 --require-client-cert
applies "TLS 1.2-only server (RSA, signs with rsa_pss_rsae), mTLS with an EC key"
applies "TLS 1.2-only server (RSA), mTLS with an RSA key" client=rsa
fk_up "$P/ec-chain.pem" "$P/ec.key" --tls-max 1.2 --require-client-cert
applies "TLS 1.2-only server (EC), mTLS"

# Only suites the client lacks: Camellia (not in the static build's mbedTLS; OpenSSL has it) and
# a NULL cipher (no client offers one).
fk_up "$P/rsa-chain.pem" "$P/rsa.key" --tls-max 1.2 --ciphers 'CAMELLIA256-SHA:@SECLEVEL=0'
kubeconfig "$T/kc-camellia.yaml"
sync_with "$T/kc-camellia.yaml"
if [ "$RC" = 0 ] || grep -qF "TLS handshake failed" <<<"$LAST"; then
	ok "a server offering only Camellia: applies or a TLS error ($(grep -q 'TLS handshake' <<<"$LAST" && echo refused || echo applied))"
else
	bad "a server offering only Camellia (exit $RC)"
fi
fk_up "$P/rsa-chain.pem" "$P/rsa.key" --tls-max 1.2 --ciphers 'NULL-SHA256:@SECLEVEL=0'
refused "a server offering only a cipher the client lacks: an error naming TLS" "TLS handshake failed"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
