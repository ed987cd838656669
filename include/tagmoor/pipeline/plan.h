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

/* Reads the plan inputs of one commit from the repository: in one go,
 * capture and build below (no fetcher child: tests and tools). */
int tm_plan_build(struct tm_objset *out, struct tm_git *git, const char *commit,
		  const struct tm_applier *ap, const struct tm_applier_ctx *ctx,
		  const struct tm_strlist *paths);

/* Privilege separation (docs/security.md) splits it in two. The fetcher
 * child captures the plan inputs: it walks (reading trees from src, blobs
 * from git) each paths entry of the applier
 * in slot `slot` below set->commit (set by the caller, malloc'd) and appends
 * one dir per entry to set, with the bodies of the files the applier wants
 * within the limits, and, where the walk meets an entry the plan refuses
 * (symlink, submodule, bad name, over a limit), that entry without a body as
 * the last one. Only unwanted files are left out; nothing is parsed. */
struct tm_msg_set;
struct tm_msg_dir;
struct tm_objsrc;
int tm_plan_capture(struct tm_msg_set *set, const struct tm_objsrc *src, struct tm_git *git,
		    uint32_t slot, const struct tm_applier *ap, const struct tm_config *cfg,
		    const struct tm_strlist *paths);
/* The parent, before it believes the inputs of one paths entry (d): they
 * must be what a capture of commit's trees in src (the objects the parent
 * hashed itself) gives — every listed file the tree's entry of that path,
 * with its mode and, with a body, its blob; no entry left out that the
 * capture lists; "absent" only when the directory is. TM_ESOURCE naming the
 * difference. A dir the child could not walk is not checked (the plan fails
 * with its error and uses none of it). */
int tm_plan_check_inputs(const struct tm_msg_dir *d, const char *commit,
			 const struct tm_objsrc *src, const struct tm_applier *ap);
/* Frees what tm_plan_capture allocated (and set->commit). The file bodies are
 * not the capture's: they are git's (tm_git_read_blob_kept), until tm_git_free. */
void tm_plan_inputs_free(struct tm_msg_set *set);
/* The parent builds the desired set from the inputs (decoded from the
 * child's message) with the very checks, limits and messages of a build
 * from the repository. */
int tm_plan_build_inputs(struct tm_objset *out, const struct tm_msg_set *set, uint32_t slot,
			 const struct tm_applier *ap, const struct tm_applier_ctx *ctx,
			 const struct tm_strlist *paths);

#endif
