/*
 * systemd_internal.h — what the files of the systemd applier share (not a
 * public interface: systemd.h is):
 *   units.c      names, ids, wants, parse
 *   systemctl.c  running systemctl and journalctl; unit states
 *   textdiff.c   the unified diff of `tagmoor diff`
 *   systemd.c    apply, prune, drift, the table
 *   health.c     the health check
 */
#ifndef TAGMOOR_SYSTEMD_INTERNAL_H
#define TAGMOOR_SYSTEMD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tagmoor/apply/applier.h"
#include "tagmoor/core/buf.h"

#define QUICK_TIMEOUT_MS 30000u /* daemon-reload, enable, show, start --no-block */
#define STOP_TIMEOUT_MS 120000u /* stop waits for the unit (TimeoutStopSec is 90 s) */
#define JOURNAL_TIMEOUT_MS 10000u
#define JOURNAL_LINES "10"
#define POLL_MS 200u
#define SETTLE_MS 1000u /* a service must stay active this long */
#define BATCH_MAX 64    /* units per systemctl call */
#define PATH_MAX_TM 4096

/* The state of a unit as `systemctl show` reports it. */
struct unit_state {
	char active[24], sub[32], result[32], type[16];
	int job, loaded;
	uint64_t main_exit_us;
	uint64_t active_enter_us; /* changes whenever the unit (re-)enters active */
	uint64_t nrestarts;
};

typedef char active_state[24];

/* units.c */
int sd_is_template(const char *unit);
int sd_wants(const char *path, const char *basename);
int sd_parse(struct tm_objset *out, const struct tm_applier_ctx *ctx, const char *path,
	     const char *relpath, const char *content, size_t len);
void sd_free_data(void *data);

/* systemctl.c */
int sd_systemctl(const struct tm_applier_ctx *ctx, unsigned timeout_ms, const char *verb,
		 const char *flag, char *const *units, size_t n, int ok_status, int *changed);
int sd_daemon_reload(const struct tm_applier_ctx *ctx);
void sd_reload_best_effort(const struct tm_applier_ctx *ctx);
int sd_show_units(const struct tm_applier_ctx *ctx, struct unit_state *st, char *const *units,
		  size_t n);
int sd_is_running(const char *active);
int sd_is_active(const struct tm_applier_ctx *ctx, active_state *st, char *const *units, size_t n);
void sd_journal_tail(const struct tm_applier_ctx *ctx, char *dst, size_t dstlen, const char *unit);

/* systemd.c */
int sd_in_list(char *const *v, size_t n, const char *s);
int sd_collect_changed_units(char ***v, size_t *n, char *const *changed, size_t nchanged);

/* health.c */
int sd_health(void *pass_state, struct tm_apply_result *res, const struct tm_applier_ctx *ctx,
	      const struct tm_objset *desired, uint64_t wait_ms);

#endif
