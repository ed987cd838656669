/*
 * http.c — the libcurl adapter behind every HTTP call (see http.h).
 *
 * Requests run on the curl multi interface even when the caller wants the
 * whole body: one loop (pump) drives the transfer and enforces our own idle
 * and total timers with millisecond precision, and the write callback feeds a
 * small window that the reader drains. When the window is full the transfer
 * is paused, so a large git pack never sits in memory. The byte cap is
 * checked as bytes arrive; passing it aborts the transfer at once.
 *
 * Every libcurl error is converted here, once, into TM_ESOURCE / TM_ELIMIT
 * with a one-line message naming the (redacted) URL.
 */
#include "tagmoor/source/http.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/wipe.h"
#include "tagmoor/core/time.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define WINDOW_SOFT (64u * 1024) /* pause the transfer above this many buffered bytes */
#define URL_MSG_MAX 256

struct tm_http {
	CURL *easy;
	CURLM *multi;
	char *ca_file, *client_cert, *client_key;
	struct pem {
		void *ptr;
		size_t len;
	} ca_pem, cert_pem, key_pem; /* key_pem: wiped */
	char *username, *password;   /* secret: wiped */
	struct curl_slist *headers;  /* base headers; may carry a bearer token: wiped */
	char *user_agent;
	uint64_t connect_ms, idle_ms, total_ms, max_response;
	int allow_http;
	struct tm_http_stream *active;
	/* the last stream's receive window, for the next one (a request on a kept-alive
	 * connection otherwise maps, faults in and unmaps 64 KiB of its own) */
	unsigned char *spare_win;
	size_t spare_cap;
	char errbuf[CURL_ERROR_SIZE];
};

struct tm_http_stream {
	struct tm_http *http;
	struct curl_slist *headers; /* copy of base + request headers: wiped */
	char url[URL_MSG_MAX];      /* redacted, for messages */
	long status;
	char content_type[128];
	char retry_after[64]; /* the response's Retry-After ("" when none) */
	int headers_done, done, paused, added;
	CURLcode result;
	int fail_code;      /* set by a callback that aborted the transfer */
	unsigned char *win; /* received, not yet read: win[off, len) */
	size_t win_len, win_off, win_cap;
	uint64_t received, max;
	uint64_t start_ms, last_ms, total_ms, idle_ms;
	curl_off_t last_ul;
};

static int curl_ready;

static void free_secret_str(char *s)
{
	if (s) {
		tm_wipe(s, strlen(s));
		free(s);
	}
}

static void slist_free_wipe(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		if (i->data)
			tm_wipe(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static int dup_opt(char **out, const char *s)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : tm_error_nomem();
}

static const char *find_bytes(const char *p, size_t len, const char *what)
{
	size_t n = strlen(what);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (p[i] == what[0] && memcmp(p + i, what, n) == 0)
			return p + i;
	return NULL;
}

/* A private key tagmoor cannot use without a passphrase is refused here, by
 * name, before curl sees it: mbedTLS would fail with a bare error code and
 * OpenSSL would prompt for the passphrase on a terminal. */
static int key_usable(const char *p, size_t len, const char *what)
{
	if (find_bytes(p, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
	    find_bytes(p, len, "Proc-Type: 4,ENCRYPTED"))
		return tm_error_set(
			TM_ECONFIG,
			"%s is an encrypted private key: tagmoor has no passphrase to give; "
			"store it unencrypted, readable only by tagmoor "
			"(openssl pkey -in KEY -out PLAIN)",
			what);
	return 0;
}

/* A key file is read once to check it (curl reads it again). Unreadable or
 * missing files are left to curl, which names them. */
static int key_file_usable(const char *path)
{
	char buf[64 * 1024];
	size_t n = 0;
	FILE *f;
	int r;

	if (!path || !(f = fopen(path, "rb")))
		return 0;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	{
		char what[4200];
		snprintf(what, sizeof(what), "client key %s", path);
		r = key_usable(buf, n, what);
	}
	tm_wipe(buf, sizeof(buf));
	return r;
}

/* Keeps a copy with a NUL after the data. mbedTLS parses PEM only from a
 * buffer whose last byte is that NUL (mbedtls_pk_parse_key,
 * mbedtls_x509_crt_parse), and curl 8.14's mbedTLS backend hands a key blob
 * on as it is: a PEM blob therefore goes to curl with its NUL counted
 * (blob_len). OpenSSL stops at the END line and never sees it. */
static int dup_pem(struct pem *out, const void *p, size_t len)
{
	out->ptr = NULL;
	out->len = 0;
	if (!p || !len)
		return 0;
	if (!(out->ptr = malloc(len + 1)))
		return tm_error_nomem();
	memcpy(out->ptr, p, len);
	((char *)out->ptr)[len] = '\0';
	out->len = len;
	return 0;
}

static size_t blob_len(const struct pem *b)
{
	const char *p = b->ptr;

	if (b->len && p[b->len - 1] != '\0' && find_bytes(p, b->len, "-----BEGIN "))
		return b->len + 1;
	return b->len;
}

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

int tm_http_redact_url(char *out, size_t outlen, const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *auth, *at, *end;
	size_t n = 0;

	if (outlen == 0)
		return TM_ELIMIT;
	auth = scheme ? scheme + 3 : url;
	end = auth + strcspn(auth, "/?#");
	at = NULL;
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	for (const char *p = url; *p; p++) {
		if (at && p == auth)
			p = at + 1;
		if (!*p)
			break;
		if (n + 1 >= outlen) {
			out[n] = '\0';
			return TM_ELIMIT;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	return 0;
}

/* "8.14.1 (mbedTLS/3.6.6)": the version and the TLS library curl was built with. */
const char *tm_http_curl_version(void)
{
	static char v[128];
	const curl_version_info_data *d = curl_version_info(CURLVERSION_NOW);

	snprintf(v, sizeof(v), "%s (%s)", d->version, d->ssl_version ? d->ssl_version : "no TLS");
	return v;
}

int tm_http_global_init(void)
{
	if (curl_ready)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return tm_error_set(TM_ERROR, "cannot initialise libcurl");
	curl_ready = 1;
	return 0;
}

void tm_http_free(struct tm_http *http)
{
	if (!http)
		return;
	tm_http_stream_free(http->active);
	if (http->multi)
		curl_multi_cleanup(http->multi);
	if (http->easy)
		curl_easy_cleanup(http->easy);
	free(http->ca_file);
	free(http->client_cert);
	free(http->client_key);
	free(http->ca_pem.ptr);
	free(http->cert_pem.ptr);
	if (http->key_pem.ptr) {
		tm_wipe(http->key_pem.ptr, http->key_pem.len);
		free(http->key_pem.ptr);
	}
	free(http->spare_win);
	free(http->user_agent);
	free_secret_str(http->username);
	free_secret_str(http->password);
	slist_free_wipe(http->headers);
	free(http);
}

static int add_header(struct curl_slist **l, const char *h)
{
	struct curl_slist *n = curl_slist_append(*l, h);

	if (!n)
		return tm_error_nomem();
	*l = n;
	return 0;
}

static int set_common(struct tm_http *h)
{
	CURL *e = h->easy;
	CURLcode c = CURLE_OK;

	/* CURLOPT_* setters only fail for unknown options or memory; collect. */
	c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	c |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	c |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, h->allow_http ? "http,https" : "https");
	c |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	c |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_ms);
	/* No CURLOPT_LOW_SPEED_*: curl would count the time our reader spends
	 * between reads as a stall. pump() keeps the idle timer instead. */
	c |= curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
	c |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* A proxy's CONNECT answer must not pass for the server's headers. */
	c |= curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	if (h->ca_file) {
		/* Only this bundle is trusted: no CA directory, no built-in bundle. */
		c |= curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
		c |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (h->ca_pem.len) {
		/* Only these certificates are trusted (libcurl copies the blob). */
		struct curl_blob b = { h->ca_pem.ptr, blob_len(&h->ca_pem), CURL_BLOB_COPY };
		c |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
		c |= curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
		c |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (h->cert_pem.len) {
		struct curl_blob b = { h->cert_pem.ptr, blob_len(&h->cert_pem), CURL_BLOB_COPY };
		c |= curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		c |= curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (h->client_cert) {
		c |= curl_easy_setopt(e, CURLOPT_SSLCERT, h->client_cert);
		c |= curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (h->key_pem.len) {
		struct curl_blob b = { h->key_pem.ptr, blob_len(&h->key_pem), CURL_BLOB_COPY };
		c |= curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		c |= curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (h->client_key) {
		c |= curl_easy_setopt(e, CURLOPT_SSLKEY, h->client_key);
		c |= curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (h->username) {
		c |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		c |= curl_easy_setopt(e, CURLOPT_USERNAME, h->username);
		c |= curl_easy_setopt(e, CURLOPT_PASSWORD, h->password ? h->password : "");
	}
	if (c != CURLE_OK)
		return tm_error_set(TM_ERROR, "libcurl rejected an option (%s)",
				    curl_easy_strerror(c));
	return 0;
}

int tm_http_new(struct tm_http **out, const struct tm_http_opts *opts)
{
	struct tm_http *h;
	struct tm_http_opts none = { 0 };
	int r;

	*out = NULL;
	if (!opts)
		opts = &none;
	if ((r = tm_http_global_init()) < 0)
		return r;
	h = calloc(1, sizeof(*h));
	if (!h)
		return tm_error_nomem();
	h->connect_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms
						 : TM_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
	h->idle_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms
					   : TM_HTTP_DEFAULT_IDLE_TIMEOUT_MS;
	h->total_ms = opts->total_timeout_ms;
	h->max_response = opts->max_response ? opts->max_response : TM_HTTP_DEFAULT_MAX_RESPONSE;
	h->allow_http = opts->allow_http;
	if (h->connect_ms > 0x7fffffffu || h->idle_ms > 0x7fffffffu) {
		r = tm_error_set(TM_EUSAGE, "HTTP timeout too large");
		goto fail;
	}
	if ((r = dup_opt(&h->ca_file, opts->ca_file)) < 0 ||
	    (r = dup_opt(&h->client_cert, opts->client_cert)) < 0 ||
	    (r = dup_opt(&h->client_key, opts->client_key)) < 0 ||
	    (r = dup_opt(&h->username, opts->username)) < 0 ||
	    (r = dup_opt(&h->password, opts->password)) < 0)
		goto fail;
	if ((r = dup_pem(&h->ca_pem, opts->ca_pem, opts->ca_pem_len)) < 0 ||
	    (r = dup_pem(&h->cert_pem, opts->client_cert_pem, opts->client_cert_pem_len)) < 0 ||
	    (r = dup_pem(&h->key_pem, opts->client_key_pem, opts->client_key_pem_len)) < 0)
		goto fail;
	if (h->key_pem.len &&
	    (r = key_usable(h->key_pem.ptr, h->key_pem.len, "the client key")) < 0)
		goto fail;
	if (!h->key_pem.len && (r = key_file_usable(h->client_key)) < 0)
		goto fail;
	if (opts->user_agent) {
		r = dup_opt(&h->user_agent, opts->user_agent);
	} else {
		h->user_agent = strdup("tagmoor/" TM_VERSION);
		r = h->user_agent ? 0 : tm_error_nomem();
	}
	if (r < 0)
		goto fail;
	if (opts->bearer_token) {
		size_t n = strlen(opts->bearer_token) + sizeof("Authorization: Bearer ");
		char *hdr;

		if (!*opts->bearer_token || has_ctl(opts->bearer_token)) {
			r = tm_error_set(TM_ECONFIG,
					 "bearer token is empty or contains control characters");
			goto fail;
		}
		hdr = malloc(n);
		if (!hdr) {
			r = tm_error_nomem();
			goto fail;
		}
		snprintf(hdr, n, "Authorization: Bearer %s", opts->bearer_token);
		r = add_header(&h->headers, hdr);
		tm_wipe(hdr, n);
		free(hdr);
		if (r < 0)
			goto fail;
	}
	if ((h->username && has_ctl(h->username)) || (h->password && has_ctl(h->password))) {
		r = tm_error_set(TM_ECONFIG, "HTTP credentials contain control characters");
		goto fail;
	}
	for (const char *const *p = opts->headers; p && *p; p++) {
		if (has_ctl(*p) || !strchr(*p, ':')) {
			r = tm_error_set(TM_EUSAGE, "malformed HTTP header line");
			goto fail;
		}
		if ((r = add_header(&h->headers, *p)) < 0)
			goto fail;
	}
	h->easy = curl_easy_init();
	h->multi = curl_multi_init();
	if (!h->easy || !h->multi) {
		r = tm_error_set(TM_ENOMEM, "cannot create a libcurl handle");
		goto fail;
	}
	if ((r = set_common(h)) < 0)
		goto fail;
	*out = h;
	return 0;
fail:
	tm_http_free(h);
	return r;
}

/* --- callbacks ----------------------------------------------------------- */

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct tm_http_stream *s = ud;
	size_t len = size * n;

	s->last_ms = tm_time_mono_ms();
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A new response (after 1xx): start over. */
		const char *sp = memchr(p, ' ', len);
		long st = 0;

		s->headers_done = 0;
		s->content_type[0] = '\0';
		s->retry_after[0] = '\0';
		if (sp) {
			for (sp++; sp < p + len && *sp >= '0' && *sp <= '9' && st < 1000; sp++)
				st = st * 10 + (*sp - '0');
		}
		s->status = st;
	} else if (len >= 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
		const char *v = p + 13;
		size_t vl = len - 13, k = 0;

		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		for (; k < vl && k + 1 < sizeof(s->content_type); k++)
			s->content_type[k] = (v[k] >= 0x20 && v[k] < 0x7f) ? v[k] : '?';
		s->content_type[k] = '\0';
	} else if (len >= 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		const char *v = p + 12;
		size_t vl = len - 12, k = 0;

		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		for (; k < vl && k + 1 < sizeof(s->retry_after); k++)
			s->retry_after[k] = (v[k] >= 0x20 && v[k] < 0x7f) ? v[k] : '?';
		s->retry_after[k] = '\0';
	} else if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) {
		if (s->status >= 200)
			s->headers_done = 1;
	}
	return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
	struct tm_http_stream *s = ud;
	size_t len = size * n, pending = s->win_len - s->win_off;

	s->last_ms = tm_time_mono_ms();
	s->headers_done = 1;
	if (pending > 0 && pending + len > WINDOW_SOFT) {
		s->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (len > s->max || s->received > s->max - len) {
		s->fail_code = tm_error_set(TM_ELIMIT,
					    "%s: response larger than the limit of %llu bytes",
					    s->url, (unsigned long long)s->max);
		return 0;
	}
	if (s->win_off > 0) {
		memmove(s->win, s->win + s->win_off, pending);
		s->win_len = pending;
		s->win_off = 0;
	}
	if (s->win_len + len > s->win_cap) {
		size_t ncap = s->win_len + len;
		unsigned char *w;

		if (ncap < WINDOW_SOFT)
			ncap = WINDOW_SOFT;
		w = realloc(s->win, ncap);
		if (!w) {
			s->fail_code = tm_error_nomem();
			return 0;
		}
		s->win = w;
		s->win_cap = ncap;
	}
	memcpy(s->win + s->win_len, p, len);
	s->win_len += len;
	s->received += len;
	return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct tm_http_stream *s = ud;

	/* An upload that makes progress is not idle. */
	if (ulnow != s->last_ul) {
		s->last_ul = ulnow;
		s->last_ms = tm_time_mono_ms();
	}
	return 0;
}

/* --- the transfer loop --------------------------------------------------- */

static int curl_fail(struct tm_http_stream *s, CURLcode c)
{
	const char *detail = s->http->errbuf[0] ? s->http->errbuf : curl_easy_strerror(c);

	if (s->fail_code)
		return s->fail_code;
	switch (c) {
	case CURLE_PEER_FAILED_VERIFICATION:
		return tm_error_set(TM_ESOURCE, "%s: TLS verification failed: %s", s->url, detail);
	case CURLE_SSL_CACERT_BADFILE:
		return tm_error_set(TM_ESOURCE,
				    "%s: TLS verification failed: cannot load CA file: %s", s->url,
				    detail);
	case CURLE_SSL_CONNECT_ERROR:
		return tm_error_set(TM_ESOURCE, "%s: TLS handshake failed: %s", s->url, detail);
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
		return tm_error_set(TM_ESOURCE, "%s: TLS client setup failed: %s", s->url, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return tm_error_set(TM_ESOURCE, "%s: timed out: %s", s->url, detail);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return tm_error_set(TM_ESOURCE, "%s: cannot resolve host: %s", s->url, detail);
	case CURLE_COULDNT_CONNECT:
		return tm_error_set(TM_ESOURCE, "%s: cannot connect: %s", s->url, detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return tm_error_set(TM_ESOURCE, "%s: protocol not allowed (https only)", s->url);
	case CURLE_URL_MALFORMAT:
		return tm_error_set(TM_ESOURCE, "%s: malformed URL", s->url);
	default:
		return tm_error_set(TM_ESOURCE, "%s: %s", s->url, detail);
	}
}

/* Drives the transfer until the headers are in (want_body == 0) or some body
 * bytes are buffered or the transfer ended (want_body == 1). */
static int pump(struct tm_http_stream *s, int want_body)
{
	CURLM *m = s->http->multi;

	/* Only time spent here waiting for the server is idle time; the
	 * reader's own work between two reads is not. */
	s->last_ms = tm_time_mono_ms();
	for (;;) {
		int running = 0, left = 0;
		CURLMsg *msg;
		CURLMcode mc;
		uint64_t now, wait_ms;

		if (s->fail_code)
			return s->fail_code;
		if (want_body ? (s->win_len > s->win_off || s->done) : (s->headers_done || s->done))
			return 0;
		if (s->paused && s->win_len == s->win_off) {
			s->paused = 0;
			curl_easy_pause(s->http->easy, CURLPAUSE_CONT);
			continue;
		}
		mc = curl_multi_perform(m, &running);
		if (mc != CURLM_OK)
			return tm_error_set(TM_ESOURCE, "%s: %s", s->url, curl_multi_strerror(mc));
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == s->http->easy) {
				s->done = 1;
				s->result = msg->data.result;
			}
		}
		if (s->fail_code)
			return s->fail_code;
		if (s->done) {
			if (s->result != CURLE_OK)
				return curl_fail(s, s->result);
			if (!want_body && !s->headers_done && s->status >= 200)
				s->headers_done = 1;
			continue;
		}
		if (want_body ? (s->win_len > s->win_off) : s->headers_done)
			return 0;
		now = tm_time_mono_ms();
		if (s->total_ms && now - s->start_ms >= s->total_ms)
			return tm_error_set(TM_ESOURCE, "%s: timed out after %llu ms", s->url,
					    (unsigned long long)s->total_ms);
		if (now - s->last_ms >= s->idle_ms)
			return tm_error_set(TM_ESOURCE,
					    "%s: timed out: no data from the server for %llu ms",
					    s->url, (unsigned long long)s->idle_ms);
		wait_ms = s->idle_ms - (now - s->last_ms);
		if (s->total_ms && s->total_ms - (now - s->start_ms) < wait_ms)
			wait_ms = s->total_ms - (now - s->start_ms);
		if (wait_ms > 1000)
			wait_ms = 1000;
		if (s->paused)
			wait_ms = 0;
		mc = curl_multi_poll(m, NULL, 0, (int)wait_ms, NULL);
		if (mc != CURLM_OK)
			return tm_error_set(TM_ESOURCE, "%s: %s", s->url, curl_multi_strerror(mc));
	}
}

void tm_http_stream_free(struct tm_http_stream *s)
{
	if (!s)
		return;
	if (s->added)
		curl_multi_remove_handle(s->http->multi, s->http->easy);
	/* Nothing of this request may leak into the next one on this handle. */
	curl_easy_setopt(s->http->easy, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(s->http->easy, CURLOPT_POSTFIELDS, NULL);
	if (s->http->active == s)
		s->http->active = NULL;
	slist_free_wipe(s->headers);
	if (!s->http->spare_win && s->win && s->win_cap <= 2 * WINDOW_SOFT) {
		s->http->spare_win = s->win;
		s->http->spare_cap = s->win_cap;
	} else {
		free(s->win);
	}
	free(s);
}

static int header_line(struct curl_slist **l, const char *name, const char *value)
{
	char line[512];
	int n;

	if (has_ctl(value))
		return tm_error_set(TM_EUSAGE, "malformed %s header value", name);
	n = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (n < 0 || (size_t)n >= sizeof(line))
		return tm_error_set(TM_EUSAGE, "%s header value too long", name);
	return add_header(l, line);
}

int tm_http_stream_open(struct tm_http_stream **out, struct tm_http *http,
			const struct tm_http_request *req)
{
	struct tm_http_stream *s;
	const char *method = req->method ? req->method : "GET";
	CURL *e = http->easy;
	CURLcode c = CURLE_OK;
	int r;

	*out = NULL;
	if (http->active)
		return tm_error_set(TM_ERROR, "HTTP client busy (one request at a time)");
	if (!req->url)
		return tm_error_set(TM_EUSAGE, "HTTP request without URL");
	s = calloc(1, sizeof(*s));
	if (!s)
		return tm_error_nomem();
	s->http = http;
	s->win = http->spare_win;
	s->win_cap = http->spare_cap;
	http->spare_win = NULL;
	http->spare_cap = 0;
	tm_http_redact_url(s->url, sizeof(s->url), req->url);
	s->max = req->max_response ? req->max_response : http->max_response;
	s->total_ms = req->total_timeout_ms ? req->total_timeout_ms : http->total_ms;
	s->idle_ms = http->idle_ms;
	s->start_ms = s->last_ms = tm_time_mono_ms();
	http->errbuf[0] = '\0';

	for (struct curl_slist *i = http->headers; i; i = i->next)
		if ((r = add_header(&s->headers, i->data)) < 0)
			goto fail;
	for (const char *const *p = req->headers; p && *p; p++) {
		if (has_ctl(*p) || !strchr(*p, ':')) {
			r = tm_error_set(TM_EUSAGE, "malformed HTTP header line");
			goto fail;
		}
		if ((r = add_header(&s->headers, *p)) < 0)
			goto fail;
	}
	if (req->content_type &&
	    (r = header_line(&s->headers, "Content-Type", req->content_type)) < 0)
		goto fail;
	if (req->accept && (r = header_line(&s->headers, "Accept", req->accept)) < 0)
		goto fail;
	/* No "Expect: 100-continue" round trip. */
	if ((r = add_header(&s->headers, "Expect:")) < 0)
		goto fail;

	c |= curl_easy_setopt(e, CURLOPT_URL, req->url);
	c |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
	c |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	c |= curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
	c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	c |= curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	c |= curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	c |= curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
	c |= curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	c |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)0);
	if (strcmp(method, "GET") == 0) {
		c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
		c |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		c |= curl_easy_setopt(e, CURLOPT_POST, 1L);
		c |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		c |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
				      strcmp(method, "POST") == 0 ? NULL : method);
	}
	if (c != CURLE_OK) {
		r = tm_error_set(TM_ERROR, "%s: libcurl rejected an option", s->url);
		goto fail;
	}
	if (curl_multi_add_handle(http->multi, e) != CURLM_OK) {
		r = tm_error_set(TM_ERROR, "%s: cannot start the request", s->url);
		goto fail;
	}
	s->added = 1;
	http->active = s;
	if ((r = pump(s, 0)) < 0)
		goto fail;
	if (s->status >= 300 && s->status < 400) {
		r = tm_error_set(TM_ESOURCE, "%s: HTTP %ld: redirect refused", s->url, s->status);
		goto fail;
	}
	if (s->status < 200) {
		r = tm_error_set(TM_ESOURCE, "%s: no HTTP response", s->url);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	tm_http_stream_free(s);
	return r;
}

long tm_http_stream_status(const struct tm_http_stream *s)
{
	return s->status;
}

const char *tm_http_stream_content_type(const struct tm_http_stream *s)
{
	return s->content_type;
}

const char *tm_http_stream_retry_after(const struct tm_http_stream *s)
{
	return s->retry_after;
}

uint64_t tm_http_stream_received(const struct tm_http_stream *s)
{
	return s->received;
}

int tm_http_stream_read(struct tm_http_stream *s, void *buf, size_t len, size_t *out_n)
{
	size_t avail;
	int r;

	*out_n = 0;
	if (len == 0)
		return 0;
	if ((r = pump(s, 1)) < 0)
		return r;
	avail = s->win_len - s->win_off;
	if (avail == 0)
		return 0; /* done */
	if (avail > len)
		avail = len;
	memcpy(buf, s->win + s->win_off, avail);
	s->win_off += avail;
	if (s->win_off == s->win_len)
		s->win_off = s->win_len = 0;
	*out_n = avail;
	return 0;
}

int tm_http_do(struct tm_http *http, const struct tm_http_request *req, long *out_status,
	       struct tm_buf *out_body)
{
	struct tm_http_stream *s = NULL;
	char chunk[16384];
	int r;

	*out_status = 0;
	if ((r = tm_http_stream_open(&s, http, req)) < 0)
		return r;
	for (;;) {
		size_t n;

		if ((r = tm_http_stream_read(s, chunk, sizeof(chunk), &n)) < 0)
			goto out;
		if (n == 0)
			break;
		if (out_body && (r = tm_buf_put(out_body, chunk, n)) < 0) {
			if (r == TM_ELIMIT)
				tm_error_set(TM_ELIMIT,
					     "%s: response larger than the limit of %zu bytes",
					     s->url, out_body->max ? out_body->max - 1 : 0);
			goto out;
		}
	}
	if (out_body && !out_body->ptr && (r = tm_buf_put(out_body, "", 0)) < 0)
		goto out;
	*out_status = s->status;
	r = 0;
out:
	tm_wipe(chunk, sizeof(chunk));
	tm_http_stream_free(s);
	return r;
}
