/*
 * test_doc.c — the document tree and its JSON emitter: constructors, map
 * order and replacement, the hash index of big maps, removal, clone and
 * equality, paths, and the emitter's exact output (raw UTF-8, only '"', '\\'
 * and control characters escaped, Go's float formatting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"

static char *json(const struct tm_doc *d)
{
	struct tm_buf b;

	tm_buf_init(&b, 1 << 20);
	assert_int_equal(tm_doc_to_json(&b, d), 0);
	return tm_buf_detach(&b);
}

static void assert_json(const struct tm_doc *d, const char *want)
{
	char *got = json(d);

	if (strcmp(got, want) != 0) {
		print_error("got  %s\nwant %s\n", got, want);
		free(got);
		fail();
	}
	free(got);
}

static struct tm_doc *str(const char *s)
{
	struct tm_doc *d;

	assert_int_equal(tm_doc_new_string(&d, s), 0);
	return d;
}

static struct tm_doc *num(int64_t i)
{
	struct tm_doc *d;

	assert_int_equal(tm_doc_new_int(&d, i), 0);
	return d;
}

static void test_scalars(void **state)
{
	struct tm_doc *d;

	assert_int_equal(tm_doc_new_null(&d), 0);
	assert_int_equal(d->type, TM_DOC_NULL);
	assert_json(d, "null");
	tm_doc_free(d);
	assert_int_equal(tm_doc_new_bool(&d, 7), 0);
	assert_int_equal(d->u.b, 1);
	assert_json(d, "true");
	tm_doc_free(d);
	d = num(INT64_MIN);
	assert_json(d, "-9223372036854775808");
	tm_doc_free(d);
	assert_int_equal(tm_doc_new_stringn(&d, "a\0b", 3), 0);
	assert_int_equal(d->u.str.len, 3);
	assert_json(d, "\"a\\u0000b\"");
	assert_string_equal(tm_doc_string(d), "a");
	tm_doc_free(d);
	assert_int_equal(tm_doc_new(&d, TM_DOC_STRING), 0);
	assert_string_equal(tm_doc_string(d), "");
	tm_doc_free(d);
	assert_int_equal(tm_doc_new(&d, (enum tm_doc_type)42), TM_ERROR);
	assert_null(d);
	assert_null(tm_doc_string(NULL));
	tm_doc_free(NULL);
	assert_string_equal(tm_doc_type_name(TM_DOC_MAP), "object");
	assert_string_equal(tm_doc_type_name(TM_DOC_FLOAT), "number");
}

static void test_map_order_and_replace(void **state)
{
	struct tm_doc *m, *old;

	assert_int_equal(tm_doc_new_map(&m), 0);
	assert_int_equal(tm_doc_map_set(m, "b", num(1)), 0);
	assert_int_equal(tm_doc_map_set(m, "a", num(2)), 0);
	assert_int_equal(tm_doc_map_set(m, "c", num(3)), 0);
	assert_json(m, "{\"b\":1,\"a\":2,\"c\":3}");
	/* Replacing keeps the position. */
	assert_int_equal(tm_doc_map_set(m, "b", str("x")), 0);
	assert_json(m, "{\"b\":\"x\",\"a\":2,\"c\":3}");
	assert_int_equal(tm_doc_map_exchange(m, "a", 1, num(9), &old), 0);
	assert_non_null(old);
	assert_int_equal(old->u.i, 2);
	tm_doc_free(old);
	assert_int_equal(tm_doc_map_exchange(m, "d", 1, num(4), &old), 0);
	assert_null(old);
	assert_int_equal(tm_doc_len(m), 4);
	assert_int_equal(tm_doc_map_remove(m, "a"), 0);
	assert_int_equal(tm_doc_map_remove(m, "a"), TM_ENOTFOUND);
	assert_json(m, "{\"b\":\"x\",\"c\":3,\"d\":4}");
	old = tm_doc_map_take(m, "c");
	assert_non_null(old);
	tm_doc_free(old);
	assert_null(tm_doc_map_take(m, "c"));
	assert_json(m, "{\"b\":\"x\",\"d\":4}");
	/* A key handed over: taken when new, freed when the map has it already. */
	char *k = strdup("e");
	assert_non_null(k);
	assert_int_equal(tm_doc_map_exchange_key(m, k, 1, num(6), &old), 0);
	assert_null(old);
	assert_ptr_equal(m->u.map.v[m->u.map.n - 1].key, k);
	k = strdup("e");
	assert_non_null(k);
	assert_int_equal(tm_doc_map_exchange_key(m, k, 1, num(7), &old), 0);
	assert_non_null(old);
	assert_int_equal(old->u.i, 6);
	tm_doc_free(old);
	assert_int_equal(tm_doc_map_get(m, "e")->u.i, 7);
	assert_int_equal(tm_doc_map_remove(m, "e"), 0);
	/* misuse frees the key and the value */
	k = strdup("f");
	assert_non_null(k);
	assert_int_equal(tm_doc_map_exchange_key(NULL, k, 1, num(1), &old), TM_ERROR);
	assert_null(old);
	/* Keys with NUL bytes are keys like any other. */
	assert_int_equal(tm_doc_map_setn(m, "k\0z", 3, num(5)), 0);
	assert_non_null(tm_doc_map_getn(m, "k\0z", 3));
	assert_null(tm_doc_map_get(m, "k"));
	assert_json(m, "{\"b\":\"x\",\"d\":4,\"k\\u0000z\":5}");
	/* Misuse fails and still frees what it was given. */
	assert_int_equal(tm_doc_map_set(NULL, "a", num(1)), TM_ERROR);
	assert_int_equal(tm_doc_seq_append(m, num(1)), TM_ERROR);
	assert_null(tm_doc_map_get(NULL, "a"));
	tm_doc_free(m);
}

static void test_big_map_index(void **state)
{
	struct tm_doc *m;
	char key[32];

	assert_int_equal(tm_doc_new_map(&m), 0);
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(tm_doc_map_set(m, key, num(i)), 0);
	}
	for (int i = 0; i < 20000; i += 7) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(tm_doc_map_set(m, key, num(-i)), 0);
	}
	assert_int_equal(tm_doc_len(m), 20000);
	for (int i = 0; i < 20000; i++) {
		const struct tm_doc *v;

		snprintf(key, sizeof(key), "key-%d", i);
		v = tm_doc_map_get(m, key);
		assert_non_null(v);
		assert_int_equal(v->u.i, i % 7 == 0 ? -i : i);
	}
	/* Removal keeps the index consistent. */
	for (int i = 0; i < 20000; i += 1000) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(tm_doc_map_remove(m, key), 0);
	}
	assert_int_equal(tm_doc_len(m), 19980);
	assert_null(tm_doc_map_get(m, "key-1000"));
	assert_non_null(tm_doc_map_get(m, "key-1001"));
	assert_string_equal(m->u.map.v[0].key, "key-1");
	tm_doc_free(m);
}

static void test_seq_path_clone_equal(void **state)
{
	struct tm_doc *root, *meta, *seq, *c;

	assert_int_equal(tm_doc_new_map(&root), 0);
	assert_int_equal(tm_doc_new_map(&meta), 0);
	assert_int_equal(tm_doc_map_set(meta, "name", str("web")), 0);
	assert_int_equal(tm_doc_map_set(root, "metadata", meta), 0);
	assert_int_equal(tm_doc_new_seq(&seq), 0);
	assert_int_equal(tm_doc_seq_append(seq, num(1)), 0);
	assert_int_equal(tm_doc_seq_append(seq, str("two")), 0);
	assert_int_equal(tm_doc_map_set(root, "items", seq), 0);
	assert_string_equal(tm_doc_string(tm_doc_get_path(root, "metadata", "name", NULL)), "web");
	assert_null(tm_doc_get_path(root, "metadata", "namespace", NULL));
	assert_null(tm_doc_get_path(root, "items", "x", NULL));
	assert_ptr_equal(tm_doc_get_path(root, NULL), root);
	assert_string_equal(tm_doc_string(tm_doc_seq_at(seq, 1)), "two");
	assert_null(tm_doc_seq_at(seq, 2));
	assert_int_equal(tm_doc_len(seq), 2);

	assert_int_equal(tm_doc_clone(&c, root), 0);
	assert_true(tm_doc_equal(root, c));
	assert_json(c, "{\"metadata\":{\"name\":\"web\"},\"items\":[1,\"two\"]}");
	/* Key order does not matter, types do. */
	struct tm_doc *other;
	assert_int_equal(tm_doc_new_map(&other), 0);
	assert_int_equal(tm_doc_clone(&seq, tm_doc_map_get(root, "items")), 0);
	assert_int_equal(tm_doc_map_set(other, "items", seq), 0);
	assert_int_equal(tm_doc_clone(&meta, tm_doc_map_get(root, "metadata")), 0);
	assert_int_equal(tm_doc_map_set(other, "metadata", meta), 0);
	assert_true(tm_doc_equal(root, other));
	struct tm_doc *f;
	assert_int_equal(tm_doc_new_float(&f, 1.0), 0);
	assert_int_equal(tm_doc_seq_append(tm_doc_map_get(c, "items"), f), 0);
	assert_int_equal(tm_doc_seq_append(tm_doc_map_get(other, "items"), num(1)), 0);
	assert_false(tm_doc_equal(c, other));
	assert_int_equal(tm_doc_new_float(&f, NAN), 0);
	assert_false(tm_doc_equal(f, f));
	tm_doc_free(f);
	tm_doc_free(other);
	tm_doc_free(c);
	tm_doc_free(root);
}

static void test_json_strings(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "plain", 5, "\"plain\"" },
		{ "a/b", 3, "\"a/b\"" }, /* never "\/" */
		{ "q\"b\\", 4, "\"q\\\"b\\\\\"" },
		{ "\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"" },
		{ "\x01\x1f\x7f", 3,
		  "\"\\u0001\\u001f\x7f\"" }, /* DEL is not a control char in JSON */
		{ "h\xc3\xa9llo \xf0\x9f\x98\x80", 11, "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"" },
		{ "<&>\xe2\x80\xa8", 6, "\"<&>\xe2\x80\xa8\"" }, /* no HTML escaping, U+2028 raw */
		{ "\xff", 1, "\"\xef\xbf\xbd\"" },               /* not UTF-8: U+FFFD */
		{ "\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" }, /* a surrogate */
		{ "\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },                 /* overlong */
		{ "\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },                 /* truncated */
		{ "", 0, "\"\"" },
		/* eight bytes at a time: what needs escaping at every place of a block */
		{ "0123456789abcdef\"0123456\\01234\x1f"
		  "01234567\x7f~ \xc3\xa9"
		  "123456789\x7f",
		  54,
		  "\"0123456789abcdef\\\"0123456\\\\01234\\u001f01234567\x7f~ \xc3\xa9"
		  "123456789\x7f\"" },
		{ "abcdefg\nabcdefgh\xff"
		  "abcdefg",
		  24,
		  "\"abcdefg\\nabcdefgh\xef\xbf\xbd"
		  "abcdefg\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tm_doc *d;

		assert_int_equal(tm_doc_new_stringn(&d, cases[i].in, cases[i].len), 0);
		assert_json(d, cases[i].out);
		tm_doc_free(d);
	}
}

static void test_json_floats(void **state)
{
	/* What Go's encoding/json prints (and kubectl shows). */
	static const struct {
		double f;
		const char *out;
	} cases[] = {
		{ 0.0, "0" },
		{ -0.0, "-0" },
		{ 1.0, "1" },
		{ 0.1, "0.1" },
		{ 1.5, "1.5" },
		{ 0.30000000000000004, "0.30000000000000004" },
		{ 1e20, "100000000000000000000" },
		{ 1e21, "1e+21" },
		{ 1.5e300, "1.5e+300" },
		{ 0.000001, "0.000001" },
		{ 1e-7, "1e-7" },
		{ 2.5e-7, "2.5e-7" },
		{ 5e-324, "5e-324" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 9223372036854775808.0, "9223372036854776000" },
		{ 18446744073709551615.0, "18446744073709552000" },
		{ 1152921504606846976.0, "1152921504606847000" },
		{ 123456789012345678901234567890.0, "1.2345678901234568e+29" },
		{ 1e23, "1e+23" },
		{ 100.25, "100.25" },
		{ -1234.5678, "-1234.5678" },
		{ 0x1p-1022, "2.2250738585072014e-308" },
		{ 5e-5, "0.00005" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tm_doc *d;

		assert_int_equal(tm_doc_new_float(&d, cases[i].f), 0);
		assert_json(d, cases[i].out);
		tm_doc_free(d);
	}
	struct tm_doc *d;
	struct tm_buf b;
	tm_buf_init(&b, 64);
	assert_int_equal(tm_doc_new_float(&d, INFINITY), 0);
	assert_int_equal(tm_doc_to_json(&b, d), TM_EPARSE);
	tm_doc_free(d);
	assert_int_equal(tm_doc_new_float(&d, NAN), 0);
	assert_int_equal(tm_doc_to_json(&b, d), TM_EPARSE);
	tm_doc_free(d);
	tm_buf_free(&b);
}

static void test_format_float(void **state)
{
	/* strconv.FormatFloat(f, fmt, -1, bits). */
	static const struct {
		double f;
		char fmt;
		int bits;
		const char *out;
	} cases[] = {
		{ 1e6, 'g', 64, "1e+06" },
		{ 123456.0, 'g', 64, "123456" },
		{ 0.0001, 'g', 64, "0.0001" },
		{ 0.00001, 'g', 64, "1e-05" },
		{ 123456789.5, 'g', 32, "1.2345679e+08" },
		{ 0.1, 'g', 32, "0.1" },
		{ 16777217.0, 'g', 32, "1.6777216e+07" },
		{ 3.5e38, 'g', 32, "+Inf" },
		{ 3.4e38, 'g', 32, "3.4e+38" },
		{ 1e-50, 'g', 32, "0" },
		{ -0.0, 'g', 32, "-0" },
		{ 1.0, 'e', 64, "1e+00" },
		{ 1234.5, 'e', 64, "1.2345e+03" },
		{ 1e-7, 'f', 64, "0.0000001" },
		{ 1e21, 'f', 64, "1000000000000000000000" },
		{ -INFINITY, 'g', 64, "-Inf" },
		{ NAN, 'f', 64, "NaN" },
		/* Powers of two, where the shortest form is a neighbour of the
		 * correctly rounded one. */
		{ 0x1p-1074, 'e', 64, "5e-324" },
		{ 0x1p60, 'g', 64, "1.152921504606847e+18" },
		{ 0x1p-149, 'g', 32, "1e-45" },
		{ 0x1p90, 'g', 32, "1.2379401e+27" },
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = tm_doc_format_float(buf, sizeof(buf), cases[i].f, cases[i].fmt,
					    cases[i].bits);

		assert_true(n > 0);
		if (strcmp(buf, cases[i].out) != 0) {
			print_error("%a %c %d: got %s want %s\n", cases[i].f, cases[i].fmt,
				    cases[i].bits, buf, cases[i].out);
			fail();
		}
	}
	assert_int_equal(tm_doc_format_float(buf, 4, 1.5, 'e', 64), TM_ELIMIT);
}

/* Every float64 the shortest formatter prints must read back exactly and be
 * no longer than %.17g. */
static void test_float_round_trip(void **state)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	char buf[64];

	for (int i = 0; i < 200000; i++) {
		double f, back;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(&f, &x, sizeof(f));
		if (!isfinite(f))
			continue;
		assert_true(tm_doc_format_float(buf, sizeof(buf), f, 'e', 64) > 0);
		back = strtod(buf, NULL);
		assert_memory_equal(&back, &f, sizeof(f));
		float g = (float)(f / 1e300);
		if (!isfinite(g))
			continue;
		assert_true(tm_doc_format_float(buf, sizeof(buf), g, 'g', 32) > 0);
		assert_true(strtof(buf, NULL) == g);
	}
}

static void test_json_structures_and_cap(void **state)
{
	struct tm_doc *m, *s, *e;
	struct tm_buf b;

	assert_int_equal(tm_doc_new_map(&m), 0);
	assert_int_equal(tm_doc_new_seq(&s), 0);
	assert_int_equal(tm_doc_new_map(&e), 0);
	assert_int_equal(tm_doc_seq_append(s, e), 0);
	assert_int_equal(tm_doc_new_seq(&e), 0);
	assert_int_equal(tm_doc_seq_append(s, e), 0);
	assert_int_equal(tm_doc_new_null(&e), 0);
	assert_int_equal(tm_doc_seq_append(s, e), 0);
	assert_int_equal(tm_doc_map_set(m, "k\xc3\xa9y\"", s), 0);
	assert_json(m, "{\"k\xc3\xa9y\\\"\":[{},[],null]}");
	/* The buffer's cap applies. */
	tm_buf_init(&b, 8);
	assert_int_equal(tm_doc_to_json(&b, m), TM_ELIMIT);
	tm_buf_free(&b);
	tm_doc_free(m);
}

/* A buffer handed over with its room given back: the same bytes, NUL-ended,
 * the buffer left empty and usable; an empty one hands over "". */
static void test_buf_detach_fit(void **state)
{
	struct tm_buf b;
	char *p;

	(void)state;
	tm_buf_init(&b, 1 << 24);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(tm_buf_put(&b, "0123456789", 10), 0);
	assert_int_equal(tm_buf_put(&b, "end", 3), 0);
	assert_true(b.cap > b.len + 1);
	p = tm_buf_detach_fit(&b);
	assert_non_null(p);
	assert_int_equal(strlen(p), 1000003);
	assert_memory_equal(p + 999990, "0123456789end", 14);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(p);
	assert_int_equal(tm_buf_put(&b, "again", 5), 0);
	assert_string_equal(b.ptr, "again");
	tm_buf_free(&b);
	p = tm_buf_detach_fit(&b);
	assert_string_equal(p, "");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_map_order_and_replace),
		cmocka_unit_test(test_big_map_index),
		cmocka_unit_test(test_seq_path_clone_equal),
		cmocka_unit_test(test_json_strings),
		cmocka_unit_test(test_json_floats),
		cmocka_unit_test(test_format_float),
		cmocka_unit_test(test_float_round_trip),
		cmocka_unit_test(test_json_structures_and_cap),
		cmocka_unit_test(test_buf_detach_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
