/*
 * time.h — the one copy of the clock and calendar helpers: the monotonic clock
 * (timeouts, backoff, deadlines), the proleptic Gregorian calendar (signature
 * times, Kubernetes timestamps) and RFC 3339 UTC times (trailers, state.json,
 * the status document).
 */
#ifndef TAGMOOR_TIME_H
#define TAGMOOR_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC (never goes back; unrelated to the wall clock). */
int64_t tm_time_mono_ms(void);

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil;
 * no timegm needed). m is 1..12, d is 1..31; nothing is validated. */
int64_t tm_time_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The days of month m (1..12) of year y, leap years counted. */
int tm_time_days_in_month(int64_t y, int m);

/* RFC 3339 UTC "2026-12-31T00:00:00Z" → seconds since the epoch; TM_EPARSE otherwise. */
int tm_time_parse(int64_t *out, const char *s, size_t len);
/* Seconds since the epoch → "2026-12-31T00:00:00Z" ("-" for a negative time). */
void tm_time_format(char *out, size_t outlen, int64_t t);

#endif
