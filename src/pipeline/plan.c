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
#include "tagmoor/privsep/message.h"
#include "tagmoor/verify/rawobj.h"

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
	const char *data; /* the file's body (the plan inputs), NULL: not read */
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
	(void)blob;
	/* the body was read by the capture (tm_plan_capture), with the same checks */
	if (!w->data)
		return tm_error_set(TM_EPARSE, "%.256s: the plan inputs hold no content for it",
				    path);
	if (size >= 2 && memmem(w->data, size, "${", 2)) {
		r = tm_config_expand_content(&expanded, &elen, w->ctx->cfg, w->data, size,
					     (size_t)w->lim->max_file);
		if (r < 0)
			return tm_error_wrap(r, "%.256s: after ${} expansion", path);
	}
	size_t before = w->layer->n;
	/* nothing to expand: the body as captured is the content (no second copy) */
	r = w->ap->parse(w->layer, w->ctx, path, rel, expanded ? expanded : w->data,
			 expanded ? elen : size);
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
					return tm_error_nomem();
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

/* --- capture (the fetcher child): the tree of a verified commit → inputs ---- */

struct capture {
	struct tm_git *git;
	const struct tm_applier *ap;
	struct tm_msg_dir *dir;
	size_t *nfiles;
	uint64_t *total;
	const struct tm_plan_limits *lim;
};

/* data: NULL or tm_git_read_blob_kept's (never freed here) */
static int cap_push(struct tm_msg_dir *d, const char *path, int mode, size_t size, const char *data)
{
	struct tm_msg_file *nf = realloc(d->files, (d->nfiles + 1) * sizeof(*nf));
	char *p = strdup(path);

	if (nf)
		d->files = nf;
	if (!nf || !p) {
		free(p);
		return tm_error_nomem();
	}
	nf[d->nfiles++] = (struct tm_msg_file){ p, (uint32_t)mode, size, data };
	return 0;
}

/* 1 when the capture lists an entry (with or without its body): a wanted
 * file, or one the plan refuses. */
static int listed(const struct tm_applier *ap, const char *path, int mode)
{
	const char *base = strrchr(path, '/');

	if (bad_name(path) || (mode != 0100644 && mode != 0100755))
		return 1;
	return ap->wants(path, base ? base + 1 : path);
}

/* The same checks as on_entry, in the same order: an entry that on_entry
 * refuses is kept without body and ends the walk (on_entry stops there too);
 * files the applier does not want are left out. */
static int cap_entry(void *arg, const char *path, int mode, const char *blob)
{
	struct capture *c = arg;
	const char *data;
	size_t size = 0, len;
	int r;

	if (bad_name(path) || (mode != 0100644 && mode != 0100755))
		return cap_push(c->dir, path, mode, 0, NULL) < 0 ? TM_ENOMEM : 1;
	if (!listed(c->ap, path, mode))
		return 0;
	if ((r = tm_git_blob_size(&size, c->git, blob)) < 0)
		return tm_error_wrap(r, "%.256s", path);
	if (++*c->nfiles > TM_PLAN_MAX_FILES || size > c->lim->max_file ||
	    (*c->total += size, c->lim->max_total && *c->total > c->lim->max_total))
		return cap_push(c->dir, path, mode, size, NULL) < 0 ? TM_ENOMEM : 1;
	/* the body goes to the pipe from libgit2's buffer: no copy of megabytes here */
	if ((r = tm_git_read_blob_kept(&data, &len, c->git, blob, (size_t)c->lim->max_file)) < 0 ||
	    len != size) {
		/* never TM_ENOTFOUND: that code means "directory absent" to the caller */
		if (r == 0)
			r = tm_error_set(TM_EIO, "the blob is not %zu bytes", size);
		return tm_error_wrap(r == TM_ENOTFOUND ? TM_EIO : r, "%.256s", path);
	}
	return cap_push(c->dir, path, mode, len, data) < 0 ? TM_ENOMEM : 0;
}

int tm_plan_capture(struct tm_msg_set *set, const struct tm_objsrc *src, struct tm_git *git,
		    uint32_t slot, const struct tm_applier *ap, const struct tm_config *cfg,
		    const struct tm_strlist *paths)
{
	struct tm_plan_limits lim;
	size_t nfiles = 0;
	uint64_t total = 0;

	tm_plan_limits_of(&lim, ap, cfg);
	for (size_t i = 0; i < paths->n; i++) {
		struct tm_msg_dir *nd = realloc(set->dirs, (set->ndirs + 1) * sizeof(*nd)), *d;
		struct capture c;
		int r;

		if (!nd)
			return tm_error_nomem();
		set->dirs = nd;
		d = &nd[set->ndirs];
		memset(d, 0, sizeof(*d));
		d->applier = slot;
		if (!(d->path = strdup(paths->v[i])))
			return tm_error_nomem();
		set->ndirs++;
		c = (struct capture){ git, ap, d, &nfiles, &total, &lim };
		r = tm_obj_tree_walk(src, set->commit, paths->v[i], cap_entry, &c);
		if (r == TM_ENOMEM)
			return r;
		if (r < 0) {
			d->status = r;
			if (!(d->error = strdup(tm_error_last())))
				return tm_error_nomem();
			tm_error_clear();
		}
	}
	return 0;
}

/* --- check (the parent): the inputs against the commit's trees ------------- */

struct check {
	const struct tm_msg_dir *d;
	const struct tm_applier *ap;
	size_t at;
	int bad;
};

static int check_entry(void *arg, const char *path, int mode, const char *oid)
{
	struct check *c = arg;
	const struct tm_msg_dir *d = c->d;
	char id[41];

	if (c->at < d->nfiles && strcmp(d->files[c->at].path, path) == 0) {
		const struct tm_msg_file *f = &d->files[c->at++];
		/* one without body is one the plan refuses (or fails on): never an
		 * unwanted file the plan would skip, ending the check early */
		if (!f->data && !listed(c->ap, path, mode)) {
			c->bad = 1;
			return tm_error_set(TM_ESOURCE, "%.256s is sent without its body", path);
		}
		if (f->mode != (uint32_t)mode) {
			c->bad = 1;
			return tm_error_set(TM_ESOURCE, "%.256s has mode %o, the tree says %o",
					    path, (unsigned)f->mode, (unsigned)mode);
		}
		if (f->data && (tm_obj_id(id, TM_OBJ_BLOB, f->data, (size_t)f->size) < 0 ||
				strcmp(id, oid) != 0)) {
			c->bad = 1;
			return tm_error_set(TM_ESOURCE, "%.256s is not the blob %.12s of the tree",
					    path, oid);
		}
		return 0;
	}
	/* the capture stopped at an entry the plan refuses: so does the plan */
	if (c->at == d->nfiles && d->nfiles && !d->files[d->nfiles - 1].data)
		return 1;
	if (!listed(c->ap, path, mode))
		return 0;
	c->bad = 1;
	return tm_error_set(TM_ESOURCE, "%.256s is in the tree but not in what it sent", path);
}

static int at_once(void *arg, const char *path, int mode, const char *oid)
{
	(void)arg;
	(void)path;
	(void)mode;
	(void)oid;
	return 1;
}

int tm_plan_check_inputs(const struct tm_msg_dir *d, const char *commit,
			 const struct tm_objsrc *src, const struct tm_applier *ap)
{
	struct check c = { d, ap, 0, 0 };
	int r;

	/* "absent" prunes everything applied from it: only when it is */
	if (d->status == TM_ENOTFOUND) {
		r = tm_obj_tree_walk(src, commit, d->path, at_once, NULL);
		if (r == TM_ENOTFOUND && d->nfiles == 0)
			return 0;
		return tm_error_set(TM_ESOURCE, "%s is not absent in commit %.12s, as it says",
				    d->path, commit);
	}
	/* a walk the child could not finish fails the plan with its error: no
	 * body of it is used, so there is nothing to check */
	if (d->status < 0)
		return 0;
	r = tm_obj_tree_walk(src, commit, d->path, check_entry, &c);
	if (c.bad)
		return TM_ESOURCE;
	if (r == TM_ENOTFOUND)
		return tm_error_set(TM_ESOURCE, "%s is absent in commit %.12s, not as it says",
				    d->path, commit);
	if (r < 0)
		return tm_error_wrap(TM_ESOURCE, "%s, which it walked", d->path);
	if (r == 0 && c.at != d->nfiles)
		return tm_error_set(TM_ESOURCE, "%.256s is not in the tree", d->files[c.at].path);
	return 0;
}

void tm_plan_inputs_free(struct tm_msg_set *set)
{
	for (size_t i = 0; i < set->ndirs; i++) {
		struct tm_msg_dir *d = &set->dirs[i];
		for (size_t j = 0; j < d->nfiles; j++) {
			free((char *)d->files[j].path);
		}
		free(d->files);
		free((char *)d->path);
		free((char *)d->error);
	}
	free(set->dirs);
	free((char *)set->commit);
	memset(set, 0, sizeof(*set));
}

/* --- build (the parent): inputs → desired objects -------------------------- */

int tm_plan_build_inputs(struct tm_objset *out, const struct tm_msg_set *set, uint32_t slot,
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
		struct walk w = { NULL, ap, ctx, paths->v[i], &layer, &nfiles, &total, &lim, NULL };
		const struct tm_msg_dir *d = set ? tm_msg_find_dir(set, slot, paths->v[i]) : NULL;

		if (!d) {
			r = tm_error_set(TM_EPARSE, "the plan inputs of commit %.12s lack %s",
					 set ? set->commit : "?", paths->v[i]);
			break;
		}
		/* TM_ENOTFOUND only when truly absent; TM_EPARSE ("units/common is
		 * a symlink, not a directory") fails the plan like any hostile entry */
		if (d->status == TM_ENOTFOUND && d->nfiles == 0) {
			tm_log_debug("%s: not in the repository; skipped",
				     paths->v[i][0] ? paths->v[i] : ".");
			continue;
		}
		for (size_t j = 0; j < d->nfiles && r == 0; j++) {
			w.data = d->files[j].data;
			if (d->files[j].size > SIZE_MAX)
				r = tm_error_set(TM_ELIMIT, "%.256s: too large", d->files[j].path);
			else
				r = on_entry(&w, d->files[j].path, (int)d->files[j].mode, NULL,
					     (size_t)d->files[j].size);
		}
		if (r == 0 && d->status < 0)
			r = tm_error_set(d->status, "%s", d->error ? d->error : "the walk failed");
		if (r < 0 || (r = overlay(out, &layer, ap->free_data)) < 0)
			break;
	}
	tm_objset_free(&layer, ap->free_data);
	if (r < 0)
		tm_objset_free(out, ap->free_data);
	return r;
}

int tm_plan_build(struct tm_objset *out, struct tm_git *git, const char *commit,
		  const struct tm_applier *ap, const struct tm_applier_ctx *ctx,
		  const struct tm_strlist *paths)
{
	struct tm_msg_set set = { 0 };
	struct tm_objsrc_git g = { 0 };
	struct tm_objsrc src;
	int r;

	memset(out, 0, sizeof(*out));
	if (!(set.commit = strdup(commit)))
		return tm_error_nomem();
	tm_objsrc_git_init(&src, &g, git);
	r = tm_plan_capture(&set, &src, git, 0, ap, ctx ? ctx->cfg : NULL, paths);
	tm_objsrc_git_free(&g);
	if (r == 0)
		r = tm_plan_build_inputs(out, &set, 0, ap, ctx, paths);
	tm_plan_inputs_free(&set);
	return r;
}
