/*
 * kube.c — the Kubernetes applier (kube.h, docs/kubernetes.md).
 *
 * Where it sits in the pipeline: plan hands every .yaml, .yml and .json file
 * under the [kubernetes] paths to parse(), which reads it with the kubectl
 * typing rules (yaml.h), checks each object's identity, strips what the
 * server owns (status, managedFields, resourceVersion, uid), adds tagmoor's
 * labels and keeps the object as the JSON it sends plus the few fields apply,
 * prune and health read (struct kobj): a file is read document by document
 * under the [kubernetes] limits and each tree is freed before the next, so
 * memory follows the largest object. API answers are built only as far as
 * they are read (no managedFields; no CRD schema while waiting on it).
 * apply() then takes the
 * cluster's apply lease (one node of a cluster applies), resolves every kind
 * through API discovery and server-side applies the objects in Flux's
 * stages: CRDs, Namespaces and ClusterRoles first (CRDs waited on until
 * Established), then classes, then the rest with webhooks last. prune()
 * deletes objects that left the repository when their labels prove they are
 * tagmoor's; health() waits on the kstatus rules; drift() compares a
 * server-side dry-run apply with the live object and re-applies.
 *
 * The parts, top to bottom: ids and labels, apply order, discovery, API
 * error messages, the API client (one HTTP client per pass, so connections
 * are reused), the pass state and the lease, and the applier functions.
 * Every API failure becomes one TM_EAPPLY message naming the object.
 */
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/source/http.h"
#include "tagmoor/doc/json.h"
#include "tagmoor/apply/kubernetes/kstatus.h"
#include "tagmoor/apply/kubernetes/kubeconfig.h"
#include "tagmoor/core/log.h"
#include "tagmoor/doc/yaml.h"
#include "tagmoor/core/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PATH_MAX_K 2048
#define MAX_OBJECT_JSON (8u << 20) /* one object as JSON */
#define MAX_RESPONSE (16u << 20)   /* one API answer (list pages are capped by limit) */
#define LIST_LIMIT 500
#define DEFAULT_TIMEOUT_MS 30000u
#define CRD_MIN_WAIT_MS 30000u /* CRDs are waited on at least this long */
#define MSG_MAX 900
#define DIFF_PATHS_MAX 20
#define FOREIGN_GET_MAX 8 /* more new objects of one kind: one LIST, not a GET each */
/* What a manifest may be when [kubernetes] says nothing (config.c has the same defaults). */
#define DEFAULT_MAX_FILE (16u << 20)
#define DEFAULT_MAX_DOCUMENT (8u << 20)
#define DEFAULT_MAX_NODES 500000u

#define META_LIST_ACCEPT \
	"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#define META_ACCEPT "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define AGG_ACCEPT                                                                   \
	"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"      \
	"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList," \
	"application/json"

/* Set when a request of this pass failed because the API server could not be
 * reached (after the retry): the pass then knows that a failure says nothing
 * about the revision (it is not marked bad, and is retried with backoff). */
static int net_failed;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0)
		;
}

/* Copies s (at most cap bytes of it) into out without control characters:
 * for text from the server or the repository in one-line messages. */
static void clean(char *out, size_t outlen, const char *s, size_t cap)
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

static int copy_str(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(s);

	if (n >= outlen)
		return TM_ELIMIT;
	memcpy(out, s, n + 1);
	return 0;
}

/* ================================================================ ids */

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

static void hex16(char out[17], const unsigned char *d)
{
	static const char hx[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[16] = '\0';
}

int tm_kube_owner(char out[17], const struct tm_config *cfg)
{
	char url[2048];
	unsigned char d[TM_HASH_MAX_LEN];
	int r;

	tm_http_redact_url(url, sizeof(url), cfg && cfg->source.url ? cfg->source.url : "");
	if ((r = tm_crypto_hash(d, TM_HASH_SHA256, url, strlen(url))) < 0)
		return r;
	hex16(out, d);
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
	hex16(out + 8, d);
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

/* ================================================================ order */

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
		return tm_error_set(TM_ENOMEM, "out of memory");
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

/* ================================================================ discovery */

struct gv {
	char *group, *version;
	int state;    /* 1 listed, 2 loaded, -1 failed */
	unsigned seq; /* order of listing: the preferred version first */
};

struct res {
	char *group, *version, *kind, *resource;
	int namespaced;
};

struct tm_kube_discovery {
	struct gv *gv;
	size_t ngv, capgv;
	struct res *r;
	size_t nr, capr;
	unsigned seq;
};

int tm_kube_discovery_new(struct tm_kube_discovery **out)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return tm_error_set(TM_ENOMEM, "out of memory");
	return 0;
}

void tm_kube_discovery_clear(struct tm_kube_discovery *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ngv; i++) {
		free(d->gv[i].group);
		free(d->gv[i].version);
	}
	for (size_t i = 0; i < d->nr; i++) {
		free(d->r[i].group);
		free(d->r[i].version);
		free(d->r[i].kind);
		free(d->r[i].resource);
	}
	d->ngv = d->nr = 0;
	d->seq = 0;
}

void tm_kube_discovery_free(struct tm_kube_discovery *d)
{
	if (!d)
		return;
	tm_kube_discovery_clear(d);
	free(d->gv);
	free(d->r);
	free(d);
}

size_t tm_kube_discovery_count(const struct tm_kube_discovery *d)
{
	return d->nr;
}

static struct gv *gv_get(const struct tm_kube_discovery *d, const char *group, const char *version)
{
	for (size_t i = 0; i < d->ngv; i++)
		if (strcmp(d->gv[i].group, group) == 0 && strcmp(d->gv[i].version, version) == 0)
			return &d->gv[i];
	return NULL;
}

static int gv_add(struct tm_kube_discovery *d, const char *group, const char *version, int state)
{
	struct gv *g = gv_get(d, group, version);

	if (g) {
		if (state == 2 || g->state != 2)
			g->state = state;
		return 0;
	}
	if (d->ngv == d->capgv) {
		size_t nc = d->capgv ? d->capgv * 2 : 64;
		struct gv *nv = realloc(d->gv, nc * sizeof(*nv));
		if (!nv)
			return tm_error_set(TM_ENOMEM, "out of memory");
		d->gv = nv;
		d->capgv = nc;
	}
	g = &d->gv[d->ngv];
	g->group = strdup(group);
	g->version = strdup(version);
	if (!g->group || !g->version) {
		free(g->group);
		free(g->version);
		return tm_error_set(TM_ENOMEM, "out of memory");
	}
	g->state = state;
	g->seq = d->seq++;
	d->ngv++;
	return 0;
}

static int res_add(struct tm_kube_discovery *d, const char *group, const char *version,
		   const char *kind, const char *resource, int namespaced)
{
	struct res *x;

	if (!*kind || !*resource || strchr(resource, '/'))
		return 0; /* subresources and malformed entries */
	for (size_t i = 0; i < d->nr; i++) {
		x = &d->r[i];
		if (strcmp(x->group, group) == 0 && strcmp(x->version, version) == 0 &&
		    strcmp(x->kind, kind) == 0)
			return 0;
	}
	if (d->nr == d->capr) {
		size_t nc = d->capr ? d->capr * 2 : 256;
		struct res *nv = realloc(d->r, nc * sizeof(*nv));
		if (!nv)
			return tm_error_set(TM_ENOMEM, "out of memory");
		d->r = nv;
		d->capr = nc;
	}
	x = &d->r[d->nr];
	x->group = strdup(group);
	x->version = strdup(version);
	x->kind = strdup(kind);
	x->resource = strdup(resource);
	x->namespaced = namespaced;
	if (!x->group || !x->version || !x->kind || !x->resource) {
		free(x->group);
		free(x->version);
		free(x->kind);
		free(x->resource);
		return tm_error_set(TM_ENOMEM, "out of memory");
	}
	d->nr++;
	return 0;
}

int tm_kube_discovery_mark_failed(struct tm_kube_discovery *d, const char *group,
				  const char *version)
{
	return gv_add(d, group, version, -1);
}

/* Media type parameter `name` of a Content-Type, into out ("" when absent). */
static void ctype_param(char *out, size_t outlen, const char *ctype, const char *name)
{
	const char *p = strchr(ctype, ';');
	size_t nl = strlen(name);

	out[0] = '\0';
	while (p) {
		const char *q;
		size_t vl;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		q = strchr(p, ';');
		vl = q ? (size_t)(q - p) : strlen(p);
		if (vl > nl && strncasecmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t n = vl - nl - 1;
			while (n && (p[nl + 1 + n - 1] == ' ' || p[nl + 1 + n - 1] == '\t'))
				n--;
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, p + nl + 1, n);
			out[n] = '\0';
			return;
		}
		p = q;
	}
}

static int parse_json(struct tm_doc **out, const char *body, size_t len, const char *what)
{
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;
	int r;

	lim.max_bytes = MAX_RESPONSE;
	lim.max_nodes = 4u << 20;
	if ((r = tm_json_parse(out, body, len, &lim)) < 0)
		return tm_error_wrap(TM_EAPPLY, "%s: the answer is not JSON", what);
	return 0;
}

/* An answer about one object, built only in part (yaml.h: tm_json_parse_pruned):
 * managedFields are never read, and callers that need less say so. */
static const char *const no_managed[] = { "metadata.managedFields", NULL };
static const char *const no_managed_spec[] = { "metadata.managedFields", "spec", NULL };
static const char *const only_metadata[] = { "metadata", NULL };

static int parse_object(struct tm_doc **out, const char *body, size_t len, const char *what,
			const char *const *keep, const char *const *skip)
{
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;
	int r;

	lim.max_bytes = MAX_RESPONSE;
	lim.max_nodes = 4u << 20;
	if ((r = tm_json_parse_pruned(out, body, len, &lim, keep, skip)) < 0)
		return tm_error_wrap(TM_EAPPLY, "%s: the answer is not JSON", what);
	return 0;
}

static int add_aggregated(struct tm_kube_discovery *d, const struct tm_doc *doc)
{
	const struct tm_doc *items = tm_doc_map_get(doc, "items");
	int r;

	if (!items || items->type != TM_DOC_SEQ)
		return tm_error_set(TM_EAPPLY, "discovery: APIGroupDiscoveryList without items");
	for (size_t i = 0; i < items->u.seq.n; i++) {
		const struct tm_doc *it = items->u.seq.v[i];
		const char *group =
			tm_doc_string(tm_doc_get_path(it, "metadata", "name", (const char *)NULL));
		const struct tm_doc *versions = tm_doc_map_get(it, "versions");

		if (!group)
			group = ""; /* the core group at /api has no name */
		for (size_t j = 0;
		     versions && versions->type == TM_DOC_SEQ && j < versions->u.seq.n; j++) {
			const struct tm_doc *v = versions->u.seq.v[j];
			const char *version = tm_doc_string(tm_doc_map_get(v, "version"));
			const char *fresh = tm_doc_string(tm_doc_map_get(v, "freshness"));
			const struct tm_doc *rs = tm_doc_map_get(v, "resources");

			if (!version || !*version)
				continue;
			if (fresh && strcmp(fresh, "Stale") == 0) {
				/* an aggregated API server that did not answer: tolerated */
				tm_log_debug("kubernetes: discovery of %s/%s is stale; skipped",
					     group, version);
				if ((r = gv_add(d, group, version, -1)) < 0)
					return r;
				continue;
			}
			if ((r = gv_add(d, group, version, 2)) < 0)
				return r;
			for (size_t k = 0; rs && rs->type == TM_DOC_SEQ && k < rs->u.seq.n; k++) {
				const struct tm_doc *x = rs->u.seq.v[k];
				const char *res = tm_doc_string(tm_doc_map_get(x, "resource"));
				const char *kind =
					tm_doc_string(tm_doc_get_path(x, "responseKind", "kind",
								      (const char *)NULL));
				const char *scope = tm_doc_string(tm_doc_map_get(x, "scope"));

				if (!res || !kind)
					continue;
				if ((r = res_add(d, group, version, kind, res,
						 !scope || strcmp(scope, "Cluster") != 0)) < 0)
					return r;
			}
		}
	}
	return 0;
}

static int add_legacy_root(struct tm_kube_discovery *d, const struct tm_doc *doc, int core)
{
	int r;

	if (core) {
		const struct tm_doc *vs = tm_doc_map_get(doc, "versions");
		for (size_t i = 0; vs && vs->type == TM_DOC_SEQ && i < vs->u.seq.n; i++) {
			const char *v = tm_doc_string(vs->u.seq.v[i]);
			if (v && *v && (r = gv_add(d, "", v, 1)) < 0)
				return r;
		}
		return 0;
	}
	{
		const struct tm_doc *groups = tm_doc_map_get(doc, "groups");
		if (!groups || groups->type != TM_DOC_SEQ)
			return tm_error_set(TM_EAPPLY, "discovery: APIGroupList without groups");
		for (size_t i = 0; i < groups->u.seq.n; i++) {
			const struct tm_doc *g = groups->u.seq.v[i];
			const char *name = tm_doc_string(tm_doc_map_get(g, "name"));
			const char *pref =
				tm_doc_string(tm_doc_get_path(g, "preferredVersion", "version",
							      (const char *)NULL));
			const struct tm_doc *vs = tm_doc_map_get(g, "versions");

			if (!name || !*name)
				continue;
			if (pref && *pref && (r = gv_add(d, name, pref, 1)) < 0)
				return r;
			for (size_t j = 0; vs && vs->type == TM_DOC_SEQ && j < vs->u.seq.n; j++) {
				const char *v =
					tm_doc_string(tm_doc_map_get(vs->u.seq.v[j], "version"));
				if (v && *v && (r = gv_add(d, name, v, 1)) < 0)
					return r;
			}
		}
	}
	return 0;
}

int tm_kube_discovery_add_root(struct tm_kube_discovery *d, const char *content_type,
			       const char *body, size_t len, int core, int *aggregated)
{
	char g[64], v[32], as[64];
	struct tm_doc *doc = NULL;
	int agg, r;

	ctype_param(g, sizeof(g), content_type ? content_type : "", "g");
	ctype_param(v, sizeof(v), content_type ? content_type : "", "v");
	ctype_param(as, sizeof(as), content_type ? content_type : "", "as");
	agg = strcmp(g, "apidiscovery.k8s.io") == 0 && strcmp(as, "APIGroupDiscoveryList") == 0 &&
	      (strcmp(v, "v2") == 0 || strcmp(v, "v2beta1") == 0);
	if (aggregated)
		*aggregated = agg;
	if ((r = parse_json(&doc, body, len, core ? "discovery /api" : "discovery /apis")) < 0)
		return r;
	if (doc->type != TM_DOC_MAP)
		r = tm_error_set(TM_EAPPLY, "discovery: the answer is not an object");
	else if (agg)
		r = add_aggregated(d, doc);
	else
		r = add_legacy_root(d, doc, core);
	tm_doc_free(doc);
	return r;
}

int tm_kube_discovery_add_resource_list(struct tm_kube_discovery *d, const char *body, size_t len)
{
	struct tm_doc *doc = NULL;
	const struct tm_doc *rs;
	const char *gvs, *slash;
	char group[TM_KUBE_GROUP_MAX + 1], version[64];
	int r;

	if ((r = parse_json(&doc, body, len, "discovery")) < 0)
		return r;
	gvs = tm_doc_string(tm_doc_map_get(doc, "groupVersion"));
	rs = tm_doc_map_get(doc, "resources");
	if (!gvs || !*gvs || !rs || rs->type != TM_DOC_SEQ) {
		r = tm_error_set(TM_EAPPLY, "discovery: not an APIResourceList");
		goto out;
	}
	slash = strchr(gvs, '/');
	if (slash) {
		size_t gl = (size_t)(slash - gvs);
		if (gl >= sizeof(group) || copy_str(version, sizeof(version), slash + 1) < 0) {
			r = tm_error_set(TM_EAPPLY, "discovery: malformed groupVersion");
			goto out;
		}
		memcpy(group, gvs, gl);
		group[gl] = '\0';
	} else {
		group[0] = '\0';
		if (copy_str(version, sizeof(version), gvs) < 0) {
			r = tm_error_set(TM_EAPPLY, "discovery: malformed groupVersion");
			goto out;
		}
	}
	if ((r = gv_add(d, group, version, 2)) < 0)
		goto out;
	for (size_t i = 0; i < rs->u.seq.n; i++) {
		const struct tm_doc *x = rs->u.seq.v[i];
		const char *name = tm_doc_string(tm_doc_map_get(x, "name"));
		const char *kind = tm_doc_string(tm_doc_map_get(x, "kind"));
		const struct tm_doc *nsd = tm_doc_map_get(x, "namespaced");

		if (!name || !kind)
			continue;
		if ((r = res_add(d, group, version, kind, name,
				 nsd && nsd->type == TM_DOC_BOOL && nsd->u.b)) < 0)
			goto out;
	}
	r = 0;
out:
	tm_doc_free(doc);
	return r;
}

static void res_out(struct tm_kube_resource *out, const struct res *x)
{
	snprintf(out->group, sizeof(out->group), "%s", x->group);
	snprintf(out->version, sizeof(out->version), "%s", x->version);
	snprintf(out->kind, sizeof(out->kind), "%s", x->kind);
	snprintf(out->resource, sizeof(out->resource), "%s", x->resource);
	out->namespaced = x->namespaced;
}

int tm_kube_discovery_find(const struct tm_kube_discovery *d, const char *group,
			   const char *version, const char *kind, struct tm_kube_resource *out)
{
	for (size_t i = 0; i < d->nr; i++) {
		const struct res *x = &d->r[i];
		if (strcmp(x->kind, kind) == 0 && strcmp(x->group, group) == 0 &&
		    strcmp(x->version, version) == 0) {
			if (out)
				res_out(out, x);
			return 0;
		}
	}
	return TM_ENOTFOUND;
}

int tm_kube_discovery_find_kind(const struct tm_kube_discovery *d, const char *group,
				const char *kind, struct tm_kube_resource *out)
{
	const struct res *best = NULL;
	unsigned best_seq = 0;

	for (size_t i = 0; i < d->nr; i++) {
		const struct res *x = &d->r[i];
		const struct gv *g;
		if (strcmp(x->kind, kind) != 0 || strcmp(x->group, group) != 0)
			continue;
		g = gv_get(d, x->group, x->version);
		if (!best || (g && g->seq < best_seq)) {
			best = x;
			best_seq = g ? g->seq : ~0u;
		}
	}
	if (!best)
		return TM_ENOTFOUND;
	if (out)
		res_out(out, best);
	return 0;
}

int tm_kube_discovery_gv_state(const struct tm_kube_discovery *d, const char *group,
			       const char *version)
{
	const struct gv *g = gv_get(d, group, version);
	return g ? g->state : 0;
}

/* ================================================================ API errors */

void tm_kube_status_message(char *out, size_t outlen, long http_status, const char *body,
			    size_t len)
{
	struct tm_doc *doc = NULL;
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;
	char msg[512], reason[64], extra[512];
	size_t el = 0;

	if (!outlen)
		return;
	extra[0] = '\0';
	if (body && len && tm_json_parse(&doc, body, len, &lim) == 0 && doc->type == TM_DOC_MAP &&
	    tm_doc_string(tm_doc_map_get(doc, "kind")) &&
	    strcmp(tm_doc_string(tm_doc_map_get(doc, "kind")), "Status") == 0) {
		const struct tm_doc *causes =
			tm_doc_get_path(doc, "details", "causes", (const char *)NULL);
		const char *m = tm_doc_string(tm_doc_map_get(doc, "message"));
		const char *rs = tm_doc_string(tm_doc_map_get(doc, "reason"));
		const struct tm_doc *code = tm_doc_map_get(doc, "code");

		clean(msg, sizeof(msg), m ? m : "", 400);
		clean(reason, sizeof(reason), rs ? rs : "", 60);
		if (code && code->type == TM_DOC_INT && code->u.i >= 100 && code->u.i < 600)
			http_status = (long)code->u.i;
		/* Causes the message does not already say (the server usually
		 * folds them into it; conflicts list each field). */
		for (size_t i = 0; causes && causes->type == TM_DOC_SEQ && i < causes->u.seq.n;
		     i++) {
			const char *cf = tm_doc_string(tm_doc_map_get(causes->u.seq.v[i], "field"));
			const char *cm =
				tm_doc_string(tm_doc_map_get(causes->u.seq.v[i], "message"));
			char f[128], cmsg[200];
			int n;

			clean(f, sizeof(f), cf ? cf : "", 100);
			clean(cmsg, sizeof(cmsg), cm ? cm : "", 160);
			if (!*cmsg || (strstr(msg, cmsg) && (!*f || strstr(msg, f))))
				continue;
			n = snprintf(extra + el, sizeof(extra) - el, "%s%s%s%s", el ? "; " : "", f,
				     *f ? ": " : "", cmsg);
			if (n < 0 || (size_t)n >= sizeof(extra) - el)
				break;
			el += (size_t)n;
		}
	} else {
		char head[160];
		size_t n = len < 150 ? len : 150;
		char tmp[151];

		memcpy(tmp, body ? body : "", body ? n : 0);
		tmp[body ? n : 0] = '\0';
		clean(head, sizeof(head), tmp, 150);
		snprintf(msg, sizeof(msg), "%s", *head ? head : "(no body)");
		reason[0] = '\0';
	}
	tm_doc_free(doc);
	if (!reason[0]) {
		const char *std = http_status == 400   ? "BadRequest"
				  : http_status == 401 ? "Unauthorized"
				  : http_status == 403 ? "Forbidden"
				  : http_status == 404 ? "NotFound"
				  : http_status == 409 ? "Conflict"
				  : http_status == 422 ? "Invalid"
				  : http_status == 429 ? "TooManyRequests"
				  : http_status >= 500 ? "ServerError"
						       : "";
		snprintf(reason, sizeof(reason), "%s", std);
	}
	snprintf(out, outlen, "%ld%s%s: %s%s%s%s%s", http_status, *reason ? " " : "", reason, msg,
		 el ? " (" : "", extra, el ? ")" : "",
		 http_status == 401 ? " — check the kubeconfig's credentials" : "");
}

/* ================================================================ client */

struct tm_kube {
	struct tm_http *http;
	char *server;
	struct tm_kube_discovery *disc;
	int aggregated;
	int legacy_only;
	uint64_t discovered_ms;
	unsigned long requests;
};

void tm_kube_free(struct tm_kube *k)
{
	if (!k)
		return;
	tm_http_free(k->http);
	free(k->server);
	tm_kube_discovery_free(k->disc);
	free(k);
}

int tm_kube_new(struct tm_kube **out, const struct tm_kubeconfig *kc,
		const struct tm_kube_opts *opts)
{
	struct tm_kube *k;
	struct tm_http_opts ho = { 0 };
	char *token = NULL;
	const char *headers[] = { NULL };
	int r;

	*out = NULL;
	if (!(k = calloc(1, sizeof(*k))))
		return tm_error_set(TM_ENOMEM, "out of memory");
	k->legacy_only = opts && opts->legacy_discovery;
	if (!(k->server = strdup(kc->server))) {
		r = tm_error_set(TM_ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = tm_kube_discovery_new(&k->disc)) < 0)
		goto fail;
	if ((r = tm_kubeconfig_token(&token, kc)) < 0)
		goto fail;
	ho.ca_file = kc->ca_file;
	ho.ca_pem = kc->ca_pem;
	ho.ca_pem_len = kc->ca_pem_len;
	ho.client_cert = kc->cert_file;
	ho.client_key = kc->key_file;
	ho.client_cert_pem = kc->cert_pem;
	ho.client_cert_pem_len = kc->cert_pem_len;
	ho.client_key_pem = kc->key_pem;
	ho.client_key_pem_len = kc->key_pem_len;
	ho.bearer_token = token;
	ho.username = token ? NULL : kc->username;
	ho.password = token ? NULL : kc->password;
	ho.connect_timeout_ms = 10000;
	ho.idle_timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	ho.max_response = MAX_RESPONSE;
	ho.headers = headers;
	r = tm_http_new(&k->http, &ho);
	if (token) {
		volatile char *v = token;
		for (size_t i = 0; v[i]; i++)
			v[i] = 0;
		free(token);
	}
	if (r < 0) {
		r = tm_error_wrap(r == TM_ENOMEM ? r : TM_EAPPLY, "kubernetes: %s", kc->origin);
		goto fail;
	}
	*out = k;
	return 0;
fail:
	tm_kube_free(k);
	return r;
}

static int is_retryable(long st)
{
	return st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

static int call_ct(struct tm_kube *k, const char *method, const char *path, const char *ctype,
		   const char *accept, const void *body, size_t len, long *out_status,
		   struct tm_buf *out, char *ctype_out, size_t ctype_len)
{
	char url[PATH_MAX_K + 512];
	int n, r = 0;

	*out_status = 0;
	n = snprintf(url, sizeof(url), "%s%s", k->server, path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return tm_error_set(TM_EAPPLY, "kubernetes: request path too long");
	for (int attempt = 0; attempt < 4; attempt++) {
		struct tm_http_request rq = { 0 };
		struct tm_http_stream *s = NULL;
		char chunk[16384];

		rq.method = method;
		rq.url = url;
		rq.content_type = ctype;
		rq.accept = accept ? accept : "application/json";
		rq.body = body;
		rq.body_len = len;
		tm_buf_reset(out);
		k->requests++;
		r = tm_http_stream_open(&s, k->http, &rq);
		if (r == 0) {
			*out_status = tm_http_stream_status(s);
			if (ctype_out)
				snprintf(ctype_out, ctype_len, "%s",
					 tm_http_stream_content_type(s));
			for (;;) {
				size_t got;
				if ((r = tm_http_stream_read(s, chunk, sizeof(chunk), &got)) < 0 ||
				    got == 0)
					break;
				if ((r = tm_buf_put(out, chunk, got)) < 0) {
					if (r == TM_ELIMIT)
						tm_error_set(
							TM_EAPPLY,
							"kubernetes: %s %s: answer larger than %zu "
							"bytes",
							method, path, out->max ? out->max - 1 : 0);
					r = TM_EAPPLY;
					break;
				}
			}
			tm_http_stream_free(s);
			if (r == 0 && !out->ptr)
				r = tm_buf_put(out, "", 0);
		}
		if (r == TM_ENOMEM)
			return r;
		if (r == TM_ESOURCE && attempt == 0) {
			/* a kept-alive connection the server closed, a blip: once more */
			tm_log_debug("kubernetes: %s %s: %s; retrying", method, path,
				     tm_error_last());
			sleep_ms(200);
			continue;
		}
		if (r == TM_ESOURCE)
			net_failed = 1;
		if (r < 0)
			return r == TM_EAPPLY ? r : tm_error_wrap(TM_EAPPLY, "kubernetes");
		if (!is_retryable(*out_status) || attempt == 3)
			return 0;
		tm_log_debug("kubernetes: %s %s: HTTP %ld; retrying", method, path, *out_status);
		sleep_ms(250u << attempt);
	}
	return 0;
}

int tm_kube_call(struct tm_kube *k, const char *method, const char *path, const char *content_type,
		 const void *body, size_t len, long *out_status, struct tm_buf *out)
{
	return call_ct(k, method, path, content_type, NULL, body, len, out_status, out, NULL, 0);
}

const struct tm_kube_discovery *tm_kube_discovery(const struct tm_kube *k)
{
	return k->disc;
}

int tm_kube_discovery_aggregated(const struct tm_kube *k)
{
	return k->aggregated;
}

static int api_failed(long st, const struct tm_buf *b, const char *what)
{
	char m[MSG_MAX];

	tm_kube_status_message(m, sizeof(m), st, b->ptr, b->len);
	return tm_error_set(TM_EAPPLY, "kubernetes: %s: %s", what, m);
}

static int load_gv(struct tm_kube *k, const char *group, const char *version)
{
	char path[600];
	struct tm_buf b;
	long st;
	int r;

	if (*group)
		snprintf(path, sizeof(path), "/apis/%s/%s", group, version);
	else
		snprintf(path, sizeof(path), "/api/%s", version);
	tm_buf_init(&b, MAX_RESPONSE + 1);
	r = tm_kube_call(k, "GET", path, NULL, NULL, 0, &st, &b);
	if (r == 0 && st == 200) {
		r = tm_kube_discovery_add_resource_list(k->disc, b.ptr, b.len);
	} else if (r == 0) {
		/* a failing group (an aggregated API server that is down) is
		 * tolerated until something needs it */
		char m[MSG_MAX];
		tm_kube_status_message(m, sizeof(m), st, b.ptr, b.len);
		tm_log_warn("kubernetes: discovery of %s: %s", path, m);
		r = tm_kube_discovery_mark_failed(k->disc, group, version);
	}
	tm_buf_free(&b);
	return r;
}

int tm_kube_discover(struct tm_kube *k)
{
	struct tm_buf b;
	char ctype[256];
	long st;
	int r, agg_core = 0, agg = 0;

	tm_kube_discovery_clear(k->disc);
	tm_buf_init(&b, MAX_RESPONSE + 1);
	for (int core = 1; core >= 0; core--) {
		const char *path = core ? "/api" : "/apis";
		int a = 0;

		r = call_ct(k, "GET", path, NULL, k->legacy_only ? "application/json" : AGG_ACCEPT,
			    NULL, 0, &st, &b, ctype, sizeof(ctype));
		if (r < 0)
			goto out;
		if (st != 200) {
			r = api_failed(st, &b, core ? "discovery GET /api" : "discovery GET /apis");
			goto out;
		}
		if ((r = tm_kube_discovery_add_root(k->disc, ctype, b.ptr, b.len, core, &a)) < 0)
			goto out;
		if (core)
			agg_core = a;
		else
			agg = a;
	}
	/* Legacy: the core group is needed by nearly every repository; other
	 * group versions are loaded when an object first needs them. */
	if (!agg_core) {
		for (size_t i = 0; i < k->disc->ngv; i++)
			if (!*k->disc->gv[i].group && k->disc->gv[i].state == 1 &&
			    (r = load_gv(k, "", k->disc->gv[i].version)) < 0)
				goto out;
	}
	k->aggregated = agg && agg_core;
	k->discovered_ms = now_ms();
	tm_log_debug("kubernetes: discovery (%s): %zu resources in %zu group versions",
		     k->aggregated ? "aggregated" : "legacy", k->disc->nr, k->disc->ngv);
	r = 0;
out:
	tm_buf_free(&b);
	return r;
}

static int split_api_version(const char *av, char *group, size_t gl, char *version, size_t vl)
{
	const char *slash = strchr(av, '/');

	if (!slash) {
		group[0] = '\0';
		return copy_str(version, vl, av);
	}
	if ((size_t)(slash - av) >= gl || strchr(slash + 1, '/'))
		return TM_ELIMIT;
	memcpy(group, av, (size_t)(slash - av));
	group[slash - av] = '\0';
	return copy_str(version, vl, slash + 1);
}

int tm_kube_resolve(struct tm_kube *k, const char *api_version, const char *kind,
		    struct tm_kube_resource *out)
{
	char group[TM_KUBE_GROUP_MAX + 1], version[64];
	int r, st;

	if (split_api_version(api_version, group, sizeof(group), version, sizeof(version)) < 0)
		return tm_error_set(TM_EAPPLY, "malformed apiVersion \"%.128s\"", api_version);
	for (int round = 0; round < 2; round++) {
		if (tm_kube_discovery_find(k->disc, group, version, kind, out) == 0)
			return 0;
		st = tm_kube_discovery_gv_state(k->disc, group, version);
		if (st == 1) {
			if ((r = load_gv(k, group, version)) < 0)
				return r;
			if (tm_kube_discovery_find(k->disc, group, version, kind, out) == 0)
				return 0;
		}
		/* missing: a CRD may have appeared since; refresh once (not
		 * more than twice a second however many kinds are missing) */
		if (round == 0 && now_ms() - k->discovered_ms > 500) {
			tm_log_debug("kubernetes: %s %s not in discovery; refreshing", api_version,
				     kind);
			if ((r = tm_kube_discover(k)) < 0)
				return r;
			continue;
		}
		break;
	}
	st = tm_kube_discovery_gv_state(k->disc, group, version);
	if (st == -1)
		return tm_error_set(TM_ENOTFOUND,
				    "the API group version %.256s does not answer discovery",
				    api_version);
	if (st == 0)
		return tm_error_set(TM_ENOTFOUND, "the server does not serve %.256s", api_version);
	return tm_error_set(TM_ENOTFOUND, "the server has no kind %.128s in %.256s", kind,
			    api_version);
}

/* Percent-encodes a path segment (names are validated, this is belt and braces). */
static int put_segment(struct tm_buf *b, const char *s)
{
	static const char hx[] = "0123456789ABCDEF";
	int r = 0;

	for (; *s && r == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || c == ':')
			r = tm_buf_putc(b, (char)c);
		else
			r = tm_buf_printf(b, "%%%c%c", hx[c >> 4], hx[c & 15]);
	}
	return r;
}

int tm_kube_path(char *out, size_t outlen, const struct tm_kube_resource *res, const char *ns,
		 const char *name)
{
	struct tm_buf b;
	int r = 0;

	tm_buf_init(&b, outlen);
	if (*res->group)
		r |= tm_buf_printf(&b, "/apis/%s/%s", res->group, res->version);
	else
		r |= tm_buf_printf(&b, "/api/%s", res->version);
	if (res->namespaced && ns && *ns) {
		r |= tm_buf_puts(&b, "/namespaces/");
		r |= put_segment(&b, ns);
	}
	r |= tm_buf_putc(&b, '/');
	r |= put_segment(&b, res->resource);
	if (name) {
		r |= tm_buf_putc(&b, '/');
		r |= put_segment(&b, name);
	}
	if (r || !b.ptr || b.len >= outlen) {
		tm_buf_free(&b);
		return tm_error_set(TM_EAPPLY, "kubernetes: request path too long");
	}
	memcpy(out, b.ptr, b.len + 1);
	tm_buf_free(&b);
	return 0;
}

/* ================================================================ parse */

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int wants(const char *path, const char *basename)
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

static const char *doc_str(const struct tm_doc *d)
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

/* Checks one object and makes it what is applied; writes its id. */
static int prepare(char *id, size_t idlen, struct tm_doc *doc, const char *path, const char *owner,
		   const char *default_ns)
{
	const struct tm_doc *avd = tm_doc_map_get(doc, "apiVersion"),
			    *kd = tm_doc_map_get(doc, "kind");
	struct tm_doc *md = tm_doc_map_get(doc, "metadata"), *labels;
	const char *av = doc_str(avd), *kind = doc_str(kd), *name, *ns = NULL, *idns;
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

	clean(kbuf, sizeof(kbuf), kind ? kind : "?", 64);
	if (!av || !*av)
		return tm_error_set(
			TM_EPARSE,
			"%.256s (line %u): %s: apiVersion is required and must be a string", path,
			line, kbuf);
	if (!valid_api_version(av)) {
		char a[80];
		clean(a, sizeof(a), av, 64);
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
	name = doc_str(tm_doc_map_get(md, "name"));
	if (!name || !*name) {
		int gen = tm_doc_map_get(md, "generateName") != NULL;
		return tm_error_set(
			TM_EPARSE,
			"%.256s (line %u): %s: metadata.name is required and must be a string%s",
			path, line, kbuf, gen ? " (generateName cannot be applied)" : "");
	}
	if (!valid_name(name, strlen(name), TM_KUBE_NAME_MAX)) {
		char nb[80];
		clean(nb, sizeof(nb), name, 64);
		return tm_error_set(TM_EPARSE, "%.256s (line %u): %s: invalid metadata.name \"%s\"",
				    path, line, kbuf, nb);
	}
	{
		const struct tm_doc *nsd = tm_doc_map_get(md, "namespace");
		if (nsd && nsd->type != TM_DOC_NULL) {
			if (!(ns = doc_str(nsd)))
				return tm_error_set(
					TM_EPARSE,
					"%.256s (line %u): %s %.64s: metadata.namespace must be a "
					"string",
					path, line, kbuf, name);
			if (!*ns)
				ns = NULL;
			else if (!valid_name(ns, strlen(ns), 63))
				return tm_error_set(
					TM_EPARSE,
					"%.256s (line %u): %s %.64s: invalid metadata.namespace",
					path, line, kbuf, name);
		}
	}
	if (split_api_version(av, group, sizeof(group), version, sizeof(version)) < 0)
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

/*
 * What the applier keeps of an object besides the JSON it sends
 * (tm_object.content): the document tree is freed as soon as the JSON is
 * written, so memory follows the largest object, not the largest file or
 * the sum of the trees. Apply, prune and health need no more than this.
 */
struct kobj {
	char *api_version;
	unsigned line;
	int has_ns; /* metadata.namespace written (a custom kind may turn out cluster-scoped) */
	int adopt;  /* annotation tagmoor.dev/adopt: "true" */
	/* a CustomResourceDefinition: the kind it defines */
	char *crd_group, *crd_kind, *crd_plural;
	int crd_cluster; /* spec.scope: Cluster */
	char **crd_versions;
	size_t ncrd_versions;
};

static void free_data(void *data)
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
		return tm_error_set(TM_ENOMEM, "out of memory");
	k->line = doc->line;
	r |= dup_opt(&k->api_version, doc_str(tm_doc_map_get(doc, "apiVersion")));
	k->has_ns = tm_doc_get_path(doc, "metadata", "namespace", (const char *)NULL) != NULL;
	v = doc_str(tm_doc_get_path(doc, "metadata", "annotations", TM_KUBE_ANNOTATION_ADOPT,
				    (const char *)NULL));
	k->adopt = v && strcmp(v, "true") == 0;
	if (strcmp(kind, "CustomResourceDefinition") == 0 &&
	    strcmp(group, "apiextensions.k8s.io") == 0) {
		const struct tm_doc *spec = tm_doc_map_get(doc, "spec"), *vs;
		const char *scope = doc_str(tm_doc_map_get(spec, "scope"));

		r |= dup_opt(&k->crd_group, doc_str(tm_doc_map_get(spec, "group")));
		r |= dup_opt(&k->crd_kind,
			     doc_str(tm_doc_get_path(spec, "names", "kind", (const char *)NULL)));
		r |= dup_opt(&k->crd_plural,
			     doc_str(tm_doc_get_path(spec, "names", "plural", (const char *)NULL)));
		k->crd_cluster = scope && strcmp(scope, "Cluster") == 0;
		vs = tm_doc_map_get(spec, "versions");
		for (size_t j = 0; r == 0 && vs && vs->type == TM_DOC_SEQ && j < vs->u.seq.n; j++) {
			const char *name = doc_str(tm_doc_map_get(vs->u.seq.v[j], "name"));
			if (name && tm_strv_push(&k->crd_versions, &k->ncrd_versions, name) < 0)
				r = TM_ENOMEM;
		}
	}
	if (r) {
		free_data(k);
		return tm_error_set(TM_ENOMEM, "out of memory");
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

/* One object of the file (tm_yaml_parse_each): checked, made what is
 * applied, kept as JSON and a kobj; the tree is freed here. */
static int parse_one(void *arg, struct tm_doc *doc)
{
	struct parse_ctx *pc = arg;
	char id[TM_KUBE_ID_MAX + 1];
	struct tm_kube_ref ref;
	struct kobj *k = NULL;
	struct tm_buf j;
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
	tm_doc_free(doc);
	doc = NULL;
	if ((r = tm_objset_add(pc->out, id, pc->path, j.ptr ? j.ptr : "", j.len, k)) < 0)
		free_data(k);
out:
	tm_buf_free(&j);
	tm_doc_free(doc);
	return r;
}

static const char *cfg_default_ns(const struct tm_config *cfg)
{
	return cfg && cfg->kubernetes.default_namespace && *cfg->kubernetes.default_namespace
		       ? cfg->kubernetes.default_namespace
		       : "default";
}

static int parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
		 const char *relpath, const char *content, size_t len)
{
	const struct tm_config *cfg = ctx ? ctx->cfg : NULL;
	struct tm_yaml_limits lim = tm_yaml_limits_default;
	size_t max_doc = DEFAULT_MAX_DOCUMENT;
	char owner[17];
	struct parse_ctx pc = { out, path, owner, cfg_default_ns(cfg), MAX_OBJECT_JSON };
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
	r = tm_yaml_parse_each(content, len, path, &lim, max_doc, parse_one, &pc);
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

/* ================================================================ the pass */

struct item {
	const struct tm_object *o;
	const struct kobj *k;
	struct tm_kube_ref ref; /* from the id */
	const char *av;         /* apiVersion */
	struct tm_kube_resource res;
	int how;        /* 0 unresolved, 1 discovery, 2 a CRD of this revision */
	const char *ns; /* effective: "" for cluster-scoped kinds */
	int stage;
	char rv[64]; /* live resourceVersion from the pre-list */
	int listed;
	int ours;    /* the pre-list found it with both of tagmoor's labels */
	int checked; /* the ownership LIST said whether it exists and whose it is: */
	int foreign; /* someone else's, not to be taken over */
};

/* What apply, prune and health of one pass share (see kube.h). */
static struct pass {
	int active;
	const struct tm_config *cfg;
	struct tm_kubeconfig *kc;
	struct tm_kube *kube;
	char owner[17];
	char holder[128];
	char lease[32];
	int lease_held;
	char lease_rv[64];
	char lease_acquired[40];
	int64_t lease_transitions;
	uint64_t lease_renewed_ms;
	int skipped;     /* another node holds the lease: this one does nothing */
	char other[128]; /* that node */
} P;

static void lease_release(void);

void tm_kube_pass_end(void)
{
	if (P.lease_held) {
		/* the failure that ends a pass must survive the release */
		int code = tm_error_last_code();
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", tm_error_last());
		lease_release();
		if (code)
			tm_error_set(code, "%s", msg);
	}
	tm_kube_free(P.kube);
	tm_kubeconfig_free(P.kc);
	memset(&P, 0, sizeof(P));
}

static const char *field_manager(void)
{
	return P.cfg && P.cfg->kubernetes.field_manager ? P.cfg->kubernetes.field_manager
							: "tagmoor";
}

static int pass_begin(const struct tm_applier_ctx *ctx)
{
	const struct tm_config *cfg = ctx->cfg;
	struct tm_kube_opts ko = { 0 };
	int r;

	tm_kube_pass_end();
	net_failed = 0;
	P.cfg = cfg;
	if ((r = tm_kube_owner(P.owner, cfg)) < 0 || (r = tm_kube_lease_name(P.lease, cfg)) < 0)
		goto fail;
	snprintf(P.holder, sizeof(P.holder), "%s",
		 cfg && cfg->agent.device_id ? cfg->agent.device_id
		 : cfg && cfg->hostname      ? cfg->hostname
					     : "tagmoor");
	if (cfg && cfg->kubernetes.kubeconfig)
		r = tm_kubeconfig_load(&P.kc, cfg->kubernetes.kubeconfig, NULL);
	else /* tests: a service account directory other than the pod's */
		r = tm_kubeconfig_in_cluster(&P.kc, cfg ? cfg->kubernetes.sa_dir : NULL);
	if (r < 0)
		goto fail;
	/* tests: exercise the legacy discovery against a server that has both */
	ko.legacy_discovery = cfg && cfg->kubernetes.legacy_discovery;
	if ((r = tm_kube_new(&P.kube, P.kc, &ko)) < 0 || (r = tm_kube_discover(P.kube)) < 0)
		goto fail;
	P.active = 1;
	return 0;
fail:
	/* whatever went wrong with the cluster is an apply failure, never a source one */
	if (r != TM_ENOMEM && r != TM_EAPPLY)
		r = tm_error_wrap(TM_EAPPLY, "kubernetes");
	tm_kube_pass_end();
	return r;
}

static int set_error_object(struct tm_apply_result *res, const char *id)
{
	if (res->error_object)
		return 0;
	if (!(res->error_object = strdup(id)))
		return tm_error_set(TM_ENOMEM, "out of memory");
	return 0;
}

static int object_failed(struct tm_apply_result *res, const struct item *x, const char *verb,
			 long st, const struct tm_buf *b)
{
	char m[MSG_MAX];

	set_error_object(res, x->o->id);
	tm_kube_status_message(m, sizeof(m), st, b->ptr, b->len);
	return tm_error_set(TM_EAPPLY, "kubernetes: %s %s (%.200s): %s", verb, x->o->id,
			    x->o->source, m);
}

/* ------------------------------------------------------------ the lease */

static void micro_time(char out[40])
{
	struct timespec ts;
	struct tm t;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &t);
	snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", (t.tm_year + 1900) % 10000,
		 (t.tm_mon + 1) % 100, t.tm_mday % 100, t.tm_hour % 100, t.tm_min % 100,
		 t.tm_sec % 100, (int)(ts.tv_nsec / 1000) % 1000000);
}

static int lease_path(char *out, size_t n, int with_name)
{
	int k = snprintf(out, n, "/apis/coordination.k8s.io/v1/namespaces/%s/leases%s%s",
			 TM_KUBE_LEASE_NAMESPACE, with_name ? "/" : "", with_name ? P.lease : "");
	return k < 0 || (size_t)k >= n ? TM_ELIMIT : 0;
}

static int lease_body(struct tm_buf *b, const char *rv, const char *holder, int seconds,
		      const char *acquired, const char *renewed)
{
	int r = 0;

	r |= tm_buf_printf(
		b,
		"{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":"
		"{\"name\":\"%s\",\"namespace\":\"%s\",\"labels\":{\"%s\":\"%s\"}",
		P.lease, TM_KUBE_LEASE_NAMESPACE, TM_KUBE_LABEL_MANAGED_BY, TM_KUBE_MANAGED_BY);
	if (rv) {
		r |= tm_buf_puts(b, ",\"resourceVersion\":");
		r |= tm_json_cstr(b, rv, 0);
	}
	r |= tm_buf_puts(b, "},\"spec\":{");
	if (holder) {
		r |= tm_buf_puts(b, "\"holderIdentity\":");
		r |= tm_json_cstr(b, holder, 0);
		r |= tm_buf_putc(b, ',');
	}
	r |= tm_buf_printf(
		b,
		"\"leaseDurationSeconds\":%d,\"acquireTime\":\"%s\",\"renewTime\":\"%s\","
		"\"leaseTransitions\":%lld}}",
		seconds, acquired, renewed, (long long)P.lease_transitions);
	return r ? tm_error_set(TM_ENOMEM, "out of memory") : 0;
}

static void lease_note(const struct tm_buf *b)
{
	struct tm_doc *d = NULL;
	const char *rv;

	if (parse_json(&d, b->ptr, b->len, "lease") == 0 &&
	    (rv = doc_str(tm_doc_get_path(d, "metadata", "resourceVersion", (const char *)NULL))))
		snprintf(P.lease_rv, sizeof(P.lease_rv), "%s", rv);
	tm_doc_free(d);
	tm_error_clear();
}

/* Takes the lease, or finds that another live node holds it (P.skipped). */
static int lease_acquire(void)
{
	char path[300], now[40];
	struct tm_buf b, body;
	int r = 0;

	tm_buf_init(&b, MAX_RESPONSE + 1);
	tm_buf_init(&body, 8192);
	for (int attempt = 0; attempt < 5; attempt++) {
		struct tm_doc *d = NULL;
		long st;

		lease_path(path, sizeof(path), 1);
		if ((r = tm_kube_call(P.kube, "GET", path, NULL, NULL, 0, &st, &b)) < 0)
			goto out;
		micro_time(now);
		tm_buf_reset(&body);
		if (st == 404) {
			P.lease_transitions = 0;
			snprintf(P.lease_acquired, sizeof(P.lease_acquired), "%s", now);
			if ((r = lease_body(&body, NULL, P.holder, TM_KUBE_LEASE_SECONDS, now,
					    now)) < 0)
				goto out;
			lease_path(path, sizeof(path), 0);
			if ((r = tm_kube_call(P.kube, "POST", path, "application/json", body.ptr,
					      body.len, &st, &b)) < 0)
				goto out;
			if (st == 409)
				continue; /* another node created it first */
			if (st != 201 && st != 200) {
				r = api_failed(st, &b,
					       "create the apply lease " TM_KUBE_LEASE_NAMESPACE
					       "/leases");
				goto out;
			}
		} else if (st == 200) {
			const char *holder, *renew, *acq, *rv;
			const struct tm_doc *dur, *tr;
			int64_t renewed, secs;
			int mine, expired;

			if ((r = parse_json(&d, b.ptr, b.len, "lease")) < 0)
				goto out;
			holder = doc_str(
				tm_doc_get_path(d, "spec", "holderIdentity", (const char *)NULL));
			renew = doc_str(
				tm_doc_get_path(d, "spec", "renewTime", (const char *)NULL));
			acq = doc_str(
				tm_doc_get_path(d, "spec", "acquireTime", (const char *)NULL));
			rv = doc_str(tm_doc_get_path(d, "metadata", "resourceVersion",
						     (const char *)NULL));
			dur = tm_doc_get_path(d, "spec", "leaseDurationSeconds",
					      (const char *)NULL);
			tr = tm_doc_get_path(d, "spec", "leaseTransitions", (const char *)NULL);
			secs = dur && dur->type == TM_DOC_INT ? dur->u.i : TM_KUBE_LEASE_SECONDS;
			renewed = tm_kstatus_parse_time(renew);
			mine = holder && strcmp(holder, P.holder) == 0;
			/* Wall clocks of the nodes are compared (NTP assumed). */
			expired = !holder || !*holder || renewed < 0 ||
				  renewed + secs < (int64_t)time(NULL);
			if (!mine && !expired) {
				clean(P.other, sizeof(P.other), holder, 100);
				P.skipped = 1;
				tm_doc_free(d);
				r = 0;
				goto out;
			}
			P.lease_transitions = tr && tr->type == TM_DOC_INT ? tr->u.i : 0;
			if (!mine) {
				P.lease_transitions++;
				snprintf(P.lease_acquired, sizeof(P.lease_acquired), "%s", now);
			} else {
				snprintf(P.lease_acquired, sizeof(P.lease_acquired), "%s",
					 acq && strlen(acq) < 40 ? acq : now);
			}
			r = lease_body(&body, rv ? rv : "", P.holder, TM_KUBE_LEASE_SECONDS,
				       P.lease_acquired, now);
			tm_doc_free(d);
			if (r < 0)
				goto out;
			if ((r = tm_kube_call(P.kube, "PUT", path, "application/json", body.ptr,
					      body.len, &st, &b)) < 0)
				goto out;
			if (st == 409)
				continue; /* changed under us: look again */
			if (st != 200) {
				r = api_failed(st, &b, "take the apply lease");
				goto out;
			}
		} else {
			r = api_failed(st, &b,
				       "read the apply lease " TM_KUBE_LEASE_NAMESPACE "/leases");
			goto out;
		}
		lease_note(&b);
		P.lease_held = 1;
		TM_FAULT("kube.lease-taken");
		P.lease_renewed_ms = now_ms();
		tm_log_debug("kubernetes: holding the apply lease %s/%s", TM_KUBE_LEASE_NAMESPACE,
			     P.lease);
		r = 0;
		goto out;
	}
	r = tm_error_set(TM_EAPPLY,
			 "kubernetes: the apply lease %s/%s changed on every attempt to take it",
			 TM_KUBE_LEASE_NAMESPACE, P.lease);
out:
	tm_buf_free(&b);
	tm_buf_free(&body);
	return r;
}

/* Renews the lease when a quarter of its duration has passed. */
static int lease_tick(void)
{
	char path[300], now[40];
	struct tm_buf b, body;
	long st;
	int r;

	if (!P.lease_held || now_ms() - P.lease_renewed_ms < TM_KUBE_LEASE_SECONDS * 1000u / 4)
		return 0;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	tm_buf_init(&body, 8192);
	micro_time(now);
	lease_path(path, sizeof(path), 1);
	r = lease_body(&body, P.lease_rv, P.holder, TM_KUBE_LEASE_SECONDS, P.lease_acquired, now);
	if (r == 0)
		r = tm_kube_call(P.kube, "PUT", path, "application/json", body.ptr, body.len, &st,
				 &b);
	if (r == 0 && st == 200) {
		lease_note(&b);
		P.lease_renewed_ms = now_ms();
	} else if (r == 0) {
		/* 409: someone else wrote it — we were too slow and lost it */
		P.lease_held = 0;
		r = api_failed(st, &b, "renew the apply lease");
		if (st == 409)
			r = tm_error_set(TM_EAPPLY,
					 "kubernetes: lost the apply lease %s/%s to another node",
					 TM_KUBE_LEASE_NAMESPACE, P.lease);
	}
	tm_buf_free(&b);
	tm_buf_free(&body);
	return r;
}

static void lease_release(void)
{
	char path[300], now[40];
	struct tm_buf b, body;
	long st = 0;

	P.lease_held = 0;
	if (!P.kube)
		return;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	tm_buf_init(&body, 8192);
	micro_time(now);
	lease_path(path, sizeof(path), 1);
	if (lease_body(&body, P.lease_rv, NULL, 1, P.lease_acquired, now) == 0 &&
	    tm_kube_call(P.kube, "PUT", path, "application/json", body.ptr, body.len, &st, &b) ==
		    0 &&
	    st == 200)
		tm_log_debug("kubernetes: released the apply lease %s/%s", TM_KUBE_LEASE_NAMESPACE,
			     P.lease);
	else
		tm_log_debug("kubernetes: could not release the apply lease (HTTP %ld); it expires",
			     st);
	tm_buf_free(&b);
	tm_buf_free(&body);
	tm_error_clear();
}

/* ------------------------------------------------------------ items */

static void items_free(struct item *it)
{
	free(it);
}

/* The desired objects in apply order, with their ids parsed. */
static int items_build(struct item **out, const struct tm_objset *desired,
		       struct tm_apply_result *res)
{
	struct item *it;
	size_t *order = NULL;
	int r;

	*out = NULL;
	if (!desired->n)
		return 0;
	it = calloc(desired->n, sizeof(*it));
	order = calloc(desired->n, sizeof(*order));
	if (!it || !order) {
		free(it);
		free(order);
		return tm_error_set(TM_ENOMEM, "out of memory");
	}
	if ((r = tm_kube_apply_order(order, desired)) < 0)
		goto fail;
	for (size_t i = 0; i < desired->n; i++) {
		struct item *x = &it[i];
		x->o = &desired->v[order[i]];
		x->k = x->o->data;
		if (tm_kube_id_parse(&x->ref, x->o->id) < 0 || !x->k ||
		    !(x->av = x->k->api_version)) {
			set_error_object(res, x->o->id);
			r = tm_error_set(
				TM_EAPPLY,
				"kubernetes: %.256s is not a Kubernetes object of this applier",
				x->o->id);
			goto fail;
		}
		x->stage = tm_kube_stage(x->ref.group, x->ref.kind);
	}
	free(order);
	*out = it;
	return 0;
fail:
	free(order);
	free(it);
	return r;
}

/* A CRD among the desired objects that defines (group, version, kind). */
static int crd_defines(const struct item *it, size_t n, const char *group, const char *version,
		       const char *kind, struct tm_kube_resource *out)
{
	for (size_t i = 0; i < n; i++) {
		const struct kobj *c = it[i].k;

		if (strcmp(it[i].ref.kind, "CustomResourceDefinition") != 0 ||
		    strcmp(it[i].ref.group, "apiextensions.k8s.io") != 0)
			continue;
		if (!c->crd_group || !c->crd_kind || !c->crd_plural ||
		    strcmp(c->crd_group, group) != 0 || strcmp(c->crd_kind, kind) != 0)
			continue;
		for (size_t j = 0; j < c->ncrd_versions; j++) {
			if (strcmp(c->crd_versions[j], version) == 0) {
				snprintf(out->group, sizeof(out->group), "%s", group);
				snprintf(out->version, sizeof(out->version), "%s", version);
				snprintf(out->kind, sizeof(out->kind), "%s", kind);
				snprintf(out->resource, sizeof(out->resource), "%s", c->crd_plural);
				out->namespaced = !c->crd_cluster;
				return 1;
			}
		}
	}
	return 0;
}

static void set_ns(struct item *x)
{
	x->ns = !x->res.namespaced ? "" : x->ref.ns[0] ? x->ref.ns : cfg_default_ns(P.cfg);
}

/* The object's identity on the server, for telling two ids of one object apart. */
static int live_key(char *out, size_t n, const char *group, const char *kind, const char *ns,
		    const char *name)
{
	int k = snprintf(out, n, "%s/%s/%s/%s", group, kind, ns, name);
	return k < 0 || (size_t)k >= n ? TM_ELIMIT : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Resolves every kind (discovery, else a CRD of this revision). */
static int items_resolve(struct item *it, size_t n, struct tm_apply_result *res)
{
	char **keys = NULL;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		struct item *x = &it[i];
		char group[TM_KUBE_GROUP_MAX + 1], version[64];

		if (x->how == 1)
			continue;
		r = tm_kube_resolve(P.kube, x->av, x->ref.kind, &x->res);
		if (r == 0) {
			x->how = 1;
		} else if (r == TM_ENOTFOUND &&
			   split_api_version(x->av, group, sizeof(group), version,
					     sizeof(version)) == 0 &&
			   crd_defines(it, n, group, version, x->ref.kind, &x->res)) {
			x->how = 2;
			tm_error_clear();
			r = 0;
		} else {
			if (r == TM_ENOTFOUND) {
				char m[600];
				snprintf(m, sizeof(m), "%s", tm_error_last());
				r = tm_error_set(
					TM_EAPPLY,
					"kubernetes: %s (%.200s): %s, and no "
					"CustomResourceDefinition in this revision defines it",
					x->o->id, x->o->source, m);
			} else if (r != TM_ENOMEM) {
				r = tm_error_wrap(TM_EAPPLY, "kubernetes: %s", x->o->id);
			}
			set_error_object(res, x->o->id);
			return r;
		}
		set_ns(x);
	}
	/* Two ids for one live object (a namespaced custom kind once with and
	 * once without `namespace: default`) would fight each other. */
	if (n < 2)
		return 0;
	if (!(keys = calloc(n, sizeof(*keys))))
		return tm_error_set(TM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r == 0; i++) {
		char k[TM_KUBE_ID_MAX + 1];
		if (live_key(k, sizeof(k), it[i].res.group, it[i].res.kind, it[i].ns,
			     it[i].ref.name) < 0 ||
		    !(keys[i] = strdup(k)))
			r = tm_error_set(TM_ENOMEM, "out of memory");
	}
	if (r == 0) {
		qsort(keys, n, sizeof(*keys), cmp_str);
		for (size_t i = 1; i < n; i++)
			if (strcmp(keys[i - 1], keys[i]) == 0) {
				r = tm_error_set(TM_EAPPLY,
						 "kubernetes: the repository defines %s twice "
						 "(once without and once with its namespace)",
						 keys[i]);
				break;
			}
	}
	tm_strv_free(keys, n);
	return r;
}

static int item_path(char *out, size_t n, const struct item *x, int with_name)
{
	return tm_kube_path(out, n, &x->res, x->ns, with_name ? x->ref.name : NULL);
}

static int is_crd(const struct item *x);

enum live_part {
	LIVE_ALL,    /* everything but managedFields (diff, drift) */
	LIVE_STATUS, /* what kstatus reads: a CRD's spec (its schema) is left out */
	LIVE_META    /* metadata only (prune) */
};

/* GET the live object: 0 with *out (NULL when it does not exist), built as
 * far as part needs it. */
static int get_live(struct tm_doc **out, const struct item *x, struct tm_apply_result *res,
		    enum live_part part)
{
	char path[PATH_MAX_K];
	struct tm_buf b;
	long st;
	int r;

	*out = NULL;
	if ((r = item_path(path, sizeof(path), x, 1)) < 0)
		return r;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	r = tm_kube_call(P.kube, "GET", path, NULL, NULL, 0, &st, &b);
	if (r == 0 && st == 200)
		r = parse_object(out, b.ptr, b.len, x->o->id,
				 part == LIVE_META ? only_metadata : NULL,
				 part == LIVE_STATUS && is_crd(x) ? no_managed_spec : no_managed);
	else if (r == 0 && st != 404)
		r = object_failed(res, x, "read", st, &b);
	tm_buf_free(&b);
	return r;
}

/* Server-side apply of one object: *out_status and the answer in b. */
static int ssa(const struct item *x, int dry_run, long *st, struct tm_buf *b)
{
	char path[PATH_MAX_K + 128];
	struct tm_buf body;
	const char *data = x->o->content;
	size_t len = x->o->len;
	size_t pl;
	int r;

	if ((r = item_path(path, sizeof(path) - 128, x, 1)) < 0)
		return r;
	pl = strlen(path);
	snprintf(path + pl, sizeof(path) - pl, "?fieldManager=%s&force=true%s", field_manager(),
		 dry_run ? "&dryRun=All" : "");
	tm_buf_init(&body, MAX_OBJECT_JSON + 1);
	if (!x->res.namespaced && x->k && x->k->has_ns) {
		/* a custom cluster-scoped kind written with a namespace: sent without it
		 * (read back from the JSON, rare: the tree is not kept) */
		struct tm_doc *d = NULL;
		if ((r = parse_json(&d, x->o->content, x->o->len, x->o->id)) < 0)
			return r;
		tm_doc_map_remove(tm_doc_map_get(d, "metadata"), "namespace");
		r = tm_doc_to_json(&body, d);
		tm_doc_free(d);
		if (r < 0) {
			tm_buf_free(&body);
			return r;
		}
		data = body.ptr;
		len = body.len;
	}
	r = tm_kube_call(P.kube, "PATCH", path, "application/apply-patch+yaml", data, len, st, b);
	tm_buf_free(&body);
	return r;
}

/* Whether the live object's labels prove that this tagmoor applied it:
 * managed-by tagmoor and this source's owner. Else why says what they are. */
static int owned_by_us(const struct tm_doc *live, char *why, size_t wl)
{
	const struct tm_doc *labels =
		tm_doc_get_path(live, "metadata", "labels", (const char *)NULL);
	const char *mb = doc_str(tm_doc_map_get(labels, TM_KUBE_LABEL_MANAGED_BY));
	const char *ow = doc_str(tm_doc_map_get(labels, TM_KUBE_LABEL_OWNER));
	char a[80], b[80];

	if (mb && strcmp(mb, TM_KUBE_MANAGED_BY) == 0 && ow && strcmp(ow, P.owner) == 0)
		return 1;
	clean(a, sizeof(a), mb ? mb : "(none)", 63);
	clean(b, sizeof(b), ow ? ow : "(none)", 63);
	snprintf(why, wl, "%s=%s, %s=%s", TM_KUBE_LABEL_MANAGED_BY, a, TM_KUBE_LABEL_OWNER, b);
	return 0;
}

/* Records the resourceVersion of every listed object of each resource the
 * desired objects use (one LIST per kind, our owner label): an apply that
 * returns the same resourceVersion changed nothing. */
struct lkey {
	const char *res, *ns, *name;
	struct item *x;
};

static int lkey_cmp(const void *a, const void *b)
{
	const struct lkey *p = a, *q = b;
	int c;

	if ((c = strcmp(p->res, q->res)) != 0 || (c = strcmp(p->ns, q->ns)) != 0)
		return c;
	return strcmp(p->name, q->name);
}

static char *url_encode(const char *s)
{
	struct tm_buf b;

	tm_buf_init(&b, 4096);
	if (put_segment(&b, s) < 0) {
		tm_buf_free(&b);
		return NULL;
	}
	return tm_buf_detach(&b);
}

/* LISTs every object of resource res (all namespaces; esel: a URL-encoded
 * label selector or NULL), metadata only where the server can (no Secret
 * data in memory), page by page, calling fn for each item. 0 when the whole
 * list was read; -1 when the server did not answer with one (no error is
 * set: the callers fall back to something else). */
static int list_meta(const struct tm_kube_resource *res, const char *esel,
		     void (*fn)(void *arg, const struct tm_doc *item), void *arg)
{
	char cont[1024] = "";
	struct tm_buf b;
	int r = -1;

	tm_buf_init(&b, MAX_RESPONSE + 1);
	for (int page = 0; page < 1000; page++) {
		char path[PATH_MAX_K + 1200];
		struct tm_doc *d = NULL;
		const struct tm_doc *items;
		const char *c;
		long st = 0;
		size_t pl;

		if (tm_kube_path(path, PATH_MAX_K, res, NULL, NULL) < 0)
			break;
		pl = strlen(path);
		snprintf(path + pl, sizeof(path) - pl, "?%s%s%slimit=%d%s%s",
			 esel ? "labelSelector=" : "", esel ? esel : "", esel ? "&" : "",
			 LIST_LIMIT, cont[0] ? "&continue=" : "", cont);
		if (call_ct(P.kube, "GET", path, NULL, META_LIST_ACCEPT, NULL, 0, &st, &b, NULL,
			    0) < 0 ||
		    st != 200 || parse_json(&d, b.ptr, b.len, "list") < 0) {
			tm_log_debug("kubernetes: cannot list %s (HTTP %ld)", res->resource, st);
			tm_error_clear();
			break;
		}
		items = tm_doc_map_get(d, "items");
		for (size_t k = 0; items && items->type == TM_DOC_SEQ && k < items->u.seq.n; k++)
			fn(arg, items->u.seq.v[k]);
		c = doc_str(tm_doc_get_path(d, "metadata", "continue", (const char *)NULL));
		cont[0] = '\0';
		if (c && *c) {
			char *ec = url_encode(c);
			if (ec && strlen(ec) < sizeof(cont))
				snprintf(cont, sizeof(cont), "%s", ec);
			free(ec);
			if (!cont[0]) {
				/* a next page that cannot be asked for: not the whole list */
				tm_doc_free(d);
				break;
			}
		}
		tm_doc_free(d);
		if (!cont[0]) {
			r = 0;
			break;
		}
	}
	tm_buf_free(&b);
	return r;
}

/* The item among keys[0..n) (sorted, lkey_cmp) that a listed object of
 * resource x->res is, or NULL. */
static struct item *lkey_find(const struct lkey *keys, size_t n, const struct item *x,
			      const struct tm_doc *obj)
{
	const struct tm_doc *md = tm_doc_map_get(obj, "metadata");
	const char *nm = doc_str(tm_doc_map_get(md, "name"));
	const char *ns = doc_str(tm_doc_map_get(md, "namespace"));
	struct lkey want = { x->res.resource, ns ? ns : "", nm, NULL };
	const struct lkey *hit;

	if (!nm || !n)
		return NULL;
	hit = bsearch(&want, keys, n, sizeof(*keys), lkey_cmp);
	/* several resources may share a plural (two groups): check the group */
	return hit && strcmp(hit->x->res.group, x->res.group) == 0 ? hit->x : NULL;
}

struct prelist_ctx {
	const struct lkey *keys;
	size_t n;
	const struct item *x;
};

static void prelist_item(void *arg, const struct tm_doc *obj)
{
	struct prelist_ctx *c = arg;
	struct item *hit = lkey_find(c->keys, c->n, c->x, obj);
	const char *rv =
		doc_str(tm_doc_get_path(obj, "metadata", "resourceVersion", (const char *)NULL));
	char why[256];

	if (hit && rv && strlen(rv) < sizeof(hit->rv)) {
		snprintf(hit->rv, sizeof(hit->rv), "%s", rv);
		hit->listed = 1;
		hit->ours = owned_by_us(obj, why, sizeof(why));
	}
}

static void prelist(struct item *it, size_t n)
{
	struct lkey *keys = calloc(n ? n : 1, sizeof(*keys));
	char sel[128], *esel;

	if (!keys)
		return;
	snprintf(sel, sizeof(sel), "%s=%s", TM_KUBE_LABEL_OWNER, P.owner);
	if (!(esel = url_encode(sel))) {
		free(keys);
		return;
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = (struct lkey){ it[i].res.resource, it[i].ns, it[i].ref.name, &it[i] };
	qsort(keys, n, sizeof(*keys), lkey_cmp);
	for (size_t i = 0; i < n; i++) {
		struct item *x = keys[i].x;
		struct prelist_ctx c = { keys, n, x };
		int seen = 0;

		if (x->how != 1)
			continue;
		/* one LIST per resource: skip items whose resource was listed */
		for (size_t j = 0; j < i && !seen; j++)
			seen = keys[j].x->how == 1 &&
			       strcmp(keys[j].x->res.group, x->res.group) == 0 &&
			       strcmp(keys[j].x->res.version, x->res.version) == 0 &&
			       strcmp(keys[j].res, keys[i].res) == 0;
		if (seen)
			continue;
		if (list_meta(&x->res, esel, prelist_item, &c) < 0)
			tm_log_debug("kubernetes: changes of %s are counted as applied",
				     x->res.resource);
	}
	free(esel);
	free(keys);
}

/* ------------------------------------------------------------ ownership */

/* Server-side apply with force takes over whatever object has the name, so
 * an object of the repository that already exists and that tagmoor did not
 * apply would become tagmoor's — and be pruned when it leaves the
 * repository (a Namespace with everything in it). Objects in the inventory
 * and objects with tagmoor's labels are tagmoor's; any other existing one
 * is someone else's and is refused, unless the repository opts in. */

static int in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* Whether the repository asks to take x over: [kubernetes] adopt = yes, or
 * the annotation tagmoor.dev/adopt: "true" on the object itself. */
static int adopt_wanted(const struct item *x)
{
	if (P.cfg && P.cfg->kubernetes.adopt)
		return 1;
	return x->k && x->k->adopt;
}

/* GET the live object's metadata (no Secret data where the server can):
 * 0 with *out, NULL when it does not exist. A kind that comes from a CRD of
 * this revision is looked up in any version the server already serves; when
 * it serves none, no such object can exist. */
static int get_meta(struct tm_doc **out, const struct item *x, struct tm_apply_result *res)
{
	struct item y = *x;
	char path[PATH_MAX_K];
	struct tm_buf b;
	long st;
	int r;

	*out = NULL;
	if (y.how != 1) {
		if (tm_kube_discovery_find_kind(tm_kube_discovery(P.kube), y.ref.group, y.ref.kind,
						&y.res) < 0) {
			tm_error_clear();
			return 0;
		}
		set_ns(&y);
	}
	if ((r = item_path(path, sizeof(path), &y, 1)) < 0)
		return r;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	r = call_ct(P.kube, "GET", path, NULL, META_ACCEPT, NULL, 0, &st, &b, NULL, 0);
	if (r == 0 && st == 200)
		r = parse_object(out, b.ptr, b.len, x->o->id, only_metadata, no_managed);
	else if (r == 0 && st != 404)
		r = object_failed(res, x, "read", st, &b);
	tm_buf_free(&b);
	return r;
}

/* Whether live (x's object on the server; x is not in the inventory) is
 * someone else's and may not be taken over: 1, with a log line; 0 when it
 * is tagmoor's or the repository opts in to adopting it. */
static int foreign_live(const struct item *x, const struct tm_doc *live)
{
	char why[256];

	if (!live || owned_by_us(live, why, sizeof(why)))
		return 0;
	if (adopt_wanted(x)) {
		tm_log_warn("kubernetes: adopting %s (%.200s): it exists and was not applied by "
			    "tagmoor (%s); "
			    "the repository takes it over (%s)",
			    x->o->id, x->o->source, why,
			    P.cfg && P.cfg->kubernetes.adopt ? "[kubernetes] adopt = yes"
							     : TM_KUBE_ANNOTATION_ADOPT
				    ": \"true\"");
		return 0;
	}
	tm_log_error("kubernetes: %s (%.200s) exists and was not applied by tagmoor (%s)", x->o->id,
		     x->o->source, why);
	return 1;
}

/* The refusal: names the first foreign object; nothing has been written. */
static int refuse_foreign(struct tm_apply_result *res, const struct item *first, size_t nforeign)
{
	char more[64] = "";

	if (nforeign > 1)
		snprintf(more, sizeof(more), " (and %zu more)", nforeign - 1);
	set_error_object(res, first->o->id);
	return tm_error_set(
		TM_EAPPLY,
		"kubernetes: %s exists and was not applied by tagmoor; refusing to take it over%s "
		"(%.200s; to take it over, annotate it %s: \"true\" in the repository or set "
		"[kubernetes] adopt = yes)",
		first->o->id, more, first->o->source, TM_KUBE_ANNOTATION_ADOPT);
}

struct foreign_ctx {
	const struct lkey *keys;
	size_t n;
	const struct item *x;
};

static void foreign_item(void *arg, const struct tm_doc *obj)
{
	struct foreign_ctx *c = arg;
	struct item *hit = lkey_find(c->keys, c->n, c->x, obj);

	if (hit && !hit->checked) {
		hit->checked = 1;
		hit->foreign = foreign_live(hit, obj);
	}
}

static int same_resource(const struct item *a, const struct item *b)
{
	return strcmp(a->res.group, b->res.group) == 0 &&
	       strcmp(a->res.version, b->res.version) == 0 &&
	       strcmp(a->res.resource, b->res.resource) == 0;
}

/* Many new objects of one kind (a first apply): one metadata LIST of the
 * kind says for all of them whether they exist and whose they are. Kinds
 * with a few are left to a GET each; so is everything when a LIST fails. */
static int list_candidates(struct item **cand, size_t nc)
{
	struct lkey *keys;

	if (nc <= FOREIGN_GET_MAX)
		return 0;
	if (!(keys = calloc(nc, sizeof(*keys))))
		return tm_error_set(TM_ENOMEM, "out of memory");
	for (size_t i = 0; i < nc; i++)
		keys[i] = (struct lkey){ cand[i]->res.resource, cand[i]->ns, cand[i]->ref.name,
					 cand[i] };
	qsort(keys, nc, sizeof(*keys), lkey_cmp);
	for (size_t i = 0; i < nc; i++) {
		struct foreign_ctx c = { keys, nc, cand[i] };
		size_t same = 0;
		int seen = 0;

		for (size_t j = 0; j < i && !seen; j++)
			seen = same_resource(cand[j], cand[i]);
		for (size_t j = i; j < nc && !seen; j++)
			same += same_resource(cand[j], cand[i]);
		if (seen || same <= FOREIGN_GET_MAX)
			continue;
		if (list_meta(&cand[i]->res, NULL, foreign_item, &c) < 0) {
			/* the GETs decide; forget what a partial answer said */
			for (size_t j = i; j < nc; j++)
				if (same_resource(cand[j], cand[i]))
					cand[j]->checked = cand[j]->foreign = 0;
			continue;
		}
		/* not listed: does not exist */
		for (size_t j = i; j < nc; j++)
			if (same_resource(cand[j], cand[i]))
				cand[j]->checked = 1;
	}
	free(keys);
	return 0;
}

/* Before anything is written: every desired object that is not in the
 * inventory and that the pre-list did not find with tagmoor's labels is
 * looked at (metadata only: one LIST for many of a kind, else a GET); one
 * that exists without them refuses the apply. In the steady state every
 * object is in the inventory and nothing is read. */
static int check_foreign(struct item *it, size_t n, char *const *inventory, size_t ninventory,
			 struct tm_apply_result *res)
{
	const struct item *first = NULL;
	struct item **cand;
	size_t nforeign = 0, nc = 0;
	int r;

	if (!(cand = calloc(n ? n : 1, sizeof(*cand))))
		return tm_error_set(TM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (it[i].how == 1 && !it[i].ours && !in_list(inventory, ninventory, it[i].o->id))
			cand[nc++] = &it[i];
	r = list_candidates(cand, nc);
	free(cand);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct item *x = &it[i];
		struct tm_doc *live = NULL;

		if (in_list(inventory, ninventory, x->o->id) || x->ours)
			continue;
		if (x->checked) {
			if (x->foreign && !nforeign++)
				first = x;
			continue;
		}
		if ((r = get_meta(&live, x, res)) < 0)
			return r;
		if (foreign_live(x, live)) {
			if (!nforeign++)
				first = x;
		}
		tm_doc_free(live);
	}
	return nforeign ? refuse_foreign(res, first, nforeign) : 0;
}

/* Hands the ids about to be created or written that are not in the
 * inventory yet to the pass (ctx->record), before the first write. */
static int record_new(const struct tm_applier_ctx *ctx, struct item *it, size_t n,
		      char *const *inventory, size_t ninventory)
{
	char **ids = NULL;
	size_t nids = 0;
	int r = 0;

	if (!ctx->record)
		return 0;
	for (size_t i = 0; i < n && r == 0; i++)
		if (!in_list(inventory, ninventory, it[i].o->id))
			r = tm_strv_push(&ids, &nids, it[i].o->id);
	if (r == 0 && nids && (r = ctx->record(ctx->record_arg, "kubernetes", ids, nids)) < 0) {
		if (r != TM_ENOMEM)
			r = tm_error_wrap(TM_EAPPLY, "kubernetes: nothing applied");
	}
	tm_strv_free(ids, nids);
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------ waiting */

/* Polls the objects until every one is Current, one is Failed or wait_ms
 * passed. health != 0: the stuck ones go to res->unhealthy. */
static int wait_current(struct item **w, size_t nw, uint64_t wait_ms, struct tm_apply_result *res,
			int health, const char *what)
{
	enum tm_kstatus *st;
	char(*msg)[256];
	uint64_t deadline = now_ms() + wait_ms, interval = 100;
	size_t failed = 0, pending = 0, first = 0;
	int r = 0;

	if (!nw)
		return 0;
	st = calloc(nw, sizeof(*st));
	msg = calloc(nw, sizeof(*msg));
	if (!st || !msg) {
		free(st);
		free(msg);
		return tm_error_set(TM_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nw; i++)
		st[i] = TM_KSTATUS_IN_PROGRESS;
	for (;;) {
		uint64_t t;

		failed = pending = 0;
		for (size_t i = 0; i < nw; i++) {
			struct tm_doc *live = NULL;

			if (st[i] == TM_KSTATUS_CURRENT || st[i] == TM_KSTATUS_FAILED) {
				failed += st[i] == TM_KSTATUS_FAILED;
				continue;
			}
			if ((r = get_live(&live, w[i], res, LIVE_STATUS)) < 0)
				goto out;
			st[i] = tm_kstatus_compute(live, w[i]->res.group, w[i]->res.kind, 0, msg[i],
						   sizeof(msg[i]));
			tm_doc_free(live);
			if (st[i] == TM_KSTATUS_FAILED)
				failed++;
			else if (st[i] != TM_KSTATUS_CURRENT)
				pending++;
		}
		if (!pending || failed)
			break;
		t = now_ms();
		if (t >= deadline)
			break;
		if ((r = lease_tick()) < 0)
			goto out;
		sleep_ms(interval < deadline - t ? interval : deadline - t);
		interval = interval * 2 > 1000 ? 1000 : interval * 2;
	}
	if (!failed && !pending)
		goto out;
	/* the failed ones; after a timeout, every one not Current */
	for (size_t i = 0, k = 0; i < nw; i++) {
		int bad = failed ? st[i] == TM_KSTATUS_FAILED : st[i] != TM_KSTATUS_CURRENT;
		if (!bad)
			continue;
		if (!k++)
			first = i;
		tm_log_error("kubernetes: %s is %s: %s", w[i]->o->id, tm_kstatus_name(st[i]),
			     msg[i]);
		if (health &&
		    (r = tm_strv_push(&res->unhealthy, &res->nunhealthy, w[i]->o->id)) < 0)
			goto out;
	}
	set_error_object(res, w[first]->o->id);
	{
		size_t nbad = failed ? failed : pending;
		char more[64] = "";
		if (nbad > 1)
			snprintf(more, sizeof(more), " (and %zu more)", nbad - 1);
		if (failed)
			r = tm_error_set(TM_EAPPLY, "kubernetes: %s %s failed: %s%s", what,
					 w[first]->o->id, msg[first], more);
		else
			r = tm_error_set(TM_EAPPLY,
					 "kubernetes: %s %s not ready within %llu s: %s: %s%s",
					 what, w[first]->o->id,
					 (unsigned long long)((wait_ms + 999) / 1000),
					 tm_kstatus_name(st[first]), msg[first], more);
	}
out:
	free(st);
	free(msg);
	return r;
}

/* ------------------------------------------------------------ apply */

static int is_crd(const struct item *x)
{
	return strcmp(x->ref.kind, "CustomResourceDefinition") == 0 &&
	       strcmp(x->ref.group, "apiextensions.k8s.io") == 0;
}

static int apply_one(struct item *x, struct tm_apply_result *res, int count)
{
	struct tm_buf b;
	struct tm_doc *d = NULL;
	const char *rv;
	long st;
	int r, created, unchanged;

	tm_buf_init(&b, MAX_RESPONSE + 1);
	TM_FAULT("kube.before-patch");
	if ((r = ssa(x, 0, &st, &b)) < 0) {
		set_error_object(res, x->o->id);
		r = tm_error_wrap(r, "kubernetes: apply %s", x->o->id);
		goto out;
	}
	if (st != 200 && st != 201) {
		if (st == 404 && x->how == 2)
			tm_log_debug("kubernetes: %s: its kind is not served yet", x->o->id);
		r = object_failed(res, x, "apply", st, &b);
		goto out;
	}
	TM_FAULT("kube.patched");
	created = st == 201;
	unchanged = 0;
	if (!created && x->listed &&
	    parse_object(&d, b.ptr, b.len, x->o->id, only_metadata, no_managed) == 0 &&
	    (rv = doc_str(tm_doc_get_path(d, "metadata", "resourceVersion", (const char *)NULL))))
		unchanged = strcmp(rv, x->rv) == 0;
	tm_error_clear();
	if (count) {
		if (unchanged) {
			res->unchanged++;
		} else {
			res->applied++;
			if ((r = tm_strv_push(&res->changed, &res->nchanged, x->o->id)) < 0)
				goto out;
		}
	}
	if (unchanged)
		tm_log_debug("kubernetes: %s unchanged", x->o->id);
	else
		tm_log_info("kubernetes: %s %s", x->o->id, created ? "created" : "configured");
	r = 0;
out:
	tm_doc_free(d);
	tm_buf_free(&b);
	return r;
}

/* After its CRD is Established a kind appears in discovery, on a real API
 * server a moment later: refresh until every kind this revision defines is
 * there, for up to 10 s (then the apply names the object that cannot be). */
static int await_kinds(struct item *it, size_t n, const int *sel)
{
	uint64_t deadline = now_ms() + 10000;
	int r;

	for (;;) {
		size_t missing = 0;

		if ((r = tm_kube_discover(P.kube)) < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			char group[TM_KUBE_GROUP_MAX + 1], version[64];
			if (it[i].how != 2 || (sel && !sel[i]) ||
			    split_api_version(it[i].av, group, sizeof(group), version,
					      sizeof(version)) < 0)
				continue;
			/* legacy discovery lists the group version; its resources come when
			 * resolved */
			if (tm_kube_discovery_find(tm_kube_discovery(P.kube), group, version,
						   it[i].ref.kind, NULL) < 0 &&
			    tm_kube_discovery_gv_state(tm_kube_discovery(P.kube), group, version) !=
				    1)
				missing++;
		}
		if (!missing || now_ms() >= deadline)
			return 0;
		if ((r = lease_tick()) < 0)
			return r;
		sleep_ms(250);
	}
}

/* Applies the selected items (sel NULL: all) stage by stage: definitions,
 * then wait for their CRDs to be Established and refresh discovery, then
 * classes, then the rest. count: record applied/unchanged in res. */
static int apply_staged(struct item *it, size_t n, const int *sel, struct tm_apply_result *res,
			int count)
{
	uint64_t wait_ms = P.cfg ? P.cfg->kubernetes.applier.wait_ms : 0;
	int r = 0;

	for (int stage = TM_KUBE_STAGE_DEFINITIONS; stage <= TM_KUBE_STAGE_RESOURCES; stage++) {
		struct item **crds = NULL;
		size_t ncrds = 0, pending_kinds = 0;

		for (size_t i = 0; i < n; i++) {
			if (it[i].stage != stage || (sel && !sel[i]))
				continue;
			if (it[i].how == 2) {
				/* its CRD was applied in the first stage: now the kind must be
				 * served */
				struct tm_kube_resource rr;
				if (tm_kube_resolve(P.kube, it[i].av, it[i].ref.kind, &rr) < 0) {
					set_error_object(res, it[i].o->id);
					return tm_error_set(
						TM_EAPPLY,
						"kubernetes: %s (%.200s): %s (its "
						"CustomResourceDefinition is Established)",
						it[i].o->id, it[i].o->source, tm_error_last());
				}
				it[i].res = rr;
				it[i].how = 1;
				set_ns(&it[i]);
			}
			if ((r = apply_one(&it[i], res, count)) < 0 || (r = lease_tick()) < 0)
				return r;
		}
		if (stage != TM_KUBE_STAGE_DEFINITIONS)
			continue;
		for (size_t i = 0; i < n; i++)
			if (it[i].how == 2)
				pending_kinds++;
		for (size_t i = 0; i < n; i++)
			if (it[i].stage == stage && (!sel || sel[i]) && is_crd(&it[i]))
				ncrds++;
		if (!ncrds)
			continue;
		if (!(crds = calloc(ncrds, sizeof(*crds))))
			return tm_error_set(TM_ENOMEM, "out of memory");
		ncrds = 0;
		for (size_t i = 0; i < n; i++)
			if (it[i].stage == stage && (!sel || sel[i]) && is_crd(&it[i]))
				crds[ncrds++] = &it[i];
		/* Custom resources cannot be applied before their CRD is served,
		 * so CRDs get at least CRD_MIN_WAIT_MS even with wait = 0. */
		r = wait_current(crds, ncrds, wait_ms > CRD_MIN_WAIT_MS ? wait_ms : CRD_MIN_WAIT_MS,
				 res, 0, "CustomResourceDefinition");
		free(crds);
		if (r < 0)
			return r;
		if (pending_kinds && (r = await_kinds(it, n, sel)) < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------ diff */

static FILE *out_of(const struct tm_applier_ctx *ctx)
{
	return ctx->out ? (FILE *)ctx->out : stdout;
}

static void value_text(char *out, size_t n, const struct tm_doc *v)
{
	struct tm_buf b;

	if (!v) {
		snprintf(out, n, "(none)");
		return;
	}
	tm_buf_init(&b, 4096);
	if (tm_doc_to_json(&b, v) < 0 && !b.len)
		tm_buf_puts(&b, "?");
	tm_error_clear();
	if (b.len > 80) {
		b.ptr[77] = '\0';
		clean(out, n, b.ptr, 77);
		snprintf(out + strlen(out), n - strlen(out), "...");
	} else {
		clean(out, n, b.ptr ? b.ptr : "", 80);
	}
	tm_buf_free(&b);
}

struct diffs {
	FILE *f; /* print each difference here, or NULL */
	size_t n;
};

static int ignored(const char *path)
{
	static const char *const skip[] = { "status",
					    "metadata.managedFields",
					    "metadata.resourceVersion",
					    "metadata.generation",
					    "metadata.creationTimestamp",
					    "metadata.uid",
					    NULL };
	for (size_t i = 0; skip[i]; i++)
		if (strcmp(path, skip[i]) == 0)
			return 1;
	return 0;
}

static void diff_note(struct diffs *d, const char *path, const struct tm_doc *a,
		      const struct tm_doc *b)
{
	if (d->f && d->n < DIFF_PATHS_MAX) {
		char x[100], y[100];
		value_text(x, sizeof(x), a);
		value_text(y, sizeof(y), b);
		fprintf(d->f, "    %s: %s -> %s\n", path, x, y);
	} else if (d->f && d->n == DIFF_PATHS_MAX) {
		fprintf(d->f, "    ...\n");
	}
	d->n++;
}

/* Differences between the live object a and what an apply would make of it, b. */
static void diff_docs(struct diffs *d, const char *path, const struct tm_doc *a,
		      const struct tm_doc *b)
{
	char sub[512];

	if (*path && ignored(path))
		return;
	if (a && b && a->type == TM_DOC_MAP && b->type == TM_DOC_MAP) {
		for (size_t i = 0; i < a->u.map.n; i++) {
			const struct tm_doc_entry *e = &a->u.map.v[i];
			snprintf(sub, sizeof(sub), "%s%s%.200s", path, *path ? "." : "", e->key);
			diff_docs(d, sub, e->value, tm_doc_map_getn(b, e->key, e->key_len));
		}
		for (size_t i = 0; i < b->u.map.n; i++) {
			const struct tm_doc_entry *e = &b->u.map.v[i];
			if (tm_doc_map_getn(a, e->key, e->key_len))
				continue;
			snprintf(sub, sizeof(sub), "%s%s%.200s", path, *path ? "." : "", e->key);
			if (!ignored(sub))
				diff_note(d, sub, NULL, e->value);
		}
		return;
	}
	if (a && b && a->type == TM_DOC_SEQ && b->type == TM_DOC_SEQ && a->u.seq.n == b->u.seq.n) {
		for (size_t i = 0; i < a->u.seq.n; i++) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			diff_docs(d, sub, a->u.seq.v[i], b->u.seq.v[i]);
		}
		return;
	}
	if (!a || !b || !tm_doc_equal(a, b))
		diff_note(d, *path ? path : "(object)", a, b);
}

/* diff: what an apply would do to each object, printed; nothing changes.
 * An object that an apply would refuse to take over is printed with "!"
 * and the diff fails as the apply would. */
static int diff_apply(struct item *it, size_t n, const struct tm_applier_ctx *ctx,
		      struct tm_apply_result *res, char *const *inventory, size_t ninventory)
{
	FILE *f = out_of(ctx);
	struct tm_buf b;
	const struct item *first = NULL;
	size_t nforeign = 0;
	int r = 0;

	tm_buf_init(&b, MAX_RESPONSE + 1);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct item *x = &it[i];
		struct tm_doc *live = NULL, *dry = NULL;
		struct diffs d = { NULL, 0 };
		long st;

		if (x->how == 2) {
			/* its kind may be served in another version already */
			if (!in_list(inventory, ninventory, x->o->id)) {
				int foreign;
				if ((r = get_meta(&live, x, res)) < 0)
					break;
				foreign = foreign_live(x, live);
				tm_doc_free(live);
				if (foreign) {
					fprintf(f,
						"kubernetes: ! %s (exists and was not applied by "
						"tagmoor; "
						"refusing to take it over; %s)\n",
						x->o->id, x->o->source);
					if (!nforeign++)
						first = x;
					continue;
				}
			}
			fprintf(f, "kubernetes: + %s (create; %s)\n", x->o->id, x->o->source);
			res->applied++;
			continue;
		}
		if ((r = get_live(&live, x, res, LIVE_ALL)) < 0)
			break;
		if (live && !in_list(inventory, ninventory, x->o->id) && foreign_live(x, live)) {
			fprintf(f,
				"kubernetes: ! %s (exists and was not applied by tagmoor; refusing "
				"to take it over; %s)\n",
				x->o->id, x->o->source);
			if (!nforeign++)
				first = x;
			tm_doc_free(live);
			continue;
		}
		if (!live) {
			fprintf(f, "kubernetes: + %s (create; %s)\n", x->o->id, x->o->source);
			res->applied++;
			continue;
		}
		if ((r = ssa(x, 1, &st, &b)) < 0) {
			tm_doc_free(live);
			break;
		}
		if (st != 200 && st != 201) {
			tm_doc_free(live);
			r = object_failed(res, x, "dry-run apply", st, &b);
			break;
		}
		if ((r = parse_object(&dry, b.ptr, b.len, x->o->id, NULL, no_managed)) < 0) {
			tm_doc_free(live);
			break;
		}
		diff_docs(&d, "", live, dry);
		if (d.n) {
			fprintf(f, "kubernetes: ~ %s (%s)\n", x->o->id, x->o->source);
			d.f = f;
			d.n = 0;
			diff_docs(&d, "", live, dry);
			res->applied++;
			r = tm_strv_push(&res->changed, &res->nchanged, x->o->id);
		} else {
			res->unchanged++;
		}
		tm_doc_free(live);
		tm_doc_free(dry);
	}
	tm_buf_free(&b);
	if (r == 0 && nforeign)
		r = refuse_foreign(res, first, nforeign);
	return r;
}

static int apply(struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired, char *const *inventory, size_t ninventory)
{
	struct item *it = NULL;
	int r;

	if (ctx->root) {
		tm_log_info(
			"kubernetes: --root: the cluster is not touched (%zu objects not applied)",
			desired->n);
		return 0;
	}
	if (!desired->n && !ninventory)
		return 0;
	if ((r = pass_begin(ctx)) < 0) {
		res->unreachable = net_failed;
		return r;
	}
	if (!ctx->dry_run) {
		if ((r = lease_acquire()) < 0)
			goto fail;
		if (P.skipped) {
			tm_log_warn(
				"kubernetes: node %s holds the apply lease %s/%s and applies this "
				"revision; "
				"this node (%s) applies nothing",
				P.other, TM_KUBE_LEASE_NAMESPACE, P.lease, P.holder);
			return 0;
		}
	}
	if ((r = items_build(&it, desired, res)) < 0 ||
	    (r = items_resolve(it, desired->n, res)) < 0)
		goto fail;
	if (ctx->dry_run) {
		r = diff_apply(it, desired->n, ctx, res, inventory, ninventory);
		items_free(it);
		if (r < 0)
			tm_kube_pass_end();
		return r;
	}
	TM_FAULT("kube.resolved");
	prelist(it, desired->n);
	/* look at everything before writing anything */
	if ((r = check_foreign(it, desired->n, inventory, ninventory, res)) < 0 ||
	    (r = record_new(ctx, it, desired->n, inventory, ninventory)) < 0 ||
	    (r = apply_staged(it, desired->n, NULL, res, 1)) < 0)
		goto fail;
	TM_FAULT("kube.applied");
	tm_log_info("kubernetes: %u applied, %u unchanged", res->applied, res->unchanged);
	items_free(it);
	return 0;
fail:
	res->unreachable = net_failed;
	items_free(it);
	tm_kube_pass_end();
	return r;
}

/* ------------------------------------------------------------ prune */

struct gone {
	char *id;
	struct tm_kube_ref ref;
	int stage, rank;
};

static int gone_cmp(const void *a, const void *b)
{
	const struct gone *x = a, *y = b;
	int c;

	/* the reverse of the apply order: webhooks first, CRDs and Namespaces last */
	if (x->stage != y->stage)
		return x->stage > y->stage ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	if ((c = strcmp(x->ref.kind, y->ref.kind)) != 0 || (c = strcmp(x->ref.ns, y->ref.ns)) != 0)
		return c;
	return strcmp(x->ref.name, y->ref.name);
}

static int prune(struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired, char *const *inventory, size_t ninventory,
		 char ***kept, size_t *nkept)
{
	struct gone *g = NULL;
	size_t ng = 0;
	char **keys = NULL, first_msg[MSG_MAX] = "";
	size_t nkeys = 0;
	struct item *it = NULL;
	struct tm_buf b;
	int r = 0, first_err = 0;

	*kept = NULL;
	*nkept = 0;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	for (size_t i = 0; i < ninventory; i++)
		if (tm_objset_find(desired, inventory[i]) < 0)
			ng++;
	if (!ng)
		goto done;
	if (ctx->root || P.skipped) {
		/* not touched now: they stay tagmoor's until a pass that prunes */
		for (size_t i = 0; i < ninventory && r == 0; i++)
			if (tm_objset_find(desired, inventory[i]) < 0)
				r = tm_strv_push(kept, nkept, inventory[i]);
		if (r == 0 && ctx->root)
			tm_log_info(
				"kubernetes: --root: %zu object(s) to prune left for a pass on the "
				"device",
				ng);
		goto done;
	}
	if (!P.active) {
		if ((r = pass_begin(ctx)) < 0)
			goto done;
		if (!ctx->dry_run && ((r = lease_acquire()) < 0 || P.skipped)) {
			for (size_t i = 0; r == 0 && i < ninventory; i++)
				if (tm_objset_find(desired, inventory[i]) < 0)
					r = tm_strv_push(kept, nkept, inventory[i]);
			goto done;
		}
	}
	/* where each desired object lives, so another id of it is not pruned */
	if (desired->n && items_build(&it, desired, res) == 0) {
		for (size_t i = 0; i < desired->n; i++) {
			char k[TM_KUBE_ID_MAX + 1];
			struct tm_kube_resource rr;
			if (tm_kube_discovery_find_kind(tm_kube_discovery(P.kube), it[i].ref.group,
							it[i].ref.kind, &rr) < 0)
				continue;
			it[i].res = rr;
			set_ns(&it[i]);
			if (live_key(k, sizeof(k), rr.group, rr.kind, it[i].ns, it[i].ref.name) ==
				    0 &&
			    (r = tm_strv_push(&keys, &nkeys, k)) < 0)
				goto done;
		}
	}
	tm_error_clear();
	if (!(g = calloc(ng, sizeof(*g)))) {
		r = tm_error_set(TM_ENOMEM, "out of memory");
		goto done;
	}
	ng = 0;
	for (size_t i = 0; i < ninventory; i++) {
		if (tm_objset_find(desired, inventory[i]) >= 0)
			continue;
		if (tm_kube_id_parse(&g[ng].ref, inventory[i]) < 0) {
			tm_log_warn("kubernetes: ignoring invalid inventory entry \"%.*s\"",
				    TM_LOG_CAP, inventory[i]);
			tm_error_clear();
			continue;
		}
		g[ng].id = inventory[i];
		g[ng].stage = tm_kube_stage(g[ng].ref.group, g[ng].ref.kind);
		g[ng].rank = tm_kube_kind_rank(g[ng].ref.kind);
		ng++;
	}
	qsort(g, ng, sizeof(*g), gone_cmp);
	for (size_t i = 0; i < ng; i++) {
		struct item x = { 0 };
		struct tm_object tmp = { 0 };
		struct tm_doc *live = NULL;
		char k[TM_KUBE_ID_MAX + 1], why[256], path[PATH_MAX_K + 64];
		const char *uid;
		int same = 0;
		long st;

		tmp.id = g[i].id;
		tmp.source = "inventory";
		x.o = &tmp;
		x.ref = g[i].ref;
		if (tm_kube_discovery_find_kind(tm_kube_discovery(P.kube), x.ref.group, x.ref.kind,
						&x.res) < 0) {
			/* the kind is gone (its CRD was deleted): so are its objects */
			tm_log_info("kubernetes: %s: kind no longer served; nothing to prune",
				    g[i].id);
			continue;
		}
		x.how = 1;
		set_ns(&x);
		if (live_key(k, sizeof(k), x.res.group, x.res.kind, x.ns, x.ref.name) == 0)
			for (size_t j = 0; j < nkeys && !same; j++)
				same = strcmp(keys[j], k) == 0;
		if (same) {
			tm_log_debug("kubernetes: %s is still in the repository under another id",
				     g[i].id);
			continue;
		}
		if ((r = get_live(&live, &x, res, LIVE_META)) < 0)
			goto keep;
		if (!live) {
			tm_log_debug("kubernetes: %s is already gone", g[i].id);
			continue;
		}
		if (!owned_by_us(live, why, sizeof(why))) {
			tm_log_warn(
				"kubernetes: not pruning %s: its labels say another owner manages "
				"it now (%s)",
				g[i].id, why);
			tm_doc_free(live);
			continue;
		}
		uid = doc_str(tm_doc_get_path(live, "metadata", "uid", (const char *)NULL));
		if (ctx->dry_run) {
			fprintf(out_of(ctx), "kubernetes: - %s (prune)\n", g[i].id);
			res->pruned++;
			tm_doc_free(live);
			continue;
		}
		{
			struct tm_buf body;
			tm_buf_init(&body, 1024);
			r = tm_buf_puts(&body, "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
					       "\"propagationPolicy\":\"Background\"");
			if (uid) {
				r |= tm_buf_puts(&body, ",\"preconditions\":{\"uid\":");
				r |= tm_json_cstr(&body, uid, 0);
				r |= tm_buf_putc(&body, '}');
			}
			r |= tm_buf_putc(&body, '}');
			tm_doc_free(live);
			if (r == 0 && (r = item_path(path, sizeof(path) - 64, &x, 1)) == 0) {
				size_t pl = strlen(path);
				snprintf(path + pl, sizeof(path) - pl,
					 "?propagationPolicy=Background");
				TM_FAULT("kube.before-delete");
				r = tm_kube_call(P.kube, "DELETE", path, "application/json",
						 body.ptr, body.len, &st, &b);
			}
			tm_buf_free(&body);
			if (r < 0)
				goto keep;
		}
		if (st == 200 || st == 202) {
			res->pruned++;
			tm_log_info("kubernetes: %s pruned", g[i].id);
		} else if (st == 404) {
			tm_log_debug("kubernetes: %s is already gone", g[i].id);
		} else if (st == 409) {
			tm_log_warn(
				"kubernetes: not pruning %s: it was replaced while being pruned",
				g[i].id);
		} else {
			r = object_failed(res, &x, "prune", st, &b);
			goto keep;
		}
		TM_FAULT("kube.deleted");
		if ((r = lease_tick()) < 0)
			goto keep;
		continue;
keep:
		if (r == TM_ENOMEM)
			goto done;
		if (!first_err) {
			first_err = r;
			snprintf(first_msg, sizeof(first_msg), "%s", tm_error_last());
		}
		set_error_object(res, g[i].id);
		tm_log_warn("%s", tm_error_last());
		if ((r = tm_strv_push(kept, nkept, g[i].id)) < 0)
			goto done;
	}
	TM_FAULT("kube.pruned");
	r = first_err;
	if (r < 0)
		tm_error_set(r, "%s%s", first_msg,
			     *nkept > 1 ? " (and others could not be pruned)" : "");
done:
	tm_buf_free(&b);
	tm_strv_free(keys, nkeys);
	free(g);
	items_free(it);
	if (r < 0 || ctx->dry_run)
		tm_kube_pass_end();
	return r;
}

/* ------------------------------------------------------------ health */

static int health(struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		  const struct tm_objset *desired, uint64_t wait_ms)
{
	struct item *it = NULL, **w = NULL;
	size_t nw = 0;
	int r = 0;

	if (ctx->root || ctx->dry_run || P.skipped || wait_ms == 0 || !desired->n)
		goto out;
	if (!P.active && (r = pass_begin(ctx)) < 0)
		goto out;
	if ((r = items_build(&it, desired, res)) < 0 ||
	    (r = items_resolve(it, desired->n, res)) < 0)
		goto out;
	if (!(w = calloc(desired->n, sizeof(*w)))) {
		r = tm_error_set(TM_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < desired->n; i++)
		if (!tm_kstatus_always_ready(it[i].res.group, it[i].res.kind))
			w[nw++] = &it[i];
	tm_log_debug("kubernetes: waiting up to %llu ms for %zu object(s)",
		     (unsigned long long)wait_ms, nw);
	r = wait_current(w, nw, wait_ms, res, 1, "health check:");
	if (r == 0)
		tm_log_info("kubernetes: %zu object(s) healthy", nw);
out:
	if (r < 0)
		res->unreachable = net_failed;
	free(w);
	items_free(it);
	tm_kube_pass_end();
	return r;
}

/* ------------------------------------------------------------ drift */

/* Drift repair writes only objects that are tagmoor's: one that exists
 * without tagmoor's labels (deleted and made again by someone else, or
 * relabelled by another tool) is reported and left alone — never taken
 * over, whatever the adopt settings say; the pass fails naming it. */
static int drift(struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired)
{
	struct item *it = NULL;
	int *sel = NULL, r;
	size_t nsel = 0, nforeign = 0;
	const struct item *first = NULL;
	char first_why[256] = "";
	struct tm_buf b;

	if (ctx->root || !desired->n)
		return 0;
	if ((r = pass_begin(ctx)) < 0)
		return r;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	if (!ctx->dry_run) {
		if ((r = lease_acquire()) < 0)
			goto out;
		if (P.skipped) {
			tm_log_info(
				"kubernetes: node %s holds the apply lease; it checks for drift",
				P.other);
			goto out;
		}
	}
	if ((r = items_build(&it, desired, res)) < 0 ||
	    (r = items_resolve(it, desired->n, res)) < 0)
		goto out;
	if (!(sel = calloc(desired->n, sizeof(*sel)))) {
		r = tm_error_set(TM_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < desired->n; i++) {
		struct item *x = &it[i];
		struct tm_doc *live = NULL, *dry = NULL;
		struct diffs d = { NULL, 0 };
		long st;

		if (x->how == 1 && (r = get_live(&live, x, res, LIVE_ALL)) < 0)
			goto out;
		if (live) {
			char why[256];
			if (!owned_by_us(live, why, sizeof(why))) {
				tm_log_error(
					"kubernetes: %s exists and is not tagmoor's (%s); drift "
					"not repaired, "
					"tagmoor does not take it over",
					x->o->id, why);
				if (ctx->dry_run)
					fprintf(out_of(ctx),
						"kubernetes: ! %s (drift: not tagmoor's any more: "
						"%s; "
						"not repaired)\n",
						x->o->id, why);
				if (!nforeign++) {
					first = x;
					snprintf(first_why, sizeof(first_why), "%s", why);
				}
				tm_doc_free(live);
				continue;
			}
			if ((r = ssa(x, 1, &st, &b)) < 0) {
				tm_doc_free(live);
				goto out;
			}
			if (st != 200 && st != 201) {
				tm_doc_free(live);
				r = object_failed(res, x, "dry-run apply", st, &b);
				goto out;
			}
			if ((r = parse_object(&dry, b.ptr, b.len, x->o->id, NULL, no_managed)) <
			    0) {
				tm_doc_free(live);
				goto out;
			}
			diff_docs(&d, "", live, dry);
		}
		if (!live || d.n) {
			tm_log_warn("kubernetes: %s was %s by hand", x->o->id,
				    live ? "changed" : "deleted");
			if (ctx->dry_run) {
				FILE *f = out_of(ctx);
				fprintf(f, "kubernetes: %c %s (drift: %s by hand)\n",
					live ? '~' : '+', x->o->id, live ? "changed" : "deleted");
				if (live) {
					d.f = f;
					d.n = 0;
					diff_docs(&d, "", live, dry);
				}
			}
			sel[i] = 1;
			nsel++;
			r = tm_strv_push(&res->drifted, &res->ndrifted, x->o->id);
		}
		tm_doc_free(live);
		tm_doc_free(dry);
		if (r < 0)
			goto out;
	}
	if (nsel && !ctx->dry_run) {
		char **ids = NULL;
		size_t nids = 0;

		/* what is about to be written, for the pass (all of it tagmoor's already) */
		for (size_t i = 0; i < desired->n && r == 0; i++)
			if (sel[i])
				r = tm_strv_push(&ids, &nids, it[i].o->id);
		if (r == 0 && ctx->record &&
		    (r = ctx->record(ctx->record_arg, "kubernetes", ids, nids)) < 0 &&
		    r != TM_ENOMEM)
			r = tm_error_wrap(TM_EAPPLY, "kubernetes: drift not repaired");
		tm_strv_free(ids, nids);
		if (r == 0)
			r = apply_staged(it, desired->n, sel, res, 0);
		if (r == 0)
			tm_log_info("kubernetes: %zu drifted object(s) repaired", nsel);
	}
	if (r == 0 && nforeign) {
		char more[64] = "";
		if (nforeign > 1)
			snprintf(more, sizeof(more), " (and %zu more)", nforeign - 1);
		set_error_object(res, first->o->id);
		r = tm_error_set(TM_EAPPLY,
				 "kubernetes: drift: %s exists and is not tagmoor's any more (%s); "
				 "not repaired, tagmoor does not take it over%s",
				 first->o->id, first_why, more);
	}
out:
	tm_buf_free(&b);
	free(sel);
	items_free(it);
	tm_kube_pass_end();
	return r;
}

const struct tm_applier tm_kube_applier = {
	.name = "kubernetes",
	.wants = wants,
	.parse = parse,
	.free_data = free_data,
	.apply = apply,
	.prune = prune,
	.health = health,
	.drift = drift,
	.end = tm_kube_pass_end,
};
