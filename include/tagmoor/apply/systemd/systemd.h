/*
 * systemd.h — the systemd applier: unit files and drop-ins from the
 * repository written atomically into [systemd] unit_dir, then one
 * daemon-reload, enable/start/restart through `systemctl` (fork/exec, fixed
 * argv, never a shell), health from `systemctl show`, drift by comparing
 * contents. The table itself is tm_systemd_applier (applier.h); what is here
 * is the part that is useful on its own and to tests.
 *
 * Object ids: "web.service" for a unit file (wherever it sits below a
 * `paths` entry), "web.service.d/10-env.conf" for a drop-in.
 */
#ifndef TAGMOOR_SYSTEMD_H
#define TAGMOOR_SYSTEMD_H

#include <stddef.h>
#include <stdio.h>

#include "tagmoor/core/buf.h"

#define TM_SYSTEMD_NAME_MAX 255           /* systemd's UNIT_NAME_MAX */
#define TM_SYSTEMD_UNIT_MAX (1024 * 1024) /* largest unit file read back from unit_dir */
#define TM_SYSTEMD_OUTPUT_MAX 4096        /* systemctl / journalctl output kept for messages */

enum tm_systemd_kind {
	TM_SYSTEMD_NONE = 0,
	TM_SYSTEMD_UNIT,
	TM_SYSTEMD_DROPIN
};

/* 1 when name is a unit name systemd accepts (unit_name_is_valid() with
 * plain, template and instance forms allowed) and its suffix is one tagmoor
 * manages (.service .socket .timer .path .mount .target); else 0. */
int tm_systemd_unit_name_valid(const char *name);

/* 1 when name is an acceptable drop-in file name: no '/', ends in ".conf",
 * something before it, only [A-Za-z0-9:_.@+-], at most 255 bytes. */
int tm_systemd_dropin_name_valid(const char *name);

/* Classifies an object id ("web.service", "web.service.d/10.conf"): returns
 * TM_SYSTEMD_UNIT, TM_SYSTEMD_DROPIN or TM_SYSTEMD_NONE (not valid). With
 * unit != NULL the unit name (for a drop-in: its parent unit) is copied
 * there (size TM_SYSTEMD_NAME_MAX + 1). */
int tm_systemd_id_kind(const char *id, char *unit);

/* 1 when unit-file text has an [Install] section. */
int tm_systemd_has_install(const char *content, size_t len);

/* Prints a unified diff (3 lines of context) between old and new to f.
 * old == NULL is a new file (all "+"), new == NULL a removed one (all "-").
 * Labels name the two sides in the ---/+++ lines. Nothing is printed when
 * the contents are equal. Very large inputs are shown as a whole
 * replacement. */
int tm_systemd_diff(FILE *f, const char *label, const char *old, size_t oldlen, const char *new_,
		    size_t newlen);

/*
 * Runs systemctl (the program `systemctl` when not NULL — tests run fakes —,
 * else the first of /usr/bin/systemctl, /bin/systemctl) with args
 * (NULL-terminated, without argv[0]), a fixed environment and stdin from
 * /dev/null, killing it after timeout_ms. Its stdout+stderr (the first
 * TM_SYSTEMD_OUTPUT_MAX bytes) go to out when out != NULL (initialised by
 * the caller). Returns 0 when it ran
 * to completion with *status its exit status; TM_EAPPLY when it could not
 * be run, was killed or timed out.
 */
int tm_systemctl_run(struct tm_buf *out, int *status, unsigned timeout_ms, const char *systemctl,
		     const char *const *args);

#endif
