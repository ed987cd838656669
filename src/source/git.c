/*
 * git.c — the source module: libgit2 for the repository, our own smart-HTTP
 * subtransport (on top of http.c / libcurl) for the network. This file: libgit2's set-up,
 * opening, checking and rebuilding repo.git, objects, refs and tree walks; the network is
 * gitfetch.c, the pack scan packscan.c, the store's upkeep gitstore.c (git_internal.h).
 *
 * Why our own subtransport: libgit2 1.5's HTTP stack has no timeout, no byte
 * cap and follows redirects on its own terms. Plugging a "smart" subtransport
 * (stateless RPC, like git's smart HTTP) into git_transport_smart through the
 * remote callbacks' transport hook makes every byte go through tm_http, which
 * enforces ca_file, credentials, the idle/connect timeout, max_fetch and
 * "no redirects". libgit2 still does the protocol (pkt-lines, negotiation,
 * pack indexing); we only move bytes:
 *   advertisement: GET  {url}/info/refs?service=git-upload-pack
 *   fetch:         POST {url}/git-upload-pack   (one per negotiation round)
 *
 * Tags are fetched with tag download off, through the forced refspec
 * "+<ref>:refs/tagmoor/fetched", and the result is judged by the object id
 * the advertisement showed: libgit2's tag auto-follow ignores forced tag
 * refspecs, so a moved tag would otherwise be silently kept at its old value.
 *
 * An idle poll (tm_git_ls_remote) writes nothing and keeps nothing once it
 * returns; it only looks the advertised object up in the object database.
 * When that object is missing a fetch follows, and the advertisement is kept
 * for it (see ADV_CACHE_MAX), so that even a fetching poll asks once.
 */
#define _GNU_SOURCE
#include "tagmoor/source/git.h"
#include "git_internal.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

void tmg_adv_drop(struct tm_git *git)
{
	tm_buf_free(&git->adv);
	free(git->adv_url);
	git->adv_url = NULL;
}

/* --- libgit2 set-up ------------------------------------------------------ */

static int git_users;

#if defined(LIBGIT2_VERSION_MAJOR) && defined(LIBGIT2_VERSION_MINOR) && \
	(LIBGIT2_VERSION_MAJOR > 1 || LIBGIT2_VERSION_MINOR >= 9)
#include <git2/sys/alloc.h>
/* libgit2's allocator (the three-function one of 1.9 and later) with large
 * blocks populated at once: the blobs libgit2 inflates (git__calloc, a block of
 * the blob's size then zeroed) and the buffers of a fetch are written through
 * right away, and a page fault each is most of what the fetcher child costs for
 * a manifest of megabytes. Blocks are malloc's, as with libgit2's own. */
static void *lg_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n);

	(void)file;
	(void)line;
	if (p)
		tm_mem_populate(p, n);
	return p;
}

static void *lg_realloc(void *q, size_t n, const char *file, int line)
{
	void *p = realloc(q, n);

	(void)file;
	(void)line;
	if (p)
		tm_mem_populate(p, n); /* the pages already there are only looked at */
	return p;
}

static void lg_free(void *p)
{
	free(p);
}

static void set_allocator(void)
{
	static git_allocator a = { lg_malloc, lg_realloc, lg_free };

	git_libgit2_opts(GIT_OPT_SET_ALLOCATOR, &a);
}
#else
static void set_allocator(void)
{
}
#endif

int tm_git_global_init(void)
{
	int n;

	if (git_users == 0)
		set_allocator(); /* before anything is allocated: libgit2 frees with it */
	n = git_libgit2_init();
	if (n < 0)
		return tm_error_set(TM_ERROR, "cannot initialise libgit2");
	if (git_users++ == 0) {
		/* Our state dir, our rules: no user or system git configuration,
		 * durable writes, a modest object cache for small devices. */
		static const int levels[] = { GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
					      GIT_CONFIG_LEVEL_GLOBAL,
					      GIT_CONFIG_LEVEL_PROGRAMDATA };
		for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
			git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
		git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
		git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
		git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)(8 * 1024 * 1024));
		/* also checked by our own pack scan, with a clearer message */
		git_libgit2_opts(GIT_OPT_SET_PACK_MAX_OBJECTS, (size_t)TM_GIT_MAX_PACK_OBJECTS);
	}
	return 0;
}

void tm_git_global_shutdown(void)
{
	if (git_users > 0) {
		git_users--;
		git_libgit2_shutdown();
	}
}

const char *tm_git_version(void)
{
	static char v[32];
	int major = 0, minor = 0, rev = 0;

	git_libgit2_version(&major, &minor, &rev);
	snprintf(v, sizeof(v), "%d.%d.%d", major, minor, rev);
	return v;
}

int tmg_lg_error(int code, const char *what)
{
	const git_error *e = git_error_last();

	return tm_error_set(code, "%s: %s", what,
			    e && e->message ? e->message : "unknown libgit2 error");
}

int tmg_parse_oid(git_oid *out, const char *s)
{
	size_t i;

	for (i = 0; s && i < 40; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			break;
	if (!s || i != 40 || s[40] != '\0' || git_oid_fromstr(out, s) < 0)
		return tm_error_set(TM_EPARSE, "invalid object id \"%.48s\"", s ? s : "");
	return 0;
}

/* --- opening, checking, rebuilding --------------------------------------- */

static int is_dir(const char *base, const char *sub)
{
	char p[4096];
	struct stat st;
	int n = snprintf(p, sizeof(p), "%s/%s", base, sub);

	return n > 0 && (size_t)n < sizeof(p) && lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 0 when the repository looks healthy; otherwise a short reason in why. */
static int check_repo(git_repository *repo, const char *path, const char **why)
{
	git_reference *head = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref;
	git_odb *odb = NULL;
	int r = -1;

	if (!git_repository_is_bare(repo)) {
		*why = "not a bare repository";
		return -1;
	}
	if (!is_dir(path, "objects") || !is_dir(path, "refs")) {
		*why = "objects or refs directory missing";
		return -1;
	}
	if (git_reference_lookup(&head, repo, "HEAD") < 0) {
		*why = "HEAD is unreadable";
		return -1;
	}
	git_reference_free(head);
	if (git_repository_odb(&odb, repo) < 0) {
		*why = "object database is unreadable";
		return -1;
	}
	if (git_reference_iterator_glob_new(&it, repo, "refs/tagmoor/*") < 0) {
		*why = "refs are unreadable";
		goto out;
	}
	for (;;) {
		int e = git_reference_next(&ref, it);

		if (e == GIT_ITEROVER)
			break;
		if (e < 0) {
			*why = "refs are unreadable";
			goto out;
		}
		if (git_reference_type(ref) != GIT_REFERENCE_DIRECT ||
		    !git_odb_exists(odb, git_reference_target(ref))) {
			git_reference_free(ref);
			*why = "a tagmoor ref points to a missing object";
			goto out;
		}
		git_reference_free(ref);
	}
	r = 0;
out:
	git_reference_iterator_free(it);
	git_odb_free(odb);
	return r;
}

static int create_repo(git_repository **out, const char *path)
{
	git_repository_init_options o;

	git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		  GIT_REPOSITORY_INIT_NO_REINIT;
	o.mode = GIT_REPOSITORY_INIT_SHARED_UMASK;
	o.initial_head = "tagmoor";
	if (git_repository_init_ext(out, path, &o) < 0)
		return tmg_lg_error(TM_EIO, path);
	return 0;
}

int tmg_rebuild(git_repository **out, const char *path, const char *why)
{
	char aside[4096];
	const char *base = strrchr(path, '/');
	size_t bl;
	int n;

	base = base ? base + 1 : path;
	bl = strlen(base);
	/* Only ever delete what is ours: a directory named *.git. */
	if (bl < 5 || strcmp(base + bl - 4, ".git") != 0)
		return tm_error_set(
			TM_EIO,
			"%s: repository is broken (%s) and its name does not end in .git; "
			"not removing it",
			path, why);
	tm_log_warn("%s: repository is broken (%s); rebuilding it", path, why);
	n = snprintf(aside, sizeof(aside), "%s.broken", path);
	if (n < 0 || (size_t)n >= sizeof(aside))
		return tm_error_set(TM_EIO, "path too long: %.128s", path);
	if (tmg_remove_tree(aside) < 0 ||
	    (rename(path, aside) < 0 ? tmg_remove_contents(path) : tmg_remove_tree(aside)) < 0)
		return tm_error_set(TM_EIO, "%s: cannot remove the broken repository: %s", path,
				    strerror(errno));
	return create_repo(out, path);
}

/* An empty directory (made for the fetcher child by the privileged parent,
 * which never opens the repository) is a repository still to create. */
static int empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

int tm_git_open(struct tm_git **out, const char *repo_path)
{
	struct tm_git *g = NULL;
	git_repository *repo = NULL;
	struct stat st;
	const char *why = NULL;
	int r;

	*out = NULL;
	if ((r = tm_git_global_init()) < 0)
		return r;
	/* Only a directory named *.git is ours to clean (as for rebuild). */
	if (lstat(repo_path, &st) == 0 && S_ISDIR(st.st_mode) && tmg_ends_with(repo_path, ".git"))
		tmg_clear_stale(repo_path);
	if (lstat(repo_path, &st) < 0 ? 1 : S_ISDIR(st.st_mode) && empty_dir(repo_path)) {
		if (errno != ENOENT && !empty_dir(repo_path)) {
			r = tm_error_set(TM_EIO, "%s: %s", repo_path, strerror(errno));
			goto fail;
		}
		if ((r = create_repo(&repo, repo_path)) < 0)
			goto fail;
	} else if (git_repository_open_ext(&repo, repo_path,
					   GIT_REPOSITORY_OPEN_NO_SEARCH |
						   GIT_REPOSITORY_OPEN_BARE |
						   GIT_REPOSITORY_OPEN_NO_DOTGIT,
					   NULL) < 0) {
		repo = NULL;
		if ((r = tmg_rebuild(&repo, repo_path, "cannot be opened")) < 0)
			goto fail;
	} else if (check_repo(repo, repo_path, &why) < 0) {
		git_repository_free(repo);
		repo = NULL;
		if ((r = tmg_rebuild(&repo, repo_path, why)) < 0)
			goto fail;
	}
	g = calloc(1, sizeof(*g));
	if (!g || !(g->path = strdup(repo_path))) {
		r = tm_error_nomem();
		goto fail;
	}
	g->repo = repo;
	*out = g;
	return 0;
fail:
	if (g)
		free(g->path);
	free(g);
	git_repository_free(repo);
	tm_git_global_shutdown();
	return r;
}

void tm_git_free(struct tm_git *git)
{
	if (!git)
		return;
	for (size_t i = 0; i < git->nkept; i++)
		git_odb_object_free(git->kept[i]);
	free(git->kept);
	git_repository_free(git->repo);
	tmg_adv_drop(git);
	free(git->path);
	free(git);
	tm_git_global_shutdown();
}

/* --- objects -------------------------------------------------------------- */

void tm_git_hash_reads(int on)
{
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, on ? 1 : 0);
}

int tm_git_has_object(struct tm_git *git, const char *oid)
{
	git_oid id;
	git_odb *odb;
	int r;

	if ((r = tmg_parse_oid(&id, oid)) < 0)
		return r;
	if (git_repository_odb(&odb, git->repo) < 0)
		return tmg_lg_error(TM_EIO, git->path);
	r = git_odb_exists(odb, &id) ? 1 : 0;
	git_odb_free(odb);
	return r;
}

static int private_ref(const char *name)
{
	int ok = 0;

	if (!name || strncmp(name, "refs/tagmoor/", 13) != 0 ||
	    git_reference_name_is_valid(&ok, name) < 0 || !ok)
		return tm_error_set(TM_EUSAGE, "invalid private ref \"%.128s\"", name ? name : "");
	return 0;
}

int tm_git_set_ref(struct tm_git *git, const char *name, const char *oid)
{
	git_reference *ref = NULL;
	git_oid id;
	int r;

	if ((r = private_ref(name)) < 0 || (r = tmg_parse_oid(&id, oid)) < 0)
		return r;
	TM_FAULT("git.before-set-ref");
	if (git_reference_create(&ref, git->repo, name, &id, 1, "tagmoor") < 0)
		return tmg_lg_error(TM_EIO, name);
	git_reference_free(ref);
	return 0;
}

int tm_git_get_ref(char out_oid[41], struct tm_git *git, const char *name)
{
	git_oid id;
	int e;

	out_oid[0] = '\0';
	e = git_reference_name_to_id(&id, git->repo, name);
	if (e == GIT_ENOTFOUND)
		return tm_error_set(TM_ENOTFOUND, "ref %.128s does not exist", name);
	if (e < 0)
		return tmg_lg_error(TM_EIO, name);
	git_oid_tostr(out_oid, 41, &id);
	return 0;
}

/* Looks up an object of the given kinds, checking its size from the header
 * before inflating it: *out is the caller's (git_odb_object_free). */
static int lookup_object(git_odb_object **out, git_object_t *out_type, struct tm_git *git,
			 const char *oid, size_t max, int blob)
{
	git_odb *odb = NULL;
	git_odb_object *obj = NULL;
	git_object_t type;
	git_oid id;
	size_t len;
	int r, e;

	if ((r = tmg_parse_oid(&id, oid)) < 0)
		return r;
	if (git_repository_odb(&odb, git->repo) < 0)
		return tmg_lg_error(TM_EIO, git->path);
	e = git_odb_read_header(&len, &type, odb, &id);
	if (e == GIT_ENOTFOUND) {
		r = tm_error_set(TM_ENOTFOUND, "object %s not found", oid);
		goto out;
	}
	if (e < 0) {
		r = tmg_lg_error(TM_EIO, oid);
		goto out;
	}
	if (blob ? type != GIT_OBJECT_BLOB
		 : (type != GIT_OBJECT_COMMIT && type != GIT_OBJECT_TAG &&
		    type != GIT_OBJECT_TREE)) {
		r = tm_error_set(TM_EPARSE, "object %s is a %s, not a %s", oid,
				 git_object_type2string(type),
				 blob ? "blob" : "commit, tag or tree");
		goto out;
	}
	if (len > max) {
		r = tm_error_set(TM_ELIMIT, "object %s is %zu bytes, larger than the limit of %zu",
				 oid, len, max);
		goto out;
	}
	if (git_odb_read(&obj, odb, &id) < 0) {
		r = tmg_lg_error(TM_EIO, oid);
		goto out;
	}
	*out = obj;
	obj = NULL;
	*out_type = type;
	r = 0;
out:
	git_odb_object_free(obj);
	git_odb_free(odb);
	return r;
}

/* Reads an object of the given kinds into out (lookup_object's checks). */
static int read_object(struct tm_buf *out, git_object_t *out_type, struct tm_git *git,
		       const char *oid, size_t max, int blob)
{
	git_odb_object *obj = NULL;
	int r = lookup_object(&obj, out_type, git, oid, max, blob);

	if (r == 0)
		r = tm_buf_put(out, git_odb_object_data(obj), git_odb_object_size(obj));
	git_odb_object_free(obj);
	return r;
}

int tm_git_read_blob_kept(const char **data, size_t *len, struct tm_git *git, const char *blob_oid,
			  size_t max)
{
	git_odb_object *obj = NULL;
	git_object_t type;
	int r;

	*data = NULL;
	*len = 0;
	if (git->nkept == git->capkept) {
		size_t ncap = git->capkept ? git->capkept * 2 : 16;
		git_odb_object **nv = realloc(git->kept, ncap * sizeof(*nv));
		if (!nv)
			return tm_error_nomem();
		git->kept = nv;
		git->capkept = ncap;
	}
	if ((r = lookup_object(&obj, &type, git, blob_oid, max, 1)) < 0)
		return r;
	git->kept[git->nkept++] = obj;
	*data = git_odb_object_data(obj);
	*len = git_odb_object_size(obj);
	if (!*data)
		*data = "";
	return 0;
}

int tm_git_read_raw(struct tm_buf *out, int *out_type, struct tm_git *git, const char *oid)
{
	git_object_t type = GIT_OBJECT_INVALID;
	size_t max = out->max > 0 ? out->max - 1 : 0;
	int r;

	*out_type = 0;
	if ((r = read_object(out, &type, git, oid, max, 0)) < 0)
		return r;
	*out_type = type == GIT_OBJECT_TAG ? 't' : type == GIT_OBJECT_TREE ? 'T' : 'c';
	return 0;
}

int tm_git_blob_size(size_t *out, struct tm_git *git, const char *blob_oid)
{
	git_odb *odb = NULL;
	git_object_t type;
	git_oid id;
	int r, e;

	*out = 0;
	if ((r = tmg_parse_oid(&id, blob_oid)) < 0)
		return r;
	if (git_repository_odb(&odb, git->repo) < 0)
		return tmg_lg_error(TM_EIO, git->path);
	e = git_odb_read_header(out, &type, odb, &id);
	git_odb_free(odb);
	if (e == GIT_ENOTFOUND)
		return tm_error_set(TM_EIO, "blob %s is not in the object store", blob_oid);
	if (e < 0)
		return tmg_lg_error(TM_EIO, blob_oid);
	if (type != GIT_OBJECT_BLOB)
		return tm_error_set(TM_EPARSE, "object %s is a %s, not a blob", blob_oid,
				    git_object_type2string(type));
	return 0;
}

int tm_git_read_blob(struct tm_buf *out, struct tm_git *git, const char *blob_oid, size_t max)
{
	git_object_t type;
	int r = read_object(out, &type, git, blob_oid, max, 1);

	if (r == 0 && !out->ptr)
		r = tm_buf_put(out, "", 0);
	return r;
}

int tm_git_peel_commit(char out_oid[41], struct tm_git *git, const char *oid)
{
	git_object *obj = NULL, *peeled = NULL;
	git_oid id;
	int r, e;

	out_oid[0] = '\0';
	if ((r = tmg_parse_oid(&id, oid)) < 0)
		return r;
	e = git_object_lookup(&obj, git->repo, &id, GIT_OBJECT_ANY);
	if (e == GIT_ENOTFOUND)
		return tm_error_set(TM_ENOTFOUND, "object %s not found", oid);
	if (e < 0)
		return tmg_lg_error(TM_EIO, oid);
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		r = tmg_lg_error(TM_EPARSE, oid);
		goto out;
	}
	git_oid_tostr(out_oid, 41, git_object_id(peeled));
	r = 0;
out:
	git_object_free(peeled);
	git_object_free(obj);
	return r;
}
