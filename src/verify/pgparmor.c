/*
 * pgparmor.c — OpenPGP ASCII armor (RFC 4880 section 6): the block between its BEGIN and END
 * lines, headers skipped, base64 decoded (core/base64.c) and checked against its CRC24.
 */
#include "openpgp_internal.h"
#include "tagmoor/core/base64.h"
#include "tagmoor/core/buf.h"
#include "tagmoor/core/error.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- armor ---- */

static uint32_t crc24(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xb704ceu;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint32_t)p[i] << 16;
		for (int b = 0; b < 8; b++) {
			crc <<= 1;
			if (crc & 0x1000000u)
				crc ^= 0x1864cfbu;
		}
	}
	return crc & 0xffffffu;
}

static const char *find_line_with(const char *p, const char *end, const char *marker)
{
	size_t ml = strlen(marker);

	for (const char *q = p; (size_t)(end - q) >= ml; q++) {
		if ((q == p || q[-1] == '\n') && memcmp(q, marker, ml) == 0)
			return q;
	}
	return NULL;
}

static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl ? nl : end;
}

static int blank(const char *p, const char *e)
{
	for (; p < e; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return 0;
	return 1;
}

/* Decodes the armored block of kind `label` starting at or after *pos.
 * On success out holds the packets and *pos points after the END line.
 * 1 when there is no further block. */
int pgp_dearmor(struct tm_buf *out, const char **pos, const char *end, const char *label)
{
	char begin[64], fin[64];
	const char *b, *p, *e, *data, *crc_line = NULL;
	int ret;

	snprintf(begin, sizeof(begin), "-----BEGIN PGP %s-----", label);
	snprintf(fin, sizeof(fin), "-----END PGP %s-----", label);
	if (!(b = find_line_with(*pos, end, begin)))
		return 1;
	p = b + strlen(begin);
	if (!blank(p, line_end(p, end)))
		return tm_error_set(TM_EPARSE, "OpenPGP armor: text after the BEGIN line");
	p = line_end(p, end);
	if (p < end)
		p++;
	/* Armor headers ("Key: value") up to a blank line. */
	data = p;
	for (const char *q = p; q < end;) {
		const char *le = line_end(q, end);
		if (blank(q, le)) {
			data = le < end ? le + 1 : le;
			break;
		}
		if (!memchr(q, ':', (size_t)(le - q)))
			break; /* no header block at all: data starts here */
		q = le < end ? le + 1 : le;
		data = q;
	}
	if (!(e = find_line_with(data, end, fin)))
		return tm_error_set(TM_EPARSE, "OpenPGP armor: no %s line", fin);
	/* The optional "=XXXX" checksum is the last non-blank line. */
	for (const char *q = data; q < e;) {
		const char *le = line_end(q, e);
		const char *s = q;
		while (s < le && (*s == ' ' || *s == '\t'))
			s++;
		if (s < le && *s == '=') {
			crc_line = s;
			for (const char *t = le; t < e; t++)
				if (*t != ' ' && *t != '\t' && *t != '\r' && *t != '\n')
					return tm_error_set(
						TM_EPARSE,
						"OpenPGP armor: data after the checksum");
			break;
		}
		q = le < e ? le + 1 : le;
	}
	ret = tm_base64_decode(out, data, (size_t)((crc_line ? crc_line : e) - data),
			       TM_B64_SKIP_SPACE);
	if (ret < 0)
		return ret == TM_ELIMIT ? ret : tm_error_wrap(TM_EPARSE, "OpenPGP armor");
	if (crc_line) {
		struct tm_buf crc;
		const char *ce = line_end(crc_line, e);
		tm_buf_init(&crc, 8);
		ret = tm_base64_decode(&crc, crc_line + 1, (size_t)(ce - crc_line - 1),
				       TM_B64_SKIP_SPACE);
		if (ret == 0 && crc.len != 3)
			ret = TM_EPARSE;
		if (ret == 0) {
			const unsigned char *c = (const unsigned char *)crc.ptr;
			uint32_t want = (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
			if (want != crc24((const unsigned char *)out->ptr, out->len))
				ret = tm_error_set(TM_EPARSE,
						   "OpenPGP armor: checksum mismatch (CRC24)");
		} else {
			ret = tm_error_set(TM_EPARSE, "OpenPGP armor: malformed checksum line");
		}
		tm_buf_free(&crc);
		if (ret < 0)
			return ret;
	}
	p = line_end(e, end);
	if (!blank(e + strlen(fin), p))
		return tm_error_set(TM_EPARSE, "OpenPGP armor: text after the END line");
	*pos = p;
	return 0;
}
