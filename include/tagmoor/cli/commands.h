/*
 * commands.h — one function per command of the command line. main parses the
 * arguments and loads the configuration; each command returns 0 or a
 * negative TM_E* code (main maps it to the exit status), or a positive exit
 * status it decided itself.
 */
#ifndef TAGMOOR_COMMANDS_H
#define TAGMOOR_COMMANDS_H

#include <stddef.h>

struct tm_config;

struct tm_cli {
	struct tm_config *cfg; /* loaded when the command needs it */
	const char *root;      /* --root DIR */
	const char *args[4];   /* positional arguments after the command */
	size_t nargs;
	int json;  /* status --json */
	int flush; /* report --flush */
};

int tm_cmd_run(struct tm_cli *cli);
int tm_cmd_sync(struct tm_cli *cli);
int tm_cmd_diff(struct tm_cli *cli);
int tm_cmd_verify(struct tm_cli *cli);
int tm_cmd_status(struct tm_cli *cli);
int tm_cmd_report(struct tm_cli *cli);
int tm_cmd_check_config(struct tm_cli *cli);
int tm_cmd_version(struct tm_cli *cli);

#endif
