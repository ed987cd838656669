/*
 * sandbox.c — the fetcher child's sandbox (include/tagmoor/privsep/sandbox.h):
 * the [agent] user, no capabilities (the bounding set emptied), NO_NEW_PRIVS,
 * rlimits, Landlock (write only below repo.git, read only the trust files and
 * what TLS and DNS read), and last the system call filter (seccomp.c).
 *
 * No libcap and no kernel headers (the static musl build has none): the
 * kernel's ABI constants and structures are written out here, under names of
 * our own; Landlock and capabilities are raw system calls.
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

/* --- the kernel's ABI (linux/capability.h, prctl) ------------------------------ */

struct tm_cap_header {
	uint32_t version;
	int32_t pid;
};
struct tm_cap_data {
	uint32_t effective;
	uint32_t permitted;
	uint32_t inheritable;
};
#define TM_CAP_VERSION_3 0x20080522u

#ifndef PR_CAPBSET_READ
#define PR_CAPBSET_READ 23
#endif
#ifndef PR_CAPBSET_DROP
#define PR_CAPBSET_DROP 24
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#endif
#ifndef PR_CAP_AMBIENT_CLEAR_ALL
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* --- Landlock (the UAPI, defined here: the headers may be older or absent) - */

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REMOVE_DIR (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR (1ull << 6)
#define LL_FS_MAKE_DIR (1ull << 7)
#define LL_FS_MAKE_REG (1ull << 8)
#define LL_FS_MAKE_SOCK (1ull << 9)
#define LL_FS_MAKE_FIFO (1ull << 10)
#define LL_FS_MAKE_BLOCK (1ull << 11)
#define LL_FS_MAKE_SYM (1ull << 12)
#define LL_FS_REFER (1ull << 13)                  /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)               /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)              /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

int tm_sandbox_landlock_abi(void)
{
	long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : (int)v;
}

static uint64_t ll_handled(int abi)
{
	uint64_t fs = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
	if (abi >= 2)
		fs |= LL_FS_REFER;
	if (abi >= 3)
		fs |= LL_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LL_FS_IOCTL_DEV;
	return fs;
}

static int ll_add(int rfd, const char *path, uint64_t want, uint64_t handled)
{
	struct ll_path_beneath_attr pb;
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -1; /* an absent system file is not needed */
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) /* a file takes only the rights of files */
		want &= LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE |
			LL_FS_IOCTL_DEV;
	pb.allowed_access = want & handled;
	pb.parent_fd = fd;
	if (syscall(__NR_landlock_add_rule, rfd, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

/* What TLS, DNS and libc read: name service files, CA stores, the time zone. */
static const char *const system_ro[] = {
	"/etc/resolv.conf",
	"/etc/hosts",
	"/etc/nsswitch.conf",
	"/etc/host.conf",
	"/etc/gai.conf",
	"/etc/services",
	"/etc/protocols",
	"/etc/localtime",
	"/etc/ssl",
	"/etc/pki",
	"/etc/ca-certificates",
	"/usr",
	"/lib",
	"/lib64",
	"/dev/urandom",
	"/dev/random" /* mbedTLS's entropy in the static build */,
};

/* Builds the ruleset while still privileged (the paths open as root). */
static int ll_prepare(const struct tm_sandbox *sb, int *out_fd, int *out_abi)
{
	struct ll_ruleset_attr attr = { 0 };
	uint64_t rw_rights, ro_rights = LL_FS_READ_FILE | LL_FS_READ_DIR;
	size_t attr_size = 8;
	int abi = tm_sandbox_landlock_abi(), rfd;

	*out_fd = -1;
	*out_abi = abi;
	if (abi <= 0)
		return 0;
	attr.handled_access_fs = ll_handled(abi);
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	rw_rights = LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_REMOVE_DIR |
		    LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_REFER |
		    LL_FS_TRUNCATE;
	rfd = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
	if (rfd < 0)
		return tm_error_set(TM_ESOURCE, "sandbox: landlock_create_ruleset: %s",
				    strerror(errno));
	for (size_t i = 0; i < sb->nrw; i++)
		if (ll_add(rfd, sb->rw[i], rw_rights, attr.handled_access_fs) < 0)
			goto fail_path;
	for (size_t i = 0; i < sb->nro; i++)
		if (sb->ro[i] && ll_add(rfd, sb->ro[i], ro_rights, attr.handled_access_fs) < 0)
			goto fail_path;
	for (size_t i = 0; i < sizeof(system_ro) / sizeof(system_ro[0]); i++)
		if (ll_add(rfd, system_ro[i], ro_rights, attr.handled_access_fs) < 0)
			goto fail_path;
	if (ll_add(rfd, "/dev/null", LL_FS_READ_FILE | LL_FS_WRITE_FILE, attr.handled_access_fs) <
	    0)
		goto fail_path;
	*out_fd = rfd;
	return 0;
fail_path:
	close(rfd);
	return tm_error_set(TM_ESOURCE, "sandbox: a Landlock rule: %s", strerror(errno));
}

/* --- user, capabilities, rlimits -------------------------------------------- */

int tm_sandbox_prepare(struct tm_sandbox *sb, const char *user, int user_is_default)
{
	struct passwd *pw;

	memset(sb, 0, sizeof(*sb));
	sb->landlock_abi = tm_sandbox_landlock_abi();
	if (!user || !*user)
		user = TM_SANDBOX_DEFAULT_USER;
	snprintf(sb->user, sizeof(sb->user), "%s", user);
	if (geteuid() != 0)
		return 0; /* already unprivileged: everything but the uid change */
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		if (!user_is_default)
			return tm_error_set(TM_ECONFIG,
					    "[agent] user: there is no user \"%s\" on this system "
					    "(create it: useradd --system --no-create-home %s)",
					    user, user);
		sb->note = "there is no user \"" TM_SANDBOX_DEFAULT_USER
			   "\" ([agent] user; the package creates it)";
		return 0;
	}
	if (pw->pw_uid == 0)
		return tm_error_set(TM_ECONFIG,
				    "[agent] user: \"%s\" is uid 0; the fetcher needs an "
				    "unprivileged user",
				    user);
	sb->drop = 1;
	sb->uid = pw->pw_uid;
	sb->gid = pw->pw_gid;
	return 0;
}

static int fail_errno(const char *what)
{
	return tm_error_set(TM_ESOURCE, "sandbox: %s: %s", what, strerror(errno));
}

static int set_limit(int res, uint64_t v, const char *what)
{
	struct rlimit rl = { (rlim_t)v, (rlim_t)v };

	if (setrlimit(res, &rl) < 0)
		return fail_errno(what);
	return 0;
}

static int drop_caps(void)
{
	struct tm_cap_header h = { TM_CAP_VERSION_3, 0 };
	struct tm_cap_data d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return fail_errno("capset");
	return 0;
}

int tm_sandbox_enter(const struct tm_sandbox *sb)
{
	int rfd = -1, abi = 0, r;

	if (set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE") < 0)
		return TM_ESOURCE;
	if (sb->nofile && set_limit(RLIMIT_NOFILE, sb->nofile, "RLIMIT_NOFILE") < 0)
		return TM_ESOURCE;
	if (sb->cpu_s) {
		struct rlimit rl = { (rlim_t)sb->cpu_s, (rlim_t)sb->cpu_s + 5 };
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			return fail_errno("RLIMIT_CPU");
	}
	if (sb->as_bytes && set_limit(RLIMIT_AS, sb->as_bytes, "RLIMIT_AS") < 0)
		return TM_ESOURCE;
	if ((r = ll_prepare(sb, &rfd, &abi)) < 0)
		return r;
	if (geteuid() == 0) {
		/* the bounding set needs CAP_SETPCAP: before the uid changes */
		for (int c = 0; c <= 63; c++) {
			if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1)
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0)
				continue;
			/* without CAP_SETPCAP (the packaged unit) the set stays what
			 * the unit allows; nothing is ever executed (seccomp) */
			if (errno == EPERM)
				break;
			r = fail_errno("PR_CAPBSET_DROP");
			goto fail;
		}
		if (sb->drop) {
			if (setgroups(0, NULL) < 0 || setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
			    setresuid(sb->uid, sb->uid, sb->uid) < 0) {
				r = fail_errno("changing to the [agent] user");
				goto fail;
			}
			/* no way back */
			if (setuid(0) == 0) {
				r = tm_error_set(TM_ESOURCE, "sandbox: uid 0 could be regained");
				goto fail;
			}
		}
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if ((r = drop_caps()) < 0)
		goto fail;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = fail_errno("PR_SET_NO_NEW_PRIVS");
		goto fail;
	}
	if (rfd >= 0) {
		if (syscall(__NR_landlock_restrict_self, rfd, 0) < 0) {
			r = fail_errno("landlock_restrict_self");
			goto fail;
		}
		close(rfd);
		rfd = -1;
	} else {
		tm_log_debug("sandbox: no Landlock here; the file system is bounded by the "
			     "uid only (docs/security.md)");
	}
	return tm_sandbox_seccomp_install();
fail:
	if (rfd >= 0)
		close(rfd);
	return r;
}
