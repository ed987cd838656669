/*
 * kube.h — the Kubernetes applier and the pieces it is made of: object ids,
 * the apply order, API discovery, a small API client and the message of a
 * failed API call. docs/kubernetes.md describes the behaviour.
 *
 * The applier (tm_kube_applier, name "kubernetes") plugs into reconcile
 * through applier.h:
 *   wants   *.yaml, *.yml, *.json
 *   parse   one object per Kubernetes object of the file, id
 *           "group/Kind/namespace/name" ("/ConfigMap/default/x",
 *           "apiextensions.k8s.io/CustomResourceDefinition//foos.example.com"),
 *           content = the object as JSON with tagmoor's labels added,
 *           data = the little apply, prune and health need besides (objects.c:
 *           struct kobj); the file is read document by document and each
 *           tree is freed once its JSON is written ([kubernetes] max_file,
 *           max_document, max_nodes bound it; namespaced objects without a
 *           namespace go to default_namespace)
 *   apply   the apply lease; refuses (writing nothing) when a desired object
 *           that is not in the inventory exists on the server without
 *           tagmoor's labels (unless the repository opts in to adopting it);
 *           records the new ids through ctx->record; then server-side
 *           apply in Flux's stages
 *   prune   deletes what left the repository, only when its labels prove it
 *           is tagmoor's
 *   health  kstatus rules (kstatus.h) within [kubernetes] wait
 *   drift   server-side dry-run apply compared with the live object; repaired,
 *           except objects whose labels are no longer tagmoor's (reported,
 *           never taken over)
 *
 * One pass (apply, prune, health — or drift) shares one API client, one
 * discovery and the apply lease: the applier's pass state, made by begin
 * (tm_kube_begin) and released by end (tm_kube_end), which the pass hands
 * to every call in between. The files of the applier are listed in
 * src/apply/kubernetes/kube_internal.h.
 */
#ifndef TAGMOOR_KUBE_H
#define TAGMOOR_KUBE_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"

struct tm_config;
struct tm_doc;
struct tm_kubeconfig;

extern const struct tm_applier tm_kube_applier;

/* The labels every applied object carries. The owner value is the same on
 * every node that follows one repository (see tm_kube_owner). */
#define TM_KUBE_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define TM_KUBE_MANAGED_BY "tagmoor"
#define TM_KUBE_LABEL_OWNER "tagmoor.dev/owner"
/* The annotation with which an object in the repository asks to take over
 * an existing object that tagmoor did not apply (value exactly "true");
 * [kubernetes] adopt = yes does the same for every object. */
#define TM_KUBE_ANNOTATION_ADOPT "tagmoor.dev/adopt"

#define TM_KUBE_GROUP_MAX 253
#define TM_KUBE_KIND_MAX 128
#define TM_KUBE_NAME_MAX 253
#define TM_KUBE_ID_MAX (TM_KUBE_GROUP_MAX + TM_KUBE_KIND_MAX + 2 * TM_KUBE_NAME_MAX + 4)

/* The lease that makes one node of a cluster apply (kube-system/NAME). */
#define TM_KUBE_LEASE_NAMESPACE "kube-system"
#define TM_KUBE_LEASE_SECONDS 60

/* ------------------------------------------------------------ ids */

struct tm_kube_ref {
	char group[TM_KUBE_GROUP_MAX + 1];
	char kind[TM_KUBE_KIND_MAX + 1];
	char ns[TM_KUBE_NAME_MAX + 1];
	char name[TM_KUBE_NAME_MAX + 1];
};

/* Splits "group/Kind/namespace/name"; TM_EPARSE when it is not one. */
int tm_kube_id_parse(struct tm_kube_ref *out, const char *id);

/* The tagmoor.dev/owner label value for cfg: the first 16 hex digits of the
 * SHA-256 of the source URL without credentials. Every node following the
 * same repository computes the same value; another repository (another
 * tagmoor, another tool) a different one. */
int tm_kube_owner(char out[17], const struct tm_config *cfg);

/* Lease name for cfg: "tagmoor-" + 16 hex digits of SHA-256(url "\n" ref). */
int tm_kube_lease_name(char out[32], const struct tm_config *cfg);

/* Whether a built-in kind is cluster-scoped (1), namespaced (0) or unknown
 * to tagmoor without asking the server (-1). */
int tm_kube_builtin_scope(const char *group, const char *kind);

/* ------------------------------------------------------------ order */

enum tm_kube_stage {
	TM_KUBE_STAGE_DEFINITIONS =
		0,                 /* CRDs, Namespaces, ClusterRoles: applied and waited on first */
	TM_KUBE_STAGE_CLASSES = 1, /* kinds ending in "Class" */
	TM_KUBE_STAGE_RESOURCES = 2 /* everything else; webhooks last */
};

int tm_kube_stage(const char *group, const char *kind);
/* Flux's apply order inside a stage: CustomResourceDefinition, Namespace,
 * ResourceQuota, StorageClass, ServiceAccount, ..., unknown kinds, then
 * MutatingWebhookConfiguration, ValidatingWebhookConfiguration. */
int tm_kube_kind_rank(const char *kind);
/* Fills order[0..set->n) with the indices of set's objects (by id) in apply
 * order: stage, kind rank, group, kind, namespace, name. Ids that do not
 * parse sort last. */
int tm_kube_apply_order(size_t *order, const struct tm_objset *set);

/* ------------------------------------------------------------ discovery */

struct tm_kube_discovery;

struct tm_kube_resource {
	char group[TM_KUBE_GROUP_MAX + 1];
	char version[64];
	char kind[TM_KUBE_KIND_MAX + 1];
	char resource[TM_KUBE_NAME_MAX + 1]; /* plural, as in URLs */
	int namespaced;
};

int tm_kube_discovery_new(struct tm_kube_discovery **out);
void tm_kube_discovery_free(struct tm_kube_discovery *d);
/* Forgets everything (before a refresh). */
void tm_kube_discovery_clear(struct tm_kube_discovery *d);

/*
 * Adds the answer of GET /api (core != 0) or /apis. The format is chosen by
 * content_type: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
 * (or v=v2beta1) is aggregated discovery with every resource; anything else
 * is the legacy APIVersions / APIGroupList, which only names the group
 * versions (their resources come with tm_kube_discovery_add_resource_list).
 * Sets *aggregated accordingly. Group versions marked Stale are skipped.
 */
int tm_kube_discovery_add_root(struct tm_kube_discovery *d, const char *content_type,
			       const char *body, size_t len, int core, int *aggregated);
/* Adds an APIResourceList (GET /api/v1, /apis/G/V). */
int tm_kube_discovery_add_resource_list(struct tm_kube_discovery *d, const char *body, size_t len);
/* Records that a group version failed to answer (its resources stay unknown). */
int tm_kube_discovery_mark_failed(struct tm_kube_discovery *d, const char *group,
				  const char *version);

/* The resource of (group, version, kind): 0, or TM_ENOTFOUND. */
int tm_kube_discovery_find(const struct tm_kube_discovery *d, const char *group,
			   const char *version, const char *kind, struct tm_kube_resource *out);
/* The resource of (group, kind) in any version, the group's preferred (first
 * listed) version first: 0, or TM_ENOTFOUND. */
int tm_kube_discovery_find_kind(const struct tm_kube_discovery *d, const char *group,
				const char *kind, struct tm_kube_resource *out);
/* What is known about a group version: 0 unknown, 1 listed (resources not
 * loaded), 2 resources loaded, -1 listed but failed. */
int tm_kube_discovery_gv_state(const struct tm_kube_discovery *d, const char *group,
			       const char *version);
/* Number of resources known (tests, logs). */
size_t tm_kube_discovery_count(const struct tm_kube_discovery *d);

/* ------------------------------------------------------------ API errors */

/*
 * One line for a failed API call: HTTP status and body (a metav1.Status when
 * the server sent one): "conflict: ...", "invalid: ... (spec.x: Required
 * value; ...)", "forbidden: ...", "not found: ...", with the server's
 * message and causes; a body that is not a Status gives the HTTP status and
 * the start of the body. Untrusted text is capped and stripped of control
 * characters.
 */
void tm_kube_status_message(char *out, size_t outlen, long http_status, const char *body,
			    size_t len);

/* ------------------------------------------------------------ client */

struct tm_kube;

struct tm_kube_opts {
	int legacy_discovery; /* do not ask for aggregated discovery (tests) */
	uint64_t timeout_ms;  /* idle timeout per request; 0: 30 s */
};

/* A client for the API server of kc: one HTTP client (connections reused),
 * credentials from kc (the token file is read now). */
int tm_kube_new(struct tm_kube **out, const struct tm_kubeconfig *kc,
		const struct tm_kube_opts *opts);
void tm_kube_free(struct tm_kube *k);

/* One API call. path: "/api/v1/..." with query. The body of any answer
 * (also 4xx/5xx) goes to out (initialised by the caller). 429, 500, 502,
 * 503 and 504 answers are retried three times (0.25, 0.5, 1 s apart), a
 * broken connection once. Network and TLS failures: TM_EAPPLY with the
 * message. */
int tm_kube_call(struct tm_kube *k, const char *method, const char *path, const char *content_type,
		 const void *body, size_t len, long *out_status, struct tm_buf *out);

/* (Re)loads discovery: /api and /apis (aggregated when the server offers it,
 * else legacy, whose group versions are then loaded when first needed). */
int tm_kube_discover(struct tm_kube *k);
/* Resolves (apiVersion, kind), loading a legacy group version on first use
 * and refreshing discovery once when the kind is missing. */
int tm_kube_resolve(struct tm_kube *k, const char *api_version, const char *kind,
		    struct tm_kube_resource *out);
const struct tm_kube_discovery *tm_kube_discovery(const struct tm_kube *k);
/* Whether the last discovery was aggregated. */
int tm_kube_discovery_aggregated(const struct tm_kube *k);
/* Whether a request failed because the API server could not be reached
 * (after the retry), as opposed to an answer saying no. */
int tm_kube_unreachable(const struct tm_kube *k);

/* The path of a resource: "/apis/G/V[/namespaces/NS]/RESOURCE[/NAME]"
 * with NS and NAME percent-encoded. */
int tm_kube_path(char *out, size_t outlen, const struct tm_kube_resource *r, const char *ns,
		 const char *name);

/* The applier's pass state (the table's begin and end; test drivers call
 * them around the table's functions). begin only allocates: the client is
 * made, discovery loaded and the lease taken when a call first needs the
 * cluster. The applier releases the lease and the client itself at the end
 * of health() and drift() and on failures; end releases whatever is still
 * held and frees the state (NULL: nothing). */
int tm_kube_begin(const struct tm_applier_ctx *ctx, void **state);
void tm_kube_end(void *state);

#endif
