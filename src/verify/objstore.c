/*
 * objstore.c — the object store (repo.git, through source/git.c) as a
 * source of raw objects for verification and the tree walk, in the fetcher
 * child (include/tagmoor/verify/rawobj.h). Every object read is kept, and
 * handed on once (the child sends it to the parent).
 */
#include "tagmoor/verify/rawobj.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/source/git.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tm_objsrc_kept {
	struct tm_objsrc_kept *next;
	char oid[41];
	int type;
	size_t len;
	char data[];
};

static int git_read(void *ctx, const char *oid, int *type, const char **data, size_t *len)
{
	struct tm_objsrc_git *g = ctx;
	struct tm_objsrc_kept *k;
	struct tm_buf b;
	int t = 0, r;

	for (k = g->kept; k; k = k->next) {
		if (strcmp(k->oid, oid) == 0) {
			*type = k->type;
			*data = k->data;
			*len = k->len;
			return 0;
		}
	}
	if (tm_git_has_object(g->git, oid) != 1)
		return tm_error_set(TM_ENOTFOUND, "object %s is not in the fetched objects", oid);
	tm_buf_init(&b, g->max + 1);
	if ((r = tm_git_read_raw(&b, &t, g->git, oid)) < 0) {
		tm_buf_free(&b);
		return r;
	}
	k = malloc(sizeof(*k) + b.len + 1);
	if (!k) {
		tm_buf_free(&b);
		return tm_error_nomem();
	}
	snprintf(k->oid, sizeof(k->oid), "%s", oid);
	k->type = t == 't' ? TM_OBJ_TAG : t == 'T' ? TM_OBJ_TREE : TM_OBJ_COMMIT;
	k->len = b.len;
	if (b.len)
		memcpy(k->data, b.ptr, b.len);
	k->data[b.len] = '\0';
	tm_buf_free(&b);
	k->next = g->kept;
	g->kept = k;
	if (g->keep && (r = g->keep(g->keep_arg, k->type, k->data, k->len)) < 0)
		return r;
	*type = k->type;
	*data = k->data;
	*len = k->len;
	return 0;
}

void tm_objsrc_git_init(struct tm_objsrc *out, struct tm_objsrc_git *g, struct tm_git *git)
{
	g->git = git;
	if (!g->max)
		g->max = 16u << 20;
	g->kept = NULL;
	out->read = git_read;
	out->ctx = g;
}

void tm_objsrc_git_free(struct tm_objsrc_git *g)
{
	while (g->kept) {
		struct tm_objsrc_kept *k = g->kept;
		g->kept = k->next;
		free(k);
	}
}
