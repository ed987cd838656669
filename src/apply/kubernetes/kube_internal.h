/*
 * kube_internal.h — what the files of the Kubernetes applier share (not a
 * public interface: kube.h is). The files, top to bottom of a pass:
 *   objects.c    ids, owner and lease names, kinds' scope, apply order, parse()
 *   discovery.c  what the API server serves
 *   client.c     the API client: requests, answers, errors, discovery loading
 *   lease.c      the apply lease
 *   kube.c       the applier: the pass state, items, apply, health, the table
 *   ownership.c  whose a live object is; the pre-list; recording new ids
 *   prune.c      deleting what left the repository
 *   drift.c      diff and the drift check
 */
#ifndef TAGMOOR_KUBE_INTERNAL_H
#define TAGMOOR_KUBE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/core/buf.h"

struct tm_config;
struct tm_doc;
struct tm_kubeconfig;

#define PATH_MAX_K 2048
#define MAX_OBJECT_JSON (8u << 20) /* one object as JSON */
#define MAX_RESPONSE (16u << 20)   /* one API answer (list pages are capped by limit) */
#define CRD_MIN_WAIT_MS 30000u     /* CRDs are waited on at least this long */
#define MSG_MAX 900

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

#define KSTATUS_MSG 256 /* a kstatus message */

/* An object's kstatus as its apply answer showed it (st: enum tm_kstatus, -1: none). */
struct answered {
	int st;
	char msg[KSTATUS_MSG];
};

enum live_part {
	LIVE_ALL,    /* everything but managedFields (diff, drift) */
	LIVE_STATUS, /* what kstatus reads: a CRD's spec (its schema) is left out */
	LIVE_META    /* metadata only (prune) */
};

/* The applier's pass state (applier.h: begin .. end; tm_kube_begin): what
 * apply, prune and health — or drift — of one pass share (see kube.h). */
struct kube_pass {
	int active; /* the client is made and discovery loaded */
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
	int net_failed;  /* a client of this pass could not reach the server (kube_unreachable) */
};

extern const char *const kube_no_managed[];
extern const char *const kube_no_managed_spec[];
extern const char *const kube_only_metadata[];

/* objects.c */
void kube_clean(char *out, size_t outlen, const char *s, size_t cap);
int kube_copy_str(char *out, size_t outlen, const char *s);
int kube_split_api_version(const char *av, char *group, size_t gl, char *version, size_t vl);
int kube_wants(const char *path, const char *basename);
const char *kube_doc_str(const struct tm_doc *d);
void kube_free_data(void *data);
const char *kube_default_ns(const struct tm_config *cfg);
int kube_parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
	       const char *relpath, const char *content, size_t len);

/* client.c */
void kube_sleep_ms(uint64_t ms);
int kube_parse_json(struct tm_doc **out, const char *body, size_t len, const char *what);
int kube_parse_object(struct tm_doc **out, const char *body, size_t len, const char *what,
		      const char *const *keep, const char *const *skip);
int kube_call_ct(struct tm_kube *k, const char *method, const char *path, const char *ctype,
		 const char *accept, const void *body, size_t len, long *out_status,
		 struct tm_buf *out, char *ctype_out, size_t ctype_len);
/* kube_call_ct that keeps the answer of a 200 or 201 only when keep says so
 * (any other status's always): an unread one is drained and dropped. */
#define KUBE_KEEP_200 1u
#define KUBE_KEEP_201 2u
#define KUBE_KEEP_ALL (KUBE_KEEP_200 | KUBE_KEEP_201)
int kube_call_keep(struct tm_kube *k, const char *method, const char *path, const char *ctype,
		   const char *accept, const void *body, size_t len, long *out_status,
		   struct tm_buf *out, char *ctype_out, size_t ctype_len, unsigned keep);
/* Accept: metadata only, else the whole object */
#define META_ACCEPT "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
/* kube_ssa's keep may add: the answer asked for as META_ACCEPT (the API server
 * answers a PATCH so as it does a GET; one that does not sends the whole object) */
#define KUBE_META 4u
int kube_api_failed(long st, const struct tm_buf *b, const char *what);
int kube_put_segment(struct tm_buf *b, const char *s);

/* lease.c */
int kube_lease_acquire(struct kube_pass *S);
int kube_lease_tick(struct kube_pass *S);
void kube_lease_release(struct kube_pass *S);

/* kube.c */
void kube_pass_reset(struct kube_pass *S);
int kube_unreachable(const struct kube_pass *S);
int kube_pass_begin(struct kube_pass *S, const struct tm_applier_ctx *ctx);
int kube_object_failed(struct tm_apply_result *res, const struct item *x, const char *verb, long st,
		       const struct tm_buf *b);
void kube_items_free(struct item *it);
int kube_items_build(struct item **out, const struct tm_objset *desired,
		     struct tm_apply_result *res);
void kube_set_ns(struct kube_pass *S, struct item *x);
int kube_live_key(char *out, size_t n, const char *group, const char *kind, const char *ns,
		  const char *name);
int kube_items_resolve(struct kube_pass *S, struct item *it, size_t n, struct tm_apply_result *res);
int kube_item_path(char *out, size_t n, const struct item *x, int with_name);
int kube_get_live(struct kube_pass *S, struct tm_doc **out, const struct item *x,
		  struct tm_apply_result *res, enum live_part part);
int kube_ssa(struct kube_pass *S, const struct item *x, int dry_run, long *st, struct tm_buf *b,
	     unsigned keep);
int kube_is_crd(const struct item *x);
int kube_apply_staged(struct kube_pass *S, struct item *it, size_t n, const int *sel,
		      struct tm_apply_result *res, int count);
int kube_apply(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	       const struct tm_objset *desired, char *const *inventory, size_t ninventory);
int kube_health(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		const struct tm_objset *desired, uint64_t wait_ms);

/* ownership.c */
int kube_owned_by_us(struct kube_pass *S, const struct tm_doc *live, char *why, size_t wl);
void kube_prelist(struct kube_pass *S, struct item *it, size_t n);
int kube_in_list(char *const *v, size_t n, const char *s);
int kube_get_meta(struct kube_pass *S, struct tm_doc **out, const struct item *x,
		  struct tm_apply_result *res);
int kube_foreign_live(struct kube_pass *S, const struct item *x, const struct tm_doc *live);
int kube_refuse_foreign(struct tm_apply_result *res, const struct item *first, size_t nforeign);
int kube_check_foreign(struct kube_pass *S, struct item *it, size_t n, char *const *inventory,
		       size_t ninventory, struct tm_apply_result *res);
int kube_record_new(const struct tm_applier_ctx *ctx, struct item *it, size_t n,
		    char *const *inventory, size_t ninventory);

/* prune.c */
int kube_prune(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	       const struct tm_objset *desired, char *const *inventory, size_t ninventory,
	       char ***kept, size_t *nkept);

/* drift.c */
FILE *kube_out_of(const struct tm_applier_ctx *ctx);
int kube_diff_apply(struct kube_pass *S, struct item *it, size_t n,
		    const struct tm_applier_ctx *ctx, struct tm_apply_result *res,
		    char *const *inventory, size_t ninventory);
int kube_drift(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	       const struct tm_objset *desired);

#endif
