/*
 * crypto.c — adapter over mbedTLS (hashes, RSA, ECDSA) and libsodium
 * (Ed25519), plus base64 written here. This is the one file that includes
 * their headers; it turns their error codes into ours exactly once, so the
 * signature formats above it (sshsig, openpgp) never see a library type.
 *
 * Written for mbedTLS 2.28 (Debian's) and 3.6 (the static builds): the few
 * calls whose signature changed between them are wrapped below.
 */
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "sha1hw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>
#include <mbedtls/version.h>
#include <sodium.h>

size_t tm_crypto_hash_len(enum tm_hash_alg alg)
{
	switch (alg) {
	case TM_HASH_SHA1:
		return 20;
	case TM_HASH_SHA256:
		return 32;
	case TM_HASH_SHA384:
		return 48;
	case TM_HASH_SHA512:
		return 64;
	}
	return 0;
}

const char *tm_crypto_hash_name(enum tm_hash_alg alg)
{
	switch (alg) {
	case TM_HASH_SHA1:
		return "SHA-1";
	case TM_HASH_SHA256:
		return "SHA-256";
	case TM_HASH_SHA384:
		return "SHA-384";
	case TM_HASH_SHA512:
		return "SHA-512";
	}
	return "unknown hash";
}

static mbedtls_md_type_t md_type(enum tm_hash_alg alg)
{
	switch (alg) {
	case TM_HASH_SHA1:
		return MBEDTLS_MD_SHA1;
	case TM_HASH_SHA256:
		return MBEDTLS_MD_SHA256;
	case TM_HASH_SHA384:
		return MBEDTLS_MD_SHA384;
	case TM_HASH_SHA512:
		return MBEDTLS_MD_SHA512;
	}
	return MBEDTLS_MD_NONE;
}

int tm_crypto_hashv(unsigned char *out, enum tm_hash_alg alg, const struct tm_span *parts,
		    size_t nparts)
{
	const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md_type(alg));
	mbedtls_md_context_t ctx;
	int r = TM_ERROR;

	if (!info)
		return tm_error_set(TM_ERROR, "unsupported hash algorithm %d", (int)alg);
	if (alg == TM_HASH_SHA1 && tm_sha1hw_supported()) {
		tm_sha1hw(out, parts, nparts); /* the CPU's SHA-1 instructions (sha1hw.c) */
		return 0;
	}
	mbedtls_md_init(&ctx);
	if (mbedtls_md_setup(&ctx, info, 0) != 0 || mbedtls_md_starts(&ctx) != 0) {
		r = tm_error_set(TM_ENOMEM, "cannot set up %s", tm_crypto_hash_name(alg));
		goto out;
	}
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].len && mbedtls_md_update(&ctx, parts[i].ptr, parts[i].len) != 0) {
			r = tm_error_set(TM_ERROR, "%s failed", tm_crypto_hash_name(alg));
			goto out;
		}
	}
	if (mbedtls_md_finish(&ctx, out) != 0) {
		r = tm_error_set(TM_ERROR, "%s failed", tm_crypto_hash_name(alg));
		goto out;
	}
	r = 0;
out:
	mbedtls_md_free(&ctx);
	return r;
}

int tm_crypto_hash(unsigned char *out, enum tm_hash_alg alg, const void *data, size_t len)
{
	struct tm_span part = { data, len };

	return tm_crypto_hashv(out, alg, &part, 1);
}

/* ---- Ed25519 ---- */

static int sodium_ready(void)
{
	static int ready;

	if (!ready) {
		if (sodium_init() < 0)
			return tm_error_set(TM_ERROR, "libsodium failed to initialise");
		ready = 1;
	}
	return 0;
}

int tm_crypto_ed25519_verify(const unsigned char pk[32], const unsigned char sig[64],
			     const void *msg, size_t msg_len)
{
	int r;

	if ((r = sodium_ready()) < 0)
		return r;
	if (crypto_sign_verify_detached(sig, msg, msg_len, pk) != 0)
		return tm_error_set(TM_EVERIFY, "signature does not verify");
	return 0;
}

/* ---- ECDSA ---- */

int tm_crypto_ecdsa_verify(enum tm_ec_curve curve, const unsigned char *point, size_t point_len,
			   const unsigned char *hash, size_t hash_len, const unsigned char *r_bytes,
			   size_t r_len, const unsigned char *s_bytes, size_t s_len)
{
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q;
	mbedtls_mpi r, s;
	mbedtls_ecp_group_id id;
	size_t coord;
	int ret = TM_EVERIFY;

	switch (curve) {
	case TM_EC_P256:
		id = MBEDTLS_ECP_DP_SECP256R1;
		coord = 32;
		break;
	case TM_EC_P384:
		id = MBEDTLS_ECP_DP_SECP384R1;
		coord = 48;
		break;
	default:
		return tm_error_set(TM_EVERIFY, "unsupported elliptic curve");
	}
	if (point_len != 1 + 2 * coord || point[0] != 0x04)
		return tm_error_set(TM_EPARSE, "ECDSA public key is not an uncompressed point");
	/* r and s are below the group order: a longer encoding is garbage. */
	if (r_len > coord + 1 || s_len > coord + 1)
		return tm_error_set(TM_EVERIFY, "signature does not verify");

	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&q);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	if (mbedtls_ecp_group_load(&grp, id) != 0) {
		ret = tm_error_set(TM_ERROR, "cannot load elliptic curve");
		goto out;
	}
	if (mbedtls_ecp_point_read_binary(&grp, &q, point, point_len) != 0 ||
	    mbedtls_ecp_check_pubkey(&grp, &q) != 0) {
		ret = tm_error_set(TM_EPARSE, "ECDSA public key is not a point on the curve");
		goto out;
	}
	if (mbedtls_mpi_read_binary(&r, r_bytes, r_len) != 0 ||
	    mbedtls_mpi_read_binary(&s, s_bytes, s_len) != 0) {
		ret = tm_error_nomem();
		goto out;
	}
	if (mbedtls_ecdsa_verify(&grp, hash, hash_len, &q, &r, &s) != 0) {
		ret = tm_error_set(TM_EVERIFY, "signature does not verify");
		goto out;
	}
	ret = 0;
out:
	mbedtls_mpi_free(&s);
	mbedtls_mpi_free(&r);
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_group_free(&grp);
	return ret;
}

/* ---- RSA ---- */

size_t tm_crypto_bits(const unsigned char *v, size_t len)
{
	size_t i = 0;

	while (i < len && v[i] == 0)
		i++;
	if (i == len)
		return 0;
	size_t bits = (len - i) * 8;
	for (unsigned char top = v[i]; !(top & 0x80); top <<= 1)
		bits--;
	return bits;
}

static int rsa_pkcs1_verify(mbedtls_rsa_context *rsa, mbedtls_md_type_t md,
			    const unsigned char *hash, size_t hash_len, const unsigned char *sig)
{
#if MBEDTLS_VERSION_MAJOR >= 3
	return mbedtls_rsa_rsassa_pkcs1_v15_verify(rsa, md, (unsigned int)hash_len, hash, sig);
#else
	return mbedtls_rsa_rsassa_pkcs1_v15_verify(rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, md,
						   (unsigned int)hash_len, hash, sig);
#endif
}

int tm_crypto_rsa_verify(enum tm_hash_alg alg, const unsigned char *n, size_t n_len,
			 const unsigned char *e, size_t e_len, const unsigned char *hash,
			 size_t hash_len, const unsigned char *sig, size_t sig_len)
{
	mbedtls_rsa_context rsa;
	unsigned char *padded = NULL;
	size_t bits = tm_crypto_bits(n, n_len), mod_len;
	int ret = TM_EVERIFY;

	if (alg != TM_HASH_SHA256 && alg != TM_HASH_SHA384 && alg != TM_HASH_SHA512)
		return tm_error_set(TM_EVERIFY, "RSA signatures with %s are refused",
				    tm_crypto_hash_name(alg));
	if (hash_len != tm_crypto_hash_len(alg))
		return tm_error_set(TM_ERROR, "hash length does not match %s",
				    tm_crypto_hash_name(alg));
	if (bits < TM_RSA_MIN_BITS)
		return tm_error_set(TM_EVERIFY,
				    "RSA key of %zu bits is too small (at least %d required)", bits,
				    TM_RSA_MIN_BITS);
	if (bits > TM_RSA_MAX_BITS)
		return tm_error_set(TM_EVERIFY, "RSA key of %zu bits is too large (at most %d)",
				    bits, TM_RSA_MAX_BITS);
	if (tm_crypto_bits(e, e_len) > 64)
		return tm_error_set(TM_EPARSE, "RSA public exponent is too large");
	mod_len = (bits + 7) / 8;
	/* Strip leading zeros of the signature; it must then fit the modulus. */
	while (sig_len > 0 && sig[0] == 0) {
		sig++;
		sig_len--;
	}
	if (sig_len > mod_len)
		return tm_error_set(TM_EVERIFY, "signature does not verify");
	if (!(padded = calloc(1, mod_len)))
		return tm_error_nomem();
	if (sig_len)
		memcpy(padded + (mod_len - sig_len), sig, sig_len);

#if MBEDTLS_VERSION_MAJOR >= 3
	mbedtls_rsa_init(&rsa);
#else
	mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V15, 0);
#endif
	if (mbedtls_rsa_import_raw(&rsa, n, n_len, NULL, 0, NULL, 0, NULL, 0, e, e_len) != 0 ||
	    mbedtls_rsa_complete(&rsa) != 0 || mbedtls_rsa_check_pubkey(&rsa) != 0) {
		ret = tm_error_set(TM_EPARSE, "invalid RSA public key");
		goto out;
	}
	if (rsa_pkcs1_verify(&rsa, md_type(alg), hash, hash_len, padded) != 0) {
		ret = tm_error_set(TM_EVERIFY, "signature does not verify");
		goto out;
	}
	ret = 0;
out:
	mbedtls_rsa_free(&rsa);
	free(padded);
	return ret;
}

/* ---- helpers ---- */

int tm_crypto_equal(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < len; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

const char *tm_crypto_mbedtls_version(void)
{
	static char v[32];

	mbedtls_version_get_string(v);
	return v;
}

const char *tm_crypto_sodium_version(void)
{
	return sodium_version_string();
}
