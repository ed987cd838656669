/*
 * pgppacket.c — OpenPGP packets (RFC 4880, with the RFC 9580 v4 Ed25519 key) read from
 * untrusted bytes, every length checked: the bounded readers, packet headers (old and new;
 * partial and indeterminate lengths refused), signature packets with their subpackets, key
 * packets, and one signature checked over what it signs (the mathematics is in crypto.c).
 */
#include "openpgp_internal.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1.3.6.1.4.1.11591.15.1, the legacy EdDSA curve OID for Ed25519. */
static const unsigned char ed25519_oid[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01 };

/* ---- small readers ---- */

static int truncated(const char *what)
{
	return tm_error_set(TM_EPARSE, "OpenPGP %s: truncated", what);
}

static int rd_bytes(struct rd *r, const unsigned char **out, size_t len, const char *what)
{
	*out = NULL; /* outputs are defined on failure too (and gcc -O2 can see it) */
	if (len > r->n)
		return truncated(what);
	*out = r->p;
	r->p += len;
	r->n -= len;
	return 0;
}

static int rd_u8(struct rd *r, unsigned *v, const char *what)
{
	const unsigned char *p;
	int ret = rd_bytes(r, &p, 1, what);

	*v = 0;
	if (ret == 0)
		*v = p[0];
	return ret;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int rd_u16(struct rd *r, size_t *v, const char *what)
{
	const unsigned char *p;
	int ret = rd_bytes(r, &p, 2, what);

	*v = 0;
	if (ret == 0)
		*v = (size_t)p[0] << 8 | p[1];
	return ret;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
	const unsigned char *p;
	int ret = rd_bytes(r, &p, 4, what);

	*v = 0;
	if (ret == 0)
		*v = be32(p);
	return ret;
}

/* An MPI: 2-byte bit count, then the bytes; *v is the magnitude. */
static int rd_mpi(struct rd *r, const unsigned char **v, size_t *len, const char *what)
{
	size_t bits;
	int ret;

	*v = NULL;
	*len = 0;
	if ((ret = rd_u16(r, &bits, what)) < 0)
		return ret;
	*len = (bits + 7) / 8;
	return rd_bytes(r, v, *len, what);
}

void pgp_put_be32(unsigned char *out, size_t v)
{
	out[0] = (unsigned char)(v >> 24);
	out[1] = (unsigned char)(v >> 16);
	out[2] = (unsigned char)(v >> 8);
	out[3] = (unsigned char)v;
}

void pgp_hex(char *out, const unsigned char *p, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

/* ---- packets ---- */

/* The next packet of r; 1 at the end of the input. */
int pgp_next_packet(struct rd *r, struct packet *pk)
{
	unsigned c, o;
	size_t len;
	int ret;

	if (r->n == 0)
		return 1;
	if ((ret = rd_u8(r, &c, "packet header")) < 0)
		return ret;
	if (!(c & 0x80))
		return tm_error_set(TM_EPARSE, "OpenPGP: not a packet header (0x%02x)", c);
	if (c & 0x40) {
		pk->tag = (int)(c & 0x3f);
		if ((ret = rd_u8(r, &o, "packet header")) < 0)
			return ret;
		if (o < 192) {
			len = o;
		} else if (o < 224) {
			unsigned o2;
			if ((ret = rd_u8(r, &o2, "packet header")) < 0)
				return ret;
			len = ((size_t)(o - 192) << 8) + o2 + 192;
		} else if (o == 255) {
			uint32_t l;
			if ((ret = rd_u32(r, &l, "packet header")) < 0)
				return ret;
			len = l;
		} else {
			return tm_error_set(TM_EPARSE,
					    "OpenPGP: partial body lengths are not supported");
		}
	} else {
		pk->tag = (int)((c >> 2) & 0x0f);
		switch (c & 3) {
		case 0:
			if ((ret = rd_u8(r, &o, "packet header")) < 0)
				return ret;
			len = o;
			break;
		case 1:
			if ((ret = rd_u16(r, &len, "packet header")) < 0)
				return ret;
			break;
		case 2: {
			uint32_t l;
			if ((ret = rd_u32(r, &l, "packet header")) < 0)
				return ret;
			len = l;
			break;
		}
		default:
			return tm_error_set(
				TM_EPARSE,
				"OpenPGP: indeterminate packet lengths are not supported");
		}
	}
	pk->len = len;
	return rd_bytes(r, &pk->body, len, "packet");
}

/* ---- signatures ---- */

static int known_subpacket(int type)
{
	switch (type) {
	case 2:
	case 3:
	case 4:
	case 7:
	case 9:
	case 11:
	case 12:
	case 16:
	case 21:
	case 22:
	case 23:
	case 24:
	case 25:
	case 26:
	case 27:
	case 28:
	case 29:
	case 30:
	case 31:
	case 32:
	case 33:
	case 34:
	case 35:
	case 39:
		return 1;
	}
	return 0;
}

static int parse_subpackets(struct pgp_sig *s, const unsigned char *p, size_t len, int hashed)
{
	struct rd r = { p, len };
	int ret;

	while (r.n > 0) {
		unsigned o, t;
		size_t sl;
		const unsigned char *d;

		if ((ret = rd_u8(&r, &o, "subpacket")) < 0)
			return ret;
		if (o < 192) {
			sl = o;
		} else if (o < 255) {
			unsigned o2;
			if ((ret = rd_u8(&r, &o2, "subpacket")) < 0)
				return ret;
			sl = ((size_t)(o - 192) << 8) + o2 + 192;
		} else {
			uint32_t l;
			if ((ret = rd_u32(&r, &l, "subpacket")) < 0)
				return ret;
			sl = l;
		}
		if (sl == 0)
			return tm_error_set(TM_EPARSE, "OpenPGP subpacket: empty");
		if ((ret = rd_bytes(&r, &d, sl, "subpacket")) < 0)
			return ret;
		t = d[0] & 0x7f;
		d++;
		sl--;
		if (hashed && (d[-1] & 0x80) && !known_subpacket((int)t) && !s->unknown_critical)
			s->unknown_critical = (int)t;
		/* The issuer hints and the (self-authenticating) embedded
		 * signature count in both areas; everything else only when
		 * covered by the hash. */
		switch (t) {
		case 16:
			if (sl != 8)
				return tm_error_set(TM_EPARSE,
						    "OpenPGP subpacket: bad issuer key ID");
			memcpy(s->issuer_keyid, d, 8);
			s->has_keyid = 1;
			break;
		case 33:
			/* v4 issuer fingerprints only; others are not ours. */
			if (sl == 21 && d[0] == 4) {
				memcpy(s->issuer_fpr, d + 1, 20);
				s->has_fpr = 1;
			}
			break;
		case 32:
			if (!s->embedded) {
				s->embedded = d;
				s->embedded_len = sl;
			}
			break;
		default:
			break;
		}
		if (!hashed)
			continue;
		switch (t) {
		case 2:
			if (sl != 4)
				return tm_error_set(TM_EPARSE,
						    "OpenPGP subpacket: bad creation time");
			s->created = be32(d);
			s->has_created = 1;
			break;
		case 3:
			if (sl != 4)
				return tm_error_set(TM_EPARSE,
						    "OpenPGP subpacket: bad expiration time");
			s->expire = be32(d);
			break;
		case 9:
			if (sl != 4)
				return tm_error_set(TM_EPARSE,
						    "OpenPGP subpacket: bad key expiration time");
			s->key_expire = be32(d);
			s->has_key_expire = 1;
			break;
		case 25:
			if (sl != 1)
				return tm_error_set(TM_EPARSE,
						    "OpenPGP subpacket: bad primary user ID flag");
			s->primary_uid = d[0] != 0;
			break;
		case 27:
			s->flags = sl ? d[0] : 0;
			s->has_flags = 1;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Parses a signature packet body. TM_EPARSE when malformed, TM_EVERIFY
 * when well-formed but of a version or algorithm we do not verify. */
int pgp_parse_sig(struct pgp_sig *s, const unsigned char *body, size_t len)
{
	struct rd r = { body, len };
	const unsigned char *hs, *us, *l16;
	size_t hl, ul;
	unsigned v, t, pk, h;
	int ret;

	memset(s, 0, sizeof(*s));
	if ((ret = rd_u8(&r, &v, "signature")) < 0)
		return ret;
	if (v != 4)
		return tm_error_set(TM_EVERIFY, "OpenPGP signature version %u is not supported", v);
	if ((ret = rd_u8(&r, &t, "signature")) < 0 || (ret = rd_u8(&r, &pk, "signature")) < 0 ||
	    (ret = rd_u8(&r, &h, "signature")) < 0 || (ret = rd_u16(&r, &hl, "signature")) < 0 ||
	    (ret = rd_bytes(&r, &hs, hl, "signature")) < 0 ||
	    (ret = rd_u16(&r, &ul, "signature")) < 0 ||
	    (ret = rd_bytes(&r, &us, ul, "signature")) < 0 ||
	    (ret = rd_bytes(&r, &l16, 2, "signature")) < 0)
		return ret;
	s->type = (int)t;
	s->pk_algo = (int)pk;
	s->hash_algo = (int)h;
	s->hashed = body;
	s->hashed_len = 6 + hl;
	memcpy(s->left16, l16, 2);
	switch (pk) {
	case PK_RSA:
	case PK_RSA_S:
		if ((ret = rd_mpi(&r, &s->mpi[0], &s->mpi_len[0], "signature")) < 0)
			return ret;
		break;
	case PK_EDDSA:
		if ((ret = rd_mpi(&r, &s->mpi[0], &s->mpi_len[0], "signature")) < 0 ||
		    (ret = rd_mpi(&r, &s->mpi[1], &s->mpi_len[1], "signature")) < 0)
			return ret;
		break;
	case PK_ED25519:
		if ((ret = rd_bytes(&r, &s->raw_sig, 64, "signature")) < 0)
			return ret;
		break;
	default:
		return tm_error_set(TM_EVERIFY, "OpenPGP public-key algorithm %u is not supported",
				    pk);
	}
	if (r.n != 0)
		return tm_error_set(TM_EPARSE, "OpenPGP signature: %zu trailing bytes", r.n);
	if ((ret = parse_subpackets(s, hs, hl, 1)) < 0 ||
	    (ret = parse_subpackets(s, us, ul, 0)) < 0)
		return ret;
	if (!s->has_created)
		return tm_error_set(TM_EPARSE, "OpenPGP signature has no creation time");
	return 0;
}

int pgp_hash_alg(enum tm_hash_alg *out, int algo)
{
	switch (algo) {
	case 8:
		*out = TM_HASH_SHA256;
		return 0;
	case 9:
		*out = TM_HASH_SHA384;
		return 0;
	case 10:
		*out = TM_HASH_SHA512;
		return 0;
	case 1:
		return tm_error_set(TM_EVERIFY, "MD5 signatures are refused (broken hash)");
	case 2:
		return tm_error_set(
			TM_EVERIFY,
			"SHA-1 signatures are refused (collisions are practical); sign with "
			"--digest-algo SHA256");
	case 3:
		return tm_error_set(TM_EVERIFY, "RIPEMD-160 signatures are refused");
	}
	return tm_error_set(TM_EVERIFY, "OpenPGP hash algorithm %d is not supported", algo);
}

static int left_pad(unsigned char *out, size_t width, const unsigned char *v, size_t len)
{
	while (len > 0 && v[0] == 0) {
		v++;
		len--;
	}
	if (len > width)
		return tm_error_set(TM_EVERIFY, "signature does not verify");
	memset(out, 0, width - len);
	memcpy(out + (width - len), v, len);
	return 0;
}

/* Checks s, made by key, over prefix[0..nprefix) || the hashed part || the
 * v4 trailer. */
int pgp_verify_sig(const struct pgp_sig *s, const struct pgp_key *key, const struct tm_span *prefix,
		   size_t nprefix)
{
	struct tm_span parts[8];
	unsigned char trailer[6] = { 4, 0xff }, digest[TM_HASH_MAX_LEN], sig64[64];
	enum tm_hash_alg alg = TM_HASH_SHA256; /* set by pgp_hash_alg(); initialised for gcc -O3 */
	size_t dlen;
	int ret;

	if (key->unusable)
		return tm_error_set(TM_EVERIFY, "%s", key->unusable);
	if ((ret = pgp_hash_alg(&alg, s->hash_algo)) < 0)
		return ret;
	int rsa_sig = s->pk_algo == PK_RSA || s->pk_algo == PK_RSA_S;
	int rsa_key = key->algo == PK_RSA || key->algo == PK_RSA_S;
	if (rsa_sig != rsa_key || (!rsa_sig && s->pk_algo != key->algo))
		return tm_error_set(TM_EVERIFY, "signature algorithm does not match the key");
	if (nprefix > 5)
		return tm_error_set(TM_ERROR, "too many hash parts");
	for (size_t i = 0; i < nprefix; i++)
		parts[i] = prefix[i];
	parts[nprefix] = (struct tm_span){ s->hashed, s->hashed_len };
	pgp_put_be32(trailer + 2, s->hashed_len);
	parts[nprefix + 1] = (struct tm_span){ trailer, sizeof(trailer) };
	if ((ret = tm_crypto_hashv(digest, alg, parts, nprefix + 2)) < 0)
		return ret;
	dlen = tm_crypto_hash_len(alg);
	if (digest[0] != s->left16[0] || digest[1] != s->left16[1])
		return tm_error_set(TM_EVERIFY, "signature does not verify");
	switch (key->algo) {
	case PK_RSA:
	case PK_RSA_S:
		return tm_crypto_rsa_verify(alg, key->n, key->n_len, key->e, key->e_len, digest,
					    dlen, s->mpi[0], s->mpi_len[0]);
	case PK_EDDSA:
		if ((ret = left_pad(sig64, 32, s->mpi[0], s->mpi_len[0])) < 0 ||
		    (ret = left_pad(sig64 + 32, 32, s->mpi[1], s->mpi_len[1])) < 0)
			return ret;
		return tm_crypto_ed25519_verify(key->ed, sig64, digest, dlen);
	case PK_ED25519:
		return tm_crypto_ed25519_verify(key->ed, s->raw_sig, digest, dlen);
	}
	return tm_error_set(TM_EVERIFY, "unsupported key algorithm");
}

/* ---- keys ---- */

void pgp_key_free(struct pgp_key *k)
{
	free(k->body);
	memset(k, 0, sizeof(*k));
}

/* Parses a public (sub)key packet body. 1 when it is not a v4 key (the
 * caller skips it), TM_EPARSE when malformed. */
int pgp_parse_key(struct pgp_key *k, const unsigned char *body, size_t len)
{
	unsigned char hdr[3] = { 0x99, (unsigned char)(len >> 8), (unsigned char)len };
	struct tm_span parts[2] = { { hdr, 3 }, { NULL, len } };
	struct rd r;
	unsigned v, algo;
	int ret;

	memset(k, 0, sizeof(*k));
	if (len == 0)
		return truncated("key");
	if (body[0] != 4)
		return 1;
	if (len > 0xffff)
		return tm_error_set(TM_EPARSE, "OpenPGP key packet too large");
	if (!(k->body = malloc(len)))
		return tm_error_nomem();
	memcpy(k->body, body, len);
	k->body_len = len;
	r = (struct rd){ k->body, len };
	if ((ret = rd_u8(&r, &v, "key")) < 0 || (ret = rd_u32(&r, &k->created, "key")) < 0 ||
	    (ret = rd_u8(&r, &algo, "key")) < 0)
		goto fail;
	k->algo = (int)algo;
	switch (algo) {
	case PK_RSA:
	case PK_RSA_S:
		if ((ret = rd_mpi(&r, &k->n, &k->n_len, "RSA key")) < 0 ||
		    (ret = rd_mpi(&r, &k->e, &k->e_len, "RSA key")) < 0)
			goto fail;
		if (tm_crypto_bits(k->n, k->n_len) < TM_RSA_MIN_BITS)
			k->unusable = "RSA key is shorter than 2048 bits";
		else if (tm_crypto_bits(k->n, k->n_len) > TM_RSA_MAX_BITS)
			k->unusable = "RSA key is longer than 8192 bits";
		break;
	case PK_EDDSA: {
		unsigned oid_len;
		const unsigned char *oid, *pt;
		size_t pt_len;
		if ((ret = rd_u8(&r, &oid_len, "EdDSA key")) < 0 ||
		    (ret = rd_bytes(&r, &oid, oid_len, "EdDSA key")) < 0 ||
		    (ret = rd_mpi(&r, &pt, &pt_len, "EdDSA key")) < 0)
			goto fail;
		if (oid_len != sizeof(ed25519_oid) || memcmp(oid, ed25519_oid, oid_len) != 0) {
			k->unusable = "EdDSA key on a curve other than Ed25519";
			break;
		}
		if (pt_len != 33 || pt[0] != 0x40) {
			ret = tm_error_set(TM_EPARSE, "OpenPGP EdDSA key: bad point encoding");
			goto fail;
		}
		k->ed = pt + 1;
		break;
	}
	case PK_ED25519:
		if ((ret = rd_bytes(&r, &k->ed, 32, "Ed25519 key")) < 0)
			goto fail;
		break;
	default:
		/* Encryption or other signing algorithms: kept for its
		 * fingerprint, never used to verify. */
		k->unusable = "key algorithm not supported for signatures";
		r.n = 0;
		break;
	}
	if (!k->unusable && r.n != 0) {
		ret = tm_error_set(TM_EPARSE, "OpenPGP key: %zu trailing bytes", r.n);
		goto fail;
	}
	parts[1].ptr = k->body;
	if ((ret = tm_crypto_hashv(k->fpr, TM_HASH_SHA1, parts, 2)) < 0)
		goto fail;
	return 0;
fail:
	pgp_key_free(k);
	return ret;
}

/* 0x99 || 2-byte length || body: how a key enters a signature hash. */
void pgp_key_span(struct tm_span span[2], unsigned char hdr[3], const struct pgp_key *k)
{
	hdr[0] = 0x99;
	hdr[1] = (unsigned char)(k->body_len >> 8);
	hdr[2] = (unsigned char)k->body_len;
	span[0] = (struct tm_span){ hdr, 3 };
	span[1] = (struct tm_span){ k->body, k->body_len };
}

int pgp_issued_by(const struct pgp_sig *s, const struct pgp_key *k)
{
	if (s->has_fpr)
		return memcmp(s->issuer_fpr, k->fpr, 20) == 0;
	if (s->has_keyid)
		return memcmp(s->issuer_keyid, k->fpr + 12, 8) == 0;
	return 1; /* no hint: try it */
}
