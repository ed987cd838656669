/*
 * prune.c — deleting what left the repository (kube.h): the inventory ids
 * that are no longer desired, in the reverse of the apply order (webhooks
 * first, CRDs and Namespaces last), each only when its labels prove it is
 * tagmoor's and it is not still in the repository under another id; what
 * could not be deleted stays in the inventory.
 *
 * Where it sits in the pipeline: after apply (kube.c), when [kubernetes]
 * prune = yes; `tagmoor diff` prints what it would delete.
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/doc/json.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Every inventory id that left the repository, kept: not touched now, they
 * stay tagmoor's until a pass that prunes. */
static int keep_all_gone(char ***kept, size_t *nkept, const struct tm_objset *desired,
			 char *const *inventory, size_t ninventory)
{
	int r = 0;

	for (size_t i = 0; i < ninventory && r == 0; i++)
		if (tm_objset_find(desired, inventory[i]) < 0)
			r = tm_strv_push(kept, nkept, inventory[i]);
	return r;
}

/* Where each desired object lives (kube_live_key), so that another id of
 * it is not pruned. Kinds the server does not serve are left out. */
static int desired_keys(struct kube_pass *S, char ***keys, size_t *nkeys,
			const struct tm_objset *desired, struct tm_apply_result *res)
{
	struct item *it = NULL;
	int r = 0;

	if (desired->n && kube_items_build(&it, desired, res) == 0) {
		for (size_t i = 0; i < desired->n; i++) {
			char k[TM_KUBE_ID_MAX + 1];
			struct tm_kube_resource rr;
			if (tm_kube_discovery_find_kind(tm_kube_discovery(S->kube), it[i].ref.group,
							it[i].ref.kind, &rr) < 0)
				continue;
			it[i].res = rr;
			kube_set_ns(S, &it[i]);
			if (kube_live_key(k, sizeof(k), rr.group, rr.kind, it[i].ns,
					  it[i].ref.name) == 0 &&
			    (r = tm_strv_push(keys, nkeys, k)) < 0)
				break;
		}
	}
	kube_items_free(it);
	return r;
}

/* The inventory ids that left the repository (ng of them), in prune order;
 * invalid entries are skipped with a warning. */
static int gone_list(struct gone **out, size_t *ng, const struct tm_objset *desired,
		     char *const *inventory, size_t ninventory)
{
	struct gone *g;

	if (!(g = calloc(*ng, sizeof(*g))))
		return tm_error_nomem();
	*ng = 0;
	for (size_t i = 0; i < ninventory; i++) {
		if (tm_objset_find(desired, inventory[i]) >= 0)
			continue;
		if (tm_kube_id_parse(&g[*ng].ref, inventory[i]) < 0) {
			tm_log_warn("kubernetes: ignoring invalid inventory entry \"%.*s\"",
				    TM_LOG_CAP, inventory[i]);
			tm_error_clear();
			continue;
		}
		g[*ng].id = inventory[i];
		g[*ng].stage = tm_kube_stage(g[*ng].ref.group, g[*ng].ref.kind);
		g[*ng].rank = tm_kube_kind_rank(g[*ng].ref.kind);
		(*ng)++;
	}
	qsort(g, *ng, sizeof(*g), gone_cmp);
	*out = g;
	return 0;
}

/* DELETE of the live object x (uid: the precondition, when known), in the
 * background; the status in *st and the answer in b. */
static int delete_live(struct kube_pass *S, const struct item *x, const char *uid, long *st,
		       struct tm_buf *b)
{
	char path[PATH_MAX_K + 64];
	struct tm_buf body;
	int r;

	tm_buf_init(&body, 1024);
	r = tm_buf_puts(&body, "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
			       "\"propagationPolicy\":\"Background\"");
	if (uid) {
		r |= tm_buf_puts(&body, ",\"preconditions\":{\"uid\":");
		r |= tm_json_cstr(&body, uid, 0);
		r |= tm_buf_putc(&body, '}');
	}
	r |= tm_buf_putc(&body, '}');
	if (r == 0 && (r = kube_item_path(path, sizeof(path) - 64, x, 1)) == 0) {
		size_t pl = strlen(path);
		snprintf(path + pl, sizeof(path) - pl, "?propagationPolicy=Background");
		TM_FAULT("kube.before-delete");
		r = tm_kube_call(S->kube, "DELETE", path, "application/json", body.ptr, body.len,
				 st, b);
	}
	tm_buf_free(&body);
	return r;
}

/* Prunes one object that left the repository: 0 when it is gone or is left
 * alone (kind no longer served, still desired under another id, already
 * gone, another owner's now, replaced meanwhile); < 0 when it could not be
 * deleted (it stays in the inventory). */
static int prune_one(struct kube_pass *S, const struct tm_applier_ctx *ctx,
		     struct tm_apply_result *res, const struct gone *g, char *const *keys,
		     size_t nkeys, struct tm_buf *b)
{
	struct item x = { 0 };
	struct tm_object tmp = { 0 };
	struct tm_doc *live = NULL;
	char k[TM_KUBE_ID_MAX + 1], why[256];
	const char *uid;
	int same = 0, r;
	long st;

	tmp.id = g->id;
	tmp.source = "inventory";
	x.o = &tmp;
	x.ref = g->ref;
	if (tm_kube_discovery_find_kind(tm_kube_discovery(S->kube), x.ref.group, x.ref.kind,
					&x.res) < 0) {
		/* the kind is gone (its CRD was deleted): so are its objects */
		tm_log_info("kubernetes: %s: kind no longer served; nothing to prune", g->id);
		return 0;
	}
	x.how = 1;
	kube_set_ns(S, &x);
	if (kube_live_key(k, sizeof(k), x.res.group, x.res.kind, x.ns, x.ref.name) == 0)
		for (size_t j = 0; j < nkeys && !same; j++)
			same = strcmp(keys[j], k) == 0;
	if (same) {
		tm_log_debug("kubernetes: %s is still in the repository under another id", g->id);
		return 0;
	}
	if ((r = kube_get_live(S, &live, &x, res, LIVE_META)) < 0)
		return r;
	if (!live) {
		tm_log_debug("kubernetes: %s is already gone", g->id);
		return 0;
	}
	if (!kube_owned_by_us(S, live, why, sizeof(why))) {
		tm_log_warn("kubernetes: not pruning %s: its labels say another owner manages "
			    "it now (%s)",
			    g->id, why);
		tm_doc_free(live);
		return 0;
	}
	uid = kube_doc_str(tm_doc_get_path(live, "metadata", "uid", (const char *)NULL));
	if (ctx->dry_run) {
		fprintf(kube_out_of(ctx), "kubernetes: - %s (prune)\n", g->id);
		res->pruned++;
		tm_doc_free(live);
		return 0;
	}
	r = delete_live(S, &x, uid, &st, b);
	tm_doc_free(live);
	if (r < 0)
		return r;
	if (st == 200 || st == 202) {
		res->pruned++;
		tm_log_info("kubernetes: %s pruned", g->id);
	} else if (st == 404) {
		tm_log_debug("kubernetes: %s is already gone", g->id);
	} else if (st == 409) {
		tm_log_warn("kubernetes: not pruning %s: it was replaced while being pruned",
			    g->id);
	} else {
		return kube_object_failed(res, &x, "prune", st, b);
	}
	TM_FAULT("kube.deleted");
	return kube_lease_tick(S);
}

int kube_prune(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	       const struct tm_objset *desired, char *const *inventory, size_t ninventory,
	       char ***kept, size_t *nkept)
{
	struct kube_pass *S = state;
	struct gone *g = NULL;
	size_t ng = 0;
	char **keys = NULL, first_msg[MSG_MAX] = "";
	size_t nkeys = 0;
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
	if (ctx->root || S->skipped) {
		r = keep_all_gone(kept, nkept, desired, inventory, ninventory);
		if (r == 0 && ctx->root)
			tm_log_info(
				"kubernetes: --root: %zu object(s) to prune left for a pass on the "
				"device",
				ng);
		goto done;
	}
	if (!S->active) {
		if ((r = kube_pass_begin(S, ctx)) < 0)
			goto done;
		if (!ctx->dry_run && ((r = kube_lease_acquire(S)) < 0 || S->skipped)) {
			if (r == 0)
				r = keep_all_gone(kept, nkept, desired, inventory, ninventory);
			goto done;
		}
	}
	if ((r = desired_keys(S, &keys, &nkeys, desired, res)) < 0)
		goto done;
	tm_error_clear();
	if ((r = gone_list(&g, &ng, desired, inventory, ninventory)) < 0)
		goto done;
	for (size_t i = 0; i < ng; i++) {
		if ((r = prune_one(S, ctx, res, &g[i], keys, nkeys, &b)) == 0)
			continue;
		if (r == TM_ENOMEM)
			goto done;
		if (!first_err) {
			first_err = r;
			snprintf(first_msg, sizeof(first_msg), "%s", tm_error_last());
		}
		tm_apply_result_set_object(res, g[i].id);
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
	if (r < 0 || ctx->dry_run)
		kube_pass_reset(S);
	return r;
}
