/*
 * buf.c — bounded buffer. Failure to grow (cap or memory) leaves the
 * content as it was, so a caller can still report what it had.
 */
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/wipe.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/mman.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older C libraries do not name it */
#endif
#endif

void tm_mem_populate(void *p, size_t n)
{
#ifdef __linux__
	static int unsupported;
	static uintptr_t page;
	uintptr_t a, e;

	if (n < TM_MEM_POPULATE_MIN || unsupported)
		return;
	if (!page) {
		long ps = sysconf(_SC_PAGESIZE);
		page = ps > 0 ? (uintptr_t)ps : 4096;
	}
	a = ((uintptr_t)p + page - 1) & ~(page - 1);
	e = ((uintptr_t)p + n) & ~(page - 1);
	/* EINVAL: a kernel before 5.14; anything else (ENOMEM, EFAULT) is left
	 * to the writes themselves, which fault the pages in as before */
	if (e > a && madvise((void *)a, e - a, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
		unsupported = 1;
#else
	(void)p;
	(void)n;
#endif
}

void tm_buf_init(struct tm_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int grow(struct tm_buf *b, size_t add)
{
	size_t need, ncap;
	char *p;

	/* len + add + 1 must not exceed max: check by subtraction. */
	if (b->max == 0 || add > b->max - 1 || b->len > b->max - 1 - add)
		return tm_error_set(TM_ELIMIT, "buffer limit of %zu bytes exceeded", b->max);
	need = b->len + add + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = (ncap > b->max / 2) ? b->max : ncap * 2;
	if (ncap > b->max)
		ncap = b->max; /* cap <= max: the appends' quick check relies on it */
	p = realloc(b->ptr, ncap);
	if (!p)
		return tm_error_nomem();
	if (ncap - b->len >= TM_MEM_POPULATE_MIN)
		tm_mem_populate(p + b->len, ncap - b->len); /* about to be written */
	b->ptr = p;
	b->cap = ncap;
	return 0;
}

int tm_buf_put(struct tm_buf *b, const void *data, size_t len)
{
	int r;

	/* room for len bytes and the NUL (cap never exceeds max) */
	if (len >= b->cap - b->len && (r = grow(b, len)) < 0)
		return r;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int tm_buf_puts(struct tm_buf *b, const char *s)
{
	return tm_buf_put(b, s, strlen(s));
}

int tm_buf_putc(struct tm_buf *b, char c)
{
	int r;

	if (b->cap - b->len < 2 && (r = grow(b, 1)) < 0)
		return r;
	b->ptr[b->len++] = c;
	b->ptr[b->len] = '\0';
	return 0;
}

int tm_buf_vprintf(struct tm_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, r;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return tm_error_set(TM_ERROR, "format error");
	if ((r = grow(b, (size_t)n)) < 0)
		return r;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int tm_buf_printf(struct tm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tm_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

char *tm_buf_detach(struct tm_buf *b)
{
	char *p = b->ptr;

	if (!p)
		p = calloc(1, 1);
	b->ptr = NULL;
	b->len = b->cap = 0;
	return p;
}

char *tm_buf_detach_fit(struct tm_buf *b)
{
	size_t len = b->len, cap = b->cap;
	char *p = tm_buf_detach(b), *q;

	/* The room the doubling left is given back. A small buffer is copied to a
	 * block of its size (an allocator may leave a shrunk one in its larger
	 * slot: +20 % kept for an install file's objects); a large one is shrunk
	 * where it is (its mapping, nothing copied). A failed shrink keeps it. */
	if (cap <= len + 1)
		return p;
	if (len < 65536) {
		if ((q = malloc(len + 1))) {
			memcpy(q, p, len + 1);
			free(p);
			p = q;
		}
	} else if ((q = realloc(p, len + 1))) {
		p = q;
	}
	return p;
}

void tm_buf_reset(struct tm_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

void tm_buf_free_secret(struct tm_buf *b)
{
	tm_wipe(b->ptr, b->cap);
	tm_buf_free(b);
}

void tm_buf_free(struct tm_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}
