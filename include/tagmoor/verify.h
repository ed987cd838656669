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

#include "tagmoor/gitobj.h"

struct tm_config;
struct tm_git;

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
/* RFC 3339 UTC "2026-12-31T00:00:00Z" → seconds. */
int tm_verify_parse_time(int64_t *out, const char *s, size_t len);
void tm_verify_format_time(char *out, size_t outlen, int64_t t);

enum tm_verify_outcome {
	TM_VERIFY_ACCEPTED = 0,  /* apply now */
	TM_VERIFY_WAIT,          /* valid, but this device's rollout wave has not come */
	TM_VERIFY_STALE,         /* valid signature, but expired or older than max_age */
	TM_VERIFY_REFUSED        /* signature, name, anti-rollback: never apply */
};

struct tm_verify_result {
	enum tm_verify_outcome outcome;
	char commit[41];
	char tag_object[41];      /* "" for a branch / lightweight ref */
	char tag_name[256];
	char signer[256];         /* principal (ssh) or user id (OpenPGP); "" for none */
	int64_t tag_time;         /* tagger time (tag modes) or committer time; -1 unknown */
	int64_t expires;          /* Tagmoor-Expires or -1 */
	int64_t apply_at;         /* earliest time this device may apply (rollout) */
	unsigned bucket;
	unsigned wave_pct;        /* the wave this device belongs to, 0 = no rollout */
	char reason[512];         /* why refused / waiting / stale */
};

/* Verifies object `oid` (what the advertisement showed for `ref`), already
 * fetched into git, under cfg's policy. last_time is the anti-rollback floor
 * (the newest accepted tag time, -1 none); now is the current time.
 * Returns 0 with out->outcome set (ACCEPTED/WAIT/STALE/REFUSED), or a
 * negative code for errors that are not verdicts (I/O, memory). */
int tm_verify_revision(struct tm_verify_result *out, struct tm_git *git, const struct tm_config *cfg,
		       const char *ref, const char *oid, int64_t last_time, int64_t now);

#endif
