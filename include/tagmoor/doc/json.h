/*
 * json.h — writing JSON text into a bounded buffer: strings as raw UTF-8
 * with only '"', '\' and control characters escaped (the Kubernetes API
 * server rejects "\/" and surrogate escapes), and small helpers for the
 * fixed-shape documents tagmoor writes (state.json, the status document).
 */
#ifndef TAGMOOR_JSON_H
#define TAGMOOR_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/core/buf.h"

int tm_json_string(struct tm_buf *b, const char *s, size_t len);
/* A C string or null when s is NULL or (empty_is_null and s is ""). */
int tm_json_cstr(struct tm_buf *b, const char *s, int empty_is_null);
/* An RFC 3339 UTC time or null when t < 0. */
int tm_json_time(struct tm_buf *b, int64_t t);

#endif
