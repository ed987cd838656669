/*
 * doc.h — the one in-memory document tree of tagmoor.
 *
 * Manifests, the kubeconfig and API responses all become a tree of maps,
 * sequences and typed scalars (the types a Kubernetes API server sees after
 * it has decoded YAML or JSON). yaml.h builds trees from text; this module
 * owns the tree, lookups and edits, and the JSON emitter used for every
 * request body.
 *
 * Ownership: a node owns its children. Functions that attach a node
 * (tm_doc_map_set, tm_doc_seq_append) take ownership of it, also when they
 * fail. Getters return borrowed pointers that live as long as their parent.
 * Map keys are always strings; maps keep insertion order, and setting an
 * existing key replaces its value in place.
 */
#ifndef TAGMOOR_DOC_H
#define TAGMOOR_DOC_H

#include <stddef.h>
#include <stdint.h>

struct tm_buf;

enum tm_doc_type {
	TM_DOC_NULL,
	TM_DOC_BOOL,
	TM_DOC_INT,
	TM_DOC_FLOAT,
	TM_DOC_STRING,
	TM_DOC_MAP,
	TM_DOC_SEQ
};

struct tm_doc;

struct tm_doc_entry {
	char *key; /* NUL-terminated; may also contain NUL bytes */
	size_t key_len;
	struct tm_doc *value;
};

/* A string node (tm_doc_new_string*) is allocated with room for u.str only, not the whole union:
 * a node is never copied as a struct, and a string node never becomes another type in place. */
struct tm_doc {
	enum tm_doc_type type;
	unsigned flags; /* internal to the parsers; 0 otherwise */
	unsigned line;  /* 1-based source line when parsed from text, else 0 */
	union {
		int b;
		int64_t i;
		double f;
		struct {
			char *s; /* NUL-terminated; may also contain NUL bytes */
			size_t len;
		} str;
		struct {
			struct tm_doc_entry *v;
			size_t n, cap;
			uint32_t *idx; /* hash index of v, built once the map grows */
			size_t idx_cap;
		} map;
		struct {
			struct tm_doc **v;
			size_t n, cap;
		} seq;
	} u;
};

/* Constructors: *out is a new node the caller owns (tm_doc_free). */
int tm_doc_new(struct tm_doc **out, enum tm_doc_type type); /* zero value of type */
int tm_doc_new_null(struct tm_doc **out);
int tm_doc_new_bool(struct tm_doc **out, int b);
int tm_doc_new_int(struct tm_doc **out, int64_t i);
int tm_doc_new_float(struct tm_doc **out, double f);
int tm_doc_new_string(struct tm_doc **out, const char *s);
int tm_doc_new_stringn(struct tm_doc **out, const char *s, size_t len);
int tm_doc_new_map(struct tm_doc **out);
int tm_doc_new_seq(struct tm_doc **out);
/* Deep copy. */
int tm_doc_clone(struct tm_doc **out, const struct tm_doc *doc);
/* Frees a node and everything below it; NULL is fine. */
void tm_doc_free(struct tm_doc *doc);

/* Map lookups: the value of key, or NULL (also when map is not a map). */
struct tm_doc *tm_doc_map_get(const struct tm_doc *map, const char *key);
struct tm_doc *tm_doc_map_getn(const struct tm_doc *map, const char *key, size_t key_len);
/* Walks nested maps: tm_doc_get_path(doc, "metadata", "name", NULL). */
struct tm_doc *tm_doc_get_path(const struct tm_doc *doc, ...);
/* Replaces the value of key (keeping its position) or appends key. Takes
 * ownership of value, also on failure. */
int tm_doc_map_set(struct tm_doc *map, const char *key, struct tm_doc *value);
int tm_doc_map_setn(struct tm_doc *map, const char *key, size_t key_len, struct tm_doc *value);
/* Like tm_doc_map_setn, but hands the replaced value (or NULL) to *old
 * instead of freeing it. */
int tm_doc_map_exchange(struct tm_doc *map, const char *key, size_t key_len, struct tm_doc *value,
			struct tm_doc **old);
/* tm_doc_map_exchange with a key the map takes over (malloc'd, NUL-terminated at key_len):
 * freed when the map has it already, or on failure. Saves a copy per key when a parser
 * builds a map. */
int tm_doc_map_exchange_key(struct tm_doc *map, char *key, size_t key_len, struct tm_doc *value,
			    struct tm_doc **old);
/* Removes key and frees its value: 0, or TM_ENOTFOUND. */
int tm_doc_map_remove(struct tm_doc *map, const char *key);
/* Detaches the value of key without freeing it: the value, or NULL. */
struct tm_doc *tm_doc_map_take(struct tm_doc *map, const char *key);

/* Appends item (ownership taken, also on failure). */
int tm_doc_seq_append(struct tm_doc *seq, struct tm_doc *item);
/* Item i, or NULL. */
struct tm_doc *tm_doc_seq_at(const struct tm_doc *seq, size_t i);

/* Number of entries of a map or items of a sequence; 0 for scalars. */
size_t tm_doc_len(const struct tm_doc *doc);
/* The string of a string node (borrowed), or NULL for any other node. */
const char *tm_doc_string(const struct tm_doc *doc);
/* "null", "boolean", "integer", "number", "string", "object", "array". */
const char *tm_doc_type_name(enum tm_doc_type type);
/* Deep equality: same types (an INT never equals a FLOAT), same scalars,
 * maps with the same keys and equal values in any order, sequences equal
 * item by item. NaN equals nothing. */
int tm_doc_equal(const struct tm_doc *a, const struct tm_doc *b);

/*
 * Compact JSON in insertion order, as the Kubernetes API server accepts it:
 * strings are raw UTF-8 with only '"', '\\' and control characters escaped
 * (\b \f \n \r \t, else \u00XX; never "\/", never a surrogate escape; bytes
 * that are not UTF-8 become U+FFFD), integers as integers, floats as Go's
 * encoding/json prints a float64. NaN and infinities cannot be written:
 * TM_EPARSE. Appends to out (whose cap applies: TM_ELIMIT).
 */
int tm_doc_to_json(struct tm_buf *out, const struct tm_doc *doc);
/* One JSON string as tm_doc_to_json writes it: raw UTF-8, only '"', '\\' and
 * control characters escaped, invalid UTF-8 replaced by U+FFFD (as Go does). */
int tm_doc_json_string(struct tm_buf *out, const char *str, size_t len);

/*
 * Formats f like Go's strconv.FormatFloat(f, fmt, -1, bits): the shortest
 * decimal that reads back as the same float64 (bits 64) or float32 (bits 32,
 * f rounded to float32 first), fmt 'e', 'f' or 'g'. Infinities and NaN give
 * "+Inf", "-Inf", "NaN". Returns the length, or TM_ELIMIT when size is too
 * small (32 bytes are always enough for 'e' and 'g', 400 for 'f').
 */
int tm_doc_format_float(char *buf, size_t size, double f, char fmt, int bits);

/* Length of the valid UTF-8 sequence at s (Go's rules: shortest form, no
 * surrogates, at most U+10FFFF), or 0 when s does not start with one. */
size_t tm_doc_utf8_len(const char *s, size_t n);

#endif
