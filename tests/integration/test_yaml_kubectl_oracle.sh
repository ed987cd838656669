#!/bin/bash
# test_yaml_kubectl_oracle.sh — kubectl is the oracle for how manifests are
# typed. For every file of the corpus tests/data/yaml/, what tagmoor reads
# (tests/tools/yaml2json, one JSON object a line) must equal what
# `kubectl annotate --local -o json` reads (kubectl decodes the file exactly
# as `kubectl apply` does, needs no server, and prints the objects; removing a
# missing annotation changes nothing), and a file kubectl refuses must be
# refused by tagmoor. Comparison is strict about JSON types (1 is not 1.0,
# true is not 1) and ignores key order. tagmoor's raw output is also checked:
# raw UTF-8, no "\/", no \u escape other than for control characters.
#
# The answers kubectl gave are kept in tests/data/yaml/expected/ so that the
# unit tests (test_yaml.c) check the corpus without kubectl; this test fails
# when they are stale (UPDATE_EXPECTED=1 rewrites them).
#
# Exit 77 (skipped) when kubectl or python3 is missing.
set -u
src=${TM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
corpus=$src/tests/data/yaml
y2j=${YAML2JSON:-}
if [ -z "$y2j" ] && [ -n "${TAGMOOR:-}" ]; then
	y2j=$(dirname "$TAGMOOR")/tests/tools/yaml2json
fi
if [ -z "$y2j" ] || [ ! -x "$y2j" ]; then
	echo "yaml2json not found (set YAML2JSON or TAGMOOR)" >&2
	exit 1
fi
command -v kubectl >/dev/null 2>&1 || { echo "kubectl not found: skipped"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "python3 not found: skipped"; exit 77; }

exec python3 - "$corpus" "$y2j" <<'PY'
import json, os, re, subprocess, sys

corpus, y2j = sys.argv[1], sys.argv[2]
update = os.environ.get("UPDATE_EXPECTED") == "1"
expdir = os.path.join(corpus, "expected")

def normalise(o):
    # kubectl adds metadata.annotations (and metadata) when it annotates, and
    # its printer drops metadata.managedFields.
    if isinstance(o, dict):
        md = o.get("metadata")
        if isinstance(md, dict):
            md.pop("managedFields", None)
            if md.get("annotations") == {}:
                del md["annotations"]
            if md == {}:
                del o["metadata"]
    return o

def stream(text):
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        o, i = dec.raw_decode(text, i)
        out.append(normalise(o))

def strict_equal(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b

def kubectl(path):
    p = subprocess.run(["kubectl", "annotate", "--local", "-f", path, "-o", "json",
                        "tagmoor-oracle-"], capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        return "error", p.stderr.strip()
    return stream(p.stdout), ""

bad_escape = re.compile(r'\\u(?!00[01][0-9a-f])|\\/')

def tagmoor(path):
    p = subprocess.run([y2j, path], capture_output=True)
    if p.returncode != 0:
        return "error", p.stderr.decode("utf-8", "replace").strip(), None
    try:
        raw = p.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid", "", "output is not UTF-8"
    problem = None
    if bad_escape.search(raw):
        problem = "unnecessary escape in output: " + bad_escape.search(raw).group(0)
    return stream(raw), "", problem

def dump(v):
    if v == "error":
        return "error\n"
    return "".join(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n" for o in v)

files = sorted(f for f in os.listdir(corpus) if os.path.isfile(os.path.join(corpus, f)))
failed, stale, refused = 0, 0, 0
for f in files:
    path = os.path.join(corpus, f)
    k, kerr = kubectl(path)
    t, terr, problem = tagmoor(path)
    if k == "error":
        refused += 1
        ok = t == "error"
    else:
        ok = t != "error" and len(k) == len(t) and all(strict_equal(x, y) for x, y in zip(k, t))
    if problem:
        ok = False
    if not ok:
        failed += 1
        print(f"FAIL {f}")
        print(f"  kubectl: {dump(k).strip()[:800]} {kerr[:300]}")
        print(f"  tagmoor: {dump(t).strip()[:800] if t not in ('error', 'invalid') else t} {terr[:300]}")
        if problem:
            print(f"  {problem}")
    else:
        print(f"ok   {f}" + ("  (refused by both)" if k == "error" else ""))
    exp = os.path.join(expdir, f + ".out")
    want = dump(k)
    have = open(exp, encoding="utf-8").read() if os.path.exists(exp) else None
    if have != want:
        if update:
            os.makedirs(expdir, exist_ok=True)
            with open(exp, "w", encoding="utf-8") as fh:
                fh.write(want)
        else:
            stale += 1
            print(f"STALE expected/{f}.out (run with UPDATE_EXPECTED=1)")
print(f"{len(files)} documents, {refused} refused by kubectl, {failed} differ, {stale} stale expectations")
sys.exit(1 if failed or stale else 0)
PY
