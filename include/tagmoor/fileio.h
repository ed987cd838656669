/*
 * fileio.h — safe files. Writes are atomic replaces (temp file in the same
 * directory + fsync + rename + fsync of the directory), so a power cut leaves
 * either the old or the new content. Reads refuse symlinks (O_NOFOLLOW) and
 * anything over a size cap.
 */
#ifndef TAGMOOR_FILEIO_H
#define TAGMOOR_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "tagmoor/buf.h"

/* Replaces path with data atomically, file mode `mode`. On failure the old
 * file is intact and no temporary file is left behind. */
int tm_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a regular file (no symlink) of at most max bytes into out (which the
 * caller has initialised; its own max must allow max + 1). TM_ENOTFOUND when
 * it does not exist, TM_ELIMIT when it is larger than max. */
int tm_file_read(struct tm_buf *out, const char *path, size_t max);

/* mkdir -p with mode for each created component. */
int tm_file_mkdirs(const char *path, mode_t mode);

/* Test hook: called at named stages of tm_file_write_atomic ("written",
 * "synced", "renamed"); a non-zero return simulates a failure there. */
extern int (*tm_file_test_hook)(const char *stage);

#endif
