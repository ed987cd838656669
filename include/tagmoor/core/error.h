/*
 * error.h — the one error model of tagmoor.
 *
 * A function that can fail returns int: 0 on success, a negative TM_E* code
 * otherwise. The failure is described once, where it is understood, with
 * tm_error_set(); callers pass the code up unchanged. main() maps the code to
 * the process exit status of SPEC.md. Codes are never renumbered.
 */
#ifndef TAGMOOR_ERROR_H
#define TAGMOOR_ERROR_H

#include <stddef.h>

enum {
	TM_OK = 0,
	TM_ERROR = -1,        /* generic failure (apply, I/O) -> exit 1 */
	TM_EUSAGE = -2,       /* command line or configuration -> exit 2 */
	TM_ECONFIG = -3,      /* configuration file -> exit 2 */
	TM_ESOURCE = -4,      /* source unreachable or fetch failed -> exit 3 */
	TM_EVERIFY = -5,      /* verification refused -> exit 4 */
	TM_ELOCKED = -6,      /* another tagmoor holds the lock -> exit 5 */
	TM_ENOMEM = -7,       /* out of memory -> exit 1 */
	TM_ELIMIT = -8,       /* a size / depth / count cap was hit */
	TM_EIO = -9,          /* file system */
	TM_ENOTFOUND = -10,   /* a thing that was looked up does not exist */
	TM_EPARSE = -11,      /* malformed input */
	TM_EAPPLY = -12,      /* apply or health check failed -> exit 1 */
	TM_ENOTIMPL = -13,    /* command whose module is not built -> exit 2 */
	TM_ESTOPPED = -14,    /* a pass stopped at a safe point (SIGTERM) -> exit 0 */
	TM_EUNREACHABLE = -15 /* an applier's target (the cluster) could not be reached -> exit 3 */
};

/* Records the message of the current failure (one line) and returns code. */
int tm_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* tm_error_set(TM_ENOMEM, "out of memory"): the one out-of-memory error. */
int tm_error_nomem(void);

/* Prefixes the current message with "context: " (printf-style), keeps code. */
int tm_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message (never NULL; "" when none). Borrowed. */
const char *tm_error_last(void);
int tm_error_last_code(void);
void tm_error_clear(void);

/* The process exit status of SPEC.md for an error code. */
int tm_error_exit_code(int code);

#endif
