/*
 * daemon.h — `tagmoor run`: the loop around the reconcile pass. It only
 * decides *when* a pass runs (interval, jitter, backoff, drift schedule,
 * signals) and tells a supervisor how it is doing (the systemd notify
 * protocol, the watchdog). The pass itself is reconcile's (reconcile.h).
 *
 * The small pure pieces are exported for the unit tests.
 */
#ifndef TAGMOOR_DAEMON_H
#define TAGMOOR_DAEMON_H

#include <stddef.h>
#include <stdint.h>

struct tm_config;

/* The backoff cap: a device never waits longer than this between attempts
 * while the source is unreachable (unless interval itself is longer). */
#define TM_DAEMON_BACKOFF_CAP_MS (30u * 60 * 1000)

/* A refused or stale revision is remembered (not fetched again while the
 * ref shows it) for at most this long; then it is verified once more (a key
 * that becomes valid, a clock that was set). */
#define TM_DAEMON_MEMO_TTL_MS (60u * 60 * 1000)

/*
 * Runs the daemon until SIGTERM/SIGINT. *cfg is the loaded configuration
 * (from config_path, with --root `root`); on SIGHUP a new one replaces it
 * (the caller frees whatever *cfg is at the end). Returns 0 when stopped by
 * a signal, or a negative TM_E* code when the daemon cannot start.
 */
int tm_daemon_run(struct tm_config **cfg, const char *root);

/* The wait after `failures` consecutive unreachable-source passes, before
 * jitter: interval for 0, else min(interval * 2^failures, max(interval,
 * TM_DAEMON_BACKOFF_CAP_MS)). */
uint64_t tm_daemon_backoff_ms(uint64_t interval_ms, unsigned failures);

/* A wait spread by jitter: base * (1 + (2u - 1) * pct / 100) for u in
 * [0, 1) taken from rnd (uniform 32-bit). */
uint64_t tm_daemon_jitter_ms(uint64_t base_ms, unsigned pct, uint32_t rnd);

/* A backoff wait spread over [delay/2, delay] (full jitter on the upper
 * half, so a fleet that lost its server together does not come back
 * together). */
uint64_t tm_daemon_backoff_jitter_ms(uint64_t delay_ms, uint32_t rnd);

/* How long one pass may take before the watchdog treats it as stuck: the
 * source timeout three times over (advertisement, fetch, slack), the
 * enabled appliers' wait values, and TM_DAEMON_PASS_MARGIN_MS. */
#define TM_DAEMON_PASS_MARGIN_MS 15000u
uint64_t tm_daemon_pass_bound_ms(const struct tm_config *cfg);

/* Past its bound a pass is still alive while it moves at least this many
 * bytes per second through read()/write() (a large fetch over a slow link
 * writes its pack as it arrives), up to the hard limit: the bound plus
 * max_fetch at that rate. */
#define TM_DAEMON_MIN_RATE 4096u
#define TM_DAEMON_IO_WINDOW_MS 10000 /* the rate is taken over the last 10-20 s */
uint64_t tm_daemon_pass_hard_ms(const struct tm_config *cfg);
/* The watchdog's verdict at `now` (monotonic ms): before bound_at, alive;
 * before hard_at, alive when `bytes` were moved in the last `elapsed_ms`
 * at TM_DAEMON_MIN_RATE or more; else stuck. */
int tm_daemon_alive(int64_t now, int64_t bound_at, int64_t hard_at, uint64_t bytes,
		    uint64_t elapsed_ms);

/*
 * The systemd notify protocol (one datagram, no libsystemd).
 * tm_notify_open reads $NOTIFY_SOCKET ("/path" or "@abstract") and opens a
 * datagram socket for it; without the variable the notifier is inert and
 * every send is a no-op returning 0. The variable is removed from the
 * environment (children never see it).
 */
struct tm_notify {
	int fd; /* -1: inert */
	size_t addrlen;
	unsigned char addr[128]; /* struct sockaddr_un */
};

int tm_notify_open(struct tm_notify *n);
/* Sends msg (e.g. "READY=1\nSTATUS=…"); 0 or TM_EIO. Thread-safe. */
int tm_notify_send(const struct tm_notify *n, const char *msg);
void tm_notify_close(struct tm_notify *n);

/* The watchdog interval in microseconds from $WATCHDOG_USEC when it is
 * meant for this process ($WATCHDOG_PID absent or equal to pid), else 0. */
uint64_t tm_daemon_watchdog_usec(const char *usec, const char *wpid, long pid);

#endif
