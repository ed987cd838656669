/*
 * state.h — what the device remembers between passes, in state_dir:
 * state.json (replaced atomically), the lock, and repo.git (owned by git).
 *
 * state.json holds the applied and last good revisions, the anti-rollback
 * floor (newest accepted tag time), revisions marked bad, the inventory of
 * every applier (what tagmoor applied and may therefore change or remove),
 * the report sequence number and the last status document. A file that does
 * not parse is moved aside and a fresh state is used — never a crash.
 * Deleting state_dir is always safe.
 */
#ifndef TAGMOOR_STATE_H
#define TAGMOOR_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/core/buf.h"

struct tm_revision {
	char commit[41];
	char tag_object[41];
	int64_t tag_time; /* the signed time; -1 unknown */
	int64_t expires;  /* signed Tagmoor-Expires; -1 none */
	char key[65];     /* what is signed (verify's key); "" unknown */
	char signer[256];
};

struct tm_inventory {
	char name[32]; /* applier name */
	char **ids;
	size_t n;
};

#define TM_STATE_MAX_INVENTORIES 4
#define TM_STATE_MAX_BAD 32
/* Ids an applier keeps owning although no revision declares them any more
 * (prune = no, or a failed removal): at most this many per applier, the
 * oldest forgotten first. */
#define TM_STATE_MAX_KEPT 4096

/* A revision marked bad: the advertised object id (checked before a fetch)
 * and the key of what is signed (checked after verification, so that a
 * re-encoded signature does not make a new revision). */
struct tm_bad {
	char oid[41];
	char key[65];
};

struct tm_state {
	struct tm_revision applied;
	struct tm_revision last_good;
	int64_t accepted_time;               /* anti-rollback floor; -1 none */
	char accepted_key[65];               /* key of the revision that set the floor */
	struct tm_bad bad[TM_STATE_MAX_BAD]; /* revisions marked bad (newest last) */
	size_t nbad;
	struct tm_inventory inv[TM_STATE_MAX_INVENTORIES];
	size_t ninv;
	uint64_t seq;        /* last report sequence number */
	char last_state[16]; /* state of the last recorded pass ("" none) */
	int64_t last_time;   /* when it ran; -1 none */
	char *last_status;   /* the last status document (JSON), or NULL */
	char *moved_aside;   /* set when a broken state.json was moved aside */
};

/* Takes state_dir/lock (creating state_dir); TM_ELOCKED when held. */
int tm_state_lock(int *out_fd, const char *state_dir);
void tm_state_unlock(int fd);

/* Loads state_dir/state.json and state_dir/floor; a missing file gives an
 * empty state. A state.json that does not parse is renamed
 * state.json.broken-<time> (only when !readonly; a read-only command such
 * as status never moves anything) and an empty state is returned; the floor
 * and seq are then still taken from `floor`, a small file written with
 * every save. An I/O error reading either file fails with TM_EIO and moves
 * nothing. */
int tm_state_load(struct tm_state *out, const char *state_dir, int readonly);
/* Writes floor then state.json, each atomically. */
int tm_state_save(const struct tm_state *st, const char *state_dir);
void tm_state_free(struct tm_state *st);

/* The inventory of an applier (created empty when absent). */
struct tm_inventory *tm_state_inventory(struct tm_state *st, const char *name);
/* Replaces an inventory's ids with a copy of ids. */
int tm_state_set_inventory(struct tm_state *st, const char *name, char *const *ids, size_t n);
/* Whether the advertised oid, or (key != NULL) the signed key, is marked bad. */
int tm_state_is_bad(const struct tm_state *st, const char *oid, const char *key);
void tm_state_mark_bad(struct tm_state *st, const char *oid, const char *key);
int tm_state_set_status(struct tm_state *st, const char *json);

#endif
