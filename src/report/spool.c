/*
 * spool.c — the reporter's outbox (report.h): state_dir/spool/ holds the
 * reports not yet delivered, one file per report named by its seq (20
 * digits, so that the names sort in delivery order). Each file is written
 * atomically and fsync'd before anything tries to send it, and removed (the
 * directory fsync'd) only after the receiver took it: a crash in between
 * sends a report twice, never loses one. Bounded by [report] spool_max: the
 * oldest reports go first and the caller counts them.
 */
#define _GNU_SOURCE
#include "tagmoor/report/report.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEQ_DIGITS 20

static void spool_dir(char *out, size_t n, const char *state_dir)
{
	snprintf(out, n, "%s/spool", state_dir);
}

static void spool_path(char *out, size_t n, const char *state_dir, uint64_t seq)
{
	snprintf(out, n, "%s/spool/%0*llu.json", state_dir, SEQ_DIGITS, (unsigned long long)seq);
}

/* "<20 digits>.json" → seq; 0 when the name is not a report's. */
static int parse_name(const char *name, uint64_t *seq)
{
	uint64_t v = 0;

	if (strlen(name) != SEQ_DIGITS + 5 || strcmp(name + SEQ_DIGITS, ".json") != 0)
		return 0;
	for (int i = 0; i < SEQ_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*seq = v;
	return v > 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int tm_spool_list(const char *state_dir, uint64_t **out, size_t *n)
{
	char dir[4096];
	DIR *d;
	struct dirent *e;
	uint64_t *v = NULL;
	size_t cnt = 0, cap = 0;

	*out = NULL;
	*n = 0;
	spool_dir(dir, sizeof(dir), state_dir);
	if (!(d = opendir(dir))) {
		if (errno == ENOENT)
			return 0;
		return tm_error_set(TM_EIO, "%s: %s", dir, strerror(errno));
	}
	while ((e = readdir(d))) {
		uint64_t seq;
		if (!parse_name(e->d_name, &seq))
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return tm_error_nomem();
			}
			v = nv;
			cap = nc;
		}
		v[cnt++] = seq;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*out = v;
	*n = cnt;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return tm_error_set(TM_EIO, "%s: %s", dir, strerror(errno));
	if (fsync(fd) < 0)
		r = tm_error_set(TM_EIO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return r;
}

int tm_spool_remove(const char *state_dir, uint64_t seq)
{
	char path[4096], dir[4096];

	spool_path(path, sizeof(path), state_dir, seq);
	TM_FAULT("spool.before-remove");
	if (unlink(path) < 0 && errno != ENOENT)
		return tm_error_set(TM_EIO, "%s: %s", path, strerror(errno));
	TM_FAULT("spool.removed");
	spool_dir(dir, sizeof(dir), state_dir);
	return fsync_dir(dir);
}

int tm_spool_put(const char *state_dir, uint64_t seq, const char *doc, uint64_t max,
		 uint64_t *dropped)
{
	char path[4096], dir[4096];
	uint64_t *v = NULL;
	size_t n = 0;
	int r;

	*dropped = 0;
	spool_dir(dir, sizeof(dir), state_dir);
	if ((r = tm_file_mkdirs(dir, 0700)) < 0)
		return r;
	spool_path(path, sizeof(path), state_dir, seq);
	if ((r = tm_file_write_atomic(path, doc, strlen(doc), 0600)) < 0)
		return r;
	TM_FAULT("spool.written");
	if ((r = tm_spool_list(state_dir, &v, &n)) < 0)
		return r;
	/* the oldest first; never the one just written */
	for (size_t i = 0; max > 0 && n > max && i < n - max; i++) {
		if (v[i] == seq)
			continue;
		spool_path(path, sizeof(path), state_dir, v[i]);
		if (unlink(path) == 0) {
			(*dropped)++;
			TM_FAULT("spool.dropped-oldest");
			tm_log_warn(
				"%s: the spool holds more than spool_max = %llu reports; dropped "
				"report %llu",
				dir, (unsigned long long)max, (unsigned long long)v[i]);
		}
	}
	free(v);
	if (*dropped)
		return fsync_dir(dir);
	return 0;
}

int tm_spool_read(struct tm_buf *out, const char *state_dir, uint64_t seq)
{
	char path[4096];

	spool_path(path, sizeof(path), state_dir, seq);
	return tm_file_read(out, path, TM_REPORT_DOC_MAX);
}

void tm_spool_clean(const char *state_dir)
{
	char dir[4096];

	spool_dir(dir, sizeof(dir), state_dir);
	if (tm_file_clean_temps(dir) < 0) {
		tm_log_warn("%s", tm_error_last());
		tm_error_clear();
	}
}
