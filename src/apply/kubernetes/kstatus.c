/*
 * kstatus.c — health of live Kubernetes objects by the kstatus rules
 * (kstatus.h). Pure functions of one object: the Kubernetes applier's
 * health() fetches objects and asks here; the unit tests feed recorded API
 * answers.
 */
#include "tagmoor/apply/kubernetes/kstatus.h"
#include "tagmoor/core/time.h"
#include "tagmoor/doc/doc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEDULE_WINDOW 15 /* seconds a Pod may be unschedulable before it counts as failed */

const char *tm_kstatus_name(enum tm_kstatus s)
{
	switch (s) {
	case TM_KSTATUS_CURRENT:
		return "Current";
	case TM_KSTATUS_IN_PROGRESS:
		return "InProgress";
	case TM_KSTATUS_FAILED:
		return "Failed";
	case TM_KSTATUS_TERMINATING:
		return "Terminating";
	case TM_KSTATUS_NOT_FOUND:
		return "NotFound";
	}
	return "Unknown";
}

static enum tm_kstatus say(enum tm_kstatus s, char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum tm_kstatus say(enum tm_kstatus s, char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return s;
}

/* GetIntField: the integer at a path, or def when absent or not an integer. */
static int64_t int_at(const struct tm_doc *obj, const char *a, const char *b, const char *c,
		      int64_t def)
{
	const struct tm_doc *v = tm_doc_get_path(obj, a, b, c, (const char *)NULL);

	if (v && v->type == TM_DOC_INT)
		return v->u.i;
	return def;
}

static int has_int(const struct tm_doc *obj, const char *a, const char *b)
{
	const struct tm_doc *v = tm_doc_get_path(obj, a, b, (const char *)NULL);
	return v && v->type == TM_DOC_INT;
}

static const char *str_at(const struct tm_doc *obj, const char *a, const char *b, const char *c,
			  const char *def)
{
	const char *s = tm_doc_string(tm_doc_get_path(obj, a, b, c, (const char *)NULL));
	return s ? s : def;
}

/* The condition of a type in status.conditions, or NULL. */
static const struct tm_doc *condition(const struct tm_doc *obj, const char *type)
{
	const struct tm_doc *conds =
		tm_doc_get_path(obj, "status", "conditions", (const char *)NULL);

	if (!conds || conds->type != TM_DOC_SEQ)
		return NULL;
	for (size_t i = 0; i < conds->u.seq.n; i++) {
		const char *t = tm_doc_string(tm_doc_map_get(conds->u.seq.v[i], "type"));
		if (t && strcmp(t, type) == 0)
			return conds->u.seq.v[i];
	}
	return NULL;
}

static const char *cond_field(const struct tm_doc *c, const char *f)
{
	const char *s = tm_doc_string(tm_doc_map_get(c, f));
	return s ? s : "";
}

static int cond_is(const struct tm_doc *obj, const char *type, const char *status)
{
	const struct tm_doc *c = condition(obj, type);
	return c && strcmp(cond_field(c, "status"), status) == 0;
}

int64_t tm_kstatus_parse_time(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0;
	int64_t off = 0, days;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om, m2 = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m2) != 2 || m2 != 5)
			return -1;
		off = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	days = tm_time_days_from_civil(y, (unsigned)mo, (unsigned)d);
	return days * 86400 + h * 3600 + mi * 60 + sec - off;
}

/* ------------------------------------------------------------ per kind */

static enum tm_kstatus deployment(const struct tm_doc *o, char *msg, size_t ml)
{
	int progressing = 0, available = 0;
	const struct tm_doc *conds = tm_doc_get_path(o, "status", "conditions", (const char *)NULL);
	int64_t spec, st, upd, ready, avail;

	if (int_at(o, "spec", "progressDeadlineSeconds", NULL, 2147483647) == 2147483647)
		progressing = 1;
	for (size_t i = 0; conds && conds->type == TM_DOC_SEQ && i < conds->u.seq.n; i++) {
		const struct tm_doc *c = conds->u.seq.v[i];
		const char *t = cond_field(c, "type"), *s = cond_field(c, "status"),
			   *r = cond_field(c, "reason");
		if (strcmp(t, "Progressing") == 0) {
			if (strcmp(r, "ProgressDeadlineExceeded") == 0)
				return say(TM_KSTATUS_FAILED, msg, ml,
					   "Progress deadline exceeded (%.200s)",
					   cond_field(c, "message"));
			if (strcmp(s, "True") == 0 && strcmp(r, "NewReplicaSetAvailable") == 0)
				progressing = 1;
		} else if (strcmp(t, "Available") == 0 && strcmp(s, "True") == 0) {
			available = 1;
		}
	}
	spec = int_at(o, "spec", "replicas", NULL, 1);
	st = int_at(o, "status", "replicas", NULL, 0);
	upd = int_at(o, "status", "updatedReplicas", NULL, 0);
	ready = int_at(o, "status", "readyReplicas", NULL, 0);
	avail = int_at(o, "status", "availableReplicas", NULL, 0);
	if (spec > st)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Replicas: %lld/%lld", (long long)st,
			   (long long)spec);
	if (spec > upd)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Updated: %lld/%lld", (long long)upd,
			   (long long)spec);
	if (st > spec)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Pending termination: %lld",
			   (long long)(st - spec));
	if (upd > avail)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Available: %lld/%lld",
			   (long long)avail, (long long)upd);
	if (spec > ready)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Ready: %lld/%lld", (long long)ready,
			   (long long)spec);
	if (!progressing)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "ReplicaSet not Available");
	if (!available)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Deployment not Available");
	return say(TM_KSTATUS_CURRENT, msg, ml, "Deployment is available. Replicas: %lld",
		   (long long)st);
}

static enum tm_kstatus statefulset(const struct tm_doc *o, char *msg, size_t ml)
{
	int64_t spec, ready, cur, upd, st, part;
	const char *crev, *urev;

	if (strcmp(str_at(o, "spec", "updateStrategy", "type", ""), "OnDelete") == 0)
		return say(TM_KSTATUS_CURRENT, msg, ml,
			   "StatefulSet is using the ondelete update strategy");
	spec = int_at(o, "spec", "replicas", NULL, 1);
	ready = int_at(o, "status", "readyReplicas", NULL, 0);
	cur = int_at(o, "status", "currentReplicas", NULL, 0);
	upd = int_at(o, "status", "updatedReplicas", NULL, 0);
	st = int_at(o, "status", "replicas", NULL, 0);
	{
		const struct tm_doc *p = tm_doc_get_path(o, "spec", "updateStrategy",
							 "rollingUpdate", "partition",
							 (const char *)NULL);
		part = p && p->type == TM_DOC_INT ? p->u.i : -1;
	}
	if (spec > st)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Replicas: %lld/%lld", (long long)st,
			   (long long)spec);
	if (spec > ready)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Ready: %lld/%lld", (long long)ready,
			   (long long)spec);
	if (st > spec)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Pending termination: %lld",
			   (long long)(st - spec));
	if (part != -1) {
		if (upd < spec - part)
			return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "updated: %lld/%lld",
				   (long long)upd, (long long)(spec - part));
		return say(TM_KSTATUS_CURRENT, msg, ml, "Partition rollout complete. updated: %lld",
			   (long long)upd);
	}
	if (spec > cur)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "current: %lld/%lld", (long long)cur,
			   (long long)spec);
	crev = str_at(o, "status", "currentRevision", NULL, "");
	urev = str_at(o, "status", "updateRevision", NULL, "");
	if (strcmp(crev, urev) != 0)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml,
			   "Waiting for updated revision to match current");
	return say(TM_KSTATUS_CURRENT, msg, ml,
		   "All replicas scheduled as expected. Replicas: %lld", (long long)st);
}

static enum tm_kstatus daemonset(const struct tm_doc *o, char *msg, size_t ml)
{
	int64_t desired, cur, upd, avail, ready;

	if (!has_int(o, "metadata", "generation"))
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml,
			   "DaemonSet metadata.generation not found");
	if (!has_int(o, "status", "observedGeneration"))
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml,
			   "DaemonSet status.observedGeneration not found");
	desired = int_at(o, "status", "desiredNumberScheduled", NULL, -1);
	cur = int_at(o, "status", "currentNumberScheduled", NULL, 0);
	upd = int_at(o, "status", "updatedNumberScheduled", NULL, 0);
	avail = int_at(o, "status", "numberAvailable", NULL, 0);
	ready = int_at(o, "status", "numberReady", NULL, 0);
	if (desired == -1)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml,
			   "Missing .status.desiredNumberScheduled");
	if (desired > cur)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Current: %lld/%lld", (long long)cur,
			   (long long)desired);
	if (desired > upd)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Updated: %lld/%lld", (long long)upd,
			   (long long)desired);
	if (desired > avail)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Available: %lld/%lld",
			   (long long)avail, (long long)desired);
	if (desired > ready)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Ready: %lld/%lld", (long long)ready,
			   (long long)desired);
	return say(TM_KSTATUS_CURRENT, msg, ml,
		   "All replicas scheduled as expected. Replicas: %lld", (long long)desired);
}

static enum tm_kstatus replicaset(const struct tm_doc *o, char *msg, size_t ml)
{
	int64_t spec, st, ready, avail, labelled;

	if (cond_is(o, "ReplicaFailure", "True"))
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml,
			   "Replica Failure condition. Check Pods");
	spec = int_at(o, "spec", "replicas", NULL, 1);
	st = int_at(o, "status", "replicas", NULL, 0);
	ready = int_at(o, "status", "readyReplicas", NULL, 0);
	avail = int_at(o, "status", "availableReplicas", NULL, 0);
	labelled = int_at(o, "status", "fullyLabeledReplicas", NULL, 0);
	if (spec > labelled)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Labelled: %lld/%lld",
			   (long long)labelled, (long long)spec);
	if (spec > avail)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Available: %lld/%lld",
			   (long long)avail, (long long)spec);
	if (spec > ready)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Ready: %lld/%lld", (long long)ready,
			   (long long)spec);
	if (st > spec)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Pending termination: %lld",
			   (long long)(st - spec));
	return say(TM_KSTATUS_CURRENT, msg, ml, "ReplicaSet is available. Replicas: %lld",
		   (long long)st);
}

static enum tm_kstatus pvc(const struct tm_doc *o, char *msg, size_t ml)
{
	const char *phase = str_at(o, "status", "phase", NULL, "unknown");

	if (strcmp(phase, "Bound") != 0)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "PVC is not Bound. phase: %.64s",
			   phase);
	return say(TM_KSTATUS_CURRENT, msg, ml, "PVC is Bound");
}

static enum tm_kstatus pod(const struct tm_doc *o, int64_t now, char *msg, size_t ml)
{
	const char *phase = str_at(o, "status", "phase", NULL, "");

	if (strcmp(phase, "Succeeded") == 0)
		return say(TM_KSTATUS_CURRENT, msg, ml, "Pod has completed successfully");
	if (strcmp(phase, "Failed") == 0) {
		const char *reason = str_at(o, "status", "reason", NULL, "");
		return say(TM_KSTATUS_FAILED, msg, ml,
			   "Pod has completed, but not successfully%s%.64s%s", *reason ? " (" : "",
			   reason, *reason ? ")" : "");
	}
	if (strcmp(phase, "Running") == 0) {
		const struct tm_doc *cs =
			tm_doc_get_path(o, "status", "containerStatuses", (const char *)NULL);
		char names[200] = "";
		size_t nl = 0;

		if (cond_is(o, "Ready", "True"))
			return say(TM_KSTATUS_CURRENT, msg, ml, "Pod is Ready");
		for (size_t i = 0; cs && cs->type == TM_DOC_SEQ && i < cs->u.seq.n; i++) {
			const struct tm_doc *c = cs->u.seq.v[i];
			const char *name = tm_doc_string(tm_doc_map_get(c, "name"));
			const char *why =
				tm_doc_string(tm_doc_get_path(c, "state", "waiting", "reason",
							      (const char *)NULL));
			if (name && why && strcmp(why, "CrashLoopBackOff") == 0) {
				int n = snprintf(names + nl, sizeof(names) - nl, "%s%.64s",
						 nl ? "," : "", name);
				if (n > 0 && (size_t)n < sizeof(names) - nl)
					nl += (size_t)n;
			}
		}
		if (nl)
			return say(TM_KSTATUS_FAILED, msg, ml, "Containers in CrashLoop state: %s",
				   names);
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Pod is running but is not Ready");
	}
	if (strcmp(phase, "Pending") == 0) {
		const struct tm_doc *c = condition(o, "PodScheduled");
		if (c && strcmp(cond_field(c, "status"), "False") == 0 &&
		    strcmp(cond_field(c, "reason"), "Unschedulable") == 0) {
			int64_t created = tm_kstatus_parse_time(
				str_at(o, "metadata", "creationTimestamp", NULL, ""));
			if (created < 0 || now - created < SCHEDULE_WINDOW)
				return say(TM_KSTATUS_IN_PROGRESS, msg, ml,
					   "Pod has not been scheduled");
			return say(TM_KSTATUS_FAILED, msg, ml, "Pod could not be scheduled");
		}
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Pod is in the Pending phase");
	}
	if (!*phase)
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Pod phase not available");
	return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "unknown Pod phase %.64s", phase);
}

static enum tm_kstatus job(const struct tm_doc *o, char *msg, size_t ml)
{
	int64_t par = int_at(o, "spec", "parallelism", NULL, 1);
	int64_t compl = int_at(o, "spec", "completions", NULL, par);
	int64_t ok = int_at(o, "status", "succeeded", NULL, 0);
	int64_t active = int_at(o, "status", "active", NULL, 0);
	int64_t failed = int_at(o, "status", "failed", NULL, 0);
	const struct tm_doc *conds = tm_doc_get_path(o, "status", "conditions", (const char *)NULL);

	for (size_t i = 0; conds && conds->type == TM_DOC_SEQ && i < conds->u.seq.n; i++) {
		const struct tm_doc *c = conds->u.seq.v[i];
		const char *t = cond_field(c, "type");
		if (strcmp(cond_field(c, "status"), "True") != 0)
			continue;
		if (strcmp(t, "Complete") == 0)
			return say(TM_KSTATUS_CURRENT, msg, ml,
				   "Job Completed. succeeded: %lld/%lld", (long long)ok,
				   (long long)compl );
		if (strcmp(t, "Failed") == 0)
			return say(TM_KSTATUS_FAILED, msg, ml,
				   "Job Failed. failed: %lld/%lld%s%.100s%s", (long long)failed,
				   (long long)compl, *cond_field(c, "reason") ? " (" : "",
				   cond_field(c, "reason"), *cond_field(c, "reason") ? ")" : "");
		if (strcmp(t, "Suspended") == 0)
			return say(TM_KSTATUS_CURRENT, msg, ml, "Job is suspended");
	}
	if (!*str_at(o, "status", "startTime", NULL, ""))
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Job not started");
	return say(TM_KSTATUS_CURRENT, msg, ml,
		   "Job in progress. success:%lld, active: %lld, failed: %lld", (long long)ok,
		   (long long)active, (long long)failed);
}

static enum tm_kstatus service(const struct tm_doc *o, char *msg, size_t ml)
{
	if (strcmp(str_at(o, "spec", "type", NULL, "ClusterIP"), "LoadBalancer") == 0 &&
	    !*str_at(o, "spec", "clusterIP", NULL, ""))
		return say(TM_KSTATUS_IN_PROGRESS, msg, ml,
			   "ClusterIP not set. Service type: LoadBalancer");
	return say(TM_KSTATUS_CURRENT, msg, ml, "Service is ready");
}

static enum tm_kstatus crd(const struct tm_doc *o, char *msg, size_t ml)
{
	const struct tm_doc *conds = tm_doc_get_path(o, "status", "conditions", (const char *)NULL);

	for (size_t i = 0; conds && conds->type == TM_DOC_SEQ && i < conds->u.seq.n; i++) {
		const struct tm_doc *c = conds->u.seq.v[i];
		const char *t = cond_field(c, "type"), *s = cond_field(c, "status");
		if (strcmp(t, "NamesAccepted") == 0 && strcmp(s, "False") == 0)
			return say(TM_KSTATUS_FAILED, msg, ml, "%.64s: %.200s",
				   cond_field(c, "reason"), cond_field(c, "message"));
		if (strcmp(t, "Established") == 0) {
			if (strcmp(s, "False") == 0 &&
			    strcmp(cond_field(c, "reason"), "Installing") != 0)
				return say(TM_KSTATUS_FAILED, msg, ml, "%.64s: %.200s",
					   cond_field(c, "reason"), cond_field(c, "message"));
			if (strcmp(s, "True") == 0)
				return say(TM_KSTATUS_CURRENT, msg, ml, "CRD is established");
		}
	}
	return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Install in progress");
}

/* ------------------------------------------------------------ the rules */

static int is(const char *g, const char *k, const char *G, const char *K)
{
	return strcmp(g, G) == 0 && strcmp(k, K) == 0;
}

int tm_kstatus_always_ready(const char *g, const char *k)
{
	static const char *const core[] = { "ConfigMap",      "Secret",
					    "ServiceAccount", "LimitRange",
					    "ResourceQuota",  "Endpoints",
					    "PodTemplate",    NULL };
	static const char *const rbac[] = { "Role", "RoleBinding", "ClusterRole",
					    "ClusterRoleBinding", NULL };

	if (!*g) {
		for (size_t i = 0; core[i]; i++)
			if (strcmp(k, core[i]) == 0)
				return 1;
		return 0;
	}
	if (strcmp(g, "rbac.authorization.k8s.io") == 0) {
		for (size_t i = 0; rbac[i]; i++)
			if (strcmp(k, rbac[i]) == 0)
				return 1;
		return 0;
	}
	return is(g, k, "batch", "CronJob") || is(g, k, "scheduling.k8s.io", "PriorityClass") ||
	       is(g, k, "storage.k8s.io", "StorageClass") ||
	       is(g, k, "networking.k8s.io", "IngressClass") ||
	       is(g, k, "networking.k8s.io", "NetworkPolicy") ||
	       is(g, k, "node.k8s.io", "RuntimeClass") ||
	       is(g, k, "coordination.k8s.io", "Lease") ||
	       is(g, k, "admissionregistration.k8s.io", "ValidatingWebhookConfiguration") ||
	       is(g, k, "admissionregistration.k8s.io", "MutatingWebhookConfiguration");
}

enum tm_kstatus tm_kstatus_compute(const struct tm_doc *o, const char *group, const char *kind,
				   int64_t now, char *msg, size_t ml)
{
	char gbuf[256];
	const struct tm_doc *conds;
	const char *dts;

	if (msg && ml)
		msg[0] = '\0';
	if (!o || o->type != TM_DOC_MAP)
		return say(TM_KSTATUS_NOT_FOUND, msg, ml, "object not found");
	if (!now)
		now = (int64_t)time(NULL);
	if (!kind)
		kind = tm_doc_string(tm_doc_map_get(o, "kind"));
	if (!kind)
		kind = "";
	if (!group) {
		const char *av = tm_doc_string(tm_doc_map_get(o, "apiVersion"));
		const char *slash = av ? strchr(av, '/') : NULL;
		size_t n = slash ? (size_t)(slash - av) : 0;
		if (n >= sizeof(gbuf))
			n = 0;
		if (n)
			memcpy(gbuf, av, n);
		gbuf[n] = '\0';
		group = gbuf;
	}
	/* generic properties */
	dts = str_at(o, "metadata", "deletionTimestamp", NULL, "");
	if (*dts)
		return say(TM_KSTATUS_TERMINATING, msg, ml, "Resource scheduled for deletion");
	if (has_int(o, "metadata", "generation") && has_int(o, "status", "observedGeneration")) {
		int64_t g = int_at(o, "metadata", "generation", NULL, 0);
		int64_t og = int_at(o, "status", "observedGeneration", NULL, 0);
		if (g != og)
			return say(
				TM_KSTATUS_IN_PROGRESS, msg, ml,
				"%.64s generation is %lld, but latest observed generation is %lld",
				kind, (long long)g, (long long)og);
	}
	conds = tm_doc_get_path(o, "status", "conditions", (const char *)NULL);
	for (size_t i = 0; conds && conds->type == TM_DOC_SEQ && i < conds->u.seq.n; i++) {
		const struct tm_doc *c = conds->u.seq.v[i];
		const char *t = cond_field(c, "type");
		if (strcmp(cond_field(c, "status"), "True") != 0)
			continue;
		if (strcmp(t, "Reconciling") == 0)
			return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Reconciling: %.200s",
				   cond_field(c, "message"));
		if (strcmp(t, "Stalled") == 0)
			return say(TM_KSTATUS_FAILED, msg, ml, "Stalled: %.200s",
				   cond_field(c, "message"));
	}
	/* per kind */
	if (!*group) {
		if (strcmp(kind, "Service") == 0)
			return service(o, msg, ml);
		if (strcmp(kind, "Pod") == 0)
			return pod(o, now, msg, ml);
		if (strcmp(kind, "PersistentVolumeClaim") == 0)
			return pvc(o, msg, ml);
		if (strcmp(kind, "Secret") == 0 || strcmp(kind, "ConfigMap") == 0)
			return say(TM_KSTATUS_CURRENT, msg, ml, "Resource is always ready");
	} else if (strcmp(group, "apps") == 0 || strcmp(group, "extensions") == 0) {
		if (strcmp(kind, "Deployment") == 0)
			return deployment(o, msg, ml);
		if (strcmp(kind, "DaemonSet") == 0)
			return daemonset(o, msg, ml);
		if (strcmp(kind, "ReplicaSet") == 0)
			return replicaset(o, msg, ml);
		if (strcmp(kind, "StatefulSet") == 0 && strcmp(group, "apps") == 0)
			return statefulset(o, msg, ml);
	} else if (is(group, kind, "batch", "Job")) {
		return job(o, msg, ml);
	} else if (is(group, kind, "batch", "CronJob")) {
		return say(TM_KSTATUS_CURRENT, msg, ml, "Resource is always ready");
	} else if (is(group, kind, "policy", "PodDisruptionBudget")) {
		return say(TM_KSTATUS_CURRENT, msg, ml, "AllowedDisruptions has been computed.");
	} else if (is(group, kind, "apiextensions.k8s.io", "CustomResourceDefinition")) {
		return crd(o, msg, ml);
	}
	/* any other kind: the Ready condition, if there is one */
	{
		const struct tm_doc *c = condition(o, "Ready");
		if (c) {
			const char *s = cond_field(c, "status");
			if (strcmp(s, "True") == 0)
				return say(TM_KSTATUS_CURRENT, msg, ml, "Ready");
			return say(TM_KSTATUS_IN_PROGRESS, msg, ml, "Ready is %.16s: %.64s%s%.200s",
				   *s ? s : "Unknown", cond_field(c, "reason"),
				   *cond_field(c, "message") ? ": " : "", cond_field(c, "message"));
		}
	}
	return say(TM_KSTATUS_CURRENT, msg, ml, "Resource is current");
}
