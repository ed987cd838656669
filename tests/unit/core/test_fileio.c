/*
 * test_fileio.c — atomic replace and bounded reads. A failure between write
 * and rename must leave the old file intact and no temporary file behind; a
 * kill there (a child process that exits in the hook) leaves a temp file
 * with a recognisable name that tm_file_clean_temps removes — only those,
 * never through a symlink, never below the directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"

static char dir[] = "/tmp/tm-fileio-XXXXXX";
static const char *fail_stage;

static int hook(const char *stage)
{
	return fail_stage && strcmp(stage, fail_stage) == 0;
}

static int count_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void read_expect(const char *path, const char *want)
{
	struct tm_buf b;

	tm_buf_init(&b, 4096);
	assert_int_equal(tm_file_read(&b, path, 1000), 0);
	assert_string_equal(b.ptr, want);
	tm_buf_free(&b);
}

static void test_replace_and_failures(void **state)
{
	char path[512];
	static const char *const stages[] = { "written", "synced" };
	struct stat st;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	assert_int_equal(tm_file_write_atomic(path, "old", 3, 0600), 0);
	read_expect(path, "old");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	tm_file_test_hook = hook;
	for (size_t i = 0; i < 2; i++) {
		fail_stage = stages[i];
		assert_int_equal(tm_file_write_atomic(path, "new", 3, 0644), TM_EIO);
		read_expect(path, "old");
		assert_int_equal(count_entries(), 1); /* no temp file left */
	}
	fail_stage = NULL;
	tm_file_test_hook = NULL;
	assert_int_equal(tm_file_write_atomic(path, "new", 3, 0644), 0);
	read_expect(path, "new");
	assert_int_equal(count_entries(), 1);

	/* a directory that does not exist: clean error, nothing created */
	snprintf(path, sizeof(path), "%s/nodir/x", dir);
	assert_int_equal(tm_file_write_atomic(path, "x", 1, 0644), TM_EIO);
	assert_int_equal(count_entries(), 1);
}

static void test_read_caps_and_symlinks(void **state)
{
	char path[512], link[512];
	struct tm_buf b;

	snprintf(path, sizeof(path), "%s/cap", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(tm_file_write_atomic(path, "0123456789", 10, 0644), 0);
	tm_buf_init(&b, 4096);
	assert_int_equal(tm_file_read(&b, path, 10), 0); /* cap */
	assert_int_equal(b.len, 10);
	tm_buf_reset(&b);
	assert_int_equal(tm_file_read(&b, path, 9), TM_ELIMIT); /* cap - 1 */
	tm_buf_reset(&b);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(tm_file_read(&b, link, 100), TM_EIO);
	assert_non_null(strstr(tm_error_last(), "symbolic link"));
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(tm_file_read(&b, path, 100), TM_ENOTFOUND);
	assert_int_equal(tm_file_read(&b, dir, 100), TM_EIO); /* a directory */
	tm_buf_free(&b);
	unlink(link);
	snprintf(path, sizeof(path), "%s/cap", dir);
	unlink(path);
	/* empty file */
	assert_int_equal(tm_file_write_atomic(path, "", 0, 0644), 0);
	tm_buf_init(&b, 16);
	assert_int_equal(tm_file_read(&b, path, 10), 0);
	assert_non_null(b.ptr);
	assert_int_equal(b.len, 0);
	tm_buf_free(&b);
	unlink(path);
}

static int mkdir_calls;

static int count_mkdir(const char *stage)
{
	if (strcmp(stage, "mkdir") == 0)
		mkdir_calls++;
	return fail_stage && strcmp(stage, fail_stage) == 0;
}

static void test_mkdirs(void **state)
{
	char path[512];
	struct stat st;

	/* each created directory is made durable (its parent fsynced): the hook
	 * runs once per created component, never for existing ones */
	tm_file_test_hook = count_mkdir;
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(tm_file_mkdirs(path, 0700), 0);
	assert_int_equal(mkdir_calls, 3);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(tm_file_mkdirs(path, 0700), 0); /* exists */
	assert_int_equal(mkdir_calls, 3);
	snprintf(path, sizeof(path), "%s/a/b/d/", dir);
	assert_int_equal(tm_file_mkdirs(path, 0700), 0);
	assert_int_equal(mkdir_calls, 4);
	fail_stage = "mkdir";
	snprintf(path, sizeof(path), "%s/a/e", dir);
	assert_int_equal(tm_file_mkdirs(path, 0700), TM_EIO);
	assert_non_null(strstr(tm_error_last(), "/a/e: simulated failure after mkdir"));
	fail_stage = NULL;
	tm_file_test_hook = NULL;
}

static int die_hook(const char *stage)
{
	if (strcmp(stage, fail_stage) == 0)
		_exit(0); /* a kill: no failure path runs */
	return 0;
}

/* Runs tm_file_write_atomic(path) in a child that dies at stage. */
static void write_killed_at(const char *path, const char *stage)
{
	pid_t pid = fork();
	int st = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		fail_stage = stage;
		tm_file_test_hook = die_hook;
		tm_file_write_atomic(path, "half", 4, 0644);
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* How many entries of d start with prefix; the last one's name in out. */
static int find_entry(char *out, size_t outlen, const char *d, const char *prefix)
{
	DIR *dd = opendir(d);
	struct dirent *e;
	int n = 0;

	assert_non_null(dd);
	while ((e = readdir(dd)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(out, outlen, "%s", e->d_name);
			n++;
		}
	closedir(dd);
	return n;
}

static void touch(const char *d, const char *name)
{
	char p[1024];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", d, name);
	assert_non_null(f = fopen(p, "w"));
	fputs("x", f);
	fclose(f);
}

static int present(const char *d, const char *name)
{
	char p[1024];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", d, name);
	return lstat(p, &st) == 0;
}

static void test_killed_write_leaves_recognisable_temp(void **state)
{
	char d[512], path[600], name[300];
	static const char *const stages[] = { "written", "synced" };

	(void)state;
	snprintf(d, sizeof(d), "%s/killed", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	snprintf(path, sizeof(path), "%s/web.service", d);
	assert_int_equal(tm_file_write_atomic(path, "old", 3, 0644), 0);
	for (size_t i = 0; i < 2; i++) {
		write_killed_at(path, stages[i]);
		read_expect(path, "old");
		/* a dot file named after the target, ours by its mark */
		assert_int_equal(find_entry(name, sizeof(name), d, ".web.service.tagmoor-tmp-"), 1);
		assert_true(tm_file_is_temp_name(name));
		assert_int_equal(strlen(name), strlen(".web.service.tagmoor-tmp-") + 6);
		assert_int_equal(tm_file_clean_temps(d), 1);
		assert_int_equal(find_entry(name, sizeof(name), d, ".web"), 0);
		read_expect(path, "old");
	}
	/* nothing left: nothing to do */
	assert_int_equal(tm_file_clean_temps(d), 0);
	/* a missing directory is fine */
	snprintf(path, sizeof(path), "%s/missing", d);
	assert_int_equal(tm_file_clean_temps(path), 0);
}

static void test_clean_only_ours(void **state)
{
	char d[512], sub[600], outside[600], p[1200], q[1200];
	char *names[] = { "state.json", "floor" };

	(void)state;
	snprintf(d, sizeof(d), "%s/clean", dir);
	snprintf(sub, sizeof(sub), "%s/repo.git", d);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
	touch(d, ".state.json.tagmoor-tmp-aB3xY9"); /* ours */
	touch(d, ".floor.tagmoor-tmp-000000");      /* ours */
	touch(d, "state.json");
	touch(d, "state.json.tmp.Qw12Er");        /* old-style, of a named file */
	touch(d, "other.tmp.Qw12Er");             /* old-style, of no named file */
	touch(d, ".x.tagmoor-tmp-abc");           /* too short */
	touch(d, ".x.tagmoor-tmp-abc-ef");        /* not mkstemp's alphabet */
	touch(d, "x.tagmoor-tmp-abcdef");         /* no leading dot */
	touch(d, ".tagmoor-tmp-abcdef");          /* no name */
	touch(sub, ".config.tagmoor-tmp-abcdef"); /* below: not recursive */
	touch(outside, "target");
	snprintf(p, sizeof(p), "%s/target", outside);
	snprintf(q, sizeof(q), "%s/.link.tagmoor-tmp-abcdef", d);
	assert_int_equal(symlink(p, q), 0); /* a symlink is never ours */
	snprintf(q, sizeof(q), "%s/.dir.tagmoor-tmp-abcdef", d);
	assert_int_equal(mkdir(q, 0755), 0); /* nor a directory */

	assert_true(tm_file_is_temp_name(".state.json.tagmoor-tmp-aB3xY9"));
	assert_false(tm_file_is_temp_name("x.tagmoor-tmp-abcdef"));
	assert_false(tm_file_is_temp_name(".tagmoor-tmp-abcdef"));
	assert_false(tm_file_is_temp_name(".x.tagmoor-tmp-abcdefg"));
	assert_false(tm_file_is_temp_name(""));

	assert_int_equal(tm_file_clean_temps(d), 2);
	assert_false(present(d, ".state.json.tagmoor-tmp-aB3xY9"));
	assert_false(present(d, ".floor.tagmoor-tmp-000000"));
	assert_true(present(d, "state.json.tmp.Qw12Er")); /* unnamed: kept */
	assert_int_equal(tm_file_clean_temps_named(d, names, 2), 1);
	assert_false(present(d, "state.json.tmp.Qw12Er"));
	assert_true(present(d, "other.tmp.Qw12Er"));
	assert_true(present(d, "state.json"));
	assert_true(present(d, ".x.tagmoor-tmp-abc"));
	assert_true(present(d, ".x.tagmoor-tmp-abc-ef"));
	assert_true(present(d, "x.tagmoor-tmp-abcdef"));
	assert_true(present(d, ".tagmoor-tmp-abcdef"));
	assert_true(present(d, ".link.tagmoor-tmp-abcdef"));
	assert_true(present(d, ".dir.tagmoor-tmp-abcdef"));
	assert_true(present(sub, ".config.tagmoor-tmp-abcdef"));
	assert_true(present(outside, "target"));
	assert_int_equal(tm_file_clean_temps_named(d, names, 2), 0);

	/* not a directory: an error naming it */
	snprintf(p, sizeof(p), "%s/state.json", d);
	assert_int_equal(tm_file_clean_temps(p), TM_EIO);
	assert_non_null(strstr(tm_error_last(), p));
}

static void test_long_names(void **state)
{
	/* a 255-byte file name (the longest unit name systemd accepts) can be
	 * replaced: its temp name is cut to stay within NAME_MAX */
	char name[256], path[1024], got[300];

	(void)state;
	memset(name, 'a', 255);
	memcpy(name + 255 - 8, ".service", 9);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(tm_file_write_atomic(path, "long", 4, 0644), 0);
	read_expect(path, "long");
	write_killed_at(path, "synced");
	assert_int_equal(find_entry(got, sizeof(got), dir, ".aaaa"), 1);
	assert_true(strlen(got) <= 255);
	assert_true(tm_file_is_temp_name(got));
	assert_int_equal(tm_file_clean_temps(dir), 1);
	assert_int_equal(unlink(path), 0);
}

static int setup(void **state)
{
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replace_and_failures),
		cmocka_unit_test(test_read_caps_and_symlinks),
		cmocka_unit_test(test_mkdirs),
		cmocka_unit_test(test_killed_write_leaves_recognisable_temp),
		cmocka_unit_test(test_clean_only_ours),
		cmocka_unit_test(test_long_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
