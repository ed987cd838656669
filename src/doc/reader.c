/*
 * reader.c — what every reader of text into a document tree shares (YAML, JSON, manifests; see
 * reader.h): messages that name the origin, the document and the line, the limits on nodes,
 * depth and bytes, and the text as kubectl's file reader delivers it (invalid UTF-8 becomes
 * U+FFFD, a byte order mark is honoured, UTF-16 converted).
 */
#include "reader.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct tm_yaml_limits tm_yaml_limits_default = TM_YAML_LIMITS_DEFAULT;

/* ---- messages ---- */

static int failv(const struct where *w, int code, unsigned line, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int failv(const struct where *w, int code, unsigned line, const char *fmt, va_list ap)
{
	char msg[512];
	const char *o = w && w->origin ? w->origin : "input";

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (w && w->doc && line)
		return tm_error_set(code, "%s: document %zu (line %u): %s", o, w->doc, line, msg);
	if (w && w->doc)
		return tm_error_set(code, "%s: document %zu: %s", o, w->doc, msg);
	if (line)
		return tm_error_set(code, "%s: line %u: %s", o, line, msg);
	return tm_error_set(code, "%s: %s", o, msg);
}

int docr_fail(const struct where *w, int code, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = failv(w, code, line, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- limits ---- */

int docr_count_node(struct budget *bg, const struct where *w, unsigned line, int aliased)
{
	if (++bg->nodes > bg->lim->max_nodes)
		return docr_fail(w, TM_ELIMIT, line, "more than %zu nodes%s", bg->lim->max_nodes,
				 bg->per_doc ? " in one document" : "");
	if (aliased && ++bg->aliased > bg->lim->max_alias_expansion)
		return docr_fail(w, TM_ELIMIT, line,
				 "aliases expand to more than %zu nodes (refused as an alias bomb)",
				 bg->lim->max_alias_expansion);
	return 0;
}

int docr_too_deep(const struct where *w, unsigned line, unsigned max)
{
	return docr_fail(w, TM_ELIMIT, line, "nesting deeper than %u levels", max);
}

/*
 * How many bytes of the invalid UTF-8 at s become one U+FFFD. Go's encoding
 * packages replace byte by byte (subpart 0); kubectl's file reader
 * (golang.org/x/text's UTF-8 decoder) replaces the maximal subpart of an
 * ill-formed sequence, the W3C way: "\xF3\xB4\x90x" is one U+FFFD and "x".
 */
static size_t invalid_len(const char *str, size_t n, int subpart)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c = s[0], lo = 0x80, hi = 0xBF;

	if (!subpart || c < 0xC2 || c > 0xF4)
		return 1;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < 2 || s[1] < lo || s[1] > hi)
		return 1;
	if (n < 3 || (s[2] & 0xC0) != 0x80)
		return 2;
	return 3; /* only a 4-byte sequence can be invalid this late */
}

size_t docr_ascii_len(const char *s, size_t n)
{
	size_t i = 0;

	/* eight bytes at a time: manifests are mostly ASCII */
	for (; n - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080u)
			break;
	}
	while (i < n && !((unsigned char)s[i] & 0x80))
		i++;
	return i;
}

/* The invalid UTF-8 of s replaced by U+FFFD (see invalid_len). NULL when s
 * is valid already (or out of memory: *oom set). */
char *docr_utf8_fix(const char *s, size_t n, size_t *out_len, int *oom, int subpart)
{
	size_t bad = 0, o = 0;
	char *d;

	*oom = 0;
	for (size_t i = 0; i < n;) {
		size_t k;

		if ((i += docr_ascii_len(s + i, n - i)) >= n)
			break;
		k = tm_doc_utf8_len(s + i, n - i);
		bad += k == 0;
		i += k ? k : 1;
	}
	if (!bad)
		return NULL;
	d = malloc(n + bad * 2 + 1);
	if (!d) {
		*oom = 1;
		return NULL;
	}
	for (size_t i = 0; i < n;) {
		size_t k = tm_doc_utf8_len(s + i, n - i);

		if (k == 0) {
			memcpy(d + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i += invalid_len(s + i, n - i, subpart);
		} else {
			memcpy(d + o, s + i, k);
			o += k;
			i += k;
		}
	}
	d[o] = '\0';
	*out_len = o;
	return d;
}

size_t docr_put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* ---- input as kubectl's file reader delivers it ---- */

/* UTF-16 with a byte order mark to UTF-8 (unpaired surrogates: U+FFFD). */
static int utf16_to_utf8(char **out, size_t *out_len, const unsigned char *s, size_t n, int be)
{
	char *d = malloc(n / 2 * 3 + 4);
	size_t o = 0, i = 0;

	if (!d)
		return TM_ENOMEM;
	while (i + 1 < n) {
		unsigned u = be ? (unsigned)(s[i] << 8 | s[i + 1])
				: (unsigned)(s[i + 1] << 8 | s[i]);

		i += 2;
		if (u >= 0xD800 && u < 0xDC00 && i + 1 < n) {
			unsigned lo = be ? (unsigned)(s[i] << 8 | s[i + 1])
					 : (unsigned)(s[i + 1] << 8 | s[i]);

			if (lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				i += 2;
			} else {
				u = 0xFFFD;
			}
		} else if (u >= 0xD800 && u < 0xE000) {
			u = 0xFFFD;
		}
		o += docr_put_utf8(d + o, u);
	}
	if (i < n)
		o += docr_put_utf8(d + o, 0xFFFD);
	d[o] = '\0';
	*out = d;
	*out_len = o;
	return 0;
}

/*
 * kubectl reads files through a UTF-8 decoder with BOM override: a UTF-8
 * BOM is dropped, UTF-16 with a BOM is converted, every byte that does not
 * start valid UTF-8 becomes U+FFFD. *out is text itself or a new buffer
 * (*owned set).
 */
int docr_normalize_input(const char **out, size_t *out_len, char **owned, const char *text,
			 size_t len)
{
	const unsigned char *u = (const unsigned char *)text;
	int oom;

	*owned = NULL;
	if (len >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE))) {
		int r = utf16_to_utf8(owned, out_len, u + 2, len - 2, u[0] == 0xFE);

		if (r < 0)
			return tm_error_nomem();
		*out = *owned;
		return 0;
	}
	if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) {
		text += 3;
		len -= 3;
	}
	*owned = docr_utf8_fix(text, len, out_len, &oom, 1);
	if (oom)
		return tm_error_nomem();
	if (*owned) {
		*out = *owned;
		return 0;
	}
	*out = text;
	*out_len = len;
	return 0;
}

int docr_check_size(const char *origin, size_t len, const struct tm_yaml_limits *lim)
{
	if (len > lim->max_bytes)
		return tm_error_set(TM_ELIMIT, "%s: %zu bytes exceeds the limit of %zu bytes",
				    origin ? origin : "input", len, lim->max_bytes);
	return 0;
}
