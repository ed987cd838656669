/*
 * sandbox_internal.h — what sandbox.c and seccomp.c share (the privsep room only).
 */
#ifndef TAGMOOR_PRIVSEP_SANDBOX_INTERNAL_H
#define TAGMOOR_PRIVSEP_SANDBOX_INTERNAL_H

/* Installs the system call filter on the calling thread (NO_NEW_PRIVS set before);
 * 0, or an error naming why (a kernel without seccomp filters, qemu-user). */
int tm_sandbox_seccomp_install(void);

#endif
