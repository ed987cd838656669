/*
 * mcache.c — freed blocks kept for the next allocation of their size, in front of musl's
 * malloc in the static binary.
 *
 * musl's allocator (mallocng) gives a group of slots back to the kernel as soon as its last slot
 * is freed, and maps a new one at the next allocation of that size. A sync frees and takes again
 * the same few sizes hundreds of times (zlib's inflate state and window for each object libgit2
 * reads, curl's transfer buffers for each request, buffers growing by doubling), and each round
 * is an mmap, page faults and an munmap with its TLB flush: a tenth of a first sync's CPU on a
 * virtual machine (bench/manifests). Here the main thread's freed blocks of 256 bytes to 256 KiB
 * are kept, TM_MCACHE_PER_BIN in each power-of-two bin and TM_MCACHE_MAX_BYTES in all, and
 * handed out again, so the groups they live in stay mapped.
 *
 * musl supports replacing malloc in a static link (its malloc is weak; free, calloc and realloc
 * are taken from libc.a only when nothing defines them): the functions at the end are malloc,
 * calloc, realloc and free over musl's own (__libc_malloc and the rest). Only the main thread
 * uses the cache; other threads (curl's resolver, the daemon's watchdog) go straight to musl's,
 * so no lock is needed and a fork() from the main thread finds the cache consistent.
 * A kept block is handed out for a request of at least half its size; malloc_usable_size
 * still gives the size it was first asked with.
 *
 * musl's allocator is hardened, and the cache keeps what it checks: free() still passes each
 * block through musl's checks of a pointer (malloc_usable_size: a block of its own, the bytes
 * after its size untouched; for a kept block handed out again, its first size), and a block
 * freed again while kept aborts, as musl's free would, instead of being handed out twice.
 */
#include "tagmoor/core/mcache.h"

#include <string.h>

static unsigned bin_of(size_t n)
{
	return (unsigned)(sizeof(unsigned long) * 8 - 1 - (unsigned)__builtin_clzl(n));
}

static int in_bins(size_t n)
{
	return n >= ((size_t)1 << TM_MCACHE_MIN_BIN) && n < ((size_t)1 << (TM_MCACHE_MAX_BIN + 1));
}

void *tm_mcache_take(struct tm_mcache *c, size_t n)
{
	if (!in_bins(n))
		return NULL;
	/* Every block of n's bin is under 2n; the newest that fits is taken (warmest in cache). */
	for (unsigned b = bin_of(n), i = c->bins[b].n; i-- > 0;) {
		if (c->bins[b].size[i] >= n) {
			void *p = c->bins[b].p[i];
			unsigned last = --c->bins[b].n;

			c->bytes -= c->bins[b].size[i];
			c->bins[b].p[i] = c->bins[b].p[last];
			c->bins[b].size[i] = c->bins[b].size[last];
			c->st.hits++;
			return p;
		}
	}
	c->st.misses++;
	return NULL;
}

int tm_mcache_keep(struct tm_mcache *c, void *p, size_t usable)
{
	unsigned b;

	if (!p || !in_bins(usable) || usable > TM_MCACHE_MAX_BYTES - c->bytes)
		return 0;
	b = bin_of(usable);
	for (unsigned i = 0; i < c->bins[b].n; i++)
		if (c->bins[b].p[i] == p)
			return -1; /* freed twice: the caller crashes, as musl's free would */
	if (c->bins[b].n == TM_MCACHE_PER_BIN)
		return 0;
	c->bins[b].p[c->bins[b].n] = p;
	c->bins[b].size[c->bins[b].n] = usable;
	c->bins[b].n++;
	c->bytes += usable;
	c->st.kept++;
	if (c->bytes > c->st.peak_bytes)
		c->st.peak_bytes = c->bytes;
	return 1;
}

void tm_mcache_empty(struct tm_mcache *c, void (*release)(void *))
{
	for (unsigned b = TM_MCACHE_MIN_BIN; b <= TM_MCACHE_MAX_BIN; b++)
		while (c->bins[b].n > 0)
			release(c->bins[b].p[--c->bins[b].n]);
	c->bytes = 0;
}

#if defined(TM_MALLOC_CACHE) && !defined(TM_NO_MALLOC_CACHE) && !defined(__GLIBC__)

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

/* musl's allocator (libc.a: mallocng and src/malloc) */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t m, size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

static struct tm_mcache mc;
static pthread_t mc_main;
static int mc_ready;

__attribute__((constructor)) static void mc_init(void)
{
	mc_main = pthread_self();
	mc_ready = 1;
}

static int mc_mine(void)
{
	return mc_ready && pthread_equal(pthread_self(), mc_main);
}

void *malloc(size_t n)
{
	void *p = mc_mine() ? tm_mcache_take(&mc, n) : NULL;

	return p ? p : __libc_malloc(n);
}

void *calloc(size_t m, size_t n)
{
	size_t t;
	void *p;

	if (__builtin_mul_overflow(m, n, &t)) {
		errno = ENOMEM;
		return NULL;
	}
	if (mc_mine() && (p = tm_mcache_take(&mc, t)) != NULL)
		return memset(p, 0, t);
	return __libc_calloc(m, n);
}

/* Growing by half or more within the bins goes through the cache too (a buffer that doubles
 * frees each old block for the next buffer's); a block already big enough and not twice too
 * big stays. */
void *realloc(void *p, size_t n)
{
	size_t u;
	void *q;

	if (!p)
		return malloc(n);
	if (!mc_mine() || !in_bins(n))
		return __libc_realloc(p, n);
	u = malloc_usable_size(p);
	if (n <= u && n >= u / 2)
		return p;
	/* a block growing by little at a time is musl's to grow in place where its slot allows:
	 * moving it at each step would copy it over and over */
	if (n > u && n < u + u / 2)
		return __libc_realloc(p, n);
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, n < u ? n : u);
	free(p);
	return q;
}

void free(void *p)
{
	int r;

	if (!p)
		return;
	/* malloc_usable_size checks p as musl's free does (a block of its own, the bytes after
	 * it untouched): a bad pointer or an overflow still crashes here */
	r = mc_mine() ? tm_mcache_keep(&mc, p, malloc_usable_size(p)) : 0;
	if (r < 0)
		abort();
	if (r == 0)
		__libc_free(p);
}

int tm_mcache_stats(struct tm_mcache_stats *out)
{
	*out = mc.st;
	out->bytes = mc.bytes;
	return 1;
}

void tm_mcache_drop(void)
{
	if (mc_mine())
		tm_mcache_empty(&mc, __libc_free);
}

#else

int tm_mcache_stats(struct tm_mcache_stats *out)
{
	memset(out, 0, sizeof(*out));
	return 0;
}

void tm_mcache_drop(void)
{
}

#endif
