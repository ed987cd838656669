/*
 * fuzz_openpgp.c — the OpenPGP armor and packet parsers under libFuzzer.
 * Every input is read both as a keyring (key packets, self-signatures) and
 * as a detached signature verified against the test keyring, so the issuer
 * lookup, the key checks and the hashing are reached.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/core/fileio.h"

#include "tagmoor/verify/openpgp.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tm_pgp_keyring *keyring;
static struct tm_buf message;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The payload the seed signatures were made over, so they verify. */
	tm_buf_init(&message, 1 << 16);
	if (tm_file_read(&message, TM_SOURCE_DIR "/tests/data/crypto/message.txt", 1 << 15) != 0)
		tm_buf_reset(&message);
	if (tm_pgp_keyring_load(&keyring, TM_SOURCE_DIR "/tests/data/crypto/pgp/keyring.asc") != 0)
		keyring = NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_pgp_keyring *kr = NULL;
	char *signer = NULL;
	int64_t t;

	if (tm_pgp_keyring_parse(&kr, data, size, "fuzz") == 0)
		tm_pgp_keyring_free(kr);
	if (tm_pgp_verify(&signer, &t, keyring, (const char *)data, size, message.ptr, message.len,
			  1767225600) == 0)
		free(signer);
	return 0;
}
