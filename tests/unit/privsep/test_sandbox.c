/*
 * test_sandbox.c — the fetcher child's sandbox (privsep/sandbox.c): the
 * seccomp program as the kernel would run it (every allowed number allowed,
 * every other one of 0..1023 killed, another architecture killed, clone only
 * for threads, clone3 ENOSYS, kill EPERM), and tm_sandbox_enter for real in a
 * forked process: writing below its directory works, reading outside it is
 * refused (where the kernel has Landlock), fork and execve end it with SIGSYS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tagmoor/privsep/sandbox.h"

#define ALLOW 0x7fff0000u
#define KILL 0x80000000u
#define ERRNO(e) (0x00050000u | (uint32_t)(e))
#if defined(__x86_64__)
#define ARCH 0xc000003eu
#elif defined(__aarch64__)
#define ARCH 0xc00000b7u
#elif defined(__arm__)
#define ARCH 0x40000028u
#endif

static uint32_t action(int nr, uint64_t arg0)
{
	uint32_t a = 0;
	assert_int_equal(tm_sandbox_filter_run(ARCH, nr, arg0, &a), 0);
	return a;
}

static int allowed(int nr)
{
	const long *calls;
	size_t n = tm_sandbox_allowed_calls(&calls);
	for (size_t i = 0; i < n; i++)
		if (calls[i] == nr)
			return 1;
	return 0;
}

static void test_filter(void **state)
{
	const long *calls;
	size_t n;
	uint32_t a;

	if (!tm_sandbox_have_seccomp())
		skip();
	n = tm_sandbox_allowed_calls(&calls);
	assert_true(n > 60);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(action((int)calls[i], 0), ALLOW);
	for (int nr = 0; nr < 1024; nr++) {
		if (allowed(nr) || nr == __NR_clone
#ifdef __NR_clone3
		    || nr == __NR_clone3
#endif
		    || nr == __NR_kill)
			continue;
		if (action(nr, 0) != KILL)
			fail_msg("system call %d is not killed", nr);
	}
	assert_int_equal(action(__NR_execve, 0), KILL);
	assert_int_equal(action(__NR_ptrace, 0), KILL);
	assert_int_equal(action(__NR_clone, 0x00010000u | 0x100u), ALLOW); /* a thread */
	assert_int_equal(action(__NR_clone, 17 /* SIGCHLD: fork */), KILL);
#ifdef __NR_clone3
	assert_int_equal(action(__NR_clone3, 0), ERRNO(ENOSYS));
#endif
	assert_int_equal(action(__NR_kill, 0), ERRNO(EPERM));
	/* another architecture's numbers mean other calls: killed */
	assert_int_equal(tm_sandbox_filter_run(ARCH ^ 1u, __NR_read, 0, &a), 0);
	assert_int_equal(a, KILL);
#ifdef __x86_64__
	assert_int_equal(action(0x40000000 | __NR_read, 0), KILL); /* x32 */
#endif
}

/* In a child: enter the sandbox with dir writable; then what. */
static int run_child(const char *dir, const char *what)
{
	struct tm_sandbox sb;
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char path[512];
		int fd;
		if (tm_sandbox_prepare(&sb, "nobody", 0) < 0)
			_exit(10);
		sb.rw[sb.nrw++] = dir;
		if (tm_sandbox_enter(&sb) < 0)
			_exit(11);
		if (strcmp(what, "write") == 0) {
			snprintf(path, sizeof(path), "%s/f", dir);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			_exit(fd >= 0 && write(fd, "x", 1) == 1 ? 0 : 12);
		}
		if (strcmp(what, "read-outside") == 0) {
			fd = open(TM_SOURCE_DIR "/CMakeLists.txt", O_RDONLY);
			_exit(fd < 0 && errno == EACCES ? 0 : 13);
		}
		if (strcmp(what, "fork") == 0) {
			syscall(__NR_clone, 17, 0, 0, 0, 0); /* SIGCHLD: a fork */
			_exit(14);
		}
		if (strcmp(what, "execve") == 0) {
			char *const argv[] = { "/bin/true", NULL };
			execve("/bin/true", argv, argv + 1);
			_exit(15);
		}
		if (strcmp(what, "nnp") == 0) /* and no capability left */
			_exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 &&
					      prctl(PR_CAPBSET_READ, 0 /* CAP_CHOWN */, 0, 0, 0) !=
						      1
				      ? 0
				      : 16);
		_exit(17);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_enter(void **state)
{
	char dir[] = "/tmp/tm-sandbox-XXXXXX";
	int st;

	if (!tm_sandbox_have_seccomp())
		skip();
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0777);
	st = run_child(dir, "write");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	if (tm_sandbox_landlock_abi() > 0) {
		st = run_child(dir, "read-outside");
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	st = run_child(dir, "fork");
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	st = run_child(dir, "execve");
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	st = run_child(dir, "nnp");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	{
		char f[64];
		snprintf(f, sizeof(f), "%s/f", dir);
		unlink(f);
		rmdir(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_enter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
