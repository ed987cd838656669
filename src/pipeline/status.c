/*
 * status.c — the status document of a pass (docs/SPEC.md, "Status document"):
 * what `tagmoor status --json` prints, state.json keeps and the reporter sends.
 * Built from the pass (reconcile.c) alone; the reporter restamps seq, time and
 * trigger for heartbeats and drops (report.c).
 */
#include "tagmoor/pipeline/reconcile.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"
#include "tagmoor/doc/json.h"

#include <stddef.h>

static int json_strv(struct tm_buf *b, char *const *v, size_t n)
{
	int r = tm_buf_putc(b, '[');
	for (size_t i = 0; i < n && r == 0; i++) {
		if (i)
			r = tm_buf_putc(b, ',');
		if (r == 0)
			r = tm_json_cstr(b, v[i], 0);
	}
	return r ? r : tm_buf_putc(b, ']');
}

int tm_pass_status_json(struct tm_buf *b, const struct tm_pass *p, uint64_t seq)
{
	const struct tm_config *cfg = p->cfg;
	const struct tm_verify_result *v = p->have_verdict ? &p->verdict : NULL;
	char url[2048];
	int r = 0;

	tm_config_redact_url(url, sizeof(url), cfg->source.url);
	r |= tm_buf_puts(b, "{\"schema\":\"tagmoor.status/v1\",\"device_id\":");
	r |= tm_json_cstr(b, cfg->agent.device_id, 0);
	r |= tm_buf_puts(b, ",\"hostname\":");
	r |= tm_json_cstr(b, cfg->hostname, 0);
	r |= tm_buf_printf(b, ",\"agent_version\":\"%s\",\"seq\":%llu,\"time\":", TM_VERSION,
			   (unsigned long long)seq);
	r |= tm_json_time(b, p->time);
	/* the reporter restamps seq .. spool_dropped (heartbeats, drops) */
	r |= tm_buf_puts(b, ",\"trigger\":\"pass\",\"spool_dropped\":0,\"state\":");
	r |= tm_json_cstr(b, p->state, 0);
	r |= tm_buf_puts(b, ",\"source\":{\"url\":");
	r |= tm_json_cstr(b, url, 0);
	r |= tm_buf_puts(b, ",\"ref\":");
	r |= tm_json_cstr(b, p->ref ? p->ref : cfg->source.ref, 0);
	r |= tm_buf_puts(b, ",\"commit\":");
	r |= tm_json_cstr(b, v ? v->commit : NULL, 1);
	r |= tm_buf_puts(b, ",\"tag_object\":");
	r |= tm_json_cstr(b, v ? v->tag_object : NULL, 1);
	r |= tm_buf_puts(b, ",\"signer\":");
	r |= tm_json_cstr(b, v ? v->signer : NULL, 1);
	r |= tm_buf_puts(b, ",\"tag_time\":");
	r |= tm_json_time(b, v ? v->tag_time : -1);
	r |= tm_buf_puts(b, "},\"applied_commit\":");
	r |= tm_json_cstr(b, p->applied_commit, 1);
	r |= tm_buf_puts(b, ",\"last_good_commit\":");
	r |= tm_json_cstr(b, p->last_good_commit, 1);
	r |= tm_buf_printf(b, ",\"duration_ms\":%lld", (long long)p->duration_ms);
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_apply_result *res = &p->appliers[i].res;
		r |= tm_buf_printf(
			b, ",\"%s\":{\"applied\":%u,\"unchanged\":%u,\"pruned\":%u,\"unhealthy\":",
			tm_pass_applier_name(i), res->applied, res->unchanged, res->pruned);
		r |= json_strv(b, res->unhealthy, res->nunhealthy);
		r |= tm_buf_putc(b, '}');
	}
	r |= tm_buf_puts(b, ",\"errors\":[");
	for (size_t i = 0; i < p->nerrors; i++) {
		r |= tm_buf_printf(b, "%s{\"stage\":", i ? "," : "");
		r |= tm_json_cstr(b, p->errors[i].stage, 0);
		r |= tm_buf_puts(b, ",\"object\":");
		r |= tm_json_cstr(b, p->errors[i].object, 1);
		r |= tm_buf_puts(b, ",\"message\":");
		r |= tm_json_cstr(b, p->errors[i].message, 0);
		r |= tm_buf_putc(b, '}');
	}
	r |= tm_buf_puts(b, "],\"drift\":[");
	int first = 1;
	for (size_t i = 0; i < TM_PASS_APPLIERS; i++) {
		const struct tm_apply_result *res = &p->appliers[i].res;
		for (size_t j = 0; j < res->ndrifted; j++) {
			r |= tm_buf_puts(b, first ? "{\"object\":" : ",{\"object\":");
			r |= tm_json_cstr(b, res->drifted[j], 0);
			r |= tm_buf_printf(b, ",\"action\":\"%s\"}",
					   p->mode == TM_PASS_DIFF ? "detected" : "repaired");
			first = 0;
		}
	}
	r |= tm_buf_puts(b, "]}");
	return r ? tm_error_set(TM_ELIMIT, "status document too large") : 0;
}
