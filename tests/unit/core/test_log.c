/*
 * test_log.c — log lines as they reach stderr (log.c): text with a
 * timestamp, JSON lines escaped, the level filter, and the journal mode
 * ($JOURNAL_STREAM naming stderr's device:inode): "<N>" syslog priorities
 * (error 3, warn 4, info 6, debug 7), no timestamp on text lines, JSON still
 * JSON after the prefix; a JOURNAL_STREAM naming another file changes
 * nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/core/log.h"

static char path[64];
static int saved_stderr = -1;

/* stderr goes to a fresh file until capture_end() */
static void capture_begin(void)
{
	snprintf(path, sizeof(path), "/tmp/tm-log-%ld.txt", (long)getpid());
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_non_null(freopen(path, "w", stderr));
}

static char *capture_end(void)
{
	static char text[8192];
	FILE *f;
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	clearerr(stderr);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	unlink(path);
	return text;
}

static void stream_of_stderr(char *out, size_t n)
{
	struct stat st;

	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(out, n, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

static void test_text(void **state)
{
	char *t;

	(void)state;
	unsetenv("JOURNAL_STREAM");
	capture_begin();
	tm_log_setup(TM_LOG_TEXT, TM_LOG_INFO);
	assert_int_equal(tm_log_to_journal(), 0);
	tm_log_info("hello %s", "world");
	tm_log_debug("not shown");
	tm_log_error("two\nlines");
	t = capture_end();
	assert_non_null(strstr(t, "Z info hello world\n"));
	assert_non_null(strstr(t, "Z error two lines\n"));
	assert_null(strstr(t, "not shown"));
	assert_true(t[0] == '2'); /* a timestamp first */
}

static void test_journal_text(void **state)
{
	char js[64], *t;

	(void)state;
	capture_begin();
	stream_of_stderr(js, sizeof(js));
	setenv("JOURNAL_STREAM", js, 1);
	tm_log_setup(TM_LOG_TEXT, TM_LOG_DEBUG);
	assert_int_equal(tm_log_to_journal(), 1);
	tm_log_error("e");
	tm_log_warn("w");
	tm_log_info("i");
	tm_log_debug("d");
	t = capture_end();
	assert_string_equal(t, "<3>error e\n<4>warn w\n<6>info i\n<7>debug d\n");
	unsetenv("JOURNAL_STREAM");
}

static void test_journal_json(void **state)
{
	char js[64], *t;

	(void)state;
	capture_begin();
	stream_of_stderr(js, sizeof(js));
	setenv("JOURNAL_STREAM", js, 1);
	tm_log_setup(TM_LOG_JSON, TM_LOG_INFO);
	tm_log_warn("quote \" here");
	t = capture_end();
	assert_true(strncmp(t, "<4>{\"time\":\"", 12) == 0);
	assert_non_null(strstr(t, "\"level\":\"warn\",\"msg\":\"quote \\\" here\"}\n"));
	unsetenv("JOURNAL_STREAM");
}

static void test_journal_other_stream(void **state)
{
	char *t;

	(void)state;
	capture_begin();
	setenv("JOURNAL_STREAM", "1:2", 1);
	tm_log_setup(TM_LOG_TEXT, TM_LOG_INFO);
	assert_int_equal(tm_log_to_journal(), 0);
	tm_log_info("plain");
	t = capture_end();
	assert_true(t[0] == '2');
	assert_non_null(strstr(t, "Z info plain\n"));
	unsetenv("JOURNAL_STREAM");
}

static void test_journal_matches(void **state)
{
	char js[64], bad[80];

	(void)state;
	stream_of_stderr(js, sizeof(js));
	assert_int_equal(tm_log_journal_matches(js, STDERR_FILENO), 1);
	assert_int_equal(tm_log_journal_matches(NULL, STDERR_FILENO), 0);
	assert_int_equal(tm_log_journal_matches("", STDERR_FILENO), 0);
	assert_int_equal(tm_log_journal_matches("12", STDERR_FILENO), 0);
	snprintf(bad, sizeof(bad), "%sx", js);
	assert_int_equal(tm_log_journal_matches(bad, STDERR_FILENO), 0);
	assert_int_equal(tm_log_journal_matches(js, 999), 0); /* not open */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_journal_text),
		cmocka_unit_test(test_journal_json),
		cmocka_unit_test(test_journal_other_stream),
		cmocka_unit_test(test_journal_matches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
