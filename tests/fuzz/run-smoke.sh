#!/bin/sh
# run-smoke.sh BUILD_DIR SECONDS — runs every fuzz_* target found in
# BUILD_DIR for SECONDS each, on a scratch copy of its seed corpus
# (tests/fuzz/corpus/<target>/; the checked-in corpus is never modified).
# Fails if any target crashes, leaks or times out; the reproducer is kept
# and named. A smoke test for CI, not a fuzzing campaign.
set -u
if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
targets=$(find "$build" -type f -perm -u+x -name 'fuzz_*' | sort)
if [ -z "$targets" ]; then
	echo "no fuzz_* targets in $build (configure with CC=clang -DTM_FUZZ=ON)" >&2
	exit 2
fi
for bin in $targets; do
	name=$(basename "$bin")
	corpus="$work/$name/corpus"
	mkdir -p "$corpus" "$work/$name/artifacts"
	if [ -d "$here/corpus/$name" ]; then
		cp "$here/corpus/$name"/* "$corpus"/ 2>/dev/null || true
	fi
	echo "== $name (${secs}s)"
	if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/$name/artifacts/" "$corpus" > "$work/$name/log" 2>&1; then
		passed=$((passed + 1))
		grep -E '^stat::number_of_executed_units' "$work/$name/log" || true
	else
		failed=$((failed + 1))
		tail -n 40 "$work/$name/log"
		keep="${TMPDIR:-/tmp}/tagmoor-fuzz-$name-$$"
		mkdir -p "$keep"
		cp "$work/$name/artifacts"/* "$keep"/ 2>/dev/null || true
		echo "FAILED: $name; reproducer(s) kept in $keep"
	fi
done
echo "fuzz smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
