/*
 * test_sshsig.c — SSHSIG verification and allowed_signers against
 * signatures made by the real ssh-keygen (tests/data/crypto/ssh, generated
 * by tests/data/crypto/make-fixtures.sh): every key type, tampering,
 * untrusted keys, namespaces, validity windows, malformed and truncated
 * blobs, and parse errors that name file and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/verify/sshsig.h"

#define DATA TM_TEST_DATA "/crypto/"
#define T_2026 INT64_C(1767225600) /* 2026-01-01T00:00:00Z */

static char *slurp(const char *rel, size_t *len)
{
	char path[1024];
	struct tm_buf b;

	snprintf(path, sizeof(path), "%s%s", DATA, rel);
	tm_buf_init(&b, 1 << 20);
	if (tm_file_read(&b, path, (1 << 20) - 1) != 0)
		fail_msg("cannot read %s: %s", path, tm_error_last());
	if (len)
		*len = b.len;
	return tm_buf_detach(&b);
}

/* The "type base64" part of a .pub file. */
static char *pubkey(const char *name)
{
	char rel[128];
	size_t len;
	char *s;

	snprintf(rel, sizeof(rel), "ssh/%s.pub", name);
	s = slurp(rel, &len);
	char *sp = strchr(s, ' ');
	assert_non_null(sp);
	sp = strchr(sp + 1, ' ');
	if (sp)
		*sp = '\0';
	return s;
}

static struct tm_sshsig_signers *signers_from(const char *text)
{
	struct tm_sshsig_signers *s = NULL;
	int r = tm_sshsig_signers_parse(&s, text, strlen(text), "test_signers");
	if (r != 0)
		fail_msg("parse failed: %s", tm_error_last());
	return s;
}

static struct tm_sshsig_signers *default_signers(void)
{
	struct tm_sshsig_signers *s = NULL;

	assert_int_equal(tm_sshsig_signers_load(&s, DATA "ssh/allowed_signers"), 0);
	assert_int_equal(tm_sshsig_signers_count(s), 4);
	return s;
}

static int verify_file(char **principal, const struct tm_sshsig_signers *s, const char *sigfile,
		       const char *msg, size_t msg_len, const char *ns, int64_t at)
{
	size_t len;
	char *sig = slurp(sigfile, &len);
	int r = tm_sshsig_verify(principal, s, sig, len, msg, msg_len, ns, at);
	free(sig);
	return r;
}

static void test_good_signatures(void **state)
{
	static const char *const keys[] = { "ed25519", "ecdsa256",       "ecdsa384",
					    "rsa",     "ed25519-sha256", "rsa-sha256" };
	struct tm_sshsig_signers *s = default_signers();
	size_t mlen;
	char *msg = slurp("message.txt", &mlen);

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char rel[128], want[64], *principal = NULL;
		snprintf(rel, sizeof(rel), "ssh/message.%s.sig", keys[i]);
		int r = verify_file(&principal, s, rel, msg, mlen, "git", T_2026);
		if (r != 0)
			fail_msg("%s: %s", keys[i], tm_error_last());
		snprintf(want, sizeof(want), "%.*s@example.com", (int)strcspn(keys[i], "-"),
			 keys[i]);
		assert_string_equal(principal, want);
		free(principal);
	}
	free(msg);
	tm_sshsig_signers_free(s);
}

static void test_tampered_payload(void **state)
{
	static const char *const keys[] = { "ed25519", "ecdsa256", "ecdsa384", "rsa" };
	struct tm_sshsig_signers *s = default_signers();
	size_t mlen;
	char *msg = slurp("message.txt", &mlen);

	(void)state;
	msg[7] ^= 1; /* one bit of the object id */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char rel[128], *principal = NULL;
		snprintf(rel, sizeof(rel), "ssh/message.%s.sig", keys[i]);
		assert_int_equal(verify_file(&principal, s, rel, msg, mlen, "git", 0), TM_EVERIFY);
		assert_string_equal(tm_error_last(), "signature does not verify");
		assert_null(principal);
	}
	msg[7] ^= 1;
	/* One byte more or less is a different message too. */
	char *principal = NULL;
	assert_int_equal(verify_file(&principal, s, "ssh/message.ed25519.sig", msg, mlen - 1, "git",
				     0),
			 TM_EVERIFY);
	free(msg);
	tm_sshsig_signers_free(s);
}

static void test_untrusted_key(void **state)
{
	struct tm_sshsig_signers *s = default_signers();
	size_t mlen;
	char *msg = slurp("message.txt", &mlen), *principal = NULL, want[256];
	char *fp = slurp("ssh/other.fp", NULL);

	(void)state;
	fp[strcspn(fp, "\n")] = '\0';
	assert_int_equal(verify_file(&principal, s, "ssh/message.other.sig", msg, mlen, "git", 0),
			 TM_EVERIFY);
	/* The fingerprint is the one ssh-keygen -l prints. */
	snprintf(want, sizeof(want), "signature by an untrusted key (%s)", fp);
	assert_string_equal(tm_error_last(), want);
	assert_null(principal);

	/* No signers at all: everything is untrusted. */
	struct tm_sshsig_signers *empty = signers_from("# nobody\n\n");
	assert_int_equal(tm_sshsig_signers_count(empty), 0);
	assert_int_equal(verify_file(&principal, empty, "ssh/message.ed25519.sig", msg, mlen, "git",
				     0),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "untrusted key"));
	tm_sshsig_signers_free(empty);
	free(fp);
	free(msg);
	tm_sshsig_signers_free(s);
}

static void test_fingerprint(void **state)
{
	struct tm_sshsig *sig = NULL;
	size_t len;
	char *armored = slurp("ssh/message.ed25519.sig", &len), *fp = slurp("ssh/ed25519.fp", NULL);

	(void)state;
	fp[strcspn(fp, "\n")] = '\0';
	assert_int_equal(tm_sshsig_parse_armored(&sig, armored, len), 0);
	assert_string_equal(tm_sshsig_fingerprint(sig), fp);
	assert_string_equal(tm_sshsig_namespace(sig), "git");
	assert_string_equal(tm_sshsig_hash_name(sig), "sha512");
	tm_sshsig_free(sig);
	free(fp);
	free(armored);
}

static void test_wrong_namespace(void **state)
{
	struct tm_sshsig_signers *s = default_signers();
	size_t mlen;
	char *msg = slurp("message.txt", &mlen), *principal = NULL;

	(void)state;
	assert_int_equal(verify_file(&principal, s, "ssh/message.ed25519-file.sig", msg, mlen,
				     "git", 0),
			 TM_EVERIFY);
	assert_string_equal(tm_error_last(), "signature namespace 'file' is not 'git'");
	/* The same signature is fine where "file" is expected. */
	assert_int_equal(verify_file(&principal, s, "ssh/message.ed25519-file.sig", msg, mlen,
				     "file", 0),
			 0);
	free(principal);
	free(msg);
	tm_sshsig_signers_free(s);
}

static int verify_with_line(char **principal, const char *principals, const char *options,
			    const char *key, const char *sigfile, int64_t at)
{
	char text[4096];
	size_t mlen;
	char *msg = slurp("message.txt", &mlen), *pk = pubkey(key);
	struct tm_sshsig_signers *s;
	int r;

	snprintf(text, sizeof(text), "%s %s%s%s\n", principals, options, *options ? " " : "", pk);
	s = signers_from(text);
	r = verify_file(principal, s, sigfile, msg, mlen, "git", at);
	tm_sshsig_signers_free(s);
	free(pk);
	free(msg);
	return r;
}

static void test_namespaces_option(void **state)
{
	char *principal = NULL;

	(void)state;
	assert_int_equal(verify_with_line(&principal, "a@x", "namespaces=\"file,email\"", "ed25519",
					  "ssh/message.ed25519.sig", 0),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "is not allowed to sign namespace 'git'"));
	assert_non_null(strstr(tm_error_last(), "test_signers:1"));
	assert_null(principal);

	assert_int_equal(verify_with_line(&principal, "a@x", "namespaces=\"file,git\"", "ed25519",
					  "ssh/message.ed25519.sig", 0),
			 0);
	assert_string_equal(principal, "a@x");
	free(principal);
	/* Patterns and case-insensitive option names. */
	assert_int_equal(verify_with_line(&principal, "a@x", "NameSpaces=\"g?t\"", "ed25519",
					  "ssh/message.ed25519.sig", 0),
			 0);
	free(principal);
	assert_int_equal(verify_with_line(&principal, "a@x", "namespaces=\"*,!git\"", "ed25519",
					  "ssh/message.ed25519.sig", 0),
			 TM_EVERIFY);

	/* A later line with the same key may allow what an earlier one does not. */
	size_t mlen;
	char *msg = slurp("message.txt", &mlen), *pk = pubkey("ecdsa256"), text[2048];
	snprintf(text, sizeof(text),
		 "first@x namespaces=\"file\" %s\nsecond@x,third@x %s comment here\n", pk, pk);
	struct tm_sshsig_signers *s = signers_from(text);
	assert_int_equal(verify_file(&principal, s, "ssh/message.ecdsa256.sig", msg, mlen, "git",
				     0),
			 0);
	assert_string_equal(principal, "second@x");
	free(principal);
	tm_sshsig_signers_free(s);
	free(pk);
	free(msg);
}

static void test_validity_window(void **state)
{
	char *principal = NULL;

	(void)state;
	assert_int_equal(verify_with_line(&principal, "a@x", "valid-after=\"20300101Z\"", "rsa",
					  "ssh/message.rsa.sig", T_2026),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "not yet valid"));
	/* at_time 0 skips the window. */
	assert_int_equal(verify_with_line(&principal, "a@x", "valid-after=\"20300101Z\"", "rsa",
					  "ssh/message.rsa.sig", 0),
			 0);
	free(principal);
	assert_int_equal(verify_with_line(&principal, "a@x", "valid-before=20251231235959Z",
					  "ecdsa384", "ssh/message.ecdsa384.sig", T_2026),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "has expired"));
	assert_int_equal(
		verify_with_line(&principal, "a@x",
				 "valid-after=202512312359Z,valid-before=\"20260101000000Z\"",
				 "ecdsa384", "ssh/message.ecdsa384.sig", T_2026),
		0);
	free(principal);
	/* Without Z the time is local, as in OpenSSH. */
	setenv("TZ", "UTC", 1);
	assert_int_equal(verify_with_line(&principal, "a@x", "valid-before=20260101", "ed25519",
					  "ssh/message.ed25519.sig", T_2026),
			 0);
	free(principal);
	assert_int_equal(verify_with_line(&principal, "a@x", "valid-before=20260101", "ed25519",
					  "ssh/message.ed25519.sig", T_2026 + 1),
			 TM_EVERIFY);
}

static void test_principals(void **state)
{
	char *principal = NULL;

	(void)state;
	assert_int_equal(verify_with_line(&principal, "\"Release Team <rel@x>\"", "", "ed25519",
					  "ssh/message.ed25519.sig", 0),
			 0);
	assert_string_equal(principal, "Release Team <rel@x>");
	free(principal);
	assert_int_equal(verify_with_line(&principal, "!bad@x,*@example.com", "", "ed25519",
					  "ssh/message.ed25519.sig", 0),
			 0);
	assert_string_equal(principal, "*@example.com");
	free(principal);
}

static void test_match_list(void **state)
{
	(void)state;
	assert_int_equal(tm_sshsig_match_list("git", "git"), 1);
	assert_int_equal(tm_sshsig_match_list("git", "file,git"), 1);
	assert_int_equal(tm_sshsig_match_list("git", "file"), 0);
	assert_int_equal(tm_sshsig_match_list("git", "*"), 1);
	assert_int_equal(tm_sshsig_match_list("git", "g*"), 1);
	assert_int_equal(tm_sshsig_match_list("git", "g?t"), 1);
	assert_int_equal(tm_sshsig_match_list("git", "g?"), 0);
	assert_int_equal(tm_sshsig_match_list("git", "*,!git"), -1);
	assert_int_equal(tm_sshsig_match_list("git", "!file"), 0);
	assert_int_equal(tm_sshsig_match_list("a@example.com", "*@example.com"), 1);
	assert_int_equal(tm_sshsig_match_list("a@example.org", "*@example.com"), 0);
	assert_int_equal(tm_sshsig_match_list("", "*"), 1);
	assert_int_equal(tm_sshsig_match_list("", ""), 0);
	assert_int_equal(tm_sshsig_match_list("Git", "git"), 0);
	assert_int_equal(tm_sshsig_match_list("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
					      "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c"),
			 0);
}

/* ---- malformed blobs ---- */

static size_t blob_of(unsigned char *out, size_t max, const char *sigfile)
{
	size_t len;
	char *armored = slurp(sigfile, &len);
	char *b = strstr(armored, "-----\n") + 6, *e = strstr(armored, "-----END");
	struct tm_buf d;

	tm_buf_init(&d, max + 1);
	assert_int_equal(tm_base64_decode(&d, b, (size_t)(e - b), TM_B64_SKIP_SPACE), 0);
	memcpy(out, d.ptr, d.len);
	len = d.len;
	tm_buf_free(&d);
	free(armored);
	return len;
}

static void test_truncated_blobs(void **state)
{
	static const char *const files[] = { "ssh/message.ed25519.sig", "ssh/message.ecdsa384.sig",
					     "ssh/message.rsa.sig" };
	unsigned char blob[4096], longer[4097];

	(void)state;
	for (size_t f = 0; f < 3; f++) {
		size_t len = blob_of(blob, sizeof(blob) - 1, files[f]);
		struct tm_sshsig *sig = NULL;

		assert_int_equal(tm_sshsig_parse_blob(&sig, blob, len), 0);
		tm_sshsig_free(sig);
		for (size_t cut = 0; cut < len; cut++) {
			assert_int_equal(tm_sshsig_parse_blob(&sig, blob, cut), TM_EPARSE);
			assert_null(sig);
		}
		memcpy(longer, blob, len);
		longer[len] = 0;
		assert_int_equal(tm_sshsig_parse_blob(&sig, longer, len + 1), TM_EPARSE);
		assert_non_null(strstr(tm_error_last(), "trailing"));
		/* Every length field made huge. */
		for (size_t i = 6; i + 4 <= len; i++) {
			memcpy(longer, blob, len);
			memset(longer + i, 0xff, 4);
			int r = tm_sshsig_parse_blob(&sig, longer, len);
			if (r == 0)
				tm_sshsig_free(sig); /* bytes inside a key or signature value */
		}
	}
}

/* Serialises an SSHSIG blob from parts, to build the cases ssh-keygen
 * does not produce. */
struct sshbuf_t {
	unsigned char b[8192];
	size_t n;
};

static void put_raw(struct sshbuf_t *b, const void *p, size_t len)
{
	assert_true(b->n + len <= sizeof(b->b));
	memcpy(b->b + b->n, p, len);
	b->n += len;
}

static void put_str(struct sshbuf_t *b, const void *p, size_t len)
{
	unsigned char l[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
			       (unsigned char)(len >> 8), (unsigned char)len };
	put_raw(b, l, 4);
	put_raw(b, p, len);
}

static size_t get_str(const unsigned char *p, const unsigned char **s)
{
	size_t l = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	*s = p + 4;
	return l;
}

/* Rebuilds the blob of sigfile with the given replacements (NULL = keep). */
static size_t rebuild(struct sshbuf_t *out, const char *sigfile, const char *version_hex,
		      const char *ns, const char *hash, const char *sigtype)
{
	unsigned char blob[4096];
	const unsigned char *p, *key, *nsp, *res, *alg, *sig, *st, *sb;
	size_t kl, nl, rl, al, stl, sbl;

	blob_of(blob, sizeof(blob), sigfile);
	p = blob + 10;
	kl = get_str(p, &key);
	p = key + kl;
	nl = get_str(p, &nsp);
	p = nsp + nl;
	rl = get_str(p, &res);
	p = res + rl;
	al = get_str(p, &alg);
	p = alg + al;
	(void)get_str(p, &sig);
	stl = get_str(sig, &st);
	sbl = get_str(st + stl, &sb);

	out->n = 0;
	put_raw(out, "SSHSIG", 6);
	put_raw(out, version_hex ? version_hex : "\0\0\0\1", 4);
	put_str(out, key, kl);
	put_str(out, ns ? ns : (const char *)nsp, ns ? strlen(ns) : nl);
	put_str(out, res, rl);
	put_str(out, hash ? hash : (const char *)alg, hash ? strlen(hash) : al);
	struct sshbuf_t inner = { .n = 0 };
	put_str(&inner, sigtype ? sigtype : (const char *)st, sigtype ? strlen(sigtype) : stl);
	put_str(&inner, sb, sbl);
	put_str(out, inner.b, inner.n);
	return out->n;
}

static void test_refused_blobs(void **state)
{
	struct sshbuf_t b;
	struct tm_sshsig *sig = NULL;

	(void)state;
	/* The rebuild helper itself reproduces a valid blob. */
	rebuild(&b, "ssh/message.rsa.sig", NULL, NULL, NULL, NULL);
	assert_int_equal(tm_sshsig_parse_blob(&sig, b.b, b.n), 0);
	tm_sshsig_free(sig);

	rebuild(&b, "ssh/message.rsa.sig", NULL, NULL, NULL, "ssh-rsa");
	assert_int_equal(tm_sshsig_parse_blob(&sig, b.b, b.n), TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "SHA-1"));

	rebuild(&b, "ssh/message.ed25519.sig", "\0\0\0\2", NULL, NULL, NULL);
	assert_int_equal(tm_sshsig_parse_blob(&sig, b.b, b.n), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "version 2"));

	rebuild(&b, "ssh/message.ed25519.sig", NULL, NULL, "sha1", NULL);
	assert_int_equal(tm_sshsig_parse_blob(&sig, b.b, b.n), TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "hash algorithm 'sha1'"));

	rebuild(&b, "ssh/message.ed25519.sig", NULL, "", NULL, NULL);
	assert_int_equal(tm_sshsig_parse_blob(&sig, b.b, b.n), TM_EPARSE);

	rebuild(&b, "ssh/message.ecdsa256.sig", NULL, NULL, NULL, "ecdsa-sha2-nistp384");
	assert_int_equal(tm_sshsig_parse_blob(&sig, b.b, b.n), TM_EPARSE);

	rebuild(&b, "ssh/message.ed25519.sig", NULL, NULL, NULL, "ssh-rsa");
	assert_int_equal(tm_sshsig_parse_blob(&sig, b.b, b.n), TM_EPARSE);

	/* Changing the hash algorithm named in the blob breaks the signature. */
	struct tm_sshsig_signers *s = default_signers();
	struct tm_buf arm;
	size_t mlen;
	char *msg = slurp("message.txt", &mlen), *principal = NULL;
	rebuild(&b, "ssh/message.ed25519.sig", NULL, NULL, "sha256", NULL);
	tm_buf_init(&arm, 1 << 16);
	assert_int_equal(tm_buf_puts(&arm, "-----BEGIN SSH SIGNATURE-----\n"), 0);
	assert_int_equal(tm_base64_encode(&arm, b.b, b.n, 0), 0);
	assert_int_equal(tm_buf_puts(&arm, "\n-----END SSH SIGNATURE-----\n"), 0);
	assert_int_equal(tm_sshsig_verify(&principal, s, arm.ptr, arm.len, msg, mlen, "git", 0),
			 TM_EVERIFY);
	assert_string_equal(tm_error_last(), "signature does not verify");
	tm_buf_free(&arm);
	tm_sshsig_signers_free(s);
	free(msg);
}

static void test_armor(void **state)
{
	struct tm_sshsig *sig = NULL;
	size_t len;
	char *a = slurp("ssh/message.ed25519.sig", &len);
	struct tm_buf b;

	(void)state;
	/* Leading and trailing whitespace and CRLF line ends are fine. */
	tm_buf_init(&b, 1 << 16);
	assert_int_equal(tm_buf_puts(&b, "\n  "), 0);
	for (size_t i = 0; i < len; i++) {
		if (a[i] == '\n')
			assert_int_equal(tm_buf_putc(&b, '\r'), 0);
		assert_int_equal(tm_buf_putc(&b, a[i]), 0);
	}
	assert_int_equal(tm_buf_puts(&b, "\n\n"), 0);
	assert_int_equal(tm_sshsig_parse_armored(&sig, b.ptr, b.len), 0);
	tm_sshsig_free(sig);
	tm_buf_free(&b);

	assert_int_equal(tm_sshsig_parse_armored(&sig, a, 0), TM_EPARSE);
	assert_int_equal(tm_sshsig_parse_armored(&sig, a, len - 10), TM_EPARSE); /* no END */
	assert_int_equal(tm_sshsig_parse_armored(&sig, a + 1, len - 1), TM_EPARSE);
	assert_int_equal(tm_sshsig_parse_armored(&sig, "-----BEGIN SSH SIGNATURE-----", 29),
			 TM_EPARSE);

	char *copy = malloc(len + 8);
	memcpy(copy, a, len);
	memcpy(copy + len, "junk\n", 5);
	assert_int_equal(tm_sshsig_parse_armored(&sig, copy, len + 5), TM_EPARSE);
	memcpy(copy, a, len);
	copy[40] = '*'; /* not base64 */
	assert_int_equal(tm_sshsig_parse_armored(&sig, copy, len), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "base64"));
	free(copy);

	/* The size cap: one byte over is refused before anything else. */
	char *big = calloc(1, TM_SSHSIG_MAX_ARMORED + 1);
	memset(big, ' ', TM_SSHSIG_MAX_ARMORED + 1);
	assert_int_equal(tm_sshsig_parse_armored(&sig, big, TM_SSHSIG_MAX_ARMORED + 1), TM_ELIMIT);
	assert_int_equal(tm_sshsig_parse_armored(&sig, big, TM_SSHSIG_MAX_ARMORED), TM_EPARSE);
	free(big);
	free(a);
}

/* ---- allowed_signers parse errors ---- */

static void expect_parse_error(const char *text, const char *want)
{
	struct tm_sshsig_signers *s = (void *)1;
	int r = tm_sshsig_signers_parse(&s, text, strlen(text), "test_signers");

	assert_int_equal(r, TM_EPARSE);
	assert_null(s);
	if (!strstr(tm_error_last(), want))
		fail_msg("error '%s' lacks '%s'", tm_error_last(), want);
}

static void test_signers_parse_errors(void **state)
{
	char *ed = pubkey("ed25519"), *ec = pubkey("ecdsa256"), *rsa1024 = pubkey("rsa1024");
	char *b64 = strchr(ed, ' ') + 1, *ecb64 = strchr(ec, ' ') + 1, text[4096];

	(void)state;
	snprintf(text, sizeof(text), "# c\n\na@x %s\nb@x foo=bar %s\n", ed, ed);
	expect_parse_error(text, "test_signers:4: unknown option 'foo'");
	snprintf(text, sizeof(text), "a@x cert-authority %s\n", ed);
	expect_parse_error(text, "test_signers:1: cert-authority is not supported");
	snprintf(text, sizeof(text), "a@x cert-authority,namespaces=\"git\" %s\n", ed);
	expect_parse_error(text, "cert-authority");
	expect_parse_error("a@x\n", "test_signers:1: missing key type");
	expect_parse_error("  \n\ta@x ssh-ed25519\n", "test_signers:2: missing base64 key");
	expect_parse_error("a@x ssh-dss AAAAB3NzaC1kc3M=\n", "unsupported key type 'ssh-dss'");
	expect_parse_error("a@x sk-ssh-ed25519@openssh.com AAAA\n", "unsupported key type");
	expect_parse_error("a@x ssh-ed25519-cert-v01@openssh.com AAAA\n", "certificate");
	expect_parse_error("a@x ssh-ed25519 AAAA!AAA\n", "test_signers:1: key: base64");
	snprintf(text, sizeof(text), "a@x ssh-ed25519 %s\n", ecb64);
	expect_parse_error(text, "does not match the key");
	snprintf(text, sizeof(text), "a@x namespaces=\"git %s\n", ed);
	expect_parse_error(text, "unterminated quote");
	snprintf(text, sizeof(text), "a@x valid-after=2026 %s\n", ed);
	expect_parse_error(text, "invalid time");
	snprintf(text, sizeof(text), "a@x valid-after=20261341 %s\n", ed);
	expect_parse_error(text, "invalid time");
	snprintf(text, sizeof(text), "a@x namespaces=\"git\",namespaces=\"file\" %s\n", ed);
	expect_parse_error(text, "given twice");
	snprintf(text, sizeof(text), "a@x namespaces %s\n", ed);
	expect_parse_error(text, "needs a value");
	snprintf(text, sizeof(text), "\"a@x %s\n", ed);
	expect_parse_error(text, "unterminated quote");
	snprintf(text, sizeof(text), "a@x %s\n", rsa1024);
	expect_parse_error(text, "test_signers:1: RSA key of 1024 bits is too small");
	/* A truncated key blob. */
	snprintf(text, sizeof(text), "a@x ssh-ed25519 %.48s\n", b64 + 12);
	expect_parse_error(text, "test_signers:1:");

	/* A valid file with comments, CRLF and a trailing comment per key. */
	snprintf(text, sizeof(text), "# head\r\n\r\n  a@x,b@y %s  my laptop\r\n", ed);
	struct tm_sshsig_signers *s = signers_from(text);
	assert_int_equal(tm_sshsig_signers_count(s), 1);
	tm_sshsig_signers_free(s);

	/* Missing file and size cap. */
	assert_int_equal(tm_sshsig_signers_load(&s, DATA "ssh/nonexistent"), TM_ENOTFOUND);
	char *big = malloc(TM_SSHSIG_MAX_SIGNERS_FILE + 1);
	memset(big, '#', TM_SSHSIG_MAX_SIGNERS_FILE + 1);
	assert_int_equal(tm_sshsig_signers_parse(&s, big, TM_SSHSIG_MAX_SIGNERS_FILE + 1, "big"),
			 TM_ELIMIT);
	assert_int_equal(tm_sshsig_signers_parse(&s, big, TM_SSHSIG_MAX_SIGNERS_FILE, "big"), 0);
	tm_sshsig_signers_free(s);
	free(big);
	free(ed);
	free(ec);
	free(rsa1024);
}

static void test_rsa1024_signature(void **state)
{
	struct tm_sshsig_signers *s = default_signers();
	size_t mlen;
	char *msg = slurp("message.txt", &mlen), *principal = NULL;

	(void)state;
	/* Not in the file (it cannot be), so untrusted. */
	assert_int_equal(verify_file(&principal, s, "ssh/message.rsa1024.sig", msg, mlen, "git", 0),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "untrusted key"));
	free(msg);
	tm_sshsig_signers_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_signatures),
		cmocka_unit_test(test_tampered_payload),
		cmocka_unit_test(test_untrusted_key),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_wrong_namespace),
		cmocka_unit_test(test_namespaces_option),
		cmocka_unit_test(test_validity_window),
		cmocka_unit_test(test_principals),
		cmocka_unit_test(test_match_list),
		cmocka_unit_test(test_truncated_blobs),
		cmocka_unit_test(test_refused_blobs),
		cmocka_unit_test(test_armor),
		cmocka_unit_test(test_signers_parse_errors),
		cmocka_unit_test(test_rsa1024_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
