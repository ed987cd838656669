/*
 * log.c — one line per event to stderr.
 *
 * Text: "2026-11-26T12:00:00Z info message". JSON lines:
 * {"time":"…","level":"info","msg":"…"} with the message escaped, so a
 * journal or a log shipper can read either.
 */
#include "tagmoor/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum tm_log_format log_format = TM_LOG_TEXT;
static enum tm_log_level log_level = TM_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void tm_log_setup(enum tm_log_format format, enum tm_log_level level)
{
	log_format = format;
	log_level = level;
}

enum tm_log_level tm_log_get_level(void)
{
	return log_level;
}

static void json_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

void tm_log(enum tm_log_level level, const char *fmt, ...)
{
	char msg[2048], ts[32];
	struct tm tmv;
	time_t now;
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	now = time(NULL);
	gmtime_r(&now, &tmv);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tmv);
	if (log_format == TM_LOG_JSON) {
		fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
			level_names[level]);
		json_escape(stderr, msg);
		fputs("\"}\n", stderr);
	} else {
		fprintf(stderr, "%s %s %s\n", ts, level_names[level], msg);
	}
	fflush(stderr);
}
