/*
 * kubeconfig.c — kubeconfig files and the in-cluster service account
 * (kubeconfig.h): where the API server is and which credentials to send.
 *
 * The Kubernetes applier (kube.c) makes one of these per pass and hands it to
 * the HTTP client; nothing here talks to the network. Certificate and key
 * data stay in memory (the HTTP client takes them as blobs), so no secret is
 * ever written to disk.
 */
#include "tagmoor/core/base64.h"
#include "tagmoor/apply/kubernetes/kubeconfig.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/wipe.h"
#include "tagmoor/doc/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_MAX (1u << 20)
#define TOKEN_MAX (64u * 1024)

static void free_secret(void *p, size_t n)
{
	if (p) {
		tm_wipe(p, n);
		free(p);
	}
}

static void free_secret_str(char *s)
{
	if (s)
		free_secret(s, strlen(s));
}

void tm_kubeconfig_free(struct tm_kubeconfig *kc)
{
	if (!kc)
		return;
	free(kc->origin);
	free(kc->context);
	free(kc->server);
	free(kc->namespace);
	free(kc->ca_file);
	free(kc->ca_pem);
	free(kc->cert_file);
	free(kc->key_file);
	free(kc->cert_pem);
	free_secret(kc->key_pem, kc->key_pem_len);
	free_secret_str(kc->token);
	free(kc->token_file);
	free(kc->username);
	free_secret_str(kc->password);
	free(kc);
}

int tm_kubeconfig_read_file(struct tm_buf *out, const char *path, size_t max)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return tm_error_set(TM_ENOTFOUND, "%s: does not exist", path);
		return tm_error_set(TM_EIO, "%s: cannot open: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return tm_error_set(TM_EIO, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return tm_error_set(TM_ELIMIT, "%s: larger than %zu bytes", path, max);
	}
	for (;;) {
		char chunk[4096];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = tm_error_set(TM_EIO, "%s: read: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			r = tm_error_set(TM_ELIMIT, "%s: larger than %zu bytes", path, max);
			tm_wipe(chunk, sizeof(chunk));
			break;
		}
		r = tm_buf_put(out, chunk, (size_t)n);
		tm_wipe(chunk, sizeof(chunk));
		if (r < 0)
			break;
	}
	close(fd);
	if (r == 0 && !out->ptr)
		r = tm_buf_put(out, "", 0);
	return r;
}

/* ------------------------------------------------------------- helpers */

struct ctx {
	const char *origin;
	char dir[4096]; /* directory of the kubeconfig, for relative names */
};

static int dup_str(char **out, const char *s)
{
	*out = NULL;
	if (!s)
		return 0;
	if (!(*out = strdup(s)))
		return tm_error_nomem();
	return 0;
}

/* A string field of map m: 0 and *out (borrowed) or NULL when absent; an
 * error naming the field when present but not a string. */
static int get_str(const char **out, const struct ctx *c, const struct tm_doc *m, const char *key,
		   const char *where)
{
	const struct tm_doc *v = tm_doc_map_get(m, key);

	*out = NULL;
	if (!v || v->type == TM_DOC_NULL)
		return 0;
	if (v->type != TM_DOC_STRING)
		return tm_error_set(TM_ECONFIG, "%s: %s.%s must be a string, not %s", c->origin,
				    where, key, tm_doc_type_name(v->type));
	if (strlen(v->u.str.s) != v->u.str.len)
		return tm_error_set(TM_ECONFIG, "%s: %s.%s contains a NUL byte", c->origin, where,
				    key);
	*out = v->u.str.s;
	return 0;
}

/* The entry of list `key` whose name is `name`, and its `sub` map. */
static int find_named(const struct tm_doc **out, const struct ctx *c, const struct tm_doc *root,
		      const char *key, const char *sub, const char *name)
{
	const struct tm_doc *list = tm_doc_map_get(root, key);

	*out = NULL;
	if (list && list->type != TM_DOC_SEQ && list->type != TM_DOC_NULL)
		return tm_error_set(TM_ECONFIG, "%s: %s must be a list", c->origin, key);
	for (size_t i = 0; list && i < tm_doc_len(list); i++) {
		const struct tm_doc *e = tm_doc_seq_at(list, i), *m;
		const char *n = tm_doc_string(tm_doc_map_get(e, "name"));

		if (!n || strcmp(n, name) != 0)
			continue;
		m = tm_doc_map_get(e, sub);
		if (m && m->type != TM_DOC_MAP && m->type != TM_DOC_NULL)
			return tm_error_set(TM_ECONFIG, "%s: %s \"%.128s\": %s must be a map",
					    c->origin, key, name, sub);
		*out = m && m->type == TM_DOC_MAP ? m : NULL;
		return 0;
	}
	return tm_error_set(TM_ECONFIG,
			    "%s: %s \"%.128s\" is not defined (no entry of that name in %s)",
			    c->origin, sub, name, key);
}

/* A file name from the kubeconfig, relative to its directory. */
static int path_of(char **out, const struct ctx *c, const char *p)
{
	size_t n;

	*out = NULL;
	if (!p || !*p)
		return 0;
	if (p[0] == '/' || !c->dir[0])
		return dup_str(out, p);
	n = strlen(c->dir) + strlen(p) + 2;
	if (!(*out = malloc(n)))
		return tm_error_nomem();
	snprintf(*out, n, "%s/%s", c->dir, p);
	return 0;
}

static int b64_field(unsigned char **out, size_t *out_len, const struct ctx *c, const char *where,
		     const char *field, const char *val, int secret)
{
	struct tm_buf b;
	int r;

	*out = NULL;
	*out_len = 0;
	if (!val)
		return 0;
	tm_buf_init(&b, PEM_MAX);
	r = tm_base64_decode(&b, val, strlen(val), TM_B64_SKIP_SPACE);
	if (r < 0 || b.len == 0) {
		if (secret)
			tm_buf_free_secret(&b);
		else
			tm_buf_free(&b);
		if (r == TM_ENOMEM)
			return r;
		return tm_error_set(TM_ECONFIG, "%s: %s.%s is not valid base64", c->origin, where,
				    field);
	}
	/* tm_buf keeps a NUL after the data: handy for PEM. */
	*out_len = b.len;
	*out = (unsigned char *)tm_buf_detach(&b);
	return 0;
}

/* ------------------------------------------------------------- parse */

static int parse_cluster(struct tm_kubeconfig *kc, const struct ctx *c, const struct tm_doc *cl,
			 const char *name)
{
	char where[300];
	const char *server, *ca_data, *ca_file, *proxy;
	const struct tm_doc *insecure = tm_doc_map_get(cl, "insecure-skip-tls-verify");
	size_t n;
	int r;

	snprintf(where, sizeof(where), "clusters[\"%.128s\"].cluster", name);
	if ((r = get_str(&server, c, cl, "server", where)) < 0 ||
	    (r = get_str(&ca_data, c, cl, "certificate-authority-data", where)) < 0 ||
	    (r = get_str(&ca_file, c, cl, "certificate-authority", where)) < 0 ||
	    (r = get_str(&proxy, c, cl, "proxy-url", where)) < 0)
		return r;
	if (!server || !*server)
		return tm_error_set(TM_ECONFIG, "%s: %s.server is missing", c->origin, where);
	if (strncmp(server, "https://", 8) != 0 || !server[8])
		return tm_error_set(TM_ECONFIG,
				    "%s: %s.server must be an https:// URL (\"%.128s\")", c->origin,
				    where, server);
	for (const char *p = server; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#')
			return tm_error_set(TM_ECONFIG, "%s: %s.server is not a plain URL",
					    c->origin, where);
	if (insecure && !(insecure->type == TM_DOC_BOOL && !insecure->u.b))
		return tm_error_set(
			TM_ECONFIG,
			"%s: %s.insecure-skip-tls-verify is not supported: tagmoor always "
			"verifies the API server (give certificate-authority-data)",
			c->origin, where);
	if (proxy)
		return tm_error_set(TM_ECONFIG, "%s: %s.proxy-url is not supported", c->origin,
				    where);
	if ((r = dup_str(&kc->server, server)) < 0)
		return r;
	n = strlen(kc->server);
	while (n > 8 && kc->server[n - 1] == '/')
		kc->server[--n] = '\0';
	if (ca_data)
		return b64_field(&kc->ca_pem, &kc->ca_pem_len, c, where,
				 "certificate-authority-data", ca_data, 0);
	return path_of(&kc->ca_file, c, ca_file);
}

static int parse_user(struct tm_kubeconfig *kc, const struct ctx *c, const struct tm_doc *u,
		      const char *name)
{
	char where[300];
	const char *cert_data, *key_data, *cert_file, *key_file, *token, *token_file, *user, *pass;
	int r;

	snprintf(where, sizeof(where), "users[\"%.128s\"].user", name);
	if (!u)
		return 0; /* anonymous */
	if (tm_doc_map_get(u, "exec") || tm_doc_map_get(u, "auth-provider"))
		return tm_error_set(
			TM_ECONFIG,
			"%s: %s: credential plugins (exec, auth-provider) are not supported; "
			"use a client certificate or a token",
			c->origin, where);
	if ((r = get_str(&cert_data, c, u, "client-certificate-data", where)) < 0 ||
	    (r = get_str(&key_data, c, u, "client-key-data", where)) < 0 ||
	    (r = get_str(&cert_file, c, u, "client-certificate", where)) < 0 ||
	    (r = get_str(&key_file, c, u, "client-key", where)) < 0 ||
	    (r = get_str(&token, c, u, "token", where)) < 0 ||
	    (r = get_str(&token_file, c, u, "tokenFile", where)) < 0 ||
	    (r = get_str(&user, c, u, "username", where)) < 0 ||
	    (r = get_str(&pass, c, u, "password", where)) < 0)
		return r;
	if ((cert_data || cert_file) != (key_data || key_file))
		return tm_error_set(
			TM_ECONFIG,
			"%s: %s: a client certificate needs its key and the other way round",
			c->origin, where);
	if ((r = b64_field(&kc->cert_pem, &kc->cert_pem_len, c, where, "client-certificate-data",
			   cert_data, 0)) < 0 ||
	    (r = b64_field(&kc->key_pem, &kc->key_pem_len, c, where, "client-key-data", key_data,
			   1)) < 0)
		return r;
	if (kc->key_pem && (strstr((char *)kc->key_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
			    strstr((char *)kc->key_pem, "Proc-Type: 4,ENCRYPTED")))
		return tm_error_set(
			TM_ECONFIG,
			"%s: %s.client-key-data is an encrypted private key: tagmoor has no "
			"passphrase to give (kubectl cannot use it either); give the key "
			"unencrypted",
			c->origin, where);
	if (!cert_data && (r = path_of(&kc->cert_file, c, cert_file)) < 0)
		return r;
	if (!key_data && (r = path_of(&kc->key_file, c, key_file)) < 0)
		return r;
	if (token && !*token)
		token = NULL;
	if ((r = dup_str(&kc->token, token)) < 0 ||
	    (r = path_of(&kc->token_file, c, token_file)) < 0 ||
	    (r = dup_str(&kc->username, user)) < 0 || (r = dup_str(&kc->password, pass)) < 0)
		return r;
	return 0;
}

int tm_kubeconfig_parse(struct tm_kubeconfig **out, const char *text, size_t len,
			const char *origin, const char *context)
{
	struct tm_kubeconfig *kc = NULL;
	struct tm_doc *root = NULL;
	const struct tm_doc *ctxm, *cl, *us;
	const char *cur, *cluster, *user, *ns;
	struct ctx c = { origin ? origin : "kubeconfig", "" };
	struct tm_yaml_limits lim = TM_YAML_LIMITS_DEFAULT;
	int r;

	*out = NULL;
	if (origin && origin[0] == '/') {
		const char *slash = strrchr(origin, '/');
		size_t dl = (size_t)(slash - origin);
		if (dl < sizeof(c.dir)) {
			memcpy(c.dir, origin, dl);
			c.dir[dl] = '\0';
			if (dl == 0)
				snprintf(c.dir, sizeof(c.dir), "/");
		}
	}
	lim.max_bytes = TM_KUBECONFIG_MAX;
	if ((r = tm_yaml_parse(&root, text, len, c.origin, &lim)) < 0)
		return r;
	if (root->type != TM_DOC_MAP) {
		r = tm_error_set(TM_ECONFIG, "%s: not a kubeconfig (expected a map)", c.origin);
		goto out;
	}
	if (!(kc = calloc(1, sizeof(*kc)))) {
		r = tm_error_nomem();
		goto out;
	}
	if ((r = dup_str(&kc->origin, c.origin)) < 0)
		goto out;
	if (!context) {
		if ((r = get_str(&cur, &c, root, "current-context", "kubeconfig")) < 0)
			goto out;
		if (!cur || !*cur) {
			r = tm_error_set(TM_ECONFIG, "%s: current-context is not set", c.origin);
			goto out;
		}
		context = cur;
	}
	if ((r = dup_str(&kc->context, context)) < 0)
		goto out;
	if ((r = find_named(&ctxm, &c, root, "contexts", "context", context)) < 0)
		goto out;
	{
		char where[300];
		snprintf(where, sizeof(where), "contexts[\"%.128s\"].context", context);
		if ((r = get_str(&cluster, &c, ctxm, "cluster", where)) < 0 ||
		    (r = get_str(&user, &c, ctxm, "user", where)) < 0 ||
		    (r = get_str(&ns, &c, ctxm, "namespace", where)) < 0)
			goto out;
		if (!cluster || !*cluster) {
			r = tm_error_set(TM_ECONFIG, "%s: %s.cluster is missing", c.origin, where);
			goto out;
		}
	}
	if ((r = find_named(&cl, &c, root, "clusters", "cluster", cluster)) < 0)
		goto out;
	if (!cl) {
		r = tm_error_set(TM_ECONFIG, "%s: cluster \"%.128s\" has no settings", c.origin,
				 cluster);
		goto out;
	}
	if ((r = parse_cluster(kc, &c, cl, cluster)) < 0)
		goto out;
	if (user && *user) {
		if ((r = find_named(&us, &c, root, "users", "user", user)) < 0 ||
		    (r = parse_user(kc, &c, us, user)) < 0)
			goto out;
	}
	if (ns && *ns && (r = dup_str(&kc->namespace, ns)) < 0)
		goto out;
	*out = kc;
	kc = NULL;
	r = 0;
out:
	tm_kubeconfig_free(kc);
	tm_doc_free(root);
	return r;
}

int tm_kubeconfig_load(struct tm_kubeconfig **out, const char *path, const char *context)
{
	struct tm_buf b;
	int r;

	*out = NULL;
	tm_buf_init(&b, TM_KUBECONFIG_MAX + 1);
	r = tm_kubeconfig_read_file(&b, path, TM_KUBECONFIG_MAX);
	if (r == TM_ENOTFOUND)
		r = tm_error_set(TM_ECONFIG,
				 "kubeconfig %s does not exist (set [kubernetes] kubeconfig)",
				 path);
	if (r == 0)
		r = tm_kubeconfig_parse(out, b.ptr, b.len, path, context);
	tm_buf_free_secret(&b);
	return r;
}

int tm_kubeconfig_in_cluster(struct tm_kubeconfig **out, const char *sa_dir)
{
	struct tm_kubeconfig *kc;
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT");
	char buf[4096 + 64];
	struct tm_buf nsb;
	int r;

	*out = NULL;
	if (!sa_dir)
		sa_dir = TM_KUBE_SA_DIR;
	if (!host || !*host)
		return tm_error_set(TM_ECONFIG,
				    "in-cluster: KUBERNETES_SERVICE_HOST is not set "
				    "(not running in a pod; set [kubernetes] kubeconfig)");
	if (!port || !*port)
		port = "443";
	if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
	    strcspn(host, " /?#@\t\r\n") != strlen(host) || strlen(host) > 255)
		return tm_error_set(TM_ECONFIG,
				    "in-cluster: KUBERNETES_SERVICE_HOST/PORT are malformed");
	if (!(kc = calloc(1, sizeof(*kc))))
		return tm_error_nomem();
	/* An IPv6 address needs brackets in a URL. */
	snprintf(buf, sizeof(buf), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		 port);
	if ((r = dup_str(&kc->origin, "in-cluster service account")) < 0 ||
	    (r = dup_str(&kc->server, buf)) < 0)
		goto fail;
	snprintf(buf, sizeof(buf), "%s/ca.crt", sa_dir);
	if ((r = dup_str(&kc->ca_file, buf)) < 0)
		goto fail;
	snprintf(buf, sizeof(buf), "%s/token", sa_dir);
	if ((r = dup_str(&kc->token_file, buf)) < 0)
		goto fail;
	snprintf(buf, sizeof(buf), "%s/namespace", sa_dir);
	tm_buf_init(&nsb, 1024);
	if (tm_kubeconfig_read_file(&nsb, buf, 253) == 0 && nsb.len) {
		while (nsb.len && (nsb.ptr[nsb.len - 1] == '\n' || nsb.ptr[nsb.len - 1] == ' '))
			nsb.ptr[--nsb.len] = '\0';
		if (nsb.len)
			kc->namespace = tm_buf_detach(&nsb);
	}
	tm_buf_free(&nsb);
	tm_error_clear();
	*out = kc;
	return 0;
fail:
	tm_kubeconfig_free(kc);
	return r;
}

int tm_kubeconfig_token(char **out, const struct tm_kubeconfig *kc)
{
	struct tm_buf b;
	int r;

	*out = NULL;
	if (kc->token_file) {
		tm_buf_init(&b, TOKEN_MAX + 1);
		r = tm_kubeconfig_read_file(&b, kc->token_file, TOKEN_MAX);
		if (r < 0) {
			tm_buf_free_secret(&b);
			return tm_error_wrap(r == TM_ENOTFOUND ? TM_ECONFIG : r, "%s: token file",
					     kc->origin);
		}
		while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r' ||
				 b.ptr[b.len - 1] == ' ' || b.ptr[b.len - 1] == '\t'))
			b.ptr[--b.len] = '\0';
		if (!b.len || memchr(b.ptr, '\0', b.len)) {
			tm_buf_free_secret(&b);
			return tm_error_set(TM_ECONFIG, "%s: token file %s is empty or not text",
					    kc->origin, kc->token_file);
		}
		*out = tm_buf_detach(&b);
		return 0;
	}
	if (kc->token && !(*out = strdup(kc->token)))
		return tm_error_nomem();
	return 0;
}
