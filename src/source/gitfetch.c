/*
 * gitfetch.c — the network side of the libgit2 adapter (see git.c's opening comment for why):
 * our own smart-HTTP subtransport plugged into git_transport_smart, so that every byte goes
 * through tm_http (ca_file, credentials, timeouts, max_fetch, no redirects) and through the
 * pack scan (packscan.c) before libgit2 indexes it; tm_git_ls_remote (the advertisement, kept
 * for the fetch that follows) and tm_git_fetch (one forced refspec, judged by the advertised
 * object id).
 */
#define _GNU_SOURCE
#include "tagmoor/source/git.h"
#include "git_internal.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/source/http.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/transport.h>
#if LIBGIT2_VER_MAJOR > 1 || (LIBGIT2_VER_MAJOR == 1 && LIBGIT2_VER_MINOR >= 8)
#include <git2/sys/errors.h> /* git_error_set_str moved here in 1.8 */
#endif

#define URL_MSG_MAX 256
#define TOKEN_MAX 4096
#define REQUEST_MAX (8u * 1024 * 1024) /* one negotiation request body */

/* --- one network operation ----------------------------------------------- */

struct xfer {
	const struct tm_git_source *src;
	struct tm_http *http;
	char url[URL_MSG_MAX]; /* redacted, for messages */
	uint64_t max, used;    /* bytes received across all requests */
	uint64_t timeout_ms;
	int code; /* our error, once described with tm_error_set */
	git_smart_subtransport_definition def;
	struct tm_buf *record; /* ls_remote: keep the advertisement here */
	int record_full;
	const struct tm_buf *replay; /* fetch: serve the advertisement from here */
	struct packscan *scan;       /* fetch: the pack as it arrives, against the pack limits */
};

struct sub {
	git_smart_subtransport parent;
	struct xfer *x;
};

struct gstream {
	git_smart_subtransport_stream parent;
	struct xfer *x;
	git_smart_service_t service;
	char *url;
	struct tm_buf req;
	struct tm_http_stream *hs;
	size_t replay_off;
	struct pktscan pk;
};

/* Records our error for the operation and hands libgit2 a copy. */
static int xfail(struct xfer *x, int code)
{
	if (!x->code)
		x->code = code;
	git_error_set_str(GIT_ERROR_NET, tm_error_last());
	return -1;
}

static int url_has_userinfo(const char *url)
{
	const char *a = strstr(url, "://");
	size_t n;

	a = a ? a + 3 : url;
	n = strcspn(a, "/?#");
	return memchr(a, '@', n) != NULL;
}

static int read_token(struct tm_http_opts *o, struct tm_buf *tok, const char *path)
{
	char *colon;
	size_t n;
	int r;

	tm_buf_init(tok, TOKEN_MAX + 1);
	if ((r = tm_file_read(tok, path, TOKEN_MAX)) < 0)
		return tm_error_wrap(r == TM_ENOTFOUND || r == TM_EIO || r == TM_ELIMIT ? TM_ECONFIG
											: r,
				     "token_file");
	n = tok->len;
	while (n > 0 && (tok->ptr[n - 1] == '\n' || tok->ptr[n - 1] == '\r' ||
			 tok->ptr[n - 1] == ' ' || tok->ptr[n - 1] == '\t'))
		tok->ptr[--n] = '\0';
	tok->len = n;
	if (n == 0)
		return tm_error_set(TM_ECONFIG, "token_file %s is empty", path);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)tok->ptr[i] < 0x20 || tok->ptr[i] == 0x7f)
			return tm_error_set(
				TM_ECONFIG,
				"token_file %s: one line expected, without control characters",
				path);
	colon = strchr(tok->ptr, ':');
	if (colon) {
		*colon = '\0';
		o->username = tok->ptr;
		o->password = colon + 1;
	} else {
		o->bearer_token = tok->ptr;
	}
	return 0;
}

static int xfer_init(struct xfer *x, const struct tm_git_source *src)
{
	struct tm_http_opts o = { 0 };
	struct tm_buf tok;
	int r;

	memset(x, 0, sizeof(*x));
	tm_buf_init(&tok, 1);
	if (!src || !src->url || !*src->url)
		return tm_error_set(TM_ECONFIG, "source url is not set");
	tm_http_redact_url(x->url, sizeof(x->url), src->url);
	if (strncmp(src->url, "https://", 8) != 0)
		return tm_error_set(TM_ECONFIG, "%s: only https:// source URLs are supported",
				    x->url);
	if (url_has_userinfo(src->url))
		return tm_error_set(
			TM_ECONFIG,
			"%s: the source url must not carry credentials (use token_file)", x->url);
	x->src = src;
	x->timeout_ms = src->timeout_ms ? src->timeout_ms : TM_GIT_DEFAULT_TIMEOUT_MS;
	x->max = src->max_fetch ? src->max_fetch : TM_GIT_DEFAULT_MAX_FETCH;
	o.ca_file = src->ca_file && *src->ca_file ? src->ca_file : NULL;
	o.connect_timeout_ms = x->timeout_ms;
	o.idle_timeout_ms = x->timeout_ms;
	o.max_response = x->max;
	if (src->token_file && *src->token_file && (r = read_token(&o, &tok, src->token_file)) < 0)
		goto out;
	r = tm_http_new(&x->http, &o);
out:
	tm_buf_free_secret(&tok);
	return r;
}

static void xfer_free(struct xfer *x)
{
	tm_http_free(x->http);
	x->http = NULL;
	if (x->scan)
		free(x->scan->in);
	free(x->scan);
	x->scan = NULL;
}

/* Bytes of the upload-pack response, before libgit2 sees them. */
static int scan_response(struct gstream *s, const char *buf, size_t n)
{
	struct xfer *x = s->x;

	if (!x->scan) {
		if (!(x->scan = calloc(1, sizeof(*x->scan))))
			return tm_error_nomem();
		x->scan->url = x->url;
		x->scan->obj_max = x->max;
		x->scan->total_max = x->max > TM_GIT_MAX_INFLATED / TM_GIT_INFLATE_FACTOR
					     ? TM_GIT_MAX_INFLATED
					     : x->max * TM_GIT_INFLATE_FACTOR;
	}
	return tmg_pkt_feed(&s->pk, x->scan, (const unsigned char *)buf, n);
}

/* libgit2 asks for include-tag whenever the server offers it: the pack then also carries
 * every annotated tag pointing into the history it sends (every older release tag), none
 * of which tagmoor asked for or keeps, so each prune had to rewrite the fetched pack to drop
 * them. The capability leaves the first want line (and its pkt-line length) here. */
static void drop_include_tag(struct tm_buf *req)
{
	static const char cap[] = " include-tag";
	const size_t cl = sizeof(cap) - 1;
	unsigned len = 0;
	char hex[5];

	if (req->len < 4 || sscanf(req->ptr, "%4x", &len) != 1 || len < 4 || len > req->len)
		return;
	for (size_t i = 4; i + cl <= len; i++) {
		char after = i + cl < len ? req->ptr[i + cl] : '\n';

		if (memcmp(req->ptr + i, cap, cl) != 0 || (after != ' ' && after != '\n'))
			continue;
		memmove(req->ptr + i, req->ptr + i + cl, req->len - i - cl);
		req->len -= cl;
		req->ptr[req->len] = '\0';
		snprintf(hex, sizeof(hex), "%04x", len - (unsigned)cl);
		memcpy(req->ptr, hex, 4);
		return;
	}
}

static int gs_start(struct gstream *s)
{
	struct xfer *x = s->x;
	struct tm_http_request req = { 0 };
	const char *want_type;
	long st;
	int r;

	if (x->used >= x->max) {
		tm_error_set(TM_ELIMIT, "%s: fetch larger than max_fetch (%llu bytes); aborted",
			     x->url, (unsigned long long)x->max);
		return xfail(x, TM_ELIMIT);
	}
	req.url = s->url;
	req.max_response = x->max - x->used;
	if (s->service == GIT_SERVICE_UPLOADPACK_LS) {
		req.method = "GET";
		/* The advertisement is small: the whole request is bounded too. */
		req.total_timeout_ms = x->timeout_ms;
		want_type = "application/x-git-upload-pack-advertisement";
	} else {
		req.method = "POST";
		drop_include_tag(&s->req);
		req.content_type = "application/x-git-upload-pack-request";
		req.accept = "application/x-git-upload-pack-result";
		req.body = s->req.ptr;
		req.body_len = s->req.len;
		want_type = "application/x-git-upload-pack-result";
	}
	if ((r = tm_http_stream_open(&s->hs, x->http, &req)) < 0)
		return xfail(x, r == TM_ELIMIT ? TM_ELIMIT : TM_ESOURCE);
	st = tm_http_stream_status(s->hs);
	if (st == 401 || st == 403) {
		tm_error_set(TM_ESOURCE, "%s: authentication failed (HTTP %ld)%s", x->url, st,
			     x->src->token_file ? "" : "; no token_file is configured");
		return xfail(x, TM_ESOURCE);
	}
	if (st == 404) {
		tm_error_set(TM_ESOURCE, "%s: repository not found (HTTP 404)", x->url);
		return xfail(x, TM_ESOURCE);
	}
	if (st != 200) {
		tm_error_set(TM_ESOURCE, "%s: HTTP %ld", x->url, st);
		return xfail(x, TM_ESOURCE);
	}
	if (strncmp(tm_http_stream_content_type(s->hs), want_type, strlen(want_type)) != 0) {
		tm_error_set(TM_ESOURCE, "%s: not a smart git HTTP server (Content-Type \"%.64s\")",
			     x->url, tm_http_stream_content_type(s->hs));
		return xfail(x, TM_ESOURCE);
	}
	return 0;
}

static int gs_read(git_smart_subtransport_stream *stream, char *buf, size_t len, size_t *out_n)
{
	struct gstream *s = (struct gstream *)stream;
	struct xfer *x = s->x;
	uint64_t before;
	int r;

	*out_n = 0;
	if (x->code)
		return xfail(x, x->code);
	if (s->service == GIT_SERVICE_UPLOADPACK_LS && x->replay) {
		size_t left = x->replay->len - s->replay_off;

		*out_n = left < len ? left : len;
		memcpy(buf, x->replay->ptr + s->replay_off, *out_n);
		s->replay_off += *out_n;
		return 0;
	}
	if (!s->hs && gs_start(s) < 0)
		return -1;
	before = tm_http_stream_received(s->hs);
	r = tm_http_stream_read(s->hs, buf, len, out_n);
	TM_FAULT("git.pack-reading");
	x->used += tm_http_stream_received(s->hs) - before;
	if (r == 0 && *out_n && s->service == GIT_SERVICE_UPLOADPACK_LS && x->record &&
	    !x->record_full) {
		if (*out_n > ADV_CACHE_MAX - 1 - x->record->len)
			x->record_full = 1;
		else if (tm_buf_put(x->record, buf, *out_n) < 0)
			x->record_full = 1;
	}
	if (r == TM_ELIMIT) {
		tm_error_set(TM_ELIMIT, "%s: fetch larger than max_fetch (%llu bytes); aborted",
			     x->url, (unsigned long long)x->max);
		return xfail(x, TM_ELIMIT);
	}
	if (r < 0)
		return xfail(x, r);
	if (*out_n && s->service == GIT_SERVICE_UPLOADPACK &&
	    (r = scan_response(s, buf, *out_n)) < 0) {
		*out_n = 0;
		return xfail(x, r);
	}
	return 0;
}

static int gs_write(git_smart_subtransport_stream *stream, const char *buf, size_t len)
{
	struct gstream *s = (struct gstream *)stream;
	int r;

	if (s->service != GIT_SERVICE_UPLOADPACK) {
		tm_error_set(TM_ESOURCE, "%s: unexpected write on the advertisement", s->x->url);
		return xfail(s->x, TM_ESOURCE);
	}
	if (s->hs) {
		tm_error_set(TM_ESOURCE, "%s: write after the request was sent", s->x->url);
		return xfail(s->x, TM_ESOURCE);
	}
	if ((r = tm_buf_put(&s->req, buf, len)) < 0)
		return xfail(s->x, r);
	return 0;
}

static void gs_free(git_smart_subtransport_stream *stream)
{
	struct gstream *s = (struct gstream *)stream;

	if (!s)
		return;
	tm_http_stream_free(s->hs);
	tm_buf_free(&s->req);
	free(s->url);
	free(s);
}

static int sub_action(git_smart_subtransport_stream **out, git_smart_subtransport *t,
		      const char *url, git_smart_service_t action)
{
	struct sub *sub = (struct sub *)t;
	struct xfer *x = sub->x;
	struct gstream *s;
	struct tm_buf u;
	size_t ul = strlen(url);
	const char *suffix;

	*out = NULL;
	if (action == GIT_SERVICE_UPLOADPACK_LS) {
		suffix = "/info/refs?service=git-upload-pack";
	} else if (action == GIT_SERVICE_UPLOADPACK) {
		suffix = "/git-upload-pack";
	} else {
		tm_error_set(TM_ESOURCE, "%s: push is not supported", x->url);
		return xfail(x, TM_ESOURCE);
	}
	while (ul > 0 && url[ul - 1] == '/')
		ul--;
	tm_buf_init(&u, 8192);
	s = calloc(1, sizeof(*s));
	if (!s || tm_buf_put(&u, url, ul) < 0 || tm_buf_puts(&u, suffix) < 0) {
		free(s);
		tm_buf_free(&u);
		tm_error_set(TM_ENOMEM, "out of memory or URL too long");
		return xfail(x, TM_ENOMEM);
	}
	s->parent.subtransport = t;
	s->parent.read = gs_read;
	s->parent.write = gs_write;
	s->parent.free = gs_free;
	s->x = x;
	s->service = action;
	s->url = tm_buf_detach(&u);
	tm_buf_init(&s->req, REQUEST_MAX);
	*out = &s->parent;
	return 0;
}

static int sub_close(git_smart_subtransport *t)
{
	(void)t;
	return 0;
}

static void sub_free(git_smart_subtransport *t)
{
	free(t);
}

static int make_sub(git_smart_subtransport **out, git_transport *owner, void *param)
{
	struct sub *s = calloc(1, sizeof(*s));

	(void)owner;
	*out = NULL;
	if (!s) {
		git_error_set_oom();
		return -1;
	}
	s->parent.action = sub_action;
	s->parent.close = sub_close;
	s->parent.free = sub_free;
	s->x = param;
	*out = &s->parent;
	return 0;
}

static int make_transport(git_transport **out, git_remote *owner, void *payload)
{
	struct xfer *x = payload;

	x->def.callback = make_sub;
	x->def.rpc = 1;
	x->def.param = x;
	return git_transport_smart(out, owner, &x->def);
}

/* After a failed libgit2 call: our own error when the transport described
 * one, else libgit2's message as a source failure. */
static int net_fail(struct xfer *x, const char *what)
{
	if (x->code)
		return x->code;
	return tmg_lg_error(TM_ESOURCE, what);
}

static int valid_ref(const char *ref)
{
	int ok = 0;

	if (!ref || strncmp(ref, "refs/", 5) != 0 || strpbrk(ref, ":+*?[\\ ") ||
	    git_reference_name_is_valid(&ok, ref) < 0 || !ok)
		return tm_error_set(TM_ECONFIG, "invalid ref \"%.128s\"", ref ? ref : "");
	return 0;
}

int tm_git_ls_remote(char out_oid[41], struct tm_git *git, const struct tm_git_source *src,
		     const char *ref)
{
	struct tm_buf adv;
	struct xfer x;
	git_remote *remote = NULL;
	git_remote_callbacks cb;
	const git_remote_head **heads;
	size_t n;
	int r;

	out_oid[0] = '\0';
	tm_buf_init(&adv, 1);
	tmg_adv_drop(git);
	if ((r = valid_ref(ref)) < 0)
		return r;
	if ((r = xfer_init(&x, src)) < 0)
		goto out;
	if (git_remote_create_detached(&remote, src->url) < 0) {
		r = tmg_lg_error(TM_ECONFIG, x.url);
		goto out;
	}
	git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
	cb.transport = make_transport;
	cb.payload = &x;
	tm_buf_init(&adv, ADV_CACHE_MAX);
	x.record = &adv;
	if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL) < 0) {
		r = net_fail(&x, x.url);
		goto out;
	}
	if (git_remote_ls(&heads, &n, remote) < 0) {
		r = net_fail(&x, x.url);
		goto out;
	}
	r = tm_error_set(TM_ENOTFOUND, "%s: ref %s is not advertised by the server", x.url, ref);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(heads[i]->name, ref) == 0) {
			git_oid_tostr(out_oid, 41, &heads[i]->oid);
			r = 0;
			break;
		}
	}
	if (r == 0 && !x.record_full && adv.len > 0 && tm_git_has_object(git, out_oid) == 0 &&
	    (git->adv_url = strdup(src->url)) != NULL) {
		git->adv = adv;
		git->adv_ms = tm_time_mono_ms();
		tm_buf_init(&adv, 1);
	}
out:
	tm_buf_free(&adv);
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	xfer_free(&x);
	return r;
}

/* One fetch attempt. *local is set when it failed in the local repository
 * (a lock that could not be taken, a file system error) rather than on the
 * network or in what the server sent. */
static int fetch_once(struct tm_git *git, const struct tm_git_source *src, const char *ref,
		      const char *spec, const char *expected_oid, int *local)
{
	struct xfer x;
	git_remote *remote = NULL;
	git_remote_create_options co;
	git_fetch_options fo;
	git_strarray specs;
	char *specp = (char *)spec;
	int r, e;

	*local = 0;
	git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	if ((r = xfer_init(&x, src)) < 0)
		goto out;
	/* The advertisement this poll already made, if it is still fresh. */
	if (git->adv_url && strcmp(git->adv_url, src->url) == 0 &&
	    (uint64_t)tm_time_mono_ms() - git->adv_ms < x.timeout_ms)
		x.replay = &git->adv;
	co.repository = git->repo;
	co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(&remote, src->url, &co) < 0) {
		r = tmg_lg_error(TM_ECONFIG, x.url);
		goto out;
	}
	fo.callbacks.transport = make_transport;
	fo.callbacks.payload = &x;
	fo.prune = GIT_FETCH_NO_PRUNE;
	fo.update_fetchhead = 0;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	specs.strings = &specp;
	specs.count = 1;
	TM_FAULT("git.before-fetch");
	if ((e = git_remote_fetch(remote, &specs, &fo, "tagmoor: fetch")) < 0) {
		const git_error *le = git_error_last();
		int klass = le ? le->klass : GIT_ERROR_NONE;

		*local = !x.code && (e == GIT_ELOCKED || klass == GIT_ERROR_OS ||
				     klass == GIT_ERROR_FILESYSTEM || klass == GIT_ERROR_REFERENCE);
		r = net_fail(&x, x.url);
		goto out;
	}
	TM_FAULT("git.pack-received");
	/* libgit2 took the pack: the scan must have followed it to its end, or
	 * something in it went unaccounted for */
	if (x.scan && x.scan->state != PS_DONE) {
		r = tm_error_set(TM_ESOURCE,
				 "%s: the pack did not end where its entries said it would "
				 "(%u of %u objects read); refused",
				 x.url, x.scan->done, x.scan->nobjects);
		goto out;
	}
	r = tm_git_has_object(git, expected_oid);
	if (r == 0)
		r = tm_error_set(TM_ESOURCE,
				 "%s: %s moved on the server during the fetch (%s not received); "
				 "will retry",
				 x.url, ref, expected_oid);
	if (r < 0)
		goto out;
	TM_FAULT("git.before-fetched-ref");
	if ((r = tm_git_set_ref(git, TM_GIT_FETCHED_REF, expected_oid)) < 0) {
		*local = 1;
		goto out;
	}
	TM_FAULT("git.fetched");
	tm_log_debug("fetched %s %s from %s (%llu bytes, %u objects inflating to %llu bytes)", ref,
		     expected_oid, x.url, (unsigned long long)x.used, x.scan ? x.scan->nobjects : 0,
		     (unsigned long long)(x.scan ? x.scan->total : 0));
out:
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	xfer_free(&x);
	return r;
}

int tm_git_fetch(struct tm_git *git, const struct tm_git_source *src, const char *ref,
		 const char *expected_oid)
{
	char spec[1100];
	git_oid want;
	int r, n, local = 0;

	if ((r = valid_ref(ref)) < 0 || (r = tmg_parse_oid(&want, expected_oid)) < 0)
		return r;
	r = tm_git_has_object(git, expected_oid);
	if (r < 0)
		return r;
	if (r == 1) { /* already here (a tag moved back, or a retried fetch) */
		tmg_adv_drop(git);
		return tm_git_set_ref(git, TM_GIT_FETCHED_REF, expected_oid);
	}
	n = snprintf(spec, sizeof(spec), "+%s:%s", ref, TM_GIT_FETCHED_REF);
	if (n < 0 || (size_t)n >= sizeof(spec))
		return tm_error_set(TM_ECONFIG, "ref too long");
	{
		uint64_t max = src && src->max_fetch ? src->max_fetch : TM_GIT_DEFAULT_MAX_FETCH;
		uint64_t have = tm_git_store_bytes(git), kept = tmg_kept_bytes(git->path);

		if (have > kept + TM_GIT_STORE_FACTOR * max)
			return tm_error_set(
				TM_ELIMIT,
				"%s: the object store holds %llu bytes, more than %d x max_fetch "
				"(%llu bytes) beyond the %llu bytes its last pruning kept; not "
				"fetching more until it "
				"is pruned",
				git->path, (unsigned long long)have, TM_GIT_STORE_FACTOR,
				(unsigned long long)max, (unsigned long long)kept);
	}
	r = fetch_once(git, src, ref, spec, expected_oid, &local);
	if (r < 0 && local) {
		/* The repository itself is in the way (a lock nobody can hold
		 * under our state lock, an unwritable file): rebuild it once and
		 * fetch everything again rather than fail at every poll. */
		char why[300];
		git_repository *repo = NULL;

		snprintf(why, sizeof(why), "the fetch failed locally: %.200s", tm_error_last());
		git_repository_free(git->repo);
		git->repo = NULL;
		if ((r = tmg_rebuild(&repo, git->path, why)) < 0) {
			/* keep the handle usable for tm_git_free and the caller */
			if (git_repository_open_bare(&git->repo, git->path) < 0)
				git->repo = NULL;
			goto out;
		}
		git->repo = repo;
		r = fetch_once(git, src, ref, spec, expected_oid, &local);
	}
out:
	tmg_adv_drop(git);
	return r;
}
