/*
 * buf.h — a growable byte buffer with a maximum fixed at creation
 * (after curl's dynbuf and OpenSSH's sshbuf). Every append checks the cap
 * with overflow-safe arithmetic; the content is always NUL-terminated.
 */
#ifndef TAGMOOR_BUF_H
#define TAGMOOR_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct tm_buf {
	char *ptr;
	size_t len;
	size_t cap;
	size_t max;
};

void tm_buf_init(struct tm_buf *b, size_t max);
int tm_buf_put(struct tm_buf *b, const void *data, size_t len);
int tm_buf_puts(struct tm_buf *b, const char *s);
int tm_buf_putc(struct tm_buf *b, char c);
int tm_buf_printf(struct tm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tm_buf_vprintf(struct tm_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Takes the content (caller frees); the buffer is left empty. */
char *tm_buf_detach(struct tm_buf *b);
/* The same with the unused room given back (for content that is kept). */
char *tm_buf_detach_fit(struct tm_buf *b);
void tm_buf_reset(struct tm_buf *b);
/* Wipes the bytes before freeing (for secrets). */
void tm_buf_free_secret(struct tm_buf *b);
void tm_buf_free(struct tm_buf *b);

/* Asks the kernel to back [p, p + n) with memory now, in one call, for a large
 * block about to be written through: each page it would otherwise fault in on
 * first touch (a trap each, dear on a virtual machine). Only the whole pages
 * inside the block, only for blocks of TM_MEM_POPULATE_MIN bytes or more; a
 * kernel without MADV_POPULATE_WRITE (before Linux 5.14) changes nothing. */
#define TM_MEM_POPULATE_MIN ((size_t)64 * 1024)
void tm_mem_populate(void *p, size_t n);

#endif
