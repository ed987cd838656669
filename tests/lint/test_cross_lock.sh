#!/bin/bash
# cross/build-static: one run at a time per cache directory (docs/static-builds.md). A second
# run with the same TAGMOOR_CROSS_CACHE waits, saying so, and builds nothing while the first
# holds the cache; a first run killed with SIGKILL leaves nothing that blocks the next.
# Nothing is built here: the second run is stopped while it waits.
set -u
src=${TM_SOURCE_DIR:?}
command -v flock >/dev/null && command -v setsid >/dev/null || {
	echo "SKIP: no flock/setsid"
	exit 77
}
tmp=$(mktemp -d)
holder=
waiter=
cleanup() {
	[ -n "$waiter" ] && kill -KILL -- -"$waiter" 2>/dev/null
	[ -n "$holder" ] && kill -KILL "$holder" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok   - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; fail=$((fail + 1)); }

cache=$tmp/cache
mkdir -p "$cache"
# the first run, as the kernel sees it: a process that took the lock as build-static does
bash -c 'exec 9>"$1" && flock 9 && exec sleep 600' _ "$cache/.lock" &
holder=$!
for _ in $(seq 50); do flock -n "$cache/.lock" true 2>/dev/null || break; sleep 0.1; done

TAGMOOR_CROSS_CACHE=$cache OUT=$tmp/out setsid "$src/cross/build-static" --no-install --no-smoke x86_64 \
	>"$tmp/out.log" 2>"$tmp/err.log" &
waiter=$!
for _ in $(seq 100); do grep -q "waiting for another" "$tmp/err.log" 2>/dev/null && break; sleep 0.1; done
if grep -q "waiting for another cross/build-static using $cache" "$tmp/err.log"; then
	ok "a second run says it waits for the first"
else
	bad "a second run says it waits for the first: $(tail -3 "$tmp/err.log")"
fi
sleep 1
if kill -0 "$waiter" 2>/dev/null; then ok "and it is still waiting"; else bad "and it is still waiting"; fi
if [ -z "$(ls -A "$cache" | grep -v '^\.lock$')" ] && [ ! -e "$tmp/out" ]; then
	ok "it touched nothing in the cache or its output while it waited"
else
	bad "it touched nothing in the cache or its output while it waited: $(ls -A "$cache" "$tmp/out" 2>&1 | tr '\n' ' ')"
fi
kill -KILL -- -"$waiter" 2>/dev/null
wait "$waiter" 2>/dev/null
waiter=

# the first run killed: the lock goes with it
kill -KILL "$holder"
wait "$holder" 2>/dev/null
holder=
if flock -n "$cache/.lock" true; then
	ok "a run killed with SIGKILL leaves the cache unlocked"
else
	bad "a run killed with SIGKILL leaves the cache unlocked"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
