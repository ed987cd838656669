/*
 * commands.c — the bodies of the commands. Each one is short: it calls the
 * module that does the work and prints the outcome. Commands whose module is
 * not built yet say so and exit 2.
 */
#include "tagmoor/commands.h"
#include "tagmoor/config.h"
#include "tagmoor/error.h"
#include "tagmoor/versions.h"

#include <stdio.h>

static int not_built(const char *command, const char *module)
{
	return tm_error_set(TM_ENOTIMPL, "'%s' is not available in this build yet (module '%s' is not built)",
			    command, module);
}

int tm_cmd_run(struct tm_cli *cli)
{
	return not_built("run", "daemon");
}

int tm_cmd_sync(struct tm_cli *cli)
{
	return not_built("sync", "reconcile");
}

int tm_cmd_diff(struct tm_cli *cli)
{
	return not_built("diff", "plan");
}

int tm_cmd_verify(struct tm_cli *cli)
{
	return not_built("verify", "verify");
}

int tm_cmd_status(struct tm_cli *cli)
{
	return not_built("status", "state");
}

int tm_cmd_check_config(struct tm_cli *cli)
{
	tm_config_print(cli->cfg, stdout);
	fprintf(stderr, "%s: configuration is valid\n", cli->cfg->file);
	return 0;
}

int tm_cmd_version(struct tm_cli *cli)
{
	tm_versions_print(stdout);
	return 0;
}
