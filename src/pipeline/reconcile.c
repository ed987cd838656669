/*
 * reconcile.c — one reconcile pass, top to bottom like the diagram of docs/architecture.md:
 *
 *   poll (one ref advertisement) → fetch (only if moved) → verify → plan →
 *   apply → health → commit state
 *   on failure after apply: mark bad → re-apply last good → rolled_back
 *
 * A poll that finds nothing new writes nothing: the drift check reads the
 * applied revision from the local repository and only writes state when it
 * repaired something. The inventory (what tagmoor may change or remove)
 * grows only by what an applier reports it wrote; after a power cut in the
 * middle of an apply the same revision is retried and the appliers adopt
 * objects that already match it (systemd: identical files; Kubernetes: the
 * ownership labels), so nothing foreign is ever taken over.
 */
#include "tagmoor/pipeline/reconcile.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/pipeline/source.h"
#include "tagmoor/doc/json.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/core/log.h"
#include "tagmoor/doc/yaml.h"
#include "tagmoor/pipeline/plan.h"
#include "tagmoor/report/report.h"
#include "tagmoor/state/state.h"
#include "tagmoor/core/fault.h"
#include "tagmoor/state/space.h"
#include "tagmoor/verify/rawobj.h"

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The appliers of a pass, in order: Kubernetes first (a host unit may need
 * what the cluster runs, rarely the reverse). Each slot takes its settings
 * from its own INI section (the shared part of it, struct tm_applier_config);
 * a test may replace a slot's implementation. */
static const struct {
	const char *name; /* the state and status key of the slot */
	const struct tm_applier *builtin;
	size_t config; /* where the slot's struct tm_applier_config is in struct tm_config */
} slots[TM_PASS_APPLIERS] = {
	{ "kubernetes", &tm_kube_applier, offsetof(struct tm_config, kubernetes.applier) },
	{ "systemd", &tm_systemd_applier, offsetof(struct tm_config, systemd.applier) },
};

static void setup_appliers(struct tm_pass *p)
{
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_applier_config *ac =
			(const void *)((const char *)p->cfg + slots[i].config);

		p->appliers[i].name = slots[i].name;
		p->appliers[i].ap = p->applier_override[i] ? p->applier_override[i]
							   : slots[i].builtin;
		p->appliers[i].enabled = ac->enabled;
		p->appliers[i].paths = &ac->paths;
		p->appliers[i].prune = ac->prune;
		p->appliers[i].wait_ms = ac->wait_ms;
	}
}

static void add_error(struct tm_pass *p, const char *stage, const char *object, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

static void add_error(struct tm_pass *p, const char *stage, const char *object, const char *fmt,
		      ...)
{
	struct tm_pass_error *e;
	va_list ap;

	if (p->nerrors >= TM_PASS_MAX_ERRORS)
		return;
	e = &p->errors[p->nerrors++];
	snprintf(e->stage, sizeof(e->stage), "%s", stage);
	snprintf(e->object, sizeof(e->object), "%s", object ? object : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static void set_revision(struct tm_revision *rev, const struct tm_verify_result *v)
{
	memcpy(rev->commit, v->commit, sizeof(rev->commit));
	memcpy(rev->tag_object, v->tag_object, sizeof(rev->tag_object));
	rev->tag_time = v->tag_time;
	rev->expires = v->expires;
	memcpy(rev->key, v->key, sizeof(rev->key));
	snprintf(rev->signer, sizeof(rev->signer), "%s", v->signer);
}

/* Raises the anti-rollback floor to an accepted revision's signed time. */
static void raise_floor(struct tm_state *st, const struct tm_verify_result *v)
{
	if (v->tag_time >= st->accepted_time) {
		st->accepted_time = v->tag_time;
		memcpy(st->accepted_key, v->key, sizeof(st->accepted_key));
	}
}

/* The applier hook: ids about to be written become tagmoor's (state.json
 * saved) before the first write. */
struct recorder {
	struct tm_pass *p;
	struct tm_state *st;
};

static int record_ids(void *arg, const char *applier, char *const *ids, size_t n)
{
	struct recorder *rc = arg;
	struct tm_inventory *inv = tm_state_inventory(rc->st, applier);
	char **all = NULL;
	size_t nall = 0, added = 0;
	int r = 0;

	if (rc->p->mode != TM_PASS_SYNC)
		return 0;
	if (!inv)
		return tm_error_nomem();
	for (size_t i = 0; i < inv->n && r == 0; i++)
		r = tm_strv_push(&all, &nall, inv->ids[i]);
	for (size_t i = 0; i < n && r == 0; i++) {
		int have = 0;
		for (size_t j = 0; j < nall && !have; j++)
			have = strcmp(all[j], ids[i]) == 0;
		if (!have && (r = tm_strv_push(&all, &nall, ids[i])) == 0)
			added++;
	}
	TM_FAULT("pass.before-record");
	if (r == 0 && added && (r = tm_state_set_inventory(rc->st, applier, all, nall)) == 0)
		r = tm_state_save(rc->st, rc->p->cfg->agent.state_dir);
	tm_strv_free(all, nall);
	if (r < 0)
		return tm_error_wrap(r, "recording what %s is about to write", applier);
	return 0;
}

struct plans {
	struct tm_objset set[TM_PASS_APPLIERS];
	void (*free_data[TM_PASS_APPLIERS])(void *);
};

static void plans_free(struct plans *pl)
{
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++)
		tm_objset_free(&pl->set[i], pl->free_data[i]);
}

/* The plans are built from the plan inputs the fetcher child sent (in). */
static int build_plans(struct tm_pass *p, struct plans *pl, const struct tm_msg *in,
		       const char *commit, const struct tm_applier_ctx *ctx)
{
	memset(pl, 0, sizeof(*pl));
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		int r;
		if (!p->appliers[i].enabled)
			continue;
		pl->free_data[i] = p->appliers[i].ap->free_data;
		tm_yaml_pool_keep(1); /* the files' trees fault in one pool's memory, once */
		r = tm_plan_build_inputs(&pl->set[i], tm_msg_find_set(in, commit), (uint32_t)i,
					 p->appliers[i].ap, ctx, p->appliers[i].paths);
		tm_yaml_pool_keep(0);
		if (r < 0) {
			add_error(p, "plan", NULL, "%s", tm_error_last());
			plans_free(pl);
			return r;
		}
		tm_log_debug("%s: %zu objects in commit %.12s", p->appliers[i].name, pl->set[i].n,
			     commit);
	}
	return 0;
}

/* The applier's pass state: begun when the pass first uses the applier,
 * ended at the end of the pass (tm_reconcile_pass, out). */
static int begin_applier(struct tm_pass *p, size_t i, const struct tm_applier_ctx *ctx)
{
	const struct tm_applier *ap = p->appliers[i].ap;

	if (p->appliers[i].begun || !ap->begin)
		return 0;
	p->appliers[i].begun = 1;
	return ap->begin(ctx, &p->appliers[i].state);
}

static int strv_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* apply + prune every applier, then health; inventories end as desired ∪ kept. */
static int apply_all(struct tm_pass *p, struct tm_state *st, const struct plans *pl,
		     const struct tm_applier_ctx *ctx, const char *stage)
{
	int r = 0;

	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_applier *ap = p->appliers[i].ap;
		struct tm_apply_result *res = &p->appliers[i].res;
		struct tm_inventory *inv;
		char **kept = NULL, **ids = NULL;
		size_t nkept = 0, nids = 0;

		if (!p->appliers[i].enabled)
			continue;
		if ((r = begin_applier(p, i, ctx)) < 0) {
			add_error(p, stage, NULL, "%s", tm_error_last());
			return r;
		}
		tm_apply_result_free(res);
		inv = tm_state_inventory(st, ap->name);
		if (!inv)
			return tm_error_nomem();
		{
			/* a copy: the record hook replaces the state's array mid-apply */
			char **own = NULL;
			size_t nown = 0;
			for (size_t j = 0; j < inv->n && r == 0; j++)
				r = tm_strv_push(&own, &nown, inv->ids[j]);
			if (r == 0)
				r = ap->apply(p->appliers[i].state, res, ctx, &pl->set[i], own,
					      nown);
			tm_strv_free(own, nown);
		}
		if (r < 0) {
			/* what was written before the failure is tagmoor's now */
			add_error(p, stage, res->error_object, "%s", tm_error_last());
			for (size_t j = 0; j < inv->n; j++)
				tm_strv_push(&ids, &nids, inv->ids[j]);
			for (size_t j = 0; j < res->nchanged; j++)
				if (tm_objset_find(&pl->set[i], res->changed[j]) >= 0 &&
				    !strv_has(inv->ids, inv->n, res->changed[j]))
					tm_strv_push(&ids, &nids, res->changed[j]);
			tm_state_set_inventory(st, ap->name, ids, nids);
			tm_strv_free(ids, nids);
			return res->unreachable ? TM_EUNREACHABLE : r;
		}
		TM_FAULT("pass.applier-applied");
		if (ap->prune && p->appliers[i].prune) {
			r = ap->prune(p->appliers[i].state, res, ctx, &pl->set[i], inv->ids, inv->n,
				      &kept, &nkept);
			if (r < 0) {
				add_error(p, stage, res->error_object, "%s", tm_error_last());
				tm_strv_free(kept, nkept);
				return r;
			}
		} else {
			/* prune = no: everything tagmoor applied stays its own */
			for (size_t j = 0; j < inv->n && r == 0; j++)
				if (tm_objset_find(&pl->set[i], inv->ids[j]) < 0)
					r = tm_strv_push(&kept, &nkept, inv->ids[j]);
		}
		TM_FAULT("pass.applier-pruned");
		for (size_t j = 0; j < pl->set[i].n && r == 0; j++)
			r = tm_strv_push(&ids, &nids, pl->set[i].v[j].id);
		/* bounded: the oldest kept ids are forgotten first */
		for (size_t j = nkept > TM_STATE_MAX_KEPT ? nkept - TM_STATE_MAX_KEPT : 0;
		     j < nkept && r == 0; j++)
			r = tm_strv_push(&ids, &nids, kept[j]);
		if (r == 0)
			r = tm_state_set_inventory(st, ap->name, ids, nids);
		tm_strv_free(ids, nids);
		tm_strv_free(kept, nkept);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_applier *ap = p->appliers[i].ap;
		struct tm_apply_result *res = &p->appliers[i].res;
		uint64_t wait = p->appliers[i].wait_ms;

		if (!p->appliers[i].enabled || !ap->health)
			continue;
		TM_FAULT("pass.before-health");
		r = ap->health(p->appliers[i].state, res, ctx, &pl->set[i], wait);
		if (r < 0) {
			add_error(p, "health",
				  res->nunhealthy ? res->unhealthy[0] : res->error_object, "%s",
				  tm_error_last());
			return res->unreachable ? TM_EUNREACHABLE : r;
		}
	}
	return 0;
}

static int save_state(struct tm_pass *p, struct tm_state *st)
{
	struct tm_buf doc;
	int r;

	st->seq++;
	p->duration_ms = tm_time_mono_ms() - p->started_ms;
	tm_buf_init(&doc, 1024 * 1024);
	if ((r = tm_pass_status_json(&doc, p, st->seq)) == 0)
		r = tm_state_set_status(st, doc.ptr);
	tm_buf_free(&doc);
	TM_FAULT("pass.before-state-save");
	if (r == 0)
		r = tm_state_save(st, p->cfg->agent.state_dir);
	if (r < 0)
		add_error(p, "state", NULL, "%s", tm_error_last());
	else
		p->seq = st->seq; /* reported at the end of the pass */
	return r;
}

/* Moves the objects of set that are in the inventory to the front; returns
 * how many there are. Drift repair only ever touches those: an object of the
 * applied revision that tagmoor does not own (refused as foreign) stays. */
static size_t owned_first(struct tm_objset *set, const struct tm_inventory *inv)
{
	size_t k = 0;

	for (size_t i = 0; i < set->n; i++) {
		if (inv && strv_has(inv->ids, inv->n, set->v[i].id)) {
			struct tm_object t = set->v[k];
			set->v[k++] = set->v[i];
			set->v[i] = t;
		}
	}
	return k;
}

/* Nothing moved: compare the live state with the applied revision, repair. */
static int drift_check(struct tm_pass *p, struct tm_state *st, const struct tm_msg *in,
		       const struct tm_applier_ctx *ctx)
{
	struct plans pl;
	size_t drifted = 0;
	int r;

	if (!st->applied.commit[0] || !tm_msg_find_set(in, st->applied.commit))
		return 0; /* not in repo.git (the child could not fetch it again) */
	if ((r = build_plans(p, &pl, in, st->applied.commit, ctx)) < 0)
		return r;
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_applier *ap = p->appliers[i].ap;
		size_t n;
		if (!p->appliers[i].enabled || !ap->drift)
			continue;
		if ((r = begin_applier(p, i, ctx)) < 0) {
			add_error(p, "drift", NULL, "%s", tm_error_last());
			break;
		}
		n = pl.set[i].n;
		pl.set[i].n = owned_first(&pl.set[i], tm_state_inventory(st, ap->name));
		TM_FAULT("pass.before-drift");
		r = ap->drift(p->appliers[i].state, &p->appliers[i].res, ctx, &pl.set[i]);
		pl.set[i].n = n;
		drifted += p->appliers[i].res.ndrifted;
		if (r < 0) {
			add_error(p, "drift", p->appliers[i].res.error_object, "%s",
				  tm_error_last());
			break;
		}
	}
	plans_free(&pl);
	if (drifted && !ctx->dry_run) {
		if (r < 0)
			p->state = "failed";
		else if (strcmp(p->state, "synced") == 0)
			p->state = "drifted";
		tm_log_warn("drift: %zu object(s) changed by hand%s", drifted,
			    r < 0 ? "; repair failed" : " were restored");
		save_state(p, st);
	}
	return r < 0 ? TM_EAPPLY : 0;
}

static int stopping(struct tm_pass *p)
{
	if (!p->stop || !p->stop(p->stop_arg))
		return 0;
	tm_log_info("stopping at a safe point of the pass; nothing of it was written");
	tm_error_clear();
	return 1;
}

/* Leftovers of a kill: temporary files of atomic writes in state_dir. */
static void clean_state_dir(const char *state_dir)
{
	static char *const names[] = { "state.json", "floor" };

	if (tm_file_clean_temps_named(state_dir, names, 2) < 0) {
		tm_log_warn("%s", tm_error_last());
		tm_error_clear();
	}
}

/* After a pass that fetched: keep only the applied and last good revisions
 * (and one still waiting for its rollout wave), so refused or bad revisions
 * never fill the flash. */
static void prune_store(struct tm_pass *p, const struct tm_state *st, const struct tm_sandbox *sb,
			const char *applied, int prune, const char *oid)
{
	const char *keep[3];
	size_t n = 0;

	if (st->applied.commit[0])
		keep[n++] = st->applied.tag_object[0] ? st->applied.tag_object : st->applied.commit;
	if (st->last_good.commit[0])
		keep[n++] = st->last_good.tag_object[0] ? st->last_good.tag_object
							: st->last_good.commit;
	if (p->have_verdict && p->verdict.outcome == TM_VERIFY_WAIT)
		keep[n++] = oid;
	/* in a sandboxed child too: the parent never opens repo.git */
	if (tm_source_upkeep(p->cfg, sb, applied, prune, keep, n) < 0)
		tm_log_warn("the repository's upkeep: %s", tm_error_last());
}

/* The message of the failure a pass ends with (not a note such as the
 * state file moved aside). */
static const char *failure_message(const struct tm_pass *p)
{
	for (size_t i = p->nerrors; i > 0; i--)
		if (strcmp(p->errors[i - 1].stage, "state") != 0)
			return p->errors[i - 1].message;
	return p->nerrors ? p->errors[0].message : "failed";
}

/* The failing objects of a revision, kept as errors (the first one is
 * already there): a rollback replaces the appliers' results. */
static void keep_unhealthy(struct tm_pass *p)
{
	char first[256];

	snprintf(first, sizeof(first), "%s", p->nerrors ? p->errors[p->nerrors - 1].object : "");
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_apply_result *res = &p->appliers[i].res;
		for (size_t j = 0; j < res->nunhealthy; j++)
			if (strcmp(res->unhealthy[j], first) != 0)
				add_error(p, "health", res->unhealthy[j], "%s: %s is not healthy",
					  p->appliers[i].name, res->unhealthy[j]);
	}
}

/* What a pass has to say, as a fingerprint: a pass that wrote nothing is
 * reported only when this differs from the last report's (a refusal, a new
 * error, a recovery), never again for the same thing. drifted (repaired)
 * says the same as synced. */
static void pass_sig(char out[TM_REPORT_SIG_LEN], const struct tm_pass *p)
{
	uint64_t h = 1469598103934665603ull;
	const char *parts[3] = { strcmp(p->state, "drifted") == 0 ? "synced" : p->state, p->oid,
				 p->applied_commit };

	for (size_t i = 0; i < 3 + 3 * p->nerrors; i++) {
		const char *s = i < 3              ? parts[i]
				: (i - 3) % 3 == 0 ? p->errors[(i - 3) / 3].stage
				: (i - 3) % 3 == 1 ? p->errors[(i - 3) / 3].object
						   : p->errors[(i - 3) / 3].message;
		for (; *s; s++)
			h = (h ^ (unsigned char)*s) * 1099511628211ull;
		h = (h ^ 0xffu) * 1099511628211ull;
	}
	snprintf(out, TM_REPORT_SIG_LEN, "%016llx", (unsigned long long)h);
}

static int failing_state(const char *s)
{
	return strcmp(s, "failed") == 0 || strcmp(s, "rolled_back") == 0 ||
	       strcmp(s, "refused") == 0 || strcmp(s, "stale") == 0;
}

/* The end of a sync pass: the metrics, and a report when the pass wrote
 * state or has something new to say. An idle poll writes nothing here. */
static void report_pass(struct tm_pass *p, struct tm_state *st, int r)
{
	const struct tm_config *cfg = p->cfg;
	char sig[TM_REPORT_SIG_LEN];
	struct tm_metrics m;
	int success = r == 0 &&
		      (strcmp(p->state, "synced") == 0 || strcmp(p->state, "drifted") == 0);
	int want;

	pass_sig(sig, p);
	want = p->seq || tm_report_wanted(cfg, sig);
	if (cfg->report.metrics_file) {
		tm_metrics_load(&m, cfg->report.metrics_file);
		snprintf(m.state, sizeof(m.state), "%s", p->state);
		m.applied_time = st->applied.commit[0] ? st->applied.tag_time : -1;
		if (success && (want || m.last_success < 0))
			m.last_success = p->time;
		m.failures = (r < 0 || failing_state(p->state)) ? m.failures + 1 : 0;
		for (size_t i = 0; i < TM_PASS_APPLIERS && i < TM_METRICS_APPLIERS; i++) {
			const struct tm_inventory *inv = NULL;
			for (size_t k = 0; k < st->ninv; k++)
				if (strcmp(st->inv[k].name, p->appliers[i].ap->name) == 0)
					inv = &st->inv[k];
			m.applier[i] = p->appliers[i].name;
			m.objects[i] = p->appliers[i].enabled ? (int64_t)(inv ? inv->n : 0) : -1;
		}
		if (want)
			m.duration_ms = p->duration_ms;
	}
	if (want) {
		struct tm_buf doc;
		uint64_t seq = p->seq;
		const char *d = p->seq ? st->last_status : NULL;
		tm_buf_init(&doc, 1024 * 1024);
		if (!d) {
			seq = ++st->seq; /* in memory: the report carries it (report.last, spool) */
			if (tm_pass_status_json(&doc, p, seq) == 0)
				d = doc.ptr;
		}
		if (d) {
			struct tm_report_event ev = { .doc = d,
						      .seq = seq,
						      .sig = sig,
						      .state = p->state,
						      .message = p->nerrors ? failure_message(p)
									    : "",
						      .commit = p->applied_commit,
						      .time = p->time };
			if (tm_report_submit(cfg, &ev, cfg->report.metrics_file ? &m : NULL) < 0)
				tm_log_warn("report %llu: %s", (unsigned long long)seq,
					    tm_error_last());
		} else {
			tm_log_warn("report: %s", tm_error_last());
		}
		tm_buf_free(&doc);
	} else if (cfg->report.metrics_file) {
		tm_metrics_write(cfg, &m);
	}
	tm_error_clear();
}

/* diff: what a sync would do, prune only where sync would prune. */
static int diff_all(struct tm_pass *p, struct tm_state *st, const struct plans *pl,
		    const struct tm_applier_ctx *ctx)
{
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_applier *ap = p->appliers[i].ap;
		struct tm_inventory *inv;
		char **kept = NULL;
		size_t nkept = 0;
		int r, prune = p->appliers[i].prune;

		if (!p->appliers[i].enabled)
			continue;
		if (!(inv = tm_state_inventory(st, ap->name)))
			return tm_error_nomem();
		if ((r = begin_applier(p, i, ctx)) == 0)
			r = ap->apply(p->appliers[i].state, &p->appliers[i].res, ctx, &pl->set[i],
				      inv->ids, inv->n);
		if (r == 0 && prune && ap->prune)
			r = ap->prune(p->appliers[i].state, &p->appliers[i].res, ctx, &pl->set[i],
				      inv->ids, inv->n, &kept, &nkept);
		tm_strv_free(kept, nkept);
		if (r < 0) {
			add_error(p, "plan", p->appliers[i].res.error_object, "%s",
				  tm_error_last());
			return r;
		}
	}
	p->state = "synced";
	return 0;
}

/* The ref still shows the applied revision: freshness again (arithmetic on
 * what was recorded), then drift. */
static int idle_poll(struct tm_pass *p, struct tm_state *st, const struct tm_msg *in,
		     const char *ref, const char *oid, const struct tm_applier_ctx *ctx)
{
	char reason[512];
	int64_t now = tm_verify_effective_now(p->time, st->accepted_time);

	if (tm_verify_freshness(reason, sizeof(reason), p->cfg, st->applied.tag_time,
				st->applied.expires, now) == TM_VERIFY_STALE) {
		p->state = "stale";
		add_error(p, "verify", NULL, "%s", reason);
		tm_log_warn("%s at %.12s: %s; not re-applied", ref, oid, reason);
		if (strcmp(st->last_state, "stale") != 0)
			save_state(p, st); /* once, on the change */
		return tm_error_set(TM_EVERIFY, "%s: %s", ref, reason);
	}
	tm_log_info("%s unchanged at %.12s; nothing to do", ref, oid);
	p->state = "synced";
	/* the child fetched the applied revision again when repo.git was
	 * rebuilt, and sent its plan inputs (tm_source_job) */
	if (p->no_drift)
		return 0;
	p->drift_checked = 1;
	return drift_check(p, st, in, ctx);
}

/* One pass's working set, handed from stage to stage (tm_reconcile_pass). */
struct run {
	struct tm_pass *p;
	struct tm_state st;
	struct recorder rec;
	struct tm_applier_ctx ctx;
	struct tm_fetcher_reply rep;
	struct tm_objtab tab; /* the objects of rep, under the ids the parent computed */
	struct tm_sandbox sb;
	struct plans pl;
	const char *ref;
	char oid[41];
	int have_plans, fetched, have_rep, set_applied;
	int done; /* the pass ends with the stage that set it (and its result) */
};

/* The state, seq and the state directory's leftovers; the pass's clock. */
static int stage_open(struct run *x)
{
	struct tm_pass *p = x->p;
	const struct tm_config *cfg = p->cfg;
	int r;

	p->time = TM_FAULT_TIME((int64_t)time(NULL));
	p->started_ms = tm_time_mono_ms();
	p->state = "failed";
	setup_appliers(p);

	TM_FAULT("pass.start");
	if ((r = tm_state_load(&x->st, cfg->agent.state_dir, p->mode != TM_PASS_SYNC)) < 0)
		return r;
	if (p->mode == TM_PASS_SYNC) {
		/* seq never goes back: reports of passes that saved no state
		 * (refused, a new error) are above state.json's */
		uint64_t rs = tm_report_last_seq(cfg->agent.state_dir);
		if (rs > x->st.seq)
			x->st.seq = rs;
		else /* a pass saved seq but was killed before its report */
			tm_report_submit_unsent(cfg, x->st.seq, x->st.last_status, x->st.last_state,
						x->st.last_time >= 0 ? x->st.last_time : p->time);
		clean_state_dir(cfg->agent.state_dir);
		TM_FAULT("pass.state-dir-cleaned");
	}
	if (x->st.moved_aside)
		add_error(p, "state", NULL, "state.json did not parse and was moved aside to %s",
			  x->st.moved_aside);
	snprintf(p->applied_commit, sizeof(p->applied_commit), "%s", x->st.applied.commit);
	snprintf(p->last_good_commit, sizeof(p->last_good_commit), "%s", x->st.last_good.commit);
	return 0;
}

/* Poll (one ref advertisement), fetch (only what moved), verify and the plan
 * inputs: in the sandboxed fetcher child (docs/security.md). */
static int stage_source(struct run *x)
{
	struct tm_pass *p = x->p;
	const struct tm_config *cfg = p->cfg;
	const struct tm_msg *in = &x->rep.msg;
	struct tm_source_job job = { p, &x->st, x->ref };
	static int described; /* once per process: the daemon's log says it at start */
	char path[4096], what[512];
	int r;

	snprintf(path, sizeof(path), "%s/repo.git", cfg->agent.state_dir);
	if ((r = tm_fetcher_sandbox(&x->sb, cfg)) < 0 ||
	    (r = tm_fetcher_prepare_repo(path, &x->sb)) < 0) {
		add_error(p, "source", NULL, "%s", tm_error_last());
		return r;
	}
	if (!described++) {
		tm_fetcher_describe(what, sizeof(what), &x->sb);
		tm_log_info("%s", what);
	}
	x->have_rep = 1;
	if (tm_fetcher_run(&x->rep, cfg, &x->sb, tm_source_job, &job) < 0) {
		/* stopping the service ends the child too: a stop, not an error */
		if ((x->rep.killed_signal == SIGTERM || x->rep.killed_signal == SIGINT) &&
		    stopping(p))
			return TM_ESTOPPED;
		add_error(p, "source", NULL, "%s", tm_error_last());
		return TM_ESOURCE;
	}
	x->fetched = (in->flags & TM_MSG_FETCHED) != 0;
	if (in->status < 0 && !in->oid[0]) { /* opening repo.git or the poll failed */
		add_error(p, "source", NULL, "%s", in->error);
		return tm_error_set(in->status, "%s", in->error);
	}
	TM_FAULT("pass.repo-opened");
	TM_FAULT("pass.polled");
	snprintf(x->oid, sizeof(x->oid), "%s", in->oid);
	memcpy(p->oid, x->oid, sizeof(p->oid));
	if (in->status < 0) { /* the fetch, verification or the plan inputs failed */
		const char *applied_id = x->st.applied.tag_object[0] ? x->st.applied.tag_object
								     : x->st.applied.commit;
		int verr = (in->flags & TM_MSG_VERIFY_ERROR) != 0;
		p->moved = strcmp(x->oid, applied_id) != 0;
		add_error(p, verr ? "verify" : "source", NULL, "%s", in->error);
		return tm_error_set(verr ? in->status : TM_ESOURCE, "%s", in->error);
	}
	/* the verdict and the plan inputs, checked against the signed objects */
	if (tm_source_check(p, &x->st, x->ref, &x->rep.msg, &x->tab) < 0) {
		add_error(p, "source", NULL, "%s", tm_error_last());
		return TM_ESOURCE;
	}
	return 0;
}

/* What the ref shows: the applied revision (an idle poll), one refused or
 * stale before (the daemon's memory), one that failed before; or a stop. */
static int stage_triage(struct run *x)
{
	struct tm_pass *p = x->p;
	const struct tm_config *cfg = p->cfg;
	const struct tm_msg *in = &x->rep.msg;
	const char *applied_id = x->st.applied.tag_object[0] ? x->st.applied.tag_object
							     : x->st.applied.commit;
	char msg[512];

	x->done = 1;
	if (p->mode == TM_PASS_SYNC && strcmp(x->oid, applied_id) == 0)
		return idle_poll(p, &x->st, in, x->ref, x->oid, &x->ctx);
	/* refused or stale before (daemon memory): no fetch, the same verdict */
	if (p->mode == TM_PASS_SYNC && p->memo && strcmp(p->memo->oid, x->oid) == 0) {
		p->state = strcmp(p->memo->state, "stale") == 0 ? "stale" : "refused";
		add_error(p, "verify", NULL, "%s", p->memo->reason);
		return tm_error_set(TM_EVERIFY, "%s: %s", x->ref, p->memo->reason);
	}
	p->moved = 1;
	if (p->mode == TM_PASS_SYNC && tm_state_is_bad(&x->st, x->oid, NULL)) {
		p->state = strcmp(x->st.last_state, "rolled_back") == 0 ? "rolled_back" : "failed";
		snprintf(msg, sizeof(msg),
			 "%s at %.12s failed before and is not retried until the ref moves", x->ref,
			 x->oid);
		add_error(p, "apply", NULL, "%s", msg);
		/* with rollback, the device stays converged on the applied (last
		 * good) revision; with keep, what the bad one left is kept */
		if (cfg->agent.on_failure == TM_ON_FAILURE_ROLLBACK && !p->no_drift) {
			p->drift_checked = 1; /* the daemon's drift_check schedule holds here too */
			if (drift_check(p, &x->st, in, &x->ctx) < 0)
				tm_log_warn("%s", failure_message(p));
		}
		return tm_error_set(TM_EAPPLY, "%s", msg);
	}
	/* the safe point before the fetch (the child asked it too) */
	if ((in->flags & TM_MSG_STOPPED) || stopping(p)) {
		if (in->flags & TM_MSG_STOPPED)
			stopping(p);
		return TM_ESTOPPED;
	}
	x->done = 0;
	TM_FAULT("pass.fetched");
	return 0;
}

/* The child's verdict, before anything of the revision is read. */
static int stage_verdict(struct run *x)
{
	struct tm_pass *p = x->p;
	const struct tm_msg *in = &x->rep.msg;

	x->done = 1;
	if (!in->have_verdict) {
		add_error(p, "source", NULL, "the fetcher sent no verdict for %.12s", x->oid);
		return tm_error_set(TM_ESOURCE, "the fetcher sent no verdict for %.12s", x->oid);
	}
	TM_FAULT("pass.verified");
	p->verdict = in->verdict;
	p->have_verdict = 1;
	switch (p->verdict.outcome) {
	case TM_VERIFY_REFUSED:
	case TM_VERIFY_STALE:
		p->state = p->verdict.outcome == TM_VERIFY_STALE ? "stale" : "refused";
		add_error(p, "verify", NULL, "%s", p->verdict.reason);
		return tm_error_set(TM_EVERIFY, "%s: %s", x->ref, p->verdict.reason);
	case TM_VERIFY_WAIT:
		p->state = "progressing";
		tm_log_info("%s", p->verdict.reason);
		return 0;
	case TM_VERIFY_ACCEPTED:
		break;
	}
	if (p->mode == TM_PASS_VERIFY) {
		p->state = "synced";
		return 0;
	}
	/* the same signed revision under another encoding is the same revision */
	if (p->mode == TM_PASS_SYNC && tm_state_is_bad(&x->st, NULL, p->verdict.key)) {
		int r;

		p->state = strcmp(x->st.last_state, "rolled_back") == 0 ? "rolled_back" : "failed";
		r = tm_error_set(
			TM_EAPPLY,
			"%s at %.12s is a revision that failed before (the same signed content); "
			"not retried",
			x->ref, x->oid);
		add_error(p, "apply", NULL, "%s", tm_error_last());
		tm_state_mark_bad(&x->st, x->oid, p->verdict.key);
		save_state(p, &x->st);
		return r;
	}
	x->done = 0;
	return 0;
}

/* The plans of every applier; `diff` ends here. */
static int stage_plan(struct run *x)
{
	struct tm_pass *p = x->p;
	int r;

	TM_FAULT("pass.before-plan");
	if ((r = build_plans(p, &x->pl, &x->rep.msg, p->verdict.commit, &x->ctx)) < 0) {
		if (p->mode == TM_PASS_SYNC) {
			tm_state_mark_bad(&x->st, x->oid, p->verdict.key);
			raise_floor(&x->st, &p->verdict);
			save_state(p, &x->st);
		}
		x->done = 1;
		return tm_error_set(TM_EAPPLY, "%s", failure_message(p));
	}
	TM_FAULT("pass.planned");
	x->have_plans = 1;
	if (p->mode == TM_PASS_DIFF) {
		x->done = 1;
		return diff_all(p, &x->st, &x->pl, &x->ctx);
	}
	if (stopping(p)) {
		x->done = 1;
		return TM_ESTOPPED;
	}
	return 0;
}

/* A failure after apply: marked bad, rolled back to the last good revision.
 * A bad revision is never recorded as the applied one. */
static int apply_failed(struct run *x)
{
	struct tm_pass *p = x->p;
	const struct tm_config *cfg = p->cfg;
	struct tm_state *st = &x->st;

	tm_log_error("%s", tm_error_last());
	tm_state_mark_bad(st, x->oid, p->verdict.key);
	p->state = "failed";
	keep_unhealthy(p);
	if (cfg->agent.on_failure == TM_ON_FAILURE_ROLLBACK && st->last_good.commit[0] &&
	    strcmp(st->last_good.commit, p->verdict.commit) != 0 &&
	    tm_msg_find_set(&x->rep.msg, st->last_good.commit)) {
		struct plans good;
		tm_log_warn("rolling back to the last good revision %.12s", st->last_good.commit);
		if (build_plans(p, &good, &x->rep.msg, st->last_good.commit, &x->ctx) == 0) {
			TM_FAULT("pass.before-rollback");
			int rr = apply_all(p, st, &good, &x->ctx, "rollback");
			plans_free(&good);
			TM_FAULT("pass.rolled-back");
			if (rr == 0) {
				st->applied = st->last_good;
				p->state = "rolled_back";
			}
		}
	}
	TM_FAULT("pass.before-save-failed");
	memcpy(p->applied_commit, st->applied.commit, 41);
	save_state(p, st);
	return tm_error_set(TM_EAPPLY, "%s", failure_message(p));
}

/* Apply, health, and the state that records it. */
static int stage_apply(struct run *x)
{
	struct tm_pass *p = x->p;
	struct tm_state *st = &x->st;
	int r;

	x->done = 1;
	/* room to record what is applied, or nothing is (docs/faults.md) */
	if ((r = tm_state_check_space(p->cfg->agent.state_dir)) < 0) {
		add_error(p, "state", NULL, "%s", tm_error_last());
		return r;
	}
	raise_floor(st, &p->verdict);
	TM_FAULT("pass.before-apply");
	r = apply_all(p, st, &x->pl, &x->ctx, "apply");
	TM_FAULT("pass.applied");
	if (r == 0) {
		set_revision(&st->applied, &p->verdict);
		set_revision(&st->last_good, &p->verdict);
		/* refs/tagmoor/applied: set after the pass, by the upkeep child */
		x->set_applied = 1;
		TM_FAULT("pass.before-commit-state");
		memcpy(p->applied_commit, st->applied.commit, 41);
		memcpy(p->last_good_commit, st->last_good.commit, 41);
		p->state = "synced";
		tm_log_info("synced %s at %.12s (signed by %s)", x->ref, p->verdict.commit,
			    p->verdict.signer[0] ? p->verdict.signer : "nobody");
		return save_state(p, st);
	}
	/* the cluster could not be reached: nothing is known to be wrong with
	 * the revision; it is retried (the daemon backs off), not marked bad */
	if (r == TM_EUNREACHABLE) {
		int wrote = 0;
		for (size_t i = 0; i < TM_PASS_APPLIERS; i++)
			wrote |= p->appliers[i].res.nchanged > 0;
		p->state = "failed";
		tm_log_warn("%s; the revision is retried, not marked bad", failure_message(p));
		/* an outage retried with backoff writes state once, not on every try */
		if (wrote || strcmp(st->last_state, "failed") != 0)
			save_state(p, st);
		return tm_error_set(TM_EUNREACHABLE, "%s", failure_message(p));
	}
	return apply_failed(x);
}

/* Whatever stage ended the pass: the appliers ended, the store's upkeep, the
 * report. The pass's error stays the one reported. */
static int stage_close(struct run *x, int r)
{
	struct tm_pass *p = x->p;
	char saved[1024];

	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		if (p->appliers[i].begun && p->appliers[i].ap->end)
			p->appliers[i].ap->end(p->appliers[i].state);
		p->appliers[i].state = NULL;
		p->appliers[i].begun = 0;
	}
	if (x->have_plans)
		plans_free(&x->pl);
	if (x->have_rep && (x->fetched || x->set_applied) && p->mode == TM_PASS_SYNC) {
		snprintf(saved, sizeof(saved), "%s", tm_error_last());
		TM_FAULT("pass.before-store-prune");
		prune_store(p, &x->st, &x->sb, x->set_applied ? p->verdict.commit : NULL,
			    x->fetched, x->oid);
		TM_FAULT("pass.store-pruned");
		if (r < 0 && r != TM_ESTOPPED)
			tm_error_set(r, "%s", saved); /* the pass's error, not the prune's */
	}
	if (x->have_rep) {
		if (x->rep.child_cpu_us || x->rep.child_maxrss_kb)
			tm_log_debug("fetcher: pid %ld, %llu us CPU, %llu KiB peak RSS",
				     (long)x->rep.pid, (unsigned long long)x->rep.child_cpu_us,
				     (unsigned long long)x->rep.child_maxrss_kb);
		tm_fetcher_reply_free(&x->rep);
		tm_objtab_free(&x->tab);
	}
	p->duration_ms = tm_time_mono_ms() - p->started_ms;
	if (p->mode == TM_PASS_SYNC && r != TM_ESTOPPED) {
		snprintf(saved, sizeof(saved), "%s", tm_error_last());
		TM_FAULT("pass.before-report");
		report_pass(p, &x->st, r);
		TM_FAULT("pass.reported");
		if (r < 0)
			tm_error_set(r, "%s", saved); /* the pass's error, not the reporter's */
	}
	tm_state_free(&x->st);
	return r;
}

/* The pass: its stages in order, each ending it or handing on to the next. */
int tm_reconcile_pass(struct tm_pass *p)
{
	static int (*const stages[])(struct run *) = { stage_source, stage_triage, stage_verdict,
						       stage_plan, stage_apply };
	struct run x;
	int r;

	memset(&x, 0, sizeof(x));
	x.p = p;
	x.ref = p->ref ? p->ref : p->cfg->source.ref;
	x.rec.p = p;
	x.rec.st = &x.st;
	x.ctx.cfg = p->cfg;
	x.ctx.root = p->cfg->root;
	x.ctx.dry_run = p->mode == TM_PASS_DIFF;
	x.ctx.out = p->out;
	x.ctx.record = record_ids;
	x.ctx.record_arg = &x.rec;
	if ((r = stage_open(&x)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		if ((r = stages[i](&x)) < 0 || x.done)
			break;
	return stage_close(&x, r);
}

const char *tm_pass_applier_name(size_t i)
{
	return i < TM_PASS_APPLIERS ? slots[i].name : NULL;
}

void tm_pass_free(struct tm_pass *p)
{
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++)
		tm_apply_result_free(&p->appliers[i].res);
}
