/*
 * textdiff.c — the unified diff of two texts (systemd.h, tm_systemd_diff)
 * that `tagmoor diff` prints for a unit file that would change.
 *
 * Where it sits in the pipeline: apply and prune of the systemd applier
 * (systemd.c) in dry_run.
 */
#define _GNU_SOURCE
#include "tagmoor/apply/systemd/systemd.h"
#include "systemd_internal.h"
#include "tagmoor/core/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_CELLS_MAX (4u * 1024 * 1024)

struct line {
	const char *p;
	size_t len; /* without the '\n' */
	int nl;     /* ends with '\n' */
};

static int split_lines(struct line **out, size_t *n, const char *s, size_t len)
{
	size_t cnt = 0, i = 0;
	struct line *v;

	for (size_t k = 0; k < len; k++)
		if (s[k] == '\n')
			cnt++;
	if (len && s[len - 1] != '\n')
		cnt++;
	*n = cnt;
	*out = NULL;
	if (!cnt)
		return 0;
	if (!(v = calloc(cnt, sizeof(*v))))
		return tm_error_nomem();
	for (const char *p = s, *end = s + len; p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		v[i].p = p;
		v[i].len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		v[i].nl = nl != NULL;
		p = nl ? nl + 1 : end;
	}
	*out = v;
	return 0;
}

static int line_eq(const struct line *a, const struct line *b)
{
	return a->len == b->len && a->nl == b->nl && memcmp(a->p, b->p, a->len) == 0;
}

struct op {
	char type; /* ' ', '-', '+' */
	size_t ai, bi;
};

static void print_line(FILE *f, char type, const struct line *l)
{
	fputc(type, f);
	fwrite(l->p, 1, l->len, f);
	fputc('\n', f);
	if (!l->nl)
		fputs("\\ No newline at end of file\n", f);
}

static void print_range(FILE *f, size_t start, size_t count)
{
	/* GNU diff: an empty range names the line before it. */
	if (count == 0)
		fprintf(f, "%zu,0", start);
	else if (count == 1)
		fprintf(f, "%zu", start + 1);
	else
		fprintf(f, "%zu,%zu", start + 1, count);
}

/* The edit script from a to b in ops (*nops of them): the common prefix and
 * suffix kept, the middle by a longest common subsequence, or as a whole
 * replacement when it is too large. 0 or TM_ENOMEM (no error set). */
static int edit_script(struct op *ops, size_t *nops, const struct line *a, size_t na,
		       const struct line *b, size_t nb)
{
	size_t pre = 0, suf = 0;
	uint32_t *dp = NULL;

	while (pre < na && pre < nb && line_eq(&a[pre], &b[pre]))
		pre++;
	while (suf < na - pre && suf < nb - pre && line_eq(&a[na - 1 - suf], &b[nb - 1 - suf]))
		suf++;
	for (size_t i = 0; i < pre; i++)
		ops[(*nops)++] = (struct op){ ' ', i, i };
	{
		size_t ma = na - pre - suf, mb = nb - pre - suf, i = 0, j = 0;
		int whole = ma && mb && (ma + 1) > DIFF_CELLS_MAX / (mb + 1);

		if (!whole && ma && mb) {
			/* dp[i][j] = length of the LCS of a[pre+i..] and b[pre+j..] */
			if (!(dp = calloc((ma + 1) * (mb + 1), sizeof(*dp))))
				return TM_ENOMEM;
			for (size_t x = ma; x-- > 0;)
				for (size_t y = mb; y-- > 0;) {
					uint32_t *c = &dp[x * (mb + 1) + y];
					if (line_eq(&a[pre + x], &b[pre + y]))
						*c = dp[(x + 1) * (mb + 1) + y + 1] + 1;
					else {
						uint32_t d1 = dp[(x + 1) * (mb + 1) + y];
						uint32_t d2 = dp[x * (mb + 1) + y + 1];
						*c = d1 >= d2 ? d1 : d2;
					}
				}
		}
		while (i < ma || j < mb) {
			if (dp && i < ma && j < mb && line_eq(&a[pre + i], &b[pre + j])) {
				ops[(*nops)++] = (struct op){ ' ', pre + i, pre + j };
				i++;
				j++;
			} else if (i < ma &&
				   (j == mb || !dp ||
				    dp[(i + 1) * (mb + 1) + j] >= dp[i * (mb + 1) + j + 1])) {
				ops[(*nops)++] = (struct op){ '-', pre + i, pre + j };
				i++;
			} else {
				ops[(*nops)++] = (struct op){ '+', pre + i, pre + j };
				j++;
			}
		}
	}
	for (size_t i = 0; i < suf; i++)
		ops[(*nops)++] = (struct op){ ' ', na - suf + i, nb - suf + i };
	free(dp);
	return 0;
}

/* The hunks of the edit script, with ctxl lines of context. */
static void print_hunks(FILE *f, const struct op *ops, size_t nops, const struct line *a,
			const struct line *b, size_t ctxl)
{
	for (size_t k = 0; k < nops;) {
		size_t first, last, hs, he, ca = 0, cb = 0;

		while (k < nops && ops[k].type == ' ')
			k++;
		if (k == nops)
			break;
		first = last = k;
		for (size_t m = k + 1; m < nops; m++) {
			if (ops[m].type == ' ')
				continue;
			if (m - last > 2 * ctxl)
				break;
			last = m;
		}
		hs = first > ctxl ? first - ctxl : 0;
		he = last + ctxl + 1 < nops ? last + ctxl + 1 : nops;
		for (size_t m = hs; m < he; m++) {
			if (ops[m].type != '+')
				ca++;
			if (ops[m].type != '-')
				cb++;
		}
		fputs("@@ -", f);
		print_range(f, ops[hs].ai, ca);
		fputs(" +", f);
		print_range(f, ops[hs].bi, cb);
		fputs(" @@\n", f);
		for (size_t m = hs; m < he; m++)
			print_line(f, ops[m].type,
				   ops[m].type == '+' ? &b[ops[m].bi] : &a[ops[m].ai]);
		k = he;
	}
}

int tm_systemd_diff(FILE *f, const char *label, const char *old, size_t oldlen, const char *new_,
		    size_t newlen)
{
	struct line *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, nops = 0;
	struct op *ops = NULL;
	int r;

	if (old && new_ && oldlen == newlen && memcmp(old, new_, oldlen) == 0)
		return 0;
	if ((r = split_lines(&a, &na, old ? old : "", old ? oldlen : 0)) < 0 ||
	    (r = split_lines(&b, &nb, new_ ? new_ : "", new_ ? newlen : 0)) < 0)
		goto out;
	r = TM_ENOMEM;
	if (!(ops = calloc(na + nb + 1, sizeof(*ops))))
		goto out;
	if ((r = edit_script(ops, &nops, a, na, b, nb)) < 0)
		goto out;
	fprintf(f, "--- %s\n+++ %s\n", old ? label : "/dev/null", new_ ? label : "/dev/null");
	print_hunks(f, ops, nops, a, b, 3);
	r = 0;
out:
	if (r == TM_ENOMEM)
		tm_error_nomem();
	free(ops);
	free(a);
	free(b);
	return r;
}
