#!/usr/bin/env bash
# test_manpages.sh — the man pages against the configuration reference:
# every key of docs/configuration.md's table is described in tagmoor.ini(5)
# (docs/man/tagmoor.ini.5.scd) and every key described there is in the table;
# every key of packaging/tagmoor.ini.example and of the template
# packaging/tagmoor.ini is one of them. When scdoc is
# installed, both pages also render, and man(1) finds nothing to warn about.
set -uo pipefail
SRC=${TM_SOURCE_DIR:?}
FAILS=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
T=$(mktemp -d "${TMPDIR:-/tmp}/tagmoor-man.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

# docs/configuration.md: rows "| section.key | ..." or "| report.a, b, c | ...".
awk -F'|' '/^\| *[a-z]+\.[a-z_]+/ {
	n = split($2, k, ",")
	gsub(/ /, "", k[1]); split(k[1], sk, "."); sec = sk[1]; print k[1]
	for (i = 2; i <= n; i++) { gsub(/ /, "", k[i]); print sec "." k[i] }
}' "$SRC/docs/configuration.md" | sort -u >"$T/doc"
# tagmoor.ini.5.scd: "# [section]" headings; "*key* = ..." entries (several on a line).
awk '/^# \[[a-z]+\]/ { sec = substr($2, 2, length($2) - 2); next }
/^# / { sec = ""; next }
sec != "" && /^\*[a-z_]+\* =/ {
	s = $0
	while (match(s, /\*[a-z_]+\* =/)) { print sec "." substr(s, RSTART + 1, RLENGTH - 4); s = substr(s, RSTART + RLENGTH) }
}' "$SRC/docs/man/tagmoor.ini.5.scd" | sort -u >"$T/man"
# The example INI: "[section]" and "key = value" lines, commented-out keys included.
awk '/^\[[a-z]+\]/ { sec = substr($1, 2, length($1) - 2); next }
sec != "" && sec != "vars" && /^;? *[a-z_]+ *=/ { l = $0; sub(/^; */, "", l); sub(/ *=.*/, "", l); print sec "." l }' \
	"$SRC/packaging/tagmoor.ini.example" "$SRC/packaging/tagmoor.ini" | sort -u >"$T/example"

nd=$(wc -l <"$T/doc") nm=$(wc -l <"$T/man")
if [ "$nd" -ge 30 ]; then ok "docs/configuration.md lists $nd keys"; else bad "only $nd keys found in docs/configuration.md"; fi
missing=$(comm -23 "$T/doc" "$T/man" | tr '\n' ' ')
if [ -z "$missing" ]; then ok "every key of docs/configuration.md is in tagmoor.ini(5)"; else bad "not in tagmoor.ini(5): $missing"; fi
extra=$(comm -13 "$T/doc" "$T/man" | tr '\n' ' ')
if [ -z "$extra" ]; then ok "every key of tagmoor.ini(5) ($nm) is in docs/configuration.md"; else bad "not in docs/configuration.md: $extra"; fi
extra=$(comm -13 "$T/doc" "$T/example" | tr '\n' ' ')
if [ -z "$extra" ]; then ok "every key of packaging/tagmoor.ini.example and packaging/tagmoor.ini is in docs/configuration.md"; else bad "unknown keys in the example INI or the template: $extra"; fi

if command -v scdoc >/dev/null 2>&1; then
	for p in tagmoor.8 tagmoor.ini.5; do
		if scdoc <"$SRC/docs/man/$p.scd" >"$T/$p" 2>"$T/$p.err"; then
			ok "scdoc renders $p"
		else
			bad "scdoc $p: $(cat "$T/$p.err")"; continue
		fi
		if command -v man >/dev/null 2>&1; then
			w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$T/$p" 2>&1 >/dev/null)
			if [ -z "$w" ]; then ok "man -l $p: no warnings"; else bad "man -l $p: $w"; fi
		fi
	done
else
	echo "skip - scdoc not installed: the pages were not rendered"
fi

if [ "$FAILS" -eq 0 ]; then echo "all man-page checks passed"; exit 0; fi
echo "$FAILS check(s) failed"
exit 1
