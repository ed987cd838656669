/*
 * test_plan.c — the desired set from a commit's tree: sorted walk, later
 * paths overriding earlier ones by id, a missing directory skipped, ${vars}
 * expanded, and every hostile entry (symlink, submodule, oversized file, two
 * files with one id in one path) refusing the whole plan with its path named.
 * The repository is made by the real git.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/source/git.h"
#include "tagmoor/pipeline/plan.h"
#include "tagmoor/privsep/message.h"
#include "tagmoor/verify/rawobj.h"

static char dir[] = "/tmp/tm-plan-XXXXXX";
static struct tm_config *cfg;

/* A minimal applier: *.txt files, id = basename without ".txt". */
static int t_wants(const char *path, const char *base)
{
	size_t n = strlen(base);
	return n > 4 && strcmp(base + n - 4, ".txt") == 0;
}

static int t_parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
		   const char *rel, const char *content, size_t len)
{
	const char *base = strrchr(path, '/');
	char id[256];

	base = base ? base + 1 : path;
	snprintf(id, sizeof(id), "%.*s", (int)(strlen(base) - 4), base);
	return tm_objset_add(out, id, path, content, len, NULL);
}

static const struct tm_applier test_applier = { .name = "test",
						.wants = t_wants,
						.parse = t_parse };
/* The same under the Kubernetes applier's name: its caps come from [kubernetes]. */
static const struct tm_applier kube_named = { .name = "kubernetes",
					      .wants = t_wants,
					      .parse = t_parse };
static const struct tm_applier *applier = &test_applier;

static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0) {
		print_error("command failed: %s\n", cmd);
		fail();
	}
}

/* Commits the work tree and returns the commit id. */
static const char *commit(void)
{
	static char oid[64];
	char cmd[1024];
	FILE *p;

	sh("cd %s/work && git add -A 2>/dev/null && git -c user.name=t -c user.email=t@x commit -q --allow-empty -m x && git push -q -f ../bare.git HEAD:refs/heads/main",
	   dir);
	snprintf(cmd, sizeof(cmd), "git -C %s/work rev-parse HEAD", dir);
	p = popen(cmd, "r");
	assert_non_null(fgets(oid, sizeof(oid), p));
	pclose(p);
	oid[40] = '\0';
	return oid;
}

static int plan(struct tm_objset *out, const char *commit_oid, const char *paths)
{
	struct tm_git *git;
	struct tm_strlist list = { 0 };
	char bare[512], *copy = strdup(paths), *save = NULL;
	struct tm_applier_ctx ctx = { .cfg = cfg };
	int r;

	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		list.v = realloc(list.v, (list.n + 1) * sizeof(char *));
		list.v[list.n++] = strdup(t);
	}
	snprintf(bare, sizeof(bare), "%s/bare.git", dir);
	assert_int_equal(tm_git_open(&git, bare), 0);
	r = tm_plan_build(out, git, commit_oid, applier, &ctx, &list);
	tm_git_free(git);
	for (size_t i = 0; i < list.n; i++)
		free(list.v[i]);
	free(list.v);
	free(copy);
	return r;
}

static void test_overlay_and_expansion(void **state)
{
	struct tm_objset set;

	sh("mkdir -p %s/work/common/sub %s/work/site && cd %s/work && "
	   "printf 'a from common' > common/a.txt && printf 'b ${site} ${POD_IP} $${site}' > common/sub/b.txt && "
	   "printf 'ignored' > common/readme.md && printf 'a from site' > site/a.txt",
	   dir, dir, dir);
	const char *c = commit();
	assert_int_equal(plan(&set, c, "common site devices/none"), 0);
	assert_int_equal(set.n, 2);
	long a = tm_objset_find(&set, "a"), b = tm_objset_find(&set, "b");
	assert_true(a >= 0 && b >= 0);
	assert_string_equal(set.v[a].content, "a from site"); /* later path wins */
	assert_string_equal(set.v[a].source, "site/a.txt");
	assert_string_equal(set.v[b].content,
			    "b berlin-3 ${POD_IP} ${site}"); /* known only; $$ escape */
	tm_objset_free(&set, NULL);
}

static void refused(const char *setup_cmd, const char *want)
{
	struct tm_objset set;
	int r;

	sh("cd %s/work && %s", dir, setup_cmd);
	r = plan(&set, commit(), "common site");
	if (r >= 0 || !strstr(tm_error_last(), want)) {
		print_error("r=%d message '%s' lacks '%s'\n", r, tm_error_last(), want);
		fail();
	}
	assert_int_equal(set.n, 0);
}

static void test_hostile_entries(void **state)
{
	refused("ln -s /etc/passwd common/evil.txt",
		"common/evil.txt: is a symbolic link (refused)");
	sh("rm %s/work/common/evil.txt", dir);
	refused("head -c 1048577 /dev/zero > common/big.txt",
		"common/big.txt: 1048577 bytes is over the limit");
	sh("rm %s/work/common/big.txt", dir);
	refused("mkdir -p common/x && printf 1 > common/x/a.txt",
		"common/x/a.txt: a is also defined in common/a.txt");
	sh("rm -r %s/work/common/x", dir);
	refused("git init -q common/mod && git -C common/mod -c user.name=t -c user.email=t@x commit -q --allow-empty -m x",
		"common/mod: is a submodule (refused)");
	sh("cd %s/work && git rm -q --cached common/mod && rm -rf common/mod", dir);
	struct tm_objset set;
	assert_int_equal(plan(&set, commit(), "common site"), 0); /* clean again */
	tm_objset_free(&set, NULL);
}

/* A paths entry that is a symlink, a file or a submodule is not "absent":
 * skipping it would prune everything applied from it. */
static void test_paths_entry_not_a_directory(void **state)
{
	struct tm_objset set;

	/* truly absent: allowed, the other entries still apply */
	assert_int_equal(plan(&set, commit(), "common nosuch/dir site"), 0);
	assert_true(tm_objset_find(&set, "a") >= 0);
	tm_objset_free(&set, NULL);

	sh("cd %s/work && mv site site.real && ln -s site.real site", dir);
	refused("true", "site is a symlink, not a directory");
	assert_int_equal(plan(&set, commit(), "common site"), TM_EPARSE);
	/* a leading component that is a symlink refuses too */
	assert_int_equal(plan(&set, commit(), "common site/sub"), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "site is a symlink, not a directory"));
	sh("cd %s/work && rm site && mv site.real site", dir);

	sh("cd %s/work && mv site site.real && printf 'x' > site", dir);
	refused("true", "site is a regular file, not a directory");
	sh("cd %s/work && rm site && mv site.real site", dir);

	sh("cd %s/work && mv site site.real && git init -q site && "
	   "git -C site -c user.name=t -c user.email=t@x commit -q --allow-empty -m x",
	   dir);
	refused("true", "site is a submodule, not a directory");
	sh("cd %s/work && git rm -q --cached site && rm -rf site && mv site.real site", dir);

	assert_int_equal(plan(&set, commit(), "common site"), 0); /* clean again */
	tm_objset_free(&set, NULL);
}

/* The Kubernetes applier's caps: [kubernetes] max_file and max_total, named in the message; every
 * other applier (systemd) keeps 1 MiB per file. */
static void test_kubernetes_caps(void **state)
{
	struct tm_objset set;

	sh("mkdir -p %s/work/big && cd %s/work/big && head -c 2097152 /dev/zero | tr '\\0' x > a.txt",
	   dir, dir);
	assert_int_equal(plan(&set, commit(), "big"), TM_ELIMIT); /* the test applier: 1 MiB */
	assert_non_null(
		strstr(tm_error_last(),
		       "big/a.txt: 2097152 bytes is over the limit of 1048576 bytes (refused)"));
	applier = &kube_named;
	assert_int_equal(plan(&set, commit(), "big"), 0); /* [kubernetes] max_file: 16 MiB */
	assert_int_equal(set.n, 1);
	assert_int_equal(set.v[0].len, 2097152);
	tm_objset_free(&set, NULL);

	cfg->kubernetes.max_file = 65536;
	sh("cd %s/work/big && rm a.txt && head -c 65536 /dev/zero | tr '\\0' x > a.txt", dir);
	assert_int_equal(plan(&set, commit(), "big"), 0);
	tm_objset_free(&set, NULL);
	sh("cd %s/work/big && printf x >> a.txt", dir);
	assert_int_equal(plan(&set, commit(), "big"), TM_ELIMIT);
	assert_string_equal(tm_error_last(),
			    "big/a.txt: 65537 bytes is over the limit of 65536 bytes per file "
			    "(refused; [kubernetes] max_file)");
	sh("cd %s/work/big && truncate -s 65536 a.txt", dir);

	/* the total over all paths: 16 files of 64 KiB are 1 MiB */
	cfg->kubernetes.max_total = 1048576;
	for (int i = 1; i < 16; i++)
		sh("cp %s/work/big/a.txt %s/work/big/b%02d.txt", dir, dir, i);
	assert_int_equal(plan(&set, commit(), "big"), 0);
	assert_int_equal(set.n, 16);
	tm_objset_free(&set, NULL);
	sh("printf x > %s/work/big/c.txt", dir);
	assert_int_equal(plan(&set, commit(), "big"), TM_ELIMIT);
	assert_string_equal(
		tm_error_last(),
		"big/c.txt: the files under the kubernetes paths add up to more than the "
		"limit of 1048576 bytes (refused; [kubernetes] max_total)");
	assert_int_equal(set.n, 0);
	cfg->kubernetes.max_file = 0;
	cfg->kubernetes.max_total = 0;
	applier = &test_applier;
	sh("rm -r %s/work/big", dir);
	commit();
}

static int setup(void **state)
{
	char ini[512];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	sh("git init -q --bare %s/bare.git && git init -q -b main %s/work", dir, dir);
	snprintf(ini, sizeof(ini), "%s/t.ini", dir);
	f = fopen(ini, "w");
	fputs("[source]\nurl = https://g/c.git\nref = refs/tags/s\n[verify]\nallowed_signers = /a\n"
	      "[vars]\nsite = berlin-3\n",
	      f);
	fclose(f);
	assert_int_equal(tm_config_load(&cfg, ini, NULL), 0);
	return 0;
}

/* --- the parent's check of what the fetcher child sent ---------------------- */

struct captured {
	struct tm_git *git;
	struct tm_objsrc_git g;
	struct tm_objtab tab;
	struct tm_msg_set set;
	struct tm_strlist list;
	char *path;
};

static int keep_in_tab(void *arg, int type, const char *data, size_t len)
{
	return tm_objtab_add(arg, type, data, len);
}

/* Captures path of commit c as the child does, its objects filed in cap->tab
 * as the parent files them. */
static void capture(struct captured *cap, const char *c, const char *path)
{
	struct tm_objsrc src;
	char bare[512];

	memset(cap, 0, sizeof(*cap));
	snprintf(bare, sizeof(bare), "%s/bare.git", dir);
	assert_int_equal(tm_git_open(&cap->git, bare), 0);
	cap->g.keep = keep_in_tab;
	cap->g.keep_arg = &cap->tab;
	tm_objsrc_git_init(&src, &cap->g, cap->git);
	cap->path = strdup(path);
	cap->list.v = &cap->path;
	cap->list.n = 1;
	cap->set.commit = strdup(c);
	assert_int_equal(tm_plan_capture(&cap->set, &src, cap->git, 0, applier, cfg, &cap->list),
			 0);
	assert_int_equal(cap->set.ndirs, 1);
}

static int check(struct captured *cap)
{
	struct tm_objsrc src;

	tm_objtab_source(&src, &cap->tab);
	return tm_plan_check_inputs(&cap->set.dirs[0], cap->set.commit, &src, applier);
}

static void captured_free(struct captured *cap)
{
	tm_plan_inputs_free(&cap->set);
	tm_objtab_free(&cap->tab);
	tm_objsrc_git_free(&cap->g);
	tm_git_free(cap->git);
	free(cap->path);
}

static void test_parent_checks_inputs(void **state)
{
	struct captured cap;
	struct tm_msg_dir *d;
	struct tm_msg_file keep;
	const char *c;
	char *body;

	sh("mkdir -p %s/work/chk/sub && cd %s/work/chk && printf A > a.txt && printf B > b.txt && "
	   "printf R > readme.md && printf C > sub/c.txt && printf Z > z.txt",
	   dir, dir);
	c = commit();
	capture(&cap, c, "chk");
	d = &cap.set.dirs[0];
	assert_int_equal(d->nfiles, 4); /* a, b, sub/c, z: not the readme */
	assert_string_equal(d->files[2].path, "chk/sub/c.txt");
	assert_int_equal(check(&cap), 0);

	/* a body changed: not the tree's blob */
	body = (char *)d->files[1].data;
	body[0] = 'X';
	assert_int_equal(check(&cap), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "chk/b.txt is not the blob"));
	body[0] = 'B';
	/* a file left out (it would be pruned) */
	keep = d->files[1];
	memmove(&d->files[1], &d->files[2], 2 * sizeof(*d->files));
	d->nfiles = 3;
	assert_int_equal(check(&cap), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "chk/b.txt is in the tree but not"));
	memmove(&d->files[2], &d->files[1], 2 * sizeof(*d->files));
	d->files[1] = keep;
	d->nfiles = 4;
	/* another mode */
	d->files[0].mode = 0100755;
	assert_int_equal(check(&cap), TM_ESOURCE);
	d->files[0].mode = 0100644;
	/* the walk ended early at an unwanted file without body: it would skip the rest */
	keep = d->files[1];
	d->files[1] = (struct tm_msg_file){ "chk/readme.md", 0100644, 1, NULL };
	d->nfiles = 2;
	assert_int_equal(check(&cap), TM_ESOURCE);
	/* ended at a wanted file without body: the plan fails on it (no content) */
	d->files[1] = (struct tm_msg_file){ keep.path, 0100644, 1, NULL };
	assert_int_equal(check(&cap), 0);
	d->files[1] = keep;
	d->nfiles = 4;
	/* a file that is not in the tree */
	d->files = realloc(d->files, 5 * sizeof(*d->files));
	assert_non_null(d->files);
	d->files[4] = (struct tm_msg_file){ strdup("chk/zz.txt"), 0100644, 1, strdup("X") };
	d->nfiles = 5;
	assert_int_equal(check(&cap), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "chk/zz.txt is not in the tree"));
	free((char *)d->files[4].path);
	free((char *)d->files[4].data);
	d->nfiles = 4;
	/* "absent" for a directory that is there */
	d->status = TM_ENOTFOUND;
	assert_int_equal(check(&cap), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "not absent"));
	d->status = 0;
	/* a tree missing from what was sent: never "absent", never passed */
	for (size_t i = 0; i < cap.tab.n; i++)
		if (cap.tab.v[i].type == TM_OBJ_TREE && strstr(cap.tab.v[i].data, "c.txt"))
			cap.tab.v[i].type = TM_OBJ_BLOB;
	assert_int_equal(check(&cap), TM_ESOURCE);
	assert_int_equal(check(&cap), TM_ESOURCE);
	captured_free(&cap);

	/* truly absent: the check agrees */
	capture(&cap, c, "chk/nosuch");
	assert_int_equal(cap.set.dirs[0].status, TM_ENOTFOUND);
	assert_int_equal(check(&cap), 0);
	captured_free(&cap);
	sh("rm -r %s/work/chk", dir);
}

static int teardown(void **state)
{
	char cmd[512];
	tm_config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlay_and_expansion),
		cmocka_unit_test(test_hostile_entries),
		cmocka_unit_test(test_paths_entry_not_a_directory),
		cmocka_unit_test(test_kubernetes_caps),
		cmocka_unit_test(test_parent_checks_inputs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
