/*
 * pool.c — the node pool of the document readers (reader.h; src/doc/ only). While a pool is in
 * use, tm_doc_new* and the readers' map keys take their memory from it, a bump of a pointer each,
 * and tm_doc_free gives nothing of it back one by one: the pool is reset once the document's
 * tree is gone, and its memory serves the next document; while tm_yaml_pool_keep is on (the
 * plan of a pass), a freed pool's chunks serve the next file's pool. A CRD's tree is hundreds
 * of thousands of small nodes and keys, and musl's malloc and free of each, with the pages its
 * groups map and unmap, were a fifth of a large sync's CPU (issue 16).
 *
 * Memory that is not the pool's (nodes made after the build, a JSON reader's keys, strings too
 * large for a chunk) is malloc's as before: docr_free tells the two apart by address, against the
 * one pool that is live on this thread. The pool counts what it handed out and what came back;
 * one that is freed with allocations still live (a tree kept past its document, a bug) is never
 * reused or unmapped, and stays the live one so that those can still be freed: memory-safe, and
 * pooling is off from then on.
 */
#include "reader.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/doc/yaml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CHUNK ((size_t)64 * 1024)
#define MAX_CHUNK ((size_t)4 * 1024 * 1024)
#define BIG ((size_t)16 * 1024)       /* larger allocations are malloc's */
#define ALIGN ((size_t)8)             /* int64_t, double, pointers */
#define POPULATE ((size_t)256 * 1024) /* a chunk is populated this much ahead of its use */

struct chunk {
	struct chunk *next; /* newer */
	size_t size, used;
	size_t ready; /* data[0, ready) was populated (tm_mem_populate) */
	char *data;
};

struct docr_pool {
	struct chunk *first, *last; /* oldest, newest */
	struct chunk *at;           /* allocations come from here, then from the ones after it */
	size_t live;                /* allocations handed out and not yet given back */
};

static _Thread_local struct docr_pool *live_pool; /* docr_free checks this one */
static _Thread_local struct docr_pool *cur;       /* docr_alloc takes from this one */
static _Thread_local struct chunk *spare;         /* a freed pool's chunks, while kept */
static _Thread_local int keep;                    /* tm_yaml_pool_keep */

static void chunks_free(struct chunk *c)
{
	while (c) {
		struct chunk *next = c->next;

		free(c);
		c = next;
	}
}

struct docr_pool *docr_pool_new(void)
{
	struct docr_pool *p;

	if (live_pool) /* one at a time (or pooling is off after a leak) */
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	live_pool = p;
	if (spare) { /* the chunks the last pool faulted in */
		p->first = p->at = spare;
		for (p->last = spare; p->last->next; p->last = p->last->next)
			;
		spare = NULL;
	}
	return p;
}

void docr_pool_use(struct docr_pool *p, int on)
{
	if (p && p == live_pool)
		cur = on ? p : NULL;
}

void docr_pool_reset(struct docr_pool *p)
{
	if (!p || p != live_pool || p->live)
		return;
	/* every chunk serves again, from the first: the next document faults in no new page
	 * until it outgrows the largest one before it */
	for (struct chunk *c = p->first; c; c = c->next)
		c->used = 0;
	p->at = p->first;
}

void docr_pool_free(struct docr_pool *p)
{
	if (!p || p != live_pool)
		return;
	cur = NULL;
	if (p->live)
		return; /* leaked: see the top of the file */
	if (keep) {
		chunks_free(spare);
		for (struct chunk *c = p->first; c; c = c->next)
			c->used = 0;
		spare = p->first;
	} else {
		chunks_free(p->first);
	}
	free(p);
	live_pool = NULL;
}

void tm_yaml_pool_keep(int on)
{
	keep = on;
	if (!on) {
		chunks_free(spare);
		spare = NULL;
	}
}

static struct chunk *chunk_new(struct docr_pool *p, size_t need)
{
	size_t size = p->last ? p->last->size * 2 : FIRST_CHUNK;
	size_t head = (sizeof(struct chunk) + ALIGN - 1) & ~(ALIGN - 1);
	struct chunk *c;

	if (size > MAX_CHUNK)
		size = MAX_CHUNK;
	if (size < need)
		size = need;
	c = malloc(head + size);
	if (!c)
		return NULL;
	c->data = (char *)c + head;
	c->size = size;
	c->used = 0;
	c->ready = 0;
	c->next = NULL;
	if (p->last)
		p->last->next = c;
	else
		p->first = c;
	p->last = c;
	return c;
}

void *docr_alloc(size_t n)
{
	struct docr_pool *p = cur;
	struct chunk *c;
	void *v;

	if (!p || n > BIG)
		return malloc(n);
	n = n ? (n + ALIGN - 1) & ~(ALIGN - 1) : ALIGN;
	c = p->at;
	while (c && c->size - c->used < n)
		c = c->next; /* reset chunks are empty: the next one takes it */
	if (!c && !(c = chunk_new(p, n)))
		return NULL;
	p->at = c;
	v = c->data + c->used;
	c->used += n;
	if (c->used > c->ready) {
		/* nodes fill a chunk from the start, again after a reset: its pages are
		 * populated in one call a piece ahead, not faulted in one by one, nor all at
		 * once (a chunk of a large tree is megabytes, and the last is seldom full) */
		size_t end = c->size - c->used > POPULATE ? c->used + POPULATE : c->size;

		tm_mem_populate(c->data + c->ready, end - c->ready);
		c->ready = end;
	}
	p->live++;
	return v;
}

/* The live pool's chunk that holds v, or NULL (malloc's). */
static struct chunk *chunk_of(const void *v)
{
	struct docr_pool *p = live_pool;
	uintptr_t a = (uintptr_t)v;

	if (!p || !v)
		return NULL;
	for (struct chunk *c = p->first; c; c = c->next)
		if (a >= (uintptr_t)c->data && a < (uintptr_t)c->data + c->size)
			return c;
	return NULL;
}

void docr_free(void *v)
{
	if (!v)
		return;
	if (chunk_of(v)) {
		live_pool->live--;
		return;
	}
	free(v);
}

void *docr_grow(void *v, size_t old, size_t n)
{
	struct chunk *c;
	void *nv;

	if (!v)
		return docr_alloc(n);
	if (n <= old)
		return v;
	c = chunk_of(v);
	if (!c)
		return realloc(v, n);
	if (cur == live_pool && c == cur->at) {
		size_t off = (size_t)((char *)v - c->data);
		size_t o = (old + ALIGN - 1) & ~(ALIGN - 1), m = (n + ALIGN - 1) & ~(ALIGN - 1);

		/* the last piece taken, with room after it: it grows where it is */
		if (n <= BIG && c->used == off + o && c->size - off >= m) {
			c->used = off + m;
			return v;
		}
	}
	nv = docr_alloc(n); /* the pool's while one is in use and n is small, else malloc's */
	if (!nv)
		return NULL; /* v is as it was */
	memcpy(nv, v, old);
	docr_free(v);
	return nv;
}

char *docr_pool_key(struct tm_doc *d, size_t *len)
{
	struct docr_pool *p = cur;
	struct chunk *c = p ? p->at : NULL;
	size_t off, n;

	if (!c || !d || d->type != TM_DOC_STRING || d->u.str.s != (char *)d + DOCR_STR_NODE ||
	    (char *)d < c->data || (char *)d >= c->data + c->used)
		return NULL;
	n = d->u.str.len;
	off = (size_t)((char *)d - c->data);
	if (c->used - off != ((DOCR_STR_NODE + n + 1 + ALIGN - 1) & ~(ALIGN - 1)))
		return NULL; /* not the last allocation */
	memmove(d, d->u.str.s, n + 1);
	c->used = off + ((n + 1 + ALIGN - 1) & ~(ALIGN - 1));
	*len = n;
	return (char *)d; /* still one allocation of the pool: docr_free gives it back */
}

size_t docr_pool_live(const struct docr_pool *p)
{
	return p ? p->live : 0;
}
