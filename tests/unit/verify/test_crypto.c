/*
 * test_crypto.c — the crypto adapter: hash test vectors,
 * Ed25519 against RFC 8032 section 7.1, argument checks of ECDSA and RSA
 * (their positive cases run through real ssh-keygen / gpg signatures in
 * test_sshsig and test_openpgp), the constant-time compare, and the SHA-1 on
 * the CPU's instructions (sha1hw.c) against mbedTLS's at every length around
 * the block edges, split into parts every way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/wipe.h"
#include "../../../src/verify/sha1hw.h"

#include <mbedtls/md.h>

static size_t unhex(unsigned char *out, size_t max, const char *hex)
{
	size_t n = strlen(hex) / 2;

	assert_true(n <= max);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
	return n;
}

static void check_hash(enum tm_hash_alg alg, const char *msg, const char *want_hex)
{
	unsigned char want[TM_HASH_MAX_LEN], got[TM_HASH_MAX_LEN];
	size_t n = unhex(want, sizeof(want), want_hex);

	assert_int_equal(tm_crypto_hash_len(alg), n);
	assert_int_equal(tm_crypto_hash(got, alg, msg, strlen(msg)), 0);
	assert_memory_equal(got, want, n);
}

static void test_hash_vectors(void **state)
{
	(void)state;
	check_hash(TM_HASH_SHA1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d");
	check_hash(TM_HASH_SHA256, "abc",
		   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_hash(TM_HASH_SHA384, "abc",
		   "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
		   "8086072ba1e7cc2358baeca134c825a7");
	check_hash(TM_HASH_SHA512, "abc",
		   "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
		   "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
	check_hash(TM_HASH_SHA256, "",
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_hashv_equals_hash(void **state)
{
	unsigned char a[32], b[32];
	struct tm_span parts[] = { { "a", 1 }, { "", 0 }, { "bc", 2 } };

	(void)state;
	assert_int_equal(tm_crypto_hashv(a, TM_HASH_SHA256, parts, 3), 0);
	assert_int_equal(tm_crypto_hash(b, TM_HASH_SHA256, "abc", 3), 0);
	assert_memory_equal(a, b, 32);
	assert_int_equal(tm_crypto_hash(a, (enum tm_hash_alg)99, "abc", 3), TM_ERROR);
}

/* mbedTLS's SHA-1 of buf, the reference for sha1hw.c. */
static void ref_sha1(unsigned char out[20], const unsigned char *buf, size_t len)
{
	assert_int_equal(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), buf, len, out), 0);
}

static void test_sha1hw(void **state)
{
	enum {
		MAX = 300
	};
	unsigned char *big, buf[MAX], want[20], got[20];
	size_t big_len = (1u << 20) + 37;
	uint32_t x = 0x9e3779b9u;

	(void)state;
	if (!tm_sha1hw_supported())
		skip(); /* no SHA-1 instructions on this CPU: mbedTLS's SHA-1 is the only one used */
	for (size_t i = 0; i < MAX; i++) {
		x = x * 1664525u + 1013904223u;
		buf[i] = (unsigned char)(x >> 24);
	}
	/* every length from 0 to MAX bytes, whole and in three parts cut at every pair of places
	 * (every cut for lengths up to 130, which cross the padding's 55/56/64-byte edges twice) */
	for (size_t len = 0; len <= MAX; len++) {
		struct tm_span one = { buf, len };

		ref_sha1(want, buf, len);
		tm_sha1hw(got, &one, 1);
		assert_memory_equal(got, want, 20);
		for (size_t a = 0; a <= len; a += len > 130 ? 7 : 1) {
			for (size_t b = a; b <= len; b += len > 130 ? 5 : 1) {
				struct tm_span parts[4] = { { buf, a },
							    { "", 0 },
							    { buf + a, b - a },
							    { buf + b, len - b } };

				memset(got, 0, sizeof(got));
				tm_sha1hw(got, parts, 4);
				assert_memory_equal(got, want, 20);
			}
		}
	}
	/* FIPS 180 vectors, through tm_crypto_hashv (which takes sha1hw.c on this CPU) */
	check_hash(TM_HASH_SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	check_hash(TM_HASH_SHA1, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		   "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'a', 1000000);
	{
		struct tm_span one = { big, 1000000 };

		tm_sha1hw(got, &one, 1);
		unhex(want, sizeof(want), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
		assert_memory_equal(got, want, 20);
	}
	/* a megabyte of noise, as a Git blob is hashed: a header part and the body */
	for (size_t i = 0; i < big_len; i++) {
		x = x * 1664525u + 1013904223u;
		big[i] = (unsigned char)(x >> 24);
	}
	{
		struct tm_span parts[2] = { { big, 11 }, { big + 11, big_len - 11 } };

		ref_sha1(want, big, big_len);
		assert_int_equal(tm_crypto_hashv(got, TM_HASH_SHA1, parts, 2), 0);
		assert_memory_equal(got, want, 20);
		big[big_len / 2] ^= 1; /* one flipped bit changes it */
		tm_sha1hw(got, parts, 2);
		assert_memory_not_equal(got, want, 20);
	}
	free(big);
}

struct ed_vector {
	const char *pk, *msg, *sig;
};

/* RFC 8032, section 7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc). */
static const struct ed_vector ed_vectors[] = {
	{ "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	  "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" },
	{ "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	  "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	  "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00" },
	{ "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
	  "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
	  "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a" },
	{ "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
	  "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	  "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
	  "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704" },
};

static void test_ed25519_rfc8032(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ed_vectors) / sizeof(ed_vectors[0]); i++) {
		unsigned char pk[32], sig[64], msg[64];
		size_t mlen;

		unhex(pk, sizeof(pk), ed_vectors[i].pk);
		unhex(sig, sizeof(sig), ed_vectors[i].sig);
		mlen = unhex(msg, sizeof(msg), ed_vectors[i].msg);
		assert_int_equal(tm_crypto_ed25519_verify(pk, sig, msg, mlen), 0);

		/* One flipped bit anywhere in the message or the signature fails. */
		if (mlen) {
			msg[mlen - 1] ^= 1;
			assert_int_equal(tm_crypto_ed25519_verify(pk, sig, msg, mlen), TM_EVERIFY);
			assert_string_equal(tm_error_last(), "signature does not verify");
			msg[mlen - 1] ^= 1;
		}
		sig[10] ^= 0x20;
		assert_int_equal(tm_crypto_ed25519_verify(pk, sig, msg, mlen), TM_EVERIFY);
		sig[10] ^= 0x20;
		pk[0] ^= 1;
		assert_int_equal(tm_crypto_ed25519_verify(pk, sig, msg, mlen), TM_EVERIFY);
	}
	/* The SHA(abc) message is SHA-512("abc"). */
	unsigned char h[64], want[64];
	unhex(want, sizeof(want), ed_vectors[3].msg);
	assert_int_equal(tm_crypto_hash(h, TM_HASH_SHA512, "abc", 3), 0);
	assert_memory_equal(h, want, 64);
}

static void test_ecdsa_arguments(void **state)
{
	unsigned char point[65] = { 0x04 }, hash[32] = { 1 }, one[1] = { 1 };

	(void)state;
	/* Compressed or wrong-sized points are refused before any maths. */
	assert_int_equal(tm_crypto_ecdsa_verify(TM_EC_P256, point, 33, hash, 32, one, 1, one, 1),
			 TM_EPARSE);
	assert_int_equal(tm_crypto_ecdsa_verify(TM_EC_P384, point, 65, hash, 32, one, 1, one, 1),
			 TM_EPARSE);
	/* A point that is not on the curve. */
	memset(point + 1, 0x11, 64);
	assert_int_equal(tm_crypto_ecdsa_verify(TM_EC_P256, point, 65, hash, 32, one, 1, one, 1),
			 TM_EPARSE);
	assert_int_equal(tm_crypto_ecdsa_verify((enum tm_ec_curve)7, point, 65, hash, 32, one, 1,
						one, 1),
			 TM_EVERIFY);
}

static void test_rsa_arguments(void **state)
{
	unsigned char n[256], e[3] = { 1, 0, 1 }, hash[64] = { 0 }, sig[256] = { 0 };

	(void)state;
	memset(n, 0xff, sizeof(n));
	/* SHA-1 is never accepted for a signature. */
	assert_int_equal(tm_crypto_rsa_verify(TM_HASH_SHA1, n, 256, e, 3, hash, 20, sig, 256),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "SHA-1"));
	/* 1024-bit modulus: too small. */
	assert_int_equal(tm_crypto_rsa_verify(TM_HASH_SHA256, n, 128, e, 3, hash, 32, sig, 128),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "1024 bits is too small"));
	/* 2047 bits (leading zero bits do not count). */
	n[0] = 0x7f;
	assert_int_equal(tm_crypto_rsa_verify(TM_HASH_SHA256, n, 256, e, 3, hash, 32, sig, 256),
			 TM_EVERIFY);
	assert_non_null(strstr(tm_error_last(), "2047 bits"));
	n[0] = 0xff;
	/* Hash length must match the algorithm. */
	assert_int_equal(tm_crypto_rsa_verify(TM_HASH_SHA512, n, 256, e, 3, hash, 32, sig, 256),
			 TM_ERROR);
	/* A signature longer than the modulus. */
	sig[0] = 1;
	unsigned char longsig[257] = { 1 };
	assert_int_equal(tm_crypto_rsa_verify(TM_HASH_SHA256, n, 256, e, 3, hash, 32, longsig, 257),
			 TM_EVERIFY);
	/* Garbage signature on a (bogus, even) modulus: refused, no crash. */
	int r = tm_crypto_rsa_verify(TM_HASH_SHA256, n, 256, e, 3, hash, 32, sig, 256);
	assert_true(r == TM_EVERIFY || r == TM_EPARSE);
}

static void test_bits(void **state)
{
	unsigned char v[] = { 0, 0, 0x01, 0xff };

	(void)state;
	assert_int_equal(tm_crypto_bits(v, 4), 9);
	assert_int_equal(tm_crypto_bits(v, 2), 0);
	assert_int_equal(tm_crypto_bits(v, 0), 0);
}

static void test_equal_and_wipe(void **state)
{
	char a[] = "secret", b[] = "secreT";

	(void)state;
	assert_true(tm_crypto_equal(a, a, 6));
	assert_false(tm_crypto_equal(a, b, 6));
	assert_true(tm_crypto_equal(a, b, 5));
	assert_true(tm_crypto_equal(a, b, 0));
	tm_wipe(a, sizeof(a));
	for (size_t i = 0; i < sizeof(a); i++)
		assert_int_equal(a[i], 0);
	tm_wipe(NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_vectors),    cmocka_unit_test(test_hashv_equals_hash),
		cmocka_unit_test(test_sha1hw),

		cmocka_unit_test(test_ed25519_rfc8032), cmocka_unit_test(test_ecdsa_arguments),
		cmocka_unit_test(test_rsa_arguments),   cmocka_unit_test(test_bits),
		cmocka_unit_test(test_equal_and_wipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
