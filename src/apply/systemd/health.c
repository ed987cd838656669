/*
 * health.c — the health check of the systemd applier (applier.h: health):
 * the units this revision started or restarted are watched (`systemctl
 * is-active`, `show` for the few whose details matter) until every one is
 * active and has stayed so, one has failed, or [systemd] wait has passed; a
 * failure names the unit with the last lines of its journal.
 *
 * Where it sits in the pipeline: after apply and prune (systemd.c), within
 * [systemd] wait; with --root or in diff nothing is checked.
 */
#define _GNU_SOURCE
#include "tagmoor/apply/systemd/systemd.h"
#include "systemd_internal.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	H_WAIT = 0,
	H_OK,
	H_BAD,
	H_SKIP
};

/* A unit that is not active: done (a oneshot that ran), still to come (a job
 * is queued), or dead. */
static int judge_inactive(const struct unit_state *u, int must_run)
{
	if (u->job)
		return H_WAIT;
	if (strcmp(u->active, "failed") == 0)
		return H_BAD;
	if (sd_is_running(u->active) || strcmp(u->active, "deactivating") == 0)
		return H_WAIT;
	if (strcmp(u->type, "oneshot") == 0 && strcmp(u->result, "success") == 0 && u->main_exit_us)
		return H_OK;
	return must_run ? H_BAD : H_SKIP;
}

/* The units a revision's health depends on: the services it installs
 * (units[0..*ninstall): they must run) and the services this pass changed. */
static int watched_units(char ***units, size_t *nunits, size_t *ninstall,
			 const struct tm_apply_result *res, const struct tm_objset *desired)
{
	char **chg = NULL;
	size_t nchg = 0;
	int r = 0;

	for (size_t i = 0; i < desired->n; i++) {
		const char *id = desired->v[i].id;
		size_t l = strlen(id);
		if (l > 8 && strcmp(id + l - 8, ".service") == 0 &&
		    tm_systemd_id_kind(id, NULL) == TM_SYSTEMD_UNIT && !sd_is_template(id) &&
		    tm_systemd_has_install(desired->v[i].content, desired->v[i].len) &&
		    (r = tm_strv_push(units, nunits, id)) < 0)
			goto out;
	}
	*ninstall = *nunits;
	if ((r = sd_collect_changed_units(&chg, &nchg, res->changed, res->nchanged)) < 0)
		goto out;
	for (size_t i = 0; i < nchg; i++) {
		size_t l = strlen(chg[i]);
		if (l > 8 && strcmp(chg[i] + l - 8, ".service") == 0 &&
		    !sd_in_list(*units, *nunits, chg[i]) &&
		    (r = tm_strv_push(units, nunits, chg[i])) < 0)
			goto out;
	}
out:
	tm_strv_free(chg, nchg);
	return r;
}

/* What the health check knows about each watched unit between two looks. */
struct watch {
	char **units;
	size_t nunits, ninstall;
	struct unit_state *st;     /* details of the units not running */
	active_state *act;         /* is-active of the units asked about */
	uint64_t *since;           /* when it was first seen active in a row */
	struct unit_state *base;   /* its state then */
	struct unit_state *now_st; /* its state now (the units seen active) */
	int *verdict;              /* H_WAIT, H_OK, H_BAD, H_SKIP */
};

static int watch_alloc(struct watch *w)
{
	size_t n = w->nunits;

	w->st = calloc(n, sizeof(*w->st));
	w->act = calloc(n, sizeof(*w->act));
	w->since = calloc(n, sizeof(*w->since));
	w->verdict = calloc(n, sizeof(*w->verdict));
	w->base = calloc(n, sizeof(*w->base));
	w->now_st = calloc(n, sizeof(*w->now_st));
	if (!w->st || !w->act || !w->since || !w->verdict || !w->base || !w->now_st)
		return tm_error_nomem();
	return 0;
}

static void watch_free(struct watch *w)
{
	free(w->st);
	free(w->act);
	free(w->since);
	free(w->verdict);
	free(w->base);
	free(w->now_st);
	tm_strv_free(w->units, w->nunits);
}

/* One look at the units still undecided (at time t; last: the deadline has
 * come): *pending says whether any is still undecided after it. */
static int watch_poll(const struct tm_applier_ctx *ctx, struct watch *w, uint64_t t, int last,
		      int *pending)
{
	char **units = w->units, **ask = NULL, **detail = NULL;
	size_t nunits = w->nunits, nask = 0, ndetail = 0, k = 0, d = 0;
	int *verdict = w->verdict, r = 0;

	*pending = 0;
	/* Only the units still undecided are asked about again; the
	 * details (job, type, result) only for those not running. */
	for (size_t i = 0; i < nunits; i++)
		if (verdict[i] == H_WAIT && (r = tm_strv_push(&ask, &nask, units[i])) < 0)
			goto out;
	if ((r = sd_is_active(ctx, w->act, ask, nask)) < 0)
		goto out;
	for (size_t i = 0; i < nask; i++)
		if (strcmp(w->act[i], "failed") != 0 && !sd_is_running(w->act[i]) &&
		    strcmp(w->act[i], "deactivating") != 0 &&
		    (r = tm_strv_push(&detail, &ndetail, ask[i])) < 0)
			goto out;
	if (ndetail && (r = sd_show_units(ctx, w->st, detail, ndetail)) < 0)
		goto out;
	/* Units seen active: read when they entered active and how often
	 * they restarted — sampling alone cannot tell a steady service
	 * from a crash loop that happens to be active at every look. */
	{
		char **seen = NULL;
		size_t nseen = 0, kk = 0;
		for (size_t i = 0; i < nunits; i++)
			if (verdict[i] == H_WAIT && strcmp(w->act[kk++], "active") == 0 &&
			    (r = tm_strv_push(&seen, &nseen, units[i])) < 0)
				break;
		if (r == 0 && nseen)
			r = sd_show_units(ctx, w->now_st, seen, nseen);
		tm_strv_free(seen, nseen);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0, s_i = 0; i < nunits; i++) {
		const char *a;

		if (verdict[i] != H_WAIT)
			continue;
		a = w->act[k++];
		if (strcmp(a, "active") == 0) {
			const struct unit_state *n = &w->now_st[s_i++];
			/* healthy once active for SETTLE_MS without re-entering
			 * active or restarting in between */
			if (!w->since[i] || n->active_enter_us != w->base[i].active_enter_us ||
			    n->nrestarts != w->base[i].nrestarts) {
				if (w->since[i] && last)
					verdict[i] = H_BAD; /* restarted up to the deadline */
				w->since[i] = t;
				w->base[i] = *n;
			} else if (last || t - w->since[i] >= SETTLE_MS) {
				verdict[i] = H_OK;
			}
		} else {
			w->since[i] = 0;
			if (strcmp(a, "failed") == 0)
				verdict[i] = H_BAD;
			else if (!sd_is_running(a) && strcmp(a, "deactivating") != 0)
				verdict[i] = judge_inactive(&w->st[d++], i < w->ninstall);
		}
		if (verdict[i] == H_WAIT && last)
			verdict[i] = H_BAD;
		if (verdict[i] == H_WAIT)
			*pending = 1;
	}
out:
	tm_strv_free(ask, nask);
	tm_strv_free(detail, ndetail);
	return r;
}

/* The unhealthy units into res->unhealthy, and the failure naming the
 * first with its state and the last lines of its journal (one show for
 * the bad ones to describe their final state). */
static int watch_report(const struct tm_applier_ctx *ctx, struct watch *w,
			struct tm_apply_result *res, uint64_t wait_ms)
{
	char **bad = NULL;
	size_t nbad = 0;
	char msg[900] = "";
	int r;

	for (size_t i = 0; i < w->nunits; i++)
		if (w->verdict[i] == H_BAD &&
		    ((r = tm_strv_push(&bad, &nbad, w->units[i])) < 0 ||
		     (r = tm_strv_push(&res->unhealthy, &res->nunhealthy, w->units[i])) < 0)) {
			tm_strv_free(bad, nbad);
			return r;
		}
	if (!nbad)
		return 0;
	if ((r = sd_show_units(ctx, w->st, bad, nbad)) == 0) {
		const struct unit_state *st = w->st;
		char journal[600];
		sd_journal_tail(ctx, journal, sizeof(journal), bad[0]);
		snprintf(msg, sizeof(msg), "%s is %s (%s%s%s)%s%s", bad[0],
			 st[0].active[0] ? st[0].active : "unknown", st[0].sub,
			 st[0].result[0] ? ", result " : "", st[0].result,
			 journal[0] ? "; journal: " : "", journal);
		r = tm_error_set(TM_EAPPLY, "systemd: health check failed within %llu ms: %s%s",
				 (unsigned long long)wait_ms, msg,
				 nbad > 1 ? "; other unhealthy units follow in the status" : "");
	}
	tm_apply_result_set_object(res, bad[0]);
	for (size_t i = 0; i < nbad; i++)
		tm_log_error("systemd: %s is not healthy", bad[i]);
	tm_strv_free(bad, nbad);
	return r;
}

int sd_health(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	      const struct tm_objset *desired, uint64_t wait_ms)
{
	struct watch w = { 0 };
	uint64_t deadline;
	int r = 0;

	if (ctx->root || ctx->dry_run || wait_ms == 0)
		return 0;
	if ((r = watched_units(&w.units, &w.nunits, &w.ninstall, res, desired)) < 0 || !w.nunits)
		goto out;
	if ((r = watch_alloc(&w)) < 0)
		goto out;
	deadline = (uint64_t)tm_time_mono_ms() + wait_ms;
	for (;;) {
		uint64_t t = tm_time_mono_ms();
		int pending;

		if ((r = watch_poll(ctx, &w, t, t >= deadline, &pending)) < 0)
			goto out;
		if (!pending)
			break;
		usleep(POLL_MS * 1000u);
	}
	r = watch_report(ctx, &w, res, wait_ms);
out:
	watch_free(&w);
	return r;
}
