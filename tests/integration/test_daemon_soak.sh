#!/usr/bin/env bash
# test_daemon_soak.sh — issue 11: the idle daemon does not grow. `tagmoor run`
# (interval 1h, so every poll is one we ask for) is driven by SIGUSR1 against
# the real nginx + git http-backend HTTPS server; a python3 driver is its
# notify socket and sends the next SIGUSR1 only after the STATUS= datagram of
# the previous poll, so each signal is exactly one poll. RSS (VmRSS) and open
# fds (/proc/PID/fd) are sampled between polls; after a warm-up neither may
# grow beyond noise, write_bytes stays 0, and the server saw exactly one
# info/refs GET per poll and no POST.
#
# TM_SOAK_POLLS (default 3000) sets the number of polls; the issue's long
# soak is TM_SOAK_POLLS=10000 (about 3-4 minutes on a 2-core machine).
set -uo pipefail
. "$TM_SOURCE_DIR/tests/integration/lib.sh"
tm_need "$TAGMOOR" git ssh-keygen nginx fcgiwrap python3
tm_tmpdir
tm_git_server_start || exit 1
T=$TM_TMP
POLLS=${TM_SOAK_POLLS:-3000}

tm_signed_repo fleet || exit 1
mkdir -p "$work/units"
printf '[Service]\nExecStart=/bin/sleep 1\n' >"$work/units/a.service"
git -C "$work" add -A && git -C "$work" commit -qm "release 1"
git -C "$work" tag -s -m "release 1" stable >/dev/null
git -C "$work" push -q origin HEAD:refs/heads/main refs/tags/stable
ROOT=$T/root
mkdir -p "$ROOT/etc/systemd/system"
cat >"$T/tagmoor.ini" <<INI
[agent]
device_id = edge-0042
interval = 1h
drift_check = 0
log_level = warn
[source]
url = $TM_GIT_URL/git/fleet.git
ref = refs/tags/stable
ca_file = $TM_GIT_CA
timeout = 10s
[verify]
allowed_signers = $T/allowed_signers
[systemd]
enabled = yes
paths = units
wait = 0
INI

python3 - "$TAGMOOR" "$T/tagmoor.ini" "$ROOT" "$T/notify.sock" "$POLLS" "$T/samples" "$T/daemon.log" <<'PY'
import os, signal, socket, subprocess, sys, time
tagmoor, ini, root, sock, polls, samples, dlog = sys.argv[1:8]
polls = int(polls)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock)
s.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=sock)
log = open(dlog, "w")
p = subprocess.Popen([tagmoor, "-c", ini, "--root", root, "run"], env=env, stdin=subprocess.DEVNULL,
                     stderr=log)
def status():
    while True:
        m = s.recv(4096).decode()
        if "STATUS=" in m and "reload" not in m:
            return m
def sample(i):
    st = open("/proc/%d/status" % p.pid).read()
    rss = int(st.split("VmRSS:")[1].split()[0])
    fds = len(os.listdir("/proc/%d/fd" % p.pid))
    io = open("/proc/%d/io" % p.pid).read()
    wb = int(io.split("write_bytes:")[1].split()[0])
    out.write("%d %d %d %d\n" % (i, rss, fds, wb))
out = open(samples, "w")
first = status()                      # the first pass at start
if "STATUS=synced" not in first:
    print("first pass: %s" % first); p.kill(); sys.exit(1)
t0 = time.monotonic()
step = max(polls // 20, 1)
for i in range(1, polls + 1):
    p.send_signal(signal.SIGUSR1)
    m = status()
    if "STATUS=synced" not in m:
        print("poll %d: %s" % (i, m)); p.kill(); sys.exit(1)
    if i % step == 0:
        sample(i)
dt = time.monotonic() - t0
print("# %d polls in %.1f s: %.1f ms per poll (wall)" % (polls, dt, 1000 * dt / polls))
p.send_signal(signal.SIGTERM)
sys.exit(p.wait(10))
PY
RC=$?
check "the driver ran $POLLS polls and the daemon exited 0 ($RC)" [ "$RC" = 0 ]
echo "# samples (poll, VmRSS KiB, fds, write_bytes):"
sed 's/^/#   /' "$T/samples"
# after the warm-up (the first quarter), the last sample against the warm one
read -r _ rss_w fds_w wb_w <<<"$(awk -v n="$(wc -l <"$T/samples")" 'NR == int(n / 4) + 1' "$T/samples")"
read -r _ rss_e fds_e wb_e <<<"$(tail -n 1 "$T/samples")"
rss_max=$(awk 'NR > 1 { if ($2 > m) m = $2 } END { print m }' "$T/samples")
check "RSS does not grow after the warm-up (${rss_w} -> ${rss_e} KiB, max ${rss_max})" \
	[ $((rss_e - rss_w)) -le 256 ] && [ $((rss_max - rss_w)) -le 512 ]
check "open fds constant (${fds_w} -> ${fds_e})" [ "$fds_w" = "$fds_e" ] &&
	[ "$(awk '{ print $3 }' "$T/samples" | sort -u | wc -l)" = 1 ]
check "nothing written to disk (write_bytes ${wb_w} -> ${wb_e})" [ "$wb_w" = "$wb_e" ]
n=$(tm_git_log_count GET "^/git/fleet.git/info/refs")
pst=$(tm_git_log_count POST ".")
check "one info/refs GET per poll ($n for $POLLS polls + the first pass with its fetch)" [ "$n" = $((POLLS + 1)) ]
check "one POST (the first pass's fetch), none while idle ($pst)" [ "$pst" = 1 ]
check "no error or warning logged" [ ! -s "$T/daemon.log" ] || ! grep -qE ' (error|warn) ' "$T/daemon.log"

echo
if [ "$FAILS" -eq 0 ]; then echo "soak passed"; exit 0; fi
echo "$FAILS case(s) failed"
tail -n 20 "$T/daemon.log"
exit 1
