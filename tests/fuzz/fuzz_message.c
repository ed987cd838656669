/*
 * fuzz_message.c — the fetcher child's message as the privileged parent reads
 * it (privsep/message.c): a compromised child controls every byte. What
 * decodes must lie inside the input, and encode back to the very same bytes
 * (the encoding is canonical: nothing the decoder accepts is ambiguous).
 * The objects it carries go through the parent's table and its tree walk
 * (verify/rawobj.c), once under their real ids and once with any id read
 * as the next object (so that mutated trees are walked, not only looked up).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/core/error.h"
#include "tagmoor/privsep/message.h"
#include "tagmoor/verify/rawobj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *p, size_t n, const uint8_t *data, size_t size)
{
	return p >= (const char *)data && p + n < (const char *)data + size + 1;
}

/* Any id reads the next object in turn (at most 2,000 reads per walk). */
struct any {
	const struct tm_msg *m;
	size_t next, reads;
};

static int any_read(void *ctx, const char *oid, int *type, const char **data, size_t *len)
{
	struct any *a = ctx;
	const struct tm_msg_obj *o;

	(void)oid;
	if (!a->m->nobjs || ++a->reads > 2000)
		return TM_ENOTFOUND;
	o = &a->m->objs[a->next++ % a->m->nobjs];
	*type = (int)o->type;
	*data = o->data;
	*len = o->len;
	return 0;
}

static int seen(void *ctx, const char *path, int mode, const char *oid)
{
	(void)mode;
	if (!path[0] || strlen(oid) != 40)
		__builtin_trap();
	return ++*(size_t *)ctx > 100000;
}

static void walks(struct tm_msg *m)
{
	struct tm_objtab tab = { 0 };
	struct tm_objsrc src;
	struct any a = { m, 0, 0 };
	size_t n = 0;

	for (size_t i = 0; i < m->nobjs; i++)
		if (tm_objtab_add(&tab, (int)m->objs[i].type, m->objs[i].data, m->objs[i].len))
			break;
	tm_objtab_source(&src, &tab);
	for (size_t i = 0; i < m->nsets; i++)
		for (size_t j = 0; j < m->sets[i].ndirs; j++)
			tm_obj_tree_walk(&src, m->sets[i].commit, m->sets[i].dirs[j].path, seen,
					 &n);
	src.read = any_read;
	src.ctx = &a;
	tm_obj_tree_walk(&src, "0000000000000000000000000000000000000000",
			 m->nsets && m->sets[0].ndirs ? m->sets[0].dirs[0].path : "", seen, &n);
	tm_objtab_free(&tab);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_msg m;
	struct tm_buf b;

	if (tm_msg_decode(&m, (const char *)data, size) != 0)
		return 0;
	if (!inside(m.oid, strlen(m.oid), data, size) ||
	    !inside(m.error, strlen(m.error), data, size))
		__builtin_trap();
	for (size_t i = 0; i < m.nsets; i++)
		for (size_t j = 0; j < m.sets[i].ndirs; j++)
			for (size_t k = 0; k < m.sets[i].dirs[j].nfiles; k++) {
				const struct tm_msg_file *f = &m.sets[i].dirs[j].files[k];
				if (f->data && (!inside(f->data, (size_t)f->size, data, size) ||
						f->data[f->size] != '\0'))
					__builtin_trap();
			}
	walks(&m);
	tm_buf_init(&b, size + 1);
	if (tm_msg_encode(&b, &m) != 0 || b.len != size || memcmp(b.ptr, data, size) != 0)
		__builtin_trap();
	tm_buf_free(&b);
	tm_msg_free(&m);
	return 0;
}
