"""fk_status — Kubernetes Status errors, selectors and validation for the fake API server.

Every error the fake returns is a metav1.Status shaped exactly like the ones a real
kube-apiserver sends (see ../shared/fixtures/kubernetes/replays): the keys kind, apiVersion,
metadata, status, message, reason, details, code, in that order, details carrying name / group /
kind / causes where the real server puts them. The label-selector parser follows
k8s.io/apimachinery/pkg/labels (=, ==, !=, in, notin, exists, !exists).
"""

import re


class ApiError(Exception):
    """An error that becomes a Status response."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message, "reason": self.reason}
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


def qualified(resource, group):
    """'deployments.apps' / 'configmaps' as the API server names a group resource."""
    return resource + "." + group if group else resource


def _details(name, group, kind, **extra):
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    d.update(extra)
    return d


def not_found(resource, group, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(resource, group), name),
                    _details(name, group, resource))


def not_found_path():
    """Unknown group, version or resource: the server's generic 404."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource, group, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (qualified(resource, group), name),
                    _details(name, group, resource))


def conflict_rv(resource, group, name):
    return ApiError(409, "Conflict",
                    'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                    "please apply your changes to the latest version and try again"
                    % (qualified(resource, group), name),
                    _details(name, group, resource))


def _print_path(path):
    return "".join("." + p for p in path)


def apply_conflict(conflicts):
    """conflicts: list of (manager, path tuple). Message as structured-merge-diff prints it."""
    causes = [{"reason": "FieldManagerConflict", "message": 'conflict with "%s"' % m,
               "field": _print_path(p)} for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        msg = 'Apply failed with 1 conflict: conflict with "%s": %s' % (m, _print_path(p))
    else:
        by = {}
        for m, p in conflicts:
            by.setdefault(m, []).append(p)
        lines = []
        for m in sorted(by):
            lines.append('conflicts with "%s":' % m)
            lines.extend("- " + _print_path(p) for p in by[m])
        msg = "Apply failed with %d conflicts: %s" % (len(conflicts), "\n".join(lines))
    return ApiError(409, "Conflict", msg, {"causes": causes})


def forbidden(user, verb, resource, group, namespace, name):
    where = ('in the namespace "%s"' % namespace) if namespace else "at the cluster scope"
    target = ('%s "%s"' % (qualified(resource, group), name)) if name else qualified(resource, group)
    msg = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        target, user, verb, resource, group, where)
    return ApiError(403, "Forbidden", msg, _details(name, group, resource))


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type(ctype):
    return ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                    "accepted media types include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml", {})


def invalid(kind, group, name, errors):
    """errors: list of (field, reason, detail message). Message as field.ErrorList prints it."""
    qkind = kind + "." + group if group else kind
    causes = [{"reason": r, "message": m, "field": f} for f, r, m in errors]
    parts = ["%s: %s" % (f, m) for f, _, m in errors]
    agg = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (qkind, name, agg),
                    _details(name, group, kind, causes=causes))


def internal(message):
    return ApiError(500, "InternalError", "Internal error occurred: " + message,
                    {"causes": [{"message": message}]})


def too_old(rv):
    return ApiError(410, "Expired", "too old resource version: %s" % rv)


# ---------------------------------------------------------------- names

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
MSG_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")

# Kinds whose names are DNS-1123 labels / DNS-1035 labels; everything else is a subdomain.
LABEL_NAMED = {("", "Namespace")}
DNS1035_NAMED = {("", "Service")}


def name_errors(group, kind, name):
    if not name:
        return [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]
    if (group, kind) in LABEL_NAMED:
        ok, msg, limit = DNS1123_LABEL.match(name), MSG_LABEL, 63
    elif (group, kind) in DNS1035_NAMED:
        ok, msg, limit = DNS1035_LABEL.match(name), MSG_1035, 63
    else:
        ok, msg, limit = DNS1123_SUBDOMAIN.match(name), MSG_SUBDOMAIN, 253
    errs = []
    if len(name) > limit:
        errs.append(("metadata.name", "FieldValueInvalid",
                     'Invalid value: "%s": must be no more than %d characters' % (name, limit)))
    if not ok:
        errs.append(("metadata.name", "FieldValueInvalid", 'Invalid value: "%s": %s' % (name, msg)))
    return errs


def _go_map(m):
    """A map[string]string the way Go's %#v prints it."""
    return "map[string]string{" + ", ".join('"%s":"%s"' % (k, m[k]) for k in sorted(m)) + "}"


def _dig(obj, *path):
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def selector_matches_labels(sel, labels):
    if not isinstance(sel, dict):
        return False
    ml = sel.get("matchLabels") or {}
    for k, v in ml.items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def _pod_spec_errors(prefix, spec, restart_allowed):
    errs = []
    containers = _dig(spec, "containers")
    if not containers:
        errs.append((prefix + ".containers", "FieldValueRequired", "Required value"))
    else:
        for i, c in enumerate(containers):
            p = "%s.containers[%d]" % (prefix, i)
            if not isinstance(c, dict) or not c.get("name"):
                errs.append((p + ".name", "FieldValueRequired", "Required value"))
            if not isinstance(c, dict) or not c.get("image"):
                errs.append((p + ".image", "FieldValueRequired", "Required value"))
    rp = _dig(spec, "restartPolicy")
    if restart_allowed is not None:
        if rp is None:
            errs.append((prefix + ".restartPolicy", "FieldValueRequired",
                         'Required value: valid values: "OnFailure", "Never"'))
        elif rp not in restart_allowed:
            errs.append((prefix + ".restartPolicy", "FieldValueNotSupported",
                         'Unsupported value: "%s": supported values: "OnFailure", "Never"' % rp))
    return errs


def workload_errors(group, kind, obj):
    """A small, honest subset of the built-in validation (field, reason, message)."""
    errs = []
    spec = obj.get("spec")
    if group == "apps" and kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        sel = _dig(spec, "selector")
        tlabels = _dig(spec, "template", "metadata", "labels") or {}
        if not sel:
            errs.append(("spec.selector", "FieldValueRequired", "Required value"))
        elif not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(("spec.selector", "FieldValueInvalid",
                         "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                         "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"))
        if not sel or not selector_matches_labels(sel, tlabels):
            errs.append(("spec.template.metadata.labels", "FieldValueInvalid",
                         "Invalid value: %s: `selector` does not match template `labels`" % _go_map(tlabels)))
        errs += _pod_spec_errors("spec.template.spec", _dig(spec, "template", "spec"), None)
        r = _dig(spec, "replicas")
        if isinstance(r, int) and not isinstance(r, bool) and r < 0:
            errs.append(("spec.replicas", "FieldValueInvalid",
                         "Invalid value: %d: must be greater than or equal to 0" % r))
    elif group == "batch" and kind == "Job":
        errs += _pod_spec_errors("spec.template.spec", _dig(spec, "template", "spec"), ("OnFailure", "Never"))
    elif group == "" and kind == "Pod":
        errs += _pod_spec_errors("spec", spec, None)
    elif group == "" and kind == "Service":
        for i, p in enumerate(_dig(spec, "ports") or []):
            port = p.get("port") if isinstance(p, dict) else None
            if port is None:
                errs.append(("spec.ports[%d].port" % i, "FieldValueRequired", "Required value"))
            elif not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                errs.append(("spec.ports[%d].port" % i, "FieldValueInvalid",
                             "Invalid value: %s: must be between 1 and 65535, inclusive" % port))
    elif group == "apiextensions.k8s.io" and kind == "CustomResourceDefinition":
        g = _dig(spec, "group")
        plural = _dig(spec, "names", "plural")
        if not g:
            errs.append(("spec.group", "FieldValueRequired", "Required value"))
        if not plural:
            errs.append(("spec.names.plural", "FieldValueRequired", "Required value"))
        if not _dig(spec, "names", "kind"):
            errs.append(("spec.names.kind", "FieldValueRequired", "Required value"))
        if _dig(spec, "scope") not in ("Namespaced", "Cluster"):
            errs.append(("spec.scope", "FieldValueNotSupported",
                         'Unsupported value: "%s": supported values: "Cluster", "Namespaced"' % _dig(spec, "scope")))
        if not _dig(spec, "versions"):
            errs.append(("spec.versions", "FieldValueInvalid", "Invalid value: null: must have exactly one version marked as storage version"))
        name = _dig(obj, "metadata", "name")
        if g and plural and name != "%s.%s" % (plural, g):
            errs.append(("metadata.name", "FieldValueInvalid",
                         'Invalid value: "%s": must be spec.names.plural+"."+spec.group' % name))
    elif group == "coordination.k8s.io" and kind == "Lease":
        d = _dig(spec, "leaseDurationSeconds")
        if d is not None and (not isinstance(d, int) or d <= 0):
            errs.append(("spec.leaseDurationSeconds", "FieldValueInvalid",
                         "Invalid value: %s: must be greater than 0" % d))
    return errs


# ------------------------------------------------------- CRD schema checks

_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def _json_type(v):
    if v is None:
        return "null"
    return _TYPE_NAMES.get(type(v), "unknown")


def schema_errors(schema, value, path="", top=True):
    """OpenAPI v3 structural-schema checks a CRD's validation does first: type and required.
    Messages as the replays show them."""
    errs = []
    if not isinstance(schema, dict):
        return errs
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))):
            t = _json_type(value)
            errs.append((path, "FieldValueTypeInvalid",
                         'Invalid value: "%s": %s in body must be of type integer,string: "%s"' % (t, path, t)))
        return errs
    want = schema.get("type")
    got = _json_type(value)
    if want and not top:
        ok = got == want or (want == "number" and got == "integer")
        if value is None and schema.get("nullable"):
            ok = True
        if not ok:
            errs.append((path, "FieldValueTypeInvalid",
                         'Invalid value: "%s": %s in body must be of type %s: "%s"' % (got, path, want, got)))
            return errs
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for r in schema.get("required") or []:
            if r not in value:
                errs.append(((path + "." if path else "") + r, "FieldValueRequired", "Required value"))
        for k, v in value.items():
            if top and k in ("apiVersion", "kind", "metadata"):
                continue
            if k in props:
                errs += schema_errors(props[k], v, (path + "." if path else "") + k, False)
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += schema_errors(schema["additionalProperties"], v, (path + "." if path else "") + k, False)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errs += schema_errors(schema["items"], v, "%s[%d]" % (path, i), False)
    return errs


def prune(schema, value, top=True):
    """Drop fields the structural schema does not declare (what the API server stores)."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        out = {}
        for k, v in value.items():
            if top and k in ("apiVersion", "kind", "metadata"):
                out[k] = v
            elif props is not None and k in props:
                out[k] = prune(props[k], v, False)
            elif isinstance(addl, dict):
                out[k] = prune(addl, v, False)
            elif addl is True or (props is None and addl is None and not top and schema.get("type") != "object"):
                out[k] = v
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(schema["items"], v, False) for v in value]
    return value


# ---------------------------------------------------------------- selectors

_KEY = r"[A-Za-z0-9./_-]+"
_VAL = r"[A-Za-z0-9._-]*"


def _split_top(s):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_label_selector(s):
    """Returns a list of (key, op, values); op in = != in notin exists !exists."""
    reqs = []
    if s is None or s.strip() == "":
        return reqs
    for part in _split_top(s):
        p = part.strip()
        if p == "":
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        m = re.fullmatch(r"!\s*(%s)" % _KEY, p)
        if m:
            reqs.append((m.group(1), "!exists", None))
            continue
        m = re.fullmatch(r"(%s)\s*(notin|in)\s*\(([^()]*)\)" % _KEY, p)
        if m:
            vals = [v.strip() for v in m.group(3).split(",")]
            if any(not re.fullmatch(_VAL, v) for v in vals):
                raise bad_request("unable to parse requirement: invalid value in %r" % p)
            reqs.append((m.group(1), m.group(2), set(vals)))
            continue
        m = re.fullmatch(r"(%s)\s*(==|=|!=)\s*(%s)" % (_KEY, _VAL), p)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((m.group(1), op, m.group(3)))
            continue
        m = re.fullmatch(_KEY, p)
        if m:
            reqs.append((p, "exists", None))
            continue
        raise bad_request("unable to parse requirement: invalid label selector %r" % p)
    return reqs


def labels_match(reqs, labels):
    for k, op, v in reqs:
        have = k in labels
        if op == "=" and (not have or labels[k] != v):
            return False
        if op == "!=" and have and labels[k] == v:
            return False
        if op == "in" and (not have or labels[k] not in v):
            return False
        if op == "notin" and have and labels[k] in v:
            return False
        if op == "exists" and not have:
            return False
        if op == "!exists" and have:
            return False
    return True


def parse_field_selector(s):
    reqs = []
    if s is None or s.strip() == "":
        return reqs
    for part in s.split(","):
        m = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*(==|=|!=)\s*([^,]*?)\s*", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, part))
        field = m.group(1)
        if field not in ("metadata.name", "metadata.namespace"):
            raise bad_request('"%s" is not a known field selector: only "metadata.name", "metadata.namespace"' % field)
        reqs.append((field, "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    md = obj.get("metadata") or {}
    for f, op, v in reqs:
        have = md.get("name") if f == "metadata.name" else (md.get("namespace") or "")
        if op == "=" and have != v:
            return False
        if op == "!=" and have == v:
            return False
    return True
