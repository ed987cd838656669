/*
 * allowed_signers.c — the operator's allowed_signers file as OpenSSH reads it (ssh-keygen(1)
 * ALLOWED SIGNERS): principals patterns, options (namespaces, valid-after, valid-before,
 * cert-authority refused), one key a line; and OpenSSH's match_pattern_list. Part of the ssh
 * half of the verify stage (sshsig.c checks the signature against what this reads).
 */
#include "sshsig_internal.h"
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/time.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PATTERN 1024

/* ---- patterns (OpenSSH match_pattern / match_pattern_list) ---- */

/* Glob match of string against pattern[0..plen) with '*' and '?'. Iterative
 * with one backtrack point, so it is linear-ish, never exponential. */
static int match_pattern(const char *s, const char *p, size_t plen)
{
	size_t pi = 0, star = (size_t)-1;
	const char *mark = NULL;

	while (*s) {
		if (pi < plen && (p[pi] == '?' || p[pi] == *s)) {
			s++;
			pi++;
		} else if (pi < plen && p[pi] == '*') {
			star = pi++;
			mark = s;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			s = ++mark;
		} else {
			return 0;
		}
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

int tm_sshsig_match_list(const char *string, const char *list)
{
	int got_positive = 0;
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int negated = 0;
		const char *pat = p;
		size_t plen = len;

		if (plen > 0 && *pat == '!') {
			negated = 1;
			pat++;
			plen--;
		}
		/* Like OpenSSH, an over-long sub-pattern matches nothing. */
		if (plen < MAX_PATTERN && match_pattern(string, pat, plen)) {
			if (negated)
				return -1;
			got_positive = 1;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return got_positive;
}

/* ---- allowed_signers ---- */

void tm_sshsig_signers_free(struct tm_sshsig_signers *signers)
{
	if (!signers)
		return;
	for (size_t i = 0; i < signers->n; i++) {
		free(signers->v[i].principals);
		free(signers->v[i].namespaces);
		ssig_key_clear(&signers->v[i].key);
	}
	free(signers->v);
	free(signers->origin);
	free(signers);
}

size_t tm_sshsig_signers_count(const struct tm_sshsig_signers *signers)
{
	return signers ? signers->n : 0;
}

/* The cursor over one line of the file. */
struct line {
	const char *p, *end;
};

static void skip_ws(struct line *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t'))
		l->p++;
}

/* A whitespace-delimited token; double quotes protect spaces (and are
 * kept in the token). 1 when the line has no more tokens. */
static int next_token(struct line *l, const char **tok, size_t *len)
{
	int quoted = 0;
	const char *start;

	skip_ws(l);
	start = l->p;
	while (l->p < l->end && (quoted || (*l->p != ' ' && *l->p != '\t'))) {
		if (*l->p == '"')
			quoted = !quoted;
		l->p++;
	}
	if (quoted)
		return tm_error_set(TM_EPARSE, "unterminated quote");
	*tok = start;
	*len = (size_t)(l->p - start);
	return *len ? 0 : 1;
}

char *ssig_dup_str(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

/* YYYYMMDD[HHMM[SS]][Z]: with Z in UTC, without it in local time, as
 * OpenSSH reads it. */
static int parse_time(int64_t *out, const char *s, size_t len)
{
	int v[6] = { 0, 1, 1, 0, 0, 0 };
	static const int width[6] = { 4, 2, 2, 2, 2, 2 };
	int utc = 0;
	size_t digits, pos = 0;

	if (len > 0 && (s[len - 1] == 'Z' || s[len - 1] == 'z')) {
		utc = 1;
		len--;
	}
	digits = len;
	if (digits != 8 && digits != 12 && digits != 14)
		return tm_error_set(TM_EPARSE, "invalid time '%.*s' (YYYYMMDD[HHMM[SS]][Z])",
				    (int)(len > 32 ? 32 : len), s);
	for (int f = 0; f < 6 && pos < digits; f++) {
		int x = 0;
		for (int k = 0; k < width[f]; k++, pos++) {
			if (s[pos] < '0' || s[pos] > '9')
				return tm_error_set(TM_EPARSE, "invalid time '%.*s'", (int)digits,
						    s);
			x = x * 10 + (s[pos] - '0');
		}
		v[f] = x;
	}
	if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
	    v[2] > tm_time_days_in_month(v[0], v[1]) || v[3] > 23 || v[4] > 59 || v[5] > 59)
		return tm_error_set(TM_EPARSE, "invalid time '%.*s'", (int)digits, s);
	if (utc) {
		*out = tm_time_days_from_civil(v[0], (unsigned)v[1], (unsigned)v[2]) * 86400 +
		       v[3] * 3600 + v[4] * 60 + v[5];
		return 0;
	}
	struct tm tm = { 0 };
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	if (t == (time_t)-1)
		return tm_error_set(TM_EPARSE, "invalid time '%.*s'", (int)digits, s);
	*out = (int64_t)t;
	return 0;
}

/* Option value: "quoted" (quotes removed) or bare. */
static int option_value(char **out, const char *v, size_t len)
{
	if (len >= 1 && v[0] == '"') {
		if (len < 2 || v[len - 1] != '"' || memchr(v + 1, '"', len - 2))
			return tm_error_set(TM_EPARSE, "badly quoted option value");
		v++;
		len -= 2;
	} else if (memchr(v, '"', len)) {
		return tm_error_set(TM_EPARSE, "badly quoted option value");
	}
	if (len == 0)
		return tm_error_set(TM_EPARSE, "empty option value");
	if (!(*out = ssig_dup_str(v, len)))
		return tm_error_nomem();
	return 0;
}

static int opt_is(const char *opt, size_t len, const char *name)
{
	size_t nl = strlen(name);

	if (len != nl)
		return 0;
	for (size_t i = 0; i < nl; i++) {
		char c = opt[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != name[i])
			return 0;
	}
	return 1;
}

static int parse_options(struct signer *sg, const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	int have_after = 0, have_before = 0, ret;

	while (p < end) {
		const char *opt = p, *eq = NULL;
		int quoted = 0;
		char *val = NULL;

		while (p < end && (quoted || *p != ',')) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '=' && !eq && !quoted)
				eq = p;
			p++;
		}
		size_t olen = (size_t)(p - opt);
		size_t nlen = eq ? (size_t)(eq - opt) : olen;
		if (p < end)
			p++; /* the comma */
		if (olen == 0)
			return tm_error_set(TM_EPARSE, "empty option");
		if (opt_is(opt, nlen, "cert-authority"))
			return tm_error_set(
				TM_EPARSE,
				"cert-authority is not supported: certificates are refused, list "
				"the keys");
		int is_ns = opt_is(opt, nlen, "namespaces");
		int is_after = opt_is(opt, nlen, "valid-after");
		int is_before = opt_is(opt, nlen, "valid-before");
		if (!is_ns && !is_after && !is_before)
			return tm_error_set(TM_EPARSE, "unknown option '%.*s'",
					    (int)(nlen > 64 ? 64 : nlen), opt);
		if (!eq)
			return tm_error_set(TM_EPARSE, "option '%.*s' needs a value", (int)nlen,
					    opt);
		if ((is_ns && sg->namespaces) || (is_after && have_after) ||
		    (is_before && have_before))
			return tm_error_set(TM_EPARSE, "option '%.*s' given twice", (int)nlen, opt);
		if ((ret = option_value(&val, eq + 1, (size_t)(opt + olen - eq - 1))) < 0)
			return ret;
		if (is_ns) {
			sg->namespaces = val;
			continue;
		}
		ret = parse_time(is_after ? &sg->valid_after : &sg->valid_before, val, strlen(val));
		free(val);
		if (ret < 0)
			return ret;
		if (is_after)
			have_after = 1;
		else
			have_before = 1;
	}
	return 0;
}

/* Names that start a key rather than an options field. */
static int looks_like_key_type(const char *t, size_t len)
{
	static const char *const prefixes[] = { "ssh-", "ecdsa-", "sk-", "rsa-", "x509v3-" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		if (len > pl && memcmp(t, prefixes[i], pl) == 0 && !memchr(t, '=', len))
			return 1;
	}
	return 0;
}

static int parse_signer_line(struct signer *sg, struct line *l)
{
	const char *tok, *ktype, *kb64;
	size_t tlen, klen, blen;
	struct tm_buf blob;
	int ret;

	/* principals: a pattern list, optionally in double quotes */
	if ((ret = next_token(l, &tok, &tlen)) != 0)
		return ret < 0 ? ret : tm_error_set(TM_EPARSE, "missing principals");
	if (tok[0] == '"') {
		if (tlen < 3 || tok[tlen - 1] != '"' || memchr(tok + 1, '"', tlen - 2))
			return tm_error_set(TM_EPARSE, "badly quoted principals");
		tok++;
		tlen -= 2;
	} else if (memchr(tok, '"', tlen)) {
		return tm_error_set(TM_EPARSE, "badly quoted principals");
	}
	if (!(sg->principals = ssig_dup_str(tok, tlen)))
		return tm_error_nomem();

	if ((ret = next_token(l, &ktype, &klen)) != 0)
		return ret < 0 ? ret : tm_error_set(TM_EPARSE, "missing key type");
	if (!looks_like_key_type(ktype, klen)) {
		if ((ret = parse_options(sg, ktype, klen)) < 0)
			return ret;
		if ((ret = next_token(l, &ktype, &klen)) != 0)
			return ret < 0 ? ret : tm_error_set(TM_EPARSE, "missing key type");
	}
	if ((ret = next_token(l, &kb64, &blen)) != 0)
		return ret < 0 ? ret : tm_error_set(TM_EPARSE, "missing base64 key");
	/* the rest of the line is a comment */

	if (ssig_is_cert_type(ktype, klen))
		return tm_error_set(TM_EPARSE, "certificate keys are not supported");
	if (!(klen == 11 && memcmp(ktype, "ssh-ed25519", 11) == 0) &&
	    !(klen == 19 && (memcmp(ktype, "ecdsa-sha2-nistp256", 19) == 0 ||
			     memcmp(ktype, "ecdsa-sha2-nistp384", 19) == 0)) &&
	    !(klen == 7 && memcmp(ktype, "ssh-rsa", 7) == 0))
		return tm_error_set(TM_EPARSE, "unsupported key type '%.*s'",
				    (int)(klen > 64 ? 64 : klen), ktype);
	tm_buf_init(&blob, MAX_BLOB);
	if ((ret = tm_base64_decode(&blob, kb64, blen, 0)) < 0) {
		tm_buf_free(&blob);
		return tm_error_wrap(TM_EPARSE, "key");
	}
	ret = ssig_key_parse(&sg->key, (const unsigned char *)blob.ptr, blob.len);
	tm_buf_free(&blob);
	if (ret < 0)
		return ret == TM_ENOMEM ? ret : TM_EPARSE;
	if (strlen(ssig_key_type_name(sg->key.type)) != klen ||
	    memcmp(ssig_key_type_name(sg->key.type), ktype, klen) != 0)
		return tm_error_set(TM_EPARSE, "key type '%.*s' does not match the key (%s)",
				    (int)klen, ktype, ssig_key_type_name(sg->key.type));
	if (sg->key.type == KEY_RSA && tm_crypto_bits(sg->key.b, sg->key.b_len) < TM_RSA_MIN_BITS)
		return tm_error_set(TM_EPARSE,
				    "RSA key of %zu bits is too small (at least %d required)",
				    tm_crypto_bits(sg->key.b, sg->key.b_len), TM_RSA_MIN_BITS);
	return 0;
}

int tm_sshsig_signers_parse(struct tm_sshsig_signers **out, const char *text, size_t len,
			    const char *origin)
{
	struct tm_sshsig_signers *ss;
	const char *p = text, *end = text + len;
	size_t lineno = 0;
	int ret = 0;

	*out = NULL;
	if (!origin)
		origin = "allowed_signers";
	if (len > TM_SSHSIG_MAX_SIGNERS_FILE)
		return tm_error_set(TM_ELIMIT, "%s: larger than %d bytes", origin,
				    TM_SSHSIG_MAX_SIGNERS_FILE);
	if (!(ss = calloc(1, sizeof(*ss))) ||
	    !(ss->origin = ssig_dup_str(origin, strlen(origin)))) {
		free(ss);
		return tm_error_nomem();
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct line l = { p, nl ? nl : end };

		lineno++;
		p = nl ? nl + 1 : end;
		if (l.end > l.p && l.end[-1] == '\r')
			l.end--;
		skip_ws(&l);
		if (l.p == l.end || *l.p == '#')
			continue;
		if (memchr(l.p, '\0', (size_t)(l.end - l.p))) {
			ret = tm_error_set(TM_EPARSE, "%s:%zu: NUL byte in line", origin, lineno);
			goto fail;
		}
		if (ss->n == ss->cap) {
			size_t ncap = ss->cap ? ss->cap * 2 : 8;
			struct signer *nv = realloc(ss->v, ncap * sizeof(*nv));
			if (!nv) {
				ret = tm_error_nomem();
				goto fail;
			}
			ss->v = nv;
			ss->cap = ncap;
		}
		struct signer *sg = &ss->v[ss->n++];
		memset(sg, 0, sizeof(*sg));
		sg->line = lineno;
		if ((ret = parse_signer_line(sg, &l)) < 0) {
			if (ret != TM_ENOMEM)
				ret = tm_error_wrap(TM_EPARSE, "%s:%zu", origin, lineno);
			goto fail;
		}
	}
	*out = ss;
	return 0;
fail:
	tm_sshsig_signers_free(ss);
	return ret;
}

int tm_sshsig_signers_load(struct tm_sshsig_signers **out, const char *path)
{
	struct tm_buf b;
	int ret;

	*out = NULL;
	tm_buf_init(&b, TM_SSHSIG_MAX_SIGNERS_FILE + 1);
	ret = tm_file_read(&b, path, TM_SSHSIG_MAX_SIGNERS_FILE);
	if (ret == 0)
		ret = tm_sshsig_signers_parse(out, b.ptr ? b.ptr : "", b.len, path);
	else if (ret != TM_ENOTFOUND && ret != TM_ELIMIT)
		ret = tm_error_wrap(ret, "allowed signers");
	tm_buf_free(&b);
	return ret;
}
