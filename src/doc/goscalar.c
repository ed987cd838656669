/*
 * goscalar.c — how Go types a scalar, as the Kubernetes tool chain sees a manifest (see
 * reader.h): strconv's number syntax as go-yaml v2 applies it, YAML 1.1 timestamps, go-yaml
 * v2's resolution of plain and tagged scalars (resolve.go), map keys as strings, and the
 * sigs.k8s.io/yaml JSON round trip of a finished tree (finalize). No libyaml here: the libyaml
 * adapter (yaml.c) and the JSON reader (jsonread.c) call in.
 */
#include "reader.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Go's number syntax (strconv), as go-yaml v2 applies it ---- */

int docr_digit_val(char c)
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
		int d = docr_digit_val(s[i]);

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
int docr_go_parse_int(int64_t *out, const char *s, size_t n, int base)
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
int docr_parse_decimal(double *out, const char *s, size_t n)
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
int docr_go_time(const char *s, size_t n, char sep, int rfc)
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
	if (mon < 1 || mon > 12 || day < 1 || day > tm_time_days_in_month(year, mon))
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
	return docr_go_time(s, n, 'T', 0) || docr_go_time(s, n, 't', 0) ||
	       docr_go_time(s, n, ' ', 0) || docr_go_time(s, n, 0, 0);
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

	if (n > 5) /* longer than every word above: most scalars of a manifest */
		return 0;
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
	if (docr_go_parse_int(&iv, p, pn, 0) == 0) {
		r->tag = R_INT;
		r->i = iv;
	} else if (go_parse_uint(&uv, p, pn, 0) == 0) {
		r->tag = R_UINT;
		r->u = uv;
	} else if (yaml_style_float(p, pn) && docr_parse_decimal(&fv, p, pn) == 0) {
		r->tag = R_FLOAT;
		r->f = fv;
	} else if (pn > 2 && p[0] == '0' && p[1] == 'b' &&
		   docr_go_parse_int(&iv, p + 2, pn - 2, 2) == 0) {
		r->tag = R_INT;
		r->i = iv;
	} else if (pn > 2 && p[0] == '0' && p[1] == 'b' &&
		   go_parse_uint(&uv, p + 2, pn - 2, 2) == 0) {
		r->tag = R_UINT;
		r->u = uv;
	} else if (pn > 3 && p[0] == '-' && p[1] == '0' && p[2] == 'b') {
		p[2] = '-';
		if (docr_go_parse_int(&iv, p + 2, pn - 2, 2) == 0) {
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
	if (yaml_style_float(p, pn) && docr_parse_decimal(&fv, p, pn) == 0) {
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

/* A !!binary scalar: base64 as Go decodes it, the bytes then carried as UTF-8 text. */
static int resolve_binary(struct tm_doc **out, const char *s, size_t n, const struct where *w,
			  unsigned line)
{
	struct tm_buf raw;
	char *bin;
	size_t bl;
	int rc;

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
		return docr_fail(w, TM_EPARSE, line, "!!binary value contains invalid base64 data");
	}
	/* JSON carries text: the bytes reach the API server as UTF-8. */
	int oom;
	size_t fl;
	char *fixed = docr_utf8_fix(bin, bl, &fl, &oom, 0);
	if (oom) {
		free(bin);
		return tm_error_nomem();
	}
	rc = fixed ? tm_doc_new_stringn(out, fixed, fl) : tm_doc_new_stringn(out, bin, bl);
	free(fixed);
	free(bin);
	return rc;
}

/*
 * One scalar to a node, as go-yaml v2 decodes it into interface{}: quoted
 * and block scalars are strings unless tagged; a plain or tagged scalar is
 * resolved; an explicit tag must agree with the resolution (!!float takes an
 * integer); unknown tags give the string; !!binary is base64.
 */
int docr_resolve_scalar(struct tm_doc **out, const char *s, size_t n, const char *tag_long,
			int plain_implicit, const struct where *w, unsigned line)
{
	char tbuf[128];
	const char *tag = short_tag(tag_long, tbuf, sizeof(tbuf));
	struct resolved r = { R_STR, 0, 0, 0, 0 };
	int rc;

	*out = NULL;
	if (!tag_long && !plain_implicit)
		return tm_doc_new_stringn(out, s, n);
	if (strcmp(tag, "!!binary") == 0)
		return resolve_binary(out, s, n, w, line);
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
			return docr_fail(w, TM_EPARSE, line, "cannot decode %s `%.*s` as a %s",
					 rtag_name(r.tag), (int)(n > MSG_CAP ? MSG_CAP : n), s,
					 tag);
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
int docr_key_string(char **out, size_t *out_len, const struct tm_doc *k, const struct where *w,
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
			return docr_fail(
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
		return docr_fail(w, TM_EPARSE, line, "a null map key is not supported");
	default:
		return docr_fail(w, TM_EPARSE, line, "invalid map key: a map key cannot be an %s",
				 tm_doc_type_name(k->type));
	}
	*out = docr_alloc(n + 1); /* a map key: the node pool's while a tree is built */
	if (!*out)
		return tm_error_nomem();
	memcpy(*out, s, n);
	(*out)[n] = '\0';
	*out_len = n;
	return 0;
}

/* The JSON round trip of sigs.k8s.io/yaml and the unstructured decoder:
 * .inf/.nan are refused, an integral float that prints without exponent and
 * fits int64 is read back as an integer. Also clears the internal flags. */
int docr_finalize(const struct where *w, struct tm_doc *d)
{
	int r;

	switch (d->type) {
	case TM_DOC_FLOAT:
		if (d->flags & F_UINT64)
			break;
		if (!isfinite(d->u.f))
			return docr_fail(w, TM_EPARSE, d->line, "%s cannot be represented in JSON",
					 isnan(d->u.f) ? ".nan"
					 : d->u.f > 0  ? ".inf"
						       : "-.inf");
		if (d->u.f == trunc(d->u.f) && fabs(d->u.f) < 1e21) {
			char text[64];
			int64_t iv;
			int n = tm_doc_format_float(text, sizeof(text), d->u.f, 'f', 64);

			if (n > 0 && docr_go_parse_int(&iv, text, (size_t)n, 10) == 0) {
				d->type = TM_DOC_INT;
				d->u.i = iv;
			}
		}
		break;
	case TM_DOC_MAP:
		for (size_t i = 0; i < d->u.map.n; i++)
			if ((r = docr_finalize(w, d->u.map.v[i].value)) < 0)
				return r;
		break;
	case TM_DOC_SEQ:
		for (size_t i = 0; i < d->u.seq.n; i++)
			if ((r = docr_finalize(w, d->u.seq.v[i])) < 0)
				return r;
		break;
	default:
		break;
	}
	d->flags = 0;
	return 0;
}
