/*
 * plan.c — repository tree → desired objects for one applier.
 *
 * Runs only after verify accepted the revision. Each `paths` entry is walked
 * in git's sorted order; a missing directory is allowed (a per-device
 * directory may not exist for most devices), but a paths entry that exists as
 * something else (a symlink, a regular file, a submodule) refuses the
 * revision: read as "absent" it would prune everything applied from it. Objects of one entry are
 * collected first, then overlaid onto the result: the same id from a later
 * entry replaces the earlier object, two files with the same id inside one
 * entry are an error.
 *
 * Size caps (plan.h): the Kubernetes applier's come from [kubernetes]
 * max_file and max_total (upstream install files and CRDs are megabytes),
 * every other applier keeps the fixed TM_PLAN_MAX_FILE per file. A file is
 * held once as read and, only when it contains "${", once more expanded;
 * the applier's parse() then keeps what it needs of each object.
 */
#define _GNU_SOURCE /* memmem */
#include "tagmoor/pipeline/plan.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/source/git.h"
#include "tagmoor/core/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct walk {
	struct tm_git *git;
	const struct tm_applier *ap;
	const struct tm_applier_ctx *ctx;
	const char *dir;
	struct tm_objset *layer;
	size_t *nfiles;
	uint64_t *total; /* bytes of the files read so far, all paths */
	const struct tm_plan_limits *lim;
};

void tm_plan_limits_of(struct tm_plan_limits *out, const struct tm_applier *ap,
		       const struct tm_config *cfg)
{
	out->max_file = TM_PLAN_MAX_FILE;
	out->max_total = 0;
	out->file_key = NULL;
	out->total_key = NULL;
	if (cfg && ap && strcmp(ap->name, "kubernetes") == 0) {
		/* 0: a configuration not made by the loader (test drivers): the defaults */
		out->max_file = cfg->kubernetes.max_file ? cfg->kubernetes.max_file : 16u << 20;
		out->max_total = cfg->kubernetes.max_total ? cfg->kubernetes.max_total : 64u << 20;
		out->file_key = "[kubernetes] max_file";
		out->total_key = "[kubernetes] max_total";
	}
}

static int bad_name(const char *path)
{
	const char *p = path;

	if (path[0] == '/' || path[0] == '\0')
		return 1;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 1;
		p += n;
		if (*p == '/')
			p++;
	}
	for (p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
			return 1;
	return 0;
}

static int on_entry(void *arg, const char *path, int mode, const char *blob, size_t size)
{
	struct walk *w = arg;
	struct tm_buf content;
	const char *base = strrchr(path, '/'), *rel;
	char *expanded = NULL;
	size_t elen, dl = strlen(w->dir);
	int r;

	base = base ? base + 1 : path;
	rel = dl ? path + dl + 1 : path;
	if (bad_name(path))
		return tm_error_set(TM_EPARSE, "%.256s: invalid path name (refused)", path);
	if (mode == 0120000)
		return tm_error_set(TM_EPARSE, "%.256s: is a symbolic link (refused)", path);
	if (mode == 0160000)
		return tm_error_set(TM_EPARSE, "%.256s: is a submodule (refused)", path);
	if (mode != 0100644 && mode != 0100755)
		return tm_error_set(TM_EPARSE, "%.256s: unsupported file mode %o (refused)", path,
				    mode);
	if (!w->ap->wants(path, base)) {
		tm_log_debug("%s: ignored by the %s applier", path, w->ap->name);
		return 0;
	}
	if (++*w->nfiles > TM_PLAN_MAX_FILES)
		return tm_error_set(TM_ELIMIT, "more than %d files under the %s paths",
				    TM_PLAN_MAX_FILES, w->ap->name);
	if (size > w->lim->max_file) {
		if (w->lim->file_key)
			return tm_error_set(TM_ELIMIT,
					    "%.256s: %zu bytes is over the limit of %llu bytes per "
					    "file (refused; %s)",
					    path, size, (unsigned long long)w->lim->max_file,
					    w->lim->file_key);
		return tm_error_set(TM_ELIMIT,
				    "%.256s: %zu bytes is over the limit of %llu bytes (refused)",
				    path, size, (unsigned long long)w->lim->max_file);
	}
	*w->total += size;
	if (w->lim->max_total && *w->total > w->lim->max_total)
		return tm_error_set(TM_ELIMIT,
				    "%.256s: the files under the %s paths add up to more than "
				    "the limit of %llu bytes (refused; %s)",
				    path, w->ap->name, (unsigned long long)w->lim->max_total,
				    w->lim->total_key ? w->lim->total_key : "");
	tm_buf_init(&content, (size_t)w->lim->max_file + 1);
	if ((r = tm_git_read_blob(&content, w->git, blob, (size_t)w->lim->max_file)) < 0) {
		tm_buf_free(&content);
		/* never TM_ENOTFOUND: that code means "directory absent" to the walker's caller */
		return tm_error_wrap(r == TM_ENOTFOUND ? TM_EIO : r, "%.256s", path);
	}
	if (content.len >= 2 && memmem(content.ptr, content.len, "${", 2)) {
		r = tm_config_expand_content(&expanded, &elen, w->ctx->cfg, content.ptr,
					     content.len, (size_t)w->lim->max_file);
		tm_buf_free(&content);
		if (r < 0)
			return tm_error_wrap(r, "%.256s: after ${} expansion", path);
	} else {
		/* nothing to expand: the blob as read is the content (no second copy) */
		elen = content.len;
		expanded = tm_buf_detach(&content);
		if (!expanded)
			return tm_error_set(TM_ENOMEM, "out of memory");
	}
	size_t before = w->layer->n;
	r = w->ap->parse(w->layer, w->ctx, path, rel, expanded, elen);
	free(expanded);
	if (r < 0)
		return r;
	/* Two files of one paths entry may not define the same object. */
	for (size_t i = before; i < w->layer->n; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(w->layer->v[i].id, w->layer->v[j].id) == 0)
				return tm_error_set(TM_EPARSE,
						    "%.256s: %s is also defined in %.256s",
						    w->layer->v[i].source, w->layer->v[i].id,
						    w->layer->v[j].source);
		}
	}
	return 0;
}

/* Moves the objects of layer into out; same id replaces (overlay). */
static int overlay(struct tm_objset *out, struct tm_objset *layer, void (*free_data)(void *))
{
	for (size_t i = 0; i < layer->n; i++) {
		struct tm_object *o = &layer->v[i];
		long at = tm_objset_find(out, o->id);
		if (at >= 0) {
			struct tm_object *old = &out->v[at];
			tm_log_debug("%s from %s overrides %s", o->id, o->source, old->source);
			free(old->id);
			free(old->source);
			free(old->content);
			if (free_data && old->data)
				free_data(old->data);
			*old = *o;
		} else {
			if (out->n == out->cap) {
				size_t ncap = out->cap ? out->cap * 2 : 16;
				struct tm_object *nv = realloc(out->v, ncap * sizeof(*nv));
				if (!nv)
					return tm_error_set(TM_ENOMEM, "out of memory");
				out->v = nv;
				out->cap = ncap;
			}
			out->v[out->n++] = *o;
		}
		memset(o, 0, sizeof(*o));
	}
	layer->n = 0;
	return 0;
}

int tm_plan_build(struct tm_objset *out, struct tm_git *git, const char *commit,
		  const struct tm_applier *ap, const struct tm_applier_ctx *ctx,
		  const struct tm_strlist *paths)
{
	struct tm_objset layer = { 0 };
	struct tm_plan_limits lim;
	size_t nfiles = 0;
	uint64_t total = 0;
	int r = 0;

	memset(out, 0, sizeof(*out));
	tm_plan_limits_of(&lim, ap, ctx ? ctx->cfg : NULL);
	for (size_t i = 0; i < paths->n; i++) {
		struct walk w = { git, ap, ctx, paths->v[i], &layer, &nfiles, &total, &lim };
		/* TM_ENOTFOUND only when truly absent; TM_EPARSE ("units/common is
		 * a symlink, not a directory") fails the plan like any hostile entry */
		r = tm_git_tree_walk(git, commit, paths->v[i], on_entry, &w);
		if (r == TM_ENOTFOUND) {
			tm_log_debug("%s: not in the repository; skipped",
				     paths->v[i][0] ? paths->v[i] : ".");
			tm_error_clear();
			r = 0;
			tm_objset_free(&layer, ap->free_data);
			continue;
		}
		if (r > 0)
			r = TM_ERROR;
		if (r < 0 || (r = overlay(out, &layer, ap->free_data)) < 0)
			break;
	}
	tm_objset_free(&layer, ap->free_data);
	if (r < 0)
		tm_objset_free(out, ap->free_data);
	return r;
}
