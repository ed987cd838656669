/*
 * test_reconcile.c — the pass itself (src/pipeline/reconcile.c), with a fake applier
 * in the systemd slot and everything else real: an SSH-signed repository
 * served by the integration test server (nginx + git http-backend over TLS),
 * real verification, real state.json. The fake applier keeps its "live"
 * objects as files in a directory, so a pass run in a child process that dies
 * half-way (a power cut) leaves what a real applier would leave.
 *
 * Cases: accepted; refused (unsigned); stale (expired); health failure →
 * rolled back; failure with on_failure = keep (and not retried); power cut
 * between a write and the end of the pass (the retry owns and converges,
 * also when the ref has moved meanwhile); diff changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/pipeline/reconcile.h"
#include "tagmoor/state/state.h"

#include "gitserver/server.h"

static char tmpdir[512], livedir[600], statedir[600], work[600], ini[600];
static struct tm_test_server srv;
static int have_server;
static long tagtime;

/* --- the fake applier: objects are files NAME.fake in livedir -------------- */

static struct {
	int applies;         /* apply() calls */
	int die_after_write; /* _exit(137) after this many writes in apply (0: never) */
	int writes;
	int begins, ends; /* begin() and end() calls */
	int bad_state;    /* calls that were not handed the state begin made */
} fake;

#define FAKE_STATE 0x7a9

/* The applier's pass state: the pass hands what begin made to every call
 * and to end, once per begin. */
static int f_begin(const struct tm_applier_ctx *ctx, void **state)
{
	int *t = malloc(sizeof(*t));

	if (!t)
		return -1;
	*t = FAKE_STATE;
	*state = t;
	fake.begins++;
	return 0;
}

static void f_check(const void *state)
{
	if (!state || *(const int *)state != FAKE_STATE)
		fake.bad_state++;
}

static void f_end(void *state)
{
	f_check(state);
	fake.ends++;
	free(state);
}

static int f_wants(const char *path, const char *base)
{
	size_t n = strlen(base);
	return n > 5 && strcmp(base + n - 5, ".fake") == 0;
}

static int f_parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
		   const char *relpath, const char *content, size_t len)
{
	const char *base = strrchr(path, '/');
	return tm_objset_add(out, base ? base + 1 : path, path, content, len, NULL);
}

static void f_free(void *data)
{
	(void)data;
}

static int live_read(char *buf, size_t n, const char *id)
{
	char path[1024];
	FILE *f;
	size_t got;

	snprintf(path, sizeof(path), "%s/%s", livedir, id);
	if (!(f = fopen(path, "r")))
		return -1;
	got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	fclose(f);
	return 0;
}

static int live_write(const struct tm_object *o)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", livedir, o->id);
	return tm_file_write_atomic(path, o->content, o->len, 0644);
}

static int in_inv(char *const *inv, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(inv[i], id) == 0)
			return 1;
	return 0;
}

static int f_apply(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		   const struct tm_objset *desired, char *const *inv, size_t ninv)
{
	char live[4096], **todo = NULL;
	size_t ntodo = 0, nnew = 0;
	int r = 0;
	f_check(state);

	fake.applies++;
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		int exists = live_read(live, sizeof(live), o->id) == 0;
		if (exists && strcmp(live, o->content) == 0) {
			res->unchanged++;
			continue;
		}
		if (exists && !in_inv(inv, ninv, o->id)) {
			res->error_object = strdup(o->id);
			return tm_error_set(TM_EAPPLY, "%s exists and is not ours", o->id);
		}
		tm_strv_push(&todo, &ntodo, o->id);
		if (!in_inv(inv, ninv, o->id))
			nnew++;
	}
	if (ctx->dry_run || !ntodo)
		goto out;
	if (ctx->record) {
		char **fresh = NULL;
		size_t nf = 0;
		for (size_t i = 0; i < ntodo; i++)
			if (!in_inv(inv, ninv, todo[i]))
				tm_strv_push(&fresh, &nf, todo[i]);
		r = nf ? ctx->record(ctx->record_arg, "systemd", fresh, nf) : 0;
		tm_strv_free(fresh, nf);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		if (!in_inv(todo, ntodo, o->id))
			continue;
		if ((r = live_write(o)) < 0)
			goto out;
		res->applied++;
		tm_strv_push(&res->changed, &res->nchanged, o->id);
		if (fake.die_after_write && ++fake.writes == fake.die_after_write)
			_exit(137); /* the power cut */
	}
out:
	(void)nnew;
	tm_strv_free(todo, ntodo);
	return r;
}

static int f_prune(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		   const struct tm_objset *desired, char *const *inv, size_t ninv, char ***kept,
		   size_t *nkept)
{
	f_check(state);
	for (size_t i = 0; i < ninv; i++) {
		char path[1024];
		if (tm_objset_find(desired, inv[i]) >= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", livedir, inv[i]);
		if (!ctx->dry_run)
			unlink(path);
		res->pruned++;
	}
	return 0;
}

static int f_health(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		    const struct tm_objset *desired, uint64_t wait_ms)
{
	f_check(state);
	for (size_t i = 0; i < desired->n; i++) {
		if (strstr(desired->v[i].content, "UNHEALTHY")) {
			tm_strv_push(&res->unhealthy, &res->nunhealthy, desired->v[i].id);
			return tm_error_set(TM_EAPPLY, "%s is unhealthy", desired->v[i].id);
		}
	}
	return 0;
}

static int f_drift(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		   const struct tm_objset *desired)
{
	f_check(state);
	char live[4096];
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		if (live_read(live, sizeof(live), o->id) == 0 && strcmp(live, o->content) == 0)
			continue;
		if (!ctx->dry_run)
			live_write(o);
		tm_strv_push(&res->drifted, &res->ndrifted, o->id);
	}
	return 0;
}

static const struct tm_applier fake_applier = {
	.name = "systemd",
	.wants = f_wants,
	.parse = f_parse,
	.free_data = f_free,
	.apply = f_apply,
	.prune = f_prune,
	.health = f_health,
	.drift = f_drift,
	.begin = f_begin,
	.end = f_end,
};

/* --- the repository and the pass ----------------------------------------- */

static void write_ini(const char *on_failure)
{
	FILE *f = fopen(ini, "w");
	assert_non_null(f);
	fprintf(f,
		"[agent]\ndevice_id = edge-0042\nstate_dir = %s\non_failure = %s\n"
		"[source]\nurl = %s/git/fleet.git\nref = refs/tags/stable\nca_file = %s\ntimeout = 10s\n"
		"[verify]\nallowed_signers = %s/allowed_signers\n"
		"[systemd]\nenabled = yes\npaths = objs\nwait = 0\n",
		statedir, on_failure, srv.url, srv.ca, tmpdir);
	fclose(f);
}

/* Commits objs/NAME.fake = content pairs (NULL-terminated), signs and moves stable. */
static void release(const char *msg, ...)
{
	va_list ap;
	const char *name, *content;

	va_start(ap, msg);
	while ((name = va_arg(ap, const char *))) {
		content = va_arg(ap, const char *);
		if (content)
			assert_int_equal(tm_sh("mkdir -p %s/objs && printf '%%s' '%s' > %s/objs/%s",
					       work, content, work, name),
					 0);
		else
			assert_int_equal(tm_sh("rm -f %s/objs/%s", work, name), 0);
	}
	va_end(ap);
	tagtime += 60;
	assert_int_equal(
		tm_sh("set -e; cd %s; git add -A; git commit -q --allow-empty -m '%s'; "
		      "GIT_COMMITTER_DATE='%ld +0000' git tag -s -f -m '%s' stable >/dev/null; "
		      "git push -q -f origin HEAD:refs/heads/main refs/tags/stable",
		      work, msg, tagtime, msg),
		0);
}

static int run_pass(enum tm_pass_mode mode, const char **state_out)
{
	struct tm_config *cfg = NULL;
	struct tm_pass pass;
	static char state[32];
	int r;

	assert_int_equal(tm_config_load(&cfg, ini, NULL), 0);
	memset(&pass, 0, sizeof(pass));
	pass.cfg = cfg;
	pass.mode = mode;
	pass.out = stderr;
	pass.applier_override[1] = &fake_applier;
	r = tm_reconcile_pass(&pass);
	snprintf(state, sizeof(state), "%s", pass.state ? pass.state : "");
	if (state_out)
		*state_out = state;
	tm_pass_free(&pass);
	tm_config_free(cfg);
	return r;
}

static void assert_live(const char *id, const char *want)
{
	char live[4096];
	if (!want) {
		assert_int_not_equal(live_read(live, sizeof(live), id), 0);
		return;
	}
	assert_int_equal(live_read(live, sizeof(live), id), 0);
	assert_string_equal(live, want);
}

static void file_sum(char out[80], const char *name)
{
	if (tm_sh_out(out, 80, "sha256sum %s/%s 2>/dev/null | cut -c1-64", statedir, name) < 0 ||
	    !out[0])
		snprintf(out, 80, "none");
}

static int fresh_device(void **state)
{
	if (!have_server)
		return 0;
	tm_sh("rm -rf %s %s; mkdir -p %s", livedir, statedir, livedir);
	tm_sh("rm -rf %s/objs", work);
	memset(&fake, 0, sizeof(fake));
	write_ini("rollback");
	return 0;
}

#define NEED_SERVER()             \
	do {                      \
		if (!have_server) \
			skip();   \
	} while (0)

static void test_accepted(void **state)
{
	const char *st;
	struct tm_state s;

	NEED_SERVER();
	release("one", "a.fake", "A1", "b.fake", "B1", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	assert_string_equal(st, "synced");
	assert_live("a.fake", "A1");
	assert_live("b.fake", "B1");
	assert_int_equal(tm_state_load(&s, statedir, 1), 0);
	assert_int_equal(tm_state_inventory(&s, "systemd")->n, 2);
	assert_true(s.seq == 1);
	assert_true(s.accepted_time == tagtime);
	tm_state_free(&s);
	/* nothing moved: no apply, nothing written */
	char before[80], after[80];
	file_sum(before, "state.json");
	fake.applies = 0;
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	assert_int_equal(fake.applies, 0);
	file_sum(after, "state.json");
	assert_string_equal(before, after);
	/* one begin per pass that used the applier (the apply; the drift check),
	 * each ended, every call handed its state */
	assert_int_equal(fake.begins, 2);
	assert_int_equal(fake.ends, 2);
	assert_int_equal(fake.bad_state, 0);
}

static void test_refused_and_stale(void **state)
{
	const char *st;
	char before[80], after[80];

	NEED_SERVER();
	release("good", "a.fake", "A1", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	file_sum(before, "state.json");
	/* unsigned tag */
	tagtime += 60;
	assert_int_equal(
		tm_sh("set -e; cd %s; printf X > objs/a.fake; git add -A; git commit -qm unsigned; "
		      "GIT_COMMITTER_DATE='%ld +0000' git tag -a -f -m unsigned stable; "
		      "git push -q -f origin HEAD:refs/heads/main refs/tags/stable",
		      work, tagtime),
		0);
	fake.applies = 0;
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), TM_EVERIFY);
	assert_string_equal(st, "refused");
	assert_int_equal(fake.applies, 0);
	file_sum(after, "state.json");
	assert_string_equal(before, after);
	assert_live("a.fake", "A1");
	/* expired */
	release("expired\n\nTagmoor-Expires: 2020-01-01T00:00:00Z", "a.fake", "A2", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), TM_EVERIFY);
	assert_string_equal(st, "stale");
	assert_int_equal(fake.applies, 0);
	assert_live("a.fake", "A1");
}

static void test_health_failure_rolls_back(void **state)
{
	const char *st;
	struct tm_state s;

	NEED_SERVER();
	release("good", "a.fake", "A1", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	release("bad", "a.fake", "A2 UNHEALTHY", "n.fake", "N", NULL);
	fake.begins = fake.ends = 0;
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), TM_EAPPLY);
	assert_string_equal(st, "rolled_back");
	/* apply, health, then the rollback's apply and health: one state */
	assert_int_equal(fake.begins, 1);
	assert_int_equal(fake.ends, 1);
	assert_int_equal(fake.bad_state, 0);
	assert_live("a.fake", "A1");
	assert_live("n.fake", NULL); /* pruned by the rollback: it was written, so ours */
	assert_int_equal(tm_state_load(&s, statedir, 1), 0);
	assert_int_equal(s.nbad, 1);
	assert_string_equal(s.applied.commit, s.last_good.commit);
	tm_state_free(&s);
	/* not retried until the ref moves */
	fake.applies = 0;
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), TM_EAPPLY);
	assert_string_equal(st, "rolled_back");
	assert_int_equal(fake.applies, 0);
}

static void test_keep(void **state)
{
	const char *st;
	struct tm_state s;
	char good[41];

	NEED_SERVER();
	write_ini("keep");
	release("good", "a.fake", "A1", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	assert_int_equal(tm_state_load(&s, statedir, 1), 0);
	memcpy(good, s.applied.commit, 41);
	tm_state_free(&s);
	release("bad", "a.fake", "A2 UNHEALTHY", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), TM_EAPPLY);
	assert_string_equal(st, "failed");
	assert_live("a.fake", "A2 UNHEALTHY"); /* kept */
	assert_int_equal(tm_state_load(&s, statedir, 1), 0);
	assert_string_equal(s.applied.commit, good); /* a bad revision is never the applied one */
	tm_state_free(&s);
	/* the next poll: still failed, nothing re-applied or repaired */
	fake.applies = 0;
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), TM_EAPPLY);
	assert_string_equal(st, "failed");
	assert_int_equal(fake.applies, 0);
	assert_live("a.fake", "A2 UNHEALTHY");
}

/* Runs a sync pass in a child that dies after `writes` writes. */
static void sync_with_power_cut(int writes)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		fake.die_after_write = writes;
		run_pass(TM_PASS_SYNC, NULL);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 137);
}

static void test_power_cut_between_write_and_state(void **state)
{
	const char *st;
	struct tm_state s;

	NEED_SERVER();
	release("good", "a.fake", "A1", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	release("two new", "a.fake", "A1", "n.fake", "N1", "m.fake", "M1", NULL);
	sync_with_power_cut(1); /* m.fake (sorted first) written, then the power cut */
	assert_live("m.fake", "M1");
	/* what was about to be written is already recorded as ours */
	assert_int_equal(tm_state_load(&s, statedir, 1), 0);
	assert_true(in_inv(tm_state_inventory(&s, "systemd")->ids,
			   tm_state_inventory(&s, "systemd")->n, "m.fake"));
	tm_state_free(&s);
	/* the ref moves before the device comes back: m.fake has new content and
	 * must not be taken for someone else's file */
	release("moved on", "a.fake", "A1", "n.fake", "N2", "m.fake", "M2", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	assert_string_equal(st, "synced");
	assert_live("m.fake", "M2");
	assert_live("n.fake", "N2");
}

static void test_diff_changes_nothing(void **state)
{
	const char *st;
	char before[80], after[80];

	NEED_SERVER();
	release("good", "a.fake", "A1", "b.fake", "B1", NULL);
	assert_int_equal(run_pass(TM_PASS_SYNC, &st), 0);
	release("next", "a.fake", "A2", "b.fake", NULL, "c.fake", "C1", NULL);
	file_sum(before, "state.json");
	fake.applies = 0;
	assert_int_equal(run_pass(TM_PASS_DIFF, &st), 0);
	assert_int_equal(fake.applies, 1);
	file_sum(after, "state.json");
	assert_string_equal(before, after);
	assert_live("a.fake", "A1");
	assert_live("b.fake", "B1");
	assert_live("c.fake", NULL);
}

static int setup(void **state)
{
	tm_log_setup(TM_LOG_TEXT, TM_LOG_WARN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tm-reconcile-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(livedir, sizeof(livedir), "%s/live", tmpdir);
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
	snprintf(work, sizeof(work), "%s/work", tmpdir);
	snprintf(ini, sizeof(ini), "%s/t.ini", tmpdir);
	if (tm_test_server_start(&srv, 0) < 0)
		return 0; /* the tests skip */
	have_server = 1;
	tagtime = (long)time(NULL) - 7200;
	assert_int_equal(tm_test_signed_repo(tmpdir, srv.root, "fleet", work), 0);
	return 0;
}

static int teardown(void **state)
{
	tm_test_server_stop(&srv);
	tm_sh("rm -rf %s", tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_accepted, fresh_device),
		cmocka_unit_test_setup(test_refused_and_stale, fresh_device),
		cmocka_unit_test_setup(test_health_failure_rolls_back, fresh_device),
		cmocka_unit_test_setup(test_keep, fresh_device),
		cmocka_unit_test_setup(test_power_cut_between_write_and_state, fresh_device),
		cmocka_unit_test_setup(test_diff_changes_nothing, fresh_device),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
