/*
 * rawobj.c — raw Git objects: ids, the table the parent builds of what the
 * fetcher child sent, and the one tree walk over any source
 * (include/tagmoor/verify/rawobj.h; the object store as a source is
 * objstore.c). The tree parser sees bytes the
 * parent did not fetch itself: strict, bounded, fuzzed with the message.
 */
#include "tagmoor/verify/rawobj.h"
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/verify/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexd[] = "0123456789abcdef";

static int from_hex(unsigned char id[20], const char *s)
{
	for (size_t i = 0; i < 40; i++) {
		const char *p = s[i] ? strchr(hexd, s[i]) : NULL;
		if (!p)
			return -1;
		if (i % 2 == 0)
			id[i / 2] = (unsigned char)((p - hexd) << 4);
		else
			id[i / 2] |= (unsigned char)(p - hexd);
	}
	return s[40] == '\0' ? 0 : -1;
}

const char *tm_obj_type_name(int type)
{
	switch (type) {
	case TM_OBJ_COMMIT:
		return "commit";
	case TM_OBJ_TREE:
		return "tree";
	case TM_OBJ_BLOB:
		return "blob";
	case TM_OBJ_TAG:
		return "tag";
	default:
		return "object";
	}
}

static int raw_id(unsigned char id[20], int type, const char *data, size_t len)
{
	char head[48];
	int n = snprintf(head, sizeof(head), "%s %zu", tm_obj_type_name(type), len);
	struct tm_span parts[2] = { { head, (size_t)n + 1 }, { data, len } };

	return tm_crypto_hashv(id, TM_HASH_SHA1, parts, 2);
}

int tm_obj_id(char out[41], int type, const char *data, size_t len)
{
	unsigned char id[20];
	int r = raw_id(id, type, data, len);

	if (r == 0)
		tm_hex(out, id, 20);
	return r;
}

/* --- the table ------------------------------------------------------------- */

int tm_objtab_add(struct tm_objtab *t, int type, const char *data, size_t len)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		struct tm_objtab_ent *nv = realloc(t->v, ncap * sizeof(*nv));
		if (!nv)
			return tm_error_nomem();
		t->v = nv;
		t->cap = ncap;
	}
	t->v[t->n].type = type;
	t->v[t->n].data = data;
	t->v[t->n].len = len;
	if (raw_id(t->v[t->n].id, type, data, len) < 0)
		return TM_ERROR;
	t->n++;
	t->sorted = 0;
	return 0;
}

static int by_id(const void *a, const void *b)
{
	return memcmp(((const struct tm_objtab_ent *)a)->id, ((const struct tm_objtab_ent *)b)->id,
		      20);
}

static int tab_read(void *ctx, const char *oid, int *type, const char **data, size_t *len)
{
	struct tm_objtab *t = ctx;
	struct tm_objtab_ent key, *e;

	if (from_hex(key.id, oid) < 0)
		return tm_error_set(TM_EPARSE, "'%.64s' is not an object id", oid);
	if (!t->sorted) {
		if (t->n)
			qsort(t->v, t->n, sizeof(*t->v), by_id);
		t->sorted = 1;
	}
	e = t->n ? bsearch(&key, t->v, t->n, sizeof(*t->v), by_id) : NULL;
	if (!e)
		return tm_error_set(TM_ENOTFOUND, "object %s is not in what the fetcher sent", oid);
	*type = e->type;
	*data = e->data;
	*len = e->len;
	return 0;
}

void tm_objtab_source(struct tm_objsrc *out, struct tm_objtab *t)
{
	out->read = tab_read;
	out->ctx = t;
}

void tm_objtab_free(struct tm_objtab *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* --- trees ----------------------------------------------------------------- */

struct entry {
	int mode;
	const char *name;
	size_t name_len;
	char oid[41];
};

/* The next entry of a raw tree at *pos: "MODE NAME\0<20 bytes>". 1 with e
 * set, 0 at the end, TM_EPARSE when malformed. */
static int tree_next(struct entry *e, const char *t, size_t len, size_t *pos, const char *oid)
{
	size_t p = *pos, digits = 0;
	const char *nul;

	if (p >= len)
		return 0;
	e->mode = 0;
	while (p < len && t[p] != ' ') {
		if (t[p] < '0' || t[p] > '7' || ++digits > 6)
			return tm_error_set(TM_EPARSE, "tree %s: a malformed entry mode", oid);
		e->mode = e->mode * 8 + (t[p++] - '0');
	}
	if (p >= len || digits == 0)
		return tm_error_set(TM_EPARSE, "tree %s: a malformed entry", oid);
	p++;
	nul = memchr(t + p, '\0', len - p);
	if (!nul || nul == t + p || (size_t)(nul - t) + 21 > len)
		return tm_error_set(TM_EPARSE, "tree %s: a malformed entry name", oid);
	e->name = t + p;
	e->name_len = (size_t)(nul - (t + p));
	tm_hex(e->oid, nul + 1, 20);
	*pos = (size_t)(nul - t) + 21;
	return 1;
}

static int is_tree(int mode)
{
	return (mode & 0170000) == 0040000;
}

static int read_typed(const struct tm_objsrc *src, const char *oid, int want, const char **data,
		      size_t *len)
{
	int type = 0, r = src->read(src->ctx, oid, &type, data, len);

	if (r < 0)
		return r == TM_ENOTFOUND ? tm_error_set(TM_EPARSE, "%s", tm_error_last()) : r;
	if (type != want)
		return tm_error_set(TM_EPARSE, "object %s is a %s, not a %s", oid,
				    tm_obj_type_name(type), tm_obj_type_name(want));
	return 0;
}

struct walk {
	const struct tm_objsrc *src;
	int (*cb)(void *, const char *, int, const char *);
	void *ctx;
	char path[TM_OBJ_MAX_PATH + 1];
};

static int walk_tree(struct walk *w, const char *oid, size_t plen, int depth)
{
	const char *t;
	size_t len, pos = 0;
	struct entry e;
	int r;

	if ((r = read_typed(w->src, oid, TM_OBJ_TREE, &t, &len)) < 0)
		return r;
	while ((r = tree_next(&e, t, len, &pos, oid)) == 1) {
		size_t full = plen + (plen ? 1 : 0) + e.name_len;

		if (full > TM_OBJ_MAX_PATH)
			return tm_error_set(TM_ELIMIT, "path %.64s/%.64s... longer than %d bytes",
					    w->path, e.name, TM_OBJ_MAX_PATH);
		if (plen)
			w->path[plen] = '/';
		memcpy(w->path + full - e.name_len, e.name, e.name_len);
		w->path[full] = '\0';
		if (is_tree(e.mode)) {
			if (depth + 1 > TM_OBJ_MAX_DEPTH)
				return tm_error_set(TM_ELIMIT,
						    "%.128s: directories nested deeper than %d",
						    w->path, TM_OBJ_MAX_DEPTH);
			r = walk_tree(w, e.oid, full, depth + 1);
		} else {
			r = w->cb(w->ctx, w->path, e.mode, e.oid);
		}
		w->path[plen] = '\0';
		if (r != 0)
			return r;
	}
	return r;
}

static const char *what_mode(int mode)
{
	if (mode == 0120000)
		return "a symlink";
	if (mode == 0160000)
		return "a submodule";
	if (mode == 0100644 || mode == 0100755)
		return "a regular file";
	return "not a tree";
}

/* The tree of dir[0..plen) below root into out: 0, TM_ENOTFOUND (absent) or
 * TM_EPARSE (a component is not a directory). */
static int find_dir(char out[41], const struct tm_objsrc *src, const char *root, const char *dir,
		    size_t plen, const char *commit)
{
	size_t at = 0;

	snprintf(out, 41, "%s", root);
	while (at < plen) {
		size_t n = 0, pos = 0;
		const char *t;
		size_t len;
		struct entry e;
		int r, found = 0;

		while (at + n < plen && dir[at + n] != '/')
			n++;
		if ((r = read_typed(src, out, TM_OBJ_TREE, &t, &len)) < 0)
			return r;
		while ((r = tree_next(&e, t, len, &pos, out)) == 1)
			if (e.name_len == n && memcmp(e.name, dir + at, n) == 0) {
				found = 1;
				break;
			}
		if (r < 0)
			return r;
		if (!found || n == 0)
			return tm_error_set(TM_ENOTFOUND, "%.256s: no such directory in commit %s",
					    dir, commit);
		if (!is_tree(e.mode)) {
			if (at + n == plen)
				return tm_error_set(TM_EPARSE,
						    "%.256s is %s, not a directory (commit %s)",
						    dir, what_mode(e.mode), commit);
			return tm_error_set(TM_EPARSE,
					    "%.*s is %s, not a directory (in the path %.256s, "
					    "commit %s)",
					    (int)(at + n), dir, what_mode(e.mode), dir, commit);
		}
		snprintf(out, 41, "%s", e.oid);
		at += n + 1;
	}
	return 0;
}

int tm_obj_tree_walk(const struct tm_objsrc *src, const char *commit, const char *dir,
		     int (*cb)(void *ctx, const char *path, int mode, const char *oid), void *ctx)
{
	struct walk *w;
	const char *c;
	char root[41], start[41];
	size_t len, plen = 0;
	int type = 0, r;

	r = src->read(src->ctx, commit, &type, &c, &len);
	if (r == TM_ENOTFOUND)
		return tm_error_set(TM_ENOTFOUND, "commit %s not found", commit);
	if (r < 0)
		return r;
	if (type != TM_OBJ_COMMIT || len < 46 || memcmp(c, "tree ", 5) != 0 || c[45] != '\n')
		return tm_error_set(TM_EPARSE, "%s is not a commit with a tree", commit);
	memcpy(root, c + 5, 40);
	root[40] = '\0';
	{
		unsigned char id[20];
		if (from_hex(id, root) < 0)
			return tm_error_set(TM_EPARSE, "commit %s: a malformed tree line", commit);
	}
	while (dir && *dir == '/')
		dir++;
	plen = dir ? strlen(dir) : 0;
	while (plen > 0 && dir[plen - 1] == '/')
		plen--;
	if (plen > TM_OBJ_MAX_PATH)
		return tm_error_set(TM_ELIMIT, "path too long");
	if (!(w = calloc(1, sizeof(*w))))
		return tm_error_nomem();
	if (plen)
		memcpy(w->path, dir, plen);
	w->path[plen] = '\0';
	if ((r = find_dir(start, src, root, w->path, plen, commit)) < 0) {
		free(w);
		return r;
	}
	w->src = src;
	w->cb = cb;
	w->ctx = ctx;
	r = walk_tree(w, start, plen, 0);
	free(w);
	return r;
}
