#!/usr/bin/env bash
# test_boundaries.sh — the architecture's boundaries as a test
# (docs/architecture.md): each third-party library is included by exactly one
# adapter file, no public header (include/tagmoor/) exposes a library header,
# and the pipeline and the appliers include no library at all. A new include
# of <git2.h> in reconcile.c, say, fails here with the file and line.
set -uo pipefail
cd "${TM_SOURCE_DIR:?}"
FAILS=0
# library header pattern -> the one file allowed to include it
declare -A ADAPTER=(
	['git2']=src/git.c
	['curl/']=src/http.c
	['mbedtls/']=src/crypto.c
	['sodium']=src/crypto.c
	['ini.h']=src/config.c
	['yaml.h']=src/yaml.c
	['zlib.h']=src/git.c
	['systemd/']=NONE
)
for pat in "${!ADAPTER[@]}"; do
	want=${ADAPTER[$pat]}
	while IFS=: read -r file line _; do
		[ -z "$file" ] && continue
		if [ "$file" != "$want" ]; then
			echo "FAIL - $file:$line includes <$pat…> (only ${want/NONE/no file} may)"
			FAILS=$((FAILS + 1))
		fi
	done < <(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<${pat//./\\.}" src include tests/tools 2>/dev/null)
done
# the pipeline and the appliers: only our own headers and libc/POSIX
for f in src/reconcile.c src/plan.c src/state.c src/verify.c src/systemd.c src/kube.c src/daemon.c \
	src/commands.c src/main.c src/report*.c; do
	[ -f "$f" ] || continue
	while IFS=: read -r line inc; do
		case "$inc" in
		*'"tagmoor/'*) ;;
		*'<'*'/'*'>'*)
			case "$inc" in *'<sys/'*|*'<netinet/'*|*'<arpa/'*|*'<linux/'*) ;;
			*) echo "FAIL - $f:$line: $inc (pipeline and appliers include no library)"; FAILS=$((FAILS + 1)) ;;
			esac ;;
		esac
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$f" | sed 's/:/:/')
done
# core modules include nothing above them
for f in src/error.c src/buf.c src/log.c src/fileio.c src/parse.c; do
	bad=$(grep -nE '#include "tagmoor/(config|git|http|verify|reconcile|state|systemd|kube|plan|daemon|report)' "$f")
	if [ -n "$bad" ]; then echo "FAIL - $f includes a module above the core: $bad"; FAILS=$((FAILS + 1)); fi
done
if [ "$FAILS" -eq 0 ]; then echo "boundaries hold"; exit 0; fi
echo "$FAILS boundary violation(s)"; exit 1
