/*
 * sha1hw.c — SHA-1 on the x86 SHA extensions (SHA1RNDS4, SHA1NEXTE, SHA1MSG1, SHA1MSG2), for the
 * verify stage: the parent checks each file the fetcher child sends against the Git blob id in
 * the verified tree, a SHA-1 over every byte of the configuration, and mbedTLS's SHA-1 is plain C
 * (a tenth of a large sync's CPU, issue 16). Written from Intel's description of the instructions;
 * crypto.c calls it only when the CPU has them (CPUID), otherwise mbedTLS's SHA-1 runs, and
 * test_crypto checks both against each other at every length around the block edges.
 *
 * The state sits in two registers: ABCD (A in the top lane) and E (top lane). Each SHA1RNDS4 does
 * four rounds with W[i]+E in the top lane of its second operand; SHA1NEXTE derives that E from the
 * A of four rounds before. The message schedule, four words at a time:
 * W[16..19] = SHA1MSG2(SHA1MSG1(W[0..3], W[4..7]) ^ W[8..11], W[12..15]).
 */
#include "sha1hw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define TM_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

/* CPUID bits (Intel SDM vol. 2A, CPUID): leaf 1 ECX, leaf 7 EBX. */
#define CPUID1_SSSE3 (1u << 9)
#define CPUID1_SSE41 (1u << 19)
#define CPUID7_SHA (1u << 29)

static int detect(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & CPUID1_SSSE3) || !(c & CPUID1_SSE41))
		return 0;
	if (__get_cpuid_max(0, NULL) < 7)
		return 0;
	__cpuid_count(7, 0, a, b, c, d);
	return (b & CPUID7_SHA) != 0;
}

int tm_sha1hw_supported(void)
{
	static int known = -1;
	int v = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (v < 0) {
		v = detect();
		__atomic_store_n(&known, v, __ATOMIC_RELAXED);
	}
	return v;
}

/* Four rounds of function f with the next four schedule words w. */
#define ROUNDS(f, w)                                      \
	do {                                              \
		e = _mm_sha1nexte_epu32(prev, (w));       \
		prev = abcd;                              \
		abcd = _mm_sha1rnds4_epu32(abcd, e, (f)); \
	} while (0)
/* a (W[i..i+3]) becomes W[i+16..i+19] from b, c, d (W[i+4..i+15]). */
#define SCHEDULE(a, b, c, d) a = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(a, b), c), d)

TM_SHA_TARGET static void blocks(uint32_t st[5], const unsigned char *p, size_t n)
{
	/* byte i of the result is byte 15 - i of the input: four big-endian words, W0 on top */
	const __m128i rev = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
	__m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)st), 0x1B);
	__m128i e0 = _mm_set_epi32((int)st[4], 0, 0, 0);

	for (; n; n--, p += 64) {
		__m128i abcd0 = abcd, e_save = e0, prev = abcd, e, m0, m1, m2, m3;

		m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), rev);
		m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16)),
				      rev);
		m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 32)),
				      rev);
		m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 48)),
				      rev);
		/* rounds 0-19 */
		e = _mm_add_epi32(e0, m0);
		abcd = _mm_sha1rnds4_epu32(abcd, e, 0);
		ROUNDS(0, m1);
		ROUNDS(0, m2);
		ROUNDS(0, m3);
		SCHEDULE(m0, m1, m2, m3);
		ROUNDS(0, m0);
		/* rounds 20-39 */
		SCHEDULE(m1, m2, m3, m0);
		ROUNDS(1, m1);
		SCHEDULE(m2, m3, m0, m1);
		ROUNDS(1, m2);
		SCHEDULE(m3, m0, m1, m2);
		ROUNDS(1, m3);
		SCHEDULE(m0, m1, m2, m3);
		ROUNDS(1, m0);
		SCHEDULE(m1, m2, m3, m0);
		ROUNDS(1, m1);
		/* rounds 40-59 */
		SCHEDULE(m2, m3, m0, m1);
		ROUNDS(2, m2);
		SCHEDULE(m3, m0, m1, m2);
		ROUNDS(2, m3);
		SCHEDULE(m0, m1, m2, m3);
		ROUNDS(2, m0);
		SCHEDULE(m1, m2, m3, m0);
		ROUNDS(2, m1);
		SCHEDULE(m2, m3, m0, m1);
		ROUNDS(2, m2);
		/* rounds 60-79 */
		SCHEDULE(m3, m0, m1, m2);
		ROUNDS(3, m3);
		SCHEDULE(m0, m1, m2, m3);
		ROUNDS(3, m0);
		SCHEDULE(m1, m2, m3, m0);
		ROUNDS(3, m1);
		SCHEDULE(m2, m3, m0, m1);
		ROUNDS(3, m2);
		SCHEDULE(m3, m0, m1, m2);
		ROUNDS(3, m3);
		/* E: the A of four rounds before, rotated, plus the E the block began with */
		e0 = _mm_sha1nexte_epu32(prev, e_save);
		abcd = _mm_add_epi32(abcd, abcd0);
	}
	_mm_storeu_si128((__m128i *)(void *)st, _mm_shuffle_epi32(abcd, 0x1B));
	st[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}

void tm_sha1hw(unsigned char out[20], const struct tm_span *parts, size_t nparts)
{
	uint32_t st[5] = { 0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u };
	unsigned char buf[64];
	size_t fill = 0;
	uint64_t total = 0;

	for (size_t i = 0; i < nparts; i++) {
		const unsigned char *p = parts[i].ptr;
		size_t len = parts[i].len;

		total += len;
		if (fill) {
			size_t take = len < 64 - fill ? len : 64 - fill;

			memcpy(buf + fill, p, take);
			fill += take;
			p += take;
			len -= take;
			if (fill < 64)
				continue;
			blocks(st, buf, 1);
			fill = 0;
		}
		if (len >= 64) {
			blocks(st, p, len / 64);
			p += len - len % 64;
			len %= 64;
		}
		if (len) {
			memcpy(buf, p, len);
			fill = len;
		}
	}
	/* padding: 0x80, zeros, the length in bits (big-endian) in the last 8 bytes */
	buf[fill++] = 0x80;
	if (fill > 56) {
		memset(buf + fill, 0, 64 - fill);
		blocks(st, buf, 1);
		fill = 0;
	}
	memset(buf + fill, 0, 56 - fill);
	total *= 8;
	for (int k = 0; k < 8; k++)
		buf[63 - k] = (unsigned char)(total >> (8 * k));
	blocks(st, buf, 1);
	for (int k = 0; k < 5; k++) {
		out[4 * k] = (unsigned char)(st[k] >> 24);
		out[4 * k + 1] = (unsigned char)(st[k] >> 16);
		out[4 * k + 2] = (unsigned char)(st[k] >> 8);
		out[4 * k + 3] = (unsigned char)st[k];
	}
}

#else /* no SHA-1 instructions in this build: mbedTLS's SHA-1 always */

int tm_sha1hw_supported(void)
{
	return 0;
}

void tm_sha1hw(unsigned char out[20], const struct tm_span *parts, size_t nparts)
{
	(void)out;
	(void)parts;
	(void)nparts;
	abort(); /* never called: tm_sha1hw_supported() is 0 */
}

#endif
