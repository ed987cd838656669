/*
 * log.c — one line per event to stderr, the end of every stage's story.
 *
 * Text: "2026-11-26T12:00:00Z info message". JSON lines:
 * {"time":"…","level":"info","msg":"…"} with the message escaped, so a
 * journal or a log shipper can read either.
 *
 * When stderr is the systemd journal ($JOURNAL_STREAM names the device and
 * inode of stderr, as systemd sets it for StandardError=journal), every line
 * starts with the syslog priority "<N>" (error 3, warn 4, info 6, debug 7),
 * which journald strips and records as the entry's priority; text lines then
 * carry no timestamp (the journal has its own). JSON lines keep theirs.
 */
#include "tagmoor/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum tm_log_format log_format = TM_LOG_TEXT;
static enum tm_log_level log_level = TM_LOG_INFO;
static int log_journal;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_priorities[] = { 3, 4, 6, 7 };

int tm_log_journal_matches(const char *journal_stream, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!journal_stream || sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(fd, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void tm_log_setup(enum tm_log_format format, enum tm_log_level level)
{
	log_format = format;
	log_level = level;
	log_journal = tm_log_journal_matches(getenv("JOURNAL_STREAM"), STDERR_FILENO);
}

enum tm_log_level tm_log_get_level(void)
{
	return log_level;
}

int tm_log_to_journal(void)
{
	return log_journal;
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
	flockfile(stderr); /* one line at a time (the daemon's watchdog thread logs too) */
	if (log_journal)
		fprintf(stderr, "<%d>", level_priorities[level]);
	if (log_format == TM_LOG_JSON) {
		fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
			level_names[level]);
		json_escape(stderr, msg);
		fputs("\"}\n", stderr);
	} else if (log_journal) {
		fprintf(stderr, "%s %s\n", level_names[level], msg);
	} else {
		fprintf(stderr, "%s %s %s\n", ts, level_names[level], msg);
	}
	fflush(stderr);
	funlockfile(stderr);
}
