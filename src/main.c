/*
 * main.c — the command line of SPEC.md, start-up and tear-down in order.
 *
 * main is the only place that turns an error code into a process exit
 * status (tm_error_exit_code). Commands are one table: name, handler, and
 * whether they need the configuration loaded.
 */
#include "tagmoor/cli/commands.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: tagmoor [-c FILE] [--root DIR] [-v|-q] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  run              reconcile forever: poll, verify, apply, health-check, report\n"
	"  sync             reconcile once and exit\n"
	"  diff             fetch and verify, then print what a sync would change\n"
	"  verify [REV]     fetch and verify the tracked ref (or REV); print commit, tag, signer\n"
	"  status [--json]  the last recorded state (no network)\n"
	"  report [--flush] reports waiting in the spool; --flush sends them now\n"
	"  check-config     validate the INI; print the effective configuration\n"
	"  version          versions of tagmoor and its libraries\n"
	"\n"
	"options:\n"
	"  -c, --config FILE  configuration (default $TAGMOOR_CONFIG, then "
	"/etc/tagmoor/tagmoor.ini)\n"
	"      --root DIR     treat DIR as the device's root filesystem (image pre-seeding)\n"
	"  -v, --verbose      log at debug level\n"
	"  -q, --quiet        log errors only\n"
	"  -h, --help         this help\n"
	"\n"
	"exit codes: 0 converged, 1 apply/health failed, 2 usage/configuration error,\n"
	"            3 source unreachable, 4 verification refused, 5 state locked\n";

struct command {
	const char *name;
	int (*fn)(struct tm_cli *cli);
	int needs_config;
	int max_args;
	const char *const *flags; /* accepted --flags, NULL-terminated */
};

static const char *const status_flags[] = { "--json", NULL };
static const char *const report_flags[] = { "--flush", NULL };
static const char *const no_flags[] = { NULL };

static const struct command commands[] = {
	{ "run", tm_cmd_run, 1, 0, no_flags },
	{ "sync", tm_cmd_sync, 1, 0, no_flags },
	{ "diff", tm_cmd_diff, 1, 0, no_flags },
	{ "verify", tm_cmd_verify, 1, 1, no_flags },
	{ "status", tm_cmd_status, 1, 0, status_flags },
	{ "report", tm_cmd_report, 1, 0, report_flags },
	{ "check-config", tm_cmd_check_config, 1, 0, no_flags },
	{ "version", tm_cmd_version, 0, 0, no_flags },
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "tagmoor: %s%s%s%s\nTry 'tagmoor --help'.\n", what, arg ? " '" : "",
		arg ? arg : "", arg ? "'" : "");
	return 2;
}

static int has_flag(const char *const *flags, const char *f)
{
	for (; *flags; flags++)
		if (strcmp(*flags, f) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct tm_cli cli = { 0 };
	const struct command *cmd = NULL;
	const char *config_path = NULL;
	int verbosity = 0, r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (cmd && a[0] != '-') {
			if (cli.nargs >= (size_t)cmd->max_args)
				return usage_error("too many arguments:", a);
			cli.args[cli.nargs++] = a;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "help")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "--root")) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0')
				return usage_error("this option needs a value:", a);
			if (a[2] == 'r')
				cli.root = argv[++i];
			else
				config_path = argv[++i];
		} else if (!strncmp(a, "--config=", 9)) {
			config_path = a + 9;
		} else if (!strncmp(a, "--root=", 7)) {
			cli.root = a + 7;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbosity = 1;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			verbosity = -1;
		} else if (cmd && has_flag(cmd->flags, a)) {
			if (!strcmp(a, "--json"))
				cli.json = 1;
			else if (!strcmp(a, "--flush"))
				cli.flush = 1;
		} else if (a[0] == '-') {
			return usage_error("unknown option", a);
		} else {
			for (size_t j = 0; j < sizeof(commands) / sizeof(commands[0]); j++)
				if (!strcmp(commands[j].name, a))
					cmd = &commands[j];
			if (!cmd)
				return usage_error("unknown command", a);
		}
	}
	if (!cmd)
		return usage_error("no command given", NULL);
	if (cli.root && cli.root[0] != '/')
		return usage_error("--root needs an absolute path, not", cli.root);

	tm_log_setup(TM_LOG_TEXT, verbosity > 0   ? TM_LOG_DEBUG
				  : verbosity < 0 ? TM_LOG_ERROR
						  : TM_LOG_INFO);
	if (cmd->needs_config) {
		struct tm_config_env env = { .root = cli.root };
		if (!config_path)
			config_path = getenv("TAGMOOR_CONFIG");
		if (!config_path || !*config_path)
			config_path = "/etc/tagmoor/tagmoor.ini";
		if ((r = tm_config_load(&cli.cfg, config_path, &env)) < 0) {
			fprintf(stderr, "tagmoor: %s\n", tm_error_last());
			return tm_error_exit_code(r);
		}
		tm_log_setup(cli.cfg->agent.log_format,
			     verbosity > 0   ? TM_LOG_DEBUG
			     : verbosity < 0 ? TM_LOG_ERROR
					     : (enum tm_log_level)cli.cfg->agent.log_level);
	}
	r = cmd->fn(&cli);
	if (r < 0 && r != TM_ENOTIMPL && tm_error_last()[0])
		tm_log_error("%s", tm_error_last());
	else if (r == TM_ENOTIMPL)
		fprintf(stderr, "tagmoor: %s\n", tm_error_last());
	tm_config_free(cli.cfg);
	return r < 0 ? tm_error_exit_code(r) : r;
}
