/*
 * drive.c — the loading code the applier drivers share (drive.h): the directory walk and the
 * inventory file.
 */
#define _GNU_SOURCE
#include "drive.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int tm_drive_walk(const char *top, const char *rel,
		  int (*file)(void *arg, const char *path, const char *relpath, const char *name),
		  void *arg)
{
	char dir[4096];
	struct dirent **ents = NULL;
	int n, r = 0;

	snprintf(dir, sizeof(dir), "%s%s%s", top, *rel ? "/" : "", rel);
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		return tm_error_set(TM_EIO, "%s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char relpath[4096], path[8192];
		struct stat st;

		if (r < 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		snprintf(relpath, sizeof(relpath), "%s%s%s", rel, *rel ? "/" : "", name);
		snprintf(path, sizeof(path), "%s/%s", top, relpath);
		if (lstat(path, &st) < 0) {
			r = tm_error_set(TM_EIO, "%s: %s", path, strerror(errno));
		} else if (S_ISLNK(st.st_mode)) {
			r = tm_error_set(TM_EPARSE, "%s: is a symbolic link (refused)", relpath);
		} else if (S_ISDIR(st.st_mode)) {
			r = tm_drive_walk(top, relpath, file, arg);
		} else {
			r = file(arg, path, relpath, name);
		}
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return r;
}

int tm_drive_read_inventory(char ***v, size_t *n, const char *file)
{
	FILE *f = fopen(file, "r");
	char line[2048];
	int r = 0;

	if (!f)
		return errno == ENOENT ? 0 : tm_error_set(TM_EIO, "%s: %s", file, strerror(errno));
	while (r == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0])
			r = tm_strv_push(v, n, line);
	}
	fclose(f);
	return r;
}

int tm_drive_write_inventory(const char *file, char **v, size_t n)
{
	struct tm_buf b;
	int r = 0;

	tm_buf_init(&b, 64 << 20);
	for (size_t i = 0; i < n && r == 0; i++)
		r = tm_buf_printf(&b, "%s\n", v[i]);
	if (r == 0)
		r = tm_file_write_atomic(file, b.ptr ? b.ptr : "", b.len, 0644);
	tm_buf_free(&b);
	return r;
}

void tm_drive_print_list(const char *key, char **v, size_t n)
{
	printf("%s=", key);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", v[i]);
	putchar('\n');
}
