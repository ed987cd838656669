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

int sd_health(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	      const struct tm_objset *desired, uint64_t wait_ms)
{
	char **units = NULL, **chg = NULL;
	size_t nunits = 0, nchg = 0, ninstall;
	struct unit_state *st = NULL;
	active_state *act = NULL;
	uint64_t *since = NULL, deadline;
	struct unit_state *base = NULL, *now_st = NULL;
	int *verdict = NULL, r = 0;

	if (ctx->root || ctx->dry_run || wait_ms == 0)
		return 0;
	for (size_t i = 0; i < desired->n; i++) {
		const char *id = desired->v[i].id;
		size_t l = strlen(id);
		if (l > 8 && strcmp(id + l - 8, ".service") == 0 &&
		    tm_systemd_id_kind(id, NULL) == TM_SYSTEMD_UNIT && !sd_is_template(id) &&
		    tm_systemd_has_install(desired->v[i].content, desired->v[i].len) &&
		    (r = tm_strv_push(&units, &nunits, id)) < 0)
			goto out;
	}
	ninstall = nunits;
	if ((r = sd_collect_changed_units(&chg, &nchg, res->changed, res->nchanged)) < 0)
		goto out;
	for (size_t i = 0; i < nchg; i++) {
		size_t l = strlen(chg[i]);
		if (l > 8 && strcmp(chg[i] + l - 8, ".service") == 0 &&
		    !sd_in_list(units, nunits, chg[i]) &&
		    (r = tm_strv_push(&units, &nunits, chg[i])) < 0)
			goto out;
	}
	if (!nunits)
		goto out;
	st = calloc(nunits, sizeof(*st));
	act = calloc(nunits, sizeof(*act));
	since = calloc(nunits, sizeof(*since));
	verdict = calloc(nunits, sizeof(*verdict));
	base = calloc(nunits, sizeof(*base));
	now_st = calloc(nunits, sizeof(*now_st));
	if (!st || !act || !since || !verdict || !base || !now_st) {
		r = tm_error_set(TM_ENOMEM, "out of memory");
		goto out;
	}
	deadline = (uint64_t)tm_time_mono_ms() + wait_ms;
	for (;;) {
		uint64_t t = tm_time_mono_ms();
		int pending = 0, last = t >= deadline;
		char **ask = NULL, **detail = NULL;
		size_t nask = 0, ndetail = 0, k = 0, d = 0;

		/* Only the units still undecided are asked about again; the
		 * details (job, type, result) only for those not running. */
		for (size_t i = 0; i < nunits; i++)
			if (verdict[i] == H_WAIT && (r = tm_strv_push(&ask, &nask, units[i])) < 0)
				goto poll_out;
		if ((r = sd_is_active(ctx, act, ask, nask)) < 0)
			goto poll_out;
		for (size_t i = 0; i < nask; i++)
			if (strcmp(act[i], "failed") != 0 && !sd_is_running(act[i]) &&
			    strcmp(act[i], "deactivating") != 0 &&
			    (r = tm_strv_push(&detail, &ndetail, ask[i])) < 0)
				goto poll_out;
		if (ndetail && (r = sd_show_units(ctx, st, detail, ndetail)) < 0)
			goto poll_out;
		/* Units seen active: read when they entered active and how often
		 * they restarted — sampling alone cannot tell a steady service
		 * from a crash loop that happens to be active at every look. */
		{
			char **seen = NULL;
			size_t nseen = 0, kk = 0;
			for (size_t i = 0; i < nunits; i++)
				if (verdict[i] == H_WAIT && strcmp(act[kk++], "active") == 0 &&
				    (r = tm_strv_push(&seen, &nseen, units[i])) < 0)
					break;
			if (r == 0 && nseen)
				r = sd_show_units(ctx, now_st, seen, nseen);
			tm_strv_free(seen, nseen);
			if (r < 0)
				goto poll_out;
		}
		for (size_t i = 0, s_i = 0; i < nunits; i++) {
			const char *a;

			if (verdict[i] != H_WAIT)
				continue;
			a = act[k++];
			if (strcmp(a, "active") == 0) {
				const struct unit_state *n = &now_st[s_i++];
				/* healthy once active for SETTLE_MS without re-entering
				 * active or restarting in between */
				if (!since[i] || n->active_enter_us != base[i].active_enter_us ||
				    n->nrestarts != base[i].nrestarts) {
					if (since[i] && last)
						verdict[i] =
							H_BAD; /* restarted up to the deadline */
					since[i] = t;
					base[i] = *n;
				} else if (last || t - since[i] >= SETTLE_MS) {
					verdict[i] = H_OK;
				}
			} else {
				since[i] = 0;
				if (strcmp(a, "failed") == 0)
					verdict[i] = H_BAD;
				else if (!sd_is_running(a) && strcmp(a, "deactivating") != 0)
					verdict[i] = judge_inactive(&st[d++], i < ninstall);
			}
			if (verdict[i] == H_WAIT && last)
				verdict[i] = H_BAD;
			if (verdict[i] == H_WAIT)
				pending = 1;
		}
poll_out:
		tm_strv_free(ask, nask);
		tm_strv_free(detail, ndetail);
		if (r < 0)
			goto out;
		if (!pending)
			break;
		usleep(POLL_MS * 1000u);
	}
	/* Report. One show for the bad ones to describe their final state. */
	{
		char **bad = NULL;
		size_t nbad = 0;
		char msg[900] = "";

		for (size_t i = 0; i < nunits; i++)
			if (verdict[i] == H_BAD &&
			    ((r = tm_strv_push(&bad, &nbad, units[i])) < 0 ||
			     (r = tm_strv_push(&res->unhealthy, &res->nunhealthy, units[i])) < 0)) {
				tm_strv_free(bad, nbad);
				goto out;
			}
		if (!nbad) {
			r = 0;
			goto out;
		}
		if ((r = sd_show_units(ctx, st, bad, nbad)) == 0) {
			char journal[600];
			sd_journal_tail(ctx, journal, sizeof(journal), bad[0]);
			snprintf(msg, sizeof(msg), "%s is %s (%s%s%s)%s%s", bad[0],
				 st[0].active[0] ? st[0].active : "unknown", st[0].sub,
				 st[0].result[0] ? ", result " : "", st[0].result,
				 journal[0] ? "; journal: " : "", journal);
			r = tm_error_set(TM_EAPPLY,
					 "systemd: health check failed within %llu ms: %s%s",
					 (unsigned long long)wait_ms, msg,
					 nbad > 1 ? "; other unhealthy units follow in the status"
						  : "");
		}
		tm_apply_result_set_object(res, bad[0]);
		for (size_t i = 0; i < nbad; i++)
			tm_log_error("systemd: %s is not healthy", bad[i]);
		tm_strv_free(bad, nbad);
	}
out:
	free(st);
	free(act);
	free(since);
	free(verdict);
	free(base);
	free(now_st);
	tm_strv_free(units, nunits);
	tm_strv_free(chg, nchg);
	return r;
}
