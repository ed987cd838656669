#!/usr/bin/env bash
# test_format.sh — every C file of the tree is as clang-format (.clang-format, 100 columns)
# leaves it. The output of clang-format changes between its major versions: the check runs
# with Debian 12's clang-format 14 (scripts/test installs it) and reports itself skipped
# with any other. Fix a failure with: clang-format -i FILE
set -uo pipefail
cd "${TM_SOURCE_DIR:?}"
CF=$(command -v clang-format-14 || true)
if [ -z "$CF" ]; then echo "SKIP: clang-format-14 is not installed"; exit 77; fi
FAILS=0
while IFS= read -r f; do
	if ! "$CF" --style=file "$f" | cmp -s - "$f"; then
		echo "FAIL - $f is not formatted (clang-format -i $f):"
		"$CF" --style=file "$f" | diff -u "$f" - | head -20
		FAILS=$((FAILS + 1))
	fi
done < <(find src include tests -name '*.[ch]' -not -path '*/corpus/*' | sort)
# the limit holds for the lines clang-format cannot break (strings, comments) too
long=$(find src include -name '*.[ch]' -print0 | xargs -0 awk '{ gsub(/\t/, "        "); if (length($0) > 100) printf "%s:%d: %d columns\n", FILENAME, FNR, length($0) }')
if [ -n "$long" ]; then echo "FAIL - lines over 100 columns:"; echo "$long" | head -20; FAILS=$((FAILS + $(echo "$long" | wc -l))); fi
if [ "$FAILS" -eq 0 ]; then echo "format holds"; exit 0; fi
echo "$FAILS file(s) or line(s) not formatted"; exit 1
