/*
 * json.c — JSON string escaping shared by every writer of JSON.
 */
#include "tagmoor/json.h"
#include "tagmoor/verify.h"

#include <stdio.h>
#include <string.h>

int tm_json_string(struct tm_buf *b, const char *s, size_t len)
{
	int r = tm_buf_putc(b, '"');
	size_t run = 0;

	for (size_t i = 0; r == 0 && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[8];

		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\t')
			esc = "\\t";
		else if (c == '\r')
			esc = "\\r";
		else if (c < 0x20 || c == 0x7f) {
			snprintf(u, sizeof(u), "\\u%04x", c);
			esc = u;
		}
		if (!esc)
			continue;
		if (i > run)
			r = tm_buf_put(b, s + run, i - run);
		if (r == 0)
			r = tm_buf_puts(b, esc);
		run = i + 1;
	}
	if (r == 0 && len > run)
		r = tm_buf_put(b, s + run, len - run);
	return r ? r : tm_buf_putc(b, '"');
}

int tm_json_cstr(struct tm_buf *b, const char *s, int empty_is_null)
{
	if (!s || (empty_is_null && !*s))
		return tm_buf_puts(b, "null");
	return tm_json_string(b, s, strlen(s));
}

int tm_json_time(struct tm_buf *b, int64_t t)
{
	char ts[32];

	if (t < 0)
		return tm_buf_puts(b, "null");
	tm_verify_format_time(ts, sizeof(ts), t);
	return tm_json_string(b, ts, strlen(ts));
}
