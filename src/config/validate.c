/*
 * validate.c — one expanded value into the struct field its key describes (store), by the
 * key's type: strings, paths, URLs, refs and names checked, durations, sizes, numbers and
 * percentages in range, enums by name, lists of repository paths; and the validators.
 */
#define _GNU_SOURCE
#include "config_internal.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_valid_var_name(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

static int valid_path(const char *v)
{
	return v[0] == '/' && !strstr(v, "/../") &&
	       strcmp(v + strlen(v) - (strlen(v) >= 3 ? 3 : 0), "/..") != 0;
}

int cfg_valid_name(const char *v)
{
	if (!*v || strlen(v) > 253)
		return 0;
	for (; *v; v++)
		if (!(isalnum((unsigned char)*v) || *v == '.' || *v == '_' || *v == '-'))
			return 0;
	return 1;
}

/* A Kubernetes namespace name (RFC 1123 label). */
int cfg_valid_dns_label(const char *v)
{
	size_t n = strlen(v);

	if (!n || n > 63 || v[0] == '-' || v[n - 1] == '-')
		return 0;
	for (; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') || *v == '-'))
			return 0;
	return 1;
}

/* git's check-ref-format rules, enough to refuse what a fleet would mistype. */
static int valid_ref(const char *v)
{
	const char *rest;

	if (strncmp(v, "refs/tags/", 10) == 0)
		rest = v + 10;
	else if (strncmp(v, "refs/heads/", 11) == 0)
		rest = v + 11;
	else
		return 0;
	if (!*rest || strlen(v) > 255 || strstr(v, "..") || strstr(v, "//") || strstr(v, "@{"))
		return 0;
	if (rest[strlen(rest) - 1] == '/' || rest[strlen(rest) - 1] == '.' || rest[0] == '/')
		return 0;
	if (strlen(v) >= 5 && strcmp(v + strlen(v) - 5, ".lock") == 0)
		return 0;
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x21 || c == 0x7f || strchr("~^:?*[\\", c))
			return 0;
		if (c == '.' && (p == v || p[-1] == '/'))
			return 0;
	}
	return 1;
}

static int valid_url(const char *v)
{
	const char *host;
	size_t n;

	if (strncmp(v, "https://", 8) != 0)
		return 0;
	host = v + 8;
	n = strcspn(host, "/?#");
	if (n == 0)
		return 0;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static int parse_list(struct tm_strlist *out, const char *v, char *why, size_t whylen)
{
	const char *p = v;

	out->v = NULL;
	out->n = 0;
	while (*p) {
		size_t n;
		char *item, **nv;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " \t");
		if (out->n >= MAX_PATHS) {
			snprintf(why, whylen, "more than %d paths", MAX_PATHS);
			return -1;
		}
		item = strndup(p, n);
		if (!item) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		/* Repository paths: relative, no "..", no empty components. */
		int bad = item[0] == '/' || strcmp(item, "..") == 0 ||
			  strncmp(item, "../", 3) == 0 || strstr(item, "/../") ||
			  (n >= 3 && strcmp(item + n - 3, "/..") == 0) || strstr(item, "//");
		if (bad) {
			snprintf(why, whylen,
				 "path '%.64s' must be relative to the repository and must not "
				 "contain '..'",
				 item);
			free(item);
			return -1;
		}
		/* Normalise "dir/" → "dir" and "." → "" (the whole tree). */
		while (n > 1 && item[n - 1] == '/')
			item[--n] = '\0';
		if (strcmp(item, ".") == 0)
			item[0] = '\0';
		nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
		if (!nv) {
			free(item);
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		out->v = nv;
		out->v[out->n++] = item;
		p += n;
	}
	if (out->n == 0) {
		snprintf(why, whylen, "at least one path is required");
		return -1;
	}
	return 0;
}

void cfg_strlist_free(struct tm_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* A string-like value (text, path, URL, ref, name): checked, then copied. */
static int store_text(struct loader *ld, const struct key_def *k, const char *v, int line,
		      char *field)
{
	if (!*v)
		return cfg_fail(ld, line, k->section, k->name, "empty value");
	if (k->type == T_PATH && !valid_path(v))
		return cfg_fail(ld, line, k->section, k->name,
				"'%.128s' must be an absolute path without '..'", v);
	if (k->type == T_URL && !valid_url(v))
		return cfg_fail(ld, line, k->section, k->name,
				"must be an https:// URL with a host");
	if (k->type == T_REF && !valid_ref(v))
		return cfg_fail(ld, line, k->section, k->name,
				"'%.128s' is not a valid refs/tags/NAME or refs/heads/NAME", v);
	if (k->type == T_NAME && !cfg_valid_name(v))
		return cfg_fail(ld, line, k->section, k->name,
				"'%.64s' may contain only letters, digits, '.', '_' and '-'", v);
	free(*(char **)field);
	*(char **)field = strdup(v);
	if (!*(char **)field)
		return cfg_fail(ld, line, k->section, k->name, "out of memory");
	return 0;
}

/* A number (duration, size, integer, percentage) within the key's range. */
static int store_number(struct loader *ld, const struct key_def *k, const char *v, int line,
			char *field)
{
	char a[32], b[32];
	uint64_t u;
	unsigned pct;

	switch (k->type) {
	case T_DURATION:
		if (tm_parse_duration(&u, v) < 0)
			return cfg_fail(ld, line, k->section, k->name, "%s", tm_error_last());
		if (u != 0 && (u < k->min || u > k->max)) {
			tm_format_duration(a, sizeof(a), k->min);
			tm_format_duration(b, sizeof(b), k->max);
			return cfg_fail(ld, line, k->section, k->name,
					"'%.64s' is out of range (%s to %s)", v, a, b);
		}
		if (u == 0 && k->min > 0) {
			tm_format_duration(a, sizeof(a), k->min);
			return cfg_fail(ld, line, k->section, k->name, "must be at least %s", a);
		}
		*(uint64_t *)field = u;
		return 0;
	case T_SIZE:
		if (tm_parse_size(&u, v) < 0)
			return cfg_fail(ld, line, k->section, k->name, "%s", tm_error_last());
		if (u < k->min || u > k->max) {
			tm_format_size(a, sizeof(a), k->min);
			tm_format_size(b, sizeof(b), k->max);
			return cfg_fail(ld, line, k->section, k->name,
					"'%.64s' is out of range (%s to %s)", v, a, b);
		}
		*(uint64_t *)field = u;
		return 0;
	case T_UINT:
		if (tm_parse_uint(&u, v) < 0)
			return cfg_fail(ld, line, k->section, k->name, "%s", tm_error_last());
		if (u < k->min || u > k->max)
			return cfg_fail(ld, line, k->section, k->name,
					"%llu is out of range (%llu to %llu)",
					(unsigned long long)u, (unsigned long long)k->min,
					(unsigned long long)k->max);
		*(uint64_t *)field = u;
		return 0;
	case T_PERCENT:
		if (tm_parse_percent(&pct, v) < 0)
			return cfg_fail(ld, line, k->section, k->name, "%s", tm_error_last());
		if (pct > k->max)
			return cfg_fail(ld, line, k->section, k->name,
					"'%.64s' is over the maximum of %llu%%", v,
					(unsigned long long)k->max);
		*(unsigned *)field = pct;
		return 0;
	default:
		break;
	}
	return cfg_fail(ld, line, k->section, k->name, "internal: unknown type");
}

/* An enum value by name; the error lists the names. */
static int store_enum(struct loader *ld, const struct key_def *k, const char *v, int line,
		      char *field)
{
	struct tm_buf list;
	for (int i = 0; k->enums[i]; i++) {
		if (strcmp(k->enums[i], v) == 0) {
			*(int *)field = i;
			return 0;
		}
	}
	tm_buf_init(&list, 256);
	for (int i = 0; k->enums[i]; i++)
		tm_buf_printf(&list, "%s%s", i ? ", " : "", k->enums[i]);
	cfg_fail(ld, line, k->section, k->name, "'%.64s' is not one of: %s", v,
		 list.ptr ? list.ptr : "");
	tm_buf_free(&list);
	return TM_ECONFIG;
}

/* Parses one expanded value into the struct field described by k. */
int cfg_store(struct loader *ld, struct tm_config *cfg, const struct key_def *k, const char *v,
	      int line)
{
	char *field = (char *)cfg + k->offset;
	char why[256];
	int bv;

	switch (k->type) {
	case T_STR:
	case T_PATH:
	case T_URL:
	case T_REF:
	case T_NAME:
		return store_text(ld, k, v, line, field);
	case T_DURATION:
	case T_SIZE:
	case T_UINT:
	case T_PERCENT:
		return store_number(ld, k, v, line, field);
	case T_BOOL:
		if (tm_parse_bool(&bv, v) < 0)
			return cfg_fail(ld, line, k->section, k->name, "%s", tm_error_last());
		*(int *)field = bv;
		return 0;
	case T_ENUM:
		return store_enum(ld, k, v, line, field);
	case T_LIST: {
		struct tm_strlist *l = (struct tm_strlist *)field;
		cfg_strlist_free(l);
		if (parse_list(l, v, why, sizeof(why)) < 0) {
			cfg_strlist_free(l);
			return cfg_fail(ld, line, k->section, k->name, "%s", why);
		}
		return 0;
	}
	}
	return cfg_fail(ld, line, k->section, k->name, "internal: unknown type");
}
