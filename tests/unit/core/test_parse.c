/*
 * test_parse.c — durations, sizes, booleans, percentages: every unit, the
 * boundaries (0, max, max + 1 overflow) and the junk that must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/parse.h"

static void test_durations(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {
		{ "0", 0 },        { "0s", 0 },         { "250ms", 250 },
		{ "1s", 1000 },    { "60s", 60000 },    { "10m", 600000 },
		{ "1h", 3600000 }, { "2d", 172800000 }, { "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"",
		"s",
		"60",
		"-1s",
		"+1s",
		"1.5s",
		"1 s",
		" 1s",
		"1s ",
		"1S",
		"1sec",
		"1w",
		"18446744073709551616ms",
		"18446744073709552s",
		"0x10s",
		"1h30m",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(tm_parse_duration(&v, ok[i].s), 0);
		assert_true(v == ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tm_parse_duration(&v, bad[i]) != TM_EPARSE) {
			print_error("accepted bad duration '%s'\n", bad[i]);
			fail();
		}
	}
	assert_int_equal(tm_parse_duration(&v, "60"), TM_EPARSE);
	assert_string_equal(tm_error_last(), "duration '60' needs a unit (ms, s, m, h or d)");
}

static void test_sizes(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "0", 0 },
		{ "1024", 1024 },
		{ "1B", 1 },
		{ "1KiB", 1024 },
		{ "64MiB", 64ull << 20 },
		{ "4GiB", 4ull << 30 },
		{ "17179869183GiB", 17179869183ull << 30 },
	};
	static const char *const bad[] = { "",
					   "KiB",
					   "1KB",
					   "1kib",
					   "1 MiB",
					   "-1",
					   "1.5MiB",
					   "17179869184GiB",
					   "99999999999999999999" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(tm_parse_size(&v, ok[i].s), 0);
		assert_true(v == ok[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tm_parse_size(&v, bad[i]) != TM_EPARSE) {
			print_error("accepted bad size '%s'\n", bad[i]);
			fail();
		}
	}
}

static void test_booleans(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off", "0" };
	static const char *const bad[] = { "", "y", "n", "2", "enabled", "yes ", "truee" };
	int v;

	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(tm_parse_bool(&v, yes[i]), 0);
		assert_int_equal(v, 1);
		assert_int_equal(tm_parse_bool(&v, no[i]), 0);
		assert_int_equal(v, 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tm_parse_bool(&v, bad[i]), TM_EPARSE);
}

static void test_percent_and_uint(void **state)
{
	unsigned p;
	uint64_t u;

	assert_int_equal(tm_parse_percent(&p, "10%"), 0);
	assert_int_equal(p, 10);
	assert_int_equal(tm_parse_percent(&p, "100"), 0);
	assert_int_equal(tm_parse_percent(&p, "101%"), TM_EPARSE);
	assert_int_equal(tm_parse_percent(&p, "%"), TM_EPARSE);
	assert_int_equal(tm_parse_percent(&p, "5%%"), TM_EPARSE);
	assert_int_equal(tm_parse_uint(&u, "18446744073709551615"), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(tm_parse_uint(&u, "18446744073709551616"), TM_EPARSE);
	assert_int_equal(tm_parse_uint(&u, ""), TM_EPARSE);
}

static void test_format_roundtrip(void **state)
{
	char s[32];
	uint64_t v;
	static const uint64_t ms[] = { 0, 1, 999, 1000, 60000, 90000, 3600000, 86400000, 86400001 };

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		tm_format_duration(s, sizeof(s), ms[i]);
		assert_int_equal(tm_parse_duration(&v, s), 0);
		assert_true(v == ms[i]);
	}
	tm_format_size(s, sizeof(s), 64ull << 20);
	assert_string_equal(s, "64MiB");
}

static void test_buf_bounds(void **state)
{
	struct tm_buf b;

	tm_buf_init(&b, 8); /* 7 bytes + NUL */
	assert_int_equal(tm_buf_puts(&b, "1234567"), 0);
	assert_int_equal(tm_buf_putc(&b, '8'), TM_ELIMIT);
	assert_int_equal(b.len, 7);
	assert_string_equal(b.ptr, "1234567");
	assert_int_equal(tm_buf_put(&b, "x", SIZE_MAX), TM_ELIMIT);
	tm_buf_reset(&b);
	assert_int_equal(tm_buf_printf(&b, "%d%s", 12, "abcd"), 0);
	assert_string_equal(b.ptr, "12abcd");
	assert_int_equal(tm_buf_printf(&b, "%s", "xy"), TM_ELIMIT);
	tm_buf_free(&b);
	tm_buf_free(&b); /* idempotent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),        cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_booleans),         cmocka_unit_test(test_percent_and_uint),
		cmocka_unit_test(test_format_roundtrip), cmocka_unit_test(test_buf_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
