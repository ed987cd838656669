/*
 * systemd.c — the systemd applier (applier.h): unit files and drop-ins.
 *
 * Where it sits in the pipeline: plan hands every repository file under the
 * [systemd] paths to wants()/parse(), which turn it into one object with the
 * id "web.service" or "web.service.d/10-env.conf". apply() writes what
 * differs into unit_dir atomically (refusing, before writing anything, to
 * overwrite a file tagmoor did not write), then does one daemon-reload,
 * enables and starts units with an [Install] section and restarts changed
 * units that were running. health() watches `systemctl show` until the
 * started services are active; prune() stops, disables and deletes what left
 * the repository; drift() puts back unit files edited by hand.
 *
 * Power cuts: before its first write apply() hands the ids it is about to
 * write to the pass (ctx->record), which makes them tagmoor's in state.json
 * first; apply, prune and drift begin by removing the temp files a killed
 * write left in unit_dir and its NAME.d/ directories (tm_file_clean_temps),
 * which only reads the directories when there are none.
 *
 * systemctl is always run by fork/exec with a fixed argv and environment,
 * never through a shell, with a timeout and a bounded capture of its output
 * for error messages. Start and restart are queued (--no-block) so that a
 * slow or hanging unit is judged by health() within [systemd] wait rather than
 * blocking the pass; health() waits for the queued jobs to finish.
 *
 * With --root (ctx->root) the target is an offline image: files are written,
 * `systemctl --root=DIR enable|disable` sets the symlinks, nothing is started,
 * reloaded or health-checked.
 */
#define _GNU_SOURCE
#include "tagmoor/apply/systemd/systemd.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"
#include "tagmoor/apply/systemd/space.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QUICK_TIMEOUT_MS 30000u /* daemon-reload, enable, show, start --no-block */
#define STOP_TIMEOUT_MS 120000u /* stop waits for the unit (TimeoutStopSec is 90 s) */
#define JOURNAL_TIMEOUT_MS 10000u
#define JOURNAL_LINES "10"
#define POLL_MS 200u
#define SETTLE_MS 1000u /* a service must stay active this long */
#define BATCH_MAX 64    /* units per systemctl call */
#define DIFF_CELLS_MAX (4u * 1024 * 1024)
#define PATH_MAX_TM 4096

static const char *const unit_suffixes[] = {
	"service", "socket", "timer", "path", "mount", "target"
};

/* ---------------------------------------------------------------- names */

static int suffix_ok(const char *s)
{
	for (size_t i = 0; i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0]); i++)
		if (strcmp(s, unit_suffixes[i]) == 0)
			return 1;
	return 0;
}

/* systemd's unit_name_is_valid(name, UNIT_NAME_ANY): "prefix[@[instance]].type"
 * with prefix/instance characters from [A-Za-z0-9:_.\-] (and '@' after the
 * first one), a non-empty prefix, fewer than 256 bytes. */
int tm_systemd_unit_name_valid(const char *name)
{
	const char *e, *at = NULL;
	size_t len;

	if (!name || !*name)
		return 0;
	len = strnlen(name, TM_SYSTEMD_NAME_MAX + 1);
	if (len > TM_SYSTEMD_NAME_MAX)
		return 0;
	e = strrchr(name, '.');
	if (!e || e == name || !suffix_ok(e + 1))
		return 0;
	for (const char *p = name; p < e; p++) {
		char c = *p;
		if (c == '@' && !at)
			at = p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@'))
			return 0;
	}
	if (at == name)
		return 0;
	return 1;
}

int tm_systemd_dropin_name_valid(const char *name)
{
	size_t len;

	if (!name || !*name || name[0] == '.')
		return 0;
	len = strnlen(name, TM_SYSTEMD_NAME_MAX + 1);
	if (len > TM_SYSTEMD_NAME_MAX || len <= 5 || strcmp(name + len - 5, ".conf") != 0)
		return 0;
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '-' || c == '_' || c == '.' || c == '@' || c == '+'))
			return 0;
	}
	return 1;
}

static int is_template(const char *unit)
{
	const char *at = strchr(unit, '@'), *dot = strrchr(unit, '.');
	return at && dot && at + 1 == dot;
}

int tm_systemd_id_kind(const char *id, char *unit)
{
	const char *slash = strchr(id, '/');
	size_t ulen;

	if (!slash) {
		if (!tm_systemd_unit_name_valid(id))
			return TM_SYSTEMD_NONE;
		if (unit)
			memcpy(unit, id, strlen(id) + 1);
		return TM_SYSTEMD_UNIT;
	}
	if (slash - id < 3 || memcmp(slash - 2, ".d", 2) != 0)
		return TM_SYSTEMD_NONE;
	ulen = (size_t)(slash - id) - 2;
	if (ulen > TM_SYSTEMD_NAME_MAX)
		return TM_SYSTEMD_NONE;
	char name[TM_SYSTEMD_NAME_MAX + 1];
	memcpy(name, id, ulen);
	name[ulen] = '\0';
	if (!tm_systemd_unit_name_valid(name) || !tm_systemd_dropin_name_valid(slash + 1))
		return TM_SYSTEMD_NONE;
	if (unit)
		memcpy(unit, name, ulen + 1);
	return TM_SYSTEMD_DROPIN;
}

/* Trims ASCII white space (systemd strips " \t\n\r") off both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\n'))
		(*s)++;
	while (*e > *s &&
	       ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r' || (*e)[-1] == '\n'))
		(*e)--;
}

int tm_systemd_has_install(const char *content, size_t len)
{
	const char *p = content, *end = content + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end;
		trim(&ls, &le);
		if (le - ls == 9 && memcmp(ls, "[Install]", 9) == 0)
			return 1;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

/* ------------------------------------------------------ wants and parse */

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int has_unit_suffix(const char *name, size_t len)
{
	const char *dot = NULL;
	char suffix[16];

	for (size_t i = len; i > 0; i--)
		if (name[i - 1] == '.') {
			dot = name + i - 1;
			break;
		}
	if (!dot || (size_t)(name + len - dot - 1) >= sizeof(suffix))
		return 0;
	memcpy(suffix, dot + 1, (size_t)(name + len - dot - 1));
	suffix[name + len - dot - 1] = '\0';
	return suffix_ok(suffix);
}

/* The directory component just above the file: [*d, *d + *dlen). */
static int parent_dir(const char *path, const char **d, size_t *dlen)
{
	const char *slash = strrchr(path, '/');
	const char *start;

	if (!slash)
		return -1;
	start = slash;
	while (start > path && start[-1] != '/')
		start--;
	*d = start;
	*dlen = (size_t)(slash - start);
	return 0;
}

static int wants(const char *path, const char *basename)
{
	size_t blen = strlen(basename), dlen;
	const char *d;

	if (has_unit_suffix(basename, blen))
		return 1;
	if (blen > 5 && strcmp(basename + blen - 5, ".conf") == 0 &&
	    parent_dir(path, &d, &dlen) == 0 && dlen > 2 && memcmp(d + dlen - 2, ".d", 2) == 0 &&
	    has_unit_suffix(d, dlen - 2))
		return 1;
	return 0;
}

/* A light syntax check: text without NUL; every line blank, a comment, a
 * [Section] header, a Key=Value assignment inside a section, or the
 * continuation of a line ending in '\'. systemd ignores other lines with a
 * warning; a repository that has them almost certainly means something else. */
static int check_syntax(const char *path, const char *content, size_t len)
{
	const char *p = content, *end = content + len;
	unsigned line = 0;
	int continued = 0, in_section = 0;

	if (memchr(content, '\0', len))
		return tm_error_set(TM_EPARSE, "%.256s: not a text file (contains NUL bytes)",
				    path);
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3; /* systemd skips a UTF-8 byte order mark */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end;
		int was_continued = continued;

		line++;
		p = nl ? nl + 1 : end;
		trim(&ls, &le);
		continued = 0;
		if (ls == le)
			continue;
		if (*ls == '#' || *ls == ';') {
			continued = was_continued; /* comments inside a continuation are skipped */
			continue;
		}
		if (le[-1] == '\\')
			continued = 1;
		if (was_continued)
			continue;
		if (*ls == '[') {
			if (le[-1] != ']' || le - ls < 3)
				return tm_error_set(TM_EPARSE,
						    "%.256s:%u: malformed section header", path,
						    line);
			in_section = 1;
			continue;
		}
		if (!memchr(ls, '=', (size_t)(le - ls)))
			return tm_error_set(TM_EPARSE, "%.256s:%u: expected Key=Value or [Section]",
					    path, line);
		if (!in_section)
			return tm_error_set(TM_EPARSE,
					    "%.256s:%u: assignment outside of a [Section]", path,
					    line);
	}
	return 0;
}

static int parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
		 const char *relpath, const char *content, size_t len)
{
	const char *base = base_of(path);
	char id[2 * TM_SYSTEMD_NAME_MAX + 2];
	size_t blen = strlen(base);
	int r;

	(void)ctx;
	(void)relpath; /* the id never depends on where below a paths entry the file is */
	if (has_unit_suffix(base, blen)) {
		if (!tm_systemd_unit_name_valid(base))
			return tm_error_set(TM_EPARSE,
					    "%.256s: \"%.256s\" is not a valid unit name", path,
					    base);
		memcpy(id, base, blen + 1);
	} else {
		const char *d;
		size_t dlen;
		char unit[TM_SYSTEMD_NAME_MAX + 1];

		if (parent_dir(path, &d, &dlen) < 0 || dlen < 3 ||
		    memcmp(d + dlen - 2, ".d", 2) != 0)
			return tm_error_set(TM_EPARSE, "%.256s: not a unit file or drop-in", path);
		if (dlen - 2 > TM_SYSTEMD_NAME_MAX)
			return tm_error_set(TM_EPARSE, "%.256s: unit name too long", path);
		memcpy(unit, d, dlen - 2);
		unit[dlen - 2] = '\0';
		if (!tm_systemd_unit_name_valid(unit))
			return tm_error_set(TM_EPARSE,
					    "%.256s: \"%.256s\" is not a valid unit name", path,
					    unit);
		if (!tm_systemd_dropin_name_valid(base))
			return tm_error_set(TM_EPARSE,
					    "%.256s: \"%.256s\" is not a valid drop-in file name",
					    path, base);
		snprintf(id, sizeof(id), "%s.d/%s", unit, base);
	}
	if ((r = check_syntax(path, content, len)) < 0)
		return r;
	return tm_objset_add(out, id, path, content, len, NULL);
}

static void free_data(void *data)
{
	free(data);
}

/* ------------------------------------------------------- running programs */

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

/* fork/exec prog with args; bounded capture of stdout+stderr; kill at timeout. */
static int run_prog(struct tm_buf *out, int *status, unsigned timeout_ms, const char *prog,
		    const char *const *args)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				      "LC_ALL=C",
				      "SYSTEMD_PAGER=",
				      "SYSTEMD_COLORS=0",
				      "SYSTEMD_LOG_COLOR=0",
				      NULL };
	size_t nargs = 0, kept = 0;
	char **argv;
	int pfd[2], r = TM_EAPPLY, wst = 0, timed_out = 0;
	pid_t pid;
	uint64_t deadline = tm_time_mono_ms() + timeout_ms;

	while (args[nargs])
		nargs++;
	if (!(argv = calloc(nargs + 2, sizeof(*argv))))
		return tm_error_set(TM_ENOMEM, "out of memory");
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
	if (pid == 0) {
		sigset_t none;
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 ||
		    dup2(pfd[1], 2) < 0)
			_exit(127);
		close_from(3);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execve(prog, argv, envp);
		_exit(127);
	}
	free(argv);
	close(pfd[1]);
	for (;;) {
		char chunk[4096];
		uint64_t t = tm_time_mono_ms();
		struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
		int pr;
		ssize_t n;

		if (t >= deadline) {
			timed_out = 1;
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
		n = read(pfd[0], chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		if (n == 0)
			break;
		if (out && kept < TM_SYSTEMD_OUTPUT_MAX) {
			size_t take = (size_t)n;
			if (take > TM_SYSTEMD_OUTPUT_MAX - kept)
				take = TM_SYSTEMD_OUTPUT_MAX - kept;
			if (tm_buf_put(out, chunk, take) == 0)
				kept += take;
		}
	}
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
static int systemctl(const struct tm_applier_ctx *ctx, unsigned timeout_ms, const char *verb,
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

static int daemon_reload(const struct tm_applier_ctx *ctx)
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
static void reload_best_effort(const struct tm_applier_ctx *ctx)
{
	char msg[1024];
	int code = tm_error_last_code();

	if (ctx->root || ctx->dry_run)
		return;
	snprintf(msg, sizeof(msg), "%s", tm_error_last());
	if (daemon_reload(ctx) < 0)
		tm_log_warn("systemd: %s", tm_error_last());
	tm_error_set(code, "%s", msg);
}

/* The state of a unit as `systemctl show` reports it. */
struct unit_state {
	char active[24], sub[32], result[32], type[16];
	int job, loaded;
	uint64_t main_exit_us;
	uint64_t active_enter_us; /* changes whenever the unit (re-)enters active */
	uint64_t nrestarts;
};

static void show_field(char *dst, size_t dstlen, const char *v, size_t vlen)
{
	if (vlen >= dstlen)
		vlen = dstlen - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

/* One `systemctl show -p ...` for n units; blocks come back in order,
 * separated by empty lines. */
static int show_units(const struct tm_applier_ctx *ctx, struct unit_state *st, char *const *units,
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

static int is_running(const char *active)
{
	return strcmp(active, "active") == 0 || strcmp(active, "reloading") == 0 ||
	       strcmp(active, "activating") == 0;
}

typedef char active_state[24];

/* `systemctl is-active U...`: one line per unit, in order. Much cheaper than
 * `show` (which fetches every property of every unit): the poll of health()
 * and the restart/start decision use this; `show` is kept for the few units
 * whose details matter. */
static int is_active(const struct tm_applier_ctx *ctx, active_state *st, char *const *units,
		     size_t n)
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

/* ------------------------------------------------------------------ diff */

struct line {
	const char *p;
	size_t len; /* without the '\n' */
	int nl;     /* ends with '\n' */
};

static int split_lines(struct line **out, size_t *n, const char *s, size_t len)
{
	size_t cnt = 0, i = 0;
	struct line *v;

	for (size_t k = 0; k < len; k++)
		if (s[k] == '\n')
			cnt++;
	if (len && s[len - 1] != '\n')
		cnt++;
	*n = cnt;
	*out = NULL;
	if (!cnt)
		return 0;
	if (!(v = calloc(cnt, sizeof(*v))))
		return tm_error_set(TM_ENOMEM, "out of memory");
	for (const char *p = s, *end = s + len; p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		v[i].p = p;
		v[i].len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		v[i].nl = nl != NULL;
		p = nl ? nl + 1 : end;
	}
	*out = v;
	return 0;
}

static int line_eq(const struct line *a, const struct line *b)
{
	return a->len == b->len && a->nl == b->nl && memcmp(a->p, b->p, a->len) == 0;
}

struct op {
	char type; /* ' ', '-', '+' */
	size_t ai, bi;
};

static void print_line(FILE *f, char type, const struct line *l)
{
	fputc(type, f);
	fwrite(l->p, 1, l->len, f);
	fputc('\n', f);
	if (!l->nl)
		fputs("\\ No newline at end of file\n", f);
}

static void print_range(FILE *f, size_t start, size_t count)
{
	/* GNU diff: an empty range names the line before it. */
	if (count == 0)
		fprintf(f, "%zu,0", start);
	else if (count == 1)
		fprintf(f, "%zu", start + 1);
	else
		fprintf(f, "%zu,%zu", start + 1, count);
}

int tm_systemd_diff(FILE *f, const char *label, const char *old, size_t oldlen, const char *new_,
		    size_t newlen)
{
	struct line *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, pre = 0, suf = 0, nops = 0;
	struct op *ops = NULL;
	uint32_t *dp = NULL;
	int r;
	const size_t ctxl = 3;

	if (old && new_ && oldlen == newlen && memcmp(old, new_, oldlen) == 0)
		return 0;
	if ((r = split_lines(&a, &na, old ? old : "", old ? oldlen : 0)) < 0 ||
	    (r = split_lines(&b, &nb, new_ ? new_ : "", new_ ? newlen : 0)) < 0)
		goto out;
	r = TM_ENOMEM;
	if (!(ops = calloc(na + nb + 1, sizeof(*ops))))
		goto out;
	while (pre < na && pre < nb && line_eq(&a[pre], &b[pre]))
		pre++;
	while (suf < na - pre && suf < nb - pre && line_eq(&a[na - 1 - suf], &b[nb - 1 - suf]))
		suf++;
	for (size_t i = 0; i < pre; i++)
		ops[nops++] = (struct op){ ' ', i, i };
	{
		size_t ma = na - pre - suf, mb = nb - pre - suf, i = 0, j = 0;
		int whole = ma && mb && (ma + 1) > DIFF_CELLS_MAX / (mb + 1);

		if (!whole && ma && mb) {
			/* dp[i][j] = length of the LCS of a[pre+i..] and b[pre+j..] */
			if (!(dp = calloc((ma + 1) * (mb + 1), sizeof(*dp))))
				goto out;
			for (size_t x = ma; x-- > 0;)
				for (size_t y = mb; y-- > 0;) {
					uint32_t *c = &dp[x * (mb + 1) + y];
					if (line_eq(&a[pre + x], &b[pre + y]))
						*c = dp[(x + 1) * (mb + 1) + y + 1] + 1;
					else {
						uint32_t d1 = dp[(x + 1) * (mb + 1) + y];
						uint32_t d2 = dp[x * (mb + 1) + y + 1];
						*c = d1 >= d2 ? d1 : d2;
					}
				}
		}
		while (i < ma || j < mb) {
			if (dp && i < ma && j < mb && line_eq(&a[pre + i], &b[pre + j])) {
				ops[nops++] = (struct op){ ' ', pre + i, pre + j };
				i++;
				j++;
			} else if (i < ma &&
				   (j == mb || !dp ||
				    dp[(i + 1) * (mb + 1) + j] >= dp[i * (mb + 1) + j + 1])) {
				ops[nops++] = (struct op){ '-', pre + i, pre + j };
				i++;
			} else {
				ops[nops++] = (struct op){ '+', pre + i, pre + j };
				j++;
			}
		}
	}
	for (size_t i = 0; i < suf; i++)
		ops[nops++] = (struct op){ ' ', na - suf + i, nb - suf + i };

	fprintf(f, "--- %s\n+++ %s\n", old ? label : "/dev/null", new_ ? label : "/dev/null");
	for (size_t k = 0; k < nops;) {
		size_t first, last, hs, he, ca = 0, cb = 0;

		while (k < nops && ops[k].type == ' ')
			k++;
		if (k == nops)
			break;
		first = last = k;
		for (size_t m = k + 1; m < nops; m++) {
			if (ops[m].type == ' ')
				continue;
			if (m - last > 2 * ctxl)
				break;
			last = m;
		}
		hs = first > ctxl ? first - ctxl : 0;
		he = last + ctxl + 1 < nops ? last + ctxl + 1 : nops;
		for (size_t m = hs; m < he; m++) {
			if (ops[m].type != '+')
				ca++;
			if (ops[m].type != '-')
				cb++;
		}
		fputs("@@ -", f);
		print_range(f, ops[hs].ai, ca);
		fputs(" +", f);
		print_range(f, ops[hs].bi, cb);
		fputs(" @@\n", f);
		for (size_t m = hs; m < he; m++)
			print_line(f, ops[m].type,
				   ops[m].type == '+' ? &b[ops[m].bi] : &a[ops[m].ai]);
		k = he;
	}
	r = 0;
out:
	if (r == TM_ENOMEM)
		tm_error_set(TM_ENOMEM, "out of memory");
	free(dp);
	free(ops);
	free(a);
	free(b);
	return r;
}

/* ------------------------------------------------------------ the applier */

enum file_state {
	F_SAME = 0,
	F_NEW,
	F_DIFF,
	F_FOREIGN
};

static const char *unit_dir_of(const struct tm_applier_ctx *ctx)
{
	if (ctx->cfg && ctx->cfg->systemd.unit_dir && *ctx->cfg->systemd.unit_dir)
		return ctx->cfg->systemd.unit_dir;
	return "/etc/systemd/system";
}

static int path_of(char *out, size_t outlen, const struct tm_applier_ctx *ctx, const char *id)
{
	int n = snprintf(out, outlen, "%s/%s", unit_dir_of(ctx), id);
	if (n < 0 || (size_t)n >= outlen)
		return tm_error_set(TM_EAPPLY, "%.128s/%.128s: path too long", unit_dir_of(ctx),
				    id);
	return 0;
}

static int in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static FILE *diff_out(const struct tm_applier_ctx *ctx)
{
	return ctx->out ? (FILE *)ctx->out : stdout;
}

/* Compares an object with its file: F_SAME, F_NEW or F_DIFF; *live receives
 * the file's content when it exists and is readable (for diffs). */
static int compare(const struct tm_applier_ctx *ctx, const struct tm_object *o, struct tm_buf *live,
		   int *exists)
{
	char path[PATH_MAX_TM];
	struct stat st;
	int r;

	if ((r = path_of(path, sizeof(path), ctx, o->id)) < 0)
		return r;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			*exists = 0;
			return F_NEW;
		}
		return tm_error_set(TM_EAPPLY, "%s: %s", path, strerror(errno));
	}
	*exists = 1;
	if (!S_ISREG(st.st_mode))
		return F_DIFF; /* a symlink (a mask, say) or something else: not our content */
	r = tm_file_read(live, path, TM_SYSTEMD_UNIT_MAX);
	if (r == TM_ELIMIT)
		return F_DIFF;
	if (r < 0)
		return tm_error_wrap(TM_EAPPLY, "systemd");
	return live->len == o->len && memcmp(live->ptr, o->content, o->len) == 0 ? F_SAME : F_DIFF;
}

static int write_object(const struct tm_applier_ctx *ctx, const struct tm_object *o)
{
	char path[PATH_MAX_TM];
	int r;

	if ((r = path_of(path, sizeof(path), ctx, o->id)) < 0)
		return r;
	if (strchr(o->id, '/')) {
		char dir[PATH_MAX_TM];
		memcpy(dir, path, sizeof(dir));
		*strrchr(dir, '/') = '\0';
		if ((r = tm_file_mkdirs(dir, 0755)) < 0)
			return tm_error_wrap(TM_EAPPLY, "systemd");
	} else if ((r = tm_file_mkdirs(unit_dir_of(ctx), 0755)) < 0) {
		return tm_error_wrap(TM_EAPPLY, "systemd");
	}
	TM_FAULT("systemd.before-unit-write");
	if ((r = tm_file_write_atomic(path, o->content, o->len, 0644)) < 0)
		return tm_error_wrap(TM_EAPPLY, "systemd");
	tm_log_info("systemd: wrote %s", path);
	return 0;
}

/* The file names below prefix ("" for unit_dir itself, "web.service.d/" for
 * a drop-in directory) of the ids in desired and inventory: whose old-style
 * temp files ("NAME.tmp.XXXXXX") are known to be ours. */
static int names_below(char ***v, size_t *n, const char *prefix, const struct tm_objset *desired,
		       char *const *inventory, size_t ninventory)
{
	size_t pl = strlen(prefix), total = (desired ? desired->n : 0) + ninventory;
	int r;

	for (size_t i = 0; i < total; i++) {
		const char *id = i < ninventory ? inventory[i] : desired->v[i - ninventory].id;
		if (strncmp(id, prefix, pl) != 0 || strchr(id + pl, '/') ||
		    in_list(*v, *n, id + pl) || tm_systemd_id_kind(id, NULL) == TM_SYSTEMD_NONE)
			continue;
		if ((r = tm_strv_push(v, n, id + pl)) < 0)
			return r;
	}
	return 0;
}

static int clean_one(const char *dir, const char *prefix, const struct tm_objset *desired,
		     char *const *inventory, size_t ninventory)
{
	char **names = NULL;
	size_t nnames = 0;
	int r;

	if ((r = names_below(&names, &nnames, prefix, desired, inventory, ninventory)) == 0)
		r = tm_file_clean_temps_named(dir, names, nnames);
	tm_strv_free(names, nnames);
	if (r > 0)
		tm_log_info("systemd: removed %d leftover temporary file(s) in %s", r, dir);
	return r;
}

/*
 * Removes what a kill in the middle of tm_file_write_atomic left in unit_dir
 * and its NAME.d/ drop-in directories (NAME a valid unit name; a symlink is
 * never followed): temp files, and the old-style temp files of ids in
 * desired or inventory. Only reads unless there is something to remove. A
 * failure is logged, never fatal: a leftover is harmless to systemd.
 */
static void clean_temps(const struct tm_applier_ctx *ctx, const struct tm_objset *desired,
			char *const *inventory, size_t ninventory)
{
	const char *ud = unit_dir_of(ctx);
	DIR *d;
	struct dirent *e;

	if (ctx->dry_run)
		return;
	if (clean_one(ud, "", desired, inventory, ninventory) < 0)
		tm_log_warn("systemd: %s", tm_error_last());
	if (!(d = opendir(ud)))
		return; /* missing: nothing was ever written; else already reported */
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		char unit[TM_SYSTEMD_NAME_MAX + 1], dir[PATH_MAX_TM],
			prefix[TM_SYSTEMD_NAME_MAX + 4];
		struct stat st;

		if (l < 3 || l - 2 > TM_SYSTEMD_NAME_MAX || strcmp(e->d_name + l - 2, ".d") != 0)
			continue;
		memcpy(unit, e->d_name, l - 2);
		unit[l - 2] = '\0';
		if (!tm_systemd_unit_name_valid(unit) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (path_of(dir, sizeof(dir), ctx, e->d_name) < 0)
			continue;
		snprintf(prefix, sizeof(prefix), "%s/", e->d_name);
		if (clean_one(dir, prefix, desired, inventory, ninventory) < 0)
			tm_log_warn("systemd: %s", tm_error_last());
	}
	closedir(d);
}

/* Hands the ids about to be written or adopted (identical files) that are
 * not in the inventory yet to the pass (ctx->record) before the first write:
 * a kill after a write then never leaves a unit file tagmoor wrote or
 * adopted but does not own (which the next revision would refuse as foreign
 * for good). */
static int record_new(const struct tm_applier_ctx *ctx, const struct tm_objset *desired,
		      const int *state, char *const *inventory, size_t ninventory)
{
	char **ids = NULL;
	size_t nids = 0;
	int r = 0;

	if (!ctx->record || ctx->dry_run)
		return 0;
	for (size_t i = 0; i < desired->n && r == 0; i++)
		if (!in_list(inventory, ninventory, desired->v[i].id)) /* to write, or adopted */
			r = tm_strv_push(&ids, &nids, desired->v[i].id);
	if (r == 0 && nids && (r = ctx->record(ctx->record_arg, "systemd", ids, nids)) < 0 &&
	    r != TM_ENOMEM)
		r = tm_error_wrap(TM_EAPPLY, "systemd: nothing written");
	tm_strv_free(ids, nids);
	return r < 0 ? r : 0;
}

/* Unit files among desired that are enabled and started: [Install] and not a
 * bare template. */
static int collect_install_units(char ***v, size_t *n, const struct tm_objset *desired)
{
	int r;

	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		if (tm_systemd_id_kind(o->id, NULL) != TM_SYSTEMD_UNIT || is_template(o->id) ||
		    !tm_systemd_has_install(o->content, o->len))
			continue;
		if ((r = tm_strv_push(v, n, o->id)) < 0)
			return r;
	}
	return 0;
}

/* The units to restart for changed ids: the unit itself or a drop-in's parent. */
static int collect_changed_units(char ***v, size_t *n, char *const *changed, size_t nchanged)
{
	char unit[TM_SYSTEMD_NAME_MAX + 1];
	int r;

	for (size_t i = 0; i < nchanged; i++) {
		if (tm_systemd_id_kind(changed[i], unit) == TM_SYSTEMD_NONE || is_template(unit) ||
		    in_list(*v, *n, unit))
			continue;
		if ((r = tm_strv_push(v, n, unit)) < 0)
			return r;
	}
	return 0;
}

/*
 * After files were written (changed ids in changed[]): enable units with
 * [Install]; then, on a live system, one daemon-reload when anything changed,
 * restart changed units that are running, start enabled ones that are not.
 */
static int converge(struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		    const struct tm_objset *desired, char *const *changed, size_t nchanged)
{
	char **inst = NULL, **chg = NULL, **restart = NULL, **start = NULL, **all = NULL;
	size_t ninst = 0, nchg = 0, nrestart = 0, nstart = 0, nall = 0;
	active_state *st = NULL;
	int r, enabled_something = 0;

	if ((r = collect_install_units(&inst, &ninst, desired)) < 0 ||
	    (r = collect_changed_units(&chg, &nchg, changed, nchanged)) < 0)
		goto out;
	if (ninst) {
		r = systemctl(ctx, QUICK_TIMEOUT_MS, "enable", ctx->root ? NULL : "--no-reload",
			      inst, ninst, -1, &enabled_something);
		if (r < 0) {
			if (nchanged)
				reload_best_effort(ctx);
			goto out;
		}
	}
	TM_FAULT("systemd.enabled");
	if (ctx->root) {
		r = 0;
		goto out;
	}
	if ((nchanged || enabled_something) && (r = daemon_reload(ctx)) < 0)
		goto out;
	for (size_t i = 0; i < nchg; i++)
		if ((r = tm_strv_push(&all, &nall, chg[i])) < 0)
			goto out;
	for (size_t i = 0; i < ninst; i++)
		if (!in_list(all, nall, inst[i]) && (r = tm_strv_push(&all, &nall, inst[i])) < 0)
			goto out;
	if (!nall) {
		r = 0;
		goto out;
	}
	if (!(st = calloc(nall, sizeof(*st)))) {
		r = tm_error_set(TM_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = is_active(ctx, st, all, nall)) < 0)
		goto out;
	for (size_t i = 0; i < nall; i++) {
		int running = is_running(st[i]);
		if (i < nchg && running)
			r = tm_strv_push(&restart, &nrestart, all[i]);
		else if (in_list(inst, ninst, all[i]) && !running)
			r = tm_strv_push(&start, &nstart, all[i]);
		if (r < 0)
			goto out;
	}
	TM_FAULT("systemd.before-restart");
	if (nrestart) {
		for (size_t i = 0; i < nrestart; i++)
			tm_log_info("systemd: restarting %s", restart[i]);
		if ((r = systemctl(ctx, QUICK_TIMEOUT_MS, "restart", "--no-block", restart,
				   nrestart, -1, NULL)) < 0)
			goto out;
	}
	TM_FAULT("systemd.before-start");
	if (nstart) {
		for (size_t i = 0; i < nstart; i++)
			tm_log_info("systemd: starting %s", start[i]);
		if ((r = systemctl(ctx, QUICK_TIMEOUT_MS, "start", "--no-block", start, nstart, -1,
				   NULL)) < 0)
			goto out;
	}
	r = 0;
out:
	if (r < 0 && !res->error_object && (nstart || nrestart))
		tm_apply_result_set_object(res, nstart ? start[0] : restart[0]);
	free(st);
	tm_strv_free(inst, ninst);
	tm_strv_free(chg, nchg);
	tm_strv_free(restart, nrestart);
	tm_strv_free(start, nstart);
	tm_strv_free(all, nall);
	return r;
}

static int apply(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired, char *const *inventory, size_t ninventory)
{
	int *state = NULL, r = 0, nforeign = 0, converged = 0;
	size_t first_foreign = 0;
	char **changed = NULL;
	size_t nchanged = 0;
	struct tm_buf live;

	clean_temps(ctx, desired, inventory, ninventory);
	if (!desired->n) {
		if (ctx->dry_run)
			return 0;
		return converge(res, ctx, desired, NULL, 0);
	}
	if (!(state = calloc(desired->n, sizeof(*state))))
		return tm_error_set(TM_ENOMEM, "out of memory");
	/* 1. Look at everything before writing anything. */
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		int exists = 0, s;

		if (tm_systemd_id_kind(o->id, NULL) == TM_SYSTEMD_NONE) {
			tm_apply_result_set_object(res, o->id);
			r = tm_error_set(TM_EAPPLY, "%.256s: invalid systemd object id \"%.256s\"",
					 o->source, o->id);
			goto out;
		}
		tm_buf_init(&live, TM_SYSTEMD_UNIT_MAX + 1);
		s = compare(ctx, o, &live, &exists);
		if (s < 0) {
			tm_buf_free(&live);
			tm_apply_result_set_object(res, o->id);
			r = s;
			goto out;
		}
		/* A file that is there, was not written by tagmoor and differs is
		 * someone else's: never overwrite it. An identical one is adopted
		 * (nothing is written; this is how a lost state directory heals). */
		if (exists && s != F_SAME && !in_list(inventory, ninventory, o->id)) {
			s = F_FOREIGN;
			if (!nforeign++)
				first_foreign = i;
		}
		state[i] = s;
		if (ctx->dry_run && (s == F_NEW || s == F_DIFF)) {
			char path[PATH_MAX_TM];
			if ((r = path_of(path, sizeof(path), ctx, o->id)) == 0)
				r = tm_systemd_diff(diff_out(ctx), path, exists ? live.ptr : NULL,
						    live.len, o->content, o->len);
			if (r < 0) {
				tm_buf_free(&live);
				goto out;
			}
		}
		tm_buf_free(&live);
	}
	if (nforeign) {
		char path[PATH_MAX_TM];
		const struct tm_object *o = &desired->v[first_foreign];
		tm_apply_result_set_object(res, o->id);
		if ((r = path_of(path, sizeof(path), ctx, o->id)) == 0)
			r = tm_error_set(
				TM_EAPPLY,
				"%s exists and was not written by tagmoor; refusing to overwrite%s",
				path, nforeign > 1 ? " (and others)" : "");
		goto out;
	}
	if (!ctx->dry_run && (r = tm_systemd_check_space(res, unit_dir_of(ctx), desired)) < 0)
		goto out;
	TM_FAULT("systemd.checked");
	/* 2. What is about to be written becomes tagmoor's first, then write. */
	if ((r = record_new(ctx, desired, state, inventory, ninventory)) < 0)
		goto out;
	TM_FAULT("systemd.recorded");
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		if (state[i] == F_SAME) {
			res->unchanged++;
			continue;
		}
		if (!ctx->dry_run && (r = write_object(ctx, o)) < 0) {
			tm_apply_result_set_object(res, o->id);
			goto out;
		}
		TM_FAULT("systemd.unit-written");
		res->applied++;
		if ((r = tm_strv_push(&changed, &nchanged, o->id)) < 0 ||
		    (r = tm_strv_push(&res->changed, &res->nchanged, o->id)) < 0)
			goto out;
	}
	if (ctx->dry_run) {
		r = 0;
		goto out;
	}
	TM_FAULT("systemd.units-written");
	/* 3. Reload, enable, start, restart. */
	converged = 1;
	r = converge(res, ctx, desired, changed, nchanged);
out:
	if (r < 0 && nchanged && !ctx->dry_run && !converged) {
		tm_log_warn("systemd: apply failed after writing %zu unit file(s)", nchanged);
		reload_best_effort(ctx);
	}
	tm_strv_free(changed, nchanged);
	free(state);
	return r;
}

static int prune(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired, char *const *inventory, size_t ninventory,
		 char ***kept, size_t *nkept)
{
	char **gone = NULL, **stop = NULL, **parents = NULL;
	size_t ngone = 0, nstop = 0, nparents = 0;
	int r = 0, first_err = 0, removed_any = 0;
	char unit[TM_SYSTEMD_NAME_MAX + 1], first_msg[700] = "";

	*kept = NULL;
	*nkept = 0;
	clean_temps(ctx, desired, inventory, ninventory);
	for (size_t i = 0; i < ninventory; i++) {
		if (tm_objset_find(desired, inventory[i]) >= 0 ||
		    in_list(gone, ngone, inventory[i]))
			continue;
		if (tm_systemd_id_kind(inventory[i], unit) == TM_SYSTEMD_NONE) {
			/* Never build a path from something that is not an id. */
			tm_log_warn("systemd: ignoring invalid inventory entry \"%.*s\"",
				    TM_LOG_CAP, inventory[i]);
			continue;
		}
		if ((r = tm_strv_push(&gone, &ngone, inventory[i])) < 0)
			goto out;
	}
	if (!ngone)
		goto out;
	if (ctx->dry_run) {
		for (size_t i = 0; i < ngone; i++) {
			char path[PATH_MAX_TM];
			struct tm_buf live;
			int exists = 0;
			struct tm_object tmp = { .id = gone[i], .content = "", .len = 0 };

			tm_buf_init(&live, TM_SYSTEMD_UNIT_MAX + 1);
			r = compare(ctx, &tmp, &live, &exists);
			if (r >= 0 && exists &&
			    (r = path_of(path, sizeof(path), ctx, gone[i])) == 0)
				r = tm_systemd_diff(diff_out(ctx), path, live.ptr ? live.ptr : "",
						    live.len, NULL, 0);
			tm_buf_free(&live);
			if (r < 0)
				goto out;
			res->pruned++;
		}
		r = 0;
		goto out;
	}
	/* 1. Stop the units (one transaction); a unit that is not loaded is fine. */
	if (!ctx->root) {
		for (size_t i = 0; i < ngone; i++)
			if (tm_systemd_id_kind(gone[i], unit) == TM_SYSTEMD_UNIT &&
			    !is_template(unit) && (r = tm_strv_push(&stop, &nstop, unit)) < 0)
				goto out;
		if (nstop &&
		    systemctl(ctx, STOP_TIMEOUT_MS, "stop", NULL, stop, nstop, 5, NULL) < 0)
			tm_log_warn("systemd: prune: %s", tm_error_last());
	}
	TM_FAULT("systemd.prune-stopped");
	/* 2. Disable and delete, one by one, so a failure keeps only that one. */
	for (size_t i = 0; i < ngone; i++) {
		char path[PATH_MAX_TM];
		struct stat st;
		int kind = tm_systemd_id_kind(gone[i], unit), exists;

		if ((r = path_of(path, sizeof(path), ctx, gone[i])) < 0)
			goto keep;
		exists = lstat(path, &st) == 0;
		if (kind == TM_SYSTEMD_UNIT && exists && S_ISREG(st.st_mode)) {
			char *one[1] = { unit };
			if ((r = systemctl(ctx, QUICK_TIMEOUT_MS, "disable",
					   ctx->root ? NULL : "--no-reload", one, 1, -1, NULL)) < 0)
				goto keep;
		}
		TM_FAULT("systemd.prune-disabled");
		if (exists && unlink(path) < 0) {
			r = tm_error_set(TM_EAPPLY, "systemd: cannot remove %s: %s", path,
					 strerror(errno));
			goto keep;
		}
		if (exists) {
			removed_any = 1;
			tm_log_info("systemd: removed %s", path);
			TM_FAULT("systemd.prune-removed");
		}
		if (kind == TM_SYSTEMD_DROPIN) {
			char *slash = strrchr(path, '/');
			*slash = '\0';
			if (rmdir(path) < 0 && errno != ENOTEMPTY && errno != EEXIST &&
			    errno != ENOENT)
				tm_log_warn("systemd: cannot remove %s: %s", path, strerror(errno));
			if (!in_list(parents, nparents, unit) &&
			    tm_objset_find(desired, unit) >= 0 && !is_template(unit) &&
			    (r = tm_strv_push(&parents, &nparents, unit)) < 0)
				goto out;
		}
		res->pruned++;
		continue;
keep:
		if (!first_err) {
			first_err = r;
			snprintf(first_msg, sizeof(first_msg), "%s", tm_error_last());
		}
		tm_apply_result_set_object(res, gone[i]);
		tm_log_warn("systemd: prune: %s", tm_error_last());
		if ((r = tm_strv_push(kept, nkept, gone[i])) < 0)
			goto out;
	}
	TM_FAULT("systemd.pruned");
	/* 3. One reload; running parents of removed drop-ins pick the change up. */
	if (removed_any && !ctx->root) {
		if ((r = daemon_reload(ctx)) < 0)
			goto out;
		if (nparents && (r = systemctl(ctx, QUICK_TIMEOUT_MS, "try-restart", "--no-block",
					       parents, nparents, -1, NULL)) < 0)
			goto out;
	}
	r = first_err;
	if (r < 0)
		tm_error_set(r, "systemd: %s could not be removed%s: %s", (*kept)[0],
			     *nkept > 1 ? " (and others)" : "", first_msg);
out:
	tm_strv_free(gone, ngone);
	tm_strv_free(stop, nstop);
	tm_strv_free(parents, nparents);
	return r;
}

/* Last journal lines of a unit, as one line, for the error message. */
static void journal_tail(const struct tm_applier_ctx *ctx, char *dst, size_t dstlen,
			 const char *unit)
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
	if (is_running(u->active) || strcmp(u->active, "deactivating") == 0)
		return H_WAIT;
	if (strcmp(u->type, "oneshot") == 0 && strcmp(u->result, "success") == 0 && u->main_exit_us)
		return H_OK;
	return must_run ? H_BAD : H_SKIP;
}

static int health(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
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
		    tm_systemd_id_kind(id, NULL) == TM_SYSTEMD_UNIT && !is_template(id) &&
		    tm_systemd_has_install(desired->v[i].content, desired->v[i].len) &&
		    (r = tm_strv_push(&units, &nunits, id)) < 0)
			goto out;
	}
	ninstall = nunits;
	if ((r = collect_changed_units(&chg, &nchg, res->changed, res->nchanged)) < 0)
		goto out;
	for (size_t i = 0; i < nchg; i++) {
		size_t l = strlen(chg[i]);
		if (l > 8 && strcmp(chg[i] + l - 8, ".service") == 0 &&
		    !in_list(units, nunits, chg[i]) &&
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
		if ((r = is_active(ctx, act, ask, nask)) < 0)
			goto poll_out;
		for (size_t i = 0; i < nask; i++)
			if (strcmp(act[i], "failed") != 0 && !is_running(act[i]) &&
			    strcmp(act[i], "deactivating") != 0 &&
			    (r = tm_strv_push(&detail, &ndetail, ask[i])) < 0)
				goto poll_out;
		if (ndetail && (r = show_units(ctx, st, detail, ndetail)) < 0)
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
				r = show_units(ctx, now_st, seen, nseen);
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
				else if (!is_running(a) && strcmp(a, "deactivating") != 0)
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
		if ((r = show_units(ctx, st, bad, nbad)) == 0) {
			char journal[600];
			journal_tail(ctx, journal, sizeof(journal), bad[0]);
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

static int drift(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		 const struct tm_objset *desired)
{
	char **drifted = NULL;
	size_t ndrifted = 0;
	int r = 0;

	clean_temps(ctx, desired, NULL, 0);
	for (size_t i = 0; i < desired->n; i++) {
		const struct tm_object *o = &desired->v[i];
		struct tm_buf live;
		int exists = 0, s;

		if (tm_systemd_id_kind(o->id, NULL) == TM_SYSTEMD_NONE)
			continue;
		tm_buf_init(&live, TM_SYSTEMD_UNIT_MAX + 1);
		s = compare(ctx, o, &live, &exists);
		if (s == F_NEW || s == F_DIFF) {
			tm_log_warn("systemd: %s/%s was %s by hand", unit_dir_of(ctx), o->id,
				    exists ? "changed" : "deleted");
			if (ctx->dry_run) {
				char path[PATH_MAX_TM];
				if ((r = path_of(path, sizeof(path), ctx, o->id)) == 0)
					r = tm_systemd_diff(diff_out(ctx), path,
							    exists ? live.ptr : NULL, live.len,
							    o->content, o->len);
			} else {
				r = write_object(ctx, o);
			}
			if (r == 0 && (r = tm_strv_push(&drifted, &ndrifted, o->id)) == 0)
				r = tm_strv_push(&res->drifted, &res->ndrifted, o->id);
		} else if (s < 0) {
			r = s;
		}
		tm_buf_free(&live);
		if (r < 0) {
			tm_apply_result_set_object(res, o->id);
			goto out;
		}
	}
	if (ndrifted && !ctx->dry_run)
		r = converge(res, ctx, desired, drifted, ndrifted);
out:
	tm_strv_free(drifted, ndrifted);
	return r;
}

const struct tm_applier tm_systemd_applier = {
	.name = "systemd",
	.wants = wants,
	.parse = parse,
	.free_data = free_data,
	.apply = apply,
	.prune = prune,
	.health = health,
	.drift = drift,
};
