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
 * The borrowing reader (tm_yaml_parse_each_borrowed: trees in the node pool,
 * pool.c) hands on the same objects (as JSON) with the same result, and gives
 * the pool back whole.
 * Every input is also read with the block-style reader (fastyaml.c) off: the
 * code, the message and the trees (types, values, key order, lines) must be
 * the same as with it on.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/doc/yaml.h"
#include "../../src/doc/reader.h"

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

/* The JSON of each object handed on, in order (at most 64). */
struct jlist {
	size_t n;
	char *j[64];
	int borrowed; /* the reader frees the objects */
};

static int collect_json(void *arg, struct tm_doc *obj)
{
	struct jlist *l = arg;
	struct tm_buf b;

	tm_buf_init(&b, 1 << 26);
	if (!obj || obj->type != TM_DOC_MAP || tm_doc_to_json(&b, obj) != 0)
		abort();
	if (l->n < 64)
		l->j[l->n] = tm_buf_detach(&b);
	tm_buf_free(&b);
	l->n++;
	if (!l->borrowed)
		tm_doc_free(obj);
	return 0;
}

static void borrowed_agrees(const char *text, size_t size)
{
	struct jlist l[2];
	int r[2];
	struct docr_pool *p;

	memset(l, 0, sizeof(l));
	l[1].borrowed = 1;
	r[0] = tm_yaml_parse_each(text, size, "fuzz.yaml", &lim, 1 << 12, collect_json, &l[0]);
	r[1] = tm_yaml_parse_each_borrowed(text, size, "fuzz.yaml", &lim, 1 << 12, collect_json,
					   &l[1]);
	if (r[0] != r[1] || l[0].n != l[1].n)
		abort();
	for (size_t i = 0; i < l[0].n && i < 64; i++) {
		if (strcmp(l[0].j[i], l[1].j[i]))
			abort();
		free(l[0].j[i]);
		free(l[1].j[i]);
	}
	p = docr_pool_new(); /* nothing of the pool was kept */
	if (!p)
		abort();
	docr_pool_free(p);
}

static void same_tree(const struct tm_doc *a, const struct tm_doc *b)
{
	if (!a || !b) {
		if (a || b)
			abort();
		return;
	}
	if (a->type != b->type || a->line != b->line)
		abort();
	if (a->type == TM_DOC_MAP) {
		if (a->u.map.n != b->u.map.n)
			abort();
		for (size_t i = 0; i < a->u.map.n; i++) {
			if (a->u.map.v[i].key_len != b->u.map.v[i].key_len ||
			    memcmp(a->u.map.v[i].key, b->u.map.v[i].key, a->u.map.v[i].key_len))
				abort();
			same_tree(a->u.map.v[i].value, b->u.map.v[i].value);
		}
	} else if (a->type == TM_DOC_SEQ) {
		if (a->u.seq.n != b->u.seq.n)
			abort();
		for (size_t i = 0; i < a->u.seq.n; i++)
			same_tree(a->u.seq.v[i], b->u.seq.v[i]);
	} else if (a->type == TM_DOC_FLOAT ? memcmp(&a->u.f, &b->u.f, sizeof(double))
					   : !tm_doc_equal(a, b)) {
		abort();
	}
}

/* The same reading with and without fastyaml.c. */
static void fast_and_libyaml_agree(const char *text, size_t size)
{
	struct tm_doc **docs[2] = { NULL, NULL }, *one[2] = { NULL, NULL };
	size_t n[2] = { 0, 0 };
	int rs[2], r1[2];
	char ms[2][256], m1[2][256];

	for (int k = 0; k < 2; k++) {
		docr_fast_set(k == 0);
		tm_error_clear();
		rs[k] = tm_yaml_parse_stream(&docs[k], &n[k], text, size, "fuzz.yaml", &lim);
		strncpy(ms[k], rs[k] ? tm_error_last() : "", sizeof(ms[k]) - 1);
		ms[k][sizeof(ms[k]) - 1] = '\0';
		tm_error_clear();
		r1[k] = tm_yaml_parse(&one[k], text, size, "fuzz.yaml", &lim);
		strncpy(m1[k], r1[k] ? tm_error_last() : "", sizeof(m1[k]) - 1);
		m1[k][sizeof(m1[k]) - 1] = '\0';
	}
	docr_fast_set(1);
	if (rs[0] != rs[1] || strcmp(ms[0], ms[1]) || r1[0] != r1[1] || strcmp(m1[0], m1[1]) ||
	    n[0] != n[1])
		abort();
	for (size_t i = 0; i < n[0]; i++)
		same_tree(docs[0][i], docs[1][i]);
	same_tree(one[0], one[1]);
	for (int k = 0; k < 2; k++) {
		tm_yaml_docs_free(docs[k], n[k]);
		tm_doc_free(one[k]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct tm_doc **docs = NULL, *d = NULL;
	size_t n = 0;

	fast_and_libyaml_agree(text, size);
	borrowed_agrees(text, size);

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
