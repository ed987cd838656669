/*
 * fuzz_yaml.c — the YAML and JSON readers and the JSON emitter under
 * libFuzzer. The input is read three ways: as a manifest stream
 * (tm_yaml_parse_stream), as one YAML document (tm_yaml_parse) and as strict
 * JSON (tm_json_parse). Every tree that comes out is written as JSON and read
 * back with tm_json_parse (the emitter's output is always JSON the reader
 * takes); a tree read from YAML must come back with the same types and
 * values (YAML floats that JSON would read as integers are integers
 * already). From the second round on the text must not change (a JSON float
 * -0.0 is written "-0", as Go does, and read back as the integer 0).
 * The object-at-a-time reader (tm_yaml_parse_each) and the partial JSON
 * reader for API answers (tm_json_parse_pruned) see the same input: every
 * object handed on is a map that round-trips, and a failure says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/doc/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits keep each run fast; the limits themselves are exercised. */
static const struct tm_yaml_limits lim = { 1 << 16, 40, 20000, 5000 };

static void round_trip(const struct tm_doc *d, int strict_types)
{
	struct tm_yaml_limits big = { 1 << 27, 1000, 1 << 24, 0 };
	struct tm_buf a, b, c;
	struct tm_doc *back = NULL, *back2 = NULL;

	tm_buf_init(&a, 1 << 26);
	tm_buf_init(&b, 1 << 26);
	tm_buf_init(&c, 1 << 26);
	if (tm_doc_to_json(&a, d) != 0)
		abort(); /* the readers never build what JSON cannot hold */
	if (tm_json_parse(&back, a.ptr, a.len, &big) != 0)
		abort();
	if (strict_types && !tm_doc_equal(d, back))
		abort();
	if (tm_doc_to_json(&b, back) != 0 || tm_json_parse(&back2, b.ptr, b.len, &big) != 0 ||
	    tm_doc_to_json(&c, back2) != 0)
		abort();
	if (b.len != c.len || memcmp(b.ptr, c.ptr, b.len) != 0 || !tm_doc_equal(back, back2))
		abort();
	tm_doc_free(back);
	tm_doc_free(back2);
	tm_buf_free(&a);
	tm_buf_free(&b);
	tm_buf_free(&c);
}

static int each_object(void *arg, struct tm_doc *obj)
{
	size_t *n = arg;

	if (!obj || obj->type != TM_DOC_MAP)
		abort();
	round_trip(obj, 0);
	tm_doc_free(obj);
	(*n)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct tm_doc **docs = NULL, *d = NULL;
	size_t n = 0;

	if (tm_yaml_parse_stream(&docs, &n, text, size, "fuzz.yaml", &lim) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (!docs[i] || docs[i]->type != TM_DOC_MAP)
				abort();
			round_trip(docs[i], 0);
		}
	} else if (docs || n || !tm_error_last()[0]) {
		abort(); /* a failure leaves nothing behind and says why */
	}
	tm_yaml_docs_free(docs, n);

	if (tm_yaml_parse(&d, text, size, "fuzz.yaml", &lim) == 0) {
		round_trip(d, 1);
		tm_doc_free(d);
	} else if (d) {
		abort();
	}

	d = NULL;
	if (tm_json_parse(&d, text, size, &lim) == 0) {
		round_trip(d, 0);
		tm_doc_free(d);
	} else if (d) {
		abort();
	}

	{
		size_t objects = 0;
		tm_error_clear();
		if (tm_yaml_parse_each(text, size, "fuzz.yaml", &lim, 1 << 12, each_object,
				       &objects) < 0 &&
		    !tm_error_last()[0])
			abort();
	}

	{
		static const char *const keep[] = { "apiVersion", "kind", "metadata", "status",
						    NULL };
		static const char *const skip[] = { "metadata.managedFields", "spec", NULL };
		d = NULL;
		tm_error_clear();
		if (tm_json_parse_pruned(&d, text, size, &lim, keep, skip) == 0) {
			round_trip(d, 0);
			tm_doc_free(d);
		} else if (d || !tm_error_last()[0]) {
			abort();
		}
	}
	return 0;
}
