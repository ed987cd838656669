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

#include "tagmoor/apply/applier.h"

struct tm_git;
struct tm_strlist;

#define TM_PLAN_MAX_FILE (1024 * 1024) /* one repository file (appliers other than kubernetes) */
#define TM_PLAN_MAX_FILES 10000        /* files under all paths of one applier */

#include <stdint.h>

struct tm_config;

/* The size caps of one applier's files. The Kubernetes applier's come from
 * [kubernetes] max_file and max_total (defaults 16 MiB and 64 MiB: upstream
 * install files and CRD bundles are megabytes); every other applier (systemd
 * units are small) keeps TM_PLAN_MAX_FILE per file and no total beyond
 * TM_PLAN_MAX_FILES files. A file over the cap, or the file that takes the
 * total over it, refuses the plan naming the file, the limit and its key. */
struct tm_plan_limits {
	uint64_t max_file;
	uint64_t max_total;   /* 0: none */
	const char *file_key; /* "[kubernetes] max_file" for messages, or NULL */
	const char *total_key;
};
void tm_plan_limits_of(struct tm_plan_limits *out, const struct tm_applier *ap,
		       const struct tm_config *cfg);

int tm_plan_build(struct tm_objset *out, struct tm_git *git, const char *commit,
		  const struct tm_applier *ap, const struct tm_applier_ctx *ctx,
		  const struct tm_strlist *paths);

#endif
