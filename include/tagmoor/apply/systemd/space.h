/*
 * space.h — whether the unit directory can take a revision's files, asked
 * before the systemd applier writes the first one (space.c).
 */
#ifndef TAGMOOR_SYSTEMD_SPACE_H
#define TAGMOOR_SYSTEMD_SPACE_H

#include "tagmoor/apply/applier.h"

/* 0 when the file system of dir (or of its nearest existing parent) is
 * writable and has room and inodes for every object of desired written anew
 * (each rounded up to whole blocks, plus one block for its temp file);
 * otherwise TM_EAPPLY naming dir ("Read-only file system", "No space left on
 * device: N bytes free, M needed") with res->unreachable set: a full or
 * read-only disk says nothing about the revision, which is retried, not
 * marked bad — and nothing has been written. */
int tm_systemd_check_space(struct tm_apply_result *res, const char *dir,
			   const struct tm_objset *desired);

#endif
