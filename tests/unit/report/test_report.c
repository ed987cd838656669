/*
 * test_report.c — the reporter's pieces without a network: restamping a
 * status document (seq, time, trigger, drop count; quotes inside strings
 * cannot fool it), Retry-After (seconds, HTTP-date, garbage, cap), the three
 * formats, the spool (order, bound, temp files ignored), report.last and the
 * "something new to say" fingerprint, seq never going back, heartbeats by
 * tick, and the metrics file (render/load round trip, rewritten only when a
 * value changes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/report/report.h"

static char dir[] = "/tmp/tm-report-XXXXXX";
static char statedir[256], promfile[256];

#define DOC(seq)                                                                                      \
	"{\"schema\":\"tagmoor.status/v1\",\"device_id\":\"a\\\",\\\"seq\\\":9\",\"hostname\":\"h\"," \
	"\"agent_version\":\"0.1.0\",\"seq\":" #seq                                                   \
	",\"time\":\"2026-11-26T12:00:00Z\",\"trigger\":\"pass\","                                    \
	"\"spool_dropped\":0,\"state\":\"synced\",\"errors\":[]}"

static void cfg_init(struct tm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->file = "test.ini";
	cfg->agent.device_id = "edge 42/x";
	cfg->agent.state_dir = statedir;
	cfg->source.timeout_ms = 2000;
	cfg->report.spool_max = 3;
	cfg->report.heartbeat_ms = 3600 * 1000;
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(statedir, sizeof(statedir), "%s/state", dir);
	snprintf(promfile, sizeof(promfile), "%s/tagmoor.prom", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_restamp(void **state)
{
	struct tm_buf b;
	(void)state;
	tm_buf_init(&b, 1 << 20);
	assert_int_equal(tm_report_restamp(&b, DOC(5), 77, 1800000000, "heartbeat", 3), 0);
	/* the escaped "seq" inside device_id is not the key */
	assert_non_null(strstr(b.ptr, "\"device_id\":\"a\\\",\\\"seq\\\":9\""));
	assert_non_null(
		strstr(b.ptr,
		       ",\"seq\":77,\"time\":\"2027-01-15T08:00:00Z\",\"trigger\":\"heartbeat\","
		       "\"spool_dropped\":3,\"state\":\"synced\""));
	assert_null(strstr(b.ptr, "\"seq\":5"));
	tm_buf_free(&b);
	tm_buf_init(&b, 1 << 20);
	assert_int_equal(tm_report_restamp(&b, "{\"state\":\"x\"}", 1, 0, "pass", 0), TM_EPARSE);
	tm_buf_free(&b);
}

static void test_retry_after(void **state)
{
	(void)state;
	assert_int_equal(tm_report_retry_after("5", 0), 5);
	assert_int_equal(tm_report_retry_after("0", 0), 0);
	assert_int_equal(tm_report_retry_after("99999999999", 0), 3600);
	assert_int_equal(tm_report_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10);
	assert_int_equal(tm_report_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);
	assert_int_equal(tm_report_retry_after("", 0), -1);
	assert_int_equal(tm_report_retry_after(NULL, 0), -1);
	assert_int_equal(tm_report_retry_after("soon", 0), -1);
	assert_int_equal(tm_report_retry_after("5s", 0), -1);
}

static void test_formats(void **state)
{
	struct tm_config cfg;
	struct tm_buf b;
	char ctype[64], *h[8];
	(void)state;
	cfg_init(&cfg);

	tm_buf_init(&b, 1 << 20);
	cfg.report.format = TM_REPORT_TAGMOOR;
	assert_int_equal(tm_report_format(&b, ctype, sizeof(ctype), h, 8, &cfg, DOC(5)), 0);
	assert_string_equal(ctype, "application/json");
	assert_string_equal(b.ptr, DOC(5));
	assert_null(h[0]);
	tm_buf_free(&b);

	tm_buf_init(&b, 1 << 20);
	cfg.report.format = TM_REPORT_CLOUDEVENTS;
	assert_int_equal(tm_report_format(&b, ctype, sizeof(ctype), h, 8, &cfg, DOC(5)), 0);
	assert_string_equal(ctype, "application/cloudevents+json; charset=utf-8");
	assert_non_null(strstr(b.ptr, "\"specversion\":\"1.0\""));
	assert_non_null(strstr(b.ptr, "\"id\":\"edge%2042%2Fx-5-2026-11-26T12:00:00Z\""));
	assert_non_null(strstr(b.ptr, "\"source\":\"urn:tagmoor:device:edge%2042%2Fx\""));
	assert_non_null(strstr(b.ptr, "\"type\":\"dev.tagmoor.status\""));
	assert_non_null(strstr(b.ptr, "\"time\":\"2026-11-26T12:00:00Z\""));
	assert_non_null(
		strstr(b.ptr, "\"datacontenttype\":\"application/json\",\"data\":" DOC(5) "}"));
	tm_buf_free(&b);

	tm_buf_init(&b, 1 << 20);
	cfg.report.format = TM_REPORT_CLOUDEVENTS_BINARY;
	assert_int_equal(tm_report_format(&b, ctype, sizeof(ctype), h, 8, &cfg, DOC(6)), 0);
	assert_string_equal(ctype, "application/json");
	assert_string_equal(b.ptr, DOC(6));
	assert_string_equal(h[0], "ce-specversion: 1.0");
	assert_string_equal(h[1], "ce-id: edge%2042%2Fx-6-2026-11-26T12:00:00Z");
	assert_string_equal(h[2], "ce-source: urn:tagmoor:device:edge%2042%2Fx");
	assert_string_equal(h[3], "ce-type: dev.tagmoor.status");
	assert_string_equal(h[4], "ce-subject: edge%2042%2Fx");
	assert_string_equal(h[5], "ce-time: 2026-11-26T12:00:00Z");
	assert_null(h[6]);
	for (int i = 0; h[i]; i++)
		free(h[i]);
	tm_buf_free(&b);
}

static void test_spool(void **state)
{
	uint64_t *v, dropped = 0, total = 0;
	size_t n;
	struct tm_buf b;
	char path[512];
	FILE *f;
	(void)state;

	for (uint64_t s = 10; s <= 14; s++) {
		assert_int_equal(tm_spool_put(statedir, s, DOC(1), 3, &dropped), 0);
		total += dropped;
	}
	assert_int_equal(total, 2);
	/* a kill's leftover and foreign names are not reports */
	snprintf(path, sizeof(path), "%s/spool/.00000000000000000015.json.tagmoor-tmp-abcdef",
		 statedir);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	snprintf(path, sizeof(path), "%s/spool/notes.txt", statedir);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	assert_int_equal(tm_spool_list(statedir, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_true(v[0] == 12 && v[1] == 13 && v[2] == 14);
	free(v);
	tm_spool_clean(statedir);
	snprintf(path, sizeof(path), "%s/spool/.00000000000000000015.json.tagmoor-tmp-abcdef",
		 statedir);
	assert_int_not_equal(access(path, F_OK), 0);
	tm_buf_init(&b, TM_REPORT_DOC_MAX + 1);
	assert_int_equal(tm_spool_read(&b, statedir, 13), 0);
	assert_string_equal(b.ptr, DOC(1));
	tm_buf_free(&b);
	assert_int_equal(tm_report_last_seq(statedir), 14);
	for (uint64_t s = 12; s <= 14; s++)
		assert_int_equal(tm_spool_remove(statedir, s), 0);
	assert_int_equal(tm_spool_list(statedir, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
}

static void test_record_and_heartbeat(void **state)
{
	struct tm_config cfg;
	struct tm_report_record rec;
	struct tm_buf b;
	uint64_t *v;
	size_t n;
	(void)state;
	cfg_init(&cfg);

	/* no url: recorded (status --json, fingerprint), nothing spooled */
	struct tm_report_event ev = { .doc = DOC(20),
				      .seq = 20,
				      .sig = "0123456789abcdef",
				      .state = "refused",
				      .message = "tag 'stable' is not signed",
				      .commit = "",
				      .time = 1800000000 };
	assert_int_equal(tm_report_submit(&cfg, &ev, NULL), 0);
	assert_int_equal(tm_report_record_load(&rec, statedir), 0);
	assert_int_equal(rec.seq, 20);
	assert_string_equal(rec.sig, "0123456789abcdef");
	assert_string_equal(rec.alert_state, "refused");
	assert_non_null(strstr(rec.doc, "\"seq\":20,"));
	tm_report_record_free(&rec);
	assert_int_equal(tm_report_wanted(&cfg, "0123456789abcdef"), 0);
	assert_int_equal(tm_report_wanted(&cfg, "fedcba9876543210"), 1);
	assert_int_equal(tm_report_last_seq(statedir), 20);

	/* an endpoint that is down: spooled; a heartbeat an hour later */
	cfg.report.url = "https://localhost:1/v1/status";
	ev.seq = 21;
	ev.sig = "1111111111111111";
	assert_int_equal(tm_report_submit(&cfg, &ev, NULL), 0);
	assert_int_equal(tm_report_tick(&cfg, 1800000000 + 60), 0); /* not yet */
	assert_int_equal(tm_spool_list(statedir, &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
	assert_true(tm_report_next_ms(&cfg) > 0); /* backing off */
	assert_int_equal(tm_report_tick(&cfg, 1800000000 + 3600), 0);
	assert_int_equal(tm_spool_list(statedir, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_true(v[0] == 21 && v[1] == 22);
	tm_buf_init(&b, TM_REPORT_DOC_MAX + 1);
	assert_int_equal(tm_spool_read(&b, statedir, 22), 0);
	assert_non_null(
		strstr(b.ptr,
		       "\"seq\":22,\"time\":\"2027-01-15T09:00:00Z\",\"trigger\":\"heartbeat\""));
	assert_non_null(strstr(b.ptr, "\"state\":\"synced\"")); /* the last document's content */
	tm_buf_free(&b);
	free(v);
	assert_int_equal(tm_report_last_seq(statedir), 22);
	/* the heartbeat keeps the pass fingerprint: an idle poll stays quiet */
	assert_int_equal(tm_report_wanted(&cfg, "1111111111111111"), 0);
	for (uint64_t s = 21; s <= 22; s++)
		tm_spool_remove(statedir, s);
}

static void test_metrics(void **state)
{
	struct tm_config cfg;
	struct tm_metrics m, back;
	struct stat st1, st2;
	(void)state;
	cfg_init(&cfg);
	cfg.report.metrics_file = promfile;

	tm_metrics_load(&m, promfile); /* missing: unknown */
	assert_int_equal(m.applied_time, -1);
	assert_int_equal(m.failures, 0);
	snprintf(m.state, sizeof(m.state), "rolled_back");
	m.applied_time = 1790000000;
	m.last_success = 1790000100;
	m.failures = 2;
	m.objects[1] = 7;
	m.spool_depth = 4;
	m.dropped_total = 9;
	m.duration_ms = 1234;
	assert_int_equal(tm_metrics_write(&cfg, &m), 0);
	assert_int_equal(stat(promfile, &st1), 0);
	tm_metrics_load(&back, promfile);
	assert_string_equal(back.state, "rolled_back");
	assert_int_equal(back.applied_time, 1790000000);
	assert_int_equal(back.last_success, 1790000100);
	assert_int_equal(back.failures, 2);
	assert_int_equal(back.objects[0], -1);
	assert_int_equal(back.objects[1], 7);
	assert_int_equal(back.spool_depth, 4);
	assert_int_equal(back.dropped_total, 9);
	assert_int_equal(back.duration_ms, 1234);
	/* the same values: the file is not replaced */
	assert_int_equal(tm_metrics_write(&cfg, &back), 0);
	assert_int_equal(stat(promfile, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	back.failures = 3;
	assert_int_equal(tm_metrics_write(&cfg, &back), 0);
	assert_int_equal(stat(promfile, &st2), 0);
	assert_int_not_equal(st1.st_ino, st2.st_ino);
	/* a device id with quotes is escaped as a label value */
	{
		struct tm_buf b;
		cfg.agent.device_id = "a\"b\\c";
		tm_buf_init(&b, 1 << 16);
		assert_int_equal(tm_metrics_render(&b, &cfg, &back), 0);
		assert_non_null(strstr(b.ptr, "tagmoor_info{device_id=\"a\\\"b\\\\c\",version="));
		assert_non_null(strstr(b.ptr, "tagmoor_state{state=\"rolled_back\"} 1\n"));
		assert_non_null(strstr(b.ptr, "tagmoor_last_pass_duration_seconds 1.234\n"));
		tm_buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restamp),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_spool),
		cmocka_unit_test(test_record_and_heartbeat),
		cmocka_unit_test(test_metrics),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
