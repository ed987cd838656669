/*
 * kube.c — the Kubernetes applier (kube.h, docs/kubernetes.md): the table
 * of applier.h, the pass state and what apply and health do.
 *
 * Where it sits in the pipeline: objects.c parses what plan hands over; the
 * pass then calls apply, prune and health (or drift) in turn. apply() takes
 * the cluster's apply lease (lease.c: one node of a cluster applies),
 * resolves every kind through API discovery (client.c, discovery.c), looks
 * at every object before writing anything (ownership.c) and server-side
 * applies the objects in Flux's stages: CRDs, Namespaces and ClusterRoles
 * first (CRDs waited on until Established), then classes, then the rest
 * with webhooks last. health() waits on the kstatus rules; prune.c deletes
 * what left the repository; drift.c has diff and the drift check. One pass
 * shares one API client (connections reused), one discovery and the lease.
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/apply/kubernetes/kstatus.h"
#include "tagmoor/apply/kubernetes/kubeconfig.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ends what a pass holds (the lease, the client) and forgets it; what says
 * whether the API server was unreachable is kept until the next begin. */
void kube_pass_reset(struct kube_pass *S)
{
	int unreachable = kube_unreachable(S);

	if (S->lease_held) {
		/* the failure that ends a pass must survive the release */
		int code = tm_error_last_code();
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", tm_error_last());
		kube_lease_release(S);
		if (code)
			tm_error_set(code, "%s", msg);
	}
	tm_kube_free(S->kube);
	tm_kubeconfig_free(S->kc);
	memset(S, 0, sizeof(*S));
	S->net_failed = unreachable;
}

/* Whether a request of this pass failed because the API server could not
 * be reached (after the retry): the pass then knows that a failure says
 * nothing about the revision (it is not marked bad, and is retried with
 * backoff). */
int kube_unreachable(const struct kube_pass *S)
{
	return S->net_failed || (S->kube && tm_kube_unreachable(S->kube));
}

int tm_kube_begin(const struct tm_applier_ctx *ctx, void **state)
{
	(void)ctx; /* the client is made when a pass first needs the cluster */
	if (!(*state = calloc(1, sizeof(struct kube_pass))))
		return tm_error_nomem();
	return 0;
}

void tm_kube_end(void *state)
{
	if (!state)
		return;
	kube_pass_reset(state);
	free(state);
}

static const char *field_manager(struct kube_pass *S)
{
	return S->cfg && S->cfg->kubernetes.field_manager ? S->cfg->kubernetes.field_manager
							  : "tagmoor";
}

int kube_pass_begin(struct kube_pass *S, const struct tm_applier_ctx *ctx)
{
	const struct tm_config *cfg = ctx->cfg;
	struct tm_kube_opts ko = { 0 };
	int r;

	kube_pass_reset(S);
	S->net_failed = 0;
	S->cfg = cfg;
	if ((r = tm_kube_owner(S->owner, cfg)) < 0 || (r = tm_kube_lease_name(S->lease, cfg)) < 0)
		goto fail;
	snprintf(S->holder, sizeof(S->holder), "%s",
		 cfg && cfg->agent.device_id ? cfg->agent.device_id
		 : cfg && cfg->hostname      ? cfg->hostname
					     : "tagmoor");
	if (cfg && cfg->kubernetes.kubeconfig)
		r = tm_kubeconfig_load(&S->kc, cfg->kubernetes.kubeconfig, NULL);
	else /* tests: a service account directory other than the pod's */
		r = tm_kubeconfig_in_cluster(&S->kc, cfg ? cfg->kubernetes.sa_dir : NULL);
	if (r < 0)
		goto fail;
	/* tests: exercise the legacy discovery against a server that has both */
	ko.legacy_discovery = cfg && cfg->kubernetes.legacy_discovery;
	if ((r = tm_kube_new(&S->kube, S->kc, &ko)) < 0 || (r = tm_kube_discover(S->kube)) < 0)
		goto fail;
	S->active = 1;
	return 0;
fail:
	/* whatever went wrong with the cluster is an apply failure, never a source one */
	if (r != TM_ENOMEM && r != TM_EAPPLY)
		r = tm_error_wrap(TM_EAPPLY, "kubernetes");
	kube_pass_reset(S);
	return r;
}

int kube_object_failed(struct tm_apply_result *res, const struct item *x, const char *verb, long st,
		       const struct tm_buf *b)
{
	char m[MSG_MAX];

	tm_apply_result_set_object(res, x->o->id);
	tm_kube_status_message(m, sizeof(m), st, b->ptr, b->len);
	return tm_error_set(TM_EAPPLY, "kubernetes: %s %s (%.200s): %s", verb, x->o->id,
			    x->o->source, m);
}

void kube_items_free(struct item *it)
{
	free(it);
}

/* The desired objects in apply order, with their ids parsed. */
int kube_items_build(struct item **out, const struct tm_objset *desired,
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
		return tm_error_nomem();
	}
	if ((r = tm_kube_apply_order(order, desired)) < 0)
		goto fail;
	for (size_t i = 0; i < desired->n; i++) {
		struct item *x = &it[i];
		x->o = &desired->v[order[i]];
		x->k = x->o->data;
		if (tm_kube_id_parse(&x->ref, x->o->id) < 0 || !x->k ||
		    !(x->av = x->k->api_version)) {
			tm_apply_result_set_object(res, x->o->id);
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

void kube_set_ns(struct kube_pass *S, struct item *x)
{
	x->ns = !x->res.namespaced ? "" : x->ref.ns[0] ? x->ref.ns : kube_default_ns(S->cfg);
}

/* The object's identity on the server, for telling two ids of one object apart. */
int kube_live_key(char *out, size_t n, const char *group, const char *kind, const char *ns,
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
int kube_items_resolve(struct kube_pass *S, struct item *it, size_t n, struct tm_apply_result *res)
{
	char **keys = NULL;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		struct item *x = &it[i];
		char group[TM_KUBE_GROUP_MAX + 1], version[64];

		if (x->how == 1)
			continue;
		r = tm_kube_resolve(S->kube, x->av, x->ref.kind, &x->res);
		if (r == 0) {
			x->how = 1;
		} else if (r == TM_ENOTFOUND &&
			   kube_split_api_version(x->av, group, sizeof(group), version,
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
			tm_apply_result_set_object(res, x->o->id);
			return r;
		}
		kube_set_ns(S, x);
	}
	/* Two ids for one live object (a namespaced custom kind once with and
	 * once without `namespace: default`) would fight each other. */
	if (n < 2)
		return 0;
	if (!(keys = calloc(n, sizeof(*keys))))
		return tm_error_nomem();
	for (size_t i = 0; i < n && r == 0; i++) {
		char k[TM_KUBE_ID_MAX + 1];
		if (kube_live_key(k, sizeof(k), it[i].res.group, it[i].res.kind, it[i].ns,
				  it[i].ref.name) < 0 ||
		    !(keys[i] = strdup(k)))
			r = tm_error_nomem();
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

int kube_item_path(char *out, size_t n, const struct item *x, int with_name)
{
	return tm_kube_path(out, n, &x->res, x->ns, with_name ? x->ref.name : NULL);
}

/* GET the live object: 0 with *out (NULL when it does not exist), built as
 * far as part needs it. */
int kube_get_live(struct kube_pass *S, struct tm_doc **out, const struct item *x,
		  struct tm_apply_result *res, enum live_part part)
{
	char path[PATH_MAX_K];
	struct tm_buf b;
	long st;
	int r;

	*out = NULL;
	if ((r = kube_item_path(path, sizeof(path), x, 1)) < 0)
		return r;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	r = tm_kube_call(S->kube, "GET", path, NULL, NULL, 0, &st, &b);
	if (r == 0 && st == 200)
		r = kube_parse_object(out, b.ptr, b.len, x->o->id,
				      part == LIVE_META ? kube_only_metadata : NULL,
				      part == LIVE_STATUS && kube_is_crd(x) ? kube_no_managed_spec
									    : kube_no_managed);
	else if (r == 0 && st != 404)
		r = kube_object_failed(res, x, "read", st, &b);
	tm_buf_free(&b);
	return r;
}

/* Server-side apply of one object: *out_status and the answer in b. */
int kube_ssa(struct kube_pass *S, const struct item *x, int dry_run, long *st, struct tm_buf *b,
	     unsigned keep)
{
	char path[PATH_MAX_K + 128];
	struct tm_buf body;
	const char *data = x->o->content;
	size_t len = x->o->len;
	size_t pl;
	int r;

	if ((r = kube_item_path(path, sizeof(path) - 128, x, 1)) < 0)
		return r;
	pl = strlen(path);
	snprintf(path + pl, sizeof(path) - pl, "?fieldManager=%s&force=true%s", field_manager(S),
		 dry_run ? "&dryRun=All" : "");
	tm_buf_init(&body, MAX_OBJECT_JSON + 1);
	if (!x->res.namespaced && x->k && x->k->has_ns) {
		/* a custom cluster-scoped kind written with a namespace: sent without it
		 * (read back from the JSON, rare: the tree is not kept) */
		struct tm_doc *d = NULL;
		if ((r = kube_parse_json(&d, x->o->content, x->o->len, x->o->id)) < 0)
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
	r = kube_call_keep(S->kube, "PATCH", path, "application/apply-patch+yaml",
			   keep & KUBE_META ? META_ACCEPT : NULL, data, len, st, b, NULL, 0,
			   keep & KUBE_KEEP_ALL);
	tm_buf_free(&body);
	return r;
}

/* After wait_current's polls: the failed objects (after a timeout, every one
 * not Current) are logged and named in the error; health != 0: they also go
 * to res->unhealthy. */
static int report_stuck(struct item **w, size_t nw, const enum tm_kstatus *st,
			char (*msg)[KSTATUS_MSG], size_t failed, size_t pending, uint64_t wait_ms,
			struct tm_apply_result *res, int health, const char *what)
{
	size_t first = 0, nbad = failed ? failed : pending;
	char more[64] = "";
	int r;

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
			return r;
	}
	tm_apply_result_set_object(res, w[first]->o->id);
	if (nbad > 1)
		snprintf(more, sizeof(more), " (and %zu more)", nbad - 1);
	if (failed)
		return tm_error_set(TM_EAPPLY, "kubernetes: %s %s failed: %s%s", what,
				    w[first]->o->id, msg[first], more);
	return tm_error_set(TM_EAPPLY, "kubernetes: %s %s not ready within %llu s: %s: %s%s", what,
			    w[first]->o->id, (unsigned long long)((wait_ms + 999) / 1000),
			    tm_kstatus_name(st[first]), msg[first], more);
}

/* Polls the objects until every one is Current, one is Failed or wait_ms
 * passed. health != 0: the stuck ones go to res->unhealthy. answered (may be
 * NULL): the status each one had in its apply answer (-1: none), which stands
 * for the first poll — the object as it was just written, not read again (a
 * CRD's answer is its whole schema, megabytes for some). */
static int wait_current(struct kube_pass *S, struct item **w, size_t nw, uint64_t wait_ms,
			struct tm_apply_result *res, int health, const char *what,
			const struct answered *answered)
{
	enum tm_kstatus *st;
	char(*msg)[KSTATUS_MSG];
	uint64_t deadline = tm_time_mono_ms() + wait_ms, interval = 100;
	size_t failed = 0, pending = 0;
	int r = 0;

	if (!nw)
		return 0;
	st = calloc(nw, sizeof(*st));
	msg = calloc(nw, sizeof(*msg));
	if (!st || !msg) {
		free(st);
		free(msg);
		return tm_error_nomem();
	}
	for (size_t i = 0; i < nw; i++)
		st[i] = TM_KSTATUS_IN_PROGRESS;
	for (int round = 0;; round++) {
		uint64_t t;

		failed = pending = 0;
		for (size_t i = 0; i < nw; i++) {
			struct tm_doc *live = NULL;

			if (st[i] == TM_KSTATUS_CURRENT || st[i] == TM_KSTATUS_FAILED) {
				failed += st[i] == TM_KSTATUS_FAILED;
				continue;
			}
			if (round == 0 && answered && answered[i].st >= 0) {
				st[i] = (enum tm_kstatus)answered[i].st;
				memcpy(msg[i], answered[i].msg, sizeof(msg[i]));
			} else {
				if ((r = kube_get_live(S, &live, w[i], res, LIVE_STATUS)) < 0)
					goto out;
				st[i] = tm_kstatus_compute(live, w[i]->res.group, w[i]->res.kind, 0,
							   msg[i], sizeof(msg[i]));
				tm_doc_free(live);
			}
			if (st[i] == TM_KSTATUS_FAILED)
				failed++;
			else if (st[i] != TM_KSTATUS_CURRENT)
				pending++;
		}
		if (!pending || failed)
			break;
		t = tm_time_mono_ms();
		if (t >= deadline)
			break;
		if ((r = kube_lease_tick(S)) < 0)
			goto out;
		kube_sleep_ms(interval < deadline - t ? interval : deadline - t);
		/* a round the answers stood for does not count for the back-off */
		if (round > 0 || !answered)
			interval = interval * 2 > 1000 ? 1000 : interval * 2;
	}
	if (failed || pending)
		r = report_stuck(w, nw, st, msg, failed, pending, wait_ms, res, health, what);
out:
	free(st);
	free(msg);
	return r;
}

int kube_is_crd(const struct item *x)
{
	return strcmp(x->ref.kind, "CustomResourceDefinition") == 0 &&
	       strcmp(x->ref.group, "apiextensions.k8s.io") == 0;
}

/* A CRD's status in its apply answer (struct answered); -1 when it cannot be read. */
static void answer_status(struct answered *out, const struct item *x, const struct tm_doc *d)
{
	out->st = d ? (int)tm_kstatus_compute(d, x->res.group, x->res.kind, 0, out->msg,
					      sizeof(out->msg))
		    : -1;
}

/* answered (may be NULL): set to the object's status in the answer (a CRD,
 * waited on next). */
static int apply_one(struct kube_pass *S, struct item *x, struct tm_apply_result *res, int count,
		     struct answered *answered)
{
	struct tm_buf b;
	struct tm_doc *d = NULL;
	const char *rv;
	long st;
	unsigned keep;
	int r, created, unchanged;

	tm_buf_init(&b, MAX_RESPONSE + 1);
	TM_FAULT("kube.before-patch");
	/* The answer is read for its status (answered) or, for an object that
	 * was there, whether it changed: its metadata is enough for that (a
	 * CRD's whole answer is megabytes, for the server to write as well). */
	keep = answered ? KUBE_KEEP_ALL : KUBE_META;
	if (x->listed)
		keep |= KUBE_KEEP_200;
	if ((r = kube_ssa(S, x, 0, &st, &b, keep)) < 0) {
		tm_apply_result_set_object(res, x->o->id);
		r = tm_error_wrap(r, "kubernetes: apply %s", x->o->id);
		goto out;
	}
	if (st != 200 && st != 201) {
		if (st == 404 && x->how == 2)
			tm_log_debug("kubernetes: %s: its kind is not served yet", x->o->id);
		r = kube_object_failed(res, x, "apply", st, &b);
		goto out;
	}
	TM_FAULT("kube.patched");
	created = st == 201;
	unchanged = 0;
	if (answered) {
		/* what kstatus reads (the schema left out), the metadata with it */
		if (kube_parse_object(&d, b.ptr, b.len, x->o->id, NULL, kube_no_managed_spec) < 0)
			d = NULL;
		answer_status(answered, x, d);
	} else if (!created && x->listed &&
		   kube_parse_object(&d, b.ptr, b.len, x->o->id, kube_only_metadata,
				     kube_no_managed) < 0) {
		d = NULL;
	}
	if (d && !created && x->listed &&
	    (rv = kube_doc_str(
		     tm_doc_get_path(d, "metadata", "resourceVersion", (const char *)NULL))))
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
static int await_kinds(struct kube_pass *S, struct item *it, size_t n, const int *sel)
{
	uint64_t deadline = tm_time_mono_ms() + 10000;
	int r;

	for (;;) {
		size_t missing = 0;

		if ((r = tm_kube_discover(S->kube)) < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			char group[TM_KUBE_GROUP_MAX + 1], version[64];
			if (it[i].how != 2 || (sel && !sel[i]) ||
			    kube_split_api_version(it[i].av, group, sizeof(group), version,
						   sizeof(version)) < 0)
				continue;
			/* legacy discovery lists the group version; its resources come when
			 * resolved */
			if (tm_kube_discovery_find(tm_kube_discovery(S->kube), group, version,
						   it[i].ref.kind, NULL) < 0 &&
			    tm_kube_discovery_gv_state(tm_kube_discovery(S->kube), group,
						       version) != 1)
				missing++;
		}
		if (!missing || (uint64_t)tm_time_mono_ms() >= deadline)
			return 0;
		if ((r = kube_lease_tick(S)) < 0)
			return r;
		kube_sleep_ms(250);
	}
}

/* The selected CRDs among the items (in item order) and room for their
 * apply answers' status (-1: none yet). */
static int crds_of(struct item ***out, struct answered **ans, size_t *nout, struct item *it,
		   size_t n, const int *sel)
{
	size_t k = 0;

	*out = NULL;
	*ans = NULL;
	*nout = 0;
	for (size_t i = 0; i < n; i++)
		k += it[i].stage == TM_KUBE_STAGE_DEFINITIONS && (!sel || sel[i]) &&
		     kube_is_crd(&it[i]);
	if (!k)
		return 0;
	*out = calloc(k, sizeof(**out));
	*ans = calloc(k, sizeof(**ans));
	if (!*out || !*ans) {
		free(*out);
		free(*ans);
		*out = NULL;
		*ans = NULL;
		return tm_error_nomem();
	}
	for (size_t i = 0; i < n; i++)
		if (it[i].stage == TM_KUBE_STAGE_DEFINITIONS && (!sel || sel[i]) &&
		    kube_is_crd(&it[i])) {
			(*ans)[*nout].st = -1;
			(*out)[(*nout)++] = &it[i];
		}
	return 0;
}

/* Applies the selected items (sel NULL: all) stage by stage: definitions,
 * then wait for their CRDs to be Established and refresh discovery, then
 * classes, then the rest. count: record applied/unchanged in res. */
int kube_apply_staged(struct kube_pass *S, struct item *it, size_t n, const int *sel,
		      struct tm_apply_result *res, int count)
{
	uint64_t wait_ms = S->cfg ? S->cfg->kubernetes.applier.wait_ms : 0;
	struct item **crds = NULL;
	struct answered *ans = NULL;
	size_t ncrds = 0, k = 0;
	int r, waits = 0;

	if ((r = crds_of(&crds, &ans, &ncrds, it, n, sel)) < 0)
		return r;
	/* the CRDs' answers are read only to wait for kinds of this revision (a
	 * CRD's whole answer is megabytes): without any, metadata is enough */
	for (size_t i = 0; i < n; i++)
		waits |= it[i].how == 2;
	for (int stage = TM_KUBE_STAGE_DEFINITIONS; stage <= TM_KUBE_STAGE_RESOURCES; stage++) {
		size_t pending_kinds = 0;

		for (size_t i = 0; i < n; i++) {
			if (it[i].stage != stage || (sel && !sel[i]))
				continue;
			if (it[i].how == 2) {
				/* its CRD was applied in the first stage: now the kind must be
				 * served */
				struct tm_kube_resource rr;
				if (tm_kube_resolve(S->kube, it[i].av, it[i].ref.kind, &rr) < 0) {
					tm_apply_result_set_object(res, it[i].o->id);
					r = tm_error_set(TM_EAPPLY,
							 "kubernetes: %s (%.200s): %s (its "
							 "CustomResourceDefinition is Established)",
							 it[i].o->id, it[i].o->source,
							 tm_error_last());
					goto out;
				}
				it[i].res = rr;
				it[i].how = 1;
				kube_set_ns(S, &it[i]);
			}
			if ((r = apply_one(S, &it[i], res, count,
					   k < ncrds && crds[k] == &it[i] && waits ? &ans[k++]
										   : NULL)) < 0 ||
			    (r = kube_lease_tick(S)) < 0)
				goto out;
		}
		if (stage != TM_KUBE_STAGE_DEFINITIONS || !ncrds)
			continue;
		for (size_t i = 0; i < n; i++)
			if (it[i].how == 2)
				pending_kinds++;
		/* Custom resources cannot be applied before their CRD is served, so CRDs
		 * get at least CRD_MIN_WAIT_MS even with wait = 0 — when this revision has
		 * custom resources of a kind they define. Without any, nothing waits here
		 * (a CRD is read again only by the health check, when wait is set). */
		if (!pending_kinds)
			continue;
		if ((r = wait_current(S, crds, ncrds,
				      wait_ms > CRD_MIN_WAIT_MS ? wait_ms : CRD_MIN_WAIT_MS, res, 0,
				      "CustomResourceDefinition", ans)) < 0 ||
		    (r = await_kinds(S, it, n, sel)) < 0)
			goto out;
	}
	r = 0;
out:
	free(crds);
	free(ans);
	return r;
}

int kube_apply(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	       const struct tm_objset *desired, char *const *inventory, size_t ninventory)
{
	struct kube_pass *S = state;
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
	if ((r = kube_pass_begin(S, ctx)) < 0) {
		res->unreachable = kube_unreachable(S);
		return r;
	}
	if (!ctx->dry_run) {
		if ((r = kube_lease_acquire(S)) < 0)
			goto fail;
		if (S->skipped) {
			tm_log_warn(
				"kubernetes: node %s holds the apply lease %s/%s and applies this "
				"revision; "
				"this node (%s) applies nothing",
				S->other, TM_KUBE_LEASE_NAMESPACE, S->lease, S->holder);
			return 0;
		}
	}
	if ((r = kube_items_build(&it, desired, res)) < 0 ||
	    (r = kube_items_resolve(S, it, desired->n, res)) < 0)
		goto fail;
	if (ctx->dry_run) {
		r = kube_diff_apply(S, it, desired->n, ctx, res, inventory, ninventory);
		kube_items_free(it);
		if (r < 0)
			kube_pass_reset(S);
		return r;
	}
	TM_FAULT("kube.resolved");
	kube_prelist(S, it, desired->n);
	/* look at everything before writing anything */
	if ((r = kube_check_foreign(S, it, desired->n, inventory, ninventory, res)) < 0 ||
	    (r = kube_record_new(ctx, it, desired->n, inventory, ninventory)) < 0 ||
	    (r = kube_apply_staged(S, it, desired->n, NULL, res, 1)) < 0)
		goto fail;
	TM_FAULT("kube.applied");
	tm_log_info("kubernetes: %u applied, %u unchanged", res->applied, res->unchanged);
	kube_items_free(it);
	return 0;
fail:
	res->unreachable = kube_unreachable(S);
	kube_items_free(it);
	kube_pass_reset(S);
	return r;
}

int kube_health(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		const struct tm_objset *desired, uint64_t wait_ms)
{
	struct kube_pass *S = state;
	struct item *it = NULL, **w = NULL;
	size_t nw = 0;
	int r = 0;

	if (ctx->root || ctx->dry_run || S->skipped || wait_ms == 0 || !desired->n)
		goto out;
	if (!S->active && (r = kube_pass_begin(S, ctx)) < 0)
		goto out;
	if ((r = kube_items_build(&it, desired, res)) < 0 ||
	    (r = kube_items_resolve(S, it, desired->n, res)) < 0)
		goto out;
	if (!(w = calloc(desired->n, sizeof(*w)))) {
		r = tm_error_nomem();
		goto out;
	}
	for (size_t i = 0; i < desired->n; i++)
		if (!tm_kstatus_always_ready(it[i].res.group, it[i].res.kind))
			w[nw++] = &it[i];
	tm_log_debug("kubernetes: waiting up to %llu ms for %zu object(s)",
		     (unsigned long long)wait_ms, nw);
	r = wait_current(S, w, nw, wait_ms, res, 1, "health check:", NULL);
	if (r == 0)
		tm_log_info("kubernetes: %zu object(s) healthy", nw);
out:
	if (r < 0)
		res->unreachable = kube_unreachable(S);
	free(w);
	kube_items_free(it);
	kube_pass_reset(S);
	return r;
}

const struct tm_applier tm_kube_applier = {
	.name = "kubernetes",
	.wants = kube_wants,
	.parse = kube_parse,
	.free_data = kube_free_data,
	.apply = kube_apply,
	.prune = kube_prune,
	.health = kube_health,
	.drift = kube_drift,
	.begin = tm_kube_begin,
	.end = tm_kube_end,
};
