/*
 * error.c — one last-error message per process.
 *
 * tagmoor is single-threaded; a static buffer is enough and never allocates,
 * so even an out-of-memory failure can be described.
 */
#include "tagmoor/core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char last_msg[1024];
static int last_code;

static void strip_newlines(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

int tm_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
	va_end(ap);
	strip_newlines(last_msg);
	last_code = code;
	return code;
}

int tm_error_nomem(void)
{
	return tm_error_set(TM_ENOMEM, "out of memory");
}

int tm_error_wrap(int code, const char *fmt, ...)
{
	char prefix[512], old[sizeof(last_msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last_msg, sizeof(old));
	/* Truncation is fine here: the message is a bounded one-liner. */
	size_t plen = strnlen(prefix, sizeof(last_msg) - 1);
	memcpy(last_msg, prefix, plen);
	size_t pos = plen;
	if (pos + 2 < sizeof(last_msg)) {
		memcpy(last_msg + pos, ": ", 2);
		pos += 2;
	}
	size_t olen = strnlen(old, sizeof(last_msg) - 1 - pos);
	memcpy(last_msg + pos, old, olen);
	last_msg[pos + olen] = '\0';
	strip_newlines(last_msg);
	last_code = code;
	return code;
}

const char *tm_error_last(void)
{
	return last_msg;
}

int tm_error_last_code(void)
{
	return last_code;
}

void tm_error_clear(void)
{
	last_msg[0] = '\0';
	last_code = 0;
}

int tm_error_exit_code(int code)
{
	switch (code) {
	case TM_OK:
	case TM_ESTOPPED:
		return 0;
	case TM_EUSAGE:
	case TM_ECONFIG:
	case TM_ENOTIMPL:
		return 2;
	case TM_ESOURCE:
	case TM_EUNREACHABLE:
		return 3;
	case TM_EVERIFY:
		return 4;
	case TM_ELOCKED:
		return 5;
	default:
		return 1;
	}
}
