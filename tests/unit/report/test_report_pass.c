/*
 * test_report_pass.c — the reports a real pass produces (reconcile.c's end
 * of pass → report.c), with a fake applier in the systemd slot and the rest
 * real: an SSH-signed repository on the integration test server, real
 * verification and state. No [report] url: each report lands in
 * state_dir/report.last (what status --json prints), which is what is
 * checked. Cases: synced, an idle poll writes nothing, rolled_back names
 * every unhealthy object of the bad revision, a refusal is recorded without
 * touching state.json and its seq is never reused, the metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/pipeline/reconcile.h"
#include "tagmoor/report/report.h"
#include "tagmoor/state/state.h"

#include "gitserver/server.h"

static char tmpdir[512], livedir[600], statedir[600], work[600], ini[600], prom[600];
static struct tm_test_server srv;
static int have_server;
static long tagtime;

/* --- a fake applier: objects NAME.fake are files in livedir ------------------ */

static int f_wants(const char *path, const char *base)
{
	size_t n = strlen(base);
	(void)path;
	return n > 5 && strcmp(base + n - 5, ".fake") == 0;
}

static int f_parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
		   const char *relpath, const char *content, size_t len)
{
	const char *base = strrchr(path, '/');
	(void)ctx;
	(void)relpath;
	return tm_objset_add(out, base ? base + 1 : path, path, content, len, NULL);
}

static void f_free(void *data)
{
	(void)data;
}

static int f_apply(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		   const struct tm_objset *desired, char *const *inv, size_t ninv)
{
	char path[1024], **ids = NULL;
	size_t nids = 0;
	int r = 0;

	(void)inv;
	(void)ninv;
	for (size_t i = 0; i < desired->n; i++)
		tm_strv_push(&ids, &nids, desired->v[i].id);
	if (!ctx->dry_run && ctx->record && nids)
		r = ctx->record(ctx->record_arg, "systemd", ids, nids);
	tm_strv_free(ids, nids);
	for (size_t i = 0; i < desired->n && r == 0 && !ctx->dry_run; i++) {
		snprintf(path, sizeof(path), "%s/%s", livedir, desired->v[i].id);
		r = tm_file_write_atomic(path, desired->v[i].content, desired->v[i].len, 0644);
		res->applied++;
	}
	return r;
}

static int f_health(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		    const struct tm_objset *desired, uint64_t wait_ms)
{
	(void)ctx;
	(void)wait_ms;
	for (size_t i = 0; i < desired->n; i++)
		if (strstr(desired->v[i].content, "UNHEALTHY"))
			tm_strv_push(&res->unhealthy, &res->nunhealthy, desired->v[i].id);
	if (res->nunhealthy)
		return tm_error_set(TM_EAPPLY, "%s is unhealthy: exit code 3", res->unhealthy[0]);
	return 0;
}

static const struct tm_applier fake_applier = {
	.name = "systemd",
	.wants = f_wants,
	.parse = f_parse,
	.free_data = f_free,
	.apply = f_apply,
	.health = f_health,
};

/* --- the repository and the pass --------------------------------------------- */

static void release(const char *msg, const char *a, const char *b)
{
	tagtime += 60;
	assert_int_equal(
		tm_sh("set -e; cd %s; mkdir -p objs; printf '%%s' '%s' > objs/a.fake; "
		      "printf '%%s' '%s' > objs/b.fake; git add -A; git commit -q --allow-empty -m '%s'; "
		      "GIT_COMMITTER_DATE='%ld +0000' git tag -s -f -m '%s' stable >/dev/null; "
		      "git push -q -f origin HEAD:refs/heads/main refs/tags/stable",
		      work, a, b, msg, tagtime, msg),
		0);
}

static int run_pass(const char **state_out)
{
	struct tm_config *cfg = NULL;
	struct tm_pass pass;
	static char state[32];
	int r;

	assert_int_equal(tm_config_load(&cfg, ini, NULL), 0);
	memset(&pass, 0, sizeof(pass));
	pass.cfg = cfg;
	pass.mode = TM_PASS_SYNC;
	pass.out = stderr;
	pass.applier_override[1] = &fake_applier;
	r = tm_reconcile_pass(&pass);
	snprintf(state, sizeof(state), "%s", pass.state ? pass.state : "");
	*state_out = state;
	tm_pass_free(&pass);
	tm_config_free(cfg);
	return r;
}

/* the last report: its seq, and the document */
static uint64_t last(struct tm_report_record *rec)
{
	tm_report_record_free(rec);
	assert_int_equal(tm_report_record_load(rec, statedir), 0);
	assert_non_null(rec->doc);
	return rec->seq;
}

static ino_t inode(const char *name)
{
	char path[800];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", statedir, name);
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

#define NEED_SERVER()             \
	do {                      \
		if (!have_server) \
			skip();   \
	} while (0)

static void test_reports_of_a_pass(void **state)
{
	struct tm_report_record rec = { 0 };
	struct tm_state s;
	const char *st;
	ino_t i1, i2, i3;
	char good[41];
	(void)state;

	NEED_SERVER();
	release("good", "A1", "B1");
	assert_int_equal(run_pass(&st), 0);
	assert_string_equal(st, "synced");
	assert_int_equal(last(&rec), 1);
	assert_non_null(strstr(rec.doc, "\"seq\":1,"));
	assert_non_null(
		strstr(rec.doc, "\"trigger\":\"pass\",\"spool_dropped\":0,\"state\":\"synced\""));
	assert_non_null(strstr(rec.doc, "\"systemd\":{\"applied\":2,"));
	assert_int_equal(tm_state_load(&s, statedir, 1), 0);
	snprintf(good, sizeof(good), "%s", s.applied.commit);
	tm_state_free(&s);

	/* an idle poll: no report, nothing rewritten (report.last, state.json, metrics) */
	i1 = inode("report.last");
	i2 = inode("state.json");
	i3 = inode("../tagmoor.prom");
	assert_int_equal(run_pass(&st), 0);
	assert_int_equal(last(&rec), 1);
	assert_true(inode("report.last") == i1 && inode("state.json") == i2 &&
		    inode("../tagmoor.prom") == i3);

	/* a revision with two unhealthy objects: rolled back, both named */
	release("bad", "A2 UNHEALTHY", "B2 UNHEALTHY");
	assert_int_equal(run_pass(&st), TM_EAPPLY);
	assert_string_equal(st, "rolled_back");
	assert_int_equal(last(&rec), 2);
	assert_non_null(strstr(rec.doc, "\"state\":\"rolled_back\""));
	assert_non_null(strstr(
		rec.doc,
		"{\"stage\":\"health\",\"object\":\"a.fake\",\"message\":\"a.fake is unhealthy: exit code 3\"}"));
	assert_non_null(strstr(
		rec.doc,
		"{\"stage\":\"health\",\"object\":\"b.fake\",\"message\":\"systemd: b.fake is not healthy\"}"));
	assert_non_null(strstr(rec.doc, good)); /* applied_commit: the last good one again */
	assert_string_equal(rec.alert_state, "rolled_back");
	/* the same verdict on the next poll: not reported again */
	assert_int_equal(run_pass(&st), TM_EAPPLY);
	assert_true(last(&rec) == 2 || strstr(rec.doc, "not retried") != NULL);
	uint64_t after_bad = rec.seq;

	/* a refusal: reported (seq + 1), state.json untouched */
	i2 = inode("state.json");
	tagtime += 60;
	assert_int_equal(
		tm_sh("set -e; cd %s; printf X > objs/a.fake; git add -A; git commit -qm unsigned; "
		      "GIT_COMMITTER_DATE='%ld +0000' git tag -a -f -m unsigned stable; "
		      "git push -q -f origin HEAD:refs/heads/main refs/tags/stable",
		      work, tagtime),
		0);
	assert_int_equal(run_pass(&st), TM_EVERIFY);
	assert_string_equal(st, "refused");
	assert_int_equal(last(&rec), after_bad + 1);
	assert_non_null(strstr(rec.doc, "\"state\":\"refused\""));
	assert_non_null(strstr(rec.doc, "is not signed"));
	assert_true(inode("state.json") == i2);
	assert_int_equal(run_pass(&st), TM_EVERIFY);
	assert_int_equal(last(&rec), after_bad + 1); /* once */

	/* the next accepted revision: its seq is above the refusal's, in state.json too */
	release("good again", "A3", "B3");
	assert_int_equal(run_pass(&st), 0);
	assert_int_equal(last(&rec), after_bad + 2);
	assert_int_equal(tm_state_load(&s, statedir, 1), 0);
	assert_int_equal(s.seq, after_bad + 2);
	tm_state_free(&s);
	assert_string_equal(rec.alert_state, "synced");

	/* metrics: synced again, failures back to 0, two objects */
	{
		struct tm_metrics m;
		tm_metrics_load(&m, prom);
		assert_string_equal(m.state, "synced");
		assert_int_equal(m.failures, 0);
		assert_int_equal(m.objects[1], 2);
		assert_int_equal(m.objects[0], -1); /* kubernetes disabled */
		assert_true(m.last_success > 0 && m.applied_time == tagtime);
	}
	tm_report_record_free(&rec);
}

static int setup(void **state)
{
	FILE *f;
	(void)state;
	tm_log_setup(TM_LOG_TEXT, TM_LOG_ERROR);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tm-report-pass-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(livedir, sizeof(livedir), "%s/live", tmpdir);
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
	snprintf(work, sizeof(work), "%s/work", tmpdir);
	snprintf(ini, sizeof(ini), "%s/t.ini", tmpdir);
	snprintf(prom, sizeof(prom), "%s/state/../tagmoor.prom", tmpdir);
	if (tm_test_server_start(&srv, 0) < 0)
		return 0; /* the test skips */
	have_server = 1;
	tagtime = (long)time(NULL) - 7200;
	assert_int_equal(tm_sh("mkdir -p %s", livedir), 0);
	assert_int_equal(tm_test_signed_repo(tmpdir, srv.root, "fleet", work), 0);
	assert_non_null(f = fopen(ini, "w"));
	fprintf(f,
		"[agent]\ndevice_id = edge-0042\nstate_dir = %s\n"
		"[source]\nurl = %s/git/fleet.git\nref = refs/tags/stable\nca_file = %s\ntimeout = 10s\n"
		"[verify]\nallowed_signers = %s/allowed_signers\n"
		"[systemd]\nenabled = yes\npaths = objs\nwait = 0\n"
		"[report]\nmetrics_file = %s/tagmoor.prom\n",
		statedir, srv.url, srv.ca, tmpdir, tmpdir);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tm_test_server_stop(&srv);
	tm_sh("rm -rf %s", tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reports_of_a_pass),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
