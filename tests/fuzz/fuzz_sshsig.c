/*
 * fuzz_sshsig.c — the SSH signature parsers under libFuzzer: the input is
 * taken both as an armored signature and as a raw SSHSIG blob, and a
 * signature that parses is run through verify against the test
 * allowed_signers, so the trust lookup and the signature checks are reached.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/core/fileio.h"

#include "tagmoor/verify/sshsig.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tm_sshsig_signers *signers;
static struct tm_buf message;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The payload the seed signatures were made over, so they verify. */
	tm_buf_init(&message, 1 << 16);
	if (tm_file_read(&message, TM_SOURCE_DIR "/tests/data/crypto/message.txt", 1 << 15) != 0)
		tm_buf_reset(&message);
	/* Missing file: verify still runs, with every key untrusted. */
	if (tm_sshsig_signers_load(&signers,
				   TM_SOURCE_DIR "/tests/data/crypto/ssh/allowed_signers") != 0)
		signers = NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_sshsig *sig = NULL;
	char *principal = NULL;

	if (tm_sshsig_parse_blob(&sig, data, size) == 0)
		tm_sshsig_free(sig);
	if (tm_sshsig_parse_armored(&sig, (const char *)data, size) == 0) {
		tm_sshsig_free(sig);
		if (tm_sshsig_verify(&principal, signers, (const char *)data, size, message.ptr,
				     message.len, "git", 1767225600) == 0)
			free(principal);
	}
	return 0;
}
