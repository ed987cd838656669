/*
 * tm-kube-drive.c — drives the Kubernetes applier table on directories of
 * manifests, the way a reconcile pass does, for the integration tests
 * (tests/integration/test_kube_apply.sh) and bench/kube-apply: the applier
 * without Git, signatures or state.json.
 *
 *   tm-kube-drive COMMAND --from DIR [--from DIR]... [--inventory FILE]
 *                 [--kubeconfig FILE] [--device ID] [--url URL] [--ref REF]
 *                 [--field-manager NAME] [--wait MS] [--no-prune] [--root DIR]
 *                 [--adopt] [--no-record] [--record-fail] [-v|-q]
 *   COMMAND: apply | prune | health | drift | sync (= apply, prune, health)
 *            | diff (= apply and prune as `tagmoor diff` runs them)
 *
 * Every --from is one `paths` entry, read recursively in sorted order; a
 * later entry replaces objects of an earlier one (the overlay). Without
 * --kubeconfig the in-cluster service account is used. --inventory holds the
 * ids applied before, one a line, and is updated as state.json would be:
 * through the ctx->record hook (the ids the applier is about to write are
 * added before its first write; recorded=... lists them), desired ∪ kept
 * after pruning. --adopt is [kubernetes] adopt = yes; --no-record leaves
 * ctx->record NULL; --record-fail makes the hook fail (nothing may then be
 * written). The result is printed as KEY=VALUE lines; exit 0 on success, 1
 * on failure, 2 on usage. TAGMOOR_TEST_KUBE_SA_DIR (the in-cluster service
 * account directory instead of the pod's) and TAGMOOR_TEST_KUBE_LEGACY_DISCOVERY=1
 * (legacy discovery only) set the applier's test options.
 */
#define _GNU_SOURCE
#include "drive.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/core/log.h"
#include "tagmoor/pipeline/plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct tm_applier *A = &tm_kube_applier;

static int add_layer(struct tm_objset *set, struct tm_objset *layer)
{
	int r = 0;

	for (size_t k = 0; r == 0 && k < layer->n; k++) {
		long at = tm_objset_find(set, layer->v[k].id);
		if (at >= 0) {
			struct tm_object tmp = set->v[at];
			set->v[at] = layer->v[k];
			layer->v[k] = tmp;
		} else {
			r = tm_objset_add(set, layer->v[k].id, layer->v[k].source,
					  layer->v[k].content, layer->v[k].len, layer->v[k].data);
			if (r == 0)
				layer->v[k].data = NULL;
		}
	}
	return r;
}

/* One file of a --from directory: parsed if the applier wants it. */
struct load {
	struct tm_objset *layer;
	const struct tm_applier_ctx *ctx;
};

static int load_file(void *arg, const char *path, const char *relpath, const char *name)
{
	struct load *l = arg;
	int r = 0;

	if (!A->wants(relpath, name))
		return 0;
	struct tm_buf b;
	struct tm_plan_limits lim;
	size_t before = l->layer->n;

	/* the caps plan.c applies to this applier ([kubernetes] max_file) */
	tm_plan_limits_of(&lim, A, l->ctx->cfg);
	tm_buf_init(&b, (size_t)lim.max_file + 1);
	r = tm_file_read(&b, path, (size_t)lim.max_file);
	if (r == 0)
		r = A->parse(l->layer, l->ctx, relpath, relpath, b.ptr ? b.ptr : "", b.len);
	for (size_t k = before; r == 0 && k < l->layer->n; k++)
		for (size_t j = 0; j < k; j++)
			if (strcmp(l->layer->v[k].id, l->layer->v[j].id) == 0) {
				r = tm_error_set(TM_EPARSE, "%s: %s is also defined in %s", relpath,
						 l->layer->v[k].id, l->layer->v[j].source);
				break;
			}
	tm_buf_free(&b);
	return r;
}

static int read_tree(struct tm_objset *layer, const struct tm_applier_ctx *ctx, const char *top,
		     const char *rel)
{
	struct load l = { layer, ctx };

	return tm_drive_walk(top, rel, load_file, &l);
}

static int has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* The record hook: what the pass does with state.json, on the inventory file.
 * Like tm_state_set_inventory, it replaces (frees) the inventory array that
 * apply() was given, so an applier that reads it after recording is caught
 * by the sanitizers. */
struct recorder {
	int keep;         /* 0: diff, nothing recorded */
	const char *file; /* saved here, if any */
	int fail;
	char ***inv; /* main's inventory */
	size_t *ninv;
	char **recorded; /* every id handed to the hook, for recorded= */
	size_t nrecorded;
};

static int record_hook(void *arg, const char *applier, char *const *ids, size_t n)
{
	struct recorder *rc = arg;
	char **all = NULL;
	size_t nall = 0;
	int r = 0;

	if (strcmp(applier, "kubernetes") != 0)
		return tm_error_set(TM_EAPPLY, "record: unexpected applier \"%s\"", applier);
	for (size_t i = 0; i < n && r == 0; i++)
		if (!has(rc->recorded, rc->nrecorded, ids[i]))
			r = tm_strv_push(&rc->recorded, &rc->nrecorded, ids[i]);
	if (r < 0)
		return r;
	if (rc->fail)
		return tm_error_set(TM_EIO, "record: saving the inventory failed (--record-fail)");
	if (!rc->keep)
		return 0;
	for (size_t i = 0; i < *rc->ninv && r == 0; i++)
		r = tm_strv_push(&all, &nall, (*rc->inv)[i]);
	for (size_t i = 0; i < n && r == 0; i++)
		if (!has(all, nall, ids[i]))
			r = tm_strv_push(&all, &nall, ids[i]);
	if (r == 0 && rc->file)
		r = tm_drive_write_inventory(rc->file, all, nall);
	if (r < 0) {
		tm_strv_free(all, nall);
		return r;
	}
	tm_strv_free(*rc->inv, *rc->ninv);
	*rc->inv = all;
	*rc->ninv = nall;
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: tm-kube-drive apply|prune|health|drift|sync|diff --from DIR [--from DIR]... "
		"[--inventory FILE] [--kubeconfig FILE] [--device ID] [--url URL] [--ref REF] "
		"[--field-manager NAME] [--wait MS] [--no-prune] [--root DIR] [--adopt] [--no-record] "
		"[--record-fail] [-v|-q]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd, *froms[16], *invfile = NULL;
	size_t nfrom = 0;
	struct tm_config cfg;
	struct tm_applier_ctx ctx = { 0 };
	struct tm_objset desired = { 0 };
	struct tm_apply_result res = { 0 };
	struct recorder rec = { 0 };
	void *state = NULL; /* the applier's pass state, as a pass holds it */
	char **inv = NULL, **kept = NULL;
	size_t ninv = 0, nkept = 0;
	int r = 0, do_apply, do_prune, do_health, do_drift, pruned = 0, prune_on = 1, record_on = 1;

	memset(&cfg, 0, sizeof(cfg));
	tm_log_setup(TM_LOG_TEXT, TM_LOG_WARN);
	cfg.agent.device_id = "tm-kube-drive";
	cfg.source.url = "https://git.example.invalid/fleet.git";
	cfg.source.ref = "refs/tags/stable";
	cfg.kubernetes.field_manager = "tagmoor";
	cfg.kubernetes.applier.wait_ms = 30000;
	cfg.kubernetes.applier.enabled = 1;
	/* the applier's test options, from the environment of the test scripts */
	cfg.kubernetes.sa_dir = getenv("TAGMOOR_TEST_KUBE_SA_DIR");
	cfg.kubernetes.legacy_discovery = getenv("TAGMOOR_TEST_KUBE_LEGACY_DISCOVERY") &&
					  *getenv("TAGMOOR_TEST_KUBE_LEGACY_DISCOVERY") == '1';
	if (argc < 2)
		return usage();
	cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-v") == 0)
			tm_log_setup(TM_LOG_TEXT, TM_LOG_DEBUG);
		else if (strcmp(a, "-q") == 0)
			tm_log_setup(TM_LOG_TEXT, TM_LOG_ERROR);
		else if (strcmp(a, "--no-prune") == 0)
			prune_on = 0;
		else if (strcmp(a, "--adopt") == 0)
			cfg.kubernetes.adopt = 1;
		else if (strcmp(a, "--no-record") == 0)
			record_on = 0;
		else if (strcmp(a, "--record-fail") == 0)
			rec.fail = 1;
		else if (i + 1 >= argc)
			return usage();
		else if (strcmp(a, "--from") == 0 && nfrom < 16)
			froms[nfrom++] = argv[++i];
		else if (strcmp(a, "--inventory") == 0)
			invfile = argv[++i];
		else if (strcmp(a, "--kubeconfig") == 0)
			cfg.kubernetes.kubeconfig = argv[++i];
		else if (strcmp(a, "--device") == 0)
			cfg.agent.device_id = argv[++i];
		else if (strcmp(a, "--url") == 0)
			cfg.source.url = argv[++i];
		else if (strcmp(a, "--ref") == 0)
			cfg.source.ref = argv[++i];
		else if (strcmp(a, "--field-manager") == 0)
			cfg.kubernetes.field_manager = argv[++i];
		else if (strcmp(a, "--wait") == 0)
			cfg.kubernetes.applier.wait_ms = strtoull(argv[++i], NULL, 10);
		else if (strcmp(a, "--root") == 0)
			ctx.root = argv[++i];
		else
			return usage();
	}
	if (strcmp(cmd, "diff") == 0)
		ctx.dry_run = 1;
	do_apply = strcmp(cmd, "apply") == 0 || strcmp(cmd, "sync") == 0 || ctx.dry_run;
	do_prune = (strcmp(cmd, "prune") == 0 || strcmp(cmd, "sync") == 0 || ctx.dry_run) &&
		   prune_on;
	do_health = strcmp(cmd, "health") == 0 || strcmp(cmd, "sync") == 0;
	do_drift = strcmp(cmd, "drift") == 0;
	if (!(do_apply || do_prune || do_health || do_drift || strcmp(cmd, "prune") == 0))
		return usage();
	cfg.kubernetes.applier.prune = prune_on;
	ctx.cfg = &cfg;
	ctx.out = stdout;

	for (size_t i = 0; i < nfrom && r == 0; i++) {
		struct tm_objset layer = { 0 };
		struct stat st;
		if (stat(froms[i], &st) == 0)
			r = read_tree(&layer, &ctx, froms[i], "");
		if (r == 0)
			r = add_layer(&desired, &layer);
		tm_objset_free(&layer, A->free_data);
	}
	if (r < 0)
		goto out;
	if (invfile && (r = tm_drive_read_inventory(&inv, &ninv, invfile)) < 0)
		goto out;
	if (record_on) {
		/* what the applier records before writing joins the inventory */
		rec.keep = !ctx.dry_run;
		rec.file = invfile;
		rec.inv = &inv;
		rec.ninv = &ninv;
		ctx.record = record_hook;
		ctx.record_arg = &rec;
	}
	if ((r = tm_kube_begin(&ctx, &state)) < 0)
		goto out;
	if (do_apply && (r = A->apply(state, &res, &ctx, &desired, inv, ninv)) < 0)
		goto out;
	if (do_prune) {
		r = A->prune(state, &res, &ctx, &desired, inv, ninv, &kept, &nkept);
		pruned = 1;
		if (invfile && !ctx.dry_run) {
			char **nv = NULL;
			size_t nn = 0;
			int w = 0;
			for (size_t k = 0; k < desired.n && w == 0; k++)
				w = tm_strv_push(&nv, &nn, desired.v[k].id);
			for (size_t k = 0; k < nkept && w == 0; k++)
				if (!has(nv, nn, kept[k]))
					w = tm_strv_push(&nv, &nn, kept[k]);
			if (w == 0)
				tm_drive_write_inventory(invfile, nv, nn);
			tm_strv_free(nv, nn);
		}
		if (r < 0)
			goto out;
	} else if (do_apply && invfile && !ctx.dry_run && !prune_on) {
		/* prune = no: everything stays tagmoor's */
	}
	if (do_health &&
	    (r = A->health(state, &res, &ctx, &desired, cfg.kubernetes.applier.wait_ms)) < 0)
		goto out;
	if (do_drift && (r = A->drift(state, &res, &ctx, &desired)) < 0)
		goto out;
out:
	tm_kube_end(state);
	fflush(stdout);
	printf("rc=%d\n", r);
	printf("applied=%u\nunchanged=%u\npruned=%u\n", res.applied, res.unchanged, res.pruned);
	tm_drive_print_list("changed", res.changed, res.nchanged);
	tm_drive_print_list("drifted", res.drifted, res.ndrifted);
	tm_drive_print_list("unhealthy", res.unhealthy, res.nunhealthy);
	tm_drive_print_list("recorded", rec.recorded, rec.nrecorded);
	if (pruned)
		tm_drive_print_list("kept", kept, nkept);
	printf("error_object=%s\n", res.error_object ? res.error_object : "");
	if (r < 0)
		printf("error=%s\n", tm_error_last());
	tm_apply_result_free(&res);
	tm_objset_free(&desired, A->free_data);
	tm_strv_free(inv, ninv);
	tm_strv_free(kept, nkept);
	tm_strv_free(rec.recorded, rec.nrecorded);
	return r < 0 ? 1 : 0;
}
