/*
 * fastyaml.c — the block style manifests are written in, read without libyaml.
 *
 * Upstream manifests and CRDs are block mappings and sequences of plain keys and of plain,
 * quoted and literal scalars; libyaml reads them a character at a time with an allocation per
 * token, which was most of the CPU an apply of a multi-megabyte CRD cost (issue 16). This reader
 * takes only that subset and hands the builder in yaml.c the same events, in the same order and
 * with the same lines, that libyaml gives for it:
 *   - block mappings with plain one-line keys, block sequences (also at the column of their key),
 *     a mapping started on a sequence entry's line ("- name: x");
 *   - plain, single- and double-quoted scalars (escapes \" \\ \n \t \r), on one line or
 *     folded over several whose continuation lines are indented more than the owning
 *     collection; literal block scalars (| |- |+), the empty flow collections {} and [];
 *   - comments, blank lines, one "---" line at the start.
 * Anything else — anchors, aliases, tags, flow collections, folded (>) scalars, tabs,
 * "\r", control and non-printable characters, a byte order mark, document markers, every error
 * — makes it give up (DOCR_FAST_BAIL) and yaml.c reads the document with libyaml from the start,
 * so the result is libyaml's wherever this reader is unsure. It also gives up whenever the
 * builder fails, so every error message comes from the libyaml path. Nothing is recursive
 * beyond FAST_MAX_DEPTH. tests/unit/doc/test_fastyaml.c and fuzz_yaml compare both paths.
 */
#include "reader.h"
#include "tagmoor/core/error.h"

#include <stdlib.h>
#include <string.h>

#define BAIL DOCR_FAST_BAIL
#define FAST_MAX_DEPTH 256
#define FAST_MAX_KEY 1000 /* libyaml: a simple key is at most 1024 characters */

static int fast_on = 1;

void docr_fast_set(int on)
{
	fast_on = on;
}

int docr_fast_enabled(void)
{
	return fast_on;
}

struct fy {
	const char *s;
	size_t n;
	size_t pos;    /* start of the current line (or n) */
	unsigned line; /* 0-based line of pos */
	unsigned depth;
	const struct docr_fast_ops *ops;
	void *arg;
	char *sc; /* scratch for scalars that are not a slice of the text */
	size_t sc_len, sc_cap;
};

/* The next token from fy->pos on: skips blank and comment lines. */
struct tok {
	size_t p;      /* its first byte */
	size_t ls;     /* the start of its line */
	size_t col;    /* its column (bytes: only spaces precede it) */
	unsigned line; /* its line; at the end, libyaml's line of the stream end */
	int eof;
	int marker; /* a "---" or "..." document marker */
};

static int blank_at(const struct fy *f, size_t i)
{
	return i >= f->n || f->s[i] == ' ' || f->s[i] == '\n';
}

static void peek(const struct fy *f, struct tok *t)
{
	const char *s = f->s;
	size_t i = f->pos, ls = f->pos;
	unsigned line = f->line;

	for (;;) {
		while (i < f->n && s[i] == ' ')
			i++;
		if (i < f->n && s[i] == '#') {
			const char *nl = memchr(s + i, '\n', f->n - i);

			i = nl ? (size_t)(nl - s) : f->n;
		}
		if (i == f->n) {
			/* libyaml ends a last line that has no line break */
			*t = (struct tok){ i, ls, 0, line + (i > ls), 1, 0 };
			return;
		}
		if (s[i] != '\n')
			break;
		ls = ++i;
		line++;
	}
	*t = (struct tok){ i, ls, i - ls, line, 0, 0 };
	if (i == ls && i + 3 <= f->n && (!memcmp(s + i, "---", 3) || !memcmp(s + i, "...", 3)) &&
	    blank_at(f, i + 3))
		t->marker = 1;
}

static void go_to(struct fy *f, const struct tok *t)
{
	f->pos = t->ls;
	f->line = t->line;
}

/* Past the end of the line holding i (its line break included). */
static void next_line(struct fy *f, size_t i)
{
	const char *nl = memchr(f->s + i, '\n', f->n - i);

	f->pos = nl ? (size_t)(nl - f->s) + 1 : f->n;
	f->line++;
}

/* After a node that ends at i: only spaces, then a line break or a comment (after a space). */
static int end_of_line(struct fy *f, size_t i)
{
	size_t k = i;

	while (k < f->n && f->s[k] == ' ')
		k++;
	if (k < f->n && f->s[k] != '\n' && !(f->s[k] == '#' && k > i))
		return BAIL;
	next_line(f, k);
	return 0;
}

static int is_dash(const struct fy *f, size_t p)
{
	return f->s[p] == '-' && blank_at(f, p + 1);
}

/* Can a plain scalar start at p (block context)? Indicators give up, but "-x". */
static int plain_start(const struct fy *f, size_t p)
{
	char c = f->s[p];

	if (strchr("-?:,[]{}#&*!|>'\"%@`", c))
		return c == '-' && !blank_at(f, p + 1);
	return c != ' ' && c != '\n';
}

/* The ':' ending a plain key that starts at p on this line, or 0. */
static size_t key_end(const struct fy *f, size_t p)
{
	const char *s = f->s;

	if (!plain_start(f, p))
		return 0;
	for (size_t i = p; i < f->n && s[i] != '\n'; i++) {
		if (s[i] == ':' && blank_at(f, i + 1))
			return i;
		if (s[i] == '#' && i > p && s[i - 1] == ' ')
			return 0;
	}
	return 0;
}

static int sc_put(struct fy *f, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (f->sc_cap - f->sc_len < n) {
		size_t cap = f->sc_cap ? f->sc_cap : 256;
		char *v;

		while (cap - f->sc_len < n) {
			if (cap > (size_t)-1 / 2)
				return tm_error_nomem();
			cap *= 2;
		}
		if (!(v = realloc(f->sc, cap)))
			return tm_error_nomem();
		f->sc = v;
		f->sc_cap = cap;
	}
	memcpy(f->sc + f->sc_len, p, n);
	f->sc_len += n;
	return 0;
}

static int emit(struct fy *f, const char *s, size_t n, int plain, unsigned line)
{
	if (!s)
		s = "";
	return f->ops->scalar(f->arg, s, n, plain, line) < 0 ? BAIL : 0;
}

/* Spaces at i (at most max), and whether the line is empty after them. */
static size_t spaces(const struct fy *f, size_t i, size_t max, int *empty)
{
	size_t k = 0;

	while (k < max && i + k < f->n && f->s[i + k] == ' ')
		k++;
	*empty = i + k < f->n && f->s[i + k] == '\n';
	return k;
}

/*
 * A line break inside a quoted or plain scalar, at i (what came before it on the line is taken,
 * trailing spaces dropped): libyaml folds one break into a space and keeps n empty lines as n
 * breaks; the next line's leading spaces are dropped. *next: where that line's content starts.
 * Lines not indented more than owner give up (libyaml reads some of them, or refuses them).
 */
static int fold(struct fy *f, size_t i, size_t owner, size_t *next)
{
	size_t j = i + 1, k, empties = 0;
	int empty;

	while ((k = spaces(f, j, (size_t)-1, &empty)), empty) {
		j += k + 1;
		empties++;
	}
	if (j + k >= f->n || k <= owner)
		return BAIL;
	if (!empties && sc_put(f, " ", 1) < 0)
		return BAIL;
	for (size_t e = 0; e < empties; e++)
		if (sc_put(f, "\n", 1) < 0)
			return BAIL;
	f->line += 1 + (unsigned)empties;
	f->pos = j;
	*next = j + k;
	return 0;
}

/* The content before a line break at i, from from on, without its trailing spaces. */
static int take_line(struct fy *f, size_t from, size_t i)
{
	while (i > from && f->s[i - 1] == ' ')
		i--;
	return sc_put(f, f->s + from, i - from);
}

static char unescape(char c)
{
	switch (c) {
	case '"':
	case '\\':
		return c;
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case 'r':
		return '\r';
	}
	return 0; /* others (and "\/", which kubectl refuses) are left to libyaml */
}

/* The end of a quoted scalar from p to its closing quote at i: the text since from added to
 * what was unescaped or folded (esc), nothing but a comment after it on the line. */
static int quoted_end(struct fy *f, size_t p, size_t i, size_t from, int esc, unsigned line)
{
	if (esc && sc_put(f, f->s + from, i - from) < 0)
		return BAIL;
	if (end_of_line(f, i + 1))
		return BAIL;
	return esc ? emit(f, f->sc, f->sc_len, 0, line) : emit(f, f->s + p + 1, i - p - 1, 0, line);
}

/* "...", maybe over several lines: the escapes \" \\ \n \t \r only. */
static int double_quoted(struct fy *f, size_t p, size_t owner)
{
	const char *s = f->s;
	size_t i = p + 1, from = i;
	int esc = 0;
	char c;
	unsigned line = f->line;

	f->sc_len = 0;
	for (;;) {
		if (i == f->n)
			return BAIL;
		if (s[i] == '"')
			break;
		if (s[i] == '\n') {
			if (take_line(f, from, i) < 0 || fold(f, i, owner, &i))
				return BAIL;
			from = i;
			esc = 1;
			continue;
		}
		if (s[i] != '\\') {
			i++;
			continue;
		}
		if (i + 1 == f->n || sc_put(f, s + from, i - from) < 0 ||
		    !(c = unescape(s[i + 1])) || sc_put(f, &c, 1) < 0)
			return BAIL;
		esc = 1;
		i += 2;
		from = i;
	}
	return quoted_end(f, p, i, from, esc, line);
}

/* '...', maybe over several lines ('' is a quote). */
static int single_quoted(struct fy *f, size_t p, size_t owner)
{
	const char *s = f->s;
	size_t i = p + 1, from = i;
	int esc = 0;
	unsigned line = f->line;

	f->sc_len = 0;
	for (;;) {
		if (i == f->n)
			return BAIL;
		if (s[i] == '\n') {
			if (take_line(f, from, i) < 0 || fold(f, i, owner, &i))
				return BAIL;
			from = i;
			esc = 1;
			continue;
		}
		if (s[i] != '\'') {
			i++;
			continue;
		}
		if (i + 1 < f->n && s[i + 1] == '\'') {
			if (sc_put(f, s + from, i + 1 - from) < 0)
				return BAIL;
			esc = 1;
			i += 2;
			from = i;
			continue;
		}
		break;
	}
	return quoted_end(f, p, i, from, esc, line);
}

/*
 * A literal block scalar at p ("|", "|-" or "|+", maybe a comment), its lines indented more
 * than owner (the column of the mapping or sequence it is a value of), as libyaml's
 * scan_block_scalar reads them: the indentation of the first non-empty line (or of a longer
 * empty line before it), then lines at least that indented, empty lines kept as line breaks.
 */
static int literal(struct fy *f, size_t p, size_t owner)
{
	const char *s = f->s;
	unsigned line = f->line;
	int chomp = 0, empty;
	size_t q = p + 1, ind = 0, breaks = 0, k;
	size_t lead = 0; /* the line break after the last content line (0 or 1) */

	if (q < f->n && (s[q] == '-' || s[q] == '+'))
		chomp = s[q++] == '+' ? 1 : -1;
	while (q < f->n && s[q] == ' ')
		q++;
	if (q < f->n && s[q] != '\n' && s[q] != '#')
		return BAIL; /* an indentation indicator, or an error */
	next_line(f, q);
	/* leading empty lines, then the first content line sets the indentation */
	for (;;) {
		if (f->pos == f->n)
			return BAIL; /* no content: rare, libyaml's */
		k = spaces(f, f->pos, (size_t)-1, &empty);
		ind = k > ind ? k : ind;
		if (!empty && f->pos + k == f->n)
			return BAIL;
		if (!empty)
			break;
		breaks++;
		f->pos += k + 1;
		f->line++;
	}
	if (ind < owner + 1)
		ind = owner + 1;
	if (k < ind)
		return BAIL; /* an empty scalar, or a longer blank line before the first line */
	f->sc_len = 0;
	for (;;) {
		/* a content line at f->pos, indented at least ind */
		const char *nl = memchr(s + f->pos + ind, '\n', f->n - f->pos - ind);
		size_t eol = nl ? (size_t)(nl - s) : f->n;

		for (; lead + breaks; breaks ? breaks-- : lead--)
			if (sc_put(f, "\n", 1) < 0)
				return BAIL;
		if (sc_put(f, s + f->pos + ind, eol - f->pos - ind) < 0)
			return BAIL;
		lead = eol < f->n;
		f->pos = eol < f->n ? eol + 1 : f->n;
		f->line += lead;
		/* empty lines (at most ind spaces), then the next line if indented enough */
		for (;;) {
			k = spaces(f, f->pos, ind, &empty);
			if (!empty)
				break;
			breaks++;
			f->pos += k + 1;
			f->line++;
		}
		if (k < ind || f->pos + k == f->n)
			break;
	}
	if (chomp != -1 && lead && sc_put(f, "\n", 1) < 0)
		return BAIL;
	for (; chomp == 1 && breaks; breaks--)
		if (sc_put(f, "\n", 1) < 0)
			return BAIL;
	return emit(f, f->sc, f->sc_len, 0, line);
}

/*
 * One line of a plain scalar from i: where its content ends (trailing spaces dropped) in *end,
 * where the line's scan stopped in *stop (its break, or a comment's '#'); ": " gives up (an
 * error for libyaml).
 */
static int plain_line(const struct fy *f, size_t i, size_t *end, size_t *stop)
{
	const char *s = f->s;
	size_t from = i;

	*end = i;
	for (; i < f->n && s[i] != '\n'; i++) {
		if (s[i] == ':' && blank_at(f, i + 1))
			return BAIL;
		if (s[i] == '#' && i > from && s[i - 1] == ' ')
			break;
		if (s[i] != ' ')
			*end = i + 1;
	}
	*stop = i;
	return 0;
}

/* After the line break at i: is the next non-empty line more of a plain scalar? */
static int continues(const struct fy *f, size_t i, size_t owner)
{
	size_t j = i + 1, k;
	int empty;

	while ((k = spaces(f, j, (size_t)-1, &empty)), empty)
		j += k + 1;
	return j + k < f->n && k > owner && f->s[j + k] != '#';
}

/*
 * A plain scalar at p, the value of a mapping or sequence at column owner. It ends at a comment,
 * or before the next non-empty line that is not indented more than owner or that is a comment;
 * lines in between are folded as libyaml folds them (one break a space, n empty lines n breaks).
 */
static int plain(struct fy *f, size_t p, size_t owner)
{
	const char *s = f->s;
	size_t end, stop, q;
	unsigned line = f->line;
	int multi = 0;

	if (plain_line(f, p, &end, &stop))
		return BAIL;
	while (stop < f->n && s[stop] == '\n' && continues(f, stop, owner)) {
		if (!multi) {
			f->sc_len = 0;
			if (sc_put(f, s + p, end - p) < 0)
				return BAIL;
			multi = 1;
		}
		if (fold(f, stop, owner, &q) || plain_line(f, q, &end, &stop) ||
		    sc_put(f, s + q, end - q) < 0)
			return BAIL;
	}
	next_line(f, stop);
	return multi ? emit(f, f->sc, f->sc_len, 1, line) : emit(f, s + p, end - p, 1, line);
}

static int map(struct fy *f, size_t p);
static int seq(struct fy *f, size_t p);

/* A node that starts at p on the current line, the value of a collection at column owner. */
static int inline_node(struct fy *f, size_t p, size_t owner)
{
	const char *s = f->s;
	unsigned line = f->line;

	switch (s[p]) {
	case '"':
		return double_quoted(f, p, owner);
	case '\'':
		return single_quoted(f, p, owner);
	case '|':
		return literal(f, p, owner);
	case '{':
	case '[':
		if (p + 1 == f->n || s[p + 1] != (s[p] == '{' ? '}' : ']'))
			return BAIL;
		if (end_of_line(f, p + 2) || f->ops->start(f->arg, s[p] == '{', 1, line) < 0 ||
		    f->ops->end(f->arg) < 0)
			return BAIL;
		return 0;
	}
	if (!plain_start(f, p))
		return BAIL;
	return plain(f, p, owner);
}

/*
 * The value of a key (or sequence entry) whose line ends after the indicator: a collection on
 * the next lines (a sequence may stay at the key's column: indentless), or an empty scalar at
 * the indicator's line (libyaml marks it at the end of the ':' or '-').
 */
static int block_value(struct fy *f, size_t owner, int indentless, unsigned line)
{
	struct tok t;

	peek(f, &t);
	if (t.marker)
		return BAIL;
	if (!t.eof && (t.col > owner || (indentless && t.col == owner && is_dash(f, t.p)))) {
		go_to(f, &t);
		if (is_dash(f, t.p))
			return seq(f, t.p);
		if (key_end(f, t.p))
			return map(f, t.p);
		return BAIL;
	}
	return emit(f, "", 0, 1, line);
}

/* After a node of a collection at column col: 1 when the next token is its next item. */
static int next_item(struct fy *f, size_t col, size_t *p)
{
	struct tok t;

	peek(f, &t);
	if (t.marker)
		return -1;
	if (t.eof || t.col < col)
		return 0;
	if (t.col > col)
		return -1;
	go_to(f, &t);
	*p = t.p;
	return 1;
}

static int enter(struct fy *f, int is_map)
{
	if (++f->depth > FAST_MAX_DEPTH)
		return BAIL;
	return f->ops->start(f->arg, is_map, 0, f->line) < 0 ? BAIL : 0;
}

static int leave(struct fy *f)
{
	f->depth--;
	return f->ops->end(f->arg) < 0 ? BAIL : 0;
}

/* A block mapping whose first key starts at p on the current line. */
static int map(struct fy *f, size_t p)
{
	const char *s = f->s;
	size_t col = p - f->pos, ke, q;
	int r;

	if (enter(f, 1))
		return BAIL;
	for (;;) {
		ke = key_end(f, p);
		if (!ke || s[ke - 1] == ' ' || ke - p > FAST_MAX_KEY)
			return BAIL;
		if (emit(f, s + p, ke - p, 1, f->line))
			return BAIL;
		for (q = ke + 1; q < f->n && s[q] == ' '; q++)
			;
		if (q == f->n || s[q] == '\n' || s[q] == '#') {
			next_line(f, q);
			r = block_value(f, col, 1, f->line - 1);
		} else {
			r = inline_node(f, q, col);
		}
		if (r)
			return BAIL;
		if ((r = next_item(f, col, &p)) < 0)
			return BAIL;
		if (r == 0)
			break;
		if (is_dash(f, p))
			return BAIL;
	}
	return leave(f);
}

/* A block sequence whose first '-' is at p on the current line. */
static int seq(struct fy *f, size_t p)
{
	const char *s = f->s;
	size_t col = p - f->pos, q;
	int r;

	if (enter(f, 0))
		return BAIL;
	for (;;) {
		for (q = p + 1; q < f->n && s[q] == ' '; q++)
			;
		if (q == f->n || s[q] == '\n' || s[q] == '#') {
			next_line(f, q);
			r = block_value(f, col, 0, f->line - 1);
		} else if (is_dash(f, q)) {
			return BAIL; /* "- - x" */
		} else if (key_end(f, q)) {
			r = map(f, q);
		} else {
			r = inline_node(f, q, col);
		}
		if (r)
			return BAIL;
		if ((r = next_item(f, col, &p)) < 0)
			return BAIL;
		if (r == 0 || !is_dash(f, p))
			break;
	}
	return leave(f);
}

/*
 * Every byte printable as libyaml's reader wants it, ASCII or UTF-8, but for those that are
 * line breaks to libyaml (U+0085, U+2028, U+2029) or that its scanner treats apart (U+FEFF):
 * anything else gives up. The text was made valid UTF-8 before (reader.c).
 */
static int printable(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];

		if ((c >= 0x20 && c < 0x7f) || c == '\n') {
			i++;
			continue;
		}
		if (c < 0xc2 || c > 0xf4)
			return 0;
		size_t len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		unsigned c1 = s[i + 1], c2 = len > 2 ? s[i + 2] : 0;
		if ((c == 0xc2 && c1 < 0xa0) || (c == 0xe0 && c1 < 0xa0) ||
		    (c == 0xed && c1 >= 0xa0) ||
		    (c == 0xe2 && c1 == 0x80 && (c2 == 0xa8 || c2 == 0xa9)) ||
		    (c == 0xef && c1 == 0xbb && c2 == 0xbf) ||
		    (c == 0xef && c1 == 0xbf && c2 >= 0xbe) || (c == 0xf0 && c1 < 0x90) ||
		    (c == 0xf4 && c1 >= 0x90))
			return 0;
		i += len;
	}
	return 1;
}

int docr_fast_yaml(const char *text, size_t len, const struct docr_fast_ops *ops, void *arg)
{
	struct fy f = { .s = text, .n = len, .ops = ops, .arg = arg };
	struct tok t;
	int r = BAIL;

	if (!fast_on || !printable((const unsigned char *)text, len))
		return BAIL;
	peek(&f, &t);
	if (t.marker && text[t.p] == '-') { /* the "---" starting the piece */
		go_to(&f, &t);
		if (end_of_line(&f, t.p + 3))
			return BAIL;
		peek(&f, &t);
	}
	if (t.eof || t.marker)
		return BAIL;
	go_to(&f, &t);
	if (is_dash(&f, t.p))
		r = seq(&f, t.p);
	else if (key_end(&f, t.p))
		r = map(&f, t.p);
	if (r == 0) {
		peek(&f, &t);
		if (!t.eof)
			r = BAIL;
	}
	free(f.sc);
	return r;
}
