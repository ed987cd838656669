/*
 * git_internal.h — what the files of the libgit2 adapter share (not a public header; git.h is):
 * the handle, libgit2's error to ours, and the functions one file calls in another, each with
 * the tmg_ prefix:
 *   git.c       libgit2 set-up, opening/checking/rebuilding repo.git, objects, refs, tree walks;
 *   gitfetch.c  our smart-HTTP subtransport over http.c, ls-remote and the bounded fetch;
 *   gitstore.c  the object store's upkeep: stale locks and temporary files, its size, pruning;
 *   packscan.c  the pack read as it arrives, against the pack limits (no library: packscan.h).
 * Only these files (and this header) include libgit2 (tests/lint/test_boundaries.sh).
 */
#ifndef TAGMOOR_SOURCE_GIT_INTERNAL_H
#define TAGMOOR_SOURCE_GIT_INTERNAL_H

#include "tagmoor/core/buf.h"
#include "packscan.h"

#include <stddef.h>
#include <stdint.h>

#include <git2.h>

/* The advertisement of the last tm_git_ls_remote, kept only when it showed
 * an object we do not have, i.e. when a fetch is about to follow: the fetch
 * replays it instead of asking again, so a poll is one advertisement. An idle
 * poll keeps nothing. */
#define ADV_CACHE_MAX (1024u * 1024)

struct tm_git {
	git_repository *repo;
	char *path;
	struct tm_buf adv;
	char *adv_url;
	uint64_t adv_ms;
	git_odb_object **kept; /* tm_git_read_blob_kept's, until tm_git_free */
	size_t nkept, capkept;
};

void tmg_adv_drop(struct tm_git *git);
int tmg_lg_error(int code, const char *what);
int tmg_parse_oid(git_oid *out, const char *s);
int tmg_rebuild(git_repository **out, const char *path, const char *why);
int tmg_remove_tree(const char *path);
int tmg_remove_contents(const char *path);
int tmg_ends_with(const char *s, const char *suffix);
void tmg_clear_stale(const char *path);
uint64_t tmg_kept_bytes(const char *path);

#endif
