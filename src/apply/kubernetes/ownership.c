/*
 * ownership.c — whose a live object is (kube.h). Server-side apply with
 * force takes over whatever object has the name, so before anything is
 * written every desired object that is not in the inventory is looked at:
 * one that exists without tagmoor's labels refuses the apply, unless the
 * repository opts in to adopting it. Also the pre-list (one metadata LIST
 * per kind with tagmoor's owner label) that tells an apply that changed
 * nothing from one that did, and the record of new ids before the first
 * write.
 *
 * Where it sits in the pipeline: apply (kube.c) and diff (drift.c) call it
 * after resolving the kinds and before writing; prune and drift read the
 * labels through kube_owned_by_us.
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_LIMIT 500
#define FOREIGN_GET_MAX 8 /* more new objects of one kind: one LIST, not a GET each */
#define META_LIST_ACCEPT \
	"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

/* Whether the live object's labels prove that this tagmoor applied it:
 * managed-by tagmoor and this source's owner. Else why says what they are. */
int kube_owned_by_us(struct kube_pass *S, const struct tm_doc *live, char *why, size_t wl)
{
	const struct tm_doc *labels =
		tm_doc_get_path(live, "metadata", "labels", (const char *)NULL);
	const char *mb = kube_doc_str(tm_doc_map_get(labels, TM_KUBE_LABEL_MANAGED_BY));
	const char *ow = kube_doc_str(tm_doc_map_get(labels, TM_KUBE_LABEL_OWNER));
	char a[80], b[80];

	if (mb && strcmp(mb, TM_KUBE_MANAGED_BY) == 0 && ow && strcmp(ow, S->owner) == 0)
		return 1;
	kube_clean(a, sizeof(a), mb ? mb : "(none)", 63);
	kube_clean(b, sizeof(b), ow ? ow : "(none)", 63);
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
	if (kube_put_segment(&b, s) < 0) {
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
static int list_meta(struct kube_pass *S, const struct tm_kube_resource *res, const char *esel,
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
		if (kube_call_ct(S->kube, "GET", path, NULL, META_LIST_ACCEPT, NULL, 0, &st, &b,
				 NULL, 0) < 0 ||
		    st != 200 || kube_parse_json(&d, b.ptr, b.len, "list") < 0) {
			tm_log_debug("kubernetes: cannot list %s (HTTP %ld)", res->resource, st);
			tm_error_clear();
			break;
		}
		items = tm_doc_map_get(d, "items");
		for (size_t k = 0; items && items->type == TM_DOC_SEQ && k < items->u.seq.n; k++)
			fn(arg, items->u.seq.v[k]);
		c = kube_doc_str(tm_doc_get_path(d, "metadata", "continue", (const char *)NULL));
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
	const char *nm = kube_doc_str(tm_doc_map_get(md, "name"));
	const char *ns = kube_doc_str(tm_doc_map_get(md, "namespace"));
	struct lkey want = { x->res.resource, ns ? ns : "", nm, NULL };
	const struct lkey *hit;

	if (!nm || !n)
		return NULL;
	hit = bsearch(&want, keys, n, sizeof(*keys), lkey_cmp);
	/* several resources may share a plural (two groups): check the group */
	return hit && strcmp(hit->x->res.group, x->res.group) == 0 ? hit->x : NULL;
}

struct prelist_ctx {
	struct kube_pass *S;
	const struct lkey *keys;
	size_t n;
	const struct item *x;
};

static void prelist_item(void *arg, const struct tm_doc *obj)
{
	struct prelist_ctx *c = arg;
	struct kube_pass *S = c->S;
	struct item *hit = lkey_find(c->keys, c->n, c->x, obj);
	const char *rv = kube_doc_str(
		tm_doc_get_path(obj, "metadata", "resourceVersion", (const char *)NULL));
	char why[256];

	if (hit && rv && strlen(rv) < sizeof(hit->rv)) {
		snprintf(hit->rv, sizeof(hit->rv), "%s", rv);
		hit->listed = 1;
		hit->ours = kube_owned_by_us(S, obj, why, sizeof(why));
	}
}

void kube_prelist(struct kube_pass *S, struct item *it, size_t n)
{
	struct lkey *keys = calloc(n ? n : 1, sizeof(*keys));
	char sel[128], *esel;

	if (!keys)
		return;
	snprintf(sel, sizeof(sel), "%s=%s", TM_KUBE_LABEL_OWNER, S->owner);
	if (!(esel = url_encode(sel))) {
		free(keys);
		return;
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = (struct lkey){ it[i].res.resource, it[i].ns, it[i].ref.name, &it[i] };
	qsort(keys, n, sizeof(*keys), lkey_cmp);
	for (size_t i = 0; i < n; i++) {
		struct item *x = keys[i].x;
		struct prelist_ctx c = { S, keys, n, x };
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
		if (list_meta(S, &x->res, esel, prelist_item, &c) < 0)
			tm_log_debug("kubernetes: changes of %s are counted as applied",
				     x->res.resource);
	}
	free(esel);
	free(keys);
}

/* Server-side apply with force takes over whatever object has the name, so
 * an object of the repository that already exists and that tagmoor did not
 * apply would become tagmoor's — and be pruned when it leaves the
 * repository (a Namespace with everything in it). Objects in the inventory
 * and objects with tagmoor's labels are tagmoor's; any other existing one
 * is someone else's and is refused, unless the repository opts in. */

int kube_in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* Whether the repository asks to take x over: [kubernetes] adopt = yes, or
 * the annotation tagmoor.dev/adopt: "true" on the object itself. */
static int adopt_wanted(struct kube_pass *S, const struct item *x)
{
	if (S->cfg && S->cfg->kubernetes.adopt)
		return 1;
	return x->k && x->k->adopt;
}

/* GET the live object's metadata (no Secret data where the server can):
 * 0 with *out, NULL when it does not exist. A kind that comes from a CRD of
 * this revision is looked up in any version the server already serves; when
 * it serves none, no such object can exist. */
int kube_get_meta(struct kube_pass *S, struct tm_doc **out, const struct item *x,
		  struct tm_apply_result *res)
{
	struct item y = *x;
	char path[PATH_MAX_K];
	struct tm_buf b;
	long st;
	int r;

	*out = NULL;
	if (y.how != 1) {
		if (tm_kube_discovery_find_kind(tm_kube_discovery(S->kube), y.ref.group, y.ref.kind,
						&y.res) < 0) {
			tm_error_clear();
			return 0;
		}
		kube_set_ns(S, &y);
	}
	if ((r = kube_item_path(path, sizeof(path), &y, 1)) < 0)
		return r;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	r = kube_call_ct(S->kube, "GET", path, NULL, META_ACCEPT, NULL, 0, &st, &b, NULL, 0);
	if (r == 0 && st == 200)
		r = kube_parse_object(out, b.ptr, b.len, x->o->id, kube_only_metadata,
				      kube_no_managed);
	else if (r == 0 && st != 404)
		r = kube_object_failed(res, x, "read", st, &b);
	tm_buf_free(&b);
	return r;
}

/* Whether live (x's object on the server; x is not in the inventory) is
 * someone else's and may not be taken over: 1, with a log line; 0 when it
 * is tagmoor's or the repository opts in to adopting it. */
int kube_foreign_live(struct kube_pass *S, const struct item *x, const struct tm_doc *live)
{
	char why[256];

	if (!live || kube_owned_by_us(S, live, why, sizeof(why)))
		return 0;
	if (adopt_wanted(S, x)) {
		tm_log_warn("kubernetes: adopting %s (%.200s): it exists and was not applied by "
			    "tagmoor (%s); "
			    "the repository takes it over (%s)",
			    x->o->id, x->o->source, why,
			    S->cfg && S->cfg->kubernetes.adopt ? "[kubernetes] adopt = yes"
							       : TM_KUBE_ANNOTATION_ADOPT
				    ": \"true\"");
		return 0;
	}
	tm_log_error("kubernetes: %s (%.200s) exists and was not applied by tagmoor (%s)", x->o->id,
		     x->o->source, why);
	return 1;
}

/* The refusal: names the first foreign object; nothing has been written. */
int kube_refuse_foreign(struct tm_apply_result *res, const struct item *first, size_t nforeign)
{
	char more[64] = "";

	if (nforeign > 1)
		snprintf(more, sizeof(more), " (and %zu more)", nforeign - 1);
	tm_apply_result_set_object(res, first->o->id);
	return tm_error_set(
		TM_EAPPLY,
		"kubernetes: %s exists and was not applied by tagmoor; refusing to take it over%s "
		"(%.200s; to take it over, annotate it %s: \"true\" in the repository or set "
		"[kubernetes] adopt = yes)",
		first->o->id, more, first->o->source, TM_KUBE_ANNOTATION_ADOPT);
}

struct foreign_ctx {
	struct kube_pass *S;
	const struct lkey *keys;
	size_t n;
	const struct item *x;
};

static void foreign_item(void *arg, const struct tm_doc *obj)
{
	struct foreign_ctx *c = arg;
	struct kube_pass *S = c->S;
	struct item *hit = lkey_find(c->keys, c->n, c->x, obj);

	if (hit && !hit->checked) {
		hit->checked = 1;
		hit->foreign = kube_foreign_live(S, hit, obj);
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
static int list_candidates(struct kube_pass *S, struct item **cand, size_t nc)
{
	struct lkey *keys;

	if (nc <= FOREIGN_GET_MAX)
		return 0;
	if (!(keys = calloc(nc, sizeof(*keys))))
		return tm_error_nomem();
	for (size_t i = 0; i < nc; i++)
		keys[i] = (struct lkey){ cand[i]->res.resource, cand[i]->ns, cand[i]->ref.name,
					 cand[i] };
	qsort(keys, nc, sizeof(*keys), lkey_cmp);
	for (size_t i = 0; i < nc; i++) {
		struct foreign_ctx c = { S, keys, nc, cand[i] };
		size_t same = 0;
		int seen = 0;

		for (size_t j = 0; j < i && !seen; j++)
			seen = same_resource(cand[j], cand[i]);
		for (size_t j = i; j < nc && !seen; j++)
			same += same_resource(cand[j], cand[i]);
		if (seen || same <= FOREIGN_GET_MAX)
			continue;
		if (list_meta(S, &cand[i]->res, NULL, foreign_item, &c) < 0) {
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
int kube_check_foreign(struct kube_pass *S, struct item *it, size_t n, char *const *inventory,
		       size_t ninventory, struct tm_apply_result *res)
{
	const struct item *first = NULL;
	struct item **cand;
	size_t nforeign = 0, nc = 0;
	int r;

	if (!(cand = calloc(n ? n : 1, sizeof(*cand))))
		return tm_error_nomem();
	for (size_t i = 0; i < n; i++)
		if (it[i].how == 1 && !it[i].ours &&
		    !kube_in_list(inventory, ninventory, it[i].o->id))
			cand[nc++] = &it[i];
	r = list_candidates(S, cand, nc);
	free(cand);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct item *x = &it[i];
		struct tm_doc *live = NULL;

		if (kube_in_list(inventory, ninventory, x->o->id) || x->ours)
			continue;
		if (x->checked) {
			if (x->foreign && !nforeign++)
				first = x;
			continue;
		}
		if ((r = kube_get_meta(S, &live, x, res)) < 0)
			return r;
		if (kube_foreign_live(S, x, live)) {
			if (!nforeign++)
				first = x;
		}
		tm_doc_free(live);
	}
	return nforeign ? kube_refuse_foreign(res, first, nforeign) : 0;
}

/* Hands the ids about to be created or written that are not in the
 * inventory yet to the pass (ctx->record), before the first write. */
int kube_record_new(const struct tm_applier_ctx *ctx, struct item *it, size_t n,
		    char *const *inventory, size_t ninventory)
{
	char **ids = NULL;
	size_t nids = 0;
	int r = 0;

	if (!ctx->record)
		return 0;
	for (size_t i = 0; i < n && r == 0; i++)
		if (!kube_in_list(inventory, ninventory, it[i].o->id))
			r = tm_strv_push(&ids, &nids, it[i].o->id);
	if (r == 0 && nids && (r = ctx->record(ctx->record_arg, "kubernetes", ids, nids)) < 0) {
		if (r != TM_ENOMEM)
			r = tm_error_wrap(TM_EAPPLY, "kubernetes: nothing applied");
	}
	tm_strv_free(ids, nids);
	return r < 0 ? r : 0;
}
