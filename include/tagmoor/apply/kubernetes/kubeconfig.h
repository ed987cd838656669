/*
 * kubeconfig.h — where the Kubernetes API server is and how to prove who we
 * are: a kubeconfig file (k3s's /etc/rancher/k3s/k3s.yaml by default, see
 * config.c) or the in-cluster service account.
 *
 * Only what a device needs is read: the current context (or a named one),
 * its cluster (server, certificate-authority-data or certificate-authority)
 * and its user (client-certificate-data / client-key-data or the file
 * variants, token, tokenFile, username/password). Credential plugins (exec,
 * auth-provider) and insecure-skip-tls-verify are refused with a message that
 * names the file: a device must not run programs named by a kubeconfig nor
 * talk to an unverified server. Relative file names are relative to the
 * kubeconfig's directory, as kubectl takes them.
 *
 * Errors: TM_ECONFIG naming the file and the field, TM_EIO for unreadable
 * files, TM_ENOMEM. Secrets (key, token, password) are wiped when freed.
 */
#ifndef TAGMOOR_KUBECONFIG_H
#define TAGMOOR_KUBECONFIG_H

#include <stddef.h>

#include "tagmoor/core/buf.h"

#define TM_KUBECONFIG_MAX (1u << 20) /* a kubeconfig file */
#define TM_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct tm_kubeconfig {
	char *origin;          /* the file read, or "in-cluster service account" */
	char *context;         /* the context used (NULL in-cluster) */
	char *server;          /* "https://host:port" (+ path prefix), no trailing '/' */
	char *namespace;       /* the context's namespace or NULL */
	char *ca_file;         /* PEM bundle to trust, or NULL */
	unsigned char *ca_pem; /* decoded certificate-authority-data, or NULL */
	size_t ca_pem_len;
	char *cert_file, *key_file;
	unsigned char *cert_pem;
	size_t cert_pem_len;
	unsigned char *key_pem; /* secret */
	size_t key_pem_len;
	char *token;               /* secret */
	char *token_file;          /* re-read for every new client (rotated tokens) */
	char *username, *password; /* password: secret */
};

/* Parses kubeconfig text. context: the context to use, NULL for
 * current-context. origin names the file in messages and is where relative
 * file names are resolved from. */
int tm_kubeconfig_parse(struct tm_kubeconfig **out, const char *text, size_t len,
			const char *origin, const char *context);

/* Reads and parses a kubeconfig file (symbolic links are followed: this is
 * the operator's file, not repository content). */
int tm_kubeconfig_load(struct tm_kubeconfig **out, const char *path, const char *context);

/* The in-cluster service account: KUBERNETES_SERVICE_HOST/_PORT, and
 * sa_dir/{ca.crt,token,namespace} (sa_dir NULL: TM_KUBE_SA_DIR). The token
 * is not read here; tm_kubeconfig_token reads it each time. */
int tm_kubeconfig_in_cluster(struct tm_kubeconfig **out, const char *sa_dir);

/* The bearer token to send now: tokenFile re-read (so a rotated service
 * account token is picked up), else token, else none (*out NULL). The caller
 * wipes and frees *out. */
int tm_kubeconfig_token(char **out, const struct tm_kubeconfig *kc);

void tm_kubeconfig_free(struct tm_kubeconfig *kc);

/* Reads a file of at most max bytes, following symbolic links (kubeconfig,
 * token, CA files). TM_ENOTFOUND, TM_ELIMIT, TM_EIO with a message. */
int tm_kubeconfig_read_file(struct tm_buf *out, const char *path, size_t max);

#endif
