/*
 * state.c — state.json, the lock and the anti-rollback record.
 *
 * The file is small and written only when something changed (never by an
 * idle poll). It is replaced atomically (fileio), so a power cut leaves the
 * old or the new one. Reading is strict: anything unexpected means the file
 * is not ours or is damaged, and it is moved aside rather than trusted.
 */
#define _GNU_SOURCE
#include "tagmoor/state/state.h"
#include "tagmoor/apply/applier.h"
#include "tagmoor/doc/doc.h"
#include "tagmoor/core/error.h"
#include "tagmoor/core/fileio.h"
#include "tagmoor/doc/json.h"
#include "tagmoor/core/log.h"
#include "tagmoor/core/time.h"
#include "tagmoor/doc/jsonread.h"
#include "tagmoor/core/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define STATE_MAX (8 * 1024 * 1024)
#define STATE_SCHEMA "tagmoor.state/v1"
#define FLOOR_SCHEMA "tagmoor.floor/v1"
#define FLOOR_MAX 4096
#define INVENTORY_SCHEMA "tagmoor.inventory/v1"

static const struct tm_yaml_limits state_limits = { STATE_MAX, 64, 4000000, 0 };

int tm_state_lock(int *out_fd, const char *state_dir)
{
	char path[4096];
	int fd;

	*out_fd = -1;
	if (tm_file_mkdirs(state_dir, 0700) < 0)
		return TM_EIO;
	snprintf(path, sizeof(path), "%s/lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return tm_error_set(TM_EIO, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return tm_error_set(TM_ELOCKED, "another tagmoor holds %s", path);
		return tm_error_set(TM_EIO, "%s: flock: %s", path, strerror(e));
	}
	*out_fd = fd;
	return 0;
}

void tm_state_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

static void state_init(struct tm_state *st)
{
	memset(st, 0, sizeof(*st));
	st->applied.tag_time = st->last_good.tag_time = -1;
	st->applied.expires = st->last_good.expires = -1;
	st->accepted_time = -1;
	st->last_time = -1;
}

void tm_state_free(struct tm_state *st)
{
	for (size_t i = 0; i < st->ninv; i++)
		tm_strv_free(st->inv[i].ids, st->inv[i].n);
	free(st->last_status);
	free(st->moved_aside);
	state_init(st);
}

struct tm_inventory *tm_state_inventory(struct tm_state *st, const char *name)
{
	for (size_t i = 0; i < st->ninv; i++)
		if (strcmp(st->inv[i].name, name) == 0)
			return &st->inv[i];
	if (st->ninv >= TM_STATE_MAX_INVENTORIES || strlen(name) >= sizeof(st->inv[0].name))
		return NULL;
	snprintf(st->inv[st->ninv].name, sizeof(st->inv[0].name), "%s", name);
	return &st->inv[st->ninv++];
}

int tm_state_set_inventory(struct tm_state *st, const char *name, char *const *ids, size_t n)
{
	struct tm_inventory *inv = tm_state_inventory(st, name);
	char **copy = NULL;
	size_t nc = 0;

	if (!inv)
		return tm_error_set(TM_ENOMEM, "too many inventories");
	for (size_t i = 0; i < n; i++) {
		if (tm_strv_push(&copy, &nc, ids[i]) < 0) {
			tm_strv_free(copy, nc);
			return TM_ENOMEM;
		}
	}
	tm_strv_free(inv->ids, inv->n);
	inv->ids = copy;
	inv->n = nc;
	return 0;
}

int tm_state_is_bad(const struct tm_state *st, const char *oid, const char *key)
{
	for (size_t i = 0; i < st->nbad; i++) {
		if (oid && strcmp(st->bad[i].oid, oid) == 0)
			return 1;
		if (key && key[0] && strcmp(st->bad[i].key, key) == 0)
			return 1;
	}
	return 0;
}

void tm_state_mark_bad(struct tm_state *st, const char *oid, const char *key)
{
	for (size_t i = 0; i < st->nbad; i++) {
		if (strcmp(st->bad[i].oid, oid) == 0 && (!key || strcmp(st->bad[i].key, key) == 0))
			return;
	}
	if (st->nbad == TM_STATE_MAX_BAD) {
		memmove(&st->bad[0], &st->bad[1], (TM_STATE_MAX_BAD - 1) * sizeof(st->bad[0]));
		st->nbad--;
	}
	snprintf(st->bad[st->nbad].oid, sizeof(st->bad[0].oid), "%s", oid);
	snprintf(st->bad[st->nbad].key, sizeof(st->bad[0].key), "%s", key ? key : "");
	st->nbad++;
}

int tm_state_set_status(struct tm_state *st, const char *json)
{
	char *copy = strdup(json);

	if (!copy)
		return tm_error_nomem();
	free(st->last_status);
	st->last_status = copy;
	return 0;
}

static int put_revision(struct tm_buf *b, const char *key, const struct tm_revision *rev)
{
	int r = tm_buf_printf(b, "\"%s\":{\"commit\":", key);
	r |= tm_json_cstr(b, rev->commit, 1);
	r |= tm_buf_puts(b, ",\"tag_object\":");
	r |= tm_json_cstr(b, rev->tag_object, 1);
	r |= tm_buf_printf(b,
			   ",\"tag_time\":%lld,\"expires\":%lld,\"key\":", (long long)rev->tag_time,
			   (long long)rev->expires);
	r |= tm_json_cstr(b, rev->key, 1);
	r |= tm_buf_puts(b, ",\"signer\":");
	r |= tm_json_cstr(b, rev->signer, 1);
	r |= tm_buf_putc(b, '}');
	return r;
}

/* The inventories as one JSON object: applier name -> the ids it owns. */
static int put_inventory(struct tm_buf *b, const struct tm_state *st)
{
	int r = tm_buf_putc(b, '{');

	for (size_t i = 0; i < st->ninv; i++) {
		r |= tm_buf_printf(b, "%s\"%s\":[", i ? "," : "", st->inv[i].name);
		for (size_t j = 0; j < st->inv[i].n; j++) {
			if (j)
				r |= tm_buf_putc(b, ',');
			r |= tm_json_cstr(b, st->inv[i].ids[j], 0);
		}
		r |= tm_buf_putc(b, ']');
	}
	return r | tm_buf_putc(b, '}');
}

/* The inventory file: what tagmoor owns, beside the floor, so that a lost or
 * damaged state.json does not turn the device's own files and objects into
 * foreign ones (docs/faults.md). Written before state.json: it may be ahead
 * of it after a kill, never behind. */
static int save_inventory(const struct tm_state *st, const char *state_dir)
{
	struct tm_buf b;
	char path[4096];
	int r;

	tm_buf_init(&b, STATE_MAX);
	r = tm_buf_puts(&b, "{\"schema\":\"" INVENTORY_SCHEMA "\",\"inventory\":");
	r |= put_inventory(&b, st);
	r |= tm_buf_puts(&b, "}\n");
	if (r) {
		tm_buf_free(&b);
		return tm_error_set(TM_ELIMIT, "the inventory would be larger than %d bytes",
				    STATE_MAX);
	}
	snprintf(path, sizeof(path), "%s/inventory", state_dir);
	TM_FAULT("state.before-inventory-replace");
	r = tm_file_write_atomic(path, b.ptr, b.len, 0600);
	tm_buf_free(&b);
	return r;
}

/* The floor file: the anti-rollback floor and seq, small and separate so
 * that they survive a state.json that is lost or damaged. */
static int save_floor(const struct tm_state *st, const char *state_dir)
{
	char path[4096], text[512];
	int n;

	n = snprintf(text, sizeof(text),
		     "{\"schema\":\"" FLOOR_SCHEMA
		     "\",\"accepted_tag_time\":%lld,\"accepted_key\":\"%s\","
		     "\"seq\":%llu}\n",
		     (long long)st->accepted_time, st->accepted_key, (unsigned long long)st->seq);
	snprintf(path, sizeof(path), "%s/floor", state_dir);
	TM_FAULT("state.before-floor-replace");
	return tm_file_write_atomic(path, text, (size_t)n, 0600);
}

int tm_state_save(const struct tm_state *st, const char *state_dir)
{
	struct tm_buf b;
	char path[4096];
	int r = 0;

	tm_buf_init(&b, STATE_MAX);
	r |= tm_buf_puts(&b, "{\"schema\":\"" STATE_SCHEMA "\",\n");
	r |= put_revision(&b, "applied", &st->applied);
	r |= tm_buf_puts(&b, ",\n");
	r |= put_revision(&b, "last_good", &st->last_good);
	r |= tm_buf_printf(&b,
			   ",\n\"accepted_tag_time\":%lld,\n\"accepted_key\":\"%s\",\n\"bad\":[",
			   (long long)st->accepted_time, st->accepted_key);
	for (size_t i = 0; i < st->nbad; i++)
		r |= tm_buf_printf(&b, "%s{\"oid\":\"%s\",\"key\":\"%s\"}", i ? "," : "",
				   st->bad[i].oid, st->bad[i].key);
	r |= tm_buf_puts(&b, "],\n\"inventory\":");
	r |= put_inventory(&b, st);
	r |= tm_buf_printf(&b, ",\n\"seq\":%llu,\n\"last_status\":%s}\n",
			   (unsigned long long)st->seq, st->last_status ? st->last_status : "null");
	if (r) {
		tm_buf_free(&b);
		return tm_error_set(TM_ELIMIT, "state.json would be larger than %d bytes",
				    STATE_MAX);
	}
	snprintf(path, sizeof(path), "%s/state.json", state_dir);
	TM_FAULT("state.before-save");
	if ((r = tm_file_mkdirs(state_dir, 0700)) == 0 && (r = save_floor(st, state_dir)) == 0 &&
	    (r = save_inventory(st, state_dir)) == 0) {
		TM_FAULT("state.floor-replaced");
		r = tm_file_write_atomic(path, b.ptr, b.len, 0600);
		TM_FAULT("state.json-replaced");
	}
	tm_buf_free(&b);
	return r;
}

/* --- reading ------------------------------------------------------------ */

/* An optional lowercase hex string of exactly `digits` digits into out
 * (digits + 1 bytes); "" when absent or null (or, when empty_ok, ""). */
static int get_hexn(char *out, size_t digits, int empty_ok, const struct tm_doc *map,
		    const char *key)
{
	const struct tm_doc *v = tm_doc_map_get(map, key);
	const char *s;

	out[0] = '\0';
	if (!v || v->type == TM_DOC_NULL)
		return 0;
	s = tm_doc_string(v);
	if (!s)
		return -1;
	if (empty_ok && !s[0])
		return 0;
	if (strlen(s) != digits || strspn(s, "0123456789abcdef") != digits)
		return -1;
	memcpy(out, s, digits + 1);
	return 0;
}

/* an object id (40 hex) */
static int get_hex(char out[41], const struct tm_doc *map, const char *key)
{
	return get_hexn(out, 40, 0, map, key);
}

/* a revision key (64 hex, verify's SHA-256 of what is signed) */
static int get_key(char out[65], const struct tm_doc *map, const char *key)
{
	return get_hexn(out, 64, 1, map, key);
}

static int get_int(int64_t *out, const struct tm_doc *map, const char *key)
{
	const struct tm_doc *v = tm_doc_map_get(map, key);

	if (!v || v->type != TM_DOC_INT)
		return -1;
	*out = v->u.i;
	return 0;
}

static int get_revision(struct tm_revision *rev, const struct tm_doc *root, const char *key)
{
	const struct tm_doc *m = tm_doc_map_get(root, key), *sv;
	const char *s;

	if (!m || m->type != TM_DOC_MAP)
		return -1;
	if (get_hex(rev->commit, m, "commit") < 0 ||
	    get_hex(rev->tag_object, m, "tag_object") < 0 ||
	    get_int(&rev->tag_time, m, "tag_time") < 0)
		return -1;
	sv = tm_doc_map_get(m, "signer");
	s = sv ? tm_doc_string(sv) : NULL;
	snprintf(rev->signer, sizeof(rev->signer), "%s", s ? s : "");
	/* added later: optional */
	if (tm_doc_map_get(m, "expires") && get_int(&rev->expires, m, "expires") < 0)
		return -1;
	if (get_key(rev->key, m, "key") < 0)
		return -1;
	return 0;
}

/* An "inventory" object (put_inventory) into st's inventories. */
static int read_inventory(struct tm_state *st, const struct tm_doc *v)
{
	if (!v || v->type != TM_DOC_MAP)
		return -1;
	for (size_t i = 0; i < tm_doc_len(v); i++) {
		const char *name = v->u.map.v[i].key;
		const struct tm_doc *ids = v->u.map.v[i].value;
		struct tm_inventory *inv = tm_state_inventory(st, name);
		if (!inv || ids->type != TM_DOC_SEQ)
			return -1;
		for (size_t j = 0; j < tm_doc_len(ids); j++) {
			const char *s = tm_doc_string(tm_doc_seq_at(ids, j));
			if (!s || tm_strv_push(&inv->ids, &inv->n, s) < 0)
				return -1;
		}
	}
	return 0;
}

static int parse_state(struct tm_state *st, const char *text, size_t len)
{
	struct tm_doc *root = NULL;
	const struct tm_doc *v, *ls;
	int64_t seq;
	int r = -1;

	if (tm_json_parse(&root, text, len, &state_limits) < 0)
		return -1;
	if (root->type != TM_DOC_MAP)
		goto out;
	v = tm_doc_map_get(root, "schema");
	if (!v || !tm_doc_string(v) || strcmp(tm_doc_string(v), STATE_SCHEMA) != 0)
		goto out;
	if (get_key(st->accepted_key, root, "accepted_key") < 0)
		goto out;
	if (get_revision(&st->applied, root, "applied") < 0 ||
	    get_revision(&st->last_good, root, "last_good") < 0 ||
	    get_int(&st->accepted_time, root, "accepted_tag_time") < 0 ||
	    get_int(&seq, root, "seq") < 0 || seq < 0)
		goto out;
	st->seq = (uint64_t)seq;
	v = tm_doc_map_get(root, "bad");
	if (!v || v->type != TM_DOC_SEQ)
		goto out;
	for (size_t i = 0; i < tm_doc_len(v) && st->nbad < TM_STATE_MAX_BAD; i++) {
		const struct tm_doc *e = tm_doc_seq_at(v, i);
		struct tm_bad *b = &st->bad[st->nbad];
		if (e->type == TM_DOC_MAP) {
			if (get_hex(b->oid, e, "oid") < 0 || !b->oid[0] ||
			    get_key(b->key, e, "key") < 0)
				goto out;
		} else { /* the first format: the oid alone */
			const char *s = tm_doc_string(e);
			if (!s || strlen(s) != 40)
				goto out;
			memcpy(b->oid, s, 41);
			b->key[0] = '\0';
		}
		st->nbad++;
	}
	if (read_inventory(st, tm_doc_map_get(root, "inventory")) < 0)
		goto out;
	ls = tm_doc_map_get(root, "last_status");
	if (ls && ls->type == TM_DOC_MAP) {
		struct tm_buf b;
		const struct tm_doc *sv = tm_doc_map_get(ls, "state"),
				    *tv = tm_doc_map_get(ls, "time");
		tm_buf_init(&b, STATE_MAX);
		if (tm_doc_to_json(&b, ls) < 0) {
			tm_buf_free(&b);
			goto out;
		}
		st->last_status = tm_buf_detach(&b);
		if (sv && tm_doc_string(sv))
			snprintf(st->last_state, sizeof(st->last_state), "%s", tm_doc_string(sv));
		if (tv && tm_doc_string(tv))
			tm_time_parse(&st->last_time, tm_doc_string(tv), strlen(tm_doc_string(tv)));
	}
	r = 0;
out:
	tm_doc_free(root);
	return r;
}

/* A small JSON file beside state.json (the floor, the inventory): *root is
 * the parsed document, or NULL when the file is missing or damaged (which is
 * said once, naming it); negative only when it cannot be read. */
static int read_side_file(struct tm_doc **root, const char *path, size_t max)
{
	struct tm_buf b;
	int r;

	*root = NULL;
	tm_buf_init(&b, max + 1);
	r = tm_file_read(&b, path, max);
	if (r == 0 && tm_json_parse(root, b.ptr, b.len, &state_limits) < 0)
		r = TM_ELIMIT;
	tm_buf_free(&b);
	if (r == TM_ENOTFOUND || r == TM_ELIMIT) {
		if (r == TM_ELIMIT)
			tm_log_warn("%s is damaged; ignored", path);
		tm_error_clear();
		return 0;
	}
	return r < 0 ? tm_error_wrap(TM_EIO, "%s", path) : 0;
}

/* Reads the floor file into floor time/key and seq; missing: nothing. A
 * damaged one is ignored with a warning (state.json still has the floor). */
static int load_floor(struct tm_state *st, const char *state_dir)
{
	struct tm_doc *root = NULL;
	char path[4096], key[65];
	int64_t t, seq;
	int r;

	snprintf(path, sizeof(path), "%s/floor", state_dir);
	if ((r = read_side_file(&root, path, FLOOR_MAX)) < 0 || !root)
		return r;
	if (root->type == TM_DOC_MAP && get_int(&t, root, "accepted_tag_time") == 0 &&
	    get_int(&seq, root, "seq") == 0 && seq >= 0 &&
	    get_key(key, root, "accepted_key") == 0) {
		if (t > st->accepted_time) {
			st->accepted_time = t;
			memcpy(st->accepted_key, key, sizeof(key));
		}
		if ((uint64_t)seq > st->seq)
			st->seq = (uint64_t)seq;
	} else {
		tm_log_warn("%s is damaged; ignored", path);
	}
	tm_doc_free(root);
	return 0;
}

/* Without a state.json that parses: what tagmoor owns, from the inventory
 * file; missing: nothing; damaged: ignored with a warning. */
static int load_inventory(struct tm_state *st, const char *state_dir)
{
	struct tm_doc *root = NULL;
	const struct tm_doc *v;
	char path[4096];
	int r;

	snprintf(path, sizeof(path), "%s/inventory", state_dir);
	if ((r = read_side_file(&root, path, STATE_MAX)) < 0 || !root)
		return r;
	if (root->type == TM_DOC_MAP && (v = tm_doc_map_get(root, "schema")) && tm_doc_string(v) &&
	    strcmp(tm_doc_string(v), INVENTORY_SCHEMA) == 0 &&
	    read_inventory(st, tm_doc_map_get(root, "inventory")) == 0) {
		size_t n = 0;
		for (size_t i = 0; i < st->ninv; i++)
			n += st->inv[i].n;
		if (n)
			tm_log_warn("no state.json: the %zu ids tagmoor owns come from %s", n,
				    path);
	} else {
		for (size_t i = 0; i < st->ninv; i++)
			tm_strv_free(st->inv[i].ids, st->inv[i].n);
		st->ninv = 0;
		tm_log_warn("%s is damaged; ignored", path);
	}
	tm_doc_free(root);
	tm_error_clear();
	return 0;
}

/* Without a state.json: the floor and what tagmoor owns from their files. */
static int load_without_state(struct tm_state *st, const char *state_dir)
{
	int r = load_floor(st, state_dir);

	return r < 0 ? r : load_inventory(st, state_dir);
}

int tm_state_load(struct tm_state *st, const char *state_dir, int readonly)
{
	struct tm_buf b;
	char path[4096], aside[4200];
	int r;

	state_init(st);
	snprintf(path, sizeof(path), "%s/state.json", state_dir);
	tm_buf_init(&b, STATE_MAX + 1);
	r = tm_file_read(&b, path, STATE_MAX);
	if (r == TM_ENOTFOUND) {
		tm_buf_free(&b);
		tm_error_clear();
		return load_without_state(st, state_dir);
	}
	if (r < 0 && r != TM_ELIMIT) {
		/* EIO, EMFILE...: not a verdict on the file; move nothing */
		tm_buf_free(&b);
		return tm_error_wrap(TM_EIO, "%s", path);
	}
	if (r == 0 && parse_state(st, b.ptr, b.len) == 0) {
		tm_buf_free(&b);
		return load_floor(st, state_dir);
	}
	tm_buf_free(&b);
	tm_state_free(st);
	if (readonly) {
		tm_log_warn("%s does not parse; showing an empty state", path);
		return load_without_state(st, state_dir);
	}
	/* Not ours or damaged: keep it for a human, start afresh (the floor
	 * and seq survive in the floor file). */
	snprintf(aside, sizeof(aside), "%s.broken-%lld", path, (long long)time(NULL));
	if (rename(path, aside) < 0)
		return tm_error_set(TM_EIO, "%s is unreadable and cannot be moved aside: %s", path,
				    strerror(errno));
	tm_log_warn("%s did not parse; moved aside to %s and starting with an empty state", path,
		    aside);
	st->moved_aside = strdup(aside);
	TM_FAULT("state.moved-aside");
	return load_without_state(st, state_dir);
}
