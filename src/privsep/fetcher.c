/*
 * fetcher.c — the fetcher child of every poll (include/tagmoor/privsep/fetcher.h).
 *
 * The parent forks, the child closes every descriptor but stdin, stdout,
 * stderr, the write end of a pipe and a memfd the parent made, takes the default
 * action for the stop signals again (so that stopping the service ends it), enters
 * the sandbox and runs the job. Its message goes into the memfd, written in place,
 * and its size through the pipe (the message itself through the pipe where there is
 * no memfd); the parent reads at most tm_fetcher_max_message bytes before the
 * deadline, reaps the child (SIGKILL at the deadline) and only then seals the memfd
 * against any change, checks its size and decodes it, mapped, not copied.
 */
#define _GNU_SOURCE
#include "tagmoor/privsep/fetcher.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ftw.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MIB (1024ull * 1024)

void tm_fetcher_describe(char *out, size_t outlen, const struct tm_sandbox *sb)
{
	char who[160], ll[32];

	if (sb->drop)
		snprintf(who, sizeof(who), "as %s (uid %lu)", sb->user, (unsigned long)sb->uid);
	else if (geteuid() == 0)
		snprintf(who, sizeof(who), "as uid 0 (%s)", sb->note ? sb->note : "root");
	else
		snprintf(who, sizeof(who), "as uid %lu (not root)", (unsigned long)geteuid());
	if (sb->landlock_abi > 0)
		snprintf(ll, sizeof(ll), "Landlock ABI %d", sb->landlock_abi);
	else if (sb->mountns)
		snprintf(ll, sizeof(ll), "a private mount namespace");
	else
		snprintf(ll, sizeof(ll), "no Landlock");
	snprintf(out, outlen,
		 "privilege separation: the fetcher child runs %s, without capabilities, %s, %s",
		 who, ll,
		 tm_sandbox_have_seccomp() ? "a seccomp filter" : "no seccomp filter (arch)");
}

uint64_t tm_fetcher_deadline_ms(const struct tm_config *cfg)
{
	uint64_t t = cfg->source.timeout_ms ? cfg->source.timeout_ms : 60000;
#ifdef TM_TEST_HOOKS
	const char *d = getenv("TAGMOOR_TEST_FETCHER_DEADLINE_MS");
	if (d && *d)
		return strtoull(d, NULL, 10);
#endif
	return t * 5 > 600000 ? t * 5 : 600000;
}

size_t tm_fetcher_max_message(const struct tm_config *cfg)
{
	/* three sets (new, applied, last good), each at most the appliers' totals */
	uint64_t kube = cfg->kubernetes.max_total ? cfg->kubernetes.max_total : 64 * MIB;
	uint64_t per = kube + 64 * MIB + 16 * MIB;
	uint64_t m = 3 * per + MIB;
	return m > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)m;
}

int tm_fetcher_sandbox(struct tm_sandbox *sb, const struct tm_config *cfg)
{
	static char repo[4096];
	int r = tm_sandbox_prepare(sb, cfg->agent.user, cfg->agent.user == NULL);

	if (r < 0)
		return r;
	snprintf(repo, sizeof(repo), "%s/repo.git", cfg->agent.state_dir);
	sb->rw[sb->nrw++] = repo;
	sb->ro[sb->nro++] = cfg->source.ca_file;
	sb->ro[sb->nro++] = cfg->source.token_file;
	sb->ro[sb->nro++] = cfg->verify.allowed_signers;
	sb->ro[sb->nro++] = cfg->verify.openpgp_keyring;
#ifdef TM_TEST_HOOKS
	{
		/* test builds: fault points reached in the child are traced too */
		const char *trace = getenv("TAGMOOR_FAULT_TRACE");
		int fd = trace && *trace
				 ? open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666)
				 : -1;
		if (fd >= 0) {
			fchmod(fd, 0666);
			close(fd);
			sb->rw[sb->nrw++] = trace;
		}
	}
#endif
	sb->nofile = 256;
	sb->cpu_s = tm_fetcher_deadline_ms(cfg) / 1000;
#if !defined(__SANITIZE_ADDRESS__) && !defined(TM_NO_RLIMIT_AS)
	/* the fetch (max_fetch and what its pack may inflate to), the plan inputs
	 * and the message, with room for libc's and libgit2's mappings */
	sb->as_bytes = (uint64_t)2048 * MIB +
		       8 * (cfg->source.max_fetch ? cfg->source.max_fetch : 64 * MIB);
	if (sizeof(void *) == 4 && sb->as_bytes > 3000 * MIB)
		sb->as_bytes = 0; /* 32-bit: the address space is the bound */
#endif
	return 0;
}

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return lchown(path, chown_uid, chown_gid);
}

int tm_fetcher_prepare_repo(const char *repo_dir, const struct tm_sandbox *sb)
{
	struct stat st;

	if (lstat(repo_dir, &st) < 0) {
		if (errno != ENOENT)
			return tm_error_set(TM_EIO, "%s: %s", repo_dir, strerror(errno));
		/* the state directory too, as a first run finds it missing: private
		 * as state.c makes it (search permission for the user is added below) */
		char parent[4096];
		char *slash;
		int r;
		snprintf(parent, sizeof(parent), "%s", repo_dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if ((r = tm_file_mkdirs(parent, 0700)) < 0)
				return r;
		}
		if ((r = tm_file_mkdirs(repo_dir, 0755)) < 0)
			return r;
		if (lstat(repo_dir, &st) < 0)
			return tm_error_set(TM_EIO, "%s: %s", repo_dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return 0; /* the child's open reports it (and rebuilds what it may) */
	if (sb->drop) {
		/* the child passes through the state directory (search only: it
		 * cannot list it or open state.json, floor or the spool) */
		char parent[4096];
		struct stat ps;
		char *slash;
		snprintf(parent, sizeof(parent), "%s", repo_dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		if (stat(parent, &ps) == 0 && !(ps.st_mode & S_IXOTH) &&
		    !(ps.st_gid == sb->gid && (ps.st_mode & S_IXGRP))) {
			if (chmod(parent, (ps.st_mode & 07777) | S_IXOTH) < 0)
				return tm_error_set(TM_EIO, "%s: %s", parent, strerror(errno));
			tm_log_info("%s: search permission for others, so that the [agent] user %s "
				    "reaches repo.git",
				    parent, sb->user);
		}
	}
	if (!sb->drop || (st.st_uid == sb->uid && st.st_gid == sb->gid))
		return 0;
	/* once (a repository root wrote before, or a changed user): the whole tree */
	chown_uid = sb->uid;
	chown_gid = sb->gid;
	if (nftw(repo_dir, chown_one, 16, FTW_PHYS) != 0)
		return tm_error_set(TM_EIO, "%s: giving it to the [agent] user %s: %s", repo_dir,
				    sb->user, strerror(errno));
	tm_log_info("%s now belongs to the [agent] user %s", repo_dir, sb->user);
	return 0;
}

/* --- the child ----------------------------------------------------------- */

/* Closes every descriptor above last. */
static void close_others(int last)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)last + 1, ~0u, 0u) == 0)
		return;
#endif
	for (int fd = last + 1; fd < 4096; fd++)
		close(fd);
}

#ifdef TM_TEST_HOOKS
/* Test builds only: TAGMOOR_TEST_FETCHER=execve|open:PATH|write:DIR makes the
 * sandboxed child try something it must not, crash|garbage|hold:FILE makes it
 * crash, send a malformed message, or hang while FILE exists (and pipe makes it send
 * its message through the pipe, as where there is no memfd: send_message)
 * (tests/integration/test_privsep.sh; TAGMOOR_TEST_FETCHER_DEADLINE_MS shortens
 * the parent's deadline). */
static void test_escape(int wfd)
{
	const char *t = getenv("TAGMOOR_TEST_FETCHER");
	int fd;

	if (!t)
		return;
	if (strcmp(t, "execve") == 0) {
		char *const argv[] = { "/bin/sh", "-c", "echo escaped", NULL };
		execve("/bin/sh", argv, environ);
		tm_log_error("test hook: execve was denied: %s", strerror(errno));
		_exit(71);
	}
	if (strncmp(t, "open:", 5) == 0) {
		fd = open(t + 5, O_RDONLY | O_CLOEXEC);
		tm_log_error("test hook: open %s: %s", t + 5, fd < 0 ? strerror(errno) : "allowed");
		_exit(fd < 0 ? 72 : 73);
	}
	if (strncmp(t, "write:", 6) == 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/escaped.service", t + 6);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0 && write(fd, "[Unit]\n", 7) == 7)
			tm_log_error("test hook: wrote %s", path);
		else
			tm_log_error("test hook: writing %s: %s", path, strerror(errno));
		_exit(fd < 0 ? 74 : 75);
	}
	if (strcmp(t, "crash") == 0)
		raise(SIGSEGV);
	if (strcmp(t, "garbage") == 0) {
		static const char junk[] = "TMFETCH2\xff\xff\xff\x7fnot a message";
		_exit(write(wfd, junk, sizeof(junk) - 1) < 0 ? 76 : 0);
	}
	if (strncmp(t, "hold:", 5) == 0) {
		/* a slow step the test can sample /proc during */
		struct timespec ts = { 0, 50 * 1000000 };
		while (access(t + 5, F_OK) == 0)
			nanosleep(&ts, NULL);
	}
}
#endif

#ifdef TM_TEST_HOOKS
/* Test builds only: TAGMOOR_TEST_FORGE=verdict|file|drop|absent|object makes the
 * child lie as a compromised one would, after its honest job: call a refused
 * revision accepted, change a file's body, leave out a file, call a directory
 * absent, change the tag object it read. The parent must see through each
 * (tests/integration/test_privsep_forged.sh). */
static struct tm_msg_dir *forge_dir(struct tm_msg *m)
{
	for (size_t i = 0; i < m->nsets; i++)
		for (size_t j = 0; j < m->sets[i].ndirs; j++)
			if (m->sets[i].dirs[j].nfiles && m->sets[i].dirs[j].files[0].data)
				return &m->sets[i].dirs[j];
	return NULL;
}

static void test_forge(struct tm_msg *m)
{
	const char *t = getenv("TAGMOOR_TEST_FORGE");
	struct tm_msg_dir *d = forge_dir(m);

	if (!t)
		return;
	if (strcmp(t, "verdict") == 0 && m->have_verdict) {
		m->verdict.outcome = TM_VERIFY_ACCEPTED;
		m->verdict.reason[0] = '\0';
	} else if (strcmp(t, "file") == 0 && d) {
		((char *)d->files[0].data)[0] ^= 0x20;
	} else if (strcmp(t, "drop") == 0 && d) {
		d->nfiles--;
	} else if (strcmp(t, "absent") == 0 && d) {
		d->status = TM_ENOTFOUND;
		d->error = "no such directory";
		d->nfiles = 0;
	} else if (strcmp(t, "object") == 0 && m->nobjs) {
		char *copy = malloc(m->objs[0].len + 1);
		if (copy) {
			memcpy(copy, m->objs[0].data, m->objs[0].len + 1);
			copy[m->objs[0].len / 2] ^= 1;
			m->objs[0].data = copy;
		}
	} else {
		return;
	}
	tm_log_warn("test hook: the fetcher forges its message (%s)", t);
}
#endif

#ifdef TM_TEST_HOOKS
/* Test builds only: TAGMOOR_TEST_FORGE=memfd-size|memfd-over|memfd-seal makes the child
 * announce a size its memfd does not have, a size over any limit, or seal the memfd against
 * the parent's seals (tests/integration/test_privsep_forged.sh). The size to announce. */
static uint64_t test_forge_memfd(int mfd, uint64_t size)
{
	const char *t = getenv("TAGMOOR_TEST_FORGE");

	if (!t || strncmp(t, "memfd-", 6) != 0)
		return size;
	tm_log_warn("test hook: the fetcher forges its message (%s)", t);
	if (strcmp(t, "memfd-size") == 0)
		return size - 1;
	if (strcmp(t, "memfd-over") == 0)
		return (uint64_t)1 << 40;
	if (strcmp(t, "memfd-seal") == 0)
		(void)fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL);
	return size;
}
#endif

/* The message into the parent's memfd, written in place, and its size through the pipe: a
 * message of megabytes copied through a pipe is a kernel copy on each side, the costliest part
 * of sending it. Through the pipe itself when there is no memfd or it cannot be written. */
#define MEMFD_WINDOW ((size_t)1 << 20) /* a multiple of the page size */

static int send_message(int wfd, int mfd, const struct tm_msg_parts *out)
{
	uint64_t size = (uint64_t)out->head.len + out->total;
	unsigned char mark[TM_MSG_MEMFD_MARK];
	size_t done = 0;
	void *p;

#ifdef TM_TEST_HOOKS
	if (getenv("TAGMOOR_TEST_FETCHER") && strcmp(getenv("TAGMOOR_TEST_FETCHER"), "pipe") == 0) {
		tm_log_warn("test hook: the fetcher's message through the pipe");
		mfd = -1;
	}
#endif
	if (mfd < 0 || size > SIZE_MAX / 2 || ftruncate(mfd, (off_t)size) < 0)
		return tm_msg_write_parts(wfd, out);
	/* a window of the memfd mapped at a time: its pages are not the child's too at once */
	for (uint64_t at = 0; at < size; at += MEMFD_WINDOW) {
		size_t n = size - at < MEMFD_WINDOW ? (size_t)(size - at) : MEMFD_WINDOW;

		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, (off_t)at);
		if (p == MAP_FAILED) {
			(void)ftruncate(mfd, 0);
			return tm_msg_write_parts(wfd, out);
		}
		tm_mem_populate(p, n);
		tm_msg_copy_parts(p, out, at, n);
		munmap(p, n);
	}
#ifdef TM_TEST_HOOKS
	size = test_forge_memfd(mfd, size);
#endif
	memcpy(mark, TM_MSG_MEMFD_MAGIC, 8);
	for (int i = 0; i < 8; i++)
		mark[8 + i] = (unsigned char)(size >> (8 * i));
	while (done < sizeof(mark)) {
		ssize_t w = write(wfd, mark + done, sizeof(mark) - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* The child ends with the process that forked it: a tagmoor killed in the middle of a fetch
 * (SIGKILL, the OOM killer) must not leave a child writing to repo.git while the next tagmoor
 * clears that store's locks and fetches into it. Set again after the sandbox changes the uid
 * (a credential change clears it); a parent already gone ends the child here. */
static void die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(70);
}

static void child(int wfd, int mfd, const struct tm_config *cfg, const struct tm_sandbox *sb,
		  int (*job)(void *arg, struct tm_msg *msg), void *arg, pid_t parent)
{
	struct tm_msg m;
	struct tm_msg_parts out;
	sigset_t all;
	int r;

	/* the stop signals end the child (the service stopping), as any crash would */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	/* SIGPIPE stays as the parent has it (the daemon ignores it: a log
	 * reader that went away must not end the poll) */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	die_with_parent(parent);
	/* the pipe at 3, the memfd (when there is one) at 4; both moved out of the way first */
	wfd = fcntl(wfd, F_DUPFD, 10);
	mfd = mfd >= 0 ? fcntl(mfd, F_DUPFD, 10) : -1;
	if (wfd < 0 || dup2(wfd, 3) < 0 || (mfd >= 0 && dup2(mfd, 4) < 0))
		_exit(70);
	wfd = 3;
	mfd = mfd >= 0 ? 4 : -1;
	close_others(mfd >= 0 ? 4 : 3);
	memset(&m, 0, sizeof(m));
	m.oid = "";
	r = tm_sandbox_enter(sb);
	die_with_parent(parent);
	if (r < 0) {
		m.status = TM_ESOURCE;
		m.error = tm_error_last();
	} else {
#ifdef TM_TEST_HOOKS
		test_escape(wfd);
#endif
		r = job(arg, &m);
		if (r < 0 && m.status == 0) {
			m.status = r;
			m.error = tm_error_last();
		}
#ifdef TM_TEST_HOOKS
		test_forge(&m);
#endif
	}
	/* the file bodies go to the pipe from where they were read, not through one buffer */
	if (tm_msg_encode_parts(&out, &m, tm_fetcher_max_message(cfg)) < 0) {
		struct tm_msg e;
		memset(&e, 0, sizeof(e));
		e.status = TM_ELIMIT;
		e.error = tm_error_last();
		e.oid = "";
		tm_msg_parts_free(&out);
		if (tm_msg_encode_parts(&out, &e, tm_fetcher_max_message(cfg)) < 0)
			_exit(70);
	}
	_exit(send_message(wfd, mfd, &out) < 0 ? 70 : 0);
}

/* --- the parent ---------------------------------------------------------- */

/* Room in raw for the next read, read into directly: the rest of the message as its header
 * gives it (one allocation for a message of megabytes), else twice what there is; never past
 * raw->max. 0 when raw is at its limit, SIZE_MAX when out of memory. */
static size_t make_room(struct tm_buf *raw)
{
	size_t want = raw->cap > 65536 ? raw->cap : 65536, room;
	int sized = 0; /* want is the rest of the message as its header gives it */

	if (raw->len >= 12 && memcmp(raw->ptr, TM_MSG_MAGIC, 8) == 0) {
		const unsigned char *h = (const unsigned char *)raw->ptr + 8;
		size_t total = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 |
			       (size_t)h[3] << 24;
		/* all of it read: only the end of the pipe is left to see (bytes past the total
		 * are the decoder's to refuse), not another buffer as large as the message */
		want = total > raw->len ? total - raw->len : 4096;
		sized = total > raw->len;
	}
	if (raw->max == 0 || raw->len >= raw->max - 1)
		return 0;
	room = raw->cap > raw->len ? raw->cap - 1 - raw->len : 0;
	if (room)
		return room;
	if (want > raw->max - 1 - raw->len)
		want = raw->max - 1 - raw->len;
	{
		char *p = realloc(raw->ptr, raw->len + want + 1);
		if (!p)
			return SIZE_MAX;
		raw->ptr = p;
		raw->cap = raw->len + want + 1;
		/* the rest of the child's message is read into it next (bounded by raw->max as
		 * the reading is); not the first 64 KiB of a poll's message of a few bytes */
		if (sized)
			tm_mem_populate(p + raw->len, want);
	}
	return want;
}

/* The child's message, until it closes the pipe: 0; 1 when the deadline passed, 2 when the
 * message is over its limit, 3 when there is no memory for it (the child is then killed). */
static int read_message(struct tm_buf *raw, int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int64_t left = deadline - tm_time_mono_ms();
		size_t room;
		char over;
		ssize_t n;
		int r;

		if (left <= 0)
			return 1;
		r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return 0;
		if (r <= 0)
			continue;
		if ((room = make_room(raw)) == SIZE_MAX)
			return 3;
		n = room ? read(fd, raw->ptr + raw->len, room) : read(fd, &over, 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return 0;
		if (!room)
			return 2;
		raw->len += (size_t)n;
		raw->ptr[raw->len] = '\0';
	}
}

static const char *signal_cause(int sig)
{
	switch (sig) {
	case SIGSYS:
		return " (a system call outside its seccomp filter)";
	case SIGKILL:
		return " (killed)";
	case SIGXCPU:
		return " (over its CPU time limit)";
	case SIGSEGV:
	case SIGBUS:
	case SIGABRT:
	case SIGILL:
	case SIGFPE:
		return " (crashed)";
	default:
		return "";
	}
}

/* The message the child left in the memfd, as out->raw announces it: the memfd sealed against
 * any change first (the child is gone and its mappings with it; the seals do not rely on that),
 * its size checked against the announced one and the limit, then mapped for the decoder. */
static int map_message(struct tm_fetcher_reply *out, int mfd, size_t max, pid_t pid)
{
	const unsigned char *h = (const unsigned char *)out->raw.ptr + 8;
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	uint64_t size = 0;
	struct stat st;
	int have;
	void *p;

	for (int i = 7; i >= 0; i--)
		size = size << 8 | h[i];
	if (size < 12 || size > max)
		return tm_error_set(
			TM_ESOURCE,
			"the fetcher (pid %ld) announced a message of %llu bytes (at most "
			"%zu)",
			(long)pid, (unsigned long long)size, max);
	if (fcntl(mfd, F_ADD_SEALS, seals) < 0 || (have = fcntl(mfd, F_GET_SEALS)) < 0 ||
	    (have & seals) != seals)
		return tm_error_set(TM_ESOURCE,
				    "the fetcher's (pid %ld) message cannot be sealed: %s",
				    (long)pid, strerror(errno));
	if (fstat(mfd, &st) < 0)
		return tm_error_set(TM_ESOURCE, "the fetcher's (pid %ld) message: fstat: %s",
				    (long)pid, strerror(errno));
	if ((uint64_t)st.st_size != size)
		return tm_error_set(TM_ESOURCE,
				    "the fetcher (pid %ld) announced a message of %llu bytes; its "
				    "memfd has %lld",
				    (long)pid, (unsigned long long)size, (long long)st.st_size);
	p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, mfd, 0);
	if (p == MAP_FAILED)
		return tm_error_set(TM_ENOMEM, "mapping the fetcher's message of %llu bytes: %s",
				    (unsigned long long)size, strerror(errno));
	out->map = p;
	out->map_len = (size_t)size;
	return 0;
}

static int run(struct tm_fetcher_reply *out, const struct tm_config *cfg,
	       const struct tm_sandbox *sb, int (*job)(void *arg, struct tm_msg *msg), void *arg,
	       int mfd)
{
	int fds[2], status = 0, timed_out = 0, over = 0, r;
	int64_t deadline = tm_time_mono_ms() + (int64_t)tm_fetcher_deadline_ms(cfg);
	size_t max = tm_fetcher_max_message(cfg);
	struct rusage ru;
	pid_t pid, w, self = getpid();

	memset(out, 0, sizeof(*out));
	tm_buf_init(&out->raw, max);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return tm_error_set(TM_ESOURCE, "fetcher: pipe: %s", strerror(errno));
	/* a message of megabytes in a few rounds, not one per 64 KiB (each a wake-up of both
	 * sides); the pipe's pages are taken as they fill. Where it is refused (an unprivileged
	 * limit below this), the default size is only slower. */
	(void)fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return tm_error_set(TM_ESOURCE, "fetcher: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		child(fds[1], mfd, cfg, sb, job, arg, self);
		_exit(70);
	}
	out->pid = pid;
	close(fds[1]);
	r = read_message(&out->raw, fds[0], deadline);
	timed_out = r == 1;
	over = r == 2 || r == 3;
	close(fds[0]);
	if (timed_out || over)
		kill(pid, SIGKILL); /* before the blocking wait below */
	/* the message is complete (or refused); the child has no more to say */
	for (;;) {
		w = wait4(pid, &status, timed_out || over ? 0 : WNOHANG, &ru);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (w == 0 && tm_time_mono_ms() >= deadline) {
			timed_out = 1;
			kill(pid, SIGKILL);
			continue;
		}
		if (w == 0) {
			struct timespec ts = { 0, 2 * 1000000 };
			nanosleep(&ts, NULL);
		}
		if (timed_out || over)
			kill(pid, SIGKILL);
	}
	if (w == pid) {
		out->child_cpu_us =
			(uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
			(uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
		out->child_maxrss_kb = (uint64_t)ru.ru_maxrss;
	}
	if (timed_out)
		return tm_error_set(TM_ESOURCE,
				    "the fetcher (pid %ld) took longer than %llu s and was killed",
				    (long)pid,
				    (unsigned long long)(tm_fetcher_deadline_ms(cfg) / 1000));
	if (r == 3)
		return tm_error_set(TM_ENOMEM,
				    "out of memory for the fetcher's message (pid %ld killed)",
				    (long)pid);
	if (over)
		return tm_error_set(TM_ESOURCE,
				    "the fetcher (pid %ld) sent more than %zu bytes; killed",
				    (long)pid, max);
	if (w == pid && WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		out->killed_signal = sig;
#ifdef TM_TEST_HOOKS
		/* a fault point's kill in the child is a power cut: the parent goes too */
		if (sig == SIGKILL && getenv("TAGMOOR_FAULT"))
			raise(SIGKILL);
#endif
		return tm_error_set(TM_ESOURCE, "the fetcher (pid %ld) was killed by signal %d%s",
				    (long)pid, sig, signal_cause(sig));
	}
	if (w == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return tm_error_set(TM_ESOURCE, "the fetcher (pid %ld) exited with status %d",
				    (long)pid, WEXITSTATUS(status));
	if (mfd >= 0 && out->raw.len == TM_MSG_MEMFD_MARK &&
	    memcmp(out->raw.ptr, TM_MSG_MEMFD_MAGIC, 8) == 0) {
		if ((r = map_message(out, mfd, max, pid)) < 0)
			return r;
		r = tm_msg_decode(&out->msg, out->map, out->map_len);
	} else {
		r = tm_msg_decode(&out->msg, out->raw.ptr, out->raw.len);
	}
	if (r < 0)
		return tm_error_wrap(TM_ESOURCE, "the fetcher (pid %ld)", (long)pid);
	return 0;
}

int tm_fetcher_run(struct tm_fetcher_reply *out, const struct tm_config *cfg,
		   const struct tm_sandbox *sb, int (*job)(void *arg, struct tm_msg *msg),
		   void *arg)
{
	/* where the child writes its message; without memfds (before Linux 3.17), the pipe */
	int mfd =
		(int)syscall(SYS_memfd_create, "tagmoor-fetcher", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int r = run(out, cfg, sb, job, arg, mfd < 0 ? -1 : mfd);

	if (mfd >= 0)
		close(mfd);
	return r;
}

void tm_fetcher_reply_free(struct tm_fetcher_reply *r)
{
	tm_msg_free(&r->msg);
	tm_buf_free(&r->raw);
	if (r->map)
		munmap((void *)r->map, r->map_len);
	memset(r, 0, sizeof(*r));
}
