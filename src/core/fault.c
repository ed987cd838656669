/*
 * fault.c — the fault points of test builds (include/tagmoor/core/fault.h).
 *
 * Only compiled into something when TM_TEST_HOOKS is defined
 * (cmake -DTM_TEST_HOOKS=ON); a shipped build gets an empty translation
 * unit. The environment is read once, at the first point reached. The kill
 * is a real SIGKILL of the process itself: nothing is flushed, no clean-up
 * runs, exactly as with kill -9 or a crash at that instant (a power cut also
 * loses what the kernel had not written; the nspawn test covers that).
 */
#include "tagmoor/core/fault.h"

#ifdef TM_TEST_HOOKS
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int loaded;
static char want[128];
static char action[16] = "kill";
static unsigned long nth = 1, hits;
static const char *trace;

static void load(void)
{
	const char *s = getenv("TAGMOOR_FAULT");
	size_t n;

	loaded = 1;
	trace = getenv("TAGMOOR_FAULT_TRACE");
	if (!s || !*s)
		return;
	n = strcspn(s, "@:");
	if (n >= sizeof(want))
		n = sizeof(want) - 1;
	memcpy(want, s, n);
	want[n] = '\0';
	s += n;
	if (*s == '@') {
		char *end;
		nth = strtoul(s + 1, &end, 10);
		if (!nth)
			nth = 1;
		s = end;
	}
	if (*s == ':' && strlen(s + 1) < sizeof(action))
		memcpy(action, s + 1, strlen(s + 1) + 1);
}

static void trace_point(const char *name)
{
	int fd;
	size_t len = strlen(name);

	if (!trace)
		return;
	fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	/* one write per line: lines of concurrent processes do not interleave.
	 * The sandboxed fetcher child (privsep) cannot open the file: its
	 * points go to stderr as "tm-fault-trace: NAME" (the harness reads both) */
	{
		char line[180];
		size_t off = 0;
		if (fd < 0) {
			memcpy(line, "tm-fault-trace: ", 16);
			off = 16;
		}
		if (len > sizeof(line) - off - 2)
			len = sizeof(line) - off - 2;
		memcpy(line + off, name, len);
		line[off + len] = '\n';
		while (write(fd >= 0 ? fd : 2, line, off + len + 1) < 0 && errno == EINTR)
			;
	}
	if (fd >= 0)
		close(fd);
}

void tm_fault_point(const char *tagged_name)
{
	const char *name = tagged_name + sizeof(TM_FAULT_PREFIX) - 1;

	if (!loaded)
		load();
	trace_point(name);
	if (!want[0] || strcmp(name, want) != 0 || ++hits != nth)
		return;
	if (strcmp(action, "exit") == 0)
		_exit(86);
	if (strcmp(action, "stop") == 0) {
		raise(SIGSTOP);
		return;
	}
	raise(SIGKILL);
	for (;;)
		pause();
}

int64_t tm_fault_time(int64_t now)
{
	const char *s = getenv("TAGMOOR_TEST_CLOCK_OFFSET");

	return s && *s ? now + strtoll(s, NULL, 10) : now;
}
#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int tm_fault_disabled;
#endif
