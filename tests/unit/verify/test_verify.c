/*
 * test_verify.c — the parsers and pure rules of the verification policy:
 * raw tag/commit splitting, Tagmoor-Rollout waves, the documented bucket
 * hash, RFC 3339 times. Signatures end to end are in the integration tier.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/time.h"
#include "tagmoor/verify/gitobj.h"
#include "tagmoor/verify/verify.h"

#define OBJ "0123456789abcdef0123456789abcdef01234567"
#define SSHSIG "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"

static void test_tag_split(void **state)
{
	const char *raw = "object " OBJ
			  "\ntype commit\ntag stable\ntagger R <r@x> 1700000000 +0100\n\n"
			  "release 1\n\nTagmoor-Rollout: 10% 0h, 100% 1h\n" SSHSIG;
	struct tm_gitobj_tag t;

	assert_int_equal(tm_gitobj_parse_tag(&t, raw, strlen(raw)), 0);
	assert_string_equal(t.object, OBJ);
	assert_int_equal(t.name_len, 6);
	assert_memory_equal(t.name, "stable", 6);
	assert_true(t.tagger_time == 1700000000);
	assert_int_equal(t.sig_kind, 1);
	assert_int_equal(t.signature_len, strlen(SSHSIG));
	assert_int_equal(t.payload_len, strlen(raw) - strlen(SSHSIG));
	assert_memory_equal(t.message, "release 1\n", 10);

	/* the last armored block wins (as git): an earlier one is message text */
	const char *two = "object " OBJ
			  "\ntype commit\ntag s\ntagger R <r@x> 1 +0000\n\nmsg\n" SSHSIG SSHSIG;
	assert_int_equal(tm_gitobj_parse_tag(&t, two, strlen(two)), 0);
	assert_int_equal(t.signature_len, strlen(SSHSIG));

	/* unsigned */
	const char *plain = "object " OBJ "\ntype commit\ntag s\ntagger R <r@x> 1 +0000\n\nmsg\n";
	assert_int_equal(tm_gitobj_parse_tag(&t, plain, strlen(plain)), 0);
	assert_int_equal(t.sig_kind, 0);
	assert_null(t.signature);
}

static void test_tag_refusals(void **state)
{
	static const char *const bad[] = {
		/* signature not last */
		"object " OBJ "\ntype commit\ntag s\ntagger R <r@x> 1 +0000\n\nm\n" SSHSIG
		"trailing text\n",
		/* unterminated block */
		"object " OBJ
		"\ntype commit\ntag s\ntagger R <r@x> 1 +0000\n\nm\n-----BEGIN SSH SIGNATURE-----\nAAA\n",
		/* header order */
		"type commit\nobject " OBJ "\ntag s\ntagger R <r@x> 1 +0000\n\nm\n",
		/* bad object id */
		"object 0123\ntype commit\ntag s\ntagger R <r@x> 1 +0000\n\nm\n",
		/* extra header */
		"object " OBJ "\ntype commit\ntag s\ntagger R <r@x> 1 +0000\ngpgsig x\n\nm\n",
		/* malformed tagger */
		"object " OBJ "\ntype commit\ntag s\ntagger R <r@x> soon +0000\n\nm\n",
		/* empty name */
		"object " OBJ "\ntype commit\ntag \ntagger R <r@x> 1 +0000\n\nm\n",
		/* truncated */
		"object " OBJ "\ntype commit\ntag s",
		"",
	};
	struct tm_gitobj_tag t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tm_gitobj_parse_tag(&t, bad[i], strlen(bad[i])) != TM_EPARSE) {
			print_error("case %zu accepted\n", i);
			fail();
		}
	}
	/* NUL byte */
	char nul[] = "object " OBJ "\ntype commit\ntag s\0x\ntagger R <r@x> 1 +0000\n\nm\n";
	assert_int_equal(tm_gitobj_parse_tag(&t, nul, sizeof(nul) - 1), TM_EPARSE);
}

static void test_commit_split(void **state)
{
	const char *raw =
		"tree " OBJ "\nparent " OBJ
		"\nauthor A <a@x> 5 +0000\ncommitter C <c@x> 1700000001 +0000\n"
		"gpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----\n\nmessage\n";
	const char *payload =
		"tree " OBJ "\nparent " OBJ
		"\nauthor A <a@x> 5 +0000\ncommitter C <c@x> 1700000001 +0000\n\nmessage\n";
	struct tm_gitobj_commit c;

	assert_int_equal(tm_gitobj_parse_commit(&c, raw, strlen(raw)), 0);
	assert_string_equal(c.payload, payload);
	assert_string_equal(c.signature, SSHSIG);
	assert_int_equal(c.sig_kind, 1);
	assert_true(c.committer_time == 1700000001);
	assert_string_equal(c.tree, OBJ);
	tm_gitobj_commit_free(&c);

	const char *dup = "tree " OBJ "\ncommitter C <c@x> 1 +0000\ngpgsig a\ngpgsig b\n\nm\n";
	assert_int_equal(tm_gitobj_parse_commit(&c, dup, strlen(dup)), TM_EPARSE);
	const char *notree = "committer C <c@x> 1 +0000\n\nm\n";
	assert_int_equal(tm_gitobj_parse_commit(&c, notree, strlen(notree)), TM_EPARSE);
}

static void test_rollout(void **state)
{
	struct tm_rollout_wave w[TM_ROLLOUT_MAX_WAVES];
	size_t n;
	const char *ok = "10% 0h, 50% 6h, 100% 24h";
	static const char *const bad[] = {
		"",
		"10%",
		"10% 1h, 5% 2h",
		"10% 2h, 50% 1h",
		"10% 1h",
		"0% 0h, 100% 1h",
		"101% 1h",
		"10 1h, 100% 2h",
		"10% soon, 100% 1h",
		"10% 1h,, 100% 2h",
	};

	assert_int_equal(tm_verify_parse_rollout(w, &n, ok, strlen(ok)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(w[0].pct, 10);
	assert_true(w[0].delay_ms == 0);
	assert_int_equal(w[1].pct, 50);
	assert_true(w[1].delay_ms == 6 * 3600000ull);
	assert_true(w[2].delay_ms == 24 * 3600000ull);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tm_verify_parse_rollout(w, &n, bad[i], strlen(bad[i])) != TM_EPARSE) {
			print_error("accepted rollout '%s'\n", bad[i]);
			fail();
		}
	}
}

static void test_bucket_is_documented_hash(void **state)
{
	/* SHA-256("edge-0042") starts 6390cd80...: the first 8 bytes big-endian
	 * mod 100 is 15 (computed independently with python3 hashlib). */
	unsigned b = tm_verify_bucket("edge-0042");
	assert_true(b < 100);
	assert_int_equal(b, tm_verify_bucket("edge-0042")); /* stable */
	assert_int_equal(b, 15);
	/* spread: 1000 ids fill most buckets */
	int seen[100] = { 0 }, filled = 0;
	char id[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "dev-%d", i);
		seen[tm_verify_bucket(id)] = 1;
	}
	for (int i = 0; i < 100; i++)
		filled += seen[i];
	assert_true(filled > 95);
}

/* Freshness is pure arithmetic: a revision dated after the clock (skew) is
 * fresh, never "older than max_age" by an unsigned wrap-around. */
static void test_freshness(void **state)
{
	struct tm_config cfg;
	char why[256];
	const int64_t t = 1800000000;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(tm_verify_freshness(why, sizeof(why), &cfg, t, -1, t + 100 * 86400),
			 TM_VERIFY_ACCEPTED);
	cfg.verify.max_age_ms = 3600 * 1000;
	assert_int_equal(tm_verify_freshness(why, sizeof(why), &cfg, t, -1, t + 3600),
			 TM_VERIFY_ACCEPTED);
	assert_int_equal(tm_verify_freshness(why, sizeof(why), &cfg, t, -1, t + 3601),
			 TM_VERIFY_STALE);
	assert_non_null(strstr(why, "max_age"));
	/* dated two minutes after the device's clock: fresh */
	assert_int_equal(tm_verify_freshness(why, sizeof(why), &cfg, t, -1, t - 120),
			 TM_VERIFY_ACCEPTED);
	assert_int_equal(tm_verify_freshness(why, sizeof(why), &cfg, t, -1, 5), TM_VERIFY_ACCEPTED);
	/* expiry: at the instant it is stale */
	assert_int_equal(tm_verify_freshness(why, sizeof(why), &cfg, t, t + 10, t + 9),
			 TM_VERIFY_ACCEPTED);
	assert_int_equal(tm_verify_freshness(why, sizeof(why), &cfg, t, t + 10, t + 10),
			 TM_VERIFY_STALE);
	assert_non_null(strstr(why, "expired"));
}

/* The clock used for key lifetimes never goes below the floor. */
static void test_effective_now(void **state)
{
	assert_true(tm_verify_effective_now(100, -1) == 100);
	assert_true(tm_verify_effective_now(100, 2000) == 2000);
	assert_true(tm_verify_effective_now(3000, 2000) == 3000);
	assert_true(TM_VERIFY_CLOCK_SANE == 1767225600); /* 2026-01-01T00:00:00Z */
	int64_t t;
	assert_int_equal(tm_time_parse(&t, "2026-01-01T00:00:00Z", 20), 0);
	assert_true(t == TM_VERIFY_CLOCK_SANE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_split),
		cmocka_unit_test(test_tag_refusals),
		cmocka_unit_test(test_commit_split),
		cmocka_unit_test(test_rollout),
		cmocka_unit_test(test_bucket_is_documented_hash),
		cmocka_unit_test(test_freshness),
		cmocka_unit_test(test_effective_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
