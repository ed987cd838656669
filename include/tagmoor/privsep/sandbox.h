/*
 * sandbox.h — what the fetcher child gives up before it touches the network
 * (docs/security.md): the [agent] user's uid and gid (no supplementary
 * groups), every capability (effective, permitted, inheritable, ambient and
 * the bounding set), PR_SET_NO_NEW_PRIVS, a Landlock domain that allows
 * writing only below the repository and reading only the trust files and
 * the system files TLS and DNS need (where the kernel has no Landlock: a
 * private mount namespace whose root holds only those paths, if the
 * process may make one), a seccomp filter of the system calls
 * polling, fetching and verifying make (anything else kills the process),
 * and rlimits (address space, CPU time, open files, no core dumps).
 */
#ifndef TAGMOOR_PRIVSEP_SANDBOX_H
#define TAGMOOR_PRIVSEP_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TM_SANDBOX_DEFAULT_USER "tagmoor"
#define TM_SANDBOX_MAX_PATHS 32

struct tm_sandbox {
	/* filled by tm_sandbox_prepare (in the parent) */
	int drop; /* running as root: change to uid/gid */
	uid_t uid;
	gid_t gid;
	char user[64];    /* for messages */
	const char *note; /* why the uid stays 0, or NULL */
	int landlock_abi; /* what the kernel offers (0: no Landlock) */
	int mountns;      /* no Landlock: the child gets a private mount namespace */
	/* the file system the child keeps (Landlock) */
	const char *rw[4]; /* directories: read and write below (the repository) */
	size_t nrw;
	const char *ro[TM_SANDBOX_MAX_PATHS]; /* files or directories: read only */
	size_t nro;
	/* rlimits; 0: not set */
	uint64_t as_bytes;
	uint64_t cpu_s;
	uint64_t nofile;
};

/* Resolves user (NULL: TM_SANDBOX_DEFAULT_USER) in the parent. Running as
 * root: the user must exist (TM_ECONFIG naming it otherwise), except the
 * default one: without it the child keeps uid 0, without any capability and
 * inside Landlock and seccomp (sb->note says so; the package creates it).
 * A user that resolves to uid 0 is refused. Not root: no uid change.
 * Without Landlock, root: once per process a probe child tries the mount
 * namespace (sb->mountns) and the log says which confinement is in force. */
int tm_sandbox_prepare(struct tm_sandbox *sb, const char *user, int user_is_default);

/* In the child, once, before anything of the network: applies all of the
 * above in order (rlimits, Landlock rules opened while still privileged
 * or else the private mount namespace, bounding set and secure bits, gid
 * and uid, capabilities, no_new_privs, Landlock, seccomp). Any failure is
 * returned (the child must then exit): nothing runs half-sandboxed. Where
 * the kernel has no Landlock (before 5.13) and no namespace can be made, or
 * the architecture has no filter table here, that layer is skipped (a
 * debug line; tm_sandbox_prepare and tm_fetcher_describe say it once). */
int tm_sandbox_enter(const struct tm_sandbox *sb);

/* What the kernel offers: the Landlock ABI version (0: none) and whether a
 * seccomp filter is built for this architecture. */
int tm_sandbox_landlock_abi(void);
int tm_sandbox_have_seccomp(void);

/* For the tests: runs this architecture's filter on (arch, nr, the first
 * argument) the way the kernel does and gives the action
 * (SECCOMP_RET_ALLOW 0x7fff0000, KILL_PROCESS 0x80000000, ERRNO|e
 * 0x00050000|e); -1 when there is no filter here. And the allow-list. */
int tm_sandbox_filter_run(uint32_t arch, int nr, uint64_t arg0, uint32_t *action);
size_t tm_sandbox_allowed_calls(const long **calls);

#endif
