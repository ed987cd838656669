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
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/core/error.h"
#include "tagmoor/state/state.h"

static char dir[] = "/tmp/tm-state-XXXXXX";
#define A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define K1 "1111111111111111111111111111111111111111111111111111111111111111"
#define K2 "2222222222222222222222222222222222222222222222222222222222222222"

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void test_roundtrip(void **state)
{
	struct tm_state st, back;
	char *ids[] = { "web.service", "web.service.d/10-env.conf", "quote\"and\\back" };

	assert_int_equal(tm_state_load(&st, dir, 0), 0); /* missing: empty */
	assert_true(st.accepted_time == -1);
	assert_int_equal(st.applied.commit[0], 0);
	memcpy(st.applied.commit, A, 41);
	memcpy(st.applied.tag_object, B, 41);
	st.applied.tag_time = 1700000000;
	snprintf(st.applied.signer, sizeof(st.applied.signer), "release@example.com");
	st.last_good = st.applied;
	st.accepted_time = 1700000000;
	st.seq = 41;
	tm_state_mark_bad(&st, B, K1);
	tm_state_mark_bad(&st, B, K1); /* once */
	assert_int_equal(st.nbad, 1);
	assert_int_equal(tm_state_set_inventory(&st, "systemd", ids, 3), 0);
	assert_int_equal(
		tm_state_set_status(
			&st, "{\"state\":\"synced\",\"time\":\"2026-11-26T12:00:00Z\",\"seq\":41}"),
		0);
	assert_int_equal(tm_state_save(&st, dir), 0);

	assert_int_equal(tm_state_load(&back, dir, 0), 0);
	assert_string_equal(back.applied.commit, A);
	assert_string_equal(back.applied.tag_object, B);
	assert_true(back.applied.tag_time == 1700000000);
	assert_string_equal(back.applied.signer, "release@example.com");
	assert_string_equal(back.last_good.commit, A);
	assert_true(back.accepted_time == 1700000000);
	assert_true(back.seq == 41);
	assert_true(tm_state_is_bad(&back, B, NULL));
	assert_false(tm_state_is_bad(&back, A, NULL));
	/* the same signed content under another object id */
	assert_true(tm_state_is_bad(&back, A, K1));
	assert_false(tm_state_is_bad(&back, A, K2));
	assert_false(tm_state_is_bad(&back, A, ""));
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

	assert_int_equal(tm_state_load(&st, "/nonexistent-dir-for-tagmoor", 0), 0);
	for (int i = 0; i < TM_STATE_MAX_BAD + 5; i++) {
		snprintf(oid, sizeof(oid), "%040d", i);
		tm_state_mark_bad(&st, oid, NULL);
	}
	assert_int_equal(st.nbad, TM_STATE_MAX_BAD);
	snprintf(oid, sizeof(oid), "%040d", TM_STATE_MAX_BAD + 4);
	assert_true(tm_state_is_bad(&st, oid, NULL)); /* newest kept */
	snprintf(oid, sizeof(oid), "%040d", 0);
	assert_false(tm_state_is_bad(&st, oid, NULL)); /* oldest dropped */
	tm_state_free(&st);
}

static void test_broken_moved_aside(void **state)
{
	static const char *const broken[] = {
		"",
		"{",
		"not json",
		"[]",
		"{\"schema\":\"other\"}",
		"{\"schema\":\"tagmoor.state/v1\"}",
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
		assert_int_equal(tm_state_load(&st, dir, 0), 0);
		assert_non_null(st.moved_aside);
		assert_int_equal(access(path, F_OK), -1);          /* gone */
		assert_int_equal(access(st.moved_aside, F_OK), 0); /* kept for a human */
		assert_int_equal(st.applied.commit[0], 0);
		unlink(st.moved_aside);
		tm_state_free(&st);
	}
}

/* A state.json larger than the old JSON parser limit (4 MiB) is valid and
 * loads; status (read-only) never moves a file aside; an unreadable file
 * (EISDIR here) is an error that moves nothing. */
static void test_large_state_and_readonly(void **state)
{
	struct tm_state st, back;
	char path[512], **ids = NULL;
	size_t n = 0;
	char id[320];

	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	for (int i = 0; i < 20000; i++) { /* ~5.3 MiB of (long) ids */
		snprintf(id, sizeof(id), "apps/Deployment/default/web-%06d-%0250d", i, 0);
		assert_int_equal(tm_strv_push(&ids, &n, id), 0);
	}
	assert_int_equal(tm_state_set_inventory(&st, "kubernetes", ids, n), 0);
	st.accepted_time = 1800000000;
	st.seq = 7;
	assert_int_equal(tm_state_save(&st, dir), 0);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 5 * 1024 * 1024);
	assert_int_equal(tm_state_load(&back, dir, 0), 0);
	assert_null(back.moved_aside);
	assert_int_equal(tm_state_inventory(&back, "kubernetes")->n, n);
	tm_state_free(&back);
	tm_strv_free(ids, n);
	tm_state_free(&st);

	/* read-only: a broken file is shown as empty and stays where it is */
	write_file(path, "{broken", 7);
	assert_int_equal(tm_state_load(&st, dir, 1), 0);
	assert_null(st.moved_aside);
	assert_int_equal(access(path, F_OK), 0);
	assert_true(st.accepted_time == 1800000000); /* from the floor file */
	tm_state_free(&st);
	unlink(path);

	/* an I/O error (a directory where the file should be) moves nothing */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tm_state_load(&st, dir, 0), TM_EIO);
	assert_int_equal(access(path, F_OK), 0);
	rmdir(path);
	tm_state_free(&st);
}

/* The floor and seq survive a state.json that is moved aside. */
static void test_floor_survives(void **state)
{
	struct tm_state st;
	char path[512];

	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	st.accepted_time = 1900000000;
	memcpy(st.accepted_key, K2, 65);
	st.seq = 99;
	assert_int_equal(tm_state_save(&st, dir), 0);
	tm_state_free(&st);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	write_file(path, "garbage", 7);
	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	assert_non_null(st.moved_aside);
	assert_true(st.accepted_time == 1900000000);
	assert_string_equal(st.accepted_key, K2);
	assert_true(st.seq == 99);
	unlink(st.moved_aside);
	tm_state_free(&st);
	/* a damaged floor file is ignored, state.json's floor is used */
	snprintf(path, sizeof(path), "%s/floor", dir);
	write_file(path, "{\"x\":", 6);
	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	assert_true(st.accepted_time == -1);
	tm_state_free(&st);
	unlink(path);
}

/* What tagmoor owns survives a state.json that is damaged or lost (the inventory file); a
 * damaged inventory file is ignored; with a state.json that parses, state.json decides. */
static void test_inventory_survives(void **state)
{
	struct tm_state st;
	char path[512], inv_path[512];
	char *ids[2] = { "systemd:web.service", "systemd:web.service.d/10-env.conf" };
	const struct tm_inventory *inv;
	const char *damaged, *other;

	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	assert_int_equal(tm_state_set_inventory(&st, "systemd", ids, 2), 0);
	assert_int_equal(tm_state_save(&st, dir), 0);
	tm_state_free(&st);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	snprintf(inv_path, sizeof(inv_path), "%s/inventory", dir);
	write_file(path, "{\"schema\": \"tagmoor.state/v1\", \"applied\": {", 43);
	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	assert_non_null(st.moved_aside);
	inv = tm_state_inventory(&st, "systemd");
	assert_non_null(inv);
	assert_int_equal(inv->n, 2);
	assert_string_equal(inv->ids[0], ids[0]);
	assert_string_equal(inv->ids[1], ids[1]);
	unlink(st.moved_aside);
	tm_state_free(&st);
	/* lost: the same */
	assert_int_equal(tm_state_load(&st, dir, 1), 0);
	assert_int_equal(tm_state_inventory(&st, "systemd")->n, 2);
	tm_state_free(&st);
	/* a damaged inventory file: ignored, nothing owned */
	damaged = "{\"schema\":\"tagmoor.inventory/v1\",\"inventory\":{\"systemd\":[1]}}";
	write_file(inv_path, damaged, strlen(damaged));
	assert_int_equal(tm_state_load(&st, dir, 1), 0);
	assert_int_equal(tm_state_inventory(&st, "systemd")->n, 0);
	tm_state_free(&st);
	/* state.json decides when it parses */
	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	assert_int_equal(tm_state_save(&st, dir), 0);
	tm_state_free(&st);
	other = "{\"schema\":\"tagmoor.inventory/v1\",\"inventory\":{\"systemd\":[\"x\"]}}";
	write_file(inv_path, other, strlen(other));
	assert_int_equal(tm_state_load(&st, dir, 0), 0);
	assert_int_equal(tm_state_inventory(&st, "systemd")->n, 0);
	tm_state_free(&st);
	unlink(inv_path);
	unlink(path);
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
		cmocka_unit_test(test_large_state_and_readonly),
		cmocka_unit_test(test_floor_survives),
		cmocka_unit_test(test_inventory_survives),
		cmocka_unit_test(test_lock),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
