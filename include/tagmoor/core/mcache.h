/*
 * mcache.h — freed blocks kept for the next allocation of their size, in front of musl's
 * malloc in the static binary (see src/core/mcache.c for why). There, it is malloc and free
 * themselves; the functions here are the cache's rules, which the unit test drives directly.
 */
#ifndef TAGMOOR_CORE_MCACHE_H
#define TAGMOOR_CORE_MCACHE_H

#include <stddef.h>

#define TM_MCACHE_MIN_BIN 8  /* blocks of 256 bytes ... */
#define TM_MCACHE_MAX_BIN 17 /* ... to 256 KiB - 1: bin b holds sizes [2^b, 2^(b+1)) */
#define TM_MCACHE_PER_BIN 8  /* blocks at most in one bin */
#define TM_MCACHE_MAX_BYTES (1024u * 1024) /* bytes at most in all bins */

struct tm_mcache_stats {
	size_t hits;       /* allocations served from the cache */
	size_t misses;     /* allocations of a cached size that found none */
	size_t kept;       /* frees kept for later */
	size_t bytes;      /* bytes kept now */
	size_t peak_bytes; /* most bytes kept at once */
};

struct tm_mcache {
	size_t bytes;
	struct tm_mcache_stats st;
	struct {
		unsigned n;
		void *p[TM_MCACHE_PER_BIN];
		size_t size[TM_MCACHE_PER_BIN];
	} bins[TM_MCACHE_MAX_BIN + 1];
};

/* A kept block of at least n bytes and less than twice n (the cache forgets it), or NULL. */
void *tm_mcache_take(struct tm_mcache *c, size_t n);

/* 1 when p, a block of `usable` bytes, was kept; 0 when it is the caller's to free (a size
 * outside the bins, its bin full, or the cache at TM_MCACHE_MAX_BYTES); -1 when p is kept
 * already (freed twice: the caller aborts). */
int tm_mcache_keep(struct tm_mcache *c, void *p, size_t usable);

/* Each kept block given to release, and the cache empty. */
void tm_mcache_empty(struct tm_mcache *c, void (*release)(void *));

/* The static binary's cache in front of malloc: 1 with *out filled, or 0 (all zero) in a build
 * without it (glibc: the Debian build, the sanitizers). */
int tm_mcache_stats(struct tm_mcache_stats *out);

/* Gives the static binary's kept blocks back to malloc (from the main thread; elsewhere, and in
 * a build without the cache, nothing): the daemon's idle RSS is the steady one. */
void tm_mcache_drop(void);

#endif
