/*
 * report.h — the last stage of a pass: telling someone (SPEC.md, "Status
 * document"; docs/reporting.md).
 *
 *   pass ─► tm_report_submit ─► state_dir/report.last (the last document)
 *                           ├─► state_dir/spool/<seq>.json ─► POST [report] url
 *                           └─► alert_url (only on transitions)
 *   tm_report_tick (daemon, between passes): heartbeat, delivery of the spool
 *   tm_metrics_* : the Prometheus textfile, rewritten only when a value changes
 *
 * A pass reports when it wrote state (applied, rolled back, failed, drift
 * repaired, stale) or when what it has to say (its fingerprint: state,
 * advertised object, applied commit, errors) differs from the last report:
 * a refusal, a new error, a recovery. An idle poll with nothing new sends and
 * writes nothing. seq grows by one per report and never goes back: the next
 * one is above state.json's/floor's, report.last's and every spooled one's.
 *
 * Delivery: 2xx delivered (file removed); 4xx other than 408/429 dropped
 * with an error logged; 5xx, 408, 429, timeouts and transport errors keep the
 * report and everything after it for a later attempt (backoff, Retry-After).
 * A report is removed only after its 2xx: a crash in between sends it twice,
 * never loses it.
 */
#ifndef TAGMOOR_REPORT_H
#define TAGMOOR_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/core/buf.h"

struct tm_config;

#define TM_REPORT_SIG_LEN 17 /* 16 hex + NUL */
#define TM_REPORT_DOC_MAX (1024u * 1024u)

/* What the reporter remembers (state_dir/report.last). */
struct tm_report_record {
	uint64_t seq;                /* of the last report; 0 none */
	char sig[TM_REPORT_SIG_LEN]; /* fingerprint of the last pass report */
	int64_t time;                /* wall time of the last report (heartbeats count) */
	uint64_t dropped;            /* spooled reports dropped, not yet counted in a report */
	char alert_state[16];        /* the state the last alert (or first report) was about */
	char *doc;                   /* the last document (JSON), or NULL */
};

/* One report of a pass. */
struct tm_report_event {
	const char *doc; /* status document of tm_pass_status_json with seq */
	uint64_t seq;
	const char *sig; /* fingerprint of what the pass says */
	const char *state;
	const char *message; /* the first error's message, or "" */
	const char *commit;  /* applied commit, or "" */
	int64_t time;        /* wall time of the pass */
};

/* Reads state_dir/report.last; a missing file gives an empty record (0).
 * A damaged one is ignored with a warning. rec->doc is malloc'd. */
int tm_report_record_load(struct tm_report_record *rec, const char *state_dir);
void tm_report_record_free(struct tm_report_record *rec);

/* The highest seq the reporter knows (report.last and the spool). */
uint64_t tm_report_last_seq(const char *state_dir);

/* Whether a pass with this fingerprint has something new to say. */
int tm_report_wanted(const struct tm_config *cfg, const char *sig);

struct tm_metrics;

/* Records a pass's report (report.last), spools it when [report] url is set,
 * sends an alert on a transition, then tries to deliver the spool once; m
 * (the pass's metrics, or NULL) is then written with the spool's depth.
 * Delivery failures are logged, never returned: only a failure to record
 * (an I/O error) is. Call it under the state lock. */
int tm_report_submit(const struct tm_config *cfg, const struct tm_report_event *ev,
		     struct tm_metrics *m);

/* When seq (state.json's) is above the reporter's (tm_report_last_seq): the
 * pass that saved doc was interrupted before its report was spooled; submits
 * it now (unsent.c). 0 when there was nothing to do. Under the state lock. */
int tm_report_submit_unsent(const struct tm_config *cfg, uint64_t seq, const char *doc,
			    const char *state, int64_t time);

/* Between passes (daemon): a heartbeat when [report] heartbeat has passed
 * since the last report, then delivery of the spool when its backoff allows.
 * Takes the state lock itself (skips quietly while a manual command holds
 * it). now: wall-clock seconds. Returns 0, or a negative code when something
 * could not be written (logged too). */
int tm_report_tick(const struct tm_config *cfg, int64_t now);
/* Milliseconds from now (monotonic) until tm_report_tick has work to do
 * (delivery backoff), 0 when it has now, -1 when only a heartbeat is due
 * later (the daemon's normal cadence is enough). */
int64_t tm_report_next_ms(const struct tm_config *cfg);

/* `tagmoor report --flush`: delivers the spool now, waiting out Retry-After
 * and backoff (each at most 60 s, at most 4 attempts per report). 0 when the
 * spool is empty afterwards, TM_ESOURCE when reports are still pending.
 * Caller holds the state lock. */
int tm_report_flush(const struct tm_config *cfg);

/* The document with seq, time, trigger and spool_dropped replaced (the
 * fields tm_pass_status_json writes between "seq" and "state"). */
int tm_report_restamp(struct tm_buf *out, const char *doc, uint64_t seq, int64_t time,
		      const char *trigger, uint64_t dropped);

/* The request body, content type and extra headers (NULL-terminated,
 * malloc'd strings in hdrs[0..7]) of a spooled document in the configured
 * format. */
int tm_report_format(struct tm_buf *body, char *ctype, size_t ctype_len, char **hdrs, size_t nhdrs,
		     const struct tm_config *cfg, const char *doc);

/* A Retry-After value (delta-seconds or an HTTP-date) in seconds from now;
 * -1 when absent or unreadable. */
int64_t tm_report_retry_after(const char *value, int64_t now);

/* --- spool (spool.c): state_dir/spool/<20-digit seq>.json ------------------ */

/* Writes one report (atomic, fsync'd), then drops the oldest beyond max;
 * *dropped gets how many were dropped. */
int tm_spool_put(const char *state_dir, uint64_t seq, const char *doc, uint64_t max,
		 uint64_t *dropped);
/* The spooled seqs in ascending order (malloc'd; *n 0 and *out NULL when none). */
int tm_spool_list(const char *state_dir, uint64_t **out, size_t *n);
int tm_spool_read(struct tm_buf *out, const char *state_dir, uint64_t seq);
/* Removes one report (fsyncs the directory: a delivered report stays gone). */
int tm_spool_remove(const char *state_dir, uint64_t seq);
/* Removes temp files a kill left in the spool. */
void tm_spool_clean(const char *state_dir);

/* --- metrics (metrics.c): the Prometheus textfile --------------------------- */

#define TM_METRICS_APPLIERS 2

struct tm_metrics {
	char state[16];       /* "" unknown */
	int64_t applied_time; /* signed time of the applied revision; -1 unknown */
	int64_t last_success; /* wall time of the last synced pass; -1 never */
	uint64_t failures;    /* consecutive failed passes */
	const char *applier[TM_METRICS_APPLIERS];
	int64_t objects[TM_METRICS_APPLIERS]; /* -1: applier disabled */
	uint64_t spool_depth;
	uint64_t dropped_total; /* spooled reports dropped (spool_max) */
	int64_t duration_ms;    /* of the last pass that reported; -1 unknown */
};

/* The values in the file now (missing ones unknown). */
void tm_metrics_load(struct tm_metrics *m, const char *path);
/* Renders m; writes path atomically only when its content differs. */
int tm_metrics_write(const struct tm_config *cfg, const struct tm_metrics *m);
int tm_metrics_render(struct tm_buf *out, const struct tm_config *cfg, const struct tm_metrics *m);

#endif
