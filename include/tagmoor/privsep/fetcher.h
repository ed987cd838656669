/*
 * fetcher.h — one sandboxed child per poll (docs/security.md).
 *
 * tm_fetcher_run forks; the child enters the sandbox (sandbox.h), runs job
 * (poll, fetch, verify, read the plan inputs: everything that parses the
 * network), encodes what job filled in (message.h) into a pipe and exits.
 * The parent reads the message within a deadline and decodes it strictly.
 * A child that crashes, is killed by seccomp (SIGSYS), exceeds the deadline
 * (then SIGKILL) or sends a malformed message is a source error
 * (TM_ESOURCE) whose message says which; the parent goes on, and the next
 * poll forks a fresh child.
 */
#ifndef TAGMOOR_PRIVSEP_FETCHER_H
#define TAGMOOR_PRIVSEP_FETCHER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/privsep/message.h"
#include "tagmoor/privsep/sandbox.h"

struct tm_config;

struct tm_fetcher_reply {
	struct tm_buf raw; /* what the pipe carried: the message, or its size in the memfd */
	const char *map;   /* the message mapped from the memfd (read-only), or NULL; msg
				* points into it or into raw */
	size_t map_len;
	struct tm_msg msg;     /* decoded */
	pid_t pid;             /* the child it came from (gone by now) */
	int killed_signal;     /* the signal that ended the child, 0 none */
	uint64_t child_cpu_us; /* user + system CPU of the child */
	uint64_t child_maxrss_kb;
};

/* Fills sb for cfg (user, repository, trust files, limits) in the parent. */
int tm_fetcher_sandbox(struct tm_sandbox *sb, const struct tm_config *cfg);

/* One line on what the child gives up, for the log once per process:
 * "the fetcher child runs as USER (uid N) | as uid 0 (REASON), without
 * capabilities, Landlock ABI n | no Landlock, seccomp | no seccomp". */
void tm_fetcher_describe(char *out, size_t outlen, const struct tm_sandbox *sb);

/* The wall-clock limit of one child: max(10 min, 5 x [source] timeout). */
uint64_t tm_fetcher_deadline_ms(const struct tm_config *cfg);

/* The largest message the parent accepts for cfg. */
size_t tm_fetcher_max_message(const struct tm_config *cfg);

/* Runs job(arg, msg) in a sandboxed child; the reply in out (free it with
 * tm_fetcher_reply_free, also after a failure). Returns 0 when a message
 * arrived and decoded (its status may still be an error), else TM_ESOURCE. */
int tm_fetcher_run(struct tm_fetcher_reply *out, const struct tm_config *cfg,
		   const struct tm_sandbox *sb, int (*job)(void *arg, struct tm_msg *msg),
		   void *arg);
void tm_fetcher_reply_free(struct tm_fetcher_reply *r);

/* The ownership the child needs: repo_dir (state_dir/repo.git) created when
 * missing and, when the child changes uid, owned by it (chowned once, when
 * its top directory is not). */
int tm_fetcher_prepare_repo(const char *repo_dir, const struct tm_sandbox *sb);

#endif
