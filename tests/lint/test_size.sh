#!/usr/bin/env bash
# test_size.sh — the house's size rules (docs/architecture.md): no source file over 1,000 lines
# and no function over 100 lines (data tables are not functions: they are not counted). A function
# is what stands between a "{" and a "}" in column 0 (the tree's style, .clang-format); the
# failure names the file, the line and the function.
set -uo pipefail
cd "${TM_SOURCE_DIR:?}"
FILE_MAX=1000
FN_MAX=100
FAILS=0
while IFS= read -r f; do
	n=$(wc -l <"$f")
	if [ "$n" -gt "$FILE_MAX" ]; then
		echo "FAIL - $f: $n lines (more than $FILE_MAX: split it by what it does)"
		FAILS=$((FAILS + 1))
	fi
done < <(find src include -name '*.[ch]' | sort)
long=$(find src -name '*.c' | sort | xargs awk -v max="$FN_MAX" '
	/^\{/ { start = FNR; name = prev; next }
	/^\}/ { if (start && FNR - start - 1 > max)
			printf "%s:%d: %d lines: %s\n", FILENAME, start, FNR - start - 1, substr(name, 1, 80)
		start = 0 }
	{ if ($0 !~ /^[ \t]/ && $0 != "") prev = $0 }')
if [ -n "$long" ]; then
	while IFS= read -r l; do echo "FAIL - function over $FN_MAX lines: $l"; done <<<"$long"
	FAILS=$((FAILS + $(wc -l <<<"$long")))
fi
if [ "$FAILS" -eq 0 ]; then echo "sizes hold (files <= $FILE_MAX lines, functions <= $FN_MAX)"; exit 0; fi
echo "$FAILS size rule(s) broken"; exit 1
