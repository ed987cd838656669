/*
 * test_git.c — the git source module against local repositories (object
 * access, repair of a broken repo.git) and against the real HTTPS git server
 * of the integration tests (nginx + git http-backend, see
 * tests/integration/lib.sh): ref advertisement, moved tags, idle polls,
 * credentials, TLS trust, redirects, silent servers and max_fetch.
 *
 * Also a small driver for scripts (bench/poll, test_git_fetch.sh):
 *   test_git drive poll REPO URL REF [--ca F] [--token F] [--timeout MS] [--max BYTES]
 * does one poll (advertisement; fetch only when the ref moved from
 * refs/tagmoor/applied, which it then sets) and prints "oid fetched|idle",
 * plus "write_bytes N" (from /proc/self/io), "poll_ms N" and "poll_cpu_us N",
 * all measured around the poll only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/source/git.h"
#include "tagmoor/core/log.h"
#include "tagmoor/verify/rawobj.h"

#include "gitserver/server.h"

static char tmpdir[512];
static struct tm_test_server srv;
static int have_server;

/* --- helpers -------------------------------------------------------------- */

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

/* A work repository NAME in tmpdir/work-NAME pushing to srv.root/NAME.git. */
static void repo_new(const char *name)
{
	assert_int_equal(
		tm_sh("set -e; git init -q --bare %s/%s.git; "
		      "git init -q -b main %s/work-%s; git -C %s/work-%s remote add origin %s/%s.git",
		      srv.root, name, tmpdir, name, tmpdir, name, srv.root, name),
		0);
}

static void repo_commit(const char *name, const char *file, const char *content)
{
	assert_int_equal(
		tm_sh("set -e; cd %s/work-%s; mkdir -p \"$(dirname '%s')\"; printf '%%s' '%s' > '%s'; "
		      "git add -A; git commit -q -m 'change %s'",
		      tmpdir, name, file, content, file, file),
		0);
}

static void repo_push(const char *name)
{
	assert_int_equal(
		tm_sh("set -e; cd %s/work-%s; git push -q -f origin --all; git push -q -f origin --tags",
		      tmpdir, name),
		0);
}

static void rev_parse(char out[64], const char *name, const char *rev)
{
	assert_int_equal(tm_sh_out(out, 64, "git -C %s/work-%s rev-parse '%s'", tmpdir, name, rev),
			 0);
	assert_int_equal(strlen(out), 40);
}

static void source(struct tm_git_source *src, const char *repo, const char *prefix)
{
	static char url[512];

	snprintf(url, sizeof(url), "%s/%s/%s.git", srv.url, prefix, repo);
	memset(src, 0, sizeof(*src));
	src->url = url;
	src->ca_file = srv.ca;
	src->timeout_ms = 5000;
	src->max_fetch = 16u * 1024 * 1024;
}

static int open_repo(struct tm_git **g, const char *name)
{
	char p[600];

	path_of(p, sizeof(p), name);
	return tm_git_open(g, p);
}

/* One poll as the pipeline does it. */
static int poll_once(struct tm_git *g, const struct tm_git_source *src, const char *ref,
		     char oid[41], int *fetched)
{
	char applied[41];
	int r;

	*fetched = 0;
	if ((r = tm_git_ls_remote(oid, g, src, ref)) < 0)
		return r;
	if (tm_git_get_ref(applied, g, TM_GIT_APPLIED_REF) == 0 && strcmp(applied, oid) == 0)
		return 0;
	if ((r = tm_git_fetch(g, src, ref, oid)) < 0)
		return r;
	*fetched = 1;
	return tm_git_set_ref(g, TM_GIT_APPLIED_REF, oid);
}

static int count_tmp_packs(const char *repo)
{
	char p[700];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s/objects/pack", tmpdir, repo);
	d = opendir(p);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "pack_git2_", 10) == 0 || strstr(de->d_name, "tmp"))
			n++;
	closedir(d);
	return n;
}

#define NEED_SERVER()               \
	do {                        \
		if (!have_server) { \
			skip();     \
		}                   \
	} while (0)

/* --- local: opening and repairing ---------------------------------------- */

static void test_open_creates_and_reopens(void **state)
{
	struct tm_git *g = NULL;
	char p[600];
	struct stat st;

	assert_int_equal(open_repo(&g, "fresh/repo.git"), 0);
	tm_git_free(g);
	path_of(p, sizeof(p), "fresh/repo.git/objects");
	assert_int_equal(stat(p, &st), 0);
	path_of(p, sizeof(p), "fresh/repo.git/HEAD");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(open_repo(&g, "fresh/repo.git"), 0);
	tm_git_free(g);
}

static void test_open_rebuilds_garbage_head(void **state)
{
	struct tm_git *g = NULL;
	char p[600], oid[41];

	assert_int_equal(open_repo(&g, "bad1/repo.git"), 0);
	tm_git_free(g);
	assert_int_equal(tm_sh("printf 'garbage\\0\\1' > %s/bad1/repo.git/HEAD", tmpdir), 0);
	assert_int_equal(open_repo(&g, "bad1/repo.git"), 0);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), TM_ENOTFOUND);
	tm_git_free(g);
	path_of(p, sizeof(p), "bad1/repo.git.broken");
	assert_int_not_equal(access(p, F_OK), 0);
}

static void test_open_rebuilds_missing_objects(void **state)
{
	struct tm_git *g = NULL;

	assert_int_equal(open_repo(&g, "bad2/repo.git"), 0);
	tm_git_free(g);
	assert_int_equal(tm_sh("rm -rf %s/bad2/repo.git/objects", tmpdir), 0);
	assert_int_equal(open_repo(&g, "bad2/repo.git"), 0);
	tm_git_free(g);
	assert_int_equal(tm_sh("test -d %s/bad2/repo.git/objects/pack", tmpdir), 0);
}

static void test_open_rebuilds_dangling_private_ref(void **state)
{
	struct tm_git *g = NULL;
	char oid[41];

	assert_int_equal(open_repo(&g, "bad3/repo.git"), 0);
	tm_git_free(g);
	assert_int_equal(
		tm_sh("mkdir -p %s/bad3/repo.git/refs/tagmoor && "
		      "echo 1111111111111111111111111111111111111111 > %s/bad3/repo.git/refs/tagmoor/applied",
		      tmpdir, tmpdir),
		0);
	assert_int_equal(open_repo(&g, "bad3/repo.git"), 0);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), TM_ENOTFOUND);
	tm_git_free(g);
}

static void test_open_refuses_to_delete_non_git_dir(void **state)
{
	struct tm_git *g = NULL;

	assert_int_equal(tm_sh("mkdir -p %s/notgit/stuff && echo keep > %s/notgit/stuff/file",
			       tmpdir, tmpdir),
			 0);
	assert_int_equal(open_repo(&g, "notgit/stuff"), TM_EIO);
	assert_null(g);
	assert_int_equal(tm_sh("test -f %s/notgit/stuff/file", tmpdir), 0);
}

/* --- local: object access ------------------------------------------------ */

struct seen {
	char paths[64][128];
	int modes[64];
	size_t sizes[64];
	int n;
	int stop_at;
};

static int collect(void *ctx, const char *path, int mode, const char *oid, size_t size)
{
	struct seen *s = ctx;

	assert_int_equal(strlen(oid), 40);
	if (s->n < 64) {
		snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", path);
		s->modes[s->n] = mode;
		s->sizes[s->n] = size;
	}
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 42 : 0;
}

/* The walk the fetcher child runs (verify/rawobj.c) over the object store,
 * with each blob's size from the store as the plan's capture reads it. */
struct sized {
	struct tm_git *g;
	int (*cb)(void *, const char *, int, const char *, size_t);
	void *ctx;
};

static int with_size(void *arg, const char *path, int mode, const char *oid)
{
	struct sized *z = arg;
	size_t size = 0;

	if (mode != 0160000)
		assert_int_equal(tm_git_blob_size(&size, z->g, oid), 0);
	return z->cb(z->ctx, path, mode, oid, size);
}

static int tree_walk(struct tm_git *g, const char *commit, const char *dir,
		     int (*cb)(void *, const char *, int, const char *, size_t), void *ctx)
{
	struct tm_objsrc_git og = { 0 };
	struct tm_objsrc src;
	struct sized z = { g, cb, ctx };
	int r;

	tm_objsrc_git_init(&src, &og, g);
	r = tm_obj_tree_walk(&src, commit, dir, with_size, &z);
	tm_objsrc_git_free(&og);
	return r;
}

static void test_objects(void **state)
{
	struct tm_git *g = NULL;
	char commit[64], tag[64], blob[64], p[600], oid[41];
	struct tm_buf b;
	struct seen seen = { 0 };
	int type;

	/* A repository with nested dirs, a symlink and a submodule entry,
	 * pushed straight into our bare repo.git. */
	assert_int_equal(open_repo(&g, "objs/repo.git"), 0);
	assert_int_equal(
		tm_sh("set -e; w=%s/objs-work; git init -q -b main $w; cd $w; "
		      "mkdir -p k8s/common k8s/sites/a-b units; printf 'kind: A\\n' > k8s/common/a.yaml; "
		      "printf 'x' > k8s/common.yaml; printf 'yy' > k8s/sites/a-b/z.yaml; printf 'b' > k8s/a-b.yaml; "
		      "ln -s ../etc/passwd k8s/link.yaml; printf '[Unit]\\n' > units/x.service; git add -A; "
		      "git update-index --add --cacheinfo 160000,1111111111111111111111111111111111111111,k8s/sub; "
		      "git commit -q -m one; git tag -a -m 'release' stable; "
		      "git push -q %s/objs/repo.git main:refs/heads/main stable:refs/tags/stable",
		      tmpdir, tmpdir),
		0);
	assert_int_equal(tm_sh_out(commit, sizeof(commit), "git -C %s/objs-work rev-parse main",
				   tmpdir),
			 0);
	assert_int_equal(tm_sh_out(tag, sizeof(tag), "git -C %s/objs-work rev-parse stable",
				   tmpdir),
			 0);
	assert_int_equal(tm_sh_out(blob, sizeof(blob),
				   "git -C %s/objs-work rev-parse main:k8s/common/a.yaml", tmpdir),
			 0);

	assert_int_equal(tm_git_has_object(g, tag), 1);
	assert_int_equal(tm_git_has_object(g, "0123456789012345678901234567890123456789"), 0);
	assert_int_equal(tm_git_has_object(g, "XYZ"), TM_EPARSE);

	tm_buf_init(&b, 4096);
	assert_int_equal(tm_git_read_raw(&b, &type, g, tag), 0);
	assert_int_equal(type, 't');
	assert_non_null(strstr(b.ptr, "tag stable\n"));
	assert_int_equal(strncmp(b.ptr, "object ", 7), 0);
	tm_buf_reset(&b);
	assert_int_equal(tm_git_read_raw(&b, &type, g, commit), 0);
	assert_int_equal(type, 'c');
	assert_int_equal(strncmp(b.ptr, "tree ", 5), 0);
	tm_buf_free(&b);
	tm_buf_init(&b, 16); /* cap */
	assert_int_equal(tm_git_read_raw(&b, &type, g, commit), TM_ELIMIT);
	tm_buf_free(&b);
	tm_buf_init(&b, 4096);
	assert_int_equal(tm_git_read_raw(&b, &type, g, blob), TM_EPARSE);
	assert_int_equal(tm_git_read_raw(&b, &type, g, "0123456789012345678901234567890123456789"),
			 TM_ENOTFOUND);

	assert_int_equal(tm_git_peel_commit(oid, g, tag), 0);
	assert_string_equal(oid, commit);
	assert_int_equal(tm_git_peel_commit(oid, g, commit), 0);
	assert_string_equal(oid, commit);

	assert_int_equal(tm_git_read_blob(&b, g, blob, 100), 0);
	assert_string_equal(b.ptr, "kind: A\n");
	tm_buf_reset(&b);
	assert_int_equal(tm_git_read_blob(&b, g, blob, 8), 0); /* cap */
	tm_buf_reset(&b);
	assert_int_equal(tm_git_read_blob(&b, g, blob, 7), TM_ELIMIT); /* cap + 1 */
	assert_int_equal(tm_git_read_blob(&b, g, commit, 100), TM_EPARSE);
	tm_buf_free(&b);
	{ /* the same without a copy: the bytes stay until tm_git_free, the same checks */
		const char *d1, *d2;
		size_t l1, l2;
		assert_int_equal(tm_git_read_blob_kept(&d1, &l1, g, blob, 8), 0);
		assert_int_equal(tm_git_read_blob_kept(&d2, &l2, g, blob, 100), 0);
		assert_int_equal(l1, 8);
		assert_memory_equal(d1, "kind: A\n", 8);
		assert_memory_equal(d2, "kind: A\n", 8);
		assert_int_equal(tm_git_read_blob_kept(&d2, &l2, g, blob, 7), TM_ELIMIT);
		assert_null(d2);
		assert_int_equal(tm_git_read_blob_kept(&d2, &l2, g, commit, 100), TM_EPARSE);
		assert_int_equal(tm_git_read_blob_kept(&d2, &l2, g,
						       "0123456789012345678901234567890123456789",
						       100),
				 TM_ENOTFOUND);
		assert_memory_equal(d1, "kind: A\n", 8); /* still there after later reads */
	}

	assert_int_equal(tree_walk(g, commit, "k8s", collect, &seen), 0);
	assert_int_equal(seen.n, 6);
	/* git order == byte order of full paths */
	assert_string_equal(seen.paths[0], "k8s/a-b.yaml");
	assert_string_equal(seen.paths[1], "k8s/common.yaml");
	assert_string_equal(seen.paths[2], "k8s/common/a.yaml");
	assert_int_equal(seen.sizes[2], 8);
	assert_int_equal(seen.modes[2], 0100644);
	assert_string_equal(seen.paths[3], "k8s/link.yaml");
	assert_int_equal(seen.modes[3], 0120000);
	assert_string_equal(seen.paths[4], "k8s/sites/a-b/z.yaml");
	assert_string_equal(seen.paths[5], "k8s/sub");
	assert_int_equal(seen.modes[5], 0160000);
	assert_int_equal(seen.sizes[5], 0);
	for (int i = 1; i < 6; i++)
		assert_true(strcmp(seen.paths[i - 1], seen.paths[i]) < 0);

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(tree_walk(g, commit, NULL, collect, &seen), 0);
	assert_int_equal(seen.n, 7);
	assert_string_equal(seen.paths[6], "units/x.service");
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(tree_walk(g, commit, "k8s/sites/", collect, &seen), 0);
	assert_int_equal(seen.n, 1);
	memset(&seen, 0, sizeof(seen));
	seen.stop_at = 2;
	assert_int_equal(tree_walk(g, commit, "", collect, &seen), 42);
	assert_int_equal(tree_walk(g, commit, "nope", collect, &seen), TM_ENOTFOUND);
	/* a paths entry that exists but is not a directory is not "absent" */
	assert_int_equal(tree_walk(g, commit, "units/x.service", collect, &seen), TM_EPARSE);
	assert_non_null(
		strstr(tm_error_last(), "units/x.service is a regular file, not a directory"));
	assert_int_equal(tree_walk(g, commit, "k8s/link.yaml", collect, &seen), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "k8s/link.yaml is a symlink, not a directory"));
	assert_int_equal(tree_walk(g, commit, "k8s/link.yaml/x", collect, &seen), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "k8s/link.yaml is a symlink, not a directory"));
	assert_int_equal(tree_walk(g, commit, "k8s/sub", collect, &seen), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "k8s/sub is a submodule, not a directory"));
	assert_int_equal(tree_walk(g, commit, "k8s/nope/deeper", collect, &seen), TM_ENOTFOUND);
	/* a tag is not a commit: never "absent" */
	assert_int_equal(tree_walk(g, tag, "", collect, &seen), TM_EPARSE);

	assert_int_equal(tm_git_set_ref(g, TM_GIT_APPLIED_REF, tag), 0);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), 0);
	assert_string_equal(oid, tag);
	assert_int_equal(tm_git_set_ref(g, "refs/heads/main", tag), TM_EUSAGE);
	assert_int_equal(tm_git_set_ref(g, "refs/tagmoor/../x", tag), TM_EUSAGE);

	/* Fetch of an object that is already here needs no network. */
	{
		struct tm_git_source src = { .url = "https://localhost:1/none.git",
					     .timeout_ms = 100 };

		assert_int_equal(tm_git_fetch(g, &src, "refs/tags/stable", commit), 0);
		assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_FETCHED_REF), 0);
		assert_string_equal(oid, commit);
	}
	tm_git_free(g);
	/* A healthy repository with private refs reopens as it is. */
	assert_int_equal(open_repo(&g, "objs/repo.git"), 0);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), 0);
	tm_git_free(g);
	path_of(p, sizeof(p), "objs/repo.git.broken");
	assert_int_not_equal(access(p, F_OK), 0);
}

static void test_deep_tree_limit(void **state)
{
	struct tm_git *g = NULL;
	struct seen seen = { 0 };
	char commit[64];

	assert_int_equal(open_repo(&g, "deep/repo.git"), 0);
	assert_int_equal(
		tm_sh("set -e; w=%s/deep-work; git init -q -b main $w; cd $w; "
		      "d=$(printf 'd/%%.0s' $(seq 1 40)); mkdir -p $d; echo x > ${d}f; git add -A; git commit -q -m deep; "
		      "git push -q %s/deep/repo.git main:refs/heads/main",
		      tmpdir, tmpdir),
		0);
	assert_int_equal(tm_sh_out(commit, sizeof(commit), "git -C %s/deep-work rev-parse main",
				   tmpdir),
			 0);
	assert_int_equal(tree_walk(g, commit, NULL, collect, &seen), TM_ELIMIT);
	tm_git_free(g);
}

static void test_source_url_rules(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src = { .url = "http://localhost:1/x.git", .timeout_ms = 100 };
	char oid[41];

	assert_int_equal(open_repo(&g, "rules/repo.git"), 0);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/tags/stable"), TM_ECONFIG);
	src.url = "https://fleet:hunter2@localhost:1/x.git";
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/tags/stable"), TM_ECONFIG);
	assert_null(strstr(tm_error_last(), "hunter2"));
	src.url = "https://localhost:1/x.git";
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "stable"), TM_ECONFIG);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/tags/a:b"), TM_ECONFIG);
	/* nothing listens on port 1 */
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/tags/stable"), TM_ESOURCE);
	tm_git_free(g);
}

/* --- against the HTTPS git server ---------------------------------------- */

static void test_ls_remote_tag_branch_missing(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], tag[64], main_[64];

	NEED_SERVER();
	repo_new("ls");
	repo_commit("ls", "a.txt", "one");
	assert_int_equal(tm_sh("git -C %s/work-ls tag -a -m rel stable", tmpdir), 0);
	repo_push("ls");
	rev_parse(tag, "ls", "stable");
	rev_parse(main_, "ls", "main");
	assert_string_not_equal(tag, main_);
	assert_int_equal(open_repo(&g, "ls/repo.git"), 0);
	source(&src, "ls", "git");
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/tags/stable"), 0);
	assert_string_equal(oid, tag);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), 0);
	assert_string_equal(oid, main_);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/tags/nope"), TM_ENOTFOUND);
	source(&src, "nonexistent", "git");
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/tags/stable"), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "404"));
	tm_git_free(g);
}

static void test_fetch_moved_tag_and_idle_poll(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], tag1[64], tag2[64], commit2[64], peeled[41];
	struct tm_buf b;
	int fetched;

	NEED_SERVER();
	repo_new("mv");
	repo_commit("mv", "k8s/a.yaml", "v1");
	assert_int_equal(tm_sh("git -C %s/work-mv tag -a -m rel1 stable", tmpdir), 0);
	repo_push("mv");
	rev_parse(tag1, "mv", "stable");
	assert_int_equal(open_repo(&g, "mv/repo.git"), 0);
	source(&src, "mv", "git");

	tm_test_log_reset(&srv);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	assert_string_equal(oid, tag1);
	assert_int_equal(tm_git_has_object(g, tag1), 1);
	/* a poll that fetches: still one advertisement, then the pack */
	assert_int_equal(tm_test_log_wait(&srv, "POST", "/git/mv.git/git-upload-pack", 1), 1);
	assert_int_equal(tm_test_log_count(&srv, "GET", "/git/mv.git/info/refs"), 1);

	/* Nothing moved: exactly one GET of the advertisement, no POST. */
	tm_test_log_reset(&srv);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 0);
	assert_int_equal(tm_test_log_wait(&srv, "GET", "/info/refs?service=git-upload-pack", 1), 1);
	assert_int_equal(tm_test_log_count(&srv, "POST", ""), 0);

	/* Force-move the tag to a new commit: followed. */
	repo_commit("mv", "k8s/a.yaml", "v2");
	assert_int_equal(tm_sh("git -C %s/work-mv tag -f -a -m rel2 stable >/dev/null", tmpdir), 0);
	repo_push("mv");
	rev_parse(tag2, "mv", "stable");
	rev_parse(commit2, "mv", "main");
	assert_string_not_equal(tag1, tag2);
	tm_test_log_reset(&srv);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	assert_string_equal(oid, tag2);
	assert_int_equal(tm_test_log_wait(&srv, "POST", "/git/mv.git/git-upload-pack", 1), 1);
	assert_int_equal(tm_test_log_count(&srv, "GET", "/git/mv.git/info/refs"), 1);
	assert_int_equal(tm_git_has_object(g, tag2), 1);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_FETCHED_REF), 0);
	assert_string_equal(oid, tag2);
	assert_int_equal(tm_git_peel_commit(peeled, g, tag2), 0);
	assert_string_equal(peeled, commit2);
	tm_buf_init(&b, 1024);
	{
		char blob[64];

		rev_parse(blob, "mv", "main:k8s/a.yaml");
		assert_int_equal(tm_git_read_blob(&b, g, blob, 100), 0);
		assert_string_equal(b.ptr, "v2");
	}
	tm_buf_free(&b);

	/* Moved back to the old tag object: no network needed for the objects. */
	assert_int_equal(tm_sh("cd %s/work-mv && git push -q -f origin %s:refs/tags/stable", tmpdir,
			       tag1),
			 0);
	tm_test_log_reset(&srv);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	assert_string_equal(oid, tag1);
	assert_int_equal(tm_test_log_wait(&srv, "GET", "/git/mv.git/info/refs", 1), 1);
	assert_int_equal(tm_test_log_count(&srv, "POST", ""), 0);

	/* A fetch without a fresh advertisement asks for one itself. */
	repo_commit("mv", "k8s/b.yaml", "v3");
	repo_push("mv");
	{
		char c3[64];

		rev_parse(c3, "mv", "main");
		tm_test_log_reset(&srv);
		assert_int_equal(tm_git_fetch(g, &src, "refs/heads/main", c3), 0);
		assert_int_equal(tm_test_log_wait(&srv, "GET", "/git/mv.git/info/refs", 1), 1);
		rev_parse(commit2, "mv", "main");
	}

	/* Branches work too. */
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), 0);
	assert_string_equal(oid, commit2);
	assert_int_equal(tm_git_fetch(g, &src, "refs/heads/main", oid), 0);
	tm_git_free(g);
}

/* The fetch of a tag brings that tag and its history, not the older release tags that point
 * into that history (libgit2 asks for include-tag when the server offers it): the store
 * holds only what prune keeps, and prune has nothing to rewrite. */
static void test_fetch_brings_no_other_tags(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], rel1[64], rel2[64], stable[64], pack_before[256], pack_after[256];
	const char *keep[1] = { stable };
	int fetched;

	NEED_SERVER();
	repo_new("it");
	repo_commit("it", "k8s/a.yaml", "v1");
	assert_int_equal(tm_sh("git -C %s/work-it tag -a -m rel1 rel1", tmpdir), 0);
	repo_commit("it", "k8s/a.yaml", "v2");
	assert_int_equal(tm_sh("git -C %s/work-it tag -a -m rel2 rel2", tmpdir), 0);
	repo_commit("it", "k8s/a.yaml", "v3");
	assert_int_equal(tm_sh("git -C %s/work-it tag -a -m rel3 stable", tmpdir), 0);
	repo_push("it");
	rev_parse(rel1, "it", "rel1");
	rev_parse(rel2, "it", "rel2");
	rev_parse(stable, "it", "stable");
	assert_int_equal(open_repo(&g, "it/repo.git"), 0);
	source(&src, "it", "git");
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	assert_string_equal(oid, stable);
	assert_int_equal(tm_git_has_object(g, stable), 1);
	assert_int_equal(tm_git_has_object(g, rel1), 0);
	assert_int_equal(tm_git_has_object(g, rel2), 0);
	assert_int_equal(tm_sh_out(pack_before, sizeof(pack_before),
				   "ls %s/it/repo.git/objects/pack/*.pack", tmpdir),
			 0);
	assert_int_equal(tm_git_prune(g, keep, 1), 0);
	assert_int_equal(tm_sh_out(pack_after, sizeof(pack_after),
				   "ls %s/it/repo.git/objects/pack/*.pack", tmpdir),
			 0);
	assert_string_equal(pack_before, pack_after);
	tm_git_free(g);
}

static void test_basic_auth(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], tok[600], main_[64];
	FILE *f;

	NEED_SERVER();
	repo_new("au");
	repo_commit("au", "a", "1");
	repo_push("au");
	rev_parse(main_, "au", "main");
	assert_int_equal(open_repo(&g, "au/repo.git"), 0);
	source(&src, "au", "auth");
	/* without credentials */
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "401"));
	/* user:password */
	path_of(tok, sizeof(tok), "token-basic");
	f = fopen(tok, "w");
	assert_non_null(f);
	fprintf(f, "%s:%s\n", srv.user, srv.pass);
	fclose(f);
	src.token_file = tok;
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), 0);
	assert_string_equal(oid, main_);
	assert_int_equal(tm_git_fetch(g, &src, "refs/heads/main", oid), 0);
	/* wrong password: refused, and the secret is nowhere in the message */
	f = fopen(tok, "w");
	fprintf(f, "%s:wrong-%s", srv.user, srv.pass);
	fclose(f);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	assert_null(strstr(tm_error_last(), srv.pass));
	/* a bearer token is sent, and refused by this basic-auth location */
	f = fopen(tok, "w");
	fprintf(f, "eyJhbGciOi.secret-bearer\n");
	fclose(f);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	assert_null(strstr(tm_error_last(), "secret-bearer"));
	/* an empty or missing token file is a configuration error */
	f = fopen(tok, "w");
	fclose(f);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ECONFIG);
	path_of(tok, sizeof(tok), "token-missing");
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ECONFIG);
	tm_git_free(g);
}

static void test_bearer_token(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], tok[600], main_[64];
	FILE *f;

	NEED_SERVER();
	repo_new("br");
	repo_commit("br", "a", "1");
	repo_push("br");
	rev_parse(main_, "br", "main");
	assert_int_equal(open_repo(&g, "br/repo.git"), 0);
	source(&src, "br", "bearer");
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	path_of(tok, sizeof(tok), "token-bearer");
	f = fopen(tok, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", srv.bearer);
	fclose(f);
	src.token_file = tok;
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), 0);
	assert_string_equal(oid, main_);
	assert_int_equal(tm_git_fetch(g, &src, "refs/heads/main", oid), 0);
	tm_git_free(g);
}

static void test_tls_trust(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], other[600];

	NEED_SERVER();
	repo_new("tls");
	repo_commit("tls", "a", "1");
	repo_push("tls");
	assert_int_equal(open_repo(&g, "tls/repo.git"), 0);
	source(&src, "tls", "git");
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), 0);
	/* another CA: refused */
	path_of(other, sizeof(other), "other-ca.pem");
	assert_int_equal(tm_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other "
			       "-keyout %s.key -out %s >/dev/null 2>&1",
			       other, other),
			 0);
	src.ca_file = other;
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "TLS verification"));
	/* the system CAs do not know the test CA either */
	src.ca_file = NULL;
	setenv("CURL_CA_BUNDLE", srv.ca, 1);
	setenv("SSL_CERT_FILE", srv.ca, 1);
	setenv("GIT_SSL_CAINFO", srv.ca, 1);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "TLS"));
	unsetenv("CURL_CA_BUNDLE");
	unsetenv("SSL_CERT_FILE");
	unsetenv("GIT_SSL_CAINFO");
	/* a missing CA file */
	path_of(other, sizeof(other), "no-such-ca.pem");
	src.ca_file = other;
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	tm_git_free(g);
}

static void test_redirect_refused(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41];

	NEED_SERVER();
	repo_new("rd");
	repo_commit("rd", "a", "1");
	repo_push("rd");
	assert_int_equal(open_repo(&g, "rd/repo.git"), 0);
	source(&src, "rd", "redirect");
	tm_test_log_reset(&srv);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "redirect refused"));
	assert_int_equal(tm_test_log_wait(&srv, "GET", "/redirect/rd.git", 1), 1);
	assert_int_equal(tm_test_log_count(&srv, "GET", "/git/rd.git"), 0);
	tm_git_free(g);
}

static void silent_case(int port, int tls)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], url[128];
	long t0, dt;

	(void)tls;
	snprintf(url, sizeof(url), "https://localhost:%d/x.git", port);
	assert_int_equal(open_repo(&g, "silent/repo.git"), 0);
	memset(&src, 0, sizeof(src));
	src.url = url;
	src.ca_file = srv.ca;
	src.timeout_ms = 1500;
	t0 = tm_test_ms();
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ESOURCE);
	dt = tm_test_ms() - t0;
	assert_non_null(strstr(tm_error_last(), "timed out"));
	assert_true(dt >= 1400);
	assert_true(dt < 1500 + 1000);
	tm_git_free(g);
}

static void test_silent_server_times_out(void **state)
{
	NEED_SERVER();
	silent_case(srv.silent_port, 0);     /* TCP accepted, no TLS handshake */
	silent_case(srv.silent_tls_port, 1); /* handshake done, no HTTP answer */
}

static void test_max_fetch(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], small[64];
	int fetched;

	NEED_SERVER();
	repo_new("big");
	repo_commit("big", "small.txt", "small");
	assert_int_equal(tm_sh("git -C %s/work-big tag -a -m small v1", tmpdir), 0);
	rev_parse(small, "big", "v1");
	assert_int_equal(tm_sh("set -e; cd %s/work-big; head -c 2000000 /dev/urandom > blob.bin; "
			       "git add blob.bin; git commit -q -m big; git tag -a -m big stable",
			       tmpdir),
			 0);
	repo_push("big");
	assert_int_equal(open_repo(&g, "big/repo.git"), 0);
	source(&src, "big", "git");
	src.max_fetch = 256 * 1024;
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), TM_ELIMIT);
	assert_non_null(strstr(tm_error_last(), "max_fetch"));
	assert_int_equal(tm_git_has_object(g, oid), 0);
	assert_int_equal(count_tmp_packs("big/repo.git"), 0);
	/* a small fetch in the same repository still works */
	assert_int_equal(poll_once(g, &src, "refs/tags/v1", oid, &fetched), 0);
	assert_string_equal(oid, small);
	/* and so does the big one with a larger cap, after reopening */
	tm_git_free(g);
	assert_int_equal(open_repo(&g, "big/repo.git"), 0);
	src.max_fetch = 16u * 1024 * 1024;
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	tm_git_free(g);
}

static void test_endless_advertisement(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41];

	NEED_SERVER();
	assert_int_equal(open_repo(&g, "endless/repo.git"), 0);
	source(&src, "x", "endless");
	src.max_fetch = 1024 * 1024;
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ELIMIT);
	assert_non_null(strstr(tm_error_last(), "max_fetch"));
	/* within the cap it parses (4 MiB of refs) and the ref is not among them */
	src.max_fetch = 8u * 1024 * 1024;
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/main"), TM_ENOTFOUND);
	assert_int_equal(tm_git_ls_remote(oid, g, &src, "refs/heads/b000000007"), 0);
	assert_string_equal(oid, "1111111111111111111111111111111111111111");
	tm_git_free(g);
}

static void test_corrupt_repo_rebuilt_then_fetched(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41];
	int fetched;

	NEED_SERVER();
	repo_new("cr");
	repo_commit("cr", "a", "1");
	assert_int_equal(tm_sh("git -C %s/work-cr tag -a -m rel stable", tmpdir), 0);
	repo_push("cr");
	source(&src, "cr", "git");
	assert_int_equal(open_repo(&g, "cr/repo.git"), 0);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	tm_git_free(g);
	/* objects gone: the applied ref dangles; rebuilt, then fetched again */
	assert_int_equal(tm_sh("rm -rf %s/cr/repo.git/objects/*", tmpdir), 0);
	assert_int_equal(open_repo(&g, "cr/repo.git"), 0);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	assert_int_equal(tm_git_has_object(g, oid), 1);
	tm_git_free(g);
	/* garbage HEAD */
	assert_int_equal(tm_sh("echo garbage > %s/cr/repo.git/HEAD", tmpdir), 0);
	assert_int_equal(open_repo(&g, "cr/repo.git"), 0);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	tm_git_free(g);
}

/* A tagmoor killed in the middle of a fetch leaves locks and temporary files;
 * libgit2 never breaks a lock, so without the clean-up in tm_git_open every
 * later fetch failed with "failed to lock file ... fetched.lock". */
static void test_stale_locks_cleared(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], tag2[64], tag3[64];
	int fetched;

	NEED_SERVER();
	repo_new("lk");
	repo_commit("lk", "a", "1");
	assert_int_equal(tm_sh("git -C %s/work-lk tag -a -m rel stable", tmpdir), 0);
	repo_push("lk");
	source(&src, "lk", "git");
	assert_int_equal(open_repo(&g, "lk/repo.git"), 0);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	tm_git_free(g);

	/* what a SIGKILL during a fetch leaves (and what git itself would) */
	assert_int_equal(
		tm_sh("set -e; cd %s/lk/repo.git; "
		      "echo 1111111111111111111111111111111111111111 > refs/tagmoor/fetched.lock; "
		      "mkdir -p refs/tags; : > refs/tags/stable.lock; : > packed-refs.lock; : > HEAD.lock; "
		      ": > config.lock; : > FETCH_HEAD.lock; : > index.lock; : > shallow.lock; "
		      "head -c 1000 /dev/urandom > objects/pack/pack_git2_a1b2c3; : > objects/pack/tmp_pack_x1; "
		      ": > objects/pack/tmp_idx_x1; : > objects/pack/pack-0123456789012345678901234567890123456789.keep; "
		      ": > objects/pack/pack-0123456789012345678901234567890123456789.pack; "
		      "p=$(ls objects/pack/pack-*.idx | head -1); : > \"$p.lock\"; "
		      "mkdir -p objects/ab; : > objects/ab/tmp_obj_Xy12; : > objects/tmp_object_git2_Zz9",
		      tmpdir),
		0);
	repo_commit("lk", "a", "2");
	assert_int_equal(tm_sh("git -C %s/work-lk tag -f -a -m rel2 stable >/dev/null", tmpdir), 0);
	repo_push("lk");
	rev_parse(tag2, "lk", "stable");
	assert_int_equal(open_repo(&g, "lk/repo.git"), 0);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_string_equal(oid, tag2);
	assert_int_equal(fetched, 1);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), 0);
	assert_string_equal(oid, tag2);
	tm_git_free(g);
	assert_int_equal(
		tm_sh("cd %s/lk/repo.git && test -z \"$(find . -name '*.lock' -o -name 'tmp_*' "
		      "-o -name '*_git2_*' -o -name '*.keep')\"",
		      tmpdir),
		0);
	assert_int_equal(tm_sh("cd %s/lk/repo.git && test ! -e "
			       "objects/pack/pack-0123456789012345678901234567890123456789.pack",
			       tmpdir),
			 0);
	assert_int_equal(tm_sh("git --git-dir=%s/lk/repo.git fsck --no-dangling >/dev/null 2>&1",
			       tmpdir),
			 0);

	/* A lock that cannot be cleared (here a directory in its place): the
	 * fetch fails locally, repo.git is rebuilt once and the fetch retried. */
	assert_int_equal(tm_sh("mkdir %s/lk/repo.git/refs/tagmoor/fetched.lock", tmpdir), 0);
	repo_commit("lk", "a", "3");
	assert_int_equal(tm_sh("git -C %s/work-lk tag -f -a -m rel3 stable >/dev/null", tmpdir), 0);
	repo_push("lk");
	rev_parse(tag3, "lk", "stable");
	assert_int_equal(open_repo(&g, "lk/repo.git"), 0);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_string_equal(oid, tag3);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_FETCHED_REF), 0);
	assert_string_equal(oid, tag3);
	tm_git_free(g);
	assert_int_equal(tm_sh("test ! -e %s/lk/repo.git/refs/tagmoor/fetched.lock", tmpdir), 0);
}

/* --- pruning ----------------------------------------------------------- */

static int read_all(void *ctx, const char *path, int mode, const char *oid, size_t size)
{
	struct tm_git *g = ctx;
	struct tm_buf b;
	int r;

	(void)path;
	(void)size;
	if (mode == 0160000)
		return 0;
	tm_buf_init(&b, 4u << 20);
	r = tm_git_read_blob(&b, g, oid, 4u << 20);
	tm_buf_free(&b);
	return r;
}

/* Every tree and blob of commit is readable. */
static int revision_readable(struct tm_git *g, const char *commit)
{
	return tree_walk(g, commit, NULL, read_all, g);
}

/* A store with a signed-history line (c1 <- c2 (tag good) <- c3) and two
 * revisions a hostile server padded (evil1 on top of c2, evil2 unrelated),
 * all pushed straight into NAME/repo.git under refs/tagmoor/. */
struct prune_repo {
	char c1[64], c2[64], c3[64], good[64], evil1[64], evil2[64], b1[64], b2[64], tree1[64];
};

static void prune_repo_make(struct prune_repo *pr, const char *name, int repack)
{
	struct tm_git *g = NULL;

	assert_int_equal(open_repo(&g, name), 0);
	tm_git_free(g);
	assert_int_equal(
		tm_sh("set -e; w=%s/%s-work; rm -rf $w; git init -q -b main $w; cd $w; "
		      "mkdir -p units k8s; printf 'one' > units/a.service; head -c 200000 /dev/urandom > k8s/data.bin; "
		      "git add -A; git commit -q -m c1; printf 'two' > units/a.service; git commit -q -am c2; "
		      "git tag -a -m good good; printf 'three' > units/b.service; git add -A; git commit -q -m c3; "
		      "git checkout -q -b evil1 good; head -c 600000 /dev/urandom > pad.bin; git add -A; git commit -q -m evil1; "
		      "git checkout -q --orphan evil2; git rm -q -rf . ; head -c 600000 /dev/urandom > pad2.bin; "
		      "git add -A; git commit -q -m evil2; "
		      "git push -q %s/%s main:refs/tagmoor/applied good:refs/tags/good evil1:refs/tagmoor/fetched "
		      "evil2:refs/tagmoor/other",
		      tmpdir, name, tmpdir, name),
		0);
	/* repack: one pack holding kept and unkept objects (else loose objects) */
	if (repack)
		assert_int_equal(tm_sh("git --git-dir=%s/%s repack -q -a -d", tmpdir, name), 0);
#define RP(field, rev)                                                                     \
	assert_int_equal(tm_sh_out(pr->field, sizeof(pr->field),                           \
				   "git -C %s/%s-work rev-parse '%s'", tmpdir, name, rev), \
			 0)
	RP(c1, "main~2");
	RP(c2, "main~1");
	RP(c3, "main");
	RP(good, "good");
	RP(evil1, "evil1");
	RP(evil2, "evil2");
	RP(b1, "evil1:pad.bin");
	RP(b2, "evil2:pad2.bin");
	RP(tree1, "main~2^{tree}");
#undef RP
}

static void test_prune_keeps_only_kept(void **state)
{
	struct tm_git *g = NULL;
	struct prune_repo pr;
	char oid[41], p[600];
	uint64_t before, after;
	const char *keep[2];

	prune_repo_make(&pr, "prune/repo.git", 0);
	assert_int_equal(open_repo(&g, "prune/repo.git"), 0);
	assert_int_equal(tm_git_has_object(g, pr.b1), 1);
	assert_int_equal(tm_git_has_object(g, pr.b2), 1);
	before = tm_git_store_bytes(g);
	keep[0] = pr.good; /* a tag object: the tag, its commit c2 and c2's history */
	keep[1] = pr.c3;   /* a commit */
	assert_int_equal(tm_git_prune(g, keep, 2), 0);
	after = tm_git_store_bytes(g);
	/* kept: every revision of the signed line, whole (trees and blobs) */
	assert_int_equal(tm_git_has_object(g, pr.good), 1);
	assert_int_equal(revision_readable(g, pr.c1), 0);
	assert_int_equal(revision_readable(g, pr.c2), 0);
	assert_int_equal(revision_readable(g, pr.c3), 0);
	assert_int_equal(tm_git_peel_commit(oid, g, pr.good), 0);
	assert_string_equal(oid, pr.c2);
	/* gone: the padded revisions and their refs */
	assert_int_equal(tm_git_has_object(g, pr.evil1), 0);
	assert_int_equal(tm_git_has_object(g, pr.evil2), 0);
	assert_int_equal(tm_git_has_object(g, pr.b1), 0);
	assert_int_equal(tm_git_has_object(g, pr.b2), 0);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_FETCHED_REF), TM_ENOTFOUND);
	assert_int_equal(tm_git_get_ref(oid, g, "refs/tagmoor/other"), TM_ENOTFOUND);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), 0);
	assert_string_equal(oid, pr.c3);
	/* the store shrank by (at least most of) the 1.2 MB of padding */
	print_message("prune: %llu -> %llu bytes\n", (unsigned long long)before,
		      (unsigned long long)after);
	assert_true(before > after + 1000000);
	assert_true(after < 400000);
	tm_git_free(g);
	/* git agrees: complete, and nothing left that the kept revisions do not reach */
	assert_int_equal(tm_sh("git --git-dir=%s/prune/repo.git fsck --no-dangling >/dev/null 2>&1",
			       tmpdir),
			 0);
	assert_int_equal(
		tm_sh("test -z \"$(git --git-dir=%s/prune/repo.git fsck --unreachable --no-reflogs 2>&1 | "
		      "grep unreachable)\"",
		      tmpdir),
		0);
	/* it reopens as it is (no rebuild) and pruning again changes nothing */
	assert_int_equal(open_repo(&g, "prune/repo.git"), 0);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), 0);
	assert_int_equal(tm_git_prune(g, keep, 2), 0);
	assert_int_equal(revision_readable(g, pr.c3), 0);
	assert_true(tm_git_store_bytes(g) <= after + 4096);
	/* only c1 kept (a commit named by id, not by a ref): c3's ref goes */
	keep[0] = pr.c1;
	assert_int_equal(tm_git_prune(g, keep, 1), 0);
	assert_int_equal(revision_readable(g, pr.c1), 0);
	assert_int_equal(tm_git_has_object(g, pr.c2), 0);
	assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), TM_ENOTFOUND);
	/* an id that is not here is skipped; nothing kept empties the store */
	keep[0] = "0123456789012345678901234567890123456789";
	assert_int_equal(tm_git_prune(g, keep, 1), 0);
	assert_int_equal(tm_git_has_object(g, pr.c1), 0);
	assert_int_equal(tm_git_prune(g, NULL, 0), 0);
	assert_true(tm_git_store_bytes(g) < 4096);
	keep[0] = "xyz";
	assert_int_equal(tm_git_prune(g, keep, 1), TM_EPARSE);
	tm_git_free(g);
	path_of(p, sizeof(p), "prune/repo.git.broken");
	assert_int_not_equal(access(p, F_OK), 0);
}

/* One pack per fetch adds up: past 16 packs, a prune merges them into one. */
static void test_prune_merges_many_packs(void **state)
{
	struct tm_git *g = NULL;
	char tip[64], first[64];
	const char *keep[1] = { tip };

	assert_int_equal(open_repo(&g, "many/repo.git"), 0);
	tm_git_free(g);
	assert_int_equal(
		tm_sh("set -e; w=%s/many-work; git init -q -b main $w; cd $w; for i in $(seq 1 20); do "
		      "echo $i > f$i; git add -A; git commit -q -m $i; git push -q %s/many/repo.git main:refs/tagmoor/applied; "
		      "git --git-dir=%s/many/repo.git repack -q -d; done; test $(ls %s/many/repo.git/objects/pack/*.pack | wc -l) = 20",
		      tmpdir, tmpdir, tmpdir, tmpdir),
		0);
	assert_int_equal(tm_sh_out(tip, sizeof(tip), "git -C %s/many-work rev-parse main", tmpdir),
			 0);
	assert_int_equal(tm_sh_out(first, sizeof(first),
				   "git -C %s/many-work rev-list --max-parents=0 main", tmpdir),
			 0);
	assert_int_equal(open_repo(&g, "many/repo.git"), 0);
	assert_int_equal(tm_git_prune(g, keep, 1), 0);
	assert_int_equal(revision_readable(g, tip), 0);
	assert_int_equal(revision_readable(g, first), 0);
	tm_git_free(g);
	assert_int_equal(tm_sh("test $(ls %s/many/repo.git/objects/pack/*.pack | wc -l) = 1 && "
			       "git --git-dir=%s/many/repo.git fsck --no-dangling >/dev/null 2>&1",
			       tmpdir, tmpdir),
			 0);
}

/* A kill at any point of a prune leaves a repository that opens without a
 * rebuild and still holds the kept revisions whole. */
static void test_prune_killed_midway(void **state)
{
	struct prune_repo pr;
	long full_us = 0;

	prune_repo_make(&pr, "pk-master/repo.git", 1);
	for (int i = 0; i < 12; i++) {
		struct tm_git *g = NULL;
		const char *keep[2] = { pr.good, pr.c3 };
		char oid[41];
		pid_t pid;
		long t0, delay;
		int st;

		assert_int_equal(
			tm_sh("rm -rf %s/pk/repo.git && mkdir -p %s/pk && cp -a %s/pk-master/repo.git %s/pk/",
			      tmpdir, tmpdir, tmpdir, tmpdir),
			0);
		delay = i == 0 ? -1 : (full_us * i) / 11;
		t0 = tm_test_ms();
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct tm_git *cg = NULL;

			if (open_repo(&cg, "pk/repo.git") < 0 || tm_git_prune(cg, keep, 2) < 0)
				_exit(1);
			tm_git_free(cg);
			_exit(0);
		}
		if (delay >= 0) {
			usleep((useconds_t)delay);
			kill(pid, SIGKILL);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (i == 0) {
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			/* the mixed pack was rewritten: one new pack of the kept objects */
			assert_int_equal(
				tm_sh("cd %s/pk/repo.git/objects && test $(ls pack/*.pack | wc -l) = 1 && "
				      "test -z \"$(git --git-dir=.. fsck --unreachable --no-reflogs 2>&1 | grep unreachable)\"",
				      tmpdir),
				0);
			full_us = (tm_test_ms() - t0) * 1000;
			if (full_us < 1000)
				full_us = 1000;
		}
		/* the next pass: opens (removing leftovers), no rebuild, kept revisions whole */
		assert_int_equal(open_repo(&g, "pk/repo.git"), 0);
		assert_int_equal(tm_git_get_ref(oid, g, TM_GIT_APPLIED_REF), 0);
		assert_string_equal(oid, pr.c3);
		assert_int_equal(revision_readable(g, pr.c2), 0);
		assert_int_equal(revision_readable(g, pr.c3), 0);
		assert_int_equal(tm_git_has_object(g, pr.good), 1);
		assert_int_equal(tm_git_prune(g, keep, 2), 0);
		assert_int_equal(tm_git_has_object(g, pr.b1), 0);
		tm_git_free(g);
		assert_int_equal(tm_sh("test ! -e %s/pk/repo.git.broken", tmpdir), 0);
	}
	print_message("prune killed at 11 points over %ld us\n", full_us);
}

/* The pack scan follows real packs whole: deltas (OFS_DELTA after an
 * aggressive repack on the server), stored, fixed and dynamic deflate blocks,
 * empty blobs, and a second fetch that only brings what changed. */
static void test_fetch_deltas_and_blocks(void **state)
{
	struct tm_git *g = NULL;
	struct tm_git_source src;
	char oid[41], blob[64];
	struct tm_buf b;
	int fetched;

	NEED_SERVER();
	repo_new("dl");
	assert_int_equal(
		tm_sh("set -e; cd %s/work-dl; seq 1 40000 > big.txt; head -c 300000 /dev/urandom > rnd.bin; "
		      ": > empty; printf x > one; git add -A; git commit -q -m 1; "
		      "for i in 2 3 4 5 6; do sed -i \"${i}00s/.*/changed $i/\" big.txt; git commit -q -am $i; done; "
		      "git tag -a -m rel stable; git push -q -f origin --all; git push -q -f origin --tags; "
		      "git --git-dir=%s/dl.git repack -q -a -d -f --depth=50 --window=50; "
		      "test $(git --git-dir=%s/dl.git verify-pack -v %s/dl.git/objects/pack/*.idx | awk 'NF == 7' | wc -l) -gt 0",
		      tmpdir, srv.root, srv.root, srv.root),
		0);
	assert_int_equal(open_repo(&g, "dl/repo.git"), 0);
	source(&src, "dl", "git");
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	rev_parse(blob, "dl", "main:big.txt");
	tm_buf_init(&b, 1u << 20);
	assert_int_equal(tm_git_read_blob(&b, g, blob, 1u << 20), 0);
	assert_non_null(strstr(b.ptr, "changed 6\n"));
	tm_buf_free(&b);
	/* a small change on top: only the new objects come */
	assert_int_equal(
		tm_sh("set -e; cd %s/work-dl; sed -i '700s/.*/changed 7/' big.txt; git commit -q -am 7; "
		      "git tag -f -a -m rel7 stable >/dev/null; git push -q -f origin --all; git push -q -f origin --tags",
		      tmpdir),
		0);
	assert_int_equal(poll_once(g, &src, "refs/tags/stable", oid, &fetched), 0);
	assert_int_equal(fetched, 1);
	{
		char peeled[41];

		assert_int_equal(tm_git_peel_commit(peeled, g, oid), 0);
		rev_parse(blob, "dl", "main");
		assert_string_equal(peeled, blob);
	}
	tm_git_free(g);
	assert_int_equal(tm_sh("git --git-dir=%s/dl/repo.git fsck --no-dangling >/dev/null 2>&1",
			       tmpdir),
			 0);
}

/* The version libgit2 reports at run time: "MAJOR.MINOR.PATCH", 1.5 or later
 * (Debian 12 ships 1.5.1, the static builds 1.9). */
static void test_version(void **state)
{
	unsigned a, b, c;
	char end;

	assert_int_equal(sscanf(tm_git_version(), "%u.%u.%u%c", &a, &b, &c, &end), 3);
	assert_true(a > 1 || (a == 1 && b >= 5));
}

/* --- driver ------------------------------------------------------------- */

static long long io_write_bytes(void)
{
	char line[128];
	long long v = -1;
	FILE *f = fopen("/proc/self/io", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "write_bytes: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static long long cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static int drive(int argc, char **argv)
{
	struct tm_git_source src = { 0 };
	struct tm_git *g = NULL;
	char oid[41];
	long long w0, w1, c0, c1;
	long t0, t1;
	int r, fetched = 0;

	if (argc < 6 || strcmp(argv[2], "poll") != 0) {
		fprintf(stderr,
			"usage: %s drive poll REPO URL REF [--ca F] [--token F] [--timeout MS] [--max B]\n",
			argv[0]);
		return 2;
	}
	src.url = argv[4];
	for (int i = 6; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--ca"))
			src.ca_file = argv[i + 1];
		else if (!strcmp(argv[i], "--token"))
			src.token_file = argv[i + 1];
		else if (!strcmp(argv[i], "--timeout"))
			src.timeout_ms = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--max"))
			src.max_fetch = strtoull(argv[i + 1], NULL, 10);
	}
	tm_log_setup(TM_LOG_TEXT, TM_LOG_WARN);
	if ((r = tm_git_open(&g, argv[3])) < 0)
		goto out;
	w0 = io_write_bytes();
	c0 = cpu_us();
	t0 = tm_test_ms();
	r = poll_once(g, &src, argv[5], oid, &fetched);
	t1 = tm_test_ms();
	c1 = cpu_us();
	w1 = io_write_bytes();
	if (r == 0) {
		printf("%s %s\n", oid, fetched ? "fetched" : "idle");
		printf("write_bytes %lld\n", w1 - w0);
		printf("poll_ms %ld\n", t1 - t0);
		printf("poll_cpu_us %lld\n", c1 - c0);
	}
out:
	if (r < 0)
		fprintf(stderr, "error: %s\n", tm_error_last());
	tm_git_free(g);
	return tm_error_exit_code(r);
}

static int setup_all(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_git.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("HOME", tmpdir, 1);
	setenv("GIT_AUTHOR_NAME", "t", 1);
	setenv("GIT_AUTHOR_EMAIL", "t@example.invalid", 1);
	setenv("GIT_COMMITTER_NAME", "t", 1);
	setenv("GIT_COMMITTER_EMAIL", "t@example.invalid", 1);
	tm_log_setup(TM_LOG_TEXT, TM_LOG_ERROR);
	have_server = tm_test_server_start(&srv, 1) == 0;
	if (!have_server)
		fprintf(stderr, "test git server did not start: network tests skipped\n");
	return 0;
}

static int teardown_all(void **state)
{
	tm_test_server_stop(&srv);
	if (tmpdir[0])
		tm_sh("rm -rf '%s'", tmpdir);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_open_creates_and_reopens),
		cmocka_unit_test(test_open_rebuilds_garbage_head),
		cmocka_unit_test(test_open_rebuilds_missing_objects),
		cmocka_unit_test(test_open_rebuilds_dangling_private_ref),
		cmocka_unit_test(test_open_refuses_to_delete_non_git_dir),
		cmocka_unit_test(test_objects),
		cmocka_unit_test(test_deep_tree_limit),
		cmocka_unit_test(test_source_url_rules),
		cmocka_unit_test(test_ls_remote_tag_branch_missing),
		cmocka_unit_test(test_fetch_moved_tag_and_idle_poll),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_bearer_token),
		cmocka_unit_test(test_tls_trust),
		cmocka_unit_test(test_redirect_refused),
		cmocka_unit_test(test_silent_server_times_out),
		cmocka_unit_test(test_max_fetch),
		cmocka_unit_test(test_endless_advertisement),
		cmocka_unit_test(test_corrupt_repo_rebuilt_then_fetched),
		cmocka_unit_test(test_stale_locks_cleared),
		cmocka_unit_test(test_fetch_brings_no_other_tags),
		cmocka_unit_test(test_prune_keeps_only_kept),
		cmocka_unit_test(test_fetch_deltas_and_blocks),
		cmocka_unit_test(test_prune_killed_midway),
		cmocka_unit_test(test_prune_merges_many_packs),
	};

	if (argc > 1 && strcmp(argv[1], "drive") == 0)
		return drive(argc, argv);
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
