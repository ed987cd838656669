/*
 * server.h — lets a cmocka unit test run the integration test git server
 * (start.sh, built on ../lib.sh) and drive git/openssl on the side.
 * Header-only: included by tests/unit/source/test_git.c and test_http.c.
 *
 *   struct tm_test_server s; tm_test_server_start(&s, 1);  ... tm_test_server_stop(&s);
 */
#ifndef TAGMOOR_TEST_GITSERVER_H
#define TAGMOOR_TEST_GITSERVER_H

#define TM_TS static __attribute__((unused))

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tm_test_server {
	FILE *pipe;
	char url[256], ca[512], root[512], log[512], user[64], pass[128], tmp[512];
	char bearer[128], client_cert[512], client_key[512];
	int port, mtls_port, silent_port, silent_tls_port;
	pid_t pid;
};

TM_TS void tm_ts_copy(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v);
}

/* Returns 0 when running, -1 when the server could not start (skip).
 * extras: also the silent servers and a 4 MiB endless advertisement. */
TM_TS int tm_test_server_start(struct tm_test_server *s, int extras)
{
	char cmd[1024], line[1024];

	memset(s, 0, sizeof(*s));
	unsetenv("GIT_SSL_CAINFO");
	unsetenv("CURL_CA_BUNDLE");
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	snprintf(cmd, sizeof(cmd), "bash %s/tests/integration/gitserver/start.sh %s--parent %ld",
		 TM_SOURCE_DIR, extras ? "--silent --endless 4 " : "", (long)getpid());
	s->pipe = popen(cmd, "r");
	if (!s->pipe)
		return -1;
	while (fgets(line, sizeof(line), s->pipe)) {
		char *eq = strchr(line, '='), *v;

		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "READY") == 0)
			return 0;
		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(line, "URL"))
			tm_ts_copy(s->url, sizeof(s->url), v);
		else if (!strcmp(line, "CA"))
			tm_ts_copy(s->ca, sizeof(s->ca), v);
		else if (!strcmp(line, "ROOT"))
			tm_ts_copy(s->root, sizeof(s->root), v);
		else if (!strcmp(line, "LOG"))
			tm_ts_copy(s->log, sizeof(s->log), v);
		else if (!strcmp(line, "USER"))
			tm_ts_copy(s->user, sizeof(s->user), v);
		else if (!strcmp(line, "PASS"))
			tm_ts_copy(s->pass, sizeof(s->pass), v);
		else if (!strcmp(line, "TMP"))
			tm_ts_copy(s->tmp, sizeof(s->tmp), v);
		else if (!strcmp(line, "BEARER"))
			tm_ts_copy(s->bearer, sizeof(s->bearer), v);
		else if (!strcmp(line, "CLIENT_CERT"))
			tm_ts_copy(s->client_cert, sizeof(s->client_cert), v);
		else if (!strcmp(line, "CLIENT_KEY"))
			tm_ts_copy(s->client_key, sizeof(s->client_key), v);
		else if (!strcmp(line, "MTLS_PORT"))
			s->mtls_port = atoi(v);
		else if (!strcmp(line, "PORT"))
			s->port = atoi(v);
		else if (!strcmp(line, "SILENT_PORT"))
			s->silent_port = atoi(v);
		else if (!strcmp(line, "SILENT_TLS_PORT"))
			s->silent_tls_port = atoi(v);
		else if (!strcmp(line, "PID"))
			s->pid = (pid_t)atoi(v);
	}
	pclose(s->pipe);
	s->pipe = NULL;
	return -1;
}

TM_TS void tm_test_server_stop(struct tm_test_server *s)
{
	if (s->pid > 0)
		kill(s->pid, SIGTERM);
	if (s->pipe)
		pclose(s->pipe);
	s->pipe = NULL;
	s->pid = 0;
}

/* Runs a shell command line (printf-style); returns its exit status. */
TM_TS int tm_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TM_TS int tm_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* First line of a command's output (printf-style), trailing newline cut. */
TM_TS int tm_sh_out(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
TM_TS int tm_sh_out(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	if (n < 0 || (size_t)n >= sizeof(cmd) || !(p = popen(cmd, "r")))
		return -1;
	if (!fgets(out, (int)outlen, p))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return pclose(p) == 0 ? 0 : -1;
}

/* A release key DIR/key (ssh-ed25519), DIR/allowed_signers trusting it for
 * git as release@example.com, a bare repository ROOT/NAME.git and a work
 * clone WORK set up to sign tags with the key. 0 or the shell's status. */
TM_TS int tm_test_signed_repo(const char *dir, const char *root, const char *name, const char *work)
{
	return tm_sh(
		"set -e; cd %s; ssh-keygen -q -t ed25519 -N '' -C release -f key; "
		"echo \"release@example.com namespaces=\\\"git\\\" $(cut -d' ' -f1,2 key.pub)\" > allowed_signers; "
		"git init -q --bare %s/%s.git; git init -q -b main %s; cd %s; "
		"git remote add origin %s/%s.git; git config gpg.format ssh; "
		"git config user.signingkey %s/key; git config user.name t; git config user.email t@example.invalid",
		dir, root, name, work, work, root, name, dir);
}

/* Counts access-log lines "METHOD URI ..." whose URI contains needle. */
TM_TS int tm_test_log_count(const struct tm_test_server *s, const char *method, const char *needle)
{
	char line[2048];
	size_t ml = strlen(method);
	int n = 0;
	FILE *f = fopen(s->log, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, method, ml) == 0 && line[ml] == ' ' &&
		    strstr(line + ml + 1, needle))
			n++;
	fclose(f);
	return n;
}

/* nginx logs a request after the client has its answer: waits (up to 3 s)
 * until at least `want` matching lines are there, lets late lines settle,
 * and returns the count. */
TM_TS int tm_test_log_wait(const struct tm_test_server *s, const char *method, const char *needle,
			   int want)
{
	for (int i = 0; i < 300 && tm_test_log_count(s, method, needle) < want; i++)
		usleep(10000);
	usleep(150000);
	return tm_test_log_count(s, method, needle);
}

TM_TS void tm_test_log_reset(const struct tm_test_server *s)
{
	FILE *f = fopen(s->log, "w");

	if (f)
		fclose(f);
}

TM_TS long tm_test_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

#endif
