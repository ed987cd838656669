/*
 * yaml2json.c — prints what tagmoor reads from a manifest file: one compact
 * JSON object per line, as tm_yaml_parse_stream splits, types and flattens
 * it. The kubectl oracle test (tests/integration/test_yaml_kubectl_oracle.sh)
 * compares this with `kubectl annotate --local -o json`.
 *
 *   yaml2json [--one | --json] [--max-bytes N] [--max-depth N]
 *             [--max-nodes N] [--max-alias N] FILE|-
 *
 * --one reads a single document of any shape (tm_yaml_parse, as for a
 * kubeconfig); --json reads strict JSON (tm_json_parse). Exit 0 on success,
 * 1 with the error on stderr when the input is refused, 2 on usage errors.
 */
#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/doc/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: yaml2json [--one | --json] [--max-bytes N] [--max-depth N] "
			"[--max-nodes N] [--max-alias N] FILE|-\n");
	return 2;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *p = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *q = realloc(p, ncap);

			if (!q) {
				free(p);
				p = NULL;
				break;
			}
			p = q;
			cap = ncap;
		}
		size_t got = fread(p + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (f != stdin)
		fclose(f);
	*len = n;
	return p;
}

static int print_doc(const struct tm_doc *d)
{
	struct tm_buf b;
	int r;

	tm_buf_init(&b, (size_t)1 << 30);
	r = tm_doc_to_json(&b, d);
	if (r == 0) {
		fwrite(b.ptr, 1, b.len, stdout);
		fputc('\n', stdout);
	}
	tm_buf_free(&b);
	return r;
}

int main(int argc, char **argv)
{
	struct tm_yaml_limits lim = tm_yaml_limits_default;
	const char *path = NULL;
	int mode = 0, r = 0;
	size_t len = 0;
	char *text;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--one")) {
			mode = 1;
		} else if (!strcmp(argv[i], "--json")) {
			mode = 2;
		} else if (i + 1 < argc && !strncmp(argv[i], "--max-", 6)) {
			unsigned long long v = strtoull(argv[i + 1], NULL, 10);

			if (!strcmp(argv[i], "--max-bytes"))
				lim.max_bytes = (size_t)v;
			else if (!strcmp(argv[i], "--max-depth"))
				lim.max_depth = (unsigned)v;
			else if (!strcmp(argv[i], "--max-nodes"))
				lim.max_nodes = (size_t)v;
			else if (!strcmp(argv[i], "--max-alias"))
				lim.max_alias_expansion = (size_t)v;
			else
				return usage();
			i++;
		} else if (!path) {
			path = argv[i];
		} else {
			return usage();
		}
	}
	if (!path)
		return usage();
	text = slurp(path, &len);
	if (!text) {
		perror(path);
		return 1;
	}
	if (mode == 0) {
		struct tm_doc **docs = NULL;
		size_t n = 0;

		r = tm_yaml_parse_stream(&docs, &n, text, len, path, &lim);
		for (size_t i = 0; r == 0 && i < n; i++)
			r = print_doc(docs[i]);
		tm_yaml_docs_free(docs, n);
	} else {
		struct tm_doc *d;

		r = mode == 1 ? tm_yaml_parse(&d, text, len, path, &lim)
			      : tm_json_parse(&d, text, len, &lim);
		if (r == 0) {
			r = print_doc(d);
			tm_doc_free(d);
		}
	}
	free(text);
	if (r < 0) {
		fprintf(stderr, "yaml2json: %s\n", tm_error_last());
		return 1;
	}
	return 0;
}
