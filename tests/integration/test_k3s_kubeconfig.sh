#!/usr/bin/env bash
# test_k3s_kubeconfig.sh — a k3s node's kubeconfig, as a new user meets it: /etc/rancher/k3s/k3s.yaml
# written the way k3s writes it (server https://127.0.0.1:PORT, the server CA as
# certificate-authority-data, client-certificate-data holding the admin certificate followed by
# the client CA, client-key-data an EC P-256 key in SEC1 PEM, "BEGIN EC PRIVATE KEY"), against
# tests/fakekube over TLS checking client certificates, through `tagmoor sync` of a signed
# repository. The static mbedTLS binaries once failed every request here ("Error parsing private
# key - mbedTLS: (-0x3D00)": mbedTLS parses PEM only from a buffer that ends in its NUL).
#
# Then the variations: PKCS#8 EC, RSA (PKCS#1 and PKCS#8) keys; client-certificate, client-key and
# certificate-authority as file names beside the kubeconfig; a CA bundle of several certificates;
# encrypted keys (data and file) refused with a clear message and nothing sent; a client
# certificate of another CA and a server the CA does not vouch for are refused.
# Runs against $TAGMOOR (the Debian build, the static binary, or an ARM one under qemu-user).
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
bad() { echo "FAIL - $1"; FAIL=$((FAIL + 1)); echo "$LAST" | tail -8 | sed 's/^/     | /'; }

# --- the PKI k3s makes: a server CA, a client CA, EC P-256 keys ---------------------------
P=$T/k3s
mkdir -p "$P"
now=$(date +%s)
tm_pki_ca "$P/server-ca" "/CN=k3s-server-ca@$now" || exit 1
tm_pki_ca "$P/client-ca" "/CN=k3s-client-ca@$now" || exit 1
tm_pki_ca "$P/other-ca" "/CN=k3s-client-ca@$((now - 1000))" || exit 1
tm_pki_key "$P/serving.key" ec || exit 1
tm_pki_cert "$P/serving.pem" "$P/serving.key" "/O=k3s/CN=k3s" "$P/server-ca" "subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:10.43.0.1,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth" || exit 1
CLIENT_EXT="keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
for t in ec ec-pkcs8 rsa rsa-pkcs8 ec-encrypted rsa-encrypted; do
	tm_pki_key "$P/admin-$t.key" "$t" || exit 1
	case $t in *-encrypted) openssl pkey -in "$P/admin-$t.key" -passin pass:secret -out "$P/plain.key" 2>/dev/null ;;
	*) cp "$P/admin-$t.key" "$P/plain.key" ;; esac
	tm_pki_cert "$P/admin-$t.pem" "$P/plain.key" "/O=system:masters/CN=system:admin" "$P/client-ca" "$CLIENT_EXT" || exit 1
done
tm_pki_key "$P/stranger.key" ec && tm_pki_cert "$P/stranger.pem" "$P/stranger.key" \
	"/O=system:masters/CN=system:admin" "$P/other-ca" "$CLIENT_EXT" || exit 1

# --- the fake API server ------------------------------------------------------------------
FK_PID=
fk_up() { # extra fakekube options...
	[ -n "$FK_PID" ] && { kill "$FK_PID" 2>/dev/null; wait "$FK_PID" 2>/dev/null; }
	rm -f "$T/fk.port"
	"$FK_PYTHON" "$TM_SOURCE_DIR/tests/fakekube/fakekube.py" --cert "$P/serving.pem" --key "$P/serving.key" \
		--client-ca "$P/client-ca.pem" --port-file "$T/fk.port" --delay 0.1 \
		--fixtures "${TM_SHARED_DIR:-$TM_SOURCE_DIR/../shared}/fixtures/kubernetes/discovery" "$@" \
		</dev/null >>"$T/fakekube.log" 2>&1 &
	FK_PID=$!
	TM_PIDS+=("$FK_PID")
	for _ in $(seq 1 200); do [ -s "$T/fk.port" ] && break; sleep 0.05; done
	[ -s "$T/fk.port" ] || { echo "fakekube did not start"; tail "$T/fakekube.log"; exit 1; }
	FK_PORT=$(head -1 "$T/fk.port") FK_URL=https://localhost:$(head -1 "$T/fk.port") FK_CA=$P/server-ca.pem
}
patches() { fk_ctl GET /fakekube/requests | fk_py -c 'import json,sys; print(json.load(sys.stdin)["by_verb"].get("patch",0))'; }

# k3s_yaml FILE [key=value...]: the kubeconfig as k3s writes it; keys override its fields:
#   server= ca_data= cert_data= key_data= (base64 done here from files) ca= cert= key= (file names)
k3s_yaml() {
	local f=$1 server="https://127.0.0.1:$FK_PORT" ca_data=$P/server-ca.pem cert_data= key_data= ca= cert= key= kv
	shift
	for kv in "$@"; do local "${kv%%=*}=${kv#*=}"; done
	{
		echo "apiVersion: v1"
		echo "clusters:"
		echo "- cluster:"
		[ -n "$ca_data" ] && echo "    certificate-authority-data: $(base64 -w0 <"$ca_data")"
		[ -n "$ca" ] && echo "    certificate-authority: $ca"
		echo "    server: $server"
		echo "  name: default"
		printf 'contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\n'
		printf 'current-context: default\nkind: Config\npreferences: {}\nusers:\n- name: default\n  user:\n'
		[ -n "$cert_data" ] && echo "    client-certificate-data: $(cat $cert_data | base64 -w0)"
		[ -n "$key_data" ] && echo "    client-key-data: $(base64 -w0 <"$key_data")"
		[ -n "$cert" ] && echo "    client-certificate: $cert"
		[ -n "$key" ] && echo "    client-key: $key"
	} >"$f"
	chmod 600 "$f"
}

# --- a signed repository with one ConfigMap -------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C release@example.com -f "$T/sign"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/sign.pub")" >"$T/allowed_signers"
work=$(tm_repo_new fleet)
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/sign"
mkdir -p "$work/k8s"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: edge, namespace: default}\ndata: {site: k3s}\n' >"$work/k8s/cm.yaml"
git -C "$work" add -A && git -C "$work" commit -q -m one
git -C "$work" tag -s -m "release 1" stable >/dev/null 2>&1
git -C "$work" push -q origin HEAD:refs/heads/main refs/tags/stable 2>/dev/null

sync_with() { fk_sync_with k3s-node "$1"; } # KUBECONFIG: LAST, RC, APPLIED
applies() { # name kubeconfig
	fk_ctl POST /fakekube/reset >/dev/null
	sync_with "$2"
	if [ "$RC" = 0 ] && [ "$APPLIED" = "synced 1" ] && [ "$(patches)" -ge 1 ]; then ok "$1"; else bad "$1 (exit $RC, $APPLIED)"; fi
}
refused() { # name kubeconfig "exits" message
	fk_ctl POST /fakekube/reset >/dev/null
	sync_with "$2"
	# $3: the exits that fit (1 apply failed, 2 configuration, 3 cluster unreachable), never 0
	if [[ " $3 " == *" $RC "* ]] && grep -qF -- "$4" <<<"$LAST" && [ "$(patches)" = 0 ]; then ok "$1"; else bad "$1 (exit $RC, wanted $3 and \"$4\")"; fi
}

fk_up
mkdir -p "$T/etc/rancher/k3s"
K=$T/etc/rancher/k3s/k3s.yaml
cat "$P/admin-ec.pem" "$P/client-ca.pem" >"$P/admin-ec-chain.pem"
k3s_yaml "$K" cert_data="$P/admin-ec-chain.pem" key_data="$P/admin-ec.key"
grep -q "client-key-data: $(base64 -w0 <<<'-----BEGIN EC PRIVATE KEY-----' | cut -c1-20)" "$K" ||
	{ LAST=$(cat "$K"); bad "the k3s.yaml carries a SEC1 EC key"; }
applies "k3s.yaml as k3s writes it (SEC1 EC key, certificate + client CA, https://127.0.0.1)" "$K"
k3s_yaml "$T/localhost.yaml" server="https://localhost:$FK_PORT" cert_data="$P/admin-ec-chain.pem" key_data="$P/admin-ec.key"
applies "the same with server https://localhost" "$T/localhost.yaml"
for t in ec-pkcs8 rsa rsa-pkcs8; do
	k3s_yaml "$T/$t.yaml" cert_data="$P/admin-$t.pem" key_data="$P/admin-$t.key"
	applies "client-key-data: $(sed -n 1p "$P/admin-$t.key" | tr -d -) ($t)" "$T/$t.yaml"
done

# file names, relative to the kubeconfig's directory, as a hand-written kubeconfig has them
mkdir -p "$T/files"
cp "$P/admin-ec-chain.pem" "$T/files/client.crt"
cp "$P/admin-ec.key" "$T/files/client.key"
cp "$P/server-ca.pem" "$T/files/server-ca.crt"
k3s_yaml "$T/files/kubeconfig" ca_data= ca=server-ca.crt cert=client.crt key=client.key
applies "client-certificate, client-key, certificate-authority as relative file names" "$T/files/kubeconfig"
k3s_yaml "$T/files/abs.yaml" ca_data= ca="$T/files/server-ca.crt" cert="$T/files/client.crt" key="$T/files/client.key"
applies "the same as absolute file names" "$T/files/abs.yaml"

# a CA bundle of several certificates, the one that matters in the middle
cat "$P/other-ca.pem" "$P/client-ca.pem" "$P/server-ca.pem" "$T/pki/ca.pem" >"$P/bundle.pem"
k3s_yaml "$T/bundle.yaml" ca_data="$P/bundle.pem" cert_data="$P/admin-ec-chain.pem" key_data="$P/admin-ec.key"
applies "certificate-authority-data: a bundle of four CA certificates" "$T/bundle.yaml"
cp "$P/bundle.pem" "$T/files/bundle.crt"
k3s_yaml "$T/files/bundle-file.yaml" ca_data= ca=bundle.crt cert_data="$P/admin-ec-chain.pem" key_data="$P/admin-ec.key"
applies "certificate-authority: a bundle file" "$T/files/bundle-file.yaml"

# encrypted keys: refused by name before any request
k3s_yaml "$T/enc.yaml" cert_data="$P/admin-ec-encrypted.pem" key_data="$P/admin-ec-encrypted.key"
refused "client-key-data with an encrypted PKCS#8 key: refused, clearly" "$T/enc.yaml" "1 2 3" \
	"client-key-data is an encrypted private key"
cp "$P/admin-rsa-encrypted.key" "$T/files/enc.key"
cp "$P/admin-rsa-encrypted.pem" "$T/files/enc.crt"
k3s_yaml "$T/files/enc-file.yaml" cert=enc.crt key=enc.key
refused "client-key file with an encrypted PKCS#1 key: refused, naming the file" "$T/files/enc-file.yaml" "1 2 3" \
	"client key $T/files/enc.key is an encrypted private key"

# what must not work
k3s_yaml "$T/stranger.yaml" cert_data="$P/stranger.pem" key_data="$P/stranger.key"
refused "a client certificate of another CA: nothing applied" "$T/stranger.yaml" "1 3" "127.0.0.1:$FK_PORT/api"
k3s_yaml "$T/wrong-ca.yaml" ca_data="$P/client-ca.pem" cert_data="$P/admin-ec-chain.pem" key_data="$P/admin-ec.key"
refused "a CA that does not vouch for the server: TLS verification fails" "$T/wrong-ca.yaml" "1 3" "TLS verification failed"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
