#!/usr/bin/env python3
"""replay_check — replay the recorded real-server requests against fakekube and compare.

For every entry of ../shared/fixtures/kubernetes/replays/*.json (watch requests excepted) the same
method, path, query and body are sent to the fake, in order, and:
  - the HTTP status codes must be equal;
  - a Status body must be equal to the recorded one, with uid values masked (same keys, same
    order, same messages, same causes) — this is what makes the fake's errors real;
  - an object or list body must have the recorded kind and apiVersion, the same name and
    namespace, and the server-set metadata the recording has (uid, resourceVersion, generation,
    creationTimestamp, managedFields).
Where the recorded test polled until a CRD was Established, the fake is polled the same way.
Usage: replay_check.py URL CA CERT KEY REPLAY_DIR   (exit 0 = all equal; differences are printed)
"""

import http.client
import json
import os
import re
import ssl
import sys
import time
import urllib.parse


def conn_factory(url, ca, cert, key):
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    return lambda: http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)


def mask(v):
    if isinstance(v, dict):
        return {k: ("<uid>" if k == "uid" else mask(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [mask(x) for x in v]
    return v


SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


def compare(name, i, e, code, body):
    errs = []
    want_code = e["response_status_code"]
    if code != want_code:
        errs.append("status %d, recorded %d: %s" % (code, want_code, body[:300]))
        return errs
    try:
        want = json.loads(e["response_body"])
        got = json.loads(body)
    except ValueError:
        return ["body is not JSON: %r" % body[:200]]
    if want.get("kind") == "Status":
        if got.get("kind") != "Status":
            return ["recorded a Status, got %s" % got.get("kind")]
        if list(got) != list(want):
            errs.append("Status keys %s, recorded %s" % (list(got), list(want)))
        if mask(got) != mask(want):
            errs.append("Status differs:\n  got      %s\n  recorded %s" % (json.dumps(mask(got)), json.dumps(mask(want))))
        return errs
    for k in ("kind", "apiVersion"):
        if got.get(k) != want.get(k):
            errs.append("%s %r, recorded %r" % (k, got.get(k), want.get(k)))
    wm, gm = want.get("metadata") or {}, got.get("metadata") or {}
    if "items" in want:
        if "resourceVersion" in wm and "resourceVersion" not in gm:
            errs.append("list metadata lacks resourceVersion")
        if not isinstance(got.get("items"), list):
            errs.append("list has no items array")
        return errs
    for k in ("name", "namespace"):
        if wm.get(k) != gm.get(k):
            errs.append("metadata.%s %r, recorded %r" % (k, gm.get(k), wm.get(k)))
    for k in SERVER_META:
        if k in wm and k not in gm:
            errs.append("metadata.%s missing (the real server sets it)" % k)
    for mf in gm.get("managedFields") or []:
        for k in ("manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"):
            if k not in mf:
                errs.append("managedFields entry lacks %s" % k)
    return errs


def main():
    url, ca, cert, key, rdir = sys.argv[1:6]
    new_conn = conn_factory(url, ca, cert, key)
    c = new_conn()
    failures = 0
    checked = 0
    for fname in sorted(os.listdir(rdir)):
        if not fname.endswith(".json"):
            continue
        entries = json.load(open(os.path.join(rdir, fname)))
        for i, e in enumerate(entries):
            url_ = e["request_url"].replace("?&", "?")
            if re.search(r"[?&]watch=true", url_):
                continue
            method = e["request_method"]
            body = e["request_body"].encode() if e["request_body"] else None
            headers = {"Accept": "application/json"}
            if e["request_content_type"]:
                headers["Content-Type"] = e["request_content_type"]
            # The recorded tests polled until the CRD was Established / the Job finished; the
            # first answers of a poll legitimately differ from a server that is quicker.
            if method == "GET" and "customresourcedefinitions/" in url_ and i + 1 < len(entries) and \
                    entries[i + 1]["request_url"] == e["request_url"]:
                continue
            if method == "POST" and "/foobars" in url_:
                crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/foobars.k8s-openapi-tests-custom-resource-definition.com"
                for _ in range(100):
                    c.request("GET", crd, headers={"Accept": "application/json"})
                    r = c.getresponse()
                    conds = (json.loads(r.read()).get("status") or {}).get("conditions") or []
                    if any(x.get("type") == "Established" and x.get("status") == "True" for x in conds):
                        break
                    time.sleep(0.05)
            c.request(method, url_, body=body, headers=headers)
            r = c.getresponse()
            data = r.read().decode()
            if "job-create" in fname and method == "GET" and "/jobs/" in url_:
                checked += 1
                if r.status != 200:
                    print("%s[%d] %s %s: status %d" % (fname, i, method, url_, r.status))
                    failures += 1
                continue
            errs = compare(fname, i, e, r.status, data)
            checked += 1
            if errs:
                failures += 1
                for err in errs:
                    print("%s[%d] %s %s: %s" % (fname, i, method, url_, err))
    print("replay_check: %d requests compared, %d differ" % (checked, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
