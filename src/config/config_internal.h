/*
 * config_internal.h — what the files of the configuration room share (not a public header;
 * config.h is), each function with the cfg_ prefix:
 *   config.c    the one table of keys, collecting raw entries, loading, freeing, printing;
 *   inifile.c   reading the INI file with inih (the only file that includes ini.h);
 *   expand.c    ${var} expansion (INI values and repository content);
 *   validate.c  a value into its field by the key's type, with the validators.
 */
#ifndef TAGMOOR_CONFIG_INTERNAL_H
#define TAGMOOR_CONFIG_INTERNAL_H

#include "tagmoor/config/config.h"
#include "tagmoor/core/buf.h"

#include <stddef.h>
#include <stdint.h>

#define VALUE_MAX 4096
#define MAX_VARS 256
#define MAX_PATHS 64

enum key_type {
	T_STR,  /* free text */
	T_PATH, /* a file or directory path (absolute) */
	T_URL,  /* https:// URL */
	T_REF,  /* refs/tags/X or refs/heads/X */
	T_DURATION,
	T_SIZE,
	T_UINT,
	T_BOOL,
	T_PERCENT,
	T_ENUM,
	T_LIST, /* space-separated relative paths */
	T_NAME  /* identifier-like: [A-Za-z0-9._-]+ */
};

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	uint64_t min, max;        /* durations/sizes/uints */
	const char *const *enums; /* T_ENUM: NULL-terminated names, index = value */
	const char *def;          /* default text, or NULL (unset) */
	int required;
};

/* One raw "key = value" as read, before expansion. */
struct raw {
	char *value;
	int line;
};

struct loader {
	const char *file;
	const char *text;
	size_t len, pos;
	int line;            /* line number of the line inih is processing */
	int err;             /* first error recorded */
	struct raw *values;  /* one per key of config.c's table */
	int section_line[8]; /* header line of each known section, 0 if absent */
	struct tm_config_var vars[MAX_VARS];
	int var_line[MAX_VARS];
	size_t nvars;
};

int cfg_fail(struct loader *ld, int line, const char *section, const char *key, const char *fmt,
	     ...) __attribute__((format(printf, 5, 6)));

int cfg_section_index(const char *name);
int cfg_valid_var_name(const char *s);
int cfg_valid_name(const char *v);
int cfg_valid_dns_label(const char *v);
int cfg_expand(struct tm_buf *out, const struct tm_config *cfg, const char *s, size_t len,
	       int strict, char *bad, size_t badlen);
int cfg_store(struct loader *ld, struct tm_config *cfg, const struct key_def *k, const char *v,
	      int line);
void cfg_strlist_free(struct tm_strlist *l);

/* Reads ld->text with inih; handler gets every key = value. 0, or TM_ECONFIG (reported). */
int cfg_ini_read(struct loader *ld, int (*handler)(void *user, const char *section,
						   const char *name, const char *value));

#endif
