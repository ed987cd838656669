/*
 * openpgp.h — OpenPGP detached signatures (git's default gpg.format) and the
 * armored public keyring they are checked against: the subset of RFC 4880 /
 * RFC 9580 that `gpg --detach-sign --armor` and `gpg --armor --export`
 * produce for RSA and Ed25519 keys, version 4.
 *
 * The keyring's self-signatures are verified as it is read: a subkey is used
 * only when its binding (and, for signing, its back-signature) verifies; user
 * IDs only with a valid self-certification; revocations and key expiry are
 * honoured. A data signature must be v4, binary (type 0x00), SHA-256/384/512.
 */
#ifndef TAGMOOR_OPENPGP_H
#define TAGMOOR_OPENPGP_H

#include <stddef.h>
#include <stdint.h>

#define TM_PGP_MAX_KEYRING (1024 * 1024)
#define TM_PGP_MAX_ARMORED_SIG (64 * 1024)

struct tm_pgp_keyring;

/* Parses one or more armored "PGP PUBLIC KEY BLOCK"s (or binary packets).
 * origin names the source in messages. TM_EPARSE for malformed input (also
 * for secret key material), TM_ELIMIT over TM_PGP_MAX_KEYRING. */
int tm_pgp_keyring_parse(struct tm_pgp_keyring **out, const void *data, size_t len,
			 const char *origin);
/* Reads (regular file, no symlink, at most 1 MiB) and parses. */
int tm_pgp_keyring_load(struct tm_pgp_keyring **out, const char *path);
void tm_pgp_keyring_free(struct tm_pgp_keyring *keyring);
/* Number of primary keys (certificates) read. */
size_t tm_pgp_keyring_count(const struct tm_pgp_keyring *keyring);

/* Verifies an armored detached signature ("-----BEGIN PGP SIGNATURE-----")
 * over msg. at_time (seconds since the epoch) is checked against key and
 * signature expiry; 0 skips those checks (the signature must still have been
 * made while its key was valid). On success *out_signer (malloc'd) is the
 * primary user ID of the signing key ("Release <release@example.com>") and
 * *out_sig_time the signature's creation time. TM_EVERIFY with a message
 * when refused, TM_EPARSE for malformed input. */
int tm_pgp_verify(char **out_signer, int64_t *out_sig_time, const struct tm_pgp_keyring *keyring,
		  const char *armored, size_t armored_len, const void *msg, size_t msg_len,
		  int64_t at_time);

#endif
