# tests/fakekube/lib.sh — start the fake Kubernetes API server from an integration test (bash).
#
#   . "$TM_SOURCE_DIR/tests/integration/lib.sh"     # tm_tmpdir, tm_bg, tm_cleanup
#   . "$TM_SOURCE_DIR/tests/fakekube/lib.sh"
#   fk_start [fakekube.py options...]               # e.g. fk_start --delay 0.5
#
# fk_start makes a test PKI with openssl in $TM_TMP/fakekube (CA, server certificate for
# DNS:localhost, a client certificate CN=tagmoor-test O=system:masters), starts the fake on a free
# loopback port with a bearer token as well, waits until it is ready and sets:
#   FK_PORT FK_URL (https://localhost:PORT)   FK_CA FK_CLIENT_CERT FK_CLIENT_KEY FK_TOKEN
#   FK_KUBECONFIG        kubeconfig with the client certificate and CA embedded as data
#   FK_KUBECONFIG_TOKEN  kubeconfig with the bearer token instead
#   FK_PYTHON            the python3 that runs it (one that has PyYAML: Debian's python3-yaml)
# fk_ctl METHOD PATH [JSON]   call the control interface (/fakekube/...), print the JSON answer.
# fk_py [args]                run $FK_PYTHON.
# kapi METHOD PATH [BODY [CONTENT-TYPE]]   a request as another client (curl, test client cert)
# field PATH PYEXPR           evaluate PYEXPR on the object at PATH (o = the object, None if absent)
# reqs PYEXPR / reset_reqs    the fake's request log (r = the list) / empty it
# fk_write_ini FILE DEVICE STATE KUBECONFIG PATHS WAIT [EXTRA]
#                             the INI of a device syncing tag `stable` of $TM_GIT_URL/git/fleet.git,
#                             signed for $T/allowed_signers, applying PATHS with [kubernetes] wait
#                             WAIT; EXTRA: more [kubernetes] lines
# fk_sync_with DEVICE KUBECONFIG   a fresh device DEVICE-N (N counts up) syncs through KUBECONFIG:
#                             LAST = its output, RC = its exit status, APPLIED = "STATE APPLIED"
#                             from its status document
# The process is stopped by tm_cleanup (its pid is in TM_PIDS).

FK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fk_pick_python() {
	local p
	for p in ${FK_PYTHON:-} /usr/bin/python3 python3; do
		if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then
			FK_PYTHON=$(command -v "$p")
			export FK_PYTHON
			return 0
		fi
	done
	echo "fakekube: no python3 with PyYAML (Debian package python3-yaml)" >&2
	return 1
}

fk_py() { "$FK_PYTHON" "$@"; }

fk_make_pki() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=fakekube test CA $RANDOM" \
		-keyout "$d/ca.key" -out "$d/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		>/dev/null 2>&1 || { echo "openssl: CA failed" >&2; return 1; }
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/server.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/server.cnf" -out "$d/server.pem" >/dev/null 2>&1 ||
		{ echo "openssl: server certificate failed" >&2; return 1; }
	openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=tagmoor-test" \
		-keyout "$d/client.key" -out "$d/client.csr" >/dev/null 2>&1 || return 1
	printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$d/client.cnf"
	openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/client.cnf" -out "$d/client.pem" >/dev/null 2>&1 ||
		{ echo "openssl: client certificate failed" >&2; return 1; }
}

# fk_kubeconfig FILE [token]: write a kubeconfig for the running fake.
fk_kubeconfig() {
	local f=$1 mode=${2:-cert} b64ca user
	b64ca=$(base64 -w0 <"$FK_CA")
	if [ "$mode" = token ]; then
		user="    token: $FK_TOKEN"
	else
		user="    client-certificate-data: $(base64 -w0 <"$FK_CLIENT_CERT")
    client-key-data: $(base64 -w0 <"$FK_CLIENT_KEY")"
	fi
	cat >"$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fakekube
  cluster:
    server: $FK_URL
    certificate-authority-data: $b64ca
users:
- name: fakekube
  user:
$user
contexts:
- name: fakekube
  context:
    cluster: fakekube
    user: fakekube
    namespace: default
current-context: fakekube
EOF
}

fk_start() {
	tm_tmpdir
	fk_pick_python || return 1
	local d="$TM_TMP/fakekube"
	fk_make_pki "$d/pki" || return 1
	FK_CA="$d/pki/ca.pem" FK_CLIENT_CERT="$d/pki/client.pem" FK_CLIENT_KEY="$d/pki/client.key"
	FK_TOKEN="fk-token-$RANDOM$RANDOM"
	rm -f "$d/port"
	tm_bg "$FK_PYTHON" "$FK_DIR/fakekube.py" --cert "$d/pki/server.pem" --key "$d/pki/server.key" \
		--client-ca "$FK_CA" --token "$FK_TOKEN=tagmoor-token" --port-file "$d/port" \
		--fixtures "${TM_SHARED_DIR:-$FK_DIR/../../../shared}/fixtures/kubernetes/discovery" "$@"
	local i
	for i in $(seq 1 200); do
		[ -s "$d/port" ] && break
		sleep 0.05
	done
	[ -s "$d/port" ] || { echo "fakekube did not start:" >&2; tail -20 "$TM_TMP/background.log" >&2; return 1; }
	FK_PORT=$(head -1 "$d/port")
	FK_URL="https://localhost:$FK_PORT"
	export FK_PORT FK_URL FK_CA FK_CLIENT_CERT FK_CLIENT_KEY FK_TOKEN
	FK_KUBECONFIG="$d/kubeconfig" FK_KUBECONFIG_TOKEN="$d/kubeconfig-token"
	fk_kubeconfig "$FK_KUBECONFIG" cert
	fk_kubeconfig "$FK_KUBECONFIG_TOKEN" token
	export FK_KUBECONFIG FK_KUBECONFIG_TOKEN
}

# fk_ctl METHOD PATH [JSON]
fk_ctl() {
	"$FK_PYTHON" - "$FK_URL" "$FK_CA" "$@" <<'PY'
import json, ssl, sys, urllib.request
url, ca, method, path = sys.argv[1:5]
data = sys.argv[5].encode() if len(sys.argv) > 5 else None
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(url + path, data=data, method=method,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    sys.stdout.write(e.read().decode())
    sys.exit(1)
PY
}

kapi() {
	curl -sS -X "$1" --cacert "$FK_CA" --cert "$FK_CLIENT_CERT" --key "$FK_CLIENT_KEY" \
		-H "Content-Type: ${4:-application/merge-patch+json}" ${3:+--data-binary "$3"} "$FK_URL$2"
}
field() {
	kapi GET "$1" | fk_py -c 'import json,sys
try: o=json.load(sys.stdin)
except Exception: o=None
if o and o.get("kind")=="Status": o=None
print(eval(sys.argv[1]))' "$2"
}
reqs() { fk_ctl GET /fakekube/requests | fk_py -c "import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
reset_reqs() { fk_ctl POST /fakekube/requests/reset >/dev/null; }

fk_write_ini() {
	cat >"$1" <<INI
[agent]
device_id = $2
state_dir = $3
log_level = info
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 60s
[verify]
mode = tag
allowed_signers = $T/allowed_signers
[kubernetes]
enabled = yes
kubeconfig = $4
paths = $5
wait = $6
${7:-}
INI
}

N=0
fk_sync_with() {
	N=$((N + 1))
	fk_write_ini "$T/$N.ini" "$1-$N" "$T/state-$N" "$2" k8s 20s
	LAST=$("$TAGMOOR" -c "$T/$N.ini" sync 2>&1)
	RC=$?
	APPLIED=$("$TAGMOOR" -c "$T/$N.ini" status --json 2>/dev/null |
		fk_py -c 'import json,sys; s=json.load(sys.stdin); print(s["state"], (s.get("kubernetes") or {}).get("applied"))' 2>/dev/null)
}
