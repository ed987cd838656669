"""fk_store — objects, server-side apply, managed fields, watch events and the fake controllers.

All state lives in one Store under one lock. Stored objects are never mutated in place: every
write builds a new dict, so watch events and readers can hold references without copying.

Server-side apply is a deliberate approximation of structured merge: field ownership is tracked
per manager as a set of leaf paths (a map key whose value is a scalar, a list or an empty map);
lists are atomic (replaced, owned whole). An apply merges maps recursively, replaces everything
else, removes the leaves this manager applied before and no longer applies (when no other
manager owns them), and reports a 409 conflict when it would change a leaf another manager owns,
unless force=true, which moves ownership. Updates (POST/PUT/merge patches) take ownership of the
leaves they change. managedFields are rendered as FieldsV1 like the real server's.

The controllers make status progress on a timer: Deployments/ReplicaSets/StatefulSets/DaemonSets
become available, Jobs complete, Pods run, CRDs become Established (and are then published in
discovery) — or fail, when the object carries the annotation fake.tagmoor.dev/fail: "true".
"""

import copy
import hashlib
import heapq
import itertools
import json
import threading
import time
import uuid

import fk_status as S
from fk_discovery import NO_GENERATION, crd_resources

FAIL_ANNOTATION = "fake.tagmoor.dev/fail"
DELAY_ANNOTATION = "fake.tagmoor.dev/delay"
SYSTEM_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "managedFields", "selfLink")
META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
              "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
              "annotations", "ownerReferences", "finalizers", "managedFields")
NO_GEN_EXTRA = {("coordination.k8s.io", "Lease"), ("rbac.authorization.k8s.io", "Role"),
                ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "RoleBinding"),
                ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("events.k8s.io", "Event")}
EVENT_HISTORY = 50000


def now_rfc3339(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t if t is not None else time.time()))


def ordered(obj):
    """Keys in the order the real server writes them: kind, apiVersion, metadata, spec, ..., status."""
    out = {}
    for k in ("kind", "apiVersion", "metadata", "spec"):
        if k in obj:
            out[k] = obj[k]
    for k, v in obj.items():
        if k not in out and k != "status":
            out[k] = v
    if "status" in obj:
        out["status"] = obj["status"]
    md = out.get("metadata")
    if isinstance(md, dict):
        m2 = {k: md[k] for k in META_ORDER if k in md}
        for k, v in md.items():
            if k not in m2:
                m2[k] = v
        out["metadata"] = m2
    return out


# ------------------------------------------------------------ paths

def leaf_paths(obj, prefix=()):
    out = set()
    for k, v in obj.items():
        p = prefix + (k,)
        if isinstance(v, dict) and v:
            out |= leaf_paths(v, p)
        else:
            out.add(p)
    return out


def _get(obj, path):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return None, False
        obj = obj[k]
    return obj, True


def _delete(obj, path):
    """Delete path from obj (in place), then empty parent maps that it leaves behind."""
    parents = []
    cur = obj
    for k in path[:-1]:
        if not isinstance(cur, dict) or k not in cur:
            return
        parents.append((cur, k))
        cur = cur[k]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
        for parent, k in reversed(parents):
            if isinstance(parent[k], dict) and not parent[k] and len(parents) > 0:
                del parent[k]
            else:
                break


def _merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def fields_v1(paths):
    root = {}
    for p in sorted(paths):
        cur = root
        for k in p:
            cur = cur.setdefault("f:" + k, {})
    return root


def paths_from_fields_v1(fv, prefix=()):
    out = set()
    for k, v in (fv or {}).items():
        if not k.startswith("f:"):
            continue
        p = prefix + (k[2:],)
        if v:
            sub = paths_from_fields_v1(v, p)
            out |= sub if sub else {p}
        else:
            out.add(p)
    return out


def _config_paths(obj, subresource):
    """The leaf paths a request body sets, without identity and server-owned fields."""
    paths = set()
    for p in leaf_paths(obj):
        if p[0] in ("apiVersion", "kind"):
            continue
        if p[0] == "metadata" and (len(p) < 2 or p[1] in ("name", "namespace") + SYSTEM_META):
            continue
        if subresource == "status" and p[0] != "status":
            continue
        paths.add(p)
    return paths


def _overlap(a, b):
    return a[:len(b)] == b or b[:len(a)] == a


def parse_duration(s):
    s = str(s).strip()
    try:
        if s.endswith("ms"):
            return float(s[:-2]) / 1000.0
        if s.endswith("s"):
            return float(s[:-1])
        if s.endswith("m"):
            return float(s[:-1]) * 60
        return float(s)
    except ValueError:
        return None


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (strategic merge patches are approximated by it)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif k.startswith("$"):
            continue  # strategic merge directives
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target, ops):
    """RFC 6902 add / remove / replace / test / copy / move."""
    doc = copy.deepcopy(target)

    def split(ptr):
        if ptr == "":
            return []
        if not ptr.startswith("/"):
            raise S.bad_request("invalid JSON pointer %r" % ptr)
        return [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]

    def walk(tokens):
        cur = doc
        for t in tokens[:-1]:
            if isinstance(cur, list):
                cur = cur[int(t)]
            elif isinstance(cur, dict) and t in cur:
                cur = cur[t]
            else:
                raise S.ApiError(422, "Invalid", "the server rejected our request due to an error in our request")
        return cur

    def get(tokens):
        cur = doc
        for t in tokens:
            cur = cur[int(t)] if isinstance(cur, list) else cur[t]
        return cur

    try:
        for op in ops:
            o, tokens = op.get("op"), split(op.get("path", ""))
            if o == "test":
                if get(tokens) != op.get("value"):
                    raise S.ApiError(422, "Invalid", "the server rejected our request due to an error in our request")
                continue
            if o in ("copy", "move"):
                val = copy.deepcopy(get(split(op.get("from", ""))))
                if o == "move":
                    ft = split(op["from"])
                    parent = walk(ft)
                    if isinstance(parent, list):
                        del parent[int(ft[-1])]
                    else:
                        del parent[ft[-1]]
                o, op = "add", {"value": val}
            parent = walk(tokens)
            key = tokens[-1]
            if isinstance(parent, list):
                idx = len(parent) if key == "-" else int(key)
                if o == "add":
                    parent.insert(idx, copy.deepcopy(op.get("value")))
                elif o == "remove":
                    del parent[idx]
                elif o == "replace":
                    parent[idx] = copy.deepcopy(op.get("value"))
            else:
                if o == "add" or (o == "replace" and key in parent):
                    parent[key] = copy.deepcopy(op.get("value"))
                elif o in ("remove", "replace"):
                    if key not in parent:
                        raise KeyError(key)
                    if o == "remove":
                        del parent[key]
                else:
                    raise S.bad_request("unknown JSON patch operation %r" % o)
    except S.ApiError:
        raise
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise S.ApiError(422, "Invalid", "the server rejected our request due to an error in our request: %s" % e)
    return doc


# ------------------------------------------------------------ the store

class Store:
    def __init__(self, discovery, delay=1.0, crd_delay=0.2):
        self.disc = discovery
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.objects = {}  # (group, resource, namespace, name) -> object
        self.rv = 100
        self.events = []   # (rv, type, group, resource, namespace, object)
        self.first_event_rv = 101
        self.delay = delay
        self.crd_delay = crd_delay
        self.timers = []
        self.seq = itertools.count()
        self.stopping = False
        self._ctl = threading.Thread(target=self._controller_loop, name="fakekube-controllers", daemon=True)
        self._ctl.start()
        self.reset()

    def reset(self):
        with self.lock:
            for (g, res, ns, name) in list(self.objects):
                if g == "apiextensions.k8s.io" and res == "customresourcedefinitions":
                    self.disc.set_crd(name, [])
            self.objects = {}
            self.timers = []
            ns_res = self.disc.lookup("", "v1", "namespaces")
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.create(ns_res, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                            "kube-apiserver", False)

    # ---------------------------------------------------------- helpers
    def _key(self, r, ns, name):
        return (r.group, r.name, ns if r.namespaced else "", name)

    def _out(self, r, obj):
        o = dict(obj)
        o["apiVersion"] = r.api_version
        o["kind"] = r.kind
        return ordered(o)

    def _has_generation(self, r):
        return (r.group, r.kind) not in NO_GENERATION and (r.group, r.kind) not in NO_GEN_EXTRA

    def _has_status_sub(self, r):
        return "status" in r.subresources

    def _crd_for(self, r):
        if not r.crd:
            return None
        return self.objects.get(("apiextensions.k8s.io", "customresourcedefinitions", "", r.crd))

    def _commit(self, r, key, obj, etype):
        """Store obj (or delete when etype == DELETED) with a new resourceVersion; emit the event."""
        self.rv += 1
        if etype != "DELETED":
            md = dict(obj["metadata"])
            md["resourceVersion"] = str(self.rv)
            obj = dict(obj)
            obj["metadata"] = md
            self.objects[key] = obj
        else:
            self.objects.pop(key, None)
            md = dict(obj["metadata"])
            md["resourceVersion"] = str(self.rv)
            obj = dict(obj)
            obj["metadata"] = md
        self.events.append((self.rv, etype, key[0], key[1], key[2], obj))
        if len(self.events) > EVENT_HISTORY:
            cut = len(self.events) - EVENT_HISTORY // 2
            self.first_event_rv = self.events[cut][0]
            del self.events[:cut]
        self.cond.notify_all()
        return obj

    def _check_namespace(self, r, ns, name=""):
        if r.namespaced:
            if not ns:
                raise S.bad_request("the server could not find the requested resource (namespace required)")
            nso = self.objects.get(("", "namespaces", "", ns))
            if nso is None:
                raise S.not_found("namespaces", "", ns)
            if nso["metadata"].get("deletionTimestamp"):
                raise S.ApiError(403, "Forbidden", "%s \"%s\" is forbidden: unable to create new content in namespace "
                                 "%s because it is being terminated" % (S.qualified(r.name, r.group), name, ns),
                                 dict({"name": name}, **({"group": r.group} if r.group else {}), kind=r.name))

    def _identity(self, r, ns, name, body):
        if not isinstance(body, dict):
            raise S.bad_request("the body of the request was not a Kubernetes object")
        md = body.get("metadata")
        if md is None:
            md = {}
        if not isinstance(md, dict):
            raise S.bad_request("metadata must be an object")
        bname = md.get("name")
        if name is not None and bname not in (None, "") and bname != name:
            raise S.bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (bname, name))
        bns = md.get("namespace")
        if r.namespaced and bns not in (None, "") and bns != ns:
            raise S.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        av, kind = body.get("apiVersion"), body.get("kind")
        if kind not in (None, "") and kind != r.kind:
            raise S.bad_request("%s in version \"%s\" cannot be handled as a %s: the kind %s does not match"
                                % (kind, r.version, r.kind, kind))
        if av not in (None, "") and av != r.api_version:
            raise S.bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                                % (av, r.api_version))

    def _validate(self, r, obj, creating):
        name = obj["metadata"].get("name", "")
        errs = S.name_errors(r.group, r.kind, name) if creating else []
        errs += S.workload_errors(r.group, r.kind, obj)
        crd = self._crd_for(r)
        if crd is not None:
            schema = self._crd_schema(crd, r.version)
            if schema is not None:
                errs += S.schema_errors(schema, obj)
        if errs:
            raise S.invalid(r.kind, r.group, name, errs)

    @staticmethod
    def _crd_schema(crd, version):
        for v in (crd.get("spec") or {}).get("versions") or []:
            if v.get("name") == version:
                return ((v.get("schema") or {}).get("openAPIV3Schema"))
        return None

    def _default(self, r, obj, old):
        """The handful of defaults the real registries set that clients look at."""
        g, k = r.group, r.kind
        spec = obj.get("spec")
        if g == "apps" and k in ("Deployment", "StatefulSet", "ReplicaSet") and isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            if k == "Deployment":
                spec.setdefault("progressDeadlineSeconds", 600)
                spec.setdefault("revisionHistoryLimit", 10)
        elif g == "batch" and k == "Job" and isinstance(spec, dict):
            spec.setdefault("parallelism", 1)
            spec.setdefault("completions", 1)
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
        elif g == "" and k == "Service":
            if not isinstance(spec, dict):
                spec = obj["spec"] = {}
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") in (None, ""):
                prev = ((old or {}).get("spec") or {}).get("clusterIP")
                if prev:
                    spec["clusterIP"] = prev
                elif spec["type"] != "ExternalName":
                    h = int(hashlib.sha1(obj["metadata"]["name"].encode()).hexdigest(), 16)
                    spec["clusterIP"] = "10.96.%d.%d" % ((h >> 8) % 256, h % 254 + 1)
            if spec.get("clusterIP") and spec["clusterIP"] != "None":
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("sessionAffinity", "None")
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
            ports = spec.get("ports")
            if isinstance(ports, list):
                newports = []
                for p in ports:
                    if isinstance(p, dict):
                        p = dict(p)
                        p.setdefault("protocol", "TCP")
                        if "port" in p:
                            p.setdefault("targetPort", p["port"])
                    newports.append(p)
                spec["ports"] = newports
            obj.setdefault("status", {"loadBalancer": {}})
        elif g == "" and k == "Namespace":
            if not isinstance(spec, dict):
                obj["spec"] = {}
            obj["spec"].setdefault("finalizers", ["kubernetes"])
            if not obj["metadata"].get("deletionTimestamp"):
                obj["status"] = {"phase": "Active"}
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif g == "apiextensions.k8s.io" and k == "CustomResourceDefinition" and isinstance(spec, dict):
            spec.setdefault("conversion", {"strategy": "None"})
            names = spec.get("names")
            if isinstance(names, dict) and names.get("kind"):
                names.setdefault("listKind", names["kind"] + "List")
                names.setdefault("singular", names["kind"].lower())
            if "status" not in obj:
                storage = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
                obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""},
                                 "storedVersions": storage}

    def _spec_part(self, obj):
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    def _finish(self, r, new, old, manager, operation, paths_changed, subresource, dry_run, owned=None):
        """Common tail of every write: server metadata, generation, managedFields, commit."""
        md = new["metadata"]
        t = now_rfc3339()
        if old is None:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = t
            if self._has_generation(r):
                md["generation"] = 1
        else:
            omd = old["metadata"]
            for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if k in omd:
                    md[k] = omd[k]
            if self._has_generation(r) and self._spec_part(new) != self._spec_part(old):
                md["generation"] = omd.get("generation", 0) + 1
        # managed fields
        entries = [dict(e) for e in (old["metadata"].get("managedFields") or [])] if old else []
        sets = [(e, paths_from_fields_v1(e.get("fieldsV1"))) for e in entries]
        mine = None
        for e, ps in sets:
            if e.get("manager") == manager and e.get("operation") == operation and \
                    e.get("subresource", "") == (subresource or ""):
                mine = (e, ps)
        if operation == "Apply":
            newset = set(owned)
            others_drop = set(paths_changed)  # forced conflicts
        else:
            newset = (mine[1] if mine else set()) | set(paths_changed)
            others_drop = set(paths_changed)
        result = []
        for e, ps in sets:
            if mine is not None and e is mine[0]:
                continue
            ps = {p for p in ps if not any(_overlap(p, q) for q in others_drop)}
            if ps:
                e["fieldsV1"] = fields_v1(ps)
                result.append(e)
        changed_obj = old is None or new != old
        if newset:
            entry = {"manager": manager, "operation": operation, "apiVersion": r.api_version,
                     "time": (mine[0].get("time") if (mine and not changed_obj and mine[1] == newset) else t),
                     "fieldsType": "FieldsV1", "fieldsV1": fields_v1(newset)}
            if subresource:
                entry["subresource"] = subresource
            result.append(entry)
        result.sort(key=lambda e: (e.get("operation") != "Apply", e.get("manager", "")))
        if result:
            md["managedFields"] = result
        else:
            md.pop("managedFields", None)
        if old is not None and new == old:
            return self._out(r, old), False  # no-op: nothing written, resourceVersion unchanged
        new = ordered(new)
        if dry_run:
            if old is not None:
                md["resourceVersion"] = old["metadata"].get("resourceVersion")
            return self._out(r, new), True
        key = self._key(r, md.get("namespace", ""), md["name"])
        stored = self._commit(r, key, new, "ADDED" if old is None else "MODIFIED")
        self._after_write(r, key, stored, old)
        return self._out(r, stored), True

    # ---------------------------------------------------------- reads
    def get(self, r, ns, name):
        with self.lock:
            obj = self.objects.get(self._key(r, ns, name))
            if obj is None:
                raise S.not_found(r.name, r.group, name)
            return self._out(r, obj)

    def list(self, r, ns, label_reqs, field_reqs):
        with self.lock:
            items = []
            for (g, res, ons, name), obj in self.objects.items():
                if g != r.group or res != r.name:
                    continue
                if r.namespaced and ns and ons != ns:
                    continue
                if not S.labels_match(label_reqs, (obj["metadata"].get("labels") or {})):
                    continue
                if not S.fields_match(field_reqs, obj):
                    continue
                items.append(obj)
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return [self._out(r, o) for o in items], str(self.rv)

    # ---------------------------------------------------------- writes
    def create(self, r, ns, body, manager, dry_run):
        with self.lock:
            self._identity(r, ns, None, body)
            obj = copy.deepcopy(body)
            md = obj.setdefault("metadata", {})
            for k in SYSTEM_META:
                md.pop(k, None)
            if not md.get("name") and md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            if r.namespaced:
                md["namespace"] = ns
            else:
                md.pop("namespace", None)
            obj["apiVersion"], obj["kind"] = r.api_version, r.kind
            self._validate(r, obj, True)
            self._check_namespace(r, ns, md["name"])
            if self._key(r, ns, md["name"]) in self.objects:
                raise S.already_exists(r.name, r.group, md["name"])
            if self._has_status_sub(r):
                obj.pop("status", None)
            obj = self._prune(r, obj)
            paths = _config_paths(obj, "")
            self._default(r, obj, None)
            return self._finish(r, obj, None, manager, "Update", paths, "", dry_run)[0]

    def update(self, r, ns, name, body, manager, dry_run, subresource=""):
        with self.lock:
            self._identity(r, ns, name, body)
            key = self._key(r, ns, name)
            old = self.objects.get(key)
            if old is None:
                raise S.not_found(r.name, r.group, name)
            brv = (body.get("metadata") or {}).get("resourceVersion")
            if brv not in (None, "") and brv != old["metadata"].get("resourceVersion"):
                raise S.conflict_rv(r.name, r.group, name)
            new = self._replace_part(r, old, copy.deepcopy(body), subresource)
            return self._write_update(r, old, new, manager, subresource, dry_run)

    def _replace_part(self, r, old, body, subresource):
        """The new object when body replaces the main resource or the status subresource."""
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
            return new
        new = body
        md = new.setdefault("metadata", {})
        md["name"] = old["metadata"]["name"]
        if "namespace" in old["metadata"]:
            md["namespace"] = old["metadata"]["namespace"]
        for k in SYSTEM_META:
            md.pop(k, None)
        new["apiVersion"], new["kind"] = r.api_version, r.kind
        if self._has_status_sub(r):
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        return new

    def _write_update(self, r, old, new, manager, subresource, dry_run):
        self._validate(r, new, False)
        new = self._prune(r, new)
        self._default(r, new, old)
        cmp_old = {k: v for k, v in old.items()}
        cmp_old["metadata"] = {k: v for k, v in old["metadata"].items() if k not in SYSTEM_META}
        changed = {p for p in _config_paths(new, subresource)
                   if _get(new, p) != _get(cmp_old, p)}
        for k in SYSTEM_META:
            if k in old["metadata"]:
                new["metadata"][k] = old["metadata"][k]
        new["metadata"].pop("managedFields", None)
        if "managedFields" in old["metadata"]:
            new["metadata"]["managedFields"] = old["metadata"]["managedFields"]
        new["metadata"].pop("resourceVersion", None)
        old_cmp = dict(old)
        old_cmp["metadata"] = {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}
        if new == old_cmp:
            return self._out(r, old)
        return self._finish(r, new, old, manager, "Update", changed, subresource, dry_run)[0]

    def patch(self, r, ns, name, ptype, patch, manager, dry_run, subresource=""):
        with self.lock:
            key = self._key(r, ns, name)
            old = self.objects.get(key)
            if old is None:
                raise S.not_found(r.name, r.group, name)
            base = copy.deepcopy(old)
            if ptype == "json":
                new = json_patch(base, patch)
            else:
                if not isinstance(patch, dict):
                    raise S.bad_request("the body of the request was not a JSON object")
                prv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch.get("metadata"), dict) else None
                if prv not in (None, "") and prv != old["metadata"].get("resourceVersion"):
                    raise S.conflict_rv(r.name, r.group, name)
                new = merge_patch(base, patch)
            if not isinstance(new, dict):
                raise S.bad_request("the patch did not produce an object")
            self._identity(r, ns, name, new)
            if subresource == "status":
                new = self._replace_part(r, old, new, "status")
            else:
                new = self._replace_part(r, old, new, "")
            return self._write_update(r, old, new, manager, subresource, dry_run)

    def apply(self, r, ns, name, body, manager, force, dry_run, subresource=""):
        """Server-side apply: returns (object, created)."""
        with self.lock:
            self._identity(r, ns, name, body)
            if not body.get("apiVersion") or not body.get("kind"):
                raise S.bad_request("apiVersion and kind are required for apply")
            key = self._key(r, ns, name)
            old = self.objects.get(key)
            cfg = copy.deepcopy(body)
            cmd = cfg.setdefault("metadata", {})
            for k in SYSTEM_META:
                cmd.pop(k, None)
            cmd["name"] = name
            if r.namespaced:
                cmd["namespace"] = ns
            else:
                cmd.pop("namespace", None)
            if subresource != "status" and self._has_status_sub(r):
                cfg.pop("status", None)
            if subresource == "status":
                cfg = {k: v for k, v in cfg.items() if k in ("apiVersion", "kind", "metadata", "status")}
            cfg = self._prune(r, cfg)
            owned = _config_paths(cfg, subresource)
            if old is None:
                if subresource:
                    raise S.not_found(r.name, r.group, name)
                self._validate(r, cfg, True)
                self._check_namespace(r, ns, name)
                new = copy.deepcopy(cfg)
                new["apiVersion"], new["kind"] = r.api_version, r.kind
                self._default(r, new, None)
                return self._finish(r, new, None, manager, "Apply", set(), "", dry_run, owned)[0], True
            # conflicts with other managers
            entries = old["metadata"].get("managedFields") or []
            others, prev_mine = [], set()
            for e in entries:
                ps = paths_from_fields_v1(e.get("fieldsV1"))
                if e.get("manager") == manager and e.get("operation") == "Apply" and \
                        e.get("subresource", "") == (subresource or ""):
                    prev_mine = ps
                else:
                    others.append((e, ps))
            conflicts, forced = [], set()
            for p in sorted(owned):
                newv, _ = _get(cfg, p)
                livev, have = _get(old, p)
                if have and livev == newv:
                    continue
                for e, ps in others:
                    for q in ps:
                        if _overlap(p, q):
                            qv, qhave = _get(old, q)
                            if q != p and not qhave:
                                continue
                            conflicts.append((e.get("manager", ""), q))
                            forced.add(q)
            if conflicts and not force:
                seen, uniq = set(), []
                for c in conflicts:
                    if c not in seen:
                        seen.add(c)
                        uniq.append(c)
                raise S.apply_conflict(uniq)
            new = copy.deepcopy(old)
            others_paths = set()
            for e, ps in others:
                others_paths |= {q for q in ps if q not in forced}
            for p in sorted(prev_mine - owned, key=len, reverse=True):
                if p in others_paths or any(_overlap(p, q) for q in others_paths if len(q) > len(p)):
                    continue
                _delete(new, p)
            _merge(new, {k: v for k, v in cfg.items() if k != "metadata"})
            _merge(new["metadata"], {k: v for k, v in cfg["metadata"].items() if k not in ("name", "namespace")})
            if subresource != "status" and self._has_status_sub(r) and "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            self._validate(r, new, False)
            self._default(r, new, old)
            return self._finish(r, new, old, manager, "Apply", forced, subresource, dry_run, owned)[0], False

    def _prune(self, r, obj):
        crd = self._crd_for(r)
        if crd is None:
            return obj
        schema = self._crd_schema(crd, r.version)
        if not schema:
            return obj
        pruned = S.prune(schema, {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}, False)
        out = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
        out.update(pruned if isinstance(pruned, dict) else {})
        return out

    def delete(self, r, ns, name, dry_run, precondition_uid=None, precondition_rv=None, propagation=None):
        with self.lock:
            key = self._key(r, ns, name)
            obj = self.objects.get(key)
            if obj is None:
                raise S.not_found(r.name, r.group, name)
            md = obj["metadata"]
            if precondition_uid and precondition_uid != md.get("uid"):
                raise S.ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition failed: '
                                 "UID in precondition: %s, UID in object meta: %s"
                                 % (S.qualified(r.name, r.group), name, precondition_uid, md.get("uid")),
                                 {"name": name, "group": r.group, "kind": r.name} if r.group else
                                 {"name": name, "kind": r.name})
            if precondition_rv and precondition_rv != md.get("resourceVersion"):
                raise S.conflict_rv(r.name, r.group, name)
            if self._terminates(r):
                # Namespaces and CRDs are deleted like the real ones: marked (Terminating,
                # deletionTimestamp), their content removed by a controller, then gone.
                if md.get("deletionTimestamp"):
                    return self._out(r, obj)
                new = dict(obj)
                new["metadata"] = dict(md)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                if r.kind == "Namespace":
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    new["status"] = {"phase": "Terminating"}
                else:
                    st = dict(obj.get("status") or {})
                    st["conditions"] = list(st.get("conditions") or []) + [
                        {"type": "Terminating", "status": "True", "lastTransitionTime": now_rfc3339(),
                         "reason": "InstanceDeletionPending",
                         "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon"}]
                    new["status"] = st
                    new["metadata"]["finalizers"] = ["customresourcecleanup.apiextensions.k8s.io"]
                if dry_run:
                    return self._out(r, ordered(new))
                stored = self._commit(r, key, ordered(new), "MODIFIED")
                uid = md.get("uid")
                self._schedule(self.crd_delay, lambda: self._finish_termination(r, key, uid))
                return self._out(r, stored)
            if not propagation and (r.group, r.kind) == ("batch", "Job"):
                propagation = "Orphan"  # batch/v1 Jobs orphan their pods unless told otherwise
            if propagation in ("Orphan", "Foreground"):
                # The garbage collector's finalizer holds the object for a moment; the answer is
                # the object marked for deletion, as from the real server.
                if md.get("deletionTimestamp"):
                    return self._out(r, obj)
                new = dict(obj)
                new["metadata"] = dict(md)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"]["finalizers"] = list(md.get("finalizers") or []) + \
                    ["orphan" if propagation == "Orphan" else "foregroundDeletion"]
                if "generation" in md:
                    new["metadata"]["generation"] = md["generation"] + 1
                if dry_run:
                    return self._out(r, ordered(new))
                stored = self._commit(r, key, ordered(new), "MODIFIED")
                uid = md.get("uid")
                self._schedule(min(self.crd_delay, 0.1), lambda: self._finish_termination(r, key, uid))
                return self._out(r, stored)
            if not dry_run:
                self._delete_key(r, key)
            return self._deleted_status(r, obj)

    @staticmethod
    def _terminates(r):
        return (r.group, r.name) in (("", "namespaces"), ("apiextensions.k8s.io", "customresourcedefinitions"))

    def _finish_termination(self, r, key, uid):
        obj = self.objects.get(key)
        if obj is not None and obj["metadata"].get("uid") == uid:
            self._delete_key(r, key)

    def _deleted_status(self, r, obj):
        d = {"name": obj["metadata"]["name"]}
        if r.group:
            d["group"] = r.group
        d["kind"] = r.name
        d["uid"] = obj["metadata"].get("uid", "")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d}

    def _delete_key(self, r, key):
        obj = self.objects.get(key)
        if obj is None:
            return
        if r.group == "" and r.name == "namespaces":
            for k in [k for k in self.objects if k[2] == key[3] and k[2] != ""]:
                res = self._resource_for_key(k)
                if res is not None:
                    self._delete_key(res, k)
                else:
                    self._commit(None, k, self.objects[k], "DELETED")
        if r.group == "apiextensions.k8s.io" and r.name == "customresourcedefinitions":
            spec = obj.get("spec") or {}
            for k in [k for k in self.objects if k[0] == spec.get("group") and k[1] == (spec.get("names") or {}).get("plural")]:
                self._commit(None, k, self.objects[k], "DELETED")
            self.disc.set_crd(key[3], [])
        self._commit(r, key, obj, "DELETED")

    def _resource_for_key(self, key):
        for res in self.disc.index.values():
            if res.group == key[0] and res.name == key[1]:
                return res
        return None

    def delete_collection(self, r, ns, label_reqs, field_reqs, dry_run):
        with self.lock:
            items, _ = self.list(r, ns, label_reqs, field_reqs)
            if not dry_run:
                for o in items:
                    self._delete_key(r, self._key(r, o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            rv = str(self.rv)
        return {"kind": r.kind + "List", "apiVersion": r.api_version, "metadata": {"resourceVersion": rv},
                "items": items}

    def dump(self):
        with self.lock:
            out = []
            for key, obj in sorted(self.objects.items()):
                out.append(ordered(obj))
            return {"resourceVersion": str(self.rv), "items": out}

    # ---------------------------------------------------------- watch
    def events_since(self, rv):
        """Events with resourceVersion > rv (caller holds the lock)."""
        if rv + 1 < self.first_event_rv and self.events:
            raise S.too_old(rv)
        lo, hi = 0, len(self.events)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.events[mid][0] <= rv:
                lo = mid + 1
            else:
                hi = mid
        return self.events[lo:]

    # ---------------------------------------------------------- controllers
    def _schedule(self, delay, fn):
        heapq.heappush(self.timers, (time.monotonic() + max(0.0, delay), next(self.seq), fn))
        self.cond.notify_all()

    def _controller_loop(self):
        with self.lock:
            while not self.stopping:
                now = time.monotonic()
                if self.timers and self.timers[0][0] <= now:
                    _, _, fn = heapq.heappop(self.timers)
                    try:
                        fn()
                    except Exception as e:  # a controller bug must not kill the server
                        print("fakekube: controller error: %r" % (e,), flush=True)
                    continue
                timeout = (self.timers[0][0] - now) if self.timers else 1.0
                self.cond.wait(min(timeout, 1.0))

    def _delay_for(self, obj, default):
        ann = obj["metadata"].get("annotations") or {}
        if DELAY_ANNOTATION in ann:
            d = parse_duration(ann[DELAY_ANNOTATION])
            if d is not None:
                return d
        return default

    @staticmethod
    def _fails(obj):
        ann = obj["metadata"].get("annotations") or {}
        return str(ann.get(FAIL_ANNOTATION, "")).lower() in ("true", "yes", "1")

    def _set_status(self, r, key, uid, generation, status_fn):
        """Timer body: set a status if the object is still the one the timer was made for."""
        obj = self.objects.get(key)
        if obj is None or obj["metadata"].get("uid") != uid:
            return
        if generation is not None and obj["metadata"].get("generation") != generation:
            return
        status = status_fn(obj)
        if status is None or status == obj.get("status"):
            return
        new = dict(obj)
        new["status"] = status
        new["metadata"] = dict(obj["metadata"])
        self._commit(r, key, new, "MODIFIED")

    def _after_write(self, r, key, obj, old):
        g, k = r.group, r.kind
        md = obj["metadata"]
        uid, gen = md.get("uid"), md.get("generation")
        spec_changed = old is None or old["metadata"].get("generation") != gen
        if g == "apiextensions.k8s.io" and k == "CustomResourceDefinition":
            if spec_changed or old is None:
                self._schedule(self._delay_for(obj, self.crd_delay),
                               lambda: self._establish_crd(r, key, uid))
            return
        if not spec_changed:
            return
        delay = self._delay_for(obj, self.delay)
        fail = self._fails(obj)
        progress, final = None, None
        if g == "apps" and k == "Deployment":
            progress, final = _deployment_progressing, (_deployment_failed if fail else _deployment_available)
        elif g == "apps" and k in ("ReplicaSet", "StatefulSet", "DaemonSet"):
            progress = _replicas_progressing(k)
            final = None if fail else _replicas_ready(k)
        elif g == "batch" and k == "Job":
            if old is not None:
                return
            progress, final = _job_active, (_job_failed if fail else _job_complete)
        elif g == "" and k == "Pod":
            if old is not None:
                return
            progress, final = _pod_pending, (_pod_failed if fail else _pod_running)
        else:
            return
        if progress:
            self._schedule(0, lambda: self._set_status(r, key, uid, gen, progress))
        if final:
            self._schedule(delay, lambda: self._set_status(r, key, uid, gen, final))

    def _establish_crd(self, r, key, uid):
        obj = self.objects.get(key)
        if obj is None or obj["metadata"].get("uid") != uid:
            return
        spec = obj.get("spec") or {}
        names = dict(spec.get("names") or {})
        t = now_rfc3339()
        conds = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
        status = dict(obj.get("status") or {})
        status["conditions"] = [
            conds.get("NamesAccepted") or {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t,
                                           "reason": "NoConflicts", "message": "no conflicts found"},
            conds.get("Established") or {"type": "Established", "status": "True", "lastTransitionTime": t,
                                         "reason": "InitialNamesAccepted",
                                         "message": "the initial names have been accepted"}]
        status["acceptedNames"] = names
        stored = list(status.get("storedVersions") or [])
        for v in spec.get("versions") or []:
            if v.get("storage") and v.get("name") not in stored:
                stored.append(v.get("name"))
        status["storedVersions"] = stored
        self.disc.set_crd(key[3], crd_resources(obj))
        if status != obj.get("status"):
            new = dict(obj)
            new["status"] = status
            new["metadata"] = dict(obj["metadata"])
            self._commit(r, key, new, "MODIFIED")


# ------------------------------------------------------------ status shapes

def _rs_name(obj):
    tmpl = json.dumps((obj.get("spec") or {}).get("template"), sort_keys=True)
    return "%s-%s" % (obj["metadata"]["name"], hashlib.sha1(tmpl.encode()).hexdigest()[:10])


def _replicas(obj):
    r = (obj.get("spec") or {}).get("replicas", 1)
    return r if isinstance(r, int) else 1


def _cond(ctype, status, reason, message, t, update=True):
    c = {"type": ctype, "status": status}
    if update:
        c["lastUpdateTime"] = t
    c["lastTransitionTime"] = t
    c["reason"] = reason
    c["message"] = message
    return c


def _deployment_progressing(obj):
    n, t = _replicas(obj), now_rfc3339()
    st = {"observedGeneration": obj["metadata"].get("generation", 1), "replicas": n, "updatedReplicas": n}
    if n == 0:
        return _deployment_available(obj)
    st["unavailableReplicas"] = n
    st["conditions"] = [
        _cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", t),
        _cond("Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "%s" is progressing.' % _rs_name(obj), t)]
    return st


def _deployment_available(obj):
    n, t = _replicas(obj), now_rfc3339()
    st = {"observedGeneration": obj["metadata"].get("generation", 1), "replicas": n, "updatedReplicas": n,
          "readyReplicas": n, "availableReplicas": n}
    if n == 0:
        st = {"observedGeneration": obj["metadata"].get("generation", 1)}
    st["conditions"] = [
        _cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", t),
        _cond("Progressing", "True", "NewReplicaSetAvailable",
              'ReplicaSet "%s" has successfully progressed.' % _rs_name(obj), t)]
    return st


def _deployment_failed(obj):
    n, t = _replicas(obj), now_rfc3339()
    return {"observedGeneration": obj["metadata"].get("generation", 1), "replicas": n, "updatedReplicas": n,
            "unavailableReplicas": n,
            "conditions": [
                _cond("Available", "False", "MinimumReplicasUnavailable",
                      "Deployment does not have minimum availability.", t),
                _cond("Progressing", "False", "ProgressDeadlineExceeded",
                      'ReplicaSet "%s" has timed out progressing.' % _rs_name(obj), t)]}


def _replicas_progressing(kind):
    def fn(obj):
        n, gen = _replicas(obj), obj["metadata"].get("generation", 1)
        if kind == "DaemonSet":
            return {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1,
                    "numberReady": 0, "observedGeneration": gen, "updatedNumberScheduled": 1,
                    "numberUnavailable": 1}
        if kind == "StatefulSet":
            return {"observedGeneration": gen, "replicas": n, "currentReplicas": 0, "updatedReplicas": 0,
                    "currentRevision": _rs_name(obj), "updateRevision": _rs_name(obj), "collisionCount": 0,
                    "availableReplicas": 0}
        return {"replicas": n, "fullyLabeledReplicas": n, "observedGeneration": gen}
    return fn


def _replicas_ready(kind):
    def fn(obj):
        n, gen = _replicas(obj), obj["metadata"].get("generation", 1)
        if kind == "DaemonSet":
            return {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1,
                    "numberReady": 1, "observedGeneration": gen, "updatedNumberScheduled": 1,
                    "numberAvailable": 1}
        if kind == "StatefulSet":
            return {"observedGeneration": gen, "replicas": n, "readyReplicas": n, "currentReplicas": n,
                    "updatedReplicas": n, "currentRevision": _rs_name(obj), "updateRevision": _rs_name(obj),
                    "collisionCount": 0, "availableReplicas": n}
        return {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n, "availableReplicas": n,
                "observedGeneration": gen}
    return fn


def _job_active(obj):
    st = dict(obj.get("status") or {})
    st.update({"startTime": st.get("startTime") or now_rfc3339(), "active": 1, "terminating": 0,
               "uncountedTerminatedPods": {}, "ready": 0})
    return st


def _job_complete(obj):
    t = now_rfc3339()
    start = (obj.get("status") or {}).get("startTime") or t
    return {"conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": t, "lastTransitionTime": t,
         "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
        {"type": "Complete", "status": "True", "lastProbeTime": t, "lastTransitionTime": t,
         "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}],
        "startTime": start, "completionTime": t, "succeeded": 1, "terminating": 0,
        "uncountedTerminatedPods": {}, "ready": 0}


def _job_failed(obj):
    t = now_rfc3339()
    start = (obj.get("status") or {}).get("startTime") or t
    return {"conditions": [
        {"type": "FailureTarget", "status": "True", "lastProbeTime": t, "lastTransitionTime": t,
         "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
        {"type": "Failed", "status": "True", "lastProbeTime": t, "lastTransitionTime": t,
         "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}],
        "startTime": start, "failed": 1, "terminating": 0, "uncountedTerminatedPods": {}, "ready": 0}


def _pod_pending(obj):
    return {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}],
        "qosClass": "BestEffort"}


def _pod_running(obj):
    t = now_rfc3339()
    conds = [{"type": c, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
             for c in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {"phase": "Running", "conditions": conds, "hostIP": "10.244.0.1", "podIP": "10.244.0.10",
            "startTime": t, "qosClass": "BestEffort"}


def _pod_failed(obj):
    t = now_rfc3339()
    return {"phase": "Failed", "conditions": [
        {"type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": t,
         "reason": "PodFailed"}], "startTime": t, "qosClass": "BestEffort"}
