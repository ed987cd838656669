/*
 * source.h — the source stage of a pass as it runs in the fetcher child
 * (docs/security.md): poll, fetch, verify and the plan inputs, decided the
 * way tm_reconcile_pass decides them, answered in one message; and, after a
 * pass that fetched, the repository's upkeep (refs/tagmoor/applied, prune)
 * in a second child. The parent never opens repo.git.
 */
#ifndef TAGMOOR_PIPELINE_SOURCE_H
#define TAGMOOR_PIPELINE_SOURCE_H

#include "tagmoor/pipeline/reconcile.h"
#include "tagmoor/privsep/fetcher.h"

struct tm_state;
struct tm_objtab;

struct tm_source_job {
	struct tm_pass *p;
	const struct tm_state *st;
	const char *ref;
};

/* The child's job (tm_fetcher_run): m->sets holds the applied commit's
 * inputs when nothing moved and the drift check is due, the new revision's
 * (and the last good one's, for a rollback) when it was accepted. */
int tm_source_job(void *arg, struct tm_msg *m);

/* The parent, before it believes the child's message m: files the raw
 * objects m carries in tab under the ids it computes, verifies the revision
 * again from them (its verdict replaces the child's) and checks every set's
 * inputs against the trees of its commit (tm_plan_check_inputs). TM_ESOURCE
 * naming the first thing that does not match. tab points into m. */
int tm_source_check(struct tm_pass *p, const struct tm_state *st, const char *ref, struct tm_msg *m,
		    struct tm_objtab *tab);

/* After a sync pass that fetched or applied: in a sandboxed child,
 * refs/tagmoor/applied to applied_commit (NULL: left as it is) and, when
 * prune, tm_git_prune with keep. */
int tm_source_upkeep(const struct tm_config *cfg, const struct tm_sandbox *sb,
		     const char *applied_commit, int prune, const char *const *keep, size_t nkeep);

#endif
