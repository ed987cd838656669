/*
 * manifest.c — a manifest file read the way `kubectl apply -f` reads it (yaml.h,
 * tm_yaml_parse_stream and tm_yaml_parse_each): a stream of JSON values when it starts with '{',
 * else YAML documents split at "---" lines (each one built by the libyaml adapter, yaml.c);
 * then kubectl's object rules: kind and apiVersion, metadata decoding as ObjectMeta, lists
 * flattened into their items.
 */
#include "reader.h"
#include "tagmoor/doc/yaml.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_SNIFF 4096 /* apimachinery looks this far for a leading '{' */

/* Go's unicode.IsSpace for the character at s (its length in *k). */
static int go_space(const char *s, size_t n, size_t *k)
{
	unsigned char c = (unsigned char)s[0];
	unsigned cp;

	*k = 1;
	if (c < 0x80)
		return c == ' ' || (c >= '\t' && c <= '\r');
	*k = tm_doc_utf8_len(s, n);
	if (*k == 0) {
		*k = 1;
		return 0;
	}
	if (*k == 2)
		cp = (unsigned)(c & 0x1F) << 6 | ((unsigned char)s[1] & 0x3F);
	else if (*k == 3)
		cp = (unsigned)(c & 0x0F) << 12 | ((unsigned)((unsigned char)s[1] & 0x3F) << 6) |
		     ((unsigned char)s[2] & 0x3F);
	else
		return 0;
	return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* apimachinery: JSON when the first non-space of the first 4096 bytes is '{'. */
static int looks_like_json(const char *s, size_t n)
{
	size_t lim = n < JSON_SNIFF ? n : JSON_SNIFF, k;

	for (size_t i = 0; i < lim; i += k)
		if (!go_space(s + i, lim - i, &k))
			return s[i] == '{';
	return 0;
}

/* ---- kubectl's object rules ---- */

static int type_err(const struct where *w, const struct tm_doc *d, const char *path,
		    const char *want)
{
	return docr_fail(w, TM_EPARSE, d->line, "%s must be %s, not %s", path, want,
			 d->type == TM_DOC_NULL ? "null" : tm_doc_type_name(d->type));
}

enum ftype {
	F_STR,
	F_INT,
	F_BOOL,
	F_TIME,
	F_STRMAP,
	F_STRSEQ,
	F_OWNERS,
	F_MANAGED,
	F_ANY
};

struct field {
	const char *name;
	enum ftype t;
};

static const struct field owner_fields[] = {
	{ "apiVersion", F_STR }, { "kind", F_STR },        { "name", F_STR },
	{ "uid", F_STR },        { "controller", F_BOOL }, { "blockOwnerDeletion", F_BOOL },
	{ NULL, F_ANY },
};

static const struct field managed_fields[] = {
	{ "manager", F_STR }, { "operation", F_STR },  { "apiVersion", F_STR },
	{ "time", F_TIME },   { "fieldsType", F_STR }, { "subresource", F_STR },
	{ NULL, F_ANY },
};

static const struct field meta_fields[] = {
	{ "name", F_STR },
	{ "generateName", F_STR },
	{ "namespace", F_STR },
	{ "selfLink", F_STR },
	{ "uid", F_STR },
	{ "resourceVersion", F_STR },
	{ "generation", F_INT },
	{ "creationTimestamp", F_TIME },
	{ "deletionTimestamp", F_TIME },
	{ "deletionGracePeriodSeconds", F_INT },
	{ "labels", F_STRMAP },
	{ "annotations", F_STRMAP },
	{ "ownerReferences", F_OWNERS },
	{ "finalizers", F_STRSEQ },
	{ "managedFields", F_MANAGED },
	{ NULL, F_ANY },
};

static int check_struct(const struct where *w, const struct tm_doc *d, const char *path,
			const struct field *fields);

/* One typed field of ObjectMeta as Go's JSON decoder checks it (null is
 * always accepted). */
static int check_field(const struct where *w, const struct tm_doc *v, const char *path,
		       enum ftype t)
{
	char sub[256];
	int r;

	if (v->type == TM_DOC_NULL || t == F_ANY)
		return 0;
	switch (t) {
	case F_STR:
		return v->type == TM_DOC_STRING ? 0 : type_err(w, v, path, "a string");
	case F_INT:
		return v->type == TM_DOC_INT ? 0 : type_err(w, v, path, "an integer");
	case F_BOOL:
		return v->type == TM_DOC_BOOL ? 0 : type_err(w, v, path, "a boolean");
	case F_TIME:
		if (v->type != TM_DOC_STRING)
			return type_err(w, v, path, "an RFC 3339 time string");
		if (!docr_go_time(v->u.str.s, v->u.str.len, 'T', 1))
			return docr_fail(w, TM_EPARSE, v->line,
					 "%s: '%.*s' is not an RFC 3339 time", path, MSG_CAP,
					 v->u.str.s);
		return 0;
	case F_STRMAP:
		if (v->type != TM_DOC_MAP)
			return type_err(w, v, path, "an object of strings");
		for (size_t i = 0; i < v->u.map.n; i++) {
			const struct tm_doc *e = v->u.map.v[i].value;

			if (e->type != TM_DOC_STRING && e->type != TM_DOC_NULL) {
				snprintf(sub, sizeof(sub), "%s.%.*s", path, MSG_CAP,
					 v->u.map.v[i].key);
				return type_err(w, e, sub, "a string");
			}
		}
		return 0;
	case F_STRSEQ:
	case F_OWNERS:
	case F_MANAGED:
		if (v->type != TM_DOC_SEQ)
			return type_err(w, v, path, "an array");
		for (size_t i = 0; i < v->u.seq.n; i++) {
			const struct tm_doc *e = v->u.seq.v[i];

			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (t == F_STRSEQ)
				r = check_field(w, e, sub, F_STR);
			else
				r = check_struct(w, e, sub,
						 t == F_OWNERS ? owner_fields : managed_fields);
			if (r < 0)
				return r;
		}
		return 0;
	default:
		return 0;
	}
}

static int check_struct(const struct where *w, const struct tm_doc *d, const char *path,
			const struct field *fields)
{
	char sub[256];
	int r;

	if (d->type == TM_DOC_NULL)
		return 0;
	if (d->type != TM_DOC_MAP)
		return type_err(w, d, path, "an object");
	for (const struct field *f = fields; f->name; f++) {
		const struct tm_doc *v = tm_doc_map_get(d, f->name);

		snprintf(sub, sizeof(sub), "%s.%s", path, f->name);
		if (v && (r = check_field(w, v, sub, f->t)) < 0)
			return r;
	}
	return 0;
}

static const char *nonempty_string(const struct tm_doc *obj, const char *key)
{
	const char *s = tm_doc_string(tm_doc_map_get(obj, key));

	return s && *s ? s : NULL;
}

/* What the unstructured decoder and kubectl's metadata check require of
 * a top-level object (a list included). */
static int check_object(const struct where *w, const struct tm_doc *obj)
{
	const struct tm_doc *v;

	if (obj->type != TM_DOC_MAP)
		return docr_fail(w, TM_EPARSE, obj->line, "a manifest must be an object, not %s %s",
				 obj->type == TM_DOC_SEQ || obj->type == TM_DOC_INT ? "an" : "a",
				 obj->type == TM_DOC_SEQ ? "array (a top-level list)"
							 : tm_doc_type_name(obj->type));
	if (!nonempty_string(obj, "kind"))
		return docr_fail(w, TM_EPARSE, obj->line, "object has no kind");
	if ((v = tm_doc_map_get(obj, "apiVersion")) && v->type != TM_DOC_STRING &&
	    v->type != TM_DOC_NULL)
		return type_err(w, v, "apiVersion", "a string");
	if ((v = tm_doc_map_get(obj, "metadata")))
		return check_struct(w, v, "metadata", meta_fields);
	return 0;
}

struct doclist {
	struct tm_doc **v;
	size_t n, cap;
};

static int doclist_add(void *arg, struct tm_doc *d)
{
	struct doclist *l = arg;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		struct tm_doc **v = realloc(l->v, ncap * sizeof(*v));

		if (!v) {
			tm_doc_free(d);
			return tm_error_nomem();
		}
		l->v = v;
		l->cap = ncap;
	}
	l->v[l->n++] = d;
	return 0;
}

/* Where the objects of a stream go: fn takes ownership of each, also when it
 * fails (doclist_add collects them, tm_yaml_parse_each hands them on). */
struct sink {
	tm_yaml_object_fn fn;
	void *arg;
	struct docr_pool *pool; /* trees from the node pool (NULL: malloc) */
};

static int set_string(struct tm_doc *obj, const char *key, const char *val, size_t len)
{
	struct tm_doc *s;
	int r = tm_doc_new_stringn(&s, val, len);

	return r < 0 ? r : tm_doc_map_set(obj, key, s);
}

/* One decoded document: skipped when null, checked, flattened when it is a
 * list. Takes ownership of doc. */
static int add_object(const struct sink *l, struct tm_doc *doc, const struct where *w)
{
	struct tm_doc *items;
	int r;

	if (!doc || doc->type == TM_DOC_NULL) {
		tm_doc_free(doc);
		return 0;
	}
	if ((r = check_object(w, doc)) < 0)
		goto out;
	items = tm_doc_map_get(doc, "items");
	if (!items)
		return l->fn(l->arg, doc);
	if (items->type != TM_DOC_SEQ && items->type != TM_DOC_NULL) {
		r = type_err(w, items, "items", "an array");
		goto out;
	}
	/* Items without kind and apiVersion take them from the list. */
	const char *lkind = tm_doc_string(tm_doc_map_get(doc, "kind"));
	const char *lapi = tm_doc_string(tm_doc_map_get(doc, "apiVersion"));
	size_t lkind_len = strlen(lkind);
	if (lkind_len >= 4 && !strcmp(lkind + lkind_len - 4, "List"))
		lkind_len -= 4;
	for (size_t i = 0; items->type == TM_DOC_SEQ && i < items->u.seq.n; i++) {
		struct tm_doc *it = items->u.seq.v[i];
		const struct tm_doc *sub;

		if (it->type != TM_DOC_MAP) {
			r = docr_fail(w, TM_EPARSE, it->line,
				      "items[%zu] must be an object, not %s", i,
				      tm_doc_type_name(it->type));
			goto out;
		}
		if (!nonempty_string(it, "kind") && !nonempty_string(it, "apiVersion")) {
			if ((r = set_string(it, "kind", lkind, lkind_len)) < 0 ||
			    (r = set_string(it, "apiVersion", lapi ? lapi : "",
					    lapi ? strlen(lapi) : 0)) < 0)
				goto out;
		}
		if (!nonempty_string(it, "kind")) {
			r = docr_fail(w, TM_EPARSE, it->line, "items[%zu]: object has no kind", i);
			goto out;
		}
		if (!nonempty_string(it, "apiVersion")) {
			r = docr_fail(w, TM_EPARSE, it->line,
				      "items[%zu]: object has no apiVersion", i);
			goto out;
		}
		if ((sub = tm_doc_map_get(it, "items")) && sub->type == TM_DOC_SEQ) {
			r = docr_fail(w, TM_EPARSE, it->line,
				      "items[%zu]: a list inside a list is not supported", i);
			goto out;
		}
	}
	for (size_t i = 0; items->type == TM_DOC_SEQ && i < items->u.seq.n; i++) {
		struct tm_doc *it = items->u.seq.v[i];

		items->u.seq.v[i] = NULL;
		if ((r = l->fn(l->arg, it)) < 0) {
			/* The rest of the items are freed with the list. */
			for (size_t j = i + 1; j < items->u.seq.n; j++)
				items->u.seq.v[j - i - 1] = items->u.seq.v[j];
			items->u.seq.n -= i + 1;
			goto out;
		}
	}
	if (items->type == TM_DOC_SEQ)
		items->u.seq.n = 0;
	r = 0;
out:
	tm_doc_free(doc);
	return r;
}

/* ---- the streams ---- */

static int doc_too_big(const struct where *w, unsigned line, size_t len, size_t max)
{
	return docr_fail(w, TM_ELIMIT, line,
			 "%zu bytes is over the limit of %zu bytes for one document", len, max);
}

/* The objects of one document to the sink; then the node pool serves the next one. */
static int hand_on(const struct sink *l, struct tm_doc *d, const struct where *w)
{
	int r = add_object(l, d, w);

	docr_pool_reset(l->pool);
	return r;
}

/* The tree of one YAML document, from the sink's node pool when it has one. */
static int build_yaml(const struct sink *l, struct tm_doc **d, const char *s, size_t n,
		      unsigned line, const struct where *w, struct budget *bg)
{
	int r;

	docr_pool_use(l->pool, 1);
	r = docr_build_yaml(d, s, n, line, w, bg);
	docr_pool_use(l->pool, 0);
	return r;
}

static int parse_json_stream(const struct sink *l, const char *s, size_t n, const char *origin,
			     struct budget *bg)
{
	struct where w = { origin, 0 };
	struct jparser p = { .s = s, .n = n, .w = &w, .bg = bg };
	int r;

	for (;;) {
		struct tm_doc *d;

		size_t at;

		docr_jws(&p);
		if (p.i >= n)
			return 0;
		w.doc++;
		at = p.i;
		if (bg->per_doc)
			bg->nodes = 0;
		docr_pool_use(l->pool, 1);
		r = docr_jvalue(&p, &d, 0);
		docr_pool_use(l->pool, 0);
		if (r < 0)
			return r;
		if (bg->max_doc && p.i - at > bg->max_doc) {
			unsigned line = d ? d->line : 0;
			tm_doc_free(d);
			return doc_too_big(&w, line, p.i - at, bg->max_doc);
		}
		if ((r = hand_on(l, d, &w)) < 0)
			return r;
	}
}

/* Go's strings.TrimSpace(line) is empty or starts with '#'. */
static int separator_rest_ok(const char *s, size_t n, const char **rest, size_t *rest_len)
{
	size_t i = 0, k;

	while (i < n && go_space(s + i, n - i, &k))
		i += k;
	/* Trailing space does not matter for the first character. */
	*rest = s + i;
	*rest_len = n - i;
	while (*rest_len > 0 && ((*rest)[*rest_len - 1] == ' ' || (*rest)[*rest_len - 1] == '\t' ||
				 (*rest)[*rest_len - 1] == '\r'))
		(*rest_len)--;
	return i == n || s[i] == '#';
}

/*
 * apimachinery's YAMLReader: a line starting with "---" ends the current
 * piece (only space or a comment may follow the dashes); a "---" line that
 * starts a piece stays in it as the YAML document start.
 */
static int parse_yaml_stream(const struct sink *l, const char *s, size_t n, const char *origin,
			     struct budget *bg)
{
	struct where w = { origin, 0 };
	size_t pos = 0, start = 0;
	unsigned line = 0, start_line = 0;
	int r;

	while (pos < n) {
		const char *nl = memchr(s + pos, '\n', n - pos);
		size_t eol = nl ? (size_t)(nl - s) : n;
		size_t ll = eol - pos;
		/* bufio's ReadLine drops the "\r" of "\r\n". */
		if (eol < n && ll > 0 && s[eol - 1] == '\r')
			ll--;
		if (ll >= 3 && s[pos] == '-' && s[pos + 1] == '-' && s[pos + 2] == '-') {
			const char *rest;
			size_t rest_len;

			if (!separator_rest_ok(s + pos + 3, ll - 3, &rest, &rest_len)) {
				w.doc++;
				return docr_fail(&w, TM_EPARSE, line + 1,
						 "invalid YAML document separator: %.*s",
						 (int)(rest_len > MSG_CAP ? MSG_CAP : rest_len),
						 rest);
			}
			if (pos > start) {
				struct tm_doc *d;

				w.doc++;
				if (bg->max_doc && pos - start > bg->max_doc)
					return doc_too_big(&w, start_line + 1, pos - start,
							   bg->max_doc);
				if (bg->per_doc)
					bg->nodes = 0;
				if ((r = build_yaml(l, &d, s + start, pos - start, start_line, &w,
						    bg)) < 0)
					return r;
				if ((r = hand_on(l, d, &w)) < 0)
					return r;
				pos = eol < n ? eol + 1 : eol;
				line++;
				start = pos;
				start_line = line;
				continue;
			}
		}
		pos = eol < n ? eol + 1 : eol;
		line++;
	}
	if (n > start) {
		struct tm_doc *d;
		char *last = NULL;
		size_t ln = n - start;

		/* The line reader ends every line with "\n", the last one too: a
		 * block scalar at the very end keeps its line break. */
		w.doc++;
		if (bg->max_doc && ln > bg->max_doc)
			return doc_too_big(&w, start_line + 1, ln, bg->max_doc);
		if (bg->per_doc)
			bg->nodes = 0;
		if (s[n - 1] != '\n') {
			last = malloc(ln + 2);
			if (!last)
				return tm_error_nomem();
			memcpy(last, s + start, ln);
			last[ln++] = '\n';
			last[ln] = '\0';
		}
		r = build_yaml(l, &d, last ? last : s + start, ln, start_line, &w, bg);
		free(last);
		if (r < 0)
			return r;
		if ((r = hand_on(l, d, &w)) < 0)
			return r;
	}
	return 0;
}

void tm_yaml_docs_free(struct tm_doc **docs, size_t n)
{
	if (!docs)
		return;
	for (size_t i = 0; i < n; i++)
		tm_doc_free(docs[i]);
	free(docs);
}

static int parse_stream(const struct sink *sk, const char *text, size_t len, const char *origin,
			struct budget *bg)
{
	const char *s;
	size_t n;
	char *owned = NULL;
	int r;

	if (!text && len)
		return tm_error_set(TM_ERROR, "tm_yaml_parse_stream: no text");
	if ((r = docr_check_size(origin, len, bg->lim)) < 0)
		return r;
	if (len == 0)
		return 0;
	if ((r = docr_normalize_input(&s, &n, &owned, text, len)) < 0)
		return r;
	if (looks_like_json(s, n))
		r = parse_json_stream(sk, s, n, origin, bg);
	else
		r = parse_yaml_stream(sk, s, n, origin, bg);
	free(owned);
	return r;
}

int tm_yaml_parse_stream(struct tm_doc ***out_docs, size_t *out_n, const char *text, size_t len,
			 const char *origin, const struct tm_yaml_limits *lim)
{
	struct budget bg = { .lim = lim ? lim : &tm_yaml_limits_default };
	struct doclist l = { NULL, 0, 0 };
	struct sink sk = { doclist_add, &l, NULL };
	int r;

	*out_docs = NULL;
	*out_n = 0;
	if ((r = parse_stream(&sk, text, len, origin, &bg)) < 0) {
		tm_yaml_docs_free(l.v, l.n);
		return r;
	}
	*out_docs = l.v;
	*out_n = l.n;
	return 0;
}

int tm_yaml_parse_each(const char *text, size_t len, const char *origin,
		       const struct tm_yaml_limits *lim, size_t max_doc_bytes, tm_yaml_object_fn fn,
		       void *arg)
{
	struct budget bg = { .lim = lim ? lim : &tm_yaml_limits_default,
			     .per_doc = 1,
			     .max_doc = max_doc_bytes };
	struct sink sk = { fn, arg, NULL };

	return parse_stream(&sk, text, len, origin, &bg);
}

struct borrow {
	tm_yaml_object_fn fn;
	void *arg;
};

static int lend(void *arg, struct tm_doc *obj)
{
	const struct borrow *b = arg;
	int r = b->fn(b->arg, obj);

	tm_doc_free(obj);
	return r;
}

int tm_yaml_parse_each_borrowed(const char *text, size_t len, const char *origin,
				const struct tm_yaml_limits *lim, size_t max_doc_bytes,
				tm_yaml_object_fn fn, void *arg)
{
	struct budget bg = { .lim = lim ? lim : &tm_yaml_limits_default,
			     .per_doc = 1,
			     .max_doc = max_doc_bytes };
	struct borrow b = { fn, arg };
	struct sink sk = { lend, &b, docr_pool_new() };
	int r = parse_stream(&sk, text, len, origin, &bg);

	docr_pool_free(sk.pool);
	return r;
}
