/*
 * test_state.c — state.json round trip, a broken file moved aside (never a
 * crash), the lock (a second holder gets TM_ELOCKED → exit 5), bad-revision
 * bookkeeping, and deleting the state directory being safe.
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
#include <unistd.h>

#include "tagmoor/error.h"
#include "tagmoor/state.h"

static char dir[] = "/tmp/tm-state-XXXXXX";
#define A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_roundtrip(void **state)
{
	struct tm_state st, back;
	char *ids[] = { "web.service", "web.service.d/10-env.conf", "quote\"and\\back" };

	assert_int_equal(tm_state_load(&st, dir), 0); /* missing: empty */
	assert_true(st.accepted_time == -1);
	assert_int_equal(st.applied.commit[0], 0);
	memcpy(st.applied.commit, A, 41);
	memcpy(st.applied.tag_object, B, 41);
	st.applied.tag_time = 1700000000;
	snprintf(st.applied.signer, sizeof(st.applied.signer), "release@example.com");
	st.last_good = st.applied;
	st.accepted_time = 1700000000;
	st.seq = 41;
	tm_state_mark_bad(&st, B);
	tm_state_mark_bad(&st, B); /* once */
	assert_int_equal(st.nbad, 1);
	assert_int_equal(tm_state_set_inventory(&st, "systemd", ids, 3), 0);
	assert_int_equal(tm_state_set_status(&st, "{\"state\":\"synced\",\"time\":\"2026-11-26T12:00:00Z\",\"seq\":41}"), 0);
	assert_int_equal(tm_state_save(&st, dir), 0);

	assert_int_equal(tm_state_load(&back, dir), 0);
	assert_string_equal(back.applied.commit, A);
	assert_string_equal(back.applied.tag_object, B);
	assert_true(back.applied.tag_time == 1700000000);
	assert_string_equal(back.applied.signer, "release@example.com");
	assert_string_equal(back.last_good.commit, A);
	assert_true(back.accepted_time == 1700000000);
	assert_true(back.seq == 41);
	assert_true(tm_state_is_bad(&back, B));
	assert_false(tm_state_is_bad(&back, A));
	struct tm_inventory *inv = tm_state_inventory(&back, "systemd");
	assert_int_equal(inv->n, 3);
	assert_string_equal(inv->ids[2], "quote\"and\\back");
	assert_string_equal(back.last_state, "synced");
	assert_true(back.last_time == 1795694400);
	assert_null(back.moved_aside);
	tm_state_free(&st);
	tm_state_free(&back);
}

static void test_bad_list_is_bounded(void **state)
{
	struct tm_state st;
	char oid[41];

	assert_int_equal(tm_state_load(&st, "/nonexistent-dir-for-tagmoor"), 0);
	for (int i = 0; i < TM_STATE_MAX_BAD + 5; i++) {
		snprintf(oid, sizeof(oid), "%040d", i);
		tm_state_mark_bad(&st, oid);
	}
	assert_int_equal(st.nbad, TM_STATE_MAX_BAD);
	snprintf(oid, sizeof(oid), "%040d", TM_STATE_MAX_BAD + 4);
	assert_true(tm_state_is_bad(&st, oid)); /* newest kept */
	snprintf(oid, sizeof(oid), "%040d", 0);
	assert_false(tm_state_is_bad(&st, oid)); /* oldest dropped */
	tm_state_free(&st);
}

static void test_broken_moved_aside(void **state)
{
	static const char *const broken[] = {
		"", "{", "not json", "[]", "{\"schema\":\"other\"}", "{\"schema\":\"tagmoor.state/v1\"}",
		"{\"schema\":\"tagmoor.state/v1\",\"applied\":{\"commit\":\"xyz\",\"tag_object\":null,\"tag_time\":-1},"
		"\"last_good\":{\"commit\":null,\"tag_object\":null,\"tag_time\":-1},\"accepted_tag_time\":-1,"
		"\"bad\":[],\"inventory\":{},\"seq\":0,\"last_status\":null}",
	};
	char path[512];

	snprintf(path, sizeof(path), "%s/state.json", dir);
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		struct tm_state st;
		FILE *f = fopen(path, "w");
		fputs(broken[i], f);
		fclose(f);
		assert_int_equal(tm_state_load(&st, dir), 0);
		assert_non_null(st.moved_aside);
		assert_int_equal(access(path, F_OK), -1);          /* gone */
		assert_int_equal(access(st.moved_aside, F_OK), 0); /* kept for a human */
		assert_int_equal(st.applied.commit[0], 0);
		unlink(st.moved_aside);
		tm_state_free(&st);
	}
}

static void test_lock(void **state)
{
	char sub[512];
	int fd1, fd2;

	snprintf(sub, sizeof(sub), "%s/new/state", dir); /* created on demand */
	assert_int_equal(tm_state_lock(&fd1, sub), 0);
	assert_int_equal(tm_state_lock(&fd2, sub), TM_ELOCKED);
	assert_int_equal(tm_error_exit_code(TM_ELOCKED), 5);
	assert_non_null(strstr(tm_error_last(), "another tagmoor holds"));
	tm_state_unlock(fd1);
	assert_int_equal(tm_state_lock(&fd2, sub), 0);
	tm_state_unlock(fd2);
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
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad_list_is_bounded),
		cmocka_unit_test(test_broken_moved_aside),
		cmocka_unit_test(test_lock),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
