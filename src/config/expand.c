/*
 * expand.c — ${var} expansion, one routine for INI values (strict: an unknown variable is an
 * error) and repository content (tm_config_expand_content: unknown ones are kept as written).
 */
#include "config_internal.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"

#include <stdio.h>
#include <string.h>

const char *tm_config_lookup(const struct tm_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nvars; i++)
		if (strcmp(cfg->vars[i].name, name) == 0)
			return cfg->vars[i].value;
	if (strcmp(name, "device_id") == 0)
		return cfg->agent.device_id;
	if (strcmp(name, "hostname") == 0)
		return cfg->hostname;
	if (strcmp(name, "arch") == 0)
		return cfg->arch;
	return NULL;
}

/*
 * The one expansion routine. strict: an unknown ${x} is an error (INI);
 * otherwise it is kept as written (repository content). $${x} → ${x}.
 * Substituted text is never scanned again: no recursion.
 */
int cfg_expand(struct tm_buf *out, const struct tm_config *cfg, const char *s, size_t len,
	       int strict, char *bad, size_t badlen)
{
	size_t i = 0;
	int r;

	while (i < len) {
		if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
			if ((r = tm_buf_put(out, "${", 2)) < 0)
				return r;
			i += 3;
			continue;
		}
		if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			const char *end = memchr(s + i + 2, '}', len - i - 2);
			char name[128];
			size_t n;
			const char *v;

			if (!end) {
				if (strict) {
					snprintf(bad, badlen, "unterminated ${ in value");
					return TM_ECONFIG;
				}
				return tm_buf_put(out, s + i, len - i);
			}
			n = (size_t)(end - (s + i + 2));
			v = NULL;
			if (n > 0 && n < sizeof(name)) {
				memcpy(name, s + i + 2, n);
				name[n] = '\0';
				if (cfg_valid_var_name(name))
					v = tm_config_lookup(cfg, name);
			}
			if (!v) {
				if (strict) {
					snprintf(bad, badlen, "unknown variable ${%.*s}",
						 (int)(n > 64 ? 64 : n), s + i + 2);
					return TM_ECONFIG;
				}
				if ((r = tm_buf_put(out, s + i, n + 3)) < 0)
					return r;
			} else if ((r = tm_buf_puts(out, v)) < 0) {
				return r;
			}
			i += n + 3;
			continue;
		}
		if ((r = tm_buf_putc(out, s[i])) < 0)
			return r;
		i++;
	}
	if (!out->ptr)
		return tm_buf_put(out, "", 0);
	return 0;
}

int tm_config_expand_content(char **out, size_t *out_len, const struct tm_config *cfg,
			     const char *text, size_t len, size_t max)
{
	struct tm_buf b;
	char bad[8];
	int r;

	tm_buf_init(&b, max + 1);
	if ((r = cfg_expand(&b, cfg, text, len, 0, bad, sizeof(bad))) < 0) {
		tm_buf_free(&b);
		return r;
	}
	if (out_len)
		*out_len = b.len;
	*out = tm_buf_detach(&b);
	return *out ? 0 : tm_error_nomem();
}
