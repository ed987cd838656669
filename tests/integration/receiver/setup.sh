# tests/integration/receiver/setup.sh — shared by the reporting tests
# (test_report*.sh): the HTTPS git server of lib.sh, a signed repository of
# systemd units applied with --root, and the scripted report receiver
# (receiver.py) with client-certificate checking against the test CA.
#
#   rcv_start               start the receiver: RCV_URL, RCV_DIR (requests.jsonl, script)
#   rcv_script LINE...      what the next requests are answered with
#   rcv_count [PATH]        requests received (on PATH, default /v1/status)
#   rcv_docs                the status documents received with a 2xx, one JSON per line
#   release MSG             a new signed release (unit content changes), tag moved
#   stranger MSG            the tag moved to a commit signed by an unknown key
#   write_ini FILE [LINES]  the INI ([report] lines appended)
#   TMR ARGS                tagmoor --root $ROOT with $INI; $OUT and $RC set
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap python3 openssl systemctl
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
FAILS=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
TM() { OUT=$("$TAGMOOR" -c "$INI" "$@" 2>&1); RC=$?; echo "$OUT" | sed 's/^/#   /'; }
TMR() { TM --root "$ROOT" "$@"; }
has() { grep -qE -- "$1" <<<"$OUT"; }
rc_is() { if [ "$RC" = "$1" ]; then ok "$2 (exit $RC)"; else bad "$2: exit $RC, want $1"; fi; }

ssh-keygen -q -t ed25519 -N '' -C release -f "$T/release"
ssh-keygen -q -t ed25519 -N '' -C stranger -f "$T/stranger"
echo "release@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$T/release.pub")" >"$T/allowed_signers"
work=$(tm_repo_new fleet)
git -C "$work" config gpg.format ssh
git -C "$work" config user.signingkey "$T/release"
TAGTIME=$(($(date +%s) - 36000))
N_REL=0
push() { git -C "$work" push -q -f origin "$@" 2>/dev/null; }
release() { # msg: a new unit content, signed tag
	N_REL=$((N_REL + 1))
	mkdir -p "$work/units"
	printf '[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n' \
		"$1 $N_REL" >"$work/units/web.service"
	git -C "$work" add -A
	TAGTIME=$((TAGTIME + 60))
	GIT_COMMITTER_DATE="$TAGTIME +0000" GIT_AUTHOR_DATE="$TAGTIME +0000" git -C "$work" commit -q -m "$1"
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" tag -s -f -m "$1" stable >/dev/null
	push HEAD:refs/heads/main refs/tags/stable
}
stranger() { # msg: signed by a key the device does not trust
	TAGTIME=$((TAGTIME + 60))
	GIT_COMMITTER_DATE="$TAGTIME +0000" git -C "$work" -c user.signingkey="$T/stranger" \
		tag -s -f -m "$1" stable >/dev/null
	push refs/tags/stable
}

ROOT=$T/root
STATE=$ROOT/var/lib/tagmoor
UD=$ROOT/etc/systemd/system
mkdir -p "$UD"
write_ini() { # file [report lines...]
	local f=$1
	shift
	cat >"$f" <<INI
[agent]
device_id = edge-0042
state_dir = /var/lib/tagmoor
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = ${SRC_TIMEOUT:-4s}
[verify]
mode = tag
allowed_signers = $T/allowed_signers
${VERIFY_EXTRA:-}
[systemd]
enabled = yes
paths = units
wait = 0
[report]
$(printf '%s\n' "$@")
INI
}

RCV_DIR=$T/receiver
rcv_start() {
	RCV_PORT=$(tm_free_port)
	RCV_URL="https://localhost:$RCV_PORT"
	mkdir -p "$RCV_DIR"
	: >"$RCV_DIR/requests.jsonl"
	tm_bg python3 "$TM_SOURCE_DIR/tests/integration/receiver/receiver.py" --port "$RCV_PORT" \
		--cert "$T/pki/server.pem" --key "$T/pki/server.key" --ca "$T/pki/ca.pem" --dir "$RCV_DIR" \
		${RCV_BEARER:+--bearer "$RCV_BEARER"}
	tm_wait_port "$RCV_PORT"
}
rcv_script() { printf '%s\n' "$@" >>"$RCV_DIR/script"; }
rcv_count() { # [path]
	python3 - "$RCV_DIR/requests.jsonl" "${1:-/v1/status}" <<'PY'
import json, sys
print(sum(1 for l in open(sys.argv[1]) if l.strip() and json.loads(l)["path"] == sys.argv[2]))
PY
}
# the status documents of 2xx answers on /v1/status (tagmoor format), in arrival order
rcv_docs() {
	python3 - "$RCV_DIR/requests.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    if not l.strip(): continue
    r = json.loads(l)
    if r["path"] == "/v1/status" and r.get("status") and 200 <= r["status"] < 300:
        print(json.dumps(json.loads(r["body"])))
PY
}
# jq-less field access on the last received 2xx document: py EXPR (d = the doc)
last_doc() { rcv_docs | tail -n 1 | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }
