/*
 * test_message.c — the fetcher child's message (privsep/message.c): what the
 * child encodes the parent decodes unchanged, and the strict decoder refuses
 * every truncation, an oversized or wrong length, extra bytes, and fields
 * that are not what they claim (hex ids, NUL inside a string, a body whose
 * length differs from the file's size, unknown flags, a positive status).
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tagmoor/core/error.h"
#include "tagmoor/privsep/message.h"
#include "tagmoor/verify/rawobj.h"

#define C1 "0123456789abcdef0123456789abcdef01234567"
#define C2 "89abcdef0123456789abcdef0123456789abcdef"
#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct tm_msg_file files_a[] = {
	{ "units/a.service", 0100644, 6, "[Unit]" },
	{ "units/empty.service", 0100644, 0, "" },
	{ "units/link.service", 0120000, 11, NULL },
};
static struct tm_msg_file files_b[] = { { "k8s/x.yaml", 0100755, 3, "a:\n" } };
static struct tm_msg_dir dirs1[] = {
	{ 1, "units", 0, "", files_a, 3 },
	{ 0, "k8s", 0, "", files_b, 1 },
	{ 0, "k8s/sites/x", TM_ENOTFOUND, "k8s/sites/x: not found", NULL, 0 },
};
/* a tree body holds NUL bytes; the tag's text is the last object */
static const char tree_body[] = "100644 a.service\0\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"
				"\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14";
#define TAG_BODY "object-tag-body-sample"
static struct tm_msg_obj objs[] = {
	{ TM_OBJ_TREE, tree_body, sizeof(tree_body) - 1 },
	{ TM_OBJ_TAG, TAG_BODY, sizeof(TAG_BODY) - 1 },
};
static struct tm_msg_dir dirs2[] = { { 1, "units", TM_EPARSE, "units is a symlink", NULL, 0 } };

static void sample(struct tm_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->error = "";
	m->oid = C2;
	m->flags = TM_MSG_FETCHED;
	m->have_verdict = 1;
	m->verdict.outcome = TM_VERIFY_ACCEPTED;
	strcpy(m->verdict.commit, C1);
	strcpy(m->verdict.tag_object, C2);
	strcpy(m->verdict.tag_name, "stable");
	strcpy(m->verdict.signer, "release@example.com");
	m->verdict.tag_time = 1796000000;
	m->verdict.expires = -1;
	m->verdict.apply_at = 1796000060;
	m->verdict.bucket = 42;
	m->verdict.wave_pct = 50;
	strcpy(m->verdict.fleet, "berlin");
	strcpy(m->verdict.key, KEY);
	strcpy(m->verdict.reason, "");
	m->objs = objs;
	m->nobjs = 2;
	m->sets[0] = (struct tm_msg_set){ C1, dirs1, 3 };
	m->sets[1] = (struct tm_msg_set){ C2, dirs2, 1 };
	m->nsets = 2;
}

static void encode(struct tm_buf *b, const struct tm_msg *m)
{
	tm_buf_init(b, 1 << 20);
	assert_int_equal(tm_msg_encode(b, m), 0);
}

static void test_round_trip(void **state)
{
	struct tm_msg m, d;
	struct tm_buf b, again;
	const struct tm_msg_set *s;
	const struct tm_msg_dir *dir;

	sample(&m);
	encode(&b, &m);
	assert_int_equal(tm_msg_decode(&d, b.ptr, b.len), 0);
	assert_int_equal(d.status, 0);
	assert_string_equal(d.oid, C2);
	assert_int_equal(d.flags, TM_MSG_FETCHED);
	assert_true(d.have_verdict);
	assert_memory_equal(&d.verdict, &m.verdict, sizeof(d.verdict));
	assert_int_equal(d.nobjs, 2);
	assert_int_equal(d.objs[0].type, TM_OBJ_TREE);
	assert_int_equal(d.objs[0].len, sizeof(tree_body) - 1);
	assert_memory_equal(d.objs[0].data, tree_body, sizeof(tree_body) - 1);
	assert_int_equal(d.objs[1].type, TM_OBJ_TAG);
	assert_string_equal(d.objs[1].data, TAG_BODY);
	assert_int_equal(d.nsets, 2);
	s = tm_msg_find_set(&d, C1);
	assert_non_null(s);
	assert_int_equal(s->ndirs, 3);
	dir = tm_msg_find_dir(s, 1, "units");
	assert_non_null(dir);
	assert_int_equal(dir->nfiles, 3);
	assert_string_equal(dir->files[0].data, "[Unit]");
	assert_int_equal(dir->files[0].size, 6);
	assert_non_null(dir->files[1].data); /* an empty body is a body */
	assert_null(dir->files[2].data);     /* the refused symlink: no body */
	assert_int_equal(dir->files[2].mode, 0120000);
	assert_null(tm_msg_find_dir(s, 0, "units"));
	dir = tm_msg_find_dir(s, 0, "k8s/sites/x");
	assert_int_equal(dir->status, TM_ENOTFOUND);
	assert_int_equal(tm_msg_find_set(&d, C2)->dirs[0].status, TM_EPARSE);
	assert_null(tm_msg_find_set(&d, "ffffffffffffffffffffffffffffffffffffffff"));
	/* canonical: what was decoded encodes to the same bytes */
	encode(&again, &d);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.ptr, b.ptr, b.len);
	tm_msg_free(&d);
	tm_buf_free(&again);
	tm_buf_free(&b);
}

static void test_error_message(void **state)
{
	struct tm_msg m, d;
	struct tm_buf b;

	memset(&m, 0, sizeof(m));
	m.status = TM_ESOURCE;
	m.error = "https://x/info/refs: TLS verification failed";
	m.oid = "";
	encode(&b, &m);
	assert_int_equal(tm_msg_decode(&d, b.ptr, b.len), 0);
	assert_int_equal(d.status, TM_ESOURCE);
	assert_string_equal(d.error, m.error);
	assert_false(d.have_verdict);
	tm_msg_free(&d);
	tm_buf_free(&b);
}

static void test_every_truncation_refused(void **state)
{
	struct tm_msg m, d;
	struct tm_buf b;

	sample(&m);
	encode(&b, &m);
	for (size_t n = 0; n < b.len; n++) {
		char *copy = malloc(n + 1);
		memcpy(copy, b.ptr, n);
		/* the header's length still says the whole message */
		assert_int_equal(tm_msg_decode(&d, copy, n), TM_EPARSE);
		/* and with the length made to match, the fields run short */
		if (n >= 12) {
			copy[8] = (char)(n & 0xff);
			copy[9] = (char)((n >> 8) & 0xff);
			copy[10] = (char)((n >> 16) & 0xff);
			copy[11] = (char)((n >> 24) & 0xff);
			assert_int_equal(tm_msg_decode(&d, copy, n), TM_EPARSE);
		}
		free(copy);
	}
	tm_buf_free(&b);
}

/* Offset of the first occurrence of a string field's bytes (its length is the
 * 4 bytes before). */
static size_t field_at(const struct tm_buf *b, const char *s)
{
	const char *p = memmem(b->ptr, b->len, s, strlen(s));
	assert_non_null(p);
	return (size_t)(p - b->ptr);
}

static void put32(char *p, uint32_t v)
{
	p[0] = (char)(v & 0xff);
	p[1] = (char)((v >> 8) & 0xff);
	p[2] = (char)((v >> 16) & 0xff);
	p[3] = (char)(v >> 24);
}

static int decode_modified(const struct tm_msg *m, void (*mod)(struct tm_buf *b), const char *want)
{
	struct tm_msg d;
	struct tm_buf b;
	int r;

	encode(&b, m);
	mod(&b);
	r = tm_msg_decode(&d, b.ptr, b.len);
	if (r == 0)
		tm_msg_free(&d);
	else if (want && !strstr(tm_error_last(), want))
		fail_msg("%s: want \"%s\"", tm_error_last(), want);
	tm_buf_free(&b);
	return r;
}

static void mod_huge_string(struct tm_buf *b)
{
	put32(b->ptr + field_at(b, "release@example.com") - 4, 0xffffffffu);
}
static void mod_long_string(struct tm_buf *b)
{
	put32(b->ptr + field_at(b, "release@example.com") - 4, 19 + 5);
}
static void mod_body_size(struct tm_buf *b)
{
	/* "[Unit]" is 6 bytes; say 5: then its NUL is missing, or say 7 */
	put32(b->ptr + field_at(b, "[Unit]") - 4, 5);
}
static void mod_extra_byte(struct tm_buf *b)
{
	tm_buf_putc(b, 'x');
	put32(b->ptr + 8, (uint32_t)b->len);
}
static void mod_total(struct tm_buf *b)
{
	put32(b->ptr + 8, (uint32_t)b->len + 1);
}
static void mod_magic(struct tm_buf *b)
{
	b->ptr[0] = 'X';
}
static void mod_hex(struct tm_buf *b)
{
	b->ptr[field_at(b, C2)] = 'G';
}
static void mod_nul(struct tm_buf *b)
{
	b->ptr[field_at(b, "release@example.com") + 3] = '\0';
}
static void mod_flags(struct tm_buf *b)
{
	/* flags follow the oid string (4 + 40 + 1 bytes after its length) */
	size_t at = field_at(b, C2) + 41;
	put32(b->ptr + at, 0x100);
}
static void mod_status(struct tm_buf *b)
{
	put32(b->ptr + 12, 5);
}
static void mod_nsets(struct tm_buf *b)
{
	/* nsets follows the last object's body (and its NUL) */
	put32(b->ptr + field_at(b, TAG_BODY) + strlen(TAG_BODY) + 1, 4);
}
/* the objects: their count follows the reason "" after the key */
static size_t nobjs_at(struct tm_buf *b)
{
	return field_at(b, KEY) + 64 + 1 + 4 + 0 + 1;
}
static void mod_nobjs(struct tm_buf *b)
{
	put32(b->ptr + nobjs_at(b), 0x7fffffffu);
}
static void mod_obj_type(struct tm_buf *b)
{
	b->ptr[nobjs_at(b) + 4] = 3; /* a blob is never sent as an object */
}
static void mod_obj_huge(struct tm_buf *b)
{
	put32(b->ptr + nobjs_at(b) + 5, TM_MSG_MAX_OBJECT + 1);
}
static void mod_nfiles(struct tm_buf *b)
{
	/* the count of files of "units": after its error "" (status before it) */
	size_t at = field_at(b, "units") + 5 + 1 + 4 + 4 + 1;
	put32(b->ptr + at, 0x7fffffffu);
}

static void test_malformed_refused(void **state)
{
	struct tm_msg m;

	sample(&m);
	assert_int_equal(decode_modified(&m, mod_huge_string, "at most"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_long_string, NULL), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_body_size, NULL), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_extra_byte, "after the last field"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_total, "header says"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_magic, "header"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_hex, "hex"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_nul, "NUL"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_flags, "flags"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_status, "not an error code"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_nsets, "sets"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_nfiles, "files"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_nobjs, "objects"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_obj_type, "object type"), TM_EPARSE);
	assert_int_equal(decode_modified(&m, mod_obj_huge, "at most"), TM_EPARSE);
}

static void test_encode_bounded(void **state)
{
	struct tm_msg m;
	struct tm_buf b;

	sample(&m);
	tm_buf_init(&b, 64);
	assert_int_not_equal(tm_msg_encode(&b, &m), 0);
	tm_buf_free(&b);
}

/* What the child writes from parts (tm_msg_write_parts: bodies from where they are, at most 64
 * pieces a writev), and copies from them window by window (tm_msg_copy_parts), is byte for byte
 * tm_msg_encode's; with 300 bodies, empty ones among them, the
 * writes take several batches. Over the limit, the parts are refused as the buffer is. */
static void check_parts(const struct tm_msg *m)
{
	struct tm_msg_parts p;
	struct tm_buf b;
	char path[] = "/tmp/test_message.XXXXXX";
	int fd = mkstemp(path);
	char *got;
	off_t n;

	assert_true(fd >= 0);
	unlink(path);
	encode(&b, m);
	assert_int_equal(tm_msg_encode_parts(&p, m, 1 << 20), 0);
	assert_int_equal(tm_msg_write_parts(fd, &p), 0);
	n = lseek(fd, 0, SEEK_CUR);
	assert_int_equal((size_t)n, b.len);
	got = malloc(b.len);
	assert_non_null(got);
	assert_int_equal(pread(fd, got, b.len, 0), (ssize_t)b.len);
	assert_memory_equal(got, b.ptr, b.len);
	/* copied in windows (the child's memfd, privsep/fetcher.c): any window, the same bytes */
	memset(got, 0, b.len);
	tm_msg_copy_parts(got, &p, 0, b.len);
	assert_memory_equal(got, b.ptr, b.len);
	for (size_t w = 1; w <= b.len; w = w * 3 + 1) {
		memset(got, 0, b.len);
		for (size_t at = 0; at < b.len; at += w)
			tm_msg_copy_parts(got + at, &p, at, b.len - at < w ? b.len - at : w);
		assert_memory_equal(got, b.ptr, b.len);
	}
	free(got);
	tm_msg_parts_free(&p);
	assert_int_not_equal(tm_msg_encode_parts(&p, m, b.len - 1), 0);
	tm_msg_parts_free(&p);
	assert_int_equal(tm_msg_encode_parts(&p, m, b.len), 0);
	tm_msg_parts_free(&p);
	tm_buf_free(&b);
	close(fd);
}

static void test_parts_written_as_encoded(void **state)
{
	static struct tm_msg_file many[300];
	static char names[300][32], bodies[300][40];
	struct tm_msg_dir dir = { 0, "k8s", 0, "", many, 300 };
	struct tm_msg m;

	(void)state;
	sample(&m);
	check_parts(&m);
	for (int i = 0; i < 300; i++) {
		snprintf(names[i], sizeof(names[i]), "k8s/f%03d.yaml", i);
		snprintf(bodies[i], sizeof(bodies[i]), "%.*s", i % 7 ? i % 39 : 0,
			 "abcdefghijklmnopqrstuvwxyz0123456789ABCD");
		many[i] = (struct tm_msg_file){ names[i], 0100644, strlen(bodies[i]),
						i % 50 == 49 ? NULL : bodies[i] };
	}
	m.sets[0] = (struct tm_msg_set){ C1, &dir, 1 };
	m.nsets = 1;
	check_parts(&m);
}

static void test_success_needs_oid(void **state)
{
	struct tm_msg m, d;
	struct tm_buf b;

	memset(&m, 0, sizeof(m));
	m.error = "";
	m.oid = "";
	encode(&b, &m);
	assert_int_equal(tm_msg_decode(&d, b.ptr, b.len), TM_EPARSE);
	tm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_error_message),
		cmocka_unit_test(test_every_truncation_refused),
		cmocka_unit_test(test_malformed_refused),
		cmocka_unit_test(test_encode_bounded),
		cmocka_unit_test(test_success_needs_oid),
		cmocka_unit_test(test_parts_written_as_encoded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
