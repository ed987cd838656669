/*
 * test_kstatus.c — the kstatus rules (kstatus.h): a table of status
 * documents → Current / InProgress / Failed / Terminating, and the objects
 * recorded from real API servers in ../shared/fixtures/kubernetes/replays
 * (a Job polled from created through running to BackoffLimitExceeded, a CRD
 * before and after Established, ready Deployments and Pods, a failed Pod,
 * an object being deleted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/apply/kubernetes/kstatus.h"
#include "tagmoor/doc/yaml.h"

#define REPLAYS TM_SOURCE_DIR "/../shared/fixtures/kubernetes/replays"
#define NOW 1800000000 /* 2027-01-15 */

static enum tm_kstatus status_of(const char *yaml, char *msg, size_t ml)
{
	struct tm_doc *d = NULL;
	enum tm_kstatus s;

	if (tm_yaml_parse(&d, yaml, strlen(yaml), "test", NULL) < 0)
		fail_msg("bad test YAML: %s", tm_error_last());
	s = tm_kstatus_compute(d, NULL, NULL, NOW, msg, ml);
	tm_doc_free(d);
	return s;
}

struct row {
	const char *what;
	enum tm_kstatus want;
	const char *msg; /* a part of the message */
	const char *yaml;
};

static const struct row rows[] = {
	/* generic properties first */
	{ "being deleted", TM_KSTATUS_TERMINATING, "scheduled for deletion",
	  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, deletionTimestamp: '2026-01-01T00:00:00Z'}\n" },
	{ "generation not observed", TM_KSTATUS_IN_PROGRESS,
	  "generation is 3, but latest observed generation is 2",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x, generation: 3}\nspec: {replicas: 1}\n"
	  "status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1}\n" },
	{ "Reconciling", TM_KSTATUS_IN_PROGRESS, "Reconciling: working on it",
	  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n"
	  "status: {conditions: [{type: Reconciling, status: 'True', message: working on it}]}\n" },
	{ "Stalled", TM_KSTATUS_FAILED, "Stalled: bad spec",
	  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n"
	  "status: {conditions: [{type: Stalled, status: 'True', message: bad spec}]}\n" },
	/* Deployment */
	{ "deployment available", TM_KSTATUS_CURRENT, "Deployment is available. Replicas: 2",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x, generation: 1}\nspec: {replicas: 2, "
	  "progressDeadlineSeconds: 600}\nstatus: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2,"
	  " availableReplicas: 2, conditions: [{type: Available, status: 'True'}, {type: Progressing, status: 'True',"
	  " reason: NewReplicaSetAvailable}]}\n" },
	{ "deployment too few replicas", TM_KSTATUS_IN_PROGRESS, "Replicas: 1/3",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 3}\nstatus: {replicas: 1}\n" },
	{ "deployment default replicas", TM_KSTATUS_IN_PROGRESS, "Replicas: 0/1",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n" },
	{ "deployment not available", TM_KSTATUS_IN_PROGRESS, "Available: 0/1",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1}\n"
	  "status: {replicas: 1, updatedReplicas: 1, unavailableReplicas: 1}\n" },
	{ "deployment old pods terminating", TM_KSTATUS_IN_PROGRESS, "Pending termination: 1",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1}\n"
	  "status: {replicas: 2, updatedReplicas: 1}\n" },
	{ "deployment replica set not available", TM_KSTATUS_IN_PROGRESS,
	  "ReplicaSet not Available",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1, progressDeadlineSeconds: 600}\n"
	  "status: {replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: "
	  "[{type: Available, status: 'True'}, {type: Progressing, status: 'True', reason: ReplicaSetUpdated}]}\n" },
	{ "deployment without deadline needs no Progressing", TM_KSTATUS_IN_PROGRESS,
	  "Deployment not Available",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1}\n"
	  "status: {replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1}\n" },
	{ "deployment past its deadline", TM_KSTATUS_FAILED, "Progress deadline exceeded",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1}\n"
	  "status: {replicas: 1, updatedReplicas: 1, conditions: [{type: Progressing, status: 'False', "
	  "reason: ProgressDeadlineExceeded, message: ReplicaSet \"x-1\" has timed out progressing.}]}\n" },
	{ "deployment scaled to zero", TM_KSTATUS_CURRENT, "available",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 0, progressDeadlineSeconds: 600}\n"
	  "status: {conditions: [{type: Available, status: 'True'}, {type: Progressing, status: 'True', "
	  "reason: NewReplicaSetAvailable}]}\n" },
	/* StatefulSet */
	{ "statefulset ready", TM_KSTATUS_CURRENT, "All replicas scheduled",
	  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: 2}\nstatus: {replicas: 2, "
	  "readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2, currentRevision: r1, updateRevision: r1}\n" },
	{ "statefulset rolling", TM_KSTATUS_IN_PROGRESS, "Waiting for updated revision",
	  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: 2}\nstatus: {replicas: 2, "
	  "readyReplicas: 2, currentReplicas: 2, updatedReplicas: 1, currentRevision: r1, updateRevision: r2}\n" },
	{ "statefulset not ready", TM_KSTATUS_IN_PROGRESS, "Ready: 1/2",
	  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: 2}\nstatus: {replicas: 2, "
	  "readyReplicas: 1}\n" },
	{ "statefulset OnDelete", TM_KSTATUS_CURRENT, "ondelete",
	  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: 2, updateStrategy: {type: OnDelete}}\n" },
	{ "statefulset partition done", TM_KSTATUS_CURRENT, "Partition rollout complete",
	  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: 3, updateStrategy: {type: "
	  "RollingUpdate, rollingUpdate: {partition: 2}}}\nstatus: {replicas: 3, readyReplicas: 3, updatedReplicas: 1}\n" },
	{ "statefulset partition pending", TM_KSTATUS_IN_PROGRESS, "updated: 0/1",
	  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: 3, updateStrategy: {type: "
	  "RollingUpdate, rollingUpdate: {partition: 2}}}\nstatus: {replicas: 3, readyReplicas: 3, updatedReplicas: 0}\n" },
	/* DaemonSet */
	{ "daemonset ready", TM_KSTATUS_CURRENT, "Replicas: 3",
	  "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x, generation: 1}\nstatus: {observedGeneration: 1, "
	  "desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3, "
	  "numberReady: 3}\n" },
	{ "daemonset not observed", TM_KSTATUS_IN_PROGRESS, "observedGeneration not found",
	  "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x, generation: 1}\n" },
	{ "daemonset no desired number", TM_KSTATUS_IN_PROGRESS,
	  "Missing .status.desiredNumberScheduled",
	  "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x, generation: 1}\nstatus: {observedGeneration: 1}\n" },
	{ "daemonset unavailable", TM_KSTATUS_IN_PROGRESS, "Available: 2/3",
	  "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x, generation: 1}\nstatus: {observedGeneration: 1, "
	  "desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2}\n" },
	/* ReplicaSet */
	{ "replicaset ready", TM_KSTATUS_CURRENT, "ReplicaSet is available",
	  "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: x}\nspec: {replicas: 1}\nstatus: {replicas: 1, "
	  "fullyLabeledReplicas: 1, readyReplicas: 1, availableReplicas: 1}\n" },
	{ "replicaset failure", TM_KSTATUS_IN_PROGRESS, "Replica Failure",
	  "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: x}\nspec: {replicas: 1}\n"
	  "status: {conditions: [{type: ReplicaFailure, status: 'True'}]}\n" },
	/* Job */
	{ "job not started", TM_KSTATUS_IN_PROGRESS, "Job not started",
	  "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {}\n" },
	{ "job running", TM_KSTATUS_CURRENT, "Job in progress",
	  "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nstatus: {startTime: '2026-01-01T00:00:00Z', active: 1}\n" },
	{ "job complete", TM_KSTATUS_CURRENT, "Job Completed. succeeded: 1/1",
	  "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nstatus: {succeeded: 1, conditions: [{type: Complete, "
	  "status: 'True'}]}\n" },
	{ "job failed", TM_KSTATUS_FAILED, "Job Failed",
	  "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {completions: 2}\nstatus: {failed: 1, "
	  "conditions: [{type: Failed, status: 'True', reason: BackoffLimitExceeded}]}\n" },
	{ "job suspended", TM_KSTATUS_CURRENT, "suspended",
	  "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nstatus: {conditions: [{type: Suspended, status: 'True'}]}\n" },
	/* Pod */
	{ "pod ready", TM_KSTATUS_CURRENT, "Pod is Ready",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {phase: Running, conditions: [{type: Ready, status: 'True'}]}\n" },
	{ "pod running not ready", TM_KSTATUS_IN_PROGRESS, "not Ready",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {phase: Running, conditions: [{type: Ready, status: 'False'}]}\n" },
	{ "pod crash looping", TM_KSTATUS_FAILED, "CrashLoop state: app",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {phase: Running, containerStatuses: [{name: side, "
	  "state: {running: {}}}, {name: app, state: {waiting: {reason: CrashLoopBackOff}}}]}\n" },
	{ "pod succeeded", TM_KSTATUS_CURRENT, "completed successfully",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {phase: Succeeded}\n" },
	{ "pod failed (stricter than kstatus)", TM_KSTATUS_FAILED, "not successfully",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {phase: Failed}\n" },
	{ "pod pending", TM_KSTATUS_IN_PROGRESS, "Pending phase",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {phase: Pending}\n" },
	{ "pod just unschedulable", TM_KSTATUS_IN_PROGRESS, "not been scheduled",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, creationTimestamp: '2027-01-15T08:00:00Z'}\n"
	  "status: {phase: Pending, conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable}]}\n" },
	{ "pod long unschedulable", TM_KSTATUS_FAILED, "could not be scheduled",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, creationTimestamp: '2026-01-01T00:00:00Z'}\n"
	  "status: {phase: Pending, conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable}]}\n" },
	{ "pod not observed", TM_KSTATUS_IN_PROGRESS, "phase not available",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n" },
	/* Service, PVC, PDB, CRD */
	{ "service", TM_KSTATUS_CURRENT, "Service is ready",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ClusterIP, clusterIP: 10.0.0.1}\n" },
	{ "load balancer without IP", TM_KSTATUS_IN_PROGRESS, "ClusterIP not set",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: LoadBalancer}\n" },
	{ "pvc pending", TM_KSTATUS_IN_PROGRESS, "phase: Pending",
	  "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\nstatus: {phase: Pending}\n" },
	{ "pvc bound", TM_KSTATUS_CURRENT, "Bound",
	  "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\nstatus: {phase: Bound}\n" },
	{ "pdb", TM_KSTATUS_CURRENT, "AllowedDisruptions",
	  "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x, generation: 1}\nstatus: {observedGeneration: 1}\n" },
	{ "crd installing", TM_KSTATUS_IN_PROGRESS, "Install in progress",
	  "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\n" },
	{ "crd names rejected", TM_KSTATUS_FAILED, "NameConflict",
	  "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\nstatus: {conditions: "
	  "[{type: NamesAccepted, status: 'False', reason: NameConflict, message: taken}]}\n" },
	{ "crd established", TM_KSTATUS_CURRENT, "established",
	  "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\nstatus: {conditions: "
	  "[{type: NamesAccepted, status: 'True'}, {type: Established, status: 'True'}]}\n" },
	/* anything else */
	{ "configmap", TM_KSTATUS_CURRENT, "always ready",
	  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n" },
	{ "custom ready", TM_KSTATUS_CURRENT, "Ready",
	  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nstatus: {conditions: [{type: Ready, status: 'True'}]}\n" },
	{ "custom not ready", TM_KSTATUS_IN_PROGRESS, "Ready is False: Waiting: for the database",
	  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nstatus: {conditions: [{type: Ready, "
	  "status: 'False', reason: Waiting, message: for the database}]}\n" },
	{ "custom without conditions", TM_KSTATUS_CURRENT, "Resource is current",
	  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {size: 3}\n" },
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char msg[256];
		enum tm_kstatus s = status_of(rows[i].yaml, msg, sizeof(msg));
		if (s != rows[i].want || !strstr(msg, rows[i].msg))
			fail_msg("%s: got %s \"%s\", want %s \"%s\"", rows[i].what,
				 tm_kstatus_name(s), msg, tm_kstatus_name(rows[i].want),
				 rows[i].msg);
	}
	assert_int_equal(tm_kstatus_compute(NULL, NULL, NULL, NOW, NULL, 0), TM_KSTATUS_NOT_FOUND);
	assert_string_equal(tm_kstatus_name(TM_KSTATUS_IN_PROGRESS), "InProgress");
}

/* ------------------------------------------------------------ replays */

static struct tm_doc *replay(const char *file)
{
	char p[512];
	struct tm_buf b;
	struct tm_doc *d = NULL;
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;

	snprintf(p, sizeof(p), "%s/%s", REPLAYS, file);
	tm_buf_init(&b, 1 << 20);
	assert_int_equal(tm_file_read(&b, p, 1 << 19), 0);
	assert_int_equal(tm_json_parse(&d, b.ptr, b.len, &lim), 0);
	tm_buf_free(&b);
	return d;
}

/* The response body of entry i, parsed. */
static struct tm_doc *answer(const struct tm_doc *rp, size_t i)
{
	const char *body = tm_doc_string(tm_doc_map_get(tm_doc_seq_at(rp, i), "response_body"));
	struct tm_doc *d = NULL;

	assert_non_null(body);
	assert_int_equal(tm_json_parse(&d, body, strlen(body), NULL), 0);
	return d;
}

static enum tm_kstatus of(const struct tm_doc *obj, const char *g, const char *k, char *msg)
{
	return tm_kstatus_compute(obj, g, k, NOW, msg, 256);
}

static void test_replay_job(void **state)
{
	struct tm_doc *rp = replay("job-create.json"), *o;
	char msg[256];

	/* created: not started */
	o = answer(rp, 0);
	assert_int_equal(of(o, NULL, NULL, msg), TM_KSTATUS_IN_PROGRESS);
	assert_string_equal(msg, "Job not started");
	tm_doc_free(o);
	/* running */
	o = answer(rp, 2);
	assert_int_equal(of(o, NULL, NULL, msg), TM_KSTATUS_CURRENT);
	assert_non_null(strstr(msg, "active: 1"));
	tm_doc_free(o);
	/* BackoffLimitExceeded */
	o = answer(rp, 6);
	assert_int_equal(of(o, NULL, NULL, msg), TM_KSTATUS_FAILED);
	assert_non_null(strstr(msg, "BackoffLimitExceeded"));
	tm_doc_free(o);
	/* its pod failed (items of a typed list carry no kind) */
	o = answer(rp, 7);
	assert_int_equal(of(tm_doc_seq_at(tm_doc_map_get(o, "items"), 0), "", "Pod", msg),
			 TM_KSTATUS_FAILED);
	tm_doc_free(o);
	/* the delete answer: being deleted */
	o = answer(rp, 8);
	assert_int_equal(of(o, NULL, NULL, msg), TM_KSTATUS_TERMINATING);
	tm_doc_free(o);
	tm_doc_free(rp);
}

static void test_replay_crd(void **state)
{
	struct tm_doc *rp = replay("custom_resource_definition-test.json"), *o;
	char msg[256];

	o = answer(rp, 0);
	assert_int_equal(of(o, NULL, NULL, msg), TM_KSTATUS_IN_PROGRESS);
	tm_doc_free(o);
	o = answer(rp, 2);
	assert_int_equal(of(o, NULL, NULL, msg), TM_KSTATUS_CURRENT);
	assert_string_equal(msg, "CRD is established");
	tm_doc_free(o);
	/* a custom resource without conditions */
	o = answer(rp, 3);
	assert_int_equal(of(o, NULL, NULL, msg), TM_KSTATUS_CURRENT);
	tm_doc_free(o);
	tm_doc_free(rp);
}

static void test_replay_lists(void **state)
{
	struct tm_doc *rp, *o;
	const struct tm_doc *items;
	char msg[256];

	rp = replay("deployment-list.json");
	o = answer(rp, 0);
	items = tm_doc_map_get(o, "items");
	assert_true(tm_doc_len(items) >= 1);
	for (size_t i = 0; i < tm_doc_len(items); i++) {
		assert_int_equal(of(tm_doc_seq_at(items, i), "apps", "Deployment", msg),
				 TM_KSTATUS_CURRENT);
		assert_non_null(strstr(msg, "Deployment is available"));
	}
	tm_doc_free(o);
	tm_doc_free(rp);
	rp = replay("pod-list.json");
	o = answer(rp, 0);
	items = tm_doc_map_get(o, "items");
	assert_true(tm_doc_len(items) >= 5);
	for (size_t i = 0; i < tm_doc_len(items); i++)
		assert_int_equal(of(tm_doc_seq_at(items, i), "", "Pod", msg), TM_KSTATUS_CURRENT);
	tm_doc_free(o);
	tm_doc_free(rp);
}

static void test_always_ready(void **state)
{
	assert_true(tm_kstatus_always_ready("", "ConfigMap"));
	assert_true(tm_kstatus_always_ready("", "Secret"));
	assert_true(tm_kstatus_always_ready("rbac.authorization.k8s.io", "ClusterRole"));
	assert_true(tm_kstatus_always_ready("storage.k8s.io", "StorageClass"));
	assert_false(tm_kstatus_always_ready("apps", "Deployment"));
	assert_false(tm_kstatus_always_ready("", "Namespace"));
	assert_false(tm_kstatus_always_ready("example.com", "ConfigMap"));
}

static void test_parse_time(void **state)
{
	assert_int_equal(tm_kstatus_parse_time("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(tm_kstatus_parse_time("2026-05-13T05:47:15Z"), 1778651235);
	assert_int_equal(tm_kstatus_parse_time("2026-05-13T05:47:15.123456Z"), 1778651235);
	assert_int_equal(tm_kstatus_parse_time("2026-05-13T07:47:15+02:00"), 1778651235);
	assert_int_equal(tm_kstatus_parse_time("2000-02-29T00:00:00Z"), 951782400);
	assert_int_equal(tm_kstatus_parse_time("2026-05-13 05:47:15Z"), -1);
	assert_int_equal(tm_kstatus_parse_time("2026-05-13T05:47:15"), -1);
	assert_int_equal(tm_kstatus_parse_time("2026-13-13T05:47:15Z"), -1);
	assert_int_equal(tm_kstatus_parse_time("2026-05-13T05:47:15.Z"), -1);
	assert_int_equal(tm_kstatus_parse_time(""), -1);
	assert_int_equal(tm_kstatus_parse_time(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),        cmocka_unit_test(test_replay_job),
		cmocka_unit_test(test_replay_crd),   cmocka_unit_test(test_replay_lists),
		cmocka_unit_test(test_always_ready), cmocka_unit_test(test_parse_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
