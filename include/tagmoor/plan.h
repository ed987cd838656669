/*
 * plan.h — the desired set of one applier, read from a verified commit's
 * tree (no checkout): the `paths` directories in order, files in sorted
 * order, ${vars} expanded, later paths overriding earlier ones object by
 * object. Any hostile entry (symlink, submodule, "..", oversized file,
 * invalid name) fails the whole plan with an error naming the path. A paths
 * entry that does not exist is skipped; one that exists but is not a directory
 * (symlink, regular file, submodule) fails the plan with TM_EPARSE.
 */
#ifndef TAGMOOR_PLAN_H
#define TAGMOOR_PLAN_H

#include "tagmoor/applier.h"

struct tm_git;
struct tm_strlist;

#define TM_PLAN_MAX_FILE (1024 * 1024)     /* one repository file */
#define TM_PLAN_MAX_FILES 10000            /* files under all paths of one applier */

int tm_plan_build(struct tm_objset *out, struct tm_git *git, const char *commit,
		  const struct tm_applier *ap, const struct tm_applier_ctx *ctx,
		  const struct tm_strlist *paths);

#endif
