#!/usr/bin/env bash
# test_report.sh — issue 12, reporting upstream, against real parts: the HTTPS
# git server of lib.sh with SSH-signed tags, tagmoor sync with the systemd
# applier under --root, and receiver.py (HTTPS, client certificates checked
# against the test CA) scripted to answer 200, 500, 429 with Retry-After,
# 400, or to hang. Checks: one report per pass that did or said something and
# none for an idle poll (nothing written either), refusals reported with
# what was wrong, order, no loss (dedup by seq), the spool bound and its drop
# counter, a restart (SIGKILL) in the middle of delivery, `report --flush`,
# `status --json` = the last report, alerts on transitions only, and the
# metrics file scraped by Debian's prometheus-node-exporter.
. "$TM_SOURCE_DIR/tests/integration/receiver/setup.sh"
rcv_start || exit 1
INI=$T/tagmoor.ini
PROMDIR=$T/prom
mkdir -p "$PROMDIR"
write_ini "$INI" "url = $RCV_URL/v1/status" "ca_file = $T/pki/ca.pem" \
	"client_cert = $T/pki/client.pem" "client_key = $T/pki/client.key" "spool_max = 3" \
	"metrics_file = $PROMDIR/tagmoor.prom" "alert_url = $RCV_URL/alert"
spooled() { find "$STATE/spool" -name '*.json' 2>/dev/null | wc -l; }
seqs() { rcv_docs | python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["seq"]) for l in sys.stdin))'; }
alerts() { python3 - "$RCV_DIR/requests.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["path"] == "/alert":
        a = json.loads(r["body"]); print("%s>%s" % (a["previous"] or "-", a["state"]))
PY
}

echo "# 1. a first sync is reported once (mTLS), an idle poll sends and writes nothing"
release "release"
TMR sync
rc_is 0 "first sync"
check "  one report received" [ "$(rcv_count)" = 1 ]
check "  state synced, seq 1, trigger pass" [ "$(last_doc 'd["state"], d["seq"], d["trigger"], d["spool_dropped"]')" = "synced 1 pass 0" ]
check "  the client certificate was presented" grep -q '"client": "tagmoor-device"' "$RCV_DIR/requests.jsonl"
check "  Content-Type application/json" grep -q '"content-type": "application/json"' "$RCV_DIR/requests.jsonl"
check "  spool empty after delivery" [ "$(spooled)" = 0 ]
check "  status --json is the document that was sent" \
	[ "$("$TAGMOOR" -c "$INI" --root "$ROOT" status --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')" = \
	  "$(rcv_docs | tail -n1 | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')" ]
sleep 1; touch "$T/marker"; sleep 1
TMR sync
rc_is 0 "idle poll"
check "  no report for an idle poll" [ "$(rcv_count)" = 1 ]
written=$(find "$STATE" "$PROMDIR" -newer "$T/marker" -not -type d | grep -v '/repo.git/')
check "  nothing written in the state dir or the metrics dir (${written:-none})" [ -z "$written" ]

echo "# 2. a refusal is reported with what was wrong, once; alerts on transitions"
stranger "evil"
TMR sync
rc_is 4 "tag signed by an unknown key refused"
check "  a refused report" [ "$(last_doc 'd["state"], d["seq"]')" = "refused 2" ]
check "  it says what was wrong" [ "$(last_doc 'any(e["stage"] == "verify" and "key" in e["message"] for e in d["errors"])')" = True ]
TMR sync
check "  the same refusal again: no second report" [ "$(rcv_count)" = 2 ]
check "  status --json shows the refusal" bash -c "'$TAGMOOR' -c '$INI' --root '$ROOT' status --json | grep -q '\"state\":\"refused\"'"
release "release"
TMR sync
rc_is 0 "a good release after the refusal"
check "  synced, seq 3" [ "$(last_doc 'd["state"], d["seq"]')" = "synced 3" ]
check "  alerts: only into refused and back to synced" [ "$(alerts | tr '\n' ' ')" = "synced>refused refused>synced " ]

echo "# 3. 500, then 429 with Retry-After: spooled, delivered in order by report --flush"
rcv_script 500
stranger "evil 2"
TMR sync
check "  HTTP 500: the report stays in the spool" [ "$(spooled)" = 1 ]
check "  logged as kept" has "HTTP 500.*kept in the spool"
rcv_script 500
release "release"
TMR sync
check "  two reports spooled, nothing delivered" [ "$(spooled)" = 2 ]
rcv_script "429:2"
TM --root "$ROOT" report --flush
rc_is 0 "report --flush"
check "  spool empty" [ "$(spooled)" = 0 ]
check "  delivered in order, no gap" [ "$(seqs)" = "1 2 3 4 5" ]
gap=$(python3 - "$RCV_DIR/requests.jsonl" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
i = max(k for k, r in enumerate(rs) if r["action"] == "429:2")
print("%.1f" % (rs[i + 1]["time"] - rs[i]["time"]))
PY
)
check "  Retry-After: 2 honoured (next attempt after ${gap}s)" python3 -c "import sys; sys.exit(0 if $gap >= 1.9 else 1)"

echo "# 4. 400: dropped with an error logged, the spool is not blocked"
rcv_script 400
stranger "evil 3"
TMR sync
check "  HTTP 400 logged as dropped" has "refused with HTTP 400.*dropped"
check "  nothing left in the spool" [ "$(spooled)" = 0 ]
release "release"
TMR sync
check "  the next report is delivered (seq 7)" [ "$(last_doc 'd["seq"]')" = 7 ]

echo "# 5. a receiver that hangs: the pass ends (timeout), the report is kept, then delivered"
rcv_script "hang:30"
stranger "evil 4"
start=$(date +%s)
TMR sync
rc_is 4 "refused while the receiver hangs"
check "  the pass did not hang ($(( $(date +%s) - start ))s)" [ $(( $(date +%s) - start )) -lt 20 ]
check "  report kept" [ "$(spooled)" = 1 ]
TM --root "$ROOT" report --flush
check "  delivered by --flush" [ "$(spooled)" = 0 ]

echo "# 6. the spool bound: spool_max = 3, the oldest dropped and counted in the next report"
for i in 1 2 3 4 5; do rcv_script 500; done
for i in 1 2 3 4 5; do
	if [ $((i % 2)) = 1 ]; then release "release"; else stranger "evil 5.$i"; fi
	TMR sync >/dev/null
done
check "  at most spool_max reports kept" [ "$(spooled)" = 3 ]
check "  the oldest were dropped (seq 9 10 11 kept)" [ "$(ls "$STATE/spool" | sed 's/^0*//; s/.json//' | tr '\n' ' ')" = "11 12 13 " ]
check "  metrics: tagmoor_reports_dropped_total 2" grep -qx 'tagmoor_reports_dropped_total 2' "$PROMDIR/tagmoor.prom"
check "  metrics: tagmoor_spool_depth 3" grep -qx 'tagmoor_spool_depth 3' "$PROMDIR/tagmoor.prom"
release "release"
TMR sync
rc_is 0 "the endpoint is back"
check "  spool drained in order" [ "$(spooled)" = 0 ]
# 14 pushed 11 out of the full spool: 12 13 14 arrive, 9 and 10 are counted in 13 and 14
check "  received 12 13 14 at the end ($(seqs))" [ "$(seqs | awk '{print $(NF-3), $(NF-2), $(NF-1), $NF}')" = "8 12 13 14" ]
check "  the drops were counted in the next reports (spool_dropped 1 + 1)" [ "$(rcv_docs | python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["spool_dropped"]) for l in sys.stdin))' | awk '{print $(NF-1), $NF}')" = "1 1" ]
check "  metrics: tagmoor_reports_dropped_total 3" grep -qx 'tagmoor_reports_dropped_total 3' "$PROMDIR/tagmoor.prom"

echo "# 7. SIGKILL in the middle of delivery: nothing lost, duplicates removed by seq"
for i in 1 2 3 4; do rcv_script 500; done
for i in 1 2 3 4; do stranger "evil 7.$i"; TMR sync >/dev/null; done
check "  3 reports pending" [ "$(spooled)" = 3 ]
pending=$(ls "$STATE/spool" | sed 's/^0*//; s/.json//' | tr '\n' ' ')
rcv_script 200 "hang:60"
"$TAGMOOR" -c "$INI" --root "$ROOT" report --flush >/dev/null 2>&1 &
fpid=$!
for _ in $(seq 1 100); do grep -q '"action": "hang:60"' "$RCV_DIR/requests.jsonl" && break; sleep 0.1; done
kill -9 "$fpid"; wait "$fpid" 2>/dev/null
check "  killed during the second POST; 2 reports still spooled" [ "$(spooled)" = 2 ]
TM --root "$ROOT" report --flush
rc_is 0 "flush after the restart"
got=$(rcv_docs | python3 -c 'import json,sys; print(" ".join(sorted({str(json.loads(l)["seq"]) for l in sys.stdin}, key=int)))')
for s in $pending; do
	check "  seq $s received" grep -qw "$s" <<<"$got"
done
DROPPED=$(sed -n 's/^tagmoor_reports_dropped_total //p' "$PROMDIR/tagmoor.prom")
check "  every seq from 1 to the last is received, or was refused (6: HTTP 400), or dropped by the bound ($DROPPED)" \
	python3 - "$RCV_DIR/requests.jsonl" "$DROPPED" <<'PY'
import json, sys
docs = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1])
        if json.loads(l)["path"] == "/v1/status" and (json.loads(l).get("status") or 0) // 100 == 2]
seen = {d["seq"] for d in docs}
missing = set(range(1, max(seen) + 1)) - seen
sys.exit(0 if 6 in missing and len(missing) == 1 + int(sys.argv[2]) else 1)
PY
check "  duplicates are possible, a receiver keeps one per (device_id, seq)" python3 - "$RCV_DIR/requests.jsonl" <<'PY'
import json, sys
bodies = [json.loads(l)["body"] for l in open(sys.argv[1]) if json.loads(l)["path"] == "/v1/status"]
seq17 = [b for b in bodies if b and json.loads(b)["seq"] == 17]
sys.exit(0 if len(seq17) == 2 and seq17[0] == seq17[1] else 1)  # sent (hung), resent: the same bytes
PY

echo "# 8. the metrics file, scraped by prometheus-node-exporter"
if command -v prometheus-node-exporter >/dev/null 2>&1; then
	NPORT=$(tm_free_port)
	tm_bg prometheus-node-exporter --web.listen-address="127.0.0.1:$NPORT" --collector.disable-defaults \
		--collector.textfile --collector.textfile.directory="$PROMDIR"
	tm_wait_port "$NPORT"
	scrape=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read().decode())' "$NPORT")
	check "  no textfile scrape error" grep -qx 'node_textfile_scrape_error 0' <<<"$scrape"
	check "  tagmoor_state{state=\"refused\"} 1" grep -qx 'tagmoor_state{state="refused"} 1' <<<"$scrape"
	check "  tagmoor_consecutive_failures counts the refusals in a row" grep -qE '^tagmoor_consecutive_failures [1-9]' <<<"$scrape"
	check "  tagmoor_objects{applier=\"systemd\"} 1" grep -qx 'tagmoor_objects{applier="systemd"} 1' <<<"$scrape"
	check "  tagmoor_spool_depth 0" grep -qx 'tagmoor_spool_depth 0' <<<"$scrape"
	check "  tagmoor_info has the device id" grep -q 'tagmoor_info{device_id="edge-0042"' <<<"$scrape"
	check "  applied revision time" grep -qE '^tagmoor_applied_revision_time_seconds [0-9.e+]+$' <<<"$scrape"
	release "release"
	TMR sync >/dev/null
	scrape=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read().decode())' "$NPORT")
	check "  after a sync: synced, 0 failures, last success set" bash -c "grep -qx 'tagmoor_state{state=\"synced\"} 1' <<<'$scrape' && grep -qx 'tagmoor_consecutive_failures 0' <<<'$scrape' && grep -qE '^tagmoor_last_success_timestamp_seconds [0-9.e+]+$' <<<'$scrape'"
else
	bad "prometheus-node-exporter is not installed (scripts/test installs it)"
fi

echo "# 9. a bearer token_file, re-read for every delivery"
RCV_BEARER="tok-$RANDOM"
RCV_DIR=$T/receiver2
rcv_start || exit 1
printf 'wrong\n' >"$T/token"
INI=$T/bearer.ini
write_ini "$INI" "url = $RCV_URL/v1/status" "ca_file = $T/pki/ca.pem" "client_cert = $T/pki/client.pem" \
	"client_key = $T/pki/client.key" "token_file = $T/token"
stranger "evil 9"
TMR sync
check "  a wrong token: 401 is a 4xx, dropped and logged" has "HTTP 401"
printf '%s\n' "$RCV_BEARER" >"$T/token"
release "release"
TMR sync
check "  the rotated token is used without a restart" [ "$(rcv_docs | wc -l)" = 1 ]

if [ "$FAILS" -eq 0 ]; then echo "test_report: all passed"; exit 0; fi
echo "test_report: $FAILS failure(s)"
exit 1
