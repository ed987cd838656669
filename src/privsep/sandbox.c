/*
 * sandbox.c — the fetcher child's sandbox (include/tagmoor/privsep/sandbox.h):
 * the [agent] user, no capabilities (the bounding set emptied), NO_NEW_PRIVS,
 * rlimits, Landlock (write only below repo.git, read only the trust files and
 * what TLS and DNS read) or, where the kernel has none, a private mount
 * namespace holding only those paths, and last the system call filter
 * (seccomp.c).
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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
#ifdef TM_TEST_HOOKS
	/* test builds: the fallback of a kernel without Landlock, on this one */
	if (getenv("TAGMOOR_TEST_NO_LANDLOCK"))
		return 0;
#endif
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

static int fail_errno(const char *what)
{
	return tm_error_set(TM_ESOURCE, "sandbox: %s: %s", what, strerror(errno));
}

/* --- a private mount namespace (where the kernel has no Landlock) ----------
 *
 * The child, still root, unshares its mount namespace, makes every mount in it
 * private (nothing propagates back to the system, nothing of the system's
 * later mounts comes in), mounts a small tmpfs, binds into it at the same
 * absolute paths exactly what the Landlock rules allow (repo.git read-write,
 * everything else read-only, /dev/null read-write), pivots into it, detaches
 * the old root and makes the tmpfs read-only. Each bind is of the one file
 * system at its path (not recursive: a file system mounted below /usr would
 * otherwise keep its own, possibly writable, flags); only the library
 * directories keep exec (dlopen of NSS modules), only the devices keep dev.
 * Done only when Landlock is absent: Landlock decides per access, needs no
 * privilege and costs nothing per poll, while a namespace copies the mount
 * table and makes about twenty mounts in every fetcher child.
 */

#ifndef MS_RDONLY
#define MS_RDONLY 1ul
#endif
#ifndef MS_NOSUID
#define MS_NOSUID 2ul
#endif
#ifndef MS_NODEV
#define MS_NODEV 4ul
#endif
#ifndef MS_NOEXEC
#define MS_NOEXEC 8ul
#endif
#ifndef MS_REMOUNT
#define MS_REMOUNT 32ul
#endif
#ifndef MS_NOATIME
#define MS_NOATIME 1024ul
#endif
#ifndef MS_NODIRATIME
#define MS_NODIRATIME 2048ul
#endif
#ifndef MS_BIND
#define MS_BIND 4096ul
#endif
#ifndef MS_REC
#define MS_REC 16384ul
#endif
#ifndef MS_PRIVATE
#define MS_PRIVATE (1ul << 18)
#endif
#ifndef MS_RELATIME
#define MS_RELATIME (1ul << 21)
#endif
#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif
#ifndef CLONE_NEWNS
#define CLONE_NEWNS 0x00020000
#endif
/* statvfs's f_flag bits (the kernel's ST_*): a bind's remount keeps them */
#define TM_ST_NOSUID 2ul
#define TM_ST_NODEV 4ul
#define TM_ST_NOEXEC 8ul
#define TM_ST_NOATIME 1024ul
#define TM_ST_NODIRATIME 2048ul
#define TM_ST_RELATIME 4096ul

#define NS_MAX (4 + TM_SANDBOX_MAX_PATHS + 24)

struct ns_bind {
	const char *path; /* the same inside */
	char src[4096];   /* resolved: a symlink's target is bound at the link's path */
	int rw, dev, exec, dir;
	dev_t fs; /* the file system it is on */
};

/* Where the new root is mounted while it is built: a directory no source is
 * below (the tmpfs would hide it); pivot_root moves the tmpfs away again. */
static const char *const ns_bases[] = { "/tmp", "/mnt", "/run",  "/var/tmp", "/media",
					"/srv", "/opt", "/home", "/root" };

static int below(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* One entry: absent paths are skipped (as for Landlock); an entry below a
 * directory already bound, on the same file system, is visible through it. */
static int ns_add(struct ns_bind *b, size_t *n, const char *path, int rw)
{
	struct stat st;

	if (!path || path[0] != '/')
		return 0;
	for (size_t i = 0; i < *n; i++)
		if (strcmp(b[i].path, path) == 0)
			return 0;
	if (*n >= NS_MAX)
		return tm_error_set(TM_ESOURCE, "sandbox: too many paths for the mount namespace");
	if (!realpath(path, b[*n].src) || stat(b[*n].src, &st) < 0)
		return errno == ENOENT ? 0 : fail_errno(path);
	b[*n].path = path;
	b[*n].rw = rw;
	b[*n].dev = S_ISCHR(st.st_mode);
	b[*n].dir = S_ISDIR(st.st_mode);
	b[*n].fs = st.st_dev;
	b[*n].exec = strcmp(path, "/usr") == 0 || strcmp(path, "/lib") == 0 ||
		     strcmp(path, "/lib64") == 0;
	(*n)++;
	return 0;
}

/* The Landlock rule set's paths (ll_prepare), parents before what is below them. */
static int ns_collect(const struct tm_sandbox *sb, struct ns_bind *b, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < sb->nrw; i++)
		if (ns_add(b, n, sb->rw[i], 1) < 0)
			return -1;
	for (size_t i = 0; i < sb->nro; i++)
		if (ns_add(b, n, sb->ro[i], 0) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(system_ro) / sizeof(system_ro[0]); i++)
		if (ns_add(b, n, system_ro[i], 0) < 0)
			return -1;
	if (ns_add(b, n, "/dev/null", 1) < 0)
		return -1;
	for (size_t i = 1; i < *n; i++) /* by length: a parent is shorter */
		for (size_t j = i; j > 0 && strlen(b[j - 1].path) > strlen(b[j].path); j--) {
			struct ns_bind t = b[j];
			b[j] = b[j - 1];
			b[j - 1] = t;
		}
	return 0;
}

static const char *ns_base(const struct ns_bind *b, size_t n)
{
	for (size_t i = 0; i < sizeof(ns_bases) / sizeof(ns_bases[0]); i++) {
		struct stat st;
		size_t j;
		if (stat(ns_bases[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		for (j = 0; j < n; j++)
			if (below(b[j].src, ns_bases[i]) || below(ns_bases[i], b[j].src))
				break;
		if (j == n)
			return ns_bases[i];
	}
	return NULL;
}

/* Creates path's parents (0755) and path itself (a directory or an empty file) below root. */
static int ns_mkpath(const char *root, const char *path, int dir)
{
	char p[4096];
	int fd;

	if ((size_t)snprintf(p, sizeof(p), "%s%s", root, path) >= sizeof(p))
		return tm_error_set(TM_ESOURCE, "sandbox: %s: path too long", path);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return fail_errno(p);
		*s = '/';
	}
	if (dir)
		return mkdir(p, 0755) < 0 && errno != EEXIST ? fail_errno(p) : 0;
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return fail_errno(p);
	close(fd);
	return 0;
}

static int ns_bind_one(const char *root, const struct ns_bind *b)
{
	unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID;
	struct statvfs vs;
	char dst[4096];

	if (ns_mkpath(root, b->path, b->dir) < 0)
		return -1;
	snprintf(dst, sizeof(dst), "%s%s", root, b->path);
	if (mount(b->src, dst, NULL, MS_BIND, NULL) < 0)
		return fail_errno(b->path);
	/* what the source's mount has it keeps (a remount may not clear locked flags) */
	if (statvfs(dst, &vs) == 0) {
		fl |= (vs.f_flag & TM_ST_NODEV) ? MS_NODEV : 0;
		fl |= (vs.f_flag & TM_ST_NOEXEC) ? MS_NOEXEC : 0;
		fl |= (vs.f_flag & TM_ST_NOATIME) ? MS_NOATIME : 0;
		fl |= (vs.f_flag & TM_ST_NODIRATIME) ? MS_NODIRATIME : 0;
		fl |= (vs.f_flag & TM_ST_RELATIME) ? MS_RELATIME : 0;
	}
	fl |= (b->rw ? 0 : MS_RDONLY) | (b->dev ? 0 : MS_NODEV) | (b->exec ? 0 : MS_NOEXEC);
	if (mount(NULL, dst, NULL, fl, NULL) < 0)
		return fail_errno(b->path);
	return 0;
}

/* Enters the new root: pivot_root, or chroot where the current root is no
 * mount point (a daemon started in a chroot); then the tmpfs goes read-only. */
static int ns_switch(const char *base)
{
	char old[4096];

	snprintf(old, sizeof(old), "%s/.oldroot", base);
	if (mkdir(old, 0700) < 0)
		return fail_errno("mkdir .oldroot");
	if (syscall(SYS_pivot_root, base, old) == 0) {
		if (chdir("/") < 0)
			return fail_errno("chdir /");
		if (umount2("/.oldroot", MNT_DETACH) < 0)
			return fail_errno("umount the old root");
		if (rmdir("/.oldroot") < 0)
			return fail_errno("rmdir /.oldroot");
	} else if (errno == EINVAL) {
		if (rmdir(old) < 0 || chdir(base) < 0 || chroot(".") < 0 || chdir("/") < 0)
			return fail_errno("chroot");
	} else {
		return fail_errno("pivot_root");
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		return fail_errno("the new root read-only");
	return 0;
}

/* The whole namespace; as root, before anything else is given up. */
static int ns_enter(const struct tm_sandbox *sb)
{
	static struct ns_bind b[NS_MAX];
	const char *base;
	size_t n;

	if (ns_collect(sb, b, &n) < 0)
		return -1;
	if (!(base = ns_base(b, n)))
		return tm_error_set(TM_ESOURCE, "sandbox: no directory to build the new root on");
	if (unshare(CLONE_NEWNS) < 0)
		return fail_errno("unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail_errno("making the mounts private");
	if (mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=1m,nr_inodes=1024") < 0)
		return fail_errno("mounting a tmpfs for the new root");
	for (size_t i = 0; i < n; i++) {
		size_t j;
		for (j = 0; j < i; j++)
			if (b[j].dir && below(b[i].path, b[j].path) && b[j].fs == b[i].fs)
				break; /* visible through b[j] (a bind is of one file system) */
		if (j == i && ns_bind_one(base, &b[i]) < 0)
			return -1;
	}
	return ns_switch(base);
}

/* Whether this process can give its children the namespace: once, in a child
 * of its own that builds it with the system paths only. */
static int ns_probe(char *why, size_t whylen)
{
	struct tm_sandbox none;
	int fds[2], status = 0;
	ssize_t got;
	pid_t pid;

	memset(&none, 0, sizeof(none));
	snprintf(why, whylen, "no probe");
	if (pipe2(fds, O_CLOEXEC) < 0)
		return 0;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return 0;
	}
	if (pid == 0) {
		int r = ns_enter(&none);
		const char *e = r < 0 ? tm_error_last() : "";
		_exit(write(fds[1], e, strlen(e)) < 0 || r < 0 ? 1 : 0);
	}
	close(fds[1]);
	got = read(fds[0], why, whylen - 1);
	why[got > 0 ? got : 0] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Once per process, where there is no Landlock and the daemon is root. */
static void ns_decide(struct tm_sandbox *sb)
{
	static int decided = -1;
	static char why[256];

	if (sb->landlock_abi > 0 || geteuid() != 0)
		return;
	if (decided < 0) {
#ifdef TM_TEST_HOOKS
		/* test builds: the fallback of a daemon that may not make one */
		if (getenv("TAGMOOR_TEST_NO_MOUNTNS")) {
			decided = 0;
			snprintf(why, sizeof(why), "TAGMOOR_TEST_NO_MOUNTNS");
		}
		if (decided < 0)
#endif
			decided = ns_probe(why, sizeof(why));
		if (decided)
			tm_log_info(
				"privilege separation: no Landlock here; the fetcher child gets "
				"a private mount namespace instead (a read-only root with "
				"repo.git, the trust files and what TLS and DNS read)");
		else
			tm_log_info("privilege separation: no Landlock and no private mount "
				    "namespace here (%s): the file system of the fetcher child is "
				    "bounded by its uid only",
				    why);
	}
	sb->mountns = decided;
}

/* --- user, capabilities, rlimits -------------------------------------------- */

int tm_sandbox_prepare(struct tm_sandbox *sb, const char *user, int user_is_default)
{
	struct passwd *pw;

	memset(sb, 0, sizeof(*sb));
	sb->landlock_abi = tm_sandbox_landlock_abi();
	ns_decide(sb);
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
	/* the probe (ns_decide) made one: failing now is an error, not a fallback */
	if (rfd < 0 && sb->mountns && geteuid() == 0 && ns_enter(sb) < 0)
		return TM_ESOURCE;
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
		tm_log_debug("sandbox: no Landlock here; the file system is bounded by %s "
			     "(docs/security.md)",
			     sb->mountns ? "a private mount namespace" : "the uid only");
	}
	return tm_sandbox_seccomp_install();
fail:
	if (rfd >= 0)
		close(rfd);
	return r;
}
