/*
 * test_mcache.c — the cache of freed blocks of core/mcache.c: its rules driven directly (which
 * sizes it keeps, where it stops, what it hands out for a request), and, in the static musl build
 * where it is malloc itself, the allocator it makes (the same block back, calloc's zeroes, realloc
 * that keeps the bytes, other threads left out, drop). The Debian build has no cache: that part
 * reports itself skipped there; the shipped binary's integration tier runs on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tagmoor/core/mcache.h"

static char blocks[64][16];
static int released;

static void count_release(void *p)
{
	(void)p;
	released++;
}

static void test_rules(void **state)
{
	struct tm_mcache c;

	memset(&c, 0, sizeof(c));
	assert_null(tm_mcache_take(&c, 7160));
	assert_int_equal(c.st.misses, 1);
	/* outside the bins: neither kept nor looked for */
	assert_int_equal(tm_mcache_keep(&c, blocks[0], 255), 0);
	assert_int_equal(tm_mcache_keep(&c, blocks[0], 256 * 1024), 0);
	assert_int_equal(tm_mcache_keep(&c, NULL, 4096), 0);
	assert_null(tm_mcache_take(&c, 100));
	assert_null(tm_mcache_take(&c, 300 * 1024));
	assert_int_equal(c.st.misses, 1);

	/* a block for requests of its bin up to its size, never for a smaller bin's or a bigger */
	assert_int_equal(tm_mcache_keep(&c, blocks[1], 7160), 1);
	assert_true(c.bytes == 7160);
	assert_null(tm_mcache_take(&c, 7161));
	assert_null(tm_mcache_take(&c, 4095));
	assert_ptr_equal(tm_mcache_take(&c, 4096), blocks[1]);
	assert_true(c.bytes == 0);
	assert_null(tm_mcache_take(&c, 4096));

	/* the newest that fits first; one that does not fit stays */
	assert_int_equal(tm_mcache_keep(&c, blocks[2], 5000), 1);
	assert_int_equal(tm_mcache_keep(&c, blocks[3], 5000), 1);
	assert_int_equal(tm_mcache_keep(&c, blocks[4], 4100), 1);
	assert_int_equal(tm_mcache_keep(&c, blocks[2], 5000), -1); /* freed twice */
	assert_int_equal(tm_mcache_keep(&c, blocks[3], 5000), -1);
	assert_ptr_equal(tm_mcache_take(&c, 4500), blocks[3]);
	assert_ptr_equal(tm_mcache_take(&c, 4500), blocks[2]);
	assert_null(tm_mcache_take(&c, 4500));
	assert_ptr_equal(tm_mcache_take(&c, 4097), blocks[4]);
	assert_int_equal(c.st.hits, 4);

	/* a full bin keeps no more */
	for (int i = 0; i < TM_MCACHE_PER_BIN; i++)
		assert_int_equal(tm_mcache_keep(&c, blocks[10 + i], 300), 1);
	assert_int_equal(tm_mcache_keep(&c, blocks[20], 300), 0);
	assert_int_equal(tm_mcache_keep(&c, blocks[20], 600), 1);

	/* nor more bytes than TM_MCACHE_MAX_BYTES in all */
	released = 0;
	tm_mcache_empty(&c, count_release);
	assert_int_equal(released, TM_MCACHE_PER_BIN + 1);
	assert_true(c.bytes == 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tm_mcache_keep(&c, blocks[30 + i], 200 * 1000), 1);
	assert_int_equal(tm_mcache_keep(&c, blocks[35], 200 * 1000), 0);
	assert_int_equal(tm_mcache_keep(&c, blocks[35], 40 * 1024), 1);
	assert_true(c.bytes <= TM_MCACHE_MAX_BYTES);
	assert_true(c.st.peak_bytes == c.bytes);
	assert_int_equal(tm_mcache_keep(&c, blocks[36], 40 * 1024), 0);
	released = 0;
	tm_mcache_empty(&c, count_release);
	assert_int_equal(released, 6);
	assert_null(tm_mcache_take(&c, 200 * 1000));
}

static void *free_elsewhere(void *p)
{
	free(p);
	return NULL;
}

static void test_allocator(void **state)
{
	struct tm_mcache_stats s0, s;
	unsigned char *p, *q, *g = NULL;
	pthread_t t;

	if (!tm_mcache_stats(&s0)) {
		assert_true(s0.hits == 0 && s0.kept == 0 && s0.bytes == 0);
		tm_mcache_drop(); /* nothing to do, nothing done */
		skip();           /* the cache is in the static musl binary only */
	}
	tm_mcache_drop();

	/* the same block back for the same size, and for a smaller one of its bin */
	p = malloc(7000);
	assert_non_null(p);
	memset(p, 0xab, 7000);
	free(p);
	tm_mcache_stats(&s);
	assert_true(s.kept == s0.kept + 1 && s.bytes >= 7000);
	q = malloc(7000);
	assert_ptr_equal(q, p);
	free(q);
	q = malloc(4500);
	assert_ptr_equal(q, p);
	free(q);

	/* calloc's block is zero even when it was kept */
	q = calloc(10, 700);
	assert_ptr_equal(q, p);
	for (size_t i = 0; i < 7000; i++)
		if (q[i] != 0)
			fail_msg("calloc's byte %zu is %u", i, q[i]);
	free(q);

	/* a buffer that doubles keeps its bytes, through the cache and past it */
	for (size_t n = 300; n < 2 * 1024 * 1024; n *= 2) {
		unsigned char *h = realloc(g, n);

		assert_non_null(h);
		for (size_t i = 0; i < n / 2 && g; i++)
			if (h[i] != (unsigned char)(i * 7))
				fail_msg("realloc to %zu lost byte %zu", n, i);
		for (size_t i = 0; i < n; i++)
			h[i] = (unsigned char)(i * 7);
		g = h;
	}
	free(g);
	tm_mcache_stats(&s);
	assert_true(s.bytes <= TM_MCACHE_MAX_BYTES);
	assert_true(s.hits > s0.hits);

	/* another thread's frees go to malloc, not into the main thread's cache */
	tm_mcache_drop();
	p = malloc(5000);
	tm_mcache_stats(&s0);
	assert_int_equal(pthread_create(&t, NULL, free_elsewhere, p), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	tm_mcache_stats(&s);
	assert_true(s.kept == s0.kept && s.bytes == 0);

	/* what musl's free refuses, the cache refuses too: a block freed twice, a block whose
	 * bytes after its size were written, each in a child that must die of it */
	for (int how = 0; how < 2; how++) {
		pid_t pid;
		int st;

		tm_mcache_drop(); /* b is musl's, of exactly 5000 bytes (a kept block is checked at
				   * the size it was first asked with) */
		pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			unsigned char *volatile b = malloc(5000);
			const int sigs[] = { SIGSEGV, SIGILL, SIGBUS, SIGFPE, SIGSYS };

			for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
				signal(sigs[i],
				       SIG_DFL); /* cmocka's handlers would go on testing */

			if (how == 0) {
				free(b);
				free(b);
			} else {
				((volatile unsigned char *)b)[5000] = 1; /* no dead store */
				free(b);
			}
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFSIGNALED(st))
			fail_msg("%s: the child exited with %d", how ? "overflow" : "double free",
				 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}

	/* drop gives everything back */
	for (int i = 0; i < 4; i++) {
		void *volatile v =
			malloc(1000 + 20000 * (size_t)i); /* not a pair the compiler drops */

		assert_non_null(v);
		free(v);
	}
	tm_mcache_stats(&s);
	assert_true(s.bytes > 0);
	tm_mcache_drop();
	tm_mcache_stats(&s);
	assert_true(s.bytes == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_allocator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
