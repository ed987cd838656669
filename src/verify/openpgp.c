/*
 * openpgp.c — OpenPGP detached signatures and public keyrings (RFC 4880,
 * with the RFC 9580 v4 Ed25519 key), the gpg half of the verify stage.
 *
 * Three layers, each bounded: ASCII armor (base64 + CRC24) → packets (old
 * and new headers; partial and indeterminate lengths refused) → keys and
 * signatures. Reading a keyring verifies its self-signatures, so what a
 * certificate says about itself (user IDs, subkeys, flags, expiry,
 * revocation) is believed only when its primary key signed it. A data
 * signature is then found by its issuer fingerprint or key ID and checked
 * with crypto.c. Everything refused says why, in one line.
 */
#include "tagmoor/core/base64.h"
#include "tagmoor/verify/openpgp.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	TAG_SIG = 2,
	TAG_SECKEY = 5,
	TAG_PUBKEY = 6,
	TAG_SECSUBKEY = 7,
	TAG_UID = 13,
	TAG_PUBSUBKEY = 14,
	TAG_UAT = 17
};
enum {
	PK_RSA = 1,
	PK_RSA_S = 3,
	PK_EDDSA = 22,
	PK_ED25519 = 27
};
enum {
	SIG_BINARY = 0x00,
	SIG_TEXT = 0x01,
	SIG_CERT_GENERIC = 0x10,
	SIG_CERT_POSITIVE = 0x13,
	SIG_SUBKEY_BINDING = 0x18,
	SIG_PRIMARY_BINDING = 0x19,
	SIG_DIRECT_KEY = 0x1f,
	SIG_KEY_REVOCATION = 0x20,
	SIG_SUBKEY_REVOCATION = 0x28,
	SIG_CERT_REVOCATION = 0x30
};
enum {
	KF_CERTIFY = 0x01,
	KF_SIGN = 0x02
};

/* 1.3.6.1.4.1.11591.15.1, the legacy EdDSA curve OID for Ed25519. */
static const unsigned char ed25519_oid[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01 };

struct pgp_key {
	unsigned char fpr[20];
	int algo;
	uint32_t created;
	unsigned char *body; /* the key packet body, owned (hashed by signatures) */
	size_t body_len;
	const unsigned char *n, *e, *ed; /* into body */
	size_t n_len, e_len;
	const char *unusable; /* why it cannot verify anything; NULL if it can */
	/* what the newest valid self-signature says */
	int bound;
	uint32_t bind_time;
	int has_flags;
	unsigned flags;
	uint32_t expire; /* seconds after creation; 0 = never */
	int back_signed; /* subkey: valid primary-key binding signature */
	int revoked;
};

struct pgp_uid {
	char *text;
	int valid, primary, revoked;
	uint32_t sig_time;
	int has_flags;
	unsigned flags;
	uint32_t expire;
};

struct pgp_cert {
	struct pgp_key primary;
	struct pgp_key *subs;
	size_t nsubs;
	struct pgp_uid *uids;
	size_t nuids;
	int has_direct; /* a valid direct-key signature was seen */
	uint32_t direct_time;
	int direct_has_flags;
	unsigned direct_flags;
	uint32_t direct_expire;
	const char *signer; /* borrowed from uids, or NULL */
};

struct tm_pgp_keyring {
	struct pgp_cert *certs;
	size_t n, cap;
};

struct pgp_sig {
	int type, pk_algo, hash_algo;
	const unsigned char *hashed; /* version .. end of hashed subpackets */
	size_t hashed_len;
	unsigned char left16[2];
	const unsigned char *mpi[2];
	size_t mpi_len[2];
	const unsigned char *raw_sig; /* Ed25519 (27): 64 bytes */
	int has_created;
	uint32_t created, expire;
	int has_key_expire;
	uint32_t key_expire;
	int has_fpr, has_keyid;
	unsigned char issuer_fpr[20], issuer_keyid[8];
	int primary_uid;
	int has_flags;
	unsigned flags;
	const unsigned char *embedded;
	size_t embedded_len;
	int unknown_critical; /* subpacket type, or 0 */
};

/* ---- small readers ---- */

struct rd {
	const unsigned char *p;
	size_t n;
};

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

static void put_be32(unsigned char *out, size_t v)
{
	out[0] = (unsigned char)(v >> 24);
	out[1] = (unsigned char)(v >> 16);
	out[2] = (unsigned char)(v >> 8);
	out[3] = (unsigned char)v;
}

static void hex(char *out, const unsigned char *p, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

/* ---- packets ---- */

struct packet {
	int tag;
	const unsigned char *body;
	size_t len;
};

/* The next packet of r; 1 at the end of the input. */
static int next_packet(struct rd *r, struct packet *pk)
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
static int parse_sig(struct pgp_sig *s, const unsigned char *body, size_t len)
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

static int hash_alg(enum tm_hash_alg *out, int algo)
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
static int verify_sig(const struct pgp_sig *s, const struct pgp_key *key,
		      const struct tm_span *prefix, size_t nprefix)
{
	struct tm_span parts[8];
	unsigned char trailer[6] = { 4, 0xff }, digest[TM_HASH_MAX_LEN], sig64[64];
	enum tm_hash_alg alg = TM_HASH_SHA256; /* set by hash_alg(); initialised for gcc -O3 */
	size_t dlen;
	int ret;

	if (key->unusable)
		return tm_error_set(TM_EVERIFY, "%s", key->unusable);
	if ((ret = hash_alg(&alg, s->hash_algo)) < 0)
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
	put_be32(trailer + 2, s->hashed_len);
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

static void key_free(struct pgp_key *k)
{
	free(k->body);
	memset(k, 0, sizeof(*k));
}

/* Parses a public (sub)key packet body. 1 when it is not a v4 key (the
 * caller skips it), TM_EPARSE when malformed. */
static int parse_key(struct pgp_key *k, const unsigned char *body, size_t len)
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
	key_free(k);
	return ret;
}

/* 0x99 || 2-byte length || body: how a key enters a signature hash. */
static void key_span(struct tm_span span[2], unsigned char hdr[3], const struct pgp_key *k)
{
	hdr[0] = 0x99;
	hdr[1] = (unsigned char)(k->body_len >> 8);
	hdr[2] = (unsigned char)k->body_len;
	span[0] = (struct tm_span){ hdr, 3 };
	span[1] = (struct tm_span){ k->body, k->body_len };
}

static int issued_by(const struct pgp_sig *s, const struct pgp_key *k)
{
	if (s->has_fpr)
		return memcmp(s->issuer_fpr, k->fpr, 20) == 0;
	if (s->has_keyid)
		return memcmp(s->issuer_keyid, k->fpr + 12, 8) == 0;
	return 1; /* no hint: try it */
}

/* ---- keyring ---- */

static void cert_free(struct pgp_cert *c)
{
	key_free(&c->primary);
	for (size_t i = 0; i < c->nsubs; i++)
		key_free(&c->subs[i]);
	free(c->subs);
	for (size_t i = 0; i < c->nuids; i++)
		free(c->uids[i].text);
	free(c->uids);
	memset(c, 0, sizeof(*c));
}

void tm_pgp_keyring_free(struct tm_pgp_keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->n; i++)
		cert_free(&kr->certs[i]);
	free(kr->certs);
	free(kr);
}

size_t tm_pgp_keyring_count(const struct tm_pgp_keyring *kr)
{
	return kr ? kr->n : 0;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 4;
	if (ncap > SIZE_MAX / size)
		return tm_error_nomem();
	void *nv = realloc(*v, ncap * size);
	if (!nv)
		return tm_error_nomem();
	*v = nv;
	*cap = ncap;
	return 0;
}

/* Where the next signature packet belongs. */
enum component {
	C_NONE,
	C_PRIMARY,
	C_UID,
	C_UAT,
	C_SUBKEY
};

struct kr_state {
	struct tm_pgp_keyring *kr;
	struct pgp_cert *cert; /* NULL while skipping an unsupported certificate */
	enum component comp;
	size_t subs_cap, uids_cap;
};

static void apply_self_sig(struct pgp_sig *s, struct pgp_key *target, const struct pgp_key *primary,
			   const struct tm_span *prefix, size_t nprefix)
{
	/* Keep the newest binding only. */
	if (target->bound && s->created < target->bind_time)
		return;
	if (verify_sig(s, primary, prefix, nprefix) != 0)
		return;
	target->bound = 1;
	target->bind_time = s->created;
	target->has_flags = s->has_flags;
	target->flags = s->flags;
	target->expire = s->has_key_expire ? s->key_expire : 0;
	target->back_signed = 0;
	if (s->has_flags && (s->flags & KF_SIGN) && s->embedded) {
		/* A signing subkey must sign back: the primary-key binding. */
		struct pgp_sig back;
		if (parse_sig(&back, s->embedded, s->embedded_len) == 0 &&
		    back.type == SIG_PRIMARY_BINDING &&
		    verify_sig(&back, target, prefix, nprefix) == 0)
			target->back_signed = 1;
	}
}

static void handle_sig(struct kr_state *st, const unsigned char *body, size_t len)
{
	struct pgp_cert *c = st->cert;
	struct pgp_sig s;
	unsigned char h1[3], h2[3], uh[5];
	struct tm_span prefix[4];

	/* A signature we cannot read or check is simply not a valid one. */
	if (!c || parse_sig(&s, body, len) != 0 || s.unknown_critical ||
	    !issued_by(&s, &c->primary))
		return;
	key_span(prefix, h1, &c->primary);
	switch (st->comp) {
	case C_PRIMARY:
		if (s.type == SIG_KEY_REVOCATION) {
			if (verify_sig(&s, &c->primary, prefix, 2) == 0)
				c->primary.revoked = 1;
		} else if (s.type == SIG_DIRECT_KEY) {
			if ((!c->has_direct || s.created >= c->direct_time) &&
			    verify_sig(&s, &c->primary, prefix, 2) == 0) {
				c->has_direct = 1;
				c->direct_time = s.created;
				c->direct_has_flags = s.has_flags;
				c->direct_flags = s.flags;
				c->direct_expire = s.has_key_expire ? s.key_expire : 0;
			}
		}
		break;
	case C_UID: {
		struct pgp_uid *u = &c->uids[c->nuids - 1];
		size_t ulen = strlen(u->text);
		uh[0] = 0xb4;
		put_be32(uh + 1, ulen);
		prefix[2] = (struct tm_span){ uh, 5 };
		prefix[3] = (struct tm_span){ u->text, ulen };
		if (s.type == SIG_CERT_REVOCATION) {
			if (verify_sig(&s, &c->primary, prefix, 4) == 0)
				u->revoked = 1;
		} else if (s.type >= SIG_CERT_GENERIC && s.type <= SIG_CERT_POSITIVE) {
			if ((!u->valid || s.created >= u->sig_time) &&
			    verify_sig(&s, &c->primary, prefix, 4) == 0) {
				u->valid = 1;
				u->sig_time = s.created;
				u->primary = s.primary_uid;
				u->has_flags = s.has_flags;
				u->flags = s.flags;
				u->expire = s.has_key_expire ? s.key_expire : 0;
			}
		}
		break;
	}
	case C_SUBKEY: {
		struct pgp_key *sub = &c->subs[c->nsubs - 1];
		key_span(prefix + 2, h2, sub);
		if (s.type == SIG_SUBKEY_REVOCATION) {
			if (verify_sig(&s, &c->primary, prefix, 4) == 0)
				sub->revoked = 1;
		} else if (s.type == SIG_SUBKEY_BINDING) {
			apply_self_sig(&s, sub, &c->primary, prefix, 4);
		}
		break;
	}
	default:
		break;
	}
}

/* Settles what the self-signatures of a finished certificate say. */
static void cert_finish(struct pgp_cert *c)
{
	struct pgp_uid *best = NULL;

	for (size_t i = 0; i < c->nuids; i++) {
		struct pgp_uid *u = &c->uids[i];
		if (!u->valid || u->revoked)
			continue;
		if (!best || (u->primary && !best->primary) ||
		    (u->primary == best->primary && u->primary && u->sig_time > best->sig_time))
			best = u;
	}
	if (best) {
		c->signer = best->text;
		c->primary.bound = 1;
		c->primary.has_flags = best->has_flags;
		c->primary.flags = best->flags;
		c->primary.expire = best->expire;
	}
	if (c->has_direct) {
		c->primary.bound = 1;
		if (!best || !best->has_flags) {
			c->primary.has_flags = c->direct_has_flags;
			c->primary.flags = c->direct_flags;
		}
		if (!best || !best->expire)
			c->primary.expire = c->direct_expire;
	}
}

static int handle_packet(struct kr_state *st, const struct packet *pk)
{
	struct tm_pgp_keyring *kr = st->kr;
	int ret;

	switch (pk->tag) {
	case TAG_SECKEY:
	case TAG_SECSUBKEY:
		return tm_error_set(TM_EPARSE, "secret key material found: "
					       "export only public keys (gpg --armor --export)");
	case TAG_PUBKEY: {
		struct pgp_key k;
		if (st->cert)
			cert_finish(st->cert);
		st->cert = NULL;
		st->comp = C_NONE;
		if ((ret = parse_key(&k, pk->body, pk->len)) < 0)
			return ret;
		if (ret == 1)
			return 0; /* not v4: skip the whole certificate */
		if ((ret = grow((void **)&kr->certs, &kr->cap, kr->n, sizeof(*kr->certs))) < 0) {
			key_free(&k);
			return ret;
		}
		st->cert = &kr->certs[kr->n++];
		memset(st->cert, 0, sizeof(*st->cert));
		st->cert->primary = k;
		st->comp = C_PRIMARY;
		st->subs_cap = st->uids_cap = 0;
		return 0;
	}
	case TAG_PUBSUBKEY: {
		struct pgp_key k;
		struct pgp_cert *c = st->cert;
		st->comp = C_NONE;
		if (!c)
			return 0;
		if ((ret = parse_key(&k, pk->body, pk->len)) < 0)
			return ret;
		if (ret == 1)
			return 0;
		if ((ret = grow((void **)&c->subs, &st->subs_cap, c->nsubs, sizeof(*c->subs))) <
		    0) {
			key_free(&k);
			return ret;
		}
		c->subs[c->nsubs++] = k;
		st->comp = C_SUBKEY;
		return 0;
	}
	case TAG_UID: {
		struct pgp_cert *c = st->cert;
		st->comp = C_NONE;
		if (!c)
			return 0;
		if (memchr(pk->body, '\0', pk->len))
			return 0; /* not a user ID we could print */
		if ((ret = grow((void **)&c->uids, &st->uids_cap, c->nuids, sizeof(*c->uids))) < 0)
			return ret;
		struct pgp_uid *u = &c->uids[c->nuids];
		memset(u, 0, sizeof(*u));
		if (!(u->text = malloc(pk->len + 1)))
			return tm_error_nomem();
		memcpy(u->text, pk->body, pk->len);
		u->text[pk->len] = '\0';
		c->nuids++;
		st->comp = C_UID;
		return 0;
	}
	case TAG_UAT:
		st->comp = C_UAT;
		return 0;
	case TAG_SIG:
		handle_sig(st, pk->body, pk->len);
		return 0;
	default:
		return 0; /* trust, marker and other packets carry nothing we use */
	}
}

static int parse_packets(struct kr_state *st, const unsigned char *p, size_t len)
{
	struct rd r = { p, len };
	struct packet pk;
	int ret;

	while ((ret = next_packet(&r, &pk)) == 0)
		if ((ret = handle_packet(st, &pk)) < 0)
			return ret;
	return ret == 1 ? 0 : ret;
}

/* ---- armor ---- */

static uint32_t crc24(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xb704ceu;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint32_t)p[i] << 16;
		for (int b = 0; b < 8; b++) {
			crc <<= 1;
			if (crc & 0x1000000u)
				crc ^= 0x1864cfbu;
		}
	}
	return crc & 0xffffffu;
}

static const char *find_line_with(const char *p, const char *end, const char *marker)
{
	size_t ml = strlen(marker);

	for (const char *q = p; (size_t)(end - q) >= ml; q++) {
		if ((q == p || q[-1] == '\n') && memcmp(q, marker, ml) == 0)
			return q;
	}
	return NULL;
}

static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl ? nl : end;
}

static int blank(const char *p, const char *e)
{
	for (; p < e; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return 0;
	return 1;
}

/* Decodes the armored block of kind `label` starting at or after *pos.
 * On success out holds the packets and *pos points after the END line.
 * 1 when there is no further block. */
static int dearmor(struct tm_buf *out, const char **pos, const char *end, const char *label)
{
	char begin[64], fin[64];
	const char *b, *p, *e, *data, *crc_line = NULL;
	int ret;

	snprintf(begin, sizeof(begin), "-----BEGIN PGP %s-----", label);
	snprintf(fin, sizeof(fin), "-----END PGP %s-----", label);
	if (!(b = find_line_with(*pos, end, begin)))
		return 1;
	p = b + strlen(begin);
	if (!blank(p, line_end(p, end)))
		return tm_error_set(TM_EPARSE, "OpenPGP armor: text after the BEGIN line");
	p = line_end(p, end);
	if (p < end)
		p++;
	/* Armor headers ("Key: value") up to a blank line. */
	data = p;
	for (const char *q = p; q < end;) {
		const char *le = line_end(q, end);
		if (blank(q, le)) {
			data = le < end ? le + 1 : le;
			break;
		}
		if (!memchr(q, ':', (size_t)(le - q)))
			break; /* no header block at all: data starts here */
		q = le < end ? le + 1 : le;
		data = q;
	}
	if (!(e = find_line_with(data, end, fin)))
		return tm_error_set(TM_EPARSE, "OpenPGP armor: no %s line", fin);
	/* The optional "=XXXX" checksum is the last non-blank line. */
	for (const char *q = data; q < e;) {
		const char *le = line_end(q, e);
		const char *s = q;
		while (s < le && (*s == ' ' || *s == '\t'))
			s++;
		if (s < le && *s == '=') {
			crc_line = s;
			for (const char *t = le; t < e; t++)
				if (*t != ' ' && *t != '\t' && *t != '\r' && *t != '\n')
					return tm_error_set(
						TM_EPARSE,
						"OpenPGP armor: data after the checksum");
			break;
		}
		q = le < e ? le + 1 : le;
	}
	ret = tm_base64_decode(out, data, (size_t)((crc_line ? crc_line : e) - data),
			       TM_B64_SKIP_SPACE);
	if (ret < 0)
		return ret == TM_ELIMIT ? ret : tm_error_wrap(TM_EPARSE, "OpenPGP armor");
	if (crc_line) {
		struct tm_buf crc;
		const char *ce = line_end(crc_line, e);
		tm_buf_init(&crc, 8);
		ret = tm_base64_decode(&crc, crc_line + 1, (size_t)(ce - crc_line - 1),
				       TM_B64_SKIP_SPACE);
		if (ret == 0 && crc.len != 3)
			ret = TM_EPARSE;
		if (ret == 0) {
			const unsigned char *c = (const unsigned char *)crc.ptr;
			uint32_t want = (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
			if (want != crc24((const unsigned char *)out->ptr, out->len))
				ret = tm_error_set(TM_EPARSE,
						   "OpenPGP armor: checksum mismatch (CRC24)");
		} else {
			ret = tm_error_set(TM_EPARSE, "OpenPGP armor: malformed checksum line");
		}
		tm_buf_free(&crc);
		if (ret < 0)
			return ret;
	}
	p = line_end(e, end);
	if (!blank(e + strlen(fin), p))
		return tm_error_set(TM_EPARSE, "OpenPGP armor: text after the END line");
	*pos = p;
	return 0;
}

int tm_pgp_keyring_parse(struct tm_pgp_keyring **out, const void *data, size_t len,
			 const char *origin)
{
	struct kr_state st = { 0 };
	const char *text = data, *pos = text, *end = text + len;
	struct tm_buf bin;
	int ret, blocks = 0;

	*out = NULL;
	if (!origin)
		origin = "OpenPGP keyring";
	if (len > TM_PGP_MAX_KEYRING)
		return tm_error_set(TM_ELIMIT, "%s: larger than %d bytes", origin,
				    TM_PGP_MAX_KEYRING);
	if (!(st.kr = calloc(1, sizeof(*st.kr))))
		return tm_error_nomem();
	tm_buf_init(&bin, TM_PGP_MAX_KEYRING);
	if (len > 0 && (((const unsigned char *)data)[0] & 0x80)) {
		/* Binary packets (gpg --export without --armor). */
		ret = parse_packets(&st, data, len);
		blocks = 1;
	} else {
		while ((ret = dearmor(&bin, &pos, end, "PUBLIC KEY BLOCK")) == 0) {
			blocks++;
			if (st.cert) /* a new block starts a new certificate */
				cert_finish(st.cert);
			st.cert = NULL;
			ret = parse_packets(&st, (const unsigned char *)bin.ptr, bin.len);
			if (ret < 0)
				break;
			tm_buf_reset(&bin);
		}
		if (ret == 1)
			ret = 0;
	}
	if (ret == 0 && st.cert)
		cert_finish(st.cert);
	if (ret == 0 && blocks == 0)
		ret = tm_error_set(TM_EPARSE, "no -----BEGIN PGP PUBLIC KEY BLOCK----- found");
	tm_buf_free(&bin);
	if (ret < 0) {
		tm_pgp_keyring_free(st.kr);
		return ret == TM_ENOMEM ? ret : tm_error_wrap(ret, "%s", origin);
	}
	*out = st.kr;
	return 0;
}

int tm_pgp_keyring_load(struct tm_pgp_keyring **out, const char *path)
{
	struct tm_buf b;
	int ret;

	*out = NULL;
	tm_buf_init(&b, TM_PGP_MAX_KEYRING + 1);
	ret = tm_file_read(&b, path, TM_PGP_MAX_KEYRING);
	if (ret == 0)
		ret = tm_pgp_keyring_parse(out, b.ptr ? b.ptr : "", b.len, path);
	else if (ret != TM_ENOTFOUND && ret != TM_ELIMIT)
		ret = tm_error_wrap(ret, "OpenPGP keyring");
	tm_buf_free(&b);
	return ret;
}

/* ---- verification ---- */

struct found {
	const struct pgp_cert *cert;
	const struct pgp_key *key;
};

static int find_key(struct found *f, const struct tm_pgp_keyring *kr, const struct pgp_sig *s)
{
	f->cert = NULL;
	f->key = NULL;
	for (size_t i = 0; kr && i < kr->n; i++) {
		const struct pgp_cert *c = &kr->certs[i];
		for (size_t j = 0; j <= c->nsubs; j++) {
			const struct pgp_key *k = j == 0 ? &c->primary : &c->subs[j - 1];
			if ((s->has_fpr && memcmp(s->issuer_fpr, k->fpr, 20) == 0) ||
			    (!s->has_fpr && s->has_keyid &&
			     memcmp(s->issuer_keyid, k->fpr + 12, 8) == 0)) {
				f->cert = c;
				f->key = k;
				return 0;
			}
		}
	}
	if (s->has_fpr) {
		char h[41];
		hex(h, s->issuer_fpr, 20);
		return tm_error_set(TM_EVERIFY, "signature by an unknown key (fingerprint %s)", h);
	}
	if (s->has_keyid) {
		char h[17];
		hex(h, s->issuer_keyid, 8);
		return tm_error_set(TM_EVERIFY, "signature by an unknown key (key ID %s)", h);
	}
	return tm_error_set(TM_EVERIFY, "signature names no issuer key");
}

/* Is key k (of cert c) entitled to have made signature s, now? */
static int key_allows(const struct pgp_cert *c, const struct pgp_key *k, const struct pgp_sig *s,
		      int64_t at_time)
{
	const struct pgp_key *keys[2] = { &c->primary, k };
	char h[41];

	hex(h, k->fpr, 20);
	if (k->unusable)
		return tm_error_set(TM_EVERIFY, "key %s cannot be used: %s", h, k->unusable);
	if (!c->primary.bound)
		return tm_error_set(TM_EVERIFY, "key %s has no valid self-signature", h);
	if (k != &c->primary && !k->bound)
		return tm_error_set(TM_EVERIFY, "subkey %s is not bound to its primary key", h);
	if (k->has_flags ? !(k->flags & KF_SIGN) : k != &c->primary)
		return tm_error_set(TM_EVERIFY, "key %s is not a signing key", h);
	if (k != &c->primary && !k->back_signed)
		return tm_error_set(TM_EVERIFY, "signing subkey %s has no valid back-signature", h);
	for (int i = 0; i < 2; i++) {
		const struct pgp_key *x = keys[i];
		if (x->revoked)
			return tm_error_set(TM_EVERIFY, "key %s is revoked", h);
		if (s->created < x->created)
			return tm_error_set(TM_EVERIFY, "signature predates key %s", h);
		if (x->expire) {
			int64_t until = (int64_t)x->created + x->expire;
			if ((int64_t)s->created > until)
				return tm_error_set(TM_EVERIFY,
						    "signature made after key %s expired", h);
			if (at_time != 0 && at_time > until)
				return tm_error_set(TM_EVERIFY, "key %s has expired", h);
		}
	}
	if (s->expire && at_time != 0 && at_time > (int64_t)s->created + s->expire)
		return tm_error_set(TM_EVERIFY, "signature has expired");
	return 0;
}

int tm_pgp_verify(char **out_signer, int64_t *out_sig_time, const struct tm_pgp_keyring *kr,
		  const char *armored, size_t armored_len, const void *msg, size_t msg_len,
		  int64_t at_time)
{
	const char *pos = armored;
	struct tm_buf bin;
	struct rd r;
	struct packet pk, extra;
	struct pgp_sig s;
	struct found f;
	enum tm_hash_alg alg = TM_HASH_SHA256; /* set by hash_alg() */
	int ret;

	*out_signer = NULL;
	if (out_sig_time)
		*out_sig_time = 0;
	if (armored_len > TM_PGP_MAX_ARMORED_SIG)
		return tm_error_set(TM_ELIMIT, "OpenPGP signature larger than %d bytes",
				    TM_PGP_MAX_ARMORED_SIG);
	tm_buf_init(&bin, TM_PGP_MAX_ARMORED_SIG);
	ret = dearmor(&bin, &pos, armored + armored_len, "SIGNATURE");
	if (ret == 1)
		ret = tm_error_set(TM_EPARSE,
				   "not an OpenPGP signature (no -----BEGIN PGP SIGNATURE-----)");
	if (ret < 0)
		goto out;
	for (const char *p = pos; p < armored + armored_len; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			ret = tm_error_set(TM_EPARSE, "OpenPGP signature: data after the armor");
			goto out;
		}
	r = (struct rd){ (const unsigned char *)bin.ptr, bin.len };
	if ((ret = next_packet(&r, &pk)) != 0) {
		if (ret == 1)
			ret = tm_error_set(TM_EPARSE, "OpenPGP signature: empty");
		goto out;
	}
	if (pk.tag != TAG_SIG) {
		ret = tm_error_set(TM_EPARSE, "OpenPGP signature: packet %d is not a signature",
				   pk.tag);
		goto out;
	}
	if ((ret = next_packet(&r, &extra)) != 1) {
		if (ret == 0)
			ret = tm_error_set(TM_EPARSE, "OpenPGP signature: more than one packet");
		goto out;
	}
	if ((ret = parse_sig(&s, pk.body, pk.len)) < 0)
		goto out;
	if ((ret = hash_alg(&alg, s.hash_algo)) < 0)
		goto out;
	if (s.unknown_critical) {
		ret = tm_error_set(TM_EVERIFY,
				   "signature has an unknown critical subpacket (type %d)",
				   s.unknown_critical);
		goto out;
	}
	if (s.type != SIG_BINARY) {
		ret = tm_error_set(TM_EVERIFY,
				   "signature type 0x%02x is not a binary document signature%s",
				   s.type, s.type == SIG_TEXT ? " (made with --textmode)" : "");
		goto out;
	}
	if ((ret = find_key(&f, kr, &s)) < 0 || (ret = key_allows(f.cert, f.key, &s, at_time)) < 0)
		goto out;
	{
		struct tm_span m = { msg, msg_len };
		if ((ret = verify_sig(&s, f.key, &m, 1)) < 0)
			goto out;
	}
	if (f.cert->signer) {
		*out_signer = strdup(f.cert->signer);
	} else {
		char h[41];
		hex(h, f.cert->primary.fpr, 20);
		*out_signer = strdup(h);
	}
	if (!*out_signer) {
		ret = tm_error_nomem();
		goto out;
	}
	if (out_sig_time)
		*out_sig_time = s.created;
	ret = 0;
out:
	tm_buf_free(&bin);
	return ret;
}
