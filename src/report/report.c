/*
 * report.c — the last stage of the pipeline (report.h): after a pass that
 * did or said something, the status document is recorded
 * (state_dir/report.last, what `status --json` prints), spooled
 * (spool.c) and POSTed to [report] url in the configured format; alert_url
 * hears about transitions; between passes the daemon's tick sends
 * heartbeats and retries the spool with backoff and Retry-After.
 *
 * Transport is the one HTTP client (http.c) with the source's trust rules:
 * [report] ca_file only (else the system CAs), no redirects, connect, idle
 * and total timeouts; mTLS with client_cert/client_key, or a bearer token
 * from token_file, read again for every delivery (rotated tokens just work).
 */
#define _GNU_SOURCE
#include "tagmoor/report/report.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/source/http.h"
#include "tagmoor/doc/json.h"
#include "tagmoor/core/log.h"
#include "tagmoor/state/state.h"
#include "tagmoor/core/fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORD_SCHEMA "tagmoor.report/v1"
#define RECORD_MAX (TM_REPORT_DOC_MAX + 1024)
#define TOKEN_MAX 8192
#define RESPONSE_MAX (64u * 1024)
#define REPORT_TIMEOUT_CAP_MS 30000u
#define BACKOFF_FIRST_MS 5000
#define BACKOFF_CAP_MS (10 * 60 * 1000)
#define RETRY_AFTER_CAP_S 3600
#define FLUSH_WAIT_CAP_MS 60000
#define FLUSH_ATTEMPTS 4
#define CE_TYPE "dev.tagmoor.status"

/* In memory only (a failed attempt writes nothing): when the next delivery
 * may be tried, and how many attempts in a row failed. */
static struct {
	unsigned failures;
	int64_t next_ms; /* monotonic; 0 = now */
} backoff;

/* --- report.last ------------------------------------------------------------ */

static void record_path(char *out, size_t n, const char *state_dir)
{
	snprintf(out, n, "%s/report.last", state_dir);
}

void tm_report_record_free(struct tm_report_record *rec)
{
	free(rec->doc);
	memset(rec, 0, sizeof(*rec));
}

int tm_report_record_load(struct tm_report_record *rec, const char *state_dir)
{
	char path[4096], sig[TM_REPORT_SIG_LEN + 8], alert[32];
	unsigned long long seq, dropped;
	long long t;
	struct tm_buf b;
	char *nl;
	int r;

	memset(rec, 0, sizeof(*rec));
	rec->time = -1;
	record_path(path, sizeof(path), state_dir);
	tm_buf_init(&b, RECORD_MAX + 1);
	r = tm_file_read(&b, path, RECORD_MAX);
	if (r == TM_ENOTFOUND) {
		tm_error_clear();
		tm_buf_free(&b);
		return 0;
	}
	if (r < 0) {
		tm_buf_free(&b);
		return r;
	}
	if (!b.ptr || !(nl = strchr(b.ptr, '\n')) ||
	    sscanf(b.ptr, RECORD_SCHEMA " seq=%llu sig=%20s time=%lld dropped=%llu alert=%15s",
		   &seq, sig, &t, &dropped, alert) != 5 ||
	    strlen(sig) != TM_REPORT_SIG_LEN - 1) {
		tm_log_warn("%s: not a report record; ignored (the next report replaces it)", path);
		tm_buf_free(&b);
		return 0;
	}
	rec->seq = seq;
	memcpy(rec->sig, sig, TM_REPORT_SIG_LEN);
	rec->time = t;
	rec->dropped = dropped;
	if (strcmp(alert, "-") != 0 && strlen(alert) < sizeof(rec->alert_state))
		memcpy(rec->alert_state, alert, strlen(alert) + 1);
	if (nl[1] && !(rec->doc = strdup(nl + 1))) {
		tm_buf_free(&b);
		return tm_error_nomem();
	}
	if (rec->doc) {
		size_t n = strlen(rec->doc);
		while (n && rec->doc[n - 1] == '\n')
			rec->doc[--n] = '\0';
	}
	tm_buf_free(&b);
	return 0;
}

static int record_save(const struct tm_report_record *rec, const char *state_dir)
{
	char path[4096];
	struct tm_buf b;
	int r;

	record_path(path, sizeof(path), state_dir);
	tm_buf_init(&b, RECORD_MAX);
	r = tm_buf_printf(&b,
			  RECORD_SCHEMA " seq=%llu sig=%s time=%lld dropped=%llu alert=%s\n%s\n",
			  (unsigned long long)rec->seq, rec->sig[0] ? rec->sig : "0000000000000000",
			  (long long)rec->time, (unsigned long long)rec->dropped,
			  rec->alert_state[0] ? rec->alert_state : "-", rec->doc ? rec->doc : "");
	if (r == 0 && (r = tm_file_mkdirs(state_dir, 0700)) == 0)
		r = tm_file_write_atomic(path, b.ptr, b.len, 0600);
	tm_buf_free(&b);
	return r;
}

uint64_t tm_report_last_seq(const char *state_dir)
{
	struct tm_report_record rec;
	uint64_t *v = NULL, seq = 0;
	size_t n = 0;

	if (tm_report_record_load(&rec, state_dir) == 0)
		seq = rec.seq;
	tm_report_record_free(&rec);
	if (tm_spool_list(state_dir, &v, &n) == 0 && n && v[n - 1] > seq)
		seq = v[n - 1];
	free(v);
	tm_error_clear();
	return seq;
}

int tm_report_wanted(const struct tm_config *cfg, const char *sig)
{
	struct tm_report_record rec;
	int want;

	if (tm_report_record_load(&rec, cfg->agent.state_dir) < 0) {
		tm_error_clear();
		return 1;
	}
	want = strcmp(rec.sig, sig) != 0;
	tm_report_record_free(&rec);
	return want;
}

/* --- the document ---------------------------------------------------------------- */

int tm_report_restamp(struct tm_buf *out, const char *doc, uint64_t seq, int64_t time,
		      const char *trigger, uint64_t dropped)
{
	/* strings in the document have their quotes escaped: the first
	 * ,"seq": and ,"state": are the top-level keys */
	const char *a = strstr(doc, ",\"seq\":"), *z = strstr(doc, ",\"state\":");
	int r;

	if (!a || !z || z < a)
		return tm_error_set(TM_EPARSE, "not a status document (no seq or state)");
	r = tm_buf_put(out, doc, (size_t)(a - doc));
	r |= tm_buf_printf(out, ",\"seq\":%llu,\"time\":", (unsigned long long)seq);
	r |= tm_json_time(out, time);
	r |= tm_buf_puts(out, ",\"trigger\":");
	r |= tm_json_cstr(out, trigger, 0);
	r |= tm_buf_printf(out, ",\"spool_dropped\":%llu", (unsigned long long)dropped);
	r |= tm_buf_puts(out, z);
	return r ? tm_error_set(TM_ELIMIT, "status document too large") : 0;
}

/* seq and time of a document as written by tm_pass_status_json */
static uint64_t doc_seq(const char *doc)
{
	const char *p = strstr(doc, ",\"seq\":");
	return p ? strtoull(p + 7, NULL, 10) : 0;
}

static void doc_time(char *out, size_t n, const char *doc)
{
	const char *p = strstr(doc, ",\"time\":\""), *e;

	out[0] = '\0';
	if (p && (e = strchr(p + 9, '"')) && (size_t)(e - p - 9) < n)
		snprintf(out, n, "%.*s", (int)(e - p - 9), p + 9);
}

static void doc_state(char *out, size_t n, const char *doc)
{
	const char *p = strstr(doc, ",\"state\":\""), *e;

	out[0] = '\0';
	if (p && (e = strchr(p + 10, '"')) && (size_t)(e - p - 10) < n)
		snprintf(out, n, "%.*s", (int)(e - p - 10), p + 10);
}

/* the device id with everything but URI unreserved characters %-encoded */
static void pct(char *out, size_t n, const char *s)
{
	size_t k = 0;

	for (; s && *s && k + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			out[k++] = (char)c;
		else
			k += (size_t)snprintf(out + k, n - k, "%%%02X", c);
	}
	out[k] = '\0';
}

int tm_report_format(struct tm_buf *body, char *ctype, size_t ctype_len, char **hdrs, size_t nhdrs,
		     const struct tm_config *cfg, const char *doc)
{
	char dev[512], src[600], id[700], t[40];
	uint64_t seq = doc_seq(doc);
	int r = 0;

	hdrs[0] = NULL;
	pct(dev, sizeof(dev), cfg->agent.device_id);
	snprintf(src, sizeof(src), "urn:tagmoor:device:%s", dev);
	doc_time(t, sizeof(t), doc);
	/* unique per report; the same for every resend of it */
	snprintf(id, sizeof(id), "%s-%llu-%s", dev, (unsigned long long)seq, t);
	switch (cfg->report.format) {
	case TM_REPORT_CLOUDEVENTS:
		snprintf(ctype, ctype_len, "application/cloudevents+json; charset=utf-8");
		r |= tm_buf_puts(body, "{\"specversion\":\"1.0\",\"id\":");
		r |= tm_json_cstr(body, id, 0);
		r |= tm_buf_puts(body, ",\"source\":");
		r |= tm_json_cstr(body, src, 0);
		r |= tm_buf_puts(body, ",\"type\":\"" CE_TYPE "\",\"subject\":");
		r |= tm_json_cstr(body, dev, 0);
		if (t[0]) {
			r |= tm_buf_puts(body, ",\"time\":");
			r |= tm_json_cstr(body, t, 0);
		}
		r |= tm_buf_puts(body, ",\"datacontenttype\":\"application/json\",\"data\":");
		r |= tm_buf_puts(body, doc);
		r |= tm_buf_putc(body, '}');
		break;
	case TM_REPORT_CLOUDEVENTS_BINARY: {
		const char *name[] = { "ce-specversion", "ce-id",      "ce-source",
				       "ce-type",        "ce-subject", "ce-time" };
		const char *arg[] = { "1.0", id, src, CE_TYPE, dev, t };
		size_t k = 0;
		snprintf(ctype, ctype_len, "application/json");
		for (size_t i = 0; i < sizeof(name) / sizeof(name[0]) && k + 1 < nhdrs; i++) {
			char line[1024];
			if (!arg[i][0])
				continue;
			snprintf(line, sizeof(line), "%s: %s", name[i], arg[i]);
			if (!(hdrs[k] = strdup(line)))
				r = -1;
			else
				hdrs[++k] = NULL;
		}
		r |= tm_buf_puts(body, doc);
		break;
	}
	default:
		snprintf(ctype, ctype_len, "application/json");
		r |= tm_buf_puts(body, doc);
	}
	return r ? tm_error_set(TM_ELIMIT, "report %llu: too large to send",
				(unsigned long long)seq)
		 : 0;
}

int64_t tm_report_retry_after(const char *v, int64_t now)
{
	struct tm tmv;
	const char *end;
	int64_t s = 0;

	if (!v || !*v)
		return -1;
	if (*v >= '0' && *v <= '9') {
		for (; *v >= '0' && *v <= '9'; v++)
			if ((s = s * 10 + (*v - '0')) > RETRY_AFTER_CAP_S * 10)
				s = RETRY_AFTER_CAP_S * 10;
		while (*v == ' ')
			v++;
		if (*v)
			return -1;
	} else {
		memset(&tmv, 0, sizeof(tmv));
		if (!(end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tmv)) || *end)
			return -1;
		s = (int64_t)timegm(&tmv) - now;
		if (s < 0)
			s = 0;
	}
	return s > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : s;
}

/* --- transport ---------------------------------------------------------------- */

struct client {
	struct tm_http *http;
	struct tm_buf token;
	char url[512]; /* redacted, for messages */
};

static uint64_t timeout_ms(const struct tm_config *cfg)
{
	uint64_t t = cfg->source.timeout_ms;
	return t && t < REPORT_TIMEOUT_CAP_MS ? t : REPORT_TIMEOUT_CAP_MS;
}

static void client_free(struct client *c)
{
	tm_http_free(c->http);
	tm_buf_free_secret(&c->token);
	c->http = NULL;
}

static int client_new(struct client *c, const struct tm_config *cfg, const char *url)
{
	struct tm_http_opts o = { 0 };
	int r;

	memset(c, 0, sizeof(*c));
	tm_buf_init(&c->token, TOKEN_MAX + 1);
	tm_config_redact_url(c->url, sizeof(c->url), url);
	o.ca_file = cfg->report.ca_file;
	o.client_cert = cfg->report.client_cert;
	o.client_key = cfg->report.client_key;
	o.connect_timeout_ms = timeout_ms(cfg);
	o.idle_timeout_ms = timeout_ms(cfg);
	o.total_timeout_ms = timeout_ms(cfg);
	o.max_response = RESPONSE_MAX;
	if (cfg->report.token_file) {
		/* read again for every delivery: a rotated token is picked up */
		size_t n;
		if ((r = tm_file_read(&c->token, cfg->report.token_file, TOKEN_MAX)) < 0 ||
		    !c->token.ptr)
			return tm_error_wrap(r < 0 ? r : TM_ECONFIG, "[report] token_file");
		n = c->token.len;
		while (n && (c->token.ptr[n - 1] == '\n' || c->token.ptr[n - 1] == '\r' ||
			     c->token.ptr[n - 1] == ' ' || c->token.ptr[n - 1] == '\t'))
			c->token.ptr[--n] = '\0';
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)c->token.ptr[i] < 0x20 || c->token.ptr[i] == 0x7f)
				return tm_error_set(TM_ECONFIG,
						    "[report] token_file %s: one line expected",
						    cfg->report.token_file);
		if (n == 0)
			return tm_error_set(TM_ECONFIG, "[report] token_file %s is empty",
					    cfg->report.token_file);
		o.bearer_token = c->token.ptr;
	}
	if ((r = tm_http_new(&c->http, &o)) < 0)
		return tm_error_wrap(r, "[report]");
	return 0;
}

/* One POST. 0 with *status (and the Retry-After in seconds, -1 none), or
 * a negative code for a transport failure (network, TLS, timeout, redirect). */
static int post(struct client *c, const char *url, const char *ctype, char *const *hdrs,
		const struct tm_buf *body, long *status, int64_t *retry_after, char *excerpt,
		size_t excerpt_len)
{
	struct tm_http_request req = { 0 };
	struct tm_http_stream *s = NULL;
	char chunk[4096];
	size_t got = 0, n;
	int r;

	*status = 0;
	*retry_after = -1;
	excerpt[0] = '\0';
	req.method = "POST";
	req.url = url;
	req.content_type = ctype;
	req.body = body->ptr;
	req.body_len = body->len;
	req.headers = (const char *const *)hdrs;
	if ((r = tm_http_stream_open(&s, c->http, &req)) < 0)
		return r;
	*status = tm_http_stream_status(s);
	*retry_after = tm_report_retry_after(tm_http_stream_retry_after(s), (int64_t)time(NULL));
	/* the body: a short excerpt for the log, the rest read and dropped so
	 * that the connection can be reused; a failure here changes nothing */
	while (tm_http_stream_read(s, chunk, sizeof(chunk), &n) == 0 && n) {
		for (size_t i = 0; i < n && got + 1 < excerpt_len && got < 200; i++)
			excerpt[got++] = (chunk[i] >= 0x20 && chunk[i] < 0x7f) ? chunk[i] : ' ';
	}
	excerpt[got] = '\0';
	tm_error_clear();
	tm_http_stream_free(s);
	return 0;
}

static void backoff_fail(int64_t retry_after_s)
{
	int64_t wait;

	backoff.failures++;
	if (retry_after_s >= 0) {
		wait = retry_after_s * 1000;
	} else {
		wait = BACKOFF_FIRST_MS;
		for (unsigned i = 1; i < backoff.failures && wait < BACKOFF_CAP_MS; i++)
			wait *= 2;
		if (wait > BACKOFF_CAP_MS)
			wait = BACKOFF_CAP_MS;
	}
	backoff.next_ms = tm_time_mono_ms() + wait;
}

enum {
	SENT = 0,
	DROPPED = 1,
	RETRY = 2
};

/* One report: SENT, DROPPED (4xx), RETRY (with *ra the Retry-After seconds, or -1). */
static int send_one(struct client *c, const struct tm_config *cfg, uint64_t seq, int64_t *ra)
{
	struct tm_buf doc, body;
	char ctype[64], excerpt[256];
	char *hdrs[8] = { NULL };
	long status = 0;
	int r, out;

	*ra = -1;
	tm_buf_init(&doc, TM_REPORT_DOC_MAX + 1);
	tm_buf_init(&body, TM_REPORT_DOC_MAX + 4096);
	r = tm_spool_read(&doc, cfg->agent.state_dir, seq);
	if (r == TM_ENOTFOUND) { /* removed meanwhile */
		tm_error_clear();
		out = SENT;
		goto done;
	}
	if (r < 0 || !doc.ptr) {
		/* unreadable: it would block the spool forever */
		tm_log_error("report %llu: %s; dropped", (unsigned long long)seq, tm_error_last());
		tm_error_clear();
		out = DROPPED;
		goto done;
	}
	if (tm_report_format(&body, ctype, sizeof(ctype), hdrs, 8, cfg, doc.ptr) < 0) {
		tm_log_error("%s; dropped", tm_error_last());
		tm_error_clear();
		out = DROPPED;
		goto done;
	}
	TM_FAULT("report.before-send");
	r = post(c, cfg->report.url, ctype, hdrs, &body, &status, ra, excerpt, sizeof(excerpt));
	TM_FAULT("report.sent");
	if (r < 0) {
		tm_log_warn("report %llu: %s; kept in the spool", (unsigned long long)seq,
			    tm_error_last());
		tm_error_clear();
		out = RETRY;
	} else if (status >= 200 && status < 300) {
		tm_log_debug("report %llu delivered to %s (HTTP %ld)", (unsigned long long)seq,
			     c->url, status);
		out = SENT;
	} else if (status >= 400 && status < 500 && status != 408 && status != 429) {
		tm_log_error("report %llu to %s refused with HTTP %ld%s%s; dropped (a report the "
			     "receiver "
			     "refuses must not block the spool)",
			     (unsigned long long)seq, c->url, status, excerpt[0] ? ": " : "",
			     excerpt);
		out = DROPPED;
	} else {
		tm_log_warn("report %llu to %s: HTTP %ld%s; kept in the spool, retried%s",
			    (unsigned long long)seq, c->url, status, excerpt[0] ? "" : "",
			    *ra >= 0 ? " after the Retry-After" : " with backoff");
		out = RETRY;
	}
done:
	for (size_t i = 0; i < 8 && hdrs[i]; i++)
		free(hdrs[i]);
	tm_buf_free(&doc);
	tm_buf_free(&body);
	return out;
}

/* Delivers in order. wait: flush (waits out backoff, retries). budget_ms:
 * stop starting new requests after that long (0: none). */
static int deliver(const struct tm_config *cfg, size_t *pending, int wait, int64_t budget_ms)
{
	struct client c;
	uint64_t *v = NULL;
	size_t n = 0, i = 0;
	int64_t start = tm_time_mono_ms();
	int r, attempts = 0;

	*pending = 0;
	if (!cfg->report.url)
		return 0;
	if ((r = tm_spool_list(cfg->agent.state_dir, &v, &n)) < 0)
		return r;
	if (n == 0) {
		/* nothing waits (delivered by another process, or dropped): no
		 * backoff either, or the daemon would be woken for nothing */
		backoff.failures = 0;
		backoff.next_ms = 0;
		free(v);
		return 0;
	}
	if ((r = client_new(&c, cfg, cfg->report.url)) < 0) {
		client_free(&c);
		free(v);
		*pending = n;
		return r;
	}
	while (i < n) {
		int64_t ra;
		int o;
		if (budget_ms && tm_time_mono_ms() - start > budget_ms)
			break;
		o = send_one(&c, cfg, v[i], &ra);
		if (o == RETRY) {
			backoff_fail(ra);
			if (!wait || ++attempts >= FLUSH_ATTEMPTS)
				break;
			int64_t d = backoff.next_ms - tm_time_mono_ms();
			if (d > FLUSH_WAIT_CAP_MS)
				d = FLUSH_WAIT_CAP_MS;
			if (d > 0) {
				struct timespec ts = { d / 1000, (d % 1000) * 1000000 };
				tm_log_info("report %llu: next attempt in %lld ms",
					    (unsigned long long)v[i], (long long)d);
				while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
					;
			}
			continue;
		}
		attempts = 0;
		backoff.failures = 0;
		backoff.next_ms = 0;
		TM_FAULT("report.before-spool-remove");
		if ((r = tm_spool_remove(cfg->agent.state_dir, v[i])) < 0) {
			tm_log_warn("%s", tm_error_last());
			tm_error_clear();
			break;
		}
		i++;
		TM_FAULT("report.spool-removed");
	}
	client_free(&c);
	*pending = n - i;
	free(v);
	if (*pending)
		return tm_error_set(TM_ESOURCE, "%zu report(s) still in %s/spool", *pending,
				    cfg->agent.state_dir);
	return 0;
}

/* --- alerts ------------------------------------------------------------------- */

static int bad_state(const char *s)
{
	return strcmp(s, "failed") == 0 || strcmp(s, "rolled_back") == 0 ||
	       strcmp(s, "refused") == 0 || strcmp(s, "stale") == 0;
}

/* The state alerts are about: drifted (repaired) counts as synced. */
static const char *alert_class(const char *state)
{
	if (strcmp(state, "drifted") == 0)
		return "synced";
	if (strcmp(state, "synced") == 0 || bad_state(state))
		return state;
	return NULL; /* progressing: no transition */
}

static void send_alert(const struct tm_config *cfg, const struct tm_report_event *ev,
		       const char *state, const char *previous)
{
	struct client c;
	struct tm_buf body;
	char excerpt[256];
	long status = 0;
	int64_t ra;
	int r;

	tm_buf_init(&body, 16384);
	r = tm_buf_puts(&body, "{\"schema\":\"tagmoor.alert/v1\",\"device_id\":");
	r |= tm_json_cstr(&body, cfg->agent.device_id, 0);
	r |= tm_buf_puts(&body, ",\"state\":");
	r |= tm_json_cstr(&body, state, 0);
	r |= tm_buf_puts(&body, ",\"previous\":");
	r |= tm_json_cstr(&body, previous, 1);
	r |= tm_buf_printf(&body, ",\"seq\":%llu,\"time\":", (unsigned long long)ev->seq);
	r |= tm_json_time(&body, ev->time);
	r |= tm_buf_puts(&body, ",\"commit\":");
	r |= tm_json_cstr(&body, ev->commit, 1);
	r |= tm_buf_puts(&body, ",\"message\":");
	r |= tm_json_cstr(&body, ev->message, 1);
	r |= tm_buf_puts(&body, "}");
	if (r) {
		tm_buf_free(&body);
		return;
	}
	if (client_new(&c, cfg, cfg->report.alert_url) == 0 &&
	    post(&c, cfg->report.alert_url, "application/json", NULL, &body, &status, &ra, excerpt,
		 sizeof(excerpt)) == 0 &&
	    status >= 200 && status < 300)
		tm_log_info("alert sent to %s: %s%s%s", c.url, previous[0] ? previous : "",
			    previous[0] ? " -> " : "", state);
	else
		tm_log_warn("alert (%s) to %s not delivered: %s", state, c.url,
			    tm_error_last()[0] ? tm_error_last()
			    : status           ? "HTTP error"
					       : "failed");
	tm_error_clear();
	client_free(&c);
	tm_buf_free(&body);
}

/* --- the entry points ----------------------------------------------------------- */

static void spool_metrics(const struct tm_config *cfg, struct tm_metrics *m, size_t pending,
			  uint64_t dropped)
{
	struct tm_metrics own;

	if (!cfg->report.metrics_file)
		return;
	if (!m) {
		tm_metrics_load(&own, cfg->report.metrics_file);
		m = &own;
	}
	m->spool_depth = pending;
	m->dropped_total += dropped;
	tm_metrics_write(cfg, m);
}

static int submit(const struct tm_config *cfg, const struct tm_report_event *ev,
		  const char *trigger, struct tm_metrics *m)
{
	struct tm_report_record rec;
	struct tm_buf doc;
	const char *dir = cfg->agent.state_dir, *cls;
	char alert_from[16] = "", alert_to[16] = "";
	uint64_t dropped = 0;
	size_t pending = 0;
	int r;

	if ((r = tm_report_record_load(&rec, dir)) < 0)
		return r;
	tm_buf_init(&doc, TM_REPORT_DOC_MAX);
	if ((r = tm_report_restamp(&doc, ev->doc, ev->seq, ev->time, trigger, rec.dropped)) < 0)
		goto out;
	if (cfg->report.url) {
		uint64_t max = cfg->report.spool_max ? cfg->report.spool_max : 1;
		tm_spool_clean(dir);
		if ((r = tm_spool_put(dir, ev->seq, doc.ptr, max, &dropped)) < 0)
			goto out;
	}
	TM_FAULT("report.spooled");
	/* alerts: only on a transition into a bad state or back to synced */
	if (ev->state && (cls = alert_class(ev->state))) {
		if (strcmp(cls, rec.alert_state) != 0 &&
		    (bad_state(cls) || bad_state(rec.alert_state))) {
			snprintf(alert_from, sizeof(alert_from), "%s", rec.alert_state);
			snprintf(alert_to, sizeof(alert_to), "%s", cls);
		}
		snprintf(rec.alert_state, sizeof(rec.alert_state), "%s", cls);
	}
	rec.seq = ev->seq;
	if (ev->sig)
		snprintf(rec.sig, sizeof(rec.sig), "%s", ev->sig);
	rec.time = ev->time;
	rec.dropped = dropped;
	free(rec.doc);
	rec.doc = doc.ptr;
	r = record_save(&rec, dir);
	rec.doc = NULL;
	if (r < 0)
		goto out;
	TM_FAULT("report.recorded");
	tm_log_debug("report %llu recorded (%s)", (unsigned long long)ev->seq,
		     ev->state ? ev->state : "-");
	if (alert_to[0] && cfg->report.alert_url)
		send_alert(cfg, ev, alert_to, alert_from);
	TM_FAULT("report.before-deliver");
	if (cfg->report.url && tm_time_mono_ms() >= backoff.next_ms)
		deliver(cfg, &pending, 0, (int64_t)timeout_ms(cfg));
	tm_error_clear();
	if (cfg->report.url) {
		uint64_t *v = NULL;
		size_t n = 0;
		if (tm_spool_list(dir, &v, &n) == 0)
			pending = n;
		free(v);
		tm_error_clear();
	}
	spool_metrics(cfg, m, pending, dropped);
out:
	tm_buf_free(&doc);
	tm_report_record_free(&rec);
	return r;
}

int tm_report_submit(const struct tm_config *cfg, const struct tm_report_event *ev,
		     struct tm_metrics *m)
{
	return submit(cfg, ev, "pass", m);
}

int64_t tm_report_next_ms(const struct tm_config *cfg)
{
	int64_t d;

	if (!cfg->report.url || !backoff.failures)
		return -1;
	d = backoff.next_ms - tm_time_mono_ms();
	return d > 0 ? d : 0;
}

int tm_report_tick(const struct tm_config *cfg, int64_t now)
{
	struct tm_report_record rec;
	size_t pending = 0;
	int fd = -1, r;

	if (!cfg->report.url)
		return 0;
	if ((r = tm_state_lock(&fd, cfg->agent.state_dir)) < 0) {
		tm_error_clear();
		if (backoff.failures && backoff.next_ms <= tm_time_mono_ms())
			backoff.next_ms = tm_time_mono_ms() +
					  1000; /* a manual command: try again in a second */
		return r == TM_ELOCKED ? 0 : r;
	}
	if ((r = tm_report_record_load(&rec, cfg->agent.state_dir)) < 0)
		goto out;
	if (cfg->report.heartbeat_ms && rec.doc && rec.time >= 0 &&
	    (now - rec.time) * 1000 >= (int64_t)cfg->report.heartbeat_ms) {
		struct tm_state st;
		char state[16];
		uint64_t seq = tm_report_last_seq(cfg->agent.state_dir);
		if (tm_state_load(&st, cfg->agent.state_dir, 1) == 0) {
			if (st.seq > seq)
				seq = st.seq;
			tm_state_free(&st);
		}
		tm_error_clear();
		doc_state(state, sizeof(state), rec.doc);
		struct tm_report_event ev = { .doc = rec.doc,
					      .seq = seq + 1,
					      .sig = rec.sig,
					      .state = NULL,
					      .message = "",
					      .commit = "",
					      .time = now };
		tm_log_info("heartbeat: report %llu (%s)", (unsigned long long)ev.seq, state);
		r = submit(cfg, &ev, "heartbeat", NULL);
		goto out;
	}
	if (tm_time_mono_ms() >= backoff.next_ms) {
		uint64_t *v = NULL;
		size_t before = 0;
		if (tm_spool_list(cfg->agent.state_dir, &v, &before) == 0) {
			deliver(cfg, &pending, 0, (int64_t)timeout_ms(cfg));
			if (pending != before)
				spool_metrics(cfg, NULL, pending, 0);
		}
		free(v);
		tm_error_clear();
	}
	r = 0;
out:
	tm_report_record_free(&rec);
	tm_state_unlock(fd);
	if (r < 0)
		tm_log_warn("%s", tm_error_last());
	return r;
}

int tm_report_flush(const struct tm_config *cfg)
{
	size_t pending = 0;
	int r;

	if (!cfg->report.url)
		return tm_error_set(TM_EUSAGE, "%s: [report] url is not set; nothing to flush",
				    cfg->file);
	backoff.next_ms = 0;
	r = deliver(cfg, &pending, 1, 0);
	spool_metrics(cfg, NULL, pending, 0);
	return r;
}
