/*
 * sshsig.c — OpenSSH signatures (PROTOCOL.sshsig) and allowed_signers.
 *
 * This is the ssh half of the verify stage: git hands us the signed payload
 * of a tag or commit and the armored signature that came with it, and we
 * decide whether a key of the operator's allowed_signers file made it for the
 * "git" namespace. Everything here reads untrusted bytes, so every length is
 * checked against what is left before it is used, nothing may trail a
 * structure, and integers must be minimally encoded: a key or signature then
 * has exactly one encoding, and keys can be compared byte for byte.
 * The mathematics is in crypto.c; the allowed_signers file is read by
 * allowed_signers.c.
 */
#include "tagmoor/core/base64.h"
#include "tagmoor/verify/sshsig.h"
#include "sshsig_internal.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/time.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAGIC "SSHSIG"
#define MAGIC_LEN 6
#define SIG_VERSION 1

/* ---- bounded reader of the SSH wire encoding ---- */

struct rd {
	const unsigned char *p;
	size_t n;
	const char *what; /* for messages */
};

static int rd_u32(struct rd *r, uint32_t *v)
{
	*v = 0; /* outputs are defined on failure too (and gcc -O2 can see it) */
	if (r->n < 4)
		return tm_error_set(TM_EPARSE, "%s: truncated", r->what);
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->n -= 4;
	return 0;
}

static int rd_string(struct rd *r, const unsigned char **s, size_t *len)
{
	uint32_t l;
	int ret;

	*s = NULL;
	*len = 0;
	if ((ret = rd_u32(r, &l)) < 0)
		return ret;
	if (l > r->n)
		return tm_error_set(TM_EPARSE, "%s: truncated", r->what);
	*s = r->p;
	*len = l;
	r->p += l;
	r->n -= l;
	return 0;
}

/* A string used as a name: no NUL inside, copied into out (NUL-terminated). */
static int rd_name(struct rd *r, char *out, size_t outlen)
{
	const unsigned char *s;
	size_t len;
	int ret;

	if ((ret = rd_string(r, &s, &len)) < 0)
		return ret;
	if (len >= outlen || memchr(s, '\0', len))
		return tm_error_set(TM_EPARSE, "%s: invalid name", r->what);
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* A positive, minimally encoded mpint; *v points at its magnitude. */
static int rd_mpint(struct rd *r, const unsigned char **v, size_t *len)
{
	const unsigned char *s;
	size_t l;
	int ret;

	if ((ret = rd_string(r, &s, &l)) < 0)
		return ret;
	if (l > MAX_MPINT)
		return tm_error_set(TM_EPARSE, "%s: integer too large", r->what);
	if (l > 0 && (s[0] & 0x80))
		return tm_error_set(TM_EPARSE, "%s: negative integer", r->what);
	if (l > 0 && s[0] == 0 && (l == 1 || !(s[1] & 0x80)))
		return tm_error_set(TM_EPARSE, "%s: integer not minimally encoded", r->what);
	if (l > 0 && s[0] == 0) {
		s++;
		l--;
	}
	*v = s;
	*len = l;
	return 0;
}

static int rd_end(const struct rd *r)
{
	if (r->n != 0)
		return tm_error_set(TM_EPARSE, "%s: %zu trailing bytes", r->what, r->n);
	return 0;
}

static int name_is(const unsigned char *s, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(s, name, len) == 0;
}

/* ---- public keys ---- */

int ssig_is_cert_type(const char *t, size_t len)
{
	static const char suffix[] = "-cert-v01@openssh.com";
	size_t sl = sizeof(suffix) - 1;

	return len >= sl && memcmp(t + len - sl, suffix, sl) == 0;
}

static int unsupported_key(const char *t, size_t len)
{
	if (ssig_is_cert_type(t, len))
		return tm_error_set(TM_EVERIFY, "certificate keys are not supported");
	return tm_error_set(TM_EVERIFY, "unsupported key type '%.*s'", (int)(len > 64 ? 64 : len),
			    t);
}

void ssig_key_clear(struct sshkey *k)
{
	free(k->blob);
	memset(k, 0, sizeof(*k));
}

/* Parses a public key blob into k (which takes a copy of it). */
int ssig_key_parse(struct sshkey *k, const unsigned char *blob, size_t len)
{
	struct rd r = { NULL, len, "public key" };
	const unsigned char *t, *x;
	size_t tl, xl;
	struct tm_buf fp;
	unsigned char h[32];
	int ret;

	memset(k, 0, sizeof(*k));
	if (!(k->blob = malloc(len ? len : 1)))
		return tm_error_nomem();
	if (len)
		memcpy(k->blob, blob, len);
	k->blob_len = len;
	r.p = k->blob;
	if ((ret = rd_string(&r, &t, &tl)) < 0)
		goto fail;
	if (name_is(t, tl, "ssh-ed25519")) {
		k->type = KEY_ED25519;
		if ((ret = rd_string(&r, &k->a, &k->a_len)) < 0)
			goto fail;
		if (k->a_len != 32) {
			ret = tm_error_set(TM_EPARSE, "public key: bad Ed25519 key length");
			goto fail;
		}
	} else if (name_is(t, tl, "ecdsa-sha2-nistp256") || name_is(t, tl, "ecdsa-sha2-nistp384")) {
		int p256 = name_is(t, tl, "ecdsa-sha2-nistp256");
		k->type = p256 ? KEY_P256 : KEY_P384;
		if ((ret = rd_string(&r, &x, &xl)) < 0 ||
		    (ret = rd_string(&r, &k->a, &k->a_len)) < 0)
			goto fail;
		if (!name_is(x, xl, p256 ? "nistp256" : "nistp384")) {
			ret = tm_error_set(TM_EPARSE, "public key: curve does not match key type");
			goto fail;
		}
		if (k->a_len != (p256 ? 65u : 97u) || k->a[0] != 0x04) {
			ret = tm_error_set(TM_EPARSE, "public key: bad ECDSA point");
			goto fail;
		}
	} else if (name_is(t, tl, "ssh-rsa")) {
		k->type = KEY_RSA;
		/* a = e, b = n */
		if ((ret = rd_mpint(&r, &k->a, &k->a_len)) < 0 ||
		    (ret = rd_mpint(&r, &k->b, &k->b_len)) < 0)
			goto fail;
		if (k->a_len == 0 || k->b_len == 0) {
			ret = tm_error_set(TM_EPARSE, "public key: bad RSA key");
			goto fail;
		}
	} else {
		ret = unsupported_key((const char *)t, tl);
		goto fail;
	}
	if ((ret = rd_end(&r)) < 0)
		goto fail;

	if ((ret = tm_crypto_hash(h, TM_HASH_SHA256, k->blob, k->blob_len)) < 0)
		goto fail;
	tm_buf_init(&fp, sizeof(k->fp));
	if ((ret = tm_buf_puts(&fp, "SHA256:")) < 0 ||
	    (ret = tm_base64_encode(&fp, h, sizeof(h), TM_B64_NO_PAD)) < 0) {
		tm_buf_free(&fp);
		goto fail;
	}
	memcpy(k->fp, fp.ptr, fp.len + 1);
	tm_buf_free(&fp);
	return 0;
fail:
	ssig_key_clear(k);
	return ret;
}

const char *ssig_key_type_name(enum key_type t)
{
	switch (t) {
	case KEY_ED25519:
		return "ssh-ed25519";
	case KEY_P256:
		return "ecdsa-sha2-nistp256";
	case KEY_P384:
		return "ecdsa-sha2-nistp384";
	case KEY_RSA:
		return "ssh-rsa";
	}
	return "?";
}

static int key_equal(const struct sshkey *a, const struct sshkey *b)
{
	return a->blob_len == b->blob_len && memcmp(a->blob, b->blob, a->blob_len) == 0;
}

/* ---- the SSHSIG blob ---- */

void tm_sshsig_free(struct tm_sshsig *sig)
{
	if (!sig)
		return;
	ssig_key_clear(&sig->key);
	free(sig->namespace);
	free(sig->reserved);
	free(sig->sig);
	free(sig);
}

static int dup_bytes(unsigned char **out, const unsigned char *p, size_t len)
{
	if (!(*out = malloc(len ? len : 1)))
		return tm_error_nomem();
	if (len)
		memcpy(*out, p, len);
	return 0;
}

/* The inner signature blob: string type, string bytes; checked against the key. */
static int parse_sig_field(struct tm_sshsig *s, const unsigned char *p, size_t len)
{
	struct rd r = { p, len, "signature" };
	const unsigned char *v;
	size_t vl;
	int ret;

	if ((ret = rd_name(&r, s->sig_type, sizeof(s->sig_type))) < 0 ||
	    (ret = rd_string(&r, &v, &vl)) < 0 || (ret = rd_end(&r)) < 0)
		return ret;
	switch (s->key.type) {
	case KEY_ED25519:
		if (strcmp(s->sig_type, "ssh-ed25519") != 0)
			return tm_error_set(TM_EPARSE, "signature type does not match the key");
		if (vl != 64)
			return tm_error_set(TM_EPARSE, "signature: bad Ed25519 signature length");
		break;
	case KEY_P256:
	case KEY_P384: {
		struct rd rs = { v, vl, "ECDSA signature" };
		const unsigned char *x;
		size_t xl;
		if (strcmp(s->sig_type, ssig_key_type_name(s->key.type)) != 0)
			return tm_error_set(TM_EPARSE, "signature type does not match the key");
		if ((ret = rd_mpint(&rs, &x, &xl)) < 0 || (ret = rd_mpint(&rs, &x, &xl)) < 0 ||
		    (ret = rd_end(&rs)) < 0)
			return ret;
		break;
	}
	case KEY_RSA:
		if (strcmp(s->sig_type, "ssh-rsa") == 0)
			return tm_error_set(
				TM_EVERIFY,
				"RSA signature with SHA-1 (ssh-rsa) is refused; sign with "
				"rsa-sha2-512");
		if (strcmp(s->sig_type, "rsa-sha2-256") != 0 &&
		    strcmp(s->sig_type, "rsa-sha2-512") != 0)
			return tm_error_set(TM_EPARSE, "signature type does not match the key");
		if (vl == 0)
			return tm_error_set(TM_EPARSE, "signature: empty RSA signature");
		break;
	}
	return dup_bytes(&s->sig, v, vl) < 0 ? TM_ENOMEM : (s->sig_len = vl, 0);
}

int tm_sshsig_parse_blob(struct tm_sshsig **out, const void *blob, size_t len)
{
	struct rd r = { blob, len, "SSH signature" };
	struct tm_sshsig *s = NULL;
	const unsigned char *v;
	size_t vl;
	uint32_t version;
	int ret;

	*out = NULL;
	if (len > MAX_BLOB)
		return tm_error_set(TM_ELIMIT, "SSH signature larger than %d bytes", MAX_BLOB);
	if (len < MAGIC_LEN || memcmp(blob, MAGIC, MAGIC_LEN) != 0)
		return tm_error_set(TM_EPARSE, "not an SSH signature (no SSHSIG preamble)");
	r.p += MAGIC_LEN;
	r.n -= MAGIC_LEN;
	if ((ret = rd_u32(&r, &version)) < 0)
		return ret;
	if (version != SIG_VERSION)
		return tm_error_set(TM_EPARSE, "unsupported SSH signature version %u", version);
	if (!(s = calloc(1, sizeof(*s))))
		return tm_error_nomem();

	if ((ret = rd_string(&r, &v, &vl)) < 0 || (ret = ssig_key_parse(&s->key, v, vl)) < 0)
		goto fail;
	if ((ret = rd_string(&r, &v, &vl)) < 0)
		goto fail;
	if (vl == 0 || memchr(v, '\0', vl)) {
		ret = tm_error_set(TM_EPARSE, "SSH signature: invalid namespace");
		goto fail;
	}
	if (!(s->namespace = malloc(vl + 1))) {
		ret = tm_error_nomem();
		goto fail;
	}
	memcpy(s->namespace, v, vl);
	s->namespace[vl] = '\0';
	if ((ret = rd_string(&r, &v, &vl)) < 0 || (ret = dup_bytes(&s->reserved, v, vl)) < 0)
		goto fail;
	s->reserved_len = vl;
	if ((ret = rd_string(&r, &v, &vl)) < 0)
		goto fail;
	if (name_is(v, vl, "sha256")) {
		s->hash = TM_HASH_SHA256;
	} else if (name_is(v, vl, "sha512")) {
		s->hash = TM_HASH_SHA512;
	} else {
		ret = tm_error_set(TM_EVERIFY, "unsupported signature hash algorithm '%.*s'",
				   (int)(vl > 32 ? 32 : vl), (const char *)v);
		goto fail;
	}
	memcpy(s->hash_name, v, vl);
	s->hash_name[vl] = '\0';
	if ((ret = rd_string(&r, &v, &vl)) < 0 || (ret = parse_sig_field(s, v, vl)) < 0)
		goto fail;
	if ((ret = rd_end(&r)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	tm_sshsig_free(s);
	return ret;
}

static const char begin_marker[] = "-----BEGIN SSH SIGNATURE-----";
static const char end_marker[] = "-----END SSH SIGNATURE-----";

static const char *find_bytes(const char *hay, size_t hlen, const char *needle)
{
	size_t nl = strlen(needle);

	for (size_t i = 0; nl <= hlen && i <= hlen - nl; i++)
		if (memcmp(hay + i, needle, nl) == 0)
			return hay + i;
	return NULL;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int tm_sshsig_parse_armored(struct tm_sshsig **out, const char *armored, size_t len)
{
	size_t bl = sizeof(begin_marker) - 1, el = sizeof(end_marker) - 1, i = 0;
	const char *body, *end;
	struct tm_buf blob;
	int ret;

	*out = NULL;
	if (len > TM_SSHSIG_MAX_ARMORED)
		return tm_error_set(TM_ELIMIT, "SSH signature larger than %d bytes",
				    TM_SSHSIG_MAX_ARMORED);
	while (i < len && is_space(armored[i]))
		i++;
	if (len - i < bl || memcmp(armored + i, begin_marker, bl) != 0)
		return tm_error_set(TM_EPARSE, "not an SSH signature (no %s line)", begin_marker);
	body = armored + i + bl;
	if (body == armored + len || (*body != '\n' && *body != '\r'))
		return tm_error_set(TM_EPARSE, "SSH signature: malformed armor");
	if (!(end = find_bytes(body, (size_t)(armored + len - body), end_marker)))
		return tm_error_set(TM_EPARSE, "SSH signature: no %s line", end_marker);
	for (const char *p = end + el; p < armored + len; p++)
		if (!is_space(*p))
			return tm_error_set(TM_EPARSE, "SSH signature: data after %s", end_marker);
	tm_buf_init(&blob, MAX_BLOB + 1);
	ret = tm_base64_decode(&blob, body, (size_t)(end - body), TM_B64_SKIP_SPACE);
	if (ret == TM_ELIMIT)
		ret = tm_error_set(TM_ELIMIT, "SSH signature larger than %d bytes", MAX_BLOB);
	else if (ret < 0)
		ret = tm_error_wrap(ret, "SSH signature");
	else
		ret = tm_sshsig_parse_blob(out, blob.ptr, blob.len);
	tm_buf_free(&blob);
	return ret;
}

const char *tm_sshsig_namespace(const struct tm_sshsig *sig)
{
	return sig->namespace;
}

const char *tm_sshsig_hash_name(const struct tm_sshsig *sig)
{
	return sig->hash_name;
}

const char *tm_sshsig_fingerprint(const struct tm_sshsig *sig)
{
	return sig->key.fp;
}

/* ---- verification ---- */

static void put_u32(unsigned char out[4], size_t v)
{
	out[0] = (unsigned char)(v >> 24);
	out[1] = (unsigned char)(v >> 16);
	out[2] = (unsigned char)(v >> 8);
	out[3] = (unsigned char)v;
}

/* The signature mathematics over the "signed data" of PROTOCOL.sshsig. */
static int check_signature(const struct tm_sshsig *s, const void *msg, size_t msg_len)
{
	unsigned char mh[TM_HASH_MAX_LEN], dh[TM_HASH_MAX_LEN];
	unsigned char l_ns[4], l_res[4], l_alg[4], l_h[4];
	size_t mhl = tm_crypto_hash_len(s->hash), ns_len = strlen(s->namespace);
	size_t alg_len = strlen(s->hash_name);
	struct tm_buf data;
	int ret;

	if ((ret = tm_crypto_hash(mh, s->hash, msg, msg_len)) < 0)
		return ret;
	put_u32(l_ns, ns_len);
	put_u32(l_res, s->reserved_len);
	put_u32(l_alg, alg_len);
	put_u32(l_h, mhl);
	struct tm_span parts[] = {
		{ MAGIC, MAGIC_LEN },
		{ l_ns, 4 },
		{ s->namespace, ns_len },
		{ l_res, 4 },
		{ s->reserved, s->reserved_len },
		{ l_alg, 4 },
		{ s->hash_name, alg_len },
		{ l_h, 4 },
		{ mh, mhl },
	};
	size_t nparts = sizeof(parts) / sizeof(parts[0]);

	switch (s->key.type) {
	case KEY_ED25519:
		/* Ed25519 signs the data itself: assemble it. */
		tm_buf_init(&data, MAX_BLOB + 256);
		for (size_t i = 0; i < nparts && ret == 0; i++)
			ret = tm_buf_put(&data, parts[i].ptr, parts[i].len);
		if (ret == 0)
			ret = tm_crypto_ed25519_verify(s->key.a, s->sig, data.ptr, data.len);
		tm_buf_free(&data);
		return ret;
	case KEY_P256:
	case KEY_P384: {
		enum tm_hash_alg alg = s->key.type == KEY_P256 ? TM_HASH_SHA256 : TM_HASH_SHA384;
		struct rd rs = { s->sig, s->sig_len, "ECDSA signature" };
		const unsigned char *r, *sv;
		size_t rl, sl;
		if ((ret = rd_mpint(&rs, &r, &rl)) < 0 || (ret = rd_mpint(&rs, &sv, &sl)) < 0)
			return ret;
		if ((ret = tm_crypto_hashv(dh, alg, parts, nparts)) < 0)
			return ret;
		return tm_crypto_ecdsa_verify(s->key.type == KEY_P256 ? TM_EC_P256 : TM_EC_P384,
					      s->key.a, s->key.a_len, dh, tm_crypto_hash_len(alg),
					      r, rl, sv, sl);
	}
	case KEY_RSA: {
		enum tm_hash_alg alg = strcmp(s->sig_type, "rsa-sha2-256") == 0 ? TM_HASH_SHA256
										: TM_HASH_SHA512;
		if ((ret = tm_crypto_hashv(dh, alg, parts, nparts)) < 0)
			return ret;
		return tm_crypto_rsa_verify(alg, s->key.b, s->key.b_len, s->key.a, s->key.a_len, dh,
					    tm_crypto_hash_len(alg), s->sig, s->sig_len);
	}
	}
	return tm_error_set(TM_EVERIFY, "unsupported key type");
}

/* Why a line whose key matches does not allow this signature; 0 if it does. */
static int line_allows(const struct tm_sshsig_signers *ss, const struct signer *sg,
		       const char *namespace, int64_t at_time)
{
	if (sg->namespaces && tm_sshsig_match_list(namespace, sg->namespaces) != 1)
		return tm_error_set(
			TM_EVERIFY,
			"key %s is not allowed to sign namespace '%s' (%s:%zu namespaces=\"%s\")",
			sg->key.fp, namespace, ss->origin, sg->line, sg->namespaces);
	if (at_time != 0 && sg->valid_after != 0 && at_time < sg->valid_after)
		return tm_error_set(TM_EVERIFY, "key %s is not yet valid (%s:%zu valid-after)",
				    sg->key.fp, ss->origin, sg->line);
	if (at_time != 0 && sg->valid_before != 0 && at_time > sg->valid_before)
		return tm_error_set(TM_EVERIFY, "key %s has expired (%s:%zu valid-before)",
				    sg->key.fp, ss->origin, sg->line);
	return 0;
}

/* The first positive pattern of a principals list. */
static char *first_principal(const char *list)
{
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len > 0 && *p != '!')
			return ssig_dup_str(p, len);
		p += len;
		if (*p == ',')
			p++;
	}
	return ssig_dup_str(list, strlen(list));
}

int tm_sshsig_verify(char **out_principal, const struct tm_sshsig_signers *signers,
		     const char *armored, size_t armored_len, const void *msg, size_t msg_len,
		     const char *namespace, int64_t at_time)
{
	struct tm_sshsig *sig = NULL;
	const struct signer *found = NULL;
	char why[512] = "";
	int ret;

	*out_principal = NULL;
	if ((ret = tm_sshsig_parse_armored(&sig, armored, armored_len)) < 0)
		return ret;
	if (strcmp(sig->namespace, namespace) != 0) {
		ret = tm_error_set(TM_EVERIFY, "signature namespace '%.64s' is not '%s'",
				   sig->namespace, namespace);
		goto out;
	}
	for (size_t i = 0; signers && i < signers->n && !found; i++) {
		const struct signer *sg = &signers->v[i];
		if (!key_equal(&sg->key, &sig->key))
			continue;
		if (line_allows(signers, sg, namespace, at_time) == 0)
			found = sg;
		else if (!why[0]) /* report the first matching line's reason */
			snprintf(why, sizeof(why), "%s", tm_error_last());
	}
	if (!found) {
		if (why[0])
			ret = tm_error_set(TM_EVERIFY, "%s", why);
		else
			ret = tm_error_set(TM_EVERIFY, "signature by an untrusted key (%s)",
					   sig->key.fp);
		goto out;
	}
	if ((ret = check_signature(sig, msg, msg_len)) < 0) {
		if (ret == TM_EPARSE)
			ret = tm_error_wrap(TM_EVERIFY, "signature does not verify");
		goto out;
	}
	if (!(*out_principal = first_principal(found->principals))) {
		ret = tm_error_nomem();
		goto out;
	}
	ret = 0;
out:
	tm_sshsig_free(sig);
	return ret;
}
