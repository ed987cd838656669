/*
 * systemctl.c — the systemctl runner of the systemd applier (systemd.h):
 * systemctl and journalctl run by fork/exec with a fixed argv and
 * environment, never through a shell, with a timeout and a bounded capture
 * of their output for error messages; the verbs the applier uses (in
 * batches), daemon-reload, and the state of units from `systemctl show` and
 * `systemctl is-active`.
 *
 * Where it sits in the pipeline: apply, prune, health and drift
 * (systemd.c, health.c) talk to systemd only through these functions.
 */
#define _GNU_SOURCE
#include "tagmoor/apply/systemd/systemd.h"
#include "systemd_internal.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0u) == 0)
		return;
#endif
	for (int fd = lowfd; fd < 1024; fd++)
		close(fd);
}

static const char *find_prog(const char *set, const char *const *candidates)
{
	if (set && *set)
		return set;
	for (size_t i = 0; candidates[i]; i++)
		if (access(candidates[i], X_OK) == 0)
			return candidates[i];
	return NULL;
}

static const char *systemctl_path(const char *set)
{
	static const char *const c[] = { "/usr/bin/systemctl", "/bin/systemctl", NULL };
	return find_prog(set, c);
}

static const char *journalctl_path(const char *set)
{
	static const char *const c[] = { "/usr/bin/journalctl", "/bin/journalctl", NULL };
	return find_prog(set, c);
}

/* The child: stdin from /dev/null, stdout and stderr into the pipe, no
 * other descriptors, default signals, a fixed environment; never returns. */
static void exec_child(const char *prog, char **argv, int wfd)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				      "LC_ALL=C",
				      "SYSTEMD_PAGER=",
				      "SYSTEMD_COLORS=0",
				      "SYSTEMD_LOG_COLOR=0",
				      NULL };
	sigset_t none;
	int devnull = open("/dev/null", O_RDONLY);

	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(wfd, 1) < 0 || dup2(wfd, 2) < 0)
		_exit(127);
	close_from(3);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execve(prog, argv, envp);
	_exit(127);
}

/* Reads the child's output until it closes it or the deadline passes
 * (*timed_out); the first TM_SYSTEMD_OUTPUT_MAX bytes go to out (when not
 * NULL), *kept says how many. */
static void read_output(int rfd, struct tm_buf *out, uint64_t deadline, size_t *kept,
			int *timed_out)
{
	for (;;) {
		char chunk[4096];
		uint64_t t = tm_time_mono_ms();
		struct pollfd pf = { .fd = rfd, .events = POLLIN };
		int pr;
		ssize_t n;

		if (t >= deadline) {
			*timed_out = 1;
			break;
		}
		pr = poll(&pf, 1, (int)(deadline - t));
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pr == 0)
			continue;
		n = read(rfd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		if (n == 0)
			break;
		if (out && *kept < TM_SYSTEMD_OUTPUT_MAX) {
			size_t take = (size_t)n;
			if (take > TM_SYSTEMD_OUTPUT_MAX - *kept)
				take = TM_SYSTEMD_OUTPUT_MAX - *kept;
			if (tm_buf_put(out, chunk, take) == 0)
				*kept += take;
		}
	}
}

/* fork/exec prog with args; bounded capture of stdout+stderr; kill at timeout. */
static int run_prog(struct tm_buf *out, int *status, unsigned timeout_ms, const char *prog,
		    const char *const *args)
{
	size_t nargs = 0, kept = 0;
	char **argv;
	int pfd[2], r = TM_EAPPLY, wst = 0, timed_out = 0;
	pid_t pid;
	uint64_t deadline = tm_time_mono_ms() + timeout_ms;

	while (args[nargs])
		nargs++;
	if (!(argv = calloc(nargs + 2, sizeof(*argv))))
		return tm_error_nomem();
	argv[0] = (char *)prog;
	for (size_t i = 0; i < nargs; i++)
		argv[i + 1] = (char *)args[i];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free(argv);
		return tm_error_set(TM_EAPPLY, "%s: pipe: %s", prog, strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(argv);
		return tm_error_set(TM_EAPPLY, "%s: fork: %s", prog, strerror(errno));
	}
	if (pid == 0)
		exec_child(prog, argv, pfd[1]);
	free(argv);
	close(pfd[1]);
	read_output(pfd[0], out, deadline, &kept, &timed_out);
	close(pfd[0]);
	/* Output closed: wait for the exit, still bounded by the deadline. */
	while (!timed_out) {
		pid_t w = waitpid(pid, &wst, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			tm_error_set(TM_EAPPLY, "%s: waitpid: %s", prog, strerror(errno));
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return TM_EAPPLY;
		}
		if ((uint64_t)tm_time_mono_ms() >= deadline)
			timed_out = 1;
		else
			usleep(5000);
	}
	if (timed_out) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return tm_error_set(TM_EAPPLY, "%s %s: timed out after %u ms", prog,
				    nargs ? args[0] : "", timeout_ms);
	}
	if (WIFEXITED(wst)) {
		if (WEXITSTATUS(wst) == 127 && kept == 0)
			return tm_error_set(TM_EAPPLY, "%s: cannot be executed", prog);
		*status = WEXITSTATUS(wst);
		r = 0;
	} else {
		r = tm_error_set(TM_EAPPLY, "%s %s: killed by signal %d", prog,
				 nargs ? args[0] : "", WIFSIGNALED(wst) ? WTERMSIG(wst) : 0);
	}
	return r;
}

int tm_systemctl_run(struct tm_buf *out, int *status, unsigned timeout_ms, const char *systemctl,
		     const char *const *args)
{
	const char *prog = systemctl_path(systemctl);

	if (!prog)
		return tm_error_set(TM_EAPPLY, "systemctl not found");
	return run_prog(out, status, timeout_ms, prog, args);
}

/* Copies s into dst as one line: runs of white space (newlines included) become
 * one space, then " | " separates what were lines. */
static void one_line(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t o = 0;
	int pending_sep = 0;

	if (!dstlen)
		return;
	for (size_t i = 0; i < len && o + 4 < dstlen; i++) {
		char c = s[i];
		if (c == '\n') {
			pending_sep = o > 0;
			continue;
		}
		if (c == '\r' || c == '\t')
			c = ' ';
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '?';
		if (pending_sep) {
			memcpy(dst + o, " | ", 3);
			o += 3;
			pending_sep = 0;
		}
		dst[o++] = c;
	}
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = '\0';
}

/* The systemctl the applier runs: the configuration's (tests) or the system's. */
static const char *systemctl_of(const struct tm_applier_ctx *ctx)
{
	return ctx && ctx->cfg ? ctx->cfg->systemd.systemctl : NULL;
}

/* systemctl [--root=ROOT] VERB [FLAG] UNIT... in batches. Non-zero exit is
 * TM_EAPPLY "systemctl VERB UNIT...: output". With ok_status >= 0, that exit
 * status counts as success too. *changed (optional) is set when the output
 * says a symlink was created or removed. */
int sd_systemctl(const struct tm_applier_ctx *ctx, unsigned timeout_ms, const char *verb,
		 const char *flag, char *const *units, size_t n, int ok_status, int *changed)
{
	const char *args[BATCH_MAX + 5];
	char rootarg[PATH_MAX_TM + 8];
	size_t done = 0;

	do {
		struct tm_buf out;
		size_t k = 0, batch = n - done;
		int st = 0, r;

		if (batch > BATCH_MAX)
			batch = BATCH_MAX;
		if (ctx->root) {
			int w = snprintf(rootarg, sizeof(rootarg), "--root=%s", ctx->root);
			if (w < 0 || (size_t)w >= sizeof(rootarg))
				return tm_error_set(TM_EAPPLY, "root path too long");
			args[k++] = rootarg;
		}
		args[k++] = verb;
		if (flag)
			args[k++] = flag;
		for (size_t i = 0; i < batch; i++)
			args[k++] = units[done + i];
		args[k] = NULL;
		tm_buf_init(&out, TM_SYSTEMD_OUTPUT_MAX + 1);
		r = tm_systemctl_run(&out, &st, timeout_ms, systemctl_of(ctx), args);
		if (r == 0 && changed && out.ptr &&
		    (strstr(out.ptr, "Created symlink") || strstr(out.ptr, "Removed")))
			*changed = 1;
		if (r == 0 && st != 0 && st != ok_status) {
			char msg[768];
			one_line(msg, sizeof(msg), out.ptr ? out.ptr : "", out.len);
			r = tm_error_set(TM_EAPPLY, "systemctl %s %s%s: exit status %d%s%s", verb,
					 units[done], batch > 1 ? " ..." : "", st,
					 msg[0] ? ": " : "", msg);
		}
		tm_log_debug("systemd: systemctl %s %s%s (%zu units): %d", verb,
			     ctx->root ? "--root " : "", units[done], batch, r);
		tm_buf_free(&out);
		if (r < 0)
			return r;
		done += batch;
	} while (done < n);
	return 0;
}

int sd_daemon_reload(const struct tm_applier_ctx *ctx)
{
	const char *args[] = { "daemon-reload", NULL };
	struct tm_buf out;
	int st = 0, r;

	tm_buf_init(&out, TM_SYSTEMD_OUTPUT_MAX + 1);
	r = tm_systemctl_run(&out, &st, QUICK_TIMEOUT_MS, systemctl_of(ctx), args);
	TM_FAULT("systemd.daemon-reloaded");
	if (r == 0 && st != 0) {
		char msg[768];
		one_line(msg, sizeof(msg), out.ptr ? out.ptr : "", out.len);
		r = tm_error_set(TM_EAPPLY, "systemctl daemon-reload: exit status %d%s%s", st,
				 msg[0] ? ": " : "", msg);
	}
	tm_buf_free(&out);
	if (r == 0)
		tm_log_info("systemd: daemon-reload");
	return r;
}

/* After a failure with unit files already written: tell systemd anyway, so
 * that what is on disk and what the manager runs do not stay apart until the
 * next change. The failure's code and message are kept. */
void sd_reload_best_effort(const struct tm_applier_ctx *ctx)
{
	char msg[1024];
	int code = tm_error_last_code();

	if (ctx->root || ctx->dry_run)
		return;
	snprintf(msg, sizeof(msg), "%s", tm_error_last());
	if (sd_daemon_reload(ctx) < 0)
		tm_log_warn("systemd: %s", tm_error_last());
	tm_error_set(code, "%s", msg);
}

static void show_field(char *dst, size_t dstlen, const char *v, size_t vlen)
{
	if (vlen >= dstlen)
		vlen = dstlen - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

/* One `systemctl show -p ...` for n units; blocks come back in order,
 * separated by empty lines. */
int sd_show_units(const struct tm_applier_ctx *ctx, struct unit_state *st, char *const *units,
		  size_t n)
{
	const char *args[BATCH_MAX + 4];
	size_t done = 0;

	memset(st, 0, n * sizeof(*st));
	while (done < n) {
		struct tm_buf out;
		size_t k = 0, batch = n - done, idx = done;
		int status = 0, r, seen = 0;
		const char *p, *end;

		if (batch > BATCH_MAX)
			batch = BATCH_MAX;
		args[k++] = "show";
		args[k++] = "-p";
		args[k++] =
			"Id,LoadState,ActiveState,SubState,Result,Type,Job,"
			"ExecMainExitTimestampMonotonic,ActiveEnterTimestampMonotonic,NRestarts";
		for (size_t i = 0; i < batch; i++)
			args[k++] = units[done + i];
		args[k] = NULL;
		/* 64 units x 9 short lines fit in the capture. */
		tm_buf_init(&out, TM_SYSTEMD_OUTPUT_MAX * 8 + 1);
		r = tm_systemctl_run(&out, &status, QUICK_TIMEOUT_MS, systemctl_of(ctx), args);
		if (r == 0 && status != 0) {
			char msg[768];
			one_line(msg, sizeof(msg), out.ptr ? out.ptr : "", out.len);
			r = tm_error_set(TM_EAPPLY, "systemctl show %s: exit status %d: %s",
					 units[done], status, msg);
		}
		p = out.ptr ? out.ptr : "";
		end = p + out.len;
		while (r == 0 && p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end, *eq;

			if (le == p) {
				if (seen) {
					idx++;
					seen = 0;
				}
				p = nl ? nl + 1 : end;
				continue;
			}
			if (idx >= done + batch)
				break;
			seen = 1;
			eq = memchr(p, '=', (size_t)(le - p));
			if (eq) {
				size_t kl = (size_t)(eq - p), vl = (size_t)(le - eq - 1);
				const char *v = eq + 1;
				struct unit_state *u = &st[idx];
				char num[32];
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(p, s, kl) == 0)
				if (KEY("ActiveState"))
					show_field(u->active, sizeof(u->active), v, vl);
				else if (KEY("SubState"))
					show_field(u->sub, sizeof(u->sub), v, vl);
				else if (KEY("Result"))
					show_field(u->result, sizeof(u->result), v, vl);
				else if (KEY("Type"))
					show_field(u->type, sizeof(u->type), v, vl);
				else if (KEY("LoadState"))
					u->loaded = vl == 6 && memcmp(v, "loaded", 6) == 0;
				else if (KEY("Job"))
					u->job = vl > 0;
				else if (KEY("ExecMainExitTimestampMonotonic")) {
					show_field(num, sizeof(num), v, vl);
					u->main_exit_us = strtoull(num, NULL, 10);
				} else if (KEY("ActiveEnterTimestampMonotonic")) {
					show_field(num, sizeof(num), v, vl);
					u->active_enter_us = strtoull(num, NULL, 10);
				} else if (KEY("NRestarts")) {
					show_field(num, sizeof(num), v, vl);
					u->nrestarts = strtoull(num, NULL, 10);
				}
#undef KEY
			}
			p = nl ? nl + 1 : end;
		}
		tm_buf_free(&out);
		if (r < 0)
			return r;
		done += batch;
	}
	return 0;
}

int sd_is_running(const char *active)
{
	return strcmp(active, "active") == 0 || strcmp(active, "reloading") == 0 ||
	       strcmp(active, "activating") == 0;
}

/* `systemctl is-active U...`: one line per unit, in order. Much cheaper than
 * `show` (which fetches every property of every unit): the poll of health()
 * and the restart/start decision use this; `show` is kept for the few units
 * whose details matter. */
int sd_is_active(const struct tm_applier_ctx *ctx, active_state *st, char *const *units, size_t n)
{
	const char *args[BATCH_MAX + 2];
	size_t done = 0;

	while (done < n) {
		struct tm_buf out;
		size_t k = 0, batch = n - done, idx = done;
		int status = 0, r;
		const char *p, *end;

		if (batch > BATCH_MAX)
			batch = BATCH_MAX;
		args[k++] = "is-active";
		for (size_t i = 0; i < batch; i++)
			args[k++] = units[done + i];
		args[k] = NULL;
		tm_buf_init(&out, TM_SYSTEMD_OUTPUT_MAX + 1);
		r = tm_systemctl_run(&out, &status, QUICK_TIMEOUT_MS, systemctl_of(ctx), args);
		p = out.ptr ? out.ptr : "";
		end = p + out.len;
		while (r == 0 && p < end && idx < done + batch) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			show_field(st[idx++], sizeof(st[0]), p, (size_t)(le - p));
			p = nl ? nl + 1 : end;
		}
		/* exit 3 ("not all active") is normal; a wrong number of lines is not */
		if (r == 0 && idx != done + batch) {
			char msg[768];
			one_line(msg, sizeof(msg), out.ptr ? out.ptr : "", out.len);
			r = tm_error_set(TM_EAPPLY, "systemctl is-active %s: exit status %d: %s",
					 units[done], status, msg);
		}
		tm_buf_free(&out);
		if (r < 0)
			return r;
		done += batch;
	}
	return 0;
}

/* Last journal lines of a unit, as one line, for the error message. */
void sd_journal_tail(const struct tm_applier_ctx *ctx, char *dst, size_t dstlen, const char *unit)
{
	const char *prog = journalctl_path(ctx && ctx->cfg ? ctx->cfg->systemd.journalctl : NULL);
	const char *args[] = { "-u", unit,  "-n", JOURNAL_LINES, "--no-pager",
			       "-o", "cat", "-q", NULL };
	struct tm_buf out;
	int st = 0;

	dst[0] = '\0';
	if (!prog)
		return;
	tm_buf_init(&out, TM_SYSTEMD_OUTPUT_MAX + 1);
	if (run_prog(&out, &st, JOURNAL_TIMEOUT_MS, prog, args) == 0 && st == 0 && out.ptr)
		one_line(dst, dstlen, out.ptr, out.len);
	tm_buf_free(&out);
}
