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
 * with crypto.c. Everything refused says why, in one line. This file: the keyring
 * and the verification; packets are read in pgppacket.c, armor in pgparmor.c.
 */
#include "tagmoor/core/base64.h"
#include "tagmoor/verify/openpgp.h"
#include "openpgp_internal.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keyring ---- */

static void cert_free(struct pgp_cert *c)
{
	pgp_key_free(&c->primary);
	for (size_t i = 0; i < c->nsubs; i++)
		pgp_key_free(&c->subs[i]);
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
	if (pgp_verify_sig(s, primary, prefix, nprefix) != 0)
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
		if (pgp_parse_sig(&back, s->embedded, s->embedded_len) == 0 &&
		    back.type == SIG_PRIMARY_BINDING &&
		    pgp_verify_sig(&back, target, prefix, nprefix) == 0)
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
	if (!c || pgp_parse_sig(&s, body, len) != 0 || s.unknown_critical ||
	    !pgp_issued_by(&s, &c->primary))
		return;
	pgp_key_span(prefix, h1, &c->primary);
	switch (st->comp) {
	case C_PRIMARY:
		if (s.type == SIG_KEY_REVOCATION) {
			if (pgp_verify_sig(&s, &c->primary, prefix, 2) == 0)
				c->primary.revoked = 1;
		} else if (s.type == SIG_DIRECT_KEY) {
			if ((!c->has_direct || s.created >= c->direct_time) &&
			    pgp_verify_sig(&s, &c->primary, prefix, 2) == 0) {
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
		pgp_put_be32(uh + 1, ulen);
		prefix[2] = (struct tm_span){ uh, 5 };
		prefix[3] = (struct tm_span){ u->text, ulen };
		if (s.type == SIG_CERT_REVOCATION) {
			if (pgp_verify_sig(&s, &c->primary, prefix, 4) == 0)
				u->revoked = 1;
		} else if (s.type >= SIG_CERT_GENERIC && s.type <= SIG_CERT_POSITIVE) {
			if ((!u->valid || s.created >= u->sig_time) &&
			    pgp_verify_sig(&s, &c->primary, prefix, 4) == 0) {
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
		pgp_key_span(prefix + 2, h2, sub);
		if (s.type == SIG_SUBKEY_REVOCATION) {
			if (pgp_verify_sig(&s, &c->primary, prefix, 4) == 0)
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
		if ((ret = pgp_parse_key(&k, pk->body, pk->len)) < 0)
			return ret;
		if (ret == 1)
			return 0; /* not v4: skip the whole certificate */
		if ((ret = grow((void **)&kr->certs, &kr->cap, kr->n, sizeof(*kr->certs))) < 0) {
			pgp_key_free(&k);
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
		if ((ret = pgp_parse_key(&k, pk->body, pk->len)) < 0)
			return ret;
		if (ret == 1)
			return 0;
		if ((ret = grow((void **)&c->subs, &st->subs_cap, c->nsubs, sizeof(*c->subs))) <
		    0) {
			pgp_key_free(&k);
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

	while ((ret = pgp_next_packet(&r, &pk)) == 0)
		if ((ret = handle_packet(st, &pk)) < 0)
			return ret;
	return ret == 1 ? 0 : ret;
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
		while ((ret = pgp_dearmor(&bin, &pos, end, "PUBLIC KEY BLOCK")) == 0) {
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
		pgp_hex(h, s->issuer_fpr, 20);
		return tm_error_set(TM_EVERIFY, "signature by an unknown key (fingerprint %s)", h);
	}
	if (s->has_keyid) {
		char h[17];
		pgp_hex(h, s->issuer_keyid, 8);
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

	pgp_hex(h, k->fpr, 20);
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
	enum tm_hash_alg alg = TM_HASH_SHA256; /* set by pgp_hash_alg() */
	int ret;

	*out_signer = NULL;
	if (out_sig_time)
		*out_sig_time = 0;
	if (armored_len > TM_PGP_MAX_ARMORED_SIG)
		return tm_error_set(TM_ELIMIT, "OpenPGP signature larger than %d bytes",
				    TM_PGP_MAX_ARMORED_SIG);
	tm_buf_init(&bin, TM_PGP_MAX_ARMORED_SIG);
	ret = pgp_dearmor(&bin, &pos, armored + armored_len, "SIGNATURE");
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
	if ((ret = pgp_next_packet(&r, &pk)) != 0) {
		if (ret == 1)
			ret = tm_error_set(TM_EPARSE, "OpenPGP signature: empty");
		goto out;
	}
	if (pk.tag != TAG_SIG) {
		ret = tm_error_set(TM_EPARSE, "OpenPGP signature: packet %d is not a signature",
				   pk.tag);
		goto out;
	}
	if ((ret = pgp_next_packet(&r, &extra)) != 1) {
		if (ret == 0)
			ret = tm_error_set(TM_EPARSE, "OpenPGP signature: more than one packet");
		goto out;
	}
	if ((ret = pgp_parse_sig(&s, pk.body, pk.len)) < 0)
		goto out;
	if ((ret = pgp_hash_alg(&alg, s.hash_algo)) < 0)
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
		if ((ret = pgp_verify_sig(&s, f.key, &m, 1)) < 0)
			goto out;
	}
	if (f.cert->signer) {
		*out_signer = strdup(f.cert->signer);
	} else {
		char h[41];
		pgp_hex(h, f.cert->primary.fpr, 20);
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
