/*
 * drift.c — differences between live objects and the repository
 * (kube.h): diff (what an apply would do, printed, nothing changed) and the
 * drift check (a server-side dry-run apply compared with the live object;
 * what was changed or deleted by hand is re-applied, except objects whose
 * labels are no longer tagmoor's, which are reported and never taken over).
 *
 * Where it sits in the pipeline: `tagmoor diff` reaches diff through apply()
 * with dry_run (kube.c); a poll that finds nothing new runs drift().
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_PATHS_MAX 20

FILE *kube_out_of(const struct tm_applier_ctx *ctx)
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
		kube_clean(out, n, b.ptr, 77);
		snprintf(out + strlen(out), n - strlen(out), "...");
	} else {
		kube_clean(out, n, b.ptr ? b.ptr : "", 80);
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
int kube_diff_apply(struct kube_pass *S, struct item *it, size_t n,
		    const struct tm_applier_ctx *ctx, struct tm_apply_result *res,
		    char *const *inventory, size_t ninventory)
{
	FILE *f = kube_out_of(ctx);
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
			if (!kube_in_list(inventory, ninventory, x->o->id)) {
				int foreign;
				if ((r = kube_get_meta(S, &live, x, res)) < 0)
					break;
				foreign = kube_foreign_live(S, x, live);
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
		if ((r = kube_get_live(S, &live, x, res, LIVE_ALL)) < 0)
			break;
		if (live && !kube_in_list(inventory, ninventory, x->o->id) &&
		    kube_foreign_live(S, x, live)) {
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
		if ((r = kube_ssa(S, x, 1, &st, &b, KUBE_KEEP_ALL)) < 0) {
			tm_doc_free(live);
			break;
		}
		if (st != 200 && st != 201) {
			tm_doc_free(live);
			r = kube_object_failed(res, x, "dry-run apply", st, &b);
			break;
		}
		if ((r = kube_parse_object(&dry, b.ptr, b.len, x->o->id, NULL, kube_no_managed)) <
		    0) {
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
		r = kube_refuse_foreign(res, first, nforeign);
	return r;
}

/* One object against what an apply would make of it (a server-side dry
 * run): *drifted when it was changed or deleted by hand (printed in diff),
 * *foreign (why says how) when its labels are no longer tagmoor's. */
static int drift_one(struct kube_pass *S, const struct tm_applier_ctx *ctx,
		     struct tm_apply_result *res, struct item *x, struct tm_buf *b, int *drifted,
		     int *foreign, char *why, size_t wl)
{
	struct tm_doc *live = NULL, *dry = NULL;
	struct diffs d = { NULL, 0 };
	long st;
	int r = 0;

	*drifted = *foreign = 0;
	if (x->how == 1 && (r = kube_get_live(S, &live, x, res, LIVE_ALL)) < 0)
		return r;
	if (live) {
		if (!kube_owned_by_us(S, live, why, wl)) {
			tm_log_error("kubernetes: %s exists and is not tagmoor's (%s); drift "
				     "not repaired, "
				     "tagmoor does not take it over",
				     x->o->id, why);
			if (ctx->dry_run)
				fprintf(kube_out_of(ctx),
					"kubernetes: ! %s (drift: not tagmoor's any more: "
					"%s; "
					"not repaired)\n",
					x->o->id, why);
			*foreign = 1;
			tm_doc_free(live);
			return 0;
		}
		if ((r = kube_ssa(S, x, 1, &st, b, KUBE_KEEP_ALL)) < 0)
			goto out;
		if (st != 200 && st != 201) {
			r = kube_object_failed(res, x, "dry-run apply", st, b);
			goto out;
		}
		if ((r = kube_parse_object(&dry, b->ptr, b->len, x->o->id, NULL, kube_no_managed)) <
		    0)
			goto out;
		diff_docs(&d, "", live, dry);
	}
	if (!live || d.n) {
		tm_log_warn("kubernetes: %s was %s by hand", x->o->id,
			    live ? "changed" : "deleted");
		if (ctx->dry_run) {
			FILE *f = kube_out_of(ctx);
			fprintf(f, "kubernetes: %c %s (drift: %s by hand)\n", live ? '~' : '+',
				x->o->id, live ? "changed" : "deleted");
			if (live) {
				d.f = f;
				d.n = 0;
				diff_docs(&d, "", live, dry);
			}
		}
		*drifted = 1;
		r = tm_strv_push(&res->drifted, &res->ndrifted, x->o->id);
	}
out:
	tm_doc_free(live);
	tm_doc_free(dry);
	return r;
}

/* Re-applies the drifted objects (sel) after handing their ids to the pass
 * (ctx->record; all of them tagmoor's already). */
static int repair(struct kube_pass *S, const struct tm_applier_ctx *ctx,
		  struct tm_apply_result *res, struct item *it, size_t n, const int *sel,
		  size_t nsel)
{
	char **ids = NULL;
	size_t nids = 0;
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++)
		if (sel[i])
			r = tm_strv_push(&ids, &nids, it[i].o->id);
	if (r == 0 && ctx->record &&
	    (r = ctx->record(ctx->record_arg, "kubernetes", ids, nids)) < 0 && r != TM_ENOMEM)
		r = tm_error_wrap(TM_EAPPLY, "kubernetes: drift not repaired");
	tm_strv_free(ids, nids);
	if (r == 0)
		r = kube_apply_staged(S, it, n, sel, res, 0);
	if (r == 0)
		tm_log_info("kubernetes: %zu drifted object(s) repaired", nsel);
	return r;
}

/* Drift repair writes only objects that are tagmoor's: one that exists
 * without tagmoor's labels (deleted and made again by someone else, or
 * relabelled by another tool) is reported and left alone — never taken
 * over, whatever the adopt settings say; the pass fails naming it. */
int kube_drift(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	       const struct tm_objset *desired)
{
	struct kube_pass *S = state;
	struct item *it = NULL;
	int *sel = NULL, r;
	size_t nsel = 0, nforeign = 0;
	const struct item *first = NULL;
	char first_why[256] = "";
	struct tm_buf b;

	if (ctx->root || !desired->n)
		return 0;
	if ((r = kube_pass_begin(S, ctx)) < 0)
		return r;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	if (!ctx->dry_run) {
		if ((r = kube_lease_acquire(S)) < 0)
			goto out;
		if (S->skipped) {
			tm_log_info(
				"kubernetes: node %s holds the apply lease; it checks for drift",
				S->other);
			goto out;
		}
	}
	if ((r = kube_items_build(&it, desired, res)) < 0 ||
	    (r = kube_items_resolve(S, it, desired->n, res)) < 0)
		goto out;
	if (!(sel = calloc(desired->n, sizeof(*sel)))) {
		r = tm_error_nomem();
		goto out;
	}
	for (size_t i = 0; i < desired->n; i++) {
		char why[256];
		int drifted, foreign;

		if ((r = drift_one(S, ctx, res, &it[i], &b, &drifted, &foreign, why, sizeof(why))) <
		    0)
			goto out;
		if (foreign && !nforeign++) {
			first = &it[i];
			snprintf(first_why, sizeof(first_why), "%s", why);
		}
		if (drifted) {
			sel[i] = 1;
			nsel++;
		}
	}
	if (nsel && !ctx->dry_run)
		r = repair(S, ctx, res, it, desired->n, sel, nsel);
	if (r == 0 && nforeign) {
		char more[64] = "";
		if (nforeign > 1)
			snprintf(more, sizeof(more), " (and %zu more)", nforeign - 1);
		tm_apply_result_set_object(res, first->o->id);
		r = tm_error_set(TM_EAPPLY,
				 "kubernetes: drift: %s exists and is not tagmoor's any more (%s); "
				 "not repaired, tagmoor does not take it over%s",
				 first->o->id, first_why, more);
	}
out:
	tm_buf_free(&b);
	free(sel);
	kube_items_free(it);
	kube_pass_reset(S);
	return r;
}
