/*
 * config.c — INI → struct tm_config through one table of keys.
 *
 * inih reads the file (inifile.c); the handler here only collects raw
 * entries; values are expanded (expand.c) and parsed (validate.c) afterwards,
 * once [vars] is known, so a variable may be used above the line that defines
 * it. Nothing is half-loaded: on any error the whole struct is freed.
 */
#define _GNU_SOURCE
#include "tagmoor/config/config.h"
#include "config_internal.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/parse.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (1024 * 1024)

static const char *const on_failure_names[] = { "rollback", "keep", NULL };
static const char *const log_format_names[] = { "text", "json", NULL };
static const char *const log_level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const mode_names[] = { "tag", "commit", "tag+commit", "none", NULL };
static const char *const format_names[] = { "tagmoor", "cloudevents", "cloudevents-binary", NULL };

#define OFF(f) offsetof(struct tm_config, f)
#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define MIB (1024ull * 1024)

static const struct key_def keys[] = {
	{ "agent", "device_id", T_NAME, OFF(agent.device_id), 0, 0, NULL, NULL, 0 },
	{ "agent", "state_dir", T_PATH, OFF(agent.state_dir), 0, 0, NULL, "/var/lib/tagmoor", 0 },
	{ "agent", "interval", T_DURATION, OFF(agent.interval_ms), SEC, 7 * DAY, NULL, "60s", 0 },
	{ "agent", "jitter", T_PERCENT, OFF(agent.jitter_pct), 0, 50, NULL, "10%", 0 },
	{ "agent", "drift_check", T_DURATION, OFF(agent.drift_check_ms), 0, 7 * DAY, NULL, "10m",
	  0 },
	{ "agent", "on_failure", T_ENUM, OFF(agent.on_failure), 0, 0, on_failure_names, "rollback",
	  0 },
	{ "agent", "log_format", T_ENUM, OFF(agent.log_format), 0, 0, log_format_names, "text", 0 },
	{ "agent", "log_level", T_ENUM, OFF(agent.log_level), 0, 0, log_level_names, "info", 0 },
	{ "agent", "user", T_NAME, OFF(agent.user), 0, 0, NULL, NULL, 0 },

	{ "source", "url", T_URL, OFF(source.url), 0, 0, NULL, NULL, 1 },
	{ "source", "ref", T_REF, OFF(source.ref), 0, 0, NULL, NULL, 1 },
	{ "source", "ca_file", T_PATH, OFF(source.ca_file), 0, 0, NULL, NULL, 0 },
	{ "source", "token_file", T_PATH, OFF(source.token_file), 0, 0, NULL, NULL, 0 },
	{ "source", "timeout", T_DURATION, OFF(source.timeout_ms), SEC, HOUR, NULL, "60s", 0 },
	{ "source", "max_fetch", T_SIZE, OFF(source.max_fetch), 64 * 1024, 4096 * MIB, NULL,
	  "64MiB", 0 },

	{ "verify", "mode", T_ENUM, OFF(verify.mode), 0, 0, mode_names, "tag", 0 },
	{ "verify", "allowed_signers", T_PATH, OFF(verify.allowed_signers), 0, 0, NULL, NULL, 0 },
	{ "verify", "openpgp_keyring", T_PATH, OFF(verify.openpgp_keyring), 0, 0, NULL, NULL, 0 },
	{ "verify", "max_age", T_DURATION, OFF(verify.max_age_ms), 0, 3650 * DAY, NULL, "0", 0 },
	{ "verify", "allow_unsigned", T_BOOL, OFF(verify.allow_unsigned), 0, 0, NULL, "no", 0 },
	{ "verify", "fleet", T_NAME, OFF(verify.fleet), 0, 0, NULL, NULL, 0 },

	{ "kubernetes", "enabled", T_BOOL, OFF(kubernetes.applier.enabled), 0, 0, NULL, "no", 0 },
	{ "kubernetes", "kubeconfig", T_PATH, OFF(kubernetes.kubeconfig), 0, 0, NULL, NULL, 0 },
	{ "kubernetes", "paths", T_LIST, OFF(kubernetes.applier.paths), 0, 0, NULL, "k8s", 0 },
	{ "kubernetes", "prune", T_BOOL, OFF(kubernetes.applier.prune), 0, 0, NULL, "yes", 0 },
	{ "kubernetes", "wait", T_DURATION, OFF(kubernetes.applier.wait_ms), 0, DAY, NULL, "120s",
	  0 },
	{ "kubernetes", "field_manager", T_NAME, OFF(kubernetes.field_manager), 0, 0, NULL,
	  "tagmoor", 0 },
	{ "kubernetes", "adopt", T_BOOL, OFF(kubernetes.adopt), 0, 0, NULL, "no", 0 },
	{ "kubernetes", "default_namespace", T_NAME, OFF(kubernetes.default_namespace), 0, 0, NULL,
	  "default", 0 },
	{ "kubernetes", "max_file", T_SIZE, OFF(kubernetes.max_file), 64 * 1024, 256 * MIB, NULL,
	  "16MiB", 0 },
	{ "kubernetes", "max_document", T_SIZE, OFF(kubernetes.max_document), 64 * 1024, 64 * MIB,
	  NULL, "8MiB", 0 },
	{ "kubernetes", "max_nodes", T_UINT, OFF(kubernetes.max_nodes), 10000, 10000000, NULL,
	  "500000", 0 },
	{ "kubernetes", "max_total", T_SIZE, OFF(kubernetes.max_total), 1 * MIB, 4096 * MIB, NULL,
	  "64MiB", 0 },

	{ "systemd", "enabled", T_BOOL, OFF(systemd.applier.enabled), 0, 0, NULL, "no", 0 },
	{ "systemd", "paths", T_LIST, OFF(systemd.applier.paths), 0, 0, NULL, "units", 0 },
	{ "systemd", "unit_dir", T_PATH, OFF(systemd.unit_dir), 0, 0, NULL, "/etc/systemd/system",
	  0 },
	{ "systemd", "prune", T_BOOL, OFF(systemd.applier.prune), 0, 0, NULL, "yes", 0 },
	{ "systemd", "wait", T_DURATION, OFF(systemd.applier.wait_ms), 0, DAY, NULL, "60s", 0 },

	{ "report", "url", T_URL, OFF(report.url), 0, 0, NULL, NULL, 0 },
	{ "report", "ca_file", T_PATH, OFF(report.ca_file), 0, 0, NULL, NULL, 0 },
	{ "report", "client_cert", T_PATH, OFF(report.client_cert), 0, 0, NULL, NULL, 0 },
	{ "report", "client_key", T_PATH, OFF(report.client_key), 0, 0, NULL, NULL, 0 },
	{ "report", "token_file", T_PATH, OFF(report.token_file), 0, 0, NULL, NULL, 0 },
	{ "report", "format", T_ENUM, OFF(report.format), 0, 0, format_names, "tagmoor", 0 },
	{ "report", "spool_max", T_UINT, OFF(report.spool_max), 0, 100000, NULL, "256", 0 },
	{ "report", "heartbeat", T_DURATION, OFF(report.heartbeat_ms), 0, 7 * DAY, NULL, "1h", 0 },
	{ "report", "metrics_file", T_PATH, OFF(report.metrics_file), 0, 0, NULL, NULL, 0 },
	{ "report", "alert_url", T_URL, OFF(report.alert_url), 0, 0, NULL, NULL, 0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const sections[] = { "agent",      "source",  "verify", "vars",
					"kubernetes", "systemd", "report", NULL };
static const char *const builtins[] = { "device_id", "hostname", "arch", NULL };

int cfg_fail(struct loader *ld, int line, const char *section, const char *key, const char *fmt,
	     ...)
{
	char what[512];
	va_list ap;

	if (ld->err)
		return TM_ECONFIG;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (section && key)
		tm_error_set(TM_ECONFIG, "%s:%d: [%s] %s: %s", ld->file, line, section, key, what);
	else if (section)
		tm_error_set(TM_ECONFIG, "%s:%d: [%s]: %s", ld->file, line, section, what);
	else if (key)
		tm_error_set(TM_ECONFIG, "%s:%d: %s: %s", ld->file, line, key, what);
	else
		tm_error_set(TM_ECONFIG, "%s:%d: %s", ld->file, line, what);
	ld->err = TM_ECONFIG;
	return TM_ECONFIG;
}

int cfg_section_index(const char *name)
{
	for (int i = 0; sections[i]; i++)
		if (strcmp(sections[i], name) == 0)
			return i;
	return -1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;

	if (ld->err)
		return 1;
	if (!section[0])
		return cfg_fail(ld, ld->line, NULL, name, "key outside of any section"), 1;
	if (cfg_section_index(section) < 0)
		return 1; /* already reported by the reader */
	if (strcmp(section, "vars") == 0) {
		if (!cfg_valid_var_name(name))
			return cfg_fail(ld, ld->line, section, name,
					"invalid variable name (letters, digits, _)"),
			       1;
		for (int i = 0; builtins[i]; i++)
			if (strcmp(builtins[i], name) == 0)
				return cfg_fail(ld, ld->line, section, name,
						"is a built-in variable and cannot be redefined"),
				       1;
		for (size_t i = 0; i < ld->nvars; i++)
			if (strcmp(ld->vars[i].name, name) == 0)
				return cfg_fail(ld, ld->line, section, name,
						"duplicate key (first at line %d)",
						ld->var_line[i]),
				       1;
		if (ld->nvars >= MAX_VARS)
			return cfg_fail(ld, ld->line, section, name, "more than %d variables",
					MAX_VARS),
			       1;
		ld->vars[ld->nvars].name = strdup(name);
		ld->vars[ld->nvars].value = strdup(value);
		ld->var_line[ld->nvars] = ld->line;
		if (!ld->vars[ld->nvars].name || !ld->vars[ld->nvars].value)
			return cfg_fail(ld, ld->line, section, name, "out of memory"), 1;
		ld->nvars++;
		return 1;
	}
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) || strcmp(keys[i].name, name))
			continue;
		if (ld->values[i].value)
			return cfg_fail(ld, ld->line, section, name,
					"duplicate key (first at line %d)", ld->values[i].line),
			       1;
		ld->values[i].value = strdup(value);
		ld->values[i].line = ld->line;
		if (!ld->values[i].value)
			return cfg_fail(ld, ld->line, section, name, "out of memory"), 1;
		return 1;
	}
	return cfg_fail(ld, ld->line, section, name, "unknown key"), 1;
}

static char *read_machine_id(const char *path)
{
	struct tm_buf b;
	char *s = NULL;

	tm_buf_init(&b, 256);
	if (tm_file_read(&b, path, 200) == 0) {
		size_t n = b.len;
		while (n && isspace((unsigned char)b.ptr[n - 1]))
			n--;
		b.ptr[n] = '\0';
		if (n > 0 && cfg_valid_name(b.ptr))
			s = strndup(b.ptr, n);
	}
	tm_buf_free(&b);
	tm_error_clear();
	return s;
}

static char *join_root(const char *root, const char *path)
{
	size_t rl;
	char *out;

	if (!root)
		return strdup(path);
	rl = strlen(root);
	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (asprintf(&out, "%.*s%s", (int)rl, root, path) < 0)
		return NULL;
	return out;
}

/* The line a key was given on, 0 when it was not. */
static int key_line(const struct loader *ld, const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return ld->values[i].line;
	return 0;
}

static int last_line(const char *text, size_t len)
{
	int n = 1;
	for (size_t i = 0; i + 1 < len; i++)
		if (text[i] == '\n')
			n++;
	return n;
}

/* The built-in variables (hostname, arch, machine id) and the [vars] of the file. */
static int load_identity(struct tm_config *cfg, struct loader *ld, const char *path,
			 const struct tm_config_env *env)
{
	struct utsname un;
	char host[256];

	cfg->file = strdup(path);
	if (env->root && !(cfg->root = strdup(env->root)))
		return tm_error_nomem();
	if (env->hostname) {
		snprintf(host, sizeof(host), "%s", env->hostname);
	} else if (gethostname(host, sizeof(host)) != 0) {
		snprintf(host, sizeof(host), "localhost");
	}
	host[sizeof(host) - 1] = '\0';
	cfg->hostname = strdup(host);
	cfg->arch = strdup(uname(&un) == 0 ? un.machine : "unknown");
	cfg->machine_id =
		read_machine_id(env->machine_id_file ? env->machine_id_file : "/etc/machine-id");
	if (!cfg->file || !cfg->hostname || !cfg->arch)
		return tm_error_nomem();
	cfg->vars = calloc(ld->nvars ? ld->nvars : 1, sizeof(*cfg->vars));
	if (!cfg->vars)
		return tm_error_nomem();
	for (size_t i = 0; i < ld->nvars; i++) {
		/* [vars] values are literal: expansion never recurses. */
		cfg->vars[i] = ld->vars[i];
		ld->vars[i].name = ld->vars[i].value = NULL;
	}
	cfg->nvars = ld->nvars;
	return 0;
}

/* device_id first: other values may use ${device_id}. It may itself use
 * ${hostname}, ${arch} and [vars] but not ${device_id}. */
static int load_device_id(struct tm_config *cfg, struct loader *ld)
{
	char why[256];
	int rc;

	const struct raw *rv = &ld->values[0];
	if (rv->value) {
		struct tm_buf b;
		tm_buf_init(&b, VALUE_MAX);
		if (strstr(rv->value, "${device_id}")) {
			tm_buf_free(&b);
			cfg_fail(ld, rv->line, "agent", "device_id", "cannot refer to itself");
			return TM_ECONFIG;
		}
		rc = cfg_expand(&b, cfg, rv->value, strlen(rv->value), 1, why, sizeof(why));
		if (rc < 0) {
			tm_buf_free(&b);
			cfg_fail(ld, rv->line, "agent", "device_id", "%s",
				 rc == TM_ECONFIG ? why : tm_error_last());
			return TM_ECONFIG;
		}
		rc = cfg_store(ld, cfg, &keys[0], b.ptr, rv->line);
		tm_buf_free(&b);
		if (rc < 0)
			return TM_ECONFIG;
	} else {
		cfg->agent.device_id = strdup(cfg->machine_id ? cfg->machine_id : cfg->hostname);
		if (!cfg->agent.device_id)
			return tm_error_nomem();
	}
	return 0;
}

/* Every other key: its value (or default) expanded and stored; a missing required key. */
static int load_keys(struct tm_config *cfg, struct loader *ld, const char *text, size_t len)
{
	char why[256];
	int rc;

	for (size_t i = 1; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];
		const struct raw *rv = &ld->values[i];
		const char *v = rv->value ? rv->value : k->def;
		int line = rv->value ? rv->line : 0;
		struct tm_buf b;

		if (!v) {
			if (k->required) {
				int si = cfg_section_index(k->section);
				if (ld->section_line[si])
					cfg_fail(ld, ld->section_line[si], k->section, k->name,
						 "required key is missing");
				else
					cfg_fail(ld, last_line(text, len), k->section, k->name,
						 "required key is missing "
						 "(and so is the [%s] section)",
						 k->section);
				return TM_ECONFIG;
			}
			continue;
		}
		tm_buf_init(&b, VALUE_MAX);
		rc = cfg_expand(&b, cfg, v, strlen(v), 1, why, sizeof(why));
		if (rc < 0) {
			tm_buf_free(&b);
			cfg_fail(ld, line, k->section, k->name, "%s",
				 rc == TM_ECONFIG ? why : tm_error_last());
			return TM_ECONFIG;
		}
		rc = cfg_store(ld, cfg, k, b.ptr, line);
		tm_buf_free(&b);
		if (rc < 0)
			return TM_ECONFIG;
	}
	return 0;
}

/* Rules that join several keys. */
static int check_joined(const struct tm_config *cfg, struct loader *ld, const char *text,
			size_t len)
{
	int ml = key_line(ld, "verify", "mode"), ul = key_line(ld, "verify", "allow_unsigned");
	int vline = ml ? ml
		       : (ld->section_line[cfg_section_index("verify")]
				  ? ld->section_line[cfg_section_index("verify")]
				  : last_line(text, len));
	if (cfg->verify.mode == TM_VERIFY_NONE && !cfg->verify.allow_unsigned) {
		cfg_fail(ld, vline, "verify", "mode",
			 "'none' is refused unless allow_unsigned = yes is also set");
		return TM_ECONFIG;
	}
	if (cfg->verify.mode != TM_VERIFY_NONE && !cfg->verify.allowed_signers &&
	    !cfg->verify.openpgp_keyring) {
		cfg_fail(ld, vline, "verify", "mode",
			 "mode '%s' needs allowed_signers or openpgp_keyring (or both)",
			 mode_names[cfg->verify.mode]);
		return TM_ECONFIG;
	}
	if (cfg->verify.mode != TM_VERIFY_NONE && cfg->verify.allow_unsigned && ul) {
		cfg_fail(ld, ul, "verify", "allow_unsigned", "only meaningful with mode = none");
		return TM_ECONFIG;
	}
	if (cfg->verify.mode == TM_VERIFY_NONE && cfg->verify.fleet) {
		cfg_fail(ld, key_line(ld, "verify", "fleet"), "verify", "fleet",
			 "needs a signed object (mode tag, commit or tag+commit), not mode = "
			 "none");
		return TM_ECONFIG;
	}
	int cl = key_line(ld, "report", "client_cert"), kl = key_line(ld, "report", "client_key");
	if (!cfg->report.client_cert != !cfg->report.client_key) {
		cfg_fail(ld, cl ? cl : kl, "report", cl ? "client_key" : "client_cert",
			 "client_cert and client_key must be given together");
		return TM_ECONFIG;
	}
	if (!cfg->report.url && (cl || kl)) {
		cfg_fail(ld, cl ? cl : kl, "report", "url",
			 "required when client_cert or client_key is set");
		return TM_ECONFIG;
	}
	if (cfg->kubernetes.default_namespace &&
	    !cfg_valid_dns_label(cfg->kubernetes.default_namespace)) {
		cfg_fail(ld, key_line(ld, "kubernetes", "default_namespace"), "kubernetes",
			 "default_namespace",
			 "must be a namespace name (at most 63 of a-z, 0-9 and '-', starting "
			 "and ending "
			 "with a letter or digit)");
		return TM_ECONFIG;
	}
	if (cfg->source.ref && strncmp(cfg->source.ref, "refs/heads/", 11) == 0 &&
	    (cfg->verify.mode == TM_VERIFY_TAG || cfg->verify.mode == TM_VERIFY_TAG_COMMIT)) {
		cfg_fail(ld, key_line(ld, "source", "ref"), "source", "ref",
			 "a branch cannot be verified with mode = %s (use mode = commit)",
			 mode_names[cfg->verify.mode]);
		return TM_ECONFIG;
	}
	return 0;
}

/* Effective locations under --root, and where the kubeconfig is looked for. */
static int effective_locations(struct tm_config *cfg)
{
	if (cfg->root) {
		char *s = join_root(cfg->root, cfg->agent.state_dir);
		char *u = join_root(cfg->root, cfg->systemd.unit_dir);
		if (!s || !u) {
			free(s);
			free(u);
			return tm_error_nomem();
		}
		free(cfg->agent.state_dir);
		free(cfg->systemd.unit_dir);
		cfg->agent.state_dir = s;
		cfg->systemd.unit_dir = u;
	}
	if (!cfg->kubernetes.kubeconfig && !getenv("KUBERNETES_SERVICE_HOST")) {
		const char *home = getenv("HOME");
		char alt[4096];
		if (access("/etc/rancher/k3s/k3s.yaml", F_OK) == 0 || !home) {
			cfg->kubernetes.kubeconfig = strdup("/etc/rancher/k3s/k3s.yaml");
		} else {
			snprintf(alt, sizeof(alt), "%s/.kube/config", home);
			cfg->kubernetes.kubeconfig = strdup(alt);
		}
		if (!cfg->kubernetes.kubeconfig)
			return tm_error_nomem();
	}
	return 0;
}

int tm_config_load(struct tm_config **out, const char *path, const struct tm_config_env *env)
{
	static const struct tm_config_env noenv;
	struct tm_config *cfg = NULL;
	struct loader *ld = NULL;
	struct tm_buf text;
	int r = TM_ECONFIG, rc;

	if (!env)
		env = &noenv;
	*out = NULL;
	tm_buf_init(&text, CONFIG_MAX_BYTES + 1);
	if ((rc = tm_file_read(&text, path, CONFIG_MAX_BYTES)) < 0) {
		tm_error_wrap(TM_ECONFIG, "cannot read configuration");
		goto out;
	}
	ld = calloc(1, sizeof(*ld));
	if (ld)
		ld->values = calloc(NKEYS, sizeof(*ld->values));
	cfg = calloc(1, sizeof(*cfg));
	if (!ld || !ld->values || !cfg) {
		r = tm_error_nomem();
		goto out;
	}
	ld->file = path;
	ld->text = text.ptr;
	ld->len = text.len;
	if (cfg_ini_read(ld, handler) < 0)
		goto out;
	if ((r = load_identity(cfg, ld, path, env)) < 0)
		goto out;
	if ((r = load_device_id(cfg, ld)) < 0)
		goto out;
	if ((r = load_keys(cfg, ld, text.ptr, text.len)) < 0)
		goto out;
	if ((r = check_joined(cfg, ld, text.ptr, text.len)) < 0)
		goto out;
	if ((r = effective_locations(cfg)) < 0)
		goto out;
	*out = cfg;
	cfg = NULL;
	r = 0;
out:
	if (ld) {
		for (size_t i = 0; ld->values && i < NKEYS; i++)
			free(ld->values[i].value);
		free(ld->values);
		for (size_t i = 0; i < ld->nvars; i++) {
			free(ld->vars[i].name);
			free(ld->vars[i].value);
		}
		if (ld->err)
			r = TM_ECONFIG;
		free(ld);
	}
	tm_buf_free(&text);
	tm_config_free(cfg);
	return r;
}

void tm_config_free(struct tm_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < NKEYS; i++) {
		char *field = (char *)cfg + keys[i].offset;
		switch (keys[i].type) {
		case T_STR:
		case T_PATH:
		case T_URL:
		case T_REF:
		case T_NAME:
			free(*(char **)field);
			break;
		case T_LIST:
			cfg_strlist_free((struct tm_strlist *)field);
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < cfg->nvars; i++) {
		free(cfg->vars[i].name);
		free(cfg->vars[i].value);
	}
	free(cfg->vars);
	free(cfg->file);
	free(cfg->root);
	free(cfg->hostname);
	free(cfg->arch);
	free(cfg->machine_id);
	free(cfg);
}

void tm_config_redact_url(char *out, size_t outlen, const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *host, *at, *slash;

	if (!scheme) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	host = scheme + 3;
	slash = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(slash - host));
	if (!at) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	snprintf(out, outlen, "%.*s***@%s", (int)(host - url), url, at + 1);
}

const char *tm_verify_mode_name(int mode)
{
	return mode >= 0 && mode < 4 ? mode_names[mode] : "?";
}

void tm_config_print(const struct tm_config *cfg, FILE *f)
{
	const char *cur = NULL;
	char v[4096];

	fprintf(f, "; effective configuration of %s%s%s\n", cfg->file,
		cfg->root ? " with --root " : "", cfg->root ? cfg->root : "");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];
		const char *field = (const char *)cfg + k->offset;

		if (!cur || strcmp(cur, k->section) != 0) {
			if (cur && strcmp(cur, "verify") == 0) {
				fprintf(f, "\n[vars]\n");
				for (size_t j = 0; j < cfg->nvars; j++)
					fprintf(f, "%s = %s\n", cfg->vars[j].name,
						cfg->vars[j].value);
			}
			cur = k->section;
			fprintf(f, "\n[%s]\n", cur);
		}
		v[0] = '\0';
		switch (k->type) {
		case T_URL:
			if (*(char *const *)field)
				tm_config_redact_url(v, sizeof(v), *(char *const *)field);
			break;
		case T_STR:
		case T_PATH:
		case T_REF:
		case T_NAME:
			if (*(char *const *)field)
				snprintf(v, sizeof(v), "%s", *(char *const *)field);
			else if (strcmp(k->name, "kubeconfig") == 0)
				snprintf(v, sizeof(v), "; in-cluster service account");
			else if (strcmp(k->name, "user") == 0)
				snprintf(v, sizeof(v),
					 "; tagmoor, else uid 0 without capabilities");
			break;
		case T_DURATION:
			tm_format_duration(v, sizeof(v), *(const uint64_t *)field);
			break;
		case T_SIZE:
			tm_format_size(v, sizeof(v), *(const uint64_t *)field);
			break;
		case T_UINT:
			snprintf(v, sizeof(v), "%llu",
				 (unsigned long long)*(const uint64_t *)field);
			break;
		case T_BOOL:
			snprintf(v, sizeof(v), "%s", *(const int *)field ? "yes" : "no");
			break;
		case T_PERCENT:
			snprintf(v, sizeof(v), "%u%%", *(const unsigned *)field);
			break;
		case T_ENUM:
			snprintf(v, sizeof(v), "%s", k->enums[*(const int *)field]);
			break;
		case T_LIST: {
			const struct tm_strlist *l = (const struct tm_strlist *)field;
			size_t pos = 0;
			for (size_t j = 0; j < l->n && pos < sizeof(v); j++) {
				int n = snprintf(v + pos, sizeof(v) - pos, "%s%s", j ? " " : "",
						 l->v[j][0] ? l->v[j] : ".");
				if (n < 0)
					break;
				pos += (size_t)n;
			}
			break;
		}
		}
		if (v[0])
			fprintf(f, "%s = %s\n", k->name, v);
		else
			fprintf(f, "; %s is not set\n", k->name);
	}
}
