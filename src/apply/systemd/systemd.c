/*
 * systemd.c — the systemd applier (applier.h): unit files and drop-ins.
 *
 * Where it sits in the pipeline: plan hands every repository file under the
 * [systemd] paths to wants()/parse(), which turn it into one object with the
 * id "web.service" or "web.service.d/10-env.conf". apply() writes what
 * differs into unit_dir atomically (refusing, before writing anything, to
 * overwrite a file tagmoor did not write), then does one daemon-reload,
 * enables and starts units with an [Install] section and restarts changed
 * units that were running. health() watches `systemctl show` until the
 * started services are active; prune() stops, disables and deletes what left
 * the repository; drift() puts back unit files edited by hand.
 *
 * Power cuts: before its first write apply() hands the ids it is about to
 * write to the pass (ctx->record), which makes them tagmoor's in state.json
 * first; apply, prune and drift begin by removing the temp files a killed
 * write left in unit_dir and its NAME.d/ directories (tm_file_clean_temps),
 * which only reads the directories when there are none.
 *
 * The parts: units.c (names, ids, parse), systemctl.c (running systemctl
 * and journalctl), textdiff.c (the diff of `tagmoor diff`), health.c (the
 * health check) and this file (apply, prune, drift, the table); what they
 * share is in systemd_internal.h.
 *
 * systemctl is always run by fork/exec with a fixed argv and environment,
 * never through a shell, with a timeout and a bounded capture of its output
 * for error messages. Start and restart are queued (--no-block) so that a
 * slow or hanging unit is judged by health() within [systemd] wait rather than
 * blocking the pass; health() waits for the queued jobs to finish.
 *
 * With --root (ctx->root) the target is an offline image: files are written,
 * `systemctl --root=DIR enable|disable` sets the symlinks, nothing is started,
 * reloaded or health-checked.
 */
#define _GNU_SOURCE
#include "tagmoor/apply/systemd/systemd.h"
#include "systemd_internal.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"
#include "tagmoor/apply/systemd/space.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum file_state {
	F_SAME = 0,
	F_NEW,
	F_DIFF,
	F_FOREIGN
};

static const char *unit_dir_of(const struct tm_applier_ctx *ctx)
{
	if (ctx->cfg && ctx->cfg->systemd.unit_dir && *ctx->cfg->systemd.unit_dir)
		return ctx->cfg->systemd.unit_dir;
	return "/etc/systemd/system";
}

static int path_of(char *out, size_t outlen, const struct tm_applier_ctx *ctx, const char *id)
{
	int n = snprintf(out, outlen, "%s/%s", unit_dir_of(ctx), id);
	if (n < 0 || (size_t)n >= outlen)
		return tm_error_set(TM_EAPPLY, "%.128s/%.128s: path too long", unit_dir_of(ctx),
				    id);
	return 0;
}

int sd_in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static FILE *diff_out(const struct tm_applier_ctx *ctx)
{
	return ctx->out ? (FILE *)ctx->out : stdout;
}

/* Compares an object with its file: F_SAME, F_NEW or F_DIFF; *live receives
 * the file's content when it exists and is readable (for diffs). */
static int compare(const struct tm_applier_ctx *ctx, const struct tm_object *o, struct tm_buf *live,
		   int *exists)
{
	char path[PATH_MAX_TM];
	struct stat st;
	int r;

	if ((r = path_of(path, sizeof(path), ctx, o->id)) < 0)
		return r;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			*exists = 0;
			return F_NEW;
		}
		return tm_error_set(TM_EAPPLY, "%s: %s", path, strerror(errno));
	}
	*exists = 1;
	if (!S_ISREG(st.st_mode))
		return F_DIFF; /* a symlink (a mask, say) or something else: not our content */
	r = tm_file_read(live, path, TM_SYSTEMD_UNIT_MAX);
	if (r == TM_ELIMIT)
		return F_DIFF;
	if (r < 0)
		return tm_error_wrap(TM_EAPPLY, "systemd");
	return live->len == o->len && memcmp(live->ptr, o->content, o->len) == 0 ? F_SAME : F_DIFF;
}

static int write_object(const struct tm_applier_ctx *ctx, const struct tm_object *o)
{
	char path[PATH_MAX_TM];
	int r;

	if ((r = path_of(path, sizeof(path), ctx, o->id)) < 0)
		return r;
	if (strchr(o->id, '/')) {
		char dir[PATH_MAX_TM];
		memcpy(dir, path, sizeof(dir));
		*strrchr(dir, '/') = '\0';
		if ((r = tm_file_mkdirs(dir, 0755)) < 0)
			return tm_error_wrap(TM_EAPPLY, "systemd");
	} else if ((r = tm_file_mkdirs(unit_dir_of(ctx), 0755)) < 0) {
		return tm_error_wrap(TM_EAPPLY, "systemd");
	}
	TM_FAULT("systemd.before-unit-write");
	if ((r = tm_file_write_atomic(path, o->content, o->len, 0644)) < 0)
		return tm_error_wrap(TM_EAPPLY, "systemd");
	tm_log_info("systemd: wrote %s", path);
	return 0;
}

/* The file names below prefix ("" for unit_dir itself, "web.service.d/" for
 * a drop-in directory) of the ids in desired and inventory: whose old-style
 * temp files ("NAME.tmp.XXXXXX") are known to be ours. */
static int names_below(char ***v, size_t *n, const char *prefix, const struct tm_objset *desired,
		       char *const *inventory, size_t ninventory)
{
	size_t pl = strlen(prefix), total = (desired ? desired->n : 0) + ninventory;
	int r;

	for (size_t i = 0; i < total; i++) {
		const char *id = i < ninventory ? inventory[i] : desired->v[i - ninventory].id;
		if (strncmp(id, prefix, pl) != 0 || strchr(id + pl, '/') ||
		    sd_in_list(*v, *n, id + pl) || tm_systemd_id_kind(id, NULL) == TM_SYSTEMD_NONE)
			continue;
		if ((r = tm_strv_push(v, n, id + pl)) < 0)
			return r;
	}
	return 0;
}

static int clean_one(const char *dir, const char *prefix, const struct tm_objset *desired,
		     char *const *inventory, size_t ninventory)
{
	char **names = NULL;
	size_t nnames = 0;
	int r;

	if ((r = names_below(&names, &nnames, prefix, desired, inventory, ninventory)) == 0)
		r = tm_file_clean_temps_named(dir, names, nnames);
	tm_strv_free(names, nnames);
	if (r > 0)
		tm_log_info("systemd: removed %d leftover temporary file(s) in %s", r, dir);
	return r;
}

/*
 * Removes what a kill in the middle of tm_file_write_atomic left in unit_dir
 * and its NAME.d/ drop-in directories (NAME a valid unit name; a symlink is
 * never followed): temp files, and the old-style temp files of ids in
 * desired or inventory. Only reads unless there is something to remove. A
 * failure is logged, never fatal: a leftover is harmless to systemd.
 */
static void clean_temps(const struct tm_applier_ctx *ctx, const struct tm_objset *desired,
			char *const *inventory, size_t ninventory)
{
	const char *ud = unit_dir_of(ctx);
	DIR *d;
	struct dirent *e;

	if (ctx->dry_run)
		return;
	if (clean_one(ud, "", desired, inventory, ninventory) < 0)
		tm_log_warn("systemd: %s", tm_error_last());
	if (!(d = opendir(ud)))
		return; /* missing: nothing was ever written; else already reported */
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		char unit[TM_SYSTEMD_NAME_MAX + 1], dir[PATH_MAX_TM],
			prefix[TM_SYSTEMD_NAME_MAX + 4];
		struct stat st;

		if (l < 3 || l - 2 > TM_SYSTEMD_NAME_MAX || strcmp(e->d_name + l - 2, ".d") != 0)
			continue;
		memcpy(unit, e->d_name, l - 2);
		unit[l - 2] = '\0';
		if (!tm_systemd_unit_name_valid(unit) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (path_of(dir, sizeof(dir), ctx, e->d_name) < 0)
			continue;
		snprintf(prefix, sizeof(prefix), "%s/", e->d_name);
		if (clean_one(dir, prefix, desired, inventory, ninventory) < 0)
			tm_log_warn("systemd: %s", tm_error_last());
	}
	closedir(d);
}

/* Hands the ids about to be written or adopted (identical files) that are
 * not in the inventory yet to the pass (ctx->record) before the first write:
 * a kill after a write then never leaves a unit file tagmoor wrote or
 * adopted but does not own (which the next revision would refuse as foreign
 * for good). */
static int record_new(const struct tm_applier_ctx *ctx, const struct tm_objset *desired,
		      const int *state, char *const *inventory, size_t ninventory)
{
	char **ids = NULL;
	size_t nids = 0;
	int r = 0;

	if (!ctx->record || ctx->dry_run)
		return 0;
	for (size_t i = 0; i < desired->n && r == 0; i++)
		if (!sd_in_list(inventory, ninventory, desired->v[i].id)) /* to write, or adopted */
			r = tm_strv_push(&ids, &nids, desired->v[i].id);
	if (r == 0 && nids && (r = ctx->record(ctx->record_arg, "systemd", ids, nids)) < 0 &&
	    r != TM_ENOMEM)
		r = tm_error_wrap(TM_EAPPLY, "systemd: nothing written");
	tm_strv_free(ids, nids);
	return r < 0 ? r : 0;
}

/* Unit files among desired that are enabled and started: [Install] and not a
 * bare template. */
static int collect_install_units(char ***v, size_t *n, const struct tm_objset *desired)
{
	int r;

	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		if (tm_systemd_id_kind(o->id, NULL) != TM_SYSTEMD_UNIT || sd_is_template(o->id) ||
		    !tm_systemd_has_install(o->content, o->len))
			continue;
		if ((r = tm_strv_push(v, n, o->id)) < 0)
			return r;
	}
	return 0;
}

/* The units to restart for changed ids: the unit itself or a drop-in's parent. */
int sd_collect_changed_units(char ***v, size_t *n, char *const *changed, size_t nchanged)
{
	char unit[TM_SYSTEMD_NAME_MAX + 1];
	int r;

	for (size_t i = 0; i < nchanged; i++) {
		if (tm_systemd_id_kind(changed[i], unit) == TM_SYSTEMD_NONE ||
		    sd_is_template(unit) || sd_in_list(*v, *n, unit))
			continue;
		if ((r = tm_strv_push(v, n, unit)) < 0)
			return r;
	}
	return 0;
}

/*
 * After files were written (changed ids in changed[]): enable units with
 * [Install]; then, on a live system, one daemon-reload when anything changed,
 * restart changed units that are running, start enabled ones that are not.
 */
static int converge(struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		    const struct tm_objset *desired, char *const *changed, size_t nchanged)
{
	char **inst = NULL, **chg = NULL, **restart = NULL, **start = NULL, **all = NULL;
	size_t ninst = 0, nchg = 0, nrestart = 0, nstart = 0, nall = 0;
	active_state *st = NULL;
	int r, enabled_something = 0;

	if ((r = collect_install_units(&inst, &ninst, desired)) < 0 ||
	    (r = sd_collect_changed_units(&chg, &nchg, changed, nchanged)) < 0)
		goto out;
	if (ninst) {
		r = sd_systemctl(ctx, QUICK_TIMEOUT_MS, "enable", ctx->root ? NULL : "--no-reload",
				 inst, ninst, -1, &enabled_something);
		if (r < 0) {
			if (nchanged)
				sd_reload_best_effort(ctx);
			goto out;
		}
	}
	TM_FAULT("systemd.enabled");
	if (ctx->root) {
		r = 0;
		goto out;
	}
	if ((nchanged || enabled_something) && (r = sd_daemon_reload(ctx)) < 0)
		goto out;
	for (size_t i = 0; i < nchg; i++)
		if ((r = tm_strv_push(&all, &nall, chg[i])) < 0)
			goto out;
	for (size_t i = 0; i < ninst; i++)
		if (!sd_in_list(all, nall, inst[i]) && (r = tm_strv_push(&all, &nall, inst[i])) < 0)
			goto out;
	if (!nall) {
		r = 0;
		goto out;
	}
	if (!(st = calloc(nall, sizeof(*st)))) {
		r = tm_error_nomem();
		goto out;
	}
	if ((r = sd_is_active(ctx, st, all, nall)) < 0)
		goto out;
	for (size_t i = 0; i < nall; i++) {
		int running = sd_is_running(st[i]);
		if (i < nchg && running)
			r = tm_strv_push(&restart, &nrestart, all[i]);
		else if (sd_in_list(inst, ninst, all[i]) && !running)
			r = tm_strv_push(&start, &nstart, all[i]);
		if (r < 0)
			goto out;
	}
	TM_FAULT("systemd.before-restart");
	if (nrestart) {
		for (size_t i = 0; i < nrestart; i++)
			tm_log_info("systemd: restarting %s", restart[i]);
		if ((r = sd_systemctl(ctx, QUICK_TIMEOUT_MS, "restart", "--no-block", restart,
				      nrestart, -1, NULL)) < 0)
			goto out;
	}
	TM_FAULT("systemd.before-start");
	if (nstart) {
		for (size_t i = 0; i < nstart; i++)
			tm_log_info("systemd: starting %s", start[i]);
		if ((r = sd_systemctl(ctx, QUICK_TIMEOUT_MS, "start", "--no-block", start, nstart,
				      -1, NULL)) < 0)
			goto out;
	}
	r = 0;
out:
	if (r < 0 && !res->error_object && (nstart || nrestart))
		tm_apply_result_set_object(res, nstart ? start[0] : restart[0]);
	free(st);
	tm_strv_free(inst, ninst);
	tm_strv_free(chg, nchg);
	tm_strv_free(restart, nrestart);
	tm_strv_free(start, nstart);
	tm_strv_free(all, nall);
	return r;
}

/* Step 1 of apply: looks at every desired file before anything is written
 * (state[i]: F_SAME, F_NEW, F_DIFF), prints the diff in dry_run, and
 * refuses when a file that is there differs and was not written by tagmoor. */
static int look_before_writing(struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
			       const struct tm_objset *desired, char *const *inventory,
			       size_t ninventory, int *state)
{
	int r = 0, nforeign = 0;
	size_t first_foreign = 0;
	struct tm_buf live;

	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		int exists = 0, s;

		if (tm_systemd_id_kind(o->id, NULL) == TM_SYSTEMD_NONE) {
			tm_apply_result_set_object(res, o->id);
			return tm_error_set(TM_EAPPLY,
					    "%.256s: invalid systemd object id \"%.256s\"",
					    o->source, o->id);
		}
		tm_buf_init(&live, TM_SYSTEMD_UNIT_MAX + 1);
		s = compare(ctx, o, &live, &exists);
		if (s < 0) {
			tm_buf_free(&live);
			tm_apply_result_set_object(res, o->id);
			return s;
		}
		/* A file that is there, was not written by tagmoor and differs is
		 * someone else's: never overwrite it. An identical one is adopted
		 * (nothing is written; this is how a lost state directory heals). */
		if (exists && s != F_SAME && !sd_in_list(inventory, ninventory, o->id)) {
			s = F_FOREIGN;
			if (!nforeign++)
				first_foreign = i;
		}
		state[i] = s;
		if (ctx->dry_run && (s == F_NEW || s == F_DIFF)) {
			char path[PATH_MAX_TM];
			if ((r = path_of(path, sizeof(path), ctx, o->id)) == 0)
				r = tm_systemd_diff(diff_out(ctx), path, exists ? live.ptr : NULL,
						    live.len, o->content, o->len);
			if (r < 0) {
				tm_buf_free(&live);
				return r;
			}
		}
		tm_buf_free(&live);
	}
	if (nforeign) {
		char path[PATH_MAX_TM];
		const struct tm_object *o = &desired->v[first_foreign];
		tm_apply_result_set_object(res, o->id);
		if ((r = path_of(path, sizeof(path), ctx, o->id)) == 0)
			r = tm_error_set(
				TM_EAPPLY,
				"%s exists and was not written by tagmoor; refusing to overwrite%s",
				path, nforeign > 1 ? " (and others)" : "");
		return r;
	}
	return 0;
}

static int apply(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired, char *const *inventory, size_t ninventory)
{
	int *state = NULL, r = 0, converged = 0;
	char **changed = NULL;
	size_t nchanged = 0;

	clean_temps(ctx, desired, inventory, ninventory);
	if (!desired->n) {
		if (ctx->dry_run)
			return 0;
		return converge(res, ctx, desired, NULL, 0);
	}
	if (!(state = calloc(desired->n, sizeof(*state))))
		return tm_error_nomem();
	/* 1. Look at everything before writing anything. */
	if ((r = look_before_writing(res, ctx, desired, inventory, ninventory, state)) < 0)
		goto out;
	if (!ctx->dry_run && (r = tm_systemd_check_space(res, unit_dir_of(ctx), desired)) < 0)
		goto out;
	TM_FAULT("systemd.checked");
	/* 2. What is about to be written becomes tagmoor's first, then write. */
	if ((r = record_new(ctx, desired, state, inventory, ninventory)) < 0)
		goto out;
	TM_FAULT("systemd.recorded");
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		if (state[i] == F_SAME) {
			res->unchanged++;
			continue;
		}
		if (!ctx->dry_run && (r = write_object(ctx, o)) < 0) {
			tm_apply_result_set_object(res, o->id);
			goto out;
		}
		TM_FAULT("systemd.unit-written");
		res->applied++;
		if ((r = tm_strv_push(&changed, &nchanged, o->id)) < 0 ||
		    (r = tm_strv_push(&res->changed, &res->nchanged, o->id)) < 0)
			goto out;
	}
	if (ctx->dry_run) {
		r = 0;
		goto out;
	}
	TM_FAULT("systemd.units-written");
	/* 3. Reload, enable, start, restart. */
	converged = 1;
	r = converge(res, ctx, desired, changed, nchanged);
out:
	if (r < 0 && nchanged && !ctx->dry_run && !converged) {
		tm_log_warn("systemd: apply failed after writing %zu unit file(s)", nchanged);
		sd_reload_best_effort(ctx);
	}
	tm_strv_free(changed, nchanged);
	free(state);
	return r;
}

/* The inventory ids that left the repository (each once); entries that are
 * not ids are skipped with a warning. */
static int gone_ids(char ***gone, size_t *ngone, const struct tm_objset *desired,
		    char *const *inventory, size_t ninventory)
{
	char unit[TM_SYSTEMD_NAME_MAX + 1];
	int r;

	for (size_t i = 0; i < ninventory; i++) {
		if (tm_objset_find(desired, inventory[i]) >= 0 ||
		    sd_in_list(*gone, *ngone, inventory[i]))
			continue;
		if (tm_systemd_id_kind(inventory[i], unit) == TM_SYSTEMD_NONE) {
			/* Never build a path from something that is not an id. */
			tm_log_warn("systemd: ignoring invalid inventory entry \"%.*s\"",
				    TM_LOG_CAP, inventory[i]);
			continue;
		}
		if ((r = tm_strv_push(gone, ngone, inventory[i])) < 0)
			return r;
	}
	return 0;
}

/* diff: what prune would delete, printed as removals; nothing changes. */
static int prune_dry_run(const struct tm_applier_ctx *ctx, struct tm_apply_result *res,
			 char *const *gone, size_t ngone)
{
	for (size_t i = 0; i < ngone; i++) {
		char path[PATH_MAX_TM];
		struct tm_buf live;
		int exists = 0, r;
		struct tm_object tmp = { .id = gone[i], .content = "", .len = 0 };

		tm_buf_init(&live, TM_SYSTEMD_UNIT_MAX + 1);
		r = compare(ctx, &tmp, &live, &exists);
		if (r >= 0 && exists && (r = path_of(path, sizeof(path), ctx, gone[i])) == 0)
			r = tm_systemd_diff(diff_out(ctx), path, live.ptr ? live.ptr : "", live.len,
					    NULL, 0);
		tm_buf_free(&live);
		if (r < 0)
			return r;
		res->pruned++;
	}
	return 0;
}

/* Stops the units among gone (one transaction); a unit that is not loaded
 * is fine, and a failure is only logged. */
static int stop_gone(const struct tm_applier_ctx *ctx, char *const *gone, size_t ngone)
{
	char **stop = NULL, unit[TM_SYSTEMD_NAME_MAX + 1];
	size_t nstop = 0;
	int r = 0;

	for (size_t i = 0; i < ngone; i++)
		if (tm_systemd_id_kind(gone[i], unit) == TM_SYSTEMD_UNIT && !sd_is_template(unit) &&
		    (r = tm_strv_push(&stop, &nstop, unit)) < 0)
			goto out;
	if (nstop && sd_systemctl(ctx, STOP_TIMEOUT_MS, "stop", NULL, stop, nstop, 5, NULL) < 0)
		tm_log_warn("systemd: prune: %s", tm_error_last());
out:
	tm_strv_free(stop, nstop);
	return r;
}

/* Disables (a unit) and deletes one file that left the repository; an
 * empty drop-in directory goes too. *removed: a file was deleted. */
static int remove_one(const struct tm_applier_ctx *ctx, const char *id, int *removed)
{
	char path[PATH_MAX_TM], unit[TM_SYSTEMD_NAME_MAX + 1];
	struct stat st;
	int kind = tm_systemd_id_kind(id, unit), exists, r;

	if ((r = path_of(path, sizeof(path), ctx, id)) < 0)
		return r;
	exists = lstat(path, &st) == 0;
	if (kind == TM_SYSTEMD_UNIT && exists && S_ISREG(st.st_mode)) {
		char *one[1] = { unit };
		if ((r = sd_systemctl(ctx, QUICK_TIMEOUT_MS, "disable",
				      ctx->root ? NULL : "--no-reload", one, 1, -1, NULL)) < 0)
			return r;
	}
	TM_FAULT("systemd.prune-disabled");
	if (exists && unlink(path) < 0)
		return tm_error_set(TM_EAPPLY, "systemd: cannot remove %s: %s", path,
				    strerror(errno));
	if (exists) {
		*removed = 1;
		tm_log_info("systemd: removed %s", path);
		TM_FAULT("systemd.prune-removed");
	}
	if (kind == TM_SYSTEMD_DROPIN) {
		char *slash = strrchr(path, '/');
		*slash = '\0';
		if (rmdir(path) < 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
			tm_log_warn("systemd: cannot remove %s: %s", path, strerror(errno));
	}
	return 0;
}

static int prune(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired, char *const *inventory, size_t ninventory,
		 char ***kept, size_t *nkept)
{
	char **gone = NULL, **parents = NULL;
	size_t ngone = 0, nparents = 0;
	int r = 0, first_err = 0, removed_any = 0;
	char unit[TM_SYSTEMD_NAME_MAX + 1], first_msg[700] = "";

	*kept = NULL;
	*nkept = 0;
	clean_temps(ctx, desired, inventory, ninventory);
	if ((r = gone_ids(&gone, &ngone, desired, inventory, ninventory)) < 0 || !ngone)
		goto out;
	if (ctx->dry_run) {
		r = prune_dry_run(ctx, res, gone, ngone);
		goto out;
	}
	/* 1. Stop the units (one transaction). */
	if (!ctx->root && (r = stop_gone(ctx, gone, ngone)) < 0)
		goto out;
	TM_FAULT("systemd.prune-stopped");
	/* 2. Disable and delete, one by one, so a failure keeps only that one. */
	for (size_t i = 0; i < ngone; i++) {
		if ((r = remove_one(ctx, gone[i], &removed_any)) == 0) {
			/* running parents of removed drop-ins pick the change up (3.) */
			if (tm_systemd_id_kind(gone[i], unit) == TM_SYSTEMD_DROPIN &&
			    !sd_in_list(parents, nparents, unit) &&
			    tm_objset_find(desired, unit) >= 0 && !sd_is_template(unit) &&
			    (r = tm_strv_push(&parents, &nparents, unit)) < 0)
				goto out;
			res->pruned++;
			continue;
		}
		if (!first_err) {
			first_err = r;
			snprintf(first_msg, sizeof(first_msg), "%s", tm_error_last());
		}
		tm_apply_result_set_object(res, gone[i]);
		tm_log_warn("systemd: prune: %s", tm_error_last());
		if ((r = tm_strv_push(kept, nkept, gone[i])) < 0)
			goto out;
	}
	TM_FAULT("systemd.pruned");
	/* 3. One reload; running parents of removed drop-ins pick the change up. */
	if (removed_any && !ctx->root) {
		if ((r = sd_daemon_reload(ctx)) < 0)
			goto out;
		if (nparents && (r = sd_systemctl(ctx, QUICK_TIMEOUT_MS, "try-restart",
						  "--no-block", parents, nparents, -1, NULL)) < 0)
			goto out;
	}
	r = first_err;
	if (r < 0)
		tm_error_set(r, "systemd: %s could not be removed%s: %s", (*kept)[0],
			     *nkept > 1 ? " (and others)" : "", first_msg);
out:
	tm_strv_free(gone, ngone);
	tm_strv_free(parents, nparents);
	return r;
}

static int drift(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired)
{
	char **drifted = NULL;
	size_t ndrifted = 0;
	int r = 0;

	clean_temps(ctx, desired, NULL, 0);
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		struct tm_buf live;
		int exists = 0, s;

		if (tm_systemd_id_kind(o->id, NULL) == TM_SYSTEMD_NONE)
			continue;
		tm_buf_init(&live, TM_SYSTEMD_UNIT_MAX + 1);
		s = compare(ctx, o, &live, &exists);
		if (s == F_NEW || s == F_DIFF) {
			tm_log_warn("systemd: %s/%s was %s by hand", unit_dir_of(ctx), o->id,
				    exists ? "changed" : "deleted");
			if (ctx->dry_run) {
				char path[PATH_MAX_TM];
				if ((r = path_of(path, sizeof(path), ctx, o->id)) == 0)
					r = tm_systemd_diff(diff_out(ctx), path,
							    exists ? live.ptr : NULL, live.len,
							    o->content, o->len);
			} else {
				r = write_object(ctx, o);
			}
			if (r == 0 && (r = tm_strv_push(&drifted, &ndrifted, o->id)) == 0)
				r = tm_strv_push(&res->drifted, &res->ndrifted, o->id);
		} else if (s < 0) {
			r = s;
		}
		tm_buf_free(&live);
		if (r < 0) {
			tm_apply_result_set_object(res, o->id);
			goto out;
		}
	}
	if (ndrifted && !ctx->dry_run)
		r = converge(res, ctx, desired, drifted, ndrifted);
out:
	tm_strv_free(drifted, ndrifted);
	return r;
}

const struct tm_applier tm_systemd_applier = {
	.name = "systemd",
	.wants = sd_wants,
	.parse = sd_parse,
	.free_data = sd_free_data,
	.apply = apply,
	.prune = prune,
	.health = sd_health,
	.drift = drift,
};
