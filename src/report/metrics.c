/*
 * metrics.c — the reporter's Prometheus textfile ([report] metrics_file),
 * for node_exporter's textfile collector (report.h). The file is the only
 * memory of the metrics: the previous values are read back from it, the new
 * text is rendered, and the file is replaced atomically only when the text
 * differs, so an idle poll whose values did not change writes nothing.
 * No timestamps (the collector refuses them); only gauges and one counter.
 */
#include "tagmoor/report/report.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/core/log.h"
#include "tagmoor/cli/versions.h"
#include "tagmoor/core/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX (64 * 1024)

static const char *const states[] = { "synced",  "progressing", "failed", "rolled_back",
				      "refused", "stale",       "drifted" };

static void metrics_init(struct tm_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->applied_time = m->last_success = m->duration_ms = -1;
	for (size_t i = 0; i < TM_METRICS_APPLIERS; i++)
		m->objects[i] = -1;
}

/* value of "name value" or "name{...} value" lines; 1 when found */
static int line_value(const char *line, const char *name, const char *labels, double *out)
{
	size_t n = strlen(name);
	const char *p;
	char *end;

	if (strncmp(line, name, n) != 0)
		return 0;
	p = line + n;
	if (labels) {
		size_t l = strlen(labels);
		if (strncmp(p, labels, l) != 0)
			return 0;
		p += l;
	}
	if (*p != ' ')
		return 0;
	*out = strtod(p + 1, &end);
	return end != p + 1;
}

void tm_metrics_load(struct tm_metrics *m, const char *path)
{
	struct tm_buf b;
	char *line, *save = NULL;

	metrics_init(m);
	if (!path)
		return;
	tm_buf_init(&b, METRICS_MAX + 1);
	if (tm_file_read(&b, path, METRICS_MAX) < 0 || !b.ptr) {
		tm_error_clear();
		tm_buf_free(&b);
		return;
	}
	for (line = strtok_r(b.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		double v;
		char lab[64];

		if (line[0] == '#')
			continue;
		for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
			snprintf(lab, sizeof(lab), "{state=\"%s\"}", states[i]);
			if (line_value(line, "tagmoor_state", lab, &v) && v == 1)
				snprintf(m->state, sizeof(m->state), "%s", states[i]);
		}
		if (line_value(line, "tagmoor_applied_revision_time_seconds", NULL, &v))
			m->applied_time = (int64_t)v;
		else if (line_value(line, "tagmoor_last_success_timestamp_seconds", NULL, &v))
			m->last_success = (int64_t)v;
		else if (line_value(line, "tagmoor_consecutive_failures", NULL, &v) && v >= 0)
			m->failures = (uint64_t)v;
		else if (line_value(line, "tagmoor_spool_depth", NULL, &v) && v >= 0)
			m->spool_depth = (uint64_t)v;
		else if (line_value(line, "tagmoor_reports_dropped_total", NULL, &v) && v >= 0)
			m->dropped_total = (uint64_t)v;
		else if (line_value(line, "tagmoor_last_pass_duration_seconds", NULL, &v) && v >= 0)
			m->duration_ms = (int64_t)(v * 1000 + 0.5);
		else if (line_value(line, "tagmoor_objects", "{applier=\"kubernetes\"}", &v))
			m->objects[0] = (int64_t)v;
		else if (line_value(line, "tagmoor_objects", "{applier=\"systemd\"}", &v))
			m->objects[1] = (int64_t)v;
	}
	tm_buf_free(&b);
}

/* A label value: \ " and newline escaped as the text format wants. */
static int label(struct tm_buf *b, const char *s)
{
	int r = 0;

	for (; s && *s && r == 0; s++) {
		if (*s == '\\' || *s == '"')
			r = tm_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			r = tm_buf_puts(b, "\\n");
		else
			r = tm_buf_putc(b, *s);
	}
	return r;
}

static int head(struct tm_buf *b, const char *name, const char *type, const char *help)
{
	return tm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int tm_metrics_render(struct tm_buf *b, const struct tm_config *cfg, const struct tm_metrics *m)
{
	static const char *const slot[TM_METRICS_APPLIERS] = { "kubernetes", "systemd" };
	int r = 0;

	r |= head(b, "tagmoor_info", "gauge", "The agent on this device (always 1).");
	r |= tm_buf_puts(b, "tagmoor_info{device_id=\"");
	r |= label(b, cfg->agent.device_id);
	r |= tm_buf_printf(b, "\",version=\"%s\"} 1\n", TM_VERSION);
	r |= head(b, "tagmoor_state", "gauge",
		  "1 for the state of the last pass, 0 for the others.");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		r |= tm_buf_printf(b, "tagmoor_state{state=\"%s\"} %d\n", states[i],
				   strcmp(m->state, states[i]) == 0);
	if (m->applied_time >= 0) {
		r |= head(b, "tagmoor_applied_revision_time_seconds", "gauge",
			  "Signed time of the applied revision (Unix seconds).");
		r |= tm_buf_printf(b, "tagmoor_applied_revision_time_seconds %lld\n",
				   (long long)m->applied_time);
	}
	if (m->last_success >= 0) {
		r |= head(b, "tagmoor_last_success_timestamp_seconds", "gauge",
			  "When a pass last ended synced (Unix seconds; idle polls do not move it, "
			  "reports do).");
		r |= tm_buf_printf(b, "tagmoor_last_success_timestamp_seconds %lld\n",
				   (long long)m->last_success);
	}
	r |= head(b, "tagmoor_consecutive_failures", "gauge",
		  "Passes in a row that ended failed, rolled_back, refused or stale, or could not "
		  "reach the source.");
	r |= tm_buf_printf(b, "tagmoor_consecutive_failures %llu\n",
			   (unsigned long long)m->failures);
	r |= head(b, "tagmoor_objects", "gauge", "Objects tagmoor manages, per applier.");
	for (size_t i = 0; i < TM_METRICS_APPLIERS; i++)
		if (m->objects[i] >= 0)
			r |= tm_buf_printf(b, "tagmoor_objects{applier=\"%s\"} %lld\n", slot[i],
					   (long long)m->objects[i]);
	r |= head(b, "tagmoor_spool_depth", "gauge", "Status reports waiting in the spool.");
	r |= tm_buf_printf(b, "tagmoor_spool_depth %llu\n", (unsigned long long)m->spool_depth);
	r |= head(b, "tagmoor_reports_dropped_total", "counter",
		  "Status reports dropped from a full spool (spool_max).");
	r |= tm_buf_printf(b, "tagmoor_reports_dropped_total %llu\n",
			   (unsigned long long)m->dropped_total);
	if (m->duration_ms >= 0) {
		r |= head(b, "tagmoor_last_pass_duration_seconds", "gauge",
			  "Duration of the last pass that did or said something.");
		r |= tm_buf_printf(b, "tagmoor_last_pass_duration_seconds %lld.%03lld\n",
				   (long long)(m->duration_ms / 1000),
				   (long long)(m->duration_ms % 1000));
	}
	return r ? tm_error_set(TM_ELIMIT, "metrics too large") : 0;
}

int tm_metrics_write(const struct tm_config *cfg, const struct tm_metrics *m)
{
	const char *path = cfg->report.metrics_file;
	struct tm_buf now, old;
	int r, same = 0;

	if (!path)
		return 0;
	tm_buf_init(&now, METRICS_MAX);
	tm_buf_init(&old, METRICS_MAX + 1);
	if ((r = tm_metrics_render(&now, cfg, m)) == 0) {
		if (tm_file_read(&old, path, METRICS_MAX) == 0 && old.ptr && old.len == now.len &&
		    memcmp(old.ptr, now.ptr, now.len) == 0)
			same = 1;
		tm_error_clear();
		TM_FAULT("metrics.before-write");
		if (!same && (r = tm_file_write_atomic(path, now.ptr, now.len, 0644)) < 0)
			tm_error_wrap(r, "metrics_file");
	}
	tm_buf_free(&now);
	tm_buf_free(&old);
	if (r < 0) {
		tm_log_warn("%s", tm_error_last());
		tm_error_clear();
	}
	return r;
}
