/*
 * openpgp_internal.h — what the files of the gpg half of the verify stage share (not a public
 * header; openpgp.h is), each function with the pgp_ prefix:
 *   openpgp.c     the keyring (self-signatures believed, certificates finished) and
 *                 tm_pgp_verify;
 *   pgppacket.c   bounded readers, packets, signature and key packets, one signature checked;
 *   pgparmor.c    ASCII armor (base64 + CRC24).
 */
#ifndef TAGMOOR_VERIFY_OPENPGP_INTERNAL_H
#define TAGMOOR_VERIFY_OPENPGP_INTERNAL_H

#include "tagmoor/verify/openpgp.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/buf.h"

#include <stddef.h>
#include <stdint.h>

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

struct rd {
	const unsigned char *p;
	size_t n;
};

struct packet {
	int tag;
	const unsigned char *body;
	size_t len;
};

int pgp_next_packet(struct rd *r, struct packet *pk);
int pgp_parse_sig(struct pgp_sig *s, const unsigned char *body, size_t len);
int pgp_verify_sig(const struct pgp_sig *s, const struct pgp_key *key, const struct tm_span *prefix,
		   size_t nprefix);
int pgp_hash_alg(enum tm_hash_alg *out, int algo);
void pgp_put_be32(unsigned char *out, size_t v);
void pgp_key_free(struct pgp_key *k);
int pgp_parse_key(struct pgp_key *k, const unsigned char *body, size_t len);
void pgp_key_span(struct tm_span span[2], unsigned char hdr[3], const struct pgp_key *k);
int pgp_issued_by(const struct pgp_sig *s, const struct pgp_key *k);
void pgp_hex(char *out, const unsigned char *p, size_t len);
int pgp_dearmor(struct tm_buf *out, const char **pos, const char *end, const char *label);

#endif
