/*
 * tm-systemd-drive.c — drives the systemd applier table on a directory of
 * unit files, the way a reconcile pass will: for the integration tests in a
 * systemd-nspawn container and for bench/systemd-apply, until `tagmoor sync`
 * carries the whole pipeline.
 *
 *   tm-systemd-drive COMMAND --unit-dir DIR [--from DIR] [--inventory FILE]
 *                    [--root DIR] [--wait MS] [--dry-run] [-v]
 *   COMMAND: apply | prune | health | drift | sync (= apply, prune, health)
 *
 * --from is read recursively in sorted order (one `paths` entry); every file
 * the applier wants is parsed. --inventory holds the ids tagmoor wrote, one a
 * line; it is updated after apply/prune/sync as state.json would be, and,
 * like the pass, through the record hook before apply writes anything. The
 * result is printed as KEY=VALUE lines; exit 0 on success, 1 on failure,
 * 2 on usage errors.
 */
#define _GNU_SOURCE
#include "drive.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/apply/systemd/systemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct tm_applier *A = &tm_systemd_applier;

/* One file of a --from directory: parsed if the applier wants it. */
struct load {
	struct tm_objset *set;
	const struct tm_applier_ctx *ctx;
};

static int load_file(void *arg, const char *path, const char *relpath, const char *name)
{
	struct load *l = arg;
	int r = 0;

	if (!A->wants(relpath, name))
		return 0;
	struct tm_buf b;
	struct tm_objset one = { 0 };

	tm_buf_init(&b, TM_SYSTEMD_UNIT_MAX + 1);
	r = tm_file_read(&b, path, TM_SYSTEMD_UNIT_MAX);
	if (r == 0)
		r = A->parse(&one, l->ctx, relpath, relpath, b.ptr, b.len);
	/* a later file with the same id replaces the earlier one */
	for (size_t k = 0; r == 0 && k < one.n; k++) {
		long at = tm_objset_find(l->set, one.v[k].id);
		if (at >= 0) {
			struct tm_object tmp = l->set->v[at];
			l->set->v[at] = one.v[k];
			one.v[k] = tmp;
		} else {
			r = tm_objset_add(l->set, one.v[k].id, one.v[k].source, one.v[k].content,
					  one.v[k].len, NULL);
		}
	}
	tm_objset_free(&one, A->free_data);
	tm_buf_free(&b);
	return r;
}

static int read_tree(struct tm_objset *set, const struct tm_applier_ctx *ctx, const char *top,
		     const char *rel)
{
	struct load l = { set, ctx };

	return tm_drive_walk(top, rel, load_file, &l);
}

/* The record hook: the ids about to be written join the inventory file
 * before the first write, as the pass saves them in state.json. */
struct recorder {
	const char *file;
	char ***inv;
	size_t *ninv;
};

static int record_ids(void *arg, const char *applier, char *const *ids, size_t n)
{
	struct recorder *rc = arg;

	(void)applier;
	for (size_t i = 0; i < n; i++) {
		int have = 0;
		for (size_t k = 0; k < *rc->ninv; k++)
			have |= strcmp((*rc->inv)[k], ids[i]) == 0;
		if (!have && tm_strv_push(rc->inv, rc->ninv, ids[i]) < 0)
			return TM_ENOMEM;
	}
	return tm_drive_write_inventory(rc->file, *rc->inv, *rc->ninv);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: tm-systemd-drive apply|prune|health|drift|sync --unit-dir DIR "
		"[--from DIR] [--inventory FILE] [--root DIR] [--wait MS] [--dry-run] [-v]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd, *from = NULL, *invfile = NULL;
	struct tm_config cfg;
	struct tm_applier_ctx ctx = { 0 };
	struct tm_objset desired = { 0 };
	struct tm_apply_result res = { 0 };
	char **inv = NULL, **kept = NULL;
	size_t ninv = 0, nkept = 0;
	unsigned long long wait_ms = 30000;
	int r = 0, do_apply, do_prune, do_health, do_drift, pruned_ok = 0;
	void *state = NULL; /* the applier's pass state, as a pass holds it */

	memset(&cfg, 0, sizeof(cfg));
	tm_log_setup(TM_LOG_TEXT, TM_LOG_WARN);
	if (argc < 2)
		return usage();
	cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--dry-run") == 0)
			ctx.dry_run = 1;
		else if (strcmp(a, "-v") == 0)
			tm_log_setup(TM_LOG_TEXT, TM_LOG_DEBUG);
		else if (i + 1 >= argc)
			return usage();
		else if (strcmp(a, "--unit-dir") == 0)
			cfg.systemd.unit_dir = argv[++i];
		else if (strcmp(a, "--from") == 0)
			from = argv[++i];
		else if (strcmp(a, "--inventory") == 0)
			invfile = argv[++i];
		else if (strcmp(a, "--root") == 0)
			ctx.root = argv[++i];
		else if (strcmp(a, "--wait") == 0)
			wait_ms = strtoull(argv[++i], NULL, 10);
		else
			return usage();
	}
	do_apply = strcmp(cmd, "apply") == 0 || strcmp(cmd, "sync") == 0;
	do_prune = strcmp(cmd, "prune") == 0 || strcmp(cmd, "sync") == 0;
	do_health = strcmp(cmd, "health") == 0 || strcmp(cmd, "sync") == 0;
	do_drift = strcmp(cmd, "drift") == 0;
	if (!cfg.systemd.unit_dir || !(do_apply || do_prune || do_health || do_drift))
		return usage();
	ctx.cfg = &cfg;
	ctx.out = stdout;

	if (from && (r = read_tree(&desired, &ctx, from, "")) < 0)
		goto out;
	if (invfile && (r = tm_drive_read_inventory(&inv, &ninv, invfile)) < 0)
		goto out;
	if (A->begin && (r = A->begin(&ctx, &state)) < 0)
		goto out;
	if (do_apply) {
		/* the applier sees the inventory as it was; the hook extends a copy */
		char **rinv = NULL;
		size_t nrinv = 0;
		struct recorder rec = { invfile, &rinv, &nrinv };

		for (size_t i = 0; invfile && i < ninv; i++)
			if ((r = tm_strv_push(&rinv, &nrinv, inv[i])) < 0)
				goto out;
		if (invfile) {
			ctx.record = record_ids;
			ctx.record_arg = &rec;
		}
		r = A->apply(state, &res, &ctx, &desired, inv, ninv);
		ctx.record = NULL;
		for (size_t i = 0; i < nrinv; i++) {
			int have = 0;
			for (size_t k = 0; k < ninv; k++)
				have |= strcmp(inv[k], rinv[i]) == 0;
			if (!have && (r = tm_strv_push(&inv, &ninv, rinv[i])) < 0) {
				tm_strv_free(rinv, nrinv);
				goto out;
			}
		}
		tm_strv_free(rinv, nrinv);
		/* whatever was written is tagmoor's now, even when a later step failed */
		if (invfile && !ctx.dry_run) {
			for (size_t i = 0; i < res.nchanged; i++) {
				int have = 0;
				for (size_t k = 0; k < ninv; k++)
					have |= strcmp(inv[k], res.changed[i]) == 0;
				if (!have && tm_strv_push(&inv, &ninv, res.changed[i]) < 0)
					goto out;
			}
			if (r == 0)
				for (size_t i = 0; i < desired.n; i++) {
					int have = 0;
					for (size_t k = 0; k < ninv; k++)
						have |= strcmp(inv[k], desired.v[i].id) == 0;
					if (!have && tm_strv_push(&inv, &ninv, desired.v[i].id) < 0)
						goto out;
				}
			if (tm_drive_write_inventory(invfile, inv, ninv) < 0)
				goto out;
		}
		if (r < 0)
			goto out;
	}
	if (do_prune) {
		r = A->prune(state, &res, &ctx, &desired, inv, ninv, &kept, &nkept);
		pruned_ok = 1;
		if (invfile && !ctx.dry_run) {
			char **nv = NULL;
			size_t nn = 0;
			for (size_t k = 0; k < ninv; k++) {
				int keep = tm_objset_find(&desired, inv[k]) >= 0;
				for (size_t j = 0; j < nkept; j++)
					keep |= strcmp(kept[j], inv[k]) == 0;
				if (keep && tm_strv_push(&nv, &nn, inv[k]) < 0)
					goto out;
			}
			tm_drive_write_inventory(invfile, nv, nn);
			tm_strv_free(nv, nn);
		}
		if (r < 0)
			goto out;
	}
	if (do_health && (r = A->health(state, &res, &ctx, &desired, wait_ms)) < 0)
		goto out;
	if (do_drift && (r = A->drift(state, &res, &ctx, &desired)) < 0)
		goto out;
out:
	if (A->end)
		A->end(state);
	fflush(stdout);
	printf("rc=%d\n", r);
	printf("applied=%u unchanged=%u pruned=%u\n", res.applied, res.unchanged, res.pruned);
	tm_drive_print_list("changed", res.changed, res.nchanged);
	tm_drive_print_list("drifted", res.drifted, res.ndrifted);
	tm_drive_print_list("unhealthy", res.unhealthy, res.nunhealthy);
	if (pruned_ok)
		tm_drive_print_list("kept", kept, nkept);
	printf("error_object=%s\n", res.error_object ? res.error_object : "");
	if (r < 0)
		printf("error=%s\n", tm_error_last());
	tm_apply_result_free(&res);
	tm_objset_free(&desired, A->free_data);
	tm_strv_free(inv, ninv);
	tm_strv_free(kept, nkept);
	return r < 0 ? 1 : 0;
}
