#!/usr/bin/env bash
# test_daemon.sh — issue 11: `tagmoor run` against the real nginx + git
# http-backend HTTPS server (systemd applier with --root: unit files only),
# with a notify socket of our own (python3 AF_UNIX datagram receiver) standing
# in for systemd. Cases: READY after the first pass, WATCHDOG pings at half
# of WATCHDOG_USEC; idle polls counted at the server (one GET of info/refs
# per poll, no POST); tag moved -> applied within two intervals; SIGHUP with a
# good INI (RELOADING/MONOTONIC_USEC/READY, takes effect) and with a broken
# one (logged with file:line, the old one stays); SIGUSR1 -> one poll now; a
# manual sync/status while the daemon idles; SIGTERM while idle -> exit 0
# within 2 s, STOPPING=1 (SIGINT too); a bad INI at start -> exit 2; SIGTERM during a pass (the test-only hang point) ->
# exit 0 at the safe point, nothing written, state.json valid, a manual sync
# meanwhile exits 5; server down -> exponential backoff in the connection
# times, then back to the interval once it is up; logs with <N> priorities
# when JOURNAL_STREAM names stderr; a closed stderr (SIGPIPE) does not end it;
# the drift check never with drift_check = 0, else only every drift_check.
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap python3
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
le() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; }
# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds
wait_for() { local t=$1 i; shift; for ((i = 0; i < t * 20; i++)); do "$@" && return 0; sleep 0.05; done; return 1; }
info_refs() { tm_git_log_count GET "^/git/fleet.git/info/refs"; }
posts() { tm_git_log_count POST "."; }
quiet() { "$@" >/dev/null 2>&1; }

tm_signed_repo fleet || exit 1
release() { tm_release "$1"; }
unit() { mkdir -p "$work/units"; printf '[Service]\nExecStart=/bin/sleep %s\n' "$2" >"$work/units/$1"; }
ROOT=$T/root
STATE=$ROOT/var/lib/tagmoor
UD=$ROOT/etc/systemd/system
mkdir -p "$UD"
write_ini() { # file url interval
	cat >"$1" <<INI
[agent]
device_id = edge-0042
interval = $3
jitter = 10%
drift_check = 1h
[source]
url = $2
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 5s
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units
wait = 0
INI
}
INI=$T/tagmoor.ini
write_ini "$INI" "$TM_GIT_URL/git/fleet.git" 1s

# the notify socket: one line per datagram, "TIME<TAB>fields joined by |"
notify_start() { # socket log
	rm -f "$1"
	tm_bg python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        m = s.recv(4096).decode("utf-8", "replace")
        f.write("%.3f\t%s\n" % (time.monotonic(), m.replace("\n", "|")))
' "$1" "$2"
	wait_for 5 test -S "$1"
}
NSOCK=$T/notify.sock
NLOG=$T/notify.log
: >"$NLOG"
notify_start "$NSOCK" "$NLOG" || { echo "FAIL: notify receiver did not start"; exit 1; }
notified() { grep -c -- "$1" "$NLOG"; }

DLOG=$T/daemon.log
start_daemon() { # ini log [env...]
	local ini=$1 log=$2
	shift 2
	# stderr through a pipe: the daemon's own write_bytes must stay 0
	env "$@" "$TAGMOOR" -c "$ini" --root "$ROOT" run </dev/null 2> >(exec cat >"$log") &
	DPID=$!
	TM_PIDS+=("$DPID")
}
alive() { kill -0 "$DPID" 2>/dev/null; }
# stop_daemon SIGNAL: sends it, waits up to 5 s; sets DRC and DSTOP (seconds taken)
stop_daemon() {
	local t0 i
	t0=$(now)
	kill -"$1" "$DPID"
	for ((i = 0; i < 100; i++)); do alive || break; sleep 0.05; done
	DSTOP=$(elapsed "$t0" "$(now)")
	if alive; then DRC=timeout; kill -9 "$DPID"; wait "$DPID" 2>/dev/null; return; fi
	wait "$DPID"
	DRC=$?
}

echo "# 0. a configuration that does not validate at start: exit 2, nothing runs"
sed 's/^interval = 1s$/interval = 0s/' "$INI" >"$T/bad.ini"
OUT=$(timeout 10 "$TAGMOOR" -c "$T/bad.ini" --root "$ROOT" run 2>&1); RC=$?
check "run exits 2 ($RC)" [ "$RC" = 2 ]
check "naming the file and line ($OUT)" grep -q "$T/bad.ini:$(grep -n "^interval" "$T/bad.ini" | cut -d: -f1): \[agent\] interval" <<<"$OUT"

echo "# 1. start: first pass at once, READY=1 after it, watchdog pings"
unit a.service 1
release "release 1"
tm_git_log_reset
start_daemon "$INI" "$DLOG" NOTIFY_SOCKET="$NSOCK" WATCHDOG_USEC=1000000
check "READY=1 arrives (after the first pass)" wait_for 10 grep -q 'READY=1' "$NLOG"
check "the first pass applied release 1" grep -q 'sleep 1$' "$UD/a.service"
check "STATUS= names the state and the revision" grep -qE 'STATUS=synced; applied [0-9a-f]{12}' "$NLOG"
check "READY=1 came with the first STATUS (not before the pass)" \
	bash -c "grep -m1 'READY=1' '$NLOG' | grep -q 'STATUS=synced'"

echo "# 2. idle polls: one GET of info/refs per poll, nothing else, nothing written"
sleep 1
tm_git_log_reset
w0=$(notified 'WATCHDOG=1')
io0=$(awk '/^write_bytes/ { print $2 }' /proc/"$DPID"/io 2>/dev/null)
sleep 5
cp "$TM_GIT_LOG" "$T/idle.log" # one snapshot: the daemon goes on polling
n=$(awk '$1 == "GET" && $2 ~ /^\/git\/fleet.git\/info\/refs/' "$T/idle.log" | wc -l)
p=$(awk '$1 == "POST"' "$T/idle.log" | wc -l)
w1=$(notified 'WATCHDOG=1')
io1=$(awk '/^write_bytes/ { print $2 }' /proc/"$DPID"/io 2>/dev/null)
check "about one poll per second in 5 s ($n GETs of info/refs)" [ "$n" -ge 4 ] && [ "$n" -le 7 ]
check "no POST (nothing fetched) while idle ($p)" [ "$p" = 0 ]
check "nothing but info/refs requested" [ "$(wc -l <"$T/idle.log")" = "$n" ]
check "WATCHDOG=1 about every 0.5 s ($((w1 - w0)) in 5 s)" [ $((w1 - w0)) -ge 7 ]
check "no bytes written to disk while idle (${io0:-?} -> ${io1:-?})" [ -n "$io0" ] && [ "$io0" = "$io1" ]

echo "# 3. the tag moves -> applied within two intervals"
unit a.service 2
release "release 2"
t0=$(now)
wait_for 10 grep -q 'sleep 2$' "$UD/a.service"
dt=$(elapsed "$t0" "$(now)")
check "release 2 applied ${dt} s after the push (<= 2 intervals of 1.1 s + the pass)" le "$dt" 3.0
check "one fetch (one POST of git-upload-pack)" [ "$(posts)" = 1 ]

echo "# 4. a manual sync and status while the daemon idles"
OUT=$("$TAGMOOR" -c "$INI" --root "$ROOT" sync 2>&1); RC=$?
# the daemon may be in a pass at this instant: then the sync exits 5 (documented); retry once
if [ "$RC" = 5 ]; then sleep 0.3; OUT=$("$TAGMOOR" -c "$INI" --root "$ROOT" sync 2>&1); RC=$?; fi
check "tagmoor sync works while the daemon idles (exit $RC)" [ "$RC" = 0 ]
OUT=$("$TAGMOOR" -c "$INI" --root "$ROOT" status 2>&1); RC=$?
check "tagmoor status works ($RC)" [ "$RC" = 0 ] && grep -q 'synced' <<<"$OUT"

echo "# 5. SIGHUP with a good INI: RELOADING=1, MONOTONIC_USEC, READY=1; the new interval holds"
write_ini "$INI" "$TM_GIT_URL/git/fleet.git" 1h
r0=$(notified 'RELOADING=1')
g0=$(notified 'READY=1|STATUS=configuration reloaded')
kill -HUP "$DPID"
check "RELOADING=1 with MONOTONIC_USEC sent" wait_for 5 bash -c "[ \$(grep -c 'RELOADING=1|MONOTONIC_USEC=[0-9]' '$NLOG') -gt $r0 ]"
check "READY=1 after the reload" wait_for 5 bash -c \
	"[ \$(grep -c 'READY=1|STATUS=configuration reloaded' '$NLOG') -gt $g0 ]"
check "logged: configuration reloaded" wait_for 5 grep -q 'configuration reloaded' "$DLOG"
sleep 0.5
tm_git_log_reset
sleep 2
check "interval = 1h now: no poll in 2 s ($(info_refs))" [ "$(info_refs)" = 0 ]

echo "# 6. SIGUSR1: one poll now, each time"
kill -USR1 "$DPID"
check "SIGUSR1 -> a poll" wait_for 3 bash -c "[ \$(awk '\$1 == \"GET\"' '$TM_GIT_LOG' | wc -l) -ge 1 ]"
for _ in 1 2 3; do sleep 0.4; kill -USR1 "$DPID"; done
sleep 0.6
check "three more SIGUSR1 -> three more polls ($(info_refs) in all)" [ "$(info_refs)" = 4 ]

echo "# 7. SIGHUP with a broken INI: logged with file:line, the old configuration stays"
cp "$INI" "$T/good.ini"
sed -i 's/^interval = 1h$/interval = banana/' "$INI"
line=$(grep -n '^interval = banana' "$INI" | cut -d: -f1)
r1=$(notified 'READY=1|STATUS=configuration not reloaded')
kill -HUP "$DPID"
check "the error names $INI:$line" wait_for 5 grep -q "$INI:$line" "$DLOG"
check "and says the previous configuration stays" grep -q 'previous configuration stays in force' "$DLOG"
check "still running" alive
tm_git_log_reset
kill -USR1 "$DPID"
sleep 1.5
check "still polling with the old configuration (SIGUSR1: 1 poll, no interval polls: $(info_refs))" [ "$(info_refs)" = 1 ]
# counted, not looked for in the last lines: watchdog pings and the poll's STATUS follow it
check "READY=1 after the failed reload too" \
	[ "$(notified 'READY=1|STATUS=configuration not reloaded')" -gt "$r1" ]
cp "$T/good.ini" "$INI"

echo "# 8. SIGTERM while idle: exit 0 within 2 s, STOPPING=1"
stop_daemon TERM
check "exit status 0 ($DRC)" [ "$DRC" = 0 ]
check "stopped within 2 s (${DSTOP} s)" le "$DSTOP" 2
check "STOPPING=1 sent" wait_for 2 grep -q 'STOPPING=1' "$NLOG"
check "the lock is free: sync works (exit 0)" quiet "$TAGMOOR" -c "$INI" --root "$ROOT" sync
check "no test hook in the log of a normal run" bash -c "! grep -q 'test hook' '$DLOG'"

echo "# 9. logs to the journal: <N> priorities, no timestamp"
JLOG=$T/journal.log
: >"$JLOG"
ST=$(stat -c '%d:%i' "$JLOG")
env JOURNAL_STREAM="$ST" "$TAGMOOR" -c "$INI" --root "$ROOT" sync 2>>"$JLOG" >/dev/null
check "info lines start with <6> and carry no timestamp" grep -qE '^<6>info ' "$JLOG"
check "no line without a priority" bash -c "! grep -qvE '^<[3467]>' '$JLOG'"
env JOURNAL_STREAM="1:2" "$TAGMOOR" -c "$INI" --root "$ROOT" sync 2>"$T/plain.log" >/dev/null
check "another stream in JOURNAL_STREAM: plain lines with timestamps" grep -qE '^20[0-9-]+T[0-9:]+Z info ' "$T/plain.log"

echo "# 10. SIGTERM during a pass: stops at the safe point, nothing written"
if grep -q TAGMOOR_TEST_HANG "$TAGMOOR"; then
	write_ini "$INI" "$TM_GIT_URL/git/fleet.git" 1s
	before=$(sha256sum <"$STATE/state.json")
	HANG=$T/hang
	touch "$HANG"
	unit a.service 3
	release "release 3"
	start_daemon "$INI" "$T/daemon-hang.log" TAGMOOR_TEST_HANG="$HANG"
	check "the pass reaches the hang point" wait_for 10 grep -qs 'test hook' "$T/daemon-hang.log"
	kill -TERM "$DPID"
	sleep 0.5
	check "still in the pass after SIGTERM (the hang holds it)" alive
	OUT=$("$TAGMOOR" -c "$INI" --root "$ROOT" sync 2>&1); RC=$?
	check "a manual sync during the pass exits 5 ($RC)" [ "$RC" = 5 ]
	rm -f "$HANG"
	stop_daemon TERM # a second SIGTERM is harmless
	check "exit status 0 ($DRC)" [ "$DRC" = 0 ]
	check "stopped at the safe point" grep -q 'stopping at a safe point' "$T/daemon-hang.log"
	check "release 3 not written" grep -q 'sleep 2$' "$UD/a.service"
	check "state.json unchanged" [ "$(sha256sum <"$STATE/state.json")" = "$before" ]
	check "state.json is valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$STATE/state.json"
	check "the next sync applies release 3" quiet "$TAGMOOR" -c "$INI" --root "$ROOT" sync
else
	echo "# skipped: $TAGMOOR has no test hooks (configure with -DTM_TEST_HOOKS=ON)"
fi

echo "# 11. the server is down: exponential backoff, then back to the interval"
# a TCP proxy in front of nginx that records every connection; while $T/up is
# missing it closes each connection at once (the source is unreachable)
PPORT=$(tm_free_port)
PLOG=$T/proxy.log
: >"$PLOG"
tm_bg python3 -c '
import os, socket, sys, threading, time
port, target, up, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except Exception: pass
    for x in (a, b):
        try: x.shutdown(socket.SHUT_RDWR)
        except Exception: pass
while True:
    c, _ = s.accept()
    isup = os.path.exists(up)
    with open(log, "a") as f: f.write("%.3f %s\n" % (time.monotonic(), "up" if isup else "down"))
    if not isup:
        c.close(); continue
    t = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pipe, args=(c, t), daemon=True).start()
    threading.Thread(target=pipe, args=(t, c), daemon=True).start()
' "$PPORT" "$TM_GIT_PORT" "$T/up" "$PLOG"
tm_wait_port "$PPORT"
: >"$PLOG"
write_ini "$T/proxy.ini" "https://localhost:$PPORT/git/fleet.git" 1s
start_daemon "$T/proxy.ini" "$T/daemon-proxy.log"
check "three attempts while down" wait_for 12 bash -c "[ \$(wc -l <'$PLOG') -ge 3 ]"
touch "$T/up"
check "recovers once the server is back" wait_for 12 grep -q 'reachable again' "$T/daemon-proxy.log"
sleep 2.5
stop_daemon TERM
gaps=$(python3 -c '
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1])]
print(" ".join("%.2f" % (b - a) for a, b in zip(t, t[1:])))' "$PLOG")
echo "# gaps between connection attempts: $gaps"
read -r g1 g2 g3 rest <<<"$gaps"
check "1st wait in [1, 2] s ($g1)" le 0.9 "$g1" && le "$g1" 2.4
check "2nd wait in [2, 4] s ($g2)" le 1.9 "$g2" && le "$g2" 4.4
check "3rd wait in [4, 8] s ($g3; the server was back by then)" le 3.9 "$g3" && le "$g3" 8.5
check "then back to the interval (${rest:-none}: >= 2 polls in 2.5 s, each <= 1.3 s)" \
	python3 -c 'import sys; g = [float(x) for x in sys.argv[1:]]; sys.exit(0 if len(g) >= 2 and max(g) <= 1.3 else 1)' $rest
check "the backoff is logged" grep -q 'backing off: next attempt in' "$T/daemon-proxy.log"
check "exit status 0 ($DRC)" [ "$DRC" = 0 ]

echo "# 12. a refused revision is remembered: not fetched or verified again on every poll"
write_ini "$INI" "$TM_GIT_URL/git/fleet.git" 1s
before=$(sha256sum <"$STATE/state.json")
git -C "$work" commit -qm "unsigned" --allow-empty
git -C "$work" tag -a -f -m "unsigned" stable >/dev/null
git -C "$work" push -q -f origin HEAD:refs/heads/main refs/tags/stable
tm_git_log_reset
start_daemon "$INI" "$T/daemon-memo.log"
check "refused and remembered" wait_for 10 grep -q 'remembered as refused' "$T/daemon-memo.log"
sleep 3
check "fetched once, then only ref advertisements ($(posts) POST, $(info_refs) GET)" [ "$(posts)" -le 1 ] && [ "$(info_refs)" -ge 3 ]
check "each poll says it is remembered" grep -q '(remembered; not fetched again)' "$T/daemon-memo.log"
check "verified once" [ "$(grep -c 'remembered as refused' "$T/daemon-memo.log")" = 1 ]
kill -HUP "$DPID"
check "SIGHUP forgets it: verified again" wait_for 5 bash -c "[ \$(grep -c 'remembered as refused' '$T/daemon-memo.log') = 2 ]"
check "state.json untouched by the refusals" [ "$(sha256sum <"$STATE/state.json")" = "$before" ]
stop_daemon INT
check "exit status 0 ($DRC)" [ "$DRC" = 0 ]

echo "# 13. the log reader goes away (journald restarted): the daemon goes on"
git -C "$work" tag -s -f -m "signed again" stable >/dev/null
git -C "$work" push -q -f origin refs/tags/stable
"$TAGMOOR" -c "$INI" --root "$ROOT" run </dev/null 2> >(head -c 10 >/dev/null) &
DPID=$!
TM_PIDS+=("$DPID")
sleep 1.5
tm_git_log_reset
sleep 2
check "still alive with its stderr closed" alive
check "and still polling ($(info_refs) polls in 2 s)" [ "$(info_refs)" -ge 1 ]
stop_daemon TERM
check "exit status 0 ($DRC)" [ "$DRC" = 0 ]

echo "# 14. drift: never with drift_check = 0, then only every drift_check"
write_ini "$INI" "$TM_GIT_URL/git/fleet.git" 1s
sed -i 's/^drift_check = 1h$/drift_check = 0/' "$INI"
edit() { echo "# edited by hand" >>"$UD/a.service"; }
edited() { grep -q 'edited by hand' "$UD/a.service"; }
start_daemon "$INI" "$T/daemon-drift0.log"
wait_for 10 grep -qs 'first pass done' "$T/daemon-drift0.log"
edit
sleep 2.5
check "drift_check = 0: a hand edit stays through idle polls" edited
stop_daemon TERM
sed -i 's/^drift_check = 0$/drift_check = 2s/' "$INI"
start_daemon "$INI" "$T/daemon-drift2.log"
check "drift_check = 2s: the first pass repairs it" wait_for 10 bash -c "grep -qs 'first pass done' '$T/daemon-drift2.log' && ! grep -q 'edited by hand' '$UD/a.service'"
edit
n0=$(awk '$1 == "GET"' "$TM_GIT_LOG" | wc -l)
more_gets() { [ "$(awk '$1 == "GET"' "$TM_GIT_LOG" | wc -l)" -gt "$n0" ]; }
wait_for 3 more_gets
sleep 0.3
check "the next idle poll (1 s later: drift not due yet) leaves the new edit" edited
check "repaired once drift_check has passed" wait_for 4 bash -c "! grep -q 'edited by hand' '$UD/a.service'"
stop_daemon TERM
check "exit status 0 ($DRC)" [ "$DRC" = 0 ]

echo
if [ "$FAILS" -eq 0 ]; then echo "all daemon cases passed"; exit 0; fi
echo "$FAILS case(s) failed"
echo "--- daemon log"; cat "$DLOG"
exit 1
