/*
 * discovery.c — what the API server serves (kube.h, discovery): group
 * versions and their resources from aggregated discovery (one answer for
 * /api and one for /apis) or the legacy documents (APIVersions,
 * APIGroupList, then an APIResourceList per group version when first
 * needed), and the lookups that turn (apiVersion, kind) into a resource.
 *
 * Where it sits in the pipeline: the API client (client.c) fills it at the
 * start of a Kubernetes pass and when a kind is missing; the applier
 * resolves every object's kind through it.
 */
#include "kube_internal.h"
#include "tagmoor/apply/kubernetes/kube.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tm_kube_discovery_new(struct tm_kube_discovery **out)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return tm_error_nomem();
	return 0;
}

void tm_kube_discovery_clear(struct tm_kube_discovery *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ngv; i++) {
		free(d->gv[i].group);
		free(d->gv[i].version);
	}
	for (size_t i = 0; i < d->nr; i++) {
		free(d->r[i].group);
		free(d->r[i].version);
		free(d->r[i].kind);
		free(d->r[i].resource);
	}
	d->ngv = d->nr = 0;
	d->seq = 0;
}

void tm_kube_discovery_free(struct tm_kube_discovery *d)
{
	if (!d)
		return;
	tm_kube_discovery_clear(d);
	free(d->gv);
	free(d->r);
	free(d);
}

size_t tm_kube_discovery_count(const struct tm_kube_discovery *d)
{
	return d->nr;
}

static struct gv *gv_get(const struct tm_kube_discovery *d, const char *group, const char *version)
{
	for (size_t i = 0; i < d->ngv; i++)
		if (strcmp(d->gv[i].group, group) == 0 && strcmp(d->gv[i].version, version) == 0)
			return &d->gv[i];
	return NULL;
}

static int gv_add(struct tm_kube_discovery *d, const char *group, const char *version, int state)
{
	struct gv *g = gv_get(d, group, version);

	if (g) {
		if (state == 2 || g->state != 2)
			g->state = state;
		return 0;
	}
	if (d->ngv == d->capgv) {
		size_t nc = d->capgv ? d->capgv * 2 : 64;
		struct gv *nv = realloc(d->gv, nc * sizeof(*nv));
		if (!nv)
			return tm_error_nomem();
		d->gv = nv;
		d->capgv = nc;
	}
	g = &d->gv[d->ngv];
	g->group = strdup(group);
	g->version = strdup(version);
	if (!g->group || !g->version) {
		free(g->group);
		free(g->version);
		return tm_error_nomem();
	}
	g->state = state;
	g->seq = d->seq++;
	d->ngv++;
	return 0;
}

static int res_add(struct tm_kube_discovery *d, const char *group, const char *version,
		   const char *kind, const char *resource, int namespaced)
{
	struct res *x;

	if (!*kind || !*resource || strchr(resource, '/'))
		return 0; /* subresources and malformed entries */
	for (size_t i = 0; i < d->nr; i++) {
		x = &d->r[i];
		if (strcmp(x->group, group) == 0 && strcmp(x->version, version) == 0 &&
		    strcmp(x->kind, kind) == 0)
			return 0;
	}
	if (d->nr == d->capr) {
		size_t nc = d->capr ? d->capr * 2 : 256;
		struct res *nv = realloc(d->r, nc * sizeof(*nv));
		if (!nv)
			return tm_error_nomem();
		d->r = nv;
		d->capr = nc;
	}
	x = &d->r[d->nr];
	x->group = strdup(group);
	x->version = strdup(version);
	x->kind = strdup(kind);
	x->resource = strdup(resource);
	x->namespaced = namespaced;
	if (!x->group || !x->version || !x->kind || !x->resource) {
		free(x->group);
		free(x->version);
		free(x->kind);
		free(x->resource);
		return tm_error_nomem();
	}
	d->nr++;
	return 0;
}

int tm_kube_discovery_mark_failed(struct tm_kube_discovery *d, const char *group,
				  const char *version)
{
	return gv_add(d, group, version, -1);
}

/* Media type parameter `name` of a Content-Type, into out ("" when absent). */
static void ctype_param(char *out, size_t outlen, const char *ctype, const char *name)
{
	const char *p = strchr(ctype, ';');
	size_t nl = strlen(name);

	out[0] = '\0';
	while (p) {
		const char *q;
		size_t vl;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		q = strchr(p, ';');
		vl = q ? (size_t)(q - p) : strlen(p);
		if (vl > nl && strncasecmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t n = vl - nl - 1;
			while (n && (p[nl + 1 + n - 1] == ' ' || p[nl + 1 + n - 1] == '\t'))
				n--;
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, p + nl + 1, n);
			out[n] = '\0';
			return;
		}
		p = q;
	}
}

static int add_aggregated(struct tm_kube_discovery *d, const struct tm_doc *doc)
{
	const struct tm_doc *items = tm_doc_map_get(doc, "items");
	int r;

	if (!items || items->type != TM_DOC_SEQ)
		return tm_error_set(TM_EAPPLY, "discovery: APIGroupDiscoveryList without items");
	for (size_t i = 0; i < items->u.seq.n; i++) {
		const struct tm_doc *it = items->u.seq.v[i];
		const char *group =
			tm_doc_string(tm_doc_get_path(it, "metadata", "name", (const char *)NULL));
		const struct tm_doc *versions = tm_doc_map_get(it, "versions");

		if (!group)
			group = ""; /* the core group at /api has no name */
		for (size_t j = 0;
		     versions && versions->type == TM_DOC_SEQ && j < versions->u.seq.n; j++) {
			const struct tm_doc *v = versions->u.seq.v[j];
			const char *version = tm_doc_string(tm_doc_map_get(v, "version"));
			const char *fresh = tm_doc_string(tm_doc_map_get(v, "freshness"));
			const struct tm_doc *rs = tm_doc_map_get(v, "resources");

			if (!version || !*version)
				continue;
			if (fresh && strcmp(fresh, "Stale") == 0) {
				/* an aggregated API server that did not answer: tolerated */
				tm_log_debug("kubernetes: discovery of %s/%s is stale; skipped",
					     group, version);
				if ((r = gv_add(d, group, version, -1)) < 0)
					return r;
				continue;
			}
			if ((r = gv_add(d, group, version, 2)) < 0)
				return r;
			for (size_t k = 0; rs && rs->type == TM_DOC_SEQ && k < rs->u.seq.n; k++) {
				const struct tm_doc *x = rs->u.seq.v[k];
				const char *res = tm_doc_string(tm_doc_map_get(x, "resource"));
				const char *kind =
					tm_doc_string(tm_doc_get_path(x, "responseKind", "kind",
								      (const char *)NULL));
				const char *scope = tm_doc_string(tm_doc_map_get(x, "scope"));

				if (!res || !kind)
					continue;
				if ((r = res_add(d, group, version, kind, res,
						 !scope || strcmp(scope, "Cluster") != 0)) < 0)
					return r;
			}
		}
	}
	return 0;
}

static int add_legacy_root(struct tm_kube_discovery *d, const struct tm_doc *doc, int core)
{
	int r;

	if (core) {
		const struct tm_doc *vs = tm_doc_map_get(doc, "versions");
		for (size_t i = 0; vs && vs->type == TM_DOC_SEQ && i < vs->u.seq.n; i++) {
			const char *v = tm_doc_string(vs->u.seq.v[i]);
			if (v && *v && (r = gv_add(d, "", v, 1)) < 0)
				return r;
		}
		return 0;
	}
	{
		const struct tm_doc *groups = tm_doc_map_get(doc, "groups");
		if (!groups || groups->type != TM_DOC_SEQ)
			return tm_error_set(TM_EAPPLY, "discovery: APIGroupList without groups");
		for (size_t i = 0; i < groups->u.seq.n; i++) {
			const struct tm_doc *g = groups->u.seq.v[i];
			const char *name = tm_doc_string(tm_doc_map_get(g, "name"));
			const char *pref =
				tm_doc_string(tm_doc_get_path(g, "preferredVersion", "version",
							      (const char *)NULL));
			const struct tm_doc *vs = tm_doc_map_get(g, "versions");

			if (!name || !*name)
				continue;
			if (pref && *pref && (r = gv_add(d, name, pref, 1)) < 0)
				return r;
			for (size_t j = 0; vs && vs->type == TM_DOC_SEQ && j < vs->u.seq.n; j++) {
				const char *v =
					tm_doc_string(tm_doc_map_get(vs->u.seq.v[j], "version"));
				if (v && *v && (r = gv_add(d, name, v, 1)) < 0)
					return r;
			}
		}
	}
	return 0;
}

int tm_kube_discovery_add_root(struct tm_kube_discovery *d, const char *content_type,
			       const char *body, size_t len, int core, int *aggregated)
{
	char g[64], v[32], as[64];
	struct tm_doc *doc = NULL;
	int agg, r;

	ctype_param(g, sizeof(g), content_type ? content_type : "", "g");
	ctype_param(v, sizeof(v), content_type ? content_type : "", "v");
	ctype_param(as, sizeof(as), content_type ? content_type : "", "as");
	agg = strcmp(g, "apidiscovery.k8s.io") == 0 && strcmp(as, "APIGroupDiscoveryList") == 0 &&
	      (strcmp(v, "v2") == 0 || strcmp(v, "v2beta1") == 0);
	if (aggregated)
		*aggregated = agg;
	if ((r = kube_parse_json(&doc, body, len, core ? "discovery /api" : "discovery /apis")) < 0)
		return r;
	if (doc->type != TM_DOC_MAP)
		r = tm_error_set(TM_EAPPLY, "discovery: the answer is not an object");
	else if (agg)
		r = add_aggregated(d, doc);
	else
		r = add_legacy_root(d, doc, core);
	tm_doc_free(doc);
	return r;
}

int tm_kube_discovery_add_resource_list(struct tm_kube_discovery *d, const char *body, size_t len)
{
	struct tm_doc *doc = NULL;
	const struct tm_doc *rs;
	const char *gvs, *slash;
	char group[TM_KUBE_GROUP_MAX + 1], version[64];
	int r;

	if ((r = kube_parse_json(&doc, body, len, "discovery")) < 0)
		return r;
	gvs = tm_doc_string(tm_doc_map_get(doc, "groupVersion"));
	rs = tm_doc_map_get(doc, "resources");
	if (!gvs || !*gvs || !rs || rs->type != TM_DOC_SEQ) {
		r = tm_error_set(TM_EAPPLY, "discovery: not an APIResourceList");
		goto out;
	}
	slash = strchr(gvs, '/');
	if (slash) {
		size_t gl = (size_t)(slash - gvs);
		if (gl >= sizeof(group) || kube_copy_str(version, sizeof(version), slash + 1) < 0) {
			r = tm_error_set(TM_EAPPLY, "discovery: malformed groupVersion");
			goto out;
		}
		memcpy(group, gvs, gl);
		group[gl] = '\0';
	} else {
		group[0] = '\0';
		if (kube_copy_str(version, sizeof(version), gvs) < 0) {
			r = tm_error_set(TM_EAPPLY, "discovery: malformed groupVersion");
			goto out;
		}
	}
	if ((r = gv_add(d, group, version, 2)) < 0)
		goto out;
	for (size_t i = 0; i < rs->u.seq.n; i++) {
		const struct tm_doc *x = rs->u.seq.v[i];
		const char *name = tm_doc_string(tm_doc_map_get(x, "name"));
		const char *kind = tm_doc_string(tm_doc_map_get(x, "kind"));
		const struct tm_doc *nsd = tm_doc_map_get(x, "namespaced");

		if (!name || !kind)
			continue;
		if ((r = res_add(d, group, version, kind, name,
				 nsd && nsd->type == TM_DOC_BOOL && nsd->u.b)) < 0)
			goto out;
	}
	r = 0;
out:
	tm_doc_free(doc);
	return r;
}

static void res_out(struct tm_kube_resource *out, const struct res *x)
{
	snprintf(out->group, sizeof(out->group), "%s", x->group);
	snprintf(out->version, sizeof(out->version), "%s", x->version);
	snprintf(out->kind, sizeof(out->kind), "%s", x->kind);
	snprintf(out->resource, sizeof(out->resource), "%s", x->resource);
	out->namespaced = x->namespaced;
}

int tm_kube_discovery_find(const struct tm_kube_discovery *d, const char *group,
			   const char *version, const char *kind, struct tm_kube_resource *out)
{
	for (size_t i = 0; i < d->nr; i++) {
		const struct res *x = &d->r[i];
		if (strcmp(x->kind, kind) == 0 && strcmp(x->group, group) == 0 &&
		    strcmp(x->version, version) == 0) {
			if (out)
				res_out(out, x);
			return 0;
		}
	}
	return TM_ENOTFOUND;
}

int tm_kube_discovery_find_kind(const struct tm_kube_discovery *d, const char *group,
				const char *kind, struct tm_kube_resource *out)
{
	const struct res *best = NULL;
	unsigned best_seq = 0;

	for (size_t i = 0; i < d->nr; i++) {
		const struct res *x = &d->r[i];
		const struct gv *g;
		if (strcmp(x->kind, kind) != 0 || strcmp(x->group, group) != 0)
			continue;
		g = gv_get(d, x->group, x->version);
		if (!best || (g && g->seq < best_seq)) {
			best = x;
			best_seq = g ? g->seq : ~0u;
		}
	}
	if (!best)
		return TM_ENOTFOUND;
	if (out)
		res_out(out, best);
	return 0;
}

int tm_kube_discovery_gv_state(const struct tm_kube_discovery *d, const char *group,
			       const char *version)
{
	const struct gv *g = gv_get(d, group, version);
	return g ? g->state : 0;
}
