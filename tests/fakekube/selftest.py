#!/usr/bin/env python3
"""selftest — protocol checks of fakekube that kubectl alone does not reach.

Run by tests/integration/test_fakekube_kubectl.sh against a running fake:
    selftest.py URL CA CERT KEY TOKEN
Each check prints "ok NAME" or "FAIL NAME: why"; the exit status is the number of failures.
"""

import http.client
import json
import ssl
import sys
import time
import urllib.parse

URL, CA, CERT, KEY, TOKEN = sys.argv[1:6]
U = urllib.parse.urlsplit(URL)
FAILS = []


def ctx(client_cert=True):
    c = ssl.create_default_context(cafile=CA)
    if client_cert:
        c.load_cert_chain(CERT, KEY)
    return c


class Client:
    def __init__(self, client_cert=True, token=None):
        self.conn = http.client.HTTPSConnection(U.hostname, U.port, context=ctx(client_cert), timeout=30)
        self.token = token

    def req(self, method, path, body=None, ctype=None, accept="application/json", headers=None):
        h = {"Accept": accept}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None:
            h["Content-Type"] = ctype or "application/json"
        h.update(headers or {})
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = data
        return r.status, doc, r

    def apply(self, path, obj, manager="selftest", force=False, dry=False, yaml_text=None):
        q = "?fieldManager=" + manager + ("&force=true" if force else "") + ("&dryRun=All" if dry else "")
        return self.req("PATCH", path + q, yaml_text if yaml_text is not None else obj,
                        ctype="application/apply-patch+yaml")


def ctl(method, path, body=None):
    c = http.client.HTTPSConnection(U.hostname, U.port, context=ctx(False), timeout=30)
    c.request(method, "/fakekube" + path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return json.loads(r.read())


def check(name, cond, why=""):
    if cond:
        print("ok " + name)
    else:
        print("FAIL %s: %s" % (name, why))
        FAILS.append(name)


def status_shape(doc, code, reason):
    return isinstance(doc, dict) and list(doc)[:6] == ["kind", "apiVersion", "metadata", "status", "message", "reason"] \
        and doc["kind"] == "Status" and doc["status"] == "Failure" and doc["code"] == code and doc["reason"] == reason


def cm(name, data, labels=None, ns="default"):
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}


def main():
    c = Client()
    CMS = "/api/v1/namespaces/default/configmaps"

    # --- discovery
    s, doc, r = c.req("GET", "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
    check("aggregated v2 content type", r.getheader("Content-Type") == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
          r.getheader("Content-Type"))
    check("aggregated v2 body", doc.get("kind") == "APIGroupDiscoveryList" and doc.get("apiVersion") == "apidiscovery.k8s.io/v2")
    s, doc, r = c.req("GET", "/api", accept="application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")
    check("aggregated v2beta1 /api", r.getheader("Content-Type") == "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
          and doc["apiVersion"] == "apidiscovery.k8s.io/v2beta1" and doc["items"][0]["versions"][0]["version"] == "v1")
    s, doc, r = c.req("GET", "/apis")
    check("legacy /apis", r.getheader("Content-Type") == "application/json" and doc.get("kind") == "APIGroupList")
    s, doc, _ = c.req("GET", "/apis/apps/v1")
    check("legacy /apis/apps/v1 fixture", s == 200 and any(x["name"] == "deployments" for x in doc["resources"]))
    s, doc, _ = c.req("GET", "/version")
    check("/version", s == 200 and doc.get("major") == "1" and "gitVersion" in doc)

    # --- authentication and authorization
    anon = Client(client_cert=False)
    s, doc, _ = anon.req("GET", CMS)
    check("401 without credentials", s == 401 and doc.get("reason") == "Unauthorized", (s, doc))
    tok = Client(client_cert=False, token=TOKEN)
    s, doc, _ = tok.req("GET", CMS)
    check("bearer token accepted", s == 200 and doc.get("kind") == "ConfigMapList", (s, doc))
    s, doc, _ = Client(client_cert=False, token="wrong").req("GET", CMS)
    check("wrong token 401", s == 401, s)
    ctl("POST", "/config", {"users": {"tagmoor-token": {"verbs": ["get", "list", "watch"]}}})
    s, doc, _ = tok.apply(CMS + "/ro", cm("ro", {"a": "1"}))
    check("403 forbidden for a token without rights", s == 403 and status_shape(doc, 403, "Forbidden") and
          doc["message"] == 'configmaps "ro" is forbidden: User "tagmoor-token" cannot patch resource "configmaps" in API group "" in the namespace "default"'
          and doc["details"] == {"name": "ro", "kind": "configmaps"}, doc)
    ctl("POST", "/config", {"users": {}})

    # --- SSA create, managedFields, server metadata
    s, obj, _ = c.apply(CMS + "/ssa", cm("ssa", {"a": "1", "b": "2"}, {"x": "y"}))
    md = obj.get("metadata", {})
    check("apply creates (201)", s == 201, (s, obj))
    check("server metadata", all(k in md for k in ("uid", "resourceVersion", "creationTimestamp")) and "generation" not in md, md)
    mf = md.get("managedFields") or [{}]
    check("managedFields Apply entry", len(mf) == 1 and mf[0].get("manager") == "selftest" and mf[0].get("operation") == "Apply"
          and mf[0].get("fieldsV1") == {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}, mf)
    rv1 = md.get("resourceVersion")
    s, obj, _ = c.apply(CMS + "/ssa", cm("ssa", {"a": "1", "b": "2"}, {"x": "y"}))
    check("re-apply is a no-op (200, same resourceVersion)", s == 200 and obj["metadata"]["resourceVersion"] == rv1, obj["metadata"])
    s, obj, _ = c.apply(CMS + "/ssa", cm("ssa", {"a": "1"}, {"x": "y"}))
    check("field no longer applied is removed", s == 200 and obj["data"] == {"a": "1"} and obj["metadata"]["resourceVersion"] != rv1, obj)
    yaml_body = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yml\n  namespace: default\n"
                 "data:\n  day: 2024-01-02\n  flag: \"yes\"\n")
    s, obj, _ = c.apply(CMS + "/yml", None, yaml_text=yaml_body)
    check("YAML apply body (timestamps stay strings)", s == 201 and obj["data"] == {"day": "2024-01-02", "flag": "yes"}, obj)

    # --- conflicts and force
    s, doc, _ = c.apply(CMS + "/ssa", cm("ssa", {"a": "2"}), manager="other")
    check("409 conflict with another manager", s == 409 and status_shape(doc, 409, "Conflict") and
          doc["message"] == 'Apply failed with 1 conflict: conflict with "selftest": .data.a' and
          doc["details"] == {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "selftest"', "field": ".data.a"}]}, doc)
    s, doc, _ = c.apply(CMS + "/ssa", cm("ssa", {"a": "1", "c": "3"}), manager="other")
    check("same value co-owns without conflict", s == 200 and doc["data"] == {"a": "1", "c": "3"}, doc)
    s, doc, _ = c.apply(CMS + "/ssa", cm("ssa", {"a": "9"}), manager="other", force=True)
    mgrs = {e["manager"]: e["fieldsV1"] for e in doc["metadata"]["managedFields"]}
    check("force=true takes ownership", s == 200 and doc["data"]["a"] == "9" and "f:a" in mgrs["other"]["f:data"]
          and "f:a" not in mgrs["selftest"].get("f:data", {}), mgrs)

    # --- dry run
    s, doc, _ = c.apply(CMS + "/dry", cm("dry", {"a": "1"}), dry=True)
    s2, _, _ = c.req("GET", CMS + "/dry")
    check("dryRun=All returns the object, stores nothing", s == 201 and doc["metadata"]["name"] == "dry" and s2 == 404, (s, s2))

    # --- validation and not found
    s, doc, _ = c.apply(CMS + "/Bad_Name", cm("Bad_Name", {}))
    check("422 invalid DNS-1123 name", s == 422 and status_shape(doc, 422, "Invalid") and
          doc["details"]["causes"][0]["field"] == "metadata.name" and doc["details"]["causes"][0]["reason"] == "FieldValueInvalid"
          and doc["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'), doc)
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nosel"},
           "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    s, doc, _ = c.apply("/apis/apps/v1/namespaces/default/deployments/nosel", dep)
    check("422 Deployment without spec.selector", s == 422 and doc["details"]["group"] == "apps" and doc["details"]["kind"] == "Deployment"
          and doc["details"]["causes"][0] == {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}, doc)
    s, doc, _ = c.req("GET", "/apis/example.invalid/v1/namespaces/default/gadgets")
    check("404 unknown group", s == 404 and doc == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                                      "message": "the server could not find the requested resource",
                                                      "reason": "NotFound", "details": {}, "code": 404}, doc)
    s, doc, _ = c.req("GET", "/api/v1/namespaces/default/gadgets")
    check("404 unknown resource", s == 404 and doc.get("reason") == "NotFound" and doc.get("details") == {}, doc)
    s, doc, _ = c.req("GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    check("404 object", s == 404 and doc["message"] == 'deployments.apps "nope" not found' and
          doc["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}, doc)
    s, doc, _ = c.apply("/api/v1/namespaces/nowhere/configmaps/x", cm("x", {}, ns="nowhere"))
    check("apply into a missing namespace: 404 namespaces", s == 404 and doc["message"] == 'namespaces "nowhere" not found', doc)
    s, doc, _ = c.req("POST", CMS, cm("ssa", {}))
    check("409 AlreadyExists", s == 409 and doc["reason"] == "AlreadyExists" and doc["message"] == 'configmaps "ssa" already exists', doc)
    s, doc, _ = c.req("PATCH", CMS + "/ssa", cm("ssa", {}), ctype="application/apply-patch+yaml")
    check("apply without fieldManager: 422", s == 422 and "fieldManager: Required value" in doc["message"], doc)
    s, doc, _ = c.apply("/api/v1/namespaces/default/configmaps/ns", {"apiVersion": "v1", "kind": "ConfigMap",
                                                                   "metadata": {"name": "ns", "namespace": "other"}})
    check("namespace mismatch: 400", s == 400 and doc["reason"] == "BadRequest", doc)

    # --- cluster-scoped vs namespaced, namespace default
    s, doc, _ = c.apply("/api/v1/namespaces/scoped", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scoped"}})
    check("Namespace is cluster-scoped", s == 201 and "namespace" not in doc["metadata"] and doc["status"] == {"phase": "Active"}, doc)
    s, doc, _ = c.apply("/api/v1/namespaces/default/configmaps/nsdef", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nsdef"}})
    check("namespace taken from the URL", s == 201 and doc["metadata"]["namespace"] == "default", doc)

    # --- generation
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gen"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "gen"}},
                  "template": {"metadata": {"labels": {"app": "gen"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    D = "/apis/apps/v1/namespaces/default/deployments/gen"
    s, doc, _ = c.apply(D, d)
    g1 = doc["metadata"].get("generation")
    d["metadata"]["labels"] = {"l": "1"}
    s, doc, _ = c.apply(D, d)
    g2 = doc["metadata"].get("generation")
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "i:2"
    s, doc, _ = c.apply(D, d)
    g3 = doc["metadata"].get("generation")
    check("generation 1, unchanged by metadata, bumped by spec", (g1, g2, g3) == (1, 1, 2), (g1, g2, g3))

    # --- status progression with a configured delay
    def poll(path, pred, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            _, o, _ = c.req("GET", path)
            if pred(o) or time.monotonic() > end:
                return o
            time.sleep(0.05)

    ctl("POST", "/config", {"delay": 1.0})
    d2 = json.loads(json.dumps(d))
    d2["metadata"] = {"name": "prog"}
    d2["spec"]["replicas"] = 3
    P = "/apis/apps/v1/namespaces/default/deployments/prog"
    t0 = time.monotonic()
    c.apply(P, d2)
    early = poll(P, lambda o: "observedGeneration" in o.get("status", {}))
    early_in_time = time.monotonic() - t0 < 0.9
    late = poll(P, lambda o: o.get("status", {}).get("availableReplicas"))
    conds = {x["type"]: x for x in late["status"].get("conditions", [])}
    check("Deployment progressing before the delay", not early_in_time or early["status"].get("availableReplicas") is None and
          early["status"].get("observedGeneration") == 1, early["status"])
    check("Deployment Available after the delay", late["status"].get("availableReplicas") == 3 and
          late["status"].get("readyReplicas") == 3 and late["status"].get("updatedReplicas") == 3 and
          conds["Available"]["status"] == "True" and conds["Progressing"]["reason"] == "NewReplicaSetAvailable", late["status"])
    d3 = json.loads(json.dumps(d2))
    d3["metadata"] = {"name": "fails", "annotations": {"fake.tagmoor.dev/fail": "true"}}
    c.apply("/apis/apps/v1/namespaces/default/deployments/fails", d3)
    f = poll("/apis/apps/v1/namespaces/default/deployments/fails",
             lambda o: any(x.get("reason") == "ProgressDeadlineExceeded" for x in o.get("status", {}).get("conditions", [])))
    conds = {x["type"]: x for x in f["status"].get("conditions", [])}
    check("failing Deployment: ProgressDeadlineExceeded", conds["Progressing"]["status"] == "False" and
          conds["Progressing"]["reason"] == "ProgressDeadlineExceeded", f["status"])
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}
    c.apply("/apis/batch/v1/namespaces/default/jobs/j", job)
    job["metadata"] = {"name": "jf", "annotations": {"fake.tagmoor.dev/fail": "true"}}
    c.apply("/apis/batch/v1/namespaces/default/jobs/jf", job)
    j = poll("/apis/batch/v1/namespaces/default/jobs/j", lambda o: "succeeded" in o.get("status", {}))
    jf = poll("/apis/batch/v1/namespaces/default/jobs/jf", lambda o: "failed" in o.get("status", {}))
    check("Job completes", j["status"].get("succeeded") == 1 and
          any(x["type"] == "Complete" and x["status"] == "True" for x in j["status"]["conditions"]), j["status"])
    check("Job fails", jf["status"].get("failed") == 1 and
          any(x["type"] == "Failed" and x["status"] == "True" for x in jf["status"]["conditions"]), jf["status"])

    # --- CRD: Established, then discovery
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.st.example"},
           "spec": {"group": "st.example", "scope": "Cluster", "names": {"plural": "things", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    ctl("POST", "/config", {"crd_delay": 1.0})
    t0 = time.monotonic()
    c.apply("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.st.example", crd)
    s_before, _, _ = c.req("GET", "/apis/st.example/v1")
    if time.monotonic() - t0 > 0.9:
        s_before = 404  # the machine stalled past the delay: nothing to learn from this sample
    for _ in range(200):
        s_after, rl, _ = c.req("GET", "/apis/st.example/v1")
        if s_after == 200:
            break
        time.sleep(0.05)
    _, agg, _ = c.req("GET", "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    in_agg = [i for i in agg["items"] if i["metadata"]["name"] == "st.example"]
    _, gl, _ = c.req("GET", "/apis")
    _, crdo, _ = c.req("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.st.example")
    conds = {x["type"]: x["status"] for x in crdo["status"]["conditions"]}
    check("CRD Established and NamesAccepted", conds == {"NamesAccepted": "True", "Established": "True"}, crdo["status"])
    check("CRD absent from discovery until Established, then present", s_before == 404 and s_after == 200 and
          rl["resources"][0]["name"] == "things" and rl["resources"][0]["namespaced"] is False and in_agg and
          in_agg[0]["versions"][0]["resources"][0]["scope"] == "Cluster" and
          any(g["name"] == "st.example" for g in gl["groups"]), (s_before, s_after))
    s, t, _ = c.apply("/apis/st.example/v1/things/t1", {"apiVersion": "st.example/v1", "kind": "Thing", "metadata": {"name": "t1"}, "x": 1})
    check("custom resource of an established CRD", s == 201 and t.get("x") == 1 and t["metadata"]["generation"] == 1, t)

    # --- pruning of undeclared custom-resource fields, injected faults
    crd2 = json.loads(json.dumps(crd))
    crd2["metadata"]["name"] = "strict.st.example"
    crd2["spec"]["names"] = {"plural": "strict", "kind": "Strict"}
    crd2["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"keep": {"type": "string"}}}}}}
    c.apply("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/strict.st.example", crd2)
    poll("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/strict.st.example",
         lambda o: any(x["type"] == "Established" for x in o["status"].get("conditions") or []))
    for _ in range(100):
        if c.req("GET", "/apis/st.example/v1/strict")[0] == 200:
            break
        time.sleep(0.05)
    s, o, _ = c.apply("/apis/st.example/v1/strict/p1", {"apiVersion": "st.example/v1", "kind": "Strict",
                                                        "metadata": {"name": "p1"}, "spec": {"keep": "a", "drop": 1}, "extra": 2})
    check("undeclared custom-resource fields are pruned", s == 201 and o.get("spec") == {"keep": "a"} and "extra" not in o, o)
    ctl("POST", "/config", {"faults": [{"method": "GET", "path": "/configmaps/ssa$", "code": 503, "count": 1,
                                        "reason": "ServiceUnavailable", "message": "try later", "retry_after": 1}]})
    s1, f1, r1 = c.req("GET", CMS + "/ssa")
    s2, _, _ = c.req("GET", CMS + "/ssa")
    check("injected fault once, then normal", s1 == 503 and f1["reason"] == "ServiceUnavailable" and
          r1.getheader("Retry-After") == "1" and s2 == 200, (s1, f1, s2))
    ctl("POST", "/config", {"faults": []})

    # --- other workloads become healthy
    ctl("POST", "/config", {"delay": 0.2})
    tmpl = {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    for kind, res in (("StatefulSet", "statefulsets"), ("DaemonSet", "daemonsets"), ("ReplicaSet", "replicasets")):
        spec = {"selector": {"matchLabels": {"app": "w"}}, "template": tmpl}
        if kind != "DaemonSet":
            spec["replicas"] = 2
        path = "/apis/apps/v1/namespaces/default/%s/w" % res
        c.apply(path, {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"}, "spec": spec})
        key = "numberReady" if kind == "DaemonSet" else "readyReplicas"
        o = poll(path, lambda o: o.get("status", {}).get(key))
        want = 1 if kind == "DaemonSet" else 2
        check("%s becomes ready" % kind, o["status"].get(key) == want and
              o["status"].get("observedGeneration") == o["metadata"]["generation"], o.get("status"))
    c.apply("/api/v1/namespaces/default/pods/p", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                                  "spec": {"containers": [{"name": "c", "image": "i"}]}})
    o = poll("/api/v1/namespaces/default/pods/p", lambda o: o.get("status", {}).get("phase") == "Running")
    check("Pod becomes Running and Ready", o["status"].get("phase") == "Running" and
          any(x["type"] == "Ready" and x["status"] == "True" for x in o["status"]["conditions"]), o.get("status"))

    # --- leases: create, get, update with resourceVersion conflict
    L = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "tagmoor"},
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    s, l1, _ = c.req("POST", L, lease)
    s2, l2, _ = c.req("GET", L + "/tagmoor")
    l2["spec"]["holderIdentity"] = "b"
    s3, l3, _ = c.req("PUT", L + "/tagmoor", l2)
    s4, l4, _ = c.req("PUT", L + "/tagmoor", l2)  # l2 carries the old resourceVersion now
    check("Lease create/get/update", (s, s2, s3) == (201, 200, 200) and l3["spec"]["holderIdentity"] == "b" and
          l3["metadata"]["resourceVersion"] != l1["metadata"]["resourceVersion"], (s, s2, s3))
    check("Lease update with a stale resourceVersion: 409", s4 == 409 and status_shape(l4, 409, "Conflict") and
          l4["message"] == 'Operation cannot be fulfilled on leases.coordination.k8s.io "tagmoor": the object has been modified; '
                           "please apply your changes to the latest version and try again"
          and l4["details"] == {"name": "tagmoor", "group": "coordination.k8s.io", "kind": "leases"}, l4)

    # --- label selectors
    for n, lab in (("s1", {"env": "prod", "tier": "web"}), ("s2", {"env": "dev"}), ("s3", {"tier": "db"})):
        c.apply(CMS + "/" + n, cm(n, {}, lab), manager="sel")

    def names(sel):
        _, doc, _ = c.req("GET", CMS + "?labelSelector=" + urllib.parse.quote(sel))
        return sorted(i["metadata"]["name"] for i in doc["items"] if i["metadata"]["name"] in ("s1", "s2", "s3"))
    cases = {"env=prod": ["s1"], "env==prod": ["s1"], "env!=prod": ["s2", "s3"], "env in (prod,dev)": ["s1", "s2"],
             "env notin (prod)": ["s2", "s3"], "tier": ["s1", "s3"], "!tier": ["s2"], "env=prod,tier=web": ["s1"]}
    got = {k: names(k) for k in cases}
    check("labelSelector =, ==, !=, in, notin, exists, !exists", got == cases, got)
    s, doc, _ = c.req("GET", CMS + "?labelSelector=" + urllib.parse.quote("a=(b"))
    check("bad labelSelector: 400", s == 400 and doc["reason"] == "BadRequest", doc)
    _, doc, _ = c.req("GET", CMS + "?limit=2")
    _, doc2, _ = c.req("GET", CMS + "?limit=2&continue=" + urllib.parse.quote(doc["metadata"].get("continue", "")))
    check("list pagination", len(doc["items"]) == 2 and doc["metadata"].get("continue") and len(doc2["items"]) >= 1, doc["metadata"])
    check("typed list items carry no kind", "kind" not in doc["items"][0] and doc["kind"] == "ConfigMapList")

    # --- metadata only (PartialObjectMetadata): what tagmoor's pre-list and ownership check ask for
    c.apply(CMS.replace("configmaps", "secrets") + "/meta", {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "meta", "labels": {"a": "b"}}, "stringData": {"k": "v"}})
    MA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    MLA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    s, doc, r = c.req("GET", CMS.replace("configmaps", "secrets") + "/meta", accept=MA)
    check("GET as PartialObjectMetadata: metadata only", s == 200 and doc.get("kind") == "PartialObjectMetadata" and
          doc.get("apiVersion") == "meta.k8s.io/v1" and sorted(doc) == ["apiVersion", "kind", "metadata"] and
          doc["metadata"]["labels"] == {"a": "b"} and
          r.getheader("Content-Type") == "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", doc)
    s, doc, r = c.req("GET", CMS.replace("configmaps", "secrets") + "?labelSelector=a%3Db", accept=MLA)
    check("LIST as PartialObjectMetadataList: metadata only", s == 200 and doc.get("kind") == "PartialObjectMetadataList"
          and [sorted(i) for i in doc["items"]] == [["apiVersion", "kind", "metadata"]] and
          doc["items"][0]["kind"] == "PartialObjectMetadata" and doc["items"][0]["metadata"]["name"] == "meta" and
          r.getheader("Content-Type") == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", doc)
    # a write answered the same way (the API server's PATCH handler negotiates its answer as a GET
    # does; client-go's metadata client patches so): what tagmoor asks for where it reads no more
    s, doc, r = c.req("PATCH", CMS + "/meta?fieldManager=t&force=true",
                      json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "meta"},
                                  "data": {"k": "w"}}), ctype="application/apply-patch+yaml", accept=MA)
    check("apply PATCH as PartialObjectMetadata: metadata only", s == 201 and doc.get("kind") == "PartialObjectMetadata"
          and sorted(doc) == ["apiVersion", "kind", "metadata"] and doc["metadata"].get("resourceVersion") and
          r.getheader("Content-Type") == "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", doc)
    s, doc, _ = c.req("GET", CMS + "/meta")
    check("apply PATCH as PartialObjectMetadata: applied", s == 200 and doc.get("data") == {"k": "w"}, doc)
    c.req("DELETE", CMS + "/meta")
    c.req("DELETE", CMS.replace("configmaps", "secrets") + "/meta")

    # --- delete, deletecollection
    s, doc, _ = c.req("DELETE", CMS + "/s1", {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    check("DELETE Background: Status Success", s == 200 and doc["status"] == "Success" and doc["details"]["name"] == "s1", doc)
    s, doc, _ = c.req("DELETE", CMS + "?labelSelector=tier")
    check("deletecollection with labelSelector", s == 200 and [i["metadata"]["name"] for i in doc["items"]] == ["s3"], doc)
    s, _, _ = c.req("GET", CMS + "/s3")
    check("deleted object is gone", s == 404, s)

    # --- watch
    wc = Client()
    _, lst, _ = wc.req("GET", CMS)
    rv = lst["metadata"]["resourceVersion"]
    c.apply(CMS + "/w", cm("w", {"a": "1"}))
    c.req("DELETE", CMS + "/w")
    wc.conn.request("GET", CMS + "?watch=true&timeoutSeconds=1&resourceVersion=" + rv, headers={"Accept": "application/json"})
    r = wc.conn.getresponse()
    lines = [json.loads(x) for x in r.read().decode().splitlines() if x.strip()]
    check("watch streams ADDED and DELETED", [(e["type"], e["object"]["metadata"]["name"]) for e in lines] ==
          [("ADDED", "w"), ("DELETED", "w")] and r.getheader("Transfer-Encoding") == "chunked", lines)

    # --- keep-alive, counting, latency
    ctl("POST", "/requests/reset")
    k = Client()
    for _ in range(20):
        k.req("GET", CMS + "/ssa")
    cnt = ctl("GET", "/requests")
    check("keep-alive: 20 requests on one connection", cnt["connections"] == 1 and cnt["by_method_path"].get("GET " + CMS + "/ssa") == 20
          and cnt["by_verb"].get("get") == 20, {k2: cnt[k2] for k2 in ("connections", "by_method_path")})
    ctl("POST", "/config", {"latency": 0.05})
    t0 = time.monotonic()
    for _ in range(5):
        k.req("GET", CMS + "/ssa")
    took = time.monotonic() - t0
    ctl("POST", "/config", {"latency": 0})
    check("artificial latency per request", took >= 0.25, took)
    dump = ctl("GET", "/objects?kind=ConfigMap&namespace=default")
    check("control: dump objects", any(o["metadata"]["name"] == "ssa" for o in dump["items"]) and
          all(o["kind"] == "ConfigMap" for o in dump["items"]))

    # --- throughput: 1000 applies over one connection
    t0 = time.monotonic()
    for i in range(1000):
        s, _, _ = k.apply(CMS + "/perf-%d" % i, cm("perf-%d" % i, {"i": str(i)}, {"perf": "yes"}), manager="perf")
        if s != 201:
            break
    took = time.monotonic() - t0
    check("1000 applies in a few seconds (%.2fs)" % took, s == 201 and took < 10, took)
    print("selftest: %d failed" % len(FAILS))
    return len(FAILS)


if __name__ == "__main__":
    sys.exit(main())
