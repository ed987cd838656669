#!/usr/bin/env bash
# test_daemon_report.sh — issue 11 with the reporter of issue 12: `tagmoor
# run` reports its passes and, between passes, gives the reporter its turn
# (tm_report_tick): a report the receiver refused with 500 is delivered from
# the spool by the idle daemon without a new pass having anything to say;
# idle polls report nothing; the heartbeat comes on its own; a delivery that
# is due while a manual command holds the lock does not spin. Real parts: the
# HTTPS git server, SSH-signed tags, receiver.py over HTTPS with mTLS.
. "$TM_SOURCE_DIR/tests/integration/receiver/setup.sh"
rcv_start || exit 1
INI=$T/tagmoor.ini
wait_for() { local t=$1 i; shift; for ((i = 0; i < t * 10; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }
spooled() { find "$STATE/spool" -name '*.json' 2>/dev/null | wc -l; }
answered() { python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("status") == int(sys.argv[2])))' "$RCV_DIR/requests.jsonl" "$1"; }
is_() { [ "$("${@:2}")" = "$1" ]; }
has_heartbeat() { triggers | grep -qw heartbeat; }
triggers() { rcv_docs | python3 -c 'import json,sys; print(" ".join(json.loads(l)["trigger"] for l in sys.stdin))'; }
write_ini "$INI" "url = $RCV_URL/v1/status" "ca_file = $T/pki/ca.pem" \
	"client_cert = $T/pki/client.pem" "client_key = $T/pki/client.key" "heartbeat = ${HB:-1h}"
sed -i 's/^device_id = edge-0042$/device_id = edge-0042\ninterval = 1s\njitter = 0%/' "$INI"
DPID=
start() { "$TAGMOOR" -c "$INI" --root "$ROOT" run </dev/null 2> >(exec cat >>"$T/daemon.log") & DPID=$!; TM_PIDS+=("$DPID"); }
stop() { kill -TERM "$DPID"; wait "$DPID"; RC=$?; }

echo "# 1. the first pass is reported; the receiver fails it (500): spooled"
release "release"
rcv_script 500
start
check "one attempt, answered 500" wait_for 10 is_ 1 answered 500
check "the report waits in the spool" wait_for 5 is_ 1 spooled

echo "# 2. the idle daemon delivers it on the reporter's backoff, without a new pass report"
check "delivered (2xx) within 15 s" wait_for 15 is_ 0 spooled
check "exactly one document received, the first pass's ($(triggers))" [ "$(triggers)" = pass ]
n=$(rcv_count)
sleep 3
check "idle polls report nothing ($n -> $(rcv_count) requests)" [ "$(rcv_count)" = "$n" ]
stop
check "exit 0 ($RC)" [ "$RC" = 0 ]

echo "# 3. the heartbeat comes while the daemon idles"
write_ini "$INI" "url = $RCV_URL/v1/status" "ca_file = $T/pki/ca.pem" \
	"client_cert = $T/pki/client.pem" "client_key = $T/pki/client.key" "heartbeat = 2s"
sed -i 's/^device_id = edge-0042$/device_id = edge-0042\ninterval = 1s\njitter = 0%/' "$INI"
start
check "a heartbeat report arrives ($(triggers))" wait_for 10 has_heartbeat
stop
check "exit 0 ($RC)" [ "$RC" = 0 ]

echo "# 4. delivery due while a manual command holds the lock: the daemon waits, it does not spin"
rcv_script 500 500 500 500 500 500 500 500
release "release 2"
start
check "the report of release 2 is refused and spooled" wait_for 10 is_ 1 spooled
cpu() { awk '{ print $14 + $15 }' /proc/"$DPID"/stat; }
c0=$(cpu)
flock "$STATE/lock" sleep 6
c1=$(cpu)
check "little CPU while the lock was held 6 s ($((c1 - c0)) ticks)" [ $((c1 - c0)) -le 60 ]
stop
check "exit 0 ($RC)" [ "$RC" = 0 ]

echo
if [ "$FAILS" -eq 0 ]; then echo "all daemon/report cases passed"; exit 0; fi
echo "$FAILS case(s) failed"
tail -n 30 "$T/daemon.log"
exit 1
