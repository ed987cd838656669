/*
 * fuzz_gitobj.c — raw tag and commit objects straight from a server.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tagmoor/verify/gitobj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_gitobj_tag t;
	struct tm_gitobj_commit c;

	if (tm_gitobj_parse_tag(&t, (const char *)data, size) == 0) {
		/* every span must lie inside the input */
		if (t.payload_len > size ||
		    (t.signature && t.signature + t.signature_len != (const char *)data + size))
			__builtin_trap();
	}
	if (tm_gitobj_parse_commit(&c, (const char *)data, size) == 0) {
		if (c.payload_len > size || strlen(c.payload) != c.payload_len)
			__builtin_trap();
		tm_gitobj_commit_free(&c);
	}
	return 0;
}
