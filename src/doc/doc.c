/*
 * doc.c — the document tree and its JSON emitter.
 *
 * Every manifest, kubeconfig and API response passes through this tree, and
 * every request body to the API server leaves through tm_doc_to_json. The
 * emitter writes what the API server reads back unchanged: raw UTF-8 (the
 * server refuses "\/" and surrogate escapes in some fields, and escaping
 * more than needed only makes diffs and logs harder to read), and numbers
 * exactly as Go's encoding/json prints them, so that a float survives a
 * round trip through kubectl and the server byte for byte.
 *
 * Maps are small arrays in insertion order; once a map grows past a few
 * entries it also gets an open-addressing hash index, so that a hostile
 * manifest with a million keys costs linear time, not quadratic.
 */
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"

#include "reader.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_FROM 8 /* maps with at least this many entries get a hash index */

int tm_doc_new(struct tm_doc **out, enum tm_doc_type type)
{
	struct tm_doc *d;

	*out = NULL;
	if ((unsigned)type > TM_DOC_SEQ)
		return tm_error_set(TM_ERROR, "unknown document node type %d", (int)type);
	if (type == TM_DOC_STRING)
		return tm_doc_new_stringn(out, "", 0);
	d = docr_alloc(sizeof(*d));
	if (!d)
		return tm_error_nomem();
	memset(d, 0, sizeof(*d));
	d->type = type;
	*out = d;
	return 0;
}

int tm_doc_new_null(struct tm_doc **out)
{
	return tm_doc_new(out, TM_DOC_NULL);
}

int tm_doc_new_bool(struct tm_doc **out, int b)
{
	int r = tm_doc_new(out, TM_DOC_BOOL);

	if (r == 0)
		(*out)->u.b = b ? 1 : 0;
	return r;
}

int tm_doc_new_int(struct tm_doc **out, int64_t i)
{
	int r = tm_doc_new(out, TM_DOC_INT);

	if (r == 0)
		(*out)->u.i = i;
	return r;
}

int tm_doc_new_float(struct tm_doc **out, double f)
{
	int r = tm_doc_new(out, TM_DOC_FLOAT);

	if (r == 0)
		(*out)->u.f = f;
	return r;
}

/* A string node and its text are one allocation (the text right after the
 * node's u.str, without the rest of the union: 24 bytes less per string, and
 * a manifest's tree is mostly strings): half the calls to malloc and free
 * went to them. tm_doc_free knows the text by its address. */
int tm_doc_new_stringn(struct tm_doc **out, const char *s, size_t len)
{
	struct tm_doc *d;
	char *p;

	*out = NULL;
	if (len > SIZE_MAX - DOCR_STR_NODE - 1)
		return tm_error_nomem();
	d = docr_alloc(DOCR_STR_NODE + len + 1); /* no room for the rest of the union */
	if (!d)
		return tm_error_nomem();
	memset(d, 0, DOCR_STR_NODE);
	p = (char *)d + DOCR_STR_NODE;
	if (len)
		memcpy(p, s, len);
	p[len] = '\0';
	d->type = TM_DOC_STRING;
	d->u.str.s = p;
	d->u.str.len = len;
	*out = d;
	return 0;
}

int tm_doc_new_string(struct tm_doc **out, const char *s)
{
	return tm_doc_new_stringn(out, s, strlen(s));
}

int tm_doc_new_map(struct tm_doc **out)
{
	return tm_doc_new(out, TM_DOC_MAP);
}

int tm_doc_new_seq(struct tm_doc **out)
{
	return tm_doc_new(out, TM_DOC_SEQ);
}

void tm_doc_free(struct tm_doc *doc)
{
	if (!doc)
		return;
	switch (doc->type) {
	case TM_DOC_STRING:
		if (doc->u.str.s != (char *)doc + DOCR_STR_NODE)
			free(doc->u.str.s);
		break;
	case TM_DOC_MAP:
		for (size_t i = 0; i < doc->u.map.n; i++) {
			docr_free(doc->u.map.v[i].key);
			tm_doc_free(doc->u.map.v[i].value);
		}
		docr_free(doc->u.map.v); /* the pool's or malloc's, as the nodes */
		free(doc->u.map.idx);
		break;
	case TM_DOC_SEQ:
		for (size_t i = 0; i < doc->u.seq.n; i++)
			tm_doc_free(doc->u.seq.v[i]);
		docr_free(doc->u.seq.v);
		break;
	default:
		break;
	}
	docr_free(doc); /* malloc's, or the node pool's (pool.c) */
}

/* ---- map index ---- */

static uint32_t hash_key(const char *k, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 16777619u;
	}
	return h;
}

static int key_eq(const struct tm_doc_entry *e, const char *k, size_t n)
{
	return e->key_len == n && (n == 0 || memcmp(e->key, k, n) == 0);
}

/* Builds the index for the current entries with at least cap slots. */
static int index_build(struct tm_doc *m, size_t cap)
{
	uint32_t *idx;

	if (cap > UINT32_MAX || cap > SIZE_MAX / sizeof(*idx))
		return tm_error_nomem();
	idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return tm_error_nomem();
	for (size_t i = 0; i < m->u.map.n; i++) {
		const struct tm_doc_entry *e = &m->u.map.v[i];
		size_t s = hash_key(e->key, e->key_len) & (cap - 1);

		while (idx[s])
			s = (s + 1) & (cap - 1);
		idx[s] = (uint32_t)(i + 1);
	}
	free(m->u.map.idx);
	m->u.map.idx = idx;
	m->u.map.idx_cap = cap;
	return 0;
}

static ptrdiff_t map_find(const struct tm_doc *m, const char *k, size_t n)
{
	if (m->u.map.idx) {
		size_t cap = m->u.map.idx_cap;
		size_t s = hash_key(k, n) & (cap - 1);

		while (m->u.map.idx[s]) {
			size_t i = m->u.map.idx[s] - 1;

			if (key_eq(&m->u.map.v[i], k, n))
				return (ptrdiff_t)i;
			s = (s + 1) & (cap - 1);
		}
		return -1;
	}
	for (size_t i = 0; i < m->u.map.n; i++)
		if (key_eq(&m->u.map.v[i], k, n))
			return (ptrdiff_t)i;
	return -1;
}

struct tm_doc *tm_doc_map_getn(const struct tm_doc *map, const char *key, size_t key_len)
{
	ptrdiff_t i;

	if (!map || map->type != TM_DOC_MAP || !key)
		return NULL;
	i = map_find(map, key, key_len);
	return i < 0 ? NULL : map->u.map.v[i].value;
}

struct tm_doc *tm_doc_map_get(const struct tm_doc *map, const char *key)
{
	return key ? tm_doc_map_getn(map, key, strlen(key)) : NULL;
}

struct tm_doc *tm_doc_get_path(const struct tm_doc *doc, ...)
{
	const struct tm_doc *cur = doc;
	const char *key;
	va_list ap;

	va_start(ap, doc);
	while (cur && (key = va_arg(ap, const char *)) != NULL)
		cur = tm_doc_map_get(cur, key);
	va_end(ap);
	/* The tree is the caller's: hand back a mutable pointer like strchr. */
	return (struct tm_doc *)(uintptr_t)cur;
}

int tm_doc_map_setn(struct tm_doc *map, const char *key, size_t key_len, struct tm_doc *value)
{
	struct tm_doc *old = NULL;
	int r = tm_doc_map_exchange(map, key, key_len, value, &old);

	tm_doc_free(old);
	return r;
}

/* Appends (k, value) to a map that has no key k; the map owns k from here,
 * also when this fails (k and value are freed then). */
static int map_append(struct tm_doc *map, char *k, size_t key_len, struct tm_doc *value)
{
	struct tm_doc_entry *e;

	if (map->u.map.n >= UINT32_MAX - 1)
		goto nomem;
	if (map->u.map.n == map->u.map.cap) {
		size_t ncap = map->u.map.cap ? map->u.map.cap * 2 : 4;

		if (ncap > SIZE_MAX / sizeof(*e))
			goto nomem;
		e = docr_grow(map->u.map.v, map->u.map.cap * sizeof(*e), ncap * sizeof(*e));
		if (!e)
			goto nomem;
		map->u.map.v = e;
		map->u.map.cap = ncap;
	}
	e = &map->u.map.v[map->u.map.n++];
	e->key = k;
	e->key_len = key_len;
	e->value = value;
	if (map->u.map.idx && map->u.map.n * 2 <= map->u.map.idx_cap) {
		size_t cap = map->u.map.idx_cap;
		size_t s = hash_key(k, key_len) & (cap - 1);

		while (map->u.map.idx[s])
			s = (s + 1) & (cap - 1);
		map->u.map.idx[s] = (uint32_t)map->u.map.n;
	} else if (map->u.map.n >= INDEX_FROM) {
		size_t cap = 16;

		while (cap < map->u.map.n * 2)
			cap *= 2;
		if (index_build(map, cap) < 0) {
			/* Keep the map consistent: undo the append. */
			map->u.map.n--;
			docr_free(k);
			tm_doc_free(value);
			return TM_ENOMEM;
		}
	}
	return 0;
nomem:
	docr_free(k);
	tm_doc_free(value);
	return tm_error_nomem();
}

/* The checks of both exchanges; 1 when key is in the map (its value
 * exchanged), 0 when not, < 0 (value freed) on a bad call. */
static int exchange_found(struct tm_doc *map, const char *key, size_t key_len, struct tm_doc *value,
			  struct tm_doc **old)
{
	ptrdiff_t found;

	*old = NULL;
	if (!map || map->type != TM_DOC_MAP || !key || !value) {
		tm_doc_free(value);
		return tm_error_set(TM_ERROR, "tm_doc_map_set: not a map, or no key or value");
	}
	if ((found = map_find(map, key, key_len)) < 0)
		return 0;
	*old = map->u.map.v[found].value;
	map->u.map.v[found].value = value;
	return 1;
}

int tm_doc_map_exchange(struct tm_doc *map, const char *key, size_t key_len, struct tm_doc *value,
			struct tm_doc **old)
{
	int r = exchange_found(map, key, key_len, value, old);
	char *k;

	if (r != 0)
		return r < 0 ? r : 0;
	if (key_len == SIZE_MAX || !(k = docr_alloc(key_len + 1))) {
		tm_doc_free(value);
		return tm_error_nomem();
	}
	if (key_len)
		memcpy(k, key, key_len);
	k[key_len] = '\0';
	return map_append(map, k, key_len, value);
}

int tm_doc_map_exchange_key(struct tm_doc *map, char *key, size_t key_len, struct tm_doc *value,
			    struct tm_doc **old)
{
	int r = exchange_found(map, key, key_len, value, old);

	if (r != 0) {
		docr_free(key);
		return r < 0 ? r : 0;
	}
	return map_append(map, key, key_len, value);
}

int tm_doc_map_set(struct tm_doc *map, const char *key, struct tm_doc *value)
{
	if (!key) {
		tm_doc_free(value);
		return tm_error_set(TM_ERROR, "tm_doc_map_set: no key");
	}
	return tm_doc_map_setn(map, key, strlen(key), value);
}

struct tm_doc *tm_doc_map_take(struct tm_doc *map, const char *key)
{
	struct tm_doc *v;
	ptrdiff_t i;

	if (!map || map->type != TM_DOC_MAP || !key)
		return NULL;
	i = map_find(map, key, strlen(key));
	if (i < 0)
		return NULL;
	v = map->u.map.v[i].value;
	docr_free(map->u.map.v[i].key);
	memmove(&map->u.map.v[i], &map->u.map.v[i + 1],
		(map->u.map.n - (size_t)i - 1) * sizeof(map->u.map.v[0]));
	map->u.map.n--;
	if (map->u.map.idx && index_build(map, map->u.map.idx_cap) < 0) {
		/* Fall back to linear lookups rather than a stale index. */
		free(map->u.map.idx);
		map->u.map.idx = NULL;
		map->u.map.idx_cap = 0;
	}
	return v;
}

int tm_doc_map_remove(struct tm_doc *map, const char *key)
{
	struct tm_doc *v;

	if (!tm_doc_map_get(map, key))
		return TM_ENOTFOUND;
	v = tm_doc_map_take(map, key);
	tm_doc_free(v);
	return 0;
}

int tm_doc_seq_append(struct tm_doc *seq, struct tm_doc *item)
{
	if (!seq || seq->type != TM_DOC_SEQ || !item) {
		tm_doc_free(item);
		return tm_error_set(TM_ERROR, "tm_doc_seq_append: not a sequence, or no item");
	}
	if (seq->u.seq.n == seq->u.seq.cap) {
		size_t ncap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
		struct tm_doc **v;

		if (ncap > SIZE_MAX / sizeof(*v)) {
			tm_doc_free(item);
			return tm_error_nomem();
		}
		v = docr_grow(seq->u.seq.v, seq->u.seq.cap * sizeof(*v), ncap * sizeof(*v));
		if (!v) {
			tm_doc_free(item);
			return tm_error_nomem();
		}
		seq->u.seq.v = v;
		seq->u.seq.cap = ncap;
	}
	seq->u.seq.v[seq->u.seq.n++] = item;
	return 0;
}

struct tm_doc *tm_doc_seq_at(const struct tm_doc *seq, size_t i)
{
	if (!seq || seq->type != TM_DOC_SEQ || i >= seq->u.seq.n)
		return NULL;
	return seq->u.seq.v[i];
}

size_t tm_doc_len(const struct tm_doc *doc)
{
	if (!doc)
		return 0;
	if (doc->type == TM_DOC_MAP)
		return doc->u.map.n;
	if (doc->type == TM_DOC_SEQ)
		return doc->u.seq.n;
	return 0;
}

const char *tm_doc_string(const struct tm_doc *doc)
{
	return doc && doc->type == TM_DOC_STRING ? doc->u.str.s : NULL;
}

const char *tm_doc_type_name(enum tm_doc_type type)
{
	switch (type) {
	case TM_DOC_NULL:
		return "null";
	case TM_DOC_BOOL:
		return "boolean";
	case TM_DOC_INT:
		return "integer";
	case TM_DOC_FLOAT:
		return "number";
	case TM_DOC_STRING:
		return "string";
	case TM_DOC_MAP:
		return "object";
	case TM_DOC_SEQ:
		return "array";
	}
	return "unknown";
}

int tm_doc_clone(struct tm_doc **out, const struct tm_doc *doc)
{
	struct tm_doc *c = NULL;
	int r;

	*out = NULL;
	if (!doc)
		return tm_error_set(TM_ERROR, "tm_doc_clone: no document");
	switch (doc->type) {
	case TM_DOC_STRING:
		r = tm_doc_new_stringn(&c, doc->u.str.s, doc->u.str.len);
		break;
	case TM_DOC_MAP:
		r = tm_doc_new_map(&c);
		for (size_t i = 0; r == 0 && i < doc->u.map.n; i++) {
			const struct tm_doc_entry *e = &doc->u.map.v[i];
			struct tm_doc *v;

			r = tm_doc_clone(&v, e->value);
			if (r == 0)
				r = tm_doc_map_setn(c, e->key, e->key_len, v);
		}
		break;
	case TM_DOC_SEQ:
		r = tm_doc_new_seq(&c);
		for (size_t i = 0; r == 0 && i < doc->u.seq.n; i++) {
			struct tm_doc *v;

			r = tm_doc_clone(&v, doc->u.seq.v[i]);
			if (r == 0)
				r = tm_doc_seq_append(c, v);
		}
		break;
	default:
		r = tm_doc_new(&c, doc->type);
		if (r == 0)
			c->u = doc->u;
		break;
	}
	if (r < 0) {
		tm_doc_free(c);
		return r;
	}
	c->flags = doc->flags;
	c->line = doc->line;
	*out = c;
	return 0;
}

int tm_doc_equal(const struct tm_doc *a, const struct tm_doc *b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case TM_DOC_NULL:
		return 1;
	case TM_DOC_BOOL:
		return a->u.b == b->u.b;
	case TM_DOC_INT:
		return a->u.i == b->u.i;
	case TM_DOC_FLOAT:
		return a->u.f == b->u.f;
	case TM_DOC_STRING:
		return a->u.str.len == b->u.str.len &&
		       memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
	case TM_DOC_MAP:
		if (a->u.map.n != b->u.map.n)
			return 0;
		for (size_t i = 0; i < a->u.map.n; i++) {
			const struct tm_doc_entry *e = &a->u.map.v[i];

			if (!tm_doc_equal(e->value, tm_doc_map_getn(b, e->key, e->key_len)))
				return 0;
		}
		return 1;
	case TM_DOC_SEQ:
		if (a->u.seq.n != b->u.seq.n)
			return 0;
		for (size_t i = 0; i < a->u.seq.n; i++)
			if (!tm_doc_equal(a->u.seq.v[i], b->u.seq.v[i]))
				return 0;
		return 1;
	}
	return 0;
}

/* ---- floats as Go prints them ---- */

/* Does text read back as v (as a float32 when bits32)? */
static int round_trips(const char *text, double v, int bits32)
{
	if (bits32)
		return strtof(text, NULL) == (float)v;
	return strtod(text, NULL) == v;
}

/*
 * The p significant digits of v (finite, > 0) that read back as v, if any:
 * the correctly rounded p digits are the closest candidate; at the
 * asymmetric gaps around powers of two a neighbour one unit away can still
 * read back when they do not, so those are tried too. On success: the digits
 * (possibly with trailing zeros) in mant, their count in *n and the decimal
 * exponent of the first digit in *e.
 */
static int try_digits(double v, int p, int bits32, char *mant, int *n, int *e)
{
	char tmp[64], cand[64];
	const char *s;

	snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
	*n = 0;
	for (s = tmp; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9')
			mant[(*n)++] = *s;
	mant[*n] = '\0';
	*e = (int)strtol(s + 1, NULL, 10);
	if (round_trips(tmp, v, bits32))
		return 1;
	for (int delta = -1; delta <= 1; delta += 2) {
		char alt[32];
		int carry = delta;

		memcpy(alt, mant, (size_t)*n + 1);
		for (int i = *n - 1; i >= 0 && carry; i--) {
			int d = alt[i] - '0' + carry;

			carry = d < 0 ? -1 : d > 9 ? 1 : 0;
			alt[i] = (char)('0' + (d + 10) % 10);
		}
		if (carry < 0)
			continue;
		/* 99..9 + 1 carries into one digit more: 1 followed by zeros. */
		snprintf(cand, sizeof(cand), "%s%se%d", carry > 0 ? "1" : "", alt, *e - p + 1);
		if (round_trips(cand, v, bits32)) {
			*n = 0;
			for (s = cand; *s != 'e'; s++)
				mant[(*n)++] = *s;
			mant[*n] = '\0';
			*e = (int)strtol(s + 1, NULL, 10) + *n - 1;
			return 1;
		}
	}
	return 0;
}

/*
 * The shortest decimal digits that read back as v (finite, > 0), as Go's
 * shortest formatting finds them. Whether some p-digit decimal reads back is
 * monotonic in p, so p is found by bisection. Writes the digits (no leading
 * or trailing zeros) and the decimal point position dp: v = 0.d1d2... * 10^dp.
 */
static void shortest_digits(char *digits, int *nd, int *dp, double v, int bits32)
{
	int lo = 1, hi = bits32 ? 9 : 17, n, e, lead = 0;
	char mant[40];

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (try_digits(v, mid, bits32, mant, &n, &e))
			hi = mid;
		else
			lo = mid + 1;
	}
	/* 17 (9) significant digits always read back. */
	try_digits(v, lo, bits32, mant, &n, &e);
	while (lead < n - 1 && mant[lead] == '0') {
		lead++;
		e--;
	}
	while (n - 1 > lead && mant[n - 1] == '0')
		n--;
	*nd = n - lead;
	memcpy(digits, mant + lead, (size_t)*nd);
	digits[*nd] = '\0';
	*dp = e + 1;
}

struct fbuf {
	char *p;
	size_t size, len;
	int over;
};

static void fput(struct fbuf *b, const char *s, size_t n)
{
	if (b->over || n >= b->size - b->len) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void fputc1(struct fbuf *b, char c)
{
	fput(b, &c, 1);
}

static void fmt_e(struct fbuf *b, const char *d, int nd, int dp)
{
	char exp[16];
	int x = dp - 1;

	fputc1(b, d[0]);
	if (nd > 1) {
		fputc1(b, '.');
		fput(b, d + 1, (size_t)nd - 1);
	}
	snprintf(exp, sizeof(exp), "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
	fput(b, exp, strlen(exp));
}

static void fmt_f(struct fbuf *b, const char *d, int nd, int dp)
{
	if (dp <= 0) {
		fput(b, "0.", 2);
		for (int i = 0; i < -dp; i++)
			fputc1(b, '0');
		fput(b, d, (size_t)nd);
	} else if (dp >= nd) {
		fput(b, d, (size_t)nd);
		for (int i = nd; i < dp; i++)
			fputc1(b, '0');
	} else {
		fput(b, d, (size_t)dp);
		fputc1(b, '.');
		fput(b, d + dp, (size_t)(nd - dp));
	}
}

int tm_doc_format_float(char *buf, size_t size, double f, char fmt, int bits)
{
	struct fbuf b = { buf, size, 0, 0 };
	char digits[40];
	int nd, dp, bits32 = bits == 32;

	if (!buf || size == 0)
		return tm_error_set(TM_ELIMIT, "float format buffer too small");
	buf[0] = '\0';
	if (bits32 && !isnan(f)) {
		/* Go rounds to float32 first: values from the rounding midpoint
		 * above FLT_MAX on become infinite (avoid the undefined cast). */
		if (fabs(f) >= 0x1.ffffffp127)
			f = f < 0 ? -INFINITY : INFINITY;
		else if (fabs(f) > FLT_MAX)
			f = f < 0 ? -FLT_MAX : FLT_MAX;
		else
			f = (double)(float)f;
	}
	if (isnan(f)) {
		fput(&b, "NaN", 3);
	} else if (isinf(f)) {
		fput(&b, f < 0 ? "-Inf" : "+Inf", 4);
	} else {
		if (signbit(f))
			fputc1(&b, '-');
		if (f == 0) {
			digits[0] = '0';
			digits[1] = '\0';
			nd = 1;
			dp = 1;
		} else {
			shortest_digits(digits, &nd, &dp, fabs(f), bits32);
		}
		switch (fmt) {
		case 'e':
			fmt_e(&b, digits, nd, dp);
			break;
		case 'f':
			fmt_f(&b, digits, nd, dp);
			break;
		case 'g': {
			int x = dp - 1;

			/* Shortest 'g' decides with precision 6, as Go does. */
			if (f != 0 && (x < -4 || x >= 6))
				fmt_e(&b, digits, nd, dp);
			else
				fmt_f(&b, digits, nd, dp);
			break;
		}
		default:
			return tm_error_set(TM_ERROR, "unknown float format '%c'", fmt);
		}
	}
	if (b.over)
		return tm_error_set(TM_ELIMIT, "float format buffer too small");
	return (int)b.len;
}

/* ---- JSON ---- */

size_t tm_doc_utf8_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c;

	if (n == 0)
		return 0;
	c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		unsigned lo = 0x80, hi = 0xBF;

		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
		if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		unsigned lo = 0x80, hi = 0xBF;

		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
		if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

/* Whether none of the eight bytes at s needs a look of its own in a JSON
 * string: no control character, '"', '\\' or non-ASCII byte (the bit tricks
 * find a byte below 0x20 and a byte equal to each of the two). */
static int plain8(const unsigned char *s)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	uint64_t w, q, b;

	memcpy(&w, s, 8);
	q = w ^ (ones * '"');
	b = w ^ (ones * '\\');
	return !((w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high);
}

int tm_doc_json_string(struct tm_buf *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;
	int r;

	if ((r = tm_buf_putc(out, '"')) < 0)
		return r;
	while (i < len) {
		unsigned char c = s[i];

		if (len - i >= 8 && plain8(s + i)) {
			i += 8;
			continue;
		}
		char esc[8];
		const char *rep = NULL;
		size_t rep_len = 0, n;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0x80 && (n = tm_doc_utf8_len(str + i, len - i)) > 0) {
			i += n;
			continue;
		}
		/* Flush the raw run before this byte. */
		if (i > run && (r = tm_buf_put(out, s + run, i - run)) < 0)
			return r;
		switch (c) {
		case '"':
			rep = "\\\"";
			break;
		case '\\':
			rep = "\\\\";
			break;
		case '\b':
			rep = "\\b";
			break;
		case '\f':
			rep = "\\f";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '\r':
			rep = "\\r";
			break;
		case '\t':
			rep = "\\t";
			break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				rep = esc;
			} else {
				rep = "\xEF\xBF\xBD"; /* not UTF-8: U+FFFD, as Go does */
			}
			break;
		}
		rep_len = strlen(rep);
		if ((r = tm_buf_put(out, rep, rep_len)) < 0)
			return r;
		i++;
		run = i;
	}
	if (i > run && (r = tm_buf_put(out, s + run, i - run)) < 0)
		return r;
	return tm_buf_putc(out, '"');
}

static int json_float(struct tm_buf *out, double f)
{
	char tmp[64];
	double a = fabs(f);
	int n;

	if (!isfinite(f))
		return tm_error_set(TM_EPARSE, "JSON cannot represent %s",
				    isnan(f) ? "NaN" : "an infinite number");
	/* encoding/json: exponent form below 1e-6 and from 1e21 on, and
	 * "e-07" shortened to "e-7". */
	if (a != 0 && (a < 1e-6 || a >= 1e21)) {
		n = tm_doc_format_float(tmp, sizeof(tmp), f, 'e', 64);
		if (n >= 4 && tmp[n - 4] == 'e' && tmp[n - 3] == '-' && tmp[n - 2] == '0') {
			tmp[n - 2] = tmp[n - 1];
			tmp[--n] = '\0';
		}
	} else {
		n = tm_doc_format_float(tmp, sizeof(tmp), f, 'f', 64);
	}
	if (n < 0)
		return n;
	return tm_buf_put(out, tmp, (size_t)n);
}

/* An integer in decimal (printf costs two passes over its format under musl). */
static int json_int(struct tm_buf *out, int64_t i)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;
	uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		*--p = '-';
	return tm_buf_put(out, p, (size_t)(e - p));
}

int tm_doc_to_json(struct tm_buf *out, const struct tm_doc *doc)
{
	int r;

	if (!doc)
		return tm_error_set(TM_ERROR, "tm_doc_to_json: no document");
	switch (doc->type) {
	case TM_DOC_NULL:
		return tm_buf_puts(out, "null");
	case TM_DOC_BOOL:
		return tm_buf_puts(out, doc->u.b ? "true" : "false");
	case TM_DOC_INT:
		return json_int(out, doc->u.i);
	case TM_DOC_FLOAT:
		return json_float(out, doc->u.f);
	case TM_DOC_STRING:
		return tm_doc_json_string(out, doc->u.str.s, doc->u.str.len);
	case TM_DOC_MAP:
		if ((r = tm_buf_putc(out, '{')) < 0)
			return r;
		for (size_t i = 0; i < doc->u.map.n; i++) {
			const struct tm_doc_entry *e = &doc->u.map.v[i];

			if (i && (r = tm_buf_putc(out, ',')) < 0)
				return r;
			if ((r = tm_doc_json_string(out, e->key, e->key_len)) < 0 ||
			    (r = tm_buf_putc(out, ':')) < 0 ||
			    (r = tm_doc_to_json(out, e->value)) < 0)
				return r;
		}
		return tm_buf_putc(out, '}');
	case TM_DOC_SEQ:
		if ((r = tm_buf_putc(out, '[')) < 0)
			return r;
		for (size_t i = 0; i < doc->u.seq.n; i++) {
			if (i && (r = tm_buf_putc(out, ',')) < 0)
				return r;
			if ((r = tm_doc_to_json(out, doc->u.seq.v[i])) < 0)
				return r;
		}
		return tm_buf_putc(out, ']');
	}
	return tm_error_set(TM_ERROR, "tm_doc_to_json: unknown node type");
}
