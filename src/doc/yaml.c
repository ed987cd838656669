/*
 * yaml.c — the libyaml adapter (the only file that includes libyaml's yaml.h): one YAML
 * document to the document tree, as kubectl reads it.
 *
 * The Kubernetes tool chain reads a manifest file in four steps, and each
 * one shapes what the API server finally receives:
 *   1. kubectl's file reader turns invalid UTF-8 into U+FFFD and honours a
 *      byte order mark (reader.c);
 *   2. apimachinery's YAMLOrJSONDecoder sniffs a leading '{' (a stream of
 *      JSON values) or splits YAML into pieces at lines starting with "---"
 *      (manifest.c);
 *   3. sigs.k8s.io/yaml decodes the first YAML document of each piece with
 *      go-yaml v2 (YAML 1.1 resolution, merge keys, last duplicate wins) and
 *      re-encodes it as JSON (keys become strings, .inf/.nan are errors): this
 *      file, with go-yaml's typing in goscalar.c;
 *   4. the unstructured decoder reads that JSON back (integral numbers that
 *      fit int64 are integers), checks kind and metadata, flattens lists
 *      (goscalar.c's finalize, manifest.c).
 * Here libyaml (the C library go-yaml was ported from) delivers events, the
 * builder resolves scalars with go-yaml's rules and builds the tree with an
 * explicit stack, and a final pass applies the JSON round trip. Limits on
 * bytes, depth, nodes and alias expansion are checked as the tree grows, so
 * hostile input stops early. docs/yaml.md lists the rules and the kubectl
 * behaviours matched.
 */
#include "reader.h"
#include "tagmoor/doc/yaml.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"

#include <yaml.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the tree builder ---- */

struct frame {
	struct tm_doc *node;
	int flow; /* a flow collection ([...] or {...}) */
	int have_key;
	int merge;
	char *key;
	size_t key_len;
	unsigned key_line;
};

struct builder {
	const struct where *w;
	struct budget *bg;
	unsigned line0; /* lines of the file before this piece */
	struct frame *st;
	size_t n, cap;
	struct tm_doc *anchors; /* name -> index into anodes (an INT node) */
	struct tm_doc **anodes;
	size_t an, acap;
	struct tm_doc *grave; /* replaced nodes an anchor may still point into */
	struct tm_doc *root;
	int done;
	int finalize; /* a float, an integer above int64 or an anchor was read: docr_finalize */
	/* The source, to look at what libyaml 0.2.5 reads differently from
	 * go-yaml v2 (libyaml marks count characters; the cursor maps them to
	 * bytes and moves forward with the events). */
	const char *src;
	size_t src_len, base, cchar, cbyte;
};

static unsigned ev_line(const struct builder *b, const yaml_event_t *ev)
{
	return (unsigned)ev->start_mark.line + 1 + b->line0;
}

/* Byte offset of libyaml's character index in the source. */
static size_t src_byte(struct builder *b, size_t index)
{
	if (index < b->cchar) {
		b->cchar = 0;
		b->cbyte = b->base;
	}
	while (b->cchar < index && b->cbyte < b->src_len) {
		size_t room = b->src_len - b->cbyte, k;

		/* a run of ASCII is as many characters as bytes */
		k = docr_ascii_len(b->src + b->cbyte,
				   index - b->cchar < room ? index - b->cchar : room);
		b->cbyte += k;
		b->cchar += k;
		if (b->cchar == index || b->cbyte >= b->src_len)
			break;
		k = tm_doc_utf8_len(b->src + b->cbyte, b->src_len - b->cbyte);
		b->cbyte += k ? k : 1;
		b->cchar++;
	}
	return b->cbyte;
}

static int in_flow(const struct builder *b)
{
	return b->n > 0 && b->st[b->n - 1].flow;
}

static int is_tag_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("-_;/?:@&=+$.!~*'()%", c)) || c >= 0x80;
}

/*
 * The places where libyaml 0.2.5 reads a node differently from go-yaml v2
 * (which kubectl uses) without failing: the "\/" escape (go-yaml: an
 * error), '?' inside a plain scalar in a flow collection (go-yaml ends the
 * scalar there, which is always an error), and a tag followed directly by
 * ',' in a flow collection (go-yaml makes the ',' part of the tag). The
 * first two are refused as kubectl refuses them; the last is refused
 * although kubectl accepts it (docs/yaml.md).
 */
static int check_source(struct builder *b, const yaml_event_t *ev, const char *tag, int style)
{
	size_t st = src_byte(b, ev->start_mark.index), en = src_byte(b, ev->end_mark.index);
	const char *s = b->src;
	unsigned line = ev_line(b, ev);
	size_t i = st;

	if (en > b->src_len)
		en = b->src_len;
	if (in_flow(b) && tag) {
		/* Node properties come first: find the tag and what follows it. */
		while (i < en && s[i] != '!') {
			while (i < en && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' &&
			       s[i] != '\r')
				i++;
			while (i < en &&
			       (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
				i++;
		}
		if (i < en && s[i] == '!') {
			size_t j = i + 1;

			if (j < en && s[j] == '<') {
				while (j < en && s[j] != '>')
					j++;
				j++;
			} else {
				while (j < b->src_len && is_tag_char((unsigned char)s[j]))
					j++;
			}
			if (j < b->src_len && s[j] == ',')
				return docr_fail(
					b->w, TM_EPARSE, line,
					"a tag directly followed by ',' in a flow collection is "
					"read "
					"differently by kubectl; put a space after the tag");
		}
	}
	if (style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
		for (i = st; i < en && s[i] != '"'; i++)
			;
		for (i++; i + 1 < en; i++) {
			if (s[i] != '\\')
				continue;
			if (s[i + 1] == '/')
				return docr_fail(b->w, TM_EPARSE, line,
						 "found unknown escape character '\\/'");
			i++;
		}
	} else if (style == YAML_PLAIN_SCALAR_STYLE && in_flow(b)) {
		/* Skip the properties (anchor, tag) before the scalar itself. */
		i = st;
		while (i < en && (s[i] == '!' || s[i] == '&')) {
			while (i < en && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' &&
			       s[i] != '\r')
				i++;
			while (i < en &&
			       (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
				i++;
		}
		if (memchr(s + i, '?', en - i))
			return docr_fail(
				b->w, TM_EPARSE, line,
				"did not find expected ',' or ']' (a '?' ends a plain scalar in a "
				"flow collection)");
	}
	return 0;
}

static int bury(struct builder *b, struct tm_doc *d)
{
	if (!d)
		return 0;
	return tm_doc_seq_append(b->grave, d);
}

static int anchor_set(struct builder *b, const char *name, struct tm_doc *node)
{
	struct tm_doc *ix;
	int r;

	if (b->an == b->acap) {
		size_t ncap = b->acap ? b->acap * 2 : 8;
		struct tm_doc **v = realloc(b->anodes, ncap * sizeof(*v));

		if (!v)
			return tm_error_nomem();
		b->anodes = v;
		b->acap = ncap;
	}
	if ((r = tm_doc_new_int(&ix, (int64_t)b->an)) < 0)
		return r;
	if ((r = tm_doc_map_set(b->anchors, name, ix)) < 0)
		return r;
	b->anodes[b->an++] = node;
	node->flags |= F_ANCHORED;
	b->finalize = 1;
	return 0;
}

static struct tm_doc *anchor_get(const struct builder *b, const char *name)
{
	const struct tm_doc *ix = tm_doc_map_get(b->anchors, name);

	return ix ? b->anodes[ix->u.i] : NULL;
}

/* Deep copy for an alias or a merge, under the alias budget and the depth
 * limit (depth: the depth the copy will have if it is a collection). */
static int clone_counted(struct builder *b, struct tm_doc **out, const struct tm_doc *src,
			 size_t depth, unsigned line)
{
	struct tm_doc *c = NULL;
	int r;

	*out = NULL;
	if ((r = docr_count_node(b->bg, b->w, line, 1)) < 0)
		return r;
	if (src->type == TM_DOC_MAP || src->type == TM_DOC_SEQ) {
		if (depth > b->bg->lim->max_depth)
			return docr_too_deep(b->w, line, b->bg->lim->max_depth);
		r = tm_doc_new(&c, src->type);
		if (src->type == TM_DOC_MAP) {
			for (size_t i = 0; r == 0 && i < src->u.map.n; i++) {
				const struct tm_doc_entry *e = &src->u.map.v[i];
				struct tm_doc *v;

				r = clone_counted(b, &v, e->value, depth + 1, line);
				if (r == 0)
					r = tm_doc_map_setn(c, e->key, e->key_len, v);
			}
		} else {
			for (size_t i = 0; r == 0 && i < src->u.seq.n; i++) {
				struct tm_doc *v;

				r = clone_counted(b, &v, src->u.seq.v[i], depth + 1, line);
				if (r == 0)
					r = tm_doc_seq_append(c, v);
			}
		}
	} else {
		r = tm_doc_clone(&c, src);
	}
	if (r < 0) {
		tm_doc_free(c);
		return r;
	}
	c->line = src->line;
	c->flags = src->flags & F_UINT64;
	*out = c;
	return 0;
}

/* Sets key in the map being read; a replaced value is kept for anchors. */
static int map_put(struct builder *b, struct tm_doc *map, const char *key, size_t key_len,
		   struct tm_doc *value)
{
	struct tm_doc *old = NULL;
	int r = tm_doc_map_exchange(map, key, key_len, value, &old);

	if (r == 0)
		r = bury(b, old);
	else
		tm_doc_free(old);
	return r;
}

/* map_put with the key handed over (see tm_doc_map_exchange_key). */
static int map_put_key(struct builder *b, struct tm_doc *map, char *key, size_t key_len,
		       struct tm_doc *value)
{
	struct tm_doc *old = NULL;
	int r = tm_doc_map_exchange_key(map, key, key_len, value, &old);

	if (r == 0)
		r = bury(b, old);
	else
		tm_doc_free(old);
	return r;
}

/* Merges the entries of src into dst in order (go-yaml v2: a merge
 * overrides keys read before it; keys after it override the merge). */
static int merge_map(struct builder *b, struct tm_doc *dst, struct tm_doc *src, int copy,
		     unsigned line)
{
	int r;

	for (size_t i = 0; i < src->u.map.n; i++) {
		struct tm_doc_entry *e = &src->u.map.v[i];
		struct tm_doc *v = e->value;

		if (!v)
			continue;
		if (copy) {
			if ((r = clone_counted(b, &v, e->value, b->n + 1, line)) < 0)
				return r;
		} else {
			e->value = NULL;
		}
		if ((r = map_put(b, dst, e->key, e->key_len, v)) < 0)
			return r;
	}
	return 0;
}

static int do_merge(struct builder *b, struct tm_doc *dst, struct tm_doc *v, unsigned line)
{
	int r = 0, anchored = (v->flags & F_ANCHORED) != 0;

	if (v->type == TM_DOC_MAP) {
		r = merge_map(b, dst, v, anchored, line);
	} else if (v->type == TM_DOC_SEQ) {
		for (size_t i = 0; i < v->u.seq.n; i++)
			if (v->u.seq.v[i]->type != TM_DOC_MAP)
				goto bad;
		/* Backwards: earlier maps in the sequence take precedence. */
		for (size_t i = v->u.seq.n; r == 0 && i-- > 0;) {
			struct tm_doc *m = v->u.seq.v[i];

			r = merge_map(b, dst, m, anchored || (m->flags & F_ANCHORED), line);
		}
	} else {
		goto bad;
	}
	if (r == 0)
		r = bury(b, v);
	else
		tm_doc_free(v);
	return r;
bad:
	bury(b, v);
	return docr_fail(b->w, TM_EPARSE, line,
			 "map merge requires map or sequence of maps as the value");
}

/* A finished node goes into its parent (or becomes the root). */
static int attach(struct builder *b, struct tm_doc *node)
{
	struct frame *f;
	int r;

	if (b->n == 0) {
		b->root = node;
		return 0;
	}
	f = &b->st[b->n - 1];
	if (f->node->type == TM_DOC_SEQ)
		return tm_doc_seq_append(f->node, node);
	/* A map: node is the value of the pending key. */
	if (f->merge) {
		f->merge = 0;
		f->have_key = 0;
		return do_merge(b, f->node, node, f->key_line);
	}
	r = map_put_key(b, f->node, f->key, f->key_len, node);
	f->key = NULL;
	f->have_key = 0;
	return r;
}

static int in_key_position(const struct builder *b)
{
	return b->n > 0 && b->st[b->n - 1].node->type == TM_DOC_MAP && !b->st[b->n - 1].have_key;
}

/* A key node (scalar or alias target) becomes the pending key string. */
static int take_key(struct builder *b, const struct tm_doc *k, unsigned line)
{
	struct frame *f = &b->st[b->n - 1];
	int r = docr_key_string(&f->key, &f->key_len, k, b->w, line);

	if (r == 0) {
		f->have_key = 1;
		f->key_line = line;
	}
	return r;
}

/* A scalar (counted and checked): resolved, then a value, a key or a merge key. */
static int put_scalar(struct builder *b, const char *s, size_t n, const char *tag,
		      const char *anchor, int plain_implicit, unsigned line)
{
	struct tm_doc *d;
	int r;

	if ((r = docr_resolve_scalar(&d, s, n, tag, plain_implicit, b->w, line)) < 0)
		return r;
	d->line = line;
	if (d->type == TM_DOC_FLOAT || d->flags)
		b->finalize = 1;
	if (anchor && (r = anchor_set(b, anchor, d)) < 0) {
		tm_doc_free(d);
		return r;
	}
	if (!in_key_position(b))
		return attach(b, d);
	/* go-yaml: "<<" is a merge key when plain (or tagged !!merge). */
	if (n == 2 && s[0] == '<' && s[1] == '<' &&
	    ((!tag && plain_implicit) || (tag && !strcmp(tag, "tag:yaml.org,2002:merge")))) {
		struct frame *f = &b->st[b->n - 1];

		f->merge = 1;
		f->have_key = 1;
		f->key_line = line;
		r = 0;
	} else if (!anchor) {
		/* a string key straight from the node pool: the node turns into the key */
		struct frame *f = &b->st[b->n - 1];

		if ((f->key = docr_pool_key(d, &f->key_len)) != NULL) {
			f->have_key = 1;
			f->key_line = line;
			return 0;
		}
		r = take_key(b, d, line);
	} else {
		r = take_key(b, d, line);
	}
	if (anchor) {
		/* An anchor may point at a key: keep it until the document ends. */
		int rb = bury(b, d);

		return r < 0 ? r : rb;
	}
	tm_doc_free(d);
	return r;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	unsigned line = ev_line(b, ev);
	int r;

	if ((r = docr_count_node(b->bg, b->w, line, 0)) < 0)
		return r;
	if ((r = check_source(b, ev, (const char *)ev->data.scalar.tag, ev->data.scalar.style)) < 0)
		return r;
	return put_scalar(b, (const char *)ev->data.scalar.value, ev->data.scalar.length,
			  (const char *)ev->data.scalar.tag, (const char *)ev->data.scalar.anchor,
			  ev->data.scalar.plain_implicit, line);
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	unsigned line = ev_line(b, ev);
	struct tm_doc *target = anchor_get(b, name), *c;
	int r;

	if (!target)
		return docr_fail(b->w, TM_EPARSE, line, "unknown anchor '%.*s' referenced", MSG_CAP,
				 name);
	if (target->flags & F_OPEN)
		return docr_fail(b->w, TM_EPARSE, line, "anchor '%.*s' value contains itself",
				 MSG_CAP, name);
	if (in_key_position(b))
		return take_key(b, target, line);
	if ((r = clone_counted(b, &c, target, b->n + 1, line)) < 0)
		return r;
	return attach(b, c);
}

/* A mapping or sequence starts (checked against the source). */
static int put_start(struct builder *b, enum tm_doc_type type, const char *anchor, int flow,
		     unsigned line)
{
	struct tm_doc *d;
	int r;

	if (in_key_position(b))
		return docr_fail(b->w, TM_EPARSE, line,
				 "invalid map key: a map key cannot be an %s",
				 tm_doc_type_name(type));
	if (b->n + 1 > b->bg->lim->max_depth)
		return docr_too_deep(b->w, line, b->bg->lim->max_depth);
	if ((r = docr_count_node(b->bg, b->w, line, 0)) < 0)
		return r;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		struct frame *st = realloc(b->st, ncap * sizeof(*st));

		if (!st)
			return tm_error_nomem();
		b->st = st;
		b->cap = ncap;
	}
	if ((r = tm_doc_new(&d, type)) < 0)
		return r;
	d->line = line;
	if (anchor && (r = anchor_set(b, anchor, d)) < 0) {
		tm_doc_free(d);
		return r;
	}
	d->flags |= F_OPEN;
	memset(&b->st[b->n], 0, sizeof(b->st[0]));
	b->st[b->n].flow = flow || in_flow(b);
	b->st[b->n++].node = d;
	return 0;
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum tm_doc_type type)
{
	const char *anchor = (const char *)(type == TM_DOC_MAP ? ev->data.mapping_start.anchor
							       : ev->data.sequence_start.anchor);
	const char *tag = (const char *)(type == TM_DOC_MAP ? ev->data.mapping_start.tag
							    : ev->data.sequence_start.tag);
	int flow = type == TM_DOC_MAP ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
				      : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
	int r;

	if ((r = check_source(b, ev, tag, -1)) < 0)
		return r;
	return put_start(b, type, anchor, flow, ev_line(b, ev));
}

static int on_end(struct builder *b)
{
	struct frame *f = &b->st[--b->n];
	struct tm_doc *d = f->node;

	docr_free(f->key);
	f->key = NULL;
	d->flags &= ~F_OPEN;
	return attach(b, d);
}

static void builder_free(struct builder *b)
{
	while (b->n > 0) {
		struct frame *f = &b->st[--b->n];

		docr_free(f->key);
		/* Anchored open nodes are still owned by their frame. */
		tm_doc_free(f->node);
	}
	free(b->st);
	tm_doc_free(b->anchors);
	free(b->anodes);
	tm_doc_free(b->grave);
	tm_doc_free(b->root);
}

/* libyaml's error, with the line in the file. */
static int yaml_fail(const struct where *w, const yaml_parser_t *p, unsigned line0,
		     const char *text, size_t len)
{
	unsigned line;

	if (p->error == YAML_MEMORY_ERROR)
		return tm_error_nomem();
	if (p->error == YAML_READER_ERROR) {
		size_t off = p->problem_offset < len ? p->problem_offset : len;

		line = line0 + 1;
		for (size_t i = 0; i < off; i++)
			if (text[i] == '\n')
				line++;
		return docr_fail(w, TM_EPARSE, line, "%s",
				 p->problem ? p->problem : "unreadable input");
	}
	line = (unsigned)p->problem_mark.line + 1 + line0;
	if (p->context)
		return docr_fail(w, TM_EPARSE, line, "%s %s", p->context,
				 p->problem ? p->problem : "syntax error");
	return docr_fail(w, TM_EPARSE, line, "%s", p->problem ? p->problem : "syntax error");
}

/* A plain scalar libyaml refused at a ':' (character indexes). */
struct colon_fix {
	size_t scalar, colon;
};

/*
 * The first YAML document of text (go-yaml's Unmarshal reads no further),
 * or NULL in *out when there is none. line0: lines before text in the file.
 * Returns 1 with *fix set when libyaml refused a plain scalar that go-yaml
 * reads (see build_yaml).
 */
static int build_once(struct tm_doc **out, const char *text, size_t len, unsigned line0,
		      const struct where *w, struct budget *bg, struct colon_fix *fix)
{
	struct builder b;
	yaml_parser_t p;
	yaml_event_t ev;
	int r = 0;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	b.w = w;
	b.bg = bg;
	b.line0 = line0;
	b.src = text;
	b.src_len = len;
	/* libyaml skips a byte order mark without counting it. */
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		b.base = 3;
	b.cbyte = b.base;
	if (!yaml_parser_initialize(&p))
		return tm_error_nomem();
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if ((r = tm_doc_new_map(&b.anchors)) < 0 || (r = tm_doc_new_seq(&b.grave)) < 0)
		goto out;
	while (!b.done) {
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_SCANNER_ERROR && p.problem && p.context &&
			    !strcmp(p.problem, "found unexpected ':'") &&
			    !strcmp(p.context, "while scanning a plain scalar")) {
				fix->scalar = p.context_mark.index;
				fix->colon = p.problem_mark.index;
				r = 1;
				goto out;
			}
			r = yaml_fail(w, &p, line0, text, len);
			goto out;
		}
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT: {
			const yaml_version_directive_t *v =
				ev.data.document_start.version_directive;

			/* go-yaml v2 reads YAML 1.1 only (libyaml also takes 1.2). */
			if (v && (v->major != 1 || v->minor != 1))
				r = docr_fail(w, TM_EPARSE, ev_line(&b, &ev),
					      "found incompatible YAML document");
			break;
		}
		case YAML_STREAM_END_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			b.done = 1;
			break;
		case YAML_ALIAS_EVENT:
			r = on_alias(&b, &ev);
			break;
		case YAML_SCALAR_EVENT:
			r = on_scalar(&b, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			r = on_start(&b, &ev, TM_DOC_SEQ);
			break;
		case YAML_MAPPING_START_EVENT:
			r = on_start(&b, &ev, TM_DOC_MAP);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			r = on_end(&b);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (r < 0)
			goto out;
	}
	if (b.root && b.finalize && (r = docr_finalize(w, b.root)) < 0)
		goto out;
	*out = b.root;
	b.root = NULL;
out:
	yaml_parser_delete(&p);
	builder_free(&b);
	return r;
}

/* The events of fastyaml.c (lines there are 0-based in the piece). */
static int fast_scalar(void *arg, const char *s, size_t n, int plain, unsigned line)
{
	struct builder *b = arg;
	int r;

	line += 1 + b->line0;
	if ((r = docr_count_node(b->bg, b->w, line, 0)) < 0)
		return r;
	return put_scalar(b, s, n, NULL, NULL, plain, line);
}

static int fast_start(void *arg, int map, int flow, unsigned line)
{
	struct builder *b = arg;

	return put_start(b, map ? TM_DOC_MAP : TM_DOC_SEQ, NULL, flow, line + 1 + b->line0);
}

static int fast_end(void *arg)
{
	return on_end(arg);
}

/*
 * The document read by fastyaml.c: 0 with the tree, or 1 when that reader gave up (the text
 * is not in its subset, or anything failed: libyaml then reads it and says why).
 */
static int build_fast(struct tm_doc **out, const char *text, size_t len, unsigned line0,
		      const struct where *w, struct budget *bg)
{
	static const struct docr_fast_ops ops = { fast_scalar, fast_start, fast_end };
	struct builder b;
	int r;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	b.w = w;
	b.bg = bg;
	b.line0 = line0;
	r = docr_fast_yaml(text, len, &ops, &b);
	if (r == 0 && (!b.root || b.n || (b.finalize && docr_finalize(w, b.root) < 0)))
		r = 1;
	if (r == 0) {
		*out = b.root;
		b.root = NULL;
	}
	builder_free(&b);
	return r ? 1 : 0;
}

#define MAX_COLON_FIXES 32

/*
 * build_once, plus the one reading where libyaml 0.2.5 fails and go-yaml v2
 * succeeds: in a flow collection, a plain scalar ending in ':' right before
 * one of ",?[]{}" ([a:] is the string "a:" for kubectl). Such a scalar is
 * always a string, so it is single-quoted in a copy of the text and the
 * document is read again (a bounded number of times).
 */
int docr_build_yaml(struct tm_doc **out, const char *text, size_t len, unsigned line0,
		    const struct where *w, struct budget *bg)
{
	struct budget saved = *bg;
	char *copy = NULL;
	const char *cur = text;
	size_t cur_len = len;
	int r;

	if (build_fast(out, text, len, line0, w, bg) == 0)
		return 0;
	*bg = saved;
	for (int tries = 0;; tries++) {
		struct colon_fix fix = { 0, 0 };

		r = build_once(out, cur, cur_len, line0, w, bg, &fix);
		if (r != 1)
			break;
		*bg = saved;
		if (tries == MAX_COLON_FIXES) {
			r = docr_fail(w, TM_ELIMIT, 0,
				      "more than %d plain scalars ending in ':' in flow "
				      "collections",
				      MAX_COLON_FIXES);
			break;
		}
		/* Character indexes to byte offsets. */
		size_t base = cur_len >= 3 && !memcmp(cur, "\xEF\xBB\xBF", 3) ? 3 : 0;
		size_t so = base, co, ci = 0;
		for (; ci < fix.scalar && so < cur_len; ci++) {
			size_t k = tm_doc_utf8_len(cur + so, cur_len - so);
			so += k ? k : 1;
		}
		for (co = so; ci < fix.colon && co < cur_len; ci++) {
			size_t k = tm_doc_utf8_len(cur + co, cur_len - co);
			co += k ? k : 1;
		}
		if (co >= cur_len || cur[co] != ':') {
			r = docr_fail(w, TM_EPARSE, 0, "found unexpected ':'");
			break;
		}
		size_t quotes = 0;
		for (size_t i = so; i <= co; i++)
			quotes += cur[i] == '\'';
		char *next = malloc(cur_len + quotes + 3);
		if (!next) {
			r = tm_error_nomem();
			break;
		}
		size_t o = 0;
		memcpy(next, cur, so);
		o = so;
		next[o++] = '\'';
		for (size_t i = so; i <= co; i++) {
			if (cur[i] == '\'')
				next[o++] = '\'';
			next[o++] = cur[i];
		}
		next[o++] = '\'';
		memcpy(next + o, cur + co + 1, cur_len - co - 1);
		o += cur_len - co - 1;
		free(copy);
		copy = next;
		cur = copy;
		cur_len = o;
	}
	free(copy);
	return r;
}

int tm_yaml_parse(struct tm_doc **out, const char *text, size_t len, const char *origin,
		  const struct tm_yaml_limits *lim)
{
	struct budget bg = { .lim = lim ? lim : &tm_yaml_limits_default };
	struct where w = { origin, 0 };
	const char *s;
	size_t n;
	char *owned = NULL;
	int r;

	*out = NULL;
	if (!text && len)
		return tm_error_set(TM_ERROR, "tm_yaml_parse: no text");
	if ((r = docr_check_size(origin, len, bg.lim)) < 0)
		return r;
	if ((r = docr_normalize_input(&s, &n, &owned, text ? text : "", len)) < 0)
		return r;
	r = docr_build_yaml(out, s, n, 0, &w, &bg);
	free(owned);
	if (r == 0 && !*out)
		r = tm_doc_new_null(out);
	return r;
}

const char *tm_yaml_version(void)
{
	return yaml_get_version_string();
}
