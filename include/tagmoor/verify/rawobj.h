/*
 * rawobj.h — raw Git objects as verification sees them, wherever they come
 * from: the object store (the fetcher child) or the table of objects the
 * child sent, each filed under the SHA-1 the privileged parent computed
 * itself (docs/security.md: the parent believes no verdict and no file it
 * did not check against the signed objects).
 *
 * The tree walk here is the one both sides run: the child to list the plan
 * inputs, the parent to check that list against the commit's trees.
 */
#ifndef TAGMOOR_VERIFY_RAWOBJ_H
#define TAGMOOR_VERIFY_RAWOBJ_H

#include <stddef.h>
#include <stdint.h>

struct tm_git;

/* Git's object type numbers. */
#define TM_OBJ_COMMIT 1
#define TM_OBJ_TREE 2
#define TM_OBJ_BLOB 3
#define TM_OBJ_TAG 4

/* Where raw objects (tag, commit, tree) come from. read() gives the body
 * (without git's "type size\0" header); it stays valid while the source
 * lives. TM_ENOTFOUND when the object is not there. */
struct tm_objsrc {
	int (*read)(void *ctx, const char *oid, int *type, const char **data, size_t *len);
	void *ctx;
};

/* The git object id (40 lowercase hex digits) of a body of that type. */
int tm_obj_id(char out[41], int type, const char *data, size_t len);

/* "commit", "tree", "blob", "tag" or "object". */
const char *tm_obj_type_name(int type);

/* --- the object store as a source (the fetcher child) ---------------------- */

/* Reads tags, commits and trees of at most max bytes each from git; every
 * object read is kept (and handed to keep() when set, e.g. to send it)
 * until tm_objsrc_git_free. */
struct tm_objsrc_git {
	struct tm_git *git;
	size_t max;
	int (*keep)(void *arg, int type, const char *data, size_t len);
	void *keep_arg;
	struct tm_objsrc_kept *kept, **slots;
	size_t nslots, nkept;
};
void tm_objsrc_git_init(struct tm_objsrc *out, struct tm_objsrc_git *g, struct tm_git *git);
void tm_objsrc_git_free(struct tm_objsrc_git *g);

/* --- a table of objects under computed ids (the parent) -------------------- */

struct tm_objtab_ent {
	unsigned char id[20];
	int type;
	const char *data;
	size_t len;
};
struct tm_objtab {
	struct tm_objtab_ent *v;
	size_t n, cap;
	int sorted;
};

/* Files data[0..len) (not copied) under the id computed from it. */
int tm_objtab_add(struct tm_objtab *t, int type, const char *data, size_t len);
void tm_objtab_source(struct tm_objsrc *out, struct tm_objtab *t);
void tm_objtab_free(struct tm_objtab *t);

/* --- the tree walk --------------------------------------------------------- */

/* Walks the tree of commit below dir ("" or NULL: the root), recursively, in
 * the trees' order (git's sorted order for well-formed trees), reading only
 * the commit and trees from src. cb sees every non-directory entry: the path
 * relative to the repository root, the mode as written in the tree (0100644,
 * 0100755, 0120000 symlink, 0160000 submodule) and the object id; a non-zero
 * return stops the walk and is returned. TM_ENOTFOUND when dir (or a leading
 * component) does not exist at all; TM_EPARSE when dir or a leading component
 * exists but is not a directory ("units/common is a symlink, not a directory
 * (commit …)"), so that no caller mistakes it for an absent directory; also
 * TM_EPARSE for a malformed commit or tree; TM_ELIMIT past TM_OBJ_MAX_DEPTH
 * levels or TM_OBJ_MAX_PATH bytes. */
#define TM_OBJ_MAX_DEPTH 32
#define TM_OBJ_MAX_PATH 1024
int tm_obj_tree_walk(const struct tm_objsrc *src, const char *commit, const char *dir,
		     int (*cb)(void *ctx, const char *path, int mode, const char *oid), void *ctx);

#endif
