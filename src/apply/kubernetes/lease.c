/*
 * lease.c — the apply lease (kube.h): one node of a cluster applies a
 * revision. A coordination.k8s.io Lease kube-system/tagmoor-<hash of the
 * source> is taken before anything is written (or found held by another live
 * node: this one then does nothing), renewed while a pass waits, and released
 * at the end of the pass.
 *
 * Where it sits in the pipeline: apply and drift take it (kube.c, drift.c);
 * every long wait renews it; the end of the pass releases it.
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/doc/json.h"
#include "tagmoor/apply/kubernetes/kstatus.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/fault.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void micro_time(char out[40])
{
	struct timespec ts;
	struct tm t;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &t);
	snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", (t.tm_year + 1900) % 10000,
		 (t.tm_mon + 1) % 100, t.tm_mday % 100, t.tm_hour % 100, t.tm_min % 100,
		 t.tm_sec % 100, (int)(ts.tv_nsec / 1000) % 1000000);
}

static int lease_path(struct kube_pass *S, char *out, size_t n, int with_name)
{
	int k = snprintf(out, n, "/apis/coordination.k8s.io/v1/namespaces/%s/leases%s%s",
			 TM_KUBE_LEASE_NAMESPACE, with_name ? "/" : "", with_name ? S->lease : "");
	return k < 0 || (size_t)k >= n ? TM_ELIMIT : 0;
}

static int lease_body(struct kube_pass *S, struct tm_buf *b, const char *rv, const char *holder,
		      int seconds, const char *acquired, const char *renewed)
{
	int r = 0;

	r |= tm_buf_printf(
		b,
		"{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":"
		"{\"name\":\"%s\",\"namespace\":\"%s\",\"labels\":{\"%s\":\"%s\"}",
		S->lease, TM_KUBE_LEASE_NAMESPACE, TM_KUBE_LABEL_MANAGED_BY, TM_KUBE_MANAGED_BY);
	if (rv) {
		r |= tm_buf_puts(b, ",\"resourceVersion\":");
		r |= tm_json_cstr(b, rv, 0);
	}
	r |= tm_buf_puts(b, "},\"spec\":{");
	if (holder) {
		r |= tm_buf_puts(b, "\"holderIdentity\":");
		r |= tm_json_cstr(b, holder, 0);
		r |= tm_buf_putc(b, ',');
	}
	r |= tm_buf_printf(
		b,
		"\"leaseDurationSeconds\":%d,\"acquireTime\":\"%s\",\"renewTime\":\"%s\","
		"\"leaseTransitions\":%lld}}",
		seconds, acquired, renewed, (long long)S->lease_transitions);
	return r ? tm_error_nomem() : 0;
}

static void lease_note(struct kube_pass *S, const struct tm_buf *b)
{
	struct tm_doc *d = NULL;
	const char *rv;

	if (kube_parse_json(&d, b->ptr, b->len, "lease") == 0 &&
	    (rv = kube_doc_str(
		     tm_doc_get_path(d, "metadata", "resourceVersion", (const char *)NULL))))
		snprintf(S->lease_rv, sizeof(S->lease_rv), "%s", rv);
	tm_doc_free(d);
	tm_error_clear();
}

enum {
	LEASE_TAKEN = 0, /* this node holds it now */
	LEASE_AGAIN,     /* it changed under us: look again */
	LEASE_SKIPPED    /* another live node holds it */
};

/* No lease yet: creates it, held by this node. */
static int lease_create(struct kube_pass *S, char *path, size_t pathlen, const char *now,
			struct tm_buf *body, struct tm_buf *b)
{
	long st;
	int r;

	S->lease_transitions = 0;
	snprintf(S->lease_acquired, sizeof(S->lease_acquired), "%s", now);
	if ((r = lease_body(S, body, NULL, S->holder, TM_KUBE_LEASE_SECONDS, now, now)) < 0)
		return r;
	lease_path(S, path, pathlen, 0);
	if ((r = tm_kube_call(S->kube, "POST", path, "application/json", body->ptr, body->len, &st,
			      b)) < 0)
		return r;
	if (st == 409)
		return LEASE_AGAIN; /* another node created it first */
	if (st != 201 && st != 200)
		return kube_api_failed(st, b,
				       "create the apply lease " TM_KUBE_LEASE_NAMESPACE "/leases");
	return LEASE_TAKEN;
}

/* The lease exists (its answer in b): taken over when it is this node's or
 * has expired, else left to the node that holds it (S->skipped). */
static int lease_take(struct kube_pass *S, const char *path, const char *now, struct tm_buf *body,
		      struct tm_buf *b)
{
	struct tm_doc *d = NULL;
	const char *holder, *renew, *acq, *rv;
	const struct tm_doc *dur, *tr;
	int64_t renewed, secs;
	int mine, expired, r;
	long st;

	if ((r = kube_parse_json(&d, b->ptr, b->len, "lease")) < 0)
		return r;
	holder = kube_doc_str(tm_doc_get_path(d, "spec", "holderIdentity", (const char *)NULL));
	renew = kube_doc_str(tm_doc_get_path(d, "spec", "renewTime", (const char *)NULL));
	acq = kube_doc_str(tm_doc_get_path(d, "spec", "acquireTime", (const char *)NULL));
	rv = kube_doc_str(tm_doc_get_path(d, "metadata", "resourceVersion", (const char *)NULL));
	dur = tm_doc_get_path(d, "spec", "leaseDurationSeconds", (const char *)NULL);
	tr = tm_doc_get_path(d, "spec", "leaseTransitions", (const char *)NULL);
	secs = dur && dur->type == TM_DOC_INT ? dur->u.i : TM_KUBE_LEASE_SECONDS;
	renewed = tm_kstatus_parse_time(renew);
	mine = holder && strcmp(holder, S->holder) == 0;
	/* Wall clocks of the nodes are compared (NTP assumed). */
	expired = !holder || !*holder || renewed < 0 || renewed + secs < (int64_t)time(NULL);
	if (!mine && !expired) {
		kube_clean(S->other, sizeof(S->other), holder, 100);
		S->skipped = 1;
		tm_doc_free(d);
		return LEASE_SKIPPED;
	}
	S->lease_transitions = tr && tr->type == TM_DOC_INT ? tr->u.i : 0;
	if (!mine) {
		S->lease_transitions++;
		snprintf(S->lease_acquired, sizeof(S->lease_acquired), "%s", now);
	} else {
		snprintf(S->lease_acquired, sizeof(S->lease_acquired), "%s",
			 acq && strlen(acq) < 40 ? acq : now);
	}
	r = lease_body(S, body, rv ? rv : "", S->holder, TM_KUBE_LEASE_SECONDS, S->lease_acquired,
		       now);
	tm_doc_free(d);
	if (r < 0)
		return r;
	if ((r = tm_kube_call(S->kube, "PUT", path, "application/json", body->ptr, body->len, &st,
			      b)) < 0)
		return r;
	if (st == 409)
		return LEASE_AGAIN; /* changed under us: look again */
	if (st != 200)
		return kube_api_failed(st, b, "take the apply lease");
	return LEASE_TAKEN;
}

/* Takes the lease, or finds that another live node holds it (S->skipped). */
int kube_lease_acquire(struct kube_pass *S)
{
	char path[300], now[40];
	struct tm_buf b, body;
	int r = 0;

	tm_buf_init(&b, MAX_RESPONSE + 1);
	tm_buf_init(&body, 8192);
	for (int attempt = 0; attempt < 5; attempt++) {
		long st;

		lease_path(S, path, sizeof(path), 1);
		if ((r = tm_kube_call(S->kube, "GET", path, NULL, NULL, 0, &st, &b)) < 0)
			goto out;
		micro_time(now);
		tm_buf_reset(&body);
		if (st == 404)
			r = lease_create(S, path, sizeof(path), now, &body, &b);
		else if (st == 200)
			r = lease_take(S, path, now, &body, &b);
		else
			r = kube_api_failed(st, &b,
					    "read the apply lease " TM_KUBE_LEASE_NAMESPACE
					    "/leases");
		if (r == LEASE_AGAIN)
			continue;
		if (r < 0)
			goto out;
		if (r == LEASE_SKIPPED) {
			r = 0;
			goto out;
		}
		lease_note(S, &b);
		S->lease_held = 1;
		TM_FAULT("kube.lease-taken");
		S->lease_renewed_ms = tm_time_mono_ms();
		tm_log_debug("kubernetes: holding the apply lease %s/%s", TM_KUBE_LEASE_NAMESPACE,
			     S->lease);
		r = 0;
		goto out;
	}
	r = tm_error_set(TM_EAPPLY,
			 "kubernetes: the apply lease %s/%s changed on every attempt to take it",
			 TM_KUBE_LEASE_NAMESPACE, S->lease);
out:
	tm_buf_free(&b);
	tm_buf_free(&body);
	return r;
}

/* Renews the lease when a quarter of its duration has passed. */
int kube_lease_tick(struct kube_pass *S)
{
	char path[300], now[40];
	struct tm_buf b, body;
	long st;
	int r;

	if (!S->lease_held ||
	    (uint64_t)tm_time_mono_ms() - S->lease_renewed_ms < TM_KUBE_LEASE_SECONDS * 1000u / 4)
		return 0;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	tm_buf_init(&body, 8192);
	micro_time(now);
	lease_path(S, path, sizeof(path), 1);
	r = lease_body(S, &body, S->lease_rv, S->holder, TM_KUBE_LEASE_SECONDS, S->lease_acquired,
		       now);
	if (r == 0)
		r = tm_kube_call(S->kube, "PUT", path, "application/json", body.ptr, body.len, &st,
				 &b);
	if (r == 0 && st == 200) {
		lease_note(S, &b);
		S->lease_renewed_ms = tm_time_mono_ms();
	} else if (r == 0) {
		/* 409: someone else wrote it — we were too slow and lost it */
		S->lease_held = 0;
		r = kube_api_failed(st, &b, "renew the apply lease");
		if (st == 409)
			r = tm_error_set(TM_EAPPLY,
					 "kubernetes: lost the apply lease %s/%s to another node",
					 TM_KUBE_LEASE_NAMESPACE, S->lease);
	}
	tm_buf_free(&b);
	tm_buf_free(&body);
	return r;
}

void kube_lease_release(struct kube_pass *S)
{
	char path[300], now[40];
	struct tm_buf b, body;
	long st = 0;

	S->lease_held = 0;
	if (!S->kube)
		return;
	tm_buf_init(&b, MAX_RESPONSE + 1);
	tm_buf_init(&body, 8192);
	micro_time(now);
	lease_path(S, path, sizeof(path), 1);
	if (lease_body(S, &body, S->lease_rv, NULL, 1, S->lease_acquired, now) == 0 &&
	    tm_kube_call(S->kube, "PUT", path, "application/json", body.ptr, body.len, &st, &b) ==
		    0 &&
	    st == 200)
		tm_log_debug("kubernetes: released the apply lease %s/%s", TM_KUBE_LEASE_NAMESPACE,
			     S->lease);
	else
		tm_log_debug("kubernetes: could not release the apply lease (HTTP %ld); it expires",
			     st);
	tm_buf_free(&b);
	tm_buf_free(&body);
	tm_error_clear();
}
