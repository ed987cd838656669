/*
 * test_time.c — the clock and calendar helpers of core/time.c: RFC 3339 UTC times both ways,
 * days from a civil date across eras and leap days, and a monotonic clock that does not go back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"

static void test_times(void **state)
{
	int64_t t;
	char s[32];

	assert_int_equal(tm_time_parse(&t, "1970-01-01T00:00:00Z", 20), 0);
	assert_true(t == 0);
	assert_int_equal(tm_time_parse(&t, "2026-12-31T00:00:00Z", 20), 0);
	assert_true(t == 1798675200);
	tm_time_format(s, sizeof(s), t);
	assert_string_equal(s, "2026-12-31T00:00:00Z");
	assert_int_equal(tm_time_parse(&t, "2024-02-29T23:59:59Z", 20), 0);
	assert_true(t == 1709251199);
	assert_int_equal(tm_time_parse(&t, "2026-12-31 00:00:00Z", 20), TM_EPARSE);
	assert_int_equal(tm_time_parse(&t, "2026-12-31T00:00:00+01:00", 25), TM_EPARSE);
	assert_int_equal(tm_time_parse(&t, "2026-13-01T00:00:00Z", 20), TM_EPARSE);
	assert_int_equal(tm_time_parse(&t, "2026-12-31T00:00:00", 19), TM_EPARSE);
}

static void test_civil(void **state)
{
	assert_true(tm_time_days_from_civil(1970, 1, 1) == 0);
	assert_true(tm_time_days_from_civil(1969, 12, 31) == -1);
	assert_true(tm_time_days_from_civil(2000, 3, 1) == 11017);
	assert_true(tm_time_days_from_civil(2024, 2, 29) == 19782);
	assert_true(tm_time_days_from_civil(1600, 1, 1) == -135140);
	assert_int_equal(tm_time_days_in_month(2024, 2), 29);
	assert_int_equal(tm_time_days_in_month(2100, 2), 28);
	assert_int_equal(tm_time_days_in_month(2000, 2), 29);
	assert_int_equal(tm_time_days_in_month(2026, 4), 30);
	assert_int_equal(tm_time_days_in_month(2026, 12), 31);
}

static void test_monotonic(void **state)
{
	int64_t a = tm_time_mono_ms(), b = tm_time_mono_ms();

	assert_true(a >= 0);
	assert_true(b >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_civil),
		cmocka_unit_test(test_monotonic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
