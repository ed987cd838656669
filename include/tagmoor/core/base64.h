/*
 * base64.h — base64 (RFC 4648, standard alphabet), the one codec of the tree,
 * and lowercase hex (object ids, digests).
 */
#ifndef TAGMOOR_BASE64_H
#define TAGMOOR_BASE64_H

#include <stddef.h>

struct tm_buf;

enum {
	TM_B64_SKIP_SPACE = 1, /* decode: ignore spaces, tabs, CR and LF anywhere */
	TM_B64_NO_PAD = 2,     /* encode: no trailing '=' (OpenSSH fingerprints) */
	TM_B64_GO = 4          /* decode as Go's StdEncoding.DecodeString: ignore CR and LF
				* anywhere, accept nonzero unused bits (YAML's !!binary) */
};
/* Appends the decoded bytes to out. Strict: padding must be present and
 * canonical, unused bits zero, nothing after the padding. TM_EPARSE else. */
int tm_base64_decode(struct tm_buf *out, const char *in, size_t len, int flags);
/* Appends the encoding of in to out (no line breaks). */
int tm_base64_encode(struct tm_buf *out, const void *in, size_t len, int flags);

/* Writes the 2 * len lowercase hex digits of in and a NUL to out. */
void tm_hex(char *out, const void *in, size_t len);

#endif
