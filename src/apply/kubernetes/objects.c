/*
 * objects.c — what a Kubernetes object is to tagmoor (kube.h): its id
 * ("group/Kind/namespace/name"), the owner and lease names, which built-in
 * kinds are cluster-scoped, Flux's apply order, and parse(): a manifest file
 * read document by document with the kubectl typing rules (yaml.h), each
 * object checked, stripped of what the server owns, labelled as tagmoor's and
 * kept as the JSON that is sent plus the few fields apply, prune and health
 * read (struct kobj, kube_internal.h).
 *
 * Where it sits in the pipeline: plan hands every .yaml, .yml and .json file
 * under the [kubernetes] paths to parse(); the applier (kube.c) and prune
 * read the ids and the order.
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/source/http.h"
#include "tagmoor/doc/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a manifest may be when [kubernetes] says nothing (config.c has the same defaults). */
#define DEFAULT_MAX_FILE (16u << 20)
#define DEFAULT_MAX_DOCUMENT (8u << 20)
#define DEFAULT_MAX_NODES 500000u

/* Copies s (at most cap bytes of it) into out without control characters:
 * for text from the server or the repository in one-line messages. */
void kube_clean(char *out, size_t outlen, const char *s, size_t cap)
{
	size_t n = 0;

	if (!outlen)
		return;
	for (size_t i = 0; s && s[i] && i < cap && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	out[n] = '\0';
}

int kube_copy_str(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(s);

	if (n >= outlen)
		return TM_ELIMIT;
	memcpy(out, s, n + 1);
	return 0;
}

int tm_kube_id_parse(struct tm_kube_ref *out, const char *id)
{
	const char *p = id;
	char *fields[4] = { out->group, out->kind, out->ns, out->name };
	size_t caps[4] = { sizeof(out->group), sizeof(out->kind), sizeof(out->ns),
			   sizeof(out->name) };

	for (int i = 0; i < 4; i++) {
		size_t n = i < 3 ? strcspn(p, "/") : strlen(p);
		if ((i < 3 && p[n] != '/') || (i == 3 && strchr(p, '/')) || n >= caps[i])
			return tm_error_set(TM_EPARSE, "\"%.256s\" is not a Kubernetes object id",
					    id);
		memcpy(fields[i], p, n);
		fields[i][n] = '\0';
		p += n + (i < 3);
	}
	if (!out->kind[0] || !out->name[0])
		return tm_error_set(TM_EPARSE, "\"%.256s\" is not a Kubernetes object id", id);
	return 0;
}

int tm_kube_owner(char out[17], const struct tm_config *cfg)
{
	char url[2048];
	unsigned char d[TM_HASH_MAX_LEN];
	int r;

	tm_http_redact_url(url, sizeof(url), cfg && cfg->source.url ? cfg->source.url : "");
	if ((r = tm_crypto_hash(d, TM_HASH_SHA256, url, strlen(url))) < 0)
		return r;
	tm_hex(out, d, 8);
	return 0;
}

int tm_kube_lease_name(char out[32], const struct tm_config *cfg)
{
	char url[2048];
	unsigned char d[TM_HASH_MAX_LEN];
	const char *ref = cfg && cfg->source.ref ? cfg->source.ref : "";
	struct tm_span parts[3];
	int r;

	tm_http_redact_url(url, sizeof(url), cfg && cfg->source.url ? cfg->source.url : "");
	parts[0] = (struct tm_span){ url, strlen(url) };
	parts[1] = (struct tm_span){ "\n", 1 };
	parts[2] = (struct tm_span){ ref, strlen(ref) };
	if ((r = tm_crypto_hashv(d, TM_HASH_SHA256, parts, 3)) < 0)
		return r;
	memcpy(out, "tagmoor-", 8);
	tm_hex(out + 8, d, 8);
	return 0;
}

/* Built-in kinds by scope, from the API server's discovery documents. */
static const char *const cluster_kinds[] = {
	"/ComponentStatus",
	"/Namespace",
	"/Node",
	"/PersistentVolume",
	"admissionregistration.k8s.io/MutatingAdmissionPolicy",
	"admissionregistration.k8s.io/MutatingAdmissionPolicyBinding",
	"admissionregistration.k8s.io/MutatingWebhookConfiguration",
	"admissionregistration.k8s.io/ValidatingAdmissionPolicy",
	"admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding",
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration",
	"apiextensions.k8s.io/CustomResourceDefinition",
	"apiregistration.k8s.io/APIService",
	"certificates.k8s.io/CertificateSigningRequest",
	"certificates.k8s.io/ClusterTrustBundle",
	"flowcontrol.apiserver.k8s.io/FlowSchema",
	"flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
	"networking.k8s.io/IPAddress",
	"networking.k8s.io/IngressClass",
	"networking.k8s.io/ServiceCIDR",
	"node.k8s.io/RuntimeClass",
	"rbac.authorization.k8s.io/ClusterRole",
	"rbac.authorization.k8s.io/ClusterRoleBinding",
	"resource.k8s.io/DeviceClass",
	"resource.k8s.io/DeviceTaintRule",
	"resource.k8s.io/ResourceSlice",
	"scheduling.k8s.io/PriorityClass",
	"storage.k8s.io/CSIDriver",
	"storage.k8s.io/CSINode",
	"storage.k8s.io/StorageClass",
	"storage.k8s.io/VolumeAttachment",
	"storage.k8s.io/VolumeAttributesClass",
	"storagemigration.k8s.io/StorageVersionMigration",
	NULL
};

static const char *const namespaced_kinds[] = { "/Binding",
						"/ConfigMap",
						"/Endpoints",
						"/Event",
						"/LimitRange",
						"/PersistentVolumeClaim",
						"/Pod",
						"/PodTemplate",
						"/ReplicationController",
						"/ResourceQuota",
						"/Secret",
						"/Service",
						"/ServiceAccount",
						"apps/ControllerRevision",
						"apps/DaemonSet",
						"apps/Deployment",
						"apps/ReplicaSet",
						"apps/StatefulSet",
						"autoscaling/HorizontalPodAutoscaler",
						"batch/CronJob",
						"batch/Job",
						"coordination.k8s.io/Lease",
						"coordination.k8s.io/LeaseCandidate",
						"discovery.k8s.io/EndpointSlice",
						"events.k8s.io/Event",
						"networking.k8s.io/Ingress",
						"networking.k8s.io/NetworkPolicy",
						"policy/PodDisruptionBudget",
						"rbac.authorization.k8s.io/Role",
						"rbac.authorization.k8s.io/RoleBinding",
						"resource.k8s.io/ResourceClaim",
						"resource.k8s.io/ResourceClaimTemplate",
						"storage.k8s.io/CSIStorageCapacity",
						NULL };

static int in_kind_table(const char *const *t, const char *group, const char *kind)
{
	size_t gl = strlen(group);

	for (size_t i = 0; t[i]; i++)
		if (strncmp(t[i], group, gl) == 0 && t[i][gl] == '/' &&
		    strcmp(t[i] + gl + 1, kind) == 0)
			return 1;
	return 0;
}

int tm_kube_builtin_scope(const char *group, const char *kind)
{
	if (in_kind_table(cluster_kinds, group, kind))
		return 1;
	if (in_kind_table(namespaced_kinds, group, kind))
		return 0;
	return -1;
}

int tm_kube_stage(const char *group, const char *kind)
{
	if ((strcmp(kind, "CustomResourceDefinition") == 0 &&
	     strcmp(group, "apiextensions.k8s.io") == 0) ||
	    (strcmp(kind, "Namespace") == 0 && !*group) ||
	    (strcmp(kind, "ClusterRole") == 0 && strcmp(group, "rbac.authorization.k8s.io") == 0))
		return TM_KUBE_STAGE_DEFINITIONS;
	{
		size_t n = strlen(kind);
		if (n >= 5 && strcmp(kind + n - 5, "Class") == 0)
			return TM_KUBE_STAGE_CLASSES;
	}
	return TM_KUBE_STAGE_RESOURCES;
}

int tm_kube_kind_rank(const char *kind)
{
	static const char *const first[] = { "CustomResourceDefinition",
					     "Namespace",
					     "ResourceQuota",
					     "StorageClass",
					     "ServiceAccount",
					     "PodSecurityPolicy",
					     "Role",
					     "ClusterRole",
					     "RoleBinding",
					     "ClusterRoleBinding",
					     "ConfigMap",
					     "Secret",
					     "Service",
					     "LimitRange",
					     "PriorityClass",
					     "Deployment",
					     "StatefulSet",
					     "CronJob",
					     "PodDisruptionBudget" };
	static const char *const last[] = { "MutatingWebhookConfiguration",
					    "ValidatingWebhookConfiguration" };
	const int nfirst = (int)(sizeof(first) / sizeof(first[0]));

	for (int i = 0; i < nfirst; i++)
		if (strcmp(kind, first[i]) == 0)
			return -nfirst + i;
	for (int i = 0; i < 2; i++)
		if (strcmp(kind, last[i]) == 0)
			return 1 + i;
	return 0;
}

struct order_key {
	size_t index;
	int ok, stage, rank;
	struct tm_kube_ref ref;
};

static int order_cmp(const void *a, const void *b)
{
	const struct order_key *x = a, *y = b;
	int c;

	if (x->ok != y->ok)
		return x->ok ? -1 : 1;
	if (x->stage != y->stage)
		return x->stage < y->stage ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if ((c = strcmp(x->ref.group, y->ref.group)) != 0 ||
	    (c = strcmp(x->ref.kind, y->ref.kind)) != 0 ||
	    (c = strcmp(x->ref.ns, y->ref.ns)) != 0 || (c = strcmp(x->ref.name, y->ref.name)) != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

int tm_kube_apply_order(size_t *order, const struct tm_objset *set)
{
	struct order_key *k;

	if (!set->n)
		return 0;
	if (!(k = calloc(set->n, sizeof(*k))))
		return tm_error_nomem();
	for (size_t i = 0; i < set->n; i++) {
		k[i].index = i;
		k[i].ok = tm_kube_id_parse(&k[i].ref, set->v[i].id) == 0;
		if (k[i].ok) {
			k[i].stage = tm_kube_stage(k[i].ref.group, k[i].ref.kind);
			k[i].rank = tm_kube_kind_rank(k[i].ref.kind);
		}
	}
	tm_error_clear();
	qsort(k, set->n, sizeof(*k), order_cmp);
	for (size_t i = 0; i < set->n; i++)
		order[i] = k[i].index;
	free(k);
	return 0;
}

int kube_split_api_version(const char *av, char *group, size_t gl, char *version, size_t vl)
{
	const char *slash = strchr(av, '/');

	if (!slash) {
		group[0] = '\0';
		return kube_copy_str(version, vl, av);
	}
	if ((size_t)(slash - av) >= gl || strchr(slash + 1, '/'))
		return TM_ELIMIT;
	memcpy(group, av, (size_t)(slash - av));
	group[slash - av] = '\0';
	return kube_copy_str(version, vl, slash + 1);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

int kube_wants(const char *path, const char *basename)
{
	(void)path;
	return ends_with(basename, ".yaml") || ends_with(basename, ".yml") ||
	       ends_with(basename, ".json");
}

/* A name or namespace that can be put into an id and a URL path. The server
 * checks the real rules (DNS subdomain, label, ...) and names the field. */
static int valid_name(const char *s, size_t len, size_t max)
{
	if (!len || len > max || strlen(s) != len || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c == 0x7f || c == '/' || c == '%')
			return 0;
	}
	return 1;
}

static int valid_kind(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > TM_KUBE_KIND_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

static int valid_api_version(const char *av)
{
	const char *slash = strchr(av, '/'), *v = slash ? slash + 1 : av;
	size_t gl = slash ? (size_t)(slash - av) : 0;

	if (slash && (gl == 0 || gl > TM_KUBE_GROUP_MAX))
		return 0;
	for (size_t i = 0; i < gl; i++)
		if (!((av[i] >= 'a' && av[i] <= 'z') || (av[i] >= '0' && av[i] <= '9') ||
		      av[i] == '.' || av[i] == '-'))
			return 0;
	if (!*v || strlen(v) > 63)
		return 0;
	for (; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9')))
			return 0;
	return 1;
}

const char *kube_doc_str(const struct tm_doc *d)
{
	return d && d->type == TM_DOC_STRING && strlen(d->u.str.s) == d->u.str.len ? d->u.str.s
										   : NULL;
}

static int set_label(struct tm_doc *labels, const char *k, const char *v)
{
	struct tm_doc *s;
	int r;

	if ((r = tm_doc_new_string(&s, v)) < 0)
		return r;
	return tm_doc_map_set(labels, k, s);
}

/* metadata.namespace of an object: *ns is NULL when there is none (or it
 * is empty), else a name that can go into an id and a URL path. */
static int read_namespace(const char **ns, const struct tm_doc *md, const char *path, unsigned line,
			  const char *kbuf, const char *name)
{
	const struct tm_doc *nsd = tm_doc_map_get(md, "namespace");

	*ns = NULL;
	if (!nsd || nsd->type == TM_DOC_NULL)
		return 0;
	if (!(*ns = kube_doc_str(nsd)))
		return tm_error_set(TM_EPARSE,
				    "%.256s (line %u): %s %.64s: metadata.namespace must be a "
				    "string",
				    path, line, kbuf, name);
	if (!**ns)
		*ns = NULL;
	else if (!valid_name(*ns, strlen(*ns), 63))
		return tm_error_set(TM_EPARSE,
				    "%.256s (line %u): %s %.64s: invalid metadata.namespace", path,
				    line, kbuf, name);
	return 0;
}

/* Checks one object and makes it what is applied; writes its id. */
static int prepare(char *id, size_t idlen, struct tm_doc *doc, const char *path, const char *owner,
		   const char *default_ns)
{
	const struct tm_doc *avd = tm_doc_map_get(doc, "apiVersion"),
			    *kd = tm_doc_map_get(doc, "kind");
	struct tm_doc *md = tm_doc_map_get(doc, "metadata"), *labels;
	const char *av = kube_doc_str(avd), *kind = kube_doc_str(kd), *name, *ns = NULL, *idns;
	char group[TM_KUBE_GROUP_MAX + 1], version[64], kbuf[80];
	static const char *const server_owned[] = { "managedFields",
						    "resourceVersion",
						    "uid",
						    "creationTimestamp",
						    "selfLink",
						    "generation",
						    "deletionTimestamp",
						    "deletionGracePeriodSeconds",
						    NULL };
	unsigned line = doc->line;
	int scope, n, r;

	kube_clean(kbuf, sizeof(kbuf), kind ? kind : "?", 64);
	if (!av || !*av)
		return tm_error_set(
			TM_EPARSE,
			"%.256s (line %u): %s: apiVersion is required and must be a string", path,
			line, kbuf);
	if (!valid_api_version(av)) {
		char a[80];
		kube_clean(a, sizeof(a), av, 64);
		return tm_error_set(TM_EPARSE, "%.256s (line %u): %s: malformed apiVersion \"%s\"",
				    path, line, kbuf, a);
	}
	if (!kind || !valid_kind(kind))
		return tm_error_set(
			TM_EPARSE,
			"%.256s (line %u): kind is required and must be a name like Deployment",
			path, line);
	if (!md || md->type != TM_DOC_MAP)
		return tm_error_set(TM_EPARSE,
				    "%.256s (line %u): %s: metadata is required and must be a map",
				    path, line, kbuf);
	name = kube_doc_str(tm_doc_map_get(md, "name"));
	if (!name || !*name) {
		int gen = tm_doc_map_get(md, "generateName") != NULL;
		return tm_error_set(
			TM_EPARSE,
			"%.256s (line %u): %s: metadata.name is required and must be a string%s",
			path, line, kbuf, gen ? " (generateName cannot be applied)" : "");
	}
	if (!valid_name(name, strlen(name), TM_KUBE_NAME_MAX)) {
		char nb[80];
		kube_clean(nb, sizeof(nb), name, 64);
		return tm_error_set(TM_EPARSE, "%.256s (line %u): %s: invalid metadata.name \"%s\"",
				    path, line, kbuf, nb);
	}
	if ((r = read_namespace(&ns, md, path, line, kbuf, name)) < 0)
		return r;
	if (kube_split_api_version(av, group, sizeof(group), version, sizeof(version)) < 0)
		return tm_error_set(TM_EPARSE, "%.256s (line %u): %s: malformed apiVersion", path,
				    line, kbuf);
	scope = tm_kube_builtin_scope(group, kind);
	if (scope == 1 && ns) {
		/* kubectl ignores a namespace on a cluster-scoped object; so do we */
		tm_doc_map_remove(md, "namespace");
		ns = NULL;
	}
	idns = ns ? ns : scope == 0 ? default_ns : "";
	/* what the server owns is never applied */
	tm_doc_map_remove(doc, "status");
	for (size_t i = 0; server_owned[i]; i++)
		tm_doc_map_remove(md, server_owned[i]);
	labels = tm_doc_map_get(md, "labels");
	if (!labels || labels->type == TM_DOC_NULL) {
		if ((r = tm_doc_new_map(&labels)) < 0 ||
		    (r = tm_doc_map_set(md, "labels", labels)) < 0)
			return r;
	} else if (labels->type != TM_DOC_MAP) {
		return tm_error_set(TM_EPARSE,
				    "%.256s (line %u): %s %.64s: metadata.labels must be a map",
				    path, line, kbuf, name);
	}
	if ((r = set_label(labels, TM_KUBE_LABEL_MANAGED_BY, TM_KUBE_MANAGED_BY)) < 0 ||
	    (r = set_label(labels, TM_KUBE_LABEL_OWNER, owner)) < 0)
		return r;
	n = snprintf(id, idlen, "%s/%s/%s/%s", group, kind, idns, name);
	if (n < 0 || (size_t)n >= idlen)
		return tm_error_set(TM_EPARSE, "%.256s (line %u): object id too long", path, line);
	return 0;
}

void kube_free_data(void *data)
{
	struct kobj *k = data;

	if (!k)
		return;
	free(k->api_version);
	free(k->crd_group);
	free(k->crd_kind);
	free(k->crd_plural);
	tm_strv_free(k->crd_versions, k->ncrd_versions);
	free(k);
}

static int dup_opt(char **out, const char *s)
{
	if (!s)
		return 0;
	return (*out = strdup(s)) ? 0 : TM_ENOMEM;
}

static int kobj_make(struct kobj **out, const struct tm_doc *doc, const char *group,
		     const char *kind)
{
	struct kobj *k = calloc(1, sizeof(*k));
	const char *v;
	int r = 0;

	*out = NULL;
	if (!k)
		return tm_error_nomem();
	k->line = doc->line;
	r |= dup_opt(&k->api_version, kube_doc_str(tm_doc_map_get(doc, "apiVersion")));
	k->has_ns = tm_doc_get_path(doc, "metadata", "namespace", (const char *)NULL) != NULL;
	v = kube_doc_str(tm_doc_get_path(doc, "metadata", "annotations", TM_KUBE_ANNOTATION_ADOPT,
					 (const char *)NULL));
	k->adopt = v && strcmp(v, "true") == 0;
	if (strcmp(kind, "CustomResourceDefinition") == 0 &&
	    strcmp(group, "apiextensions.k8s.io") == 0) {
		const struct tm_doc *spec = tm_doc_map_get(doc, "spec"), *vs;
		const char *scope = kube_doc_str(tm_doc_map_get(spec, "scope"));

		r |= dup_opt(&k->crd_group, kube_doc_str(tm_doc_map_get(spec, "group")));
		r |= dup_opt(&k->crd_kind, kube_doc_str(tm_doc_get_path(spec, "names", "kind",
									(const char *)NULL)));
		r |= dup_opt(&k->crd_plural, kube_doc_str(tm_doc_get_path(spec, "names", "plural",
									  (const char *)NULL)));
		k->crd_cluster = scope && strcmp(scope, "Cluster") == 0;
		vs = tm_doc_map_get(spec, "versions");
		for (size_t j = 0; r == 0 && vs && vs->type == TM_DOC_SEQ && j < vs->u.seq.n; j++) {
			const char *name = kube_doc_str(tm_doc_map_get(vs->u.seq.v[j], "name"));
			if (name && tm_strv_push(&k->crd_versions, &k->ncrd_versions, name) < 0)
				r = TM_ENOMEM;
		}
	}
	if (r) {
		kube_free_data(k);
		return tm_error_nomem();
	}
	*out = k;
	return 0;
}

struct parse_ctx {
	struct tm_objset *out;
	const char *path;
	const char *owner;
	const char *default_ns;
	size_t max_json;
};

/* One object of the file (tm_yaml_parse_each_borrowed): checked, made what
 * is applied, kept as JSON and a kobj; the tree is the reader's (freed after). */
static int parse_one(void *arg, struct tm_doc *doc)
{
	struct parse_ctx *pc = arg;
	char id[TM_KUBE_ID_MAX + 1];
	struct tm_kube_ref ref;
	struct kobj *k = NULL;
	struct tm_buf j;
	size_t len;
	int r;

	tm_buf_init(&j, pc->max_json + 1);
	if ((r = prepare(id, sizeof(id), doc, pc->path, pc->owner, pc->default_ns)) < 0)
		goto out;
	if ((r = tm_doc_to_json(&j, doc)) < 0) {
		r = tm_error_wrap(r, "%.256s (line %u)", pc->path, doc->line);
		goto out;
	}
	if ((r = tm_kube_id_parse(&ref, id)) < 0 ||
	    (r = kobj_make(&k, doc, ref.group, ref.kind)) < 0)
		goto out;
	/* the JSON is kept as it was written (no copy: a CRD's is megabytes) */
	len = j.len;
	if ((r = tm_objset_take(pc->out, id, pc->path, tm_buf_detach_fit(&j), len, k)) < 0)
		kube_free_data(k);
out:
	tm_buf_free(&j);
	return r;
}

const char *kube_default_ns(const struct tm_config *cfg)
{
	return cfg && cfg->kubernetes.default_namespace && *cfg->kubernetes.default_namespace
		       ? cfg->kubernetes.default_namespace
		       : "default";
}

int kube_parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
	       const char *relpath, const char *content, size_t len)
{
	const struct tm_config *cfg = ctx ? ctx->cfg : NULL;
	struct tm_yaml_limits lim = tm_yaml_limits_default;
	size_t max_doc = DEFAULT_MAX_DOCUMENT;
	char owner[17];
	struct parse_ctx pc = { out, path, owner, kube_default_ns(cfg), MAX_OBJECT_JSON };
	int r;

	(void)relpath; /* the id comes from the object, never from where the file is */
	if ((r = tm_kube_owner(owner, cfg)) < 0)
		return r;
	lim.max_bytes = DEFAULT_MAX_FILE;
	lim.max_nodes = DEFAULT_MAX_NODES;
	if (cfg && cfg->kubernetes.max_file)
		lim.max_bytes = (size_t)cfg->kubernetes.max_file;
	if (cfg && cfg->kubernetes.max_document)
		max_doc = (size_t)cfg->kubernetes.max_document;
	if (cfg && cfg->kubernetes.max_nodes)
		lim.max_nodes = (size_t)cfg->kubernetes.max_nodes;
	r = tm_yaml_parse_each_borrowed(content, len, path, &lim, max_doc, parse_one, &pc);
	if (r == TM_ELIMIT) {
		/* name the key that raises the limit that was hit */
		const char *m = tm_error_last(),
			   *key = strstr(m, "for one document")        ? "max_document"
				  : strstr(m, "nodes in one document") ? "max_nodes"
				  : strstr(m, "exceeds the limit of")  ? "max_file"
								       : NULL;
		if (key) {
			char msg[1024];
			snprintf(msg, sizeof(msg), "%s", m);
			r = tm_error_set(TM_ELIMIT, "%s (refused; [kubernetes] %s)", msg, key);
		}
	}
	return r;
}
