/*
 * applier.h — the one small table through which a target (systemd units,
 * Kubernetes objects, later files or containers) plugs into the reconcile
 * pass. reconcile/plan never know what a unit or a Deployment is; an applier
 * never knows about Git, signatures or state files.
 *
 * Objects are identified by a stable string id:
 *   systemd:    the unit file name ("web.service") or drop-in ("web.service.d/10-env.conf")
 *   kubernetes: "group/Kind/namespace/name" ("apps/Deployment/default/web", "/Namespace//demo")
 * The same id in a later `paths` entry replaces the one from an earlier entry.
 */
#ifndef TAGMOOR_APPLIER_H
#define TAGMOOR_APPLIER_H

#include <stddef.h>
#include <stdint.h>

struct tm_config;

struct tm_object {
	char *id;      /* stable identity, see above */
	char *source;  /* repository path it came from (for messages) */
	char *content; /* what is to be applied (expanded), NUL-terminated */
	size_t len;
	void *data; /* applier-private parsed form, freed by the applier's free_data */
};

struct tm_objset {
	struct tm_object *v;
	size_t n, cap;
};

/* What a pass did, per applier: feeds state.json and the status document. */
struct tm_apply_result {
	unsigned applied, unchanged, pruned;
	char **unhealthy; /* ids that failed health, malloc'd */
	size_t nunhealthy;
	char **changed; /* ids that were (re)written / applied this pass */
	size_t nchanged;
	char **drifted; /* ids found changed by hand and repaired */
	size_t ndrifted;
	char *error_object; /* the object a failure is about, or NULL */
	int unreachable;    /* the failure was the target (cluster) being unreachable: it says
				 * nothing about the revision, which is retried, not marked bad */
};

struct tm_applier_ctx {
	const struct tm_config *cfg;
	const char *root; /* --root DIR or NULL: pre-seed only, start nothing */
	int dry_run;      /* diff: compute and print, change nothing */
	void *out;        /* FILE * for diff output when dry_run */
	/* Set by the pass (may be NULL, e.g. in test drivers): an applier calls
	 * it after its checks and before its first write, with the ids it is
	 * about to write or create. The pass adds them to the inventory and
	 * saves state.json before returning, so a kill between a write and the
	 * end of the pass never leaves an object tagmoor wrote but does not own.
	 * Only ids that passed the foreign-object check may be passed. A
	 * negative return aborts the apply before anything is written. */
	int (*record)(void *arg, const char *applier, char *const *ids, size_t n);
	void *record_arg;
};

struct tm_applier {
	const char *name; /* "systemd", "kubernetes": also the state.json key */
	/* Whether a repository file (path relative to the repo root, basename
	 * given separately) belongs to this applier; others are ignored. */
	int (*wants)(const char *path, const char *basename);
	/* Turns one file into objects appended to out; relpath is relative to
	 * the `paths` entry it was found under. Errors name the path. */
	int (*parse)(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
		     const char *relpath, const char *content, size_t len);
	void (*free_data)(void *data);
	/* Optional: a pass begins (before its first apply, prune, health or
	 * drift). *state is what the applier keeps between the calls of this
	 * pass (a client, a lease) and is handed to each of them, then to end;
	 * without begin it is NULL. */
	int (*begin)(const struct tm_applier_ctx *ctx, void **state);
	/* Makes the live state match `desired`: writes/applies what changed.
	 * inventory: ids tagmoor applied before (it may only touch those and
	 * the desired ones). */
	int (*apply)(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		     const struct tm_objset *desired, char *const *inventory, size_t ninventory);
	/* Removes objects in inventory but not in desired. Those that could not be
	 * removed stay in *kept (malloc'd ids) so they remain in the inventory. */
	int (*prune)(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		     const struct tm_objset *desired, char *const *inventory, size_t ninventory,
		     char ***kept, size_t *nkept);
	/* Waits up to wait_ms for what was applied to become healthy. */
	int (*health)(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		      const struct tm_objset *desired, uint64_t wait_ms);
	/* Finds live objects that differ from desired, repairs them (unless
	 * dry_run) and lists them in res->drifted. */
	int (*drift)(void *state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
		     const struct tm_objset *desired);
	/* Optional: the pass is over, whatever happened: releases what state
	 * holds (locks, leases) and frees it. Called once per begin. */
	void (*end)(void *state);
};

/* objset helpers */
int tm_objset_add(struct tm_objset *set, const char *id, const char *source, const char *content,
		  size_t len, void *data);
/* The same with content[0..len] (NUL-terminated, from malloc) taken over: freed
 * with the set, or at once when the add fails (data is not). */
int tm_objset_take(struct tm_objset *set, const char *id, const char *source, char *content,
		   size_t len, void *data);
/* Index of id or -1. */
long tm_objset_find(const struct tm_objset *set, const char *id);
void tm_objset_free(struct tm_objset *set, void (*free_data)(void *));
void tm_apply_result_free(struct tm_apply_result *res);
/* Names the object a failure is about, once: the first call wins (later ones keep it). */
int tm_apply_result_set_object(struct tm_apply_result *res, const char *id);
/* Appends a malloc'd copy of id to a list (changed, drifted, unhealthy). */
int tm_strv_push(char ***v, size_t *n, const char *s);
void tm_strv_free(char **v, size_t n);

extern const struct tm_applier tm_systemd_applier;

#endif
