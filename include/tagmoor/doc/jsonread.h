/*
 * jsonread.h — JSON text to the document tree (doc.h), as Go's encoding/json and the API
 * machinery read it: state.json and the answers of the Kubernetes API server. Needs no YAML
 * (src/doc/jsonread.c does not link libyaml).
 *
 * Every reader of text into a tree, this one and yaml.h's, takes limits (NULL:
 * tm_yaml_limits_default; the name is YAML's, which had them first). Hostile input (a billion
 * laughs, 10,000-deep nesting, a 100 MB scalar, millions of nodes) is refused early with
 * TM_ELIMIT and bounded memory.
 */
#ifndef TAGMOOR_JSONREAD_H
#define TAGMOOR_JSONREAD_H

#include <stddef.h>

struct tm_doc;

struct tm_yaml_limits {
	size_t max_bytes;           /* input size */
	unsigned max_depth;         /* nesting of maps and sequences, aliases expanded */
	size_t max_nodes;           /* nodes built per call (tm_yaml_parse_each: per document),
				     * aliases expanded */
	size_t max_alias_expansion; /* nodes copied by aliases and merges per call */
};

#define TM_YAML_MAX_BYTES (4u << 20)
#define TM_YAML_MAX_DEPTH 100u
#define TM_YAML_MAX_NODES 500000u
#define TM_YAML_MAX_ALIAS_EXPANSION 100000u
#define TM_YAML_LIMITS_DEFAULT                                           \
	{                                                                \
		TM_YAML_MAX_BYTES, TM_YAML_MAX_DEPTH, TM_YAML_MAX_NODES, \
			TM_YAML_MAX_ALIAS_EXPANSION                      \
	}

extern const struct tm_yaml_limits tm_yaml_limits_default;

/*
 * Strict JSON (RFC 8259) as Go's encoding/json reads it, for API responses:
 * one value with only white space around it; numbers without fraction or
 * exponent that fit int64 are TM_DOC_INT, other numbers TM_DOC_FLOAT (out of
 * float64 range: error); duplicate keys: the last wins; invalid UTF-8 and
 * lone surrogate escapes become U+FFFD.
 */
int tm_json_parse(struct tm_doc **out, const char *text, size_t len,
		  const struct tm_yaml_limits *lim);

/*
 * tm_json_parse, building only part of the tree (API answers with large
 * parts the caller does not read: a CRD's schema, managedFields): with keep,
 * only those top-level keys of the root object; skip lists "key" (top
 * level) or "key.sub" (one level down) that are left out. What is left out
 * is still read for its structure under the same depth and node limits
 * (skipped strings only for their end and control characters: their escapes
 * are not decoded); memory and time follow what is built. keep and skip are
 * NULL-terminated, either may be NULL.
 */
int tm_json_parse_pruned(struct tm_doc **out, const char *text, size_t len,
			 const struct tm_yaml_limits *lim, const char *const *keep,
			 const char *const *skip);

#endif
