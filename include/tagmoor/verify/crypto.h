/*
 * crypto.h — the only door to the cryptographic libraries (mbedTLS and
 * libsodium). Hashes, base64, and the three signature verifications that the
 * signature formats (sshsig, openpgp) need: Ed25519, ECDSA on NIST P-256 and
 * P-384, RSA PKCS#1 v1.5. Nothing here signs and nothing holds a secret.
 *
 * Verification functions return 0 when the signature is valid, TM_EVERIFY
 * ("signature does not verify") when it is not, and TM_EPARSE / TM_EVERIFY
 * with a message for a key or signature that is malformed or too weak.
 */
#ifndef TAGMOOR_CRYPTO_H
#define TAGMOOR_CRYPTO_H

#include <stddef.h>

#include "tagmoor/core/buf.h"

enum tm_hash_alg {
	TM_HASH_SHA1 = 1, /* Git object ids and OpenPGP v4 fingerprints; never for a signature */
	TM_HASH_SHA256,
	TM_HASH_SHA384,
	TM_HASH_SHA512
};

#define TM_HASH_MAX_LEN 64

/* One piece of a message hashed in several parts. */
struct tm_span {
	const void *ptr;
	size_t len;
};

/* Digest length in bytes (0 for an unknown algorithm). */
size_t tm_crypto_hash_len(enum tm_hash_alg alg);
/* "SHA-256" etc. */
const char *tm_crypto_hash_name(enum tm_hash_alg alg);

/* out receives tm_crypto_hash_len(alg) bytes. */
int tm_crypto_hash(unsigned char *out, enum tm_hash_alg alg, const void *data, size_t len);
/* Hash of the concatenation of parts[0..nparts). */
int tm_crypto_hashv(unsigned char *out, enum tm_hash_alg alg, const struct tm_span *parts,
		    size_t nparts);

/* Pure Ed25519 (RFC 8032) of msg under the 32-byte public key. */
int tm_crypto_ed25519_verify(const unsigned char pk[32], const unsigned char sig[64],
			     const void *msg, size_t msg_len);

enum tm_ec_curve {
	TM_EC_P256 = 1,
	TM_EC_P384
};

/* ECDSA over hash (already computed by the caller). point is the SEC1
 * uncompressed public point (0x04 || X || Y); r and s are big-endian
 * unsigned integers (leading zeros allowed). */
int tm_crypto_ecdsa_verify(enum tm_ec_curve curve, const unsigned char *point, size_t point_len,
			   const unsigned char *hash, size_t hash_len, const unsigned char *r,
			   size_t r_len, const unsigned char *s, size_t s_len);

#define TM_RSA_MIN_BITS 2048
#define TM_RSA_MAX_BITS 8192

/* RSASSA-PKCS1-v1_5 of hash (SHA-256, SHA-384 or SHA-512) under the public
 * key (n, e), both big-endian. The modulus must have at least
 * TM_RSA_MIN_BITS bits. sig may be shorter than the modulus (leading zero
 * bytes stripped, as OpenPGP MPIs do); it is left-padded. */
int tm_crypto_rsa_verify(enum tm_hash_alg alg, const unsigned char *n, size_t n_len,
			 const unsigned char *e, size_t e_len, const unsigned char *hash,
			 size_t hash_len, const unsigned char *sig, size_t sig_len);

/* Number of significant bits of a big-endian unsigned integer. */
size_t tm_crypto_bits(const unsigned char *v, size_t len);

/* 1 when a and b hold the same len bytes, 0 otherwise; the time taken does
 * not depend on where they differ. */
int tm_crypto_equal(const void *a, const void *b, size_t len);

/* Versions of the crypto libraries as they report themselves at run time. */
const char *tm_crypto_mbedtls_version(void);
const char *tm_crypto_sodium_version(void);

#endif
