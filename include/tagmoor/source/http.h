/*
 * http.h — the one HTTP client of tagmoor (a libcurl wrapper).
 *
 * Every HTTP call — the git smart transport, the status reporter, the
 * Kubernetes client — goes through a struct tm_http: TLS with an optional
 * private CA bundle (which then replaces the system CAs), optional client
 * certificate, bearer or basic credentials, a connect timeout, an idle
 * timeout (no byte moved for that long fails the request, so a server that
 * accepts and then goes silent cannot hang us), an optional total timeout and
 * a cap on the bytes of every response. Redirects are never followed: a 3xx
 * answer is an error. Only https:// is allowed unless allow_http is set.
 *
 * One client holds one libcurl handle, so consecutive requests reuse the
 * connection. One request at a time per client. Credentials are copied into
 * the client and wiped when it is freed; they are never logged, and URLs in
 * messages have their userinfo removed.
 *
 * Errors: TM_ESOURCE for network, TLS, HTTP protocol, redirect and timeout
 * failures (the message says which; callers other than the git source may
 * re-map it), TM_ELIMIT when a response exceeds its cap, TM_ENOMEM.
 */
#ifndef TAGMOOR_HTTP_H
#define TAGMOOR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/core/buf.h"

struct tm_http;
struct tm_http_stream;

#define TM_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 30000u
#define TM_HTTP_DEFAULT_IDLE_TIMEOUT_MS 60000u
#define TM_HTTP_DEFAULT_MAX_RESPONSE (16u * 1024 * 1024)

struct tm_http_opts {
	const char *ca_file;     /* PEM bundle trusted instead of the system CAs; NULL: system */
	const char *client_cert; /* PEM client certificate (mTLS), with client_key */
	const char *client_key;
	/* The same as PEM bytes in memory (a kubeconfig's *-data fields), used
	 * instead of the files when set; copied into the client, the key wiped. */
	const void *ca_pem;
	size_t ca_pem_len;
	const void *client_cert_pem;
	size_t client_cert_pem_len;
	const void *client_key_pem; /* secret */
	size_t client_key_pem_len;
	const char *bearer_token; /* sends "Authorization: Bearer <token>" */
	const char *username;     /* basic auth (with password), sent pre-emptively */
	const char *password;
	uint64_t connect_timeout_ms; /* TCP + TLS handshake; 0: default */
	uint64_t idle_timeout_ms;    /* longest time without any byte moving; 0: default */
	uint64_t total_timeout_ms;   /* whole request; 0: no total limit */
	uint64_t max_response;       /* body bytes per response; 0: default */
	const char *const
		*headers;       /* extra "Name: value" lines for every request; NULL-terminated */
	const char *user_agent; /* NULL: "tagmoor/<version>" */
	int allow_http;         /* allow plain http:// (tests only) */
};

struct tm_http_request {
	const char *method; /* "GET" (default when NULL), "POST", "PATCH", ... */
	const char *url;
	const char *content_type; /* of the body; NULL: none */
	const char *accept;       /* Accept header; NULL: none */
	const void *body;         /* must stay valid until the request/stream ends */
	size_t body_len;
	const char *const *headers; /* extra "Name: value" lines; NULL-terminated or NULL */
	uint64_t max_response;      /* 0: the client's */
	uint64_t total_timeout_ms;  /* 0: the client's */
};

/* Idempotent process-wide initialisation of libcurl (called by tm_http_new). */
int tm_http_global_init(void);

int tm_http_new(struct tm_http **out, const struct tm_http_opts *opts);
void tm_http_free(struct tm_http *http);

/* A simple request: the whole response body goes to out_body (which the
 * caller initialised; its max also caps the body). Any non-3xx status is
 * returned in *out_status with success; 3xx is an error (redirect refused). */
int tm_http_do(struct tm_http *http, const struct tm_http_request *req, long *out_status,
	       struct tm_buf *out_body);

/* Streaming: sends the request and returns once the response headers are in
 * (status and content type known), or fails. The body is then read in pieces
 * with tm_http_stream_read; only a small window is ever buffered. */
int tm_http_stream_open(struct tm_http_stream **out, struct tm_http *http,
			const struct tm_http_request *req);
long tm_http_stream_status(const struct tm_http_stream *s);
/* The response's Content-Type ("" when none). Borrowed. */
const char *tm_http_stream_content_type(const struct tm_http_stream *s);
/* The response's Retry-After value as sent ("" when none). Borrowed. */
const char *tm_http_stream_retry_after(const struct tm_http_stream *s);
/* Reads up to len bytes; *out_n == 0 means the body ended. */
int tm_http_stream_read(struct tm_http_stream *s, void *buf, size_t len, size_t *out_n);
/* Body bytes received so far. */
uint64_t tm_http_stream_received(const struct tm_http_stream *s);
void tm_http_stream_free(struct tm_http_stream *s);

/* Copies url to out without "user:password@" (for messages and state).
 * Truncates to outlen - 1; returns 0, or TM_ELIMIT when truncated. */
int tm_http_redact_url(char *out, size_t outlen, const char *url);

/* The libcurl version string ("7.88.1"). */
const char *tm_http_curl_version(void);

#endif
