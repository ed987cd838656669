/*
 * gitobj.c — raw tag and commit objects → payload, signature and the fields
 * the policy needs. Stricter than git: the signature block must be the very
 * end of a tag, headers must be exactly object/type/tag/tagger in that order,
 * and nothing may contain a NUL byte.
 */
#include "tagmoor/verify/gitobj.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *begin, *end;
	int kind;
} armors[] = {
	{ "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----", 1 },
	{ "-----BEGIN PGP SIGNATURE-----", "-----END PGP SIGNATURE-----", 2 },
	{ "-----BEGIN PGP MESSAGE-----", "-----END PGP MESSAGE-----", 2 },
};

static int starts(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && memcmp(p, lit, l) == 0;
}

static int is_hex40(const char *p, size_t n)
{
	if (n != 40)
		return 0;
	for (size_t i = 0; i < 40; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

/* Finds the signature as git does: the last line that starts an armor. The
 * block must end with the matching END line (and at most one newline). */
static int split_signature(const char *raw, size_t len, size_t body_start, size_t *sig_at,
			   int *kind)
{
	size_t found = 0;
	int fkind = 0, fidx = -1;

	for (size_t pos = body_start; pos < len;) {
		const char *nl = memchr(raw + pos, '\n', len - pos);
		size_t line_end = nl ? (size_t)(nl - raw) + 1 : len;
		for (size_t a = 0; a < sizeof(armors) / sizeof(armors[0]); a++) {
			if (starts(raw + pos, line_end - pos, armors[a].begin)) {
				found = pos;
				fkind = armors[a].kind;
				fidx = (int)a;
			}
		}
		pos = line_end;
	}
	if (fidx < 0) {
		*sig_at = len;
		*kind = 0;
		return 0;
	}
	/* The end line must be the last line. */
	size_t end = len;
	if (end > found && raw[end - 1] == '\n')
		end--;
	size_t el = strlen(armors[fidx].end);
	if (end - found < el || memcmp(raw + end - el, armors[fidx].end, el) != 0 ||
	    (end - el > found && raw[end - el - 1] != '\n'))
		return tm_error_set(TM_EVERIFY,
				    "the signature block is not the last thing in the object");
	*sig_at = found;
	*kind = fkind;
	return 0;
}

static int64_t parse_ident_time(const char *p, size_t n)
{
	const char *gt = NULL;
	int64_t t = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '>')
			gt = p + i;
	if (!gt)
		return -1;
	i = (size_t)(gt - p) + 1;
	if (i >= n || p[i] != ' ')
		return -1;
	i++;
	if (i >= n || p[i] < '0' || p[i] > '9')
		return -1;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		if (t > (INT64_MAX - 9) / 10)
			return -1;
		t = t * 10 + (p[i] - '0');
	}
	if (i < n && p[i] != ' ')
		return -1;
	return t;
}

int tm_gitobj_parse_tag(struct tm_gitobj_tag *out, const char *raw, size_t len)
{
	static const char *const hdrs[] = { "object ", "type ", "tag ", "tagger " };
	size_t pos = 0;
	int r;

	memset(out, 0, sizeof(*out));
	out->tagger_time = -1;
	if (memchr(raw, '\0', len))
		return tm_error_set(TM_EPARSE, "tag object contains a NUL byte");
	for (size_t h = 0; h < 4; h++) {
		const char *nl;
		size_t hl = strlen(hdrs[h]), vl;

		if (pos < len && raw[pos] == '\n' && h == 3)
			break; /* tagger is optional in git; policy decides */
		if (!starts(raw + pos, len - pos, hdrs[h]))
			return tm_error_set(TM_EPARSE, "tag object: expected '%.*s' header",
					    (int)hl - 1, hdrs[h]);
		nl = memchr(raw + pos, '\n', len - pos);
		if (!nl)
			return tm_error_set(TM_EPARSE, "tag object: truncated header");
		vl = (size_t)(nl - (raw + pos)) - hl;
		const char *v = raw + pos + hl;
		switch (h) {
		case 0:
			if (!is_hex40(v, vl))
				return tm_error_set(TM_EPARSE, "tag object: invalid object id");
			memcpy(out->object, v, 40);
			out->object[40] = '\0';
			break;
		case 1:
			out->type = v;
			out->type_len = vl;
			break;
		case 2:
			if (vl == 0)
				return tm_error_set(TM_EPARSE, "tag object: empty tag name");
			out->name = v;
			out->name_len = vl;
			break;
		case 3:
			out->tagger = v;
			out->tagger_len = vl;
			out->tagger_time = parse_ident_time(v, vl);
			if (out->tagger_time < 0)
				return tm_error_set(TM_EPARSE, "tag object: malformed tagger line");
			break;
		}
		pos = (size_t)(nl - raw) + 1;
	}
	if (pos < len && raw[pos] != '\n')
		return tm_error_set(TM_EPARSE, "tag object: unexpected header after tagger");
	if (pos < len)
		pos++; /* the blank line */
	size_t sig_at = len;
	if ((r = split_signature(raw, len, pos, &sig_at, &out->sig_kind)) < 0)
		return TM_EPARSE;
	out->message = raw + pos;
	out->message_len = sig_at - pos;
	out->payload = raw;
	out->payload_len = sig_at;
	if (out->sig_kind) {
		out->signature = raw + sig_at;
		out->signature_len = len - sig_at;
	}
	return 0;
}

int tm_gitobj_parse_commit(struct tm_gitobj_commit *out, const char *raw, size_t len)
{
	struct tm_buf payload, sig;
	size_t pos = 0;
	int r = TM_EPARSE, seen_tree = 0;

	memset(out, 0, sizeof(*out));
	out->committer_time = -1;
	tm_buf_init(&payload, len + 1);
	tm_buf_init(&sig, len + 1);
	if (memchr(raw, '\0', len)) {
		tm_error_set(TM_EPARSE, "commit object contains a NUL byte");
		goto out;
	}
	while (pos < len && raw[pos] != '\n') {
		const char *nl = memchr(raw + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - raw) + 1 : len;

		if (!nl) {
			tm_error_set(TM_EPARSE, "commit object: truncated header");
			goto out;
		}
		if (starts(raw + pos, end - pos, "gpgsig ")) {
			if (sig.len) {
				tm_error_set(TM_EPARSE,
					     "commit object: more than one gpgsig header");
				goto out;
			}
			if (tm_buf_put(&sig, raw + pos + 7, end - pos - 7) < 0)
				goto out;
			pos = end;
			/* continuation lines start with one space */
			while (pos < len && raw[pos] == ' ') {
				nl = memchr(raw + pos, '\n', len - pos);
				end = nl ? (size_t)(nl - raw) + 1 : len;
				if (tm_buf_put(&sig, raw + pos + 1, end - pos - 1) < 0)
					goto out;
				pos = end;
			}
			continue;
		}
		if (starts(raw + pos, end - pos, "tree ")) {
			if (seen_tree || !is_hex40(raw + pos + 5, end - pos - 6)) {
				tm_error_set(TM_EPARSE, "commit object: bad tree header");
				goto out;
			}
			memcpy(out->tree, raw + pos + 5, 40);
			seen_tree = 1;
		} else if (starts(raw + pos, end - pos, "committer ")) {
			out->committer_time = parse_ident_time(raw + pos + 10, end - pos - 11);
		}
		if (tm_buf_put(&payload, raw + pos, end - pos) < 0)
			goto out;
		pos = end;
	}
	if (!seen_tree || out->committer_time < 0) {
		tm_error_set(TM_EPARSE, "commit object: missing tree or committer");
		goto out;
	}
	if (tm_buf_put(&payload, raw + pos, len - pos) < 0)
		goto out;
	out->payload_len = payload.len;
	out->payload = tm_buf_detach(&payload);
	if (sig.len) {
		out->signature_len = sig.len;
		out->signature = tm_buf_detach(&sig);
		out->sig_kind = strstr(out->signature, "-----BEGIN SSH SIGNATURE-----") ? 1
				: strstr(out->signature, "-----BEGIN PGP")              ? 2
											: 0;
	}
	if (!out->payload || (sig.len && !out->signature)) {
		tm_gitobj_commit_free(out);
		r = tm_error_nomem();
		goto out;
	}
	r = 0;
out:
	tm_buf_free(&payload);
	tm_buf_free(&sig);
	return r;
}

void tm_gitobj_commit_free(struct tm_gitobj_commit *c)
{
	free(c->payload);
	free(c->signature);
	c->payload = c->signature = NULL;
}
