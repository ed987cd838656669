/*
 * yaml.c — YAML and JSON text to the document tree, as kubectl reads it
 * (the only file that includes libyaml's yaml.h).
 *
 * The Kubernetes tool chain reads a manifest file in four steps, and each
 * one shapes what the API server finally receives:
 *   1. kubectl's file reader turns invalid UTF-8 into U+FFFD and honours a
 *      byte order mark;
 *   2. apimachinery's YAMLOrJSONDecoder sniffs a leading '{' (a stream of
 *      JSON values) or splits YAML into pieces at lines starting with "---";
 *   3. sigs.k8s.io/yaml decodes the first YAML document of each piece with
 *      go-yaml v2 (YAML 1.1 resolution, merge keys, last duplicate wins) and
 *      re-encodes it as JSON (keys become strings, .inf/.nan are errors);
 *   4. the unstructured decoder reads that JSON back (integral numbers that
 *      fit int64 are integers), checks kind and metadata, flattens lists.
 * This file does the same in one pass per document: libyaml (the C library
 * go-yaml was ported from) delivers events, the builder resolves scalars
 * with go-yaml's rules and builds the tree with an explicit stack, and a
 * final pass applies the JSON round trip. Limits on bytes, depth, nodes and
 * alias expansion are checked as the tree grows, so hostile input stops
 * early. docs/yaml.md lists the rules and the kubectl behaviours matched.
 */
#include "tagmoor/doc/yaml.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"

#include <yaml.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct tm_yaml_limits tm_yaml_limits_default = TM_YAML_LIMITS_DEFAULT;

/* Internal node flags (struct tm_doc.flags), cleared before a tree is returned. */
#define F_UINT64 1u   /* an integer above int64: a float in JSON, no map key */
#define F_ANCHORED 2u /* an anchor points here: never modified, never freed early */
#define F_OPEN 4u     /* a collection still being read: an alias to it recurses */

#define MSG_CAP 64      /* bytes of untrusted text quoted in a message */
#define JSON_SNIFF 4096 /* apimachinery looks this far for a leading '{' */

/* ---- messages ---- */

struct where {
	const char *origin;
	size_t doc; /* 1-based document (piece) of a stream; 0: not a stream */
};

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

static int fail(const struct where *w, int code, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(const struct where *w, int code, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = failv(w, code, line, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- limits ---- */

struct budget {
	const struct tm_yaml_limits *lim;
	size_t nodes;
	size_t aliased;
	int per_doc;    /* nodes are counted per document of a stream (tm_yaml_parse_each) */
	size_t max_doc; /* bytes of one document of a stream; 0: only lim->max_bytes */
};

static int count_node(struct budget *bg, const struct where *w, unsigned line, int aliased)
{
	if (++bg->nodes > bg->lim->max_nodes)
		return fail(w, TM_ELIMIT, line, "more than %zu nodes%s", bg->lim->max_nodes,
			    bg->per_doc ? " in one document" : "");
	if (aliased && ++bg->aliased > bg->lim->max_alias_expansion)
		return fail(w, TM_ELIMIT, line,
			    "aliases expand to more than %zu nodes (refused as an alias bomb)",
			    bg->lim->max_alias_expansion);
	return 0;
}

static int too_deep(const struct where *w, unsigned line, unsigned max)
{
	return fail(w, TM_ELIMIT, line, "nesting deeper than %u levels", max);
}

/* ---- Go's number syntax (strconv), as go-yaml v2 applies it ---- */

static int digit_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/* strconv.ParseUint(s, base, 64) for base 0 (prefixes 0x 0b 0o and a
 * leading 0 for octal) or an explicit base. 0 ok, -1 syntax, -2 range. */
static int go_parse_uint(uint64_t *out, const char *s, size_t n, int base)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	if (base == 0) {
		base = 10;
		if (s[0] == '0') {
			if (n >= 3 && (s[1] == 'b' || s[1] == 'B')) {
				base = 2;
				s += 2;
				n -= 2;
			} else if (n >= 3 && (s[1] == 'o' || s[1] == 'O')) {
				base = 8;
				s += 2;
				n -= 2;
			} else if (n >= 3 && (s[1] == 'x' || s[1] == 'X')) {
				base = 16;
				s += 2;
				n -= 2;
			} else {
				base = 8;
				s++;
				n--;
			}
		}
	}
	int range = 0;
	for (size_t i = 0; i < n; i++) {
		int d = digit_val(s[i]);

		if (d >= base)
			return -1;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			range = 1;
		else
			v = v * (uint64_t)base + (uint64_t)d;
	}
	if (range)
		return -2;
	*out = v;
	return 0;
}

/* strconv.ParseInt(s, base, 64). */
static int go_parse_int(int64_t *out, const char *s, size_t n, int base)
{
	int neg = 0, r;
	uint64_t u;

	if (n == 0)
		return -1;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		s++;
		n--;
	}
	if ((r = go_parse_uint(&u, s, n, base)) < 0)
		return r;
	if (!neg && u > (uint64_t)INT64_MAX)
		return -2;
	if (neg && u > (uint64_t)INT64_MAX + 1)
		return -2;
	*out = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
	return 0;
}

/* go-yaml's ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static int yaml_style_float(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i < n && s[i] == '.') {
		i++;
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	} else {
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
		if (i < n && s[i] == '.')
			for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
				;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	return i == n;
}

/* strtod on a syntax-checked decimal: 0 ok, -1 out of range (Go's ParseFloat
 * fails on overflow only; underflow gives 0). */
static int parse_decimal(double *out, const char *s, size_t n)
{
	char buf[128], *heap = NULL, *p = buf;
	double v;

	if (n >= sizeof(buf)) {
		heap = malloc(n + 1);
		if (!heap)
			return -3;
		p = heap;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	errno = 0;
	v = strtod(p, NULL);
	free(heap);
	if (isinf(v))
		return -1;
	*out = v;
	return 0;
}

/* strconv's underscoreOK for a decimal literal: each '_' between digits. */
static int underscores_ok(const char *s, size_t n)
{
	char saw = '^';

	for (size_t i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			saw = '0';
		} else if (s[i] == '_') {
			if (saw != '0')
				return 0;
			saw = '_';
		} else {
			if (saw == '_')
				return 0;
			saw = '!';
		}
	}
	return saw != '_';
}

/* Copy of s without '_' into a malloc'ed buffer. */
static char *strip_underscores(const char *s, size_t n, size_t *out_n)
{
	char *p = malloc(n + 1);
	size_t j = 0;

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			p[j++] = s[i];
	p[j] = '\0';
	*out_n = j;
	return p;
}

/* ---- timestamps ---- */

static int days_in(int month, int year)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (month == 2 && (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return 29;
	return d[month - 1];
}

/* Go's getnum: 1 or 2 digits (exactly 2 when fixed). */
static int getnum(const char *s, size_t n, size_t *i, int fixed, int *out)
{
	if (*i >= n || s[*i] < '0' || s[*i] > '9')
		return 0;
	if (*i + 1 >= n || s[*i + 1] < '0' || s[*i + 1] > '9') {
		if (fixed)
			return 0;
		*out = s[*i] - '0';
		*i += 1;
		return 1;
	}
	*out = (s[*i] - '0') * 10 + (s[*i + 1] - '0');
	*i += 2;
	return 1;
}

/*
 * Go's time.Parse for the layouts go-yaml v2 tries on !!timestamp values
 * (sep 'T', 't' with a zone, ' ' without, 0 for a date only) and for
 * time.RFC3339 (rfc: two-digit month, day, minute and second).
 */
static int go_time(const char *s, size_t n, char sep, int rfc)
{
	size_t i = 0;
	int year = 0, mon, day, h, m, sec;

	for (; i < 4; i++) {
		if (i >= n || s[i] < '0' || s[i] > '9')
			return 0;
		year = year * 10 + (s[i] - '0');
	}
	if (i >= n || s[i++] != '-' || !getnum(s, n, &i, rfc, &mon) || i >= n || s[i++] != '-' ||
	    !getnum(s, n, &i, rfc, &day))
		return 0;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in(mon, year))
		return 0;
	if (sep == 0)
		return i == n;
	if (i >= n || s[i++] != sep || !getnum(s, n, &i, 0, &h) || i >= n || s[i++] != ':' ||
	    !getnum(s, n, &i, rfc, &m) || i >= n || s[i++] != ':' || !getnum(s, n, &i, rfc, &sec))
		return 0;
	if (h > 23 || m > 59 || sec > 59)
		return 0;
	if (i + 1 < n && (s[i] == '.' || s[i] == ',') && s[i + 1] >= '0' && s[i + 1] <= '9')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
	if (sep == ' ')
		return i == n;
	if (i < n && s[i] == 'Z')
		return i + 1 == n;
	if (n - i != 6 || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':')
		return 0;
	i++;
	int zh, zm;
	if (!getnum(s, n, &i, 1, &zh) || s[i++] != ':' || !getnum(s, n, &i, 1, &zm))
		return 0;
	return zh <= 24 && zm <= 60;
}

/* go-yaml v2 parseTimestamp: YYYY- then one of its four layouts. */
static int yaml_timestamp(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i != 4 || i == n || s[i] != '-')
		return 0;
	return go_time(s, n, 'T', 0) || go_time(s, n, 't', 0) || go_time(s, n, ' ', 0) ||
	       go_time(s, n, 0, 0);
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

/* The invalid UTF-8 of s replaced by U+FFFD (see invalid_len). NULL when s
 * is valid already (or out of memory: *oom set). */
static char *utf8_fix(const char *s, size_t n, size_t *out_len, int *oom, int subpart)
{
	size_t bad = 0, o = 0;
	char *d;

	*oom = 0;
	for (size_t i = 0; i < n;) {
		size_t k = tm_doc_utf8_len(s + i, n - i);

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

/* ---- scalar resolution (go-yaml v2 resolve.go) ---- */

enum rtag {
	R_NULL,
	R_BOOL,
	R_INT,
	R_UINT,
	R_FLOAT,
	R_STR,
	R_TIMESTAMP,
	R_MERGE
};

struct resolved {
	enum rtag tag;
	int b;
	int64_t i;
	uint64_t u;
	double f;
};

static const char *rtag_name(enum rtag t)
{
	static const char *const names[] = { "!!null",  "!!bool", "!!int",       "!!int",
					     "!!float", "!!str",  "!!timestamp", "!!merge" };
	return names[t];
}

static int in_list(const char *s, size_t n, const char *const *list)
{
	for (; *list; list++)
		if ((*list)[0] == (n ? s[0] : '\0') && strlen(*list) == n &&
		    memcmp(*list, s, n) == 0)
			return 1;
	return 0;
}

/* The table of go-yaml v2: YAML 1.1 booleans included. */
static int resolve_map(struct resolved *r, const char *s, size_t n)
{
	static const char *const t[] = { "y",    "Y",    "yes", "Yes", "YES", "true",
					 "True", "TRUE", "on",  "On",  "ON",  NULL };
	static const char *const f[] = { "n",     "N",     "no",  "No",  "NO",  "false",
					 "False", "FALSE", "off", "Off", "OFF", NULL };
	static const char *const nul[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const nan[] = { ".nan", ".NaN", ".NAN", NULL };
	static const char *const pinf[] = {
		".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL
	};
	static const char *const ninf[] = { "-.inf", "-.Inf", "-.INF", NULL };

	if (in_list(s, n, t) || in_list(s, n, f)) {
		r->tag = R_BOOL;
		r->b = in_list(s, n, t);
	} else if (in_list(s, n, nul)) {
		r->tag = R_NULL;
	} else if (in_list(s, n, nan)) {
		r->tag = R_FLOAT;
		r->f = NAN;
	} else if (in_list(s, n, pinf) || in_list(s, n, ninf)) {
		r->tag = R_FLOAT;
		r->f = in_list(s, n, ninf) ? -INFINITY : INFINITY;
	} else if (n == 2 && s[0] == '<' && s[1] == '<') {
		r->tag = R_MERGE;
	} else {
		return 0;
	}
	return 1;
}

/* Integers and floats of a plain scalar starting with a digit or sign. */
static int resolve_number(struct resolved *r, const char *s, size_t n)
{
	char small[64], *heap = NULL, *p = small;
	size_t pn = 0;
	int64_t iv;
	uint64_t uv;
	double fv;
	int ok = 1;

	if (n >= sizeof(small)) {
		heap = malloc(n + 1);
		if (!heap)
			return TM_ENOMEM;
		p = heap;
	}
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			p[pn++] = s[i];
	p[pn] = '\0';
	if (go_parse_int(&iv, p, pn, 0) == 0) {
		r->tag = R_INT;
		r->i = iv;
	} else if (go_parse_uint(&uv, p, pn, 0) == 0) {
		r->tag = R_UINT;
		r->u = uv;
	} else if (yaml_style_float(p, pn) && parse_decimal(&fv, p, pn) == 0) {
		r->tag = R_FLOAT;
		r->f = fv;
	} else if (pn > 2 && p[0] == '0' && p[1] == 'b' &&
		   go_parse_int(&iv, p + 2, pn - 2, 2) == 0) {
		r->tag = R_INT;
		r->i = iv;
	} else if (pn > 2 && p[0] == '0' && p[1] == 'b' &&
		   go_parse_uint(&uv, p + 2, pn - 2, 2) == 0) {
		r->tag = R_UINT;
		r->u = uv;
	} else if (pn > 3 && p[0] == '-' && p[1] == '0' && p[2] == 'b') {
		p[2] = '-';
		if (go_parse_int(&iv, p + 2, pn - 2, 2) == 0) {
			r->tag = R_INT;
			r->i = iv;
		} else {
			ok = 0;
		}
	} else {
		ok = 0;
	}
	free(heap);
	return ok;
}

/* A plain scalar starting with '.': Go's ParseFloat (underscores between
 * digits allowed) on a decimal with no integer part. */
static int resolve_dot(struct resolved *r, const char *s, size_t n)
{
	size_t pn;
	char *p;
	int ok = 0;
	double fv;

	if (!underscores_ok(s, n))
		return 0;
	p = strip_underscores(s, n, &pn);
	if (!p)
		return TM_ENOMEM;
	if (yaml_style_float(p, pn) && parse_decimal(&fv, p, pn) == 0) {
		r->tag = R_FLOAT;
		r->f = fv;
		ok = 1;
	}
	free(p);
	return ok;
}

static const char *short_tag(const char *tag, char *buf, size_t size)
{
	static const char prefix[] = "tag:yaml.org,2002:";

	if (!tag)
		return "";
	if (strncmp(tag, prefix, sizeof(prefix) - 1) == 0) {
		snprintf(buf, size, "!!%s", tag + sizeof(prefix) - 1);
		return buf;
	}
	return tag;
}

/*
 * One scalar to a node, as go-yaml v2 decodes it into interface{}: quoted
 * and block scalars are strings unless tagged; a plain or tagged scalar is
 * resolved; an explicit tag must agree with the resolution (!!float takes an
 * integer); unknown tags give the string; !!binary is base64.
 */
static int resolve_scalar(struct tm_doc **out, const char *s, size_t n, const char *tag_long,
			  int plain_implicit, const struct where *w, unsigned line)
{
	char tbuf[128];
	const char *tag = short_tag(tag_long, tbuf, sizeof(tbuf));
	struct resolved r = { R_STR, 0, 0, 0, 0 };
	int rc;

	*out = NULL;
	if (!tag_long && !plain_implicit)
		return tm_doc_new_stringn(out, s, n);
	if (strcmp(tag, "!!binary") == 0) {
		struct tm_buf raw;
		char *bin;
		size_t bl;

		/* Go's StdEncoding.DecodeString: '\r' and '\n' ignored, padding required */
		tm_buf_init(&raw, n + 1);
		rc = tm_base64_decode(&raw, s, n, TM_B64_GO);
		bl = raw.len;
		bin = tm_buf_detach(&raw);
		if (rc == TM_ENOMEM || !bin) {
			free(bin);
			return tm_error_nomem();
		}
		if (rc < 0) {
			free(bin);
			return fail(w, TM_EPARSE, line,
				    "!!binary value contains invalid base64 data");
		}
		/* JSON carries text: the bytes reach the API server as UTF-8. */
		int oom;
		size_t fl;
		char *fixed = utf8_fix(bin, bl, &fl, &oom, 0);
		if (oom) {
			free(bin);
			return tm_error_nomem();
		}
		rc = fixed ? tm_doc_new_stringn(out, fixed, fl) : tm_doc_new_stringn(out, bin, bl);
		free(fixed);
		free(bin);
		return rc;
	}
	int resolvable = !*tag || !strcmp(tag, "!!str") || !strcmp(tag, "!!bool") ||
			 !strcmp(tag, "!!int") || !strcmp(tag, "!!float") ||
			 !strcmp(tag, "!!null") || !strcmp(tag, "!!timestamp");
	if (!resolvable)
		return tm_doc_new_stringn(out, s, n);

	char hint = 'N';
	if (n) {
		unsigned char c = (unsigned char)s[0];

		hint = 0;
		if (c == '+' || c == '-')
			hint = 'S';
		else if (c >= '0' && c <= '9')
			hint = 'D';
		else if (strchr("yYnNtTfFoO~", c) && c)
			hint = 'M';
		else if (c == '.')
			hint = '.';
	}
	if (hint && strcmp(tag, "!!str") != 0) {
		if (!resolve_map(&r, s, n)) {
			if (hint == '.') {
				if ((rc = resolve_dot(&r, s, n)) < 0)
					return tm_error_set(rc, "out of memory");
			} else if (hint == 'D' || hint == 'S') {
				if ((!*tag || !strcmp(tag, "!!timestamp")) && yaml_timestamp(s, n))
					r.tag = R_TIMESTAMP;
				else if ((rc = resolve_number(&r, s, n)) < 0)
					return tm_error_set(rc, "out of memory");
			}
		}
	}
	/* An explicit tag must match what the value resolves to. */
	if (*tag && strcmp(tag, "!!str") != 0 && strcmp(tag, rtag_name(r.tag)) != 0) {
		if (!strcmp(tag, "!!float") && r.tag == R_INT) {
			r.tag = R_FLOAT;
			r.f = (double)r.i;
		} else {
			return fail(w, TM_EPARSE, line, "cannot decode %s `%.*s` as a %s",
				    rtag_name(r.tag), (int)(n > MSG_CAP ? MSG_CAP : n), s, tag);
		}
	}
	switch (r.tag) {
	case R_NULL:
		rc = tm_doc_new_null(out);
		break;
	case R_BOOL:
		rc = tm_doc_new_bool(out, r.b);
		break;
	case R_INT:
		rc = tm_doc_new_int(out, r.i);
		break;
	case R_UINT:
		rc = tm_doc_new_float(out, (double)r.u);
		if (rc == 0)
			(*out)->flags |= F_UINT64;
		break;
	case R_FLOAT:
		rc = tm_doc_new_float(out, r.f);
		break;
	default: /* strings, timestamps (kept as written), a "<<" value */
		rc = tm_doc_new_stringn(out, s, n);
		break;
	}
	return rc;
}

/* A map key as sigs.k8s.io/yaml turns it into a JSON key. */
static int key_string(char **out, size_t *out_len, const struct tm_doc *k, const struct where *w,
		      unsigned line)
{
	char buf[64];
	const char *s = buf;
	size_t n;
	int len;

	*out = NULL;
	switch (k->type) {
	case TM_DOC_STRING:
		s = k->u.str.s;
		n = k->u.str.len;
		break;
	case TM_DOC_BOOL:
		s = k->u.b ? "true" : "false";
		n = strlen(s);
		break;
	case TM_DOC_INT:
		snprintf(buf, sizeof(buf), "%lld", (long long)k->u.i);
		n = strlen(buf);
		break;
	case TM_DOC_FLOAT:
		if (k->flags & F_UINT64)
			return fail(
				w, TM_EPARSE, line,
				"an integer map key above 9223372036854775807 is not supported");
		/* go-yaml's float-to-string: shortest 'g' of the float32 value. */
		len = tm_doc_format_float(buf, sizeof(buf), k->u.f, 'g', 32);
		if (len < 0)
			return len;
		if (!strcmp(buf, "+Inf"))
			s = ".inf";
		else if (!strcmp(buf, "-Inf"))
			s = "-.inf";
		else if (!strcmp(buf, "NaN"))
			s = ".nan";
		n = strlen(s);
		break;
	case TM_DOC_NULL:
		return fail(w, TM_EPARSE, line, "a null map key is not supported");
	default:
		return fail(w, TM_EPARSE, line, "invalid map key: a map key cannot be an %s",
			    tm_doc_type_name(k->type));
	}
	*out = malloc(n + 1);
	if (!*out)
		return tm_error_nomem();
	memcpy(*out, s, n);
	(*out)[n] = '\0';
	*out_len = n;
	return 0;
}

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
		size_t k = tm_doc_utf8_len(b->src + b->cbyte, b->src_len - b->cbyte);

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
				return fail(
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
				return fail(b->w, TM_EPARSE, line,
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
			return fail(
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
	if ((r = count_node(b->bg, b->w, line, 1)) < 0)
		return r;
	if (src->type == TM_DOC_MAP || src->type == TM_DOC_SEQ) {
		if (depth > b->bg->lim->max_depth)
			return too_deep(b->w, line, b->bg->lim->max_depth);
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
	return fail(b->w, TM_EPARSE, line,
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
	r = map_put(b, f->node, f->key, f->key_len, node);
	free(f->key);
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
	int r = key_string(&f->key, &f->key_len, k, b->w, line);

	if (r == 0) {
		f->have_key = 1;
		f->key_line = line;
	}
	return r;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	const char *anchor = (const char *)ev->data.scalar.anchor;
	unsigned line = ev_line(b, ev);
	struct tm_doc *d;
	int r;

	if ((r = count_node(b->bg, b->w, line, 0)) < 0)
		return r;
	if ((r = check_source(b, ev, tag, ev->data.scalar.style)) < 0)
		return r;
	if ((r = resolve_scalar(&d, s, n, tag, ev->data.scalar.plain_implicit, b->w, line)) < 0)
		return r;
	d->line = line;
	if (anchor && (r = anchor_set(b, anchor, d)) < 0) {
		tm_doc_free(d);
		return r;
	}
	if (!in_key_position(b))
		return attach(b, d);
	/* go-yaml: "<<" is a merge key when plain (or tagged !!merge). */
	if (n == 2 && s[0] == '<' && s[1] == '<' &&
	    ((!tag && ev->data.scalar.plain_implicit) ||
	     (tag && !strcmp(tag, "tag:yaml.org,2002:merge")))) {
		struct frame *f = &b->st[b->n - 1];

		f->merge = 1;
		f->have_key = 1;
		f->key_line = line;
		r = 0;
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

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	unsigned line = ev_line(b, ev);
	struct tm_doc *target = anchor_get(b, name), *c;
	int r;

	if (!target)
		return fail(b->w, TM_EPARSE, line, "unknown anchor '%.*s' referenced", MSG_CAP,
			    name);
	if (target->flags & F_OPEN)
		return fail(b->w, TM_EPARSE, line, "anchor '%.*s' value contains itself", MSG_CAP,
			    name);
	if (in_key_position(b))
		return take_key(b, target, line);
	if ((r = clone_counted(b, &c, target, b->n + 1, line)) < 0)
		return r;
	return attach(b, c);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum tm_doc_type type)
{
	const char *anchor = (const char *)(type == TM_DOC_MAP ? ev->data.mapping_start.anchor
							       : ev->data.sequence_start.anchor);
	const char *tag = (const char *)(type == TM_DOC_MAP ? ev->data.mapping_start.tag
							    : ev->data.sequence_start.tag);
	int flow = type == TM_DOC_MAP ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
				      : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
	unsigned line = ev_line(b, ev);
	struct tm_doc *d;
	int r;

	if ((r = check_source(b, ev, tag, -1)) < 0)
		return r;

	if (in_key_position(b))
		return fail(b->w, TM_EPARSE, line, "invalid map key: a map key cannot be an %s",
			    tm_doc_type_name(type));
	if (b->n + 1 > b->bg->lim->max_depth)
		return too_deep(b->w, line, b->bg->lim->max_depth);
	if ((r = count_node(b->bg, b->w, line, 0)) < 0)
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

static int on_end(struct builder *b)
{
	struct frame *f = &b->st[--b->n];
	struct tm_doc *d = f->node;

	free(f->key);
	f->key = NULL;
	d->flags &= ~F_OPEN;
	return attach(b, d);
}

static void builder_free(struct builder *b)
{
	while (b->n > 0) {
		struct frame *f = &b->st[--b->n];

		free(f->key);
		/* Anchored open nodes are still owned by their frame. */
		tm_doc_free(f->node);
	}
	free(b->st);
	tm_doc_free(b->anchors);
	free(b->anodes);
	tm_doc_free(b->grave);
	tm_doc_free(b->root);
}

/* The JSON round trip of sigs.k8s.io/yaml and the unstructured decoder:
 * .inf/.nan are refused, an integral float that prints without exponent and
 * fits int64 is read back as an integer. Also clears the internal flags. */
static int finalize(const struct where *w, struct tm_doc *d)
{
	int r;

	switch (d->type) {
	case TM_DOC_FLOAT:
		if (d->flags & F_UINT64)
			break;
		if (!isfinite(d->u.f))
			return fail(w, TM_EPARSE, d->line, "%s cannot be represented in JSON",
				    isnan(d->u.f) ? ".nan"
				    : d->u.f > 0  ? ".inf"
						  : "-.inf");
		if (d->u.f == trunc(d->u.f) && fabs(d->u.f) < 1e21) {
			char text[64];
			int64_t iv;
			int n = tm_doc_format_float(text, sizeof(text), d->u.f, 'f', 64);

			if (n > 0 && go_parse_int(&iv, text, (size_t)n, 10) == 0) {
				d->type = TM_DOC_INT;
				d->u.i = iv;
			}
		}
		break;
	case TM_DOC_MAP:
		for (size_t i = 0; i < d->u.map.n; i++)
			if ((r = finalize(w, d->u.map.v[i].value)) < 0)
				return r;
		break;
	case TM_DOC_SEQ:
		for (size_t i = 0; i < d->u.seq.n; i++)
			if ((r = finalize(w, d->u.seq.v[i])) < 0)
				return r;
		break;
	default:
		break;
	}
	d->flags = 0;
	return 0;
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
		return fail(w, TM_EPARSE, line, "%s", p->problem ? p->problem : "unreadable input");
	}
	line = (unsigned)p->problem_mark.line + 1 + line0;
	if (p->context)
		return fail(w, TM_EPARSE, line, "%s %s", p->context,
			    p->problem ? p->problem : "syntax error");
	return fail(w, TM_EPARSE, line, "%s", p->problem ? p->problem : "syntax error");
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
				r = fail(w, TM_EPARSE, ev_line(&b, &ev),
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
	if (b.root && (r = finalize(w, b.root)) < 0)
		goto out;
	*out = b.root;
	b.root = NULL;
out:
	yaml_parser_delete(&p);
	builder_free(&b);
	return r;
}

#define MAX_COLON_FIXES 32

/*
 * build_once, plus the one reading where libyaml 0.2.5 fails and go-yaml v2
 * succeeds: in a flow collection, a plain scalar ending in ':' right before
 * one of ",?[]{}" ([a:] is the string "a:" for kubectl). Such a scalar is
 * always a string, so it is single-quoted in a copy of the text and the
 * document is read again (a bounded number of times).
 */
static int build_yaml(struct tm_doc **out, const char *text, size_t len, unsigned line0,
		      const struct where *w, struct budget *bg)
{
	struct budget saved = *bg;
	char *copy = NULL;
	const char *cur = text;
	size_t cur_len = len;
	int r;

	for (int tries = 0;; tries++) {
		struct colon_fix fix = { 0, 0 };

		r = build_once(out, cur, cur_len, line0, w, bg, &fix);
		if (r != 1)
			break;
		*bg = saved;
		if (tries == MAX_COLON_FIXES) {
			r = fail(w, TM_ELIMIT, 0,
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
			r = fail(w, TM_EPARSE, 0, "found unexpected ':'");
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

/* ---- JSON (Go's encoding/json) ---- */

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

/* The 1-based line of offset at; incremental, as offsets mostly grow. */
static unsigned jline(struct jparser *p, size_t at)
{
	if (at < p->lpos) {
		p->lpos = 0;
		p->lines = 0;
	}
	for (; p->lpos < at && p->lpos < p->n; p->lpos++)
		if (p->s[p->lpos] == '\n')
			p->lines++;
	return p->lines + 1;
}

static int jfail(struct jparser *p, const char *what)
{
	if (p->i >= p->n)
		return fail(p->w, TM_EPARSE, jline(p, p->i), "unexpected end of JSON input");
	unsigned char c = (unsigned char)p->s[p->i];
	if (c >= 0x20 && c < 0x7f && c != '\'')
		return fail(p->w, TM_EPARSE, jline(p, p->i), "invalid character '%c' %s", c, what);
	return fail(p->w, TM_EPARSE, jline(p, p->i), "invalid character 0x%02x %s", c, what);
}

static void jws(struct jparser *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
			       p->s[p->i] == '\r'))
		p->i++;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		int d = digit_val(s[k]);

		if (d > 15)
			return 0;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return 1;
}

static size_t put_utf8(char *d, unsigned cp)
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
		unsigned cp, lo;
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
			if (i + 5 > end || !hex4(p->s + i + 1, &cp)) {
				free(d);
				p->i = i;
				return jfail(p, "in \\u hexadecimal character escape");
			}
			i += 5;
			if (cp >= 0xD800 && cp < 0xE000) {
				/* A valid pair is one character; anything else U+FFFD. */
				if (cp < 0xDC00 && i + 6 <= end && p->s[i] == '\\' &&
				    p->s[i + 1] == 'u' && hex4(p->s + i + 2, &lo) && lo >= 0xDC00 &&
				    lo < 0xE000) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					i += 6;
				} else {
					cp = 0xFFFD;
				}
			}
			o += put_utf8(d + o, cp);
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
	if (is_int && go_parse_int(&iv, p->s + st, i - st, 10) == 0)
		return tm_doc_new_int(out, iv);
	int r = parse_decimal(&fv, p->s + st, i - st);
	if (r == -3)
		return tm_error_nomem();
	if (r < 0)
		return fail(p->w, TM_EPARSE, jline(p, st), "number %.*s is out of range",
			    (int)(i - st > MSG_CAP ? MSG_CAP : i - st), p->s + st);
	return tm_doc_new_float(out, fv);
}

static int jvalue(struct jparser *p, struct tm_doc **out, unsigned depth);

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

/* Reads over one value with the same syntax checks and limits as jvalue,
 * building nothing but one scalar at a time. */
static int jskip(struct jparser *p, unsigned depth)
{
	unsigned line;
	int r;

	jws(p);
	if (p->i >= p->n)
		return jfail(p, "");
	line = jline(p, p->i);
	if ((r = count_node(p->bg, p->w, line, 0)) < 0)
		return r;
	if (p->s[p->i] == '{' || p->s[p->i] == '[') {
		int is_map = p->s[p->i] == '{';
		char close = is_map ? '}' : ']';

		if (depth + 1 > p->bg->lim->max_depth)
			return too_deep(p->w, line, p->bg->lim->max_depth);
		p->i++;
		jws(p);
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			return 0;
		}
		for (;;) {
			if (is_map) {
				char *k;
				size_t kl;

				jws(p);
				if (p->i >= p->n || p->s[p->i] != '"')
					return jfail(p,
						     "looking for beginning of object key string");
				if ((r = jstring(p, &k, &kl)) < 0)
					return r;
				free(k);
				jws(p);
				if (p->i >= p->n || p->s[p->i] != ':')
					return jfail(p, "after object key");
				p->i++;
			}
			if ((r = jskip(p, depth + 1)) < 0)
				return r;
			jws(p);
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
		/* a string: its end found without decoding it (control characters refused) */
		for (p->i++; p->i < p->n; p->i++) {
			unsigned char c = (unsigned char)p->s[p->i];
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
		r = jvalue(p, &d, depth);
		tm_doc_free(d);
		return r;
	}
}

static int jvalue(struct jparser *p, struct tm_doc **out, unsigned depth)
{
	struct tm_doc *d = NULL;
	unsigned line;
	int r;

	*out = NULL;
	jws(p);
	if (p->i >= p->n)
		return jfail(p, "");
	line = jline(p, p->i);
	if ((r = count_node(p->bg, p->w, line, 0)) < 0)
		return r;
	switch (p->s[p->i]) {
	case '{':
	case '[': {
		int is_map = p->s[p->i] == '{';
		char close = is_map ? '}' : ']';

		if (depth + 1 > p->bg->lim->max_depth)
			return too_deep(p->w, line, p->bg->lim->max_depth);
		if ((r = tm_doc_new(&d, is_map ? TM_DOC_MAP : TM_DOC_SEQ)) < 0)
			return r;
		p->i++;
		jws(p);
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			break;
		}
		for (;;) {
			struct tm_doc *v;

			if (is_map) {
				char *k;
				size_t kl;

				jws(p);
				if (p->i >= p->n || p->s[p->i] != '"') {
					r = jfail(p, "looking for beginning of object key string");
					goto bad;
				}
				if ((r = jstring(p, &k, &kl)) < 0)
					goto bad;
				jws(p);
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
				if ((r = jvalue(p, &v, depth + 1)) < 0) {
					free(k);
					goto bad;
				}
				if (depth == 0)
					p->top = NULL;
				r = tm_doc_map_setn(d, k, kl, v);
				free(k);
			} else {
				if ((r = jvalue(p, &v, depth + 1)) < 0)
					goto bad;
				r = tm_doc_seq_append(d, v);
			}
			if (r < 0)
				goto bad;
next:
			jws(p);
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->i < p->n && p->s[p->i] == close) {
				p->i++;
				break;
			}
			r = jfail(p,
				  is_map ? "after object key:value pair" : "after array element");
			goto bad;
		}
		break;
	}
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
bad:
	tm_doc_free(d);
	return r;
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
		o += put_utf8(d + o, u);
	}
	if (i < n)
		o += put_utf8(d + o, 0xFFFD);
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
static int normalize_input(const char **out, size_t *out_len, char **owned, const char *text,
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
	*owned = utf8_fix(text, len, out_len, &oom, 1);
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
	return fail(w, TM_EPARSE, d->line, "%s must be %s, not %s", path, want,
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
		if (!go_time(v->u.str.s, v->u.str.len, 'T', 1))
			return fail(w, TM_EPARSE, v->line, "%s: '%.*s' is not an RFC 3339 time",
				    path, MSG_CAP, v->u.str.s);
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
		return fail(w, TM_EPARSE, obj->line, "a manifest must be an object, not %s %s",
			    obj->type == TM_DOC_SEQ || obj->type == TM_DOC_INT ? "an" : "a",
			    obj->type == TM_DOC_SEQ ? "array (a top-level list)"
						    : tm_doc_type_name(obj->type));
	if (!nonempty_string(obj, "kind"))
		return fail(w, TM_EPARSE, obj->line, "object has no kind");
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
			r = fail(w, TM_EPARSE, it->line, "items[%zu] must be an object, not %s", i,
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
			r = fail(w, TM_EPARSE, it->line, "items[%zu]: object has no kind", i);
			goto out;
		}
		if (!nonempty_string(it, "apiVersion")) {
			r = fail(w, TM_EPARSE, it->line, "items[%zu]: object has no apiVersion", i);
			goto out;
		}
		if ((sub = tm_doc_map_get(it, "items")) && sub->type == TM_DOC_SEQ) {
			r = fail(w, TM_EPARSE, it->line,
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
	return fail(w, TM_ELIMIT, line, "%zu bytes is over the limit of %zu bytes for one document",
		    len, max);
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

		jws(&p);
		if (p.i >= n)
			return 0;
		w.doc++;
		at = p.i;
		if (bg->per_doc)
			bg->nodes = 0;
		if ((r = jvalue(&p, &d, 0)) < 0)
			return r;
		if (bg->max_doc && p.i - at > bg->max_doc) {
			unsigned line = d ? d->line : 0;
			tm_doc_free(d);
			return doc_too_big(&w, line, p.i - at, bg->max_doc);
		}
		if ((r = add_object(l, d, &w)) < 0)
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
		size_t eol = pos;

		while (eol < n && s[eol] != '\n')
			eol++;
		size_t ll = eol - pos;
		/* bufio's ReadLine drops the "\r" of "\r\n". */
		if (eol < n && ll > 0 && s[eol - 1] == '\r')
			ll--;
		if (ll >= 3 && s[pos] == '-' && s[pos + 1] == '-' && s[pos + 2] == '-') {
			const char *rest;
			size_t rest_len;

			if (!separator_rest_ok(s + pos + 3, ll - 3, &rest, &rest_len)) {
				w.doc++;
				return fail(&w, TM_EPARSE, line + 1,
					    "invalid YAML document separator: %.*s",
					    (int)(rest_len > MSG_CAP ? MSG_CAP : rest_len), rest);
			}
			if (pos > start) {
				struct tm_doc *d;

				w.doc++;
				if (bg->max_doc && pos - start > bg->max_doc)
					return doc_too_big(&w, start_line + 1, pos - start,
							   bg->max_doc);
				if (bg->per_doc)
					bg->nodes = 0;
				if ((r = build_yaml(&d, s + start, pos - start, start_line, &w,
						    bg)) < 0)
					return r;
				if ((r = add_object(l, d, &w)) < 0)
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
		r = build_yaml(&d, last ? last : s + start, ln, start_line, &w, bg);
		free(last);
		if (r < 0)
			return r;
		if ((r = add_object(l, d, &w)) < 0)
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

static int check_size(const char *origin, size_t len, const struct tm_yaml_limits *lim)
{
	if (len > lim->max_bytes)
		return tm_error_set(TM_ELIMIT, "%s: %zu bytes exceeds the limit of %zu bytes",
				    origin ? origin : "input", len, lim->max_bytes);
	return 0;
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
	if ((r = check_size(origin, len, bg->lim)) < 0)
		return r;
	if (len == 0)
		return 0;
	if ((r = normalize_input(&s, &n, &owned, text, len)) < 0)
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
	struct sink sk = { doclist_add, &l };
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
	struct sink sk = { fn, arg };

	return parse_stream(&sk, text, len, origin, &bg);
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
	if ((r = check_size(origin, len, bg.lim)) < 0)
		return r;
	if ((r = normalize_input(&s, &n, &owned, text ? text : "", len)) < 0)
		return r;
	r = build_yaml(out, s, n, 0, &w, &bg);
	free(owned);
	if (r == 0 && !*out)
		r = tm_doc_new_null(out);
	return r;
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
	if ((r = check_size("JSON", len, bg.lim)) < 0)
		return r;
	if ((r = jvalue(&p, &d, 0)) < 0)
		return r;
	jws(&p);
	if (p.i < p.n) {
		tm_doc_free(d);
		return jfail(&p, "after top-level value");
	}
	*out = d;
	return 0;
}

const char *tm_yaml_version(void)
{
	return yaml_get_version_string();
}
