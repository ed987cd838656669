/*
 * test_daemon.c — the pure parts of the daemon (daemon.c): the backoff
 * schedule and its cap, jitter bounds, the stuck-pass bound and the
 * watchdog's verdict past it (bytes still arriving), $WATCHDOG_USEC /
 * $WATCHDOG_PID, and the notify datagram to a path socket and to an
 * abstract one (received here), inert without $NOTIFY_SOCKET. The loop
 * itself is tested through the binary (tests/integration/test_daemon*.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tagmoor/config/config.h"
#include "tagmoor/daemon/daemon.h"
#include "tagmoor/core/error.h"

#define MIN 60000u

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(tm_daemon_backoff_ms(1000, 0), 1000);
	assert_int_equal(tm_daemon_backoff_ms(1000, 1), 2000);
	assert_int_equal(tm_daemon_backoff_ms(1000, 2), 4000);
	assert_int_equal(tm_daemon_backoff_ms(1000, 3), 8000);
	/* the cap: 30 min, reached and held, no overflow after many failures */
	assert_int_equal(tm_daemon_backoff_ms(60000, 4), 16 * MIN);
	assert_int_equal(tm_daemon_backoff_ms(60000, 5), 30 * MIN); /* not 32 */
	assert_int_equal(tm_daemon_backoff_ms(60000, 5), tm_daemon_backoff_ms(60000, 6));
	assert_int_equal(tm_daemon_backoff_ms(60000, 1000000), TM_DAEMON_BACKOFF_CAP_MS);
	assert_int_equal(tm_daemon_backoff_ms(1000, 4000000000u), TM_DAEMON_BACKOFF_CAP_MS);
	/* an interval above the cap is never shortened, never exceeded */
	assert_int_equal(tm_daemon_backoff_ms(2 * 3600000u, 3), 2 * 3600000u);
	assert_int_equal(tm_daemon_backoff_ms(7 * 86400000ull, 50), 7 * 86400000ull);
}

static void test_jitter(void **state)
{
	(void)state;
	assert_int_equal(tm_daemon_jitter_ms(60000, 10, 0), 54000);
	assert_int_equal(tm_daemon_jitter_ms(60000, 10, UINT32_MAX), 66000);
	assert_int_equal(tm_daemon_jitter_ms(60000, 0, 12345), 60000);
	assert_int_equal(tm_daemon_jitter_ms(60000, 50, 0), 30000);
	for (uint32_t r = 0; r < 4000000000u; r += 99991) {
		uint64_t j = tm_daemon_jitter_ms(1000, 10, r);
		assert_true(j >= 900 && j <= 1100);
		j = tm_daemon_backoff_jitter_ms(8000, r);
		assert_true(j >= 4000 && j <= 8000);
	}
	assert_int_equal(tm_daemon_backoff_jitter_ms(8000, 0), 4000);
	assert_int_equal(tm_daemon_backoff_jitter_ms(8000, UINT32_MAX), 8000);
	/* a week (the interval cap) does not overflow */
	assert_int_equal(tm_daemon_jitter_ms(7 * 86400000ull, 50, UINT32_MAX),
			 7 * 86400000ull * 3 / 2);
	assert_int_equal(tm_daemon_backoff_jitter_ms(7 * 86400000ull, UINT32_MAX), 7 * 86400000ull);
}

static void test_pass_bound(void **state)
{
	struct tm_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.source.timeout_ms = 2000;
	assert_int_equal(tm_daemon_pass_bound_ms(&cfg), 6000 + TM_DAEMON_PASS_MARGIN_MS);
	cfg.systemd.applier.enabled = 1;
	cfg.systemd.applier.wait_ms = 1000;
	cfg.kubernetes.applier.wait_ms = 120000; /* disabled: not counted */
	assert_int_equal(tm_daemon_pass_bound_ms(&cfg), 8000 + TM_DAEMON_PASS_MARGIN_MS);
	cfg.kubernetes.applier.enabled = 1;
	assert_int_equal(tm_daemon_pass_bound_ms(&cfg), 248000 + TM_DAEMON_PASS_MARGIN_MS);
}

static void test_alive(void **state)
{
	struct tm_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.source.timeout_ms = 2000;
	cfg.source.max_fetch = 64u << 20;
	/* 64 MiB at 4 KiB/s = 16384 s past the bound */
	assert_int_equal(tm_daemon_pass_hard_ms(&cfg), tm_daemon_pass_bound_ms(&cfg) + 16384000);
	/* before the bound: alive, whatever the bytes */
	assert_int_equal(tm_daemon_alive(999, 1000, 5000, 0, 500), 1);
	/* past it: alive only while bytes arrive at the minimum rate */
	assert_int_equal(tm_daemon_alive(1000, 1000, 5000, 0, 500), 0);
	assert_int_equal(tm_daemon_alive(1000, 1000, 5000, 2047, 500), 0);
	assert_int_equal(tm_daemon_alive(1000, 1000, 5000, 2048, 500), 1);
	/* the hard limit ends it even then; no elapsed time is no evidence */
	assert_int_equal(tm_daemon_alive(5000, 1000, 5000, 1u << 30, 500), 0);
	assert_int_equal(tm_daemon_alive(2000, 1000, 5000, 1u << 30, 0), 0);
	/* the wait between passes has no hard limit (0) */
	assert_int_equal(tm_daemon_alive(2000, 1000, 0, 1u << 30, 500), 0);
}

static void test_watchdog_env(void **state)
{
	(void)state;
	assert_int_equal(tm_daemon_watchdog_usec(NULL, NULL, 42), 0);
	assert_int_equal(tm_daemon_watchdog_usec("", NULL, 42), 0);
	assert_int_equal(tm_daemon_watchdog_usec("2000000", NULL, 42), 2000000);
	assert_int_equal(tm_daemon_watchdog_usec("2000000", "42", 42), 2000000);
	assert_int_equal(tm_daemon_watchdog_usec("2000000", "43", 42), 0); /* another process's */
	assert_int_equal(tm_daemon_watchdog_usec("2000000", "42x", 42), 0);
	assert_int_equal(tm_daemon_watchdog_usec("0", NULL, 42), 0);
	assert_int_equal(tm_daemon_watchdog_usec("-5", NULL, 42), 0);
	assert_int_equal(tm_daemon_watchdog_usec("12s", NULL, 42), 0);
}

/* binds a datagram socket at name (path, or "@abstract"); returns its fd */
static int receiver(const char *name)
{
	struct sockaddr_un sa;
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		len++;
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
			 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_notify(void **state)
{
	struct tm_notify n;
	char path[64], abs[64];
	int fd;

	(void)state;
	/* without NOTIFY_SOCKET: inert, sends succeed and do nothing */
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(tm_notify_open(&n), 0);
	assert_int_equal(n.fd, -1);
	assert_int_equal(tm_notify_send(&n, "READY=1"), 0);
	tm_notify_close(&n);

	/* a path socket; the variable is gone afterwards (children never see it) */
	snprintf(path, sizeof(path), "/tmp/tm-notify-%ld.sock", (long)getpid());
	unlink(path);
	fd = receiver(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(tm_notify_open(&n), 0);
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(tm_notify_send(&n, "READY=1\nSTATUS=synced"), 0);
	expect_datagram(fd, "READY=1\nSTATUS=synced");
	tm_notify_close(&n);
	close(fd);
	unlink(path);

	/* an abstract socket */
	snprintf(abs, sizeof(abs), "@tm-notify-test-%ld", (long)getpid());
	fd = receiver(abs);
	setenv("NOTIFY_SOCKET", abs, 1);
	assert_int_equal(tm_notify_open(&n), 0);
	assert_int_equal(tm_notify_send(&n, "WATCHDOG=1"), 0);
	expect_datagram(fd, "WATCHDOG=1");
	tm_notify_close(&n);
	close(fd);

	/* nobody listening: an error, not a crash */
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(tm_notify_open(&n), 0);
	assert_int_equal(tm_notify_send(&n, "READY=1"), TM_EIO);
	tm_notify_close(&n);

	/* not a socket name: refused with a message, inert */
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(tm_notify_open(&n), TM_EUSAGE);
	assert_non_null(strstr(tm_error_last(), "NOTIFY_SOCKET"));
	assert_int_equal(n.fd, -1);
	assert_int_equal(tm_notify_send(&n, "READY=1"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),      cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_pass_bound),   cmocka_unit_test(test_alive),
		cmocka_unit_test(test_watchdog_env), cmocka_unit_test(test_notify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
