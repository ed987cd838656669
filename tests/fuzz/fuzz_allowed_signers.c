/*
 * fuzz_allowed_signers.c — the allowed_signers parser and the OpenSSH
 * pattern matcher under libFuzzer. The first line of the input is also used
 * as a pattern list, against a namespace and a principal.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/verify/sshsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_sshsig_signers *s = NULL;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t first = nl ? (size_t)(nl - data) : size;
	char *pattern;

	if (tm_sshsig_signers_parse(&s, (const char *)data, size, "fuzz") == 0)
		tm_sshsig_signers_free(s);
	if (first > 4096 || !(pattern = malloc(first + 1)))
		return 0;
	memcpy(pattern, data, first);
	pattern[first] = '\0';
	if (!memchr(pattern, '\0', first)) {
		(void)tm_sshsig_match_list("git", pattern);
		(void)tm_sshsig_match_list("release@example.com", pattern);
	}
	free(pattern);
	return 0;
}
