/*
 * units.c — what a unit file is to the systemd applier (systemd.h): unit and
 * drop-in names as systemd accepts them, object ids ("web.service",
 * "web.service.d/10-env.conf"), which repository files are the applier's
 * (wants) and parse(): one object per file, its syntax checked the way
 * systemd reads it.
 *
 * Where it sits in the pipeline: plan hands every repository file under the
 * [systemd] paths to wants()/parse(); the applier (systemd.c) reads the ids.
 */
#define _GNU_SOURCE
#include "tagmoor/apply/systemd/systemd.h"
#include "systemd_internal.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const unit_suffixes[] = {
	"service", "socket", "timer", "path", "mount", "target"
};

static int suffix_ok(const char *s)
{
	for (size_t i = 0; i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0]); i++)
		if (strcmp(s, unit_suffixes[i]) == 0)
			return 1;
	return 0;
}

/* systemd's unit_name_is_valid(name, UNIT_NAME_ANY): "prefix[@[instance]].type"
 * with prefix/instance characters from [A-Za-z0-9:_.\-] (and '@' after the
 * first one), a non-empty prefix, fewer than 256 bytes. */
int tm_systemd_unit_name_valid(const char *name)
{
	const char *e, *at = NULL;
	size_t len;

	if (!name || !*name)
		return 0;
	len = strnlen(name, TM_SYSTEMD_NAME_MAX + 1);
	if (len > TM_SYSTEMD_NAME_MAX)
		return 0;
	e = strrchr(name, '.');
	if (!e || e == name || !suffix_ok(e + 1))
		return 0;
	for (const char *p = name; p < e; p++) {
		char c = *p;
		if (c == '@' && !at)
			at = p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@'))
			return 0;
	}
	if (at == name)
		return 0;
	return 1;
}

int tm_systemd_dropin_name_valid(const char *name)
{
	size_t len;

	if (!name || !*name || name[0] == '.')
		return 0;
	len = strnlen(name, TM_SYSTEMD_NAME_MAX + 1);
	if (len > TM_SYSTEMD_NAME_MAX || len <= 5 || strcmp(name + len - 5, ".conf") != 0)
		return 0;
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '-' || c == '_' || c == '.' || c == '@' || c == '+'))
			return 0;
	}
	return 1;
}

int sd_is_template(const char *unit)
{
	const char *at = strchr(unit, '@'), *dot = strrchr(unit, '.');
	return at && dot && at + 1 == dot;
}

int tm_systemd_id_kind(const char *id, char *unit)
{
	const char *slash = strchr(id, '/');
	size_t ulen;

	if (!slash) {
		if (!tm_systemd_unit_name_valid(id))
			return TM_SYSTEMD_NONE;
		if (unit)
			memcpy(unit, id, strlen(id) + 1);
		return TM_SYSTEMD_UNIT;
	}
	if (slash - id < 3 || memcmp(slash - 2, ".d", 2) != 0)
		return TM_SYSTEMD_NONE;
	ulen = (size_t)(slash - id) - 2;
	if (ulen > TM_SYSTEMD_NAME_MAX)
		return TM_SYSTEMD_NONE;
	char name[TM_SYSTEMD_NAME_MAX + 1];
	memcpy(name, id, ulen);
	name[ulen] = '\0';
	if (!tm_systemd_unit_name_valid(name) || !tm_systemd_dropin_name_valid(slash + 1))
		return TM_SYSTEMD_NONE;
	if (unit)
		memcpy(unit, name, ulen + 1);
	return TM_SYSTEMD_DROPIN;
}

/* Trims ASCII white space (systemd strips " \t\n\r") off both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\n'))
		(*s)++;
	while (*e > *s &&
	       ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r' || (*e)[-1] == '\n'))
		(*e)--;
}

int tm_systemd_has_install(const char *content, size_t len)
{
	const char *p = content, *end = content + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end;
		trim(&ls, &le);
		if (le - ls == 9 && memcmp(ls, "[Install]", 9) == 0)
			return 1;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int has_unit_suffix(const char *name, size_t len)
{
	const char *dot = NULL;
	char suffix[16];

	for (size_t i = len; i > 0; i--)
		if (name[i - 1] == '.') {
			dot = name + i - 1;
			break;
		}
	if (!dot || (size_t)(name + len - dot - 1) >= sizeof(suffix))
		return 0;
	memcpy(suffix, dot + 1, (size_t)(name + len - dot - 1));
	suffix[name + len - dot - 1] = '\0';
	return suffix_ok(suffix);
}

/* The directory component just above the file: [*d, *d + *dlen). */
static int parent_dir(const char *path, const char **d, size_t *dlen)
{
	const char *slash = strrchr(path, '/');
	const char *start;

	if (!slash)
		return -1;
	start = slash;
	while (start > path && start[-1] != '/')
		start--;
	*d = start;
	*dlen = (size_t)(slash - start);
	return 0;
}

int sd_wants(const char *path, const char *basename)
{
	size_t blen = strlen(basename), dlen;
	const char *d;

	if (has_unit_suffix(basename, blen))
		return 1;
	if (blen > 5 && strcmp(basename + blen - 5, ".conf") == 0 &&
	    parent_dir(path, &d, &dlen) == 0 && dlen > 2 && memcmp(d + dlen - 2, ".d", 2) == 0 &&
	    has_unit_suffix(d, dlen - 2))
		return 1;
	return 0;
}

/* A light syntax check: text without NUL; every line blank, a comment, a
 * [Section] header, a Key=Value assignment inside a section, or the
 * continuation of a line ending in '\'. systemd ignores other lines with a
 * warning; a repository that has them almost certainly means something else. */
static int check_syntax(const char *path, const char *content, size_t len)
{
	const char *p = content, *end = content + len;
	unsigned line = 0;
	int continued = 0, in_section = 0;

	if (memchr(content, '\0', len))
		return tm_error_set(TM_EPARSE, "%.256s: not a text file (contains NUL bytes)",
				    path);
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3; /* systemd skips a UTF-8 byte order mark */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end;
		int was_continued = continued;

		line++;
		p = nl ? nl + 1 : end;
		trim(&ls, &le);
		continued = 0;
		if (ls == le)
			continue;
		if (*ls == '#' || *ls == ';') {
			continued = was_continued; /* comments inside a continuation are skipped */
			continue;
		}
		if (le[-1] == '\\')
			continued = 1;
		if (was_continued)
			continue;
		if (*ls == '[') {
			if (le[-1] != ']' || le - ls < 3)
				return tm_error_set(TM_EPARSE,
						    "%.256s:%u: malformed section header", path,
						    line);
			in_section = 1;
			continue;
		}
		if (!memchr(ls, '=', (size_t)(le - ls)))
			return tm_error_set(TM_EPARSE, "%.256s:%u: expected Key=Value or [Section]",
					    path, line);
		if (!in_section)
			return tm_error_set(TM_EPARSE,
					    "%.256s:%u: assignment outside of a [Section]", path,
					    line);
	}
	return 0;
}

int sd_parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
	     const char *relpath, const char *content, size_t len)
{
	const char *base = base_of(path);
	char id[2 * TM_SYSTEMD_NAME_MAX + 2];
	size_t blen = strlen(base);
	int r;

	(void)ctx;
	(void)relpath; /* the id never depends on where below a paths entry the file is */
	if (has_unit_suffix(base, blen)) {
		if (!tm_systemd_unit_name_valid(base))
			return tm_error_set(TM_EPARSE,
					    "%.256s: \"%.256s\" is not a valid unit name", path,
					    base);
		memcpy(id, base, blen + 1);
	} else {
		const char *d;
		size_t dlen;
		char unit[TM_SYSTEMD_NAME_MAX + 1];

		if (parent_dir(path, &d, &dlen) < 0 || dlen < 3 ||
		    memcmp(d + dlen - 2, ".d", 2) != 0)
			return tm_error_set(TM_EPARSE, "%.256s: not a unit file or drop-in", path);
		if (dlen - 2 > TM_SYSTEMD_NAME_MAX)
			return tm_error_set(TM_EPARSE, "%.256s: unit name too long", path);
		memcpy(unit, d, dlen - 2);
		unit[dlen - 2] = '\0';
		if (!tm_systemd_unit_name_valid(unit))
			return tm_error_set(TM_EPARSE,
					    "%.256s: \"%.256s\" is not a valid unit name", path,
					    unit);
		if (!tm_systemd_dropin_name_valid(base))
			return tm_error_set(TM_EPARSE,
					    "%.256s: \"%.256s\" is not a valid drop-in file name",
					    path, base);
		snprintf(id, sizeof(id), "%s.d/%s", unit, base);
	}
	if ((r = check_syntax(path, content, len)) < 0)
		return r;
	return tm_objset_add(out, id, path, content, len, NULL);
}

void sd_free_data(void *data)
{
	free(data);
}
