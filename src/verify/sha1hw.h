/*
 * sha1hw.h — SHA-1 on the CPU's own SHA-1 instructions (x86 SHA extensions), inside src/verify/
 * only (not a public header). crypto.c takes it for TM_HASH_SHA1 when the CPU has them: the parent
 * hashes every file the fetcher child sends (the Git blob id it checks against the verified
 * tree), and mbedTLS has no hardware SHA-1. Elsewhere, and on other CPUs, mbedTLS's SHA-1 stays.
 */
#ifndef TAGMOOR_VERIFY_SHA1HW_H
#define TAGMOOR_VERIFY_SHA1HW_H

#include <stddef.h>

#include "tagmoor/verify/crypto.h"

/* 1 when this CPU (and this build) has SHA-1 instructions; checked once. */
int tm_sha1hw_supported(void);
/* SHA-1 of the concatenation of parts[0..nparts); only when tm_sha1hw_supported(). */
void tm_sha1hw(unsigned char out[20], const struct tm_span *parts, size_t nparts);

#endif
