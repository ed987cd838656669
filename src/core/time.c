/*
 * time.c — the clock and calendar helpers every stage shares (core: below everything): the
 * monotonic clock for timeouts and backoff, days from a civil date, and the RFC 3339 UTC times
 * of trailers, state.json and the status document.
 */
#include "tagmoor/core/time.h"
#include "tagmoor/core/error.h"

#include <stdio.h>
#include <time.h>

int64_t tm_time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tm_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int tm_time_days_in_month(int64_t y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 ? 28 + leap : d[m - 1];
}

int tm_time_parse(int64_t *out, const char *s, size_t len)
{
	unsigned v[6];
	static const unsigned widths[6] = { 4, 2, 2, 2, 2, 2 };
	static const char seps[6] = { '-', '-', 'T', ':', ':', 'Z' };
	size_t pos = 0;

	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (unsigned k = 0; k < widths[i]; k++, pos++) {
			if (pos >= len || s[pos] < '0' || s[pos] > '9')
				return tm_error_set(
					TM_EPARSE,
					"'%.*s' is not an RFC 3339 UTC time (2026-12-31T00:00:00Z)",
					(int)(len > 40 ? 40 : len), s);
			v[i] = v[i] * 10 + (unsigned)(s[pos] - '0');
		}
		if (pos >= len || s[pos] != seps[i])
			return tm_error_set(
				TM_EPARSE,
				"'%.*s' is not an RFC 3339 UTC time (2026-12-31T00:00:00Z)",
				(int)(len > 40 ? 40 : len), s);
		pos++;
	}
	if (pos != len || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return tm_error_set(TM_EPARSE, "'%.*s' is not a valid UTC time",
				    (int)(len > 40 ? 40 : len), s);
	*out = tm_time_days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
	return 0;
}

void tm_time_format(char *out, size_t outlen, int64_t t)
{
	struct tm tmv;
	time_t tt = (time_t)t;

	if (t < 0 || !gmtime_r(&tt, &tmv)) {
		snprintf(out, outlen, "-");
		return;
	}
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}
