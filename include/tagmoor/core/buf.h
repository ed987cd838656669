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

#endif
