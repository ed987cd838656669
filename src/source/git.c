/*
 * git.c — the source module: libgit2 for the repository, our own smart-HTTP
 * subtransport (on top of http.c / libcurl) for the network.
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
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/transport.h>
#if LIBGIT2_VER_MAJOR > 1 || (LIBGIT2_VER_MAJOR == 1 && LIBGIT2_VER_MINOR >= 8)
#include <git2/sys/errors.h> /* git_error_set_str moved here in 1.8 */
#endif

#define URL_MSG_MAX 256
#define TOKEN_MAX 4096
#define REQUEST_MAX (8u * 1024 * 1024) /* one negotiation request body */

/* The advertisement of the last tm_git_ls_remote, kept only when it showed
 * an object we do not have, i.e. when a fetch is about to follow: the fetch
 * replays it instead of asking again, so a poll is one advertisement. An idle
 * poll keeps nothing. */
#define ADV_CACHE_MAX (1024u * 1024)

struct tm_git {
	git_repository *repo;
	char *path;
	struct tm_buf adv;
	char *adv_url;
	uint64_t adv_ms;
};

static void adv_drop(struct tm_git *git)
{
	tm_buf_free(&git->adv);
	free(git->adv_url);
	git->adv_url = NULL;
}

/* --- libgit2 set-up ------------------------------------------------------ */

static int git_users;

int tm_git_global_init(void)
{
	int n = git_libgit2_init();

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

static int lg_error(int code, const char *what)
{
	const git_error *e = git_error_last();

	return tm_error_set(code, "%s: %s", what,
			    e && e->message ? e->message : "unknown libgit2 error");
}

static int parse_oid(git_oid *out, const char *s)
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

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

static int remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int is_dir(const char *base, const char *sub)
{
	char p[4096];
	struct stat st;
	int n = snprintf(p, sizeof(p), "%s/%s", base, sub);

	return n > 0 && (size_t)n < sizeof(p) && lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
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

static int ends_with(const char *s, const char *suffix)
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
		} else if (ends_with(de->d_name, ".lock")) {
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
		    (ends_with(name, ".pack") || ends_with(name, ".idx"))) {
			size_t stem = ends_with(name, ".pack") ? len - 5 : len - 4;

			k = snprintf(other, sizeof(other), "%s/%.*s%s", dir, (int)stem, name,
				     ends_with(name, ".pack") ? ".idx" : ".pack");
			keep = k > 0 && (size_t)k < sizeof(other) && access(other, F_OK) == 0;
		} else if (strncmp(name, "pack-", 5) == 0 &&
			   (ends_with(name, ".rev") || ends_with(name, ".bitmap"))) {
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

static void clear_stale(const char *path)
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

/* The content of a directory, the directory staying: the fetcher child may
 * write below repo.git but not in the state directory (docs/security.md), so
 * it rebuilds the repository in place when it cannot move it aside. */
static int remove_contents(const char *path)
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
		if (path_join(p, sizeof(p), path, e->d_name) < 0 || remove_tree(p) < 0)
			r = -1;
	}
	closedir(d);
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
		return lg_error(TM_EIO, path);
	return 0;
}

static int rebuild(git_repository **out, const char *path, const char *why)
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
	if (remove_tree(aside) < 0 ||
	    (rename(path, aside) < 0 ? remove_contents(path) : remove_tree(aside)) < 0)
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
	if (lstat(repo_path, &st) == 0 && S_ISDIR(st.st_mode) && ends_with(repo_path, ".git"))
		clear_stale(repo_path);
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
		if ((r = rebuild(&repo, repo_path, "cannot be opened")) < 0)
			goto fail;
	} else if (check_repo(repo, repo_path, &why) < 0) {
		git_repository_free(repo);
		repo = NULL;
		if ((r = rebuild(&repo, repo_path, why)) < 0)
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
	git_repository_free(git->repo);
	adv_drop(git);
	free(git->path);
	free(git);
	tm_git_global_shutdown();
}

/* --- pack limits: what the indexer would inflate --------------------------- *
 *
 * max_fetch bounds the bytes on the wire, not what libgit2's indexer inflates
 * from them: one blob of 2 GiB of zeros deflates to 2 MiB, and a delta of a
 * few bytes can declare (and make the indexer build in memory) an object of
 * any size. So the pack is read as it arrives, before libgit2 sees a byte of
 * it: the pkt-line framing and side-band of the upload-pack response are
 * followed to the pack, each entry's header gives the object's inflated size
 * (for a delta: the size of the delta data, and the first bytes of that data
 * give the size of the object it builds). The limits of git.h
 * (TM_GIT_MAX_PACK_OBJECTS, one object <= max_fetch, all of them <=
 * TM_GIT_INFLATE_FACTOR x max_fetch and <= TM_GIT_MAX_INFLATED) are checked
 * against the declared sizes before the entry is inflated, so a bomb is
 * refused at its header.
 *
 * To find where one entry ends and the next begins the deflate streams must be
 * decoded, so this holds a small DEFLATE decoder (after zlib's puff.c) that
 * decodes symbols and counts output bytes without producing the output (only
 * the first 32 bytes of a delta are kept). An entry may not inflate to more
 * than its header declared. The decoder is resumable: every step (a header,
 * one symbol, a run of stored bytes) either completes or is rolled back to
 * its start and retried when more bytes arrive; at most a dynamic block header
 * (a few hundred bytes) is ever held back. */

#define SCAN_HEAD 32 /* first bytes of a delta kept: two size varints */
#define SCAN_PENDING_MAX 4096

#define FAST_BITS 10 /* codes up to this long are decoded by one table lookup */

struct huff {
	short count[16];
	short symbol[320];
	struct {
		unsigned short sym;
		unsigned char len;
	} fast[1u << FAST_BITS];
};

enum {
	PS_HDR,
	PS_ENTRY,
	PS_OFS,
	PS_REF,
	PS_ZHDR,
	PS_BLOCK,
	PS_STORED,
	PS_HUFF,
	PS_ADLER,
	PS_TRAILER,
	PS_DONE
};

struct packscan {
	const char *url;
	uint64_t obj_max, total_max, total;
	int state;
	unsigned char *in; /* pending bytes from the last checkpoint, then new ones */
	size_t len, cap, pos;
	uint64_t bitbuf;
	int bitcnt;
	uint32_t nobjects, done;
	/* the current entry */
	int type, final;
	uint64_t size, zout, stored_left, result;
	int result_known;
	unsigned char head[SCAN_HEAD];
	struct huff lencode, distcode;
};

static int ps_malformed(struct packscan *p, const char *what)
{
	return tm_error_set(TM_ESOURCE, "%s: malformed pack from the server (object %u of %u: %s)",
			    p->url, p->done + 1, p->nobjects, what);
}

/* 0 with n bits in *out, 1 when the input ran out. */
static int ps_bits(struct packscan *p, int n, unsigned *out)
{
	while (p->bitcnt < n) {
		if (p->pos == p->len)
			return 1;
		p->bitbuf |= (uint64_t)p->in[p->pos++] << p->bitcnt;
		p->bitcnt += 8;
	}
	*out = (unsigned)(p->bitbuf & ((1ull << n) - 1));
	p->bitbuf >>= n;
	p->bitcnt -= n;
	return 0;
}

#define NEED(e)                       \
	do {                          \
		int need_ = (e);      \
		if (need_)            \
			return need_; \
	} while (0)

static int ps_bytes(struct packscan *p, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned b;

		NEED(ps_bits(p, 8, &b));
		if (out)
			out[i] = (unsigned char)b;
	}
	return 0;
}

static int huff_build(struct huff *h, const short *length, int n)
{
	short offs[16];
	int left = 1;

	memset(h->count, 0, sizeof(h->count));
	memset(h->fast, 0, sizeof(h->fast));
	for (int s = 0; s < n; s++)
		h->count[length[s]]++;
	if (h->count[0] == n)
		return 0;
	for (int l = 1; l < 16; l++) {
		left <<= 1;
		left -= h->count[l];
		if (left < 0)
			return -1;
	}
	offs[1] = 0;
	for (int l = 1; l < 15; l++)
		offs[l + 1] = (short)(offs[l] + h->count[l]);
	for (int s = 0; s < n; s++)
		if (length[s])
			h->symbol[offs[length[s]]++] = (short)s;
	/* the lookup table: canonical codes, bit-reversed (deflate sends them
	 * most significant bit first into a least-significant-first stream) */
	{
		unsigned code = 0;
		int index = 0;

		for (int l = 1; l <= FAST_BITS; l++) {
			for (int i = 0; i < h->count[l]; i++, code++) {
				unsigned rev = 0;

				for (int b = 0; b < l; b++)
					rev |= ((code >> b) & 1u) << (l - 1 - b);
				for (unsigned fill = 0; fill < (1u << (FAST_BITS - l)); fill++) {
					h->fast[rev | (fill << l)].sym =
						(unsigned short)h->symbol[index + i];
					h->fast[rev | (fill << l)].len = (unsigned char)l;
				}
			}
			index += h->count[l];
			code <<= 1;
		}
	}
	return left;
}

/* 0 and *sym, 1 for more input, TM_ESOURCE on an invalid code. */
static int huff_decode(struct packscan *p, const struct huff *h, int *sym)
{
	int code = 0, first = 0, index = 0;

	while (p->bitcnt < FAST_BITS && p->pos < p->len) {
		p->bitbuf |= (uint64_t)p->in[p->pos++] << p->bitcnt;
		p->bitcnt += 8;
	}
	if (p->bitcnt >= FAST_BITS) {
		unsigned look = (unsigned)(p->bitbuf & ((1u << FAST_BITS) - 1));

		if (h->fast[look].len) {
			*sym = h->fast[look].sym;
			p->bitbuf >>= h->fast[look].len;
			p->bitcnt -= h->fast[look].len;
			return 0;
		}
	}

	for (int l = 1; l < 16; l++) {
		unsigned b;
		int count = h->count[l];

		NEED(ps_bits(p, 1, &b));
		code |= (int)b;
		if (code - count < first) {
			*sym = h->symbol[index + (code - first)];
			return 0;
		}
		index += count;
		first += count;
		first <<= 1;
		code <<= 1;
	}
	return ps_malformed(p, "invalid deflate code");
}

/* The size limits, against what the entry declared. */
static int ps_account(struct packscan *p, uint64_t n, int object, const char *what)
{
	if (object && n > p->obj_max)
		return tm_error_set(TM_ELIMIT,
				    "%s: object %u of the pack %s %llu bytes, more than max_fetch "
				    "(%llu bytes) allows for one object; fetch refused",
				    p->url, p->done + 1, what, (unsigned long long)n,
				    (unsigned long long)p->obj_max);
	if (n > p->total_max - p->total)
		return tm_error_set(
			TM_ELIMIT,
			"%s: the pack inflates to more than %llu bytes (%d x max_fetch, "
			"at most %llu; object %u of %u %s %llu bytes); fetch refused",
			p->url, (unsigned long long)p->total_max, TM_GIT_INFLATE_FACTOR,
			(unsigned long long)TM_GIT_MAX_INFLATED, p->done + 1, p->nobjects, what,
			(unsigned long long)n);
	p->total += n;
	return 0;
}

/* n bytes of output (byte b when literal, else a copy from dist back). */
static int ps_out(struct packscan *p, uint64_t n, int literal, unsigned dist,
		  const unsigned char *raw)
{
	if (n > p->size - p->zout)
		return ps_malformed(p, "inflates to more than its header declares");
	for (uint64_t i = 0; i < n && p->zout + i < SCAN_HEAD; i++) {
		uint64_t at = p->zout + i;

		p->head[at] = raw            ? raw[i]
			      : literal >= 0 ? (unsigned char)literal
					     : p->head[at - dist];
	}
	p->zout += n;
	if ((p->type == 6 || p->type == 7) && !p->result_known) {
		/* a delta starts with two varints: base size, result size */
		uint64_t v[2] = { 0, 0 };
		size_t i = 0;

		for (int k = 0; k < 2; k++) {
			int shift = 0;

			for (;;) {
				if (i >= p->zout || i >= SCAN_HEAD) {
					if (p->zout >= SCAN_HEAD)
						return ps_malformed(p, "delta sizes too long");
					return 0; /* not all there yet */
				}
				if (shift > 56)
					return ps_malformed(p, "delta sizes too long");
				v[k] |= (uint64_t)(p->head[i] & 0x7f) << shift;
				shift += 7;
				if (!(p->head[i++] & 0x80))
					break;
			}
		}
		p->result_known = 1;
		p->result = v[1];
		return ps_account(p, v[1], 1, "is a delta that builds an object of");
	}
	return 0;
}

static const short lbase[29] = { 3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
				 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const short lext[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
				2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const short dbase[30] = { 1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
				 33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
				 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const short dext[30] = { 0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
				6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };

static int ps_dynamic(struct packscan *p)
{
	static const short order[19] = { 16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
					 11, 4,  12, 3, 13, 2, 14, 1, 15 };
	short lengths[320];
	unsigned nlen, ndist, ncode, v;
	int index = 0, err;

	NEED(ps_bits(p, 5, &nlen));
	NEED(ps_bits(p, 5, &ndist));
	NEED(ps_bits(p, 4, &ncode));
	nlen += 257;
	ndist += 1;
	ncode += 4;
	if (nlen > 286 || ndist > 30)
		return ps_malformed(p, "bad deflate block header");
	for (int i = 0; i < 19; i++) {
		v = 0;
		if ((unsigned)i < ncode)
			NEED(ps_bits(p, 3, &v));
		lengths[order[i]] = (short)v;
	}
	if (huff_build(&p->lencode, lengths, 19) != 0)
		return ps_malformed(p, "bad deflate code lengths");
	while ((unsigned)index < nlen + ndist) {
		int sym, len = 0;
		unsigned rep;

		NEED(huff_decode(p, &p->lencode, &sym));
		if (sym < 16) {
			lengths[index++] = (short)sym;
			continue;
		}
		if (sym == 16) {
			if (index == 0)
				return ps_malformed(p, "bad deflate code lengths");
			len = lengths[index - 1];
			NEED(ps_bits(p, 2, &rep));
			rep += 3;
		} else if (sym == 17) {
			NEED(ps_bits(p, 3, &rep));
			rep += 3;
		} else {
			NEED(ps_bits(p, 7, &rep));
			rep += 11;
		}
		if (index + rep > nlen + ndist)
			return ps_malformed(p, "bad deflate code lengths");
		while (rep--)
			lengths[index++] = (short)len;
	}
	if (lengths[256] == 0)
		return ps_malformed(p, "deflate block without an end code");
	err = huff_build(&p->lencode, lengths, (int)nlen);
	if (err < 0 || (err > 0 && (int)nlen - p->lencode.count[0] != 1))
		return ps_malformed(p, "bad deflate literal/length code");
	err = huff_build(&p->distcode, lengths + nlen, (int)ndist);
	if (err < 0 || (err > 0 && (int)ndist - p->distcode.count[0] != 1))
		return ps_malformed(p, "bad deflate distance code");
	return 0;
}

static void ps_fixed(struct packscan *p)
{
	short l[320];
	int s;

	for (s = 0; s < 144; s++)
		l[s] = 8;
	for (; s < 256; s++)
		l[s] = 9;
	for (; s < 280; s++)
		l[s] = 7;
	for (; s < 288; s++)
		l[s] = 8;
	huff_build(&p->lencode, l, 288);
	for (s = 0; s < 30; s++)
		l[s] = 5;
	huff_build(&p->distcode, l, 30);
}

/* One symbol of a Huffman block: 0 done, 1 more input needed, negative:
 * refused. */
static int ps_symbol(struct packscan *p)
{
	int sym, ds;
	unsigned e, len, dist;

	NEED(huff_decode(p, &p->lencode, &sym));
	if (sym < 256) {
		if (p->zout >= SCAN_HEAD && p->zout < p->size) { /* the common case, inline */
			p->zout++;
			return 0;
		}
		return ps_out(p, 1, sym, 0, NULL);
	}
	if (sym == 256) {
		p->state = p->final ? PS_ADLER : PS_BLOCK;
		return 0;
	}
	sym -= 257;
	if (sym >= 29)
		return ps_malformed(p, "bad deflate length code");
	NEED(ps_bits(p, lext[sym], &e));
	len = (unsigned)lbase[sym] + e;
	NEED(huff_decode(p, &p->distcode, &ds));
	if (ds >= 30)
		return ps_malformed(p, "bad deflate distance code");
	NEED(ps_bits(p, dext[ds], &e));
	dist = (unsigned)dbase[ds] + e;
	if (dist > p->zout)
		return ps_malformed(p, "deflate distance too far back");
	return ps_out(p, len, -1, dist, NULL);
}

/* One step: 0 done (state advanced), 1 more input needed (nothing
 * consumed), negative: refused. */
static int ps_step(struct packscan *p)
{
	unsigned char b[20];
	unsigned v;

	switch (p->state) {
	case PS_HDR:
		NEED(ps_bytes(p, b, 12));
		if (memcmp(b, "PACK", 4) != 0 || b[4] || b[5] || b[6] || (b[7] != 2 && b[7] != 3))
			return tm_error_set(TM_ESOURCE,
					    "%s: malformed pack from the server (bad header)",
					    p->url);
		p->nobjects = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 |
			      b[11];
		if (p->nobjects > TM_GIT_MAX_PACK_OBJECTS)
			return tm_error_set(
				TM_ELIMIT,
				"%s: the pack holds %u objects, more than %u; fetch refused",
				p->url, p->nobjects, TM_GIT_MAX_PACK_OBJECTS);
		p->state = p->nobjects ? PS_ENTRY : PS_TRAILER;
		return 0;
	case PS_ENTRY: {
		uint64_t size;
		int shift = 4;

		NEED(ps_bits(p, 8, &v));
		p->type = (int)(v >> 4) & 7;
		size = v & 15;
		while (v & 0x80) {
			NEED(ps_bits(p, 8, &v));
			if (shift > 57)
				return ps_malformed(p, "size too long");
			size |= (uint64_t)(v & 0x7f) << shift;
			shift += 7;
		}
		if (p->type == 0 || p->type == 5)
			return ps_malformed(p, "invalid object type");
		p->size = size;
		p->zout = 0;
		p->result_known = 0;
		p->state = p->type == 6 ? PS_OFS : p->type == 7 ? PS_REF : PS_ZHDR;
		if (p->type == 6 || p->type == 7)
			return ps_account(p, size, 1, "has delta data of");
		return ps_account(p, size, 1, "inflates to");
	}
	case PS_OFS:
		for (int i = 0;; i++) {
			NEED(ps_bits(p, 8, &v));
			if (i > 9)
				return ps_malformed(p, "delta offset too long");
			if (!(v & 0x80))
				break;
		}
		p->state = PS_ZHDR;
		return 0;
	case PS_REF:
		NEED(ps_bytes(p, NULL, 20));
		p->state = PS_ZHDR;
		return 0;
	case PS_ZHDR:
		NEED(ps_bytes(p, b, 2));
		if ((b[0] & 0x0f) != 8 || (b[0] >> 4) > 7 ||
		    ((unsigned)b[0] << 8 | b[1]) % 31 != 0 || (b[1] & 0x20))
			return ps_malformed(p, "bad zlib header");
		p->state = PS_BLOCK;
		return 0;
	case PS_BLOCK: {
		unsigned fin, type;

		NEED(ps_bits(p, 1, &fin));
		NEED(ps_bits(p, 2, &type));
		p->final = (int)fin;
		if (type == 0) {
			unsigned char l[4];

			p->bitbuf >>= p->bitcnt & 7;
			p->bitcnt -= p->bitcnt & 7;
			NEED(ps_bytes(p, l, 4));
			if ((l[0] ^ l[2]) != 0xff || (l[1] ^ l[3]) != 0xff)
				return ps_malformed(p, "bad stored block");
			p->stored_left = (uint64_t)l[0] | (uint64_t)l[1] << 8;
			p->state = PS_STORED;
			return 0;
		}
		if (type == 3)
			return ps_malformed(p, "bad deflate block type");
		if (type == 1)
			ps_fixed(p);
		else
			NEED(ps_dynamic(p));
		p->state = PS_HUFF;
		return 0;
	}
	case PS_STORED: {
		size_t n;
		int r;

		if (p->stored_left == 0) {
			p->state = p->final ? PS_ADLER : PS_BLOCK;
			return 0;
		}
		/* byte aligned; whole bytes looked ahead sit in the bit buffer */
		if (p->bitcnt >= 8) {
			unsigned char c = (unsigned char)p->bitbuf;

			if ((r = ps_out(p, 1, -1, 0, &c)) < 0)
				return r;
			p->bitbuf >>= 8;
			p->bitcnt -= 8;
			p->stored_left--;
			return 0;
		}
		n = p->len - p->pos;
		if (n == 0)
			return 1;
		if (n > p->stored_left)
			n = (size_t)p->stored_left;
		if ((r = ps_out(p, n, -1, 0, p->in + p->pos)) < 0)
			return r;
		p->pos += n;
		p->stored_left -= n;
		return 0;
	}
	case PS_HUFF:
		/* symbols until the block ends or the input runs out; each one is
		 * complete or rolled back by itself */
		for (int done = 0;; done = 1) {
			size_t cp_pos = p->pos;
			uint64_t cp_bitbuf = p->bitbuf;
			int cp_bitcnt = p->bitcnt, r = ps_symbol(p);

			if (r == 1) {
				p->pos = cp_pos;
				p->bitbuf = cp_bitbuf;
				p->bitcnt = cp_bitcnt;
				return done ? 0 : 1;
			}
			if (r < 0)
				return r;
			if (p->state != PS_HUFF)
				return 0;
		}
	case PS_ADLER:
		p->bitbuf >>= p->bitcnt & 7;
		p->bitcnt -= p->bitcnt & 7;
		NEED(ps_bytes(p, NULL, 4));
		if (p->zout != p->size)
			return ps_malformed(p, "inflates to less than its header declares");
		if ((p->type == 6 || p->type == 7) && !p->result_known)
			return ps_malformed(p, "delta without sizes");
		p->state = ++p->done == p->nobjects ? PS_TRAILER : PS_ENTRY;
		return 0;
	case PS_TRAILER:
		NEED(ps_bytes(p, NULL, 20));
		p->state = PS_DONE;
		return 0;
	default:
		if (p->pos < p->len || p->bitcnt)
			return tm_error_set(
				TM_ESOURCE,
				"%s: malformed pack from the server (data after its end)", p->url);
		return 1;
	}
}

#undef NEED

/* Feeds n bytes of pack data. */
static int ps_feed(struct packscan *p, const void *data, size_t n)
{
	if (n > SIZE_MAX - p->len - 1)
		return tm_error_nomem();
	if (p->len + n > p->cap) {
		size_t ncap = p->len + n + 1024;
		unsigned char *nb = realloc(p->in, ncap);

		if (!nb)
			return tm_error_nomem();
		p->in = nb;
		p->cap = ncap;
	}
	memcpy(p->in + p->len, data, n);
	p->len += n;
	for (;;) {
		size_t cp_pos = p->pos;
		uint64_t cp_bitbuf = p->bitbuf;
		int cp_bitcnt = p->bitcnt, r = ps_step(p);

		if (r < 0)
			return r;
		if (r == 1) {
			/* roll back to the step's start and keep its bytes */
			p->pos = cp_pos;
			p->bitbuf = cp_bitbuf;
			p->bitcnt = cp_bitcnt;
			break;
		}
	}
	memmove(p->in, p->in + p->pos, p->len - p->pos);
	p->len -= p->pos;
	p->pos = 0;
	if (p->len > SCAN_PENDING_MAX)
		return tm_error_set(TM_ESOURCE,
				    "%s: malformed pack from the server (undecodable data)",
				    p->url);
	if (p->cap > 2 * SCAN_PENDING_MAX + 256 * 1024) { /* do not keep a large buffer around */
		unsigned char *nb = realloc(p->in, SCAN_PENDING_MAX);

		if (nb) {
			p->in = nb;
			p->cap = SCAN_PENDING_MAX;
		}
	}
	return 0;
}

/* The upload-pack response around the pack: pkt-lines (ACK/NAK, side-band
 * channels 1 = pack data, 2 = progress, 3 = error) or, without side-band, the
 * raw pack after the last pkt-line. One per response stream. */
struct pktscan {
	unsigned char lenbuf[4];
	int lenhave, raw, first;
	size_t remain;
	int band;
};

static int pkt_feed(struct pktscan *k, struct packscan *p, const unsigned char *d, size_t n)
{
	int r;

	while (n > 0) {
		if (k->raw)
			return ps_feed(p, d, n);
		if (k->remain == 0) {
			unsigned len = 0;

			k->lenbuf[k->lenhave++] = *d++;
			n--;
			if (k->lenhave < 4)
				continue;
			k->lenhave = 0;
			if (memcmp(k->lenbuf, "PACK", 4) == 0) {
				k->raw = 1;
				if ((r = ps_feed(p, "PACK", 4)) < 0)
					return r;
				continue;
			}
			for (int i = 0; i < 4; i++) {
				unsigned c = k->lenbuf[i];

				len <<= 4;
				if (c >= '0' && c <= '9')
					len |= c - '0';
				else if (c >= 'a' && c <= 'f')
					len |= c - 'a' + 10;
				else if (c >= 'A' && c <= 'F')
					len |= c - 'A' + 10;
				else
					return tm_error_set(
						TM_ESOURCE,
						"%s: malformed response from the server (bad "
						"pkt-line)",
						p->url);
			}
			if (len < 4)
				continue; /* flush, delimiter, response end */
			k->remain = len - 4;
			k->first = 1;
			continue;
		}
		if (k->first) {
			k->band = *d;
			k->first = 0;
			d++;
			n--;
			k->remain--;
			continue;
		}
		{
			size_t m = n < k->remain ? n : k->remain;

			if (k->band == 1 && (r = ps_feed(p, d, m)) < 0)
				return r;
			d += m;
			n -= m;
			k->remain -= m;
		}
	}
	return 0;
}

/* --- one network operation ----------------------------------------------- */

struct xfer {
	const struct tm_git_source *src;
	struct tm_http *http;
	char url[URL_MSG_MAX]; /* redacted, for messages */
	uint64_t max, used;    /* bytes received across all requests */
	uint64_t timeout_ms;
	int code; /* our error, once described with tm_error_set */
	git_smart_subtransport_definition def;
	struct tm_buf *record; /* ls_remote: keep the advertisement here */
	int record_full;
	const struct tm_buf *replay; /* fetch: serve the advertisement from here */
	struct packscan *scan;       /* fetch: the pack as it arrives, against the pack limits */
};

struct sub {
	git_smart_subtransport parent;
	struct xfer *x;
};

struct gstream {
	git_smart_subtransport_stream parent;
	struct xfer *x;
	git_smart_service_t service;
	char *url;
	struct tm_buf req;
	struct tm_http_stream *hs;
	size_t replay_off;
	struct pktscan pk;
};

/* Records our error for the operation and hands libgit2 a copy. */
static int xfail(struct xfer *x, int code)
{
	if (!x->code)
		x->code = code;
	git_error_set_str(GIT_ERROR_NET, tm_error_last());
	return -1;
}

static int url_has_userinfo(const char *url)
{
	const char *a = strstr(url, "://");
	size_t n;

	a = a ? a + 3 : url;
	n = strcspn(a, "/?#");
	return memchr(a, '@', n) != NULL;
}

static int read_token(struct tm_http_opts *o, struct tm_buf *tok, const char *path)
{
	char *colon;
	size_t n;
	int r;

	tm_buf_init(tok, TOKEN_MAX + 1);
	if ((r = tm_file_read(tok, path, TOKEN_MAX)) < 0)
		return tm_error_wrap(r == TM_ENOTFOUND || r == TM_EIO || r == TM_ELIMIT ? TM_ECONFIG
											: r,
				     "token_file");
	n = tok->len;
	while (n > 0 && (tok->ptr[n - 1] == '\n' || tok->ptr[n - 1] == '\r' ||
			 tok->ptr[n - 1] == ' ' || tok->ptr[n - 1] == '\t'))
		tok->ptr[--n] = '\0';
	tok->len = n;
	if (n == 0)
		return tm_error_set(TM_ECONFIG, "token_file %s is empty", path);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)tok->ptr[i] < 0x20 || tok->ptr[i] == 0x7f)
			return tm_error_set(
				TM_ECONFIG,
				"token_file %s: one line expected, without control characters",
				path);
	colon = strchr(tok->ptr, ':');
	if (colon) {
		*colon = '\0';
		o->username = tok->ptr;
		o->password = colon + 1;
	} else {
		o->bearer_token = tok->ptr;
	}
	return 0;
}

static int xfer_init(struct xfer *x, const struct tm_git_source *src)
{
	struct tm_http_opts o = { 0 };
	struct tm_buf tok;
	int r;

	memset(x, 0, sizeof(*x));
	tm_buf_init(&tok, 1);
	if (!src || !src->url || !*src->url)
		return tm_error_set(TM_ECONFIG, "source url is not set");
	tm_http_redact_url(x->url, sizeof(x->url), src->url);
	if (strncmp(src->url, "https://", 8) != 0)
		return tm_error_set(TM_ECONFIG, "%s: only https:// source URLs are supported",
				    x->url);
	if (url_has_userinfo(src->url))
		return tm_error_set(
			TM_ECONFIG,
			"%s: the source url must not carry credentials (use token_file)", x->url);
	x->src = src;
	x->timeout_ms = src->timeout_ms ? src->timeout_ms : TM_GIT_DEFAULT_TIMEOUT_MS;
	x->max = src->max_fetch ? src->max_fetch : TM_GIT_DEFAULT_MAX_FETCH;
	o.ca_file = src->ca_file && *src->ca_file ? src->ca_file : NULL;
	o.connect_timeout_ms = x->timeout_ms;
	o.idle_timeout_ms = x->timeout_ms;
	o.max_response = x->max;
	if (src->token_file && *src->token_file && (r = read_token(&o, &tok, src->token_file)) < 0)
		goto out;
	r = tm_http_new(&x->http, &o);
out:
	tm_buf_free_secret(&tok);
	return r;
}

static void xfer_free(struct xfer *x)
{
	tm_http_free(x->http);
	x->http = NULL;
	if (x->scan)
		free(x->scan->in);
	free(x->scan);
	x->scan = NULL;
}

/* Bytes of the upload-pack response, before libgit2 sees them. */
static int scan_response(struct gstream *s, const char *buf, size_t n)
{
	struct xfer *x = s->x;

	if (!x->scan) {
		if (!(x->scan = calloc(1, sizeof(*x->scan))))
			return tm_error_nomem();
		x->scan->url = x->url;
		x->scan->obj_max = x->max;
		x->scan->total_max = x->max > TM_GIT_MAX_INFLATED / TM_GIT_INFLATE_FACTOR
					     ? TM_GIT_MAX_INFLATED
					     : x->max * TM_GIT_INFLATE_FACTOR;
	}
	return pkt_feed(&s->pk, x->scan, (const unsigned char *)buf, n);
}

/* libgit2 asks for include-tag whenever the server offers it: the pack then also carries
 * every annotated tag pointing into the history it sends (every older release tag), none
 * of which tagmoor asked for or keeps, so each prune had to rewrite the fetched pack to drop
 * them. The capability leaves the first want line (and its pkt-line length) here. */
static void drop_include_tag(struct tm_buf *req)
{
	static const char cap[] = " include-tag";
	const size_t cl = sizeof(cap) - 1;
	unsigned len = 0;
	char hex[5];

	if (req->len < 4 || sscanf(req->ptr, "%4x", &len) != 1 || len < 4 || len > req->len)
		return;
	for (size_t i = 4; i + cl <= len; i++) {
		char after = i + cl < len ? req->ptr[i + cl] : '\n';

		if (memcmp(req->ptr + i, cap, cl) != 0 || (after != ' ' && after != '\n'))
			continue;
		memmove(req->ptr + i, req->ptr + i + cl, req->len - i - cl);
		req->len -= cl;
		req->ptr[req->len] = '\0';
		snprintf(hex, sizeof(hex), "%04x", len - (unsigned)cl);
		memcpy(req->ptr, hex, 4);
		return;
	}
}

static int gs_start(struct gstream *s)
{
	struct xfer *x = s->x;
	struct tm_http_request req = { 0 };
	const char *want_type;
	long st;
	int r;

	if (x->used >= x->max) {
		tm_error_set(TM_ELIMIT, "%s: fetch larger than max_fetch (%llu bytes); aborted",
			     x->url, (unsigned long long)x->max);
		return xfail(x, TM_ELIMIT);
	}
	req.url = s->url;
	req.max_response = x->max - x->used;
	if (s->service == GIT_SERVICE_UPLOADPACK_LS) {
		req.method = "GET";
		/* The advertisement is small: the whole request is bounded too. */
		req.total_timeout_ms = x->timeout_ms;
		want_type = "application/x-git-upload-pack-advertisement";
	} else {
		req.method = "POST";
		drop_include_tag(&s->req);
		req.content_type = "application/x-git-upload-pack-request";
		req.accept = "application/x-git-upload-pack-result";
		req.body = s->req.ptr;
		req.body_len = s->req.len;
		want_type = "application/x-git-upload-pack-result";
	}
	if ((r = tm_http_stream_open(&s->hs, x->http, &req)) < 0)
		return xfail(x, r == TM_ELIMIT ? TM_ELIMIT : TM_ESOURCE);
	st = tm_http_stream_status(s->hs);
	if (st == 401 || st == 403) {
		tm_error_set(TM_ESOURCE, "%s: authentication failed (HTTP %ld)%s", x->url, st,
			     x->src->token_file ? "" : "; no token_file is configured");
		return xfail(x, TM_ESOURCE);
	}
	if (st == 404) {
		tm_error_set(TM_ESOURCE, "%s: repository not found (HTTP 404)", x->url);
		return xfail(x, TM_ESOURCE);
	}
	if (st != 200) {
		tm_error_set(TM_ESOURCE, "%s: HTTP %ld", x->url, st);
		return xfail(x, TM_ESOURCE);
	}
	if (strncmp(tm_http_stream_content_type(s->hs), want_type, strlen(want_type)) != 0) {
		tm_error_set(TM_ESOURCE, "%s: not a smart git HTTP server (Content-Type \"%.64s\")",
			     x->url, tm_http_stream_content_type(s->hs));
		return xfail(x, TM_ESOURCE);
	}
	return 0;
}

static int gs_read(git_smart_subtransport_stream *stream, char *buf, size_t len, size_t *out_n)
{
	struct gstream *s = (struct gstream *)stream;
	struct xfer *x = s->x;
	uint64_t before;
	int r;

	*out_n = 0;
	if (x->code)
		return xfail(x, x->code);
	if (s->service == GIT_SERVICE_UPLOADPACK_LS && x->replay) {
		size_t left = x->replay->len - s->replay_off;

		*out_n = left < len ? left : len;
		memcpy(buf, x->replay->ptr + s->replay_off, *out_n);
		s->replay_off += *out_n;
		return 0;
	}
	if (!s->hs && gs_start(s) < 0)
		return -1;
	before = tm_http_stream_received(s->hs);
	r = tm_http_stream_read(s->hs, buf, len, out_n);
	TM_FAULT("git.pack-reading");
	x->used += tm_http_stream_received(s->hs) - before;
	if (r == 0 && *out_n && s->service == GIT_SERVICE_UPLOADPACK_LS && x->record &&
	    !x->record_full) {
		if (*out_n > ADV_CACHE_MAX - 1 - x->record->len)
			x->record_full = 1;
		else if (tm_buf_put(x->record, buf, *out_n) < 0)
			x->record_full = 1;
	}
	if (r == TM_ELIMIT) {
		tm_error_set(TM_ELIMIT, "%s: fetch larger than max_fetch (%llu bytes); aborted",
			     x->url, (unsigned long long)x->max);
		return xfail(x, TM_ELIMIT);
	}
	if (r < 0)
		return xfail(x, r);
	if (*out_n && s->service == GIT_SERVICE_UPLOADPACK &&
	    (r = scan_response(s, buf, *out_n)) < 0) {
		*out_n = 0;
		return xfail(x, r);
	}
	return 0;
}

static int gs_write(git_smart_subtransport_stream *stream, const char *buf, size_t len)
{
	struct gstream *s = (struct gstream *)stream;
	int r;

	if (s->service != GIT_SERVICE_UPLOADPACK) {
		tm_error_set(TM_ESOURCE, "%s: unexpected write on the advertisement", s->x->url);
		return xfail(s->x, TM_ESOURCE);
	}
	if (s->hs) {
		tm_error_set(TM_ESOURCE, "%s: write after the request was sent", s->x->url);
		return xfail(s->x, TM_ESOURCE);
	}
	if ((r = tm_buf_put(&s->req, buf, len)) < 0)
		return xfail(s->x, r);
	return 0;
}

static void gs_free(git_smart_subtransport_stream *stream)
{
	struct gstream *s = (struct gstream *)stream;

	if (!s)
		return;
	tm_http_stream_free(s->hs);
	tm_buf_free(&s->req);
	free(s->url);
	free(s);
}

static int sub_action(git_smart_subtransport_stream **out, git_smart_subtransport *t,
		      const char *url, git_smart_service_t action)
{
	struct sub *sub = (struct sub *)t;
	struct xfer *x = sub->x;
	struct gstream *s;
	struct tm_buf u;
	size_t ul = strlen(url);
	const char *suffix;

	*out = NULL;
	if (action == GIT_SERVICE_UPLOADPACK_LS) {
		suffix = "/info/refs?service=git-upload-pack";
	} else if (action == GIT_SERVICE_UPLOADPACK) {
		suffix = "/git-upload-pack";
	} else {
		tm_error_set(TM_ESOURCE, "%s: push is not supported", x->url);
		return xfail(x, TM_ESOURCE);
	}
	while (ul > 0 && url[ul - 1] == '/')
		ul--;
	tm_buf_init(&u, 8192);
	s = calloc(1, sizeof(*s));
	if (!s || tm_buf_put(&u, url, ul) < 0 || tm_buf_puts(&u, suffix) < 0) {
		free(s);
		tm_buf_free(&u);
		tm_error_set(TM_ENOMEM, "out of memory or URL too long");
		return xfail(x, TM_ENOMEM);
	}
	s->parent.subtransport = t;
	s->parent.read = gs_read;
	s->parent.write = gs_write;
	s->parent.free = gs_free;
	s->x = x;
	s->service = action;
	s->url = tm_buf_detach(&u);
	tm_buf_init(&s->req, REQUEST_MAX);
	*out = &s->parent;
	return 0;
}

static int sub_close(git_smart_subtransport *t)
{
	(void)t;
	return 0;
}

static void sub_free(git_smart_subtransport *t)
{
	free(t);
}

static int make_sub(git_smart_subtransport **out, git_transport *owner, void *param)
{
	struct sub *s = calloc(1, sizeof(*s));

	(void)owner;
	*out = NULL;
	if (!s) {
		git_error_set_oom();
		return -1;
	}
	s->parent.action = sub_action;
	s->parent.close = sub_close;
	s->parent.free = sub_free;
	s->x = param;
	*out = &s->parent;
	return 0;
}

static int make_transport(git_transport **out, git_remote *owner, void *payload)
{
	struct xfer *x = payload;

	x->def.callback = make_sub;
	x->def.rpc = 1;
	x->def.param = x;
	return git_transport_smart(out, owner, &x->def);
}

/* After a failed libgit2 call: our own error when the transport described
 * one, else libgit2's message as a source failure. */
static int net_fail(struct xfer *x, const char *what)
{
	if (x->code)
		return x->code;
	return lg_error(TM_ESOURCE, what);
}

static int valid_ref(const char *ref)
{
	int ok = 0;

	if (!ref || strncmp(ref, "refs/", 5) != 0 || strpbrk(ref, ":+*?[\\ ") ||
	    git_reference_name_is_valid(&ok, ref) < 0 || !ok)
		return tm_error_set(TM_ECONFIG, "invalid ref \"%.128s\"", ref ? ref : "");
	return 0;
}

int tm_git_ls_remote(char out_oid[41], struct tm_git *git, const struct tm_git_source *src,
		     const char *ref)
{
	struct tm_buf adv;
	struct xfer x;
	git_remote *remote = NULL;
	git_remote_callbacks cb;
	const git_remote_head **heads;
	size_t n;
	int r;

	out_oid[0] = '\0';
	tm_buf_init(&adv, 1);
	adv_drop(git);
	if ((r = valid_ref(ref)) < 0)
		return r;
	if ((r = xfer_init(&x, src)) < 0)
		goto out;
	if (git_remote_create_detached(&remote, src->url) < 0) {
		r = lg_error(TM_ECONFIG, x.url);
		goto out;
	}
	git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
	cb.transport = make_transport;
	cb.payload = &x;
	tm_buf_init(&adv, ADV_CACHE_MAX);
	x.record = &adv;
	if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL) < 0) {
		r = net_fail(&x, x.url);
		goto out;
	}
	if (git_remote_ls(&heads, &n, remote) < 0) {
		r = net_fail(&x, x.url);
		goto out;
	}
	r = tm_error_set(TM_ENOTFOUND, "%s: ref %s is not advertised by the server", x.url, ref);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(heads[i]->name, ref) == 0) {
			git_oid_tostr(out_oid, 41, &heads[i]->oid);
			r = 0;
			break;
		}
	}
	if (r == 0 && !x.record_full && adv.len > 0 && tm_git_has_object(git, out_oid) == 0 &&
	    (git->adv_url = strdup(src->url)) != NULL) {
		git->adv = adv;
		git->adv_ms = tm_time_mono_ms();
		tm_buf_init(&adv, 1);
	}
out:
	tm_buf_free(&adv);
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	xfer_free(&x);
	return r;
}

/* One fetch attempt. *local is set when it failed in the local repository
 * (a lock that could not be taken, a file system error) rather than on the
 * network or in what the server sent. */
static int fetch_once(struct tm_git *git, const struct tm_git_source *src, const char *ref,
		      const char *spec, const char *expected_oid, int *local)
{
	struct xfer x;
	git_remote *remote = NULL;
	git_remote_create_options co;
	git_fetch_options fo;
	git_strarray specs;
	char *specp = (char *)spec;
	int r, e;

	*local = 0;
	git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	if ((r = xfer_init(&x, src)) < 0)
		goto out;
	/* The advertisement this poll already made, if it is still fresh. */
	if (git->adv_url && strcmp(git->adv_url, src->url) == 0 &&
	    (uint64_t)tm_time_mono_ms() - git->adv_ms < x.timeout_ms)
		x.replay = &git->adv;
	co.repository = git->repo;
	co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(&remote, src->url, &co) < 0) {
		r = lg_error(TM_ECONFIG, x.url);
		goto out;
	}
	fo.callbacks.transport = make_transport;
	fo.callbacks.payload = &x;
	fo.prune = GIT_FETCH_NO_PRUNE;
	fo.update_fetchhead = 0;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	specs.strings = &specp;
	specs.count = 1;
	TM_FAULT("git.before-fetch");
	if ((e = git_remote_fetch(remote, &specs, &fo, "tagmoor: fetch")) < 0) {
		const git_error *le = git_error_last();
		int klass = le ? le->klass : GIT_ERROR_NONE;

		*local = !x.code && (e == GIT_ELOCKED || klass == GIT_ERROR_OS ||
				     klass == GIT_ERROR_FILESYSTEM || klass == GIT_ERROR_REFERENCE);
		r = net_fail(&x, x.url);
		goto out;
	}
	TM_FAULT("git.pack-received");
	/* libgit2 took the pack: the scan must have followed it to its end, or
	 * something in it went unaccounted for */
	if (x.scan && x.scan->state != PS_DONE) {
		r = tm_error_set(TM_ESOURCE,
				 "%s: the pack did not end where its entries said it would "
				 "(%u of %u objects read); refused",
				 x.url, x.scan->done, x.scan->nobjects);
		goto out;
	}
	r = tm_git_has_object(git, expected_oid);
	if (r == 0)
		r = tm_error_set(TM_ESOURCE,
				 "%s: %s moved on the server during the fetch (%s not received); "
				 "will retry",
				 x.url, ref, expected_oid);
	if (r < 0)
		goto out;
	TM_FAULT("git.before-fetched-ref");
	if ((r = tm_git_set_ref(git, TM_GIT_FETCHED_REF, expected_oid)) < 0) {
		*local = 1;
		goto out;
	}
	TM_FAULT("git.fetched");
	tm_log_debug("fetched %s %s from %s (%llu bytes, %u objects inflating to %llu bytes)", ref,
		     expected_oid, x.url, (unsigned long long)x.used, x.scan ? x.scan->nobjects : 0,
		     (unsigned long long)(x.scan ? x.scan->total : 0));
out:
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	xfer_free(&x);
	return r;
}

static uint64_t kept_bytes(const char *path);

int tm_git_fetch(struct tm_git *git, const struct tm_git_source *src, const char *ref,
		 const char *expected_oid)
{
	char spec[1100];
	git_oid want;
	int r, n, local = 0;

	if ((r = valid_ref(ref)) < 0 || (r = parse_oid(&want, expected_oid)) < 0)
		return r;
	r = tm_git_has_object(git, expected_oid);
	if (r < 0)
		return r;
	if (r == 1) { /* already here (a tag moved back, or a retried fetch) */
		adv_drop(git);
		return tm_git_set_ref(git, TM_GIT_FETCHED_REF, expected_oid);
	}
	n = snprintf(spec, sizeof(spec), "+%s:%s", ref, TM_GIT_FETCHED_REF);
	if (n < 0 || (size_t)n >= sizeof(spec))
		return tm_error_set(TM_ECONFIG, "ref too long");
	{
		uint64_t max = src && src->max_fetch ? src->max_fetch : TM_GIT_DEFAULT_MAX_FETCH;
		uint64_t have = tm_git_store_bytes(git), kept = kept_bytes(git->path);

		if (have > kept + TM_GIT_STORE_FACTOR * max)
			return tm_error_set(
				TM_ELIMIT,
				"%s: the object store holds %llu bytes, more than %d x max_fetch "
				"(%llu bytes) beyond the %llu bytes its last pruning kept; not "
				"fetching more until it "
				"is pruned",
				git->path, (unsigned long long)have, TM_GIT_STORE_FACTOR,
				(unsigned long long)max, (unsigned long long)kept);
	}
	r = fetch_once(git, src, ref, spec, expected_oid, &local);
	if (r < 0 && local) {
		/* The repository itself is in the way (a lock nobody can hold
		 * under our state lock, an unwritable file): rebuild it once and
		 * fetch everything again rather than fail at every poll. */
		char why[300];
		git_repository *repo = NULL;

		snprintf(why, sizeof(why), "the fetch failed locally: %.200s", tm_error_last());
		git_repository_free(git->repo);
		git->repo = NULL;
		if ((r = rebuild(&repo, git->path, why)) < 0) {
			/* keep the handle usable for tm_git_free and the caller */
			if (git_repository_open_bare(&git->repo, git->path) < 0)
				git->repo = NULL;
			goto out;
		}
		git->repo = repo;
		r = fetch_once(git, src, ref, spec, expected_oid, &local);
	}
out:
	adv_drop(git);
	return r;
}

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

static uint64_t kept_bytes(const char *path)
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
		return lg_error(TM_EIO, "prune: a kept tree");
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, tree_entry_cb, &c) < 0)
		r = c.err ? c.err : lg_error(TM_EIO, "prune: a kept tree");
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
			return depth == 0 && e == GIT_ENOTFOUND ? 1 : lg_error(TM_EIO, hex);
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
			r = lg_error(TM_EIO, hex);
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
		return lg_error(TM_EIO, "prune");
	for (size_t i = 0; i < nkeep; i++) {
		git_oid id;

		if (!keep[i] || !keep[i][0])
			continue;
		if ((r = parse_oid(&id, keep[i])) < 0 ||
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
			r = lg_error(TM_EIO, "prune: history of the kept revisions");
			goto out;
		}
		r = collect_tree(set, repo, git_commit_tree_id(commit));
		git_commit_free(commit);
		if (r < 0)
			goto out;
	}
	if (e != GIT_ITEROVER)
		r = lg_error(TM_EIO, "prune: history of the kept revisions");
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
		return lg_error(TM_EIO, "refs/tagmoor");
	for (;;) {
		int e = git_reference_next(&ref, it);

		if (e == GIT_ITEROVER)
			break;
		if (e < 0) {
			r = lg_error(TM_EIO, "refs/tagmoor");
			break;
		}
		if (git_reference_type(ref) != GIT_REFERENCE_DIRECT ||
		    !oidset_has(set, git_reference_target(ref))) {
			tm_log_debug("prune: deleting %s (not kept)", git_reference_name(ref));
			if (git_reference_delete(ref) < 0) {
				r = lg_error(TM_EIO, git_reference_name(ref));
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
			pc->err = lg_error(TM_EIO, "prune: copying a kept object");
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
		return lg_error(TM_EIO, idx);
	if (git_odb_backend_one_pack(&be, idx) < 0 || git_odb_add_backend(one, be, 1) < 0) {
		if (be && be->free)
			be->free(be);
		r = lg_error(TM_EIO, idx);
	} else if (git_odb_foreach(one, count_cb, pc) < 0) {
		r = pc->err ? pc->err : lg_error(TM_EIO, idx);
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

int tm_git_prune(struct tm_git *git, const char *const *keep, size_t nkeep)
{
	struct oidset set = { 0 };
	struct packfile *packs = NULL, loose = { "", 0, 0 };
	size_t npacks = 0, ndrop = 0, nmixed = 0;
	git_packbuilder *pb = NULL;
	git_repository *repo = NULL;
	uint64_t before = tm_git_store_bytes(git), after;
	char dir[4096];
	DIR *d;
	struct dirent *de;
	int r, consolidate;

	if ((r = collect_kept(&set, git->repo, keep, nkeep)) < 0)
		goto out;
	/* which packs hold what is not kept */
	snprintf(dir, sizeof(dir), "%s/objects/pack", git->path);
	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);
			struct packfile *np;

			if (strncmp(de->d_name, "pack-", 5) != 0 ||
			    !ends_with(de->d_name, ".idx") || l - 4 >= sizeof(packs[0].stem))
				continue;
			if (!(np = realloc(packs, (npacks + 1) * sizeof(*packs)))) {
				closedir(d);
				r = tm_error_nomem();
				goto out;
			}
			packs = np;
			memset(&packs[npacks], 0, sizeof(packs[0]));
			memcpy(packs[npacks].stem, de->d_name, l - 4);
			packs[npacks].stem[l - 4] = '\0';
			npacks++;
		}
		closedir(d);
	}
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
	/* 1. kept objects of packs that also hold unkept ones go into one new
	 * pack, written and synced completely before anything is deleted */
	if (nmixed) {
		if (git_packbuilder_new(&pb, git->repo) < 0) {
			r = lg_error(TM_EIO, git->path);
			goto out;
		}
		git_packbuilder_set_threads(pb, 1);
		for (size_t i = 0; i < npacks; i++) {
			struct packfile counted = packs[i];
			struct packcount pc = { &set, &counted, pb, 0 };

			if (packs[i].unkept && packs[i].kept &&
			    (r = pack_foreach(git->path, &pc)) < 0)
				goto out;
		}
		TM_FAULT("git.prune-before-pack");
		if (git_packbuilder_write(pb, dir, 0, NULL, NULL) < 0) {
			r = lg_error(TM_EIO, "prune: writing the new pack");
			goto out;
		}
	}
	TM_FAULT("git.prune-packed");
	/* 2. refs to what is not kept */
	if ((r = drop_unkept_refs(git->repo, &set)) < 0)
		goto out;
	if (ndrop == 0 && loose.unkept == 0) {
		after = before;
		if (kept_bytes(git->path) != after)
			record_kept(git->path, after);
		tm_log_debug("%s: nothing to prune (%zu kept objects, %llu bytes)", git->path,
			     set.n, (unsigned long long)after);
		goto out;
	}
	/* 3. the packs with unkept objects and the unkept loose objects; then
	 * reopen, so that no deleted pack stays mapped */
	git_packbuilder_free(pb);
	pb = NULL;
	git_repository_free(git->repo);
	git->repo = NULL;
	for (size_t i = 0; i < npacks; i++)
		if (packs[i].unkept && (r = unlink_pack(git->path, packs[i].stem)) < 0)
			break;
	TM_FAULT("git.prune-packs-removed");
	if (r == 0)
		r = loose_objects(git->path, &set, &loose, 1);
	if (git_repository_open_ext(&repo, git->path,
				    GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE |
					    GIT_REPOSITORY_OPEN_NO_DOTGIT,
				    NULL) < 0) {
		r = lg_error(TM_EIO, git->path);
		goto out;
	}
	git->repo = repo;
	if (r < 0)
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
	git_packbuilder_free(pb);
	free(packs);
	oidset_free(&set);
	return r;
}

/* --- objects -------------------------------------------------------------- */

int tm_git_has_object(struct tm_git *git, const char *oid)
{
	git_oid id;
	git_odb *odb;
	int r;

	if ((r = parse_oid(&id, oid)) < 0)
		return r;
	if (git_repository_odb(&odb, git->repo) < 0)
		return lg_error(TM_EIO, git->path);
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

	if ((r = private_ref(name)) < 0 || (r = parse_oid(&id, oid)) < 0)
		return r;
	TM_FAULT("git.before-set-ref");
	if (git_reference_create(&ref, git->repo, name, &id, 1, "tagmoor") < 0)
		return lg_error(TM_EIO, name);
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
		return lg_error(TM_EIO, name);
	git_oid_tostr(out_oid, 41, &id);
	return 0;
}

/* Reads an object of the given kinds into out, checking its size from the
 * header before inflating it. */
static int read_object(struct tm_buf *out, git_object_t *out_type, struct tm_git *git,
		       const char *oid, size_t max, int blob)
{
	git_odb *odb = NULL;
	git_odb_object *obj = NULL;
	git_object_t type;
	git_oid id;
	size_t len;
	int r, e;

	if ((r = parse_oid(&id, oid)) < 0)
		return r;
	if (git_repository_odb(&odb, git->repo) < 0)
		return lg_error(TM_EIO, git->path);
	e = git_odb_read_header(&len, &type, odb, &id);
	if (e == GIT_ENOTFOUND) {
		r = tm_error_set(TM_ENOTFOUND, "object %s not found", oid);
		goto out;
	}
	if (e < 0) {
		r = lg_error(TM_EIO, oid);
		goto out;
	}
	if (blob ? type != GIT_OBJECT_BLOB
		 : (type != GIT_OBJECT_COMMIT && type != GIT_OBJECT_TAG)) {
		r = tm_error_set(TM_EPARSE, "object %s is a %s, not a %s", oid,
				 git_object_type2string(type), blob ? "blob" : "commit or tag");
		goto out;
	}
	if (len > max) {
		r = tm_error_set(TM_ELIMIT, "object %s is %zu bytes, larger than the limit of %zu",
				 oid, len, max);
		goto out;
	}
	if (git_odb_read(&obj, odb, &id) < 0) {
		r = lg_error(TM_EIO, oid);
		goto out;
	}
	if ((r = tm_buf_put(out, git_odb_object_data(obj), git_odb_object_size(obj))) < 0)
		goto out;
	*out_type = type;
	r = 0;
out:
	git_odb_object_free(obj);
	git_odb_free(odb);
	return r;
}

int tm_git_read_raw(struct tm_buf *out, int *out_type, struct tm_git *git, const char *oid)
{
	git_object_t type = GIT_OBJECT_INVALID;
	size_t max = out->max > 0 ? out->max - 1 : 0;
	int r;

	*out_type = 0;
	if ((r = read_object(out, &type, git, oid, max, 0)) < 0)
		return r;
	*out_type = type == GIT_OBJECT_TAG ? 't' : 'c';
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
	if ((r = parse_oid(&id, oid)) < 0)
		return r;
	e = git_object_lookup(&obj, git->repo, &id, GIT_OBJECT_ANY);
	if (e == GIT_ENOTFOUND)
		return tm_error_set(TM_ENOTFOUND, "object %s not found", oid);
	if (e < 0)
		return lg_error(TM_EIO, oid);
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		r = lg_error(TM_EPARSE, oid);
		goto out;
	}
	git_oid_tostr(out_oid, 41, git_object_id(peeled));
	r = 0;
out:
	git_object_free(peeled);
	git_object_free(obj);
	return r;
}

struct walk {
	struct tm_git *git;
	git_odb *odb;
	int (*cb)(void *, const char *, int, const char *, size_t);
	void *ctx;
	char path[TM_GIT_MAX_PATH + 1];
};

static int walk_tree(struct walk *w, const git_tree *tree, size_t plen, int depth)
{
	size_t count = git_tree_entrycount(tree);

	for (size_t i = 0; i < count; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		size_t nl = strlen(name), len = plen + (plen ? 1 : 0) + nl;
		int mode = (int)git_tree_entry_filemode_raw(e);
		char hex[41];
		int r;

		if (len > TM_GIT_MAX_PATH)
			return tm_error_set(TM_ELIMIT, "path %.64s/%.64s... longer than %d bytes",
					    w->path, name, TM_GIT_MAX_PATH);
		if (plen)
			w->path[plen] = '/';
		memcpy(w->path + len - nl, name, nl);
		w->path[len] = '\0';
		git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(e));
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			git_tree *sub = NULL;

			if (depth + 1 > TM_GIT_MAX_DEPTH)
				return tm_error_set(TM_ELIMIT,
						    "%.128s: directories nested deeper than %d",
						    w->path, TM_GIT_MAX_DEPTH);
			if (git_tree_lookup(&sub, w->git->repo, git_tree_entry_id(e)) < 0)
				return lg_error(TM_EIO, w->path);
			r = walk_tree(w, sub, len, depth + 1);
			git_tree_free(sub);
		} else if (git_tree_entry_type(e) == GIT_OBJECT_COMMIT) {
			r = w->cb(w->ctx, w->path, mode, hex, 0);
		} else {
			size_t size = 0;
			git_object_t type;

			if (git_odb_read_header(&size, &type, w->odb, git_tree_entry_id(e)) < 0)
				return lg_error(TM_EIO, w->path);
			r = w->cb(w->ctx, w->path, mode, hex, size);
		}
		w->path[plen] = '\0';
		if (r != 0)
			return r;
	}
	return 0;
}

/* dir names something in the tree that is not a directory: a revision whose
 * paths entry is a symlink, file or submodule is refused (TM_EPARSE), never
 * read as "absent" (which would prune everything applied from it). */
static int not_a_dir(const char *dir, const char *prefix, const git_tree_entry *ent,
		     const char *commit_oid)
{
	git_filemode_t mode = git_tree_entry_filemode_raw(ent);
	const char *what = mode == GIT_FILEMODE_LINK     ? "a symlink"
			   : mode == GIT_FILEMODE_COMMIT ? "a submodule"
			   : (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE)
				   ? "a regular file"
				   : "not a tree";

	if (strcmp(dir, prefix) == 0)
		return tm_error_set(TM_EPARSE, "%.256s is %s, not a directory (commit %s)", dir,
				    what, commit_oid);
	return tm_error_set(TM_EPARSE,
			    "%.256s is %s, not a directory (in the path %.256s, commit %s)", prefix,
			    what, dir, commit_oid);
}

/* dir was not found: TM_ENOTFOUND when it is truly absent, TM_EPARSE when one
 * of its leading components exists but is not a directory. */
static int absent_or_not_dir(git_tree *root, const char *dir, const char *commit_oid)
{
	char prefix[TM_GIT_MAX_PATH + 1];
	size_t n = strlen(dir);

	memcpy(prefix, dir, n + 1);
	for (size_t i = 0; i <= n; i++) {
		git_tree_entry *ent = NULL;
		int e, r;

		if (dir[i] != '/' && dir[i] != '\0')
			continue;
		prefix[i] = '\0';
		e = git_tree_entry_bypath(&ent, root, prefix);
		prefix[i] = dir[i];
		if (e == GIT_ENOTFOUND)
			break;
		if (e < 0)
			return lg_error(TM_EIO, dir);
		if (git_tree_entry_type(ent) != GIT_OBJECT_TREE) {
			char shown[TM_GIT_MAX_PATH + 1];

			memcpy(shown, dir, i);
			shown[i] = '\0';
			r = not_a_dir(dir, shown, ent, commit_oid);
			git_tree_entry_free(ent);
			return r;
		}
		git_tree_entry_free(ent);
	}
	return tm_error_set(TM_ENOTFOUND, "%.256s: no such directory in commit %s", dir,
			    commit_oid);
}

int tm_git_tree_walk(struct tm_git *git, const char *commit_oid, const char *dir,
		     int (*cb)(void *ctx, const char *path, int filemode, const char *blob_oid,
			       size_t size),
		     void *ctx)
{
	struct walk *w = NULL;
	git_commit *commit = NULL;
	git_tree *root = NULL, *start = NULL;
	git_tree_entry *ent = NULL;
	git_oid id;
	size_t plen = 0;
	int r, e;

	if ((r = parse_oid(&id, commit_oid)) < 0)
		return r;
	e = git_commit_lookup(&commit, git->repo, &id);
	if (e == GIT_ENOTFOUND)
		return tm_error_set(TM_ENOTFOUND, "commit %s not found", commit_oid);
	if (e < 0)
		return lg_error(TM_EIO, commit_oid);
	w = calloc(1, sizeof(*w));
	if (!w) {
		r = tm_error_nomem();
		goto out;
	}
	w->git = git;
	w->cb = cb;
	w->ctx = ctx;
	if (git_repository_odb(&w->odb, git->repo) < 0 || git_commit_tree(&root, commit) < 0) {
		r = lg_error(TM_EIO, commit_oid);
		goto out;
	}
	while (dir && *dir == '/')
		dir++;
	if (dir && *dir) {
		plen = strlen(dir);
		while (plen > 0 && dir[plen - 1] == '/')
			plen--;
		if (plen > TM_GIT_MAX_PATH) {
			r = tm_error_set(TM_ELIMIT, "path too long");
			goto out;
		}
		memcpy(w->path, dir, plen);
		w->path[plen] = '\0';
		e = git_tree_entry_bypath(&ent, root, w->path);
		if (e == GIT_ENOTFOUND) {
			r = absent_or_not_dir(root, w->path, commit_oid);
			goto out;
		}
		if (e < 0) {
			r = lg_error(TM_EIO, w->path);
			goto out;
		}
		if (git_tree_entry_type(ent) != GIT_OBJECT_TREE) {
			r = not_a_dir(w->path, w->path, ent, commit_oid);
			goto out;
		}
		if (git_tree_lookup(&start, git->repo, git_tree_entry_id(ent)) < 0) {
			r = lg_error(TM_EIO, w->path);
			goto out;
		}
	}
	r = walk_tree(w, start ? start : root, plen, 0);
out:
	git_tree_entry_free(ent);
	git_tree_free(start);
	git_tree_free(root);
	git_commit_free(commit);
	if (w)
		git_odb_free(w->odb);
	free(w);
	return r;
}
