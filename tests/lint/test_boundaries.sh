#!/usr/bin/env bash
# test_boundaries.sh — the architecture's boundaries as a test (docs/architecture.md).
#  1. each third-party library is included by exactly one adapter file;
#  2. no public header (include/tagmoor/) exposes a library header;
#  3. the pipeline, the appliers, the state and the report include no library at all;
#  4. each room of src/ includes only the rooms below it (the table ALLOWED): core/ includes
#     nothing above it, the pipeline reaches the appliers only through apply/applier.h, ...
# A new include of <git2.h> in reconcile.c, say, fails here with the file and line.
set -uo pipefail
cd "${TM_SOURCE_DIR:?}"
FAILS=0
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }

# 1, 2: library header pattern -> the one file allowed to include it
declare -A ADAPTER=(
	# libgit2's adapter is four files: the repository, the network, the store's upkeep and
	# what they share (git_internal.h); packscan.c, between them, includes no library
	['git2']='src/source/git.c src/source/gitfetch.c src/source/gitstore.c src/source/git_internal.h'
	['curl/']=src/source/http.c
	['mbedtls/']=src/verify/crypto.c
	['sodium']=src/verify/crypto.c
	['ini.h']=src/config/inifile.c
	['yaml.h']=src/doc/yaml.c
	['zlib.h']=src/source/git.c
	['systemd/']=NONE
)
for pat in "${!ADAPTER[@]}"; do
	want=${ADAPTER[$pat]}
	while IFS=: read -r file line _; do
		[ -z "$file" ] && continue
		case " $want " in *" $file "*) continue ;; esac
		fail "$file:$line includes <$pat…> (only ${want/NONE/no file} may)"
	done < <(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<${pat//./\\.}" src include tests/tools 2>/dev/null)
done

# 3: these rooms include only our own headers and libc/POSIX
for f in $(find src/pipeline src/apply src/state src/report src/daemon src/cli src/main.c -name '*.c' | sort); do
	while IFS=: read -r line inc; do
		case "$inc" in
		*'"tagmoor/'*) ;;
		*'<'*'/'*'>'*)
			case "$inc" in *'<sys/'*|*'<netinet/'*|*'<arpa/'*|*'<linux/'*) ;;
			*) fail "$f:$line: $inc (pipeline, appliers, state and report include no library)" ;;
			esac ;;
		esac
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$f")
done

# 4: the rooms and what each may include besides itself (a room's own subfolders count as it)
declare -A ALLOWED=(
	[core]=''
	[doc]='core'
	[config]='core'
	[source]='core'
	[verify]='core config source'
	[state]='core doc apply'
	[apply]='core'
	[apply/systemd]='core config apply'
	[apply/kubernetes]='core config doc source verify apply'
	[report]='core config doc source state cli'
	[privsep]='core config verify'
	[pipeline]='core config doc source verify state apply apply/kubernetes apply/systemd report privsep'
	[daemon]='core config source state pipeline report'
	[cli]='core config doc source verify state pipeline report daemon'
	[.]='core config cli'
)
for f in $(find src include/tagmoor -name '*.[ch]' | sort); do
	rel=${f#src/}; rel=${rel#include/tagmoor/}
	room=$(dirname "$rel")
	if [ -z "${ALLOWED[$room]+x}" ]; then fail "$f: room '$room' is not in the table of tests/lint/test_boundaries.sh"; continue; fi
	while IFS=: read -r line dep; do
		[ "$dep" = "$room" ] && continue
		ok=0
		for a in ${ALLOWED[$room]}; do [ "$dep" = "$a" ] && ok=1; done
		# apply/ sees the applier contract; the pipeline reaches an applier only through it
		[ $ok -eq 1 ] || fail "$f:$line includes tagmoor/$dep/ (room $room may include: ${ALLOWED[$room]:-nothing})"
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"tagmoor/' "$f" |
		sed -E 's#^([0-9]+):.*"tagmoor/(.*)/[a-z0-9_]+\.h".*#\1:\2#')
done
# the pipeline names the built-in appliers once (the table in reconcile.c), nowhere else
n=$(grep -lE '"tagmoor/apply/(kubernetes|systemd)/' src/pipeline/*.c 2>/dev/null | wc -l)
[ "$n" -le 1 ] || fail "more than one pipeline file includes a concrete applier"

if [ "$FAILS" -eq 0 ]; then echo "boundaries hold"; exit 0; fi
echo "$FAILS boundary violation(s)"; exit 1
