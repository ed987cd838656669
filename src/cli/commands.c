/*
 * commands.c — the bodies of the commands. Each one is short: it calls the
 * module that does the work and prints the outcome. `run` hands the loaded
 * configuration to the daemon (daemon.c), which may replace it on SIGHUP.
 */
#include "tagmoor/cli/commands.h"
#include "tagmoor/config/config.h"
#include "tagmoor/daemon/daemon.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/pipeline/reconcile.h"
#include "tagmoor/report/report.h"
#include "tagmoor/state/state.h"
#include "tagmoor/cli/versions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs until SIGTERM/SIGINT (exit 0); a bad configuration at start never
 * gets here (main exits 2). On SIGHUP the daemon swaps cli->cfg, which main
 * frees at the end. */
int tm_cmd_run(struct tm_cli *cli)
{
	return tm_daemon_run(&cli->cfg, cli->root);
}

/* Runs one pass under the state lock. */
static int locked_pass(struct tm_pass *pass, struct tm_cli *cli, enum tm_pass_mode mode,
		       const char *ref)
{
	int fd = -1, r;

	memset(pass, 0, sizeof(*pass));
	pass->cfg = cli->cfg;
	pass->mode = mode;
	pass->ref = ref;
	pass->out = stdout;
	if ((r = tm_state_lock(&fd, cli->cfg->agent.state_dir)) < 0)
		return r;
	r = tm_reconcile_pass(pass);
	tm_state_unlock(fd);
	return r;
}

int tm_cmd_sync(struct tm_cli *cli)
{
	struct tm_pass pass;
	int r = locked_pass(&pass, cli, TM_PASS_SYNC, NULL);

	/* no state when the pass never started (the lock could not be taken) */
	if (pass.state) {
		printf("state: %s\n", pass.state);
		if (pass.have_verdict)
			printf("commit: %s\n", pass.verdict.commit);
		for (size_t i = 0; i < TM_PASS_APPLIERS; i++)
			if (pass.appliers[i].enabled)
				printf("%s: %u applied, %u unchanged, %u pruned\n",
				       pass.appliers[i].name, pass.appliers[i].res.applied,
				       pass.appliers[i].res.unchanged, pass.appliers[i].res.pruned);
	}
	tm_pass_free(&pass);
	return r;
}

int tm_cmd_diff(struct tm_cli *cli)
{
	struct tm_pass pass;
	int r = locked_pass(&pass, cli, TM_PASS_DIFF, NULL);

	tm_pass_free(&pass);
	return r;
}

static const char *outcome_name(enum tm_verify_outcome o)
{
	switch (o) {
	case TM_VERIFY_ACCEPTED:
		return "accepted";
	case TM_VERIFY_WAIT:
		return "valid; waiting for this device's rollout wave";
	case TM_VERIFY_STALE:
		return "stale (refused)";
	default:
		return "refused";
	}
}

int tm_cmd_verify(struct tm_cli *cli)
{
	struct tm_pass pass;
	char ref[512], t[32];
	const char *want = NULL;
	int r;

	if (cli->nargs) {
		const char *a = cli->args[0];
		if (strncmp(a, "refs/", 5) == 0)
			snprintf(ref, sizeof(ref), "%s", a);
		else
			snprintf(ref, sizeof(ref), "refs/tags/%s", a);
		want = ref;
	}
	r = locked_pass(&pass, cli, TM_PASS_VERIFY, want);
	if (pass.have_verdict) {
		const struct tm_verify_result *v = &pass.verdict;
		printf("ref:      %s\n", want ? want : cli->cfg->source.ref);
		printf("commit:   %s\n", v->commit);
		if (v->tag_object[0])
			printf("tag:      %s (%s)\n", v->tag_object, v->tag_name);
		printf("signer:   %s\n", v->signer[0] ? v->signer : "-");
		tm_time_format(t, sizeof(t), v->tag_time);
		printf("%s %s\n", v->tag_object[0] ? "tag time:" : "time:    ", t);
		if (v->expires >= 0) {
			tm_time_format(t, sizeof(t), v->expires);
			printf("expires:  %s\n", t);
		}
		if (v->wave_pct) {
			tm_time_format(t, sizeof(t), v->apply_at);
			printf("rollout:  bucket %u, wave %u%%, applies from %s\n", v->bucket,
			       v->wave_pct, t);
		} else {
			printf("rollout:  bucket %u, no waves (applies now)\n", v->bucket);
		}
		printf("verdict:  %s%s%s\n", outcome_name(v->outcome), v->reason[0] ? ": " : "",
		       v->reason);
	}
	tm_pass_free(&pass);
	return r;
}

int tm_cmd_status(struct tm_cli *cli)
{
	struct tm_state st;
	char t[32];
	int r;

	if ((r = tm_state_load(&st, cli->cfg->agent.state_dir, 1)) < 0)
		return r;
	if (cli->json) {
		struct tm_report_record rec;
		/* the last report (refusals and heartbeats included), else the
		 * last document state.json holds */
		if (tm_report_record_load(&rec, cli->cfg->agent.state_dir) == 0 && rec.doc &&
		    rec.seq >= st.seq) {
			printf("%s\n", rec.doc);
		} else if (st.last_status) {
			printf("%s\n", st.last_status);
		} else {
			/* never ran: the same document, with nulls */
			struct tm_pass pass;
			struct tm_buf b;
			memset(&pass, 0, sizeof(pass));
			pass.cfg = cli->cfg;
			pass.state = NULL;
			pass.time = -1;
			tm_buf_init(&b, 1024 * 1024);
			if ((r = tm_pass_status_json(&b, &pass, st.seq)) == 0)
				printf("%s\n", b.ptr);
			tm_buf_free(&b);
		}
		tm_report_record_free(&rec);
		tm_error_clear();
		tm_state_free(&st);
		return r;
	}
	if (!st.last_state[0]) {
		printf("state:      never synced (%s has no state.json)\n",
		       cli->cfg->agent.state_dir);
		tm_state_free(&st);
		return 0;
	}
	tm_time_format(t, sizeof(t), st.last_time);
	printf("state:      %s (at %s)\n", st.last_state, t);
	printf("source:     %s\n", cli->cfg->source.ref);
	printf("applied:    %s\n", st.applied.commit[0] ? st.applied.commit : "-");
	if (st.applied.tag_object[0]) {
		tm_time_format(t, sizeof(t), st.applied.tag_time);
		printf("tag:        %s (tagged %s)\n", st.applied.tag_object, t);
	}
	printf("signer:     %s\n", st.applied.signer[0] ? st.applied.signer : "-");
	printf("last good:  %s\n", st.last_good.commit[0] ? st.last_good.commit : "-");
	for (size_t i = 0; i < st.nbad; i++)
		printf("bad:        %s\n", st.bad[i].oid);
	for (size_t i = 0; i < st.ninv; i++)
		printf("%-11s %zu object(s) managed\n", st.inv[i].name, st.inv[i].n);
	tm_state_free(&st);
	return 0;
}

/* `report`: how many reports wait in the spool; with --flush, send them now
 * (under the state lock: exit 5 while a pass runs). */
int tm_cmd_report(struct tm_cli *cli)
{
	uint64_t *v = NULL;
	size_t n = 0;
	int fd = -1, r;

	if ((r = tm_state_lock(&fd, cli->cfg->agent.state_dir)) < 0)
		return r;
	if (cli->flush) {
		r = tm_report_flush(cli->cfg);
		if (tm_spool_list(cli->cfg->agent.state_dir, &v, &n) == 0)
			printf("%zu report(s) pending\n", n);
	} else if ((r = tm_spool_list(cli->cfg->agent.state_dir, &v, &n)) == 0) {
		printf("%zu report(s) pending in %s/spool%s\n", n, cli->cfg->agent.state_dir,
		       cli->cfg->report.url ? "" : " ([report] url is not set)");
	}
	free(v);
	tm_state_unlock(fd);
	return r;
}

int tm_cmd_check_config(struct tm_cli *cli)
{
	tm_config_print(cli->cfg, stdout);
	fprintf(stderr, "%s: configuration is valid\n", cli->cfg->file);
	return 0;
}

int tm_cmd_version(struct tm_cli *cli)
{
	tm_versions_print(stdout);
	return 0;
}
