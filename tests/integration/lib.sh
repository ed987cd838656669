# tests/integration/lib.sh — shared helpers for tagmoor's integration tests.
#
# Source it from a test script (bash):   . "$TM_SOURCE_DIR/tests/integration/lib.sh"
#
# What it gives you (all functions are prefixed tm_):
#   tm_tmpdir                      -> $TM_TMP: a unique work dir under ${TMPDIR:-/tmp},
#                                     removed on EXIT with every process started here.
#   tm_need CMD...                 exit 77 (skipped) when a command is missing.
#   tm_free_port                   print a free loopback TCP port.
#   tm_make_ca DIR                 test CA + server certificate for DNS:localhost in DIR:
#                                  DIR/ca.pem DIR/ca.key DIR/server.pem DIR/server.key, and a
#                                  client certificate for mTLS: DIR/client.pem DIR/client.key.
#                                  (mbedTLS 2.28 ignores IP SANs: always use https://localhost:PORT.)
#   tm_git_server_start            nginx + fcgiwrap + git http-backend over TLS. Sets
#                                    TM_GIT_ROOT   directory of served repositories (NAME.git)
#                                    TM_GIT_PORT   the port; TM_GIT_URL=https://localhost:PORT
#                                    TM_GIT_CA     CA file that verifies the server
#                                    TM_GIT_LOG    access log: "METHOD URI?ARGS STATUS BYTES_SENT REQUEST_LENGTH"
#                                    TM_GIT_USER TM_GIT_PASS   basic auth of /auth/
#                                    TM_GIT_BEARER             the bearer token /bearer/ wants
#                                    TM_GIT_MTLS_PORT TM_GIT_MTLS_URL   a second server that requires
#                                                  a client certificate (TM_GIT_CLIENT_CERT/_KEY); /git/ only
#                                  Locations: /git/NAME.git         anonymous
#                                             /auth/NAME.git        basic auth $TM_GIT_USER:$TM_GIT_PASS
#                                             /bearer/NAME.git      "Authorization: Bearer $TM_GIT_BEARER"
#                                             /redirect/NAME.git    301 to /git/NAME.git
#                                             /endless/ANY.git      a never-ending (MiB-long) ref
#                                                                   advertisement, see tm_endless_make
#   tm_endless_make MIB            write the /endless/ advertisement: MIB MiB of valid ref lines
#                                  (for the max_fetch / advertisement-cap tests).
#   tm_git_log_count METHOD REGEX  count access-log lines with that method whose URI matches REGEX.
#   tm_git_log_reset               truncate the access log (nginx keeps appending to it).
#   tm_silent_start tcp|tls        a server that accepts and then never answers (tls: completes the
#                                  handshake with the test certificate first). Sets TM_SILENT_PORT.
#   tm_repo_new NAME               create a bare served repository $TM_GIT_ROOT/NAME.git and a
#                                  work clone $TM_TMP/work/NAME (printed); commits go through
#                                  tm_repo_commit and are pushed with tm_repo_push.
#   tm_repo_commit NAME MSG [FILE CONTENT]...   write files and commit in the work clone.
#   tm_repo_files NAME COUNT [SIZE]             add COUNT generated files (SIZE bytes each).
#   tm_repo_push NAME [--force] [REFSPEC...]    push to the served repository (default: all).
#   tm_repo_tag NAME TAG [--force]              annotated tag (unsigned) at HEAD.
#   ok DESC / bad DESC / check DESC CMD...   one line per check ("ok   - …" / "FAIL - …"); bad
#                                  and a failing check count in $FAILS (0 when lib.sh is sourced).
#   tm_signed_repo NAME            a release key ($TM_TMP/release, ed25519), its allowed_signers line
#                                  ($TM_TMP/allowed_signers, principal release@example.com) and the
#                                  repository NAME (tm_repo_new) set up to sign with it; sets $work
#                                  and TAGTIME (an hour ago).
#   tm_release MSG                 commit everything in $work, sign tag `stable` at TAGTIME + 60 s,
#                                  push main and the tag (a moved, signed release).
#   tm_cleanup                     what the EXIT trap runs: stops all started processes
#                                  (by pid) and removes $TM_TMP.
# Everything runs on 127.0.0.1; nothing is installed or changed outside $TM_TMP.
# The environment's GIT_SSL_CAINFO / CURL_CA_BUNDLE / SSL_CERT_FILE / SSL_CERT_DIR are unset so
# nothing depends on them. Works as root (nginx runs single-process, in the foreground).

unset GIT_SSL_CAINFO CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE
export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=tagmoor-test GIT_AUTHOR_EMAIL=test@example.invalid
export GIT_COMMITTER_NAME=tagmoor-test GIT_COMMITTER_EMAIL=test@example.invalid

TM_PIDS=()
TM_TMP=""
TM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

tm_cleanup() {
	local pid i
	for ((i = ${#TM_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${TM_PIDS[i]}
		kill "$pid" 2>/dev/null
	done
	for pid in "${TM_PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	TM_PIDS=()
	if [ -n "$TM_TMP" ] && [ -d "$TM_TMP" ]; then
		rm -rf "$TM_TMP"
	fi
}

tm_tmpdir() {
	if [ -z "$TM_TMP" ]; then
		TM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tagmoor-test.XXXXXX") || exit 1
		trap tm_cleanup EXIT
		trap 'exit 130' INT TERM
		export HOME="$TM_TMP/home"
		mkdir -p "$HOME"
	fi
}

tm_need() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1 && ! [ -x "$c" ]; then
			echo "SKIP: $c not available" >&2
			exit 77
		fi
	done
}

tm_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# tm_wait_port PORT: wait until something listens on 127.0.0.1:PORT (5 s).
tm_wait_port() {
	local i
	for i in $(seq 1 100); do
		if python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2); s.close()' "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "server on port $1 did not start" >&2
	return 1
}

tm_make_ca() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tagmoor test CA $RANDOM" \
		-keyout "$d/ca.key" -out "$d/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		>/dev/null 2>&1 || { echo "openssl: CA failed" >&2; return 1; }
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" >/dev/null 2>&1 \
		|| { echo "openssl: server certificate failed" >&2; return 1; }
	openssl req -newkey rsa:2048 -nodes -subj "/CN=tagmoor-device" \
		-keyout "$d/client.key" -out "$d/client.csr" >/dev/null 2>&1 || return 1
	printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$d/client-ext.cnf"
	openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/client-ext.cnf" -out "$d/client.pem" >/dev/null 2>&1 \
		|| { echo "openssl: client certificate failed" >&2; return 1; }
}

# Starts a background process, remembers its pid for cleanup.
tm_bg() {
	"$@" </dev/null >>"$TM_TMP/background.log" 2>&1 &
	TM_PIDS+=($!)
}

tm_git_server_start() {
	tm_need nginx fcgiwrap git openssl python3 /usr/lib/git-core/git-http-backend
	tm_tmpdir
	local d="$TM_TMP/nginx"
	mkdir -p "$d/tmp" "$d/logs" "$TM_TMP/srv"
	TM_GIT_ROOT="$TM_TMP/srv"
	tm_make_ca "$TM_TMP/pki" || return 1
	TM_GIT_CA="$TM_TMP/pki/ca.pem"
	TM_GIT_USER=fleet
	TM_GIT_PASS="s3cret-$RANDOM"
	printf '%s:%s\n' "$TM_GIT_USER" "$(openssl passwd -apr1 "$TM_GIT_PASS")" >"$d/htpasswd"
	TM_GIT_BEARER="tm-bearer-$RANDOM$RANDOM"
	TM_GIT_PORT=$(tm_free_port)
	TM_GIT_URL="https://localhost:$TM_GIT_PORT"
	TM_GIT_MTLS_PORT=$(tm_free_port)
	TM_GIT_MTLS_URL="https://localhost:$TM_GIT_MTLS_PORT"
	TM_GIT_CLIENT_CERT="$TM_TMP/pki/client.pem"
	TM_GIT_CLIENT_KEY="$TM_TMP/pki/client.key"
	TM_GIT_LOG="$d/logs/access.log"
	local f
	for f in nginx.conf fastcgi-git.conf; do
		sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$TM_GIT_PORT|g" -e "s|@PKI@|$TM_TMP/pki|g" \
			-e "s|@ROOT@|$TM_GIT_ROOT|g" -e "s|@BEARER@|$TM_GIT_BEARER|g" \
			-e "s|@MTLS_PORT@|$TM_GIT_MTLS_PORT|g" "$TM_LIB_DIR/gitserver/$f.in" >"$d/$f" || return 1
	done
	tm_bg fcgiwrap -s "unix:$d/fcgi.sock"
	for _ in $(seq 1 100); do [ -S "$d/fcgi.sock" ] && break; sleep 0.05; done
	tm_bg nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
	tm_wait_port "$TM_GIT_PORT" || { cat "$d/logs/error.log" >&2; return 1; }
	tm_wait_port "$TM_GIT_MTLS_PORT" || { cat "$d/logs/error.log" >&2; return 1; }
	export TM_GIT_ROOT TM_GIT_PORT TM_GIT_URL TM_GIT_CA TM_GIT_LOG TM_GIT_USER TM_GIT_PASS \
		TM_GIT_BEARER TM_GIT_MTLS_PORT TM_GIT_MTLS_URL TM_GIT_CLIENT_CERT TM_GIT_CLIENT_KEY
}

tm_endless_make() {
	local mib=${1:-8}
	mkdir -p "$TM_TMP/nginx/static"
	python3 - "$TM_TMP/nginx/static/endless-adv.bin" "$mib" <<'PY'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
oid = "1" * 40
with open(path, "w") as f:
    f.write("001e# service=git-upload-pack\n0000")
    first = "%s HEAD\0multi_ack side-band-64k ofs-delta\n" % oid
    f.write("%04x%s" % (len(first) + 4, first))
    n, size = 0, 0
    while size < mib << 20:
        line = "%s refs/heads/b%09d\n" % (oid, n)
        pkt = "%04x%s" % (len(line) + 4, line)
        f.write(pkt)
        size += len(pkt)
        n += 1
    f.write("0000")
PY
}

tm_git_log_count() {
	local method=$1 re=$2
	[ -f "$TM_GIT_LOG" ] || { echo 0; return; }
	awk -v m="$method" -v re="$re" '$1 == m && $2 ~ re { n++ } END { print n + 0 }' "$TM_GIT_LOG"
}

tm_git_log_reset() {
	: >"$TM_GIT_LOG"
}

tm_silent_start() {
	tm_tmpdir
	local mode=${1:-tcp}
	if [ "$mode" = tls ] && ! [ -f "$TM_TMP/pki/ca.pem" ]; then
		tm_make_ca "$TM_TMP/pki" || return 1
	fi
	TM_SILENT_PORT=$(tm_free_port)
	# Accepts (and for tls completes the handshake with the test certificate),
	# reads whatever the client sends and never answers; holds every connection.
	tm_bg python3 -c '
import socket, ssl, sys, threading
port, mode, pki = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
ctx = None
if mode == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki + "/server.pem", pki + "/server.key")
held = []
def serve(c):
    try:
        if ctx:
            c = ctx.wrap_socket(c, server_side=True)
        held.append(c)
        while c.recv(4096):
            pass
    except Exception:
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$TM_SILENT_PORT" "$mode" "$TM_TMP/pki"
	tm_wait_port "$TM_SILENT_PORT" || return 1
	export TM_SILENT_PORT
}

tm_repo_new() {
	local name=$1
	tm_tmpdir
	mkdir -p "$TM_TMP/work"
	git init -q --bare -b main "$TM_GIT_ROOT/$name.git"
	git -C "$TM_GIT_ROOT/$name.git" config http.receivepack false
	git init -q -b main "$TM_TMP/work/$name"
	git -C "$TM_TMP/work/$name" remote add origin "$TM_GIT_ROOT/$name.git"
	echo "$TM_TMP/work/$name"
}

tm_repo_commit() {
	local name=$1 msg=$2 w="$TM_TMP/work/$1"
	shift 2
	while [ $# -ge 2 ]; do
		mkdir -p "$(dirname "$w/$1")"
		printf '%s' "$2" >"$w/$1"
		git -C "$w" add -- "$1"
		shift 2
	done
	git -C "$w" commit -q --allow-empty -m "$msg"
}

tm_repo_files() {
	local name=$1 count=$2 size=${3:-200} w="$TM_TMP/work/$1"
	python3 - "$w" "$count" "$size" <<'PY'
import os, sys, random
w, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
for i in range(count):
    d = os.path.join(w, "files", "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "w") as f:
        f.write("".join(rnd.choice("abcdefghij klmnop\n") for _ in range(size)))
PY
	git -C "$w" add -A files
}

tm_repo_push() {
	local name=$1
	shift
	if [ $# -eq 0 ] || { [ $# -eq 1 ] && [ "$1" = --force ]; }; then
		git -C "$TM_TMP/work/$name" push -q "$@" origin --all && \
		git -C "$TM_TMP/work/$name" push -q "$@" origin --tags
	else
		git -C "$TM_TMP/work/$name" push -q origin "$@"
	fi
}

tm_repo_tag() {
	local name=$1 tag=$2 force=${3:-}
	git -C "$TM_TMP/work/$name" tag $force -a -m "release $tag" "$tag"
}

# --- test PKI of any shape (test_tls_*, test_k3s_*) --------------------------------------------
# tm_pki_key FILE TYPE       a private key: ec (SEC1 "EC PRIVATE KEY", P-256, as k3s writes it),
#                            ec-pkcs8, rsa (PKCS#1 "RSA PRIVATE KEY"), rsa-pkcs8 ("PRIVATE KEY"),
#                            ec-encrypted (PKCS#8 "ENCRYPTED PRIVATE KEY"), rsa-encrypted (PKCS#1
#                            with "Proc-Type: 4,ENCRYPTED"); passphrase "secret".
# tm_pki_cert OUT KEY SUBJ ISSUER EXT [START END]
#                            a certificate for KEY with subject SUBJ ("/O=x/CN=y"), signed by
#                            ISSUER (a basename: ISSUER.pem + ISSUER.key, or "-" for self-signed),
#                            extensions EXT (lines of openssl x509v3 config), valid START..END
#                            (YYYYMMDDHHMMSSZ; default: an hour ago .. two days ahead).
# tm_pki_ca BASE SUBJ [ISSUER] [KEYTYPE]   a CA: BASE.key BASE.pem (self-signed without ISSUER).
tm_pki_key() {
	case $2 in
	ec) openssl ecparam -name prime256v1 -genkey -noout -out "$1" ;;
	ec-pkcs8) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
	rsa) openssl genrsa -traditional -out "$1" 2048 ;;
	rsa-pkcs8) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ;;
	ec-encrypted) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc \
		-pass pass:secret -out "$1" ;;
	rsa-encrypted) openssl genrsa -traditional -aes256 -passout pass:secret -out "$1" 2048 ;;
	*) echo "tm_pki_key: unknown type $2" >&2; return 1 ;;
	esac >/dev/null 2>&1 || { echo "openssl: $2 key failed" >&2; return 1; }
}

tm_pki_cert() {
	local out=$1 key=$2 subj=$3 issuer=$4 ext=$5 start=${6:-} end=${7:-} d
	d=$(mktemp -d "${TM_TMP:-/tmp}/pki.XXXXXX")
	[ -n "$start" ] || start=$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)
	[ -n "$end" ] || end=$(date -u -d '+2 days' +%Y%m%d%H%M%SZ)
	printf '%s\n' "$ext" >"$d/ext"
	: >"$d/index.txt"
	printf '%s\n' "$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" >"$d/serial"
	cat >"$d/ca.cnf" <<CNF
[ca]
default_ca = c
[c]
database = $d/index.txt
new_certs_dir = $d
serial = $d/serial
default_md = sha256
policy = p
unique_subject = no
email_in_dn = no
[p]
organizationName = optional
commonName = supplied
CNF
	openssl req -new -key "$key" -subj "$subj" -out "$d/csr" >/dev/null 2>&1 || { rm -rf "$d"; return 1; }
	local sign=(-cert "$issuer.pem" -keyfile "$issuer.key")
	[ "$issuer" = - ] && sign=(-selfsign -keyfile "$key")
	openssl ca -batch -notext -config "$d/ca.cnf" "${sign[@]}" -startdate "$start" -enddate "$end" \
		-extfile "$d/ext" -in "$d/csr" -out "$out" >"$d/log" 2>&1 ||
		{ echo "openssl ca: $subj failed:" >&2; cat "$d/log" >&2; rm -rf "$d"; return 1; }
	rm -rf "$d"
}

tm_pki_ca() {
	local base=$1 subj=$2 issuer=${3:--} type=${4:-ec}
	tm_pki_key "$base.key" "$type" || return 1
	tm_pki_cert "$base.pem" "$base.key" "$subj" "$issuer" \
		"$(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid')"
}

tm_signed_repo() {
	local name=$1
	ssh-keygen -q -t ed25519 -N '' -C release -f "$TM_TMP/release" || return 1
	echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$TM_TMP/release.pub")" \
		>"$TM_TMP/allowed_signers"
	work=$(tm_repo_new "$name") || return 1
	git -C "$work" config gpg.format ssh
	git -C "$work" config user.signingkey "$TM_TMP/release"
	TAGTIME=$(($(date +%s) - 3600))
}

tm_release() {
	git -C "$work" add -A
	git -C "$work" commit -qm "$1" --allow-empty
	TAGTIME=$((TAGTIME + 60))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "$1" stable >/dev/null
	git -C "$work" push -q -f origin HEAD:refs/heads/main refs/tags/stable
}

FAILS=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
