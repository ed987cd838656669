/*
 * fileio.c — atomic replace, bounded reads, and the clean-up of what a kill
 * leaves behind.
 *
 * The temp file is created next to the target with O_EXCL and a random
 * suffix (mkstemp) so that the rename stays on one file system; it is removed
 * on every failure path. The directory is fsynced after the rename so the new
 * name survives a power cut.
 *
 * A kill or a power cut between mkstemp and rename leaves the temp file
 * behind, and no failure path runs. Its name is therefore recognisable —
 * ".NAME.tagmoor-tmp-XXXXXX" (a dot file, no unit or ".conf" suffix, so
 * systemd ignores it in a unit directory or a drop-in directory) — and
 * tm_file_clean_temps() removes such leftovers on the next pass.
 */
#define _GNU_SOURCE
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int (*tm_file_test_hook)(const char *stage);

static int hook(const char *stage)
{
	return tm_file_test_hook ? tm_file_test_hook(stage) : 0;
}

static int dir_of(char *out, size_t outlen, const char *path)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s", path);

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return tm_error_set(TM_EIO, "path too long: %.128s", path);
	n = snprintf(out, outlen, "%s", dirname(tmp));
	if (n < 0 || (size_t)n >= outlen)
		return tm_error_set(TM_EIO, "path too long: %.128s", path);
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return tm_error_set(TM_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
	if (fsync(fd) < 0 && errno != EINVAL)
		r = tm_error_set(TM_EIO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return r;
}

/* The temp name for path: DIR/.NAME.tagmoor-tmp-XXXXXX, with NAME cut so
 * that the whole name stays within NAME_MAX (a 255-byte unit name is valid). */
static int temp_name(char *out, size_t outlen, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dlen = (size_t)(base - path), blen = strlen(base);
	int n;

	if (!*base)
		return tm_error_set(TM_EIO, "%.128s: not a file name", path);
	if (blen > TM_FILE_TEMP_NAME_KEEP)
		blen = TM_FILE_TEMP_NAME_KEEP;
	n = snprintf(out, outlen, "%.*s.%.*s" TM_FILE_TEMP_MARK "XXXXXX", (int)dlen, path,
		     (int)blen, base);
	if (n < 0 || (size_t)n >= outlen)
		return tm_error_set(TM_EIO, "path too long: %.128s", path);
	return 0;
}

int tm_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4096], dir[4096];
	const char *p = data;
	int fd = -1, r = TM_EIO;

	if (temp_name(tmp, sizeof(tmp), path) < 0)
		return TM_EIO;
	if (dir_of(dir, sizeof(dir), path) < 0)
		return TM_EIO;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return tm_error_set(TM_EIO, "%s: cannot create temporary file: %s", path,
				    strerror(errno));
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			tm_error_set(TM_EIO, "%s: write: %s", path, strerror(errno));
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	TM_FAULT("file.temp-written");
	if (hook("written")) {
		tm_error_set(TM_EIO, "%s: simulated failure after write", path);
		goto out;
	}
	if (fchmod(fd, mode) < 0) {
		tm_error_set(TM_EIO, "%s: chmod: %s", path, strerror(errno));
		goto out;
	}
	if (fsync(fd) < 0) {
		tm_error_set(TM_EIO, "%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		tm_error_set(TM_EIO, "%s: close: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	TM_FAULT("file.temp-synced");
	if (hook("synced")) {
		tm_error_set(TM_EIO, "%s: simulated failure before rename", path);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		tm_error_set(TM_EIO, "%s: rename: %s", path, strerror(errno));
		goto out;
	}
	tmp[0] = '\0'; /* renamed: nothing to clean up */
	TM_FAULT("file.renamed");
	if ((r = fsync_dir(dir)) < 0)
		goto out;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	return r;
}

int tm_file_read(struct tm_buf *out, const char *path, size_t max)
{
	struct stat st;
	char chunk[8192];
	int fd, r = TM_EIO;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return tm_error_set(TM_ENOTFOUND, "%s: no such file", path);
		if (errno == ELOOP)
			return tm_error_set(TM_EIO, "%s: is a symbolic link (refused)", path);
		return tm_error_set(TM_EIO, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		tm_error_set(TM_EIO, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		r = tm_error_set(TM_ELIMIT, "%s: larger than the limit of %zu bytes", path, max);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tm_error_set(TM_EIO, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			r = tm_error_set(TM_ELIMIT, "%s: larger than the limit of %zu bytes", path,
					 max);
			goto out;
		}
		if ((r = tm_buf_put(out, chunk, (size_t)n)) < 0)
			goto out;
		r = TM_EIO;
	}
	if (!out->ptr && tm_buf_put(out, "", 0) < 0) {
		r = TM_ENOMEM;
		goto out;
	}
	r = 0;
out:
	close(fd);
	return r;
}

/* mkdir one component; a directory it creates has its name made durable
 * (fsync of the parent), or a power cut could lose it under a file inside
 * that was itself written and fsynced. */
static int mkdir_one(const char *dir, mode_t mode)
{
	char parent[4096];

	if (mkdir(dir, mode) < 0) {
		if (errno == EEXIST)
			return 0;
		return tm_error_set(TM_EIO, "%s: mkdir: %s", dir, strerror(errno));
	}
	if (hook("mkdir"))
		return tm_error_set(TM_EIO, "%s: simulated failure after mkdir", dir);
	if (dir_of(parent, sizeof(parent), dir) < 0)
		return TM_EIO;
	return fsync_dir(parent);
}

int tm_file_mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s", path), r;

	if (n <= 0 || (size_t)n >= sizeof(tmp))
		return tm_error_set(TM_EIO, "path too long: %.128s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if ((r = mkdir_one(tmp, mode)) < 0)
			return r;
		*p = '/';
	}
	return mkdir_one(tmp, mode);
}

int tm_file_room(const char *path, struct tm_file_room *out)
{
	struct statvfs sv;
	int root = geteuid() == 0;

	memset(out, 0, sizeof(*out));
	if (statvfs(path, &sv) < 0)
		return -1;
	out->readonly = (sv.f_flag & ST_RDONLY) != 0;
	out->block = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
	out->bytes_free = (uint64_t)(root ? sv.f_bfree : sv.f_bavail) * out->block;
	out->have_inodes = sv.f_files != 0;
	out->inodes_free = (uint64_t)(root ? sv.f_ffree : sv.f_favail);
	return 0;
}

/* ".X" + TM_FILE_TEMP_MARK + six characters of mkstemp's alphabet. */
int tm_file_is_temp_name(const char *name)
{
	size_t len = strlen(name), ml = sizeof(TM_FILE_TEMP_MARK) - 1;
	const char *mark;

	if (name[0] != '.' || len < 2 + ml + 6)
		return 0;
	mark = name + len - 6 - ml;
	if (memcmp(mark, TM_FILE_TEMP_MARK, ml) != 0)
		return 0;
	for (const char *p = mark + ml; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

/* "NAME.tmp.XXXXXX" for one of names: what tm_file_write_atomic called its
 * temp files before they were recognisable. */
static int is_legacy_temp(const char *name, char *const *names, size_t nnames)
{
	size_t len = strlen(name);

	if (len < 11 || memcmp(name + len - 11, ".tmp.", 5) != 0)
		return 0;
	for (const char *p = name + len - 6; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return 0;
	for (size_t i = 0; i < nnames; i++)
		if (strlen(names[i]) == len - 11 && memcmp(names[i], name, len - 11) == 0)
			return 1;
	return 0;
}

int tm_file_clean_temps_named(const char *dir, char *const *names, size_t nnames)
{
	DIR *d;
	struct dirent *e;
	int dfd, removed = 0, r = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		return tm_error_set(TM_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
	}
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return tm_error_set(TM_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
	}
	for (;;) {
		struct stat st;

		errno = 0;
		if (!(e = readdir(d))) {
			if (errno)
				r = tm_error_set(TM_EIO, "%s: readdir: %s", dir, strerror(errno));
			break;
		}
		if (!tm_file_is_temp_name(e->d_name) && !is_legacy_temp(e->d_name, names, nnames))
			continue;
		/* Only regular files (mkstemp makes nothing else); a symlink or a
		 * directory with such a name is not ours. */
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = tm_error_set(TM_EIO, "%s/%s: %s", dir, e->d_name, strerror(errno));
			break;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dfd, e->d_name, 0) < 0) {
			if (errno == ENOENT)
				continue;
			r = tm_error_set(TM_EIO,
					 "%s/%s: cannot remove a leftover temporary file: %s", dir,
					 e->d_name, strerror(errno));
			break;
		}
		removed++;
	}
	/* The removals are made durable; with nothing removed nothing is written. */
	if (r == 0 && removed && fsync(dfd) < 0 && errno != EINVAL)
		r = tm_error_set(TM_EIO, "%s: fsync: %s", dir, strerror(errno));
	closedir(d);
	return r < 0 ? r : removed;
}

int tm_file_clean_temps(const char *dir)
{
	return tm_file_clean_temps_named(dir, NULL, 0);
}
