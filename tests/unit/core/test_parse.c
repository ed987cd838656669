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

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

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

/* Pages of [p, p + n) resident now: count. */
static size_t resident(const char *p, size_t n, size_t page)
{
	unsigned char v[512];
	size_t k = 0;

	assert_true(n / page <= sizeof(v));
	assert_int_equal(mincore((void *)p, n, v), 0);
	for (size_t i = 0; i < n / page; i++)
		k += v[i] & 1;
	return k;
}

/* tm_mem_populate backs the whole pages inside a large block at once and
 * changes no byte of it; small blocks and the partial pages at its ends are
 * left alone; a buffer that grows through it keeps its content. */
static void test_mem_populate(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 64 * page;
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct tm_buf b;
	int kernel_has = 1;

	(void)state;
	assert_true(p != MAP_FAILED);
	if (madvise(p + n - page, page, MADV_POPULATE_WRITE) != 0) {
		assert_int_equal(errno, EINVAL); /* before Linux 5.14: nothing to check */
		kernel_has = 0;
	}
	p[page / 2] = 'a';                       /* page 0: touched by us */
	p[5 * page] = 'b';                       /* page 5 */
	tm_mem_populate(p + page - 1, 2 * page); /* under the minimum: nothing */
	assert_int_equal(resident(p + page, page, page), 0);
	tm_mem_populate(p + page / 2, n - page - page / 2); /* pages 1 .. 62 whole inside */
	if (kernel_has) /* before reading: a read maps the zero page, resident too */
		assert_int_equal(resident(p + page, n - 2 * page, page), n / page - 2);
	assert_int_equal(p[page / 2], 'a');
	assert_int_equal(p[5 * page], 'b');
	for (size_t i = 1; i < n / page - 1; i++)
		if (i != 5)
			assert_int_equal(p[i * page + 7], 0);
	tm_mem_populate(p, 0);
	tm_mem_populate(NULL, 0);
	munmap(p, n);

	tm_buf_init(&b, 4u << 20);
	for (unsigned i = 0; i < 300000; i++)
		assert_int_equal(tm_buf_putc(&b, (char)('a' + i % 26)), 0);
	assert_int_equal(b.len, 300000);
	for (unsigned i = 0; i < 300000; i++)
		if (b.ptr[i] != (char)('a' + i % 26))
			fail_msg("byte %u changed", i);
	assert_int_equal(b.ptr[b.len], '\0');
	tm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),        cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_booleans),         cmocka_unit_test(test_percent_and_uint),
		cmocka_unit_test(test_format_roundtrip), cmocka_unit_test(test_buf_bounds),
		cmocka_unit_test(test_mem_populate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
