/*
 * drive.h — what the applier drivers (tm-kube-drive, tm-systemd-drive) share: reading a
 * directory of files as one `paths` entry the way plan.c reads a tree (sorted, recursive,
 * symbolic links refused), and the inventory file that stands in for state.json.
 */
#ifndef TAGMOOR_TESTS_DRIVE_H
#define TAGMOOR_TESTS_DRIVE_H

#include <stddef.h>

/* Calls file(arg, path, relpath, name) for every regular file below top/rel, in sorted order,
 * depth first; stops at the first error (a symbolic link is one) and returns it. */
int tm_drive_walk(const char *top, const char *rel,
		  int (*file)(void *arg, const char *path, const char *relpath, const char *name),
		  void *arg);

/* The ids of an inventory file, one a line (a missing file is empty). */
int tm_drive_read_inventory(char ***v, size_t *n, const char *file);
/* Replaces the inventory file with v (atomically). */
int tm_drive_write_inventory(const char *file, char **v, size_t n);
/* KEY=a,b,c on stdout. */
void tm_drive_print_list(const char *key, char **v, size_t n);

#endif
