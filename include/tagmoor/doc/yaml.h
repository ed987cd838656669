/*
 * yaml.h — YAML and JSON text to the document tree (doc.h), typed exactly
 * as kubectl and the Kubernetes API server type it: sigs.k8s.io/yaml over
 * go-yaml v2 (YAML 1.1: yes/no/on/off/y/n booleans, 0644 octal, `_` in
 * numbers, merge keys, last duplicate key wins, non-string keys become
 * strings, .inf/.nan refused), then JSON numbers as the API machinery reads
 * them (an integral value that fits int64 is an integer, anything else a
 * float). docs/yaml.md lists every rule and where kubectl differs from the
 * YAML specification.
 *
 * Every parser takes limits (jsonread.h; NULL: tm_yaml_limits_default). Hostile input
 * (a billion laughs, 10,000-deep nesting, a 100 MB scalar, millions of
 * nodes) is refused early with TM_ELIMIT and bounded memory.
 */
#ifndef TAGMOOR_YAML_H
#define TAGMOOR_YAML_H

#include "tagmoor/doc/jsonread.h"

#include <stddef.h>

struct tm_doc;

/*
 * A manifest file (YAML stream or JSON), read the way `kubectl apply -f`
 * reads it:
 *  - a file whose first non-space character is '{' is a stream of JSON
 *    values; anything else is YAML, split into documents at lines starting
 *    with "---" (only spaces or a comment may follow it there; anything else
 *    is an error), each piece decoded as one YAML document (content after a
 *    "..." end marker in the same piece is ignored, as kubectl does);
 *  - invalid UTF-8 becomes U+FFFD, a UTF-8 byte order mark is dropped,
 *    UTF-16 with a byte order mark is converted;
 *  - empty and null documents are skipped;
 *  - every other document must be an object with a non-empty string `kind`,
 *    an `apiVersion` that is a string if present and a `metadata` that
 *    decodes as Kubernetes ObjectMeta;
 *  - an object with an `items` key is a list (any kind): its items (objects
 *    with `kind` and `apiVersion`; items without both inherit them from the
 *    list, the kind without its "List" suffix) replace it in the output; an
 *    item that is itself a list is an error.
 * On success *out_docs is an array of *out_n objects (tm_yaml_docs_free);
 * *out_n may be 0. Errors name origin, the document (1-based piece of the
 * file) and the line: "k8s/app.yaml: document 2 (line 14): ...".
 */
int tm_yaml_parse_stream(struct tm_doc ***out_docs, size_t *out_n, const char *text, size_t len,
			 const char *origin, const struct tm_yaml_limits *lim);
void tm_yaml_docs_free(struct tm_doc **docs, size_t n);

/*
 * The same reading, one object at a time, so that memory follows the
 * largest document rather than the whole file: fn gets every object in
 * file order (list items one by one) and owns it (tm_doc_free), also when it
 * returns an error, which stops the reading and is returned. The tree of a
 * document is built only when the objects before it have been handed on.
 * Limits: lim->max_bytes for the whole text, lim->max_nodes and
 * max_doc_bytes (0: none) for each document (piece) of the stream, depth
 * per document, alias expansion for the whole text (so that many small
 * alias bombs cannot add up). Errors as for tm_yaml_parse_stream; a document
 * over max_doc_bytes: "k8s/x.yaml: document 3 (line 120): 9000000 bytes is
 * over the limit of 8388608 bytes for one document". Objects handed on
 * before an error stay the caller's.
 */
typedef int (*tm_yaml_object_fn)(void *arg, struct tm_doc *obj);
int tm_yaml_parse_each(const char *text, size_t len, const char *origin,
		       const struct tm_yaml_limits *lim, size_t max_doc_bytes, tm_yaml_object_fn fn,
		       void *arg);
/*
 * The same for a caller that is done with each object when fn returns: fn
 * borrows obj (it may change it, add to it or take parts out, but keeps
 * nothing of it), and obj is freed after fn, also when fn fails. The trees
 * are built in a node pool (src/doc/pool.c) that serves one document after
 * another: no malloc and free per node, the cost of a CRD's schema.
 */
/*
 * While on, the node pool's memory is kept from one tm_yaml_parse_each_borrowed
 * to the next, so that the files of one plan fault it in once (as much as
 * the largest document needs); off gives it back.
 */
void tm_yaml_pool_keep(int on);
int tm_yaml_parse_each_borrowed(const char *text, size_t len, const char *origin,
				const struct tm_yaml_limits *lim, size_t max_doc_bytes,
				tm_yaml_object_fn fn, void *arg);

/*
 * One YAML (or JSON-as-YAML) document of any shape, e.g. a kubeconfig: the
 * first document of text with the same typing rules; an empty text or an
 * empty document gives a TM_DOC_NULL node. No kubectl object checks.
 */
int tm_yaml_parse(struct tm_doc **out, const char *text, size_t len, const char *origin,
		  const struct tm_yaml_limits *lim);

/* "0.2.5" as libyaml reports it at run time. */
const char *tm_yaml_version(void);

#endif
