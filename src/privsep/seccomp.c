/*
 * seccomp.c — the fetcher child's system call filter (sandbox.c installs it last,
 * include/tagmoor/privsep/sandbox.h): a classic-BPF program written here from the
 * compiler's __NR_ numbers of x86_64, aarch64 and armv7 — the allow-list of what the
 * child's libraries need (libc, libcurl with its resolver thread, mbedTLS, libgit2, our
 * verify code) as a search tree; anything else kills the process (SIGSYS): execve, fork,
 * ptrace, mount, ... clone only for threads (CLONE_THREAD), clone3 answers ENOSYS so
 * that libc falls back to clone, kill answers EPERM. No libseccomp and no kernel headers
 * (the static musl build has neither): the kernel's ABI is written out below.
 */
#define _GNU_SOURCE
#include "tagmoor/privsep/sandbox.h"
#include "sandbox_internal.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* --- the kernel's ABI (linux/{audit,filter,seccomp}.h) ----------------------- */

#define TM_AUDIT_ARCH_X86_64 0xc000003eu
#define TM_AUDIT_ARCH_AARCH64 0xc00000b7u
#define TM_AUDIT_ARCH_ARM 0x40000028u

struct tm_sock_filter {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};
struct tm_sock_fprog {
	unsigned short len;
	struct tm_sock_filter *filter;
};
#define TM_BPF_LD_W_ABS 0x20u /* BPF_LD | BPF_W | BPF_ABS */
#define TM_BPF_JEQ_K 0x15u    /* BPF_JMP | BPF_JEQ | BPF_K */
#define TM_BPF_JGE_K 0x35u    /* BPF_JMP | BPF_JGE | BPF_K */
#define TM_BPF_JSET_K 0x45u   /* BPF_JMP | BPF_JSET | BPF_K */
#define TM_BPF_RET_K 0x06u    /* BPF_RET | BPF_K */

struct tm_seccomp_data {
	int32_t nr;
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t args[6];
};
#define TM_SECCOMP_MODE_FILTER 2
#define TM_SECCOMP_RET_KILL_PROCESS 0x80000000u
#define TM_SECCOMP_RET_ERRNO 0x00050000u
#define TM_SECCOMP_RET_ALLOW 0x7fff0000u

#ifndef PR_SET_SECCOMP
#define PR_SET_SECCOMP 22
#endif

/* --- seccomp ----------------------------------------------------------------- */

#if defined(__x86_64__)
#define TM_AUDIT_ARCH TM_AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TM_AUDIT_ARCH TM_AUDIT_ARCH_AARCH64
#elif defined(__arm__) && defined(__ARM_EABI__) && !defined(__ARMEB__)
#define TM_AUDIT_ARCH TM_AUDIT_ARCH_ARM
#endif

#ifdef TM_AUDIT_ARCH
static const long allowed_calls[] = {
/* I/O on descriptors */
#ifdef __NR_read
	__NR_read,
#endif
#ifdef __NR_write
	__NR_write,
#endif
#ifdef __NR_readv
	__NR_readv,
#endif
#ifdef __NR_writev
	__NR_writev,
#endif
#ifdef __NR_pread64
	__NR_pread64,
#endif
#ifdef __NR_pwrite64
	__NR_pwrite64,
#endif
#ifdef __NR_close
	__NR_close,
#endif
#ifdef __NR_lseek
	__NR_lseek,
#endif
#ifdef __NR__llseek
	__NR__llseek,
#endif
#ifdef __NR_dup
	__NR_dup,
#endif
#ifdef __NR_dup2
	__NR_dup2,
#endif
#ifdef __NR_dup3
	__NR_dup3,
#endif
#ifdef __NR_pipe
	__NR_pipe,
#endif
#ifdef __NR_pipe2
	__NR_pipe2,
#endif
#ifdef __NR_fcntl
	__NR_fcntl,
#endif
#ifdef __NR_fcntl64
	__NR_fcntl64,
#endif
#ifdef __NR_ioctl
	__NR_ioctl,
#endif
#ifdef __NR_flock
	__NR_flock,
#endif
#ifdef __NR_fsync
	__NR_fsync,
#endif
#ifdef __NR_fdatasync
	__NR_fdatasync,
#endif
#ifdef __NR_ftruncate
	__NR_ftruncate,
#endif
#ifdef __NR_ftruncate64
	__NR_ftruncate64,
#endif
/* files (Landlock decides where) */
#ifdef __NR_open
	__NR_open,
#endif
#ifdef __NR_openat
	__NR_openat,
#endif
#ifdef __NR_stat
	__NR_stat,
#endif
#ifdef __NR_fstat
	__NR_fstat,
#endif
#ifdef __NR_lstat
	__NR_lstat,
#endif
#ifdef __NR_newfstatat
	__NR_newfstatat,
#endif
#ifdef __NR_stat64
	__NR_stat64,
#endif
#ifdef __NR_fstat64
	__NR_fstat64,
#endif
#ifdef __NR_lstat64
	__NR_lstat64,
#endif
#ifdef __NR_fstatat64
	__NR_fstatat64,
#endif
#ifdef __NR_statx
	__NR_statx,
#endif
#ifdef __NR_statfs
	__NR_statfs,
#endif
#ifdef __NR_fstatfs
	__NR_fstatfs,
#endif
#ifdef __NR_statfs64
	__NR_statfs64,
#endif
#ifdef __NR_fstatfs64
	__NR_fstatfs64,
#endif
#ifdef __NR_access
	__NR_access,
#endif
#ifdef __NR_faccessat
	__NR_faccessat,
#endif
#ifdef __NR_faccessat2
	__NR_faccessat2,
#endif
#ifdef __NR_readlink
	__NR_readlink,
#endif
#ifdef __NR_readlinkat
	__NR_readlinkat,
#endif
#ifdef __NR_getcwd
	__NR_getcwd,
#endif
#ifdef __NR_getdents64
	__NR_getdents64,
#endif
#ifdef __NR_getdents
	__NR_getdents,
#endif
#ifdef __NR_mkdir
	__NR_mkdir,
#endif
#ifdef __NR_mkdirat
	__NR_mkdirat,
#endif
#ifdef __NR_rmdir
	__NR_rmdir,
#endif
#ifdef __NR_unlink
	__NR_unlink,
#endif
#ifdef __NR_unlinkat
	__NR_unlinkat,
#endif
#ifdef __NR_rename
	__NR_rename,
#endif
#ifdef __NR_renameat
	__NR_renameat,
#endif
#ifdef __NR_renameat2
	__NR_renameat2,
#endif
#ifdef __NR_link
	__NR_link,
#endif
#ifdef __NR_linkat
	__NR_linkat,
#endif
#ifdef __NR_symlink
	__NR_symlink, /* libgit2's init probes it; Landlock refuses (no MAKE_SYM) */
#endif
#ifdef __NR_symlinkat
	__NR_symlinkat,
#endif
#ifdef __NR_chmod
	__NR_chmod,
#endif
#ifdef __NR_fchmod
	__NR_fchmod,
#endif
#ifdef __NR_fchmodat
	__NR_fchmodat,
#endif
#ifdef __NR_umask
	__NR_umask,
#endif
#ifdef __NR_utimensat
	__NR_utimensat,
#endif
#ifdef __NR_utimensat_time64
	__NR_utimensat_time64,
#endif
#ifdef __NR_utimes
	__NR_utimes,
#endif
/* memory */
#ifdef __NR_brk
	__NR_brk,
#endif
#ifdef __NR_mmap
	__NR_mmap,
#endif
#ifdef __NR_mmap2
	__NR_mmap2,
#endif
#ifdef __NR_munmap
	__NR_munmap,
#endif
#ifdef __NR_mremap
	__NR_mremap,
#endif
#ifdef __NR_mprotect
	__NR_mprotect,
#endif
#ifdef __NR_madvise
	__NR_madvise,
#endif
#ifdef __NR_msync
	__NR_msync,
#endif
/* signals, threads, time */
#ifdef __NR_rt_sigaction
	__NR_rt_sigaction,
#endif
#ifdef __NR_rt_sigprocmask
	__NR_rt_sigprocmask,
#endif
#ifdef __NR_rt_sigreturn
	__NR_rt_sigreturn,
#endif
#ifdef __NR_sigreturn
	__NR_sigreturn,
#endif
#ifdef __NR_sigaltstack
	__NR_sigaltstack,
#endif
#ifdef __NR_rt_sigpending
	__NR_rt_sigpending,
#endif
#ifdef __NR_tgkill
	__NR_tgkill,
#endif
#ifdef __NR_futex
	__NR_futex,
#endif
#ifdef __NR_futex_time64
	__NR_futex_time64,
#endif
#ifdef __NR_set_robust_list
	__NR_set_robust_list,
#endif
#ifdef __NR_get_robust_list
	__NR_get_robust_list,
#endif
#ifdef __NR_set_tid_address
	__NR_set_tid_address,
#endif
#ifdef __NR_rseq
	__NR_rseq,
#endif
#ifdef __NR_membarrier
	__NR_membarrier,
#endif
#ifdef __NR_sched_yield
	__NR_sched_yield,
#endif
#ifdef __NR_sched_getaffinity
	__NR_sched_getaffinity,
#endif
#ifdef __NR_clock_gettime
	__NR_clock_gettime,
#endif
#ifdef __NR_clock_gettime64
	__NR_clock_gettime64,
#endif
#ifdef __NR_clock_getres
	__NR_clock_getres,
#endif
#ifdef __NR_clock_getres_time64
	__NR_clock_getres_time64,
#endif
#ifdef __NR_clock_nanosleep
	__NR_clock_nanosleep,
#endif
#ifdef __NR_clock_nanosleep_time64
	__NR_clock_nanosleep_time64,
#endif
#ifdef __NR_nanosleep
	__NR_nanosleep,
#endif
#ifdef __NR_gettimeofday
	__NR_gettimeofday,
#endif
#ifdef __NR_time
	__NR_time,
#endif
#ifdef __NR_restart_syscall
	__NR_restart_syscall,
#endif
#ifdef __NR_exit
	__NR_exit,
#endif
#ifdef __NR_exit_group
	__NR_exit_group,
#endif
/* who am I */
#ifdef __NR_getpid
	__NR_getpid,
#endif
#ifdef __NR_getppid
	__NR_getppid,
#endif
#ifdef __NR_gettid
	__NR_gettid,
#endif
#ifdef __NR_getuid
	__NR_getuid,
#endif
#ifdef __NR_geteuid
	__NR_geteuid,
#endif
#ifdef __NR_getgid
	__NR_getgid,
#endif
#ifdef __NR_getegid
	__NR_getegid,
#endif
#ifdef __NR_getuid32
	__NR_getuid32,
#endif
#ifdef __NR_geteuid32
	__NR_geteuid32,
#endif
#ifdef __NR_getgid32
	__NR_getgid32,
#endif
#ifdef __NR_getegid32
	__NR_getegid32,
#endif
#ifdef __NR_getresuid
	__NR_getresuid,
#endif
#ifdef __NR_getresgid
	__NR_getresgid,
#endif
#ifdef __NR_getresuid32
	__NR_getresuid32,
#endif
#ifdef __NR_getresgid32
	__NR_getresgid32,
#endif
#ifdef __NR_uname
	__NR_uname,
#endif
#ifdef __NR_sysinfo
	__NR_sysinfo,
#endif
#ifdef __NR_getrandom
	__NR_getrandom,
#endif
#ifdef __NR_getrlimit
	__NR_getrlimit,
#endif
#ifdef __NR_ugetrlimit
	__NR_ugetrlimit,
#endif
#ifdef __NR_prlimit64
	__NR_prlimit64,
#endif
#ifdef __NR_getrusage
	__NR_getrusage,
#endif
#ifdef __NR_prctl
	__NR_prctl,
#endif
/* the network */
#ifdef __NR_socket
	__NR_socket,
#endif
#ifdef __NR_socketpair
	__NR_socketpair,
#endif
#ifdef __NR_connect
	__NR_connect,
#endif
#ifdef __NR_bind
	__NR_bind,
#endif
#ifdef __NR_getsockopt
	__NR_getsockopt,
#endif
#ifdef __NR_setsockopt
	__NR_setsockopt,
#endif
#ifdef __NR_getsockname
	__NR_getsockname,
#endif
#ifdef __NR_getpeername
	__NR_getpeername,
#endif
#ifdef __NR_sendto
	__NR_sendto,
#endif
#ifdef __NR_recvfrom
	__NR_recvfrom,
#endif
#ifdef __NR_send
	__NR_send,
#endif
#ifdef __NR_recv
	__NR_recv,
#endif
#ifdef __NR_sendmsg
	__NR_sendmsg,
#endif
#ifdef __NR_recvmsg
	__NR_recvmsg,
#endif
#ifdef __NR_sendmmsg
	__NR_sendmmsg,
#endif
#ifdef __NR_recvmmsg
	__NR_recvmmsg,
#endif
#ifdef __NR_recvmmsg_time64
	__NR_recvmmsg_time64,
#endif
#ifdef __NR_shutdown
	__NR_shutdown,
#endif
#ifdef __NR_poll
	__NR_poll,
#endif
#ifdef __NR_ppoll
	__NR_ppoll,
#endif
#ifdef __NR_ppoll_time64
	__NR_ppoll_time64,
#endif
#ifdef __NR_select
	__NR_select,
#endif
#ifdef __NR__newselect
	__NR__newselect,
#endif
#ifdef __NR_pselect6
	__NR_pselect6,
#endif
#ifdef __NR_pselect6_time64
	__NR_pselect6_time64,
#endif
#ifdef __NR_epoll_create1
	__NR_epoll_create1,
#endif
#ifdef __NR_epoll_ctl
	__NR_epoll_ctl,
#endif
#ifdef __NR_epoll_wait
	__NR_epoll_wait,
#endif
#ifdef __NR_epoll_pwait
	__NR_epoll_pwait,
#endif
#ifdef __NR_eventfd2
	__NR_eventfd2,
#endif
#ifdef __ARM_NR_set_tls
	__ARM_NR_set_tls,
#endif
#ifdef __ARM_NR_cacheflush
	__ARM_NR_cacheflush,
#endif
};

#define NCALLS (sizeof(allowed_calls) / sizeof(allowed_calls[0]))
#define FILTER_MAX (NCALLS * 3 + 32)

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* A search tree over the sorted allow-list: each inner node one JGE, each
 * leaf (at most 4 numbers) JEQ/ALLOW pairs and a KILL. A system call costs
 * about 2 log2(n) instructions instead of 2n, and so does the kernel's
 * per-number emulation of the filter when it builds its action cache at
 * attach time (which is most of what installing the filter costs). */
static size_t gen_tree(struct tm_sock_filter *f, size_t n, const uint32_t *v, size_t cnt)
{
	size_t mid, at, left;

	if (cnt <= 4) {
		for (size_t i = 0; i < cnt; i++) {
			f[n++] = (struct tm_sock_filter){ TM_BPF_JEQ_K, 0, 1, v[i] };
			f[n++] =
				(struct tm_sock_filter){ TM_BPF_RET_K, 0, 0, TM_SECCOMP_RET_ALLOW };
		}
		f[n++] = (struct tm_sock_filter){ TM_BPF_RET_K, 0, 0, TM_SECCOMP_RET_KILL_PROCESS };
		return n;
	}
	mid = cnt / 2;
	at = n++;
	n = gen_tree(f, n, v, mid); /* below v[mid] */
	left = n - at - 1;          /* < 255: about 3 instructions per number */
	f[at] = (struct tm_sock_filter){ TM_BPF_JGE_K, (uint8_t)left, 0, v[mid] };
	return gen_tree(f, n, v + mid, cnt - mid);
}

/* The whole program into f (FILTER_MAX entries); its length, 0 when a jump
 * would not fit in 8 bits (never with this list: checked by test_sandbox). */
static size_t build_filter(struct tm_sock_filter *f)
{
	uint32_t nums[NCALLS];
	size_t n = 0, k = 0;

	for (size_t i = 0; i < NCALLS; i++)
		nums[i] = (uint32_t)allowed_calls[i];
	qsort(nums, NCALLS, sizeof(nums[0]), cmp_u32);
	for (size_t i = 0; i < NCALLS; i++) /* unique */
		if (k == 0 || nums[k - 1] != nums[i])
			nums[k++] = nums[i];

#define STMT(c, kk) (f[n++] = (struct tm_sock_filter){ (uint16_t)(c), 0, 0, (uint32_t)(kk) })
#define JUMP(c, kk, t, e)                                                             \
	(f[n++] = (struct tm_sock_filter){ (uint16_t)(c), (uint8_t)(t), (uint8_t)(e), \
					   (uint32_t)(kk) })
	STMT(TM_BPF_LD_W_ABS, offsetof(struct tm_seccomp_data, arch));
	JUMP(TM_BPF_JEQ_K, TM_AUDIT_ARCH, 1, 0);
	STMT(TM_BPF_RET_K, TM_SECCOMP_RET_KILL_PROCESS);
	STMT(TM_BPF_LD_W_ABS, offsetof(struct tm_seccomp_data, nr));
#ifdef __x86_64__
	/* the x32 ABI shares the architecture value: none of it */
	JUMP(TM_BPF_JGE_K, 0x40000000u, 0, 1);
	STMT(TM_BPF_RET_K, TM_SECCOMP_RET_KILL_PROCESS);
#endif
	/* clone: threads only (the flags are the first argument on all three;
	 * the low 32 bits of args[0] on little-endian) */
	JUMP(TM_BPF_JEQ_K, __NR_clone, 0, 4);
	STMT(TM_BPF_LD_W_ABS, offsetof(struct tm_seccomp_data, args[0]));
	JUMP(TM_BPF_JSET_K, 0x00010000u /* CLONE_THREAD */, 0, 1);
	STMT(TM_BPF_RET_K, TM_SECCOMP_RET_ALLOW);
	STMT(TM_BPF_RET_K, TM_SECCOMP_RET_KILL_PROCESS);
#ifdef __NR_clone3
	JUMP(TM_BPF_JEQ_K, __NR_clone3, 0, 1);
	STMT(TM_BPF_RET_K, TM_SECCOMP_RET_ERRNO | ENOSYS);
#endif
#ifdef __NR_kill
	JUMP(TM_BPF_JEQ_K, __NR_kill, 0, 1);
	STMT(TM_BPF_RET_K, TM_SECCOMP_RET_ERRNO | EPERM);
#endif
#undef STMT
#undef JUMP
	n = gen_tree(f, n, nums, k);
	for (size_t i = 0; i < n; i++)
		if (f[i].code == TM_BPF_JGE_K && i + 1 + f[i].jt >= n)
			return 0;
	return n;
}

int tm_sandbox_filter_run(uint32_t arch, int nr, uint64_t arg0, uint32_t *action)
{
	struct tm_sock_filter f[FILTER_MAX];
	struct tm_seccomp_data d = { nr, arch, 0, { arg0, 0, 0, 0, 0, 0 } };
	size_t n = build_filter(f), pc = 0;
	uint32_t acc = 0;

	if (!n)
		return -1;
	while (pc < n) {
		const struct tm_sock_filter *in = &f[pc++];
		switch (in->code) {
		case TM_BPF_LD_W_ABS:
			memcpy(&acc, (const char *)&d + in->k, 4);
			break;
		case TM_BPF_JEQ_K:
			pc += acc == in->k ? in->jt : in->jf;
			break;
		case TM_BPF_JGE_K:
			pc += acc >= in->k ? in->jt : in->jf;
			break;
		case TM_BPF_JSET_K:
			pc += (acc & in->k) ? in->jt : in->jf;
			break;
		case TM_BPF_RET_K:
			*action = in->k;
			return 0;
		default:
			return -1;
		}
	}
	return -1; /* ran off the end: the kernel refuses such a program */
}

size_t tm_sandbox_allowed_calls(const long **calls)
{
	*calls = allowed_calls;
	return NCALLS;
}

int tm_sandbox_seccomp_install(void)
{
	struct tm_sock_filter f[FILTER_MAX];
	struct tm_sock_fprog prog;
	size_t n = build_filter(f);

	if (!n)
		return tm_error_set(TM_ESOURCE, "sandbox: the seccomp filter does not fit");
	prog.len = (unsigned short)n;
	prog.filter = f;
	if (prctl(PR_SET_SECCOMP, TM_SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
		/* a kernel without CONFIG_SECCOMP_FILTER, or qemu-user (which refuses
		 * guest filters): the documented fallback, the other layers hold */
		if (errno == EINVAL) {
			tm_log_debug("sandbox: no seccomp filter here (the kernel or an emulator "
				     "refuses it); the other layers hold (docs/security.md)");
			return 0;
		}
		return tm_error_set(TM_ESOURCE, "sandbox: seccomp: %s", strerror(errno));
	}
	return 0;
}

int tm_sandbox_have_seccomp(void)
{
	return 1;
}
#else
int tm_sandbox_filter_run(uint32_t arch, int nr, uint64_t arg0, uint32_t *action)
{
	(void)arch;
	(void)nr;
	(void)arg0;
	(void)action;
	return -1;
}

size_t tm_sandbox_allowed_calls(const long **calls)
{
	*calls = NULL;
	return 0;
}

int tm_sandbox_seccomp_install(void)
{
	tm_log_debug("sandbox: no seccomp filter for this architecture (docs/security.md); "
		     "the other layers hold");
	return 0;
}

int tm_sandbox_have_seccomp(void)
{
	return 0;
}
#endif
