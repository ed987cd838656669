/*
 * test_fastyaml.c — the block-style reader (src/doc/fastyaml.c) against libyaml. Every case is
 * read twice, with that reader and with libyaml alone, and must give the same result: the same
 * code and message, the same trees (types, values, key order, the line of every node). The
 * cases in its subset must really be read by it (not handed on to libyaml); the cases outside
 * it must be handed on. A generated CRD of several MB in the shape of upstream ones, and an
 * install file of many documents, are read both ways too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/doc/reader.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/doc/yaml.h"

static void same_tree(const struct tm_doc *a, const struct tm_doc *b, const char *text)
{
	if (!a || !b) {
		assert_true(!a && !b);
		return;
	}
	if (a->type != b->type || a->line != b->line)
		fail_msg("type %d/%d line %u/%u in:\n%s", a->type, b->type, a->line, b->line, text);
	switch (a->type) {
	case TM_DOC_MAP:
		assert_int_equal(a->u.map.n, b->u.map.n);
		for (size_t i = 0; i < a->u.map.n; i++) {
			assert_int_equal(a->u.map.v[i].key_len, b->u.map.v[i].key_len);
			assert_memory_equal(a->u.map.v[i].key, b->u.map.v[i].key,
					    a->u.map.v[i].key_len);
			same_tree(a->u.map.v[i].value, b->u.map.v[i].value, text);
		}
		break;
	case TM_DOC_SEQ:
		assert_int_equal(a->u.seq.n, b->u.seq.n);
		for (size_t i = 0; i < a->u.seq.n; i++)
			same_tree(a->u.seq.v[i], b->u.seq.v[i], text);
		break;
	case TM_DOC_FLOAT:
		assert_memory_equal(&a->u.f, &b->u.f, sizeof(double));
		break;
	default:
		if (!tm_doc_equal(a, b))
			fail_msg("values differ in:\n%s", text);
	}
}

/* 1 when fastyaml.c reads text to the end (its events are not checked here). */
static int ok_scalar(void *arg, const char *s, size_t n, int plain, unsigned line)
{
	(void)arg, (void)s, (void)n, (void)plain, (void)line;
	return 0;
}
static int ok_start(void *arg, int map, int flow, unsigned line)
{
	(void)arg, (void)map, (void)flow, (void)line;
	return 0;
}
static int ok_end(void *arg)
{
	(void)arg;
	return 0;
}
static int fast_reads(const char *text, size_t len)
{
	static const struct docr_fast_ops ops = { ok_scalar, ok_start, ok_end };

	return docr_fast_yaml(text, len, &ops, NULL) == 0;
}

struct result {
	int rc;
	char msg[512];
	struct tm_doc *one;   /* tm_yaml_parse */
	struct tm_doc **docs; /* tm_yaml_parse_stream */
	size_t n;
	int rc_stream;
	char msg_stream[512];
};

static void read_both_ways(struct result *r, const char *text, size_t len)
{
	memset(r, 0, sizeof(*r));
	tm_error_clear();
	r->rc = tm_yaml_parse(&r->one, text, len, "t.yaml", NULL);
	snprintf(r->msg, sizeof(r->msg), "%s", r->rc ? tm_error_last() : "");
	tm_error_clear();
	r->rc_stream = tm_yaml_parse_stream(&r->docs, &r->n, text, len, "t.yaml", NULL);
	snprintf(r->msg_stream, sizeof(r->msg_stream), "%s", r->rc_stream ? tm_error_last() : "");
}

static void result_free(struct result *r)
{
	tm_doc_free(r->one);
	tm_yaml_docs_free(r->docs, r->n);
}

/* Reads text with and without fastyaml.c; the results must be the same. */
static void compare(const char *text, size_t len)
{
	struct result f, l;

	docr_fast_set(1);
	read_both_ways(&f, text, len);
	docr_fast_set(0);
	read_both_ways(&l, text, len);
	docr_fast_set(1);
	if (f.rc != l.rc || strcmp(f.msg, l.msg) != 0)
		fail_msg("fast %d '%s' libyaml %d '%s' for:\n%s", f.rc, f.msg, l.rc, l.msg, text);
	if (f.rc_stream != l.rc_stream || strcmp(f.msg_stream, l.msg_stream) != 0)
		fail_msg("stream: fast %d '%s' libyaml %d '%s' for:\n%s", f.rc_stream, f.msg_stream,
			 l.rc_stream, l.msg_stream, text);
	same_tree(f.one, l.one, text);
	assert_int_equal(f.n, l.n);
	for (size_t i = 0; i < f.n; i++)
		same_tree(f.docs[i], l.docs[i], text);
	result_free(&f);
	result_free(&l);
}

/* In the subset: read by fastyaml.c, and the same as libyaml's reading. */
static const char *const in_subset[] = {
	"a: 1\n",
	"---\na: 1\nb: two\n",
	"--- # the start\n\na: 1\n",
	"# head\n\n  # more\na: 1 # one\nb:   x y  \n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: y\ndata:\n  k: v\n",
	"a:\n  b:\n    c: d\n  e: f\ng: h\n",
	"a:\n- 1\n- two\n- 'three'\nb: c\n",
	"a:\n  - 1\n  - 2\n",
	"- a\n- b\n",
	"- name: x\n  value: y\n- name: z\n",
	"- name: x\n  items:\n  - 1\n  - 2\n  more:\n    - 3\n",
	"-   name: x\n    v: 1\n",
	"a:\nb:\nc: 1\n",
	"a:\n  b:\nc:\n",
	"a:\n  b:\n# c\n\nd: 1\n",
	"- \n- x\n-\n",
	"a: {}\nb: []\nc: {}  # empty\n",
	"s: \"x y \\\" \\\\ \\n \\t \\r z\"\nt: 'it''s'\nu: ''\nv: \"\"\n",
	"k: 'a #b'\nl: \"c: d\"\nm: a#b\nn: a:b\no: http://x:80/y\n",
	"n: 010\no: 0o10\nh: 0x1F\nf: 1.5\ne: 1e3\nb: yes\nc: off\nz: ~\nnu: null\nt: 2001-12-14\n",
	"key with spaces: v\n",
	"-x: 1\n-1: 2\n",
	"a: |\n  line 1\n  line 2\nb: 1\n",
	"a: |-\n  line 1\n\n  line 3\n\n\nb: 1\n",
	"a: |+\n  line 1\n\n\nb: 1\n",
	"a: |\n\n  after a blank\n    more indented\n  # not a comment\nb: 1\n",
	"a: |  # header comment\n    deep\n    text\n",
	"a: |\n  x\n      \n  y\n",
	"- |\n  in a sequence\n- |-\n  strip\n",
	"a:\n  b: |\n    nested\n  c: d\n",
	"a: |\n  last line without a break",
	"a: |+\n  kept\n\n",
	"u: \"caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80\"\n\xc3\xa9: v\n",
	"a: 1\n  # a deeper comment\nb: 2\n",
	"a: x\n  # comment after a plain value\nb: 2\n",
	"a: 1\n\n\n",
	"a:\n",
	"a:\n  ",
	"a:\n  # only a comment",
	"a: .inf\n",
	"a: 1\na: 2\n",
	"<<: {}\n",
	"a: plain\n  continued\n",
	"a: 'multi\n  line'\n",
	"a: \"multi\n  line\"\n",
	"description: APIVersion defines the versioned schema of this representation\n"
	"  of an object.   \n  Servers should convert\n\n\n    recognized schemas - x\n"
	"  # a comment ends it\nb: 1\n",
	"- plain in a\n  sequence # with a comment\n- 'quoted ''in''\n\n   a sequence  '\n",
	"a:\n  b: \"x \\t\n\n   \\\"y\\\"  \n    z\"\n  c: d\n",
	"- a: multi\n    line\n  b: 'x\n    y'\n",
	("apiVersion: v1\nkind: List\nitems:\n- kind: ConfigMap\n  apiVersion: v1\n  metadata:\n    "
	 "name: a\n"),
};

/* Outside the subset: handed to libyaml (which may accept or refuse them). */
static const char *const outside[] = {
	"a: &x 1\nb: *x\n",
	"a: !!str 1\n",
	"a: [1, 2]\n",
	"a: {b: c}\n",
	"a: >\n  folded\n",
	"a: |2\n   x\n",
	"a: \"\\/\"\n",
	"a: plain\ncontinued at the key's column\n",
	"a: 'quoted\nat column 0'\n",
	"a: \"x\\\n  y\"\n",
	"a: x\n  b: c\n",
	"a: \"\\u0041\"\n",
	"a:\tb\n",
	"a: b\r\n",
	("\xef\xbb\xbf"
	 "a: 1\n"),
	"a: b\n...\n",
	"%YAML 1.1\n---\na: 1\n",
	"a: b: c\n",
	"a: b:\n",
	"a : b\n",
	"\"a\": b\n",
	"'<<': x\n",
	"? a\n: b\n",
	"- - a\n",
	"a:\n  scalar on its own line\n",
	"a: 1\n b: 2\n",
	"a:\n  b: 1\n c: 2\n",
	"- a\nb: c\n",
	"a: b\n- c\n",
	"a: |\nb: 1\n",
	"a: |\n\n      \n  x\n",
	"plain\n",
	"",
	"# only a comment\n",
	"a: \xc2\x85\n",
	"a: \xe2\x80\xa8\n",
	"a: x\x7f\n",
	"a: @x\n",
	"a: -\n",
	"a: 'x' y\n",
	"a: 'x'#c\n",
	"{}\n",
};

static void test_subset_read_fast(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(in_subset) / sizeof(in_subset[0]); i++) {
		if (!fast_reads(in_subset[i], strlen(in_subset[i])))
			fail_msg("not read by fastyaml.c:\n%s", in_subset[i]);
		compare(in_subset[i], strlen(in_subset[i]));
	}
}

static void test_outside_handed_on(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		if (fast_reads(outside[i], strlen(outside[i])))
			fail_msg("read by fastyaml.c, should be libyaml's:\n%s", outside[i]);
		compare(outside[i], strlen(outside[i]));
	}
}

/* Every prefix of every case: cut anywhere, both readings still agree. */
static void test_prefixes_agree(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(in_subset) / sizeof(in_subset[0]); i++)
		for (size_t k = 0; k <= strlen(in_subset[i]); k++)
			compare(in_subset[i], k);
}

/* Each byte of each case replaced by each of a few structural bytes: both agree. */
static void test_mutations_agree(void **state)
{
	static const char subst[] = " \n-:#'\"|{}[]a0";

	(void)state;
	for (size_t i = 0; i < sizeof(in_subset) / sizeof(in_subset[0]); i++) {
		size_t n = strlen(in_subset[i]);
		char *t = malloc(n + 1);

		assert_non_null(t);
		for (size_t k = 0; k < n; k++)
			for (const char *c = subst; *c; c++) {
				memcpy(t, in_subset[i], n + 1);
				t[k] = *c;
				compare(t, n);
			}
		free(t);
	}
}

/* A CRD in the shape of controller-gen's: nested properties, literal and quoted
 * descriptions, enums, required lists, {} and [] (about size bytes). */
static void gen_crd(struct tm_buf *b, size_t size)
{
	tm_buf_puts(
		b, "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
		   "metadata:\n  annotations:\n    controller-gen.kubebuilder.io/version: v0.16.1\n"
		   "  name: things.example.com\nspec:\n  group: example.com\n  names:\n"
		   "    kind: Thing\n    plural: things\n  scope: Namespaced\n  versions:\n"
		   "  - name: v1\n    served: true\n    storage: true\n    schema:\n"
		   "      openAPIV3Schema:\n        type: object\n        properties:\n");
	for (unsigned i = 0; b->len < size; i++) {
		tm_buf_printf(
			b,
			"          field%u:\n            description: |-\n"
			"              Field %u of the thing: it's a \"quoted\" word, a: colon.\n\n"
			"              More info: https://example.com/docs#field-%u\n"
			"            type: object\n            properties:\n"
			"              name:\n                description: 'The name, it''s %u.\n"
			"                  Spans lines, as controller-gen''s long ones do.'\n"
			"                title: a plain title\n                  on two lines\n"
			"                type: string\n                pattern: ^[a-z0-9]([-a-z0-9]*)$\n"
			"              mode:\n                type: string\n                enum:\n"
			"                - Always\n                - \"Never\"\n                - '%u'\n"
			"              size:\n                format: int64\n                type: integer\n"
			"                x-kubernetes-int-or-string: true\n"
			"              extra:\n                type: object\n"
			"                x-kubernetes-preserve-unknown-fields: true\n"
			"                default: {}\n                items: []\n"
			"            required:\n            - name\n            - mode\n",
			i, i, i, i, i);
	}
	tm_buf_puts(b, "    subresources:\n      status: {}\n");
}

static void test_large_crd_and_install(void **state)
{
	struct tm_buf b;

	(void)state;
	tm_buf_init(&b, 1 << 26);
	gen_crd(&b, 3u << 20);
	assert_true(fast_reads(b.ptr + 4, b.len - 4));
	compare(b.ptr, b.len);
	tm_buf_reset(&b);
	for (unsigned i = 0; i < 200; i++)
		tm_buf_printf(&b,
			      "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c%u\n"
			      "  labels:\n    app.kubernetes.io/name: x\ndata:\n  a: \"%u\"\n"
			      "  script: |\n    #!/bin/sh\n    echo %u\n",
			      i, i, i);
	compare(b.ptr, b.len);
	tm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subset_read_fast),
		cmocka_unit_test(test_outside_handed_on),
		cmocka_unit_test(test_prefixes_agree),
		cmocka_unit_test(test_mutations_agree),
		cmocka_unit_test(test_large_crd_and_install),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
