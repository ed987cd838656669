#!/usr/bin/env bash
# test_report_cloudevents.sh — issue 12: [report] format = cloudevents
# (structured mode) and cloudevents-binary (ce-* headers), each report parsed
# by the official CloudEvents SDK for JavaScript (npm "cloudevents",
# HTTP.toEvent) and validated (event.validate()), not by our own parser.
# The SDK is installed from the npm registry into a cache dir at test time;
# when that fails the test is skipped (exit 77), never passed.
. "$TM_SOURCE_DIR/tests/integration/receiver/setup.sh"
tm_need node npm
CE_CACHE=${TM_NPM_CACHE:-${TMPDIR:-/tmp}/tagmoor-npm-cloudevents}
# a cache left broken by an interrupted install is installed afresh
node -e 'require(process.argv[1])' "$CE_CACHE/node_modules/cloudevents" 2>/dev/null || rm -rf "$CE_CACHE"
if [ ! -f "$CE_CACHE/node_modules/cloudevents/package.json" ]; then
	mkdir -p "$CE_CACHE"
	if ! npm install --silent --no-audit --no-fund --prefix "$CE_CACHE" cloudevents >"$T/npm.log" 2>&1; then
		sed 's/^/#   /' "$T/npm.log" | tail -n 20
		echo "SKIP - npm install cloudevents failed"
		exit 77
	fi
fi
node -e 'require(process.argv[1])' "$CE_CACHE/node_modules/cloudevents" 2>/dev/null ||
	{ echo "SKIP - the cloudevents package does not load"; exit 77; }
echo "# cloudevents $(node -p 'require(process.argv[1]).version' "$CE_CACHE/node_modules/cloudevents/package.json")"
rcv_start || exit 1
ce() { node "$TM_SOURCE_DIR/tests/integration/receiver/ce_check.js" "$CE_CACHE/node_modules" "$RCV_DIR/requests.jsonl"; }
field() { # n key: from the SDK's view of request n
	ce | python3 -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e["n"] == int(sys.argv[1]): print(e.get(sys.argv[2]))' "$1" "$2"
}

n=0
for fmt in cloudevents cloudevents-binary; do
	echo "# format = $fmt"
	INI=$T/$fmt.ini
	write_ini "$INI" "url = $RCV_URL/v1/status" "ca_file = $T/pki/ca.pem" \
		"client_cert = $T/pki/client.pem" "client_key = $T/pki/client.key" "format = $fmt"
	release "release"
	TMR sync
	rc_is 0 "$fmt: synced"
	stranger "evil"
	TMR sync
	rc_is 4 "$fmt: refused"
	want=structured
	[ "$fmt" = cloudevents-binary ] && want=binary
	for k in 1 2; do
		n=$((n + 1))
		check "  request $n: the SDK parsed a $want event and it validates ($(field $n error))" \
			[ "$(field $n ok) $(field $n mode)" = "True $want" ]
		check "  type dev.tagmoor.status" [ "$(field $n type)" = dev.tagmoor.status ]
		check "  source from the device id" [ "$(field $n source)" = urn:tagmoor:device:edge-0042 ]
		check "  specversion 1.0, datacontenttype application/json" \
			[ "$(field $n specversion) $(field $n datacontenttype)" = "1.0 application/json" ]
		check "  time is an RFC 3339 instant" grep -qE '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}' <<<"$(field $n time)"
		check "  data is the status document (device_id edge-0042)" [ "$(field $n device_id)" = edge-0042 ]
	done
	check "  the refusal is in the data" [ "$(field $n state)" = refused ]
done
ids=$(ce | python3 -c 'import json,sys; print(len({json.loads(l)["id"] for l in sys.stdin}))')
check "  four reports, four distinct ids" [ "$ids" = 4 ]
seqs=$(ce | python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["seq"]) for l in sys.stdin))')
check "  seq grows across formats ($seqs)" [ "$seqs" = "1 2 3 4" ]
check "  binary mode sends ce-* headers" grep -q '"ce-type": "dev.tagmoor.status"' "$RCV_DIR/requests.jsonl"

# the SDK is not lenient: a broken event is refused (the check is real)
python3 - "$RCV_DIR/requests.jsonl" >"$T/broken.jsonl" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
b = json.loads(r["body"]); del b["type"]; b["specversion"] = "1.0"
r["body"] = json.dumps(b); r["n"] = 99
print(json.dumps(r))
PY
check "  a structured event without type does not validate" \
	bash -c "node '$TM_SOURCE_DIR/tests/integration/receiver/ce_check.js' '$CE_CACHE/node_modules' '$T/broken.jsonl' | grep -q '\"ok\":false'"

if [ "$FAILS" -eq 0 ]; then echo "test_report_cloudevents: all passed"; exit 0; fi
echo "test_report_cloudevents: $FAILS failure(s)"
exit 1
