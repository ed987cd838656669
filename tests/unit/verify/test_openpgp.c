/*
 * test_openpgp.c — OpenPGP verification against keys and signatures made
 * by the real gpg (tests/data/crypto/pgp, from make-fixtures.sh): RSA 3072
 * and Ed25519, a signing subkey, expiry, refusals (tampered, unknown key,
 * SHA-1, text mode, unknown critical subpacket), armor and packet framing
 * (CRC24, old and new headers, partial lengths, truncation at every byte).
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
#include "tagmoor/verify/openpgp.h"

#define DATA TM_TEST_DATA "/crypto/"

static char *slurp(const char *rel, size_t *len)
{
	char path[1024];
	struct tm_buf b;

	snprintf(path, sizeof(path), "%s%s", DATA, rel);
	tm_buf_init(&b, 1 << 21);
	if (tm_file_read(&b, path, (1 << 21) - 1) != 0)
		fail_msg("cannot read %s: %s", path, tm_error_last());
	if (len)
		*len = b.len;
	return tm_buf_detach(&b);
}

static struct tm_pgp_keyring *keyring(const char *rel)
{
	struct tm_pgp_keyring *kr = NULL;
	char path[1024];

	snprintf(path, sizeof(path), "%s%s", DATA, rel);
	if (tm_pgp_keyring_load(&kr, path) != 0)
		fail_msg("keyring %s: %s", rel, tm_error_last());
	return kr;
}

struct msg {
	char *p;
	size_t len;
};

static struct msg message(void)
{
	struct msg m;
	m.p = slurp("message.txt", &m.len);
	return m;
}

static int verify_buf(char **signer, int64_t *t, const struct tm_pgp_keyring *kr, const char *sig,
		      size_t sig_len, const struct msg *m, int64_t at)
{
	return tm_pgp_verify(signer, t, kr, sig, sig_len, m->p, m->len, at);
}

static int verify_file(char **signer, int64_t *t, const struct tm_pgp_keyring *kr,
		       const char *sigfile, const struct msg *m, int64_t at)
{
	size_t len;
	char *sig = slurp(sigfile, &len);
	int r = verify_buf(signer, t, kr, sig, len, m, at);
	free(sig);
	return r;
}

static void expect_good(const struct tm_pgp_keyring *kr, const char *sigfile, const char *who,
			int64_t at)
{
	struct msg m = message();
	char *signer = NULL;
	int64_t t = 0;

	if (verify_file(&signer, &t, kr, sigfile, &m, at) != 0)
		fail_msg("%s: %s", sigfile, tm_error_last());
	assert_string_equal(signer, who);
	assert_true(t > 1700000000);
	free(signer);
	free(m.p);
}

static void expect_refused(const struct tm_pgp_keyring *kr, const char *sigfile, int code,
			   const char *want, int64_t at)
{
	struct msg m = message();
	char *signer = (char *)1;
	int64_t t = 1;
	int r = verify_file(&signer, &t, kr, sigfile, &m, at);

	if (r != code || !strstr(tm_error_last(), want))
		fail_msg("%s: got %d '%s', want %d '%s'", sigfile, r, tm_error_last(), code, want);
	assert_null(signer);
	assert_int_equal(t, 0);
	free(m.p);
}

static void test_keyring(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");

	(void)state;
	assert_int_equal(tm_pgp_keyring_count(kr), 4);
	tm_pgp_keyring_free(kr);
	kr = keyring("pgp/key-rsa.gpg"); /* binary export */
	assert_int_equal(tm_pgp_keyring_count(kr), 1);
	tm_pgp_keyring_free(kr);
	assert_int_equal(tm_pgp_keyring_load(&kr, DATA "pgp/nonexistent.asc"), TM_ENOTFOUND);
	assert_null(kr);
	tm_pgp_keyring_free(NULL);
}

static void test_good_rsa(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	struct msg m = message();
	char *signer = NULL, *created = slurp("pgp/message.rsa.created", NULL);
	int64_t t = 0;

	(void)state;
	expect_good(kr, "pgp/message.rsa.asc", "Release <release@example.com>", 0);
	expect_good(kr, "pgp/message.rsa-sha512.asc", "Release <release@example.com>", 0);
	/* The creation time is the one gpg --list-packets shows. */
	assert_int_equal(verify_file(&signer, &t, kr, "pgp/message.rsa.asc", &m, 0), 0);
	assert_int_equal(t, strtoll(created, NULL, 10));
	free(signer);
	/* From the binary keyring as well. */
	struct tm_pgp_keyring *bin = keyring("pgp/key-rsa.gpg");
	expect_good(bin, "pgp/message.rsa.asc", "Release <release@example.com>", 0);
	tm_pgp_keyring_free(bin);
	free(created);
	free(m.p);
	tm_pgp_keyring_free(kr);
}

static void test_good_ed25519(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");

	(void)state;
	/* The key has two user IDs; the one flagged primary is reported. */
	expect_good(kr, "pgp/message.ed.asc", "Release <release@example.com>", 0);
	expect_good(kr, "pgp/message.ed-sha384.asc", "Release <release@example.com>", 0);
	/* Made by a signing subkey; reported as its primary's user ID. */
	expect_good(kr, "pgp/message.sub.asc", "Subkey Signer <sub@example.com>", 0);
	tm_pgp_keyring_free(kr);
	/* The single-key file is enough. */
	kr = keyring("pgp/key-ed.asc");
	expect_good(kr, "pgp/message.ed.asc", "Release <release@example.com>", 0);
	expect_refused(kr, "pgp/message.rsa.asc", TM_EVERIFY, "unknown key", 0);
	tm_pgp_keyring_free(kr);
}

static void test_tampered(void **state)
{
	static const char *const sigs[] = { "pgp/message.rsa.asc", "pgp/message.ed.asc",
					    "pgp/message.sub.asc", "pgp/message.rsa-sha512.asc" };
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	struct msg m = message();

	(void)state;
	m.p[m.len - 2] ^= 0x01;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		char *signer = NULL;
		int64_t t;
		assert_int_equal(verify_file(&signer, &t, kr, sigs[i], &m, 0), TM_EVERIFY);
		assert_string_equal(tm_error_last(), "signature does not verify");
		assert_null(signer);
	}
	free(m.p);
	tm_pgp_keyring_free(kr);
}

static void test_unknown_key(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	char *fpr = slurp("pgp/key-other.fpr", NULL), want[128];

	(void)state;
	fpr[strcspn(fpr, "\n")] = '\0';
	snprintf(want, sizeof(want), "signature by an unknown key (fingerprint %s)", fpr);
	expect_refused(kr, "pgp/message.other.asc", TM_EVERIFY, want, 0);
	free(fpr);
	tm_pgp_keyring_free(kr);
}

static void test_refused_algorithms(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");

	(void)state;
	expect_refused(kr, "pgp/message.rsa-sha1.asc", TM_EVERIFY, "SHA-1 signatures are refused",
		       0);
	expect_refused(kr, "pgp/message.ed-text.asc", TM_EVERIFY, "type 0x01", 0);
	tm_pgp_keyring_free(kr);
}

static void test_expiry(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	struct msg m = message();
	char *signer = NULL;
	int64_t t = 0;

	(void)state;
	/* A key expiring two days after creation: fine then, refused later. */
	assert_int_equal(verify_file(&signer, &t, kr, "pgp/message.exp.asc", &m, 0), 0);
	assert_string_equal(signer, "Expiring <exp@example.com>");
	free(signer);
	expect_good(kr, "pgp/message.exp.asc", "Expiring <exp@example.com>", t + 86400);
	expect_refused(kr, "pgp/message.exp.asc", TM_EVERIFY, "has expired", t + 3 * 86400);

	/* A signature that expires one day after it was made. */
	expect_good(kr, "pgp/message.ed-sigexp.asc", "Release <release@example.com>", t + 3600);
	expect_refused(kr, "pgp/message.ed-sigexp.asc", TM_EVERIFY, "signature has expired",
		       t + 2 * 86400);
	/* Keys that never expire do not. */
	expect_good(kr, "pgp/message.ed.asc", "Release <release@example.com>", t + 100 * 86400);
	free(m.p);
	tm_pgp_keyring_free(kr);
}

/* ---- re-armoring, to exercise framing ---- */

static uint32_t crc24(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xb704ce;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint32_t)p[i] << 16;
		for (int b = 0; b < 8; b++) {
			crc <<= 1;
			if (crc & 0x1000000)
				crc ^= 0x1864cfb;
		}
	}
	return crc & 0xffffff;
}

static void armor(struct tm_buf *out, const char *label, const unsigned char *p, size_t len,
		  int with_crc)
{
	tm_buf_reset(out);
	assert_int_equal(tm_buf_printf(out, "-----BEGIN PGP %s-----\nComment: test\n\n", label), 0);
	assert_int_equal(tm_base64_encode(out, p, len, 0), 0);
	assert_int_equal(tm_buf_putc(out, '\n'), 0);
	if (with_crc) {
		uint32_t c = crc24(p, len);
		unsigned char cb[3] = { (unsigned char)(c >> 16), (unsigned char)(c >> 8),
					(unsigned char)c };
		assert_int_equal(tm_buf_putc(out, '='), 0);
		assert_int_equal(tm_base64_encode(out, cb, 3, 0), 0);
		assert_int_equal(tm_buf_putc(out, '\n'), 0);
	}
	assert_int_equal(tm_buf_printf(out, "-----END PGP %s-----\n", label), 0);
}

/* The binary packets of an armored fixture. */
static size_t packets_of(unsigned char *out, size_t max, const char *rel)
{
	size_t len;
	char *a = slurp(rel, &len);
	char *b = strstr(a, "\n\n") + 2, *e = strstr(b, "\n=");
	struct tm_buf d;

	tm_buf_init(&d, max + 1);
	assert_int_equal(tm_base64_decode(&d, b, (size_t)(e - b), TM_B64_SKIP_SPACE), 0);
	memcpy(out, d.ptr, d.len);
	len = d.len;
	tm_buf_free(&d);
	free(a);
	return len;
}

/* The body of the first packet of a binary buffer (old or new header). */
static size_t body_of(const unsigned char *p, size_t len, const unsigned char **body)
{
	size_t hl, bl;

	assert_true(len >= 2 && (p[0] & 0x80));
	if (p[0] & 0x40) {
		assert_true(p[1] < 192);
		hl = 2;
		bl = p[1];
	} else if ((p[0] & 3) == 0) {
		hl = 2;
		bl = p[1];
	} else {
		assert_int_equal(p[0] & 3, 1);
		hl = 3;
		bl = (size_t)p[1] << 8 | p[2];
	}
	assert_int_equal(hl + bl, len);
	*body = p + hl;
	return bl;
}

static void test_packet_headers(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	struct msg m = message();
	unsigned char bin[4096], pkt[4200];
	const unsigned char *body;
	size_t len = packets_of(bin, sizeof(bin), "pgp/message.ed.asc"), bl;
	struct tm_buf a;
	char *signer = NULL;
	int64_t t;

	(void)state;
	tm_buf_init(&a, 1 << 16);
	bl = body_of(bin, len, &body);

	/* Re-armored with our CRC, and without any CRC line. */
	armor(&a, "SIGNATURE", bin, len, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), 0);
	free(signer);
	armor(&a, "SIGNATURE", bin, len, 0);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), 0);
	free(signer);

	/* New-format header, one-octet and two-octet lengths. */
	pkt[0] = 0xc2;
	pkt[1] = (unsigned char)bl;
	memcpy(pkt + 2, body, bl);
	armor(&a, "SIGNATURE", pkt, bl + 2, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), 0);
	free(signer);
	/* five-octet length */
	pkt[1] = 0xff;
	pkt[2] = pkt[3] = pkt[4] = 0;
	pkt[5] = (unsigned char)bl;
	memcpy(pkt + 6, body, bl);
	armor(&a, "SIGNATURE", pkt, bl + 6, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), 0);
	free(signer);
	/* Old format with a four-octet length. */
	pkt[0] = 0x8a;
	pkt[1] = pkt[2] = pkt[3] = 0;
	pkt[4] = (unsigned char)bl;
	memcpy(pkt + 5, body, bl);
	armor(&a, "SIGNATURE", pkt, bl + 5, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), 0);
	free(signer);

	/* Partial lengths are refused. */
	pkt[0] = 0xc2;
	pkt[1] = 0xe0 | 5; /* 32 bytes, partial */
	memcpy(pkt + 2, body, bl);
	armor(&a, "SIGNATURE", pkt, bl + 2, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "partial"));
	/* Indeterminate old-format length too. */
	pkt[0] = 0x8b;
	memcpy(pkt + 1, body, bl);
	armor(&a, "SIGNATURE", pkt, bl + 1, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), TM_EPARSE);

	/* Two signature packets, and a non-signature packet. */
	memcpy(pkt, bin, len);
	memcpy(pkt + len, bin, len);
	armor(&a, "SIGNATURE", pkt, 2 * len, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), TM_EPARSE);
	pkt[0] = 0xcd; /* user ID */
	pkt[1] = 3;
	memcpy(pkt + 2, "abc", 3);
	armor(&a, "SIGNATURE", pkt, 5, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), TM_EPARSE);
	tm_buf_free(&a);
	free(m.p);
	tm_pgp_keyring_free(kr);
}

static void test_truncated_signature(void **state)
{
	static const char *const files[] = { "pgp/message.ed.asc", "pgp/message.rsa.asc" };
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	struct msg m = message();
	unsigned char bin[4096], pkt[4200];
	const unsigned char *body;
	struct tm_buf a;

	(void)state;
	tm_buf_init(&a, 1 << 16);
	for (size_t f = 0; f < 2; f++) {
		size_t len = packets_of(bin, sizeof(bin), files[f]);
		size_t bl = body_of(bin, len, &body);
		char *signer = NULL;
		int64_t t;

		/* Cut anywhere: the packet is shorter than its header says. */
		for (size_t cut = 0; cut < len; cut++) {
			armor(&a, "SIGNATURE", bin, cut, 1);
			assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0),
					 TM_EPARSE);
			assert_null(signer);
		}
		/* A consistent header around a cut body: the fields run short. */
		for (size_t cut = 0; cut < bl; cut++) {
			pkt[0] = 0xc2;
			pkt[1] = 0xff;
			pkt[2] = pkt[3] = 0;
			pkt[4] = (unsigned char)(cut >> 8);
			pkt[5] = (unsigned char)cut;
			memcpy(pkt + 6, body, cut);
			armor(&a, "SIGNATURE", pkt, cut + 6, 1);
			int r = verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0);
			if (r != TM_EPARSE)
				fail_msg("cut %zu: %d %s", cut, r, tm_error_last());
		}
		/* A trailing byte inside the packet. */
		pkt[0] = 0xc2;
		pkt[1] = 0xff;
		pkt[2] = pkt[3] = 0;
		pkt[4] = (unsigned char)((bl + 1) >> 8);
		pkt[5] = (unsigned char)(bl + 1);
		memcpy(pkt + 6, body, bl);
		pkt[6 + bl] = 0;
		armor(&a, "SIGNATURE", pkt, bl + 7, 1);
		assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), TM_EPARSE);
		assert_non_null(strstr(tm_error_last(), "trailing"));
	}
	tm_buf_free(&a);
	free(m.p);
	tm_pgp_keyring_free(kr);
}

static void test_unknown_critical_subpacket(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	struct msg m = message();
	unsigned char bin[4096], pkt[4200];
	const unsigned char *body;
	size_t len = packets_of(bin, sizeof(bin), "pgp/message.ed.asc");
	size_t bl = body_of(bin, len, &body), hl = (size_t)body[4] << 8 | body[5];
	struct tm_buf a;
	char *signer = NULL;
	int64_t t;

	(void)state;
	/* Hashed area + a critical subpacket of unknown type 100. */
	size_t n = 0;
	pkt[n++] = 0xc2;
	pkt[n++] = (unsigned char)(bl + 3);
	memcpy(pkt + n, body, 4);
	n += 4;
	pkt[n++] = (unsigned char)((hl + 3) >> 8);
	pkt[n++] = (unsigned char)(hl + 3);
	memcpy(pkt + n, body + 6, hl);
	n += hl;
	pkt[n++] = 2;
	pkt[n++] = 0x80 | 100;
	pkt[n++] = 0;
	memcpy(pkt + n, body + 6 + hl, bl - 6 - hl);
	n += bl - 6 - hl;
	tm_buf_init(&a, 1 << 16);
	armor(&a, "SIGNATURE", pkt, n, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "unknown critical subpacket (type 100)"));
	/* Not critical: the signature is merely broken (the hash changed). */
	pkt[8 + hl + 1] = 100;
	armor(&a, "SIGNATURE", pkt, n, 1);
	assert_int_equal(verify_buf(&signer, &t, kr, a.ptr, a.len, &m, 0), TM_EVERIFY);
	assert_string_equal(tm_error_last(), "signature does not verify");
	tm_buf_free(&a);
	free(m.p);
	tm_pgp_keyring_free(kr);
}

static void test_armor_errors(void **state)
{
	struct tm_pgp_keyring *kr = keyring("pgp/keyring.asc");
	struct msg m = message();
	size_t len;
	char *sig = slurp("pgp/message.ed.asc", &len), *signer = NULL;
	int64_t t;

	(void)state;
	/* CRC mismatch */
	char *crc = strstr(sig, "\n=") + 2;
	char saved = crc[0];
	crc[0] = crc[0] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_buf(&signer, &t, kr, sig, len, &m, 0), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "CRC24"));
	crc[0] = saved;
	/* Not armored; no END; trailing junk; a key block where a signature belongs. */
	assert_int_equal(verify_buf(&signer, &t, kr, "hello", 5, &m, 0), TM_EPARSE);
	assert_int_equal(verify_buf(&signer, &t, kr, sig, len - 12, &m, 0), TM_EPARSE);
	char *junk = malloc(len + 6);
	memcpy(junk, sig, len);
	memcpy(junk + len, "junk\n", 5);
	assert_int_equal(verify_buf(&signer, &t, kr, junk, len + 5, &m, 0), TM_EPARSE);
	free(junk);
	size_t klen;
	char *key = slurp("pgp/key-ed.asc", &klen);
	assert_int_equal(verify_buf(&signer, &t, kr, key, klen, &m, 0), TM_EPARSE);
	/* The size cap. */
	char *big = malloc(TM_PGP_MAX_ARMORED_SIG + 1);
	memset(big, ' ', TM_PGP_MAX_ARMORED_SIG + 1);
	assert_int_equal(verify_buf(&signer, &t, kr, big, TM_PGP_MAX_ARMORED_SIG + 1, &m, 0),
			 TM_ELIMIT);
	free(big);
	/* No keyring at all: every key is unknown. */
	assert_int_equal(verify_buf(&signer, &t, NULL, sig, len, &m, 0), TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "unknown key"));
	free(key);
	free(sig);
	free(m.p);
	tm_pgp_keyring_free(kr);
}

static void test_keyring_errors(void **state)
{
	struct tm_pgp_keyring *kr = NULL;
	unsigned char bin[8192];
	size_t len;
	char *asc = slurp("pgp/key-rsa.gpg", &len);

	(void)state;
	assert_true(len <= sizeof(bin));
	memcpy(bin, asc, len);
	free(asc);
	/* Truncated anywhere: malformed, or (at a packet boundary) shorter. */
	for (size_t cut = 1; cut < len; cut++) {
		int r = tm_pgp_keyring_parse(&kr, bin, cut, "cut");
		assert_true(r == 0 || r == TM_EPARSE);
		if (r == 0)
			tm_pgp_keyring_free(kr);
		else
			assert_non_null(strstr(tm_error_last(), "cut: "));
	}
	/* Secret keys are refused. */
	unsigned char sec[] = { 0xc5, 0x01, 0x04 };
	assert_int_equal(tm_pgp_keyring_parse(&kr, sec, sizeof(sec), "sec"), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "secret key"));
	/* Nothing there. */
	assert_int_equal(tm_pgp_keyring_parse(&kr, "", 0, "empty"), TM_EPARSE);
	assert_int_equal(tm_pgp_keyring_parse(&kr, "text", 4, "text"), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "text: no -----BEGIN PGP PUBLIC KEY BLOCK"));
	/* Size cap. */
	char *big = malloc(TM_PGP_MAX_KEYRING + 1);
	memset(big, '\n', TM_PGP_MAX_KEYRING + 1);
	assert_int_equal(tm_pgp_keyring_parse(&kr, big, TM_PGP_MAX_KEYRING + 1, "big"), TM_ELIMIT);
	free(big);

	/* A subkey whose binding is broken cannot sign. */
	size_t klen;
	char *ka = slurp("pgp/key-sub.asc", &klen);
	struct tm_buf pk, a;
	tm_buf_init(&pk, 1 << 16);
	tm_buf_init(&a, 1 << 16);
	char *b = strstr(ka, "\n\n") + 2, *e = strstr(b, "\n=");
	assert_int_equal(tm_base64_decode(&pk, b, (size_t)(e - b), TM_B64_SKIP_SPACE), 0);
	/* The last byte belongs to the binding signature's last MPI. */
	pk.ptr[pk.len - 1] ^= 1;
	armor(&a, "PUBLIC KEY BLOCK", (unsigned char *)pk.ptr, pk.len, 1);
	assert_int_equal(tm_pgp_keyring_parse(&kr, a.ptr, a.len, "broken"), 0);
	expect_refused(kr, "pgp/message.sub.asc", TM_EVERIFY, "is not bound to its primary key", 0);
	tm_pgp_keyring_free(kr);
	tm_buf_free(&pk);
	tm_buf_free(&a);
	free(ka);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyring),
		cmocka_unit_test(test_good_rsa),
		cmocka_unit_test(test_good_ed25519),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_refused_algorithms),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_packet_headers),
		cmocka_unit_test(test_truncated_signature),
		cmocka_unit_test(test_unknown_critical_subpacket),
		cmocka_unit_test(test_armor_errors),
		cmocka_unit_test(test_keyring_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
