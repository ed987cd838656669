/*
 * applier.c — the small containers shared by every applier: the set of
 * desired objects and the per-pass result.
 */
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/error.h"

#include <stdlib.h>
#include <string.h>

int tm_strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));
	char *copy;

	if (!nv)
		return tm_error_nomem();
	*v = nv;
	if (!(copy = strdup(s)))
		return tm_error_nomem();
	(*v)[(*n)++] = copy;
	return 0;
}

void tm_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

long tm_objset_find(const struct tm_objset *set, const char *id)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->v[i].id, id) == 0)
			return (long)i;
	return -1;
}

int tm_objset_take(struct tm_objset *set, const char *id, const char *source, char *content,
		   size_t len, void *data)
{
	struct tm_object o = { 0 };

	o.id = strdup(id);
	o.source = strdup(source ? source : "");
	o.content = content;
	o.len = len;
	o.data = data;
	if (!o.id || !o.source || !o.content)
		goto nomem;
	if (set->n == set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 16;
		struct tm_object *nv = realloc(set->v, ncap * sizeof(*nv));
		if (!nv)
			goto nomem;
		set->v = nv;
		set->cap = ncap;
	}
	set->v[set->n++] = o;
	return 0;
nomem:
	free(o.id);
	free(o.source);
	free(o.content);
	return tm_error_nomem();
}

int tm_objset_add(struct tm_objset *set, const char *id, const char *source, const char *content,
		  size_t len, void *data)
{
	char *c = malloc(len + 1);

	if (c) {
		memcpy(c, content, len);
		c[len] = '\0';
	}
	return tm_objset_take(set, id, source, c, len, data);
}

void tm_objset_free(struct tm_objset *set, void (*free_data)(void *))
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].id);
		free(set->v[i].source);
		free(set->v[i].content);
		if (free_data && set->v[i].data)
			free_data(set->v[i].data);
	}
	free(set->v);
	set->v = NULL;
	set->n = set->cap = 0;
}

void tm_apply_result_free(struct tm_apply_result *res)
{
	tm_strv_free(res->unhealthy, res->nunhealthy);
	tm_strv_free(res->changed, res->nchanged);
	tm_strv_free(res->drifted, res->ndrifted);
	free(res->error_object);
	memset(res, 0, sizeof(*res));
}

int tm_apply_result_set_object(struct tm_apply_result *res, const char *id)
{
	if (res->error_object)
		return 0;
	if (!(res->error_object = strdup(id)))
		return tm_error_nomem();
	return 0;
}
