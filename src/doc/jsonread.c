/*
 * jsonread.c — JSON text to the document tree as Go's encoding/json reads it (jsonread.h):
 * state.json, API answers (whole or pruned), and the JSON values of a manifest stream
 * (manifest.c). It needs neither libyaml nor the YAML reader.
 */
#include "tagmoor/doc/jsonread.h"
#include "reader.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON (Go's encoding/json) ---- */

/* The 1-based line of offset at; incremental, as offsets mostly grow. */
static unsigned jline(struct jparser *p, size_t at)
{
	if (at < p->lpos) {
		p->lpos = 0;
		p->lines = 0;
	}
	if (at > p->n)
		at = p->n;
	while (p->lpos < at) {
		const char *nl = memchr(p->s + p->lpos, '\n', at - p->lpos);

		if (!nl) {
			p->lpos = at;
			break;
		}
		p->lines++;
		p->lpos = (size_t)(nl - p->s) + 1;
	}
	return p->lines + 1;
}

static int jfail(struct jparser *p, const char *what)
{
	if (p->i >= p->n)
		return docr_fail(p->w, TM_EPARSE, jline(p, p->i), "unexpected end of JSON input");
	unsigned char c = (unsigned char)p->s[p->i];
	if (c >= 0x20 && c < 0x7f && c != '\'')
		return docr_fail(p->w, TM_EPARSE, jline(p, p->i), "invalid character '%c' %s", c,
				 what);
	return docr_fail(p->w, TM_EPARSE, jline(p, p->i), "invalid character 0x%02x %s", c, what);
}

void docr_jws(struct jparser *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
			       p->s[p->i] == '\r'))
		p->i++;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		int d = docr_digit_val(s[k]);

		if (d > 15)
			return 0;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return 1;
}

/* The \uXXXX escape at p->s + *i (the 'u'): a surrogate pair is one character, a lone
 * surrogate U+FFFD; *i moves past it. -1 (*i unmoved) when the four hex digits are not there. */
static int junicode(struct jparser *p, size_t *i, size_t end, unsigned *out)
{
	unsigned cp, lo;

	if (*i + 5 > end || !hex4(p->s + *i + 1, &cp))
		return -1;
	*i += 5;
	if (cp >= 0xD800 && cp < 0xE000) {
		/* A valid pair is one character; anything else U+FFFD. */
		if (cp < 0xDC00 && *i + 6 <= end && p->s[*i] == '\\' && p->s[*i + 1] == 'u' &&
		    hex4(p->s + *i + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			*i += 6;
		} else {
			cp = 0xFFFD;
		}
	}
	*out = cp;
	return 0;
}

/* A JSON string at p->i (the opening quote) into a malloc'ed buffer. */
static int jstring(struct jparser *p, char **out, size_t *out_len)
{
	size_t start = ++p->i, end, o = 0;
	char *d;

	*out = NULL;
	/* Find the end first so the buffer can be sized (escapes only shrink,
	 * except invalid bytes, which become 3-byte U+FFFD). */
	for (end = start; end < p->n && p->s[end] != '"'; end++) {
		if ((unsigned char)p->s[end] < 0x20) {
			p->i = end;
			return jfail(p, "in string literal");
		}
		if (p->s[end] == '\\')
			end++;
	}
	if (end >= p->n) {
		p->i = p->n;
		return jfail(p, "in string literal");
	}
	if (end - start > (SIZE_MAX - 1) / 3)
		return tm_error_nomem();
	d = malloc((end - start) * 3 + 1);
	if (!d)
		return tm_error_nomem();
	for (size_t i = start; i < end;) {
		unsigned char c = (unsigned char)p->s[i];
		unsigned cp;
		size_t k;

		if (c != '\\') {
			if (c < 0x80 || (k = tm_doc_utf8_len(p->s + i, end - i)) == 0) {
				if (c < 0x80) {
					d[o++] = (char)c;
				} else {
					memcpy(d + o, "\xEF\xBF\xBD", 3);
					o += 3;
				}
				i++;
			} else {
				memcpy(d + o, p->s + i, k);
				o += k;
				i += k;
			}
			continue;
		}
		i++;
		switch (p->s[i]) {
		case '"':
		case '\\':
		case '/':
			d[o++] = p->s[i++];
			break;
		case 'b':
			d[o++] = '\b';
			i++;
			break;
		case 'f':
			d[o++] = '\f';
			i++;
			break;
		case 'n':
			d[o++] = '\n';
			i++;
			break;
		case 'r':
			d[o++] = '\r';
			i++;
			break;
		case 't':
			d[o++] = '\t';
			i++;
			break;
		case 'u':
			if (junicode(p, &i, end, &cp) < 0) {
				free(d);
				p->i = i;
				return jfail(p, "in \\u hexadecimal character escape");
			}
			o += docr_put_utf8(d + o, cp);
			break;
		default:
			free(d);
			p->i = i;
			return jfail(p, "in string escape code");
		}
	}
	d[o] = '\0';
	p->i = end + 1;
	*out = d;
	*out_len = o;
	return 0;
}

static int jnumber(struct jparser *p, struct tm_doc **out)
{
	size_t st = p->i, i = p->i;
	int is_int = 1;
	int64_t iv;
	double fv;

	if (i < p->n && p->s[i] == '-')
		i++;
	if (i < p->n && p->s[i] == '0') {
		i++;
	} else if (i < p->n && p->s[i] >= '1' && p->s[i] <= '9') {
		while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
	} else {
		p->i = i;
		return jfail(p, "in numeric literal");
	}
	if (i < p->n && p->s[i] == '.') {
		is_int = 0;
		i++;
		if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') {
			p->i = i;
			return jfail(p, "after decimal point in numeric literal");
		}
		while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
	}
	if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
		is_int = 0;
		i++;
		if (i < p->n && (p->s[i] == '+' || p->s[i] == '-'))
			i++;
		if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') {
			p->i = i;
			return jfail(p, "in exponent of numeric literal");
		}
		while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
	}
	p->i = i;
	/* apimachinery: Int64() first, then Float64() (out of range: error). */
	if (is_int && docr_go_parse_int(&iv, p->s + st, i - st, 10) == 0)
		return tm_doc_new_int(out, iv);
	int r = docr_parse_decimal(&fv, p->s + st, i - st);
	if (r == -3)
		return tm_error_nomem();
	if (r < 0)
		return docr_fail(p->w, TM_EPARSE, jline(p, st), "number %.*s is out of range",
				 (int)(i - st > MSG_CAP ? MSG_CAP : i - st), p->s + st);
	return tm_doc_new_float(out, fv);
}

/* Whether the value of key k (in a map at depth) is left out (tm_json_parse_pruned). */
static int pruned(const struct jparser *p, unsigned depth, const char *k, size_t kl)
{
	if (depth == 0 && p->keep) {
		int kept = 0;
		for (size_t i = 0; p->keep[i] && !kept; i++)
			kept = strlen(p->keep[i]) == kl && !memcmp(p->keep[i], k, kl);
		if (!kept)
			return 1;
	}
	for (size_t i = 0; p->skip && p->skip[i]; i++) {
		const char *e = p->skip[i], *dot = strchr(e, '.');
		if (depth == 0 && !dot && strlen(e) == kl && !memcmp(e, k, kl))
			return 1;
		if (depth == 1 && dot && p->top && (size_t)(dot - e) == p->top_len &&
		    !memcmp(e, p->top, p->top_len) && strlen(dot + 1) == kl &&
		    !memcmp(dot + 1, k, kl))
			return 1;
	}
	return 0;
}

/* The high bit set in each byte of v that is 0 (exact: no carry crosses a byte). */
static uint64_t zero_bytes(uint64_t v)
{
	const uint64_t low7 = 0x7F7F7F7F7F7F7F7Fu;

	return ~(((v & low7) + low7) | v | low7);
}

/* Whether one of the eight bytes at s is '"', '\\' or below 0x20 (any byte
 * from 0x80 is none of them). */
static int special8(const char *s)
{
	const uint64_t ones = 0x0101010101010101u, low7 = 0x7F7F7F7F7F7F7F7Fu;
	uint64_t w, ctl;

	memcpy(&w, s, 8);
	ctl = ~(((w & low7) + ones * 0x60) | w) & ~low7;
	return (ctl | zero_bytes(w ^ (ones * '"')) | zero_bytes(w ^ (ones * '\\'))) != 0;
}

/* An object key read over: one without escapes cannot fail to decode (any
 * other byte is taken or becomes U+FFFD), so it is not decoded. */
static int jskip_key(struct jparser *p)
{
	size_t e = p->i + 1;
	char *k;
	size_t kl;
	int r;

	while (e < p->n && p->s[e] != '"' && p->s[e] != '\\' && (unsigned char)p->s[e] >= 0x20)
		e++;
	if (e < p->n && p->s[e] == '"') {
		p->i = e + 1;
		return 0;
	}
	if ((r = jstring(p, &k, &kl)) < 0)
		return r;
	free(k);
	return 0;
}

/* Reads over one value with the same syntax checks and limits as jvalue,
 * building nothing but one scalar at a time. The line is counted only for a
 * message: a large answer is mostly skipped. */
static int jskip(struct jparser *p, unsigned depth)
{
	int r;

	docr_jws(p);
	if (p->i >= p->n)
		return jfail(p, "");
	if (p->bg->nodes < p->bg->lim->max_nodes)
		p->bg->nodes++;
	else if ((r = docr_count_node(p->bg, p->w, jline(p, p->i), 0)) < 0)
		return r;
	if (p->s[p->i] == '{' || p->s[p->i] == '[') {
		int is_map = p->s[p->i] == '{';
		char close = is_map ? '}' : ']';

		if (depth + 1 > p->bg->lim->max_depth)
			return docr_too_deep(p->w, jline(p, p->i), p->bg->lim->max_depth);
		p->i++;
		docr_jws(p);
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			return 0;
		}
		for (;;) {
			if (is_map) {
				docr_jws(p);
				if (p->i >= p->n || p->s[p->i] != '"')
					return jfail(p,
						     "looking for beginning of object key string");
				if ((r = jskip_key(p)) < 0)
					return r;
				docr_jws(p);
				if (p->i >= p->n || p->s[p->i] != ':')
					return jfail(p, "after object key");
				p->i++;
			}
			if ((r = jskip(p, depth + 1)) < 0)
				return r;
			docr_jws(p);
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->i < p->n && p->s[p->i] == close) {
				p->i++;
				return 0;
			}
			return jfail(p, is_map ? "after object key:value pair"
					       : "after array element");
		}
	}
	if (p->s[p->i] == '"') {
		/* a string: its end found without decoding it (control characters refused),
		 * eight bytes at a time while none of them is '"', '\\' or below 0x20 */
		for (p->i++; p->i < p->n; p->i++) {
			unsigned char c;

			while (p->n - p->i >= 8 && !special8(p->s + p->i))
				p->i += 8;
			if (p->i >= p->n)
				break;
			c = (unsigned char)p->s[p->i];
			if (c == '"') {
				p->i++;
				return 0;
			}
			if (c == '\\')
				p->i++;
			else if (c < 0x20)
				return jfail(p, "in string literal");
		}
		return jfail(p, "");
	}
	{
		/* a number or literal: read as jvalue reads it, then dropped (it counted once
		 * already) */
		struct tm_doc *d = NULL;
		p->bg->nodes--;
		r = docr_jvalue(p, &d, depth);
		tm_doc_free(d);
		return r;
	}
}

/* An object or an array: its members read recursively (pruned keys only checked). */
static int jcollection(struct jparser *p, struct tm_doc **out, unsigned depth, unsigned line)
{
	int is_map = p->s[p->i] == '{';
	char close = is_map ? '}' : ']';
	struct tm_doc *d = NULL;
	int r;

	if (depth + 1 > p->bg->lim->max_depth)
		return docr_too_deep(p->w, line, p->bg->lim->max_depth);
	if ((r = tm_doc_new(&d, is_map ? TM_DOC_MAP : TM_DOC_SEQ)) < 0)
		return r;
	p->i++;
	docr_jws(p);
	if (p->i < p->n && p->s[p->i] == close) {
		p->i++;
		goto done;
	}
	for (;;) {
		struct tm_doc *v;

		if (is_map) {
			char *k;
			size_t kl;

			docr_jws(p);
			if (p->i >= p->n || p->s[p->i] != '"') {
				r = jfail(p, "looking for beginning of object key string");
				goto bad;
			}
			if ((r = jstring(p, &k, &kl)) < 0)
				goto bad;
			docr_jws(p);
			if (p->i >= p->n || p->s[p->i] != ':') {
				free(k);
				r = jfail(p, "after object key");
				goto bad;
			}
			p->i++;
			if ((p->keep || p->skip) && pruned(p, depth, k, kl)) {
				r = jskip(p, depth + 1);
				free(k);
				if (r < 0)
					goto bad;
				goto next;
			}
			if (depth == 0) {
				p->top = k;
				p->top_len = kl;
			}
			if ((r = docr_jvalue(p, &v, depth + 1)) < 0) {
				free(k);
				goto bad;
			}
			if (depth == 0)
				p->top = NULL;
			r = tm_doc_map_setn(d, k, kl, v);
			free(k);
		} else {
			if ((r = docr_jvalue(p, &v, depth + 1)) < 0)
				goto bad;
			r = tm_doc_seq_append(d, v);
		}
		if (r < 0)
			goto bad;
next:
		docr_jws(p);
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			break;
		}
		r = jfail(p, is_map ? "after object key:value pair" : "after array element");
		goto bad;
	}
done:
	*out = d;
	return 0;
bad:
	tm_doc_free(d);
	return r;
}

int docr_jvalue(struct jparser *p, struct tm_doc **out, unsigned depth)
{
	struct tm_doc *d = NULL;
	unsigned line;
	int r;

	*out = NULL;
	docr_jws(p);
	if (p->i >= p->n)
		return jfail(p, "");
	line = jline(p, p->i);
	if ((r = docr_count_node(p->bg, p->w, line, 0)) < 0)
		return r;
	switch (p->s[p->i]) {
	case '{':
	case '[':
		if ((r = jcollection(p, &d, depth, line)) < 0)
			return r;
		break;
	case '"': {
		char *s;
		size_t sl;

		if ((r = jstring(p, &s, &sl)) < 0)
			return r;
		r = tm_doc_new_stringn(&d, s, sl);
		free(s);
		if (r < 0)
			return r;
		break;
	}
	case 't':
	case 'f':
	case 'n': {
		static const char *const lit[] = { "true", "false", "null" };
		int k = p->s[p->i] == 't' ? 0 : p->s[p->i] == 'f' ? 1 : 2;
		size_t ln = strlen(lit[k]);

		for (size_t j = 0; j < ln; j++) {
			if (p->i + j >= p->n || p->s[p->i + j] != lit[k][j]) {
				p->i += j;
				return jfail(p, "in literal");
			}
		}
		p->i += ln;
		r = k == 2 ? tm_doc_new_null(&d) : tm_doc_new_bool(&d, k == 0);
		if (r < 0)
			return r;
		break;
	}
	default:
		if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9')) {
			if ((r = jnumber(p, &d)) < 0)
				return r;
			break;
		}
		return jfail(p, "looking for beginning of value");
	}
	d->line = line;
	*out = d;
	return 0;
}

int tm_json_parse(struct tm_doc **out, const char *text, size_t len,
		  const struct tm_yaml_limits *lim)
{
	return tm_json_parse_pruned(out, text, len, lim, NULL, NULL);
}

int tm_json_parse_pruned(struct tm_doc **out, const char *text, size_t len,
			 const struct tm_yaml_limits *lim, const char *const *keep,
			 const char *const *skip)
{
	struct budget bg = { .lim = lim ? lim : &tm_yaml_limits_default };
	struct where w = { "JSON", 0 };
	struct jparser p = { .s = text, .n = len, .w = &w, .bg = &bg, .keep = keep, .skip = skip };
	struct tm_doc *d;
	int r;

	*out = NULL;
	if (!text && len)
		return tm_error_set(TM_ERROR, "tm_json_parse: no text");
	if ((r = docr_check_size("JSON", len, bg.lim)) < 0)
		return r;
	if ((r = docr_jvalue(&p, &d, 0)) < 0)
		return r;
	docr_jws(&p);
	if (p.i < p.n) {
		tm_doc_free(d);
		return jfail(&p, "after top-level value");
	}
	*out = d;
	return 0;
}
