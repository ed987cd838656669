/*
 * test_kubeconfig.c — kubeconfig files and the in-cluster service account
 * (kubeconfig.h): a k3s kubeconfig with embedded client certificate, key and
 * CA; tokens and token files (re-read every time); current-context and an
 * explicit context; relative file names; every refusal names the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "tagmoor/apply/kubernetes/kubeconfig.h"

static char dir[] = "/tmp/tm-kubeconfig-XXXXXX";

static void put_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static char *b64(const char *s)
{
	struct tm_buf b;
	tm_buf_init(&b, 1 << 16);
	assert_int_equal(tm_base64_encode(&b, s, strlen(s), 0), 0);
	return tm_buf_detach(&b);
}

static const char CERT[] = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
static const char KEY[] =
	"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIkey\n-----END EC PRIVATE KEY-----\n";
static const char CA[] = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";

/* What k3s writes to /etc/rancher/k3s/k3s.yaml. */
static char *k3s_yaml(void)
{
	char *c = b64(CERT), *k = b64(KEY), *a = b64(CA);
	struct tm_buf out;

	tm_buf_init(&out, 1 << 16);
	tm_buf_printf(&out,
		      "apiVersion: v1\n"
		      "clusters:\n"
		      "- cluster:\n"
		      "    certificate-authority-data: %s\n"
		      "    server: https://127.0.0.1:6443\n"
		      "  name: default\n"
		      "contexts:\n"
		      "- context:\n"
		      "    cluster: default\n"
		      "    user: default\n"
		      "  name: default\n"
		      "current-context: default\n"
		      "kind: Config\n"
		      "preferences: {}\n"
		      "users:\n"
		      "- name: default\n"
		      "  user:\n"
		      "    client-certificate-data: %s\n"
		      "    client-key-data: %s\n",
		      a, c, k);
	free(c);
	free(k);
	free(a);
	return tm_buf_detach(&out);
}

static void test_k3s(void **state)
{
	struct tm_kubeconfig *kc = NULL;
	char *y = k3s_yaml(), *tok = (char *)"x";

	assert_int_equal(tm_kubeconfig_parse(&kc, y, strlen(y), "/etc/rancher/k3s/k3s.yaml", NULL),
			 0);
	assert_string_equal(kc->server, "https://127.0.0.1:6443");
	assert_string_equal(kc->context, "default");
	assert_int_equal(kc->ca_pem_len, strlen(CA));
	assert_memory_equal(kc->ca_pem, CA, strlen(CA));
	assert_int_equal(kc->cert_pem_len, strlen(CERT));
	assert_memory_equal(kc->cert_pem, CERT, strlen(CERT));
	assert_int_equal(kc->key_pem_len, strlen(KEY));
	assert_memory_equal(kc->key_pem, KEY, strlen(KEY));
	assert_null(kc->ca_file);
	assert_null(kc->cert_file);
	assert_null(kc->token);
	assert_null(kc->namespace);
	assert_int_equal(tm_kubeconfig_token(&tok, kc), 0);
	assert_null(tok);
	tm_kubeconfig_free(kc);
	free(y);
}

static const char MULTI[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: edge\n"
	"clusters:\n"
	"- name: c1\n"
	"  cluster: {server: 'https://c1.example:6443/', certificate-authority: ca.pem}\n"
	"- name: c2\n"
	"  cluster: {server: 'https://c2.example/k8s/clusters/c-x', certificate-authority: /abs/ca.pem}\n"
	"contexts:\n"
	"- name: lab\n"
	"  context: {cluster: c1, user: u-token}\n"
	"- name: edge\n"
	"  context: {cluster: c2, user: u-file, namespace: apps}\n"
	"- name: files\n"
	"  context: {cluster: c1, user: u-certfiles}\n"
	"- name: basic\n"
	"  context: {cluster: c1, user: u-basic}\n"
	"users:\n"
	"- name: u-token\n"
	"  user: {token: abc.def}\n"
	"- name: u-file\n"
	"  user: {token: ignored, tokenFile: tok}\n"
	"- name: u-certfiles\n"
	"  user: {client-certificate: certs/c.pem, client-key: /k/c.key}\n"
	"- name: u-basic\n"
	"  user: {username: admin, password: s3cret}\n";

static void test_contexts(void **state)
{
	struct tm_kubeconfig *kc = NULL;
	char tf[600], *tok = NULL;

	/* current-context: edge (token file relative to the kubeconfig, re-read) */
	assert_int_equal(tm_kubeconfig_parse(&kc, MULTI, strlen(MULTI), "/etc/kube/config", NULL),
			 0);
	assert_string_equal(kc->context, "edge");
	assert_string_equal(kc->server, "https://c2.example/k8s/clusters/c-x");
	assert_string_equal(kc->ca_file, "/abs/ca.pem");
	assert_string_equal(kc->namespace, "apps");
	assert_string_equal(kc->token_file, "/etc/kube/tok");
	assert_string_equal(kc->token, "ignored");
	tm_kubeconfig_free(kc);

	/* explicit context; trailing '/' of the server dropped; relative CA */
	assert_int_equal(tm_kubeconfig_parse(&kc, MULTI, strlen(MULTI), "/etc/kube/config", "lab"),
			 0);
	assert_string_equal(kc->server, "https://c1.example:6443");
	assert_string_equal(kc->ca_file, "/etc/kube/ca.pem");
	assert_int_equal(tm_kubeconfig_token(&tok, kc), 0);
	assert_string_equal(tok, "abc.def");
	free(tok);
	tm_kubeconfig_free(kc);

	assert_int_equal(tm_kubeconfig_parse(&kc, MULTI, strlen(MULTI), "/etc/kube/config",
					     "files"),
			 0);
	assert_string_equal(kc->cert_file, "/etc/kube/certs/c.pem");
	assert_string_equal(kc->key_file, "/k/c.key");
	assert_null(kc->cert_pem);
	tm_kubeconfig_free(kc);

	assert_int_equal(tm_kubeconfig_parse(&kc, MULTI, strlen(MULTI), "/etc/kube/config",
					     "basic"),
			 0);
	assert_string_equal(kc->username, "admin");
	assert_string_equal(kc->password, "s3cret");
	tm_kubeconfig_free(kc);

	/* tokenFile wins over token and is read each time */
	snprintf(tf, sizeof(tf), "%s/config", dir);
	assert_int_equal(tm_kubeconfig_parse(&kc, MULTI, strlen(MULTI), tf, "edge"), 0);
	snprintf(tf, sizeof(tf), "%s/tok", dir);
	put_file(tf, "first-token\n");
	assert_int_equal(tm_kubeconfig_token(&tok, kc), 0);
	assert_string_equal(tok, "first-token");
	free(tok);
	put_file(tf, "rotated-token");
	assert_int_equal(tm_kubeconfig_token(&tok, kc), 0);
	assert_string_equal(tok, "rotated-token");
	free(tok);
	put_file(tf, "\n");
	assert_int_equal(tm_kubeconfig_token(&tok, kc), TM_ECONFIG);
	assert_non_null(strstr(tm_error_last(), "empty"));
	unlink(tf);
	assert_int_equal(tm_kubeconfig_token(&tok, kc), TM_ECONFIG);
	assert_non_null(strstr(tm_error_last(), tf));
	tm_kubeconfig_free(kc);
}

/* Every refusal names the file. */
static void expect_refused(const char *yaml, const char *context, const char *needle)
{
	struct tm_kubeconfig *kc = NULL;
	int r = tm_kubeconfig_parse(&kc, yaml, strlen(yaml), "/etc/k.yaml", context);

	if (r == 0)
		fail_msg("accepted: %s", yaml);
	assert_null(kc);
	assert_non_null(strstr(tm_error_last(), "/etc/k.yaml"));
	if (!strstr(tm_error_last(), needle))
		fail_msg("message \"%s\" lacks \"%s\"", tm_error_last(), needle);
}

static void test_refusals(void **state)
{
	static const char head[] = "apiVersion: v1\nkind: Config\n";
	char y[2048];

	expect_refused("- just a list\n", NULL, "not a kubeconfig");
	snprintf(y, sizeof(y), "%scontexts: []\n", head);
	expect_refused(y, NULL, "current-context is not set");
	expect_refused(MULTI, "nope", "context \"nope\" is not defined");
	snprintf(y, sizeof(y),
		 "%scurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: gone}\n", head);
	expect_refused(y, NULL, "cluster \"gone\" is not defined");
	snprintf(y, sizeof(y), "%scurrent-context: a\ncontexts:\n- name: a\n  context: {user: u}\n",
		 head);
	expect_refused(y, NULL, "cluster is missing");
	snprintf(y, sizeof(y),
		 "%scurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
		 "clusters:\n- name: c\n  cluster: {server: 'http://plain:8080'}\n",
		 head);
	expect_refused(y, NULL, "must be an https:// URL");
	snprintf(
		y, sizeof(y),
		"%scurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
		"clusters:\n- name: c\n  cluster: {server: 'https://x', insecure-skip-tls-verify: true}\n",
		head);
	expect_refused(y, NULL, "insecure-skip-tls-verify is not supported");
	snprintf(
		y, sizeof(y),
		"%scurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
		"clusters:\n- name: c\n  cluster: {server: 'https://x', certificate-authority-data: '!!notb64'}\n",
		head);
	expect_refused(y, NULL, "certificate-authority-data is not valid base64");
	snprintf(
		y, sizeof(y),
		"%scurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		"clusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
		"users:\n- name: u\n  user:\n    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}\n",
		head);
	expect_refused(y, NULL, "credential plugins");
	snprintf(y, sizeof(y),
		 "%scurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		 "clusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
		 "users:\n- name: u\n  user: {client-certificate-data: Zm9v}\n",
		 head);
	expect_refused(y, NULL, "needs its key");
	snprintf(y, sizeof(y),
		 "%scurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		 "clusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
		 "users:\n- name: u\n  user: {token: 42}\n",
		 head);
	expect_refused(y, NULL, "token must be a string");
	snprintf(y, sizeof(y), "%scurrent-context: a\ncontexts: {a: b}\n", head);
	expect_refused(y, NULL, "contexts must be a list");
	expect_refused("a: [unclosed\n", NULL, "");
}

static void test_load(void **state)
{
	struct tm_kubeconfig *kc = NULL;
	char p[600], link[600], *y = k3s_yaml();

	snprintf(p, sizeof(p), "%s/nope.yaml", dir);
	assert_int_equal(tm_kubeconfig_load(&kc, p, NULL), TM_ECONFIG);
	assert_non_null(strstr(tm_error_last(), p));
	snprintf(p, sizeof(p), "%s/k3s.yaml", dir);
	put_file(p, y);
	/* a symbolic link to the kubeconfig is fine: it is the operator's file */
	snprintf(link, sizeof(link), "%s/link.yaml", dir);
	assert_int_equal(symlink(p, link), 0);
	assert_int_equal(tm_kubeconfig_load(&kc, link, NULL), 0);
	assert_string_equal(kc->origin, link);
	tm_kubeconfig_free(kc);
	unlink(link);
	unlink(p);
	free(y);
}

static void test_in_cluster(void **state)
{
	struct tm_kubeconfig *kc = NULL;
	char sa[600], p[700], *tok = NULL;

	snprintf(sa, sizeof(sa), "%s/sa", dir);
	assert_int_equal(mkdir(sa, 0700), 0);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(tm_kubeconfig_in_cluster(&kc, sa), TM_ECONFIG);
	assert_non_null(strstr(tm_error_last(), "KUBERNETES_SERVICE_HOST"));
	setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	snprintf(p, sizeof(p), "%s/namespace", sa);
	put_file(p, "tagmoor-system\n");
	assert_int_equal(tm_kubeconfig_in_cluster(&kc, sa), 0);
	assert_string_equal(kc->server, "https://10.43.0.1:443");
	assert_string_equal(kc->namespace, "tagmoor-system");
	snprintf(p, sizeof(p), "%s/ca.crt", sa);
	assert_string_equal(kc->ca_file, p);
	/* the projected token rotates: every client reads it again */
	snprintf(p, sizeof(p), "%s/token", sa);
	put_file(p, "eyJ-one");
	assert_int_equal(tm_kubeconfig_token(&tok, kc), 0);
	assert_string_equal(tok, "eyJ-one");
	free(tok);
	put_file(p, "eyJ-two");
	assert_int_equal(tm_kubeconfig_token(&tok, kc), 0);
	assert_string_equal(tok, "eyJ-two");
	free(tok);
	tm_kubeconfig_free(kc);
	/* IPv6 service address */
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(tm_kubeconfig_in_cluster(&kc, sa), 0);
	assert_string_equal(kc->server, "https://[fd00::1]:443");
	tm_kubeconfig_free(kc);
	setenv("KUBERNETES_SERVICE_PORT", "44x", 1);
	assert_int_equal(tm_kubeconfig_in_cluster(&kc, sa), TM_ECONFIG);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unlink(p);
	snprintf(p, sizeof(p), "%s/namespace", sa);
	unlink(p);
	rmdir(sa);
}

static void test_read_file_cap(void **state)
{
	struct tm_buf b;
	char p[600];

	snprintf(p, sizeof(p), "%s/cap", dir);
	put_file(p, "0123456789");
	tm_buf_init(&b, 100);
	assert_int_equal(tm_kubeconfig_read_file(&b, p, 10), 0);
	assert_int_equal(b.len, 10);
	tm_buf_reset(&b);
	assert_int_equal(tm_kubeconfig_read_file(&b, p, 9), TM_ELIMIT);
	tm_buf_free(&b);
	unlink(p);
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_k3s),        cmocka_unit_test(test_contexts),
		cmocka_unit_test(test_refusals),   cmocka_unit_test(test_load),
		cmocka_unit_test(test_in_cluster), cmocka_unit_test(test_read_file_cap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
