/*
 * test_fileio.c — atomic replace and bounded reads. A failure between write
 * and rename must leave the old file intact and no temporary file behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/error.h"
#include "tagmoor/fileio.h"

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

static void test_mkdirs(void **state)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(tm_file_mkdirs(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(tm_file_mkdirs(path, 0700), 0); /* exists */
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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
