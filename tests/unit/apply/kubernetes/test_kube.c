/*
 * test_kube.c — the Kubernetes applier's parts that need no API server:
 * object ids, owner and lease names, the staging order (Flux's), discovery
 * of the real documents in ../shared/fixtures/kubernetes/discovery
 * (aggregated v2 and v2beta1 chosen by Content-Type, legacy lists, stale
 * groups), API error messages from the recorded replays, request paths, and
 * parse(): ids, labels, stripped fields, refusals and hostile files.
 * The applier against a server: tests/integration/test_kube_apply.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/doc/yaml.h"

#define FIXTURES TM_SOURCE_DIR "/../shared/fixtures/kubernetes"
#define AGG_V2 "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#define AGG_V2BETA1 "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

static const struct tm_applier *A = &tm_kube_applier;

static char *slurp(const char *path, size_t *len)
{
	struct tm_buf b;
	tm_buf_init(&b, 8 << 20);
	if (tm_file_read(&b, path, 4 << 20) < 0)
		fail_msg("cannot read %s: %s", path, tm_error_last());
	if (len)
		*len = b.len;
	return tm_buf_detach(&b);
}

static char *fixture(const char *name, size_t *len)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", FIXTURES, name);
	return slurp(p, len);
}

/* The response_body of entry i of a replay file (malloc'd), and its status. */
static char *replay_body(const char *file, size_t i, long *status)
{
	char p[256], *text, *out;
	size_t len;
	struct tm_doc *d = NULL;
	const struct tm_doc *e, *b;

	snprintf(p, sizeof(p), "replays/%s", file);
	text = fixture(p, &len);
	assert_int_equal(tm_json_parse(&d, text, len, NULL), 0);
	e = tm_doc_seq_at(d, i);
	assert_non_null(e);
	b = tm_doc_map_get(e, "response_body");
	assert_non_null(tm_doc_string(b));
	if (status)
		*status = (long)tm_doc_map_get(e, "response_status_code")->u.i;
	out = strdup(tm_doc_string(b));
	tm_doc_free(d);
	free(text);
	return out;
}

/* ------------------------------------------------------------ ids */

static void test_ids(void **state)
{
	struct tm_kube_ref r;
	char too_long[600];

	assert_int_equal(tm_kube_id_parse(&r, "apps/Deployment/default/web"), 0);
	assert_string_equal(r.group, "apps");
	assert_string_equal(r.kind, "Deployment");
	assert_string_equal(r.ns, "default");
	assert_string_equal(r.name, "web");
	assert_int_equal(tm_kube_id_parse(&r, "/Namespace//demo"), 0);
	assert_string_equal(r.group, "");
	assert_string_equal(r.ns, "");
	assert_int_equal(
		tm_kube_id_parse(&r,
				 "apiextensions.k8s.io/CustomResourceDefinition//foos.example.com"),
		0);
	assert_string_equal(r.name, "foos.example.com");
	assert_int_equal(tm_kube_id_parse(&r, "web.service"), TM_EPARSE);
	assert_int_equal(tm_kube_id_parse(&r, "a/B/c"), TM_EPARSE);
	assert_int_equal(tm_kube_id_parse(&r, "a/B/c/d/e"), TM_EPARSE);
	assert_int_equal(tm_kube_id_parse(&r, "a//c/d"), TM_EPARSE);
	assert_int_equal(tm_kube_id_parse(&r, "a/B/c/"), TM_EPARSE);
	memset(too_long, 'x', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	memcpy(too_long, "/ConfigMap/default/", 19);
	assert_int_equal(tm_kube_id_parse(&r, too_long), TM_EPARSE);
}

static void test_owner_and_lease(void **state)
{
	struct tm_config a, b, c;
	char oa[17], ob[17], oc[17], la[32], lb[32];

	memset(&a, 0, sizeof(a));
	a.source.url = "https://git.example.com/fleet/config.git";
	a.source.ref = "refs/tags/stable";
	a.agent.device_id = "edge-1";
	b = a;
	b.agent.device_id = "edge-2"; /* another node of the same cluster */
	b.source.url = "https://user:token@git.example.com/fleet/config.git";
	c = a;
	c.source.url = "https://git.example.com/other/config.git";
	assert_int_equal(tm_kube_owner(oa, &a), 0);
	assert_int_equal(tm_kube_owner(ob, &b), 0);
	assert_int_equal(tm_kube_owner(oc, &c), 0);
	assert_int_equal(strlen(oa), 16);
	assert_string_equal(oa, ob);     /* node and credentials do not matter */
	assert_string_not_equal(oa, oc); /* another repository is another owner */
	assert_int_equal(tm_kube_lease_name(la, &a), 0);
	assert_int_equal(tm_kube_lease_name(lb, &b), 0);
	assert_string_equal(la, lb);
	assert_int_equal(strncmp(la, "tagmoor-", 8), 0);
	assert_int_equal(strlen(la), 24);
	b.source.ref = "refs/tags/canary";
	assert_int_equal(tm_kube_lease_name(lb, &b), 0);
	assert_string_not_equal(la, lb);
}

static void test_scope(void **state)
{
	assert_int_equal(tm_kube_builtin_scope("", "Namespace"), 1);
	assert_int_equal(tm_kube_builtin_scope("rbac.authorization.k8s.io", "ClusterRole"), 1);
	assert_int_equal(tm_kube_builtin_scope("apiextensions.k8s.io", "CustomResourceDefinition"),
			 1);
	assert_int_equal(tm_kube_builtin_scope("", "ConfigMap"), 0);
	assert_int_equal(tm_kube_builtin_scope("apps", "Deployment"), 0);
	assert_int_equal(tm_kube_builtin_scope("rbac.authorization.k8s.io", "Role"), 0);
	assert_int_equal(tm_kube_builtin_scope("example.com", "Foo"), -1);
	assert_int_equal(tm_kube_builtin_scope("", "Deployment"), -1);
}

/* ------------------------------------------------------------ order */

static void test_order(void **state)
{
	static const char *const ids[] = {
		"admissionregistration.k8s.io/ValidatingWebhookConfiguration//v-hook",
		"apps/Deployment/app/web",
		"example.com/Widget/app/w1",
		"/ConfigMap/app/cfg",
		"networking.k8s.io/IngressClass//nginx",
		"/Namespace//app",
		"admissionregistration.k8s.io/MutatingWebhookConfiguration//m-hook",
		"rbac.authorization.k8s.io/ClusterRole//reader",
		"apiextensions.k8s.io/CustomResourceDefinition//widgets.example.com",
		"/Service/app/web",
		"storage.k8s.io/StorageClass//fast",
		"/ServiceAccount/app/web",
		"apps/Deployment/app/api",
		"rbac.authorization.k8s.io/ClusterRoleBinding//reader",
		"batch/Job/app/migrate",
		"not an id",
	};
	static const char *const want[] = {
		/* definitions: CRDs, Namespaces, ClusterRoles (waited on) */
		"apiextensions.k8s.io/CustomResourceDefinition//widgets.example.com",
		"/Namespace//app",
		"rbac.authorization.k8s.io/ClusterRole//reader",
		/* classes */
		"storage.k8s.io/StorageClass//fast",
		"networking.k8s.io/IngressClass//nginx",
		/* the rest in Flux's kind order; unknown kinds; webhooks last */
		"/ServiceAccount/app/web",
		"rbac.authorization.k8s.io/ClusterRoleBinding//reader",
		"/ConfigMap/app/cfg",
		"/Service/app/web",
		"apps/Deployment/app/api",
		"apps/Deployment/app/web",
		"batch/Job/app/migrate",
		"example.com/Widget/app/w1",
		"admissionregistration.k8s.io/MutatingWebhookConfiguration//m-hook",
		"admissionregistration.k8s.io/ValidatingWebhookConfiguration//v-hook",
		"not an id",
	};
	struct tm_objset set = { 0 };
	size_t n = sizeof(ids) / sizeof(ids[0]), order[32];

	for (size_t i = 0; i < n; i++)
		assert_int_equal(tm_objset_add(&set, ids[i], "x", "", 0, NULL), 0);
	assert_int_equal(tm_kube_apply_order(order, &set), 0);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(set.v[order[i]].id, want[i]);
	tm_objset_free(&set, NULL);

	assert_int_equal(tm_kube_stage("apiextensions.k8s.io", "CustomResourceDefinition"),
			 TM_KUBE_STAGE_DEFINITIONS);
	assert_int_equal(tm_kube_stage("", "Namespace"), TM_KUBE_STAGE_DEFINITIONS);
	assert_int_equal(tm_kube_stage("example.com", "Namespace"), TM_KUBE_STAGE_RESOURCES);
	assert_int_equal(tm_kube_stage("rbac.authorization.k8s.io", "ClusterRole"),
			 TM_KUBE_STAGE_DEFINITIONS);
	assert_int_equal(tm_kube_stage("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
			 TM_KUBE_STAGE_CLASSES);
	assert_int_equal(tm_kube_stage("", "Class"), TM_KUBE_STAGE_CLASSES);
	assert_int_equal(tm_kube_stage("apps", "Deployment"), TM_KUBE_STAGE_RESOURCES);
	assert_true(tm_kube_kind_rank("CustomResourceDefinition") < tm_kube_kind_rank("Namespace"));
	assert_true(tm_kube_kind_rank("PodDisruptionBudget") < tm_kube_kind_rank("Widget"));
	assert_true(tm_kube_kind_rank("Widget") <
		    tm_kube_kind_rank("MutatingWebhookConfiguration"));
	assert_true(tm_kube_kind_rank("MutatingWebhookConfiguration") <
		    tm_kube_kind_rank("ValidatingWebhookConfiguration"));
}

/* ------------------------------------------------------------ discovery */

static void expect_res(const struct tm_kube_discovery *d, const char *g, const char *v,
		       const char *k, const char *resource, int namespaced)
{
	struct tm_kube_resource r;

	if (tm_kube_discovery_find(d, g, v, k, &r) != 0)
		fail_msg("%s/%s %s not found", g, v, k);
	assert_string_equal(r.resource, resource);
	assert_int_equal(r.namespaced, namespaced);
}

static void test_discovery_aggregated(void **state)
{
	struct tm_kube_discovery *d;
	size_t len;
	char *body = fixture("discovery/aggregated_v2.json", &len);
	struct tm_kube_resource r;
	int agg = -1;

	/* v2, as the API server labels it */
	assert_int_equal(tm_kube_discovery_new(&d), 0);
	assert_int_equal(tm_kube_discovery_add_root(d, AGG_V2, body, len, 0, &agg), 0);
	assert_int_equal(agg, 1);
	assert_true(tm_kube_discovery_count(d) > 60);
	expect_res(d, "apps", "v1", "Deployment", "deployments", 1);
	expect_res(d, "rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", 0);
	expect_res(d, "apiextensions.k8s.io", "v1", "CustomResourceDefinition",
		   "customresourcedefinitions", 0);
	expect_res(d, "coordination.k8s.io", "v1", "Lease", "leases", 1);
	expect_res(d, "networking.k8s.io", "v1", "IngressClass", "ingressclasses", 0);
	assert_int_equal(tm_kube_discovery_gv_state(d, "apps", "v1"), 2);
	assert_int_equal(tm_kube_discovery_find(d, "apps", "v1", "Deploymentx", NULL),
			 TM_ENOTFOUND);
	assert_int_equal(tm_kube_discovery_find(d, "apps", "v1beta1", "Deployment", NULL),
			 TM_ENOTFOUND);
	/* the preferred (first) version of a group */
	assert_int_equal(tm_kube_discovery_find_kind(d, "autoscaling", "HorizontalPodAutoscaler",
						     &r),
			 0);
	assert_string_equal(r.version, "v2");
	/* subresources are not kinds */
	assert_int_equal(tm_kube_discovery_find(d, "apps", "v1", "Scale", NULL), TM_ENOTFOUND);
	tm_kube_discovery_free(d);

	/* the same document labelled v2beta1 is read the same way */
	assert_int_equal(tm_kube_discovery_new(&d), 0);
	assert_int_equal(tm_kube_discovery_add_root(d, AGG_V2BETA1, body, len, 0, &agg), 0);
	assert_int_equal(agg, 1);
	expect_res(d, "batch", "v1", "Job", "jobs", 1);
	tm_kube_discovery_free(d);

	/* the Content-Type decides, not the body: plain JSON is the legacy list */
	assert_int_equal(tm_kube_discovery_new(&d), 0);
	assert_int_equal(tm_kube_discovery_add_root(d, "application/json", body, len, 0, &agg),
			 TM_EAPPLY);
	assert_int_equal(agg, 0);
	assert_non_null(strstr(tm_error_last(), "APIGroupList"));
	/* a mangled parameter is not aggregated either */
	assert_int_equal(
		tm_kube_discovery_add_root(
			d, "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
			body, len, 0, &agg),
		TM_EAPPLY);
	assert_int_equal(agg, 0);
	tm_kube_discovery_free(d);
	free(body);
}

static void test_discovery_stale_and_core(void **state)
{
	static const char stale[] =
		"{\"kind\":\"APIGroupDiscoveryList\",\"apiVersion\":\"apidiscovery.k8s.io/v2\",\"items\":["
		"{\"metadata\":{\"name\":\"metrics.k8s.io\"},\"versions\":[{\"version\":\"v1beta1\",\"freshness\":\"Stale\","
		"\"resources\":[{\"resource\":\"pods\",\"responseKind\":{\"group\":\"\",\"version\":\"\",\"kind\":\"PodMetrics\"},"
		"\"scope\":\"Namespaced\"}]}]},"
		"{\"metadata\":{\"name\":\"example.com\"},\"versions\":[{\"version\":\"v1\",\"freshness\":\"Current\","
		"\"resources\":[{\"resource\":\"widgets\",\"responseKind\":{\"group\":\"\",\"version\":\"\",\"kind\":\"Widget\"},"
		"\"scope\":\"Cluster\"}]}]}]}";
	/* /api aggregated: the core group has no name */
	static const char core[] =
		"{\"kind\":\"APIGroupDiscoveryList\",\"apiVersion\":\"apidiscovery.k8s.io/v2\",\"items\":[{\"metadata\":{},"
		"\"versions\":[{\"version\":\"v1\",\"resources\":[{\"resource\":\"configmaps\",\"responseKind\":"
		"{\"group\":\"\",\"version\":\"\",\"kind\":\"ConfigMap\"},\"scope\":\"Namespaced\"},{\"resource\":"
		"\"namespaces\",\"responseKind\":{\"group\":\"\",\"version\":\"\",\"kind\":\"Namespace\"},\"scope\":\"Cluster\"}]}]}]}";
	struct tm_kube_discovery *d;
	int agg;

	assert_int_equal(tm_kube_discovery_new(&d), 0);
	assert_int_equal(tm_kube_discovery_add_root(d, AGG_V2, stale, strlen(stale), 0, &agg), 0);
	assert_int_equal(tm_kube_discovery_gv_state(d, "metrics.k8s.io", "v1beta1"), -1);
	assert_int_equal(tm_kube_discovery_find(d, "metrics.k8s.io", "v1beta1", "PodMetrics", NULL),
			 TM_ENOTFOUND);
	expect_res(d, "example.com", "v1", "Widget", "widgets", 0);
	assert_int_equal(tm_kube_discovery_add_root(d, AGG_V2, core, strlen(core), 1, &agg), 0);
	expect_res(d, "", "v1", "ConfigMap", "configmaps", 1);
	expect_res(d, "", "v1", "Namespace", "namespaces", 0);
	tm_kube_discovery_clear(d);
	assert_int_equal(tm_kube_discovery_count(d), 0);
	assert_int_equal(tm_kube_discovery_gv_state(d, "example.com", "v1"), 0);
	tm_kube_discovery_free(d);
}

static void test_discovery_legacy(void **state)
{
	static const char *const lists[] = {
		"api__v1.json",
		"apis__apps__v1.json",
		"apis__batch__v1.json",
		"apis__rbac.authorization.k8s.io__v1.json",
		"apis__apiextensions.k8s.io__v1.json",
		"apis__networking.k8s.io__v1.json",
		"apis__coordination.k8s.io__v1.json",
		"apis__storage.k8s.io__v1.json",
		"apis__policy__v1.json",
		"apis__admissionregistration.k8s.io__v1.json",
		"apis__autoscaling__v2.json",
	};
	struct tm_kube_discovery *d;
	size_t len;
	char *body;
	int agg = -1;

	assert_int_equal(tm_kube_discovery_new(&d), 0);
	body = fixture("discovery/api.json", &len);
	assert_int_equal(tm_kube_discovery_add_root(d, "application/json", body, len, 1, &agg), 0);
	assert_int_equal(agg, 0);
	free(body);
	assert_int_equal(tm_kube_discovery_gv_state(d, "", "v1"), 1);
	body = fixture("discovery/apis.json", &len);
	assert_int_equal(tm_kube_discovery_add_root(d, "application/json", body, len, 0, &agg), 0);
	free(body);
	/* listed, resources not loaded yet */
	assert_int_equal(tm_kube_discovery_gv_state(d, "apps", "v1"), 1);
	assert_int_equal(tm_kube_discovery_gv_state(d, "autoscaling", "v2"), 1);
	assert_int_equal(tm_kube_discovery_gv_state(d, "example.com", "v1"), 0);
	assert_int_equal(tm_kube_discovery_count(d), 0);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		char p[256];
		snprintf(p, sizeof(p), "discovery/%s", lists[i]);
		body = fixture(p, &len);
		assert_int_equal(tm_kube_discovery_add_resource_list(d, body, len), 0);
		free(body);
	}
	assert_int_equal(tm_kube_discovery_gv_state(d, "apps", "v1"), 2);
	expect_res(d, "", "v1", "ConfigMap", "configmaps", 1);
	expect_res(d, "", "v1", "Namespace", "namespaces", 0);
	expect_res(d, "", "v1", "PersistentVolume", "persistentvolumes", 0);
	expect_res(d, "apps", "v1", "StatefulSet", "statefulsets", 1);
	expect_res(d, "batch", "v1", "CronJob", "cronjobs", 1);
	expect_res(d, "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding",
		   "clusterrolebindings", 0);
	expect_res(d, "admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
		   "validatingwebhookconfigurations", 0);
	/* "pods/log" and the like are subresources, not kinds */
	assert_int_equal(tm_kube_discovery_find(d, "", "v1", "Eviction", NULL), TM_ENOTFOUND);
	/* a group version that failed is remembered as failed */
	assert_int_equal(tm_kube_discovery_mark_failed(d, "metrics.k8s.io", "v1beta1"), 0);
	assert_int_equal(tm_kube_discovery_gv_state(d, "metrics.k8s.io", "v1beta1"), -1);
	/* garbage */
	assert_int_equal(tm_kube_discovery_add_resource_list(d, "{}", 2), TM_EAPPLY);
	assert_int_equal(tm_kube_discovery_add_resource_list(d, "nope", 4), TM_EAPPLY);
	tm_kube_discovery_free(d);

	/* the /apis answer recorded from a real 1.35 server */
	assert_int_equal(tm_kube_discovery_new(&d), 0);
	body = replay_body("api_versions-list.json", 0, NULL);
	assert_int_equal(tm_kube_discovery_add_root(d, "application/json", body, strlen(body), 0,
						    &agg),
			 0);
	assert_int_equal(tm_kube_discovery_gv_state(d, "apps", "v1"), 1);
	assert_int_equal(tm_kube_discovery_gv_state(d, "coordination.k8s.io", "v1"), 1);
	free(body);
	tm_kube_discovery_free(d);
}

/* ------------------------------------------------------------ API errors */

static void expect_msg(long st, const char *body, const char *want)
{
	char m[900];

	tm_kube_status_message(m, sizeof(m), st, body, body ? strlen(body) : 0);
	if (!strstr(m, want))
		fail_msg("message \"%s\" lacks \"%s\"", m, want);
	for (const char *p = m; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
}

static void test_status_messages(void **state)
{
	char *b;
	long st;

	/* recorded 422s with causes (a real 1.36 server) */
	b = replay_body("custom_resource_definition-test.json", 11, &st);
	assert_int_equal(st, 422);
	expect_msg(
		st, b,
		"422 Invalid: FooBar.k8s-openapi-tests-custom-resource-definition.com \"fb3\" is invalid: "
		"spec.prop2: Required value");
	free(b);
	b = replay_body("custom_resource_definition-test.json", 13, &st);
	expect_msg(st, b, "spec.prop4 in body must be of type integer,string");
	free(b);
	/* a cause the message does not carry is appended */
	expect_msg(
		422,
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Deployment.apps "
		"\\\"web\\\" is invalid\",\"reason\":\"Invalid\",\"details\":{\"causes\":[{\"reason\":"
		"\"FieldValueRequired\",\"message\":\"Required value\",\"field\":\"spec.template.spec.containers[0].image\"}]},"
		"\"code\":422}",
		"422 Invalid: Deployment.apps \"web\" is invalid (spec.template.spec.containers[0].image: Required value)");
	/* server-side apply conflict, as the API server words it */
	expect_msg(
		409,
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
		"\"Apply failed with 1 conflict: conflict with \\\"kubectl\\\": .data.mode\",\"reason\":\"Conflict\","
		"\"details\":{\"causes\":[{\"reason\":\"FieldManagerConflict\",\"message\":\"conflict with \\\"kubectl\\\"\","
		"\"field\":\".data.mode\"}]},\"code\":409}",
		"409 Conflict: Apply failed with 1 conflict: conflict with \"kubectl\": .data.mode");
	expect_msg(
		403,
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
		"\"configmaps \\\"x\\\" is forbidden: User \\\"u\\\" cannot patch resource \\\"configmaps\\\" in API group "
		"\\\"\\\" in the namespace \\\"default\\\"\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"x\",\"kind\":"
		"\"configmaps\"},\"code\":403}",
		"403 Forbidden: configmaps \"x\" is forbidden: User \"u\" cannot patch");
	expect_msg(
		404,
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
		"\"the server could not find the requested resource\",\"reason\":\"NotFound\",\"details\":{},\"code\":404}",
		"404 NotFound: the server could not find the requested resource");
	expect_msg(
		401,
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
		"\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}",
		"credentials");
	/* not a Status: the HTTP status and the start of the body, one line */
	expect_msg(502, "<html>\n<b>Bad Gateway</b></html>",
		   "502 ServerError: <html> <b>Bad Gateway");
	expect_msg(500, NULL, "500 ServerError: (no body)");
	/* a deleted object's Status is not an error but must not crash */
	b = replay_body("custom_resource_definition-test.json", 9, &st);
	expect_msg(st, b, "200");
	free(b);
	/* a tiny buffer truncates */
	{
		char m[8];
		tm_kube_status_message(m, sizeof(m), 404, "x", 1);
		assert_int_equal(strlen(m), 7);
	}
}

static void test_paths(void **state)
{
	struct tm_kube_resource r = { "apps", "v1", "Deployment", "deployments", 1 };
	char p[256];

	assert_int_equal(tm_kube_path(p, sizeof(p), &r, "default", "web"), 0);
	assert_string_equal(p, "/apis/apps/v1/namespaces/default/deployments/web");
	assert_int_equal(tm_kube_path(p, sizeof(p), &r, NULL, NULL), 0);
	assert_string_equal(p, "/apis/apps/v1/deployments");
	r = (struct tm_kube_resource){ "", "v1", "Namespace", "namespaces", 0 };
	assert_int_equal(tm_kube_path(p, sizeof(p), &r, "ignored", "a b?c#d"), 0);
	assert_string_equal(p, "/api/v1/namespaces/a%20b%3Fc%23d");
	r = (struct tm_kube_resource){ "rbac.authorization.k8s.io", "v1", "ClusterRole",
				       "clusterroles", 0 };
	assert_int_equal(tm_kube_path(p, sizeof(p), &r, "", "system:reader"), 0);
	assert_string_equal(p, "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:reader");
	assert_int_equal(tm_kube_path(p, 20, &r, "", "x"), TM_EAPPLY);
}

/* ------------------------------------------------------------ parse */

static struct tm_config cfg;
static struct tm_applier_ctx ctx;

static int parse_text(struct tm_objset *set, const char *path, const char *text)
{
	return A->parse(set, &ctx, path, path, text, strlen(text));
}

static void test_wants(void **state)
{
	assert_true(A->wants("k8s/a.yaml", "a.yaml"));
	assert_true(A->wants("k8s/a.yml", "a.yml"));
	assert_true(A->wants("k8s/a.json", "a.json"));
	assert_false(A->wants("k8s/README.md", "README.md"));
	assert_false(A->wants("k8s/.yaml", ".yaml"));
	assert_false(A->wants("k8s/a.yaml.orig", "a.yaml.orig"));
	assert_string_equal(A->name, "kubernetes");
}

static void test_parse(void **state)
{
	static const char text[] = "apiVersion: v1\n"
				   "kind: ConfigMap\n"
				   "metadata:\n"
				   "  name: cfg\n"
				   "  labels: {app: web}\n"
				   "  resourceVersion: \"42\"\n"
				   "  uid: 0b1e\n"
				   "  managedFields: [{manager: kubectl}]\n"
				   "  creationTimestamp: null\n"
				   "data:\n"
				   "  enabled: \"yes\"\n"
				   "  script: echo ${POD_IP}\n"
				   "status: {phase: Active}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: Namespace\n"
				   "metadata: {name: demo, namespace: ignored}\n"
				   "---\n"
				   "apiVersion: apiextensions.k8s.io/v1\n"
				   "kind: CustomResourceDefinition\n"
				   "metadata: {name: widgets.example.com}\n"
				   "spec: {group: example.com}\n"
				   "---\n"
				   "apiVersion: example.com/v1\n"
				   "kind: Widget\n"
				   "metadata: {name: w1}\n"
				   "---\n"
				   "apiVersion: example.com/v1\n"
				   "kind: Widget\n"
				   "metadata: {name: w2, namespace: apps}\n"
				   "---\n"
				   "apiVersion: v1\n"
				   "kind: List\n"
				   "items:\n"
				   "- apiVersion: apps/v1\n"
				   "  kind: Deployment\n"
				   "  metadata: {name: web, namespace: apps}\n";
	struct tm_objset set = { 0 };
	char owner[17], want[400];
	const struct tm_doc *labels;
	struct tm_doc *d1 = NULL;

	assert_int_equal(parse_text(&set, "k8s/all.yaml", text), 0);
	assert_int_equal(set.n, 6);
	assert_string_equal(set.v[0].id, "/ConfigMap/default/cfg");
	assert_string_equal(set.v[1].id, "/Namespace//demo");
	assert_string_equal(set.v[2].id,
			    "apiextensions.k8s.io/CustomResourceDefinition//widgets.example.com");
	assert_string_equal(set.v[3].id, "example.com/Widget//w1"); /* scope unknown until apply */
	assert_string_equal(set.v[4].id, "example.com/Widget/apps/w2");
	assert_string_equal(set.v[5].id, "apps/Deployment/apps/web");
	assert_string_equal(set.v[0].source, "k8s/all.yaml");
	/* labels added, server-owned fields stripped; typing kept ("yes" stays a string) */
	assert_int_equal(tm_kube_owner(owner, &cfg), 0);
	snprintf(
		want, sizeof(want),
		"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cfg\",\"labels\":{\"app\":\"web\","
		"\"app.kubernetes.io/managed-by\":\"tagmoor\",\"tagmoor.dev/owner\":\"%s\"}},\"data\":{\"enabled\":\"yes\","
		"\"script\":\"echo ${POD_IP}\"}}",
		owner);
	assert_string_equal(set.v[0].content, want);
	assert_int_equal(set.v[0].len, strlen(want));
	/* only the JSON is kept of each object (no tree): read it back */
	assert_int_equal(tm_json_parse(&d1, set.v[1].content, set.v[1].len, NULL), 0);
	labels = tm_doc_get_path(d1, "metadata", "labels", NULL);
	assert_string_equal(tm_doc_string(tm_doc_map_get(labels, "app.kubernetes.io/managed-by")),
			    "tagmoor");
	/* a namespace on a cluster-scoped kind is dropped, as kubectl does */
	assert_null(tm_doc_get_path(d1, "metadata", "namespace", NULL));
	assert_null(strstr(set.v[1].content, "ignored"));
	tm_doc_free(d1);
	tm_objset_free(&set, A->free_data);

	/* JSON files too */
	assert_int_equal(
		parse_text(
			&set, "k8s/a.json",
			"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\",\"namespace\":\"x\"},"
			"\"stringData\":{\"a\":\"b\"}}"),
		0);
	assert_string_equal(set.v[0].id, "/Secret/x/s");
	tm_objset_free(&set, A->free_data);
	/* an empty file is no object */
	assert_int_equal(parse_text(&set, "k8s/empty.yaml", "---\n# nothing\n"), 0);
	assert_int_equal(set.n, 0);
}

static void expect_parse_error(const char *text, const char *needle)
{
	struct tm_objset set = { 0 };
	int r = parse_text(&set, "k8s/bad.yaml", text);

	if (r == 0)
		fail_msg("accepted:\n%s", text);
	assert_non_null(strstr(tm_error_last(), "k8s/bad.yaml"));
	if (!strstr(tm_error_last(), needle))
		fail_msg("message \"%s\" lacks \"%s\"", tm_error_last(), needle);
	tm_objset_free(&set, A->free_data);
}

static void test_parse_refusals(void **state)
{
	struct tm_buf deep, laughs;

	expect_parse_error("kind: ConfigMap\nmetadata: {name: x}\n", "apiVersion is required");
	expect_parse_error("apiVersion: v1\nmetadata: {name: x}\n", "kind");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {}}\n",
			   "metadata.name is required");
	expect_parse_error("apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n",
			   "generateName cannot be applied");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 12}\n",
			   "metadata.name must be a string");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\n", "metadata");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a/b}\n",
			   "invalid metadata.name");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ..}\n",
			   "invalid metadata.name");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: [a]}\n",
			   "metadata.namespace must be");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a/b}\n",
			   "invalid metadata.namespace");
	expect_parse_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: [a]}\n",
			   "metadata.labels must be");
	expect_parse_error("apiVersion: apps/v1/x\nkind: Deployment\nmetadata: {name: x}\n",
			   "malformed apiVersion");
	expect_parse_error("apiVersion: Apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
			   "malformed apiVersion");
	expect_parse_error("apiVersion: v1\nkind: Config-Map\nmetadata: {name: x}\n", "kind");
	/* the line of the offending document is named */
	expect_parse_error(
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\n"
		"kind: ConfigMap\nmetadata: {}\n",
		"k8s/bad.yaml (line 5)");
	/* hostile files are refused by the reader, naming the file */
	tm_buf_init(&deep, 1 << 20);
	tm_buf_puts(&deep, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: ");
	for (int i = 0; i < 10000; i++)
		tm_buf_putc(&deep, '[');
	for (int i = 0; i < 10000; i++)
		tm_buf_putc(&deep, ']');
	tm_buf_putc(&deep, '\n');
	expect_parse_error(deep.ptr, "");
	assert_int_equal(tm_error_last_code(), TM_ELIMIT);
	tm_buf_free(&deep);
	tm_buf_init(&laughs, 1 << 20);
	tm_buf_puts(
		&laughs,
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (int i = 1; i < 10; i++)
		tm_buf_printf(&laughs,
			      "x%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
			      i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	expect_parse_error(laughs.ptr, "");
	assert_int_equal(tm_error_last_code(), TM_ELIMIT);
	tm_buf_free(&laughs);
}

/* The manifest limits at their defaults (cfg leaves them 0) and as set, named by key. */
static void test_parse_limits(void **state)
{
	struct tm_objset set = { 0 };
	struct tm_buf b;
	int r;

	/* a List document of exactly 500,000 nodes: 18 + 2 per data entry */
	tm_buf_init(&b, 16u << 20);
	tm_buf_puts(
		&b,
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n"
		"    name: many\n  data:\n");
	for (int i = 0; i < (500000 - 18) / 2; i++)
		tm_buf_printf(&b, "    k%d: v\n", i);
	assert_int_equal(parse_text(&set, "k8s/many.yaml", b.ptr), 0);
	assert_int_equal(set.n, 1);
	assert_string_equal(set.v[0].id, "/ConfigMap/default/many");
	tm_objset_free(&set, A->free_data);
	tm_buf_puts(&b, "    one: more\n");
	r = parse_text(&set, "k8s/many.yaml", b.ptr);
	assert_int_equal(r, TM_ELIMIT);
	assert_non_null(strstr(tm_error_last(), "k8s/many.yaml: document 1"));
	assert_non_null(
		strstr(tm_error_last(),
		       "more than 500000 nodes in one document (refused; [kubernetes] max_nodes)"));
	tm_objset_free(&set, A->free_data);
	/* lowered in the INI */
	cfg.kubernetes.max_nodes = 10000;
	r = parse_text(&set, "k8s/many.yaml", b.ptr);
	assert_non_null(strstr(tm_error_last(), "more than 10000 nodes in one document"));
	tm_objset_free(&set, A->free_data);
	cfg.kubernetes.max_nodes = 0;
	cfg.kubernetes.max_document = 100;
	r = parse_text(&set, "k8s/doc.yaml",
		       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
		       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {x: "
		       "\"0123456789012345678901234567890123456789\"}\n");
	assert_int_equal(r, TM_ELIMIT);
	assert_string_equal(tm_error_last(),
			    "k8s/doc.yaml: document 2 (line 5): 105 bytes is over the limit of 100 "
			    "bytes for one document (refused; [kubernetes] max_document)");
	tm_objset_free(&set, A->free_data);
	cfg.kubernetes.max_document = 0;
	cfg.kubernetes.max_file = 64;
	r = parse_text(&set, "k8s/f.yaml",
		       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: yyyyyy}\n");
	assert_int_equal(r, TM_ELIMIT);
	assert_string_equal(
		tm_error_last(),
		"k8s/f.yaml: 69 bytes exceeds the limit of 64 bytes (refused; [kubernetes] max_file)");
	tm_objset_free(&set, A->free_data);
	cfg.kubernetes.max_file = 0;
	tm_buf_free(&b);
}

/* [kubernetes] default_namespace: namespaced built-in kinds that name none get it in their id;
 * custom kinds keep an empty namespace until apply; what is sent carries no namespace. */
static void test_parse_default_namespace(void **state)
{
	struct tm_objset set = { 0 };

	cfg.kubernetes.default_namespace = "argocd";
	assert_int_equal(
		parse_text(
			&set, "k8s/install.yaml",
			"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: argocd-server}\n---\n"
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: argocd-server}\n---\n"
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: kube-system}\n---\n"
			"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: argocd}\n---\n"
			"apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: default}\n"),
		0);
	assert_int_equal(set.n, 5);
	assert_string_equal(set.v[0].id, "/ServiceAccount/argocd/argocd-server");
	assert_string_equal(set.v[1].id, "apps/Deployment/argocd/argocd-server");
	assert_string_equal(set.v[2].id, "/ConfigMap/kube-system/other");
	assert_string_equal(set.v[3].id, "rbac.authorization.k8s.io/ClusterRole//argocd");
	assert_string_equal(set.v[4].id, "argoproj.io/AppProject//default");
	assert_null(strstr(set.v[0].content, "namespace"));
	tm_objset_free(&set, A->free_data);
	cfg.kubernetes.default_namespace = NULL;
	assert_int_equal(parse_text(&set, "k8s/a.yaml",
				    "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s}\n"),
			 0);
	assert_string_equal(set.v[0].id, "/ServiceAccount/default/s");
	tm_objset_free(&set, A->free_data);
}

static int setup(void **state)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.source.url = "https://git.example.com/fleet/config.git";
	cfg.source.ref = "refs/tags/stable";
	cfg.agent.device_id = "edge-1";
	ctx.cfg = &cfg;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_owner_and_lease),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_discovery_aggregated),
		cmocka_unit_test(test_discovery_stale_and_core),
		cmocka_unit_test(test_discovery_legacy),
		cmocka_unit_test(test_status_messages),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_wants),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_default_namespace),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
