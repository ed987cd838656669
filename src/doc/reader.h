/*
 * reader.h — what the readers of text into a document tree share inside src/doc/ (not a public
 * header): where a message points (origin, document, line), the limits budget, the internal
 * node flags, the JSON parser's state (a manifest stream of JSON values reads through it) and
 * the functions one reader file calls in another, each with the docr_ prefix:
 *   reader.c   messages, limits, text in (UTF-8 repair, UTF-16, byte order marks);
 *   goscalar.c Go's number and time syntax, go-yaml v2's scalar typing, the JSON round trip;
 *   jsonread.c Go's encoding/json (tm_json_parse: state.json, API answers; no libyaml);
 *   yaml.c     the libyaml adapter (events to a tree);
 *   fastyaml.c the block style manifests are written in, to the same events without libyaml;
 *   manifest.c kubectl's file, stream and object rules (tm_yaml_parse_stream, _each);
 *   pool.c     the node pool: a document's nodes and keys in a few chunks (docr_alloc).
 */
#ifndef TAGMOOR_DOC_READER_H
#define TAGMOOR_DOC_READER_H

#include "tagmoor/doc/jsonread.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct tm_doc;

/* Internal node flags (struct tm_doc.flags), cleared before a tree is returned. */
#define F_UINT64 1u   /* an integer above int64: a float in JSON, no map key */
#define F_ANCHORED 2u /* an anchor points here: never modified, never freed early */
#define F_OPEN 4u     /* a collection still being read: an alias to it recurses */

#define MSG_CAP 64 /* bytes of untrusted text quoted in a message */

struct where {
	const char *origin;
	size_t doc; /* 1-based document (piece) of a stream; 0: not a stream */
};

int docr_fail(const struct where *w, int code, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

struct budget {
	const struct tm_yaml_limits *lim;
	size_t nodes;
	size_t aliased;
	int per_doc;    /* nodes are counted per document of a stream (tm_yaml_parse_each) */
	size_t max_doc; /* bytes of one document of a stream; 0: only lim->max_bytes */
};

struct jparser {
	const char *s;
	size_t n, i;
	const struct where *w;
	struct budget *bg;
	size_t lpos; /* newlines before lpos are counted in lines */
	unsigned lines;
	/* tm_json_parse_pruned: values not built (NULL: build everything) */
	const char *const *keep; /* only these top-level keys are built */
	const char *const *skip; /* "key" or "key.sub": skipped (checked, not built) */
	const char *top;         /* the top-level key whose value is being read */
	size_t top_len;
};

/*
 * The node pool (pool.c). docr_alloc is malloc, or a piece of the pool in use on this thread;
 * docr_free frees either (every node and map key of a tree goes through them: tm_doc_free). A
 * pool is live from docr_pool_new (NULL: none, out of memory or another one live; then malloc is
 * used) to docr_pool_free; docr_pool_use turns taking from it on and off (on only while a reader
 * builds a tree); docr_pool_reset makes its memory serve again once nothing of it is live.
 */
struct docr_pool;
/* Bytes of a string node before its text (doc.c): the header and u.str, not the whole union (a
 * string node is never made another type in place, nor copied as a struct). */
#define DOCR_STR_NODE (offsetof(struct tm_doc, u) + sizeof(((struct tm_doc *)0)->u.str))
struct docr_pool *docr_pool_new(void);
void docr_pool_use(struct docr_pool *p, int on);
void docr_pool_reset(struct docr_pool *p);
void docr_pool_free(struct docr_pool *p);
size_t docr_pool_live(const struct docr_pool *p); /* allocations not given back (tests) */
void *docr_alloc(size_t n);
void docr_free(void *v);
/* realloc for what docr_alloc gave (old bytes of it in use, n > old wanted): the arrays of maps
 * and sequences. The last piece taken from the pool in use grows in place; other pool pieces
 * move (the old one is given back: its room serves again only after a reset, at most as much
 * again as the array); malloc's are realloc'd. NULL: out of memory, v unchanged. */
void *docr_grow(void *v, size_t old, size_t n);
/* A string node just taken from the pool in use becomes its own text (a map key, docr_free'd as
 * one): the node is gone, *len is the text's length. NULL (d unchanged): d is not such a node. */
char *docr_pool_key(struct tm_doc *d, size_t *len);

int docr_count_node(struct budget *bg, const struct where *w, unsigned line, int aliased);
int docr_too_deep(const struct where *w, unsigned line, unsigned max);
int docr_check_size(const char *origin, size_t len, const struct tm_yaml_limits *lim);
/* How many bytes at the start of s are ASCII (each one character). */
size_t docr_ascii_len(const char *s, size_t n);
char *docr_utf8_fix(const char *s, size_t n, size_t *out_len, int *oom, int subpart);
size_t docr_put_utf8(char *d, unsigned cp);
int docr_normalize_input(const char **out, size_t *out_len, char **owned, const char *text,
			 size_t len);
int docr_digit_val(char c);
int docr_go_parse_int(int64_t *out, const char *s, size_t n, int base);
int docr_parse_decimal(double *out, const char *s, size_t n);
int docr_go_time(const char *s, size_t n, char sep, int rfc);
int docr_resolve_scalar(struct tm_doc **out, const char *s, size_t n, const char *tag_long,
			int plain_implicit, const struct where *w, unsigned line);
int docr_key_string(char **out, size_t *out_len, const struct tm_doc *k, const struct where *w,
		    unsigned line);
int docr_finalize(const struct where *w, struct tm_doc *d);
int docr_jvalue(struct jparser *p, struct tm_doc **out, unsigned depth);
void docr_jws(struct jparser *p);
int docr_build_yaml(struct tm_doc **out, const char *text, size_t len, unsigned line0,
		    const struct where *w, struct budget *bg);

/* fastyaml.c: the events libyaml would give for text (lines 0-based in text), or
 * DOCR_FAST_BAIL as soon as text leaves the subset it reads or a callback fails. */
#define DOCR_FAST_BAIL 1
struct docr_fast_ops {
	int (*scalar)(void *arg, const char *s, size_t n, int plain, unsigned line);
	int (*start)(void *arg, int map, int flow, unsigned line);
	int (*end)(void *arg);
};
int docr_fast_yaml(const char *text, size_t len, const struct docr_fast_ops *ops, void *arg);
/* Tests: 0 reads every document with libyaml, to compare the two. */
void docr_fast_set(int on);
int docr_fast_enabled(void);

#endif
