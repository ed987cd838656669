/*
 * unsent.c — the report of a pass that saved its state but was killed (or
 * lost power) before its report reached the spool.
 *
 * A pass that writes state gives its status document the next seq and saves
 * both in state.json; the report of that seq is spooled only at the end of
 * the pass. A kill in between (found by the fault tests: docs/faults.md)
 * left seq N in state.json and nowhere else: the receiver saw N - 1, then
 * N + 1 — a gap, a lost report. The next pass (under the same state lock)
 * finds state.json's seq above the reporter's and submits the saved
 * document first, with its seq and time, before it does anything else.
 */
#include "tagmoor/report/report.h"
#include "tagmoor/config/config.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/log.h"

int tm_report_submit_unsent(const struct tm_config *cfg, uint64_t seq, const char *doc,
			    const char *state, int64_t time)
{
	struct tm_report_event ev = { .doc = doc,
				      .seq = seq,
				      .sig = NULL, /* what the next pass says is still new */
				      .state = state && *state ? state : NULL,
				      .message = "",
				      .commit = "",
				      .time = time };
	int r;

	if (!doc || !seq || seq <= tm_report_last_seq(cfg->agent.state_dir))
		return 0;
	tm_log_info("report %llu was saved with the state but never spooled (an interrupted "
		    "pass); submitting it now",
		    (unsigned long long)seq);
	if ((r = tm_report_submit(cfg, &ev, NULL)) < 0)
		tm_log_warn("report %llu: %s", (unsigned long long)seq, tm_error_last());
	return r;
}
