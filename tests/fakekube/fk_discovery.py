"""fk_discovery — the fake API server's resource registry, discovery documents and OpenAPI.

The registry is built from the real discovery documents in
../shared/fixtures/kubernetes/discovery: the legacy per-group-version APIResourceLists where a file
exists, the aggregated apidiscovery.k8s.io/v2 document for the group versions that have no legacy
file. Fixture files are served byte for byte while no CRD changes what they answer; a CRD that
became Established adds its group/version/resource to /apis, /apis/GROUP, /apis/GROUP/VERSION and
to the aggregated document. /openapi/v3 publishes, per group version, one PATCH operation per
resource carrying x-kubernetes-group-version-kind and the dryRun/fieldManager/fieldValidation/force
query parameters: that is what kubectl's QueryParamVerifierV3 reads to decide that the server
validates fields itself (kubectl then sends fieldValidation=Strict and skips client-side schemas).
/openapi/v2 is a minimal valid document (protobuf for kubectl < 1.27, which downloads it for
client-side validation and skips kinds it does not describe).
"""

import copy
import json
import os

AGG_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGG_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fakekube", "gitCommit":
                  "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                  "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
                  "platform": "linux/amd64"}

# Kinds whose objects carry metadata.generation (the core group's plain data kinds do not).
NO_GENERATION = {("", k) for k in ("ConfigMap", "Secret", "Namespace", "Service", "ServiceAccount",
                                   "Endpoints", "Event", "LimitRange", "ResourceQuota", "Node",
                                   "PersistentVolume", "PersistentVolumeClaim", "PodTemplate")}

_PATCH_PARAMS = [{"name": n, "in": "query", "schema": {"type": t}, "uniqueItems": True}
                 for n, t in (("dryRun", "string"), ("fieldManager", "string"),
                              ("fieldValidation", "string"), ("force", "boolean"))]


class Resource:
    """One resource of one group version."""

    __slots__ = ("group", "version", "name", "kind", "namespaced", "verbs", "singular",
                 "short_names", "categories", "subresources", "crd")

    def __init__(self, group, version, name, kind, namespaced, verbs, singular="",
                 short_names=None, categories=None, subresources=None, crd=None):
        self.group, self.version, self.name, self.kind = group, version, name, kind
        self.namespaced, self.verbs, self.singular = namespaced, list(verbs), singular or kind.lower()
        self.short_names = list(short_names or [])
        self.categories = list(categories or [])
        self.subresources = dict(subresources or {})  # name -> {"kind":..., "verbs": [...]}
        self.crd = crd  # the CRD name when the resource comes from a CRD

    @property
    def api_version(self):
        return self.group + "/" + self.version if self.group else self.version

    def legacy(self):
        out = [{"name": self.name, "singularName": self.singular, "namespaced": self.namespaced,
                "kind": self.kind, "verbs": self.verbs}]
        if self.short_names:
            out[0]["shortNames"] = self.short_names
        if self.categories:
            out[0]["categories"] = self.categories
        for sub, info in sorted(self.subresources.items()):
            out.append({"name": self.name + "/" + sub, "singularName": "", "namespaced": self.namespaced,
                        "kind": info["kind"], "verbs": info["verbs"]})
        return out

    def aggregated(self):
        r = {"resource": self.name,
             "responseKind": {"group": "", "version": "", "kind": self.kind},
             "scope": "Namespaced" if self.namespaced else "Cluster",
             "singularResource": self.singular, "verbs": self.verbs}
        if self.short_names:
            r["shortNames"] = self.short_names
        if self.categories:
            r["categories"] = self.categories
        if self.subresources:
            r["subresources"] = [{"subresource": s, "responseKind": {"group": "", "version": "", "kind": i["kind"]},
                                  "verbs": i["verbs"]} for s, i in sorted(self.subresources.items())]
        return r


class Discovery:
    def __init__(self, fixtures_dir):
        self.dir = fixtures_dir
        self.raw = {}  # request path -> bytes of the fixture answering it
        for f in os.listdir(fixtures_dir):
            if f.endswith(".json"):
                with open(os.path.join(fixtures_dir, f), "rb") as fh:
                    data = fh.read()
                if f == "aggregated_v2.json":
                    self.raw_aggregated = data
                else:
                    self.raw["/" + f[:-5].replace("__", "/")] = data
        self.aggregated = json.loads(self.raw_aggregated)
        self.group_list = json.loads(self.raw["/apis"])
        self.builtin = {}   # (group, version) -> [Resource]
        self.group_versions = {}  # group -> [versions], preferred first
        self._load()
        self.crds = {}      # crd name -> [Resource] while Established
        self.crd_groups = {}  # group -> [versions]
        self.generation = 0  # bumps when a CRD changes discovery

    # ------------------------------------------------------------ loading
    def _load(self):
        core = json.loads(self.raw["/api/v1"])
        self.builtin[("", "v1")] = self._from_legacy("", "v1", core)
        self.group_versions[""] = ["v1"]
        for g in self.group_list["groups"]:
            self.group_versions[g["name"]] = [v["version"] for v in g["versions"]]
        for item in self.aggregated["items"]:
            name = item["metadata"]["name"]
            known = self.group_versions.setdefault(name, [])
            known.extend(v["version"] for v in item["versions"] if v["version"] not in known)
            for v in item["versions"]:
                key = (name, v["version"])
                path = "/apis/%s/%s" % key
                if path in self.raw:
                    continue
                self.builtin[key] = [self._from_aggregated(name, v["version"], r) for r in v["resources"]]
        for path, data in self.raw.items():
            parts = path.strip("/").split("/")
            if parts[0] == "apis" and len(parts) == 3:
                self.builtin[(parts[1], parts[2])] = self._from_legacy(parts[1], parts[2], json.loads(data))
        # apis.json comes from another commit than the per-version files: a version it lists
        # without any resource document serves the resources of the group's other version.
        for g, vers in self.group_versions.items():
            donor = next((v for v in vers if (g, v) in self.builtin), None)
            for v in vers:
                if (g, v) not in self.builtin and donor is not None:
                    self.builtin[(g, v)] = [Resource(g, v, r.name, r.kind, r.namespaced, r.verbs, r.singular,
                                                     r.short_names, r.categories, r.subresources)
                                            for r in self.builtin[(g, donor)]]
        self.index = {}
        self._reindex()

    @staticmethod
    def _from_legacy(group, version, doc):
        top, subs = {}, {}
        for r in doc["resources"]:
            if "/" in r["name"]:
                base, sub = r["name"].split("/", 1)
                subs.setdefault(base, {})[sub] = {"kind": r["kind"], "verbs": r["verbs"]}
            else:
                top[r["name"]] = r
        out = []
        for name, r in top.items():
            out.append(Resource(group, version, name, r["kind"], r["namespaced"], r["verbs"],
                                r.get("singularName", ""), r.get("shortNames"), r.get("categories"),
                                subs.get(name)))
        return out

    @staticmethod
    def _from_aggregated(group, version, r):
        subs = {s["subresource"]: {"kind": s.get("responseKind", {}).get("kind", ""), "verbs": s.get("verbs", [])}
                for s in r.get("subresources", [])}
        return Resource(group, version, r["resource"], r["responseKind"]["kind"], r["scope"] == "Namespaced",
                        r.get("verbs", []), r.get("singularResource", ""), r.get("shortNames"),
                        r.get("categories"), subs)

    def _reindex(self):
        idx = {}
        for (g, v), rs in self.builtin.items():
            for r in rs:
                idx[(g, v, r.name)] = r
        for rs in getattr(self, "crds", {}).values():
            for r in rs:
                idx[(r.group, r.version, r.name)] = r
        self.index = idx

    # ------------------------------------------------------------ lookup
    def lookup(self, group, version, resource):
        return self.index.get((group, version, resource))

    def by_kind(self, group, version, kind):
        for r in self.index.values():
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def has_group_version(self, group, version):
        if group == "":
            return version == "v1"
        return version in self.group_versions.get(group, []) or version in self.crd_groups.get(group, [])

    # ------------------------------------------------------------ CRDs
    def set_crd(self, name, resources):
        """Publish (resources non-empty) or withdraw (empty) the resources of one CRD."""
        if resources:
            self.crds[name] = resources
        else:
            self.crds.pop(name, None)
        groups = {}
        for rs in self.crds.values():
            for r in rs:
                vs = groups.setdefault(r.group, [])
                if r.version not in vs:
                    vs.append(r.version)
        self.crd_groups = groups
        self.generation += 1
        self._reindex()

    def _crd_resources(self, group, version):
        return [r for rs in self.crds.values() for r in rs if r.group == group and r.version == version]

    # ------------------------------------------------------------ documents
    def api_versions(self):
        return self.raw["/api"]

    def _crd_only_groups(self):
        return [g for g in sorted(self.crd_groups) if g not in self.group_versions]

    def group_doc(self, group):
        if group in self.group_versions and not self.crd_groups.get(group):
            raw = self.raw.get("/apis/" + group)
            if raw is not None:
                return raw
            for g in self.group_list["groups"]:
                if g["name"] == group:
                    return _dump(dict({"kind": "APIGroup", "apiVersion": "v1"}, **g))
            vers = self.group_versions[group]
        elif group in self.crd_groups:
            vers = list(self.group_versions.get(group, [])) + \
                [v for v in self.crd_groups[group] if v not in self.group_versions.get(group, [])]
        else:
            return None
        doc = {"kind": "APIGroup", "apiVersion": "v1", "name": group,
               "versions": [{"groupVersion": group + "/" + v, "version": v} for v in vers],
               "preferredVersion": {"groupVersion": group + "/" + vers[0], "version": vers[0]}}
        return _dump(doc)

    def group_list_doc(self):
        extra = self._crd_only_groups()
        if not extra:
            return self.raw["/apis"]
        doc = copy.deepcopy(self.group_list)
        for g in extra:
            vers = self.crd_groups[g]
            doc["groups"].append({"name": g, "versions": [{"groupVersion": g + "/" + v, "version": v} for v in vers],
                                  "preferredVersion": {"groupVersion": g + "/" + vers[0], "version": vers[0]}})
        return _dump(doc)

    def resource_list_doc(self, group, version):
        if not self.has_group_version(group, version):
            return None
        crd = self._crd_resources(group, version)
        path = "/api/v1" if group == "" else "/apis/%s/%s" % (group, version)
        if not crd and path in self.raw:
            return self.raw[path]
        rs = list(self.builtin.get((group, version), [])) + crd
        gv = group + "/" + version if group else version
        doc = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
               "resources": [x for r in rs for x in r.legacy()]}
        return _dump(doc)

    def aggregated_doc(self, core, accept_version):
        """The aggregated document for /api (core) or /apis, as apidiscovery v2 or v2beta1."""
        if core:
            doc = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
                   "items": [{"metadata": {"creationTimestamp": None},
                              "versions": [{"version": "v1", "freshness": "Current",
                                            "resources": [r.aggregated() for r in self.builtin[("", "v1")]]}]}]}
        elif not self.crd_groups:
            if accept_version == "v2":
                return self.raw_aggregated
            doc = json.loads(self.raw_aggregated)
        else:
            doc = copy.deepcopy(self.aggregated)
            items = {i["metadata"]["name"]: i for i in doc["items"]}
            for g in sorted(self.crd_groups):
                item = items.get(g)
                if item is None:
                    item = {"metadata": {"name": g, "creationTimestamp": None}, "versions": []}
                    doc["items"].append(item)
                    items[g] = item
                for v in self.crd_groups[g]:
                    ver = next((x for x in item["versions"] if x["version"] == v), None)
                    if ver is None:
                        ver = {"version": v, "resources": [], "freshness": "Current"}
                        item["versions"].append(ver)
                    ver["resources"].extend(r.aggregated() for r in self._crd_resources(g, v))
        doc["apiVersion"] = "apidiscovery.k8s.io/" + accept_version
        return _dump(doc)

    # ------------------------------------------------------------ OpenAPI
    def _all_group_versions(self):
        gvs = set(self.builtin)
        for rs in self.crds.values():
            for r in rs:
                gvs.add((r.group, r.version))
        return sorted(gvs)

    def openapi_v3_root(self):
        paths = {}
        for g, v in self._all_group_versions():
            p = "api/v1" if g == "" else "apis/%s/%s" % (g, v)
            paths[p] = {"serverRelativeURL": "/openapi/v3/%s?hash=%08X" % (p, self.generation)}
        return _dump({"paths": paths})

    def openapi_v3_gv(self, group, version):
        rs = self.builtin.get((group, version), []) + self._crd_resources(group, version)
        if not rs:
            return None
        base = "/api/v1" if group == "" else "/apis/%s/%s" % (group, version)
        paths = {}
        for r in rs:
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            item = base + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.name + "/{name}"
            ops = {}
            if "get" in r.verbs:
                ops["get"] = {"operationId": "read" + r.kind, "x-kubernetes-action": "get",
                              "x-kubernetes-group-version-kind": gvk,
                              "responses": {"200": {"description": "OK"}}}
            if "patch" in r.verbs:
                ops["patch"] = {"operationId": "patch" + r.kind, "x-kubernetes-action": "patch",
                                "x-kubernetes-group-version-kind": gvk, "parameters": _PATCH_PARAMS,
                                "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}}}
            if ops:
                paths[item] = ops
        doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
               "paths": paths, "components": {"schemas": {}}}
        return _dump(doc)

    @staticmethod
    def openapi_v2_json():
        return _dump({"swagger": "2.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
                      "paths": {}, "definitions": {}})

    @staticmethod
    def openapi_v2_protobuf():
        """gnostic openapi_v2.Document{swagger: "2.0", info: {title, version}} in protobuf wire format."""
        def field(num, payload):
            return bytes([(num << 3) | 2]) + _varint(len(payload)) + payload
        info = field(1, b"Kubernetes") + field(2, SERVER_VERSION["gitVersion"].encode())
        return field(1, b"2.0") + field(2, info)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _dump(doc):
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


def crd_resources(crd):
    """Resource entries for the served versions of a CRD object."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subs = {}
        if (v.get("subresources") or {}).get("status") is not None:
            subs["status"] = {"kind": names.get("kind", ""), "verbs": ["get", "patch", "update"]}
        if (v.get("subresources") or {}).get("scale") is not None:
            subs["scale"] = {"kind": "Scale", "verbs": ["get", "patch", "update"]}
        out.append(Resource(spec.get("group", ""), v.get("name", ""), names.get("plural", ""), names.get("kind", ""),
                            spec.get("scope") == "Namespaced",
                            ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
                            names.get("singular") or names.get("kind", "").lower(), names.get("shortNames"),
                            names.get("categories"), subs, crd=(crd.get("metadata") or {}).get("name")))
    return out
