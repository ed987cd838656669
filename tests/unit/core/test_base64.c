/*
 * test_base64.c — the one base64 codec (core/base64.c): strict decoding for signatures and
 * keys, Go's StdEncoding for YAML's !!binary, encoding with and without padding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"

static int decode(struct tm_buf *b, const char *in, int flags)
{
	tm_buf_reset(b);
	return tm_base64_decode(b, in, strlen(in), flags);
}

static void test_base64_decode(void **state)
{
	struct tm_buf b;

	(void)state;
	tm_buf_init(&b, 1024);
	assert_int_equal(decode(&b, "", 0), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(decode(&b, "Zm9vYmFy", 0), 0);
	assert_string_equal(b.ptr, "foobar");
	assert_int_equal(decode(&b, "Zm9vYg==", 0), 0);
	assert_string_equal(b.ptr, "foob");
	assert_int_equal(decode(&b, "Zm9vYmE=", 0), 0);
	assert_string_equal(b.ptr, "fooba");
	assert_int_equal(decode(&b, " Zm9v\r\nYmE=\n", TM_B64_SKIP_SPACE), 0);
	assert_string_equal(b.ptr, "fooba");

	assert_int_equal(decode(&b, " Zm9v", 0), TM_EPARSE);    /* space not allowed */
	assert_int_equal(decode(&b, "Zm9vY", 0), TM_EPARSE);    /* not a multiple of 4 */
	assert_int_equal(decode(&b, "Zm9vYg=", 0), TM_EPARSE);  /* short padding */
	assert_int_equal(decode(&b, "Zm9vYh==", 0), TM_EPARSE); /* non-zero unused bits */
	assert_int_equal(decode(&b, "Zm9vYmF=", 0), TM_EPARSE); /* non-zero unused bits */
	assert_int_equal(decode(&b, "Zm9v=Zm9", 0), TM_EPARSE); /* misplaced padding */
	assert_int_equal(decode(&b, "Zg==Zg==", 0), TM_EPARSE); /* data after padding */
	assert_int_equal(decode(&b, "Zg== ", TM_B64_SKIP_SPACE), 0);
	assert_int_equal(decode(&b, "Zm9v!m9v", 0), TM_EPARSE);
	assert_int_equal(decode(&b, "Zm-v", 0), TM_EPARSE); /* url alphabet refused */
	assert_int_equal(decode(&b, "====", 0), TM_EPARSE);

	/* The cap of the output buffer holds. */
	struct tm_buf small;
	tm_buf_init(&small, 4);
	assert_int_equal(tm_base64_decode(&small, "Zm9vYmFy", 8, 0), TM_ELIMIT);
	tm_buf_free(&small);
	tm_buf_free(&b);
}

static void test_base64_roundtrip(void **state)
{
	unsigned char data[300];
	struct tm_buf enc, dec;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n < 10; n++) {
		tm_buf_init(&enc, 4096);
		tm_buf_init(&dec, 4096);
		assert_int_equal(tm_base64_encode(&enc, data, n * 31, 0), 0);
		assert_int_equal(enc.len % 4, 0);
		assert_int_equal(tm_base64_decode(&dec, enc.ptr, enc.len, 0), 0);
		assert_int_equal(dec.len, n * 31);
		if (n)
			assert_memory_equal(dec.ptr, data, n * 31);
		tm_buf_free(&enc);
		tm_buf_free(&dec);
	}
	tm_buf_init(&enc, 64);
	assert_int_equal(tm_base64_encode(&enc, "foob", 4, TM_B64_NO_PAD), 0);
	assert_string_equal(enc.ptr, "Zm9vYg");
	tm_buf_free(&enc);
}

/* Go's StdEncoding.DecodeString: CR and LF anywhere, nonzero unused bits accepted, other
 * space and missing padding refused. */
static void test_base64_go(void **state)
{
	struct tm_buf b;

	tm_buf_init(&b, 1024);
	assert_int_equal(decode(&b, "Zm9v\r\nYmE=\n", TM_B64_GO), 0);
	assert_string_equal(b.ptr, "fooba");
	assert_int_equal(decode(&b, "Zm9vYh==", TM_B64_GO), 0);
	assert_string_equal(b.ptr, "foob");
	assert_int_equal(decode(&b, "Zm9vYmF=", TM_B64_GO), 0);
	assert_string_equal(b.ptr, "fooba");
	assert_int_equal(decode(&b, " Zm9v", TM_B64_GO), TM_EPARSE);
	assert_int_equal(decode(&b, "Zm9vYg", TM_B64_GO), TM_EPARSE);
	assert_int_equal(decode(&b, "Zg==Zg==", TM_B64_GO), TM_EPARSE);
	tm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_decode),
		cmocka_unit_test(test_base64_roundtrip),
		cmocka_unit_test(test_base64_go),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
