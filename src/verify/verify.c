/*
 * verify.c — the verification policy (SPEC.md "Tracking, signatures,
 * rollout").
 *
 * Input is only what the advertisement showed and the raw tag/commit objects
 * fetched for it (split by gitobj); no tree or blob of the revision is read
 * before a verdict.
 */
#include "tagmoor/verify/verify.h"
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/config/config.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/verify/rawobj.h"
#include "tagmoor/verify/openpgp.h"
#include "tagmoor/core/parse.h"
#include "tagmoor/verify/sshsig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RAW_MAX (1024 * 1024)

int tm_verify_parse_rollout(struct tm_rollout_wave *waves, size_t *n, const char *text, size_t len)
{
	char item[64];
	size_t pos = 0;

	*n = 0;
	while (pos < len) {
		const char *comma = memchr(text + pos, ',', len - pos);
		size_t end = comma ? (size_t)(comma - text) : len, s = pos, e = end;
		char *sp;
		unsigned pct;
		uint64_t ms;

		while (s < e && (text[s] == ' ' || text[s] == '\t'))
			s++;
		while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r'))
			e--;
		if (e - s == 0 || e - s >= sizeof(item))
			return tm_error_set(TM_EPARSE, "Tagmoor-Rollout: empty or overlong wave");
		memcpy(item, text + s, e - s);
		item[e - s] = '\0';
		sp = strchr(item, ' ');
		if (!sp)
			return tm_error_set(TM_EPARSE,
					    "Tagmoor-Rollout: wave '%s' is not 'PERCENT DELAY'",
					    item);
		*sp++ = '\0';
		while (*sp == ' ')
			sp++;
		if (!strchr(item, '%') || tm_parse_percent(&pct, item) < 0 || pct == 0)
			return tm_error_set(TM_EPARSE,
					    "Tagmoor-Rollout: '%s' is not a percentage 1-100%%",
					    item);
		if (tm_parse_duration(&ms, sp) < 0)
			return tm_error_set(TM_EPARSE, "Tagmoor-Rollout: '%s' is not a duration",
					    sp);
		if (*n >= TM_ROLLOUT_MAX_WAVES)
			return tm_error_set(TM_EPARSE, "Tagmoor-Rollout: more than %d waves",
					    TM_ROLLOUT_MAX_WAVES);
		if (*n > 0 && (pct <= waves[*n - 1].pct || ms < waves[*n - 1].delay_ms))
			return tm_error_set(
				TM_EPARSE,
				"Tagmoor-Rollout: waves must grow in percentage and delay");
		waves[*n].pct = pct;
		waves[*n].delay_ms = ms;
		(*n)++;
		pos = comma ? end + 1 : len;
	}
	if (*n == 0)
		return tm_error_set(TM_EPARSE, "Tagmoor-Rollout: no waves");
	if (waves[*n - 1].pct != 100)
		return tm_error_set(TM_EPARSE, "Tagmoor-Rollout: the last wave must be 100%%");
	return 0;
}

unsigned tm_verify_bucket(const char *device_id)
{
	unsigned char h[32];
	uint64_t v = 0;

	tm_crypto_hash(h, TM_HASH_SHA256, device_id, strlen(device_id));
	for (int i = 0; i < 8; i++)
		v = (v << 8) | h[i];
	return (unsigned)(v % 100);
}

/* Finds "Key: value" as a line of the message; a repeated key is an error. */
static int find_trailer(const char **val, size_t *vlen, const char *msg, size_t len,
			const char *key)
{
	size_t kl = strlen(key), pos = 0;
	int found = 0;

	*val = NULL;
	*vlen = 0;
	while (pos < len) {
		const char *nl = memchr(msg + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - msg) : len;
		if (end - pos > kl + 1 && memcmp(msg + pos, key, kl) == 0 && msg[pos + kl] == ':') {
			if (found++)
				return tm_error_set(TM_EPARSE, "%s appears more than once", key);
			size_t s = pos + kl + 1;
			while (s < end && (msg[s] == ' ' || msg[s] == '\t'))
				s++;
			size_t e = end;
			while (e > s && (msg[e - 1] == ' ' || msg[e - 1] == '\r'))
				e--;
			*val = msg + s;
			*vlen = e - s;
		}
		pos = end + 1;
	}
	return 0;
}

static int refuse(struct tm_verify_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int refuse(struct tm_verify_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
	res->outcome = TM_VERIFY_REFUSED;
	return 0;
}

/* Checks one signature against the configured trust; fills signer. */
static int check_signature(struct tm_verify_result *res, const struct tm_config *cfg, int kind,
			   const char *sig, size_t sig_len, const char *payload, size_t payload_len,
			   int64_t at, const char *what, int *ok)
{
	char *signer = NULL;
	int r;

	*ok = 0;
	if (kind == 1) {
		struct tm_sshsig_signers *signers = NULL;
		if (!cfg->verify.allowed_signers)
			return refuse(
				res,
				"%s is signed with an SSH key but no allowed_signers is configured",
				what);
		if ((r = tm_sshsig_signers_load(&signers, cfg->verify.allowed_signers)) < 0)
			return r == TM_ENOMEM ? r : tm_error_wrap(TM_ECONFIG, "allowed_signers");
		r = tm_sshsig_verify(&signer, signers, sig, sig_len, payload, payload_len, "git",
				     at);
		tm_sshsig_signers_free(signers);
	} else if (kind == 2) {
		struct tm_pgp_keyring *ring = NULL;
		int64_t sig_time = 0;
		if (!cfg->verify.openpgp_keyring)
			return refuse(
				res,
				"%s is signed with OpenPGP but no openpgp_keyring is configured",
				what);
		if ((r = tm_pgp_keyring_load(&ring, cfg->verify.openpgp_keyring)) < 0)
			return r == TM_ENOMEM ? r : tm_error_wrap(TM_ECONFIG, "openpgp_keyring");
		r = tm_pgp_verify(&signer, &sig_time, ring, sig, sig_len, payload, payload_len, at);
		tm_pgp_keyring_free(ring);
	} else {
		return refuse(res, "%s is not signed", what);
	}
	if (r == TM_ENOMEM)
		return r;
	if (r < 0)
		return refuse(res, "%s: %s", what, tm_error_last());
	snprintf(res->signer, sizeof(res->signer), "%s", signer);
	free(signer);
	*ok = 1;
	return 0;
}

/* SHA-256 over a label and the signed bytes, as 64 hex digits. */
static void revision_key(char out[65], const char *label, const char *data, size_t len)
{
	unsigned char h[32];
	struct tm_span parts[2] = { { label, strlen(label) + 1 }, { data, len } };

	tm_crypto_hashv(h, TM_HASH_SHA256, parts, 2);
	tm_hex(out, h, 32);
}

int64_t tm_verify_effective_now(int64_t now, int64_t floor)
{
	return floor > now ? floor : now;
}

enum tm_verify_outcome tm_verify_freshness(char *reason, size_t reason_len,
					   const struct tm_config *cfg, int64_t rev_time,
					   int64_t expires, int64_t now)
{
	char a[32];

	if (expires >= 0 && now >= expires) {
		tm_time_format(a, sizeof(a), expires);
		snprintf(reason, reason_len, "revision expired at %s (Tagmoor-Expires)", a);
		return TM_VERIFY_STALE;
	}
	/* a revision dated after now (a device clock that lags) is fresh */
	if (cfg->verify.max_age_ms && rev_time >= 0 && now > rev_time &&
	    (uint64_t)(now - rev_time) * 1000 > cfg->verify.max_age_ms) {
		tm_format_duration(a, sizeof(a), cfg->verify.max_age_ms);
		snprintf(reason, reason_len, "signed revision is older than max_age (%s)", a);
		return TM_VERIFY_STALE;
	}
	return TM_VERIFY_ACCEPTED;
}

/* The message of a commit: what follows the first empty line of its payload. */
static void commit_message(const char **msg, size_t *len, const struct tm_gitobj_commit *c)
{
	const char *p = c->payload, *end = c->payload + c->payload_len;

	*msg = end;
	*len = 0;
	for (; p + 1 < end; p++) {
		if (p[0] == '\n' && p[1] == '\n') {
			*msg = p + 2;
			*len = (size_t)(end - *msg);
			return;
		}
	}
}

/* Expiry, rollout and fleet from the trailers of the signed message. */
static int read_trailers(struct tm_verify_result *res, const struct tm_config *cfg, const char *msg,
			 size_t msg_len, const char *what)
{
	const char *v;
	size_t vl;

	if (find_trailer(&v, &vl, msg, msg_len, "Tagmoor-Expires") < 0 ||
	    (v && tm_time_parse(&res->expires, v, vl) < 0))
		return refuse(res, "%s: %s", what, tm_error_last());
	if (find_trailer(&v, &vl, msg, msg_len, "Tagmoor-Fleet") < 0)
		return refuse(res, "%s: %s", what, tm_error_last());
	if (v)
		snprintf(res->fleet, sizeof(res->fleet), "%.*s", (int)(vl < 127 ? vl : 127), v);
	if (cfg->verify.fleet &&
	    (!v || vl != strlen(cfg->verify.fleet) || memcmp(v, cfg->verify.fleet, vl) != 0))
		return refuse(res, "%s is not signed for fleet '%s' (%s)", what, cfg->verify.fleet,
			      v ? "its Tagmoor-Fleet names another" : "no Tagmoor-Fleet trailer");
	if (find_trailer(&v, &vl, msg, msg_len, "Tagmoor-Rollout") < 0)
		return refuse(res, "%s: %s", what, tm_error_last());
	if (v) {
		struct tm_rollout_wave waves[TM_ROLLOUT_MAX_WAVES];
		size_t nw;
		if (tm_verify_parse_rollout(waves, &nw, v, vl) < 0)
			return refuse(res, "%s: %s", what, tm_error_last());
		for (size_t i = 0; i < nw; i++) {
			if (res->bucket < waves[i].pct) {
				res->wave_pct = waves[i].pct;
				res->apply_at = res->tag_time + (int64_t)(waves[i].delay_ms / 1000);
				break;
			}
		}
	}
	return 0;
}

/* A tag or commit object of at most RAW_MAX bytes (TM_ENOTFOUND when absent). */
static int read_obj(const struct tm_objsrc *src, const char *oid, int *type, const char **raw,
		    size_t *len)
{
	int r = src->read(src->ctx, oid, type, raw, len);

	if (r == 0 && *len > RAW_MAX)
		r = tm_error_set(TM_ELIMIT, "object %s is %zu bytes, larger than the limit of %d",
				 oid, *len, RAW_MAX);
	return r;
}

/* The object oid (served as ref): an annotated tag around a commit, or a commit; the tag is
 * parsed into *tag (pointing into raw). Anything else is refused. */
static int read_named(struct tm_verify_result *res, struct tm_gitobj_tag *tag, int *have_tag,
		      const struct tm_objsrc *src, const char *ref, const char *oid)
{
	const char *raw;
	size_t len;
	int type = 0, r;

	if ((r = read_obj(src, oid, &type, &raw, &len)) < 0)
		return r;
	if (type == TM_OBJ_TAG) {
		if ((r = tm_gitobj_parse_tag(tag, raw, len)) < 0) {
			r = refuse(res, "tag %s: %s", oid, tm_error_last());
			return r;
		}
		*have_tag = 1;
		memcpy(res->tag_object, oid, 40);
		snprintf(res->tag_name, sizeof(res->tag_name), "%.*s",
			 (int)(tag->name_len < 255 ? tag->name_len : 255), tag->name);
		memcpy(res->commit, tag->object, 41);
		if (tag->type_len != 6 || memcmp(tag->type, "commit", 6) != 0) {
			r = refuse(
				res,
				"tag '%s' points to a %.*s, not a commit (nested tags are refused)",
				res->tag_name, (int)(tag->type_len > 16 ? 16 : tag->type_len),
				tag->type);
			return r;
		}
	} else if (type == TM_OBJ_COMMIT) {
		memcpy(res->commit, oid, 40);
		res->commit[40] = '\0';
	} else {
		r = refuse(res, "%s does not name a tag or a commit", ref);
		return r;
	}
	return 0;
}

/* The tag modes: an annotated tag under the name it was served as, with a tagger time, and
 * signed by a trusted key (*ok). */
static int verify_tag(struct tm_verify_result *res, const struct tm_config *cfg,
		      const struct tm_gitobj_tag *tag, int have_tag, const char *ref,
		      int64_t eff_now, int *ok)
{
	const char *want_name = strncmp(ref, "refs/tags/", 10) == 0 ? ref + 10 : NULL;
	char what[300];
	int r = 0;

	*ok = 0;
	if (!have_tag) {
		r = refuse(res,
			   "%s is a lightweight tag or not a tag; mode = %s needs an "
			   "annotated, signed tag",
			   ref, tm_verify_mode_name(cfg->verify.mode));
		return r;
	}
	if (!want_name || tag->name_len != strlen(want_name) ||
	    memcmp(tag->name, want_name, tag->name_len) != 0) {
		r = refuse(res,
			   "tag object is named '%s' but was served as %s (a signed tag under "
			   "another name is refused)",
			   res->tag_name, ref);
		return r;
	}
	if (tag->tagger_time < 0) {
		r = refuse(res, "tag '%s' has no tagger line (needed for anti-rollback)",
			   res->tag_name);
		return r;
	}
	snprintf(what, sizeof(what), "tag '%s'", res->tag_name);
	return check_signature(res, cfg, tag->sig_kind, tag->signature, tag->signature_len,
			       tag->payload, tag->payload_len, eff_now, what, ok);
}

/* The signed time against this device's clock (not far in the future) and against the floor
 * (never older than the last accepted revision, nor another one with the same time). */
static int check_time(struct tm_verify_result *res, const struct tm_verify_floor *floor,
		      int64_t now, int mode, int have_tag)
{
	int64_t last_time = floor ? floor->time : -1;

	/* A revision far in the future could raise the floor for good. With a
	 * clock that is not set (before TM_VERIFY_CLOCK_SANE) this cannot be
	 * judged; the floor still only grows with signed times. */
	if (now >= TM_VERIFY_CLOCK_SANE && res->tag_time > now + TM_VERIFY_MAX_FUTURE) {
		char a[32];
		tm_time_format(a, sizeof(a), res->tag_time);
		return refuse(res, "%s is dated %s, more than %d minutes after this device's clock",
			      have_tag && mode != TM_VERIFY_COMMIT ? "tag time" : "commit time", a,
			      TM_VERIFY_MAX_FUTURE / 60);
	}
	/* Anti-rollback: never go back to an older signed revision, nor to
	 * another one with the same time as the newest accepted. */
	if (last_time >= 0 && res->tag_time < last_time) {
		char a[32], b[32];
		tm_time_format(a, sizeof(a), res->tag_time);
		tm_time_format(b, sizeof(b), last_time);
		return refuse(res, "replay refused: %s %s is older than the last accepted one (%s)",
			      mode == TM_VERIFY_TAG || mode == TM_VERIFY_TAG_COMMIT ? "tag time"
										    : "commit time",
			      a, b);
	}
	if (last_time >= 0 && res->tag_time == last_time && floor->key && floor->key[0] &&
	    strcmp(floor->key, res->key) != 0) {
		char a[32];
		tm_time_format(a, sizeof(a), res->tag_time);
		return refuse(
			res,
			"replay refused: another revision has the same signed time (%s) as the "
			"last accepted one",
			a);
	}
	return 0;
}

int tm_verify_revision(struct tm_verify_result *res, const struct tm_objsrc *src,
		       const struct tm_config *cfg, const char *ref, const char *oid,
		       const struct tm_verify_floor *floor, int64_t now)
{
	const char *craw = NULL;
	size_t clen = 0;
	struct tm_gitobj_tag tag;
	struct tm_gitobj_commit csig = { 0 };
	const char *msg = NULL;
	size_t msg_len = 0;
	int type = 0, r, ok, mode = cfg->verify.mode, have_tag = 0;
	int64_t last_time = floor ? floor->time : -1;
	/* Key lifetimes are judged on the device's clock, never on a time the
	 * signer wrote; the clock is never taken to be before the floor. */
	int64_t eff_now = tm_verify_effective_now(now, last_time);
	char what[300];

	memset(res, 0, sizeof(*res));
	res->tag_time = res->expires = -1;
	res->apply_at = 0;
	res->bucket = tm_verify_bucket(cfg->agent.device_id);
	if ((r = read_named(res, &tag, &have_tag, src, ref, oid)) < 0 ||
	    res->outcome == TM_VERIFY_REFUSED)
		goto out;

	if ((mode == TM_VERIFY_TAG || mode == TM_VERIFY_TAG_COMMIT) &&
	    ((r = verify_tag(res, cfg, &tag, have_tag, ref, eff_now, &ok)) < 0 || !ok))
		goto out;
	r = read_obj(src, res->commit, &type, &craw, &clen);
	if (r == TM_ENOTFOUND) {
		r = refuse(res, "commit %s is not in the fetched objects", res->commit);
		goto out;
	}
	if (r < 0)
		goto out;
	if (type != TM_OBJ_COMMIT || tm_gitobj_parse_commit(&csig, craw, clen) < 0) {
		r = refuse(res, "commit %s: %s", res->commit,
			   type != TM_OBJ_COMMIT ? "not a commit" : tm_error_last());
		goto out;
	}
	if (mode == TM_VERIFY_COMMIT || mode == TM_VERIFY_TAG_COMMIT) {
		char tagsigner[256];
		snprintf(tagsigner, sizeof(tagsigner), "%s", res->signer);
		snprintf(what, sizeof(what), "commit %.12s", res->commit);
		if ((r = check_signature(res, cfg, csig.sig_kind, csig.signature,
					 csig.signature_len, csig.payload, csig.payload_len,
					 eff_now, what, &ok)) < 0 ||
		    !ok)
			goto out;
		if (mode == TM_VERIFY_TAG_COMMIT)
			snprintf(res->signer, sizeof(res->signer), "%s", tagsigner);
	}

	/* What decides from here on is the signed object only: the tag in the
	 * tag modes, the commit in commit mode (a tag around a signed commit is
	 * not signed there, so its time and message count for nothing). */
	if (mode == TM_VERIFY_TAG || mode == TM_VERIFY_TAG_COMMIT) {
		res->tag_time = tag.tagger_time;
		msg = tag.message;
		msg_len = tag.message_len;
		revision_key(res->key, "tag", tag.payload, tag.payload_len);
		snprintf(what, sizeof(what), "tag '%s'", res->tag_name);
	} else if (mode == TM_VERIFY_COMMIT) {
		res->tag_time = csig.committer_time;
		commit_message(&msg, &msg_len, &csig);
		revision_key(res->key, "commit", csig.payload, csig.payload_len);
		snprintf(what, sizeof(what), "commit %.12s", res->commit);
	} else {
		/* mode = none: nothing is signed; the commit's time, no trailers */
		res->tag_time = csig.committer_time;
		revision_key(res->key, "none", craw, clen);
	}

	if ((r = check_time(res, floor, now, mode, have_tag)) < 0 ||
	    res->outcome == TM_VERIFY_REFUSED)
		goto out;

	if (msg && (r = read_trailers(res, cfg, msg, msg_len, what)) < 0)
		goto out;
	if (res->outcome == TM_VERIFY_REFUSED) {
		r = 0;
		goto out;
	}
	res->outcome = tm_verify_freshness(res->reason, sizeof(res->reason), cfg, res->tag_time,
					   res->expires, eff_now);
	if (res->outcome == TM_VERIFY_ACCEPTED && res->apply_at > eff_now) {
		char a[32];
		tm_time_format(a, sizeof(a), res->apply_at);
		snprintf(res->reason, sizeof(res->reason),
			 "rollout: bucket %u is in the %u%% wave, which starts at %s", res->bucket,
			 res->wave_pct, a);
		res->outcome = TM_VERIFY_WAIT;
	}
	r = 0;
out:
	tm_gitobj_commit_free(&csig);
	return r;
}
