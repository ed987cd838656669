/*
 * base64.c — base64 of RFC 4648 (standard alphabet), and lowercase hex; core: below
 * everything. Strict by default, for signatures and keys (sshsig, OpenPGP armour,
 * kubeconfig); TM_B64_GO reads as Go's StdEncoding.DecodeString does, for YAML's !!binary as
 * kubectl decodes it.
 */
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Whether c is skipped under flags. */
static int is_b64_space(unsigned char c, int flags)
{
	if (flags & TM_B64_SKIP_SPACE)
		return c == ' ' || c == '\t' || c == '\r' || c == '\n';
	if (flags & TM_B64_GO)
		return c == '\r' || c == '\n';
	return 0;
}

int tm_base64_decode(struct tm_buf *out, const char *in, size_t len, int flags)
{
	const unsigned char *p = (const unsigned char *)in;
	unsigned char quad[4];
	size_t nq = 0, npad = 0, end = len;
	int r;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		int v;

		if (is_b64_space(c, flags))
			continue;
		if (c == '=') {
			/* Padding only in the last two places of a quad. */
			if (nq < 2)
				return tm_error_set(TM_EPARSE, "base64: misplaced padding");
			quad[nq++] = 0;
			npad++;
			if (nq == 4) {
				end = i + 1;
				break;
			}
			continue;
		}
		if (npad)
			return tm_error_set(TM_EPARSE, "base64: data after padding");
		if ((v = b64_value(c)) < 0)
			return tm_error_set(TM_EPARSE, "base64: invalid character 0x%02x", c);
		quad[nq++] = (unsigned char)v;
		if (nq == 4) {
			unsigned char o[3] = {
				(unsigned char)(quad[0] << 2 | quad[1] >> 4),
				(unsigned char)(quad[1] << 4 | quad[2] >> 2),
				(unsigned char)(quad[2] << 6 | quad[3]),
			};
			if ((r = tm_buf_put(out, o, 3)) < 0)
				return r;
			nq = 0;
		}
	}
	if (npad) {
		/* Everything after the padded quad must be (skippable) space. */
		for (size_t i = end; i < len; i++)
			if (!is_b64_space(p[i], flags))
				return tm_error_set(TM_EPARSE, "base64: data after padding");
		if (nq != 4)
			return tm_error_set(TM_EPARSE, "base64: truncated padding");
		if (npad == 2) {
			if ((quad[1] & 0x0f) && !(flags & TM_B64_GO))
				return tm_error_set(TM_EPARSE, "base64: non-canonical encoding");
			unsigned char o = (unsigned char)(quad[0] << 2 | quad[1] >> 4);
			return tm_buf_put(out, &o, 1);
		}
		if ((quad[2] & 0x03) && !(flags & TM_B64_GO))
			return tm_error_set(TM_EPARSE, "base64: non-canonical encoding");
		unsigned char o[2] = {
			(unsigned char)(quad[0] << 2 | quad[1] >> 4),
			(unsigned char)(quad[1] << 4 | quad[2] >> 2),
		};
		return tm_buf_put(out, o, 2);
	}
	if (nq != 0)
		return tm_error_set(TM_EPARSE, "base64: length is not a multiple of 4");
	return 0;
}

int tm_base64_encode(struct tm_buf *out, const void *in, size_t len, int flags)
{
	const unsigned char *p = in;
	size_t i = 0;
	int r;

	for (; len - i >= 3; i += 3) {
		char o[4] = {
			b64_alphabet[p[i] >> 2],
			b64_alphabet[(p[i] & 0x03) << 4 | p[i + 1] >> 4],
			b64_alphabet[(p[i + 1] & 0x0f) << 2 | p[i + 2] >> 6],
			b64_alphabet[p[i + 2] & 0x3f],
		};
		if ((r = tm_buf_put(out, o, 4)) < 0)
			return r;
	}
	if (len - i == 0)
		return 0;
	char o[4];
	size_t n;
	o[0] = b64_alphabet[p[i] >> 2];
	if (len - i == 1) {
		o[1] = b64_alphabet[(p[i] & 0x03) << 4];
		o[2] = o[3] = '=';
		n = 2;
	} else {
		o[1] = b64_alphabet[(p[i] & 0x03) << 4 | p[i + 1] >> 4];
		o[2] = b64_alphabet[(p[i + 1] & 0x0f) << 2];
		o[3] = '=';
		n = 3;
	}
	return tm_buf_put(out, o, (flags & TM_B64_NO_PAD) ? n : 4);
}

void tm_hex(char *out, const void *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}
