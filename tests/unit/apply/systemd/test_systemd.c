/*
 * test_systemd.c — the systemd applier without a systemd: unit name rules
 * (with the 255/256 boundary), wants(), parse() ids and refusals, the unified
 * diff, and apply/prune/health/drift against a fake systemctl (a shell script
 * in a temporary directory, set as [systemd]'s systemctl) that logs its
 * argv and answers `show` from a state file. The real systemctl is exercised
 * by tests/integration/test_systemd_nspawn.sh in a booted container. Power
 * cuts: the record hook sees the ids before anything is written (and a
 * refusal writes nothing); temp files a killed write left in unit_dir and in
 * drop-in directories are removed by the next apply, prune or drift.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/apply/systemd/systemd.h"

static const struct tm_applier *A = &tm_systemd_applier;
static char base[] = "/tmp/tm-systemd-XXXXXX";
static char fake[600], logf_[600], units[600], statef[600], journal[600];
static struct tm_config cfg;

static const char WEB[] = "[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/sleep infinity\n\n"
			  "[Install]\nWantedBy=multi-user.target\n";

static void put_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	struct tm_buf b;
	tm_buf_init(&b, 1 << 20);
	if (tm_file_read(&b, path, 1 << 19) < 0) {
		tm_buf_free(&b);
		return NULL;
	}
	return tm_buf_detach(&b);
}

static void expect_file(const char *path, const char *want)
{
	char *got = slurp(path);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* The calls the fake systemctl saw, one line each ("" when none). */
static char *calls(void)
{
	char *s = slurp(logf_);
	return s ? s : strdup("");
}

static void reset_fake(const char *state)
{
	char cmd[700];
	unlink(logf_);
	put_file(statef, state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/units %s/fail-* %s/sleep-*", base, base, base);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mkdir(units, 0755), 0);
}

static void unit_path(char *out, size_t n, const char *id)
{
	snprintf(out, n, "%s/%s", units, id);
}

static int exists(const char *id)
{
	char p[1024];
	struct stat st;
	unit_path(p, sizeof(p), id);
	return lstat(p, &st) == 0;
}

static void add(struct tm_objset *set, const char *id, const char *content)
{
	assert_int_equal(tm_objset_add(set, id, id, content, strlen(content), NULL), 0);
}

/* ------------------------------------------------------------------ names */

static void test_unit_names(void **state)
{
	static const char *const good[] = {
		"a.service",         "web.service",        "foo@.service",
		"foo@bar.service",   "foo@bar@baz.timer",  "a-b_c:d.e\\x2d.socket",
		"-.mount",           "srv-data.mount",     "x.path",
		"multi-user.target", "getty@tty1.service", "A1.timer",
	};
	static const char *const bad[] = {
		"",
		".service",
		"@.service",
		"@foo.service",
		"foo",
		"foo.",
		"foo.unknown",
		"foo.device",
		"foo.slice",
		"fo o.service",
		"foo/bar.service",
		"f$.service",
		"foo.Service",
		"foo.service ",
		"föö.service",
		"a\nb.service",
		"foo.service.d",
	};
	char name[400];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!tm_systemd_unit_name_valid(good[i]))
			fail_msg("should be valid: \"%s\"", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tm_systemd_unit_name_valid(bad[i]))
			fail_msg("should be invalid: \"%s\"", bad[i]);
	}
	assert_false(tm_systemd_unit_name_valid(NULL));
	/* 255 bytes is the longest name systemd accepts; 256 is refused. */
	memset(name, 'a', sizeof(name));
	memcpy(name + 255 - 8, ".service", 9);
	assert_int_equal(strlen(name), 255);
	assert_true(tm_systemd_unit_name_valid(name));
	memset(name, 'a', sizeof(name));
	memcpy(name + 256 - 8, ".service", 9);
	assert_int_equal(strlen(name), 256);
	assert_false(tm_systemd_unit_name_valid(name));
}

static void test_dropin_names_and_ids(void **state)
{
	char unit[TM_SYSTEMD_NAME_MAX + 1];
	char name[300];

	(void)state;
	assert_true(tm_systemd_dropin_name_valid("10-env.conf"));
	assert_true(tm_systemd_dropin_name_valid("override.conf"));
	assert_true(tm_systemd_dropin_name_valid("a+b@c:d_e.conf"));
	assert_false(tm_systemd_dropin_name_valid(".conf"));
	assert_false(tm_systemd_dropin_name_valid(".hidden.conf"));
	assert_false(tm_systemd_dropin_name_valid("x.cfg"));
	assert_false(tm_systemd_dropin_name_valid("a/b.conf"));
	assert_false(tm_systemd_dropin_name_valid("a b.conf"));
	assert_false(tm_systemd_dropin_name_valid(""));
	memset(name, 'a', sizeof(name));
	memcpy(name + 250, ".conf", 6);
	assert_true(tm_systemd_dropin_name_valid(name)); /* 255 bytes */
	memset(name, 'a', sizeof(name));
	memcpy(name + 251, ".conf", 6);
	assert_false(tm_systemd_dropin_name_valid(name)); /* 256 bytes */

	assert_int_equal(tm_systemd_id_kind("web.service", unit), TM_SYSTEMD_UNIT);
	assert_string_equal(unit, "web.service");
	assert_int_equal(tm_systemd_id_kind("web.service.d/10-env.conf", unit), TM_SYSTEMD_DROPIN);
	assert_string_equal(unit, "web.service");
	assert_int_equal(tm_systemd_id_kind("../x.service", NULL), TM_SYSTEMD_NONE);
	assert_int_equal(tm_systemd_id_kind("web.service.d/../../x.conf", NULL), TM_SYSTEMD_NONE);
	assert_int_equal(tm_systemd_id_kind("web.d/x.conf", NULL), TM_SYSTEMD_NONE);
	assert_int_equal(tm_systemd_id_kind("web.service/x.conf", NULL), TM_SYSTEMD_NONE);
	assert_int_equal(tm_systemd_id_kind("web.service.d/", NULL), TM_SYSTEMD_NONE);
	assert_int_equal(tm_systemd_id_kind("/etc/x.service", NULL), TM_SYSTEMD_NONE);
	assert_int_equal(tm_systemd_id_kind("", NULL), TM_SYSTEMD_NONE);
}

static void test_wants(void **state)
{
	static const struct {
		const char *path;
		int want;
	} cases[] = {
		{ "units/web.service", 1 },
		{ "units/common/web/web.service", 1 },
		{ "units/a.socket", 1 },
		{ "units/a.timer", 1 },
		{ "units/a.path", 1 },
		{ "units/srv-data.mount", 1 },
		{ "units/app.target", 1 },
		{ "units/web.service.d/10-env.conf", 1 },
		{ "units/x/app.target.d/a.conf", 1 },
		{ "units/web.service.d/notes.txt", 0 },
		{ "units/web.d/10.conf", 0 },
		{ "units/10.conf", 0 },
		{ "10.conf", 0 },
		{ "units/README.md", 0 },
		{ "units/a.device", 0 },
		{ "units/a.slice", 0 },
		{ "units/service", 0 },
		{ "units/web.service.bak", 0 },
		/* invalid names are wanted so that parse() refuses them loudly */
		{ "units/we b.service", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *b = strrchr(cases[i].path, '/');
		b = b ? b + 1 : cases[i].path;
		if (A->wants(cases[i].path, b) != cases[i].want)
			fail_msg("wants(%s) != %d", cases[i].path, cases[i].want);
	}
}

static void test_parse(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	static const char dropin[] = "# comment\n; also\n[Service]\nEnvironment=A=1 \\\n  B=2\n";

	(void)state;
	assert_int_equal(A->parse(&set, &ctx, "units/common/web/web.service",
				  "common/web/web.service", WEB, strlen(WEB)),
			 0);
	assert_int_equal(A->parse(&set, &ctx, "units/web.service.d/10-env.conf",
				  "web.service.d/10-env.conf", dropin, strlen(dropin)),
			 0);
	/* the drop-in directory is the paths entry itself */
	assert_int_equal(A->parse(&set, &ctx, "units/a@.service.d/x.conf", "x.conf", dropin,
				  strlen(dropin)),
			 0);
	assert_int_equal(A->parse(&set, &ctx, "units/empty.target", "empty.target", "", 0), 0);
	{
		static const char tricky[] =
			"\xef\xbb\xbf[Service]\nExecStart=/bin/x \\\n# c\n  --flag\n";
		assert_int_equal(A->parse(&set, &ctx, "units/t.service", "t.service", tricky,
					  strlen(tricky)),
				 0);
		tm_objset_free(&set, A->free_data);
		assert_int_equal(A->parse(&set, &ctx, "units/common/web/web.service",
					  "common/web/web.service", WEB, strlen(WEB)),
				 0);
		assert_int_equal(A->parse(&set, &ctx, "units/web.service.d/10-env.conf",
					  "web.service.d/10-env.conf", dropin, strlen(dropin)),
				 0);
		assert_int_equal(A->parse(&set, &ctx, "units/a@.service.d/x.conf", "x.conf", dropin,
					  strlen(dropin)),
				 0);
		assert_int_equal(A->parse(&set, &ctx, "units/empty.target", "empty.target", "", 0),
				 0);
	}
	assert_int_equal(set.n, 4);
	assert_string_equal(set.v[0].id, "web.service");
	assert_string_equal(set.v[0].source, "units/common/web/web.service");
	assert_string_equal(set.v[0].content, WEB);
	assert_string_equal(set.v[1].id, "web.service.d/10-env.conf");
	assert_string_equal(set.v[2].id, "a@.service.d/x.conf");
	assert_string_equal(set.v[3].id, "empty.target");

	/* refusals name the repository path and add nothing */
	assert_int_equal(A->parse(&set, &ctx, "units/we b.service", "we b.service", WEB,
				  strlen(WEB)),
			 TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "units/we b.service"));
	assert_non_null(strstr(tm_error_last(), "not a valid unit name"));
	assert_int_equal(A->parse(&set, &ctx, "units/@x.service", "@x.service", WEB, strlen(WEB)),
			 TM_EPARSE);
	assert_int_equal(A->parse(&set, &ctx, "units/b$d.service.d/x.conf", "b$d.service.d/x.conf",
				  dropin, strlen(dropin)),
			 TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "units/b$d.service.d/x.conf"));
	assert_int_equal(A->parse(&set, &ctx, "units/web.service.d/.x.conf",
				  "web.service.d/.x.conf", dropin, strlen(dropin)),
			 TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "drop-in"));
	assert_int_equal(A->parse(&set, &ctx, "units/nul.service", "nul.service", "[Unit]\0x", 8),
			 TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "units/nul.service"));
	assert_int_equal(A->parse(&set, &ctx, "units/k.service", "k.service", "Foo=bar\n", 8),
			 TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "units/k.service:1"));
	assert_int_equal(A->parse(&set, &ctx, "units/k.service", "k.service", "[Unit]\njunk\n", 12),
			 TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "units/k.service:2"));
	assert_int_equal(A->parse(&set, &ctx, "units/k.service", "k.service", "[Unit\n", 6),
			 TM_EPARSE);
	assert_int_equal(set.n, 4);
	tm_objset_free(&set, A->free_data);

	assert_true(tm_systemd_has_install(WEB, strlen(WEB)));
	assert_true(tm_systemd_has_install("  [Install]  \r\n", 15));
	assert_false(tm_systemd_has_install("[Service]\nX=[Install]\n", 22));
	assert_false(tm_systemd_has_install("", 0));
}

/* ------------------------------------------------------------------- diff */

static char *diff(const char *label, const char *a, const char *b)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	assert_int_equal(tm_systemd_diff(f, label, a, a ? strlen(a) : 0, b, b ? strlen(b) : 0), 0);
	fclose(f);
	return s;
}

static void expect_diff(const char *a, const char *b, const char *want)
{
	char *got = diff("u", a, b);
	assert_string_equal(got, want);
	free(got);
}

static void test_diff(void **state)
{
	(void)state;
	expect_diff("a\nb\n", "a\nb\n", "");
	expect_diff(NULL, "x\ny\n", "--- /dev/null\n+++ u\n@@ -0,0 +1,2 @@\n+x\n+y\n");
	expect_diff("x\n", NULL, "--- u\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n");
	expect_diff(NULL, "", "--- /dev/null\n+++ u\n");
	expect_diff("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n",
		    "--- u\n+++ u\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n");
	/* two changes far apart: two hunks */
	expect_diff(
		"a\n1\n2\n3\n4\n5\n6\n7\n8\nb\n", "A\n1\n2\n3\n4\n5\n6\n7\n8\nB\n",
		"--- u\n+++ u\n@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -7,4 +7,4 @@\n 6\n 7\n 8\n-b\n+B\n");
	/* insertion in the middle and a missing final newline */
	expect_diff("a\nb\n", "a\nnew\nb",
		    "--- u\n+++ u\n@@ -1,2 +1,3 @@\n a\n-b\n+new\n+b\n"
		    "\\ No newline at end of file\n");
	/* GNU diff agrees on a pure insertion */
	expect_diff("a\nb\nc\n", "a\nb\nX\nc\n", "--- u\n+++ u\n@@ -1,3 +1,4 @@\n a\n b\n+X\n c\n");
	expect_diff("a\nb\nc\n", "a\nc\n", "--- u\n+++ u\n@@ -1,3 +1,2 @@\n a\n-b\n c\n");
}

static void test_diff_large(void **state)
{
	/* Above the LCS cell cap the whole file is shown replaced, still valid. */
	size_t n = 3000;
	char *a = malloc(n * 8 + 1), *b = malloc(n * 8 + 1), *out;
	size_t la = 0, lb = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		la += (size_t)snprintf(a + la, n * 8 + 1 - la, "a%05zu\n", i);
		lb += (size_t)snprintf(b + lb, n * 8 + 1 - lb, "b%05zu\n", i);
	}
	out = diff("big", a, b);
	assert_non_null(strstr(out, "@@ -1,3000 +1,3000 @@\n-a00000\n"));
	assert_non_null(strstr(out, "+b02999\n"));
	free(out);
	free(a);
	free(b);
}

/* ---------------------------------------------------- with a fake systemctl */

static void test_dry_run(void **state)
{
	struct tm_objset set = { 0 };
	char *out = NULL, *log;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	struct tm_applier_ctx ctx = { .cfg = &cfg, .dry_run = 1, .out = f };
	struct tm_apply_result res = { 0 };
	char p[1024], *kept = NULL, **keptv = NULL;
	size_t nkept = 0;
	char *inv[] = { "a.service", "old.service" };

	(void)state;
	(void)kept;
	reset_fake("inactive dead success");
	unit_path(p, sizeof(p), "a.service");
	put_file(p, "[Unit]\nDescription=old\n");
	unit_path(p, sizeof(p), "old.service");
	put_file(p, "[Unit]\nDescription=gone\n");
	add(&set, "a.service", "[Unit]\nDescription=new\n");
	add(&set, "b.service", "[Unit]\nDescription=b\n");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, inv, 2), 0);
	assert_int_equal(A->prune(NULL, &res, &ctx, &set, inv, 2, &keptv, &nkept), 0);
	fclose(f);
	assert_non_null(strstr(out, "--- /tmp/"));
	assert_non_null(strstr(out, "/a.service\n@@ -1,2 +1,2 @@\n [Unit]\n-Description=old\n"
				    "+Description=new\n"));
	assert_non_null(strstr(out, "--- /dev/null\n"));
	assert_non_null(strstr(out, "/b.service\n@@ -0,0 +1,2 @@\n+[Unit]\n+Description=b\n"));
	assert_non_null(strstr(out, "/old.service\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-[Unit]\n"));
	assert_int_equal(res.applied, 2);
	assert_int_equal(res.pruned, 1);
	assert_int_equal(nkept, 0);
	/* nothing changed on disk, systemctl never ran */
	unit_path(p, sizeof(p), "a.service");
	expect_file(p, "[Unit]\nDescription=old\n");
	assert_false(exists("b.service"));
	assert_true(exists("old.service"));
	log = calls();
	assert_string_equal(log, "");
	free(log);
	free(out);
	tm_strv_free(keptv, nkept);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
}

static void test_foreign_refused(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	struct tm_apply_result res = { 0 };
	char p[1024], want[1200], *log;
	char *inv[] = { "mine.service" };

	(void)state;
	reset_fake("inactive dead success");
	unit_path(p, sizeof(p), "foreign.service");
	put_file(p, "[Service]\nExecStart=/bin/true\n");
	add(&set, "a.service", WEB);
	add(&set, "mine.service", WEB);
	add(&set, "foreign.service", "[Service]\nExecStart=/bin/false\n");
	add(&set, "z.service.d/x.conf", "[Service]\nNice=1\n");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, inv, 1), TM_EAPPLY);
	snprintf(want, sizeof(want),
		 "%s/foreign.service exists and was not written by tagmoor; refusing to overwrite",
		 units);
	assert_string_equal(tm_error_last(), want);
	assert_string_equal(res.error_object, "foreign.service");
	/* nothing written, nothing run */
	assert_false(exists("a.service"));
	assert_false(exists("mine.service"));
	assert_false(exists("z.service.d"));
	expect_file(p, "[Service]\nExecStart=/bin/true\n");
	assert_int_equal(res.nchanged, 0);
	log = calls();
	assert_string_equal(log, "");
	free(log);
	tm_apply_result_free(&res);

	/* the same content is not foreign: adopted, nothing written (a lost state heals) */
	put_file(p, set.v[2].content);
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), 0);
	assert_int_equal(res.unchanged, 1);
	assert_int_equal(res.applied, 3);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
}

static void test_apply_live(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	struct tm_apply_result res = { 0 };
	char p[1024], *log, want[2048];
	char *inv[] = { "a.service", "t@.service", "b.service.d/x.conf" };
	struct stat st;

	(void)state;
	reset_fake("inactive dead success");
	add(&set, "a.service", WEB);
	add(&set, "t@.service", WEB); /* a template is written, never enabled or started */
	add(&set, "b.service.d/x.conf", "[Service]\nNice=1\n");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), 0);
	assert_int_equal(res.applied, 3);
	assert_int_equal(res.nchanged, 3);
	assert_string_equal(res.changed[2], "b.service.d/x.conf");
	unit_path(p, sizeof(p), "b.service.d/x.conf");
	expect_file(p, "[Service]\nNice=1\n");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	log = calls();
	snprintf(want, sizeof(want),
		 "enable --no-reload a.service\n"
		 "daemon-reload\n"
		 "is-active a.service b.service\n"
		 "start --no-block a.service\n");
	assert_string_equal(log, want);
	free(log);
	tm_apply_result_free(&res);

	/* unchanged and running: no reload, no restart, no start */
	reset_fake("active running success");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), 0);
	assert_int_equal(res.applied, 3); /* unit dir was emptied by reset_fake */
	tm_apply_result_free(&res);
	unlink(logf_);
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), 0);
	assert_int_equal(res.applied, 0);
	assert_int_equal(res.unchanged, 3);
	log = calls();
	assert_string_equal(log, "enable --no-reload a.service\n"
				 "is-active a.service\n");
	free(log);
	tm_apply_result_free(&res);

	/* a changed drop-in of a running unit restarts the parent */
	unlink(logf_);
	free(set.v[2].content);
	set.v[2].content = strdup("[Service]\nNice=2\n");
	set.v[2].len = strlen(set.v[2].content);
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), TM_EAPPLY); /* not ours yet */
	tm_apply_result_free(&res);
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, inv, 3), 0);
	log = calls();
	assert_non_null(strstr(log, "daemon-reload\n"));
	assert_non_null(strstr(log, "restart --no-block b.service\n"));
	assert_null(strstr(log, "start --no-block a.service"));
	free(log);
	tm_apply_result_free(&res);

	/* a systemctl failure is TM_EAPPLY with its output in the message */
	unlink(logf_);
	snprintf(p, sizeof(p), "%s/fail-enable", base);
	put_file(p, "Failed to enable unit: boom\n");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), TM_EAPPLY);
	assert_string_equal(
		tm_error_last(),
		"systemctl enable a.service: exit status 1: Failed to enable unit: boom");
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);

	/* files written, then enable fails: systemd is still reloaded, the error kept */
	reset_fake("inactive dead success");
	snprintf(p, sizeof(p), "%s/fail-enable", base);
	put_file(p, "Failed to enable unit: boom\n");
	add(&set, "a.service", WEB);
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), TM_EAPPLY);
	assert_non_null(strstr(tm_error_last(), "boom"));
	log = calls();
	assert_string_equal(log, "enable --no-reload a.service\ndaemon-reload\n");
	free(log);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
}

static int fail_nth_write;

static int write_hook(const char *stage)
{
	return strcmp(stage, "written") == 0 && --fail_nth_write == 0;
}

static void test_apply_write_failure(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	struct tm_apply_result res = { 0 };
	char *log;

	(void)state;
	reset_fake("inactive dead success");
	add(&set, "a.service", WEB);
	add(&set, "b.service", WEB);
	fail_nth_write = 2;
	tm_file_test_hook = write_hook;
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), TM_EAPPLY);
	tm_file_test_hook = NULL;
	assert_non_null(strstr(tm_error_last(), "b.service: simulated failure after write"));
	assert_string_equal(res.error_object, "b.service");
	assert_true(exists("a.service"));
	assert_false(exists("b.service"));
	assert_int_equal(res.nchanged, 1); /* a.service is tagmoor's now */
	log = calls();
	assert_string_equal(log, "daemon-reload\n");
	free(log);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
}

static void test_apply_root(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg, .root = "/srv/image" };
	struct tm_apply_result res = { 0 };
	char *log;

	(void)state;
	reset_fake("inactive dead success");
	add(&set, "a.service", WEB);
	add(&set, "b.service", "[Service]\nExecStart=/bin/true\n");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), 0);
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 10000), 0);
	log = calls();
	assert_string_equal(log, "--root=/srv/image enable a.service\n");
	free(log);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
}

static void test_prune(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	struct tm_apply_result res = { 0 };
	char p[1024], *log, **kept = NULL;
	size_t nkept = 0;
	char *inv[] = { "keep.service", "old.service", "old.service.d/a.conf", "../escape.service",
			"gone.service" };

	(void)state;
	reset_fake("active running success");
	add(&set, "keep.service", WEB);
	unit_path(p, sizeof(p), "keep.service");
	put_file(p, WEB);
	unit_path(p, sizeof(p), "old.service");
	put_file(p, WEB);
	unit_path(p, sizeof(p), "old.service.d");
	assert_int_equal(mkdir(p, 0755), 0);
	unit_path(p, sizeof(p), "old.service.d/a.conf");
	put_file(p, "[Service]\nNice=1\n");
	unit_path(p, sizeof(p), "foreign.service"); /* not in the inventory: never touched */
	put_file(p, WEB);
	snprintf(p, sizeof(p), "%s/escape.service", base);
	put_file(p, WEB);
	assert_int_equal(A->prune(NULL, &res, &ctx, &set, inv, 5, &kept, &nkept), 0);
	assert_int_equal(res.pruned, 3); /* old.service, its drop-in, gone.service (already gone) */
	assert_int_equal(nkept, 0);
	assert_false(exists("old.service"));
	assert_false(exists("old.service.d"));
	assert_true(exists("keep.service"));
	assert_true(exists("foreign.service"));
	assert_int_equal(access(p, F_OK), 0);
	unlink(p);
	log = calls();
	assert_string_equal(log, "stop old.service gone.service\n"
				 "disable --no-reload old.service\n"
				 "daemon-reload\n");
	free(log);
	tm_strv_free(kept, nkept);
	kept = NULL;
	tm_apply_result_free(&res);

	/* disable fails: the file stays and stays in the inventory */
	unlink(logf_);
	unit_path(p, sizeof(p), "old.service");
	put_file(p, WEB);
	snprintf(p, sizeof(p), "%s/fail-disable", base);
	put_file(p, "Failed to disable unit: nope\n");
	assert_int_equal(A->prune(NULL, &res, &ctx, &set, inv, 2, &kept, &nkept), TM_EAPPLY);
	assert_int_equal(nkept, 1);
	assert_string_equal(kept[0], "old.service");
	assert_true(exists("old.service"));
	assert_string_equal(res.error_object, "old.service");
	assert_string_equal(tm_error_last(),
			    "systemd: old.service could not be removed: systemctl "
			    "disable old.service: exit status 1: Failed to disable unit: nope");
	tm_strv_free(kept, nkept);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
}

static void test_health(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	struct tm_apply_result res = { 0 };
	char *log, jp[700];

	(void)state;
	reset_fake("failed failed exit-code");
	add(&set, "a.service", WEB);
	add(&set, "quiet.service",
	    "[Service]\nExecStart=/bin/true\n"); /* no [Install]: not checked */
	/* wait 0: no look at all */
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 0), 0);
	log = calls();
	assert_string_equal(log, "");
	free(log);
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 5000), TM_EAPPLY);
	assert_int_equal(res.nunhealthy, 1);
	assert_string_equal(res.unhealthy[0], "a.service");
	assert_string_equal(res.error_object, "a.service");
	assert_non_null(strstr(tm_error_last(), "a.service is failed (failed, result exit-code)"));
	assert_non_null(strstr(tm_error_last(), "journal: line one | line two"));
	tm_apply_result_free(&res);

	/* active long enough: healthy at the first look */
	reset_fake("active running success");
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 5000), 0);
	assert_int_equal(res.nunhealthy, 0);
	tm_apply_result_free(&res);

	/* oneshot + RemainAfterExit */
	reset_fake("active exited success");
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 5000), 0);
	tm_apply_result_free(&res);

	/* a oneshot that ran to completion is healthy; a dead simple service is not */
	reset_fake("inactive dead success oneshot 12345");
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 5000), 0);
	tm_apply_result_free(&res);
	reset_fake("inactive dead success simple 0");
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 5000), TM_EAPPLY);
	assert_non_null(strstr(tm_error_last(), "a.service is inactive (dead"));
	tm_apply_result_free(&res);
	/* a changed unit without [Install] that is not running is not waited for */
	set.v[0].content[strlen(set.v[0].content) - 38] = '\0'; /* drop [Install] */
	set.v[0].len = strlen(set.v[0].content);
	assert_false(tm_systemd_has_install(set.v[0].content, set.v[0].len));
	assert_int_equal(tm_strv_push(&res.changed, &res.nchanged, "a.service"), 0);
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 5000), 0);
	tm_apply_result_free(&res);
	free(set.v[0].content);
	set.v[0].content = strdup(WEB);
	set.v[0].len = strlen(WEB);

	/* stuck activating: unhealthy at the deadline, ~200 ms polls */
	reset_fake("activating start success");
	assert_int_equal(A->health(NULL, &res, &ctx, &set, 500), TM_EAPPLY);
	assert_non_null(strstr(tm_error_last(), "a.service is activating (start"));
	log = calls();
	assert_true(strlen(log) > 0);
	free(log);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
	(void)jp;
}

static void test_drift(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	struct tm_apply_result res = { 0 };
	char p[1024], *log;

	(void)state;
	reset_fake("active running success");
	add(&set, "a.service", WEB);
	add(&set, "b.service", "[Service]\nExecStart=/bin/true\n");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), 0);
	tm_apply_result_free(&res);
	assert_int_equal(A->drift(NULL, &res, &ctx, &set), 0);
	assert_int_equal(res.ndrifted, 0);
	tm_apply_result_free(&res);

	unit_path(p, sizeof(p), "a.service");
	put_file(p, "[Service]\nExecStart=/bin/evil\n");
	unit_path(p, sizeof(p), "b.service");
	unlink(p);
	unlink(logf_);
	assert_int_equal(A->drift(NULL, &res, &ctx, &set), 0);
	assert_int_equal(res.ndrifted, 2);
	assert_string_equal(res.drifted[0], "a.service");
	assert_string_equal(res.drifted[1], "b.service");
	unit_path(p, sizeof(p), "a.service");
	expect_file(p, WEB);
	assert_true(exists("b.service"));
	log = calls();
	assert_non_null(strstr(log, "daemon-reload\n"));
	assert_non_null(strstr(log, "restart --no-block a.service b.service\n"));
	free(log);
	tm_apply_result_free(&res);
	tm_objset_free(&set, A->free_data);
}

static void test_systemctl_run(void **state)
{
	const char *args[] = { "daemon-reload", NULL };
	struct tm_buf out;
	char p[700];
	int st = -1;

	(void)state;
	reset_fake("inactive dead success");
	tm_buf_init(&out, 100);
	assert_int_equal(tm_systemctl_run(&out, &st, 5000, fake, args), 0);
	assert_int_equal(st, 0);
	tm_buf_free(&out);
	/* a hanging systemctl is killed at the timeout */
	snprintf(p, sizeof(p), "%s/sleep-daemon-reload", base);
	put_file(p, "");
	assert_int_equal(tm_systemctl_run(NULL, &st, 300, fake, args), TM_EAPPLY);
	assert_non_null(strstr(tm_error_last(), "timed out after 300 ms"));
	/* a missing program */
	assert_int_equal(tm_systemctl_run(NULL, &st, 1000, "/nonexistent/systemctl", args),
			 TM_EAPPLY);
	assert_non_null(strstr(tm_error_last(), "cannot be executed"));
}

/* ------------------------------------------------------------ power cuts */

struct rec {
	int calls, fail;
	char ids[512];
	int written_before; /* a desired file already existed when the hook ran */
	char *log_before;   /* what systemctl had seen when the hook ran */
};

static int record_hook(void *arg, const char *applier, char *const *ids, size_t n)
{
	struct rec *r = arg;

	r->calls++;
	assert_string_equal(applier, "systemd");
	r->ids[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(r->ids);
		snprintf(r->ids + l, sizeof(r->ids) - l, "%s%s", i ? "," : "", ids[i]);
	}
	r->written_before = exists("new.service") || exists("mine.service.d");
	free(r->log_before);
	r->log_before = calls();
	if (r->fail)
		return tm_error_set(TM_EIO, "state.json: no space left on device");
	return 0;
}

static void test_apply_records_before_writing(void **state)
{
	struct tm_objset set = { 0 };
	struct rec rec = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg, .record = record_hook, .record_arg = &rec };
	struct tm_apply_result res = { 0 };
	char p[1024], *log;
	char *inv[] = { "mine.service", "changed.service" };

	(void)state;
	reset_fake("inactive dead success");
	unit_path(p, sizeof(p),
		  "same.service"); /* identical: adopted, not written, but recorded as ours */
	put_file(p, WEB);
	unit_path(p, sizeof(p), "mine.service"); /* ours and the same: nothing to do */
	put_file(p, WEB);
	unit_path(p, sizeof(p), "changed.service"); /* ours and different: written, already owned */
	put_file(p, "[Unit]\nDescription=old\n");
	add(&set, "same.service", WEB);
	add(&set, "mine.service", WEB);
	add(&set, "changed.service", "[Unit]\nDescription=new\n");
	add(&set, "new.service", WEB);
	add(&set, "mine.service.d/10.conf", "[Service]\nNice=1\n");

	/* the hook refuses: nothing written, systemctl never ran */
	rec.fail = 1;
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, inv, 2), TM_EAPPLY);
	assert_int_equal(rec.calls, 1);
	assert_string_equal(rec.ids, "same.service,new.service,mine.service.d/10.conf");
	assert_non_null(strstr(tm_error_last(), "systemd: nothing written"));
	assert_non_null(strstr(tm_error_last(), "no space left on device"));
	assert_false(exists("new.service"));
	assert_false(exists("mine.service.d"));
	unit_path(p, sizeof(p), "changed.service");
	expect_file(p, "[Unit]\nDescription=old\n");
	assert_int_equal(res.nchanged, 0);
	log = calls();
	assert_string_equal(log, "");
	free(log);
	tm_apply_result_free(&res);

	/* it accepts: called once, before the first write and before systemctl */
	rec.fail = 0;
	rec.calls = 0;
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, inv, 2), 0);
	assert_int_equal(rec.calls, 1);
	assert_string_equal(rec.ids, "same.service,new.service,mine.service.d/10.conf");
	assert_false(rec.written_before);
	assert_string_equal(rec.log_before, "");
	assert_true(exists("new.service"));
	assert_true(exists("mine.service.d/10.conf"));
	assert_int_equal(res.applied, 3);
	tm_apply_result_free(&res);

	/* nothing new to write or adopt (all recorded by now): not called */
	rec.calls = 0;
	{
		char *all[] = { "mine.service", "changed.service", "same.service", "new.service",
				"mine.service.d/10.conf" };
		assert_int_equal(A->apply(NULL, &res, &ctx, &set, all, 5), 0);
	}
	assert_int_equal(rec.calls, 0);
	tm_apply_result_free(&res);

	/* a foreign file refuses first: the hook is never asked */
	unit_path(p, sizeof(p), "new.service");
	put_file(p, "[Unit]\nDescription=someone else's\n");
	unit_path(p, sizeof(p), "mine.service.d/10.conf");
	unlink(p);
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, inv, 2), TM_EAPPLY);
	assert_non_null(
		strstr(tm_error_last(), "new.service exists and was not written by tagmoor"));
	assert_int_equal(rec.calls, 0);
	assert_false(exists("mine.service.d/10.conf"));
	tm_apply_result_free(&res);

	/* diff never records */
	{
		char *out = NULL;
		size_t outlen = 0;
		FILE *f = open_memstream(&out, &outlen);
		struct tm_applier_ctx dctx = ctx;
		char *inv3[] = { "mine.service", "changed.service", "new.service" };

		dctx.dry_run = 1;
		dctx.out = f;
		assert_int_equal(A->apply(NULL, &res, &dctx, &set, inv3, 3), 0);
		fclose(f);
		free(out);
		assert_int_equal(rec.calls, 0);
		tm_apply_result_free(&res);
	}
	free(rec.log_before);
	tm_objset_free(&set, A->free_data);
}

static void put_in(const char *dir_id, const char *name, const char *content)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s%s%s", units, dir_id, *dir_id ? "/" : "", name);
	put_file(p, content);
}

/* Leftovers of killed writes in unit_dir and a drop-in directory, old-style
 * ones of our ids and of someone else's, and things that only look like it. */
static void make_leftovers(const char *outside)
{
	char p[1024], q[1024];

	unit_path(p, sizeof(p), "a.service.d");
	mkdir(p, 0755);
	put_in("", ".a.service.tagmoor-tmp-Ab12Cd", "[Service]\nExecStart=/half");
	put_in("", ".b.service.tagmoor-tmp-zzzzzz", "");
	put_in("a.service.d", ".10.conf.tagmoor-tmp-Xy98Zw", "[Serv");
	put_in("", "a.service.tmp.Qq11Ww", "[Unit]\n");       /* old-style, an id of ours */
	put_in("", "foreign.service.tmp.Qq11Ww", "[Unit]\n"); /* old-style, not ours */
	put_in("", "notes.tagmoor-tmp-Ab12Cd", "mine\n");     /* no dot: not ours */
	/* a drop-in directory that is a symlink is never followed */
	snprintf(p, sizeof(p), "%s/.x.tagmoor-tmp-Ab12Cd", outside);
	put_file(p, "outside\n");
	unit_path(q, sizeof(q), "s.service.d");
	assert_int_equal(symlink(outside, q), 0);
}

static void expect_cleaned(const char *outside)
{
	char p[1024];

	assert_false(exists(".a.service.tagmoor-tmp-Ab12Cd"));
	assert_false(exists(".b.service.tagmoor-tmp-zzzzzz"));
	assert_false(exists("a.service.d/.10.conf.tagmoor-tmp-Xy98Zw"));
	assert_false(exists("a.service.tmp.Qq11Ww"));
	assert_true(exists("foreign.service.tmp.Qq11Ww"));
	assert_true(exists("notes.tagmoor-tmp-Ab12Cd"));
	snprintf(p, sizeof(p), "%s/.x.tagmoor-tmp-Ab12Cd", outside);
	assert_int_equal(access(p, F_OK), 0);
	assert_true(exists("a.service"));
	assert_true(exists("a.service.d/10.conf"));
}

static void test_leftover_temps_removed(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_applier_ctx ctx = { .cfg = &cfg };
	struct tm_apply_result res = { 0 };
	char outside[700], cmd[800], *log, **kept = NULL;
	size_t nkept = 0;
	char *inv[] = { "a.service", "a.service.d/10.conf" };

	(void)state;
	snprintf(outside, sizeof(outside), "%s/outside", base);
	mkdir(outside, 0755);
	reset_fake("active running success");
	add(&set, "a.service", WEB);
	add(&set, "a.service.d/10.conf", "[Service]\nNice=1\n");
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, NULL, 0), 0);
	tm_apply_result_free(&res);

	/* apply with nothing to write still removes them (and writes nothing) */
	make_leftovers(outside);
	unlink(logf_);
	assert_int_equal(A->apply(NULL, &res, &ctx, &set, inv, 2), 0);
	assert_int_equal(res.applied, 0);
	assert_int_equal(res.unchanged, 2);
	expect_cleaned(outside);
	log = calls();
	assert_string_equal(log, "enable --no-reload a.service\nis-active a.service\n");
	free(log);
	tm_apply_result_free(&res);

	/* diff removes nothing */
	{
		char *out = NULL;
		size_t outlen = 0;
		FILE *f = open_memstream(&out, &outlen);
		struct tm_applier_ctx dctx = { .cfg = &cfg, .dry_run = 1, .out = f };
		unit_path(cmd, sizeof(cmd), "s.service.d");
		unlink(cmd);
		make_leftovers(outside);
		assert_int_equal(A->apply(NULL, &res, &dctx, &set, inv, 2), 0);
		assert_int_equal(A->drift(NULL, &res, &dctx, &set), 0);
		fclose(f);
		free(out);
		assert_true(exists(".a.service.tagmoor-tmp-Ab12Cd"));
		assert_true(exists("a.service.d/.10.conf.tagmoor-tmp-Xy98Zw"));
		tm_apply_result_free(&res);
	}

	/* drift (the idle poll) removes them, nothing drifted */
	assert_int_equal(A->drift(NULL, &res, &ctx, &set), 0);
	assert_int_equal(res.ndrifted, 0);
	expect_cleaned(outside);
	tm_apply_result_free(&res);

	/* prune too */
	unit_path(cmd, sizeof(cmd), "s.service.d");
	unlink(cmd);
	make_leftovers(outside);
	assert_int_equal(A->prune(NULL, &res, &ctx, &set, inv, 2, &kept, &nkept), 0);
	assert_int_equal(res.pruned, 0);
	expect_cleaned(outside);
	tm_strv_free(kept, nkept);
	tm_apply_result_free(&res);

	/* a unit dir that does not exist yet: nothing to clean, no error */
	{
		struct tm_config c2 = cfg;
		struct tm_applier_ctx ctx2 = { .cfg = &c2 };
		char missing[700];
		snprintf(missing, sizeof(missing), "%s/not-yet", base);
		c2.systemd.unit_dir = missing;
		assert_int_equal(A->drift(NULL, &res, &ctx2, &set), 0);
		tm_apply_result_free(&res);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", missing);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", outside);
	assert_int_equal(system(cmd), 0);
	tm_objset_free(&set, A->free_data);
}

static int setup(void **state)
{
	char script[4096];

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(fake, sizeof(fake), "%s/systemctl", base);
	snprintf(logf_, sizeof(logf_), "%s/log", base);
	snprintf(units, sizeof(units), "%s/units", base);
	snprintf(statef, sizeof(statef), "%s/state", base);
	/* The fake logs its argv; fails a verb with fail-VERB's text; hangs with
	 * sleep-VERB; answers `show` with the "ActiveState SubState Result" of
	 * the state file, active since boot. */
	snprintf(
		script, sizeof(script),
		"#!/bin/sh\n"
		"D=%s\n"
		"echo \"$*\" >>\"$D/log\"\n"
		"verb=$1\n"
		"case \"$1\" in --root=*) verb=$2 ;; esac\n"
		"if [ -f \"$D/fail-$verb\" ]; then cat \"$D/fail-$verb\"; exit 1; fi\n"
		"if [ -f \"$D/sleep-$verb\" ]; then exec sleep 30; fi\n"
		"if [ \"$verb\" = is-active ]; then\n"
		"  shift\n"
		"  read a s r <\"$D/state\"\n"
		"  for u in \"$@\"; do echo \"$a\"; done\n"
		"  [ \"$a\" = active ] && exit 0 || exit 3\n"
		"fi\n"
		"if [ \"$verb\" = show ]; then\n"
		"  shift 3\n"
		"  read a s r t x <\"$D/state\"\n"
		"  for u in \"$@\"; do\n"
		"    printf 'Id=%%s\\nLoadState=loaded\\nActiveState=%%s\\nSubState=%%s\\nResult=%%s\\n"
		"Type=%%s\\nJob=\\nExecMainExitTimestampMonotonic=%%s\\n\\n'"
		" \"$u\" \"$a\" \"$s\" \"$r\" \"${t:-simple}\" \"${x:-0}\"\n"
		"  done\n"
		"fi\n"
		"exit 0\n",
		base);
	put_file(fake, script);
	assert_int_equal(chmod(fake, 0755), 0);
	snprintf(journal, sizeof(journal), "%s/journalctl", base);
	put_file(journal, "#!/bin/sh\nprintf 'line one\\nline two\\n'\n");
	assert_int_equal(chmod(journal, 0755), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.systemd.unit_dir = units;
	cfg.systemd.systemctl = fake;
	cfg.systemd.journalctl = journal;
	return 0;
}

static int teardown(void **state)
{
	char cmd[700];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unit_names),
		cmocka_unit_test(test_dropin_names_and_ids),
		cmocka_unit_test(test_wants),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_diff_large),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_foreign_refused),
		cmocka_unit_test(test_apply_live),
		cmocka_unit_test(test_apply_write_failure),
		cmocka_unit_test(test_apply_root),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_drift),
		cmocka_unit_test(test_systemctl_run),
		cmocka_unit_test(test_apply_records_before_writing),
		cmocka_unit_test(test_leftover_temps_removed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
