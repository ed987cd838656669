/*
 * sshsig_internal.h — what sshsig.c (the SSHSIG blob, public keys, verification) and
 * allowed_signers.c (the allowed_signers file, OpenSSH's patterns) share: the key and
 * signer types and the functions one calls in the other, with the ssig_ prefix. Not a public
 * header (sshsig.h is).
 */
#ifndef TAGMOOR_VERIFY_SSHSIG_INTERNAL_H
#define TAGMOOR_VERIFY_SSHSIG_INTERNAL_H

#include "tagmoor/verify/sshsig.h"
#include "tagmoor/verify/crypto.h"

#include <stddef.h>
#include <stdint.h>

#define MAX_BLOB (48 * 1024)
#define MAX_MPINT (TM_RSA_MAX_BITS / 8 + 1)

enum key_type {
	KEY_ED25519 = 1,
	KEY_P256,
	KEY_P384,
	KEY_RSA
};

struct sshkey {
	enum key_type type;
	unsigned char *blob; /* the canonical public key blob, owned */
	size_t blob_len;
	const unsigned char *a, *b; /* into blob: ed25519 pk | EC point | RSA e, n */
	size_t a_len, b_len;
	char fp[64]; /* "SHA256:" + unpadded base64 */
};

struct tm_sshsig {
	struct sshkey key;
	char *namespace;
	unsigned char *reserved;
	size_t reserved_len;
	char hash_name[8];
	enum tm_hash_alg hash;
	char sig_type[32];
	unsigned char *sig; /* the raw signature inside the signature blob */
	size_t sig_len;
};

struct signer {
	char *principals;
	char *namespaces;                  /* NULL: any namespace */
	int64_t valid_after, valid_before; /* 0: unset */
	struct sshkey key;
	size_t line;
};

struct tm_sshsig_signers {
	struct signer *v;
	size_t n, cap;
	char *origin;
};

int ssig_key_parse(struct sshkey *k, const unsigned char *blob, size_t len);
const char *ssig_key_type_name(enum key_type t);
int ssig_is_cert_type(const char *t, size_t len);
void ssig_key_clear(struct sshkey *k);
char *ssig_dup_str(const char *s, size_t len);

#endif
