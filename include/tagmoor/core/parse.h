/*
 * parse.h — the value grammars of SPEC.md shared by the INI file and the
 * repository trailers: durations (ms s m h d), sizes (bytes, KiB, MiB, GiB),
 * booleans (yes/no true/false on/off 1/0) and percentages.
 * Each returns 0 or TM_EPARSE with a message naming what was wrong.
 */
#ifndef TAGMOOR_PARSE_H
#define TAGMOOR_PARSE_H

#include <stdint.h>

/* "90s", "1h", "250ms", "0" -> milliseconds. A bare number is an error
 * unless it is 0. Overflow is an error. */
int tm_parse_duration(uint64_t *out_ms, const char *s);
/* "64MiB", "512KiB", "1GiB", "1024" (bytes) -> bytes. */
int tm_parse_size(uint64_t *out, const char *s);
/* yes/no true/false on/off 1/0, case-insensitive. */
int tm_parse_bool(int *out, const char *s);
/* "10%" or "10" -> 10; 0..100. */
int tm_parse_percent(unsigned *out, const char *s);
/* A decimal unsigned integer with no sign, no spaces, no overflow. */
int tm_parse_uint(uint64_t *out, const char *s);
/* Formats milliseconds back into the shortest exact unit ("90s"). */
void tm_format_duration(char *out, unsigned long outlen, uint64_t ms);
void tm_format_size(char *out, unsigned long outlen, uint64_t bytes);

#endif
