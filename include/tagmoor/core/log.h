/*
 * log.h — logging to stderr, as text or JSON lines, with levels; with
 * "<N>" syslog priority prefixes when $JOURNAL_STREAM says stderr is the
 * systemd journal (checked by tm_log_setup).
 *
 * Untrusted strings must go through the "%.*s" length cap (TM_LOG_CAP) or
 * tm_log_field helpers; secrets are never passed here.
 */
#ifndef TAGMOOR_LOG_H
#define TAGMOOR_LOG_H

enum tm_log_level {
	TM_LOG_ERROR = 0,
	TM_LOG_WARN,
	TM_LOG_INFO,
	TM_LOG_DEBUG
};
enum tm_log_format {
	TM_LOG_TEXT = 0,
	TM_LOG_JSON
};

#define TM_LOG_CAP 256 /* maximum bytes of one untrusted string in a line */

void tm_log_setup(enum tm_log_format format, enum tm_log_level level);
enum tm_log_level tm_log_get_level(void);
/* Whether lines carry "<N>" priority prefixes (stderr is the journal). */
int tm_log_to_journal(void);
/* Whether journal_stream ("DEV:INO", as systemd sets $JOURNAL_STREAM) names
 * the file open on fd. */
int tm_log_journal_matches(const char *journal_stream, int fd);
void tm_log(enum tm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tm_log_error(...) tm_log(TM_LOG_ERROR, __VA_ARGS__)
#define tm_log_warn(...) tm_log(TM_LOG_WARN, __VA_ARGS__)
#define tm_log_info(...) tm_log(TM_LOG_INFO, __VA_ARGS__)
#define tm_log_debug(...) tm_log(TM_LOG_DEBUG, __VA_ARGS__)

#endif
