/*
 * daemon.c — `tagmoor run`: the loop that decides *when* a reconcile pass
 * runs, around reconcile.c's one pass (docs/architecture.md; the design: "the daemon loop only
 * decides when"):
 *
 *   first pass at start ──► wait interval ± jitter (or backoff) ──► pass ──► …
 *
 * One thread runs the loop and the passes. SIGTERM, SIGINT, SIGHUP and
 * SIGUSR1 are blocked and taken synchronously with sigtimedwait() while
 * idle, so no handler ever interrupts a pass; during a pass a pending
 * SIGTERM/SIGINT is seen at the pass's safe points (pass.stop, sigpending).
 * The state lock is held only during a pass, so manual commands work while
 * the daemon idles.
 *
 * A second thread exists only under a systemd watchdog: it sends WATCHDOG=1
 * every half period while the loop keeps its progress deadline (the end of
 * the current wait, or the start of the pass plus a bound derived from the
 * configured timeouts). Past the bound a pass still counts as alive while
 * it keeps doing I/O (a big fetch over a slow link), up to a hard limit. A
 * pass stuck past its bound stops the pings and systemd restarts tagmoor.
 * That thread only reads the deadline and /proc/self/io and sends a
 * datagram; it never touches the pass, the error buffer or the state.
 */
#include "tagmoor/daemon/daemon.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/source/git.h"
#include "tagmoor/core/log.h"
#include "tagmoor/pipeline/reconcile.h"
#include "tagmoor/report/report.h"
#include "tagmoor/state/state.h"
#include "tagmoor/core/fault.h"
#include "tagmoor/core/mcache.h"

#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ pure */

uint64_t tm_daemon_backoff_ms(uint64_t interval_ms, unsigned failures)
{
	uint64_t cap = interval_ms > TM_DAEMON_BACKOFF_CAP_MS ? interval_ms
							      : TM_DAEMON_BACKOFF_CAP_MS;
	uint64_t d = interval_ms;

	if (failures == 0)
		return interval_ms;
	for (unsigned i = 0; i < failures && d < cap; i++)
		d = d > cap / 2 ? cap : d * 2;
	return d < cap ? d : cap;
}

/* rnd scaled to [0, span] without overflow for span < 2^32 (the config caps
 * every duration at 7 days = 6.05e8 ms). */
static uint64_t scale(uint32_t rnd, uint64_t span)
{
	if (span >= UINT32_MAX)
		return (uint64_t)((double)rnd / 4294967296.0 * (double)span);
	return ((uint64_t)rnd * (span + 1)) >> 32;
}

uint64_t tm_daemon_jitter_ms(uint64_t base_ms, unsigned pct, uint32_t rnd)
{
	uint64_t span;

	if (pct > 100)
		pct = 100;
	span = base_ms / 100 * pct + base_ms % 100 * pct / 100;
	return base_ms - span + scale(rnd, 2 * span);
}

uint64_t tm_daemon_backoff_jitter_ms(uint64_t delay_ms, uint32_t rnd)
{
	uint64_t half = delay_ms / 2;

	return half + scale(rnd, delay_ms - half);
}

uint64_t tm_daemon_pass_bound_ms(const struct tm_config *cfg)
{
	uint64_t b = 3 * cfg->source.timeout_ms + TM_DAEMON_PASS_MARGIN_MS;

	/* twice: a failed revision is health-checked, then its rollback */
	if (cfg->kubernetes.applier.enabled)
		b += 2 * cfg->kubernetes.applier.wait_ms;
	if (cfg->systemd.applier.enabled)
		b += 2 * cfg->systemd.applier.wait_ms;
	return b;
}

uint64_t tm_daemon_pass_hard_ms(const struct tm_config *cfg)
{
	return tm_daemon_pass_bound_ms(cfg) + cfg->source.max_fetch * 1000 / TM_DAEMON_MIN_RATE;
}

int tm_daemon_alive(int64_t now, int64_t bound_at, int64_t hard_at, uint64_t bytes,
		    uint64_t elapsed_ms)
{
	if (now < bound_at)
		return 1;
	return now < hard_at && elapsed_ms > 0 && bytes >= elapsed_ms * TM_DAEMON_MIN_RATE / 1000;
}

uint64_t tm_daemon_watchdog_usec(const char *usec, const char *wpid, long pid)
{
	char *end;
	unsigned long long v;

	if (!usec || !*usec)
		return 0;
	if (wpid && *wpid) {
		long p;
		errno = 0;
		p = strtol(wpid, &end, 10);
		if (errno || *end || p != pid)
			return 0;
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || usec[0] == '-' || v == 0)
		return 0;
	return (uint64_t)v;
}

/* -------------------------------------------------------- notify protocol */

int tm_notify_open(struct tm_notify *n)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t len;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	if (!e || !*e)
		return 0;
	len = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || len >= sizeof(sa.sun_path) || len < 2) {
		int r = tm_error_set(TM_EUSAGE,
				     "NOTIFY_SOCKET=%.*s: not a socket path or @abstract name",
				     TM_LOG_CAP, e);
		unsetenv("NOTIFY_SOCKET");
		return r;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, e, len);
	if (e[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
	else
		len++;
	n->addrlen = offsetof(struct sockaddr_un, sun_path) + len;
	memcpy(n->addr, &sa, n->addrlen);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0)
		return tm_error_set(TM_EIO, "NOTIFY_SOCKET: socket: %s", strerror(errno));
	/* children (systemctl) never see it */
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

/* No tm_error_set here: the watchdog thread calls it too. */
int tm_notify_send(const struct tm_notify *n, const char *msg)
{
	ssize_t w;

	if (n->fd < 0)
		return 0;
	do
		w = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)n->addr,
			   (socklen_t)n->addrlen);
	while (w < 0 && errno == EINTR);
	return w < 0 ? TM_EIO : 0;
}

void tm_notify_close(struct tm_notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

/* ------------------------------------------------------------- the loop */

struct daemon {
	struct tm_config **cfg;
	const char *root;
	sigset_t sigs; /* TERM INT HUP USR1: taken with sigtimedwait */
	struct tm_notify notify;
	uint64_t rng;
	int log_override;          /* -v/-q given: a reload keeps the level */
	int ready;                 /* READY=1 sent */
	unsigned failures;         /* consecutive unreachable-source passes */
	int64_t last_drift_ms;     /* -1: never */
	int64_t report_not_before; /* monotonic ms: at most one report turn a second */
	struct tm_pass_memo memo;
	int have_memo;
	int64_t memo_ms;
	/* watchdog */
	uint64_t wd_usec;
	int wd_running;
	pthread_t wd_thread;
	pthread_mutex_t wd_mu;
	pthread_cond_t wd_cv;
	int wd_quit;
	int64_t deadline_ms;       /* under wd_mu: the loop checks in before this */
	int64_t hard_ms;           /* under wd_mu: ... or before this while bytes arrive */
	const char *deadline_what; /* under wd_mu: "a pass" or "the wait" */
#ifdef TM_TEST_HOOKS
	const char *hang_file;
#endif
};

static uint32_t rnd32(struct daemon *d)
{
	/* xorshift64*, seeded from getrandom: only spreads waits, no secrets */
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (uint32_t)((d->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void set_deadline(struct daemon *d, int64_t at, int64_t hard, const char *what)
{
	if (!d->wd_running)
		return;
	pthread_mutex_lock(&d->wd_mu);
	d->deadline_ms = at;
	d->hard_ms = hard;
	d->deadline_what = what;
	pthread_mutex_unlock(&d->wd_mu);
}

/* Bytes this process has moved through read() and write() so far (all
 * threads): /proc/self/io rchar + wchar, or 0 without I/O accounting. A
 * fetch shows up in wchar (the pack is written as it arrives; curl's recv()
 * is not counted in rchar); a hung pass moves nothing but this very read. */
static uint64_t io_bytes(void)
{
	char buf[512], *p;
	unsigned long long r = 0, w = 0;
	FILE *f = fopen("/proc/self/io", "re");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strstr(buf, "rchar: ")))
		r = strtoull(p + 7, NULL, 10);
	if ((p = strstr(buf, "wchar: ")))
		w = strtoull(p + 7, NULL, 10);
	return (uint64_t)(r + w);
}

static void *watchdog_main(void *arg)
{
	struct daemon *d = arg;
	uint64_t period_ms = d->wd_usec / 2000 ? d->wd_usec / 2000 : 1;
	/* the I/O rate is taken over the last 10-20 s: [w0, now], w1 the turn */
	int64_t w0_t = tm_time_mono_ms(), w1_t = w0_t;
	uint64_t w0_b = io_bytes(), w1_b = w0_b;
	int stuck = 0, extended = 0;

	pthread_mutex_lock(&d->wd_mu);
	while (!d->wd_quit) {
		struct timespec ts;
		int64_t now = tm_time_mono_ms();
		uint64_t b = d->hard_ms ? io_bytes() : w1_b; /* only in a pass */

		if (now - w1_t >= TM_DAEMON_IO_WINDOW_MS) {
			w0_t = w1_t;
			w0_b = w1_b;
			w1_t = now;
			w1_b = b;
		}
		if (tm_daemon_alive(now, d->deadline_ms, d->hard_ms, b - w0_b,
				    (uint64_t)(now - w0_t))) {
			if (now >= d->deadline_ms && !extended)
				tm_log_info("watchdog: %s is past its bound but still doing I/O; "
					    "pinging on "
					    "(at most %" PRId64 " s more)",
					    d->deadline_what, (d->hard_ms - now) / 1000);
			extended = now >= d->deadline_ms;
			tm_notify_send(&d->notify, "WATCHDOG=1");
			stuck = 0;
		} else if (!stuck) {
			tm_log_error("watchdog: %s has run %" PRId64
				     " ms past its bound; pings stopped so the "
				     "supervisor restarts tagmoor",
				     d->deadline_what, now - d->deadline_ms);
			stuck = 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(period_ms / 1000);
		ts.tv_nsec += (long)(period_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!d->wd_quit && pthread_cond_timedwait(&d->wd_cv, &d->wd_mu, &ts) == EINTR)
			;
	}
	pthread_mutex_unlock(&d->wd_mu);
	return NULL;
}

static int watchdog_start(struct daemon *d)
{
	pthread_condattr_t ca;

	if (!d->wd_usec || d->notify.fd < 0)
		return 0;
	pthread_mutex_init(&d->wd_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wd_cv, &ca);
	pthread_condattr_destroy(&ca);
	d->deadline_ms = tm_time_mono_ms() + (int64_t)tm_daemon_pass_bound_ms(*d->cfg);
	d->hard_ms = tm_time_mono_ms() + (int64_t)tm_daemon_pass_hard_ms(*d->cfg);
	d->deadline_what = "the first pass";
	d->wd_running = 1;
	/* the thread inherits the blocked signal mask: signals stay the loop's */
	if (pthread_create(&d->wd_thread, NULL, watchdog_main, d) != 0) {
		d->wd_running = 0;
		pthread_cond_destroy(&d->wd_cv);
		pthread_mutex_destroy(&d->wd_mu);
		return tm_error_set(TM_ERROR, "watchdog thread: %s", strerror(errno));
	}
	tm_log_info("systemd watchdog: a ping every %" PRIu64 " ms while the loop is alive",
		    d->wd_usec / 2000);
	return 0;
}

static void watchdog_stop(struct daemon *d)
{
	if (!d->wd_running)
		return;
	pthread_mutex_lock(&d->wd_mu);
	d->wd_quit = 1;
	pthread_cond_signal(&d->wd_cv);
	pthread_mutex_unlock(&d->wd_mu);
	pthread_join(d->wd_thread, NULL);
	pthread_cond_destroy(&d->wd_cv);
	pthread_mutex_destroy(&d->wd_mu);
	d->wd_running = 0;
}

static void notifyf(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void notifyf(struct daemon *d, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (d->notify.fd < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (tm_notify_send(&d->notify, msg) < 0)
		tm_log_debug("NOTIFY_SOCKET: send: %s", strerror(errno));
}

#ifdef TM_TEST_HOOKS
/* Test builds only (cmake -DTM_TEST_HOOKS=ON): while the file named by
 * $TAGMOOR_TEST_HANG exists, a pass that reaches a safe point hangs there,
 * holding the lock, deaf to signals: a stuck pass for the watchdog tests. */
static void test_hang(struct daemon *d)
{
	struct timespec ts = { 0, 20 * 1000000 };

	if (!d->hang_file || access(d->hang_file, F_OK) != 0)
		return;
	tm_log_warn("test hook: %s exists; the pass hangs until it is removed", d->hang_file);
	while (access(d->hang_file, F_OK) == 0)
		nanosleep(&ts, NULL);
	tm_log_warn("test hook: %s removed; the pass goes on", d->hang_file);
}
#endif

/* Whether SIGTERM or SIGINT is waiting (they are blocked: nothing races). */
static int stop_pending(void)
{
	sigset_t pend;

	if (sigpending(&pend) < 0)
		return 0;
	return sigismember(&pend, SIGTERM) == 1 || sigismember(&pend, SIGINT) == 1;
}

/* pass.stop: asked at the pass's safe points. */
static int stop_requested(void *arg)
{
#ifdef TM_TEST_HOOKS
	test_hang(arg);
#else
	(void)arg;
#endif
	return stop_pending();
}

/* Waits until `until` (monotonic ms) or a signal; the signal or 0. */
static int wait_signal(struct daemon *d, int64_t until)
{
	for (;;) {
		int64_t left = until - tm_time_mono_ms();
		struct timespec ts;
		int s;

		if (left < 0)
			left = 0;
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000;
		s = sigtimedwait(&d->sigs, NULL, &ts);
		if (s > 0)
			return s;
		if (errno == EAGAIN && tm_time_mono_ms() >= until)
			return 0;
		/* EINTR (a stop/continue), or an early EAGAIN: wait on */
	}
}

static void fmt_ms(char *out, size_t n, uint64_t ms)
{
	if (ms < 10000)
		snprintf(out, n, "%" PRIu64 " ms", ms);
	else if (ms < 600000)
		snprintf(out, n, "%" PRIu64 " s", ms / 1000);
	else
		snprintf(out, n, "%" PRIu64 " min", ms / 60000);
}

/* The message of the pass's last verify error (the refusal), or "". */
static const char *verify_reason(const struct tm_pass *p)
{
	for (size_t i = p->nerrors; i > 0; i--)
		if (strcmp(p->errors[i - 1].stage, "verify") == 0)
			return p->errors[i - 1].message;
	return p->have_verdict ? p->verdict.reason : "";
}

static void remember(struct daemon *d, const struct tm_pass *p, int r, int64_t now)
{
	if (r == TM_EVERIFY && p->moved && p->oid[0] && p->state &&
	    (strcmp(p->state, "refused") == 0 || strcmp(p->state, "stale") == 0)) {
		snprintf(d->memo.oid, sizeof(d->memo.oid), "%s", p->oid);
		snprintf(d->memo.state, sizeof(d->memo.state), "%s", p->state);
		snprintf(d->memo.reason, sizeof(d->memo.reason), "%s", verify_reason(p));
		d->have_memo = 1;
		d->memo_ms = now;
		tm_log_info(
			"%.12s is remembered as %s: not fetched or verified again while the ref "
			"shows "
			"it (for up to 1 h, or until SIGHUP)",
			p->oid, p->state);
	} else if (d->have_memo && p->oid[0] && strcmp(p->oid, d->memo.oid) != 0) {
		d->have_memo = 0; /* the ref moved on */
	}
}

/* One pass under the state lock; *delay_ms gets the wait before the next. */
static int one_pass(struct daemon *d, uint64_t *delay_ms)
{
	const struct tm_config *cfg = *d->cfg;
	struct tm_pass pass;
	char next[32];
	int64_t now = tm_time_mono_ms();
	int fd = -1, r, memo_hit = 0;

	memset(&pass, 0, sizeof(pass));
	pass.cfg = cfg;
	pass.mode = TM_PASS_SYNC;
	pass.out = stdout;
	pass.no_drift = !(cfg->agent.drift_check_ms &&
			  (d->last_drift_ms < 0 ||
			   now - d->last_drift_ms >= (int64_t)cfg->agent.drift_check_ms));
	if (d->have_memo && now - d->memo_ms >= (int64_t)TM_DAEMON_MEMO_TTL_MS)
		d->have_memo = 0;
	pass.memo = d->have_memo ? &d->memo : NULL;
	pass.stop = stop_requested;
	pass.stop_arg = d;

	set_deadline(d, now + (int64_t)tm_daemon_pass_bound_ms(cfg),
		     now + (int64_t)tm_daemon_pass_hard_ms(cfg), "a pass");
	tm_error_clear();
	r = tm_state_lock(&fd, cfg->agent.state_dir);
	if (r == TM_ELOCKED) {
		*delay_ms = tm_daemon_jitter_ms(cfg->agent.interval_ms, cfg->agent.jitter_pct,
						rnd32(d));
		fmt_ms(next, sizeof(next), *delay_ms);
		tm_log_info("%s (a manual command?); this poll is skipped, the next in %s",
			    tm_error_last(), next);
		return r;
	}
	if (r == 0) {
		TM_FAULT("daemon.locked");
		r = tm_reconcile_pass(&pass);
		TM_FAULT("daemon.pass-done");
		tm_state_unlock(fd);
	} else {
		pass.state = "failed";
	}
	if (r == TM_ESTOPPED) {
		tm_pass_free(&pass);
		return r;
	}
	memo_hit = pass.memo && !pass.moved && strcmp(pass.oid, d->memo.oid) == 0;
	if (pass.drift_checked)
		d->last_drift_ms = now;
	remember(d, &pass, r, now);

	if (r == TM_ESOURCE || r == TM_EUNREACHABLE) { /* the source or the cluster */
		uint64_t delay;
		d->failures++;
		delay = tm_daemon_backoff_ms(cfg->agent.interval_ms, d->failures);
		*delay_ms = tm_daemon_backoff_jitter_ms(delay, rnd32(d));
		fmt_ms(next, sizeof(next), *delay_ms);
		tm_log_warn("%s; attempt %u failed, backing off: next attempt in %s",
			    tm_error_last(), d->failures, next);
	} else {
		if (d->failures)
			tm_log_info("reachable again after %u failed attempt(s)", d->failures);
		d->failures = 0;
		*delay_ms = tm_daemon_jitter_ms(cfg->agent.interval_ms, cfg->agent.jitter_pct,
						rnd32(d));
		fmt_ms(next, sizeof(next), *delay_ms);
		if (r < 0 && memo_hit)
			tm_log_warn("%s (remembered; not fetched again)", tm_error_last());
		else if (r < 0)
			tm_log_error("%s", tm_error_last());
		tm_log_debug("pass done (%s); next poll in %s", pass.state ? pass.state : "-",
			     next);
	}
	notifyf(d, "%sSTATUS=%s; applied %.12s; %s at %.12s; next poll in %s",
		d->ready ? "" : "READY=1\n", pass.state ? pass.state : "failed",
		pass.applied_commit[0] ? pass.applied_commit : "none", cfg->source.ref,
		pass.oid[0] ? pass.oid : "?", next);
	if (!d->ready)
		tm_log_info("first pass done (%s); ready", pass.state ? pass.state : "failed");
	d->ready = 1;
	tm_pass_free(&pass);
	/* hand what the pass freed back: the idle RSS stays the steady one */
	tm_mcache_drop(); /* the static binary's kept blocks (core/mcache.c) */
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	return r;
}

/* Between passes: the reporter's heartbeat and the delivery of its spool
 * (report.c; nothing at all without [report] url). */
static void report_tick(struct daemon *d)
{
	const struct tm_config *cfg = *d->cfg;
	int64_t now = tm_time_mono_ms();

	if (!cfg->report.url || stop_pending())
		return;
	/* a turn that found the lock held changes no backoff: do not spin on it */
	d->report_not_before = now + 1000;
	set_deadline(d, now + (int64_t)tm_daemon_pass_bound_ms(cfg),
		     now + (int64_t)tm_daemon_pass_hard_ms(cfg), "a report delivery");
	TM_FAULT("daemon.before-report-tick");
	tm_report_tick(cfg, (int64_t)time(NULL));
	tm_error_clear();
}

/* SIGHUP: a new configuration, or the old one with the error logged. */
static int reload(struct daemon *d)
{
	struct tm_config_env env = { .root = d->root };
	struct tm_config *ncfg = NULL;
	struct timespec ts;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	notifyf(d, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading %s",
		(uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000, (*d->cfg)->file);
	tm_log_info("SIGHUP: re-reading %s", (*d->cfg)->file);
	if ((r = tm_config_load(&ncfg, (*d->cfg)->file, &env)) < 0) {
		tm_log_error("%s; the previous configuration stays in force", tm_error_last());
		notifyf(d,
			"READY=1\nSTATUS=configuration not reloaded "
			"(kept the previous one): %.200s",
			tm_error_last());
		return r;
	}
	tm_config_free(*d->cfg);
	*d->cfg = ncfg;
	if (!d->log_override)
		tm_log_setup(ncfg->agent.log_format, (enum tm_log_level)ncfg->agent.log_level);
	else
		tm_log_setup(ncfg->agent.log_format, tm_log_get_level());
	d->have_memo = 0;
	d->failures = 0;
	d->last_drift_ms = -1;
	tm_log_info("configuration reloaded; polling now");
	notifyf(d, "READY=1\nSTATUS=configuration reloaded");
	return 0;
}

static void daemon_init(struct daemon *d, struct tm_config **cfg, const char *root)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->root = root;
	d->last_drift_ms = -1;
	d->notify.fd = -1;
	d->log_override = tm_log_get_level() != (enum tm_log_level)(*cfg)->agent.log_level;
#ifdef TM_TEST_HOOKS
	d->hang_file = getenv("TAGMOOR_TEST_HANG");
#endif
	if (getrandom(&d->rng, sizeof(d->rng), 0) != (ssize_t)sizeof(d->rng))
		d->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	d->rng |= 1;
	sigemptyset(&d->sigs);
	sigaddset(&d->sigs, SIGTERM);
	sigaddset(&d->sigs, SIGINT);
	sigaddset(&d->sigs, SIGHUP);
	sigaddset(&d->sigs, SIGUSR1);
}

static void log_start(const struct tm_config *cfg)
{
	char iv[32], dc[32];

	fmt_ms(iv, sizeof(iv), cfg->agent.interval_ms);
	if (cfg->agent.drift_check_ms)
		fmt_ms(dc, sizeof(dc), cfg->agent.drift_check_ms);
	else
		snprintf(dc, sizeof(dc), "never");
	tm_log_info("tagmoor %s running (pid %ld): %s every %s ± %u%%, drift check %s%s",
		    TM_VERSION, (long)getpid(), cfg->source.ref, iv, cfg->agent.jitter_pct,
		    cfg->agent.drift_check_ms ? "every " : "", dc);
}

/* Passes and signals until SIGTERM/SIGINT or a pass stopped at a safe point. */
static void daemon_loop(struct daemon *d)
{
	int64_t next = tm_time_mono_ms(); /* the first pass at start */
	int r, sig;

	for (;;) {
		uint64_t delay = 0;
		int64_t wake = next, rn = tm_report_next_ms(*d->cfg);

		/* the reporter's delivery backoff may want a turn before the poll */
		if (rn >= 0) {
			int64_t t = tm_time_mono_ms() + rn;
			if (t < d->report_not_before)
				t = d->report_not_before;
			if (t < wake)
				wake = t;
		}
		set_deadline(d, wake + TM_DAEMON_PASS_MARGIN_MS, 0, "the wait between passes");
		sig = wait_signal(d, wake);
		if (sig == SIGTERM || sig == SIGINT) {
			tm_log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			return;
		}
		if (sig == SIGHUP) {
			if (reload(d) == 0)
				next = tm_time_mono_ms();
			continue;
		}
		if (sig == 0 && tm_time_mono_ms() < next) {
			report_tick(d);
			continue;
		}
		if (sig == SIGUSR1)
			tm_log_info("SIGUSR1: polling now");
		r = one_pass(d, &delay);
		if (r == TM_ESTOPPED) {
			tm_log_info("stopped during a pass, at a safe point");
			return;
		}
		next = tm_time_mono_ms() + (int64_t)delay;
		report_tick(d);
	}
}

int tm_daemon_run(struct tm_config **cfg, const char *root)
{
	struct daemon d;
	struct timespec zero = { 0, 0 };
	sigset_t old;
	void (*old_pipe)(int);
	int r;

	daemon_init(&d, cfg, root);
	if (pthread_sigmask(SIG_BLOCK, &d.sigs, &old) != 0)
		return tm_error_set(TM_ERROR, "blocking signals failed");
	/* a log reader that went away (journald restarted) must not end the
	 * daemon: writes fail with EPIPE instead (children get SIG_DFL back) */
	old_pipe = signal(SIGPIPE, SIG_IGN);

	if (tm_notify_open(&d.notify) < 0)
		tm_log_warn("%s; running without systemd notification", tm_error_last());
	d.wd_usec = tm_daemon_watchdog_usec(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
					    (long)getpid());
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if ((r = tm_git_global_init()) < 0) /* libgit2 stays initialised between passes */
		goto out;
	if (watchdog_start(&d) < 0)
		tm_log_warn("%s; running without the watchdog", tm_error_last());
	log_start(*cfg);
	daemon_loop(&d);
	r = 0;
	notifyf(&d, "STOPPING=1\nSTATUS=stopping");
out:
	watchdog_stop(&d);
	tm_notify_close(&d.notify);
	if (r == 0)
		tm_git_global_shutdown();
	/* drop what is still pending before unblocking (a second SIGTERM) */
	while (sigtimedwait(&d.sigs, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, old_pipe);
	return r;
}
