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
	struct tm_objsrc_kept *next, *chain;
	char oid[41];
	int type;
	size_t len;
	char *data; /* the buffer it was read into, NUL-terminated */
};

/* The kept objects are a list (for freeing) and a hash index by the id's first hex digits. */
static size_t slot_of(const char *oid, size_t nslots)
{
	size_t h = 0;

	for (int i = 0; i < 8 && oid[i]; i++)
		h = h * 16 + (size_t)(oid[i] <= '9' ? oid[i] - '0' : (oid[i] | 0x20) - 'a' + 10);
	return h & (nslots - 1);
}

static struct tm_objsrc_kept *find_kept(const struct tm_objsrc_git *g, const char *oid)
{
	if (!g->nslots)
		return NULL;
	for (struct tm_objsrc_kept *k = g->slots[slot_of(oid, g->nslots)]; k; k = k->chain)
		if (strcmp(k->oid, oid) == 0)
			return k;
	return NULL;
}

static int index_kept(struct tm_objsrc_git *g, struct tm_objsrc_kept *k)
{
	if (g->nkept >= g->nslots) { /* at most one per slot on average */
		size_t n = g->nslots ? g->nslots * 4 : 64;
		struct tm_objsrc_kept **s = calloc(n, sizeof(*s));
		if (!s)
			return tm_error_nomem();
		for (struct tm_objsrc_kept *x = g->kept; x; x = x->next) {
			size_t i = slot_of(x->oid, n);
			x->chain = s[i];
			s[i] = x;
		}
		free(g->slots);
		g->slots = s;
		g->nslots = n;
	} else {
		size_t i = slot_of(k->oid, g->nslots);
		k->chain = g->slots[i];
		g->slots[i] = k;
	}
	g->nkept++;
	return 0;
}

static int git_read(void *ctx, const char *oid, int *type, const char **data, size_t *len)
{
	struct tm_objsrc_git *g = ctx;
	struct tm_objsrc_kept *k = find_kept(g, oid);
	struct tm_buf b;
	int t = 0, r;

	if (k) {
		*type = k->type;
		*data = k->data;
		*len = k->len;
		return 0;
	}
	if (tm_git_has_object(g->git, oid) != 1)
		return tm_error_set(TM_ENOTFOUND, "object %s is not in the fetched objects", oid);
	tm_buf_init(&b, g->max + 1);
	if ((r = tm_git_read_raw(&b, &t, g->git, oid)) < 0) {
		tm_buf_free(&b);
		return r;
	}
	/* the object keeps the buffer it was read into (no second copy) */
	k = malloc(sizeof(*k));
	if (k)
		k->len = b.len;
	if (!k || !(k->data = tm_buf_detach_fit(&b))) {
		free(k);
		tm_buf_free(&b);
		return tm_error_nomem();
	}
	snprintf(k->oid, sizeof(k->oid), "%s", oid);
	k->type = t == 't' ? TM_OBJ_TAG : t == 'T' ? TM_OBJ_TREE : TM_OBJ_COMMIT;
	k->next = g->kept;
	g->kept = k;
	if ((r = index_kept(g, k)) < 0)
		return r;
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
	g->slots = NULL;
	g->nslots = g->nkept = 0;
	out->read = git_read;
	out->ctx = g;
}

void tm_objsrc_git_free(struct tm_objsrc_git *g)
{
	while (g->kept) {
		struct tm_objsrc_kept *k = g->kept;
		g->kept = k->next;
		free(k->data);
		free(k);
	}
	free(g->slots);
	g->slots = NULL;
	g->nslots = g->nkept = 0;
}
