/*
 * reconcile.h — one pass of the pipeline of docs/architecture.md:
 *   poll → fetch → verify → plan → apply → health → commit state → (report)
 * and on failure after apply: mark bad → re-apply last good → rolled_back.
 * The daemon only decides when to call it.
 */
#ifndef TAGMOOR_RECONCILE_H
#define TAGMOOR_RECONCILE_H

#include <stdint.h>
#include <stdio.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/verify/verify.h"

struct tm_config;

enum tm_pass_mode {
	TM_PASS_SYNC = 0,
	TM_PASS_DIFF,
	TM_PASS_VERIFY
};

#define TM_PASS_MAX_ERRORS 16
#define TM_PASS_APPLIERS 2

struct tm_pass_error {
	char stage[16];   /* source, verify, plan, apply, health, rollback, state */
	char object[256]; /* "" = null */
	char message[512];
};

/* What the daemon remembers between passes (in memory only) so that a
 * refused or stale revision is not fetched and verified again on every poll:
 * when the ref still shows `oid`, the pass reports `state` with `reason`
 * again without a fetch. Cleared when the configuration is reloaded. */
struct tm_pass_memo {
	char oid[41];
	char state[16]; /* "refused" or "stale" */
	char reason[512];
};

struct tm_pass {
	/* in */
	const struct tm_config *cfg;
	enum tm_pass_mode mode;
	const char *ref;                 /* NULL: the configured ref */
	FILE *out;                       /* diff output */
	int no_drift;                    /* sync: skip the drift check when nothing moved (daemon:
					* drift only every drift_check) */
	const struct tm_pass_memo *memo; /* NULL: none */
	/* Asked at the safe points of a pass (before fetch, before apply): non-zero
	 * ends the pass there with TM_ESTOPPED, nothing written. NULL: never. */
	int (*stop)(void *arg);
	void *stop_arg;
	/* tests: another implementation for a slot (NULL: the built-in one) */
	const struct tm_applier *applier_override[TM_PASS_APPLIERS];
	/* out */
	const char *state; /* synced progressing failed rolled_back refused stale drifted */
	int moved;         /* the ref had moved (something new was considered) */
	int have_verdict;
	struct tm_verify_result verdict;
	char applied_commit[41];
	char last_good_commit[41];
	struct {
		const char *name; /* the slot: "kubernetes", "systemd" (state and status key) */
		int enabled;
		const struct tm_applier *ap;
		const struct tm_strlist *paths;
		int prune;
		uint64_t wait_ms;
		struct tm_apply_result res;
		void *state; /* the applier's pass state (applier.h: begin .. end) */
		int begun;
	} appliers[TM_PASS_APPLIERS];
	struct tm_pass_error errors[TM_PASS_MAX_ERRORS];
	size_t nerrors;
	int64_t started_ms, duration_ms;
	int64_t time;      /* wall-clock time of the pass */
	char oid[41];      /* what the ref advertised ("" if the poll failed) */
	int drift_checked; /* the drift check ran */
	uint64_t seq;      /* seq of the status document the pass saved (0: none) */
};

/* Runs one pass; returns 0 or a negative TM_E* code (main maps it to an exit
 * status). The caller holds the state lock. */
int tm_reconcile_pass(struct tm_pass *pass);
void tm_pass_free(struct tm_pass *pass);

/* The name of applier slot i ("kubernetes", "systemd"): its state and status key. */
const char *tm_pass_applier_name(size_t i);
/* The status document of SPEC.md for a finished pass (seq given; status.c). */
int tm_pass_status_json(struct tm_buf *out, const struct tm_pass *pass, uint64_t seq);

#endif
