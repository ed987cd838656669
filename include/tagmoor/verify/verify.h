/*
 * verify.h — the policy that decides whether a fetched revision may be
 * applied: which signature (tag, commit, both or none), the tag name, the
 * anti-rollback record, expiry and max_age, and this device's rollout wave.
 * Nothing from the repository is parsed beyond the tag/commit objects before
 * this has passed.
 */
#ifndef TAGMOOR_VERIFY_H
#define TAGMOOR_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/verify/gitobj.h"

struct tm_config;
struct tm_objsrc;

/* Tagmoor-Rollout: "10% 0h, 50% 6h, 100% 24h" — waves in increasing order. */
struct tm_rollout_wave {
	unsigned pct;
	uint64_t delay_ms;
};
#define TM_ROLLOUT_MAX_WAVES 16
int tm_verify_parse_rollout(struct tm_rollout_wave *waves, size_t *n, const char *text, size_t len);
/* The documented stable bucket: first 8 bytes of SHA-256(device_id) as a
 * big-endian integer, mod 100. */
unsigned tm_verify_bucket(const char *device_id);

enum tm_verify_outcome {
	TM_VERIFY_ACCEPTED = 0, /* apply now */
	TM_VERIFY_WAIT,         /* valid, but this device's rollout wave has not come */
	TM_VERIFY_STALE,        /* valid signature, but expired or older than max_age */
	TM_VERIFY_REFUSED       /* signature, name, anti-rollback: never apply */
};

struct tm_verify_result {
	enum tm_verify_outcome outcome;
	char commit[41];
	char tag_object[41]; /* "" for a branch / lightweight ref */
	char tag_name[256];
	char signer[256]; /* principal (ssh) or user id (OpenPGP); "" for none */
	int64_t tag_time; /* the signed time: tagger time (tag modes), committer time
				   * (commit and none modes); -1 unknown */
	int64_t expires;  /* Tagmoor-Expires or -1 */
	int64_t apply_at; /* earliest time this device may apply (rollout) */
	unsigned bucket;
	unsigned wave_pct; /* the wave this device belongs to, 0 = no rollout */
	char fleet[128];   /* signed Tagmoor-Fleet, "" none */
	char key[65];      /* SHA-256 of what is signed: the identity of the revision
				   * (a re-encoded signature or armor gives the same key) */
	char reason[512];  /* why refused / waiting / stale */
};

/* The anti-rollback floor: the newest accepted signed time and the key of
 * the revision that set it ("" or NULL unknown). */
struct tm_verify_floor {
	int64_t time; /* -1 none */
	const char *key;
};

/* A clock before this (2026-01-01T00:00:00Z) is taken as not set (a device
 * without an RTC at first boot): the far-future check is skipped. */
#define TM_VERIFY_CLOCK_SANE 1767225600
/* A revision dated more than this after the device's clock is refused (so
 * that it cannot raise the floor for good); less is clock skew. */
#define TM_VERIFY_MAX_FUTURE 3600

/* The time used for key lifetimes, expiry and max_age: the device's clock,
 * but never before the floor (a newer signed time has been seen). */
int64_t tm_verify_effective_now(int64_t now, int64_t floor_time);

/* Expiry and max_age of a revision with signed time rev_time at `now`
 * (effective): TM_VERIFY_STALE with a reason, or TM_VERIFY_ACCEPTED. Pure
 * arithmetic, so it is re-evaluated on every poll. */
enum tm_verify_outcome tm_verify_freshness(char *reason, size_t reason_len,
					   const struct tm_config *cfg, int64_t rev_time,
					   int64_t expires, int64_t now);

/* Verifies object `oid` (what the advertisement showed for `ref`), read with
 * its commit from src (the object store, or what the fetcher sent), under
 * cfg's policy, against the anti-rollback floor (NULL: none) at the device's
 * clock `now`. Only signed data decides: in
 * the tag modes the tag (time, trailers), in commit mode the commit.
 * Returns 0 with out->outcome set (ACCEPTED/WAIT/STALE/REFUSED), or a
 * negative code for errors that are not verdicts (I/O, memory). */
int tm_verify_revision(struct tm_verify_result *out, const struct tm_objsrc *src,
		       const struct tm_config *cfg, const char *ref, const char *oid,
		       const struct tm_verify_floor *floor, int64_t now);

#endif
