/*
 * gitstore.c — the upkeep of repo.git's object store (part of the libgit2 adapter): the stale
 * locks and temporary files a killed fetch leaves, removing and emptying trees for a rebuild,
 * the store's size and the bytes kept at the last prune, and tm_git_prune (only what the
 * revisions in use need stays).
 */
#define _GNU_SOURCE
#include "tagmoor/source/git.h"
#include "git_internal.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/source/http.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/odb_backend.h>

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

int tmg_remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- stale locks and temporary files ------------------------------------ *
 *
 * A tagmoor killed (SIGKILL, power cut) in the middle of a fetch leaves lock
 * files (refs/tagmoor/fetched.lock, packed-refs.lock, ...) and half-written
 * temporary files (objects/pack/pack_git2_*, tmp_pack_*, loose tmp objects)
 * behind. libgit2 never breaks a lock, so every later fetch would fail with
 * "failed to lock file" forever. The caller holds the state lock (flock on
 * state_dir/lock) for the whole pass, so nobody else writes repo.git: any
 * lock or temporary file found at open time is stale and is removed. */

static int path_join(char *out, size_t n, const char *a, const char *b)
{
	int k = snprintf(out, n, "%s/%s", a, b);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

int tmg_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

static void unlink_stale(const char *path, size_t *n)
{
	if (unlink(path) == 0) {
		(*n)++;
		tm_log_debug("%s: removed a stale lock or temporary file", path);
	} else if (errno != ENOENT) {
		tm_log_warn("%s: cannot remove a stale lock or temporary file: %s", path,
			    strerror(errno));
	}
}

/* Removes *.lock files below dir (refs/), recursively, at most depth levels. */
static void clear_ref_locks(const char *dir, int depth, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		int k;

		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		k = snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (k < 0 || (size_t)k >= sizeof(p) || lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth > 0)
				clear_ref_locks(p, depth - 1, n);
		} else if (tmg_ends_with(de->d_name, ".lock")) {
			unlink_stale(p, n);
		}
	}
	closedir(d);
}

/* objects/pack: only complete pack-<hex>.pack + pack-<hex>.idx pairs stay;
 * temporary packs and indexes, locks, .keep files and a pack or index whose
 * partner is missing (a kill between the two renames) go. */
static void clear_pack_dir(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096], other[4096];

	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		size_t len = strlen(name);
		struct stat st;
		int k, keep = 0;

		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		k = snprintf(p, sizeof(p), "%s/%s", dir, name);
		if (k < 0 || (size_t)k >= sizeof(p) || lstat(p, &st) < 0 || S_ISDIR(st.st_mode))
			continue;
		if (strncmp(name, "pack-", 5) == 0 &&
		    (tmg_ends_with(name, ".pack") || tmg_ends_with(name, ".idx"))) {
			size_t stem = tmg_ends_with(name, ".pack") ? len - 5 : len - 4;

			k = snprintf(other, sizeof(other), "%s/%.*s%s", dir, (int)stem, name,
				     tmg_ends_with(name, ".pack") ? ".idx" : ".pack");
			keep = k > 0 && (size_t)k < sizeof(other) && access(other, F_OK) == 0;
		} else if (strncmp(name, "pack-", 5) == 0 &&
			   (tmg_ends_with(name, ".rev") || tmg_ends_with(name, ".bitmap"))) {
			keep = 1; /* written by git itself next to a complete pack */
		}
		if (!keep)
			unlink_stale(p, n);
	}
	closedir(d);
}

/* objects/ and objects/XX/: everything but loose objects (38 hex digits in a
 * two-hex-digit directory), pack/ and info/ is a temporary file. */
static void clear_loose_tmp(const char *dir, size_t *n)
{
	DIR *d = opendir(dir), *sd;
	struct dirent *de, *se;
	char p[4096], q[4096];

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		int k;

		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (!strcmp(de->d_name, "pack") || !strcmp(de->d_name, "info"))
			continue;
		k = snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (k < 0 || (size_t)k >= sizeof(p) || lstat(p, &st) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			unlink_stale(p, n);
			continue;
		}
		if (!is_hex(de->d_name, 2) || !(sd = opendir(p)))
			continue;
		while ((se = readdir(sd))) {
			if (se->d_name[0] == '.' &&
			    (!se->d_name[1] || (se->d_name[1] == '.' && !se->d_name[2])))
				continue;
			if (is_hex(se->d_name, 38))
				continue;
			k = snprintf(q, sizeof(q), "%s/%s", p, se->d_name);
			if (k > 0 && (size_t)k < sizeof(q) && lstat(q, &st) == 0 &&
			    !S_ISDIR(st.st_mode))
				unlink_stale(q, n);
		}
		closedir(sd);
	}
	closedir(d);
}

/* Temporary files of tm_file_write_atomic at the top (the kept-size record). */
static void clear_write_temps(const char *path, size_t *n)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[4096];

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] == '.' && strstr(de->d_name, TM_FILE_TEMP_MARK) &&
		    path_join(p, sizeof(p), path, de->d_name) == 0)
			unlink_stale(p, n);
	closedir(d);
}

void tmg_clear_stale(const char *path)
{
	/* FETCH_HEAD itself is left alone: libgit2 rewrites it (through a lock)
	 * at every fetch, so a torn one blocks nothing, and a healthy open must
	 * write nothing. */
	static const char *const top[] = { "packed-refs.lock", "HEAD.lock",  "config.lock",
					   "FETCH_HEAD.lock",  "index.lock", "shallow.lock",
					   "ORIG_HEAD.lock" };
	char p[4096];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", path, top[i]);
		if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
			unlink_stale(p, &n);
	}
	clear_write_temps(path, &n);
	snprintf(p, sizeof(p), "%s/refs", path);
	clear_ref_locks(p, 16, &n);
	snprintf(p, sizeof(p), "%s/objects/pack", path);
	clear_pack_dir(p, &n);
	snprintf(p, sizeof(p), "%s/objects", path);
	clear_loose_tmp(p, &n);
	if (n)
		tm_log_warn(
			"%s: removed %zu stale lock or temporary file%s left by an interrupted run",
			path, n, n == 1 ? "" : "s");
}

/* The content of a directory, the directory staying: the fetcher child may
 * write below repo.git but not in the state directory (docs/security.md), so
 * it rebuilds the repository in place when it cannot move it aside. */
int tmg_remove_contents(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[4096];
	int r = 0;

	if (!d)
		return -1;
	while (r == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (path_join(p, sizeof(p), path, e->d_name) < 0 || tmg_remove_tree(p) < 0)
			r = -1;
	}
	closedir(d);
	return r;
}

uint64_t tmg_kept_bytes(const char *path);

/* --- the object store: pruning and its bound ------------------------------ */

/* Bytes of the files under dir (objects/: packs, indexes, loose objects), two
 * levels deep, which is all an object store has. */
static uint64_t dir_bytes(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t n = 0;
	char p[4096];

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;
		int k;

		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		k = snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (k < 0 || (size_t)k >= sizeof(p) || lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth > 0)
				n += dir_bytes(p, depth - 1);
		} else {
			n += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return n;
}

/* What the last prune kept, in bytes: the store's bound is counted on top of
 * it, so that kept revisions with a long history never stop fetches. */
#define KEPT_FILE "tagmoor-kept"

static void record_kept(const char *path, uint64_t bytes)
{
	char p[4096], v[32];
	int n = snprintf(v, sizeof(v), "%llu\n", (unsigned long long)bytes);

	if (path_join(p, sizeof(p), path, KEPT_FILE) == 0 &&
	    tm_file_write_atomic(p, v, (size_t)n, 0644) < 0)
		tm_log_warn("%s", tm_error_last());
}

uint64_t tmg_kept_bytes(const char *path)
{
	char p[4096];
	struct tm_buf b;
	uint64_t v = 0;

	tm_buf_init(&b, 64);
	if (path_join(p, sizeof(p), path, KEPT_FILE) == 0 && tm_file_read(&b, p, 32) == 0 && b.ptr)
		v = strtoull(b.ptr, NULL, 10);
	tm_buf_free(&b);
	tm_error_clear();
	return v;
}

uint64_t tm_git_store_bytes(struct tm_git *git)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/objects", git->path);
	return dir_bytes(p, 2);
}

/* A set of object ids (open addressing; the ids are hashes already). */
struct oidset {
	git_oid *v;
	unsigned char *used;
	size_t cap, n;
};

static size_t oid_slot(const struct oidset *s, const git_oid *id)
{
	uint64_t h;

	memcpy(&h, id->id, sizeof(h));
	return (size_t)h & (s->cap - 1);
}

static int oidset_has(const struct oidset *s, const git_oid *id)
{
	if (!s->cap)
		return 0;
	for (size_t i = oid_slot(s, id);; i = (i + 1) & (s->cap - 1)) {
		if (!s->used[i])
			return 0;
		if (git_oid_cmp(&s->v[i], id) == 0)
			return 1;
	}
}

/* 1 when added, 0 when already there, TM_ENOMEM. */
static int oidset_add(struct oidset *s, const git_oid *id)
{
	size_t i;

	if (oidset_has(s, id))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		struct oidset b = { 0 };

		b.cap = s->cap ? s->cap * 2 : 1024;
		b.v = malloc(b.cap * sizeof(*b.v));
		b.used = calloc(b.cap, 1);
		if (!b.v || !b.used) {
			free(b.v);
			free(b.used);
			return tm_error_nomem();
		}
		for (size_t k = 0; k < s->cap; k++)
			if (s->used[k])
				oidset_add(&b, &s->v[k]);
		free(s->v);
		free(s->used);
		*s = b;
	}
	for (i = oid_slot(s, id); s->used[i]; i = (i + 1) & (s->cap - 1))
		;
	git_oid_cpy(&s->v[i], id);
	s->used[i] = 1;
	s->n++;
	return 1;
}

static void oidset_free(struct oidset *s)
{
	free(s->v);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

struct treecol {
	struct oidset *set;
	int err;
};

static int tree_entry_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct treecol *c = payload;
	git_object_t t = git_tree_entry_type(e);
	int r;

	(void)root;
	if (t == GIT_OBJECT_COMMIT) /* a submodule: not in this repository */
		return 0;
	r = oidset_add(c->set, git_tree_entry_id(e));
	if (r < 0) {
		c->err = r;
		return -1;
	}
	/* a tree seen before was walked before: skip it */
	return t == GIT_OBJECT_TREE && r == 0 ? 1 : 0;
}

static int collect_tree(struct oidset *set, git_repository *repo, const git_oid *tree_id)
{
	struct treecol c = { set, 0 };
	git_tree *tree = NULL;
	int r = oidset_add(set, tree_id);

	if (r <= 0)
		return r;
	if (git_tree_lookup(&tree, repo, tree_id) < 0)
		return tmg_lg_error(TM_EIO, "prune: a kept tree");
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, tree_entry_cb, &c) < 0)
		r = c.err ? c.err : tmg_lg_error(TM_EIO, "prune: a kept tree");
	git_tree_free(tree);
	return r < 0 ? r : 0;
}

/* Adds one kept id: a tag chain tag by tag, then the commit it ends in (to
 * the walk, for its history) or a tree/blob with everything below it.
 * 1 when the id is not here. */
static int keep_one(struct oidset *set, git_revwalk *walk, git_repository *repo, const git_oid *oid,
		    const char *hex)
{
	git_object *obj = NULL;
	git_oid cur = *oid;
	int r = 0, e;

	for (int depth = 0;; depth++) {
		e = git_object_lookup(&obj, repo, &cur, GIT_OBJECT_ANY);
		if (e < 0)
			return depth == 0 && e == GIT_ENOTFOUND ? 1 : tmg_lg_error(TM_EIO, hex);
		if (git_object_type(obj) != GIT_OBJECT_TAG || depth > 16)
			break;
		if ((r = oidset_add(set, &cur)) < 0)
			goto out;
		cur = *git_tag_target_id((git_tag *)obj);
		git_object_free(obj);
		obj = NULL;
	}
	r = 0;
	if (git_object_type(obj) == GIT_OBJECT_COMMIT) {
		if (git_revwalk_push(walk, &cur) < 0)
			r = tmg_lg_error(TM_EIO, hex);
	} else if (git_object_type(obj) == GIT_OBJECT_TREE) {
		r = collect_tree(set, repo, &cur);
	} else if ((r = oidset_add(set, &cur)) > 0) {
		r = 0;
	}
out:
	git_object_free(obj);
	return r;
}

/* Everything reachable from keep: tags, commits with their history, trees,
 * blobs. */
static int collect_kept(struct oidset *set, git_repository *repo, const char *const *keep,
			size_t nkeep)
{
	git_revwalk *walk = NULL;
	git_oid c;
	int r = 0, e;

	if (git_revwalk_new(&walk, repo) < 0)
		return tmg_lg_error(TM_EIO, "prune");
	for (size_t i = 0; i < nkeep; i++) {
		git_oid id;

		if (!keep[i] || !keep[i][0])
			continue;
		if ((r = tmg_parse_oid(&id, keep[i])) < 0 ||
		    (r = keep_one(set, walk, repo, &id, keep[i])) < 0)
			goto out;
		if (r == 1)
			tm_log_debug("prune: %s is not here; nothing of it to keep", keep[i]);
		r = 0;
	}
	while ((e = git_revwalk_next(&c, walk)) == 0) {
		git_commit *commit = NULL;

		if ((r = oidset_add(set, &c)) < 0)
			goto out;
		if (git_commit_lookup(&commit, repo, &c) < 0) {
			r = tmg_lg_error(TM_EIO, "prune: history of the kept revisions");
			goto out;
		}
		r = collect_tree(set, repo, git_commit_tree_id(commit));
		git_commit_free(commit);
		if (r < 0)
			goto out;
	}
	if (e != GIT_ITEROVER)
		r = tmg_lg_error(TM_EIO, "prune: history of the kept revisions");
out:
	git_revwalk_free(walk);
	return r;
}

/* Deletes the refs under refs/tagmoor/ whose target is not kept (e.g.
 * refs/tagmoor/fetched at a refused revision). */
static int drop_unkept_refs(git_repository *repo, const struct oidset *set)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	int r = 0;

	if (git_reference_iterator_glob_new(&it, repo, "refs/tagmoor/*") < 0)
		return tmg_lg_error(TM_EIO, "refs/tagmoor");
	for (;;) {
		int e = git_reference_next(&ref, it);

		if (e == GIT_ITEROVER)
			break;
		if (e < 0) {
			r = tmg_lg_error(TM_EIO, "refs/tagmoor");
			break;
		}
		if (git_reference_type(ref) != GIT_REFERENCE_DIRECT ||
		    !oidset_has(set, git_reference_target(ref))) {
			tm_log_debug("prune: deleting %s (not kept)", git_reference_name(ref));
			if (git_reference_delete(ref) < 0) {
				r = tmg_lg_error(TM_EIO, git_reference_name(ref));
				git_reference_free(ref);
				break;
			}
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	return r;
}

#define PRUNE_MAX_PACKS 16 /* more packs than this are merged into one */

/* What prune does with one pack (or the loose objects). */
struct packfile {
	char stem[128]; /* "pack-<hex>" */
	size_t kept, unkept;
};

struct packcount {
	const struct oidset *set;
	struct packfile *pf;
	git_packbuilder *pb; /* second pass: kept objects of a mixed pack go here */
	int err;
};

static int count_cb(const git_oid *id, void *payload)
{
	struct packcount *pc = payload;

	if (oidset_has(pc->set, id)) {
		pc->pf->kept++;
		if (pc->pb && git_packbuilder_insert(pc->pb, id, NULL) < 0) {
			pc->err = tmg_lg_error(TM_EIO, "prune: copying a kept object");
			return -1;
		}
	} else {
		pc->pf->unkept++;
	}
	return 0;
}

/* Runs count_cb over the objects of objects/pack/STEM.idx. */
static int pack_foreach(const char *path, struct packcount *pc)
{
	git_odb *one = NULL;
	git_odb_backend *be = NULL;
	char idx[4400];
	int r = 0;

	snprintf(idx, sizeof(idx), "%s/objects/pack/%s.idx", path, pc->pf->stem);
	if (git_odb_new(&one) < 0)
		return tmg_lg_error(TM_EIO, idx);
	if (git_odb_backend_one_pack(&be, idx) < 0 || git_odb_add_backend(one, be, 1) < 0) {
		if (be && be->free)
			be->free(be);
		r = tmg_lg_error(TM_EIO, idx);
	} else if (git_odb_foreach(one, count_cb, pc) < 0) {
		r = pc->err ? pc->err : tmg_lg_error(TM_EIO, idx);
	}
	git_odb_free(one);
	return r;
}

static int unlink_pack(const char *path, const char *stem)
{
	char p[4400];
	int r = 0;

	/* the .pack first: a kill before the .idx goes leaves an index without
	 * its pack, which the next open removes */
	snprintf(p, sizeof(p), "%s/objects/pack/%s.pack", path, stem);
	if (unlink(p) < 0 && errno != ENOENT)
		r = tm_error_set(TM_EIO, "%s: %s", p, strerror(errno));
	snprintf(p, sizeof(p), "%s/objects/pack/%s.idx", path, stem);
	if (unlink(p) < 0 && errno != ENOENT)
		r = tm_error_set(TM_EIO, "%s: %s", p, strerror(errno));
	return r;
}

/* Loose objects: counts (del == 0) or deletes the ones not kept (del == 1). */
static int loose_objects(const char *path, const struct oidset *set, struct packfile *pf, int del)
{
	char dir[4096], p[4400];
	DIR *d, *sd;
	struct dirent *de, *se;
	int r = 0;

	snprintf(dir, sizeof(dir), "%s/objects", path);
	if (!(d = opendir(dir)))
		return 0;
	while ((de = readdir(d))) {
		if (!is_hex(de->d_name, 2) || path_join(p, sizeof(p), dir, de->d_name) < 0 ||
		    !(sd = opendir(p)))
			continue;
		while ((se = readdir(sd))) {
			char hex[41], q[4500];
			git_oid id;

			if (!is_hex(se->d_name, 38))
				continue;
			memcpy(hex, de->d_name, 2);
			memcpy(hex + 2, se->d_name,
			       39); /* 38 digits and the NUL (is_hex checked) */
			if (git_oid_fromstr(&id, hex) < 0)
				continue;
			if (oidset_has(set, &id)) {
				pf->kept++;
				continue;
			}
			pf->unkept++;
			if (del && path_join(q, sizeof(q), p, se->d_name) == 0 && unlink(q) < 0 &&
			    errno != ENOENT)
				r = tm_error_set(TM_EIO, "%s: %s", q, strerror(errno));
		}
		closedir(sd);
		if (del)
			rmdir(p); /* only when empty */
	}
	closedir(d);
	return r;
}

/* The packs of objects/pack (their "pack-X" stems), appended to *packs. */
static int list_packs(struct packfile **packs, size_t *npacks, const char *dir)
{
	DIR *d;
	struct dirent *de;

	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);
			struct packfile *np;

			if (strncmp(de->d_name, "pack-", 5) != 0 ||
			    !tmg_ends_with(de->d_name, ".idx") || l - 4 >= sizeof((*packs)[0].stem))
				continue;
			if (!(np = realloc(*packs, ((*npacks) + 1) * sizeof(**packs)))) {
				closedir(d);
				return tm_error_nomem();
			}
			*packs = np;
			memset(&(*packs)[*npacks], 0, sizeof((*packs)[0]));
			memcpy((*packs)[*npacks].stem, de->d_name, l - 4);
			(*packs)[*npacks].stem[l - 4] = '\0';
			(*npacks)++;
		}
		closedir(d);
	}
	return 0;
}

/* Step 1 of pruning: the kept objects of packs that also hold unkept ones go into one new
 * pack, written and synced completely before anything is deleted. */
static int repack_mixed(struct tm_git *git, struct oidset *set, const struct packfile *packs,
			size_t npacks, const char *dir)
{
	git_packbuilder *pb = NULL;
	int r = 0;

	if (git_packbuilder_new(&pb, git->repo) < 0) {
		r = tmg_lg_error(TM_EIO, git->path);
		goto out;
	}
	git_packbuilder_set_threads(pb, 1);
	for (size_t i = 0; i < npacks; i++) {
		struct packfile counted = packs[i];
		struct packcount pc = { set, &counted, pb, 0 };

		if (packs[i].unkept && packs[i].kept && (r = pack_foreach(git->path, &pc)) < 0)
			goto out;
	}
	TM_FAULT("git.prune-before-pack");
	if (git_packbuilder_write(pb, dir, 0, NULL, NULL) < 0) {
		r = tmg_lg_error(TM_EIO, "prune: writing the new pack");
		goto out;
	}
out:
	git_packbuilder_free(pb);
	return r;
}

/* Step 3 of pruning: the packs with unkept objects and the unkept loose objects go; then
 * the repository is reopened, so that no deleted pack stays mapped. */
static int remove_unkept(struct tm_git *git, struct oidset *set, const struct packfile *packs,
			 size_t npacks, struct packfile *loose)
{
	git_repository *repo = NULL;
	int r = 0;

	git_repository_free(git->repo);
	git->repo = NULL;
	for (size_t i = 0; i < npacks; i++)
		if (packs[i].unkept && (r = unlink_pack(git->path, packs[i].stem)) < 0)
			break;
	TM_FAULT("git.prune-packs-removed");
	if (r == 0)
		r = loose_objects(git->path, set, loose, 1);
	if (git_repository_open_ext(&repo, git->path,
				    GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE |
					    GIT_REPOSITORY_OPEN_NO_DOTGIT,
				    NULL) < 0) {
		return tmg_lg_error(TM_EIO, git->path);
	}
	git->repo = repo;
	return r;
}

int tm_git_prune(struct tm_git *git, const char *const *keep, size_t nkeep)
{
	struct oidset set = { 0 };
	struct packfile *packs = NULL, loose = { "", 0, 0 };
	size_t npacks = 0, ndrop = 0, nmixed = 0;
	uint64_t before = tm_git_store_bytes(git), after;
	char dir[4096];
	int r, consolidate;

	if ((r = collect_kept(&set, git->repo, keep, nkeep)) < 0)
		goto out;
	/* which packs hold what is not kept */
	snprintf(dir, sizeof(dir), "%s/objects/pack", git->path);
	if ((r = list_packs(&packs, &npacks, dir)) < 0)
		goto out;
	/* one pack per fetch adds up: past PRUNE_MAX_PACKS they are all merged */
	consolidate = npacks > PRUNE_MAX_PACKS;
	for (size_t i = 0; i < npacks; i++) {
		struct packcount pc = { &set, &packs[i], NULL, 0 };

		if ((r = pack_foreach(git->path, &pc)) < 0)
			goto out;
		if (consolidate)
			packs[i].unkept++; /* rewritten like a pack holding something not kept */
		if (packs[i].unkept)
			ndrop++;
		if (packs[i].unkept && packs[i].kept)
			nmixed++;
	}
	if ((r = loose_objects(git->path, &set, &loose, 0)) < 0)
		goto out;
	/* 1. the kept objects of mixed packs into one new pack */
	if (nmixed && (r = repack_mixed(git, &set, packs, npacks, dir)) < 0)
		goto out;
	TM_FAULT("git.prune-packed");
	/* 2. refs to what is not kept */
	if ((r = drop_unkept_refs(git->repo, &set)) < 0)
		goto out;
	if (ndrop == 0 && loose.unkept == 0) {
		after = before;
		if (tmg_kept_bytes(git->path) != after)
			record_kept(git->path, after);
		tm_log_debug("%s: nothing to prune (%zu kept objects, %llu bytes)", git->path,
			     set.n, (unsigned long long)after);
		goto out;
	}
	/* 3. the packs and loose objects that hold unkept ones */
	if ((r = remove_unkept(git, &set, packs, npacks, &loose)) < 0)
		goto out;
	after = tm_git_store_bytes(git);
	record_kept(git->path, after);
	tm_log_info(
		"%s: pruned to the %zu objects of %zu kept revision%s (%zu of %zu packs rewritten "
		"or "
		"dropped): %llu -> %llu bytes",
		git->path, set.n, nkeep, nkeep == 1 ? "" : "s", ndrop, npacks,
		(unsigned long long)before, (unsigned long long)after);
out:
	free(packs);
	oidset_free(&set);
	return r;
}
