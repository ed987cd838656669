/*
 * test_jsonread.c — the strict JSON reader (src/doc/jsonread.c): what state.json and the API
 * server's answers are read with — Go's encoding/json rules (numbers, escapes, duplicate keys,
 * invalid UTF-8), the errors with their line, and the pruned reader that builds only what is
 * asked for but still checks the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/doc/jsonread.h"

static char *to_json(const struct tm_doc *d)
{
	struct tm_buf b;

	tm_buf_init(&b, 1 << 24);
	assert_int_equal(tm_doc_to_json(&b, d), 0);
	return tm_buf_detach(&b);
}

static void test_json_parse(void **state)
{
	struct tm_doc *d;
	char *j;
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ " 5 ", "5" },
		{ "-0", "0" },
		{ "-0.0", "-0" },
		{ "1.0", "1" },
		{ "1e2", "100" },
		{ "12345678901234567890", "12345678901234567000" },
		{ "true", "true" },
		{ "null", "null" },
		{ "\"\\u00e9\\ud83d\\ude00\\ud800\\u0041\\/\"",
		  "\"\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd"
		  "A/\"" },
		{ "\"\xff\"", "\"\xef\xbf\xbd\"" },
		{ "{\"a\":1,\"a\":[]}", "{\"a\":[]}" },
		{ "[ ]", "[]" },
		{ "{ }", "{}" },
		{ "[1,[2,{\"x\":null}]]", "[1,[2,{\"x\":null}]]" },
	};
	static const char *const bad[] = {
		"",         " ",       "01",         "1.",        ".5",    "+1",     "1e",
		"--1",      "[1,]",    "{\"a\":1,}", "{\"a\" 1}", "[1 2]", "tru",    "nul",
		"\"abc",    "\"\\x\"", "\"\\u12\"",  "1 2",       "{} {}", "'a'",    "NaN",
		"Infinity", "1e999",   "\"\t\"",     "[",         "{",     "{\"a\"", "{1:2}",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (tm_json_parse(&d, ok[i].in, strlen(ok[i].in), NULL) != 0) {
			print_error("%s: %s\n", ok[i].in, tm_error_last());
			fail();
		}
		j = to_json(d);
		if (strcmp(j, ok[i].out) != 0) {
			print_error("%s -> %s want %s\n", ok[i].in, j, ok[i].out);
			fail();
		}
		free(j);
		tm_doc_free(d);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = (struct tm_doc *)1;
		if (tm_json_parse(&d, bad[i], strlen(bad[i]), NULL) != TM_EPARSE) {
			print_error("accepted %s\n", bad[i]);
			fail();
		}
		assert_null(d);
	}
	assert_int_equal(tm_json_parse(&d, "[1,\n2,\n x]", 11, NULL), TM_EPARSE);
	assert_string_equal(tm_error_last(),
			    "JSON: line 3: invalid character 'x' looking for beginning of value");
	/* NUL bytes in strings survive. */
	assert_int_equal(tm_json_parse(&d, "\"a\\u0000b\"", 10, NULL), 0);
	assert_int_equal(d->u.str.len, 3);
	tm_doc_free(d);
}

/* tm_json_parse_pruned: only what is asked for is built; the rest is still checked */
static void test_json_pruned(void **state)
{
	static const char *const keep[] = { "metadata", NULL };
	static const char *const skip[] = { "metadata.managedFields", "spec", NULL };
	const char *j =
		"{\"apiVersion\":\"v1\",\"kind\":\"X\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"7\","
		"\"managedFields\":[{\"manager\":\"m\",\"fieldsV1\":{\"f:x\":{}}}]},"
		"\"spec\":{\"s\":\"t\\\"\\u00e9\",\"n\":[1,2.5,true,null]},\"status\":{\"ok\":true}}";
	struct tm_doc *d = NULL;

	assert_int_equal(tm_json_parse_pruned(&d, j, strlen(j), NULL, NULL, skip), 0);
	assert_null(tm_doc_map_get(d, "spec"));
	assert_null(tm_doc_get_path(d, "metadata", "managedFields", NULL));
	assert_string_equal(tm_doc_string(tm_doc_get_path(d, "metadata", "resourceVersion", NULL)),
			    "7");
	assert_non_null(tm_doc_get_path(d, "status", "ok", NULL));
	tm_doc_free(d);
	assert_int_equal(tm_json_parse_pruned(&d, j, strlen(j), NULL, keep, skip), 0);
	assert_int_equal(tm_doc_len(d), 1);
	assert_string_equal(tm_doc_string(tm_doc_get_path(d, "metadata", "name", NULL)), "a");
	tm_doc_free(d);
	/* without lists: what tm_json_parse builds */
	assert_int_equal(tm_json_parse_pruned(&d, j, strlen(j), NULL, NULL, NULL), 0);
	assert_non_null(tm_doc_get_path(d, "metadata", "managedFields", NULL));
	tm_doc_free(d);
	/* keys inside a skipped part: with escapes they are decoded (and checked) */
	const char *esc = "{\"spec\":{\"a\\\"b\\u00e9\":1,\"\xff\":[{\"c\\\\\":2}]},\"k\":3}";
	assert_int_equal(tm_json_parse_pruned(&d, esc, strlen(esc), NULL, NULL, skip), 0);
	assert_null(tm_doc_map_get(d, "spec"));
	assert_int_equal(tm_doc_map_get(d, "k")->u.i, 3);
	tm_doc_free(d);
	/* strings read over eight bytes at a time: quotes, escapes, non-ASCII at any place */
	const char *strs = "{\"spec\":[\"0123456789abcdef\",\"01234567\\\"89abcdef\\\\\","
			   "\"\xc3\xa9\xe6\x97\xa5\xff\xfe\x80\x7f~0123456789\",\"\"],\"k\":3}";
	assert_int_equal(tm_json_parse_pruned(&d, strs, strlen(strs), NULL, NULL, skip), 0);
	assert_int_equal(tm_doc_map_get(d, "k")->u.i, 3);
	tm_doc_free(d);
	/* broken JSON inside a skipped part is still an error */
	const char *bad[] = { "{\"spec\":{\"a\":}}",         "{\"spec\":{\"a\\q\":1}}",
			      "{\"spec\":{\"a\\u00zz\":1}}", "{\"spec\":{\"a\tb\":1}}",
			      "{\"spec\":{\"ab:1}}",         "{\"spec\":\"0123456789abcdef\x01\"}",
			      "{\"spec\":\"01234567\x1f\"}", "{\"spec\":\"0123456789abcdef\\\"}",
			      "{\"spec\":[1,,2]}",           "{\"spec\":\"x\ny\"}",
			      "{\"spec\":{\"a\":1}",         "{\"spec\":tru}",
			      "{\"spec\":{\"a\" 1}}",        NULL };
	for (int i = 0; bad[i]; i++) {
		if (tm_json_parse_pruned(&d, bad[i], strlen(bad[i]), NULL, NULL, skip) != TM_EPARSE)
			fail_msg("accepted %s", bad[i]);
		assert_null(d);
	}
	/* and so is depth */
	char deep[400];
	size_t o = (size_t)sprintf(deep, "{\"spec\":");
	for (int i = 0; i < 150; i++)
		deep[o++] = '[';
	for (int i = 0; i < 150; i++)
		deep[o++] = ']';
	deep[o++] = '}';
	assert_int_equal(tm_json_parse_pruned(&d, deep, o, NULL, NULL, skip), TM_ELIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_parse),
		cmocka_unit_test(test_json_pruned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
