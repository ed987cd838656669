/*
 * sshsig.h — OpenSSH signatures (the SSHSIG format of `ssh-keygen -Y sign`,
 * which git uses with gpg.format = ssh) and the allowed_signers trust file.
 *
 * verify finds the line of allowed_signers whose key made the signature,
 * checks that line's options (namespaces=, valid-after=, valid-before=),
 * checks the signature, and reports the line's first principal. Supported
 * keys: ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384 and ssh-rsa
 * (>= 2048 bits, rsa-sha2-256 / rsa-sha2-512 signatures only).
 */
#ifndef TAGMOOR_SSHSIG_H
#define TAGMOOR_SSHSIG_H

#include <stddef.h>
#include <stdint.h>

#define TM_SSHSIG_MAX_ARMORED (64 * 1024)
#define TM_SSHSIG_MAX_SIGNERS_FILE (1024 * 1024)

struct tm_sshsig;         /* one parsed signature */
struct tm_sshsig_signers; /* one parsed allowed_signers file */

/* Parses allowed_signers text. origin names the file in messages
 * ("allowed_signers:3: unknown option 'foo'"). TM_EPARSE on any bad line,
 * TM_ELIMIT over TM_SSHSIG_MAX_SIGNERS_FILE. */
int tm_sshsig_signers_parse(struct tm_sshsig_signers **out, const char *text, size_t len,
			    const char *origin);
/* Reads and parses a file (regular, no symlink, at most 1 MiB). */
int tm_sshsig_signers_load(struct tm_sshsig_signers **out, const char *path);
void tm_sshsig_signers_free(struct tm_sshsig_signers *signers);
/* Number of keys (lines) in the file. */
size_t tm_sshsig_signers_count(const struct tm_sshsig_signers *signers);

/* Verifies an armored signature ("-----BEGIN SSH SIGNATURE-----") over msg.
 * namespace is the one the signature must carry ("git"). at_time (seconds
 * since the epoch) is checked against valid-after / valid-before; 0 skips
 * that check. On success *out_principal (malloc'd) is the first principal
 * of the matching line. TM_EVERIFY with a message when refused, TM_EPARSE
 * for a malformed signature. */
int tm_sshsig_verify(char **out_principal, const struct tm_sshsig_signers *signers,
		     const char *armored, size_t armored_len, const void *msg, size_t msg_len,
		     const char *namespace, int64_t at_time);

/* The parsers under verify, exposed for tests and fuzzing. parse_armored
 * removes the armor and calls parse_blob. */
int tm_sshsig_parse_armored(struct tm_sshsig **out, const char *armored, size_t len);
int tm_sshsig_parse_blob(struct tm_sshsig **out, const void *blob, size_t len);
void tm_sshsig_free(struct tm_sshsig *sig);
/* Borrowed: the namespace, the hash algorithm name ("sha512") and the key
 * fingerprint ("SHA256:..." as ssh-keygen -l prints it). */
const char *tm_sshsig_namespace(const struct tm_sshsig *sig);
const char *tm_sshsig_hash_name(const struct tm_sshsig *sig);
const char *tm_sshsig_fingerprint(const struct tm_sshsig *sig);

/* OpenSSH's match_pattern_list: pattern_list is comma-separated patterns
 * with '*' and '?'; a pattern starting with '!' negates. Returns 1 when
 * string matches a positive pattern and no negated one, -1 when a negated
 * pattern matches, 0 otherwise. */
int tm_sshsig_match_list(const char *string, const char *pattern_list);

#endif
