/*
 * fuzz_message.c — the fetcher child's message as the privileged parent reads
 * it (privsep/message.c): a compromised child controls every byte. What
 * decodes must lie inside the input, and encode back to the very same bytes
 * (the encoding is canonical: nothing the decoder accepts is ambiguous).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/privsep/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *p, size_t n, const uint8_t *data, size_t size)
{
	return p >= (const char *)data && p + n < (const char *)data + size + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_msg m;
	struct tm_buf b;

	if (tm_msg_decode(&m, (const char *)data, size) != 0)
		return 0;
	if (!inside(m.oid, strlen(m.oid), data, size) ||
	    !inside(m.error, strlen(m.error), data, size))
		__builtin_trap();
	for (size_t i = 0; i < m.nsets; i++)
		for (size_t j = 0; j < m.sets[i].ndirs; j++)
			for (size_t k = 0; k < m.sets[i].dirs[j].nfiles; k++) {
				const struct tm_msg_file *f = &m.sets[i].dirs[j].files[k];
				if (f->data && (!inside(f->data, (size_t)f->size, data, size) ||
						f->data[f->size] != '\0'))
					__builtin_trap();
			}
	tm_buf_init(&b, size + 1);
	if (tm_msg_encode(&b, &m) != 0 || b.len != size || memcmp(b.ptr, data, size) != 0)
		__builtin_trap();
	tm_buf_free(&b);
	tm_msg_free(&m);
	return 0;
}
