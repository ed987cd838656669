/*
 * source.c — the source stage (include/tagmoor/pipeline/source.h): the
 * fetcher child's job, and the parent's check of what it sent.
 *
 * The job runs after fork, inside the sandbox: it opens repo.git, makes the
 * one ref advertisement, fetches only what moved, verifies, and reads the
 * plan inputs the parent will need, following tm_reconcile_pass's decisions
 * (idle, remembered refusal, known bad revision, new revision). It writes
 * nothing but repo.git; the parent gets one message, with every tag, commit
 * and tree object the job read.
 *
 * The parent believes none of it unchecked (a compromised child controls
 * every byte): it files those objects under the SHA-1 ids it computes,
 * verifies the revision again from them under its own floor and clock, and
 * checks the plan inputs against the commit's trees, blob by blob.
 */
#include "tagmoor/pipeline/source.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fault.h"
#include "tagmoor/core/log.h"
#include "tagmoor/pipeline/plan.h"
#include "tagmoor/source/git.h"
#include "tagmoor/state/state.h"
#include "tagmoor/verify/rawobj.h"

#include <stdlib.h>
#include <string.h>

/* Every tag, commit and tree the child reads goes into its message, so
 * that the parent checks the verdict and the inputs against them. */
static int send_object(void *arg, int type, const char *data, size_t len)
{
	return tm_msg_add_object(arg, (uint32_t)type, data, len);
}

/* Adds the inputs of commit (every enabled applier) as a new set. */
static int capture(struct tm_msg *m, struct tm_pass *p, const struct tm_objsrc *src,
		   struct tm_git *git, const char *commit)
{
	struct tm_msg_set *set;
	int r = 0;

	if (m->nsets >= TM_MSG_MAX_SETS || tm_msg_find_set(m, commit))
		return 0;
	set = &m->sets[m->nsets++];
	memset(set, 0, sizeof(*set));
	if (!(set->commit = strdup(commit)))
		return tm_error_nomem();
	for (size_t i = 0; i < TM_PASS_APPLIERS && r == 0; i++)
		if (p->appliers[i].enabled)
			r = tm_plan_capture(set, src, git, (uint32_t)i, p->appliers[i].ap, p->cfg,
					    p->appliers[i].paths);
	return r;
}

static int fail(struct tm_msg *m, int code, uint32_t flags)
{
	m->status = code;
	m->error = strdup(tm_error_last());
	m->flags |= flags;
	return 0;
}

int tm_source_job(void *arg, struct tm_msg *m)
{
	struct tm_source_job *job = arg;
	struct tm_pass *p = job->p;
	const struct tm_config *cfg = p->cfg;
	const struct tm_state *st = job->st;
	struct tm_git_source src = { cfg->source.url, cfg->source.ca_file, cfg->source.token_file,
				     cfg->source.timeout_ms, cfg->source.max_fetch };
	static char oid[41];
	static struct tm_objsrc_git g; /* lives until _exit, as the message does */
	struct tm_objsrc objs;
	struct tm_git *git = NULL;
	char path[4096];
	const char *applied_id = st->applied.tag_object[0] ? st->applied.tag_object
							   : st->applied.commit;
	int r;

	snprintf(path, sizeof(path), "%s/repo.git", cfg->agent.state_dir);
	if ((r = tm_git_open(&git, path)) < 0)
		return fail(m, r, 0);
	/* every object and body read goes to the parent, which hashes it (tm_source_check):
	 * libgit2's own hash of each read (a third of a large file's cost here) adds nothing */
	tm_git_hash_reads(0);
	g.keep = send_object;
	g.keep_arg = m;
	tm_objsrc_git_init(&objs, &g, git);
	r = tm_git_ls_remote(oid, git, &src, job->ref);
	if (r == TM_ENOTFOUND)
		r = tm_error_set(TM_ESOURCE, "%s is not on the server", job->ref);
	if (r < 0)
		return fail(m, TM_ESOURCE, 0);
	m->oid = oid;
	if (p->mode == TM_PASS_SYNC && strcmp(oid, applied_id) == 0) {
		char reason[512];
		int64_t now = tm_verify_effective_now(p->time, st->accepted_time);
		if (p->no_drift ||
		    tm_verify_freshness(reason, sizeof(reason), cfg, st->applied.tag_time,
					st->applied.expires, now) == TM_VERIFY_STALE)
			return 0;
		/* repo.git was rebuilt: fetch the applied revision again (the same
		 * object id, so the same verified bytes) for drift detection */
		if (!tm_git_has_object(git, st->applied.commit) &&
		    tm_git_fetch(git, &src, job->ref, oid) < 0) {
			tm_log_warn("re-fetching the applied revision: %s", tm_error_last());
			tm_error_clear();
		}
		if (tm_git_has_object(git, st->applied.commit) == 1)
			r = capture(m, p, &objs, git, st->applied.commit);
		return r < 0 ? fail(m, r, 0) : 0;
	}
	if (p->mode == TM_PASS_SYNC && p->memo && strcmp(p->memo->oid, oid) == 0)
		return 0;
	if (p->mode == TM_PASS_SYNC && tm_state_is_bad(st, oid, NULL)) {
		if (cfg->agent.on_failure == TM_ON_FAILURE_ROLLBACK && !p->no_drift &&
		    st->applied.commit[0] && tm_git_has_object(git, st->applied.commit) == 1)
			r = capture(m, p, &objs, git, st->applied.commit);
		return r < 0 ? fail(m, r, 0) : 0;
	}
	if (p->stop && p->stop(p->stop_arg)) {
		m->flags |= TM_MSG_STOPPED;
		return 0;
	}
	if (!tm_git_has_object(git, oid)) {
		tm_log_info("%s moved to %.12s; fetching", job->ref, oid);
		m->flags |= TM_MSG_FETCHED;
		if ((r = tm_git_fetch(git, &src, job->ref, oid)) < 0)
			return fail(m, TM_ESOURCE, 0);
	}
	{
		struct tm_verify_floor floor = { st->accepted_time, st->accepted_key };
		if ((r = tm_verify_revision(&m->verdict, &objs, cfg, job->ref, oid, &floor,
					    p->time)) < 0)
			return fail(m, r, TM_MSG_VERIFY_ERROR);
	}
	m->have_verdict = 1;
	if (m->verdict.outcome != TM_VERIFY_ACCEPTED || p->mode == TM_PASS_VERIFY)
		return 0;
	if (p->mode == TM_PASS_SYNC && tm_state_is_bad(st, NULL, m->verdict.key))
		return 0;
	if ((r = capture(m, p, &objs, git, m->verdict.commit)) < 0)
		return fail(m, r, 0);
	/* what a rollback would re-apply */
	if (p->mode == TM_PASS_SYNC && cfg->agent.on_failure == TM_ON_FAILURE_ROLLBACK &&
	    st->last_good.commit[0] && strcmp(st->last_good.commit, m->verdict.commit) != 0 &&
	    tm_git_has_object(git, st->last_good.commit) == 1 &&
	    (r = capture(m, p, &objs, git, st->last_good.commit)) < 0)
		return fail(m, r, 0);
	/* the repository stays open until _exit: nothing to free in the child */
	return 0;
}

/* --- the parent: believe nothing unchecked --------------------------------- */

static const char *outcome_name(enum tm_verify_outcome o)
{
	return o == TM_VERIFY_ACCEPTED ? "accepted"
	       : o == TM_VERIFY_WAIT   ? "wait"
	       : o == TM_VERIFY_STALE  ? "stale"
				       : "refused";
}

int tm_source_check(struct tm_pass *p, const struct tm_state *st, const char *ref, struct tm_msg *m,
		    struct tm_objtab *tab)
{
	struct tm_objsrc src;
	int r;

	for (size_t i = 0; i < m->nobjs; i++)
		if ((r = tm_objtab_add(tab, (int)m->objs[i].type, m->objs[i].data,
				       m->objs[i].len)) < 0)
			return r;
	tm_objtab_source(&src, tab);
	if (m->have_verdict) {
		struct tm_verify_floor floor = { st->accepted_time, st->accepted_key };
		struct tm_verify_result v;
		r = tm_verify_revision(&v, &src, p->cfg, ref, m->oid, &floor, p->time);
		if (r < 0)
			return tm_error_wrap(TM_ESOURCE, "verifying what the fetcher sent");
		if (v.outcome != m->verdict.outcome || strcmp(v.commit, m->verdict.commit) != 0 ||
		    strcmp(v.key, m->verdict.key) != 0)
			tm_log_warn("the fetcher's verdict on %.12s (%s) is not the parent's (%s); "
				    "the parent's holds",
				    m->oid, outcome_name(m->verdict.outcome),
				    outcome_name(v.outcome));
		m->verdict = v;
	}
	for (size_t s = 0; s < m->nsets; s++)
		for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
			const struct tm_strlist *paths = p->appliers[i].paths;
			if (!p->appliers[i].enabled)
				continue;
			for (size_t k = 0; k < paths->n; k++) {
				const struct tm_msg_dir *d =
					tm_msg_find_dir(&m->sets[s], (uint32_t)i, paths->v[k]);
				if (d && (r = tm_plan_check_inputs(d, m->sets[s].commit, &src,
								   p->appliers[i].ap)) < 0)
					return tm_error_wrap(TM_ESOURCE,
							     "the fetcher's inputs of commit %.12s "
							     "do not match its trees",
							     m->sets[s].commit);
			}
		}
	return 0;
}

struct upkeep {
	const struct tm_config *cfg;
	const char *applied;
	int prune;
	const char *const *keep;
	size_t nkeep;
};

static int upkeep_job(void *arg, struct tm_msg *m)
{
	struct upkeep *u = arg;
	struct tm_git *git = NULL;
	char path[4096];
	int r;

	m->oid = "0000000000000000000000000000000000000000";
	snprintf(path, sizeof(path), "%s/repo.git", u->cfg->agent.state_dir);
	if ((r = tm_git_open(&git, path)) < 0)
		return fail(m, r, 0);
	if (u->applied && tm_git_set_ref(git, TM_GIT_APPLIED_REF, u->applied) < 0)
		tm_log_warn("%s", tm_error_last());
	if (u->prune && tm_git_prune(git, u->keep, u->nkeep) < 0)
		tm_log_warn("pruning the object store: %s", tm_error_last());
	tm_error_clear();
	return 0;
}

int tm_source_upkeep(const struct tm_config *cfg, const struct tm_sandbox *sb,
		     const char *applied_commit, int prune, const char *const *keep, size_t nkeep)
{
	struct upkeep u = { cfg, applied_commit, prune, keep, nkeep };
	struct tm_fetcher_reply rep;
	int r = tm_fetcher_run(&rep, cfg, sb, upkeep_job, &u);

	if (r == 0 && rep.msg.status < 0)
		r = tm_error_set(rep.msg.status, "%s", rep.msg.error);
	tm_fetcher_reply_free(&rep);
	return r;
}
