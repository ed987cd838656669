/*
 * space.c — the systemd applier's look before it writes (systemd.c, step 1
 * of apply): a unit directory on a full or read-only file system.
 *
 * Atomic writes keep every file either old or new, but a disk that fills up
 * in the middle of an apply leaves some units of the new revision and some
 * of the old one, and the failure used to mark the revision bad: after the
 * space was freed it was never retried (found by the fault tests,
 * docs/faults.md). Asking first keeps the old units intact in the common
 * case, and res->unreachable tells the pass that the revision is not to
 * blame. A disk that fills up between this check and the writes still fails
 * the write (retried the same way by the pass: see tm_systemd_check_space's
 * callers).
 */
#define _GNU_SOURCE
#include "tagmoor/apply/systemd/space.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int tm_systemd_check_space(struct tm_apply_result *res, const char *dir,
			   const struct tm_objset *desired)
{
	char path[4096];
	struct tm_file_room room;
	uint64_t need = 0, files = 0, bsize;
	int n = snprintf(path, sizeof(path), "%s", dir);

	if (n < 0 || (size_t)n >= sizeof(path))
		return tm_error_set(TM_EAPPLY, "path too long: %.128s", dir);
	/* a unit directory not made yet: its nearest existing parent */
	while (tm_file_room(path, &room) < 0) {
		char *slash = strrchr(path, '/');
		if (errno != ENOENT || !slash || slash == path)
			return 0; /* nothing to say: the writes report their own errors */
		*slash = '\0';
	}
	if (room.readonly) {
		res->unreachable = 1;
		return tm_error_set(TM_EAPPLY,
				    "systemd: %s: Read-only file system (nothing written)", path);
	}
	bsize = room.block;
	if (!bsize)
		return 0;
	for (size_t i = 0; i < desired->n; i++) {
		uint64_t len = desired->v[i].len;
		need += (len + bsize - 1) / bsize * bsize + bsize;
		files += 2;
	}
	if (need > room.bytes_free) {
		res->unreachable = 1;
		return tm_error_set(TM_EAPPLY,
				    "systemd: %s: No space left on device: %llu bytes free, %llu "
				    "needed for %zu unit files (nothing written)",
				    path, (unsigned long long)room.bytes_free,
				    (unsigned long long)need, desired->n);
	}
	if (room.have_inodes && room.inodes_free < files) {
		res->unreachable = 1;
		return tm_error_set(TM_EAPPLY,
				    "systemd: %s: No space left on device: no free inodes for %zu "
				    "unit files (nothing written)",
				    path, desired->n);
	}
	return 0;
}
