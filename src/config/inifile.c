/*
 * inifile.c — the INI file read with inih (the only file that includes ini.h): a custom line
 * reader counts lines (Debian's inih is built without INI_HANDLER_LINENO) and checks section
 * headers itself, so that even an empty unknown section is an error; the handler (config.c)
 * only collects raw entries.
 */
#include "config_internal.h"
#include "tagmoor/core/error.h"

#include <ini.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void trim(char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* Checks a section header line before inih sees it. */
static void check_header(struct loader *ld, const char *line, size_t n)
{
	char *s = (char *)line, name[64];
	size_t len = n;
	const char *semi;

	trim(&s, &len);
	if (len == 0 || s[0] != '[')
		return;
	semi = memchr(s, ']', len);
	if (!semi) {
		cfg_fail(ld, ld->line, NULL, NULL, "section header without ']'");
		return;
	}
	len = (size_t)(semi - s - 1);
	if (len == 0 || len >= sizeof(name)) {
		cfg_fail(ld, ld->line, NULL, NULL, "invalid section name");
		return;
	}
	memcpy(name, s + 1, len);
	name[len] = '\0';
	int idx = cfg_section_index(name);
	if (idx < 0) {
		cfg_fail(
			ld, ld->line, name, NULL,
			"unknown section (known: agent, source, verify, vars, kubernetes, systemd, "
			"report)");
		return;
	}
	if (ld->section_line[idx]) {
		cfg_fail(ld, ld->line, name, NULL, "section repeated (first at line %d)",
			 ld->section_line[idx]);
		return;
	}
	ld->section_line[idx] = ld->line;
}

/* inih's fgets-like reader: one line per call, counted. */
static char *reader(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	size_t avail, n;
	const char *nl;

	if (ld->pos >= ld->len || num < 2)
		return NULL;
	avail = ld->len - ld->pos;
	nl = memchr(ld->text + ld->pos, '\n', avail);
	n = nl ? (size_t)(nl - (ld->text + ld->pos)) + 1 : avail;
	ld->line++;
	if (n > (size_t)num - 1) {
		cfg_fail(ld, ld->line, NULL, NULL, "line longer than %d bytes", num - 2);
		/* Skip the whole line so inih does not see its tail as a new line. */
		memcpy(str, "\n", 2);
		ld->pos += n;
		return str;
	}
	if (memchr(ld->text + ld->pos, '\0', n)) {
		cfg_fail(ld, ld->line, NULL, NULL, "NUL byte in line");
		memcpy(str, "\n", 2);
		ld->pos += n;
		return str;
	}
	memcpy(str, ld->text + ld->pos, n);
	str[n] = '\0';
	ld->pos += n;
	check_header(ld, str, n);
	return str;
}

int cfg_ini_read(struct loader *ld, int (*handler)(void *user, const char *section,
						   const char *name, const char *value))
{
	int rc = ini_parse_stream(reader, ld, handler, ld);

	if (ld->err)
		return TM_ECONFIG;
	if (rc != 0)
		return cfg_fail(ld, rc > 0 ? rc : ld->line, NULL, NULL,
				"syntax error (expected [section], key = value, or a ; comment)");
	return 0;
}
