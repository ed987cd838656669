/*
 * json.c — small helpers for the fixed-shape JSON tagmoor writes (state.json,
 * the status document); strings go through the document emitter's escaper.
 */
#include "tagmoor/doc/json.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/time.h"

#include <stdio.h>
#include <string.h>

int tm_json_string(struct tm_buf *b, const char *s, size_t len)
{
	/* the one escaper, shared with the document tree's emitter */
	return tm_doc_json_string(b, s, len);
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
	tm_time_format(ts, sizeof(ts), t);
	return tm_json_string(b, ts, strlen(ts));
}
