#!/usr/bin/env python3
"""fakekube — a small fake Kubernetes API server for tagmoor's tests.

No real API server can run on the test machines, so the tests talk to this one. It serves the real
discovery documents from ../shared/fixtures/kubernetes/discovery (legacy and aggregated, with the
exact aggregated-discovery Content-Type), /version, OpenAPI enough for kubectl, and the REST verbs
kubectl and tagmoor use — server-side apply, create, get, list (label and field selectors,
pagination; as Table or metadata only, PartialObjectMetadata), watch, update, merge/JSON patches,
delete, deletecollection — over TLS with client
certificates or bearer tokens, on HTTP/1.1 with keep-alive. Errors are metav1.Status objects
shaped like the recorded replays. The real kubectl must agree with it: see
tests/integration/test_fakekube_kubectl.sh and docs/fakekube.md.

Dependencies: python3 and PyYAML (Debian: python3-yaml). Start:

    python3 tests/fakekube/fakekube.py --cert server.pem --key server.key --client-ca ca.pem \
        [--port 0] [--port-file F] [--token TOKEN=USER ...] [--delay 1] [--crd-delay 0.2]

When ready it prints one line, the port, on stdout (and writes it to --port-file).
Control interface (no client credentials needed): /fakekube/{config,requests,objects,reset}.
"""

import argparse
import base64
import json
import os
import re
import select
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree

import yaml  # noqa: E402  (Debian: python3-yaml)

import fk_status as S  # noqa: E402
from fk_discovery import AGG_V2, AGG_V2BETA1, SERVER_VERSION, Discovery  # noqa: E402
from fk_store import Store  # noqa: E402

# kube-apiserver's MaxRequestBodyBytes (3 MiB): a larger create, update or patch body is refused
# with 413 "Request entity too large: limit is 3145728" before it is decoded.
MAX_BODY = 3 << 20


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML as the API server reads apply bodies: timestamps stay strings."""


_YamlLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in _YamlLoader.yaml_implicit_resolvers.copy().items()}


def parse_body(raw, ctype):
    if not raw:
        raise S.bad_request("the body of the request was empty")
    if "protobuf" in ctype or "cbor" in ctype:
        raise S.ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - '
                         'accepted media types include: application/json, application/yaml', {})
    try:
        return json.loads(raw)
    except ValueError:
        pass
    if "yaml" not in ctype:
        raise S.bad_request("the body of the request could not be decoded as JSON")
    try:
        return yaml.load(raw.decode("utf-8"), Loader=_YamlLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise S.bad_request("error decoding YAML: %s" % str(e).replace("\n", " "))


def human_age(ts):
    try:
        t = time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except (TypeError, ValueError):
        return "<unknown>"
    d = max(0, int(time.time() - t))
    if d < 120:
        return "%ds" % d
    if d < 600:
        return "%dm%ds" % (d // 60, d % 60) if d % 60 else "%dm" % (d // 60)
    if d < 3 * 3600:
        return "%dm" % (d // 60)
    if d < 48 * 3600:
        return "%dh" % (d // 3600)
    return "%dd" % (d // 86400)


def _col(name, typ="string", fmt="", desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": 0}


def table_for(r, items, rv, version):
    """A meta.k8s.io Table like the server-side printers' (for kubectl's human output)."""
    name_col = _col("Name", "string", "name", "Name must be unique within a namespace.")
    age = lambda o: human_age(o["metadata"].get("creationTimestamp"))  # noqa: E731
    cols, cells = [name_col, _col("Age")], lambda o: [o["metadata"]["name"], age(o)]
    k = (r.group, r.kind)
    if k == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        cols = [name_col, _col("Created At", "date")]
        cells = lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]  # noqa: E731
    elif k == ("", "ConfigMap"):
        cols = [name_col, _col("Data", "integer"), _col("Age")]
        cells = lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}), age(o)]  # noqa: E731
    elif k == ("", "Namespace"):
        cols = [name_col, _col("Status"), _col("Age")]
        cells = lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), age(o)]  # noqa: E731
    elif k == ("apps", "Deployment"):
        cols = [name_col, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Age")]

        def cells(o):
            st, sp = o.get("status") or {}, o.get("spec") or {}
            return [o["metadata"]["name"], "%d/%d" % (st.get("readyReplicas", 0), sp.get("replicas", 1)),
                    st.get("updatedReplicas", 0), st.get("availableReplicas", 0), age(o)]
    elif k == ("batch", "Job"):
        cols = [name_col, _col("Status"), _col("Completions"), _col("Duration"), _col("Age")]

        def cells(o):
            st = o.get("status") or {}
            conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
            status = "Complete" if conds.get("Complete") == "True" else (
                "Failed" if conds.get("Failed") == "True" else "Running")
            return [o["metadata"]["name"], status, "%d/%d" % (st.get("succeeded", 0),
                                                              (o.get("spec") or {}).get("completions", 1)), "", age(o)]
    rows = []
    for o in items:
        md = {k2: v for k2, v in o["metadata"].items()}
        rows.append({"cells": cells(o), "object": {"kind": "PartialObjectMetadata",
                                                   "apiVersion": "meta.k8s.io/" + version, "metadata": md}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/" + version, "metadata": {"resourceVersion": rv},
            "columnDefinitions": cols, "rows": rows}


class State:
    """Everything the handlers share: discovery, store, configuration, counters."""

    def __init__(self, args):
        self.disc = Discovery(args.fixtures)
        self.store = Store(self.disc, delay=args.delay, crd_delay=args.crd_delay)
        self.lock = threading.Lock()
        self.config = {"delay": args.delay, "crd_delay": args.crd_delay, "latency": args.latency,
                       "tokens": dict(t.split("=", 1) if "=" in t else (t, "token-user") for t in args.token),
                       "users": {}, "faults": [], "allow_anonymous": args.allow_anonymous}
        self.reset_counters()

    def reset_counters(self):
        with self.lock:
            self.total = 0
            self.connections = 0
            self.by_method_path = {}
            self.by_verb = {}
            self.by_verb_resource = {}
            self.log = []

    def count(self, method, path, verb, resource, status, conn_id, dur, sent=(0, "")):
        with self.lock:
            self.total += 1
            k = method + " " + path
            self.by_method_path[k] = self.by_method_path.get(k, 0) + 1
            if verb:
                self.by_verb[verb] = self.by_verb.get(verb, 0) + 1
                kr = verb + " " + resource
                self.by_verb_resource[kr] = self.by_verb_resource.get(kr, 0) + 1
            self.log.append({"method": method, "path": path, "verb": verb, "resource": resource,
                             "status": status, "connection": conn_id, "ms": round(dur * 1000, 2),
                             "bytes": sent[0], "content_type": sent[1]})
            if len(self.log) > 5000:
                del self.log[:1000]

    def counters(self):
        with self.lock:
            return {"total": self.total, "connections": self.connections,
                    "by_method_path": dict(self.by_method_path), "by_verb": dict(self.by_verb),
                    "by_verb_resource": dict(self.by_verb_resource), "log": list(self.log)}

    def set_config(self, patch):
        with self.lock:
            for k, v in patch.items():
                if k not in self.config:
                    raise S.bad_request("unknown config key %r (known: %s)" % (k, ", ".join(sorted(self.config))))
                if k in ("delay", "crd_delay", "latency") and (not isinstance(v, (int, float)) or v < 0):
                    raise S.bad_request("%s must be a number >= 0" % k)
                self.config[k] = v
            self.store.delay = self.config["delay"]
            self.store.crd_delay = self.config["crd_delay"]
            return dict(self.config)

    def take_fault(self, method, path):
        with self.lock:
            for f in self.config["faults"]:
                if f.get("method", method) != method:
                    continue
                if not re.search(f.get("path", ""), path):
                    continue
                if f.get("count", 1) <= 0:
                    continue
                f["count"] = f.get("count", 1) - 1
                return f
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakekube"
    sys_version = ""
    timeout = 120
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet; the control interface has the request log
        if self.server.verbose:
            sys.stderr.write("fakekube: %s\n" % (fmt % args))

    # ------------------------------------------------------------ plumbing
    def setup(self):
        super().setup()
        self.conn_id = None  # numbered on the first API request (control requests do not count)

    def _count_connection(self):
        if self.conn_id is None:
            st = self.server.state
            with st.lock:
                st.connections += 1
                self.conn_id = st.connections

    def _send(self, code, body, ctype="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = (json.dumps(body, separators=(",", ":")) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status_sent = code
        self.body_sent = (len(body), ctype)

    def _error(self, err):
        self._send(err.code, err.status())

    def _read_body(self):
        n = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                if len(data) + size > MAX_BODY:
                    raise S.ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is %d" % MAX_BODY)
                data += self.rfile.read(size)
                self.rfile.readline(3)
            return bytes(data)
        if not n:
            return b""
        n = int(n)
        if n > MAX_BODY:
            self.close_connection = True
            raise S.ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is %d" % MAX_BODY)
        return self.rfile.read(n)

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _dispatch(self):
        st = self.server.state
        t0 = time.monotonic()
        self.status_sent = 0
        self.body_sent = (0, "")
        self.verb, self.res_name = "", ""
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._read_body()
        except S.ApiError as e:
            self._error(e)
            return
        except (ValueError, OSError):
            self.close_connection = True
            return
        if path.startswith("/fakekube/") or self.server.control_only:
            try:
                self._control(path, body)
            except S.ApiError as e:
                self._error(e)
            return
        self._count_connection()
        latency = st.config["latency"]
        if latency:
            time.sleep(latency)
        try:
            fault = st.take_fault(self.command, path)
            if fault:
                code = int(fault.get("code", 500))
                self._send(code, S.ApiError(code, fault.get("reason", "InternalError"),
                                            fault.get("message", "injected fault") + "x" * int(fault.get("pad", 0))).status(),
                           extra={"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None)
            else:
                self.user = self._authenticate()
                self._route(path, body)
        except S.ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake is a 500, not a hung client
            import traceback
            traceback.print_exc()
            self._error(S.internal(repr(e)))
        finally:
            st.count(self.command, path, self.verb, self.res_name, self.status_sent, self.conn_id,
                     time.monotonic() - t0, getattr(self, "body_sent", (0, "")))

    def _authenticate(self):
        st = self.server.state
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            user = st.config["tokens"].get(tok)
            if user is None:
                raise S.unauthorized()
            return user
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
            return "system:anonymous"
        if st.config["allow_anonymous"]:
            return "system:anonymous"
        raise S.unauthorized()

    def _authorize(self, verb, r, ns, name):
        rules = self.server.state.config["users"].get(self.user)
        if rules is None:
            return
        verbs = rules.get("verbs", ["*"])
        resources = rules.get("resources", ["*"])
        namespaces = rules.get("namespaces", ["*"])
        ok = ("*" in verbs or verb in verbs) and \
            ("*" in resources or r.name in resources or (r.group + "/" + r.name) in resources) and \
            ("*" in namespaces or (ns or "") in namespaces)
        if not ok:
            raise S.forbidden(self.user, verb, r.name, r.group, ns, name)

    def _accept(self):
        return [p.strip() for p in self.headers.get("Accept", "").split(",") if p.strip()]

    # ------------------------------------------------------------ routing
    def _route(self, path, body):
        st = self.server.state
        disc = st.disc
        m = self.command
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, b"ok", "text/plain; charset=utf-8")
        if path == "/version":
            return self._send(200, json.dumps(SERVER_VERSION, indent=2).encode(), "application/json")
        if path in ("/api", "/apis") and m == "GET":
            return self._discovery_root(path == "/api")
        if path == "/openapi/v2" and m == "GET":
            if any("protobuf" in a for a in self._accept()):
                return self._send(200, disc.openapi_v2_protobuf(),
                                  "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
            return self._send(200, disc.openapi_v2_json())
        if path == "/openapi/v3" and m == "GET":
            return self._send(200, disc.openapi_v3_root())
        if path.startswith("/openapi/v3/") and m == "GET":
            parts = path[len("/openapi/v3/"):].split("/")
            doc = None
            if parts[:2] == ["api", "v1"] and len(parts) == 2:
                doc = disc.openapi_v3_gv("", "v1")
            elif parts[0] == "apis" and len(parts) == 3:
                doc = disc.openapi_v3_gv(parts[1], parts[2])
            if doc is None:
                raise S.not_found_path()
            return self._send(200, doc)
        segs = [s for s in path.split("/") if s]
        if len(segs) >= 2 and segs[0] == "api":
            group, version, rest = "", segs[1], segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        elif len(segs) == 2 and segs[0] == "apis" and m == "GET":
            doc = disc.group_doc(segs[1])
            if doc is None:
                raise S.not_found_path()
            return self._send(200, doc)
        else:
            raise S.not_found_path()
        if not disc.has_group_version(group, version):
            raise S.not_found_path()
        if not rest:
            if m != "GET":
                raise S.method_not_allowed()
            return self._send(200, disc.resource_list_doc(group, version))
        ns, name, sub = "", None, ""
        r = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            cand = disc.lookup(group, version, rest[2])
            if cand is not None and cand.namespaced:
                r, ns = cand, rest[1]
                rest = rest[2:]
        if r is None:
            r = disc.lookup(group, version, rest[0])
            if r is None:
                raise S.not_found_path()
        if len(rest) > 3:
            raise S.not_found_path()
        if len(rest) >= 2:
            name = rest[1]
        if len(rest) == 3:
            sub = rest[2]
            if sub not in r.subresources:
                raise S.not_found_path()
        if r.namespaced and not ns and (name is not None or self.command not in ("GET", "HEAD")):
            raise S.not_found_path()  # a namespaced resource has only its list at the cluster path
        self.res_name = (r.group + "/" if r.group else "") + r.name + ("/" + sub if sub else "")
        self._resource(r, ns, name, sub, body)

    def _discovery_root(self, core):
        disc = self.server.state.disc
        for a in self._accept():
            params = dict(p.strip().split("=", 1) for p in a.split(";")[1:] if "=" in p)
            if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
                v = params.get("v")
                if v in ("v2", "v2beta1"):
                    return self._send(200, disc.aggregated_doc(core, v), AGG_V2 if v == "v2" else AGG_V2BETA1,
                                      {"Vary": "Accept"})
            elif a.split(";")[0].strip() in ("application/json", "*/*", "application/*"):
                break
        if core:
            return self._send(200, disc.api_versions(), extra={"Vary": "Accept"})
        return self._send(200, disc.group_list_doc(), extra={"Vary": "Accept"})

    # ------------------------------------------------------------ resources
    def _manager(self, default_from_agent=True):
        fm = self.query.get("fieldManager")
        if fm:
            if len(fm) > 128:
                raise S.ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                 'Too long: may not be more than 128 bytes', {"kind": "PatchOptions", "group": "meta.k8s.io"})
            return fm
        ua = self.headers.get("User-Agent", "")
        return ua.split("/")[0] if ua and default_from_agent else "unknown"

    def _dry_run(self):
        dr = self.query.get("dryRun")
        if dr in (None, ""):
            return False
        if dr != "All":
            raise S.bad_request('dryRun: Unsupported value: "%s": supported values: "All"' % dr)
        return True

    def _check_verb(self, r, verb, sub):
        verbs = r.subresources[sub]["verbs"] if sub else r.verbs
        if verb not in verbs:
            raise S.method_not_allowed()

    def _resource(self, r, ns, name, sub, body):
        st = self.server.state
        store = st.store
        m = self.command
        q = self.query
        if m in ("GET", "HEAD"):
            if name is None:
                watch = q.get("watch") in ("true", "1")
                self.verb = "watch" if watch else "list"
                self._check_verb(r, self.verb, "")
                self._authorize(self.verb, r, ns, None)
                lreq = S.parse_label_selector(q.get("labelSelector"))
                freq = S.parse_field_selector(q.get("fieldSelector"))
                if watch:
                    return self._watch(r, ns, lreq, freq)
                items, rv = store.list(r, ns, lreq, freq)
                return self._send_list(r, items, rv)
            self.verb = "get"
            self._check_verb(r, "get", sub)
            self._authorize("get", r, ns, name)
            obj = store.get(r, ns, name)
            return self._send_obj(200, r, obj)
        if m == "POST":
            self.verb = "create"
            if name is not None:
                raise S.method_not_allowed()
            self._check_verb(r, "create", "")
            self._authorize("create", r, ns, None)
            obj = store.create(r, ns, parse_body(body, self.headers.get("Content-Type", "")),
                               self._manager(), self._dry_run())
            return self._send_obj(201, r, obj)
        if m == "PUT":
            self.verb = "update"
            if name is None:
                raise S.method_not_allowed()
            self._check_verb(r, "update", sub)
            self._authorize("update", r, ns, name)
            obj = store.update(r, ns, name, parse_body(body, self.headers.get("Content-Type", "")),
                               self._manager(), self._dry_run(), sub)
            return self._send_obj(200, r, obj)
        if m == "PATCH":
            self.verb = "patch"
            if name is None:
                raise S.method_not_allowed()
            self._check_verb(r, "patch", sub)
            self._authorize("patch", r, ns, name)
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype == "application/apply-patch+yaml":
                if not q.get("fieldManager"):
                    raise S.ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                     "Required value: is required for apply patch",
                                     {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                                         {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
                                          "field": "fieldManager"}]})
                force = q.get("force") in ("true", "1")
                obj, created = store.apply(r, ns, name, parse_body(body, "yaml"), self._manager(), force,
                                           self._dry_run(), sub)
                return self._send_obj(201 if created else 200, r, obj)
            if q.get("force"):
                raise S.ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: '
                                 "may not be specified for non-apply patch", {"group": "meta.k8s.io", "kind": "PatchOptions"})
            if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                obj = store.patch(r, ns, name, "merge", parse_body(body, ctype), self._manager(), self._dry_run(), sub)
            elif ctype == "application/json-patch+json":
                ops = parse_body(body, ctype)
                if not isinstance(ops, list):
                    raise S.bad_request("json patch must be a list of operations")
                obj = store.patch(r, ns, name, "json", ops, self._manager(), self._dry_run(), sub)
            else:
                raise S.unsupported_media_type(ctype)
            return self._send_obj(200, r, obj)
        if m == "DELETE":
            opts = {}
            if body:
                try:
                    opts = json.loads(body)
                except ValueError:
                    raise S.bad_request("the body of the request was not valid DeleteOptions JSON")
            dry = self._dry_run() or "All" in (opts.get("dryRun") or [])
            prop = q.get("propagationPolicy") or opts.get("propagationPolicy")
            if prop not in (None, "", "Background", "Foreground", "Orphan"):
                raise S.ApiError(422, "Invalid", 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                 'Unsupported value: "%s": supported values: "Foreground", "Background", "Orphan", "nil"'
                                 % prop, {"group": "meta.k8s.io", "kind": "DeleteOptions"})
            if name is None:
                self.verb = "deletecollection"
                self._check_verb(r, "deletecollection", "")
                self._authorize("deletecollection", r, ns, None)
                out = store.delete_collection(r, ns, S.parse_label_selector(q.get("labelSelector")),
                                              S.parse_field_selector(q.get("fieldSelector")), dry)
                return self._send(200, out)
            self.verb = "delete"
            if sub:
                raise S.method_not_allowed()
            self._check_verb(r, "delete", "")
            self._authorize("delete", r, ns, name)
            pre = opts.get("preconditions") or {}
            if prop in (None, "") and opts.get("orphanDependents") is not None:
                prop = "Orphan" if opts["orphanDependents"] else "Background"
            out = store.delete(r, ns, name, dry, pre.get("uid"), pre.get("resourceVersion"), prop)
            return self._send(200, out)
        raise S.method_not_allowed()

    def _table_version(self):
        for a in self._accept():
            params = dict(p.strip().split("=", 1) for p in a.split(";")[1:] if "=" in p)
            if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                return params["v"]
            if a.split(";")[0].strip() in ("application/json", "*/*"):
                return None
        return None

    def _meta_version(self, kind):
        """The meta.k8s.io version when Accept asks for kind (PartialObjectMetadata or
        PartialObjectMetadataList) before anything plain JSON serves, else None. The real server
        answers metadata only then (no data of a Secret), with that Content-Type."""
        for a in self._accept():
            params = dict(p.strip().split("=", 1) for p in a.split(";")[1:] if "=" in p)
            if params.get("as") == kind and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                return params["v"]
            if a.split(";")[0].strip() in ("application/json", "*/*"):
                return None
        return None

    def _send_obj(self, code, r, obj):
        tv = self._table_version()
        if tv and self.command == "GET":
            return self._send(code, table_for(r, [obj], obj["metadata"].get("resourceVersion", ""), tv))
        mv = self._meta_version("PartialObjectMetadata")
        if mv:
            return self._send(code, {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + mv,
                                     "metadata": obj["metadata"]},
                              ctype="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=" + mv)
        return self._send(code, obj)

    def _send_list(self, r, items, rv):
        q = self.query
        limit = int(q.get("limit") or 0) if (q.get("limit") or "0").isdigit() else 0
        start = 0
        if q.get("continue"):
            try:
                start = int(base64.b64decode(q["continue"]).decode().split(":", 1)[1])
            except (ValueError, IndexError, UnicodeDecodeError):
                raise S.bad_request("continue key is not valid")
        meta = {"resourceVersion": rv}
        page = items[start:]
        if limit and len(page) > limit:
            page = page[:limit]
            meta["continue"] = base64.b64encode(("%s:%d" % (rv, start + limit)).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        tv = self._table_version()
        if tv:
            t = table_for(r, page, rv, tv)
            t["metadata"] = meta
            return self._send(200, t)
        mv = self._meta_version("PartialObjectMetadataList")
        if mv:
            return self._send(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/" + mv,
                                    "metadata": meta,
                                    "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + mv,
                                               "metadata": o["metadata"]} for o in page]},
                              ctype="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=" + mv)
        if not r.crd:  # typed lists carry no kind/apiVersion per item, like the real server's
            page = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
        return self._send(200, {"kind": r.kind + "List", "apiVersion": r.api_version, "metadata": meta,
                                "items": page})

    def _watch(self, r, ns, lreq, freq):
        st = self.server.state
        store = st.store
        q = self.query
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            timeout = 1800
        deadline = time.monotonic() + timeout
        rv_param = q.get("resourceVersion") or ""
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")

        def matches(g, res, ons, obj):
            if g != r.group or res != r.name:
                return False
            if r.namespaced and ns and ons != ns:
                return False
            return S.labels_match(lreq, obj["metadata"].get("labels") or {}) and S.fields_match(freq, obj)

        with store.lock:
            if rv_param in ("", "0"):
                initial, since = store.list(r, ns, lreq, freq)
                since = int(since)
            else:
                initial = []
                try:
                    since = int(rv_param)
                except ValueError:
                    raise S.bad_request("resourceVersion: Invalid value: %r" % rv_param)
                store.events_since(since)  # raises 410 Expired when too old
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.status_sent = 200

        def send(evtype, obj):
            data = (json.dumps({"type": evtype, "object": obj}, separators=(",", ":")) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        try:
            for obj in initial:
                send("ADDED", obj)
            last_bookmark = time.monotonic()
            while True:
                with store.lock:
                    evs = store.events_since(since)
                    if not evs:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        store.cond.wait(min(left, 1.0))
                        evs = store.events_since(since)
                    out = []
                    for rv, et, g, res, ons, obj in evs:
                        since = rv
                        if matches(g, res, ons, obj):
                            out.append((et, store._out(r, obj)))
                for et, obj in out:
                    send(et, obj)
                if not out and select.select([self.connection], [], [], 0)[0]:
                    break  # the client went away (EOF / close_notify): end this watch now
                if bookmarks and time.monotonic() - last_bookmark > 5:
                    send("BOOKMARK", {"kind": r.kind, "apiVersion": r.api_version,
                                      "metadata": {"resourceVersion": str(since)}})
                    last_bookmark = time.monotonic()
                if time.monotonic() >= deadline:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except S.ApiError as e:  # history trimmed under us: tell the client like the server does
            try:
                send("ERROR", e.status())
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True
        except (OSError, ssl.SSLError):
            self.close_connection = True

    # ------------------------------------------------------------ control
    def _control(self, path, body):
        st = self.server.state
        m = self.command
        p = path[len("/fakekube"):] if path.startswith("/fakekube/") else path
        if p == "/healthz":
            return self._send(200, {"ok": True})
        if p == "/config":
            if m == "GET":
                return self._send(200, st.config)
            if m in ("POST", "PUT", "PATCH"):
                try:
                    patch = json.loads(body or b"{}")
                except ValueError:
                    raise S.bad_request("config body must be JSON")
                if not isinstance(patch, dict):
                    raise S.bad_request("config body must be a JSON object")
                return self._send(200, st.set_config(patch))
        if p == "/requests":
            if m == "GET":
                return self._send(200, st.counters())
            if m in ("DELETE", "POST"):
                st.reset_counters()
                return self._send(200, {"reset": True})
        if p == "/requests/reset" and m == "POST":
            st.reset_counters()
            return self._send(200, {"reset": True})
        if p == "/objects" and m == "GET":
            d = st.store.dump()
            kind, ns = self.query.get("kind"), self.query.get("namespace")
            d["items"] = [o for o in d["items"] if (not kind or o.get("kind") == kind) and
                          (ns is None or (o["metadata"].get("namespace") or "") == ns)]
            return self._send(200, d)
        if p == "/reset" and m == "POST":
            st.store.reset()
            st.reset_counters()
            return self._send(200, {"reset": True})
        raise S.not_found_path()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, addr, state, ctx, control_only=False, verbose=False):
        self.state, self.ctx, self.control_only, self.verbose = state, ctx, control_only, verbose
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        if self.ctx is not None:
            try:
                request.settimeout(30)
                request = self.ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError) as e:
                if self.verbose:
                    sys.stderr.write("fakekube: TLS handshake failed: %s\n" % e)
                try:
                    request.close()
                except OSError:
                    pass
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        except (OSError, ssl.SSLError):
            pass

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake Kubernetes API server for tagmoor's tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = a free port (printed when ready)")
    ap.add_argument("--port-file", help="also write the port to this file (atomically) when ready")
    ap.add_argument("--cert", help="server certificate (PEM); without --cert/--key: plain HTTP")
    ap.add_argument("--key", help="server key (PEM)")
    ap.add_argument("--client-ca", help="CA that verifies client certificates")
    ap.add_argument("--token", action="append", default=[], help="accept bearer TOKEN (as user USER): TOKEN[=USER]")
    ap.add_argument("--allow-anonymous", action="store_true", help="accept requests without credentials")
    ap.add_argument("--fixtures", default=None, help="discovery fixtures (default: ../shared/fixtures/kubernetes/discovery)")
    ap.add_argument("--delay", type=float, default=1.0, help="seconds until workloads become ready / complete")
    ap.add_argument("--crd-delay", type=float, default=0.2, help="seconds until a CRD is Established")
    ap.add_argument("--latency", type=float, default=0.0, help="artificial latency per request, seconds")
    ap.add_argument("--control-port", type=int, default=None, help="also serve /fakekube/* on plain HTTP here (0 = free)")
    ap.add_argument("--tls-min", choices=["1.2", "1.3"], help="lowest TLS version offered")
    ap.add_argument("--tls-max", choices=["1.2", "1.3"], help="highest TLS version offered")
    ap.add_argument("--ciphers", help="TLS 1.2 cipher list (OpenSSL syntax), e.g. to offer only one")
    ap.add_argument("--require-client-cert", action="store_true",
                    help="refuse the TLS handshake without a client certificate (needs --client-ca)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.fixtures is None:
        shared = os.environ.get("TM_SHARED_DIR") or os.path.join(HERE, "..", "..", "..", "shared")
        args.fixtures = os.path.join(shared, "fixtures", "kubernetes", "discovery")
    if not os.path.isdir(args.fixtures):
        ap.error("discovery fixtures not found: %s" % args.fixtures)
    ctx = None
    if args.cert or args.key:
        if not (args.cert and args.key):
            ap.error("--cert and --key go together")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED if args.require_client_cert else ssl.CERT_OPTIONAL
        tls = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
        if args.tls_min:
            ctx.minimum_version = tls[args.tls_min]
        if args.tls_max:
            ctx.maximum_version = tls[args.tls_max]
        if args.ciphers:
            ctx.set_ciphers(args.ciphers)
    state = State(args)
    srv = Server((args.host, args.port), state, ctx, verbose=args.verbose)
    port = srv.server_address[1]
    threads = [threading.Thread(target=srv.serve_forever, daemon=True)]
    cport = None
    if args.control_port is not None:
        csrv = Server((args.host, args.control_port), state, None, control_only=True, verbose=args.verbose)
        cport = csrv.server_address[1]
        threads.append(threading.Thread(target=csrv.serve_forever, daemon=True))
    for t in threads:
        t.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
            if cport is not None:
                f.write("%d\n" % cport)
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    if cport is not None:
        print(cport, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    sys.exit(main())
