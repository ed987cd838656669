#!/usr/bin/env python3
"""bench/manifests.py — upstream-sized Kubernetes manifests, generated (not copied from any project).

Used by bench/manifests and tests/integration/test_kube_large.sh. Shapes follow what projects ship:

  crd FILE GROUP KIND BYTES      one CustomResourceDefinition whose openAPIV3Schema (nested objects,
                                 long descriptions, enums, as prometheus-operator's CRDs) makes the
                                 YAML file about BYTES long
  install FILE BYTES [NS]        an install file in the shape of Argo CD's install.yaml: three CRDs
                                 (most of the bytes), then ~57 ServiceAccounts, Roles, ClusterRoles,
                                 bindings, ConfigMaps, Secrets, Services, Deployments, a StatefulSet
                                 and NetworkPolicies; namespaced objects carry no namespace unless NS
  padded FILE BYTES NAME         one ConfigMap of exactly BYTES bytes (a document just under or over
                                 a limit)
  nodes FILE NODES NAME          one List document of exactly NODES YAML nodes (even, >= 20)
  objects FILE...                print the objects of manifest files as JSON lines (for checks)
"""
import json
import os
import random
import sys

WORDS = ("the of a to is in for that be by this field when must set if not are on with as it an "
         "container pod specifies selector label value default defines reference name namespace "
         "resource configuration endpoint secret key optional scrape interval timeout relabeling "
         "rules target authorization bearer token tls certificate alertmanager storage volume "
         "retention replicas affinity tolerations priority class service monitor probe").split()


def sentence(rnd, n):
    w = [rnd.choice(WORDS) for _ in range(n)]
    return (" ".join(w)).capitalize() + "."


def q(s):
    return json.dumps(s)


class Out:
    def __init__(self):
        self.parts = []
        self.size = 0

    def add(self, s):
        self.parts.append(s)
        self.size += len(s)

    def text(self):
        return "".join(self.parts)


def emit_prop(o, rnd, ind, name, depth, budget):
    """A schema property at indentation ind; returns the bytes written."""
    start = o.size
    pad = " " * ind
    o.add("%s%s:\n" % (pad, name))
    o.add("%s  description: %s\n" % (pad, q(sentence(rnd, rnd.randint(12, 40)))))
    kind = rnd.random()
    if depth > 0 and kind < 0.45:
        o.add("%s  type: object\n%s  properties:\n" % (pad, pad))
        n = rnd.randint(3, 8)
        for i in range(n):
            if o.size - start > budget:
                break
            emit_prop(o, rnd, ind + 4, "%s%d" % (rnd.choice(WORDS), i), depth - 1, budget // n)
        if rnd.random() < 0.3:
            o.add("%s  required:\n%s  - %s0\n" % (pad, pad, rnd.choice(WORDS)))
    elif depth > 0 and kind < 0.6:
        o.add("%s  type: array\n%s  items:\n" % (pad, pad))
        o.add("%s    type: object\n%s    properties:\n" % (pad, pad))
        for i in range(rnd.randint(2, 5)):
            emit_prop(o, rnd, ind + 6, "item%d" % i, depth - 1, budget // 4)
        o.add("%s  x-kubernetes-list-type: atomic\n" % pad)
    elif kind < 0.75:
        o.add("%s  type: string\n%s  enum:\n" % (pad, pad))
        for v in ("Always", "IfNotPresent", "Never"):
            o.add("%s  - %s\n" % (pad, v))
    elif kind < 0.85:
        o.add("%s  type: integer\n%s  format: int32\n%s  minimum: 0\n" % (pad, pad, pad))
    elif kind < 0.92:
        o.add("%s  type: boolean\n" % pad)
    else:
        o.add("%s  anyOf:\n%s  - type: integer\n%s  - type: string\n%s  x-kubernetes-int-or-string: true\n"
              % (pad, pad, pad, pad))
    return o.size - start


def crd_text(group, kind, target, seed=1):
    rnd = random.Random(seed)
    plural = kind.lower() + "s"
    o = Out()
    o.add("---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
          "  annotations:\n    controller-gen.kubebuilder.io/version: v0.16.1\n"
          "    operator.prometheus.io/version: 0.78.0\n"
          "  name: %s.%s\nspec:\n  group: %s\n  names:\n    categories:\n    - all\n    kind: %s\n"
          "    listKind: %sList\n    plural: %s\n    singular: %s\n  scope: Namespaced\n  versions:\n"
          "  - additionalPrinterColumns:\n    - jsonPath: .metadata.creationTimestamp\n      name: Age\n"
          "      type: date\n    name: v1\n    schema:\n      openAPIV3Schema:\n"
          "        description: %s\n        type: object\n        properties:\n"
          "          apiVersion:\n            type: string\n          kind:\n            type: string\n"
          "          metadata:\n            type: object\n          spec:\n"
          "            description: %s\n            type: object\n            properties:\n"
          % (plural, group, group, kind, kind, plural, kind.lower(), q(sentence(rnd, 30)), q(sentence(rnd, 20))))
    i = 0
    tail = ("          status:\n            type: object\n            x-kubernetes-preserve-unknown-fields: true\n"
            "    served: true\n    storage: true\n    subresources:\n      status: {}\n")
    while o.size + len(tail) < target - 2000:
        emit_prop(o, rnd, 14, "%s%d" % (rnd.choice(WORDS), i), 5, min(40000, target - o.size - len(tail)))
        i += 1
    o.add(tail)
    return o.text()


def small_objects(ns, rnd):
    """The ~57 small objects of an install file (namespaced ones without a namespace)."""
    nsl = "  namespace: %s\n" % ns if ns else ""
    comps = ["application-controller", "applicationset-controller", "dex-server", "notifications-controller",
             "redis", "repo-server", "server"]
    docs = []
    lab = lambda c: ("  labels:\n    app.kubernetes.io/component: %s\n    app.kubernetes.io/name: app-%s\n"
                     "    app.kubernetes.io/part-of: app\n" % (c, c))
    for c in comps:
        docs.append("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n%s  name: app-%s\n%s" % (lab(c), c, nsl))
    for c in comps[:6]:
        docs.append("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n%s  name: app-%s\n%s"
                    "rules:\n- apiGroups:\n  - \"\"\n  resources:\n  - secrets\n  - configmaps\n  verbs:\n"
                    "  - get\n  - list\n  - watch\n- apiGroups:\n  - apps.example.io\n  resources:\n"
                    "  - applications\n  - appprojects\n  verbs:\n  - create\n  - get\n  - list\n  - watch\n"
                    "  - update\n  - delete\n  - patch\n" % (lab(c), c, nsl))
    for c in comps[:3]:
        docs.append("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n%s  name: app-%s\n"
                    "rules:\n- apiGroups:\n  - '*'\n  resources:\n  - '*'\n  verbs:\n  - get\n  - list\n"
                    "  - watch\n- nonResourceURLs:\n  - '*'\n  verbs:\n  - '*'\n" % (lab(c), c))
    for c in comps[:6]:
        docs.append("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n%s  name: app-%s\n%s"
                    "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: app-%s\n"
                    "subjects:\n- kind: ServiceAccount\n  name: app-%s\n" % (lab(c), c, nsl, c, c))
    for c in comps[:3]:
        docs.append("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n%s"
                    "  name: app-%s\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n"
                    "  name: app-%s\nsubjects:\n- kind: ServiceAccount\n  name: app-%s\n  namespace: %s\n"
                    % (lab(c), c, c, c, ns or "app"))
    for i, n in enumerate(["cm", "cmd-params-cm", "gpg-keys-cm", "notifications-cm", "rbac-cm",
                           "ssh-known-hosts-cm", "tls-certs-cm", "redis-ha-cm"]):
        body = "".join("  key%d: %s\n" % (k, q(sentence(rnd, 8))) for k in range(6))
        if n == "ssh-known-hosts-cm":
            body += "  ssh_known_hosts: |\n" + "".join(
                "    host%d.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI%040d\n" % (k, k) for k in range(12))
        docs.append("apiVersion: v1\nkind: ConfigMap\nmetadata:\n%s  name: app-%s\n%sdata:\n%s"
                    % (lab("server"), n, nsl, body))
    for n in ["notifications-secret", "secret"]:
        docs.append("apiVersion: v1\nkind: Secret\nmetadata:\n%s  name: app-%s\n%stype: Opaque\n"
                    % (lab("server"), n, nsl))
    for c in comps + ["metrics"]:
        docs.append("apiVersion: v1\nkind: Service\nmetadata:\n%s  name: app-%s\n%sspec:\n  ports:\n"
                    "  - name: http\n    port: 80\n    protocol: TCP\n    targetPort: 8080\n  selector:\n"
                    "    app.kubernetes.io/name: app-%s\n" % (lab(c), c, nsl, c))
    for c in comps[1:]:
        docs.append("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n%s  name: app-%s\n%sspec:\n"
                    "  selector:\n    matchLabels:\n      app.kubernetes.io/name: app-%s\n  template:\n"
                    "    metadata:\n      labels:\n        app.kubernetes.io/name: app-%s\n    spec:\n"
                    "      containers:\n      - args:\n        - /usr/local/bin/app-%s\n        env:\n"
                    "        - name: APP_LOGLEVEL\n          valueFrom:\n            configMapKeyRef:\n"
                    "              key: key1\n              name: app-cmd-params-cm\n              optional: true\n"
                    "        image: quay.example.io/app/app:v2.13.1\n        imagePullPolicy: Always\n"
                    "        name: app-%s\n        ports:\n        - containerPort: 8080\n"
                    "        readinessProbe:\n          httpGet:\n            path: /healthz\n            port: 8080\n"
                    "        securityContext:\n          allowPrivilegeEscalation: false\n          capabilities:\n"
                    "            drop:\n            - ALL\n          readOnlyRootFilesystem: true\n"
                    "          runAsNonRoot: true\n      serviceAccountName: app-%s\n"
                    % (lab(c), c, nsl, c, c, c, c, c))
    docs.append("apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n%s  name: app-application-controller\n%s"
                "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: app-ctl\n"
                "  serviceName: app-application-controller\n  template:\n    metadata:\n      labels:\n"
                "        app.kubernetes.io/name: app-ctl\n    spec:\n      containers:\n      - name: ctl\n"
                "        image: quay.example.io/app/app:v2.13.1\n" % (lab("application-controller"), nsl))
    for c in comps:
        docs.append("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n%s"
                    "  name: app-%s-network-policy\n%sspec:\n  ingress:\n  - {}\n  podSelector:\n"
                    "    matchLabels:\n      app.kubernetes.io/name: app-%s\n  policyTypes:\n  - Ingress\n"
                    % (lab(c), c, nsl, c))
    return docs


def install_text(target, ns=None):
    rnd = random.Random(7)
    small = "".join("---\n" + d for d in small_objects(ns, rnd))
    crd_bytes = max(target - len(small), 30000)
    parts = [crd_text("apps.example.io", "Application", crd_bytes * 55 // 100, 11),
             crd_text("apps.example.io", "ApplicationSet", crd_bytes * 38 // 100, 12),
             crd_text("apps.example.io", "AppProject", crd_bytes * 7 // 100, 13)]
    return "".join(parts) + small


def padded_text(size, name):
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  pad: " % name
    n = size - len(head) - 1
    if n < 1:
        sys.exit("padded: %d bytes is too small" % size)
    return head + "x" * n + "\n"


def nodes_text(nodes, name):
    # root 1, apiVersion 2, kind 2, items key + seq 2; the item: map 1, apiVersion 2, kind 2,
    # metadata key + map + name 2 = 4, data key + map 2, then 2 per entry: 18 + 2k
    if nodes < 20 or nodes % 2:
        sys.exit("nodes: want an even count >= 20")
    k = (nodes - 18) // 2
    return ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n"
            "    name: %s\n  data:\n" % name + "".join("    k%d: v\n" % i for i in range(k)))


def objects(files):
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: the pure Python one is slow
    for f in files:
        for d in yaml.load_all(open(f), Loader=loader):
            if not d:
                continue
            for o in (d.get("items") or []) if "items" in d else [d]:
                o.setdefault("kind", d["kind"][:-4] if d["kind"].endswith("List") else d["kind"])
                o.setdefault("apiVersion", d.get("apiVersion"))
                print(json.dumps(o, separators=(",", ":")))


def main(a):
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == "objects":
        return objects(a[1:])
    path = a[1]
    if cmd == "crd":
        text = crd_text(a[2], a[3], int(a[4]))
    elif cmd == "install":
        text = install_text(int(a[2]), a[3] if len(a) > 3 else None)
    elif cmd == "padded":
        text = padded_text(int(a[2]), a[3])
    elif cmd == "nodes":
        text = nodes_text(int(a[2]), a[3])
    else:
        sys.exit(__doc__)
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
