/*
 * config.h — the one INI file of SPEC.md, read into struct tm_config.
 *
 * Every key is described once in a table in config.c (section, name, type,
 * limits, default). Loading is all-or-nothing: any error — unknown section or
 * key, bad value, missing required key, unknown ${name} — fails the load with
 * one message "FILE:LINE: [section] key: what is wrong" and TM_ECONFIG.
 */
#ifndef TAGMOOR_CONFIG_H
#define TAGMOOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tm_on_failure {
	TM_ON_FAILURE_ROLLBACK = 0,
	TM_ON_FAILURE_KEEP
};
enum tm_verify_mode {
	TM_VERIFY_TAG = 0,
	TM_VERIFY_COMMIT,
	TM_VERIFY_TAG_COMMIT,
	TM_VERIFY_NONE
};
enum tm_report_format {
	TM_REPORT_TAGMOOR = 0,
	TM_REPORT_CLOUDEVENTS,
	TM_REPORT_CLOUDEVENTS_BINARY
};

struct tm_strlist {
	char **v;
	size_t n;
};

/* What the section of every applier has ([kubernetes], [systemd]): the pass's table of
 * applier slots (reconcile.c, setup_appliers) reads it. */
struct tm_applier_config {
	int enabled;
	struct tm_strlist paths;
	int prune;
	uint64_t wait_ms;
};

struct tm_config_var {
	char *name;
	char *value;
};

struct tm_config {
	char *file;       /* the INI file that was read */
	char *root;       /* --root DIR or NULL */
	char *hostname;   /* built-in ${hostname} */
	char *arch;       /* built-in ${arch} */
	char *machine_id; /* /etc/machine-id content or NULL */

	struct {
		char *device_id;
		char *state_dir; /* effective: under root when --root is given */
		uint64_t interval_ms;
		unsigned jitter_pct;
		uint64_t drift_check_ms;
		int on_failure; /* enum tm_on_failure */
		int log_format; /* enum tm_log_format */
		int log_level;  /* enum tm_log_level */
		char *user;     /* the fetcher child's user (privilege separation); NULL:
				 * the default "tagmoor" (docs/security.md) */
	} agent;
	struct {
		char *url;
		char *ref;
		char *ca_file;
		char *token_file;
		uint64_t timeout_ms;
		uint64_t max_fetch;
	} source;
	struct {
		int mode; /* enum tm_verify_mode */
		char *allowed_signers;
		char *openpgp_keyring;
		uint64_t max_age_ms;
		int allow_unsigned;
		char *fleet; /* required signed Tagmoor-Fleet trailer, or NULL */
	} verify;
	struct tm_config_var *vars;
	size_t nvars;
	struct {
		struct tm_applier_config applier;
		char *kubeconfig; /* resolved; NULL means in-cluster */
		char *field_manager;
		int adopt;               /* take over existing objects without our labels */
		char *default_namespace; /* for namespaced objects that name none */
		uint64_t max_file;       /* bytes of one manifest file */
		uint64_t max_document;   /* bytes of one document (object) of a file */
		uint64_t max_nodes;      /* YAML/JSON nodes of one document */
		uint64_t max_total;      /* bytes of all files under paths */
		/* Not from the INI file (NULL/0 there): test drivers set them. */
		const char *sa_dir; /* in-cluster: this service account directory, not the pod's */
		int legacy_discovery; /* never ask for aggregated discovery */
	} kubernetes;
	struct {
		struct tm_applier_config applier;
		char *unit_dir; /* effective: under root when --root is given */
		/* Not from the INI file (NULL there): tests run fakes. NULL: the first of
		 * /usr/bin/systemctl, /bin/systemctl (journalctl alike). */
		const char *systemctl;
		const char *journalctl;
	} systemd;
	struct {
		char *url;
		char *ca_file;
		char *client_cert;
		char *client_key;
		char *token_file;
		int format; /* enum tm_report_format */
		uint64_t spool_max;
		uint64_t heartbeat_ms; /* a report at least this often; 0 = none */
		char *metrics_file;    /* Prometheus textfile, or NULL */
		char *alert_url;       /* short JSON on state transitions, or NULL */
	} report;
};

/* Where the built-ins come from; NULL fields take the real system's. */
struct tm_config_env {
	const char *machine_id_file; /* default /etc/machine-id */
	const char *hostname;        /* default gethostname() */
	const char *root;            /* --root DIR */
};

int tm_config_load(struct tm_config **out, const char *path, const struct tm_config_env *env);
void tm_config_free(struct tm_config *cfg);

/* Prints the effective configuration as INI, defaults filled in, secrets
 * (credentials inside URLs) redacted. */
void tm_config_print(const struct tm_config *cfg, FILE *f);

/* Copies url without any user:password@ part into out (for logs, state and
 * reports). */
void tm_config_redact_url(char *out, size_t outlen, const char *url);

/*
 * ${name} expansion of repository content (SPEC.md): known names expand, any
 * other ${x} is left exactly as written, and $${name} is a literal ${name}.
 * Never recurses. Result in *out (malloc'd, NUL-terminated), capped at max.
 */
int tm_config_expand_content(char **out, size_t *out_len, const struct tm_config *cfg,
			     const char *text, size_t len, size_t max);
/* The value of a variable (vars first, then built-ins) or NULL. */
const char *tm_config_lookup(const struct tm_config *cfg, const char *name);

const char *tm_verify_mode_name(int mode);

#endif
