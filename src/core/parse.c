/*
 * parse.c — strict value grammars. Nothing here is lenient: trailing junk,
 * signs, spaces inside a number and overflow are all errors, because a
 * mistyped "6Os" on a fleet should fail at check-config, not at 3 a.m.
 */
#include "tagmoor/core/parse.h"
#include "tagmoor/core/error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Reads leading digits into *out; returns the number of digits or -1 on overflow. */
static int read_digits(uint64_t *out, const char *s)
{
	uint64_t v = 0;
	int n = 0;

	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		unsigned d = (unsigned)(s[n] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return n;
}

int tm_parse_uint(uint64_t *out, const char *s)
{
	int n = read_digits(out, s);

	if (n < 0)
		return tm_error_set(TM_EPARSE, "number '%.64s' is too large", s);
	if (n == 0 || s[n] != '\0')
		return tm_error_set(TM_EPARSE, "'%.64s' is not a whole number", s);
	return 0;
}

static int mul_checked(uint64_t *out, uint64_t v, uint64_t m)
{
	if (m && v > UINT64_MAX / m)
		return -1;
	*out = v * m;
	return 0;
}

int tm_parse_duration(uint64_t *out_ms, const char *s)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t v;
	int n = read_digits(&v, s);

	if (n < 0)
		return tm_error_set(TM_EPARSE, "duration '%.64s' is too large", s);
	if (n == 0)
		return tm_error_set(TM_EPARSE,
				    "'%.64s' is not a duration (use ms, s, m, h or d, e.g. 60s)",
				    s);
	if (s[n] == '\0') {
		if (v == 0) {
			*out_ms = 0;
			return 0;
		}
		return tm_error_set(TM_EPARSE, "duration '%.64s' needs a unit (ms, s, m, h or d)",
				    s);
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].unit) == 0) {
			if (mul_checked(out_ms, v, units[i].ms) < 0)
				return tm_error_set(TM_EPARSE, "duration '%.64s' is too large", s);
			return 0;
		}
	}
	return tm_error_set(TM_EPARSE,
			    "'%.64s' has an unknown duration unit (use ms, s, m, h or d)", s);
}

int tm_parse_size(uint64_t *out, const char *s)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "KiB", 1024 },
		{ "MiB", 1024 * 1024 },
		{ "GiB", 1024ull * 1024 * 1024 },
	};
	uint64_t v;
	int n = read_digits(&v, s);

	if (n < 0)
		return tm_error_set(TM_EPARSE, "size '%.64s' is too large", s);
	if (n == 0)
		return tm_error_set(TM_EPARSE, "'%.64s' is not a size (use KiB or MiB, e.g. 64MiB)",
				    s);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].unit) == 0) {
			if (mul_checked(out, v, units[i].mul) < 0)
				return tm_error_set(TM_EPARSE, "size '%.64s' is too large", s);
			return 0;
		}
	}
	return tm_error_set(TM_EPARSE, "'%.64s' has an unknown size unit (use KiB, MiB or GiB)", s);
}

int tm_parse_bool(int *out, const char *s)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return tm_error_set(TM_EPARSE,
			    "'%.64s' is not a boolean (use yes/no, true/false, on/off, 1/0)", s);
}

int tm_parse_percent(unsigned *out, const char *s)
{
	uint64_t v;
	int n = read_digits(&v, s);

	if (n <= 0 || (s[n] != '\0' && strcmp(s + n, "%") != 0))
		return tm_error_set(TM_EPARSE, "'%.64s' is not a percentage (e.g. 10%%)", s);
	if (v > 100)
		return tm_error_set(TM_EPARSE, "percentage '%.64s' is over 100%%", s);
	*out = (unsigned)v;
	return 0;
}

void tm_format_duration(char *out, unsigned long outlen, uint64_t ms)
{
	if (ms == 0)
		snprintf(out, outlen, "0");
	else if (ms % 86400000 == 0)
		snprintf(out, outlen, "%llud", (unsigned long long)(ms / 86400000));
	else if (ms % 3600000 == 0)
		snprintf(out, outlen, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(out, outlen, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, outlen, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(out, outlen, "%llums", (unsigned long long)ms);
}

void tm_format_size(char *out, unsigned long outlen, uint64_t bytes)
{
	if (bytes && bytes % (1024ull * 1024 * 1024) == 0)
		snprintf(out, outlen, "%lluGiB", (unsigned long long)(bytes >> 30));
	else if (bytes && bytes % (1024 * 1024) == 0)
		snprintf(out, outlen, "%lluMiB", (unsigned long long)(bytes >> 20));
	else if (bytes && bytes % 1024 == 0)
		snprintf(out, outlen, "%lluKiB", (unsigned long long)(bytes >> 10));
	else
		snprintf(out, outlen, "%llu", (unsigned long long)bytes);
}
