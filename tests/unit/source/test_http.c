/*
 * test_http.c — the HTTP client against the real nginx of the integration
 * tests (tests/integration/gitserver): status and body, caps (cap, cap + 1),
 * redirects refused, TLS trust, idle and total timeouts against a silent
 * server, basic auth, streaming in small pieces, option validation and URL
 * redaction (which needs no server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/source/http.h"

#include "gitserver/server.h"

static struct tm_test_server srv;
static int have_server;
static char tmpdir[512];
static size_t adv_len; /* size of the test repository's advertisement */

#define NEED_SERVER()               \
	do {                        \
		if (!have_server) { \
			skip();     \
		}                   \
	} while (0)

static void url_of(char *out, size_t n, const char *path)
{
	snprintf(out, n, "%s%s", srv.url, path);
}

static void test_redact_url(void **state)
{
	char out[128];

	assert_int_equal(tm_http_redact_url(out, sizeof(out), "https://u:p@host:1/a@b?x=@"), 0);
	assert_string_equal(out, "https://host:1/a@b?x=@");
	assert_int_equal(tm_http_redact_url(out, sizeof(out), "https://token@host/x"), 0);
	assert_string_equal(out, "https://host/x");
	assert_int_equal(tm_http_redact_url(out, sizeof(out), "https://host/x"), 0);
	assert_string_equal(out, "https://host/x");
	assert_int_equal(tm_http_redact_url(out, sizeof(out), "https://a:b@c:d@host"), 0);
	assert_string_equal(out, "https://host");
	assert_int_equal(tm_http_redact_url(out, 5, "https://host/x"), TM_ELIMIT);
	assert_string_equal(out, "http");
}

static void test_option_validation(void **state)
{
	struct tm_http *h = NULL;
	struct tm_http_opts o = { 0 };
	const char *bad_headers[] = { "X-A: 1\r\nX-Injected: 2", NULL };
	const char *no_colon[] = { "X-A", NULL };

	o.bearer_token = "abc\ndef";
	assert_int_equal(tm_http_new(&h, &o), TM_ECONFIG);
	assert_null(h);
	o.bearer_token = "";
	assert_int_equal(tm_http_new(&h, &o), TM_ECONFIG);
	o.bearer_token = NULL;
	o.username = "u";
	o.password = "p\r";
	assert_int_equal(tm_http_new(&h, &o), TM_ECONFIG);
	o.password = "p";
	o.headers = bad_headers;
	assert_int_equal(tm_http_new(&h, &o), TM_EUSAGE);
	o.headers = no_colon;
	assert_int_equal(tm_http_new(&h, &o), TM_EUSAGE);
	o.headers = NULL;
	assert_int_equal(tm_http_new(&h, &o), 0);
	tm_http_free(h);
	tm_http_free(NULL);
	assert_non_null(tm_http_curl_version());
}

static void test_plain_http_refused(void **state)
{
	struct tm_http *h = NULL;
	struct tm_http_request req = { .url = "http://localhost:1/" };
	long st;

	assert_int_equal(tm_http_new(&h, NULL), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "https only"));
	tm_http_free(h);
}

static struct tm_http *client(uint64_t max_response)
{
	struct tm_http *h = NULL;
	struct tm_http_opts o = { 0 };

	o.ca_file = srv.ca;
	o.connect_timeout_ms = 5000;
	o.idle_timeout_ms = 5000;
	o.max_response = max_response;
	assert_int_equal(tm_http_new(&h, &o), 0);
	return h;
}

static void test_get_status_body_and_reuse(void **state)
{
	struct tm_http *h;
	struct tm_http_request req = { 0 };
	struct tm_buf b;
	char url[512];
	long st;

	NEED_SERVER();
	h = client(0);
	url_of(url, sizeof(url), "/git/r.git/info/refs?service=git-upload-pack");
	req.url = url;
	tm_buf_init(&b, 1 << 20);
	assert_int_equal(tm_http_do(h, &req, &st, &b), 0);
	assert_int_equal(st, 200);
	assert_non_null(strstr(b.ptr, "# service=git-upload-pack"));
	adv_len = b.len;
	/* same client again (connection reuse) */
	tm_buf_reset(&b);
	assert_int_equal(tm_http_do(h, &req, &st, &b), 0);
	assert_int_equal(st, 200);
	assert_int_equal(b.len, adv_len);
	/* a 404 is a status, not an error */
	url_of(url, sizeof(url), "/git/none.git/info/refs?service=git-upload-pack");
	tm_buf_reset(&b);
	assert_int_equal(tm_http_do(h, &req, &st, &b), 0);
	assert_int_equal(st, 404);
	/* POST works on the same client */
	url_of(url, sizeof(url), "/git/r.git/git-upload-pack");
	req.method = "POST";
	req.content_type = "application/x-git-upload-pack-request";
	req.body = "0000";
	req.body_len = 4;
	tm_buf_reset(&b);
	assert_int_equal(tm_http_do(h, &req, &st, &b), 0);
	assert_int_equal(st, 200);
	tm_buf_free(&b);
	tm_http_free(h);
}

static void test_response_caps(void **state)
{
	struct tm_http *h;
	struct tm_http_request req = { 0 };
	struct tm_buf b;
	char url[512];
	long st;

	NEED_SERVER();
	assert_true(adv_len > 10);
	url_of(url, sizeof(url), "/git/r.git/info/refs?service=git-upload-pack");
	req.url = url;
	/* cap: exactly the body size passes; one byte less fails */
	h = client(adv_len);
	tm_buf_init(&b, 1 << 20);
	assert_int_equal(tm_http_do(h, &req, &st, &b), 0);
	tm_http_free(h);
	h = client(adv_len - 1);
	tm_buf_reset(&b);
	assert_int_equal(tm_http_do(h, &req, &st, &b), TM_ELIMIT);
	/* the client survives a failed request */
	req.max_response = adv_len;
	tm_buf_reset(&b);
	assert_int_equal(tm_http_do(h, &req, &st, &b), 0);
	tm_http_free(h);
	tm_buf_free(&b);
	/* the caller's buffer caps too */
	h = client(0);
	req.max_response = 0;
	tm_buf_init(&b, adv_len); /* room for adv_len - 1 bytes */
	assert_int_equal(tm_http_do(h, &req, &st, &b), TM_ELIMIT);
	tm_buf_free(&b);
	tm_http_free(h);
}

static void test_streaming_small_reads(void **state)
{
	struct tm_http *h;
	struct tm_http_stream *s = NULL;
	struct tm_http_request req = { 0 };
	char url[512], c;
	size_t n, total = 0;

	NEED_SERVER();
	h = client(0);
	url_of(url, sizeof(url), "/git/r.git/info/refs?service=git-upload-pack");
	req.url = url;
	assert_int_equal(tm_http_stream_open(&s, h, &req), 0);
	assert_int_equal(tm_http_stream_status(s), 200);
	assert_string_equal(tm_http_stream_content_type(s),
			    "application/x-git-upload-pack-advertisement");
	/* one request at a time */
	{
		struct tm_http_stream *s2 = NULL;

		assert_int_equal(tm_http_stream_open(&s2, h, &req), TM_ERROR);
	}
	do {
		assert_int_equal(tm_http_stream_read(s, &c, 1, &n), 0);
		total += n;
	} while (n);
	assert_int_equal(total, adv_len);
	assert_int_equal(tm_http_stream_received(s), adv_len);
	tm_http_stream_free(s);
	tm_http_free(h);
}

static void test_redirect_refused(void **state)
{
	struct tm_http *h;
	struct tm_http_request req = { 0 };
	char url[512];
	long st;

	NEED_SERVER();
	h = client(0);
	url_of(url, sizeof(url), "/redirect/r.git/info/refs?service=git-upload-pack");
	req.url = url;
	assert_int_equal(tm_http_do(h, &req, &st, NULL), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "HTTP 301: redirect refused"));
	tm_http_free(h);
}

static void test_tls_trust(void **state)
{
	struct tm_http *h = NULL;
	struct tm_http_opts o = { 0 };
	struct tm_http_request req = { 0 };
	char url[512], other[600];
	long st;

	NEED_SERVER();
	url_of(url, sizeof(url), "/git/r.git/info/refs?service=git-upload-pack");
	req.url = url;
	snprintf(other, sizeof(other), "%s/other-ca.pem", tmpdir);
	assert_int_equal(tm_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other "
			       "-keyout %s.key -out %s >/dev/null 2>&1",
			       other, other),
			 0);
	o.ca_file = other;
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), TM_ESOURCE);
	assert_non_null(strstr(tm_error_last(), "TLS verification failed"));
	tm_http_free(h);
	o.ca_file = NULL; /* system CAs: the test CA is not among them */
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), TM_ESOURCE);
	tm_http_free(h);
}

static void test_basic_auth(void **state)
{
	struct tm_http *h = NULL;
	struct tm_http_opts o = { 0 };
	struct tm_http_request req = { 0 };
	char url[512];
	long st;

	NEED_SERVER();
	url_of(url, sizeof(url), "/auth/r.git/info/refs?service=git-upload-pack");
	req.url = url;
	o.ca_file = srv.ca;
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), 0);
	assert_int_equal(st, 401);
	tm_http_free(h);
	o.username = srv.user;
	o.password = srv.pass;
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), 0);
	assert_int_equal(st, 200);
	tm_http_free(h);
}

static void test_client_certificate(void **state)
{
	struct tm_http *h = NULL;
	struct tm_http_opts o = { 0 };
	struct tm_http_request req = { 0 };
	char url[512];
	long st;

	NEED_SERVER();
	snprintf(url, sizeof(url),
		 "https://localhost:%d/git/r.git/info/refs?service=git-upload-pack", srv.mtls_port);
	req.url = url;
	o.ca_file = srv.ca;
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), 0);
	assert_int_equal(st, 400); /* nginx: no required SSL certificate */
	tm_http_free(h);
	o.client_cert = srv.client_cert;
	o.client_key = srv.client_key;
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), 0);
	assert_int_equal(st, 200);
	tm_http_free(h);
	o.client_key = "/nonexistent/key.pem";
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), TM_ESOURCE);
	tm_http_free(h);
}

static void test_bearer_header(void **state)
{
	struct tm_http *h = NULL;
	struct tm_http_opts o = { 0 };
	struct tm_http_request req = { 0 };
	char url[512];
	long st;

	NEED_SERVER();
	url_of(url, sizeof(url), "/bearer/r.git/info/refs?service=git-upload-pack");
	req.url = url;
	o.ca_file = srv.ca;
	o.bearer_token = "wrong";
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), 0);
	assert_int_equal(st, 401);
	tm_http_free(h);
	o.bearer_token = srv.bearer;
	assert_int_equal(tm_http_new(&h, &o), 0);
	assert_int_equal(tm_http_do(h, &req, &st, NULL), 0);
	assert_int_equal(st, 200);
	tm_http_free(h);
}

static void silent(int port, uint64_t idle, uint64_t total, long lo, long hi)
{
	struct tm_http *h = NULL;
	struct tm_http_opts o = { 0 };
	struct tm_http_request req = { 0 };
	char url[128];
	long st, t0, dt;

	snprintf(url, sizeof(url), "https://localhost:%d/", port);
	req.url = url;
	o.ca_file = srv.ca;
	o.connect_timeout_ms = idle;
	o.idle_timeout_ms = idle;
	o.total_timeout_ms = total;
	assert_int_equal(tm_http_new(&h, &o), 0);
	t0 = tm_test_ms();
	assert_int_equal(tm_http_do(h, &req, &st, NULL), TM_ESOURCE);
	dt = tm_test_ms() - t0;
	assert_non_null(strstr(tm_error_last(), "timed out"));
	assert_true(dt >= lo);
	assert_true(dt <= hi);
	tm_http_free(h);
}

static void test_silent_servers(void **state)
{
	NEED_SERVER();
	silent(srv.silent_port, 800, 0, 700, 1800);
	silent(srv.silent_tls_port, 800, 0, 700, 1800);
	silent(srv.silent_tls_port, 5000, 600, 500, 1600); /* total limit first */
}

static int setup_all(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_http.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("HOME", tmpdir, 1);
	have_server = tm_test_server_start(&srv, 1) == 0;
	if (have_server)
		have_server =
			tm_sh("set -e; git init -q --bare %s/r.git; w=%s/w; git init -q -b main $w; "
			      "cd $w; echo a > a; git add a; git -c user.name=t -c user.email=t@e commit -q -m a; "
			      "git push -q %s/r.git main",
			      srv.root, tmpdir, srv.root) == 0;
	if (!have_server)
		fprintf(stderr, "test server did not start: network tests skipped\n");
	return 0;
}

static int teardown_all(void **state)
{
	tm_test_server_stop(&srv);
	if (tmpdir[0])
		tm_sh("rm -rf '%s'", tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact_url),
		cmocka_unit_test(test_option_validation),
		cmocka_unit_test(test_plain_http_refused),
		cmocka_unit_test(test_get_status_body_and_reuse),
		cmocka_unit_test(test_response_caps),
		cmocka_unit_test(test_streaming_small_reads),
		cmocka_unit_test(test_redirect_refused),
		cmocka_unit_test(test_tls_trust),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_bearer_header),
		cmocka_unit_test(test_client_certificate),
		cmocka_unit_test(test_silent_servers),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
