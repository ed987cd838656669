/*
 * message.c — the fetcher child's one message to the privileged parent
 * (include/tagmoor/privsep/message.h): encoding in the child, a strict
 * decoder in the parent. The decoder is the only parser the parent runs on
 * bytes that came from the sandboxed child (fuzzed: tests/fuzz/fuzz_message.c).
 */
#include "tagmoor/privsep/message.h"
#include "tagmoor/core/error.h"
#include "tagmoor/verify/rawobj.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* --- encoding -------------------------------------------------------------- */

static int put_u32(struct tm_buf *b, uint32_t v)
{
	unsigned char c[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 24) };
	return tm_buf_put(b, c, 4);
}

static int put_u64(struct tm_buf *b, uint64_t v)
{
	int r = put_u32(b, (uint32_t)v);
	return r ? r : put_u32(b, (uint32_t)(v >> 32));
}

static int put_u8(struct tm_buf *b, unsigned v)
{
	return tm_buf_putc(b, (char)(unsigned char)v);
}

static int put_blob(struct tm_buf *b, const char *s, size_t len)
{
	int r;

	if (len > UINT32_MAX)
		return tm_error_set(TM_ELIMIT, "message: a field of %zu bytes", len);
	if ((r = put_u32(b, (uint32_t)len)) < 0 || (r = tm_buf_put(b, s ? s : "", len)) < 0)
		return r;
	return tm_buf_putc(b, '\0');
}

static int put_str(struct tm_buf *b, const char *s)
{
	return put_blob(b, s ? s : "", s ? strlen(s) : 0);
}

/* Where the encoding goes: one buffer, or (parts) a buffer with the file bodies left out. */
struct enc {
	struct tm_buf *b;
	struct tm_msg_parts *parts;
};

/* A file body: in the buffer, or noted as a part to be written from where it is. */
static int put_body(struct enc *e, const char *s, size_t len)
{
	struct tm_msg_parts *p = e->parts;
	int r;

	if (!p)
		return put_blob(e->b, s, len);
	if (len > UINT32_MAX)
		return tm_error_set(TM_ELIMIT, "message: a field of %zu bytes", len);
	if ((r = put_u32(e->b, (uint32_t)len)) < 0)
		return r;
	if (p->nbodies == p->capbodies) {
		size_t ncap = p->capbodies ? p->capbodies * 2 : 16;
		struct tm_msg_part *nv = realloc(p->bodies, ncap * sizeof(*nv));
		if (!nv)
			return tm_error_nomem();
		p->bodies = nv;
		p->capbodies = ncap;
	}
	p->bodies[p->nbodies++] = (struct tm_msg_part){ e->b->len, s, len };
	p->total += len;
	return tm_buf_putc(e->b, '\0');
}

static int put_verdict(struct tm_buf *b, const struct tm_verify_result *v)
{
	int r = 0;

	r = r ? r : put_u8(b, (unsigned)v->outcome);
	r = r ? r : put_str(b, v->commit);
	r = r ? r : put_str(b, v->tag_object);
	r = r ? r : put_str(b, v->tag_name);
	r = r ? r : put_str(b, v->signer);
	r = r ? r : put_u64(b, (uint64_t)v->tag_time);
	r = r ? r : put_u64(b, (uint64_t)v->expires);
	r = r ? r : put_u64(b, (uint64_t)v->apply_at);
	r = r ? r : put_u32(b, v->bucket);
	r = r ? r : put_u32(b, v->wave_pct);
	r = r ? r : put_str(b, v->fleet);
	r = r ? r : put_str(b, v->key);
	r = r ? r : put_str(b, v->reason);
	return r;
}

static int put_set(struct enc *e, const struct tm_msg_set *s)
{
	struct tm_buf *out = e->b;
	int r = put_str(out, s->commit);

	r = r ? r : put_u32(out, (uint32_t)s->ndirs);
	for (size_t j = 0; j < s->ndirs && !r; j++) {
		const struct tm_msg_dir *d = &s->dirs[j];
		r = put_u32(out, d->applier);
		r = r ? r : put_str(out, d->path);
		r = r ? r : put_u32(out, (uint32_t)d->status);
		r = r ? r : put_str(out, d->error);
		r = r ? r : put_u32(out, (uint32_t)d->nfiles);
		for (size_t k = 0; k < d->nfiles && !r; k++) {
			const struct tm_msg_file *f = &d->files[k];
			r = put_str(out, f->path);
			r = r ? r : put_u32(out, f->mode);
			r = r ? r : put_u64(out, f->size);
			r = r ? r : put_u8(out, f->data ? 1 : 0);
			if (!r && f->data)
				r = put_body(e, f->data, (size_t)f->size);
		}
	}
	return r;
}

/* Encodes m from out->len on; total: the bytes of the message (with the parts left out). */
static int encode(struct enc *e, const struct tm_msg *m)
{
	struct tm_buf *out = e->b;
	size_t start = out->len;
	uint64_t total;
	int r = tm_buf_put(out, TM_MSG_MAGIC, 8);

	r = r ? r : put_u32(out, 0); /* the total length, filled in below */
	r = r ? r : put_u32(out, (uint32_t)m->status);
	r = r ? r : put_str(out, m->error);
	r = r ? r : put_str(out, m->oid);
	r = r ? r : put_u32(out, m->flags);
	r = r ? r : put_u8(out, m->have_verdict ? 1 : 0);
	if (!r && m->have_verdict)
		r = put_verdict(out, &m->verdict);
	r = r ? r : put_u32(out, (uint32_t)m->nobjs);
	for (size_t i = 0; i < m->nobjs && !r; i++) {
		r = put_u8(out, m->objs[i].type);
		r = r ? r : put_blob(out, m->objs[i].data, m->objs[i].len);
	}
	r = r ? r : put_u32(out, (uint32_t)m->nsets);
	for (size_t i = 0; i < m->nsets && !r; i++)
		r = put_set(e, &m->sets[i]);
	total = (uint64_t)(out->len - start) + (e->parts ? e->parts->total : 0);
	if (r < 0 || (e->parts && total > out->max))
		return tm_error_set(r < 0 ? r : TM_ELIMIT,
				    "the fetcher's message does not fit (%zu bytes at most)",
				    out->max);
	if (total > UINT32_MAX)
		return tm_error_set(TM_ELIMIT, "the fetcher's message is over 4 GiB");
	{
		unsigned char *p = (unsigned char *)out->ptr + start + 8;
		p[0] = (unsigned char)total;
		p[1] = (unsigned char)(total >> 8);
		p[2] = (unsigned char)(total >> 16);
		p[3] = (unsigned char)(total >> 24);
	}
	return 0;
}

int tm_msg_encode(struct tm_buf *out, const struct tm_msg *m)
{
	struct enc e = { out, NULL };

	return encode(&e, m);
}

int tm_msg_encode_parts(struct tm_msg_parts *out, const struct tm_msg *m, size_t max)
{
	struct enc e = { &out->head, out };

	memset(out, 0, sizeof(*out));
	tm_buf_init(&out->head, max);
	return encode(&e, m);
}

/* One writev of what is left, at most 64 pieces: the head between the bodies, the bodies. */
static ssize_t write_some(int fd, const struct tm_msg_parts *p, uint64_t done)
{
	struct iovec v[64];
	int n = 0;
	uint64_t at = 0; /* where the current piece starts in the message */
	size_t head = 0; /* how much of the head comes before it */

	for (size_t i = 0; i <= p->nbodies && n < 64; i++) {
		size_t hend = i < p->nbodies ? p->bodies[i].at : p->head.len;
		const char *pieces[2] = { p->head.ptr + head,
					  i < p->nbodies ? p->bodies[i].data : "" };
		size_t lens[2] = { hend - head, i < p->nbodies ? p->bodies[i].len : 0 };
		for (int k = 0; k < 2 && n < 64; k++) {
			if (lens[k] && done < at + lens[k]) {
				uint64_t skip = done > at ? done - at : 0;
				v[n].iov_base = (void *)(pieces[k] + skip);
				v[n++].iov_len = (size_t)(lens[k] - skip);
			}
			at += lens[k];
		}
		head = hend;
	}
	return n ? writev(fd, v, n) : 0;
}

int tm_msg_write_parts(int fd, const struct tm_msg_parts *p)
{
	uint64_t size = (uint64_t)p->head.len + p->total, done = 0;

	while (done < size) {
		ssize_t w = write_some(fd, p, done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return tm_error_set(TM_EIO, "writing the message: %s",
					    w < 0 ? strerror(errno) : "nothing written");
		done += (uint64_t)w;
	}
	return 0;
}

/* Copies what of a piece (src, len bytes, at offset pos of the message) falls in the window
 * [from, from + n) of the message to dst, the window's start. */
static void copy_piece(char *dst, uint64_t from, uint64_t n, const char *src, uint64_t pos,
		       uint64_t len)
{
	uint64_t a = pos > from ? pos : from, b = pos + len < from + n ? pos + len : from + n;

	if (a < b)
		memcpy(dst + (a - from), src + (a - pos), (size_t)(b - a));
}

void tm_msg_copy_parts(void *dst, const struct tm_msg_parts *p, uint64_t from, uint64_t n)
{
	size_t head = 0;  /* how much of the head comes before the piece */
	uint64_t pos = 0; /* where the piece starts in the message */

	for (size_t i = 0; i < p->nbodies && pos < from + n; i++) {
		copy_piece(dst, from, n, p->head.ptr + head, pos, p->bodies[i].at - head);
		pos += p->bodies[i].at - head;
		head = p->bodies[i].at;
		copy_piece(dst, from, n, p->bodies[i].data, pos, p->bodies[i].len);
		pos += p->bodies[i].len;
	}
	copy_piece(dst, from, n, p->head.ptr + head, pos, p->head.len - head);
}

void tm_msg_parts_free(struct tm_msg_parts *p)
{
	tm_buf_free(&p->head);
	free(p->bodies);
	memset(p, 0, sizeof(*p));
}

/* --- decoding -------------------------------------------------------------- */

struct rd {
	const unsigned char *p;
	size_t left;
};

static int short_of(const char *field)
{
	return tm_error_set(TM_EPARSE, "fetcher message: truncated at %s", field);
}

static int get_u32(struct rd *d, uint32_t *v, const char *field)
{
	if (d->left < 4)
		return short_of(field);
	*v = (uint32_t)d->p[0] | (uint32_t)d->p[1] << 8 | (uint32_t)d->p[2] << 16 |
	     (uint32_t)d->p[3] << 24;
	d->p += 4;
	d->left -= 4;
	return 0;
}

static int get_u64(struct rd *d, uint64_t *v, const char *field)
{
	uint32_t lo = 0, hi = 0; /* set unless r < 0 (gcc -O2 cannot see it) */
	int r = get_u32(d, &lo, field);

	if (r == 0 && (r = get_u32(d, &hi, field)) == 0)
		*v = (uint64_t)hi << 32 | lo;
	return r;
}

static int get_u8(struct rd *d, unsigned *v, unsigned max, const char *field)
{
	if (d->left < 1)
		return short_of(field);
	*v = d->p[0];
	d->p++;
	d->left--;
	if (*v > max)
		return tm_error_set(TM_EPARSE, "fetcher message: %s is %u (at most %u)", field, *v,
				    max);
	return 0;
}

/* A length-prefixed field of at most max bytes, NUL after it; text: no NUL
 * inside. */
static int get_blob(struct rd *d, const char **out, size_t *len, size_t max, int text,
		    const char *field)
{
	uint32_t n = 0;
	int r = get_u32(d, &n, field);

	if (r < 0)
		return r;
	if (n > max)
		return tm_error_set(TM_EPARSE, "fetcher message: %s of %lu bytes (at most %zu)",
				    field, (unsigned long)n, max);
	if (d->left < (size_t)n + 1)
		return short_of(field);
	if (d->p[n] != '\0')
		return tm_error_set(TM_EPARSE, "fetcher message: %s is not terminated", field);
	if (text && memchr(d->p, '\0', n))
		return tm_error_set(TM_EPARSE, "fetcher message: %s contains a NUL byte", field);
	*out = (const char *)d->p;
	if (len)
		*len = n;
	d->p += (size_t)n + 1;
	d->left -= (size_t)n + 1;
	return 0;
}

static int get_str(struct rd *d, const char **out, size_t max, const char *field)
{
	return get_blob(d, out, NULL, max, 1, field);
}

/* Into a fixed array of the verdict: fits with its NUL. */
static int get_fixed(struct rd *d, char *out, size_t outsz, const char *field)
{
	const char *s = NULL;
	size_t n = 0;
	int r = get_blob(d, &s, &n, outsz - 1, 1, field);

	if (r == 0)
		memcpy(out, s, n + 1);
	return r;
}

/* "" or exactly hexlen lowercase hex digits. */
static int check_hex(const char *s, size_t hexlen, const char *field)
{
	size_t n = strlen(s);

	if (n == 0)
		return 0;
	if (n != hexlen)
		return tm_error_set(TM_EPARSE, "fetcher message: %s is not %zu hex digits", field,
				    hexlen);
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return tm_error_set(TM_EPARSE, "fetcher message: %s is not hex", field);
	return 0;
}

static int get_status(struct rd *d, int32_t *out, const char *field)
{
	uint32_t v = 0;
	int r = get_u32(d, &v, field);

	if (r < 0)
		return r;
	*out = (int32_t)v;
	if (*out > 0 || *out < TM_EUNREACHABLE)
		return tm_error_set(TM_EPARSE, "fetcher message: %s %ld is not an error code",
				    field, (long)*out);
	return 0;
}

static int get_verdict(struct rd *d, struct tm_verify_result *v)
{
	unsigned outcome = 0;
	uint64_t t;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = get_u8(d, &outcome, TM_VERIFY_REFUSED, "verdict outcome")) < 0)
		return r;
	v->outcome = (enum tm_verify_outcome)outcome;
	if ((r = get_fixed(d, v->commit, sizeof(v->commit), "verdict commit")) < 0 ||
	    (r = check_hex(v->commit, 40, "verdict commit")) < 0 ||
	    (r = get_fixed(d, v->tag_object, sizeof(v->tag_object), "verdict tag object")) < 0 ||
	    (r = check_hex(v->tag_object, 40, "verdict tag object")) < 0 ||
	    (r = get_fixed(d, v->tag_name, sizeof(v->tag_name), "verdict tag name")) < 0 ||
	    (r = get_fixed(d, v->signer, sizeof(v->signer), "verdict signer")) < 0)
		return r;
	if ((r = get_u64(d, &t, "verdict tag time")) < 0)
		return r;
	v->tag_time = (int64_t)t;
	if ((r = get_u64(d, &t, "verdict expiry")) < 0)
		return r;
	v->expires = (int64_t)t;
	if ((r = get_u64(d, &t, "verdict apply time")) < 0)
		return r;
	v->apply_at = (int64_t)t;
	if ((r = get_u32(d, &v->bucket, "verdict bucket")) < 0 ||
	    (r = get_u32(d, &v->wave_pct, "verdict wave")) < 0)
		return r;
	if (v->bucket > 99 || v->wave_pct > 100)
		return tm_error_set(TM_EPARSE, "fetcher message: verdict bucket or wave over 100");
	if ((r = get_fixed(d, v->fleet, sizeof(v->fleet), "verdict fleet")) < 0 ||
	    (r = get_fixed(d, v->key, sizeof(v->key), "verdict key")) < 0 ||
	    (r = check_hex(v->key, 64, "verdict key")) < 0 ||
	    (r = get_fixed(d, v->reason, sizeof(v->reason), "verdict reason")) < 0)
		return r;
	if (v->outcome == TM_VERIFY_ACCEPTED && !v->commit[0])
		return tm_error_set(TM_EPARSE,
				    "fetcher message: an accepted verdict without commit");
	return 0;
}

static int get_count(struct rd *d, size_t *out, size_t max, size_t min_each, const char *field)
{
	uint32_t n = 0;
	int r = get_u32(d, &n, field);

	if (r < 0)
		return r;
	if (n > max)
		return tm_error_set(TM_EPARSE, "fetcher message: %lu %s (at most %zu)",
				    (unsigned long)n, field, max);
	/* each element takes at least min_each bytes: no allocation beyond the input */
	if ((size_t)n > d->left / min_each)
		return short_of(field);
	*out = n;
	return 0;
}

static int get_file(struct rd *d, struct tm_msg_file *f)
{
	unsigned has = 0;
	size_t n;
	int r;

	if ((r = get_str(d, &f->path, TM_MSG_MAX_PATH, "file path")) < 0)
		return r;
	if (!f->path[0])
		return tm_error_set(TM_EPARSE, "fetcher message: an empty file path");
	if ((r = get_u32(d, &f->mode, "file mode")) < 0 ||
	    (r = get_u64(d, &f->size, "file size")) < 0 ||
	    (r = get_u8(d, &has, 1, "file has_data")) < 0)
		return r;
	f->data = NULL;
	if (!has)
		return 0;
	if ((r = get_blob(d, &f->data, &n, TM_MSG_MAX_FILE, 0, "file data")) < 0)
		return r;
	if (n != f->size)
		return tm_error_set(TM_EPARSE, "fetcher message: %.256s: %zu bytes, size says %llu",
				    f->path, n, (unsigned long long)f->size);
	return 0;
}

static int get_dir(struct rd *d, struct tm_msg_dir *dir)
{
	int r;

	if ((r = get_u32(d, &dir->applier, "dir applier")) < 0)
		return r;
	if (dir->applier >= 16)
		return tm_error_set(TM_EPARSE, "fetcher message: applier %lu",
				    (unsigned long)dir->applier);
	if ((r = get_str(d, &dir->path, TM_MSG_MAX_PATH, "dir path")) < 0 ||
	    (r = get_status(d, &dir->status, "dir status")) < 0 ||
	    (r = get_str(d, &dir->error, TM_MSG_MAX_ERROR, "dir error")) < 0 ||
	    (r = get_count(d, &dir->nfiles, TM_MSG_MAX_FILES, 18, "files")) < 0)
		return r;
	if (dir->nfiles && !(dir->files = calloc(dir->nfiles, sizeof(*dir->files))))
		return tm_error_nomem();
	for (size_t i = 0; i < dir->nfiles; i++)
		if ((r = get_file(d, &dir->files[i])) < 0)
			return r;
	return 0;
}

static int get_objects(struct rd *d, struct tm_msg *m)
{
	int r;

	if ((r = get_count(d, &m->nobjs, TM_MSG_MAX_OBJECTS, 6, "objects")) < 0)
		return r;
	if (m->nobjs && !(m->objs = calloc(m->nobjs, sizeof(*m->objs))))
		return tm_error_nomem();
	for (size_t i = 0; i < m->nobjs; i++) {
		unsigned type = 0;
		if ((r = get_u8(d, &type, TM_OBJ_TAG, "object type")) < 0)
			return r;
		if (type != TM_OBJ_COMMIT && type != TM_OBJ_TREE && type != TM_OBJ_TAG)
			return tm_error_set(TM_EPARSE, "fetcher message: object type %u", type);
		m->objs[i].type = type;
		if ((r = get_blob(d, &m->objs[i].data, &m->objs[i].len, TM_MSG_MAX_OBJECT, 0,
				  "object")) < 0)
			return r;
	}
	return 0;
}

int tm_msg_add_object(struct tm_msg *m, uint32_t type, const char *data, size_t len)
{
	if (m->nobjs >= TM_MSG_MAX_OBJECTS || len > TM_MSG_MAX_OBJECT)
		return tm_error_set(TM_ELIMIT, "more than %d objects or one over %u bytes",
				    TM_MSG_MAX_OBJECTS, TM_MSG_MAX_OBJECT);
	if (m->nobjs == m->capobjs) {
		size_t ncap = m->capobjs ? m->capobjs * 2 : 16;
		struct tm_msg_obj *nv = realloc(m->objs, ncap * sizeof(*nv));
		if (!nv)
			return tm_error_nomem();
		m->objs = nv;
		m->capobjs = ncap;
	}
	m->objs[m->nobjs++] = (struct tm_msg_obj){ type, data, len };
	return 0;
}

int tm_msg_decode(struct tm_msg *m, const char *buf, size_t len)
{
	struct rd d = { (const unsigned char *)buf, len };
	uint32_t total;
	unsigned hv = 0;
	int r;

	memset(m, 0, sizeof(*m));
	if (len < 12 || memcmp(buf, TM_MSG_MAGIC, 8) != 0)
		return tm_error_set(TM_EPARSE, "fetcher message: no %s header", TM_MSG_MAGIC);
	d.p += 8;
	d.left -= 8;
	get_u32(&d, &total, "length");
	if (total != len)
		return tm_error_set(TM_EPARSE, "fetcher message: %zu bytes, its header says %lu",
				    len, (unsigned long)total);
	if ((r = get_status(&d, &m->status, "status")) < 0 ||
	    (r = get_str(&d, &m->error, TM_MSG_MAX_ERROR, "error")) < 0 ||
	    (r = get_str(&d, &m->oid, 40, "oid")) < 0 || (r = check_hex(m->oid, 40, "oid")) < 0 ||
	    (r = get_u32(&d, &m->flags, "flags")) < 0)
		goto fail;
	if (m->flags & ~TM_MSG_FLAGS) {
		r = tm_error_set(TM_EPARSE, "fetcher message: unknown flags %#lx",
				 (unsigned long)m->flags);
		goto fail;
	}
	if ((r = get_u8(&d, &hv, 1, "have_verdict")) < 0)
		goto fail;
	m->have_verdict = (int)hv;
	if (hv && (r = get_verdict(&d, &m->verdict)) < 0)
		goto fail;
	if ((r = get_objects(&d, m)) < 0 ||
	    (r = get_count(&d, &m->nsets, TM_MSG_MAX_SETS, 9, "sets")) < 0)
		goto fail;
	for (size_t i = 0; i < m->nsets; i++) {
		struct tm_msg_set *s = &m->sets[i];
		if ((r = get_str(&d, &s->commit, 40, "set commit")) < 0 ||
		    (r = check_hex(s->commit, 40, "set commit")) < 0)
			goto fail;
		if (!s->commit[0]) {
			r = tm_error_set(TM_EPARSE, "fetcher message: a set without commit");
			goto fail;
		}
		if ((r = get_count(&d, &s->ndirs, TM_MSG_MAX_DIRS, 22, "dirs")) < 0)
			goto fail;
		if (s->ndirs && !(s->dirs = calloc(s->ndirs, sizeof(*s->dirs)))) {
			r = tm_error_nomem();
			goto fail;
		}
		for (size_t j = 0; j < s->ndirs; j++)
			if ((r = get_dir(&d, &s->dirs[j])) < 0)
				goto fail;
	}
	if (d.left) {
		r = tm_error_set(TM_EPARSE, "fetcher message: %zu bytes after the last field",
				 d.left);
		goto fail;
	}
	if (m->status == 0 && !m->oid[0]) {
		r = tm_error_set(TM_EPARSE, "fetcher message: success without an object id");
		goto fail;
	}
	return 0;
fail:
	tm_msg_free(m);
	return r;
}

void tm_msg_free(struct tm_msg *m)
{
	for (size_t i = 0; i < m->nsets && i < TM_MSG_MAX_SETS; i++) {
		for (size_t j = 0; j < m->sets[i].ndirs; j++)
			if (m->sets[i].dirs)
				free(m->sets[i].dirs[j].files);
		free(m->sets[i].dirs);
		m->sets[i].dirs = NULL;
		m->sets[i].ndirs = 0;
	}
	m->nsets = 0;
	free(m->objs);
	m->objs = NULL;
	m->nobjs = m->capobjs = 0;
}

const struct tm_msg_set *tm_msg_find_set(const struct tm_msg *m, const char *commit)
{
	for (size_t i = 0; i < m->nsets; i++)
		if (strcmp(m->sets[i].commit, commit) == 0)
			return &m->sets[i];
	return NULL;
}

const struct tm_msg_dir *tm_msg_find_dir(const struct tm_msg_set *s, uint32_t applier,
					 const char *path)
{
	for (size_t i = 0; i < s->ndirs; i++)
		if (s->dirs[i].applier == applier && strcmp(s->dirs[i].path, path) == 0)
			return &s->dirs[i];
	return NULL;
}
