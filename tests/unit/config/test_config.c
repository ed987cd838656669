/*
 * test_config.c — the INI contract: the example is accepted, every bad INI
 * fails with the exact "FILE:LINE: [section] key: message" and exit code 2,
 * and ${} expansion follows SPEC.md (INI strict, repository content lenient).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"

static char dir[] = "/tmp/tm-config-XXXXXX";
static char mid_path[300];

#define MIN_OK                                                                    \
	"[source]\nurl = https://git.example.com/c.git\nref = refs/tags/stable\n" \
	"[verify]\nallowed_signers = /etc/tagmoor/allowed_signers\n"

static char *write_ini(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int load(struct tm_config **cfg, const char *text)
{
	struct tm_config_env env = { .machine_id_file = mid_path, .hostname = "host-1" };
	return tm_config_load(cfg, write_ini("t.ini", text), &env);
}

struct bad_case {
	const char *ini;
	const char *msg; /* expected after "DIR/t.ini:" */
};

static const struct bad_case bad[] = {
	/* 1 unknown section */
	{ MIN_OK "[agnet]\ninterval = 5s\n",
	  "6: [agnet]: unknown section (known: agent, source, verify, vars, kubernetes, systemd, report)" },
	/* 2 unknown key */
	{ MIN_OK "[agent]\nintervall = 5s\n", "7: [agent] intervall: unknown key" },
	/* 3 duration without unit */
	{ MIN_OK "[agent]\ninterval = 60\n",
	  "7: [agent] interval: duration '60' needs a unit (ms, s, m, h or d)" },
	/* 4 duration unknown unit */
	{ MIN_OK "[agent]\ninterval = 6Os\n",
	  "7: [agent] interval: '6Os' has an unknown duration unit (use ms, s, m, h or d)" },
	/* 5 duration below minimum */
	{ MIN_OK "[agent]\ninterval = 10ms\n",
	  "7: [agent] interval: '10ms' is out of range (1s to 7d)" },
	/* 6 interval zero */
	{ MIN_OK "[agent]\ninterval = 0\n", "7: [agent] interval: must be at least 1s" },
	/* 7 jitter over max */
	{ MIN_OK "[agent]\njitter = 80%\n", "7: [agent] jitter: '80%' is over the maximum of 50%" },
	/* 8 jitter not a percentage */
	{ MIN_OK "[agent]\njitter = lots\n",
	  "7: [agent] jitter: 'lots' is not a percentage (e.g. 10%)" },
	/* 9 bad enum */
	{ MIN_OK "[agent]\non_failure = panic\n",
	  "7: [agent] on_failure: 'panic' is not one of: rollback, keep" },
	/* 10 bad log level */
	{ MIN_OK "[agent]\nlog_level = trace\n",
	  "7: [agent] log_level: 'trace' is not one of: error, warn, info, debug" },
	/* 11 missing url */
	{ "[source]\nref = refs/tags/stable\n[verify]\nallowed_signers = /a\n",
	  "1: [source] url: required key is missing" },
	/* 12 missing source section */
	{ "[verify]\nallowed_signers = /a\n",
	  "2: [source] url: required key is missing (and so is the [source] section)" },
	/* 13 http url */
	{ "[source]\nurl = http://git.example.com/c.git\nref = refs/tags/stable\n[verify]\nallowed_signers = /a\n",
	  "2: [source] url: must be an https:// URL with a host" },
	/* 14 bad ref */
	{ "[source]\nurl = https://g/c.git\nref = stable\n[verify]\nallowed_signers = /a\n",
	  "3: [source] ref: 'stable' is not a valid refs/tags/NAME or refs/heads/NAME" },
	/* 15 ref with .. */
	{ "[source]\nurl = https://g/c.git\nref = refs/tags/a..b\n[verify]\nallowed_signers = /a\n",
	  "3: [source] ref: 'refs/tags/a..b' is not a valid refs/tags/NAME or refs/heads/NAME" },
	/* 16 relative ca_file */
	{ MIN_OK "[source]\n", "6: [source]: section repeated (first at line 1)" },
	/* 17 relative path */
	{ "[source]\nurl = https://g/c.git\nref = refs/tags/s\nca_file = ca.pem\n[verify]\nallowed_signers = /a\n",
	  "4: [source] ca_file: 'ca.pem' must be an absolute path without '..'" },
	/* 18 size unit */
	{ "[source]\nurl = https://g/c.git\nref = refs/tags/s\nmax_fetch = 64MB\n[verify]\nallowed_signers = /a\n",
	  "4: [source] max_fetch: '64MB' has an unknown size unit (use KiB, MiB or GiB)" },
	/* 19 size too small */
	{ "[source]\nurl = https://g/c.git\nref = refs/tags/s\nmax_fetch = 1KiB\n[verify]\nallowed_signers = /a\n",
	  "4: [source] max_fetch: '1KiB' is out of range (64KiB to 4GiB)" },
	/* 20 bool */
	{ MIN_OK "[kubernetes]\nenabled = maybe\n",
	  "7: [kubernetes] enabled: 'maybe' is not a boolean (use yes/no, true/false, on/off, 1/0)" },
	/* 21 unknown variable */
	{ MIN_OK "[systemd]\npaths = units/${site}\n",
	  "7: [systemd] paths: unknown variable ${site}" },
	/* 22 unterminated ${ */
	{ MIN_OK "[systemd]\npaths = units/${site\n",
	  "7: [systemd] paths: unterminated ${ in value" },
	/* 23 path with .. */
	{ MIN_OK "[systemd]\npaths = units/../etc\n",
	  "7: [systemd] paths: path 'units/../etc' must be relative to the repository and must not contain '..'" },
	/* 24 absolute repository path */
	{ MIN_OK "[kubernetes]\npaths = /k8s\n",
	  "7: [kubernetes] paths: path '/k8s' must be relative to the repository and must not contain '..'" },
	/* 25 duplicate key */
	{ MIN_OK "[agent]\ninterval = 5s\ninterval = 6s\n",
	  "8: [agent] interval: duplicate key (first at line 7)" },
	/* 26 mode none without allow_unsigned */
	{ "[source]\nurl = https://g/c.git\nref = refs/tags/s\n[verify]\nmode = none\n",
	  "5: [verify] mode: 'none' is refused unless allow_unsigned = yes is also set" },
	/* 27 tag mode without trust */
	{ "[source]\nurl = https://g/c.git\nref = refs/tags/s\n[verify]\nmode = tag\n",
	  "5: [verify] mode: mode 'tag' needs allowed_signers or openpgp_keyring (or both)" },
	/* 28 key outside section */
	{ "interval = 5s\n" MIN_OK, "1: interval: key outside of any section" },
	/* 29 syntax error */
	{ MIN_OK "[agent]\nthis is not a key\n",
	  "7: syntax error (expected [section], key = value, or a ; comment)" },
	/* 30 redefining a built-in */
	{ MIN_OK "[vars]\nhostname = x\n",
	  "7: [vars] hostname: is a built-in variable and cannot be redefined" },
	/* 31 bad variable name */
	{ MIN_OK "[vars]\nmy-site = x\n",
	  "7: [vars] my-site: invalid variable name (letters, digits, _)" },
	/* 32 branch with tag mode */
	{ "[source]\nurl = https://g/c.git\nref = refs/heads/main\n[verify]\nallowed_signers = /a\n",
	  "3: [source] ref: a branch cannot be verified with mode = tag (use mode = commit)" },
	/* 33 client cert without key */
	{ MIN_OK "[report]\nurl = https://r/x\nclient_cert = /c.pem\n",
	  "8: [report] client_key: client_cert and client_key must be given together" },
	/* 34 spool_max out of range */
	{ MIN_OK "[report]\nspool_max = 1000001\n",
	  "7: [report] spool_max: 1000001 is out of range (0 to 100000)" },
	/* 35 device_id invalid characters */
	{ MIN_OK "[agent]\ndevice_id = edge 42\n",
	  "7: [agent] device_id: 'edge 42' may contain only letters, digits, '.', '_' and '-'" },
	/* 36 unclosed section */
	{ MIN_OK "[agent\n", "6: section header without ']'" },
	/* 37 overflow */
	{ MIN_OK "[agent]\ndrift_check = 99999999999999999999999d\n",
	  "7: [agent] drift_check: duration '99999999999999999999999d' is too large" },
	/* 38 empty value */
	{ MIN_OK "[kubernetes]\nfield_manager =\n", "7: [kubernetes] field_manager: empty value" },
	/* 39 empty unknown section */
	{ MIN_OK "[metrics]\n",
	  "6: [metrics]: unknown section (known: agent, source, verify, vars, kubernetes, systemd, report)" },
	/* 40-45 the manifest limits and default_namespace */
	{ MIN_OK "[kubernetes]\nmax_file = 32KiB\n",
	  "7: [kubernetes] max_file: '32KiB' is out of range (64KiB to 256MiB)" },
	{ MIN_OK "[kubernetes]\nmax_document = 65MiB\n",
	  "7: [kubernetes] max_document: '65MiB' is out of range (64KiB to 64MiB)" },
	{ MIN_OK "[kubernetes]\nmax_nodes = 9999\n",
	  "7: [kubernetes] max_nodes: 9999 is out of range (10000 to 10000000)" },
	{ MIN_OK "[kubernetes]\nmax_total = 5GiB\n",
	  "7: [kubernetes] max_total: '5GiB' is out of range (1MiB to 4GiB)" },
	{ MIN_OK "[kubernetes]\ndefault_namespace = Argo_CD\n",
	  "7: [kubernetes] default_namespace: must be a namespace name "
	  "(at most 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)" },
	{ MIN_OK "[kubernetes]\ndefault_namespace = -argocd\n",
	  "7: [kubernetes] default_namespace: must be a namespace name "
	  "(at most 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)" },
};

static void test_bad_inis(void **state)
{
	char expect[1024];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tm_config *cfg = (void *)1;
		int r = load(&cfg, bad[i].ini);
		snprintf(expect, sizeof(expect), "%s/t.ini:%s", dir, bad[i].msg);
		if (r != TM_ECONFIG || strcmp(tm_error_last(), expect) != 0) {
			print_error("case %zu: r=%d\n got: %s\nwant: %s\n", i + 1, r,
				    tm_error_last(), expect);
			fail();
		}
		assert_null(cfg);
		assert_int_equal(tm_error_exit_code(r), 2);
	}
	assert_true(sizeof(bad) / sizeof(bad[0]) >= 25);
}

/* The binary itself: exit 2 and the message on stderr, for a few cases. */
static void test_binary_exit_codes(void **state)
{
	char cmd[1024], line[1024];
	FILE *p;

	for (size_t i = 0; i < 3; i++) {
		char *path = write_ini("bin.ini", bad[i].ini);
		snprintf(cmd, sizeof(cmd), "%s check-config -c %s 2>&1 >/dev/null", TM_BINARY,
			 path);
		p = popen(cmd, "r");
		assert_non_null(p);
		assert_non_null(fgets(line, sizeof(line), p));
		int st = pclose(p);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 2);
		assert_non_null(strstr(line, bad[i].msg + 1));
		assert_non_null(strstr(line, "bin.ini:"));
	}
}

static void test_example_accepted(void **state)
{
	struct tm_config *cfg;
	struct tm_config_env env = { .machine_id_file = mid_path, .hostname = "host-1" };

	assert_int_equal(tm_config_load(&cfg, TM_SOURCE_DIR "/packaging/tagmoor.ini.example", &env),
			 0);
	assert_string_equal(cfg->agent.device_id, "edge-0042");
	assert_int_equal(cfg->agent.interval_ms, 60000);
	assert_int_equal(cfg->agent.jitter_pct, 10);
	assert_int_equal(cfg->source.max_fetch, 64 * 1024 * 1024);
	assert_int_equal(cfg->verify.mode, TM_VERIFY_TAG);
	assert_int_equal(cfg->kubernetes.applier.paths.n, 2);
	assert_string_equal(cfg->kubernetes.applier.paths.v[1], "k8s/sites/berlin-3");
	assert_string_equal(cfg->systemd.applier.paths.v[1], "units/devices/edge-0042");
	assert_string_equal(cfg->report.url,
			    "https://fleet.example.com/v1/devices/edge-0042/status");
	tm_config_free(cfg);
}

static void test_defaults_and_builtins(void **state)
{
	struct tm_config *cfg;

	assert_int_equal(
		load(&cfg, MIN_OK
		     "[systemd]\nenabled = on\npaths = u/${device_id} u/${hostname} u/${arch}\n"),
		0);
	assert_string_equal(cfg->agent.device_id, "0123456789abcdef0123456789abcdef");
	assert_string_equal(cfg->systemd.applier.paths.v[0], "u/0123456789abcdef0123456789abcdef");
	assert_string_equal(cfg->systemd.applier.paths.v[1], "u/host-1");
	assert_non_null(strstr(cfg->systemd.applier.paths.v[2], "u/"));
	assert_true(strlen(cfg->systemd.applier.paths.v[2]) > 2);
	assert_int_equal(cfg->systemd.applier.enabled, 1);
	assert_string_equal(cfg->agent.state_dir, "/var/lib/tagmoor");
	assert_int_equal(cfg->agent.drift_check_ms, 600000);
	assert_int_equal(cfg->source.timeout_ms, 60000);
	assert_int_equal(cfg->kubernetes.applier.wait_ms, 120000);
	assert_int_equal(cfg->report.spool_max, 256);
	/* the manifest limits: upstream install files and CRD bundles fit with room to spare */
	assert_string_equal(cfg->kubernetes.default_namespace, "default");
	assert_int_equal(cfg->kubernetes.max_file, 16u << 20);
	assert_int_equal(cfg->kubernetes.max_document, 8u << 20);
	assert_int_equal(cfg->kubernetes.max_nodes, 500000);
	assert_int_equal(cfg->kubernetes.max_total, 64u << 20);
	tm_config_free(cfg);
	assert_int_equal(load(&cfg, MIN_OK
			      "[kubernetes]\ndefault_namespace = argocd\nmax_file = 256MiB\n"
			      "max_document = 64KiB\nmax_nodes = 10000000\nmax_total = 1MiB\n"),
			 0);
	assert_string_equal(cfg->kubernetes.default_namespace, "argocd");
	assert_int_equal(cfg->kubernetes.max_file, 256u << 20);
	assert_int_equal(cfg->kubernetes.max_document, 64u << 10);
	assert_int_equal(cfg->kubernetes.max_nodes, 10000000);
	assert_int_equal(cfg->kubernetes.max_total, 1u << 20);
	tm_config_free(cfg);

	/* no machine-id: the hostname */
	struct tm_config_env env = { .machine_id_file = "/nonexistent/machine-id",
				     .hostname = "host-2" };
	assert_int_equal(tm_config_load(&cfg, write_ini("t2.ini", MIN_OK), &env), 0);
	assert_string_equal(cfg->agent.device_id, "host-2");
	tm_config_free(cfg);
}

static void test_root_and_vars_order(void **state)
{
	struct tm_config *cfg;
	struct tm_config_env env = { .machine_id_file = mid_path,
				     .hostname = "h",
				     .root = "/img/" };

	/* a variable used above the line that defines it */
	assert_int_equal(tm_config_load(&cfg,
					write_ini("t3.ini",
						  "[systemd]\npaths = units/${site}\n" MIN_OK
						  "[vars]\nsite = b3\n"),
					&env),
			 0);
	assert_string_equal(cfg->systemd.applier.paths.v[0], "units/b3");
	assert_string_equal(cfg->agent.state_dir, "/img/var/lib/tagmoor");
	assert_string_equal(cfg->systemd.unit_dir, "/img/etc/systemd/system");
	tm_config_free(cfg);
}

static void test_expansion_never_recurses(void **state)
{
	struct tm_config *cfg;
	char *out;
	size_t n;

	assert_int_equal(load(&cfg, MIN_OK "[vars]\na = ${b}\nb = x\n[systemd]\npaths = p/${a}\n"),
			 0);
	/* ${a}'s value is the literal "${b}": not expanded again */
	assert_string_equal(cfg->systemd.applier.paths.v[0], "p/${b}");

	/* repository content: known names expand, unknown are kept, $$ escapes */
	const char *text = "id=${device_id} pod=${POD_IP} lit=$${a} a=${a} open=${x";
	assert_int_equal(tm_config_expand_content(&out, &n, cfg, text, strlen(text), 4096), 0);
	assert_string_equal(
		out, "id=0123456789abcdef0123456789abcdef pod=${POD_IP} lit=${a} a=${b} open=${x");
	assert_int_equal(n, strlen(out));
	free(out);

	/* the cap */
	assert_int_equal(tm_config_expand_content(&out, &n, cfg, text, strlen(text), 10),
			 TM_ELIMIT);
	tm_config_free(cfg);
}

static void test_redaction(void **state)
{
	struct tm_config *cfg;
	char buf[4096];
	FILE *f;

	assert_int_equal(load(&cfg, "[source]\nurl = https://user:s3cret@git.example.com/c.git\n"
				    "ref = refs/tags/stable\n[verify]\nallowed_signers = /a\n"),
			 0);
	f = fmemopen(buf, sizeof(buf), "w");
	tm_config_print(cfg, f);
	fclose(f);
	assert_null(strstr(buf, "s3cret"));
	assert_null(strstr(buf, "user:"));
	assert_non_null(strstr(buf, "url = https://***@git.example.com/c.git"));
	tm_config_free(cfg);
}

static void test_long_line_and_missing_file(void **state)
{
	struct tm_config *cfg;
	char ini[1024], expect[512];

	snprintf(ini, sizeof(ini), MIN_OK "[vars]\nx = %0300d\n", 0);
	assert_int_equal(load(&cfg, ini), TM_ECONFIG);
	snprintf(expect, sizeof(expect), "%s/t.ini:7: line longer than 198 bytes", dir);
	assert_string_equal(tm_error_last(), expect);

	assert_int_equal(tm_config_load(&cfg, "/nonexistent/tagmoor.ini", NULL), TM_ECONFIG);
	assert_string_equal(tm_error_last(),
			    "cannot read configuration: /nonexistent/tagmoor.ini: no such file");
}

static int setup(void **state)
{
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(mid_path, sizeof(mid_path), "%s/machine-id", dir);
	f = fopen(mid_path, "w");
	fputs("0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_inis),
		cmocka_unit_test(test_binary_exit_codes),
		cmocka_unit_test(test_example_accepted),
		cmocka_unit_test(test_defaults_and_builtins),
		cmocka_unit_test(test_root_and_vars_order),
		cmocka_unit_test(test_expansion_never_recurses),
		cmocka_unit_test(test_redaction),
		cmocka_unit_test(test_long_line_and_missing_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
