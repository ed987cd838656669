/*
 * git.h — the source: ref advertisement, bounded fetch over HTTPS, and read
 * access to objects of the local bare repository (no working tree).
 *
 * The pipeline calls tm_git_ls_remote once per poll (one HTTPS GET of the
 * ref advertisement, nothing written to disk) and tm_git_fetch only when the
 * advertised object id differs from the applied one. Fetches go through our
 * own smart-HTTP subtransport on top of the `http` module, so the source
 * settings (private CA, credentials, timeout, max_fetch, no redirects) hold
 * for every byte. Policy (signatures, tag names, rollback) is the caller's.
 *
 * Errors: TM_ESOURCE for network / TLS / HTTP / protocol failures,
 * TM_ENOTFOUND when a ref or object does not exist, TM_ELIMIT when a cap
 * (max_fetch, object size, tree depth) is hit, TM_EIO for the local repository.
 */
#ifndef TAGMOOR_GIT_H
#define TAGMOOR_GIT_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/core/buf.h"

struct tm_git;

struct tm_git_source {
	const char *url;        /* https://host/path; userinfo is never shown in messages */
	const char *ca_file;    /* NULL: system CAs; else only this bundle is trusted */
	const char *token_file; /* NULL or a file: "user:password" (basic) or a bearer token */
	uint64_t timeout_ms; /* connect and idle limit; the advertisement's total limit; 0: 60 s */
	uint64_t max_fetch;  /* bytes received per operation; 0: 64 MiB */
};

#define TM_GIT_DEFAULT_TIMEOUT_MS 60000u
#define TM_GIT_DEFAULT_MAX_FETCH (64u * 1024 * 1024)
#define TM_GIT_FETCHED_REF "refs/tagmoor/fetched"
#define TM_GIT_APPLIED_REF "refs/tagmoor/applied"

/* Refcounted libgit2 initialisation (tm_git_open/free do it themselves). */
int tm_git_global_init(void);
void tm_git_global_shutdown(void);

/* Opens repo_path (state_dir/repo.git) as a bare repository, creating it when
 * missing. A repository that cannot be opened or whose HEAD, object database
 * or private refs are broken is removed and re-created (with a warning).
 * Opening writes nothing when the repository is healthy.
 *
 * The caller must hold the state lock (flock on state_dir/lock) from before
 * tm_git_open until after tm_git_free: nobody else may write repo.git. That
 * is what makes every lock file found at open stale (left by a tagmoor killed
 * mid-fetch or a power cut), so they are removed: *.lock under refs/,
 * packed-refs.lock, HEAD.lock, config.lock, FETCH_HEAD.lock, index.lock,
 * shallow.lock, objects/pack/ temporaries (pack_git2_*, tmp_pack_*, tmp_idx_*,
 * *.lock, *.keep, a .pack without its .idx or the reverse) and temporary
 * loose objects. */
int tm_git_open(struct tm_git **out, const char *repo_path);
void tm_git_free(struct tm_git *git);

/* One ref advertisement: out_oid gets the object id the server shows for ref
 * (for an annotated tag, the tag object, not the peeled commit).
 * TM_ENOTFOUND when the ref is not advertised. Writes nothing to disk. When
 * the object is not here yet, the advertisement is kept (in memory, until the
 * next call) for a tm_git_fetch of the same url within `timeout`, which then
 * makes no second advertisement request. */
int tm_git_ls_remote(char out_oid[41], struct tm_git *git, const struct tm_git_source *src,
		     const char *ref);

/* Fetches ref (no tag auto-follow) into refs/tagmoor/fetched, forced; then
 * expected_oid (what the advertisement showed) must exist locally and
 * refs/tagmoor/fetched points at it. No network when it already exists.
 * TM_ELIMIT past max_fetch, past the pack limits below, or when the object
 * store already holds more than TM_GIT_STORE_FACTOR x max_fetch bytes (see
 * tm_git_prune). The repository stays usable after any failure. When the
 * fetch fails in the local repository (a lock that cannot be taken, a file
 * system error; not the network, not what the server sent), repo.git is
 * rebuilt once (with a warning) and the fetch retried. */
int tm_git_fetch(struct tm_git *git, const struct tm_git_source *src, const char *ref,
		 const char *expected_oid);

/* Pack limits. max_fetch bounds the bytes on the wire; what the indexer
 * inflates from them is bounded too, because a pack of a few MiB can declare
 * GiBs (a zlib bomb: 2 GiB of zeros deflate to 2 MiB; a delta bomb: a few
 * bytes of delta declaring an object of any size, which the indexer would
 * build in memory). The pack is read as it arrives, before libgit2 sees it,
 * and the fetch is refused (TM_ELIMIT, nothing of it kept) at the first entry
 * header that passes one of:
 *   - more than TM_GIT_MAX_PACK_OBJECTS objects in the pack;
 *   - one object (or a delta's data, or the object a delta builds) larger
 *     than max_fetch;
 *   - all objects and delta results together larger than
 *     TM_GIT_INFLATE_FACTOR x max_fetch, and never more than
 *     TM_GIT_MAX_INFLATED (512 MiB with the default max_fetch).
 * A pack whose framing or deflate data does not parse, or whose entry
 * inflates to more than its header declares, is refused with TM_ESOURCE. */
#define TM_GIT_MAX_PACK_OBJECTS 1000000u
#define TM_GIT_INFLATE_FACTOR 8
#define TM_GIT_MAX_INFLATED (1024ull * 1024 * 1024)

/* The object store's bound: a fetch is refused (TM_ELIMIT, before any
 * network) while objects/ holds more than TM_GIT_STORE_FACTOR x max_fetch
 * bytes beyond what the last tm_git_prune kept (recorded in
 * repo.git/tagmoor-kept; 0 before the first prune). What prune keeps (the
 * kept revisions and their history) never stops a fetch; what accumulates
 * between prunes (refused revisions of a server that moves the ref at every
 * poll) stops at TM_GIT_STORE_FACTOR x max_fetch plus one fetch, and is
 * removed by the next prune. */
#define TM_GIT_STORE_FACTOR 4
/* Bytes under objects/ (packs, indexes, loose objects). */
uint64_t tm_git_store_bytes(struct tm_git *git);

/* Keeps only what is reachable from keep[0..nkeep) (object ids of tags or
 * commits; a tag chain, the commit it ends in and that commit's history with
 * all their trees and blobs) and deletes every other object, including those
 * of refused revisions, and every ref under refs/tagmoor/ whose target is not
 * kept (e.g. refs/tagmoor/fetched at a refused revision). Ids not present are
 * skipped; nkeep == 0 empties the store. Packs and loose objects that hold
 * only kept objects stay as they are (a pass that applied what it fetched
 * writes nothing); a pack holding anything not kept is deleted, after the
 * kept objects it also holds were copied into one new pack; past 16 packs
 * (one is added per fetch) all of them are merged into one. Crash-safe: the
 * new pack and its index are written and synced completely first, then the
 * refs go, then the packs (each .pack before its .idx) and loose objects; a
 * kill at any point leaves a usable repository (the leftovers are removed by
 * the next tm_git_open). Records the store's size afterwards for the bound
 * above. The reconcile pass calls it with the applied and last-good objects
 * after every pass that fetched. */
int tm_git_prune(struct tm_git *git, const char *const *keep, size_t nkeep);

/* Whether libgit2 hashes every object it reads again (collision-detecting SHA-1) and
 * refuses one whose id is not its file's name (on by default, for the whole process).
 * The fetcher child's source job turns it off: the parent hashes every object and body it
 * is sent (docs/security.md, "The parent believes nothing it did not check"). */
void tm_git_hash_reads(int on);

/* 1 when the object exists, 0 when not, negative on error. */
int tm_git_has_object(struct tm_git *git, const char *oid);

/* Sets (force) a private ref name (must start with "refs/tagmoor/") to oid,
 * e.g. TM_GIT_APPLIED_REF, so the objects stay reachable. */
int tm_git_set_ref(struct tm_git *git, const char *name, const char *oid);
/* Reads a ref's target into out_oid; TM_ENOTFOUND when it does not exist. */
int tm_git_get_ref(char out_oid[41], struct tm_git *git, const char *name);

/* The raw content of a tag ('t'), commit ('c') or tree ('T') object as git
 * stores it (without the "type size\0" header). out's max caps it (TM_ELIMIT). */
int tm_git_read_raw(struct tm_buf *out, int *out_type, struct tm_git *git, const char *oid);
/* The size of a blob, from its header (TM_EIO when it is not there: never
 * TM_ENOTFOUND). */
int tm_git_blob_size(size_t *out, struct tm_git *git, const char *blob_oid);

/* Peels oid (tag chain or commit) to a commit. */
int tm_git_peel_commit(char out_oid[41], struct tm_git *git, const char *oid);

/* (The tree walk is verify/rawobj.h's tm_obj_tree_walk over the object
 * store: the one walk the fetcher child and the parent both run.) */

/* Reads a blob of at most max bytes into out (TM_ELIMIT when larger). */
int tm_git_read_blob(struct tm_buf *out, struct tm_git *git, const char *blob_oid, size_t max);
/* The same without a copy: *data (len bytes, not NUL-terminated) is libgit2's
 * and stays valid and unchanged until tm_git_free. */
int tm_git_read_blob_kept(const char **data, size_t *len, struct tm_git *git, const char *blob_oid,
			  size_t max);

/* The libgit2 version ("1.5.1"). */
const char *tm_git_version(void);

#endif
