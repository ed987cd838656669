/*
 * client.c — the small Kubernetes API client (kube.h): one HTTP client per
 * pass (connections reused, credentials from the kubeconfig), one call with
 * its retries, the message of a failed call (a metav1.Status when the server
 * sent one), answers read as JSON only as far as they are needed, discovery
 * loaded and refreshed, (apiVersion, kind) resolved, and resource paths.
 *
 * Where it sits in the pipeline: every request of the Kubernetes applier
 * (kube.c, lease.c, ownership.c, prune.c, drift.c) goes through it. Every
 * API failure becomes one TM_EAPPLY message.
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/source/http.h"
#include "tagmoor/apply/kubernetes/kubeconfig.h"
#include "tagmoor/core/log.h"
#include "tagmoor/doc/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 30000u
#define AGG_ACCEPT                                                                   \
	"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"      \
	"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList," \
	"application/json"

void kube_sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0)
		;
}

int kube_parse_json(struct tm_doc **out, const char *body, size_t len, const char *what)
{
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;
	int r;

	lim.max_bytes = MAX_RESPONSE;
	lim.max_nodes = 4u << 20;
	if ((r = tm_json_parse(out, body, len, &lim)) < 0)
		return tm_error_wrap(TM_EAPPLY, "%s: the answer is not JSON", what);
	return 0;
}

/* An answer about one object, built only in part (yaml.h: tm_json_parse_pruned):
 * managedFields are never read, and callers that need less say so. */
const char *const kube_no_managed[] = { "metadata.managedFields", NULL };

const char *const kube_no_managed_spec[] = { "metadata.managedFields", "spec", NULL };

const char *const kube_only_metadata[] = { "metadata", NULL };

int kube_parse_object(struct tm_doc **out, const char *body, size_t len, const char *what,
		      const char *const *keep, const char *const *skip)
{
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;
	int r;

	lim.max_bytes = MAX_RESPONSE;
	lim.max_nodes = 4u << 20;
	if ((r = tm_json_parse_pruned(out, body, len, &lim, keep, skip)) < 0)
		return tm_error_wrap(TM_EAPPLY, "%s: the answer is not JSON", what);
	return 0;
}

void tm_kube_status_message(char *out, size_t outlen, long http_status, const char *body,
			    size_t len)
{
	struct tm_doc *doc = NULL;
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;
	char msg[512], reason[64], extra[512];
	size_t el = 0;

	if (!outlen)
		return;
	extra[0] = '\0';
	if (body && len && tm_json_parse(&doc, body, len, &lim) == 0 && doc->type == TM_DOC_MAP &&
	    tm_doc_string(tm_doc_map_get(doc, "kind")) &&
	    strcmp(tm_doc_string(tm_doc_map_get(doc, "kind")), "Status") == 0) {
		const struct tm_doc *causes =
			tm_doc_get_path(doc, "details", "causes", (const char *)NULL);
		const char *m = tm_doc_string(tm_doc_map_get(doc, "message"));
		const char *rs = tm_doc_string(tm_doc_map_get(doc, "reason"));
		const struct tm_doc *code = tm_doc_map_get(doc, "code");

		kube_clean(msg, sizeof(msg), m ? m : "", 400);
		kube_clean(reason, sizeof(reason), rs ? rs : "", 60);
		if (code && code->type == TM_DOC_INT && code->u.i >= 100 && code->u.i < 600)
			http_status = (long)code->u.i;
		/* Causes the message does not already say (the server usually
		 * folds them into it; conflicts list each field). */
		for (size_t i = 0; causes && causes->type == TM_DOC_SEQ && i < causes->u.seq.n;
		     i++) {
			const char *cf = tm_doc_string(tm_doc_map_get(causes->u.seq.v[i], "field"));
			const char *cm =
				tm_doc_string(tm_doc_map_get(causes->u.seq.v[i], "message"));
			char f[128], cmsg[200];
			int n;

			kube_clean(f, sizeof(f), cf ? cf : "", 100);
			kube_clean(cmsg, sizeof(cmsg), cm ? cm : "", 160);
			if (!*cmsg || (strstr(msg, cmsg) && (!*f || strstr(msg, f))))
				continue;
			n = snprintf(extra + el, sizeof(extra) - el, "%s%s%s%s", el ? "; " : "", f,
				     *f ? ": " : "", cmsg);
			if (n < 0 || (size_t)n >= sizeof(extra) - el)
				break;
			el += (size_t)n;
		}
	} else {
		char head[160];
		size_t n = len < 150 ? len : 150;
		char tmp[151];

		memcpy(tmp, body ? body : "", body ? n : 0);
		tmp[body ? n : 0] = '\0';
		kube_clean(head, sizeof(head), tmp, 150);
		snprintf(msg, sizeof(msg), "%s", *head ? head : "(no body)");
		reason[0] = '\0';
	}
	tm_doc_free(doc);
	if (!reason[0]) {
		const char *std = http_status == 400   ? "BadRequest"
				  : http_status == 401 ? "Unauthorized"
				  : http_status == 403 ? "Forbidden"
				  : http_status == 404 ? "NotFound"
				  : http_status == 409 ? "Conflict"
				  : http_status == 422 ? "Invalid"
				  : http_status == 429 ? "TooManyRequests"
				  : http_status >= 500 ? "ServerError"
						       : "";
		snprintf(reason, sizeof(reason), "%s", std);
	}
	snprintf(out, outlen, "%ld%s%s: %s%s%s%s%s", http_status, *reason ? " " : "", reason, msg,
		 el ? " (" : "", extra, el ? ")" : "",
		 http_status == 401 ? " — check the kubeconfig's credentials" : "");
}

struct tm_kube {
	struct tm_http *http;
	char *server;
	struct tm_kube_discovery *disc;
	int aggregated;
	int legacy_only;
	uint64_t discovered_ms;
	unsigned long requests;
	int unreachable; /* a request failed because the server could not be reached */
};

void tm_kube_free(struct tm_kube *k)
{
	if (!k)
		return;
	tm_http_free(k->http);
	free(k->server);
	tm_kube_discovery_free(k->disc);
	free(k);
}

int tm_kube_new(struct tm_kube **out, const struct tm_kubeconfig *kc,
		const struct tm_kube_opts *opts)
{
	struct tm_kube *k;
	struct tm_http_opts ho = { 0 };
	char *token = NULL;
	const char *headers[] = { NULL };
	int r;

	*out = NULL;
	if (!(k = calloc(1, sizeof(*k))))
		return tm_error_nomem();
	k->legacy_only = opts && opts->legacy_discovery;
	if (!(k->server = strdup(kc->server))) {
		r = tm_error_nomem();
		goto fail;
	}
	if ((r = tm_kube_discovery_new(&k->disc)) < 0)
		goto fail;
	if ((r = tm_kubeconfig_token(&token, kc)) < 0)
		goto fail;
	ho.ca_file = kc->ca_file;
	ho.ca_pem = kc->ca_pem;
	ho.ca_pem_len = kc->ca_pem_len;
	ho.client_cert = kc->cert_file;
	ho.client_key = kc->key_file;
	ho.client_cert_pem = kc->cert_pem;
	ho.client_cert_pem_len = kc->cert_pem_len;
	ho.client_key_pem = kc->key_pem;
	ho.client_key_pem_len = kc->key_pem_len;
	ho.bearer_token = token;
	ho.username = token ? NULL : kc->username;
	ho.password = token ? NULL : kc->password;
	ho.connect_timeout_ms = 10000;
	ho.idle_timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	ho.max_response = MAX_RESPONSE;
	ho.headers = headers;
	r = tm_http_new(&k->http, &ho);
	if (token) {
		volatile char *v = token;
		for (size_t i = 0; v[i]; i++)
			v[i] = 0;
		free(token);
	}
	if (r < 0) {
		r = tm_error_wrap(r == TM_ENOMEM ? r : TM_EAPPLY, "kubernetes: %s", kc->origin);
		goto fail;
	}
	*out = k;
	return 0;
fail:
	tm_kube_free(k);
	return r;
}

static int is_retryable(long st)
{
	return st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/* Retry-After in seconds (the HTTP-date form falls back to the backoff), as
 * milliseconds, at most 30 s; 0 when absent. */
static unsigned retry_after_ms(const char *v)
{
	char *end;
	long s;

	if (!v || *v < '0' || *v > '9')
		return 0;
	s = strtol(v, &end, 10);
	return s < 0 ? 0 : s > 30 ? 30000u : (unsigned)s * 1000u;
}

int kube_call_ct(struct tm_kube *k, const char *method, const char *path, const char *ctype,
		 const char *accept, const void *body, size_t len, long *out_status,
		 struct tm_buf *out, char *ctype_out, size_t ctype_len)
{
	return kube_call_keep(k, method, path, ctype, accept, body, len, out_status, out, ctype_out,
			      ctype_len, KUBE_KEEP_ALL);
}

int kube_call_keep(struct tm_kube *k, const char *method, const char *path, const char *ctype,
		   const char *accept, const void *body, size_t len, long *out_status,
		   struct tm_buf *out, char *ctype_out, size_t ctype_len, unsigned keep)
{
	char url[PATH_MAX_K + 512];
	int n, r = 0;

	*out_status = 0;
	n = snprintf(url, sizeof(url), "%s%s", k->server, path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return tm_error_set(TM_EAPPLY, "kubernetes: request path too long");
	for (int attempt = 0; attempt < 4; attempt++) {
		struct tm_http_request rq = { 0 };
		struct tm_http_stream *s = NULL;
		char chunk[16384];
		unsigned ra_ms = 0;

		rq.method = method;
		rq.url = url;
		rq.content_type = ctype;
		rq.accept = accept ? accept : "application/json";
		rq.body = body;
		rq.body_len = len;
		tm_buf_reset(out);
		k->requests++;
		r = tm_http_stream_open(&s, k->http, &rq);
		if (r == 0) {
			*out_status = tm_http_stream_status(s);
			ra_ms = retry_after_ms(tm_http_stream_retry_after(s));
			if (ctype_out)
				snprintf(ctype_out, ctype_len, "%s",
					 tm_http_stream_content_type(s));
			/* an answer the caller does not read is drained, not kept (a
			 * CRD's is megabytes), up to the same limit */
			int drop = (*out_status == 200 && !(keep & KUBE_KEEP_200)) ||
				   (*out_status == 201 && !(keep & KUBE_KEEP_201));
			size_t dropped = 0;
			for (;;) {
				size_t got;
				if ((r = tm_http_stream_read(s, chunk, sizeof(chunk), &got)) < 0 ||
				    got == 0)
					break;
				if (drop) {
					dropped += got;
					if (dropped > out->max - 1)
						r = tm_error_set(TM_ELIMIT, "limit");
				} else {
					r = tm_buf_put(out, chunk, got);
				}
				if (r < 0) {
					if (r == TM_ELIMIT)
						tm_error_set(
							TM_EAPPLY,
							"kubernetes: %s %s: answer larger than %zu "
							"bytes",
							method, path, out->max ? out->max - 1 : 0);
					r = TM_EAPPLY;
					break;
				}
			}
			tm_http_stream_free(s);
			if (r == 0 && !out->ptr)
				r = tm_buf_put(out, "", 0);
		}
		if (r == TM_ENOMEM)
			return r;
		if (r == TM_ESOURCE && attempt == 0) {
			/* a kept-alive connection the server closed, a blip: once more */
			tm_log_debug("kubernetes: %s %s: %s; retrying", method, path,
				     tm_error_last());
			kube_sleep_ms(200);
			continue;
		}
		if (r == TM_ESOURCE)
			k->unreachable = 1;
		if (r < 0)
			return r == TM_EAPPLY ? r : tm_error_wrap(TM_EAPPLY, "kubernetes");
		if (!is_retryable(*out_status) || attempt == 3) {
			/* the server's trouble, not the revision's: still failing after
			 * the retries, credentials refused, a conflict with a concurrent
			 * writer (force=true leaves no field conflict): retried, not
			 * marked bad (docs/faults.md) */
			if (is_retryable(*out_status) || *out_status == 401 || *out_status == 409)
				k->unreachable = 1;
			return 0;
		}
		tm_log_debug("kubernetes: %s %s: HTTP %ld; retrying%s", method, path, *out_status,
			     ra_ms ? " after its Retry-After" : "");
		kube_sleep_ms(ra_ms > (250u << attempt) ? ra_ms : 250u << attempt);
	}
	return 0;
}

int tm_kube_call(struct tm_kube *k, const char *method, const char *path, const char *content_type,
		 const void *body, size_t len, long *out_status, struct tm_buf *out)
{
	return kube_call_ct(k, method, path, content_type, NULL, body, len, out_status, out, NULL,
			    0);
}

int tm_kube_unreachable(const struct tm_kube *k)
{
	return k->unreachable;
}

const struct tm_kube_discovery *tm_kube_discovery(const struct tm_kube *k)
{
	return k->disc;
}

int tm_kube_discovery_aggregated(const struct tm_kube *k)
{
	return k->aggregated;
}

int kube_api_failed(long st, const struct tm_buf *b, const char *what)
{
	char m[MSG_MAX];

	tm_kube_status_message(m, sizeof(m), st, b->ptr, b->len);
	return tm_error_set(TM_EAPPLY, "kubernetes: %s: %s", what, m);
}

static int load_gv(struct tm_kube *k, const char *group, const char *version)
{
	char path[600];
	struct tm_buf b;
	long st;
	int r;

	if (*group)
		snprintf(path, sizeof(path), "/apis/%s/%s", group, version);
	else
		snprintf(path, sizeof(path), "/api/%s", version);
	tm_buf_init(&b, MAX_RESPONSE + 1);
	r = tm_kube_call(k, "GET", path, NULL, NULL, 0, &st, &b);
	if (r == 0 && st == 200) {
		r = tm_kube_discovery_add_resource_list(k->disc, b.ptr, b.len);
	} else if (r == 0) {
		/* a failing group (an aggregated API server that is down) is
		 * tolerated until something needs it */
		char m[MSG_MAX];
		tm_kube_status_message(m, sizeof(m), st, b.ptr, b.len);
		tm_log_warn("kubernetes: discovery of %s: %s", path, m);
		r = tm_kube_discovery_mark_failed(k->disc, group, version);
	}
	tm_buf_free(&b);
	return r;
}

int tm_kube_discover(struct tm_kube *k)
{
	struct tm_buf b;
	char ctype[256];
	long st;
	int r, agg_core = 0, agg = 0;

	tm_kube_discovery_clear(k->disc);
	tm_buf_init(&b, MAX_RESPONSE + 1);
	for (int core = 1; core >= 0; core--) {
		const char *path = core ? "/api" : "/apis";
		int a = 0;

		r = kube_call_ct(k, "GET", path, NULL,
				 k->legacy_only ? "application/json" : AGG_ACCEPT, NULL, 0, &st, &b,
				 ctype, sizeof(ctype));
		if (r < 0)
			goto out;
		if (st != 200) {
			r = kube_api_failed(st, &b,
					    core ? "discovery GET /api" : "discovery GET /apis");
			goto out;
		}
		if ((r = tm_kube_discovery_add_root(k->disc, ctype, b.ptr, b.len, core, &a)) < 0)
			goto out;
		if (core)
			agg_core = a;
		else
			agg = a;
	}
	/* Legacy: the core group is needed by nearly every repository; other
	 * group versions are loaded when an object first needs them. */
	if (!agg_core) {
		for (size_t i = 0; i < k->disc->ngv; i++)
			if (!*k->disc->gv[i].group && k->disc->gv[i].state == 1 &&
			    (r = load_gv(k, "", k->disc->gv[i].version)) < 0)
				goto out;
	}
	k->aggregated = agg && agg_core;
	k->discovered_ms = tm_time_mono_ms();
	tm_log_debug("kubernetes: discovery (%s): %zu resources in %zu group versions",
		     k->aggregated ? "aggregated" : "legacy", k->disc->nr, k->disc->ngv);
	r = 0;
out:
	tm_buf_free(&b);
	return r;
}

int tm_kube_resolve(struct tm_kube *k, const char *api_version, const char *kind,
		    struct tm_kube_resource *out)
{
	char group[TM_KUBE_GROUP_MAX + 1], version[64];
	int r, st;

	if (kube_split_api_version(api_version, group, sizeof(group), version, sizeof(version)) < 0)
		return tm_error_set(TM_EAPPLY, "malformed apiVersion \"%.128s\"", api_version);
	for (int round = 0; round < 2; round++) {
		if (tm_kube_discovery_find(k->disc, group, version, kind, out) == 0)
			return 0;
		st = tm_kube_discovery_gv_state(k->disc, group, version);
		if (st == 1) {
			if ((r = load_gv(k, group, version)) < 0)
				return r;
			if (tm_kube_discovery_find(k->disc, group, version, kind, out) == 0)
				return 0;
		}
		/* missing: a CRD may have appeared since; refresh once (not
		 * more than twice a second however many kinds are missing) */
		if (round == 0 && (uint64_t)tm_time_mono_ms() - k->discovered_ms > 500) {
			tm_log_debug("kubernetes: %s %s not in discovery; refreshing", api_version,
				     kind);
			if ((r = tm_kube_discover(k)) < 0)
				return r;
			continue;
		}
		break;
	}
	st = tm_kube_discovery_gv_state(k->disc, group, version);
	if (st == -1)
		return tm_error_set(TM_ENOTFOUND,
				    "the API group version %.256s does not answer discovery",
				    api_version);
	if (st == 0)
		return tm_error_set(TM_ENOTFOUND, "the server does not serve %.256s", api_version);
	return tm_error_set(TM_ENOTFOUND, "the server has no kind %.128s in %.256s", kind,
			    api_version);
}

/* Percent-encodes a path segment (names are validated, this is belt and braces). */
int kube_put_segment(struct tm_buf *b, const char *s)
{
	static const char hx[] = "0123456789ABCDEF";
	int r = 0;

	for (; *s && r == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || c == ':')
			r = tm_buf_putc(b, (char)c);
		else
			r = tm_buf_printf(b, "%%%c%c", hx[c >> 4], hx[c & 15]);
	}
	return r;
}

int tm_kube_path(char *out, size_t outlen, const struct tm_kube_resource *res, const char *ns,
		 const char *name)
{
	struct tm_buf b;
	int r = 0;

	tm_buf_init(&b, outlen);
	if (*res->group)
		r |= tm_buf_printf(&b, "/apis/%s/%s", res->group, res->version);
	else
		r |= tm_buf_printf(&b, "/api/%s", res->version);
	if (res->namespaced && ns && *ns) {
		r |= tm_buf_puts(&b, "/namespaces/");
		r |= kube_put_segment(&b, ns);
	}
	r |= tm_buf_putc(&b, '/');
	r |= kube_put_segment(&b, res->resource);
	if (name) {
		r |= tm_buf_putc(&b, '/');
		r |= kube_put_segment(&b, name);
	}
	if (r || !b.ptr || b.len >= outlen) {
		tm_buf_free(&b);
		return tm_error_set(TM_EAPPLY, "kubernetes: request path too long");
	}
	memcpy(out, b.ptr, b.len + 1);
	tm_buf_free(&b);
	return 0;
}
