/*
 * fileio.h — safe files. Writes are atomic replaces (temp file in the same
 * directory + fsync + rename + fsync of the directory), so a power cut leaves
 * either the old or the new content. Reads refuse symlinks (O_NOFOLLOW) and
 * anything over a size cap. A kill between the temp file and the rename
 * leaves the temp file behind under a name only tagmoor uses
 * (".NAME" TM_FILE_TEMP_MARK "XXXXXX"); tm_file_clean_temps() removes those.
 */
#ifndef TAGMOOR_FILEIO_H
#define TAGMOOR_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tagmoor/core/buf.h"

/* Temp files of tm_file_write_atomic are DIR/.NAME.tagmoor-tmp-XXXXXX (NAME:
 * the target's file name, cut to TM_FILE_TEMP_NAME_KEEP bytes so that the
 * temp name stays within NAME_MAX). A dot file without a unit or ".conf"
 * suffix: systemd ignores it in unit and drop-in directories. */
#define TM_FILE_TEMP_MARK ".tagmoor-tmp-"
#define TM_FILE_TEMP_NAME_KEEP 200

/* Replaces path with data atomically, file mode `mode`. On failure the old
 * file is intact and no temporary file is left behind (a kill or power cut
 * may leave one: see tm_file_clean_temps). */
int tm_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a regular file (no symlink) of at most max bytes into out (which the
 * caller has initialised; its own max must allow max + 1). TM_ENOTFOUND when
 * it does not exist, TM_ELIMIT when it is larger than max. */
int tm_file_read(struct tm_buf *out, const char *path, size_t max);

/* mkdir -p with mode for each created component; the parent of each created
 * directory is fsynced (a power cut does not lose the new directory). */
int tm_file_mkdirs(const char *path, mode_t mode);

/* Room on the file system holding path, as this process may use it (root: the
 * blocks reserved for it too). 0 when statvfs answers, else -1 with errno set. */
struct tm_file_room {
	int readonly;
	uint64_t bytes_free, block; /* block: the allocation unit (0: unknown) */
	uint64_t inodes_free;       /* with have_inodes (a file system that counts them) */
	int have_inodes;
};
int tm_file_room(const char *path, struct tm_file_room *out);

/* 1 when name (a file name, no '/') is one of tm_file_write_atomic's temp
 * names: ".X" TM_FILE_TEMP_MARK and six letters or digits. */
int tm_file_is_temp_name(const char *name);

/* Removes the temp files a killed tm_file_write_atomic left in dir (not
 * below it): regular files with a temp name; symlinks, directories and every
 * other name are never touched. A missing dir is fine. Only reads the
 * directory unless there is something to remove (then the directory is
 * fsynced). Returns the number removed, or TM_EIO naming the path. Call it
 * before the pass writes anything there, never while another writer may be
 * writing into dir (the state lock makes sure of that). */
int tm_file_clean_temps(const char *dir);

/* The same, also removing "NAME.tmp.XXXXXX" for each of names: the temp
 * files of tagmoor versions before TM_FILE_TEMP_MARK (e.g. names =
 * {"state.json", "floor"} in the state directory). */
int tm_file_clean_temps_named(const char *dir, char *const *names, size_t nnames);

/* Test hook: called at named stages of tm_file_write_atomic ("written",
 * "synced") and of tm_file_mkdirs ("mkdir", after each directory
 * it creates); a non-zero return simulates a failure there. */
extern int (*tm_file_test_hook)(const char *stage);

#endif
